/*
 * Relabel engine with Prometheus semantics (model/relabel), see
 * starling/relabel.h. Regexes are RE2 syntax run through PCRE2: compiled
 * once as ^(?s:REGEX)$ with $ matching only at the very end, so they are
 * fully anchored and '.' matches '\n' like Prometheus' NewRegexp; PCRE2-only
 * constructs (backreferences, lookaround, possessive quantifiers...) are
 * rejected so a rule means the same thing here as in Prometheus.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <starling/labels.h>
#include <starling/relabel.h>

#include "relabel_md5.h"

#include <errno.h>
#include <inttypes.h>
#include <pcre2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <locale.h>
#include <wctype.h>

struct relabel_rule {
	enum starling_relabel_action action;
	char **src;
	size_t n_src;
	char *sep;
	size_t sep_len;
	bool default_regex;
	pcre2_code *re;
	uint64_t modulus;
	char *target;
	bool target_var;
	char *replacement;
	bool replacement_var;
};

struct starling_relabel_rules {
	struct relabel_rule *r;
	size_t n;
	uint32_t max_pairs;
	/* Unicode case mapping for lowercase/uppercase (Go's strings.ToLower
	 * maps all of Unicode); (locale_t)0 when C.UTF-8 is unavailable, then
	 * only ASCII letters are mapped. */
	locale_t utf8;
};

static const char *const action_names[] = {
    [STARLING_RELABEL_REPLACE] = "replace",	[STARLING_RELABEL_KEEP] = "keep",
    [STARLING_RELABEL_DROP] = "drop",		[STARLING_RELABEL_KEEPEQUAL] = "keepequal",
    [STARLING_RELABEL_DROPEQUAL] = "dropequal", [STARLING_RELABEL_HASHMOD] = "hashmod",
    [STARLING_RELABEL_LABELMAP] = "labelmap",	[STARLING_RELABEL_LABELDROP] = "labeldrop",
    [STARLING_RELABEL_LABELKEEP] = "labelkeep", [STARLING_RELABEL_LOWERCASE] = "lowercase",
    [STARLING_RELABEL_UPPERCASE] = "uppercase",
};

#define DEFAULT_SEP   ";"
#define DEFAULT_REGEX "(.*)"
#define DEFAULT_REPL  "$1"

const struct starling_config_key starling_relabel_schema[] = {
    {"source_labels", STARLING_CFG_STRING_LIST, false, NULL,
     "labels whose values are joined with separator and matched against regex"},
    {"separator", STARLING_CFG_STRING, false, DEFAULT_SEP,
     "separator placed between concatenated source label values"},
    {"regex", STARLING_CFG_STRING, false, DEFAULT_REGEX,
     "RE2 regular expression, fully anchored, '.' matches newline"},
    {"modulus", STARLING_CFG_INT, false, NULL, "modulus for the hashmod action"},
    {"target_label", STARLING_CFG_STRING, false, NULL,
     "label the result is written to (replace may use $1, ${name})"},
    {"replacement", STARLING_CFG_STRING, false, DEFAULT_REPL,
     "value written for replace/labelmap; $1, ${1}, $name, ${name}, $$"},
    {"action", STARLING_CFG_STRING, false, "replace",
     "replace, keep, drop, keepequal, dropequal, hashmod, labelmap, labeldrop, labelkeep, "
     "lowercase, uppercase"},
    {NULL, 0, false, NULL, NULL},
};

/* ------------------------------------------------------------------------ */
/* Helpers.                                                                  */

/* A label name as Prometheus 3 validates it by default (UTF-8 validation,
 * model.LabelName.IsValid): non-empty valid UTF-8, so "utf-8.label" is a
 * valid target_label. */
static bool is_label_name(const char *s, size_t n)
{
	return n > 0 && memchr(s, 0, n) == NULL && starling_utf8_valid(s, n);
}

static bool word_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_';
}

/* Prometheus' relabelTarget: ^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$ --
 * a label name in which $name / ${name} references may appear. */
static bool is_name_template(const char *s)
{
	if (!*s)
		return false;
	while (*s) {
		if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_') {
			s++;
		} else if (*s == '$') {
			s++;
			if (*s == '{') {
				const char *b = ++s;

				while (word_char(*s))
					s++;
				if (s == b || *s != '}')
					return false;
				s++;
			} else {
				const char *b = s;

				while (word_char(*s))
					s++;
				if (s == b)
					return false;
			}
		} else if (*s >= '0' && *s <= '9') {
			/* \w* after at least one leading element */
			s++;
		} else {
			return false;
		}
	}
	/* A leading digit is not allowed. */
	return true;
}

/* A target_label / labelmap replacement with $1 / ${name} references:
 * under UTF-8 validation Prometheus 3 accepts any valid UTF-8 name
 * (model/relabel/relabel.go isValidLabelNameWithRegexVar); the legacy
 * pattern (relabelTargetLegacy) is kept as the fast accept. */
static bool name_template_ok(const char *s)
{
	return (!(*s >= '0' && *s <= '9') && is_name_template(s)) || is_label_name(s, strlen(s));
}

/* Reject constructs PCRE2 has but RE2 does not, so that a rule cannot
 * silently mean something Prometheus would refuse. Returns NULL or why. */
static const char *re2_unsupported(const char *re)
{
	bool cls = false;

	for (const char *p = re; *p; p++) {
		if (*p == '\\') {
			char c = p[1];

			if (!c)
				return NULL; /* PCRE2 reports the trailing backslash */
			if (!cls && c >= '1' && c <= '9')
				return "backreferences are not supported (RE2 syntax)";
			if (!cls && (c == 'g' || c == 'k' || c == 'K' || c == 'G' || c == 'Z' ||
				     c == 'R' || c == 'X' || c == 'C'))
				return "escape not supported in RE2 syntax";
			p++;
			continue;
		}
		if (cls) {
			if (*p == ']')
				cls = false;
			continue;
		}
		if (*p == '[') {
			cls = true;
			/* A ']' right after '[' or '[^' is literal. */
			if (p[1] == '^')
				p++;
			if (p[1] == ']')
				p++;
			continue;
		}
		if (*p == '(' && p[1] == '*')
			return "PCRE verbs are not supported (RE2 syntax)";
		if (*p == '(' && p[1] == '?') {
			const char *q = p + 2;

			if (*q == '=' || *q == '!' || (*q == '<' && (q[1] == '=' || q[1] == '!')))
				return "lookaround is not supported (RE2 syntax)";
			if (*q == '>' || *q == '|' || *q == '(' || *q == 'R' || *q == '&' ||
			    (*q >= '0' && *q <= '9') || *q == '+' ||
			    (*q == 'P' && (q[1] == '=' || q[1] == '>')))
				return "construct not supported in RE2 syntax";
		}
		if ((*p == '*' || *p == '+' || *p == '?' || *p == '}') && p[1] == '+')
			return "possessive quantifiers are not supported (RE2 syntax)";
	}
	return NULL;
}

static char *dupstr(const char *s)
{
	return s ? strdup(s) : NULL;
}

static void rule_free(struct relabel_rule *r)
{
	for (size_t i = 0; i < r->n_src; i++)
		free(r->src[i]);
	free(r->src);
	free(r->sep);
	free(r->target);
	free(r->replacement);
	if (r->re)
		pcre2_code_free(r->re);
}

void starling_relabel_rules_free(struct starling_relabel_rules *rules)
{
	if (!rules)
		return;
	for (size_t i = 0; i < rules->n; i++)
		rule_free(&rules->r[i]);
	if (rules->utf8)
		freelocale(rules->utf8);
	free(rules->r);
	free(rules);
}

size_t starling_relabel_rules_count(const struct starling_relabel_rules *rules)
{
	return rules ? rules->n : 0;
}

static int set_err(char *err, size_t errlen, size_t idx, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int set_err(char *err, size_t errlen, size_t idx, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!errlen)
		return -EINVAL;
	n = snprintf(err, errlen, "rule %zu: ", idx + 1);
	if (n < 0 || (size_t)n >= errlen)
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* Compile and validate one rule like Prometheus' RelabelConfig.Validate. */
static int rule_init(struct relabel_rule *r, const struct starling_relabel_config *c, size_t idx,
		     char *err, size_t errlen)
{
	const char *sep = c->separator ? c->separator : DEFAULT_SEP;
	const char *regex = c->regex ? c->regex : DEFAULT_REGEX;
	const char *repl = c->replacement ? c->replacement : DEFAULT_REPL;
	const char *target = c->target_label ? c->target_label : "";
	const char *action = c->action && *c->action ? c->action : "replace";
	enum starling_relabel_action a = STARLING_RELABEL_REPLACE;
	bool found = false, default_repl, default_regex, default_sep;
	const char *why;
	size_t plen;
	char *pat;
	int ecode;
	PCRE2_SIZE eoff;

	for (size_t i = 0; i < sizeof(action_names) / sizeof(action_names[0]); i++) {
		/* Prometheus and Alloy spell actions in lower case; the
		 * operator CRDs also allow CamelCase, so compare without case. */
		if (strcasecmp(action, action_names[i]) == 0) {
			a = (enum starling_relabel_action)i;
			found = true;
			break;
		}
	}
	if (!found)
		return set_err(err, errlen, idx, "unknown relabel action \"%s\"", action);
	r->action = a;
	default_repl = strcmp(repl, DEFAULT_REPL) == 0;
	default_regex = strcmp(regex, DEFAULT_REGEX) == 0;
	default_sep = strcmp(sep, DEFAULT_SEP) == 0;

	for (size_t i = 0; i < c->n_source_labels; i++)
		if (!is_label_name(c->source_labels[i], strlen(c->source_labels[i])))
			return set_err(err, errlen, idx, "\"%s\" is not a valid label name",
				       c->source_labels[i]);
	if (a == STARLING_RELABEL_HASHMOD && c->modulus == 0)
		return set_err(err, errlen, idx, "hashmod requires a non-zero modulus");
	if ((a == STARLING_RELABEL_REPLACE || a == STARLING_RELABEL_HASHMOD ||
	     a == STARLING_RELABEL_LOWERCASE || a == STARLING_RELABEL_UPPERCASE ||
	     a == STARLING_RELABEL_KEEPEQUAL || a == STARLING_RELABEL_DROPEQUAL) &&
	    !*target)
		return set_err(err, errlen, idx, "%s requires target_label", action_names[a]);
	if (a == STARLING_RELABEL_REPLACE && !name_template_ok(target))
		return set_err(err, errlen, idx, "\"%s\" is not a valid target_label for replace",
			       target);
	if ((a == STARLING_RELABEL_HASHMOD || a == STARLING_RELABEL_LOWERCASE ||
	     a == STARLING_RELABEL_UPPERCASE || a == STARLING_RELABEL_KEEPEQUAL ||
	     a == STARLING_RELABEL_DROPEQUAL) &&
	    !is_label_name(target, strlen(target)))
		return set_err(err, errlen, idx, "\"%s\" is not a valid target_label for %s",
			       target, action_names[a]);
	if ((a == STARLING_RELABEL_LOWERCASE || a == STARLING_RELABEL_UPPERCASE) && !default_repl)
		return set_err(err, errlen, idx, "replacement cannot be set for %s",
			       action_names[a]);
	if (a == STARLING_RELABEL_LABELMAP && !name_template_ok(repl))
		return set_err(err, errlen, idx, "\"%s\" is not a valid replacement for labelmap",
			       repl);
	if ((a == STARLING_RELABEL_KEEPEQUAL || a == STARLING_RELABEL_DROPEQUAL) &&
	    (c->n_source_labels == 0 || !default_regex || c->modulus || !default_sep ||
	     !default_repl))
		return set_err(err, errlen, idx,
			       "%s takes only source_labels and target_label, no other fields",
			       action_names[a]);
	if ((a == STARLING_RELABEL_LABELDROP || a == STARLING_RELABEL_LABELKEEP) &&
	    (c->n_source_labels || *target || c->modulus || !default_sep || !default_repl))
		return set_err(err, errlen, idx, "%s takes only regex, no other fields",
			       action_names[a]);

	why = re2_unsupported(regex);
	if (why)
		return set_err(err, errlen, idx, "regex \"%s\": %s", regex, why);
	plen = strlen(regex) + 16;
	pat = malloc(plen);
	if (!pat)
		return -ENOMEM;
	snprintf(pat, plen, "^(?s:%s)$", regex);
	r->re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED,
			      PCRE2_DOLLAR_ENDONLY | PCRE2_UTF | PCRE2_MATCH_INVALID_UTF |
				  PCRE2_NEVER_BACKSLASH_C,
			      &ecode, &eoff, NULL);
	free(pat);
	if (!r->re) {
		PCRE2_UCHAR msg[160];

		pcre2_get_error_message(ecode, msg, sizeof(msg));
		return set_err(err, errlen, idx, "invalid regex \"%s\": %s", regex, (char *)msg);
	}
	/* JIT is an optimisation only: without it pcre2_match interprets. */
	(void)pcre2_jit_compile(r->re, PCRE2_JIT_COMPLETE);
	r->default_regex = default_regex;

	r->src = calloc(c->n_source_labels ? c->n_source_labels : 1, sizeof(*r->src));
	if (!r->src)
		return -ENOMEM;
	for (size_t i = 0; i < c->n_source_labels; i++) {
		r->src[i] = strdup(c->source_labels[i]);
		if (!r->src[i])
			return -ENOMEM;
		r->n_src = i + 1;
	}
	r->sep = dupstr(sep);
	r->sep_len = strlen(sep);
	r->target = dupstr(target);
	r->replacement = dupstr(repl);
	if (!r->sep || !r->target || !r->replacement)
		return -ENOMEM;
	r->target_var = strchr(target, '$') != NULL;
	r->replacement_var = strchr(repl, '$') != NULL;
	r->modulus = c->modulus;
	return 0;
}

int starling_relabel_rules_new(const struct starling_relabel_config *cfgs, size_t n,
			       struct starling_relabel_rules **out, char *err, size_t errlen)
{
	struct starling_relabel_rules *rules = calloc(1, sizeof(*rules));
	int rc = 0;

	*out = NULL;
	if (errlen)
		err[0] = '\0';
	if (!rules)
		return -ENOMEM;
	rules->r = calloc(n ? n : 1, sizeof(*rules->r));
	if (!rules->r) {
		free(rules);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		uint32_t caps = 0;

		rules->n = i + 1;
		rc = rule_init(&rules->r[i], &cfgs[i], i, err, errlen);
		if (rc) {
			if (rc == -ENOMEM)
				set_err(err, errlen, i, "out of memory");
			starling_relabel_rules_free(rules);
			return rc;
		}
		pcre2_pattern_info(rules->r[i].re, PCRE2_INFO_CAPTURECOUNT, &caps);
		if (caps + 1 > rules->max_pairs)
			rules->max_pairs = caps + 1;
		if ((rules->r[i].action == STARLING_RELABEL_LOWERCASE ||
		     rules->r[i].action == STARLING_RELABEL_UPPERCASE) &&
		    !rules->utf8)
			rules->utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
	}
	*out = rules;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* From the configuration tree.                                              */

int starling_relabel_rules_from_config(const struct starling_host_api *api,
				       const starling_config *list,
				       struct starling_relabel_rules **out, char *err,
				       size_t errlen)
{
	size_t n = list ? api->config_count(list) : 0;
	struct starling_relabel_config *cfgs = calloc(n ? n : 1, sizeof(*cfgs));
	const char ***srcs = calloc(n ? n : 1, sizeof(*srcs));
	char inner[256];
	int rc = 0;

	*out = NULL;
	if (!cfgs || !srcs) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const starling_config *e = api->config_child(list, i);
		const starling_config *sl = api->config_lookup(e, "source_labels");
		struct starling_relabel_config *c = &cfgs[i];
		int64_t mod = 0;
		size_t ns = sl ? api->config_count(sl) : 0;

		srcs[i] = calloc(ns ? ns : 1, sizeof(*srcs[i]));
		if (!srcs[i]) {
			rc = -ENOMEM;
			goto out;
		}
		for (size_t j = 0; j < ns; j++) {
			if (api->config_string(api->config_child(sl, j), NULL, &srcs[i][j])) {
				snprintf(err, errlen,
					 "%s: relabel rule %zu: source_labels must be "
					 "strings",
					 api->config_where(e), i + 1);
				rc = -EINVAL;
				goto out;
			}
		}
		c->source_labels = srcs[i];
		c->n_source_labels = ns;
		if (api->config_string(e, "separator", &c->separator))
			c->separator = NULL;
		if (api->config_string(e, "regex", &c->regex))
			c->regex = NULL;
		if (api->config_string(e, "target_label", &c->target_label))
			c->target_label = NULL;
		if (api->config_string(e, "replacement", &c->replacement))
			c->replacement = NULL;
		if (api->config_string(e, "action", &c->action))
			c->action = NULL;
		if (api->config_int(e, "modulus", &mod) == 0) {
			if (mod < 0) {
				snprintf(err, errlen,
					 "%s: relabel rule %zu: modulus must not be "
					 "negative",
					 api->config_where(e), i + 1);
				rc = -EINVAL;
				goto out;
			}
			c->modulus = (uint64_t)mod;
		}
		/* Compile one at a time so the error names this rule's line. */
		{
			struct starling_relabel_rules *one;

			rc = starling_relabel_rules_new(c, 1, &one, inner, sizeof(inner));
			if (rc) {
				/* inner starts with "rule 1: " */
				const char *msg =
				    strncmp(inner, "rule 1: ", 8) == 0 ? inner + 8 : inner;

				snprintf(err, errlen, "%s: relabel rule %zu: %s",
					 api->config_where(e), i + 1, msg);
				goto out;
			}
			starling_relabel_rules_free(one);
		}
	}
	rc = starling_relabel_rules_new(cfgs, n, out, inner, sizeof(inner));
	if (rc)
		snprintf(err, errlen, "%s", inner);
out:
	if (rc == -ENOMEM && errlen)
		snprintf(err, errlen, "relabel rules: out of memory");
	if (srcs)
		for (size_t i = 0; i < n; i++)
			free(srcs[i]);
	free(srcs);
	free(cfgs);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Applying rules.                                                           */

void starling_relabel_scratch_init(struct starling_relabel_scratch *s)
{
	memset(s, 0, sizeof(*s));
}

void starling_relabel_scratch_free(struct starling_relabel_scratch *s)
{
	if (s->match_data)
		pcre2_match_data_free(s->match_data);
	free(s->a);
	free(s->b);
	starling_relabel_scratch_init(s);
}

static int grow(char **buf, size_t *cap, size_t need)
{
	size_t c = *cap ? *cap : 256;
	char *nb;

	if (need <= *cap)
		return 0;
	while (c < need)
		c *= 2;
	nb = realloc(*buf, c);
	if (!nb)
		return -ENOMEM;
	*buf = nb;
	*cap = c;
	return 0;
}

/* Join the source label values into s->a; returns the length or -ENOMEM. */
static long join_sources(const struct relabel_rule *r, const struct starling_lset *ls,
			 struct starling_relabel_scratch *s)
{
	size_t len = 0;

	if (grow(&s->a, &s->acap, 1))
		return -ENOMEM;
	for (size_t i = 0; i < r->n_src; i++) {
		const char *v = starling_lset_get(ls, r->src[i]);
		size_t vl = v ? strlen(v) : 0;
		size_t add = vl + (i ? r->sep_len : 0);

		if (grow(&s->a, &s->acap, len + add + 1))
			return -ENOMEM;
		if (i) {
			memcpy(s->a + len, r->sep, r->sep_len);
			len += r->sep_len;
		}
		if (vl)
			memcpy(s->a + len, v, vl);
		len += vl;
	}
	s->a[len] = '\0';
	return (long)len;
}

/* On a match, the number of valid ovector pairs (> 0); 0 when there is no
 * match or matching failed (e.g. a match limit), which Prometheus would also
 * treat as no match. */
static int re_match(const struct relabel_rule *r, const char *subj, size_t len,
		    struct starling_relabel_scratch *s)
{
	int rc = pcre2_match(r->re, (PCRE2_SPTR)subj, len, 0, 0, s->match_data, NULL);

	return rc > 0 ? rc : 0;
}

/* Append Go regexp.Expand(template) for the last match of r on subj to
 * s->b at offset *off. */
static int expand(const struct relabel_rule *r, const char *tmpl, const char *subj, int pairs_set,
		  struct starling_relabel_scratch *s, size_t *off)
{
	PCRE2_SIZE *ov = pcre2_get_ovector_pointer(s->match_data);
	/* Only the first pairs_set pairs belong to this match: later ones may
	 * hold offsets from an earlier match. */
	uint32_t pairs = (uint32_t)pairs_set;
	const char *t = tmpl;

	for (;;) {
		const char *d = strchr(t, '$');
		size_t lit = d ? (size_t)(d - t) : strlen(t);
		const char *name;
		size_t nlen;
		long num = -1;
		bool brace;

		if (grow(&s->b, &s->bcap, *off + lit + 1))
			return -ENOMEM;
		memcpy(s->b + *off, t, lit);
		*off += lit;
		if (!d)
			break;
		t = d + 1;
		if (*t == '$') {
			s->b[(*off)++] = '$';
			t++;
			continue;
		}
		brace = *t == '{';
		name = brace ? t + 1 : t;
		nlen = 0;
		while (word_char(name[nlen]))
			nlen++;
		if (nlen == 0 || (brace && name[nlen] != '}')) {
			/* Malformed reference: the '$' is literal text. */
			if (grow(&s->b, &s->bcap, *off + 2))
				return -ENOMEM;
			s->b[(*off)++] = '$';
			continue;
		}
		t = name + nlen + (brace ? 1 : 0);
		num = 0;
		for (size_t i = 0; i < nlen; i++) {
			if (name[i] < '0' || name[i] > '9' || num >= 100000000) {
				num = -1;
				break;
			}
			num = num * 10 + (name[i] - '0');
		}
		if (name[0] == '0' && nlen > 1)
			num = -1;
		if (num < 0) {
			char nm[128];
			int g;

			if (nlen >= sizeof(nm))
				continue;
			memcpy(nm, name, nlen);
			nm[nlen] = '\0';
			g = pcre2_substring_number_from_name(r->re, (PCRE2_SPTR)nm);
			if (g < 0)
				continue; /* unknown name: empty */
			num = g;
		}
		if ((uint32_t)num < pairs && ov[2 * num] != PCRE2_UNSET) {
			size_t a = ov[2 * num], b = ov[2 * num + 1];

			if (b > a) {
				if (grow(&s->b, &s->bcap, *off + (b - a) + 1))
					return -ENOMEM;
				memcpy(s->b + *off, subj + a, b - a);
				*off += b - a;
			}
		}
	}
	s->b[*off] = '\0';
	return 0;
}

static int apply_replace(const struct relabel_rule *r, struct starling_lset *ls,
			 struct starling_relabel_scratch *s, size_t vlen)
{
	size_t off = 0, toff, tlen, rlen;
	int rc, m;

	if (vlen == 0 && r->default_regex && !r->target_var && !r->replacement_var)
		return starling_lset_set(ls, r->target, strlen(r->target), r->replacement,
					 strlen(r->replacement)) == -ENOMEM
			   ? -ENOMEM
			   : 0;
	m = re_match(r, s->a, vlen, s);
	if (!m)
		return 0;
	rc = expand(r, r->target, s->a, m, s, &off);
	if (rc)
		return rc;
	tlen = off;
	if (!is_label_name(s->b, tlen))
		return 0;
	off++; /* keep the NUL between target and value */
	toff = off;
	rc = expand(r, r->replacement, s->a, m, s, &off);
	if (rc)
		return rc;
	rlen = off - toff;
	/* An empty value deletes the label (starling_lset_set semantics). */
	rc = starling_lset_set(ls, s->b, tlen, s->b + toff, rlen);
	return rc == -ENOMEM ? -ENOMEM : 0;
}

static int apply_hashmod(const struct relabel_rule *r, struct starling_lset *ls, size_t vlen,
			 struct starling_relabel_scratch *s)
{
	unsigned char sum[16];
	uint64_t h = 0;
	char num[24];
	int n;

	relabel_md5(s->a, vlen, sum);
	/* Prometheus' sum64 keeps the low 8 bytes, big-endian. */
	for (int i = 8; i < 16; i++)
		h = h << 8 | sum[i];
	n = snprintf(num, sizeof(num), "%" PRIu64, h % r->modulus);
	return starling_lset_set(ls, r->target, strlen(r->target), num, (size_t)n) == -ENOMEM
		   ? -ENOMEM
		   : 0;
}

/* One UTF-8 sequence at s (len bytes left): code point and length, or
 * length 0 when invalid. */
static size_t utf8_decode(const unsigned char *s, size_t len, uint32_t *cp)
{
	unsigned c = s[0];
	size_t n;
	uint32_t v;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c < 0xc2 || c > 0xf4)
		return 0;
	n = c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
	if (len < n)
		return 0;
	v = c & (0x7f >> n);
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		v = v << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && v < 0x800) || (n == 4 && v < 0x10000) || v > 0x10ffff ||
	    (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return n;
}

static size_t utf8_encode(uint32_t cp, char *out)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | cp >> 12);
		out[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | cp >> 18);
	out[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	out[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* lowercase/uppercase: the mapped value of s->a into the label. ASCII in
 * place; otherwise code point by code point into s->b (a mapping may change
 * the encoded length). Invalid UTF-8 bytes are kept as they are. */
static int apply_case(const struct starling_relabel_rules *rules, const struct relabel_rule *r,
		      struct starling_lset *ls, struct starling_relabel_scratch *s, size_t vlen)
{
	bool lower = r->action == STARLING_RELABEL_LOWERCASE;
	bool ascii = true;
	const char *val = s->a;
	size_t outlen = vlen;
	int rc;

	for (size_t j = 0; j < vlen; j++) {
		char c = s->a[j];

		if ((unsigned char)c & 0x80)
			ascii = false;
		else if (lower && c >= 'A' && c <= 'Z')
			s->a[j] = (char)(c - 'A' + 'a');
		else if (!lower && c >= 'a' && c <= 'z')
			s->a[j] = (char)(c - 'a' + 'A');
	}
	if (!ascii && rules->utf8) {
		const unsigned char *u = (const unsigned char *)s->a;

		if (grow(&s->b, &s->bcap, vlen * 2 + 4))
			return -ENOMEM;
		outlen = 0;
		for (size_t j = 0; j < vlen;) {
			uint32_t cp;
			size_t n = utf8_decode(u + j, vlen - j, &cp);

			if (!n) {
				s->b[outlen++] = s->a[j++];
				continue;
			}
			j += n;
			if (n > 1)
				cp = (uint32_t)(lower ? towlower_l((wint_t)cp, rules->utf8)
						      : towupper_l((wint_t)cp, rules->utf8));
			if (grow(&s->b, &s->bcap, outlen + 5))
				return -ENOMEM;
			outlen += utf8_encode(cp, s->b + outlen);
		}
		val = s->b;
	}
	rc = starling_lset_set(ls, r->target, strlen(r->target), val, outlen);
	return rc == -ENOMEM ? -ENOMEM : 0;
}

static int apply_labelmap(const struct relabel_rule *r, struct starling_lset *ls,
			  struct starling_relabel_scratch *s)
{
	size_t n = ls->n, len = 0;

	/* Snapshot the labels (as "name\0value\0" pairs in s->a): labels set
	 * below are not visited again, as in Prometheus' Builder.Range. */
	for (size_t i = 0; i < n; i++) {
		size_t a = strlen(ls->v[i].name) + 1, b = strlen(ls->v[i].value) + 1;

		if (grow(&s->a, &s->acap, len + a + b))
			return -ENOMEM;
		memcpy(s->a + len, ls->v[i].name, a);
		memcpy(s->a + len + a, ls->v[i].value, b);
		len += a + b;
	}
	for (size_t i = 0, pos = 0; i < n; i++) {
		const char *name = s->a + pos;
		size_t nl = strlen(name);
		const char *value = name + nl + 1;
		size_t vl = strlen(value), off = 0;
		int rc, m;

		pos += nl + vl + 2;
		m = re_match(r, name, nl, s);
		if (!m)
			continue;
		rc = expand(r, r->replacement, name, m, s, &off);
		if (rc)
			return rc;
		if (!is_label_name(s->b, off))
			continue;
		rc = starling_lset_set(ls, s->b, off, value, vl);
		if (rc == -ENOMEM)
			return rc;
	}
	return 0;
}

static void apply_labelkeepdrop(const struct relabel_rule *r, struct starling_lset *ls,
				struct starling_relabel_scratch *s, bool keep)
{
	size_t o = 0;

	for (size_t i = 0; i < ls->n; i++) {
		const char *name = ls->v[i].name;
		bool m = re_match(r, name, strlen(name), s) > 0;

		if (m == keep)
			ls->v[o++] = ls->v[i];
	}
	ls->n = o;
}

int starling_relabel_apply(const struct starling_relabel_rules *rules, struct starling_lset *ls,
			   struct starling_relabel_scratch *s)
{
	if (!rules || rules->n == 0)
		return 1;
	if (!s->match_data || s->match_pairs < rules->max_pairs) {
		if (s->match_data)
			pcre2_match_data_free(s->match_data);
		s->match_data = pcre2_match_data_create(rules->max_pairs, NULL);
		if (!s->match_data) {
			s->match_pairs = 0;
			return -ENOMEM;
		}
		s->match_pairs = rules->max_pairs;
	}
	for (size_t i = 0; i < rules->n; i++) {
		const struct relabel_rule *r = &rules->r[i];
		long vlen = 0;
		int rc = 0;

		if (r->action != STARLING_RELABEL_LABELMAP &&
		    r->action != STARLING_RELABEL_LABELDROP &&
		    r->action != STARLING_RELABEL_LABELKEEP) {
			vlen = join_sources(r, ls, s);
			if (vlen < 0)
				return -ENOMEM;
		}
		switch (r->action) {
		case STARLING_RELABEL_DROP:
			if (re_match(r, s->a, (size_t)vlen, s))
				return 0;
			break;
		case STARLING_RELABEL_KEEP:
			if (!re_match(r, s->a, (size_t)vlen, s))
				return 0;
			break;
		case STARLING_RELABEL_DROPEQUAL:
		case STARLING_RELABEL_KEEPEQUAL: {
			const char *t = starling_lset_get(ls, r->target);
			bool eq = strcmp(t ? t : "", s->a) == 0;

			if (eq == (r->action == STARLING_RELABEL_DROPEQUAL))
				return 0;
			break;
		}
		case STARLING_RELABEL_REPLACE:
			rc = apply_replace(r, ls, s, (size_t)vlen);
			break;
		case STARLING_RELABEL_HASHMOD:
			rc = apply_hashmod(r, ls, (size_t)vlen, s);
			break;
		case STARLING_RELABEL_LOWERCASE:
		case STARLING_RELABEL_UPPERCASE:
			rc = apply_case(rules, r, ls, s, (size_t)vlen);
			break;
		case STARLING_RELABEL_LABELMAP:
			rc = apply_labelmap(r, ls, s);
			break;
		case STARLING_RELABEL_LABELDROP:
			apply_labelkeepdrop(r, ls, s, false);
			break;
		case STARLING_RELABEL_LABELKEEP:
			apply_labelkeepdrop(r, ls, s, true);
			break;
		}
		if (rc)
			return rc;
	}
	return 1;
}
