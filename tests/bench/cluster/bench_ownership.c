/*
 * Ownership benchmark: rendezvous lookups per second on one core at 10, 100
 * and 1000 participants; busiest/mean keys at 10 nodes x 100k keys; share
 * of keys that move when an 11th node joins. Prints "key value" lines.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster/ownership.h"

static struct ownership_view *mkview(int n)
{
	char(*names)[32] = calloc((size_t)n, 32);
	const char **p = calloc((size_t)n, sizeof(*p));
	struct ownership_view *v;

	for (int i = 0; i < n; i++) {
		snprintf(names[i], 32, "node-%04d.example", i);
		p[i] = names[i];
	}
	v = ownership_view_new(1, p, NULL, (size_t)n);
	free(names);
	free(p);
	return v;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t key_of(uint64_t i)
{
	uint64_t z = (i + 1) * 0x9e3779b97f4a7c15ull;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	return z ^ (z >> 27);
}

int main(void)
{
	int sizes[] = {10, 100, 1000};

	for (int s = 0; s < 3; s++) {
		struct ownership_view *v = mkview(sizes[s]);
		uint64_t iters = 20000000ull / (uint64_t)sizes[s], sink = 0;
		double t0 = now_s();

		for (uint64_t i = 0; i < iters; i++) {
			size_t o;

			ownership_owners(v, key_of(i), &o, 1);
			sink += o;
		}
		double dt = now_s() - t0;

		printf("lookups_per_s_%d %.0f\n", sizes[s], (double)iters / dt);
		if (sink == 42)
			printf("#\n");
		ownership_view_free(v);
	}

	struct ownership_view *v10 = mkview(10), *v11 = mkview(11);
	unsigned count[10] = {0}, moved = 0, max = 0, keys = 100000;

	for (uint64_t k = 0; k < keys; k++) {
		size_t a, b;

		ownership_owners(v10, key_of(k), &a, 1);
		ownership_owners(v11, key_of(k), &b, 1);
		count[a]++;
		moved += strcmp(v10->members[a].name, v11->members[b].name) != 0;
	}
	for (int i = 0; i < 10; i++)
		max = count[i] > max ? count[i] : max;
	printf("busiest_over_mean_10x100k %.4f\n", max / (keys / 10.0));
	printf("moved_share_11th %.4f\n", moved / (double)keys);
	printf("moved_ideal %.4f\n", 1.0 / 11);
	ownership_view_free(v10);
	ownership_view_free(v11);
	return 0;
}
