/* SDK scrape slot schedule and ownership/list_targets helpers. */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <starling/scrape_sched.h>

#define IV 15000

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_phase(void)
{
	CU_ASSERT_EQUAL(starling_scrape_phase(0, IV), 0);
	CU_ASSERT_EQUAL(starling_scrape_phase(15001, IV), 1);
	CU_ASSERT_EQUAL(starling_scrape_phase(UINT64_MAX, IV), (int64_t)(UINT64_MAX % IV));
	CU_ASSERT_EQUAL(starling_scrape_phase(12345, 0), 0);
	CU_ASSERT_EQUAL(starling_scrape_phase(12345, -5), 0);
}

static void test_next_slot(void)
{
	CU_ASSERT_EQUAL(starling_scrape_next_slot(1000, IV, 700), 15700);
	CU_ASSERT_EQUAL(starling_scrape_next_slot(15700, IV, 700), 15700);
	CU_ASSERT_EQUAL(starling_scrape_next_slot(15701, IV, 700), 30700);
	CU_ASSERT_EQUAL(starling_scrape_next_slot(3, IV, 5), 5);
	/* before the epoch and before the phase */
	CU_ASSERT_EQUAL(starling_scrape_next_slot(-1, IV, 5), 5);
	CU_ASSERT_EQUAL(starling_scrape_next_slot(-15000, IV, 5), -14995);
	CU_ASSERT_EQUAL(starling_scrape_next_slot(-14996, IV, 5), -14995);
	/* no interval: now */
	CU_ASSERT_EQUAL(starling_scrape_next_slot(1234, 0, 5), 1234);
}

/* Two nodes that start at unrelated times put a target on the same slots:
 * every slot either computes is k * interval + phase. */
static void test_node_independent(void)
{
	const uint64_t keys[] = {0, 1, 14999, 15000, 0x9e3779b97f4a7c15ull, UINT64_MAX};
	const int64_t starts[] = {1700000000000, 1700000000001, 1700000007321, 1700000014999};

	for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
		int64_t phase = starling_scrape_phase(keys[k], IV);
		int64_t ref[8];

		for (size_t s = 0; s < sizeof(starts) / sizeof(starts[0]); s++) {
			int64_t due = starling_scrape_next_slot(starts[s], IV, phase);
			int64_t now = starts[s];

			CU_ASSERT(due >= starts[s] && due < starts[s] + IV);
			CU_ASSERT_EQUAL((due - phase) % IV, 0);
			/* run forward to a common time, then record 8 slots */
			while (due < 1700000030000) {
				now = due;
				due = starling_scrape_slot_done(due, now, IV, phase);
			}
			for (int i = 0; i < 8; i++) {
				if (s == 0)
					ref[i] = due;
				else
					CU_ASSERT_EQUAL(due, ref[i]);
				now = due + 3; /* fired a little late */
				due = starling_scrape_slot_done(due, now, IV, phase);
			}
		}
	}
}

static void test_slot_done(void)
{
	/* on time, or late by less than an interval: the next slot */
	CU_ASSERT_EQUAL(starling_scrape_slot_done(15700, 15700, IV, 700), 30700);
	CU_ASSERT_EQUAL(starling_scrape_slot_done(15700, 30699, IV, 700), 30700);
	/* fell behind by a whole slot or more: the missed ones are skipped */
	CU_ASSERT_EQUAL(starling_scrape_slot_done(15700, 30700, IV, 700), 45700);
	CU_ASSERT_EQUAL(starling_scrape_slot_done(15700, 100000, IV, 700), 105700);
}

static void test_clock_back(void)
{
	int64_t due = starling_scrape_next_slot(1000000, IV, 700); /* 1005700 */

	/* running forward, the earliest slot is at most an interval ahead */
	CU_ASSERT_EQUAL(starling_scrape_clock_back(due, 1000000, IV), 0);
	CU_ASSERT_EQUAL(starling_scrape_clock_back(due, due - IV, IV), 0);
	CU_ASSERT_EQUAL(starling_scrape_clock_back(due, due, IV), 0);
	/* the clock jumped back an hour */
	CU_ASSERT_EQUAL(starling_scrape_clock_back(due, 1000000 - 3600000, IV),
			due - (1000000 - 3600000) - IV);
	CU_ASSERT(starling_scrape_clock_back(due, due - IV - 1, IV) == 1);
	/* re-placed from the new time, the slot is on the same grid and due
	 * within an interval again */
	{
		int64_t now = 1000000 - 3600000;
		int64_t d2 = starling_scrape_next_slot(now, IV, 700);

		CU_ASSERT(d2 >= now && d2 < now + IV);
		CU_ASSERT_EQUAL((d2 - 700) % IV, 0);
		CU_ASSERT_EQUAL(starling_scrape_clock_back(d2, now, IV), 0);
	}
}

/* Simulated scrape loop over many targets: each fires once per interval,
 * at its own slot, in phase order, whatever the start time. */
static void test_due_order(void)
{
	enum { N = 64 };
	int64_t phase[N], due[N], fired_at[N];
	int order[N], n_fired = 0;
	int64_t start = 1700000004321, now;

	for (int i = 0; i < N; i++) {
		uint64_t key = (uint64_t)i * 0x9e3779b97f4a7c15ull + 17;

		phase[i] = starling_scrape_phase(key, IV);
		due[i] = starling_scrape_next_slot(start, IV, phase[i]);
		fired_at[i] = -1;
	}
	for (now = start; now < start + IV; now++) {
		for (int i = 0; i < N; i++) {
			if (due[i] > now)
				continue;
			CU_ASSERT_EQUAL(due[i], now);
			CU_ASSERT_EQUAL(fired_at[i], -1);
			fired_at[i] = now;
			order[n_fired++] = i;
			due[i] = starling_scrape_slot_done(due[i], now, IV, phase[i]);
			CU_ASSERT_EQUAL(due[i], now + IV);
		}
	}
	CU_ASSERT_EQUAL(n_fired, N);
	for (int j = 1; j < n_fired; j++)
		CU_ASSERT(fired_at[order[j - 1]] <= fired_at[order[j]]);
	for (int i = 0; i < N; i++)
		CU_ASSERT_EQUAL((fired_at[i] - phase[i]) % IV, 0);
}

/* A fake cluster: this node ("node-a") owns the odd keys, "node-b" the even. */
static int owns_calls;

static bool fake_owns(starling_component *self, uint64_t key, unsigned replicas)
{
	(void)self;
	CU_ASSERT_EQUAL(replicas, 1);
	owns_calls++;
	return key & 1;
}

static size_t fake_owners(starling_component *self, uint64_t key, struct starling_node_name *out,
			  size_t n)
{
	(void)self;
	if (n < 1 || key == 1000) /* 1000: the cluster does not know yet */
		return 0;
	snprintf(out->name, sizeof(out->name), "%s", key & 1 ? "node-a" : "node-b");
	return 1;
}

static void fake_self(starling_component *self, struct starling_node_name *out)
{
	(void)self;
	snprintf(out->name, sizeof(out->name), "node-a");
}

static struct starling_host_api fake_api = {
    .cluster_owns = fake_owns,
    .cluster_owners = fake_owners,
    .cluster_self = fake_self,
};

static void test_ownership_filter(void)
{
	owns_calls = 0;
	/* without clustering every target is ours and the cluster is not asked */
	CU_ASSERT_TRUE(starling_scrape_owns(&fake_api, NULL, false, 2));
	CU_ASSERT_TRUE(starling_scrape_owns(&fake_api, NULL, false, 3));
	CU_ASSERT_EQUAL(owns_calls, 0);
	CU_ASSERT_FALSE(starling_scrape_owns(&fake_api, NULL, true, 2));
	CU_ASSERT_TRUE(starling_scrape_owns(&fake_api, NULL, true, 3));
	CU_ASSERT_EQUAL(owns_calls, 2);
}

/* A 1.1 host: ownership is asked for the slot's own time, with replicas. */
static int64_t asked_at;
static unsigned asked_replicas;

static bool fake_owns_at(starling_component *self, uint64_t key, unsigned replicas, int64_t at)
{
	(void)self;
	asked_at = at;
	asked_replicas = replicas;
	return at >= 5000 && (key & 1); /* node-a takes the odd keys from 5000 on */
}

static void test_ownership_at_slot_time(void)
{
	struct starling_host_api api = fake_api;

	api.struct_size = sizeof(api);
	api.cluster_owns_at = fake_owns_at;
	CU_ASSERT_TRUE(starling_scrape_owns_at(&api, NULL, false, 2, 3, 4999));
	CU_ASSERT_EQUAL(asked_at, 0); /* not clustered: not asked */
	CU_ASSERT_FALSE(starling_scrape_owns_at(&api, NULL, true, 0, 3, 4999));
	CU_ASSERT_EQUAL(asked_at, 4999);
	CU_ASSERT_EQUAL(asked_replicas, 1); /* 0 counts as 1 */
	CU_ASSERT_TRUE(starling_scrape_owns_at(&api, NULL, true, 2, 3, 5000));
	CU_ASSERT_EQUAL(asked_replicas, 2);
	/* a 1.0 host (no cluster_owns_at): the answer for now */
	owns_calls = 0;
	CU_ASSERT_TRUE(starling_scrape_owns_at(&fake_api, NULL, true, 1, 3, 1));
	CU_ASSERT_EQUAL(owns_calls, 1);
}

/* Catch-up after an owner's death (issue 13, kill -9). fake_owns_at models
 * the cluster after the owner of the odd keys was declared dead, this node
 * having first suspected it at 5000: the cluster cut its span there, so
 * node-a owns the odd keys' slots from 5000 on, retroactively. */
static uint64_t fake_epoch_v = 1;

static uint64_t fake_epoch(starling_component *self)
{
	(void)self;
	return fake_epoch_v;
}

static void test_catch_up(void)
{
	struct starling_host_api api = fake_api;
	uint64_t seen = 0;
	int64_t skipped;

	api.struct_size = sizeof(api);
	api.cluster_owns_at = fake_owns_at;
	api.cluster_epoch = fake_epoch;
	/* a view change is seen once */
	CU_ASSERT_TRUE(starling_scrape_view_changed(&api, NULL, true, &seen));
	CU_ASSERT_EQUAL(seen, 1);
	CU_ASSERT_FALSE(starling_scrape_view_changed(&api, NULL, true, &seen));
	fake_epoch_v = 2;
	CU_ASSERT_FALSE(starling_scrape_view_changed(&api, NULL, false, &seen));
	CU_ASSERT_TRUE(starling_scrape_view_changed(&api, NULL, true, &seen));

	/* the current slot started at 5200, after the suspicion: the dead
	 * owner scraped nothing then; ours now, scraped at once as that slot */
	skipped = 5200;
	CU_ASSERT_TRUE(starling_scrape_catch_up(&api, NULL, true, 1, 3, &skipped, 2000, 6000));
	CU_ASSERT_EQUAL(asked_at, 5200);
	CU_ASSERT_EQUAL(skipped, STARLING_SCRAPE_NO_SLOT);
	/* ...once */
	CU_ASSERT_FALSE(starling_scrape_catch_up(&api, NULL, true, 1, 3, &skipped, 2000, 6001));
	/* it started at 4800, before the suspicion: the dead owner may have
	 * scraped it, so it stays skipped (the next slot, 6800, is ours) */
	skipped = 4800;
	CU_ASSERT_FALSE(starling_scrape_catch_up(&api, NULL, true, 1, 3, &skipped, 2000, 5500));
	CU_ASSERT_EQUAL(skipped, 4800); /* still current: asked again at the next change */
	CU_ASSERT_FALSE(starling_scrape_catch_up(&api, NULL, true, 1, 3, &skipped, 2000, 6000));
	CU_ASSERT_EQUAL(skipped, STARLING_SCRAPE_NO_SLOT); /* past its half */
	/* up to half an interval in, not later: the next slot is near (no two
	 * scrapes closer than half an interval), nor once it is over */
	skipped = 5200;
	CU_ASSERT_TRUE(starling_scrape_catch_up(&api, NULL, true, 1, 3, &skipped, 2000, 6200));
	skipped = 5200;
	CU_ASSERT_FALSE(starling_scrape_catch_up(&api, NULL, true, 1, 3, &skipped, 2000, 6201));
	CU_ASSERT_EQUAL(skipped, STARLING_SCRAPE_NO_SLOT);
	skipped = 5200;
	CU_ASSERT_FALSE(starling_scrape_catch_up(&api, NULL, true, 1, 3, &skipped, 2000, 7200));
	CU_ASSERT_EQUAL(skipped, STARLING_SCRAPE_NO_SLOT);
	/* another node's key: not ours */
	skipped = 5200;
	CU_ASSERT_FALSE(starling_scrape_catch_up(&api, NULL, true, 1, 2, &skipped, 2000, 6000));
	/* nothing skipped; no clustering; a 1.0 host (no slot-time answers) */
	skipped = STARLING_SCRAPE_NO_SLOT;
	CU_ASSERT_FALSE(starling_scrape_catch_up(&api, NULL, true, 1, 3, &skipped, 2000, 6000));
	skipped = 5200;
	CU_ASSERT_FALSE(starling_scrape_catch_up(&api, NULL, false, 1, 3, &skipped, 2000, 6000));
	skipped = 5200;
	CU_ASSERT_FALSE(
	    starling_scrape_catch_up(&fake_api, NULL, true, 1, 3, &skipped, 2000, 6000));
	CU_ASSERT_EQUAL(skipped, STARLING_SCRAPE_NO_SLOT);
}

struct seen {
	int n;
	char owner[STARLING_NODE_NAME_MAX];
	bool has_owner, here;
	enum starling_target_health health;
	uint64_t key;
	size_t n_labels;
	const char *err;
};

static void emit(void *ctx, const struct starling_target_info *ti)
{
	struct seen *s = ctx;

	s->n++;
	s->has_owner = ti->owner != NULL;
	if (ti->owner)
		snprintf(s->owner, sizeof(s->owner), "%s", ti->owner);
	s->here = ti->owned_here;
	s->health = ti->health;
	s->key = ti->key;
	s->n_labels = ti->n_labels;
	s->err = ti->last_error;
}

static void emit_one(bool clustering, uint64_t key, struct seen *s)
{
	static const struct starling_label l[] = {{"instance", "a:1"}, {"job", "j"}};
	struct starling_target_info ti = {
	    .labels = l,
	    .n_labels = 2,
	    .key = key,
	    .owner = "garbage",
	    .last_scrape_ms = 5,
	    .health = STARLING_TARGET_DOWN,
	    .last_error = "refused",
	};

	memset(s, 0, sizeof(*s));
	starling_scrape_emit_target(&fake_api, NULL, clustering, &ti, emit, s);
}

static void test_emit_target(void)
{
	struct seen s;

	/* not clustered: ours, owner is this node, status kept */
	emit_one(false, 2, &s);
	CU_ASSERT_EQUAL(s.n, 1);
	CU_ASSERT_TRUE(s.here);
	CU_ASSERT_STRING_EQUAL(s.owner, "node-a");
	CU_ASSERT_EQUAL(s.health, STARLING_TARGET_DOWN);
	CU_ASSERT_EQUAL(s.key, 2);
	CU_ASSERT_EQUAL(s.n_labels, 2);
	CU_ASSERT_STRING_EQUAL(s.err, "refused");
	/* clustered, owned elsewhere: that owner, health unknown here */
	emit_one(true, 2, &s);
	CU_ASSERT_FALSE(s.here);
	CU_ASSERT_TRUE(s.has_owner);
	CU_ASSERT_STRING_EQUAL(s.owner, "node-b");
	CU_ASSERT_EQUAL(s.health, STARLING_TARGET_UNKNOWN);
	/* clustered, owned here */
	emit_one(true, 3, &s);
	CU_ASSERT_TRUE(s.here);
	CU_ASSERT_STRING_EQUAL(s.owner, "node-a");
	CU_ASSERT_EQUAL(s.health, STARLING_TARGET_DOWN);
	/* clustered, no owner known and not ours: no owner at all */
	emit_one(true, 1000, &s);
	CU_ASSERT_FALSE(s.here);
	CU_ASSERT_FALSE(s.has_owner);
	CU_ASSERT_EQUAL(s.health, STARLING_TARGET_UNKNOWN);
}

/* The loop never sleeps longer than STARLING_SCRAPE_MAX_WAIT_MS, and a
 * negative wait does not block. */
static void test_wait_clamped(void)
{
	struct starling_http_client *c = NULL;
	int64_t t0;

	CU_ASSERT_EQUAL_FATAL(starling_http_client_new(NULL, &c), 0);
	t0 = mono_ms();
	starling_scrape_wait(c, 60000);
	CU_ASSERT(mono_ms() - t0 < 3 * STARLING_SCRAPE_MAX_WAIT_MS);
	t0 = mono_ms();
	starling_scrape_wait(c, -5000);
	CU_ASSERT(mono_ms() - t0 < 500);
	starling_http_client_free(c);
}

int main(void)
{
	CU_pSuite s;
	unsigned fails;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("sdk_scrape_sched", NULL, NULL);
	CU_add_test(s, "phase", test_phase);
	CU_add_test(s, "next_slot", test_next_slot);
	CU_add_test(s, "node_independent", test_node_independent);
	CU_add_test(s, "slot_done", test_slot_done);
	CU_add_test(s, "clock_back", test_clock_back);
	CU_add_test(s, "due_order", test_due_order);
	CU_add_test(s, "ownership_filter", test_ownership_filter);
	CU_add_test(s, "ownership_at_slot_time", test_ownership_at_slot_time);
	CU_add_test(s, "catch_up", test_catch_up);
	CU_add_test(s, "emit_target", test_emit_target);
	CU_add_test(s, "wait_clamped", test_wait_clamped);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = CU_get_number_of_failures();
	if (CU_get_number_of_suites_failed())
		fails++;
	CU_cleanup_registry();
	return fails ? 1 : 0;
}
