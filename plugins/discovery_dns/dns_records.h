/* DNS answer → discovery.dns targets (private to the plugin; fuzzed). */
#ifndef DISCOVERY_DNS_RECORDS_H
#define DISCOVERY_DNS_RECORDS_H

#include <stddef.h>
#include <stdint.h>

#include <starling/plugin.h>

/* Labels of every target, in this order (all five __meta_dns_* are always
 * present; those that do not apply are empty, as in Prometheus). */
enum {
	DNS_L_ADDRESS,
	DNS_L_NAME,
	DNS_L_SRV_TARGET,
	DNS_L_SRV_PORT,
	DNS_L_MX_TARGET,
	DNS_L_NS_TARGET,
	DNS_N_LABELS
};

struct dns_target {
	struct starling_label labels[DNS_N_LABELS]; /* values owned */
};

struct dns_targets {
	struct dns_target *t;
	size_t n, cap;
	size_t skipped; /* records of other types (not CNAME) */
};

/* Parse a whole DNS response (as res_nsearch returns it) and append one
 * target per SRV/MX/NS/A/AAAA answer record. `name` is the configured name
 * (__meta_dns_name), `port` is used for A/AAAA/MX/NS. Returns 0, -EBADMSG
 * for a malformed message (out keeps what was appended before) or -ENOMEM.
 * Never reads outside ans[0..len). */
int dns_answer_targets(const uint8_t *ans, size_t len, const char *name, unsigned port,
		       struct dns_targets *out);
void dns_targets_free(struct dns_targets *out);

#endif
