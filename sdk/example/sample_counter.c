/*
 * Example out-of-tree Starling plugin: the sink "example.sample_counter".
 *
 * It accepts series batches (wire a producer to it with
 * forward_to = [ "example.sample_counter.<name>" ]), counts the series and
 * samples it receives and exports both counts as self-metrics on /metrics.
 * It shows the parts every plugin has: a config schema, the create / start /
 * stop / destroy callbacks, use of the host API table (checked with
 * STARLING_API_HAS) and a call into the static SDK library
 * (starling_labels_hash), which is why the build file links with
 * `pkg-config --libs starling-plugin`.
 *
 * Build:  make            (see Makefile; or cmake, see CMakeLists.txt)
 * Deploy: copy sample_counter.so into /usr/lib/starling/plugins/ and
 *         restart (systemctl restart starling); `starling plugins list`
 *         shows the new component type.
 */
#include <errno.h>
#include <stdlib.h>

#include <starling/labels.h>
#include <starling/plugin.h>

struct sample_counter {
	const struct starling_host_api *api;
	starling_component *self;
	int64_t log_every; /* log a summary every N batches; 0 = never */
	bool verify_hash;
	uint64_t batches;
	starling_metric *series_total;
	starling_metric *samples_total;
	starling_metric *bad_hash_total;
};

static const struct starling_config_key sample_counter_schema[] = {
    {.name = "log_every",
     .type = STARLING_CFG_INT,
     .default_value = "0",
     .help = "log a summary line every N received batches (0: never)"},
    {.name = "verify_hash",
     .type = STARLING_CFG_BOOL,
     .default_value = "false",
     .help = "recompute each series' label hash and count mismatches"},
    {.name = NULL},
};

static int sample_counter_configure(struct sample_counter *sc, const starling_config *cfg)
{
	const struct starling_host_api *api = sc->api;
	int64_t log_every = 0;
	bool verify = false;
	int err;

	err = api->config_int(cfg, "log_every", &log_every);
	if (err && err != -ENOENT)
		return err;
	if (log_every < 0) {
		api->log(sc->self, STARLING_LOG_ERROR, "%s: log_every must be >= 0, got %lld",
			 api->config_where(cfg), (long long)log_every);
		return -EINVAL;
	}
	err = api->config_bool(cfg, "verify_hash", &verify);
	if (err && err != -ENOENT)
		return err;
	sc->log_every = log_every;
	sc->verify_hash = verify;
	return 0;
}

static int sample_counter_create(const struct starling_host_api *api, starling_component *self,
				 const starling_config *cfg, void **out_inst)
{
	struct sample_counter *sc;
	int err;

	/* Everything used below exists since ABI 1.0; a host older than the
	 * headers we were built with could still lack members, so check. */
	if (!STARLING_API_HAS(api, metric_register) || !STARLING_API_HAS(api, config_bool))
		return -ENOTSUP;

	sc = calloc(1, sizeof(*sc));
	if (!sc)
		return -ENOMEM;
	sc->api = api;
	sc->self = self;
	err = sample_counter_configure(sc, cfg);
	if (err) {
		free(sc);
		return err;
	}
	sc->series_total =
	    api->metric_register(self, STARLING_SELF_COUNTER, "example_series_received_total",
				 "Series received by this sink.", NULL);
	sc->samples_total =
	    api->metric_register(self, STARLING_SELF_COUNTER, "example_samples_received_total",
				 "Samples received by this sink.", NULL);
	sc->bad_hash_total =
	    api->metric_register(self, STARLING_SELF_COUNTER, "example_series_bad_hash_total",
				 "Series whose hash did not match their labels.", NULL);
	*out_inst = sc;
	return 0;
}

static int sample_counter_update(void *inst, const starling_config *cfg)
{
	return sample_counter_configure(inst, cfg);
}

static int sample_counter_start(void *inst)
{
	struct sample_counter *sc = inst;

	sc->api->set_health(sc->self, true, NULL);
	return 0;
}

static int sample_counter_stop(void *inst)
{
	/* No threads or timers of its own: the host stops calling receive. */
	(void)inst;
	return 0;
}

static void sample_counter_destroy(void *inst)
{
	/* Metrics are freed by the host together with the instance. */
	free(inst);
}

static int sample_counter_receive(void *inst, const struct starling_series_batch *batch)
{
	struct sample_counter *sc = inst;
	const struct starling_host_api *api = sc->api;
	size_t samples = 0, bad = 0;

	for (size_t i = 0; i < batch->n_series; i++) {
		const struct starling_series *s = &batch->series[i];

		samples += s->n_samples;
		if (sc->verify_hash && starling_labels_hash(s->labels, s->n_labels) != s->hash)
			bad++;
	}
	if (sc->series_total)
		api->metric_add(sc->series_total, (double)batch->n_series);
	if (sc->samples_total)
		api->metric_add(sc->samples_total, (double)samples);
	if (bad && sc->bad_hash_total)
		api->metric_add(sc->bad_hash_total, (double)bad);

	sc->batches++;
	if (sc->log_every > 0 && sc->batches % (uint64_t)sc->log_every == 0)
		api->log(sc->self, STARLING_LOG_INFO, "batch %llu: %zu series, %zu samples",
			 (unsigned long long)sc->batches, batch->n_series, samples);
	return 0;
}

static const struct starling_component_type sample_counter_type = {
    STARLING_TYPE_HEAD,
    .name = "example.sample_counter",
    .help = "Example sink: counts the series and samples it receives",
    .accepts = STARLING_ACCEPTS_SERIES,
    .schema = sample_counter_schema,
    .create = sample_counter_create,
    .update = sample_counter_update,
    .start = sample_counter_start,
    .stop = sample_counter_stop,
    .destroy = sample_counter_destroy,
    .receive_series = sample_counter_receive,
};

static const struct starling_component_type *const example_types[] = {
    &sample_counter_type,
};

static const struct starling_plugin_descriptor example_descriptor = {
    STARLING_DESCRIPTOR_HEAD,
    .name = "sample_counter",
    .version = "1.0.0",
    .types = example_types,
    .n_types = sizeof(example_types) / sizeof(example_types[0]),
};

STARLING_PLUGIN(example_descriptor)
