# Reload: a changed config applies by difference (POST /-/reload and SIGHUP);
# a broken config is refused while the old graph keeps running.
source "$(dirname "$0")/lib.sh" "$@"
PORT=22020
BASE="http://127.0.0.1:$PORT"
OUT="$WORK/samples.om"

write_cfg() { # write_cfg RUN_P [with_q]
	{
		echo 'components = ('
		echo "  { type = \"test.producer\"; name = \"p\"; interval = \"50ms\"; run = \"$1\";"
		echo '    forward_to = [ "local.file_sink.out" ]; },'
		if [ "${2:-}" = q ]; then
			echo '  { type = "test.producer"; name = "q"; interval = "50ms"; run = "q";'
			echo '    forward_to = [ "local.file_sink.out" ]; },'
		fi
		echo "  { type = \"local.file_sink\"; name = \"out\"; path = \"$OUT\"; flush_interval = \"50ms\"; }"
		echo ');'
	} >"$WORK/starling.cfg"
}

has_run() { # has_run RUN: a line with run="RUN" is in the file
	grep -q "run=\"$1\"" "$OUT"
}

components() { curl -sf "$BASE/api/v0/components"; }
metric() { # metric PATTERN -> value
	curl -sf "$BASE/metrics" | grep -v '^#' | grep -F -- "$1" | awk '{print $2}'
}

# 0. Only the sink at start: the producer's plugin is unloaded (run keeps
# only the plugins its configuration uses) and a reload naming its type
# loads it again.
echo "components = ( { type = \"local.file_sink\"; name = \"out\"; path = \"$OUT\"; flush_interval = \"50ms\"; } );" >"$WORK/starling.cfg"
start_starling "$PORT" "$WORK/starling.cfg" --log.level debug
wait_ready "$PORT"
grep -q "unloaded plugin .*test_producer" "$WORK/starling.log" || fail "unused producer plugin not unloaded"
grep -q test_producer "/proc/$STARLING_PID/maps" && fail "producer plugin still mapped"
write_cfg a
code=$(curl -s -o "$WORK/reply" -w '%{http_code}' -X POST "$BASE/-/reload")
[ "$code" = 200 ] || fail "reload naming the unloaded type answered $code: $(cat "$WORK/reply")"
wait_for 'run="a" samples' 10 has_run a
grep -q "loaded plugin .*test_producer.* again" "$WORK/starling.log" || fail "producer plugin not loaded again"
pass "initial graph (producer plugin loaded again by a reload)"

# 1. Changed p, added q, unchanged sink.
write_cfg b q
code=$(curl -s -o "$WORK/reply" -w '%{http_code}' -X POST "$BASE/-/reload")
[ "$code" = 200 ] || fail "reload of a valid file answered $code: $(cat "$WORK/reply")"
wait_for 'run="b" samples' 10 has_run b
wait_for 'run="q" samples' 10 has_run q
components | grep '"id":"test.producer.q"' >/dev/null || fail "q not listed after reload"
[ "$(metric 'starling_component_callback_calls_total{component_id="local.file_sink.out",callback="create"}')" = 1 ] ||
	fail "unchanged sink was re-created"
[ "$(metric 'starling_component_callback_calls_total{component_id="test.producer.p",callback="create"}')" = 2 ] ||
	fail "changed producer p was not re-created (it has no update())"
pass "changed config applied by difference"

# 2. Broken file: refused with file:line errors, old graph keeps running.
cat >"$WORK/starling.cfg" <<'CFG'
components = (
  { type = "test.producer"; name = "p"; colour = "red"; forward_to = [ "local.file_sink.out" ]; },
  { type = "no.such_type"; name = "x"; }
);
CFG
code=$(curl -s -o "$WORK/reply" -w '%{http_code}' -X POST "$BASE/-/reload")
[ "$code" = 400 ] || fail "reload of a broken file answered $code"
grep -q "starling.cfg:2: components.\[0\].colour: unknown key" "$WORK/reply" ||
	fail "reload reply lacks the file:line error: $(cat "$WORK/reply")"
grep -q 'starling.cfg:3: components.\[1\].type: unknown component type "no.such_type"' "$WORK/reply" ||
	fail "reload reply lacks the unknown type error"
grep -q 'reload refused' "$WORK/starling.log" || fail "refusal not logged"
[ "$(metric 'starling_config_last_reload_successful ')" = 0 ] || fail "last_reload_successful not 0"
[ "$(metric 'starling_config_reloads_total{result="failure"}')" = 1 ] || fail "failure not counted"
before=$(grep -c 'run="q"' "$OUT")
wait_for "q keeps producing after the refused reload" 10 \
	bash -c "[ \$(grep -c 'run=\"q\"' '$OUT') -gt $before ]"
[ "$(components | grep -o '"id"' | wc -l)" = 3 ] || fail "graph changed after refused reload"
curl -sf "$BASE/-/ready" >/dev/null || fail "not ready after refused reload"
pass "broken config refused, old graph kept"

# 3. SIGHUP with q removed.
write_cfg b
kill -HUP "$STARLING_PID"
wait_for "q removed" 10 bash -c "! curl -sf '$BASE/api/v0/components' | grep -q test.producer.q"
sleep 0.3
before=$(grep -c 'run="q"' "$OUT")
sleep 0.5
after=$(grep -c 'run="q"' "$OUT")
[ "$before" = "$after" ] || fail "removed producer still writes ($before -> $after)"
[ "$(metric 'starling_config_last_reload_successful ')" = 1 ] || fail "last_reload_successful not 1"
[ "$(metric 'starling_config_reloads_total{result="success"}')" = 4 ] || fail "successes not counted"
pass "SIGHUP reload removed q"

stop_starling
pass "SIGTERM exit 0"
