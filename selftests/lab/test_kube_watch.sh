#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# `ksteer agent --kubeconfig`: an extra agent watches cluster1's API in the lab and
# follows kubectl's creates, updates and deletes; while the API server is down
# no policy is lost and after its restart changes are followed; an agent whose
# resourceVersion was compacted away (4200 changes while it was frozen) gets
# 410 Gone and lists again.
. "$(dirname "$0")/lib.sh"
need_root

cg=$(awk '$9 == "cgroup2" {print $5; exit}' /proc/self/mountinfo)
base=$cg/ksteer-kwatch-test
agent=
on_exit() {
	[ -n "$agent" ] && kill "$agent" 2>/dev/null && wait "$agent" 2>/dev/null
	"$KSTEER" uninstall --instance kwatch >/dev/null 2>&1
	rmdir "$base" 2>/dev/null
	ip netns del ksl-kwatch 2>/dev/null
}
trap 'on_exit; cleanup' EXIT

if ! command -v kubectl >/dev/null; then
	bad "kubectl on PATH (Debian: kubernetes-client)"
	finish
	exit 1
fi
lab_fresh
ok "lab up"
eval "$("$KSTEER" lab env)"
if [ -z "${KUBECONFIG:-}" ] || ! kubectl --context cluster1 get namespaces >"$tmp/ns" 2>&1; then
	bad "the lab's API answers kubectl (ksteer lab env sets KUBECONFIG)" "KUBECONFIG=${KUBECONFIG:-}" "$(cat "$tmp/ns")"
	finish
	exit 1
fi
kc() { kubectl --context cluster1 "$@"; }

# polls CMD every 50 ms for up to SECONDS; prints the milliseconds it took
until_ok() { # SECONDS CMD...
	local end=$((SECONDS + $1)) t0
	shift
	t0=$(date +%s%N)
	while [ $SECONDS -le $end ]; do
		if "$@" >/dev/null 2>&1; then
			echo $((($(date +%s%N) - t0) / 1000000))
			return 0
		fi
		sleep 0.05
	done
	return 1
}
eps() { "$KSTEER" get endpoints -i kwatch 2>&1; }
has() { eps | grep -qF -- "$1"; }
lacks() { ! eps | grep -qF -- "$1"; }
kstat() { "$KSTEER" status -i kwatch | sed -n 's/^kube counters //p' | tr ' ' '\n' | grep -A1 -x "$1" | tail -n 1; }
applied() { "$KSTEER" status -i kwatch | sed -n 's/^applied //p'; }
se() { # ADDRESS...: the ServiceEntry kw with these endpoints
	printf 'apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: kw, namespace: kwatch}\n'
	printf 'spec:\n  hosts: [kw.example.com]\n  addresses: [240.0.0.10]\n'
	printf '  ports: [{number: 80, name: tcp, protocol: TCP}]\n  location: MESH_INTERNAL\n  resolution: STATIC\n  endpoints:\n'
	for a in "$@"; do printf '  - {address: %s}\n' "$a"; done
}

mkdir -p "$base"
ip netns add ksl-kwatch && ip -n ksl-kwatch link set lo up
node=$(kc get pods -A -o jsonpath='{.items[0].spec.nodeName}' 2>/dev/null)
"$KSTEER" agent --kubeconfig "$KUBECONFIG" --context cluster1 --node "${node:-kwatch-node}" \
	--instance kwatch --cgroup ksteer-kwatch-test --netns ksl-kwatch --no-dns \
	--ready-file "$tmp/kwatch.ready" >"$tmp/kwatch.log" 2>&1 &
agent=$!
if ms=$(until_ok 15 test -e "$tmp/kwatch.ready"); then
	ok "the agent lists every kind and applies its first snapshot (${ms} ms)"
else
	bad "the agent starts" "$(cat "$tmp/kwatch.log")"
	finish
	exit 1
fi
objs=$("$KSTEER" status -i kwatch | sed -n 's/^kube objects //p')
case "$objs" in
*'?'* | '') bad "every kind listed" "$objs" ;;
*) ok "every kind listed: $objs" ;;
esac
[ "$(kstat lists)" -ge 11 ] && ok "lists $(kstat lists), watches $(kstat watches)" ||
	bad "11 kinds listed" "$("$KSTEER" status -i kwatch | grep '^kube')"

# -- create, update, delete, as kubectl sends them
kc create namespace kwatch >"$tmp/out" 2>&1 || bad "kubectl create namespace kwatch" "$(cat "$tmp/out")"
se 10.1.2.3 | kc apply -f - >"$tmp/out" 2>&1 || bad "kubectl apply ServiceEntry kw" "$(cat "$tmp/out")"
if ms=$(until_ok 5 has "10.1.2.3:80"); then
	ok "create followed: 240.0.0.10:80 -> 10.1.2.3 in $ms ms"
else
	bad "create followed" "$(eps)" "$(tail -n 5 "$tmp/kwatch.log")"
fi
se 10.1.2.3 10.1.2.4 | kc apply -f - >"$tmp/out" 2>&1 || bad "kubectl apply (update)" "$(cat "$tmp/out")"
if ms=$(until_ok 5 has "10.1.2.4:80"); then
	ok "update followed: a second endpoint in $ms ms"
else
	bad "update followed" "$(eps)"
fi
kc delete serviceentry kw -n kwatch >"$tmp/out" 2>&1 || bad "kubectl delete serviceentry" "$(cat "$tmp/out")"
if ms=$(until_ok 5 lacks "240.0.0.10:80"); then
	ok "delete followed: the frontend went in $ms ms"
else
	bad "delete followed" "$(eps)"
fi

# -- a burst of changes is coalesced into few snapshots
snap0=$("$KSTEER" status -i kwatch | sed -n 's/^kube snapshots \([0-9]*\).*/\1/p')
for i in $(seq 1 20); do
	printf 'apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: burst-%s, namespace: kwatch}\n' "$i"
	echo ---
done | kc apply -f - >"$tmp/out" 2>&1 || bad "kubectl apply 20 ServiceAccounts" "$(cat "$tmp/out")"
se 10.1.2.3 10.1.2.4 | kc apply -f - >"$tmp/out" 2>&1
until_ok 5 has "10.1.2.4:80" >/dev/null
sleep 0.5
snap1=$("$KSTEER" status -i kwatch | sed -n 's/^kube snapshots \([0-9]*\).*/\1/p')
[ $((snap1 - snap0)) -ge 1 ] && [ $((snap1 - snap0)) -le 10 ] &&
	ok "21 objects in one kubectl burst: $((snap1 - snap0)) snapshot(s)" ||
	bad "a burst coalesced (1..10 snapshots for 21 changes)" "snapshots $snap0 -> $snap1"

# -- the API server is killed: the agent keeps its policy and reconnects with backoff
api_pid=$("$KSTEER" lab status -o json | python3 -c '
import json, sys
for c in json.load(sys.stdin)["clusters"]:
    if c["name"] == "cluster1":
        print(c.get("api", {}).get("pid") or c.get("apiPid", ""))')
if [ -z "$api_pid" ]; then # the process listening on the kubeconfig's port
	port=$(kc config view -o jsonpath='{.clusters[?(@.name=="cluster1")].cluster.server}' | sed 's/.*://')
	api_pid=$(ss -ltnpH "sport = :$port" | grep -o 'pid=[0-9]*' | head -n 1 | cut -d= -f2)
fi
if [ -z "$api_pid" ] || ! kill -0 "$api_pid" 2>/dev/null; then
	bad "the API server's pid (ksteer lab status -o json: clusters[].api.pid)" "${api_pid:-none}"
	finish
	exit 1
fi
gone0=$(kstat gone)
err0=$(kstat errors)
app0=$(applied)
kill "$api_pid"
api_dead() { ! kill -0 "$api_pid" 2>/dev/null; }
until_ok 5 api_dead >/dev/null || kill -9 "$api_pid"
sleep 3
if has "10.1.2.3:80" && has "10.1.2.4:80" && [ "$(applied)" = "$app0" ]; then
	ok "API server down for 3 s: the policy stays (applied $app0, errors $err0 -> $(kstat errors))"
else
	bad "API server down: the policy stays" "$(eps)" "applied $app0 -> $(applied)"
fi
[ "$(kstat errors)" -gt "$err0" ] && ok "the failures are counted: reconnects $(kstat reconnects)" ||
	bad "failures counted while the API server is down" "errors $err0 -> $(kstat errors)"
"$KSTEER" lab api start cluster1 >"$tmp/out" 2>&1 || bad "ksteer lab api start cluster1" "$(cat "$tmp/out")"
until_ok 10 kc get namespaces >/dev/null || bad "the API server answers again" "$(cat "$tmp/out")"
has "10.1.2.3:80" && has "10.1.2.4:80" && ok "after the restart the policy is the same" ||
	bad "after the restart the policy is the same" "$(eps)"
se 10.1.2.5 | kc apply -f - >"$tmp/out" 2>&1 || bad "kubectl apply after the restart" "$(cat "$tmp/out")"
moved() { has "10.1.2.5:80" && lacks "10.1.2.3:80"; }
if ms=$(until_ok 10 moved); then
	ok "changes after the restart are followed ($ms ms)"
else
	bad "changes after the restart followed" "$(eps)" "$("$KSTEER" status -i kwatch | grep '^kube')"
fi

# -- a forced 410: the agent is frozen while the API restarts and then takes more changes than
# its event log keeps (4096); the agent's resourceVersions are compacted away, its watches get
# 410 Gone and it lists again (with bookmarks it otherwise resumes where it was, as from a real
# apiserver whose history still holds its resourceVersion)
gone0=$(kstat gone)
rel0=$(kstat relists)
kill -STOP "$agent"
api_pid=$("$KSTEER" lab status -o json | python3 -c '
import json, sys
for c in json.load(sys.stdin)["clusters"]:
    if c["name"] == "cluster1":
        print(c.get("api", {}).get("pid") or c.get("apiPid", ""))')
[ -n "$api_pid" ] && kill -9 "$api_pid" 2>/dev/null
until_ok 5 api_dead >/dev/null
"$KSTEER" lab api start cluster1 >"$tmp/out" 2>&1 || bad "ksteer lab api start cluster1 (again)" "$(cat "$tmp/out")"
until_ok 10 kc get namespaces >/dev/null || bad "the API server answers again" "$(cat "$tmp/out")"
api_churn kwatch
se 10.1.2.6 | kc apply -f - >"$tmp/out" 2>&1 || bad "kubectl apply while the agent is frozen" "$(cat "$tmp/out")"
kill -CONT "$agent"
gone_up() { [ "$(kstat gone)" -gt "$gone0" ] && [ "$(kstat relists)" -gt "$rel0" ]; }
if ms=$(until_ok 40 gone_up); then
	ok "410 Gone after compaction: listed again ($ms ms; gone $gone0 -> $(kstat gone), relists $rel0 -> $(kstat relists))"
else
	bad "410 Gone and a re-list after compaction" "$("$KSTEER" status -i kwatch | grep '^kube')"
fi
moved6() { has "10.1.2.6:80" && lacks "10.1.2.5:80"; }
if ms=$(until_ok 10 moved6); then
	ok "the re-list brings the change made while the agent was away ($ms ms)"
else
	bad "the re-list brings the change made while the agent was away" "$(eps)"
fi
"$KSTEER" status -i kwatch | grep -q '^kube snapshots .* refused 0' &&
	ok "no snapshot refused: $("$KSTEER" status -i kwatch | sed -n 's/^kube snapshots //p')" ||
	bad "no snapshot refused" "$("$KSTEER" status -i kwatch | grep '^kube')" "$(grep -i error "$tmp/kwatch.log" | tail -n 5)"
kill -0 "$agent" 2>/dev/null && ok "the agent runs throughout" || bad "the agent runs throughout" "$(tail -n 20 "$tmp/kwatch.log")"
echo "     $("$KSTEER" status -i kwatch | sed -n 's/^kube counters //p')"
finish
