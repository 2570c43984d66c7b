/*
 * Fuzz discovery.dns' answer parser: any bytes a DNS server (or someone
 * spoofing one) sends must give targets or -EBADMSG, never a crash, an
 * out-of-bounds read or a leak. The first two bytes pick the port.
 */
#include <stdint.h>
#include <stdlib.h>

#include "dns_records.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dns_targets out = {0};
	unsigned port;

	if (size < 2)
		return 0;
	port = (unsigned)(data[0] << 8 | data[1]);
	dns_answer_targets(data + 2, size - 2, "fuzz.example", port, &out);
	for (size_t i = 0; i < out.n; i++)
		for (int j = 0; j < DNS_N_LABELS; j++)
			if (!out.t[i].labels[j].value)
				abort();
	dns_targets_free(&out);
	return 0;
}
