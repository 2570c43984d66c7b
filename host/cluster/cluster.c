/*
 * Cluster service front: node state, the current ownership view, and the
 * single-node mode used when clustering is disabled.
 */
#include "cluster.h"
#include "ownership.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct cluster {
	struct cluster_config cfg;
	pthread_mutex_t lock;
	enum cluster_node_state state;
	struct ownership_view *view; /* participants; NULL-safe */
	uint64_t epoch;
	cluster_view_fn view_fn;
	void *view_arg;
};

void cluster_config_defaults(struct cluster_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->bind, sizeof(cfg->bind), "0.0.0.0:7946");
	cfg->rejoin_interval_ms = 60000;
	cfg->max_join_peers = 5;
	snprintf(cfg->profile, sizeof(cfg->profile), "lan");
	cfg->weight = 1.0;
}

static void free_strv(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void cluster_config_release(struct cluster_config *cfg)
{
	free_strv(cfg->join, cfg->n_join);
	free_strv(cfg->secret_keys, cfg->n_secret_keys);
	cfg->join = cfg->secret_keys = NULL;
	cfg->n_join = cfg->n_secret_keys = 0;
}

int cluster_create(const struct cluster_config *cfg, struct cluster **out, char *err, size_t errlen)
{
	struct cluster *c;

	if (cfg->enabled) {
		snprintf(err, errlen, "clustering is not available in this build");
		return -ENOTSUP;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	c->cfg = *cfg;
	c->cfg.join = NULL;
	c->cfg.n_join = 0;
	c->cfg.secret_keys = NULL;
	c->cfg.n_secret_keys = 0;
	if (!c->cfg.node_name[0] &&
	    gethostname(c->cfg.node_name, sizeof(c->cfg.node_name) - 1) != 0)
		snprintf(c->cfg.node_name, sizeof(c->cfg.node_name), "localhost");
	pthread_mutex_init(&c->lock, NULL);
	*out = c;
	return 0;
}

int cluster_start(struct cluster *c, char *err, size_t errlen)
{
	(void)c;
	(void)err;
	(void)errlen;
	return 0;
}

static void set_view(struct cluster *c, bool participant)
{
	const char *name = c->cfg.node_name;
	struct ownership_view *nv, *old;
	cluster_view_fn fn;
	void *arg;
	uint64_t epoch;

	pthread_mutex_lock(&c->lock);
	epoch = ++c->epoch;
	nv = ownership_view_new(epoch, &name, &c->cfg.weight, participant ? 1 : 0);
	old = c->view;
	c->view = nv;
	fn = c->view_fn;
	arg = c->view_arg;
	pthread_mutex_unlock(&c->lock);
	ownership_view_free(old);
	if (fn)
		fn(arg, epoch);
}

void cluster_set_participant(struct cluster *c)
{
	c->state = CLUSTER_STATE_PARTICIPANT;
	set_view(c, true);
}

void cluster_leave(struct cluster *c, int64_t timeout_ms)
{
	(void)timeout_ms;
	c->state = CLUSTER_STATE_TERMINATING;
	set_view(c, false);
}

void cluster_destroy(struct cluster *c)
{
	if (!c)
		return;
	ownership_view_free(c->view);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

size_t cluster_owners(struct cluster *c, uint64_t key, struct starling_node_name *out, size_t n)
{
	size_t idx[16], k;

	pthread_mutex_lock(&c->lock);
	k = ownership_owners(c->view, key, idx, n);
	for (size_t i = 0; i < k; i++)
		snprintf(out[i].name, sizeof(out[i].name), "%s", c->view->members[idx[i]].name);
	pthread_mutex_unlock(&c->lock);
	return k;
}

bool cluster_owns(struct cluster *c, uint64_t key, unsigned replicas)
{
	struct starling_node_name names[16];
	size_t k = cluster_owners(c, key, names, replicas ? replicas : 1);

	for (size_t i = 0; i < k; i++)
		if (strcmp(names[i].name, c->cfg.node_name) == 0)
			return true;
	return false;
}

uint64_t cluster_epoch(struct cluster *c)
{
	uint64_t e;

	pthread_mutex_lock(&c->lock);
	e = c->epoch;
	pthread_mutex_unlock(&c->lock);
	return e;
}

const char *cluster_self_name(struct cluster *c)
{
	return c->cfg.node_name;
}

void cluster_on_view_change(struct cluster *c, cluster_view_fn fn, void *arg)
{
	pthread_mutex_lock(&c->lock);
	c->view_fn = fn;
	c->view_arg = arg;
	pthread_mutex_unlock(&c->lock);
}

static const char *state_name(enum cluster_node_state s)
{
	switch (s) {
	case CLUSTER_STATE_PARTICIPANT:
		return "participant";
	case CLUSTER_STATE_TERMINATING:
		return "terminating";
	default:
		return "viewer";
	}
}

char *cluster_peers_json(struct cluster *c)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	/* node names are validated to printable characters without quotes */
	fprintf(f, "[{\"name\":\"%s\",\"address\":\"\",\"state\":\"%s\",\"is_self\":true}]",
		c->cfg.node_name, state_name(c->state));
	fclose(f);
	return buf;
}

void cluster_write_metrics(struct cluster *c, FILE *out)
{
	fprintf(out, "# HELP cluster_node_info Information about this cluster node.\n"
		     "# TYPE cluster_node_info gauge\n"
		     "cluster_node_info{state=\"%s\"} 1\n",
		state_name(c->state));
	fprintf(out, "# HELP cluster_node_peers Number of peers by state.\n"
		     "# TYPE cluster_node_peers gauge\n"
		     "cluster_node_peers{state=\"%s\"} 1\n",
		state_name(c->state));
	fprintf(out, "# HELP cluster_view_epoch Current ownership view epoch.\n"
		     "# TYPE cluster_view_epoch gauge\n"
		     "cluster_view_epoch %" PRIu64 "\n",
		cluster_epoch(c));
}
