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
. "$here/cluster_lib.sh" handoff
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
target_keys "$(hport 1)" prometheus.scrape.cl >"$work/keys"
out=$(python3 "$here/check_requests.py" "$work/requests.log" "$t0" "$t1" "$iv" "$tbase" "$ntargets" 1 "$work/keys")
rc=$?
echo "rolling restart (target request logs): $out"
[ $rc = 0 ] || fail "slots missed or doubled during the rolling restart"
if [ -n "${KILL9:-}" ]; then
	# failover figure (printed, not asserted): kill -9 of KILL9 nodes; the
	# longest gap between two scrapes of any target, from the request log
	tk=$(now)
	for ((n = 1; n <= KILL9; n++)); do kill -9 "${pid[$n]}"; done
	gone() { # every survivor lists the killed nodes as dead
		local n k
		for ((n = KILL9 + 1; n <= nodes; n++)); do
			for ((k = 1; k <= KILL9; k++)); do
				curl -s "http://127.0.0.1:$(hport $n)/api/v0/cluster/peers" |
					grep -q "\"name\":\"s$k\"[^}]*\"state\":\"\(dead\|left\)\"" || return 1
			done
		done
	}
	for ((i = 0; i < 600; i++)); do gone && break; sleep 0.1; done
	td=$(now)
	sleep $((3 * iv + 2))
	python3 - "$work/requests.log" "$tk" "$tbase" "$ntargets" "$iv" "$td" <<'PY'
import sys
log, tk, base, n, iv, td = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
ts = {}
for line in open(log):
    p, t = line.split()
    ts.setdefault(int(p), []).append(float(t))
worst = 0
for p, v in ts.items():
    v = sorted(x for x in v if x >= tk - 2 * iv)
    gaps = [b - a for a, b in zip(v, v[1:])]
    worst = max([worst] + gaps)
print("kill -9: all survivors saw the dead after %.1f s; longest gap between two scrapes "
      "of a target %.1f s (interval %.0f s)" % (td - tk, worst, iv))
PY
fi
echo PASS
