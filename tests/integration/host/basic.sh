# starling run with a producer -> file sink graph: readiness, /metrics,
# /api/v0/components, targets/owner APIs, error statuses, and what the file
# sink wrote.
source "$(dirname "$0")/lib.sh" "$@"
PORT=22010
BASE="http://127.0.0.1:$PORT"

cat >"$WORK/starling.cfg" <<CFG
log = { level = "debug"; };
components = (
  { type = "test.producer"; name = "p"; interval = "50ms"; series = 3; run = "basic";
    forward_to = [ "local.file_sink.out" ]; },
  { type = "local.file_sink"; name = "out"; path = "$WORK/samples.om"; flush_interval = "100ms"; }
);
CFG

"$STARLING" check-config "$WORK/starling.cfg" --plugins-dir "$PLUGINS" >/dev/null ||
	fail "check-config rejected a valid file"
start_starling "$PORT" "$WORK/starling.cfg"
wait_ready "$PORT"
pass "ready"

# The sink receives what the producer forwards.
wait_for "3 series in the sink file" 10 \
	bash -c "[ \$(grep -c '^starling_test_value{run=\"basic\",series=\"2\"} ' '$WORK/samples.om') -ge 3 ]"
grep -Eq '^starling_test_value\{run="basic",series="0"\} [0-9]+ [0-9]{13}$' "$WORK/samples.om" ||
	fail "sample line format"
grep -Eq '^starling_test_gone\{run="basic"\} NaN [0-9]{13} # stale$' "$WORK/samples.om" ||
	fail "staleness marker line"
pass "file sink wrote samples and the staleness marker"

metrics=$(curl -sf "$BASE/metrics") || fail "GET /metrics"
for want in 'process_resident_memory_bytes [1-9]' 'process_cpu_seconds_total ' \
	'process_open_fds [0-9]' 'process_start_time_seconds [0-9]' \
	'starling_build_info{version=' \
	'starling_component_healthy{component_id="test.producer.p",type="test.producer"} 1' \
	'starling_component_healthy{component_id="local.file_sink.out",type="local.file_sink"} 1' \
	'starling_component_callback_calls_total{component_id="local.file_sink.out",callback="receive_series"} [1-9]' \
	'starling_test_batches_forwarded_total{component_id="test.producer.p",kind="series"} [1-9]' \
	'starling_file_sink_samples_written_total{component_id="local.file_sink.out"} [1-9]'; do
	grep -q -- "$want" <<<"$metrics" || fail "/metrics lacks: $want"
done
if command -v promtool >/dev/null; then
	promtool check metrics <<<"$metrics" || fail "promtool rejects /metrics"
fi
pass "/metrics"

comps=$(curl -sf "$BASE/api/v0/components") || fail "GET /api/v0/components"
python3 - "$comps" <<'PY' || fail "components JSON: $comps"
import json, sys
c = {x["id"]: x for x in json.loads(sys.argv[1])}
assert set(c) == {"test.producer.p", "local.file_sink.out"}, c
assert c["test.producer.p"]["health"] == "healthy"
assert c["local.file_sink.out"]["health"] == "healthy"
assert c["test.producer.p"]["forward_to"] == ["local.file_sink.out"]
assert c["local.file_sink.out"]["type"] == "local.file_sink"
PY
pass "/api/v0/components"

own=$(curl -sf "$BASE/api/v0/cluster/owner?key=0x10") || fail "owner by key"
grep -q '"owners":\["' <<<"$own" || fail "owner response: $own"
own=$(curl -sfG "$BASE/api/v0/cluster/owner" --data-urlencode 'labels={"job":"node","instance":"a:9100"}') ||
	fail "owner by labels"
grep -q '"key":"0x' <<<"$own" || fail "owner by labels response: $own"
pass "cluster owner API"

[ "$(http_code GET "$BASE/nope")" = 404 ] || fail "unknown path not 404"
[ "$(http_code DELETE "$BASE/metrics")" = 405 ] || fail "DELETE /metrics not 405"
[ "$(http_code GET "$BASE/-/reload")" = 405 ] || fail "GET /-/reload not 405"
[ "$(http_code GET "$BASE/api/v0/cluster/owner?key=zz")" = 400 ] || fail "bad key not 400"
[ "$(http_code GET "$BASE/api/v0/cluster/owner?labels=%7Bx")" = 400 ] || fail "bad labels not 400"
[ "$(http_code GET "$BASE/api/v0/components/none.x/targets")" = 404 ] || fail "unknown component not 404"
[ "$(http_code GET "$BASE/api/v0/components/test.producer.p/targets")" = 200 ] || fail "targets of a producer"
[ "$(http_code GET "$BASE/api/v0/cluster/owner?key=18446744073709551616")" = 400 ] || fail "key overflow not 400"
[ "$(http_code GET "$BASE/api/v0/cluster/owner?key=-1")" = 400 ] || fail "negative key not 400"
[ "$(http_code GET "$BASE/api/v0/cluster/owner")" = 400 ] || fail "missing key not 400"
[ "$(http_code GET "$BASE/api/v0/cluster/owner?key=1&replicas=0")" = 400 ] || fail "replicas=0 not 400"
[ "$(http_code GET "$BASE/api/v0/cluster/owner?key=1&replicas=17")" = 400 ] || fail "replicas=17 not 400"
[ "$(http_code GET "$BASE/api/v0/cluster/owner?labels=%5B1%5D")" = 400 ] || fail "labels array not 400"
[ "$(http_code GET "$BASE/api/v0/cluster/owner?labels=%7B%22a%22%3A1%7D")" = 400 ] || fail "non-string label not 400"
[ "$(http_code GET "$BASE/api/v0/cluster/owner?key=18446744073709551615&replicas=3")" = 200 ] || fail "max key"
# Garbage on the socket and an oversized header must not hurt the daemon.
exec 3<>"/dev/tcp/127.0.0.1/$PORT"
printf 'GARBAGE \x01\x02\xff\r\n\r\n' >&3
timeout 5 cat <&3 >/dev/null || true
exec 3<&-
curl -s -o /dev/null -H "X-Big: $(head -c 20000 /dev/zero | tr '\0' a)" "$BASE/metrics" || true
head -c 200000 /dev/zero | curl -s -o /dev/null -X POST --data-binary @- "$BASE/-/healthy" || true
[ "$(http_code GET "$BASE/-/healthy")" = 200 ] || fail "daemon unhealthy after bad requests"
[ "$(http_code GET "$BASE/")" = 200 ] || fail "UI not 200"
curl -sf "$BASE/" | grep '/api/v0/components' >/dev/null || fail "UI page does not use the components API"
[ "$(http_code GET "$BASE/-/healthy")" = 200 ] || fail "healthy not 200"
pass "HTTP status codes"

stop_starling
grep -q 'msg="stopped"' "$WORK/starling.log" || fail "no graceful stop logged"
pass "SIGTERM exit 0"
