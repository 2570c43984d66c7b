/*
 * The host API table handed to plugins (ABI 1.1, and the 1.0 table for
 * plugins built against 1.0): logging, state directories, health,
 * forwarding, self-metrics and cluster ownership. Timers and work_submit
 * are in runtime_timers.c. Locking: see runtime_internal.h.
 */
#include "runtime_internal.h"
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SUBSCRIBE_DEBOUNCE_MS 1000
#define MAX_OWNERS	      16

/* ---- host API --------------------------------------------------------- */

static void api_log(starling_component *c, enum starling_log_level level, const char *fmt, ...)
    STARLING_PRINTF(3, 4);

static void api_log(starling_component *c, enum starling_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (c && level == STARLING_LOG_ERROR) {
		/* Kept as the reason a create() or start() failed, so that the
		 * API, the UI and config errors carry the plugin's own words. */
		char buf[512];
		va_list cp;

		va_copy(cp, ap);
		vsnprintf(buf, sizeof(buf), fmt, cp);
		va_end(cp);
		pthread_mutex_lock(&c->lock);
		free(c->last_error);
		c->last_error = strdup(buf);
		pthread_mutex_unlock(&c->lock);
		/* A dry run reports it as a configuration error instead. */
		if (c->rt->validate_only) {
			va_end(ap);
			return;
		}
	}
	log_vmsg(level, c ? c->id : NULL, fmt, ap);
	va_end(ap);
}

static const char *api_component_id(starling_component *c)
{
	return c ? c->id : NULL;
}

static int mkdir_p(const char *path, mode_t mode)
{
	char buf[4096];
	size_t len = strlen(path);

	if (len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) && errno != EEXIST)
		return -errno;
	return 0;
}

static const char *api_state_dir(starling_component *c)
{
	char *p = NULL;
	int r;

	if (!c)
		return NULL;
	pthread_mutex_lock(&c->lock);
	if (!c->state_path) {
		if (asprintf(&p, "%s/%s", c->rt->state_dir, c->id) < 0) {
			p = NULL;
		} else if (c->rt->validate_only) {
			/* A dry run (check-config) names the directory only. */
		} else if ((r = mkdir_p(p, 0750)) != 0) {
			log_msg(STARLING_LOG_ERROR, c->id, "cannot create state directory %s: %s",
				p, strerror(-r));
			free(p);
			p = NULL;
		}
		c->state_path = p;
	}
	p = c->state_path;
	pthread_mutex_unlock(&c->lock);
	return p;
}

static int64_t api_now_ms(void)
{
	return now_ms();
}

static int64_t api_monotonic_ms(void)
{
	return mono_ms();
}

void set_health_locked(struct starling_component *c, bool healthy, const char *msg)
{
	c->healthy = healthy;
	free(c->health_msg);
	c->health_msg = msg ? strdup(msg) : NULL;
}

void api_set_health(starling_component *c, bool healthy, const char *msg)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	set_health_locked(c, healthy, msg);
	__atomic_store_n(&c->recv_failed, false, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&c->lock);
}

static void api_report_targets(starling_component *c, size_t owned, size_t total)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	c->owned = owned;
	c->total = total;
	pthread_mutex_unlock(&c->lock);
}

/* A failing receive marks the instance unhealthy (unless the plugin already
 * did); the next successful one clears what the host set. */
static void note_receive_result(struct starling_component *r, bool profile, int ret)
{
	char msg[160];

	if (ret >= 0 && !__atomic_load_n(&r->recv_failed, __ATOMIC_RELAXED))
		return;
	pthread_mutex_lock(&r->lock);
	if (ret < 0 && r->healthy) {
		snprintf(msg, sizeof(msg), "%s failed: %s",
			 profile ? "receive_profile" : "receive_series", strerror(-ret));
		set_health_locked(r, false, msg);
		__atomic_store_n(&r->recv_failed, true, __ATOMIC_RELAXED);
	} else if (ret >= 0 && r->recv_failed) {
		set_health_locked(r, true, NULL);
		__atomic_store_n(&r->recv_failed, false, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&r->lock);
	if (ret < 0)
		log_msg(STARLING_LOG_WARN, r->id, "%s failed: %s",
			profile ? "receive_profile" : "receive_series", strerror(-ret));
}

/* Deliver to one receiver. Graph read lock held by the caller. */
static int deliver(struct starling_component *r, const void *payload, bool profile)
{
	bool reentrant = r->type->flags & STARLING_TYPE_REENTRANT_RECEIVE;
	int64_t t0;
	int ret;

	if (!reentrant)
		pthread_mutex_lock(&r->cb_lock);
	else /* receives run concurrently, but never with update/stop */
		pthread_rwlock_rdlock(&r->recv_lock);
	if (__atomic_load_n(&r->state, __ATOMIC_ACQUIRE) != INST_RUNNING ||
	    __atomic_load_n(&r->stopping, __ATOMIC_ACQUIRE)) {
		if (!reentrant)
			pthread_mutex_unlock(&r->cb_lock);
		else
			pthread_rwlock_unlock(&r->recv_lock);
		return -EAGAIN;
	}
	t0 = mono_ns();
	if (profile)
		CB_RUN(r, "receive_profile",
		       ret = r->type->receive_profile ? r->type->receive_profile(r->inst, payload)
						      : -EOPNOTSUPP);
	else
		CB_RUN(r, "receive_series",
		       ret = r->type->receive_series ? r->type->receive_series(r->inst, payload)
						     : -EOPNOTSUPP);
	stat_add(r, profile ? CB_RECEIVE_PROFILE : CB_RECEIVE_SERIES, t0, ret);
	note_receive_result(r, profile, ret);
	if (!reentrant)
		pthread_mutex_unlock(&r->cb_lock);
	else
		pthread_rwlock_unlock(&r->recv_lock);
	return ret;
}

static int forward(starling_component *c, const void *payload, bool profile)
{
	struct runtime *rt;
	int first = 0;

	if (!c || !payload)
		return -EINVAL;
	rt = c->rt;
	pthread_rwlock_rdlock(&rt->graph);
	for (size_t i = 0; i < c->n_fwd; i++) {
		int r = deliver(c->fwd[i], payload, profile);

		if (r < 0 && !first)
			first = r;
	}
	pthread_rwlock_unlock(&rt->graph);
	return first;
}

static int api_forward_series(starling_component *c, const struct starling_series_batch *b)
{
	return forward(c, b, false);
}

/* A plugin built against ABI 1.0 hands over the 1.0 batch, which ends
 * before `ext`: receivers get a zero-extended copy. */
static int api_forward_series_1_0(starling_component *c, const struct starling_series_batch *b)
{
	struct starling_series_batch full = {0};

	if (!b)
		return -EINVAL;
	memcpy(&full, b, offsetof(struct starling_series_batch, ext));
	return forward(c, &full, false);
}

static int api_forward_profile(starling_component *c, const struct starling_profile *p)
{
	return forward(c, p, true);
}

static bool valid_metric_name(const char *s)
{
	if (!s || !*s ||
	    (!(*s >= 'a' && *s <= 'z') && !(*s >= 'A' && *s <= 'Z') && *s != '_' && *s != ':'))
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' || *s == ':'))
			return false;
	return true;
}

/* Label pairs -> k="v",k2="v2" (values escaped). NULL on bad input. */
static char *format_label_array(const struct starling_label *l, size_t n)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f;
	bool bad = false;

	f = open_memstream(&buf, &len);
	if (!f)
		return NULL;
	for (size_t i = 0; i < n && !bad; i++) {
		const char *k = l[i].name, *v = l[i].value;

		if (!k || !v || !valid_metric_name(k) || strchr(k, ':') ||
		    !strcmp(k, "component_id")) {
			bad = true;
			break;
		}
		fprintf(f, "%s%s=\"", i ? "," : "", k);
		for (; *v; v++) {
			if (*v == '"' || *v == '\\')
				fputc('\\', f);
			if (*v == '\n')
				fputs("\\n", f);
			else
				fputc(*v, f);
		}
		fputc('"', f);
	}
	fclose(f);
	if (bad) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* The 1.0 form "k=v,k2=v2" -> k="v",k2="v2". NULL on bad input. */
static char *format_labels(const char *in)
{
	struct starling_label pairs[64];
	size_t n = 0;
	char *copy, *tok, *next, *out;

	if (!in || !*in)
		return strdup("");
	copy = strdup(in);
	if (!copy)
		return NULL;
	for (tok = copy; tok && *tok; tok = next) {
		char *eq;

		next = strchr(tok, ',');
		if (next)
			*next++ = '\0';
		eq = strchr(tok, '=');
		if (!eq || n == sizeof(pairs) / sizeof(pairs[0])) {
			free(copy);
			return NULL;
		}
		*eq = '\0';
		pairs[n].name = tok;
		pairs[n++].value = eq + 1;
	}
	out = format_label_array(pairs, n);
	free(copy);
	return out;
}

/* Register (or find) a metric whose label text is fl (taken over). */
static starling_metric *metric_register_formatted(starling_component *c,
						  enum starling_self_metric_type type,
						  const char *name, const char *help, char *fl)
{
	struct starling_metric *m;

	pthread_mutex_lock(&c->lock);
	for (m = c->metrics; m; m = m->next) {
		if (!strcmp(m->name, name) && !strcmp(m->labels, fl)) {
			pthread_mutex_unlock(&c->lock);
			free(fl);
			return m;
		}
	}
	m = calloc(1, sizeof(*m));
	if (m) {
		m->type = type;
		m->name = strdup(name);
		m->help = strdup(help ? help : "");
		m->labels = fl;
		if (!m->name || !m->help) {
			free(m->name);
			free(m->help);
			free(m);
			m = NULL;
			free(fl);
		} else {
			m->next = c->metrics;
			c->metrics = m;
		}
	} else {
		free(fl);
	}
	pthread_mutex_unlock(&c->lock);
	return m;
}

static bool metric_args_ok(starling_component *c, enum starling_self_metric_type type,
			   const char *name)
{
	if (!c || !valid_metric_name(name) ||
	    (type != STARLING_SELF_COUNTER && type != STARLING_SELF_GAUGE)) {
		log_msg(STARLING_LOG_ERROR, c ? c->id : NULL, "refusing self-metric \"%s\"",
			name ? name : "(null)");
		return false;
	}
	return true;
}

static starling_metric *api_metric_register(starling_component *c,
					    enum starling_self_metric_type type, const char *name,
					    const char *help, const char *labels)
{
	char *fl;

	if (!metric_args_ok(c, type, name))
		return NULL;
	fl = format_labels(labels);
	if (!fl) {
		log_msg(STARLING_LOG_ERROR, c->id, "self-metric %s: invalid labels \"%s\"", name,
			labels);
		return NULL;
	}
	return metric_register_formatted(c, type, name, help, fl);
}

static starling_metric *api_metric_register_labels(starling_component *c,
						   enum starling_self_metric_type type,
						   const char *name, const char *help,
						   const struct starling_label *labels,
						   size_t n_labels)
{
	char *fl;

	if (!metric_args_ok(c, type, name))
		return NULL;
	fl = format_label_array(labels, labels ? n_labels : 0);
	if (!fl) {
		log_msg(STARLING_LOG_ERROR, c->id, "self-metric %s: invalid labels", name);
		return NULL;
	}
	return metric_register_formatted(c, type, name, help, fl);
}

double bits_to_double(uint64_t b)
{
	double d;

	memcpy(&d, &b, sizeof(d));
	return d;
}

static uint64_t double_to_bits(double d)
{
	uint64_t b;

	memcpy(&b, &d, sizeof(b));
	return b;
}

static void api_metric_add(starling_metric *m, double delta)
{
	uint64_t old, nv;

	if (!m)
		return;
	old = __atomic_load_n(&m->bits, __ATOMIC_RELAXED);
	do {
		nv = double_to_bits(bits_to_double(old) + delta);
	} while (!__atomic_compare_exchange_n(&m->bits, &old, nv, true, __ATOMIC_RELAXED,
					      __ATOMIC_RELAXED));
}

static void api_metric_set(starling_metric *m, double value)
{
	if (m)
		__atomic_store_n(&m->bits, double_to_bits(value), __ATOMIC_RELAXED);
}

static bool api_cluster_owns(starling_component *c, uint64_t key, unsigned replicas)
{
	if (!c || !c->rt->cluster)
		return false;
	if (replicas > MAX_OWNERS)
		replicas = MAX_OWNERS;
	return cluster_owns(c->rt->cluster, key, replicas);
}

static size_t api_cluster_owners(starling_component *c, uint64_t key,
				 struct starling_node_name *out, size_t n)
{
	if (!c || !c->rt->cluster || !out)
		return 0;
	if (n > MAX_OWNERS)
		n = MAX_OWNERS;
	return cluster_owners(c->rt->cluster, key, out, n);
}

static bool api_cluster_owns_at(starling_component *c, uint64_t key, unsigned replicas,
				int64_t at_ms)
{
	if (!c || !c->rt->cluster)
		return false;
	if (replicas > MAX_OWNERS)
		replicas = MAX_OWNERS;
	return cluster_owns_at(c->rt->cluster, key, replicas, at_ms);
}

static size_t api_cluster_owners_at(starling_component *c, uint64_t key, int64_t at_ms,
				    struct starling_node_name *out, size_t n)
{
	if (!c || !c->rt->cluster || !out)
		return 0;
	if (n > MAX_OWNERS)
		n = MAX_OWNERS;
	return cluster_owners_at(c->rt->cluster, key, at_ms, out, n);
}

static uint64_t api_cluster_epoch(starling_component *c)
{
	if (!c || !c->rt->cluster)
		return 0;
	return cluster_epoch(c->rt->cluster);
}

static void api_cluster_self(starling_component *c, struct starling_node_name *out)
{
	if (!out)
		return;
	snprintf(out->name, sizeof(out->name), "%s",
		 c && c->rt->cluster ? cluster_self_name(c->rt->cluster) : "");
}

static void deliver_view_change(void *arg)
{
	struct starling_component *c = arg;
	starling_cluster_change_fn fn;
	void *farg;

	pthread_mutex_lock(&c->lock);
	c->sub_pending = false;
	c->sub_last_ms = mono_ms();
	fn = c->sub_fn;
	farg = c->sub_arg;
	pthread_mutex_unlock(&c->lock);
	if (fn)
		fn(farg, cluster_epoch(c->rt->cluster));
}

static int api_cluster_subscribe(starling_component *c, starling_cluster_change_fn fn, void *arg)
{
	struct starling_timer *t;
	bool need_timer;

	if (!c)
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	c->sub_fn = fn;
	c->sub_arg = arg;
	pthread_mutex_unlock(&c->lock);
	pthread_mutex_lock(&c->rt->tlock);
	need_timer = fn && !c->sub_timer;
	pthread_mutex_unlock(&c->rt->tlock);
	if (!need_timer)
		return 0;
	t = timer_new(c, 0, 0, deliver_view_change, c, true, false);
	if (!t)
		return -ENOMEM;
	/* sub_timer is read and cleared under tlock (see on_view_change and
	 * timers_free_all). */
	pthread_mutex_lock(&c->rt->tlock);
	c->sub_timer = t;
	pthread_mutex_unlock(&c->rt->tlock);
	return 0;
}

/* From a cluster thread: schedule each subscriber, at most once a second. */
void on_view_change(void *arg, uint64_t epoch)
{
	struct runtime *rt = arg;

	pthread_rwlock_rdlock(&rt->graph);
	for (size_t i = 0; i < rt->n_insts; i++) {
		struct starling_component *c = rt->insts[i];
		int64_t delay;

		pthread_mutex_lock(&c->lock);
		if (!c->sub_fn || c->sub_pending) {
			pthread_mutex_unlock(&c->lock);
			continue;
		}
		c->sub_pending = true;
		delay = c->sub_last_ms ? c->sub_last_ms + SUBSCRIBE_DEBOUNCE_MS - mono_ms() : 0;
		pthread_mutex_unlock(&c->lock);
		/* Read sub_timer under tlock: a re-created instance frees it there. */
		pthread_mutex_lock(&rt->tlock);
		if (c->sub_timer)
			timer_rearm_locked(c->sub_timer, delay);
		pthread_mutex_unlock(&rt->tlock);
	}
	pthread_rwlock_unlock(&rt->graph);
	log_debug("cluster view changed: epoch %llu", (unsigned long long)epoch);
}

static const struct starling_host_api host_api = {
    .abi_major = STARLING_ABI_MAJOR,
    .abi_minor = STARLING_ABI_MINOR,
    .struct_size = sizeof(struct starling_host_api),
    .log = api_log,
    .component_id = api_component_id,
    .state_dir = api_state_dir,
    .config_lookup = cfg_lookup,
    .config_count = cfg_count,
    .config_child = cfg_child,
    .config_name = cfg_name,
    .config_string = cfg_get_string,
    .config_int = cfg_get_int,
    .config_float = cfg_get_float,
    .config_bool = cfg_get_bool,
    .config_duration_ms = cfg_get_duration_ms,
    .config_bytes = cfg_get_bytes,
    .config_where = cfg_where,
    .now_ms = api_now_ms,
    .monotonic_ms = api_monotonic_ms,
    .timer_start = api_timer_start,
    .timer_cancel = api_timer_cancel,
    .work_submit = api_work_submit,
    .forward_series = api_forward_series,
    .forward_profile = api_forward_profile,
    .metric_register = api_metric_register,
    .metric_add = api_metric_add,
    .metric_set = api_metric_set,
    .set_health = api_set_health,
    .report_targets = api_report_targets,
    .cluster_owns = api_cluster_owns,
    .cluster_owners = api_cluster_owners,
    .cluster_epoch = api_cluster_epoch,
    .cluster_self = api_cluster_self,
    .cluster_subscribe = api_cluster_subscribe,
    .metric_register_labels = api_metric_register_labels,
    .forward_targets = api_forward_targets,
    .cluster_owns_at = api_cluster_owns_at,
    .cluster_owners_at = api_cluster_owners_at,
};

/* The table handed to plugins built against ABI 1.0: the same functions,
 * except those that read a struct that has grown since. */
static struct starling_host_api host_api_1_0;
static pthread_once_t host_api_1_0_once = PTHREAD_ONCE_INIT;

static void host_api_1_0_init(void)
{
	host_api_1_0 = host_api;
	host_api_1_0.forward_series = api_forward_series_1_0;
}

const struct starling_host_api *runtime_host_api(uint32_t built_minor)
{
	if (built_minor >= 1)
		return &host_api;
	pthread_once(&host_api_1_0_once, host_api_1_0_init);
	return &host_api_1_0;
}
