#!/bin/bash
# A REAL full disk under prometheus.remote_write (issue 14, fault 1): the
# daemon's state_dir is a 1 MiB tmpfs mounted in this test's own mount
# namespace (`unshare -m`, inside the network namespace of isolate.sh), the
# receiver is down, and test.producer sends ~30k samples/s. The segment
# writes fail with ENOSPC; the batches that could not be written count
# against queue_config.max_buffer_size (2 MiB), the oldest are dropped and
# counted, the component is unhealthy naming the disk, and the daemon's
# memory stays bounded. Then the tmpfs is grown (remount): the disk takes
# writes again and the component is healthy. (The unit test
# disk_full_bounded_memory simulates the failure; this one is the kernel's.)
# Needs root or an unprivileged user namespace to mount; exit 77 if a mount
# is not permitted.
# usage: disk_full_tmpfs.sh STARLING PLUGIN_SO PRODUCER_SO
set -u
STARLING=$1
PLUGIN=$2
PRODUCER=$3
. "$(dirname "$0")/mntns.sh"
enter_mount_namespace "$0" "$@"
WORK=$(mktemp -d /tmp/starling-rw-full-XXXXXX)
ST_PID=
cleanup() {
	[ -n "$ST_PID" ] && kill -KILL "$ST_PID" 2>/dev/null && wait "$ST_PID" 2>/dev/null
	umount "$WORK/state" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT
fail() {
	echo "FAIL: $*"
	echo "--- starling log (tail)"
	tail -n 20 "$WORK/starling.log"
	exit 1
}
mkdir -p "$WORK/state" "$WORK/plugins"
if ! mount -t tmpfs -o size=1m,mode=0755 starling-full "$WORK/state" 2>"$WORK/mount.err"; then
	echo "SKIP: cannot mount a tmpfs here: $(cat "$WORK/mount.err")"
	exit 77
fi
cp "$PLUGIN" "$PRODUCER" "$WORK/plugins/"
chmod 755 "$WORK" "$WORK/plugins"
chmod 644 "$WORK"/plugins/*.so
ST=127.0.0.1:24300
cat >"$WORK/starling.cfg" <<EOF
server = { http_listen_addr = "$ST"; };
components = (
  { type = "test.producer"; name = "p"; interval = "2ms"; series = 64;
    forward_to = [ "prometheus.remote_write.rw" ]; },
  { type = "prometheus.remote_write"; name = "rw";
    endpoint = ( { url = "http://127.0.0.1:9/api/v1/write"; name = "down";
      queue_config = { max_buffer_size = "2MiB"; batch_send_deadline = "100ms";
                       max_backoff = "1s"; }; } ); }
);
EOF
"$STARLING" run --config "$WORK/starling.cfg" --plugins-dir "$WORK/plugins" \
	--state-dir "$WORK/state" >"$WORK/starling.log" 2>&1 &
ST_PID=$!
for _ in $(seq 1 300); do
	curl -sf "http://$ST/-/ready" >/dev/null 2>&1 && break
	kill -0 "$ST_PID" 2>/dev/null || fail "starling exited"
	sleep 0.05
done
curl -sf "http://$ST/-/ready" >/dev/null || fail "starling not ready"

metric() { # NAME -> value (first sample) or 0
	curl -s -m 10 "http://$ST/metrics" | awk -v m="$1" '$1 == m || index($1, m "{") == 1 {print $2; exit}' |
		sed 's/^$/0/'
}
health() { # health word and message of the remote_write component
	curl -s -m 10 "http://$ST/api/v0/components" | python3 -c '
import json, sys
for c in json.load(sys.stdin):
    if c["id"] == "prometheus.remote_write.rw":
        print(c["health"], c["message"])'
}
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$ST_PID/status"; }

# 1. The tmpfs fills: ENOSPC, unhealthy naming the disk.
seen_unhealthy=
for _ in $(seq 1 600); do
	h=$(health)
	case "$h" in
	*"cannot write to the disk buffer"*"No space left on device"*) seen_unhealthy=$h; break ;;
	esac
	sleep 0.05
done
[ -n "$seen_unhealthy" ] || fail "never unhealthy with ENOSPC within 30 s (last: $h; df: $(df -k "$WORK/state" | tail -1))"
echo "ok: tmpfs full -> $seen_unhealthy"
avail=$(df -k --output=avail "$WORK/state" | tail -1 | tr -d ' ')
[ "$avail" -lt 64 ] || echo "note: $avail KiB free on the tmpfs when first unhealthy"

# 2. Bounded: once the buffer (disk + memory) reaches max_buffer_size, the
# oldest batches are dropped and counted; for the next 5 s the memory buffer
# stays within max_buffer_size (plus one batch), drops grow, RSS is bounded.
for _ in $(seq 1 600); do
	d0=$(metric prometheus_remote_storage_samples_dropped_total)
	[ "${d0%.*}" != 0 ] && break
	sleep 0.1
done
[ "${d0%.*}" != 0 ] || fail "nothing dropped within 60 s of a full disk"
max_mem=0 max_rss=0
for _ in $(seq 1 20); do
	m=$(metric starling_remote_write_memory_buffer_bytes | cut -d. -f1)
	r=$(rss_kb)
	((m > max_mem)) && max_mem=$m
	((r > max_rss)) && max_rss=$r
	sleep 0.25
done
d1=$(metric prometheus_remote_storage_samples_dropped_total)
in=$(metric prometheus_remote_storage_samples_in_total)
echo "memory buffer max ${max_mem} B, RSS max ${max_rss} kB, dropped ${d0} -> ${d1} of ${in} accepted"
((max_mem > 0)) || fail "nothing kept in memory: the disk never failed?"
((max_mem <= 2 * 1048576 + 262144)) || fail "memory buffer ${max_mem} B over max_buffer_size 2 MiB"
python3 -c "import sys; sys.exit(0 if float('$d1') > float('$d0') > 0 else 1)" ||
	fail "drops not counted (dropped_total ${d0} -> ${d1})"
# (under ASan, freed memory sits in its quarantine: RSS says nothing there)
if ! ldd "$STARLING" 2>/dev/null | grep -q libasan; then
	((max_rss < 80000)) || fail "RSS ${max_rss} kB: memory not bounded"
fi
grep -q 'cannot write to the disk buffer' "$WORK/starling.log" || fail "no error line"

# 3. Room again (the tmpfs grown to 64 MiB): writes succeed, healthy.
mount -o remount,size=64m "$WORK/state" || fail "remount failed"
for _ in $(seq 1 600); do
	h=$(health)
	case "$h" in healthy*) break ;; esac
	sleep 0.05
done
case "$h" in healthy*) ;; *) fail "not healthy after the disk has room again: $h" ;; esac
grep -q 'disk buffer writable again' "$WORK/starling.log" || fail "no recovery line"
# every new batch goes to disk now; those kept in memory are the oldest and
# are dropped first as the buffer reaches max_buffer_size
for _ in $(seq 1 600); do
	[ "$(metric starling_remote_write_memory_buffer_bytes | cut -d. -f1)" = 0 ] && break
	sleep 0.05
done
m=$(metric starling_remote_write_memory_buffer_bytes)
[ "${m%.*}" = 0 ] || fail "memory buffer still ${m} B with room on the disk"
h=$(health)
case "$h" in healthy*) ;; *) fail "unhealthy again with room on the disk: $h" ;; esac
echo "ok: disk has room again -> healthy, memory buffer empty"

kill -TERM "$ST_PID"
wait "$ST_PID"
rc=$?
ST_PID=
[ "$rc" = 0 ] || fail "exit status $rc after SIGTERM"
echo "PASS"
