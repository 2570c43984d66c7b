/*
 * A plugin built against the ABI 1.0 header (tests/abi/v1_0, a frozen copy):
 * it must keep loading and running on this host. Its producer forwards a
 * series batch laid out as 1.0 defines it, followed in memory by bytes a
 * 1.1 reader would misread as `ext` if the host did not zero-extend it; it
 * also registers a self-metric with the 1.0 "k=v" label string.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <starling/plugin.h>

#if STARLING_ABI_MINOR != 0
#error "fixture_v1_0.c must be built against the frozen ABI 1.0 header"
#endif

struct v10 {
	const struct starling_host_api *api;
	starling_component *self;
};

static int create(const struct starling_host_api *api, starling_component *self,
		  const starling_config *cfg, void **out)
{
	struct v10 *p = calloc(1, sizeof(*p));

	if (!p)
		return -12;
	p->api = api;
	p->self = self;
	*out = p;
	return 0;
}

/* A 1.0 batch with poison where 1.1 appended ext/ext_size. */
struct poisoned_batch {
	struct starling_series_batch b;
	uint64_t poison[2];
};

static int start(void *inst)
{
	struct v10 *p = inst;
	struct starling_label l[] = {{"__name__", "abi_v1_0_up"}, {"job", "abi"}};
	double v = 1;
	int64_t ts = 1000;
	struct starling_series s = {
	    .labels = l, .n_labels = 2, .values = &v, .timestamps_ms = &ts, .n_samples = 1};
	struct poisoned_batch pb = {
	    .b = {.series = &s, .n_series = 1},
	    .poison = {UINT64_C(0xdeadbeefdeadbeef), UINT64_C(0xdeadbeefdeadbeef)}};
	starling_metric *m;

	m = p->api->metric_register(p->self, STARLING_SELF_COUNTER, "abi_v1_0_starts_total",
				    "starts", "kind=fixture");
	if (!m)
		return -22;
	p->api->metric_add(m, 1);
	return p->api->forward_series(p->self, &pb.b);
}

static void destroy(void *inst)
{
	free(inst);
}

static const struct starling_config_key v10_schema[] = {
    {.name = "forward_to", .type = STARLING_CFG_REF_LIST, .ref_accepts = STARLING_ACCEPTS_SERIES},
    {0},
};

static const struct starling_component_type v10_type = {
    .struct_size = sizeof(struct starling_component_type),
    .name = "abi.v1_0",
    .help = "ABI 1.0 fixture: forwards one batch at start",
    .schema = v10_schema,
    .create = create,
    .start = start,
    .destroy = destroy,
};

static const struct starling_component_type *const types[] = {&v10_type};

static const struct starling_plugin_descriptor descriptor = {
    STARLING_DESCRIPTOR_HEAD, .name = "abi_v1_0", .version = "1", .types = types, .n_types = 1,
};

STARLING_PLUGIN(descriptor)
