/* SPDX-License-Identifier: MIT
 * test_fuzz_regress.c - minimal unit tests for plugin defects found by the fuzz targets of
 * tests/fuzz/ (each names the corpus input that found it). The fuzzers keep replaying those
 * inputs; these tests say what was wrong in one module, without the fuzz harness. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#include "srupb.h"
#include "stubs.h"
#include "testutil.h"

/* 1 if p[0, n) is valid UTF-8 (no cut or stray sequences). */
static int utf8_ok(const unsigned char *p, size_t n)
{
	size_t i = 0;
	while (i < n) {
		size_t len = p[i] < 0x80 ? 1
		                         : (p[i] >= 0xc2 && p[i] <= 0xdf
		                                    ? 2
		                                    : (p[i] >= 0xe0 && p[i] <= 0xef
		                                               ? 3
		                                               : (p[i] >= 0xf0 && p[i] <= 0xf4 ? 4 : 0)));
		if (len == 0 || n - i < len) {
			return 0;
		}
		for (size_t k = 1; k < len; k++) {
			if ((p[i + k] & 0xc0) != 0x80) {
				return 0;
			}
		}
		i += len;
	}
	return 1;
}

/* corpus/pipeline/audit_long_utf8_topic: a topic over SRUPB_LOG_TRUNC characters whose last
 * kept character is a multi-byte one was cut inside that character, so the audit line was not
 * valid UTF-8 (a JSON reader refuses the whole log). */
START_TEST(test_audit_cut_keeps_utf8_characters_whole)
{
	/* "SRUP/" + ASCII up to character 127, then three-byte characters (U+4E2D) */
	static const char han[] = "\xe4\xb8\xad";
	char topic[512];
	char line[2048];
	struct srupb_event ev;
	size_t n;

	for (size_t lead = SRUPB_LOG_TRUNC - 3; lead <= SRUPB_LOG_TRUNC; lead++) {
		memset(topic, 'a', lead);
		topic[lead] = '\0';
		for (int k = 0; k < 8; k++) {
			strcat(topic, han);
		}
		memset(&ev, 0, sizeof ev);
		ev.verdict = SRUPB_V_DROP;
		ev.reason = SRUPB_R_NOT_ALLOWED;
		ev.topic = topic;
		ev.type = -1;
		n = srupb_audit_format(&ev, 0, line, sizeof line);
		ck_assert_uint_gt(n, 0);
		ck_assert_msg(utf8_ok((const unsigned char *)line, n),
		              "audit line cut inside a character (%zu ASCII first): %s", lead, line);
		/* still cut: the topic ends in "..." */
		ck_assert_ptr_nonnull(strstr(line, "...\",\"type\""));
	}
}
END_TEST

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **user_data,
                          struct mosquitto_opt *opts, int opt_count);
int mosquitto_plugin_cleanup(void *user_data, struct mosquitto_opt *opts, int opt_count);

#define DEV    0x5f5f5f5f5f5f5f5fu
#define CH_DEV "SRUP/5f5f5f5f5f5f5f5f"

/* One publish as the broker runs it: ACL WRITE, then (if allowed) MESSAGE. Returns the WRITE
 * answer in *write_rc and the MESSAGE answer (or -1 if MESSAGE did not run). */
static int publish(struct mosquitto *c, const uint8_t *p, size_t len, int *write_rc)
{
	struct mosquitto_evt_acl_check acl;
	struct mosquitto_evt_message msg;
	memset(&acl, 0, sizeof acl);
	acl.client = c;
	acl.topic = CH_DEV;
	acl.payload = p;
	acl.payloadlen = (uint32_t)len;
	acl.access = MOSQ_ACL_WRITE;
	acl.qos = 0; /* QoS 0: no retransmission can excuse a second decision */
	*write_rc = stub_cb[MOSQ_EVT_ACL_CHECK](MOSQ_EVT_ACL_CHECK, &acl,
	                                        stub_userdata[MOSQ_EVT_ACL_CHECK]);
	if (*write_rc != MOSQ_ERR_SUCCESS) {
		return -1;
	}
	memset(&msg, 0, sizeof msg);
	msg.client = c;
	msg.topic = (char *)(uintptr_t)CH_DEV;
	msg.payload = (void *)(uintptr_t)p;
	msg.payloadlen = (uint32_t)len;
	msg.qos = 0;
	return stub_cb[MOSQ_EVT_MESSAGE](MOSQ_EVT_MESSAGE, &msg, stub_userdata[MOSQ_EVT_MESSAGE]);
}

static size_t signed_data(const struct srup_key *k, uint64_t seq, uint8_t *out, size_t cap)
{
	struct srup_msg m;
	size_t len = 0;
	memset(&m, 0, sizeof m);
	m.version = SRUP_VERSION;
	m.type = SRUP_MSG_DATA;
	m.sequence_id = seq;
	m.sender_id = DEV;
	m.token.p = (const uint8_t *)"T";
	m.token.len = 1;
	m.data_id.p = (const uint8_t *)"id";
	m.data_id.len = 2;
	ck_assert_int_eq(srup_msg_sign_encode(&m, k, out, cap, &len, NULL), SRUP_OK);
	return len;
}

/* corpus/pipeline/reconnect_in_reused_memory: after a client's DISCONNECT, a new connection
 * with the same client id that the broker placed in the memory of the old one (malloc hands the
 * freed context back) is taken for the old client's Will: its publishes are decided at WRITE
 * without filling the WRITE/MESSAGE slot, so MESSAGE decides them again, finds its own mark and
 * refuses them as replays. The message is lost although its mark was committed. */
START_TEST(test_reconnect_in_reused_memory_is_not_a_will)
{
	char dir[64] = "/tmp/srupb-fuzzreg-XXXXXX";
	char store_dir[128];
	char audit_path[128];
	char cmd[160];
	struct srupb_store *st = NULL;
	struct srup_key *k = NULL;
	char *pem = NULL;
	size_t pem_len = 0;
	char err[256];
	void *ud = NULL;
	uint8_t buf[2048];
	size_t len;
	int wrc = 0;
	struct mosquitto conn = {"dev", "5f5f5f5f5f5f5f5f", NULL, false};
	struct mosquitto_evt_disconnect dis;

	stub_reset();
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(store_dir, sizeof store_dir, "%s/state", dir);
	snprintf(audit_path, sizeof audit_path, "%s/audit.jsonl", dir);
	ck_assert_int_eq(srup_key_load_file(tu_vector_path("keys/device_private.pem"), SRUP_KEY_PRIVATE,
	                                    &k, NULL),
	                 SRUP_OK);
	ck_assert_int_eq(srupb_store_open(store_dir, false, SRUPB_SYNC_OS, &st, err, sizeof err),
	                 SRUP_OK);
	ck_assert_int_eq(srup_key_public_pem(k, &pem, &pem_len), SRUP_OK);
	ck_assert_int_eq(srupb_store_key_put(st, DEV, SRUPB_ROLE_DEVICE, pem, pem_len), SRUP_OK);
	free(pem);
	srupb_store_close(st);
	char policy_path[128];
	snprintf(policy_path, sizeof policy_path, "%s/srup.policy", dir);
	FILE *f = fopen(policy_path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("version 1\nidentity username\nallow own_channel device DATA\n", f);
	fclose(f);
	struct mosquitto_opt opts[] = {
	        {"store", store_dir}, {"audit_log", audit_path}, {"policy", policy_path}};
	ck_assert_int_eq(mosquitto_plugin_init(NULL, &ud, opts, 3), MOSQ_ERR_SUCCESS);

	len = signed_data(k, 1, buf, sizeof buf);
	ck_assert_int_eq(publish(&conn, buf, len, &wrc), MOSQ_ERR_SUCCESS);
	memset(&dis, 0, sizeof dis);
	dis.client = &conn;
	ck_assert_int_eq(stub_cb[MOSQ_EVT_DISCONNECT](MOSQ_EVT_DISCONNECT, &dis,
	                                              stub_userdata[MOSQ_EVT_DISCONNECT]),
	                 MOSQ_ERR_SUCCESS);
	/* the device connects again; its new context has the old one's address */
	len = signed_data(k, 2, buf, sizeof buf);
	int mrc = publish(&conn, buf, len, &wrc);
	ck_assert_int_eq(wrc, MOSQ_ERR_SUCCESS);
	ck_assert_msg(mrc == MOSQ_ERR_SUCCESS,
	              "MESSAGE refused (%d) the publish its WRITE check accepted", mrc);

	ck_assert_int_eq(mosquitto_plugin_cleanup(ud, NULL, 0), MOSQ_ERR_SUCCESS);
	srup_key_free(k);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

Suite *plugin_fuzz_regress_suite(void)
{
	Suite *s = suite_create("plugin_fuzz_regress");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_audit_cut_keeps_utf8_characters_whole);
	tcase_add_test(tc, test_reconnect_in_reused_memory_is_not_a_will);
	suite_add_tcase(s, tc);
	return s;
}
