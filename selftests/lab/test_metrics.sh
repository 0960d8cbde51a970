#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Istio's standard metrics, scraped by a real Prometheus (Debian's), one per
# cluster on its node's loopback: the scenario's jason requests move
# istio_requests_total{destination_version="v2",response_code="200"} in
# cluster2 (reporter="destination") and in cluster1 (reporter="source") by
# the requests sent; tcp-echo's connections move istio_tcp_* by the
# connections and bytes the clients saw; labels are Istio's documented set;
# histogram buckets are cumulative and end at _count; an access log line
# matches what curl saw.
. "$(dirname "$0")/lib.sh"
need_root
N=${METRICS_REQUESTS:-40}
C=${METRICS_CONNECTIONS:-20}
command -v prometheus >/dev/null || { bad "prometheus is installed (scripts/deps.sh)"; finish; exit 1; }

prom_pids=()
stop_prom() {
	for p in "${prom_pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${prom_pids[@]}"; do wait "$p" 2>/dev/null; done
}
trap 'stop_prom; cleanup' EXIT

# A Prometheus in a node's network namespace, scraping that node's agent every second.
start_prom() { # NETNS PORT
	local d=$tmp/prom-$1
	mkdir -p "$d/data"
	cat >"$d/prometheus.yml" <<EOF
global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: ksteer
    metrics_path: /stats/prometheus
    static_configs: [{targets: ['127.0.0.1:15020']}]
EOF
	ip netns exec "$1" prometheus --config.file="$d/prometheus.yml" --storage.tsdb.path="$d/data" \
		--web.listen-address="127.0.0.1:$2" >"$d/log" 2>&1 &
	prom_pids+=($!)
	started_pids+=($!)
}
# An instant query's value (the sum of what it returns; 0 when nothing).
pq() { # NETNS PORT QUERY
	ip netns exec "$1" curl -s -m 3 "http://127.0.0.1:$2/api/v1/query" --data-urlencode "query=$3" |
		python3 -c 'import json, sys
r = json.load(sys.stdin)["data"]["result"]
print(int(sum(float(x["value"][1]) for x in r)))' 2>/dev/null || echo ERR
}
# Waits until QUERY is WANT (Prometheus scrapes every second): prints what it saw last.
pwait() { # NETNS PORT QUERY WANT
	local v
	for _ in $(seq 40); do
		v=$(pq "$1" "$2" "$3")
		[ "$v" = "$4" ] && break
		sleep 0.5
	done
	echo "$v"
}

lab_fresh
scenario_kit "$tmp/kit"
scenario_apply "$tmp/kit" cluster1 cluster2 hello service=helloworld version=v1 version=v2 version=v3 &&
	ok "the scenario applied" || bad "apply the scenario" "$(cat "$tmp/apply")"
{
	"$KSTEER" lab apply cluster1 -n sample -f "$EX/sleep.yaml" &&
		"$KSTEER" lab apply cluster1 -n sample -f "$EX/tcp-echo.yaml" -l service=tcp-echo &&
		"$KSTEER" lab apply cluster1 -n sample -f "$EX/tcp-echo.yaml" -l version=v1 &&
		"$KSTEER" lab apply cluster1 -n sample -f "$EX/tcp-echo-multicluster.yaml" &&
		"$KSTEER" lab apply cluster2 -n sample -f "$EX/tcp-echo.yaml" -l service=tcp-echo &&
		"$KSTEER" lab apply cluster2 -n sample -f "$EX/tcp-echo.yaml" -l version=v2 &&
		"$KSTEER" lab apply cluster2 -n sample -f "$EX/tcp-echo-dr-cluster2.yaml" &&
		"$KSTEER" lab apply cluster2 -n sample -f "$SHARED/scenario/cluster2/02-gateway.yaml"
} >"$tmp/apply2" 2>&1 && ok "tcp-echo applied (tcp route 80/20 across the clusters, ISTIO_MUTUAL)" ||
	bad "apply tcp-echo" "$(cat "$tmp/apply2")"

start_prom ksl-c1-n1 19091
start_prom ksl-c2-n1 19092
up1=$(pwait ksl-c1-n1 19091 'up{job="ksteer"}' 1)
up2=$(pwait ksl-c2-n1 19092 'up{job="ksteer"}' 1)
[ "$up1" = 1 ] && [ "$up2" = 1 ] && ok "a Prometheus per cluster scrapes its node agent (up == 1)" ||
	bad "Prometheus scrapes the agents" "up: $up1 $up2" "$(tail -n 5 "$tmp/prom-ksl-c1-n1/log")"

# ---- HTTP: the scenario's jason requests ----
Q2='istio_requests_total{reporter="destination",destination_version="v2",response_code="200"}'
Q1='istio_requests_total{reporter="source",destination_service="helloworld.hello.global",response_code="200"}'
b2=$(pq ksl-c2-n1 19092 "sum($Q2)")
b1=$(pq ksl-c1-n1 19091 "sum($Q1)")
"$KSTEER" lab exec cluster1 hello/sleep -- bash -c "for i in \$(seq $N); do curl -s -m 5 -H 'end-user: jason' http://helloworld.hello:5000/hello; echo; done" |
	grep -v '^$' >"$tmp/jason"
v2=$(grep -c 'version: v2,' "$tmp/jason")
all=$(grep -c 'version: v[23],' "$tmp/jason")
[ "$all" = "$N" ] && ok "jason: $N answers from v2/v3 ($v2 from v2)" || bad "jason's answers" "$(head -3 "$tmp/jason")"
a2=$(pwait ksl-c2-n1 19092 "sum($Q2)" $((b2 + v2)))
[ "$a2" = $((b2 + v2)) ] &&
	ok "cluster2 (Prometheus): $Q2 moved by $v2, the v2 answers sent" ||
	bad "cluster2's v2 requests in Prometheus" "before $b2, after $a2, v2 answers $v2"
a1=$(pwait ksl-c1-n1 19091 "sum($Q1)" $((b1 + N)))
[ "$a1" = $((b1 + N)) ] && ok "cluster1 (Prometheus): reporter=source requests to helloworld.hello.global moved by $N" ||
	bad "cluster1's requests in Prometheus" "before $b1, after $a1, sent $N"
c2=$(pq ksl-c2-n1 19092 "sum(istio_request_duration_milliseconds_count{reporter=\"destination\",destination_version=\"v2\",response_code=\"200\"})")
[ "$c2" = "$a2" ] && ok "the duration histogram counts the same requests ($c2)" ||
	bad "duration _count vs requests" "$c2 vs $a2"

# the exposition itself: Istio's labels, escaping-safe values, cumulative buckets
ip netns exec ksl-c2-n1 curl -s -m 3 http://127.0.0.1:15020/stats/prometheus >"$tmp/expo2"
ip netns exec ksl-c1-n1 curl -s -m 3 http://127.0.0.1:15020/stats/prometheus >"$tmp/expo1"
check_expo() { # FILE
	python3 - "$1" <<'PY'
import re, sys, collections
# Istio's documented labels (istio.io/latest/docs/reference/config/metrics)
common = {"reporter", "source_workload", "source_workload_namespace", "source_principal",
          "source_app", "source_version", "source_canonical_service", "source_canonical_revision",
          "source_cluster", "destination_workload", "destination_workload_namespace",
          "destination_principal", "destination_app", "destination_version", "destination_service",
          "destination_service_name", "destination_service_namespace",
          "destination_canonical_service", "destination_canonical_revision", "destination_cluster",
          "request_protocol", "response_flags", "connection_security_policy"}
http = common | {"response_code", "grpc_response_status"}
pat = re.compile(r'^([a-z_]+)\{(.*)\} (\S+)$')
lab = re.compile(r'([a-z_]+)="((?:[^"\\]|\\.)*)"')
hist = collections.defaultdict(list)
counts, errs, n = {}, [], 0
typed = set(l.split()[2] for l in open(sys.argv[1]) if l.startswith("# TYPE "))
for line in open(sys.argv[1]):
    line = line.rstrip("\n")
    if not line.startswith("istio_"):
        continue
    m = pat.match(line)
    if not m:
        errs.append("unparsed: " + line[:100]); continue
    name, labels, val = m.groups()
    d = dict(lab.findall(labels))
    le = d.pop("le", None)
    fam = re.sub(r"_(bucket|sum|count)$", "", name) if name.startswith(("istio_request_duration", "istio_request_bytes", "istio_response_bytes")) else name
    if fam not in typed:
        errs.append("no TYPE for " + fam)
    want = common if fam.startswith("istio_tcp_") else http
    if set(d) != want:
        errs.append(f"{name}: labels {sorted(set(d) ^ want)} differ from Istio's")
    key = (fam, tuple(sorted(d.items())))
    if name.endswith("_bucket"):
        hist[key].append((le, float(val)))
    elif name.endswith("_count"):
        counts[key] = float(val)
    n += 1
for key, bs in hist.items():
    vals = [v for _, v in bs]
    if vals != sorted(vals) or bs[-1][0] != "+Inf" or bs[-1][1] != counts.get(key):
        errs.append(f"{key[0]}: buckets {vals} not cumulative to _count {counts.get(key)}")
print(f"{n} istio_* samples, {len(hist)} histograms")
for e in errs[:5]:
    print(e)
sys.exit(1 if errs or not hist else 0)
PY
}
r=$(check_expo "$tmp/expo2") && ok "cluster2's exposition: Istio's label set on every istio_* sample, buckets cumulative, +Inf == _count ($r)" ||
	bad "cluster2's exposition" "$r"
r=$(check_expo "$tmp/expo1") && ok "cluster1's exposition: the same ($r)" || bad "cluster1's exposition" "$r"
# values as Istio computes them: workloads named after their Deployments, SPIFFE principals
l2=$(grep -m1 '^istio_requests_total{reporter="destination".*destination_version="v2"' "$tmp/expo2")
for want in 'source_principal="spiffe://cluster.local/ns/hello/sa/sleep"' 'source_workload_namespace="hello"' \
	'destination_workload="helloworld-v2"' 'destination_app="helloworld"' 'destination_cluster="cluster2"' \
	'destination_service="helloworld.hello.svc.cluster.local"' 'destination_service_name="helloworld"' \
	'connection_security_policy="mutual_tls"' 'request_protocol="http"'; do
	case "$l2" in *"$want"*) ;; *) bad "cluster2's v2 series has $want" "$l2" ;; esac
done
l1=$(grep -m1 '^istio_requests_total{reporter="source".*destination_service="helloworld.hello.global"' "$tmp/expo1")
for want in 'source_workload="sleep"' 'source_app="sleep"' 'source_cluster="cluster1"' \
	'source_principal="spiffe://cluster.local/ns/hello/sa/sleep"' 'destination_cluster="cluster2"' \
	'response_flags="-"'; do
	case "$l1" in *"$want"*) ;; *) bad "cluster1's source series has $want" "$l1" ;; esac
done
ok "label values as Istio's: workloads by Deployment, SPIFFE principals, clusters, mutual_tls on the server side"
grep -q '^ksteer_connect_total{result="seen"} [1-9]' "$tmp/expo1" &&
	grep -q '^# TYPE ksteer_sockmap_total counter' "$tmp/expo1" &&
	ok "the datapath's per-CPU counters as ksteer_* ($(grep -c '^ksteer_[a-z_]*_total{' "$tmp/expo1") labelled series)" ||
	bad "ksteer_* datapath counters" "$(grep '^ksteer_' "$tmp/expo1" | head -5)"

# ---- the access log: one request, as curl saw it ----
rid=ksteer-metrics-$$
out=$("$KSTEER" lab exec cluster1 hello/sleep -- curl -s -o /dev/null -m 5 -H 'end-user: jason' -H "x-request-id: $rid" \
	-w '%{http_code} %{size_download}' http://helloworld.hello:5000/hello)
alog=/run/ksteer-lab/logs/lab-cluster1-node1.access.log
for _ in $(seq 20); do grep -q "$rid" "$alog" 2>/dev/null && break; sleep 0.1; done
r=$(grep "$rid" "$alog" | python3 -c '
import json, sys
l = [json.loads(x) for x in sys.stdin]
e = l[0]
code, size = sys.argv[1].split()
ok = (len(l) == 1 and e["response_code"] == int(code) and e["bytes_sent"] == int(size) and
      e["method"] == "GET" and e["path"] == "/hello" and e["protocol"] == "HTTP/1.1" and
      e["authority"] == "helloworld.hello:5000" and e["response_flags"] == "-" and
      e["upstream_cluster"].startswith("outbound|5000|v") and e["bytes_received"] == 0 and
      e["reporter"] == "source" and e["start_time"].endswith("Z"))
print(("OK " if ok else "BAD ") + json.dumps(e))' "$out" 2>&1)
case "$r" in
OK*) ok "access log: the request's line says what curl saw ($out): ${r:3:160}..." ;;
*) bad "access log line" "curl: $out" "$r" ;;
esac

# ---- TCP: tcp-echo's connections, through the shim with ISTIO_MUTUAL ----
# the tcp route splits 80/20 between tcp-echo.sample.svc.cluster.local and tcp-echo.sample.global
QT='reporter="source",destination_service=~"tcp-echo[.]sample[.].+"'
o1=$(pq ksl-c1-n1 19091 "sum(istio_tcp_connections_opened_total{$QT})")
x1=$(pq ksl-c1-n1 19091 "sum(istio_tcp_connections_closed_total{$QT})")
s1=$(pq ksl-c1-n1 19091 "sum(istio_tcp_received_bytes_total{$QT})")
r1=$(pq ksl-c1-n1 19091 "sum(istio_tcp_sent_bytes_total{$QT})")
tcp=$("$KSTEER" lab exec cluster1 sample/sleep -- python3 - "$C" <<'PY'
import socket, sys
n, sent, got, good = int(sys.argv[1]), 0, 0, 0
for i in range(n):
    s = socket.create_connection(("tcp-echo.sample", 9000), timeout=5)
    msg = b"hello %d\n" % i
    s.sendall(msg)
    s.shutdown(socket.SHUT_WR)
    data = s.makefile("rb").read()
    s.close()
    sent += len(msg)
    got += len(data)
    good += data.endswith(msg.strip() + b"\n")
print(good, sent, got)
PY
)
read -r good sent got <<<"$tcp"
[ "$good" = "$C" ] && ok "tcp-echo: $C connections echoed ($sent bytes sent, $got received)" || bad "tcp-echo" "$tcp"
o2=$(pwait ksl-c1-n1 19091 "sum(istio_tcp_connections_opened_total{$QT})" $((o1 + C)))
x2=$(pwait ksl-c1-n1 19091 "sum(istio_tcp_connections_closed_total{$QT})" $((x1 + C)))
s2=$(pwait ksl-c1-n1 19091 "sum(istio_tcp_received_bytes_total{$QT})" $((s1 + sent)))
r2=$(pwait ksl-c1-n1 19091 "sum(istio_tcp_sent_bytes_total{$QT})" $((r1 + got)))
[ "$o2" = $((o1 + C)) ] && [ "$x2" = $((x1 + C)) ] && [ "$s2" = $((s1 + sent)) ] && [ "$r2" = $((r1 + got)) ] &&
	ok "cluster1 (Prometheus): istio_tcp_connections_opened/closed moved by $C, received/sent bytes by $sent/$got" ||
	bad "istio_tcp_* in Prometheus" "opened $o1->$o2 closed $x1->$x2 received $s1->$s2 (want +$sent) sent $r1->$r2 (want +$got)"
n=$(grep -c '"protocol":"TCP".*"upstream_cluster":"outbound|9000|' "$alog")
[ "$n" -ge "$C" ] && ok "access log: a line per TCP stream ($n)" || bad "access log TCP lines" "$n < $C"

finish
