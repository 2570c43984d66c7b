#!/usr/bin/env bash
# pyroscope.scrape with clustering on two real starling nodes (loopback,
# ports 28000-28999):
#   cluster.sh BUILD_DIR
# Twelve targets, both nodes configured alike, one fake Pyroscope.
# Asserts: the nodes split the targets (each owns some, together all);
# every target's profile arrives once per interval, not twice; when a node
# stops, the other scrapes all twelve and no target goes silent.
set -u
build=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
bad=28202 push=28301 ca=28401 cb=28402 ha=28081 hb=28082
work=$(mktemp -d /tmp/sts-pyro-cl.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	rm -rf "$work"
}
trap cleanup EXIT
fail() {
	echo "FAIL: $*"
	for f in "$work"/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -15 "$f"; }; done
	exit 1
}
wait_http() { # URL SECONDS
	local i
	for ((i = 0; i < $2 * 20; i++)); do
		[ "$(curl -s -o /dev/null -w '%{http_code}' "$1")" = 200 ] && return 0
		sleep 0.05
	done
	return 1
}
wait_true() { # SECONDS COMMAND...
	local i
	for ((i = 0; i < $1 * 4; i++)); do
		"${@:2}" && return 0
		sleep 0.25
	done
	return 1
}
metric() { # PORT NAME
	curl -s "http://127.0.0.1:$1/metrics" |
		awk -v n="$2" 'index($0, n "{") == 1 { s += $NF } END { print s + 0 }'
}
# per-service profile counts received in the last SECONDS: "min max n_services"
counts() {
	python3 - "$work/push" "$1" <<'PY'
import collections, json, os, sys, time
d, win = sys.argv[1], float(sys.argv[2])
now, c = time.time(), collections.Counter()
for f in os.listdir(d):
    if f.endswith(".json"):
        try:
            j = json.load(open(os.path.join(d, f)))
        except ValueError:
            continue
        if now - win <= j["t"] < now:
            c[j["labels"].get("service_name")] += 1
v = [c.get("s%d" % i, 0) for i in range(12)]
print(min(v), max(v), sum(1 for x in v if x))
PY
}

python3 "$here/fake_pyroscope.py" push $push "$work/push" >"$work/fake.log" 2>&1 &
pids+=($!)
python3 "$here/fake_pyroscope.py" badtarget $bad >"$work/bad.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$push/ready" 10 || fail "fake pyroscope did not start"
wait_http "http://127.0.0.1:$bad/ok/debug/pprof/goroutine" 10 || fail "targets did not start"

targets=""
for i in $(seq 0 11); do
	targets+="${targets:+, }{ *address__ = \"127.0.0.1:$bad\"; *profile_path_prefix__ = \"/ok\"; service_name = \"s$i\"; }"
done
node_cfg() { # NAME CLUSTER_PORT HTTP_PORT JOIN
	cat <<CFG
plugins_dir = "$build/plugins";
state_dir = "$work/state-$1";
server = { http_listen_addr = "127.0.0.1:$3"; };
cluster = { enabled = true; node_name = "$1"; bind = "127.0.0.1:$2"; join = [ $4 ];
            profile = "local"; };
components = (
  { type = "pyroscope.scrape"; name = "go";
    targets = ( $targets );
    scrape_interval = "1s";
    profiling_config = { process_cpu = { enabled = false; }; memory = { enabled = false; };
                         mutex = { enabled = false; }; block = { enabled = false; }; };
    clustering = { enabled = true; };
    forward_to = [ "pyroscope.write.pyro" ]; },
  { type = "pyroscope.write"; name = "pyro";
    endpoint = ( { url = "http://127.0.0.1:$push"; } ); }
);
CFG
}
node_cfg node-a $ca $ha "" >"$work/a.cfg"
node_cfg node-b $cb $hb "\"127.0.0.1:$ca\"" >"$work/b.cfg"
"$build/starling" run --config "$work/a.cfg" >"$work/node-a.log" 2>&1 &
pa=$!
pids+=($pa)
wait_http "http://127.0.0.1:$ha/-/ready" 20 || fail "node-a did not start"
"$build/starling" run --config "$work/b.cfg" >"$work/node-b.log" 2>&1 &
pb=$!
pids+=($pb)
wait_http "http://127.0.0.1:$hb/-/ready" 20 || fail "node-b did not start"

split() {
	local a b
	a=$(metric $ha starling_pyroscope_scrape_targets_owned)
	b=$(metric $hb starling_pyroscope_scrape_targets_owned)
	[ "$a" -gt 0 ] && [ "$b" -gt 0 ] && [ $((a + b)) = 12 ]
}
wait_true 20 split || fail "targets not split: node-a $(metric $ha starling_pyroscope_scrape_targets_owned), node-b $(metric $hb starling_pyroscope_scrape_targets_owned)"
echo "owned: node-a $(metric $ha starling_pyroscope_scrape_targets_owned), node-b $(metric $hb starling_pyroscope_scrape_targets_owned)"
sleep 6
read -r lo hi n <<<"$(counts 5)"
echo "two nodes, 5 s at 1 s interval: per-target profiles min $lo max $hi, $n/12 targets"
[ "$n" = 12 ] && [ "$lo" -ge 4 ] && [ "$hi" -le 6 ] || fail "want 4..6 profiles per target in 5 s (no gaps, no doubles)"

t_leave=$(date +%s.%N)
kill -TERM $pb
all_a() { [ "$(metric $ha starling_pyroscope_scrape_targets_owned)" = 12 ]; }
wait_true 20 all_a || fail "node-a did not take over all targets"
sleep 6
read -r lo hi n <<<"$(counts 5)"
echo "after node-b left: per-target profiles min $lo max $hi, $n/12 targets"
[ "$n" = 12 ] && [ "$lo" -ge 4 ] && [ "$hi" -le 6 ] || fail "want 4..6 profiles per target after the hand-over"
# the longest silence of any target around the hand-over
gap=$(python3 - "$work/push" "$t_leave" <<'PY'
import collections, json, os, sys
d, t0 = sys.argv[1], float(sys.argv[2])
ts = collections.defaultdict(list)
for f in os.listdir(d):
    if f.endswith(".json"):
        try:
            j = json.load(open(os.path.join(d, f)))
        except ValueError:
            continue
        if t0 - 3 <= j["t"] <= t0 + 6:
            ts[j["labels"]["service_name"]].append(j["t"])
print("%.2f" % max(max(b - a for a, b in zip(v, v[1:])) for v in map(sorted, ts.values())))
PY
)
echo "longest gap between two profiles of one target across the hand-over: ${gap}s (interval 1s)"
python3 -c "import sys; sys.exit(0 if float('$gap') < 2.5 else 1)" || fail "gap ${gap}s at hand-over"
[ "$(curl -s http://127.0.0.1:$push/stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["bad"])')" = 0 ] ||
	fail "malformed pushes"
kill -TERM $pa
wait $pa $pb 2>/dev/null
grep -E 'AddressSanitizer|LeakSanitizer|runtime error' "$work"/node-*.log && fail "sanitizer report"
echo "PASS"
