# Shared helpers for the host integration tests (sourced).
# Usage in a test: source lib.sh "$@"  (args: starling file_sink.so test_producer.so)
set -euo pipefail

STARLING="$1"
FILE_SINK_SO="$2"
PRODUCER_SO="$3"
WORK="$(mktemp -d /tmp/starling-host-it.XXXXXX)"
PLUGINS="$WORK/plugins"
mkdir -p "$PLUGINS"
chmod 755 "$WORK" "$PLUGINS"
cp "$FILE_SINK_SO" "$PRODUCER_SO" "$PLUGINS/"
chmod 644 "$PLUGINS"/*.so
PIDS=()

cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		kill -KILL "$p" 2>/dev/null || true
	done
	rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*" >&2
	if [ -f "$WORK/starling.log" ]; then
		echo "--- starling log (tail) ---" >&2
		tail -n 40 "$WORK/starling.log" >&2
	fi
	exit 1
}

pass() { echo "ok: $*"; }

# start_starling PORT CONFIG [extra flags...]: sets STARLING_PID.
start_starling() {
	local port="$1" cfg="$2"
	shift 2
	# Our readiness polling must not be answered by somebody else's daemon.
	if ss -Hltn "sport = :$port" 2>/dev/null | grep . >/dev/null; then
		fail "port 127.0.0.1:$port is already in use by another process"
	fi
	"$STARLING" run --config "$cfg" --plugins-dir "$PLUGINS" --state-dir "$WORK/state" \
		--server.http.listen-addr "127.0.0.1:$port" "$@" >>"$WORK/starling.log" 2>&1 &
	STARLING_PID=$!
	PIDS+=("$STARLING_PID")
}

# wait_ready PORT: poll /-/ready for up to 15 s.
wait_ready() {
	local port="$1" i
	for i in $(seq 1 150); do
		if curl -sf "http://127.0.0.1:$port/-/ready" >/dev/null 2>&1; then
			kill -0 "$STARLING_PID" 2>/dev/null || fail "port $port answered, but our starling exited"
			return 0
		fi
		kill -0 "$STARLING_PID" 2>/dev/null || fail "starling exited before ready"
		sleep 0.1
	done
	fail "not ready on port $port within 15 s"
}

# wait_for DESCRIPTION SECONDS COMMAND...: poll until the command succeeds.
wait_for() {
	local what="$1" secs="$2" i
	shift 2
	for i in $(seq 1 $((secs * 10))); do
		if "$@" >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.1
	done
	fail "timed out after ${secs}s waiting for: $what"
}

# stop_starling: SIGTERM, expect exit 0 within 12 s.
stop_starling() {
	local i rc
	kill -TERM "$STARLING_PID"
	for i in $(seq 1 120); do
		if ! kill -0 "$STARLING_PID" 2>/dev/null; then
			break
		fi
		sleep 0.1
	done
	kill -0 "$STARLING_PID" 2>/dev/null && fail "still running 12 s after SIGTERM"
	rc=0
	wait "$STARLING_PID" || rc=$?
	[ "$rc" = 0 ] || fail "exit status $rc after SIGTERM, expected 0"
}

http_code() { # http_code METHOD URL
	curl -s -o /dev/null -w '%{http_code}' -X "$1" "$2"
}

# Count data lines of the sink file matching a pattern.
count_lines() { # count_lines FILE PATTERN
	if [ -f "$1" ]; then grep -c -- "$2" "$1" || true; else echo 0; fi
}

# Note: never pipe into `grep -q` under pipefail (grep exits early, the
# writer gets SIGPIPE and the pipeline fails); grep >/dev/null reads it all.
