#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Hostile load on the shim from one pod: 20,000 idle or half-sent connections,
# then slowhttptest's slowloris (-H), slow body (-B) and slow read (-X); then
# TLS ClientHellos held open (and half-closed) on a gateway's 15443. Meanwhile
# another pod's requests are all answered within a few seconds, and the agents'
# CPU (utime+stime over a window) and descriptors stay bounded; afterwards
# every connection is gone.
. "$(dirname "$0")/lib.sh"
need_root
CONNS=${HOSTILE_CONNS:-20000}
SLOW_SECS=${HOSTILE_SLOW_SECS:-20}
NODE=lab-cluster1-node1
VICTIM_MAX=3   # seconds one of the other pod's requests may take
CPU_MAX=20     # percent of one CPU an agent may use while only hostile connections are held
FD_MAX=16384   # descriptors the node's agent may hold (it must not keep one per attacker connection)

command -v slowhttptest >/dev/null || { bad "slowhttptest installed (scripts/deps.sh)"; finish; exit 1; }
lab_fresh
shim_routes >"$tmp/routes.yaml"
# the attacker is hello/sleep, the bystander other/sleep: two pods on the same node
{
	"$KSTEER" lab apply cluster1 -n hello -f "$EX/sleep.yaml" &&
		"$KSTEER" lab apply cluster1 -n other -f "$EX/sleep.yaml" &&
		"$KSTEER" lab apply cluster1 -n hello -f "$EX/helloworld.yaml" -l service=helloworld &&
		"$KSTEER" lab apply cluster1 -n hello -f "$EX/helloworld.yaml" -l version=v1 &&
		"$KSTEER" lab apply cluster1 -n hello -f "$tmp/routes.yaml"
} >"$tmp/apply" 2>&1 || bad "apply sleep (twice), helloworld v1 and the routes" "$(cat "$tmp/apply")"
HW=$(vip cluster1 hello helloworld)
"$KSTEER" get frontends -i $NODE | grep -q "$HW:5000/tcp  shim" && ok "helloworld's frontend $HW:5000 goes through the shim" ||
	bad "shim frontend" "$("$KSTEER" get frontends -i $NODE)"
agent_pid() { # INSTANCE-KIND: node1 or gateway of a cluster
	python3 -c 'import json, sys
s = json.load(open("/run/ksteer-lab/state.json"))
c = [c for c in s["clusters"] if c["name"] == sys.argv[1]][0]
print(c["gatewayAgentPid"] if sys.argv[2] == "gateway" else c["nodes"][0]["agentPid"])' "$1" "$2"
}
APID=$(agent_pid cluster1 node)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
fds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
HZ=$(getconf CLK_TCK)
# cpu PID SECONDS: percent of one CPU the process used over the next SECONDS
cpu() {
	local t0 t1
	t0=$(ticks "$1")
	sleep "$2"
	t1=$(ticks "$1")
	echo $(((t1 - t0) * 100 / HZ / $2))
}
# victim LABEL: 100 requests from the other pod, each on its own connection; all 200 within
# VICTIM_MAX s (it gives up after 5 failures in a row: a dead shim would take minutes)
victim() { # LABEL [MAX]: MAX seconds per request, VICTIM_MAX unless given
	local max=${2:-$VICTIM_MAX}
	"$KSTEER" lab exec cluster1 other/sleep -- bash -c 'f=0
		for i in $(seq 100); do
			r=$(curl -s -o /dev/null -m 8 -w "%{http_code} %{time_total}" "$1")
			echo "$r"
			case $r in 200*) f=0 ;; *) f=$((f + 1)); [ $f -ge 5 ] && break ;; esac
		done' _ "http://$HW:5000/hello" >"$tmp/victim"
	python3 - "$tmp/victim" "$max" >"$tmp/vsum" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
good = [float(t) for c, t in rows if c == "200"]
slow = [t for t in good if t > float(sys.argv[2])]
codes = {}
for c, _ in rows:
    codes[c] = codes.get(c, 0) + 1
print(len(rows), len(good), len(slow), "%.3f" % max(good or [0]), " ".join("%s:%d" % kv for kv in sorted(codes.items())))
PY
	read -r n good slow worst codes <"$tmp/vsum"
	[ "$n" = 100 ] && [ "$good" = 100 ] && [ "$slow" = 0 ] &&
		ok "$1: the other pod's 100 requests all answered 200, slowest ${worst}s" ||
		bad "$1: the other pod's 100 requests all 200 within ${max}s" "sent $n (100 unless 5 failed in a row), answered 200: $good, slower than ${max}s: $slow, slowest ${worst}s, codes $codes"
}
# bounded LABEL PID: the agent's CPU over 5 s and its descriptors, printed and checked
bounded() {
	local c f
	c=$(cpu "$2" 5)
	f=$(fds "$2")
	echo "     $1: agent $2 CPU ${c}% of one core over 5 s, $f descriptors"
	[ "$c" -le $CPU_MAX ] && ok "$1: the agent's CPU near idle (${c}% <= ${CPU_MAX}%)" ||
		bad "$1: the agent's CPU near idle" "${c}% of one core over 5 s, bound ${CPU_MAX}%"
	[ "$f" -le $FD_MAX ] && ok "$1: the agent holds $f descriptors (<= $FD_MAX)" ||
		bad "$1: the agent's descriptors bounded" "$f open, bound $FD_MAX"
}

fd0=$(fds "$APID")
victim "before any load"
echo "     the node's agent $APID: $fd0 descriptors, limit $(awk '/Max open files/ {print $4}' "/proc/$APID/limits")"

# ---- 20,000 idle or half-sent connections from one pod ----
cat >"$tmp/flood.py" <<'PY'
# flood ADDR PORT N STOPFILE: N connections, odd ones with half a request head, held until STOPFILE
import json, os, resource, selectors, socket, sys, time
addr, n, stop = (sys.argv[1], int(sys.argv[2])), int(sys.argv[3]), sys.argv[4]
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (min(n + 1024, hard), hard))
sel = selectors.DefaultSelector()
st = {"attempted": 0, "established": 0, "refused": 0, "connect_timeout": 0, "closed_by_peer": 0, "answered": 0}
answers = {}
pending = {}  # socket -> time of connect
part = b"GET /hello HTTP/1.1\r\nHost: helloworld\r\nX-Half: "

def step(timeout):
    for key, ev in sel.select(timeout):
        s = key.fileobj
        if key.data == "connect":
            del pending[s]
            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                st["refused"] += 1
                sel.unregister(s)
                s.close()
                continue
            st["established"] += 1
            if st["established"] % 2:
                try:
                    s.send(part)
                except OSError:
                    pass
            sel.modify(s, selectors.EVENT_READ, "read")
        else:
            try:
                d = s.recv(4096)
            except OSError:
                d = b""
            if d:
                st["answered"] += 1
                line = d.split(b"\r\n")[0].decode(errors="replace")[:40]
                answers[line] = answers.get(line, 0) + 1
            else:
                st["closed_by_peer"] += 1
            sel.unregister(s)
            s.close()
    now = time.time()
    for s, t in list(pending.items()):
        if now - t > 10:
            st["connect_timeout"] += 1
            del pending[s]
            sel.unregister(s)
            s.close()

t0 = time.time()
for i in range(n):
    while len(pending) >= 512:
        step(0.05)
    s = socket.socket()
    s.setblocking(False)
    s.connect_ex(addr)
    st["attempted"] += 1
    pending[s] = time.time()
    sel.register(s, selectors.EVENT_WRITE, "connect")
while pending:
    step(0.05)
st["open"] = len(sel.get_map())
st["secs_to_open"] = round(time.time() - t0, 1)
print("opened", json.dumps(st), flush=True)
while not os.path.exists(stop):
    step(0.2)
st["open"] = len(sel.get_map())
st["answers"] = answers
print("held", json.dumps(st), flush=True)
PY
# two processes of the same pod: one process may not hold 20,000 descriptors (the hard limit)
"$KSTEER" lab exec cluster1 hello/sleep -- python3 "$tmp/flood.py" "$HW" 5000 $((CONNS / 2)) "$tmp/stop" >"$tmp/flood" 2>&1 &
flood=$!
"$KSTEER" lab exec cluster1 hello/sleep -- python3 "$tmp/flood.py" "$HW" 5000 $((CONNS - CONNS / 2)) "$tmp/stop" >"$tmp/flood2" 2>&1 &
flood2=$!
started_pids+=($flood $flood2)
for i in $(seq 120); do
	grep -q '^opened' "$tmp/flood" && grep -q '^opened' "$tmp/flood2" && break
	kill -0 $flood 2>/dev/null || kill -0 $flood2 2>/dev/null || break
	sleep 1
done
echo "     attacker: $(grep '^opened' "$tmp/flood" || tail -2 "$tmp/flood")"
echo "               $(grep '^opened' "$tmp/flood2" || tail -2 "$tmp/flood2")"
open=$(cat "$tmp/flood" "$tmp/flood2" | sed -n 's/^opened //p' | python3 -c 'import json,sys
v = [json.loads(l)["open"] for l in sys.stdin]
print(sum(v) if len(v) == 2 else "")' 2>/dev/null)
echo "     the node's agent now holds $(fds "$APID") descriptors"
victim "$CONNS idle or half-sent connections held"
bounded "$CONNS held connections" "$APID"
touch "$tmp/stop"
wait $flood $flood2
echo "     attacker at the end: $(grep '^held' "$tmp/flood" "$tmp/flood2" | cut -c1-400)"
[ -n "$open" ] || bad "the attacker opened its connections" "$(tail -3 "$tmp/flood")"

# all gone: the agent is back to about its descriptors before the flood
for i in $(seq 20); do [ "$(fds "$APID")" -le $((fd0 + 20)) ] && break; sleep 0.5; done
f=$(fds "$APID")
[ "$f" -le $((fd0 + 20)) ] && ok "after the flood the agent is back to $f descriptors (before: $fd0)" ||
	bad "connections cleaned up after the flood" "the agent holds $f descriptors, $fd0 before"

# ---- slowhttptest: slowloris, slow body, slow read, each while the other pod asks ----
slow() { # NAME MAX ARGS...: MAX seconds the other pod's requests may take meanwhile
	local name=$1 max=$2
	shift 2
	"$KSTEER" lab exec cluster1 hello/sleep -- slowhttptest "$@" -c 1000 -r 200 -l "$SLOW_SECS" >"$tmp/slow.log" 2>&1 &
	local p=$!
	started_pids+=($p)
	sleep 5
	echo "     slowhttptest $name: the agent holds $(fds "$APID") descriptors"
	victim "slowhttptest $name" "$max"
	bounded "slowhttptest $name" "$APID"
	wait $p
	echo "     slowhttptest $name: $(grep -a -m1 -o 'service available:[^\r]*' "$tmp/slow.log" | tail -1) (its last report: $(grep -a 'connected:\|closed:\|pending:' "$tmp/slow.log" | tail -3 | tr -s ' \t\n' ' '))"
}
slow "slowloris (-H)" "$VICTIM_MAX" -H -i 10 -u "http://$HW:5000/hello"
slow "slow body (-B)" "$VICTIM_MAX" -B -i 10 -s 65536 -u "http://$HW:5000/hello"
# the same pod serves the attacker's 1,000 slow reads of 1 MB (one libmicrohttpd thread, 2
# CPUs): its own answers take 1.3-3.1 s then, with the agent idle; the bound is the pod's
slow "slow read (-X)" 6 -X -w 10 -y 20 -n 5 -z 32 -k 3 -u "http://$HW:5000/bytes/1000000"
# upstream connections idle in the pool (kept for reuse, up to 512 for an hour) are not leaks
pooled() { shimstat "$NODE" pooledIdle; }
for i in $(seq 20); do [ $(($(fds "$APID") - $(pooled))) -le $((fd0 + 20)) ] && break; sleep 0.5; done
f=$(fds "$APID")
p=$(pooled)
[ $((f - p)) -le $((fd0 + 20)) ] && ok "after slowhttptest the agent is back to $f descriptors, $p of them pooled upstreams (before: $fd0)" ||
	bad "connections cleaned up after slowhttptest" "the agent holds $f descriptors, $p pooled, $fd0 before"

# ---- TLS ClientHellos held open on cluster2's gateway, three held and three half-closed ----
scenario_kit "$tmp/kit"
scenario_apply "$tmp/kit" cluster1 cluster2 hello service=helloworld version=v1 version=v2 version=v3 ||
	bad "apply the scenario" "$(cat "$tmp/apply")"
GPID=$(agent_pid cluster2 gateway)
"$KSTEER" lab exec cluster1 hello/sleep -- curl -s -m 5 -H 'end-user: jason' http://helloworld.hello:5000/hello >/dev/null
gfd0=$(fds "$GPID")
cat >"$tmp/hello.py" <<'PY'
# hellos ADDR PORT SNI STOPFILE: 3 ClientHellos held open and 3 sent then half-closed
import os, socket, ssl, sys, time
addr, sni, stop = (sys.argv[1], int(sys.argv[2])), sys.argv[3], sys.argv[4]
socks = []
for i in range(6):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    o = ssl.MemoryBIO()
    tls = ctx.wrap_bio(ssl.MemoryBIO(), o, server_hostname=sni)
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    s = socket.create_connection(addr, timeout=5)
    s.sendall(o.read())
    if i >= 3:
        s.shutdown(socket.SHUT_WR)
    socks.append(s)
print("sent", flush=True)
while not os.path.exists(stop):
    time.sleep(0.2)
PY
rm -f "$tmp/stop"
ip netns exec ksl-c1-gw python3 "$tmp/hello.py" 172.30.2.1 15443 outbound_.5000_.v2_.helloworld.hello.global "$tmp/stop" >"$tmp/hellos" 2>&1 &
hp=$!
started_pids+=($hp)
for i in $(seq 20); do grep -q sent "$tmp/hellos" && break; sleep 0.5; done
grep -q sent "$tmp/hellos" || bad "send the ClientHellos" "$(tail -3 "$tmp/hellos")"
sleep 1
bounded "3 ClientHellos held and 3 half-closed on the gateway" "$GPID"
r=$("$KSTEER" lab exec cluster1 hello/sleep -- curl -s -m 5 -H 'end-user: jason' http://helloworld.hello:5000/hello)
[[ $r == *"cluster: cluster2"* ]] && ok "meanwhile jason's request crosses the gateway ($r)" || bad "a request across the gateway while ClientHellos are held" "$r"
touch "$tmp/stop"
wait $hp
for i in $(seq 20); do [ "$(fds "$GPID")" -le $((gfd0 + 10)) ] && break; sleep 0.5; done
f=$(fds "$GPID")
[ "$f" -le $((gfd0 + 10)) ] && ok "the gateway agent is back to $f descriptors (before: $gfd0)" ||
	bad "the held TLS connections cleaned up" "the gateway agent holds $f descriptors, $gfd0 before"
"$KSTEER" status --instance $NODE >/dev/null && ok "the node's agent still answers" || bad "the node's agent alive at the end"
finish
