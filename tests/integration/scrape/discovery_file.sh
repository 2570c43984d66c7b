#!/usr/bin/env bash
# discovery.file -> discovery.relabel -> prometheus.scrape on the real daemon:
# a changed file_sd file changes what is scraped without a restart.
#   discovery_file.sh BUILD_DIR
# Asserts:
#  1. the targets API of the scraper lists exactly the file's target (A),
#     relabelled (sdfile label from __meta_filepath), and A is scraped;
#  2. after the file is replaced by one listing B: the scraper lists only B,
#     B is scraped, A's series get staleness markers (Prometheus
#     scrapePool.sync end-of-run staleness), same daemon PID, no re-creation;
#  3. a file without any target empties the scraper.
# Ports: free ones, picked at start.
set -u
build=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
command -v python3 >/dev/null || { echo "SKIP: no python3"; exit 77; }
command -v curl >/dev/null || { echo "SKIP: no curl"; exit 77; }
[ -f "$build/plugins/discovery_file.so" ] || { echo "SKIP: no discovery.file plugin"; exit 77; }

# three distinct free ports: all bound at once (three separate picks could
# be handed the same port twice)
read -r ta tb http <<<"$(python3 -c '
import socket
s = [socket.socket() for _ in range(3)]
for x in s:
    x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in s))')"

for p in $ta $tb; do
	python3 - "$p" >"$work/target-$p.log" 2>&1 <<'PY' &
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"demo_metric{kind=\"x\"} 1\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
	pids+=($!)
done
wait_http "http://127.0.0.1:$ta/metrics" 10 || fail "target A did not start"
wait_http "http://127.0.0.1:$tb/metrics" 10 || fail "target B did not start"

mkdir -p "$work/sd" "$work/state"
sd_write() { # FILE CONTENT: replace atomically, as config management does
	printf '%s\n' "$2" >"$work/sd/.tmp" && mv "$work/sd/.tmp" "$work/sd/$1"
}
sd_write nodes.json "[ { \"targets\": [ \"127.0.0.1:$ta\" ], \"labels\": { \"env\": \"e2e\" } } ]"
cat >"$work/starling.cfg" <<CFG
plugins_dir = "$build/plugins";
state_dir = "$work/state";
server = { http_listen_addr = "127.0.0.1:$http"; };
log = { level = "debug"; };
components = (
  { type = "discovery.file"; name = "sd"; files = [ "$work/sd/*.json" ];
    refresh_interval = "1m"; },
  { type = "discovery.relabel"; name = "r"; targets = ( "discovery.file.sd" );
    rule = ( { source_labels = [ "__meta_filepath" ]; regex = ".*/([^/]+)\\\\.json";
               target_label = "sdfile"; } ); },
  { type = "prometheus.scrape"; name = "s"; targets = ( "discovery.relabel.r" );
    scrape_interval = "1s"; scrape_timeout = "500ms";
    forward_to = [ "local.file_sink.out" ]; },
  { type = "local.file_sink"; name = "out"; path = "$work/samples.om";
    flush_interval = "100ms"; }
);
CFG
"$build/starling" check-config "$work/starling.cfg" --plugins-dir "$build/plugins" \
	>"$work/check.log" 2>&1 || fail "check-config: $(cat "$work/check.log")"
"$build/starling" run --config "$work/starling.cfg" >"$work/starling.log" 2>&1 &
daemon=$!
pids+=($daemon)
wait_http "http://127.0.0.1:$http/-/ready" 20 || fail "starling did not become ready"

targets_api() {
	curl -s "http://127.0.0.1:$http/api/v0/components/prometheus.scrape.s/targets"
}
# wait_for SECONDS DESCRIPTION COMMAND...: poll every 100 ms.
wait_for() {
	local n=$(($1 * 10)) what=$2 i
	shift 2
	for ((i = 0; i < n; i++)); do
		"$@" && return 0
		sleep 0.1
	done
	fail "timed out after ${n}00 ms waiting until $what"
}
lists_only() { # PORT OTHER_PORT: the scraper's targets are PORT, not OTHER
	local j
	j=$(targets_api)
	[[ $j == *"127.0.0.1:$1"* && $j != *"127.0.0.1:$2"* ]]
}
scraped() { # PORT: an up=1 sample of that target reached the sink
	grep -q "^up{.*instance=\"127.0.0.1:$1\".*} 1 " "$work/samples.om" 2>/dev/null
}
stale() { # PORT: a staleness marker for that target's demo_metric
	grep -q "^demo_metric{.*instance=\"127.0.0.1:$1\".*} NaN .* # stale" \
		"$work/samples.om" 2>/dev/null
}
empty_list() {
	local j
	j=$(targets_api)
	[[ $j != *"127.0.0.1:$ta"* && $j != *"127.0.0.1:$tb"* && $j == *"["* ]]
}

# 1. the file's target, relabelled, is scraped
wait_for 20 "the scraper lists A only" lists_only "$ta" "$tb"
targets_api | grep -q '"sdfile":"nodes"' || fail "relabelled label missing: $(targets_api)"
targets_api | grep -q '"env":"e2e"' || fail "group label missing: $(targets_api)"
wait_for 20 "A is scraped" scraped "$ta"
grep -q "sdfile=\"nodes\"" "$work/samples.om" || fail "sdfile label not on the samples"

# 2. the file now lists B: followed without a restart
t0=$(date +%s%N)
sd_write nodes.json "[ { \"targets\": [ \"127.0.0.1:$tb\" ], \"labels\": { \"env\": \"e2e\" } } ]"
wait_for 20 "the scraper lists B only" lists_only "$tb" "$ta"
t1=$(date +%s%N)
wait_for 20 "B is scraped" scraped "$tb"
wait_for 20 "A's series are marked stale" stale "$ta"
kill -0 "$daemon" || fail "the daemon died"
grep -q "re-created" "$work/starling.log" && fail "a component was re-created"
grep -q "targets updated: 0 kept, 1 added, 1 removed" "$work/starling.log" ||
	fail "no in-place update logged"
echo "file change -> scraper target list: $(((t1 - t0) / 1000000)) ms (polled every 100 ms)"

# 3. no targets at all
sd_write nodes.json "[]"
wait_for 20 "the scraper has no targets" empty_list
wait_for 20 "B's series are marked stale" stale "$tb"
echo "PASS"
