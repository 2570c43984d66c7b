# Startup refusals, check-config, failing components with back-off, SIGINT.
source "$(dirname "$0")/lib.sh" "$@"
PORT=22030
BASE="http://127.0.0.1:$PORT"

# check-config: unknown setting, wrong type, unknown type -> each with file:line, exit 1.
cat >"$WORK/bad.cfg" <<'CFG'
components = (
  { type = "local.file_sink"; name = "a"; path = "x"; colour = "red"; },
  { type = "local.file_sink"; name = "b"; path = 7; },
  { type = "prometheus.nothing"; name = "c"; }
);
CFG
rc=0
"$STARLING" check-config "$WORK/bad.cfg" --plugins-dir "$PLUGINS" >"$WORK/out" 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "check-config exit $rc, expected 1"
grep -q "bad.cfg:2: components.\[0\].colour: unknown key" "$WORK/out" || fail "unknown key: $(cat "$WORK/out")"
grep -q "bad.cfg:3: components.\[1\].path: expected string, found integer" "$WORK/out" || fail "wrong type"
grep -q 'bad.cfg:4: components.\[2\].type: unknown component type "prometheus.nothing"' "$WORK/out" ||
	fail "unknown type"
pass "check-config reports every error with file:line"

# run refuses the same file.
rc=0
timeout 10 "$STARLING" run --config "$WORK/bad.cfg" --plugins-dir "$PLUGINS" \
	--server.http.listen-addr "127.0.0.1:$PORT" >"$WORK/out" 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "run with a broken config exit $rc, expected 1"
grep -q "bad.cfg:2: components.\[0\].colour: unknown key" "$WORK/out" || fail "run error output"
pass "run refuses a broken config"

# A world-writable plugin is refused with one log line naming the file.
cp "$PRODUCER_SO" "$PLUGINS/zz_writable.so"
chmod 666 "$PLUGINS/zz_writable.so"
"$STARLING" plugins list --plugins-dir "$PLUGINS" >"$WORK/out" 2>&1 || true
grep -q "refusing plugin $PLUGINS/zz_writable.so: file is world-writable" "$WORK/out" ||
	fail "world-writable plugin not refused: $(cat "$WORK/out")"
grep -q "local.file_sink" "$WORK/out" || fail "plugins list lacks local.file_sink"
rm -f "$PLUGINS/zz_writable.so"
"$STARLING" plugins describe local.file_sink --plugins-dir "$PLUGINS" >"$WORK/out"
grep -q 'max_size .*bytes .*optional default="100MiB"' "$WORK/out" || fail "describe: $(cat "$WORK/out")"
pass "plugins list/describe, world-writable refusal"

# A component whose start fails is unhealthy and retried; the host stays up.
cat >"$WORK/starling.cfg" <<CFG
components = (
  { type = "test.producer"; name = "bad"; fail_start = true; forward_to = [ "local.file_sink.out" ]; },
  { type = "test.producer"; name = "good"; interval = "50ms"; forward_to = [ "local.file_sink.out" ]; },
  { type = "local.file_sink"; name = "out"; path = "$WORK/samples.om"; flush_interval = "50ms"; }
);
CFG
start_starling "$PORT" "$WORK/starling.cfg"
wait_ready "$PORT"
curl -sf "$BASE/metrics" | grep 'starling_component_healthy{component_id="test.producer.bad",type="test.producer"} 0' >/dev/null ||
	fail "failing component not unhealthy"
curl -sf "$BASE/api/v0/components" | grep '"id":"test.producer.bad","type":"test.producer","health":"failed"' >/dev/null ||
	fail "failing component not reported failed"
wait_for "a retry with back-off" 10 grep -q 'component="test.producer.bad" msg="retrying (attempt 2)"' "$WORK/starling.log"
wait_for "good producer still delivers" 10 grep -q 'starling_test_value' "$WORK/samples.om"
pass "failing component unhealthy + retried, others run"

# Another instance on the same port fails clearly.
rc=0
timeout 10 "$STARLING" run --config "$WORK/starling.cfg" --plugins-dir "$PLUGINS" \
	--state-dir "$WORK/state2" --server.http.listen-addr "127.0.0.1:$PORT" >"$WORK/out" 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "second instance on a used port exit $rc"
grep -q "cannot listen on 127.0.0.1:$PORT" "$WORK/out" || fail "port-in-use message: $(cat "$WORK/out")"
pass "port in use refused"

# SIGINT stops gracefully with exit 0.
kill -INT "$STARLING_PID"
for i in $(seq 1 120); do kill -0 "$STARLING_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$STARLING_PID" 2>/dev/null && fail "still running after SIGINT"
rc=0
wait "$STARLING_PID" || rc=$?
[ "$rc" = 0 ] || fail "SIGINT exit $rc"
pass "SIGINT exit 0"
