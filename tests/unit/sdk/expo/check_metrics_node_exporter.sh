#!/bin/bash
# A real node_exporter payload is valid Prometheus text for check-metrics
# (strict: every label set parsed), and every sample line is counted.
# Port 25104 (parser area range 25100-25109).
set -u
cli=$1
port=25104
tmp=$(mktemp -d)
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
command -v prometheus-node-exporter >/dev/null || { echo "SKIP: prometheus-node-exporter not installed"; exit 77; }
prometheus-node-exporter --web.listen-address=127.0.0.1:$port --no-collector.systemd \
	>"$tmp/log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
	curl -sf -o "$tmp/m.prom" "http://127.0.0.1:$port/metrics" && break
	sleep 0.1
done
[ -s "$tmp/m.prom" ] || { echo "FAIL: no payload"; cat "$tmp/log"; exit 1; }
want=$(grep -vc '^#' "$tmp/m.prom")
out=$("$cli" "$tmp/m.prom" 2>&1)
rc=$?
if [ "$rc" != 0 ] || [[ "$out" != *"valid Prometheus text 0.0.4: $want samples"* ]]; then
	echo "FAIL: rc=$rc '$out' (want $want samples)"
	exit 1
fi
echo "node_exporter payload: $out"
