#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# manifests/deploy as kubectl renders it: the facts a cluster (or the lab playing kubelet)
# depends on. The objects and their fields (deploy_facts.py), every agent flag the pods pass
# known to this ksteer and parsed by it, the ConfigMap's meshNetworks and the whole render
# through `ksteer check`. Needs kubectl (kustomize is built in) and python3-yaml; offline.
set -uo pipefail

KSTEER=${KSTEER:?path to the ksteer binary}
SHARED=${SHARED:-../shared}
here=$(cd "$(dirname "$0")/../.." && pwd)
DEPLOY=${DEPLOY:-$here/manifests/deploy} # another kustomization to check (the test's own mutants)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0

ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; shift; printf '     %s\n' "$@"; }


if ! command -v kubectl >/dev/null; then
	bad "kubectl present" "install Debian's kubernetes-client (scripts/deps.sh does when none is there)"
	echo "deploy: $pass passed, $fail failed"
	exit 1
fi
if kubectl kustomize "$DEPLOY" >"$tmp/render.yaml" 2>"$tmp/err"; then
	ok "kubectl kustomize manifests/deploy renders ($(grep -c '^kind:' "$tmp/render.yaml") objects)"
else
	bad "kubectl kustomize manifests/deploy" "$(head -c 600 "$tmp/err")"
	echo "deploy: $pass passed, $fail failed"
	exit 1
fi

# -- the objects' facts; the containers' expanded args land in $tmp/args.NAME, one per line
python3 "$here/selftests/cli/deploy_facts.py" "$tmp/render.yaml" "$tmp" \
	"$SHARED/scenario/cluster2/02-gateway.yaml" >"$tmp/facts" 2>&1
rc=$?
cat "$tmp/facts"
pass=$((pass + $(grep -c '^ok ' "$tmp/facts")))
fail=$((fail + $(grep -c '^FAIL ' "$tmp/facts")))
[ "$rc" -eq 0 ] || grep -q '^FAIL ' "$tmp/facts" || bad "deploy_facts.py ran" "exit $rc"

# -- every flag a pod passes is one `ksteer agent` documents, and the parser takes them all
"$KSTEER" agent --help >"$tmp/help" 2>&1 || bad "ksteer agent --help" "$(head -c 300 "$tmp/help")"
n=0
for f in "$tmp"/args.*; do
	[ -e "$f" ] || continue
	n=$((n + 1))
	c=${f##*/args.}
	mapfile -t args <"$f"
	if [ "${args[0]:-}" != agent ]; then
		bad "$c: runs ksteer agent" "args: ${args[*]}"
		continue
	fi
	keep=(agent)
	for a in "${args[@]:1}"; do
		flag=${a%%=*}
		keep+=("$a")
		if [[ $flag == --* ]]; then
			grep -qE -- "(^|[[ |])$flag([] =|]|$)" "$tmp/help" && ok "$c: $flag is in ksteer agent --help" ||
				bad "$c: $flag is in ksteer agent --help" "not there: $(tr '\n' ' ' <"$tmp/help" | head -c 300)"
		fi
	done
	# A last unknown option stops the parser after every flag before it was taken: its
	# "unrecognized option" is then the only complaint (a bad value says "Error: ...").
	"$KSTEER" "${keep[@]}" --ksteer-test-end-of-args >"$tmp/out" 2>"$tmp/err"
	rc=$?
	if [ "$rc" -eq 2 ] && grep -q "unrecognized option '--ksteer-test-end-of-args'" "$tmp/err" &&
		! grep -q "^Error" "$tmp/err"; then
		ok "$c: ksteer agent parses every flag and value the pod passes"
	else
		bad "$c: ksteer agent parses every flag and value the pod passes" "exit $rc" \
			"stderr: $(head -c 400 "$tmp/err")"
	fi
done
[ "$n" -eq 2 ] && ok "two agent containers (node, gateway)" || bad "two agent containers" "found $n"

# -- the ConfigMap's meshNetworks is what the agent loads, strictly; the render passes check
if [ -s "$tmp/mesh-networks.yaml" ] && "$KSTEER" check --strict -q -f "$tmp/mesh-networks.yaml" \
	>"$tmp/out" 2>"$tmp/err"; then
	ok "ksteer check --strict takes the ConfigMap's meshNetworks"
else
	bad "ksteer check --strict takes the ConfigMap's meshNetworks" "$(head -c 400 "$tmp/err")"
fi
if "$KSTEER" check -f "$tmp/render.yaml" >"$tmp/out" 2>"$tmp/err"; then
	ok "ksteer check takes the rendered manifests"
	grep -q "^frontend ksteer-eastwestgateway.ksteer-system.svc.cluster.local:15443 tls" "$tmp/out" &&
		ok "ksteer check: the gateway Service's 15443 is opaque TLS (port name tls)" ||
		bad "ksteer check: gateway 15443 frontend" "$(head -c 400 "$tmp/out")"
	grep -E "error" "$tmp/err" && bad "ksteer check: no errors" "$(cat "$tmp/err")"
else
	bad "ksteer check takes the rendered manifests" "$(head -c 600 "$tmp/err")"
fi

echo "deploy: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
