/*
 * Rendering of the /targets page (see targets_page.h).
 */
#include "targets_page.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *str_of(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsString(v) ? v->valuestring : "";
}

static double num_of(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static void html(FILE *f, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '<':
			fputs("&lt;", f);
			break;
		case '>':
			fputs("&gt;", f);
			break;
		case '&':
			fputs("&amp;", f);
			break;
		case '"':
			fputs("&quot;", f);
			break;
		case '\'':
			fputs("&#39;", f);
			break;
		default:
			fputc(*s, f);
		}
	}
}

/* Percent-encode for a query value. */
static void url(FILE *f, const char *s)
{
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_' || c == '.' || c == '~')
			fputc(c, f);
		else
			fprintf(f, "%%%02X", c);
	}
}

/* "12 s ago", "3 min ago", "2 h ago", "never". */
static void ago(char *buf, size_t len, double now_ms, double ts_ms)
{
	double s;

	if (ts_ms <= 0) {
		snprintf(buf, len, "never");
		return;
	}
	s = (now_ms - ts_ms) / 1000;
	if (s < 0)
		s = 0;
	if (s < 120)
		snprintf(buf, len, "%.0f s ago", s);
	else if (s < 7200)
		snprintf(buf, len, "%.0f min ago", s / 60);
	else
		snprintf(buf, len, "%.0f h ago", s / 3600);
}

static const char *health_class(const char *h)
{
	if (!strcmp(h, "up") || !strcmp(h, "healthy") || !strcmp(h, "alive") ||
	    !strcmp(h, "participant") || !strcmp(h, "ok") || !strcmp(h, "this node"))
		return "ok";
	if (!*h)
		return "muted";
	return "bad";
}

static const char page_head[] =
    "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<title>Starling targets</title>\n<style>\n"
    "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}\n"
    "h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.1em;margin:1.4em 0 .4em}\n"
    "table{border-collapse:collapse;width:100%}\n"
    "th,td{text-align:left;padding:.25em .6em;border-bottom:1px solid #ddd;vertical-align:top}\n"
    "th{background:#f4f4f4}.ok{color:#14792b}.bad{color:#b3261e}.muted{color:#666}\n"
    "form{display:flex;flex-wrap:wrap;gap:.6em 1.2em;align-items:center;margin:.8em 0}\n"
    "a{color:#0645ad}a:focus,button:focus,input:focus,select:focus{outline:2px solid "
    "#0645ad;outline-offset:2px}\n"
    "code{font-size:12px}\n</style>\n</head>\n<body";

static void filter_form(FILE *f, const cJSON *view, const struct targets_filter *flt)
{
	const cJSON *c;

	fputs("<form method=\"get\" action=\"/targets\" role=\"search\" aria-label=\"filter "
	      "targets\">\n<label>Component <select name=\"component\" id=\"f-component\">"
	      "<option value=\"\">all</option>",
	      f);
	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(view, "components"))
	{
		const char *id = str_of(c, "id");

		if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "has_targets")))
			continue;
		fputs("<option value=\"", f);
		html(f, id);
		fprintf(f, "\"%s>",
			flt->component && !strcmp(flt->component, id) ? " selected" : "");
		html(f, id);
		fputs("</option>", f);
	}
	fputs("</select></label>\n<label>Job <select name=\"job\" id=\"f-job\"><option "
	      "value=\"\">all</option>",
	      f);
	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(view, "jobs"))
	{
		fputs("<option value=\"", f);
		html(f, c->valuestring);
		fprintf(f, "\"%s>",
			flt->job && !strcmp(flt->job, c->valuestring) ? " selected" : "");
		html(f, c->valuestring);
		fputs("</option>", f);
	}
	fputs("</select></label>\n<label>Search <input type=\"search\" name=\"q\" id=\"f-q\" "
	      "value=\"",
	      f);
	html(f, flt->q);
	fprintf(f,
		"\" placeholder=\"label, owner or error\"></label>\n"
		"<label><input type=\"checkbox\" name=\"unhealthy\" value=\"1\" "
		"id=\"f-unhealthy\"%s> unhealthy only</label>\n"
		"<button type=\"submit\">Apply</button> <a href=\"/targets\">clear filters</a>\n"
		"</form>\n",
		flt->unhealthy ? " checked" : "");
}

static void nodes_table(FILE *f, const cJSON *view)
{
	const cJSON *n;

	fputs("<h2>Nodes</h2>\n<table id=\"nodes\"><thead><tr><th scope=\"col\">name</th>"
	      "<th scope=\"col\">state</th><th scope=\"col\">gossip address</th>"
	      "<th scope=\"col\">HTTP address</th><th scope=\"col\">targets view</th></tr>"
	      "</thead><tbody>\n",
	      f);
	cJSON_ArrayForEach(n, cJSON_GetObjectItemCaseSensitive(view, "nodes"))
	{
		const char *answer = str_of(n, "answer");

		fputs("<tr><td>", f);
		html(f, str_of(n, "name"));
		fprintf(f, "</td><td class=\"%s\">", health_class(str_of(n, "state")));
		html(f, str_of(n, "state"));
		fputs("</td><td>", f);
		html(f, str_of(n, "address"));
		fputs("</td><td>", f);
		html(f, str_of(n, "http"));
		fprintf(f, "</td><td class=\"%s\">", health_class(answer));
		if (*answer && strcmp(answer, "ok") && strcmp(answer, "this node"))
			fputs("no answer: ", f);
		html(f, *answer ? answer : "not asked (owns no listed target)");
		fputs("</td></tr>\n", f);
	}
	fputs("</tbody></table>\n", f);
}

static void components_table(FILE *f, const cJSON *view)
{
	const cJSON *c;

	fputs("<h2>Components</h2>\n<table id=\"components\"><thead><tr><th "
	      "scope=\"col\">id</th><th scope=\"col\">type</th><th scope=\"col\">health</th>"
	      "<th scope=\"col\">message</th><th scope=\"col\">targets owned / total</th>"
	      "</tr></thead><tbody>\n",
	      f);
	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(view, "components"))
	{
		const char *id = str_of(c, "id");

		fputs("<tr><td>", f);
		if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "has_targets"))) {
			fputs("<a href=\"/targets?component=", f);
			url(f, id);
			fputs("\">", f);
			html(f, id);
			fputs("</a>", f);
		} else {
			html(f, id);
		}
		fputs("</td><td>", f);
		html(f, str_of(c, "type"));
		fprintf(f, "</td><td class=\"%s\">", health_class(str_of(c, "health")));
		html(f, str_of(c, "health"));
		fputs("</td><td>", f);
		html(f, str_of(c, "message"));
		fprintf(f, "</td><td>%.0f / %.0f</td></tr>\n", num_of(c, "owned_targets"),
			num_of(c, "total_targets"));
	}
	fputs("</tbody></table>\n", f);
}

static void targets_table(FILE *f, const cJSON *view, double now_ms)
{
	const cJSON *t, *rows = cJSON_GetObjectItemCaseSensitive(view, "targets");

	fprintf(f,
		"<h2>Targets <span class=\"muted\" id=\"count\">(%d shown)</span></h2>\n"
		"<table id=\"targets\"><thead><tr><th scope=\"col\">job</th><th "
		"scope=\"col\">instance</th><th scope=\"col\">component</th><th "
		"scope=\"col\">owner</th><th scope=\"col\">last scrape</th><th "
		"scope=\"col\">duration</th><th scope=\"col\">health</th><th "
		"scope=\"col\">last error</th><th scope=\"col\">labels</th></tr></thead><tbody>\n",
		cJSON_GetArraySize(rows));
	cJSON_ArrayForEach(t, rows)
	{
		const cJSON *labels = cJSON_GetObjectItemCaseSensitive(t, "labels"), *l;
		const char *view_kind = str_of(t, "view"), *health = str_of(t, "health");
		bool no_answer = !strcmp(view_kind, "no answer");
		double ts = num_of(t, "last_scrape_ms");
		char when[32];

		ago(when, sizeof(when), now_ms, ts);
		fprintf(f, "<tr data-health=\"%s\" data-owner=\"",
			no_answer ? "no answer" : health);
		html(f, str_of(t, "owner"));
		fputs("\"><td>", f);
		html(f, str_of(labels, "job"));
		fputs("</td><td>", f);
		html(f, str_of(labels, "instance"));
		fputs("</td><td><a href=\"/targets?component=", f);
		url(f, str_of(t, "component"));
		fputs("\">", f);
		html(f, str_of(t, "component"));
		fputs("</a></td><td>", f);
		html(f, str_of(t, "owner"));
		if (no_answer) {
			fputs("</td><td class=\"muted\">—</td><td class=\"muted\">—</td>"
			      "<td class=\"bad\">no answer</td><td class=\"muted\">",
			      f);
			html(f, str_of(t, "view_error"));
		} else {
			fprintf(f, "</td><td class=\"ago\" data-ts=\"%.0f\">%s</td>", ts, when);
			fprintf(f, "<td>%.3f s</td><td class=\"%s\">",
				num_of(t, "last_duration_seconds"), health_class(health));
			html(f, health);
			fputs("</td><td>", f);
			html(f, str_of(t, "last_error"));
		}
		fputs("</td><td><code>", f);
		cJSON_ArrayForEach(l, labels)
		{
			html(f, l->string);
			fputs("=&quot;", f);
			html(f, cJSON_IsString(l) ? l->valuestring : "");
			fputs(l->next ? "&quot;, " : "&quot;", f);
		}
		fputs("</code></td></tr>\n", f);
	}
	fputs("</tbody></table>\n", f);
}

/* Keeps "N s ago" current; the page is complete without it. */
static const char page_script[] =
    "<script>\n\"use strict\";\n(function () {\n"
    "  const loaded = Date.now(), gen = Number(document.body.dataset.generated);\n"
    "  function fmt(s) {\n"
    "    if (s < 120) return Math.round(s) + \" s ago\";\n"
    "    if (s < 7200) return Math.round(s / 60) + \" min ago\";\n"
    "    return Math.round(s / 3600) + \" h ago\";\n  }\n"
    "  function tick() {\n"
    "    const now = gen + (Date.now() - loaded);\n"
    "    for (const td of document.querySelectorAll(\"td.ago\")) {\n"
    "      const ts = Number(td.dataset.ts);\n"
    "      td.textContent = ts > 0 ? fmt(Math.max(0, now - ts) / 1000) : \"never\";\n"
    "    }\n  }\n  setInterval(tick, 1000);\n})();\n</script>\n";

char *targets_page_html(const cJSON *view, const struct targets_filter *flt)
{
	double now = num_of(view, "generated_ms");
	char *buf = NULL, stamp[32];
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	time_t secs = (time_t)(now / 1000);
	struct tm tm;

	if (!f)
		return NULL;
	gmtime_r(&secs, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S UTC", &tm);
	fputs(page_head, f);
	/* The generation time drives the script's "ago" ticking. */
	fprintf(f, " data-generated=\"%.0f\">\n", now);
	fprintf(f, "<h1>Targets across the cluster</h1>\n<p class=\"muted\">Node <b>");
	html(f, str_of(view, "node"));
	fprintf(f,
		"</b> · generated %s · each target shows its owner's view · "
		"<a href=\"/\">components (live page)</a> · <a href=\"/api/v0/targets",
		stamp);
	fputs("\">JSON</a></p>\n", f);
	filter_form(f, view, flt);
	targets_table(f, view, now);
	nodes_table(f, view);
	components_table(f, view);
	fputs(page_script, f);
	fputs("</body>\n</html>\n", f);
	if (fclose(f)) {
		free(buf);
		return NULL;
	}
	return buf;
}
