/*
 * Not a test: cost of prometheus.remote_write's receive path (encode into
 * the shard batch, snappy, append to the disk buffer) per sample, and the
 * disk buffer's bytes per sample. The receiver is unreachable (port 1,
 * 10 s back-off), so everything stays queued on disk.
 *
 * usage: bench_remote_write_receive [STATE_DIR] [SERIES] [SCRAPES]
 * (STATE_DIR default /tmp/starling-rw-bench, removed by the caller)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <starling/labels.h>
#include "mock_host.h"

const struct starling_plugin_descriptor *starling_plugin_entry(void);

static double thread_cpu_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	const struct starling_component_type *t = starling_plugin_entry()->types[0];
	const char *dir = argc > 1 ? argv[1] : "/tmp/starling-rw-bench";
	long ns = argc > 2 ? strtol(argv[2], NULL, 10) : 1000;
	long ticks = argc > 3 ? strtol(argv[3], NULL, 10) : 1000;
	struct starling_label(*l)[5];
	char(*vals)[2][32];
	struct starling_series *s;
	double *v, t0, dt, bytes;
	int64_t *ts, now = 1700000000000LL;
	struct mock_host *m;
	char err[256];
	void *inst;

	if (ns < 1 || ticks < 1)
		return 2;
	m = mock_host_new("prometheus.remote_write.bench", t->schema,
			  "endpoint = ( { url = \"http://127.0.0.1:1/\"; name = \"b\";\n"
			  "  queue_config = { min_backoff = \"10s\"; max_backoff = \"10s\";\n"
			  "                   max_buffer_size = \"64GiB\"; };\n"
			  "  metadata_config = { send = false; }; } );\n"
			  "external_labels = { cluster = \"c1\"; };",
			  err, sizeof(err));
	if (!m) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	mock_host_set_quiet(m, true);
	mock_host_set_state_dir(m, dir);
	if (t->create(mock_host_api(m), mock_host_self(m), mock_host_config(m), &inst) ||
	    t->start(inst))
		return 1;
	l = calloc((size_t)ns, sizeof(*l));
	vals = calloc((size_t)ns, sizeof(*vals));
	s = calloc((size_t)ns, sizeof(*s));
	v = calloc((size_t)ns, sizeof(*v));
	ts = calloc((size_t)ns, sizeof(*ts));
	if (!l || !vals || !s || !v || !ts)
		return 1;
	/* node_exporter-like: node_cpu_seconds_total{cpu,instance,job,mode} */
	for (long i = 0; i < ns; i++) {
		snprintf(vals[i][0], sizeof(vals[i][0]), "%ld", i % 16);
		snprintf(vals[i][1], sizeof(vals[i][1]), "mode_%ld", i / 16);
		l[i][0] = (struct starling_label){"__name__", "node_cpu_seconds_total"};
		l[i][1] = (struct starling_label){"cpu", vals[i][0]};
		l[i][2] = (struct starling_label){"instance", "10.0.0.5:9100"};
		l[i][3] = (struct starling_label){"job", "node"};
		l[i][4] = (struct starling_label){"mode", vals[i][1]};
		s[i] = (struct starling_series){l[i],  5,      starling_labels_hash(l[i], 5),
						&v[i], &ts[i], 1};
	}
	t0 = thread_cpu_s();
	for (long k = 0; k < ticks; k++) {
		struct starling_series_batch b = {s, (size_t)ns, NULL, 0};

		for (long i = 0; i < ns; i++) {
			v[i] = (double)(k * 7 + i) * 1.25;
			ts[i] = now;
		}
		now += 15000;
		t->receive_series(inst, &b);
	}
	dt = thread_cpu_s() - t0;
	bytes = mock_host_metric(m, "starling_remote_write_buffer_bytes", NULL);
	printf(
	    "receive_series: %.1f ns CPU/sample over %ld samples; disk buffer %.2f bytes/sample\n",
	    dt * 1e9 / ((double)ns * (double)ticks), ns * ticks,
	    bytes / ((double)ns * (double)ticks));
	t->stop(inst);
	t->destroy(inst);
	mock_host_free(m);
	free(l);
	free(vals);
	free(s);
	free(v);
	free(ts);
	return 0;
}
