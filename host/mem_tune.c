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
	/* glibc gives a heap's free top back when it reaches the trim
	 * threshold (128 KiB by default, fixed once the mmap threshold is
	 * set). libsnappy allocates ~172 KiB of working memory per
	 * compressed 64 KiB fragment and frees it, so every fragment trimmed
	 * the scrape thread's heap (madvise) and faulted the pages in again:
	 * ~3% of the CPU at 200 targets x 1,000 series (CPU round 4). Above
	 * that size a free top still goes back at once; the periodic trim
	 * below returns free pages inside the heaps. */
	(void)mallopt(M_TRIM_THRESHOLD, (int)MEM_TRIM_THRESHOLD);
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
