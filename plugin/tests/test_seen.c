/* SPDX-License-Identifier: MIT
 * test_seen.c - unit tests of seen.c: per-sender windows against a reference model, a flood by
 * one sender that never evicts another's entries, fail-closed when full, FIFO order rebuilt at
 * reopen, records torn by a crash, resizing that keeps every sender's newest entries, the lock
 * that keeps a second broker out, and refusal of a file that is not an index. */
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

static struct srupb_seen *open_ok(size_t capacity)
{
	struct srupb_seen *s = NULL;
	char err[512] = "";
	ck_assert_msg(srupb_seen_open(path, capacity, &s, err, sizeof err) == SRUP_OK, "%s", err);
	return s;
}

static bool has(const struct srupb_seen *s, uint32_t n)
{
	uint8_t dg[32];
	dg_of(n, dg);
	return srupb_seen_find(s, dg);
}

static bool add(struct srupb_seen *s, uint64_t sender, size_t window, uint32_t n)
{
	uint8_t dg[32];
	dg_of(n, dg);
	return srupb_seen_add(s, sender, window, dg);
}

/* Byte offset of the check word of record slot (40-byte records after a 4096-byte header). */
static off_t check_off(size_t slot)
{
	return 4096 + (off_t)slot * 40 + 32;
}

/* Four senders with different windows, interleaved at random, against a model of one FIFO per
 * sender; the capacity is large enough that nothing is ever refused. */
START_TEST(test_seen_per_sender_windows_match_model)
{
	setup_dir();
	struct srupb_seen *s = open_ok(4096);
	const size_t windows[4] = {1, 7, 64, 500};
	uint32_t owner[20001];
	uint32_t held[4] = {0, 0, 0, 0};
	uint32_t added[4] = {0, 0, 0, 0};
	uint64_t x = 12345;

	for (uint32_t n = 1; n <= 20000; n++) {
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		uint32_t who = (uint32_t)(x >> 60) % 4;
		ck_assert(!has(s, n));
		ck_assert(add(s, 100 + who, windows[who], n));
		ck_assert(has(s, n));
		owner[n] = who;
		added[who]++;
		held[who] = added[who] < windows[who] ? added[who] : (uint32_t)windows[who];
	}
	/* entry n is held iff it is among the last window[who] entries of its sender */
	uint32_t newer[4] = {0, 0, 0, 0};
	for (uint32_t n = 20000; n >= 1; n--) {
		uint32_t who = owner[n];
		ck_assert_msg(has(s, n) == (newer[who] < windows[who]), "entry %u of sender %u", n, who);
		newer[who]++;
	}
	size_t used = 0;
	for (uint32_t who = 0; who < 4; who++) {
		ck_assert_uint_eq(srupb_seen_count(s, 100 + who), held[who]);
		used += held[who];
	}
	ck_assert_uint_eq(srupb_seen_used(s), used);
	ck_assert_uint_eq(srupb_seen_count(s, 99), 0);
	srupb_seen_close(s);
	cleanup_dir();
}
END_TEST

/* The red team's attack: one sender adds far more entries than the index holds. Every entry of
 * every other sender stays; the flooder cycles through its own window. */
START_TEST(test_seen_flood_never_evicts_another_sender)
{
	setup_dir();
	struct srupb_seen *s = open_ok(1024);
	const uint64_t server = 0x5e5e;
	const uint64_t flooder = 0xbad;

	for (uint32_t n = 1; n <= 300; n++) {
		ck_assert(add(s, server, 65536, n));
	}
	for (uint32_t n = 1000; n < 1000 + 100000; n++) {
		ck_assert(add(s, flooder, 64, n));
	}
	for (uint32_t n = 1; n <= 300; n++) {
		ck_assert_msg(has(s, n), "server entry %u evicted by the flood", n);
	}
	ck_assert_uint_eq(srupb_seen_count(s, flooder), 64);
	ck_assert(has(s, 1000 + 100000 - 1));
	ck_assert(has(s, 1000 + 100000 - 64));
	ck_assert(!has(s, 1000 + 100000 - 65));
	ck_assert_uint_eq(srupb_seen_used(s), 364);
	srupb_seen_close(s);
	cleanup_dir();
}
END_TEST

/* When no record is free, a sender below its window cannot add (fail closed) and nothing
 * changes; a sender at its window still can (it evicts its own); window 0 always can. */
START_TEST(test_seen_full_has_no_room)
{
	setup_dir();
	struct srupb_seen *s = open_ok(16);
	uint32_t n = 1;

	for (uint64_t who = 1; who <= 4; who++) {
		for (int i = 0; i < 4; i++) {
			ck_assert(srupb_seen_room(s, who, 4));
			ck_assert(add(s, who, 4, n++));
		}
	}
	ck_assert_uint_eq(srupb_seen_used(s), 16);
	/* a new sender: no room, and the add changes nothing */
	ck_assert(!srupb_seen_room(s, 5, 4));
	ck_assert(!add(s, 5, 4, 900));
	ck_assert(!has(s, 900));
	ck_assert_uint_eq(srupb_seen_count(s, 5), 0);
	for (uint32_t k = 1; k < n; k++) {
		ck_assert_msg(has(s, k), "entry %u lost by a refused add", k);
	}
	/* sender 1 below a larger window: no free record, so no room either */
	ck_assert(!srupb_seen_room(s, 1, 8));
	ck_assert(!add(s, 1, 8, 901));
	/* sender 1 at its window: evicts its own oldest (entry 1) only */
	ck_assert(srupb_seen_room(s, 1, 4));
	ck_assert(add(s, 1, 4, 902));
	ck_assert(!has(s, 1));
	ck_assert(has(s, 2) && has(s, 902) && has(s, 5));
	/* window 0 indexes nothing and needs no room */
	ck_assert(srupb_seen_room(s, 5, 0));
	ck_assert(add(s, 5, 0, 903));
	ck_assert(!has(s, 903));
	/* a smaller window (reload) makes the sender drop down to it, freeing records */
	ck_assert(add(s, 2, 1, 904));
	ck_assert_uint_eq(srupb_seen_count(s, 2), 1);
	ck_assert(!has(s, 5) && !has(s, 8) && has(s, 904));
	ck_assert_uint_eq(srupb_seen_used(s), 13);
	ck_assert(srupb_seen_room(s, 5, 4));
	srupb_seen_close(s);

	/* capacity 0: nothing can be indexed */
	cleanup_dir();
	setup_dir();
	s = open_ok(0);
	ck_assert(!srupb_seen_room(s, 1, 1));
	ck_assert(!add(s, 1, 1, 1));
	ck_assert(srupb_seen_room(s, 1, 0));
	srupb_seen_close(s);
	cleanup_dir();
}
END_TEST

/* Reopen rebuilds every sender's FIFO in insertion order (the next add evicts the right entry),
 * and a record torn by kill -9 (check word not written) reads as free. */
START_TEST(test_seen_reopen_rebuilds_order_and_torn_record)
{
	setup_dir();
	struct srupb_seen *s = open_ok(64);

	/* entries 1..40 into slots 0..39, alternating senders 1 and 2, window 20 each */
	for (uint32_t n = 1; n <= 40; n++) {
		ck_assert(add(s, 1 + (n % 2), 20, n));
	}
	/* sender 1 holds the even entries; at its window it evicts its own oldest twice: 2 and 4 */
	ck_assert(add(s, 1, 20, 41));
	ck_assert(add(s, 1, 20, 42));
	ck_assert(!has(s, 2) && !has(s, 4) && has(s, 6));
	srupb_seen_close(s);

	/* tear entry 30's record (slot 29, sender 1) */
	int fd = open(path, O_RDWR);
	ck_assert_int_ge(fd, 0);
	uint8_t zero[8] = {0};
	ck_assert_int_eq(pwrite(fd, zero, sizeof zero, check_off(29)), 8);
	close(fd);

	s = open_ok(64);
	ck_assert(!has(s, 30));
	ck_assert(has(s, 6) && has(s, 28) && has(s, 32) && has(s, 41) && has(s, 42));
	ck_assert(!has(s, 2) && !has(s, 4));
	ck_assert_uint_eq(srupb_seen_count(s, 1), 19);
	ck_assert_uint_eq(srupb_seen_count(s, 2), 20);
	ck_assert_uint_eq(srupb_seen_used(s), 39);
	/* sender 2's oldest is entry 1, then 3: order survived the reopen */
	ck_assert(add(s, 2, 20, 43));
	ck_assert(!has(s, 1) && has(s, 3));
	ck_assert(add(s, 2, 20, 44));
	ck_assert(!has(s, 3) && has(s, 5));
	/* sender 1 is below its window after the tear: it takes a free record, evicts nothing */
	ck_assert(add(s, 1, 20, 45));
	ck_assert(has(s, 6));
	ck_assert(add(s, 1, 20, 46));
	ck_assert(!has(s, 6) && has(s, 8));
	srupb_seen_close(s);
	cleanup_dir();
}
END_TEST

/* A capacity change across a restart keeps the newest entries of every sender: when they do not
 * all fit, the sender holding the most loses its oldest first. */
START_TEST(test_seen_resize_keeps_newest_per_sender)
{
	setup_dir();
	struct srupb_seen *s = open_ok(100);

	/* sender A: entries 1..80, sender B: 1001..1020, interleaved in time */
	for (uint32_t n = 1; n <= 80; n++) {
		ck_assert(add(s, 0xa, 1000, n));
		if (n % 4 == 0) {
			ck_assert(add(s, 0xb, 1000, 1000 + n / 4));
		}
	}
	srupb_seen_close(s);
	s = open_ok(50); /* A keeps its newest 30, B all 20 */
	ck_assert_uint_eq(srupb_seen_capacity(s), 50);
	for (uint32_t n = 1; n <= 80; n++) {
		ck_assert_msg(has(s, n) == (n > 50), "shrunk, A's entry %u", n);
	}
	for (uint32_t n = 1001; n <= 1020; n++) {
		ck_assert_msg(has(s, n), "shrunk, B's entry %u", n);
	}
	ck_assert_uint_eq(srupb_seen_count(s, 0xa), 30);
	ck_assert_uint_eq(srupb_seen_count(s, 0xb), 20);
	/* the order was kept through the rewrite: A's oldest is now 51 */
	ck_assert(add(s, 0xa, 30, 2000));
	ck_assert(!has(s, 51) && has(s, 52));
	srupb_seen_close(s);
	s = open_ok(4096); /* grow: all stay, room for more */
	ck_assert_uint_eq(srupb_seen_capacity(s), 4096);
	ck_assert_uint_eq(srupb_seen_used(s), 50);
	for (uint32_t n = 3001; n <= 7046; n++) { /* fills the other 4046 records */
		ck_assert(add(s, 0xc, 5000, n));
	}
	ck_assert(has(s, 52) && has(s, 1001) && has(s, 2000));
	ck_assert(!srupb_seen_room(s, 0xd, 1));
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
	ck_assert_int_eq(truncate(path, 4096 + 1024 * 40), 0);
	s = open_ok(1024);
	ck_assert(!has(s, 1));
	ck_assert(add(s, 1, 10, 1));
	srupb_seen_close(s);

	/* a header whose size disagrees with the file */
	ck_assert_int_eq(truncate(path, 4096 + 1000 * 40), 0);
	ck_assert_int_eq(srupb_seen_open(path, 1024, &t, err, sizeof err), SRUP_ERR_INVAL);
	/* a capacity above the limit */
	ck_assert_int_eq(srupb_seen_open(path, SRUPB_SEEN_CAP_MAX + 1, &t, err, sizeof err),
	                 SRUP_ERR_INVAL);
	srupb_seen_close(NULL);
	cleanup_dir();
}
END_TEST

Suite *plugin_seen_suite(void)
{
	Suite *s = suite_create("plugin_seen");
	TCase *tc = tcase_create("seen");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_seen_per_sender_windows_match_model);
	tcase_add_test(tc, test_seen_flood_never_evicts_another_sender);
	tcase_add_test(tc, test_seen_full_has_no_room);
	tcase_add_test(tc, test_seen_reopen_rebuilds_order_and_torn_record);
	tcase_add_test(tc, test_seen_resize_keeps_newest_per_sender);
	tcase_add_test(tc, test_seen_lock_and_bad_files);
	suite_add_tcase(s, tc);
	return s;
}
