/*
 * Fuzz what a peer sends back for the cluster-wide targets page: the bytes
 * of its GET /api/v0/targets?scope=local answer are parsed, merged into
 * local rows (matched by component and key) and rendered as the /targets
 * page. Nothing may crash, leak or hang; a malformed answer is only refused.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "targets_page.h"
#include "targets_view.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct targets_filter f = {.q = "a", .unhealthy = false};
	cJSON *answer = NULL, *view, *rows;
	char *page;

	if (targets_view_parse_answer((const char *)data, size, &answer))
		return 0;
	view = cJSON_CreateObject();
	rows = cJSON_AddArrayToObject(view, "targets");
	for (int i = 0; i < 3; i++) {
		cJSON *r = cJSON_CreateObject();
		char key[24];

		snprintf(key, sizeof(key), "0x%016d", i);
		cJSON_AddStringToObject(r, "component", "prometheus.scrape.a");
		cJSON_AddStringToObject(r, "key", key);
		cJSON_AddStringToObject(r, "owner", "peer");
		cJSON_AddItemToArray(rows, r);
		targets_view_fill_row(r, answer);
	}
	/* The answer's own rows rendered as if they were local ones. */
	cJSON_AddItemToObject(view, "components",
			      cJSON_Duplicate(cJSON_GetObjectItem(answer, "targets"), true));
	page = targets_page_html(view, &f);
	free(page);
	cJSON_Delete(view);
	cJSON_Delete(answer);
	return 0;
}
