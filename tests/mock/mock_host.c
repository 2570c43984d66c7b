/* In-process implementation of struct starling_host_api for plugin tests. */
#include "mock_host.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <libconfig.h>

struct mock_metric {
	char *name;
	char *labels;
	enum starling_self_metric_type type;
	double value;
	struct mock_host *m;
};

struct mock_timer {
	int64_t due;	/* mock monotonic ms */
	int64_t period; /* 0 = once */
	starling_timer_fn fn;
	void *arg;
	bool live;
};

struct mock_log {
	enum starling_log_level level;
	char *text;
};

struct mock_work {
	pthread_t tid;
	starling_timer_fn fn;
	void *arg;
};

struct mock_host {
	struct starling_host_api api;
	char *id;
	const struct starling_config_key *schema;
	config_t cfgs[8]; /* current + replaced configs kept alive */
	size_t n_cfgs;
	char *state_dir;
	pthread_mutex_t lock; /* everything below */
	bool quiet;
	struct mock_log *logs;
	size_t n_logs, cap_logs;
	struct mock_metric **metrics;
	size_t n_metrics;
	struct mock_timer **timers;
	size_t n_timers;
	struct mock_work **works;
	size_t n_works;
	struct starling_series_batch **batches;
	size_t n_batches;
	size_t n_profiles;
	struct starling_target_set *last_targets; /* deep copy, NULL if none */
	struct starling_target_set **old_targets; /* replaced ones, freed at the end */
	size_t n_old_targets;
	size_t n_target_sets;
	mock_host_targets_fn targets_fn;
	void *targets_arg;
	mock_host_receiver_fn recv_fn;
	void *recv_arg;
	bool healthy;
	char *health_msg;
	size_t owned, total;
	mock_host_owns_fn owns_fn;
	void *owns_arg;
	mock_host_owns_at_fn owns_at_fn;
	void *owns_at_arg;
	uint64_t epoch;
	starling_cluster_change_fn change_fn;
	void *change_arg;
	char **strings; /* config_where results, replaced health messages */
	size_t n_strings;
};

static int64_t clock_offset_ms;
static pthread_mutex_t clock_lock = PTHREAD_MUTEX_INITIALIZER;

static struct mock_host *M(starling_component *self)
{
	return (struct mock_host *)self;
}

static void *xcalloc(size_t n, size_t sz)
{
	void *p = calloc(n ? n : 1, sz ? sz : 1);

	if (!p)
		abort(); /* tests only */
	return p;
}

static char *xstrdup(const char *s)
{
	char *p = strdup(s ? s : "");

	if (!p)
		abort();
	return p;
}

static void *push(void *arr, size_t *n, size_t sz)
{
	void *p = realloc(arr, (*n + 1) * sz);

	if (!p)
		abort();
	(*n)++;
	return p;
}

/* ---- clock -------------------------------------------------------------- */

static int64_t offset(void)
{
	int64_t o;

	pthread_mutex_lock(&clock_lock);
	o = clock_offset_ms;
	pthread_mutex_unlock(&clock_lock);
	return o;
}

static int64_t api_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + offset();
}

static int64_t api_monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + offset();
}

/* ---- logging / identity ---------------------------------------------------- */

static void api_log(starling_component *self, enum starling_log_level level, const char *fmt, ...)
{
	struct mock_host *m = M(self);
	static const char *const names[] = {"error", "warn", "info", "debug"};
	char buf[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&m->lock);
	if (!m->quiet)
		fprintf(stderr, "level=%s component=%s msg=\"%s\"\n",
			(unsigned)level < 4 ? names[level] : "?", m->id, buf);
	if (m->n_logs == m->cap_logs) {
		m->cap_logs = m->cap_logs ? 2 * m->cap_logs : 64;
		m->logs = realloc(m->logs, m->cap_logs * sizeof(*m->logs));
		if (!m->logs)
			abort();
	}
	m->logs[m->n_logs].level = level;
	m->logs[m->n_logs].text = xstrdup(buf);
	m->n_logs++;
	pthread_mutex_unlock(&m->lock);
}

static const char *api_component_id(starling_component *self)
{
	return M(self)->id;
}

static int mkdir_p(const char *path)
{
	char tmp[4096];
	size_t len = strlen(path);

	if (len >= sizeof(tmp))
		return -ENAMETOOLONG;
	memcpy(tmp, path, len + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p == '/') {
			*p = 0;
			if (mkdir(tmp, 0755) && errno != EEXIST)
				return -errno;
			*p = '/';
		}
	}
	if (mkdir(tmp, 0755) && errno != EEXIST)
		return -errno;
	return 0;
}

static const char *api_state_dir(starling_component *self)
{
	struct mock_host *m = M(self);
	const char *r;

	pthread_mutex_lock(&m->lock);
	if (!m->state_dir) {
		char tmpl[] = "/tmp/starling-mock-XXXXXX";

		if (mkdtemp(tmpl))
			m->state_dir = xstrdup(tmpl);
	} else if (mkdir_p(m->state_dir) < 0) {
		pthread_mutex_unlock(&m->lock);
		return NULL;
	}
	r = m->state_dir;
	pthread_mutex_unlock(&m->lock);
	return r;
}

/* ---- config ------------------------------------------------------------- */

static const struct starling_config_key *find_key(const struct starling_config_key *keys,
						  const char *name, size_t len)
{
	if (!keys)
		return NULL;
	for (; keys->name; keys++)
		if (strlen(keys->name) == len && !strncmp(keys->name, name, len))
			return keys;
	return NULL;
}

/* The schema describing the members of group `s` (or of the groups inside
 * list `s`). */
static const struct starling_config_key *member_schema(struct mock_host *m,
						       const config_setting_t *s)
{
	const config_setting_t *p;
	const struct starling_config_key *k;
	const char *name;

	if (config_setting_is_root(s))
		return m->schema;
	p = config_setting_parent(s);
	if (config_setting_is_group(p)) {
		name = config_setting_name(s);
		k = find_key(member_schema(m, p), name, strlen(name));
		return k ? k->children : NULL;
	}
	return member_schema(m, p);
}

static const struct starling_config_key *path_key(struct mock_host *m, const config_setting_t *node,
						  const char *path)
{
	const struct starling_config_key *keys = member_schema(m, node), *k = NULL;
	const char *p = path;

	while (p && *p) {
		const char *dot = strchr(p, '.');
		size_t len = dot ? (size_t)(dot - p) : strlen(p);

		k = find_key(keys, p, len);
		if (!k)
			return NULL;
		keys = k->children;
		p = dot ? dot + 1 : NULL;
	}
	return k;
}

static const config_setting_t *resolve(const starling_config *node, const char *path)
{
	const config_setting_t *s = (const config_setting_t *)node;

	if (!s)
		return NULL;
	if (!path || !*path)
		return s;
	if (!config_setting_is_group(s))
		return NULL;
	return config_setting_lookup((config_setting_t *)s, path);
}

/* The host this node belongs to: its root setting carries a hook. */
static struct mock_host *host_of(const config_setting_t *s)
{
	return (struct mock_host *)config_setting_get_hook(config_root_setting(s->config));
}

static const starling_config *api_config_lookup(const starling_config *node, const char *path)
{
	return (const starling_config *)resolve(node, path);
}

static size_t api_config_count(const starling_config *node)
{
	const config_setting_t *s = (const config_setting_t *)node;

	if (!s || !config_setting_is_aggregate(s))
		return 0;
	return (size_t)config_setting_length(s);
}

static const starling_config *api_config_child(const starling_config *node, size_t index)
{
	const config_setting_t *s = (const config_setting_t *)node;

	if (!s || !config_setting_is_aggregate(s) || index > INT32_MAX)
		return NULL;
	return (const starling_config *)config_setting_get_elem(s, (unsigned)index);
}

static const char *api_config_name(const starling_config *node)
{
	const config_setting_t *s = (const config_setting_t *)node;

	return s ? config_setting_name(s) : NULL;
}

static const char *api_config_where(const starling_config *node)
{
	const config_setting_t *s = (const config_setting_t *)node;
	struct mock_host *m;
	char buf[64];
	char *r;

	if (!s)
		return "mock.cfg";
	m = host_of(s);
	snprintf(buf, sizeof(buf), "mock.cfg:%u", (unsigned)config_setting_source_line(s));
	r = xstrdup(buf);
	pthread_mutex_lock(&m->lock);
	m->strings = push(m->strings, &m->n_strings, sizeof(char *));
	m->strings[m->n_strings - 1] = r;
	pthread_mutex_unlock(&m->lock);
	return r;
}

/* Locate a value: the setting, or the schema default string. */
static int locate(const starling_config *node, const char *path, const config_setting_t **s,
		  const char **def)
{
	const config_setting_t *n = (const config_setting_t *)node;
	const struct starling_config_key *k;

	*s = resolve(node, path);
	*def = NULL;
	if (*s)
		return 0;
	if (!n)
		return -ENOENT;
	k = path_key(host_of(n), n, path);
	if (k && k->default_value) {
		*def = k->default_value;
		return 0;
	}
	return -ENOENT;
}

static int api_config_string(const starling_config *node, const char *path, const char **out)
{
	const config_setting_t *s;
	const char *def;
	int r = locate(node, path, &s, &def);

	if (r)
		return r;
	if (def) {
		*out = def;
		return 0;
	}
	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return -EINVAL;
	*out = config_setting_get_string(s);
	return 0;
}

static int parse_int(const char *v, int64_t *out)
{
	char *end;
	long long x;

	errno = 0;
	x = strtoll(v, &end, 10);
	if (errno || end == v || *end)
		return -EINVAL;
	*out = x;
	return 0;
}

static int api_config_int(const starling_config *node, const char *path, int64_t *out)
{
	const config_setting_t *s;
	const char *def;
	int r = locate(node, path, &s, &def);

	if (r)
		return r;
	if (def)
		return parse_int(def, out);
	if (config_setting_type(s) != CONFIG_TYPE_INT &&
	    config_setting_type(s) != CONFIG_TYPE_INT64)
		return -EINVAL;
	*out = config_setting_get_int64(s);
	return 0;
}

static int api_config_float(const starling_config *node, const char *path, double *out)
{
	const config_setting_t *s;
	const char *def;
	char *end;
	int r = locate(node, path, &s, &def);

	if (r)
		return r;
	if (def) {
		*out = strtod(def, &end);
		return (end == def || *end) ? -EINVAL : 0;
	}
	if (!config_setting_is_number(s))
		return -EINVAL;
	*out = config_setting_type(s) == CONFIG_TYPE_FLOAT ? config_setting_get_float(s)
							   : (double)config_setting_get_int64(s);
	return 0;
}

static int api_config_bool(const starling_config *node, const char *path, bool *out)
{
	const config_setting_t *s;
	const char *def;
	int r = locate(node, path, &s, &def);

	if (r)
		return r;
	if (def) {
		if (!strcmp(def, "true"))
			*out = true;
		else if (!strcmp(def, "false"))
			*out = false;
		else
			return -EINVAL;
		return 0;
	}
	if (config_setting_type(s) != CONFIG_TYPE_BOOL)
		return -EINVAL;
	*out = config_setting_get_bool(s);
	return 0;
}

/* "1h2m3s4ms", "250ms", "0s", "1.5s". */
static int parse_duration(const char *v, int64_t *out)
{
	const char *p = v;
	double total = 0;

	if (!*p)
		return -EINVAL;
	if (!strcmp(p, "0")) {
		*out = 0;
		return 0;
	}
	while (*p) {
		char *end;
		double x = strtod(p, &end);
		double mult;

		if (end == p || x < 0)
			return -EINVAL;
		p = end;
		if (!strncmp(p, "ms", 2)) {
			mult = 1;
			p += 2;
		} else if (!strncmp(p, "us", 2)) {
			mult = 0.001;
			p += 2;
		} else if (*p == 's') {
			mult = 1000;
			p++;
		} else if (*p == 'm') {
			mult = 60000;
			p++;
		} else if (*p == 'h') {
			mult = 3600000;
			p++;
		} else if (*p == 'd') {
			mult = 86400000;
			p++;
		} else if (*p == 'w') {
			mult = 7 * 86400000.0;
			p++;
		} else {
			return -EINVAL;
		}
		total += x * mult;
	}
	*out = (int64_t)total;
	return 0;
}

static int api_config_duration_ms(const starling_config *node, const char *path, int64_t *out)
{
	const config_setting_t *s;
	const char *def;
	int r = locate(node, path, &s, &def);

	if (r)
		return r;
	if (def)
		return parse_duration(def, out);
	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return -EINVAL;
	return parse_duration(config_setting_get_string(s), out);
}

static int parse_bytes(const char *v, int64_t *out)
{
	static const struct {
		const char *suffix;
		double mult;
	} units[] = {
	    {"KiB", 1024.0},
	    {"MiB", 1048576.0},
	    {"GiB", 1073741824.0},
	    {"TiB", 1099511627776.0},
	    {"KB", 1e3},
	    {"MB", 1e6},
	    {"GB", 1e9},
	    {"TB", 1e12},
	    {"B", 1},
	    {"", 1},
	};
	char *end;
	double x = strtod(v, &end);

	if (end == v || x < 0)
		return -EINVAL;
	while (*end == ' ')
		end++;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (!strcmp(end, units[i].suffix)) {
			*out = (int64_t)(x * units[i].mult);
			return 0;
		}
	}
	return -EINVAL;
}

static int api_config_bytes(const starling_config *node, const char *path, int64_t *out)
{
	const config_setting_t *s;
	const char *def;
	int r = locate(node, path, &s, &def);

	if (r)
		return r;
	if (def)
		return parse_bytes(def, out);
	if (config_setting_type(s) == CONFIG_TYPE_INT ||
	    config_setting_type(s) == CONFIG_TYPE_INT64) {
		*out = config_setting_get_int64(s);
		return *out < 0 ? -EINVAL : 0;
	}
	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return -EINVAL;
	return parse_bytes(config_setting_get_string(s), out);
}

/* ---- timers and work -------------------------------------------------------- */

static starling_timer *api_timer_start(starling_component *self, int64_t first_ms,
				       int64_t period_ms, starling_timer_fn fn, void *arg)
{
	struct mock_host *m = M(self);
	struct mock_timer *t = xcalloc(1, sizeof(*t));

	t->due = api_monotonic_ms() + first_ms;
	t->period = period_ms;
	t->fn = fn;
	t->arg = arg;
	t->live = true;
	pthread_mutex_lock(&m->lock);
	m->timers = push(m->timers, &m->n_timers, sizeof(*m->timers));
	m->timers[m->n_timers - 1] = t;
	pthread_mutex_unlock(&m->lock);
	return (starling_timer *)t;
}

static void api_timer_cancel(starling_component *self, starling_timer *timer)
{
	struct mock_host *m = M(self);

	pthread_mutex_lock(&m->lock);
	((struct mock_timer *)timer)->live = false;
	pthread_mutex_unlock(&m->lock);
}

static void *work_main(void *p)
{
	struct mock_work *w = p;

	w->fn(w->arg);
	return NULL;
}

static int api_work_submit(starling_component *self, starling_timer_fn fn, void *arg)
{
	struct mock_host *m = M(self);
	struct mock_work *w = xcalloc(1, sizeof(*w));
	int r;

	w->fn = fn;
	w->arg = arg;
	pthread_mutex_lock(&m->lock);
	r = pthread_create(&w->tid, NULL, work_main, w);
	if (r) {
		pthread_mutex_unlock(&m->lock);
		free(w);
		return -r;
	}
	m->works = push(m->works, &m->n_works, sizeof(*m->works));
	m->works[m->n_works - 1] = w;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

/* ---- data --------------------------------------------------------------- */

static struct starling_series_batch *copy_batch(const struct starling_series_batch *b)
{
	struct starling_series_batch *c = xcalloc(1, sizeof(*c));
	struct starling_series *ss = xcalloc(b->n_series, sizeof(*ss));
	struct starling_metadata *md = xcalloc(b->n_metadata, sizeof(*md));

	for (size_t i = 0; i < b->n_series; i++) {
		const struct starling_series *s = &b->series[i];
		struct starling_label *l = xcalloc(s->n_labels, sizeof(*l));
		double *v = xcalloc(s->n_samples, sizeof(*v));
		int64_t *t = xcalloc(s->n_samples, sizeof(*t));

		for (size_t j = 0; j < s->n_labels; j++) {
			l[j].name = xstrdup(s->labels[j].name);
			l[j].value = xstrdup(s->labels[j].value);
		}
		if (s->n_samples) {
			memcpy(v, s->values, s->n_samples * sizeof(*v));
			memcpy(t, s->timestamps_ms, s->n_samples * sizeof(*t));
		}
		ss[i] = *s;
		ss[i].labels = l;
		ss[i].values = v;
		ss[i].timestamps_ms = t;
	}
	for (size_t i = 0; i < b->n_metadata; i++) {
		md[i] = b->metadata[i];
		md[i].family = xstrdup(b->metadata[i].family);
		md[i].help = b->metadata[i].help ? xstrdup(b->metadata[i].help) : NULL;
		md[i].unit = b->metadata[i].unit ? xstrdup(b->metadata[i].unit) : NULL;
	}
	c->series = ss;
	c->n_series = b->n_series;
	c->metadata = md;
	c->n_metadata = b->n_metadata;
	return c;
}

static void free_batch(struct starling_series_batch *c)
{
	for (size_t i = 0; i < c->n_series; i++) {
		const struct starling_series *s = &c->series[i];

		for (size_t j = 0; j < s->n_labels; j++) {
			free((char *)s->labels[j].name);
			free((char *)s->labels[j].value);
		}
		free((void *)s->labels);
		free((void *)s->values);
		free((void *)s->timestamps_ms);
	}
	for (size_t i = 0; i < c->n_metadata; i++) {
		free((char *)c->metadata[i].family);
		free((char *)c->metadata[i].help);
		free((char *)c->metadata[i].unit);
	}
	free((void *)c->series);
	free((void *)c->metadata);
	free(c);
}

static int api_forward_series(starling_component *self, const struct starling_series_batch *batch)
{
	struct mock_host *m = M(self);
	struct starling_series_batch *c = copy_batch(batch);
	mock_host_receiver_fn fn;
	void *arg;

	pthread_mutex_lock(&m->lock);
	m->batches = push(m->batches, &m->n_batches, sizeof(*m->batches));
	m->batches[m->n_batches - 1] = c;
	fn = m->recv_fn;
	arg = m->recv_arg;
	pthread_mutex_unlock(&m->lock);
	return fn ? fn(arg, batch) : 0;
}

static int api_forward_profile(starling_component *self, const struct starling_profile *profile)
{
	struct mock_host *m = M(self);

	pthread_mutex_lock(&m->lock);
	m->n_profiles++;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static void free_target_set(struct starling_target_set *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n_targets; i++) {
		const struct starling_target *t = &c->targets[i];

		for (size_t j = 0; j < t->n_labels; j++) {
			free((char *)t->labels[j].name);
			free((char *)t->labels[j].value);
		}
		free((void *)t->labels);
	}
	free((void *)c->targets);
	free(c);
}

static struct starling_target_set *copy_target_set(const struct starling_target_set *set)
{
	struct starling_target_set *c = xcalloc(1, sizeof(*c));
	struct starling_target *ts = xcalloc(set->n_targets, sizeof(*ts));

	for (size_t i = 0; i < set->n_targets; i++) {
		const struct starling_target *t = &set->targets[i];
		struct starling_label *l = xcalloc(t->n_labels, sizeof(*l));

		for (size_t j = 0; j < t->n_labels; j++) {
			l[j].name = xstrdup(t->labels[j].name);
			l[j].value = xstrdup(t->labels[j].value);
		}
		ts[i].labels = l;
		ts[i].n_labels = t->n_labels;
	}
	c->targets = ts;
	c->n_targets = set->n_targets;
	return c;
}

/* Labels sorted by name, names unique and non-empty, values non-NULL: what
 * the host checks before it accepts a set. */
static bool target_set_ok(const struct starling_target_set *set)
{
	if (!set || (set->n_targets && !set->targets))
		return false;
	for (size_t i = 0; i < set->n_targets; i++) {
		const struct starling_target *t = &set->targets[i];

		if (t->n_labels && !t->labels)
			return false;
		for (size_t j = 0; j < t->n_labels; j++) {
			if (!t->labels[j].name || !*t->labels[j].name || !t->labels[j].value)
				return false;
			if (j && strcmp(t->labels[j - 1].name, t->labels[j].name) >= 0)
				return false;
		}
	}
	return true;
}

static int api_forward_targets(starling_component *self, const struct starling_target_set *set)
{
	struct mock_host *m = M(self);
	struct starling_target_set *c, *old;
	mock_host_targets_fn fn;
	void *arg;

	if (!target_set_ok(set))
		return -EINVAL;
	c = copy_target_set(set);
	pthread_mutex_lock(&m->lock);
	old = m->last_targets;
	m->last_targets = c;
	m->n_target_sets++;
	/* kept until mock_host_free(): a test may still read the set
	 * mock_host_last_targets() gave it while the component publishes the
	 * next one on its own thread */
	if (old) {
		m->old_targets = push(m->old_targets, &m->n_old_targets, sizeof(*m->old_targets));
		m->old_targets[m->n_old_targets - 1] = old;
	}
	fn = m->targets_fn;
	arg = m->targets_arg;
	pthread_mutex_unlock(&m->lock);
	if (fn)
		fn(arg, m->id, set);
	return 0;
}

/* ---- metrics, health ------------------------------------------------------ */

static starling_metric *api_metric_register(starling_component *self,
					    enum starling_self_metric_type type, const char *name,
					    const char *help, const char *labels)
{
	struct mock_host *m = M(self);
	struct mock_metric *mm;

	if (!name)
		return NULL;
	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->n_metrics; i++) {
		mm = m->metrics[i];
		if (!strcmp(mm->name, name) && !strcmp(mm->labels, labels ? labels : "")) {
			pthread_mutex_unlock(&m->lock);
			return (starling_metric *)mm;
		}
	}
	mm = xcalloc(1, sizeof(*mm));
	mm->name = xstrdup(name);
	mm->labels = xstrdup(labels);
	mm->type = type;
	mm->m = m;
	m->metrics = push(m->metrics, &m->n_metrics, sizeof(*m->metrics));
	m->metrics[m->n_metrics - 1] = mm;
	pthread_mutex_unlock(&m->lock);
	return (starling_metric *)mm;
}

static bool label_name_ok(const char *n)
{
	if (!n || !*n || !(isalpha((unsigned char)*n) || *n == '_'))
		return false;
	for (const char *p = n; *p; p++)
		if (!(isalnum((unsigned char)*p) || *p == '_'))
			return false;
	return strcmp(n, "component_id") != 0;
}

/* The array is kept in the 1.0 "k=v,k2=v2" form, so mock_host_metric()
 * finds metrics the same way whichever call registered them. */
static starling_metric *api_metric_register_labels(starling_component *self,
						   enum starling_self_metric_type type,
						   const char *name, const char *help,
						   const struct starling_label *labels,
						   size_t n_labels)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f;
	starling_metric *r;

	for (size_t i = 0; labels && i < n_labels; i++)
		if (!label_name_ok(labels[i].name) || !labels[i].value)
			return NULL;
	f = open_memstream(&buf, &len);
	if (!f)
		abort();
	for (size_t i = 0; labels && i < n_labels; i++)
		fprintf(f, "%s%s=%s", i ? "," : "", labels[i].name, labels[i].value);
	fclose(f);
	r = api_metric_register(self, type, name, help, buf);
	free(buf);
	return r;
}

static void api_metric_add(starling_metric *metric, double delta)
{
	struct mock_metric *mm = (struct mock_metric *)metric;

	if (!mm)
		return;
	pthread_mutex_lock(&mm->m->lock);
	mm->value += delta;
	pthread_mutex_unlock(&mm->m->lock);
}

static void api_metric_set(starling_metric *metric, double value)
{
	struct mock_metric *mm = (struct mock_metric *)metric;

	if (!mm)
		return;
	pthread_mutex_lock(&mm->m->lock);
	mm->value = value;
	pthread_mutex_unlock(&mm->m->lock);
}

static void api_set_health(starling_component *self, bool healthy, const char *msg)
{
	struct mock_host *m = M(self);

	pthread_mutex_lock(&m->lock);
	m->healthy = healthy;
	/* kept until mock_host_free(), not freed: a test may still hold the
	 * message mock_host_healthy() gave it while the component's thread
	 * sets the next one (freeing it here was a use-after-free) */
	if (m->health_msg) {
		m->strings = push(m->strings, &m->n_strings, sizeof(char *));
		m->strings[m->n_strings - 1] = m->health_msg;
	}
	m->health_msg = msg ? xstrdup(msg) : NULL;
	pthread_mutex_unlock(&m->lock);
}

static void api_report_targets(starling_component *self, size_t owned, size_t total)
{
	struct mock_host *m = M(self);

	pthread_mutex_lock(&m->lock);
	m->owned = owned;
	m->total = total;
	pthread_mutex_unlock(&m->lock);
}

/* ---- cluster ------------------------------------------------------------ */

static bool api_cluster_owns_at(starling_component *self, uint64_t key, unsigned replicas,
				int64_t at_ms)
{
	struct mock_host *m = M(self);
	mock_host_owns_fn fn;
	mock_host_owns_at_fn at_fn;
	void *arg, *at_arg;

	pthread_mutex_lock(&m->lock);
	fn = m->owns_fn;
	arg = m->owns_arg;
	at_fn = m->owns_at_fn;
	at_arg = m->owns_at_arg;
	pthread_mutex_unlock(&m->lock);
	if (at_fn)
		return at_fn(at_arg, key, replicas, at_ms);
	return fn ? fn(arg, key, replicas) : true;
}

static bool api_cluster_owns(starling_component *self, uint64_t key, unsigned replicas)
{
	return api_cluster_owns_at(self, key, replicas, api_now_ms());
}

static size_t api_cluster_owners(starling_component *self, uint64_t key,
				 struct starling_node_name *out, size_t n)
{
	if (!n || !api_cluster_owns(self, key, 1))
		return 0;
	snprintf(out[0].name, sizeof(out[0].name), "mock-node");
	return 1;
}

static uint64_t api_cluster_epoch(starling_component *self)
{
	struct mock_host *m = M(self);
	uint64_t e;

	pthread_mutex_lock(&m->lock);
	e = m->epoch;
	pthread_mutex_unlock(&m->lock);
	return e;
}

static void api_cluster_self(starling_component *self, struct starling_node_name *out)
{
	snprintf(out->name, sizeof(out->name), "mock-node");
}

static int api_cluster_subscribe(starling_component *self, starling_cluster_change_fn fn, void *arg)
{
	struct mock_host *m = M(self);

	pthread_mutex_lock(&m->lock);
	m->change_fn = fn;
	m->change_arg = arg;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

/* ---- public ------------------------------------------------------------- */

static int load_config(struct mock_host *m, const char *text, char *err, size_t errlen)
{
	config_t *c;

	if (m->n_cfgs == sizeof(m->cfgs) / sizeof(m->cfgs[0])) {
		snprintf(err, errlen, "too many config replacements");
		return -ENOSPC;
	}
	c = &m->cfgs[m->n_cfgs];
	config_init(c);
	if (config_read_string(c, text ? text : "") != CONFIG_TRUE) {
		snprintf(err, errlen, "mock.cfg:%d: %s", config_error_line(c),
			 config_error_text(c));
		config_destroy(c);
		return -EINVAL;
	}
	config_setting_set_hook(config_root_setting(c), m);
	m->n_cfgs++;
	return 0;
}

struct mock_host *mock_host_new(const char *component_id, const struct starling_config_key *schema,
				const char *config_text, char *err, size_t errlen)
{
	struct mock_host *m = xcalloc(1, sizeof(*m));
	struct starling_host_api *a = &m->api;

	pthread_mutex_init(&m->lock, NULL);
	m->id = xstrdup(component_id ? component_id : "mock.component");
	m->schema = schema;
	m->healthy = true;
	m->epoch = 1;
	if (load_config(m, config_text, err, errlen)) {
		free(m->id);
		free(m);
		return NULL;
	}
	a->abi_major = STARLING_ABI_MAJOR;
	a->abi_minor = STARLING_ABI_MINOR;
	a->struct_size = sizeof(*a);
	a->log = api_log;
	a->component_id = api_component_id;
	a->state_dir = api_state_dir;
	a->config_lookup = api_config_lookup;
	a->config_count = api_config_count;
	a->config_child = api_config_child;
	a->config_name = api_config_name;
	a->config_string = api_config_string;
	a->config_int = api_config_int;
	a->config_float = api_config_float;
	a->config_bool = api_config_bool;
	a->config_duration_ms = api_config_duration_ms;
	a->config_bytes = api_config_bytes;
	a->config_where = api_config_where;
	a->now_ms = api_now_ms;
	a->monotonic_ms = api_monotonic_ms;
	a->timer_start = api_timer_start;
	a->timer_cancel = api_timer_cancel;
	a->work_submit = api_work_submit;
	a->forward_series = api_forward_series;
	a->forward_profile = api_forward_profile;
	a->metric_register = api_metric_register;
	a->metric_add = api_metric_add;
	a->metric_set = api_metric_set;
	a->set_health = api_set_health;
	a->report_targets = api_report_targets;
	a->cluster_owns = api_cluster_owns;
	a->cluster_owners = api_cluster_owners;
	a->cluster_epoch = api_cluster_epoch;
	a->cluster_self = api_cluster_self;
	a->cluster_subscribe = api_cluster_subscribe;
	a->cluster_owns_at = api_cluster_owns_at;
	a->metric_register_labels = api_metric_register_labels;
	a->forward_targets = api_forward_targets;
	return m;
}

int mock_host_set_config(struct mock_host *m, const char *config_text, char *err, size_t errlen)
{
	return load_config(m, config_text, err, errlen);
}

void mock_host_wait_work(struct mock_host *m)
{
	for (;;) {
		struct mock_work *w = NULL;

		pthread_mutex_lock(&m->lock);
		if (m->n_works) {
			w = m->works[m->n_works - 1];
			m->n_works--;
		}
		pthread_mutex_unlock(&m->lock);
		if (!w)
			return;
		pthread_join(w->tid, NULL);
		free(w);
	}
}

void mock_host_free(struct mock_host *m)
{
	if (!m)
		return;
	mock_host_wait_work(m);
	free(m->works);
	for (size_t i = 0; i < m->n_cfgs; i++)
		config_destroy(&m->cfgs[i]);
	for (size_t i = 0; i < m->n_logs; i++)
		free(m->logs[i].text);
	free(m->logs);
	for (size_t i = 0; i < m->n_metrics; i++) {
		free(m->metrics[i]->name);
		free(m->metrics[i]->labels);
		free(m->metrics[i]);
	}
	free(m->metrics);
	for (size_t i = 0; i < m->n_timers; i++)
		free(m->timers[i]);
	free(m->timers);
	mock_host_clear_forwarded(m);
	free_target_set(m->last_targets);
	for (size_t i = 0; i < m->n_old_targets; i++)
		free_target_set(m->old_targets[i]);
	free(m->old_targets);
	for (size_t i = 0; i < m->n_strings; i++)
		free(m->strings[i]);
	free(m->strings);
	free(m->health_msg);
	free(m->state_dir);
	free(m->id);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

const struct starling_host_api *mock_host_api(struct mock_host *m)
{
	return &m->api;
}

starling_component *mock_host_self(struct mock_host *m)
{
	return (starling_component *)m;
}

const starling_config *mock_host_config(struct mock_host *m)
{
	return (const starling_config *)config_root_setting(&m->cfgs[m->n_cfgs - 1]);
}

void mock_host_set_state_dir(struct mock_host *m, const char *dir)
{
	pthread_mutex_lock(&m->lock);
	free(m->state_dir);
	m->state_dir = dir ? xstrdup(dir) : NULL;
	pthread_mutex_unlock(&m->lock);
}

double mock_host_metric(struct mock_host *m, const char *name, const char *labels_substr)
{
	double sum = 0;
	bool found = false;

	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->n_metrics; i++) {
		struct mock_metric *mm = m->metrics[i];

		if (strcmp(mm->name, name))
			continue;
		if (labels_substr && !strstr(mm->labels, labels_substr))
			continue;
		sum += mm->value;
		found = true;
	}
	pthread_mutex_unlock(&m->lock);
	return found ? sum : NAN;
}

void mock_host_set_quiet(struct mock_host *m, bool quiet)
{
	pthread_mutex_lock(&m->lock);
	m->quiet = quiet;
	pthread_mutex_unlock(&m->lock);
}

size_t mock_host_log_count(struct mock_host *m, enum starling_log_level level, const char *substr)
{
	size_t n = 0;

	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->n_logs; i++)
		if (m->logs[i].level <= level && (!substr || strstr(m->logs[i].text, substr)))
			n++;
	pthread_mutex_unlock(&m->lock);
	return n;
}

/* Fire every live timer that is due (mock monotonic clock), earliest
 * first; repeating timers are re-armed and fire again while still due.
 * Callbacks run without the lock. */
static size_t fire_due(struct mock_host *m)
{
	size_t fired = 0;

	for (;;) {
		struct mock_timer *best = NULL;
		int64_t now = api_monotonic_ms();

		pthread_mutex_lock(&m->lock);
		for (size_t i = 0; i < m->n_timers; i++) {
			struct mock_timer *t = m->timers[i];

			if (t->live && t->due <= now && (!best || t->due < best->due))
				best = t;
		}
		if (best) {
			if (best->period > 0)
				best->due += best->period;
			else
				best->live = false;
		}
		pthread_mutex_unlock(&m->lock);
		if (!best)
			return fired;
		best->fn(best->arg);
		fired++;
	}
}

void mock_host_advance(struct mock_host *m, int64_t ms)
{
	pthread_mutex_lock(&clock_lock);
	clock_offset_ms += ms;
	pthread_mutex_unlock(&clock_lock);
	fire_due(m);
}

/* Fire each timer that is live now exactly once (snapshot first, so a
 * callback that starts timers does not loop). */
size_t mock_host_fire_timers(struct mock_host *m)
{
	struct mock_timer **snap;
	size_t n = 0, fired = 0;

	pthread_mutex_lock(&m->lock);
	snap = xcalloc(m->n_timers, sizeof(*snap));
	for (size_t i = 0; i < m->n_timers; i++)
		if (m->timers[i]->live)
			snap[n++] = m->timers[i];
	pthread_mutex_unlock(&m->lock);
	for (size_t i = 0; i < n; i++) {
		bool live;

		pthread_mutex_lock(&m->lock);
		live = snap[i]->live;
		if (live && !snap[i]->period)
			snap[i]->live = false;
		pthread_mutex_unlock(&m->lock);
		if (live) {
			snap[i]->fn(snap[i]->arg);
			fired++;
		}
	}
	free(snap);
	return fired;
}

size_t mock_host_timer_count(struct mock_host *m)
{
	size_t n = 0;

	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->n_timers; i++)
		n += m->timers[i]->live;
	pthread_mutex_unlock(&m->lock);
	return n;
}

void mock_host_set_receiver(struct mock_host *m, mock_host_receiver_fn fn, void *arg)
{
	pthread_mutex_lock(&m->lock);
	m->recv_fn = fn;
	m->recv_arg = arg;
	pthread_mutex_unlock(&m->lock);
}

size_t mock_host_forwarded_batches(struct mock_host *m)
{
	size_t n;

	pthread_mutex_lock(&m->lock);
	n = m->n_batches;
	pthread_mutex_unlock(&m->lock);
	return n;
}

size_t mock_host_forwarded_samples(struct mock_host *m)
{
	size_t n = 0;

	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->n_batches; i++)
		for (size_t j = 0; j < m->batches[i]->n_series; j++)
			n += m->batches[i]->series[j].n_samples;
	pthread_mutex_unlock(&m->lock);
	return n;
}

const struct starling_series_batch *mock_host_forwarded_batch(struct mock_host *m, size_t i)
{
	const struct starling_series_batch *b = NULL;

	pthread_mutex_lock(&m->lock);
	if (i < m->n_batches)
		b = m->batches[i];
	pthread_mutex_unlock(&m->lock);
	return b;
}

size_t mock_host_forwarded_profiles(struct mock_host *m)
{
	size_t n;

	pthread_mutex_lock(&m->lock);
	n = m->n_profiles;
	pthread_mutex_unlock(&m->lock);
	return n;
}

void mock_host_clear_forwarded(struct mock_host *m)
{
	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->n_batches; i++)
		free_batch(m->batches[i]);
	free(m->batches);
	m->batches = NULL;
	m->n_batches = 0;
	m->n_profiles = 0;
	pthread_mutex_unlock(&m->lock);
}

bool mock_host_healthy(struct mock_host *m, const char **msg)
{
	bool h;

	pthread_mutex_lock(&m->lock);
	h = m->healthy;
	if (msg)
		*msg = m->health_msg;
	pthread_mutex_unlock(&m->lock);
	return h;
}

void mock_host_targets(struct mock_host *m, size_t *owned, size_t *total)
{
	pthread_mutex_lock(&m->lock);
	*owned = m->owned;
	*total = m->total;
	pthread_mutex_unlock(&m->lock);
}

void mock_host_set_owns(struct mock_host *m, mock_host_owns_fn fn, void *arg)
{
	pthread_mutex_lock(&m->lock);
	m->owns_fn = fn;
	m->owns_arg = arg;
	pthread_mutex_unlock(&m->lock);
}

void mock_host_set_owns_at(struct mock_host *m, mock_host_owns_at_fn fn, void *arg)
{
	pthread_mutex_lock(&m->lock);
	m->owns_at_fn = fn;
	m->owns_at_arg = arg;
	pthread_mutex_unlock(&m->lock);
}

void mock_host_cluster_change(struct mock_host *m, uint64_t epoch)
{
	starling_cluster_change_fn fn;
	void *arg;

	pthread_mutex_lock(&m->lock);
	m->epoch = epoch;
	fn = m->change_fn;
	arg = m->change_arg;
	pthread_mutex_unlock(&m->lock);
	if (fn)
		fn(arg, epoch);
}

/* ---- target sets ---------------------------------------------------------- */

void mock_host_set_targets_receiver(struct mock_host *m, mock_host_targets_fn fn, void *arg)
{
	pthread_mutex_lock(&m->lock);
	m->targets_fn = fn;
	m->targets_arg = arg;
	pthread_mutex_unlock(&m->lock);
}

size_t mock_host_forwarded_target_sets(struct mock_host *m)
{
	size_t n;

	pthread_mutex_lock(&m->lock);
	n = m->n_target_sets;
	pthread_mutex_unlock(&m->lock);
	return n;
}

const struct starling_target_set *mock_host_last_targets(struct mock_host *m)
{
	const struct starling_target_set *s;

	pthread_mutex_lock(&m->lock);
	s = m->last_targets;
	pthread_mutex_unlock(&m->lock);
	return s;
}

int mock_host_deliver_targets(const struct starling_component_type *type, void *inst,
			      const char *source, const struct starling_target_set *set)
{
	static const struct starling_target_set empty = {0};

	if (!type || !type->receive_targets)
		return -EOPNOTSUPP;
	return type->receive_targets(inst, source, set ? set : &empty);
}

const char *mock_target_label(const struct starling_target *t, const char *name)
{
	for (size_t i = 0; t && i < t->n_labels; i++)
		if (!strcmp(t->labels[i].name, name))
			return t->labels[i].value;
	return NULL;
}

struct mock_targets {
	struct starling_target_set set;
	struct starling_target *targets;
	size_t n;
};

struct mock_targets *mock_targets_new(void)
{
	return xcalloc(1, sizeof(struct mock_targets));
}

static int label_cmp(const void *a, const void *b)
{
	return strcmp(((const struct starling_label *)a)->name,
		      ((const struct starling_label *)b)->name);
}

void mock_targets_add(struct mock_targets *mt, const char *label, ...)
{
	struct starling_label *l = NULL;
	size_t n = 0;
	va_list ap;

	va_start(ap, label);
	for (const char *kv = label; kv; kv = va_arg(ap, const char *)) {
		const char *eq = strchr(kv, '=');
		size_t i;

		if (!eq)
			abort(); /* a test bug */
		for (i = 0; i < n; i++)
			if (strlen(l[i].name) == (size_t)(eq - kv) &&
			    !strncmp(l[i].name, kv, (size_t)(eq - kv)))
				break;
		if (i == n) {
			l = push(l, &n, sizeof(*l));
			l[i].name = strndup(kv, (size_t)(eq - kv));
			if (!l[i].name)
				abort();
		} else {
			free((char *)l[i].value);
		}
		l[i].value = xstrdup(eq + 1);
	}
	va_end(ap);
	qsort(l, n, sizeof(*l), label_cmp);
	mt->targets = push(mt->targets, &mt->n, sizeof(*mt->targets));
	mt->targets[mt->n - 1].labels = l;
	mt->targets[mt->n - 1].n_labels = n;
}

const struct starling_target_set *mock_targets_set(struct mock_targets *mt)
{
	mt->set.targets = mt->targets;
	mt->set.n_targets = mt->n;
	return &mt->set;
}

void mock_targets_free(struct mock_targets *mt)
{
	if (!mt)
		return;
	for (size_t i = 0; i < mt->n; i++) {
		for (size_t j = 0; j < mt->targets[i].n_labels; j++) {
			free((char *)mt->targets[i].labels[j].name);
			free((char *)mt->targets[i].labels[j].value);
		}
		free((void *)mt->targets[i].labels);
	}
	free(mt->targets);
	free(mt);
}
