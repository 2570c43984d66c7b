/*
 * The cluster service: membership (memberlist wire protocol) and rendezvous
 * ownership. This header is the whole interface host/ uses; everything else
 * in host/cluster/ is private to it.
 *
 * Thread-safety: every function may be called from any thread.
 */
#ifndef STARLING_HOST_CLUSTER_H
#define STARLING_HOST_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <starling/plugin.h>

struct cluster_config {
	bool enabled;				/* false: single node, no network */
	char node_name[STARLING_NODE_NAME_MAX]; /* "" = hostname */
	char bind[256];				/* "0.0.0.0:7946" */
	char advertise[256];			/* "" = derived from bind */
	char **join;				/* host:port, DNS name, or dnssrv+name */
	size_t n_join;
	int64_t rejoin_interval_ms; /* 60000 */
	int max_join_peers;	    /* 5 */
	char name[128];		    /* memberlist label; "" = none */
	char **secret_keys;	    /* base64 AES keys; first is primary */
	size_t n_secret_keys;
	int wait_for_size;		/* 0 = off */
	int64_t wait_timeout_ms;	/* 0 = wait forever */
	char profile[16];		/* "lan" (default), "wan", "local" */
	double weight;			/* ownership weight of this node, 1.0 (0.01..100) */
	int64_t handover_ms;		/* announce joins/leaves this far ahead; -1 = 10 gossip
					   intervals of the profile (lan 2 s, local 1 s, wan 5 s) */
	char secret_keys_file[512];	/* keyring file, one base64 key a line (mode 0600) */
	bool require_encryption;	/* refuse to start without a key */
	char advertise_interfaces[256]; /* "eth0,en0" (Alloy's default); "all" = any */
};

/* Fill defaults (as DESIGN.md). */
void cluster_config_defaults(struct cluster_config *cfg);
/* Free the lists inside (not cfg itself). */
void cluster_config_release(struct cluster_config *cfg);

struct cluster;

enum cluster_node_state {
	CLUSTER_STATE_VIEWER = 0,
	CLUSTER_STATE_PARTICIPANT,
	CLUSTER_STATE_TERMINATING,
};

/* Create (no I/O yet). Returns 0 or -errno; on error writes a message to
 * err (errlen bytes). */
int cluster_create(const struct cluster_config *cfg, struct cluster **out, char *err,
		   size_t errlen);
/* Bind sockets, start threads, start joining (non-blocking). */
int cluster_start(struct cluster *c, char *err, size_t errlen);
/* This node's components have started: viewer -> participant. */
void cluster_set_participant(struct cluster *c);
/* Announce that this node leaves: terminating, owning until a hand-over time
 * handover_ms ahead (now when no other participant would take over). Returns
 * that time (unix ms); keep scraping until then, then cluster_leave(). */
int64_t cluster_announce_leave(struct cluster *c);
/* Announce terminating (now, unless cluster_announce_leave did), wait
 * (bounded by timeout_ms) for it to spread, leave, stop threads. */
void cluster_leave(struct cluster *c, int64_t timeout_ms);
void cluster_destroy(struct cluster *c);

/* This node's configuration fingerprint (host/drift.h), advertised in its
 * tags; peers with a different one are reported (log, metric, peers JSON). */
void cluster_set_fingerprint(struct cluster *c, const char *fp);

/* Ownership (see struct starling_host_api for the semantics). */
bool cluster_owns(struct cluster *c, uint64_t key, unsigned replicas);
size_t cluster_owners(struct cluster *c, uint64_t key, struct starling_node_name *out, size_t n);
/* The same for a slot at unix ms at_ms: announced joins and leaves count
 * from their announced time (ABI 1.1 cluster_owns_at). */
bool cluster_owns_at(struct cluster *c, uint64_t key, unsigned replicas, int64_t at_ms);
size_t cluster_owners_at(struct cluster *c, uint64_t key, int64_t at_ms,
			 struct starling_node_name *out, size_t n);
uint64_t cluster_epoch(struct cluster *c);
const char *cluster_self_name(struct cluster *c);

/* Called (not debounced; the host debounces) from a cluster thread whenever
 * the epoch changes. One callback. Replacing or clearing it waits for a
 * callback in flight, so the old arg may be freed afterwards; never call it
 * (nor cluster_set_participant/cluster_leave) from inside the callback. */
typedef void (*cluster_view_fn)(void *arg, uint64_t epoch);
void cluster_on_view_change(struct cluster *c, cluster_view_fn fn, void *arg);

/* The HTTP address ("host:port") this node advertises to its peers in the
 * starling_http Serf tag (the targets page fetches each owner's view from
 * it). Call before cluster_start. */
void cluster_set_http_addr(struct cluster *c, const char *addr);

/* The advertised HTTP address of the current member `name` ("host:port"; a
 * wildcard host is replaced by the member's gossip IP). 0, or -ENOENT (not
 * a member), -EHOSTDOWN (dead or left), -EADDRNOTAVAIL (no tag). */
int cluster_member_http(struct cluster *c, const char *name, char *out, size_t len);

/* JSON array of peers for GET /api/v0/cluster/peers; malloc'd, caller frees. */
char *cluster_peers_json(struct cluster *c);
/* Append the cluster_* metrics in Prometheus text format. */
void cluster_write_metrics(struct cluster *c, FILE *out);
/* Components subscribed to view changes (cluster_node_update_observers). */
void cluster_set_observers(struct cluster *c, unsigned n);

#endif
