#!/bin/bash
# prometheus.remote_write inside the real daemon (build/starling), fed by the
# host's test.producer fixture plugin, against a real Prometheus 2.42:
#  1. the samples are queryable with the producer's and the external labels;
#  2. Prometheus goes away; half-way through the outage the daemon is
#     restarted (SIGTERM, start again with the same state directory);
#  3. when Prometheus is back, every sample of both daemon runs arrives:
#     the producer's value is its tick count, so for each run the number of
#     samples in Prometheus must equal the highest value (no gap), and the
#     first run's highest value must reach what it had produced when stopped.
# Ports: free ones in 127.0.0.1:24100-24199 (Prometheus), 24200-24299 (starling).
# usage: daemon_outage.sh STARLING PLUGIN_SO PRODUCER_SO [OUTAGE_SECONDS]
set -u
STARLING=$1
PLUGIN=$2
PRODUCER=$3
OUTAGE=${4:-30}
source "$(dirname "$0")/ports.sh"
source "$(dirname "$0")/../prom_head.sh" # prom_head_yml, prom_wait_head
PROM_PORT=$(pick_port 24100 100) || exit 1
ST_PORT=$(pick_port 24200 100) || exit 1
PROM=127.0.0.1:$PROM_PORT
ST=127.0.0.1:$ST_PORT
SERIES=4
WORK=$(mktemp -d /tmp/starling-rw-daemon-XXXXXX)
PROM_PID=
ST_PID=

cleanup() {
	for p in $ST_PID $PROM_PID; do
		kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*"
	echo "--- starling log (tail)"; tail -n 30 "$WORK"/starling-*.log 2>/dev/null
	echo "--- prometheus log (tail)"; tail -n 10 "$WORK/prom.log" 2>/dev/null
	exit 1
}

command -v prometheus >/dev/null || { echo "SKIP: prometheus not installed"; exit 77; }
mkdir -p "$WORK/plugins"
cp "$PLUGIN" "$PRODUCER" "$WORK/plugins/"
chmod 755 "$WORK" "$WORK/plugins"
chmod 644 "$WORK"/plugins/*.so
prom_head_yml "$PROM_PORT" >"$WORK/prom.yml"

wait_200() { # URL what PID PORT
	for _ in $(seq 1 200); do
		[ "$(curl -s -o /dev/null -w '%{http_code}' "$1")" = 200 ] && listens "$3" "$4" && return 0
		sleep 0.05
	done
	fail "$2 not ready on port $4 after 10 s (port taken by another run?)"
}

start_prom() {
	prometheus --config.file="$WORK/prom.yml" --storage.tsdb.path="$WORK/tsdb" \
		--web.listen-address=$PROM --web.enable-remote-write-receiver \
		>>"$WORK/prom.log" 2>&1 &
	PROM_PID=$!
	wait_200 "http://$PROM/-/ready" prometheus "$PROM_PID" "$PROM_PORT"
	prom_wait_head "$PROM_PORT" 30 || fail "prometheus did not append its first sample within 30 s"
}

stop() { # PID variable name
	local pid=${!1}
	kill -TERM "$pid"
	wait "$pid" 2>/dev/null
	eval "$1="
}

start_starling() { # RUN
	cat >"$WORK/starling-$1.cfg" <<EOF
server = { http_listen_addr = "$ST"; };
components = (
  {
    type = "test.producer";
    name = "p";
    interval = "1s";
    series = $SERIES;
    run = "$1";
    forward_to = [ "prometheus.remote_write.default" ];
  },
  {
    type = "prometheus.remote_write";
    name = "default";
    external_labels = { env = "daemon"; };
    endpoint = ( {
      url = "http://$PROM/api/v1/write";
      name = "prom";
      remote_timeout = "5s";
      queue_config = { batch_send_deadline = "1s"; max_backoff = "2s"; };
    } );
  }
);
EOF
	"$STARLING" run --config "$WORK/starling-$1.cfg" --plugins-dir "$WORK/plugins" \
		--state-dir "$WORK/state" >"$WORK/starling-$1.log" 2>&1 &
	ST_PID=$!
	wait_200 "http://$ST/-/ready" starling "$ST_PID" "$ST_PORT"
}

query() { # EXPR -> first value or ""
	curl -s -G "http://$PROM/api/v1/query" --data-urlencode "query=$1" |
		sed -n 's/.*"value":\[[0-9.]*,"\([^"]*\)"\].*/\1/p'
}

# complete RUN MIN: every sample 1..max of run RUN is there, max >= MIN
complete() {
	local c m
	c=$(query "count_over_time(starling_test_value{run=\"$1\",series=\"0\",env=\"daemon\"}[30m])")
	m=$(query "max_over_time(starling_test_value{run=\"$1\",series=\"0\",env=\"daemon\"}[30m])")
	echo "run $1: $c samples, highest value $m (want >= $2)"
	[ -n "$c" ] && [ "$c" = "$m" ] && [ "$m" -ge "$2" ]
}

start_prom
start_starling a
ok=
for _ in $(seq 1 100); do
	[ "$(query 'count(starling_test_value{run="a",env="daemon"})')" = "$SERIES" ] && { ok=1; break; }
	sleep 0.1
done
[ -n "$ok" ] || fail "producer series not queryable through remote write"
echo "ok: samples arrive in Prometheus with the producer's and the external labels"

stop PROM_PID
echo "prometheus stopped for $OUTAGE s"
sleep $((OUTAGE / 2))
produced_a=$(curl -s "http://$ST/metrics" |
	sed -n 's/^starling_test_batches_forwarded_total{.*component_id="test.producer.p".*} \([0-9]*\).*/\1/p' |
	head -n1)
[ -n "$produced_a" ] || fail "cannot read the producer's batch counter"
stop ST_PID
ls "$WORK"/state/prometheus.remote_write.default/prom/*.seg >/dev/null 2>&1 ||
	fail "no disk buffer after the daemon stopped"
echo "daemon run a stopped after $produced_a batches; buffer: $(du -sh "$WORK/state" | cut -f1)"
start_starling b
sleep $((OUTAGE - OUTAGE / 2))
start_prom
echo "prometheus back"

ok=
for _ in $(seq 1 60); do
	if complete a "$produced_a" >/dev/null && complete b $((OUTAGE / 2 - 2)) >/dev/null; then
		ok=1
		break
	fi
	sleep 0.5
done
complete a "$produced_a"
complete b $((OUTAGE / 2 - 2))
[ -n "$ok" ] || fail "samples of the outage are missing"
grep -q "will be sent" "$WORK/starling-b.log" || fail "run b did not report the buffered samples"
stop ST_PID
# under STARLING_SANITIZE the processes report to their logs at exit
if grep -l "ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:" "$WORK"/starling-*.log 2>/dev/null; then
	fail "sanitizer report in the logs above"
fi
echo "PASS"
