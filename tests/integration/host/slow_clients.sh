# The HTTP API against hostile clients (issue 14, fault 2 and the reload
# CSRF check), in the test's own network namespace (isolate.sh):
#  1. 128 connections from 127.0.0.1 that trickle one header byte every
#     2 s: another client (127.0.0.2) still gets /-/ready and /metrics at
#     once (the attacker only holds its per-address share of the slots);
#     before, 128 was the whole connection limit and the API was down.
#  2. once the attacker goes away, its own address is served again within a
#     few seconds (no CLOSE-WAIT pile-up), and idle connections are closed
#     after the idle timeout.
#  3. SIGTERM with the slow connections open exits 0 promptly.
#  4. POST /-/reload from a cross-site browser is refused (Origin of another
#     site, Sec-Fetch-Site: cross-site, a form Content-Type) with 403;
#     `curl -X POST` and a JSON POST still reload.
source "$(dirname "$0")/lib.sh" "$@"
PORT=22050
BASE="http://127.0.0.1:$PORT"
command -v python3 >/dev/null || { echo "SKIP: no python3"; exit 77; }

echo 'components = ( { type = "test.producer"; name = "p"; interval = "1s"; run = "a"; forward_to = [ "local.file_sink.out" ]; }, { type = "local.file_sink"; name = "out"; path = "'"$WORK/out.om"'"; } );' \
	>"$WORK/starling.cfg"
start_starling "$PORT" "$WORK/starling.cfg"
wait_ready "$PORT"

# 1. the slow attacker: 128 connections, one byte of a request every 2 s
python3 - "$PORT" "$WORK/attacker.ready" <<'PY' &
import socket, sys, time
port, ready = int(sys.argv[1]), sys.argv[2]
socks = []
for _ in range(128):
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect(("127.0.0.1", port))
        s.send(b"G")
        socks.append(s)
    except OSError:
        s.close()
open(ready, "w").write(str(len(socks)))
req = b"ET /-/ready HTTP/1.1\r\nHost: x\r\n"
for i in range(len(req)):
    time.sleep(2)
    for s in socks:
        try:
            s.send(req[i:i + 1])
        except OSError:
            pass
PY
ATTACKER=$!
PIDS+=("$ATTACKER")
for _ in $(seq 1 100); do [ -s "$WORK/attacker.ready" ] && break; sleep 0.1; done
[ -s "$WORK/attacker.ready" ] || fail "attacker did not start"
t0=$(date +%s%N)
code=$(curl -s -o /dev/null -w '%{http_code}' --interface 127.0.0.2 -m 5 "$BASE/-/ready" || true)
t1=$(date +%s%N)
[ "$code" = 200 ] || fail "/-/ready from another address during the attack: HTTP $code"
curl -sf --interface 127.0.0.2 -m 5 -o /dev/null "$BASE/metrics" ||
	fail "/metrics from another address during the attack"
pass "another client served during 128 slow connections ($(((t1 - t0) / 1000000)) ms; the attacker opened $(cat "$WORK/attacker.ready"))"

# 2. the attacker goes away: its address is served again promptly
kill "$ATTACKER" 2>/dev/null || true
wait "$ATTACKER" 2>/dev/null || true
ok=
for _ in $(seq 1 50); do
	if curl -sf -m 2 -o /dev/null "$BASE/-/ready"; then ok=1; break; fi
	sleep 0.1
done
[ -n "$ok" ] || fail "127.0.0.1 not served within 5 s after the attacker left"
pass "the attacker's address served again at once after it left"

# 4. reload CSRF check
echo 'components = ( { type = "test.producer"; name = "p"; interval = "1s"; run = "b"; forward_to = [ "local.file_sink.out" ]; }, { type = "local.file_sink"; name = "out"; path = "'"$WORK/out.om"'"; } );' \
	>"$WORK/starling.cfg"
refused() { # refused CURL_ARGS...: the reload is answered 403
	local code
	code=$(curl -s -o "$WORK/reply" -w '%{http_code}' -X POST "$@" "$BASE/-/reload" || true)
	[ "$code" = 403 ] || fail "cross-site reload ($*) answered $code: $(cat "$WORK/reply")"
}
refused -H 'Origin: http://evil.example'
refused -H 'Origin: null'
refused -H 'Sec-Fetch-Site: cross-site'
refused -H 'Content-Type: application/x-www-form-urlencoded' -d a=1
refused -H 'Content-Type: multipart/form-data; boundary=x' -d x
refused -H 'Content-Type: text/plain;charset=utf-8' -d x
code=$(curl -s -o "$WORK/reply" -w '%{http_code}' -X POST -H "Origin: $BASE" "$BASE/-/reload")
[ "$code" = 200 ] || fail "same-origin reload answered $code: $(cat "$WORK/reply")"
code=$(curl -s -o "$WORK/reply" -w '%{http_code}' -X POST "$BASE/-/reload")
[ "$code" = 200 ] || fail "curl -X POST reload answered $code: $(cat "$WORK/reply")"
code=$(curl -s -o "$WORK/reply" -w '%{http_code}' -X POST -H 'Content-Type: application/json' -d '{}' "$BASE/-/reload")
[ "$code" = 200 ] || fail "JSON reload answered $code: $(cat "$WORK/reply")"
pass "cross-site reloads refused with 403, curl -X POST and JSON accepted"

# 3. SIGTERM with slow connections open
python3 - "$PORT" <<'PY' &
import socket, sys, time
socks = []
for _ in range(40):
    try:
        s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2)
        s.send(b"GET /")
        socks.append(s)
    except OSError:
        pass
time.sleep(30)
PY
HOLDER=$!
PIDS+=("$HOLDER")
sleep 0.5
t0=$(date +%s)
kill -TERM "$STARLING_PID"
rc=0
wait "$STARLING_PID" || rc=$?
t1=$(date +%s)
[ "$rc" = 0 ] || fail "SIGTERM with slow connections open: exit $rc"
[ $((t1 - t0)) -le 5 ] || fail "SIGTERM took $((t1 - t0)) s with slow connections open"
pass "SIGTERM with slow connections open: exit 0 in $((t1 - t0)) s"
