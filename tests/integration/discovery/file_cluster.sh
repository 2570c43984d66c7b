#!/usr/bin/env bash
# discovery.file → discovery.relabel → clustered prometheus.scrape on three
# Starling nodes, remote writing to a real Prometheus 2.42.
#   file_cluster.sh BUILD_DIR
# While the nodes run, the file_sd file is edited (atomic rename, then an
# in-place write, then a bad file, then a fix). Asserts:
#  1. targets appear and vanish without a restart (same PIDs throughout);
#  2. every target has exactly one owner across the nodes
#     (/api/v0/components/prometheus.scrape.s/targets, owned_here);
#  3. the relabel rules ran (label disc="yes" on the samples);
#  4. a vanished target's series get staleness markers: its instant query
#     in Prometheus turns empty well before the 5 m lookback would hide it;
#  5. a bad file keeps the last good targets, is counted
#     (prometheus_sd_file_read_errors_total) and the component is unhealthy
#     until the file is fixed.
# Every port is picked free at run time.
set -u
build=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
command -v prometheus >/dev/null || { echo "SKIP: no prometheus"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: no python3"; exit 77; }
command -v curl >/dev/null || { echo "SKIP: no curl"; exit 77; }

# work dir, cleanup trap (pids), fail, wait_http, prom_query, start_prometheus PORT
. "$here/../scrape/lib.sh"
freeports() { # N: N distinct free TCP ports (all held open while picked)
	python3 -c '
import socket, sys
ss = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))' "$1"
}
prom_count() { # QUERY: number of series an instant query returns
	prom_query "$prom" "$1" | wc -l
}
wait_prom_count() { # QUERY COUNT SECONDS
	local i c
	for ((i = 0; i < $3 * 4; i++)); do
		c=$(prom_count "$1")
		[ "$c" = "$2" ] && return 0
		sleep 0.25
	done
	echo "query $1: $c series, want $2"
	return 1
}

# --- targets and Prometheus -------------------------------------------------
python3 "$here/targets.py" 6 "$work/ports" >"$work/targets.log" 2>&1 &
pids+=($!)
for ((i = 0; i < 100; i++)); do [ -f "$work/ports" ] && break; sleep 0.05; done
mapfile -t tp <"$work/ports"
[ "${#tp[@]}" = 6 ] || fail "target servers did not start"
declare -a gp hp
read -r prom gp[1] gp[2] gp[3] hp[1] hp[2] hp[3] < <(freeports 7)
mkdir -p "$work/sd"
start_prometheus $prom

sd=$work/sd/targets.json
write_sd() { # indexes...: atomic replace
	local i first=1
	{
		printf '[{"targets": ['
		for i in "$@"; do
			[ $first = 1 ] || printf ', '
			printf '"127.0.0.1:%s"' "${tp[$i]}"
			first=0
		done
		printf '], "labels": {"team": "disc"}}]\n'
	} >"$sd.tmp"
	mv "$sd.tmp" "$sd"
}
write_sd 0 1 2 3

# --- three nodes -------------------------------------------------------------
join="\"127.0.0.1:${gp[1]}\", \"127.0.0.1:${gp[2]}\", \"127.0.0.1:${gp[3]}\""
for n in 1 2 3; do
	mkdir -p "$work/n$n"
	cat >"$work/n$n/starling.cfg" <<CFG
plugins_dir = "$build/plugins";
state_dir = "$work/n$n/state";
server = { http_listen_addr = "127.0.0.1:${hp[$n]}"; };
log = { level = "debug"; };
cluster = { enabled = true; node_name = "n$n"; bind = "127.0.0.1:${gp[$n]}";
            join = [ $join ]; profile = "local"; };
components = (
  { type = "discovery.file"; name = "sd"; files = [ "$work/sd/*.json" ]; },
  { type = "discovery.relabel"; name = "r"; targets = ( "discovery.file.sd" );
    rule = ( { source_labels = [ "team" ]; regex = "disc"; action = "keep"; },
             { source_labels = [ "__address__" ]; target_label = "disc"; replacement = "yes"; } ); },
  { type = "prometheus.scrape"; name = "s"; targets = ( "discovery.relabel.r" );
    job_name = "disc"; scrape_interval = "1s"; scrape_timeout = "500ms";
    clustering = { enabled = true; };
    forward_to = [ "prometheus.remote_write.p" ]; },
  { type = "prometheus.remote_write"; name = "p";
    endpoint = ( { url = "http://127.0.0.1:$prom/api/v1/write";
                   queue_config = { batch_send_deadline = "250ms"; }; } ); }
);
CFG
	"$build/starling" check-config "$work/n$n/starling.cfg" >/dev/null 2>"$work/check.log" ||
		fail "config refused: $(cat "$work/check.log")"
done
declare -a pid
for n in 1 2 3; do
	"$build/starling" run --config "$work/n$n/starling.cfg" >"$work/n$n.log" 2>&1 &
	pid[$n]=$!
	pids+=($!)
done
participants() {
	curl -s "http://127.0.0.1:${hp[$1]}/api/v0/cluster/peers" | grep -o '"state":"participant"' | wc -l
}
for ((i = 0; i < 300; i++)); do
	[ "$(participants 1)" = 3 ] && [ "$(participants 2)" = 3 ] && [ "$(participants 3)" = 3 ] && break
	sleep 0.1
done
[ "$(participants 1)" = 3 ] || fail "3 nodes did not form a cluster"

# expect_owners SECONDS indexes...: exactly these targets, one owner each
owners_out=""
expect_owners() {
	local t=$1 i want got
	shift
	want=$(for i in "$@"; do echo "127.0.0.1:${tp[$i]}"; done | sort)
	for ((k = 0; k < t * 10; k++)); do
		owners_out=$(python3 "$here/owners.py" prometheus.scrape.s ${hp[1]} ${hp[2]} ${hp[3]} 2>/dev/null)
		got=$(echo "$owners_out" | awk '$2 !~ /,/ && $2 != "-" {print $1}' | sort)
		if [ "$got" = "$want" ] && [ "$(echo "$owners_out" | wc -l)" = "$#" ]; then
			return 0
		fi
		sleep 0.1
	done
	echo "owners (address nodes):"
	echo "$owners_out"
	return 1
}
inst() { echo "127.0.0.1:${tp[$1]}"; }

# 1. initial targets: one owner each, samples in Prometheus with the relabelled label
expect_owners 30 0 1 2 3 || fail "initial targets not owned exactly once"
echo "initial: 4 targets, owners: $(echo "$owners_out" | awk '{print $2}' | sort | uniq -c | tr -s ' ' | tr '\n' ';')"
wait_prom_count 'disc_test_value{job="disc",disc="yes",team="disc"}' 4 30 ||
	fail "samples of the 4 targets did not reach Prometheus"

# 2. atomic edit: target 3 goes, 4 and 5 come
t0=$(date +%s.%N)
write_sd 0 1 2 4 5
expect_owners 30 0 1 2 4 5 || fail "edited targets not owned exactly once"
t1=$(date +%s.%N)
echo "atomic edit seen by every node after $(awk -v a=$t0 -v b=$t1 'BEGIN{printf "%.2f", b-a}') s"
wait_prom_count 'disc_test_value{job="disc"}' 5 30 || fail "new targets not scraped"
# vanished target: a staleness marker makes the instant query empty at once
# (without one, the last sample would stay visible for the 5 m lookback)
wait_prom_count "disc_test_value{instance=\"$(inst 3)\"}" 0 30 ||
	fail "no staleness marker for the vanished target $(inst 3)"
t2=$(date +%s.%N)
echo "vanished target stale in Prometheus $(awk -v a=$t0 -v b=$t2 'BEGIN{printf "%.2f", b-a}') s after the edit"

# 3. in-place edit (truncate + write): target 0 goes
printf '[{"targets": ["%s", "%s", "%s", "%s"], "labels": {"team": "disc"}}]\n' \
	"$(inst 1)" "$(inst 2)" "$(inst 4)" "$(inst 5)" >"$sd"
expect_owners 30 1 2 4 5 || fail "in-place edit not applied"
wait_prom_count "disc_test_value{instance=\"$(inst 0)\"}" 0 30 ||
	fail "no staleness marker for $(inst 0)"

# 4. a bad file keeps the last good targets; unhealthy until fixed
printf '[{"targets": ["%s"], "labels": {"team": "disc"}},\n {"targets": [' "$(inst 1)" >"$sd"
errs() {
	curl -s "http://127.0.0.1:${hp[$1]}/metrics" |
		awk '$1 ~ /^prometheus_sd_file_read_errors_total/ { s += $NF } END { printf "%d", s }'
}
healthy() {
	curl -s "http://127.0.0.1:${hp[$1]}/metrics" |
		awk '$1 ~ /^starling_component_healthy/ && $1 ~ /discovery.file.sd/ { print $NF }'
}
# the read error is counted while the file is read, the health is set after
# the scan published (dfile_scan.c): wait for both, not one then the other
for ((i = 0; i < 300; i++)); do
	[ "$(errs 1)" -ge 1 ] && [ "$(errs 2)" -ge 1 ] && [ "$(errs 3)" -ge 1 ] &&
		[ "$(healthy 2)" = 0 ] && break
	sleep 0.1
done
[ "$(errs 1)" -ge 1 ] || fail "the bad file was not counted"
[ "$(healthy 2)" = 0 ] || fail "discovery.file healthy with a bad file"
grep -q 'targets.json:2: ' "$work/n1.log" || fail "no file:line in the error log"
sleep 1
expect_owners 5 1 2 4 5 || fail "a bad file changed the targets"
write_sd 1 2 5
expect_owners 30 1 2 5 || fail "fixed file not applied"
# healthy again once the scan that published the set set it: waited for
for ((i = 0; i < 300; i++)); do
	[ "$(healthy 3)" = 1 ] && break
	sleep 0.1
done
[ "$(healthy 3)" = 1 ] || fail "discovery.file still unhealthy after the fix"

# no restarts: the same processes ran throughout
for n in 1 2 3; do kill -0 "${pid[$n]}" 2>/dev/null || fail "node $n is gone"; done
for n in 1 2 3; do
	[ "$(grep -c 'ready: listening' "$work/n$n.log")" = 1 ] || fail "node $n restarted"
done
echo PASS
