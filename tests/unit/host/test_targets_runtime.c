/*
 * Target sets through the real runtime (host/runtime_targets.c): producers
 * publish with forward_targets, receivers named by a STARLING_CFG_TARGETS
 * list or by a producer's forward_to get the latest set asynchronously on a
 * host thread, serialised with their other callbacks, coalesced; a receiver
 * started (or re-created) later gets the latest set right after start(); a
 * producer removed by a reload delivers one empty set. Waits are bounded
 * polls on conditions, never fixed sleeps.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <CUnit/Basic.h>

#include "rt_fixture.h"
#include "runtime.h"

/* ---- fake types ------------------------------------------------------------ */

struct fake {
	const struct starling_host_api *api;
	starling_component *self;
	const char *id;
	starling_timer *timer;
	int in_cb; /* callbacks of this instance running now */
};

#define MAX_FAKES 16
static pthread_mutex_t flock = PTHREAD_MUTEX_INITIALIZER;
static struct fake *fakes[MAX_FAKES];

static struct fake *find_fake(const char *id)
{
	struct fake *f = NULL;

	pthread_mutex_lock(&flock);
	for (int i = 0; i < MAX_FAKES && !f; i++)
		if (fakes[i] && !strcmp(fakes[i]->id, id))
			f = fakes[i];
	pthread_mutex_unlock(&flock);
	return f;
}

static int fake_create(const struct starling_host_api *api, starling_component *self,
		       const starling_config *cfg, void **out)
{
	struct fake *f = calloc(1, sizeof(*f));

	f->api = api;
	f->self = self;
	f->id = api->component_id(self);
	pthread_mutex_lock(&flock);
	for (int i = 0; i < MAX_FAKES; i++)
		if (!fakes[i]) {
			fakes[i] = f;
			break;
		}
	pthread_mutex_unlock(&flock);
	note("create:%s", f->id);
	*out = f;
	return 0;
}

static void fake_destroy(void *inst)
{
	struct fake *f = inst;

	pthread_mutex_lock(&flock);
	for (int i = 0; i < MAX_FAKES; i++)
		if (fakes[i] == f)
			fakes[i] = NULL;
	pthread_mutex_unlock(&flock);
	note("destroy:%s", f->id);
	free(f);
}

/* Callbacks of one receiver must never overlap. */
static int overlaps;
static pthread_t main_thread;
static int on_main_thread;

static void enter(struct fake *f)
{
	if (__atomic_add_fetch(&f->in_cb, 1, __ATOMIC_SEQ_CST) != 1)
		__atomic_add_fetch(&overlaps, 1, __ATOMIC_SEQ_CST);
}

static void leave(struct fake *f)
{
	__atomic_sub_fetch(&f->in_cb, 1, __ATOMIC_SEQ_CST);
}

static void scr_tick(void *arg)
{
	struct timespec ts = {0, 200000};

	enter(arg);
	nanosleep(&ts, NULL); /* widen the window an overlap would need */
	leave(arg);
}

static int scr_start(void *inst)
{
	struct fake *f = inst;

	note("start:%s", f->id);
	f->timer = f->api->timer_start(f->self, 0, 1, scr_tick, f);
	return 0;
}

static int fake_start(void *inst)
{
	struct fake *f = inst;

	note("start:%s", f->id);
	return 0;
}

static int fake_stop(void *inst)
{
	struct fake *f = inst;

	note("stop:%s", f->id);
	return 0;
}

/* A gate that holds receive_targets of the receiver while closed. */
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static bool gate_closed, gate_waiting;

static int scr_receive_targets(void *inst, const char *source,
			       const struct starling_target_set *set)
{
	struct fake *f = inst;

	enter(f);
	if (pthread_equal(pthread_self(), main_thread))
		on_main_thread++;
	pthread_mutex_lock(&gate_lock);
	if (gate_closed) {
		gate_waiting = true;
		pthread_cond_broadcast(&gate_cond);
		while (gate_closed)
			pthread_cond_wait(&gate_cond, &gate_lock);
		gate_waiting = false;
	}
	pthread_mutex_unlock(&gate_lock);
	note("rt:%s<%s:%zu:%s", f->id, source, set->n_targets,
	     set->n_targets ? set->targets[0].labels[0].value : "-");
	leave(f);
	return 0;
}

static const struct starling_config_key disc_schema[] = {
    {.name = "forward_to", .type = STARLING_CFG_REF_LIST, .ref_accepts = STARLING_ACCEPTS_TARGETS},
    {0},
};

static const struct starling_config_key scr_schema[] = {
    {.name = "targets", .type = STARLING_CFG_TARGETS, .required = true},
    {0},
};

static const struct starling_component_type disc_type = {
    .struct_size = sizeof(struct starling_component_type),
    .name = "t.disc",
    .produces = STARLING_ACCEPTS_TARGETS,
    .schema = disc_schema,
    .create = fake_create,
    .start = fake_start,
    .stop = fake_stop,
    .destroy = fake_destroy,
};

/* No update(): a changed config re-creates it. */
static const struct starling_component_type scr_type = {
    .struct_size = sizeof(struct starling_component_type),
    .name = "t.scr",
    .accepts = STARLING_ACCEPTS_TARGETS,
    .schema = scr_schema,
    .create = fake_create,
    .start = scr_start,
    .stop = fake_stop,
    .destroy = fake_destroy,
    .receive_targets = scr_receive_targets,
};

static const struct starling_component_type *const all_types[] = {&disc_type, &scr_type};
static const struct type_set types = {.types = all_types, .n = 2};

static struct cfg_doc *doc_from(const char *text)
{
	return rt_doc_from(text, &types);
}

/* Publish n targets "<prefix>:<i>" as producer id. */
static int publish(const char *id, const char *prefix, size_t n)
{
	struct fake *f = find_fake(id);
	struct starling_label l[8];
	struct starling_target t[8];
	char addr[8][32];
	struct starling_target_set set = {t, n};

	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	for (size_t i = 0; i < n && i < 8; i++) {
		snprintf(addr[i], sizeof(addr[i]), "%s:%zu", prefix, i);
		l[i].name = "__address__";
		l[i].value = addr[i];
		t[i].labels = &l[i];
		t[i].n_labels = 1;
	}
	return f->api->forward_targets(f->self, &set);
}

static char state_dir[] = "/tmp/starling-rtt-XXXXXX";

/* ---- tests ------------------------------------------------------------------ */

static void test_delivery_coalescing_removal(void)
{
	struct cluster *cl = rt_single_node();
	struct runtime *rt = NULL;
	struct cfg_doc *d1, *d2, *d3, *d4;
	struct starling_label bad_l[] = {{"job", "x"}, {"__address__", "a:1"}};
	struct starling_target bad_t = {bad_l, 2};
	struct starling_target_set bad = {&bad_t, 1};
	struct fake *f;
	char *m = NULL;
	size_t len = 0;
	FILE *mf;

	main_thread = pthread_self();
	CU_ASSERT_EQUAL_FATAL(runtime_create(&rt, cl, state_dir, 2), 0);
	journal_reset();
	d1 = doc_from("components = (\n"
		      " { type = \"t.disc\"; name = \"d\"; },\n"
		      " { type = \"t.disc\"; name = \"e\"; forward_to = [ \"t.scr.s\" ]; },\n"
		      " { type = \"t.scr\"; name = \"s\";\n"
		      "   targets = ( { *address__ = \"inline:1\"; }, \"t.disc.d\" ); }\n"
		      ");\n");
	CU_ASSERT_EQUAL_FATAL(runtime_apply(rt, d1), 0);

	/* Named in the targets list: delivered on a host thread. */
	CU_ASSERT_EQUAL(publish("t.disc.d", "a", 2), 0);
	CU_ASSERT_TRUE(journal_wait("rt:t.scr.s<t.disc.d:2:a:0"));
	/* In the producer's forward_to: delivered too. */
	CU_ASSERT_EQUAL(publish("t.disc.e", "e", 1), 0);
	CU_ASSERT_TRUE(journal_wait("rt:t.scr.s<t.disc.e:1:e:0"));
	CU_ASSERT_EQUAL(on_main_thread, 0);

	/* Coalescing: while the receiver is busy, three sets are published;
	 * only the latest is handed over afterwards. */
	pthread_mutex_lock(&gate_lock);
	gate_closed = true;
	pthread_mutex_unlock(&gate_lock);
	CU_ASSERT_EQUAL(publish("t.disc.d", "b", 1), 0);
	pthread_mutex_lock(&gate_lock);
	while (!gate_waiting)
		pthread_cond_wait(&gate_cond, &gate_lock);
	pthread_mutex_unlock(&gate_lock);
	CU_ASSERT_EQUAL(publish("t.disc.d", "c", 1), 0);
	CU_ASSERT_EQUAL(publish("t.disc.d", "d", 3), 0);
	CU_ASSERT_EQUAL(publish("t.disc.d", "e", 4), 0);
	pthread_mutex_lock(&gate_lock);
	gate_closed = false;
	pthread_cond_broadcast(&gate_cond);
	pthread_mutex_unlock(&gate_lock);
	CU_ASSERT_TRUE(journal_wait("rt:t.scr.s<t.disc.d:4:e:0"));
	CU_ASSERT_TRUE(journal_pos("rt:t.scr.s<t.disc.d:1:b:0") >= 0);
	CU_ASSERT_EQUAL(journal_pos("rt:t.scr.s<t.disc.d:1:c:0"), -1);
	CU_ASSERT_EQUAL(journal_pos("rt:t.scr.s<t.disc.d:3:d:0"), -1);

	/* A bad set is refused and changes nothing. */
	f = find_fake("t.disc.d");
	CU_ASSERT_EQUAL(f->api->forward_targets(f->self, &bad), -EINVAL);

	/* Re-created by a reload (scr has no update()): the latest sets are
	 * handed over right after start(), before apply returns. */
	journal_reset();
	d2 = doc_from("components = (\n"
		      " { type = \"t.disc\"; name = \"d\"; },\n"
		      " { type = \"t.disc\"; name = \"e\"; forward_to = [ \"t.scr.s\" ]; },\n"
		      " { type = \"t.scr\"; name = \"s\";\n"
		      "   targets = ( \"t.disc.d\", { *address__ = \"inline:2\"; } ); }\n"
		      ");\n");
	CU_ASSERT_EQUAL_FATAL(runtime_apply(rt, d2), 0);
	CU_ASSERT_TRUE(journal_pos("create:t.scr.s") >= 0);
	CU_ASSERT_TRUE(journal_pos("start:t.scr.s") < journal_pos("rt:t.scr.s<t.disc.d:4:e:0"));
	CU_ASSERT_TRUE(journal_pos("rt:t.scr.s<t.disc.d:4:e:0") <
		       journal_pos("rt:t.scr.s<t.disc.e:1:e:0"));

	/* A receiver added later, too. */
	journal_reset();
	d3 = doc_from("components = (\n"
		      " { type = \"t.disc\"; name = \"d\"; },\n"
		      " { type = \"t.disc\"; name = \"e\"; forward_to = [ \"t.scr.s\" ]; },\n"
		      " { type = \"t.scr\"; name = \"s\";\n"
		      "   targets = ( \"t.disc.d\", { *address__ = \"inline:2\"; } ); },\n"
		      " { type = \"t.scr\"; name = \"late\"; targets = ( \"t.disc.d\" ); }\n"
		      ");\n");
	CU_ASSERT_EQUAL_FATAL(runtime_apply(rt, d3), 0);
	CU_ASSERT_TRUE(journal_pos("start:t.scr.late") >= 0);
	CU_ASSERT_TRUE(journal_pos("start:t.scr.late") <
		       journal_pos("rt:t.scr.late<t.disc.d:4:e:0"));
	CU_ASSERT_EQUAL(journal_pos("create:t.scr.s"), -1);
	/* those two ran on the control thread (here, the test's) */
	on_main_thread = 0;

	/* Producer e removed: s gets one empty set from it, nothing else. */
	journal_reset();
	d4 = doc_from("components = (\n"
		      " { type = \"t.disc\"; name = \"d\"; },\n"
		      " { type = \"t.scr\"; name = \"s\";\n"
		      "   targets = ( \"t.disc.d\", { *address__ = \"inline:2\"; } ); },\n"
		      " { type = \"t.scr\"; name = \"late\"; targets = ( \"t.disc.d\" ); }\n"
		      ");\n");
	CU_ASSERT_EQUAL_FATAL(runtime_apply(rt, d4), 0);
	CU_ASSERT_TRUE(journal_wait("rt:t.scr.s<t.disc.e:0:-"));
	CU_ASSERT_TRUE(journal_pos("destroy:t.disc.e") >= 0);
	CU_ASSERT_EQUAL(journal_count("rt:"), 1);
	CU_ASSERT_EQUAL(publish("t.disc.d", "f", 1), 0);
	CU_ASSERT_TRUE(journal_wait("rt:t.scr.late<t.disc.d:1:f:0"));
	CU_ASSERT_TRUE(journal_wait("rt:t.scr.s<t.disc.d:1:f:0"));
	CU_ASSERT_EQUAL(journal_count("rt:t.scr.s<t.disc.e"), 1);

	{
		char *j = runtime_components_json(rt);

		CU_ASSERT_PTR_NOT_NULL(j ? strstr(j, "\"published_targets\":1") : NULL);
		free(j);
	}
	mf = open_memstream(&m, &len);
	runtime_write_metrics(rt, mf);
	fclose(mf);
	CU_ASSERT_PTR_NOT_NULL(strstr(m, "starling_component_callback_calls_total{component_id="
					 "\"t.scr.s\",callback=\"receive_targets\"}"));
	free(m);
	CU_ASSERT_EQUAL(overlaps, 0);
	CU_ASSERT_EQUAL(on_main_thread, 0);

	runtime_destroy(rt);
	cfg_doc_unref(d1);
	cfg_doc_unref(d2);
	cfg_doc_unref(d3);
	cfg_doc_unref(d4);
	cluster_destroy(cl);
}

int main(void)
{
	CU_pSuite s;
	unsigned fails;

	if (!mkdtemp(state_dir))
		return 2;
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	s = CU_add_suite("targets_runtime", NULL, NULL);
	CU_add_test(s, "delivery, coalescing, late receiver, re-creation, removal",
		    test_delivery_coalescing_removal);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = CU_get_number_of_failures();
	CU_cleanup_registry();
	return fails ? 1 : 0;
}
