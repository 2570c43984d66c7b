/*
 * Membership engine: memberlist's state machine (probe, indirect probe, TCP
 * fallback, suspicion with Lifeguard confirmations and awareness, named
 * broadcasts with transmit limits, push/pull) over an injected transport and
 * clock. The rules follow memberlist 0.2.2's state.go so that serf peers and
 * we agree on every transition.
 */
#include "engine.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <xxhash.h>

/* Deepest compound/compress nesting we unwrap (memberlist nests 2). */
#define MAX_NESTING	 4
#define MAX_ACK_HANDLERS 256
#define MAX_STREAMS	 64
#define MAX_DECOMPRESSED (64 * 1024)
/* Members we track at most: a flood of invented names cannot exhaust memory. */
#define MAX_NODES 16384
/* Protocol/delegate versions we advertise: the same as Debian's serf so
 * that serf's version checks accept us (pmin, pmax, pcur, dmin, dmax, dcur). */
static const uint8_t our_vsn[6] = {1, 5, 2, 2, 5, 5};

const char *const ml_drop_names[ML_DROP__N] = {
    [ML_DROP_TRUNCATED] = "truncated",
    [ML_DROP_MALFORMED] = "malformed",
    [ML_DROP_OVERSIZED] = "oversized",
    [ML_DROP_DECRYPT] = "decrypt_failed",
    [ML_DROP_UNENCRYPTED] = "unencrypted",
    [ML_DROP_LABEL] = "wrong_label",
    [ML_DROP_CHECKSUM] = "bad_checksum",
    [ML_DROP_COMPRESSION] = "bad_compression",
    [ML_DROP_UNKNOWN_TYPE] = "unknown_type",
    [ML_DROP_WRONG_NODE] = "wrong_node",
    [ML_DROP_STALE] = "stale",
};

enum ack_kind { ACK_PROBE, ACK_RELAY };

/* Leave intents relayed lately, by hash of the node name (a bounded,
 * direct-mapped memory: a collision costs at most one extra relay). */
#define SERF_INTENTS 1024
struct serf_intent {
	uint64_t h, ltime;
};

struct ack_handler {
	uint32_t seq;
	enum ack_kind kind;
	int64_t deadline;
	/* relay */
	struct ml_addr requester;
	uint32_t requester_seq;
	bool want_nack;
};

enum stream_kind { ST_JOIN, ST_PUSHPULL, ST_SYNC, ST_TCPPING };

struct pending_stream {
	uint64_t id;
	enum stream_kind kind;
	uint32_t seq;
	int64_t deadline;
};

/* A queued broadcast: in the list of its transmit count, ordered by
 * submission id, newest first (memberlist's limitedBroadcast keeps the id
 * stamped at QueueBroadcast through every transmit tier), and in a hash
 * chain by name (a newer broadcast about a name replaces it). */
struct bcast {
	struct bcast *prev, *next, *hnext;
	uint64_t h, id;
	char name[ML_NAME_MAX];
	uint8_t *msg;
	size_t len;
	int transmits;
	bool deferred; /* served after every other item (retire_backlog) */
	bool refutes;  /* an alive that answers a suspicion: never deferred */
};

/* Transmit counts kept apart (more than any retransmit limit: 6 x 5); the
 * deferred items have a second set of tiers after these. */
#define BQ_TIERS 32

/*
 * Backlog-triggered anti-entropy (beyond memberlist; host/cluster/README.md
 * "Gossip at scale"): when the broadcast queue holds more transmissions than
 * gossip sends in SYNC_BACKLOG_MS (a mass join, never one join), a full
 * push/pull with a random live member every SYNC_INTERVAL_MS, as long as
 * members joined (became alive) in our view since the previous one or its
 * partner lacked alive members we have, at most SYNC_MAX times per backlog
 * episode (backlog_sync; retire_backlog once the views agree).
 */
#define SYNC_BACKLOG_MS	 2000
#define SYNC_INTERVAL_MS 1000
#define SYNC_MAX	 30

struct probe_state {
	bool active;
	uint32_t seq;
	char node[ML_NAME_MAX];
	struct ml_addr addr;
	int64_t sent, direct_deadline, final_deadline;
	bool indirect_sent, tcp_ok;
	int expected_nacks, nacks;
};

/* Lifeguard counts missing nacks against our own health. The relays send
 * their nack one probe timeout after our indirect request, i.e. right at
 * the probe's deadline, so we keep counting for a short grace period
 * before charging them (the suspicion itself is not delayed). */
struct nack_eval {
	bool pending;
	uint32_t seq;
	int expected, nacks;
	int64_t at;
};

#define PROBE_SOON_MAX 8

struct ml_engine {
	struct ml_config cfg;
	struct nack_eval nack_eval;
	struct ml_transport tr;
	struct ml_node **nodes;
	size_t n_nodes, cap_nodes;
	/* open-addressing indexes over nodes by name and by address (power of
	 * two slots, > 2 x cap_nodes), so that a packet or message costs no
	 * scan of a 1,000-member list */
	struct ml_node **by_name, **by_addr;
	size_t cap_idx;
	size_t probe_index;
	/* members whose port answered a packet with ICMP port unreachable
	 * (ml_hint_unreachable): probed next, ahead of the round robin */
	char probe_soon[PROBE_SOON_MAX][ML_NAME_MAX];
	int n_probe_soon;
	uint32_t seq;
	uint32_t incarnation;
	int awareness;
	uint64_t rng;
	bool left;
	uint64_t version;
	int64_t next_probe, next_gossip, next_pushpull;
	struct probe_state probe;
	struct ack_handler acks[MAX_ACK_HANDLERS];
	int n_acks;
	struct pending_stream streams[MAX_STREAMS];
	int n_streams;
	uint64_t next_stream_id;
	struct serf_intent intents[SERF_INTENTS];
	struct bcast *bq_tier[2 * BQ_TIERS]; /* by deferred, transmits */
	struct bcast **bq_hash;		     /* chains by name hash */
	size_t n_bq, n_bq_hash;
	uint64_t bq_id; /* last submission id */
	/* queued bytes (item + compound overhead): sum, and sum x transmits */
	uint64_t bq_bytes, bq_sent_bytes;
	/* backlog sync episode: armed while the backlog is above threshold;
	 * sync_more: the last partner lacked members; sync_deferred: this
	 * episode's backlog was moved behind fresher news */
	bool sync_armed, sync_more, sync_deferred;
	int sync_count;
	int64_t next_sync;
	uint64_t sync_joins; /* st.ev_join when the last sync started */
	unsigned join_ok, join_failed;
	char conflict[256];
	struct ml_stats st;
	struct mp_buf scratch; /* message being built */
	struct mp_buf out;     /* framed packet */
};

/* ---- helpers ---- */

static void retire_backlog(struct ml_engine *e);

static uint64_t rnd(struct ml_engine *e)
{
	/* splitmix64: deterministic per seed, good enough for peer choice */
	uint64_t z = (e->rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static int rnd_n(struct ml_engine *e, size_t n)
{
	return n ? (int)(rnd(e) % n) : 0;
}

int ml_timing_preset(const char *name, struct ml_timing *t)
{
	/* memberlist DefaultLANConfig */
	*t = (struct ml_timing){
	    .probe_interval = 1000,
	    .probe_timeout = 500,
	    .gossip_interval = 200,
	    .pushpull_interval = 30000,
	    .gossip_to_dead = 30000,
	    .tcp_timeout = 10000,
	    .gossip_nodes = 3,
	    .indirect_checks = 3,
	    .retransmit_mult = 4,
	    .suspicion_mult = 4,
	    .suspicion_max_mult = 6,
	    .awareness_max = 8,
	};
	if (!name || !name[0] || strcmp(name, "lan") == 0)
		return 0;
	if (strcmp(name, "wan") == 0) {
		t->tcp_timeout = 30000;
		t->suspicion_mult = 6;
		t->pushpull_interval = 60000;
		t->probe_timeout = 3000;
		t->probe_interval = 5000;
		t->gossip_nodes = 4;
		t->gossip_interval = 500;
		t->gossip_to_dead = 60000;
		return 0;
	}
	if (strcmp(name, "local") == 0) {
		t->tcp_timeout = 1000;
		t->indirect_checks = 1;
		t->retransmit_mult = 2;
		t->suspicion_mult = 3;
		t->pushpull_interval = 15000;
		t->probe_timeout = 200;
		t->probe_interval = 1000;
		t->gossip_interval = 100;
		t->gossip_to_dead = 15000;
		return 0;
	}
	return -EINVAL;
}

int64_t ml_suspicion_timeout(int mult, int n, int64_t interval)
{
	double scale = fmax(1.0, log10(fmax(1.0, (double)n)));

	/* memberlist: mult * (scale*1000 truncated) * interval / 1000 */
	return (int64_t)mult * (int64_t)(scale * 1000) * interval / 1000;
}

int ml_retransmit_limit(int mult, int n)
{
	return mult * (int)ceil(log10((double)n + 1));
}

int64_t ml_remaining_suspicion(int n, int k, int64_t elapsed, int64_t min, int64_t max)
{
	double frac = log((double)n + 1.0) / log((double)k + 1.0);
	double raw = (double)max / 1000.0 - frac * ((double)(max - min) / 1000.0);
	int64_t timeout = (int64_t)floor(1000.0 * raw);

	if (timeout < min)
		timeout = min;
	return timeout - elapsed;
}

int64_t ml_pushpull_scale(int64_t interval, int n)
{
	if (n <= 32)
		return interval;
	double mult = ceil(log2((double)n) - log2(32.0)) + 1.0;

	return (int64_t)mult * interval;
}

int ml_addr_parse(const char *s, struct ml_addr *a)
{
	char host[128];
	const char *colon, *port;
	long p;
	char *end;

	memset(a, 0, sizeof(*a));
	if (s[0] == '[') {
		const char *rb = strchr(s, ']');

		if (!rb || rb[1] != ':' || (size_t)(rb - s - 1) >= sizeof(host))
			return -EINVAL;
		memcpy(host, s + 1, (size_t)(rb - s - 1));
		host[rb - s - 1] = 0;
		port = rb + 2;
	} else {
		colon = strrchr(s, ':');
		if (!colon || (size_t)(colon - s) >= sizeof(host))
			return -EINVAL;
		memcpy(host, s, (size_t)(colon - s));
		host[colon - s] = 0;
		port = colon + 1;
	}
	errno = 0;
	p = strtol(port, &end, 10);
	if (errno || *end || p < 0 || p > 65535 || end == port)
		return -EINVAL;
	a->port = (uint16_t)p;
	if (inet_pton(AF_INET, host, a->ip) == 1) {
		a->len = 4;
		return 0;
	}
	if (inet_pton(AF_INET6, host, a->ip) == 1) {
		a->len = 16;
		return 0;
	}
	return -EINVAL;
}

void ml_addr_format(const struct ml_addr *a, char *out, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (a->len == 4)
		inet_ntop(AF_INET, a->ip, ip, sizeof(ip));
	else if (a->len == 16)
		inet_ntop(AF_INET6, a->ip, ip, sizeof(ip));
	if (a->len == 16)
		snprintf(out, len, "[%s]:%u", ip, a->port);
	else
		snprintf(out, len, "%s:%u", ip, a->port);
}

bool ml_addr_eq(const struct ml_addr *a, const struct ml_addr *b)
{
	return a->len == b->len && a->port == b->port && memcmp(a->ip, b->ip, a->len) == 0;
}

static bool bytes_to_name(const struct ml_bytes *b, char *out)
{
	if (b->n == 0 || b->n >= ML_NAME_MAX || memchr(b->p, 0, b->n))
		return false;
	memcpy(out, b->p, b->n);
	out[b->n] = 0;
	return true;
}

static bool bytes_eq_str(const struct ml_bytes *b, const char *s)
{
	return strlen(s) == b->n && memcmp(b->p, s, b->n) == 0;
}

static bool bytes_to_addr(const struct ml_bytes *b, uint16_t port, struct ml_addr *a)
{
	if (b->n != 4 && b->n != 16)
		return false;
	memset(a, 0, sizeof(*a));
	memcpy(a->ip, b->p, b->n);
	a->len = (uint8_t)b->n;
	a->port = port;
	return true;
}

static size_t name_slot(const struct ml_engine *e, const char *name)
{
	return (size_t)XXH3_64bits(name, strlen(name)) & (e->cap_idx - 1);
}

static size_t addr_slot(const struct ml_engine *e, const struct ml_addr *a)
{
	uint8_t k[19];

	memcpy(k, a->ip, 16);
	k[16] = a->len;
	k[17] = (uint8_t)(a->port >> 8);
	k[18] = (uint8_t)a->port;
	return (size_t)XXH3_64bits(k, sizeof(k)) & (e->cap_idx - 1);
}

static void index_add(struct ml_engine *e, struct ml_node *n)
{
	size_t s = name_slot(e, n->name);

	while (e->by_name[s])
		s = (s + 1) & (e->cap_idx - 1);
	e->by_name[s] = n;
	s = addr_slot(e, &n->addr);
	while (e->by_addr[s])
		s = (s + 1) & (e->cap_idx - 1);
	e->by_addr[s] = n;
}

/* Rebuild both indexes (after a removal or an address change), growing
 * them to cover want nodes. false when out of memory (indexes unchanged). */
static bool index_rebuild(struct ml_engine *e, size_t want)
{
	size_t cap = e->cap_idx ? e->cap_idx : 64;

	while (cap < 2 * want + 2)
		cap *= 2;
	if (cap != e->cap_idx) {
		struct ml_node **a = calloc(cap, sizeof(*a)), **b = calloc(cap, sizeof(*b));

		if (!a || !b) {
			free(a);
			free(b);
			return false;
		}
		free(e->by_name);
		free(e->by_addr);
		e->by_name = a;
		e->by_addr = b;
		e->cap_idx = cap;
	} else {
		memset(e->by_name, 0, cap * sizeof(*e->by_name));
		memset(e->by_addr, 0, cap * sizeof(*e->by_addr));
	}
	for (size_t i = 0; i < e->n_nodes; i++)
		index_add(e, e->nodes[i]);
	return true;
}

static struct ml_node *find_node(struct ml_engine *e, const char *name)
{
	if (!e->cap_idx)
		return NULL;
	for (size_t s = name_slot(e, name); e->by_name[s]; s = (s + 1) & (e->cap_idx - 1))
		if (strcmp(e->by_name[s]->name, name) == 0)
			return e->by_name[s];
	return NULL;
}

/* The first member found at address a (several may share one: a dead
 * member and the one that took its address). */
static struct ml_node *find_by_addr(struct ml_engine *e, const struct ml_addr *a)
{
	if (!e->cap_idx)
		return NULL;
	for (size_t s = addr_slot(e, a); e->by_addr[s]; s = (s + 1) & (e->cap_idx - 1))
		if (ml_addr_eq(&e->by_addr[s]->addr, a))
			return e->by_addr[s];
	return NULL;
}

static struct ml_node *self_node(struct ml_engine *e)
{
	return find_node(e, e->cfg.name);
}

static void drop(struct ml_engine *e, enum ml_drop_reason r)
{
	e->st.dropped[r]++;
}

static enum ml_drop_reason dec_reason(int rc)
{
	return rc == -EAGAIN ? ML_DROP_TRUNCATED : ML_DROP_MALFORMED;
}

/* ---- broadcast queue (memberlist TransmitLimitedQueue, named items) ---- */

static int bq_tier_of(const struct bcast *b)
{
	return (b->transmits < BQ_TIERS ? b->transmits : BQ_TIERS - 1) +
	       (b->deferred ? BQ_TIERS : 0);
}

/* Insert b into its tier in id order (newest first), walking from *hint
 * when it is newer than b (the caller inserts in decreasing id order, so a
 * batch costs one pass over the tier). */
static void bq_tier_insert(struct ml_engine *e, struct bcast *b, struct bcast **hint)
{
	int t = bq_tier_of(b);
	struct bcast *prev = hint && *hint && (*hint)->id > b->id ? *hint : NULL;
	struct bcast *next = prev ? prev->next : e->bq_tier[t];

	while (next && next->id > b->id) {
		prev = next;
		next = next->next;
	}
	b->prev = prev;
	b->next = next;
	if (prev)
		prev->next = b;
	else
		e->bq_tier[t] = b;
	if (next)
		next->prev = b;
	if (hint)
		*hint = b;
}

static void bq_tier_unlink(struct ml_engine *e, struct bcast *b)
{
	int t = bq_tier_of(b);

	if (b->prev)
		b->prev->next = b->next;
	else
		e->bq_tier[t] = b->next;
	if (b->next)
		b->next->prev = b->prev;
}

/* Unlink b from its tier and hash chain and free it. */
static void bq_remove(struct ml_engine *e, struct bcast *b)
{
	struct bcast **pp = &e->bq_hash[b->h & (e->n_bq_hash - 1)];

	while (*pp != b)
		pp = &(*pp)->hnext;
	*pp = b->hnext;
	bq_tier_unlink(e, b);
	e->bq_bytes -= b->len + 2;
	e->bq_sent_bytes -= (uint64_t)(b->len + 2) * (uint64_t)b->transmits;
	free(b->msg);
	free(b);
	e->n_bq--;
}

static bool bq_grow_hash(struct ml_engine *e)
{
	size_t n = e->n_bq_hash ? e->n_bq_hash * 2 : 64;
	struct bcast **nh = calloc(n, sizeof(*nh));

	if (!nh)
		return false;
	for (size_t i = 0; i < e->n_bq_hash; i++) {
		for (struct bcast *b = e->bq_hash[i], *nx; b; b = nx) {
			nx = b->hnext;
			b->hnext = nh[b->h & (n - 1)];
			nh[b->h & (n - 1)] = b;
		}
	}
	free(e->bq_hash);
	e->bq_hash = nh;
	e->n_bq_hash = n;
	return true;
}

/* Queue msg under name, replacing an older broadcast of that name (memberlist
 * TransmitLimitedQueue with named items). O(1). */
static struct bcast *queue_broadcast(struct ml_engine *e, const char *name, const uint8_t *msg,
				     size_t len)
{
	uint64_t h = XXH3_64bits(name, strlen(name));
	struct bcast *b;

	if (e->n_bq_hash) {
		for (b = e->bq_hash[h & (e->n_bq_hash - 1)]; b; b = b->hnext) {
			if (b->h == h && strcmp(b->name, name) == 0) {
				bq_remove(e, b);
				break;
			}
		}
	}
	if (e->n_bq >= e->n_bq_hash && !bq_grow_hash(e))
		return NULL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	b->msg = malloc(len);
	if (!b->msg) {
		free(b);
		return NULL;
	}
	memcpy(b->msg, msg, len);
	b->len = len;
	b->h = h;
	snprintf(b->name, sizeof(b->name), "%s", name);
	b->id = ++e->bq_id;
	b->hnext = e->bq_hash[h & (e->n_bq_hash - 1)];
	e->bq_hash[h & (e->n_bq_hash - 1)] = b;
	bq_tier_insert(e, b, NULL); /* the newest: at the head of tier 0 */
	e->n_bq++;
	e->bq_bytes += len + 2;
	return b;
}

/* Pick broadcasts that fit in limit bytes (overhead per item) from the whole
 * queue, fewest transmissions first and, among equals, newest submission
 * first, as memberlist's GetBroadcasts does over its ordered tree (queue.go:
 * limitedBroadcast.Less orders by transmits, then length, then id; we take
 * the newest item that fits where memberlist takes the longest that fits);
 * count one transmission on each, drop those that reached the retransmit
 * limit, and reinsert the others into their next tier only after the walk
 * (as memberlist does) keeping their submission id. The walk stops once a
 * run of items does not fit, so a long queue costs a bounded number of
 * steps per packet. */
static int get_broadcasts(struct ml_engine *e, int overhead, int limit, struct ml_bytes *out,
			  int max, uint8_t **owned)
{
	struct bcast *taken[64];
	int used = 0, k = 0, misses = 0;
	int tlimit = ml_retransmit_limit(e->cfg.timing.retransmit_mult, (int)e->n_nodes);

	if (max > 64)
		max = 64;
	for (int t = 0; t < 2 * BQ_TIERS && k < max && misses < 64; t++) {
		for (struct bcast *b = e->bq_tier[t]; b && k < max && misses < 64; b = b->next) {
			int free_b = limit - used - overhead;

			if (free_b <= 0) {
				misses = 64;
				break;
			}
			if ((int)b->len > free_b) {
				misses++;
				continue;
			}
			/* copy: the item may be freed below */
			owned[k] = malloc(b->len);
			if (!owned[k]) {
				misses = 64;
				break;
			}
			memcpy(owned[k], b->msg, b->len);
			out[k].p = owned[k];
			out[k].n = (uint32_t)b->len;
			used += overhead + (int)b->len;
			taken[k++] = b;
		}
	}
	struct bcast *hint[2 * BQ_TIERS] = {NULL};

	for (int i = 0; i < k; i++) {
		struct bcast *b = taken[i];

		if (b->transmits + 1 >= tlimit) {
			bq_remove(e, b);
			continue;
		}
		bq_tier_unlink(e, b);
		b->transmits++;
		e->bq_sent_bytes += b->len + 2;
		/* taken in (tier, id desc) order: one hint per target tier */
		bq_tier_insert(e, b, &hint[bq_tier_of(b)]);
	}
	return k;
}

/* ---- sending ---- */

static int label_overhead(const struct ml_engine *e)
{
	return e->cfg.label[0] ? 2 + (int)strlen(e->cfg.label) : 0;
}

/* Frame (compress, CRC, encrypt, label) and send one packet. */
static void raw_send(struct ml_engine *e, const struct ml_addr *to, const uint8_t *msg, size_t len)
{
	struct mp_buf *o = &e->out;
	struct mp_buf comp, crcbuf;
	const uint8_t *p = msg;
	size_t n = len;
	struct ml_node *dst = find_by_addr(e, to);
	size_t llen = strlen(e->cfg.label);

	mp_init(&comp);
	mp_init(&crcbuf);
	if (e->cfg.compress) {
		ml_enc_compress(&comp, p, n);
		if (!comp.oom && comp.len < n) {
			p = comp.p;
			n = comp.len;
		}
	}
	if (dst && dst->vsn[1] >= 5) {
		uint32_t crc = ml_crc32(p, n);
		uint8_t h[5] = {ML_HAS_CRC, (uint8_t)(crc >> 24), (uint8_t)(crc >> 16),
				(uint8_t)(crc >> 8), (uint8_t)crc};

		mp_put(&crcbuf, h, 5);
		mp_put(&crcbuf, p, n);
		p = crcbuf.p;
		n = crcbuf.len;
	}
	mp_reset(o);
	if (llen) {
		mp_put_byte(o, ML_HAS_LABEL);
		mp_put_byte(o, (uint8_t)llen);
		mp_put(o, e->cfg.label, llen);
	}
	if (e->cfg.keys.n) {
		if (ml_encrypt(&e->cfg.keys, p, n, (const uint8_t *)e->cfg.label, llen, o))
			goto out;
	} else {
		mp_put(o, p, n);
	}
	if (o->oom)
		goto out;
	e->st.tx_packets++;
	e->st.tx_bytes += o->len;
	e->tr.send_packet(e->tr.ctx, to, o->p, o->len);
out:
	mp_free(&comp);
	mp_free(&crcbuf);
}

static int packet_budget(const struct ml_engine *e)
{
	return ML_UDP_MAX - 2 - (e->cfg.keys.n ? ML_ENCRYPT_OVERHEAD : 0) - label_overhead(e) - 5;
}

/* Send msg, piggybacking queued broadcasts in a compound message. */
static void send_msg(struct ml_engine *e, const struct ml_addr *to, const uint8_t *msg, size_t len)
{
	struct ml_bytes parts[64];
	uint8_t *owned[64];
	int avail = packet_budget(e) - (int)len;
	int k = avail > 0 ? get_broadcasts(e, 2, avail, parts + 1, 63, owned) : 0;

	if (k == 0) {
		raw_send(e, to, msg, len);
		return;
	}
	struct mp_buf c;

	mp_init(&c);
	parts[0].p = msg;
	parts[0].n = (uint32_t)len;
	ml_compound_make(&c, parts, k + 1);
	if (!c.oom)
		raw_send(e, to, c.p, c.len);
	mp_free(&c);
	for (int i = 0; i < k; i++)
		free(owned[i]);
	e->st.gossip_msgs += (uint64_t)k;
}

/* Frame a stream message: compress, encrypt (encryptMsg + length, AAD =
 * that header + label), label header. */
static void frame_stream(struct ml_engine *e, const uint8_t *msg, size_t len, struct mp_buf *o)
{
	size_t llen = strlen(e->cfg.label);
	struct mp_buf comp;
	const uint8_t *p = msg;
	size_t n = len;

	mp_init(&comp);
	if (e->cfg.compress) {
		ml_enc_compress(&comp, p, n);
		if (!comp.oom) {
			p = comp.p;
			n = comp.len;
		}
	}
	if (llen) {
		mp_put_byte(o, ML_HAS_LABEL);
		mp_put_byte(o, (uint8_t)llen);
		mp_put(o, e->cfg.label, llen);
	}
	if (e->cfg.keys.n) {
		uint8_t aad[5 + ML_LABEL_MAX];
		uint32_t clen = (uint32_t)(n + ML_ENCRYPT_OVERHEAD);

		aad[0] = ML_ENCRYPT;
		aad[1] = (uint8_t)(clen >> 24);
		aad[2] = (uint8_t)(clen >> 16);
		aad[3] = (uint8_t)(clen >> 8);
		aad[4] = (uint8_t)clen;
		memcpy(aad + 5, e->cfg.label, llen);
		mp_put(o, aad, 5);
		if (ml_encrypt(&e->cfg.keys, p, n, aad, 5 + llen, o))
			o->oom = true;
	} else {
		mp_put(o, p, n);
	}
	mp_free(&comp);
}

static uint64_t start_stream(struct ml_engine *e, enum stream_kind kind, uint32_t seq,
			     const struct ml_addr *to, const uint8_t *msg, size_t len,
			     int64_t timeout, int64_t now)
{
	struct mp_buf o;
	uint64_t id;

	if (e->n_streams >= MAX_STREAMS)
		return 0;
	mp_init(&o);
	frame_stream(e, msg, len, &o);
	if (o.oom) {
		mp_free(&o);
		return 0;
	}
	id = ++e->next_stream_id;
	e->streams[e->n_streams++] = (struct pending_stream){id, kind, seq, now + timeout + 1000};
	e->st.tx_streams++;
	e->st.tx_stream_bytes += o.len;
	e->tr.send_stream(e->tr.ctx, id, to, o.p, o.len, timeout);
	mp_free(&o);
	return id;
}

/* ---- node state changes ---- */

static void encode_alive_of(struct mp_buf *b, const struct ml_node *n)
{
	struct ml_alive a = {
	    .incarnation = n->incarnation,
	    .node = {(const uint8_t *)n->name, (uint32_t)strlen(n->name)},
	    .addr = {n->addr.ip, n->addr.len},
	    .port = n->addr.port,
	    .meta = {n->meta, n->meta_len},
	    .n_vsn = 6,
	};

	memcpy(a.vsn, n->vsn, 6);
	ml_enc_alive(b, &a);
}

static void broadcast_alive(struct ml_engine *e, const struct ml_node *n, bool refutes)
{
	struct mp_buf b;

	mp_init(&b);
	encode_alive_of(&b, n);
	if (!b.oom) {
		struct bcast *q = queue_broadcast(e, n->name, b.p, b.len);

		if (q)
			q->refutes = refutes;
	}
	mp_free(&b);
}

static void broadcast_suspect(struct ml_engine *e, uint8_t type, const char *node, uint32_t inc,
			      const char *from)
{
	struct ml_suspect s = {
	    .incarnation = inc,
	    .node = {(const uint8_t *)node, (uint32_t)strlen(node)},
	    .from = {(const uint8_t *)from, (uint32_t)strlen(from)},
	};
	struct mp_buf b;

	mp_init(&b);
	ml_enc_suspect(&b, type, &s);
	if (!b.oom)
		queue_broadcast(e, node, b.p, b.len);
	mp_free(&b);
}

static void refute(struct ml_engine *e, uint32_t accused)
{
	struct ml_node *me = self_node(e);
	uint32_t inc = ++e->incarnation;

	if (accused >= inc)
		inc = e->incarnation = accused + 1;
	me->incarnation = inc;
	if (e->awareness < e->cfg.timing.awareness_max - 1)
		e->awareness++;
	e->st.refutations++;
	broadcast_alive(e, me, true);
}

static void set_state(struct ml_engine *e, struct ml_node *n, int state, int64_t now)
{
	if (n->state != state) {
		if (n->state == ML_STATE_ALIVE)
			n->down_since = now;
		n->state = state;
		n->state_change = now;
	}
	if (state != ML_STATE_SUSPECT)
		n->n_susp_from = 0;
	e->version++;
}

static void handle_alive(struct ml_engine *e, const struct ml_alive *a, int64_t now)
{
	char name[ML_NAME_MAX];
	struct ml_addr addr;
	struct ml_node *n;
	bool updates = false, is_self;

	if (!bytes_to_name(&a->node, name) || !bytes_to_addr(&a->addr, a->port, &addr)) {
		drop(e, ML_DROP_MALFORMED);
		return;
	}
	if (a->meta.n > ML_META_MAX) {
		drop(e, ML_DROP_OVERSIZED);
		return;
	}
	is_self = strcmp(name, e->cfg.name) == 0;
	if (e->left && is_self)
		return;
	if (a->n_vsn >= 3 && (a->vsn[0] == 0 || a->vsn[1] == 0 || a->vsn[0] > a->vsn[1])) {
		drop(e, ML_DROP_MALFORMED);
		return;
	}
	n = find_node(e, name);
	if (!n) {
		if (e->n_nodes >= MAX_NODES) {
			drop(e, ML_DROP_OVERSIZED);
			return;
		}
		if (e->n_nodes == e->cap_nodes) {
			size_t cap = e->cap_nodes ? e->cap_nodes * 2 : 16;
			struct ml_node **nn = realloc(e->nodes, cap * sizeof(*nn));

			if (!nn)
				return;
			e->nodes = nn;
			e->cap_nodes = cap;
		}
		if (2 * (e->n_nodes + 1) + 2 > e->cap_idx && !index_rebuild(e, e->n_nodes + 1))
			return;
		n = calloc(1, sizeof(*n));
		if (!n)
			return;
		snprintf(n->name, sizeof(n->name), "%s", name);
		n->addr = addr;
		n->state = ML_STATE_DEAD;
		n->state_change = now;
		n->down_since = now;
		memcpy(n->vsn, a->vsn, a->n_vsn >= 6 ? 6 : 0);
		/* random position, as memberlist, so probe order differs per node */
		size_t off = (size_t)rnd_n(e, e->n_nodes + 1);

		e->nodes[e->n_nodes] = e->nodes[off];
		e->nodes[off] = n;
		e->n_nodes++;
		index_add(e, n);
		updates = true;
	} else if (!ml_addr_eq(&n->addr, &addr)) {
		if (n->state == ML_STATE_LEFT) {
			updates = true;
		} else {
			/* someone else claims an existing member's name */
			e->st.name_conflicts++;
			e->st.ev_conflict++;
			if (is_self && !e->left && a->incarnation >= n->incarnation)
				refute(e, a->incarnation);
			return;
		}
	}
	if (a->incarnation <= n->incarnation && !is_self && !updates) {
		/* equal: ordinary gossip redundancy; older: a replay */
		if (a->incarnation < n->incarnation)
			drop(e, ML_DROP_STALE);
		return;
	}
	if (a->incarnation < n->incarnation && is_self)
		return;
	if (is_self) {
		if (a->incarnation == n->incarnation && a->meta.n == n->meta_len &&
		    memcmp(a->meta.p, n->meta, a->meta.n) == 0 &&
		    (a->n_vsn < 6 || memcmp(a->vsn, n->vsn, 6) == 0))
			return;
		refute(e, a->incarnation);
		return;
	}
	if (n->state == ML_STATE_DEAD || n->state == ML_STATE_LEFT)
		e->st.ev_join++;
	else if (a->meta.n != n->meta_len || memcmp(a->meta.p, n->meta, a->meta.n) != 0)
		e->st.ev_update++;
	if (a->n_vsn >= 6)
		memcpy(n->vsn, a->vsn, 6);
	n->incarnation = a->incarnation;
	memcpy(n->meta, a->meta.p, a->meta.n);
	n->meta_len = (uint16_t)a->meta.n;
	if (!ml_addr_eq(&n->addr, &addr)) {
		n->addr = addr;
		index_rebuild(e, e->n_nodes); /* same size: cannot fail */
	}
	/* an alive that ends a suspicion is never deferred (retire_backlog) */
	broadcast_alive(e, n, n->state == ML_STATE_SUSPECT);
	set_state(e, n, ML_STATE_ALIVE, now);
}

static bool confirm_suspicion(struct ml_engine *e, struct ml_node *n, const char *from, int64_t now)
{
	uint64_t h = XXH3_64bits(from, strlen(from));

	if (n->susp_n >= n->susp_k)
		return false;
	for (int i = 0; i < n->n_susp_from; i++)
		if (n->susp_from[i] == h)
			return false;
	if (n->n_susp_from < 8)
		n->susp_from[n->n_susp_from++] = h;
	n->susp_n++;
	n->susp_deadline = now + ml_remaining_suspicion(n->susp_n, n->susp_k, now - n->susp_start,
							n->susp_min, n->susp_max);
	return true;
}

static void handle_suspect(struct ml_engine *e, const char *node, uint32_t inc, const char *from,
			   int64_t now)
{
	struct ml_node *n = find_node(e, node);
	const struct ml_timing *t = &e->cfg.timing;

	if (!n)
		return;
	if (inc < n->incarnation) {
		drop(e, ML_DROP_STALE);
		return;
	}
	if (n->state == ML_STATE_SUSPECT) {
		if (confirm_suspicion(e, n, from, now))
			broadcast_suspect(e, ML_SUSPECT, node, inc, from);
		return;
	}
	if (n->state != ML_STATE_ALIVE)
		return;
	if (strcmp(node, e->cfg.name) == 0) {
		refute(e, inc);
		return;
	}
	broadcast_suspect(e, ML_SUSPECT, node, inc, from);
	e->st.suspicions++;
	n->incarnation = inc;
	set_state(e, n, ML_STATE_SUSPECT, now);

	int k = t->suspicion_mult - 2;
	int est = (int)e->n_nodes;

	if (est - 2 < k)
		k = 0;
	n->susp_k = k;
	n->susp_n = 0;
	n->susp_min = ml_suspicion_timeout(t->suspicion_mult, est, t->probe_interval);
	n->susp_max = (int64_t)t->suspicion_max_mult * n->susp_min;
	n->susp_start = now;
	n->susp_deadline = now + (k < 1 ? n->susp_min : n->susp_max);
	n->n_susp_from = 1;
	n->susp_from[0] = XXH3_64bits(from, strlen(from));
}

static void handle_dead(struct ml_engine *e, const char *node, uint32_t inc, const char *from,
			int64_t now)
{
	struct ml_node *n = find_node(e, node);

	if (!n)
		return;
	if (inc < n->incarnation) {
		drop(e, ML_DROP_STALE);
		return;
	}
	if (n->state == ML_STATE_DEAD || n->state == ML_STATE_LEFT)
		return;
	if (strcmp(node, e->cfg.name) == 0) {
		if (!e->left) {
			refute(e, inc);
			return;
		}
	}
	broadcast_suspect(e, ML_DEAD, node, inc, from);
	e->st.ev_leave++;
	n->incarnation = inc;
	set_state(e, n, strcmp(node, from) == 0 ? ML_STATE_LEFT : ML_STATE_DEAD, now);
	if (strcmp(node, from) != 0)
		e->st.deaths_declared++;
}

/* ---- packet handlers ---- */

static void send_ack(struct ml_engine *e, const struct ml_addr *to, uint32_t seq)
{
	struct ml_ack ack = {.seq = seq};

	mp_reset(&e->scratch);
	ml_enc_ack(&e->scratch, &ack);
	if (!e->scratch.oom) {
		/* scratch is reused by nested sends: copy first */
		struct mp_buf m;

		mp_init(&m);
		mp_put(&m, e->scratch.p, e->scratch.len);
		if (!m.oom)
			send_msg(e, to, m.p, m.len);
		mp_free(&m);
	}
}

static void handle_ping(struct ml_engine *e, const struct ml_addr *from, struct mp_rd *r)
{
	struct ml_ping p;
	struct ml_addr to = *from;
	int rc = ml_dec_ping(r, &p);

	if (rc) {
		drop(e, dec_reason(rc));
		return;
	}
	if (p.node.n && !bytes_eq_str(&p.node, e->cfg.name)) {
		drop(e, ML_DROP_WRONG_NODE);
		return;
	}
	if (p.source_addr.n && p.source_port)
		bytes_to_addr(&p.source_addr, p.source_port, &to);
	send_ack(e, &to, p.seq);
}

static struct ack_handler *add_ack(struct ml_engine *e)
{
	if (e->n_acks >= MAX_ACK_HANDLERS)
		return NULL;
	return &e->acks[e->n_acks++];
}

static void encode_ping(struct ml_engine *e, struct mp_buf *b, uint32_t seq, const char *node)
{
	const struct ml_node *me = self_node(e);
	struct ml_ping p = {
	    .seq = seq,
	    .node = {(const uint8_t *)node, (uint32_t)strlen(node)},
	    .source_addr = {me->addr.ip, me->addr.len},
	    .source_port = me->addr.port,
	    .source_node = {(const uint8_t *)e->cfg.name, (uint32_t)strlen(e->cfg.name)},
	};

	ml_enc_ping(b, &p);
}

static void handle_indirect(struct ml_engine *e, const struct ml_addr *from, struct mp_rd *r,
			    int64_t now)
{
	struct ml_indirect ind;
	struct ml_addr target, req = *from;
	char node[ML_NAME_MAX];
	struct ack_handler *h;
	struct mp_buf b;
	int rc = ml_dec_indirect(r, &ind);

	if (rc) {
		drop(e, dec_reason(rc));
		return;
	}
	if (!bytes_to_addr(&ind.target, ind.port ? ind.port : e->cfg.advertise.port, &target) ||
	    !bytes_to_name(&ind.node, node)) {
		drop(e, ML_DROP_MALFORMED);
		return;
	}
	if (ind.source_addr.n && ind.source_port)
		bytes_to_addr(&ind.source_addr, ind.source_port, &req);
	h = add_ack(e);
	if (!h)
		return;
	*h = (struct ack_handler){.seq = ++e->seq,
				  .kind = ACK_RELAY,
				  .deadline = now + e->cfg.timing.probe_timeout,
				  .requester = req,
				  .requester_seq = ind.seq,
				  .want_nack = ind.nack};
	mp_init(&b);
	encode_ping(e, &b, h->seq, node);
	if (!b.oom)
		send_msg(e, &target, b.p, b.len);
	mp_free(&b);
}

static void apply_awareness(struct ml_engine *e, int delta)
{
	int a = e->awareness + delta;

	if (a < 0)
		a = 0;
	if (a > e->cfg.timing.awareness_max - 1)
		a = e->cfg.timing.awareness_max - 1;
	e->awareness = a;
}

static void settle_nacks(struct ml_engine *e)
{
	struct nack_eval *ne = &e->nack_eval;

	if (!ne->pending)
		return;
	ne->pending = false;
	apply_awareness(e, ne->expected - (ne->nacks < ne->expected ? ne->nacks : ne->expected));
}

static void finish_probe(struct ml_engine *e, bool ok, int delta)
{
	apply_awareness(e, delta);
	e->probe.active = false;
	if (ok)
		e->st.probes_ok++;
	else
		e->st.probes_failed++;
}

static void handle_ack(struct ml_engine *e, struct mp_rd *r)
{
	struct ml_ack ack;
	int rc = ml_dec_ack(r, &ack);

	if (rc) {
		drop(e, dec_reason(rc));
		return;
	}
	for (int i = 0; i < e->n_acks; i++) {
		struct ack_handler h = e->acks[i];

		if (h.seq != ack.seq)
			continue;
		e->acks[i] = e->acks[--e->n_acks];
		if (h.kind == ACK_PROBE) {
			if (e->probe.active && e->probe.seq == h.seq)
				finish_probe(e, true, -1);
		} else {
			send_ack(e, &h.requester, h.requester_seq);
		}
		return;
	}
	/* an ack nobody waits for: late, or replayed */
	drop(e, ML_DROP_STALE);
}

static void handle_nack(struct ml_engine *e, struct mp_rd *r)
{
	uint32_t seq;
	int rc = ml_dec_nack(r, &seq);

	if (rc) {
		drop(e, dec_reason(rc));
		return;
	}
	if (e->probe.active && e->probe.seq == seq)
		e->probe.nacks++;
	else if (e->nack_eval.pending && e->nack_eval.seq == seq)
		e->nack_eval.nacks++;
}

static void handle_gossip(struct ml_engine *e, uint8_t type, struct mp_rd *r, int64_t now)
{
	char node[ML_NAME_MAX], src[ML_NAME_MAX];
	int rc;

	if (type == ML_ALIVE) {
		struct ml_alive a;

		rc = ml_dec_alive(r, &a);
		if (rc) {
			drop(e, dec_reason(rc));
			return;
		}
		handle_alive(e, &a, now);
		return;
	}
	struct ml_suspect s;

	rc = ml_dec_suspect(r, &s);
	if (rc) {
		drop(e, dec_reason(rc));
		return;
	}
	if (!bytes_to_name(&s.node, node) || !bytes_to_name(&s.from, src)) {
		drop(e, ML_DROP_MALFORMED);
		return;
	}
	if (type == ML_SUSPECT)
		handle_suspect(e, node, s.incarnation, src, now);
	else
		handle_dead(e, node, s.incarnation, src, now);
}

/* serf's messages ride on memberlist user messages, and serf relays its
 * leave intents itself (serf/delegate.go NotifyMsg -> handleNodeLeaveIntent
 * rebroadcasts an intent it had not seen): without that relay a serf agent
 * that the leaving node does not reach directly marks it failed, not left.
 * We relay leave intents the same way, once per (node, Lamport time); other
 * serf messages are not ours. */
#define SERF_MSG_LEAVE 0
#define SERF_MSG_JOIN  1
/* The node name and Lamport time of a serf leave or join intent ({LTime,
 * Node} after the type byte); false when malformed. */
static bool parse_leave_intent(const uint8_t *p, size_t len, uint64_t *ltime, const uint8_t **node,
			       uint32_t *node_len)
{
	struct mp_rd r;
	uint32_t n;

	mp_rd_init(&r, p, len);
	if (mp_r_map(&r, &n))
		return false;
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *k;
		uint32_t kn;
		int rc;

		if (mp_r_raw(&r, &k, &kn))
			return false;
		if (kn == 5 && memcmp(k, "LTime", 5) == 0)
			rc = mp_r_uint(&r, ltime);
		else if (kn == 4 && memcmp(k, "Node", 4) == 0)
			rc = mp_r_raw(&r, node, node_len);
		else
			rc = mp_r_skip(&r);
		if (rc)
			return false;
	}
	return *node && *node_len > 0 && *node_len < ML_NAME_MAX;
}

static void handle_user(struct ml_engine *e, const uint8_t *buf, size_t len)
{
	uint64_t ltime = 0, h;
	const uint8_t *node = NULL;
	uint32_t node_len = 0;
	char key[ML_NAME_MAX + 16];
	struct serf_intent *slot;

	if (len < 2 || buf[1] != SERF_MSG_LEAVE) {
		/* serf's join intents (type 1, which we also send) are known */
		if (len < 2 || buf[1] != SERF_MSG_JOIN) {
			e->st.ev_user_other++;
		} else if (parse_leave_intent(buf + 2, len - 2, &ltime, &node, &node_len)) {
			e->st.join_intents_seen++; /* same {LTime, Node} body */
			if (ltime > e->st.join_intent_ltime)
				e->st.join_intent_ltime = ltime;
		} else {
			drop(e, ML_DROP_MALFORMED);
		}
		return;
	}
	if (!parse_leave_intent(buf + 2, len - 2, &ltime, &node, &node_len)) {
		drop(e, ML_DROP_MALFORMED);
		return;
	}
	h = XXH3_64bits(node, node_len);
	slot = &e->intents[h % SERF_INTENTS];
	if (slot->h == h && slot->ltime >= ltime)
		return; /* seen: the epidemic stops here */
	slot->h = h;
	slot->ltime = ltime;
	snprintf(key, sizeof(key), "\x01serf-leave:%.*s", (int)node_len, (const char *)node);
	queue_broadcast(e, key, buf, len);
	e->st.intents_relayed++;
}

/* One message of a packet (type byte + body), after unwrapping. */
static void handle_leaf(struct ml_engine *e, const struct ml_addr *from, const uint8_t *buf,
			size_t len, int64_t now)
{
	struct mp_rd r;

	mp_rd_init(&r, buf + 1, len - 1);
	switch (buf[0]) {
	case ML_PING:
		handle_ping(e, from, &r);
		return;
	case ML_INDIRECT_PING:
		handle_indirect(e, from, &r, now);
		return;
	case ML_ACK:
		handle_ack(e, &r);
		return;
	case ML_NACK:
		handle_nack(e, &r);
		return;
	case ML_ALIVE:
	case ML_SUSPECT:
	case ML_DEAD:
		handle_gossip(e, buf[0], &r, now);
		return;
	case ML_USER:
		handle_user(e, buf, len);
		return;
	default:
		drop(e, ML_DROP_UNKNOWN_TYPE);
	}
}

/* Most messages one packet may unwrap to (255 per compound, nested). */
#define MAX_LEAVES 1024

/* A packet or stream decoded without the engine: the plain bytes it owns,
 * what to apply, and the drops to count when it is applied. */
struct ml_inbound {
	bool stream;
	size_t wire_len;
	uint64_t dropped[ML_DROP__N];
	/* packet: owned plain buffers (decrypted, decompressed) and the
	 * messages found in them, in order */
	struct mp_buf *bufs;
	size_t n_bufs;
	struct ml_bytes *leaves;
	size_t n_leaves, cap_leaves;
	/* stream */
	int rc; /* 0: msg is a whole, parsed message; else dropped */
	struct mp_buf plain;
	const uint8_t *msg;
	size_t len;
	struct ml_pp_header h; /* ML_PUSH_PULL */
	struct ml_push_node *nodes;
};

static void in_drop(struct ml_inbound *in, enum ml_drop_reason r)
{
	in->dropped[r]++;
}

static struct mp_buf *in_new_buf(struct ml_inbound *in)
{
	struct mp_buf *nb = realloc(in->bufs, (in->n_bufs + 1) * sizeof(*nb));

	if (!nb)
		return NULL;
	in->bufs = nb;
	mp_init(&nb[in->n_bufs]);
	return &nb[in->n_bufs++];
}

/* Unwrap compound and compressed messages down to single ones (memberlist
 * nests two deep), recording them in in->leaves. */
static void collect(const struct ml_engine *e, struct ml_inbound *in, const uint8_t *buf,
		    size_t len, int depth)
{
	(void)e;
	if (len < 1) {
		in_drop(in, ML_DROP_TRUNCATED);
		return;
	}
	if (depth > MAX_NESTING) {
		in_drop(in, ML_DROP_MALFORMED);
		return;
	}
	if (buf[0] == ML_COMPOUND) {
		struct ml_bytes parts[255];
		int trunc, k = ml_compound_split(buf + 1, len - 1, parts, 255, &trunc);

		if (k < 0) {
			in_drop(in, ML_DROP_TRUNCATED);
			return;
		}
		if (trunc)
			in_drop(in, ML_DROP_TRUNCATED);
		for (int i = 0; i < k; i++)
			collect(e, in, parts[i].p, parts[i].n, depth + 1);
		return;
	}
	if (buf[0] == ML_COMPRESS) {
		struct mp_rd r;
		int64_t algo;
		struct ml_bytes cb;
		struct mp_buf *plain;
		int rc;

		mp_rd_init(&r, buf + 1, len - 1);
		rc = ml_dec_compress(&r, &algo, &cb);
		if (rc) {
			in_drop(in, dec_reason(rc));
			return;
		}
		if (algo != 0) {
			in_drop(in, ML_DROP_COMPRESSION);
			return;
		}
		plain = in_new_buf(in);
		if (!plain)
			return;
		rc = ml_lzw_decompress(cb.p, cb.n, plain, MAX_DECOMPRESSED);
		if (rc)
			in_drop(in, rc == -EMSGSIZE ? ML_DROP_OVERSIZED : ML_DROP_COMPRESSION);
		else
			collect(e, in, plain->p, plain->len, depth + 1);
		return;
	}
	if (in->n_leaves >= MAX_LEAVES) {
		in_drop(in, ML_DROP_MALFORMED);
		return;
	}
	if (in->n_leaves == in->cap_leaves) {
		size_t cap = in->cap_leaves ? 2 * in->cap_leaves : 16;
		struct ml_bytes *nl = realloc(in->leaves, cap * sizeof(*nl));

		if (!nl)
			return;
		in->leaves = nl;
		in->cap_leaves = cap;
	}
	in->leaves[in->n_leaves++] = (struct ml_bytes){buf, (uint32_t)len};
}

void ml_inbound_free(struct ml_inbound *in)
{
	if (!in)
		return;
	for (size_t i = 0; i < in->n_bufs; i++)
		mp_free(&in->bufs[i]);
	free(in->bufs);
	free(in->leaves);
	mp_free(&in->plain);
	free(in->nodes);
	free(in);
}

struct ml_inbound *ml_decode_packet(const struct ml_engine *e, const uint8_t *buf, size_t len)
{
	size_t llen = strlen(e->cfg.label);
	struct ml_inbound *in = calloc(1, sizeof(*in));
	struct mp_buf *plain;

	if (!in)
		return NULL;
	mp_init(&in->plain);
	in->wire_len = len;
	if (len > 65536) {
		in_drop(in, ML_DROP_OVERSIZED);
		return in;
	}
	if (len < 1) {
		in_drop(in, ML_DROP_TRUNCATED);
		return in;
	}
	if (buf[0] == ML_HAS_LABEL) {
		if (len < 2 || len < 2 + (size_t)buf[1]) {
			in_drop(in, ML_DROP_TRUNCATED);
			return in;
		}
		if (buf[1] != llen || memcmp(buf + 2, e->cfg.label, llen) != 0) {
			in_drop(in, ML_DROP_LABEL);
			return in;
		}
		buf += 2 + llen;
		len -= 2 + llen;
	} else if (llen) {
		in_drop(in, ML_DROP_LABEL);
		return in;
	}
	if (e->cfg.keys.n) {
		plain = in_new_buf(in);
		if (!plain)
			return in;
		if (ml_decrypt(&e->cfg.keys, buf, len, (const uint8_t *)e->cfg.label, llen,
			       plain)) {
			in_drop(in, len && buf[0] > 1 ? ML_DROP_UNENCRYPTED : ML_DROP_DECRYPT);
			return in;
		}
		buf = plain->p;
		len = plain->len;
	}
	if (len >= 1 && buf[0] == ML_HAS_CRC) {
		if (len < 5) {
			in_drop(in, ML_DROP_TRUNCATED);
			return in;
		}
		uint32_t want = (uint32_t)buf[1] << 24 | (uint32_t)buf[2] << 16 |
				(uint32_t)buf[3] << 8 | buf[4];

		if (ml_crc32(buf + 5, len - 5) != want) {
			in_drop(in, ML_DROP_CHECKSUM);
			return in;
		}
		buf += 5;
		len -= 5;
	}
	collect(e, in, buf, len, 0);
	return in;
}

static void count_drops(struct ml_engine *e, const struct ml_inbound *in)
{
	for (int i = 0; i < ML_DROP__N; i++)
		e->st.dropped[i] += in->dropped[i];
}

void ml_apply_packet(struct ml_engine *e, const struct ml_addr *from, const struct ml_inbound *in,
		     int64_t now)
{
	e->st.rx_packets++;
	e->st.rx_bytes += in->wire_len;
	count_drops(e, in);
	for (size_t i = 0; i < in->n_leaves; i++)
		handle_leaf(e, from, in->leaves[i].p, in->leaves[i].n, now);
}

void ml_on_packet(struct ml_engine *e, const struct ml_addr *from, const uint8_t *buf, size_t len,
		  int64_t now)
{
	struct ml_inbound *in = ml_decode_packet(e, buf, len);

	if (!in) {
		e->st.rx_packets++;
		e->st.rx_bytes += len;
		return;
	}
	ml_apply_packet(e, from, in, now);
	ml_inbound_free(in);
}

/* ---- streams ---- */

struct stream_msg {
	struct mp_buf plain; /* owns decrypted/decompressed bytes */
	const uint8_t *msg;  /* type byte + body */
	size_t len;
};

/* Unwrap label, encryption and compression of a stream. 0, -EAGAIN, or
 * -(reason+1000) for a drop with that reason. */
static int unwrap_stream(const struct ml_engine *e, const uint8_t *buf, size_t len,
			 struct stream_msg *m)
{
	size_t llen = strlen(e->cfg.label);
	int rc;

	mp_init(&m->plain);
	m->msg = NULL;
	m->len = 0;
	if (len < 1)
		return -EAGAIN;
	if (buf[0] == ML_HAS_LABEL) {
		if (len < 2 || len < 2 + (size_t)buf[1])
			return -EAGAIN;
		if (buf[1] != llen || memcmp(buf + 2, e->cfg.label, llen) != 0)
			return -(1000 + ML_DROP_LABEL);
		buf += 2 + llen;
		len -= 2 + llen;
		if (len < 1)
			return -EAGAIN;
	} else if (llen) {
		return -(1000 + ML_DROP_LABEL);
	}
	if (buf[0] == ML_ENCRYPT) {
		uint8_t aad[5 + ML_LABEL_MAX];
		uint32_t more;

		if (!e->cfg.keys.n)
			return -(1000 + ML_DROP_DECRYPT);
		if (len < 5)
			return -EAGAIN;
		more = (uint32_t)buf[1] << 24 | (uint32_t)buf[2] << 16 | (uint32_t)buf[3] << 8 |
		       buf[4];
		if (more > ML_MAX_PUSH_BYTES)
			return -(1000 + ML_DROP_OVERSIZED);
		if (len - 5 < more)
			return -EAGAIN;
		memcpy(aad, buf, 5);
		memcpy(aad + 5, e->cfg.label, llen);
		if (ml_decrypt(&e->cfg.keys, buf + 5, more, aad, 5 + llen, &m->plain))
			return -(1000 + ML_DROP_DECRYPT);
		buf = m->plain.p;
		len = m->plain.len;
		if (len < 1)
			return -(1000 + ML_DROP_TRUNCATED);
	} else if (e->cfg.keys.n) {
		return -(1000 + ML_DROP_UNENCRYPTED);
	}
	if (len > ML_MAX_PUSH_BYTES)
		return -(1000 + ML_DROP_OVERSIZED);
	if (buf[0] == ML_COMPRESS) {
		struct mp_rd r;
		int64_t algo;
		struct ml_bytes cb;
		struct mp_buf out;

		mp_rd_init(&r, buf + 1, len - 1);
		rc = ml_dec_compress(&r, &algo, &cb);
		if (rc == -EAGAIN && !m->plain.len)
			return -EAGAIN;
		if (rc)
			return -(1000 + ML_DROP_MALFORMED);
		if (algo != 0)
			return -(1000 + ML_DROP_COMPRESSION);
		mp_init(&out);
		rc = ml_lzw_decompress(cb.p, cb.n, &out, ML_MAX_PUSH_BYTES);
		if (rc) {
			mp_free(&out);
			return -(1000 +
				 (rc == -EMSGSIZE ? ML_DROP_OVERSIZED : ML_DROP_COMPRESSION));
		}
		mp_free(&m->plain);
		m->plain = out;
		buf = m->plain.p;
		len = m->plain.len;
		if (len < 1)
			return -(1000 + ML_DROP_TRUNCATED);
	}
	m->msg = buf;
	m->len = len;
	/* whole if the framing was explicit; else the parser decides */
	return m->plain.len ? 1 : 0;
}

/* Parse a push/pull body. Calls fn for each node when fn != NULL. */
static int parse_pushpull(const uint8_t *body, size_t len, struct ml_pp_header *h,
			  struct ml_push_node **nodes_out)
{
	struct mp_rd r;
	struct ml_push_node *nodes = NULL;
	int rc;

	mp_rd_init(&r, body, len);
	rc = ml_dec_pp_header(&r, h);
	if (rc)
		return rc;
	if (h->nodes < 0 || h->nodes > 100000 || h->user_state_len < 0 ||
	    h->user_state_len > ML_MAX_PUSH_BYTES)
		return -EBADMSG;
	if (nodes_out) {
		nodes = calloc((size_t)h->nodes + 1, sizeof(*nodes));
		if (!nodes)
			return -ENOMEM;
	}
	for (int64_t i = 0; i < h->nodes; i++) {
		struct ml_push_node tmp;

		rc = ml_dec_push_node(&r, nodes ? &nodes[i] : &tmp);
		if (rc) {
			free(nodes);
			return rc;
		}
	}
	if (r.len - r.off < (size_t)h->user_state_len) {
		free(nodes);
		return -EAGAIN;
	}
	if (nodes_out)
		*nodes_out = nodes;
	return 0;
}

static int body_complete(const uint8_t *msg, size_t len)
{
	struct mp_rd r;
	struct ml_pp_header h;

	mp_rd_init(&r, msg + 1, len - 1);
	switch (msg[0]) {
	case ML_PUSH_PULL:
		return parse_pushpull(msg + 1, len - 1, &h, NULL);
	case ML_PING:
	case ML_ACK:
	case ML_ERR:
		return mp_r_skip(&r);
	case ML_USER: {
		int64_t ulen = 0;
		uint32_t n;
		int rc = mp_r_map(&r, &n);

		for (uint32_t i = 0; !rc && i < n; i++) {
			const uint8_t *k;
			uint32_t kn;

			rc = mp_r_raw(&r, &k, &kn);
			if (!rc && kn == 10 && memcmp(k, "UserMsgLen", 10) == 0)
				rc = mp_r_int(&r, &ulen);
			else if (!rc)
				rc = mp_r_skip(&r);
		}
		if (rc)
			return rc;
		if (ulen < 0 || ulen > ML_MAX_PUSH_BYTES)
			return -EBADMSG;
		return r.len - r.off >= (size_t)ulen ? 0 : -EAGAIN;
	}
	default:
		return -EBADMSG;
	}
}

int ml_stream_complete(const struct ml_engine *e, const uint8_t *buf, size_t len)
{
	struct stream_msg m;
	int rc = unwrap_stream(e, buf, len, &m);

	if (rc >= 0) {
		int whole = rc;

		rc = body_complete(m.msg, m.len);
		if (rc == -EAGAIN && whole)
			rc = -EBADMSG;
	}
	mp_free(&m.plain);
	return rc == -EAGAIN ? -EAGAIN : rc < 0 ? -EBADMSG : 0;
}

static void encode_local_state(struct ml_engine *e, bool join, struct mp_buf *b)
{
	struct ml_pp_header h = {.nodes = (int64_t)e->n_nodes, .user_state_len = 0, .join = join};

	e->st.ev_local_state++;
	mp_put_byte(b, ML_PUSH_PULL);
	ml_enc_pp_header(b, &h);
	for (size_t i = 0; i < e->n_nodes; i++) {
		const struct ml_node *n = e->nodes[i];
		struct ml_push_node p = {
		    .name = {(const uint8_t *)n->name, (uint32_t)strlen(n->name)},
		    .addr = {n->addr.ip, n->addr.len},
		    .port = n->addr.port,
		    .meta = {n->meta, n->meta_len},
		    .incarnation = n->incarnation,
		    .state = n->state,
		    .n_vsn = 6,
		};

		memcpy(p.vsn, n->vsn, 6);
		ml_enc_push_node(b, &p);
	}
}

/* A remote state that lists our name at another address: a duplicate. */
static bool find_conflict(struct ml_engine *e, const struct ml_push_node *nodes, int64_t n,
			  char *msg, size_t len)
{
	const struct ml_node *me = self_node(e);

	for (int64_t i = 0; i < n; i++) {
		struct ml_addr a;

		if (!bytes_eq_str(&nodes[i].name, e->cfg.name))
			continue;
		if (nodes[i].state != ML_STATE_ALIVE && nodes[i].state != ML_STATE_SUSPECT)
			continue;
		if (!bytes_to_addr(&nodes[i].addr, nodes[i].port, &a) || ml_addr_eq(&a, &me->addr))
			continue;
		char as[64];

		ml_addr_format(&a, as, sizeof(as));
		snprintf(msg, len, "node name \"%s\" is already used by the member at %s",
			 e->cfg.name, as);
		return true;
	}
	return false;
}

static void merge_state(struct ml_engine *e, const struct ml_push_node *nodes, int64_t n,
			int64_t now)
{
	e->st.ev_merge++;
	for (int64_t i = 0; i < n; i++) {
		const struct ml_push_node *r = &nodes[i];
		char name[ML_NAME_MAX];

		if (!bytes_to_name(&r->name, name)) {
			drop(e, ML_DROP_MALFORMED);
			continue;
		}
		switch (r->state) {
		case ML_STATE_ALIVE: {
			struct ml_alive a = {
			    .incarnation = r->incarnation,
			    .node = r->name,
			    .addr = r->addr,
			    .port = r->port,
			    .meta = r->meta,
			    .n_vsn = r->n_vsn,
			};

			memcpy(a.vsn, r->vsn, sizeof(a.vsn));
			handle_alive(e, &a, now);
			break;
		}
		case ML_STATE_LEFT:
			handle_dead(e, name, r->incarnation, name, now);
			break;
		case ML_STATE_DEAD:
		case ML_STATE_SUSPECT:
			handle_suspect(e, name, r->incarnation, e->cfg.name, now);
			break;
		default:
			break;
		}
	}
}

int ml_decode_stream(const struct ml_engine *e, const uint8_t *buf, size_t len,
		     struct ml_inbound **out)
{
	struct ml_inbound *in;
	struct stream_msg m;
	int rc = unwrap_stream(e, buf, len, &m);

	*out = NULL;
	if (rc == -EAGAIN) {
		mp_free(&m.plain);
		return -EAGAIN;
	}
	in = calloc(1, sizeof(*in));
	if (!in) {
		mp_free(&m.plain);
		return -ENOMEM;
	}
	in->stream = true;
	in->wire_len = len;
	in->plain = m.plain; /* owns what m.msg points into */
	in->rc = -EBADMSG;
	*out = in;
	if (rc < 0) {
		in_drop(in, (enum ml_drop_reason)(-rc - 1000));
		return 0;
	}
	int whole = rc;

	rc = body_complete(m.msg, m.len);
	if (rc == -EAGAIN && !whole) {
		ml_inbound_free(in);
		*out = NULL;
		return -EAGAIN;
	}
	if (rc) {
		in_drop(in, rc == -EAGAIN ? ML_DROP_TRUNCATED : ML_DROP_MALFORMED);
		return 0;
	}
	in->msg = m.msg;
	in->len = m.len;
	if (m.msg[0] == ML_PUSH_PULL && parse_pushpull(m.msg + 1, m.len - 1, &in->h, &in->nodes)) {
		in_drop(in, ML_DROP_MALFORMED);
		return 0;
	}
	in->rc = 0;
	return 0;
}

int ml_apply_stream(struct ml_engine *e, const struct ml_addr *from, const struct ml_inbound *in,
		    uint8_t **reply, size_t *reply_len, int64_t now)
{
	struct mp_buf out, o;
	int rc = 0;

	(void)from;
	*reply = NULL;
	*reply_len = 0;
	count_drops(e, in);
	if (in->rc)
		return -EBADMSG;
	e->st.rx_streams++;
	e->st.rx_stream_bytes += in->wire_len;
	mp_init(&out);
	mp_init(&o);
	if (in->msg[0] == ML_PUSH_PULL) {
		char conflict[256];

		if (in->h.join &&
		    find_conflict(e, in->nodes, in->h.nodes, conflict, sizeof(conflict))) {
			e->st.name_conflicts++;
			ml_enc_err(&out, conflict);
		} else {
			encode_local_state(e, in->h.join, &out);
			merge_state(e, in->nodes, in->h.nodes, now);
			e->st.pushpulls++;
		}
	} else if (in->msg[0] == ML_PING) {
		struct mp_rd r;
		struct ml_ping p;

		mp_rd_init(&r, in->msg + 1, in->len - 1);
		if (ml_dec_ping(&r, &p) == 0 && (!p.node.n || bytes_eq_str(&p.node, e->cfg.name))) {
			struct ml_ack ack = {.seq = p.seq};

			ml_enc_ack(&out, &ack);
		} else {
			drop(e, ML_DROP_WRONG_NODE);
		}
	}
	if (out.len) {
		frame_stream(e, out.p, out.len, &o);
		if (!o.oom) {
			*reply = malloc(o.len);
			if (*reply) {
				memcpy(*reply, o.p, o.len);
				*reply_len = o.len;
				e->st.tx_stream_bytes += o.len;
			}
		}
	}
	mp_free(&out);
	mp_free(&o);
	return rc;
}

int ml_on_stream(struct ml_engine *e, const struct ml_addr *from, const uint8_t *buf, size_t len,
		 uint8_t **reply, size_t *reply_len, int64_t now)
{
	struct ml_inbound *in;
	int rc = ml_decode_stream(e, buf, len, &in);

	*reply = NULL;
	*reply_len = 0;
	if (rc)
		return rc;
	rc = ml_apply_stream(e, from, in, reply, reply_len, now);
	ml_inbound_free(in);
	return rc;
}

static void stream_pushpull_result(struct ml_engine *e, bool join, const struct ml_inbound *in,
				   int64_t now)
{
	const uint8_t *msg = in->msg;
	size_t len = in->len;

	if (msg[0] == ML_ERR) {
		struct mp_rd r;
		struct ml_bytes em;

		mp_rd_init(&r, msg + 1, len - 1);
		if (join && ml_dec_err(&r, &em) == 0)
			snprintf(e->conflict, sizeof(e->conflict), "%.*s", (int)em.n,
				 (const char *)em.p);
		if (join)
			e->join_failed++;
		return;
	}
	if (msg[0] != ML_PUSH_PULL) {
		drop(e, ML_DROP_MALFORMED);
		if (join)
			e->join_failed++;
		return;
	}
	if (join && find_conflict(e, in->nodes, in->h.nodes, e->conflict, sizeof(e->conflict))) {
		e->st.name_conflicts++;
		e->join_failed++;
		return;
	}
	merge_state(e, in->nodes, in->h.nodes, now);
	e->st.pushpulls++;
	if (join)
		e->join_ok++;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Our alive members that a push/pull state does not list (any state):
 * what the partner lacked. SIZE_MAX when out of memory (assume some). */
static size_t missing_from(const struct ml_engine *e, const struct ml_push_node *nodes, int64_t n)
{
	uint64_t *h = malloc((size_t)(n > 0 ? n : 1) * sizeof(*h));
	size_t missing = 0;

	if (!h)
		return SIZE_MAX;
	for (int64_t i = 0; i < n; i++)
		h[i] = XXH3_64bits(nodes[i].name.p, nodes[i].name.n);
	qsort(h, (size_t)n, sizeof(*h), cmp_u64);
	for (size_t i = 0; i < e->n_nodes; i++) {
		const struct ml_node *m = e->nodes[i];
		uint64_t k;

		if (m->state != ML_STATE_ALIVE)
			continue;
		k = XXH3_64bits(m->name, strlen(m->name));
		missing += !bsearch(&k, h, (size_t)n, sizeof(*h), cmp_u64);
	}
	free(h);
	return missing;
}

void ml_apply_stream_result(struct ml_engine *e, uint64_t id, const struct ml_inbound *in,
			    int64_t now)
{
	struct pending_stream ps;
	int i;

	for (i = 0; i < e->n_streams; i++)
		if (e->streams[i].id == id)
			break;
	if (i == e->n_streams)
		return; /* expired */
	ps = e->streams[i];
	e->streams[i] = e->streams[--e->n_streams];
	if (!in) {
		e->st.stream_failures++;
		if (ps.kind == ST_JOIN)
			e->join_failed++;
		return;
	}
	e->st.rx_stream_bytes += in->wire_len;
	count_drops(e, in);
	if (in->rc) {
		if (ps.kind == ST_JOIN)
			e->join_failed++;
		return;
	}
	switch (ps.kind) {
	case ST_JOIN:
	case ST_PUSHPULL:
		stream_pushpull_result(e, ps.kind == ST_JOIN, in, now);
		break;
	case ST_SYNC: {
		uint64_t joins = e->st.ev_join;
		size_t lacked;

		stream_pushpull_result(e, false, in, now);
		if (in->msg[0] != ML_PUSH_PULL)
			break;
		lacked = missing_from(e, in->nodes, in->h.nodes);
		if (lacked) {
			e->sync_more = true; /* the partner lacked members: keep on */
		} else if (e->st.ev_join == joins && !e->sync_deferred) {
			retire_backlog(e); /* nothing new either way: once */
			e->sync_deferred = true;
		}
		break;
	}
	case ST_TCPPING:
		if (in->msg[0] == ML_ACK) {
			struct mp_rd r;
			struct ml_ack ack;

			mp_rd_init(&r, in->msg + 1, in->len - 1);
			if (ml_dec_ack(&r, &ack) == 0 && e->probe.active && ack.seq == ps.seq &&
			    e->probe.seq == ps.seq)
				e->probe.tcp_ok = true;
		}
		break;
	}
}

void ml_stream_result(struct ml_engine *e, uint64_t id, const uint8_t *buf, size_t len, int64_t now)
{
	struct ml_inbound *in = NULL;

	/* a reply is whole by the time it is reported: -EAGAIN is a cut one */
	if (buf && ml_decode_stream(e, buf, len, &in) == -EAGAIN) {
		in = calloc(1, sizeof(*in));
		if (in) {
			mp_init(&in->plain);
			in->stream = true;
			in->wire_len = len;
			in->rc = -EBADMSG;
			in_drop(in, ML_DROP_TRUNCATED);
		}
	}
	if (buf && !in) {
		/* out of memory: count it as a failed exchange */
		ml_apply_stream_result(e, id, NULL, now);
		return;
	}
	ml_apply_stream_result(e, id, in, now);
	ml_inbound_free(in);
}

/* ---- timers ---- */

typedef bool (*node_filter)(const struct ml_engine *e, const struct ml_node *n, int64_t now,
			    const char *extra);

static int k_random(struct ml_engine *e, int k, node_filter skip, int64_t now, const char *extra,
		    struct ml_node **out)
{
	int got = 0;
	size_t n = e->n_nodes;

	for (size_t i = 0; i < 3 * n && got < k; i++) {
		struct ml_node *c = e->nodes[rnd_n(e, n)];
		bool dup = false;

		if (skip(e, c, now, extra))
			continue;
		for (int j = 0; j < got; j++)
			dup |= out[j] == c;
		if (!dup)
			out[got++] = c;
	}
	return got;
}

static bool skip_gossip(const struct ml_engine *e, const struct ml_node *n, int64_t now,
			const char *extra)
{
	if (strcmp(n->name, e->cfg.name) == 0)
		return true;
	switch (n->state) {
	case ML_STATE_ALIVE:
	case ML_STATE_SUSPECT:
		return false;
	case ML_STATE_DEAD:
		return now - n->state_change > e->cfg.timing.gossip_to_dead;
	default:
		return true;
	}
}

static bool skip_not_alive(const struct ml_engine *e, const struct ml_node *n, int64_t now,
			   const char *extra)
{
	return strcmp(n->name, e->cfg.name) == 0 || n->state != ML_STATE_ALIVE ||
	       (extra && strcmp(n->name, extra) == 0);
}

static void gossip(struct ml_engine *e, int64_t now)
{
	struct ml_node *targets[16];
	int k = k_random(e, e->cfg.timing.gossip_nodes < 16 ? e->cfg.timing.gossip_nodes : 16,
			 skip_gossip, now, NULL, targets);
	int limit = packet_budget(e);

	for (int i = 0; i < k; i++) {
		struct ml_bytes parts[64];
		uint8_t *owned[64];
		int n = get_broadcasts(e, 2, limit, parts, 64, owned);

		if (n == 0)
			return;
		e->st.gossip_msgs += (uint64_t)n;
		if (n == 1) {
			raw_send(e, &targets[i]->addr, parts[0].p, parts[0].n);
		} else {
			struct mp_buf c;

			mp_init(&c);
			ml_compound_make(&c, parts, n);
			if (!c.oom)
				raw_send(e, &targets[i]->addr, c.p, c.len);
			mp_free(&c);
		}
		for (int j = 0; j < n; j++)
			free(owned[j]);
	}
}

static void push_pull(struct ml_engine *e, enum stream_kind kind, int64_t now)
{
	struct ml_node *t[1];
	struct mp_buf b;

	if (k_random(e, 1, skip_not_alive, now, NULL, t) != 1)
		return;
	mp_init(&b);
	encode_local_state(e, false, &b);
	if (!b.oom)
		start_stream(e, kind, 0, &t[0]->addr, b.p, b.len, e->cfg.timing.tcp_timeout, now);
	mp_free(&b);
}

/* Time (ms) gossip needs to send every queued broadcast its remaining
 * transmissions: queued bytes x transmissions left, over what gossip_nodes
 * packets of packet_budget bytes every gossip_interval carry. */
static int64_t backlog_ms(const struct ml_engine *e)
{
	const struct ml_timing *t = &e->cfg.timing;
	uint64_t tlimit = (uint64_t)ml_retransmit_limit(t->retransmit_mult, (int)e->n_nodes);
	uint64_t total = tlimit * e->bq_bytes;
	uint64_t left = total > e->bq_sent_bytes ? total - e->bq_sent_bytes : 0;
	uint64_t per_s = (uint64_t)t->gossip_nodes * (uint64_t)packet_budget(e) * 1000u /
			 (uint64_t)(t->gossip_interval > 0 ? t->gossip_interval : 1);

	return per_s ? (int64_t)(left * 1000u / per_s) : 0;
}

static int cmp_bcast_tier_id(const void *a, const void *b)
{
	const struct bcast *x = *(struct bcast *const *)a, *y = *(struct bcast *const *)b;

	if (x->transmits != y->transmits)
		return x->transmits < y->transmits ? -1 : 1;
	return x->id < y->id ? 1 : x->id > y->id ? -1 : 0;
}

/* The first backlog sync of an episode that found a random member's view
 * equal to ours: the membership agrees on what is queued, the mass join's
 * news. Every queued alive message keeps all its remaining transmissions
 * but is served after everything queued later (memberlist's order among
 * themselves), so that news arriving now (a later join, a death) is not
 * queued behind tens of seconds of mass-join gossip. Suspect and dead
 * messages keep their place. */
static void retire_backlog(struct ml_engine *e)
{
	struct bcast **moved = malloc(e->n_bq * sizeof(*moved));
	struct bcast *hint = NULL;
	size_t n = 0;

	if (!moved)
		return;
	for (int t = 0; t < BQ_TIERS; t++) {
		for (struct bcast *b = e->bq_tier[t], *nx; b; b = nx) {
			nx = b->next;
			if (!b->len || b->msg[0] != ML_ALIVE || b->refutes)
				continue;
			bq_tier_unlink(e, b);
			moved[n++] = b;
		}
	}
	/* by tier, then id descending: one pass per target tier */
	qsort(moved, n, sizeof(*moved), cmp_bcast_tier_id);
	for (size_t i = 0; i < n; i++) {
		moved[i]->deferred = true;
		if (i && moved[i]->transmits != moved[i - 1]->transmits)
			hint = NULL;
		bq_tier_insert(e, moved[i], &hint);
	}
	e->st.backlog_retired += n;
	free(moved);
}

/* Backlog-triggered anti-entropy (see SYNC_BACKLOG_MS). Returns the time
 * of its next check, or INT64_MAX when no episode is running. */
static int64_t backlog_sync(struct ml_engine *e, int64_t now)
{
	if (backlog_ms(e) <= SYNC_BACKLOG_MS) {
		e->sync_armed = false;
		return INT64_MAX;
	}
	if (!e->sync_armed) {
		/* a new episode: the first sync one interval on, so that a
		 * joiner does not repeat the exchange it just made */
		e->sync_armed = true;
		e->sync_deferred = false;
		e->sync_count = 0;
		e->sync_joins = e->st.ev_join;
		e->next_sync = now + SYNC_INTERVAL_MS;
		return e->next_sync;
	}
	if (now < e->next_sync)
		return e->next_sync;
	e->next_sync = now + SYNC_INTERVAL_MS;
	if (e->sync_count >= SYNC_MAX || (e->st.ev_join == e->sync_joins && !e->sync_more))
		return e->next_sync; /* spent, or no member joined since the last one */
	e->sync_joins = e->st.ev_join;
	e->sync_more = false;
	e->sync_count++;
	e->st.backlog_syncs++;
	push_pull(e, ST_SYNC, now);
	return e->next_sync;
}

static void reset_nodes(struct ml_engine *e, int64_t now)
{
	size_t w = 0;

	for (size_t i = 0; i < e->n_nodes; i++) {
		struct ml_node *n = e->nodes[i];

		if ((n->state == ML_STATE_DEAD || n->state == ML_STATE_LEFT) &&
		    now - n->state_change > e->cfg.timing.gossip_to_dead &&
		    strcmp(n->name, e->cfg.name) != 0) {
			free(n);
			e->version++;
			continue;
		}
		e->nodes[w++] = n;
	}
	if (w != e->n_nodes) {
		e->n_nodes = w;
		index_rebuild(e, w); /* smaller: cannot fail */
	}
	for (size_t i = w; i > 1; i--) {
		size_t j = (size_t)rnd_n(e, i);
		struct ml_node *tmp = e->nodes[i - 1];

		e->nodes[i - 1] = e->nodes[j];
		e->nodes[j] = tmp;
	}
}

/* The first member of probe_soon still alive (dropping the others). */
static struct ml_node *probe_soon_next(struct ml_engine *e)
{
	struct ml_node *n = NULL;
	int i = 0;

	while (!n && i < e->n_probe_soon) {
		n = find_node(e, e->probe_soon[i++]);
		if (n && n->state != ML_STATE_ALIVE)
			n = NULL;
	}
	memmove(e->probe_soon, e->probe_soon[i], (size_t)(e->n_probe_soon - i) * ML_NAME_MAX);
	e->n_probe_soon -= i;
	return n;
}

void ml_hint_unreachable(struct ml_engine *e, const struct ml_addr *addr, int64_t now)
{
	struct ml_node *n = find_by_addr(e, addr);

	if (!n || n->state != ML_STATE_ALIVE || strcmp(n->name, e->cfg.name) == 0 || e->left)
		return;
	for (int i = 0; i < e->n_probe_soon; i++)
		if (strcmp(e->probe_soon[i], n->name) == 0)
			return;
	if (e->n_probe_soon == PROBE_SOON_MAX)
		return;
	snprintf(e->probe_soon[e->n_probe_soon++], ML_NAME_MAX, "%s", n->name);
	e->st.unreachable_hints++;
	/* probe it now when no probe is under way: the next probe moves up,
	 * the interval after it stays */
	if (!e->probe.active && e->next_probe > now)
		e->next_probe = now;
}

static void start_probe(struct ml_engine *e, int64_t now)
{
	struct ml_node *target = probe_soon_next(e);
	size_t checked = target ? e->n_nodes + 1 : 0;

	while (checked <= e->n_nodes) {
		if (e->probe_index >= e->n_nodes) {
			reset_nodes(e, now);
			e->probe_index = 0;
			checked++;
			continue;
		}
		struct ml_node *n = e->nodes[e->probe_index++];

		checked++;
		if (strcmp(n->name, e->cfg.name) == 0 || n->state == ML_STATE_DEAD ||
		    n->state == ML_STATE_LEFT)
			continue;
		target = n;
		break;
	}
	if (!target)
		return;
	struct probe_state *p = &e->probe;
	struct ack_handler *h;
	struct mp_buf b;
	int64_t scaled = e->cfg.timing.probe_interval * (e->awareness + 1);

	memset(p, 0, sizeof(*p));
	p->active = true;
	p->seq = ++e->seq;
	snprintf(p->node, sizeof(p->node), "%s", target->name);
	p->addr = target->addr;
	p->sent = now;
	p->direct_deadline = now + e->cfg.timing.probe_timeout;
	p->final_deadline = now + scaled;
	h = add_ack(e);
	if (h)
		*h = (struct ack_handler){
		    .seq = p->seq, .kind = ACK_PROBE, .deadline = p->final_deadline};
	mp_init(&b);
	encode_ping(e, &b, p->seq, target->name);
	if (target->state == ML_STATE_ALIVE) {
		if (!b.oom)
			send_msg(e, &target->addr, b.p, b.len);
	} else {
		/* suspect: tell it directly so it can refute */
		struct ml_suspect s = {
		    .incarnation = target->incarnation,
		    .node = {(const uint8_t *)target->name, (uint32_t)strlen(target->name)},
		    .from = {(const uint8_t *)e->cfg.name, (uint32_t)strlen(e->cfg.name)},
		};
		struct mp_buf sb, c;
		struct ml_bytes parts[2];

		mp_init(&sb);
		mp_init(&c);
		ml_enc_suspect(&sb, ML_SUSPECT, &s);
		parts[0] = (struct ml_bytes){b.p, (uint32_t)b.len};
		parts[1] = (struct ml_bytes){sb.p, (uint32_t)sb.len};
		ml_compound_make(&c, parts, 2);
		if (!c.oom && !b.oom && !sb.oom)
			raw_send(e, &target->addr, c.p, c.len);
		mp_free(&sb);
		mp_free(&c);
	}
	mp_free(&b);
}

static void probe_indirect(struct ml_engine *e, int64_t now)
{
	struct probe_state *p = &e->probe;
	struct ml_node *peers[16], *target = find_node(e, p->node);
	const struct ml_node *me = self_node(e);
	int k;

	p->indirect_sent = true;
	if (!target) {
		return;
	}
	e->st.indirect_probes++;
	k = k_random(e, e->cfg.timing.indirect_checks < 16 ? e->cfg.timing.indirect_checks : 16,
		     skip_not_alive, now, p->node, peers);
	for (int i = 0; i < k; i++) {
		struct ml_indirect ind = {
		    .seq = p->seq,
		    .target = {target->addr.ip, target->addr.len},
		    .port = target->addr.port,
		    .node = {(const uint8_t *)target->name, (uint32_t)strlen(target->name)},
		    .nack = peers[i]->vsn[1] >= 4,
		    .source_addr = {me->addr.ip, me->addr.len},
		    .source_port = me->addr.port,
		    .source_node = {(const uint8_t *)e->cfg.name, (uint32_t)strlen(e->cfg.name)},
		};
		struct mp_buf b;

		if (ind.nack)
			p->expected_nacks++;
		mp_init(&b);
		ml_enc_indirect(&b, &ind);
		if (!b.oom)
			send_msg(e, &peers[i]->addr, b.p, b.len);
		mp_free(&b);
	}
	if (target->vsn[1] >= 3 && p->final_deadline > now) {
		struct mp_buf b;

		mp_init(&b);
		encode_ping(e, &b, p->seq, target->name);
		if (!b.oom) {
			e->st.tcp_fallbacks++;
			start_stream(e, ST_TCPPING, p->seq, &target->addr, b.p, b.len,
				     p->final_deadline - now, now);
		}
		mp_free(&b);
	}
}

static void probe_timeout(struct ml_engine *e, int64_t now)
{
	struct probe_state *p = &e->probe;
	struct ml_node *n;
	int delta;

	if (p->tcp_ok) {
		finish_probe(e, true, -1);
		return;
	}
	if (p->expected_nacks > 0) {
		settle_nacks(e);
		e->nack_eval = (struct nack_eval){true, p->seq, p->expected_nacks, p->nacks,
						  now + e->cfg.timing.probe_timeout / 4};
		delta = 0;
	} else {
		delta = 1;
	}
	finish_probe(e, false, delta);
	n = find_node(e, p->node);
	if (n)
		handle_suspect(e, n->name, n->incarnation, e->cfg.name, now);
}

static int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

int64_t ml_tick(struct ml_engine *e, int64_t now)
{
	const struct ml_timing *t = &e->cfg.timing;
	int64_t next, next_sync = INT64_MAX;

	/* expire ack handlers; relays owe a nack */
	for (int i = 0; i < e->n_acks;) {
		struct ack_handler h = e->acks[i];

		if (h.deadline > now) {
			i++;
			continue;
		}
		e->acks[i] = e->acks[--e->n_acks];
		if (h.kind == ACK_RELAY && h.want_nack) {
			struct mp_buf b;

			mp_init(&b);
			ml_enc_nack(&b, h.requester_seq);
			if (!b.oom)
				send_msg(e, &h.requester, b.p, b.len);
			mp_free(&b);
		}
	}
	for (int i = 0; i < e->n_streams;) {
		if (e->streams[i].deadline <= now) {
			if (e->streams[i].kind == ST_JOIN)
				e->join_failed++;
			e->st.stream_failures++;
			e->streams[i] = e->streams[--e->n_streams];
		} else {
			i++;
		}
	}
	/* suspicion timeouts */
	for (size_t i = 0; i < e->n_nodes; i++) {
		struct ml_node *n = e->nodes[i];

		if (n->state == ML_STATE_SUSPECT && n->susp_deadline <= now)
			handle_dead(e, n->name, n->incarnation, e->cfg.name, now);
	}
	if (e->nack_eval.pending && now >= e->nack_eval.at)
		settle_nacks(e);
	if (e->left)
		goto gossip_only;
	if (e->probe.active) {
		if (!e->probe.indirect_sent && now >= e->probe.direct_deadline)
			probe_indirect(e, now);
		if (now >= e->probe.final_deadline) {
			probe_timeout(e, now);
			if (e->next_probe < now)
				e->next_probe = now;
		}
	}
	if (!e->probe.active && now >= e->next_probe) {
		e->next_probe = now + t->probe_interval;
		start_probe(e, now);
	}
	if (now >= e->next_pushpull) {
		e->next_pushpull = now + ml_pushpull_scale(t->pushpull_interval, (int)e->n_nodes);
		push_pull(e, ST_PUSHPULL, now);
	}
	next_sync = backlog_sync(e, now);
gossip_only:
	if (now >= e->next_gossip) {
		e->next_gossip = now + t->gossip_interval;
		gossip(e, now);
	}
	next = min64(e->next_gossip, e->left ? e->next_gossip : e->next_probe);
	next = min64(next, e->next_pushpull);
	next = min64(next, next_sync);
	if (e->probe.active)
		next = min64(next, e->probe.indirect_sent ? e->probe.final_deadline
							  : e->probe.direct_deadline);
	for (int i = 0; i < e->n_acks; i++)
		next = min64(next, e->acks[i].deadline);
	if (e->nack_eval.pending)
		next = min64(next, e->nack_eval.at);
	for (size_t i = 0; i < e->n_nodes; i++)
		if (e->nodes[i]->state == ML_STATE_SUSPECT)
			next = min64(next, e->nodes[i]->susp_deadline);
	return next > now ? next : now + 1;
}

/* ---- lifecycle / accessors ---- */

struct ml_engine *ml_new(const struct ml_config *cfg, const struct ml_transport *t, int64_t now)
{
	struct ml_engine *e = calloc(1, sizeof(*e));
	struct ml_alive a;

	if (!e)
		return NULL;
	e->cfg = *cfg;
	e->tr = *t;
	e->rng = cfg->seed ^ XXH3_64bits(cfg->name, strlen(cfg->name));
	mp_init(&e->scratch);
	mp_init(&e->out);
	/* memberlist staggers each timer by a random fraction of its period */
	e->next_probe = now + rnd_n(e, (size_t)cfg->timing.probe_interval);
	e->next_gossip = now + rnd_n(e, (size_t)cfg->timing.gossip_interval);
	e->next_pushpull = now + rnd_n(e, (size_t)cfg->timing.pushpull_interval);
	e->incarnation = cfg->incarnation ? cfg->incarnation : 1;
	memset(&a, 0, sizeof(a));
	a.incarnation = e->incarnation;
	a.node = (struct ml_bytes){(const uint8_t *)cfg->name, (uint32_t)strlen(cfg->name)};
	a.addr = (struct ml_bytes){cfg->advertise.ip, cfg->advertise.len};
	a.port = cfg->advertise.port;
	a.meta = (struct ml_bytes){cfg->meta, (uint32_t)cfg->meta_len};
	memcpy(a.vsn, our_vsn, 6);
	a.n_vsn = 6;
	/* bootstrap: insert ourselves directly */
	e->nodes = calloc(16, sizeof(*e->nodes));
	struct ml_node *me = calloc(1, sizeof(*me));

	if (!e->nodes || !me) {
		free(me);
		ml_free(e);
		return NULL;
	}
	e->cap_nodes = 16;
	snprintf(me->name, sizeof(me->name), "%s", cfg->name);
	me->addr = cfg->advertise;
	memcpy(me->meta, cfg->meta, cfg->meta_len);
	me->meta_len = (uint16_t)cfg->meta_len;
	me->incarnation = e->incarnation;
	me->state = ML_STATE_ALIVE;
	me->state_change = now;
	memcpy(me->vsn, our_vsn, 6);
	e->nodes[e->n_nodes++] = me;
	if (!index_rebuild(e, 16)) {
		ml_free(e);
		return NULL;
	}
	broadcast_alive(e, me, true);
	e->version = 1;
	return e;
}

void ml_free(struct ml_engine *e)
{
	if (!e)
		return;
	for (size_t i = 0; i < e->n_nodes; i++)
		free(e->nodes[i]);
	free(e->nodes);
	free(e->by_name);
	free(e->by_addr);
	for (int t = 0; t < 2 * BQ_TIERS; t++) {
		for (struct bcast *b = e->bq_tier[t], *nx; b; b = nx) {
			nx = b->next;
			free(b->msg);
			free(b);
		}
	}
	free(e->bq_hash);
	mp_free(&e->scratch);
	mp_free(&e->out);
	free(e);
}

void ml_join(struct ml_engine *e, const struct ml_addr *addr, int64_t now)
{
	struct mp_buf b;

	mp_init(&b);
	encode_local_state(e, true, &b);
	if (b.oom || !start_stream(e, ST_JOIN, 0, addr, b.p, b.len, e->cfg.timing.tcp_timeout, now))
		e->join_failed++;
	mp_free(&b);
}

void ml_join_status(const struct ml_engine *e, unsigned *ok, unsigned *failed,
		    const char **conflict)
{
	*ok = e->join_ok;
	*failed = e->join_failed;
	*conflict = e->conflict;
}

void ml_set_meta(struct ml_engine *e, const uint8_t *meta, size_t len, int64_t now)
{
	struct ml_node *me = self_node(e);

	if (len > ML_META_MAX)
		return;
	memcpy(me->meta, meta, len);
	me->meta_len = (uint16_t)len;
	memcpy(e->cfg.meta, meta, len);
	e->cfg.meta_len = len;
	me->incarnation = ++e->incarnation;
	broadcast_alive(e, me, true);
	e->version++;
	/* gossip it right away rather than at the next tick */
	e->next_gossip = now;
}

/* Send msg straight to every live member but us (one packet each). */
static void send_to_members(struct ml_engine *e, const uint8_t *msg, size_t len)
{
	for (size_t i = 0; i < e->n_nodes; i++) {
		const struct ml_node *n = e->nodes[i];

		if (strcmp(n->name, e->cfg.name) != 0 &&
		    (n->state == ML_STATE_ALIVE || n->state == ML_STATE_SUSPECT))
			raw_send(e, &n->addr, msg, len);
	}
}

void ml_announce_self(struct ml_engine *e)
{
	struct mp_buf b;

	mp_init(&b);
	encode_alive_of(&b, self_node(e));
	if (!b.oom)
		send_to_members(e, b.p, b.len);
	mp_free(&b);
}

void ml_send_user_direct(struct ml_engine *e, const uint8_t *msg, size_t len)
{
	struct mp_buf b;

	mp_init(&b);
	mp_put_byte(&b, ML_USER);
	mp_put(&b, msg, len);
	if (!b.oom)
		send_to_members(e, b.p, b.len);
	mp_free(&b);
}

void ml_broadcast_user(struct ml_engine *e, const char *key, const uint8_t *msg, size_t len,
		       int64_t now)
{
	struct mp_buf b;

	mp_init(&b);
	mp_put_byte(&b, ML_USER);
	mp_put(&b, msg, len);
	if (!b.oom)
		queue_broadcast(e, key, b.p, b.len);
	mp_free(&b);
	e->next_gossip = now;
}

void ml_leave(struct ml_engine *e, int64_t now)
{
	struct ml_node *me = self_node(e);

	if (e->left)
		return;
	e->left = true;
	handle_dead(e, me->name, me->incarnation, me->name, now);
	/* and straight to every member: one that the epidemic misses keeps us
	 * alive until a probe fails, and a serf agent that has our leave
	 * intent then shows us "leaving" (not alive) after a restart */
	struct ml_suspect d = {
	    .incarnation = me->incarnation,
	    .node = {(const uint8_t *)me->name, (uint32_t)strlen(me->name)},
	    .from = {(const uint8_t *)me->name, (uint32_t)strlen(me->name)},
	};
	struct mp_buf b;

	mp_init(&b);
	ml_enc_suspect(&b, ML_DEAD, &d);
	if (!b.oom)
		send_to_members(e, b.p, b.len);
	mp_free(&b);
	e->next_gossip = now;
}

int ml_queued_transmits(const struct ml_engine *e, const char *name)
{
	uint64_t h = XXH3_64bits(name, strlen(name));

	if (!e->n_bq_hash)
		return -1;
	for (const struct bcast *b = e->bq_hash[h & (e->n_bq_hash - 1)]; b; b = b->hnext)
		if (b->h == h && strcmp(b->name, name) == 0)
			return b->transmits;
	return -1;
}

size_t ml_pending_broadcasts(const struct ml_engine *e)
{
	return e->n_bq;
}

int64_t ml_backlog_ms(const struct ml_engine *e)
{
	return backlog_ms(e);
}

size_t ml_alive_peers(const struct ml_engine *e)
{
	size_t n = 0;

	for (size_t i = 0; i < e->n_nodes; i++)
		if (e->nodes[i]->state == ML_STATE_ALIVE &&
		    strcmp(e->nodes[i]->name, e->cfg.name) != 0)
			n++;
	return n;
}

size_t ml_node_count(const struct ml_engine *e)
{
	return e->n_nodes;
}

const struct ml_node *ml_node_at(const struct ml_engine *e, size_t i)
{
	return i < e->n_nodes ? e->nodes[i] : NULL;
}

const struct ml_node *ml_self(const struct ml_engine *e)
{
	return find_node((struct ml_engine *)e, e->cfg.name);
}

uint64_t ml_version(const struct ml_engine *e)
{
	return e->version;
}

int ml_health_score(const struct ml_engine *e)
{
	return e->awareness;
}

const struct ml_stats *ml_stats(const struct ml_engine *e)
{
	return &e->st;
}
