#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Shared by the lab tests: a lab that is always taken down, and checks that say what they saw.
set -uo pipefail

KSTEER=${KSTEER:?path to the ksteer binary}
SHARED=${SHARED:-../shared}
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
EX=$TOP/manifests/examples
tmp=$(mktemp -d)
pass=0 fail=0
started_pids=()

cleanup() {
	for p in "${started_pids[@]}"; do kill "$p" 2>/dev/null; done
	"$KSTEER" lab down >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT

ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; shift; printf '     %s\n' "$@"; }
finish() {
	echo "$(basename "$0"): $pass passed, $fail failed"
	[ "$fail" -eq 0 ]
}

# A lab of this test's own: whatever lab is up goes down, then lab up ARGS; when that fails
# the test ends there (bad "lab up ARGS", with lab up's output).
lab_fresh() { # [LAB UP ARGS...]
	"$KSTEER" lab down >/dev/null 2>&1
	if ! "$KSTEER" lab up "$@" >"$tmp/up" 2>&1; then
		bad "lab up${*:+ $*}" "$(cat "$tmp/up")"
		finish
		exit 1
	fi
}

need_root() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "FAIL the lab tests need root (network namespaces, cgroups, BPF); run as root" >&2
		exit 1
	fi
}

# The ClusterIP the lab gave a Service.
vip() { # CLUSTER NS NAME
	"$KSTEER" lab status -o json | python3 -c '
import json, sys
c, ns, n = sys.argv[1:4]
for cl in json.load(sys.stdin)["clusters"]:
    if cl["name"] == c:
        for s in cl["services"]:
            if s["namespace"] == ns and s["name"] == n:
                print(s["clusterIP"])' "$1" "$2" "$3"
}

shimstat() { # INSTANCE KEY[.KEY...]: a value from the shim's line of `ksteer status`
	"$KSTEER" status --instance "$1" | sed -n 's/^shim //p' |
		python3 -c 'import json,sys
v = json.load(sys.stdin)
for k in sys.argv[1].split("."): v = v[k]
print(v)' "$2"
}
# A counter of an instance's per-CPU stats.
stat() { # INSTANCE NAME
	"$KSTEER" get stats -i "$1" -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$2"
}

# N new connections from a pod, one curl each; prints one line per answer (or FAIL).
connects() { # CLUSTER POD URL N
	"$KSTEER" lab exec "$1" "$2" -- bash -c \
		"for i in \$(seq $4); do curl -s -m 3 -H 'Connection: close' $3 || echo FAIL; echo; done" |
		grep -v '^$'
}

# Share of each version in a file of answers, as "v1=50.1 v2=29.9 ..."
shares() { # FILE
	python3 - "$1" <<'PY'
import collections, re, sys
lines = [l for l in open(sys.argv[1]) if l.strip()]
c = collections.Counter(re.search(r"version: (\S+?),", l).group(1) if "version:" in l else "FAIL" for l in lines)
print(" ".join(f"{k}={100.0 * v / len(lines):.1f}" for k, v in sorted(c.items())), f"n={len(lines)}")
PY
}

# within FILE VERSION WANT_PERCENT POINTS
within() {
	python3 - "$@" <<'PY'
import re, sys
f, ver, want, pts = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
lines = [l for l in open(f) if l.strip()]
got = 100.0 * sum(1 for l in lines if f"version: {ver}," in l) / len(lines)
sys.exit(0 if abs(got - want) <= pts else 1)
PY
}

# The reference scenario as the original applies it: scenario_kit DIR copies its
# files (sleep.yaml, helloworld.yaml, cluster1/, cluster2/) into DIR;
# scenario_apply DIR C1 C2 NS SVC_SELECTOR SEL1 SEL2 SEL3 applies such a kit,
# ${VAR}s from `ksteer lab env`; what lab apply said is in $tmp/apply.
scenario_kit() {
	mkdir -p "$1"
	cp -r "$SHARED/scenario/cluster1" "$SHARED/scenario/cluster2" "$EX/sleep.yaml" "$EX/helloworld.yaml" "$1/"
}
scenario_apply() {
	local d=$1 c1=$2 c2=$3 ns=$4 svc=$5 s1=$6 s2=$7 s3=$8 f
	eval "$("$KSTEER" lab env)"
	{
		"$KSTEER" lab apply "$c1" -n "$ns" -f "$d/sleep.yaml" &&
			"$KSTEER" lab apply "$c1" -n "$ns" -f "$d/helloworld.yaml" -l "$svc" &&
			"$KSTEER" lab apply "$c1" -n "$ns" -f "$d/helloworld.yaml" -l "$s1" &&
			"$KSTEER" lab apply "$c2" -n "$ns" -f "$d/helloworld.yaml" -l "$svc" &&
			"$KSTEER" lab apply "$c2" -n "$ns" -f "$d/helloworld.yaml" -l "$s2" &&
			"$KSTEER" lab apply "$c2" -n "$ns" -f "$d/helloworld.yaml" -l "$s3" &&
			for f in "$d"/cluster1/*.yaml; do "$KSTEER" lab apply "$c1" -n "$ns" -f "$f" || return 1; done &&
			for f in "$d"/cluster2/*.yaml; do "$KSTEER" lab apply "$c2" -n "$ns" -f "$f" || return 1; done
	} >"$tmp/apply" 2>&1
}

# Routes that send helloworld through the shim (a header match), everything to v1:
# the frontend every HTTP proxy test needs. shim_routes > FILE
shim_routes() {
	cat <<'Y'
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: helloworld}
spec:
  host: helloworld
  subsets:
  - {name: v1, labels: {version: v1}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: helloworld}
spec:
  hosts: [helloworld]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: helloworld, subset: v1}}]
  - route: [{destination: {host: helloworld, subset: v1}}]
Y
}

# api_churn NAMESPACE: 4,200 merge patches to ConfigMap churn in NAMESPACE of cluster1 (KUBECONFIG),
# more changes than the lab API's watch log holds (4,096): older resourceVersions are compacted away
api_churn() {
	kubectl --context cluster1 create configmap -n "$1" churn --from-literal=i=0 >/dev/null 2>&1
	NS=$1 python3 - <<'PY' >"$tmp/churn" 2>&1 || bad "4200 patches" "$(tail -n 3 "$tmp/churn")"
import http.client, os, ssl
ctx = ssl.create_default_context(cafile="/run/ksteer-lab/cluster1/api/ca.pem")
tok = open("/run/ksteer-lab/cluster1/api/token").read().strip()
srv = [l.split()[-1] for l in open(os.environ["KUBECONFIG"]) if "server:" in l][0]
host, port = srv.split("//")[1].split(":")
c = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=10)
path = "/api/v1/namespaces/%s/configmaps/churn" % os.environ["NS"]
for i in range(4200):
    c.request("PATCH", path, body='{"data":{"i":"%d"}}' % i,
              headers={"Authorization": "Bearer " + tok, "Content-Type": "application/merge-patch+json"})
    r = c.getresponse()
    r.read()
    assert r.status == 200, r.status
PY
}
