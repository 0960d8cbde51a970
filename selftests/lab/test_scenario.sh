#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# The reference scenario across two clusters, with its policies applied as
# written: the header rule per request, 70/30 across the gateway with
# ISTIO_MUTUAL, mesh DNS, only TLS on the WAN, the gateway's and the inbound
# side's refusals (openssl s_client), hostile HTTP; then the same scenario
# with every name changed and Istio's current forms (.svc.cluster.local SNI,
# a *.local Gateway, a 240.0.0.0/4 address), on two nodes per cluster.
. "$(dirname "$0")/lib.sh"
need_root
N=${SCENARIO_REQUESTS:-1000}
scen=$SHARED/scenario


# requests CLUSTER POD URL N [curl args...]: one curl (one connection) per request
requests() {
	local c=$1 p=$2 u=$3 n=$4
	shift 4
	"$KSTEER" lab exec "$c" "$p" -- bash -c 'u=$1; n=$2; shift 2
		for i in $(seq "$n"); do curl -s -m 5 "$@" "$u" || echo FAIL; echo; done' _ "$u" "$n" "$@" |
		grep -v '^$'
}

only() { # FILE VERSION...: every answer is one of these versions
	local f=$1
	shift
	python3 - "$f" "$@" <<'PY'
import re, sys
lines = [l for l in open(sys.argv[1]) if l.strip()]
vs = set(sys.argv[2:])
bad = [l for l in lines if not (m := re.search(r"version: (\S+?),", l)) or m.group(1) not in vs]
sys.exit(1 if bad or not lines else 0)
PY
}

clusters_of() { python3 -c 'import re,sys; print(" ".join(sorted(set(re.findall(r"cluster: (\S+)", open(sys.argv[1]).read())))))' "$1"; }

# ---- 1. the scenario as written ----
lab_fresh
scenario_kit "$tmp/kit"
scenario_apply "$tmp/kit" cluster1 cluster2 hello service=helloworld version=v1 version=v2 version=v3 &&
	ok "the scenario's files applied as written (CLUSTER2_GW_ADDR from ksteer lab env)" ||
	bad "apply the scenario" "$(cat "$tmp/apply")"

# capture the WAN while the requests run: only TLS may cross it
ip netns exec ksl-wan tcpdump -i br0 --immediate-mode -U -s 0 -w "$tmp/wan.pcap" tcp >/dev/null 2>"$tmp/tcpdump.err" &
started_pids+=($!)
tcpdump_pid=$!
sleep 1

requests cluster1 hello/sleep http://helloworld.hello:5000/hello "$N" -H 'end-user: jason' >"$tmp/jason"
requests cluster1 hello/sleep http://helloworld.hello:5000/hello "$N" >"$tmp/others"
if only "$tmp/jason" v2 v3 && within "$tmp/jason" v2 70 5 && within "$tmp/jason" v3 30 5 &&
	[ "$(clusters_of "$tmp/jason")" = cluster2 ]; then
	ok "jason: only v2/v3, from cluster2, 70/30 within 5 points ($(shares "$tmp/jason"))"
else
	bad "jason's split" "$(shares "$tmp/jason")" "$(grep -v version "$tmp/jason" | head -3)"
fi
only "$tmp/others" v1 && [ "$(clusters_of "$tmp/others")" = cluster1 ] &&
	ok "everyone else: only v1, in cluster1 ($(shares "$tmp/others"))" ||
	bad "others" "$(shares "$tmp/others")" "$(grep -v version "$tmp/others" | head -3)"

n=$((N / 5))
requests cluster1 hello/sleep http://helloworld.hello.global:5000/hello "$n" -H 'end-user: jason' >"$tmp/gj"
requests cluster1 hello/sleep http://helloworld.hello.global:5000/hello "$n" >"$tmp/go"
only "$tmp/gj" v2 v3 && within "$tmp/gj" v2 70 10 && only "$tmp/go" v1 &&
	ok "the same through helloworld.hello.global:5000 (jason $(shares "$tmp/gj"); others $(shares "$tmp/go"))" ||
	bad "through the .global name" "$(shares "$tmp/gj")" "$(shares "$tmp/go")"

# one keep-alive connection alternating the header: each request routed by its own
"$KSTEER" lab exec cluster1 hello/sleep -- python3 - >"$tmp/ka" 2>&1 <<'PY'
import http.client
c = http.client.HTTPConnection("helloworld.hello", 5000, timeout=5)
bad = 0
for i in range(200):
    jason = i % 2 == 1
    c.request("GET", "/hello", headers={"end-user": "jason"} if jason else {})
    body = c.getresponse().read().decode()
    v = body.split(",")[0].split()[-1]
    if (v in ("v2", "v3")) != jason:
        bad += 1
print("misrouted", bad)
PY
grep -qx "misrouted 0" "$tmp/ka" && ok "one keep-alive connection, alternating headers: 200 requests each routed by its own" ||
	bad "keep-alive alternation" "$(cat "$tmp/ka")"

kill "$tcpdump_pid" 2>/dev/null
wait "$tcpdump_pid" 2>/dev/null
python3 - "$tmp/wan.pcap" >"$tmp/wan" <<'PY'
import sys
d = open(sys.argv[1], "rb").read()
print(len(d), d.count(b"Hello version"), d.count(b"outbound_.5000_.v2_.helloworld.hello.global"),
      d.count(b"outbound_.5000_.v3_.helloworld.hello.global"), d.count(b"end-user"))
PY
read -r size plain sni2 sni3 hdr <"$tmp/wan"
if [ "$size" -gt 10000 ] && [ "$plain" -eq 0 ] && [ "$hdr" -eq 0 ] && [ "$sni2" -gt 0 ] && [ "$sni3" -gt 0 ]; then
	ok "the WAN carried only TLS: $size bytes captured, no 'Hello version' or header in clear, SNIs outbound_.5000_.v2_/v3_.helloworld.hello.global seen"
else
	bad "WAN capture" "bytes=$size plaintext=$plain sni_v2=$sni2 sni_v3=$sni3 end-user=$hdr" "$(cat "$tmp/tcpdump.err")"
fi

# ---- the same node: v1 is on sleep's node, whose own inbound side would take the
# mutual TLS; the agent hands the connection over in process instead (after the
# checks both TLS ends would make), as ztunnel's same-node fast path does ----
sn=$(shimstat lab-cluster1-node1 sameNode)
in=$(shimstat lab-cluster1-node1 inbound.accepted)
[ "$sn" -gt 0 ] && [ "$in" = 0 ] &&
	ok "same node: v1's ISTIO_MUTUAL upstreams handed over in process ($sn), none looped through the node's own 15008" ||
	bad "same-node fast path" "sameNode $sn, inbound accepted $in"

# subjectAltNames in the DestinationRules: a wrong one refuses both paths alike (in
# process and through the gateway's real handshake), the right one lets them through
sans() { # SAN: both DestinationRules with tls.subjectAltNames [SAN]
	for f in "$tmp/kit/cluster1/02-destinationrule-global.yaml" "$tmp/kit/cluster1/03-destinationrule-local.yaml"; do
		sed "s|mode: ISTIO_MUTUAL|mode: ISTIO_MUTUAL\n      subjectAltNames: [\"$1\"]|" "$f" |
			"$KSTEER" lab apply cluster1 -n hello -f - || return 1
	done >"$tmp/apply" 2>&1
}
answer() { # [curl args]: status code and x-ksteer-reason of one request
	"$KSTEER" lab exec cluster1 hello/sleep -- curl -s -m 10 -D - -o /dev/null "$@" http://helloworld.hello:5000/hello |
		tr -d '\r' | awk 'NR == 1 {c = $2} tolower($1) == "x-ksteer-reason:" {$1 = ""; r = $0} END {print c r}'
}
if sans spiffe://cluster.local/ns/hello/sa/nobody; then
	o=$(answer)
	j=$(answer -H 'end-user: jason')
	[[ $o == "503 "*"not among the subjectAltNames"* ]] && [[ $j == "503 "*"not among the subjectAltNames"* ]] &&
		ok "subjectAltNames naming another identity: 503 on the same node and across the gateway alike ($o)" ||
		bad "wrong subjectAltNames" "same node: $o" "across: $j"
else
	bad "apply DestinationRules with subjectAltNames" "$(cat "$tmp/apply")"
fi
if sans spiffe://cluster.local/ns/hello/sa/helloworld; then
	requests cluster1 hello/sleep http://helloworld.hello:5000/hello 10 >"$tmp/so"
	requests cluster1 hello/sleep http://helloworld.hello:5000/hello 10 -H 'end-user: jason' >"$tmp/sj"
	only "$tmp/so" v1 && only "$tmp/sj" v2 v3 &&
		ok "subjectAltNames naming helloworld's identity: both paths answer (v1; $(shares "$tmp/sj"))" ||
		bad "right subjectAltNames" "$(cat "$tmp/so" "$tmp/sj" | sort | uniq -c)"
else
	bad "apply DestinationRules with subjectAltNames" "$(cat "$tmp/apply")"
fi
for f in "$tmp/kit/cluster1/02-destinationrule-global.yaml" "$tmp/kit/cluster1/03-destinationrule-local.yaml"; do
	"$KSTEER" lab apply cluster1 -n hello -f "$f" >/dev/null || bad "restore $f"
done

# mirror across clusters: everyone else's requests also copied to v2 in cluster2, through
# the gateway in mutual TLS (the copy's host "-shadow", its answer dropped)
sed 's|^        subset: v1$|        subset: v1\n    mirror: {host: helloworld.hello.global, subset: v2}|' \
	"$tmp/kit/cluster1/04-virtualservice.yaml" >"$tmp/mirror.yaml"
"$KSTEER" lab apply cluster1 -n hello -f "$tmp/mirror.yaml" >"$tmp/apply" 2>&1 || bad "apply the mirror" "$(cat "$tmp/apply")"
v2ip=$("$KSTEER" lab status -o json | python3 -c 'import json,sys; print([p["ip"] for c in json.load(sys.stdin)["clusters"] for p in c["pods"] if p["name"].startswith("helloworld-v2")][0])')
served() { "$KSTEER" lab exec cluster2 hello/helloworld-v2-0 -- curl -s -m 3 "http://$v2ip:5000/served"; }
read -r m0 _ <<<"$(served)"
requests cluster1 hello/sleep http://helloworld.hello:5000/hello 20 >"$tmp/mo"
sleep 0.5
read -r m1 mhost <<<"$(served)"
only "$tmp/mo" v1 && [ "$((m1 - m0))" = 20 ] && [ "$mhost" = "helloworld.hello-shadow:5000" ] &&
	ok "mirror to helloworld.hello.global v2: 20 answers from v1, 20 copies reached v2 in cluster2 through the gateway" ||
	bad "cross-cluster mirror" "$(shares "$tmp/mo")" "v2 served $m0 -> $m1, last host $mhost"
"$KSTEER" lab apply cluster1 -n hello -f "$tmp/kit/cluster1/04-virtualservice.yaml" >/dev/null 2>&1 || bad "restore the VirtualService"

# ---- the gateway's refusals ----
gw=172.30.2.1
"$KSTEER" cert mint --ca /run/ksteer-lab/cluster1/cacerts --ns hello --sa sleep --out "$tmp/good" >/dev/null
creds="-cert $tmp/good/cert.pem -cert_chain $tmp/good/cert-chain.pem -key $tmp/good/key.pem -CAfile /run/ksteer-lab/ca/root-cert.pem"
sclient() { # NETNS ADDR:PORT SNI [args]: the answer to GET /hello, or the error
	local ns=$1 to=$2 sni=$3
	shift 3
	printf 'GET /hello HTTP/1.0\r\n\r\n' |
		timeout 10 ip netns exec "$ns" openssl s_client -quiet -connect "$to" ${sni:+-servername "$sni"} "$@" 2>&1 | tail -n 1
}
gwstat() { shimstat lab-cluster2-gateway "gateway.$1"; }
r=$(sclient ksl-c1-gw $gw:15443 outbound_.5000_.v3_.helloworld.hello.global $creds)
[[ $r == *"version: v3"* ]] && ok "s_client with a mesh certificate through the gateway, SNI subset v3: $r" ||
	bad "s_client through the gateway" "$r"
before=$(gwstat refusedExposure)
r=$(sclient ksl-c1-gw $gw:15443 outbound_.5000_.v2_.helloworld.hello.svc.cluster.local $creds)
[[ $r == *"unrecognized name"* ]] && [ "$(gwstat refusedExposure)" -eq $((before + 1)) ] &&
	ok "gateway: SNI for a host its Gateway (*.global) does not expose refused (alert unrecognized_name), counted" ||
	bad "gateway exposure" "$r" "refusedExposure $before -> $(gwstat refusedExposure)"
before=$(gwstat refusedTarget)
r=$(sclient ksl-c1-gw $gw:15443 outbound_.5000_.v9_.helloworld.hello.global $creds)
[[ $r == *"unrecognized name"* ]] && [ "$(gwstat refusedTarget)" -eq $((before + 1)) ] &&
	ok "gateway: an unknown subset refused, counted" || bad "gateway subset" "$r"
before=$(gwstat refusedSni)
r=$(sclient ksl-c1-gw $gw:15443 "" $creds)
[[ $r != *"Hello"* ]] && [ "$(gwstat refusedSni)" -eq $((before + 1)) ] &&
	ok "gateway: a ClientHello without SNI refused, counted" || bad "gateway no SNI" "$r"
before=$(gwstat refusedHello)
ip netns exec ksl-c1-gw python3 - "$gw" >"$tmp/junk" 2>&1 <<'PY'
import socket, sys
for junk in (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00",
             b"\x16\x03\x01\xff\xff" + b"\x01" * 200):
    s = socket.create_connection((sys.argv[1], 15443), timeout=15)
    s.sendall(junk)
    s.shutdown(socket.SHUT_WR)
    print(repr(s.recv(100)))
    s.close()
PY
[ "$(gwstat refusedHello)" -ge $((before + 3)) ] && ! grep -q Hello "$tmp/junk" &&
	ok "gateway: malformed ClientHellos (plain HTTP, a broken hello, a truncated record) refused, counted" ||
	bad "gateway junk" "$(cat "$tmp/junk")" "refusedHello $before -> $(gwstat refusedHello)"

# ---- the inbound side's refusals (cluster2's node, straight from its gateway's netns) ----
node=10.2.0.11:15008
sni=outbound_.5000_.v2_.helloworld.hello.svc.cluster.local
"$KSTEER" cert mint --ca /run/ksteer-lab/cluster2/cacerts --ns hello --sa sleep --ttl 1h --valid-from -2h --out "$tmp/expired" >/dev/null
"$KSTEER" cert mint --ca /run/ksteer-lab/cluster2/cacerts --ns hello --sa sleep --trust-domain other.example --out "$tmp/td" >/dev/null
"$KSTEER" cert root --out "$tmp/root2" >/dev/null
"$KSTEER" cert intermediate --root "$tmp/root2" --out "$tmp/ca2" --cluster cluster2 >/dev/null
"$KSTEER" cert mint --ca "$tmp/ca2" --ns hello --sa sleep --out "$tmp/untrusted" >/dev/null
with() { echo "-cert $tmp/$1/cert.pem -cert_chain $tmp/$1/cert-chain.pem -key $tmp/$1/key.pem"; }
r=$(sclient ksl-c2-gw $node $sni $creds)
[[ $r == *"version: v2"* ]] && ok "inbound 15008: a mesh certificate gets the pod the SNI names ($r)" || bad "inbound good" "$r"
r=$(sclient ksl-c2-gw $node $sni -CAfile /run/ksteer-lab/ca/root-cert.pem)
[[ $r == *"certificate required"* ]] && ok "inbound 15008: no client certificate refused (certificate_required)" || bad "inbound no cert" "$r"
r=$(sclient ksl-c2-gw $node $sni $(with untrusted) -CAfile /run/ksteer-lab/ca/root-cert.pem)
[[ $r == *"unknown ca"* ]] && ok "inbound 15008: a certificate from another root refused (unknown_ca)" || bad "inbound untrusted" "$r"
r=$(sclient ksl-c2-gw $node $sni $(with expired) -CAfile /run/ksteer-lab/ca/root-cert.pem)
[[ $r == *"certificate expired"* ]] && ok "inbound 15008: an expired certificate refused (certificate_expired)" || bad "inbound expired" "$r"
r=$(sclient ksl-c2-gw $node $sni $(with td) -CAfile /run/ksteer-lab/ca/root-cert.pem)
[[ $r == *"handshake failure"* ]] && grep -q "spiffe://other.example/ns/hello/sa/sleep is not in trust domain cluster.local" /run/ksteer-lab/logs/lab-cluster2-node1.log &&
	ok "inbound 15008: another trust domain refused, the agent says why" || bad "inbound trust domain" "$r"

# ---- hostile HTTP from a pod: errors, and the agent lives on ----
"$KSTEER" lab exec cluster1 hello/sleep -- python3 - >"$tmp/hostile" 2>&1 <<'PY'
import socket
def ask(raw):
    s = socket.create_connection(("helloworld.hello", 5000), timeout=5)
    s.sendall(raw)
    d = b""
    try:
        while True:
            x = s.recv(4096)
            if not x:
                break
            d += x
    except socket.timeout:
        pass
    s.close()
    return d.split(b"\r\n")[0].decode(errors="replace")
print(ask(b"GET /hello HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"))
print(ask(b"GET /hello HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\n\r\n"))
print(ask(b"GET /hello HTTP/1.1\r\nHost: h\r\nX-A: a\x00b\r\n\r\n"))
print(ask(b"GET /hello HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"))
print(ask(b"GET /hello HTTP/1.1\r\nHost: h\r\nX: " + b"a" * 70000 + b"\r\n\r\n"))
print(ask(b"\x16\x03\x01\x02\x00garbage\r\n\r\n"))
print(ask(b"GET /hello HTTP/1.1\r\nHost: h\r\nend-user: jason\r\nConnection: close\r\n\r\n"))
PY
mapfile -t h <"$tmp/hostile"
if [[ ${h[0]} == *" 400 "* && ${h[1]} == *" 400 "* && ${h[2]} == *" 400 "* && ${h[3]} == *" 400 "* &&
	${h[4]} == *" 431 "* && ${h[5]} == *" 400 "* && ${h[6]} == *" 200 "* ]]; then
	ok "hostile HTTP: CL+TE, obs-fold, NUL, duplicate CL, garbage -> 400; 70 KB head -> 431; then a good request -> 200"
else
	bad "hostile HTTP" "${h[@]}"
fi

# ---- 2. the same scenario, every name changed, Istio's current forms, two nodes each ----
"$KSTEER" lab down >/dev/null 2>&1
cat >"$tmp/lab.yaml" <<'Y'
clusters:
- {name: east, nodes: 2}
- {name: west, nodes: 2}
Y
"$KSTEER" lab up -f "$tmp/lab.yaml" --sni-form local >"$tmp/up" 2>&1 || bad "lab up east/west" "$(cat "$tmp/up")"
mkdir -p "$tmp/kit2"
rename() {
	sed -e 's/helloworld/greeter/g' -e 's/\bhello\b/shop/g' -e 's/cluster1/east/g' -e 's/cluster2/west/g' \
		-e 's/CLUSTER2_GW_ADDR/WEST_GW_ADDR/g' -e 's/version: v\([123]\)/track: t\1/g' \
		-e 's/\(name: \|subset: \|value: \)v1\b/\1stable/' -e 's/\(name: \|subset: \|value: \)v2\b/\1canary/' \
		-e 's/\(name: \|subset: \|value: \)v3\b/\1beta/' -e 's/end-user/x-tier/' \
		-e 's/jason/gold/' -e 's/weight: 70/weight: 60/' -e 's/weight: 30/weight: 40/' \
		-e 's/127\.255\.0\.8/240.0.0.9/' -e 's/"\*\.global"/"*.local"/' "$1"
}
for c in cluster1 cluster2; do
	mkdir -p "$tmp/kit2/$c"
	for f in "$scen/$c"/*.yaml; do rename "$f" >"$tmp/kit2/$c/$(basename "$f")"; done
done
rename "$EX/sleep.yaml" >"$tmp/kit2/sleep.yaml"
rename "$EX/helloworld.yaml" >"$tmp/kit2/helloworld.yaml"
if grep -rqE 'helloworld|jason|end-user|cluster[12]|version: v' "$tmp/kit2"; then
	bad "the renamed kit still holds an old name" "$(grep -rE 'helloworld|jason|end-user|cluster[12]|version: v' "$tmp/kit2" | head -3)"
fi
scenario_apply "$tmp/kit2" east west shop service=greeter track=t1 track=t2 track=t3 &&
	ok "renamed scenario applied (east/west, shop, greeter, track labels, x-tier: gold, 60/40, 240.0.0.9, *.local Gateway)" ||
	bad "apply the renamed scenario" "$(cat "$tmp/apply")"
requests east shop/sleep http://greeter.shop:5000/hello "$((N / 2))" -H 'x-tier: gold' >"$tmp/gold"
requests east shop/sleep http://greeter.shop:5000/hello "$((N / 5))" >"$tmp/rest"
if only "$tmp/gold" canary beta && within "$tmp/gold" canary 60 7 && [ "$(clusters_of "$tmp/gold")" = west ] &&
	only "$tmp/rest" stable && [ "$(clusters_of "$tmp/rest")" = east ]; then
	ok "renamed: gold 60/40 canary/beta from west ($(shares "$tmp/gold")), the rest stable in east"
else
	bad "renamed scenario" "$(shares "$tmp/gold")" "$(shares "$tmp/rest")" "$(grep -v version "$tmp/gold" | head -3)"
fi
# sleep and the stable pod: on one east node the hand-over stays in process, on two
# the mutual TLS crosses to the other node's inbound side
read -r sn_node st_node <<<"$("$KSTEER" lab status -o json | python3 -c 'import json,sys
pods = [p for c in json.load(sys.stdin)["clusters"] if c["name"] == "east" for p in c["pods"]]
node = lambda pre: [p["node"] for p in pods if p["name"].startswith(pre)][0]
print(node("sleep-"), node("greeter-v1-"))')"
if [ "$sn_node" = "$st_node" ]; then
	[ "$(shimstat "lab-east-$sn_node" sameNode)" -gt 0 ] && [ "$(shimstat "lab-east-$st_node" inbound.ok)" = 0 ] &&
		ok "renamed: sleep and stable both on $sn_node: handed over in process" || bad "east same node" "$("$KSTEER" status --instance "lab-east-$sn_node" | grep shim)"
else
	[ "$(shimstat "lab-east-$sn_node" sameNode)" = 0 ] && [ "$(shimstat "lab-east-$st_node" inbound.ok)" -gt 0 ] &&
		ok "renamed: sleep on $sn_node, stable on $st_node: the mutual TLS went to $st_node's inbound side" ||
		bad "east across nodes" "$("$KSTEER" status --instance "lab-east-$sn_node" | grep shim)" "$("$KSTEER" status --instance "lab-east-$st_node" | grep shim)"
fi
"$KSTEER" status --instance lab-west-gateway | grep -q '"routed":[1-9]' &&
	ok "renamed: the west gateway routed .svc.cluster.local SNIs (--sni-form local) exposed by *.local" ||
	bad "west gateway" "$("$KSTEER" status --instance lab-west-gateway)"
for i in lab-east-node1 lab-east-node2 lab-west-node1 lab-west-node2 lab-west-gateway; do
	[ -S /run/ksteer/$i.sock ] || bad "agent $i died"
done
finish
