#!/usr/bin/env bash
# prometheus.operator.podmonitors end to end: a fake Kubernetes API server
# (real payload shapes) announces a PodMonitor and pods whose IP:port is a
# real node_exporter on 127.0.0.1; Starling discovers and scrapes them into a
# local.file_sink file.
#   podmonitors.sh BUILD_DIR
# Asserts: node_exporter samples arrive with the labels the operator would
# give them (job=<ns>/<monitor>, namespace, pod, container, endpoint,
# instance); a pod the selector does not match and a Failed pod are not
# scraped; a pod ADDED through the watch is scraped; after an in-stream 410
# the component re-lists and keeps scraping; a pod DELETED through the watch
# gets staleness markers and is no longer scraped; garbage from the API
# server is counted, makes the component unhealthy, and it recovers; the
# PodMonitor DELETED stops everything.
set -u
build=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
ne1=29101 ne2=29102 api=29180 http=29110

command -v prometheus-node-exporter >/dev/null || { echo "SKIP: no node_exporter"; exit 77; }

for p in $ne1 $ne2; do
	prometheus-node-exporter --web.listen-address=127.0.0.1:$p --no-collector.systemd \
		>"$work/node_exporter_$p.log" 2>&1 &
	pids+=($!)
done
python3 "$here/fake_apiserver.py" $api secret-token 2 >"$work/apiserver.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$ne1/metrics" 10 || fail "node_exporter 1 did not start"
wait_http "http://127.0.0.1:$ne2/metrics" 10 || fail "node_exporter 2 did not start"
wait_http "http://127.0.0.1:$api/_control/stats" 10 || fail "fake API server did not start"

apply podmonitor monitoring node-exporter
apply pod monitoring node-exporter-x7k2p node-exporter $ne1 Running
apply pod monitoring other-app-5d9f8 other-app $ne2 Running
apply pod monitoring node-exporter-failed node-exporter $ne2 Failed
# Same labels, other namespace: the monitor's namespaceSelector excludes it.
apply pod default node-exporter-elsewhere node-exporter $ne2 Running

cat >"$work/starling.cfg" <<CFG
plugins_dir = "$build/plugins";
state_dir = "$work/state";
server = { http_listen_addr = "127.0.0.1:$http"; };
components = (
  { type = "prometheus.operator.podmonitors"; name = "pm";
    client = { api_server = "http://127.0.0.1:$api"; bearer_token = "secret-token"; };
    namespaces = [ "monitoring" ];
    selector = { match_labels = { team = "infra"; }; };
    scrape = { default_scrape_interval = "1s"; };
    forward_to = [ "local.file_sink.out" ]; },
  { type = "local.file_sink"; name = "out"; path = "$work/samples.txt";
    flush_interval = "250ms"; }
);
CFG
"$build/starling" run --config "$work/starling.cfg" >"$work/starling.log" 2>&1 &
spid=$!
pids+=($spid)
wait_http "http://127.0.0.1:$http/-/ready" 20 || fail "starling did not start"

pod1="instance=\"127.0.0.1:$ne1\",job=\"monitoring/node-exporter\",namespace=\"monitoring\",pod=\"node-exporter-x7k2p\""
labels1="{container=\"node-exporter\",endpoint=\"metrics\",$pod1}"
wait_line "^up$labels1 1 " 20 || fail "no up=1 for the pod (want up$labels1)"
bi=$(grep '^node_exporter_build_info{' "$work/samples.txt" | grep "instance=\"127.0.0.1:$ne1\"" | tail -1)
for l in 'container="node-exporter"' 'endpoint="metrics"' 'job="monitoring/node-exporter"' \
	'namespace="monitoring"' 'pod="node-exporter-x7k2p"' 'goversion="'; do
	[[ "$bi" == *"$l"* ]] || fail "node_exporter_build_info lacks $l: $bi"
done
n=$(grep -c "$pod1" "$work/samples.txt")
[ "$n" -ge 400 ] || fail "only $n samples of the pod"
grep -q 'other-app\|node-exporter-failed\|node-exporter-elsewhere\|127.0.0.1:'$ne2 "$work/samples.txt" &&
	fail "a pod outside the monitor's selection was scraped"
grep -q '__meta_\|__tmp' "$work/samples.txt" && fail "meta labels leaked into samples"
healthy || fail "component not healthy after the initial list"
[ "$(stat_of pages)" -ge 1 ] || fail "the paged pod list was not followed (continue)"
[ "$(stat_of unauthorized)" = 0 ] || fail "requests without the bearer token"
echo "ok: initial list -> pod scraped with operator labels"

# A pod added through the watch.
apply pod monitoring node-exporter-q9w4z node-exporter $ne2 Running
pod2="instance=\"127.0.0.1:$ne2\",job=\"monitoring/node-exporter\",namespace=\"monitoring\",pod=\"node-exporter-q9w4z\""
wait_line "^up\{container=\"node-exporter\",endpoint=\"metrics\",$pod2\} 1 " 15 ||
	fail "pod ADDED through the watch not scraped"
echo "ok: watch ADDED -> new pod scraped"

# 410 Gone inside the stream: re-list, keep scraping.
lists0=$(stat_of lists)
errs0=$(api_errors)
ctl expire
for ((i = 0; i < 100; i++)); do
	[ "$(stat_of lists)" -gt "$lists0" ] && break
	sleep 0.1
done
[ "$(stat_of lists)" -gt "$lists0" ] || fail "no re-list after ERROR 410"
mark=$(wc -l <"$work/samples.txt")
wait_line_after "$mark" "^up$labels1 1 " 10 || fail "scraping stopped after the re-list"
[ "$(api_errors)" = "$errs0" ] || fail "a 410 was counted as an API error"
healthy || fail "unhealthy after a 410"
echo "ok: ERROR 410 -> re-list, scraping continues"

# A pod deleted through the watch: staleness markers, then nothing.
ctl delete "$(pod_json monitoring node-exporter-q9w4z node-exporter $ne2 Running)"
wait_line "^up\{container=\"node-exporter\",endpoint=\"metrics\",$pod2\} NaN [0-9]+ # stale" 15 ||
	fail "no staleness marker for the deleted pod"
sleep 1.5 # a scrape of the deleted pod already in flight may still land
mark=$(wc -l <"$work/samples.txt")
# the window for "no more scrapes of pod2": two scrapes of pod1 (1 s
# interval) after the mark, waited for rather than a fixed 2.5 s that a
# loaded machine may not fill
wait_count_after "$mark" "^up$labels1 1 " 2 30 || fail "the remaining pod is no longer scraped"
tail -n +"$((mark + 1))" "$work/samples.txt" | grep -q "$pod2" &&
	fail "the deleted pod is still scraped"
echo "ok: watch DELETED -> staleness markers, scraping of that pod stops"

# Garbage from the API server: counted, unhealthy, then recovery.
ctl list_garbage?n=2
ctl garbage
for ((i = 0; i < 100; i++)); do
	healthy || break
	sleep 0.1
done
healthy && fail "component still healthy after garbage from the API server"
errs=$(api_errors)
[ "$errs" -ge 1 ] || fail "API errors not counted ($errs)"
for ((i = 0; i < 150; i++)); do
	healthy && break
	sleep 0.1
done
healthy || fail "component did not recover after the garbage"
kill -0 $spid || fail "starling died"
mark=$(wc -l <"$work/samples.txt")
wait_line_after "$mark" "^up$labels1 1 " 10 || fail "scraping stopped after the garbage"
echo "ok: garbage -> counted ($errs), unhealthy, recovered"

# attachMetadata.node: the first such monitor starts a nodes watch; its
# targets get the node's labels (Prometheus attach_metadata, pod.go).
ctl apply '{"kind":"Node","apiVersion":"v1","metadata":{"name":"node-a","labels":{"topology.kubernetes.io/zone":"eu-west-1a"}},"status":{"addresses":[{"type":"InternalIP","address":"127.0.0.1"}],"daemonEndpoints":{"kubeletEndpoint":{"Port":10250}}}}'
ctl apply '{"apiVersion":"monitoring.coreos.com/v1","kind":"PodMonitor","metadata":{"name":"zoned","namespace":"monitoring","labels":{"team":"infra"}},"spec":{"selector":{"matchLabels":{"app.kubernetes.io/name":"node-exporter"}},"attachMetadata":{"node":true},"podMetricsEndpoints":[{"port":"metrics","interval":"1s","relabelings":[{"sourceLabels":["__meta_kubernetes_node_label_topology_kubernetes_io_zone"],"targetLabel":"zone"}]}]}}'
wait_line "^up\{container=\"node-exporter\",endpoint=\"metrics\",instance=\"127.0.0.1:$ne1\",job=\"monitoring/zoned\",namespace=\"monitoring\",pod=\"node-exporter-x7k2p\",zone=\"eu-west-1a\"\} 1 " 15 ||
	fail "attachMetadata.node: no target with the node's zone label"
ctl delete '{"apiVersion":"monitoring.coreos.com/v1","kind":"PodMonitor","metadata":{"name":"zoned","namespace":"monitoring"}}'
echo "ok: attachMetadata.node -> node labels on the targets"

# targetLimit: more targets than the limit -> every target of the job fails
# with up=0 and nothing is scraped (Prometheus scrape.go refreshTargetLimitErr,
# target_limit from promcfg.go). filterRunning=false lets the Failed pod in.
ctl apply '{"apiVersion":"monitoring.coreos.com/v1","kind":"PodMonitor","metadata":{"name":"limited","namespace":"monitoring","labels":{"team":"infra"}},"spec":{"selector":{"matchLabels":{"app.kubernetes.io/name":"node-exporter"}},"targetLimit":1,"podMetricsEndpoints":[{"port":"metrics","interval":"1s","filterRunning":false}]}}'
wait_line "^up\{container=\"node-exporter\",endpoint=\"metrics\",instance=\"127.0.0.1:$ne1\",job=\"monitoring/limited\",namespace=\"monitoring\",pod=\"node-exporter-x7k2p\"\} 0 " 15 ||
	fail "targetLimit: no up=0 for a job over its limit"
grep -q 'node_exporter_build_info{.*job="monitoring/limited"' "$work/samples.txt" &&
	fail "targetLimit: a job over its limit was scraped"
ctl delete '{"apiVersion":"monitoring.coreos.com/v1","kind":"PodMonitor","metadata":{"name":"limited","namespace":"monitoring"}}'
echo "ok: targetLimit exceeded -> up=0, nothing scraped"

# The PodMonitor removed: its targets get staleness markers and stop.
ctl delete "$(monitor_json monitoring node-exporter)"
wait_line "^up$labels1 NaN [0-9]+ # stale" 15 || fail "no staleness marker after the monitor went away"
sleep 1.5
mark=$(wc -l <"$work/samples.txt")
sleep 2.5
tail -n +"$((mark + 1))" "$work/samples.txt" | grep -q "$pod1" && fail "still scraping without a monitor"
echo "ok: PodMonitor DELETED -> scraping stops"
# A clean shutdown, and nothing the sanitizers (ASan build) complain about.
kill -TERM $spid
for ((i = 0; i < 100; i++)); do kill -0 $spid 2>/dev/null || break; sleep 0.1; done
kill -0 $spid 2>/dev/null && fail "starling did not stop within 10 s of SIGTERM"
wait $spid
rc=$?
[ $rc = 0 ] || fail "starling exited with $rc"
grep -E 'level=error|Sanitizer|runtime error' "$work/starling.log" && fail "errors in the log"
echo PASS
