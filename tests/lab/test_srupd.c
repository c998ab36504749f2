/* SPDX-License-Identifier: MIT
 * test_srupd.c - Check tests of the daemons' shared runtime (tools/common/srupd.c): the config
 * parser, the durable per-peer sequence state, token comparison and command splitting.
 * MQTT and the flows are covered by the lab tests, not here. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "srupd.h"

static char dir[64];

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/srupd-test.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	srupd_log_init("test", SRUPD_ERR);
}

static void teardown(void)
{
	char cmd[96];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static const char *write_conf(const char *name, const char *text)
{
	static char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
	return path;
}

#define BASE_CONF                                                                                  \
	"identity = b9d077e223834cf6\n"                                                                \
	"private_key = /k.pem\npeer_keys = /peers\nbroker_host = 127.0.0.1\n"                          \
	"broker_port = 28883\nstate_file = /s\ncontrol_socket = /c.sock\n"

START_TEST(test_config_accepts_a_complete_file)
{
	struct srupd_config c;
	const char *p = write_conf("ok.conf", "# a comment\n\n" BASE_CONF "role = observer\n"
	                                      "  server =  0x5F5F5F5F5F5F5F5F  \ntimeout = 7\n");

	ck_assert_int_eq(srupd_config_load(p, &c), 0);
	ck_assert_uint_eq(c.identity, 0xb9d077e223834cf6ull);
	ck_assert_str_eq(c.identity_text, "b9d077e223834cf6");
	ck_assert_str_eq(c.role, "observer");
	ck_assert_uint_eq(c.server, 0x5f5f5f5f5f5f5f5full);
	ck_assert_int_eq(c.broker_port, 28883);
	ck_assert_int_eq(c.timeout_s, 7);
	ck_assert_str_eq(c.join_policy, "accept");
}
END_TEST

START_TEST(test_config_rejects_bad_files)
{
	struct srupd_config c;
	static const char *const bad[] = {
	        BASE_CONF "colour = blue\n",                       /* unknown key */
	        BASE_CONF "broker_port = 0\n",                     /* port 0 */
	        BASE_CONF "broker_port = 70000\n",                 /* port too big */
	        BASE_CONF "broker_port = 12ab\n",                  /* not a number */
	        BASE_CONF "identity = xyz\n",                      /* not hex */
	        BASE_CONF "identity = 0\n",                        /* zero id */
	        BASE_CONF "role = king\n",                         /* unknown role */
	        BASE_CONF "tls_ca = /ca.crt\n",                    /* TLS half configured */
	        BASE_CONF "just a line\n",                         /* no '=' */
	        "identity = b9d077e223834cf6\nprivate_key = /k\n", /* required keys missing */
	        BASE_CONF "private_key =\n",                       /* empty value */
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *p = write_conf("bad.conf", bad[i]);
		ck_assert_msg(srupd_config_load(p, &c) != 0, "accepted bad config %zu", i);
	}
	ck_assert_int_ne(srupd_config_load("/nonexistent/x.conf", &c), 0);
}
END_TEST

START_TEST(test_state_round_trip_is_durable)
{
	struct srupd_state st;
	struct srupd_state back;
	struct srupd_peer *p;
	char path[128];
	char tmp[140];

	snprintf(path, sizeof(path), "%s/state", dir);
	ck_assert_int_eq(srupd_state_load(&st, path), 0); /* no file yet: empty */
	ck_assert_uint_eq(st.n, 0);
	p = srupd_state_peer(&st, 0xb9d077e223834cf6ull);
	ck_assert_ptr_nonnull(p);
	p->sent = 41;
	p->received = UINT64_MAX - 1;
	p->member = 1;
	p = srupd_state_peer(&st, 0x0123456789abcdefull); /* 15-digit text form */
	p->sent = 1;
	ck_assert_ptr_eq(srupd_state_peer(&st, 0xb9d077e223834cf6ull), &st.peers[0]);
	ck_assert_int_eq(srupd_state_save(&st), 0);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	ck_assert_int_ne(access(tmp, F_OK), 0); /* renamed into place, nothing left behind */

	ck_assert_int_eq(srupd_state_load(&back, path), 0);
	ck_assert_uint_eq(back.n, 2);
	ck_assert_uint_eq(back.peers[0].id, 0xb9d077e223834cf6ull);
	ck_assert_uint_eq(back.peers[0].sent, 41);
	ck_assert_uint_eq(back.peers[0].received, UINT64_MAX - 1);
	ck_assert_int_eq(back.peers[0].member, 1);
	ck_assert_uint_eq(back.peers[1].id, 0x0123456789abcdefull);
	ck_assert_uint_eq(back.peers[1].sent, 1);
	ck_assert_int_eq(back.peers[1].member, 0);
}
END_TEST

START_TEST(test_state_refuses_a_corrupt_file)
{
	struct srupd_state st;
	const char *p = write_conf("corrupt", "peer b9d077e223834cf6 sent 1 received\n");

	ck_assert_int_ne(srupd_state_load(&st, p), 0);
	p = write_conf("corrupt2", "peer nothex sent 1 received 2 member 0\n");
	ck_assert_int_ne(srupd_state_load(&st, p), 0);
}
END_TEST

START_TEST(test_state_table_is_bounded)
{
	struct srupd_state *st = calloc(1, sizeof(*st));
	uint64_t i;

	ck_assert_ptr_nonnull(st);
	for (i = 1; i <= SRUPD_PEERS_MAX; i++) {
		ck_assert_ptr_nonnull(srupd_state_peer(st, i));
	}
	ck_assert_ptr_null(srupd_state_peer(st, SRUPD_PEERS_MAX + 1));
	ck_assert_ptr_nonnull(srupd_state_peer(st, 5)); /* existing ones still found */
	free(st);
}
END_TEST

START_TEST(test_token_eq_is_exact)
{
	const char *tok = "fb47ce0f-aa3f-43f6-a3ac-c05e6d7ca0dc";
	struct srup_bytes b = {(const uint8_t *)tok, strlen(tok)};
	struct srup_bytes shorter = {(const uint8_t *)tok, strlen(tok) - 1};
	struct srup_bytes empty = {NULL, 0};

	ck_assert_int_eq(srupd_token_eq(&b, tok), 1);
	ck_assert_int_eq(srupd_token_eq(&shorter, tok), 0);
	ck_assert_int_eq(srupd_token_eq(&b, "fb47ce0f-aa3f-43f6-a3ac-c05e6d7ca0dd"), 0);
	ck_assert_int_eq(srupd_token_eq(&empty, ""), 0); /* an empty token never matches */
}
END_TEST

START_TEST(test_split_words)
{
	char line[] = "  send  update\tabc http://x/y  \r\n";
	char *argv[3];

	ck_assert_int_eq(srupd_split(line, argv, 3), 3);
	ck_assert_str_eq(argv[0], "send");
	ck_assert_str_eq(argv[1], "update");
	ck_assert_str_eq(argv[2], "abc");
}
END_TEST

START_TEST(test_write_file_replaces_content)
{
	char path[128];
	char buf[32] = "";
	FILE *f;

	snprintf(path, sizeof(path), "%s/f", dir);
	ck_assert_int_eq(srupd_write_file(path, "first version", 13), 0);
	ck_assert_int_eq(srupd_write_file(path, "second", 6), 0);
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fread(buf, 1, sizeof(buf) - 1, f), 6);
	fclose(f);
	ck_assert_str_eq(buf, "second");
	ck_assert_int_ne(srupd_write_file("/nonexistent-dir/f", "x", 1), 0);
}
END_TEST

/* Issue 11: one conversation counter per peer, as pySRUP keeps (spec section 6). */
START_TEST(test_next_seq_is_above_both_directions)
{
	struct srupd_peer p;
	uint64_t n = 0;
	memset(&p, 0, sizeof(p));
	ck_assert_int_eq(srupd_next_seq(&p, &n), 0);
	ck_assert_uint_eq(n, 1); /* the first message to a new peer carries 1 */
	p.sent = 7;
	p.received = 3;
	ck_assert_int_eq(srupd_next_seq(&p, &n), 0);
	ck_assert_uint_eq(n, 8);
	p.received = 40; /* the peer has spoken since: our next number is above its */
	ck_assert_int_eq(srupd_next_seq(&p, &n), 0);
	ck_assert_uint_eq(n, 41);
	p.received = UINT64_MAX;
	ck_assert_int_eq(srupd_next_seq(&p, &n), -1);
	p.received = 0;
	p.sent = UINT64_MAX;
	ck_assert_int_eq(srupd_next_seq(&p, &n), -1);
}
END_TEST

static Suite *srupd_suite(void)
{
	Suite *s = suite_create("srupd");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_config_accepts_a_complete_file);
	tcase_add_test(tc, test_config_rejects_bad_files);
	tcase_add_test(tc, test_state_round_trip_is_durable);
	tcase_add_test(tc, test_state_refuses_a_corrupt_file);
	tcase_add_test(tc, test_state_table_is_bounded);
	tcase_add_test(tc, test_token_eq_is_exact);
	tcase_add_test(tc, test_next_seq_is_above_both_directions);
	tcase_add_test(tc, test_split_words);
	tcase_add_test(tc, test_write_file_replaces_content);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(srupd_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
