/*
 * "Did you mean" suggestions: optimal string alignment distance, bounded.
 */
#include "suggest.h"

#include <stdlib.h>
#include <string.h>

#define SUGGEST_MAX_LEN 64

static int same(char a, char b)
{
	if (a == '-')
		a = '_';
	if (b == '-')
		b = '_';
	return a == b;
}

static size_t min3(size_t a, size_t b, size_t c)
{
	size_t m = a < b ? a : b;

	return m < c ? m : c;
}

/* Optimal string alignment distance (Damerau-Levenshtein without
 * repeated edits of a substring). Words longer than SUGGEST_MAX_LEN are
 * not compared (SIZE_MAX). */
static size_t distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t d[SUGGEST_MAX_LEN + 1][SUGGEST_MAX_LEN + 1];

	if (la > SUGGEST_MAX_LEN || lb > SUGGEST_MAX_LEN)
		return (size_t)-1;
	for (size_t i = 0; i <= la; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= la; i++) {
		for (size_t j = 1; j <= lb; j++) {
			size_t cost = same(a[i - 1], b[j - 1]) ? 0 : 1;

			d[i][j] = min3(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
			if (i > 1 && j > 1 && same(a[i - 1], b[j - 2]) &&
			    same(a[i - 2], b[j - 1]) && d[i - 2][j - 2] + 1 < d[i][j])
				d[i][j] = d[i - 2][j - 2] + 1;
		}
	}
	return d[la][lb];
}

const char *suggest_closest(const char *word, const char *const *cands, size_t n)
{
	size_t len = word ? strlen(word) : 0, limit, best_d = (size_t)-1;
	const char *best = NULL;

	if (!len)
		return NULL;
	limit = len <= 4 ? 1 : len <= 8 ? 2 : 3;
	for (size_t i = 0; i < n; i++) {
		size_t dd;

		if (!cands[i])
			continue;
		dd = distance(word, cands[i]);
		if (dd == 0) /* the same, or only '-' for '_' */
			return strcmp(word, cands[i]) ? cands[i] : NULL;
		if (dd <= limit && dd < best_d) {
			best_d = dd;
			best = cands[i];
		}
	}
	return best;
}
