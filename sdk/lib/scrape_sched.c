/*
 * Scrape slot schedule and target reporting (see starling/scrape_sched.h).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <starling/scrape_sched.h>

int64_t starling_scrape_phase(uint64_t key, int64_t interval_ms)
{
	return interval_ms > 0 ? (int64_t)(key % (uint64_t)interval_ms) : 0;
}

int64_t starling_scrape_next_slot(int64_t now_ms, int64_t interval_ms, int64_t phase_ms)
{
	int64_t k;

	if (interval_ms <= 0)
		return now_ms;
	/* floor division that also holds for now < phase */
	k = (now_ms - phase_ms) / interval_ms;
	if (k * interval_ms + phase_ms > now_ms)
		k--;
	if (k * interval_ms + phase_ms < now_ms)
		k++;
	return k * interval_ms + phase_ms;
}

int64_t starling_scrape_slot_done(int64_t due_ms, int64_t now_ms, int64_t interval_ms,
				  int64_t phase_ms)
{
	int64_t next = due_ms + interval_ms;

	if (next <= now_ms) /* fell behind: skip the slots we missed */
		next = starling_scrape_next_slot(now_ms + 1, interval_ms, phase_ms);
	return next;
}

int64_t starling_scrape_clock_back(int64_t earliest_due_ms, int64_t now_ms, int64_t interval_ms)
{
	return earliest_due_ms > now_ms + interval_ms ? earliest_due_ms - now_ms - interval_ms : 0;
}

bool starling_scrape_owns(const struct starling_host_api *api, starling_component *self,
			  bool clustering, uint64_t key)
{
	if (!clustering)
		return true;
	return api->cluster_owns(self, key, 1);
}

bool starling_scrape_owns_at(const struct starling_host_api *api, starling_component *self,
			     bool clustering, unsigned replicas, uint64_t key, int64_t at_ms)
{
	if (!clustering)
		return true;
	if (replicas == 0)
		replicas = 1;
	if (STARLING_API_HAS(api, cluster_owns_at))
		return api->cluster_owns_at(self, key, replicas, at_ms);
	return api->cluster_owns(self, key, replicas);
}

bool starling_scrape_view_changed(const struct starling_host_api *api, starling_component *self,
				  bool clustering, uint64_t *seen_epoch)
{
	uint64_t e;

	if (!clustering || !api->cluster_epoch)
		return false;
	e = api->cluster_epoch(self);
	if (e == *seen_epoch)
		return false;
	*seen_epoch = e;
	return true;
}

bool starling_scrape_catch_up(const struct starling_host_api *api, starling_component *self,
			      bool clustering, unsigned replicas, uint64_t key, int64_t *skipped,
			      int64_t interval_ms, int64_t now_ms)
{
	if (*skipped == STARLING_SCRAPE_NO_SLOT)
		return false;
	/* a slot more than half over is left to the next one, at most half an
	 * interval away: no two scrapes of a target closer than that */
	if (!clustering || !STARLING_API_HAS(api, cluster_owns_at) || *skipped > now_ms ||
	    now_ms - *skipped > interval_ms / 2) {
		*skipped = STARLING_SCRAPE_NO_SLOT; /* (nearly) over, or no slot-time answers */
		return false;
	}
	if (!starling_scrape_owns_at(api, self, clustering, replicas, key, *skipped))
		return false;
	*skipped = STARLING_SCRAPE_NO_SLOT;
	return true;
}

int starling_scrape_replicas(const struct starling_host_api *api, const starling_config *cfg,
			     unsigned *out, char *err, size_t errlen)
{
	int64_t v = 1;

	*out = 1;
	if (api->config_int(cfg, "clustering.replicas", &v) == 0 &&
	    (v < 1 || v > STARLING_SCRAPE_MAX_REPLICAS)) {
		snprintf(err, errlen, "clustering.replicas: %lld is out of range (1..%d)",
			 (long long)v, STARLING_SCRAPE_MAX_REPLICAS);
		return -EINVAL;
	}
	*out = (unsigned)v;
	return 0;
}

void starling_scrape_emit_target(const struct starling_host_api *api, starling_component *self,
				 bool clustering, struct starling_target_info *ti,
				 starling_target_emit_fn emit, void *ctx)
{
	starling_scrape_emit_target_n(api, self, clustering, 1, ti, emit, ctx);
}

void starling_scrape_emit_target_n(const struct starling_host_api *api, starling_component *self,
				   bool clustering, unsigned replicas,
				   struct starling_target_info *ti, starling_target_emit_fn emit,
				   void *ctx)
{
	struct starling_node_name owner;
	bool here =
	    !clustering ||
	    (STARLING_API_HAS(api, cluster_owns_at)
		 ? api->cluster_owns_at(self, ti->key, replicas ? replicas : 1, api->now_ms())
		 : api->cluster_owns(self, ti->key, replicas ? replicas : 1));

	ti->owned_here = here;
	ti->owner = NULL;
	if (clustering && api->cluster_owners(self, ti->key, &owner, 1) == 1) {
		ti->owner = owner.name;
	} else if (here) {
		api->cluster_self(self, &owner);
		ti->owner = owner.name;
	}
	if (!here)
		ti->health = STARLING_TARGET_UNKNOWN;
	emit(ctx, ti);
}

void starling_scrape_wait(struct starling_http_client *http, int64_t wait_ms)
{
	if (wait_ms > STARLING_SCRAPE_MAX_WAIT_MS)
		wait_ms = STARLING_SCRAPE_MAX_WAIT_MS;
	if (wait_ms < 0)
		wait_ms = 0;
	if (starling_http_run(http, (int)wait_ms) < 0) {
		/* the client cannot poll: do not spin, retry shortly */
		int64_t ms = wait_ms ? wait_ms : 10;
		struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

		nanosleep(&ts, NULL);
	}
}
