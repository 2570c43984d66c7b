/* libFuzzer: a watch stream in chunks (the first byte picks the chunk
 * size) -> events (sdk/lib/k8s_decode.c), applied to a store. */
#include <stdint.h>
#include <stdlib.h>

#include <starling/k8s.h>

static int apply(void *arg, struct starling_k8s_event *ev)
{
	struct starling_k8s_store *s = arg;

	if (ev->type == STARLING_K8S_ADDED || ev->type == STARLING_K8S_MODIFIED) {
		starling_k8s_prune(ev->object, STARLING_K8S_POD);
		starling_k8s_store_put(s, ev->object, 0);
		ev->object = NULL;
	} else if (ev->type == STARLING_K8S_DELETED) {
		starling_k8s_store_del(s, ev->object);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct starling_k8s_event_decoder d = {.line_limit = 1 << 16};
	struct starling_k8s_store s = {0};
	size_t chunk;
	char err[256];

	if (!size)
		return 0;
	chunk = (size_t)data[0] % 64 + 1;
	data++;
	size--;
	for (size_t off = 0; off < size; off += chunk) {
		size_t n = size - off < chunk ? size - off : chunk;

		if (starling_k8s_events_feed(&d, (const char *)data + off, n, apply, &s, err,
					     sizeof(err))) {
			starling_k8s_events_reset(&d);
		}
	}
	starling_k8s_events_free(&d);
	starling_k8s_store_clear(&s, -1);
	return 0;
}
