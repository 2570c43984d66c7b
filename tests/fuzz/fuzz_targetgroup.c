/*
 * Fuzz the target-group readers (sdk/lib/targetgroup_json.c,
 * targetgroup_yaml.c): the first byte picks JSON (even) or YAML (odd), the
 * rest is the document. A parsed document is flattened into a target set
 * and every target checked for sorted, unique labels with an __address__.
 * Nothing may crash, leak or read out of bounds; bad input must only be
 * reported.
 */
#include <starling/targetgroup.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct starling_tgroups g;
	struct starling_target_builder b;
	struct starling_target_set set;
	char err[256];
	int rc;

	if (size < 1)
		return 0;
	if (data[0] & 1)
		rc = starling_tgroups_parse_yaml(&g, (const char *)data + 1, size - 1, err,
						 sizeof(err));
	else
		rc = starling_tgroups_parse_json(&g, (const char *)data + 1, size - 1, err,
						 sizeof(err));
	if (rc)
		return 0;
	starling_tgroups_set_label(&g, "__meta_filepath", "fuzz.json");
	starling_target_builder_init(&b);
	if (starling_target_builder_add(&b, &g) == 0) {
		starling_target_builder_view(&b, &set);
		for (size_t i = 0; i < set.n_targets; i++) {
			const struct starling_target *t = &set.targets[i];
			int has_addr = 0;

			for (size_t j = 0; j < t->n_labels; j++) {
				if (j && strcmp(t->labels[j - 1].name, t->labels[j].name) >= 0)
					abort();
				if (strcmp(t->labels[j].name, "__address__") == 0 &&
				    t->labels[j].value[0])
					has_addr = 1;
			}
			if (!has_addr)
				abort();
		}
		(void)starling_target_set_hash(&set);
	}
	starling_target_builder_free(&b);
	starling_tgroups_free(&g);
	return 0;
}
