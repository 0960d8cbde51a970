#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# The reference scenario, as the original runs it, on the netns lab: two
# clusters joined only through their gateways; sleep and helloworld v1 in
# cluster1, v2 and v3 in cluster2; each cluster's policies from the
# scenario's files; then requests from sleep with curl, and a table of who
# answered, expected beside measured.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-../shared}
scen=$SHARED/scenario
K=./ksteer
N=${DEMO_REQUESTS:-1000}
ex=manifests/examples

work=$(mktemp -d)
trap '$K lab down >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
run() { echo "\$ $*"; "$@"; }

echo "== 1. two clusters in network namespaces (ksteer lab up)"
$K lab down >/dev/null 2>&1 || true
run $K lab up
run eval "$($K lab env)"
echo "   CLUSTER2_GW_ADDR=$CLUSTER2_GW_ADDR"

echo
echo "== 2. workloads, with the original's kubectl commands (each cluster's API: ksteer lab kubeconfig)"
export HOME=$work # kubectl's discovery cache: this run's own
mkdir -p "$work/samples/sleep" "$work/samples/helloworld"
cp $ex/sleep.yaml "$work/samples/sleep/sleep.yaml"
cp $ex/helloworld.yaml "$work/samples/helloworld/helloworld.yaml"
python3 -c '
import sys
docs = open(sys.argv[1]).read().split("\n---\n")
print("\n---\n".join(d for d in docs if "kind: Service\n" in d))' $ex/helloworld.yaml >"$work/samples/helloworld/service.yaml"
top=$PWD
cd "$work"
run kubectl --context "$CTX_CLUSTER1" create namespace hello
run kubectl --context "$CTX_CLUSTER1" label namespace hello istio-injection=enabled
run kubectl --context "$CTX_CLUSTER1" apply -n hello -f samples/sleep/sleep.yaml
run kubectl --context "$CTX_CLUSTER1" apply -n hello -f samples/helloworld/service.yaml
run kubectl --context "$CTX_CLUSTER1" apply -n hello -f samples/helloworld/helloworld.yaml -l version=v1
run kubectl --context "$CTX_CLUSTER2" create namespace hello
run kubectl --context "$CTX_CLUSTER2" label namespace hello istio-injection=enabled
run kubectl --context "$CTX_CLUSTER2" apply -n hello -f samples/helloworld/service.yaml
run kubectl --context "$CTX_CLUSTER2" apply -n hello -f samples/helloworld/helloworld.yaml -l version=v2
run kubectl --context "$CTX_CLUSTER2" apply -n hello -f samples/helloworld/helloworld.yaml -l version=v3

echo
echo "== 3. the scenario's policies, each cluster's files as written: kubectl apply -n hello -f - <<EOF"
for c in cluster1 cluster2; do
	for f in "$scen/$c"/*.yaml; do
		# a file naming its own namespace (the Gateway's istio-system) goes without -n:
		# kubectl refuses -n hello for it, as with any API server
		n="-n hello"
		grep -q '^  namespace:' "$f" && n=
		echo "\$ kubectl --context $c apply $n -f - <<EOF  # $(basename "$f")"
		eval "kubectl --context $c apply $n -f - <<EOF
$(cat "$f")
EOF"
	done
done
cd "$top"
# kubectl returns when the API has the objects; the agents get them through their watch
run $K lab wait cluster1
run $K lab wait cluster2
run kubectl --context "$CTX_CLUSTER1" get pods -A -o wide
run kubectl --context "$CTX_CLUSTER1" get virtualservices -n hello

echo
echo "== 4. $N requests with 'end-user: jason' and $N without, from sleep:"
echo "   curl http://helloworld.hello:5000/hello (mesh DNS, shim, ISTIO_MUTUAL, gateway SNI)"
out=$work/answers
start=$SECONDS
$K lab exec cluster1 hello/sleep -- bash -c "
	for i in \$(seq $N); do echo -n 'jason '; curl -s -m 5 -H 'end-user: jason' http://helloworld.hello:5000/hello || echo FAIL; done
	for i in \$(seq $N); do echo -n 'other '; curl -s -m 5 http://helloworld.hello:5000/hello || echo FAIL; done" >"$out"
echo "   ($((2 * N)) requests in $((SECONDS - start)) s)"
python3 - "$out" "$N" <<'PY'
import collections, re, sys
n = int(sys.argv[2])
c = collections.Counter()
for l in open(sys.argv[1]):
    who, _, rest = l.strip().partition(" ")
    m = re.search(r"version: (\S+?), .*cluster: (\S+)", rest)
    c[(who, *(m.groups() if m else ("FAIL", "-")))] += 1
want = {("jason", "v2", "cluster2"): 70, ("jason", "v3", "cluster2"): 30, ("other", "v1", "cluster1"): 100}
print(f"\n{'requests':9} {'version':8} {'cluster':9} {'answers':>8} {'measured':>9} {'expected':>9}")
for k in sorted(set(c) | set(want)):
    print(f"{k[0]:9} {k[1]:8} {k[2]:9} {c[k]:8d} {100.0 * c[k] / n:8.1f}% {want.get(k, 0):8.1f}%")
PY

echo
echo "== 5. what carried it"
for i in lab-cluster1-node1 lab-cluster2-gateway lab-cluster2-node1; do
	echo "-- $i: $($K status --instance $i | sed -n 's/^shim //p')"
done
echo "-- in the kernel of cluster1's node (ksteer get stats -i lab-cluster1-node1)"
$K get stats -i lab-cluster1-node1
echo
echo "== tearing the lab down"
