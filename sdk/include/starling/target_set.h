/*
 * Target sets (ABI 1.1 payload) for plugins and the host (static SDK
 * library): checking and copying a set, reading a target's labels, and the
 * target list of a scraper, which merges the inline targets of its
 * STARLING_CFG_TARGETS key with the latest set of each discovery component
 * it names, in the order of the list.
 *
 *   struct starling_target_list *tl;
 *   starling_target_list_new(api, api->config_lookup(cfg, "targets"), &tl, err, sizeof(err));
 *   // receive_targets(inst, source, set):
 *   starling_target_list_update(tl, source, set);
 *   for (size_t i = 0; i < starling_target_list_count(tl); i++)
 *           use(starling_target_list_get(tl, i));
 *
 * Memory: a copied set is one allocation (free() it); a target list owns
 * copies of everything it returns, valid until its next update or free.
 * Thread-safety: none inside; a list is used by one thread at a time (the
 * host serialises receive_targets with create/update/start/stop).
 *
 * Since ABI 1.1.
 */
#ifndef STARLING_TARGET_SET_H
#define STARLING_TARGET_SET_H

#include <stdbool.h>
#include <stddef.h>

#include <starling/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Whether every target's labels are sorted by name, names unique and
 * non-empty, values non-NULL (what forward_targets requires). */
bool starling_target_set_valid(const struct starling_target_set *set);

/* A deep copy of a valid set in one allocation (release with free()); NULL
 * with errno EINVAL (invalid set) or ENOMEM. */
struct starling_target_set *starling_target_set_copy(const struct starling_target_set *set);

/* The value of label `name` of a target (labels sorted), NULL if absent. */
const char *starling_target_label(const struct starling_target *t, const char *name);

struct starling_target_list;

/* From a STARLING_CFG_TARGETS (or MAP_LIST) config node, which may be NULL:
 * maps are inline targets (a name "*x" is read as "__x", since libconfig
 * names cannot start with '_'; labels get sorted), strings name the
 * sources. A label that is not a string or is repeated is an error
 * "<file:line>: ..." in err (-EINVAL); -ENOMEM. */
int starling_target_list_new(const struct starling_host_api *api, const starling_config *list,
			     struct starling_target_list **out, char *err, size_t errlen);
void starling_target_list_free(struct starling_target_list *tl);

/* Keep a copy of `set` as the latest set of `source` (an empty set drops
 * the source's targets). A source the list does not name (a producer that
 * names this component in its forward_to) goes after the named ones, in
 * order of first arrival. Returns 0, -EINVAL (invalid set; the previous
 * one stays) or -ENOMEM. */
int starling_target_list_update(struct starling_target_list *tl, const char *source,
				const struct starling_target_set *set);

/* For a reload: hand the latest sets of `from` to `to` (for the sources
 * `to` names, plus the unnamed ones). Returns 0 or -ENOMEM. */
int starling_target_list_adopt(struct starling_target_list *to,
			       const struct starling_target_list *from);

/* The merged targets: each inline target and each source's set where the
 * list has them, unnamed sources last. */
size_t starling_target_list_count(const struct starling_target_list *tl);
const struct starling_target *starling_target_list_get(const struct starling_target_list *tl,
						       size_t i);
/* Where target i comes from: "file:line" of an inline target (*is_inline
 * true) or the source's id. */
const char *starling_target_list_origin(const struct starling_target_list *tl, size_t i,
					bool *is_inline);
/* How many of the merged targets are inline. */
size_t starling_target_list_inline_count(const struct starling_target_list *tl);

#ifdef __cplusplus
}
#endif
#endif
