# discovery.dns and the cluster's dnssrv+ join against a real DNS server:
# dnsmasq on 127.0.0.1:53 inside a network namespace made by this test, with
# /etc/netns/<ns>/resolv.conf pointing the namespace's resolver at it (ip
# netns exec bind-mounts it over /etc/resolv.conf). Everything runs in the
# namespace; nothing touches the host's DNS.
#  1. SRV, A, AAAA, MX lookups give the targets and __meta_dns_* labels
#     Prometheus gives (discovery/dns/dns.go refreshOne), and a
#     prometheus.scrape naming the component in `targets` gets them;
#  2. dnsmasq down: every refresh fails, the targets stay, the failure
#     counter grows and the component turns unhealthy;
#  3. dnsmasq back with other records: the targets follow, healthy again;
#     a name whose lookup now fails (SERVFAIL) keeps its previous targets
#     while the other name of the same component follows its new records;
#  4. three cluster nodes whose only join entry is
#     dnssrv+_starling._udp.example.test find each other.
. "$(dirname "$0")/../cluster/lib.sh"
: "${STARLING_PLUGINS:?STARLING_PLUGINS must point at the built plugins}"
[ "$(id -u)" -eq 0 ] || { echo "needs root (network namespace): skipped"; exit 77; }
command -v dnsmasq >/dev/null || { echo "dnsmasq not installed: skipped"; exit 77; }
DNSNS=std_dns$$
teardown() {
	ip netns del $DNSNS 2>/dev/null
	rm -rf /etc/netns/$DNSNS
}
EXTRA_CLEANUP=teardown
ip netns add $DNSNS || { echo "cannot create namespaces: skipped"; exit 77; }
ip -n $DNSNS link set lo up || fail "lo up"
mkdir -p /etc/netns/$DNSNS
printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n' >/etc/netns/$DNSNS/resolv.conf
PROBE=$(dirname "$0")/sd_probe.py
in_ns() { ip netns exec $DNSNS "$@"; }

DNSMASQ_PID=
# dnsmasq_start: serve $TMP/dns.conf (authoritative for example.test)
dnsmasq_start() {
	# not through in_ns: $! must be dnsmasq itself (ip netns exec execs)
	ip netns exec $DNSNS dnsmasq -k --conf-file="$TMP/dns.conf" --no-resolv --no-hosts --port=53 \
		--listen-address=127.0.0.1 --bind-interfaces --user=root --pid-file= \
		--local=/example.test/ --log-facility="$TMP/dnsmasq.log" &
	DNSMASQ_PID=$!
	PIDS+=("$DNSMASQ_PID")
	wait_until 10 in_ns python3 -c '
import socket; socket.getaddrinfo("web1.example.test", 1)' || fail "dnsmasq does not answer"
}
dnsmasq_stop() {
	kill "$DNSMASQ_PID" && wait "$DNSMASQ_PID" 2>/dev/null
}

cat >"$TMP/dns.conf" <<'DNS'
srv-host=_web._tcp.example.test,web1.example.test,8080,10,5
srv-host=_web._tcp.example.test,web2.example.test,8081,20,5
host-record=web1.example.test,127.0.0.11
host-record=hosts.example.test,127.0.0.21,fd00::21
mx-host=example.test,mail.example.test,10
srv-host=_db._tcp.example.test,db1.example.test,5432
DNS
dnsmasq_start

API=127.0.0.1:24190
cat >"$TMP/sd.cfg" <<CFG
plugins_dir = "$STARLING_PLUGINS";
state_dir = "$TMP/sd.state";
server = { http_listen_addr = "$API"; };
components = (
  { type = "discovery.dns"; name = "srv"; names = [ "_web._tcp.example.test" ];
    refresh_interval = "1s"; },
  { type = "discovery.dns"; name = "a"; names = [ "hosts.example.test", "nx.example.test" ];
    record_type = "a"; port = 9100; refresh_interval = "1s"; },
  { type = "discovery.dns"; name = "aaaa"; names = [ "hosts.example.test" ];
    record_type = "AAAA"; port = 9100; refresh_interval = "1s"; },
  { type = "discovery.dns"; name = "mx"; names = [ "example.test" ];
    record_type = "MX"; port = 25; refresh_interval = "1s"; },
  { type = "discovery.dns"; name = "two";
    names = [ "_web._tcp.example.test", "_db._tcp.example.test" ]; refresh_interval = "1s"; },
  { type = "prometheus.scrape"; name = "s"; targets = ( "discovery.dns.srv" );
    scrape_interval = "1h"; forward_to = [ "local.file_sink.null" ]; },
  { type = "local.file_sink"; name = "null"; path = "$TMP/samples.om"; }
);
CFG
ip netns exec $DNSNS "$STARLING_BIN" run --config "$TMP/sd.cfg" >>"$TMP/sd.log" 2>&1 &
PIDS+=($!)
targets() { in_ns python3 "$PROBE" targets $API "discovery.dns.$1"; }
health() { in_ns python3 "$PROBE" health $API "discovery.dns.$1"; }
failures() {
	in_ns curl -sf "http://$API/metrics" |
		awk -v c="component_id=\"discovery.dns.$1\"" \
			'/^prometheus_sd_dns_lookup_failures_total/ && index($0, c) { print $NF }'
}
has() { [ "$(targets "$1")" = "$2" ]; }
# t ADDRESS NAME SRV_PORT SRV_TARGET MX_TARGET NS_TARGET: one target line
t() {
	echo "__address__=$1 __meta_dns_mx_record_target=${5:-} __meta_dns_name=$2" \
		"__meta_dns_ns_record_target=${6:-} __meta_dns_srv_record_port=${3:-}" \
		"__meta_dns_srv_record_target=${4:-}"
}

want="$(t web1.example.test:8080 _web._tcp.example.test 8080 web1.example.test.)
$(t web2.example.test:8081 _web._tcp.example.test 8081 web2.example.test.)"
wait_until 15 has srv "$want" || fail "SRV targets: $(targets srv)"
scraped() { in_ns python3 "$PROBE" targets $API prometheus.scrape.s | awk '{ print $1 }' | tr '\n' ' '; }
scrape_has() { [ "$(scraped)" = "$1" ]; }
wait_until 10 scrape_has "instance=web1.example.test:8080 instance=web2.example.test:8081 " ||
	fail "prometheus.scrape fed by discovery.dns: $(scraped)"
log "SRV: 2 targets with their labels, also in a prometheus.scrape fed by the component"
# nx.example.test is NXDOMAIN: an empty group, not a failure
want=$(t 127.0.0.21:9100 hosts.example.test)
wait_until 10 has a "$want" || fail "A targets: $(targets a)"
wait_until 5 has aaaa "$(t '[fd00::21]:9100' hosts.example.test)" ||
	fail "AAAA targets: $(targets aaaa)"
want=$(t mail.example.test:25 example.test "" "" mail.example.test.)
wait_until 5 has mx "$want" || fail "MX targets: $(targets mx)"
[ "$(failures a)" = 0 ] || fail "NXDOMAIN counted as a failure: $(failures a)"
[ "$(health a | cut -d' ' -f1)" = healthy ] || fail "A component: $(health a)"
log "A (NXDOMAIN name ignored), AAAA, MX: targets with their labels"

# 2. the server goes away: lookups fail, targets stay
before=$(targets srv)
dnsmasq_stop
grew() { [ "${1:-0}" -lt "$(failures srv)" ]; }
f0=$(failures srv)
wait_until 15 grew "$f0" || fail "failures not counted: $(failures srv)"
wait_until 10 grew "$(failures srv)" || fail "failures not counted twice"
[ "$(targets srv)" = "$before" ] || fail "targets lost on failure: $(targets srv)"
case "$(health srv)" in
unhealthy*"_web._tcp.example.test"*) ;;
*) fail "component not unhealthy: $(health srv)" ;;
esac
grep -q 'DNS SRV lookup of _web._tcp.example.test failed' "$TMP/sd.log" || fail "failure not logged"
log "server down: $(failures srv) failed lookups, targets kept, $(health srv)"

wait_until 5 has two "$(t db1.example.test:5432 _db._tcp.example.test 5432 db1.example.test.)
$before" || fail "two names: $(targets two)"

# 3. back with other records; _db now forwarded to a server that is not
# there, so its lookups fail (SERVFAIL) while _web resolves
sed -i -e 's/web2.example.test,8081/web3.example.test,8082/' -e '/_db\._tcp/d' "$TMP/dns.conf"
echo "server=/_db._tcp.example.test/127.0.0.9" >>"$TMP/dns.conf"
dnsmasq_start
want="$(t web1.example.test:8080 _web._tcp.example.test 8080 web1.example.test.)
$(t web3.example.test:8082 _web._tcp.example.test 8082 web3.example.test.)"
wait_until 15 has srv "$want" || fail "SRV targets after change: $(targets srv)"
healthy() { [ "$(health srv | cut -d' ' -f1)" = healthy ]; }
wait_until 5 healthy || fail "not healthy again: $(health srv)"
want2="$(t db1.example.test:5432 _db._tcp.example.test 5432 db1.example.test.)
$want"
wait_until 10 has two "$want2" || fail "per-name failure: $(targets two)"
case "$(health two)" in
unhealthy*"lookup failed for _db._tcp.example.test"*) ;;
*) fail "two: $(health two)" ;;
esac
case "$(health two)" in *_web.*) fail "two blames _web: $(health two)" ;; esac
wait_until 10 scrape_has "instance=web1.example.test:8080 instance=web3.example.test:8082 " ||
	fail "prometheus.scrape did not follow: $(scraped)"
log "server back with a changed record: targets follow (also in prometheus.scrape), healthy; a failing name keeps its targets: $(health two)"

# 4. dnssrv+ join: the SRV record is the only way the nodes know each other
cat >>"$TMP/dns.conf" <<'DNS'
srv-host=_starling._udp.example.test,node.example.test,24101
srv-host=_starling._udp.example.test,node.example.test,24102
srv-host=_starling._udp.example.test,node.example.test,24103
host-record=node.example.test,127.0.0.1
DNS
dnsmasq_stop
dnsmasq_start
for i in 1 2 3; do
	NS[n$i]=$DNSNS
	start_node n$i 127.0.0.1:2410$i 127.0.0.1:2411$i \
		--cluster.join=dnssrv+_starling._udp.example.test --cluster.rejoin-interval=2s
done
all3() { for n in n1 n2 n3; do [ "$(count_state $n participant)" -eq 3 ] || return 1; done; }
wait_until 30 all3 || fail "nodes did not find each other through SRV: n1 sees $(count_state n1 participant)"
wait_until 5 agree n1 n2 n3 || fail "owners disagree"
log "dnssrv+ join: 3 nodes found each other through the SRV record"
echo PASS
