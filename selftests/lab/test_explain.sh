#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# `ksteer explain` against what the traffic did: the scenario's two requests
# (jason: 70/30 to v2/v3 in cluster2 through the shim; everyone else: v1 in
# cluster1) and a pure-L4 one (tcp-echo, in the kernel), asked of the running
# agent of the client's node and of the policy files.
. "$(dirname "$0")/lib.sh"
need_root
N=${EXPLAIN_REQUESTS:-300}

lab_fresh
scenario_kit "$tmp/kit"
scenario_apply "$tmp/kit" cluster1 cluster2 hello service=helloworld version=v1 version=v2 version=v3 &&
	"$KSTEER" lab apply cluster1 -n hello -f "$EX/tcp-echo.yaml" >>"$tmp/apply" 2>&1 &&
	ok "the scenario and tcp-echo (v1, v2) applied" || bad "apply" "$(cat "$tmp/apply")"

# the agent of the node sleep runs on
node=$("$KSTEER" lab status -o json | python3 -c '
import json, sys
for c in json.load(sys.stdin)["clusters"]:
    for p in c["pods"]:
        if c["name"] == "cluster1" and p["namespace"] == "hello" and p["name"].startswith("sleep"):
            print(p["node"], p["name"])' | head -n 1)
read -r nodename sleep <<<"$node"
inst=lab-cluster1-$nodename
[ -n "$sleep" ] && ok "sleep is hello/$sleep on $inst" || bad "find sleep" "$("$KSTEER" lab status)"

# answers: one curl per request, one line each
requests() { # URL N [curl args...]
	local u=$1 n=$2
	shift 2
	"$KSTEER" lab exec cluster1 hello/sleep -- bash -c 'u=$1; n=$2; shift 2
		for i in $(seq "$n"); do curl -s -m 5 "$@" "$u" || echo FAIL; echo; done' _ "$u" "$n" "$@" |
		grep -v '^$'
}

# check WHAT EXPLAIN.json ANSWERS: the explanation agrees with the answers
check() {
	python3 - "$@" <<'PY'
import collections, json, re, sys
what, ex, ans = sys.argv[1], json.load(open(sys.argv[2])), [l for l in open(sys.argv[3]) if l.strip()]
errs = []
def want(c, msg):
    if not c: errs.append(msg)
dests = ex.get("destinations", [])
if what in ("jason", "other"):
    want(ex["carrier"] == "shim", f"carrier {ex['carrier']}, want shim (http routes per request)")
    want(ex["resolved"]["name"] == "helloworld.hello.svc.cluster.local", f"resolved {ex['resolved']}")
    seen = collections.Counter()
    for l in ans:
        m = re.search(r"version: (\S+?), instance: (\S+?)(,|$)", l)
        if not m: errs.append(f"answer {l.strip()!r}"); continue
        seen[m.group(1)] += 1
    pct = {d["subset"]: d["percent"] for d in dests}
    got = {v: 100.0 * n / len(ans) for v, n in seen.items()}
    want(set(got) <= set(pct), f"answered by {sorted(got)}, explain says {sorted(pct)}")
    for v, p in pct.items():
        want(abs(got.get(v, 0) - p) <= 8, f"{v}: explain {p:.1f}%, measured {got.get(v, 0):.1f}%")
    if what == "jason":
        want(ex["route"]["index"] == 0 and any(c.get("name") == "end-user" and c.get("exact") == "jason"
             for c in ex["route"]["why"]["conditions"]), f"route {ex.get('route')}")
        want(all(d["tls"] == "ISTIO_MUTUAL" and all(e.get("cluster") == "cluster2" and e["port"] == 15443
             for e in d["endpoints"]) and d["endpoints"] for d in dests), f"destinations {dests}")
    else:
        want(ex["route"]["index"] == 1, f"route {ex.get('route')}")
        pods = {e.get("pod", "").split("/")[-1] for d in dests for e in d["endpoints"]}
        inst = {re.search(r"instance: (\S+?)(,|$)", l).group(1) for l in ans if "instance:" in l}
        want(inst and inst <= pods, f"answered by {sorted(inst)}, explain's endpoints {sorted(pods)}")
else:  # tcp: in the kernel, to the service's endpoints
    want(ex["carrier"] == "kernel" and ex["shimReasons"] == [], f"carrier {ex['carrier']} {ex.get('shimReasons')}")
    pods = {e.get("pod", "").split("/")[-1] for d in dests for e in d["endpoints"]}
    got = {l.split()[1] for l in ans if len(l.split()) > 2}
    want(len(got) >= 2 and got <= pods and len(ans) > 0, f"answered by {sorted(got)}, explain's endpoints {sorted(pods)}")
print("; ".join(errs) if errs else "agrees")
sys.exit(1 if errs else 0)
PY
}

url=http://helloworld.hello:5000/hello
for who in jason other; do
	hdr=()
	[ "$who" = jason ] && hdr=(-H "end-user: jason")
	"$KSTEER" explain -i "$inst" --pod "hello/$sleep" "${hdr[@]}" -o json "$url" >"$tmp/$who.json" 2>"$tmp/err" ||
		bad "explain $who" "$(cat "$tmp/err")"
	requests "$url" "$N" "${hdr[@]}" >"$tmp/$who.ans"
	r=$(check "$who" "$tmp/$who.json" "$tmp/$who.ans") && ok "$who: explain agrees with $N requests ($(shares "$tmp/$who.ans"))" ||
		bad "$who: explain agrees with the traffic" "$r" "$(cat "$tmp/$who.json")"
done
"$KSTEER" explain -i "$inst" --pod "hello/$sleep" -H "end-user: jason" "$url" >"$tmp/text" 2>&1 &&
	grep -q "^Carried by:  shim" "$tmp/text" && grep -q 'header end-user exact "jason"' "$tmp/text" &&
	grep -q "subset v2, 70.0%" "$tmp/text" && ok "the text form names the carrier, the match and the weights" ||
	bad "explain text" "$(cat "$tmp/text")"

# from the files the agent reads (-f), as `ksteer check` compiles them: the same route and weights
"$KSTEER" explain -f /run/ksteer-lab/cluster1/policy --pod "hello/$sleep" -H "end-user: jason" -o json \
	"http://$(vip cluster1 hello helloworld):5000/hello" >"$tmp/files.json" 2>"$tmp/err" &&
	python3 -c 'import json,sys; a,b=(json.load(open(f)) for f in sys.argv[1:3])
sys.exit(0 if [(d["subset"], d["weight"]) for d in a["destinations"]] == [(d["subset"], d["weight"]) for d in b["destinations"]] else 1)' \
		"$tmp/files.json" "$tmp/jason.json" && ok "from the files (-f): the same route and weights as the agent" ||
	bad "explain -f" "$(cat "$tmp/err" "$tmp/files.json")"

# pure L4: tcp-echo carried by connect4
"$KSTEER" explain -i "$inst" --pod "hello/$sleep" -o json tcp://tcp-echo.hello:9000 >"$tmp/tcp.json" 2>"$tmp/err" ||
	bad "explain tcp" "$(cat "$tmp/err")"
"$KSTEER" lab exec cluster1 hello/sleep -- python3 -c '
import socket
for i in range(40):
    s = socket.create_connection(("tcp-echo.hello", 9000), timeout=3)
    s.sendall(b"hi\n"); s.shutdown(socket.SHUT_WR)
    print(s.makefile("rb").read().decode(errors="replace").strip())
    s.close()' >"$tmp/tcp.ans" 2>&1
r=$(check tcp "$tmp/tcp.json" "$tmp/tcp.ans") && ok "tcp-echo: explain says kernel, and the answers came from its endpoints" ||
	bad "tcp-echo: explain agrees with the traffic" "$r" "$(cat "$tmp/tcp.json" "$tmp/tcp.ans")"

# errors: a bad URL, an unknown instance
"$KSTEER" explain -i "$inst" "ftp://x" >/dev/null 2>"$tmp/err" && bad "a bad URL fails" ||
	{ grep -q "bad URL" "$tmp/err" && ok "a bad URL: $(head -c 120 "$tmp/err")" || bad "a bad URL's message" "$(cat "$tmp/err")"; }
"$KSTEER" explain -i nosuch "$url" >/dev/null 2>&1 && bad "an unknown instance fails" || ok "an unknown instance fails"
finish
