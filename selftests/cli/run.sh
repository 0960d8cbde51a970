#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# `ksteer check` as a user runs it: real files, exit codes, messages, JSON.
set -uo pipefail

KSTEER=${KSTEER:?path to the ksteer binary}
SHARED=${SHARED:-../shared}
SCEN=$SHARED/scenario
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0

ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; shift; printf '     %s\n' "$@"; }

# expect NAME WANT_RC CMD... ; leaves stdout in $tmp/out and stderr in $tmp/err
expect() {
	local name=$1 want=$2 rc
	shift 2
	"$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	if [ "$rc" -ne "$want" ]; then
		bad "$name" "exit $rc, expected $want" "stderr: $(head -c 600 "$tmp/err")"
		return 1
	fi
	return 0
}

# has NAME FILE TEXT: the fixed string TEXT is in FILE
has() {
	if grep -qF -- "$3" "$2"; then ok "$1"; else bad "$1" "expected: $3" "in: $(head -c 800 "$2")"; fi
}

# -- the scenario, cluster by cluster, exactly as written
if expect "scenario cluster1" 0 env -u CLUSTER2_GW_ADDR "$KSTEER" check -n hello -f "$SCEN/cluster1/"; then
	has "cluster1: frontend on the .global VIP" "$tmp/out" "frontend helloworld.hello.global:5000 http  [shim: http match, per-request weight split, tls origination]"
	has "cluster1: VIP" "$tmp/out" "address  127.255.0.8"
	has "cluster1: jason's match" "$tmp/out" 'http[0]: when header end-user = "jason"'
	has "cluster1: 70% to v2" "$tmp/out" "70.0%  helloworld.hello.global:5000 subset v2  tls ISTIO_MUTUAL"
	has "cluster1: 30% to v3" "$tmp/out" "30.0%  helloworld.hello.global:5000 subset v3  tls ISTIO_MUTUAL"
	has "cluster1: others to local v1" "$tmp/out" "100.0%  helloworld.hello.svc.cluster.local subset v1  tls ISTIO_MUTUAL"
	has "cluster1: unset variable warned with file:line:col" "$tmp/err" "cluster1/01-serviceentry-global.yaml:17:14: warning: ServiceEntry hello/helloworld: endpoints[0].address"
fi

if expect "scenario cluster1 with the gateway address" 0 env CLUSTER2_GW_ADDR=172.30.2.2 "$KSTEER" check -n hello -f "$SCEN/cluster1/"; then
	has "cluster1: the gateway endpoint on 15443 labelled cluster2" "$tmp/out" "172.30.2.2:15443  cluster=cluster2"
	if grep -q "environment variable" "$tmp/err"; then bad "variable expanded" "$(cat "$tmp/err")"; else ok "variable expanded"; fi
fi

expect "--strict turns warnings into errors" 1 "$KSTEER" check --strict -n hello -f "$SCEN/cluster1/" &&
	has "--strict: says nothing was applied" "$tmp/err" "nothing applied"

if expect "scenario cluster2" 0 "$KSTEER" check -n hello -f "$SCEN/cluster2/"; then
	has "cluster2: the 15443 passthrough gateway" "$tmp/out" "gateway istio-system/istio-multicluster-ingressgateway  selector istio=ingressgateway"
	has "cluster2: AUTO_PASSTHROUGH server" "$tmp/out" "server 15443/TLS  hosts *.global  tls AUTO_PASSTHROUGH"
	has "cluster2: subsets" "$tmp/out" "subset v3  version=v3"
fi

# -- bad input: every error, with file:line:col, object and field; nothing printed as a plan
cat >"$tmp/04-virtualservice.yaml" <<'Y'
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata:
  name: helloworld
spec:
  hosts:
  - helloworld.hello.svc.cluster.local
  http:
  - match:
    - headers:
        end-user:
          exact: jason
    route:
    - destination:
        host: helloworld.hello.global
        subset: v2
      weight: 70
    - destination:
        host: helloworld.hello.global
        subset: v3
      weight: -30
  - route:
    - destination:
        host: helloworld.hello.svc.cluster.local
        subset: v1
      weigth: 1
Y
if expect "negative weight refused" 1 "$KSTEER" check -n hello -f "$tmp/04-virtualservice.yaml"; then
	has "negative weight: file:line:col, object, field" "$tmp/err" "04-virtualservice.yaml:21:15: error: VirtualService hello/helloworld: http[0].route[1].weight: must not be negative"
	has "typo'd field reported too" "$tmp/err" "04-virtualservice.yaml:26:7: error: VirtualService hello/helloworld: http[1].route[0].weigth: unknown field \"weigth\""
	if [ -s "$tmp/out" ]; then bad "no plan for a bad batch" "$(cat "$tmp/out")"; else ok "no plan for a bad batch"; fi
fi

# one action per http route, fields in range (Istio's own validation rules)
# vs_http FILE: a VirtualService for host r whose http routes come from stdin
vs_http() {
	{ printf 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\n'
	  printf 'spec:\n  hosts: [r]\n  http:\n'; cat; } >"$1"
}
vs_http "$tmp/actions.yaml" <<'Y'
  - redirect: {uri: /x, redirectCode: 200}
    route: [{destination: {host: r}}]
  - directResponse: {status: 700}
Y
if expect "route actions validated" 1 "$KSTEER" check -f "$tmp/actions.yaml"; then
	has "route and redirect refused" "$tmp/err" "actions.yaml:7:15: error: VirtualService default/r: http[0].redirect: HTTP route cannot contain both route and redirect"
	has "redirect code not 3xx refused" "$tmp/err" "http[0].redirect.redirectCode: 200 is not a valid redirect code, must be 3xx"
	has "direct response status refused" "$tmp/err" "http[1].directResponse.status: must be in the range [200, 599]"
fi
vs_http "$tmp/later.yaml" <<'Y'
  - rewrite: {uriRegexRewrite: {match: "^/a", rewrite: "/b"}}
    route: [{destination: {host: r}}]
Y
if expect "what is not applied yet is valid" 0 "$KSTEER" check -f "$tmp/later.yaml"; then
	has "uriRegexRewrite: said not applied" "$tmp/err" "http[0].rewrite: uriRegexRewrite is not applied by ksteer yet"
fi

# values that reach the wire (a header line, a Location, a minted certificate's SAN) are
# refused: one bad file per class, each error with file:line:col, object and field
vs_http "$tmp/hdr.yaml" <<'Y'
  - headers:
      request: {set: {x-a: "one\r\nX-Evil: 1"}, remove: [host]}
      response: {add: {"bad name": v}}
    route:
    - destination: {host: r}
      headers: {request: {add: {x-b: "a\u0000b"}}}
Y
if expect "header operations refused" 1 "$KSTEER" check -f "$tmp/hdr.yaml"; then
	has "header value with CR LF: file:line:col, field" "$tmp/err" 'hdr.yaml:8:28: error: VirtualService default/r: http[0].headers.request.set.x-a: header value "one\r\nX-Evil: 1" has a control character'
	has "Host not removable" "$tmp/err" 'hdr.yaml:8:58: error: VirtualService default/r: http[0].headers.request.remove[0]: invalid header "host"'
	has "header name not a token" "$tmp/err" 'hdr.yaml:9:36: error: VirtualService default/r: http[0].headers.response.add.bad name: header name "bad name" is not an HTTP token'
	has "NUL in a destination's header value" "$tmp/err" 'hdr.yaml:12:38: error: VirtualService default/r: http[0].route[0].headers.request.add.x-b: string contains a NUL byte'
fi
vs_http "$tmp/redirect.yaml" <<'Y'
  - redirect: {uri: "/new\r\nSet-Cookie: a=b", authority: "evil.example/x", scheme: "javascript"}
  - redirect: {uri: "/a", authority: "a@b.example:99999"}
Y
if expect "redirect values refused" 1 "$KSTEER" check -f "$tmp/redirect.yaml"; then
	has "redirect uri" "$tmp/err" 'redirect.yaml:7:21: error: VirtualService default/r: http[0].redirect.uri: "/new\r\nSet-Cookie: a=b" has a space or a control character'
	has "redirect authority with a path" "$tmp/err" 'redirect.yaml:7:59: error: VirtualService default/r: http[0].redirect.authority: invalid authority "evil.example/x"'
	has "redirect scheme" "$tmp/err" 'redirect.yaml:7:85: error: VirtualService default/r: http[0].redirect.scheme: invalid redirect scheme "javascript", must be "http" or "https"'
	has "redirect authority with userinfo" "$tmp/err" 'redirect.yaml:8:38: error: VirtualService default/r: http[1].redirect.authority: invalid authority "a@b.example:99999"'
fi
vs_http "$tmp/rewrite.yaml" <<'Y'
  - rewrite: {uri: "/a b", authority: "x\ny"}
    route: [{destination: {host: r}}]
Y
if expect "rewrite values refused" 1 "$KSTEER" check -f "$tmp/rewrite.yaml"; then
	has "rewrite uri" "$tmp/err" 'rewrite.yaml:7:20: error: VirtualService default/r: http[0].rewrite.uri: "/a b" has a space or a control character'
	has "rewrite authority" "$tmp/err" 'rewrite.yaml:7:39: error: VirtualService default/r: http[0].rewrite.authority: invalid authority "x\ny"'
fi
vs_http "$tmp/cors.yaml" <<'Y'
  - route: [{destination: {host: r}}]
    corsPolicy:
      allowOrigins: [{exact: "https://a.example\r\n"}]
      allowMethods: [GET, "GET\r\nX: y"]
      allowHeaders: ["x y"]
      exposeHeaders: ["x-ok", "x\n"]
Y
if expect "CORS lists refused" 1 "$KSTEER" check -f "$tmp/cors.yaml"; then
	has "CORS origin with CR LF" "$tmp/err" 'cors.yaml:9:30: error: VirtualService default/r: http[0].corsPolicy.allowOrigins[0].exact: origin "https://a.example\r\n" has a control character'
	has "CORS method" "$tmp/err" 'cors.yaml:10:27: error: VirtualService default/r: http[0].corsPolicy.allowMethods[1]: "GET\r\nX: y" is not a supported HTTP method'
	has "CORS allowHeaders" "$tmp/err" 'cors.yaml:11:22: error: VirtualService default/r: http[0].corsPolicy.allowHeaders[0]: header name "x y" is not an HTTP token'
	has "CORS exposeHeaders" "$tmp/err" 'cors.yaml:12:31: error: VirtualService default/r: http[0].corsPolicy.exposeHeaders[1]: header name "x\n" is not an HTTP token'
fi
cat >"$tmp/sa.yaml" <<'Y'
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: hello}
spec:
  serviceAccountName: "a,URI:spiffe://cluster.local/ns/kube-system/sa/admin"
status: {podIP: 10.0.0.1}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: we, namespace: hello}
spec: {address: 10.0.0.2, serviceAccount: "sa/../x"}
---
apiVersion: v1
kind: Namespace
metadata: {name: a.b}
Y
if expect "service accounts and namespaces refused" 1 "$KSTEER" check -f "$tmp/sa.yaml"; then
	has "pod serviceAccountName with a SAN in it" "$tmp/err" 'sa.yaml:5:23: error: Pod hello/p: serviceAccountName: invalid service account name "a,URI:spiffe://cluster.local/ns/kube-system/sa/admin"'
	has "workload entry serviceAccount" "$tmp/err" 'sa.yaml:11:43: error: WorkloadEntry hello/we: serviceAccount: invalid service account name "sa/../x"'
	has "namespace name a DNS-1123 label" "$tmp/err" 'sa.yaml:15:18: error: Namespace a.b: metadata.name: invalid namespace name "a.b"'
fi
# and what Istio and Envoy take stays valid
vs_http "$tmp/wire-ok.yaml" <<'Y'
  - redirect: {uri: "/new?q=1", authority: "[::1]:8443", scheme: https}
  - rewrite: {uri: /, authority: "rewritten.example:8080"}
    headers:
      request: {set: {host: a.example, x-tab: "a\tb"}, remove: [x-drop]}
      response: {add: {"x-tok!#$%&'*+-.^_`|~": "v é"}}
    route: [{destination: {host: r}}]
    corsPolicy:
      allowOrigins: [{exact: "https://a.example"}, {regex: "https://.*[.]b[.]example"}]
      allowMethods: ["*", GET, OPTIONS]
      allowHeaders: ["*"]
      exposeHeaders: [x-exposed]
Y
expect "wire values Istio takes are valid" 0 "$KSTEER" check -f "$tmp/wire-ok.yaml" && ok "wire values Istio takes are valid"

# a port entry whose key is a mapping and whose value is null (YAML's "? k: v"; the
# fuzzer's find, it crashed strtol): an error, no crash
cat >"$tmp/we.yaml" <<'Y'
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: we}
spec:
  address: 10.0.0.1
  ports:
   ? "http": 80
Y
if expect "a port without a value refused" 1 "$KSTEER" check -f "$tmp/we.yaml"; then
	has "a port without a value: said so" "$tmp/err" 'port must be between 1-65535, got "a list or a map"'
fi

# a bad file next to good ones: the whole batch is refused
cp "$SCEN"/cluster1/*.yaml "$tmp/" 2>/dev/null
printf 'apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {ports: [{port: 0}]}\n' >"$tmp/05-bad.yaml"
rm -f "$tmp/04-virtualservice.yaml"
expect "one bad file refuses the batch" 1 "$KSTEER" check -n hello -f "$tmp/" &&
	has "the bad file is named" "$tmp/err" "05-bad.yaml:4:23: error: Service hello/x: ports[0].port: port must be between 1-65535"
rm -f "$tmp"/*.yaml

printf 'kind: [\n' >"$tmp/broken.yaml"
expect "malformed YAML" 1 "$KSTEER" check -f "$tmp/broken.yaml" && has "malformed YAML: position" "$tmp/err" "broken.yaml:2:1: error: invalid YAML"

expect "missing file" 1 "$KSTEER" check -f "$tmp/nope.yaml" && has "missing file: reason" "$tmp/err" "nope.yaml: error: open: No such file or directory"
expect "no input is a usage error" 2 "$KSTEER" check
expect "unknown output is a usage error" 2 "$KSTEER" check -o yaml -f "$SCEN/cluster2/"
expect "unknown command" 2 "$KSTEER" frobnicate

# -- JSON for programs
if expect "json output" 0 env CLUSTER2_GW_ADDR=172.30.2.2 "$KSTEER" check -o json -n hello -f "$SCEN/cluster1/"; then
	if python3 - "$tmp/out" <<'PY'
import json, sys
plan = json.load(open(sys.argv[1]))
fe = [f for f in plan["frontends"] if f["host"] == "helloworld.hello.global"][0]
assert fe["addresses"] == ["127.255.0.8"], fe["addresses"]
assert fe["datapath"] == "shim", fe["datapath"]
d = fe["routes"][0]["destinations"]
assert [x["subset"] for x in d] == ["v2", "v3"], d
assert [round(x["percent"]) for x in d] == [70, 30], d
assert d[0]["endpoints"][0]["address"] == "172.30.2.2" and d[0]["endpoints"][0]["port"] == 15443
PY
	then ok "json: the scenario's plan"; else bad "json: the scenario's plan" "$(head -c 600 "$tmp/out")"; fi
fi

# -- stdin, and a Kubernetes ConfigMap volume (files are symlinks through ..data)
expect "stdin" 0 "$KSTEER" check -n hello -f - <"$SCEN/cluster2/01-destinationrule-local.yaml" &&
	has "stdin: read" "$tmp/out" "destination rule hello/helloworld"
mkdir -p "$tmp/cm/..2026_11_25_00_00_00.1" && cp "$SCEN"/cluster2/*.yaml "$tmp/cm/..2026_11_25_00_00_00.1/"
ln -s ..2026_11_25_00_00_00.1 "$tmp/cm/..data"
for f in "$tmp"/cm/..data/*.yaml; do ln -s "..data/$(basename "$f")" "$tmp/cm/$(basename "$f")"; done
expect "ConfigMap volume layout" 0 "$KSTEER" check -n hello -f "$tmp/cm" &&
	has "ConfigMap: gateway read once" "$tmp/out" "gateway istio-system/istio-multicluster-ingressgateway"
if [ "$(grep -c '^gateway ' "$tmp/out")" = 1 ]; then ok "ConfigMap: no duplicate from ..data"; else bad "ConfigMap: no duplicate from ..data" "$(cat "$tmp/out")"; fi

# -- no root needed
if command -v setpriv >/dev/null; then
	mkdir -p "$tmp/u" && cp "$SCEN"/cluster2/*.yaml "$tmp/u/" && chmod -R a+rX "$tmp"
	expect "check runs without root" 0 setpriv --reuid=65534 --regid=65534 --clear-groups "$KSTEER" check -n hello -f "$tmp/u" && ok "check runs without root"
else
	bad "check runs without root" "setpriv (util-linux) is missing"
fi

# -- every command and subcommand answers -h/--help on stdout with exit 0, its own usage
here=$(cd "$(dirname "$0")/../.." && pwd)
cmds="check explain agent apply status get uninstall sockmap splice cert lab version help"
subs="cert root|cert intermediate|cert mint|lab up|lab apply|lab exec|lab env|lab kubeconfig|lab api|lab status|lab down"
IFS='|' read -ra sublist <<<"$subs"
for c in $cmds "${sublist[@]}"; do
	for h in --help -h; do
		# shellcheck disable=SC2086 # $c is the command and its subcommand
		if expect "ksteer $c $h" 0 "$KSTEER" $c $h; then
			if head -n 1 "$tmp/out" | grep -q "^Usage: ksteer $c" && [ ! -s "$tmp/err" ]; then
				ok "ksteer $c $h: its usage on stdout"
			else
				bad "ksteer $c $h: its usage on stdout" "stdout: $(head -c 300 "$tmp/out")" "stderr: $(head -c 300 "$tmp/err")"
			fi
		fi
	done
done
# after other arguments too, and for the instance commands without their instance
expect "ksteer get stats -i x --help" 0 "$KSTEER" get stats -i x --help && has "get ... --help: usage" "$tmp/out" "Usage: ksteer get"
expect "ksteer lab up -f nope --help" 0 "$KSTEER" lab up -f "$tmp/nope" --help && has "lab up ... --help: usage" "$tmp/out" "Usage: ksteer lab up"
for h in --help -h help; do
	expect "ksteer $h" 0 "$KSTEER" $h && has "ksteer $h: every command" "$tmp/out" "ksteer lab down"
done
expect "ksteer help lab up" 0 "$KSTEER" help lab up && has "help lab up" "$tmp/out" "Usage: ksteer lab up"
# the binary's commands are the ones this test, the man page and the completion know
listed=$("$KSTEER" --help | awk '/^  ksteer / { print $2 }' | sort -u | tr '\n' ' ')
want=$(tr ' ' '\n' <<<"$cmds" | sort -u | tr '\n' ' ')
[ "$listed" = "$want" ] && ok "--help lists exactly: $listed" || bad "--help lists the commands" "listed: $listed" "expected: $want"
man=$(dirname "$KSTEER")/ksteer.1
if [ -s "$man" ]; then
	miss=""
	# a command's entry: "\fBcheck\fR [..." or "\fBsockmap\fR|\fBsplice\fR ..."
	for c in $cmds; do grep -qE "^\\\\fB([a-z]+\\\\fR\\|\\\\fB)?$c\\\\fR" "$man" || miss="$miss $c"; done
	[ -z "$miss" ] && ok "the man page describes every command" || bad "man page" "missing:$miss"
	MANWIDTH=80 man -l "$man" >"$tmp/man" 2>"$tmp/manerr" && [ ! -s "$tmp/manerr" ] && grep -q "EXIT STATUS" "$tmp/man" &&
		ok "the man page renders ($(wc -l <"$tmp/man") lines)" || bad "man -l ksteer.1" "$(head -c 300 "$tmp/manerr")"
else
	bad "man page" "$man is missing (make builds it with scdoc)"
fi
# bash completion, run as bash would (the binary on PATH)
compl() { # WORDS...: what _ksteer offers for the last word
	PATH=$(dirname "$KSTEER"):$PATH bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _ksteer; echo "${COMPREPLY[*]}"' \
		_ "$here/doc/ksteer.bash" "$@"
}
got=$(compl ksteer "")
[ "$(tr ' ' '\n' <<<"$got" | grep -v '^-' | sort -u | tr '\n' ' ')" = "$want" ] && ok "completion: the commands" || bad "completion: the commands" "got: $got"
for t in "lab u|up" "cert m|mint" "get -i x r|routes" "status --i|--instance" "lab up --no-s|--no-sockmap --no-splice" \
	"agent --xdp-mode n|native" "sockmap -i x o|on off" "get stats --o|--output"; do
	w=${t%%|*} e=${t#*|}
	# shellcheck disable=SC2086 # the words before the one being completed
	g=$(compl ksteer ${w% *} "${w##* }")
	[ "$g" = "$e" ] && ok "completion: ksteer $w -> $e" || bad "completion: ksteer $w" "got: $g" "expected: $e"
done

# -- --version everywhere, with the map layout the sources define
layout=$(sed -n 's/^#define KS_LAYOUT_VERSION \([0-9]*\)$/\1/p' "$(dirname "$0")/../../maps/ksteer_maps.h")
for v in "--version" "version" "status --version" "lab up --version"; do
	# shellcheck disable=SC2086
	expect "ksteer $v" 0 "$KSTEER" $v && has "ksteer $v: version and map layout" "$tmp/out" "(map layout ${layout:-?})"
done

# -- usage errors: exit 2, the usage on stderr, nothing on stdout
for u in "frobnicate" "status --frob -i x" "get stats" "get nothing -i x" "get stats -i x -o yaml" "sockmap -i x maybe" \
	"apply -i x" "uninstall" "status -i ../x" "lab frob" "lab apply" "cert mint --out $tmp/c" "agent --policy x"; do
	# shellcheck disable=SC2086
	if expect "usage error: ksteer $u" 2 "$KSTEER" $u; then
		grep -q "Usage: ksteer" "$tmp/err" || grep -q "letters, digits" "$tmp/err" && [ ! -s "$tmp/out" ] &&
			ok "usage error: ksteer $u: exit 2, said on stderr" || bad "usage error: ksteer $u" "stdout: $(head -c 200 "$tmp/out")" "stderr: $(head -c 300 "$tmp/err")"
	fi
done

# -- -i and --instance both name the instance of every instance command: the command goes
# on past its arguments (and fails: no such agent or pins), never a usage error
inst=ksteer-cli-no-such-instance
printf 'apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n' >"$tmp/p.yaml"
accepted() { # NAME CMD...: not a usage error
	local name=$1 rc
	shift
	"$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	if [ "$rc" -ne 2 ] && ! grep -q "Usage:" "$tmp/err"; then
		ok "$name (exit $rc: $(head -n 1 "$tmp/err" | cut -c1-70))"
	else
		bad "$name" "exit $rc" "stderr: $(head -c 300 "$tmp/err")"
	fi
}
for form in "-i $inst" "--instance $inst" "--instance=$inst"; do
	for c in "status" "sockmap on" "splice off" "get stats" "get frontends -o json" "apply -f $tmp/p.yaml" "uninstall"; do
		# shellcheck disable=SC2086
		accepted "ksteer $c $form" "$KSTEER" $c $form
	done
	# the instance first works too
	# shellcheck disable=SC2086
	accepted "ksteer sockmap $form off" "$KSTEER" sockmap $form off
done

# -- the README's own instance commands, as written (NAME and friends filled in)
grep -oE '(`|^ +)(\./)?ksteer (status|uninstall|sockmap|splice|apply|get) [^`#]*(-i|--instance) [^`#]*' "$here/README.md" |
	sed -E 's/^[` ]+//; s/ +$//' | sort -u >"$tmp/readme-cmds"
n=0
while read -r line; do
	n=$((n + 1))
	run=$(sed -E "s/\[[^]]*\]//g; s/\b(NAME|NODE|lab-cluster1-node1)\b/$inst/g; s/\bFILE\b/${tmp//\//\\/}\/p.yaml/g; s/([a-z]+)(\|[a-z]+)+/\1/g; s/^(\.\/)?ksteer //" <<<"$line")
	# shellcheck disable=SC2086
	accepted "README: $line" "$KSTEER" $run
done <"$tmp/readme-cmds"
[ "$n" -ge 8 ] && ok "README: $n instance commands found" || bad "README: instance commands found" "only $n" "$(cat "$tmp/readme-cmds")"

# -- manifests/deploy as kubectl renders it (a script of its own: kubectl, python3-yaml)
KSTEER=$KSTEER SHARED=$SHARED bash "$here/selftests/cli/deploy.sh" >"$tmp/deploy" 2>&1
rc=$?
sed 's/^/  /' "$tmp/deploy"
[ "$rc" -eq 0 ] && ok "manifests/deploy: $(tail -n 1 "$tmp/deploy")" ||
	bad "manifests/deploy" "exit $rc: $(grep -c '^FAIL' "$tmp/deploy") failed (above)"

echo "cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
