# Shared helpers of the operator integration tests (sourced).
# Ports: 29000-29999 belong to these tests. Expects $api and $http.
work=$(mktemp -d /tmp/sts-operator.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	rm -rf "$work"
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*"
	for f in "$work"/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -20 "$f"; }; done
	[ -f "$work/samples.txt" ] && { echo "--- samples (up)"; grep '^up' "$work/samples.txt" | tail -8; }
	exit 1
}

# wait_http URL SECONDS: poll every 50 ms until HTTP 200.
wait_http() {
	local i n=$(($2 * 20))
	for ((i = 0; i < n; i++)); do
		[ "$(curl -s -o /dev/null -w '%{http_code}' "$1")" = 200 ] && return 0
		sleep 0.05
	done
	return 1
}

# wait_line REGEX SECONDS: until a line of the sink file matches (grep -E).
wait_line() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		grep -Eq "$1" "$work/samples.txt" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# wait_line_after LINENO REGEX SECONDS: same, only lines after LINENO.
wait_line_after() {
	local i
	for ((i = 0; i < $3 * 10; i++)); do
		tail -n +"$(($1 + 1))" "$work/samples.txt" | grep -Eq "$2" && return 0
		sleep 0.1
	done
	return 1
}

# wait_count_after LINENO REGEX N SECONDS: until N lines after LINENO match.
wait_count_after() {
	local i
	for ((i = 0; i < $4 * 10; i++)); do
		[ "$(tail -n +"$(($1 + 1))" "$work/samples.txt" | grep -Ec "$2")" -ge "$3" ] && return 0
		sleep 0.1
	done
	return 1
}

# Real Kubernetes object shapes (as `kubectl get -o json` shows them).
# pod_json NS NAME APP PORT PHASE
pod_json() {
	local ready=True
	[ "$5" = Running ] || ready=False
	cat <<JSON
{"kind":"Pod","apiVersion":"v1",
 "metadata":{"name":"$2","generateName":"${2%-*}-","namespace":"$1",
   "labels":{"app.kubernetes.io/name":"$3","controller-revision-hash":"6c4f9d7b8","pod-template-generation":"1"},
   "annotations":{"kubectl.kubernetes.io/default-container":"$3"},
   "ownerReferences":[{"apiVersion":"apps/v1","kind":"DaemonSet","name":"$3","uid":"0b3e8f7a-5d0c-4a51-9e0e-6a1f3b2c4d5e","controller":true,"blockOwnerDeletion":true}]},
 "spec":{"containers":[{"name":"$3","image":"quay.io/prometheus/node-exporter:v1.5.0",
     "args":["--web.listen-address=127.0.0.1:$4"],
     "ports":[{"name":"metrics","containerPort":$4,"protocol":"TCP"}],
     "resources":{},"terminationMessagePath":"/dev/termination-log","imagePullPolicy":"IfNotPresent"}],
   "restartPolicy":"Always","nodeName":"node-a","hostNetwork":true,"schedulerName":"default-scheduler"},
 "status":{"phase":"$5",
   "conditions":[{"type":"Initialized","status":"True","lastProbeTime":null,"lastTransitionTime":"2026-11-26T10:00:00Z"},
                 {"type":"Ready","status":"$ready","lastProbeTime":null,"lastTransitionTime":"2026-11-26T10:00:01Z"}],
   "hostIP":"127.0.0.1","podIP":"127.0.0.1","podIPs":[{"ip":"127.0.0.1"}],"startTime":"2026-11-26T10:00:00Z",
   "qosClass":"BestEffort"}}
JSON
}

# monitor_json NS NAME
monitor_json() {
	cat <<JSON
{"apiVersion":"monitoring.coreos.com/v1","kind":"PodMonitor",
 "metadata":{"name":"$2","namespace":"$1","generation":1,"labels":{"team":"infra"}},
 "spec":{"selector":{"matchLabels":{"app.kubernetes.io/name":"node-exporter"}},
   "namespaceSelector":{"matchNames":["$1"]},
   "podMetricsEndpoints":[{"port":"metrics","interval":"1s","scrapeTimeout":"1s",
     "relabelings":[{"action":"labeldrop","regex":"__meta_kubernetes_pod_annotation.*"}]}]}}
JSON
}

# ctl WHAT [BODY]: call the fake API server's control API.
ctl() {
	curl -sf -X POST --data-binary "${2:-}" "http://127.0.0.1:$api/_control/$1" >/dev/null ||
		fail "control call $1 failed"
}

# apply pod NS NAME APP PORT PHASE | apply podmonitor NS NAME
apply() {
	local kind=$1
	shift
	case $kind in
	pod) ctl apply "$(pod_json "$@")" ;;
	podmonitor) ctl apply "$(monitor_json "$@")" ;;
	*) ctl apply "$1" ;;
	esac
}

stat_of() {
	curl -s "http://127.0.0.1:$api/_control/stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"
}

# healthy: the component reports healthy on /metrics.
healthy() {
	curl -s "http://127.0.0.1:$http/metrics" |
		grep -Eq "^starling_component_healthy\\{component_id=\"${comp:-prometheus.operator.podmonitors.pm}\"[^}]*\\} 1"
}

# api_errors: starling_operator_api_errors_total of the instance, as an integer.
api_errors() {
	curl -s "http://127.0.0.1:$http/metrics" |
		awk '/^starling_operator_api_errors_total/ {s += $2} END {printf "%d\n", s}'
}
