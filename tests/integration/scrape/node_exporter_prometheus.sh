#!/usr/bin/env bash
# prometheus.scrape end to end: a real node_exporter and a set of broken
# targets scraped by Starling, remote-written to a real Prometheus 2.42.
#   node_exporter_prometheus.sh BUILD_DIR
# Asserts: node_exporter's metrics are queryable with job/instance labels,
# one `up` sample per interval; every broken target (garbage, 500, timeout,
# body over the limit, gzip bomb, corrupt gzip, redirect loop) has up 0 while
# a healthy target on the same server is up 1; staleness markers reach
# Prometheus when a target goes away.
set -u
build=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
ne=27101 bad=27102 prom=27190 http=27110

command -v prometheus-node-exporter >/dev/null || { echo "SKIP: no node_exporter"; exit 77; }
command -v prometheus >/dev/null || { echo "SKIP: no prometheus"; exit 77; }

prometheus-node-exporter --web.listen-address=127.0.0.1:$ne --no-collector.systemd \
	>"$work/node_exporter.log" 2>&1 &
ne_pid=$!
pids+=($ne_pid)
python3 "$here/bad_targets.py" $bad >"$work/bad.log" 2>&1 &
pids+=($!)
start_prometheus $prom
wait_http "http://127.0.0.1:$ne/metrics" 10 || fail "node_exporter did not start"
wait_http "http://127.0.0.1:$bad/ok" 10 || fail "bad target server did not start"

badt() { echo "{ *address__ = \"127.0.0.1:$bad\"; *metrics_path__ = \"/$1\"; instance = \"$1\"; }"; }
cat >"$work/starling.cfg" <<CFG
plugins_dir = "$build/plugins";
state_dir = "$work/state";
server = { http_listen_addr = "127.0.0.1:$http"; };
components = (
  { type = "prometheus.scrape"; name = "node";
    targets = ( { *address__ = "127.0.0.1:$ne"; } );
    job_name = "node";
    scrape_interval = "1s";
    forward_to = [ "prometheus.remote_write.prom" ]; },
  { type = "prometheus.scrape"; name = "bad";
    targets = ( $(badt ok), $(badt garbage), $(badt 500), $(badt slow), $(badt big),
                $(badt bomb), $(badt badgzip), $(badt redirect) );
    job_name = "bad";
    scrape_interval = "2s"; scrape_timeout = "1s";
    body_size_limit = "1MiB";
    forward_to = [ "prometheus.remote_write.prom" ]; },
  { type = "prometheus.remote_write"; name = "prom";
    endpoint = ( { url = "http://127.0.0.1:$prom/api/v1/write";
                   queue_config = { batch_send_deadline = "500ms"; }; } ); }
);
CFG
"$build/starling" run --config "$work/starling.cfg" >"$work/starling.log" 2>&1 &
pids+=($!)
t0=$SECONDS
wait_http "http://127.0.0.1:$http/-/ready" 20 || fail "starling did not start"

inst="instance=\"127.0.0.1:$ne\""
wait_value $prom "up{job=\"node\",$inst}" 1 30 || fail "node_exporter up"
# Every series of node_exporter's own page reaches Prometheus. The number
# depends on the machine (CPUs, interfaces, filesystems: 397 on one CI host,
# 453 in a network namespace), and one scrape's samples may arrive in more
# than one remote-write batch, so compare against the page itself and wait
# (bounded) for the rest of the batches rather than assume a fixed count.
curl -s "http://127.0.0.1:$ne/metrics" >"$work/page.prom" || fail "node_exporter page"
want=$(grep -vc '^#' "$work/page.prom")
names_missing() { # prints page metric names Prometheus does not have for the job
	prom_query $prom "count by (__name__) ({job=\"node\",$inst})" >"$work/names.txt"
	python3 - "$work/page.prom" "$work/names.txt" <<'PY'
import json, re, sys
page = {re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", l).group(0)
        for l in open(sys.argv[1]) if l.strip() and not l.startswith("#")}
have = {json.loads(l.rsplit(" ", 1)[0]).get("__name__") for l in open(sys.argv[2])}
print(" ".join(sorted(page - have)))
PY
}
deadline=$((SECONDS + 30))
while :; do
	n=$(prom_value $prom "count({job=\"node\",$inst})")
	missing=$(names_missing)
	[ "$n" != none ] && [ "$n" -ge "$want" ] && [ -z "$missing" ] && break
	((SECONDS < deadline)) || fail "$n of $want node_exporter series in Prometheus; missing names: ${missing:0:300}"
	sleep 0.5
done
echo "node_exporter: $n series in Prometheus, $want on the page"
for s in up scrape_duration_seconds scrape_samples_scraped; do
	[ "$(prom_value $prom "count($s{job=\"node\",$inst})")" = 1 ] || fail "$s missing"
done
[ "$(prom_value $prom "count(node_load1{job=\"node\",$inst})")" = 1 ] || fail "node_load1 missing"
[ "$(prom_value $prom "count(node_load1{exported_job!=\"\"} or node_load1{exported_instance!=\"\"})")" = none ] ||
	fail "unexpected exported_ labels"

wait_value $prom 'up{job="bad",instance="ok"}' 1 20 || fail "healthy target on the bad server"
[ "$(prom_value $prom 'good_metric{job="bad",instance="ok"}')" = 1 ] || fail "good_metric"
for t in garbage 500 slow big bomb badgzip redirect; do
	wait_value $prom "up{job=\"bad\",instance=\"$t\"}" 0 20 || fail "target $t should be down"
done
# all or nothing: the valid first line of the garbage body was not ingested
[ "$(prom_value $prom 'good_metric{instance="garbage"}')" = none ] || fail "partial body ingested"
curl -s "http://127.0.0.1:$http/metrics" | grep -q 'starling_scrape_failures_total{component_id="prometheus.scrape.bad"} [1-9]' ||
	fail "failures not counted"

# one up sample per 1 s interval: 10 (+-1 at the window edges) in 10 s
while ((SECONDS - t0 < 15)); do sleep 0.5; done
c=$(prom_value $prom "count_over_time(up{job=\"node\",$inst}[10s] offset 2s)")
[ "$c" != none ] && [ "$c" -ge 9 ] && [ "$c" -le 11 ] || fail "$c up samples in 10s, want 10"
rss=$(awk '/^VmRSS/ {print $2}' "/proc/${pids[-1]}/status")
echo "starling RSS ${rss} kB after the bomb and big bodies"
[ "$rss" -lt 200000 ] || fail "RSS $rss kB"

# node_exporter goes away: up 0 and its series get staleness markers, so
# an instant query no longer returns them
kill $ne_pid
wait_value $prom "up{job=\"node\",$inst}" 0 20 || fail "up after node_exporter stopped"
wait_value $prom "count(node_load1{job=\"node\",$inst})" none 20 || fail "no staleness markers"
echo "PASS"
