/* Target sets and a scraper's merged target list: see starling/target_set.h. */
#include <starling/target_set.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool target_valid(const struct starling_target *t)
{
	if (t->n_labels && !t->labels)
		return false;
	for (size_t j = 0; j < t->n_labels; j++) {
		const struct starling_label *l = &t->labels[j];

		if (!l->name || !*l->name || !l->value)
			return false;
		if (j && strcmp(t->labels[j - 1].name, l->name) >= 0)
			return false;
	}
	return true;
}

bool starling_target_set_valid(const struct starling_target_set *set)
{
	if (!set || (set->n_targets && !set->targets))
		return false;
	for (size_t i = 0; i < set->n_targets; i++)
		if (!target_valid(&set->targets[i]))
			return false;
	return true;
}

/* One block: the set, the targets, every label array, then the strings. */
struct starling_target_set *starling_target_set_copy(const struct starling_target_set *in)
{
	size_t n_labels = 0, n_bytes = 0, size;
	struct starling_target_set *out;
	struct starling_target *tg;
	struct starling_label *lb;
	char *sp;

	if (!starling_target_set_valid(in)) {
		errno = EINVAL;
		return NULL;
	}
	for (size_t i = 0; i < in->n_targets; i++) {
		n_labels += in->targets[i].n_labels;
		for (size_t j = 0; j < in->targets[i].n_labels; j++)
			n_bytes += strlen(in->targets[i].labels[j].name) +
				   strlen(in->targets[i].labels[j].value) + 2;
	}
	if (in->n_targets > SIZE_MAX / 4 / sizeof(*tg) || n_labels > SIZE_MAX / 4 / sizeof(*lb)) {
		errno = ENOMEM;
		return NULL;
	}
	size = sizeof(*out) + in->n_targets * sizeof(*tg) + n_labels * sizeof(*lb);
	if (n_bytes > SIZE_MAX - size) {
		errno = ENOMEM;
		return NULL;
	}
	out = malloc(size + n_bytes);
	if (!out)
		return NULL;
	tg = (struct starling_target *)(out + 1);
	lb = (struct starling_label *)(tg + in->n_targets);
	sp = (char *)(lb + n_labels);
	for (size_t i = 0; i < in->n_targets; i++) {
		const struct starling_target *x = &in->targets[i];

		tg[i].labels = lb;
		tg[i].n_labels = x->n_labels;
		for (size_t j = 0; j < x->n_labels; j++, lb++) {
			size_t ln = strlen(x->labels[j].name) + 1;
			size_t lv = strlen(x->labels[j].value) + 1;

			lb->name = memcpy(sp, x->labels[j].name, ln);
			sp += ln;
			lb->value = memcpy(sp, x->labels[j].value, lv);
			sp += lv;
		}
	}
	out->targets = in->n_targets ? tg : NULL;
	out->n_targets = in->n_targets;
	return out;
}

const char *starling_target_label(const struct starling_target *t, const char *name)
{
	size_t lo = 0, hi = t ? t->n_labels : 0;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(t->labels[mid].name, name);

		if (!c)
			return t->labels[mid].value;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* ---- the merged list ------------------------------------------------------- */

struct segment {
	char *name; /* source id, or "file:line" of an inline target */
	bool is_inline;
	bool named;			 /* a source the config names (else: came by forward_to) */
	struct starling_target_set *set; /* owned; NULL: nothing yet */
};

struct starling_target_list {
	struct segment *seg;
	size_t n_seg;
	/* flattened view, rebuilt on every change */
	struct starling_target *flat;
	const char **origin;
	bool *inl;
	size_t n_flat;
	size_t n_inline;
};

static int rebuild(struct starling_target_list *tl)
{
	size_t n = 0;
	struct starling_target *flat;
	const char **origin;
	bool *inl;

	for (size_t s = 0; s < tl->n_seg; s++)
		n += tl->seg[s].set ? tl->seg[s].set->n_targets : 0;
	flat = malloc((n ? n : 1) * sizeof(*flat));
	origin = malloc((n ? n : 1) * sizeof(*origin));
	inl = malloc((n ? n : 1) * sizeof(*inl));
	if (!flat || !origin || !inl) {
		free(flat);
		free(origin);
		free(inl);
		return -ENOMEM;
	}
	n = 0;
	tl->n_inline = 0;
	for (size_t s = 0; s < tl->n_seg; s++) {
		const struct segment *g = &tl->seg[s];

		for (size_t i = 0; g->set && i < g->set->n_targets; i++, n++) {
			flat[n] = g->set->targets[i];
			origin[n] = g->name;
			inl[n] = g->is_inline;
			tl->n_inline += g->is_inline;
		}
	}
	free(tl->flat);
	free(tl->origin);
	free(tl->inl);
	tl->flat = flat;
	tl->origin = origin;
	tl->inl = inl;
	tl->n_flat = n;
	return 0;
}

static struct segment *add_segment(struct starling_target_list *tl, const char *name,
				   bool is_inline, bool named)
{
	struct segment *v = realloc(tl->seg, (tl->n_seg + 1) * sizeof(*v));

	if (!v)
		return NULL;
	tl->seg = v;
	v = &tl->seg[tl->n_seg];
	memset(v, 0, sizeof(*v));
	v->name = strdup(name);
	if (!v->name)
		return NULL;
	v->is_inline = is_inline;
	v->named = named;
	tl->n_seg++;
	return v;
}

static int label_cmp(const void *a, const void *b)
{
	return strcmp(((const struct starling_label *)a)->name,
		      ((const struct starling_label *)b)->name);
}

/* One inline target (a map) into a one-target set. */
static int inline_target(const struct starling_host_api *api, const starling_config *m,
			 struct starling_target_set **out, char *err, size_t errlen)
{
	size_t n = api->config_count(m);
	struct starling_label *l = calloc(n ? n : 1, sizeof(*l));
	char **names = calloc(n ? n : 1, sizeof(*names));
	struct starling_target t = {l, n};
	struct starling_target_set set = {&t, 1};
	int rc = 0;

	if (!l || !names) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t j = 0; j < n && !rc; j++) {
		const starling_config *e = api->config_child(m, j);
		const char *name = api->config_name(e);

		if (!name || api->config_string(e, NULL, &l[j].value)) {
			snprintf(err, errlen, "%s: target labels must be strings",
				 api->config_where(e));
			rc = -EINVAL;
		} else if (name[0] == '*') {
			if (asprintf(&names[j], "__%s", name + 1) < 0) {
				names[j] = NULL;
				rc = -ENOMEM;
			}
			l[j].name = names[j];
		} else {
			l[j].name = name;
		}
	}
	if (rc)
		goto out;
	qsort(l, n, sizeof(*l), label_cmp);
	for (size_t j = 1; j < n; j++) {
		if (!strcmp(l[j - 1].name, l[j].name)) {
			snprintf(err, errlen, "%s: label %s given twice", api->config_where(m),
				 l[j].name);
			rc = -EINVAL;
			goto out;
		}
	}
	*out = starling_target_set_copy(&set);
	if (!*out)
		rc = -ENOMEM;
out:
	for (size_t j = 0; names && j < n; j++)
		free(names[j]);
	free(names);
	free(l);
	return rc;
}

int starling_target_list_new(const struct starling_host_api *api, const starling_config *list,
			     struct starling_target_list **out, char *err, size_t errlen)
{
	struct starling_target_list *tl = calloc(1, sizeof(*tl));
	size_t n = list ? api->config_count(list) : 0;
	int rc = 0;

	*out = NULL;
	if (!tl)
		return -ENOMEM;
	for (size_t i = 0; i < n && !rc; i++) {
		const starling_config *e = api->config_child(list, i);
		const char *s;
		struct segment *g;

		if (!api->config_string(e, NULL, &s)) {
			bool dup = false;

			for (size_t k = 0; k < tl->n_seg && !dup; k++)
				dup = !tl->seg[k].is_inline && !strcmp(tl->seg[k].name, s);
			if (!dup && !add_segment(tl, s, false, true))
				rc = -ENOMEM;
			continue;
		}
		g = add_segment(tl, api->config_where(e), true, true);
		if (!g)
			rc = -ENOMEM;
		else
			rc = inline_target(api, e, &g->set, err, errlen);
	}
	if (!rc)
		rc = rebuild(tl);
	if (rc) {
		starling_target_list_free(tl);
		return rc;
	}
	*out = tl;
	return 0;
}

void starling_target_list_free(struct starling_target_list *tl)
{
	if (!tl)
		return;
	for (size_t s = 0; s < tl->n_seg; s++) {
		free(tl->seg[s].name);
		free(tl->seg[s].set);
	}
	free(tl->seg);
	free(tl->flat);
	free(tl->origin);
	free(tl->inl);
	free(tl);
}

static struct segment *find_source(const struct starling_target_list *tl, const char *source)
{
	for (size_t s = 0; s < tl->n_seg; s++)
		if (!tl->seg[s].is_inline && !strcmp(tl->seg[s].name, source))
			return &tl->seg[s];
	return NULL;
}

/* Takes ownership of copy. */
static int put(struct starling_target_list *tl, const char *source,
	       struct starling_target_set *copy)
{
	struct segment *g = find_source(tl, source);
	struct starling_target_set *old;
	int rc;

	if (!g)
		g = add_segment(tl, source, false, false);
	if (!g) {
		free(copy);
		return -ENOMEM;
	}
	old = g->set;
	g->set = copy;
	rc = rebuild(tl);
	if (rc) {
		g->set = old;
		free(copy);
		return rc;
	}
	free(old);
	return 0;
}

int starling_target_list_update(struct starling_target_list *tl, const char *source,
				const struct starling_target_set *set)
{
	struct starling_target_set *copy;

	if (!tl || !source)
		return -EINVAL;
	copy = starling_target_set_copy(set);
	if (!copy)
		return errno == EINVAL ? -EINVAL : -ENOMEM;
	return put(tl, source, copy);
}

int starling_target_list_adopt(struct starling_target_list *to,
			       const struct starling_target_list *from)
{
	for (size_t s = 0; from && s < from->n_seg; s++) {
		const struct segment *g = &from->seg[s];
		struct starling_target_set *copy;
		int rc;

		if (g->is_inline || !g->set)
			continue;
		/* an unnamed source stays a source: it came by forward_to,
		 * which a reload of this component does not change */
		if (g->named && !find_source(to, g->name))
			continue;
		copy = starling_target_set_copy(g->set);
		if (!copy)
			return -ENOMEM;
		rc = put(to, g->name, copy);
		if (rc)
			return rc;
	}
	return 0;
}

size_t starling_target_list_count(const struct starling_target_list *tl)
{
	return tl ? tl->n_flat : 0;
}

const struct starling_target *starling_target_list_get(const struct starling_target_list *tl,
						       size_t i)
{
	return tl && i < tl->n_flat ? &tl->flat[i] : NULL;
}

const char *starling_target_list_origin(const struct starling_target_list *tl, size_t i,
					bool *is_inline)
{
	if (!tl || i >= tl->n_flat)
		return NULL;
	if (is_inline)
		*is_inline = tl->inl[i];
	return tl->origin[i];
}

size_t starling_target_list_inline_count(const struct starling_target_list *tl)
{
	return tl ? tl->n_inline : 0;
}
