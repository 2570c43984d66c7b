# Reload off the HTTP threads: POST /-/reload hands the reload to the
# runtime's reload thread and waits for it with a bound
# (server.reload_timeout), so a slow reload (here a create() that takes
# 10 s) never blocks /-/ready or /metrics, even with more reload requests
# than the server has HTTP threads (4); requests that arrive together share
# one reload; a request that outlives the bound gets 503 while the reload
# goes on and is counted when it ends. Before the change every HTTP thread
# sat in a reload and /-/ready did not answer.
# (Prometheus also runs reloads on its main loop and has the handler wait:
# prometheus/cmd/prometheus/main.go, reloadReady / web.Handler.reload.)
source "$(dirname "$0")/lib.sh" "$@"
PORT=22070
BASE="http://127.0.0.1:$PORT"
OUT="$WORK/samples.om"

write_cfg() { # write_cfg RUN CREATE_DELAY
	cat >"$WORK/starling.cfg" <<CFG
server = { reload_timeout = "3s"; };
components = (
  { type = "test.producer"; name = "p"; interval = "50ms"; run = "$1"; create_delay = "$2";
    forward_to = [ "local.file_sink.out" ]; },
  { type = "local.file_sink"; name = "out"; path = "$OUT"; flush_interval = "50ms"; }
);
CFG
}
metric() { # metric PATTERN -> value
	curl -sf -m 10 "$BASE/metrics" | grep -v '^#' | grep -F -- "$1" | awk '{print $2}'
}
has_run() { grep -q "run=\"$1\"" "$OUT"; }
successes() { metric 'starling_config_reloads_total{result="success"}'; }

write_cfg a 0ms
start_starling "$PORT" "$WORK/starling.cfg"
wait_ready "$PORT"
wait_for 'run="a" samples' 15 has_run a
[ "$(successes)" = 1 ] || fail "start-up not counted as one successful load"

# 1. A slow reload, asked for by 8 clients at once (more than the 4 HTTP threads).
write_cfg slow 10s
posts=()
for i in 1 2 3 4 5 6 7 8; do
	curl -s -m 60 -o "$WORK/reply$i" -w '%{http_code}' -X POST "$BASE/-/reload" >"$WORK/code$i" &
	posts+=($!)
done
wait_for "the slow reload to start" 20 grep -q 'reloading configuration' "$WORK/starling.log"
t0=$(date +%s%N)
curl -sf -m 5 "$BASE/-/ready" >/dev/null || fail "/-/ready did not answer within 5 s during a slow reload"
curl -sf -m 5 "$BASE/metrics" >"$WORK/metrics" || fail "/metrics did not answer within 5 s during a slow reload"
t1=$(date +%s%N)
grep -q '^starling_config_reloads_total' "$WORK/metrics" || fail "/metrics body incomplete"
# Conclusive only while the reload was still running (create() sleeps 10 s).
[ "$(grep -F 'starling_config_reloads_total{result="success"}' "$WORK/metrics" | awk '{print $2}')" = 1 ] ||
	fail "the reload had already ended when /-/ready and /metrics were asked (machine too slow?)"
has_run slow && fail "slow samples before the slow create() returned"
pass "/-/ready and /metrics answered in $(((t1 - t0) / 1000000)) ms during a slow reload with 8 waiting reload requests"

# 2. Every waiting request gets 503 at the 3 s bound; the reload goes on.
for p in "${posts[@]}"; do wait "$p" || true; done
for i in 1 2 3 4 5 6 7 8; do
	[ "$(cat "$WORK/code$i")" = 503 ] || fail "reload request $i answered $(cat "$WORK/code$i"), want 503: $(cat "$WORK/reply$i")"
	grep -q 'reload still running after 3s' "$WORK/reply$i" || fail "503 body: $(cat "$WORK/reply$i")"
done
pass "8 waiting requests answered 503 at the bound"
wait_for 'run="slow" samples after the reload ends' 40 has_run slow
# Requests made before the run started share it; those made during it get
# one more run: at most 2 reloads for the 8 requests (not 8).
wait_for "the reload counted" 20 bash -c "[ \"\$(curl -sf '$BASE/metrics' | grep -F 'starling_config_reloads_total{result=\"success\"}' | awk '{print \$2}')\" -ge 2 ]"
sleep 0.5
n=$(successes)
[ "$n" -le 3 ] || fail "$((n - 1)) reloads ran for 8 requests made together (not coalesced)"
pass "8 requests made together ran $((n - 1)) reload(s)"

# 3. A fast reload answers with its outcome: 200, then 400 with the errors.
write_cfg b 0ms
code=$(curl -s -m 30 -o "$WORK/reply" -w '%{http_code}' -X POST "$BASE/-/reload")
[ "$code" = 200 ] || fail "fast reload answered $code: $(cat "$WORK/reply")"
grep -q 'configuration reloaded' "$WORK/reply" || fail "200 body: $(cat "$WORK/reply")"
wait_for 'run="b" samples' 15 has_run b
printf 'components = ( { type = "no.such_type"; name = "x"; } );\n' >"$WORK/starling.cfg"
code=$(curl -s -m 30 -o "$WORK/reply" -w '%{http_code}' -X POST "$BASE/-/reload")
[ "$code" = 400 ] || fail "broken reload answered $code: $(cat "$WORK/reply")"
grep -q 'unknown component type "no.such_type"' "$WORK/reply" || fail "400 body: $(cat "$WORK/reply")"
pass "outcome in the answer (200, 400 with the error)"

# 4. SIGHUP takes the same path (nobody waits for it): applied and counted.
write_cfg c 1s
before=$(successes)
kill -HUP "$STARLING_PID"
curl -sf -m 5 "$BASE/-/ready" >/dev/null || fail "/-/ready did not answer after SIGHUP"
wait_for 'run="c" samples' 30 has_run c
wait_for "the SIGHUP reload counted" 20 bash -c "[ \"\$(curl -sf '$BASE/metrics' | grep -F 'starling_config_reloads_total{result=\"success\"}' | awk '{print \$2}')\" -gt $before ]"
stop_starling
pass "SIGHUP reload on the reload thread, clean stop"
