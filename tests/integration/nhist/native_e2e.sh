#!/bin/bash
# Native histograms, the protobuf scrape format and exemplars end to end:
# a Go exporter built here from Debian's client_golang 1.14 (classic and
# native histograms, a summary, a counter with exemplars; values fixed with
# -static) -> prometheus.scrape -> prometheus.remote_write -> Prometheus
# 2.42 (--enable-feature=native-histograms,exemplar-storage, remote-write
# receiver), which also scrapes the same exporter itself (job prom_self;
# the feature flag makes 2.42 negotiate protobuf and keep only the native
# part of a histogram that has one: v2.42.0 docs/feature_flags.md).
#   st_proto  protobuf, scrape_native_histograms   == prom_self, series and values
#   st_both   protobuf, + scrape_classic_histograms: its classic series == st_text's
#   st_text   OpenMetrics text only
#   st_prom   Prometheus text 0.0.4 only (client_golang writes le="1" there;
#             le/quantile are normalized as Prometheus 3 does, so its
#             classic series equal st_both's too)
# Then: histogram_quantile over the native histogram; exemplars via
# /api/v1/query_exemplars (counter and native histogram) from st_live, which
# scrapes a second exporter whose values keep changing (2.42's receiver
# stores a histogram-only series' exemplars only once the series exists,
# and an unchanged timestamped exemplar is sent once); and staleness of the
# native histogram when the exporter goes away.
# usage: native_e2e.sh STARLING PLUGIN.so...
set -u
STARLING=$1
shift
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../remote_write/ports.sh"
for bin in prometheus go python3 curl; do
	command -v $bin >/dev/null || { echo "SKIP: $bin not installed"; exit 77; }
done
[ -d /usr/share/gocode/src/github.com/prometheus/client_golang/prometheus ] ||
	{ echo "SKIP: golang-github-prometheus-client-golang-dev not installed"; exit 77; }
EX_PORT=$(pick_port 25300 100) || exit 1
LIVE_PORT=$(pick_port 25300 100) || exit 1
PROM_PORT=$(pick_port 25400 100) || exit 1
ST_PORT=$(pick_port 25500 100) || exit 1
EX=127.0.0.1:$EX_PORT
LIVE=127.0.0.1:$LIVE_PORT
PROM=127.0.0.1:$PROM_PORT
ST=127.0.0.1:$ST_PORT
WORK=$(mktemp -d /tmp/starling-nhist-XXXXXX)
EX_PID= PROM_PID= ST_PID= LIVE_PID=

cleanup() {
	for p in $ST_PID $EX_PID $LIVE_PID $PROM_PID; do
		kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	[ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*"
	echo "--- starling log (tail)"; tail -n 30 "$WORK/starling.log" 2>/dev/null
	echo "--- prometheus log (tail)"; tail -n 10 "$WORK/prom.log" 2>/dev/null
	exit 1
}

# Offline GOPATH build against the Debian packages: no module download.
mkdir -p "$WORK/go" "$WORK/plugins"
cp "$HERE/exporter.go" "$WORK/go/"
(cd "$WORK/go" && GOPATH=/usr/share/gocode GO111MODULE=off GOFLAGS= GOPROXY=off \
	GOCACHE="$WORK/gocache" go build -o exporter exporter.go) >"$WORK/go.log" 2>&1 ||
	{ cat "$WORK/go.log"; fail "cannot build the exporter"; }
cp "$@" "$WORK/plugins/"
chmod 755 "$WORK" "$WORK/plugins"
chmod 644 "$WORK"/plugins/*.so

wait_200() { # URL what PID PORT
	for _ in $(seq 1 300); do
		[ "$(curl -s -o /dev/null -w '%{http_code}' "$1")" = 200 ] && listens "$3" "$4" && return 0
		sleep 0.05
	done
	fail "$2 not ready on port $4"
}

cat >"$WORK/prom.yml" <<EOF
global: { scrape_interval: 1s, scrape_timeout: 1s }
scrape_configs:
  - job_name: prom_self
    static_configs: [ { targets: [ "$EX" ] } ]
EOF
prometheus --config.file="$WORK/prom.yml" --storage.tsdb.path="$WORK/tsdb" \
	--web.listen-address=$PROM --web.enable-remote-write-receiver \
	--enable-feature=native-histograms,exemplar-storage >"$WORK/prom.log" 2>&1 &
PROM_PID=$!
"$WORK/go/exporter" -listen $EX -static >"$WORK/ex.log" 2>&1 &
EX_PID=$!
"$WORK/go/exporter" -listen $LIVE >"$WORK/live.log" 2>&1 &
LIVE_PID=$!
wait_200 "http://$PROM/-/ready" prometheus "$PROM_PID" "$PROM_PORT"
wait_200 "http://$EX/metrics" exporter "$EX_PID" "$EX_PORT"
wait_200 "http://$LIVE/metrics" exporter "$LIVE_PID" "$LIVE_PORT"

scrape() { # NAME EXTRA-SETTINGS [ADDRESS]
	cat <<EOF
  {
    type = "prometheus.scrape";
    name = "$1";
    job_name = "$1";
    targets = ( { *address__ = "${3:-$EX}"; } );
    scrape_interval = "1s";
    scrape_timeout = "1s";
    $2
    forward_to = [ "prometheus.remote_write.default" ];
  },
EOF
}
{
	echo "server = { http_listen_addr = \"$ST\"; };"
	echo "components = ("
	scrape st_proto 'scrape_native_histograms = true;'
	scrape st_both 'scrape_native_histograms = true; scrape_classic_histograms = true;'
	scrape st_text 'scrape_protocols = [ "OpenMetricsText1.0.0", "OpenMetricsText0.0.1" ];'
	scrape st_prom 'scrape_protocols = [ "PrometheusText0.0.4" ];'
	scrape st_live 'scrape_native_histograms = true;' $LIVE
	cat <<EOF
  {
    type = "prometheus.remote_write";
    name = "default";
    endpoint = ( {
      url = "http://$PROM/api/v1/write";
      send_native_histograms = true;
      send_exemplars = true;
      queue_config = { batch_send_deadline = "200ms"; };
    } );
  }
);
EOF
} >"$WORK/starling.cfg"
"$STARLING" run --config "$WORK/starling.cfg" --plugins-dir "$WORK/plugins" \
	--state-dir "$WORK/state" >"$WORK/starling.log" 2>&1 &
ST_PID=$!
wait_200 "http://$ST/-/ready" starling "$ST_PID" "$ST_PORT"

# Let every job scrape a few times.
deadline=$((SECONDS + 30))
until python3 "$HERE/query.py" http://$PROM ready st_proto st_both st_text st_prom prom_self; do
	[ $SECONDS -lt $deadline ] || fail "not every job reached Prometheus in 30 s"
	sleep 0.5
done
sleep 2
python3 "$HERE/query.py" http://$PROM compare st_proto prom_self ||
	fail "st_proto (protobuf, native) differs from Prometheus' own scrape"
python3 "$HERE/query.py" http://$PROM compare-classic st_both st_text ||
	fail "classic series from protobuf differ from the OpenMetrics text's"
python3 "$HERE/query.py" http://$PROM compare-classic st_both st_prom ||
	fail "classic series from protobuf differ from the Prometheus text's"
python3 "$HERE/query.py" http://$PROM quantile st_proto || fail "histogram_quantile"
deadline=$((SECONDS + 20))
until python3 "$HERE/query.py" http://$PROM exemplars st_live; do
	[ $SECONDS -lt $deadline ] || fail "exemplars"
	sleep 1
done

# Staleness: the exporter goes away; the native histogram must go stale.
kill $EX_PID && wait $EX_PID 2>/dev/null
EX_PID=
deadline=$((SECONDS + 20))
until python3 "$HERE/query.py" http://$PROM stale st_proto; do
	[ $SECONDS -lt $deadline ] || fail "native histogram not stale 20 s after the exporter stopped"
	sleep 0.5
done
echo "PASS"
