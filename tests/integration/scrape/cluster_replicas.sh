#!/usr/bin/env bash
# Replicas (issue 13): 3 nodes, clustering.replicas = 2, remote write with
# each node's own `replica` label into a real VictoriaMetrics that drops that
# label (-relabelConfig) and de-duplicates (-dedup.minScrapeInterval):
#  1. every target is scraped exactly twice per slot (the targets' own
#     request logs), and VictoriaMetrics keeps one sample per slot;
#  2. after kill -9 of one node is detected, the two survivors (= replicas)
#     scrape every target, so there are still two copies of each slot.
#   cluster_replicas.sh BUILD_DIR
set -u
build=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
command -v victoria-metrics >/dev/null || { echo "SKIP: no victoria-metrics"; exit 77; }
command -v curl >/dev/null || { echo "SKIP: no curl"; exit 77; }
srv=$build/tests/bench/scrape/bench_targetsrv
[ -x "$srv" ] || { echo "SKIP: build $srv first"; exit 77; }
. "$here/cluster_lib.sh" replicas
ntargets=12 iv=2
read -r tbase rest <<<"$(pick_ports $ntargets 8)"
read -r -a ports <<<"$rest" # 3 gossip, 3 http, sink, vm
sink=${ports[6]} vm=${ports[7]}
TARGETSRV_REQUEST_LOG=$work/requests.log "$srv" "$tbase" $ntargets "$sink" 3 \
	>"$work/targets.out" 2>"$work/targets.log" &
pids+=($!)
printf -- '- action: labeldrop\n  regex: replica\n' >"$work/vm-relabel.yml"
victoria-metrics -httpListenAddr=127.0.0.1:$vm -storageDataPath="$work/vm" \
	-dedup.minScrapeInterval=${iv}s -relabelConfig="$work/vm-relabel.yml" \
	-search.latencyOffset=0s >"$work/vm.log" 2>&1 &
pids+=($!)
for ((i = 0; i < 100; i++)); do
	grep -qs ready "$work/targets.out" && curl -sf "http://127.0.0.1:$vm/health" >/dev/null && break
	sleep 0.1
done
curl -sf "http://127.0.0.1:$vm/health" >/dev/null || fail "victoria-metrics did not start"
join=$(for n in 0 1 2; do printf '"127.0.0.1:%s",' "${ports[$n]}"; done | sed 's/,$//')
targets=$(for ((i = 0; i < ntargets; i++)); do printf '{ *address__ = "127.0.0.1:%d"; },' $((tbase + i)); done | sed 's/,$//')
declare -A pid
for n in 1 2 3; do
	cat >"$work/n$n.cfg" <<CFG
plugins_dir = "$build/plugins";
state_dir = "$work/n$n.state";
server = { http_listen_addr = "127.0.0.1:${ports[$((2 + n))]}"; };
cluster = { enabled = true; node_name = "n$n"; bind = "127.0.0.1:${ports[$((n - 1))]}";
            join = [ $join ]; profile = "local"; };
components = (
  { type = "prometheus.scrape"; name = "rep"; targets = ( $targets ); job_name = "rep";
    scrape_interval = "${iv}s"; scrape_timeout = "1s";
    clustering = { enabled = true; replicas = 2; };
    forward_to = [ "prometheus.remote_write.vm" ]; },
  { type = "prometheus.remote_write"; name = "vm"; external_labels = { replica = "n$n"; };
    endpoint = ( { url = "http://127.0.0.1:$vm/api/v1/write";
                   queue_config = { batch_send_deadline = "250ms"; }; } ); }
);
CFG
	"$build/starling" run --config "$work/n$n.cfg" >"$work/n$n.log" 2>&1 &
	pid[$n]=$!
	pids+=($!)
done
participants() { curl -s "http://127.0.0.1:${ports[$((2 + $1))]}/api/v0/cluster/peers" | grep -o '"state":"participant"' | wc -l; }
for ((i = 0; i < 300; i++)); do
	[ "$(participants 1)" = 3 ] && [ "$(participants 2)" = 3 ] && [ "$(participants 3)" = 3 ] && break
	sleep 0.1
done
[ "$(participants 1)" = 3 ] || fail "3 nodes did not form a cluster"
sleep $((2 * iv + 2))
now() { date +%s.%N; }
t0=$(now); sleep 20; t1=$(now)
target_keys "${ports[3]}" prometheus.scrape.rep >"$work/keys"
out=$(python3 "$here/check_requests.py" "$work/requests.log" "$t0" "$t1" $iv "$tbase" $ntargets 2 "$work/keys")
rc=$?
echo "replicas=2 on 3 nodes (request logs, 2 per slot wanted): $out"
[ $rc = 0 ] || fail "not exactly two scrapes per slot"
# one sample per slot in VictoriaMetrics (dedup, replica label dropped), once
# remote write delivered the window (polled: a fixed 3 s before)
vm_window() {
	q=$(curl -s "http://127.0.0.1:$vm/api/v1/query" --data-urlencode "query=count_over_time(up{job=\"rep\"}[20s])" \
		--data-urlencode "time=$t1" --data-urlencode "nocache=1")
	read -r series lo hi <<<"$(echo "$q" | python3 -c '
import json, sys
try:
    r = json.load(sys.stdin)["data"]["result"]
except Exception:
    r = []
v = [float(x["value"][1]) for x in r]
print(len(r), min(v) if v else 0, max(v) if v else 0)')"
}
for ((i = 0; i < 300; i++)); do
	vm_window
	[ "$series" = $ntargets ] && awk -v lo="$lo" 'BEGIN { exit !(lo >= 9) }' && break
	sleep 0.2
done
echo "victoria-metrics: $series series, $lo..$hi samples per target in 20 s (10 slots)"
[ "$series" = $ntargets ] || fail "want $ntargets deduplicated series in VictoriaMetrics: $q"
awk -v lo="$lo" -v hi="$hi" 'BEGIN { exit !(lo >= 9 && hi <= 11) }' ||
	fail "want one sample per slot (9-11 in 20 s), have $lo..$hi"

# kill -9 n3: once the others declare it dead, both survivors scrape all
kill -9 "${pid[3]}"
dead3() { curl -s "http://127.0.0.1:${ports[$((2 + $1))]}/api/v0/cluster/peers" | grep -q '"name":"n3"[^}]*"state":"dead"'; }
for ((i = 0; i < 300; i++)); do
	dead3 1 && dead3 2 && break
	sleep 0.1
done
dead3 1 && dead3 2 || fail "n3 not declared dead"
t0=$(now); sleep 12; t1=$(now)
target_keys "${ports[3]}" prometheus.scrape.rep >"$work/keys"
out=$(python3 "$here/check_requests.py" "$work/requests.log" "$t0" "$t1" $iv "$tbase" $ntargets 2 "$work/keys")
rc=$?
echo "after kill -9 of one node (2 survivors, request logs): $out"
[ $rc = 0 ] || fail "two copies not kept after a node died"
echo PASS
