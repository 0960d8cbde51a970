#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# The outbound shim, plain HTTP: per-request routing by VirtualService http
# routes (also on one keep-alive connection), weighted splits per request, and
# HTTP errors for what cannot be routed or parsed. SOCKMAP=off runs it all
# again with the app <-> shim sockets left to TCP (test_shim_nosockmap.sh).
. "$(dirname "$0")/lib.sh"
need_root
SOCKMAP=${SOCKMAP:-on}

"$KSTEER" lab down >/dev/null 2>&1
"$KSTEER" lab up $([ "$SOCKMAP" = off ] && echo --no-sockmap || echo --sockmap) >"$tmp/up" 2>&1 || { bad "lab up" "$(cat "$tmp/up")"; finish; exit 1; }
for f in "$EX/helloworld.yaml" "$EX/sleep.yaml"; do
	"$KSTEER" lab apply cluster1 -n hello -f "$f" >"$tmp/o" 2>&1 || bad "apply $(basename "$f")" "$(cat "$tmp/o")"
done
cat >"$tmp/routes.yaml" <<'Y'
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: helloworld}
spec:
  host: helloworld
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
  - {name: v3, labels: {version: v3}}
  - {name: v9, labels: {version: v9}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: helloworld}
spec:
  hosts: [helloworld]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    route:
    - {destination: {host: helloworld, subset: v2}, weight: 70}
    - {destination: {host: helloworld, subset: v3}, weight: 30}
  - match: [{uri: {prefix: /nowhere}}]
    route: [{destination: {host: helloworld, subset: v9}}]
  - match: [{uri: {prefix: /delay}}]
    timeout: 500ms
    route: [{destination: {host: helloworld, subset: v1}}]
  - route: [{destination: {host: helloworld, subset: v1}}]
Y
"$KSTEER" lab apply cluster1 -n hello -f "$tmp/routes.yaml" >"$tmp/o" 2>&1 || bad "apply the routes" "$(cat "$tmp/o")"
HW=$(vip cluster1 hello helloworld)
NODE=lab-cluster1-node1
"$KSTEER" status --instance $NODE | grep -q "^sockmap $SOCKMAP" && ok "sockmap $SOCKMAP on the node" ||
	bad "sockmap state" "$("$KSTEER" status --instance $NODE | grep sockmap)"

# what crosses the pod's veth during a request through the shim (seen from the node's
# end): with sockmap only the handshakes, the request and answer go socket to socket
r0=$(stat $NODE sockmap_redirected)
ip netns exec ksl-c1-n1 tcpdump -i any --immediate-mode -U -s 0 -w "$tmp/veth.pcap" tcp port 15001 >/dev/null 2>&1 &
tcpd=$!
started_pids+=($tcpd)
sleep 1
for i in 1 2 3; do "$KSTEER" lab exec cluster1 hello/sleep -- curl -s -m 3 "http://$HW:5000/hello" >/dev/null; done
sleep 0.5
kill $tcpd 2>/dev/null
wait $tcpd 2>/dev/null
r1=$(stat $NODE sockmap_redirected)
seen=$(python3 -c 'import sys; d=open(sys.argv[1],"rb").read(); print(d.count(b"GET /hello"), d.count(b"Hello version"), len(d))' "$tmp/veth.pcap")
read -r reqs answers bytes <<<"$seen"
if [ "$SOCKMAP" = on ]; then
	[ "$reqs" = 0 ] && [ "$answers" = 0 ] && [ "$bytes" -gt 400 ] && [ "$r1" -ge $((r0 + 6)) ] &&
		ok "sockmap: 3 requests, the pod's veth saw only handshakes ($bytes bytes captured, no request or answer); sk_msg redirected $((r1 - r0)) messages" ||
		bad "sockmap path" "requests on the veth: $reqs, answers: $answers, bytes: $bytes, redirected $r0 -> $r1"
else
	[ "$reqs" = 3 ] && [ "$answers" = 3 ] && [ "$r1" = "$r0" ] &&
		ok "no sockmap: the 3 requests and answers crossed the pod's veth; nothing redirected" ||
		bad "TCP path" "requests on the veth: $reqs, answers: $answers, redirected $r0 -> $r1"
fi
"$KSTEER" get frontends -i $NODE | grep -q "$HW:5000/tcp  shim" && ok "helloworld's frontend goes through the shim" || bad "shim frontend" "$("$KSTEER" get frontends -i $NODE)"

# jason: only v2 and v3, 70/30, each request on a new connection
"$KSTEER" lab exec cluster1 hello/sleep -- bash -c \
	"for i in \$(seq 1000); do curl -s -m 3 -H 'end-user: jason' http://$HW:5000/hello || echo FAIL; done" >"$tmp/j"
echo "     jason: $(shares "$tmp/j")"
if grep -q FAIL "$tmp/j" || grep -q "version: v1," "$tmp/j"; then bad "jason: only v2 and v3" "$(shares "$tmp/j")"; else ok "jason: only v2 and v3"; fi
within "$tmp/j" v2 70 5 && within "$tmp/j" v3 30 5 && ok "jason: 70/30 within 5 points" || bad "jason: 70/30" "$(shares "$tmp/j")"
"$KSTEER" lab exec cluster1 hello/sleep -- bash -c \
	"for i in \$(seq 300); do curl -s -m 3 http://$HW:5000/hello || echo FAIL; done" >"$tmp/o"
[ "$(shares "$tmp/o")" = "v1=100.0 n=300" ] && ok "everyone else: only v1" || bad "others: only v1" "$(shares "$tmp/o")"

# one keep-alive connection alternating end-user: jason and not
"$KSTEER" lab exec cluster1 hello/sleep -- python3 - "$HW" >"$tmp/ka" 2>&1 <<'PY'
import collections, http.client, sys
c = http.client.HTTPConnection(sys.argv[1], 5000, timeout=5)
seen, ports = collections.Counter(), set()
for i in range(400):
    c.request("GET", "/hello", headers={"end-user": "jason"} if i % 2 else {})
    body = c.getresponse().read().decode()
    ports.add(c.sock.getsockname()[1])
    seen[("jason" if i % 2 else "other", body.split(",")[0].split()[-1])] += 1
print(len(ports), " ".join(f"{k[0]}:{k[1]}={v}" for k, v in sorted(seen.items())))
PY
read -r nconn rest <"$tmp/ka"
if [ "$nconn" = 1 ] && ! grep -q "jason:v1\|other:v2\|other:v3" "$tmp/ka" && grep -q "other:v1=200" "$tmp/ka"; then
	ok "one keep-alive connection, 400 requests, each routed by its own headers ($rest)"
else
	bad "keep-alive alternating headers" "$(cat "$tmp/ka")"
fi

# connect failures are retried on another endpoint (Istio's default: 2 retries)
cat >"$tmp/dead.yaml" <<'Y'
apiVersion: v1
kind: Pod
metadata: {name: helloworld-v1-dead, labels: {app: helloworld, version: v1}}
spec:
  containers: [{name: nothing, image: none}]
Y
"$KSTEER" lab apply cluster1 -n hello -f "$tmp/dead.yaml" >"$tmp/o" 2>&1 || bad "apply a pod that refuses" "$(cat "$tmp/o")"
"$KSTEER" lab exec cluster1 hello/sleep -- bash -c \
	"for i in \$(seq 200); do curl -s -m 3 http://$HW:5000/hello || echo FAIL; echo; done" | grep -v '^$' >"$tmp/r"
[ "$(shares "$tmp/r")" = "v1=100.0 n=200" ] && ok "a refusing endpoint is retried on another: 200 of 200 answered" || bad "retries" "$(shares "$tmp/r")"
sed 's|  - route: \[{destination: {host: helloworld, subset: v1}}\]|  - route: [{destination: {host: helloworld, subset: v1}}]\n    retries: {attempts: 0}|' "$tmp/routes.yaml" >"$tmp/noretry.yaml"
grep -q "attempts: 0" "$tmp/noretry.yaml" || bad "noretry.yaml written"
"$KSTEER" lab apply cluster1 -n hello -f "$tmp/noretry.yaml" >"$tmp/o" 2>&1 || bad "apply retries: {attempts: 0}" "$(cat "$tmp/o")"
"$KSTEER" lab exec cluster1 hello/sleep -- bash -c \
	"for i in \$(seq 200); do curl -s -m 3 http://$HW:5000/hello || echo FAIL; echo; done" | grep -v '^$' >"$tmp/r0"
n503=$(grep -c "upstream connect error" "$tmp/r0")
[ "$n503" -gt 40 ] && [ "$n503" -lt 160 ] && ok "with retries: {attempts: 0} about half fail: $n503 of 200 got 503" || bad "attempts 0" "$n503 of 200" "$(head -3 "$tmp/r0")"
# outlier detection: with no retries, the refusing endpoint is ejected after its first
# gateway error and the requests after it all reach the good one
python3 - "$tmp/noretry.yaml" >"$tmp/outlier.yaml" <<'PY'
import sys
y = open(sys.argv[1]).read()
od = "  trafficPolicy: {outlierDetection: {consecutiveGatewayErrors: 1, baseEjectionTime: 60s, maxEjectionPercent: 100}}\n"
print(y.replace("  host: helloworld\n", "  host: helloworld\n" + od, 1), end="")
PY
"$KSTEER" lab apply cluster1 -n hello -f "$tmp/outlier.yaml" >"$tmp/o" 2>&1 || bad "apply outlierDetection" "$(cat "$tmp/o")"
e0=$(shimstat $NODE outlierEjections)
"$KSTEER" lab exec cluster1 hello/sleep -- bash -c \
	"for i in \$(seq 200); do curl -s -m 3 http://$HW:5000/hello || echo FAIL; echo; done" | grep -v '^$' >"$tmp/od"
n503=$(grep -c "upstream connect error" "$tmp/od")
e1=$(shimstat $NODE outlierEjections)
[ "$n503" -le 1 ] && [ "$(grep -c 'version: v1' "$tmp/od")" -ge 199 ] && [ "$e1" = $((e0 + 1)) ] &&
	ok "outlierDetection (consecutiveGatewayErrors: 1): the refusing endpoint ejected once; $n503 of 200 failed, the rest answered by v1" ||
	bad "outlier detection" "$n503 of 200 failed, ejections $e0 -> $e1" "$(sort "$tmp/od" | uniq -c | head -3)"
"$KSTEER" lab apply cluster1 -n hello -f "$tmp/routes.yaml" >/dev/null 2>&1

# answers retried as retryOn says (Istio's default: 503, twice): a sick v1 pod answering
# every request 503 beside the refusing one and the good one
sick() { # LABELS
	printf 'apiVersion: v1\nkind: Pod\nmetadata: {name: helloworld-v1-sick, labels: %s}\n' "$1"
	printf 'spec:\n  containers:\n  - {name: hw, image: none, env: [{name: ANSWER_STATUS, value: "503"}], ports: [{containerPort: 5000}]}\n'
}
sick '{app: helloworld, version: v1}' | "$KSTEER" lab apply cluster1 -n hello -f - >"$tmp/o" 2>&1 || bad "apply a sick pod" "$(cat "$tmp/o")"
tally() { # FILE: answers by pod, failures
	python3 - "$1" <<'PY'
import collections, re, sys
c = collections.Counter((re.search(r"instance: (\S+?),", l) or re.search(r"(upstream connect error)", l)).group(1) if ("instance:" in l or "upstream connect" in l) else "other" for l in open(sys.argv[1]) if l.strip())
print(" ".join(f"{k}={v}" for k, v in sorted(c.items())))
PY
}
hits() { "$KSTEER" lab exec cluster1 hello/sleep -- bash -c \
	"for i in \$(seq 150); do curl -s -m 3 http://$HW:5000/hello || echo FAIL; echo; done" | grep -v '^$' >"$1"; }
r0=$(shimstat $NODE retriedAnswers)
hits "$tmp/rt"
r1=$(shimstat $NODE retriedAnswers)
[ "$(tally "$tmp/rt")" = "helloworld-v1-0=150" ] && [ "$r1" -gt "$r0" ] &&
	ok "default retries: the sick pod's 503s retried on the next endpoint ($((r1 - r0)) answers), 150 of 150 answered by the good pod" ||
	bad "default retry of 503" "$(tally "$tmp/rt")" "retried $r0 -> $r1"
"$KSTEER" lab apply cluster1 -n hello -f "$tmp/noretry.yaml" >/dev/null 2>&1
hits "$tmp/rt0"
t0=$(tally "$tmp/rt0")
[[ $t0 == *"helloworld-v1-sick="* ]] && [[ $t0 == *"upstream connect error="* ]] &&
	ok "retries {attempts: 0}: the sick pod's answers and the refused connects reach the client ($t0)" || bad "no retries" "$t0"
sed 's|retries: {attempts: 0}|retries: {attempts: 2, retryOn: connect-failure}|' "$tmp/noretry.yaml" >"$tmp/cf.yaml"
"$KSTEER" lab apply cluster1 -n hello -f "$tmp/cf.yaml" >"$tmp/o" 2>&1 || bad "apply retryOn: connect-failure" "$(cat "$tmp/o")"
hits "$tmp/rtc"
tc=$(tally "$tmp/rtc")
[[ $tc == *"helloworld-v1-sick="* ]] && [[ $tc != *"upstream connect error"* ]] &&
	ok "retryOn: connect-failure: refused connects retried, the sick pod's 503s passed on ($tc)" || bad "retryOn connect-failure" "$tc"
sed 's|retries: {attempts: 0}|retries: {attempts: 2, retryOn: "gateway-error"}|' "$tmp/noretry.yaml" >"$tmp/gw.yaml"
"$KSTEER" lab apply cluster1 -n hello -f "$tmp/gw.yaml" >/dev/null 2>&1
hits "$tmp/rtg"
[ "$(tally "$tmp/rtg")" = "helloworld-v1-0=150" ] && ok "retryOn: gateway-error: 150 of 150 answered by the good pod" || bad "retryOn gateway-error" "$(tally "$tmp/rtg")"
sick '{app: sick}' | "$KSTEER" lab apply cluster1 -n hello -f - >/dev/null 2>&1 # out of the service again
"$KSTEER" lab apply cluster1 -n hello -f "$tmp/routes.yaml" >/dev/null 2>&1

# the route's timeout: a slow answer becomes 504 when it passes, a quick one is untouched
"$KSTEER" lab exec cluster1 hello/sleep -- bash -c "
	curl -s -o /dev/null -w '%{http_code} %{time_total}\n' -m 5 http://$HW:5000/delay/100
	curl -s -o /dev/null -w '%{http_code} %{time_total}\n' -m 5 http://$HW:5000/delay/3000" >"$tmp/to"
read -r c2 _ <<<"$(sed -n 1p "$tmp/to")"
read -r c1 t1 <<<"$(sed -n 2p "$tmp/to")"
sleep 3 # the pod's server is single-threaded: let it finish the slow answer
[ "$c1" = 504 ] && [ "$c2" = 200 ] && python3 -c "import sys; sys.exit(0 if float('$t1') < 2.5 else 1)" &&
	ok "timeout: 500ms: a 3 s answer gets 504 after ${t1}s, a 0.1 s one 200" || bad "route timeout" "$(cat "$tmp/to")"
# retries.perTryTimeout: each try ends on its own, before the route's timeout (a refused
# connect is still tried again; the timed-out try is not: retryOn does not take 504s)
sed 's|    timeout: 500ms|    timeout: 500ms\n    retries: {attempts: 2, retryOn: connect-failure, perTryTimeout: 200ms}|' "$tmp/routes.yaml" >"$tmp/pertry.yaml"
"$KSTEER" lab apply cluster1 -n hello -f "$tmp/pertry.yaml" >"$tmp/o" 2>&1 || bad "apply perTryTimeout" "$(cat "$tmp/o")"
"$KSTEER" lab exec cluster1 hello/sleep -- curl -s -D - -o /dev/null -m 5 http://$HW:5000/delay/3000 | tr -d '\r' >"$tmp/pt"
sleep 3 # the pod's server is single-threaded: let it finish the slow answer
grep -q "^HTTP/1.1 504" "$tmp/pt" && grep -q "^x-ksteer-reason: upstream per-try timeout" "$tmp/pt" &&
	ok "retries.perTryTimeout 200ms under a 500ms route timeout: 504, the try's timeout" || bad "perTryTimeout" "$(cat "$tmp/pt")"
"$KSTEER" lab apply cluster1 -n hello -f "$tmp/routes.yaml" >/dev/null 2>&1
# fault injection (Envoy's fault filter, as Istio sets it): aborts answered by the shim on
# a connection that stays open, a share of requests when a percentage says so, delays
# before the upstream, a delay then an abort
python3 - "$tmp/routes.yaml" >"$tmp/faults.yaml" <<'PY'
import sys
faults = """  - match: [{headers: {x-fault: {exact: abort}}}]
    fault: {abort: {httpStatus: 418, percentage: {value: 100}}}
    route: [{destination: {host: helloworld, subset: v1}}]
  - match: [{headers: {x-fault: {exact: half}}}]
    fault: {abort: {httpStatus: 503, percentage: {value: 50}}}
    route: [{destination: {host: helloworld, subset: v1}}]
  - match: [{headers: {x-fault: {exact: delay}}}]
    fault: {delay: {fixedDelay: 700ms, percentage: {value: 100}}}
    route: [{destination: {host: helloworld, subset: v1}}]
  - match: [{headers: {x-fault: {exact: both}}}]
    fault: {delay: {fixedDelay: 300ms}, abort: {httpStatus: 500}}
    route: [{destination: {host: helloworld, subset: v1}}]
"""
y = open(sys.argv[1]).read()
print(y.replace("  http:\n", "  http:\n" + faults, 1), end="")
PY
grep -q "x-fault" "$tmp/faults.yaml" || bad "faults.yaml written"
"$KSTEER" lab apply cluster1 -n hello -f "$tmp/faults.yaml" >"$tmp/o" 2>&1 || bad "apply fault routes" "$(cat "$tmp/o")"
"$KSTEER" lab exec cluster1 hello/sleep -- python3 - "$HW" >"$tmp/f" 2>&1 <<'PY'
import collections, http.client, sys, time
c = http.client.HTTPConnection(sys.argv[1], 5000, timeout=5)
def get(fault):
    t = time.monotonic()
    c.request("GET", "/hello", headers={"x-fault": fault} if fault else {})
    r = c.getresponse()
    body = r.read().decode()
    return r.status, body, time.monotonic() - t, c.sock.getsockname()[1]
ports = set()
ab = [get("abort") for _ in range(20)]
ports |= {p for *_, p in ab}
print("abort", all(s == 418 and b == "fault filter abort" for s, b, _, _ in ab), len(ports))
half = collections.Counter(get("half")[0] for _ in range(400))
print("half", half[503], half[200], sum(half.values()))
s, b, t, _ = get("delay")
s0, b0, t0, _ = get(None)
print("delay", s, b.split(",")[0].split()[-1], f"{t:.3f}", f"{t0:.3f}")
s, b, t, _ = get("both")
print("both", s, f"{t:.3f}")
PY
read -r _ abort_ok abort_conns <<<"$(grep '^abort' "$tmp/f")"
read -r _ n503 n200 nall <<<"$(grep '^half' "$tmp/f")"
read -r _ dstatus dbody dt dt0 <<<"$(grep '^delay' "$tmp/f")"
read -r _ bstatus bt <<<"$(grep '^both' "$tmp/f")"
[ "$abort_ok" = True ] && [ "$abort_conns" = 1 ] &&
	ok "fault abort 418 at 100%: 20 of 20 answered 'fault filter abort', one keep-alive connection" || bad "fault abort" "$(cat "$tmp/f")"
[ "$nall" = 400 ] && [ $((n503 + n200)) = 400 ] && [ "$n503" -ge 160 ] && [ "$n503" -le 240 ] &&
	ok "fault abort 503 at 50%: $n503 of 400 aborted, the rest answered by v1" || bad "fault abort 50%" "$(cat "$tmp/f")"
[ "$dstatus" = 200 ] && [ "$dbody" = v1 ] && python3 -c "import sys; sys.exit(0 if float('$dt') >= 0.7 > float('$dt0') else 1)" &&
	ok "fault delay 700ms: answered by v1 after ${dt}s (${dt0}s without the header)" || bad "fault delay" "$(cat "$tmp/f")"
[ "$bstatus" = 500 ] && python3 -c "import sys; sys.exit(0 if float('$bt') >= 0.3 else 1)" &&
	ok "fault delay 300ms then abort 500: 500 after ${bt}s" || bad "fault delay and abort" "$(cat "$tmp/f")"
[ "$(shimstat $NODE faults.aborted)" -ge $((21 + ${n503:-0})) ] && [ "$(shimstat $NODE faults.delayed)" -ge 2 ] &&
	ok "fault counters: $(shimstat $NODE faults.aborted) aborted, $(shimstat $NODE faults.delayed) delayed" ||
	bad "fault counters" "$("$KSTEER" status --instance $NODE | grep shim)"
"$KSTEER" lab apply cluster1 -n hello -f "$tmp/routes.yaml" >/dev/null 2>&1

# redirect, direct response, rewrite and request header operations, as Envoy applies
# them for Istio (the pod's /headers shows what reached it)
python3 - "$tmp/routes.yaml" >"$tmp/actions.yaml" <<'PY'
import sys
actions = """  - match: [{uri: {prefix: /old}}]
    redirect: {uri: /new, authority: example.org, redirectCode: 308}
  - match: [{uri: {exact: /teapot}}]
    directResponse: {status: 418, body: {string: "I am a teapot"}}
  - match: [{uri: {prefix: /api/v1/}}]
    rewrite: {uri: /, authority: rewritten.example}
    headers:
      request: {set: {x-set: one}, add: {x-add: two}, remove: [x-drop]}
      response: {set: {x-resp: yes}, remove: [content-type]}
    route:
    - destination: {host: helloworld, subset: v1}
      headers: {request: {set: {x-dest: three}}, response: {add: {x-dest-resp: d}}}
"""
y = open(sys.argv[1]).read()
print(y.replace("  http:\n", "  http:\n" + actions, 1), end="")
PY
"$KSTEER" lab apply cluster1 -n hello -f "$tmp/actions.yaml" >"$tmp/o" 2>&1 || bad "apply redirect/directResponse/rewrite routes" "$(cat "$tmp/o")"
"$KSTEER" lab exec cluster1 hello/sleep -- python3 - "$HW" >"$tmp/act" 2>&1 <<'PY'
import http.client, sys
c = http.client.HTTPConnection(sys.argv[1], 5000, timeout=5)
def get(path, headers={}):
    c.request("GET", path, headers=headers)
    r = c.getresponse()
    return r.status, r.getheader("location"), r.read().decode(), c.sock.getsockname()[1]
s1, loc, _, p1 = get("/old/page?q=1")
print("redirect", s1, loc)
s2, _, body, p2 = get("/teapot")
print("direct", s2, body.replace(" ", "_"), p1 == p2)
c.request("GET", "/api/v1/headers?x=1", headers={"x-drop": "gone", "x-keep": "kept"})
r = c.getresponse()
hdrs = r.read().decode()
h = {l.split(": ", 1)[0].lower(): l.split(": ", 1)[1] for l in hdrs.splitlines() if ": " in l}
print("rewrite", r.status, h.get("host"), h.get("x-set"), h.get("x-add"), h.get("x-dest"), h.get("x-keep"), "x-drop" in h)
print("response", r.getheader("x-resp"), r.getheader("x-dest-resp"), r.getheader("content-type"), len(hdrs) == int(r.getheader("content-length")))
s4, _, body4, _ = get("/hello")
print("after", s4, body4.split(",")[0])
PY
grep -qx "redirect 308 http://example.org/new?q=1" "$tmp/act" &&
	ok "redirect: 308 to http://example.org/new, the query kept" || bad "redirect" "$(cat "$tmp/act")"
grep -qx "direct 418 I_am_a_teapot True" "$tmp/act" &&
	ok "directResponse: 418 'I am a teapot', on the same keep-alive connection" || bad "directResponse" "$(cat "$tmp/act")"
grep -qx "rewrite 200 rewritten.example one two three kept False" "$tmp/act" &&
	ok "rewrite /api/v1/ -> / and authority, request headers set/add/remove (route and destination) reached the pod" ||
	bad "rewrite and headers" "$(cat "$tmp/act")"
grep -qx "response yes d None True" "$tmp/act" && grep -qx "after 200 Hello version: v1" "$tmp/act" &&
	ok "response headers set/add/remove (route and destination), the body intact, the keep-alive connection serving on" ||
	bad "response headers" "$(cat "$tmp/act")"
"$KSTEER" lab apply cluster1 -n hello -f "$tmp/routes.yaml" >/dev/null 2>&1

# CORS, as Envoy's filter does it for Istio: preflights from allowed origins answered by the
# shim, answers to them carry the allow headers, other origins get none
python3 - "$tmp/routes.yaml" >"$tmp/cors.yaml" <<'PY'
import sys
cors = """    corsPolicy:
      allowOrigins: [{exact: "https://a.example"}, {regex: "https://.*[.]b[.]example"}]
      allowMethods: [GET, POST]
      allowHeaders: [x-custom]
      exposeHeaders: [x-exposed]
      maxAge: 24h
      allowCredentials: true
"""
y = open(sys.argv[1]).read()
old = "  - route: [{destination: {host: helloworld, subset: v1}}]\n"
print(y.replace(old, old + cors, 1), end="")
PY
grep -q corsPolicy "$tmp/cors.yaml" || bad "cors.yaml written"
"$KSTEER" lab apply cluster1 -n hello -f "$tmp/cors.yaml" >"$tmp/o" 2>&1 || bad "apply corsPolicy" "$(cat "$tmp/o")"
"$KSTEER" lab exec cluster1 hello/sleep -- python3 - "$HW" >"$tmp/cors" 2>&1 <<'PY'
import http.client, sys
c = http.client.HTTPConnection(sys.argv[1], 5000, timeout=5)
def ask(method, origin, extra={}):
    h = dict(extra)
    if origin:
        h["origin"] = origin
    c.request(method, "/hello", headers=h)
    r = c.getresponse()
    body = r.read().decode()
    return r.status, r.getheader("access-control-allow-origin"), r.getheader("access-control-allow-methods"), r.getheader("access-control-max-age"), r.getheader("access-control-allow-credentials"), r.getheader("access-control-expose-headers"), body[:5]
print("preflight", *ask("OPTIONS", "https://x.b.example", {"access-control-request-method": "POST"}))
print("actual", *ask("GET", "https://a.example"))
print("other", *ask("GET", "https://evil.example"))
PY
grep -qx "preflight 200 https://x.b.example GET,POST 86400 true x-exposed " "$tmp/cors" &&
	ok "CORS preflight from an allowed origin (regex): 200 from the shim with methods, max age, credentials" || bad "CORS preflight" "$(cat "$tmp/cors")"
grep -qx "actual 200 https://a.example None None true x-exposed Hello" "$tmp/cors" && grep -qx "other 200 None None None None None Hello" "$tmp/cors" &&
	ok "CORS: an allowed origin's answer carries allow-origin and expose headers, another origin's none" || bad "CORS actual" "$(cat "$tmp/cors")"
"$KSTEER" lab apply cluster1 -n hello -f "$tmp/routes.yaml" >/dev/null 2>&1

# mirror: every request to v1 also copied to v2 (host "-shadow", answer dropped)
python3 - "$tmp/routes.yaml" >"$tmp/mirror.yaml" <<'PY'
import sys
old = "  - route: [{destination: {host: helloworld, subset: v1}}]\n"
y = open(sys.argv[1]).read()
print(y.replace(old, old + "    mirror: {host: helloworld, subset: v2}\n    mirrorPercentage: {value: 100}\n", 1), end="")
PY
"$KSTEER" lab apply cluster1 -n hello -f "$tmp/mirror.yaml" >"$tmp/o" 2>&1 || bad "apply mirror" "$(cat "$tmp/o")"
V2=$("$KSTEER" lab status -o json | python3 -c 'import json,sys; print([p["ip"] for c in json.load(sys.stdin)["clusters"] for p in c["pods"] if p["name"].startswith("helloworld-v2")][0])')
read -r n0 _ <<<"$("$KSTEER" lab exec cluster1 hello/sleep -- curl -s -m 3 "http://$V2:5000/served")"
"$KSTEER" lab exec cluster1 hello/sleep -- bash -c \
	"for i in \$(seq 20); do curl -s -m 3 http://$HW:5000/hello || echo FAIL; echo; done" | grep -v '^$' >"$tmp/mi"
sleep 0.5
read -r n1 host1 <<<"$("$KSTEER" lab exec cluster1 hello/sleep -- curl -s -m 3 "http://$V2:5000/served")"
[ "$(shares "$tmp/mi")" = "v1=100.0 n=20" ] && [ "$((n1 - n0))" = 20 ] && [ "$host1" = "$HW-shadow:5000" ] &&
	ok "mirror: 20 of 20 answered by v1, v2 got the 20 copies (host $host1)" ||
	bad "mirror" "$(shares "$tmp/mi")" "v2 served $n0 -> $n1, last host $host1"
"$KSTEER" lab apply cluster1 -n hello -f "$tmp/routes.yaml" >/dev/null 2>&1

reused=$("$KSTEER" status --instance $NODE | sed -n 's/^shim //p' | python3 -c 'import json,sys; print(json.load(sys.stdin)["poolReused"])')
[ "$reused" -gt 100 ] && ok "upstream connections pooled and reused ($reused reuses so far)" || bad "pool reuse" "$reused"

# errors an HTTP client understands; the agent lives on
"$KSTEER" lab exec cluster1 hello/sleep -- python3 - "$HW" >"$tmp/err" 2>&1 <<'PY'
import socket, sys
cases = [
    ("malformed", b"GARBAGE\r\n\r\n"),
    ("Content-Length with Transfer-Encoding", b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    ("duplicate Content-Length", b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"),
    ("oversized head", b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n"),
    ("no healthy upstream", b"GET /nowhere HTTP/1.1\r\nHost: h\r\n\r\n"),
]
for name, req in cases:
    s = socket.create_connection((sys.argv[1], 5000), timeout=5)
    s.sendall(req)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    head = data.split(b"\r\n\r\n")[0].decode(errors="replace").split("\r\n")
    reason = [h for h in head if h.lower().startswith("x-ksteer-reason")]
    print(f"{name}|{head[0]}|{reason[0] if reason else ''}")
PY
grep -q "^malformed|HTTP/1.1 400 " "$tmp/err" && ok "malformed request: 400" || bad "malformed: 400" "$(cat "$tmp/err")"
grep -q "^Content-Length with Transfer-Encoding|HTTP/1.1 400 " "$tmp/err" && ok "Content-Length with Transfer-Encoding refused: 400" || bad "CL+TE" "$(cat "$tmp/err")"
grep -q "^duplicate Content-Length|HTTP/1.1 400 " "$tmp/err" && ok "duplicate Content-Length refused: 400" || bad "duplicate CL" "$(cat "$tmp/err")"
grep -q "^oversized head|HTTP/1.1 431 " "$tmp/err" && ok "oversized head: 431" || bad "oversized: 431" "$(cat "$tmp/err")"
grep -q "^no healthy upstream|HTTP/1.1 503 .*|x-ksteer-reason: no workload of helloworld.hello.svc.cluster.local has labels of subset v9" "$tmp/err" &&
	ok "no healthy upstream: 503 with a reason header" || bad "503" "$(cat "$tmp/err")"
# hostile bytes: random, truncated and split requests, connections dropped mid-way
"$KSTEER" lab exec cluster1 hello/sleep -- python3 - "$HW" >"$tmp/fz" 2>&1 <<'PY'
import random, socket, sys
random.seed(7)
valid = b"GET /hello HTTP/1.1\r\nHost: h\r\nend-user: jason\r\n\r\n"
for i in range(300):
    s = socket.create_connection((sys.argv[1], 5000), timeout=2)
    kind = i % 3
    if kind == 0:
        data = bytes(random.getrandbits(8) for _ in range(random.randint(1, 3000)))
    elif kind == 1:
        data = valid[: random.randint(1, len(valid) - 1)]
    else:
        data = valid * random.randint(1, 5)
    try:
        for k in range(0, len(data), 7):  # split across many segments
            s.sendall(data[k : k + 7])
    except OSError:
        pass  # the shim may answer 400 and close before all is sent
    if i % 2:
        s.close()  # gone before any answer
        continue
    try:
        s.shutdown(socket.SHUT_WR)
        while s.recv(65536):
            pass
    except OSError:
        pass
    s.close()
print("sent")
PY
grep -q sent "$tmp/fz" && ok "300 hostile connections sent" || bad "hostile connections" "$(tail -3 "$tmp/fz")"
out=$("$KSTEER" lab exec cluster1 hello/sleep -- curl -s -m 3 -H 'end-user: jason' "http://$HW:5000/hello")
grep -q "Hello version: v[23]," <<<"$out" && "$KSTEER" status --instance $NODE >/dev/null && ok "the agent lives on after hostile input" || bad "agent alive" "$out"
finish
