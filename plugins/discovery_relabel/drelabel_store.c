/* discovery.relabel: compact storage of relabelled targets (drelabel.h). */
#include "drelabel.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void drelabel_store_init(struct drelabel_store *s)
{
	memset(s, 0, sizeof(*s));
}

void drelabel_store_free(struct drelabel_store *s)
{
	free(s->buf);
	free(s->off);
	free(s->first);
	free(s->count);
	free(s->labels);
	free(s->targets);
	drelabel_store_init(s);
}

void drelabel_store_clear(struct drelabel_store *s)
{
	s->n_in = 0;
	s->len = 0;
	s->n_off = 0;
	s->n_targets = 0;
}

static int grow(void **p, size_t *cap, size_t need, size_t elem, size_t min)
{
	size_t c = *cap ? *cap : min;
	void *n;

	if (need <= *cap)
		return 0;
	while (c < need)
		c *= 2;
	n = realloc(*p, c * elem);
	if (!n)
		return -ENOMEM;
	*p = n;
	*cap = c;
	return 0;
}

int drelabel_store_add(struct drelabel_store *s, const struct starling_lset *ls)
{
	size_t bytes = 0, tcap = s->t_cap;

	for (size_t i = 0; i < ls->n; i++)
		bytes += strlen(ls->v[i].name) + strlen(ls->v[i].value) + 2;
	if (grow((void **)&s->buf, &s->cap, s->len + bytes, 1, 4096) ||
	    grow((void **)&s->off, &s->off_cap, s->n_off + 2 * ls->n, sizeof(size_t), 64))
		return -ENOMEM;
	if (grow((void **)&s->first, &tcap, s->n_targets + 1, sizeof(size_t), 16))
		return -ENOMEM;
	if (tcap != s->t_cap) {
		size_t *c = realloc(s->count, tcap * sizeof(size_t));

		if (!c)
			return -ENOMEM; /* first[] grew; t_cap still the old size */
		s->count = c;
		s->t_cap = tcap;
	}
	s->first[s->n_targets] = s->n_off / 2;
	s->count[s->n_targets] = ls->n;
	for (size_t i = 0; i < ls->n; i++) {
		size_t a = strlen(ls->v[i].name) + 1, b = strlen(ls->v[i].value) + 1;

		s->off[s->n_off++] = s->len;
		memcpy(s->buf + s->len, ls->v[i].name, a);
		s->len += a;
		s->off[s->n_off++] = s->len;
		memcpy(s->buf + s->len, ls->v[i].value, b);
		s->len += b;
	}
	s->n_targets++;
	return 0;
}

int drelabel_store_seal(struct drelabel_store *s)
{
	size_t nl = s->n_off / 2;
	struct starling_label *l = realloc(s->labels, (nl ? nl : 1) * sizeof(*l));
	struct starling_target *t;

	if (!l)
		return -ENOMEM;
	s->labels = l;
	t = realloc(s->targets, (s->n_targets ? s->n_targets : 1) * sizeof(*t));
	if (!t)
		return -ENOMEM;
	s->targets = t;
	for (size_t i = 0; i < nl; i++) {
		l[i].name = s->buf + s->off[2 * i];
		l[i].value = s->buf + s->off[2 * i + 1];
	}
	for (size_t i = 0; i < s->n_targets; i++) {
		t[i].labels = l + s->first[i];
		t[i].n_labels = s->count[i];
	}
	return 0;
}
