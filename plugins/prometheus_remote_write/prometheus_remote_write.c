/*
 * prometheus.remote_write: Remote Write 1.0 to Prometheus, Mimir,
 * VictoriaMetrics (see README.md next to this file).
 *
 * Data path: receive_series() encodes each series straight into the wire
 * bytes of its shard's open batch (shard = series hash mod shards, so one
 * series always travels through one FIFO and its order is kept). A batch is
 * cut when it holds max_samples_per_send samples or is batch_send_deadline
 * old: it is snappy-compressed and appended as one record to the shard's
 * segment file in the endpoint's directory under the instance's state_dir
 * (file format, durability and the recovery reader: rw_segment.c). One sender thread per
 * instance drives one HTTP client for all endpoints; each shard has at most
 * one request in flight and sends its segments in order, deleting a segment
 * once the receiver took it (2xx) or refused it for good (4xx other than
 * 429). So a receiver outage only grows the on-disk queue (bounded by
 * queue_config.max_buffer_size, oldest dropped first and counted), and
 * segments left by a previous run are sent after a restart (a stop gives
 * the requests in flight STOP_DRAIN_MS for their answer first; delivery is
 * at-least-once, see the README's "Delivery"). A batch that
 * cannot be written (disk full, no state_dir) is kept in memory, and those
 * bytes count against the same max_buffer_size: a full disk during an
 * outage drops the oldest data (counted, component unhealthy), never grows
 * memory without bound.
 */
#include <starling/http.h>
#include <starling/plugin.h>
#include <starling/relabel.h>
#include <starling/remote_write.h>

#include "rw_segment.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#define USER_AGENT     "Starling/" STARLING_VERSION
#define DEFAULT_SHARDS 4
#define MAX_SHARDS     256
/* Segment files are rotated at this size (or max_buffer_size / 8). */
#define SEG_TARGET (1u << 20)
/* At stop, requests in flight get this long for their answer (the host
 * wants stop to return within a few seconds): what is answered in time is
 * flagged done and not sent again after the restart. Prometheus waits
 * flushDeadline (1 min) at shutdown, for its queues as well. */
#define STOP_DRAIN_MS 2000

/* One segment file of a shard. Appended while it is the shard's open file;
 * deleted once it is sealed and every record in it is done. */
struct segfile {
	struct segfile *next; /* the shard's files, oldest first */
	uint64_t id;	      /* file name: <id>-<shard>.seg */
	unsigned shard;	      /* as in the file name (may differ from the
			       * current shard after a shard-count change) */
	int fd;		      /* open file only, else -1 */
	size_t size;
	unsigned live;	 /* records not yet done */
	size_t synced;	 /* bytes made durable by fsync (see rw_test_power_cut) */
	bool dir_synced; /* its directory entry was fsynced */
	bool sealed;
};

/* One queued batch. */
struct rec {
	struct rec *next;
	uint64_t seq;	      /* unique per shard, identifies a loaded body */
	uint64_t order;	      /* endpoint-wide queue order: oldest is dropped first */
	struct segfile *file; /* NULL: payload kept in `mem` */
	uint64_t off;	      /* of the record header in the file */
	uint32_t len;
	uint32_t crc;
	uint32_t samples;
	int64_t max_ts;
	uint8_t *mem;
};

struct endpoint;

struct shard {
	pthread_mutex_t lock; /* everything up to `in_flight` */
	struct endpoint *ep;
	unsigned idx;
	/* The open batch: its encoded TimeSeries entries are compressed a
	 * 64 KiB snappy fragment at a time as they come (zbuf), so only the
	 * tail of a large batch is ever held uncompressed (batch). */
	struct starling_rw_buf batch;  /* encoded TimeSeries entries not yet compressed */
	struct starling_rw_buf lbuf;   /* scratch: one series' labels */
	struct starling_rw_buf zbuf;   /* compressed fragments of the open batch */
	size_t batch_in;	       /* bytes of the open batch already in zbuf */
	struct starling_label *merged; /* scratch: labels + external labels */
	struct starling_lset lset;     /* scratch: write relabelling */
	struct starling_relabel_scratch rscratch;
	size_t merged_cap;
	size_t *mlens; /* scratch: value lengths of `merged` (NUL bytes) */
	size_t mlens_cap;
	uint32_t *mll; /* scratch: name/value lengths of `merged` (label_lens) */
	size_t mll_cap;
	struct starling_rw_buf vtmp; /* scratch: one value with 0xff <-> NUL */
	size_t batch_samples;
	int64_t batch_max_ts;
	int64_t batch_start_ms;	 /* monotonic, first sample of the batch */
	struct rec *head, *tail; /* queued batches, oldest first */
	struct segfile *files, *files_tail;
	struct segfile *open; /* file being appended, or NULL */
	uint64_t next_rec;
	bool in_flight; /* head is being sent */

	/* sender thread only (body also cut_batch() under `lock` while
	 * nothing is in flight) */
	struct starling_rw_buf body;
	uint64_t body_seq;
	bool body_loaded;
	unsigned attempt;
	int64_t next_try_ms;
	int64_t backoff_ms;
};

struct endpoint {
	struct rw *rw;
	char *url;
	char *name;
	char *dir;	/* NULL: memory-only queue */
	char **headers; /* "Name: value" */
	size_t n_headers;
	struct starling_http_auth *auth;
	int64_t timeout_ms;
	size_t max_samples;
	int64_t deadline_ms;
	int64_t min_backoff_ms;
	int64_t max_backoff_ms;
	bool retry_429;
	int64_t age_limit_ms;
	int64_t max_bytes;
	bool md_send;
	int64_t md_interval_ms;
	size_t md_max;
	size_t seg_target;			/* rotate segment files at this size */
	enum rw_fsync fsync;			/* queue_config.fsync */
	struct starling_relabel_rules *relabel; /* NULL: none */
	bool send_exemplars;
	bool send_histograms;
	unsigned n_shards;
	struct shard *shards;

	pthread_mutex_t lock; /* next_seq, next_order, disk_bytes, mem_bytes, pending, disk_* */
	uint64_t next_seq;
	uint64_t next_order;
	int64_t disk_bytes;
	int64_t mem_bytes;	   /* batches kept in memory (no state_dir, write failed) */
	unsigned long disk_errors; /* consecutive failed appends (0: disk writable) */
	long long pending;	   /* samples accepted, not yet sent or dropped (lock) */

	/* sender thread only */
	bool md_in_flight;
	int64_t md_next_ms;
	/* entries with gen > md_sent_gen are new or changed since this
	 * endpoint's last metadata request: sent at once, at most once per
	 * second (md_prompt_ms), besides the full set every send_interval */
	uint64_t md_sent_gen;
	int64_t md_prompt_ms;
	struct starling_rw_buf md_req;
	struct starling_rw_buf md_body;
	int64_t highest_sent_ms;

	starling_metric *m_sent, *m_failed, *m_retried, *m_dropped, *m_pending;
	starling_metric *m_highest, *m_bytes, *m_md_sent, *m_md_failed, *m_buffer, *m_shards;
	starling_metric *m_relabel_dropped, *m_hist_dropped, *m_ex_sent, *m_mem;
};

struct md_entry {
	char *family;
	char *help;
	char *unit;
	enum starling_metric_type type;
	uint64_t hash;
	uint64_t gen; /* rw->md_gen when it was added or last changed */
};

struct rw {
	const struct starling_host_api *api;
	starling_component *self;
	struct endpoint *eps;
	size_t n_eps;
	struct starling_label *ext; /* external labels, sorted, owned */
	uint32_t *ext_ll;	    /* their name/value lengths (label_lens) */
	size_t n_ext;

	pthread_mutex_t md_lock;
	struct md_entry *md;
	size_t n_md, cap_md;
	uint64_t md_gen;    /* bumped by every new or changed entry (md_lock) */
	uint32_t *md_index; /* open addressing: md index + 1, 0 = empty */
	size_t md_index_cap;

	struct starling_http_client *http;
	pthread_t thread;
	bool thread_started;
	bool recovered; /* disk buffer read (first start) */
	bool dead;	/* rw_test_power_cut: touch no file any more */
	atomic_bool running;
	atomic_bool draining;	     /* stopping: nothing new is sent (sender_main) */
	_Atomic int64_t drain_until; /* monotonic ms: then in-flight requests are cancelled */
	starling_metric *m_in;
};

#define LOG(rw, lvl, ...) (rw)->api->log((rw)->self, (lvl), __VA_ARGS__)

/* ---- schema ------------------------------------------------------------- */

static const struct starling_config_key queue_keys[] = {
    {"capacity", STARLING_CFG_INT, false, "10000",
     "Accepted for Alloy compatibility; the queue lives on disk (see max_buffer_size)"},
    {"max_shards", STARLING_CFG_INT, false, "50", "Upper bound on shards"},
    {"min_shards", STARLING_CFG_INT, false, "1", "Lower bound on shards"},
    {"max_samples_per_send", STARLING_CFG_INT, false, "10000",
     "Samples per request (Prometheus and Alloy default to 2000; Starling sends fewer, bigger "
     "requests, as vmagent does)"},
    {"batch_send_deadline", STARLING_CFG_DURATION, false, "5s",
     "Longest time a sample waits for its batch to fill"},
    {"min_backoff", STARLING_CFG_DURATION, false, "30ms", "First retry delay"},
    {"max_backoff", STARLING_CFG_DURATION, false, "5s", "Longest retry delay"},
    {"retry_on_http_429", STARLING_CFG_BOOL, false, "true", "Retry on 429 Too Many Requests"},
    {"sample_age_limit", STARLING_CFG_DURATION, false, "0s",
     "Drop (counted) batches whose newest sample is older than this; 0 = never"},
    {"max_buffer_size", STARLING_CFG_BYTES, false, "1GiB",
     "Starling: queue bound per endpoint (disk, plus batches kept in memory when they "
     "cannot be written); oldest data dropped beyond it, counted"},
    {"fsync", STARLING_CFG_STRING, false, "segment",
     "Starling: durability of the disk queue: never (survives kill -9, not a power cut), "
     "segment (a segment is fsynced when sealed: a power cut loses at most each shard's "
     "open segment), always (every batch fsynced before it is queued)"},
    {NULL},
};

static const struct starling_config_key metadata_keys[] = {
    {"send", STARLING_CFG_BOOL, false, "true", "Send metric metadata"},
    {"send_interval", STARLING_CFG_DURATION, false, "1m", "How often metadata is sent"},
    {"max_samples_per_send", STARLING_CFG_INT, false, "2000", "Metadata entries per request"},
    {NULL},
};

static const struct starling_config_key endpoint_keys[] = {
    {"url", STARLING_CFG_STRING, true, NULL,
     "Remote write URL, e.g. http://host:9090/api/v1/write"},
    {"name", STARLING_CFG_STRING, false, NULL,
     "Name for metrics and the buffer directory (default: derived from the URL)"},
    {"remote_timeout", STARLING_CFG_DURATION, false, "30s", "Timeout of one request"},
    {"headers", STARLING_CFG_MAP, false, NULL, "Extra HTTP headers"},
    {"send_exemplars", STARLING_CFG_BOOL, false, "true",
     "Send the exemplars the scrapers collected (TimeSeries.exemplars)"},
    {"send_native_histograms", STARLING_CFG_BOOL, false, "false",
     "Send native histograms (TimeSeries.histograms); false drops them, counted"},
    {"queue_config", STARLING_CFG_GROUP, false, NULL, "Queue settings", queue_keys},
    {"metadata_config", STARLING_CFG_GROUP, false, NULL, "Metadata settings", metadata_keys},
    {"write_relabel_config", STARLING_CFG_GROUP_LIST, false, NULL,
     "Relabel rules applied to each series (after external_labels) before sending",
     starling_relabel_schema},
    STARLING_HTTP_CONFIG_KEYS,
    {NULL},
};

static const struct starling_config_key rw_keys[] = {
    {"endpoint", STARLING_CFG_GROUP_LIST, true, NULL, "Where to send; repeatable", endpoint_keys},
    {"external_labels", STARLING_CFG_MAP, false, NULL,
     "Labels added to every series that lacks them"},
    {NULL},
};

/* ---- small helpers ------------------------------------------------------ */

static int label_cmp(const void *a, const void *b)
{
	return strcmp(((const struct starling_label *)a)->name,
		      ((const struct starling_label *)b)->name);
}

static bool valid_label_name(const char *s)
{
	if (!*s || !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
		return false;
	for (s++; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_' ||
		      (*s >= '0' && *s <= '9')))
			return false;
	return true;
}

static bool valid_dir_name(const char *s)
{
	if (!*s || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_' ||
		      *s == '-' || *s == '.' || (*s >= '0' && *s <= '9')))
			return false;
	return true;
}

static void update_pending(struct endpoint *ep, long long delta)
{
	/* under the lock, so that the gauge is set in the order of the adds */
	pthread_mutex_lock(&ep->lock);
	ep->pending += delta;
	ep->rw->api->metric_set(ep->m_pending, (double)ep->pending);
	pthread_mutex_unlock(&ep->lock);
}

static void file_path(const struct endpoint *ep, uint64_t id, unsigned shard, char *out, size_t len)
{
	rw_seg_path(ep->dir, id, shard, out, len);
}

static void add_mem_bytes(struct endpoint *ep, int64_t delta)
{
	pthread_mutex_lock(&ep->lock);
	ep->mem_bytes += delta;
	ep->rw->api->metric_set(ep->m_mem, (double)ep->mem_bytes);
	pthread_mutex_unlock(&ep->lock);
}

static void add_disk_bytes(struct endpoint *ep, int64_t delta)
{
	pthread_mutex_lock(&ep->lock);
	ep->disk_bytes += delta;
	ep->rw->api->metric_set(ep->m_buffer, (double)ep->disk_bytes);
	pthread_mutex_unlock(&ep->lock);
}

/* Delete a file once it is sealed and all its records are done. Caller
 * holds sh->lock. */
static void file_release(struct shard *sh, struct segfile *f)
{
	struct endpoint *ep = sh->ep;
	struct segfile **pp, *prev = NULL;
	char path[4096];

	if (f->live || !f->sealed)
		return;
	for (pp = &sh->files; *pp && *pp != f; pp = &(*pp)->next)
		prev = *pp;
	if (*pp)
		*pp = f->next;
	if (sh->files_tail == f)
		sh->files_tail = prev;
	file_path(ep, f->id, f->shard, path, sizeof(path));
	if (unlink(path) && errno != ENOENT)
		LOG(ep->rw, STARLING_LOG_WARN, "endpoint %s: cannot remove %s: %s", ep->name, path,
		    strerror(errno));
	add_disk_bytes(ep, -(int64_t)f->size);
	free(f);
}

/* No more appends to f (rotation, write error, stop). */
static void file_seal(struct shard *sh, struct segfile *f)
{
	if (!f || f->sealed)
		return;
	f->sealed = true;
	if (f->fd >= 0) {
		/* A file whose records are all done (sent before it filled up,
		 * the rule at A) is removed right below: syncing it would write
		 * it to the disk only to delete it. */
		int r = rw_seg_seal(f->fd, f->live ? sh->ep->fsync : RW_FSYNC_NEVER);

		if (r)
			LOG(sh->ep->rw, STARLING_LOG_WARN,
			    "endpoint %s: cannot sync a sealed segment: %s (a power cut may lose "
			    "it)",
			    sh->ep->name, strerror(-r));
		else if (sh->ep->fsync != RW_FSYNC_NEVER)
			f->synced = f->size;
	}
	f->fd = -1;
	if (sh->open == f)
		sh->open = NULL;
	file_release(sh, f);
}

/* A record was sent, refused or dropped: flag it on disk (so a restart does
 * not send it again) unless its whole file goes away now. Caller holds
 * sh->lock and has unlinked r from the queue. */
static void rec_done(struct shard *sh, struct rec *r)
{
	struct segfile *f = r->file;

	if (f) {
		f->live--;
		if (f->live || !f->sealed) {
			char path[4096];
			int fd = f->fd;

			if (fd < 0) {
				file_path(sh->ep, f->id, f->shard, path, sizeof(path));
				fd = open(path, O_WRONLY | O_CLOEXEC);
			}
			if (fd < 0 || rw_seg_mark_done(fd, r->off))
				LOG(sh->ep->rw, STARLING_LOG_WARN,
				    "endpoint %s: cannot flag a sent batch in its segment (it may "
				    "be sent again after a restart)",
				    sh->ep->name);
			if (fd >= 0 && fd != f->fd)
				close(fd);
		}
		file_release(sh, f);
	}
	if (r->mem)
		add_mem_bytes(sh->ep, -(int64_t)r->len);
	free(r->mem);
	free(r);
}

/* Append a record to the shard's open segment file (rotating it when big
 * enough). Caller holds sh->lock. */
static int append_record(struct shard *sh, struct rec *rec, const struct rw_rec_hdr *h,
			 const uint8_t *payload)
{
	struct endpoint *ep = sh->ep;
	struct segfile *f = sh->open;
	int r;

	if (f && f->size >= ep->seg_target)
		file_seal(sh, f);
	f = sh->open;
	if (!f) {
		f = calloc(1, sizeof(*f));
		if (!f)
			return -ENOMEM;
		pthread_mutex_lock(&ep->lock);
		f->id = ep->next_seq++;
		pthread_mutex_unlock(&ep->lock);
		f->shard = sh->idx;
		f->fd = rw_seg_create(ep->dir, f->id, f->shard, ep->fsync);
		if (f->fd < 0) {
			r = f->fd;
			free(f);
			return r;
		}
		f->dir_synced = ep->fsync != RW_FSYNC_NEVER;
		if (sh->files_tail)
			sh->files_tail->next = f;
		else
			sh->files = f;
		sh->files_tail = f;
		sh->open = f;
	}
	r = rw_seg_append(f->fd, f->size, h, payload, ep->fsync);
	if (r) {
		/* the torn record is cut off; no more appends to this file */
		file_seal(sh, f);
		return r;
	}
	rec->file = f;
	rec->off = f->size;
	f->size += sizeof(*h) + h->len;
	if (ep->fsync == RW_FSYNC_ALWAYS)
		f->synced = f->size;
	f->live++;
	add_disk_bytes(ep, (int64_t)(sizeof(*h) + h->len));
	return 0;
}

/* The first record that may be dropped: never the one in flight. */
static struct rec **first_droppable(struct shard *sh)
{
	return sh->in_flight && sh->head ? &sh->head->next : &sh->head;
}

/* A record enforce_limit may drop: kept in memory (frees at once), or in a
 * sealed file (the file goes once all its records are done). */
static bool droppable(const struct rec *r)
{
	return r && (r->mem || (r->file && r->file->sealed));
}

/* Drop the oldest queued data until the buffer (disk bytes plus batches
 * kept in memory) is within max_bytes: the oldest droppable record of all
 * shards, with every queued record of its file when it is on disk (never
 * the record in flight, never the file still being appended). The disk
 * part can thus exceed max_bytes by up to about two segment files per
 * shard; memory never does by more than one batch. Called without any
 * shard lock held. */
static void enforce_limit(struct endpoint *ep)
{
	for (;;) {
		struct shard *victim = NULL;
		uint64_t oldest = UINT64_MAX;
		uint32_t samples = 0, recs = 0, n;
		struct segfile *f;
		struct rec *r, **pp;
		int64_t bytes;

		pthread_mutex_lock(&ep->lock);
		bytes = ep->disk_bytes + ep->mem_bytes;
		pthread_mutex_unlock(&ep->lock);
		if (bytes <= ep->max_bytes)
			return;
		for (unsigned i = 0; i < ep->n_shards; i++) {
			struct shard *sh = &ep->shards[i];

			pthread_mutex_lock(&sh->lock);
			r = *first_droppable(sh);
			if (droppable(r) && r->order < oldest) {
				oldest = r->order;
				victim = sh;
			}
			pthread_mutex_unlock(&sh->lock);
		}
		if (!victim)
			return;
		pthread_mutex_lock(&victim->lock);
		pp = first_droppable(victim);
		if (!droppable(*pp) || (*pp)->order != oldest) {
			pthread_mutex_unlock(&victim->lock);
			continue; /* changed under us: look again */
		}
		/* count first: dropping the last record of a file frees it */
		f = (*pp)->mem ? NULL : (*pp)->file;
		n = 1;
		if (f)
			for (n = 0, r = *pp; r && r->file == f; r = r->next)
				n++;
		for (; n; n--) {
			r = *pp;
			*pp = r->next;
			if (victim->tail ==
			    r) /* r had no successor: its predecessor is the new tail */
				victim->tail = pp == &victim->head ? NULL : victim->head;
			samples += r->samples;
			recs++;
			rec_done(victim, r);
		}
		if (!victim->head)
			victim->tail = NULL;
		pthread_mutex_unlock(&victim->lock);
		ep->rw->api->metric_add(ep->m_dropped, samples);
		update_pending(ep, -(long long)samples);
		LOG(ep->rw, STARLING_LOG_WARN,
		    "endpoint %s: buffer over max_buffer_size (%" PRId64
		    " bytes): dropped the %u oldest batches (%u samples)",
		    ep->name, ep->max_bytes, recs, samples);
	}
}

/* Compress the open batch's full fragments (all of it when `all`) into
 * zbuf, keeping the rest uncompressed. Caller holds sh->lock. */
static int compress_fragments(struct shard *sh, bool all)
{
	size_t off = 0;
	int r = 0;

	while (sh->batch.len - off >= STARLING_RW_SNAPPY_BLOCK || (all && off < sh->batch.len)) {
		size_t n = sh->batch.len - off;

		if (n > STARLING_RW_SNAPPY_BLOCK)
			n = STARLING_RW_SNAPPY_BLOCK;
		r = starling_rw_snappy_fragment(sh->batch.data + off, n, &sh->zbuf);
		if (r)
			break;
		off += n;
		sh->batch_in += n;
	}
	if (off) {
		memmove(sh->batch.data, sh->batch.data + off, sh->batch.len - off);
		sh->batch.len -= off;
	}
	return r;
}

/* Turn the shard's open batch into a queued record. Caller holds sh->lock.
 * Returns true when a record was queued (caller then enforces the limit
 * and wakes the sender, after unlocking). */
static bool cut_batch(struct shard *sh)
{
	struct endpoint *ep = sh->ep;
	struct rw_rec_hdr h = {0};
	struct rec *rec;
	uint8_t *payload = NULL;
	size_t plen;
	int r = -ENOENT;

	if (!sh->batch_samples)
		return false;
	if (compress_fragments(sh, true) ||
	    !(plen = starling_rw_snappy_finish(&sh->zbuf, sh->batch_in, &payload)) ||
	    !(rec = calloc(1, sizeof(*rec))))
		return false; /* out of memory: keep the batch open, retry later */
	h.magic = RW_REC_MAGIC;
	h.samples = (uint32_t)sh->batch_samples;
	h.max_ts = sh->batch_max_ts;
	h.len = (uint32_t)plen;
	h.crc = rw_crc32(payload, plen);
	rec->seq = ++sh->next_rec;
	rec->samples = h.samples;
	rec->max_ts = h.max_ts;
	rec->len = h.len;
	rec->crc = h.crc;
	pthread_mutex_lock(&ep->lock);
	rec->order = ep->next_order++;
	pthread_mutex_unlock(&ep->lock);
	if (ep->dir) {
		unsigned long failed;

		r = append_record(sh, rec, &h, payload);
		pthread_mutex_lock(&ep->lock);
		failed = ep->disk_errors;
		ep->disk_errors = r ? failed + 1 : 0;
		pthread_mutex_unlock(&ep->lock);
		/* one line when the disk fails and one when it recovers, not one
		 * per batch; the health says it in between */
		if (r && !failed) {
			char msg[512];

			snprintf(msg, sizeof(msg),
				 "endpoint %s: cannot write to the disk buffer in %s: %s (batches "
				 "kept in memory within max_buffer_size, oldest dropped)",
				 ep->name, ep->dir, strerror(-r));
			LOG(ep->rw, STARLING_LOG_ERROR, "%s", msg);
			ep->rw->api->set_health(ep->rw->self, false, msg);
		} else if (!r && failed) {
			LOG(ep->rw, STARLING_LOG_INFO,
			    "endpoint %s: disk buffer writable again after %lu failed writes",
			    ep->name, failed);
			ep->rw->api->set_health(ep->rw->self, true, NULL);
		}
	}
	if (r) {
		rec->mem = malloc(h.len);
		if (!rec->mem) {
			free(rec);
			return false;
		}
		memcpy(rec->mem, payload, h.len);
		add_mem_bytes(ep, (int64_t)h.len);
	}
	/* A batch that becomes the head while nothing is in flight is sent
	 * next: hand it to the sender from memory, as load_head() would read it
	 * back from the file just written (the file is for a restart). The
	 * body is the sender's only while a send is in flight. */
	if (!sh->head && !sh->in_flight && !rec->mem) {
		sh->body_loaded = false;
		if (!starling_rw_buf_fit(&sh->body, h.len)) {
			memcpy(sh->body.data, payload, h.len);
			sh->body.len = h.len;
			sh->body_seq = rec->seq;
			sh->body_loaded = true;
		}
	}
	if (sh->tail)
		sh->tail->next = rec;
	else
		sh->head = rec;
	sh->tail = rec;
	sh->batch.len = 0;
	sh->zbuf.len = 0;
	sh->batch_in = 0;
	sh->batch_samples = 0;
	sh->batch_max_ts = INT64_MIN;
	return true;
}

/* ---- receive ------------------------------------------------------------ */

/* Series labels plus external labels the series lacks, sorted. */
static const struct starling_label *merge_external(struct rw *rw, struct shard *sh,
						   const struct starling_series *s, size_t *n)
{
	size_t i = 0, j = 0, k = 0, need = s->n_labels + rw->n_ext;

	if (!rw->n_ext) {
		*n = s->n_labels;
		return s->labels;
	}
	if (need > sh->merged_cap) {
		struct starling_label *m = realloc(sh->merged, need * sizeof(*m));

		if (!m)
			return NULL;
		sh->merged = m;
		sh->merged_cap = need;
	}
	while (i < s->n_labels || j < rw->n_ext) {
		int c = i == s->n_labels ? 1
			: j == rw->n_ext ? -1
					 : strcmp(s->labels[i].name, rw->ext[j].name);

		if (c <= 0) {
			sh->merged[k++] = s->labels[i++];
			if (c == 0)
				j++; /* the series' own label wins */
		} else {
			sh->merged[k++] = rw->ext[j++];
		}
	}
	*n = k;
	return sh->merged;
}

/* Label values with NUL bytes (struct starling_series_ext.label_value_lens,
 * from prometheus.scrape): the lengths of the merged labels (the series'
 * own labels keep theirs, external labels are C strings). NULL: -ENOMEM. */
static const size_t *merged_lens(struct shard *sh, const struct starling_series *s,
				 const size_t *xl, const struct starling_label *m, size_t n)
{
	size_t j = 0;

	if (n > sh->mlens_cap) {
		size_t *p = realloc(sh->mlens, n * sizeof(*p));

		if (!p)
			return NULL;
		sh->mlens = p;
		sh->mlens_cap = n;
	}
	for (size_t k = 0; k < n; k++) {
		if (j < s->n_labels && m[k].name == s->labels[j].name &&
		    m[k].value == s->labels[j].value)
			sh->mlens[k] = xl[j++];
		else
			sh->mlens[k] = strlen(m[k].value);
	}
	return sh->mlens;
}

/* The name/value lengths of the merged labels m (struct
 * starling_series_ext.label_lens xl of the series' own labels, the
 * external labels' own): NULL on -ENOMEM. */
static const uint32_t *merged_label_lens(struct rw *rw, struct shard *sh,
					 const struct starling_series *s, const uint32_t *xl,
					 const struct starling_label *m, size_t n)
{
	size_t j = 0, e = 0;

	if (m == s->labels)
		return xl; /* no external labels */
	if (2 * n > sh->mll_cap) {
		uint32_t *p = realloc(sh->mll, 2 * n * sizeof(*p));

		if (!p)
			return NULL;
		sh->mll = p;
		sh->mll_cap = 2 * n;
	}
	for (size_t k = 0; k < n; k++) {
		const uint32_t *from;

		if (j < s->n_labels && m[k].name == s->labels[j].name &&
		    m[k].value == s->labels[j].value) {
			from = &xl[2 * j++];
		} else {
			while (e < rw->n_ext && rw->ext[e].name != m[k].name)
				e++;
			if (e == rw->n_ext)
				return NULL; /* cannot happen: m is labels + ext */
			from = &rw->ext_ll[2 * e];
		}
		sh->mll[2 * k] = from[0];
		sh->mll[2 * k + 1] = from[1];
	}
	return sh->mll;
}

/* `len` bytes of v with every NUL as 0xff and every 0xff as NUL (valid
 * UTF-8 holds no 0xff), in sh->vtmp: how a value with NUL bytes goes
 * through write_relabel_config's C strings and back (as the scraper does
 * for metric_relabel_config). NULL: -ENOMEM. */
static const char *swap_nul(struct shard *sh, const char *v, size_t len)
{
	sh->vtmp.len = 0;
	if (starling_rw_buf_reserve(&sh->vtmp, len + 1))
		return NULL;
	for (size_t i = 0; i < len; i++)
		sh->vtmp.data[i] = !v[i] ? 0xff : (unsigned char)v[i] == 0xff ? 0 : (uint8_t)v[i];
	sh->vtmp.data[len] = 0;
	return (const char *)sh->vtmp.data;
}

/* Encode relabelled labels whose values may carry NUL bytes as 0xff. */
static int encode_labels_ff(struct shard *sh, const struct starling_label *l, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		size_t vl = strlen(l[i].value);
		struct starling_label one = l[i];
		int r;

		if (memchr(one.value, 0xff, vl) && !(one.value = swap_nul(sh, l[i].value, vl)))
			return -ENOMEM;
		r = starling_rw_encode_labels_n(&sh->lbuf, &one, &vl, 1);
		if (r)
			return r;
	}
	return 0;
}

/* Append one series to its shard's open batch. Caller holds sh->lock.
 * Returns 1 when the batch was cut into a segment, 0, or -errno. */
/* Returns 2 when write_relabel_config dropped the series. */
static int encode_series(struct rw *rw, struct shard *sh, const struct starling_series *s,
			 const struct starling_series_ext *x, int64_t now)
{
	struct endpoint *ep = sh->ep;
	const struct starling_label *labels;
	const size_t *lens = NULL;
	size_t n;
	int r;

	labels = merge_external(rw, sh, s, &n);
	if (!labels)
		return -ENOMEM;
	if (x && x->label_value_lens &&
	    !(lens = merged_lens(sh, s, x->label_value_lens, labels, n)))
		return -ENOMEM;
	if (!ep->relabel && (!x || (!x->n_exemplars && !x->n_histograms))) {
		/* the common case: float samples, labels as they came (plus the
		 * external ones), encoded straight into the batch; with the
		 * lengths the producer knew (label_lens), no strlen() */
		const uint32_t *ll = x && x->label_lens
					 ? merged_label_lens(rw, sh, s, x->label_lens, labels, n)
					 : NULL;

		r = starling_rw_append_series_labels(&sh->batch, labels, ll, lens, n, s->values,
						     s->timestamps_ms, s->n_samples);
		if (r)
			return r;
		goto appended;
	}
	if (ep->relabel) {
		starling_lset_clear(&sh->lset);
		for (size_t i = 0; i < n; i++) {
			const char *v = labels[i].value;
			size_t vl = lens ? lens[i] : strlen(v);

			if (lens && vl != strlen(v) && !(v = swap_nul(sh, v, vl)))
				return -ENOMEM;
			r = starling_lset_append(&sh->lset, labels[i].name, strlen(labels[i].name),
						 v, vl);
			if (r)
				return r;
		}
		r = starling_lset_finish(&sh->lset);
		if (!r)
			r = starling_relabel_apply(ep->relabel, &sh->lset, &sh->rscratch);
		if (r < 0)
			return r;
		if (r == 0 || sh->lset.n == 0)
			return 2; /* dropped by a rule (or no label left) */
		labels = sh->lset.v;
		n = sh->lset.n;
	}
	sh->lbuf.len = 0;
	if (lens && ep->relabel)
		r = encode_labels_ff(sh, labels, n);
	else
		r = starling_rw_encode_labels_n(&sh->lbuf, labels, ep->relabel ? NULL : lens, n);
	if (!r && x)
		r = starling_rw_append_series_ext(
		    &sh->batch, sh->lbuf.data, sh->lbuf.len, s->values, s->timestamps_ms,
		    s->n_samples, x->exemplars, x->n_exemplars, x->histograms, x->n_histograms);
	else if (!r)
		r = starling_rw_append_series(&sh->batch, sh->lbuf.data, sh->lbuf.len, s->values,
					      s->timestamps_ms, s->n_samples);
	if (r)
		return r;
appended:
	if (sh->batch.len >= STARLING_RW_SNAPPY_BLOCK)
		(void)compress_fragments(sh, false); /* out of memory: at the cut */
	if (!sh->batch_samples)
		sh->batch_start_ms = now;
	sh->batch_samples += s->n_samples + (x ? x->n_histograms : 0);
	for (size_t i = 0; i < s->n_samples; i++)
		if (s->timestamps_ms[i] > sh->batch_max_ts)
			sh->batch_max_ts = s->timestamps_ms[i];
	for (size_t i = 0; x && i < x->n_histograms; i++)
		if (x->histograms[i].timestamp_ms > sh->batch_max_ts)
			sh->batch_max_ts = x->histograms[i].timestamp_ms;
	if (sh->batch_samples >= ep->max_samples)
		return cut_batch(sh) ? 1 : 0;
	return 0;
}

/* Series i's ext as this endpoint sends it (NULL: nothing beyond samples):
 * read only the members that fit the producer's ext_size, and leave out
 * exemplars or histograms the endpoint does not send (the histograms left
 * out are added to *unsent). */
static const struct starling_series_ext *series_ext(const struct starling_series_batch *b, size_t i,
						    const struct endpoint *ep,
						    struct starling_series_ext *out,
						    long long *unsent)
{
	const char *e;

	if (!b->ext || !b->ext_size)
		return NULL;
	e = (const char *)b->ext + i * b->ext_size;
	memcpy(out, e, b->ext_size < sizeof(*out) ? b->ext_size : sizeof(*out));
	if (!ep->send_exemplars)
		out->n_exemplars = 0;
	if (!ep->send_histograms) {
		*unsent += (long long)out->n_histograms;
		out->n_histograms = 0;
	}
	if (!out->n_exemplars && !out->n_histograms && !out->label_value_lens && !out->label_lens)
		return NULL;
	return out;
}

/* The indices of b's series grouped by shard, each group in batch order:
 * shard k's are order[start[k]] .. order[start[k + 1] - 1]. order has room
 * for b->n_series, start for n_shards + 1. */
static void shard_order(const struct endpoint *ep, const struct starling_series_batch *b,
			uint32_t *order, uint32_t *start)
{
	uint64_t mask = ep->n_shards - 1;

	memset(start, 0, (ep->n_shards + 1) * sizeof(*start));
	for (size_t i = 0; i < b->n_series; i++)
		start[(b->series[i].hash & mask) + 1]++;
	for (unsigned k = 0; k < ep->n_shards; k++)
		start[k + 1] += start[k];
	for (size_t i = 0; i < b->n_series; i++)
		order[start[b->series[i].hash & mask]++] = (uint32_t)i;
	/* the loop moved each start to the next group's: move them back */
	for (unsigned k = ep->n_shards; k > 0; k--)
		start[k] = start[k - 1];
	start[0] = 0;
}

/* Queue a producer batch for one endpoint: one lock round per shard (not
 * per series), one pending-gauge update per call. The series are grouped
 * by shard in one pass over the batch (passing over the whole batch once per
 * shard was ~3% of the CPU at 200 targets x 1,000 series); a shard gets its
 * series in batch order either way. */
#define ORDER_ON_STACK 2048
#define ENQUEUE_AHEAD  8
static int enqueue_batch(struct rw *rw, struct endpoint *ep, const struct starling_series_batch *b,
			 int64_t now)
{
	long long queued = 0, relabel_dropped = 0, exemplars = 0, unsent = 0;
	uint32_t order_stack[ORDER_ON_STACK], start[MAX_SHARDS + 1], *order = order_stack;
	bool cut = false;
	int ret = 0;

	if (b->n_series > UINT32_MAX)
		return -E2BIG;
	if (b->n_series > ORDER_ON_STACK && !(order = malloc(b->n_series * sizeof(*order))))
		return -ENOMEM;
	shard_order(ep, b, order, start);
	for (unsigned k = 0; k < ep->n_shards; k++) {
		struct shard *sh = &ep->shards[k];
		bool locked = false;

		for (uint32_t j = start[k]; j < start[k + 1]; j++) {
			size_t i = order[j];
			const struct starling_series *s = &b->series[i];
			struct starling_series_ext xs;
			const struct starling_series_ext *x;
			size_t n_h;
			int r;

			/* a shard's series are spread over the batch: fetch the
			 * series and ext a few ahead, then their label arrays */
			if (j + ENQUEUE_AHEAD < start[k + 1]) {
				size_t a = order[j + ENQUEUE_AHEAD];

				__builtin_prefetch(&b->series[a]);
				if (b->ext)
					__builtin_prefetch((const char *)b->ext + a * b->ext_size);
			}
			if (j + ENQUEUE_AHEAD / 2 < start[k + 1]) {
				size_t a = order[j + ENQUEUE_AHEAD / 2];

				__builtin_prefetch(b->series[a].labels);
				if (b->ext && b->ext_size >=
						  offsetof(struct starling_series_ext, label_lens) +
						      sizeof(const uint32_t *)) {
					const struct starling_series_ext *xa =
					    (const void *)((const char *)b->ext + a * b->ext_size);

					if (xa->label_lens)
						__builtin_prefetch(xa->label_lens);
				}
			}
			memset(&xs, 0, sizeof(xs));
			x = series_ext(b, i, ep, &xs, &unsent);
			n_h = x ? x->n_histograms : 0;
			if (!s->n_samples && !n_h)
				continue;
			if (!locked) {
				pthread_mutex_lock(&sh->lock);
				locked = true;
			}
			r = encode_series(rw, sh, s, x, now);
			if (r < 0) {
				if (!ret)
					ret = r;
				continue;
			}
			if (r == 2) {
				relabel_dropped += (long long)(s->n_samples + n_h);
				continue;
			}
			cut |= r == 1;
			queued += (long long)(s->n_samples + n_h);
			exemplars += x ? x->n_exemplars : 0;
		}
		if (locked)
			pthread_mutex_unlock(&sh->lock);
	}
	if (order != order_stack)
		free(order);
	if (queued)
		update_pending(ep, queued);
	if (relabel_dropped)
		rw->api->metric_add(ep->m_relabel_dropped, (double)relabel_dropped);
	if (exemplars)
		rw->api->metric_add(ep->m_ex_sent, (double)exemplars);
	/* counted by series_ext() as it read each series' ext (every series
	 * of a batch from prometheus.scrape has one now, label_lens) */
	if (unsent)
		rw->api->metric_add(ep->m_hist_dropped, (double)unsent);
	if (cut) {
		enforce_limit(ep);
		if (rw->http)
			starling_http_wakeup(rw->http);
	}
	return ret;
}

static void md_rehash(struct rw *rw)
{
	size_t cap = rw->md_index_cap ? rw->md_index_cap * 2 : 256;
	uint32_t *idx = calloc(cap, sizeof(*idx));

	if (!idx)
		return;
	for (size_t i = 0; i < rw->n_md; i++) {
		size_t p = rw->md[i].hash & (cap - 1);

		while (idx[p])
			p = (p + 1) & (cap - 1);
		idx[p] = (uint32_t)(i + 1);
	}
	free(rw->md_index);
	rw->md_index = idx;
	rw->md_index_cap = cap;
}

static bool str_eq(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

static char *dup_opt(const char *s)
{
	return s && *s ? strdup(s) : NULL;
}

/* Remember the newest metadata per family (sent every send_interval). */
static void record_metadata(struct rw *rw, const struct starling_metadata *md)
{
	uint64_t h;
	size_t p;
	struct md_entry *e;

	if (!md->family || !*md->family)
		return;
	h = XXH3_64bits(md->family, strlen(md->family));
	pthread_mutex_lock(&rw->md_lock);
	if ((rw->n_md + 1) * 2 > rw->md_index_cap)
		md_rehash(rw);
	if (!rw->md_index_cap)
		goto out;
	for (p = h & (rw->md_index_cap - 1); rw->md_index[p];
	     p = (p + 1) & (rw->md_index_cap - 1)) {
		e = &rw->md[rw->md_index[p] - 1];
		if (e->hash == h && !strcmp(e->family, md->family)) {
			if (e->type != md->type ||
			    !str_eq(e->help, md->help && *md->help ? md->help : NULL) ||
			    !str_eq(e->unit, md->unit && *md->unit ? md->unit : NULL)) {
				free(e->help);
				free(e->unit);
				e->help = dup_opt(md->help);
				e->unit = dup_opt(md->unit);
				e->type = md->type;
				e->gen = ++rw->md_gen;
			}
			goto out;
		}
	}
	if (rw->n_md == rw->cap_md) {
		size_t nc = rw->cap_md ? rw->cap_md * 2 : 64;
		struct md_entry *n = realloc(rw->md, nc * sizeof(*n));

		if (!n)
			goto out;
		rw->md = n;
		rw->cap_md = nc;
	}
	e = &rw->md[rw->n_md];
	e->family = strdup(md->family);
	if (!e->family)
		goto out;
	e->help = dup_opt(md->help);
	e->unit = dup_opt(md->unit);
	e->type = md->type;
	e->hash = h;
	e->gen = ++rw->md_gen;
	rw->md_index[p] = (uint32_t)(++rw->n_md);
out:
	pthread_mutex_unlock(&rw->md_lock);
}

static int rw_receive_series(void *inst, const struct starling_series_batch *b)
{
	struct rw *rw = inst;
	int64_t now = rw->api->monotonic_ms();
	size_t samples = 0;
	int ret = 0;

	for (size_t i = 0; i < b->n_series; i++)
		samples += b->series[i].n_samples;
	for (size_t e = 0; e < rw->n_eps; e++) {
		int r = enqueue_batch(rw, &rw->eps[e], b, now);

		if (r && !ret) {
			ret = r;
			LOG(rw, STARLING_LOG_ERROR, "endpoint %s: cannot queue series: %s",
			    rw->eps[e].name, strerror(-r));
		}
	}
	for (size_t i = 0; i < b->n_metadata; i++)
		record_metadata(rw, &b->metadata[i]);
	rw->api->metric_add(rw->m_in, (double)samples);
	return ret;
}

/* ---- sending ------------------------------------------------------------ */

static void send_done(void *arg, const struct starling_http_response *resp);

/* Read the head record's payload into sh->body. Caller holds sh->lock.
 * Returns 0, or -EBADMSG when it is unreadable (caller drops it). */
static int load_head(struct shard *sh)
{
	struct endpoint *ep = sh->ep;
	struct rec *r = sh->head;
	char path[4096];
	int fd, ret;

	if (sh->body_loaded && sh->body_seq == r->seq)
		return 0;
	ret = starling_rw_buf_fit(&sh->body, r->len ? r->len : 1);
	if (ret)
		return ret;
	if (r->mem) {
		memcpy(sh->body.data, r->mem, r->len);
	} else {
		file_path(ep, r->file->id, r->file->shard, path, sizeof(path));
		fd = r->file->fd >= 0 ? r->file->fd : open(path, O_RDONLY | O_CLOEXEC);
		ret = fd < 0 ? -errno
			     : rw_seg_read_payload(fd, r->off, r->len, r->crc, sh->body.data);
		if (fd >= 0 && fd != r->file->fd)
			close(fd);
		if (ret) {
			LOG(ep->rw, STARLING_LOG_ERROR,
			    "endpoint %s: unreadable or corrupt batch in %s: %u samples dropped",
			    ep->name, path, r->samples);
			return -EBADMSG;
		}
	}
	sh->body.len = r->len;
	sh->body_seq = r->seq;
	sh->body_loaded = true;
	return 0;
}

/* Pop the head record after it was sent, refused or dropped. */
static void finish_head(struct shard *sh)
{
	struct rec *r;
	uint32_t samples;

	pthread_mutex_lock(&sh->lock);
	r = sh->head;
	sh->head = r->next;
	if (!sh->head)
		sh->tail = NULL;
	sh->in_flight = false;
	sh->body_loaded = false;
	samples = r->samples;
	rec_done(sh, r);
	pthread_mutex_unlock(&sh->lock);
	update_pending(sh->ep, -(long long)samples);
}

static void try_send(struct rw *rw, struct shard *sh, int64_t now)
{
	struct endpoint *ep = sh->ep;
	struct starling_http_request req = {0};
	const char *hdrs[64];
	char attempt[48];
	size_t nh = 0;
	int r;

	pthread_mutex_lock(&sh->lock);
	if (sh->batch_samples && now - sh->batch_start_ms >= ep->deadline_ms && cut_batch(sh)) {
		pthread_mutex_unlock(&sh->lock);
		enforce_limit(ep);
		pthread_mutex_lock(&sh->lock);
	}
	if (sh->in_flight || !sh->head || now < sh->next_try_ms) {
		pthread_mutex_unlock(&sh->lock);
		return;
	}
	if (ep->age_limit_ms > 0 && sh->head->max_ts < rw->api->now_ms() - ep->age_limit_ms) {
		uint32_t n = sh->head->samples;

		sh->in_flight = true;
		pthread_mutex_unlock(&sh->lock);
		rw->api->metric_add(ep->m_dropped, n);
		LOG(rw, STARLING_LOG_WARN,
		    "endpoint %s: dropped %u samples older than sample_age_limit", ep->name, n);
		finish_head(sh);
		return;
	}
	r = load_head(sh);
	if (r) {
		uint32_t n = sh->head->samples;

		sh->in_flight = true;
		pthread_mutex_unlock(&sh->lock);
		rw->api->metric_add(ep->m_dropped, n);
		finish_head(sh);
		return;
	}
	sh->in_flight = true;
	pthread_mutex_unlock(&sh->lock);

	for (size_t i = 0; i < ep->n_headers && nh < 60; i++)
		hdrs[nh++] = ep->headers[i];
	if (sh->attempt) {
		snprintf(attempt, sizeof(attempt), "Retry-Attempt: %u", sh->attempt);
		hdrs[nh++] = attempt;
	}
	req.url = ep->url;
	req.method = "POST";
	req.headers = hdrs;
	req.n_headers = nh;
	req.body = sh->body.data;
	req.body_len = sh->body.len;
	req.timeout_ms = ep->timeout_ms;
	req.body_limit = 1 << 20; /* the response body is ignored anyway */
	req.user_agent = USER_AGENT;
	req.auth = ep->auth;
	req.done = send_done;
	req.arg = sh;
	r = starling_http_submit(rw->http, &req);
	if (r) {
		LOG(rw, STARLING_LOG_ERROR, "endpoint %s: cannot send: %s", ep->name, strerror(-r));
		pthread_mutex_lock(&sh->lock);
		sh->in_flight = false;
		sh->next_try_ms = now + ep->max_backoff_ms;
		pthread_mutex_unlock(&sh->lock);
	}
}

static void send_done(void *arg, const struct starling_http_response *resp)
{
	struct shard *sh = arg;
	struct endpoint *ep = sh->ep;
	struct rw *rw = ep->rw;
	bool retry = false;
	int64_t delay, max_ts;
	uint32_t n;

	/* the head is not removed by anyone else while it is in flight */
	pthread_mutex_lock(&sh->lock);
	n = sh->head->samples;
	max_ts = sh->head->max_ts;
	pthread_mutex_unlock(&sh->lock);

	if (resp->error == -ECANCELED) {
		/* shutting down: the segment stays queued for the next start */
		pthread_mutex_lock(&sh->lock);
		sh->in_flight = false;
		pthread_mutex_unlock(&sh->lock);
		return;
	}
	if (!resp->error && resp->status >= 200 && resp->status < 300) {
		rw->api->metric_add(ep->m_sent, n);
		rw->api->metric_add(ep->m_bytes, (double)sh->body.len);
		if (max_ts > ep->highest_sent_ms) {
			ep->highest_sent_ms = max_ts;
			rw->api->metric_set(ep->m_highest, (double)max_ts / 1000.0);
		}
		sh->attempt = 0;
		sh->backoff_ms = 0;
		finish_head(sh);
		return;
	}
	if (resp->error || resp->status >= 500 || (resp->status == 429 && ep->retry_429))
		retry = true;
	if (!retry) {
		rw->api->metric_add(ep->m_failed, n);
		/* the receiver's own words say why (out of order, bad label...) */
		LOG(rw, STARLING_LOG_ERROR,
		    "endpoint %s: receiver refused %u samples with HTTP %ld: dropped (%.*s)",
		    ep->name, n, resp->status,
		    (int)(resp->body && resp->body_len < 200 ? resp->body_len
							     : (resp->body ? 200 : 0)),
		    resp->body ? (const char *)resp->body : "");
		sh->attempt = 0;
		sh->backoff_ms = 0;
		finish_head(sh);
		return;
	}
	rw->api->metric_add(ep->m_retried, n);
	sh->backoff_ms = sh->backoff_ms ? sh->backoff_ms * 2 : ep->min_backoff_ms;
	if (sh->backoff_ms > ep->max_backoff_ms)
		sh->backoff_ms = ep->max_backoff_ms;
	delay = sh->backoff_ms;
	if (resp->retry_after_ms > delay)
		delay = resp->retry_after_ms;
	if (sh->attempt == 0 || sh->attempt % 20 == 0) {
		if (resp->error)
			LOG(rw, STARLING_LOG_WARN,
			    "endpoint %s: send failed (%s), retrying in %" PRId64 " ms", ep->name,
			    resp->error_msg, delay);
		else
			LOG(rw, STARLING_LOG_WARN,
			    "endpoint %s: receiver answered HTTP %ld, retrying in %" PRId64 " ms",
			    ep->name, resp->status, delay);
	}
	sh->attempt++;
	pthread_mutex_lock(&sh->lock);
	sh->in_flight = false;
	sh->next_try_ms = rw->api->monotonic_ms() + delay;
	pthread_mutex_unlock(&sh->lock);
}

static void md_done(void *arg, const struct starling_http_response *resp)
{
	struct endpoint *ep = arg;
	struct rw *rw = ep->rw;

	ep->md_in_flight = false;
	if (resp->error == -ECANCELED)
		return;
	if (!resp->error && resp->status >= 200 && resp->status < 300) {
		rw->api->metric_add(ep->m_md_sent, 1);
		return;
	}
	rw->api->metric_add(ep->m_md_failed, 1);
	LOG(rw, STARLING_LOG_WARN,
	    "endpoint %s: metadata send failed: %s (HTTP %ld); next try in %" PRId64 " ms",
	    ep->name, resp->error ? resp->error_msg : "refused", resp->status, ep->md_interval_ms);
}

/* Every send_interval: all known metadata in one request (at most md_max
 * entries; the rest goes next interval). In between, at most once a
 * second, the entries that are new or changed since this endpoint's last
 * request (a producer with honor_metadata hands them over in the scrape
 * where they appear), so a receiver learns them with the first samples.
 * The first request is always a full one. */
static void try_send_metadata(struct rw *rw, struct endpoint *ep, int64_t now)
{
	struct starling_http_request req = {0};
	const char *hdrs[64];
	size_t nh = 0, count = 0;
	bool full = now >= ep->md_next_ms, changed;
	uint64_t gen;
	int r = 0;

	if (!ep->md_send || ep->md_in_flight)
		return;
	pthread_mutex_lock(&rw->md_lock);
	gen = rw->md_gen;
	changed = gen > ep->md_sent_gen && now >= ep->md_prompt_ms;
	if (changed && ep->md_sent_gen == 0)
		full = true;
	if (!full && !changed) {
		pthread_mutex_unlock(&rw->md_lock);
		return;
	}
	ep->md_req.len = 0;
	for (size_t i = 0; i < rw->n_md && count < ep->md_max && !r; i++) {
		struct starling_metadata md = {rw->md[i].family, rw->md[i].type, rw->md[i].help,
					       rw->md[i].unit};

		if (!full && rw->md[i].gen <= ep->md_sent_gen)
			continue;
		r = starling_rw_append_metadata(&ep->md_req, &md);
		count++;
	}
	pthread_mutex_unlock(&rw->md_lock);
	if (!count) {
		ep->md_next_ms = now + 1000; /* nothing yet: look again soon */
		return;
	}
	if (full)
		ep->md_next_ms = now + ep->md_interval_ms;
	ep->md_sent_gen = gen;
	ep->md_prompt_ms = now + 1000;
	if (r || starling_rw_snappy(ep->md_req.data, ep->md_req.len, &ep->md_body))
		return;
	for (size_t i = 0; i < ep->n_headers && nh < 64; i++)
		hdrs[nh++] = ep->headers[i];
	req.url = ep->url;
	req.method = "POST";
	req.headers = hdrs;
	req.n_headers = nh;
	req.body = ep->md_body.data;
	req.body_len = ep->md_body.len;
	req.timeout_ms = ep->timeout_ms;
	req.body_limit = 1 << 20;
	req.user_agent = USER_AGENT;
	req.auth = ep->auth;
	req.done = md_done;
	req.arg = ep;
	if (!starling_http_submit(rw->http, &req))
		ep->md_in_flight = true;
}

static void *sender_main(void *arg)
{
	struct rw *rw = arg;

	while (atomic_load(&rw->running)) {
		int64_t now = rw->api->monotonic_ms();

		if (atomic_load(&rw->draining)) {
			/* stopping: no new request; those in flight may still
			 * get their answer (send_done) until drain_until */
			if (!starling_http_pending(rw->http) ||
			    now >= atomic_load(&rw->drain_until))
				break;
			starling_http_run(rw->http, 50);
			continue;
		}
		for (size_t e = 0; e < rw->n_eps; e++) {
			struct endpoint *ep = &rw->eps[e];

			for (unsigned i = 0; i < ep->n_shards; i++)
				try_send(rw, &ep->shards[i], now);
			try_send_metadata(rw, ep, now);
		}
		/* wakes early on completion, new segment, or stop */
		starling_http_run(rw->http, 50);
	}
	return NULL;
}

/* ---- startup: segments left by a previous run --------------------------- */

struct found {
	uint64_t id;
	unsigned shard;
};

static int found_cmp(const void *a, const void *b)
{
	const struct found *x = a, *y = b;

	return (x->id > y->id) - (x->id < y->id);
}

/* Segment files larger than this are not read at recovery (ours are cut at
 * SEG_TARGET plus one batch; anything far bigger is not ours). */
#define SEG_READ_MAX ((size_t)256 << 20)

struct recover_ctx {
	struct shard *sh;
	struct segfile *f;
	struct endpoint *ep;
};

static void recover_rec(void *arg, uint64_t off, const struct rw_rec_hdr *h)
{
	struct recover_ctx *c = arg;
	struct shard *sh = c->sh;
	struct rec *r = calloc(1, sizeof(*r));

	if (!r)
		return;
	r->seq = ++sh->next_rec;
	pthread_mutex_lock(&c->ep->lock);
	r->order = c->ep->next_order++;
	pthread_mutex_unlock(&c->ep->lock);
	r->file = c->f;
	r->off = off;
	r->len = h->len;
	r->crc = h->crc;
	r->samples = h->samples;
	r->max_ts = h->max_ts;
	if (sh->tail)
		sh->tail->next = r;
	else
		sh->head = r;
	sh->tail = r;
	c->f->live++;
}

/* Queue the intact, not-yet-done records of one file (rw_seg_scan); what
 * is damaged is skipped, logged and its samples counted as dropped. Returns
 * the samples queued. */
static uint64_t recover_file(struct endpoint *ep, uint64_t id, unsigned shard)
{
	struct shard *sh = &ep->shards[shard & (ep->n_shards - 1)];
	struct segfile *f = calloc(1, sizeof(*f));
	struct recover_ctx c = {sh, f, ep};
	struct rw_seg_scan_stats st;
	char path[4096];
	uint8_t *buf;
	size_t len;
	int r;

	if (!f)
		return 0;
	f->id = id;
	f->shard = shard;
	f->fd = -1;
	f->sealed = true;
	file_path(ep, id, shard, path, sizeof(path));
	r = rw_seg_read_file(path, SEG_READ_MAX, &buf, &len);
	if (r) {
		LOG(ep->rw, STARLING_LOG_WARN, "endpoint %s: cannot read %s: %s", ep->name, path,
		    strerror(-r));
		free(f);
		return 0;
	}
	f->size = len;
	f->synced = len;
	f->dir_synced = true;
	rw_seg_scan(buf, len, recover_rec, &c, &st);
	free(buf);
	if (st.corrupt || (st.skipped_bytes && !st.torn_tail)) {
		LOG(ep->rw, STARLING_LOG_ERROR,
		    "endpoint %s: %s: corrupt segment: %zu damaged records (%" PRIu64
		    " samples) dropped, %zu unreadable bytes skipped, %zu intact records kept",
		    ep->name, path, st.corrupt, st.lost_samples, st.skipped_bytes, st.records);
		ep->rw->api->metric_add(ep->m_dropped, (double)st.lost_samples);
	} else if (st.torn_tail) {
		LOG(ep->rw, STARLING_LOG_WARN,
		    "endpoint %s: %s: torn record of %zu bytes at the end ignored (crash while "
		    "writing it)",
		    ep->name, path, st.skipped_bytes);
	}
	if (sh->files_tail)
		sh->files_tail->next = f;
	else
		sh->files = f;
	sh->files_tail = f;
	add_disk_bytes(ep, (int64_t)f->size);
	file_release(sh, f); /* nothing left to send in it */
	return st.samples;
}

static int recover_segments(struct rw *rw, struct endpoint *ep)
{
	struct found *f = NULL;
	size_t n = 0, cap = 0;
	struct dirent *d;
	DIR *dir = opendir(ep->dir);
	uint64_t total = 0;

	if (!dir)
		return -errno;
	while ((d = readdir(dir))) {
		uint64_t id;
		unsigned shard;

		if (rw_seg_name_parse(d->d_name, &id, &shard))
			continue;
		if (n == cap) {
			struct found *nf = realloc(f, (cap = cap ? 2 * cap : 64) * sizeof(*f));

			if (!nf)
				break;
			f = nf;
		}
		f[n].id = id;
		f[n].shard = shard;
		n++;
		if (id >= ep->next_seq)
			ep->next_seq = id + 1;
	}
	closedir(dir);
	if (n)
		qsort(f, n, sizeof(*f), found_cmp);
	for (size_t i = 0; i < n; i++)
		total += recover_file(ep, f[i].id, f[i].shard);
	free(f);
	if (total) {
		LOG(rw, STARLING_LOG_INFO,
		    "endpoint %s: %" PRIu64 " samples buffered by a previous run will be sent",
		    ep->name, total);
		update_pending(ep, (long long)total);
	}
	return 0;
}

/* ---- lifecycle ----------------------------------------------------------- */

static void endpoint_free(struct endpoint *ep)
{
	uint64_t lost = 0;
	size_t lost_recs = 0;

	if (ep->shards) {
		for (unsigned i = 0; i < ep->n_shards; i++) {
			struct shard *sh = &ep->shards[i];

			/* records stay on disk for the next run; those kept in
			 * memory are lost: counted as dropped, one line in all */
			while (sh->head) {
				struct rec *r = sh->head;

				sh->head = r->next;
				if (r->mem) {
					lost_recs++;
					lost += r->samples;
				}
				free(r->mem);
				free(r);
			}
			while (sh->files) {
				struct segfile *f = sh->files;

				sh->files = f->next;
				if (f->fd >= 0)
					close(f->fd);
				free(f);
			}
			starling_rw_buf_free(&sh->batch);
			starling_rw_buf_free(&sh->lbuf);
			starling_rw_buf_free(&sh->zbuf);
			starling_rw_buf_free(&sh->body);
			free(sh->merged);
			free(sh->mlens);
			free(sh->mll);
			starling_rw_buf_free(&sh->vtmp);
			starling_lset_free(&sh->lset);
			starling_relabel_scratch_free(&sh->rscratch);
			pthread_mutex_destroy(&sh->lock);
		}
		free(ep->shards);
	}
	if (lost) {
		ep->rw->api->metric_add(ep->m_dropped, (double)lost);
		LOG(ep->rw, STARLING_LOG_ERROR,
		    "endpoint %s: %zu batches (%" PRIu64
		    " samples) only in memory (no state_dir, or the disk buffer could not be "
		    "written) are lost at shutdown",
		    ep->name, lost_recs, lost);
	}
	for (size_t i = 0; i < ep->n_headers; i++)
		free(ep->headers[i]);
	free(ep->headers);
	starling_http_auth_free(ep->auth);
	starling_relabel_rules_free(ep->relabel);
	starling_rw_buf_free(&ep->md_req);
	starling_rw_buf_free(&ep->md_body);
	free(ep->url);
	free(ep->name);
	free(ep->dir);
	pthread_mutex_destroy(&ep->lock);
}

static void rw_destroy(void *inst)
{
	struct rw *rw = inst;

	if (!rw)
		return;
	/* persist open batches so that nothing accepted is lost */
	for (size_t e = 0; e < rw->n_eps && !rw->dead; e++)
		for (unsigned i = 0; rw->eps[e].shards && i < rw->eps[e].n_shards; i++) {
			struct shard *sh = &rw->eps[e].shards[i];

			if (rw->eps[e].dir) {
				pthread_mutex_lock(&sh->lock);
				cut_batch(sh);
				file_seal(sh, sh->open);
				pthread_mutex_unlock(&sh->lock);
			}
		}
	for (size_t e = 0; e < rw->n_eps; e++)
		endpoint_free(&rw->eps[e]);
	free(rw->eps);
	for (size_t i = 0; i < rw->n_ext; i++) {
		free((char *)rw->ext[i].name);
		free((char *)rw->ext[i].value);
	}
	free(rw->ext);
	free(rw->ext_ll);
	for (size_t i = 0; i < rw->n_md; i++) {
		free(rw->md[i].family);
		free(rw->md[i].help);
		free(rw->md[i].unit);
	}
	free(rw->md);
	free(rw->md_index);
	pthread_mutex_destroy(&rw->md_lock);
	free(rw);
}

static bool reserved_header(const char *name)
{
	static const char *const r[] = {"content-type",
					"content-encoding",
					"user-agent",
					"x-prometheus-remote-write-version",
					"content-length",
					"host",
					NULL};

	for (size_t i = 0; r[i]; i++)
		if (!strcasecmp(name, r[i]))
			return true;
	return false;
}

static int add_header(struct endpoint *ep, const char *name, const char *value)
{
	size_t len = strlen(name) + strlen(value) + 3;
	char **h = realloc(ep->headers, (ep->n_headers + 1) * sizeof(*h));

	if (!h)
		return -ENOMEM;
	ep->headers = h;
	h[ep->n_headers] = malloc(len);
	if (!h[ep->n_headers])
		return -ENOMEM;
	snprintf(h[ep->n_headers], len, "%s: %s", name, value);
	ep->n_headers++;
	return 0;
}

static int cfg_int(struct rw *rw, const starling_config *n, const char *path, int64_t min,
		   int64_t *out)
{
	int r = rw->api->config_int(n, path, out);

	if (!r && *out < min)
		r = -ERANGE;
	if (r)
		LOG(rw, STARLING_LOG_ERROR, "%s: %s: expected an integer >= %" PRId64,
		    rw->api->config_where(n), path, min);
	return r;
}

static int cfg_dur(struct rw *rw, const starling_config *n, const char *path, int64_t *out)
{
	int r = rw->api->config_duration_ms(n, path, out);

	if (r)
		LOG(rw, STARLING_LOG_ERROR, "%s: %s: expected a duration such as \"5s\"",
		    rw->api->config_where(n), path);
	return r;
}

static int cfg_bool(struct rw *rw, const starling_config *n, const char *path, bool *out)
{
	int r = rw->api->config_bool(n, path, out);

	if (r)
		LOG(rw, STARLING_LOG_ERROR, "%s: %s: expected true or false",
		    rw->api->config_where(n), path);
	return r;
}

static void make_metrics(struct rw *rw, struct endpoint *ep)
{
	const struct starling_host_api *a = rw->api;
	char labels[1024];

	snprintf(labels, sizeof(labels), "remote_name=%s,url=%s", ep->name, ep->url);
#define REG(field, type, name, help)                                                               \
	ep->field = a->metric_register(rw->self, type, name, help, labels)
	REG(m_sent, STARLING_SELF_COUNTER, "prometheus_remote_storage_samples_total",
	    "Samples sent to remote storage (2xx).");
	REG(m_failed, STARLING_SELF_COUNTER, "prometheus_remote_storage_samples_failed_total",
	    "Samples refused by remote storage with a non-retryable error (4xx), dropped.");
	REG(m_retried, STARLING_SELF_COUNTER, "prometheus_remote_storage_samples_retried_total",
	    "Samples in requests that failed with a retryable error and were retried.");
	REG(m_dropped, STARLING_SELF_COUNTER, "prometheus_remote_storage_samples_dropped_total",
	    "Samples dropped before sending: buffer full, sample_age_limit, corrupt segment.");
	REG(m_pending, STARLING_SELF_GAUGE, "prometheus_remote_storage_samples_pending",
	    "Samples accepted and not yet sent or dropped (queue length).");
	REG(m_highest, STARLING_SELF_GAUGE,
	    "prometheus_remote_storage_queue_highest_sent_timestamp_seconds",
	    "Newest sample timestamp successfully sent, in seconds since the epoch.");
	REG(m_bytes, STARLING_SELF_COUNTER, "prometheus_remote_storage_bytes_total",
	    "Compressed request bytes sent (2xx).");
	REG(m_md_sent, STARLING_SELF_COUNTER, "prometheus_remote_storage_metadata_requests_total",
	    "Metadata requests sent successfully.");
	REG(m_md_failed, STARLING_SELF_COUNTER, "prometheus_remote_storage_metadata_failed_total",
	    "Metadata requests that failed.");
	REG(m_buffer, STARLING_SELF_GAUGE, "starling_remote_write_buffer_bytes",
	    "Bytes of the on-disk queue.");
	REG(m_mem, STARLING_SELF_GAUGE, "starling_remote_write_memory_buffer_bytes",
	    "Bytes of batches queued in memory (no state_dir, or the disk buffer could not be "
	    "written); they count against max_buffer_size.");
	REG(m_relabel_dropped, STARLING_SELF_COUNTER,
	    "starling_remote_write_samples_relabel_dropped_total",
	    "Samples of series dropped by write_relabel_config.");
	REG(m_hist_dropped, STARLING_SELF_COUNTER, "starling_remote_write_histograms_unsent_total",
	    "Native histogram samples not sent because send_native_histograms is false.");
	REG(m_ex_sent, STARLING_SELF_COUNTER, "prometheus_remote_storage_exemplars_in_total",
	    "Exemplars queued for sending.");
	REG(m_shards, STARLING_SELF_GAUGE, "prometheus_remote_storage_shards",
	    "Shards (parallel requests) per endpoint.");
#undef REG
	a->metric_set(ep->m_shards, ep->n_shards);
}

static int endpoint_init(struct rw *rw, struct endpoint *ep, const starling_config *n, size_t index)
{
	const struct starling_host_api *a = rw->api;
	const starling_config *hdrs, *wr;
	const char *url = NULL, *name = NULL;
	int64_t v, min_sh, max_sh;
	char err[512];
	int r;

	ep->rw = rw;
	pthread_mutex_init(&ep->lock, NULL);
	ep->highest_sent_ms = INT64_MIN;
	if (a->config_string(n, "url", &url) || !url ||
	    (strncmp(url, "http://", 7) && strncmp(url, "https://", 8))) {
		if (url && *url)
			LOG(rw, STARLING_LOG_ERROR,
			    "%s: endpoint.url: \"%s\" has no http:// or https:// scheme",
			    a->config_where(a->config_lookup(n, "url")), url);
		else
			LOG(rw, STARLING_LOG_ERROR,
			    "%s: endpoint.url: required, an http:// or https:// URL",
			    a->config_where(n));
		return -EINVAL;
	}
	ep->url = strdup(url);
	r = a->config_string(n, "name", &name);
	if (r == 0 && name && *name) {
		if (!valid_dir_name(name)) {
			LOG(rw, STARLING_LOG_ERROR,
			    "%s: endpoint.name \"%s\": use letters, digits, '_', '-' and '.'",
			    a->config_where(n), name);
			return -EINVAL;
		}
		ep->name = strdup(name);
	} else {
		char buf[32];

		snprintf(buf, sizeof(buf), "%016" PRIx64, (uint64_t)XXH3_64bits(url, strlen(url)));
		ep->name = strdup(buf);
	}
	if (!ep->url || !ep->name)
		return -ENOMEM;
	for (size_t i = 0; i < index; i++)
		if (!strcmp(rw->eps[i].name, ep->name)) {
			LOG(rw, STARLING_LOG_ERROR,
			    "%s: endpoint name \"%s\" used twice (set `name`)", a->config_where(n),
			    ep->name);
			return -EINVAL;
		}
	if ((r = cfg_dur(rw, n, "remote_timeout", &ep->timeout_ms)) ||
	    (r = cfg_int(rw, n, "queue_config.max_samples_per_send", 1, &v)))
		return r;
	ep->max_samples = (size_t)v;
	if ((r = cfg_int(rw, n, "queue_config.min_shards", 1, &min_sh)) ||
	    (r = cfg_int(rw, n, "queue_config.max_shards", 1, &max_sh)) ||
	    (r = cfg_int(rw, n, "queue_config.capacity", 1, &v)) ||
	    (r = cfg_dur(rw, n, "queue_config.batch_send_deadline", &ep->deadline_ms)) ||
	    (r = cfg_dur(rw, n, "queue_config.min_backoff", &ep->min_backoff_ms)) ||
	    (r = cfg_dur(rw, n, "queue_config.max_backoff", &ep->max_backoff_ms)) ||
	    (r = cfg_bool(rw, n, "queue_config.retry_on_http_429", &ep->retry_429)) ||
	    (r = cfg_dur(rw, n, "queue_config.sample_age_limit", &ep->age_limit_ms)) ||
	    (r = cfg_bool(rw, n, "metadata_config.send", &ep->md_send)) ||
	    (r = cfg_dur(rw, n, "metadata_config.send_interval", &ep->md_interval_ms)) ||
	    (r = cfg_int(rw, n, "metadata_config.max_samples_per_send", 1, &v)))
		return r;
	ep->md_max = (size_t)v;
	r = a->config_bytes(n, "queue_config.max_buffer_size", &ep->max_bytes);
	if (r || ep->max_bytes < 4096) {
		LOG(rw, STARLING_LOG_ERROR,
		    "%s: queue_config.max_buffer_size: expected a size >= 4KiB",
		    a->config_where(n));
		return -EINVAL;
	}
	ep->fsync = RW_FSYNC_SEGMENT;
	{
		const char *fs = NULL;

		if (a->config_string(n, "queue_config.fsync", &fs) == 0 &&
		    rw_fsync_parse(fs, &ep->fsync)) {
			LOG(rw, STARLING_LOG_ERROR,
			    "%s: queue_config.fsync \"%s\": expected never, segment or always",
			    a->config_where(n), fs);
			return -EINVAL;
		}
	}
	ep->seg_target = SEG_TARGET;
	if ((int64_t)ep->seg_target > ep->max_bytes / 8)
		ep->seg_target = (size_t)(ep->max_bytes / 8);
	if (min_sh > max_sh) {
		LOG(rw, STARLING_LOG_ERROR, "%s: queue_config: min_shards > max_shards",
		    a->config_where(n));
		return -EINVAL;
	}
	if (ep->min_backoff_ms < 1)
		ep->min_backoff_ms = 1;
	if (ep->max_backoff_ms < ep->min_backoff_ms)
		ep->max_backoff_ms = ep->min_backoff_ms;
	if (ep->deadline_ms < 1)
		ep->deadline_ms = 1;
	/* A power of two, so the shard of a series is a mask of its hash. */
	ep->n_shards = DEFAULT_SHARDS;
	while (ep->n_shards < min_sh && ep->n_shards < MAX_SHARDS)
		ep->n_shards *= 2;
	while (ep->n_shards > max_sh)
		ep->n_shards /= 2;

	wr = a->config_lookup(n, "write_relabel_config");
	if (wr && a->config_count(wr)) {
		r = starling_relabel_rules_from_config(a, wr, &ep->relabel, err, sizeof(err));
		if (r) {
			LOG(rw, STARLING_LOG_ERROR, "write_relabel_config: %s", err);
			return r;
		}
	}
	ep->send_exemplars = true;
	a->config_bool(n, "send_exemplars", &ep->send_exemplars);
	ep->send_histograms = false;
	a->config_bool(n, "send_native_histograms", &ep->send_histograms);
	r = starling_http_auth_from_config(a, n, &ep->auth, err, sizeof(err));
	if (r) {
		LOG(rw, STARLING_LOG_ERROR, "%s", err);
		return r;
	}
	if (add_header(ep, "Content-Type", "application/x-protobuf") ||
	    add_header(ep, "Content-Encoding", "snappy") ||
	    add_header(ep, "X-Prometheus-Remote-Write-Version", "0.1.0"))
		return -ENOMEM;
	hdrs = a->config_lookup(n, "headers");
	for (size_t i = 0; hdrs && i < a->config_count(hdrs); i++) {
		const starling_config *h = a->config_child(hdrs, i);
		const char *hn = a->config_name(h), *hv = NULL;

		if (!hn || a->config_string(h, NULL, &hv) || strpbrk(hv, "\r\n")) {
			LOG(rw, STARLING_LOG_ERROR,
			    "%s: headers: values must be single-line strings", a->config_where(h));
			return -EINVAL;
		}
		if (reserved_header(hn)) {
			LOG(rw, STARLING_LOG_ERROR,
			    "%s: headers: %s is set by remote write and cannot be overridden",
			    a->config_where(h), hn);
			return -EINVAL;
		}
		if (add_header(ep, hn, hv))
			return -ENOMEM;
	}
	ep->shards = calloc(ep->n_shards, sizeof(*ep->shards));
	if (!ep->shards)
		return -ENOMEM;
	for (unsigned i = 0; i < ep->n_shards; i++) {
		pthread_mutex_init(&ep->shards[i].lock, NULL);
		ep->shards[i].ep = ep;
		ep->shards[i].idx = i;
		ep->shards[i].batch_max_ts = INT64_MIN;
	}
	make_metrics(rw, ep);
	return 0;
}

static int rw_create(const struct starling_host_api *api, starling_component *self,
		     const starling_config *cfg, void **out)
{
	struct rw *rw = calloc(1, sizeof(*rw));
	const starling_config *eps, *ext;
	int r = 0;

	if (!rw)
		return -ENOMEM;
	rw->api = api;
	rw->self = self;
	pthread_mutex_init(&rw->md_lock, NULL);
	atomic_init(&rw->running, false);
	eps = api->config_lookup(cfg, "endpoint");
	rw->n_eps = eps ? api->config_count(eps) : 0;
	if (!rw->n_eps) {
		LOG(rw, STARLING_LOG_ERROR, "%s: at least one endpoint is required",
		    api->config_where(cfg));
		r = -EINVAL;
		goto fail;
	}
	rw->eps = calloc(rw->n_eps, sizeof(*rw->eps));
	if (!rw->eps) {
		rw->n_eps = 0;
		r = -ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < rw->n_eps; i++) {
		r = endpoint_init(rw, &rw->eps[i], api->config_child(eps, i), i);
		if (r) {
			rw->n_eps = i + 1; /* free what was set up */
			goto fail;
		}
	}
	ext = api->config_lookup(cfg, "external_labels");
	rw->n_ext = ext ? api->config_count(ext) : 0;
	rw->ext = calloc(rw->n_ext ? rw->n_ext : 1, sizeof(*rw->ext));
	if (!rw->ext) {
		r = -ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < rw->n_ext; i++) {
		const starling_config *c = api->config_child(ext, i);
		const char *name = api->config_name(c), *value = NULL;

		if (!name || !valid_label_name(name) || api->config_string(c, NULL, &value)) {
			LOG(rw, STARLING_LOG_ERROR,
			    "%s: external_labels: \"%s\" must be a label name with a string value",
			    api->config_where(c), name ? name : "?");
			rw->n_ext = i;
			r = -EINVAL;
			goto fail;
		}
		rw->ext[i].name = strdup(name);
		rw->ext[i].value = strdup(value);
		if (!rw->ext[i].name || !rw->ext[i].value) {
			rw->n_ext = i + 1;
			r = -ENOMEM;
			goto fail;
		}
	}
	qsort(rw->ext, rw->n_ext, sizeof(*rw->ext), label_cmp);
	rw->ext_ll = calloc(2 * rw->n_ext + 1, sizeof(*rw->ext_ll));
	if (!rw->ext_ll) {
		r = -ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < rw->n_ext; i++) {
		size_t nl = strlen(rw->ext[i].name), vl = strlen(rw->ext[i].value);

		if (nl > UINT32_MAX || vl > UINT32_MAX) {
			r = -EINVAL;
			goto fail;
		}
		rw->ext_ll[2 * i] = (uint32_t)nl;
		rw->ext_ll[2 * i + 1] = (uint32_t)vl;
	}
	rw->m_in = api->metric_register(self, STARLING_SELF_COUNTER,
					"prometheus_remote_storage_samples_in_total",
					"Samples received by the component.", NULL);
	*out = rw;
	return 0;
fail:
	rw_destroy(rw);
	return r;
}

static int rw_start(void *inst)
{
	struct rw *rw = inst;
	const char *state = rw->api->state_dir(rw->self);
	int r;

	for (size_t e = 0; e < rw->n_eps && !rw->recovered; e++) {
		struct endpoint *ep = &rw->eps[e];
		size_t len;

		if (!state) {
			LOG(rw, STARLING_LOG_WARN,
			    "no state directory: endpoint %s queues in memory only (lost on "
			    "restart)",
			    ep->name);
			continue;
		}
		len = strlen(state) + strlen(ep->name) + 2;
		ep->dir = malloc(len);
		if (!ep->dir)
			return -ENOMEM;
		snprintf(ep->dir, len, "%s/%s", state, ep->name);
		if (mkdir(ep->dir, 0700) && errno != EEXIST) {
			LOG(rw, STARLING_LOG_ERROR, "cannot create buffer directory %s: %s",
			    ep->dir, strerror(errno));
			return -errno;
		}
		r = recover_segments(rw, ep);
		if (r) {
			LOG(rw, STARLING_LOG_ERROR, "cannot read buffer directory %s: %s", ep->dir,
			    strerror(-r));
			return r;
		}
	}
	rw->recovered = true; /* a start after stop must not queue them twice */
	r = starling_http_client_new(NULL, &rw->http);
	if (r)
		return r;
	atomic_store(&rw->draining, false);
	atomic_store(&rw->running, true);
	r = pthread_create(&rw->thread, NULL, sender_main, rw);
	if (r) {
		atomic_store(&rw->running, false);
		starling_http_client_free(rw->http);
		rw->http = NULL;
		return -r;
	}
	rw->thread_started = true;
	return 0;
}

static int rw_stop(void *inst)
{
	struct rw *rw = inst;
	size_t n;

	if (!rw->thread_started)
		return 0;
	if (rw->dead) {
		atomic_store(&rw->running, false); /* a power cut waits for nothing */
	} else {
		atomic_store(&rw->drain_until, rw->api->monotonic_ms() + STOP_DRAIN_MS);
		atomic_store(&rw->draining, true);
		if ((n = starling_http_pending(rw->http)))
			LOG(rw, STARLING_LOG_INFO,
			    "stopping: waiting up to %d ms for %zu requests in flight",
			    STOP_DRAIN_MS, n);
	}
	starling_http_wakeup(rw->http);
	pthread_join(rw->thread, NULL);
	atomic_store(&rw->running, false);
	rw->thread_started = false;
	/* requests still in flight are cancelled; their batches stay queued
	 * and go first after a restart (at-least-once, README "Delivery") */
	starling_http_client_free(rw->http);
	rw->http = NULL;
	for (size_t e = 0; e < rw->n_eps; e++)
		for (unsigned i = 0; i < rw->eps[e].n_shards; i++) {
			struct shard *sh = &rw->eps[e].shards[i];

			pthread_mutex_lock(&sh->lock);
			if (rw->eps[e].dir && !rw->dead) {
				cut_batch(sh);
				file_seal(sh, sh->open);
			}
			pthread_mutex_unlock(&sh->lock);
		}
	return 0;
}

/* Test hook (the unit tests compile this file; hidden in the plugin): what
 * a power cut right now would leave. The sender stops, every segment file is
 * cut back to the bytes fsync made durable, a file whose directory entry was
 * never synced vanishes, and stop/destroy then write nothing, as if the
 * machine had died. The page cache may keep more in reality; this is what
 * queue_config.fsync promises. */
void rw_test_power_cut(void *inst);

void rw_test_power_cut(void *inst)
{
	struct rw *rw = inst;

	rw->dead = true;
	rw_stop(rw);
	for (size_t e = 0; e < rw->n_eps; e++) {
		struct endpoint *ep = &rw->eps[e];

		for (unsigned i = 0; ep->dir && i < ep->n_shards; i++) {
			struct shard *sh = &ep->shards[i];

			pthread_mutex_lock(&sh->lock);
			for (struct segfile *f = sh->files; f; f = f->next) {
				char path[4096];

				if (f->fd >= 0)
					close(f->fd); /* no fsync: the power is gone */
				f->fd = -1;
				file_path(ep, f->id, f->shard, path, sizeof(path));
				if (!f->dir_synced)
					unlink(path);
				else if (truncate(path, (off_t)f->synced))
					LOG(rw, STARLING_LOG_WARN, "power cut: cannot truncate %s",
					    path);
			}
			sh->open = NULL;
			pthread_mutex_unlock(&sh->lock);
		}
	}
}

static int rw_update(void *inst, const starling_config *cfg)
{
	return -EOPNOTSUPP; /* the host re-creates us; the disk queue carries over */
}

static const struct starling_component_type rw_type = {
    STARLING_TYPE_HEAD,
    .name = "prometheus.remote_write",
    .help = "Send series to Prometheus remote-write receivers (Remote Write 1.0)",
    .flags = STARLING_TYPE_REENTRANT_RECEIVE,
    .accepts = STARLING_ACCEPTS_SERIES,
    .schema = rw_keys,
    .create = rw_create,
    .update = rw_update,
    .start = rw_start,
    .stop = rw_stop,
    .destroy = rw_destroy,
    .receive_series = rw_receive_series,
};

static const struct starling_component_type *const rw_types[] = {&rw_type};

static const struct starling_plugin_descriptor rw_descriptor = {
    STARLING_DESCRIPTOR_HEAD,
    .name = "prometheus_remote_write",
    .version = STARLING_VERSION,
    .types = rw_types,
    .n_types = 1,
};

STARLING_PLUGIN(rw_descriptor)
