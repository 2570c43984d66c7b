# Helpers for the cluster integration tests. Each node is one process of
# $NODE_BIN (tests/integration/cluster/cluster_node) writing a status file.
set -u
: "${NODE_BIN:?NODE_BIN must point at cluster_node}"
TMP=$(mktemp -d /tmp/starling-cluster-XXXXXX)
PIDS=()

cleanup() {
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	[ -n "${EXTRA_CLEANUP:-}" ] && eval "$EXTRA_CLEANUP"
	[ -n "${KEEP_TMP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; for f in "$TMP"/*.log; do echo "== $f"; tail -5 "$f"; done >&2; exit 1; }
log() { echo "[$(date +%T.%3N)] $*"; }

# start_node NAME BIND [args...]: sets PID_<NAME>
start_node() {
	local name=$1 bind=$2; shift 2
	"$NODE_BIN" --name "$name" --bind "$bind" --status "$TMP/$name.status" \
		--metrics "$TMP/$name.metrics" "$@" >>"$TMP/$name.log" 2>&1 &
	local pid=$!
	PIDS+=("$pid")
	eval "PID_${name//-/_}=$pid"
}

# peer_states NAME: "member state" lines from NAME's view
peer_states() {
	python3 - "$TMP/$1.status" <<'PY'
import json, sys
try:
    for line in open(sys.argv[1]):
        if line.startswith("peers "):
            for p in json.loads(line[6:]):
                print(p["name"], p["state"])
except (OSError, ValueError):
    pass
PY
}

# owners NAME: "owner count" lines (1000 probe keys), sorted
owners() { grep '^owner ' "$TMP/$1.status" 2>/dev/null | cut -d' ' -f2- | sort; }

state_of() { peer_states "$1" | awk -v m="$2" '$1 == m { print $2 }'; }

# wait_until TIMEOUT_S CMD...: poll every 100 ms; returns 1 on timeout
wait_until() {
	local deadline=$(( $(date +%s%N) / 1000000 + $1 * 1000 )); shift
	while :; do
		"$@" && return 0
		[ $(( $(date +%s%N) / 1000000 )) -ge $deadline ] && return 1
		sleep 0.1
	done
}

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

count_state() { peer_states "$1" | awk -v s="$2" '$2 == s' | wc -l; }
