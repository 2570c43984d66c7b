/*
 * Real transport for the engine: one UDP socket and one TCP listener on the
 * same port, a receive thread each, a thread per stream, and a ticker that
 * drives ml_tick. Every engine call that changes it happens under ops->lock;
 * packets and streams are decoded (ml_decode_*) before the lock is taken.
 */
#ifndef STARLING_HOST_CLUSTER_NET_H
#define STARLING_HOST_CLUSTER_NET_H

#include <pthread.h>

#include "engine.h"

struct ml_net_ops {
	void *arg;
	pthread_mutex_t *lock;
	struct ml_engine **eng;
	/* With the lock held, after every engine call. */
	void (*after)(void *arg, int64_t now);
	/* Without the lock, from the ticker thread, after each tick. */
	void (*idle)(void *arg);
	/* An incoming stream that has not delivered a whole message by then
	 * is cut (memberlist's TCPTimeout). */
	int64_t tcp_timeout_ms;
};

struct ml_net;

int64_t ml_now_ms(void);
/* Bind UDP+TCP on bind (port 0: pick one); *bound gets the real address. */
int ml_net_open(const struct ml_addr *bind, struct ml_net **out, struct ml_addr *bound, char *err,
		size_t errlen);
struct ml_transport ml_net_transport(struct ml_net *n);
int ml_net_start(struct ml_net *n, const struct ml_net_ops *ops);
/* Wake the ticker now (e.g. after a state change to gossip at once). */
void ml_net_kick(struct ml_net *n);
/* Incoming streams cut for holding too much before they were whole. */
uint64_t ml_net_streams_refused(struct ml_net *n);
struct ml_net_stats {
	uint64_t streams_refused;  /* as ml_net_streams_refused */
	uint64_t rx_stream_failed; /* incoming streams without a good, whole message */
	uint64_t tx_failed;	   /* datagrams the kernel refused to send */
	uint64_t decoded;	   /* packets and streams decoded without the engine lock */
	int open_streams;	   /* stream threads running (in and out) */
};
void ml_net_stats(struct ml_net *n, struct ml_net_stats *st);
void ml_net_stop(struct ml_net *n);

#endif
