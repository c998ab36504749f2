/* SPDX-License-Identifier: MIT
 * test_pending.c - unit tests of pending.c and resend.c: the bounds on pending joins (per
 * device, in all, in time), that a device's requests only ever displace its own, token
 * matching, and the retransmission ledger's once-per-message rule. */
#include <string.h>

#include <check.h>

#include "srupb.h"
#include "testutil.h"

static void tok(uint8_t out[32], unsigned char v)
{
	memset(out, v, 32);
}

START_TEST(test_pending_per_device_cap_displaces_own_oldest)
{
	struct srupb_pending *p = srupb_pending_new();
	uint8_t t[32];
	ck_assert_ptr_nonnull(p);
	tok(t, 1);
	/* device 7 asks servers 1..4 (cap 4), then server 5: its oldest (server 1) goes */
	for (uint64_t s = 1; s <= 5; s++) {
		ck_assert(srupb_pending_room(p, s, 7, 4, 100, (double)s));
		ck_assert_int_eq(srupb_pending_open(p, s, 7, SRUPB_JOIN_SIMPLE, t, 4, 100, 60.0, (double)s),
		                 SRUP_OK);
	}
	ck_assert_uint_eq(srupb_pending_count(p), 4);
	ck_assert_ptr_null(srupb_pending_find(p, 1, 7, 6.0));
	ck_assert_ptr_nonnull(srupb_pending_find(p, 5, 7, 6.0));
	/* another device's requests are untouched by device 7's flood */
	ck_assert_int_eq(srupb_pending_open(p, 1, 8, SRUPB_JOIN_HUMAN, t, 4, 100, 60.0, 6.0), SRUP_OK);
	for (uint64_t s = 10; s < 200; s++) {
		ck_assert_int_eq(srupb_pending_open(p, s, 7, SRUPB_JOIN_SIMPLE, t, 4, 100, 60.0, 7.0),
		                 SRUP_OK);
	}
	ck_assert_ptr_nonnull(srupb_pending_find(p, 1, 8, 8.0));
	ck_assert_uint_eq(srupb_pending_count(p), 5);
	srupb_pending_free(p);
}
END_TEST

START_TEST(test_pending_total_cap_refuses_new_devices)
{
	struct srupb_pending *p = srupb_pending_new();
	uint8_t t[32];
	tok(t, 2);
	for (uint64_t d = 1; d <= 3; d++) {
		ck_assert_int_eq(srupb_pending_open(p, 1, d, SRUPB_JOIN_SIMPLE, t, 4, 3, 60.0, 0.0),
		                 SRUP_OK);
	}
	ck_assert(!srupb_pending_room(p, 1, 4, 4, 3, 1.0));
	ck_assert_int_eq(srupb_pending_open(p, 1, 4, SRUPB_JOIN_SIMPLE, t, 4, 3, 60.0, 1.0),
	                 SRUP_ERR_TOO_LONG);
	/* a device already holding one may renew it */
	ck_assert(srupb_pending_room(p, 1, 2, 4, 3, 1.0));
	/* expiry frees room */
	srupb_pending_sweep(p, 61.0);
	ck_assert_uint_eq(srupb_pending_count(p), 0);
	ck_assert(srupb_pending_room(p, 1, 4, 4, 3, 61.0));
	/* an expired entry is never found, even before a sweep */
	ck_assert_int_eq(srupb_pending_open(p, 1, 4, SRUPB_JOIN_SIMPLE, t, 4, 3, 10.0, 61.0), SRUP_OK);
	ck_assert_ptr_nonnull(srupb_pending_find(p, 1, 4, 70.0));
	ck_assert_ptr_null(srupb_pending_find(p, 1, 4, 71.0));
	srupb_pending_free(p);
}
END_TEST

START_TEST(test_pending_tokens_and_close)
{
	struct srupb_pending *p = srupb_pending_new();
	uint8_t req[32];
	uint8_t ans[32];
	uint8_t other[32];
	tok(req, 3);
	tok(ans, 4);
	tok(other, 5);
	ck_assert_int_eq(srupb_pending_open(p, 9, 1, SRUPB_JOIN_HUMAN, req, 4, 10, 60.0, 0.0), SRUP_OK);
	struct srupb_pending_join *j = srupb_pending_find(p, 9, 1, 1.0);
	ck_assert_ptr_nonnull(j);
	ck_assert(srupb_pending_token_matches(j, req));
	ck_assert(!srupb_pending_token_matches(j, ans));
	memcpy(j->ans_token, ans, 32);
	j->has_answer = true;
	ck_assert(srupb_pending_token_matches(j, ans));
	ck_assert(!srupb_pending_token_matches(j, other));
	ck_assert_ptr_null(srupb_pending_find(p, 8, 1, 1.0)); /* another server */
	srupb_pending_close(p, 9, 1);
	ck_assert_ptr_null(srupb_pending_find(p, 9, 1, 1.0));
	ck_assert_uint_eq(srupb_pending_count(p), 0);
	srupb_pending_free(p);
}
END_TEST

START_TEST(test_resend_once_same_connection_or_resumed)
{
	struct srupb_resend *r = srupb_resend_new(4);
	uint8_t a[32];
	uint8_t b[32];
	uint64_t conn1 = 1;
	uint64_t conn2 = 2;
	tok(a, 6);
	tok(b, 7);
	srupb_resend_note(r, a, conn1);
	ck_assert_int_eq(srupb_resend_take(r, a, conn2, false), SRUPB_RESEND_OTHER_CONNECTION);
	ck_assert_int_eq(srupb_resend_take(r, a, conn1, false), SRUPB_RESEND_OK);
	ck_assert_int_eq(srupb_resend_take(r, a, conn1, false), SRUPB_RESEND_USED);
	srupb_resend_note(r, b, conn1);
	ck_assert_int_eq(srupb_resend_take(r, b, conn2, true), SRUPB_RESEND_OK);
	ck_assert_int_eq(srupb_resend_take(r, b, conn2, true), SRUPB_RESEND_USED);
	/* four newer accepts push b out: never vouched for again */
	for (unsigned char i = 10; i < 14; i++) {
		uint8_t c[32];
		tok(c, i);
		srupb_resend_note(r, c, conn1);
	}
	ck_assert_int_eq(srupb_resend_take(r, b, conn1, false), SRUPB_RESEND_UNKNOWN);
	srupb_resend_free(r);
}
END_TEST

Suite *plugin_pending_suite(void)
{
	Suite *s = suite_create("plugin_pending");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_pending_per_device_cap_displaces_own_oldest);
	tcase_add_test(tc, test_pending_total_cap_refuses_new_devices);
	tcase_add_test(tc, test_pending_tokens_and_close);
	tcase_add_test(tc, test_resend_once_same_connection_or_resumed);
	suite_add_tcase(s, tc);
	return s;
}
