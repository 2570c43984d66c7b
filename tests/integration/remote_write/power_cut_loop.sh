#!/bin/bash
# A power cut under prometheus.remote_write's disk queue, on a real block
# device (issue 14, item 4): for each queue_config.fsync mode, state_dir is
# an ext4 filesystem on a loop device (in this test's own mount namespace);
# the daemon queues samples with the receiver down, the producer is removed
# (reload) and the queue settles; then the power is cut: the loop device's
# backing file is copied as it stands (what the filesystem has written to
# the device: fsynced data, plus whatever writeback happened to flush; the
# dirty page cache is lost, as in a power cut), the daemon is SIGKILLed and
# the device detached. The copy is attached again (ext4 replays its
# journal) and a new daemon recovers the queue.
#   always:  every queued sample is recovered (asserted);
#   segment: the sealed segments at least (asserted when more files than
#            the 4 shards' open ones existed);
#   never:   printed (what it keeps depends on when the kernel wrote back);
#   every mode: never more than was queued, no crash at recovery.
# Exit 77 where a mount namespace, a loop device or mkfs.ext4 is missing.
# (The unit test fsync_power_cut cuts files back with a test hook instead.)
# usage: power_cut_loop.sh STARLING PLUGIN_SO PRODUCER_SO
set -u
STARLING=$1
PLUGIN=$2
PRODUCER=$3
. "$(dirname "$0")/mntns.sh"
enter_mount_namespace "$0" "$@"
for p in losetup mkfs.ext4; do
	command -v $p >/dev/null || { echo "SKIP: $p not installed"; exit 77; }
done
[ -e /dev/loop-control ] || { echo "SKIP: no /dev/loop-control (loop devices unavailable)"; exit 77; }
WORK=$(mktemp -d /tmp/starling-rw-cut-XXXXXX)
ST_PID=
DEVS=()
cleanup() {
	[ -n "$ST_PID" ] && kill -KILL "$ST_PID" 2>/dev/null && wait "$ST_PID" 2>/dev/null
	for m in "$WORK"/mnt-*; do umount "$m" 2>/dev/null; done
	for d in "${DEVS[@]}"; do losetup -d "$d" 2>/dev/null; done
	rm -rf "$WORK"
}
trap cleanup EXIT
fail() {
	echo "FAIL: $*"
	echo "--- starling log (tail)"
	tail -n 20 "$WORK"/starling-*.log 2>/dev/null
	exit 1
}
mkdir -p "$WORK/plugins"
cp "$PLUGIN" "$PRODUCER" "$WORK/plugins/"
chmod 755 "$WORK" "$WORK/plugins"
chmod 644 "$WORK"/plugins/*.so
ST=127.0.0.1:24310

attach() { # IMAGE MOUNTPOINT: loop device + mount; sets DEV
	DEV=$(losetup -f --show "$1" 2>"$WORK/losetup.err") ||
		{ echo "SKIP: cannot attach a loop device: $(cat "$WORK/losetup.err")"; exit 77; }
	DEVS+=("$DEV")
	mkdir -p "$2"
	# commit=60: the journal is not committed every 5 s, so what is on the
	# device at the cut is what fsync put there (and the flusher's writeback)
	mount -o commit=60 "$DEV" "$2" 2>"$WORK/mount.err" ||
		{ echo "SKIP: cannot mount ext4 on $DEV: $(cat "$WORK/mount.err")"; exit 77; }
}
write_cfg() { # MODE WITH_PRODUCER
	{
		echo "server = { http_listen_addr = \"$ST\"; };"
		echo 'components = ('
		[ "$2" = 1 ] && echo "  { type = \"test.producer\"; name = \"p\"; interval = \"2ms\"; series = 32;
    run = \"$1\"; forward_to = [ \"prometheus.remote_write.rw\" ]; },"
		echo "  { type = \"prometheus.remote_write\"; name = \"rw\";
    endpoint = ( { url = \"http://127.0.0.1:9/api/v1/write\"; name = \"down\";
      queue_config = { fsync = \"$1\"; max_buffer_size = \"1MiB\"; batch_send_deadline = \"200ms\";
                       max_backoff = \"1s\"; }; } ); }"
		echo ');'
	} >"$WORK/starling.cfg"
}
start_st() { # STATE_DIR LOGNAME
	"$STARLING" run --config "$WORK/starling.cfg" --plugins-dir "$WORK/plugins" \
		--state-dir "$1" >"$WORK/starling-$2.log" 2>&1 &
	ST_PID=$!
	for _ in $(seq 1 300); do
		curl -sf "http://$ST/-/ready" >/dev/null 2>&1 && return 0
		kill -0 "$ST_PID" 2>/dev/null || fail "starling exited"
		sleep 0.05
	done
	fail "starling not ready"
}
metric() { # NAME -> value (first sample) or 0
	curl -s -m 10 "http://$ST/metrics" | awk -v m="$1" '$1 == m || index($1, m "{") == 1 {print $2; exit}' |
		sed 's/^$/0/'
}

declare -A queued recovered files
for mode in always segment never; do
	truncate -s 64M "$WORK/$mode.img"
	mkfs.ext4 -q -F "$WORK/$mode.img" >/dev/null 2>&1 || { echo "SKIP: mkfs.ext4 failed"; exit 77; }
	attach "$WORK/$mode.img" "$WORK/mnt-$mode"
	dev=$DEV
	write_cfg $mode 1
	start_st "$WORK/mnt-$mode" "$mode"
	# queue until some segments (1 MiB / 8 = 128 KiB each) are sealed
	for _ in $(seq 1 300); do
		[ "$(metric prometheus_remote_storage_samples_in_total | cut -d. -f1)" -ge 60000 ] && break
		sleep 0.05
	done
	write_cfg $mode 0
	code=$(curl -s -m 60 -o "$WORK/reply" -w '%{http_code}' -X POST "http://$ST/-/reload")
	[ "$code" = 200 ] || fail "reload removing the producer answered $code: $(cat "$WORK/reply")"
	# settled: the last batch is cut (batch_send_deadline) and the count holds
	prev=-1
	for _ in $(seq 1 100); do
		q=$(metric prometheus_remote_storage_samples_pending | cut -d. -f1)
		[ "$q" = "$prev" ] && [ "$(metric starling_remote_write_memory_buffer_bytes | cut -d. -f1)" = 0 ] && break
		prev=$q
		sleep 0.5
	done
	[ "$(metric prometheus_remote_storage_samples_dropped_total | cut -d. -f1)" = 0 ] || fail "$mode: samples dropped before the cut"
	queued[$mode]=$q
	files[$mode]=$(find "$WORK/mnt-$mode" -name '*.seg' | wc -l)
	# the power cut: the device as it stands, then the daemon and the device go
	cp --sparse=always "$WORK/$mode.img" "$WORK/$mode-cut.img"
	kill -KILL "$ST_PID"
	wait "$ST_PID" 2>/dev/null
	ST_PID=
	umount "$WORK/mnt-$mode" && losetup -d "$dev" || fail "cannot detach $dev"
	# power back: attach the copy, recover
	attach "$WORK/$mode-cut.img" "$WORK/mnt-$mode-after"
	start_st "$WORK/mnt-$mode-after" "$mode-after"
	r=$(sed -n 's/.*endpoint down: \([0-9]*\) samples buffered by a previous run will be sent.*/\1/p' \
		"$WORK/starling-$mode-after.log" | head -1)
	recovered[$mode]=${r:-0}
	kill -TERM "$ST_PID"
	wait "$ST_PID" || fail "$mode: recovering daemon exited non-zero"
	ST_PID=
	echo "fsync=$mode: queued ${queued[$mode]} in ${files[$mode]} segment files, recovered after the power cut ${recovered[$mode]}"
	((recovered[$mode] <= queued[$mode])) || fail "$mode: recovered more than was queued"
done
((queued[always] > 0)) || fail "nothing queued"
[ "${recovered[always]}" = "${queued[always]}" ] ||
	fail "fsync=always lost $((queued[always] - recovered[always])) of ${queued[always]} queued samples"
# segment: sealed files were fsynced; with more files than the 4 shards'
# open ones, some are sealed and must come back
if ((files[segment] > 4)); then
	((recovered[segment] > 0)) || fail "fsync=segment recovered nothing though ${files[segment]} segment files existed"
fi
echo "PASS"
