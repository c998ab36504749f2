/* SPDX-License-Identifier: MIT
 * test_control.c - unit tests of the admin plane: the JSON command parser, and the CONTROL
 * callback and WRITE check with the broker stubbed (audit lines, counters, response topic). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <openssl/x509.h>
#include <jansson.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>
#include <mqtt_protocol.h>

#include "srupb.h"
#include "stubs.h"
#include "testutil.h"

static const char *parse(const char *text, struct srupb_command *c)
{
	return srupb_control_parse(text, strlen(text), c);
}

START_TEST(test_parse_valid_commands)
{
	struct srupb_command c;
	ck_assert_ptr_null(parse("{\"command\":\"reload\"}", &c));
	ck_assert_int_eq(c.cmd, SRUPB_CMD_RELOAD);
	ck_assert(!c.has_id);
	ck_assert_ptr_null(parse(" {\n \"id\" : \"b9d077e223834cf6\", \"command\":\"revoke\" }\n", &c));
	ck_assert_int_eq(c.cmd, SRUPB_CMD_REVOKE);
	ck_assert(c.has_id);
	ck_assert_uint_eq(c.id, 0xb9d077e223834cf6u);
	ck_assert_ptr_null(parse("{\"command\":\"revoke\",\"id\":\"0\"}", &c));
	ck_assert_uint_eq(c.id, 0);
	ck_assert_str_eq(srupb_command_name(SRUPB_CMD_REVOKE), "revoke");
	ck_assert_ptr_null(srupb_command_name(SRUPB_CMD_NONE));
}
END_TEST

START_TEST(test_parse_admin_commands)
{
	struct srupb_command c;
	ck_assert_ptr_null(parse("{\"command\":\"listKeys\"}", &c));
	ck_assert_int_eq(c.cmd, SRUPB_CMD_LIST_KEYS);
	ck_assert_uint_eq(c.limit, SRUPB_PAGE_DEFAULT);
	ck_assert(!c.has_after);
	ck_assert_ptr_null(parse("{\"command\":\"listKeys\",\"after\":\"ff\",\"limit\":1000}", &c));
	ck_assert(c.has_after);
	ck_assert_uint_eq(c.after, 0xff);
	ck_assert_uint_eq(c.limit, 1000);
	ck_assert_ptr_null(parse("{\"command\":\"revokeKey\",\"id\":\"1f\"}", &c));
	ck_assert_int_eq(c.cmd, SRUPB_CMD_REVOKE);
	ck_assert_str_eq(srupb_command_name(c.cmd), "revoke");
	ck_assert_ptr_null(parse("{\"command\":\"addKey\",\"id\":\"1f\",\"role\":\"observer\","
	                         "\"pem\":\"-----BEGIN PUBLIC KEY-----\\nAA\\n\",\"force\":true}",
	                         &c));
	ck_assert_int_eq(c.cmd, SRUPB_CMD_ADD_KEY);
	ck_assert_uint_eq(c.role, SRUPB_ROLE_OBSERVER);
	ck_assert(c.force);
	ck_assert_str_eq(c.pem, "-----BEGIN PUBLIC KEY-----\nAA\n");
	ck_assert_uint_eq(c.pem_len, strlen(c.pem));
	ck_assert_ptr_null(parse(
	        "{\"command\":\"rotateKey\",\"id\":\"2\",\"pem\":\"x\",\"overlap\":2592000}", &c));
	ck_assert_uint_eq(c.overlap, SRUPB_OVERLAP_MAX);
	ck_assert_ptr_null(parse("{\"command\":\"listMembers\",\"id\":\"a\",\"after\":\"a\","
	                         "\"after_server\":\"b\",\"limit\":2}",
	                         &c));
	ck_assert_uint_eq(c.after_server, 0xb);
	ck_assert_ptr_null(parse("{\"command\":\"removeMember\",\"id\":\"a\",\"server\":\"b\"}", &c));
	ck_assert(c.has_server);
	ck_assert_uint_eq(c.server, 0xb);
	ck_assert_ptr_null(parse("{\"command\":\"getMarks\",\"id\":\"a\"}", &c));
	ck_assert_ptr_null(parse("{\"command\":\"listPendingJoins\",\"limit\":5}", &c));
	ck_assert_ptr_null(parse("{\"command\":\"getStats\"}", &c));
	ck_assert_int_eq(c.cmd, SRUPB_CMD_GET_STATS);
	ck_assert_ptr_null(parse("{\"command\":\"getKey\",\"id\":\"ffffffffffffffff\"}", &c));
	ck_assert_uint_eq(c.id, UINT64_MAX);
}
END_TEST

START_TEST(test_parse_refuses_admin_parameters)
{
	static const char *const bad[] = {
	        "{\"command\":\"listKeys\",\"limit\":0}",
	        "{\"command\":\"listKeys\",\"limit\":1001}",
	        "{\"command\":\"listKeys\",\"limit\":\"5\"}",
	        "{\"command\":\"listKeys\",\"limit\":5.0}",
	        "{\"command\":\"listKeys\",\"id\":\"1\"}",
	        "{\"command\":\"listKeys\",\"after\":\"0x1\"}",
	        "{\"command\":\"getKey\"}",
	        "{\"command\":\"addKey\",\"id\":\"1\",\"role\":\"device\"}",
	        "{\"command\":\"addKey\",\"id\":\"1\",\"role\":\"admin\",\"pem\":\"x\"}",
	        "{\"command\":\"addKey\",\"id\":\"1\",\"role\":\"none\",\"pem\":\"x\"}",
	        "{\"command\":\"addKey\",\"id\":\"1\",\"role\":\"device\",\"pem\":\"\"}",
	        "{\"command\":\"addKey\",\"id\":\"1\",\"role\":\"device\",\"pem\":\"x\",\"force\":1}",
	        "{\"command\":\"rotateKey\",\"id\":\"1\",\"pem\":\"x\"}",
	        "{\"command\":\"rotateKey\",\"id\":\"1\",\"pem\":\"x\",\"overlap\":-1}",
	        "{\"command\":\"rotateKey\",\"id\":\"1\",\"pem\":\"x\",\"overlap\":2592001}",
	        "{\"command\":\"rotateKey\",\"id\":\"1\",\"pem\":\"x\",\"overlap\":1,\"force\":true}",
	        "{\"command\":\"listMembers\",\"after_server\":\"1\"}",
	        "{\"command\":\"removeMember\",\"id\":\"1\"}",
	        "{\"command\":\"removeMember\",\"server\":\"1\"}",
	        "{\"command\":\"getMarks\",\"id\":\"1\",\"limit\":3}",
	        "{\"command\":\"getStats\",\"id\":\"1\"}",
	        "{\"command\":\"listPendingJoins\",\"after\":\"1\"}",
	};
	struct srupb_command c;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		const char *err = parse(bad[i], &c);
		ck_assert_msg(err != NULL, "accepted: %s", bad[i]);
		ck_assert(!c.has_id && !c.has_server && !c.has_after && c.pem_len == 0);
		ck_assert_msg(c.cmd != SRUPB_CMD_NONE, "lost the command name: %s", bad[i]);
	}
}
END_TEST

START_TEST(test_parse_refuses)
{
	static const char *const bad[] = {
	        "garbage \"command\" : \"reload\"", /* the old strstr scraper ran this */
	        "{\"x\":\"garbage \\\"command\\\" : \\\"reload\\\"\"}",
	        "{\"command\":\"reload\",\"command\":\"revoke\"}",
	        "{\"command\":\"revoke\",\"id\":\"1\",\"id\":\"2\"}",
	        "{\"command\":\"reload\",\"extra\":1}",
	        "{\"command\":\"reload\"} trailing",
	        "{\"command\":\"reload\"}{}",
	        "[\"command\",\"reload\"]",
	        "\"reload\"",
	        "{}",
	        "{\"command\":1}",
	        "{\"command\":null}",
	        "{\"command\":[\"reload\"]}",
	        "{\"command\":\"RELOAD\"}",
	        "{\"command\":\"reload\\u0000x\"}",
	        "{\"command\":\"reload\",\"id\":\"1\"}",
	        "{\"command\":\"revoke\"}",
	        "{\"command\":\"revoke\",\"id\":\"0x1f\"}",
	        "{\"command\":\"revoke\",\"id\":\"1F\"}",
	        "{\"command\":\"revoke\",\"id\":\"01f\"}",
	        "{\"command\":\"revoke\",\"id\":\"\"}",
	        "{\"command\":\"revoke\",\"id\":\"10000000000000000\"}",
	        "{\"command\":\"revoke\",\"id\":31}",
	        "{\"command\":\"revoke\",\"id\":\" 1f\"}",
	        "{\"command\":\"\xff\"}",
	        "{\"command\":\"reload\",\"\xc3\":1}",
	        "",
	};
	struct srupb_command c;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		const char *err = parse(bad[i], &c);
		ck_assert_msg(err != NULL, "accepted: %s", bad[i]);
		ck_assert(!c.has_id);
	}
	/* a NUL byte inside the buffer */
	ck_assert_ptr_nonnull(srupb_control_parse("{\"command\":\"reload\"}\0", 21, &c));
	/* the command is known even when the rest is wrong (for the audit line) */
	ck_assert_ptr_nonnull(parse("{\"command\":\"revoke\",\"id\":\"XYZ\"}", &c));
	ck_assert_int_eq(c.cmd, SRUPB_CMD_REVOKE);
	/* size is capped before parsing: 4096 bytes parse, 4097 do not */
	char big[SRUPB_CONTROL_MAX + 2];
	const char *head = "{\"command\":\"reload\"}";
	memset(big, ' ', sizeof big);
	memcpy(big, head, strlen(head));
	ck_assert_ptr_null(srupb_control_parse(big, SRUPB_CONTROL_MAX, &c));
	ck_assert_ptr_nonnull(srupb_control_parse(big, SRUPB_CONTROL_MAX + 1, &c));
	/* deep nesting inside the cap is refused without trouble */
	char deep[SRUPB_CONTROL_MAX];
	memset(deep, '[', sizeof deep);
	ck_assert_ptr_nonnull(srupb_control_parse(deep, sizeof deep, &c));
	ck_assert_ptr_nonnull(srupb_control_parse(NULL, 0, &c));
}
END_TEST

/* --- the callback, with the broker stubbed --- */

#define ADMIN_ID "ad"
#define DEV_ID   "5f5f5f5f5f5f5f5f"

static char dir[64];
static char store_dir[128];
static char audit_path[128];
static char policy_path[128];
static void *ud;
static struct srupb_ctx *ctx;
static struct mosquitto c_admin = {"admin-conn", ADMIN_ID, NULL, false};
static struct mosquitto c_dev = {"dev-conn", DEV_ID, NULL, false};

static X509 *cn_cert(const char *cn)
{
	X509 *x = stub_cn_cert(cn);
	ck_assert_ptr_nonnull(x);
	return x;
}

static void start(void)
{
	struct srupb_store *st = NULL;
	char err[256];
	struct srup_key *k = NULL;
	char *pem = NULL;
	size_t len = 0;

	stub_reset();
	/* identity certificate (the default): each client presents CN = its id */
	c_admin.cert = cn_cert(ADMIN_ID);
	c_dev.cert = cn_cert(DEV_ID);
	snprintf(dir, sizeof dir, "/tmp/srupb-ctl-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(store_dir, sizeof store_dir, "%s/state", dir);
	snprintf(audit_path, sizeof audit_path, "%s/audit.jsonl", dir);
	snprintf(policy_path, sizeof policy_path, "%s/srup.policy", dir);
	ck_assert_int_eq(srup_key_load_file(tu_vector_path("keys/device_private.pem"), SRUP_KEY_PRIVATE,
	                                    &k, NULL),
	                 SRUP_OK);
	ck_assert_int_eq(srup_key_public_pem(k, &pem, &len), SRUP_OK);
	ck_assert_int_eq(srupb_store_open(store_dir, false, SRUPB_SYNC_OS, &st, err, sizeof err),
	                 SRUP_OK);
	ck_assert_int_eq(srupb_store_key_put(st, 0x5f5f5f5f5f5f5f5fu, SRUPB_ROLE_DEVICE, pem, len),
	                 SRUP_OK);
	srupb_store_close(st);
	free(pem);
	srup_key_free(k);
	FILE *f = fopen(policy_path, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "%s\nadmin " ADMIN_ID "\n", srupb_policy_default);
	fclose(f);
	struct mosquitto_opt opts[3] = {{(char *)"store", store_dir},
	                                {(char *)"audit_log", audit_path},
	                                {(char *)"policy", policy_path}};
	ud = NULL;
	ck_assert_int_eq(mosquitto_plugin_init(NULL, &ud, opts, 3), MOSQ_ERR_SUCCESS);
	ctx = ud;
	ck_assert(stub_cb[MOSQ_EVT_CONTROL] != NULL);
}

static void stop(void)
{
	char cmd[160];
	ck_assert_int_eq(mosquitto_plugin_cleanup(ud, NULL, 0), MOSQ_ERR_SUCCESS);
	ud = NULL;
	ctx = NULL;
	X509_free(c_admin.cert);
	X509_free(c_dev.cert);
	c_admin.cert = NULL;
	c_dev.cert = NULL;
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static void control(struct mosquitto *client, const char *payload, const mosquitto_property *p)
{
	struct mosquitto_evt_control ed;
	memset(&ed, 0, sizeof ed);
	ed.client = client;
	ed.topic = "$CONTROL/srup/v1";
	ed.payload = payload;
	ed.payloadlen = (uint32_t)strlen(payload);
	ed.properties = p;
	ck_assert_int_eq(
	        stub_cb[MOSQ_EVT_CONTROL](MOSQ_EVT_CONTROL, &ed, stub_userdata[MOSQ_EVT_CONTROL]),
	        MOSQ_ERR_SUCCESS);
}

/* The last audit line, parsed (caller decrefs). */
static json_t *last_audit(void)
{
	char line[SRUPB_AUDIT_LINE_MAX + 2];
	char last[SRUPB_AUDIT_LINE_MAX + 2] = "";
	FILE *f = fopen(audit_path, "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof line, f) != NULL) {
		memcpy(last, line, sizeof line);
	}
	fclose(f);
	json_error_t e;
	json_t *o = json_loads(last, 0, &e);
	ck_assert_msg(o != NULL, "audit line not JSON: %s", last);
	return o;
}

static const char *jget(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	ck_assert_msg(v != NULL, "no key %s", k);
	return json_is_null(v) ? NULL : json_string_value(v);
}

START_TEST(test_admin_revoke_audited_and_answered)
{
	start();
	control(&c_admin, "{\"command\":\"revoke\",\"id\":\"" DEV_ID "\"}", NULL);
	json_t *o = last_audit();
	ck_assert_str_eq(jget(o, "verdict"), "admin");
	ck_assert_ptr_null(jget(o, "reason"));
	ck_assert_str_eq(jget(o, "source"), "control");
	ck_assert_str_eq(jget(o, "client_id"), "admin-conn");
	ck_assert_str_eq(jget(o, "identity"), ADMIN_ID);
	ck_assert_str_eq(jget(o, "command"), "revoke");
	ck_assert_str_eq(jget(o, "target"), DEV_ID);
	ck_assert_str_eq(jget(o, "result"), "ok");
	ck_assert_str_eq(jget(o, "detail"), "revoked");
	json_decref(o);
	ck_assert_uint_eq(ctx->metrics.admin_ok, 1);
	ck_assert_uint_eq(ctx->metrics.admin_refused, 0);
	ck_assert_str_eq(stub_last_topic, "$CONTROL/srup/v1/response");
	ck_assert_str_eq(stub_last_payload,
	                 "{\"command\":\"revoke\",\"result\":\"ok\",\"detail\":\"revoked\"}");
	/* an unknown id is an error */
	control(&c_admin, "{\"command\":\"revoke\",\"id\":\"123\"}", NULL);
	o = last_audit();
	ck_assert_str_eq(jget(o, "result"), "error");
	ck_assert_str_eq(jget(o, "detail"), "unknown id");
	json_decref(o);
	ck_assert_uint_eq(ctx->metrics.admin_refused, 1);
	stop();
}
END_TEST

/* The old scraper took this for a reload; now it is a bad command, audited, nothing done. */
START_TEST(test_admin_bad_command_audited)
{
	start();
	int pubs = stub_publishes;
	control(&c_admin, "garbage \"command\" : \"reload\"", NULL);
	json_t *o = last_audit();
	ck_assert_str_eq(jget(o, "verdict"), "admin");
	ck_assert_str_eq(jget(o, "reason"), "bad_command");
	ck_assert_ptr_null(jget(o, "command"));
	ck_assert_str_eq(jget(o, "result"), "error");
	json_decref(o);
	ck_assert_ptr_null(strstr(stub_last_log, "reload |"));
	ck_assert_int_eq(stub_publishes, pubs + 1);
	ck_assert_ptr_nonnull(strstr(stub_last_payload, "\"result\":\"error\""));
	ck_assert_uint_eq(ctx->metrics.admin_ok, 0);
	ck_assert_uint_eq(ctx->metrics.admin_refused, 1);
	stop();
}
END_TEST

/* A non-admin: refused by the WRITE check (audited as not_admin), and by the callback too. */
START_TEST(test_non_admin_refused_and_audited)
{
	start();
	const char *cmd = "{\"command\":\"reload\"}";
	ck_assert_int_eq(srupb_verify_publish(ctx, &c_dev, "$CONTROL/srup/v1", cmd,
	                                      (uint32_t)strlen(cmd), 1, false, false),
	                 MOSQ_ERR_ACL_DENIED);
	json_t *o = last_audit();
	ck_assert_str_eq(jget(o, "verdict"), "admin");
	ck_assert_str_eq(jget(o, "reason"), "not_admin");
	ck_assert_str_eq(jget(o, "client_id"), "dev-conn");
	ck_assert_str_eq(jget(o, "identity"), DEV_ID);
	ck_assert_str_eq(jget(o, "result"), "error");
	json_decref(o);
	ck_assert_uint_eq(ctx->metrics.admin_refused, 1);
	int pubs = stub_publishes;
	control(&c_dev, cmd, NULL);
	ck_assert_int_eq(stub_publishes, pubs); /* no answer to a non-admin */
	ck_assert_uint_eq(ctx->metrics.admin_refused, 2);
	ck_assert_int_eq(srupb_verify_publish(ctx, &c_admin, "$CONTROL/srup/v1", cmd,
	                                      (uint32_t)strlen(cmd), 1, false, false),
	                 MOSQ_ERR_SUCCESS);
	/* a flood of attempts: every one counted; audit and broker WARNING lines capped (20 per
	 * connection at once by default, two already spent) */
	int warnings = stub_warnings;
	for (int i = 0; i < 200; i++) {
		ck_assert_int_eq(srupb_verify_publish(ctx, &c_dev, "$CONTROL/srup/v1", cmd,
		                                      (uint32_t)strlen(cmd), 1, false, false),
		                 MOSQ_ERR_ACL_DENIED);
	}
	ck_assert_uint_eq(ctx->metrics.admin_refused, 202);
	ck_assert_int_le(stub_warnings - warnings, 19);
	ck_assert_int_ge(stub_warnings - warnings, 17);
	stop();
}
END_TEST

START_TEST(test_response_topic_and_correlation)
{
	mosquitto_property *p = NULL;
	start();
	ck_assert_int_eq(stub_add_property(&p, MQTT_PROP_RESPONSE_TOPIC,
	                                   "$CONTROL/srup/v1/response/op-7", NULL, 0),
	                 MOSQ_ERR_SUCCESS);
	ck_assert_int_eq(stub_add_property(&p, MQTT_PROP_CORRELATION_DATA, NULL, "\x01\xfe", 2),
	                 MOSQ_ERR_SUCCESS);
	control(&c_admin, "{\"command\":\"reload\"}", p);
	ck_assert_str_eq(stub_last_topic, "$CONTROL/srup/v1/response/op-7");
	ck_assert_str_eq(stub_last_payload, "{\"command\":\"reload\",\"result\":\"ok\",\"detail\":"
	                                    "\"reloaded\",\"correlation\":\"01fe\"}");
	ck_assert_uint_eq(stub_last_corr_len, 2);
	ck_assert_int_eq(memcmp(stub_last_corr, "\x01\xfe", 2), 0);
	mosquitto_property_free_all(&p);
	ck_assert_uint_eq(ctx->metrics.admin_ok, 1);

	/* any other response topic: refused, answered on the default topic, nothing done */
	static const char *const others[] = {"elsewhere", "$CONTROL/srup/v1/responses",
	                                     "$CONTROL/srup/v1", "$CONTROL/srup/v1/response/#"};
	for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
		p = NULL;
		ck_assert_int_eq(stub_add_property(&p, MQTT_PROP_RESPONSE_TOPIC, others[i], NULL, 0),
		                 MOSQ_ERR_SUCCESS);
		control(&c_admin, "{\"command\":\"revoke\",\"id\":\"" DEV_ID "\"}", p);
		mosquitto_property_free_all(&p);
		ck_assert_str_eq(stub_last_topic, "$CONTROL/srup/v1/response");
		ck_assert_ptr_nonnull(strstr(stub_last_payload, "\"result\":\"error\""));
		ck_assert_ptr_nonnull(strstr(stub_last_payload, "response topic refused"));
		json_t *o = last_audit();
		ck_assert_str_eq(jget(o, "reason"), "bad_command");
		json_decref(o);
	}
	ck_assert_uint_eq(ctx->metrics.admin_refused, 4);
	/* the device was not revoked by any of them */
	struct srupb_keyrec rec;
	char *pem = NULL;
	bool found = false;
	ck_assert_int_eq(srupb_store_key_get(ctx->store, 0x5f5f5f5f5f5f5f5fu, &rec, &pem, &found),
	                 SRUP_OK);
	ck_assert(found);
	ck_assert_int_eq(rec.status, SRUPB_KEY_ACTIVE);
	free(pem);
	stop();
}
END_TEST

Suite *plugin_control_suite(void)
{
	Suite *s = suite_create("plugin_control");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_parse_valid_commands);
	tcase_add_test(tc, test_parse_refuses);
	tcase_add_test(tc, test_parse_admin_commands);
	tcase_add_test(tc, test_parse_refuses_admin_parameters);
	tcase_add_test(tc, test_admin_revoke_audited_and_answered);
	tcase_add_test(tc, test_admin_bad_command_audited);
	tcase_add_test(tc, test_non_admin_refused_and_audited);
	tcase_add_test(tc, test_response_topic_and_correlation);
	suite_add_tcase(s, tc);
	return s;
}
