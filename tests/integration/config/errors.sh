#!/usr/bin/env bash
# One validation path (issue 9): check-config, start-up and reload refuse the
# same configurations with the same "FILE:LINE: key.path: message" lines,
# because all three run each plugin's own create(). A refused reload leaves
# the running graph alone: samples keep arriving in the file sink and
# starling_config_last_reload_successful is 0 (as Prometheus:
# cmd/prometheus/main.go reloadConfig keeps the old config on any error and
# sets prometheus_config_last_reload_successful to 0).
# Also: natural __ names (and in @include files), "did you mean", unknown
# flags, the self-scrape following --server.http.listen-addr, "N/M targets
# down" in a scraper's message.
# Args: starling file_sink.so test_producer.so plugins_dir
source "$(dirname "$0")/../host/lib.sh" "$1" "$2" "$3"
PLUGINS="$4"
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
PORT=$(free_port)
BASE="http://127.0.0.1:$PORT"
CFG="$WORK/c.cfg"
OUT="$WORK/out.om"

# write_cfg LINE7: a working self-scrape into the file sink; line 7 varies.
write_cfg() {
	cat >"$CFG" <<EOF
state_dir = "$WORK/state";
components = (
  { type = "prometheus.scrape"; name = "s";
    targets = ( { __address__ = "127.0.0.1:$PORT"; } );
    scrape_interval = "1s";
    forward_to = [ "local.file_sink.out" ];
    $1
  },
  { type = "local.file_sink"; name = "out"; path = "$OUT"; flush_interval = "100ms"; }
);
EOF
}

# case NAME LINE7 EXPECTED-ERROR-LINE (without the "$CFG:" prefix)
NAMES=(lookaround paren hashmod timeout)
LINES=(
	'metric_relabel_config = ( { source_labels = ["__name__"]; regex = "(?!go_).*"; action = "keep"; } );'
	'metric_relabel_config = ( { source_labels = ["__name__"]; regex = "a(b"; action = "keep"; } );'
	'metric_relabel_config = ( { source_labels = ["__name__"]; target_label = "h"; action = "hashmod"; } );'
	'scrape_timeout = "5s";'
)
WANT=(
	'7: components.[0].metric_relabel_config: relabel rule 1: regex "(?!go_).*": lookaround is not supported (RE2 syntax)'
	'7: components.[0].metric_relabel_config: relabel rule 1: invalid regex "a(b": missing closing parenthesis'
	'7: components.[0].metric_relabel_config: relabel rule 1: hashmod requires a non-zero modulus'
	'7: components.[0].scrape_timeout: scrape_timeout (5000ms) must be positive and not greater than scrape_interval (1000ms)'
)
# Two more shapes: a target without __address__, a remote-write URL without scheme.
NOADDR_CFG="$WORK/noaddr.cfg"
cat >"$NOADDR_CFG" <<EOF
components = (
  { type = "prometheus.scrape"; name = "s";
    targets = ( { __address__ = "127.0.0.1:1"; },
                { job = "x"; } );
    forward_to = [ "local.file_sink.out" ]; },
  { type = "local.file_sink"; name = "out"; path = "$OUT"; }
);
EOF
NOADDR_WANT="$NOADDR_CFG:4: components.[0].targets.[1]: target 2: target without __address__"
RW_CFG="$WORK/rw.cfg"
cat >"$RW_CFG" <<'EOF'
components = (
  { type = "prometheus.remote_write"; name = "r";
    endpoint = ( { url = "mimir:9009/api/v1/push"; } ); }
);
EOF
RW_WANT="$RW_CFG:3: components.[0].endpoint: endpoint.url: \"mimir:9009/api/v1/push\" has no http:// or https:// scheme"

check_refused() { # check_refused FILE WANT: check-config and run refuse it with WANT, exit 1
	local file="$1" want="$2" rc
	rc=0
	"$STARLING" check-config "$file" --plugins-dir "$PLUGINS" >"$WORK/cc.out" 2>&1 || rc=$?
	[ "$rc" = 1 ] || fail "check-config $file: exit $rc, want 1: $(cat "$WORK/cc.out")"
	grep -qxF -- "$want" "$WORK/cc.out" || fail "check-config $file: want line: $want; got: $(cat "$WORK/cc.out")"
	rc=0
	timeout 20 "$STARLING" run --config "$file" --plugins-dir "$PLUGINS" --state-dir "$WORK/state" \
		--server.http.listen-addr "127.0.0.1:$(free_port)" >"$WORK/run.out" 2>&1 || rc=$?
	[ "$rc" = 1 ] || fail "run $file: exit $rc, want 1: $(cat "$WORK/run.out")"
	grep -qxF -- "$want" "$WORK/run.out" || fail "run $file: want line: $want; got: $(cat "$WORK/run.out")"
}

for i in "${!NAMES[@]}"; do
	write_cfg "${LINES[$i]}"
	cp "$CFG" "$WORK/${NAMES[$i]}.cfg"
	check_refused "$WORK/${NAMES[$i]}.cfg" "$WORK/${NAMES[$i]}.cfg:${WANT[$i]}"
done
check_refused "$NOADDR_CFG" "$NOADDR_WANT"
check_refused "$RW_CFG" "$RW_WANT"
pass "check-config and start-up refuse the six cases with the plugin's words (exit 1)"

# Reload: a running scrape, then each bad file. Refused with 400 and the
# same line; the scrape keeps delivering to the file sink.
write_cfg ''
start_starling "$PORT" "$CFG"
wait_ready "$PORT"
metric() { curl -sf "$BASE/metrics" | grep -v '^#' | grep -F -- "$1" | awk '{print $2}'; }
has_samples() { [ "$(count_lines "$OUT" '^starling_config_reloads_total')" -gt "$1" ]; }
wait_for "first samples in the file sink" 15 has_samples 0
for i in "${!NAMES[@]}"; do
	write_cfg "${LINES[$i]}"
	code=$(curl -s -o "$WORK/reply" -w '%{http_code}' -X POST "$BASE/-/reload")
	[ "$code" = 400 ] || fail "reload (${NAMES[$i]}) answered $code: $(cat "$WORK/reply")"
	grep -qxF -- "$CFG:${WANT[$i]}" "$WORK/reply" || fail "reload reply lacks: $CFG:${WANT[$i]}; got: $(cat "$WORK/reply")"
	[ "$(metric 'starling_config_last_reload_successful ')" = 0 ] || fail "last_reload_successful not 0 after ${NAMES[$i]}"
	# (logfmt escapes the quotes of the message)
	[ "$(grep -cF "reload refused: $CFG:7: components.[0]" "$WORK/starling.log")" = $((i + 1)) ] ||
		fail "refusal of ${NAMES[$i]} not logged"
	n=$(count_lines "$OUT" '^starling_config_reloads_total')
	wait_for "samples keep arriving after the refused reload (${NAMES[$i]})" 10 has_samples "$n"
done
curl -sf "$BASE/api/v0/components" >"$WORK/comp.json"
python3 - "$WORK/comp.json" <<'EOF'
import json, sys
c = {x["id"]: x for x in json.load(open(sys.argv[1]))}
s = c["prometheus.scrape.s"]
assert s["state"] == "running" and s["health"] == "healthy", s
assert c["prometheus.scrape.s"]["total_targets"] == 1, s
EOF
# SIGHUP takes the same path.
write_cfg "${LINES[0]}"
kill -HUP "$STARLING_PID"
# (the same log line again within a minute is folded by the logger; count
# the refusal instead)
sighup_refused() { [ "$(metric 'starling_config_reloads_total{result="failure"}')" = 5 ]; }
wait_for "SIGHUP reload refused and counted" 10 sighup_refused
# A good file is then accepted (and says so).
write_cfg ''
code=$(curl -s -o "$WORK/reply" -w '%{http_code}' -X POST "$BASE/-/reload")
[ "$code" = 200 ] || fail "reload of a good file answered $code: $(cat "$WORK/reply")"
[ "$(metric 'starling_config_last_reload_successful ')" = 1 ] || fail "last_reload_successful not 1"
pass "refused reloads: 400 with the line, metric 0, logged, scrape keeps delivering"

# A scraper whose targets are down says so.
DEAD=$(free_port)
cat >"$CFG" <<EOF
components = (
  { type = "prometheus.scrape"; name = "s";
    targets = ( { __address__ = "127.0.0.1:$PORT"; }, { __address__ = "127.0.0.1:$DEAD"; },
                { *address__ = "127.0.0.1:$DEAD"; __metrics_path__ = "/other"; } );
    scrape_interval = "1s"; scrape_timeout = "500ms";
    forward_to = [ "local.file_sink.out" ]; },
  { type = "local.file_sink"; name = "out"; path = "$OUT"; flush_interval = "100ms"; }
);
EOF
code=$(curl -s -o "$WORK/reply" -w '%{http_code}' -X POST "$BASE/-/reload")
[ "$code" = 200 ] || fail "reload with a dead target answered $code: $(cat "$WORK/reply")"
down_msg() { curl -sf "$BASE/api/v0/components" | grep -F '"message":"2/3 targets down"' >/dev/null; }
wait_for '"2/3 targets down" in the component message' 15 down_msg
# __metrics_path__ written naturally took effect: the own port answers 404
# on /other.
P404() { curl -sf "$BASE/api/v0/components/prometheus.scrape.s/targets" | grep -F '"last_error":"server returned HTTP status 404"' >/dev/null; }
cat >"$CFG" <<EOF
components = (
  { type = "prometheus.scrape"; name = "s";
    targets = ( { __address__ = "127.0.0.1:$PORT"; __metrics_path__ = "/other"; } );
    scrape_interval = "1s"; scrape_timeout = "500ms";
    forward_to = [ "local.file_sink.out" ]; },
  { type = "local.file_sink"; name = "out"; path = "$OUT"; flush_interval = "100ms"; }
);
EOF
[ "$(http_code POST "$BASE/-/reload")" = 200 ] || fail "reload with __metrics_path__ refused"
wait_for "__metrics_path__ = /other scraped (404)" 15 P404
pass "scraper message says 2/3 targets down; natural and *-spelt names both work"
stop_starling

# Natural names in an @include file; its errors point at that file.
mkdir -p "$WORK/conf.d"
cat >"$WORK/conf.d/targets.inc" <<'EOF'
# targets, written as in Prometheus
{ __address__ = "127.0.0.1:9100"; __scheme__ = "http"; __param_module = "x"; },
{ job = "no address here"; }
EOF
cat >"$WORK/main.cfg" <<EOF
components = (
  { type = "prometheus.scrape"; name = "s";
    targets = (
@include "conf.d/targets.inc"
    );
    forward_to = [ "local.file_sink.out" ]; },
  { type = "local.file_sink"; name = "out"; path = "$OUT"; }
);
EOF
rc=0
"$STARLING" check-config "$WORK/main.cfg" --plugins-dir "$PLUGINS" >"$WORK/cc.out" 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "check-config with @include: exit $rc"
grep -qxF "$WORK/conf.d/targets.inc:3: components.[0].targets.[1]: target 2: target without __address__" "$WORK/cc.out" ||
	fail "@include error does not point at the included file: $(cat "$WORK/cc.out")"
sed -i 's/{ job = "no address here"; }/{ __address__ = "127.0.0.1:9101"; }/' "$WORK/conf.d/targets.inc"
"$STARLING" check-config "$WORK/main.cfg" --plugins-dir "$PLUGINS" >"$WORK/cc.out" 2>&1 ||
	fail "natural names in @include refused: $(cat "$WORK/cc.out")"
pass "__ names in @include files; errors at the included file:line"

# Did you mean; unknown flag.
sed 's/scrape_interval = "1s"/scrape_intervall = "1s"/' "$WORK/lookaround.cfg" >"$WORK/typo.cfg"
"$STARLING" check-config "$WORK/typo.cfg" --plugins-dir "$PLUGINS" >"$WORK/cc.out" 2>&1 && fail "typo accepted"
grep -qxF "$WORK/typo.cfg:5: components.[0].scrape_intervall: unknown key (did you mean \"scrape_interval\"?)" "$WORK/cc.out" ||
	fail "no did-you-mean: $(cat "$WORK/cc.out")"
rc=0
"$STARLING" run --server.http.listen-adr 127.0.0.1:1 >"$WORK/flag.out" 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "unknown flag: exit $rc, want 2"
grep -qxF "starling: unknown flag --server.http.listen-adr (did you mean --server.http.listen-addr?)" "$WORK/flag.out" ||
	fail "unknown flag message: $(cat "$WORK/flag.out")"
pass "did you mean for keys and flags; unknown flag exits 2"

# The embedded default's self-scrape follows --server.http.listen-addr.
P2=$(free_port)
"$STARLING" run --plugins-dir "$PLUGINS" --state-dir "$WORK/state2" \
	--server.http.listen-addr "127.0.0.1:$P2" >>"$WORK/starling.log" 2>&1 &
STARLING_PID=$!
PIDS+=("$STARLING_PID")
wait_ready "$P2"
self_up() {
	curl -sf "http://127.0.0.1:$P2/api/v0/components/prometheus.scrape.self/targets" >"$WORK/t.json" &&
		grep -F "\"instance\":\"127.0.0.1:$P2\"" "$WORK/t.json" >/dev/null &&
		grep -F '"health":"up"' "$WORK/t.json" >/dev/null
}
wait_for "default self-scrape of 127.0.0.1:$P2 up" 30 self_up
stop_starling
pass "--server.http.listen-addr moves the default self-scrape target"
