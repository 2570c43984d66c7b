#!/usr/bin/env bash
# Per-target __scrape_interval__ in a clustered prometheus.scrape: 2 Starling
# nodes, 12 targets, half with __scrape_interval__ = "1s" (job iv1), half
# with "3s" (job iv3), the component's own interval 2s. From the `up`
# samples in Prometheus (remote write):
#  1. steady state: every target has one sample per slot of its OWN
#     interval, none doubled, none missing;
#  2. kill -9 of a node: its targets continue on the other node at the slots
#     of their own interval (empty slots only until it is declared dead plus
#     one interval, never a doubled slot).
#   cluster_interval.sh BUILD_DIR
set -u
build=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
sc=$here/../scrape
. "$sc/lib.sh"
command -v prometheus >/dev/null || { echo "SKIP: no prometheus"; exit 77; }
srv=$build/tests/bench/scrape/bench_targetsrv
[ -x "$srv" ] || fail "build $srv first"
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
n=12
# n target ports and the target server's sink port (base - 1)
base=$(($(python3 "$here/free_ports.py" $((n + 1))) + 1)) || exit 1
prom=$(free_port)
g1=$(free_port) g2=$(free_port) h1=$(free_port) h2=$(free_port)
declare -A gossip=([1]=$g1 [2]=$g2) http=([1]=$h1 [2]=$h2)

"$srv" $base $n $((base - 1)) 3 >"$work/targets.log" 2>&1 &
pids+=($!)
start_prometheus $prom
wait_http "http://127.0.0.1:$base/metrics" 10 || fail "target server"

targets() {
	local i
	for ((i = 0; i < n; i++)); do
		if ((i % 2)); then
			printf '{ *address__ = "127.0.0.1:%d"; job = "iv3"; *scrape_interval__ = "3s"; },' $((base + i))
		else
			printf '{ *address__ = "127.0.0.1:%d"; job = "iv1"; *scrape_interval__ = "1s"; *scrape_timeout__ = "900ms"; },' $((base + i))
		fi
	done | sed 's/,$//'
}
for k in 1 2; do
	mkdir -p "$work/s$k"
	cat >"$work/s$k/starling.cfg" <<CFG
plugins_dir = "$build/plugins";
state_dir = "$work/s$k/state";
server = { http_listen_addr = "127.0.0.1:${http[$k]}"; };
cluster = { enabled = true; node_name = "s$k"; bind = "127.0.0.1:${gossip[$k]}";
            join = [ "127.0.0.1:$g1", "127.0.0.1:$g2" ]; profile = "local"; };
components = (
  { type = "prometheus.scrape"; name = "cl";
    targets = ( $(targets) );
    scrape_interval = "2s"; scrape_timeout = "1s";
    clustering = { enabled = true; };
    forward_to = [ "prometheus.remote_write.prom" ]; },
  { type = "prometheus.remote_write"; name = "prom";
    endpoint = ( { url = "http://127.0.0.1:$prom/api/v1/write";
                   queue_config = { batch_send_deadline = "250ms"; }; } ); }
);
CFG
done
declare -A pid
for k in 1 2; do
	"$build/starling" run --config "$work/s$k/starling.cfg" >>"$work/s$k.log" 2>&1 &
	pid[$k]=$!
	pids+=($!)
done
owned() {
	curl -s "http://127.0.0.1:${http[$1]}/api/v0/components/prometheus.scrape.cl/targets" |
		grep -o '"owned_here":true' | wc -l
}
for ((i = 0; i < 300; i++)); do
	[ $(( $(owned 1) + $(owned 2) )) = $n ] && [ "$(owned 1)" -gt 0 ] && [ "$(owned 2)" -gt 0 ] && break
	sleep 0.1
done
echo "owned per node: $(owned 1) $(owned 2)"
[ $(( $(owned 1) + $(owned 2) )) = $n ] || fail "targets not split across the 2 nodes"
now() { date +%s.%N; }
check() { # LABEL START END MAX_MISSED_1S MAX_MISSED_3S
	local o1 o3
	o1=$(python3 "$sc/check_slots.py" $prom iv1 "$2" "$3" 1 "$4" $((n / 2))) || fail "$1 (1s targets): $o1"
	o3=$(python3 "$sc/check_slots.py" $prom iv3 "$2" "$3" 3 "$5" $((n / 2))) || fail "$1 (3s targets): $o3"
	echo "$1: 1s targets: $o1"
	echo "$1: 3s targets: $o3"
}

sleep 4
t0=$(now); sleep 15; t1=$(now); sleep 2
check "steady state" "$t0" "$t1" 0 0

victim=$(owned 2)
t0=$(now)
{ kill -9 "${pid[2]}"; wait "${pid[2]}"; } 2>/dev/null
for ((i = 0; i < 300; i++)); do
	[ "$(owned 1)" = $n ] && break
	sleep 0.1
done
[ "$(owned 1)" = $n ] || fail "s1 did not take over s2's targets"
dead_s=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
echo "s2 ($victim targets) taken over after $dead_s s"
sleep 8
t1=$(now); sleep 2
a1=$(awk -v d="$dead_s" 'BEGIN { printf "%d", d / 1 + 2 }')
a3=$(awk -v d="$dead_s" 'BEGIN { printf "%d", d / 3 + 2 }')
check "kill -9" "$(awk -v a="$t0" 'BEGIN { printf "%.3f", a - 4 }')" "$t1" "$a1" "$a3"
echo PASS
