#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Pure L4 routing in the kernel, on real sockets in the lab: weights, getpeername,
# IPv6, reloads under load, restarts, bad policy.
. "$(dirname "$0")/lib.sh"
need_root

lab_fresh
ok "lab up"
for f in "$EX/helloworld.yaml" "$EX/sleep.yaml" "$EX/helloworld-l4-split.yaml"; do
	"$KSTEER" lab apply cluster1 -n hello -f "$f" >"$tmp/apply" 2>&1 || bad "apply $(basename "$f")" "$(cat "$tmp/apply")"
done
VIP=$(vip cluster1 hello helloworld-tcp)
[ -n "$VIP" ] && ok "a ClusterIP for helloworld-tcp: $VIP" || bad "a ClusterIP for helloworld-tcp" "$("$KSTEER" lab status)"
NODE=lab-cluster1-node1

# -- 50/30/20 over 1000 new connections, entirely in the kernel
routed0=$(stat $NODE connect_routed)
shim0=$(stat $NODE connect_shim)
passive() { ip netns exec ksl-c1-n1 awk '$1 == "Tcp:" && $2 ~ /^[0-9]/ {print $7}' /proc/net/snmp; }
passive0=$(passive)
connects cluster1 hello/sleep "http://$VIP:5000/hello" 1000 >"$tmp/a"
echo "     measured: $(shares "$tmp/a")"
if grep -q FAIL "$tmp/a"; then bad "1000 connections, none failed" "$(grep -c FAIL "$tmp/a") failed"; else ok "1000 connections, none failed"; fi
for vw in v1:50 v2:30 v3:20; do
	within "$tmp/a" "${vw%%:*}" "${vw##*:}" 5 && ok "${vw%%:*} gets ${vw##*:}% within 5 points" ||
		bad "${vw%%:*} gets ${vw##*:}% within 5 points" "$(shares "$tmp/a")"
done
passive1=$(passive)
routed=$(($(stat $NODE connect_routed) - routed0))
shim=$(($(stat $NODE connect_shim) - shim0))
if [ "$routed" -ge 1000 ] && [ "$shim" -eq 0 ]; then
	ok "routed by connect4 (run count +$routed), none sent to user space"
else
	bad "routed by connect4, none sent to user space" "connect_routed +$routed, connect_shim +$shim"
fi
if [ "$passive1" -eq "$passive0" ]; then
	ok "the node's shim accepted none of them (TCP passive opens in the node: +0)"
else
	bad "the node's shim accepted none of them" "passive opens $passive0 -> $passive1"
fi

# weight 0 gets nothing
sed 's/weight: 20/weight: 0/' "$EX/helloworld-l4-split.yaml" >"$tmp/zero.yaml"
"$KSTEER" lab apply cluster1 -n hello -f "$tmp/zero.yaml" >/dev/null 2>&1 || bad "apply weight 0"
connects cluster1 hello/sleep "http://$VIP:5000/hello" 300 >"$tmp/z"
if grep -q "version: v3," "$tmp/z" || grep -q FAIL "$tmp/z"; then bad "weight 0 gets none" "$(shares "$tmp/z")"; else ok "weight 0 gets none ($(shares "$tmp/z"))"; fi
"$KSTEER" lab apply cluster1 -n hello -f "$EX/helloworld-l4-split.yaml" >/dev/null 2>&1

# -- getpeername shows the VIP; IPv4-mapped IPv6 and IPv6 frontends
cat >"$tmp/v6.yaml" <<Y
apiVersion: v1
kind: Service
metadata: {name: hello6}
spec:
  clusterIP: fd00:101::10
  ports: [{port: 5000, name: tcp-hello}]
  selector: {app: helloworld, version: v1}
Y
"$KSTEER" lab apply cluster1 -n hello -f "$tmp/v6.yaml" >"$tmp/apply" 2>&1 || bad "apply an IPv6 Service" "$(cat "$tmp/apply")"
"$KSTEER" lab exec cluster1 hello/sleep -- python3 - "$VIP" >"$tmp/peer" 2>&1 <<'PY'
import socket, sys
vip = sys.argv[1]
s = socket.create_connection((vip, 5000)); print("v4", s.getpeername()[0])
m = socket.socket(socket.AF_INET6); m.connect(("::ffff:" + vip, 5000)); print("mapped", m.getpeername()[0])
m.sendall(b"GET /hello HTTP/1.0\r\n\r\n"); print("mapped-answer", m.recv(200).split(b"\r\n\r\n")[-1].decode().strip())
x = socket.socket(socket.AF_INET6); x.connect(("fd00:101::10", 5000)); print("v6", x.getpeername()[0])
x.sendall(b"GET /hello HTTP/1.0\r\n\r\n"); print("v6-answer", x.recv(200).split(b"\r\n\r\n")[-1].decode().strip())
PY
grep -qx "v4 $VIP" "$tmp/peer" && ok "getpeername returns the VIP" || bad "getpeername returns the VIP" "$(cat "$tmp/peer")"
grep -qx "mapped ::ffff:$VIP" "$tmp/peer" && grep -q "mapped-answer Hello version" "$tmp/peer" &&
	ok "IPv4-mapped IPv6 frontend routed, getpeername the mapped VIP" || bad "IPv4-mapped IPv6 frontend" "$(cat "$tmp/peer")"
grep -qx "v6 fd00:101::10" "$tmp/peer" && grep -q "v6-answer Hello version: v1" "$tmp/peer" &&
	ok "IPv6 frontend routed, getpeername the IPv6 VIP" || bad "IPv6 frontend" "$(cat "$tmp/peer")"

# -- reload under load: 20 flips between two weight sets while connecting
sed 's/weight: 50/weight: 0/; s/weight: 30/weight: 50/; s/weight: 20/weight: 50/' "$EX/helloworld-l4-split.yaml" >"$tmp/b.yaml"
connects cluster1 hello/sleep "http://$VIP:5000/hello" 600 >"$tmp/load" &
load=$!
for i in $(seq 10); do
	"$KSTEER" lab apply cluster1 -n hello -f "$tmp/b.yaml" >/dev/null 2>&1 || bad "flip $i (b)"
	"$KSTEER" lab apply cluster1 -n hello -f "$EX/helloworld-l4-split.yaml" >/dev/null 2>&1 || bad "flip $i (a)"
done
wait $load
if [ "$(wc -l <"$tmp/load")" -eq 600 ] && ! grep -q FAIL "$tmp/load" && ! grep -qv "Hello version: v[123]," "$tmp/load"; then
	ok "20 policy flips under load: 600 connects, none failed ($(shares "$tmp/load"))"
else
	bad "20 policy flips under load" "$(shares "$tmp/load")" "$(grep -v 'Hello version' "$tmp/load" | head -3)"
fi

# -- restart: SIGKILL the agent during connects; its pins are adopted, not recreated
pin=/sys/fs/bpf/ksteer/$NODE
links0=$(bpftool -j link show pinned "$pin/link_connect4" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
map0=$(bpftool -j map show pinned "$pin/ks_frontends" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
agent_pid() { python3 -c 'import json; print(json.load(open("/run/ksteer-lab/state.json"))["clusters"][0]["nodes"][0]["agentPid"])' 2>/dev/null; }
apid=$(agent_pid)
alog=/run/ksteer-lab/logs/$NODE.log
logoff=$(wc -c <"$alog")
connects cluster1 hello/sleep "http://$VIP:5000/hello" 400 >"$tmp/restart" &
load=$!
sleep 0.5
kill -9 "$apid"
# the lab's kubelet starts the agent's container again, after its back-off (10 s the first time)
for i in $(seq 300); do
	npid=$(agent_pid)
	[ "$npid" != "$apid" ] && "$KSTEER" status -i $NODE 2>/dev/null | grep -q '^last policy applied' && break
	sleep 0.1
done
tail -c +$((logoff + 1)) "$alog" >"$tmp/agent2.log"
wait $load
links1=$(bpftool -j link show pinned "$pin/link_connect4" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
map1=$(bpftool -j map show pinned "$pin/ks_frontends" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
if [ "$(wc -l <"$tmp/restart")" -eq 400 ] && ! grep -q FAIL "$tmp/restart"; then ok "SIGKILL and restart under load: 400 connects, none failed"; else bad "SIGKILL and restart under load" "$(shares "$tmp/restart")"; fi
[ "$links0" = "$links1" ] && [ "$map0" = "$map1" ] && grep -q "adopted pinned links and maps" "$tmp/agent2.log" &&
	ok "pins adopted, not recreated (link $links0, map $map0)" || bad "pins adopted" "link $links0 -> $links1, map $map0 -> $map1" "$(head -3 "$tmp/agent2.log")"

# -- bad policy while running: refused with file:line, routing unchanged
sed 's/weight: 30/weight: -30/' "$EX/helloworld-l4-split.yaml" >"$tmp/bad.yaml"
if "$KSTEER" lab apply cluster1 -n hello -f "$tmp/bad.yaml" >"$tmp/badout" 2>&1; then
	bad "lab apply refuses a negative weight" "$(cat "$tmp/badout")"
else
	grep -q "bad.yaml:[0-9]*:[0-9]*: error: VirtualService hello/helloworld-tcp: tcp\[0\].route\[1\].weight: must not be negative" "$tmp/badout" &&
		ok "lab apply refuses a negative weight with file:line" || bad "refusal names file:line" "$(cat "$tmp/badout")"
fi
if "$KSTEER" apply -i $NODE -f "$tmp/bad.yaml" >"$tmp/badout" 2>&1; then
	bad "the agent refuses a negative weight" "$(cat "$tmp/badout")"
else
	grep -q "bad.yaml:[0-9]*:[0-9]*: error: " "$tmp/badout" && ok "the agent refuses it too, with file:line" || bad "agent refusal" "$(cat "$tmp/badout")"
fi
# and a bad file dropped straight into the watched directory
# (the agent's --policy directory: its ConfigMap volume, which the lab's kubelet writes on the host)
mesh=$(ls -d /run/ksteer-lab/cluster1/pods/*_ksteer-node-node1/volumes/mesh)
cp "$tmp/bad.yaml" "$mesh/zz-bad.yaml"
sleep 0.5
"$KSTEER" status --instance $NODE >"$tmp/st" 2>&1
grep -q "policy rejected" "$tmp/st" && ok "a bad file in the policy directory is rejected: $(grep last "$tmp/st")" || bad "bad file rejected" "$(cat "$tmp/st")"
connects cluster1 hello/sleep "http://$VIP:5000/hello" 600 >"$tmp/after"
rm -f "$mesh/zz-bad.yaml"
if ! grep -q FAIL "$tmp/after" && within "$tmp/after" v1 50 8 && within "$tmp/after" v3 20 8; then
	ok "routing unchanged after the bad policy ($(shares "$tmp/after"))"
else
	bad "routing unchanged after the bad policy" "$(shares "$tmp/after")"
fi

# -- inspect with bpftool: named fields from BTF
bpftool map dump pinned "$pin/ks_frontends" >"$tmp/dump" 2>&1
grep -q '"weight_total"' "$tmp/dump" && ok "bpftool map dump shows named fields" || bad "bpftool map dump" "$(head -5 "$tmp/dump")"

finish
