/*
 * Fuzz the Serf tag decoder and the configuration-fingerprint comparison
 * (host/cluster/tags.c): a member's metadata is whatever a peer sends. The
 * decoded fingerprint is compared both ways with a fixed one and itself;
 * the decoded tags are encoded again. Nothing may crash or read out of
 * bounds.
 */
#include <stdint.h>
#include <string.h>

#include "cluster/tags.h"
#include "cluster/timeline.h"
#include "cluster/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char ours[] = "prometheus.scrape.a:0123abcd,pyroscope.scrape.b:89abcdef";
	struct member_tags t;
	char diff[128];
	uint8_t out[ML_META_MAX];

	tags_decode(data, size, &t);
	tags_fp_diff(ours, t.fp, diff, sizeof(diff));
	tags_fp_diff(t.fp, ours, diff, sizeof(diff));
	tags_fp_diff(t.fp, t.fp, diff, sizeof(diff));
	/* the raw input as a fingerprint too (NUL-terminated copy) */
	if (size < CLUSTER_FP_MAX) {
		char fp[CLUSTER_FP_MAX];

		memcpy(fp, data, size);
		fp[size] = 0;
		tags_fp_diff(ours, fp, diff, sizeof(diff));
		tags_fp_diff(fp, ours, diff, sizeof(diff));
	}
	tags_encode(t.state, t.weight, t.http, t.from, t.until, t.fp, out, sizeof(out));
	return 0;
}
