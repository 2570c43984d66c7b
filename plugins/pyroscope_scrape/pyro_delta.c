/*
 * Client-side delta of cumulative Go profiles, as Alloy does for the
 * built-in memory, mutex and block types (delta_profiles.go): the target
 * serves totals since the process started; Pyroscope wants what happened
 * since the last scrape. The first scrape only records a baseline.
 *
 * Samples are matched across scrapes by their stack and labels, not by
 * location ids (the Go runtime numbers locations anew in every profile): a
 * location is its address, or its functions' names and lines when it has
 * none. Only the cumulative value types are subtracted (memory:
 * alloc_objects/alloc_space; mutex and block: contentions/delay); in-use
 * values pass through. The profile is rewritten field by field — every other
 * field is copied as it came — and gzip-compressed again.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libdeflate.h>
#include <starling/http.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

#include "pyro_scrape.h"

#define DELTA_BODY_LIMIT ((size_t)256 << 20)
#define MAX_VALUES	 16

struct span {
	const uint8_t *p;
	size_t len;
};

struct msg {
	const uint8_t *p, *end;
};

struct field {
	unsigned num, wt;
	uint64_t v;	      /* varint / fixed value */
	const uint8_t *start; /* whole field, tag included */
	const uint8_t *data;  /* length-delimited payload */
	size_t len;
};

static int rd_varint(struct msg *m, uint64_t *out)
{
	uint64_t v = 0;

	for (int s = 0; s < 64; s += 7) {
		if (m->p >= m->end)
			return -EBADMSG;
		v |= (uint64_t)(*m->p & 0x7f) << s;
		if (!(*m->p++ & 0x80)) {
			*out = v;
			return 0;
		}
	}
	return -EBADMSG;
}

/* 1: a field was read, 0: end of message, <0: malformed. */
static int next_field(struct msg *m, struct field *f)
{
	uint64_t tag;

	if (m->p >= m->end)
		return 0;
	f->start = m->p;
	if (rd_varint(m, &tag) || (tag >> 3) == 0 || (tag >> 3) > UINT32_MAX)
		return -EBADMSG;
	f->num = (unsigned)(tag >> 3);
	f->wt = tag & 7;
	f->data = NULL;
	f->len = 0;
	switch (f->wt) {
	case 0:
		return rd_varint(m, &f->v) ? -EBADMSG : 1;
	case 1:
	case 5: {
		size_t n = f->wt == 1 ? 8 : 4;

		if ((size_t)(m->end - m->p) < n)
			return -EBADMSG;
		f->v = 0;
		memcpy(&f->v, m->p, n);
		m->p += n;
		return 1;
	}
	case 2:
		if (rd_varint(m, &f->v) || f->v > (uint64_t)(m->end - m->p))
			return -EBADMSG;
		f->data = m->p;
		f->len = (size_t)f->v;
		m->p += f->len;
		return 1;
	default:
		return -EBADMSG;
	}
}

/* Values of a repeated integer field: one varint, or packed. Calls fn. */
static int each_int(const struct field *f, int (*fn)(void *, uint64_t), void *arg)
{
	struct msg m;
	uint64_t v;
	int rc;

	if (f->wt == 0)
		return fn(arg, f->v);
	if (f->wt != 2)
		return -EBADMSG;
	m = (struct msg){f->data, f->data + f->len};
	while (m.p < m.end) {
		if (rd_varint(&m, &v))
			return -EBADMSG;
		rc = fn(arg, v);
		if (rc)
			return rc;
	}
	return 0;
}

struct id_hash {
	uint64_t id;
	uint64_t hash;
};

struct parsed {
	struct span *strs;
	size_t n_strs, cap_strs;
	struct id_hash *funcs; /* id -> name string index (in .hash) */
	size_t n_funcs, cap_funcs;
	struct id_hash *locs; /* id -> location hash */
	size_t n_locs, cap_locs;
	struct span *locs_raw;
	int delta_idx[MAX_VALUES]; /* value indices to subtract */
	size_t n_delta;
	size_t n_types;
	uint64_t st_pairs[MAX_VALUES][2];
};

static int grow(void **v, size_t *cap, size_t n, size_t sz)
{
	void *p;

	if (n < *cap)
		return 0;
	p = realloc(*v, (*cap ? *cap * 2 : 64) * sz);
	if (!p)
		return -ENOMEM;
	*v = p;
	*cap = *cap ? *cap * 2 : 64;
	return 0;
}

static int id_cmp(const void *a, const void *b)
{
	const struct id_hash *x = a, *y = b;

	return (x->id > y->id) - (x->id < y->id);
}

static const struct id_hash *find_id(const struct id_hash *v, size_t n, uint64_t id)
{
	struct id_hash k = {id, 0};

	return n ? bsearch(&k, v, n, sizeof(*v), id_cmp) : NULL;
}

static struct span str_at(const struct parsed *p, uint64_t i)
{
	if (i < p->n_strs)
		return p->strs[i];
	return (struct span){(const uint8_t *)"", 0};
}

static bool str_is(const struct parsed *p, uint64_t i, const char *s)
{
	struct span sp = str_at(p, i);

	return sp.len == strlen(s) && memcmp(sp.p, s, sp.len) == 0;
}

/* Which sample types get subtracted, by profile type name. */
static bool cumulative(const struct parsed *p, const char *type, uint64_t t, uint64_t u)
{
	if (strcmp(type, "memory") == 0)
		return (str_is(p, t, "alloc_objects") && str_is(p, u, "count")) ||
		       (str_is(p, t, "alloc_space") && str_is(p, u, "bytes"));
	return (str_is(p, t, "contentions") && str_is(p, u, "count")) ||
	       (str_is(p, t, "delay") && str_is(p, u, "nanoseconds"));
}

static int parse(const uint8_t *buf, size_t len, const char *type, struct parsed *p)
{
	struct msg m = {buf, buf + len};
	struct field f, g;
	int rc;

	while ((rc = next_field(&m, &f)) > 0) {
		if (f.num == 6 && f.wt == 2) { /* string_table */
			if (grow((void **)&p->strs, &p->cap_strs, p->n_strs, sizeof(*p->strs)))
				return -ENOMEM;
			p->strs[p->n_strs++] = (struct span){f.data, f.len};
		} else if (f.num == 1 && f.wt == 2) { /* sample_type */
			struct msg vt = {f.data, f.data + f.len};
			uint64_t t = 0, u = 0;

			while ((rc = next_field(&vt, &g)) > 0) {
				if (g.num == 1)
					t = g.v;
				else if (g.num == 2)
					u = g.v;
			}
			if (rc < 0 || p->n_types >= MAX_VALUES)
				return -EBADMSG;
			p->st_pairs[p->n_types][0] = t;
			p->st_pairs[p->n_types][1] = u;
			p->n_types++;
		} else if (f.num == 5 && f.wt == 2) { /* function */
			struct msg fm = {f.data, f.data + f.len};
			struct id_hash e = {0, 0};

			while ((rc = next_field(&fm, &g)) > 0) {
				if (g.num == 1)
					e.id = g.v;
				else if (g.num == 2)
					e.hash = g.v;
			}
			if (rc < 0 ||
			    grow((void **)&p->funcs, &p->cap_funcs, p->n_funcs, sizeof(*p->funcs)))
				return rc < 0 ? -EBADMSG : -ENOMEM;
			p->funcs[p->n_funcs++] = e;
		} else if (f.num == 4 && f.wt == 2) { /* location: hashed later */
			if (grow((void **)&p->locs_raw, &p->cap_locs, p->n_locs,
				 sizeof(*p->locs_raw)))
				return -ENOMEM;
			p->locs_raw[p->n_locs++] = (struct span){f.data, f.len};
		}
	}
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < p->n_types; i++)
		if (cumulative(p, type, p->st_pairs[i][0], p->st_pairs[i][1]))
			p->delta_idx[p->n_delta++] = (int)i;
	if (p->n_funcs)
		qsort(p->funcs, p->n_funcs, sizeof(*p->funcs), id_cmp);

	/* Location hashes, now that functions and strings are known. */
	p->locs = calloc(p->n_locs ? p->n_locs : 1, sizeof(*p->locs));
	if (!p->locs)
		return -ENOMEM;
	for (size_t i = 0; i < p->n_locs; i++) {
		struct msg lm = {p->locs_raw[i].p, p->locs_raw[i].p + p->locs_raw[i].len};
		XXH3_state_t state, *st = &state;
		uint64_t id = 0, addr = 0;

		XXH3_64bits_reset(st);
		while ((rc = next_field(&lm, &g)) > 0) {
			if (g.num == 1) {
				id = g.v;
			} else if (g.num == 3) {
				addr = g.v;
			} else if (g.num == 4 && g.wt == 2) { /* line */
				struct msg ln = {g.data, g.data + g.len};
				struct field h;
				uint64_t fid = 0, line = 0;
				const struct id_hash *fn;
				struct span name;

				while ((rc = next_field(&ln, &h)) > 0) {
					if (h.num == 1)
						fid = h.v;
					else if (h.num == 2)
						line = h.v;
				}
				if (rc < 0)
					break;
				fn = find_id(p->funcs, p->n_funcs, fid);
				name = str_at(p, fn ? fn->hash : 0);
				XXH3_64bits_update(st, name.p, name.len);
				XXH3_64bits_update(st, &line, sizeof(line));
			}
		}
		XXH3_64bits_update(st, &addr, sizeof(addr));
		p->locs[i] = (struct id_hash){id, XXH3_64bits_digest(st)};
		if (rc < 0)
			return rc;
	}
	qsort(p->locs, p->n_locs, sizeof(*p->locs), id_cmp);
	return 0;
}

static void parsed_free(struct parsed *p)
{
	free(p->strs);
	free(p->funcs);
	free(p->locs);
	free(p->locs_raw);
}

/* Previous totals of one sample, open addressing on the key. */
struct dentry {
	uint64_t key; /* 0 = empty */
	int64_t v[MAX_VALUES];
};

struct pyro_delta {
	struct dentry *slots;
	size_t cap, n;
};

void pyro_delta_free(struct pyro_delta *d)
{
	if (!d)
		return;
	free(d->slots);
	free(d);
}

static struct dentry *dmap_slot(struct pyro_delta *d, uint64_t key)
{
	size_t i;

	if (!d->cap)
		return NULL;
	for (i = key & (d->cap - 1);; i = (i + 1) & (d->cap - 1))
		if (d->slots[i].key == key || d->slots[i].key == 0)
			return &d->slots[i];
}

static int dmap_put(struct pyro_delta *d, uint64_t key, const int64_t *v)
{
	struct dentry *e;

	if ((d->n + 1) * 2 > d->cap) {
		struct pyro_delta nd = {0};

		nd.cap = d->cap ? d->cap * 2 : 256;
		nd.slots = calloc(nd.cap, sizeof(*nd.slots));
		if (!nd.slots)
			return -ENOMEM;
		for (size_t i = 0; i < d->cap; i++)
			if (d->slots[i].key) {
				*dmap_slot(&nd, d->slots[i].key) = d->slots[i];
				nd.n++;
			}
		free(d->slots);
		*d = nd;
	}
	e = dmap_slot(d, key);
	if (!e->key)
		d->n++;
	e->key = key;
	memcpy(e->v, v, sizeof(e->v));
	return 0;
}

/* Output buffer. */
struct obuf {
	uint8_t *p;
	size_t len, cap;
};

static int ob_need(struct obuf *o, size_t n)
{
	if (o->len + n <= o->cap)
		return 0;
	size_t cap = (o->len + n) * 2;
	uint8_t *p = realloc(o->p, cap);

	if (!p)
		return -ENOMEM;
	o->p = p;
	o->cap = cap;
	return 0;
}

static void ob_varint(struct obuf *o, uint64_t v)
{
	while (v >= 0x80) {
		o->p[o->len++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	o->p[o->len++] = (uint8_t)v;
}

struct sample_acc {
	uint64_t *ids;
	size_t n, cap;
	int oom;
};

static int acc_add(void *arg, uint64_t v)
{
	struct sample_acc *a = arg;

	if (grow((void **)&a->ids, &a->cap, a->n, sizeof(*a->ids)))
		return -ENOMEM;
	a->ids[a->n++] = v;
	return 0;
}

/* Rewrite buf with delta values into o; fills next with this scrape's
 * totals. */
static int rewrite(const uint8_t *buf, size_t len, const struct parsed *p,
		   const struct pyro_delta *prev, struct pyro_delta *next, struct obuf *o)
{
	struct msg m = {buf, buf + len};
	struct sample_acc locs = {0}, vals = {0};
	struct field f, g;
	int rc;

	while ((rc = next_field(&m, &f)) > 0) {
		struct msg sm;
		struct span labels[64];
		size_t n_labels = 0;
		XXH3_state_t state, *st = &state;
		uint64_t key, occ = 0;
		int64_t cur[MAX_VALUES] = {0}, out[MAX_VALUES];
		bool nonzero = false;
		size_t body;

		if (f.num != 2 || f.wt != 2) { /* not a sample: copy as is */
			size_t n = (size_t)(m.p - f.start);

			if (ob_need(o, n)) {
				rc = -ENOMEM;
				break;
			}
			memcpy(o->p + o->len, f.start, n);
			o->len += n;
			continue;
		}
		locs.n = vals.n = 0;
		sm = (struct msg){f.data, f.data + f.len};
		while ((rc = next_field(&sm, &g)) > 0) {
			if (g.num == 1)
				rc = each_int(&g, acc_add, &locs);
			else if (g.num == 2)
				rc = each_int(&g, acc_add, &vals);
			else if (g.num == 3 && g.wt == 2 && n_labels == 64)
				rc = -E2BIG; /* refuse rather than drop labels */
			else if (g.num == 3 && g.wt == 2)
				labels[n_labels++] =
				    (struct span){g.start, (size_t)(sm.p - g.start)};
			if (rc < 0)
				break;
		}
		if (rc < 0)
			break;
		if (vals.n > MAX_VALUES) {
			rc = -EBADMSG;
			break;
		}
		/* Key: the stack's location hashes, then the labels by their
		 * strings (indices differ between profiles). */
		XXH3_64bits_reset(st);
		for (size_t i = 0; i < locs.n; i++) {
			const struct id_hash *l = find_id(p->locs, p->n_locs, locs.ids[i]);
			uint64_t h = l ? l->hash : locs.ids[i];

			XXH3_64bits_update(st, &h, sizeof(h));
		}
		for (size_t i = 0; i < n_labels; i++) {
			struct msg lm = {labels[i].p, labels[i].p + labels[i].len};
			struct field lf, x;

			if (next_field(&lm, &lf) <= 0)
				continue;
			lm = (struct msg){lf.data, lf.data + lf.len};
			while (next_field(&lm, &x) > 0) {
				if (x.num == 1 || x.num == 2 || x.num == 4) {
					struct span s = str_at(p, x.v);

					XXH3_64bits_update(st, &x.num, sizeof(x.num));
					XXH3_64bits_update(st, s.p, s.len);
				} else if (x.num == 3) {
					XXH3_64bits_update(st, &x.v, sizeof(x.v));
				}
			}
		}
		key = XXH3_64bits_digest(st);
		/* The same stack twice in one profile: keep them apart. */
		while (dmap_slot(next, key + occ) && dmap_slot(next, key + occ)->key == key + occ)
			occ++;
		key += occ;
		if (!key)
			key = 1;

		for (size_t i = 0; i < vals.n; i++)
			out[i] = cur[i] = (int64_t)vals.ids[i];
		for (size_t i = 0; i < p->n_delta; i++) {
			int k = p->delta_idx[i];
			const struct dentry *e = dmap_slot((struct pyro_delta *)prev, key);

			if ((size_t)k >= vals.n)
				continue;
			if (e && e->key == key && cur[k] >= e->v[k])
				out[k] = cur[k] - e->v[k];
		}
		rc = dmap_put(next, key, cur);
		if (rc)
			break;
		for (size_t i = 0; i < vals.n; i++)
			nonzero |= out[i] != 0;
		if (!nonzero)
			continue;

		/* Sample: locations packed, values packed, labels as they were. */
		body = 0;
		if (locs.n)
			body += 1 + 10 + locs.n * 10;
		body += 1 + 10 + vals.n * 10;
		for (size_t i = 0; i < n_labels; i++)
			body += labels[i].len;
		if (ob_need(o, body + 12)) {
			rc = -ENOMEM;
			break;
		}
		{
			struct obuf s = {0};
			size_t plen = 0;

			if (ob_need(&s, body)) {
				rc = -ENOMEM;
				break;
			}
			if (locs.n) {
				for (size_t i = 0; i < locs.n; i++) {
					struct obuf t = {(uint8_t[10]){0}, 0, 10};

					ob_varint(&t, locs.ids[i]);
					plen += t.len;
				}
				s.p[s.len++] = 1 << 3 | 2;
				ob_varint(&s, plen);
				for (size_t i = 0; i < locs.n; i++)
					ob_varint(&s, locs.ids[i]);
			}
			plen = 0;
			for (size_t i = 0; i < vals.n; i++) {
				struct obuf t = {(uint8_t[10]){0}, 0, 10};

				ob_varint(&t, (uint64_t)out[i]);
				plen += t.len;
			}
			s.p[s.len++] = 2 << 3 | 2;
			ob_varint(&s, plen);
			for (size_t i = 0; i < vals.n; i++)
				ob_varint(&s, (uint64_t)out[i]);
			for (size_t i = 0; i < n_labels; i++) {
				memcpy(s.p + s.len, labels[i].p, labels[i].len);
				s.len += labels[i].len;
			}
			o->p[o->len++] = 2 << 3 | 2;
			ob_varint(o, s.len);
			memcpy(o->p + o->len, s.p, s.len);
			o->len += s.len;
			free(s.p);
		}
	}
	free(locs.ids);
	free(vals.ids);
	return rc < 0 ? rc : 0;
}

int pyro_delta_apply(struct pyro_delta **state, const char *type, const uint8_t *in, size_t len,
		     uint8_t **out, size_t *out_len, char *err, size_t errlen)
{
	struct parsed p = {0};
	struct pyro_delta *next = NULL;
	struct obuf o = {0};
	uint8_t *raw = NULL;
	size_t raw_cap = 0, raw_len = len;
	const uint8_t *pb = in;
	bool first = *state == NULL;
	int rc;

	*out = NULL;
	*out_len = 0;
	if (errlen)
		err[0] = '\0';
	if (len >= 2 && in[0] == 0x1f && in[1] == 0x8b) {
		rc = starling_http_gunzip(in, len, DELTA_BODY_LIMIT, &raw, &raw_cap, &raw_len);
		if (rc) {
			snprintf(err, errlen, "cannot gunzip the profile: %s", strerror(-rc));
			free(raw); /* the gunzip buffer may exist even on failure */
			return rc;
		}
		pb = raw;
	}
	rc = parse(pb, raw_len, type, &p);
	if (rc) {
		snprintf(err, errlen, "malformed pprof profile");
		goto out;
	}
	next = calloc(1, sizeof(*next));
	if (!next) {
		rc = -ENOMEM;
		goto out;
	}
	rc = rewrite(pb, raw_len, &p, first ? next : *state, next, &o);
	if (rc) {
		snprintf(err, errlen, "%s",
			 rc == -ENOMEM	? "out of memory"
			 : rc == -E2BIG ? "a sample has more than 64 labels"
					: "malformed pprof sample");
		goto out;
	}
	pyro_delta_free(*state);
	*state = next;
	next = NULL;
	if (first) {
		rc = 1; /* baseline only */
		goto out;
	}
	{
		struct libdeflate_compressor *c = libdeflate_alloc_compressor(1);
		size_t bound, n;

		if (!c) {
			snprintf(err, errlen, "out of memory");
			rc = -ENOMEM;
			goto out;
		}
		bound = libdeflate_gzip_compress_bound(c, o.len);
		*out = malloc(bound ? bound : 1);
		n = *out ? libdeflate_gzip_compress(c, o.p, o.len, *out, bound) : 0;
		libdeflate_free_compressor(c);
		if (!n) {
			free(*out);
			*out = NULL;
			snprintf(err, errlen, "out of memory");
			rc = -ENOMEM;
			goto out;
		}
		*out_len = n;
	}
	rc = 0;
out:
	if (rc < 0 && errlen && !err[0])
		snprintf(err, errlen, "%s", strerror(-rc));
	pyro_delta_free(next);
	parsed_free(&p);
	free(o.p);
	free(raw);
	return rc;
}
