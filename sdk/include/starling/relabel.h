/*
 * Mutable label sets and the Prometheus relabel engine (static SDK library).
 *
 * A struct starling_lset is a label set sorted by name (byte order, names
 * unique, `__name__` at its sorted position like any other label) whose
 * strings live in one buffer owned by the set. It is reused across series:
 * clear it instead of freeing it, and after warm-up setting, copying and
 * relabelling allocate nothing. `ls->v` / `ls->n` can be handed directly to
 * struct starling_series (labels) and starling_labels_hash().
 *
 * Relabel rules follow Prometheus `model/relabel` (see README "Relabel
 * rules"): every action, the same defaults, RE2-like regexes run through
 * PCRE2 fully anchored with `.` matching newline, and Go Regexp.Expand
 * templates ($1, ${1}, $name, ${name}, $$).
 */
#ifndef STARLING_RELABEL_H
#define STARLING_RELABEL_H

#include <starling/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Label sets.                                                               */

/* Initialise with starling_lset_init() (or zero it). Read `v` and `n`
 * freely; change the set only through the functions below. Pointers into
 * the set (v[i].name / v[i].value) stay valid until the next call that
 * modifies the set. Not thread-safe: one owner at a time. */
struct starling_lset {
	struct starling_label *v; /* n labels, sorted by name, NUL-terminated */
	size_t n;
	size_t cap;    /* private */
	char *buf;     /* private: string storage */
	size_t len;    /* private */
	size_t bufcap; /* private */
};

/* Empty set, no allocation. Since ABI 1.0. */
void starling_lset_init(struct starling_lset *ls);
/* Release the memory; the set is empty and reusable afterwards. Since ABI 1.0. */
void starling_lset_free(struct starling_lset *ls);
/* Remove every label, keep the memory for reuse. Since ABI 1.0. */
void starling_lset_clear(struct starling_lset *ls);

/* Set name=value (both copied; lengths in bytes), replacing an existing
 * label of that name. An empty value deletes the label (Prometheus
 * semantics). Returns 0, -EINVAL for an empty name or a NUL byte inside
 * name or value, -ENOMEM. Since ABI 1.0. */
int starling_lset_set(struct starling_lset *ls, const char *name, size_t name_len,
		      const char *value, size_t value_len);
/* Same with NUL-terminated strings. Since ABI 1.0. */
int starling_lset_set_str(struct starling_lset *ls, const char *name, const char *value);

/* Bulk building: append without keeping order (faster for many labels),
 * then call starling_lset_finish() once. Empty values are kept until
 * finish(), which sorts, drops empty-valued labels and returns -EEXIST if a
 * name occurs twice (the set is then unspecified but valid to clear/free).
 * Same errors as starling_lset_set() otherwise. Since ABI 1.0. */
int starling_lset_append(struct starling_lset *ls, const char *name, size_t name_len,
			 const char *value, size_t value_len);
int starling_lset_finish(struct starling_lset *ls);

/* Value of label `name`, or NULL when absent. Binary search. The pointer
 * is owned by the set (see above). Since ABI 1.0. */
const char *starling_lset_get(const struct starling_lset *ls, const char *name);
/* Delete label `name` if present. Since ABI 1.0. */
void starling_lset_del(struct starling_lset *ls, const char *name);
/* Make dst an exact copy of src (dst's memory is reused). Returns 0 or
 * -ENOMEM. Since ABI 1.0. */
int starling_lset_copy(struct starling_lset *dst, const struct starling_lset *src);
/* starling_labels_hash() of the set. Pure. Since ABI 1.0. */
uint64_t starling_lset_hash(const struct starling_lset *ls);
/* Total order: <0, 0, >0 like strcmp, comparing label by label. Since ABI 1.0. */
int starling_lset_compare(const struct starling_lset *a, const struct starling_lset *b);

/* ------------------------------------------------------------------------ */
/* Relabel rules.                                                            */

enum starling_relabel_action {
	STARLING_RELABEL_REPLACE = 0,
	STARLING_RELABEL_KEEP,
	STARLING_RELABEL_DROP,
	STARLING_RELABEL_KEEPEQUAL,
	STARLING_RELABEL_DROPEQUAL,
	STARLING_RELABEL_HASHMOD,
	STARLING_RELABEL_LABELMAP,
	STARLING_RELABEL_LABELDROP,
	STARLING_RELABEL_LABELKEEP,
	STARLING_RELABEL_LOWERCASE,
	STARLING_RELABEL_UPPERCASE,
};

/* One rule as written by a user. NULL strings mean "use the default":
 * separator ";", regex "(.*)", replacement "$1", action "replace". Strings
 * are copied by starling_relabel_rules_new(). */
struct starling_relabel_config {
	const char *const *source_labels;
	size_t n_source_labels;
	const char *separator;
	const char *regex;
	uint64_t modulus;
	const char *target_label;
	const char *replacement;
	const char *action; /* Prometheus names, lower case ("labelmap") */
};

/* Compiled, immutable rule list. Safe to share between threads: apply()
 * keeps its per-call state in a struct starling_relabel_scratch. */
struct starling_relabel_rules;

/* Compile n rules (regexes compiled once, PCRE2 JIT when available).
 * On error returns -EINVAL (or -ENOMEM) and writes "rule N: message" into
 * err (errlen bytes, may be 0). *out is owned by the caller: free it with
 * starling_relabel_rules_free(). n == 0 gives a valid empty list.
 * Since ABI 1.0. */
int starling_relabel_rules_new(const struct starling_relabel_config *cfgs, size_t n,
			       struct starling_relabel_rules **out, char *err, size_t errlen);

/* Schema of one rule, for the `children` of a plugin's GROUP_LIST key
 * (e.g. `rule` or `metric_relabel_config`): source_labels (STRING_LIST),
 * separator, regex, modulus (INT), target_label, replacement, action.
 * Field names and defaults are those of Alloy's `rule` block. Since ABI 1.0. */
extern const struct starling_config_key starling_relabel_schema[];

/* Build rules from a GROUP_LIST config node whose elements follow
 * starling_relabel_schema (`list` may be NULL: empty rule list). On a bad
 * regex, action or combination of fields returns -EINVAL with
 * "<file:line>: relabel rule N: message" (file:line from api->config_where)
 * in err. Same ownership as starling_relabel_rules_new(). Since ABI 1.0. */
int starling_relabel_rules_from_config(const struct starling_host_api *api,
				       const starling_config *list,
				       struct starling_relabel_rules **out, char *err,
				       size_t errlen);

/* Free a rule list (NULL is fine). Not while another thread applies it.
 * Since ABI 1.0. */
void starling_relabel_rules_free(struct starling_relabel_rules *rules);
/* Number of rules (0 for NULL). Pure. Since ABI 1.0. */
size_t starling_relabel_rules_count(const struct starling_relabel_rules *rules);

/* Per-thread working memory for starling_relabel_apply() (match data and
 * string buffers, grown on demand and reused). Zero it or call _init;
 * release with _free. One scratch must not be used by two threads at once.
 * Since ABI 1.0. */
struct starling_relabel_scratch {
	void *match_data;     /* private: pcre2_match_data_8 */
	uint32_t match_pairs; /* private */
	char *a, *b;	      /* private buffers */
	size_t acap, bcap;    /* private */
};
void starling_relabel_scratch_init(struct starling_relabel_scratch *s);
void starling_relabel_scratch_free(struct starling_relabel_scratch *s);

/* Apply the rules in order to ls, in place, stopping at the first rule that
 * drops. Returns 1 when the label set is kept, 0 when a keep/drop/
 * keepequal/dropequal rule dropped it (ls is then unspecified), -ENOMEM.
 * rules may be NULL (keep, unchanged). Label names written by replace and
 * labelmap must be valid legacy names ([a-zA-Z_][a-zA-Z0-9_]*), otherwise
 * the rule does nothing, as in Prometheus. lowercase/uppercase map all of
 * Unicode (through the C.UTF-8 locale; ASCII only if that is missing);
 * invalid UTF-8 bytes are kept. Allocates only to grow ls or the scratch
 * buffers.
 * Thread-safe for distinct (ls, scratch) pairs. Since ABI 1.0. */
int starling_relabel_apply(const struct starling_relabel_rules *rules, struct starling_lset *ls,
			   struct starling_relabel_scratch *scratch);

#ifdef __cplusplus
}
#endif
#endif /* STARLING_RELABEL_H */
