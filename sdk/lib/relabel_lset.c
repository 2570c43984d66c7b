/*
 * Mutable sorted label sets (see starling/relabel.h).
 *
 * Strings live in one byte buffer owned by the set; labels point into it.
 * Deleting or replacing a value leaves the old bytes behind (garbage); the
 * buffer is compacted only when it has to grow, so steady-state relabelling
 * of a set that is cleared per series never allocates.
 */
#include <starling/relabel.h>
#include <starling/labels.h>

#include "relabel_lset.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void starling_lset_init(struct starling_lset *ls)
{
	memset(ls, 0, sizeof(*ls));
}

void starling_lset_free(struct starling_lset *ls)
{
	free(ls->v);
	free(ls->buf);
	starling_lset_init(ls);
}

void starling_lset_clear(struct starling_lset *ls)
{
	ls->n = 0;
	ls->len = 0;
}

/* Grow the string buffer so that `need` more bytes fit. Live strings are
 * copied (compacted) into the new buffer and the labels re-pointed. */
static int lset_reserve(struct starling_lset *ls, size_t need)
{
	size_t live = 0, cap, off = 0;
	char *nb;

	if (ls->len + need <= ls->bufcap)
		return 0;
	for (size_t i = 0; i < ls->n; i++)
		live += strlen(ls->v[i].name) + strlen(ls->v[i].value) + 2;
	cap = ls->bufcap ? ls->bufcap : 256;
	while (cap < live + need)
		cap *= 2;
	nb = malloc(cap);
	if (!nb)
		return -ENOMEM;
	for (size_t i = 0; i < ls->n; i++) {
		size_t a = strlen(ls->v[i].name) + 1, b = strlen(ls->v[i].value) + 1;

		memcpy(nb + off, ls->v[i].name, a);
		ls->v[i].name = nb + off;
		off += a;
		memcpy(nb + off, ls->v[i].value, b);
		ls->v[i].value = nb + off;
		off += b;
	}
	free(ls->buf);
	ls->buf = nb;
	ls->bufcap = cap;
	ls->len = off;
	return 0;
}

static int lset_reserve_labels(struct starling_lset *ls, size_t more)
{
	size_t cap;
	struct starling_label *nv;

	if (ls->n + more <= ls->cap)
		return 0;
	cap = ls->cap ? ls->cap * 2 : 16;
	while (cap < ls->n + more)
		cap *= 2;
	nv = realloc(ls->v, cap * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	ls->v = nv;
	ls->cap = cap;
	return 0;
}

static char *lset_store(struct starling_lset *ls, const char *s, size_t n)
{
	char *d = ls->buf + ls->len;

	memcpy(d, s, n);
	d[n] = '\0';
	ls->len += n + 1;
	return d;
}

/* Binary search: index of name, or -(insertion point) - 1. */
static long lset_find(const struct starling_lset *ls, const char *name, size_t nlen)
{
	size_t lo = 0, hi = ls->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const char *m = ls->v[mid].name;
		int c = strncmp(m, name, nlen);

		if (c == 0 && m[nlen] != '\0')
			c = 1;
		if (c == 0)
			return (long)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -(long)lo - 1;
}

static bool has_nul(const char *s, size_t n)
{
	return n && memchr(s, '\0', n) != NULL;
}

int starling_lset_set(struct starling_lset *ls, const char *name, size_t name_len,
		      const char *value, size_t value_len)
{
	long i;
	int rc;

	if (!name_len || has_nul(name, name_len) || has_nul(value, value_len))
		return -EINVAL;
	i = lset_find(ls, name, name_len);
	if (value_len == 0) {
		if (i >= 0) {
			memmove(&ls->v[i], &ls->v[i + 1],
				(ls->n - (size_t)i - 1) * sizeof(ls->v[0]));
			ls->n--;
		}
		return 0;
	}
	if (i >= 0) {
		if (strlen(ls->v[i].value) == value_len &&
		    memcmp(ls->v[i].value, value, value_len) == 0)
			return 0;
		/* value may point into our own buffer: reserve first, which can
		 * move it, so copy through a bounded stack detour if needed. */
		if (value >= ls->buf && value < ls->buf + ls->bufcap &&
		    ls->len + value_len + 1 > ls->bufcap) {
			char *tmp = malloc(value_len);

			if (!tmp)
				return -ENOMEM;
			memcpy(tmp, value, value_len);
			rc = starling_lset_set(ls, name, name_len, tmp, value_len);
			free(tmp);
			return rc;
		}
		rc = lset_reserve(ls, value_len + 1);
		if (rc)
			return rc;
		ls->v[i].value = lset_store(ls, value, value_len);
		return 0;
	}
	if ((name >= ls->buf && name < ls->buf + ls->bufcap) ||
	    (value >= ls->buf && value < ls->buf + ls->bufcap)) {
		/* Inputs alias our buffer (e.g. labelmap copying a value): copy
		 * them out before the buffer may move. */
		char *tmp = malloc(name_len + value_len);

		if (!tmp)
			return -ENOMEM;
		memcpy(tmp, name, name_len);
		memcpy(tmp + name_len, value, value_len);
		rc = 0;
		if (ls->len + name_len + value_len + 2 > ls->bufcap || ls->n + 1 > ls->cap)
			rc = 1;
		if (rc) {
			rc = lset_reserve(ls, name_len + value_len + 2);
			if (!rc)
				rc = lset_reserve_labels(ls, 1);
		}
		if (!rc) {
			size_t at = (size_t)(-i - 1);

			memmove(&ls->v[at + 1], &ls->v[at], (ls->n - at) * sizeof(ls->v[0]));
			ls->v[at].name = lset_store(ls, tmp, name_len);
			ls->v[at].value = lset_store(ls, tmp + name_len, value_len);
			ls->n++;
		}
		free(tmp);
		return rc;
	}
	rc = lset_reserve(ls, name_len + value_len + 2);
	if (!rc)
		rc = lset_reserve_labels(ls, 1);
	if (rc)
		return rc;
	{
		size_t at = (size_t)(-i - 1);

		memmove(&ls->v[at + 1], &ls->v[at], (ls->n - at) * sizeof(ls->v[0]));
		ls->v[at].name = lset_store(ls, name, name_len);
		ls->v[at].value = lset_store(ls, value, value_len);
		ls->n++;
	}
	return 0;
}

int starling_lset_set_str(struct starling_lset *ls, const char *name, const char *value)
{
	return starling_lset_set(ls, name, strlen(name), value, value ? strlen(value) : 0);
}

int starling_lset_append(struct starling_lset *ls, const char *name, size_t name_len,
			 const char *value, size_t value_len)
{
	if (!name_len || has_nul(name, name_len) || has_nul(value, value_len))
		return -EINVAL;
	return lset_append_checked(ls, name, name_len, value, value_len);
}

int lset_append_checked(struct starling_lset *ls, const char *name, size_t name_len,
			const char *value, size_t value_len)
{
	int rc;

	rc = lset_reserve(ls, name_len + value_len + 2);
	if (!rc)
		rc = lset_reserve_labels(ls, 1);
	if (rc)
		return rc;
	ls->v[ls->n].name = lset_store(ls, name, name_len);
	ls->v[ls->n].value = lset_store(ls, value, value_len);
	ls->n++;
	return 0;
}

static int label_name_cmp(const void *a, const void *b)
{
	const struct starling_label *x = a, *y = b;

	return strcmp(x->name, y->name);
}

int starling_lset_finish(struct starling_lset *ls)
{
	size_t o = 0;

	if (ls->n <= 32) {
		/* Exposition label sets are short: insertion sort (n - 1
		 * comparisons when already sorted) that also finds duplicates,
		 * since each label is compared with its final neighbour. */
		for (size_t i = 1; i < ls->n; i++) {
			struct starling_label t = ls->v[i];
			size_t j = i;
			int c = 1;

			while (j > 0 && (c = strcmp(ls->v[j - 1].name, t.name)) > 0) {
				ls->v[j] = ls->v[j - 1];
				j--;
			}
			ls->v[j] = t;
			if (j > 0 && c == 0)
				return -EEXIST;
		}
	} else {
		qsort(ls->v, ls->n, sizeof(ls->v[0]), label_name_cmp);
		for (size_t i = 1; i < ls->n; i++)
			if (strcmp(ls->v[i - 1].name, ls->v[i].name) == 0)
				return -EEXIST;
	}
	for (size_t i = 0; i < ls->n; i++)
		if (ls->v[i].value[0] != '\0')
			ls->v[o++] = ls->v[i];
	ls->n = o;
	return 0;
}

const char *starling_lset_get(const struct starling_lset *ls, const char *name)
{
	long i = lset_find(ls, name, strlen(name));

	return i >= 0 ? ls->v[i].value : NULL;
}

void starling_lset_del(struct starling_lset *ls, const char *name)
{
	long i = lset_find(ls, name, strlen(name));

	if (i < 0)
		return;
	memmove(&ls->v[i], &ls->v[i + 1], (ls->n - (size_t)i - 1) * sizeof(ls->v[0]));
	ls->n--;
}

int starling_lset_copy(struct starling_lset *dst, const struct starling_lset *src)
{
	int rc;

	if (dst == src)
		return 0;
	starling_lset_clear(dst);
	rc = lset_reserve_labels(dst, src->n);
	if (rc)
		return rc;
	for (size_t i = 0; i < src->n; i++) {
		size_t a = strlen(src->v[i].name), b = strlen(src->v[i].value);

		rc = lset_reserve(dst, a + b + 2);
		if (rc)
			return rc;
		dst->v[i].name = lset_store(dst, src->v[i].name, a);
		dst->v[i].value = lset_store(dst, src->v[i].value, b);
		dst->n = i + 1;
	}
	return 0;
}

uint64_t starling_lset_hash(const struct starling_lset *ls)
{
	return starling_labels_hash(ls->v, ls->n);
}

int starling_lset_compare(const struct starling_lset *a, const struct starling_lset *b)
{
	size_t n = a->n < b->n ? a->n : b->n;

	for (size_t i = 0; i < n; i++) {
		int c = strcmp(a->v[i].name, b->v[i].name);

		if (c)
			return c;
		c = strcmp(a->v[i].value, b->v[i].value);
		if (c)
			return c;
	}
	return (a->n > b->n) - (a->n < b->n);
}
