#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# `make bench`: ratios against a baseline measured in the same run, A/B
# interleaved, RUNS runs each (default 5), median with min-max
# (../shared/BENCH.md). Uses its own namespaces (ksb-*) and the lab.
# `scripts/bench.sh connect4` runs only the connect4/6 per-call rows (no lab).
set -euo pipefail
only=${1:-}
cd "$(dirname "$0")/.."
K=$PWD/.output/ksteer
GEN=$PWD/.output/bench/pktgen
SOCKHASH=$PWD/.output/bench/sockhash
CONNECT=$PWD/.output/bench/connect
RUNS=${RUNS:-5}
SECS=${SECS:-2}
cg=$(awk '$9 == "cgroup2" {print $5; exit}' /proc/self/mountinfo)
tmp=$(mktemp -d)
results=$tmp/results

cleanup() {
	[ -n "${agent_pid:-}" ] && kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null
	[ -n "${iperf_pid:-}" ] && kill "$iperf_pid" 2>/dev/null
	"$K" uninstall --instance ksb-guard >/dev/null 2>&1 || true
	"$K" uninstall --instance ksb-c4 >/dev/null 2>&1 || true
	[ -n "${stats_was:-}" ] && sysctl -qw kernel.bpf_stats_enabled="$stats_was"
	ip netns del ksb-c4 2>/dev/null || true
	if [ -d /sys/fs/bpf/ksb-floor ]; then
		for f in floor_connect4 floor_line floor_route; do
			bpftool cgroup detach "$cg/ksb-c4" connect4 pinned "/sys/fs/bpf/ksb-floor/$f" 2>/dev/null || true
		done
		rm -rf /sys/fs/bpf/ksb-floor
	fi
	rmdir "$cg/ksb-c4" 2>/dev/null || true
	ip netns del ksb-tx 2>/dev/null || true
	ip netns del ksb-rx 2>/dev/null || true
	ip netns del ksb-sh 2>/dev/null || true
	rmdir "$cg/ksb-bench" 2>/dev/null || true
	[ -n "${lab_used:-}" ] && { "$K" lab down >/dev/null 2>&1 || true; }
	rm -rf "$tmp"
}
trap cleanup EXIT

# median, min, max of the numbers on stdin
stats() { python3 -c 'import statistics,sys; v=[float(x) for x in sys.stdin.read().split()]; print(f"{statistics.median(v):.4g} {min(v):.4g} {max(v):.4g}")'; }
# row NAME UNIT FILE_A FILE_B: A/B ratio of medians, and each side
row() {
	read -r ma mina maxa <<<"$(stats <"$3")"
	read -r mb minb maxb <<<"$(stats <"$4")"
	ratio=$(python3 -c "print(f'{$ma / $mb:.2f}')")
	printf '| %s | %s (%s-%s) | %s (%s-%s) | %s | **%s** |\n' "$1" "$ma" "$mina" "$maxa" "$mb" "$minb" "$maxb" "$2" "$ratio" >>"$results"
}

echo "== machine: $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) CPUs, $RUNS runs of ${SECS}s"

# ---- connect4/connect6 per call with 10k services loaded (bpf_stats: run_time_ns/run_cnt) ----
# 10,000 ServiceEntries (VIPs 10.96.x.y and fd00:96::N, port 80, two endpoints each on
# :8080), 1,000 of them split 50/30/20 over three services by a VirtualService; the
# client connects in a netns where 10.200.0.0/15 is local, from a cgroup of its own where
# only this agent's programs run.
C4_CONNECTS=${C4_CONNECTS:-20000}
ip netns add ksb-c4
ip -n ksb-c4 link set lo up
ip -n ksb-c4 route add local 10.200.0.0/15 dev lo
mkdir -p "$cg/ksb-c4" "$tmp/c4pol"
python3 - "$tmp/c4pol/services.yaml" <<'EOF'
import sys
docs = []
for i in range(10000):
    a, b = i // 256, i % 256
    docs.append(f"""apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: s{i}, namespace: bench}}
spec:
  hosts: [s{i}.bench.svc.cluster.local]
  addresses: [10.96.{a}.{b}, "fd00:96::{i:x}"]
  ports: [{{number: 80, name: tcp, protocol: TCP, targetPort: 8080}}]
  resolution: STATIC
  location: MESH_INTERNAL
  endpoints: [{{address: 10.200.{a}.{b}}}, {{address: 10.201.{a}.{b}}}]
""")
for i in range(0, 10000, 10):
    h = [f"s{(i + k) % 10000}.bench.svc.cluster.local" for k in (0, 1, 2)]
    docs.append(f"""apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: split{i}, namespace: bench}}
spec:
  hosts: [{h[0]}]
  tcp:
  - route:
    - {{destination: {{host: {h[0]}}}, weight: 50}}
    - {{destination: {{host: {h[1]}}}, weight: 30}}
    - {{destination: {{host: {h[2]}}}, weight: 20}}
""")
open(sys.argv[1], "w").write("---\n".join(docs))
EOF
rm -f "$tmp/ready"
"$K" agent --instance ksb-c4 --cgroup ksb-c4 --policy "$tmp/c4pol" --netns ksb-c4 --no-dns \
	--sockmap off --ready-file "$tmp/ready" >"$tmp/c4agent.log" 2>&1 &
agent_pid=$!
for _ in $(seq 600); do [ -e "$tmp/ready" ] && break; sleep 0.1; done
[ -e "$tmp/ready" ] || { echo "Error: the connect4 agent did not start: $(cat "$tmp/c4agent.log")" >&2; exit 1; }
# the programs behind this instance's links, not other instances' of the same name
c4_prog() { bpftool -j link show pinned "/sys/fs/bpf/ksteer/ksb-c4/link_$1" |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["prog_id"])'; }
c4_stats() { bpftool -j prog show id "$1" |
	python3 -c 'import json,sys; p=json.load(sys.stdin); print(p.get("run_time_ns", 0), p.get("run_cnt", 0))'; }
# ns per call of program ID over one run of the client: c4_run ID FIRST COUNT PORT
c4_run() {
	local t0 n0 t1 n1
	read -r t0 n0 <<<"$(c4_stats "$1")"
	# into the cgroup first: ip netns exec mounts a sysfs of its own over /sys
	sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' sh "$cg/ksb-c4" \
		ip netns exec ksb-c4 taskset -c 0 "$CONNECT" "$2" "$3" "$4" "$C4_CONNECTS" >/dev/null
	read -r t1 n1 <<<"$(c4_stats "$1")"
	python3 -c "print(f'{($t1 - $t0) / max($n1 - $n0, 1):.0f}')"
}
c4_id=$(c4_prog connect4)
c6_id=$(c4_prog connect6)
# the floors (selftests/bench/floor.bpf.c), beside ksteer's on the same cgroup and
# after it: a program that only returns, one that reads one cold line of a table as
# big as the slots', one that then keeps a getpeername record as ksteer does
floors="floor_connect4 floor_line floor_route"
bpftool prog loadall "$PWD/.output/bench/floor.bpf.o" /sys/fs/bpf/ksb-floor
for f in $floors; do
	bpftool cgroup attach "$cg/ksb-c4" connect4 pinned "/sys/fs/bpf/ksb-floor/$f" multi
done
floor_prog() { bpftool -j prog show pinned "/sys/fs/bpf/ksb-floor/$1" |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'; }
stats_was=$(sysctl -n kernel.bpf_stats_enabled)
sysctl -qw kernel.bpf_stats_enabled=1
for f in $floors; do read -r "${f}_t0" "${f}_n0" <<<"$(c4_stats "$(floor_prog "$f")")"; done
echo "-- connect4/6 run time per call, 10k services, $C4_CONNECTS connects per run"
for r in $(seq "$RUNS"); do
	c4_run "$c4_id" 10.96.0.0 10000 80 >>"$tmp/c4vip"
	c4_run "$c4_id" 10.200.0.0 10000 8080 >>"$tmp/c4miss"
	c4_run "$c6_id" fd00:96:: 10000 80 >>"$tmp/c6vip"
	c4_run "$c6_id" ::ffff:10.96.0.0 10000 80 >>"$tmp/c6mapped"
	echo "   run $r: connect4 VIP $(tail -1 "$tmp/c4vip")  not a VIP $(tail -1 "$tmp/c4miss")" \
		" connect6 VIP $(tail -1 "$tmp/c6vip")  IPv4-mapped VIP $(tail -1 "$tmp/c6mapped") ns"
done
for f in $floors; do read -r "${f}_t1" "${f}_n1" <<<"$(c4_stats "$(floor_prog "$f")")"; done
sysctl -qw kernel.bpf_stats_enabled="$stats_was"
stats_was=
kill "$agent_pid" && wait "$agent_pid" 2>/dev/null || true
agent_pid=
"$K" uninstall --instance ksb-c4 >/dev/null
ip netns del ksb-c4
c4_row() {
	read -r m lo hi <<<"$(stats <"$2")"
	printf '| %s | %s (%s-%s) | ns per call |\n' "$1" "$m" "$lo" "$hi" >>"$tmp/c4rows"
}
c4_row "connect4 to a VIP (1 in 10 split 50/30/20)" "$tmp/c4vip"
c4_row "connect4 to an address that is not a VIP" "$tmp/c4miss"
c4_row "connect6 to an IPv6 VIP" "$tmp/c6vip"
c4_row "connect6 to an IPv4-mapped VIP" "$tmp/c6mapped"
per_call() { # FLOOR: ns per call over all connect4 runs
	local t0=${1}_t0 t1=${1}_t1 n0=${1}_n0 n1=${1}_n1
	python3 -c "print(f'{(${!t1} - ${!t0}) / max(${!n1} - ${!n0}, 1):.0f}')"
}
fl=$(per_call floor_connect4) fline=$(per_call floor_line) froute=$(per_call floor_route)
{
	printf '| floor: a connect4 program that only returns (all connect4 runs) | %s | ns per call |\n' "$fl"
	printf '| floor_line: one cold line of an 8 MB table, at the address'"'"'s hash | %s | ns per call |\n' "$fline"
	printf '| floor_route: that line warm, the cookie, a record in an 8 MB ring, a counter | %s | ns per call |\n' "$froute"
	printf '| the least a routed connect with getpeername touches (line + route - floor) | %s | ns per call |\n' "$((fline + froute - fl))"
} >>"$tmp/c4rows"
c4_table() {
	echo "| program, 10k services loaded | median (min-max) | unit |"
	echo "|---|---|---|"
	cat "$tmp/c4rows"
}
if [ "$only" = connect4 ]; then
	echo
	c4_table
	exit 0
fi

# ---- the XDP guard: one veth, a packet generator in another namespace ----
ip netns add ksb-tx
ip netns add ksb-rx
ip link add g0 netns ksb-tx type veth peer name g1 netns ksb-rx
ip -n ksb-tx addr add 10.77.0.1/24 dev g0
ip -n ksb-rx addr add 10.77.0.2/24 dev g1
ip -n ksb-tx link set g0 up
ip -n ksb-rx link set g1 up
ip -n ksb-rx link set lo up
mac=$(ip -n ksb-rx -j link show g1 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["address"])')
mkdir -p "$cg/ksb-bench" "$tmp/pol"
printf 'table netdev ksb {\n chain in {\n  type filter hook ingress device "g1" priority 0;\n  udp dport 15443 counter drop\n }\n}\n' >"$tmp/ksb.nft"

guard_on() { # [MODE]
	rm -f "$tmp/ready"
	"$K" agent --instance ksb-guard --cgroup ksb-bench --policy "$tmp/pol" --netns ksb-rx --no-dns \
		--xdp-dev g1 --xdp-mode "${1:-auto}" --allow 10.77.0.0/24 --ready-file "$tmp/ready" >"$tmp/agent.log" 2>&1 &
	agent_pid=$!
	for _ in $(seq 100); do [ -e "$tmp/ready" ] && return 0; sleep 0.05; done
	echo "Error: the guard's agent did not start: $(cat "$tmp/agent.log")" >&2
	exit 1
}
guard_off() {
	kill "$agent_pid" && wait "$agent_pid" 2>/dev/null || true
	agent_pid=
	"$K" uninstall --instance ksb-guard >/dev/null
}
# drops per second of SECS of traffic from 64 sources outside the allowed network
flood() { # COUNTER-COMMAND
	ip netns exec ksb-tx taskset -c 0 "$GEN" g0 "$mac" 10.99.0.1 10.77.0.2 15443 "$SECS" >/dev/null
	python3 -c "print($($1) / $SECS)"
}
guard_drops() { "$K" get stats -i ksb-guard -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["guard_drop_denied"])'; }
ipt_drops() { ip netns exec ksb-rx iptables -t raw -L PREROUTING -v -x -n | awk '/udp dpt:15443/ {print $1}'; }
nft_drops() { ip netns exec ksb-rx nft list table netdev ksb | sed -n 's/.*counter packets \([0-9]*\).*/\1/p'; }
echo "-- XDP guard vs iptables raw vs nft ingress: drops per second"
for r in $(seq "$RUNS"); do
	guard_on
	flood guard_drops >>"$tmp/xdp"
	guard_off
	guard_on generic
	flood guard_drops >>"$tmp/xdpg"
	guard_off
	ip netns exec ksb-rx iptables -t raw -A PREROUTING -p udp --dport 15443 -j DROP
	flood ipt_drops >>"$tmp/ipt"
	ip netns exec ksb-rx iptables -t raw -F
	ip netns exec ksb-rx nft -f "$tmp/ksb.nft"
	flood nft_drops >>"$tmp/nft"
	ip netns exec ksb-rx nft delete table netdev ksb
	echo "   run $r: xdp $(tail -1 "$tmp/xdp")  generic xdp $(tail -1 "$tmp/xdpg")  iptables $(tail -1 "$tmp/ipt")  nft $(tail -1 "$tmp/nft")"
done
row "XDP guard drop rate vs iptables raw DROP (64 B UDP, same veth)" "pps" "$tmp/xdp" "$tmp/ipt"
row "XDP guard drop rate vs nft netdev ingress drop" "pps" "$tmp/xdp" "$tmp/nft"
row "XDP guard in generic mode, drop rate vs iptables raw DROP" "pps" "$tmp/xdpg" "$tmp/ipt"

echo "-- allowed traffic with the guard vs without: iperf3 TCP to 15443 from an allowed source"
ip netns exec ksb-rx iperf3 -s -p 15443 -D -I "$tmp/iperf.pid" >/dev/null
sleep 0.3
iperf_pid=$(cat "$tmp/iperf.pid")
tput() { ip netns exec ksb-tx taskset -c 0 iperf3 -c 10.77.0.2 -p 15443 -t "$SECS" -J |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e9)'; }
for r in $(seq "$RUNS"); do
	guard_on
	tput >>"$tmp/with"
	guard_off
	guard_on generic
	tput >>"$tmp/withg"
	guard_off
	tput >>"$tmp/without"
	echo "   run $r: native $(tail -1 "$tmp/with")  generic $(tail -1 "$tmp/withg")  none $(tail -1 "$tmp/without") Gbit/s"
done
row "allowed TCP throughput, native XDP guard vs none" "Gbit/s" "$tmp/with" "$tmp/without"
row "allowed TCP throughput, generic XDP guard vs none" "Gbit/s" "$tmp/withg" "$tmp/without"
kill "$iperf_pid" 2>/dev/null || true
iperf_pid=

# ---- the scenario's paths in the lab, against direct pod-to-pod ----
echo "-- the scenario in the lab: requests per second on keep-alive connections (wrk -t1 -c4)"
lab_used=1
"$K" lab down >/dev/null 2>&1 || true
"$K" lab up --splice --sockmap >/dev/null # both off by default; the rows switch them per run
eval "$("$K" lab env)"
ex=manifests/examples
"$K" lab apply cluster1 -n hello -f $ex/sleep.yaml >/dev/null
for c in cluster1 cluster2; do "$K" lab apply $c -n hello -f $ex/helloworld.yaml -l service=helloworld >/dev/null; done
"$K" lab apply cluster1 -n hello -f $ex/helloworld.yaml -l version=v1 >/dev/null
"$K" lab apply cluster2 -n hello -f $ex/helloworld.yaml -l version=v2 >/dev/null
"$K" lab apply cluster2 -n hello -f $ex/helloworld.yaml -l version=v3 >/dev/null
for f in ../shared/scenario/cluster1/*.yaml; do "$K" lab apply cluster1 -n hello -f "$f" >/dev/null 2>&1; done
for f in ../shared/scenario/cluster2/*.yaml; do "$K" lab apply cluster2 -n hello -f "$f" >/dev/null 2>&1; done
pod=$("$K" lab status -o json | python3 -c 'import json,sys; print([p["ip"] for p in json.load(sys.stdin)["clusters"][0]["pods"] if p["name"].startswith("helloworld-v1")][0])')
rps() { # URL [HEADER]
	"$K" lab exec cluster1 hello/sleep -- wrk -t1 -c4 -d"${SECS}s" ${2:+-H "$2"} "$1" |
		awk '/Requests\/sec/ {print $2}'
}
for r in $(seq "$RUNS"); do
	rps "http://$pod:5000/hello" >>"$tmp/direct"
	rps "http://helloworld.hello:5000/hello" >>"$tmp/local"
	rps "http://helloworld.hello:5000/hello" "end-user: jason" >>"$tmp/remote"
	echo "   run $r: direct $(tail -1 "$tmp/direct")  local (same node) $(tail -1 "$tmp/local")  cross-cluster $(tail -1 "$tmp/remote")"
done
row "scenario, others: shim to v1 on the same node (ISTIO_MUTUAL handed over in process) vs direct to the pod" "req/s" "$tmp/local" "$tmp/direct"
row "scenario, jason: shim + mTLS + gateway to cluster2 vs direct to a local pod" "req/s" "$tmp/remote" "$tmp/direct"

echo "-- the L4 in-kernel path: a new connection per request (wrk, Connection: close), ClusterIP vs pod IP"
printf 'apiVersion: v1\nkind: Service\nmetadata: {name: tcpecho}\nspec:\n  selector: {app: helloworld, version: v1}\n  ports: [{name: tcp-web, port: 7000, targetPort: 5000}]\n' >"$tmp/tcpecho.yaml"
"$K" lab apply cluster1 -n hello -f "$tmp/tcpecho.yaml" >/dev/null
l4vip=$("$K" lab status -o json | python3 -c 'import json,sys; print([s["clusterIP"] for s in json.load(sys.stdin)["clusters"][0]["services"] if s["name"] == "tcpecho"][0])')
stats_was=$(sysctl -n kernel.bpf_stats_enabled)
sysctl -qw kernel.bpf_stats_enabled=1
for r in $(seq "$RUNS"); do
	rps "http://$l4vip:7000/hello" "Connection: close" >>"$tmp/l4"
	rps "http://$pod:5000/hello" "Connection: close" >>"$tmp/l4direct"
	echo "   run $r: ClusterIP $(tail -1 "$tmp/l4")  pod IP $(tail -1 "$tmp/l4direct")"
done
connect_ns=$(bpftool -j prog show name ksteer_connect4 | python3 -c '
import json, sys
ps = json.load(sys.stdin)
t = sum(p.get("run_time_ns", 0) for p in ps); n = sum(p.get("run_cnt", 0) for p in ps)
print(f"{t / n:.0f} ns per call over {n} calls" if n else "no calls counted")')
sysctl -qw kernel.bpf_stats_enabled="$stats_was"
row "L4 in kernel: new connection + request rate, ClusterIP (connect4) vs pod IP" "req/s" "$tmp/l4" "$tmp/l4direct"

echo "-- app <-> shim, sockmap on vs off (a plain http route through the shim, new connections each run)"
cat >"$tmp/echo.yaml" <<'Y'
apiVersion: v1
kind: Service
metadata: {name: echo}
spec:
  selector: {app: helloworld, version: v1}
  ports: [{name: http, port: 8080, targetPort: 5000}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: echo}
spec:
  hosts: [echo]
  http:
  - match: [{headers: {x-bench: {exact: "1"}}}]
    route: [{destination: {host: echo}}]
  - route: [{destination: {host: echo}}]
Y
"$K" lab apply cluster1 -n hello -f "$tmp/echo.yaml" >/dev/null
for r in $(seq "$RUNS"); do
	"$K" sockmap --instance lab-cluster1-node1 on >/dev/null
	rps "http://echo.hello:8080/hello" >>"$tmp/smon"
	"$K" sockmap --instance lab-cluster1-node1 off >/dev/null
	rps "http://echo.hello:8080/hello" >>"$tmp/smoff"
	echo "   run $r: sockmap $(tail -1 "$tmp/smon")  TCP $(tail -1 "$tmp/smoff")"
done
row "app to shim request/response rate (plain http route), sockmap vs TCP" "req/s" "$tmp/smon" "$tmp/smoff"

echo "-- the gateway: in-kernel splice vs copy loop (new TLS connections from cluster1's gateway, a mesh certificate)"
"$K" cert mint --ca /run/ksteer-lab/cluster1/cacerts --ns hello --sa sleep --out "$tmp/cert" >/dev/null
cat >"$tmp/gwclient.py" <<'PY'
import socket, ssl, sys, time
d, what = sys.argv[1], sys.argv[2]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.load_cert_chain(d + "/cert-chain.pem", d + "/key.pem")
ctx.load_verify_locations("/run/ksteer-lab/ca/root-cert.pem")
ctx.check_hostname = False
def get(path):
    raw = socket.create_connection(("172.30.2.1", 15443), timeout=30)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as any proxy's client
    s = ctx.wrap_socket(raw, server_hostname="outbound_.5000_.v2_.helloworld.hello.global")
    s.sendall(b"GET " + path + b" HTTP/1.0\r\n\r\n")
    n = 0
    while True:
        x = s.recv(1 << 16)
        if not x:
            break
        n += len(x)
    s.close()
    return n
t = time.time()
if what == "mbps":
    n = get(b"/bytes/50000000")
    print(n / (time.time() - t) / 1e6)
else:
    for i in range(200):
        get(b"/hello")
    print(200 / (time.time() - t))
PY
gwc() { ip netns exec ksl-c1-gw python3 "$tmp/gwclient.py" "$tmp/cert" "$1"; }
for r in $(seq "$RUNS"); do
	"$K" splice --instance lab-cluster2-gateway on >/dev/null
	gwc mbps >>"$tmp/gw_on_mb"
	gwc rps >>"$tmp/gw_on_rps"
	"$K" splice --instance lab-cluster2-gateway off >/dev/null
	gwc mbps >>"$tmp/gw_off_mb"
	gwc rps >>"$tmp/gw_off_rps"
	echo "   run $r: splice $(tail -1 "$tmp/gw_on_mb") MB/s $(tail -1 "$tmp/gw_on_rps") conn/s   copy $(tail -1 "$tmp/gw_off_mb") MB/s $(tail -1 "$tmp/gw_off_rps") conn/s"
done
"$K" splice --instance lab-cluster2-gateway on >/dev/null
row "gateway throughput (50 MB over one TLS connection), splice vs copy loop" "MB/s" "$tmp/gw_on_mb" "$tmp/gw_off_mb"
row "gateway request rate (a new TLS connection per request), splice vs copy loop" "conn/s" "$tmp/gw_on_rps" "$tmp/gw_off_rps"

echo "-- sockhash delete cost with 0, 1k and 10k sockets held (selftests/bench/sockhash.c)"
ip netns add ksb-sh
ip -n ksb-sh link set lo up
for r in $(seq "$RUNS"); do
	for n in 0 1000 10000; do ip netns exec ksb-sh "$SOCKHASH" $n >>"$tmp/del$n"; done
	echo "   run $r: 0: $(tail -1 "$tmp/del0") ns  1k: $(tail -1 "$tmp/del1000") ns  10k: $(tail -1 "$tmp/del10000") ns"
done
ip netns del ksb-sh
row "sockhash delete with 1k sockets held vs none" "ns" "$tmp/del1000" "$tmp/del0"
row "sockhash delete with 10k sockets held vs none" "ns" "$tmp/del10000" "$tmp/del0"

echo
echo "connect4 run time (kernel.bpf_stats_enabled): $connect_ns"
echo
c4_table
echo
echo "| measure | ksteer median (min-max) | baseline median (min-max) | unit | ratio |"
echo "|---|---|---|---|---|"
cat "$results"
