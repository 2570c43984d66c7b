/* Waiting in tests on a condition with a deadline, never on a fixed sleep
 * that assumes an idle machine.
 *
 *   MOCK_WAIT_UNTIL(atomic_load(&hits) >= 3, 10000);
 *   CU_ASSERT(atomic_load(&hits) >= 3);
 *
 * re-evaluates the condition every 2 ms of monotonic time until it holds or
 * the deadline (milliseconds) passed; the caller then asserts it. The
 * deadline is generous on purpose: a passing test returns as soon as the
 * condition holds, so only a failing one waits for it. */
#ifndef STARLING_MOCK_WAIT_H
#define STARLING_MOCK_WAIT_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

static inline int64_t mock_wait_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleeps 2 ms; false once END (mock_wait_now_ms() units) has passed. */
static inline bool mock_wait_step(int64_t end)
{
	struct timespec ts = {0, 2000000L};

	if (mock_wait_now_ms() >= end)
		return false;
	nanosleep(&ts, NULL);
	return true;
}

#define MOCK_WAIT_UNTIL(cond, timeout_ms)                                                          \
	do {                                                                                       \
		int64_t mock_wait_end_ = mock_wait_now_ms() + (timeout_ms);                        \
		while (!(cond) && mock_wait_step(mock_wait_end_)) {                                \
		}                                                                                  \
	} while (0)

#endif
