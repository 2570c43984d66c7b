/*
 * The cluster-wide targets view: local rows from the runtime, the owners'
 * views fetched from their advertised HTTP addresses (bounded), filters and
 * a stable order. See targets_view.h.
 */
#include "targets_view.h"
#include "log.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <starling/http.h>

#define MAX_FETCH 64

enum fetch_result {
	FETCH_OK,
	FETCH_NO_ADDRESS, /* not a current member, or no starling_http tag */
	FETCH_TIMEOUT,
	FETCH_TOO_LARGE,
	FETCH_STATUS,
	FETCH_MALFORMED,
	FETCH_TRANSPORT,
	FETCH__N
};

static const char *const result_names[FETCH__N] = {
    "ok", "no_address", "timeout", "too_large", "http_status", "malformed", "transport",
};

static uint64_t fetch_counts[FETCH__N];

struct fetch {
	const char *name;
	char url[256];
	bool done;
	enum fetch_result result;
	char why[96];
	cJSON *answer; /* the owner's {"targets":[...]} */
};

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *str_of(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const char *label_of(const cJSON *row, const char *k)
{
	return str_of(cJSON_GetObjectItemCaseSensitive(row, "labels"), k);
}

static void fetch_done(void *arg, const struct starling_http_response *r)
{
	struct fetch *f = arg;

	f->done = true;
	if (r->error == -ECANCELED) { /* cut at the deadline */
		f->result = FETCH_TIMEOUT;
		snprintf(f->why, sizeof(f->why), "timed out");
		return;
	}
	if (r->error) {
		f->result = r->error == -ETIMEDOUT ? FETCH_TIMEOUT
			    : r->error == -EFBIG   ? FETCH_TOO_LARGE
						   : FETCH_TRANSPORT;
		snprintf(f->why, sizeof(f->why), "%s",
			 f->result == FETCH_TIMEOUT	 ? "timed out"
			 : f->result == FETCH_TOO_LARGE	 ? "answer too large"
			 : r->error_msg && *r->error_msg ? r->error_msg
							 : strerror(-r->error));
		return;
	}
	if (r->status != 200) {
		f->result = FETCH_STATUS;
		snprintf(f->why, sizeof(f->why), "HTTP status %ld", r->status);
		return;
	}
	if (targets_view_parse_answer((const char *)r->body, r->body_len, &f->answer)) {
		f->result = FETCH_MALFORMED;
		snprintf(f->why, sizeof(f->why), "malformed answer");
		return;
	}
	f->result = FETCH_OK;
}

/* Fetch every owner's local view in parallel, within TARGETS_VIEW_FETCH_MS. */
static void fetch_all(struct cluster *cl, struct fetch *fs, size_t n)
{
	struct starling_http_client *hc = NULL;
	int64_t deadline = mono_ms() + TARGETS_VIEW_FETCH_MS;
	size_t pending = 0;

	if (n && starling_http_client_new(NULL, &hc))
		hc = NULL;
	for (size_t i = 0; i < n; i++) {
		struct starling_http_request req = {0};
		char addr[160];
		int r = cluster_member_http(cl, fs[i].name, addr, sizeof(addr));

		if (r) {
			fs[i].done = true;
			fs[i].result = FETCH_NO_ADDRESS;
			snprintf(fs[i].why, sizeof(fs[i].why), "%s",
				 r == -EHOSTDOWN       ? "not a live member"
				 : r == -EADDRNOTAVAIL ? "advertises no HTTP address"
						       : "not a member");
			continue;
		}
		snprintf(fs[i].url, sizeof(fs[i].url), "http://%s/api/v0/targets?scope=local",
			 addr);
		req.url = fs[i].url;
		req.timeout_ms = TARGETS_VIEW_FETCH_MS;
		req.body_limit = TARGETS_VIEW_MAX_BYTES;
		req.done = fetch_done;
		req.arg = &fs[i];
		if (!hc || starling_http_submit(hc, &req)) {
			fs[i].done = true;
			fs[i].result = FETCH_TRANSPORT;
			snprintf(fs[i].why, sizeof(fs[i].why), "cannot send the request");
			continue;
		}
		pending++;
	}
	while (hc && starling_http_pending(hc) && mono_ms() < deadline)
		starling_http_run(hc, (int)(deadline - mono_ms()));
	/* Whatever is still running is cut (each done() gets -ECANCELED). */
	starling_http_client_free(hc);
	for (size_t i = 0; i < n; i++) {
		if (!fs[i].done || (fs[i].result == FETCH_TRANSPORT && !fs[i].why[0])) {
			fs[i].result = FETCH_TIMEOUT;
			snprintf(fs[i].why, sizeof(fs[i].why), "timed out");
		}
		__atomic_add_fetch(&fetch_counts[fs[i].result], 1, __ATOMIC_RELAXED);
		if (fs[i].result != FETCH_OK)
			log_debug("targets view: no answer from %s: %s", fs[i].name, fs[i].why);
	}
	(void)pending;
}

int targets_view_parse_answer(const char *body, size_t len, cJSON **out)
{
	cJSON *j = cJSON_ParseWithLength(body, len);

	*out = NULL;
	if (!cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(j, "targets"))) {
		cJSON_Delete(j);
		return -EBADMSG;
	}
	*out = j;
	return 0;
}

/* The owner's row for (component, key) in its answer, or NULL. */
static const cJSON *owner_row(const cJSON *answer, const char *comp, const char *key)
{
	const cJSON *t;

	if (!comp || !key)
		return NULL;
	cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(answer, "targets"))
	{
		const char *c = str_of(t, "component"), *k = str_of(t, "key");

		if (c && k && !strcmp(c, comp) && !strcmp(k, key))
			return t;
	}
	return NULL;
}

static void copy_field(cJSON *dst, const cJSON *src, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(src, k);

	cJSON *d;

	if (!v || (!cJSON_IsNumber(v) && !cJSON_IsString(v)))
		return;
	d = cJSON_Duplicate(v, false);
	if (!d)
		return;
	if (!cJSON_GetObjectItemCaseSensitive(dst, k))
		cJSON_AddItemToObject(dst, k, d);
	else if (!cJSON_ReplaceItemInObjectCaseSensitive(dst, k, d))
		cJSON_Delete(d);
}

bool targets_view_fill_row(cJSON *row, const cJSON *answer)
{
	const cJSON *o = owner_row(answer, str_of(row, "component"), str_of(row, "key"));

	if (!o)
		return false;
	cJSON_DeleteItemFromObjectCaseSensitive(row, "view");
	cJSON_AddStringToObject(row, "view", "owner");
	copy_field(row, o, "last_scrape_ms");
	copy_field(row, o, "last_duration_seconds");
	copy_field(row, o, "health");
	copy_field(row, o, "last_error");
	return true;
}

static bool contains_ci(const char *hay, const char *needle)
{
	size_t n = strlen(needle);

	for (; hay && *hay; hay++)
		if (!strncasecmp(hay, needle, n))
			return true;
	return false;
}

static bool row_matches(const cJSON *row, const struct targets_filter *f)
{
	const char *h = str_of(row, "health");

	if (!f)
		return true;
	if (f->unhealthy && h && !strcmp(h, "up"))
		return false;
	if (f->job && *f->job && (!label_of(row, "job") || strcmp(label_of(row, "job"), f->job)))
		return false;
	if (f->q && *f->q) {
		const cJSON *l;
		bool hit = contains_ci(str_of(row, "owner"), f->q) ||
			   contains_ci(str_of(row, "last_error"), f->q) ||
			   contains_ci(str_of(row, "component"), f->q);

		cJSON_ArrayForEach(l, cJSON_GetObjectItemCaseSensitive(row, "labels"))
		{
			hit = hit || contains_ci(l->string, f->q) ||
			      (cJSON_IsString(l) && contains_ci(l->valuestring, f->q));
		}
		if (!hit)
			return false;
	}
	return true;
}

static int cmp_str(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "");
}

static int row_cmp(const void *pa, const void *pb)
{
	const cJSON *a = *(const cJSON *const *)pa, *b = *(const cJSON *const *)pb;
	int r = cmp_str(label_of(a, "job"), label_of(b, "job"));

	if (!r)
		r = cmp_str(label_of(a, "instance"), label_of(b, "instance"));
	if (!r)
		r = cmp_str(str_of(a, "component"), str_of(b, "component"));
	if (!r)
		r = cmp_str(str_of(a, "key"), str_of(b, "key"));
	return r;
}

static int node_cmp(const void *pa, const void *pb)
{
	const cJSON *a = *(const cJSON *const *)pa, *b = *(const cJSON *const *)pb;

	return cmp_str(str_of(a, "name"), str_of(b, "name"));
}

static int str_ptr_cmp(const void *pa, const void *pb)
{
	return strcmp(*(const char *const *)pa, *(const char *const *)pb);
}

/* Replace arr's items by themselves in cmp order (stable: ties keep no
 * order, but every comparison ends on a unique key). */
static void sort_array(cJSON *arr, int (*cmp)(const void *, const void *))
{
	int n = cJSON_GetArraySize(arr);
	cJSON **v;

	if (n < 2)
		return;
	v = calloc((size_t)n, sizeof(*v));
	if (!v)
		return;
	for (int i = n; i-- > 0;)
		v[i] = cJSON_DetachItemFromArray(arr, i);
	qsort(v, (size_t)n, sizeof(*v), cmp);
	for (int i = 0; i < n; i++)
		cJSON_AddItemToArray(arr, v[i]);
	free(v);
}

/* Local rows of every component that lists targets, tagged with it. */
static void add_local_rows(struct runtime *rt, const cJSON *comps, cJSON *rows,
			   const struct targets_filter *f)
{
	const cJSON *c;

	cJSON_ArrayForEach(c, comps)
	{
		const char *id = str_of(c, "id");
		char *s = NULL;
		cJSON *j, *t;

		if (!id || !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "has_targets")))
			continue;
		if (f && f->component && *f->component && strcmp(f->component, id))
			continue;
		if (runtime_targets_json(rt, id, &s))
			continue;
		j = cJSON_Parse(s);
		free(s);
		t = cJSON_GetObjectItemCaseSensitive(j, "targets");
		while (cJSON_IsArray(t) && cJSON_GetArraySize(t)) {
			cJSON *row = cJSON_DetachItemFromArray(t, 0);

			cJSON_AddStringToObject(row, "component", id);
			cJSON_AddItemToArray(rows, row);
		}
		cJSON_Delete(j);
	}
}

/* Fill rows owned elsewhere from their owners' answers; returns the
 * fetches (with their outcome) in *out, count in *n_out. */
static struct fetch *merge_owners(struct cluster *cl, const char *self, cJSON *rows, size_t *n_out)
{
	struct fetch *fs = calloc(MAX_FETCH, sizeof(*fs));
	size_t n = 0;
	cJSON *r;

	*n_out = 0;
	if (!fs)
		return NULL;
	cJSON_ArrayForEach(r, rows)
	{
		const char *owner = str_of(r, "owner");
		size_t i;

		if (!owner || cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "owned_here")) ||
		    !strcmp(owner, self))
			continue;
		for (i = 0; i < n && strcmp(fs[i].name, owner); i++)
			;
		if (i == n && n < MAX_FETCH)
			fs[n++].name = owner;
	}
	fetch_all(cl, fs, n);
	cJSON_ArrayForEach(r, rows)
	{
		const char *owner = str_of(r, "owner");
		const cJSON *o = NULL;
		size_t i;

		if (!owner || cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "owned_here")) ||
		    !strcmp(owner, self)) {
			cJSON_AddStringToObject(r, "view", "local");
			continue;
		}
		for (i = 0; i < n && strcmp(fs[i].name, owner); i++)
			;
		if (i < n && fs[i].result == FETCH_OK)
			o = owner_row(fs[i].answer, str_of(r, "component"), str_of(r, "key"));
		if (!o) {
			cJSON_AddStringToObject(r, "view", "no answer");
			cJSON_AddStringToObject(r, "view_error",
						i < n && fs[i].result != FETCH_OK
						    ? fs[i].why
						    : "the owner does not list this target");
			continue;
		}
		targets_view_fill_row(r, fs[i].answer);
	}
	*n_out = n;
	return fs;
}

static cJSON *nodes_of(struct cluster *cl, const char *self, const struct fetch *fs, size_t n)
{
	char *pj = cl ? cluster_peers_json(cl) : NULL;
	cJSON *peers = pj ? cJSON_Parse(pj) : NULL, *out = cJSON_CreateArray(), *p;

	free(pj);
	cJSON_ArrayForEach(p, peers)
	{
		const char *name = str_of(p, "name");
		cJSON *o = cJSON_CreateObject();
		const char *answer = "";

		if (!o || !name)
			continue;
		for (size_t i = 0; i < n; i++)
			if (!strcmp(fs[i].name, name))
				answer = fs[i].result == FETCH_OK ? "ok" : fs[i].why;
		if (!strcmp(name, self))
			answer = "this node";
		cJSON_AddStringToObject(o, "name", name);
		cJSON_AddStringToObject(o, "state", str_of(p, "state") ? str_of(p, "state") : "");
		cJSON_AddStringToObject(o, "address",
					str_of(p, "address") ? str_of(p, "address") : "");
		cJSON_AddStringToObject(o, "http", str_of(p, "http") ? str_of(p, "http") : "");
		cJSON_AddStringToObject(o, "answer", answer);
		cJSON_AddItemToArray(out, o);
	}
	cJSON_Delete(peers);
	sort_array(out, node_cmp);
	return out;
}

static cJSON *jobs_of(const cJSON *rows)
{
	const char *v[1024];
	size_t n = 0;
	const cJSON *r;
	cJSON *out = cJSON_CreateArray();

	cJSON_ArrayForEach(r, rows)
	{
		const char *j = label_of(r, "job");
		size_t i;

		if (!j)
			continue;
		for (i = 0; i < n && strcmp(v[i], j); i++)
			;
		if (i == n && n < sizeof(v) / sizeof(v[0]))
			v[n++] = j;
	}
	qsort(v, n, sizeof(v[0]), str_ptr_cmp);
	for (size_t i = 0; out && i < n; i++)
		cJSON_AddItemToArray(out, cJSON_CreateString(v[i]));
	return out;
}

cJSON *targets_view_build(struct runtime *rt, struct cluster *cl, bool local_only,
			  const struct targets_filter *f)
{
	const char *self = cl ? cluster_self_name(cl) : "";
	char *cj = runtime_components_json(rt);
	cJSON *root = cJSON_CreateObject(), *comps = cj ? cJSON_Parse(cj) : NULL;
	cJSON *rows = cJSON_CreateArray(), *shown;
	struct fetch *fs = NULL;
	size_t n_fs = 0;
	int n;

	free(cj);
	if (!root || !rows || !comps) {
		cJSON_Delete(root);
		cJSON_Delete(rows);
		cJSON_Delete(comps);
		return NULL;
	}
	cJSON_AddStringToObject(root, "node", self);
	cJSON_AddNumberToObject(root, "generated_ms", (double)wall_ms());
	add_local_rows(rt, comps, rows, f);
	if (!local_only && cl)
		fs = merge_owners(cl, self, rows, &n_fs);
	if (!local_only)
		cJSON_AddItemToObject(root, "nodes", nodes_of(cl, self, fs, n_fs));
	cJSON_AddItemToObject(root, "jobs", jobs_of(rows));
	/* Filters apply to the owners' views (health comes from them). */
	shown = cJSON_CreateArray();
	n = cJSON_GetArraySize(rows);
	for (int i = 0; shown && i < n; i++) {
		cJSON *r = cJSON_DetachItemFromArray(rows, 0);

		if (row_matches(r, f))
			cJSON_AddItemToArray(shown, r);
		else
			cJSON_Delete(r);
	}
	sort_array(shown, row_cmp);
	cJSON_AddItemToObject(root, "targets", shown);
	cJSON_AddItemToObject(root, "components", comps);
	for (size_t i = 0; i < n_fs; i++)
		cJSON_Delete(fs[i].answer);
	free(fs);
	cJSON_Delete(rows);
	return root;
}

void targets_view_write_metrics(FILE *out)
{
	fputs("# HELP starling_targets_view_fetches_total Fetches of an owner's targets view "
	      "for the cluster-wide targets page, by result.\n"
	      "# TYPE starling_targets_view_fetches_total counter\n",
	      out);
	for (int i = 0; i < FETCH__N; i++)
		fprintf(out, "starling_targets_view_fetches_total{result=\"%s\"} %llu\n",
			result_names[i],
			(unsigned long long)__atomic_load_n(&fetch_counts[i], __ATOMIC_RELAXED));
}
