/*
 * Kubernetes object store: objects in an array, indexed by namespace/name
 * with an open-addressing table of positions + 1 (0 = empty slot), and the
 * pruning of fields nothing reads (see starling/k8s.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

#include <starling/k8s.h>

static const char *meta_str(const cJSON *o, const char *key)
{
	const cJSON *md = cJSON_GetObjectItemCaseSensitive(o, "metadata");

	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, key));
}

static bool same_key(const cJSON *a, const char *ns, const char *name)
{
	const char *ans = meta_str(a, "namespace"), *aname = meta_str(a, "name");

	return aname && strcmp(aname, name) == 0 && strcmp(ans ? ans : "", ns ? ns : "") == 0;
}

static uint64_t key_hash(const char *ns, const char *name)
{
	XXH3_state_t st;

	XXH3_64bits_reset(&st);
	if (ns)
		XXH3_64bits_update(&st, ns, strlen(ns));
	XXH3_64bits_update(&st, "/", 1);
	XXH3_64bits_update(&st, name, strlen(name));
	return XXH3_64bits_digest(&st);
}

/* Slot holding item position pos, or of (h, ns, name) when pos < 0;
 * -1 if absent. */
static ssize_t slot_find(const struct starling_k8s_store *s, uint64_t h, const char *ns,
			 const char *name)
{
	size_t mask = s->n_slots - 1;

	if (!s->n_slots)
		return -1;
	for (size_t i = h & mask;; i = (i + 1) & mask) {
		uint32_t p = s->slots[i];

		if (!p)
			return -1;
		if (s->v[p - 1].hash == h && same_key(s->v[p - 1].obj, ns, name))
			return (ssize_t)i;
	}
}

static void slot_insert(struct starling_k8s_store *s, size_t pos)
{
	size_t mask = s->n_slots - 1, i = s->v[pos].hash & mask;

	while (s->slots[i])
		i = (i + 1) & mask;
	s->slots[i] = (uint32_t)(pos + 1);
}

static int reindex(struct starling_k8s_store *s, size_t want)
{
	size_t n = 16;
	uint32_t *slots;

	while (n < want * 2)
		n *= 2;
	slots = calloc(n, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	free(s->slots);
	s->slots = slots;
	s->n_slots = n;
	for (size_t i = 0; i < s->n; i++)
		slot_insert(s, i);
	return 0;
}

/* Empty slot i, shifting later entries of its probe run back. */
static void slot_remove(struct starling_k8s_store *s, size_t i)
{
	size_t mask = s->n_slots - 1, j = i;

	for (size_t k = (j + 1) & mask; s->slots[k]; k = (k + 1) & mask) {
		size_t want = s->v[s->slots[k] - 1].hash & mask;

		/* Leave it if its home lies cyclically in (j, k]. */
		if ((j < k) ? (want > j && want <= k) : (want > j || want <= k))
			continue;
		s->slots[j] = s->slots[k];
		j = k;
	}
	s->slots[j] = 0;
}

static ssize_t store_find(const struct starling_k8s_store *s, const char *ns, const char *name)
{
	ssize_t i = slot_find(s, key_hash(ns, name), ns, name);

	return i < 0 ? -1 : (ssize_t)s->slots[i] - 1;
}

int starling_k8s_store_put(struct starling_k8s_store *s, cJSON *obj, int src)
{
	const char *name = meta_str(obj, "name"), *ns = meta_str(obj, "namespace");
	uint64_t h;
	ssize_t i;

	if (!name) {
		cJSON_Delete(obj);
		return -EINVAL;
	}
	h = key_hash(ns, name);
	i = slot_find(s, h, ns, name);
	if (i >= 0) {
		struct starling_k8s_item *it = &s->v[s->slots[i] - 1];

		cJSON_Delete(it->obj);
		it->obj = obj;
		it->src = src;
		return 0;
	}
	if (s->n == s->cap || s->n == UINT32_MAX - 1) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		struct starling_k8s_item *v =
		    s->n < UINT32_MAX - 1 ? realloc(s->v, cap * sizeof(*v)) : NULL;

		if (!v) {
			cJSON_Delete(obj);
			return -ENOMEM;
		}
		s->v = v;
		s->cap = cap;
	}
	if ((s->n + 1) * 2 > s->n_slots && reindex(s, s->n + 1)) {
		cJSON_Delete(obj);
		return -ENOMEM;
	}
	s->v[s->n].obj = obj;
	s->v[s->n].src = src;
	s->v[s->n].hash = h;
	slot_insert(s, s->n);
	s->n++;
	return 0;
}

int starling_k8s_store_del(struct starling_k8s_store *s, const cJSON *obj)
{
	const char *name = meta_str(obj, "name"), *ns = meta_str(obj, "namespace");
	ssize_t i, last;
	size_t pos;

	if (!name)
		return -ENOENT;
	i = slot_find(s, key_hash(ns, name), ns, name);
	if (i < 0)
		return -ENOENT;
	pos = s->slots[i] - 1;
	slot_remove(s, (size_t)i);
	cJSON_Delete(s->v[pos].obj);
	if (pos != s->n - 1) {
		/* The last item moves into the hole: repoint its slot. */
		struct starling_k8s_item *l = &s->v[s->n - 1];

		last =
		    slot_find(s, l->hash, meta_str(l->obj, "namespace"), meta_str(l->obj, "name"));
		s->v[pos] = *l;
		if (last >= 0)
			s->slots[last] = (uint32_t)(pos + 1);
	}
	s->n--;
	return 0;
}

void starling_k8s_store_clear(struct starling_k8s_store *s, int src)
{
	size_t k = 0;

	for (size_t i = 0; i < s->n; i++) {
		if (src >= 0 && s->v[i].src != src) {
			s->v[k++] = s->v[i];
			continue;
		}
		cJSON_Delete(s->v[i].obj);
	}
	s->n = k;
	if (src < 0) {
		free(s->v);
		free(s->slots);
		memset(s, 0, sizeof(*s));
		return;
	}
	if (s->n_slots) {
		memset(s->slots, 0, s->n_slots * sizeof(*s->slots));
		for (size_t i = 0; i < s->n; i++)
			slot_insert(s, i);
	}
}

const cJSON *starling_k8s_store_get(const struct starling_k8s_store *s, const char *ns,
				    const char *name)
{
	ssize_t i = store_find(s, ns, name);

	return i >= 0 ? s->v[i].obj : NULL;
}

static bool keep_key(const cJSON *e, const char *const *keep, size_t n)
{
	for (size_t j = 0; j < n; j++)
		if (e->string && strcmp(e->string, keep[j]) == 0)
			return true;
	return false;
}

static void keep_only(cJSON *o, const char *const *keep, size_t n)
{
	cJSON *e, *next;

	for (e = o ? o->child : NULL; e; e = next) {
		next = e->next;
		if (!keep_key(e, keep, n))
			cJSON_Delete(cJSON_DetachItemViaPointer(o, e));
	}
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* A large cluster's pods carry managedFields, volumes, env and status
 * details that would otherwise dominate the memory use. */
void starling_k8s_prune(cJSON *obj, enum starling_k8s_kind kind)
{
	static const char *const spec_keep[] = {"containers", "initContainers", "nodeName"};
	static const char *const status_keep[] = {
	    "phase", "podIP", "hostIP", "conditions", "containerStatuses", "initContainerStatuses"};
	static const char *const cont_keep[] = {"name", "image", "ports"};
	static const char *const cstat_keep[] = {"name", "containerID"};
	cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata"), *c;

	cJSON_DeleteItemFromObjectCaseSensitive(md, "managedFields");
	if (kind != STARLING_K8S_POD)
		return;
	cJSON *spec = cJSON_GetObjectItemCaseSensitive(obj, "spec");
	cJSON *status = cJSON_GetObjectItemCaseSensitive(obj, "status");

	if (cJSON_IsObject(spec))
		keep_only(spec, spec_keep, N(spec_keep));
	if (cJSON_IsObject(status))
		keep_only(status, status_keep, N(status_keep));
	for (int l = 0; l < 2; l++) {
		cJSON_ArrayForEach(
		    c, cJSON_GetObjectItemCaseSensitive(spec, l ? "initContainers" : "containers"))
		{
			if (cJSON_IsObject(c))
				keep_only(c, cont_keep, N(cont_keep));
		}
		cJSON_ArrayForEach(c,
				   cJSON_GetObjectItemCaseSensitive(
				       status, l ? "initContainerStatuses" : "containerStatuses"))
		{
			if (cJSON_IsObject(c))
				keep_only(c, cstat_keep, N(cstat_keep));
		}
	}
}
