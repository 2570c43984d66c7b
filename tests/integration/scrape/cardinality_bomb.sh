#!/usr/bin/env bash
# Cardinality bomb (issue 12, bad input): one target of each of two jobs
# suddenly exposes BOMB (1,000,000) series. Job "body" has body_size_limit
# 8MB (the bomb body is ~55 MB), job "samples" has sample_limit 20000 (the
# body fits its 128MB limit, the samples do not). Asserts: both bomb targets
# are down with the limit as the error (Starling's wording: "... body
# exceeds the limit of N bytes", "sample_limit N exceeded"), the peak RSS during the bomb
# stays within BOUND_MB of the RSS before it, and the 18 other targets keep
# their cadence (their own request logs: no gap over 3 intervals, at least
# 80 % of the slots scraped), and RECOVER_SECONDS (60) after the bomb
# targets recovered RSS is within SLACK_MB (12; 64 under ASan, whose
# quarantine keeps freed memory) of the RSS before the bomb.
#   cardinality_bomb.sh BUILD_DIR
set -u
build=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
srv=$build/tests/bench/scrape/bench_targetsrv
[ -x "$srv" ] || { echo "SKIP: build $srv first"; exit 77; }
command -v curl >/dev/null && command -v python3 >/dev/null || { echo "SKIP: no curl/python3"; exit 77; }
. "$here/cluster_lib.sh" bomb
iv=${INTERVAL:-2} bomb=${BOMB:-1000000} bomb_s=${BOMB_SECONDS:-16}
# The bound: the 8MB and ~55 MB bodies and their parse buffers, not the
# 1M-entry series cache an unbounded scrape would build. Under ASan, freed
# bodies sit in its quarantine (kept small here) and shadow memory adds 1/8.
bound=${BOUND_MB:-150}
# After the bomb: the series caches are back to 100 series per target; what
# may remain are reused buffers (HTTP transfer buffers up to 4 MiB are kept
# for the next scrape) and heap fragments.
slack=${SLACK_MB:-12}
if ldd "$build/starling" 2>/dev/null | grep -q libasan; then
	bound=${BOUND_MB:-300}
	slack=${SLACK_MB:-64}
	export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=16"
fi
read -r tbase sink http <<<"$(pick_ports 20 2)"
TARGETSRV_REQUEST_LOG=$work/requests.log "$srv" "$tbase" 20 "$sink" 100 \
	>"$work/targets.out" 2>"$work/targets.log" &
pids+=($!)
for ((i = 0; i < 100; i++)); do grep -qs ready "$work/targets.out" && break; sleep 0.1; done
grep -qs ready "$work/targets.out" || fail "target server did not start"
tl() { for ((i = $1; i < $2; i++)); do printf '{ __address__ = "127.0.0.1:%d"; },' $((tbase + i)); done | sed 's/,$//'; }
cat >"$work/starling.cfg" <<CFG
plugins_dir = "$build/plugins";
state_dir = "$work/state";
server = { http_listen_addr = "127.0.0.1:$http"; };
components = (
  { type = "prometheus.scrape"; name = "body"; targets = ( $(tl 0 10) ); job_name = "body";
    scrape_interval = "${iv}s"; scrape_timeout = "${iv}s"; body_size_limit = "8MB";
    forward_to = [ "prometheus.remote_write.sink" ]; },
  { type = "prometheus.scrape"; name = "samples"; targets = ( $(tl 10 20) ); job_name = "samples";
    scrape_interval = "${iv}s"; scrape_timeout = "${iv}s"; sample_limit = 20000; body_size_limit = "128MB";
    forward_to = [ "prometheus.remote_write.sink" ]; },
  { type = "prometheus.remote_write"; name = "sink";
    endpoint = ( { url = "http://127.0.0.1:$sink/api/v1/write"; } ); }
);
CFG
"$build/starling" run --config "$work/starling.cfg" >"$work/starling.log" 2>&1 &
spid=$!
pids+=($spid)
rss() { awk '/^VmRSS/ {print $2}' "/proc/$spid/status"; }
now() { date +%s.%N; }
# sample RSS every 0.5 s for SECONDS, print the maximum (kB)
rss_max() {
	local m=0 r i
	for ((i = 0; i < $1 * 2; i++)); do
		kill -0 "$spid" 2>/dev/null || fail "starling exited"
		r=$(rss)
		[ "$r" -gt "$m" ] && m=$r
		sleep 0.5
	done
	echo "$m"
}
for ((i = 0; i < 300; i++)); do
	curl -sf "http://127.0.0.1:$http/-/ready" >/dev/null && break
	sleep 0.1
done
sleep $((3 * iv)) # every target scraped a few times: caches at their size
base=$(rss_max $((3 * iv)))
# the bomb body is built before the call returns (not inside a scrape)
curl -sf -m 60 "http://127.0.0.1:$sink/bomb?target=0&series=$bomb" >/dev/null || fail "cannot arm the bomb"
curl -sf -m 60 "http://127.0.0.1:$sink/bomb?target=10&series=$bomb" >/dev/null || fail "cannot arm the bomb"
tb0=$(now)
peak=$(rss_max "$bomb_s")
# what the two bomb targets report while still bombing
api() { curl -s "http://127.0.0.1:$http/api/v0/components/prometheus.scrape.$1/targets"; }
err_of() { # err_of COMPONENT PORT: last_error of that target
	api "$1" | python3 -c '
import json, sys
for t in json.load(sys.stdin)["targets"]:
    if t["labels"]["instance"].endswith(":" + sys.argv[1]):
        print(t["health"], t["last_error"])' "$2"
}
ebody=$(err_of body $tbase)
esamp=$(err_of samples $((tbase + 10)))
curl -sf "http://127.0.0.1:$sink/bomb?target=0&series=0" >/dev/null
curl -sf "http://127.0.0.1:$sink/bomb?target=10&series=0" >/dev/null
tb1=$(now)
echo "bomb target of job body:    $ebody"
echo "bomb target of job samples: $esamp"
echo "RSS before the bomb $((base / 1024)) MB, peak during ${bomb_s}s of bomb $((peak / 1024)) MB (+$(((peak - base) / 1024)) MB, bound $bound MB)"
# recovery: RSS sampled every 5 s for RECOVER_SECONDS (60) after the bomb
# targets went back to normal; the last sample must be within the slack of
# the baseline (bomb buffers unmapped, the bomb series evicted and their
# tables shrunk, free heap pages trimmed: sdk/lib/scrape_cache.c,
# host/mem_tune.c)
trace=""
for ((i = 5; i <= ${RECOVER_SECONDS:-60}; i += 5)); do
	sleep "$(awk -v a="$tb1" -v b="$(now)" -v i="$i" 'BEGIN { x = a + i - b; print (x > 0 ? x : 0) }')"
	kill -0 "$spid" 2>/dev/null || fail "starling exited"
	after=$(rss)
	trace="$trace ${i}s:$((after / 1024))"
done
echo "RSS after the target recovered (MB):$trace (baseline $((base / 1024)) MB, slack $slack MB)"
kill -0 "$spid" 2>/dev/null || fail "starling exited"
case $ebody in down*"body exceeds the limit"*) ;; *) fail "job body's bomb target: want down with the body size limit, got: $ebody" ;; esac
case $esamp in down*"sample_limit"*) ;; *) fail "job samples' bomb target: want down with sample_limit, got: $esamp" ;; esac
[ $((peak - base)) -le $((bound * 1024)) ] || fail "RSS grew by $(((peak - base) / 1024)) MB under the bomb (bound $bound MB)"
[ $((after - base)) -le $((slack * 1024)) ] || fail "RSS $((after / 1024)) MB ${RECOVER_SECONDS:-60}s after the bomb ended, baseline $((base / 1024)) MB (slack $slack MB)"
# the other targets' cadence during the bomb, from their request logs
python3 - "$work/requests.log" "$tb0" "$tb1" "$iv" "$tbase" <<'PY' || fail "other targets lost their cadence"
import sys
log, t0, t1, iv, base = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
ts = {}
for line in open(log):
    p, t = line.split()
    ts.setdefault(int(p), []).append(float(t))
bad, worst, low = [], 0.0, 1.0
for p in range(base, base + 20):
    if p in (base, base + 10):
        continue
    v = sorted(x for x in ts.get(p, []) if t0 - iv <= x <= t1 + iv)
    gaps = [b - a for a, b in zip(v, v[1:])]
    inside = [x for x in v if t0 <= x <= t1]
    share = len(inside) / ((t1 - t0) / iv)
    worst = max([worst] + gaps)
    low = min(low, share)
    if not gaps or max(gaps) > 3 * iv or share < 0.8:
        bad.append((p, max(gaps or [0]), share))
print("other 18 targets during the bomb: longest gap %.2f s (interval %.0f s), lowest share of slots scraped %.2f" % (worst, iv, low))
if bad:
    print("targets off cadence:", bad)
    sys.exit(1)
PY
echo PASS
