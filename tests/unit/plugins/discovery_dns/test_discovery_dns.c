/* discovery.dns: answer records → target labels (crafted DNS responses) and
 * config checks through the mock host. The lookups themselves run against a
 * real dnsmasq in tests/integration/discovery/dns_dnsmasq.sh. */
#include <CUnit/Basic.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <starling/plugin.h>
#include "dns_records.h"
#include "mock_host.h"

const struct starling_plugin_descriptor *starling_plugin_entry(void);

/* A response message: header, one question, then answers added by rr_*. */
struct msg {
	uint8_t b[4096];
	size_t len;
	unsigned an;
};

static void put16(struct msg *m, unsigned v)
{
	m->b[m->len++] = (uint8_t)(v >> 8);
	m->b[m->len++] = (uint8_t)v;
}

static void put_name(struct msg *m, const char *name)
{
	while (*name) {
		const char *dot = strchr(name, '.');
		size_t n = dot ? (size_t)(dot - name) : strlen(name);

		m->b[m->len++] = (uint8_t)n;
		memcpy(m->b + m->len, name, n);
		m->len += n;
		name += n + (dot ? 1 : 0);
	}
	m->b[m->len++] = 0;
}

static void msg_init(struct msg *m, const char *qname, unsigned qtype)
{
	memset(m, 0, sizeof(*m));
	put16(m, 0x1234);
	put16(m, 0x8180);
	put16(m, 1);
	m->len = 12;
	put_name(m, qname);
	put16(m, qtype);
	put16(m, ns_c_in);
}

/* Answer owned by the question name (pointer 0xc00c); rdata given raw. */
static void rr(struct msg *m, unsigned type, const void *rdata, size_t rdlen)
{
	put16(m, 0xc00c);
	put16(m, type);
	put16(m, ns_c_in);
	put16(m, 0);
	put16(m, 60);
	put16(m, (unsigned)rdlen);
	memcpy(m->b + m->len, rdata, rdlen);
	m->len += rdlen;
	m->an++;
	m->b[6] = (uint8_t)(m->an >> 8);
	m->b[7] = (uint8_t)m->an;
}

static size_t enc_name(uint8_t *out, const char *name)
{
	struct msg t = {0};

	put_name(&t, name);
	memcpy(out, t.b, t.len);
	return t.len;
}

static void srv(struct msg *m, unsigned port, const char *target)
{
	uint8_t rd[300] = {0, 10, 0, 5, (uint8_t)(port >> 8), (uint8_t)port};

	rr(m, ns_t_srv, rd, 6 + enc_name(rd + 6, target));
}

static const char *lv(const struct dns_target *t, int i)
{
	return t->labels[i].value;
}

/* Labels per record type as Prometheus discovery/dns/dns.go refreshOne sets
 * them: every target carries all five __meta_dns_* labels, unused ones empty;
 * SRV/MX/NS keep the trailing dot in their *_target label and lose it in
 * __address__; AAAA addresses are bracketed (net.JoinHostPort). */
static void test_records(void)
{
	struct dns_targets out = {0};
	struct msg m;
	uint8_t a[4] = {10, 0, 0, 7}, aaaa[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1}, rd[300];

	msg_init(&m, "_web._tcp.example", ns_t_srv);
	srv(&m, 8080, "web1.example");
	srv(&m, 9090, "web2.example");
	CU_ASSERT_EQUAL_FATAL(dns_answer_targets(m.b, m.len, "_web._tcp.example", 0, &out), 0);
	CU_ASSERT_EQUAL_FATAL(out.n, 2);
	CU_ASSERT_STRING_EQUAL(out.t[0].labels[DNS_L_ADDRESS].name, "__address__");
	CU_ASSERT_STRING_EQUAL(lv(&out.t[0], DNS_L_ADDRESS), "web1.example:8080");
	CU_ASSERT_STRING_EQUAL(lv(&out.t[0], DNS_L_NAME), "_web._tcp.example");
	CU_ASSERT_STRING_EQUAL(lv(&out.t[0], DNS_L_SRV_TARGET), "web1.example.");
	CU_ASSERT_STRING_EQUAL(lv(&out.t[0], DNS_L_SRV_PORT), "8080");
	CU_ASSERT_STRING_EQUAL(lv(&out.t[0], DNS_L_MX_TARGET), "");
	CU_ASSERT_STRING_EQUAL(lv(&out.t[0], DNS_L_NS_TARGET), "");
	CU_ASSERT_STRING_EQUAL(lv(&out.t[1], DNS_L_ADDRESS), "web2.example:9090");
	dns_targets_free(&out);

	/* A + AAAA + a CNAME (skipped silently) + a TXT (skipped, counted) */
	msg_init(&m, "hosts.example", ns_t_a);
	rr(&m, ns_t_cname, rd, enc_name(rd, "real.example"));
	rr(&m, ns_t_a, a, 4);
	rr(&m, ns_t_aaaa, aaaa, 16);
	rr(&m, ns_t_txt, "\003abc", 4);
	CU_ASSERT_EQUAL_FATAL(dns_answer_targets(m.b, m.len, "hosts.example", 9100, &out), 0);
	CU_ASSERT_EQUAL_FATAL(out.n, 2);
	CU_ASSERT_EQUAL(out.skipped, 1);
	CU_ASSERT_STRING_EQUAL(lv(&out.t[0], DNS_L_ADDRESS), "10.0.0.7:9100");
	CU_ASSERT_STRING_EQUAL(lv(&out.t[0], DNS_L_SRV_TARGET), "");
	CU_ASSERT_STRING_EQUAL(lv(&out.t[0], DNS_L_SRV_PORT), "");
	CU_ASSERT_STRING_EQUAL(lv(&out.t[1], DNS_L_ADDRESS), "[2001:db8::1]:9100");
	dns_targets_free(&out);

	/* MX and NS use the configured port */
	msg_init(&m, "example", ns_t_mx);
	rd[0] = 0;
	rd[1] = 10;
	rr(&m, ns_t_mx, rd, 2 + enc_name(rd + 2, "mail.example"));
	rr(&m, ns_t_ns, rd, enc_name(rd, "ns1.example"));
	CU_ASSERT_EQUAL_FATAL(dns_answer_targets(m.b, m.len, "example", 25, &out), 0);
	CU_ASSERT_EQUAL_FATAL(out.n, 2);
	CU_ASSERT_STRING_EQUAL(lv(&out.t[0], DNS_L_ADDRESS), "mail.example:25");
	CU_ASSERT_STRING_EQUAL(lv(&out.t[0], DNS_L_MX_TARGET), "mail.example.");
	CU_ASSERT_STRING_EQUAL(lv(&out.t[1], DNS_L_ADDRESS), "ns1.example:25");
	CU_ASSERT_STRING_EQUAL(lv(&out.t[1], DNS_L_NS_TARGET), "ns1.example.");
	dns_targets_free(&out);

	/* SRV target "." (service not offered): address ":port", label "." */
	msg_init(&m, "_none._tcp.example", ns_t_srv);
	srv(&m, 1, "");
	CU_ASSERT_EQUAL_FATAL(dns_answer_targets(m.b, m.len, "_none._tcp.example", 0, &out), 0);
	CU_ASSERT_EQUAL_FATAL(out.n, 1);
	CU_ASSERT_STRING_EQUAL(lv(&out.t[0], DNS_L_ADDRESS), ":1");
	CU_ASSERT_STRING_EQUAL(lv(&out.t[0], DNS_L_SRV_TARGET), ".");
	dns_targets_free(&out);
}

static void test_malformed(void)
{
	struct dns_targets out = {0};
	struct msg m;
	uint8_t a[3] = {1, 2, 3};

	msg_init(&m, "x.example", ns_t_a);
	rr(&m, ns_t_a, a, 3); /* A with 3 bytes */
	CU_ASSERT_EQUAL(dns_answer_targets(m.b, m.len, "x", 80, &out), -EBADMSG);
	dns_targets_free(&out);
	msg_init(&m, "x.example", ns_t_srv);
	srv(&m, 80, "t.example");
	for (size_t cut = 0; cut < m.len; cut++) {
		CU_ASSERT_EQUAL(dns_answer_targets(m.b, cut, "x", 0, &out), -EBADMSG);
		dns_targets_free(&out);
	}
	/* a compression pointer looping on itself */
	msg_init(&m, "x.example", ns_t_srv);
	{
		uint8_t rd[8] = {0, 0, 0, 0, 0, 80, 0xc0, 0};
		size_t at = m.len + 12 + 6;

		rd[7] = (uint8_t)at;
		rr(&m, ns_t_srv, rd, 8);
	}
	CU_ASSERT_EQUAL(dns_answer_targets(m.b, m.len, "x", 0, &out), -EBADMSG);
	dns_targets_free(&out);
}

static const struct starling_component_type *dns_type(void)
{
	return starling_plugin_entry()->types[0];
}

static int try_create(const char *cfg, const char *want_log)
{
	char err[256];
	struct mock_host *m =
	    mock_host_new("discovery.dns.t", dns_type()->schema, cfg, err, sizeof(err));
	void *inst = NULL;
	int r;

	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	mock_host_set_quiet(m, true);
	r = dns_type()->create(mock_host_api(m), mock_host_self(m), mock_host_config(m), &inst);
	if (want_log)
		CU_ASSERT_EQUAL(mock_host_log_count(m, STARLING_LOG_ERROR, want_log), 1);
	if (!r)
		dns_type()->destroy(inst);
	mock_host_free(m);
	return r;
}

/* Config rules of Prometheus' dns.SDConfig.UnmarshalYAML: names required,
 * type one of SRV/A/AAAA/MX/NS (any case), a port for every type but SRV. */
static void test_config(void)
{
	CU_ASSERT_EQUAL(try_create("names = [\"_a._tcp.example\"];", NULL), 0);
	CU_ASSERT_EQUAL(
	    try_create("names = [\"h.example\"]; record_type = \"aaaa\"; port = 9100;", NULL), 0);
	CU_ASSERT_EQUAL(try_create("names = [\"h.example\"]; record_type = \"A\";", "port 0"),
			-EINVAL);
	CU_ASSERT_EQUAL(try_create("names = [\"h.example\"]; record_type = \"TXT\";", "TXT"),
			-EINVAL);
	CU_ASSERT_EQUAL(try_create("names = [];", "at least one"), -EINVAL);
	CU_ASSERT_EQUAL(
	    try_create("names = [\"h\"]; record_type = \"A\"; port = 70000;", "port 70000"),
	    -EINVAL);
}

int main(void)
{
	CU_pSuite s;
	unsigned fails;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	s = CU_add_suite("discovery_dns", NULL, NULL);
	CU_add_test(s, "records_to_labels", test_records);
	CU_add_test(s, "malformed_answers", test_malformed);
	CU_add_test(s, "config", test_config);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = CU_get_number_of_failures();
	if (CU_get_number_of_suites_failed())
		fails++;
	CU_cleanup_registry();
	return fails ? 1 : 0;
}
