/* SPDX-License-Identifier: MIT
 * test_modules.c - unit tests of the small plugin modules: audit line format (escaping, nulls,
 * truncation, time), log escaping, the key cache (LRU bound, generations, bad PEM). */
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include <openssl/evp.h>

#include "srupb.h"
#include "stubs.h"
#include "testutil.h"

START_TEST(test_audit_format_full_and_null_fields)
{
	char line[2048];
	struct srupb_event ev;
	memset(&ev, 0, sizeof ev);
	ev.verdict = SRUPB_V_DROP;
	ev.reason = SRUPB_R_REPLAY;
	ev.client_id = "dev\"1\\\n";
	ev.identity = "b9d077e223834cf6";
	ev.topic = "SRUP/b9d077e223834cf6";
	ev.type = SRUP_MSG_ACTION;
	ev.has_sender = true;
	ev.sender = 0xb9d077e223834cf6u;
	ev.has_seq = true;
	ev.seq = UINT64_MAX;
	ev.detail = "d";
	size_t n = srupb_audit_format(&ev, 0, line, sizeof line);
	ck_assert_uint_gt(n, 0);
	ck_assert_uint_eq(strlen(line), n);
	regex_t re;
	ck_assert_int_eq(regcomp(&re,
	                         "^\\{\"time\":\"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
	                         "\\.[0-9]{3}Z\",\"verdict\":\"drop\",\"reason\":\"replay\","
	                         "\"client_id\":\"dev\\\\\"1\\\\\\\\\\\\u000a\",\"identity\":"
	                         "\"b9d077e223834cf6\",\"topic\":\"SRUP/b9d077e223834cf6\","
	                         "\"type\":\"ACTION\",\"sender\":\"b9d077e223834cf6\","
	                         "\"seq\":\"0xffffffffffffffff\",\"address\":null,"
	                         "\"cert_sha256\":null,\"detail\":\"d\"\\}\n$",
	                         REG_EXTENDED),
	                 0);
	ck_assert_msg(regexec(&re, line, 0, NULL, 0) == 0, "bad line: %s", line);
	regfree(&re);

	memset(&ev, 0, sizeof ev);
	ev.verdict = SRUPB_V_ACCEPT;
	ev.reason = SRUPB_R_NONE;
	ev.type = -1;
	n = srupb_audit_format(&ev, 3, line, sizeof line);
	ck_assert_uint_gt(n, 0);
	ck_assert_ptr_nonnull(strstr(line, "\"verdict\":\"accept\",\"reason\":null,\"client_id\":null,"
	                                   "\"identity\":null,\"topic\":null,\"type\":null,"
	                                   "\"sender\":null,\"seq\":null,\"address\":null,"
	                                   "\"cert_sha256\":null,\"detail\":null,"
	                                   "\"suppressed\":3}\n"));
	/* too small a buffer: nothing, not a cut line */
	ck_assert_uint_eq(srupb_audit_format(&ev, 0, line, 40), 0);
}
END_TEST

START_TEST(test_audit_truncates_long_strings)
{
	char line[4096];
	char topic[600];
	struct srupb_event ev;
	memset(topic, 'a', sizeof topic - 1);
	topic[sizeof topic - 1] = '\0';
	memset(&ev, 0, sizeof ev);
	ev.verdict = SRUPB_V_DROP;
	ev.reason = SRUPB_R_NOT_ALLOWED;
	ev.type = -1;
	ev.topic = topic;
	ck_assert_uint_gt(srupb_audit_format(&ev, 0, line, sizeof line), 0);
	char want[140];
	memset(want, 'a', SRUPB_LOG_TRUNC);
	snprintf(want + SRUPB_LOG_TRUNC, sizeof want - SRUPB_LOG_TRUNC, "...\"");
	ck_assert_ptr_nonnull(strstr(line, want));
	size_t count = 0;
	for (const char *c = line; *c != '\0'; c++) {
		count += *c == 'a';
	}
	/* 128 from the topic, one each from "reason", "not_allowed", "address", "cert_sha256" and
	 * "detail" */
	ck_assert_uint_eq(count, SRUPB_LOG_TRUNC + 5);
}
END_TEST

START_TEST(test_log_escape)
{
	char out[4 * SRUPB_LOG_TRUNC + 8];
	srupb_log_escape("a|b\\c\nd\x7f", out, sizeof out);
	ck_assert_str_eq(out, "a\\x7cb\\x5cc\\x0ad\\x7f");
	srupb_log_escape(NULL, out, sizeof out);
	ck_assert_str_eq(out, "-");
	char longs[300];
	memset(longs, 'x', sizeof longs - 1);
	longs[sizeof longs - 1] = '\0';
	srupb_log_escape(longs, out, sizeof out);
	ck_assert_uint_eq(strlen(out), SRUPB_LOG_TRUNC + 3);
	char tiny[6];
	srupb_log_escape("\n\n\n", tiny, sizeof tiny);
	ck_assert_str_eq(tiny, "\\x0a");
}
END_TEST

/* Rotation: after the file is moved away the plugin reopens the path within a second; the old
 * file keeps what was written before. */
START_TEST(test_audit_reopens_after_rotation)
{
	char dir[] = "/tmp/srupb-audit-XXXXXX";
	char path[64];
	char moved[64];
	struct srupb_audit *a = NULL;
	struct srupb_event ev;
	char err[128];
	size_t len = 0;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/a.jsonl", dir);
	snprintf(moved, sizeof moved, "%s/a.jsonl.1", dir);
	ck_assert_int_eq(srupb_audit_open(path, 10, 10, &a, err, sizeof err), SRUP_OK);
	memset(&ev, 0, sizeof ev);
	ev.verdict = SRUPB_V_DROP;
	ev.reason = SRUPB_R_REPLAY;
	ev.type = -1;
	ev.detail = "first";
	ck_assert(srupb_audit_admit(a, &ev));
	srupb_audit_write(a, &ev);
	ck_assert_int_eq(rename(path, moved), 0);
	sleep(1);
	srupb_audit_check_rotation(a);
	ev.detail = "second";
	ck_assert(srupb_audit_admit(a, &ev));
	srupb_audit_write(a, &ev);
	srupb_audit_close(a);
	char *old = tu_read_file(moved, &len);
	char *cur = tu_read_file(path, &len);
	ck_assert_ptr_nonnull(strstr(old, "\"detail\":\"first\""));
	ck_assert_ptr_null(strstr(old, "second"));
	ck_assert_ptr_nonnull(strstr(cur, "\"detail\":\"second\""));
	free(old);
	free(cur);
	char cmd[96];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
	/* an unwritable path is refused with a reason */
	ck_assert_int_eq(srupb_audit_open("/proc/srupb/no/a.jsonl", 1, 1, &a, err, sizeof err),
	                 SRUP_ERR_IO);
	ck_assert_ptr_nonnull(strstr(err, "cannot open audit log"));
}
END_TEST

static char *pem_of(const char *file, size_t *len)
{
	struct srup_key *k = NULL;
	char *pem = NULL;
	ck_assert_int_eq(srup_key_load_file(tu_vector_path(file), SRUP_KEY_PUBLIC, &k, NULL), SRUP_OK);
	ck_assert_int_eq(srup_key_public_pem(k, &pem, len), SRUP_OK);
	srup_key_free(k);
	return pem;
}

START_TEST(test_keystore_lru_bound_and_generations)
{
	size_t la = 0;
	size_t lb = 0;
	char *a = pem_of("keys/server_public.pem", &la);
	char *b = pem_of("keys/device_public.pem", &lb);
	struct srupb_keystore *ks = srupb_keystore_new(2);
	const struct srup_key *k1 = NULL;
	const struct srup_key *k = NULL;
	uint64_t hits = 0;
	uint64_t misses = 0;

	ck_assert_ptr_nonnull(ks);
	ck_assert_int_eq(srupb_keystore_get(ks, 1, 10, a, la, &k1, NULL), SRUP_OK);
	ck_assert_int_eq(srupb_keystore_get(ks, 1, 10, a, la, &k, NULL), SRUP_OK);
	ck_assert_ptr_eq(k, k1);
	ck_assert_int_eq(srupb_keystore_get(ks, 2, 10, b, lb, &k, NULL), SRUP_OK);
	ck_assert_int_eq(srupb_keystore_get(ks, 1, 10, a, la, &k, NULL), SRUP_OK); /* 1 most recent */
	ck_assert_int_eq(srupb_keystore_get(ks, 3, 10, b, lb, &k, NULL), SRUP_OK); /* evicts 2 */
	ck_assert_uint_eq(srupb_keystore_size(ks), 2);
	srupb_keystore_stats(ks, &hits, &misses);
	ck_assert_uint_eq(hits, 2);
	ck_assert_uint_eq(misses, 3);
	ck_assert_int_eq(srupb_keystore_get(ks, 1, 10, a, la, &k, NULL), SRUP_OK);
	srupb_keystore_stats(ks, &hits, &misses);
	ck_assert_uint_eq(hits, 3); /* 1 survived */
	ck_assert_int_eq(srupb_keystore_get(ks, 2, 10, b, lb, &k, NULL), SRUP_OK);
	srupb_keystore_stats(ks, &hits, &misses);
	ck_assert_uint_eq(misses, 4); /* 2 had been evicted */
	/* a new generation re-parses, even from the same id */
	ck_assert_int_eq(srupb_keystore_get(ks, 2, 11, a, la, &k, NULL), SRUP_OK);
	srupb_keystore_stats(ks, &hits, &misses);
	ck_assert_uint_eq(misses, 5);
	ck_assert_uint_eq(srup_key_bits(k), 2048);
	/* an unusable PEM is refused and not cached */
	ck_assert_int_eq(srupb_keystore_get(ks, 9, 1, "garbage", 7, &k, NULL), SRUP_ERR_KEY);
	ck_assert_ptr_null(k);
	srupb_keystore_drop(ks, 2);
	ck_assert_uint_eq(srupb_keystore_size(ks), 1);
	srupb_keystore_clear(ks);
	ck_assert_uint_eq(srupb_keystore_size(ks), 0);
	srupb_keystore_free(ks);
	srupb_keystore_free(NULL);
	ck_assert_ptr_null(srupb_keystore_new(0));
	free(a);
	free(b);
}
END_TEST

/* The cached verifier agrees with libsrup's signer: valid, altered byte, wrong key. */
START_TEST(test_keystore_verify_matches_libsrup)
{
	static const uint8_t tok[] = "TOKEN12345";
	struct srup_key *priv = NULL;
	size_t la = 0;
	size_t lb = 0;
	char *dev_pem = pem_of("keys/device_public.pem", &la);
	char *srv_pem = pem_of("keys/server_public.pem", &lb);
	const struct srup_key *k = NULL;
	struct srup_msg m;
	struct srup_msg p;
	uint8_t buf[1024];
	size_t n = 0;

	ck_assert_int_eq(srup_key_load_file(tu_vector_path("keys/device_private.pem"), SRUP_KEY_PRIVATE,
	                                    &priv, NULL),
	                 SRUP_OK);
	memset(&m, 0, sizeof m);
	m.type = SRUP_MSG_DATA;
	m.sequence_id = 3;
	m.sender_id = 1;
	m.token = (struct srup_bytes){tok, 10};
	m.data_id = (struct srup_bytes){(const uint8_t *)"t", 1};
	ck_assert_int_eq(srup_msg_sign_encode(&m, priv, buf, sizeof buf, &n, NULL), SRUP_OK);
	ck_assert_int_eq(srup_msg_parse(buf, n, &p, NULL), SRUP_OK);
	struct srupb_keystore *ks = srupb_keystore_new(4);
	struct srup_verifier *v1 = NULL;
	struct srup_verifier *v2 = NULL;
	ck_assert_int_eq(srupb_keystore_get(ks, 1, 1, dev_pem, la, &k, &v1), SRUP_OK);
	ck_assert_int_eq(srupb_keystore_get(ks, 2, 1, srv_pem, lb, &k, &v2), SRUP_OK);
	ck_assert_ptr_nonnull(v1);
	ck_assert_ptr_ne(v1, v2);
	ck_assert_int_eq(srup_verifier_msg(v1, &p, NULL), SRUP_OK);
	ck_assert_int_eq(srup_verifier_msg(v2, &p, NULL), SRUP_ERR_SIG);
	/* a hit hands back the same prepared verifier */
	struct srup_verifier *again = NULL;
	ck_assert_int_eq(srupb_keystore_get(ks, 1, 1, dev_pem, la, &k, &again), SRUP_OK);
	ck_assert_ptr_eq(again, v1);
	buf[20] ^= 1; /* first byte of the token: still parses, no longer verifies */
	ck_assert_int_eq(srup_msg_parse(buf, n, &p, NULL), SRUP_OK);
	ck_assert_int_eq(srup_verifier_msg(v1, &p, NULL), SRUP_ERR_SIG);
	srupb_keystore_free(ks);
	srup_key_free(priv);
	free(dev_pem);
	free(srv_pem);
}
END_TEST

Suite *plugin_modules_suite(void)
{
	Suite *s = suite_create("plugin_modules");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_audit_format_full_and_null_fields);
	tcase_add_test(tc, test_audit_truncates_long_strings);
	tcase_add_test(tc, test_log_escape);
	tcase_add_test(tc, test_audit_reopens_after_rotation);
	tcase_add_test(tc, test_keystore_lru_bound_and_generations);
	tcase_add_test(tc, test_keystore_verify_matches_libsrup);
	suite_add_tcase(s, tc);
	return s;
}
