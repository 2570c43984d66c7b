# 5 Starling daemons on loopback: all see 5 participants and agree on owners;
# kill -9 one -> dead and its keys re-owned; restart -> rejoins; SIGTERM one
# -> its keys move at once (no suspicion wait); a 6th daemon with a name
# already in use is refused with a clear error. Gossip 23001-23006, HTTP
# 23051-23056.
. "$(dirname "$0")/lib.sh"
NODES="n1 n2 n3 n4 n5"
start() {
	local i=${1#n}
	start_node "$1" "127.0.0.1:$((23000 + i))" "127.0.0.1:$((23050 + i))" \
		--cluster.join=127.0.0.1:23001 --cluster.join=127.0.0.1:23002 \
		--cluster.rejoin-interval=3s
}

for n in $NODES; do start "$n"; done

all_see() { # all_see COUNT STATE [nodes...]
	local c=$1 s=$2; shift 2
	for n in "$@"; do [ "$(count_state "$n" "$s")" -eq "$c" ] || return 1; done
}

t0=$(now_ms)
wait_until 20 all_see 5 participant $NODES || fail "5 nodes did not converge to 5 participants"
log "converged: 5 participants on all 5 nodes in $(( $(now_ms) - t0 )) ms"
wait_until 5 agree $NODES || fail "nodes disagree on ownership"
[ "$(owners n1 | wc -l)" -eq 5 ] || fail "not every participant owns keys: $(owners n1)"
log "owners agree: $(owners n1 | tr '\n' ' ')"
metrics n1 | grep -q '^cluster_node_peers{state="participant"} 5' ||
	fail "metrics: $(metrics n1 | grep cluster_node_peers)"

# a 6th daemon calling itself "n3" (flag over file) is refused with a clear
# error, quickly, and changes nothing
start_node n6 127.0.0.1:23006 127.0.0.1:23056 --cluster.join=127.0.0.1:23001 \
	--cluster.node-name=n3
wait_exit "$PID_n6" 15 || fail "duplicate node name: daemon still running"
[ "$EXIT_RC" -ne 0 ] || fail "duplicate node name: exit status 0"
grep -q 'node name \\"n3\\" is already used by the member at 127.0.0.1:23003' "$TMP/n6.log" ||
	fail "duplicate node name: no clear error"
log "duplicate n3 refused (exit $EXIT_RC): $(grep -o 'msg=.*' "$TMP/n6.log" | tail -1)"
wait_until 5 agree $NODES || fail "ownership changed after a refused duplicate"
[ "$(state_of n1 n3)" = participant ] || fail "the real n3 is $(state_of n1 n3)"

# crash n5
kill -9 "$PID_n5"; t0=$(now_ms); wait "$PID_n5" 2>/dev/null
dead5() { for n in n1 n2 n3 n4; do [ "$(state_of "$n" n5)" = dead ] || return 1; done; }
wait_until 30 dead5 || fail "n5 not marked dead after kill -9: $(for n in n1 n2 n3 n4; do echo "$n:"; peer_states $n; done)"
log "n5 dead on n1-n4 after $(( $(now_ms) - t0 )) ms (kill -9)"
wait_until 5 agree n1 n2 n3 n4 || fail "survivors disagree after n5 died: $(owners n1)"
[ "$(owners n1 | wc -l)" -eq 4 ] || fail "keys not re-owned by the 4 survivors: $(owners n1)"
log "keys re-owned by survivors $(( $(now_ms) - t0 )) ms after kill -9: $(owners n1 | tr '\n' ' ')"

# restart n5: rejoins as a participant
start n5; t0=$(now_ms)
wait_until 20 all_see 5 participant $NODES || fail "restarted n5 did not rejoin"
log "n5 rejoined in $(( $(now_ms) - t0 )) ms"
wait_until 5 agree $NODES || fail "disagreement after rejoin"

# graceful: SIGTERM n4 -> its keys move without suspicion. Watch a sample of
# n4's own keys on the 4 others (cheap enough to poll every 100 ms).
keys4=$(owner_map n1 | awk '$2 == "n4" { print $1 }' | head -20)
[ -n "$keys4" ] || fail "n4 owns no probe key"
moved4() {
	local n
	for n in n1 n2 n3 n5; do
		python3 "$HERE/probe.py" owner-of "${HTTP[$n]}" $keys4 |
			awk 'NF == 2 && $2 != "n4" { k++ } END { exit k != '"$(echo "$keys4" | wc -l)"' }' || return 1
	done
}
kill -TERM "$PID_n4"; t0=$(now_ms)
wait_until 10 moved4 || fail "n4's keys did not move after SIGTERM"
dt=$(( $(now_ms) - t0 ))
log "n4 keys moved ${dt} ms after SIGTERM"
[ "$dt" -lt $((3000 * SLOW)) ] || fail "graceful hand-off took ${dt} ms (suspicion would be ~4 s)"
wait_until 5 agree n1 n2 n3 n5 || fail "disagreement after n4 left: $(owners n1)"
[ "$(owners n1 | wc -l)" -eq 4 ] || fail "keys not spread over the 4 others: $(owners n1)"
left4() { for n in n1 n2 n3 n5; do s=$(state_of "$n" n4); [ "$s" = left ] || [ "$s" = terminating ] || return 1; done; }
wait_until 10 left4 || fail "n4 not seen as left: $(state_of n1 n4)"
wait_exit "$PID_n4" 15 || fail "n4 still running 15 s after SIGTERM"
[ "$EXIT_RC" -eq 0 ] || fail "n4 exited with $EXIT_RC"
m=$(metrics n1)
echo "$m" | grep -q '^cluster_node_peers{state="participant"} 4' || fail "metrics: $(echo "$m" | grep peers)"
echo "$m" | grep -q '^cluster_packets_dropped_total{reason="decrypt_failed"} 0' || fail "metrics drops"
echo PASS
