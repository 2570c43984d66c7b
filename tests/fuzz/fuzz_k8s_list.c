/* libFuzzer: a LIST response body -> items (sdk/lib/k8s_decode.c), each
 * item pruned, stored and turned into every role's meta labels. */
#include <stdint.h>
#include <stdlib.h>

#include <starling/k8s.h>

static int count(void *arg, const struct starling_lset *t)
{
	(*(size_t *)arg) += t->n;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct starling_k8s_list l;
	struct starling_k8s_store s = {0};
	struct starling_k8s_meta m;
	char err[256];
	size_t n = 0;
	cJSON *it;

	if (starling_k8s_list_decode((const char *)data, size, &l, err, sizeof(err)))
		return 0;
	starling_k8s_meta_init(&m);
	m.pods = m.services = m.nodes = m.namespaces = &s;
	m.attach_node = m.attach_namespace = true;
	while ((it = cJSON_DetachItemFromArray(l.items, 0))) {
		starling_k8s_prune(it, (size & 1) ? STARLING_K8S_POD : STARLING_K8S_OTHER);
		starling_k8s_store_put(&s, it, 0);
	}
	for (size_t i = 0; i < s.n; i++)
		for (int r = 0; r <= STARLING_K8S_ROLE_NODE; r++)
			starling_k8s_targets(&m, (enum starling_k8s_role)r, s.v[i].obj, count, &n);
	starling_k8s_meta_free(&m);
	starling_k8s_store_clear(&s, -1);
	starling_k8s_list_free(&l);
	return 0;
}
