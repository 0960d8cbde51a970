#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# The lab itself: any names and counts, reachability and isolation, Istio's own
# samples applied unchanged, and `down` leaving nothing behind.
. "$(dirname "$0")/lib.sh"
need_root
S=$SHARED/conformance/istio-samples

"$KSTEER" lab down >/dev/null 2>&1
cat >"$tmp/lab.yaml" <<'Y'
clusters:
- name: east
  nodes: 2
  gateway: true
- name: west-2.b
  gateway: true
- name: lonely
  nodes: 1
  gateway: false
Y
if ! "$KSTEER" lab up -f "$tmp/lab.yaml" >"$tmp/up" 2>&1; then
	bad "lab up with a LABFILE" "$(cat "$tmp/up")"
	finish
	exit 1
fi
ok "lab up with three clusters of other names"

"$KSTEER" lab env >"$tmp/env"
grep -qx "export EAST_GW_ADDR=172.30.1.1" "$tmp/env" && grep -qx "export WEST_2_B_GW_ADDR=172.30.2.1" "$tmp/env" &&
	! grep -q LONELY_GW "$tmp/env" && ok "lab env: one line per gateway" || bad "lab env" "$(cat "$tmp/env")"
eval "$("$KSTEER" lab env)"

# one root CA, an intermediate per cluster in Istio's plug-in layout, checked by openssl itself
for c in east west-2.b lonely; do
	d=/run/ksteer-lab/$c/cacerts
	if [ -s $d/root-cert.pem ] && [ -s $d/ca-key.pem ] &&
		openssl verify -CAfile /run/ksteer-lab/ca/root-cert.pem $d/ca-cert.pem >/dev/null 2>&1 &&
		openssl verify -CAfile $d/root-cert.pem -untrusted $d/cert-chain.pem $d/ca-cert.pem >/dev/null 2>&1 &&
		cmp -s $d/root-cert.pem /run/ksteer-lab/ca/root-cert.pem; then
		ok "cluster $c: plug-in CA files chain to the shared root (openssl verify)"
	else
		bad "cluster $c: plug-in CA files" "$(ls -l $d 2>&1)"
	fi
done

# Istio's samples, unchanged, with -l as the scenario uses it
"$KSTEER" lab apply east -n hello -f "$S/helloworld/helloworld.yaml" -l version=v1 >"$tmp/o" 2>&1 || bad "apply helloworld.yaml -l version=v1" "$(cat "$tmp/o")"
"$KSTEER" lab apply east -n hello -f "$S/helloworld/helloworld.yaml" -l service=helloworld >"$tmp/o" 2>&1 || bad "apply the helloworld Service" "$(cat "$tmp/o")"
"$KSTEER" lab apply east -n hello -f "$S/sleep/sleep.yaml" >"$tmp/o" 2>&1 || bad "apply sleep.yaml" "$(cat "$tmp/o")"
"$KSTEER" lab apply east -n hello -f "$EX/sleep.yaml" >"$tmp/o" 2>&1 || true
"$KSTEER" lab apply west-2.b -n default -f "$S/bookinfo/platform/kube/bookinfo.yaml" >"$tmp/o" 2>&1 || bad "apply bookinfo.yaml" "$(cat "$tmp/o")"
"$KSTEER" lab apply west-2.b -n hello -f "$EX/helloworld.yaml" -l version=v2 >"$tmp/o" 2>&1 || bad "apply examples -l version=v2" "$(cat "$tmp/o")"
"$KSTEER" lab status -o json >"$tmp/status"
python3 - "$tmp/status" <<'PY' && ok "lab status -o json: pods, nodes, services as specified" || bad "lab status -o json" "$(head -c 600 "$tmp/status")"
import json, sys
st = json.load(open(sys.argv[1]))
c = {x["name"]: x for x in st["clusters"]}
assert set(c) == {"east", "west-2.b", "lonely"}
assert c["lonely"]["gateway"] is None and c["east"]["gateway"]["address"] == "172.30.1.1"
assert [n["name"] for n in c["east"]["nodes"]] == ["node1", "node2"]
east = {p["name"]: p for p in c["east"]["pods"]}
assert "helloworld-v1-0" in east and "helloworld-v2-0" not in east, east.keys()
assert east["helloworld-v1-0"]["labels"]["version"] == "v1"
# the workloads' pods (not the agents' own in ksteer-system, which the lab's kubelet runs on every node and the gateway)
assert {p["node"] for p in c["east"]["pods"] if p["namespace"] != "ksteer-system"} == {"node1", "node2"}, "pods spread over the nodes"
west = {p["name"] for p in c["west-2.b"]["pods"]}
for d in ("productpage-v1-0", "reviews-v1-0", "reviews-v2-0", "reviews-v3-0", "ratings-v1-0", "details-v1-0", "helloworld-v2-0"):
    assert d in west, (d, west)
svc = {s["name"]: s for s in c["west-2.b"]["services"]}
assert svc["productpage"]["ports"] == [{"name": "http", "port": 9080}], svc["productpage"]
PY

# pods answer; across nodes, directly and through the ClusterIP
HW=$(vip east hello helloworld)
SLEEP_NODE=$(python3 -c 'import json,sys; print([p["node"] for p in json.load(open(sys.argv[1]))["clusters"][0]["pods"] if p["name"]=="sleep-0"][0])' "$tmp/status")
HW_IP=$(python3 -c 'import json,sys; print([p["ip"] for p in json.load(open(sys.argv[1]))["clusters"][0]["pods"] if p["name"]=="helloworld-v1-0"][0])' "$tmp/status")
HW_NODE=$(python3 -c 'import json,sys; print([p["node"] for p in json.load(open(sys.argv[1]))["clusters"][0]["pods"] if p["name"]=="helloworld-v1-0"][0])' "$tmp/status")
out=$("$KSTEER" lab exec east hello/sleep -- curl -s -m 3 "http://$HW_IP:5000/hello")
[ "$out" = "Hello version: v1, instance: helloworld-v1-0, cluster: east" ] &&
	ok "pod to pod ($SLEEP_NODE to $HW_NODE): $out" || bad "pod to pod" "$out"
out=$("$KSTEER" lab exec east hello/sleep -- curl -s -m 3 "http://$HW:5000/hello")
[ "$out" = "Hello version: v1, instance: helloworld-v1-0, cluster: east" ] && ok "through the ClusterIP $HW" || bad "through the ClusterIP" "$out"
out=$("$KSTEER" lab exec east hello/sleep -- curl -s -m 3 -H 'x-test: 1' "http://$HW:5000/headers")
grep -qi "x-test: 1" <<<"$out" && ok "/headers echoes the request headers" || bad "/headers" "$out"
PP=$(vip west-2.b default productpage)
out=$("$KSTEER" lab exec west-2.b default/productpage-v1 -- curl -s -m 3 "http://$PP:9080/productpage")
grep -q "Hello version: v1, instance: productpage-v1-0, cluster: west-2.b" <<<"$out" && ok "bookinfo: productpage answers on 9080" || bad "bookinfo productpage" "$out"
"$KSTEER" lab exec east hello/sleep -- true && ok "lab exec: exit status is the command's (0)" || bad "lab exec exit 0"
"$KSTEER" lab exec east hello/sleep -- sh -c 'exit 7'
[ $? -eq 7 ] && ok "lab exec: exit status is the command's (7)" || bad "lab exec exit 7"
"$KSTEER" lab exec east hello/sleep -- cat /etc/resolv.conf | grep -q "search hello.svc.cluster.local" &&
	ok "lab exec: the pod's resolv.conf" || bad "lab exec resolv.conf"

# other clusters: their gateway, nothing else
WEST_POD=$(python3 -c 'import json,sys; print([p["ip"] for p in json.load(open(sys.argv[1]))["clusters"][1]["pods"]][0])' "$tmp/status")
probe() { # CLUSTER POD ADDR PORT: how a TCP connect ends
	"$KSTEER" lab exec "$1" "$2" -- python3 -c '
import socket, sys
s = socket.socket()
s.settimeout(2)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    print("connected")
except OSError as e:
    print(type(e).__name__)' "$3" "$4"
}
out=$(probe east hello/sleep "$WEST_2_B_GW_ADDR" 1)
[ "$out" = ConnectionRefusedError ] && ok "a pod reaches another cluster's gateway (a closed port there refuses)" || bad "gateway reachable" "$out"
out=$(probe east hello/sleep "$WEST_POD" 9080)
case "$out" in
connected | ConnectionRefusedError) bad "isolation: east cannot reach a west pod" "$out" ;;
*) ok "isolation: east cannot reach a west pod ($WEST_POD: $out)" ;;
esac
ip netns exec ksl-c2-gw curl -s -m 2 "http://$HW_IP:5000/" >/dev/null 2>&1 && bad "isolation: the west gateway cannot reach east pods" || ok "isolation: the west gateway cannot reach east pods"

# lab down leaves nothing: namespaces, cgroups, pins, processes, files
pids=$(python3 -c 'import json; print(" ".join(str(p) for p in json.load(open("/run/ksteer-lab/state.json"))["pids"]))')
"$KSTEER" lab down >"$tmp/down" 2>&1 || bad "lab down" "$(cat "$tmp/down")"
left=""
ip netns list | grep -q '^ksl-' && left="$left netns:$(ip netns list | grep -c '^ksl-')"
cg=$(awk '$9 == "cgroup2" {print $5; exit}' /proc/self/mountinfo)
[ -e "$cg/ksteer-lab" ] && left="$left cgroup"
ls /sys/fs/bpf/ksteer 2>/dev/null | grep -q '^lab-' && left="$left pins"
# a zombie has exited: only its parent's wait is missing (the lab's pods are the API servers' children)
for p in $pids; do kill -0 "$p" 2>/dev/null && [ "$(awk '{print $3}' /proc/$p/stat 2>/dev/null)" != Z ] && left="$left pid:$p"; done
ls /etc/netns 2>/dev/null | grep -q '^ksl-' && left="$left etc-netns"
[ -e /run/ksteer-lab ] && left="$left state"
bpftool link show | grep -q cgroup && left="$left cgroup-links"
[ -z "$left" ] && ok "lab down leaves nothing" || bad "lab down leaves nothing" "left:$left"
"$KSTEER" lab down >/dev/null 2>&1 && ok "lab down again: idempotent" || bad "lab down idempotent"

# a killed `up` is cleaned up too
"$KSTEER" lab up -f "$tmp/lab.yaml" >/dev/null 2>&1 &
up=$!
sleep 0.4
kill -9 $up 2>/dev/null
wait $up 2>/dev/null
"$KSTEER" lab down >/dev/null 2>&1
ip netns list | grep -q '^ksl-' || [ -e "$cg/ksteer-lab" ] && bad "down after a killed up" "$(ip netns list)" || ok "down after a killed up leaves nothing"
finish
