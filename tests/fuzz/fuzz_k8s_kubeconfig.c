/* libFuzzer: kubeconfig YAML -> resolved context (sdk/lib/k8s_config.c). */
#include <stdint.h>
#include <stdlib.h>

#include <starling/k8s.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct starling_k8s_kubeconfig k;
	char err[256];

	if (starling_k8s_kubeconfig_parse((const char *)data, size, "/base", NULL, &k, err,
					  sizeof(err)) == 0)
		starling_k8s_kubeconfig_free(&k);
	return 0;
}
