/*
 * Deterministic in-process network simulator for the membership engine:
 * N engines, a virtual clock, per-packet delay/jitter and loss from a fixed
 * seed, crashes, and partitions. A stream (TCP exchange) times out with the
 * loss probability, and fails when the peer is crashed or partitioned.
 */
#ifndef STARLING_TEST_CLUSTER_SIM_H
#define STARLING_TEST_CLUSTER_SIM_H

#include <stdbool.h>
#include <stdint.h>

#include "cluster/engine.h"

struct sim;

struct sim_opts {
	int n;
	uint64_t seed;
	const char *profile; /* lan, wan, local */
	int64_t delay_ms;    /* one-way base delay */
	int64_t jitter_ms;   /* + uniform [0, jitter] */
	double loss;	     /* packet loss probability (UDP only) */
	size_t meta_len;     /* node metadata (tags) of that many bytes */
};

struct sim *sim_new(const struct sim_opts *o);
void sim_free(struct sim *s);
/* sim_new, every node joining node 0, run until every node lists every node
 * alive (NULL if that takes over 30 s of simulated time). */
struct sim *sim_new_formed(const struct sim_opts *o);
int64_t sim_now(const struct sim *s);
/* Run the event loop until time t (ms). */
void sim_run_until(struct sim *s, int64_t t);
void sim_join(struct sim *s, int node, int seed_node);
void sim_crash(struct sim *s, int node);
/* Bring a crashed (or never started) node back with its engine as it was:
 * timers that came due while it was down fire at once. */
void sim_restart(struct sim *s, int node);
bool sim_is_up(const struct sim *s, int node);
void sim_set_loss(struct sim *s, double loss);
/* Nodes in different groups cannot talk; all groups 0 = healed. */
void sim_set_group(struct sim *s, int node, int group);
struct ml_engine *sim_engine(struct sim *s, int node);
const char *sim_name(const struct sim *s, int node);
/* State of `member` in `viewer`'s list (-1 if unknown). */
int sim_state(struct sim *s, int viewer, int member);
uint64_t sim_packets(const struct sim *s);
uint64_t sim_bytes(const struct sim *s);
/* Stream (TCP) bytes: requests and replies. */
uint64_t sim_stream_bytes(const struct sim *s);

#endif
