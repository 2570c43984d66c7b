/*
 * Fuzz the preparation of configuration text for libconfig (natural "__"
 * names rewritten outside strings and comments, @include lines pointed at
 * prepared copies) and libconfig's parse of the result. Lines must never
 * move: the prepared text has as many line breaks as the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_source.h"

static size_t lines(const char *s, size_t n)
{
	size_t c = 0;

	for (size_t i = 0; i < n; i++)
		c += s[i] == '\n';
	return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cfg_errors errs = {0};
	struct cfg_source src;
	struct cfg_doc *doc = NULL;
	char *text;

	/* @include would read the fuzzer's files: not what is tested here */
	if (memmem(data, size, "@include", 8) || memchr(data, 0, size))
		return 0;
	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (cfg_source_prepare(&src, NULL, text, "fuzz", NULL, &errs) == 0) {
		if (lines(src.text, strlen(src.text)) != lines(text, size))
			abort();
		cfg_source_free(&src);
	}
	cfg_doc_parse_string(text, "fuzz", &doc, &errs);
	cfg_doc_unref(doc);
	cfg_errors_free(&errs);
	free(text);
	return 0;
}
