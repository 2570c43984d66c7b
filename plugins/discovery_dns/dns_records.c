/* DNS answer records → targets, with glibc's libresolv message parser
 * (ns_initparse/ns_parserr/ns_name_uncompress). Labels as Prometheus sets
 * them: discovery/dns/dns.go refreshOne. */
#include "dns_records.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const label_names[DNS_N_LABELS] = {
    "__address__",
    "__meta_dns_name",
    "__meta_dns_srv_record_target",
    "__meta_dns_srv_record_port",
    "__meta_dns_mx_record_target",
    "__meta_dns_ns_record_target",
};

void dns_targets_free(struct dns_targets *out)
{
	for (size_t i = 0; i < out->n; i++)
		for (int j = 0; j < DNS_N_LABELS; j++)
			free((char *)out->t[i].labels[j].value);
	free(out->t);
	memset(out, 0, sizeof(*out));
}

/* Append a target; values[] may hold NULL (empty). */
static int add(struct dns_targets *out, const char *const values[DNS_N_LABELS])
{
	struct dns_target *t;

	if (out->n == out->cap) {
		size_t ncap = out->cap ? out->cap * 2 : 8;
		struct dns_target *nt = realloc(out->t, ncap * sizeof(*nt));

		if (!nt)
			return -ENOMEM;
		out->t = nt;
		out->cap = ncap;
	}
	t = &out->t[out->n];
	for (int j = 0; j < DNS_N_LABELS; j++) {
		t->labels[j].name = label_names[j];
		t->labels[j].value = strdup(values[j] ? values[j] : "");
		if (!t->labels[j].value) {
			while (j-- > 0)
				free((char *)t->labels[j].value);
			return -ENOMEM;
		}
	}
	out->n++;
	return 0;
}

/* A domain name from rdata as the Go DNS library prints it: fully
 * qualified, with the trailing dot ("." for the root). */
static int rdata_name(const ns_msg *msg, const uint8_t *p, char *fqdn, size_t size)
{
	char buf[NS_MAXDNAME];
	size_t n;

	if (ns_name_uncompress(ns_msg_base(*msg), ns_msg_end(*msg), p, buf, sizeof(buf)) < 0)
		return -EBADMSG;
	n = strlen(buf);
	if (n + 2 > size)
		return -EBADMSG;
	memcpy(fqdn, buf, n);
	if (n == 0 || fqdn[n - 1] != '.')
		fqdn[n++] = '.';
	fqdn[n] = 0;
	return 0;
}

/* "host:port" (JoinHostPort: IPv6 bracketed), the host's trailing dot cut. */
static void host_port(char *out, size_t size, const char *host, unsigned port)
{
	size_t n = strlen(host);

	while (n && host[n - 1] == '.') /* strings.TrimRight(target, ".") */
		n--;
	if (memchr(host, ':', n))
		snprintf(out, size, "[%.*s]:%u", (int)n, host, port);
	else
		snprintf(out, size, "%.*s:%u", (int)n, host, port);
}

int dns_answer_targets(const uint8_t *ans, size_t len, const char *name, unsigned port,
		       struct dns_targets *out)
{
	ns_msg msg;
	ns_rr rr;
	int count;

	if (len > 65535 || ns_initparse(ans, (int)len, &msg) < 0)
		return -EBADMSG;
	count = ns_msg_count(msg, ns_s_an);
	for (int i = 0; i < count; i++) {
		const char *v[DNS_N_LABELS] = {0};
		char target[NS_MAXDNAME + 2], addr[NS_MAXDNAME + 16], ip[INET6_ADDRSTRLEN];
		char sport[8];
		const uint8_t *rd;
		unsigned rdlen;
		int r;

		if (ns_parserr(&msg, ns_s_an, i, &rr) < 0)
			return -EBADMSG;
		rd = ns_rr_rdata(rr);
		rdlen = ns_rr_rdlen(rr);
		v[DNS_L_NAME] = name;
		switch (ns_rr_type(rr)) {
		case ns_t_srv:
			if (rdlen < 7 || rdata_name(&msg, rd + 6, target, sizeof(target)))
				return -EBADMSG;
			snprintf(sport, sizeof(sport), "%u", (unsigned)(rd[4] << 8 | rd[5]));
			host_port(addr, sizeof(addr), target, (unsigned)(rd[4] << 8 | rd[5]));
			v[DNS_L_SRV_TARGET] = target;
			v[DNS_L_SRV_PORT] = sport;
			break;
		case ns_t_mx:
			if (rdlen < 3 || rdata_name(&msg, rd + 2, target, sizeof(target)))
				return -EBADMSG;
			host_port(addr, sizeof(addr), target, port);
			v[DNS_L_MX_TARGET] = target;
			break;
		case ns_t_ns:
			if (rdlen < 1 || rdata_name(&msg, rd, target, sizeof(target)))
				return -EBADMSG;
			host_port(addr, sizeof(addr), target, port);
			v[DNS_L_NS_TARGET] = target;
			break;
		case ns_t_a:
			if (rdlen != 4 || !inet_ntop(AF_INET, rd, ip, sizeof(ip)))
				return -EBADMSG;
			host_port(addr, sizeof(addr), ip, port);
			break;
		case ns_t_aaaa:
			if (rdlen != 16 || !inet_ntop(AF_INET6, rd, ip, sizeof(ip)))
				return -EBADMSG;
			host_port(addr, sizeof(addr), ip, port);
			break;
		case ns_t_cname: /* comes with A/AAAA answers for an alias */
			continue;
		default:
			out->skipped++;
			continue;
		}
		v[DNS_L_ADDRESS] = addr;
		r = add(out, v);
		if (r)
			return r;
	}
	return 0;
}
