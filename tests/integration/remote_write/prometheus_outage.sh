#!/bin/bash
# prometheus.remote_write against a real Prometheus 2.42 remote-write receiver:
#  1. samples pushed through the plugin are queryable with the right labels;
#  2. Prometheus is stopped for ~60 s while samples keep coming, and the
#     starling side is restarted in the middle of the outage (its disk buffer
#     carries the unsent data over);
#  3. after Prometheus is back, every sample of the whole run is there.
# Ports: Prometheus on a free port in 127.0.0.1:24000-24099 (area 24000-24999).
# usage: prometheus_outage.sh RW_DRIVER PLUGIN_SO [OUTAGE_SECONDS]
set -u
DRIVER=$1
PLUGIN=$2
OUTAGE=${3:-60}
source "$(dirname "$0")/ports.sh"
source "$(dirname "$0")/../prom_head.sh" # prom_head_yml, prom_wait_head
PORT=$(pick_port 24000 100) || exit 1
URL="http://127.0.0.1:$PORT"
SERIES=5
WORK=$(mktemp -d /tmp/starling-rw-it-XXXXXX)
PROM_PID=
DRV_PID=

cleanup() {
	for p in $DRV_PID $PROM_PID; do
		kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*"
	echo "--- prometheus log (tail)"; tail -n 20 "$WORK/prom.log" 2>/dev/null
	echo "--- driver logs (tail)"; tail -n 20 "$WORK"/drv*.log 2>/dev/null
	exit 1
}

command -v prometheus >/dev/null || { echo "SKIP: prometheus not installed"; exit 77; }

prom_head_yml "$PORT" >"$WORK/prom.yml"

start_prom() {
	prometheus --config.file="$WORK/prom.yml" --storage.tsdb.path="$WORK/tsdb" \
		--web.listen-address=127.0.0.1:$PORT --web.enable-remote-write-receiver \
		>>"$WORK/prom.log" 2>&1 &
	PROM_PID=$!
	for _ in $(seq 1 200); do
		[ "$(curl -s -o /dev/null -w '%{http_code}' $URL/-/ready)" = 200 ] &&
			listens "$PROM_PID" "$PORT" && {
			prom_wait_head "$PORT" 30 ||
				fail "prometheus did not append its first sample within 30 s"
			return 0
		}
		sleep 0.05
	done
	fail "prometheus not ready on port $PORT after 10 s (port taken by another run?)"
}

stop_prom() {
	kill "$PROM_PID"
	wait "$PROM_PID" 2>/dev/null
	PROM_PID=
}

# query EXPR -> prints the first result's value ("" when none)
query() {
	curl -s -G "$URL/api/v1/query" --data-urlencode "query=$1" |
		sed -n 's/.*"value":\[[0-9.]*,"\([^"]*\)"\].*/\1/p'
}

start_prom
echo "prometheus up"

"$DRIVER" "$PLUGIN" "$URL/api/v1/write" "$WORK/state" "$WORK/ticks1" $SERIES 1000 600 0 \
	>"$WORK/drv1.log" 2>&1 &
DRV_PID=$!

# 1. samples arrive, with labels and the external label
ok=
for _ in $(seq 1 100); do
	v=$(query "count(rw_it_metric{job=\"rw_driver\",env=\"it\"})")
	[ "$v" = "$SERIES" ] && { ok=1; break; }
	sleep 0.1
done
[ -n "$ok" ] || fail "series not queryable with job/env labels (got '$v')"
labels=$(curl -s -G "$URL/api/v1/query" --data-urlencode 'query=rw_it_metric{series="3"}' |
	grep -o '"metric":{[^}]*}')
echo "labels: $labels"
echo "$labels" | grep -q '"__name__":"rw_it_metric"' &&
	echo "$labels" | grep -q '"env":"it"' && echo "$labels" | grep -q '"job":"rw_driver"' &&
	echo "$labels" | grep -q '"series":"3"' || fail "unexpected labels: $labels"
sleep 3

# 2. outage; restart the starling side half-way through
echo "stopping prometheus for $OUTAGE s"
stop_prom
sleep $((OUTAGE / 2))
kill -TERM "$DRV_PID"
wait "$DRV_PID"
DRV_PID=
[ -s "$WORK/ticks1" ] || fail "driver 1 did not finish"
ls "$WORK/state/prom/"*.seg >/dev/null 2>&1 || fail "no disk buffer segments after restart"
echo "driver 1: $(cat "$WORK/ticks1") ticks; $(ls "$WORK/state/prom/" | wc -l) segments buffered"
"$DRIVER" "$PLUGIN" "$URL/api/v1/write" "$WORK/state" "$WORK/ticks2" $SERIES 1000 600 60 \
	>"$WORK/drv2.log" 2>&1 &
DRV_PID=$!
sleep $((OUTAGE - OUTAGE / 2))

# 3. Prometheus back: everything arrives
start_prom
echo "prometheus restarted"
sleep 8
kill -TERM "$DRV_PID"
wait "$DRV_PID"
DRV_PID=
[ -s "$WORK/ticks2" ] || fail "driver 2 did not finish"
t1=$(cat "$WORK/ticks1")
t2=$(cat "$WORK/ticks2")
want=$(( (t1 + t2) * SERIES ))
got=
for _ in $(seq 1 100); do
	got=$(query 'sum(count_over_time(rw_it_metric[30m]))')
	[ "$got" = "$want" ] && break
	sleep 0.2
done
echo "driver logs:"; cat "$WORK"/drv*.log
echo "expected $want samples ($t1 + $t2 ticks x $SERIES series), Prometheus has '$got'"
[ "$got" = "$want" ] || fail "samples lost or duplicated"
# values are tick numbers 0..t1-1 then 0..t2-1: check nothing is doubled
dups=$(query 'max(count_over_time(rw_it_metric[30m])) - min(count_over_time(rw_it_metric[30m]))')
[ "$dups" = "0" ] || fail "series have different sample counts ($dups)"
# under STARLING_SANITIZE the processes report to their logs at exit
if grep -l "ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:" "$WORK"/drv*.log 2>/dev/null; then
	fail "sanitizer report in the logs above"
fi
echo "PASS"
