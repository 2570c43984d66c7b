/*
 * Fuzz the exposition formats through the scraper's own entry,
 * scrape_process(): the first input byte picks the Content-Type (Prometheus
 * text 0.0.4, OpenMetrics 1.0.0, Prometheus text 1.0.0, none: the fallback
 * format, or a lying one), the second the options (honor_timestamps and
 * honor_labels, a sample limit, label limits, UTF-8 names; honor_metadata
 * from the first byte's top bit), the rest is the
 * body. Each body is scraped twice by one target (the second time through
 * the series cache) and the target then leaves (staleness markers). With
 * the option byte's top bit the body also goes through the strict parser
 * check-metrics runs (every label set parsed, UTF-8 names on). Nothing may
 * crash, leak, hang or read out of bounds; a bad body only fails the scrape.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <starling/expo.h>
#include <starling/relabel.h>

#include "mock_host.h"
#include "scrape_component.h"

static const char *const ctypes[] = {
    "text/plain; version=0.0.4",
    "application/openmetrics-text; version=1.0.0; charset=utf-8",
    "text/plain; version=1.0.0; escaping=underscores",
    NULL,
    "application/json",
    "application/openmetrics-text; version=0.0.1",
};

/* check-metrics' loop: strict parser, UTF-8 names, every label set. */
static void strict_parse(const char *body, size_t len, bool om)
{
	const unsigned flags = STARLING_EXPO_STRICT | STARLING_EXPO_UTF8_NAMES;
	struct starling_expo_parser *p = starling_expo_parser_new(
	    om ? STARLING_EXPO_OPENMETRICS : STARLING_EXPO_PROMETHEUS, flags);
	struct starling_expo_event ev;
	struct starling_lset ls;

	if (!p)
		abort();
	starling_lset_init(&ls);
	starling_expo_reset(p, body, len);
	while (starling_expo_next(p, &ev) > 0) {
		if (ev.kind != STARLING_EXPO_SAMPLE)
			continue;
		for (size_t i = 0; i < ev.n_exemplars; i++)
			starling_expo_exemplar_labels(ev.exemplars[i].labels,
						      ev.exemplars[i].labels_len, &ls, NULL);
		starling_expo_series_labels_flags(ev.series, ev.series_len, flags, &ls, NULL);
	}
	starling_lset_free(&ls);
	starling_expo_parser_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mock_host *m;
	struct starling_label in[1] = {{"__address__", "10.0.0.1:9100"}};
	struct scrape_config cfg = {0};
	struct scrape_scratch scratch;
	struct scrape_target *t = NULL;
	struct scrape_ctx ctx;
	struct scrape_result r = {0};
	struct scrape_stats st;
	char err[256];

	if (size < 2)
		return 0;
	/* a fresh mock host per input: its log and batches do not pile up */
	m = mock_host_new("prometheus.scrape.fuzz", NULL, "", err, sizeof(err));
	if (!m)
		abort();
	mock_host_set_quiet(m, true);
	cfg.job_name = "fuzz";
	cfg.interval_ms = 15000;
	cfg.timeout_ms = 10000;
	cfg.metrics_path = "/metrics";
	cfg.scheme = "http";
	cfg.honor_timestamps = data[1] & 1;
	cfg.honor_labels = data[1] & 2;
	cfg.sample_limit = (data[1] & 4) ? 50 : 0;
	cfg.label_limit = (data[1] & 8) ? 5 : 0;
	cfg.label_value_length_limit = (data[1] & 16) ? 16 : 0;
	cfg.body_size_limit = SCRAPE_SAFETY_BODY_LIMIT;
	cfg.fallback_format = (data[1] & 32) ? STARLING_EXPO_OPENMETRICS : STARLING_EXPO_PROMETHEUS;
	cfg.utf8_names = data[1] & 64;
	cfg.honor_metadata = data[0] & 128;
	scrape_scratch_init(&scratch);
	if (scrape_target_new(&cfg, in, 1, &t, err, sizeof(err)))
		abort();
	ctx.api = mock_host_api(m);
	ctx.self = mock_host_self(m);
	ctx.cfg = &cfg;
	ctx.scratch = &scratch;
	r.status = 200;
	r.body = (const char *)data + 2;
	r.body_len = size - 2;
	r.content_type = ctypes[data[0] % (sizeof(ctypes) / sizeof(ctypes[0]))];
	r.start_ms = 1700000000000;
	r.duration_us = 1000;
	scrape_process(&ctx, t, &r, &st);
	r.start_ms += 15000;
	scrape_process(&ctx, t, &r, &st);
	scrape_end_of_run(&ctx, t, r.start_ms + 15000);
	scrape_target_free(t);
	scrape_scratch_free(&scratch);
	mock_host_free(m);
	if (data[1] & 128)
		strict_parse(r.body, r.body_len, data[0] & 1);
	return 0;
}
