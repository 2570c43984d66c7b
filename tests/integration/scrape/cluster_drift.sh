#!/usr/bin/env bash
# Configuration drift (issue 13): two nodes whose clustered prometheus.scrape
# has different target lists report it within a gossip round, in the peers
# API (config_drift naming the component), the cluster_config_drift metric
# and a log line naming the component; after the second node is fixed
# (SIGHUP reload) all three clear.
#   cluster_drift.sh BUILD_DIR
set -u
build=$(cd "$1" && pwd)
command -v curl >/dev/null || { echo "SKIP: no curl"; exit 77; }
here=$(cd "$(dirname "$0")" && pwd)
. "$here/cluster_lib.sh" drift
read -r _ rest <<<"$(pick_ports 1 4)"
read -r -a ports <<<"$rest"
write_cfg() { # write_cfg N TARGETS
	cat >"$work/n$1.cfg" <<CFG
plugins_dir = "$build/plugins";
state_dir = "$work/n$1.state";
server = { http_listen_addr = "127.0.0.1:${ports[$((1 + $1))]}"; };
cluster = { enabled = true; node_name = "n$1"; bind = "127.0.0.1:${ports[$(($1 - 1))]}";
            join = [ "127.0.0.1:${ports[0]}", "127.0.0.1:${ports[1]}" ]; profile = "local"; };
components = (
  { type = "prometheus.scrape"; name = "web"; targets = ( $2 ); job_name = "web";
    scrape_interval = "10s"; clustering = { enabled = true; };
    forward_to = [ "local.file_sink.out" ]; },
  { type = "prometheus.scrape"; name = "alone"; targets = ( { *address__ = "127.0.0.1:9"; } );
    forward_to = [ "local.file_sink.out" ]; },
  { type = "local.file_sink"; name = "out"; path = "out.txt"; }
);
CFG
}
same='{ *address__ = "127.0.0.1:9101"; }, { *address__ = "127.0.0.1:9102"; }'
write_cfg 1 "$same"
write_cfg 2 '{ *address__ = "127.0.0.1:9101"; }'
for n in 1 2; do
	"$build/starling" run --config "$work/n$n.cfg" >"$work/n$n.log" 2>&1 &
	pids+=($!)
done
pid2=${pids[1]}
peers() { curl -s "http://127.0.0.1:${ports[$((1 + $1))]}/api/v0/cluster/peers"; }
metric() { curl -s "http://127.0.0.1:${ports[$((1 + $1))]}/metrics" | awk -v m="$2" '$1 == m { print $2 }'; }
until_true() { # SECONDS CMD...
	local i
	for ((i = 0; i < $1 * 10; i++)); do "${@:2}" && return 0; sleep 0.1; done
	return 1
}
drift_shown() {
	peers 1 | grep -q '"name":"n2"[^}]*"config_drift":"prometheus.scrape.web"' &&
		[ "$(metric 1 cluster_config_drift)" = 1 ] && [ "$(metric 2 cluster_config_drift)" = 1 ]
}
until_true 20 drift_shown || { peers 1; fail "drift not reported"; }
grep -q 'configuration drift: member n2 decides ownership from a different configuration of prometheus.scrape.web' "$work/n1.log" ||
	fail "no log line naming the component"
grep -q 'alone' <(peers 1 | grep -o '"config_drift":"[^"]*"') && fail "an unclustered component counted"
echo "drift reported (peers API, metric, log) naming prometheus.scrape.web"
write_cfg 2 "$same"
kill -HUP "$pid2"
cleared() {
	! peers 1 | grep -q config_drift && [ "$(metric 1 cluster_config_drift)" = 0 ] &&
		[ "$(metric 2 cluster_config_drift)" = 0 ]
}
until_true 20 cleared || { peers 1; fail "drift not cleared after the fix"; }
grep -q 'member n2 has the same configuration again' "$work/n1.log" || fail "no all-clear log line"
echo "cleared after the reload"
echo PASS
