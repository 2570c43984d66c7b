/* Label-set hashing and the target key (see starling/labels.h). */
#include <starling/labels.h>

#include <stdlib.h>
#include <string.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

static const unsigned char label_sep = 0xff;

static void hash_label_n(XXH3_state_t *st, const struct starling_label *l, size_t vlen)
{
	XXH3_64bits_update(st, l->name, strlen(l->name));
	XXH3_64bits_update(st, &label_sep, 1);
	XXH3_64bits_update(st, l->value, vlen);
	XXH3_64bits_update(st, &label_sep, 1);
}

static void hash_label(XXH3_state_t *st, const struct starling_label *l)
{
	hash_label_n(st, l, strlen(l->value));
}

uint64_t starling_labels_hash_n(const struct starling_label *labels, const size_t *value_lens,
				size_t n)
{
	XXH3_state_t st;

	XXH3_64bits_reset(&st);
	for (size_t i = 0; i < n; i++)
		hash_label_n(&st, &labels[i], value_lens ? value_lens[i] : strlen(labels[i].value));
	return XXH3_64bits_digest(&st);
}

uint64_t starling_labels_hash(const struct starling_label *labels, size_t n)
{
	XXH3_state_t st;

	XXH3_64bits_reset(&st);
	for (size_t i = 0; i < n; i++)
		hash_label(&st, &labels[i]);
	return XXH3_64bits_digest(&st);
}

static int label_cmp(const void *a, const void *b)
{
	const struct starling_label *la = *(const struct starling_label *const *)a;
	const struct starling_label *lb = *(const struct starling_label *const *)b;
	int c = strcmp(la->name, lb->name);

	if (c)
		return c;
	/* stable for equal names: order by address (input order) */
	return (la > lb) - (la < lb);
}

static bool name_in(const char *name, const char *const *set, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(name, set[i]) == 0)
			return true;
	return false;
}

uint64_t starling_target_key(const struct starling_label *labels, size_t n,
			     const char *const *key_labels, size_t n_key_labels,
			     const char *const *exclude_labels, size_t n_exclude_labels)
{
	const struct starling_label *stack[64];
	const struct starling_label **sel = stack;
	size_t k = 0;
	XXH3_state_t st;

	if (n > 64) {
		sel = malloc(n * sizeof(*sel));
		if (!sel)
			return 0;
	}
	for (size_t i = 0; i < n; i++) {
		const char *name = labels[i].name;

		if (strncmp(name, "__meta_", 7) == 0)
			continue;
		if (n_key_labels) {
			if (!name_in(name, key_labels, n_key_labels))
				continue;
		} else if (name_in(name, exclude_labels, n_exclude_labels)) {
			continue;
		}
		sel[k++] = &labels[i];
	}
	qsort(sel, k, sizeof(*sel), label_cmp);
	XXH3_64bits_reset(&st);
	for (size_t i = 0; i < k; i++)
		hash_label(&st, sel[i]);
	if (sel != stack)
		free(sel);
	return XXH3_64bits_digest(&st);
}

static int label_cmp_val(const void *a, const void *b)
{
	const struct starling_label *la = a, *lb = b;

	return strcmp(la->name, lb->name);
}

void starling_labels_sort(struct starling_label *labels, size_t n)
{
	/* insertion sort: label sets are small and often nearly sorted; stable */
	for (size_t i = 1; i < n; i++) {
		struct starling_label cur = labels[i];
		size_t j = i;

		while (j > 0 && label_cmp_val(&labels[j - 1], &cur) > 0) {
			labels[j] = labels[j - 1];
			j--;
		}
		labels[j] = cur;
	}
}
