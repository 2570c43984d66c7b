#!/bin/bash
# End to end inside the daemon: prometheus-node-exporter -> prometheus.scrape
# -> prometheus.remote_write -> Prometheus 2.42 (remote-write receiver):
#  1. up, and node_exporter's own series, are queryable with job, instance
#     and the external label, one sample per scrape interval;
#  2. node_exporter goes away: up turns 0 and its series go stale in
#     Prometheus (the staleness markers survive the whole path bit-exact).
# Ports: free ones in 127.0.0.1:24300-24399 (node_exporter), 24400-24499
# (Prometheus), 24500-24599 (starling).
# usage: node_exporter_e2e.sh STARLING PLUGINS_DIR_FILES...
set -u
STARLING=$1
shift
source "$(dirname "$0")/ports.sh"
NE_PORT=$(pick_port 24300 100) || exit 1
PROM_PORT=$(pick_port 24400 100) || exit 1
ST_PORT=$(pick_port 24500 100) || exit 1
NE=127.0.0.1:$NE_PORT
PROM=127.0.0.1:$PROM_PORT
ST=127.0.0.1:$ST_PORT
WORK=$(mktemp -d /tmp/starling-rw-e2e-XXXXXX)
NE_PID=
PROM_PID=
ST_PID=

cleanup() {
	for p in $ST_PID $NE_PID $PROM_PID; do
		kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*"
	echo "--- starling log (tail)"; tail -n 30 "$WORK/starling.log" 2>/dev/null
	exit 1
}

for bin in prometheus prometheus-node-exporter; do
	command -v $bin >/dev/null || { echo "SKIP: $bin not installed"; exit 77; }
done
mkdir -p "$WORK/plugins"
cp "$@" "$WORK/plugins/"
chmod 755 "$WORK" "$WORK/plugins"
chmod 644 "$WORK"/plugins/*.so
source "$(dirname "$0")/../prom_head.sh" # prom_head_yml, prom_wait_head
prom_head_yml "$PROM_PORT" >"$WORK/prom.yml"

wait_200() { # URL what PID PORT
	for _ in $(seq 1 200); do
		[ "$(curl -s -o /dev/null -w '%{http_code}' "$1")" = 200 ] && listens "$3" "$4" && return 0
		sleep 0.05
	done
	fail "$2 not ready on port $4 after 10 s (port taken by another run?)"
}

query() { # EXPR -> first value or ""
	curl -s -G "http://$PROM/api/v1/query" --data-urlencode "query=$1" |
		sed -n 's/.*"value":\[[0-9.]*,"\([^"]*\)"\].*/\1/p'
}

until_value() { # EXPR WANT SECONDS
	local v=
	for _ in $(seq 1 $(($3 * 10))); do
		v=$(query "$1")
		[ "$v" = "$2" ] && return 0
		sleep 0.1
	done
	echo "  $1 = '$v' (want '$2')"
	return 1
}

until_ge() { # EXPR MIN SECONDS (integer results)
	local v=
	for _ in $(seq 1 $(($3 * 10))); do
		v=$(query "$1")
		[ -n "$v" ] && [ "${v%%.*}" -ge "$2" ] && return 0
		sleep 0.1
	done
	echo "  $1 = '$v' (want >= $2)"
	return 1
}

prometheus --config.file="$WORK/prom.yml" --storage.tsdb.path="$WORK/tsdb" \
	--web.listen-address=$PROM --web.enable-remote-write-receiver >"$WORK/prom.log" 2>&1 &
PROM_PID=$!
prometheus-node-exporter --web.listen-address=$NE --no-collector.systemd >"$WORK/ne.log" 2>&1 &
NE_PID=$!
wait_200 "http://$PROM/-/ready" prometheus "$PROM_PID" "$PROM_PORT"
prom_wait_head "$PROM_PORT" 30 || fail "prometheus did not append its first sample within 30 s"
wait_200 "http://$NE/metrics" node_exporter "$NE_PID" "$NE_PORT"

cat >"$WORK/starling.cfg" <<EOF
server = { http_listen_addr = "$ST"; };
components = (
  {
    type = "prometheus.scrape";
    name = "node";
    job_name = "node";
    targets = ( { *address__ = "$NE"; } );
    scrape_interval = "1s";
    scrape_timeout = "1s";
    honor_metadata = true;
    forward_to = [ "prometheus.remote_write.default" ];
  },
  {
    type = "prometheus.remote_write";
    name = "default";
    external_labels = { cluster = "e2e"; };
    endpoint = ( {
      url = "http://$PROM/api/v1/write";
      queue_config = { batch_send_deadline = "500ms"; };
    } );
  }
);
EOF
"$STARLING" run --config "$WORK/starling.cfg" --plugins-dir "$WORK/plugins" \
	--state-dir "$WORK/state" >"$WORK/starling.log" 2>&1 &
ST_PID=$!
wait_200 "http://$ST/-/ready" starling "$ST_PID" "$ST_PORT"

sel="job=\"node\",instance=\"$NE\",cluster=\"e2e\""
until_value "up{$sel}" 1 20 || fail "up of the node_exporter target not in Prometheus"
until_ge "count(node_cpu_seconds_total{$sel})" 1 10 || fail "node_exporter series not in Prometheus"
n=$(query "count({$sel})")
echo "ok: up=1 and $n series of job node in Prometheus"
[ "${n:-0}" -ge 300 ] || fail "expected most of node_exporter's ~500 series, got '$n'"
# One up sample per 1 s interval, counted over a window that has fully
# arrived: 10 s after the first sample, once Prometheus holds samples past
# its end (not "the last 5 s", which under load may not have arrived yet).
t0=$(query "timestamp(up{$sel})")
t0=${t0%%.*}
until_ge "timestamp(up{$sel})" $((t0 + 12)) 60 || fail "up samples stopped arriving"
c=$(query "count_over_time(up{$sel}[10s] @ $((t0 + 11)))")
echo "up samples in the 10 s after the first: $c"
[ "${c:-0}" -ge 9 ] && [ "${c:-0}" -le 11 ] || fail "expected one up sample per 1 s interval, got '$c' in 10 s"

# honor_metadata: node_exporter's TYPE/HELP went out as remote write 1.0
# MetricMetadata and Prometheus 2.42 took the requests (2xx; it accepts
# WriteRequest.metadata and does not store it).
self_metric() { # NAME -> value summed over Starling's /metrics lines
	curl -s "http://$ST/metrics" | awk -v n="$1" '$1 ~ "^"n"({|$)" { s += $2 } END { print s + 0 }'
}
md=0
for _ in $(seq 1 100); do
	md=$(self_metric prometheus_remote_storage_metadata_requests_total)
	[ "${md%%.*}" -ge 1 ] && break
	sleep 0.1
done
mdf=$(self_metric prometheus_remote_storage_metadata_failed_total)
echo "metadata requests accepted by Prometheus: $md, failed: $mdf"
[ "${md%%.*}" -ge 1 ] || fail "no metadata request reached Prometheus"
[ "${mdf%%.*}" = 0 ] || fail "Prometheus refused metadata requests"

kill "$NE_PID"
wait "$NE_PID" 2>/dev/null
NE_PID=
until_value "up{$sel}" 0 10 || fail "up did not turn 0 after node_exporter stopped"
until_value "count(node_cpu_seconds_total{$sel}) or vector(0)" 0 10 ||
	fail "node_exporter series did not go stale (staleness markers lost?)"
echo "ok: target down -> up 0 and its series stale in Prometheus"
kill "$ST_PID"
wait "$ST_PID" 2>/dev/null
ST_PID=
# under STARLING_SANITIZE the processes report to their logs at exit
if grep -l "ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:" "$WORK/starling.log" 2>/dev/null; then
	fail "sanitizer report in the logs above"
fi
echo "PASS"
