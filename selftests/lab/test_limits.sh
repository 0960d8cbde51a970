#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# The HTTP proxy's bounds, with small limits (lab up --limit): a pod over its
# connection cap gets 503 while another pod is served; a head that does not
# arrive in time gets 408; an idle connection is closed; a client that never
# reads a large answer leaves the agent's memory bounded; hostile slow clients
# leave the agent near idle. Each check reads the counter that moved.
. "$(dirname "$0")/lib.sh"
need_root

"$KSTEER" lab down >/dev/null 2>&1
"$KSTEER" lab up --limit max-conns-per-pod=40 --limit header-timeout=1s --limit idle-timeout=2s \
	--limit buffer=65536 >"$tmp/up" 2>&1 || { bad "lab up" "$(cat "$tmp/up")"; finish; exit 1; }
for f in "$EX/helloworld.yaml" "$EX/sleep.yaml"; do
	"$KSTEER" lab apply cluster1 -n hello -f "$f" >"$tmp/o" 2>&1 || bad "apply $(basename "$f")" "$(cat "$tmp/o")"
done
shim_routes >"$tmp/routes.yaml"
{
	"$KSTEER" lab apply cluster1 -n other -f "$EX/sleep.yaml" && # a second client pod
		"$KSTEER" lab apply cluster1 -n hello -f "$tmp/routes.yaml"
} >"$tmp/o" 2>&1 || bad "apply a second client and a route through the shim" "$(cat "$tmp/o")"
HW=$(vip cluster1 hello helloworld)
NODE=lab-cluster1-node1
AGENT=$(pgrep -f "ksteer agent .*--instance $NODE( |$)" | head -1)
[ -n "$AGENT" ] && ok "the node agent runs (pid $AGENT)" || bad "node agent pid"
cpu() { awk '{print $14 + $15}' "/proc/$AGENT/stat"; } # utime+stime, in clock ticks
r=$(ip netns exec ksl-c1-n1 curl -s -m 2 http://127.0.0.1:15021/healthz/ready)
[ "$r" = ready ] && ok "the lab's node agent answers its readiness probe (lab up gives every agent --admin ::)" ||
	bad "readiness in the lab" "$r"
rss() { awk '/VmRSS/ {print $2}' "/proc/$AGENT/status"; } # kB

# 1. the per-pod cap: 60 connections held by sleep, 40 admitted, the rest refused with a 503
"$KSTEER" lab exec cluster1 hello/sleep -- python3 - "$HW" >"$tmp/cap" 2>&1 <<'PY' &
import socket, sys, time
held, refused = [], 0
for i in range(60):
    s = socket.create_connection((sys.argv[1], 5000), timeout=3)
    held.append(s)
time.sleep(0.5)
for s in held:
    s.setblocking(False)
    try:
        d = s.recv(4096)
        refused += d.startswith(b"HTTP/1.1 503") and b"connection limit" in d
    except BlockingIOError:
        pass
print(refused, flush=True)
time.sleep(3)  # held while the other pod asks
PY
hold=$!
started_pids+=($hold)
sleep 1.5
"$KSTEER" lab exec cluster1 other/sleep -- bash -c \
	"for i in \$(seq 20); do curl -s -m 3 -H 'Connection: close' http://$HW:5000/hello || echo FAIL; echo; done" |
	grep -v '^$' >"$tmp/other"
wait $hold
refused=$(head -1 "$tmp/cap")
if [ "$refused" = 20 ] && [ "$(grep -c 'Hello version' "$tmp/other")" = 20 ]; then
	ok "per-pod cap: 20 of 60 connections over the cap of 40 refused with a 503; the other pod got 20 of 20 answers"
else
	bad "per-pod cap" "refused: $(cat "$tmp/cap")" "other pod: $(sort "$tmp/other" | uniq -c)"
fi
[ "$(shimstat $NODE http.refusedPodLimit)" -ge 20 ] && ok "refusedPodLimit counted ($(shimstat $NODE http.refusedPodLimit))" ||
	bad "refusedPodLimit" "$(shimstat $NODE http)"

# 2. a head that does not complete in time: 408, counted; an idle connection: closed
"$KSTEER" lab exec cluster1 hello/sleep -- python3 - "$HW" >"$tmp/slow" 2>&1 <<'PY'
import socket, sys, time
s = socket.create_connection((sys.argv[1], 5000), timeout=5)
s.sendall(b"GET /hello HTTP/1.1\r\nHost: h\r\n")  # never the blank line
t = time.time()
d = s.recv(4096)
print(d.split(b"\r\n")[0].decode(), round(time.time() - t, 1))
i = socket.create_connection((sys.argv[1], 5000), timeout=5)  # says nothing at all
t = time.time()
print("idle closed" if i.recv(10) == b"" else "idle answered", round(time.time() - t, 1))
PY
read -r _ code _ secs <"$tmp/slow"
[ "$code" = 408 ] && ok "header timeout: 408 after ${secs}s (header-timeout=1s)" || bad "header timeout" "$(cat "$tmp/slow")"
grep -q "idle closed" "$tmp/slow" && ok "idle timeout: a silent connection closed ($(sed -n 2p "$tmp/slow"))" ||
	bad "idle timeout" "$(cat "$tmp/slow")"
[ "$(shimstat $NODE http.headTimeouts)" -ge 1 ] && [ "$(shimstat $NODE http.idleClosed)" -ge 1 ] &&
	ok "headTimeouts and idleClosed counted" || bad "timeout counters" "$(shimstat $NODE http)"

# 3. a client that asks for 100 MB and never reads: the agent holds a bounded amount
r0=$(rss)
"$KSTEER" lab exec cluster1 hello/sleep -- python3 - "$HW" >"$tmp/stall" 2>&1 <<'PY' &
import socket, sys, time
s = socket.create_connection((sys.argv[1], 5000))
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.sendall(b"GET /bytes/100000000 HTTP/1.1\r\nHost: h\r\n\r\n")
time.sleep(4)
print("held")
PY
stall=$!
started_pids+=($stall)
sleep 3
r1=$(rss)
bp=$(shimstat $NODE http.backpressured)
wait $stall
grow=$((r1 - r0))
[ "$grow" -lt 20000 ] && ok "a client that never reads a 100 MB answer: the agent grew ${grow} kB (bound 20 MB)" ||
	bad "unread answer held in memory" "RSS $r0 -> $r1 kB"
"$KSTEER" lab exec cluster1 hello/sleep -- curl -s -m 3 -o /dev/null -w '%{http_code}\n' "http://$HW:5000/hello" >"$tmp/after"
[ "$(cat "$tmp/after")" = 200 ] && ok "served after the stalled client went" || bad "after the stall" "$(cat "$tmp/after")"

# 4. slow clients cost no CPU: 30 half-sent heads and 30 silent connections for 3 s
c0=$(cpu)
"$KSTEER" lab exec cluster1 other/sleep -- python3 - "$HW" <<'PY' >/dev/null 2>&1
import socket, sys, time
s = []
for i in range(30):
    a = socket.create_connection((sys.argv[1], 5000)); a.sendall(b"GET / HTTP/1.1\r\nHo"); s.append(a)
    s.append(socket.create_connection((sys.argv[1], 5000)))
time.sleep(3)
PY
c1=$(cpu)
ticks=$((c1 - c0))
[ "$ticks" -lt 30 ] && ok "60 slow connections for 3 s: the agent used $ticks clock ticks of CPU (bound 30, i.e. < 10% of a core)" ||
	bad "slow clients cost CPU" "$ticks ticks in 3 s"
finish
