#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Workload certificates rotate at half life under continuous traffic, on both
# sides of the mutual TLS, and no request fails.
. "$(dirname "$0")/lib.sh"
need_root
SECS=${ROTATION_SECONDS:-12}

lab_fresh --cert-ttl 4s
scenario_kit "$tmp/kit"
scenario_apply "$tmp/kit" cluster1 cluster2 hello service=helloworld version=v1 version=v2 version=v3 || bad "apply the scenario" "$(cat "$tmp/apply")"

certs() { # INSTANCE FIELD
	"$KSTEER" status --instance "$1" | sed -n 's/^shim //p' |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["certificates"][sys.argv[1]])' "$2"
}
serial() { # the serial of the certificate cluster2's inbound side presents for helloworld
	echo | ip netns exec ksl-c2-gw openssl s_client -connect 10.2.0.11:15008 \
		-servername outbound_.5000_.v2_.helloworld.hello.svc.cluster.local 2>/dev/null |
		openssl x509 -noout -serial 2>/dev/null
}

s1=$(serial)
# new connections, and one keep-alive connection, both alternating jason and not, for SECS
"$KSTEER" lab exec cluster1 hello/sleep -- bash -c "end=\$((SECONDS + $SECS)); while [ \$SECONDS -lt \$end ]; do
	curl -s -m 5 -H 'end-user: jason' http://helloworld.hello:5000/hello || echo FAIL; echo
	curl -s -m 5 http://helloworld.hello:5000/hello || echo FAIL; echo; done" | grep -v '^$' >"$tmp/new" &
p1=$!
started_pids+=($p1)
"$KSTEER" lab exec cluster1 hello/sleep -- python3 - "$SECS" >"$tmp/ka" 2>&1 <<'PY' &
import http.client, sys, time
end = time.time() + float(sys.argv[1])
c = http.client.HTTPConnection("helloworld.hello", 5000, timeout=5)
ok = fail = i = 0
while time.time() < end:
    i += 1
    try:
        c.request("GET", "/hello", headers={"end-user": "jason"} if i % 2 else {})
        body = c.getresponse().read().decode()
        ok += "Hello version" in body
        fail += "Hello version" not in body
    except Exception as e:
        fail += 1
        c = http.client.HTTPConnection("helloworld.hello", 5000, timeout=5)
print("ok", ok, "fail", fail)
PY
p2=$!
started_pids+=($p2)
sleep $((SECS / 2))
s2=$(serial)
wait $p1 $p2

total=$(wc -l <"$tmp/new")
failed=$(grep -vc 'Hello version' "$tmp/new")
read -r _ kok _ kfail <"$tmp/ka"
r1=$(certs lab-cluster1-node1 rotated) r2=$(certs lab-cluster2-node1 rotated)
if [ "$total" -gt 50 ] && [ "$failed" -eq 0 ] && [ "${kfail:-1}" -eq 0 ] && [ "${kok:-0}" -gt 50 ]; then
	ok "$SECS s of traffic with a 4 s certificate TTL: $total requests on new connections and $kok on one keep-alive connection, none failed"
else
	bad "traffic during rotation" "new connections: $total, failed $failed: $(grep -v 'Hello version' "$tmp/new" | sort | uniq -c | head -3)" "keep-alive: $(cat "$tmp/ka")"
fi
[ "$r1" -ge 3 ] && [ "$r2" -ge 3 ] && ok "certificates rotated at half life on both sides (cluster1 node: $r1, cluster2 node: $r2 rotations)" ||
	bad "rotations" "cluster1 node rotated $r1, cluster2 node rotated $r2"
[ -n "$s1" ] && [ -n "$s2" ] && [ "$s1" != "$s2" ] && ok "the inbound side presents a new certificate after rotation ($s1 -> $s2)" ||
	bad "served certificate did not change" "'$s1' '$s2'"
finish
