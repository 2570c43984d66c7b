/*
 * JSON introspection of the component runtime for the HTTP API:
 * GET /api/v0/components and /api/v0/components/{id}/targets.
 */
#include "runtime_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

static const char *const state_names[] = {"new", "created", "running", "stopped", "failed"};

static const char *health_word(struct starling_component *c)
{
	enum inst_state s = __atomic_load_n(&c->state, __ATOMIC_ACQUIRE);

	if (s == INST_FAILED)
		return "failed";
	if (s != INST_RUNNING)
		return "stopped";
	return c->healthy ? "healthy" : "unhealthy";
}

char *runtime_components_json(struct runtime *rt)
{
	cJSON *arr = cJSON_CreateArray();
	char *out;

	if (!arr)
		return NULL;
	pthread_rwlock_rdlock(&rt->graph);
	for (size_t i = 0; i < rt->n_insts; i++) {
		struct starling_component *c = rt->insts[i];
		cJSON *o = cJSON_CreateObject(), *fw;

		if (!o)
			break;
		cJSON_AddItemToArray(arr, o);
		cJSON_AddStringToObject(o, "id", c->id);
		cJSON_AddStringToObject(o, "type", c->type_name);
		pthread_mutex_lock(&c->lock);
		cJSON_AddStringToObject(o, "health", health_word(c));
		cJSON_AddStringToObject(o, "state",
					state_names[__atomic_load_n(&c->state, __ATOMIC_ACQUIRE)]);
		cJSON_AddStringToObject(o, "message", c->health_msg ? c->health_msg : "");
		cJSON_AddNumberToObject(o, "owned_targets", (double)c->owned);
		cJSON_AddNumberToObject(o, "total_targets", (double)c->total);
		pthread_mutex_unlock(&c->lock);
		cJSON_AddBoolToObject(o, "has_targets", c->type->list_targets != NULL);
		if (runtime_targets_count(c) >= 0) /* a producer of target sets */
			cJSON_AddNumberToObject(o, "published_targets",
						(double)runtime_targets_count(c));
		cJSON_AddStringToObject(o, "config_where", cfg_where(c->cfg));
		fw = cJSON_AddArrayToObject(o, "forward_to");
		for (size_t k = 0; fw && k < c->n_fwd; k++)
			cJSON_AddItemToArray(fw, cJSON_CreateString(c->fwd[k]->id));
	}
	pthread_rwlock_unlock(&rt->graph);
	out = cJSON_PrintUnformatted(arr);
	cJSON_Delete(arr);
	return out;
}

struct emit_ctx {
	cJSON *arr;
};

static void emit_target(void *ctx, const struct starling_target_info *t)
{
	struct emit_ctx *e = ctx;
	cJSON *o, *l;
	char key[24];

	if (!t)
		return;
	o = cJSON_CreateObject();
	if (!o)
		return;
	cJSON_AddItemToArray(e->arr, o);
	l = cJSON_AddObjectToObject(o, "labels");
	for (size_t i = 0; l && t->labels && i < t->n_labels; i++)
		if (t->labels[i].name && t->labels[i].value)
			cJSON_AddStringToObject(l, t->labels[i].name, t->labels[i].value);
	snprintf(key, sizeof(key), "0x%016llx", (unsigned long long)t->key);
	cJSON_AddStringToObject(o, "key", key);
	if (t->owner)
		cJSON_AddStringToObject(o, "owner", t->owner);
	else
		cJSON_AddNullToObject(o, "owner");
	cJSON_AddBoolToObject(o, "owned_here", t->owned_here);
	cJSON_AddNumberToObject(o, "last_scrape_ms", (double)t->last_scrape_ms);
	cJSON_AddNumberToObject(o, "last_duration_seconds", (double)t->last_duration_us / 1e6);
	cJSON_AddStringToObject(o, "health",
				t->health == STARLING_TARGET_UP	    ? "up"
				: t->health == STARLING_TARGET_DOWN ? "down"
								    : "unknown");
	cJSON_AddStringToObject(o, "last_error", t->last_error ? t->last_error : "");
}

int runtime_targets_json(struct runtime *rt, const char *id, char **out)
{
	struct starling_component *c;
	struct emit_ctx e;
	cJSON *root;
	int ret = 0;

	*out = NULL;
	pthread_rwlock_rdlock(&rt->graph);
	c = find_in(rt->insts, rt->n_insts, id);
	if (!c) {
		pthread_rwlock_unlock(&rt->graph);
		return -ENOENT;
	}
	root = cJSON_CreateObject();
	e.arr = root ? cJSON_AddArrayToObject(root, "targets") : NULL;
	if (!e.arr) {
		pthread_rwlock_unlock(&rt->graph);
		cJSON_Delete(root);
		return -ENOMEM;
	}
	cJSON_AddStringToObject(root, "component_id", c->id);
	if (c->type->list_targets) {
		pthread_mutex_lock(&c->cb_lock);
		if (__atomic_load_n(&c->state, __ATOMIC_ACQUIRE) == INST_RUNNING) {
			int64_t t0 = mono_ns();

			CB_RUN(c, "list_targets",
			       ret = c->type->list_targets(c->inst, emit_target, &e));
			stat_add(c, CB_LIST_TARGETS, t0, ret);
		}
		pthread_mutex_unlock(&c->cb_lock);
	}
	pthread_rwlock_unlock(&rt->graph);
	if (ret < 0)
		cJSON_AddStringToObject(root, "error", strerror(-ret));
	*out = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	return *out ? 0 : -ENOMEM;
}
