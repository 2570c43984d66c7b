# Concurrency stress: fast producers, repeated reloads (add/remove/change),
# and HTTP readers at the same time, then a graceful stop. The daemon must
# neither crash nor hang (run under ASan/UBSan in CI) and must exit 0.
source "$(dirname "$0")/lib.sh" "$@"
PORT=22040
BASE="http://127.0.0.1:$PORT"

write_cfg() { # write_cfg VARIANT
	{
		echo 'components = ('
		echo "  { type = \"test.producer\"; name = \"p\"; interval = \"2ms\"; series = 20; run = \"v$1\";"
		if [ $(($1 % 2)) = 0 ]; then
			echo '    forward_to = [ "local.file_sink.a", "local.file_sink.b" ]; },'
			echo '  { type = "test.producer"; name = "q"; interval = "2ms"; series = 5;'
			echo '    forward_to = [ "local.file_sink.b" ]; },'
			echo "  { type = \"local.file_sink\"; name = \"b\"; path = \"$WORK/b.om\"; max_size = \"64KiB\"; max_files = 2; flush_interval = \"10ms\"; },"
		else
			echo '    forward_to = [ "local.file_sink.a" ]; },'
		fi
		echo "  { type = \"local.file_sink\"; name = \"a\"; path = \"$WORK/a.om\"; max_size = \"64KiB\"; max_files = 2; flush_interval = \"10ms\"; }"
		echo ');'
	} >"$WORK/starling.cfg"
}

write_cfg 0
start_starling "$PORT" "$WORK/starling.cfg" --log.level warn
wait_ready "$PORT"

# HTTP readers in the background for the whole run.
(
	end=$((SECONDS + 6))
	while [ $SECONDS -lt $end ]; do
		curl -s "$BASE/metrics" >/dev/null
		curl -s "$BASE/api/v0/components" >/dev/null
		curl -s "$BASE/api/v0/components/test.producer.p/targets" >/dev/null
	done
) &
READER=$!
PIDS+=("$READER")

for i in $(seq 1 40); do
	write_cfg "$i"
	if [ $((i % 2)) = 0 ]; then
		kill -HUP "$STARLING_PID"
	else
		curl -s -o /dev/null -X POST "$BASE/-/reload"
	fi
	sleep 0.1
	kill -0 "$STARLING_PID" 2>/dev/null || fail "starling died during reload $i"
done
wait "$READER" || true
curl -sf "$BASE/-/ready" >/dev/null || fail "not ready after the reload storm"
comps=$(curl -sf "$BASE/api/v0/components")
grep -c '"health":"healthy"' <<<"$comps" >/dev/null || fail "no healthy components: $comps"
ls "$WORK"/a.om.1 >/dev/null 2>&1 || fail "file sink did not rotate under load"
[ "$(stat -c %s "$WORK/a.om")" -le 65536 ] || fail "a.om above max_size"
pass "40 reloads under load with HTTP readers"
stop_starling
pass "graceful stop after the storm"
