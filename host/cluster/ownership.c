/* Rendezvous hashing: every node computes the same owners from the same view. */
#include "ownership.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
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

/* Mix key and member seed into 64 well-distributed bits (XXH3 of the pair). */
static uint64_t pair_hash(uint64_t key, uint64_t seed)
{
	uint64_t buf[2] = { key, seed };

	return XXH3_64bits(buf, sizeof(buf));
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

	if (!v || n == 0)
		return 0;
	if (n > 16)
		n = 16;
	for (size_t i = 0; i < v->n; i++) {
		double s = ownership_score(v, &v->members[i], key);
		size_t pos = k;

		while (pos > 0 && (s > best[pos - 1] ||
				   (s == best[pos - 1] && i < out[pos - 1])))
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
