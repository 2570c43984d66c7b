/*
 * How the daemon's heap gives memory back to the kernel (issue 12: after a
 * cardinality bomb RSS stayed 2x the baseline for minutes, in free memory
 * glibc kept). Two settings at start and a periodic trim from the main loop.
 */
#ifndef STARLING_HOST_MEM_TUNE_H
#define STARLING_HOST_MEM_TUNE_H

#include <stdbool.h>
#include <stdint.h>

/* Trim at most this often (the main loop ticks every <= 500 ms). */
#define MEM_TRIM_INTERVAL_MS 10000
/* Allocations from this size on are mmap'ed, so freeing them unmaps them. */
#define MEM_MMAP_THRESHOLD (1u << 20)
/* A heap's free top is given back from this size on (glibc: 128 KiB). */
#define MEM_TRIM_THRESHOLD (256u << 10)

struct mem_trim {
	int64_t last_ms; /* last trim, 0 = never */
	uint64_t trims;
};

/* glibc: a fixed mmap threshold (glibc's default one grows up to 32 MiB
 * after a big buffer is freed, and the next big buffers then come from the
 * heap, where they stay after free) and trim threshold. No-op elsewhere. */
void mem_tune_init(void);
/* Whether a trim is due at now_ms (and note it as done). */
bool mem_trim_due(struct mem_trim *t, int64_t now_ms);
/* When due: give free heap pages of every arena back (malloc_trim). */
void mem_trim_tick(struct mem_trim *t, int64_t now_ms);

#endif
