#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# The bounds of the shim's tunnels, at cluster2's gateway (15443, the copy loop) and at
# the node behind it (15008): held ClientHellos, complete and partial, and half-closed
# tunnels, either way, leave both agents near idle (CPU from /proc/PID/stat); the setup
# deadline closes a held ClientHello after 10 s; the idle timeout (20 s here, through
# KSTEER_TUNNEL_IDLE_MS) closes a tunnel nothing moves on; a pod that stops reading, or
# a client that does not read, keeps both agents' memory bounded (RSS) while 50 MB
# are pushed, and every byte still arrives; the node takes a PROXY v2 target only for a
# port its pod declares; a Gateway host ns/host exposes only that namespace's services.
. "$(dirname "$0")/lib.sh"
need_root
scenario_kit "$tmp/kit"
idle_ms=20000

KSTEER_TUNNEL_IDLE_MS=$idle_ms lab_fresh
scenario_apply "$tmp/kit" cluster1 cluster2 hello service=helloworld version=v1 version=v2 version=v3 ||
	bad "apply the scenario" "$(cat "$tmp/apply")"
gw() { shimstat lab-cluster2-gateway "$1"; }
node() { shimstat lab-cluster2-node1 "$1"; }
pids=$(python3 -c 'import json
for c in json.load(open("/run/ksteer-lab/state.json"))["clusters"]:
    if c["name"] == "cluster2":
        print(c["gatewayAgentPid"], c["nodes"][0]["agentPid"])')
read -r gw_pid node_pid <<<"$pids"
[ "$(gw tunnels.idleMs)" = $idle_ms ] && [ -d "/proc/${gw_pid:-0}" ] && [ -d "/proc/${node_pid:-0}" ] &&
	ok "agents up: gateway pid $gw_pid, node pid $node_pid, tunnel idle timeout ${idle_ms} ms" ||
	bad "agents" "pids '$pids', idleMs $(gw tunnels.idleMs)"

# clients dial the gateway from cluster1's gateway netns (on the WAN), as cluster1's sleep
"$KSTEER" cert mint --ca /run/ksteer-lab/cluster1/cacerts --ns hello --sa sleep --out "$tmp/c" >/dev/null
cat >"$tmp/c/dial.py" <<'PY'
import os, socket, ssl, time
d = os.path.dirname(os.path.abspath(__file__))
SNI = "outbound_.5000_.v2_.helloworld.hello.global"
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.load_cert_chain(d + "/cert-chain.pem", d + "/key.pem")
ctx.load_verify_locations("/run/ksteer-lab/ca/root-cert.pem")
ctx.check_hostname = False
def raw(timeout=30):
    s = socket.create_connection(("172.30.2.1", 15443), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s
def dial(timeout=30):
    return ctx.wrap_socket(raw(timeout), server_hostname=SNI)
def client_hello():
    """The bytes of a ClientHello for SNI, as a client would send them first."""
    i, o = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(i, o, server_hostname=SNI)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return o.read()
def cpu(pid):  # utime + stime, in clock ticks
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])
def rss_kib(pid):
    for l in open("/proc/%d/status" % pid):
        if l.startswith("VmRSS:"):
            return int(l.split()[1])
def read_all(s):
    data = bytearray()
    try:
        while True:
            x = s.recv(1 << 16)
            if not x:
                break
            data += x
    except (ssl.SSLError, OSError) as e:
        data += b"\nerror " + str(e).encode()
    return bytes(data)
PY

# ---- held tunnels: the agents' CPU, the setup deadline, the idle timeout ----
# H: 3 complete ClientHellos held (routed to the node, whose handshake waits, then ends at
#    its setup deadline: the gateway's tunnel is then half-closed); P: 3 partial ones
#    (the gateway's own setup deadline); S: 4 tunnels whose server side closed after its
#    answer, the client holding its side; C: 3 clients that half-close after a request the
#    pod answers 4, 8, 12 s later (one thread serves it: one after another)
ip netns exec ksl-c1-gw python3 - "$tmp/c" "$gw_pid" "$node_pid" >"$tmp/held" 2>&1 <<'PY'
import socket, sys, threading, time
sys.path.insert(0, sys.argv[1])
from dial import *
gw_pid, node_pid = int(sys.argv[2]), int(sys.argv[3])
hz = os.sysconf("SC_CLK_TCK")
hold, ends, answers = [], {}, {}
def watch(name, s):
    t = time.monotonic()
    data = read_all(s)
    ends[name] = (time.monotonic() - t, len(data))
S = []
for i in range(4):
    s = dial()
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    S.append(read_all(s))
    hold.append(s)  # the server side closed: kept open from here
print("S answers", sum(b"Hello version: v2" in a for a in S))
def half(i):
    s = dial()
    s.sendall(b"GET /delay/4000 HTTP/1.0\r\n\r\n")
    socket.socket.shutdown(s, socket.SHUT_WR)
    hold.append(s)
    answers[i] = read_all(s)
threads = [threading.Thread(target=half, args=(i,)) for i in range(3)]
hello = client_hello()
for i in range(3):
    s = raw()
    s.sendall(hello)
    hold.append(s)
    threads.append(threading.Thread(target=watch, args=("H%d" % i, s)))
    s = raw()
    s.sendall(hello[:60])
    hold.append(s)
    threads.append(threading.Thread(target=watch, args=("P%d" % i, s)))
for t in threads:
    t.start()
def window(name):
    c0, t0 = (cpu(gw_pid), cpu(node_pid)), time.monotonic()
    time.sleep(5)
    c1, t1 = (cpu(gw_pid), cpu(node_pid)), time.monotonic()
    print("cpu", name, "%.1f" % (100.0 * (c1[0] - c0[0]) / hz / (t1 - t0)),
          "%.1f" % (100.0 * (c1[1] - c0[1]) / hz / (t1 - t0)), flush=True)
start = time.monotonic()
time.sleep(1)
window("held")  # all held: H before the node's deadline, C half-closed, S server-closed
time.sleep(max(0, start + 12.5 - time.monotonic()))
window("after-deadline")  # H closed by the node, its gateway tunnel half-closed; S still held
for t in threads:
    t.join(30)
for k in sorted(ends):
    print("end", k, "%.1f" % ends[k][0], ends[k][1])
print("C answers", sum(b"200 OK" in a and b"Hello version: v2" in a for a in answers.values()))
time.sleep(max(0, start + 25 - time.monotonic()))  # S: the idle timeout, 20 s after their last byte
print("done", len(hold))
PY
read -r _ _ gw1 node1 < <(grep "^cpu held" "$tmp/held")
read -r _ _ gw2 node2 < <(grep "^cpu after-deadline" "$tmp/held")
python3 -c 'import sys; sys.exit(0 if all(float(x) < 5 for x in sys.argv[1:]) else 1)' \
	"${gw1:-100}" "${node1:-100}" "${gw2:-100}" "${node2:-100}" &&
	ok "CPU with 3 held ClientHellos, 3 partial ones, 4 server-closed and 3 client-half-closed tunnels: gateway ${gw1}% node ${node1}% over 5 s; after the setup deadline: gateway ${gw2}% node ${node2}% (under 5% of a core)" ||
	bad "agents busy with held tunnels (gateway%, node%)" "held: ${gw1:-?} ${node1:-?}; after the deadline: ${gw2:-?} ${node2:-?}" "$(cat "$tmp/held")"
grep -q "^S answers 4" "$tmp/held" && grep -q "^C answers 3" "$tmp/held" &&
	ok "the held tunnels' requests answered: 4 before their client held on, 3 after their client's half-close" ||
	bad "held tunnels' answers" "$(cat "$tmp/held")"
python3 - "$tmp/held" <<'PY' && ok "setup deadline: partial ClientHellos closed by the gateway, complete ones ended by the node, each after 10 s ($(grep '^end' "$tmp/held" | awk '{printf "%s=%ss ", $2, $3}'))" || bad "setup deadline" "$(cat "$tmp/held")"
import sys
e = {l.split()[1]: (float(l.split()[2]), int(l.split()[3])) for l in open(sys.argv[1]) if l.startswith("end ")}
ok = len(e) == 6 and all(9.0 <= t <= 12.0 for t, n in e.values())
ok = ok and all(e["P%d" % i][1] == 0 for i in range(3)) and all(e["H%d" % i][1] > 100 for i in range(3))
sys.exit(0 if ok else 1)
PY
st=$(gw tunnels.setupTimeouts)
[ "${st:-0}" -ge 3 ] && [ "$(node tunnels.setupTimeouts)" -ge 3 ] &&
	ok "setup timeouts counted: gateway $st, node $(node tunnels.setupTimeouts)" ||
	bad "setup timeouts counted" "gateway ${st:-?}, node $(node tunnels.setupTimeouts)"
it=$(gw tunnels.idleTimeouts)
# (the node's ends of S closed when their clients answered its close_notify)
[ "${it:-0}" -ge 4 ] &&
	ok "idle timeout: the gateway closed the held tunnels after ${idle_ms} ms without a byte ($it: S and the H it had left half-closed)" ||
	bad "idle timeout" "idleTimeouts: gateway ${it:-?}, node $(node tunnels.idleTimeouts)"

# ---- memory: a pod that stops reading, a client that does not read ----
# the pod's server is busy 9.9 s on another request; meanwhile a client pushes 50 MB at it
ip netns exec ksl-c1-gw python3 - "$tmp/c" "$gw_pid" "$node_pid" >"$tmp/mem" 2>&1 <<'PY'
import sys, threading, time
sys.path.insert(0, sys.argv[1])
from dial import *
pids = [int(sys.argv[2]), int(sys.argv[3])]
n = 50000000
def peak(seconds):
    base = [rss_kib(p) for p in pids]
    top = list(base)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        top = [max(t, rss_kib(p)) for t, p in zip(top, pids)]
        time.sleep(0.1)
    return [t - b for t, b in zip(top, base)]
busy = dial()
busy.sendall(b"GET /delay/9900 HTTP/1.0\r\n\r\n")
time.sleep(0.5)
up = dial(60)
sent = [0]
def push():
    up.sendall(b"POST / HTTP/1.0\r\nContent-Length: %d\r\n\r\n" % n)
    chunk = b"u" * (1 << 20)
    for i in range(n >> 20):
        up.sendall(chunk)
        sent[0] += len(chunk)
    up.sendall(b"u" * (n - sent[0]))
    sent[0] = n
th = threading.Thread(target=push)
th.start()
grown = peak(7)
at = sent[0]
th.join(60)
answer = read_all(up)
read_all(busy)
print("push", grown[0], grown[1], at, sent[0], b"Hello version: v2" in answer)
# a client that reads nothing of a 50 MB answer for 4 s
down = dial(60)
down.sendall(b"GET /bytes/%d HTTP/1.0\r\n\r\n" % n)
grown = peak(4)
data = read_all(down)
body = data.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in data else b""
print("pull", grown[0], grown[1], len(body), body[:251] == bytes(range(251)))
PY
read -r _ pg pn at sent answered < <(grep "^push" "$tmp/mem")
[ "${answered:-}" = True ] && [ "$sent" = 50000000 ] && [ "$at" -lt 50000000 ] && [ "$pg" -lt 16384 ] && [ "$pn" -lt 16384 ] &&
	ok "a pod that stops reading: the client was held at $((at / 1048576)) MiB of 50 MB; RSS grew gateway $pg KiB, node $pn KiB; then every byte went through and was answered" ||
	bad "pushing at a pod that does not read (grown KiB gateway, node; sent while held; all; answered)" "$(cat "$tmp/mem")"
read -r _ qg qn got intact < <(grep "^pull" "$tmp/mem")
[ "${intact:-}" = True ] && [ "$got" = 50000000 ] && [ "$qg" -lt 16384 ] && [ "$qn" -lt 16384 ] &&
	ok "a client that does not read a 50 MB answer for 4 s: RSS grew gateway $qg KiB, node $qn KiB; then all 50 MB arrived" ||
	bad "a client that does not read" "$(cat "$tmp/mem")"
p=$(gw tunnels.paused)
[ "${p:-0}" -gt 0 ] && ok "backpressure counted: gateway paused a side $p time(s), node $(node tunnels.paused)" ||
	bad "paused counter" "gateway ${p:-?}"
# ---- the inbound side (15008) takes a PROXY v2 target only for a port its pod declares ----
v2ip=$(python3 -c 'import json
for c in json.load(open("/run/ksteer-lab/state.json"))["clusters"]:
    if c["name"] == "cluster2":
        print([p["ip"] for p in c["pods"] if p.get("labels", {}).get("version") == "v2"][0])')
rp0=$(node tunnels.refusedPort)
ip netns exec ksl-c2-gw python3 - "$tmp/c" "$v2ip" >"$tmp/pp" 2>&1 <<'PY'
import socket, struct, sys
sys.path.insert(0, sys.argv[1])
from dial import *
hello = client_hello()
for port in (5000, 22):  # helloworld's containerPort; a port it does not declare
    s = socket.create_connection(("10.2.0.11", 15008), timeout=10)
    s.sendall(b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c" + socket.inet_aton("172.30.1.1") +
              socket.inet_aton(sys.argv[2]) + struct.pack("!HH", 40000, port) + hello)
    print(port, len(read_all(s)))
PY
read -r _ got5000 < <(grep "^5000" "$tmp/pp")
read -r _ got22 < <(grep "^22 " "$tmp/pp")
[ "${got5000:-0}" -gt 100 ] && [ "${got22:-1}" = 0 ] && [ "$(node tunnels.refusedPort)" = $((rp0 + 1)) ] &&
	ok "inbound: a PROXY header naming the v2 pod's declared port 5000 gets a handshake, its port 22 is refused and counted" ||
	bad "inbound PROXY target port" "$(cat "$tmp/pp")" "refusedPort $rp0 -> $(node tunnels.refusedPort)"

# ---- a Gateway host ns/host exposes that namespace's services only ----
expose() { # NS-PART: cluster2's Gateway with hosts [NS-PART/*.global]; then one dial's outcome
	sed "s|\"\*\.global\"|\"$1/*.global\"|" "$SHARED/scenario/cluster2/02-gateway.yaml" >"$tmp/gw-$1.yaml"
	"$KSTEER" lab apply cluster2 -n istio-system -f "$tmp/gw-$1.yaml" >/dev/null 2>&1
	sleep 2
	ip netns exec ksl-c1-gw python3 - "$tmp/c" <<'PY' 2>&1
import sys
sys.path.insert(0, sys.argv[1])
from dial import *
try:
    s = dial(10)
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    print("answered" if b"Hello version: v2" in read_all(s) else "no answer")
except (ssl.SSLError, OSError) as e:
    print("refused", e)
PY
}
e0=$(gw gateway.refusedExposure)
r1=$(expose other)
e1=$(gw gateway.refusedExposure)
r2=$(expose hello)
r3=$(expose .)
e3=$(gw gateway.refusedExposure)
[[ $r1 == refused*UNRECOGNIZED_NAME* ]] && [ "$e1" = $((e0 + 1)) ] && [ "$r2" = answered ] &&
	[[ $r3 == refused*UNRECOGNIZED_NAME* ]] && [ "$e3" = $((e0 + 2)) ] &&
	ok "Gateway hosts: other/*.global refuses hello's service, hello/*.global exposes it, ./*.global (istio-system) does not; refusals counted" ||
	bad "Gateway ns/host" "other: $r1" "hello: $r2" "./: $r3" "refusedExposure $e0 -> $e1 -> $e3"
finish
