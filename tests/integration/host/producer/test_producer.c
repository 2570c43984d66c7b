/*
 * test.producer: a fixture plugin for the host integration tests. Every
 * `interval` it forwards one batch of `series` series
 * (starling_test_value{series="<i>",run="<label>"} = tick count) to its
 * forward_to list; the first batch also carries a staleness marker for
 * starling_test_gone. `fail_start = true` makes start() fail (for back-off).
 * `crash = "create"` or `"timer"` dereferences NULL there (the daemon's
 * fatal-signal report, tests/integration/host/crash.sh). `create_delay`
 * makes create() take that long (a slow reload, reload_async.sh).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <starling/plugin.h>

struct producer {
	const struct starling_host_api *api;
	starling_component *self;
	int64_t interval_ms;
	int64_t n_series;
	const char *run;
	bool fail_start;
	const char *crash;
	uint64_t ticks;
	starling_timer *timer;
	starling_metric *m_batches;
};

static const struct starling_config_key schema[] = {
    {.name = "interval",
     .type = STARLING_CFG_DURATION,
     .default_value = "100ms",
     .help = "How often to forward a batch"},
    {.name = "series", .type = STARLING_CFG_INT, .default_value = "3", .help = "Series per batch"},
    {.name = "run",
     .type = STARLING_CFG_STRING,
     .default_value = "a",
     .help = "Value of the run label"},
    {.name = "fail_start",
     .type = STARLING_CFG_BOOL,
     .default_value = "false",
     .help = "Make start() fail"},
    {.name = "crash",
     .type = STARLING_CFG_STRING,
     .default_value = "",
     .help = "Crash (NULL dereference) in \"create\" or \"timer\""},
    {.name = "create_delay",
     .type = STARLING_CFG_DURATION,
     .default_value = "0ms",
     .help = "How long create() takes"},
    {.name = "forward_to",
     .type = STARLING_CFG_REF_LIST,
     .required = true,
     .help = "Receivers",
     .ref_accepts = STARLING_ACCEPTS_SERIES},
    {0},
};

/* A NULL dereference the compiler cannot prove or drop. */
static void crash_now(void)
{
	volatile int *volatile p = NULL;

	*p = 1;
}

static void tick(void *arg)
{
	struct producer *p = arg;
	struct starling_series series[65];
	struct starling_label labels[65][3];
	char idx[65][24];
	double values[65];
	int64_t ts[65];
	size_t n = (size_t)p->n_series, k = 0;
	struct starling_series_batch batch;
	int64_t now = p->api->now_ms();

	if (!strcmp(p->crash, "timer"))
		crash_now();

	p->ticks++;
	for (size_t i = 0; i < n; i++, k++) {
		snprintf(idx[k], sizeof(idx[k]), "%zu", i);
		labels[k][0] = (struct starling_label){"__name__", "starling_test_value"};
		labels[k][1] = (struct starling_label){"run", p->run};
		labels[k][2] = (struct starling_label){"series", idx[k]};
		values[k] = (double)p->ticks;
		ts[k] = now;
		series[k] = (struct starling_series){.labels = labels[k],
						     .n_labels = 3,
						     .values = &values[k],
						     .timestamps_ms = &ts[k],
						     .n_samples = 1};
	}
	if (p->ticks == 1) {
		uint64_t bits = STARLING_STALE_NAN_BITS;

		labels[k][0] = (struct starling_label){"__name__", "starling_test_gone"};
		labels[k][1] = (struct starling_label){"run", p->run};
		memcpy(&values[k], &bits, sizeof(bits));
		ts[k] = now;
		series[k] = (struct starling_series){.labels = labels[k],
						     .n_labels = 2,
						     .values = &values[k],
						     .timestamps_ms = &ts[k],
						     .n_samples = 1};
		k++;
	}
	batch = (struct starling_series_batch){.series = series, .n_series = k};
	if (p->api->forward_series(p->self, &batch) == 0)
		p->api->metric_add(p->m_batches, 1);
}

static int create(const struct starling_host_api *api, starling_component *self,
		  const starling_config *cfg, void **out)
{
	struct producer *p = calloc(1, sizeof(*p));
	int64_t delay_ms = 0;

	if (!p)
		return -ENOMEM;
	p->api = api;
	p->self = self;
	if (api->config_duration_ms(cfg, "interval", &p->interval_ms) ||
	    api->config_int(cfg, "series", &p->n_series) ||
	    api->config_string(cfg, "run", &p->run) ||
	    api->config_bool(cfg, "fail_start", &p->fail_start) ||
	    api->config_string(cfg, "crash", &p->crash) || p->n_series < 0 || p->n_series > 64 ||
	    p->interval_ms < 1) {
		api->log(self, STARLING_LOG_ERROR, "bad configuration at %s",
			 api->config_where(cfg));
		free(p);
		return -EINVAL;
	}
	if (!strcmp(p->crash, "create"))
		crash_now();
	if (api->config_duration_ms(cfg, "create_delay", &delay_ms) == 0 && delay_ms > 0) {
		struct timespec ts = {.tv_sec = delay_ms / 1000,
				      .tv_nsec = (delay_ms % 1000) * 1000000L};

		while (nanosleep(&ts, &ts) && errno == EINTR)
			;
	}
	p->m_batches = api->metric_register(self, STARLING_SELF_COUNTER,
					    "starling_test_batches_forwarded_total",
					    "Batches forwarded.", "kind=series");
	*out = p;
	return 0;
}

static int start(void *inst)
{
	struct producer *p = inst;

	if (p->fail_start) {
		p->api->log(p->self, STARLING_LOG_ERROR, "failing start as configured");
		return -EIO;
	}
	p->timer = p->api->timer_start(p->self, 0, p->interval_ms, tick, p);
	return p->timer ? 0 : -ENOMEM;
}

static int stop(void *inst)
{
	struct producer *p = inst;

	p->api->timer_cancel(p->self, p->timer);
	p->timer = NULL;
	return 0;
}

static void destroy(void *inst)
{
	free(inst);
}

static const struct starling_component_type producer_type = {
    STARLING_TYPE_HEAD, .name = "test.producer", .help = "Test fixture: forwards synthetic series",
    .schema = schema,	.create = create,	 .start = start,
    .stop = stop,	.destroy = destroy,
};

static const struct starling_component_type *const types[] = {&producer_type};

static const struct starling_plugin_descriptor descriptor = {
    STARLING_DESCRIPTOR_HEAD,
    .name = "test_producer",
    .version = "test",
    .types = types,
    .n_types = 1,
};

STARLING_PLUGIN(descriptor)
