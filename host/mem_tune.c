/*
 * Heap tuning for a long-running daemon (see mem_tune.h).
 */
#include "mem_tune.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif

void mem_tune_init(void)
{
#ifdef __GLIBC__
	/* Setting it also turns glibc's dynamic threshold off. Scrape bodies
	 * over body_size_limit-sized buffers, inflate buffers and remote-write
	 * batches over 1 MiB are then their own mappings, returned when freed;
	 * smaller ones are reused (no mmap per scrape). */
	(void)mallopt(M_MMAP_THRESHOLD, (int)MEM_MMAP_THRESHOLD);
#endif
}

bool mem_trim_due(struct mem_trim *t, int64_t now_ms)
{
	if (t->last_ms && now_ms - t->last_ms < MEM_TRIM_INTERVAL_MS && now_ms >= t->last_ms)
		return false;
	t->last_ms = now_ms ? now_ms : 1;
	return true;
}

void mem_trim_tick(struct mem_trim *t, int64_t now_ms)
{
	if (!mem_trim_due(t, now_ms))
		return;
	t->trims++;
#ifdef __GLIBC__
	/* Free pages inside the heaps (not only at their tops) go back with
	 * madvise; it walks the free chunks of each arena, ~1 ms here. */
	(void)malloc_trim(0);
#endif
}
