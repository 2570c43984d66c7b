# A plugin that crashes takes the daemon down (plugins are trusted code and
# run in its process), but the last log line says what happened: the
# signal, the plugin file, and the component and callback that were
# running (host/crash.c). Cases: a NULL dereference in create() and in a
# timer callback. Not under AddressSanitizer (its own report replaces ours).
source "$(dirname "$0")/lib.sh" "$@"
PORT=22060
if nm -D "$STARLING" 2>/dev/null | grep -q __asan_init || ldd "$STARLING" | grep -q libasan; then
	echo "SKIP: AddressSanitizer build (its report replaces the fatal-signal line)"
	exit 77
fi

for where in create timer; do
	: >"$WORK/starling.log"
	cat >"$WORK/starling.cfg" <<CFG
components = (
  { type = "test.producer"; name = "boom"; crash = "$where"; interval = "50ms";
    forward_to = [ "local.file_sink.out" ]; },
  { type = "local.file_sink"; name = "out"; path = "$WORK/out.om"; }
);
CFG
	rc=0
	timeout 20 "$STARLING" run --config "$WORK/starling.cfg" --plugins-dir "$PLUGINS" \
		--state-dir "$WORK/state" --server.http.listen-addr "127.0.0.1:$PORT" \
		>>"$WORK/starling.log" 2>&1 || rc=$?
	# killed by SIGSEGV: 128 + 11 (124 would be the timeout)
	[ "$rc" = 139 ] || fail "crash in $where: exit $rc, want 139 (SIGSEGV)"
	last=$(grep -v '^$' "$WORK/starling.log" | tail -n 1)
	echo "last line: $last"
	case "$last" in
	*"level=error component=test.producer.boom msg=\"fatal signal SIGSEGV (fault address 0x0) in plugin "*"/test_producer.so during callback $where of component test.producer.boom;"*) ;;
	*) fail "crash in $where: last log line does not name plugin, component and callback" ;;
	esac
	pass "crash in $where reported: signal, plugin, component, callback"
done
