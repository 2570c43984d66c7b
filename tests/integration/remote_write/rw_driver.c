/*
 * Integration driver: loads the built prometheus_remote_write.so, runs one
 * instance through the mock host (until the daemon can do it), and pushes
 * `series` gauges every `interval_ms` with value = tick number and
 * timestamp = now. On SIGTERM/SIGINT (or after `seconds`) it stops the
 * instance (open batches go to the disk buffer) and writes the number of
 * ticks pushed to `ticks_file`.
 *
 * With DRAIN_SECONDS > 0 it first waits (that long at most) until
 * everything pushed was sent.
 *
 * usage: rw_driver PLUGIN.so URL STATE_DIR TICKS_FILE SERIES INTERVAL_MS SECONDS DRAIN_SECONDS
 */
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <starling/labels.h>
#include "mock_host.h"

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	stop_requested = 1;
}

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
	const struct starling_plugin_descriptor *(*entry)(void);
	const struct starling_component_type *t;
	struct mock_host *m;
	char cfg[2048], err[256], series_val[16][8];
	struct starling_label labels[16][3];
	struct starling_series series[16];
	double values[16];
	int64_t ts[16];
	long n_series, interval, seconds, drain, ticks = 0;
	struct starling_metadata md = {"rw_it_metric", STARLING_METRIC_GAUGE,
				       "Integration test gauge.", NULL};
	int64_t end;
	void *so, *inst;
	FILE *f;

	if (argc != 9) {
		fprintf(stderr,
			"usage: %s PLUGIN.so URL STATE_DIR TICKS_FILE SERIES INTERVAL_MS SECONDS "
			"DRAIN_SECONDS\n",
			argv[0]);
		return 2;
	}
	drain = strtol(argv[8], NULL, 10);
	n_series = strtol(argv[5], NULL, 10);
	interval = strtol(argv[6], NULL, 10);
	seconds = strtol(argv[7], NULL, 10);
	if (n_series < 1 || n_series > 16 || interval < 10 || seconds < 1) {
		fprintf(stderr, "bad SERIES (1..16), INTERVAL_MS (>=10) or SECONDS\n");
		return 2;
	}
	so = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (!so) {
		fprintf(stderr, "dlopen: %s\n", dlerror());
		return 1;
	}
	*(void **)&entry = dlsym(so, STARLING_ENTRY_SYMBOL);
	if (!entry) {
		fprintf(stderr, "no entry symbol\n");
		return 1;
	}
	t = entry()->types[0];
	snprintf(cfg, sizeof(cfg),
		 "endpoint = ( { url = \"%s\"; name = \"prom\"; remote_timeout = \"5s\";\n"
		 "  queue_config = { batch_send_deadline = \"1s\"; max_backoff = \"2s\"; };\n"
		 "  metadata_config = { send_interval = \"10s\"; }; } );\n"
		 "external_labels = { env = \"it\"; };\n",
		 argv[2]);
	m = mock_host_new("prometheus.remote_write.it", t->schema, cfg, err, sizeof(err));
	if (!m) {
		fprintf(stderr, "config: %s\n", err);
		return 1;
	}
	mock_host_set_state_dir(m, argv[3]);
	if (t->create(mock_host_api(m), mock_host_self(m), mock_host_config(m), &inst) ||
	    t->start(inst)) {
		fprintf(stderr, "create/start failed\n");
		return 1;
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	for (long i = 0; i < n_series; i++) {
		snprintf(series_val[i], sizeof(series_val[i]), "%ld", i);
		labels[i][0] = (struct starling_label){"__name__", "rw_it_metric"};
		labels[i][1] = (struct starling_label){"job", "rw_driver"};
		labels[i][2] = (struct starling_label){"series", series_val[i]};
		series[i] = (struct starling_series){
		    labels[i], 3, starling_labels_hash(labels[i], 3), &values[i], &ts[i], 1};
	}
	end = wall_ms() + seconds * 1000;
	while (!stop_requested && wall_ms() < end) {
		struct starling_series_batch b = {series, (size_t)n_series, &md, 1};
		int64_t now = wall_ms();

		for (long i = 0; i < n_series; i++) {
			values[i] = (double)ticks;
			ts[i] = now;
		}
		if (t->receive_series(inst, &b))
			fprintf(stderr, "receive_series failed\n");
		ticks++;
		usleep((useconds_t)interval * 1000);
	}
	for (long i = 0; i < drain * 10; i++) {
		if (mock_host_metric(m, "prometheus_remote_storage_samples_pending", NULL) == 0)
			break;
		usleep(100000);
	}
	t->stop(inst);
	fprintf(stderr,
		"rw_driver: %ld ticks, sent %.0f, pending %.0f, retried %.0f, dropped %.0f\n",
		ticks, mock_host_metric(m, "prometheus_remote_storage_samples_total", NULL),
		mock_host_metric(m, "prometheus_remote_storage_samples_pending", NULL),
		mock_host_metric(m, "prometheus_remote_storage_samples_retried_total", NULL),
		mock_host_metric(m, "prometheus_remote_storage_samples_dropped_total", NULL));
	t->destroy(inst);
	mock_host_free(m);
	f = fopen(argv[4], "w");
	if (!f)
		return 1;
	fprintf(f, "%ld\n", ticks);
	fclose(f);
	return 0;
}
