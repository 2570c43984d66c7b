/* Configuration fingerprint for drift detection (see drift.h). */
#include "drift.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

/* Config keys whose values decide ownership (the target keys and slots). */
static const char *const deciding[] = {
    "targets",	"scrape_interval", "job_name", "clustering",
    "selector", "namespaces",	   "scrape",   NULL,
};

static bool clustered(const struct starling_config *node)
{
	for (size_t i = 0; i < node->n_children; i++) {
		const struct starling_config *c = node->children[i];

		if (!c->name || strcmp(c->name, "clustering"))
			continue;
		for (size_t j = 0; j < c->n_children; j++)
			if (c->children[j]->name && !strcmp(c->children[j]->name, "enabled") &&
			    c->children[j]->kind == CFG_K_BOOL && c->children[j]->b)
				return true;
	}
	return false;
}

static void hash_text(XXH3_state_t *st, const char *s)
{
	if (s)
		XXH3_64bits_update(st, s, strlen(s) + 1);
}

static uint32_t component_hash(const struct cfg_doc *d, const struct cfg_component *c)
{
	XXH3_state_t *st = XXH3_createState();
	uint64_t h;

	if (!st)
		return 0;
	XXH3_64bits_reset(st);
	hash_text(st, c->id);
	for (size_t i = 0; deciding[i]; i++) {
		for (size_t j = 0; j < c->node->n_children; j++) {
			const struct starling_config *n = c->node->children[j];
			char *canon;

			if (!n->name || strcmp(n->name, deciding[i]))
				continue;
			canon = cfg_canonical(n);
			hash_text(st, n->name);
			hash_text(st, canon);
			free(canon);
		}
	}
	/* the discovery components that feed it decide its targets */
	for (size_t i = 0; i < c->n_target_sources; i++) {
		hash_text(st, d->components[c->target_sources[i]].id);
		hash_text(st, d->components[c->target_sources[i]].canon);
	}
	h = XXH3_64bits_digest(st);
	XXH3_freeState(st);
	return (uint32_t)h;
}

static int by_id(const void *a, const void *b)
{
	const struct cfg_component *x = *(const struct cfg_component *const *)a;
	const struct cfg_component *y = *(const struct cfg_component *const *)b;

	return strcmp(x->id, y->id);
}

char *drift_fingerprint(const struct cfg_doc *d, size_t max)
{
	const struct cfg_component **cs = calloc(d->n_components + 1, sizeof(*cs));
	size_t n = 0, len = 0;
	char *out = NULL;
	FILE *f;
	uint64_t all = 0;

	if (!cs)
		return NULL;
	for (size_t i = 0; i < d->n_components; i++)
		if (d->components[i].node && clustered(d->components[i].node))
			cs[n++] = &d->components[i];
	qsort(cs, n, sizeof(*cs), by_id);
	f = open_memstream(&out, &len);
	if (!f) {
		free(cs);
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		uint32_t h = component_hash(d, cs[i]);

		fprintf(f, "%s%s:%08" PRIx32, i ? "," : "", cs[i]->id, h);
		all = all * 1000003u ^ h;
	}
	fclose(f);
	free(cs);
	if (out && len >= max) {
		snprintf(out, len + 1, "#%016" PRIx64, all);
	}
	return out;
}
