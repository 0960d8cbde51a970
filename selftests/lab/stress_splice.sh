#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# The gateway splice under load: N opaque TCP streams from cluster1's sleep to tcp-echo v2
# in cluster2 (every one through the 15443 gateway), each a request, the client's
# half-close, then the echo and the server's EOF (test_tcp.sh's traffic); P clients at once.
# Counts the streams whose answer came back short or not at all. Not part of make test
# (minutes); usage: stress_splice.sh [N] [P] [on|off]   (defaults 3000 8 on)
. "$(dirname "$0")/lib.sh"
need_root
n=${1:-3000} par=${2:-8} mode=${3:-on}

lab_fresh $([ "$mode" = on ] && echo --splice)
eval "$("$KSTEER" lab env)"
# cluster1 sends every tcp-echo connection to v2 in cluster2
sed -e '/subset: v1}, weight: 80}/d' -e 's/subset: v2}, weight: 20}/subset: v2}, weight: 100}/' \
	"$EX/tcp-echo-multicluster.yaml" >"$tmp/mc.yaml"
{
	"$KSTEER" lab apply cluster1 -n sample -f "$EX/sleep.yaml" &&
		"$KSTEER" lab apply cluster1 -n sample -f "$EX/tcp-echo.yaml" -l service=tcp-echo &&
		"$KSTEER" lab apply cluster1 -n sample -f "$tmp/mc.yaml" &&
		"$KSTEER" lab apply cluster2 -n sample -f "$EX/tcp-echo.yaml" -l service=tcp-echo &&
		"$KSTEER" lab apply cluster2 -n sample -f "$EX/tcp-echo.yaml" -l version=v2 &&
		"$KSTEER" lab apply cluster2 -n sample -f "$EX/tcp-echo-dr-cluster2.yaml" &&
		"$KSTEER" lab apply cluster2 -n sample -f "$SHARED/scenario/cluster2/02-gateway.yaml"
} >"$tmp/apply" 2>&1 || { bad "apply tcp-echo" "$(cat "$tmp/apply")"; finish; exit 1; }
"$KSTEER" status --instance lab-cluster2-gateway | grep -q "^splice $mode" ||
	bad "splice $mode at the gateway" "$("$KSTEER" status --instance lab-cluster2-gateway | grep splice)"

# one client: COUNT streams, one line each: "ok" or "BAD i what-came"
cat >"$tmp/client.py" <<'PY'
import socket, sys
count, first = int(sys.argv[1]), int(sys.argv[2])
odd = b"\x00\x01 ksteer-tcp-marker \xff GET / HTTP/9.9"
for i in range(first, first + count):
    try:
        s = socket.create_connection(("tcp-echo", 9000), timeout=10)
        s.sendall(b"hello %d\n" % i + odd + b"\n")
        s.shutdown(socket.SHUT_WR)
        data = s.makefile("rb").read()  # every echoed line, to the server's EOF
        s.close()
        lines = data.split(b"\n")
        ok = len(lines) == 3 and lines[0].endswith(b" hello %d" % i) and lines[1].endswith(b" " + odd)
        print("ok" if ok else "BAD %d %r" % (i, data[:100]), flush=True)
    except OSError as e:
        print("BAD %d %s" % (i, e), flush=True)
PY
r0=$(stat lab-cluster2-gateway splice_redirected)
d0=$(stat lab-cluster2-gateway splice_dropped)
s0=$(shimstat lab-cluster2-gateway gateway.spliced)
c0=$(shimstat lab-cluster2-gateway gateway.copied)
t0=$(date +%s)
per=$(((n + par - 1) / par))
for p in $(seq 0 $((par - 1))); do
	"$KSTEER" lab exec cluster1 sample/sleep -- python3 - "$per" $((p * per)) <"$tmp/client.py" >"$tmp/out.$p" 2>&1 &
	started_pids+=($!)
done
wait
t1=$(date +%s)
cat "$tmp"/out.* >"$tmp/all"
total=$(grep -c . "$tmp/all")
good=$(grep -c '^ok$' "$tmp/all")
lost=$((total - good))
spl=$(($(shimstat lab-cluster2-gateway gateway.spliced) - s0))
cop=$(($(shimstat lab-cluster2-gateway gateway.copied) - c0))
echo "streams $total in $((t1 - t0)) s, $par at once; answer short or lost: $lost; gateway spliced $spl, copied $cop;" \
	"redirected $(($(stat lab-cluster2-gateway splice_redirected) - r0)), dropped $(($(stat lab-cluster2-gateway splice_dropped) - d0))"
grep -v '^ok$' "$tmp/all" | sort | uniq -c | sort -rn | head -10
[ "$total" = $((per * par)) ] && [ "$lost" = 0 ] &&
	ok "splice $mode: $total half-closed streams, every answer whole" ||
	bad "splice $mode: $lost of $total streams lost or cut their answer"
# KEEP=FILE: the clients' lines and the gateway's sockets (ss) at the end, for a look after
if [ -n "${KEEP:-}" ]; then
	cp "$tmp/all" "$KEEP"
	ip netns exec ksl-c2-gw ss -tnoie >"$KEEP.ss" 2>&1
fi
finish
