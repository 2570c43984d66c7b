/*
 * discovery.dns: targets from DNS SRV, A, AAAA, MX or NS records, like
 * Prometheus' dns_sd_config (discovery/dns/dns.go) and Alloy's discovery.dns.
 *
 * Lookups use glibc's resolver (res_nsearch: /etc/resolv.conf servers,
 * search list and ndots, TCP retry on truncation, EDNS0) on a host worker
 * thread, the names of one refresh in parallel. One target group per name;
 * a failed lookup keeps that name's previous targets (logged, counted in
 * prometheus_sd_dns_lookup_failures_total, component unhealthy until a
 * refresh where every name resolves). All-NXDOMAIN / no data is an empty
 * answer, not a failure.
 */
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <resolv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <starling/plugin.h>
#include <starling/sd.h>

#include "dns_records.h"

/* Names resolved at once within one refresh. */
#define MAX_PARALLEL 16

struct dns_sd {
	struct starling_sd_refresh *refresh; /* first: starling_sd_component_* */
	const struct starling_host_api *api;
	starling_component *self;
	char **names;
	size_t n_names;
	int qtype;
	const char *type_name;
	unsigned port;
	struct starling_sd_groups *groups;
	starling_metric *m_lookups, *m_failures;
};

static const struct starling_config_key schema[] = {
    {.name = "names",
     .type = STARLING_CFG_STRING_LIST,
     .required = true,
     .help = "DNS names to look up (one target group each)"},
    /* Alloy's `type`: in Starling's config `type` names the component type */
    {.name = "record_type",
     .type = STARLING_CFG_STRING,
     .default_value = "SRV",
     .help = "Record type: SRV, A, AAAA, MX or NS (Alloy's `type`)"},
    {.name = "port",
     .type = STARLING_CFG_INT,
     .default_value = "0",
     .help = "Port of the targets for A, AAAA, MX and NS records (required for those; "
	     "SRV records carry their own)"},
    {.name = "refresh_interval",
     .type = STARLING_CFG_DURATION,
     .default_value = "30s",
     .help = "How often the names are looked up again"},
    {0},
};

static const struct {
	const char *name;
	int qtype;
} types[] = {
    {"SRV", ns_t_srv}, {"A", ns_t_a}, {"AAAA", ns_t_aaaa}, {"MX", ns_t_mx}, {"NS", ns_t_ns},
};

struct lookup {
	struct dns_sd *d;
	const char *name;
	struct dns_targets found;
	int error; /* 0, or negative: failed */
	char msg[256];
};

static const char *h_error(int h)
{
	switch (h) {
	case TRY_AGAIN:
		return "server failure or timeout (TRY_AGAIN)";
	case NO_RECOVERY:
		return "refused or malformed (NO_RECOVERY)";
	case NETDB_INTERNAL:
		return "resolver error (NETDB_INTERNAL)";
	default:
		return "lookup failed";
	}
}

/* One name, on its own thread. */
static void *lookup_one(void *arg)
{
	struct lookup *l = arg;
	struct __res_state st;
	uint8_t *ans = malloc(65536);
	int len;

	memset(&st, 0, sizeof(st));
	if (!ans || res_ninit(&st)) {
		l->error = -ENOMEM;
		snprintf(l->msg, sizeof(l->msg), "cannot initialise the resolver");
		free(ans);
		return NULL;
	}
	st.options |= RES_USE_EDNS0;
	len = res_nsearch(&st, l->name, ns_c_in, l->d->qtype, ans, 65536);
	if (len < 0) {
		/* every candidate name answered NXDOMAIN or no data: an empty
		 * answer (Prometheus' lookupWithSearchPath "outcome 2") */
		if (st.res_h_errno == HOST_NOT_FOUND || st.res_h_errno == NO_DATA) {
			l->error = 0;
		} else {
			l->error = -EHOSTUNREACH;
			snprintf(l->msg, sizeof(l->msg), "%s", h_error(st.res_h_errno));
		}
	} else {
		l->error = dns_answer_targets(ans, (size_t)(len > 65536 ? 65536 : len), l->name,
					      l->d->port, &l->found);
		if (l->error == -EBADMSG)
			snprintf(l->msg, sizeof(l->msg), "malformed DNS answer");
		else if (l->error)
			snprintf(l->msg, sizeof(l->msg), "%s", strerror(-l->error));
	}
	res_nclose(&st);
	free(ans);
	return NULL;
}

static int store(struct dns_sd *d, struct lookup *l)
{
	struct starling_target *t = calloc(l->found.n ? l->found.n : 1, sizeof(*t));
	int r;

	if (!t)
		return -ENOMEM;
	for (size_t i = 0; i < l->found.n; i++) {
		t[i].labels = l->found.t[i].labels;
		t[i].n_labels = DNS_N_LABELS;
	}
	r = starling_sd_groups_set(d->groups, l->name, NULL, 0, t, l->found.n);
	free(t);
	return r < 0 ? r : 0;
}

static int refresh(void *arg, struct starling_sd_groups *g, char *err, size_t errlen)
{
	struct dns_sd *d = arg;
	struct lookup *ls = calloc(d->n_names, sizeof(*ls));
	pthread_t tids[MAX_PARALLEL];
	size_t failed = 0, off = 0;
	int ret = 0;

	(void)g;
	if (!ls)
		return -ENOMEM;
	for (size_t base = 0; base < d->n_names; base += MAX_PARALLEL) {
		size_t n = d->n_names - base < MAX_PARALLEL ? d->n_names - base : MAX_PARALLEL;
		bool started[MAX_PARALLEL] = {0};

		for (size_t i = 0; i < n; i++) {
			ls[base + i].d = d;
			ls[base + i].name = d->names[base + i];
			started[i] = !pthread_create(&tids[i], NULL, lookup_one, &ls[base + i]);
			if (!started[i])
				lookup_one(&ls[base + i]);
		}
		for (size_t i = 0; i < n; i++)
			if (started[i])
				pthread_join(tids[i], NULL);
	}
	for (size_t i = 0; i < d->n_names; i++) {
		struct lookup *l = &ls[i];

		d->api->metric_add(d->m_lookups, 1);
		if (l->found.skipped)
			d->api->log(d->self, STARLING_LOG_WARN,
				    "%s: %zu answer record(s) of an unexpected type skipped",
				    l->name, l->found.skipped);
		if (!l->error)
			l->error = store(d, l);
		if (l->error) {
			/* keep this name's previous group */
			d->api->metric_add(d->m_failures, 1);
			d->api->log(d->self, STARLING_LOG_ERROR, "DNS %s lookup of %s failed: %s",
				    d->type_name, l->name, l->msg[0] ? l->msg : "error");
			if (!failed++)
				off = (size_t)snprintf(err, errlen, "lookup failed for");
			if (off < errlen)
				off += (size_t)snprintf(err + off, errlen - off, " %s (%s)",
							l->name, l->msg[0] ? l->msg : "error");
			ret = -EHOSTUNREACH;
		}
		dns_targets_free(&l->found);
	}
	free(ls);
	return ret;
}

static void dns_free(struct dns_sd *d)
{
	for (size_t i = 0; i < d->n_names; i++)
		free(d->names[i]);
	free(d->names);
	starling_sd_refresh_free(d->refresh);
	starling_sd_groups_free(d->groups);
	free(d);
}

static int create(const struct starling_host_api *api, starling_component *self,
		  const starling_config *cfg, void **out)
{
	struct dns_sd *d = calloc(1, sizeof(*d));
	const starling_config *names = api->config_lookup(cfg, "names");
	const char *type;
	int64_t port, interval;
	int r = -EINVAL;

	if (!d)
		return -ENOMEM;
	d->api = api;
	d->self = self;
	if (api->config_string(cfg, "record_type", &type) || api->config_int(cfg, "port", &port) ||
	    api->config_duration_ms(cfg, "refresh_interval", &interval))
		goto bad;
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (!strcasecmp(type, types[i].name)) {
			d->qtype = types[i].qtype;
			d->type_name = types[i].name;
		}
	if (!d->qtype) {
		api->log(self, STARLING_LOG_ERROR,
			 "%s: record_type \"%s\": expected SRV, A, AAAA, MX or NS",
			 api->config_where(cfg), type);
		goto out;
	}
	if (port < 0 || port > 65535 || (port == 0 && d->qtype != ns_t_srv)) {
		api->log(self, STARLING_LOG_ERROR,
			 "%s: port %lld: a port 1..65535 is required for %s records",
			 api->config_where(cfg), (long long)port, d->type_name);
		goto out;
	}
	d->port = (unsigned)port;
	if (interval < 1) {
		api->log(self, STARLING_LOG_ERROR, "%s: refresh_interval must be positive",
			 api->config_where(cfg));
		goto out;
	}
	d->n_names = names ? api->config_count(names) : 0;
	if (!d->n_names) {
		api->log(self, STARLING_LOG_ERROR, "%s: names: at least one name is required",
			 api->config_where(cfg));
		goto out;
	}
	d->names = calloc(d->n_names, sizeof(*d->names));
	if (!d->names)
		goto nomem;
	for (size_t i = 0; i < d->n_names; i++) {
		const char *n;

		if (api->config_string(api->config_child(names, i), NULL, &n) || !*n ||
		    strlen(n) >= NS_MAXDNAME) {
			api->log(self, STARLING_LOG_ERROR, "%s: names[%zu]: expected a DNS name",
				 api->config_where(names), i);
			d->n_names = i;
			goto out;
		}
		if (!(d->names[i] = strdup(n))) {
			d->n_names = i;
			goto nomem;
		}
	}
	d->groups = starling_sd_groups_new();
	d->refresh =
	    d->groups ? starling_sd_refresh_new(api, self, d->groups, interval, refresh, d) : NULL;
	if (!d->refresh)
		goto nomem;
	d->m_lookups =
	    api->metric_register(self, STARLING_SELF_COUNTER, "prometheus_sd_dns_lookups_total",
				 "The number of DNS-SD lookups.", NULL);
	d->m_failures = api->metric_register(self, STARLING_SELF_COUNTER,
					     "prometheus_sd_dns_lookup_failures_total",
					     "The number of DNS-SD lookup failures.", NULL);
	*out = d;
	return 0;
bad:
	api->log(self, STARLING_LOG_ERROR,
		 "%s: record_type, port or refresh_interval has a bad value",
		 api->config_where(cfg));
	goto out;
nomem:
	r = -ENOMEM;
out:
	dns_free(d);
	return r;
}

static void destroy(void *inst)
{
	dns_free(inst);
}

static const struct starling_component_type dns_type = {
    STARLING_TYPE_HEAD,
    .name = "discovery.dns",
    .help = "Targets from DNS SRV, A, AAAA, MX or NS records (Prometheus dns_sd_config)",
    .schema = schema,
    .create = create,
    .start = starling_sd_component_start,
    .stop = starling_sd_component_stop,
    .destroy = destroy,
    .list_targets = starling_sd_component_list_targets,
    .produces = STARLING_ACCEPTS_TARGETS,
};

static const struct starling_component_type *const types_list[] = {&dns_type};

static const struct starling_plugin_descriptor descriptor = {
    STARLING_DESCRIPTOR_HEAD_MIN(1),
    .name = "discovery_dns",
    .version = "1.0.0",
    .types = types_list,
    .n_types = 1,
};

STARLING_PLUGIN(descriptor)
