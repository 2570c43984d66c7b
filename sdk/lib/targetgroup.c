/*
 * Target groups: storage, and flattening groups into target sets
 * (see starling/targetgroup.h). The JSON and YAML readers live in
 * targetgroup_json.c and targetgroup_yaml.c.
 */
#include <starling/targetgroup.h>
#include <starling/labels.h>

#include "targetgroup_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

void tgroup_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

bool tgroup_label_name_ok(const char *s, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';

		if (!alpha && (i == 0 || c < '0' || c > '9'))
			return false;
	}
	return true;
}

void starling_tgroups_init(struct starling_tgroups *g)
{
	memset(g, 0, sizeof(*g));
}

void starling_tgroups_free(struct starling_tgroups *g)
{
	for (size_t i = 0; i < g->n; i++) {
		starling_lset_free(&g->v[i].labels);
		free(g->v[i].addrs);
		free(g->v[i].addr_off);
	}
	free(g->v);
	starling_tgroups_init(g);
}

void starling_tgroups_swap(struct starling_tgroups *a, struct starling_tgroups *b)
{
	struct starling_tgroups t = *a;

	*a = *b;
	*b = t;
}

struct starling_tgroup *tgroups_push(struct starling_tgroups *g)
{
	if (g->n == g->cap) {
		size_t cap = g->cap ? g->cap * 2 : 4;
		struct starling_tgroup *v = realloc(g->v, cap * sizeof(*v));

		if (!v)
			return NULL;
		g->v = v;
		g->cap = cap;
	}
	memset(&g->v[g->n], 0, sizeof(g->v[0]));
	starling_lset_init(&g->v[g->n].labels);
	return &g->v[g->n++];
}

int tgroup_add_target(struct starling_tgroup *t, const char *s, size_t len)
{
	if (len && memchr(s, '\0', len))
		return -EINVAL;
	if (t->n_targets == t->off_cap) {
		size_t cap = t->off_cap ? t->off_cap * 2 : 4;
		size_t *v = realloc(t->addr_off, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		t->addr_off = v;
		t->off_cap = cap;
	}
	if (t->addrs_len + len + 1 > t->addrs_cap) {
		size_t cap = t->addrs_cap ? t->addrs_cap : 64;
		char *b;

		while (cap < t->addrs_len + len + 1)
			cap *= 2;
		b = realloc(t->addrs, cap);
		if (!b)
			return -ENOMEM;
		t->addrs = b;
		t->addrs_cap = cap;
	}
	t->addr_off[t->n_targets++] = t->addrs_len;
	memcpy(t->addrs + t->addrs_len, s, len);
	t->addrs[t->addrs_len + len] = '\0';
	t->addrs_len += len + 1;
	return 0;
}

int starling_tgroups_set_label(struct starling_tgroups *g, const char *name, const char *value)
{
	for (size_t i = 0; i < g->n; i++) {
		int rc = starling_lset_set_str(&g->v[i].labels, name, value);

		if (rc)
			return rc;
	}
	return 0;
}

/* ------------------------------------------------------------------------ */

void starling_target_builder_init(struct starling_target_builder *b)
{
	memset(b, 0, sizeof(*b));
}

void starling_target_builder_free(struct starling_target_builder *b)
{
	free(b->targets);
	free(b->labels);
	free(b->first);
	starling_target_builder_init(b);
}

void starling_target_builder_clear(struct starling_target_builder *b)
{
	b->n_targets = 0;
	b->n_labels = 0;
	b->dropped = 0;
}

static int builder_reserve(struct starling_target_builder *b, size_t targets, size_t labels)
{
	if (b->n_targets + targets > b->targets_cap) {
		size_t cap = b->targets_cap ? b->targets_cap : 16;
		struct starling_target *t;
		size_t *f;

		while (cap < b->n_targets + targets)
			cap *= 2;
		t = realloc(b->targets, cap * sizeof(*t));
		if (!t)
			return -ENOMEM;
		b->targets = t;
		f = realloc(b->first, cap * sizeof(*f));
		if (!f)
			return -ENOMEM;
		b->first = f;
		b->targets_cap = cap;
	}
	if (b->n_labels + labels > b->labels_cap) {
		size_t cap = b->labels_cap ? b->labels_cap : 64;
		struct starling_label *l;

		while (cap < b->n_labels + labels)
			cap *= 2;
		l = realloc(b->labels, cap * sizeof(*l));
		if (!l)
			return -ENOMEM;
		b->labels = l;
		b->labels_cap = cap;
	}
	return 0;
}

int starling_target_builder_add(struct starling_target_builder *b, const struct starling_tgroups *g)
{
	for (size_t gi = 0; gi < g->n; gi++) {
		const struct starling_tgroup *t = &g->v[gi];
		const struct starling_lset *gl = &t->labels;
		size_t at = 0; /* where __address__ goes among the group labels */
		int rc;

		while (at < gl->n && strcmp(gl->v[at].name, "__address__") < 0)
			at++;
		rc = builder_reserve(b, t->n_targets, t->n_targets * (gl->n + 1));
		if (rc)
			return rc;
		for (size_t i = 0; i < t->n_targets; i++) {
			const char *addr = t->addrs + t->addr_off[i];
			struct starling_label *l = b->labels + b->n_labels;
			size_t n = 0;

			size_t skip = at < gl->n && strcmp(gl->v[at].name, "__address__") == 0;

			if (addr[0] == '\0') {
				/* The target's own (empty) __address__ wins over
				 * a group one (Alloy merges target over group),
				 * so it has no address: dropped. */
				b->dropped++;
				continue;
			}
			if (at)
				memcpy(l, gl->v, at * sizeof(*l));
			l[at].name = "__address__";
			l[at].value = addr;
			if (gl->n - at - skip)
				memcpy(l + at + 1, gl->v + at + skip,
				       (gl->n - at - skip) * sizeof(*l));
			n = gl->n + 1 - skip;
			b->first[b->n_targets] = b->n_labels;
			b->targets[b->n_targets].n_labels = n;
			b->n_targets++;
			b->n_labels += n;
		}
	}
	return 0;
}

int starling_target_builder_add_lset(struct starling_target_builder *b,
				     const struct starling_lset *ls)
{
	int rc = builder_reserve(b, 1, ls->n);

	if (rc)
		return rc;
	if (ls->n)
		memcpy(b->labels + b->n_labels, ls->v, ls->n * sizeof(ls->v[0]));
	b->first[b->n_targets] = b->n_labels;
	b->targets[b->n_targets].n_labels = ls->n;
	b->n_targets++;
	b->n_labels += ls->n;
	return 0;
}

void starling_target_builder_view(struct starling_target_builder *b,
				  struct starling_target_set *out)
{
	for (size_t i = 0; i < b->n_targets; i++)
		b->targets[i].labels = b->labels + b->first[i];
	out->targets = b->targets;
	out->n_targets = b->n_targets;
}

uint64_t starling_target_set_hash(const struct starling_target_set *set)
{
	uint64_t h = set->n_targets;

	/* Chain: each target's label hash is hashed with the running value
	 * as the seed, so order matters. */
	for (size_t i = 0; i < set->n_targets; i++) {
		uint64_t t = starling_labels_hash(set->targets[i].labels, set->targets[i].n_labels);

		h = XXH3_64bits_withSeed(&t, sizeof(t), h);
	}
	return h;
}
