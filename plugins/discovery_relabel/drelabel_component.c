/*
 * discovery.relabel component: relabels every target of its `targets` list
 * (inline targets and the latest set of every named producer, merged in
 * list order by the SDK's starling_target_list) with the `rule` blocks, top
 * to bottom, and publishes the targets that were kept as its own target
 * set. As Alloy internal/component/discovery/relabel: no rules is a
 * pass-through, and the whole output is recomputed on every input.
 */
#include "drelabel.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <starling/target_set.h>
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
	struct starling_target_list *in; /* inline targets + each source's latest set */
	struct drelabel_store out;	 /* the kept targets, relabelled */
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
	starling_target_list_free(r->in);
	drelabel_store_free(&r->out);
	free(r);
}

/* Relabel every input target into r->out. 0 or a negative errno (then
 * r->out is empty). */
static int recompute(struct drelabel *r)
{
	size_t n = starling_target_list_count(r->in);
	int rc = 0;

	drelabel_store_clear(&r->out);
	for (size_t i = 0; i < n && !rc; i++) {
		const struct starling_target *t = starling_target_list_get(r->in, i);
		int kept;

		starling_lset_clear(&r->ls);
		for (size_t j = 0; j < t->n_labels && !rc; j++)
			rc = starling_lset_append(&r->ls, t->labels[j].name,
						  strlen(t->labels[j].name), t->labels[j].value,
						  strlen(t->labels[j].value));
		if (!rc)
			rc = starling_lset_finish(&r->ls);
		if (rc)
			break;
		kept = starling_relabel_apply(r->rules, &r->ls, &r->scratch);
		r->out.n_in++;
		if (kept < 0)
			rc = kept;
		else if (kept)
			rc = drelabel_store_add(&r->out, &r->ls);
	}
	if (rc) /* nothing half-built */
		drelabel_store_clear(&r->out);
	if (drelabel_store_seal(&r->out) && !rc)
		rc = -ENOMEM;
	return rc;
}

/* Publish r->out unless it equals the last published set. */
static int publish(struct drelabel *r)
{
	const struct starling_host_api *api = r->api;
	struct starling_target_set set = {r->out.targets, r->out.n_targets};
	uint64_t h;
	int rc;

	api->metric_set(r->m_in, (double)r->out.n_in);
	api->metric_set(r->m_dropped, (double)(r->out.n_in - r->out.n_targets));
	h = starling_target_set_hash(&set);
	if (r->published && h == r->last_hash)
		return 0;
	rc = api->forward_targets(r->self, &set);
	if (rc) {
		api->log(r->self, STARLING_LOG_ERROR, "publishing %zu targets: %s", set.n_targets,
			 strerror(-rc));
		return rc;
	}
	r->published = true;
	r->last_hash = h;
	api->metric_set(r->m_targets, (double)set.n_targets);
	api->metric_add(r->m_updates, 1);
	return 0;
}

static int recompute_and_publish(struct drelabel *r)
{
	int rc = recompute(r);

	if (rc) {
		r->api->log(r->self, STARLING_LOG_ERROR, "relabelling %zu targets: %s",
			    starling_target_list_count(r->in), strerror(-rc));
		return rc;
	}
	return publish(r);
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
	drelabel_store_init(&r->out);
	rc = starling_relabel_rules_from_config(api, api->config_lookup(cfg, "rule"), &r->rules,
						err, sizeof(err));
	if (!rc)
		rc = starling_target_list_new(api, api->config_lookup(cfg, "targets"), &r->in, err,
					      sizeof(err));
	if (rc) {
		api->log(self, STARLING_LOG_ERROR, "%s", err[0] ? err : strerror(-rc));
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

static int drelabel_start(void *inst)
{
	/* The inline targets go out at once; each source's follow as the
	 * host delivers them. */
	return recompute_and_publish(inst);
}

static int drelabel_stop(void *inst)
{
	return 0;
}

static void drelabel_destroy(void *inst)
{
	drelabel_free(inst);
}

static int drelabel_receive_targets(void *inst, const char *source,
				    const struct starling_target_set *set)
{
	struct drelabel *r = inst;
	int rc = starling_target_list_update(r->in, source, set);

	if (rc) {
		r->api->log(r->self, STARLING_LOG_ERROR, "target set from %s refused: %s", source,
			    strerror(-rc));
		return rc;
	}
	return recompute_and_publish(r);
}

static int drelabel_list_targets(void *inst, starling_target_emit_fn emit, void *ctx)
{
	struct drelabel *r = inst;

	for (size_t i = 0; i < r->out.n_targets; i++) {
		struct starling_target_info ti = {
		    .labels = r->out.targets[i].labels,
		    .n_labels = r->out.targets[i].n_labels,
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
