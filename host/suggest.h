/*
 * "Did you mean": the known name closest to a misspelt one, for the
 * messages about unknown keys, component types and flags.
 */
#ifndef STARLING_HOST_SUGGEST_H
#define STARLING_HOST_SUGGEST_H

#include <stddef.h>

/* The candidate closest to word (optimal string alignment distance:
 * insertions, deletions, substitutions, adjacent swaps, with '-' and '_'
 * taken as equal), if it is close enough to be a likely typo: at most 1 edit
 * for words up to 4 characters, 2 up to 8, 3 beyond. NULL otherwise or for an
 * exact match ("scrape-timeout" still suggests "scrape_timeout"). cands is
 * an array of n strings (NULL entries skipped). */
const char *suggest_closest(const char *word, const char *const *cands, size_t n);

#endif
