/* Target groups keyed by source (see starling/sd.h). */
#include <starling/labels.h>
#include <starling/sd.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct sd_target {
	struct starling_label *labels; /* sorted by name; strings owned */
	size_t n;
};

struct sd_group {
	char *source;
	struct sd_target *targets;
	size_t n;
};

struct starling_sd_groups {
	pthread_mutex_t lock;
	struct sd_group *groups; /* sorted by source */
	size_t n, cap;
	uint64_t gen;
};

struct starling_sd_groups *starling_sd_groups_new(void)
{
	struct starling_sd_groups *g = calloc(1, sizeof(*g));

	if (g)
		pthread_mutex_init(&g->lock, NULL);
	return g;
}

/* A target's labels and their strings live in one allocation. */
static void target_clear(struct sd_target *t)
{
	free(t->labels);
	t->labels = NULL;
	t->n = 0;
}

static void group_clear(struct sd_group *gr)
{
	for (size_t i = 0; i < gr->n; i++)
		target_clear(&gr->targets[i]);
	free(gr->targets);
	free(gr->source);
}

void starling_sd_groups_free(struct starling_sd_groups *g)
{
	if (!g)
		return;
	for (size_t i = 0; i < g->n; i++)
		group_clear(&g->groups[i]);
	free(g->groups);
	pthread_mutex_destroy(&g->lock);
	free(g);
}

/* Build one stored target: the target's labels, then group labels it lacks. */
/* Build one stored target: the target's labels, then the group labels it
 * lacks, sorted, in one block (label array, then the strings). */
static int target_build(struct sd_target *out, const struct starling_target *t,
			const struct starling_label *gl, size_t ngl)
{
	size_t total = t->n_labels + ngl, n = 0, bytes = 0;
	const struct starling_label **pick;
	char *p;

	out->labels = NULL;
	out->n = 0;
	pick = calloc(total + 1, sizeof(*pick));
	if (!pick)
		return -ENOMEM;
	for (size_t i = 0; i < total; i++) {
		const struct starling_label *l =
		    i < t->n_labels ? &t->labels[i] : &gl[i - t->n_labels];
		bool dup = false;

		if (!l->name || !*l->name) {
			free(pick);
			return -EINVAL;
		}
		/* first occurrence wins: the target's own, then the group's */
		for (size_t j = 0; j < n && !dup; j++)
			dup = !strcmp(pick[j]->name, l->name);
		if (dup)
			continue;
		pick[n++] = l;
		bytes += strlen(l->name) + strlen(l->value ? l->value : "") + 2;
	}
	out->labels = malloc(n * sizeof(*out->labels) + bytes + 1);
	if (!out->labels) {
		free(pick);
		return -ENOMEM;
	}
	p = (char *)(out->labels + n);
	for (size_t i = 0; i < n; i++) {
		const char *v = pick[i]->value ? pick[i]->value : "";
		size_t ln = strlen(pick[i]->name) + 1, lv = strlen(v) + 1;

		out->labels[i].name = memcpy(p, pick[i]->name, ln);
		p += ln;
		out->labels[i].value = memcpy(p, v, lv);
		p += lv;
	}
	out->n = n;
	free(pick);
	starling_labels_sort(out->labels, n);
	return 0;
}

static bool targets_equal(const struct sd_target *a, size_t na, const struct sd_target *b,
			  size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++) {
		if (a[i].n != b[i].n)
			return false;
		for (size_t j = 0; j < a[i].n; j++)
			if (strcmp(a[i].labels[j].name, b[i].labels[j].name) ||
			    strcmp(a[i].labels[j].value, b[i].labels[j].value))
				return false;
	}
	return true;
}

/* Index of source, or where it would go (*found false). Caller locks. */
static size_t find(struct starling_sd_groups *g, const char *source, bool *found)
{
	size_t lo = 0, hi = g->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(g->groups[mid].source, source);

		if (!c) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

static void remove_at(struct starling_sd_groups *g, size_t i)
{
	g->gen++;
	group_clear(&g->groups[i]);
	memmove(&g->groups[i], &g->groups[i + 1], (g->n - i - 1) * sizeof(*g->groups));
	g->n--;
}

int starling_sd_groups_set(struct starling_sd_groups *g, const char *source,
			   const struct starling_label *group_labels, size_t n_group_labels,
			   const struct starling_target *targets, size_t n_targets)
{
	struct sd_target *nt = NULL;
	bool found;
	size_t i;
	int r = 0;

	if (!source)
		return -EINVAL;
	if (n_targets) {
		nt = calloc(n_targets, sizeof(*nt));
		if (!nt)
			return -ENOMEM;
		for (i = 0; i < n_targets && !r; i++)
			r = target_build(&nt[i], &targets[i], group_labels, n_group_labels);
		if (r) {
			for (size_t j = 0; j < n_targets; j++)
				target_clear(&nt[j]);
			free(nt);
			return r;
		}
	}
	pthread_mutex_lock(&g->lock);
	i = find(g, source, &found);
	if (found && targets_equal(g->groups[i].targets, g->groups[i].n, nt, n_targets)) {
		r = 0;
		goto out_free_new;
	}
	if (!n_targets) {
		if (found)
			remove_at(g, i);
		r = found;
		goto out_free_new;
	}
	if (found) {
		struct sd_group *gr = &g->groups[i];

		for (size_t j = 0; j < gr->n; j++)
			target_clear(&gr->targets[j]);
		free(gr->targets);
		gr->targets = nt;
		gr->n = n_targets;
		g->gen++;
		pthread_mutex_unlock(&g->lock);
		return 1;
	}
	if (g->n == g->cap) {
		size_t ncap = g->cap ? g->cap * 2 : 8;
		struct sd_group *ng = realloc(g->groups, ncap * sizeof(*ng));

		if (!ng) {
			r = -ENOMEM;
			goto out_free_new;
		}
		g->groups = ng;
		g->cap = ncap;
	}
	memmove(&g->groups[i + 1], &g->groups[i], (g->n - i) * sizeof(*g->groups));
	g->groups[i] = (struct sd_group){.source = strdup(source), .targets = nt, .n = n_targets};
	g->n++;
	g->gen++;
	if (!g->groups[i].source) {
		remove_at(g, i);
		pthread_mutex_unlock(&g->lock);
		return -ENOMEM;
	}
	pthread_mutex_unlock(&g->lock);
	return 1;
out_free_new:
	pthread_mutex_unlock(&g->lock);
	for (size_t j = 0; j < n_targets; j++)
		target_clear(&nt[j]);
	free(nt);
	return r;
}

int starling_sd_groups_retain(struct starling_sd_groups *g, const char *const *keep, size_t n_keep)
{
	int dropped = 0;

	pthread_mutex_lock(&g->lock);
	for (size_t i = g->n; i-- > 0;) {
		bool kept = false;

		for (size_t k = 0; k < n_keep && !kept; k++)
			kept = !strcmp(keep[k], g->groups[i].source);
		if (!kept) {
			remove_at(g, i);
			dropped = 1;
		}
	}
	pthread_mutex_unlock(&g->lock);
	return dropped;
}

static size_t count_locked(struct starling_sd_groups *g)
{
	size_t n = 0;

	for (size_t i = 0; i < g->n; i++)
		n += g->groups[i].n;
	return n;
}

uint64_t starling_sd_groups_generation(struct starling_sd_groups *g)
{
	uint64_t gen;

	pthread_mutex_lock(&g->lock);
	gen = g->gen;
	pthread_mutex_unlock(&g->lock);
	return gen;
}

size_t starling_sd_groups_count(struct starling_sd_groups *g)
{
	size_t n;

	pthread_mutex_lock(&g->lock);
	n = count_locked(g);
	pthread_mutex_unlock(&g->lock);
	return n;
}

int starling_sd_groups_publish(struct starling_sd_groups *g, const struct starling_host_api *api,
			       starling_component *self)
{
	struct starling_target *all;
	struct starling_target_set set;
	size_t n, k = 0;
	int r;

	if (!STARLING_API_HAS(api, forward_targets))
		return -EOPNOTSUPP;
	pthread_mutex_lock(&g->lock);
	n = count_locked(g);
	all = calloc(n ? n : 1, sizeof(*all));
	if (!all) {
		pthread_mutex_unlock(&g->lock);
		return -ENOMEM;
	}
	for (size_t i = 0; i < g->n; i++)
		for (size_t j = 0; j < g->groups[i].n; j++) {
			all[k].labels = g->groups[i].targets[j].labels;
			all[k++].n_labels = g->groups[i].targets[j].n;
		}
	set.targets = all;
	set.n_targets = n;
	/* the host copies the set before returning */
	r = api->forward_targets(self, &set);
	pthread_mutex_unlock(&g->lock);
	free(all);
	return r;
}

int starling_sd_groups_list(struct starling_sd_groups *g, starling_target_emit_fn emit, void *ctx)
{
	pthread_mutex_lock(&g->lock);
	for (size_t i = 0; i < g->n; i++)
		for (size_t j = 0; j < g->groups[i].n; j++) {
			const struct sd_target *t = &g->groups[i].targets[j];
			struct starling_target_info ti = {
			    .labels = t->labels,
			    .n_labels = t->n,
			    .key = starling_target_key(t->labels, t->n, NULL, 0, NULL, 0),
			};

			emit(ctx, &ti);
		}
	pthread_mutex_unlock(&g->lock);
	return 0;
}
