/*
 * Fuzz the config loader: libconfig text -> document (syntax, top-level
 * keys, cluster group) -> validated component graph (every component's
 * keys against the schemas of the real prometheus.scrape,
 * pyroscope.scrape, pyroscope.write and prometheus.operator.* types,
 * forward_to references, cycles). Nothing may crash, leak or hang; bad text
 * only yields errors.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "operator.h"
#include "pyro_scrape.h"
#include "pyro_write.h"
#include "scrape_component.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct starling_component_type *const types[] = {
	    &prometheus_scrape_type,
	    &pyroscope_scrape_type,
	    &pyroscope_write_type,
	    &prometheus_operator_podmonitors_type,
	    &prometheus_operator_servicemonitors_type,
	};
	const struct type_set ts = {types, sizeof(types) / sizeof(types[0]), NULL};
	struct cfg_errors errs = {0};
	struct cfg_doc *doc = NULL;
	char *text;

	/* @include would read the fuzzer's files: not what is tested here */
	if (memmem(data, size, "@include", 8))
		return 0;
	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	cfg_doc_parse_string(text, "fuzz.cfg", &doc, &errs);
	if (doc) {
		cfg_doc_validate(doc, &ts, &errs);
		cfg_doc_unref(doc);
	}
	cfg_errors_free(&errs);
	free(text);
	return 0;
}
