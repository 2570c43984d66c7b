/*
 * Label-set helpers shared by the host and plugins (static SDK library).
 */
#ifndef STARLING_LABELS_H
#define STARLING_LABELS_H

#include <starling/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

/* XXH3-64 over the labels in the order given, each as
 * name 0xff value 0xff. Callers pass labels sorted by name. Pure function,
 * thread-safe. Since ABI 1.0. */
uint64_t starling_labels_hash(const struct starling_label *labels, size_t n);
/* As starling_labels_hash() with the values' byte lengths (value_lens NULL:
 * strlen), for values that hold NUL bytes (struct
 * starling_series_ext.label_value_lens); equal to starling_labels_hash()
 * when every length is the strlen. */
uint64_t starling_labels_hash_n(const struct starling_label *labels, const size_t *value_lens,
				size_t n);

/* The ownership key of a target (DESIGN.md "Target key"): XXH3-64 over its
 * labels sorted by name, skipping every label whose name starts with
 * "__meta_", each as name 0xff value 0xff. If key_labels is non-empty only
 * those labels are used; otherwise any label named in exclude_labels is
 * skipped. `labels` need not be sorted; it is not modified. Pure function,
 * thread-safe, allocates nothing for n <= 64 labels. Since ABI 1.0. */
uint64_t starling_target_key(const struct starling_label *labels, size_t n,
			     const char *const *key_labels, size_t n_key_labels,
			     const char *const *exclude_labels, size_t n_exclude_labels);

/* Whether s[0, len) is valid UTF-8 (no overlongs, no surrogates,
 * <= U+10FFFF). Pure. */
bool starling_utf8_valid(const char *s, size_t len);

/* Sort labels by name in place (stable, byte order). Since ABI 1.0. */
void starling_labels_sort(struct starling_label *labels, size_t n);

#ifdef __cplusplus
}
#endif
#endif
