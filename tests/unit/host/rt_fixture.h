/*
 * Shared by the runtime tests: an event journal that fake component types
 * append to ("start:t.sink.a"), a bounded wait for an entry, a single-node
 * cluster and a validated document from config text.
 */
#ifndef STARLING_TEST_RT_FIXTURE_H
#define STARLING_TEST_RT_FIXTURE_H

#include <stdbool.h>

#include "cluster/cluster.h"
#include "config.h"

void note(const char *fmt, ...) STARLING_PRINTF(1, 2);
void journal_reset(void);
bool journal_empty(void);
bool journal_has(const char *s);
/* Position of s in the journal, or -1. */
long journal_pos(const char *s);
/* Occurrences of s. */
int journal_count(const char *s);
/* Poll for s for up to 5 s (printing the journal on a timeout). */
bool journal_wait(const char *s);

/* Parse and validate text against types (CUnit assertions on failure). */
struct cfg_doc *rt_doc_from(const char *text, const struct type_set *types);
/* A started one-node cluster "n1". */
struct cluster *rt_single_node(void);

#endif
