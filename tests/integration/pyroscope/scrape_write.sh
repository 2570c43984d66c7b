#!/usr/bin/env bash
# pyroscope.scrape -> pyroscope.write end to end, real processes on loopback
# (ports 28000-28999):
#   scrape_write.sh BUILD_DIR
# Targets: a real Prometheus 2.42 (Go net/http/pprof) and node_exporter, and
# a server of broken targets (500, HTML, octet-stream garbage) next to a
# healthy one. Sink: a fake Pyroscope push endpoint that accepts only the
# request shape the real push.v1.PusherService/Push accepts and stores each
# raw profile.
# Asserts: all five profile types of Prometheus arrive with the right labels
# and `go tool pprof` reads them (CPU has cpu/nanoseconds, memory has
# inuse_space, ...); broken targets are counted as failures while the others
# keep flowing; 503, 503 -> retried and delivered; 400 -> dropped and counted.
set -u
build=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
prom=28090 ne=28100 bad=28201 push=28300 http=28080

command -v prometheus >/dev/null || { echo "SKIP: no prometheus"; exit 77; }
command -v go >/dev/null || { echo "SKIP: no go"; exit 77; }

work=$(mktemp -d /tmp/sts-pyro.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	rm -rf "$work"
}
trap cleanup EXIT
export HOME="$work/home" PPROF_TMPDIR="$work/pprof" GOCACHE="$work/gocache" GOFLAGS=-mod=mod
mkdir -p "$HOME" "$PPROF_TMPDIR"

fail() {
	echo "FAIL: $*"
	for f in "$work"/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -20 "$f"; }; done
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

stat() { # NAME: a counter of the fake push server
	curl -s "http://127.0.0.1:$push/stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"
}

metric() { # NAME LABEL-SUBSTRING: sum of starling self-metric samples
	curl -s "http://127.0.0.1:$http/metrics" |
		awk -v n="$1" -v l="$2" 'index($0, n "{") == 1 && index($0, l) { s += $NF } END { print s + 0 }'
}

wait_true() { # SECONDS COMMAND...: poll every 250 ms
	local i n=$(($1 * 4))
	shift
	for ((i = 0; i < n; i++)); do
		"$@" && return 0
		sleep 0.25
	done
	return 1
}

# profiles LABEL=VALUE...: files whose labels contain all the pairs
profiles() {
	python3 - "$work/push" "$@" <<'PY'
import json, os, sys
d, want = sys.argv[1], dict(a.split("=", 1) for a in sys.argv[2:])
for f in sorted(os.listdir(d)):
    if f.endswith(".json"):
        try:
            l = json.load(open(os.path.join(d, f)))["labels"]
        except ValueError:
            continue
        if all(l.get(k) == v for k, v in want.items()):
            print(os.path.join(d, f[:-5] + ".pprof"))
PY
}
have() { [ -n "$(profiles "$@")" ]; }

mkdir -p "$work/prom"
printf 'global: { scrape_interval: 15s }\n' >"$work/prom/prom.yml"
prometheus --config.file="$work/prom/prom.yml" --storage.tsdb.path="$work/prom/data" \
	--web.listen-address=127.0.0.1:$prom >"$work/prometheus.log" 2>&1 &
pids+=($!)
if command -v prometheus-node-exporter >/dev/null; then
	prometheus-node-exporter --web.listen-address=127.0.0.1:$ne --no-collector.systemd \
		>"$work/node_exporter.log" 2>&1 &
	pids+=($!)
fi
python3 "$here/fake_pyroscope.py" push $push "$work/push" >"$work/fake.log" 2>&1 &
pids+=($!)
python3 "$here/fake_pyroscope.py" badtarget $bad >"$work/bad.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$prom/-/ready" 20 || fail "prometheus did not start"
wait_http "http://127.0.0.1:$push/ready" 10 || fail "fake pyroscope did not start"
wait_http "http://127.0.0.1:$bad/ok/debug/pprof/goroutine" 10 || fail "bad targets did not start"

badt() { echo "{ *address__ = \"127.0.0.1:$bad\"; *profile_path_prefix__ = \"/$1\"; service_name = \"bad-$1\"; }"; }
cat >"$work/starling.cfg" <<CFG
plugins_dir = "$build/plugins";
state_dir = "$work/state";
server = { http_listen_addr = "127.0.0.1:$http"; };
components = (
  { type = "pyroscope.scrape"; name = "go";
    targets = ( { *address__ = "127.0.0.1:$prom"; service_name = "prometheus"; env = "test"; },
                { *address__ = "127.0.0.1:$ne"; } );
    scrape_interval = "3s";
    forward_to = [ "pyroscope.write.pyro" ]; },
  { type = "pyroscope.scrape"; name = "delta";
    targets = ( { *address__ = "127.0.0.1:$prom"; service_name = "delta-prom"; } );
    scrape_interval = "3s";
    profiling_config = { process_cpu = { enabled = false; }; memory = { enabled = false; };
                         goroutine = { enabled = false; }; mutex = { enabled = false; };
                         block = { enabled = false; };
                         godeltaprof_memory = { enabled = true; path = "/debug/pprof/heap"; }; };
    forward_to = [ "pyroscope.write.pyro" ]; },
  { type = "pyroscope.scrape"; name = "bad";
    targets = ( $(badt ok), $(badt e500), $(badt garbage), $(badt octet-garbage) );
    scrape_interval = "2s";
    profiling_config = { process_cpu = { enabled = false; }; memory = { enabled = false; };
                         mutex = { enabled = false; }; block = { enabled = false; }; };
    forward_to = [ "pyroscope.write.pyro" ]; },
  { type = "pyroscope.write"; name = "pyro";
    external_labels = { cluster = "it"; };
    endpoint = ( { url = "http://127.0.0.1:$push"; min_backoff_period = "200ms";
                   max_backoff_period = "1s"; max_backoff_retries = 5;
                   headers = { X-Scope-OrgID = "tenant-1"; }; } ); }
);
CFG
"$build/starling" check-config "$work/starling.cfg" --plugins-dir "$build/plugins" \
	>"$work/check.log" 2>&1 || fail "check-config: $(cat "$work/check.log")"
"$build/starling" run --config "$work/starling.cfg" >"$work/starling.log" 2>&1 &
st_pid=$!
pids+=($st_pid)
wait_http "http://127.0.0.1:$http/-/ready" 20 || fail "starling did not start"

# --- every profile type of Prometheus arrives, go tool pprof reads it ------
for t in process_cpu memory goroutine mutex block; do
	wait_true 20 have service_name=prometheus __name__=$t ||
		fail "no $t profile of prometheus"
done
f=$(profiles service_name=prometheus __name__=process_cpu | head -1)
python3 - "$f" "$prom" <<'PY' || fail "labels of $f"
import json, sys
l = json.load(open(sys.argv[1][:-6] + ".json"))["labels"]
want = {"__name__": "process_cpu", "service_name": "prometheus", "env": "test",
        "job": "pyroscope.scrape.go", "instance": "127.0.0.1:" + sys.argv[2], "cluster": "it",
        "otel.scope.name": "com.grafana.alloy/pyroscope.scrape"}
bad = {k: (l.get(k), v) for k, v in want.items() if l.get(k) != v}
extra = [k for k in l if k.startswith("__") and k != "__name__"]
if bad or extra:
    sys.exit("labels %s: wrong %s, extra %s" % (l, bad, extra))
PY
# --- a godeltaprof profile arrives under the standard name, as Alloy sends it
# (scrape/target.go NewTarget), without __delta__ (the server side made the
# delta). Prometheus serves no godeltaprof endpoint, so its heap profile
# stands in through the type's path.
wait_true 20 have service_name=delta-prom __name__=memory ||
	fail "no godeltaprof_memory profile sent as memory"
f=$(profiles service_name=delta-prom | head -1)
python3 - "$f" <<'PY' || fail "labels of the godeltaprof profile $f"
import json, sys
l = json.load(open(sys.argv[1][:-6] + ".json"))["labels"]
if l.get("__name__") != "memory" or "__delta__" in l or \
        l.get("otel.scope.name") != "com.grafana.alloy/pyroscope.scrape" or \
        not l.get("otel.scope.version", "").startswith("v"):
    sys.exit("labels %s" % l)
PY
[ -z "$(profiles service_name=delta-prom __name__=godeltaprof_memory)" ] ||
	fail "a profile was sent as godeltaprof_memory"

check_type() { # NAME SAMPLE_TYPE_REGEX
	local f out
	f=$(profiles service_name=prometheus __name__=$1 | tail -1)
	out=$(go tool pprof -raw "$f" 2>&1) || fail "go tool pprof -raw $1: $out"
	echo "$out" | grep -A2 '^Samples:' | grep -qE "$2" ||
		fail "$1: sample types $(echo "$out" | grep -A1 '^Samples:' | tr '\n' ' '), want $2"
	echo "$1: $(echo "$out" | grep -A1 "^Samples:" | tail -1)"
}
check_type process_cpu 'cpu/nanoseconds'
check_type memory 'alloc_space/bytes.*inuse_space/bytes|inuse_space/bytes'
check_type goroutine 'goroutine/count'
check_type mutex 'contentions/count.*delay/nanoseconds'
check_type block 'contentions/count.*delay/nanoseconds'
# memory/mutex/block are sent as deltas (Alloy): labelled __delta__="false",
# and the allocations of one interval are far below the process' total
have service_name=prometheus __name__=memory __delta__=false || fail "memory profile without __delta__=false"
have service_name=prometheus __name__=goroutine __delta__=false && fail "goroutine marked as delta"
alloc_sum() { # FILE: total alloc_space of a profile
	go tool pprof -raw "$1" 2>/dev/null | awk '/^ +[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+:/ { s += $2 } END { print s + 0 }'
}
curl -s -o "$work/allocs.pb.gz" "http://127.0.0.1:$prom/debug/pprof/allocs"
d=$(alloc_sum "$(profiles service_name=prometheus __name__=memory | tail -1)")
c=$(alloc_sum "$work/allocs.pb.gz")
echo "alloc_space: delta profile $d bytes, cumulative $c bytes"
[ "$c" -gt 0 ] && [ "$d" -lt "$c" ] || fail "memory delta $d not below the cumulative $c"

out=$(go tool pprof -top "$(profiles service_name=prometheus __name__=process_cpu | tail -1)" 2>&1)
echo "$out" | grep -q '^Type: cpu' || fail "pprof -top CPU: $out"
if [ -f "$work/node_exporter.log" ]; then
	wait_true 10 have service_name=unspecified instance=127.0.0.1:$ne __name__=goroutine ||
		fail "node_exporter profiles (service_name unspecified)"
fi

curl -s "http://127.0.0.1:$http/api/v0/components/pyroscope.scrape.go/targets" >"$work/targets.json"
python3 - "$work/targets.json" "$prom" <<'PY' || fail "targets API: $(head -c 600 "$work/targets.json")"
import json, sys
d = json.load(open(sys.argv[1]))
ts = d["targets"] if isinstance(d, dict) else d
def lab(t):
    l = t["labels"]
    return l if isinstance(l, dict) else {x["name"]: x["value"] for x in l}
mine = [t for t in ts if lab(t).get("service_name") == "prometheus"]
names = sorted(lab(t)["__name__"] for t in mine)
assert names == ["block", "goroutine", "memory", "mutex", "process_cpu"], names
assert all(str(t.get("health")).lower() == "up" for t in mine), [t.get("health") for t in mine]
assert len(ts) == 10, len(ts)
PY

# --- broken targets fail alone -------------------------------------------------
wait_true 10 have service_name=bad-ok __name__=goroutine || fail "healthy target next to broken ones"
for t in e500 garbage octet-garbage; do
	have service_name=bad-$t && fail "a profile of broken target $t was forwarded"
done
fails() { [ "$(metric starling_pyroscope_scrape_failures_total pyroscope.scrape.bad)" -ge 3 ]; }
wait_true 10 fails || fail "failed scrapes not counted"
grep -q 'e500/debug/pprof/goroutine failed: server returned HTTP status 500' "$work/starling.log" ||
	fail "no log line for the 500 target"
[ "$(stat bad)" = 0 ] || fail "fake pyroscope saw malformed requests: $(curl -s http://127.0.0.1:$push/stats)"

# --- 503, 503 -> retried and delivered ----------------------------------------
r0=$(metric pyroscope_write_retries_total pyroscope.write.pyro)
curl -s -d "503,503" "http://127.0.0.1:$push/control" >/dev/null
retried() { [ "$(metric pyroscope_write_retries_total pyroscope.write.pyro)" -ge $((r0 + 2)) ]; }
wait_true 15 retried || fail "503s not retried"
settled() {
	[ "$(metric starling_pyroscope_write_queued_profiles pyroscope.write.pyro)" = 0 ] &&
		[ "$(metric pyroscope_write_sent_profiles_total pyroscope.write.pyro)" = "$(stat profiles)" ]
}
wait_true 10 settled || fail "sent $(metric pyroscope_write_sent_profiles_total pyroscope.write.pyro) != stored $(stat profiles)"
[ "$(metric pyroscope_write_dropped_profiles_total pyroscope.write.pyro)" = 0 ] ||
	fail "profiles dropped after 503s"

# --- 400 -> dropped and counted, not retried -----------------------------------
r1=$(metric pyroscope_write_retries_total pyroscope.write.pyro)
req1=$(stat requests)
curl -s -d "400" "http://127.0.0.1:$push/control" >/dev/null
dropped() { [ "$(metric pyroscope_write_dropped_profiles_total 'reason="rejected"')" = 1 ]; }
wait_true 10 dropped || fail "400 not counted as a rejected drop"
[ "$(metric pyroscope_write_retries_total pyroscope.write.pyro)" = "$r1" ] || fail "400 was retried"
more() { [ "$(stat requests)" -ge $((req1 + 3)) ]; }
wait_true 10 more || fail "pushes stopped after the 400"
[ "$(stat bad)" = 0 ] || fail "malformed requests: $(curl -s http://127.0.0.1:$push/stats)"
echo "profiles stored: $(stat profiles), pushes: $(stat requests)"

read -r ut stt <<<"$(awk '{print $14, $15}' /proc/$st_pid/stat)"
echo "starling: RSS $(awk '/^VmRSS/ {print $2}' /proc/$st_pid/status) kB, CPU $(((ut + stt) * 1000 / $(getconf CLK_TCK))) ms over $SECONDS s (7 targets x profile types)"

# --- clean shutdown: exits in bounded time, no sanitizer report -----------------
kill -TERM $st_pid
for ((i = 0; i < 100; i++)); do kill -0 $st_pid 2>/dev/null || break; sleep 0.1; done
kill -0 $st_pid 2>/dev/null && fail "starling still running 10 s after SIGTERM"
wait $st_pid
grep -E 'AddressSanitizer|LeakSanitizer|runtime error' "$work/starling.log" && fail "sanitizer report"
echo "PASS"
