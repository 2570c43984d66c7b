/*
 * Serf tags of Starling nodes, private to host/cluster/: the encoding of this
 * node's tags (serf's 0xff + msgpack map of strings), the decoding of any
 * member's (serf agents included: they lack starling_state), and the
 * comparison of configuration fingerprints (host/drift.h). Pure functions;
 * everything they read may come from an untrusted peer, and is bounded.
 */
#ifndef STARLING_HOST_CLUSTER_TAGS_H
#define STARLING_HOST_CLUSTER_TAGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster.h"

/* Serf encodes tags as a msgpack map after this byte. */
#define SERF_TAG_MAGIC 0xff
/* Longest configuration fingerprint in the tags (see host/drift.h). */
#define CLUSTER_FP_MAX 240
/* Node weights a peer may advertise; outside this range the weight is
 * refused (the member counts with weight 1) and counted. */
#define WEIGHT_MIN 0.01
#define WEIGHT_MAX 100.0

/* A member's tags as Starling reads them. */
struct member_tags {
	enum cluster_node_state state; /* viewer when absent (serf agents) */
	double weight;
	char http[128];		 /* starling_http: the member's HTTP address, "" if none */
	bool weight_refused;	 /* advertised outside WEIGHT_MIN..WEIGHT_MAX */
	int64_t from, until;	 /* TIMELINE_ALWAYS / TIMELINE_NEVER when absent */
	bool starling;		 /* has starling_state (not a serf agent) */
	char fp[CLUSTER_FP_MAX]; /* starling_cfg: configuration fingerprint */
	char text[256];		 /* "k=v,k=v" for display */
};

const char *cluster_state_name(enum cluster_node_state s);

/* Our tags: state, weight (omitted when 1), http address, the announced span
 * (from/until unix ms; TIMELINE_ALWAYS/NEVER = none), the fingerprint ("" =
 * none). Returns the length written to out, 0 if it does not fit in cap. */
size_t tags_encode(enum cluster_node_state st, double weight, const char *http, int64_t from,
		   int64_t until, const char *fp, uint8_t *out, size_t cap);
/* Decode len bytes of a member's metadata into t (defaults for anything
 * missing or malformed). */
void tags_decode(const uint8_t *meta, size_t len, struct member_tags *t);
/* The components whose ownership config differs between fingerprints a and
 * b, space-separated in out ("" when they agree). */
void tags_fp_diff(const char *a, const char *b, char *out, size_t cap);

#endif
