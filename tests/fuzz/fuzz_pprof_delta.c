/*
 * Fuzz the pprof delta rewriter (plugins/pyroscope_scrape/pyro_delta.c),
 * which parses every cumulative profile a target serves. Input: one byte
 * picking the profile type (memory, mutex, block), three bytes (little
 * endian) giving the length of the first profile, the first profile, then
 * the second. The first is the baseline, the second is turned into a delta
 * against it, and the first again (a counter reset: values go back). Gzip or
 * plain protobuf, as targets send either. Nothing may crash, leak or read
 * out of bounds; a malformed profile is only refused (-EBADMSG).
 */
#include <stdint.h>
#include <stdlib.h>

#include "pyro_scrape.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const types[] = {"memory", "mutex", "block"};
	struct pyro_delta *st = NULL;
	const uint8_t *a, *b;
	size_t alen, blen;
	const char *type;
	uint8_t *out;
	size_t out_len;
	char err[256];

	if (size < 4)
		return 0;
	type = types[data[0] % 3];
	alen = (size_t)data[1] | (size_t)data[2] << 8 | (size_t)data[3] << 16;
	data += 4;
	size -= 4;
	if (alen > size)
		alen = size;
	a = data;
	b = data + alen;
	blen = size - alen;
	const uint8_t *seq[3] = {a, b, a};
	size_t lens[3] = {alen, blen, alen};

	for (int i = 0; i < 3; i++) {
		out = NULL;
		out_len = 0;
		if (pyro_delta_apply(&st, type, seq[i], lens[i], &out, &out_len, err,
				     sizeof(err)) == 0)
			free(out);
	}
	pyro_delta_free(st);
	return 0;
}
