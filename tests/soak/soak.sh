#!/usr/bin/env bash
# Soak test (not in CI): bash .ci/dev soak [MINUTES], or
#   tests/soak/soak.sh BUILD_DIR [MINUTES]        (default 30)
# Three clustered Starling nodes: discovery.file -> prometheus.scrape ->
# prometheus.remote_write to a real Prometheus 2.42, for MINUTES, with
#   - target churn: the file_sd file names a different 8 of 12 targets
#     every 30 s;
#   - series churn: every target replaces all its 200 series names every
#     minute (tests/soak/churn_targets.py);
#   - a reload every minute (scrape_interval flips between 1s and 2s on
#     every node, POST /-/reload);
#   - node 2 or 3 killed with SIGKILL every 5 minutes and restarted 10 s
#     later (node 1 stays up: it is the RSS and fd reference);
#   - a receiver outage of 2 minutes (Prometheus stopped) at 40% of the run.
# At the end (asserted): after the receiver is back, every node's queue
# drains (samples_pending 0) and nothing was dropped or refused
# (prometheus_remote_storage_samples_{dropped,failed}_total 0); node 1's RSS is
# within 10% of its value at minute 10 (or at a third of a shorter run) and
# its open fds did not grow; with an ASan build (build-asan), no sanitizer
# report in any log. Figures are printed at the end.
# Each run is in its own network namespace (tests/integration/isolate.sh).
# Progress goes to SOAK_LOG (default BUILD_DIR/soak-<UTC time>.log, outside the
# work dir the cleanup removes): one status line a minute (node RSS/fds/queue,
# load, free memory), every signal the script receives, and at the end the
# node logs are copied next to it, so a run cut short from outside can be told
# from one that failed (the last line of the log is the last minute it lived).
set -u
build=$(cd "${1:?usage: soak.sh BUILD_DIR [MINUTES]}" && pwd)
minutes=${2:-${SOAK_MINUTES:-30}}
here=$(cd "$(dirname "$0")" && pwd)
if [ -z "${STARLING_IN_NETNS:-}" ]; then
	export SOAK_LOG="${SOAK_LOG:-$build/soak-$(date -u +%Y%m%dT%H%M%SZ).log}"
	echo "soak log: $SOAK_LOG" >&2
	exec bash "$here/../integration/isolate.sh" bash "$0" "$build" "$minutes"
fi
command -v prometheus >/dev/null || { echo "SKIP: no prometheus"; exit 77; }
. "$here/../integration/scrape/lib.sh" # work, pids, cleanup trap, fail, wait_http, prom_query
eval "lib_$(declare -f fail)"
fail() { soak_fail "$@"; }
freeport() {
	python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'
}
log_file=${SOAK_LOG:-/dev/null}
say() { printf '[%5ds] %s\n' $((SECONDS - t_start)) "$*" | tee -a "$log_file"; }
# Signals: note which one ended the run (SIGKILL cannot be caught: then the
# log simply stops; its last status line says when).
for sig in HUP INT QUIT TERM PIPE USR1 USR2; do
	trap "say 'soak.sh got SIG$sig, stopping'; exit 1" $sig
done
soak_fail() { # lib.sh's fail, after noting it in SOAK_LOG and keeping the logs
	say "FAIL: $*"
	keep_logs
	lib_fail "$@"
}
keep_logs() { # copy what the cleanup would delete next to SOAK_LOG
	[ "$log_file" = /dev/null ] && return 0
	local d="${log_file%.log}.logs"
	mkdir -p "$d" && cp "$work"/*.log "$work"/*.cfg "$d"/ 2>/dev/null
}
t_start=$SECONDS
end=$((t_start + minutes * 60))
ref_at=$((t_start + (minutes >= 30 ? 600 : minutes * 20)))
outage_at=$((t_start + minutes * 24))
outage_len=$((minutes >= 10 ? 120 : minutes * 12))

# --- targets, Prometheus ---------------------------------------------------
python3 "$here/churn_targets.py" 12 "$work/ports" 200 >"$work/targets.log" 2>&1 &
pids+=($!)
for ((i = 0; i < 100; i++)); do [ -f "$work/ports" ] && break; sleep 0.05; done
mapfile -t tp <"$work/ports"
[ "${#tp[@]}" = 12 ] || fail "target servers did not start"
prom=$(freeport)
mkdir -p "$work/prom" "$work/sd"
prom_head_yml "$prom" >"$work/prom/prom.yml"
start_prom() {
	prometheus --config.file="$work/prom/prom.yml" --storage.tsdb.path="$work/prom/data" \
		--web.listen-address=127.0.0.1:$prom --web.enable-remote-write-receiver \
		>>"$work/prometheus.log" 2>&1 &
	prom_pid=$!
	pids+=($prom_pid)
	wait_http "http://127.0.0.1:$prom/-/ready" 30 || fail "prometheus did not start"
	prom_wait_head "$prom" 30 || fail "prometheus did not append its first sample"
}
start_prom

write_sd() { # a different 8 of the 12 targets each half minute
	local k=$(((SECONDS / 30) % 12)) i first=1
	{
		printf '[{"targets": ['
		for ((i = 0; i < 8; i++)); do
			[ $first = 1 ] || printf ', '
			printf '"127.0.0.1:%s"' "${tp[$(((k + i) % 12))]}"
			first=0
		done
		printf '], "labels": {"soak": "yes"}}]\n'
	} >"$work/sd/t.json.tmp"
	mv "$work/sd/t.json.tmp" "$work/sd/t.json"
}
write_sd

# --- three nodes -------------------------------------------------------------
declare -a gp hp pid
for n in 1 2 3; do gp[$n]=$(freeport); hp[$n]=$(freeport); done
join="\"127.0.0.1:${gp[1]}\", \"127.0.0.1:${gp[2]}\", \"127.0.0.1:${gp[3]}\""
write_cfg() { # N INTERVAL
	cat >"$work/n$1.cfg" <<CFG
plugins_dir = "$build/plugins";
state_dir = "$work/n$1/state";
server = { http_listen_addr = "127.0.0.1:${hp[$1]}"; };
cluster = { enabled = true; node_name = "n$1"; bind = "127.0.0.1:${gp[$1]}";
            join = [ $join ]; profile = "local"; };
components = (
  { type = "discovery.file"; name = "sd"; files = [ "$work/sd/*.json" ]; refresh_interval = "5s"; },
  { type = "prometheus.scrape"; name = "s"; targets = ( "discovery.file.sd" );
    job_name = "soak"; scrape_interval = "$2"; scrape_timeout = "900ms";
    clustering = { enabled = true; };
    forward_to = [ "prometheus.remote_write.p" ]; },
  { type = "prometheus.remote_write"; name = "p";
    endpoint = ( { url = "http://127.0.0.1:$prom/api/v1/write"; name = "prom";
                   queue_config = { batch_send_deadline = "500ms"; max_backoff = "2s"; }; } ); }
);
CFG
}
start_node() { # N
	mkdir -p "$work/n$1/state"
	"$build/starling" run --config "$work/n$1.cfg" >>"$work/n$1.log" 2>&1 &
	pid[$1]=$!
	pids+=($!)
}
for n in 1 2 3; do
	write_cfg $n 1s
	"$build/starling" check-config "$work/n$n.cfg" >/dev/null 2>"$work/check.log" ||
		fail "config refused: $(cat "$work/check.log")"
	start_node $n
done
for n in 1 2 3; do wait_http "http://127.0.0.1:${hp[$n]}/-/ready" 30 || fail "node $n not ready"; done

metric() { # N NAME: value of the first sample of NAME on node N, or 0
	curl -s -m 5 "http://127.0.0.1:${hp[$1]}/metrics" |
		awk -v m="$2" '$1 == m || index($1, m "{") == 1 {print $2; exit}' | sed 's/^$/0/'
}
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
fds() { ls "/proc/$1/fd" | wc -l; }

# --- the run -----------------------------------------------------------------
reloads=0 reload_fail=0 kills=0 next_min=$((t_start + 60)) next_kill=$((t_start + 300))
victim=2 interval=1s outage_done=0 back_at=0 restart_at=0 restart_node= ref_rss= ref_fd= rss_max=0
say "soak: $minutes min, 3 nodes, 12 churning targets (8 at a time), Prometheus :$prom"
while ((SECONDS < end)); do
	sleep 1
	((SECONDS % 30 == 0)) && write_sd
	if ((SECONDS >= next_min)); then # reload every minute
		next_min=$((next_min + 60))
		st=""
		for n in 1 2 3; do
			if kill -0 "${pid[$n]}" 2>/dev/null; then
				st+=" n$n:rss=$(rss_kb "${pid[$n]}")kB,fds=$(fds "${pid[$n]}"),pending=$(metric $n prometheus_remote_storage_samples_pending)"
			else
				st+=" n$n:down"
			fi
		done
		say "status:$st load=$(cut -d' ' -f1-3 /proc/loadavg) memfree=$(awk '/^MemAvailable/ {print $2}' /proc/meminfo)kB"
		[ $interval = 1s ] && interval=2s || interval=1s
		for n in 1 2 3; do
			write_cfg $n $interval
			kill -0 "${pid[$n]}" 2>/dev/null || continue
			code=$(curl -s -m 30 -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:${hp[$n]}/-/reload")
			reloads=$((reloads + 1))
			[ "$code" = 200 ] || { reload_fail=$((reload_fail + 1)); say "reload of n$n: HTTP $code"; }
		done
	fi
	if ((SECONDS >= next_kill)); then # a node killed every 5 minutes
		next_kill=$((next_kill + 300))
		say "kill -9 n$victim"
		kill -KILL "${pid[$victim]}" 2>/dev/null
		wait "${pid[$victim]}" 2>/dev/null
		kills=$((kills + 1))
		restart_at=$((SECONDS + 10))
		restart_node=$victim
		victim=$((victim == 2 ? 3 : 2))
	fi
	if ((restart_at && SECONDS >= restart_at)); then
		say "restart n$restart_node"
		start_node $restart_node
		restart_at=0
	fi
	# the outage does not hold up the loop: reloads and kills go on during it
	if ((!outage_done && SECONDS >= outage_at)); then
		say "receiver outage: Prometheus stopped for ${outage_len}s"
		kill -TERM $prom_pid
		wait $prom_pid 2>/dev/null
		outage_done=1
		back_at=$((SECONDS + outage_len))
	fi
	if ((back_at && SECONDS >= back_at)); then
		start_prom
		say "receiver back"
		back_at=0
	fi
	if [ -z "$ref_rss" ] && ((SECONDS >= ref_at)); then
		ref_rss=$(rss_kb "${pid[1]}") ref_fd=$(fds "${pid[1]}")
		say "reference (node 1): RSS ${ref_rss} kB, ${ref_fd} fds"
	fi
	r=$(rss_kb "${pid[1]}" 2>/dev/null || echo 0)
	((r > rss_max)) && rss_max=$r
	kill -0 "${pid[1]}" 2>/dev/null || fail "node 1 died"
done
[ -n "$restart_node" ] && ! kill -0 "${pid[$restart_node]}" 2>/dev/null && start_node "$restart_node"
((back_at)) && start_prom

# --- the end -----------------------------------------------------------------
end_rss=$(rss_kb "${pid[1]}") end_fd=$(fds "${pid[1]}")
say "end (node 1): RSS ${end_rss} kB (max ${rss_max}), ${end_fd} fds"
# stop scraping's growth of the queue: no more targets, then let queues drain
printf '[]\n' >"$work/sd/t.json"
drained=
for ((i = 0; i < 180; i++)); do
	p=0
	for n in 1 2 3; do p=$((p + $(metric $n prometheus_remote_storage_samples_pending | cut -d. -f1))); done
	[ "$p" = 0 ] && { drained=1; break; }
	sleep 1
done
exec > >(tee -a "$log_file")
printf '\nnode  in_total     sent         dropped  failed  pending  RSS_kB  fds\n'
dropped_all=0 failed_all=0
for n in 1 2 3; do
	in=$(metric $n prometheus_remote_storage_samples_in_total)
	sent=$(metric $n prometheus_remote_storage_samples_total)
	dr=$(metric $n prometheus_remote_storage_samples_dropped_total)
	fa=$(metric $n prometheus_remote_storage_samples_failed_total)
	pe=$(metric $n prometheus_remote_storage_samples_pending)
	printf 'n%-3s  %-11s  %-11s  %-7s  %-6s  %-7s  %-6s  %s\n' $n "$in" "$sent" "$dr" "$fa" "$pe" \
		"$(rss_kb "${pid[$n]}")" "$(fds "${pid[$n]}")"
	dropped_all=$(python3 -c "print(int($dropped_all + float('${dr:-0}')))")
	failed_all=$(python3 -c "print(int($failed_all + float('${fa:-0}')))")
done
printf '\nreloads %d (failed %d), kills %d, receiver outage %ds\n' $reloads $reload_fail $kills $outage_len
printf 'node 1 RSS: %s kB at the reference, %s kB at the end (max %s); fds %s -> %s\n' \
	"$ref_rss" "$end_rss" "$rss_max" "$ref_fd" "$end_fd"
bad=0
[ -n "$drained" ] || { echo "FAIL: queues did not drain within 180 s"; bad=1; }
[ "$dropped_all" = 0 ] || { echo "FAIL: $dropped_all samples dropped"; bad=1; }
# refused by the receiver (HTTP 4xx, not retried): accepted and then lost too
[ "$failed_all" = 0 ] || { echo "FAIL: $failed_all samples refused by Prometheus (see the node logs)"; bad=1; }
[ "$reload_fail" = 0 ] || { echo "FAIL: $reload_fail reloads failed"; bad=1; }
python3 -c "import sys; sys.exit(0 if $end_rss <= $ref_rss * 1.10 else 1)" ||
	{ echo "FAIL: RSS grew more than 10% after the reference point"; bad=1; }
[ "$end_fd" -le $((ref_fd + 8)) ] || { echo "FAIL: fds grew $ref_fd -> $end_fd"; bad=1; }
# stop the nodes (SIGTERM) so that LeakSanitizer reports at exit land in
# their logs before those are read
for n in 1 2 3; do kill -TERM "${pid[$n]}" 2>/dev/null; done
for n in 1 2 3; do
	wait "${pid[$n]}" 2>/dev/null
	rc=$?
	[ "$rc" = 0 ] || { echo "FAIL: node $n exited $rc after SIGTERM"; bad=1; }
done
if grep -lE 'AddressSanitizer|LeakSanitizer|runtime error' "$work"/n*.log; then
	echo "FAIL: sanitizer report"
	bad=1
fi
keep_logs
[ $bad = 0 ] || fail "soak failed"
say "PASS"
