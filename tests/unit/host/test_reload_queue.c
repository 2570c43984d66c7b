/* The reload queue (host/reload_queue.c): reloads run on the queue's own
 * thread; requests made together share a run, one made during a run gets
 * the next; every request is answered exactly once (outcome, -ETIMEDOUT at
 * its bound, -ECANCELED at stop). The run function here blocks on a gate the
 * test opens, so no test depends on how fast the machine is. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "mock_wait.h"
#include "reload_queue.h"

struct fake {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool open;
	int runs;   /* runs started */
	int result; /* what a run returns */
	const char *msg;
};

static struct fake fk = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};

static void fake_reset(int result, const char *msg)
{
	pthread_mutex_lock(&fk.lock);
	fk.open = false;
	fk.runs = 0;
	fk.result = result;
	fk.msg = msg;
	pthread_mutex_unlock(&fk.lock);
}

static void gate_open(void)
{
	pthread_mutex_lock(&fk.lock);
	fk.open = true;
	pthread_cond_broadcast(&fk.cond);
	pthread_mutex_unlock(&fk.lock);
}

static int runs(void)
{
	int n;

	pthread_mutex_lock(&fk.lock);
	n = fk.runs;
	pthread_mutex_unlock(&fk.lock);
	return n;
}

static int fake_run(void *arg, char **msg)
{
	int r;

	(void)arg;
	pthread_mutex_lock(&fk.lock);
	fk.runs++;
	while (!fk.open)
		pthread_cond_wait(&fk.cond, &fk.lock);
	r = fk.result;
	if (fk.msg)
		*msg = strdup(fk.msg);
	pthread_mutex_unlock(&fk.lock);
	return r;
}

struct answer {
	int calls; /* atomic */
	int result;
	char msg[64];
	int run_seen; /* runs started when answered */
};

static void on_done(void *arg, int result, const char *msg)
{
	struct answer *a = arg;

	a->result = result;
	snprintf(a->msg, sizeof(a->msg), "%s", msg ? msg : "");
	a->run_seen = runs();
	__atomic_add_fetch(&a->calls, 1, __ATOMIC_SEQ_CST);
}

static int calls(struct answer *a)
{
	return __atomic_load_n(&a->calls, __ATOMIC_SEQ_CST);
}

static void test_coalesce(void)
{
	struct reload_queue *q = NULL;
	struct answer a = {0}, b = {0}, c = {0};

	fake_reset(0, NULL);
	CU_ASSERT_EQUAL_FATAL(reload_queue_start(&q, fake_run, NULL), 0);
	CU_ASSERT_EQUAL(reload_queue_submit(q, 0, on_done, &a), 0);
	MOCK_WAIT_UNTIL(runs() == 1, 30000); /* run 1 in progress, holding a */
	CU_ASSERT_EQUAL_FATAL(runs(), 1);
	/* made during run 1: both share run 2 */
	CU_ASSERT_EQUAL(reload_queue_submit(q, 0, on_done, &b), 0);
	CU_ASSERT_EQUAL(reload_queue_submit(q, 0, on_done, &c), 0);
	CU_ASSERT_EQUAL(calls(&a), 0);
	gate_open();
	MOCK_WAIT_UNTIL(calls(&a) && calls(&b) && calls(&c), 30000);
	CU_ASSERT_EQUAL(calls(&a), 1);
	CU_ASSERT_EQUAL(calls(&b), 1);
	CU_ASSERT_EQUAL(calls(&c), 1);
	CU_ASSERT_EQUAL(a.result, 0);
	CU_ASSERT_EQUAL(a.run_seen, 1);
	CU_ASSERT_EQUAL(b.run_seen, 2);
	CU_ASSERT_EQUAL(c.run_seen, 2);
	reload_queue_stop(q);
	CU_ASSERT_EQUAL(runs(), 2); /* not 3: b and c shared one */
}

static void test_timeout_then_outcome_once(void)
{
	struct reload_queue *q = NULL;
	struct answer a = {0}, b = {0};

	fake_reset(0, NULL);
	CU_ASSERT_EQUAL_FATAL(reload_queue_start(&q, fake_run, NULL), 0);
	CU_ASSERT_EQUAL(reload_queue_submit(q, 20, on_done, &a), 0);
	CU_ASSERT_EQUAL(reload_queue_submit(q, 0, on_done, &b), 0); /* no bound */
	MOCK_WAIT_UNTIL(calls(&a), 30000);
	CU_ASSERT_EQUAL(calls(&a), 1);
	CU_ASSERT_EQUAL(a.result, -ETIMEDOUT);
	CU_ASSERT_EQUAL(calls(&b), 0); /* the run is still blocked */
	gate_open();
	MOCK_WAIT_UNTIL(calls(&b), 30000);
	CU_ASSERT_EQUAL(calls(&b), 1);
	CU_ASSERT_EQUAL(b.result, 0);
	reload_queue_stop(q);
	CU_ASSERT_EQUAL(calls(&a), 1); /* never answered twice */
}

static void test_refusal_message(void)
{
	struct reload_queue *q = NULL;
	char *msg = NULL;

	fake_reset(-EINVAL, "f.cfg:3: unknown key");
	gate_open();
	CU_ASSERT_EQUAL_FATAL(reload_queue_start(&q, fake_run, NULL), 0);
	CU_ASSERT_EQUAL(reload_queue_run(q, 0, &msg), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(msg);
	CU_ASSERT_STRING_EQUAL(msg, "f.cfg:3: unknown key");
	free(msg);
	reload_queue_stop(q);
}

static void *stopper(void *arg)
{
	reload_queue_stop(arg);
	return NULL;
}

static void test_stop(void)
{
	struct reload_queue *q = NULL;
	struct answer a = {0}, b = {0};
	pthread_t t;

	fake_reset(0, NULL);
	CU_ASSERT_EQUAL_FATAL(reload_queue_start(&q, fake_run, NULL), 0);
	CU_ASSERT_EQUAL(reload_queue_submit(q, 0, on_done, &a), 0);
	MOCK_WAIT_UNTIL(runs() == 1, 30000);
	CU_ASSERT_EQUAL(reload_queue_submit(q, 0, on_done, &b), 0);
	CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, stopper, q), 0);
	gate_open(); /* the run in progress finishes and answers a */
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(calls(&a), 1);
	CU_ASSERT_EQUAL(a.result, 0);
	/* b: cancelled, or run once if run 1 ended before stop was asked
	 * (the test cannot order those two); answered once either way */
	CU_ASSERT_EQUAL(calls(&b), 1);
	CU_ASSERT(b.result == -ECANCELED || (b.result == 0 && runs() == 2));
	CU_ASSERT_EQUAL(reload_queue_submit(NULL, 0, on_done, &b), -ECANCELED);
}

int main(void)
{
	CU_pSuite s;
	unsigned fails;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	s = CU_add_suite("reload_queue", NULL, NULL);
	CU_add_test(s, "coalesce", test_coalesce);
	CU_add_test(s, "timeout_then_outcome_once", test_timeout_then_outcome_once);
	CU_add_test(s, "refusal_message", test_refusal_message);
	CU_add_test(s, "stop", test_stop);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = CU_get_number_of_failures();
	CU_cleanup_registry();
	return fails ? 1 : 0;
}
