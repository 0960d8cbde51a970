#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Opaque TCP across two clusters, as Istio's tcp-echo traffic shifting: a port
# named tcp-*, a VirtualService tcp route splitting connections 80/20 between
# v1 here and v2 in cluster2 (through its 15443 gateway), ISTIO_MUTUAL on
# both. The shim routes each connection once and relays its bytes untouched
# (no HTTP parsing), inside mutual TLS; a half-close passes through; a wrong
# subjectAltName closes the connection; tls routes pick by SNI.
. "$(dirname "$0")/lib.sh"
need_root

lab_fresh
eval "$("$KSTEER" lab env)"
{
	"$KSTEER" lab apply cluster1 -n sample -f "$EX/sleep.yaml" &&
		"$KSTEER" lab apply cluster1 -n sample -f "$EX/tcp-echo.yaml" -l service=tcp-echo &&
		"$KSTEER" lab apply cluster1 -n sample -f "$EX/tcp-echo.yaml" -l version=v1 &&
		"$KSTEER" lab apply cluster1 -n sample -f "$EX/tcp-echo-multicluster.yaml" &&
		"$KSTEER" lab apply cluster2 -n sample -f "$EX/tcp-echo.yaml" -l service=tcp-echo &&
		"$KSTEER" lab apply cluster2 -n sample -f "$EX/tcp-echo.yaml" -l version=v2 &&
		"$KSTEER" lab apply cluster2 -n sample -f "$EX/tcp-echo-dr-cluster2.yaml" &&
		"$KSTEER" lab apply cluster2 -n sample -f "$SHARED/scenario/cluster2/02-gateway.yaml"
} >"$tmp/apply" 2>&1 && ok "tcp-echo applied in both clusters (port named tcp, tcp route 80/20, ISTIO_MUTUAL)" ||
	bad "apply tcp-echo" "$(cat "$tmp/apply")"
"$KSTEER" get frontends -i lab-cluster1-node1 >"$tmp/fe"
grep -q ":9000/tcp  shim" "$tmp/fe" && ok "tcp-echo's frontend goes to the shim (TLS origination)" ||
	bad "tcp-echo frontend" "$(cat "$tmp/fe")"

# N connections from sleep, each: two lines (one of them bytes no HTTP parser takes),
# a half-close, then every echoed line and the server's EOF
clients() { # N HOST
	"$KSTEER" lab exec cluster1 sample/sleep -- python3 - "$1" "$2" <<'PY'
import socket, sys
n, host = int(sys.argv[1]), sys.argv[2]
odd = b"\x00\x01 ksteer-tcp-marker \xff GET / HTTP/9.9"
for i in range(n):
    try:
        s = socket.create_connection((host, 9000), timeout=5)
        s.sendall(b"hello %d\n" % i + odd + b"\n")
        s.shutdown(socket.SHUT_WR)
        data = s.makefile("rb").read()  # every echoed line, to the server's EOF
        s.close()
        lines = data.split(b"\n")
        ok = len(lines) == 3 and lines[0].endswith(b" hello %d" % i) and lines[1].endswith(b" " + odd) and lines[2] == b""
        print(lines[0].split(b" ")[0].decode(errors="replace"), lines[0].split(b" ")[2].decode(errors="replace") if ok else "BAD", "ok" if ok else repr(data[:80]))
    except OSError as e:
        print("FAIL", "-", i, e)
PY
}

ip netns exec ksl-wan tcpdump -i br0 --immediate-mode -U -s 0 -w "$tmp/wan.pcap" tcp >/dev/null 2>"$tmp/tcpdump.err" &
started_pids+=($!)
tcpdump_pid=$!
sleep 1
clients 600 tcp-echo >"$tmp/c"
kill "$tcpdump_pid" 2>/dev/null
wait "$tcpdump_pid" 2>/dev/null
python3 - "$tmp/c" >"$tmp/share" <<'PY'
import collections, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
c = collections.Counter((r[0], r[1]) for r in rows if r[2] == "ok")
bad = [r for r in rows if r[2] != "ok"]
v1 = c[("v1", "cluster1")] * 100.0 / len(rows)
v2 = c[("v2", "cluster2")] * 100.0 / len(rows)
print(len(rows), len(bad), f"{v1:.1f}", f"{v2:.1f}", abs(v1 - 80) <= 6 and v1 + v2 == 100.0)
PY
read -r n nbad v1 v2 good <"$tmp/share"
[ "$n" = 600 ] && [ "$nbad" = 0 ] && [ "$good" = True ] &&
	ok "600 connections: every line echoed byte for byte after a half-close; v1 (cluster1) $v1%, v2 (cluster2) $v2%, 80/20 within 6 points" ||
	bad "tcp-echo split" "$(cat "$tmp/share")" "$(grep -v ' ok$' "$tmp/c" | head -3)"

python3 - "$tmp/wan.pcap" >"$tmp/wan" <<'PY'
import sys
d = open(sys.argv[1], "rb").read()
print(len(d), d.count(b"ksteer-tcp-marker"), d.count(b"hello "), d.count(b"outbound_.9000_.v2_.tcp-echo.sample.global"))
PY
read -r size marker hello sni <"$tmp/wan"
[ "$size" -gt 10000 ] && [ "$marker" = 0 ] && [ "$hello" = 0 ] && [ "$sni" -gt 0 ] &&
	ok "the WAN carried only TLS: $size bytes, no payload in clear, SNI outbound_.9000_.v2_.tcp-echo.sample.global seen $sni times" ||
	bad "WAN capture" "bytes=$size marker=$marker hello=$hello sni=$sni" "$(cat "$tmp/tcpdump.err")"

routed=$(shimstat lab-cluster1-node1 streams.routed)
same=$(shimstat lab-cluster1-node1 sameNode)
gw=$(shimstat lab-cluster2-gateway gateway.routed)
[ "$routed" -ge 600 ] && [ "$same" -gt 0 ] && [ "$gw" -gt 0 ] &&
	ok "cluster1's shim routed $routed streams ($same to v1 on its own node, in process); cluster2's gateway routed $gw" ||
	bad "stream counters" "routed $routed, same node $same, gateway $gw"

# a subjectAltName that is not v2's identity: the cross-cluster handshake fails and the
# connection closes without an echo; the local path too (the same check, in process)
sed 's|{tls: {mode: ISTIO_MUTUAL}}|{tls: {mode: ISTIO_MUTUAL, subjectAltNames: ["spiffe://cluster.local/ns/sample/sa/nobody"]}}|' \
	"$EX/tcp-echo-multicluster.yaml" | "$KSTEER" lab apply cluster1 -n sample -f - >"$tmp/apply" 2>&1 ||
	bad "apply subjectAltNames" "$(cat "$tmp/apply")"
r0=$(shimstat lab-cluster1-node1 streams.refused)
clients 20 tcp-echo >"$tmp/w"
r1=$(shimstat lab-cluster1-node1 streams.refused)
[ "$(grep -c ' ok$' "$tmp/w")" = 0 ] && [ "$r1" -ge $((r0 + 20)) ] &&
	ok "subjectAltNames naming another identity: 20 of 20 connections closed unanswered, refused counted ($r0 -> $r1)" ||
	bad "wrong subjectAltNames" "refused $r0 -> $r1" "$(sort "$tmp/w" | uniq -c | head -5)"
"$KSTEER" lab apply cluster1 -n sample -f "$EX/tcp-echo-multicluster.yaml" >/dev/null 2>&1
clients 20 tcp-echo >"$tmp/back"
[ "$(grep -c ' ok$' "$tmp/back")" = 20 ] && ok "the rule restored: 20 of 20 echoed again" || bad "restored" "$(sort "$tmp/back" | uniq -c)"

# tls routes: a port named tls-*, routed by the ClientHello's SNI (read, not answered);
# the bytes, ClientHello first, reach the route's destination as they are
cat >"$tmp/tls.yaml" <<'Y'
apiVersion: v1
kind: Service
metadata: {name: tls-echo}
spec:
  ports: [{port: 9000, name: tls-echo}]
  selector: {app: tcp-echo}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: tls-echo}
spec:
  hosts: [tls-echo]
  tls:
  - match: [{sniHosts: [a.example.com, "*.b.example.com"]}]
    route: [{destination: {host: tls-echo}}]
Y
"$KSTEER" lab apply cluster1 -n sample -f "$tmp/tls.yaml" >"$tmp/apply" 2>&1 || bad "apply tls-echo" "$(cat "$tmp/apply")"
"$KSTEER" lab exec cluster1 sample/sleep -- python3 - >"$tmp/sni" 2>&1 <<'PY'
import socket, ssl
for sni in ["a.example.com", "x.b.example.com", "c.example.com"]:
    ctx = ssl.create_default_context()
    out, inc = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(inc, out, server_hostname=sni)
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = out.read()
    s = socket.create_connection(("tls-echo", 9000), timeout=5)
    s.sendall(hello + b"\n")
    s.shutdown(socket.SHUT_WR)
    try:
        data = s.makefile("rb").read()  # to EOF
    except OSError:
        data = b""
    print(sni, data.startswith(b"v1 tcp-echo-v1-0 cluster1 " + hello[:8]), len(data))
PY
r=$(shimstat lab-cluster1-node1 streams.refused)
grep -q "^a.example.com True" "$tmp/sni" && grep -q "^x.b.example.com True" "$tmp/sni" && grep -q "^c.example.com False 0" "$tmp/sni" &&
	ok "tls routes: SNI a.example.com and x.b.example.com (*.b.example.com) reach tls-echo with the ClientHello intact; c.example.com closed ($r refused in all)" ||
	bad "tls routes by SNI" "$(cat "$tmp/sni")"

for i in lab-cluster1-node1 lab-cluster2-node1 lab-cluster2-gateway; do
	[ -S /run/ksteer/$i.sock ] || bad "agent $i died"
done
finish
