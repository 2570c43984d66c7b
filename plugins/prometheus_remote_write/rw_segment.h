/*
 * The on-disk segment files of prometheus.remote_write's queue: the record
 * format, file I/O with the configured durability (queue_config.fsync), and
 * the reader that recovery runs over a file left by a previous run (which
 * is untrusted input after a crash or a disk fault: fuzzed by
 * tests/fuzz/fuzz_rw_segment.c). The queue itself (shards, records in
 * flight, the buffer bound) stays in prometheus_remote_write.c.
 *
 * A segment file <id:016x>-<shard:04u>.seg is a sequence of records: a
 * struct rw_rec_hdr, then the snappy-compressed WriteRequest of one batch.
 */
#ifndef STARLING_RW_SEGMENT_H
#define STARLING_RW_SEGMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RW_REC_MAGIC UINT32_C(0x32575253) /* "SRW2" little-endian */
#define RW_REC_DONE  1u			  /* flags: sent or dropped, skipped at recovery */

struct rw_rec_hdr {
	uint32_t magic;
	uint32_t samples;
	int64_t max_ts;
	uint32_t len;
	uint32_t crc;	/* CRC-32 (zlib's crc32) of the payload */
	uint32_t flags; /* RW_REC_DONE once sent or dropped */
	uint32_t reserved;
};

/* queue_config.fsync: what a queued batch survives.
 *   NEVER    written to the page cache only: survives kill -9 of the
 *            daemon, not a power cut or kernel crash.
 *   SEGMENT  (default) a segment file is fsynced when it is sealed (at
 *            max segment size, stop, write error) and a new file's directory
 *            entry is fsynced: a power cut loses at most the batches of each
 *            shard's open segment.
 *   ALWAYS   every batch is fsynced before it counts as queued: a power cut
 *            loses nothing queued (at the cost of one fdatasync per batch). */
enum rw_fsync { RW_FSYNC_NEVER, RW_FSYNC_SEGMENT, RW_FSYNC_ALWAYS };

/* "never" | "segment" | "always" -> 0, else -EINVAL. */
int rw_fsync_parse(const char *s, enum rw_fsync *out);

/* CRC-32 of a record's payload (the value zlib's crc32(0, p, len) gives). */
uint32_t rw_crc32(const void *p, size_t len);

void rw_seg_path(const char *dir, uint64_t id, unsigned shard, char *out, size_t len);
/* A segment file name -> 0 with its id and shard, else -EINVAL. */
int rw_seg_name_parse(const char *name, uint64_t *id, unsigned *shard);

/* Create (truncate) a segment file for appending; with SEGMENT or ALWAYS the
 * directory is fsynced so that the file itself survives a power cut.
 * Returns the fd or -errno. */
int rw_seg_create(const char *dir, uint64_t id, unsigned shard, enum rw_fsync mode);

/* Append one record (header + payload) at the end of fd, whose current size
 * is `size`. On a short or failed write the torn record is cut off again.
 * With ALWAYS the record is fdatasync'ed before returning. 0 or -errno. */
int rw_seg_append(int fd, size_t size, const struct rw_rec_hdr *h, const void *payload,
		  enum rw_fsync mode);

/* No more appends: fdatasync (SEGMENT, ALWAYS) and close. 0 or -errno (the
 * fd is closed either way). */
int rw_seg_seal(int fd, enum rw_fsync mode);

/* Flag the record at off done (RW_REC_DONE). 0 or -errno. */
int rw_seg_mark_done(int fd, uint64_t off);

/* Read the payload of the record at off (len bytes) into buf and check its
 * crc. 0, -EBADMSG (short or corrupt) or -errno. */
int rw_seg_read_payload(int fd, uint64_t off, uint32_t len, uint32_t crc, uint8_t *buf);

/* ---- reader -------------------------------------------------------------- */

/* What rw_seg_scan found besides the records it handed out. */
struct rw_seg_scan_stats {
	size_t records;	       /* intact, not done: given to the callback */
	uint64_t samples;      /* in those records */
	size_t done;	       /* intact, flagged done */
	size_t corrupt;	       /* records lost: bad payload crc, or a damaged header whose
				* length still leads to the next intact record */
	uint64_t lost_samples; /* the corrupt records' sample counts, as their headers say */
	size_t skipped_bytes;  /* bytes no intact record accounts for (damaged headers,
				* torn tail) */
	bool torn_tail;	       /* the file ends inside a record (crash while appending) */
};

typedef void (*rw_seg_rec_fn)(void *arg, uint64_t off, const struct rw_rec_hdr *h);

/* Walk the records of a whole segment file (buf, len): every intact record
 * that is not done is given to fn (header copied out, payload at
 * buf + off + sizeof(struct rw_rec_hdr)). A record is intact when its magic
 * is right, it fits in the file and its payload crc matches. After a damaged
 * record the reader resynchronises on the next magic that starts an intact
 * record, so one bad header no longer costs the rest of the file, and the
 * samples of a damaged record are counted when its header can be believed
 * (its crc fails but the magic is right, or its length leads exactly to the
 * next intact record). Never reads outside buf. */
void rw_seg_scan(const uint8_t *buf, size_t len, rw_seg_rec_fn fn, void *arg,
		 struct rw_seg_scan_stats *st);

/* Read a whole segment file (at most max bytes) into *buf (caller frees).
 * 0, -EFBIG or -errno. */
int rw_seg_read_file(const char *path, size_t max, uint8_t **buf, size_t *len);

#endif
