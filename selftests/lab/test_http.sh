#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Differential HTTP/1.1: each case of http_diff.py sent straight to a pod and
# through the shim (local path with sockmap on, across clusters in the
# reference scenario over ISTIO_MUTUAL, local path with sockmap off); what the
# pod received (method, target, end-to-end headers, body sha256) and what the
# client got (status, end-to-end headers, body sha256) must match. Requests the
# mesh must refuse get 400 from it and leave it answering.
# HTTP_ONLY=REGEX runs only the cases whose name matches it.
. "$(dirname "$0")/lib.sh"
need_root
D="python3 $TOP/selftests/lab/http_diff.py"
HOST=helloworld.hello:5000
NODE=lab-cluster1-node1

# helloworld v1 and sleep in cluster1, and a VirtualService with a header match: its
# frontend needs the shim (the route of test_shim.sh, one subset)
setup_local() {
	shim_routes >"$tmp/routes.yaml"
	{
		"$KSTEER" lab apply cluster1 -n hello -f "$EX/sleep.yaml" &&
			"$KSTEER" lab apply cluster1 -n hello -f "$EX/helloworld.yaml" -l service=helloworld &&
			"$KSTEER" lab apply cluster1 -n hello -f "$EX/helloworld.yaml" -l version=v1 &&
			"$KSTEER" lab apply cluster1 -n hello -f "$tmp/routes.yaml"
	} >"$tmp/apply" 2>&1
}

# every agent of the lab (nodes and gateways), for the RSS of the cases that measure it
agents() {
	python3 -c 'import json
s = json.load(open("/run/ksteer-lab/state.json"))
print(",".join(str(p) for c in s["clusters"] for p in [n["agentPid"] for n in c["nodes"]] + [c.get("gatewayAgentPid")] if p))'
}
podip() { # NAME-PREFIX
	"$KSTEER" lab status -o json | python3 -c 'import json,sys
print([p["ip"] for c in json.load(sys.stdin)["clusters"] for p in c["pods"] if p["name"].startswith(sys.argv[1])][0])' "$1"
}
# cases OUT ADDR:PORT [AGENTS]: every case from cluster1's sleep pod to that address
cases() {
	"$KSTEER" lab exec cluster1 hello/sleep -- $D run --to "$2" --host "$HOST" --header end-user:jason \
		--agents "${3:-}" --only "${HTTP_ONLY:-}" --out "$1" >"$tmp/run.log" 2>&1 ||
		bad "run the cases against $2" "$(tail -5 "$tmp/run.log")"
}
# tally compare|check ARGS: http_diff's ok/FAIL lines, counted here
tally() {
	$D "$@" >"$tmp/cmp" 2>&1
	grep -v '^counts ' "$tmp/cmp"
	if read -r _ p f < <(grep '^counts ' "$tmp/cmp"); then
		pass=$((pass + p))
		fail=$((fail + f))
	else
		bad "http_diff $1 $3" "$(tail -5 "$tmp/cmp")"
	fi
}

# ---- sockmap on: straight to the pod, then the local path ----
lab_fresh --sockmap
setup_local || bad "apply helloworld v1, sleep and the routes" "$(cat "$tmp/apply")"
HW=$(vip cluster1 hello helloworld)
V1=$(podip helloworld-v1)
"$KSTEER" get frontends -i $NODE | grep -q "$HW:5000/tcp  shim" && ok "helloworld's frontend $HW:5000 goes through the shim" ||
	bad "shim frontend" "$("$KSTEER" get frontends -i $NODE)"

s0=$(stat $NODE connect_shim)
cases "$tmp/direct.json" "$V1:5000"
s1=$(stat $NODE connect_shim)
[ "$s1" = "$s0" ] && ok "straight to the pod $V1:5000: no connection sent to the shim" ||
	bad "the straight path is straight" "connect_shim $s0 -> $s1"
tally check "$tmp/direct.json" "straight"

cases "$tmp/local.json" "$HW:5000" "$(agents)"
tally compare "$tmp/direct.json" "$tmp/local.json" "local, sockmap on"

# ---- across clusters: the reference scenario, jason to v2/v3 in cluster2 through the gateway ----
scenario_kit "$tmp/kit"
scenario_apply "$tmp/kit" cluster1 cluster2 hello service=helloworld version=v1 version=v2 version=v3 ||
	bad "apply the scenario" "$(cat "$tmp/apply")"
HW=$(vip cluster1 hello helloworld)
r=$("$KSTEER" lab exec cluster1 hello/sleep -- curl -s -m 5 -H 'end-user: jason' "http://$HOST/hello")
if [[ $r == *"cluster: cluster2"* ]]; then
	ok "jason's requests to $HOST cross to cluster2 ($r)"
	cases "$tmp/cross.json" "$HW:5000" "$(agents)"
	tally compare "$tmp/direct.json" "$tmp/cross.json" "cross-cluster"
else
	bad "jason's requests cross to cluster2" "$r"
fi

# ---- sockmap off: the local path again ----
lab_fresh --no-sockmap
setup_local || bad "apply helloworld v1, sleep and the routes (no sockmap)" "$(cat "$tmp/apply")"
HW=$(vip cluster1 hello helloworld)
"$KSTEER" status --instance $NODE | grep -q "^sockmap off" && ok "sockmap off on the node" ||
	bad "sockmap off" "$("$KSTEER" status --instance $NODE | grep sockmap)"
cases "$tmp/nosockmap.json" "$HW:5000" "$(agents)"
tally compare "$tmp/direct.json" "$tmp/nosockmap.json" "local, sockmap off"
"$KSTEER" status --instance $NODE >/dev/null && ok "the node's agent still answers after all cases" || bad "agent alive at the end"
finish
