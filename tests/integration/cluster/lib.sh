# Helpers for the cluster integration tests. Each node is a real daemon,
# `$STARLING_BIN run --config F`, with no components; the tests see it only
# through its HTTP API (/api/v0/cluster/peers, /api/v0/cluster/owner, /metrics)
# and its exit status and log.
set -u
: "${STARLING_BIN:?STARLING_BIN must point at the starling daemon}"
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TMP=$(mktemp -d /tmp/starling-cluster-XXXXXX)
mkdir -p "$TMP/plugins"
PIDS=()
declare -A HTTP NS
PROBE_KEYS=500
# Under ASan+UBSan the daemon is several times slower: stretch the waits
# (never the assertions on what the cluster does).
SLOW=${CLUSTER_TEST_SLOW:-1}

cleanup() {
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	[ -n "${EXTRA_CLEANUP:-}" ] && eval "$EXTRA_CLEANUP"
	[ -n "${KEEP_TMP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; for f in "$TMP"/*.log; do echo "== $f"; tail -8 "$f"; done >&2; exit 1; }
log() { echo "[$(date +%T.%3N)] $*"; }

# nx NAME CMD...: run CMD where NAME's network is (its namespace, if any)
nx() {
	local ns=${NS[$1]:-}; shift
	if [ -n "$ns" ]; then ip netns exec "$ns" "$@"; else "$@"; fi
}

# start_node NAME GOSSIP_ADDR HTTP_ADDR [starling flags...]: sets PID_<NAME>.
# NAME is the node name (a --cluster.node-name flag overrides it) and the
# handle of its files ($TMP/NAME.log). The cluster basics come from the file,
# the rest from --cluster.* flags, so both paths are used. Set NS[NAME]
# first to run it in a namespace.
start_node() {
	local name=$1 bind=$2 http=$3; shift 3
	HTTP[$name]=$http
	cat >"$TMP/$name.cfg" <<CFG
plugins_dir = "$TMP/plugins";
state_dir = "$TMP/$name.state";
server = { http_listen_addr = "$http"; };
cluster = { enabled = true; node_name = "$name"; bind = "$bind"; };
CFG
	# `ip netns exec` execs, so $! is the daemon's PID either way
	local pre=()
	[ -n "${NS[$name]:-}" ] && pre=(ip netns exec "${NS[$name]}")
	"${pre[@]}" "$STARLING_BIN" run --config "$TMP/$name.cfg" "$@" >>"$TMP/$name.log" 2>&1 &
	local pid=$!
	PIDS+=("$pid")
	eval "PID_${name//-/_}=$pid"
}

# peer_states NAME: "member state" lines from NAME's view
peer_states() { nx "$1" python3 "$HERE/probe.py" peers "${HTTP[$1]}"; }
state_of() { peer_states "$1" | awk -v m="$2" '$1 == m { print $2 }'; }
count_state() { peer_states "$1" | awk -v s="$2" '$2 == s' | wc -l; }

# owner_map NAME: "key owner" for the $PROBE_KEYS probe keys in one epoch
owner_map() { nx "$1" python3 "$HERE/probe.py" owners "${HTTP[$1]}" $PROBE_KEYS; }
# owners NAME: "owner count" lines, sorted
owners() { owner_map "$1" | awk '{ c[$2]++ } END { for (o in c) print o, c[o] }' | sort; }

# agree NODES...: every probe key has exactly one owner, the same on every
# node, and every owner is one of NODES (so, alive in their view)
agree() {
	local ref n m
	ref=$(owner_map "$1")
	[ "$(echo "$ref" | awk 'NF == 2' | wc -l)" -eq $PROBE_KEYS ] || return 1
	for n in "$@"; do
		m=$(owner_map "$n")
		[ "$m" = "$ref" ] || return 1
	done
	for m in $(echo "$ref" | awk '{ print $2 }' | sort -u); do
		[[ " $* " == *" $m "* ]] || return 1
	done
}

# sample_keys NAME OWNER: up to 20 probe keys OWNER owns in NAME's view
sample_keys() { owner_map "$1" | awk -v o="$2" '$2 == o { print $1 }' | head -20; }
# keys_moved OLD "KEYS" NODES...: every node answers an owner other than OLD
# for every one of KEYS
keys_moved() {
	local old=$1 keys=$2 n; shift 2
	for n in "$@"; do
		nx "$n" python3 "$HERE/probe.py" owner-of "${HTTP[$n]}" $keys |
			awk -v old="$old" -v want="$(echo "$keys" | wc -l)" \
				'NF == 2 && $2 != old && $2 != "-" { k++ } END { exit k != want }' || return 1
	done
}

metrics() { nx "$1" curl -sf "http://${HTTP[$1]}/metrics"; }
ready() { nx "$1" curl -sf -o /dev/null "http://${HTTP[$1]}/-/ready"; }

# wait_until TIMEOUT_S CMD...: poll every 100 ms; returns 1 on timeout.
# TIMEOUT_S is multiplied by $SLOW under sanitizers.
wait_until() {
	local deadline=$(( $(date +%s%N) / 1000000 + $1 * 1000 * SLOW )); shift
	while :; do
		"$@" && return 0
		[ $(( $(date +%s%N) / 1000000 )) -ge $deadline ] && return 1
		sleep 0.1
	done
}

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# wait_exit PID TIMEOUT_S: wait for a child to exit within the bound; its
# status in $EXIT_RC. Returns 1 if still running.
wait_exit() {
	local i
	for ((i = 0; i < $2 * 10 * SLOW; i++)); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$1" 2>/dev/null && return 1
	wait "$1"; EXIT_RC=$?
}
