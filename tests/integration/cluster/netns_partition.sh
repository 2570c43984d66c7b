# A partition made with network namespaces heals through rejoin: 3 nodes in
# namespaces stc<PID>_c1..3 (127.100.23.1-3) on a bridge in stc<PID>_csw; cutting one
# link splits the cluster, restoring it heals it (rejoin every 3 s).
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" -eq 0 ] || { echo "needs root: skipped"; exit 77; }
# Named namespaces are global: the names carry this run's PID so that two
# copies of the suite never share one (veth names live in the test's own
# namespace, see tests/integration/isolate.sh).
P=stc$$_
SW=${P}csw
teardown() {
	for i in 1 2 3; do ip netns del ${P}c$i 2>/dev/null; done
	ip netns del $SW 2>/dev/null
}
teardown
EXTRA_CLEANUP=teardown
ip netns add $SW || { echo "cannot create namespaces: skipped"; exit 77; }
ip -n $SW link add br0 type bridge && ip -n $SW link set br0 up || fail "bridge"
for i in 1 2 3; do
	ns=${P}c$i
	ip netns add $ns || fail "netns $ns"
	ip link add stcch$i type veth peer name stccs$i || fail "veth $i"
	ip link set stcch$i netns $ns && ip link set stccs$i netns $SW || fail "move veth $i"
	ip -n $SW link set stccs$i master br0 && ip -n $SW link set stccs$i up || fail "attach $i"
	ip netns exec $ns sysctl -qw net.ipv4.conf.all.route_localnet=1 net.ipv4.conf.stcch$i.route_localnet=1
	ip -n $ns link set lo up
	ip -n $ns route del local 127.0.0.0/8 dev lo table local
	ip -n $ns addr add 127.100.23.$i/24 dev stcch$i && ip -n $ns link set stcch$i up || fail "addr $i"
done

# HTTP on each node's own address inside its namespace (probed from there)
for i in 1 2 3; do
	NS[p$i]=${P}c$i
	start_node p$i 127.100.23.$i:23201 127.100.23.$i:23211 \
		--cluster.join=127.100.23.1:23201 --cluster.join=127.100.23.2:23201 \
		--cluster.rejoin-interval=3s
done

all3() { for n in p1 p2 p3; do [ "$(count_state $n participant)" -eq 3 ] || return 1; done; }
wait_until 20 all3 || fail "3 namespaced nodes did not converge"
log "3 nodes in namespaces converged"

ip -n $SW link set stccs3 down; t0=$(now_ms)
split() {
	[ "$(state_of p1 p3)" = dead ] && [ "$(state_of p2 p3)" = dead ] &&
	[ "$(state_of p3 p1)" = dead ] && [ "$(state_of p3 p2)" = dead ]
}
wait_until 40 split || fail "partition not detected: p1 sees p3 $(state_of p1 p3), p3 sees p1 $(state_of p3 p1)"
log "partition detected on both sides after $(( $(now_ms) - t0 )) ms"
[ "$(owners p3)" = "p3 $PROBE_KEYS" ] || fail "p3 alone should own everything: $(owners p3)"

# p3's rejoins fail while it is cut off, and it says so (with the addresses)
wait_until 10 grep -qF 'msg="join: none of 2 peers answered (addresses: 127.100.23.1:23201 127.100.23.2:23201)' "$TMP/p3.log" ||
	fail "p3 did not log its failed rejoin"

ip -n $SW link set stccs3 up; t0=$(now_ms)
wait_until 40 all3 || fail "partition did not heal"
log "healed through rejoin after $(( $(now_ms) - t0 )) ms"
wait_until 5 agree p1 p2 p3 || fail "owners disagree after heal"
[ "$(owners p1 | wc -l)" -eq 3 ] || fail "not all 3 own keys after heal: $(owners p1)"
echo PASS
