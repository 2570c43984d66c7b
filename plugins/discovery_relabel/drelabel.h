/*
 * discovery.relabel: Alloy's component of that name. See README.md. The
 * component (config, receive, publish) and a compact store of relabelled
 * targets.
 */
#ifndef DRELABEL_H
#define DRELABEL_H

#include <stddef.h>

#include <starling/plugin.h>
#include <starling/relabel.h>

extern const struct starling_component_type discovery_relabel_type;

/* Relabelled targets: label strings in one buffer, materialised as a
 * struct starling_target array by drelabel_store_seal(). */
struct drelabel_store {
	size_t n_in; /* targets relabelled (kept or not) */
	/* building */
	char *buf;
	size_t len, cap;
	size_t *off; /* per label: name offset, value offset */
	size_t n_off, off_cap;
	size_t *first; /* per target: index of its first label, and count */
	size_t *count;
	size_t n_targets, t_cap;
	/* sealed */
	struct starling_label *labels;
	struct starling_target *targets;
};

void drelabel_store_init(struct drelabel_store *s);
void drelabel_store_free(struct drelabel_store *s);
/* Forget the targets, keep the memory. */
void drelabel_store_clear(struct drelabel_store *s);
/* Append a copy of the label set. 0 or -ENOMEM. */
int drelabel_store_add(struct drelabel_store *s, const struct starling_lset *ls);
/* Build s->labels / s->targets (valid until the store changes). */
int drelabel_store_seal(struct drelabel_store *s);

#endif
