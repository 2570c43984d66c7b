/*
 * Target-set bookkeeping (host/targets.c) on its own: validation and copy,
 * delivery of the latest set per source, coalescing, late receivers,
 * removal by reload (one empty set), sources that leave and come back.
 * The runtime's side (a host thread, serialised with callbacks, delivery
 * right after start) is in test_targets_runtime.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "targets.h"

static int kicks;
static char log_buf[4096];

static void kick(void *arg)
{
	(*(int *)arg)++;
}

/* Journal "source:n[:first address]" per delivery. */
static int recv_fn(void *ctx, const char *source, const struct starling_target_set *set)
{
	size_t len = strlen(log_buf);

	(void)ctx;
	snprintf(log_buf + len, sizeof(log_buf) - len, "%s:%zu%s%s ", source, set->n_targets,
		 set->n_targets ? ":" : "", set->n_targets ? set->targets[0].labels[0].value : "");
	return 0;
}

static void set_of(struct starling_target_set *set, struct starling_target *t,
		   struct starling_label *l, const char *const *addrs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		l[2 * i].name = "__address__";
		l[2 * i].value = addrs[i];
		l[2 * i + 1].name = "job";
		l[2 * i + 1].value = "j";
		t[i].labels = &l[2 * i];
		t[i].n_labels = 2;
	}
	set->targets = t;
	set->n_targets = n;
}

static int publish(struct targets_hub *h, const char *producer, const char *a, const char *b)
{
	const char *addrs[] = {a, b};
	struct starling_target t[2];
	struct starling_label l[4];
	struct starling_target_set set;

	set_of(&set, t, l, addrs, b ? 2 : (a ? 1 : 0));
	return targets_publish(h, producer, &set);
}

static const char *run(struct targets_rx *rx)
{
	log_buf[0] = '\0';
	targets_rx_run(rx, recv_fn, NULL);
	return log_buf;
}

static void test_validation_and_copy(void)
{
	struct targets_hub *h = targets_hub_new();
	struct starling_label unsorted[] = {{"job", "j"}, {"__address__", "a:1"}};
	struct starling_label dup[] = {{"a", "1"}, {"a", "2"}};
	struct starling_label nul[] = {{"a", NULL}};
	struct starling_label empty_name[] = {{"", "x"}};
	struct starling_target t = {unsorted, 2};
	struct starling_target_set set = {&t, 1};
	struct starling_label l[2];
	char addr[16] = "h:1";
	struct targets_rx *rx;
	const char *ids[] = {"d.x"};

	CU_ASSERT_EQUAL(targets_publish(h, "d.x", NULL), -EINVAL);
	CU_ASSERT_EQUAL(targets_publish(h, "d.x", &set), -EINVAL);
	t.labels = dup;
	CU_ASSERT_EQUAL(targets_publish(h, "d.x", &set), -EINVAL);
	t.labels = nul;
	t.n_labels = 1;
	CU_ASSERT_EQUAL(targets_publish(h, "d.x", &set), -EINVAL);
	t.labels = empty_name;
	CU_ASSERT_EQUAL(targets_publish(h, "d.x", &set), -EINVAL);
	set.targets = NULL;
	CU_ASSERT_EQUAL(targets_publish(h, "d.x", &set), -EINVAL);
	CU_ASSERT_EQUAL(targets_count(h, "d.x"), -1);

	/* the copy is the host's: the caller may reuse its buffers */
	l[0] = (struct starling_label){"__address__", addr};
	l[1] = (struct starling_label){"job", "j"};
	t.labels = l;
	t.n_labels = 2;
	set.targets = &t;
	CU_ASSERT_EQUAL(targets_publish(h, "d.x", &set), 0);
	strcpy(addr, "changed");
	rx = targets_rx_new(h, "s.y", kick, &kicks);
	CU_ASSERT_EQUAL(targets_rx_set_sources(rx, ids, 1), 0);
	CU_ASSERT_STRING_EQUAL(run(rx), "d.x:1:h:1 ");
	/* an empty set is a set */
	set.n_targets = 0;
	CU_ASSERT_EQUAL(targets_publish(h, "d.x", &set), 0);
	CU_ASSERT_EQUAL(targets_count(h, "d.x"), 0);
	CU_ASSERT_STRING_EQUAL(run(rx), "d.x:0 ");
	targets_rx_free(rx);
	targets_hub_free(h);
}

static void test_delivery_and_coalescing(void)
{
	struct targets_hub *h = targets_hub_new();
	struct targets_rx *rx = targets_rx_new(h, "s.y", kick, &kicks);
	struct targets_rx *other = targets_rx_new(h, "s.z", kick, &kicks);
	const char *ids[] = {"d.b", "d.a", "d.b"};
	const char *other_ids[] = {"d.c"};

	kicks = 0;
	CU_ASSERT_EQUAL(targets_rx_set_sources(rx, ids, 3), 0);
	CU_ASSERT_EQUAL(targets_rx_set_sources(other, other_ids, 1), 0);
	CU_ASSERT_EQUAL(kicks, 0); /* nothing published yet */
	CU_ASSERT_FALSE(targets_rx_pending(rx));
	CU_ASSERT_STRING_EQUAL(run(rx), "");

	CU_ASSERT_EQUAL(publish(h, "d.a", "a:1", NULL), 0);
	CU_ASSERT_EQUAL(kicks, 1); /* rx only: other does not list d.a */
	CU_ASSERT_TRUE(targets_rx_pending(rx));
	CU_ASSERT_FALSE(targets_rx_pending(other));
	/* three sets before the run: only the latest is handed over */
	CU_ASSERT_EQUAL(publish(h, "d.a", "a:2", NULL), 0);
	CU_ASSERT_EQUAL(publish(h, "d.a", "a:3", "a:4"), 0);
	CU_ASSERT_EQUAL(publish(h, "d.b", "b:1", NULL), 0);
	/* source order: as listed (d.b first), repeats dropped */
	CU_ASSERT_STRING_EQUAL(run(rx), "d.b:1:b:1 d.a:2:a:3 ");
	CU_ASSERT_STRING_EQUAL(run(rx), "");
	CU_ASSERT_FALSE(targets_rx_pending(rx));
	CU_ASSERT_EQUAL(targets_count(h, "d.a"), 2);
	targets_rx_free(other);
	targets_rx_free(rx);
	targets_hub_free(h);
}

/* A receiver that starts (or is re-created) later gets the latest set. */
static void test_late_receiver(void)
{
	struct targets_hub *h = targets_hub_new();
	struct targets_rx *rx;
	const char *ids[] = {"d.a"};

	CU_ASSERT_EQUAL(publish(h, "d.a", "a:1", NULL), 0);
	CU_ASSERT_EQUAL(publish(h, "d.a", "a:2", NULL), 0);
	rx = targets_rx_new(h, "s.y", kick, &kicks);
	kicks = 0;
	CU_ASSERT_EQUAL(targets_rx_set_sources(rx, ids, 1), 0);
	CU_ASSERT_EQUAL(kicks, 1);
	CU_ASSERT_STRING_EQUAL(run(rx), "d.a:1:a:2 ");
	/* re-created: handed the latest again */
	targets_rx_restart(rx);
	CU_ASSERT_TRUE(targets_rx_pending(rx));
	CU_ASSERT_STRING_EQUAL(run(rx), "d.a:1:a:2 ");
	targets_rx_free(rx);
	targets_hub_free(h);
}

/* A producer removed by a reload: its receivers get one empty set. */
static void test_removal(void)
{
	struct targets_hub *h = targets_hub_new();
	struct targets_rx *rx = targets_rx_new(h, "s.y", kick, &kicks);
	const char *both[] = {"d.a", "d.b"}, *only_b[] = {"d.b"};

	CU_ASSERT_EQUAL(targets_rx_set_sources(rx, both, 2), 0);
	CU_ASSERT_EQUAL(publish(h, "d.a", "a:1", NULL), 0);
	CU_ASSERT_EQUAL(publish(h, "d.b", "b:1", NULL), 0);
	CU_ASSERT_STRING_EQUAL(run(rx), "d.a:1:a:1 d.b:1:b:1 ");

	/* the runtime's order on reload: forget the removed producer, then
	 * rewire the receivers */
	kicks = 0;
	targets_forget(h, "d.a");
	CU_ASSERT_EQUAL(kicks, 1);
	CU_ASSERT_EQUAL(targets_rx_set_sources(rx, only_b, 1), 0);
	CU_ASSERT_EQUAL(targets_count(h, "d.a"), -1);
	CU_ASSERT_STRING_EQUAL(run(rx), "d.a:0 ");
	CU_ASSERT_STRING_EQUAL(run(rx), "");
	/* later sets of d.b still arrive; d.a is no longer a source */
	CU_ASSERT_EQUAL(publish(h, "d.a", "a:9", NULL), 0);
	CU_ASSERT_FALSE(targets_rx_pending(rx));
	CU_ASSERT_EQUAL(publish(h, "d.b", "b:2", NULL), 0);
	CU_ASSERT_STRING_EQUAL(run(rx), "d.b:1:b:2 ");

	/* a source dropped from the receiver's own list: one empty set too */
	CU_ASSERT_EQUAL(targets_rx_set_sources(rx, NULL, 0), 0);
	CU_ASSERT_STRING_EQUAL(run(rx), "d.b:0 ");
	/* ...but not if it never handed anything over */
	CU_ASSERT_EQUAL(targets_rx_set_sources(rx, both, 2), 0);
	targets_forget(h, "d.a");
	CU_ASSERT_STRING_EQUAL(run(rx), "d.b:1:b:2 ");
	CU_ASSERT_EQUAL(targets_rx_set_sources(rx, only_b, 1), 0);
	CU_ASSERT_STRING_EQUAL(run(rx), "");
	targets_rx_free(rx);
	targets_hub_free(h);
}

/* Removed and re-added (same id, e.g. its type changed) before the run:
 * the empty set goes out first, then the new producer's set. */
static void test_leave_and_return(void)
{
	struct targets_hub *h = targets_hub_new();
	struct targets_rx *rx = targets_rx_new(h, "s.y", kick, &kicks);
	const char *a[] = {"d.a"};

	CU_ASSERT_EQUAL(targets_rx_set_sources(rx, a, 1), 0);
	CU_ASSERT_EQUAL(publish(h, "d.a", "a:1", NULL), 0);
	CU_ASSERT_STRING_EQUAL(run(rx), "d.a:1:a:1 ");
	targets_forget(h, "d.a");
	CU_ASSERT_EQUAL(targets_rx_set_sources(rx, a, 1), 0);
	CU_ASSERT_EQUAL(publish(h, "d.a", "a:2", NULL), 0);
	CU_ASSERT_STRING_EQUAL(run(rx), "d.a:0 d.a:1:a:2 ");

	/* dropped from the list and back before the empty set went out,
	 * with the producer's set unchanged: nothing to hand over */
	CU_ASSERT_EQUAL(targets_rx_set_sources(rx, NULL, 0), 0);
	CU_ASSERT_EQUAL(targets_rx_set_sources(rx, a, 1), 0);
	CU_ASSERT_STRING_EQUAL(run(rx), "");
	/* a restart drops pending empty sets of departed sources */
	CU_ASSERT_EQUAL(targets_rx_set_sources(rx, NULL, 0), 0);
	targets_rx_restart(rx);
	CU_ASSERT_STRING_EQUAL(run(rx), "");
	targets_rx_free(rx);
	targets_hub_free(h);
}

int main(void)
{
	CU_pSuite s;
	unsigned fails;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	s = CU_add_suite("targets", NULL, NULL);
	CU_add_test(s, "validation and copy", test_validation_and_copy);
	CU_add_test(s, "delivery in source order, coalescing", test_delivery_and_coalescing);
	CU_add_test(s, "late receiver gets the latest set", test_late_receiver);
	CU_add_test(s, "removed producer: one empty set", test_removal);
	CU_add_test(s, "source leaves and comes back", test_leave_and_return);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = CU_get_number_of_failures();
	CU_cleanup_registry();
	return fails ? 1 : 0;
}
