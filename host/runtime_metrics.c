/*
 * The /metrics exposition of the component runtime: configuration load
 * outcomes, per-component health and callback statistics, and the plugins'
 * self-metrics, in the Prometheus text format.
 */
#include "runtime_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const cb_names[CB_N] = {
    "create",	    "update",	      "start",		 "stop",
    "destroy",	    "receive_series", "receive_profile", "timer",
    "list_targets", "cluster_change", "receive_targets",
};

/* ---- introspection ------------------------------------------------------ */

struct metric_line {
	const char *name;
	const char *help;
	const char *type;
	char *labels;
	double value;
};

static int line_cmp(const void *a, const void *b)
{
	const struct metric_line *x = a, *y = b;

	return strcmp(x->name, y->name);
}

static void print_value(FILE *out, double v)
{
	if (isnan(v))
		fputs("NaN", out);
	else if (isinf(v))
		fputs(v > 0 ? "+Inf" : "-Inf", out);
	else
		fprintf(out, "%.17g", v);
}

static void json_escape_label(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', f);
		if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

unsigned runtime_cluster_observers(struct runtime *rt)
{
	unsigned n = 0;

	pthread_rwlock_rdlock(&rt->graph);
	for (size_t i = 0; i < rt->n_insts; i++) {
		struct starling_component *c = rt->insts[i];

		pthread_mutex_lock(&c->lock);
		n += c->sub_fn != NULL;
		pthread_mutex_unlock(&c->lock);
	}
	pthread_rwlock_unlock(&rt->graph);
	return n;
}

void runtime_write_metrics(struct runtime *rt, FILE *out)
{
	static const char *const fixed[][3] = {
	    {"starling_component_healthy", "gauge",
	     "Whether the component is healthy (1) or not (0)."},
	    {"starling_component_up", "gauge", "Whether the component is running (1)."},
	    {"starling_component_callback_calls_total", "counter",
	     "Callbacks of the component run by the host."},
	    {"starling_component_callback_errors_total", "counter",
	     "Callbacks of the component that returned an error."},
	    {"starling_component_callback_duration_seconds_total", "counter",
	     "Time spent in callbacks of the component."},
	    {"starling_component_targets", "gauge",
	     "Targets of the component (owned here or total)."},
	};
	struct metric_line *lines = NULL;
	size_t n = 0, cap = 0;

	fprintf(out,
		"# HELP starling_config_last_reload_successful Whether the last configuration load "
		"succeeded.\n# TYPE starling_config_last_reload_successful gauge\n"
		"starling_config_last_reload_successful %d\n"
		"# HELP starling_config_last_reload_success_timestamp_seconds Time of the last "
		"successful configuration load.\n"
		"# TYPE starling_config_last_reload_success_timestamp_seconds gauge\n"
		"starling_config_last_reload_success_timestamp_seconds %.3f\n"
		"# HELP starling_config_reloads_total Configuration loads by result.\n"
		"# TYPE starling_config_reloads_total counter\n"
		"starling_config_reloads_total{result=\"success\"} %llu\n"
		"starling_config_reloads_total{result=\"failure\"} %llu\n",
		__atomic_load_n(&rt->last_reload_ok, __ATOMIC_RELAXED) ? 1 : 0,
		(double)__atomic_load_n(&rt->last_reload_ok_ms, __ATOMIC_RELAXED) / 1000.0,
		(unsigned long long)__atomic_load_n(&rt->reloads_ok, __ATOMIC_RELAXED),
		(unsigned long long)__atomic_load_n(&rt->reloads_failed, __ATOMIC_RELAXED));
	pthread_rwlock_rdlock(&rt->graph);
	for (size_t f = 0; f < sizeof(fixed) / sizeof(fixed[0]); f++) {
		fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", fixed[f][0], fixed[f][2], fixed[f][0],
			fixed[f][1]);
		for (size_t i = 0; i < rt->n_insts; i++) {
			struct starling_component *c = rt->insts[i];
			const char *id = c->id;

			switch (f) {
			case 0:
				pthread_mutex_lock(&c->lock);
				fprintf(out, "%s{component_id=\"%s\",type=\"%s\"} %d\n",
					fixed[f][0], id, c->type_name, c->healthy ? 1 : 0);
				pthread_mutex_unlock(&c->lock);
				break;
			case 1:
				fprintf(out, "%s{component_id=\"%s\"} %d\n", fixed[f][0], id,
					__atomic_load_n(&c->state, __ATOMIC_ACQUIRE) ==
					    INST_RUNNING);
				break;
			case 2:
			case 3:
			case 4:
				for (int k = 0; k < CB_N; k++) {
					uint64_t calls =
					    __atomic_load_n(&c->stats[k].calls, __ATOMIC_RELAXED);

					if (!calls)
						continue;
					fprintf(out, "%s{component_id=\"%s\",callback=\"%s\"} ",
						fixed[f][0], id, cb_names[k]);
					if (f == 2)
						fprintf(out, "%llu\n", (unsigned long long)calls);
					else if (f == 3)
						fprintf(out, "%llu\n",
							(unsigned long long)__atomic_load_n(
							    &c->stats[k].errors, __ATOMIC_RELAXED));
					else
						fprintf(out, "%.9f\n",
							(double)__atomic_load_n(&c->stats[k].nanos,
										__ATOMIC_RELAXED) /
							    1e9);
				}
				break;
			case 5:
				pthread_mutex_lock(&c->lock);
				fprintf(out, "%s{component_id=\"%s\",scope=\"owned\"} %zu\n",
					fixed[f][0], id, c->owned);
				fprintf(out, "%s{component_id=\"%s\",scope=\"total\"} %zu\n",
					fixed[f][0], id, c->total);
				pthread_mutex_unlock(&c->lock);
				break;
			}
		}
	}
	/* Plugin self-metrics, grouped by name so HELP/TYPE appear once. */
	for (size_t i = 0; i < rt->n_insts; i++) {
		struct starling_component *c = rt->insts[i];

		pthread_mutex_lock(&c->lock);
		for (struct starling_metric *m = c->metrics; m; m = m->next) {
			char *lbl = NULL;
			size_t len = 0;
			FILE *f;

			if (n == cap) {
				size_t nc = cap ? cap * 2 : 32;
				struct metric_line *nl = realloc(lines, nc * sizeof(*nl));

				if (!nl)
					break;
				lines = nl;
				cap = nc;
			}
			f = open_memstream(&lbl, &len);
			if (!f)
				break;
			fputs("component_id=\"", f);
			json_escape_label(f, c->id);
			fputc('"', f);
			if (m->labels[0])
				fprintf(f, ",%s", m->labels);
			fclose(f);
			lines[n].name = m->name;
			lines[n].help = m->help;
			lines[n].type = m->type == STARLING_SELF_COUNTER ? "counter" : "gauge";
			lines[n].labels = lbl;
			lines[n].value =
			    bits_to_double(__atomic_load_n(&m->bits, __ATOMIC_RELAXED));
			n++;
		}
		pthread_mutex_unlock(&c->lock);
	}
	if (n)
		qsort(lines, n, sizeof(*lines), line_cmp);
	for (size_t i = 0; i < n; i++) {
		if (i == 0 || strcmp(lines[i].name, lines[i - 1].name)) {
			fprintf(out, "# HELP %s ", lines[i].name);
			for (const char *h = lines[i].help; *h; h++) {
				if (*h == '\\')
					fputs("\\\\", out);
				else if (*h == '\n')
					fputs("\\n", out);
				else
					fputc(*h, out);
			}
			fprintf(out, "\n# TYPE %s %s\n", lines[i].name, lines[i].type);
		}
		fprintf(out, "%s{%s} ", lines[i].name, lines[i].labels);
		print_value(out, lines[i].value);
		fputc('\n', out);
		free(lines[i].labels);
	}
	pthread_rwlock_unlock(&rt->graph);
	free(lines);
}
