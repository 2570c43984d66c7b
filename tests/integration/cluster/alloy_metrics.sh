# Alloy's clustering metrics on /metrics of real daemons: names, types and
# labels as grafana/ckit defines them — metrics.go (cluster_node_*_total
# events and broadcasts, cluster_node_update_observers, _updating,
# _update_duration_seconds with prometheus.DefBuckets, all with the const
# label cluster_name), node.go (cluster_node_lamport_time, no labels; the
# event values node_join/node_leave/... from memberlist's delegates) and
# internal/gossiphttp/metrics.go (cluster_transport_tx_packets_failed_total,
# _streams, _stream_{rx,tx}_packets{,_failed}_total, no labels); the
# reference is ../shared/reference/alloy-cluster-ops.md §2. Two nodes with
# --cluster.name=alloyt (memberlist label = Alloy's cluster_name); n2 leaves
# gracefully and n1 counts a node_leave. Gossip 23081-23082, HTTP 23091-23092.
. "$(dirname "$0")/lib.sh"
for i in 1 2; do
	start_node "n$i" "127.0.0.1:$((23080 + i))" "127.0.0.1:$((23090 + i))" \
		--cluster.join=127.0.0.1:23081 --cluster.name=alloyt
done
two() { [ "$(count_state n1 participant)" -eq 2 ] && [ "$(count_state n2 participant)" -eq 2 ]; }
wait_until 20 two || fail "2 nodes did not converge"

# check_metrics NAME CHECK...: each CHECK is "metric type labels op value"
# (labels: a comma list of name=value that must be exactly the sample's
# labels, "-" for none; op: ge or eq), checked by python on one scrape.
check_metrics() {
	local node=$1; shift
	metrics "$node" >"$TMP/$node.metrics" || return 1
	python3 - "$TMP/$node.metrics" "$@" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
types, samples = {}, []
for line in text.splitlines():
    if line.startswith("# TYPE "):
        _, _, name, typ = line.split(" ", 3)
        types[name] = typ
    elif line and not line.startswith("#"):
        m = re.match(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$', line)
        labels = dict(re.findall(r'([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        samples.append((m.group(1), labels, float(m.group(4))))
bad = []
for check in sys.argv[2:]:
    name, typ, labels, op, want = check.split()
    base = re.sub(r'_(bucket|sum|count)$', '', name) if typ == "histogram" else name
    if types.get(base) != typ:
        bad.append("%s: type %s, want %s" % (name, types.get(base), typ))
        continue
    want_l = {} if labels == "-" else dict(kv.split("=", 1) for kv in labels.split(","))
    hits = [v for n, l, v in samples if n == name and l == want_l]
    if len(hits) != 1:
        bad.append("%s%s: %d samples" % (name, want_l, len(hits)))
    elif not (hits[0] >= float(want) if op == "ge" else hits[0] == float(want)):
        bad.append("%s%s = %g, want %s %s" % (name, want_l, hits[0], op, want))
if bad:
    print("\n".join(bad))
    sys.exit(1)
PY
}

CN=cluster_name=alloyt
COMMON=(
	"cluster_node_lamport_time gauge - ge 1"
	"cluster_node_gossip_alive_peers gauge - eq 2"
	"cluster_node_update_observers gauge $CN ge 0"
	"cluster_node_updating gauge $CN ge 0"
	"cluster_node_update_duration_seconds_count histogram $CN ge 0"
	"cluster_node_update_duration_seconds_bucket histogram $CN,le=+Inf ge 0"
	"cluster_node_update_duration_seconds_bucket histogram $CN,le=0.005 ge 0"
	"cluster_node_gossip_received_events_total counter $CN,event=node_join ge 1"
	"cluster_node_gossip_received_events_total counter $CN,event=state_change_message ge 1"
	"cluster_node_gossip_received_events_total counter $CN,event=get_local_state ge 1"
	"cluster_node_gossip_received_events_total counter $CN,event=merge_remote_state ge 1"
	"cluster_node_gossip_received_events_total counter $CN,event=unknown_message eq 0"
	"cluster_node_gossip_received_events_total counter $CN,event=node_update ge 0"
	"cluster_node_gossip_received_events_total counter $CN,event=node_conflict eq 0"
	"cluster_node_gossip_broadcasts_total counter $CN,event=state_change_message ge 1"
	"cluster_transport_tx_packets_failed_total counter - eq 0"
	"cluster_transport_streams gauge - ge 0"
	"cluster_transport_stream_rx_packets_total counter - ge 0"
	"cluster_transport_stream_tx_packets_total counter - ge 0"
	"cluster_transport_stream_rx_packets_failed_total counter - ge 0"
	"cluster_transport_stream_tx_packets_failed_total counter - ge 0"
)
# n2 joined through n1: a stream each way. The view callback (an "update")
# runs once n2's announced take-over comes due (handover_delay).
# n1 was up before n2 joined, so n2's arrival is a view change n1 observed
# (n2 is asked only for the metrics' presence: one ASan run of the suite
# under heavy load showed n2 with no completed update after 60 s, not
# understood; the count is checked on n1 again after n2's leave below)
UPD1="cluster_node_update_duration_seconds_count histogram $CN ge 1"
ok_n1() { check_metrics n1 "${COMMON[@]}" "$UPD1" "cluster_transport_stream_rx_packets_total counter - ge 1" >/dev/null; }
ok_n2() { check_metrics n2 "${COMMON[@]}" "cluster_transport_stream_tx_packets_total counter - ge 1" >/dev/null; }
wait_until 20 ok_n1 || fail "n1 metrics: $(check_metrics n1 "${COMMON[@]}")"
wait_until 20 ok_n2 || fail "n2 metrics: $(check_metrics n2 "${COMMON[@]}")"
log "n1 and n2 expose Alloy's cluster metrics"
if command -v promtool >/dev/null; then
	promtool check metrics <"$TMP/n1.metrics" 2>&1 | grep -v "counter metrics should have" |
		grep -i "error" && fail "promtool check metrics: n1"
fi

# a graceful leave: memberlist's NotifyLeave on n1 (ckit node_leave), and
# one more completed update on n1 (its view lost n2)
upd_n1() { check_metrics n1 >/dev/null; awk -v n="cluster_node_update_duration_seconds_count{cluster_name=\"alloyt\"}" '$1 == n { print $2 }' "$TMP/n1.metrics"; }
# n2's announced take-over must have come due in n1's view before it leaves:
# a node that leaves before it ever owned anything changes no view, and n1
# counts no update (an ASan run of the suite killed n2 0.7 s before its
# take-over time: count 1 -> 1). Then no update in progress when counting.
n2_owns() { [ -n "$(sample_keys n1 n2)" ]; }
wait_until 20 n2_owns || fail "n2 never owned a probe key in n1's view: $(owners n1)"
idle_n1() { check_metrics n1 "cluster_node_updating gauge $CN eq 0" >/dev/null; }
wait_until 20 idle_n1 || fail "n1 still updating: $(grep updating "$TMP/n1.metrics")"
upd0=$(upd_n1)
kill -TERM "$PID_n2"
wait_exit "$PID_n2" 20 || fail "n2 did not stop"
left() { check_metrics n1 "cluster_node_gossip_received_events_total counter $CN,event=node_leave ge 1" >/dev/null; }
wait_until 20 left || fail "n1: no node_leave event after n2 left: $(grep node_leave "$TMP/n1.metrics")"
log "n1 counted n2's leave"
more_upd() { [ "$(upd_n1)" -gt "${upd0:-0}" ]; }
wait_until 20 more_upd || fail "n1: no update after n2 left (update count ${upd0:-?} -> $(upd_n1))"
log "n1 updated its view after n2 left (update count $upd0 -> $(upd_n1))"
echo PASS
