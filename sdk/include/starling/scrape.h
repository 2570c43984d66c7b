/*
 * The Prometheus scrape engine of the static SDK library, shared by the
 * components that scrape Prometheus targets (prometheus.scrape,
 * prometheus.operator.*) and their unit tests. Not part of the plugin ABI;
 * the names keep their historical scrape_ prefix.
 *
 *   sdk/lib/scrape_target.c  target labels, URL, ownership key, scrape phase
 *   sdk/lib/scrape_cache.c   per-target series cache, one scrape -> one
 *                            batch, staleness markers, synthetic series
 * Components (config, lifecycle, scrape thread, clustering) live in their
 * plugins, e.g. plugins/prometheus_scrape/scrape_component.c.
 */
#ifndef PROMETHEUS_SCRAPE_H
#define PROMETHEUS_SCRAPE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <starling/expo.h>
#include <starling/http.h>
#include <starling/plugin.h>
#include <starling/relabel.h>
#include <starling/scrape_pool.h>
#include <starling/scrape_sched.h>

/* Hard cap on a decompressed body when body_size_limit is 0 ("none"), so a
 * gzip bomb cannot exhaust memory. */
#define SCRAPE_SAFETY_BODY_LIMIT ((int64_t)256 << 20)

/* How often a target's metadata (TYPE/HELP/UNIT) goes with its batch. */
#define SCRAPE_METADATA_MS 60000

/* Synthetic series per scrape: 5, and 3 more with extra_metrics. */
#define SCRAPE_N_REPORT	    5
#define SCRAPE_N_REPORT_MAX 8

/* The component settings that apply to every target. Immutable while the
 * scrape thread runs. */
struct scrape_config {
	char *job_name;
	int64_t interval_ms;
	int64_t timeout_ms;
	char *metrics_path;
	char *scheme;
	struct starling_scrape_param *params; /* sorted by name */
	size_t n_params;
	bool honor_labels;
	bool honor_timestamps;
	bool track_timestamps_staleness;
	bool enable_compression;
	bool extra_metrics;	 /* scrape_timeout_seconds & co. */
	int64_t body_size_limit; /* effective limit, never 0 */
	uint64_t sample_limit;	 /* 0 = none, likewise below */
	uint64_t label_limit;
	uint64_t label_name_length_limit;
	uint64_t label_value_length_limit;
	uint64_t target_limit;			       /* 0 = none */
	char *failure_log_file;			       /* scrape_failure_log_file, NULL = none */
	struct starling_relabel_rules *metric_relabel; /* may be NULL */
	struct starling_http_auth *auth;	       /* may be NULL */
	bool clustering;
	unsigned replicas; /* clustering.replicas: owners that scrape each target */
	char **key_labels;
	size_t n_key_labels;
	char **exclude_labels;
	size_t n_exclude_labels;
	enum starling_expo_format fallback_format;
	bool native_histograms;	  /* scrape_native_histograms */
	bool classic_histograms;  /* scrape_classic_histograms */
	bool proto_first;	  /* offer PrometheusProto first by default */
	bool utf8_names;	  /* metric_name_validation_scheme utf8 */
	bool honor_metadata;	  /* metadata of new/changed families at once */
	char escaping[16];	  /* metric_name_escaping_scheme */
	uint64_t nh_bucket_limit; /* native_histogram_bucket_limit, 0 = none */
	int32_t nh_max_schema;	  /* from native_histogram_min_bucket_factor */
	char *accept;		  /* Accept header line */
	char timeout_header[64];  /* X-Prometheus-Scrape-Timeout-Seconds line */
	uint64_t fingerprint;	  /* of everything but `targets`, for update() */
};

/* One cached series of a target, keyed by the raw series bytes of the
 * exposition line through 96 bits of their XXH3-128 (two different series
 * texts of one target colliding in 96 bits is not a practical concern, and
 * not storing the text halves the cache). One piece of the target's entry store: a
 * 28-byte header and the id of each stored label, a label (name and value)
 * interned in the cache's pair table: label pairs repeat across a target's
 * series (histogram buckets, shared names), so each distinct pair is kept
 * once and an entry pays 4 bytes per label, not 16 (issue 12: the entries
 * were 63 % of the heap at 200 x 1,000 series; a 3-label entry is 40
 * bytes with no malloc header, was 104 + 8). */
#define ENTRY_DROPPED	 (1u << 0) /* metric relabelling dropped it */
#define ENTRY_OVER_LIMIT (1u << 1) /* breaks a label limit: fails the scrape */
#define ENTRY_HAS_TS	 (1u << 2) /* last sample carried its own timestamp */
#define ENTRY_EVICT	 (1u << 3) /* being evicted (sweep only) */
#define ENTRY_NATIVE	 (1u << 4) /* a native histogram series */
/* label values hold NUL bytes: n_labels value lengths follow labels[]
 * (struct starling_series_ext.label_value_lens) */
#define ENTRY_NUL (1u << 5)
/* the series' last exemplar key is in the cache's exemplar table */
#define ENTRY_EXKEY (1u << 6)
/* it was in the scrape before this one: what a failed scrape restores
 * (after a completed scrape every entry was seen in it or the one before:
 * the others were evicted, so one bit is the whole previous generation) */
#define ENTRY_PREV (1u << 7)

/* Entries are 4-aligned (the store packs them in 4-byte words; a 3-label
 * entry is 40 bytes); their 64-bit fields are read unaligned. */
typedef uint64_t cache_u64 __attribute__((aligned(4)));

struct cache_entry {
	/* 96 bits of the XXH3-128 of the series text: key_lo (also the table
	 * hash) and the low half of the high word (two of a target's series
	 * meeting in 96 bits: about n^2 / 2^97, 1e-23 at 1,000 series) */
	cache_u64 key_lo;
	uint32_t key_hi;
	cache_u64 hash;	   /* starling_labels_hash(labels) */
	uint16_t n_labels; /* labels stored in labels[] */
	/* The target's own labels (job, instance...) are left out of labels[]
	 * when the series carries them unchanged and it has at most 16 labels:
	 * bit i of tl_pos says final position i is a target label, bit j of
	 * tl_present that the target's label j is one of them (positions and
	 * target labels are both sorted by name, so they pair in order). Both
	 * 0: labels[] is the whole sorted set. Saves 8 bytes per target label
	 * per series; the batch gets the whole set (scrape_cache.c). */
	uint16_t tl_pos;
	uint16_t tl_present;
	uint8_t flags;
	/* The low 8 bits of the scrape generation (series_cache.gen) it was
	 * last in: only "this scrape", "the one before" and "older" matter,
	 * since an entry missing from two scrapes is evicted, and sweep()
	 * keeps a survivor's age below 256 (issue 12: 4 bytes of the header
	 * were 2 MB at 500,000 series). Compare with SEEN(gen).
	 *
	 * No "next series" hint: targets expose their series in a stable
	 * order and the store is laid out in the order of a scrape
	 * (compaction), so the series after this one is first looked for in
	 * the entry that follows it in the store (entry_store, another 4
	 * bytes per series). */
	uint8_t last_seen;
	/* ids of interned pairs (pair_store.pv), sorted by name; an
	 * ENTRY_NUL entry's value lengths follow at the next 8-aligned
	 * address (entry_lens) */
	uint32_t labels[];
};

/* Where a target's cache entries live: blocks of 4-byte words, no malloc
 * header per entry (issue 12: 8 of every 64 bytes), an entry named by a
 * 4-byte ref, its block << ENTRY_REF_SHIFT | its word offset, so a table
 * slot is 4 bytes. Freed entries of up to ENTRY_FREE_CLASSES - 1 words
 * are reused by size; after a scrape that left unused room (a second
 * block, or over an eighth free) the store is compacted into one exact
 * block (scrape_cache.c cache_fit). */
#define ENTRY_REF_SHIFT	   20
#define ENTRY_FREE_CLASSES 32
struct entry_store {
	uint32_t **blk;
	uint32_t *blk_len; /* words used in each block but the last */
	uint32_t n_blk, blk_cap;
	uint32_t len, size; /* words used / held by the last block */
	/* laid out in the order of a completed scrape (compaction): entries
	 * follow each other as their series did (the order hint) */
	bool ordered;
	size_t held, live; /* words in all blocks / in live entries */
	/* freel[i]: a free entry of i words, ref + 1 (allocated at the first
	 * free: most targets never evict) */
	uint32_t *freel;
};

static inline struct cache_entry *entry_at(const struct entry_store *st, uint32_t ref)
{
	return (struct cache_entry *)(void *)(st->blk[ref >> ENTRY_REF_SHIFT] +
					      (ref & ((1u << ENTRY_REF_SHIFT) - 1)));
}

/* An interned, reference-counted label of a target's series: the name
 * (unless it is "__name__", a shared literal: PAIR_NAME_LIT in name_len)
 * and value bytes, each NUL-terminated, follow the 20-byte header. */
#define PAIR_NAME_LIT (1u << 31)
struct cache_pair {
	uint32_t refs;
	uint32_t name_len; /* | PAIR_NAME_LIT */
	uint32_t value_len;
	uint32_t id;   /* index in pair_store.pv */
	uint32_t hash; /* of name and value */
	char s[];
};

/* The last exemplar key of a series that had exemplars (few do, so the
 * entries do not carry the field): Prometheus sends a timestamped exemplar
 * once, not again while it stays the series' latest. */
struct cache_exkey {
	const struct cache_entry *e; /* NULL = empty */
	uint64_t key;
};

/* The interned label pairs of all the targets one scrape thread processes
 * (a component instance): targets of one job expose mostly the same
 * pairs (names, codes, buckets), so each is kept once, not once per
 * target (issue 12: ~77 of a bench target's 127 pairs are the same on
 * every target). Used by that thread alone; a target's cache holds a
 * reference (`refs`), so the store outlives the scratch that made it until
 * the last target that used it is freed. */
struct pair_store {
	size_t refs;	 /* the scratch and every cache using it */
	uint32_t *pairs; /* intern table, open addressing: pair id + 1, 0 = empty */
	size_t pairs_cap, pairs_n, pairs_dead;
	struct cache_pair **pv; /* pair by id (NULL: id free) */
	size_t pv_n, pv_cap;	/* ids handed out, capacity */
	uint32_t *pv_free;	/* ids to hand out again */
	size_t pv_nfree, pv_free_cap;
};

struct series_cache {
	uint32_t *slots; /* entry ref + 1, 0 = empty */
	size_t cap;	 /* slots (any size, table_home), or 0 */
	struct entry_store st;
	size_t n;
	uint32_t gen;		    /* generation of the latest scrape */
	size_t seen;		    /* entries seen in the latest scrape */
	uint32_t first;		    /* first series of the last scrape: ref + 1, 0 = none */
	struct cache_entry *cursor; /* previous series while parsing */
	uint32_t cursor_ref;	    /* its ref */
	struct pair_store *ps;	    /* its labels' pairs (NULL until the first) */
	struct cache_exkey *ex;	    /* exemplar keys, open addressing */
	size_t ex_cap, ex_n;
};

/* The entry in slot i of c's series table, or NULL. */
static inline struct cache_entry *series_cache_at(const struct series_cache *c, size_t i)
{
	return c->slots[i] ? entry_at(&c->st, c->slots[i] - 1) : NULL;
}

enum target_state {
	TARGET_ACTIVE = 0,
	TARGET_RETIRED, /* left the config: stale markers due at retire_ms */
};

struct scrape_target {
	/* Input labels as configured (sorted), for identity and the key. */
	struct starling_label *input;
	size_t n_input;
	/* Final target labels (job, instance and the non-"__" labels), sorted. */
	struct starling_label *labels;
	size_t n_labels;
	char *strings; /* storage of all the strings above */
	char *url;
	void *owner;	   /* the component instance */
	uint64_t key;	   /* ownership key (starling_target_key) */
	uint64_t identity; /* hash of the input labels */
	int64_t phase_ms;  /* starling_scrape_phase(key, interval_ms) */
	/* __scrape_interval__ / __scrape_timeout__ (default: the component's) */
	int64_t interval_ms;
	int64_t timeout_ms; /* its header line is made per request */

	/* Synthetic series: their hashes (labels: scrape_report_labels(),
	 * built per scrape, not kept: issue 12, 8 arrays were ~0.5 KB per
	 * target). */
	uint64_t report_hash[SCRAPE_N_REPORT_MAX];

	/* Scheduling (scrape thread only). */
	int64_t next_due_ms;
	int64_t retire_ms;
	enum target_state state;
	bool in_flight;
	bool owned;    /* owned at its last slot */
	bool reported; /* report series were sent since last reset */
	/* the last slot skipped as owned elsewhere, for a catch-up after its
	 * owner's death (STARLING_SCRAPE_NO_SLOT: none) */
	int64_t skipped_slot;
	int64_t scrape_start_ms;
	int64_t metadata_due_ms;
	/* honor_metadata: XXH3 of each family's metadata (name, type, help,
	 * unit) as of the last scrape, sorted; a family whose hash is not
	 * here is new or changed and goes with this scrape's batch. */
	uint64_t *meta_seen;
	size_t n_meta_seen;

	struct series_cache cache;

	/* Status for list_targets (guarded by the component lock). */
	int64_t last_scrape_ms;
	int64_t last_duration_us;
	enum starling_target_health health;
	char *last_error; /* malloc'd; NULL = none (most targets) */
};

/* Working memory of the thread that processes scrapes, reused across
 * scrapes so the steady state allocates nothing. */
struct scrape_meta {
	size_t family, help, unit; /* offsets into the arena, SIZE_MAX = none */
	size_t family_len;
	enum starling_metric_type type;
};

struct scrape_scratch {
	struct pair_store *ps; /* label pairs of this thread's targets */
	/* Metadata of this scrape (collected once per SCRAPE_METADATA_MS). */
	struct scrape_meta *meta;
	size_t n_meta, meta_cap;
	struct starling_metadata *meta_out;
	size_t meta_out_cap;
	char *arena;
	size_t arena_len, arena_cap;
	struct starling_series *series;
	double *values;
	int64_t *ts;
	struct scrape_ext *xo; /* per series: where its ext data is in xpool */
	struct starling_series_ext *ext;
	size_t n, cap;
	size_t n_ext; /* series with an ext in this batch */
	/* Histograms and exemplars of this batch, by offset (the pool may move
	 * while it grows; pointers are fixed up when the batch is sent). */
	char *xpool;
	size_t xpool_len, xpool_cap;
	/* Whole label sets of this batch's series whose cache entries leave
	 * the target labels out (by offset, fixed up when the batch is sent). */
	struct starling_label *lpool;
	size_t lpool_len, lpool_cap;
	/* The byte lengths of lpool's labels, name and value, two per label
	 * (struct starling_series_ext.label_lens; from the interned pairs,
	 * so remote write counts no string). */
	uint32_t *llpool;
	/* The lengths of the batch's target's first 16 labels (the ones an
	 * entry can leave out, tl_present), set when a batch starts. */
	uint32_t tl_ll[32];
	char *nl_body; /* a Prometheus-text body plus the '\n' it lacked */
	size_t nl_cap;
	struct cache_entry **evict;
	size_t n_evict, evict_cap;
	/* the refs of the target's entries in the order of this scrape's
	 * series (the store is compacted in it); order_lost: out of memory */
	uint32_t *order;
	size_t n_order, order_cap;
	bool order_lost;
	struct starling_lset lset;
	struct starling_lset tmp;
	struct starling_relabel_scratch rs;
	struct starling_expo_parser *parser;
	/* The most this scratch's batches needed in the current window of
	 * SCRAPE_TRIM_WINDOW scrapes: arrays over 4x that are given back
	 * (after one huge scrape, e.g. a cardinality bomb). */
	size_t hw_n, hw_lpool, hw_xpool, hw_evict, hw_order;
	unsigned window;
};

/* Where a series' ext data sits in the scratch pool (SIZE_MAX = none). */
struct scrape_ext {
	size_t labels;	  /* offset in lpool of the series' labels (SIZE_MAX: the
			   * series' labels pointer is final already) */
	size_t hist;	  /* offset of a struct scrape_hist */
	size_t exemplars; /* offset of n_exemplars struct starling_exemplar, whose
			   * labels hold 1 + the pool offset of their labels
			   * as name/value offset pairs until the batch is sent */
	size_t n_exemplars;
	const size_t *value_lens; /* ENTRY_NUL: the entry's value lengths */
};

/* A histogram in the pool: its arrays as pool offsets. */
struct scrape_hist {
	struct starling_histogram h;
	size_t pos_spans, neg_spans, pos_vals, neg_vals;
};

/* What processing needs besides the target. */
struct scrape_ctx {
	const struct starling_host_api *api;
	starling_component *self;
	const struct scrape_config *cfg;
	struct scrape_scratch *scratch;
};

/* Outcome of one HTTP scrape as seen by the processing code. */
struct scrape_result {
	int error; /* 0 or negative errno from the HTTP client */
	const char *error_msg;
	long status;
	const char *body;
	size_t body_len;
	const char *content_type; /* may be NULL */
	int64_t start_ms;	  /* timestamp of the scrape */
	int64_t duration_us;
};

/* Per-scrape statistics (also the synthetic series values). */
struct scrape_stats {
	bool up;
	size_t scraped;	     /* samples exposed */
	size_t post_relabel; /* samples kept after metric relabelling */
	size_t added;	     /* new series this scrape */
	size_t stale;	     /* staleness markers emitted */
	size_t forwarded;    /* samples in the forwarded batch */
	char error[200];     /* why the scrape failed ("" when up) */
};

/* --- scrape_target.c ---------------------------------------------------- */

/* Build a target from its configured labels (n pairs, not necessarily
 * sorted): defaults from cfg, `__address__` required, instance defaults to
 * it, "__" labels removed from the final set, URL with params. The key uses
 * cfg's key_labels/exclude_labels. On error returns -EINVAL with a message
 * in err. */
int scrape_target_new(const struct scrape_config *cfg, const struct starling_label *in, size_t n,
		      struct scrape_target **out, char *err, size_t errlen);
void scrape_target_free(struct scrape_target *t);

/* Free what a scrape_config owns (not the struct itself). */
void scrape_config_release(struct scrape_config *c);

/* The X-Prometheus-Scrape-Timeout-Seconds header line for timeout_ms
 * ("...: 10", "...: 2.5"). */
void scrape_timeout_header(int64_t timeout_ms, char *buf, size_t len);

/* The label set of synthetic series i (report_names order) of t: its
 * target labels and __name__, sorted; out holds t->n_labels + 1. */
void scrape_report_labels(const struct scrape_target *t, int i, struct starling_label *out);

/* Prometheus' model.ParseDuration ("1m30s", "500ms", "1h", "0"): ms in *out,
 * 0 or -EINVAL. */
int scrape_parse_duration(const char *s, int64_t *out);

/* Append "%XX"-escaped s (Go url.QueryEscape) to buf; returns 0 or -ENOSPC. */
int scrape_query_escape(const char *s, char *buf, size_t cap, size_t *len);

/* --- scrape_cache.c ----------------------------------------------------- */

void scrape_scratch_init(struct scrape_scratch *s);
void scrape_scratch_free(struct scrape_scratch *s);

/* A pair store with one reference, or NULL; drop a reference (the store
 * and its pairs go with the last). */
struct pair_store *pair_store_new(void);
void pair_store_put(struct pair_store *p);

void series_cache_free(struct series_cache *c);
/* Forget every series without stale markers (target moved to another node). */
void series_cache_reset(struct series_cache *c);

/* Turn one scrape outcome into one forwarded batch: samples, stale markers
 * for series that vanished, the synthetic series. A failed or invalid
 * scrape forwards up=0 and stale markers for the previous scrape's series.
 * Fills *st. Returns 0 when the target was up, else a negative errno. */
int scrape_process(struct scrape_ctx *ctx, struct scrape_target *t, const struct scrape_result *r,
		   struct scrape_stats *st);

/* Forward stale markers at ts_ms for every series of the target's last
 * scrape, its synthetic series included (target left the config). */
int scrape_end_of_run(struct scrape_ctx *ctx, struct scrape_target *t, int64_t ts_ms);

/* Start t's scrape on http with c's settings at now_ms: done(arg, resp) runs
 * on the thread driving http, or at once (error = the submit error,
 * error_msg = submit_error) when the request cannot be queued. */
void scrape_submit(struct starling_http_client *http, const struct scrape_config *c,
		   struct scrape_target *t, int64_t now_ms, starling_http_done_fn done, void *arg,
		   const char *submit_error);

/* A finished scrape of t: scrape_process() it, clear in_flight and record
 * the status for list_targets under lock. Fills *st; returns
 * scrape_process()'s result. */
int scrape_complete(struct scrape_ctx *ctx, struct scrape_target *t,
		    const struct starling_http_response *resp, pthread_mutex_t *lock,
		    struct scrape_stats *st);

/* The target moved to another node: forget its series, without staleness
 * markers, unless a scrape is still in flight. */
void scrape_forget(struct scrape_target *t);

/* list_targets: emit t with its ownership (starling_scrape_emit_target).
 * The caller holds the lock that guards t's status. */
void scrape_emit_target(const struct starling_host_api *api, starling_component *self,
			bool clustering, unsigned replicas, const struct scrape_target *t,
			starling_target_emit_fn emit, void *ctx);

#endif
