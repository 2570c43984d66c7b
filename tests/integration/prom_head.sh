# Shared by the tests that remote-write into a fresh Prometheus (sourced).
#
# Prometheus 2.42 has a race on a fresh, empty TSDB head: the first append
# sets the head's min time, then its max time (tsdb/head_append.go,
# Head.initTime, two separate compare-and-swaps); a remote-write request
# whose appender is made between the two computes its lowest valid time as
# MaxTime() - chunkRange/2 with MaxTime() still math.MinInt64, which wraps
# around (Head.appendableMinValidTime), so all its samples are "out of
# bounds": HTTP 400, which a sender must not retry. Starling's four shards
# send their first batches at once, so a test that pushes right after
# Prometheus starts lost one batch now and then
# (integration_remote_write_prometheus_outage: 378 of 380 samples). The fix
# for the tests: let Prometheus append its own first sample before anything
# is pushed: it scrapes itself every second (keeping only `up` and
# prometheus_build_info, job "prometheus-head-init"), and prom_wait_head
# waits until that sample is queryable.

# prom_head_yml PORT: a prom.yml with the self-scrape (global interval 15s).
prom_head_yml() {
	cat <<YML
global: { scrape_interval: 15s }
scrape_configs:
  - job_name: prometheus-head-init
    scrape_interval: 1s
    static_configs: [ { targets: [ "127.0.0.1:$1" ] } ]
    metric_relabel_configs:
      - { source_labels: [ __name__ ], regex: prometheus_build_info, action: keep }
YML
}

# prom_wait_head PORT SECONDS: 0 once the head holds a sample.
prom_wait_head() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		curl -s -G "http://127.0.0.1:$1/api/v1/query" \
			--data-urlencode 'query=up{job="prometheus-head-init"}' | grep -q '"value"' && return 0
		sleep 0.1
	done
	return 1
}
