# 5 Starling nodes on loopback: all see 5 participants and agree on owners;
# kill -9 one -> dead and its keys re-owned; restart -> rejoins; SIGTERM one
# -> its keys move at once (no suspicion wait). Ports 23001-23005.
. "$(dirname "$0")/lib.sh"
NODES="n1 n2 n3 n4 n5"
port() { echo $((23000 + ${1#n})); }
start() { start_node "$1" "127.0.0.1:$(port "$1")" --join 127.0.0.1:23001 --join 127.0.0.1:23002 --rejoin-ms 3000; }

for n in $NODES; do start "$n"; done

all_see() { # all_see COUNT STATE [nodes...]
	local c=$1 s=$2; shift 2
	for n in "$@"; do [ "$(count_state "$n" "$s")" -eq "$c" ] || return 1; done
}
agree() { # same owner table on every given node, covering all 1000 keys
	local ref; ref=$(owners "$1")
	[ -n "$ref" ] || return 1
	[ "$(echo "$ref" | awk '{ s += $2 } END { print s }')" -eq 1000 ] || return 1
	for n in "$@"; do [ "$(owners "$n")" = "$ref" ] || return 1; done
}

t0=$(now_ms)
wait_until 20 all_see 5 participant $NODES || fail "5 nodes did not converge to 5 participants"
log "converged: 5 participants on all 5 nodes in $(( $(now_ms) - t0 )) ms"
wait_until 5 agree $NODES || fail "nodes disagree on ownership"
[ "$(owners n1 | wc -l)" -eq 5 ] || fail "not every participant owns keys: $(owners n1)"
log "owners agree: $(owners n1 | tr '\n' ' ')"

# crash n5
kill -9 "$PID_n5"; t0=$(now_ms)
dead5() { for n in n1 n2 n3 n4; do [ "$(state_of "$n" n5)" = dead ] || return 1; done; }
wait_until 30 dead5 || fail "n5 not marked dead after kill -9"
log "n5 dead on n1-n4 after $(( $(now_ms) - t0 )) ms"
wait_until 5 agree n1 n2 n3 n4 || fail "survivors disagree after n5 died"
owners n1 | grep -q '^n5 ' && fail "n5 still owns keys"
[ "$(owners n1 | wc -l)" -eq 4 ] || fail "keys not re-owned by the 4 survivors"

# restart n5: rejoins as a participant
start n5; t0=$(now_ms)
wait_until 20 all_see 5 participant $NODES || fail "restarted n5 did not rejoin"
log "n5 rejoined in $(( $(now_ms) - t0 )) ms"
wait_until 5 agree $NODES || fail "disagreement after rejoin"

# graceful: SIGTERM n4 -> terminating/left, keys move without suspicion
kill -TERM "$PID_n4"; t0=$(now_ms)
gone4() { for n in n1 n2 n3 n5; do owners "$n" | grep -q '^n4 ' && return 1; [ "$(owners "$n" | wc -l)" -eq 4 ] || return 1; done; }
wait_until 10 gone4 || fail "n4's keys did not move after SIGTERM"
dt=$(( $(now_ms) - t0 ))
log "n4 keys moved ${dt} ms after SIGTERM"
[ "$dt" -lt 3000 ] || fail "graceful hand-off took ${dt} ms (suspicion would be ~4 s)"
left4() { for n in n1 n2 n3 n5; do s=$(state_of "$n" n4); [ "$s" = left ] || [ "$s" = terminating ] || return 1; done; }
wait_until 10 left4 || fail "n4 not seen as left"
wait "$PID_n4"; rc=$?
[ "$rc" -eq 0 ] || fail "n4 exited with $rc"
grep -q '^cluster_node_peers{state="participant"} 4' "$TMP/n1.metrics" || fail "metrics: $(grep peers "$TMP/n1.metrics")"
grep -q '^cluster_packets_dropped_total{reason="decrypt_failed"} 0' "$TMP/n1.metrics" || fail "metrics drops"
echo PASS
