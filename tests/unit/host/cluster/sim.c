/* Discrete-event simulator; see sim.h. */
#include "sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum ev_kind { EV_WAKE, EV_PACKET, EV_STREAM_REQ, EV_STREAM_REPLY };

struct event {
	int64_t t;
	uint64_t seq;
	enum ev_kind kind;
	int dst, src;
	uint64_t stream_id;
	int64_t stream_timeout;
	uint8_t *buf; /* NULL for a failed stream reply */
	size_t len;
};

struct simnode {
	struct sim *s;
	int idx;
	struct ml_engine *e;
	struct ml_addr addr;
	char name[32];
	bool up;
	int group;
	int64_t wake_at;
};

struct sim {
	struct sim_opts o;
	int64_t now;
	uint64_t seq, rng;
	struct simnode *nodes;
	struct event *heap;
	size_t n_heap, cap_heap;
	uint64_t packets, bytes, stream_bytes;
};

static uint64_t rnd(struct sim *s)
{
	uint64_t z = (s->rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static double rnd01(struct sim *s)
{
	return (double)(rnd(s) >> 11) / 9007199254740992.0;
}

static bool ev_less(const struct event *a, const struct event *b)
{
	return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

static void push(struct sim *s, struct event ev)
{
	size_t i;

	if (s->n_heap == s->cap_heap) {
		s->cap_heap = s->cap_heap ? s->cap_heap * 2 : 1024;
		s->heap = realloc(s->heap, s->cap_heap * sizeof(*s->heap));
		if (!s->heap)
			abort();
	}
	ev.seq = ++s->seq;
	i = s->n_heap++;
	while (i > 0) {
		size_t p = (i - 1) / 2;

		if (!ev_less(&ev, &s->heap[p]))
			break;
		s->heap[i] = s->heap[p];
		i = p;
	}
	s->heap[i] = ev;
}

static struct event pop(struct sim *s)
{
	struct event top = s->heap[0], last = s->heap[--s->n_heap];
	size_t i = 0;

	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		const struct event *best = &last;

		if (l < s->n_heap && ev_less(&s->heap[l], best)) {
			m = l;
			best = &s->heap[l];
		}
		if (r < s->n_heap && ev_less(&s->heap[r], best))
			m = r;
		if (m == i)
			break;
		s->heap[i] = s->heap[m];
		i = m;
	}
	if (s->n_heap)
		s->heap[i] = last;
	return top;
}

static int addr_to_node(const struct sim *s, const struct ml_addr *a)
{
	int i;

	if (a->len != 4 || a->ip[0] != 10)
		return -1;
	i = a->ip[2] * 256 + a->ip[3];
	return i < s->o.n ? i : -1;
}

static int64_t delay(struct sim *s)
{
	return s->o.delay_ms +
	       (s->o.jitter_ms ? (int64_t)(rnd(s) % (uint64_t)(s->o.jitter_ms + 1)) : 0);
}

static bool reachable(const struct sim *s, int a, int b)
{
	return s->nodes[a].group == s->nodes[b].group;
}

static uint8_t *dup(const uint8_t *p, size_t n)
{
	uint8_t *c = malloc(n ? n : 1);

	if (!c)
		abort();
	memcpy(c, p, n);
	return c;
}

static void t_send_packet(void *ctx, const struct ml_addr *to, const uint8_t *buf, size_t len)
{
	struct simnode *n = ctx;
	struct sim *s = n->s;
	int dst = addr_to_node(s, to);

	s->packets++;
	s->bytes += len;
	if (dst < 0 || rnd01(s) < s->o.loss || !reachable(s, n->idx, dst))
		return;
	push(s, (struct event){.t = s->now + delay(s),
			       .kind = EV_PACKET,
			       .dst = dst,
			       .src = n->idx,
			       .buf = dup(buf, len),
			       .len = len});
}

static void t_send_stream(void *ctx, uint64_t id, const struct ml_addr *to, const uint8_t *buf,
			  size_t len, int64_t timeout)
{
	struct simnode *n = ctx;
	struct sim *s = n->s;
	int dst = addr_to_node(s, to);

	s->stream_bytes += len;
	if (dst < 0) {
		push(s,
		     (struct event){
			 .t = s->now + 1, .kind = EV_STREAM_REPLY, .dst = n->idx, .stream_id = id});
		return;
	}
	if (rnd01(s) < s->o.loss) {
		/* lossy network: this TCP exchange times out */
		push(s, (struct event){.t = s->now + timeout,
				       .kind = EV_STREAM_REPLY,
				       .dst = n->idx,
				       .stream_id = id});
		return;
	}
	push(s, (struct event){.t = s->now + delay(s),
			       .kind = EV_STREAM_REQ,
			       .dst = dst,
			       .src = n->idx,
			       .stream_id = id,
			       .stream_timeout = timeout,
			       .buf = dup(buf, len),
			       .len = len});
}

static void schedule_wake(struct sim *s, struct simnode *n)
{
	int64_t next = ml_tick(n->e, s->now);

	if (n->wake_at > s->now && n->wake_at <= next)
		return;
	n->wake_at = next;
	push(s, (struct event){.t = next, .kind = EV_WAKE, .dst = n->idx});
}

struct sim *sim_new(const struct sim_opts *o)
{
	struct sim *s = calloc(1, sizeof(*s));

	s->o = *o;
	s->rng = o->seed;
	s->nodes = calloc((size_t)o->n, sizeof(*s->nodes));
	for (int i = 0; i < o->n; i++) {
		struct simnode *n = &s->nodes[i];
		struct ml_config cfg;
		struct ml_transport tr = {n, t_send_packet, t_send_stream};

		n->s = s;
		n->idx = i;
		n->up = true;
		snprintf(n->name, sizeof(n->name), "sim-%03d", i);
		n->addr = (struct ml_addr){
		    .ip = {10, 0, (uint8_t)(i / 256), (uint8_t)(i % 256)}, .len = 4, .port = 7946};
		memset(&cfg, 0, sizeof(cfg));
		snprintf(cfg.name, sizeof(cfg.name), "%s", n->name);
		cfg.advertise = n->addr;
		cfg.meta_len = o->meta_len < ML_META_MAX ? o->meta_len : ML_META_MAX;
		memset(cfg.meta, 'm', cfg.meta_len);
		ml_timing_preset(o->profile, &cfg.timing);
		cfg.seed = o->seed * 1000003 + (uint64_t)i;
		n->e = ml_new(&cfg, &tr, 0);
		schedule_wake(s, n);
	}
	return s;
}

void sim_free(struct sim *s)
{
	for (size_t i = 0; i < s->n_heap; i++)
		free(s->heap[i].buf);
	for (int i = 0; i < s->o.n; i++)
		ml_free(s->nodes[i].e);
	free(s->heap);
	free(s->nodes);
	free(s);
}

int64_t sim_now(const struct sim *s)
{
	return s->now;
}

void sim_run_until(struct sim *s, int64_t t)
{
	while (s->n_heap && s->heap[0].t <= t) {
		struct event ev = pop(s);
		struct simnode *n = &s->nodes[ev.dst];

		s->now = ev.t;
		if (!n->up) {
			/* a crashed node's streams fail fast (connection refused) */
			if (ev.kind == EV_STREAM_REQ && s->nodes[ev.src].up)
				push(s, (struct event){.t = s->now + delay(s),
						       .kind = EV_STREAM_REPLY,
						       .dst = ev.src,
						       .stream_id = ev.stream_id});
			free(ev.buf);
			continue;
		}
		switch (ev.kind) {
		case EV_WAKE:
			if (ev.t != n->wake_at)
				break; /* superseded */
			n->wake_at = 0;
			break;
		case EV_PACKET:
			if (reachable(s, ev.src, ev.dst))
				ml_on_packet(n->e, &s->nodes[ev.src].addr, ev.buf, ev.len, s->now);
			break;
		case EV_STREAM_REQ: {
			uint8_t *reply = NULL;
			size_t rlen = 0;
			int rc = -1;

			if (!reachable(s, ev.src, ev.dst)) {
				/* partition: the connect times out */
				push(s, (struct event){.t = s->now + ev.stream_timeout,
						       .kind = EV_STREAM_REPLY,
						       .dst = ev.src,
						       .stream_id = ev.stream_id});
				break;
			}
			rc = ml_on_stream(n->e, &s->nodes[ev.src].addr, ev.buf, ev.len, &reply,
					  &rlen, s->now);
			if (rc == 0 && reply)
				s->stream_bytes += rlen;
			push(s, (struct event){.t = s->now + delay(s),
					       .kind = EV_STREAM_REPLY,
					       .dst = ev.src,
					       .stream_id = ev.stream_id,
					       .buf = rc == 0 && reply ? reply : NULL,
					       .len = rc == 0 && reply ? rlen : 0});
			if (rc != 0 || !reply)
				free(reply);
			break;
		}
		case EV_STREAM_REPLY:
			ml_stream_result(n->e, ev.stream_id, ev.buf, ev.len, s->now);
			break;
		}
		free(ev.buf);
		schedule_wake(s, n);
	}
	s->now = t;
}

void sim_join(struct sim *s, int node, int seed_node)
{
	ml_join(s->nodes[node].e, &s->nodes[seed_node].addr, s->now);
	schedule_wake(s, &s->nodes[node]);
}

void sim_crash(struct sim *s, int node)
{
	s->nodes[node].up = false;
}

void sim_restart(struct sim *s, int node)
{
	s->nodes[node].up = true;
	s->nodes[node].wake_at = 0;
	schedule_wake(s, &s->nodes[node]);
}

bool sim_is_up(const struct sim *s, int node)
{
	return s->nodes[node].up;
}

void sim_set_loss(struct sim *s, double loss)
{
	s->o.loss = loss;
}

void sim_set_group(struct sim *s, int node, int group)
{
	s->nodes[node].group = group;
}

struct ml_engine *sim_engine(struct sim *s, int node)
{
	return s->nodes[node].e;
}

const char *sim_name(const struct sim *s, int node)
{
	return s->nodes[node].name;
}

int sim_state(struct sim *s, int viewer, int member)
{
	struct ml_engine *e = s->nodes[viewer].e;

	for (size_t i = 0; i < ml_node_count(e); i++) {
		const struct ml_node *m = ml_node_at(e, i);

		if (strcmp(m->name, s->nodes[member].name) == 0)
			return m->state;
	}
	return -1;
}

uint64_t sim_packets(const struct sim *s)
{
	return s->packets;
}

uint64_t sim_bytes(const struct sim *s)
{
	return s->bytes;
}

uint64_t sim_stream_bytes(const struct sim *s)
{
	return s->stream_bytes;
}

struct sim *sim_new_formed(const struct sim_opts *o)
{
	struct sim *s = sim_new(o);
	int64_t deadline;
	bool all;

	if (!s)
		return NULL;
	for (int i = 1; i < o->n; i++)
		sim_join(s, i, 0);
	deadline = sim_now(s) + 30000;
	do {
		sim_run_until(s, sim_now(s) + 100);
		all = true;
		for (int v = 0; v < o->n; v++) {
			struct ml_engine *e = sim_engine(s, v);
			int c = 0;

			for (size_t i = 0; i < ml_node_count(e); i++)
				c += ml_node_at(e, i)->state == ML_STATE_ALIVE;
			all &= c == o->n;
		}
	} while (!all && sim_now(s) < deadline);
	if (!all) {
		sim_free(s);
		return NULL;
	}
	return s;
}
