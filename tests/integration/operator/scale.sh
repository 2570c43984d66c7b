#!/usr/bin/env bash
# prometheus.operator.podmonitors at scale: N pods and M PodMonitors (each
# selecting N/M pods) on the fake API server; nothing listens on the pods'
# ports, so scrapes fail fast and only discovery is measured.
#   scale.sh BUILD_DIR [N [M]]
# Asserts: all N targets are generated within 15 s of start, one pod ADDED
# through the watch is a target within 3 s, and the daemon stays under
# 300 MiB RSS. Prints the figures.
set -u
build=$(cd "$1" && pwd)
N=${2:-5000} M=${3:-50}
here=$(cd "$(dirname "$0")" && pwd)
api=29580 http=29510
. "$here/lib.sh"

python3 "$here/fake_apiserver.py" $api secret-token >"$work/apiserver.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$api/_control/stats" 10 || fail "fake API server did not start"
python3 - "$N" "$M" >"$work/objs.json" <<'PY'
import json, sys
n, m = int(sys.argv[1]), int(sys.argv[2])
objs = []
for i in range(n):
    objs.append({"kind": "Pod", "apiVersion": "v1",
                 "metadata": {"name": "app-%05d" % i, "namespace": "scale",
                              "labels": {"app": "a%d" % (i % m), "pod-template-hash": "5d9f8c7b6"},
                              "annotations": {"kubernetes.io/psp": "restricted"}},
                 "spec": {"nodeName": "node-%d" % (i % 50),
                          "containers": [{"name": "app", "image": "example/app:1",
                                          "ports": [{"name": "metrics", "containerPort": 20000 + i % 1000, "protocol": "TCP"},
                                                    {"name": "http", "containerPort": 8080, "protocol": "TCP"}]}]},
                 "status": {"phase": "Running", "podIP": "127.%d.%d.%d" % (1 + i // 65536, (i // 256) % 256, i % 256),
                            "conditions": [{"type": "Ready", "status": "True"}]}})
for j in range(m):
    objs.append({"apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor",
                 "metadata": {"name": "pm-%d" % j, "namespace": "scale"},
                 "spec": {"selector": {"matchLabels": {"app": "a%d" % j}},
                          "podMetricsEndpoints": [{"port": "metrics", "interval": "60s"}]}})
print(json.dumps(objs))
PY
curl -sf -X POST --data-binary @"$work/objs.json" "http://127.0.0.1:$api/_control/apply" >/dev/null ||
	fail "loading the objects failed"

cat >"$work/starling.cfg" <<CFG
plugins_dir = "$build/plugins";
state_dir = "$work/state";
server = { http_listen_addr = "127.0.0.1:$http"; };
components = (
  { type = "prometheus.operator.podmonitors"; name = "pm";
    client = { api_server = "http://127.0.0.1:$api"; bearer_token = "secret-token"; };
    forward_to = [ "local.file_sink.out" ]; },
  { type = "local.file_sink"; name = "out"; path = "$work/samples.txt"; }
);
CFG
t0=$(date +%s%N)
"$build/starling" run --log.level debug --config "$work/starling.cfg" >"$work/starling.log" 2>&1 &
spid=$!
pids+=($spid)
for ((i = 0; i < 300; i++)); do
	grep -q "targets updated: 0 kept, $N added" "$work/starling.log" 2>/dev/null && break
	sleep 0.05
done
t1=$(date +%s%N)
grep -q "targets updated: 0 kept, $N added" "$work/starling.log" || fail "$N targets not generated in 15 s"
echo "figure: $N pods / $M PodMonitors: start -> $N targets $(((t1 - t0) / 1000000)) ms;" \
	"$(grep -o 'regenerated in [0-9]* ms' "$work/starling.log" | head -1)"

t0=$(date +%s%N)
ctl apply '{"kind":"Pod","apiVersion":"v1","metadata":{"name":"app-new","namespace":"scale","labels":{"app":"a0"}},"spec":{"containers":[{"name":"app","ports":[{"name":"metrics","containerPort":21999}]}]},"status":{"phase":"Running","podIP":"127.200.0.1"}}'
want=$((N + 1))
for ((i = 0; i < 150; i++)); do
	grep -q "targets updated: $N kept, 1 added" "$work/starling.log" && break
	sleep 0.02
done
t1=$(date +%s%N)
grep -q "targets updated: $N kept, 1 added" "$work/starling.log" || fail "watch ADDED not applied within 3 s"
echo "figure: watch ADDED -> target set with $want targets in $(((t1 - t0) / 1000000)) ms (200 ms debounce included);" \
	"$(grep -o 'regenerated in [0-9]* ms' "$work/starling.log" | tail -1)"
rss=$(awk '/VmRSS/ {print $2}' /proc/$spid/status)
echo "figure: RSS $((rss / 1024)) MiB with $want targets"
[ "$rss" -lt $((300 * 1024)) ] || fail "RSS $rss kB"
echo PASS
