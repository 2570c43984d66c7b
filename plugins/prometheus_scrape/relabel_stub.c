/* TEMPORARY: stands in for the SDK relabel engine until branch `parse`
 * lands it; built only when sdk/lib has no starling_relabel_apply. */
#include <errno.h>
#include <stdio.h>
#include <starling/relabel.h>

const struct starling_config_key starling_relabel_schema[] = {
	{ "source_labels", STARLING_CFG_STRING_LIST, false, NULL, "x" },
	{ "separator", STARLING_CFG_STRING, false, ";", "x" },
	{ "regex", STARLING_CFG_STRING, false, "(.*)", "x" },
	{ "modulus", STARLING_CFG_INT, false, NULL, "x" },
	{ "target_label", STARLING_CFG_STRING, false, NULL, "x" },
	{ "replacement", STARLING_CFG_STRING, false, "$1", "x" },
	{ "action", STARLING_CFG_STRING, false, "replace", "x" },
	{ NULL },
};

int starling_relabel_rules_from_config(const struct starling_host_api *api,
				       const starling_config *list,
				       struct starling_relabel_rules **out, char *err,
				       size_t errlen)
{
	*out = NULL;
	if (list && api->config_count(list)) {
		snprintf(err, errlen, "metric_relabel_config: relabel engine not built yet");
		return -EINVAL;
	}
	return 0;
}

void starling_relabel_rules_free(struct starling_relabel_rules *rules) { (void)rules; }
size_t starling_relabel_rules_count(const struct starling_relabel_rules *rules) { (void)rules; return 0; }
void starling_relabel_scratch_init(struct starling_relabel_scratch *s) { (void)s; }
void starling_relabel_scratch_free(struct starling_relabel_scratch *s) { (void)s; }
int starling_relabel_apply(const struct starling_relabel_rules *rules, struct starling_lset *ls,
			   struct starling_relabel_scratch *scratch)
{
	(void)rules; (void)ls; (void)scratch;
	return 1;
}
