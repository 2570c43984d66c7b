/*
 * Fuzz the benchmark sink's remote-write counter (tests/bench/scrape/
 * rw_count.h): the sink walks whatever a scraper posts, so the walk must
 * stay inside the buffer and answer -1 on anything malformed. The input is
 * a decoded WriteRequest; the counts must also be consistent (staleness
 * markers and samples of bench_* series never exceed the samples seen, and
 * the timestamp callback runs once per counted bench_* sample).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rw_count.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void on_target(void *arg, int64_t ts_ms)
{
	(void)ts_ms;
	++*(uint64_t *)arg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* a copy of exactly size bytes, so ASan sees any read past the end */
	uint8_t *buf = malloc(size ? size : 1);
	uint64_t calls = 0;
	struct rw_counts c = {.on_target = on_target, .arg = &calls};

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	if (rw_count(buf, size, "bench_", &c) == 0 &&
	    (c.target_samples > c.samples || calls != c.target_samples))
		abort();
	free(buf);
	return 0;
}
