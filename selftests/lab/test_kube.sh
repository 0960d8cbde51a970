#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# The lab speaks the Kubernetes API: the reference scenario's steps through the
# real kubectl (contexts aside), the routing they make, and the API's edges:
# -o wide, a watch, 410 Gone, a 422 that changes nothing, a restarted API
# server that lost nothing, delete -f, a bad token.
. "$(dirname "$0")/lib.sh"
need_root
N=${SCENARIO_REQUESTS:-200}
command -v kubectl >/dev/null || { bad "no kubectl on this machine"; finish; exit 1; }
lab_fresh
eval "$("$KSTEER" lab env)"
[ -n "${KUBECONFIG:-}" ] && [ "$CTX_CLUSTER1" = cluster1 ] && [ "$CTX_CLUSTER2" = cluster2 ] &&
	ok "lab env: KUBECONFIG=$KUBECONFIG, CTX_CLUSTER1/2" || bad "lab env" "$("$KSTEER" lab env)"
export HOME=$tmp # kubectl's discovery cache, this run's own
mkdir -p "$tmp/samples/sleep" "$tmp/samples/helloworld"
cp "$EX/sleep.yaml" "$tmp/samples/sleep/sleep.yaml"
cp "$EX/helloworld.yaml" "$tmp/samples/helloworld/helloworld.yaml"
grep -v '^---' "$EX/helloworld.yaml" | python3 -c '
import sys
docs = open(sys.argv[1]).read().split("\n---\n")
print("\n---\n".join(d for d in docs if "kind: Service\n" in d))' "$EX/helloworld.yaml" >"$tmp/samples/helloworld/service.yaml"
cd "$tmp"

# ---- the scenario's steps, as its document writes them ----
{
	set -e
	kubectl --context "$CTX_CLUSTER1" create namespace hello
	kubectl --context "$CTX_CLUSTER1" label namespace hello istio-injection=enabled
	kubectl --context "$CTX_CLUSTER1" apply -n hello -f samples/sleep/sleep.yaml
	kubectl --context "$CTX_CLUSTER1" apply -n hello -f samples/helloworld/service.yaml
	kubectl --context "$CTX_CLUSTER1" apply -n hello -f samples/helloworld/helloworld.yaml -l version=v1
	kubectl --context "$CTX_CLUSTER2" create namespace hello
	kubectl --context "$CTX_CLUSTER2" label namespace hello istio-injection=enabled
	kubectl --context "$CTX_CLUSTER2" apply -n hello -f samples/helloworld/service.yaml
	kubectl --context "$CTX_CLUSTER2" apply -n hello -f samples/helloworld/helloworld.yaml -l version=v2
	kubectl --context "$CTX_CLUSTER2" apply -n hello -f samples/helloworld/helloworld.yaml -l version=v3
	for c in cluster1 cluster2; do
		for f in "$SHARED/scenario/$c"/*.yaml; do
			# kubectl refuses -n hello for an object of another namespace (the Gateway's
			# istio-system): such a file is applied without -n, as with any API server
			n="-n hello"
			grep -q '^  namespace:' "$f" && n=
			# the document's `kubectl apply -n hello -f - <<EOF`: the shell expands ${CLUSTER2_GW_ADDR}
			eval "kubectl --context $c apply $n -f - <<EOF
$(cat "$f")
EOF"
		done
	done
	# kubectl returns when the API has a change; the agents get it through their watch
	"$KSTEER" lab wait cluster1
	"$KSTEER" lab wait cluster2
	set +e
} >"$tmp/steps" 2>&1 && ok "the scenario's kubectl steps ran ($(grep -c -E 'created|configured|labeled' "$tmp/steps") objects created or changed)" ||
	{ set +e; bad "the scenario's kubectl steps" "$(tail -5 "$tmp/steps")"; }

requests() { # CLUSTER POD URL N [curl args...]
	local c=$1 p=$2 u=$3 n=$4
	shift 4
	"$KSTEER" lab exec "$c" "$p" -- bash -c 'u=$1; n=$2; shift 2
		for i in $(seq "$n"); do curl -s -m 5 "$@" "$u" || echo FAIL; echo; done' _ "$u" "$n" "$@" |
		grep -v '^$'
}
requests cluster1 hello/sleep http://helloworld.hello:5000/hello "$N" -H 'end-user: jason' >"$tmp/jason"
requests cluster1 hello/sleep http://helloworld.hello:5000/hello "$((N / 2))" >"$tmp/others"
if within "$tmp/jason" v2 70 10 && within "$tmp/jason" v3 30 10 && within "$tmp/others" v1 100 0; then
	ok "routed as the scenario says: jason $(shares "$tmp/jason"); others $(shares "$tmp/others")"
else
	bad "routing after the kubectl steps" "jason $(shares "$tmp/jason")" "others $(shares "$tmp/others")"
fi

# ---- reads ----
kubectl --context cluster1 get pods -A -o wide >"$tmp/wide" 2>&1
ip1=$("$KSTEER" lab status -o json | python3 -c 'import json,sys; print([p["ip"] for c in json.load(sys.stdin)["clusters"] for p in c["pods"] if p["name"] == "helloworld-v1-0"][0])')
grep -E "^hello +helloworld-v1-0 +1/1 +Running .* $ip1 +node1" "$tmp/wide" >/dev/null &&
	ok "get pods -A -o wide: helloworld-v1-0 1/1 Running at $ip1 on node1" || bad "get pods -o wide" "$(cat "$tmp/wide")"
kubectl --context cluster1 get svc -n hello >"$tmp/svc" 2>&1
vip=$(vip cluster1 hello helloworld)
grep -E "^helloworld +ClusterIP +$vip +<none> +5000/TCP" "$tmp/svc" >/dev/null &&
	ok "get svc: helloworld ClusterIP $vip 5000/TCP" || bad "get svc" "$(cat "$tmp/svc")"
kubectl --context cluster1 get virtualservices -n hello >"$tmp/vs" 2>&1
grep -q 'helloworld.hello.global' "$tmp/vs" && ok "get virtualservices: $(tail -1 "$tmp/vs" | tr -s ' ')" ||
	bad "get virtualservices" "$(cat "$tmp/vs")"
kubectl --context cluster1 get endpointslices -n hello -o jsonpath='{.items[0].endpoints[0].addresses[0]}' >"$tmp/eps" 2>&1
[ "$(cat "$tmp/eps")" = "$ip1" ] && ok "the Service's EndpointSlice holds v1's address" || bad "EndpointSlice" "$(cat "$tmp/eps")"
kubectl --context cluster1 describe pod -n hello helloworld-v1-0 >"$tmp/desc" 2>&1 &&
	kubectl --context cluster1 describe svc -n hello helloworld >>"$tmp/desc" 2>&1 &&
	kubectl --context cluster1 describe deployment -n hello helloworld-v1 >>"$tmp/desc" 2>&1 &&
	grep -q "IP: *$ip1" "$tmp/desc" && grep -q "Endpoints: *$ip1:5000" "$tmp/desc" &&
	ok "describe pod, svc, deployment" || bad "describe" "$(tail -5 "$tmp/desc")"

# ---- watch: get pods -w prints a change ----
kubectl --context cluster1 get pods -n hello -w >"$tmp/watch" 2>&1 &
wpid=$!
started_pids+=($wpid)
sleep 2
kubectl --context cluster1 scale deployment -n hello helloworld-v1 --replicas=2 >"$tmp/scale" 2>&1
for i in $(seq 50); do grep -q helloworld-v1-1 "$tmp/watch" && break; sleep 0.2; done
kill "$wpid" 2>/dev/null
grep -q 'helloworld-v1-1 .*Running' "$tmp/watch" && ok "get pods -w: the scaled-up pod helloworld-v1-1 appeared" ||
	bad "get pods -w" "$(cat "$tmp/scale" "$tmp/watch")"
kubectl --context cluster1 scale deployment -n hello helloworld-v1 --replicas=1 >/dev/null 2>&1
"$KSTEER" lab status -o json | grep -q helloworld-v1-1 && bad "scale down left helloworld-v1-1" ||
	ok "scaled back to 1: helloworld-v1-1 is gone from the lab"

# ---- the API by hand: 410, 401 ----
api() { # PATH [curl args]
	local p=$1
	shift
	curl -s -m 5 --cacert /run/ksteer-lab/cluster1/api/ca.pem \
		-H "Authorization: Bearer $(cat /run/ksteer-lab/cluster1/api/token)" "$@" \
		"https://127.0.0.1:$(kubectl config view -o jsonpath='{.clusters[?(@.name=="cluster1")].cluster.server}' | sed 's/.*://')$p"
}
# more changes than the watch log holds (4096): resourceVersion 1 is compacted away
api_churn default
w=$(api "/api/v1/namespaces/hello/pods?watch=1&resourceVersion=1&timeoutSeconds=2")
[[ $w == *'"type":"ERROR"'*'"reason":"Expired"'*'"code":410'* ]] && ok "a watch from a compacted resourceVersion: ERROR 410 Expired" ||
	bad "watch 410" "$w"
code=$(curl -s -o "$tmp/401" -w '%{http_code}' --cacert /run/ksteer-lab/cluster1/api/ca.pem -H "Authorization: Bearer nope" \
	"$(grep -m1 'server:' "$KUBECONFIG" | awk '{print $2}')/api/v1/pods")
[ "$code" = 401 ] && grep -q '"reason":"Unauthorized"' "$tmp/401" && ok "a bad token: 401 Unauthorized Status" ||
	bad "bad token" "$code $(cat "$tmp/401")"
kubectl --context cluster1 --token nope get pods -n hello >"$tmp/401k" 2>&1
grep -qi unauthorized "$tmp/401k" && ok "kubectl with a bad token: $(head -1 "$tmp/401k")" || bad "kubectl bad token" "$(cat "$tmp/401k")"

# ---- a refused VirtualService: 422 naming the field, nothing changed ----
before=$(kubectl --context cluster1 get vs -n hello helloworld -o jsonpath='{.metadata.resourceVersion}')
sed 's/weight: 70/weight: -70/' "$SHARED/scenario/cluster1/04-virtualservice.yaml" |
	kubectl --context cluster1 apply -n hello -f - >"$tmp/422" 2>&1
after=$(kubectl --context cluster1 get vs -n hello helloworld -o jsonpath='{.metadata.resourceVersion}')
grep -q 'is invalid: spec.http\[0\].route\[0\].weight' "$tmp/422" && [ "$before" = "$after" ] &&
	ok "a negative weight refused: $(head -1 "$tmp/422"); resourceVersion still $after" ||
	bad "422" "$(cat "$tmp/422")" "rv $before -> $after"
code=$(api /apis/networking.istio.io/v1/namespaces/hello/virtualservices/helloworld -o /dev/null -w '%{http_code}' -X PATCH \
	-H 'Content-Type: application/merge-patch+json' -d '{"spec":{"http":[{"route":[{"destination":{"host":"x"},"weight":-1}]}]}}')
[ "$code" = 422 ] && ok "the same as a merge patch: 422" || bad "422 by patch" "$code"
requests cluster1 hello/sleep http://helloworld.hello:5000/hello 20 -H 'end-user: jason' >"$tmp/j2"
grep -q 'version: v1' "$tmp/j2" && bad "routing changed after a refused object" "$(shares "$tmp/j2")" ||
	ok "routing unchanged after the refusals ($(shares "$tmp/j2"))"

# ---- the API server killed and started again: nothing lost ----
kubectl --context cluster1 get all,vs,dr,se -A -o name 2>/dev/null | sort >"$tmp/before"
pid=$("$KSTEER" lab status -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["clusters"][0]["api"]["pid"])')
kill -9 "$pid"
sleep 0.5
kubectl --context cluster1 get ns >/dev/null 2>&1 && bad "the API still answers after kill -9 $pid"
"$KSTEER" lab api start cluster1 >"$tmp/restart" 2>&1 || bad "lab api start" "$(cat "$tmp/restart")"
kubectl --context cluster1 get ns >/dev/null 2>&1 || bad "the API server did not come back" "$(cat "$tmp/restart")" "$(tail -5 /run/ksteer-lab/logs/api-cluster1.log)"
kubectl --context cluster1 get all,vs,dr,se -A -o name 2>/dev/null | sort >"$tmp/after"
rv2=$(kubectl --context cluster1 get vs -n hello helloworld -o jsonpath='{.metadata.resourceVersion}')
[ -s "$tmp/before" ] && cmp -s "$tmp/before" "$tmp/after" && [ "$rv2" = "$after" ] &&
	ok "killed (-9) and started again: the same $(wc -l <"$tmp/before") objects, resourceVersions kept" ||
	bad "restart lost something" "$(diff "$tmp/before" "$tmp/after" | head -5)"
kubectl --context cluster1 label cm -n default churn x=y >/dev/null 2>&1
rv3=$(kubectl --context cluster1 get cm -n default churn -o jsonpath='{.metadata.resourceVersion}')
[ "$rv3" -gt "$rv2" ] && ok "resourceVersions keep increasing after the restart ($rv2 -> $rv3)" || bad "rv after restart" "$rv2 -> $rv3"

# ---- delete -f removes what apply created ----
kubectl --context cluster2 delete -n hello -f samples/helloworld/helloworld.yaml -l version=v3 >"$tmp/del" 2>&1
if ! kubectl --context cluster2 get deploy -n hello helloworld-v3 >/dev/null 2>&1 &&
	! "$KSTEER" lab status -o json | grep -q helloworld-v3 &&
	! ls /run/ksteer-lab/cluster2/policy | grep -q helloworld-v3; then
	requests cluster1 hello/sleep http://helloworld.hello:5000/hello 40 -H 'end-user: jason' >"$tmp/j3"
	grep -q 'version: v3' "$tmp/j3" && bad "v3 still answers after delete -f" ||
		ok "delete -f: Deployment, pod and policy file of v3 gone; jason gets $(shares "$tmp/j3")"
else
	bad "delete -f" "$(cat "$tmp/del")"
fi
kubectl --context cluster1 delete namespace hello >"$tmp/delns" 2>&1
[ -z "$(kubectl --context cluster1 get pods -n hello -o name 2>/dev/null)" ] &&
	! "$KSTEER" lab status -o json | python3 -c 'import json,sys; sys.exit(0 if any(p["namespace"] == "hello" for p in json.load(sys.stdin)["clusters"][0]["pods"]) else 1)' &&
	ok "delete namespace hello: its pods are gone" || bad "delete namespace" "$(cat "$tmp/delns")"
finish
