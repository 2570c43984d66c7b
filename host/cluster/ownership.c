/* Rendezvous hashing: every node computes the same owners from the same view. */
#include "ownership.h"

#include <endian.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
/* header-only XXH3: the 8-byte seeded path inlines to a few multiplies,
 * which is what makes O(N) rendezvous fast enough at 100+ nodes */
#define XXH_INLINE_ALL
#include <xxhash.h>

static int member_cmp(const void *a, const void *b)
{
	const struct ownership_member *ma = a, *mb = b;

	return strcmp(ma->name, mb->name);
}

struct ownership_view *ownership_view_new(uint64_t epoch, const char *const *names,
					  const double *weights, size_t n)
{
	struct ownership_view *v = calloc(1, sizeof(*v));

	if (!v)
		return NULL;
	v->epoch = epoch;
	v->members = calloc(n ? n : 1, sizeof(*v->members));
	if (!v->members) {
		free(v);
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		struct ownership_member *m = &v->members[v->n];

		m->name = strdup(names[i]);
		if (!m->name) {
			ownership_view_free(v);
			return NULL;
		}
		m->name_seed = XXH3_64bits(names[i], strlen(names[i]));
		m->weight = (weights && weights[i] > 0) ? weights[i] : 1.0;
		if (m->weight != 1.0)
			v->weighted = true;
		v->n++;
	}
	qsort(v->members, v->n, sizeof(*v->members), member_cmp);
	return v;
}

void ownership_view_free(struct ownership_view *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->n; i++)
		free((char *)v->members[i].name);
	free(v->members);
	free(v);
}

/* XXH3-64 of the key's 8 little-endian bytes, seeded with XXH3-64 of the
 * member name: the same on every node and every architecture. */
static inline uint64_t pair_hash(uint64_t key, uint64_t seed)
{
	uint64_t le = htole64(key);

	return XXH3_64bits_withSeed(&le, sizeof(le), seed);
}

double ownership_score(const struct ownership_view *v, const struct ownership_member *m,
		       uint64_t key)
{
	uint64_t h = pair_hash(key, m->name_seed);

	if (!v->weighted)
		return (double)(h >> 11); /* monotone in h: cheap path */
	/* u in (0,1): 53 random bits, never 0 */
	double u = ((double)(h >> 11) + 0.5) / 9007199254740992.0;

	return -m->weight / log(u) * 9007199254740992.0;
}

size_t ownership_owners(const struct ownership_view *v, uint64_t key, size_t *out, size_t n)
{
	double best[16];
	size_t k = 0;

	if (!v || n == 0 || v->n == 0)
		return 0;
	if (n > 16)
		n = 16;
	if (n == 1 && !v->weighted) {
		/* the common case (one owner, equal weights): a plain argmax on
		 * the integer hash; ties go to the lower index (name order) */
		uint64_t bh = pair_hash(key, v->members[0].name_seed) >> 11;
		size_t bi = 0;

		for (size_t i = 1; i < v->n; i++) {
			uint64_t h = pair_hash(key, v->members[i].name_seed) >> 11;

			if (h > bh) {
				bh = h;
				bi = i;
			}
		}
		out[0] = bi;
		return 1;
	}
	for (size_t i = 0; i < v->n; i++) {
		double s = ownership_score(v, &v->members[i], key);
		size_t pos = k;

		while (pos > 0 && (s > best[pos - 1] || (s == best[pos - 1] && i < out[pos - 1])))
			pos--;
		if (pos >= n)
			continue;
		if (k < n)
			k++;
		memmove(&best[pos + 1], &best[pos], (k - 1 - pos) * sizeof(best[0]));
		memmove(&out[pos + 1], &out[pos], (k - 1 - pos) * sizeof(out[0]));
		best[pos] = s;
		out[pos] = i;
	}
	return k;
}
