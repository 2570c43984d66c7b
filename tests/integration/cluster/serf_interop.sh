# Interop with Debian's serf agent (memberlist 0.2.2): 3 serf agents + 2
# Starling daemons, plain or with -encrypt (arg "encrypt"). Ports 23101-23116
# (plain) and 23121-23136 (encrypt).
#
# Failure detection is compared like for like: serf s1 timing a killed serf
# agent (s2) and then a killed Starling node (n2). Both kills leave at least
# two live peers to confirm s1's suspicion (Lifeguard k = 2 while 5 members
# are listed; a dead member stays listed for 30 s), so a Starling node whose
# own suspicion serf did not count would show as ~12-14 s against ~5-6 s.
. "$(dirname "$0")/lib.sh"
command -v serf >/dev/null || { echo "serf not installed: skipped"; exit 77; }
MODE=${1:-plain}
KEYARGS=(); SERFKEY=()
if [ "$MODE" = encrypt ]; then
	KEY=$(serf keygen)
	KEYARGS=(--cluster.secret-keys="$KEY"); SERFKEY=(-encrypt="$KEY")
	BASE=23120
else
	BASE=23100
fi
S1=$((BASE + 1)); S2=$((BASE + 2)); N1=$((BASE + 3)); N2=$((BASE + 4))
S3=$((BASE + 5))
R1=$((BASE + 11)); R2=$((BASE + 12)); R3=$((BASE + 13)); H1=$((BASE + 15)); H2=$((BASE + 16))

serf agent -node=s1 -bind=127.0.0.1:$S1 -rpc-addr=127.0.0.1:$R1 -tag role=web "${SERFKEY[@]}" >"$TMP/s1.log" 2>&1 &
PIDS+=($!); PID_s1=$!
wait_until 10 serf members -rpc-addr=127.0.0.1:$R1 >/dev/null 2>&1 || fail "serf s1 did not start"
serf agent -node=s2 -bind=127.0.0.1:$S2 -rpc-addr=127.0.0.1:$R2 -retry-join=127.0.0.1:$S1 -retry-interval=1s "${SERFKEY[@]}" >"$TMP/s2.log" 2>&1 &
PIDS+=($!); PID_s2=$!
serf agent -node=s3 -bind=127.0.0.1:$S3 -rpc-addr=127.0.0.1:$R3 -retry-join=127.0.0.1:$S1 -retry-interval=1s "${SERFKEY[@]}" >"$TMP/s3.log" 2>&1 &
PIDS+=($!)
start_node n1 127.0.0.1:$N1 127.0.0.1:$H1 --cluster.join=127.0.0.1:$S1 "${KEYARGS[@]}"
start_node n2 127.0.0.1:$N2 127.0.0.1:$H2 --cluster.join=127.0.0.1:$S2 "${KEYARGS[@]}"

serf_sees() { # serf_sees RPC NODE STATUS [tag]
	serf members -rpc-addr=127.0.0.1:$1 2>/dev/null | awk -v n="$2" -v s="$3" -v t="${4:-}" \
		'$1 == n && $3 == s && index($0, t) { ok = 1 } END { exit !ok }'
}
all_five() {
	for r in $R1 $R2 $R3; do
		serf_sees $r n1 alive starling_state=participant || return 1
		serf_sees $r n2 alive starling_state=participant || return 1
	done
	for n in n1 n2; do
		[ "$(state_of $n s1)" = viewer ] && [ "$(state_of $n s2)" = viewer ] &&
			[ "$(state_of $n s3)" = viewer ] || return 1
		[ "$(state_of $n n1)" = participant ] && [ "$(state_of $n n2)" = participant ] || return 1
	done
}
t0=$(now_ms)
wait_until 20 all_five || { serf members -rpc-addr=127.0.0.1:$R1; peer_states n1; fail "serf+starling did not converge ($MODE)"; }
log "$MODE: 3 serf + 2 starling converged in $(( $(now_ms) - t0 )) ms"
serf members -rpc-addr=127.0.0.1:$R1
# the same view in /metrics; serf's packets (compressed, CRC'd, maybe
# encrypted) decode without a single drop
m=$(metrics n1)
for want in 'cluster_node_peers{state="viewer"} 3' 'cluster_node_peers{state="participant"} 2' \
	'cluster_packets_dropped_total{reason="decrypt_failed"} 0' \
	'cluster_packets_dropped_total{reason="unencrypted"} 0' \
	'cluster_packets_dropped_total{reason="malformed"} 0' \
	'cluster_packets_dropped_total{reason="bad_checksum"} 0' \
	'cluster_packets_dropped_total{reason="bad_compression"} 0'; do
	echo "$m" | grep -qxF "$want" || fail "n1 metrics: want $want, have: $(echo "$m" | grep -F "${want% *}")"
done
echo "$m" | awk '$1 == "cluster_transport_rx_packets_total" && $2 > 0 { ok = 1 } END { exit !ok }' ||
	fail "n1 received no packets: $(echo "$m" | grep rx_packets)"

# serf agents are viewers: they own nothing; the two daemons split the keys
# (a node that joins owns from the hand-over time it announces,
# cluster.handover_delay ahead: 2 s with the lan profile, so the split is
# waited for, not read once right after convergence)
both_own() { agree n1 n2 && [ "$(owners n1 | wc -l)" -eq 2 ]; }
wait_until 15 both_own || fail "both daemons should own keys: n1 says $(owners n1 | tr '\n' ' '), n2 says $(owners n2 | tr '\n' ' ')"

# a killed serf agent is detected by Starling, and by serf s1 (the reference)
kill -9 "$PID_s2"; t0=$(now_ms); wait "$PID_s2" 2>/dev/null
T_SERF= T_STAR=
s2gone() {
	[ -z "$T_SERF" ] && serf_sees $R1 s2 failed && T_SERF=$(( $(now_ms) - t0 ))
	[ -z "$T_STAR" ] && [ "$(state_of n1 s2)" = dead ] && [ "$(state_of n2 s2)" = dead ] &&
		T_STAR=$(( $(now_ms) - t0 ))
	[ -n "$T_SERF" ] && [ -n "$T_STAR" ]
}
wait_until 30 s2gone || fail "killed serf agent not detected: serf ${T_SERF:-never}, starling ${T_STAR:-never} ms"
log "killed serf agent: serf s1 marked it failed after $T_SERF ms, starling marked it dead after $T_STAR ms"
# the reverse direction: Starling counts serf's suspicions as confirmations
[ "$T_STAR" -le $(( T_SERF + 3000 )) ] ||
	fail "starling took $T_STAR ms to mark a killed serf agent dead, serf s1 $T_SERF ms"

# a killed Starling node is detected by serf as fast as a killed serf agent:
# serf must count n1's independent suspicion of n2 as a confirmation
kill -9 "$PID_n2"; t0=$(now_ms); wait "$PID_n2" 2>/dev/null
wait_until 30 serf_sees $R1 n2 failed || fail "serf did not detect killed starling node"
T_N2=$(( $(now_ms) - t0 ))
log "killed starling node: serf s1 marked it failed after $T_N2 ms (killed serf agent: $T_SERF ms)"
if [ "$T_N2" -gt $(( T_SERF + 3000 )) ]; then
	grep -h 'Marking' "$TMP"/s*.log >&2
	fail "serf took $T_N2 ms to fail a killed starling node, $T_SERF ms for a serf agent"
fi
[ "$(state_of n1 n2)" = dead ] || wait_until 10 eval '[ "$(state_of n1 n2)" = dead ]' || fail "n1 did not see n2 dead"
# a graceful Starling leave shows as "left" in serf (leave intent + dead)
kill -TERM "$PID_n1"; t0=$(now_ms)
wait_until 15 serf_sees $R1 n1 left || { serf members -rpc-addr=127.0.0.1:$R1; fail "serf did not see n1 leave"; }
log "serf saw n1 leave gracefully after $(( $(now_ms) - t0 )) ms"
wait_exit "$PID_n1" 15 || fail "n1 still running 15 s after SIGTERM"
[ "$EXIT_RC" -eq 0 ] || fail "n1 exited with $EXIT_RC after SIGTERM"
# serf must never have choked on what we sent (dead peers' dial errors are
# expected and not matched here)
BAD='decode|[Dd]ecrypt|checksum|[Ii]nvalid|not supported|[Uu]nsupported|incompatible'
if grep -E "$BAD" "$TMP/s1.log" "$TMP/s2.log" "$TMP/s3.log"; then
	fail "serf rejected some of our packets"
fi
echo PASS
