/*
 * Prometheus target groups (static SDK library): the file_sd / http_sd
 * document `[{"targets": ["host:port", ...], "labels": {"k": "v"}}, ...]`
 * in JSON or YAML, and flattening groups into a struct starling_target_set.
 *
 * Parsing follows Prometheus `discovery/targetgroup/targetgroup.go` and
 * `discovery/file/file.go` (see README "Target groups"): unknown keys are
 * errors (JSON DisallowUnknownFields, YAML UnmarshalStrict), a null group
 * item is "nil target group item found", label names must be legacy
 * Prometheus names ([a-zA-Z_][a-zA-Z0-9_]*), label values strings. Each
 * target string becomes the target's `__address__`; when flattening, the
 * group labels are merged under it (the target's own label wins, Alloy
 * `NewTargetFromSpecificAndBaseLabelSet`) and a target whose `__address__`
 * is empty is dropped and counted.
 */
#ifndef STARLING_TARGETGROUP_H
#define STARLING_TARGETGROUP_H

#include <starling/plugin.h>
#include <starling/relabel.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One group: shared labels plus n target addresses. */
struct starling_tgroup {
	struct starling_lset labels; /* group labels, sorted, no empty values */
	char *addrs;		     /* n_targets NUL-terminated strings back to back */
	size_t addrs_len;	     /* private */
	size_t addrs_cap;	     /* private */
	size_t *addr_off;	     /* n_targets offsets into addrs */
	size_t n_targets;
	size_t off_cap; /* private */
	size_t line;	/* 1-based line of the group in its document (0: unknown) */
};

/* A parsed document: n groups in document order (the group's index is
 * its Source suffix "<file>:<i>" in Prometheus). */
struct starling_tgroups {
	struct starling_tgroup *v;
	size_t n;
	size_t cap; /* private */
};

/* Empty list, no allocation. Since ABI 1.1. */
void starling_tgroups_init(struct starling_tgroups *g);
/* Release everything; the list is empty and reusable. Since ABI 1.1. */
void starling_tgroups_free(struct starling_tgroups *g);
/* Exchange two lists (e.g. keep the last good one on a parse error). */
void starling_tgroups_swap(struct starling_tgroups *a, struct starling_tgroups *b);

/* Parse a JSON document of len bytes (need not be NUL-terminated) into
 * *out, which must be empty (initialised or freed). Returns 0, -EINVAL with
 * a message ("line N: ..." for syntax errors, "group N: ..." otherwise) in
 * err, or -ENOMEM. On error *out is empty. Since ABI 1.1. */
int starling_tgroups_parse_json(struct starling_tgroups *out, const char *buf, size_t len,
				char *err, size_t errlen);
/* The same for YAML (libyaml; errors name the line). Aliases are expanded;
 * a document whose aliases expand it more than 100-fold is refused. */
int starling_tgroups_parse_yaml(struct starling_tgroups *out, const char *buf, size_t len,
				char *err, size_t errlen);

/* Set name=value on every group (e.g. __meta_filepath, __meta_url),
 * replacing a label of that name. Returns 0, -EINVAL or -ENOMEM. */
int starling_tgroups_set_label(struct starling_tgroups *g, const char *name, const char *value);

/* Flattened targets of one or more group lists. */
struct starling_target_builder {
	struct starling_target *targets;
	size_t n_targets;
	size_t dropped; /* targets without __address__ skipped so far */
	/* private */
	size_t targets_cap;
	struct starling_label *labels;
	size_t n_labels, labels_cap;
	size_t *first; /* per target: index of its first label */
};

void starling_target_builder_init(struct starling_target_builder *b);
void starling_target_builder_free(struct starling_target_builder *b);
/* Forget the targets, keep the memory. */
void starling_target_builder_clear(struct starling_target_builder *b);
/* Append every target of g (group labels merged, target wins). The targets
 * point into g's strings: g must outlive the set's use. Returns 0 or
 * -ENOMEM. */
int starling_target_builder_add(struct starling_target_builder *b,
				const struct starling_tgroups *g);
/* Append one target with the labels of `ls` (sorted, unique; as is). */
int starling_target_builder_add_lset(struct starling_target_builder *b,
				     const struct starling_lset *ls);
/* The set of everything added so far; valid until the next builder call. */
void starling_target_builder_view(struct starling_target_builder *b,
				  struct starling_target_set *out);

/* XXH3 over a whole target set in order (to skip republishing an identical
 * set). Pure. */
uint64_t starling_target_set_hash(const struct starling_target_set *set);

#ifdef __cplusplus
}
#endif
#endif
