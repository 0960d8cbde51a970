#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# The agent on its own cgroups, outside the lab: coexistence with another program
# on the same hooks, map sizes and a full map, the ConfigMap swap, uninstall.
. "$(dirname "$0")/lib.sh"
need_root

cg=$(awk '$9 == "cgroup2" {print $5; exit}' /proc/self/mountinfo)
base=$cg/ksteer-agent-test
agents=()
on_exit() {
	for p in "${agents[@]}" "${started_pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${agents[@]}" "${started_pids[@]}"; do wait "$p" 2>/dev/null; done
	for i in t-child t-parent t-small t-cm t-dns t-old t-ready; do "$KSTEER" uninstall --instance $i >/dev/null 2>&1; done
	rmdir "$base/child/run" "$base/child" "$base/cm" "$base/old" "$base/small" "$base/dns/run" "$base/dns" "$base/ready" "$base" 2>/dev/null
	ip netns del ksl-agent-test 2>/dev/null
}
trap 'on_exit; cleanup' EXIT
mkdir -p "$base/child/run" "$base/small" "$base/cm"
# clients and backends live in a namespace of their own: nothing they send leaves it
ip netns add ksl-agent-test && ip -n ksl-agent-test link set lo up

# two backends on loopback
for port in 18081 18082; do
	mkdir -p "$tmp/www$port" && echo "backend $port" >"$tmp/www$port/index.html"
	ip netns exec ksl-agent-test python3 -m http.server $port --bind 127.0.0.1 --directory "$tmp/www$port" >/dev/null 2>&1 &
	started_pids+=($!)
done
for port in 18081 18082; do
	for _ in $(seq 100); do ip netns exec ksl-agent-test curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.05; done
done

svc() { # NAME VIP PORT TARGET
	printf 'apiVersion: v1\nkind: Service\nmetadata: {name: %s, namespace: t}\nspec: {clusterIP: %s, selector: {app: %s}, ports: [{name: tcp-web, port: %s, targetPort: %s}]}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: %s-0, namespace: t, labels: {app: %s}}\nstatus: {podIP: 127.0.0.1}\n' \
		"$1" "$2" "$1" "$3" "$4" "$1" "$1"
}
start_agent() { # INSTANCE CGROUP POLICY [ARGS...]
	local inst=$1 cgp=$2 pol=$3
	shift 3
	"$KSTEER" agent --instance "$inst" --cgroup "$cgp" --policy "$pol" --ready-file "$tmp/$inst.ready" "$@" >"$tmp/$inst.log" 2>&1 &
	agents+=($!)
	for _ in $(seq 100); do [ -e "$tmp/$inst.ready" ] && return 0; kill -0 "${agents[-1]}" 2>/dev/null || break; sleep 0.05; done
	return 1
}
in_cgroup() { # DIR CMD...: in that cgroup and the test's namespace
	local d=$1
	shift
	bash -c 'echo $$ > "$0/cgroup.procs" && exec ip netns exec ksl-agent-test "$@"' "$d" "$@"
}

# -- another program on the same hooks keeps working: a second, independent instance
# attached to the parent cgroup. Programs of the child run first, then the parent's.
mkdir -p "$tmp/pc" "$tmp/pp"
svc one 10.250.0.1 80 18081 >"$tmp/pc/a.yaml"
svc two 10.250.0.2 80 18082 >"$tmp/pp/a.yaml"
start_agent t-child ksteer-agent-test/child "$tmp/pc" || bad "agent t-child starts" "$(cat "$tmp/t-child.log")"
start_agent t-parent ksteer-agent-test "$tmp/pp" || bad "agent t-parent starts" "$(cat "$tmp/t-parent.log")"
a=$(in_cgroup "$base/child/run" curl -s -m 2 http://10.250.0.1/)
b=$(in_cgroup "$base/child/run" curl -s -m 2 http://10.250.0.2/)
[ "$a" = "backend 18081" ] && [ "$b" = "backend 18082" ] &&
	ok "both programs run: the child's routes VIP one, the parent's VIP two" || bad "both programs run" "one: $a" "two: $b"
n=$(bpftool cgroup show "$base/child" | grep -c connect4)
[ "$n" -ge 1 ] && ok "attached through links: bpftool cgroup show lists them" || bad "bpftool cgroup show" "$(bpftool cgroup show "$base/child")"

# -- sockets with the agent's SO_MARK (its own) are never redirected
self0=$(stat t-child connect_self)
out=$(in_cgroup "$base/child/run" python3 -c '
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, 36, 0x6b73)  # SO_MARK, the agent default --self-mark
s.settimeout(1)
try:
    s.connect(("10.250.0.1", 80)); print("connected", s.getpeername()[0])
except OSError as e:
    print(type(e).__name__)')
self1=$(stat t-child connect_self)
[ "$out" != "connected 10.250.0.1" ] && [ "$self1" -eq $((self0 + 1)) ] &&
	ok "a socket with the agent's mark is not redirected ($out; connect_self +1)" || bad "self mark" "$out" "connect_self $self0 -> $self1"

# -- a full map is an error that names it, and nothing of that policy is applied
mkdir -p "$tmp/ps"
{ svc s1 10.250.1.1 80 18081; echo ---; svc s2 10.250.1.2 80 18081; } >"$tmp/ps/a.yaml"
start_agent t-small ksteer-agent-test/small "$tmp/ps" --max-frontends 1 || bad "agent t-small starts" "$(cat "$tmp/t-small.log")"
grep -q "map ks_frontends is full" "$tmp/t-small.log" && ok "a full map is an error naming it: $(grep -o 'Error: map ks_frontends[^(]*' "$tmp/t-small.log" | head -1)" ||
	bad "full map named" "$(cat "$tmp/t-small.log")"
m=$(bpftool -j map show pinned /sys/fs/bpf/ksteer/t-small/ks_frontends | python3 -c 'import json,sys; print(json.load(sys.stdin)["max_entries"])')
[ "$m" = 2 ] && ok "map sizes come from flags (--max-frontends 1: 2 entries, two generations)" || bad "map size from flags" "max_entries $m"

# -- a ConfigMap volume: files are symlinks through ..data, swapped by one rename
mkdir -p "$tmp/cm/..v1" "$tmp/cm/..v2"
svc cm 10.250.2.1 80 18081 >"$tmp/cm/..v1/svc.yaml"
svc cm 10.250.2.1 80 18082 >"$tmp/cm/..v2/svc.yaml"
ln -s ..v1 "$tmp/cm/..data"
ln -s ..data/svc.yaml "$tmp/cm/svc.yaml"
start_agent t-cm ksteer-agent-test/cm "$tmp/cm" || bad "agent t-cm starts" "$(cat "$tmp/t-cm.log")"
mkdir -p "$base/cm/run"
a=$(in_cgroup "$base/cm/run" curl -s -m 2 http://10.250.2.1/)
ln -s ..v2 "$tmp/cm/..data_tmp" && mv -T "$tmp/cm/..data_tmp" "$tmp/cm/..data"
sleep 0.5
b=$(in_cgroup "$base/cm/run" curl -s -m 2 http://10.250.2.1/)
rmdir "$base/cm/run"
[ "$a" = "backend 18081" ] && [ "$b" = "backend 18082" ] && ok "a ConfigMap ..data swap is picked up" || bad "ConfigMap swap" "before: $a" "after: $b"

# -- mesh DNS with an upstream: mesh names answered by the agent, the rest forwarded
# (a tiny resolver in the test's namespace answers every A query with 192.0.2.7; for
# forge.example.com it first sends forgeries from its own address: a wrong ID, then the
# right ID with another question; slow.example.com it never answers)
ip netns exec ksl-agent-test python3 - >/dev/null 2>&1 <<'PY' &
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.53", 53))
def answer(id, question, addr):
    return (id + b"\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00" + question +
            b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04" + bytes(addr))
while True:
    q, a = s.recvfrom(512)
    end = q.index(b"\0", 12) + 5
    name = q[12:end - 4].lower()
    if name == b"\x04slow\x07example\x03com\x00":
        continue
    if name == b"\x05forge\x07example\x03com\x00":
        s.sendto(answer(bytes([q[0] ^ 0x5a, q[1]]), q[12:end], [6, 6, 6, 6]), a)
        s.sendto(answer(q[:2], b"\x05forgf" + q[18:end], [6, 6, 6, 7]), a)
    s.sendto(answer(q[:2], q[12:end], [192, 0, 2, 7]), a)
PY
started_pids+=($!)
# the resolver must be bound before the first query, or that one meets a port unreachable
for i in $(seq 100); do
	ip netns exec ksl-agent-test ss -Hunl 'sport = :53' | grep -q 127.0.0.53 && break
	sleep 0.1
done
mkdir -p "$tmp/pd" "$base/dns/run"
svc dnssvc 10.250.3.1 80 18081 >"$tmp/pd/a.yaml"
start_agent t-dns ksteer-agent-test/dns "$tmp/pd" --netns ksl-agent-test --dns-upstream 127.0.0.53 ||
	bad "agent t-dns starts" "$(cat "$tmp/t-dns.log")"
a=$(in_cgroup "$base/dns/run" dig +short +tries=1 +timeout=2 @10.96.0.10 dnssvc.t.svc.cluster.local)
b=$(in_cgroup "$base/dns/run" dig +short +tries=1 +timeout=2 @10.96.0.10 example.com)
c=$(in_cgroup "$base/dns/run" dig +tries=1 +timeout=2 @10.96.0.10 nothing.t.svc.cluster.local | grep -o 'status: [A-Z]*')
d=$(in_cgroup "$base/dns/run" dig +tries=1 +timeout=2 @10.96.0.10 example.com | grep -o 'SERVER: [0-9.]*#53')
[ "$a" = 10.250.3.1 ] && [ "$b" = 192.0.2.7 ] && [ "$c" = "status: NXDOMAIN" ] && [ "$d" = "SERVER: 10.96.0.10#53" ] &&
	ok "mesh DNS: a Service answered by the agent, example.com forwarded upstream, unknown mesh name NXDOMAIN, replies from the resolver asked" ||
	bad "mesh DNS with an upstream" "service: $a" "forwarded: $b" "unknown: $c" "server: $d" "$("$KSTEER" status --instance t-dns | grep shim)"
# forged answers from the upstream's own address (wrong ID, wrong question) are not taken;
# an upstream that does not answer is a SERVFAIL within the resolver's timeout (3 s)
a=$(in_cgroup "$base/dns/run" dig +short +tries=1 +timeout=3 @10.96.0.10 forge.example.com)
t0=$(date +%s%N)
b=$(in_cgroup "$base/dns/run" dig +tries=1 +timeout=6 @10.96.0.10 slow.example.com | grep -o 'status: [A-Z]*')
ms=$((($(date +%s%N) - t0) / 1000000))
m=$(shimstat t-dns dns.mismatched)
to=$(shimstat t-dns dns.timeouts)
[ "$a" = 192.0.2.7 ] && [ "$m" -ge 2 ] && [ "$b" = "status: SERVFAIL" ] && [ "$to" = 1 ] && [ "$ms" -lt 5000 ] &&
	ok "mesh DNS: forged answers (wrong ID, wrong question) ignored ($m counted), the true one passed on; no answer upstream: SERVFAIL in $ms ms" ||
	bad "mesh DNS forged answers and timeout" "forge.example.com: $a (want 192.0.2.7)" "mismatched: $m" "slow: $b after $ms ms, timeouts: $to" \
		"$("$KSTEER" status --instance t-dns | grep shim)"

# -- get works while the agent is down; uninstall removes every link, pin and map
kill "${agents[0]}"
wait "${agents[0]}" 2>/dev/null
"$KSTEER" get frontends -i t-child | grep -q "10.250.0.1:80/tcp  kernel" && ok "get frontends reads the pins while the agent is down" || bad "get while down" "$("$KSTEER" get frontends -i t-child 2>&1)"
a=$(in_cgroup "$base/child/run" curl -s -m 2 http://10.250.0.1/)
[ "$a" = "backend 18081" ] && ok "the datapath keeps routing while the agent is down" || bad "routing while down" "$a"
"$KSTEER" uninstall --instance t-child >/dev/null
[ ! -e /sys/fs/bpf/ksteer/t-child ] && [ "$(bpftool cgroup show "$base/child" | grep -c connect4)" = 0 ] &&
	ok "uninstall removes links, pins and maps" || bad "uninstall" "$(ls /sys/fs/bpf/ksteer/t-child 2>&1)" "$(bpftool cgroup show "$base/child")"
a=$(in_cgroup "$base/child/run" curl -s -m 2 http://10.250.0.2/)
[ "$a" = "backend 18082" ] && ok "the other instance keeps working after uninstall" || bad "other instance after uninstall" "$a"

# -- pins of layout 2 (maps named ksteer_*, cut by the kernel): refused, not adopted;
# uninstall removes them
mkdir -p /sys/fs/bpf/ksteer/t-old "$base/old"
bpftool map create /sys/fs/bpf/ksteer/t-old/ksteer_config type array key 4 value 32 entries 1 name ksteer_config
bpftool map create /sys/fs/bpf/ksteer/t-old/ksteer_guard_stats type percpu_array key 4 value 8 entries 6 name ksteer_guard_st
if start_agent t-old ksteer-agent-test/old "$tmp/pc"; then
	bad "layout 2 pins refused" "the agent started: $(cat "$tmp/t-old.log")"
else
	grep -q "have map layout 2 or older" "$tmp/t-old.log" && [ "$(bpftool cgroup show "$base/old" | grep -c connect4)" = 0 ] &&
		ok "layout 2 pins refused, nothing attached: $(grep -o 'Error: pins.*' "$tmp/t-old.log")" || bad "layout 2 pins refused" "$(cat "$tmp/t-old.log")"
fi
"$KSTEER" uninstall --instance t-old >/dev/null
[ ! -e /sys/fs/bpf/ksteer/t-old ] && ok "uninstall removes layout 2 pins" || bad "uninstall of layout 2 pins" "$(ls /sys/fs/bpf/ksteer/t-old 2>&1)"

# -- readiness (what a DaemonSet's probe asks): 503 while no policy is active, 200 once one
# is; the shim's counters as Prometheus text
mkdir -p "$tmp/pr" "$base/ready"
printf 'apiVersion: v1\nkind: Service\nmetadata: {name: bad}\nspec: {ports: [{port: 99999}]}\n' >"$tmp/pr/bad.yaml"
start_agent t-ready ksteer-agent-test/ready "$tmp/pr" --netns ksl-agent-test --admin 127.0.0.1 ||
	bad "agent t-ready starts" "$(cat "$tmp/t-ready.log")"
probe() { ip netns exec ksl-agent-test curl -s -m 2 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1"; }
r0=$(probe 15021/healthz/ready)
rm "$tmp/pr/bad.yaml"
svc okay 10.250.4.1 80 18081 >"$tmp/pr/a.yaml"
for _ in $(seq 40); do [ "$(probe 15021/healthz/ready)" = 200 ] && break; sleep 0.1; done
r1=$(probe 15021/healthz/ready)
[ "$r0" = 503 ] && [ "$r1" = 200 ] && ok "readiness: 503 while the only policy is refused, 200 once a good one is active" ||
	bad "readiness" "with a refused policy: $r0, after a good one: $r1" "$(tail -3 "$tmp/t-ready.log")"
ip netns exec ksl-agent-test curl -s -m 2 http://127.0.0.1:15020/stats/prometheus >"$tmp/prom"
grep -q '^# TYPE ksteer_shim_requests_total counter$' "$tmp/prom" && grep -q '^ksteer_shim_connections [0-9]' "$tmp/prom" &&
	[ "$(probe 15020/nothing)" = 404 ] && [ "$(probe 15021/stats/prometheus)" = 404 ] &&
	ok "stats: Prometheus text on 15020/stats/prometheus ($(grep -c '^ksteer_' "$tmp/prom") series); other paths 404" ||
	bad "stats" "$(head -5 "$tmp/prom")"
finish
