#!/usr/bin/env bash
# Runs one integration test in a network namespace of its own, with only a
# loopback interface, so that two copies of the suite on one machine (or a
# developer's daemon on the same ports) never meet: every 127.0.0.0/8
# address and port the test uses is private to it.
#   isolate.sh COMMAND [ARGS...]
# As root the namespace is a plain `unshare --net`; otherwise an unprivileged
# user namespace maps the caller to root inside it. When neither is allowed
# (a locked-down container) the test exits 77 (skipped) rather than risking
# a port shared with another run, unless STARLING_NO_NETNS=1 asks to run it
# in the caller's namespace anyway.
set -u
if [ -n "${STARLING_IN_NETNS:-}" ] || [ "${STARLING_NO_NETNS:-0}" = 1 ]; then
	exec "$@"
fi
inner='ip link set lo up || exit 77; exec "$@"'
export STARLING_IN_NETNS=1
if unshare --net true 2>/dev/null; then
	exec unshare --net -- bash -c "$inner" isolate "$@"
fi
if unshare --user --map-root-user --net true 2>/dev/null; then
	exec unshare --user --map-root-user --net -- bash -c "$inner" isolate "$@"
fi
echo "SKIP: cannot create a network namespace (set STARLING_NO_NETNS=1 to run on the shared loopback)"
exit 77
