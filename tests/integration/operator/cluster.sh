#!/usr/bin/env bash
# Clustered prometheus.operator.podmonitors: 2 Starling nodes (real
# membership on loopback) watch the same fake API server; 16 pods (all backed
# by one node_exporter, told apart by their pod label) are split between
# them.
#   cluster.sh BUILD_DIR
# Asserts: in steady state every pod is scraped by exactly one node and both
# nodes scrape some; the targets API agrees (16 owned in total); after kill -9
# of one node the survivor scrapes all 16.
set -u
build=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
api=29680 ne=29691
. "$here/lib.sh"
npods=16

command -v prometheus-node-exporter >/dev/null || { echo "SKIP: no node_exporter"; exit 77; }
prometheus-node-exporter --web.listen-address=127.0.0.1:$ne --no-collector.systemd \
	>"$work/node_exporter.log" 2>&1 &
pids+=($!)
python3 "$here/fake_apiserver.py" $api secret-token >"$work/apiserver.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$ne/metrics" 10 || fail "node_exporter did not start"
wait_http "http://127.0.0.1:$api/_control/stats" 10 || fail "fake API server did not start"
ctl apply "$(monitor_json monitoring node-exporter)"
for ((i = 0; i < npods; i++)); do
	ctl apply "$(pod_json monitoring node-exporter-p$i node-exporter $ne Running)"
done

declare -A pid
for n in 1 2; do
	mkdir -p "$work/o$n"
	cat >"$work/o$n/starling.cfg" <<CFG
plugins_dir = "$build/plugins";
state_dir = "$work/o$n/state";
server = { http_listen_addr = "127.0.0.1:2961$n"; };
cluster = { enabled = true; node_name = "o$n"; bind = "127.0.0.1:2960$n";
            join = [ "127.0.0.1:29601", "127.0.0.1:29602" ]; profile = "local"; };
components = (
  { type = "prometheus.operator.podmonitors"; name = "pm";
    client = { api_server = "http://127.0.0.1:$api"; bearer_token = "secret-token"; };
    clustering = { enabled = true; };
    forward_to = [ "local.file_sink.out" ]; },
  { type = "local.file_sink"; name = "out"; path = "$work/o$n/samples.txt";
    flush_interval = "250ms"; }
);
CFG
	"$build/starling" run --config "$work/o$n/starling.cfg" >"$work/o$n.log" 2>&1 &
	pid[$n]=$!
	pids+=($!)
done
for n in 1 2; do
	wait_http "http://127.0.0.1:2961$n/-/ready" 20 || fail "node o$n did not start"
done
participants() {
	curl -s "http://127.0.0.1:2961$1/api/v0/cluster/peers" | grep -o '"state":"participant"' | wc -l
}
for ((i = 0; i < 200; i++)); do
	[ "$(participants 1)" = 2 ] && [ "$(participants 2)" = 2 ] && break
	sleep 0.1
done
[ "$(participants 1)" = 2 ] && [ "$(participants 2)" = 2 ] || fail "the nodes did not see each other"
owned() {
	curl -s "http://127.0.0.1:2961$1/api/v0/components/prometheus.operator.podmonitors.pm/targets" |
		grep -o '"owned_here":true' | wc -l
}
# pods_in NODE FROM_LINE: pod names with an up sample after line FROM_LINE.
pods_in() {
	tail -n +"$(($2 + 1))" "$work/o$1/samples.txt" 2>/dev/null | grep '^up{' |
		grep -o 'pod="[^"]*"' | sort -u
}

# Let ownership settle (both nodes listed and scraping), then watch 4 s.
for ((i = 0; i < 200; i++)); do
	[ $(($(owned 1) + $(owned 2))) = $npods ] && [ "$(owned 1)" -gt 0 ] && [ "$(owned 2)" -gt 0 ] && break
	sleep 0.1
done
o1=$(owned 1) o2=$(owned 2)
[ $((o1 + o2)) = $npods ] || fail "targets API: $o1 + $o2 owned, want $npods"
[ "$o1" -gt 0 ] && [ "$o2" -gt 0 ] || fail "one node owns everything ($o1 / $o2)"
sleep 2
m1=$(wc -l <"$work/o1/samples.txt") m2=$(wc -l <"$work/o2/samples.txt")
# the window: until every pod was scraped once after the marks (a fixed 4 s
# before, which a loaded machine may not fill), at least 4 s
all_in() {
	sort -u <(pods_in 1 "$m1") <(pods_in 2 "$m2") | grep -c pod=
}
t_end=$((SECONDS + 4))
for ((i = 0; i < 600; i++)); do
	[ "$(all_in)" = $npods ] && [ $SECONDS -ge $t_end ] && break
	sleep 0.1
done
p1=$(pods_in 1 "$m1") p2=$(pods_in 2 "$m2")
both=$(comm -12 <(echo "$p1") <(echo "$p2") | grep -c pod=)
all=$(sort -u <(echo "$p1") <(echo "$p2") | grep -c pod=)
[ "$both" = 0 ] || fail "$both pods scraped by both nodes"
[ "$all" = $npods ] || fail "only $all of $npods pods scraped"
echo "ok: $npods pods split $o1 / $o2, each scraped by exactly one node"

kill -9 "${pid[2]}"
m1=$(wc -l <"$work/o1/samples.txt")
for ((i = 0; i < 200; i++)); do
	[ "$(pods_in 1 "$m1" | grep -c pod=)" = $npods ] && break
	sleep 0.1
done
[ "$(pods_in 1 "$m1" | grep -c pod=)" = $npods ] || fail "the survivor did not take over all pods"
echo "ok: kill -9 of one node -> the survivor scrapes all $npods pods"
echo PASS
