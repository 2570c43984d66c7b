# serf sees every graceful Starling leave as a leave, never a failure, during
# a rolling restart (issue 13): 3 serf agents + 4 Starling daemons, each
# daemon joined through one serf agent; each daemon in turn gets SIGTERM, and
# is started again once it is gone. serf marks a member "left" only after its
# leave intent (a serf user message) reached it before the member's dead
# message (serf/serf.go handleNodeLeave: leaving -> left, alive -> failed),
# and a member it holds as "leaving" turns alive again only on a join intent
# with a newer Lamport time (handleNodeJoinIntent; a newer alive message is
# only an update, handleNodeUpdate). Gossip alone reaches each agent with
# some probability only: this test used to fail about one run in four to
# eight, either way (an agent the leave intent missed logged a failure; an
# agent the dead message missed kept the restarted daemon "leaving"). The
# daemons now send both intents and the dead message straight to every
# member too, the dead message two gossip intervals after the leave intent
# (memberlist handles queued gossip last-in first-out, net.go getNextMessage).
# Ports 23161-23177.
. "$(dirname "$0")/lib.sh"
command -v serf >/dev/null || { echo "serf not installed: skipped"; exit 77; }
BASE=23160
for i in 1 2 3; do
	S[$i]=$((BASE + i)); R[$i]=$((BASE + 10 + i))
done
serf agent -node=s1 -bind=127.0.0.1:${S[1]} -rpc-addr=127.0.0.1:${R[1]} >"$TMP/s1.log" 2>&1 &
PIDS+=($!)
wait_until 10 serf members -rpc-addr=127.0.0.1:${R[1]} >/dev/null 2>&1 || fail "serf s1 did not start"
for i in 2 3; do
	serf agent -node=s$i -bind=127.0.0.1:${S[$i]} -rpc-addr=127.0.0.1:${R[$i]} \
		-retry-join=127.0.0.1:${S[1]} -retry-interval=1s >"$TMP/s$i.log" 2>&1 &
	PIDS+=($!)
done
start_daemon() { # start_daemon I: n<I> on BASE+3+I, joined through serf s<1+I%3>
	start_node n$1 127.0.0.1:$((BASE + 3 + $1)) 127.0.0.1:$((BASE + 13 + $1)) \
		--cluster.join=127.0.0.1:${S[$((1 + $1 % 3))]}
}
for i in 1 2 3 4; do start_daemon $i; done
serf_sees() { # serf_sees RPC NODE STATUS
	serf members -rpc-addr=127.0.0.1:$1 2>/dev/null | awk -v n="$2" -v s="$3" \
		'$1 == n && $3 == s { ok = 1 } END { exit !ok }'
}
all_alive() { # every serf agent sees n1..n4 alive
	local i n
	for i in 1 2 3; do
		for n in n1 n2 n3 n4; do serf_sees ${R[$i]} $n alive || return 1; done
	done
}
wait_until 60 all_alive || {
	for i in 1 2 3; do echo "-- seen by s$i"; serf members -rpc-addr=127.0.0.1:${R[$i]}; done
	fail "did not converge"
}
log "3 serf + 4 starling converged"
for i in 1 2 3 4; do
	pid_var=PID_n$i
	kill -TERM "${!pid_var}"
	wait_exit "${!pid_var}" 20 || fail "n$i still running 20 s after SIGTERM"
	start_daemon $i
	wait_until 30 all_alive || { serf members -rpc-addr=127.0.0.1:${R[1]}; fail "n$i did not come back"; }
	log "n$i restarted"
done
# serf logs each member event when it handles it, not when the daemon came
# back: wait until every serf logged all four departures (a fixed 2 s before)
departures() { grep -c 'EventMember\(Leave\|Failed\): n[1-4] ' "$TMP/s$1.log"; }
all_departures() { for i in 1 2 3; do [ "$(departures $i)" -ge 4 ] || return 1; done; }
wait_until 30 all_departures || log "not every serf logged 4 departures within 30 s"
bad=0
for i in 1 2 3; do
	left=$(grep -c 'EventMemberLeave: n[1-4] ' "$TMP/s$i.log")
	failed=$(grep -c 'EventMemberFailed: n[1-4] ' "$TMP/s$i.log")
	log "serf s$i: $left graceful Starling leaves seen as left, $failed as failed"
	[ "$left" -eq 4 ] && [ "$failed" -eq 0 ] || bad=1
done
[ $bad = 0 ] || { grep -h 'EventMember\(Leave\|Failed\)' "$TMP"/s*.log >&2; fail "serf saw a graceful leave as a failure"; }
relayed=0
for i in 1 2 3 4; do
	r=$(metrics n$i | awk '$1 == "cluster_serf_leave_intents_relayed_total" { print $2 }')
	relayed=$((relayed + ${r:-0}))
done
log "leave intents relayed by the restarted daemons: $relayed"
echo PASS
