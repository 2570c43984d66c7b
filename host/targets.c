/* Target sets between components: see targets.h. */
#include "targets.h"

#include <starling/target_set.h>

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* One immutable, refcounted copy of a set (starling_target_set_copy). */
struct tset {
	unsigned refs; /* atomic */
	uint64_t gen;  /* publication number, > 0 */
	struct starling_target_set *set;
};

struct producer {
	struct producer *next;
	char *id;
	struct tset *latest;
};

struct rx_source {
	char *id;
	uint64_t delivered; /* gen of the set handed over last; 0: none */
	bool need_empty;    /* hand over one empty set next */
	bool gone;	    /* left the source list: drop after the empty set */
};

struct targets_rx {
	struct targets_rx *next;
	struct targets_hub *h;
	char *id;
	targets_kick_fn kick;
	void *arg;
	struct rx_source *src;
	size_t n_src;
};

struct targets_hub {
	pthread_mutex_t lock;
	struct producer *producers;
	struct targets_rx *rxs;
	uint64_t gen;
};

static void tset_unref(struct tset *t)
{
	if (t && __atomic_sub_fetch(&t->refs, 1, __ATOMIC_ACQ_REL) == 0) {
		free(t->set);
		free(t);
	}
}

/* Validate and copy (NULL with *err set on failure). */
static struct tset *tset_copy(const struct starling_target_set *in, int *err)
{
	struct tset *t = calloc(1, sizeof(*t));

	*err = -ENOMEM;
	if (!t)
		return NULL;
	t->set = starling_target_set_copy(in);
	if (!t->set) {
		*err = errno == EINVAL ? -EINVAL : -ENOMEM;
		free(t);
		return NULL;
	}
	t->refs = 1;
	*err = 0;
	return t;
}

struct targets_hub *targets_hub_new(void)
{
	struct targets_hub *h = calloc(1, sizeof(*h));

	if (h)
		pthread_mutex_init(&h->lock, NULL);
	return h;
}

void targets_hub_free(struct targets_hub *h)
{
	struct producer *p, *next;

	if (!h)
		return;
	for (p = h->producers; p; p = next) {
		next = p->next;
		tset_unref(p->latest);
		free(p->id);
		free(p);
	}
	pthread_mutex_destroy(&h->lock);
	free(h);
}

static struct producer *find_producer(struct targets_hub *h, const char *id)
{
	for (struct producer *p = h->producers; p; p = p->next)
		if (!strcmp(p->id, id))
			return p;
	return NULL;
}

static bool source_pending(struct targets_hub *h, const struct rx_source *s)
{
	const struct producer *p;

	if (s->need_empty)
		return true;
	if (s->gone)
		return false;
	p = find_producer(h, s->id);
	return p && p->latest && p->latest->gen != s->delivered;
}

/* Kick every receiver listing `producer` (hub lock held). */
static void kick_receivers(struct targets_hub *h, const char *producer)
{
	for (struct targets_rx *rx = h->rxs; rx; rx = rx->next)
		for (size_t i = 0; i < rx->n_src; i++)
			if (!rx->src[i].gone && !strcmp(rx->src[i].id, producer)) {
				rx->kick(rx->arg);
				break;
			}
}

int targets_publish(struct targets_hub *h, const char *producer,
		    const struct starling_target_set *set)
{
	struct producer *p;
	struct tset *t, *old = NULL;
	int err;

	if (!h || !producer)
		return -EINVAL;
	t = tset_copy(set, &err);
	if (!t)
		return err;
	pthread_mutex_lock(&h->lock);
	p = find_producer(h, producer);
	if (!p) {
		p = calloc(1, sizeof(*p));
		if (p)
			p->id = strdup(producer);
		if (!p || !p->id) {
			pthread_mutex_unlock(&h->lock);
			free(p);
			tset_unref(t);
			return -ENOMEM;
		}
		p->next = h->producers;
		h->producers = p;
	}
	t->gen = ++h->gen;
	old = p->latest;
	p->latest = t;
	kick_receivers(h, producer);
	pthread_mutex_unlock(&h->lock);
	tset_unref(old);
	return 0;
}

void targets_forget(struct targets_hub *h, const char *producer)
{
	struct producer **pp, *p = NULL;

	if (!h || !producer)
		return;
	pthread_mutex_lock(&h->lock);
	for (pp = &h->producers; *pp; pp = &(*pp)->next) {
		if (!strcmp((*pp)->id, producer)) {
			p = *pp;
			*pp = p->next;
			break;
		}
	}
	for (struct targets_rx *rx = h->rxs; rx; rx = rx->next) {
		for (size_t i = 0; i < rx->n_src; i++) {
			struct rx_source *s = &rx->src[i];

			if (s->gone || strcmp(s->id, producer) || !s->delivered)
				continue;
			s->delivered = 0;
			s->need_empty = true;
			rx->kick(rx->arg);
		}
	}
	pthread_mutex_unlock(&h->lock);
	if (p) {
		tset_unref(p->latest);
		free(p->id);
		free(p);
	}
}

long targets_count(struct targets_hub *h, const char *producer)
{
	struct producer *p;
	long n = -1;

	if (!h || !producer)
		return -1;
	pthread_mutex_lock(&h->lock);
	p = find_producer(h, producer);
	if (p && p->latest)
		n = (long)p->latest->set->n_targets;
	pthread_mutex_unlock(&h->lock);
	return n;
}

struct targets_rx *targets_rx_new(struct targets_hub *h, const char *id, targets_kick_fn kick,
				  void *arg)
{
	struct targets_rx *rx;

	if (!h || !id || !kick)
		return NULL;
	rx = calloc(1, sizeof(*rx));
	if (!rx)
		return NULL;
	rx->id = strdup(id);
	if (!rx->id) {
		free(rx);
		return NULL;
	}
	rx->h = h;
	rx->kick = kick;
	rx->arg = arg;
	pthread_mutex_lock(&h->lock);
	rx->next = h->rxs;
	h->rxs = rx;
	pthread_mutex_unlock(&h->lock);
	return rx;
}

static void sources_free(struct rx_source *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].id);
	free(v);
}

void targets_rx_free(struct targets_rx *rx)
{
	struct targets_hub *h;

	if (!rx)
		return;
	h = rx->h;
	pthread_mutex_lock(&h->lock);
	for (struct targets_rx **pp = &h->rxs; *pp; pp = &(*pp)->next) {
		if (*pp == rx) {
			*pp = rx->next;
			break;
		}
	}
	pthread_mutex_unlock(&h->lock);
	sources_free(rx->src, rx->n_src);
	free(rx->id);
	free(rx);
}

static struct rx_source *find_source(struct rx_source *v, size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (!v[i].gone && !strcmp(v[i].id, id))
			return &v[i];
	return NULL;
}

int targets_rx_set_sources(struct targets_rx *rx, const char *const *ids, size_t n)
{
	struct targets_hub *h;
	struct rx_source *nv;
	size_t m = 0;
	bool pending = false;

	if (!rx)
		return -EINVAL;
	h = rx->h;
	/* New entries first (deduplicated, in order), then departed ones. */
	nv = calloc(n + rx->n_src + 1, sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	pthread_mutex_lock(&h->lock);
	for (size_t i = 0; i < n; i++) {
		struct rx_source *old;

		if (!ids[i] || find_source(nv, m, ids[i]))
			continue;
		old = find_source(rx->src, rx->n_src, ids[i]);
		nv[m].id = strdup(ids[i]);
		if (!nv[m].id) {
			pthread_mutex_unlock(&h->lock);
			sources_free(nv, m);
			return -ENOMEM;
		}
		if (old) {
			nv[m].delivered = old->delivered;
			nv[m].need_empty = old->need_empty;
		}
		m++;
	}
	for (size_t i = 0; i < rx->n_src; i++) {
		struct rx_source *s = &rx->src[i], *back = find_source(nv, m, s->id);
		const struct producer *p;

		if (back && !s->gone)
			continue;
		if (back) {
			/* Left and came back before its empty set went out:
			 * the latest set supersedes it, if there is one. */
			p = find_producer(h, s->id);
			if (p && p->latest)
				back->delivered = s->delivered;
			else
				back->need_empty = true;
			continue;
		}
		if (!s->gone && !s->delivered && !s->need_empty)
			continue; /* never handed anything over */
		nv[m].id = s->id;
		s->id = NULL;
		nv[m].delivered = s->delivered;
		nv[m].gone = true;
		nv[m].need_empty = true;
		m++;
	}
	sources_free(rx->src, rx->n_src);
	rx->src = nv;
	rx->n_src = m;
	for (size_t i = 0; i < m && !pending; i++)
		pending = source_pending(h, &nv[i]);
	if (pending)
		rx->kick(rx->arg);
	pthread_mutex_unlock(&h->lock);
	return 0;
}

void targets_rx_restart(struct targets_rx *rx)
{
	size_t w = 0;

	if (!rx)
		return;
	pthread_mutex_lock(&rx->h->lock);
	for (size_t i = 0; i < rx->n_src; i++) {
		if (rx->src[i].gone) {
			free(rx->src[i].id);
			continue;
		}
		rx->src[w] = rx->src[i];
		rx->src[w].delivered = 0;
		rx->src[w].need_empty = false;
		w++;
	}
	rx->n_src = w;
	pthread_mutex_unlock(&rx->h->lock);
}

bool targets_rx_pending(struct targets_rx *rx)
{
	bool r = false;

	if (!rx)
		return false;
	pthread_mutex_lock(&rx->h->lock);
	for (size_t i = 0; i < rx->n_src && !r; i++)
		r = source_pending(rx->h, &rx->src[i]);
	pthread_mutex_unlock(&rx->h->lock);
	return r;
}

/* Take the next thing to hand over (hub lock held): *id is malloc'd, *t a
 * reference or NULL for an empty set. False when nothing is pending. */
static bool take_next(struct targets_rx *rx, char **id, struct tset **t)
{
	struct targets_hub *h = rx->h;

	for (size_t i = 0; i < rx->n_src; i++) {
		struct rx_source *s = &rx->src[i];
		struct producer *p;

		if (!source_pending(h, s))
			continue;
		*id = strdup(s->id);
		if (!*id)
			return false;
		if (s->need_empty) {
			*t = NULL;
			s->need_empty = false;
			if (s->gone) {
				free(s->id);
				memmove(s, s + 1, (rx->n_src - i - 1) * sizeof(*s));
				rx->n_src--;
			}
			return true;
		}
		p = find_producer(h, s->id);
		*t = p->latest;
		__atomic_add_fetch(&(*t)->refs, 1, __ATOMIC_RELAXED);
		s->delivered = (*t)->gen;
		return true;
	}
	return false;
}

size_t targets_rx_run(struct targets_rx *rx, targets_recv_fn fn, void *ctx)
{
	static const struct starling_target_set empty = {0};
	size_t n = 0;

	if (!rx || !fn)
		return 0;
	for (;;) {
		char *id = NULL;
		struct tset *t = NULL;
		bool got;

		pthread_mutex_lock(&rx->h->lock);
		got = take_next(rx, &id, &t);
		pthread_mutex_unlock(&rx->h->lock);
		if (!got)
			return n;
		fn(ctx, id, t ? t->set : &empty);
		tset_unref(t);
		free(id);
		n++;
	}
}
