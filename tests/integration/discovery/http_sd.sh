# discovery.http against a small HTTP SD server (python3) whose answer the
# test changes. Prometheus' rules (discovery/http/http.go, docs/http_sd.md):
# GET with Accept: application/json and X-Prometheus-Refresh-Interval-Seconds;
# only HTTP 200 + application/json counts; every group gets __meta_url; bad
# answers (500, another content type, bad JSON, a null group) keep the last
# set, count prometheus_sd_http_failures_total and make the component
# unhealthy until the next good answer; [] empties the set. A
# prometheus.scrape naming the component in `targets` follows every set.
. "$(dirname "$0")/../cluster/lib.sh"
: "${STARLING_PLUGINS:?STARLING_PLUGINS must point at the built plugins}"
command -v python3 >/dev/null || { echo "python3 not installed: skipped"; exit 77; }
HERE=$(cd "$(dirname "$0")" && pwd)
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
SD_PORT=$(free_port)
API=127.0.0.1:$(free_port)
answer() { # answer STATUS CONTENT_TYPE BODY
	printf '%s\n%s\n%s' "$1" "$2" "$3" >"$TMP/answer.tmp" && mv "$TMP/answer.tmp" "$TMP/answer"
}
answer 200 "application/json" '[{"targets":["10.0.0.1:9100","10.0.0.2:9100"],"labels":{"env":"prod"}},
 {"targets":["10.0.0.3:9100"],"labels":{"env":"dev","__address__":"ignored"}}]'
python3 "$HERE/http_sd_server.py" "$SD_PORT" "$TMP" >"$TMP/server.log" 2>&1 &
PIDS+=($!)
wait_until 10 curl -sf -o /dev/null "http://127.0.0.1:$SD_PORT/sd" || fail "SD server did not start"

URL="http://127.0.0.1:$SD_PORT/sd"
cat >"$TMP/sd.cfg" <<CFG
plugins_dir = "$STARLING_PLUGINS";
state_dir = "$TMP/sd.state";
server = { http_listen_addr = "$API"; };
components = (
  { type = "discovery.http"; name = "x"; url = "$URL"; refresh_interval = "1500ms";
    http_headers = { X-Test = "yes"; }; },
  { type = "discovery.http"; name = "o"; url = "http://127.0.0.1:$SD_PORT/secure";
    refresh_interval = "1s";
    oauth2 = { client_id = "sd"; client_secret = "sd-secret";
               token_url = "http://127.0.0.1:$SD_PORT/token"; }; },
  { type = "prometheus.scrape"; name = "s"; targets = ( "discovery.http.x" );
    scrape_interval = "1h"; forward_to = [ "local.file_sink.null" ]; },
  { type = "local.file_sink"; name = "null"; path = "$TMP/samples.om"; }
);
CFG
"$STARLING_BIN" run --config "$TMP/sd.cfg" >>"$TMP/sd.log" 2>&1 &
PIDS+=($!)
targets() { python3 "$HERE/sd_probe.py" targets $API discovery.http.x; }
health() { python3 "$HERE/sd_probe.py" health $API discovery.http.x | cut -d' ' -f1; }
failures() {
	curl -sf "http://$API/metrics" |
		awk '/^prometheus_sd_http_failures_total/ && /discovery.http.x/ { print $NF }'
}
has() { [ "$(targets)" = "$1" ]; }

want="__address__=10.0.0.1:9100 __meta_url=$URL env=prod
__address__=10.0.0.2:9100 __meta_url=$URL env=prod
__address__=10.0.0.3:9100 __meta_url=$URL env=dev"
wait_until 10 has "$want" || fail "first set: $(targets)"
python3 - "$TMP/last_request" <<'PY' || fail "request headers: $(cat "$TMP/last_request")"
import json, sys
h = {k.lower(): v for k, v in json.load(open(sys.argv[1]))["headers"].items()}
assert h["accept"] == "application/json", h
assert h["x-prometheus-refresh-interval-seconds"] == "1.5", h
assert h["user-agent"].startswith("Starling/"), h
assert h["x-test"] == "yes", h
PY
# oauth2: the token from /token opens /secure
osecure() { python3 "$HERE/sd_probe.py" targets $API discovery.http.o | grep -c "__meta_url=http://127.0.0.1:$SD_PORT/secure"; }
has_o() { [ "$(osecure)" = 3 ]; }
wait_until 10 has_o || fail "oauth2 component: $(python3 "$HERE/sd_probe.py" health $API discovery.http.o)"
! grep -q "sd-secret" "$TMP/sd.log" || fail "the client secret is in the log"
log "oauth2 (client credentials against the test token server) opens the protected endpoint"
# the set reaches a prometheus.scrape that names the component in `targets`
scrape_has() { [ "$(python3 "$HERE/sd_probe.py" targets $API prometheus.scrape.s)" = "$1" ]; }
wait_until 10 scrape_has "env=dev instance=10.0.0.3:9100 job=prometheus.scrape.s
env=prod instance=10.0.0.1:9100 job=prometheus.scrape.s
env=prod instance=10.0.0.2:9100 job=prometheus.scrape.s" ||
	fail "prometheus.scrape targets: $(python3 "$HERE/sd_probe.py" targets $API prometheus.scrape.s)"
log "first answer: 3 targets, group labels merged (target's own address wins), __meta_url; headers as Prometheus sends them"

# the answer changes
answer 200 "application/json; charset=utf-8" '[{"targets":["10.0.0.9:9100"]}]'
wait_until 10 has "__address__=10.0.0.9:9100 __meta_url=$URL" || fail "changed set: $(targets)"
[ "$(health)" = healthy ] || fail "health: $(health)"
[ "$(failures)" = 0 ] || fail "failures: $(failures)"
wait_until 10 scrape_has "instance=10.0.0.9:9100 job=prometheus.scrape.s" ||
	fail "prometheus.scrape did not follow"
log "changed answer followed (also by prometheus.scrape)"

# bad answers keep the set
good="__address__=10.0.0.9:9100 __meta_url=$URL"
n=0
for bad in "500|application/json|[]" "200|text/plain|[]" "200|application/json|[{\"targets\": [" \
	"200|application/json|[null]" "200|application/json|[{\"targets\":[\"a:1\"],\"extra\":1}]"; do
	IFS='|' read -r st ct body <<<"$bad"
	answer "$st" "$ct" "$body"
	n=$((n + 1))
	more() { [ "$(failures)" -ge "$n" ]; }
	wait_until 10 more || fail "bad answer $bad not counted: $(failures)"
	[ "$(targets)" = "$good" ] || fail "set changed on $bad: $(targets)"
	# counted inside the refresh, the health is set after it returns
	# (sd_refresh.c): waited for, not read right after the count
	unhealthy() { [ "$(health)" = unhealthy ]; }
	wait_until 10 unhealthy || fail "not unhealthy on $bad: $(health)"
done
grep -q 'server returned HTTP status 500' "$TMP/sd.log" || fail "500 not logged"
grep -q 'unsupported content type' "$TMP/sd.log" || fail "content type not logged"
scrape_has "instance=10.0.0.9:9100 job=prometheus.scrape.s" || fail "prometheus.scrape lost its target"
log "500, text/plain, cut JSON, null group, unknown field: set kept, $(failures) failures, unhealthy"

answer 200 "application/json" '[]'
wait_until 10 has "" || fail "empty list: $(targets)"
healthy() { [ "$(health)" = healthy ]; }
wait_until 5 healthy || fail "not healthy after a good answer"
wait_until 10 scrape_has "" || fail "prometheus.scrape kept targets after []"
log "[] empties the set (also in prometheus.scrape); healthy again"
echo PASS
