/*
 * The membership protocol engine (SWIM + Lifeguard, memberlist semantics).
 * It owns no sockets, threads or clocks: every entry point takes `now` (ms,
 * any monotonic origin) and sends through an injected transport, so the same
 * engine runs over UDP/TCP (net.c) and inside the deterministic simulator
 * (tests/unit/host/cluster/sim_test.c). Not thread-safe: the caller
 * serialises all calls.
 */
#ifndef STARLING_HOST_CLUSTER_ENGINE_H
#define STARLING_HOST_CLUSTER_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire.h"

struct ml_addr {
	uint8_t ip[16];
	uint8_t len; /* 4 or 16 */
	uint16_t port;
};

struct ml_transport {
	void *ctx;
	/* Send one datagram; best effort. */
	void (*send_packet)(void *ctx, const struct ml_addr *to, const uint8_t *buf, size_t len);
	/* Open a stream to `to`, write buf, read one reply message (use
	 * ml_stream_complete to know when it is whole), then report it with
	 * ml_stream_result(e, id, ...) (NULL reply on failure/timeout). */
	void (*send_stream)(void *ctx, uint64_t id, const struct ml_addr *to, const uint8_t *buf,
			    size_t len, int64_t timeout_ms);
};

struct ml_timing {
	int64_t probe_interval, probe_timeout, gossip_interval, pushpull_interval;
	int64_t gossip_to_dead, tcp_timeout;
	int gossip_nodes, indirect_checks, retransmit_mult, suspicion_mult, suspicion_max_mult;
	int awareness_max;
};

/* memberlist's DefaultLANConfig / WAN / Local values; -EINVAL if unknown. */
int ml_timing_preset(const char *name, struct ml_timing *t);

struct ml_config {
	char name[ML_NAME_MAX];
	struct ml_addr advertise;
	struct ml_timing timing;
	char label[ML_LABEL_MAX + 1]; /* "" = none */
	struct ml_keyring keys;	      /* n = 0: no encryption */
	uint8_t meta[ML_META_MAX];
	size_t meta_len;
	uint64_t seed;
	bool compress;	      /* LZW-compress outgoing packets when it shrinks them */
	uint32_t incarnation; /* first incarnation of ourselves (0 = 1) */
};

struct ml_node {
	char name[ML_NAME_MAX];
	struct ml_addr addr;
	uint8_t meta[ML_META_MAX];
	uint16_t meta_len;
	uint32_t incarnation;
	int state;	      /* enum ml_node_state */
	int64_t state_change; /* engine clock */
	/* engine clock: when this node first saw it not alive (suspected,
	 * declared dead or left) since it was last alive; a crashed member
	 * stopped before then, since a failed probe came after its crash */
	int64_t down_since;
	uint8_t vsn[6];
	/* suspicion (Lifeguard): active while state == SUSPECT */
	int susp_n, susp_k;
	int64_t susp_start, susp_min, susp_max, susp_deadline;
	uint64_t susp_from[8]; /* hashes of confirming names */
	int n_susp_from;
};

enum ml_drop_reason {
	ML_DROP_TRUNCATED,
	ML_DROP_MALFORMED,
	ML_DROP_OVERSIZED,
	ML_DROP_DECRYPT,
	ML_DROP_UNENCRYPTED,
	ML_DROP_LABEL,
	ML_DROP_CHECKSUM,
	ML_DROP_COMPRESSION,
	ML_DROP_UNKNOWN_TYPE,
	ML_DROP_WRONG_NODE,
	ML_DROP_STALE,
	ML_DROP__N,
};

extern const char *const ml_drop_names[ML_DROP__N];

struct ml_stats {
	uint64_t tx_packets, tx_bytes, rx_packets, rx_bytes;
	uint64_t tx_streams, tx_stream_bytes, rx_streams, rx_stream_bytes, stream_failures;
	uint64_t probes_ok, probes_failed, indirect_probes, tcp_fallbacks;
	uint64_t suspicions, refutations, deaths_declared, name_conflicts;
	uint64_t pushpulls, gossip_msgs;
	/* extra push/pulls started because of a gossip backlog (beyond
	 * memberlist: after a mass join) */
	uint64_t backlog_syncs;
	/* queued alive messages served after fresher news (their transmit
	 * budget kept) when such a sync found the partner's view equal */
	uint64_t backlog_retired;
	uint64_t intents_relayed;   /* serf leave intents passed on */
	uint64_t join_intents_seen; /* serf join intents received */
	uint64_t join_intent_ltime; /* newest Lamport time among them */
	/* members probed ahead of the round robin because their port answered
	 * with ICMP port unreachable (beyond memberlist) */
	uint64_t unreachable_hints;
	/* memberlist's delegate events, as ckit counts them in
	 * cluster_node_gossip_received_events_total (ckit node.go): members
	 * that became alive (NotifyJoin), died or left (NotifyLeave), changed
	 * metadata (NotifyUpdate), conflicting addresses (NotifyConflict);
	 * local states sent and remote states merged in push/pulls; user
	 * messages that are not ours. */
	uint64_t ev_join, ev_leave, ev_update, ev_conflict, ev_local_state, ev_merge, ev_user_other;
	uint64_t dropped[ML_DROP__N];
};

struct ml_engine;

struct ml_engine *ml_new(const struct ml_config *cfg, const struct ml_transport *t, int64_t now);
void ml_free(struct ml_engine *e);

/* Run due timers; returns the time of the next deadline. */
int64_t ml_tick(struct ml_engine *e, int64_t now);
void ml_on_packet(struct ml_engine *e, const struct ml_addr *from, const uint8_t *buf, size_t len,
		  int64_t now);
/* An incoming stream's bytes so far. 0: complete, *reply (malloc'd, may be
 * NULL) is to be written back; -EAGAIN: read more; other: drop it. */
int ml_on_stream(struct ml_engine *e, const struct ml_addr *from, const uint8_t *buf, size_t len,
		 uint8_t **reply, size_t *reply_len, int64_t now);
/* Whether buf holds one whole stream message (0), needs more (-EAGAIN) or
 * is bad (<0). Thread-safe (reads only immutable config). */
int ml_stream_complete(const struct ml_engine *e, const uint8_t *buf, size_t len);
void ml_stream_result(struct ml_engine *e, uint64_t id, const uint8_t *buf, size_t len,
		      int64_t now);

/*
 * The same three entry points in two halves, so that a threaded transport
 * holds the engine's lock only to apply what came in: ml_decode_* read only
 * the engine's immutable configuration (label, keyring) and are thread-safe
 * against every other call; they do the label check, decryption, CRC,
 * decompression, compound splitting and (streams) the push/pull parse.
 * ml_apply_* (under the caller's serialisation, like every other call)
 * count the traffic and drops and change the member table. ml_on_packet,
 * ml_on_stream and ml_stream_result are decode + apply.
 */
struct ml_inbound;
/* NULL only when out of memory. */
struct ml_inbound *ml_decode_packet(const struct ml_engine *e, const uint8_t *buf, size_t len);
void ml_apply_packet(struct ml_engine *e, const struct ml_addr *from, const struct ml_inbound *in,
		     int64_t now);
/* -EAGAIN: not whole yet (*out NULL); 0: *out is set (a whole message, or a
 * bad one whose drop ml_apply_stream counts); -ENOMEM. */
int ml_decode_stream(const struct ml_engine *e, const uint8_t *buf, size_t len,
		     struct ml_inbound **out);
/* 0 (reply as in ml_on_stream) or -EBADMSG. */
int ml_apply_stream(struct ml_engine *e, const struct ml_addr *from, const struct ml_inbound *in,
		    uint8_t **reply, size_t *reply_len, int64_t now);
/* The reply to our stream id, decoded with ml_decode_stream (NULL: it failed). */
void ml_apply_stream_result(struct ml_engine *e, uint64_t id, const struct ml_inbound *in,
			    int64_t now);
void ml_inbound_free(struct ml_inbound *in);

/* Start a join push/pull with addr. Results in ml_join_status(). */
void ml_join(struct ml_engine *e, const struct ml_addr *addr, int64_t now);
/* Counters of join attempts that answered / failed; conflict text if a
 * peer already has our name (else ""). */
void ml_join_status(const struct ml_engine *e, unsigned *ok, unsigned *failed,
		    const char **conflict);

/* New metadata for ourselves: bumps incarnation and gossips it. */
void ml_set_meta(struct ml_engine *e, const uint8_t *meta, size_t len, int64_t now);
/* Send our current alive message (state and metadata) straight to every
 * live member, besides gossiping it: announcements that take effect at a
 * set time (hand-overs) must not wait for the epidemic's tail or a
 * push/pull. One packet per member. */
void ml_announce_self(struct ml_engine *e);
/* Gossip an opaque user message (memberlist userMsg) with the broadcast
 * queue's transmit limits; key names it (a newer one replaces it). */
void ml_broadcast_user(struct ml_engine *e, const char *key, const uint8_t *msg, size_t len,
		       int64_t now);
/* Send an opaque user message straight to every live member (one packet
 * each), besides or instead of gossiping it: serf's join and leave intents
 * must reach every serf agent before our alive or dead message does. */
void ml_send_user_direct(struct ml_engine *e, const uint8_t *msg, size_t len);
/* Broadcast our own death (graceful leave), and send it straight to every
 * live member. */
void ml_leave(struct ml_engine *e, int64_t now);
/* The transport saw ICMP port unreachable for a packet sent to addr: the
 * member there (a crashed process on a live host) is probed now, ahead of
 * the round-robin order, instead of when its turn comes (beyond
 * memberlist, which waits for the turn). Only a probe that fails makes it
 * suspect, as always. */
void ml_hint_unreachable(struct ml_engine *e, const struct ml_addr *addr, int64_t now);
/* Pending broadcasts (0 once everything queued was gossiped enough). */
size_t ml_pending_broadcasts(const struct ml_engine *e);
/* Time (ms) gossip needs to send what is queued its remaining
 * transmissions at the configured rate; above 2 s the engine adds
 * push/pulls (backlog-triggered anti-entropy). */
int64_t ml_backlog_ms(const struct ml_engine *e);
/* Transmissions so far of the queued broadcast named name (a member's
 * name for its alive/suspect/dead news), -1 if none is queued. */
int ml_queued_transmits(const struct ml_engine *e, const char *name);
/* Alive members other than us. */
size_t ml_alive_peers(const struct ml_engine *e);

/* Members (self included); pointer valid until the next engine call. */
size_t ml_node_count(const struct ml_engine *e);
const struct ml_node *ml_node_at(const struct ml_engine *e, size_t i);
const struct ml_node *ml_self(const struct ml_engine *e);
/* Bumped on any member change (state, meta, address). */
uint64_t ml_version(const struct ml_engine *e);
int ml_health_score(const struct ml_engine *e);
const struct ml_stats *ml_stats(const struct ml_engine *e);

/* Timing helpers (memberlist's formulas), exposed for the tests. */
int64_t ml_suspicion_timeout(int mult, int n, int64_t interval);
int ml_retransmit_limit(int mult, int n);
int64_t ml_remaining_suspicion(int n, int k, int64_t elapsed, int64_t min, int64_t max);
int64_t ml_pushpull_scale(int64_t interval, int n);

int ml_addr_parse(const char *s, struct ml_addr *a);
void ml_addr_format(const struct ml_addr *a, char *out, size_t len);
bool ml_addr_eq(const struct ml_addr *a, const struct ml_addr *b);

#endif
