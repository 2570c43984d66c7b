/*
 * One scrape -> one forwarded batch, through a per-target series cache.
 *
 * The cache is keyed by the raw series bytes of the exposition line (name
 * plus label part, exactly as the target wrote them; through XXH3-128). A
 * hit gives the final
 * labels (target labels merged, metric relabelling applied, limits checked)
 * and their hash, so a steady-state scrape does one XXH3 over the series
 * bytes and one probe per sample: no label parsing, sorting,
 * relabelling, hashing or allocation. Each entry remembers the generation of
 * the last scrape it was in; a series that was in the previous scrape and is
 * not in this one gets a staleness marker and leaves the cache (after a
 * failed scrape, at the next successful one). Bodies are never kept.
 */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <starling/histogram.h>
#include <starling/labels.h>
#include <xxhash.h>

#include <starling/scrape.h>

#include "expo_internal.h"

static double stale_nan(void)
{
	uint64_t bits = STARLING_STALE_NAN_BITS;
	double d;

	memcpy(&d, &bits, sizeof(d));
	return d;
}

/* ------------------------------------------------------------------------ */
/* Scratch.                                                                  */

void scrape_scratch_init(struct scrape_scratch *s)
{
	memset(s, 0, sizeof(*s));
	starling_lset_init(&s->lset);
	starling_lset_init(&s->tmp);
	starling_relabel_scratch_init(&s->rs);
}

void scrape_scratch_free(struct scrape_scratch *s)
{
	pair_store_put(s->ps); /* freed with the last target using it */
	free(s->series);
	free(s->values);
	free(s->ts);
	free(s->xo);
	free(s->ext);
	free(s->xpool);
	free(s->lpool);
	free(s->llpool);
	free(s->nl_body);
	free(s->evict);
	free(s->order);
	free(s->meta);
	free(s->meta_out);
	free(s->arena);
	starling_lset_free(&s->lset);
	starling_lset_free(&s->tmp);
	starling_relabel_scratch_free(&s->rs);
	starling_expo_parser_free(s->parser);
	memset(s, 0, sizeof(*s));
}

static int scratch_reserve(struct scrape_scratch *s, size_t need)
{
	size_t cap;
	void *p;

	if (need <= s->cap)
		return 0;
	cap = s->cap ? s->cap : 1024;
	while (cap < need)
		cap *= 2;
	p = realloc(s->series, cap * sizeof(*s->series));
	if (!p)
		return -ENOMEM;
	s->series = p;
	p = realloc(s->values, cap * sizeof(*s->values));
	if (!p)
		return -ENOMEM;
	s->values = p;
	p = realloc(s->ts, cap * sizeof(*s->ts));
	if (!p)
		return -ENOMEM;
	s->ts = p;
	p = realloc(s->xo, cap * sizeof(*s->xo));
	if (!p)
		return -ENOMEM;
	s->xo = p;
	s->cap = cap;
	return 0;
}

/* Scrapes per trim window, and the size (bytes) under which an array is
 * always kept. */
#define SCRAPE_TRIM_WINDOW 64
#define SCRAPE_TRIM_KEEP   (256 * 1024)

/* Free an array of cap elements of size sz when it is over the keep size
 * and over 4x the window's high-water mark hw; it grows again on demand. */
static bool trim_one(void **p, size_t *cap, size_t hw, size_t sz)
{
	if (*cap * sz <= SCRAPE_TRIM_KEEP || hw * 4 >= *cap)
		return false;
	free(*p);
	*p = NULL;
	*cap = 0;
	return true;
}

/* After each scrape: note what this batch used; at the end of a window,
 * give back what the window's largest batch did not need. */
static void scratch_trim(struct scrape_scratch *s, size_t n)
{
	size_t one = sizeof(*s->series) + sizeof(*s->values) + sizeof(*s->ts) + sizeof(*s->xo);

	s->hw_n = n > s->hw_n ? n : s->hw_n;
	s->hw_lpool = s->lpool_len > s->hw_lpool ? s->lpool_len : s->hw_lpool;
	s->hw_xpool = s->xpool_len > s->hw_xpool ? s->xpool_len : s->hw_xpool;
	s->hw_evict = s->n_evict > s->hw_evict ? s->n_evict : s->hw_evict;
	s->hw_order = s->n_order > s->hw_order ? s->n_order : s->hw_order;
	if (++s->window < SCRAPE_TRIM_WINDOW)
		return;
	if (s->cap * one > SCRAPE_TRIM_KEEP && s->hw_n * 4 < s->cap) {
		free(s->series);
		free(s->values);
		free(s->ts);
		free(s->xo);
		s->series = NULL;
		s->values = NULL;
		s->ts = NULL;
		s->xo = NULL;
		s->cap = 0;
		free(s->ext); /* sized like the batch when it has ext data */
		s->ext = NULL;
	}
	if (trim_one((void **)&s->lpool, &s->lpool_cap, s->hw_lpool, sizeof(*s->lpool))) {
		free(s->llpool);
		s->llpool = NULL;
	}
	(void)trim_one((void **)&s->xpool, &s->xpool_cap, s->hw_xpool, 1);
	(void)trim_one((void **)&s->evict, &s->evict_cap, s->hw_evict, sizeof(*s->evict));
	(void)trim_one((void **)&s->order, &s->order_cap, s->hw_order, sizeof(*s->order));
	(void)trim_one((void **)&s->nl_body, &s->nl_cap, 0, 1);
	s->hw_n = s->hw_lpool = s->hw_xpool = s->hw_evict = s->hw_order = 0;
	s->window = 0;
}

/* Copy size bytes (8-aligned) into the batch pool; the offset or SIZE_MAX. */
static size_t pool_put(struct scrape_scratch *s, const void *data, size_t size)
{
	size_t off = (s->xpool_len + 7) & ~(size_t)7;

	if (off + size > s->xpool_cap) {
		size_t cap = s->xpool_cap ? s->xpool_cap : 4096;
		char *p;

		while (cap < off + size)
			cap *= 2;
		p = realloc(s->xpool, cap);
		if (!p)
			return SIZE_MAX;
		s->xpool = p;
		s->xpool_cap = cap;
	}
	if (data && size)
		memcpy(s->xpool + off, data, size);
	s->xpool_len = off + size;
	return off;
}

/* Append one sample; the value/timestamp pointers are fixed up in
 * forward_batch() because the arrays may move while growing. */
static int batch_add(struct scrape_scratch *s, const struct starling_label *labels, size_t n,
		     uint64_t hash, double v, int64_t ts)
{
	struct starling_series *se;

	if (s->n == s->cap && scratch_reserve(s, s->n + 1))
		return -ENOMEM;
	se = &s->series[s->n];
	se->labels = labels;
	se->n_labels = n;
	se->hash = hash;
	se->n_samples = 1;
	s->values[s->n] = v;
	s->ts[s->n] = ts;
	s->xo[s->n].labels = SIZE_MAX;
	s->xo[s->n].hist = SIZE_MAX;
	s->xo[s->n].exemplars = SIZE_MAX;
	s->xo[s->n].n_exemplars = 0;
	s->xo[s->n].value_lens = NULL;
	s->n++;
	return 0;
}

/* Append one native-histogram series: the histogram at pool offset hoff. */
static int batch_add_hist(struct scrape_scratch *s, const struct starling_label *labels, size_t n,
			  uint64_t hash, size_t hoff)
{
	int rc = batch_add(s, labels, n, hash, 0, 0);

	if (rc)
		return rc;
	s->series[s->n - 1].n_samples = 0;
	s->xo[s->n - 1].hist = hoff;
	s->n_ext++;
	return 0;
}

static const char name_label[] = "__name__";

/* The label an interned pair stands for (its strings stay in the pair). */
static struct starling_label pair_label(const struct cache_pair *x)
{
	struct starling_label l;

	if (x->name_len & PAIR_NAME_LIT) {
		l.name = name_label;
		l.value = x->s;
	} else {
		l.name = x->s;
		l.value = x->s + x->name_len + 1;
	}
	return l;
}

/* The whole sorted label set of e: its stored labels (interned pairs) with
 * the target's labels put back at their positions. out holds
 * entry_n_labels(e). */
static size_t entry_n_labels(const struct cache_entry *e)
{
	/* bits set in 16 bits, inline: __builtin_popcount() is a libgcc call
	 * on baseline x86-64 (no POPCNT), once per forwarded series */
	unsigned v = e->tl_present;

	v = v - ((v >> 1) & 0x5555u);
	v = (v & 0x3333u) + ((v >> 2) & 0x3333u);
	v = (v + (v >> 4)) & 0x0f0fu;
	return e->n_labels + ((v + (v >> 8)) & 0x1fu);
}

static void entry_labels(const struct scrape_scratch *s, const struct scrape_target *t,
			 const struct cache_entry *e, struct starling_label *out, uint32_t *ll)
{
	size_t n = entry_n_labels(e), own = 0;
	unsigned present = e->tl_present;

	for (size_t i = 0; i < n; i++) {
		if (e->tl_pos >> i & 1u) {
			unsigned j = (unsigned)__builtin_ctz(present);

			out[i] = t->labels[j];
			ll[2 * i] = s->tl_ll[2 * j];
			ll[2 * i + 1] = s->tl_ll[2 * j + 1];
			present &= present - 1;
		} else {
			const struct cache_pair *x = t->cache.ps->pv[e->labels[own++]];

			out[i] = pair_label(x);
			ll[2 * i] = x->name_len & PAIR_NAME_LIT ? (uint32_t)sizeof(name_label) - 1
								: x->name_len;
			ll[2 * i + 1] = x->value_len;
		}
	}
}

/* Start a batch for target t: the lengths of its labels that entries
 * leave out (tl_ll). */
static void batch_target(struct scrape_scratch *s, const struct scrape_target *t)
{
	for (size_t j = 0; j < t->n_labels && j < 16; j++) {
		size_t nl = strlen(t->labels[j].name), vl = strlen(t->labels[j].value);

		/* label strings are far below 4 GiB */
		s->tl_ll[2 * j] = (uint32_t)nl;
		s->tl_ll[2 * j + 1] = (uint32_t)vl;
	}
}

/* Room for n more labels in the batch's label pool. */
static int lpool_reserve(struct scrape_scratch *s, size_t n)
{
	size_t cap = s->lpool_cap ? s->lpool_cap : 1024;
	void *p;

	if (s->lpool_len + n <= s->lpool_cap)
		return 0;
	while (cap < s->lpool_len + n)
		cap *= 2;
	p = realloc(s->llpool, 2 * cap * sizeof(*s->llpool));
	if (!p)
		return -ENOMEM;
	s->llpool = p;
	p = realloc(s->lpool, cap * sizeof(*s->lpool));
	if (!p)
		return -ENOMEM;
	s->lpool = p;
	s->lpool_cap = cap;
	return 0;
}

/* Append one sample (hoff == SIZE_MAX) or native histogram of cached
 * series e: its label set is rebuilt in the pool from the interned pairs
 * (and the target's labels the entry leaves out). */
static int batch_add_entry(struct scrape_scratch *s, const struct scrape_target *t,
			   const struct cache_entry *e, double v, int64_t ts, size_t hoff)
{
	size_t n, off;
	int rc;

	n = entry_n_labels(e);
	if (lpool_reserve(s, n))
		return -ENOMEM;
	off = s->lpool_len;
	rc = hoff == SIZE_MAX ? batch_add(s, NULL, n, e->hash, v, ts)
			      : batch_add_hist(s, NULL, n, e->hash, hoff);
	if (rc)
		return rc;
	entry_labels(s, t, e, s->lpool + off, s->llpool + 2 * off);
	s->lpool_len += n;
	s->xo[s->n - 1].labels = off;
	return 0;
}

/* Bytes of an entry with n label ids, and where the value lengths of an
 * ENTRY_NUL one start (8-aligned, after the ids). */
/* An entry's last_seen for scrape generation g (struct cache_entry). */
#define SEEN(g)		  ((uint8_t)(g))
#define ENTRY_IDS_SIZE(n) (offsetof(struct cache_entry, labels) + (n) * sizeof(uint32_t))
_Static_assert(offsetof(struct cache_entry, labels) == 28, "a 28-byte entry header");
/* Bytes of an ENTRY_NUL entry: its ids, up to 4 bytes to align the
 * lengths to 8 (wherever the entry is), the lengths. */
#define ENTRY_NUL_SIZE(n) (ENTRY_IDS_SIZE(n) + 4 + (n) * sizeof(size_t))

/* Where the value lengths of an ENTRY_NUL entry with n labels at e are. */
static size_t *lens_at(const struct cache_entry *e, size_t n)
{
	uintptr_t p = ((uintptr_t)e + ENTRY_IDS_SIZE(n) + 7) & ~(uintptr_t)7;

	return (size_t *)p;
}

/* The value lengths of an ENTRY_NUL entry (after its labels). */
static const size_t *entry_lens(const struct cache_entry *e)
{
	return lens_at(e, e->n_labels);
}

/* After batch_add*() of entry e: its value lengths go with the series. */
static void batch_lens(struct scrape_scratch *s, const struct cache_entry *e)
{
	struct scrape_ext *xo = &s->xo[s->n - 1];

	if (!(e->flags & ENTRY_NUL))
		return;
	if (xo->hist == SIZE_MAX && !xo->n_exemplars)
		s->n_ext++;
	xo->value_lens = entry_lens(e);
}

/* A stale native histogram (sum = the stale NaN, no buckets) in the pool. */
static size_t stale_hist(struct scrape_scratch *s, int64_t ts)
{
	struct scrape_hist sh;

	memset(&sh, 0, sizeof(sh));
	sh.h.timestamp_ms = ts;
	sh.h.sum = stale_nan();
	return pool_put(s, &sh, sizeof(sh));
}

/* Copy len bytes + NUL into the arena; returns the offset or SIZE_MAX. */
static size_t arena_put(struct scrape_scratch *s, const char *p, size_t len)
{
	size_t off = s->arena_len;

	if (s->arena_len + len + 1 > s->arena_cap) {
		size_t cap = s->arena_cap ? s->arena_cap : 4096;
		char *a;

		while (cap < s->arena_len + len + 1)
			cap *= 2;
		a = realloc(s->arena, cap);
		if (!a)
			return SIZE_MAX;
		s->arena = a;
		s->arena_cap = cap;
	}
	memcpy(s->arena + off, p, len);
	s->arena[off + len] = '\0';
	s->arena_len += len + 1;
	return off;
}

/* Record a TYPE/HELP/UNIT line. Lines of one family are adjacent in valid
 * exposition, so only the last entry is compared. */
static void meta_event(struct scrape_scratch *s, const struct starling_expo_event *ev,
		       enum starling_expo_format fmt)
{
	struct scrape_meta *m = s->n_meta ? &s->meta[s->n_meta - 1] : NULL;

	if (!m || m->family_len != ev->family_len ||
	    memcmp(s->arena + m->family, ev->family, ev->family_len) != 0) {
		size_t off;

		if (s->n_meta == s->meta_cap) {
			size_t cap = s->meta_cap ? s->meta_cap * 2 : 256;
			void *p = realloc(s->meta, cap * sizeof(*s->meta));

			if (!p)
				return;
			s->meta = p;
			s->meta_cap = cap;
		}
		off = arena_put(s, ev->family, ev->family_len);
		if (off == SIZE_MAX)
			return;
		m = &s->meta[s->n_meta++];
		m->family = off;
		m->family_len = ev->family_len;
		m->help = m->unit = SIZE_MAX;
		m->type = STARLING_METRIC_UNKNOWN;
	}
	if (ev->kind == STARLING_EXPO_TYPE) {
		m->type = ev->type;
	} else if (ev->text_len) {
		size_t off = arena_put(s, ev->text, ev->text_len); /* room for the result */

		if (off == SIZE_MAX)
			return;
		s->arena_len =
		    off +
		    starling_expo_unescape(ev->text, ev->text_len, fmt,
					   ev->kind == STARLING_EXPO_HELP, s->arena + off) +
		    1;
		if (ev->kind == STARLING_EXPO_HELP)
			m->help = off;
		else
			m->unit = off;
	}
}

/* Turn the pool offsets of this batch into the ext array. */
static int fix_ext(struct scrape_scratch *s)
{
	void *p = realloc(s->ext, s->cap * sizeof(*s->ext));

	if (!p)
		return -ENOMEM;
	s->ext = p;
	for (size_t i = 0; i < s->n; i++) {
		const struct scrape_ext *xo = &s->xo[i];
		struct starling_series_ext *x = &s->ext[i];

		memset(x, 0, sizeof(*x));
		if (xo->hist != SIZE_MAX) {
			struct scrape_hist *sh =
			    (struct scrape_hist *)(void *)(s->xpool + xo->hist);
			struct starling_histogram *h = &sh->h;

			h->positive_spans = (void *)(s->xpool + sh->pos_spans);
			h->negative_spans = (void *)(s->xpool + sh->neg_spans);
			h->positive_counts = h->negative_counts = NULL;
			h->positive_deltas = h->negative_deltas = NULL;
			if (h->is_float) {
				h->positive_counts = (void *)(s->xpool + sh->pos_vals);
				h->negative_counts = (void *)(s->xpool + sh->neg_vals);
			} else {
				h->positive_deltas = (void *)(s->xpool + sh->pos_vals);
				h->negative_deltas = (void *)(s->xpool + sh->neg_vals);
			}
			x->histograms = h;
			x->n_histograms = 1;
		}
		if (xo->n_exemplars) {
			struct starling_exemplar *e =
			    (struct starling_exemplar *)(void *)(s->xpool + xo->exemplars);

			for (size_t k = 0; k < xo->n_exemplars; k++) {
				/* labels holds 1 + the offset of n_labels name/value
				 * offset pairs, turned into labels in place */
				uintptr_t lo = (uintptr_t)e[k].labels;
				size_t *off;
				struct starling_label *l;

				if (lo == 0 || lo > s->xpool_len) /* fixed up already */
					continue;
				off = (size_t *)(void *)(s->xpool + lo - 1);
				l = (struct starling_label *)(void *)off;
				for (size_t j = 0; j < e[k].n_labels; j++) {
					size_t no = off[2 * j], vo = off[2 * j + 1];

					l[j].name = s->xpool + no;
					l[j].value = s->xpool + vo;
				}
				e[k].labels = l;
			}
			x->exemplars = e;
			x->n_exemplars = xo->n_exemplars;
		}
		x->label_value_lens = xo->value_lens;
		if (xo->labels != SIZE_MAX)
			x->label_lens = s->llpool + 2 * xo->labels;
	}
	return 0;
}

static int forward_batch(struct scrape_ctx *ctx)
{
	struct scrape_scratch *s = ctx->scratch;
	struct starling_series_batch b = {0};

	if (!s->n)
		return 0;
	if (s->n_meta) {
		if (s->n_meta > s->meta_out_cap) {
			void *p = realloc(s->meta_out, s->n_meta * sizeof(*s->meta_out));

			if (p) {
				s->meta_out = p;
				s->meta_out_cap = s->n_meta;
			}
		}
		if (s->n_meta <= s->meta_out_cap) {
			for (size_t i = 0; i < s->n_meta; i++) {
				const struct scrape_meta *m = &s->meta[i];
				struct starling_metadata *o = &s->meta_out[i];

				o->family = s->arena + m->family;
				o->type = m->type;
				o->help = m->help == SIZE_MAX ? NULL : s->arena + m->help;
				o->unit = m->unit == SIZE_MAX ? NULL : s->arena + m->unit;
			}
			b.metadata = s->meta_out;
			b.n_metadata = s->n_meta;
		}
	}
	for (size_t i = 0; i < s->n; i++) {
		s->series[i].values = &s->values[i];
		s->series[i].timestamps_ms = &s->ts[i];
		if (s->xo[i].labels != SIZE_MAX)
			s->series[i].labels = s->lpool + s->xo[i].labels;
	}
	/* every series whose labels are in the pool has their lengths */
	if ((s->n_ext || s->lpool_len) && fix_ext(s) == 0) {
		b.ext = s->ext;
		b.ext_size = sizeof(*s->ext);
	}
	b.series = s->series;
	b.n_series = s->n;
	return ctx->api->forward_series(ctx->self, &b);
}

/* ------------------------------------------------------------------------ */
/* Cache table: open addressing, linear probing, backward-shift deletion.    */

/* Table sizes need not be powers of two: a slot is found by multiplying
 * the (well-mixed, 64-bit) hash by the size, keeping the high word. */
static inline size_t table_home(uint64_t h, size_t cap)
{
	return (size_t)(((unsigned __int128)h * cap) >> 64);
}

static inline size_t table_next(size_t i, size_t cap)
{
	return i + 1 == cap ? 0 : i + 1;
}

/* Slots for n keys at a load of 2/3 (at least 16). */
static size_t table_fit(size_t n)
{
	size_t cap = n + n / 2 + 1;

	return cap < 16 ? 16 : cap;
}

/* Slots when a table of cap slots holding n keys is full (3/4): double. */
static size_t table_grown(size_t n, size_t cap)
{
	size_t fit = table_fit(n + 1);

	return cap * 2 > fit ? cap * 2 : fit;
}

/* ---- interned label pairs ---- */

/* An id for x (a free one again, or the next); -ENOMEM. */
static int pair_id(struct pair_store *c, struct cache_pair *x)
{
	if (c->pv_nfree) {
		x->id = c->pv_free[--c->pv_nfree];
	} else {
		if (c->pv_n == UINT32_MAX)
			return -ENOMEM;
		if (c->pv_n == c->pv_cap) {
			size_t cap = c->pv_cap ? c->pv_cap * 2 : 16;
			void *p = realloc(c->pv, cap * sizeof(*c->pv));

			if (!p)
				return -ENOMEM;
			c->pv = p;
			c->pv_cap = cap;
		}
		x->id = (uint32_t)c->pv_n++;
	}
	c->pv[x->id] = x;
	return 0;
}

/* Free a pair nobody uses and its id (kept for reuse; if the list cannot
 * grow the id is just not reused). */
static void pair_free(struct pair_store *c, struct cache_pair *x)
{
	c->pv[x->id] = NULL;
	if (c->pv_nfree == c->pv_free_cap) {
		size_t cap = c->pv_free_cap ? c->pv_free_cap * 2 : 64;
		void *p = realloc(c->pv_free, cap * sizeof(*c->pv_free));

		if (p) {
			c->pv_free = p;
			c->pv_free_cap = cap;
		}
	}
	if (c->pv_nfree < c->pv_free_cap)
		c->pv_free[c->pv_nfree++] = x->id;
	free(x);
}

static uint32_t pair_hash(const char *name, size_t nlen, const char *value, size_t vlen)
{
	return (uint32_t)XXH3_64bits_withSeed(value, vlen, XXH3_64bits(name, nlen));
}

static void pairs_place(uint32_t *slots, size_t cap, const struct cache_pair *x)
{
	size_t i = table_home((uint64_t)x->hash << 32, cap);

	while (slots[i])
		i = table_next(i, cap);
	slots[i] = x->id + 1;
}

/* Rebuild the table at cap slots, freeing the pairs nobody uses. */
static int pairs_rebuild(struct pair_store *c, size_t cap)
{
	uint32_t *slots = calloc(cap, sizeof(*slots));

	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; i < c->pairs_cap; i++) {
		struct cache_pair *x;

		if (!c->pairs[i])
			continue;
		x = c->pv[c->pairs[i] - 1];
		if (x->refs)
			pairs_place(slots, cap, x);
		else
			pair_free(c, x);
	}
	free(c->pairs);
	c->pairs = slots;
	c->pairs_cap = cap;
	c->pairs_n -= c->pairs_dead;
	c->pairs_dead = 0;
	return 0;
}

/* A reference to the interned label name[0, nlen)=value[0, vlen) (NUL
 * bytes allowed in the value): its id in *id; -ENOMEM. */
static int intern(struct pair_store *c, const char *name, size_t nlen, const char *value,
		  size_t vlen, uint32_t *id)
{
	uint32_t h = pair_hash(name, nlen, value, vlen);
	bool lit = nlen == sizeof(name_label) - 1 && memcmp(name, name_label, nlen) == 0;
	uint32_t want = lit ? (uint32_t)nlen | PAIR_NAME_LIT : (uint32_t)nlen;
	struct cache_pair *x;
	size_t i;

	if (!c || nlen >= PAIR_NAME_LIT || vlen > UINT32_MAX)
		return -ENOMEM;
	if ((c->pairs_n + 1) * 4 > c->pairs_cap * 3 &&
	    pairs_rebuild(c, table_grown(c->pairs_n - c->pairs_dead, c->pairs_cap)))
		return -ENOMEM;
	for (i = table_home((uint64_t)h << 32, c->pairs_cap); c->pairs[i];
	     i = table_next(i, c->pairs_cap)) {
		x = c->pv[c->pairs[i] - 1];
		if (x->hash == h && x->name_len == want && x->value_len == vlen &&
		    (lit || memcmp(x->s, name, nlen) == 0) &&
		    memcmp(x->s + (lit ? 0 : nlen + 1), value, vlen) == 0) {
			if (x->refs++ == 0)
				c->pairs_dead--;
			*id = x->id;
			return 0;
		}
	}
	x = malloc(sizeof(*x) + (lit ? 0 : nlen + 1) + vlen + 1);
	if (!x)
		return -ENOMEM;
	if (pair_id(c, x)) {
		free(x);
		return -ENOMEM;
	}
	x->refs = 1;
	x->name_len = want;
	x->value_len = (uint32_t)vlen;
	x->hash = h;
	if (lit) {
		memcpy(x->s, value, vlen);
		x->s[vlen] = '\0';
	} else {
		memcpy(x->s, name, nlen);
		x->s[nlen] = '\0';
		memcpy(x->s + nlen + 1, value, vlen);
		x->s[nlen + 1 + vlen] = '\0';
	}
	c->pairs[i] = x->id + 1;
	c->pairs_n++;
	*id = x->id;
	return 0;
}

static void unintern(struct pair_store *c, uint32_t id)
{
	if (--c->pv[id]->refs == 0)
		c->pairs_dead++;
}

struct pair_store *pair_store_new(void)
{
	struct pair_store *p = calloc(1, sizeof(*p));

	if (p)
		p->refs = 1;
	return p;
}

void pair_store_put(struct pair_store *p)
{
	if (!p || --p->refs)
		return;
	for (size_t i = 0; i < p->pv_n; i++)
		free(p->pv[i]);
	free(p->pairs);
	free(p->pv);
	free(p->pv_free);
	free(p);
}

/* ---- exemplar keys (entry pointer -> last key) ---- */

static size_t ex_home(const struct series_cache *c, const struct cache_entry *e)
{
	return (size_t)(((uintptr_t)e >> 4) * 0x9e3779b97f4a7c15ull) & (c->ex_cap - 1);
}

static struct cache_exkey *ex_find(const struct series_cache *c, const struct cache_entry *e)
{
	if (!(e->flags & ENTRY_EXKEY))
		return NULL;
	for (size_t i = ex_home(c, e); c->ex[i].e; i = (i + 1) & (c->ex_cap - 1))
		if (c->ex[i].e == e)
			return &c->ex[i];
	return NULL;
}

/* Remember e's exemplar key; -ENOMEM leaves it unremembered (the
 * exemplar is sent again next time). */
static int ex_set(struct series_cache *c, struct cache_entry *e, uint64_t key)
{
	struct cache_exkey *x = ex_find(c, e);
	size_t i;

	if (x) {
		x->key = key;
		return 0;
	}
	if ((c->ex_n + 1) * 2 > c->ex_cap) {
		size_t cap = c->ex_cap ? c->ex_cap * 2 : 16;
		struct cache_exkey *t = calloc(cap, sizeof(*t)), *old = c->ex;
		size_t old_cap = c->ex_cap;

		if (!t)
			return -ENOMEM;
		c->ex = t;
		c->ex_cap = cap;
		for (size_t k = 0; k < old_cap; k++) {
			if (!old[k].e)
				continue;
			for (i = ex_home(c, old[k].e); t[i].e; i = (i + 1) & (cap - 1))
				;
			t[i] = old[k];
		}
		free(old);
	}
	for (i = ex_home(c, e); c->ex[i].e; i = (i + 1) & (c->ex_cap - 1))
		;
	c->ex[i].e = e;
	c->ex[i].key = key;
	c->ex_n++;
	e->flags |= ENTRY_EXKEY;
	return 0;
}

/* Forget e's exemplar key (backward-shift deletion). */
static void ex_del(struct series_cache *c, struct cache_entry *e)
{
	struct cache_exkey *x = ex_find(c, e);
	size_t mask = c->ex_cap - 1, i, j;

	e->flags &= (uint8_t)~ENTRY_EXKEY;
	if (!x)
		return;
	i = (size_t)(x - c->ex);
	c->ex[i].e = NULL;
	c->ex_n--;
	for (j = (i + 1) & mask; c->ex[j].e; j = (j + 1) & mask) {
		size_t home = ex_home(c, c->ex[j].e);

		if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
			c->ex[i] = c->ex[j];
			c->ex[j].e = NULL;
			i = j;
		}
	}
}

/* Drop the references an entry holds (for entries built by entry_new). */
static void entry_release(struct series_cache *c, struct cache_entry *e)
{
	for (size_t i = 0; i < e->n_labels; i++)
		unintern(c->ps, e->labels[i]);
	ex_del(c, e);
}

/* ---- the entry store (scrape.h) ---- */

#define STORE_BLOCK_MAX	 (1u << ENTRY_REF_SHIFT) /* words */
#define STORE_BLOCKS_MAX 4095			 /* ref + 1 stays nonzero */
#define STORE_BLOCK_MIN	 64

/* Words of entry e. */
static size_t entry_words(const struct cache_entry *e)
{
	size_t b =
	    (e->flags & ENTRY_NUL) ? ENTRY_NUL_SIZE(e->n_labels) : ENTRY_IDS_SIZE(e->n_labels);

	return (b + 3) / 4;
}

static int store_block(struct entry_store *st, size_t words)
{
	uint32_t *b;

	if (st->n_blk == STORE_BLOCKS_MAX || words > STORE_BLOCK_MAX)
		return -ENOMEM;
	if (st->n_blk == st->blk_cap) {
		uint32_t cap = st->blk_cap ? st->blk_cap * 2 : 4;
		void *p = realloc(st->blk, cap * sizeof(*st->blk));

		if (!p)
			return -ENOMEM;
		st->blk = p;
		p = realloc(st->blk_len, cap * sizeof(*st->blk_len));
		if (!p)
			return -ENOMEM; /* blk grew: fine, blk_cap says the smaller */
		st->blk_len = p;
		st->blk_cap = cap;
	}
	b = malloc(words * sizeof(*b));
	if (!b)
		return -ENOMEM;
	if (st->n_blk)
		st->blk_len[st->n_blk - 1] = st->len;
	st->blk[st->n_blk++] = b;
	st->len = 0;
	st->size = (uint32_t)words;
	st->held += words;
	return 0;
}

/* Room for an entry of `words` words: a freed one of that size, else the
 * end of the last block, else a new block of a quarter of what is held
 * (the store is refitted after the scrape, store_compact). */
static int store_alloc(struct entry_store *st, size_t words, uint32_t *ref)
{
	if (words < ENTRY_FREE_CLASSES && st->freel && st->freel[words]) {
		*ref = st->freel[words] - 1;
		memcpy(&st->freel[words], entry_at(st, *ref), sizeof(uint32_t));
	} else {
		if (!st->n_blk || st->len + words > st->size) {
			size_t b = st->held / 4;

			b = b < STORE_BLOCK_MIN ? STORE_BLOCK_MIN : b;
			b = b < words ? words : b > STORE_BLOCK_MAX ? STORE_BLOCK_MAX : b;
			if (store_block(st, b))
				return -ENOMEM;
		}
		*ref = (st->n_blk - 1) << ENTRY_REF_SHIFT | st->len;
		st->len += (uint32_t)words;
	}
	st->live += words;
	return 0;
}

/* Give back entry ref of `words` words (reused by size; larger ones wait
 * for the next compaction). */
static void store_free(struct entry_store *st, uint32_t ref, size_t words)
{
	/* never an order hint again (the link below overwrites the key) */
	entry_at(st, ref)->flags |= ENTRY_EVICT;
	st->live -= words;
	if (!st->freel)
		st->freel = calloc(ENTRY_FREE_CLASSES, sizeof(*st->freel));
	if (words < ENTRY_FREE_CLASSES && st->freel) {
		memcpy(entry_at(st, ref), &st->freel[words], sizeof(uint32_t));
		st->freel[words] = ref + 1;
	}
}

static void store_free_all(struct entry_store *st)
{
	for (uint32_t i = 0; i < st->n_blk; i++)
		free(st->blk[i]);
	free(st->blk);
	free(st->blk_len);
	free(st->freel);
	memset(st, 0, sizeof(*st));
}

/* The live entry at ref, if ref is inside the store (the order hint:
 * ref may be just past a block's end or name a freed entry), else NULL. */
static inline struct cache_entry *store_live_at(const struct entry_store *st, uint32_t ref)
{
	uint32_t b = ref >> ENTRY_REF_SHIFT;
	struct cache_entry *e;

	if (b >= st->n_blk ||
	    (ref & (STORE_BLOCK_MAX - 1)) >= (b + 1 == st->n_blk ? st->len : st->blk_len[b]))
		return NULL;
	e = entry_at(st, ref);
	return (e->flags & ENTRY_EVICT) ? NULL : e;
}

/* The ref just after entry e at ref (UINT32_MAX past the largest block). */
static inline uint32_t store_after(uint32_t ref, const struct cache_entry *e)
{
	uint32_t off = (ref & (STORE_BLOCK_MAX - 1)) + (uint32_t)entry_words(e);

	return off < STORE_BLOCK_MAX ? (ref & ~(STORE_BLOCK_MAX - 1)) | off : UINT32_MAX;
}

/* ---- the series table ---- */

void series_cache_reset(struct series_cache *c)
{
	/* the pairs are shared: drop this cache's references */
	for (size_t i = 0; i < c->cap; i++) {
		struct cache_entry *e = series_cache_at(c, i);

		if (e)
			entry_release(c, e);
	}
	if (c->cap)
		memset(c->slots, 0, c->cap * sizeof(*c->slots));
	store_free_all(&c->st);
	c->n = 0;
	c->seen = 0;
	c->first = 0;
	c->cursor = NULL;
	free(c->ex);
	c->ex = NULL;
	c->ex_cap = c->ex_n = 0;
}

void series_cache_free(struct series_cache *c)
{
	series_cache_reset(c);
	free(c->slots);
	pair_store_put(c->ps);
	memset(c, 0, sizeof(*c));
}

/* The entry of key k and its slot in *slot, or NULL. */
static struct cache_entry *cache_find(const struct series_cache *c, XXH128_hash_t k, size_t *slot)
{
	size_t i;

	if (!c->cap)
		return NULL;
	for (i = table_home(k.low64, c->cap); c->slots[i]; i = table_next(i, c->cap)) {
		struct cache_entry *e = entry_at(&c->st, c->slots[i] - 1);

		if (e->key_lo == k.low64 && e->key_hi == (uint32_t)k.high64) {
			*slot = i;
			return e;
		}
	}
	return NULL;
}

/* Put slot value v (entry ref + 1) of an entry with key_lo k. */
static void slot_put(uint32_t *slots, size_t cap, uint64_t k, uint32_t v)
{
	size_t i = table_home(k, cap);

	while (slots[i])
		i = table_next(i, cap);
	slots[i] = v;
}

static int cache_resize(struct series_cache *c, size_t cap)
{
	uint32_t *slots = calloc(cap, sizeof(*slots));

	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; i < c->cap; i++)
		if (c->slots[i])
			slot_put(slots, cap, entry_at(&c->st, c->slots[i] - 1)->key_lo,
				 c->slots[i]);
	free(c->slots);
	c->slots = slots;
	c->cap = cap;
	return 0;
}

static int cache_insert(struct series_cache *c, uint32_t ref)
{
	/* keep the load below 3/4 */
	if ((c->n + 1) * 4 > c->cap * 3 && cache_resize(c, table_grown(c->n, c->cap)))
		return -ENOMEM;
	slot_put(c->slots, c->cap, entry_at(&c->st, ref)->key_lo, ref + 1);
	c->n++;
	return 0;
}

static void cache_delete(struct series_cache *c, struct cache_entry *e)
{
	size_t cap = c->cap, i, j;

	for (i = table_home(e->key_lo, cap); !c->slots[i] || entry_at(&c->st, c->slots[i] - 1) != e;
	     i = table_next(i, cap))
		if (!c->slots[i])
			return; /* not present */
	entry_release(c, e);
	store_free(&c->st, c->slots[i] - 1, entry_words(e));
	c->slots[i] = 0;
	c->n--;
	/* shift back the entries of the cluster that probed past slot i */
	for (j = table_next(i, cap); c->slots[j]; j = table_next(j, cap)) {
		size_t home = table_home(entry_at(&c->st, c->slots[j] - 1)->key_lo, cap);

		/* entry at j may move to i if its home is not in (i, j] */
		if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
			c->slots[i] = c->slots[j];
			c->slots[j] = 0;
			i = j;
		}
	}
}

/* Dead pairs freed by cache_shrink() only from this many on. */
#define PAIRS_DEAD_MIN 16

/* After evictions (a target that exposed far more series than it does now,
 * e.g. after a cardinality bomb): give back the table slots and the label
 * pairs nobody uses, so the memory returns instead of waiting for the
 * target to grow again. Failure to allocate the smaller tables keeps the
 * big ones. */
static void cache_shrink(struct series_cache *c)
{
	struct pair_store *p = c->ps;
	size_t live = p ? p->pairs_n - p->pairs_dead : 0;

	if (c->cap > 16 && c->n * 8 < c->cap)
		(void)cache_resize(c, table_fit(c->n));
	/* Under series churn every new series brings pairs of its own (a pod
	 * name, a request id) and every evicted one leaves its pairs with no
	 * reference: free them once they are a quarter of the live ones (the
	 * rebuild costs a pass over the table, spread over that many deaths),
	 * so dead pairs cost at most ~25 % on top of the live ones. */
	if (p && p->pairs_dead >= PAIRS_DEAD_MIN && p->pairs_dead * 4 >= live)
		(void)pairs_rebuild(p, table_fit(live));
}

/* Move the entries into one block of exactly their size (more when over
 * STORE_BLOCK_MAX): table slots, the first-series pointer and the exemplar
 * table follow them. Nothing else may hold an entry pointer (the batch
 * was sent). Failure to allocate keeps the old store. */
/* Copy the entry in slot i into nst (nref[i] = its new ref + 1). */
static int compact_one(struct series_cache *c, struct entry_store *nst, uint32_t *nref, size_t i,
		       uint32_t *first)
{
	struct cache_entry *e = series_cache_at(c, i), *ne;
	size_t w = entry_words(e);
	uint32_t ref;

	if (store_alloc(nst, w, &ref))
		return -ENOMEM;
	nref[i] = ref + 1;
	ne = entry_at(nst, ref);
	memcpy(ne, e, w * sizeof(uint32_t));
	if ((e->flags & ENTRY_NUL) && (((uintptr_t)ne ^ (uintptr_t)e) & 4))
		memmove(lens_at(ne, ne->n_labels),
			(const char *)ne + ((const char *)entry_lens(e) - (const char *)e),
			ne->n_labels * sizeof(size_t));
	if (c->slots[i] == c->first)
		*first = ref + 1;
	return 0;
}

/* Move the entries into one block of exactly their size (more when over
 * STORE_BLOCK_MAX), in the order of the last scrape (order: its n refs,
 * from a completed scrape; then any others, in table order; NULL: table
 * order), so the next scrape reads them one after the other and finds
 * each series' entry just after the one before (the order hint): table
 * slots, the first-series ref and the exemplar table follow them. Nothing
 * else may hold an entry pointer (the batch was sent). Failure to
 * allocate keeps the old store. */
static void store_compact(struct series_cache *c, const uint32_t *order, size_t n)
{
	struct entry_store nst = {0};
	uint32_t *nref = NULL; /* by slot: new ref + 1, 0 = not moved yet */
	uint32_t first = 0;
	size_t slot;

	if (c->cap && !(nref = calloc(c->cap, sizeof(*nref))))
		return;
	if (c->st.live &&
	    store_block(&nst, c->st.live < STORE_BLOCK_MAX ? c->st.live : STORE_BLOCK_MAX))
		goto fail;
	for (size_t k = 0; order && k < n; k++) {
		const struct cache_entry *e = entry_at(&c->st, order[k]);
		XXH128_hash_t key = {.low64 = e->key_lo, .high64 = e->key_hi};

		if (!(e->flags & ENTRY_EVICT) && cache_find(c, key, &slot) &&
		    c->slots[slot] == order[k] + 1 && !nref[slot] &&
		    compact_one(c, &nst, nref, slot, &first))
			goto fail;
	}
	for (size_t i = 0; i < c->cap; i++)
		if (c->slots[i] && !nref[i] && compact_one(c, &nst, nref, i, &first))
			goto fail;
	for (size_t i = 0; i < c->cap; i++) {
		struct cache_entry *e = series_cache_at(c, i);

		if (e && (e->flags & ENTRY_EXKEY)) {
			struct cache_exkey *x = ex_find(c, e);

			if (x) /* new blocks: no old pointer is met again */
				x->e = entry_at(&nst, nref[i] - 1);
		}
	}
	for (size_t i = 0; i < c->cap; i++)
		c->slots[i] = nref[i];
	store_free_all(&c->st);
	c->st = nst;
	c->st.ordered = order != NULL;
	c->first = first;
	c->cursor = NULL;
	free(nref);
	/* the exemplar table is keyed by the pointers: place them again */
	if (c->ex_n) {
		struct cache_exkey *t = calloc(c->ex_cap, sizeof(*t)), *old = c->ex;

		if (!t) { /* forget the keys: those exemplars are sent again */
			for (size_t i = 0; i < c->ex_cap; i++)
				if (old[i].e)
					((struct cache_entry *)old[i].e)->flags &=
					    (uint8_t)~ENTRY_EXKEY;
			free(old);
			c->ex = NULL;
			c->ex_cap = c->ex_n = 0;
			return;
		}
		c->ex = t;
		for (size_t j = 0; j < c->ex_cap; j++) {
			size_t i;

			if (!old[j].e)
				continue;
			for (i = ex_home(c, old[j].e); t[i].e; i = (i + 1) & (c->ex_cap - 1))
				;
			t[i] = old[j];
		}
		free(old);
	}
	return;
fail:
	store_free_all(&nst);
	free(nref);
}

/* After a scrape: tables that grew by doubling are cut to their fitted
 * size once the series are known (issue 12: doubling left a 50-series
 * target a 128-slot table), and the id array to its use. Hysteresis: a
 * table is refitted only below ~1/2 load, it grows at 3/4, fitted is 2/3.
 * The entry store is compacted when it has more than one block or over
 * an eighth of it is unused (16 words of slack), or when it is not yet
 * laid out in scrape order and the scrape completed (order: its n refs,
 * else NULL). Runs after the batch was sent (entries move). */
static void cache_fit(struct series_cache *c, const uint32_t *order, size_t n)
{
	struct pair_store *ps = c->ps;
	size_t live = ps ? ps->pairs_n - ps->pairs_dead : 0;

	bool refit = c->cap > 16 && c->cap * 4 > table_fit(c->n) * 5;

	if (c->st.held - c->st.live > (c->st.n_blk > 1 ? 0 : c->st.live / 8) + 16 ||
	    (!c->st.ordered && order && c->n))
		store_compact(c, order, n);
	if (refit)
		(void)cache_resize(c, table_fit(c->n));
	if (!ps)
		return;
	if (ps->pairs_cap > 16 && ps->pairs_cap * 4 > table_fit(live) * 5)
		(void)pairs_rebuild(ps, table_fit(live));
	if (ps->pv_n && ps->pv_cap > 16 && ps->pv_cap * 4 > ps->pv_n * 5) {
		void *p = realloc(ps->pv, ps->pv_n * sizeof(*ps->pv));

		if (p) {
			ps->pv = p;
			ps->pv_cap = ps->pv_n;
		}
	}
}

/* ------------------------------------------------------------------------ */
/* Cache miss: labels from the series text, merged and relabelled once.      */

static bool label_limits_ok(const struct scrape_config *cfg, const struct starling_lset *ls)
{
	if (cfg->label_limit && ls->n > cfg->label_limit)
		return false;
	for (size_t i = 0; i < ls->n; i++) {
		if (cfg->label_name_length_limit &&
		    strlen(ls->v[i].name) > cfg->label_name_length_limit)
			return false;
		if (cfg->label_value_length_limit &&
		    strlen(ls->v[i].value) > cfg->label_value_length_limit)
			return false;
	}
	return true;
}

/* Add the target labels to the scraped labels in s->lset, the Prometheus
 * way: with honor_labels the scraped value wins; without it a clashing
 * scraped label is kept as exported_<name> (exported_exported_<name> if
 * that exists too) and the target value is set. */
static int merge_target_labels(const struct scrape_config *cfg, const struct scrape_target *t,
			       struct starling_lset *ls)
{
	char name[256];
	int rc;

	for (size_t i = 0; i < t->n_labels; i++) {
		const struct starling_label *tl = &t->labels[i];
		const char *have = starling_lset_get(ls, tl->name);

		if (have && cfg->honor_labels)
			continue;
		if (have) {
			size_t nl = strlen(tl->name);
			size_t plen = 0;

			/* find a free exported_... name */
			do {
				if (plen + 9 + nl + 1 > sizeof(name))
					return -EINVAL;
				memcpy(name + plen, "exported_", 9);
				plen += 9;
				memcpy(name + plen, tl->name, nl + 1);
			} while (starling_lset_get(ls, name));
			rc = starling_lset_set(ls, name, plen + nl, have, strlen(have));
			if (rc)
				return rc;
		}
		rc = starling_lset_set_str(ls, tl->name, tl->value);
		if (rc)
			return rc;
	}
	return 0;
}

/* Where a label's strings can be shared instead of copied: the target's
 * own label of that name and value, or the literal "__name__". */
static const struct starling_label *shared_label(const struct scrape_target *t,
						 const struct starling_label *l)
{
	for (size_t i = 0; i < t->n_labels; i++)
		if (strcmp(t->labels[i].name, l->name) == 0)
			return strcmp(t->labels[i].value, l->value) == 0 ? &t->labels[i] : NULL;
	return NULL;
}

/* Intern a label whose value was parsed with expo_series_labels_nul_ff()
 * when nul: its 0xff bytes (valid UTF-8 never holds one) are the NUL bytes
 * of the exposition. *len gets the value's length. */
static int intern_label(struct series_cache *c, const struct starling_label *l, bool nul,
			size_t *len, uint32_t *id)
{
	char stack[256], *b = stack;
	size_t nlen = strlen(l->name);
	int r;

	*len = strlen(l->value);
	if (!nul || !memchr(l->value, 0xff, *len))
		return intern(c->ps, l->name, nlen, l->value, *len, id);
	if (*len >= sizeof(stack) && !(b = malloc(*len + 1)))
		return -ENOMEM;
	for (size_t i = 0; i < *len; i++)
		b[i] = (unsigned char)l->value[i] == 0xff ? '\0' : l->value[i];
	r = intern(c->ps, l->name, nlen, b, *len, id);
	if (b != stack)
		free(b);
	return r;
}

/* The hash of an ENTRY_NUL entry's labels (all stored, values with their
 * NUL bytes): over a copy of the label structs. */
static int nul_hash(const struct series_cache *c, const struct cache_entry *e, const size_t *lens,
		    uint64_t *out)
{
	struct starling_label stack[32], *v = stack;

	if (e->n_labels > 32 && !(v = malloc(e->n_labels * sizeof(*v))))
		return -ENOMEM;
	for (size_t i = 0; i < e->n_labels; i++)
		v[i] = pair_label(c->ps->pv[e->labels[i]]);
	*out = starling_labels_hash_n(v, lens, e->n_labels);
	if (v != stack)
		free(v);
	return 0;
}

static struct cache_entry *entry_new(struct scrape_target *t, XXH128_hash_t key,
				     const struct starling_lset *ls, uint8_t flags, uint32_t *ref)
{
	size_t n = ls ? ls->n : 0, k = 0, n_shared = 0;
	unsigned pos = 0, present = 0;
	bool nul = flags & ENTRY_NUL;
	/* an ENTRY_NUL entry keeps its whole set: its value lengths go with it */
	bool leave_out = n <= 16 && !nul;
	struct cache_entry *e;
	size_t *lens, len, words;

	/* which labels are the target's own (left out when the positions fit
	 * the masks) */
	for (size_t i = 0; i < n; i++) {
		const struct starling_label *sh = shared_label(t, &ls->v[i]);
		size_t j = sh ? (size_t)(sh - t->labels) : 0;

		if (!sh)
			continue;
		n_shared++;
		if (j >= 16 || (present >> j & 1u))
			leave_out = false;
		pos |= 1u << (i & 15);
		present |= 1u << (j & 15);
	}
	if (!n_shared)
		leave_out = false;
	words =
	    ((nul ? ENTRY_NUL_SIZE(n) : ENTRY_IDS_SIZE(n - (leave_out ? n_shared : 0))) + 3) / 4;
	if (store_alloc(&t->cache.st, words, ref))
		return NULL;
	e = entry_at(&t->cache.st, *ref);
	lens = nul ? lens_at(e, n) : NULL;
	memset(e, 0, offsetof(struct cache_entry, labels));
	e->key_lo = key.low64;
	e->key_hi = (uint32_t)key.high64;
	e->flags = flags;
	if (leave_out) {
		e->tl_pos = (uint16_t)pos;
		e->tl_present = (uint16_t)present;
	}
	for (size_t i = 0; i < n; i++) {
		if (leave_out && shared_label(t, &ls->v[i]))
			continue;
		if (intern_label(&t->cache, &ls->v[i], nul, &len, &e->labels[k])) {
			e->n_labels = (uint16_t)k;
			entry_release(&t->cache, e);
			store_free(&t->cache.st, *ref, words);
			return NULL;
		}
		if (nul)
			lens[i] = len;
		e->n_labels = (uint16_t)++k;
	}
	if (nul && n) {
		uint64_t hash; /* the field is 4-aligned */

		if (nul_hash(&t->cache, e, lens, &hash)) {
			entry_release(&t->cache, e);
			store_free(&t->cache.st, *ref, words);
			return NULL;
		}
		e->hash = hash;
	}
	if (!nul)
		e->hash = n ? starling_labels_hash(ls->v, n) : 0;
	return e;
}

/* Returns the new entry, or NULL with *rc set (-EINVAL: the series text is
 * malformed, which fails the scrape; *why says why). */
/* Prometheus 3's text parsers rewrite the le label of a histogram's
 * series and the quantile label of a summary's in OpenMetrics float form
 * (model/textparse/promparse.go normalizeFloatsInLabelValues), so "1" and
 * "1.0" name the same bucket whatever the format; protobuf ones already are. */
static int normalize_float_label(struct starling_lset *ls, enum starling_metric_type type)
{
	const char *name = type == STARLING_METRIC_HISTOGRAM ? "le"
			   : type == STARLING_METRIC_SUMMARY ? "quantile"
							     : NULL;
	const char *v = name ? starling_lset_get(ls, name) : NULL;
	char out[40], *end;
	double f;

	if (!v || !*v)
		return 0;
	f = strtod(v, &end);
	if (*end || end == v)
		return 0;
	starling_expo_format_float(f, out);
	if (strcmp(out, v) == 0)
		return 0;
	return starling_lset_set_str(ls, name, out);
}

static struct cache_entry *cache_miss(struct scrape_ctx *ctx, struct scrape_target *t,
				      enum starling_expo_format fmt, enum starling_metric_type type,
				      const char *raw, size_t len, XXH128_hash_t h, uint32_t *eref,
				      int *rc, const char **why)
{
	struct scrape_scratch *s = ctx->scratch;
	const struct scrape_config *cfg = ctx->cfg;
	struct cache_entry *e;
	uint32_t ref = UINT32_MAX;
	uint8_t flags = 0;
	int r;

	*why = NULL;
	(void)fmt;
	r = starling_expo_series_labels_flags(
	    raw, len, cfg->utf8_names ? STARLING_EXPO_UTF8_NAMES : 0, &s->lset, why);
	if (r == -EILSEQ) {
		/* A NUL byte in a label value: valid, and Prometheus keeps
		 * the series with the exact value. Parse it with each NUL as
		 * 0xff (so relabelling and limits see a C string of the same
		 * length); entry_new() turns them back and keeps the lengths,
		 * which go with the series (label_value_lens). */
		r = expo_series_labels_nul_ff(
		    raw, len, cfg->utf8_names ? STARLING_EXPO_UTF8_NAMES : 0, &s->lset, why);
		flags |= ENTRY_NUL;
	}
	if (r) {
		*rc = r;
		if (!*why)
			*why = r == -ENOMEM ? "out of memory" : "invalid series";
		return NULL;
	}
	if (s->lset.n > UINT16_MAX) {
		*rc = -EINVAL;
		*why = "too many labels";
		return NULL;
	}
	if (!(flags & ENTRY_DROPPED) && fmt != STARLING_EXPO_PROTOBUF &&
	    type != STARLING_METRIC_UNKNOWN && normalize_float_label(&s->lset, type)) {
		*rc = -ENOMEM;
		*why = "out of memory";
		return NULL;
	}
	r = flags & ENTRY_DROPPED ? 0 : merge_target_labels(cfg, t, &s->lset);
	if (r) {
		*rc = r;
		*why = "label name too long";
		return NULL;
	}
	if (cfg->metric_relabel && !(flags & ENTRY_DROPPED)) {
		r = starling_relabel_apply(cfg->metric_relabel, &s->lset, &s->rs);
		if (r < 0) {
			*rc = r;
			*why = "out of memory";
			return NULL;
		}
		if (r == 0 || s->lset.n == 0)
			flags |= ENTRY_DROPPED;
	}
	if (!(flags & ENTRY_DROPPED) && !label_limits_ok(cfg, &s->lset))
		flags |= ENTRY_OVER_LIMIT;
	e = entry_new(t, h, (flags & ENTRY_DROPPED) ? NULL : &s->lset, flags, &ref);
	if (e && cache_insert(&t->cache, ref)) {
		entry_release(&t->cache, e);
		store_free(&t->cache.st, ref, entry_words(e));
		e = NULL;
	}
	if (!e) {
		*rc = -ENOMEM;
		*why = "out of memory";
		return NULL;
	}
	*eref = ref;
	return e;
}

/* Note ref as the next series of this scrape (the store's layout). */
static inline void order_push(struct scrape_scratch *s, uint32_t ref)
{
	if (s->n_order == s->order_cap) {
		size_t cap = s->order_cap ? s->order_cap * 2 : 256;
		void *p = s->order_lost ? NULL : realloc(s->order, cap * sizeof(*s->order));

		if (!p) {
			s->order_lost = true;
			return;
		}
		s->order = p;
		s->order_cap = cap;
	}
	s->order[s->n_order++] = ref;
}

/* ------------------------------------------------------------------------ */
/* Exemplars and native histograms of one event.                            */

/* Seed of the cache key of a native histogram's series text, so that it
 * never shares an entry with a float series of the same text. */
#define HIST_KEY_SEED 0x4e48u

static size_t utf8_len(const char *p)
{
	size_t n = 0;

	for (; *p; p++)
		n += ((unsigned char)*p & 0xc0) != 0x80;
	return n;
}

/* Put the event's exemplars in the pool for the series just added. As in
 * Prometheus: an exemplar without a timestamp gets the scrape's, one whose
 * labels are over 128 code points is dropped, and a timestamped exemplar
 * seen in the previous scrape of the series is not sent again. */
static int add_exemplars(struct scrape_scratch *s, struct series_cache *c, struct cache_entry *e,
			 const struct starling_expo_event *ev, int64_t def_ts)
{
	const struct cache_exkey *x0;
	struct starling_exemplar ex[16];
	size_t n = 0, off;
	uint64_t key = 0;
	bool all_ts = true;

	for (size_t i = 0; i < ev->n_exemplars; i++) {
		const struct starling_expo_exemplar *x = &ev->exemplars[i];

		key =
		    XXH3_64bits_withSeed(x->labels, x->labels_len, key ^ (uint64_t)x->timestamp_ms);
		key ^= XXH3_64bits(&x->value, sizeof(x->value));
		all_ts &= x->has_timestamp;
	}
	x0 = ex_find(c, e);
	if (all_ts && x0 && key == x0->key)
		return 0;
	if (ex_set(c, e, key))
		return -ENOMEM;
	for (size_t i = 0; i < ev->n_exemplars && n < 16; i++) {
		const struct starling_expo_exemplar *x = &ev->exemplars[i];
		size_t cp = 0, lo;
		size_t *pairs;

		if (starling_expo_exemplar_labels(x->labels, x->labels_len, &s->tmp, NULL))
			continue;
		for (size_t j = 0; j < s->tmp.n; j++)
			cp += utf8_len(s->tmp.v[j].name) + utf8_len(s->tmp.v[j].value);
		if (cp > 128)
			continue;
		lo = pool_put(s, NULL, 2 * s->tmp.n * sizeof(size_t));
		if (lo == SIZE_MAX)
			return -ENOMEM;
		for (size_t j = 0; j < s->tmp.n; j++) {
			size_t no = pool_put(s, s->tmp.v[j].name, strlen(s->tmp.v[j].name) + 1);
			size_t vo = no == SIZE_MAX ? SIZE_MAX
						   : pool_put(s, s->tmp.v[j].value,
							      strlen(s->tmp.v[j].value) + 1);

			if (vo == SIZE_MAX)
				return -ENOMEM;
			pairs = (size_t *)(void *)(s->xpool + lo);
			pairs[2 * j] = no;
			pairs[2 * j + 1] = vo;
		}
		ex[n].labels = (const struct starling_label *)(uintptr_t)(lo + 1);
		ex[n].n_labels = s->tmp.n;
		ex[n].value = x->value;
		ex[n].timestamp_ms = x->has_timestamp ? x->timestamp_ms : def_ts;
		ex[n].has_timestamp = true;
		n++;
	}
	if (!n)
		return 0;
	off = pool_put(s, ex, n * sizeof(ex[0]));
	if (off == SIZE_MAX)
		return -ENOMEM;
	if (s->xo[s->n - 1].hist == SIZE_MAX && !s->xo[s->n - 1].value_lens)
		s->n_ext++;
	s->xo[s->n - 1].exemplars = off;
	s->xo[s->n - 1].n_exemplars = n;
	return 0;
}

/* Copy a native histogram into the pool and apply the bucket settings
 * (Prometheus: native_histogram_min_bucket_factor reduces to its schema
 * first, then native_histogram_bucket_limit halves the resolution until
 * the histogram fits, failing the scrape when schema -4 still does not).
 * Returns 0 with *out = the offset, -ENOMEM, or -E2BIG with st->error. */
static int add_histogram(struct scrape_ctx *ctx, const struct starling_histogram *src, int64_t ts,
			 size_t *out, struct scrape_stats *st)
{
	struct scrape_scratch *s = ctx->scratch;
	const struct scrape_config *cfg = ctx->cfg;
	size_t vsz = src->is_float ? sizeof(double) : sizeof(int64_t), hoff;
	const void *pv =
	    src->is_float ? (const void *)src->positive_counts : (const void *)src->positive_deltas;
	const void *nv =
	    src->is_float ? (const void *)src->negative_counts : (const void *)src->negative_deltas;
	struct scrape_hist sh, *p;

	memset(&sh, 0, sizeof(sh));
	sh.h = *src;
	sh.h.timestamp_ms = ts;
	sh.pos_spans =
	    pool_put(s, src->positive_spans, src->n_positive_spans * sizeof(*src->positive_spans));
	sh.neg_spans =
	    pool_put(s, src->negative_spans, src->n_negative_spans * sizeof(*src->negative_spans));
	sh.pos_vals = pool_put(s, pv, src->n_positive * vsz);
	sh.neg_vals = pool_put(s, nv, src->n_negative * vsz);
	hoff = pool_put(s, &sh, sizeof(sh));
	if (sh.pos_spans == SIZE_MAX || sh.neg_spans == SIZE_MAX || sh.pos_vals == SIZE_MAX ||
	    sh.neg_vals == SIZE_MAX || hoff == SIZE_MAX) {
		snprintf(st->error, sizeof(st->error), "out of memory");
		return -ENOMEM;
	}
	p = (struct scrape_hist *)(void *)(s->xpool + hoff);
	p->h.positive_spans = (void *)(s->xpool + p->pos_spans);
	p->h.negative_spans = (void *)(s->xpool + p->neg_spans);
	p->h.positive_deltas = (void *)(s->xpool + p->pos_vals);
	p->h.negative_deltas = (void *)(s->xpool + p->neg_vals);
	p->h.positive_counts = (void *)(s->xpool + p->pos_vals);
	p->h.negative_counts = (void *)(s->xpool + p->neg_vals);
	if (p->h.schema > cfg->nh_max_schema)
		starling_histogram_reduce(&p->h, cfg->nh_max_schema);
	while (cfg->nh_bucket_limit && starling_histogram_buckets(&p->h) > cfg->nh_bucket_limit) {
		if (p->h.schema <= STARLING_HISTOGRAM_SCHEMA_MIN) {
			snprintf(st->error, sizeof(st->error),
				 "native_histogram_bucket_limit %llu exceeded",
				 (unsigned long long)cfg->nh_bucket_limit);
			return -E2BIG;
		}
		starling_histogram_reduce(&p->h, p->h.schema - 1);
	}
	*out = hoff;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* One scrape.                                                               */

/* Parse the body into the batch. Returns 0, or -EINVAL/-ENOMEM/-E2BIG with
 * st->error set; on failure the caller rolls the generation back. */
/* parse_body() fetches a series table and entry store up to this size
 * before parsing */
#define PREFETCH_MAX (256u << 10)

static int parse_body(struct scrape_ctx *ctx, struct scrape_target *t,
		      const struct scrape_result *r, struct scrape_stats *st, bool collect_meta)
{
	struct scrape_scratch *s = ctx->scratch;
	const struct scrape_config *cfg = ctx->cfg;
	struct series_cache *c = &t->cache;
	struct starling_expo_event ev;
	enum starling_expo_format fmt;
	bool fallback = false;
	const char *body;
	size_t body_len = r->body_len;
	bool fetched;
	char fam[256]; /* the family of the last TYPE line, for le/quantile */
	size_t fam_len = 0;
	enum starling_metric_type fam_type = STARLING_METRIC_UNKNOWN;
	unsigned flags = (cfg->native_histograms ? STARLING_EXPO_NATIVE_HISTOGRAMS : 0) |
			 (cfg->classic_histograms ? STARLING_EXPO_CLASSIC_HISTOGRAMS : 0) |
			 (cfg->utf8_names ? STARLING_EXPO_UTF8_NAMES : 0);
	int rc;

	fmt = starling_expo_format_from_content_type(
	    r->content_type, r->content_type ? strlen(r->content_type) : 0, &fallback);
	if (fallback)
		fmt = cfg->fallback_format;
	if (!s->parser) {
		s->parser = starling_expo_parser_new(fmt, flags);
		if (!s->parser) {
			snprintf(st->error, sizeof(st->error), "out of memory");
			return -ENOMEM;
		}
	} else {
		starling_expo_set_format(s->parser, fmt, flags);
	}
	body = r->body;
	if (fmt == STARLING_EXPO_PROMETHEUS && r->body_len && r->body[r->body_len - 1] != '\n') {
		/* Prometheus' text parser takes a last line without '\n'
		 * (model/textparse/promparse.go); ours needs the '\n' as a
		 * sentinel: parse a copy that has it. */
		if (r->body_len + 1 > s->nl_cap) {
			char *nb = realloc(s->nl_body, r->body_len + 1);

			if (!nb) {
				snprintf(st->error, sizeof(st->error), "out of memory");
				return -ENOMEM;
			}
			s->nl_body = nb;
			s->nl_cap = r->body_len + 1;
		}
		memcpy(s->nl_body, r->body, r->body_len);
		s->nl_body[r->body_len] = '\n';
		body = s->nl_body;
		body_len = r->body_len + 1;
	}
	starling_expo_reset(s->parser, body, body_len);
	c->seen = 0;
	c->cursor = NULL;
	s->n_order = 0;
	s->order_lost = false;
	/* A series whose entry follows the previous series' in the store (the
	 * order hint) reads no table slot; any other probes the table, in hash
	 * order. A table of up to 256 KiB (a few KiB at 1,000 series) is
	 * fetched as a whole first, one prefetch per 64-byte line, far ahead
	 * of its use, and so is a one-block store not (yet) laid out in scrape
	 * order, whose entries are then found through the table (~2/3 of
	 * parse_body's own time before). */
	fetched = c->cap * sizeof(*c->slots) <= PREFETCH_MAX;
	if (fetched)
		for (size_t i = 0; i < c->cap; i += 64 / sizeof(*c->slots))
			__builtin_prefetch(&c->slots[i]);
	if (fetched && !c->st.ordered && c->st.n_blk == 1 &&
	    c->st.len * sizeof(*c->st.blk[0]) <= PREFETCH_MAX)
		for (size_t i = 0; i < c->st.len; i += 64 / sizeof(*c->st.blk[0]))
			__builtin_prefetch(&c->st.blk[0][i]);
	while ((rc = starling_expo_next(s->parser, &ev)) > 0) {
		struct cache_entry *e;
		const char *why;
		XXH128_hash_t h;
		size_t slot;
		uint32_t eref;
		int64_t ts;
		bool hist = rc == STARLING_EXPO_HISTOGRAM;

		if (rc == STARLING_EXPO_TYPE && ev.family_len < sizeof(fam)) {
			memcpy(fam, ev.family, ev.family_len);
			fam_len = ev.family_len;
			fam_type = ev.type;
		}
		if (rc != STARLING_EXPO_SAMPLE && !hist) {
			if (collect_meta)
				meta_event(s, &ev,
					   fmt == STARLING_EXPO_PROTOBUF ? STARLING_EXPO_PROMETHEUS
									 : fmt);
			continue;
		}
		st->scraped++;
		h = hist ? XXH3_128bits_withSeed(ev.series, ev.series_len, HIST_KEY_SEED)
			 : XXH3_128bits(ev.series, ev.series_len);
		/* the series after the previous one in the last scrape is
		 * most likely the next again: the entry after its entry */
		eref = c->cursor ? store_after(c->cursor_ref, c->cursor) : c->first - 1;
		e = store_live_at(&c->st, eref);
		if (!e || e->key_lo != h.low64 || e->key_hi != (uint32_t)h.high64) {
			e = cache_find(c, h, &slot);
			if (e)
				eref = c->slots[slot] - 1;
		}
		if (e) {
			if (e->last_seen == SEEN(c->gen))
				continue; /* duplicate series in one scrape: first wins */
			e->flags = (uint8_t)((e->flags & ~ENTRY_PREV) |
					     (e->last_seen == SEEN(c->gen - 1) ? ENTRY_PREV : 0));
		} else {
			e = cache_miss(ctx, t, fmt,
				       ev.name_len >= fam_len &&
					       memcmp(ev.series, fam, fam_len) == 0
					   ? fam_type
					   : STARLING_METRIC_UNKNOWN,
				       ev.series, ev.series_len, h, &eref, &rc, &why);
			if (!e) {
				snprintf(st->error, sizeof(st->error), "line %u: %s", ev.line, why);
				return rc;
			}
			if (!(e->flags & ENTRY_DROPPED))
				st->added++;
			if (hist)
				e->flags |= ENTRY_NATIVE;
			e->flags &= (uint8_t)~ENTRY_PREV; /* new */
		}
		e->last_seen = SEEN(c->gen);
		c->seen++;
		if (!c->cursor)
			c->first = eref + 1;
		c->cursor = e;
		c->cursor_ref = eref;
		order_push(s, eref);
		if (e->flags & ENTRY_OVER_LIMIT) {
			snprintf(st->error, sizeof(st->error),
				 "line %u: label set over the configured label limits", ev.line);
			return -E2BIG;
		}
		if (e->flags & ENTRY_DROPPED)
			continue;
		st->post_relabel++;
		if (cfg->sample_limit && st->post_relabel > cfg->sample_limit) {
			snprintf(st->error, sizeof(st->error), "sample_limit %llu exceeded",
				 (unsigned long long)cfg->sample_limit);
			return -E2BIG;
		}
		ts = r->start_ms;
		e->flags &= (uint8_t)~ENTRY_HAS_TS;
		if (ev.has_timestamp && cfg->honor_timestamps) {
			ts = ev.timestamp_ms;
			if (!cfg->track_timestamps_staleness)
				e->flags |= ENTRY_HAS_TS;
		}
		if (hist) {
			size_t hoff;

			rc = add_histogram(ctx, ev.histogram, ts, &hoff, st);
			if (rc)
				return rc;
			rc = batch_add_entry(s, t, e, 0, 0, hoff);
		} else {
			rc = batch_add_entry(s, t, e, ev.value, ts, SIZE_MAX);
		}
		if (!rc)
			batch_lens(s, e);
		if (!rc && ev.n_exemplars)
			rc = add_exemplars(s, c, e, &ev, ts);
		if (rc) {
			snprintf(st->error, sizeof(st->error), "out of memory");
			return -ENOMEM;
		}
	}
	if (rc < 0 && fmt == STARLING_EXPO_PROTOBUF) {
		snprintf(st->error, sizeof(st->error), "%s", starling_expo_error(s->parser).msg);
		return -EINVAL;
	}
	if (rc < 0) {
		struct starling_expo_error pe = starling_expo_error(s->parser);

		snprintf(st->error, sizeof(st->error), "parse error at line %u column %u: %s",
			 pe.line, pe.col, pe.msg ? pe.msg : "invalid exposition");
		return -EINVAL;
	}
	return 0;
}

/* Undo the generation marks of a failed scrape, so staleness is computed
 * against what was really forwarded last time: an entry seen in the scrape
 * before is marked so (ENTRY_PREV), any other (new, or stale-marked two
 * scrapes ago) gets an older generation, which the sweep evicts as it
 * would have before this scrape. */
static void rollback(struct series_cache *c)
{
	for (size_t i = 0; i < c->cap; i++) {
		struct cache_entry *e = series_cache_at(c, i);

		if (e && e->last_seen == SEEN(c->gen))
			e->last_seen = (e->flags & ENTRY_PREV) ? SEEN(c->gen - 1)
				       : c->gen > 2	       ? SEEN(c->gen - 2)
							       : 0;
	}
}

/* A staleness marker for e: the stale NaN, or for a native histogram a
 * histogram whose sum is the stale NaN (what Prometheus' TSDB stores and
 * remote-writes for it). */
static int add_stale(struct scrape_scratch *s, const struct scrape_target *t,
		     const struct cache_entry *e, double stale, int64_t ts)
{
	size_t hoff;
	int rc;

	if (!(e->flags & ENTRY_NATIVE)) {
		rc = batch_add_entry(s, t, e, stale, ts, SIZE_MAX);
	} else {
		hoff = stale_hist(s, ts);
		if (hoff == SIZE_MAX)
			return -ENOMEM;
		rc = batch_add_entry(s, t, e, 0, 0, hoff);
	}
	if (!rc)
		batch_lens(s, e);
	return rc;
}

/* Put e on the scratch's eviction list (false: the list cannot grow, e
 * stays until a later sweep). */
static bool evict_later(struct scrape_scratch *s, struct cache_entry *e)
{
	if (s->n_evict == s->evict_cap) {
		size_t cap = s->evict_cap ? s->evict_cap * 2 : 64;
		void *p = realloc(s->evict, cap * sizeof(*s->evict));

		if (!p)
			return false;
		s->evict = p;
		s->evict_cap = cap;
	}
	e->flags |= ENTRY_EVICT;
	s->evict[s->n_evict++] = e;
	return true;
}

/* Forget the eviction list (the batch was not sent: its entries stay). */
static void evict_cancel(struct scrape_scratch *s)
{
	for (size_t k = 0; k < s->n_evict; k++)
		s->evict[k]->flags &= (uint8_t)~ENTRY_EVICT;
	s->n_evict = 0;
}

/* Stale markers for series of the previous scrape missing from this one.
 * After a successful scrape every series not in it leaves the cache, its
 * marker sent (Prometheus' scrapeCache.iterDone(flushCache = true),
 * scrape/scrape.go, keeps only the entries seen in the current scrape; a
 * series that comes back is a cache miss and counts as added again): under
 * churn the cache then holds the live series and nothing else. After a
 * failed scrape (`failed`) the cache is kept, as Prometheus keeps it: the
 * series of the last good scrape get their markers now and leave at the
 * next successful scrape. The entries to evict are listed in the scratch
 * and deleted by evict_swept() once the batch, whose label sets point into
 * their interned pairs, has been forwarded. */
static int sweep(struct scrape_ctx *ctx, struct scrape_target *t, int64_t ts, bool failed,
		 struct scrape_stats *st)
{
	struct scrape_scratch *s = ctx->scratch;
	struct series_cache *c = &t->cache;
	double stale = stale_nan();

	bool oom = false;

	s->n_evict = 0;
	for (size_t i = 0; i < c->cap; i++) {
		struct cache_entry *e = series_cache_at(c, i);

		if (!e || e->last_seen == SEEN(c->gen))
			continue;
		if (e->last_seen != SEEN(c->gen - 1)) {
			/* older: normally evicted below; one that stays (out
			 * of memory) keeps an age of 2, so its 8-bit
			 * generation never comes round to a current one */
			e->last_seen = SEEN(c->gen - 2);
		} else if (c->gen > 1 && !oom &&
			   !(e->flags & (ENTRY_DROPPED | ENTRY_HAS_TS | ENTRY_OVER_LIMIT))) {
			if (add_stale(s, t, e, stale, ts))
				oom = true; /* go on, only to age the others */
			else
				st->stale++;
		}
		if (oom || (failed && e->last_seen == SEEN(c->gen - 1)))
			continue;
		(void)evict_later(s, e);
	}
	if (oom) {
		evict_cancel(s);
		return -ENOMEM;
	}
	return 0;
}

/* Delete the entries sweep() listed (after the batch was forwarded) and
 * give back what they held. */
static void evict_swept(struct series_cache *c, struct scrape_scratch *s)
{
	if (!s->n_evict)
		return;
	/* the order hint is the entry after the previous one, checked by
	 * key and skipped when freed (ENTRY_EVICT); the first series' too */
	if (c->first && (entry_at(&c->st, c->first - 1)->flags & ENTRY_EVICT))
		c->first = 0;
	c->cursor = NULL;
	for (size_t i = 0; i < s->n_evict; i++)
		cache_delete(c, s->evict[i]);
	cache_shrink(c);
}

static int n_report(const struct scrape_config *cfg)
{
	return cfg->extra_metrics ? SCRAPE_N_REPORT_MAX : SCRAPE_N_REPORT;
}

static int add_report(struct scrape_scratch *s, const struct scrape_target *t, int64_t ts,
		      const double v[SCRAPE_N_REPORT_MAX], int n)
{
	size_t nl = t->n_labels + 1;

	/* the label sets go in the batch's pool (fixed up when it is sent) */
	for (int i = 0; i < n; i++) {
		if (lpool_reserve(s, nl) || batch_add(s, NULL, nl, t->report_hash[i], v[i], ts))
			return -ENOMEM;
		scrape_report_labels(t, i, s->lpool + s->lpool_len);
		for (size_t j = 0; j < nl; j++) {
			const struct starling_label *l = &s->lpool[s->lpool_len + j];
			uint32_t *ll = &s->llpool[2 * (s->lpool_len + j)];

			ll[0] = (uint32_t)strlen(l->name);
			ll[1] = (uint32_t)strlen(l->value);
		}
		s->xo[s->n - 1].labels = s->lpool_len;
		s->lpool_len += nl;
	}
	return 0;
}

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

static uint64_t meta_hash(const struct scrape_scratch *s, const struct scrape_meta *m)
{
	/* chained seeds; an absent HELP/UNIT hashes like no bytes with its
	 * own seed step, so "" and none differ (help keeps its NUL) */
	uint64_t h = XXH3_64bits_withSeed(s->arena + m->family, m->family_len, (uint64_t)m->type);

	h = m->help == SIZE_MAX
		? h * 31 + 1
		: XXH3_64bits_withSeed(s->arena + m->help, strlen(s->arena + m->help) + 1, h);
	h = m->unit == SIZE_MAX
		? h * 31 + 2
		: XXH3_64bits_withSeed(s->arena + m->unit, strlen(s->arena + m->unit) + 1, h);
	return h;
}

/* honor_metadata (Alloy's argument; Prometheus' scrape loop with
 * AppendMetadata, scrape/scrape.go, passes a family's metadata downstream
 * when it first sees it or it changed): keep in this scrape's metadata
 * only the families that are new for the target or whose TYPE/HELP/UNIT
 * changed since its previous scrape (all of them when `all`), and
 * remember the current set. On allocation failure everything is kept. */
static void meta_changes(struct scrape_scratch *s, struct scrape_target *t, bool all)
{
	uint64_t *now = malloc((s->n_meta ? s->n_meta : 1) * sizeof(*now));
	size_t k = 0;

	if (!now)
		return;
	for (size_t i = 0; i < s->n_meta; i++) {
		now[i] = meta_hash(s, &s->meta[i]);
		if (all || !t->meta_seen ||
		    !bsearch(&now[i], t->meta_seen, t->n_meta_seen, sizeof(*now), u64_cmp))
			s->meta[k++] = s->meta[i];
	}
	qsort(now, s->n_meta, sizeof(*now), u64_cmp);
	free(t->meta_seen);
	t->meta_seen = now;
	t->n_meta_seen = s->n_meta;
	s->n_meta = k;
}

int scrape_process(struct scrape_ctx *ctx, struct scrape_target *t, const struct scrape_result *r,
		   struct scrape_stats *st)
{
	struct scrape_scratch *s = ctx->scratch;
	double report[SCRAPE_N_REPORT_MAX];
	int rc = 0, frc;

	memset(st, 0, sizeof(*st));
	s->n = 0;
	s->n_ext = 0;
	s->xpool_len = 0;
	s->lpool_len = 0;
	batch_target(s, t);
	s->n_meta = 0;
	s->arena_len = 0;
	/* the target's labels go to the thread's shared pair store (a cache
	 * that already has pairs of another store keeps using that one) */
	if (!t->cache.ps && (s->ps || (s->ps = pair_store_new()))) {
		t->cache.ps = s->ps;
		s->ps->refs++;
	}
	t->cache.gen++;
	if (t->cache.gen == 0) /* wrapped: start over rather than confuse ages */
		t->cache.gen = 1;
	if (r->error) {
		snprintf(st->error, sizeof(st->error), "%s",
			 r->error_msg && *r->error_msg ? r->error_msg : strerror(-r->error));
		rc = r->error;
	} else if (r->status != 200) {
		snprintf(st->error, sizeof(st->error), "server returned HTTP status %ld",
			 r->status);
		rc = -EPROTO;
	} else {
		bool periodic = r->start_ms >= t->metadata_due_ms;

		rc = parse_body(ctx, t, r, st, periodic || ctx->cfg->honor_metadata);
		if (!rc && s->n_meta && periodic)
			t->metadata_due_ms = r->start_ms + SCRAPE_METADATA_MS;
		if (!rc && ctx->cfg->honor_metadata)
			meta_changes(s, t, periodic);
	}
	if (rc) {
		/* A failed scrape counts as an empty one (Prometheus). */
		rollback(&t->cache);
		s->n = 0;
		s->n_ext = 0;
		s->xpool_len = 0;
		s->lpool_len = 0;
		s->n_meta = 0;
		st->post_relabel = 0;
		st->added = 0;
	}
	st->up = rc == 0;
	report[0] = rc == 0 ? 1 : 0;
	report[1] = (double)r->duration_us / 1e6;
	report[2] = (double)st->scraped;
	report[3] = (double)st->post_relabel;
	report[4] = (double)st->added;
	/* extra_metrics: body size is -1 when over body_size_limit, 0 on any
	 * other failure (Prometheus) */
	report[5] = (double)t->timeout_ms / 1000.0;
	report[6] = (double)ctx->cfg->sample_limit;
	report[7] = rc == 0 ? (double)r->body_len : r->error == -EFBIG ? -1 : 0;
	/* In the steady state every cached series was in this scrape: nothing
	 * to mark stale or evict, so skip the walk over the cache. */
	s->n_evict = 0;
	if ((rc || t->cache.seen != t->cache.n) && sweep(ctx, t, r->start_ms, rc != 0, st)) {
		snprintf(st->error, sizeof(st->error), "out of memory");
		s->n = 0;
		return -ENOMEM;
	}
	if (add_report(s, t, r->start_ms, report, n_report(ctx->cfg))) {
		snprintf(st->error, sizeof(st->error), "out of memory");
		evict_cancel(s);
		s->n = 0;
		return -ENOMEM;
	}
	t->reported = true;
	st->forwarded = s->n;
	frc = forward_batch(ctx);
	evict_swept(&t->cache, s);
	cache_fit(&t->cache, rc || s->order_lost ? NULL : s->order, s->n_order);
	scratch_trim(s, s->n);
	s->n = 0;
	if (frc && ctx->api->log)
		ctx->api->log(ctx->self, STARLING_LOG_WARN, "forwarding %zu samples of %s: %s",
			      st->forwarded, t->url, strerror(-frc));
	return rc;
}

int scrape_end_of_run(struct scrape_ctx *ctx, struct scrape_target *t, int64_t ts_ms)
{
	struct scrape_scratch *s = ctx->scratch;
	struct series_cache *c = &t->cache;
	double stale = stale_nan();
	double report[SCRAPE_N_REPORT_MAX];
	int rc;

	s->n = 0;
	s->n_ext = 0;
	s->xpool_len = 0;
	s->lpool_len = 0;
	batch_target(s, t);
	for (size_t i = 0; i < c->cap; i++) {
		struct cache_entry *e = series_cache_at(c, i);

		if (!e || e->last_seen != SEEN(c->gen) || c->gen == 0)
			continue;
		if (e->flags & (ENTRY_DROPPED | ENTRY_HAS_TS | ENTRY_OVER_LIMIT))
			continue;
		if (add_stale(s, t, e, stale, ts_ms))
			return -ENOMEM;
	}
	if (t->reported) {
		for (int i = 0; i < SCRAPE_N_REPORT_MAX; i++)
			report[i] = stale;
		if (add_report(s, t, ts_ms, report, n_report(ctx->cfg)))
			return -ENOMEM;
	}
	s->n_meta = 0;
	rc = forward_batch(ctx);
	s->n = 0;
	series_cache_reset(c);
	t->reported = false;
	return rc;
}

/* ------------------------------------------------------------------------ */
/* One scrape on the HTTP client (prometheus.scrape and the operator).       */

void scrape_submit(struct starling_http_client *http, const struct scrape_config *c,
		   struct scrape_target *t, int64_t now_ms, starling_http_done_fn done, void *arg,
		   const char *submit_error)
{
	/* the header of the last timeout this thread formatted: targets of
	 * a job share one (an snprintf per scrape otherwise) */
	static _Thread_local int64_t th_ms = -1;
	static _Thread_local char th[64];
	const char *headers[2] = {c->accept, th};
	struct starling_http_request req = {0};
	int rc;

	if (t->timeout_ms != th_ms) {
		scrape_timeout_header(t->timeout_ms, th, sizeof(th));
		th_ms = t->timeout_ms;
	}
	t->scrape_start_ms = now_ms;
	req.url = t->url;
	req.headers = headers;
	req.n_headers = 2;
	req.timeout_ms = t->timeout_ms;
	req.body_limit = (size_t)c->body_size_limit;
	req.accept_gzip = c->enable_compression;
	req.user_agent = "Starling/" STARLING_VERSION;
	req.auth = c->auth;
	req.done = done;
	req.arg = arg;
	t->in_flight = true;
	rc = starling_http_submit(http, &req);
	if (rc) {
		struct starling_http_response resp = {0};

		resp.error = rc; /* e.g. an unreadable bearer_token_file */
		resp.error_msg = submit_error;
		done(arg, &resp);
	}
}

/* Keep the scrape's error, if any (most targets have none: no buffer). On
 * ENOMEM the error is just not kept. */
static void scrape_set_error(struct scrape_target *t, const char *err)
{
	char *p;

	if (t->last_error && strcmp(t->last_error, err) == 0)
		return;
	p = *err ? strdup(err) : NULL;
	free(t->last_error);
	t->last_error = p;
}

int scrape_complete(struct scrape_ctx *ctx, struct scrape_target *t,
		    const struct starling_http_response *resp, pthread_mutex_t *lock,
		    struct scrape_stats *st)
{
	struct scrape_result r = {0};
	int rc;

	r.error = resp->error;
	r.error_msg = resp->error_msg;
	r.status = resp->status;
	r.body = (const char *)resp->body;
	r.body_len = resp->body_len;
	r.content_type = resp->content_type;
	r.start_ms = t->scrape_start_ms;
	r.duration_us = resp->duration_us;
	rc = scrape_process(ctx, t, &r, st);
	t->in_flight = false;
	pthread_mutex_lock(lock);
	t->last_scrape_ms = r.start_ms;
	t->last_duration_us = r.duration_us;
	t->health = st->up ? STARLING_TARGET_UP : STARLING_TARGET_DOWN;
	scrape_set_error(t, st->error);
	pthread_mutex_unlock(lock);
	return rc;
}

void scrape_forget(struct scrape_target *t)
{
	if (!t->in_flight && (t->cache.n || t->reported)) {
		series_cache_reset(&t->cache);
		t->reported = false;
	}
}

void scrape_emit_target(const struct starling_host_api *api, starling_component *self,
			bool clustering, unsigned replicas, const struct scrape_target *t,
			starling_target_emit_fn emit, void *ctx)
{
	struct starling_target_info ti = {
	    .labels = t->labels,
	    .n_labels = t->n_labels,
	    .key = t->key,
	    .last_scrape_ms = t->last_scrape_ms,
	    .last_duration_us = t->last_duration_us,
	    .health = t->health,
	    .last_error = t->last_error ? t->last_error : "",
	};

	starling_scrape_emit_target_n(api, self, clustering, replicas, &ti, emit, ctx);
}
