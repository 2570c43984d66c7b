/* Refresh-type discovery runner (see starling/sd.h). */
#include <starling/sd.h>

#include <errno.h>
#include <stdlib.h>

struct starling_sd_refresh {
	const struct starling_host_api *api;
	starling_component *self;
	struct starling_sd_groups *g;
	int64_t interval_ms;
	starling_sd_refresh_fn fn;
	void *arg;
	starling_timer *timer;
	bool busy;	/* a refresh job is queued or running */
	bool stopping;	/* set by stop(); jobs then publish nothing */
	bool published; /* the first set went out */
	uint64_t published_gen;
	uint64_t runs, failures;
	starling_metric *m_targets, *m_updates, *m_dur_sum, *m_dur_count;
};

struct starling_sd_refresh *starling_sd_refresh_new(const struct starling_host_api *api,
						    starling_component *self,
						    struct starling_sd_groups *g,
						    int64_t interval_ms, starling_sd_refresh_fn fn,
						    void *arg)
{
	struct starling_sd_refresh *r;

	if (interval_ms <= 0 || !fn || !g)
		return NULL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	*r = (struct starling_sd_refresh){
	    .api = api, .self = self, .g = g, .interval_ms = interval_ms, .fn = fn, .arg = arg};
	/* the same names as discovery.file's */
	r->m_targets = api->metric_register(self, STARLING_SELF_GAUGE, "starling_discovery_targets",
					    "Targets in the last published set", NULL);
	r->m_updates =
	    api->metric_register(self, STARLING_SELF_COUNTER, "starling_discovery_updates_total",
				 "Target sets published", NULL);
	/* Prometheus' prometheus_sd_refresh_duration_seconds, as sum/count */
	r->m_dur_sum = api->metric_register(
	    self, STARLING_SELF_COUNTER, "prometheus_sd_refresh_duration_seconds_sum",
	    "Time spent refreshing (lookups/fetch and parsing)", NULL);
	r->m_dur_count =
	    api->metric_register(self, STARLING_SELF_COUNTER,
				 "prometheus_sd_refresh_duration_seconds_count", "Refreshes", NULL);
	return r;
}

static void refresh_job(void *arg)
{
	struct starling_sd_refresh *r = arg;
	char err[512] = "";
	int64_t t0;
	uint64_t gen;
	int ret;

	if (__atomic_load_n(&r->stopping, __ATOMIC_ACQUIRE))
		goto out;
	t0 = r->api->monotonic_ms();
	ret = r->fn(r->arg, r->g, err, sizeof(err));
	__atomic_add_fetch(&r->runs, 1, __ATOMIC_RELAXED);
	if (r->m_dur_sum) {
		r->api->metric_add(r->m_dur_sum, (double)(r->api->monotonic_ms() - t0) / 1000.0);
		r->api->metric_add(r->m_dur_count, 1);
	}
	if (__atomic_load_n(&r->stopping, __ATOMIC_ACQUIRE))
		goto out;
	if (ret) {
		__atomic_add_fetch(&r->failures, 1, __ATOMIC_RELAXED);
		r->api->log(r->self, STARLING_LOG_ERROR, "Unable to refresh target groups: %s",
			    err[0] ? err : "error");
		r->api->set_health(r->self, false, err[0] ? err : "refresh failed");
	} else {
		r->api->set_health(r->self, true, NULL);
	}
	gen = starling_sd_groups_generation(r->g);
	if (!r->published || gen != r->published_gen) {
		int pr = starling_sd_groups_publish(r->g, r->api, r->self);

		if (pr && pr != -EOPNOTSUPP)
			r->api->log(r->self, STARLING_LOG_ERROR, "cannot publish targets: error %d",
				    pr);
		r->published = true;
		r->published_gen = gen;
		if (r->m_updates)
			r->api->metric_add(r->m_updates, 1);
		if (r->m_targets)
			r->api->metric_set(r->m_targets, (double)starling_sd_groups_count(r->g));
	}
	r->api->report_targets(r->self, 0, starling_sd_groups_count(r->g));
out:
	__atomic_store_n(&r->busy, false, __ATOMIC_RELEASE);
}

static void on_tick(void *arg)
{
	struct starling_sd_refresh *r = arg;

	if (__atomic_load_n(&r->stopping, __ATOMIC_ACQUIRE))
		return;
	/* a slow refresh (e.g. DNS timeouts) makes the next tick a no-op */
	if (__atomic_exchange_n(&r->busy, true, __ATOMIC_ACQ_REL))
		return;
	if (r->api->work_submit(r->self, refresh_job, r)) {
		__atomic_store_n(&r->busy, false, __ATOMIC_RELEASE);
		r->api->log(r->self, STARLING_LOG_ERROR, "cannot queue a refresh");
	}
}

int starling_sd_refresh_start(struct starling_sd_refresh *r)
{
	__atomic_store_n(&r->stopping, false, __ATOMIC_RELEASE);
	r->timer = r->api->timer_start(r->self, 0, r->interval_ms, on_tick, r);
	return r->timer ? 0 : -ENOMEM;
}

void starling_sd_refresh_stop(struct starling_sd_refresh *r)
{
	__atomic_store_n(&r->stopping, true, __ATOMIC_RELEASE);
	if (r->timer)
		r->api->timer_cancel(r->self, r->timer);
	r->timer = NULL;
}

void starling_sd_refresh_free(struct starling_sd_refresh *r)
{
	free(r);
}

void starling_sd_refresh_stats(struct starling_sd_refresh *r, uint64_t *runs, uint64_t *failures)
{
	*runs = __atomic_load_n(&r->runs, __ATOMIC_RELAXED);
	*failures = __atomic_load_n(&r->failures, __ATOMIC_RELAXED);
}

bool starling_sd_refresh_stopping(struct starling_sd_refresh *r)
{
	return __atomic_load_n(&r->stopping, __ATOMIC_ACQUIRE);
}

int starling_sd_component_start(void *inst)
{
	return starling_sd_refresh_start(*(struct starling_sd_refresh **)inst);
}

int starling_sd_component_stop(void *inst)
{
	starling_sd_refresh_stop(*(struct starling_sd_refresh **)inst);
	return 0;
}

int starling_sd_component_list_targets(void *inst, starling_target_emit_fn emit, void *ctx)
{
	struct starling_sd_refresh *r = *(struct starling_sd_refresh **)inst;

	return starling_sd_groups_list(r->g, emit, ctx);
}
