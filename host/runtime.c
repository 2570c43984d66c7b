/*
 * Component runtime: the lifecycle of component instances (create, start,
 * update, stop, destroy, retry with back-off), reload by difference, and the
 * runtime's own creation and shutdown. Timers and workers are in
 * runtime_timers.c, the host API table in runtime_api.c, /metrics in
 * runtime_metrics.c, the JSON introspection in runtime_introspect.c.
 * Locking: see runtime_internal.h.
 */
#include "runtime_internal.h"
#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 60000

/* ---- lifecycle (rt->ctl held) ----------------------------------------- */

/* Exclusive against every callback of c, including reentrant receives. */
static void lifecycle_lock(struct starling_component *c)
{
	pthread_mutex_lock(&c->cb_lock);
	if (c->type->flags & STARLING_TYPE_REENTRANT_RECEIVE)
		pthread_rwlock_wrlock(&c->recv_lock);
}

static void lifecycle_unlock(struct starling_component *c)
{
	if (c->type->flags & STARLING_TYPE_REENTRANT_RECEIVE)
		pthread_rwlock_unlock(&c->recv_lock);
	pthread_mutex_unlock(&c->cb_lock);
}

static void set_state(struct starling_component *c, enum inst_state s)
{
	__atomic_store_n(&c->state, s, __ATOMIC_RELEASE);
}

static struct starling_component *inst_new(struct runtime *rt, struct cfg_doc *doc,
					   const struct cfg_component *cc)
{
	struct starling_component *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->rt = rt;
	c->id = strdup(cc->id);
	c->type_name = strdup(cc->type_name);
	c->canon = strdup(cc->canon);
	if (!c->id || !c->type_name || !c->canon) {
		free(c->id);
		free(c->type_name);
		free(c->canon);
		free(c);
		return NULL;
	}
	c->type = cc->type;
	c->built_minor = cc->type_built_minor;
	c->doc = cfg_doc_ref(doc);
	c->cfg = cc->node;
	c->healthy = false;
	c->health_msg = strdup("not started");
	pthread_mutex_init(&c->cb_lock, NULL);
	pthread_mutex_init(&c->lock, NULL);
	{
		pthread_rwlockattr_t a;

		/* Writer preference so a busy sink cannot starve update/stop. */
		pthread_rwlockattr_init(&a);
		pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
		pthread_rwlock_init(&c->recv_lock, &a);
		pthread_rwlockattr_destroy(&a);
	}
	if (runtime_targets_inst_new(c)) {
		log_msg(STARLING_LOG_ERROR, c->id, "out of memory: cannot receive target sets");
		c->trx = NULL;
	}
	return c;
}

static void metrics_free(struct starling_component *c)
{
	struct starling_metric *m, *next;

	pthread_mutex_lock(&c->lock);
	for (m = c->metrics; m; m = next) {
		next = m->next;
		free(m->name);
		free(m->help);
		free(m->labels);
		free(m);
	}
	c->metrics = NULL;
	c->sub_fn = NULL;
	c->sub_pending = false;
	pthread_mutex_unlock(&c->lock);
}

/* The plugin's last error log line since clear_last_error (malloc'd), or
 * NULL. */
static char *take_last_error(struct starling_component *c)
{
	char *e;

	pthread_mutex_lock(&c->lock);
	e = c->last_error;
	c->last_error = NULL;
	pthread_mutex_unlock(&c->lock);
	return e;
}

static void clear_last_error(struct starling_component *c)
{
	free(take_last_error(c));
}

static void fail(struct starling_component *c, const char *what, int ret)
{
	char msg[768];
	char *why = take_last_error(c);
	int64_t backoff = BACKOFF_MIN_MS;

	for (unsigned i = 0; i < c->failures && backoff < BACKOFF_MAX_MS; i++)
		backoff *= 2;
	if (backoff > BACKOFF_MAX_MS)
		backoff = BACKOFF_MAX_MS;
	c->failures++;
	c->next_retry_ms = mono_ms() + backoff;
	/* The plugin's own words when it logged an error, else errno's. */
	snprintf(msg, sizeof(msg), "%s failed: %s (retry in %llds)", what,
		 why ? why : strerror(-ret), (long long)(backoff / 1000));
	free(why);
	log_msg(STARLING_LOG_ERROR, c->id, "%s", msg);
	api_set_health(c, false, msg);
	set_state(c, INST_FAILED);
}

/* Destroy the plugin instance (not the struct). */
static void inst_teardown(struct starling_component *c)
{
	int64_t t0;

	timers_free_all(c);
	/* Since ABI 1.1 the host drains an instance's work_submit jobs
	 * (queued ones still run) before destroy(). */
	pthread_mutex_lock(&c->rt->tlock);
	while (c->work_jobs)
		pthread_cond_wait(&c->rt->done, &c->rt->tlock);
	pthread_mutex_unlock(&c->rt->tlock);
	if (c->created) {
		pthread_mutex_lock(&c->cb_lock);
		t0 = mono_ns();
		CB_RUN(c, "destroy", c->type->destroy(c->inst));
		stat_add(c, CB_DESTROY, t0, 0);
		c->inst = NULL;
		c->created = false;
		pthread_mutex_unlock(&c->cb_lock);
	}
	metrics_free(c);
}

static void inst_stop(struct starling_component *c)
{
	int64_t t0;
	int ret = 0;

	if (c->state != INST_RUNNING)
		return;
	/* No new timer runs or deliveries from here on. */
	__atomic_store_n(&c->stopping, true, __ATOMIC_RELEASE);
	timers_cancel_all(c);
	lifecycle_lock(c);
	if (c->type->stop) {
		t0 = mono_ns();
		CB_RUN(c, "stop", ret = c->type->stop(c->inst));
		stat_add(c, CB_STOP, t0, ret);
	}
	set_state(c, INST_STOPPED);
	lifecycle_unlock(c);
	if (ret < 0)
		log_msg(STARLING_LOG_WARN, c->id, "stop failed: %s", strerror(-ret));
	api_set_health(c, false, "stopped");
}

/* The plugin's create(). On failure the instance is left as new, with the
 * plugin's last error line still in c->last_error. */
static int inst_create(struct starling_component *c)
{
	int64_t t0;
	int ret;

	__atomic_store_n(&c->stopping, false, __ATOMIC_RELEASE);
	clear_last_error(c);
	lifecycle_lock(c);
	t0 = mono_ns();
	CB_RUN(c, "create",
	       ret = c->type->create(runtime_host_api(c->built_minor), c, c->cfg, &c->inst));
	stat_add(c, CB_CREATE, t0, ret);
	if (ret < 0) {
		c->inst = NULL;
		lifecycle_unlock(c);
		metrics_free(c);
		timers_free_all(c);
		return ret;
	}
	c->created = true;
	set_state(c, INST_CREATED);
	lifecycle_unlock(c);
	return 0;
}

/* start() of a created instance; on failure tear down and schedule a retry. */
static int inst_start(struct starling_component *c)
{
	int64_t t0;
	int ret = 0;

	clear_last_error(c);
	lifecycle_lock(c);
	/* Healthy unless start (or the plugin) says otherwise. */
	api_set_health(c, true, NULL);
	set_state(c, INST_RUNNING);
	if (c->type->start) {
		t0 = mono_ns();
		CB_RUN(c, "start", ret = c->type->start(c->inst));
		stat_add(c, CB_START, t0, ret);
	}
	if (ret >= 0)
		runtime_targets_started(c);
	lifecycle_unlock(c);
	if (ret < 0) {
		/* A failed start is not stopped, only destroyed. */
		__atomic_store_n(&c->stopping, true, __ATOMIC_RELEASE);
		timers_cancel_all(c);
		set_state(c, INST_CREATED);
		inst_teardown(c);
		fail(c, "start", ret);
		return ret;
	}
	c->failures = 0;
	log_msg(STARLING_LOG_DEBUG, c->id, "started");
	return 0;
}

/* create + start; on failure tear down and schedule a retry. */
static int inst_bring_up(struct starling_component *c)
{
	int ret = inst_create(c);

	if (ret < 0) {
		fail(c, "create", ret);
		return ret;
	}
	return inst_start(c);
}

static void inst_free(struct starling_component *c)
{
	struct runtime *rt;

	if (!c)
		return;
	/* Workers may still hold queued timer jobs that point at c. */
	rt = c->rt;
	pthread_mutex_lock(&rt->tlock);
	while (c->queued_jobs)
		pthread_cond_wait(&rt->done, &rt->tlock);
	pthread_mutex_unlock(&rt->tlock);
	pthread_mutex_destroy(&c->cb_lock);
	pthread_mutex_destroy(&c->lock);
	pthread_rwlock_destroy(&c->recv_lock);
	runtime_targets_inst_free(c);
	cfg_doc_unref(c->doc);
	free(c->fwd);
	free(c->health_msg);
	free(c->last_error);
	free(c->state_path);
	free(c->id);
	free(c->type_name);
	free(c->canon);
	free(c);
}

struct starling_component *find_in(struct starling_component **v, size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] && !strcmp(v[i]->id, id))
			return v[i];
	return NULL;
}

/* Forward lists from doc for every instance in v (graph write lock held). */
static void rewire_locked(struct runtime *rt, struct cfg_doc *doc)
{
	for (size_t i = 0; i < rt->n_insts; i++) {
		struct starling_component *c = rt->insts[i];
		const struct cfg_component *cc = NULL;
		struct starling_component **nf = NULL;
		size_t n = 0;

		for (size_t j = 0; j < doc->n_components; j++)
			if (!strcmp(doc->components[j].id, c->id))
				cc = &doc->components[j];
		if (cc && cc->n_forward) {
			nf = calloc(cc->n_forward, sizeof(*nf));
			for (size_t k = 0; nf && k < cc->n_forward; k++) {
				struct starling_component *t = find_in(
				    rt->insts, rt->n_insts, doc->components[cc->forward[k]].id);

				if (t)
					nf[n++] = t;
			}
		}
		free(c->fwd);
		c->fwd = nf;
		c->n_fwd = n;
	}
}

/* A failed create() as a configuration error "FILE:LINE: key.path: message"
 * in the plugin's own words: its last error log line, whose leading
 * "file:line: " (when it names a node of the component) gives the node's
 * path; else errno's text at the component. */
static void add_create_error(struct starling_component *c, int ret, struct cfg_errors *errs)
{
	char *why = take_last_error(c);
	const char *msg = why ? why : strerror(-ret), *rest = msg;
	const struct starling_config *at = c->cfg;
	const char *colon = strchr(msg, ':');

	if (colon && isdigit((unsigned char)colon[1])) {
		const char *e = colon + 1;

		while (isdigit((unsigned char)*e))
			e++;
		if (e[0] == ':' && e[1] == ' ') {
			const struct starling_config *n =
			    cfg_find_where(c->cfg, msg, (size_t)(e - msg));

			if (n) {
				at = n;
				rest = e + 2;
			}
		}
	}
	cfg_errors_add(errs, "%s: %s: %s", cfg_where(at), at->path, rest);
	free(why);
}

int runtime_validate(struct runtime *rt, struct cfg_doc *doc, struct cfg_errors *errs)
{
	int ret = 0;

	pthread_mutex_lock(&rt->ctl);
	for (size_t k = 0; k < doc->n_components; k++) {
		const struct cfg_component *cc = &doc->components[doc->order[k]];
		struct starling_component *c = inst_new(rt, doc, cc);
		int r;

		if (!c) {
			cfg_errors_add(errs, "%s: out of memory", cc->id);
			ret = -ENOMEM;
			continue;
		}
		r = inst_create(c);
		if (r < 0) {
			add_create_error(c, r, errs);
			ret = -EINVAL;
		}
		inst_teardown(c);
		inst_free(c);
	}
	pthread_mutex_unlock(&rt->ctl);
	return ret;
}

enum apply_mode {
	APPLY_KEEP,    /* unchanged: keeps running */
	APPLY_UPDATE,  /* changed, running, type has update(): updated in place */
	APPLY_REPLACE, /* changed: its new instance replaces it */
	APPLY_ADD,     /* new id (or a new type under an old id) */
};

/* Bring a changed instance with update() to its new config (cc). */
static void apply_update(struct runtime *rt, struct cfg_doc *doc, struct starling_component *c,
			 const struct cfg_component *cc)
{
	char *canon = strdup(cc->canon), *old_canon;
	struct cfg_doc *old_doc;
	int64_t t0;
	int ret;

	if (!canon)
		return;
	lifecycle_lock(c);
	t0 = mono_ns();
	CB_RUN(c, "update", ret = c->type->update(c->inst, cc->node));
	stat_add(c, CB_UPDATE, t0, ret == -EOPNOTSUPP ? 0 : ret);
	lifecycle_unlock(c);
	if (ret < 0 && ret != -EOPNOTSUPP)
		log_msg(STARLING_LOG_WARN, c->id, "update failed (%s); re-creating",
			strerror(-ret));
	if (ret < 0) {
		inst_stop(c);
		inst_teardown(c);
	}
	/* HTTP readers use c->cfg under the graph read lock. */
	pthread_rwlock_wrlock(&rt->graph);
	old_canon = c->canon;
	old_doc = c->doc;
	c->canon = canon;
	c->doc = cfg_doc_ref(doc);
	c->cfg = cc->node;
	pthread_rwlock_unlock(&rt->graph);
	free(old_canon);
	cfg_doc_unref(old_doc);
	if (ret < 0) {
		set_state(c, INST_NEW);
		c->failures = 0;
		inst_bring_up(c);
	}
	log_msg(STARLING_LOG_INFO, c->id, "%s",
		ret < 0 ? "re-created with the new configuration" : "updated");
}

int runtime_apply_checked(struct runtime *rt, struct cfg_doc *doc, struct cfg_errors *errs)
{
	struct starling_component **nv, **old;
	enum apply_mode *mode;
	size_t n_old, n = doc->n_components, nerr = 0;
	unsigned kept = 0, changed = 0, added = 0, removed = 0;

	pthread_mutex_lock(&rt->ctl);
	/* A private copy: rt->insts stays readable by HTTP threads until the
	 * new list is published, so it must not be modified in place. */
	n_old = rt->n_insts;
	nv = calloc(n ? n : 1, sizeof(*nv));
	mode = calloc(n ? n : 1, sizeof(*mode));
	old = calloc(n_old ? n_old : 1, sizeof(*old));
	if (!nv || !mode || !old) {
		free(nv);
		free(mode);
		free(old);
		pthread_mutex_unlock(&rt->ctl);
		return -ENOMEM;
	}
	if (n_old)
		memcpy(old, rt->insts, n_old * sizeof(*old));

	/* 1. Create every new and changed instance (create() is free of
	 * threads and I/O by the ABI) before anything running is touched.
	 * Match by id; a changed type is a removal plus an addition. */
	for (size_t k = 0; k < n; k++) {
		const struct cfg_component *cc = &doc->components[doc->order[k]];
		struct starling_component *c = find_in(old, n_old, cc->id), *p;
		int r;

		if (c && c->type == cc->type && !strcmp(c->canon, cc->canon)) {
			mode[k] = APPLY_KEEP;
			nv[k] = c;
			continue;
		}
		p = inst_new(rt, doc, cc);
		if (!p) {
			cfg_errors_add(errs, "%s: out of memory", cc->id);
			nerr++;
			continue;
		}
		nv[k] = p;
		mode[k] = APPLY_ADD; /* refined below */
		r = inst_create(p);
		if (r < 0) {
			add_create_error(p, r, errs);
			nerr++;
			continue;
		}
		if (c && c->type == cc->type)
			mode[k] = c->state == INST_RUNNING && c->type->update ? APPLY_UPDATE
									      : APPLY_REPLACE;
		else
			mode[k] = APPLY_ADD;
	}
	/* Any failure: the running graph is left exactly as it was. */
	if (nerr) {
		for (size_t k = 0; k < n; k++) {
			if (nv[k] && mode[k] != APPLY_KEEP) {
				inst_teardown(nv[k]);
				inst_free(nv[k]);
			}
		}
		free(nv);
		free(mode);
		free(old);
		pthread_mutex_unlock(&rt->ctl);
		return -EINVAL;
	}
	/* 2. Commit. An instance that is updated in place keeps running: its
	 * new instance was only the check. */
	for (size_t k = 0; k < n; k++) {
		if (mode[k] == APPLY_UPDATE) {
			struct starling_component *c = find_in(old, n_old, nv[k]->id);

			inst_teardown(nv[k]);
			inst_free(nv[k]);
			nv[k] = c;
		}
		if (mode[k] == APPLY_KEEP || mode[k] == APPLY_UPDATE) {
			for (size_t i = 0; i < n_old; i++)
				if (old[i] == nv[k])
					old[i] = NULL;
		}
		kept += mode[k] == APPLY_KEEP;
		changed += mode[k] == APPLY_UPDATE || mode[k] == APPLY_REPLACE;
		added += mode[k] == APPLY_ADD;
	}

	/* Publish the new list: removed and replaced instances get no more
	 * deliveries. */
	pthread_rwlock_wrlock(&rt->graph);
	free(rt->insts);
	rt->insts = nv;
	rt->n_insts = n;
	/* Keep the old wiring but drop edges to instances no longer listed. */
	for (size_t i = 0; i < rt->n_insts; i++) {
		struct starling_component *c = rt->insts[i];
		size_t w = 0;

		for (size_t j = 0; j < c->n_fwd; j++)
			if (find_in(rt->insts, rt->n_insts, c->fwd[j]->id) == c->fwd[j])
				c->fwd[w++] = c->fwd[j];
		c->n_fwd = w;
	}
	pthread_rwlock_unlock(&rt->graph);

	/* Stop removed and replaced ones, producers first (reverse of their
	 * start order). */
	for (size_t i = n_old; i-- > 0;)
		if (old[i])
			inst_stop(old[i]);
	for (size_t i = n_old; i-- > 0;) {
		struct starling_component *nw;

		if (!old[i])
			continue;
		inst_teardown(old[i]);
		nw = find_in(rt->insts, rt->n_insts, old[i]->id);
		if (nw && nw->type == old[i]->type) {
			/* Replaced: its callback statistics carry on. */
			for (int k = 0; k < CB_N; k++) {
				nw->stats[k].calls += old[i]->stats[k].calls;
				nw->stats[k].errors += old[i]->stats[k].errors;
				nw->stats[k].nanos += old[i]->stats[k].nanos;
			}
		} else {
			runtime_targets_removed(old[i]);
			log_msg(STARLING_LOG_INFO, old[i]->id, "removed");
			removed++;
		}
		inst_free(old[i]);
	}
	free(old);

	/* 3. Start in start order (receivers first). */
	pthread_rwlock_wrlock(&rt->graph);
	rewire_locked(rt, doc);
	runtime_targets_rewire(rt, doc);
	pthread_rwlock_unlock(&rt->graph);
	for (size_t i = 0; i < rt->n_insts; i++) {
		struct starling_component *c = rt->insts[i];

		switch (mode[i]) {
		case APPLY_KEEP:
			break;
		case APPLY_UPDATE:
			apply_update(rt, doc, c, &doc->components[doc->order[i]]);
			break;
		case APPLY_REPLACE:
			inst_start(c);
			log_msg(STARLING_LOG_INFO, c->id, "re-created with the new configuration");
			break;
		case APPLY_ADD:
			inst_start(c);
			break;
		}
	}
	free(mode);
	cfg_doc_unref(rt->doc);
	rt->doc = cfg_doc_ref(doc);
	pthread_mutex_unlock(&rt->ctl);
	log_info("configuration applied: %zu components (%u added, %u changed, %u unchanged, %u "
		 "removed)",
		 rt->n_insts, added, changed, kept, removed);
	return 0;
}

int runtime_apply(struct runtime *rt, struct cfg_doc *doc)
{
	struct cfg_errors errs = {0};
	int r = runtime_apply_checked(rt, doc, &errs);

	for (size_t i = 0; i < errs.n; i++)
		log_error("%s", errs.msgs[i]);
	cfg_errors_free(&errs);
	return r;
}

void runtime_tick(struct runtime *rt)
{
	int64_t now = mono_ms();

	pthread_mutex_lock(&rt->ctl);
	for (size_t i = 0; i < rt->n_insts; i++) {
		struct starling_component *c = rt->insts[i];

		if (c->state == INST_FAILED && now >= c->next_retry_ms) {
			log_msg(STARLING_LOG_INFO, c->id, "retrying (attempt %u)", c->failures + 1);
			inst_bring_up(c);
		}
	}
	pthread_mutex_unlock(&rt->ctl);
}

int runtime_create(struct runtime **out, struct cluster *cluster, const char *state_dir,
		   unsigned workers)
{
	struct runtime *rt = calloc(1, sizeof(*rt));
	pthread_condattr_t ca;

	if (!rt)
		return -ENOMEM;
	rt->cluster = cluster;
	rt->state_dir = strdup(state_dir);
	if (!rt->state_dir) {
		free(rt);
		return -ENOMEM;
	}
	pthread_mutex_init(&rt->ctl, NULL);
	pthread_rwlock_init(&rt->graph, NULL);
	pthread_mutex_init(&rt->tlock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&rt->tcond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&rt->jcond, NULL);
	pthread_cond_init(&rt->done, NULL);
	rt->n_workers = workers ? workers : RUNTIME_DEFAULT_WORKERS;
	rt->workers = calloc(rt->n_workers, sizeof(*rt->workers));
	if (!rt->workers || runtime_targets_init(rt) ||
	    pthread_create(&rt->timer_thread, NULL, timer_main, rt)) {
		runtime_targets_release(rt);
		free(rt->workers);
		free(rt->state_dir);
		free(rt);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < rt->n_workers; i++) {
		if (pthread_create(&rt->workers[i], NULL, worker_main, rt)) {
			rt->n_workers = i;
			break;
		}
	}
	if (cluster)
		cluster_on_view_change(cluster, on_view_change, rt);
	*out = rt;
	return 0;
}

int runtime_create_validator(struct runtime **out, const char *state_dir)
{
	struct runtime *rt = calloc(1, sizeof(*rt));

	if (!rt)
		return -ENOMEM;
	rt->state_dir = strdup(state_dir);
	if (!rt->state_dir) {
		free(rt);
		return -ENOMEM;
	}
	if (runtime_targets_init(rt)) {
		free(rt->state_dir);
		free(rt);
		return -ENOMEM;
	}
	rt->validate_only = true;
	rt->quit = true; /* no threads to stop; work_submit refuses */
	pthread_mutex_init(&rt->ctl, NULL);
	pthread_rwlock_init(&rt->graph, NULL);
	pthread_mutex_init(&rt->tlock, NULL);
	pthread_cond_init(&rt->tcond, NULL);
	pthread_cond_init(&rt->jcond, NULL);
	pthread_cond_init(&rt->done, NULL);
	*out = rt;
	return 0;
}

void runtime_shutdown(struct runtime *rt)
{
	struct starling_component **v;
	size_t n;

	/* A reload in progress finishes first; waiting ones are cancelled. */
	reload_queue_stop(rt->reloads);
	rt->reloads = NULL;
	pthread_mutex_lock(&rt->ctl);
	runtime_set_ready(rt, false);
	for (size_t i = rt->n_insts; i-- > 0;)
		inst_stop(rt->insts[i]);
	pthread_rwlock_wrlock(&rt->graph);
	v = rt->insts;
	n = rt->n_insts;
	rt->insts = NULL;
	rt->n_insts = 0;
	pthread_rwlock_unlock(&rt->graph);
	for (size_t i = n; i-- > 0;) {
		inst_teardown(v[i]);
		inst_free(v[i]);
	}
	free(v);
	pthread_mutex_unlock(&rt->ctl);

	pthread_mutex_lock(&rt->tlock);
	if (!rt->quit) {
		rt->quit = true;
		pthread_cond_broadcast(&rt->tcond);
		pthread_cond_broadcast(&rt->jcond);
		pthread_mutex_unlock(&rt->tlock);
		pthread_join(rt->timer_thread, NULL);
		for (unsigned i = 0; i < rt->n_workers; i++)
			pthread_join(rt->workers[i], NULL);
	} else {
		pthread_mutex_unlock(&rt->tlock);
	}
}

void runtime_destroy(struct runtime *rt)
{
	if (!rt)
		return;
	runtime_shutdown(rt);
	if (rt->cluster)
		cluster_on_view_change(rt->cluster, NULL, NULL);
	cfg_doc_unref(rt->doc);
	runtime_targets_release(rt);
	free(rt->heap);
	free(rt->workers);
	free(rt->state_dir);
	pthread_mutex_destroy(&rt->ctl);
	pthread_rwlock_destroy(&rt->graph);
	pthread_mutex_destroy(&rt->tlock);
	pthread_cond_destroy(&rt->tcond);
	pthread_cond_destroy(&rt->jcond);
	pthread_cond_destroy(&rt->done);
	free(rt);
}

int runtime_set_reload_handler(struct runtime *rt, runtime_reload_fn fn, void *arg)
{
	if (!rt->reload_wait_ms)
		rt->reload_wait_ms = RUNTIME_RELOAD_WAIT_MS;
	return reload_queue_start(&rt->reloads, fn, arg);
}

void runtime_set_reload_wait(struct runtime *rt, int64_t ms)
{
	__atomic_store_n(&rt->reload_wait_ms, ms, __ATOMIC_RELAXED);
}

int64_t runtime_reload_wait(struct runtime *rt)
{
	return __atomic_load_n(&rt->reload_wait_ms, __ATOMIC_RELAXED);
}

int runtime_reload_submit(struct runtime *rt, runtime_reload_done_fn done, void *arg)
{
	return reload_queue_submit(rt->reloads, done ? runtime_reload_wait(rt) : 0, done, arg);
}

int runtime_reload(struct runtime *rt, char **msg)
{
	*msg = NULL;
	if (!rt->reloads)
		return -ENOTSUP;
	return reload_queue_run(rt->reloads, runtime_reload_wait(rt), msg);
}

void runtime_note_reload(struct runtime *rt, bool ok)
{
	__atomic_store_n(&rt->last_reload_ok, ok, __ATOMIC_RELAXED);
	if (ok) {
		__atomic_store_n(&rt->last_reload_ok_ms, now_ms(), __ATOMIC_RELAXED);
		__atomic_add_fetch(&rt->reloads_ok, 1, __ATOMIC_RELAXED);
	} else {
		__atomic_add_fetch(&rt->reloads_failed, 1, __ATOMIC_RELAXED);
	}
}

bool runtime_ready(struct runtime *rt)
{
	return __atomic_load_n(&rt->ready, __ATOMIC_ACQUIRE);
}

void runtime_set_ready(struct runtime *rt, bool ready)
{
	__atomic_store_n(&rt->ready, ready, __ATOMIC_RELEASE);
}
