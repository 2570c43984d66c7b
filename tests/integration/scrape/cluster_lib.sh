# Shared by the clustered-scrape tests that pick free ports (sourced):
#   . cluster_lib.sh NAME   (work dir /tmp/sts-NAME.XXXXXX)
# Sets work and pids; cleanup on exit kills pids (KEEP_WORK=1 keeps work);
# fail MSG prints the logs' tails; pick_ports NTARGETS NOTHER prints a free
# run of NTARGETS ports and NOTHER more free ports outside it, below
# PICK_PORT_MAX (60000).
work=$(mktemp -d /tmp/sts-$1.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	[ -n "${KEEP_WORK:-}" ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT
fail() {
	echo "FAIL: $*"
	for f in "$work"/*.log; do [ -f "$f" ] && { echo "--- $f"; grep -v "level=debug" "$f" | tail -15; }; done
	exit 1
}
# pick_ports NTARGETS NOTHER: a free run of NTARGETS loopback ports, then
# NOTHER more free ports outside it (TCP and UDP free)
pick_ports() {
	python3 - "$1" "$2" <<'PY'
import os, random, socket, sys
n, m = int(sys.argv[1]), int(sys.argv[2])
top = int(os.environ.get("PICK_PORT_MAX", "60000"))
def free(p):
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind(("127.0.0.1", p))
        except OSError:
            return False
        finally:
            s.close()
    return True
for _ in range(200):
    b = random.randrange(20000, top - n)
    if all(free(p) for p in range(b, b + n)):
        break
out = []
while len(out) < m:
    p = random.randrange(20000, top)
    if not b <= p < b + n and p not in out and free(p):
        out.append(p)
print(b, " ".join(map(str, out)))
PY
}

# target_keys HTTP_PORT COMPONENT_ID: "PORT KEY" lines of every target the
# component lists (check_requests.py's KEYS file)
target_keys() {
	curl -s "http://127.0.0.1:$1/api/v0/components/$2/targets" | python3 -c '
import json, sys
for t in json.load(sys.stdin)["targets"]:
    print(t["labels"]["instance"].rsplit(":", 1)[1], t["key"])'
}
