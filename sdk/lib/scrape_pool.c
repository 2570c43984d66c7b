/* Shared plumbing of the scraping components: see starling/scrape_pool.h. */
#include <starling/scrape_pool.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <starling/scrape.h>
#include <starling/scrape_sched.h>

int starling_scrape_scheme(const struct starling_host_api *api, const starling_config *cfg,
			   char **out, char *err, size_t errlen)
{
	const char *s;

	*out = strdup(api->config_string(cfg, "scheme", &s) ? "http" : s);
	if (!*out)
		return -ENOMEM;
	if (strcmp(*out, "http") && strcmp(*out, "https")) {
		snprintf(err, errlen, "%s: scheme must be http or https, not \"%s\"",
			 api->config_where(cfg), *out);
		return -EINVAL;
	}
	return 0;
}

/* Append one name/value; -ENOMEM. */
static int param_add(struct starling_scrape_param **p, size_t *n, size_t *cap, const char *name,
		     const char *value)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 8;
		struct starling_scrape_param *np = realloc(*p, nc * sizeof(*np));

		if (!np)
			return -ENOMEM;
		*p = np;
		*cap = nc;
	}
	(*p)[*n].name = strdup(name);
	(*p)[*n].value = strdup(value);
	(*n)++;
	return (*p)[*n - 1].name && (*p)[*n - 1].value ? 0 : -ENOMEM;
}

int starling_scrape_params(const struct starling_host_api *api, const starling_config *cfg,
			   struct starling_scrape_param **out, size_t *n_out, char *err,
			   size_t errlen)
{
	const starling_config *node = api->config_lookup(cfg, "params");
	size_t n = node ? api->config_count(node) : 0, cap = 0;
	int rc = 0;

	*out = NULL;
	*n_out = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		const starling_config *e = api->config_child(node, i);
		const char *name = api->config_name(e), *s;
		size_t nv;

		if (!api->config_string(e, NULL, &s)) {
			rc = param_add(out, n_out, &cap, name, s);
			continue;
		}
		/* a list of strings (STARLING_CFG_F_MULTI_VALUE): every value,
		 * in order, as Prometheus' url.Values; an empty list sends none */
		nv = api->config_count(e);
		for (size_t k = 0; k < nv && !rc; k++) {
			if (api->config_string(api->config_child(e, k), NULL, &s))
				goto bad;
			rc = param_add(out, n_out, &cap, name, s);
		}
		if (!nv && (!api->config_int(e, NULL, &(int64_t){0}) ||
			    !api->config_float(e, NULL, &(double){0}) ||
			    !api->config_bool(e, NULL, &(bool){0})))
			goto bad;
		continue;
	bad:
		snprintf(err, errlen, "%s: params: %s: a string or a list of strings expected",
			 api->config_where(e), name);
		return -EINVAL;
	}
	if (rc)
		return rc;
	/* by name, values of one name in their order (insertion sort: stable,
	 * and a params map is small) */
	for (size_t i = 1; i < *n_out; i++) {
		struct starling_scrape_param v = (*out)[i];
		size_t j = i;

		for (; j > 0 && strcmp((*out)[j - 1].name, v.name) > 0; j--)
			(*out)[j] = (*out)[j - 1];
		(*out)[j] = v;
	}
	return 0;
}

void starling_scrape_params_free(struct starling_scrape_param *p, size_t n)
{
	for (size_t i = 0; p && i < n; i++) {
		free(p[i].name);
		free(p[i].value);
	}
	free(p);
}

int starling_scrape_string_list(const struct starling_host_api *api, const starling_config *cfg,
				const char *path, char ***out, size_t *n_out, char *err,
				size_t errlen)
{
	const starling_config *l = api->config_lookup(cfg, path);
	size_t n = l ? api->config_count(l) : 0;
	char **v;

	*out = NULL;
	*n_out = 0;
	if (!n)
		return 0;
	v = calloc(n, sizeof(*v));
	if (!v)
		return -ENOMEM;
	*out = v;
	for (size_t i = 0; i < n; i++) {
		const char *s;

		if (api->config_string(api->config_child(l, i), NULL, &s)) {
			snprintf(err, errlen, "%s: %s: strings expected", api->config_where(l),
				 path);
			return -EINVAL;
		}
		v[i] = strdup(s);
		if (!v[i])
			return -ENOMEM;
		(*n_out)++;
	}
	return 0;
}

void starling_scrape_strv_free(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

int starling_scrape_clustering(const struct starling_host_api *api, const starling_config *cfg,
			       bool *enabled, char ***key_labels, size_t *n_key_labels,
			       char ***exclude_labels, size_t *n_exclude_labels, char *err,
			       size_t errlen)
{
	int rc;

	api->config_bool(cfg, "clustering.enabled", enabled);
	rc = starling_scrape_string_list(api, cfg, "clustering.key_labels", key_labels,
					 n_key_labels, err, errlen);
	if (!rc)
		rc = starling_scrape_string_list(api, cfg, "clustering.exclude_labels",
						 exclude_labels, n_exclude_labels, err, errlen);
	return rc;
}

struct metric_def {
	const char *name[2]; /* by enum starling_scrape_kind */
	enum starling_self_metric_type type;
	const char *help[2];
	size_t offset;
};

#define M_OFF(f) offsetof(struct starling_scrape_metrics, f)

static const struct metric_def defs[] = {
    {{"prometheus_scrape_targets_gauge", "pyroscope_scrape_targets_gauge"},
     STARLING_SELF_GAUGE,
     {"Targets this component scrapes (configured and discovered)",
      "Scrape units (targets x enabled profile types)"},
     M_OFF(targets)},
    {{"starling_scrape_targets_owned", "starling_pyroscope_scrape_targets_owned"},
     STARLING_SELF_GAUGE,
     {"Targets this node scrapes (owned in the cluster)",
      "Scrape units this node scrapes (owned in the cluster)"},
     M_OFF(owned)},
    {{"prometheus_forwarded_samples_total", "starling_pyroscope_forwarded_profiles_total"},
     STARLING_SELF_COUNTER,
     {"Samples forwarded to the components in forward_to", "Profiles forwarded to forward_to"},
     M_OFF(forwarded)},
    {{"starling_scrapes_total", "starling_pyroscope_scrapes_total"},
     STARLING_SELF_COUNTER,
     {"Scrapes performed", "Profile scrapes performed"},
     M_OFF(scrapes)},
    {{"starling_scrape_failures_total", "starling_pyroscope_scrape_failures_total"},
     STARLING_SELF_COUNTER,
     {"Scrapes that failed (up = 0)", "Profile scrapes that failed (error, non-2xx, not pprof)"},
     M_OFF(failures)},
    {{"starling_scrape_slots_missed_total", "starling_pyroscope_scrape_slots_missed_total"},
     STARLING_SELF_COUNTER,
     {"Slots skipped because the previous scrape was still running",
      "Slots skipped because the previous scrape still ran"},
     M_OFF(missed)},
    {{"starling_scrape_targets_dropped_total", "starling_pyroscope_scrape_targets_dropped_total"},
     STARLING_SELF_COUNTER,
     {"Discovered targets dropped because they cannot be scraped (no __address__, bad "
      "address or scheme)",
      "Discovered targets dropped because they cannot be scraped (no __address__, bad "
      "address or scheme)"},
     M_OFF(dropped)},
    /* Alloy's name (internal/component/prometheus/scrape/scrape.go) */
    {{"prometheus_scrape_targets_moved_total", "starling_pyroscope_scrape_targets_moved_total"},
     STARLING_SELF_COUNTER,
     {"Targets that moved from this node to another one in the cluster",
      "Scrape units that moved from this node to another one in the cluster"},
     M_OFF(moved)},
    {{"starling_scrape_catch_up_total", "starling_pyroscope_scrape_catch_up_total"},
     STARLING_SELF_COUNTER,
     {"Targets scraped at once, as their current slot, because their owner was declared dead "
      "(the slot started after this node first suspected it)",
      "Scrape units scraped at once, as their current slot, because their owner was declared "
      "dead (the slot started after this node first suspected it)"},
     M_OFF(catch_up)},
};

void starling_scrape_metrics_register(const struct starling_host_api *api, starling_component *self,
				      enum starling_scrape_kind kind,
				      struct starling_scrape_metrics *m)
{
	int k = kind == STARLING_SCRAPE_PYROSCOPE ? 1 : 0;

	for (size_t i = 0; i < sizeof(defs) / sizeof(defs[0]); i++)
		*(starling_metric **)((char *)m + defs[i].offset) = api->metric_register(
		    self, defs[i].type, defs[i].name[k], defs[i].help[k], NULL);
}

void starling_scrape_loop(const struct starling_host_api *api, struct starling_http_client *http,
			  atomic_bool *stopping, pthread_mutex_t *lock,
			  int64_t (*schedule)(void *arg, int64_t now_ms), void *arg)
{
	while (!atomic_load(stopping)) {
		int64_t wait;

		pthread_mutex_lock(lock);
		wait = schedule(arg, api->now_ms());
		pthread_mutex_unlock(lock);
		starling_scrape_wait(http, wait);
	}
}

void starling_scrape_lock_init(pthread_mutex_t *lock)
{
	pthread_mutexattr_t attr;

	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(lock, &attr);
	pthread_mutexattr_destroy(&attr);
}

int starling_scrape_http_new(const struct starling_host_api *api, starling_component *self,
			     struct starling_http_client **http)
{
	int rc = starling_http_client_new(NULL, http);

	if (rc)
		api->log(self, STARLING_LOG_ERROR, "HTTP client: %s", strerror(-rc));
	return rc;
}

int starling_scrape_thread_spawn(const struct starling_host_api *api, starling_component *self,
				 struct starling_http_client **http, pthread_t *thread,
				 void *(*fn)(void *), void *arg)
{
	int rc = pthread_create(thread, NULL, fn, arg);

	if (!rc)
		return 0;
	starling_http_client_free(*http);
	*http = NULL;
	api->log(self, STARLING_LOG_ERROR, "cannot start the scrape thread: %s", strerror(rc));
	return -rc;
}

void starling_scrape_thread_join(struct starling_http_client **http, pthread_t thread,
				 atomic_bool *stopping)
{
	atomic_store(stopping, true);
	starling_http_wakeup(*http);
	pthread_join(thread, NULL);
	starling_http_client_free(*http);
	*http = NULL;
}

void starling_scrape_report(const struct starling_host_api *api, starling_component *self,
			    const struct starling_scrape_metrics *m, size_t owned, size_t total)
{
	api->metric_set(m->owned, (double)owned);
	api->report_targets(self, owned, total);
}

void starling_scrape_owned_changed(const struct starling_host_api *api, starling_component *self,
				   const struct starling_scrape_metrics *m, pthread_mutex_t *lock,
				   size_t *owned, size_t total, bool *was, bool now)
{
	size_t n;

	if (*was == now)
		return;
	if (lock)
		pthread_mutex_lock(lock);
	*owned += now ? 1 : (size_t)-1;
	n = *owned;
	if (lock)
		pthread_mutex_unlock(lock);
	*was = now;
	starling_scrape_report(api, self, m, n, total);
}

int starling_scrape_take_set(const struct starling_host_api *api, starling_component *self,
			     struct starling_target_list *tl, const char *source,
			     const struct starling_target_set *set)
{
	int rc = starling_target_list_update(tl, source, set);

	if (rc)
		api->log(self, STARLING_LOG_ERROR, "targets from %s refused: %s", source,
			 rc == -EINVAL ? "labels not sorted, repeated or NULL" : strerror(-rc));
	return rc;
}

void starling_scrape_note_dropped(const struct starling_host_api *api, starling_component *self,
				  const struct starling_scrape_metrics *m, size_t dropped,
				  const char *first_reason)
{
	if (!dropped)
		return;
	api->metric_add(m->dropped, (double)dropped);
	api->log(self, STARLING_LOG_WARN, "%zu discovered target%s dropped (%s)", dropped,
		 dropped == 1 ? "" : "s", first_reason);
}

void starling_scrape_account(const struct starling_host_api *api, starling_component *self,
			     const struct starling_scrape_metrics *m, const struct scrape_target *t,
			     int rc, const struct scrape_stats *st)
{
	api->metric_add(m->scrapes, 1);
	api->metric_add(m->forwarded, (double)st->forwarded);
	if (rc) {
		api->metric_add(m->failures, 1);
		api->log(self, STARLING_LOG_WARN, "scrape of %s failed: %s", t->url, st->error);
	}
}

bool starling_scrape_retire_step(struct scrape_ctx *ctx, struct scrape_target *t, int64_t now_ms,
				 int64_t *wait)
{
	if (t->in_flight || t->retire_ms > now_ms) {
		if (!t->in_flight && t->retire_ms - now_ms < *wait)
			*wait = t->retire_ms - now_ms;
		return false;
	}
	if (t->owned)
		scrape_end_of_run(ctx, t, t->retire_ms);
	return true;
}

int starling_scrape_finish(struct scrape_ctx *ctx, struct scrape_target *t,
			   const struct starling_http_response *resp, pthread_mutex_t *lock,
			   atomic_bool *stopping, const struct starling_scrape_metrics *m,
			   struct scrape_stats *st)
{
	int rc;

	if (atomic_load(stopping)) {
		t->in_flight = false;
		return 1;
	}
	rc = scrape_complete(ctx, t, resp, lock, st);
	starling_scrape_account(ctx->api, ctx->self, m, t, rc, st);
	return rc;
}

/* ---- index ---------------------------------------------------------------- */

static char gone_marker;
#define GONE ((void *)&gone_marker)

int starling_scrape_index_init(struct starling_scrape_index *ix, size_t n)
{
	size_t cap = 16;

	while (cap < 2 * n + 1)
		cap *= 2;
	ix->keys = calloc(cap, sizeof(*ix->keys));
	ix->items = calloc(cap, sizeof(*ix->items));
	ix->cap = cap;
	if (!ix->keys || !ix->items) {
		starling_scrape_index_free(ix);
		return -ENOMEM;
	}
	return 0;
}

void starling_scrape_index_free(struct starling_scrape_index *ix)
{
	free(ix->keys);
	free(ix->items);
	ix->keys = NULL;
	ix->items = NULL;
	ix->cap = 0;
}

void starling_scrape_index_add(struct starling_scrape_index *ix, uint64_t key, void *item)
{
	size_t i = (size_t)key & (ix->cap - 1);

	while (ix->items[i])
		i = (i + 1) & (ix->cap - 1);
	ix->keys[i] = key;
	ix->items[i] = item;
}

void *starling_scrape_index_find(struct starling_scrape_index *ix, uint64_t key,
				 bool (*eq)(const void *item, const void *arg), const void *arg,
				 bool take)
{
	if (!ix->cap)
		return NULL;
	for (size_t i = (size_t)key & (ix->cap - 1); ix->items[i]; i = (i + 1) & (ix->cap - 1)) {
		void *it = ix->items[i];

		if (it == GONE || ix->keys[i] != key || !eq(it, arg))
			continue;
		if (take)
			ix->items[i] = GONE;
		return it;
	}
	return NULL;
}
