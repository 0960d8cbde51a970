#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# The lab plays kubelet for ksteer's own pods: the agents start from manifests/deploy (through
# the lab overlay manifests/lab), watch the lab's API, show as Pods, start again after a kill,
# a broken manifest fails lab up, and lab down leaves no process behind.
. "$(dirname "$0")/lib.sh"
need_root
command -v kubectl >/dev/null || { bad "no kubectl on this machine"; finish; exit 1; }
export HOME=$tmp # kubectl's discovery cache, this run's own

agent_pid() { # INSTANCE: the pid of the pod's container that runs it
	python3 -c '
import json, sys
for c in json.load(open("/run/ksteer-lab/state.json"))["clusters"]:
    for p in c["pods"]:
        if p.get("instance") == sys.argv[1]:
            print(p["serverPid"])' "$1"
}
cmdline() { tr '\0' ' ' <"/proc/$1/cmdline"; }
kube_events() { "$KSTEER" status -i "$1" | sed -n 's/^kube counters .* events \([0-9]*\) .*/\1/p'; }

"$KSTEER" lab down >/dev/null 2>&1
t0=$(date +%s%N)
"$KSTEER" lab up >"$tmp/up" 2>&1 || { bad "lab up" "$(tail -20 "$tmp/up")"; finish; exit 1; }
ok "lab up from the manifests in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
eval "$("$KSTEER" lab env)"

# ---- the agents' argv and env come from the manifests ----
n1=$(agent_pid lab-cluster1-node1) g1=$(agent_pid lab-cluster1-gateway)
a=$(cmdline "$n1")
case "$a" in
*" agent --kube --instance=node --cgroup=/sys/fs/cgroup --policy=/etc/ksteer/mesh --ca=/etc/ksteer/cacerts --trust-domain=cluster.local --inbound --shim=10.1.0.11 --admin=:: --instance lab-cluster1-node1 "*)
	ok "node agent's argv: the DaemonSet's args, \$(VARS) expanded, then the lab's" ;;
*) bad "node agent's argv" "$a" ;;
esac
case "$a" in *--no-dns*) bad "the overlay removes --no-dns" "$a" ;; *) ok "no --no-dns (the lab overlay)" ;; esac
a=$(cmdline "$g1")
case "$a" in
*" agent --kube --gateway --gateway-labels=app=ksteer-eastwestgateway,istio=ingressgateway --instance=gateway "*"--netns ksl-c1-gw"*)
	ok "gateway agent's argv: the Deployment's args, labels from the downward API" ;;
*) bad "gateway agent's argv" "$a" ;;
esac
e=$(tr '\0' '\n' <"/proc/$n1/environ")
grep -qx "KUBERNETES_SERVICE_HOST=127.0.0.1" <<<"$e" && grep -qx "NODE_NAME=node1" <<<"$e" &&
	grep -qx "HOST_IP=10.1.0.11" <<<"$e" && grep -qx "TRUST_DOMAIN=cluster.local" <<<"$e" &&
	ok "env: the API's Service, fieldRef and configMapKeyRef values" || bad "env" "$e"
m=$(nsenter -t "$n1" -m sh -c 'ls /etc/ksteer/mesh /etc/ksteer/cacerts /var/run/secrets/kubernetes.io/serviceaccount; stat -c %a /etc/ksteer/cacerts/ca-key.pem' 2>&1)
grep -q mesh-networks.yaml <<<"$m" && grep -q ca-key.pem <<<"$m" && grep -q token <<<"$m" &&
	grep -qx 400 <<<"$m" && [ ! -e /etc/ksteer ] &&
	ok "volumes at their mountPath in the container's mount namespace only (secret mode 0400)" ||
	bad "volumes" "$m" "$(ls -d /etc/ksteer 2>&1)"

# ---- the Pods, Running and Ready ----
for c in cluster1 cluster2; do
	kubectl --context "$c" -n ksteer-system get pods -o wide >"$tmp/pods.$c" 2>&1
	grep -qE '^ksteer-node-node1 +1/1 +Running +0 ' "$tmp/pods.$c" &&
		grep -qE '^ksteer-eastwestgateway-0 +1/1 +Running +0 ' "$tmp/pods.$c" &&
		ok "$c: kubectl get pods shows ksteer-node-node1 and the gateway Running, Ready" ||
		bad "$c: kubectl get pods" "$(cat "$tmp/pods.$c")"
done

# ---- policy through the API's watch, not a directory ----
before=$(kube_events lab-cluster1-node1)
kubectl --context cluster1 create namespace hello >/dev/null
kubectl --context cluster1 -n hello apply -f "$EX/sleep.yaml" >/dev/null
kubectl --context cluster1 -n hello apply -f "$EX/helloworld.yaml" -l service=helloworld >/dev/null
kubectl --context cluster1 -n hello apply -f "$EX/helloworld.yaml" -l version=v1 >"$tmp/apply" 2>&1
sleep 2
after=$(kube_events lab-cluster1-node1)
[ -n "$before" ] && [ -n "$after" ] && [ "$after" -gt "$before" ] &&
	ok "kubectl changes reach the node agent through its watch (events $before -> $after)" ||
	bad "the watch" "before '$before' after '$after'" "$("$KSTEER" status -i lab-cluster1-node1 | grep kube)"
hello() { "$KSTEER" lab exec cluster1 hello/sleep -- curl -s -m 5 http://helloworld.hello:5000/hello; }
for i in $(seq 20); do r=$(hello); grep -q "version: v1" <<<"$r" && break; sleep 1; done
grep -q "version: v1" <<<"$r" && ok "routing: sleep -> helloworld ($r)" || bad "routing before the kill" "$r"

# ---- restartPolicy Always ----
kill -9 "$n1"
# (the kubelet writes Ready from the readiness file on its next check, a second at most later)
for i in $(seq 40); do
	n2=$(agent_pid lab-cluster1-node1)
	rc=$(kubectl --context cluster1 -n ksteer-system get pod ksteer-node-node1 -o jsonpath='{.status.containerStatuses[0].restartCount} {.status.conditions[?(@.type=="Ready")].status}')
	[ -n "$n2" ] && [ "$n2" != "$n1" ] && [ -e /run/ksteer-lab/lab-cluster1-node1.ready ] && [ "$rc" = "1 True" ] && break
	sleep 0.5
done
[ "$n2" != "$n1" ] && [ "$rc" = "1 True" ] &&
	ok "kill -9 of the node agent: started again by the lab's kubelet (pid $n1 -> $n2, restartCount 1, Ready)" ||
	bad "restart after kill -9" "pid $n1 -> $n2" "status '$rc'" "$(tail -3 /run/ksteer-lab/logs/api-cluster1.log)"
for i in $(seq 10); do r=$(hello); grep -q "version: v1" <<<"$r" && break; sleep 1; done
grep -q "version: v1" <<<"$r" && ok "routing continues after the restart" || bad "routing after the restart" "$r"

# ---- lab down leaves nothing running ----
pids=$(python3 -c 'import json; print(" ".join(str(p) for p in json.load(open("/run/ksteer-lab/state.json"))["pids"]))')
"$KSTEER" lab down >"$tmp/down" 2>&1 || bad "lab down" "$(cat "$tmp/down")"
left=
# a zombie is gone for this purpose (its parent, the API server, is gone too)
for p in $pids; do
	[ -e "/proc/$p/stat" ] && [ "$(sed 's/.*) \(.\).*/\1/' "/proc/$p/stat" 2>/dev/null)" != Z ] &&
		left="$left $p($(cmdline "$p"))"
done
[ -z "$left" ] && [ ! -e /run/secrets/kubernetes.io ] &&
	ok "lab down: none of the lab's $(wc -w <<<"$pids") processes left" || bad "lab down left" "$left"

# ---- a broken manifest fails lab up, saying why ----
mkdir -p "$tmp/broken"
cat >"$tmp/broken/kustomization.yaml" <<EOF
resources:
- $(realpath --relative-to="$tmp/broken" "$TOP/manifests/lab")
patches:
- target:
    kind: DaemonSet
    name: ksteer-node
  patch: |-
    - op: add
      path: /spec/template/spec/containers/0/args/-
      value: --no-such-flag
EOF
if "$KSTEER" lab up --manifests "$tmp/broken" >"$tmp/up2" 2>&1; then
	bad "lab up with an unknown agent flag succeeded" "$(tail -5 "$tmp/up2")"
else
	grep -q "did not become ready" "$tmp/up2" && grep -q -- "no-such-flag" "$tmp/up2" &&
		ok "a broken manifest fails lab up: $(grep -m1 -- no-such-flag "$tmp/up2")" ||
		bad "lab up's message for a broken manifest" "$(cat "$tmp/up2")"
fi
"$KSTEER" lab down >/dev/null 2>&1
finish
