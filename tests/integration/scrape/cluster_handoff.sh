#!/usr/bin/env bash
# Zero-gap hand-off (issue 13): a rolling restart of every node of a
# clustered prometheus.scrape loses no slot and doubles none, counted per
# target per slot from the targets' own request log.
#   cluster_handoff.sh BUILD_DIR
# NODES (5), TARGETS (60), INTERVAL seconds (1), PROFILE (local) and ROUNDS
# (1) set the size; the bench target runs NODES=20 TARGETS=400 INTERVAL=2.
# Each node: SIGTERM (it announces a hand-over time and keeps scraping until
# then), wait for it to exit, start it again, wait until every node lists
# every node as a participant (its join takes effect at its announced time),
# then the next node. Ports: free ones picked at start.
set -u
build=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
nodes=${NODES:-5} ntargets=${TARGETS:-60} iv=${INTERVAL:-1} profile=${PROFILE:-local}
rounds=${ROUNDS:-1}
srv=$build/tests/bench/scrape/bench_targetsrv
[ -x "$srv" ] || { echo "SKIP: build $srv first"; exit 77; }
command -v curl >/dev/null || { echo "SKIP: no curl"; exit 77; }
work=$(mktemp -d /tmp/sts-handoff.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	[ -n "${KEEP_WORK:-}" ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT
fail() {
	echo "FAIL: $*"
	for f in "$work"/*.log; do [ -f "$f" ] && { echo "--- $f"; grep -v "level=debug" "$f" | tail -15; }; done
	exit 1
}
# pick_ports NTARGETS NOTHER: a free run of NTARGETS loopback ports, then
# NOTHER more free ports outside it (TCP and UDP free)
pick_ports() {
	python3 - "$1" "$2" <<'PY'
import random, socket, sys
n, m = int(sys.argv[1]), int(sys.argv[2])
def free(p):
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind(("127.0.0.1", p))
        except OSError:
            return False
        finally:
            s.close()
    return True
for _ in range(200):
    b = random.randrange(20000, 60000 - n)
    if all(free(p) for p in range(b, b + n)):
        break
out = []
while len(out) < m:
    p = random.randrange(20000, 60000)
    if not b <= p < b + n and p not in out and free(p):
        out.append(p)
print(b, " ".join(map(str, out)))
PY
}
read -r tbase rest <<<"$(pick_ports "$ntargets" $((2 * nodes + 1)))"
read -r -a ports <<<"$rest"
sink=${ports[$((2 * nodes))]}
TARGETSRV_REQUEST_LOG=$work/requests.log "$srv" "$tbase" "$ntargets" "$sink" 5 \
	>"$work/targets.out" 2>"$work/targets.log" &
pids+=($!)
for ((i = 0; i < 100; i++)); do grep -qs ready "$work/targets.out" && break; sleep 0.1; done
grep -qs ready "$work/targets.out" || fail "target server did not start"

gport() { echo "${ports[$(($1 - 1))]}"; }
hport() { echo "${ports[$((nodes + $1 - 1))]}"; }
join=$(for ((n = 1; n <= nodes; n++)); do printf '"127.0.0.1:%s",' "$(gport $n)"; done | sed 's/,$//')
targets=$(for ((i = 0; i < ntargets; i++)); do
	printf '{ *address__ = "127.0.0.1:%d"; },' $((tbase + i))
done | sed 's/,$//')
for ((n = 1; n <= nodes; n++)); do
	mkdir -p "$work/s$n"
	cat >"$work/s$n/starling.cfg" <<CFG
plugins_dir = "$build/plugins";
state_dir = "$work/s$n/state";
server = { http_listen_addr = "127.0.0.1:$(hport $n)"; };
log = { level = "${LOG_LEVEL:-info}"; };
cluster = { enabled = true; node_name = "s$n"; bind = "127.0.0.1:$(gport $n)";
            join = [ $join ]; profile = "$profile"; };
components = (
  { type = "prometheus.scrape"; name = "cl";
    targets = ( $targets );
    job_name = "cl"; scrape_interval = "${iv}s"; scrape_timeout = "500ms";
    clustering = { enabled = true; };
    forward_to = [ "prometheus.remote_write.sink" ]; },
  { type = "prometheus.remote_write"; name = "sink";
    endpoint = ( { url = "http://127.0.0.1:$sink/api/v1/write"; } ); }
);
CFG
done
declare -A pid
start_node() {
	"$build/starling" run --config "$work/s$1/starling.cfg" >>"$work/s$1.log" 2>&1 &
	pid[$1]=$!
	pids+=($!)
}
participants() {
	curl -s "http://127.0.0.1:$(hport "$1")/api/v0/cluster/peers" | grep -o '"state":"participant"' | wc -l
}
wait_participants() { # SECONDS: until every node lists every node as a participant
	local i n ok
	for ((i = 0; i < $1 * 10; i++)); do
		for ((n = 1; n <= nodes; n++)); do
			kill -0 "${pid[$n]}" 2>/dev/null || fail "s$n exited"
		done
		ok=1
		for ((n = 1; n <= nodes; n++)); do [ "$(participants $n)" = "$nodes" ] || { ok=0; break; }; done
		[ $ok = 1 ] && return 0
		sleep 0.1
	done
	return 1
}
owned() {
	curl -s "http://127.0.0.1:$(hport "$1")/api/v0/components/prometheus.scrape.cl/targets" |
		grep -o '"owned_here":true' | wc -l
}
now() { date +%s.%N; }

for ((n = 1; n <= nodes; n++)); do start_node $n; done
wait_participants 60 || fail "$nodes nodes did not form a cluster"
sleep $((2 * iv + 2)) # every join came due (hand-over delay) and settled
total=0
for ((n = 1; n <= nodes; n++)); do total=$((total + $(owned $n))); done
echo "targets owned in total: $total of $ntargets"
[ "$total" = "$ntargets" ] || fail "$total targets owned, want $ntargets"

t0=$(now)
[ -n "${PAUSE_AT_START:-}" ] && { echo "paused; ports ${ports[*]}"; sleep "$PAUSE_AT_START"; }
tr0=$(now)
for ((r = 1; r <= rounds; r++)); do
	for ((n = 1; n <= nodes; n++)); do
		kill -TERM "${pid[$n]}"
		wait "${pid[$n]}" 2>/dev/null
		start_node $n
		wait_participants 60 || fail "s$n did not rejoin after its restart"
	done
done
tr1=$(now)
sleep $((2 * iv + 2)) # the last join comes due, then a few slots
t1=$(now)
echo "rolling restart of $nodes nodes x $rounds took $(awk -v a="$tr0" -v b="$tr1" 'BEGIN { printf "%.1f", b - a }') s"
for ((n = 1; n <= nodes; n++)); do
	grep -q "handing over targets in" "$work/s$n.log" || fail "s$n did not announce a hand-over"
done
out=$(python3 "$here/check_requests.py" "$work/requests.log" "$t0" "$t1" "$iv" "$tbase" "$ntargets")
rc=$?
echo "rolling restart (target request logs): $out"
[ $rc = 0 ] || fail "slots missed or doubled during the rolling restart"
echo PASS
