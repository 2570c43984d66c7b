/*
 * discovery.relabel component: relabels every target of its `targets` list
 * (inline targets and the latest set of every named producer) with the
 * `rule` blocks, top to bottom, and publishes the targets that were kept
 * as its own target set (Alloy internal/component/discovery/relabel: no
 * rules is a pass-through; the output is recomputed on every input).
 *
 * Each source's relabelled output is kept, not its input: rules act on
 * one target at a time, so a new set from one source relabels only that
 * source's targets.
 */
#include "drelabel.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <starling/targetgroup.h>

static const struct starling_config_key schema[] = {
    {.name = "targets",
     .type = STARLING_CFG_TARGETS,
     .required = true,
     .help = "Targets to relabel: inline target maps and discovery components"},
    {.name = "rule",
     .type = STARLING_CFG_GROUP_LIST,
     .help = "Relabel rules, applied in order (Alloy's rule block)",
     .children = starling_relabel_schema},
    {0},
};

struct drelabel {
	const struct starling_host_api *api;
	starling_component *self;
	struct starling_relabel_rules *rules;
	struct starling_relabel_scratch scratch;
	struct starling_lset ls;
	struct drelabel_store inline_out; /* the relabelled inline targets */
	struct drelabel_store *sources;	  /* one per producer that delivered */
	size_t n_sources;
	struct starling_target *all; /* the published set's targets */
	size_t all_cap;
	size_t n_all;
	uint64_t last_hash;
	bool published;
	starling_metric *m_targets, *m_in, *m_dropped, *m_updates;
};

static void drelabel_free(struct drelabel *r)
{
	if (!r)
		return;
	starling_relabel_rules_free(r->rules);
	starling_relabel_scratch_free(&r->scratch);
	starling_lset_free(&r->ls);
	drelabel_store_free(&r->inline_out);
	for (size_t i = 0; i < r->n_sources; i++)
		drelabel_store_free(&r->sources[i]);
	free(r->sources);
	free(r->all);
	free(r);
}

/* Relabel one target (ls holds its labels) into out if kept. */
static int relabel_into(struct drelabel *r, struct drelabel_store *out)
{
	int kept = starling_relabel_apply(r->rules, &r->ls, &r->scratch);

	if (kept < 0)
		return kept;
	out->n_in++;
	return kept ? drelabel_store_add(out, &r->ls) : 0;
}

/* Inline targets: maps of label name to string; a leading '*' in a name
 * stands for "__" (libconfig names cannot start with '_'). */
static int load_inline(struct drelabel *r, const starling_config *list, char *err, size_t errlen)
{
	const struct starling_host_api *api = r->api;
	size_t n = list ? api->config_count(list) : 0;

	for (size_t i = 0; i < n; i++) {
		const starling_config *e = api->config_child(list, i);
		const char *s;
		size_t nl;
		int rc;

		if (api->config_string(e, NULL, &s) == 0)
			continue; /* a producer's name: the host delivers its sets */
		starling_lset_clear(&r->ls);
		nl = api->config_count(e);
		for (size_t j = 0; j < nl; j++) {
			const starling_config *l = api->config_child(e, j);
			const char *name = api->config_name(l), *value;
			char full[256];

			if (!name || api->config_string(l, NULL, &value)) {
				snprintf(err, errlen, "%s: target labels must be strings",
					 api->config_where(l));
				return -EINVAL;
			}
			if (name[0] == '*') {
				snprintf(full, sizeof(full), "__%s", name + 1);
				name = full;
			}
			rc = starling_lset_set_str(&r->ls, name, value);
			if (rc) {
				snprintf(err, errlen, "%s: bad label %s", api->config_where(l),
					 name);
				return rc;
			}
		}
		rc = relabel_into(r, &r->inline_out);
		if (rc) {
			snprintf(err, errlen, "out of memory");
			return rc;
		}
	}
	return drelabel_store_seal(&r->inline_out);
}

static int drelabel_create(const struct starling_host_api *api, starling_component *self,
			   const starling_config *cfg, void **out)
{
	struct drelabel *r;
	char err[512] = "";
	int rc;

	if (!STARLING_API_HAS(api, forward_targets)) {
		api->log(self, STARLING_LOG_ERROR, "this host cannot forward target sets");
		return -ENOTSUP;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->api = api;
	r->self = self;
	starling_relabel_scratch_init(&r->scratch);
	starling_lset_init(&r->ls);
	drelabel_store_init(&r->inline_out);
	rc = starling_relabel_rules_from_config(api, api->config_lookup(cfg, "rule"), &r->rules,
						err, sizeof(err));
	if (!rc)
		rc = load_inline(r, api->config_lookup(cfg, "targets"), err, sizeof(err));
	if (rc) {
		api->log(self, STARLING_LOG_ERROR, "%s", err);
		drelabel_free(r);
		return rc;
	}
	r->m_targets = api->metric_register(self, STARLING_SELF_GAUGE, "starling_discovery_targets",
					    "Targets in the last published set", NULL);
	r->m_in = api->metric_register(self, STARLING_SELF_GAUGE,
				       "starling_discovery_relabel_input_targets",
				       "Targets received (inline and from every source)", NULL);
	r->m_dropped = api->metric_register(self, STARLING_SELF_GAUGE,
					    "starling_discovery_relabel_dropped_targets",
					    "Received targets that the rules dropped", NULL);
	r->m_updates =
	    api->metric_register(self, STARLING_SELF_COUNTER, "starling_discovery_updates_total",
				 "Target sets published", NULL);
	*out = r;
	return 0;
}

/* Publish inline targets followed by every source's, in arrival order of
 * the sources, unless the result equals the last published set. */
static int publish(struct drelabel *r)
{
	const struct starling_host_api *api = r->api;
	struct starling_target_set set;
	size_t n = r->inline_out.n_targets, n_in = r->inline_out.n_in, o = 0;
	uint64_t h;
	int rc;

	for (size_t i = 0; i < r->n_sources; i++) {
		n += r->sources[i].n_targets;
		n_in += r->sources[i].n_in;
	}
	if (n > r->all_cap) {
		struct starling_target *v = realloc(r->all, n * sizeof(*v));

		if (!v) {
			r->n_all = 0; /* r->all may point at replaced stores */
			return -ENOMEM;
		}
		r->all = v;
		r->all_cap = n;
	}
	if (r->inline_out.n_targets)
		memcpy(r->all, r->inline_out.targets, r->inline_out.n_targets * sizeof(*r->all));
	o = r->inline_out.n_targets;
	for (size_t i = 0; i < r->n_sources; i++) {
		if (r->sources[i].n_targets)
			memcpy(r->all + o, r->sources[i].targets,
			       r->sources[i].n_targets * sizeof(*r->all));
		o += r->sources[i].n_targets;
	}
	r->n_all = o;
	set.targets = r->all;
	set.n_targets = o;
	api->metric_set(r->m_in, (double)n_in);
	api->metric_set(r->m_dropped, (double)(n_in - o));
	h = starling_target_set_hash(&set);
	if (r->published && h == r->last_hash)
		return 0;
	rc = api->forward_targets(r->self, &set);
	if (rc) {
		api->log(r->self, STARLING_LOG_ERROR, "publishing %zu targets: %s", o,
			 strerror(-rc));
		return rc;
	}
	r->published = true;
	r->last_hash = h;
	api->metric_set(r->m_targets, (double)o);
	api->metric_add(r->m_updates, 1);
	return 0;
}

static int drelabel_start(void *inst)
{
	/* The inline targets go out at once; each source's follow as the
	 * host delivers them. */
	return publish(inst);
}

static int drelabel_stop(void *inst)
{
	return 0;
}

static void drelabel_destroy(void *inst)
{
	drelabel_free(inst);
}

static struct drelabel_store *source_store(struct drelabel *r, const char *source)
{
	struct drelabel_store *v;

	for (size_t i = 0; i < r->n_sources; i++)
		if (strcmp(r->sources[i].source, source) == 0)
			return &r->sources[i];
	v = realloc(r->sources, (r->n_sources + 1) * sizeof(*v));
	if (!v)
		return NULL;
	r->sources = v;
	drelabel_store_init(&v[r->n_sources]);
	v[r->n_sources].source = strdup(source);
	if (!v[r->n_sources].source)
		return NULL;
	return &v[r->n_sources++];
}

static int drelabel_receive_targets(void *inst, const char *source,
				    const struct starling_target_set *set)
{
	struct drelabel *r = inst;
	struct drelabel_store *s = source_store(r, source);
	int rc = 0;

	if (!s)
		return -ENOMEM;
	drelabel_store_clear(s);
	for (size_t i = 0; i < set->n_targets && !rc; i++) {
		const struct starling_target *t = &set->targets[i];

		starling_lset_clear(&r->ls);
		for (size_t j = 0; j < t->n_labels && !rc; j++)
			rc = starling_lset_append(&r->ls, t->labels[j].name,
						  strlen(t->labels[j].name), t->labels[j].value,
						  strlen(t->labels[j].value));
		if (!rc)
			rc = starling_lset_finish(&r->ls);
		if (!rc)
			rc = relabel_into(r, s);
	}
	if (!rc)
		rc = drelabel_store_seal(s);
	if (rc) {
		/* Keep nothing half-built from this source. */
		drelabel_store_clear(s);
		drelabel_store_seal(s);
		r->api->log(r->self, STARLING_LOG_ERROR, "relabelling %zu targets from %s: %s",
			    set->n_targets, source, strerror(-rc));
		publish(r);
		return rc;
	}
	return publish(r);
}

static int drelabel_list_targets(void *inst, starling_target_emit_fn emit, void *ctx)
{
	struct drelabel *r = inst;

	for (size_t i = 0; i < r->n_all; i++) {
		struct starling_target_info ti = {
		    .labels = r->all[i].labels,
		    .n_labels = r->all[i].n_labels,
		};

		emit(ctx, &ti);
	}
	return 0;
}

const struct starling_component_type discovery_relabel_type = {
    STARLING_TYPE_HEAD,
    .name = "discovery.relabel",
    .help = "Relabel discovered targets with rule blocks and publish the kept ones",
    .accepts = STARLING_ACCEPTS_TARGETS,
    .produces = STARLING_ACCEPTS_TARGETS,
    .schema = schema,
    .create = drelabel_create,
    .update = NULL,
    .start = drelabel_start,
    .stop = drelabel_stop,
    .destroy = drelabel_destroy,
    .list_targets = drelabel_list_targets,
    .receive_targets = drelabel_receive_targets,
};
