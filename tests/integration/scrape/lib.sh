# Shared helpers of the scrape integration tests (sourced).
# Ports: 27000-27999 belong to these tests.
. "$(dirname "${BASH_SOURCE[0]}")/../prom_head.sh" # prom_head_yml, prom_wait_head
work=$(mktemp -d /tmp/sts-scrape.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	[ -n "${KEEP_WORK:-}" ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*"
	for f in "$work"/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -15 "$f"; }; done
	exit 1
}

# wait_http URL SECONDS: poll every 50 ms until HTTP 200.
wait_http() {
	local i n=$(($2 * 20))
	for ((i = 0; i < n; i++)); do
		[ "$(curl -s -o /dev/null -w '%{http_code}' "$1")" = 200 ] && return 0
		sleep 0.05
	done
	return 1
}

# prom_query PORT QUERY: prints "labels value" lines of an instant query.
prom_query() {
	curl -s -G "http://127.0.0.1:$1/api/v1/query" --data-urlencode "query=$2" |
		python3 -c '
import json, sys
d = json.load(sys.stdin)
for r in d.get("data", {}).get("result", []):
    print(json.dumps(r["metric"], sort_keys=True), r["value"][1])'
}

# prom_value PORT QUERY: value of the first result, or "none".
prom_value() {
	local v
	v=$(prom_query "$1" "$2" | head -1 | awk '{print $NF}')
	echo "${v:-none}"
}

# wait_value PORT QUERY EXPECTED SECONDS: poll until the value is EXPECTED.
wait_value() {
	local i v
	for ((i = 0; i < $4 * 4; i++)); do
		v=$(prom_value "$1" "$2")
		[ "$v" = "$3" ] && return 0
		sleep 0.25
	done
	echo "query $2: got $v, want $3"
	return 1
}

start_prometheus() { # PORT
	mkdir -p "$work/prom"
	prom_head_yml "$1" >"$work/prom/prom.yml"
	prometheus --config.file="$work/prom/prom.yml" --storage.tsdb.path="$work/prom/data" \
		--web.listen-address=127.0.0.1:$1 --web.enable-remote-write-receiver \
		>"$work/prometheus.log" 2>&1 &
	pids+=($!)
	wait_http "http://127.0.0.1:$1/-/ready" 20 || fail "prometheus did not start"
	prom_wait_head "$1" 30 || fail "prometheus did not append its first sample within 30 s"
}

# wait_spans_due SECONDS HTTP_PORT...: wait until no node's view holds an
# announced span start or end still to come (peers' owns_from/owns_until
# after now). A joining node is announced handover_delay ahead
# (host/cluster/README.md, "Hand-over at agreed times"); until that time
# has passed, nodes asked one after another can answer on both sides of it
# (one before, the next after), and their owned targets do not add up.
wait_spans_due() {
	local t=$1 i p pending
	shift
	for ((i = 0; i < t * 10; i++)); do
		pending=0
		for p in "$@"; do
			curl -s "http://127.0.0.1:$p/api/v0/cluster/peers" | python3 -c '
import json, sys, time
now = time.time() * 1000
d = json.load(sys.stdin)
peers = d.get("peers", d) if isinstance(d, dict) else d
due = [p.get(k) for p in peers for k in ("owns_from", "owns_until") if p.get(k)]
sys.exit(1 if [v for v in due if v > now] else 0)' || pending=1
		done
		[ $pending = 0 ] && return 0
		sleep 0.1
	done
	return 1
}
