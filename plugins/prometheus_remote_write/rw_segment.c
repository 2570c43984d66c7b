/*
 * Segment files of prometheus.remote_write's disk queue (see rw_segment.h).
 */
#include "rw_segment.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libdeflate.h>

#define HDR sizeof(struct rw_rec_hdr)

/* libdeflate's CRC-32 is zlib's crc32() (same polynomial and start, so
 * segments written by either verify with the other; test_rw_segment writes
 * its records with zlib), several times faster: the crc of every cut batch
 * was ~1.5% of the CPU at 200 targets x 1,000 series. */
uint32_t rw_crc32(const void *p, size_t len)
{
	return libdeflate_crc32(0, p, len);
}

int rw_fsync_parse(const char *s, enum rw_fsync *out)
{
	if (!s || !strcmp(s, "segment"))
		*out = RW_FSYNC_SEGMENT;
	else if (!strcmp(s, "never"))
		*out = RW_FSYNC_NEVER;
	else if (!strcmp(s, "always"))
		*out = RW_FSYNC_ALWAYS;
	else
		return -EINVAL;
	return 0;
}

void rw_seg_path(const char *dir, uint64_t id, unsigned shard, char *out, size_t len)
{
	snprintf(out, len, "%s/%016" PRIx64 "-%04u.seg", dir, id, shard);
}

int rw_seg_name_parse(const char *name, uint64_t *id, unsigned *shard)
{
	char ext[8];

	if (sscanf(name, "%16" SCNx64 "-%4u.%3s", id, shard, ext) != 3 || strcmp(ext, "seg"))
		return -EINVAL;
	return 0;
}

static int sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), r = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd))
		r = -errno;
	close(fd);
	return r;
}

int rw_seg_create(const char *dir, uint64_t id, unsigned shard, enum rw_fsync mode)
{
	char path[4096];
	int fd, r;

	rw_seg_path(dir, id, shard, path, sizeof(path));
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (mode != RW_FSYNC_NEVER && (r = sync_dir(dir))) {
		close(fd);
		unlink(path);
		return r;
	}
	return fd;
}

static int write_all(int fd, const void *p, size_t len)
{
	const uint8_t *b = p;

	while (len) {
		ssize_t n = write(fd, b, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ENOSPC;
		b += n;
		len -= (size_t)n;
	}
	return 0;
}

int rw_seg_append(int fd, size_t size, const struct rw_rec_hdr *h, const void *payload,
		  enum rw_fsync mode)
{
	int r = write_all(fd, h, HDR);

	if (!r)
		r = write_all(fd, payload, h->len);
	if (!r && mode == RW_FSYNC_ALWAYS && fdatasync(fd))
		r = -errno;
	if (r && ftruncate(fd, (off_t)size) == 0)
		(void)lseek(fd, (off_t)size, SEEK_SET); /* cut the torn record off */
	return r;
}

int rw_seg_seal(int fd, enum rw_fsync mode)
{
	int r = 0;

	if (fd < 0)
		return 0;
	if (mode != RW_FSYNC_NEVER && fdatasync(fd))
		r = -errno;
	if (close(fd) && !r)
		r = -errno;
	return r;
}

int rw_seg_mark_done(int fd, uint64_t off)
{
	uint32_t flags = RW_REC_DONE;

	if (pwrite(fd, &flags, sizeof(flags), (off_t)(off + offsetof(struct rw_rec_hdr, flags))) !=
	    (ssize_t)sizeof(flags))
		return errno ? -errno : -EIO;
	return 0;
}

int rw_seg_read_payload(int fd, uint64_t off, uint32_t len, uint32_t crc, uint8_t *buf)
{
	ssize_t n = pread(fd, buf, len, (off_t)(off + HDR));

	if (n < 0)
		return -errno;
	if ((size_t)n != len || rw_crc32(buf, len) != crc)
		return -EBADMSG;
	return 0;
}

/* ---- reader -------------------------------------------------------------- */

/* The record at off is intact: magic, fits, crc. */
static bool intact_at(const uint8_t *buf, size_t len, size_t off, struct rw_rec_hdr *h)
{
	if (len - off < HDR)
		return false;
	memcpy(h, buf + off, HDR);
	return h->magic == RW_REC_MAGIC && h->len <= len - off - HDR &&
	       rw_crc32(buf + off + HDR, h->len) == h->crc;
}

/* The next offset after `from` where an intact record starts, or len.
 * Every candidate costs a crc over its claimed length; *budget bounds the
 * bytes checked over the whole scan (a file full of fake magics claiming
 * long records would otherwise cost O(len^2)), and once it is spent the
 * rest of the file is given up. */
static size_t resync(const uint8_t *buf, size_t len, size_t from, size_t *budget)
{
	static const uint8_t magic[4] = {RW_REC_MAGIC & 0xff, (RW_REC_MAGIC >> 8) & 0xff,
					 (RW_REC_MAGIC >> 16) & 0xff, RW_REC_MAGIC >> 24};
	struct rw_rec_hdr h;

	while (from < len) {
		const uint8_t *p = memmem(buf + from, len - from, magic, sizeof(magic));

		if (!p)
			return len;
		from = (size_t)(p - buf);
		if (len - from >= HDR) {
			memcpy(&h, buf + from, HDR);
			if (h.len <= len - from - HDR) {
				if (h.len > *budget)
					return len;
				*budget -= h.len;
			}
		}
		if (intact_at(buf, len, from, &h))
			return from;
		from++;
	}
	return len;
}

void rw_seg_scan(const uint8_t *buf, size_t len, rw_seg_rec_fn fn, void *arg,
		 struct rw_seg_scan_stats *st)
{
	size_t off = 0, budget = 8 * len + 65536;

	memset(st, 0, sizeof(*st));
	while (off < len) {
		struct rw_rec_hdr h;
		size_t next;

		if (intact_at(buf, len, off, &h)) {
			if (h.flags & RW_REC_DONE) {
				st->done++;
			} else {
				st->records++;
				st->samples += h.samples;
				if (fn)
					fn(arg, off, &h);
			}
			off += HDR + h.len;
			continue;
		}
		/* damaged here: find where intact records resume */
		next = resync(buf, len, off + 1, &budget);
		if (len - off >= HDR) {
			memcpy(&h, buf + off, HDR);
			if (next == len && h.magic == RW_REC_MAGIC && h.len > len - off - HDR) {
				st->torn_tail = true; /* appended when the process died */
			} else if (h.magic == RW_REC_MAGIC ||
				   (h.len <= len - off - HDR && off + HDR + h.len == next)) {
				/* the header can be believed: a record with its samples lost */
				st->corrupt++;
				st->lost_samples += h.samples;
			}
		} else {
			st->torn_tail = true;
		}
		st->skipped_bytes += next - off;
		off = next;
	}
}

int rw_seg_read_file(const char *path, size_t max, uint8_t **buf, size_t *len)
{
	struct stat sb;
	size_t got = 0;
	uint8_t *b;
	int fd = open(path, O_RDONLY | O_CLOEXEC), r = 0;

	*buf = NULL;
	*len = 0;
	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb)) {
		r = -errno;
		close(fd);
		return r;
	}
	if ((uint64_t)sb.st_size > max) {
		close(fd);
		return -EFBIG;
	}
	b = malloc(sb.st_size ? (size_t)sb.st_size : 1);
	if (!b) {
		close(fd);
		return -ENOMEM;
	}
	while (got < (size_t)sb.st_size) {
		ssize_t n = read(fd, b + got, (size_t)sb.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = n < 0 ? -errno : 0;
			break; /* shrank under us: what was read is the file */
		}
		got += (size_t)n;
	}
	close(fd);
	if (r) {
		free(b);
		return r;
	}
	*buf = b;
	*len = got;
	return 0;
}
