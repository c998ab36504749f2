/* SPDX-License-Identifier: MIT
 * test_seen.c - unit tests of seen.c: the window against a reference model over many ring
 * wraps, persistence across reopen, records torn by a crash, resizing, the lock that keeps a
 * second broker out, and refusal of a file that is not an index. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "seen.h"
#include "testutil.h"

static char dir[64];
static char path[128];

static void setup_dir(void)
{
	snprintf(dir, sizeof dir, "/tmp/srupb-seen-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/seen.idx", dir);
}

static void cleanup_dir(void)
{
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* Digest of entry n: distinct for every n, and unrelated to the hash positions. */
static void dg_of(uint32_t n, uint8_t dg[32])
{
	uint64_t x = n * 0x9e3779b97f4a7c15ULL + 1;
	for (size_t i = 0; i < 32; i += 8) {
		x ^= x >> 31;
		x *= 0xbf58476d1ce4e5b9ULL;
		memcpy(dg + i, &x, 8);
	}
}

static struct srupb_seen *open_ok(size_t window)
{
	struct srupb_seen *s = NULL;
	char err[512] = "";
	ck_assert_msg(srupb_seen_open(path, window, &s, err, sizeof err) == SRUP_OK, "%s", err);
	return s;
}

START_TEST(test_seen_window_matches_model)
{
	setup_dir();
	struct srupb_seen *s = open_ok(1024);
	uint8_t dg[32];
	const uint32_t total = 5000; /* almost five wraps of the ring */

	ck_assert_uint_eq(srupb_seen_capacity(s), 1024);
	for (uint32_t n = 1; n <= total; n++) {
		dg_of(n, dg);
		ck_assert(!srupb_seen_find(s, 1024, dg));
		srupb_seen_add(s, dg);
		ck_assert(srupb_seen_find(s, 1024, dg));
	}
	for (uint32_t n = 1; n <= total; n++) {
		dg_of(n, dg);
		ck_assert_msg(srupb_seen_find(s, 1024, dg) == (n > total - 1024), "entry %u", n);
		/* a smaller window looks back less far */
		ck_assert_msg(srupb_seen_find(s, 10, dg) == (n > total - 10), "entry %u, window 10", n);
	}
	/* the same payload added again stays found (the newer entry counts) */
	dg_of(total - 1000, dg);
	srupb_seen_add(s, dg);
	for (uint32_t n = 1; n <= 1000; n++) {
		uint8_t other[32];
		dg_of(100000 + n, other);
		srupb_seen_add(s, other);
	}
	ck_assert(srupb_seen_find(s, 1024, dg));
	srupb_seen_close(s);
	cleanup_dir();
}
END_TEST

START_TEST(test_seen_survives_reopen_and_torn_record)
{
	setup_dir();
	struct srupb_seen *s = open_ok(1024);
	uint8_t dg[32];

	for (uint32_t n = 1; n <= 1500; n++) {
		dg_of(n, dg);
		srupb_seen_add(s, dg);
	}
	srupb_seen_close(s);

	/* Tear the record of entry 1400 as a kill -9 between its body and check word would. */
	int fd = open(path, O_RDWR);
	ck_assert_int_ge(fd, 0);
	uint8_t zero[8] = {0};
	off_t rec = 4096 + (off_t)((1400 - 1) % 1024) * 32;
	ck_assert_int_eq(pwrite(fd, zero, sizeof zero, rec + 24), 8);
	close(fd);

	s = open_ok(1024);
	for (uint32_t n = 1; n <= 1500; n++) {
		dg_of(n, dg);
		ck_assert_msg(srupb_seen_find(s, 1024, dg) == (n > 1500 - 1024 && n != 1400),
		              "entry %u after reopen", n);
	}
	/* new entries continue after the newest one left */
	dg_of(1501, dg);
	srupb_seen_add(s, dg);
	ck_assert(srupb_seen_find(s, 1024, dg));
	dg_of(477, dg);
	ck_assert(!srupb_seen_find(s, 1024, dg)); /* pushed out by entry 1501 */
	dg_of(478, dg);
	ck_assert(srupb_seen_find(s, 1024, dg));
	srupb_seen_close(s);
	cleanup_dir();
}
END_TEST

START_TEST(test_seen_resize_keeps_newest)
{
	setup_dir();
	struct srupb_seen *s = open_ok(2048);
	uint8_t dg[32];

	for (uint32_t n = 1; n <= 3000; n++) {
		dg_of(n, dg);
		srupb_seen_add(s, dg);
	}
	srupb_seen_close(s);
	s = open_ok(1024); /* shrink: the newest 1024 stay */
	ck_assert_uint_eq(srupb_seen_capacity(s), 1024);
	for (uint32_t n = 1; n <= 3000; n++) {
		dg_of(n, dg);
		ck_assert_msg(srupb_seen_find(s, 1024, dg) == (n > 3000 - 1024), "shrunk, entry %u", n);
	}
	srupb_seen_close(s);
	s = open_ok(4096); /* grow: all 1024 stay, room for more */
	ck_assert_uint_eq(srupb_seen_capacity(s), 4096);
	for (uint32_t n = 3001; n <= 5000; n++) {
		dg_of(n, dg);
		srupb_seen_add(s, dg);
	}
	for (uint32_t n = 1; n <= 5000; n++) {
		dg_of(n, dg);
		ck_assert_msg(srupb_seen_find(s, 4096, dg) == (n > 3000 - 1024), "grown, entry %u", n);
	}
	srupb_seen_close(s);
	ck_assert_int_ne(access(path, F_OK), -1);
	char tmp[160];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	ck_assert_int_eq(access(tmp, F_OK), -1);
	cleanup_dir();
}
END_TEST

START_TEST(test_seen_lock_and_bad_files)
{
	setup_dir();
	struct srupb_seen *s = open_ok(1024);
	struct srupb_seen *t = NULL;
	char err[512] = "";

	ck_assert_int_eq(srupb_seen_open(path, 1024, &t, err, sizeof err), SRUP_ERR_INVAL);
	ck_assert_ptr_null(t);
	ck_assert_msg(strstr(err, "in use by another broker") != NULL, "%s", err);
	srupb_seen_close(s);

	/* not an index: refused with a line that says what to do */
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("this is not a seen index, but it is long enough to have a header....", f);
	fclose(f);
	err[0] = '\0';
	ck_assert_int_eq(srupb_seen_open(path, 1024, &t, err, sizeof err), SRUP_ERR_INVAL);
	ck_assert_msg(strstr(err, "move it away") != NULL, "%s", err);

	/* a file sized but never given its header (killed at creation) starts afresh */
	ck_assert_int_eq(truncate(path, 0), 0);
	ck_assert_int_eq(truncate(path, 4096 + 1024 * 32), 0);
	s = open_ok(1024);
	uint8_t dg[32];
	dg_of(1, dg);
	ck_assert(!srupb_seen_find(s, 1024, dg));
	srupb_seen_close(s);

	/* a header whose size disagrees with the file */
	ck_assert_int_eq(truncate(path, 4096 + 1000 * 32), 0);
	ck_assert_int_eq(srupb_seen_open(path, 1024, &t, err, sizeof err), SRUP_ERR_INVAL);
	srupb_seen_close(NULL);
	cleanup_dir();
}
END_TEST

Suite *plugin_seen_suite(void)
{
	Suite *s = suite_create("plugin_seen");
	TCase *tc = tcase_create("seen");
	tcase_add_test(tc, test_seen_window_matches_model);
	tcase_add_test(tc, test_seen_survives_reopen_and_torn_record);
	tcase_add_test(tc, test_seen_resize_keeps_newest);
	tcase_add_test(tc, test_seen_lock_and_bad_files);
	suite_add_tcase(s, tc);
	return s;
}
