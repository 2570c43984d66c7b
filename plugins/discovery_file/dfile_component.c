/*
 * discovery.file component: configuration, lifecycle and self-metrics.
 * Arguments as Alloy's discovery.file (files, refresh_interval "5m"); the
 * whole target list is published with forward_targets at start and after
 * every change.
 */
#include "dfile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct starling_config_key schema[] = {
    {.name = "files",
     .type = STARLING_CFG_STRING_LIST,
     .required = true,
     .help = "Files to read target groups from (JSON or YAML); one '*' allowed in the last "
	     "path segment"},
    {.name = "refresh_interval",
     .type = STARLING_CFG_DURATION,
     .default_value = "5m",
     .help = "Reread every file this often, besides watching their directories"},
    {0},
};

static void dfile_free(struct dfile *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n_patterns; i++)
		free(d->patterns[i]);
	free(d->patterns);
	dfile_files_free(d);
	starling_target_builder_free(&d->out);
	pthread_mutex_destroy(&d->mu);
	free(d);
}

static int dfile_create(const struct starling_host_api *api, starling_component *self,
			const starling_config *cfg, void **out)
{
	const starling_config *files = api->config_lookup(cfg, "files");
	struct dfile *d;
	size_t n = files ? api->config_count(files) : 0;

	if (!STARLING_API_HAS(api, forward_targets)) {
		api->log(self, STARLING_LOG_ERROR, "this host cannot forward target sets");
		return -ENOTSUP;
	}
	if (n == 0) {
		api->log(self, STARLING_LOG_ERROR, "%s: files: at least one file is required",
			 api->config_where(files ? files : cfg));
		return -EINVAL;
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->api = api;
	d->self = self;
	pthread_mutex_init(&d->mu, NULL);
	starling_target_builder_init(&d->out);
	d->patterns = calloc(n, sizeof(*d->patterns));
	if (!d->patterns)
		goto nomem;
	for (size_t i = 0; i < n; i++) {
		const starling_config *e = api->config_child(files, i);
		const char *p = NULL;

		if (api->config_string(e, NULL, &p) || !p || !dfile_pattern_ok(p)) {
			api->log(self, STARLING_LOG_ERROR,
				 "%s: files: path name %s is not valid for file discovery (one "
				 "'*' at most, in the last segment; extension .json, .yml or "
				 ".yaml)",
				 api->config_where(e), p ? p : "(not a string)");
			dfile_free(d);
			return -EINVAL;
		}
		d->patterns[i] = strdup(p);
		if (!d->patterns[i])
			goto nomem;
		d->n_patterns++;
	}
	if (api->config_duration_ms(cfg, "refresh_interval", &d->refresh_ms) ||
	    d->refresh_ms <= 0) {
		api->log(self, STARLING_LOG_ERROR, "%s: refresh_interval must be positive",
			 api->config_where(cfg));
		dfile_free(d);
		return -EINVAL;
	}
	d->m_read_errors = api->metric_register(self, STARLING_SELF_COUNTER,
						"prometheus_sd_file_read_errors_total",
						"The number of File-SD read errors.", NULL);
	d->m_watch_errors = api->metric_register(
	    self, STARLING_SELF_COUNTER, "prometheus_sd_file_watcher_errors_total",
	    "The number of File-SD errors caused by filesystem "
	    "watch failures.",
	    NULL);
	d->m_scan_sum = api->metric_register(self, STARLING_SELF_COUNTER,
					     "prometheus_sd_file_scan_duration_seconds_sum",
					     "Total time spent scanning the files", NULL);
	d->m_scan_count = api->metric_register(self, STARLING_SELF_COUNTER,
					       "prometheus_sd_file_scan_duration_seconds_count",
					       "Number of scans of the files", NULL);
	d->m_targets = api->metric_register(self, STARLING_SELF_GAUGE, "starling_discovery_targets",
					    "Targets in the last published set", NULL);
	d->m_dropped = api->metric_register(
	    self, STARLING_SELF_COUNTER, "starling_discovery_targets_dropped_total",
	    "Targets dropped because they have no __address__", NULL);
	d->m_updates =
	    api->metric_register(self, STARLING_SELF_COUNTER, "starling_discovery_updates_total",
				 "Target sets published", NULL);
	*out = d;
	return 0;
nomem:
	dfile_free(d);
	return -ENOMEM;
}

static void on_refresh(void *arg)
{
	dfile_scan(arg);
}

static int dfile_start(void *inst)
{
	struct dfile *d = inst;
	struct dfile_watch *w = dfile_watch_start(d);

	pthread_mutex_lock(&d->mu);
	d->watch = w;
	pthread_mutex_unlock(&d->mu);
	/* The first set goes out at start, even when empty (as Alloy's
	 * discovery runner does). */
	dfile_scan(d);
	d->timer = d->api->timer_start(d->self, d->refresh_ms, d->refresh_ms, on_refresh, d);
	if (!d->timer) {
		d->api->log(d->self, STARLING_LOG_ERROR, "cannot start the refresh timer");
		return -ENOMEM;
	}
	return 0;
}

static int dfile_stop(void *inst)
{
	struct dfile *d = inst;
	struct dfile_watch *w;

	pthread_mutex_lock(&d->mu);
	w = d->watch;
	d->watch = NULL;
	pthread_mutex_unlock(&d->mu);
	/* joins the thread, which may be finishing a scan */
	dfile_watch_stop(w);
	if (d->timer) {
		d->api->timer_cancel(d->self, d->timer);
		d->timer = NULL;
	}
	return 0;
}

static void dfile_destroy(void *inst)
{
	dfile_free(inst);
}

/* The discovered targets, for GET /api/v0/components/{id}/targets. */
static int dfile_list_targets(void *inst, starling_target_emit_fn emit, void *ctx)
{
	struct dfile *d = inst;
	struct starling_target_set set;

	pthread_mutex_lock(&d->mu);
	starling_target_builder_view(&d->out, &set);
	for (size_t i = 0; i < set.n_targets; i++) {
		struct starling_target_info ti = {
		    .labels = set.targets[i].labels,
		    .n_labels = set.targets[i].n_labels,
		};

		emit(ctx, &ti);
	}
	pthread_mutex_unlock(&d->mu);
	return 0;
}

const struct starling_component_type discovery_file_type = {
    STARLING_TYPE_HEAD,
    .name = "discovery.file",
    .help = "Discover targets from Prometheus file_sd JSON/YAML files",
    .produces = STARLING_ACCEPTS_TARGETS,
    .schema = schema,
    .create = dfile_create,
    .update = NULL,
    .start = dfile_start,
    .stop = dfile_stop,
    .destroy = dfile_destroy,
    .list_targets = dfile_list_targets,
};
