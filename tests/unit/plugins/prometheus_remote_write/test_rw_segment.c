/* The remote-write segment reader and file I/O (rw_segment.c). */
#include <CUnit/Basic.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zlib.h>

#include "rw_segment.h"

static size_t put_rec(uint8_t *b, uint32_t samples, const char *payload, uint32_t flags)
{
	struct rw_rec_hdr h = {RW_REC_MAGIC, samples, 1000, (uint32_t)strlen(payload), 0, flags, 0};

	h.crc = (uint32_t)crc32(0, (const uint8_t *)payload, (uInt)h.len);
	memcpy(b, &h, sizeof(h));
	memcpy(b + sizeof(h), payload, h.len);
	return sizeof(h) + h.len;
}

static void count(void *arg, uint64_t off, const struct rw_rec_hdr *h)
{
	(*(size_t *)arg)++;
}

static void test_scan(void)
{
	uint8_t b[1024];
	size_t n = 0, got = 0, r1;
	struct rw_seg_scan_stats st;

	r1 = put_rec(b, 10, "first payload", 0);
	n = r1;
	n += put_rec(b + n, 20, "second", RW_REC_DONE);
	n += put_rec(b + n, 30, "third payload here", 0);
	rw_seg_scan(b, n, count, &got, &st);
	CU_ASSERT_EQUAL(got, 2);
	CU_ASSERT_EQUAL(st.records, 2);
	CU_ASSERT_EQUAL(st.samples, 40);
	CU_ASSERT_EQUAL(st.done, 1);
	CU_ASSERT_EQUAL(st.skipped_bytes, 0);
	/* torn tail: the last record cut in its payload */
	got = 0;
	rw_seg_scan(b, n - 3, count, &got, &st);
	CU_ASSERT_EQUAL(got, 1);
	CU_ASSERT_TRUE(st.torn_tail);
	CU_ASSERT_EQUAL(st.corrupt, 0);
	/* first magic damaged: the rest is still read, its samples counted */
	b[0] ^= 0xff;
	got = 0;
	rw_seg_scan(b, n, count, &got, &st);
	CU_ASSERT_EQUAL(got, 1);
	CU_ASSERT_EQUAL(st.corrupt, 1);
	CU_ASSERT_EQUAL(st.lost_samples, 10);
	CU_ASSERT_EQUAL(st.skipped_bytes, r1);
	b[0] ^= 0xff;
	/* first payload damaged */
	b[sizeof(struct rw_rec_hdr) + 2] ^= 0x55;
	got = 0;
	rw_seg_scan(b, n, count, &got, &st);
	CU_ASSERT_EQUAL(got, 1);
	CU_ASSERT_EQUAL(st.corrupt, 1);
	CU_ASSERT_EQUAL(st.lost_samples, 10);
	CU_ASSERT_FALSE(st.torn_tail);
}

/* A file of fake headers, each claiming a record up to the end of the
 * file, costs a bounded amount of crc work (not O(size^2)). */
static void test_scan_bounded(void)
{
	size_t len = 4 << 20;
	uint8_t *b = calloc(1, len);
	struct rw_seg_scan_stats st;
	struct timespec t0, t1;
	double s;

	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	for (size_t off = 0; off + sizeof(struct rw_rec_hdr) <= len; off += 32) {
		struct rw_rec_hdr h = {RW_REC_MAGIC, 1, 0, 0, 0, 0, 0};

		h.len = (uint32_t)(len - off - sizeof(h));
		memcpy(b + off, &h, sizeof(h));
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rw_seg_scan(b, len, NULL, NULL, &st);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	CU_ASSERT_EQUAL(st.records, 0);
	CU_ASSERT_EQUAL(st.skipped_bytes, len);
	/* about 8 crcs of the file: well under a second even under ASan on a
	 * loaded machine; the quadratic walk took minutes */
	CU_ASSERT_TRUE(s < 30);
	free(b);
}

/* rw_crc32 (libdeflate) gives zlib's crc32 at every length around the
 * word and vector sizes, so segments written before the switch still
 * verify. */
static void test_crc_is_zlibs(void)
{
	uint8_t buf[1100];

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 131u + (i >> 3));
	for (size_t off = 0; off < 8; off++)
		for (size_t len = 0; len + off <= sizeof(buf); len += len < 300 ? 1 : 97)
			CU_ASSERT_EQUAL(rw_crc32(buf + off, len),
					(uint32_t)crc32(0, buf + off, (uInt)len));
}

static void test_names_and_fsync(void)
{
	enum rw_fsync m;
	uint64_t id;
	unsigned sh;
	char p[128];

	rw_seg_path("/d", 0x1f, 3, p, sizeof(p));
	CU_ASSERT_STRING_EQUAL(p, "/d/000000000000001f-0003.seg");
	CU_ASSERT_EQUAL(rw_seg_name_parse("000000000000001f-0003.seg", &id, &sh), 0);
	CU_ASSERT_EQUAL(id, 0x1f);
	CU_ASSERT_EQUAL(sh, 3);
	CU_ASSERT_EQUAL(rw_seg_name_parse("000000000000001f-0003.tmp", &id, &sh), -EINVAL);
	CU_ASSERT_EQUAL(rw_seg_name_parse("x", &id, &sh), -EINVAL);
	CU_ASSERT_EQUAL(rw_fsync_parse("never", &m), 0);
	CU_ASSERT_EQUAL(m, RW_FSYNC_NEVER);
	CU_ASSERT_EQUAL(rw_fsync_parse("always", &m), 0);
	CU_ASSERT_EQUAL(m, RW_FSYNC_ALWAYS);
	CU_ASSERT_EQUAL(rw_fsync_parse(NULL, &m), 0);
	CU_ASSERT_EQUAL(m, RW_FSYNC_SEGMENT);
	CU_ASSERT_EQUAL(rw_fsync_parse("sometimes", &m), -EINVAL);
}

int main(void)
{
	CU_pSuite s;
	unsigned fails;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("rw_segment", NULL, NULL);
	CU_add_test(s, "scan: done, torn tail, damaged header and payload", test_scan);
	CU_add_test(s, "scan: bounded work on fake headers", test_scan_bounded);
	CU_add_test(s, "names and fsync setting", test_names_and_fsync);
	CU_add_test(s, "crc is zlib's crc32", test_crc_is_zlibs);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = CU_get_number_of_failures();
	CU_cleanup_registry();
	return fails ? 1 : 0;
}
