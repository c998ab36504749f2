/* SPDX-License-Identifier: MIT
 * test_audit.c - unit tests of the audit log: strings cut on character boundaries and invalid
 * UTF-8 escaped (every line valid UTF-8 JSON), the longest line, admin lines, and the
 * per-connection and total caps with exact suppression counts and a bounded connection table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <jansson.h>

#include "srupb.h"
#include "stubs.h"
#include "testutil.h"

/* Strict UTF-8 check (RFC 3629), independent of the plugin's. */
static bool valid_utf8(const unsigned char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned c = s[i];
		size_t k;
		unsigned cp;
		if (c < 0x80u) {
			i++;
			continue;
		}
		if ((c & 0xe0u) == 0xc0u) {
			k = 1;
			cp = c & 0x1fu;
		} else if ((c & 0xf0u) == 0xe0u) {
			k = 2;
			cp = c & 0x0fu;
		} else if ((c & 0xf8u) == 0xf0u) {
			k = 3;
			cp = c & 0x07u;
		} else {
			return false;
		}
		if (n - i <= k) {
			return false;
		}
		for (size_t j = 1; j <= k; j++) {
			if ((s[i + j] & 0xc0u) != 0x80u) {
				return false;
			}
			cp = (cp << 6) | (s[i + j] & 0x3fu);
		}
		if ((k == 1 && cp < 0x80u) || (k == 2 && cp < 0x800u) || (k == 3 && cp < 0x10000u) ||
		    cp > 0x10ffffu || (cp >= 0xd800u && cp <= 0xdfffu)) {
			return false;
		}
		i += k + 1;
	}
	return true;
}

/* The decoded "client_id" of a formatted line (jansson parses strictly), owned by the caller. */
static char *client_id_of(const char *line)
{
	json_error_t e;
	json_t *o = json_loads(line, 0, &e);
	ck_assert_msg(o != NULL, "not JSON (%s): %s", e.text, line);
	json_t *v = json_object_get(o, "client_id");
	ck_assert_ptr_nonnull(v);
	char *s = strdup(json_string_value(v));
	json_decref(o);
	return s;
}

static size_t format_client_id(const char *cid, char *line, size_t cap)
{
	struct srupb_event ev;
	memset(&ev, 0, sizeof ev);
	ev.verdict = SRUPB_V_DROP;
	ev.reason = SRUPB_R_NOT_ALLOWED;
	ev.type = -1;
	ev.client_id = cid;
	size_t n = srupb_audit_format(&ev, 0, line, cap);
	ck_assert_uint_gt(n, 0);
	ck_assert_msg(valid_utf8((const unsigned char *)line, n), "invalid UTF-8: %s", line);
	return n;
}

/* 130 characters of 2, 3 and 4 bytes (after 0..3 ASCII bytes, so the byte cut would fall
 * anywhere inside one): exactly 128 whole characters then "...". */
START_TEST(test_audit_cut_on_character_boundary)
{
	static const char *const chars[] = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
	char line[SRUPB_AUDIT_LINE_MAX];
	for (size_t w = 0; w < 3; w++) {
		for (size_t pre = 0; pre < 4; pre++) {
			char cid[1024];
			size_t o = 0;
			size_t clen = strlen(chars[w]);
			for (size_t i = 0; i < pre; i++) {
				cid[o++] = 'a';
			}
			for (size_t i = 0; i < 130; i++) {
				memcpy(cid + o, chars[w], clen);
				o += clen;
			}
			cid[o] = '\0';
			format_client_id(cid, line, sizeof line);
			char *got = client_id_of(line);
			/* 128 characters: pre ASCII + (128 - pre) wide ones, then "..." */
			size_t want_len = pre + (128 - pre) * clen + 3;
			ck_assert_uint_eq(strlen(got), want_len);
			ck_assert_int_eq(memcmp(got, cid, want_len - 3), 0);
			ck_assert_str_eq(got + want_len - 3, "...");
			free(got);
		}
	}
}
END_TEST

/* Bytes that are not UTF-8 (lone continuation, truncated sequences, overlong, surrogate,
 * above U+10FFFF, 0xff) come out as the text \xHH; quotes, backslashes and controls escaped. */
START_TEST(test_audit_invalid_utf8_escaped)
{
	char line[SRUPB_AUDIT_LINE_MAX];
	const char *cid = "\x80"
	                  "a\xc3"
	                  "b\xe2\x82"
	                  "c\xc0\xaf"
	                  "d\xed\xa0\x80"
	                  "e\xf4\x90\x80\x80"
	                  "f\xff\"\\\x01\x7f\xc3\xa9";
	format_client_id(cid, line, sizeof line);
	char *got = client_id_of(line);
	ck_assert_str_eq(got, "\\x80a\\xc3b\\xe2\\x82c\\xc0\\xafd\\xed\\xa0\\x80e\\xf4\\x90\\x80\\x80"
	                      "f\\xff\"\\\x01\x7f\xc3\xa9");
	free(got);
	/* a multi-byte character cut by the end of the string is escaped too */
	format_client_id("x\xf0\x9f\x98", line, sizeof line);
	got = client_id_of(line);
	ck_assert_str_eq(got, "x\\xf0\\x9f\\x98");
	free(got);
}
END_TEST

/* The longest line: every string field of 300 control characters (6 bytes each escaped). */
/* The peer's address and certificate fingerprint are fields of every line, null when unknown. */
START_TEST(test_audit_peer_fields)
{
	char line[SRUPB_AUDIT_LINE_MAX];
	const char *fp = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	struct srupb_event ev;
	struct srupb_admin_event ae;
	json_error_t e;
	json_t *o;

	memset(&ev, 0, sizeof ev);
	ev.verdict = SRUPB_V_DROP;
	ev.reason = SRUPB_R_NOT_ALLOWED;
	ev.type = -1;
	ev.address = "127.0.0.1";
	ev.cert_sha256 = fp;
	ck_assert_uint_gt(srupb_audit_format(&ev, 0, line, sizeof line), 0);
	o = json_loads(line, 0, &e);
	ck_assert_ptr_nonnull(o);
	ck_assert_str_eq(json_string_value(json_object_get(o, "address")), "127.0.0.1");
	ck_assert_str_eq(json_string_value(json_object_get(o, "cert_sha256")), fp);
	json_decref(o);
	ev.address = NULL;
	ev.cert_sha256 = "";
	ck_assert_uint_gt(srupb_audit_format(&ev, 0, line, sizeof line), 0);
	o = json_loads(line, 0, &e);
	ck_assert_ptr_nonnull(o);
	ck_assert(json_is_null(json_object_get(o, "address")));
	ck_assert(json_is_null(json_object_get(o, "cert_sha256")));
	json_decref(o);
	memset(&ae, 0, sizeof ae);
	ae.reason = SRUPB_AR_NOT_ADMIN;
	ae.address = "::1";
	ck_assert_uint_gt(srupb_audit_format_admin(&ae, 0, line, sizeof line), 0);
	o = json_loads(line, 0, &e);
	ck_assert_ptr_nonnull(o);
	ck_assert_str_eq(json_string_value(json_object_get(o, "address")), "::1");
	ck_assert(json_is_null(json_object_get(o, "cert_sha256")));
	json_decref(o);
}
END_TEST

START_TEST(test_audit_longest_line_fits)
{
	char line[SRUPB_AUDIT_LINE_MAX];
	char s[301];
	memset(s, 0x01, 300);
	s[300] = '\0';
	struct srupb_event ev;
	memset(&ev, 0, sizeof ev);
	ev.verdict = SRUPB_V_DROP;
	ev.reason = SRUPB_R_IDENTITY_MISMATCH;
	ev.type = SRUP_MSG_ACTION;
	ev.client_id = ev.identity = ev.topic = ev.detail = ev.address = ev.cert_sha256 = s;
	ev.has_sender = ev.has_seq = true;
	ev.sender = UINT64_MAX;
	ev.seq = UINT64_MAX;
	size_t n = srupb_audit_format(&ev, UINT64_MAX, line, sizeof line);
	ck_assert_uint_gt(n, 0);
	ck_assert_uint_le(n, SRUPB_AUDIT_LINE_MAX - 1);
	/* the figure README.md quotes: the longest verdict line (chain not included) */
	printf("longest verdict line: %zu bytes\n", n);
	{
		/* a JSON reader with 64-bit signed integers (jansson) reads the largest seq */
		json_error_t je;
		json_t *lo;
		n = srupb_audit_format(&ev, 0, line, sizeof line);
		lo = json_loadb(line, n, 0, &je);
		ck_assert_msg(lo != NULL, "%s", je.text);
		ck_assert_str_eq(json_string_value(json_object_get(lo, "seq")), "0xffffffffffffffff");
		json_decref(lo);
		ev.seq = (uint64_t)INT64_MAX;
		n = srupb_audit_format(&ev, 0, line, sizeof line);
		lo = json_loadb(line, n, 0, &je);
		ck_assert_ptr_nonnull(lo);
		ck_assert(json_integer_value(json_object_get(lo, "seq")) == INT64_MAX);
		json_decref(lo);
	}
	struct srupb_admin_event ae;
	memset(&ae, 0, sizeof ae);
	ae.reason = SRUPB_AR_BAD_COMMAND;
	ae.client_id = ae.identity = ae.detail = ae.command = ae.address = ae.cert_sha256 = s;
	ae.has_target = true;
	ae.target = UINT64_MAX;
	n = srupb_audit_format_admin(&ae, UINT64_MAX, line, sizeof line);
	ck_assert_uint_gt(n, 0);
	ck_assert_uint_le(n, SRUPB_AUDIT_LINE_MAX - 1);
	ck_assert_uint_gt(srupb_audit_format_admin(&ae, 1, line, sizeof line), 0);
	json_error_t e;
	json_t *o = json_loads(line, 0, &e);
	ck_assert_ptr_nonnull(o);
	ck_assert_str_eq(json_string_value(json_object_get(o, "verdict")), "admin");
	ck_assert_str_eq(json_string_value(json_object_get(o, "reason")), "bad_command");
	ck_assert_str_eq(json_string_value(json_object_get(o, "source")), "control");
	ck_assert_str_eq(json_string_value(json_object_get(o, "target")), "ffffffffffffffff");
	ck_assert_str_eq(json_string_value(json_object_get(o, "result")), "error");
	json_decref(o);
}
END_TEST

static char dir[64];
static char path[128];

static struct srupb_audit *open_log(unsigned rb, double rr, unsigned cb, double cr, unsigned tb,
                                    double tr)
{
	struct srupb_audit *a = NULL;
	char err[256];
	snprintf(dir, sizeof dir, "/tmp/srupb-audit-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/a.jsonl", dir);
	ck_assert_int_eq(srupb_audit_open(path, rb, rr, &a, err, sizeof err), SRUP_OK);
	struct srupb_audit_limits l = {rb, rr, cb, cr, tb, tr};
	srupb_audit_set_limits(a, &l);
	return a;
}

/* Lines in the log; *suppressed: the sum of their "suppressed" fields. Each line must be a
 * valid UTF-8 JSON object. */
static size_t read_log(uint64_t *suppressed, size_t *summaries)
{
	FILE *f = fopen(path, "r");
	char line[SRUPB_AUDIT_LINE_MAX + 2];
	size_t n = 0;
	*suppressed = 0;
	*summaries = 0;
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof line, f) != NULL) {
		json_error_t e;
		json_t *o = json_loads(line, 0, &e);
		ck_assert_msg(o != NULL, "line not JSON: %s", line);
		json_t *s = json_object_get(o, "suppressed");
		if (s != NULL) {
			*suppressed += (uint64_t)json_integer_value(s);
			(*summaries)++;
		}
		json_decref(o);
		n++;
	}
	fclose(f);
	return n;
}

static void remove_log(void)
{
	unlink(path);
	rmdir(dir);
}

static bool offer(struct srupb_audit *a, const void *conn, const char *cid, enum srupb_reason r)
{
	struct srupb_event ev;
	memset(&ev, 0, sizeof ev);
	ev.verdict = SRUPB_V_DROP;
	ev.reason = r;
	ev.type = -1;
	ev.client_id = cid;
	ev.conn = conn;
	if (srupb_audit_admit(a, &ev)) {
		srupb_audit_write(a, &ev);
		return true;
	}
	return false;
}

/* One connection flooding every reason gets its burst, whatever the per-reason budget; another
 * connection still gets its own; counts are exact once the log is closed. */
START_TEST(test_audit_client_cap_across_reasons)
{
	int conn_a;
	int conn_b;
	struct srupb_audit *a = open_log(1000, 1000, 5, 0.001, 1000, 1000);
	size_t written = 0;
	size_t offered = 0;
	for (int i = 0; i < 20; i++) {
		for (unsigned r = 0; r < SRUPB_R__COUNT; r++) {
			written += offer(a, &conn_a, "flooder", (enum srupb_reason)r);
			offered++;
		}
	}
	ck_assert_uint_eq(written, 5);
	ck_assert(offer(a, &conn_b, "other", SRUPB_R_REPLAY));
	ck_assert_uint_eq(srupb_audit_conn_count(a), 2);
	srupb_audit_conn_gone(a, &conn_a);
	ck_assert_uint_eq(srupb_audit_conn_count(a), 1);
	srupb_audit_conn_gone(a, &conn_b);
	ck_assert_uint_eq(srupb_audit_conn_count(a), 0);
	srupb_audit_close(a);
	uint64_t sup;
	size_t summaries;
	size_t lines = read_log(&sup, &summaries);
	/* 5 + 1 lines written, one summary for the flooder; every offered line accounted for */
	ck_assert_uint_eq(lines, 7);
	ck_assert_uint_eq(summaries, 1);
	ck_assert_uint_eq(sup, offered - 5);
	remove_log();
}
END_TEST

/* Many connections: the total cap holds, and what it held back is summarised exactly. */
START_TEST(test_audit_total_cap)
{
	static int conns[300];
	struct srupb_audit *a = open_log(1000, 1000, 1000, 1000, 10, 0.001);
	size_t written = 0;
	for (size_t i = 0; i < 300; i++) {
		written += offer(a, &conns[i], "many", SRUPB_R_BAD_SIGNATURE);
	}
	ck_assert_uint_eq(written, 10);
	srupb_audit_flush_summaries(a); /* the total summary needs no token */
	uint64_t sup;
	size_t summaries;
	size_t lines = read_log(&sup, &summaries);
	ck_assert_uint_eq(lines, 11);
	ck_assert_uint_eq(summaries, 1);
	ck_assert_uint_eq(sup, 290);
	/* at most one total summary a second */
	for (size_t i = 0; i < 300; i++) {
		(void)offer(a, &conns[i], "many", SRUPB_R_BAD_SIGNATURE);
	}
	srupb_audit_flush_summaries(a);
	ck_assert_uint_eq(read_log(&sup, &summaries), 11);
	srupb_audit_close(a);
	ck_assert_uint_eq(read_log(&sup, &summaries), 12);
	ck_assert_uint_eq(sup, 590);
	remove_log();
}
END_TEST

/* More connections than the table holds: the table stays bounded, the rest share one bucket,
 * and a freed slot is reused after DISCONNECT. */
START_TEST(test_audit_connection_table_bounded)
{
	static char conns[SRUPB_AUDIT_CONNS + 500];
	struct srupb_audit *a = open_log(100000, 1000, 2, 0.001, 100000, 1000);
	size_t beyond = 0;
	for (size_t i = 0; i < sizeof conns; i++) {
		bool w = offer(a, &conns[i], "c", SRUPB_R_REPLAY);
		if (i < SRUPB_AUDIT_CONNS) {
			ck_assert(w);
		} else {
			beyond += w;
		}
	}
	ck_assert_uint_eq(srupb_audit_conn_count(a), SRUPB_AUDIT_CONNS);
	ck_assert_uint_eq(beyond, 2); /* the shared overflow bucket's burst */
	srupb_audit_conn_gone(a, &conns[7]);
	ck_assert_uint_eq(srupb_audit_conn_count(a), SRUPB_AUDIT_CONNS - 1);
	ck_assert(offer(a, &conns[SRUPB_AUDIT_CONNS + 1], "c", SRUPB_R_REPLAY));
	ck_assert_uint_eq(srupb_audit_conn_count(a), SRUPB_AUDIT_CONNS);
	/* the same address with another client id is another connection: a fresh bucket */
	ck_assert(offer(a, &conns[0], "c", SRUPB_R_REPLAY));
	ck_assert(!offer(a, &conns[0], "c", SRUPB_R_REPLAY));
	ck_assert(offer(a, &conns[0], "someone else", SRUPB_R_REPLAY));
	srupb_audit_close(a);
	remove_log();
}
END_TEST

/* Refused admin attempts share the caps but are counted when held back, never lost silently;
 * the lines of commands that ran are all written. */
START_TEST(test_audit_admin_lines_counted)
{
	int conn;
	struct srupb_audit *a = open_log(1000, 1000, 3, 0.001, 1000, 1000);
	struct srupb_admin_event ae;
	memset(&ae, 0, sizeof ae);
	ae.reason = SRUPB_AR_NOT_ADMIN;
	ae.client_id = "intruder";
	ae.conn = &conn;
	for (int i = 0; i < 10; i++) {
		srupb_audit_admin(a, &ae);
	}
	/* an admin's commands that ran are always on record, even past the caps */
	ae.reason = SRUPB_AR_NONE;
	ae.client_id = "ops";
	ae.ok = true;
	ae.command = "revoke";
	ae.has_target = true;
	for (int i = 0; i < 10; i++) {
		ae.target = (uint64_t)i + 1;
		srupb_audit_admin(a, &ae);
	}
	srupb_audit_close(a);
	uint64_t sup;
	size_t summaries;
	ck_assert_uint_eq(read_log(&sup, &summaries), 4 + 10);
	ck_assert_uint_eq(sup, 7);
	remove_log();
}
END_TEST

/* Policy directives audit_client_rate and audit_total_rate: defaults, values, refusals. */
START_TEST(test_audit_policy_directives)
{
	struct srupb_policy *p = NULL;
	char err[256];
	const char *base = "version 1\nprefix SRUP\nallow own_channel device DATA\n";
	char text[512];

	snprintf(text, sizeof text, "%s", base);
	ck_assert_int_eq(srupb_policy_parse("t", text, strlen(text), &p, err, sizeof err), SRUP_OK);
	ck_assert_uint_eq(p->audit_client_burst, 20);
	ck_assert(p->audit_client_rate == 2.0);
	ck_assert_uint_eq(p->audit_total_burst, 200);
	ck_assert(p->audit_total_rate == 50.0);
	free(p);
	snprintf(text, sizeof text, "%saudit_client_rate 7 3\naudit_total_rate 70 30\n", base);
	ck_assert_int_eq(srupb_policy_parse("t", text, strlen(text), &p, err, sizeof err), SRUP_OK);
	ck_assert_uint_eq(p->audit_client_burst, 7);
	ck_assert(p->audit_client_rate == 3.0);
	ck_assert_uint_eq(p->audit_total_burst, 70);
	ck_assert(p->audit_total_rate == 30.0);
	free(p);
	static const char *const bad[] = {
	        "audit_client_rate 0 1\n", "audit_client_rate 5\n", "audit_total_rate 5 x\n",
	        "audit_total_rate 1 1\naudit_total_rate 2 2\n", "audit_client_rate 1 1 1\n"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		snprintf(text, sizeof text, "%s%s", base, bad[i]);
		p = NULL;
		ck_assert_msg(srupb_policy_parse("t", text, strlen(text), &p, err, sizeof err) != SRUP_OK,
		              "accepted: %s", bad[i]);
		ck_assert_ptr_null(p);
	}
}
END_TEST

Suite *plugin_audit_suite(void)
{
	Suite *s = suite_create("plugin_audit");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_audit_cut_on_character_boundary);
	tcase_add_test(tc, test_audit_invalid_utf8_escaped);
	tcase_add_test(tc, test_audit_longest_line_fits);
	tcase_add_test(tc, test_audit_peer_fields);
	tcase_add_test(tc, test_audit_client_cap_across_reasons);
	tcase_add_test(tc, test_audit_total_cap);
	tcase_add_test(tc, test_audit_connection_table_bounded);
	tcase_add_test(tc, test_audit_admin_lines_counted);
	tcase_add_test(tc, test_audit_policy_directives);
	suite_add_tcase(s, tc);
	return s;
}
