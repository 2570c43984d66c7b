/* Spans of gone members (see departed.h). */
#include "departed.h"

#include <stdlib.h>
#include <string.h>

struct departed {
	struct timeline_member *m; /* names malloc'd */
	size_t n, cap;
	int64_t keep_ms;
};

int64_t departed_until(int64_t until, int64_t down)
{
	return down < until ? down : until;
}

struct departed *departed_new(size_t cap, int64_t keep_ms)
{
	struct departed *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->m = calloc(cap ? cap : 1, sizeof(*d->m));
	if (!d->m) {
		free(d);
		return NULL;
	}
	d->cap = cap ? cap : 1;
	d->keep_ms = keep_ms;
	return d;
}

void departed_free(struct departed *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n; i++)
		free((char *)d->m[i].name);
	free(d->m);
	free(d);
}

static void drop_at(struct departed *d, size_t i)
{
	free((char *)d->m[i].name);
	d->m[i] = d->m[--d->n];
}

static struct timeline_member *find(struct departed *d, const char *name, int64_t from)
{
	for (size_t i = 0; i < d->n; i++)
		if (d->m[i].from == from && strcmp(d->m[i].name, name) == 0)
			return &d->m[i];
	return NULL;
}

bool departed_note(struct departed *d, const char *name, double weight, int64_t from, int64_t until)
{
	struct timeline_member *f;
	char *copy;

	if (!d || until <= from)
		return false;
	f = find(d, name, from);
	if (f) {
		f->weight = weight;
		f->until = until;
		return false;
	}
	if (d->n == d->cap) {
		size_t old = 0;

		for (size_t i = 1; i < d->n; i++)
			if (d->m[i].until < d->m[old].until)
				old = i;
		drop_at(d, old);
	}
	copy = strdup(name);
	if (!copy)
		return false;
	d->m[d->n++] = (struct timeline_member){copy, weight, from, until};
	return true;
}

void departed_forget(struct departed *d, const char *name, int64_t from)
{
	struct timeline_member *f = d ? find(d, name, from) : NULL;

	if (f)
		drop_at(d, (size_t)(f - d->m));
}

void departed_expire(struct departed *d, int64_t now)
{
	for (size_t i = 0; d && i < d->n;) {
		if (d->m[i].until < now - d->keep_ms)
			drop_at(d, i);
		else
			i++;
	}
}

size_t departed_count(const struct departed *d)
{
	return d ? d->n : 0;
}

const struct timeline_member *departed_at(const struct departed *d, size_t i)
{
	return d && i < d->n ? &d->m[i] : NULL;
}
