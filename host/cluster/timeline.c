/* Ownership views by time from announced spans (see timeline.h). */
#include "timeline.h"

#include <stdlib.h>
#include <string.h>

struct timeline {
	struct timeline_member *m; /* sorted by name, then span */
	size_t n;
	int64_t *bp; /* distinct finite span ends, ascending */
	size_t n_bp;
	struct ownership_view **views; /* n_bp + 1 segments, built lazily */
};

static int member_cmp(const void *a, const void *b)
{
	const struct timeline_member *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c)
		return c;
	if (x->from != y->from)
		return x->from < y->from ? -1 : 1;
	if (x->until != y->until)
		return x->until < y->until ? -1 : 1;
	return (x->weight > y->weight) - (x->weight < y->weight);
}

static int i64_cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

void timeline_free(struct timeline *tl)
{
	if (!tl)
		return;
	for (size_t i = 0; i < tl->n; i++)
		free((char *)tl->m[i].name);
	if (tl->views)
		for (size_t i = 0; i <= tl->n_bp; i++)
			ownership_view_free(tl->views[i]);
	free(tl->views);
	free(tl->bp);
	free(tl->m);
	free(tl);
}

struct timeline *timeline_new(const struct timeline_member *m, size_t n)
{
	struct timeline *tl = calloc(1, sizeof(*tl));
	size_t k = 0;

	if (!tl)
		return NULL;
	tl->m = calloc(n ? n : 1, sizeof(*tl->m));
	tl->bp = calloc(2 * n + 1, sizeof(*tl->bp));
	if (!tl->m || !tl->bp)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		tl->m[i] = m[i];
		tl->m[i].name = strdup(m[i].name);
		if (!tl->m[i].name)
			goto fail;
		tl->n++;
		if (!(tl->m[i].weight > 0))
			tl->m[i].weight = 1.0;
		if (m[i].from != TIMELINE_ALWAYS)
			tl->bp[k++] = m[i].from;
		if (m[i].until != TIMELINE_NEVER)
			tl->bp[k++] = m[i].until;
	}
	qsort(tl->m, tl->n, sizeof(*tl->m), member_cmp);
	qsort(tl->bp, k, sizeof(*tl->bp), i64_cmp);
	for (size_t i = 0; i < k; i++)
		if (tl->n_bp == 0 || tl->bp[tl->n_bp - 1] != tl->bp[i])
			tl->bp[tl->n_bp++] = tl->bp[i];
	tl->views = calloc(tl->n_bp + 1, sizeof(*tl->views));
	if (!tl->views)
		goto fail;
	return tl;
fail:
	timeline_free(tl);
	return NULL;
}

bool timeline_equal(const struct timeline *tl, const struct timeline_member *m, size_t n)
{
	struct timeline_member *c;
	bool eq = true;

	if (!tl || tl->n != n)
		return false;
	c = malloc((n ? n : 1) * sizeof(*c));
	if (!c)
		return false;
	memcpy(c, m, n * sizeof(*c));
	for (size_t i = 0; i < n; i++)
		if (!(c[i].weight > 0))
			c[i].weight = 1.0;
	qsort(c, n, sizeof(*c), member_cmp);
	for (size_t i = 0; eq && i < n; i++)
		eq = member_cmp(&c[i], &tl->m[i]) == 0;
	free(c);
	return eq;
}

/* Segment of t: how many span ends are <= t. */
static size_t segment(const struct timeline *tl, int64_t t)
{
	size_t lo = 0, hi = tl->n_bp;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (tl->bp[mid] <= t)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

const struct ownership_view *timeline_view_at(struct timeline *tl, int64_t t, int64_t *next)
{
	size_t s = segment(tl, t);

	if (next)
		*next = s < tl->n_bp ? tl->bp[s] : TIMELINE_NEVER;
	if (!tl->views[s]) {
		const char **names = calloc(tl->n + 1, sizeof(*names));
		double *weights = calloc(tl->n + 1, sizeof(*weights));
		size_t k = 0;

		if (!names || !weights) {
			free(names);
			free(weights);
			return NULL;
		}
		for (size_t i = 0; i < tl->n; i++) {
			const struct timeline_member *m = &tl->m[i];

			/* a name with two spans (a member's two lives) owns once */
			if (m->from <= t && t < m->until &&
			    (k == 0 || strcmp(names[k - 1], m->name))) {
				names[k] = m->name;
				weights[k++] = m->weight;
			}
		}
		tl->views[s] = ownership_view_new(0, names, weights, k);
		free(names);
		free(weights);
	}
	return tl->views[s];
}

size_t timeline_count(const struct timeline *tl)
{
	return tl ? tl->n : 0;
}

const struct timeline_member *timeline_member_at(const struct timeline *tl, size_t i)
{
	return tl && i < tl->n ? &tl->m[i] : NULL;
}
