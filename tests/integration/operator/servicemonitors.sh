#!/usr/bin/env bash
# prometheus.operator.servicemonitors end to end: a fake Kubernetes API server
# announces a ServiceMonitor, a Service, its Endpoints and the backing pod,
# pointing at real node_exporters on 127.0.0.1; Starling (clustering on, one
# node) scrapes them into a local.file_sink file.
#   servicemonitors.sh BUILD_DIR [endpoints|endpointslice]
# Asserts: samples carry the ServiceMonitor labels (job = service name,
# service, endpoint, namespace, pod, container, instance, targetLabels); an
# Endpoints MODIFIED event (or, with endpointslice, a second EndpointSlice)
# adding an address adds a target; the
# ServiceMonitor DELETED stops scraping with staleness markers.
set -u
build=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
role=${2:-endpoints}
if [ "$role" = endpoints ]; then
	ne1=29201 ne2=29202 api=29280 http=29210
else
	ne1=29301 ne2=29302 api=29380 http=29310
fi
comp=prometheus.operator.servicemonitors.sm

command -v prometheus-node-exporter >/dev/null || { echo "SKIP: no node_exporter"; exit 77; }

for p in $ne1 $ne2; do
	prometheus-node-exporter --web.listen-address=127.0.0.1:$p --no-collector.systemd \
		>"$work/node_exporter_$p.log" 2>&1 &
	pids+=($!)
done
python3 "$here/fake_apiserver.py" $api secret-token >"$work/apiserver.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$ne1/metrics" 10 || fail "node_exporter 1 did not start"
wait_http "http://127.0.0.1:$ne2/metrics" 10 || fail "node_exporter 2 did not start"
wait_http "http://127.0.0.1:$api/_control/stats" 10 || fail "fake API server did not start"

service='{"kind":"Service","apiVersion":"v1",
 "metadata":{"name":"node-exporter","namespace":"monitoring",
   "labels":{"app.kubernetes.io/name":"node-exporter","team":"infra"}},
 "spec":{"ports":[{"name":"metrics","protocol":"TCP","port":9100,"targetPort":"metrics"}],
   "selector":{"app.kubernetes.io/name":"node-exporter"},"clusterIP":"None","type":"ClusterIP",
   "sessionAffinity":"None"},
 "status":{"loadBalancer":{}}}'
endpoints() { # extra subsets
	cat <<JSON
{"kind":"Endpoints","apiVersion":"v1",
 "metadata":{"name":"node-exporter","namespace":"monitoring",
   "labels":{"app.kubernetes.io/name":"node-exporter","service.kubernetes.io/headless":""}},
 "subsets":[{"addresses":[{"ip":"127.0.0.1","nodeName":"node-a",
     "targetRef":{"kind":"Pod","namespace":"monitoring","name":"node-exporter-x7k2p","uid":"uid-pods-monitoring-node-exporter-x7k2p"}}],
   "ports":[{"name":"metrics","port":$ne1,"protocol":"TCP"}]}$1]}
JSON
}
# slice NAME PORT ADDRESS-JSON: an EndpointSlice of the service.
slice() {
	cat <<JSON
{"kind":"EndpointSlice","apiVersion":"discovery.k8s.io/v1",
 "metadata":{"name":"$1","namespace":"monitoring","generateName":"node-exporter-",
   "labels":{"kubernetes.io/service-name":"node-exporter","app.kubernetes.io/name":"node-exporter",
     "endpointslice.kubernetes.io/managed-by":"endpointslice-controller.k8s.io"}},
 "addressType":"IPv4",
 "endpoints":[$3],
 "ports":[{"name":"metrics","protocol":"TCP","port":$2}]}
JSON
}
smon='{"apiVersion":"monitoring.coreos.com/v1","kind":"ServiceMonitor",
 "metadata":{"name":"node-exporter","namespace":"monitoring","labels":{"team":"infra"}},
 "spec":{"selector":{"matchLabels":{"app.kubernetes.io/name":"node-exporter"}},
   "targetLabels":["team"],
   "endpoints":[{"port":"metrics","interval":"1s","scrapeTimeout":"1s",
     "metricRelabelings":[{"sourceLabels":["__name__"],"regex":"go_.*","action":"drop"}]}]}}'

ctl apply "$(pod_json monitoring node-exporter-x7k2p node-exporter $ne1 Running)"
ctl apply "$service"
if [ "$role" = endpoints ]; then
	ctl apply "$(endpoints "")"
else
	ctl apply "$(slice node-exporter-a1b2c $ne1 '{"addresses":["127.0.0.1"],"conditions":{"ready":true,"serving":true,"terminating":false},"nodeName":"node-a","targetRef":{"kind":"Pod","namespace":"monitoring","name":"node-exporter-x7k2p","uid":"uid-pods-monitoring-node-exporter-x7k2p"}}')"
fi
ctl apply "$smon"

cat >"$work/starling.cfg" <<CFG
plugins_dir = "$build/plugins";
state_dir = "$work/state";
server = { http_listen_addr = "127.0.0.1:$http"; };
components = (
  { type = "prometheus.operator.servicemonitors"; name = "sm";
    client = { api_server = "http://127.0.0.1:$api"; bearer_token_file = "$work/token"; };
    clustering = { enabled = true; };
    kubernetes_role = "$role";
    forward_to = [ "local.file_sink.out" ]; },
  { type = "local.file_sink"; name = "out"; path = "$work/samples.txt";
    flush_interval = "250ms"; }
);
CFG
echo secret-token >"$work/token"
"$build/starling" run --config "$work/starling.cfg" >"$work/starling.log" 2>&1 &
spid=$!
pids+=($spid)
wait_http "http://127.0.0.1:$http/-/ready" 20 || fail "starling did not start"

t1="{container=\"node-exporter\",endpoint=\"metrics\",instance=\"127.0.0.1:$ne1\",job=\"node-exporter\",namespace=\"monitoring\",pod=\"node-exporter-x7k2p\",service=\"node-exporter\",team=\"infra\"}"
wait_line "^up$t1 1 " 20 || fail "no up=1 with the ServiceMonitor labels (want up$t1)"
wait_line "^node_cpu_seconds_total\{.*instance=\"127.0.0.1:$ne1\"" 5 || fail "no node_cpu_seconds_total"
grep -q '^go_' "$work/samples.txt" && fail "metricRelabelings did not drop go_*"
healthy || fail "component not healthy"
echo "ok: ServiceMonitor ($role) -> endpoint scraped with operator labels, metricRelabelings applied"

# Endpoints MODIFIED / a new EndpointSlice: a second address (no pod) joins.
if [ "$role" = endpoints ]; then
	ctl apply "$(endpoints ",{\"addresses\":[{\"ip\":\"127.0.0.1\",\"targetRef\":{\"kind\":\"Node\",\"name\":\"node-b\"}}],\"ports\":[{\"name\":\"metrics\",\"port\":$ne2,\"protocol\":\"TCP\"}]}")"
else
	ctl apply "$(slice node-exporter-d3e4f $ne2 '{"addresses":["127.0.0.1"],"conditions":{"ready":true},"targetRef":{"kind":"Node","name":"node-b"}}')"
fi
t2="{endpoint=\"metrics\",instance=\"127.0.0.1:$ne2\",job=\"node-exporter\",namespace=\"monitoring\",node=\"node-b\",service=\"node-exporter\",team=\"infra\"}"
wait_line "^up$t2 1 " 15 || fail "address added by Endpoints MODIFIED not scraped (want up$t2)"
echo "ok: $role change -> new address scraped"

ctl delete "$smon"
wait_line "^up$t1 NaN [0-9]+ # stale" 15 || fail "no staleness marker after the ServiceMonitor went away"
wait_line "^up$t2 NaN [0-9]+ # stale" 5 || fail "no staleness marker for the second address"
sleep 1.5
mark=$(wc -l <"$work/samples.txt")
sleep 2.5
tail -n +"$((mark + 1))" "$work/samples.txt" | grep -q 'job="node-exporter"' &&
	fail "still scraping without a ServiceMonitor"
echo "ok: ServiceMonitor DELETED -> scraping stops"

kill -TERM $spid
for ((i = 0; i < 100; i++)); do kill -0 $spid 2>/dev/null || break; sleep 0.1; done
kill -0 $spid 2>/dev/null && fail "starling did not stop within 10 s of SIGTERM"
wait $spid
rc=$?
[ $rc = 0 ] || fail "starling exited with $rc"
grep -E 'level=error|Sanitizer|runtime error' "$work/starling.log" && fail "errors in the log"
echo PASS
