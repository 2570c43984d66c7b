/*
 * Target-set bookkeeping cost, without scraping: N targets (default
 * 100,000), then the same set with 1% of the targets replaced.
 *   1. host: forward_targets' validation + copy and the hand-over to one
 *      receiver (host/targets.c), per set;
 *   2. prometheus.scrape (not started, so nothing is scraped):
 *      receive_targets of the first set, then of the 1%-changed set
 *      (merge, build, follow in place), through the mock host.
 * Prints wall-clock ms (best of 3) and the process's peak RSS.
 *
 *   cmake --build build --target bench_targets
 *   build/tests/bench/targets/bench_targets [N]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "mock_host.h"
#include "scrape_component.h"
#include "targets.h"

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* round r: 1% of the targets (every 100th) get a generation label r */
static struct mock_targets *make_set(int n, int r)
{
	struct mock_targets *mt = mock_targets_new();

	for (int i = 0; i < n; i++) {
		char a[64], g[32], f[64];

		snprintf(a, sizeof(a), "__address__=10.%d.%d.%d:9100", (i >> 16) & 255,
			 (i >> 8) & 255, i & 255);
		snprintf(g, sizeof(g), "gen=%d", i % 100 == 0 ? r : 0);
		snprintf(f, sizeof(f), "__meta_filepath=/etc/sd/file%d.json", i % 16);
		mock_targets_add(mt, a, g, f, "env=prod", NULL);
	}
	return mt;
}

static int sink(void *ctx, const char *source, const struct starling_target_set *set)
{
	*(size_t *)ctx += set->n_targets;
	return 0;
}

static void kick(void *arg)
{
	(void)arg;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 100000;
	struct mock_targets *s0 = make_set(n, 0), *s1 = make_set(n, 1), *s2 = make_set(n, 2);
	const struct starling_component_type *type = &prometheus_scrape_type;
	struct targets_hub *h = targets_hub_new();
	struct targets_rx *rx = targets_rx_new(h, "prometheus.scrape.b", kick, NULL);
	const char *src[] = {"discovery.file.b"};
	double best = 1e18, best0 = 1e18, best1 = 1e18;
	struct mock_host *m;
	struct rusage ru;
	char err[256];
	size_t got = 0;
	void *inst;

	targets_rx_set_sources(rx, src, 1);
	for (int k = 0; k < 3; k++) {
		double t0 = now_ms();

		targets_publish(h, "discovery.file.b", mock_targets_set(k % 2 ? s1 : s0));
		targets_rx_run(rx, sink, &got);
		if (now_ms() - t0 < best)
			best = now_ms() - t0;
	}
	printf("host: forward_targets + hand-over of %d targets: %.1f ms\n", n, best);
	targets_rx_free(rx);
	targets_hub_free(h);

	for (int k = 0; k < 3; k++) {
		double t0, t1;

		m = mock_host_new("prometheus.scrape.b", type->schema,
				  "targets = ( \"discovery.file.b\" ); forward_to = [ \"a.b\" ];"
				  " scrape_interval = \"1h\";",
				  err, sizeof(err));
		mock_host_set_quiet(m, true);
		if (!m ||
		    type->create(mock_host_api(m), mock_host_self(m), mock_host_config(m), &inst))
			return 1;
		t0 = now_ms();
		mock_host_deliver_targets(type, inst, "discovery.file.b", mock_targets_set(s0));
		t1 = now_ms();
		mock_host_deliver_targets(type, inst, "discovery.file.b", mock_targets_set(s2));
		if (t1 - t0 < best0)
			best0 = t1 - t0;
		if (now_ms() - t1 < best1)
			best1 = now_ms() - t1;
		type->destroy(inst);
		mock_host_free(m);
	}
	printf("prometheus.scrape: first set of %d targets: %.1f ms; 1%% replaced: %.1f ms\n", n,
	       best0, best1);
	getrusage(RUSAGE_SELF, &ru);
	printf("peak RSS of the process: %ld MiB (three copies of the input sets included)\n",
	       ru.ru_maxrss / 1024);
	mock_targets_free(s0);
	mock_targets_free(s1);
	mock_targets_free(s2);
	return got ? 0 : 1;
}
