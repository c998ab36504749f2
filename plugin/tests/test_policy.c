/* SPDX-License-Identifier: MIT
 * test_policy.c - unit tests of policy.c: the shipped policy, every directive's errors with
 * file:line, limits, and topic classification (canonical ids only). */
#include <string.h>

#include <check.h>

#include "srupb.h"
#include "testutil.h"

static struct srupb_policy *parse_ok(const char *text)
{
	struct srupb_policy *p = NULL;
	char err[256] = "";
	enum srup_err rc = srupb_policy_parse("t.policy", text, strlen(text), &p, err, sizeof err);
	ck_assert_msg(rc == SRUP_OK, "parse failed: %s", err);
	ck_assert_ptr_nonnull(p);
	return p;
}

/* Parse must fail and the message must start with "t.policy:<line>:" and contain want. */
static void parse_bad(const char *text, unsigned line, const char *want)
{
	struct srupb_policy *p = NULL;
	char err[256] = "";
	char prefix[32];
	enum srup_err rc = srupb_policy_parse("t.policy", text, strlen(text), &p, err, sizeof err);
	ck_assert_int_ne(rc, SRUP_OK);
	ck_assert_ptr_null(p);
	snprintf(prefix, sizeof prefix, "t.policy:%u:", line);
	ck_assert_msg(strncmp(err, prefix, strlen(prefix)) == 0, "'%s' does not start with '%s'", err,
	              prefix);
	ck_assert_msg(strstr(err, want) != NULL, "'%s' does not mention '%s'", err, want);
}

#define MIN_POLICY "version 1\nallow own_channel device DATA\n"

START_TEST(test_policy_shipped_default_parses)
{
	struct srupb_policy *p = NULL;
	char err[256] = "";
	ck_assert_int_eq(srupb_policy_load(NULL, &p, err, sizeof err), SRUP_OK);
	ck_assert_str_eq(p->prefix, "SRUP");
	ck_assert(p->bind_identity);
	ck_assert(p->refuse_retained);
	ck_assert_int_eq(p->identity, SRUPB_ID_CERTIFICATE);
	ck_assert(srupb_policy_allows(p, SRUPB_RULE_JOIN, SRUPB_ROLE_DEVICE, SRUP_MSG_JOIN_REQ));
	ck_assert(!srupb_policy_allows(p, SRUPB_RULE_JOIN, SRUPB_ROLE_SERVER, SRUP_MSG_JOIN_REQ));
	ck_assert(srupb_policy_allows(p, SRUPB_RULE_PEER, SRUPB_ROLE_SERVER, SRUP_MSG_ACTION));
	ck_assert(!srupb_policy_allows(p, SRUPB_RULE_PEER, SRUPB_ROLE_DEVICE, SRUP_MSG_ACTION));
	ck_assert(!srupb_policy_allows(p, SRUPB_RULE_OWN, SRUPB_ROLE_DEVICE, SRUP_MSG_ACTION));
	ck_assert(srupb_policy_allows(p, SRUPB_RULE_OWN, SRUPB_ROLE_DEVICE, SRUP_MSG_DATA));
	ck_assert(!srupb_policy_allows(p, SRUPB_RULE_OWN, SRUPB_ROLE_DEVICE, 0x07));
	ck_assert(!srupb_policy_allows(p, SRUPB_RULE_OWN, 99, SRUP_MSG_DATA));
	ck_assert_uint_eq(p->n_admins, 0);
	free(p);
}
END_TEST

START_TEST(test_policy_file_on_disk_matches_embedded)
{
	struct srupb_policy *a = NULL;
	struct srupb_policy *b = NULL;
	char err[256] = "";
	char path[1024];
	snprintf(path, sizeof path, "%s/../../policy/srup.policy", SRUP_VECTORS_DIR);
	ck_assert_int_eq(srupb_policy_load(NULL, &a, err, sizeof err), SRUP_OK);
	ck_assert_msg(srupb_policy_load(path, &b, err, sizeof err) == SRUP_OK, "%s", err);
	ck_assert_int_eq(memcmp(a, b, sizeof *a), 0);
	free(a);
	free(b);
}
END_TEST

START_TEST(test_policy_rejects_with_file_and_line)
{
	parse_bad("", 0, "version 1");
	parse_bad("# only a comment\n", 0, "version 1");
	parse_bad("allow own_channel device DATA\n", 1, "first directive");
	parse_bad("version 2\n", 1, "unsupported policy version");
	parse_bad("version 1\nversion 1\n", 2, "twice");
	parse_bad("version 1\n\nfrobnicate yes\n", 3, "unknown directive 'frobnicate'");
	parse_bad(MIN_POLICY "allow own_channel admin DATA\n", 3, "unknown role 'admin'");
	parse_bad(MIN_POLICY "allow own_channel device FOO\n", 3, "unknown message type 'FOO'");
	parse_bad(MIN_POLICY "allow own_channel device GENERIC\n", 3, "unknown message type");
	parse_bad(MIN_POLICY "allow channel device DATA\n", 3, "unknown channel kind");
	parse_bad(MIN_POLICY "allow own_channel device\n", 3, "needs");
	parse_bad(MIN_POLICY "identity cert\n", 3, "username or client_id");
	parse_bad(MIN_POLICY "bind_identity maybe\n", 3, "yes or no");
	parse_bad(MIN_POLICY "retained keep\n", 3, "refuse or allow");
	parse_bad(MIN_POLICY "on_violation explode\n", 3, "drop or disconnect");
	parse_bad(MIN_POLICY "durability sometimes\n", 3, "fsync, metasync, os or map");
	parse_bad(MIN_POLICY "other_topics deny\n", 3, "allow or defer");
	parse_bad(MIN_POLICY "prefix SRUP/x\n", 3, "one topic level");
	parse_bad(MIN_POLICY "prefix\n", 3, "needs");
	parse_bad(MIN_POLICY "admin 0xABC\n", 3, "not a SRUP id");
	parse_bad(MIN_POLICY "admin 00ab\n", 3, "not a SRUP id");
	parse_bad(MIN_POLICY "audit_rate 0 10\n", 3, "audit_rate");
	parse_bad(MIN_POLICY "audit_rate 10\n", 3, "needs");
	parse_bad(MIN_POLICY "key_cache 0\n", 3, "key_cache");
	parse_bad(MIN_POLICY "key_cache -5\n", 3, "key_cache");
	parse_bad(MIN_POLICY "key_cache 12abc\n", 3, "key_cache");
	parse_bad(MIN_POLICY "metrics_interval 0\n", 3, "metrics_interval");
	parse_bad("version 1\nprefix SRUP\n", 0, "no 'allow' rule");
	parse_bad(MIN_POLICY "seen_window admin 5\n", 3, "unknown role 'admin'");
	parse_bad(MIN_POLICY "seen_window device\n", 3, "needs");
	parse_bad(MIN_POLICY "seen_window device -1\n", 3, "seen_window");
	parse_bad(MIN_POLICY "seen_window device 5\nseen_window device 6\n", 4, "twice");
	parse_bad(MIN_POLICY "seen_index 100\nseen_window server 101\n", 0,
	          "seen_window server 101 is larger than seen_index 100");
}
END_TEST

/* seen_window: per-role defaults, explicit values, defaults lowered to a smaller seen_index. */
START_TEST(test_policy_seen_windows)
{
	struct srupb_policy *p = parse_ok(MIN_POLICY);
	ck_assert_uint_eq(p->seen_index, 262144);
	ck_assert_uint_eq(p->seen_window[SRUPB_ROLE_SERVER], 65536);
	ck_assert_uint_eq(p->seen_window[SRUPB_ROLE_DEVICE], 64);
	ck_assert_uint_eq(p->seen_window[SRUPB_ROLE_OBSERVER], 64);
	ck_assert_uint_eq(p->seen_window[SRUPB_ROLE_NONE], 0);
	free(p);
	p = parse_ok(MIN_POLICY "seen_index 1000\nseen_window device 0\nseen_window observer 1000\n");
	ck_assert_uint_eq(p->seen_window[SRUPB_ROLE_SERVER], 1000); /* default, lowered */
	ck_assert_uint_eq(p->seen_window[SRUPB_ROLE_DEVICE], 0);
	ck_assert_uint_eq(p->seen_window[SRUPB_ROLE_OBSERVER], 1000);
	free(p);
	p = parse_ok(MIN_POLICY "seen_index 0\n"); /* the index off: nothing is indexed */
	for (unsigned r = 0; r < SRUPB_ROLE__COUNT; r++) {
		ck_assert_uint_eq(p->seen_window[r], 0);
	}
	free(p);
}
END_TEST

/* max_payload: 63 (below), 64 (min), SRUP_MSG_MAX (max), SRUP_MSG_MAX + 1 (above). */
START_TEST(test_policy_max_payload_bounds)
{
	static const struct {
		const char *value;
		bool ok;
		size_t want;
	} cases[] = {
	        {"63", false, 0},
	        {"64", true, 64},
	        {"1048576", true, 1048576},
	        {"1048577", false, 0},
	        {"99999999999999999999999", false, 0},
	};
	char text[256];
	snprintf(text, sizeof text, MIN_POLICY "max_payload %s\n", cases[_i].value);
	if (cases[_i].ok) {
		struct srupb_policy *p = parse_ok(text);
		ck_assert_uint_eq(p->max_payload, cases[_i].want);
		free(p);
	} else {
		parse_bad(text, 3, "max_payload");
	}
}
END_TEST

/* Without an identity directive the identity is the client certificate's CN: a name a client
 * merely claims (username, client id) is never the default. */
START_TEST(test_policy_identity_defaults_to_certificate)
{
	struct srupb_policy *p = parse_ok(MIN_POLICY);
	ck_assert_int_eq(p->identity, SRUPB_ID_CERTIFICATE);
	ck_assert(p->bind_identity);
	free(p);
	p = parse_ok(MIN_POLICY "identity username\n");
	ck_assert_int_eq(p->identity, SRUPB_ID_USERNAME);
	free(p);
}
END_TEST

START_TEST(test_policy_directives_take_effect)
{
	struct srupb_policy *p = parse_ok("version 1 # comment\r\n"
	                                  "prefix dev\n"
	                                  "identity client_id\n"
	                                  "bind_identity no\n"
	                                  "retained allow\n"
	                                  "on_violation disconnect\n"
	                                  "audit_accepts yes\n"
	                                  "audit_rate 5 2\n"
	                                  "key_cache 7\n"
	                                  "seen_index 0\n"
	                                  "durability fsync\n"
	                                  "other_topics defer\n"
	                                  "admin b9d077e223834cf6\n"
	                                  "admin 0\n"
	                                  "metrics_reader 1f\n"
	                                  "allow\tjoin_topic  observer OBS_JOIN_REQ JOIN_REQ\n");
	ck_assert_str_eq(p->prefix, "dev");
	ck_assert_uint_eq(p->prefix_len, 3);
	ck_assert_int_eq(p->identity, SRUPB_ID_CLIENT_ID);
	ck_assert(!p->bind_identity);
	ck_assert(!p->refuse_retained);
	ck_assert(p->disconnect_on_violation);
	ck_assert(p->audit_accepts);
	ck_assert_uint_eq(p->audit_burst, 5);
	ck_assert_uint_eq(p->key_cache, 7);
	ck_assert_uint_eq(p->seen_index, 0);
	ck_assert_int_eq(p->durability, SRUPB_SYNC_FSYNC);
	ck_assert(p->other_defer);
	ck_assert(srupb_policy_is_admin(p, 0xb9d077e223834cf6u));
	ck_assert(srupb_policy_is_admin(p, 0));
	ck_assert(!srupb_policy_is_admin(p, 1));
	/* a metrics reader reads the counters and is no admin; an admin reads them too */
	ck_assert(srupb_policy_reads_metrics(p, 0x1f));
	ck_assert(!srupb_policy_is_admin(p, 0x1f));
	ck_assert(srupb_policy_reads_metrics(p, 0));
	ck_assert(!srupb_policy_reads_metrics(p, 1));
	ck_assert(srupb_policy_allows(p, SRUPB_RULE_JOIN, SRUPB_ROLE_OBSERVER, SRUP_MSG_JOIN_REQ));
	ck_assert(!srupb_policy_allows(p, SRUPB_RULE_JOIN, SRUPB_ROLE_DEVICE, SRUP_MSG_JOIN_REQ));
	free(p);
}
END_TEST

START_TEST(test_policy_classifies_topics)
{
	struct srupb_policy *p = parse_ok(MIN_POLICY);
	static const struct {
		const char *topic;
		enum srupb_topic_kind kind;
		uint64_t a;
		uint64_t b;
	} cases[] = {
	        {"SRUP/b9d077e223834cf6", SRUPB_T_DEVICE, 0xb9d077e223834cf6u, 0},
	        {"SRUP/0", SRUPB_T_DEVICE, 0, 0},
	        {"SRUP/abc", SRUPB_T_DEVICE, 0xabc, 0},
	        {"SRUP/servers/a/b", SRUPB_T_JOIN, 0xa, 0xb},
	        {"SRUP/00ab", SRUPB_T_PROTECTED, 0, 0},
	        {"SRUP/ABC", SRUPB_T_PROTECTED, 0, 0},
	        {"SRUP/0xab", SRUPB_T_PROTECTED, 0, 0},
	        {"SRUP/1b9d077e223834cf6", SRUPB_T_PROTECTED, 0, 0},
	        {"SRUP/", SRUPB_T_PROTECTED, 0, 0},
	        {"SRUP", SRUPB_T_PROTECTED, 0, 0},
	        {"SRUP/abc/def", SRUPB_T_PROTECTED, 0, 0},
	        {"SRUP/servers", SRUPB_T_PROTECTED, 0, 0},
	        {"SRUP/servers/a", SRUPB_T_PROTECTED, 0, 0},
	        {"SRUP/servers/a/b/c", SRUPB_T_PROTECTED, 0, 0},
	        {"SRUP/servers/a/", SRUPB_T_PROTECTED, 0, 0},
	        {"SRUP/servers/0a/b", SRUPB_T_PROTECTED, 0, 0},
	        {"SRUPX/abc", SRUPB_T_OTHER, 0, 0},
	        {"srup/abc", SRUPB_T_OTHER, 0, 0},
	        {"foo/bar", SRUPB_T_OTHER, 0, 0},
	        {"$SYS/broker/uptime", SRUPB_T_OTHER, 0, 0},
	        {"$CONTROL/srup/v1", SRUPB_T_CONTROL, 0, 0},
	        {"$CONTROL/srup/v1/response", SRUPB_T_CONTROL_RESP, 0, 0},
	        {"$CONTROL/srup/v2", SRUPB_T_OTHER, 0, 0},
	        {"$CONTROL/dynamic-security/v1", SRUPB_T_OTHER, 0, 0},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct srupb_topic t;
		srupb_policy_classify(p, cases[i].topic, &t);
		ck_assert_msg(t.kind == cases[i].kind, "%s: kind %d, want %d", cases[i].topic, t.kind,
		              cases[i].kind);
		ck_assert_msg(t.a == cases[i].a && t.b == cases[i].b, "%s: ids", cases[i].topic);
	}
	free(p);
}
END_TEST

START_TEST(test_policy_reason_names_match_contract)
{
	static const char *const want[] = {
	        "empty_payload",       "too_large",      "truncated",       "field_length",
	        "trailing_bytes",      "bad_version",    "unknown_type",    "bad_pad",
	        "not_allowed",         "unknown_sender", "revoked_sender",  "identity_mismatch",
	        "join_topic_mismatch", "replay",         "bad_signature",   "retained_refused",
	        "internal_error",      "not_member",     "no_pending_join", "pending_full",
	        "unknown_target",      "bad_key",        "seen_index_full", "no_identity"};
	ck_assert_uint_eq(sizeof want / sizeof want[0], SRUPB_R__COUNT);
	for (unsigned i = 0; i < SRUPB_R__COUNT; i++) {
		ck_assert_str_eq(srupb_reason_name(i), want[i]);
	}
	ck_assert_str_eq(srupb_reason_name(SRUPB_R__COUNT), "none");
}
END_TEST

Suite *plugin_policy_suite(void)
{
	Suite *s = suite_create("plugin_policy");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_policy_shipped_default_parses);
	tcase_add_test(tc, test_policy_file_on_disk_matches_embedded);
	tcase_add_test(tc, test_policy_rejects_with_file_and_line);
	tcase_add_loop_test(tc, test_policy_max_payload_bounds, 0, 5);
	tcase_add_test(tc, test_policy_identity_defaults_to_certificate);
	tcase_add_test(tc, test_policy_directives_take_effect);
	tcase_add_test(tc, test_policy_seen_windows);
	tcase_add_test(tc, test_policy_classifies_topics);
	tcase_add_test(tc, test_policy_reason_names_match_contract);
	suite_add_tcase(s, tc);
	return s;
}
