/*
 * Test driver for the cluster service: one cluster node per process, its
 * config from argv. Every 100 ms (--status-ms) it writes STATUS (atomically, via rename):
 *   epoch N
 *   peers <JSON of cluster_peers_json()>
 *   owner <name> <keys owned among 1000 probe keys>
 * and METRICS (cluster_write_metrics). SIGTERM: cluster_leave, exit 0.
 * Kept deliberately dumb so the scripts can move to the starling binary.
 */
#include "cluster/cluster.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static void push(char ***v, size_t *n, const char *s)
{
	char **nv = realloc(*v, (*n + 1) * sizeof(**v));

	if (!nv)
		exit(2);
	*v = nv;
	nv[(*n)++] = strdup(s);
}

static void write_status(struct cluster *c, const char *path, const char *mpath)
{
	char tmp[4096];
	struct {
		char name[STARLING_NODE_NAME_MAX];
		unsigned n;
	} own[64];
	int n_own = 0;
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f)
		return;
	for (uint64_t k = 0; k < 1000; k++) {
		struct starling_node_name o;
		uint64_t key = (k + 1) * 0x9e3779b97f4a7c15ull;
		int i;

		if (cluster_owners(c, key, &o, 1) != 1)
			continue;
		for (i = 0; i < n_own; i++)
			if (strcmp(own[i].name, o.name) == 0)
				break;
		if (i == n_own && n_own < 64) {
			snprintf(own[n_own].name, sizeof(own[0].name), "%s", o.name);
			own[n_own++].n = 0;
		}
		if (i < 64)
			own[i].n++;
	}
	char *peers = cluster_peers_json(c);

	fprintf(f, "epoch %llu\npeers %s\n", (unsigned long long)cluster_epoch(c),
		peers ? peers : "[]");
	free(peers);
	for (int i = 0; i < n_own; i++)
		fprintf(f, "owner %s %u\n", own[i].name, own[i].n);
	fclose(f);
	rename(tmp, path);
	if (mpath) {
		snprintf(tmp, sizeof(tmp), "%s.tmp", mpath);
		f = fopen(tmp, "w");
		if (f) {
			cluster_write_metrics(c, f);
			fclose(f);
			rename(tmp, mpath);
		}
	}
}

int main(int argc, char **argv)
{
	struct cluster_config cfg;
	struct cluster *c;
	const char *status = NULL, *metrics = NULL;
	bool viewer = false;
	long status_ms = 100;
	char err[512];
	int rc;

	cluster_config_defaults(&cfg);
	cfg.enabled = true;
	for (int i = 1; i + 1 < argc; i += 2) {
		const char *k = argv[i], *v = argv[i + 1];

		if (!strcmp(k, "--name"))
			snprintf(cfg.node_name, sizeof(cfg.node_name), "%s", v);
		else if (!strcmp(k, "--bind"))
			snprintf(cfg.bind, sizeof(cfg.bind), "%s", v);
		else if (!strcmp(k, "--advertise"))
			snprintf(cfg.advertise, sizeof(cfg.advertise), "%s", v);
		else if (!strcmp(k, "--join"))
			push(&cfg.join, &cfg.n_join, v);
		else if (!strcmp(k, "--key"))
			push(&cfg.secret_keys, &cfg.n_secret_keys, v);
		else if (!strcmp(k, "--label"))
			snprintf(cfg.name, sizeof(cfg.name), "%s", v);
		else if (!strcmp(k, "--profile"))
			snprintf(cfg.profile, sizeof(cfg.profile), "%s", v);
		else if (!strcmp(k, "--rejoin-ms"))
			cfg.rejoin_interval_ms = strtoll(v, NULL, 10);
		else if (!strcmp(k, "--wait-for-size"))
			cfg.wait_for_size = (int)strtol(v, NULL, 10);
		else if (!strcmp(k, "--weight"))
			cfg.weight = strtod(v, NULL);
		else if (!strcmp(k, "--status"))
			status = v;
		else if (!strcmp(k, "--metrics"))
			metrics = v;
		else if (!strcmp(k, "--status-ms"))
			status_ms = strtol(v, NULL, 10) > 0 ? strtol(v, NULL, 10) : 100;
		else if (!strcmp(k, "--viewer"))
			viewer = !strcmp(v, "1");
		else {
			fprintf(stderr, "unknown option %s\n", k);
			return 2;
		}
	}
	rc = cluster_create(&cfg, &c, err, sizeof(err));
	cluster_config_release(&cfg);
	if (rc) {
		fprintf(stderr, "cluster_node: %s\n", err);
		return 1;
	}
	rc = cluster_start(c, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "cluster_node: %s\n", err);
		cluster_destroy(c);
		return 1;
	}
	if (!viewer)
		cluster_set_participant(c);
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	while (!stop) {
		if (status)
			write_status(c, status, metrics);
		usleep((useconds_t)status_ms * 1000);
	}
	cluster_leave(c, 5000);
	if (status)
		write_status(c, status, metrics);
	cluster_destroy(c);
	return 0;
}
