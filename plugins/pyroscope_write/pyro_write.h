/*
 * pyroscope.write internals, shared with the unit tests
 * (tests/unit/plugins/pyroscope_write). Not an SDK interface.
 *
 *   pyro_push.c   PushRequest encoding, label rules, response classification
 *   pyro_write.c  config, queues, the sender thread, retries with back-off
 */
#ifndef PYROSCOPE_WRITE_H
#define PYROSCOPE_WRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <starling/plugin.h>

/* Connect unary RPC path of Pyroscope's push API, appended to endpoint.url. */
#define PYRO_PUSH_PATH "/push.v1.PusherService/Push"

/* Encode a push.v1.PushRequest with one RawProfileSeries holding one
 * RawSample (raw_profile = data, ID = id, or none when id is NULL or empty;
 * pyroscope.write passes none, as Alloy does):
 *   labels = the profile's labels minus every "__" label except __name__
 *   and __delta__, with `ext` (external_labels) overriding same-named ones,
 *   empty values dropped, sorted by name.
 * *out is one malloc'ed block (caller frees) of `headroom` bytes left for
 * the caller followed by the *out_len bytes of the message, so a queue item
 * header and the message share one allocation. 0 or -ENOMEM / -E2BIG.
 * Thread-safe. */
int pyro_push_encode(const struct starling_label *labels, size_t n,
		     const struct starling_label *ext, size_t n_ext, const uint8_t *data,
		     size_t len, const char *id, size_t headroom, uint8_t **out, size_t *out_len);

enum pyro_outcome {
	PYRO_SENT = 0,
	PYRO_RETRY, /* back off and send again */
	PYRO_DROP,  /* the server refused it for good */
};

/* Classify a push answer like Alloy's pyroscope.write over connect-go:
 * transport errors are retried. When the body is a Connect error
 * ({"code": "..."}) its code decides: deadline_exceeded, unknown,
 * resource_exhausted, internal, unavailable, data_loss, aborted are
 * retried, the rest dropped. Otherwise the status is mapped as connect-go
 * does: 400, 401, 403, 404 and 412 are dropped, every other status
 * (408, 413, 429, 431, 5xx, other 4xx) retried. */
enum pyro_outcome pyro_classify(int error, long status, const char *content_type,
				const uint8_t *body, size_t len);

/* Back-off before attempt `attempt` (1 = first retry): min doubled per
 * attempt, capped at max; a server's Retry-After (>= 0) wins if longer. */
int64_t pyro_backoff_ms(unsigned attempt, int64_t min_ms, int64_t max_ms, int64_t retry_after_ms);

extern const struct starling_component_type pyroscope_write_type;

#endif
