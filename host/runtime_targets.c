/*
 * Target sets in the component runtime: forward_targets, and delivery of
 * each receiver's pending sets (host/targets.c keeps the sets and what each
 * receiver was handed) on a host thread through an internal one-shot timer
 * of the receiver, so deliveries are serialised with its other callbacks
 * and skipped while it stops. Right after a receiver's start() the host
 * hands it the latest set of every source synchronously, before any of its
 * timers can run. Locking: see runtime_internal.h; the hub's lock sits
 * between c->cb_lock and rt->tlock.
 */
#include "runtime_internal.h"
#include "log.h"
#include "targets.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static bool receives_targets(const struct starling_component *c)
{
	return (c->type->accepts & STARLING_ACCEPTS_TARGETS) && c->type->receive_targets;
}

/* From the hub (its lock held): arrange a delivery run soon. */
static void kick(void *arg)
{
	struct starling_component *c = arg;

	pthread_mutex_lock(&c->rt->tlock);
	if (c->targets_timer)
		timer_rearm_locked(c->targets_timer, 0);
	pthread_mutex_unlock(&c->rt->tlock);
}

static int receive_one(void *ctx, const char *source, const struct starling_target_set *set)
{
	struct starling_component *c = ctx;
	int64_t t0 = mono_ns();
	int ret;

	CB_RUN(c, "receive_targets", ret = c->type->receive_targets(c->inst, source, set));

	stat_add(c, CB_RECEIVE_TARGETS, t0, ret);
	if (ret < 0)
		log_msg(STARLING_LOG_WARN, c->id,
			"receive_targets from %s (%zu targets) failed: %s", source, set->n_targets,
			strerror(-ret));
	return ret;
}

/* The internal timer's callback: c->cb_lock held, c running. */
static void deliver_pending(void *arg)
{
	struct starling_component *c = arg;

	targets_rx_run(c->trx, receive_one, c);
}

int api_forward_targets(starling_component *c, const struct starling_target_set *set)
{
	int ret;

	if (!c)
		return -EINVAL;
	ret = targets_publish(c->rt->targets, c->id, set);
	if (ret == -EINVAL)
		log_msg(STARLING_LOG_ERROR, c->id,
			"forward_targets: refused a set with unsorted, repeated or NULL labels");
	return ret;
}

int runtime_targets_init(struct runtime *rt)
{
	rt->targets = targets_hub_new();
	return rt->targets ? 0 : -ENOMEM;
}

void runtime_targets_release(struct runtime *rt)
{
	targets_hub_free(rt->targets);
	rt->targets = NULL;
}

int runtime_targets_inst_new(struct starling_component *c)
{
	if (!receives_targets(c))
		return 0;
	c->trx = targets_rx_new(c->rt->targets, c->id, kick, c);
	return c->trx ? 0 : -ENOMEM;
}

void runtime_targets_inst_free(struct starling_component *c)
{
	targets_rx_free(c->trx);
	c->trx = NULL;
}

/* c was just started (c->cb_lock held): hand it the latest set of each
 * source now, and from now on through its delivery timer. */
void runtime_targets_started(struct starling_component *c)
{
	struct starling_timer *t;

	if (!c->trx)
		return;
	t = timer_new(c, 0, 0, deliver_pending, c, true, false);
	if (t) {
		t->own_stats = true;
		pthread_mutex_lock(&c->rt->tlock);
		c->targets_timer = t;
		pthread_mutex_unlock(&c->rt->tlock);
	} else {
		log_msg(STARLING_LOG_ERROR, c->id, "out of memory: target sets not delivered");
	}
	targets_rx_restart(c->trx);
	targets_rx_run(c->trx, receive_one, c);
}

/* A producer removed by a reload (already stopped). */
void runtime_targets_removed(struct starling_component *c)
{
	targets_forget(c->rt->targets, c->id);
}

/* Every receiver's sources from doc (graph write lock held): the producers
 * its STARLING_CFG_TARGETS lists name, in config order, then the components
 * that name it in their forward_to. */
void runtime_targets_rewire(struct runtime *rt, const struct cfg_doc *doc)
{
	const char **ids = calloc(doc->n_components ? doc->n_components : 1, sizeof(*ids));

	if (!ids) {
		log_error("out of memory wiring target sets");
		return;
	}
	for (size_t i = 0; i < rt->n_insts; i++) {
		struct starling_component *c = rt->insts[i];
		size_t self = doc->n_components, n = 0;

		if (!c->trx)
			continue;
		for (size_t j = 0; j < doc->n_components; j++)
			if (!strcmp(doc->components[j].id, c->id))
				self = j;
		if (self == doc->n_components)
			continue;
		for (size_t k = 0; k < doc->components[self].n_target_sources; k++)
			ids[n++] = doc->components[doc->components[self].target_sources[k]].id;
		for (size_t j = 0; j < doc->n_components; j++) {
			const struct cfg_component *p = &doc->components[j];

			for (size_t k = 0; k < p->n_forward; k++)
				if (p->forward[k] == self && n < doc->n_components)
					ids[n++] = p->id;
		}
		if (targets_rx_set_sources(c->trx, ids, n))
			log_msg(STARLING_LOG_ERROR, c->id,
				"out of memory: target sources not updated");
	}
	free(ids);
}

long runtime_targets_count(struct starling_component *c)
{
	return targets_count(c->rt->targets, c->id);
}
