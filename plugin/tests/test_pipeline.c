/* SPDX-License-Identifier: MIT
 * test_pipeline.c - the plugin in-process against broker stubs: init/options, the verdict
 * pipeline through ACL WRITE + MESSAGE, replay/retransmission, forgeries, every drop reason,
 * READ/SUBSCRIBE rules and membership, deregistration, reload, the control topic, audit. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include <openssl/x509.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#include "srupb.h"
#include "stubs.h"
#include "testutil.h"

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **user_data,
                          struct mosquitto_opt *opts, int opt_count);
int mosquitto_plugin_cleanup(void *user_data, struct mosquitto_opt *opts, int opt_count);

#define SERVER 0xb9d077e223834cf6u
#define DEV    0x5f5f5f5f5f5f5f5fu
#define DEV2   0xd2u
#define ADMIN  0xadu

static char dir[64];
static char store_dir[128];
static char audit_path[128];
static char policy_path[128];
static struct srup_key *k_server;
static struct srup_key *k_dev;
static struct srup_key *k_dev2;
static struct srupb_ctx *ctx;
static void *ud;

static struct mosquitto c_server = {"srv", "b9d077e223834cf6", NULL, false};
static struct mosquitto c_dev = {"dev", "5f5f5f5f5f5f5f5f", NULL, false};
static struct mosquitto c_dev_b = {"dev-second-conn", "5f5f5f5f5f5f5f5f", NULL, false};
static struct mosquitto c_dev2 = {"dev2", "d2", NULL, false};
static struct mosquitto c_admin = {"admin", "ad", NULL, false};
static struct mosquitto c_anon = {"anon", NULL, NULL, false};

static struct mosquitto *const c_with_cert[] = {&c_server, &c_dev, &c_dev_b, &c_dev2, &c_admin};

static X509 *cn_cert(const char *cn)
{
	X509 *x = stub_cn_cert(cn);
	ck_assert_ptr_nonnull(x);
	return x;
}

static struct srup_key *load_key(const char *name)
{
	struct srup_key *k = NULL;
	ck_assert_int_eq(srup_key_load_file(tu_vector_path(name), SRUP_KEY_PRIVATE, &k, NULL), SRUP_OK);
	return k;
}

static void add_key(struct srupb_store *st, uint64_t id, enum srupb_role role,
                    const struct srup_key *k)
{
	char *pem = NULL;
	size_t len = 0;
	ck_assert_int_eq(srup_key_public_pem(k, &pem, &len), SRUP_OK);
	ck_assert_int_eq(srupb_store_key_put(st, id, role, pem, len), SRUP_OK);
	free(pem);
}

/* Fresh store with SERVER, DEV, DEV2 and an admin; then plugin init with the given policy text
 * (NULL: the built-in policy) plus "admin ad" when use_admin. */
static int start(const char *policy_text, const char *extra_opt_key, const char *extra_opt_value)
{
	struct srupb_store *st = NULL;
	char err[256];
	struct mosquitto_opt opts[4];
	int n = 0;

	stub_reset();
	/* Each named client presents a certificate with its identity as CN (the default identity
	 * source); c_anon presents none. */
	for (size_t i = 0; i < sizeof c_with_cert / sizeof c_with_cert[0]; i++) {
		c_with_cert[i]->cert = cn_cert(c_with_cert[i]->username);
	}
	snprintf(dir, sizeof dir, "/tmp/srupb-pipe-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(store_dir, sizeof store_dir, "%s/state", dir);
	snprintf(audit_path, sizeof audit_path, "%s/audit.jsonl", dir);
	snprintf(policy_path, sizeof policy_path, "%s/srup.policy", dir);
	k_server = load_key("keys/server_private.pem");
	k_dev = load_key("keys/device_private.pem");
	k_dev2 = load_key("keys/pysrup_test_private.pem");
	ck_assert_int_eq(srupb_store_open(store_dir, false, SRUPB_SYNC_OS, &st, err, sizeof err),
	                 SRUP_OK);
	add_key(st, SERVER, SRUPB_ROLE_SERVER, k_server);
	add_key(st, DEV, SRUPB_ROLE_DEVICE, k_dev);
	add_key(st, DEV2, SRUPB_ROLE_DEVICE, k_dev2);
	add_key(st, ADMIN, SRUPB_ROLE_SERVER, k_server);
	srupb_store_close(st);
	opts[n++] = (struct mosquitto_opt){"store", store_dir};
	opts[n++] = (struct mosquitto_opt){"audit_log", audit_path};
	if (policy_text != NULL) {
		FILE *f = fopen(policy_path, "w");
		ck_assert_ptr_nonnull(f);
		fputs(policy_text, f);
		fclose(f);
		opts[n++] = (struct mosquitto_opt){"policy", policy_path};
	}
	if (extra_opt_key != NULL) {
		opts[n++] = (struct mosquitto_opt){(char *)extra_opt_key, (char *)extra_opt_value};
	}
	ud = NULL;
	int rc = mosquitto_plugin_init(NULL, &ud, opts, n);
	ctx = ud;
	return rc;
}

static void stop(void)
{
	char cmd[128];
	if (ud != NULL) {
		ck_assert_int_eq(mosquitto_plugin_cleanup(ud, NULL, 0), MOSQ_ERR_SUCCESS);
	}
	ud = NULL;
	ctx = NULL;
	srup_key_free(k_server);
	srup_key_free(k_dev);
	srup_key_free(k_dev2);
	for (size_t i = 0; i < sizeof c_with_cert / sizeof c_with_cert[0]; i++) {
		X509_free(c_with_cert[i]->cert);
		c_with_cert[i]->cert = NULL;
	}
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}

struct buf {
	uint8_t p[4096];
	size_t len;
};

static struct buf build(unsigned type, uint64_t seq, uint64_t sender, const struct srup_key *k,
                        const char *data)
{
	struct srup_msg m;
	struct buf b;
	memset(&m, 0, sizeof m);
	m.version = SRUP_VERSION;
	m.type = (uint8_t)type;
	m.sequence_id = seq;
	m.sender_id = sender;
	m.token.p = (const uint8_t *)"TOKEN";
	m.token.len = 5;
	if (type == SRUP_MSG_DATA) {
		m.data_id.p = (const uint8_t *)"id";
		m.data_id.len = 2;
		m.data.p = (const uint8_t *)data;
		m.data.len = strlen(data);
	} else if (type == SRUP_MSG_ACTION) {
		m.action_id = 7;
	} else if (type == SRUP_MSG_RESPONSE) {
		m.status = (uint8_t)strtoul(data, NULL, 16);
	} else if (type == SRUP_MSG_JOIN_CMD) {
		m.device_id = strtoull(data, NULL, 16);
	}
	ck_assert_int_eq(srup_msg_sign_encode(&m, k, b.p, sizeof b.p, &b.len, NULL), SRUP_OK);
	return b;
}

/* One publish as the broker runs it: ACL WRITE, then (if allowed) MESSAGE. */
static int pub_q(struct mosquitto *c, const char *topic, const void *p, size_t len, bool retain,
                 int qos)
{
	struct mosquitto_evt_acl_check acl;
	struct mosquitto_evt_message msg;
	memset(&acl, 0, sizeof acl);
	acl.client = c;
	acl.topic = topic;
	acl.payload = p;
	acl.payloadlen = (uint32_t)len;
	acl.access = MOSQ_ACL_WRITE;
	acl.retain = retain;
	acl.qos = (uint8_t)qos;
	int rc = stub_cb[MOSQ_EVT_ACL_CHECK](MOSQ_EVT_ACL_CHECK, &acl,
	                                     stub_userdata[MOSQ_EVT_ACL_CHECK]);
	if (rc != MOSQ_ERR_SUCCESS) {
		return rc;
	}
	memset(&msg, 0, sizeof msg);
	msg.client = c;
	msg.topic = (char *)topic;
	msg.payload = (void *)p;
	msg.payloadlen = (uint32_t)len;
	msg.retain = retain;
	msg.qos = (uint8_t)qos;
	return stub_cb[MOSQ_EVT_MESSAGE](MOSQ_EVT_MESSAGE, &msg, stub_userdata[MOSQ_EVT_MESSAGE]);
}

static int pub_r(struct mosquitto *c, const char *topic, const void *p, size_t len, bool retain)
{
	return pub_q(c, topic, p, len, retain, 1);
}

static int pub(struct mosquitto *c, const char *topic, const struct buf *b)
{
	return pub_r(c, topic, b->p, b->len, false);
}

/* A Will: only the ACL WRITE check, after the client's DISCONNECT event, and (as the broker
 * does) after its TLS session is closed: no certificate. */
static int will(struct mosquitto *c, const char *topic, const struct buf *b)
{
	struct mosquitto_evt_disconnect dis;
	struct mosquitto_evt_acl_check acl;
	void *cert = c->cert;
	int rc;
	memset(&dis, 0, sizeof dis);
	dis.client = c;
	stub_cb[MOSQ_EVT_DISCONNECT](MOSQ_EVT_DISCONNECT, &dis, stub_userdata[MOSQ_EVT_DISCONNECT]);
	memset(&acl, 0, sizeof acl);
	acl.client = c;
	acl.topic = topic;
	acl.payload = b->p;
	acl.payloadlen = (uint32_t)b->len;
	acl.access = MOSQ_ACL_WRITE;
	acl.qos = 1;
	c->cert = NULL;
	rc = stub_cb[MOSQ_EVT_ACL_CHECK](MOSQ_EVT_ACL_CHECK, &acl, stub_userdata[MOSQ_EVT_ACL_CHECK]);
	c->cert = cert;
	return rc;
}

static int acl(struct mosquitto *c, int access, const char *topic, const struct buf *b)
{
	struct mosquitto_evt_acl_check e;
	memset(&e, 0, sizeof e);
	e.client = c;
	e.topic = topic;
	e.access = access;
	if (b != NULL) {
		e.payload = b->p;
		e.payloadlen = (uint32_t)b->len;
	}
	return stub_cb[MOSQ_EVT_ACL_CHECK](MOSQ_EVT_ACL_CHECK, &e, stub_userdata[MOSQ_EVT_ACL_CHECK]);
}

static void tick(void)
{
	struct mosquitto_evt_tick t;
	memset(&t, 0, sizeof t);
	stub_cb[MOSQ_EVT_TICK](MOSQ_EVT_TICK, &t, stub_userdata[MOSQ_EVT_TICK]);
}

/* Lines of the audit log containing needle. */
static int audit_count(const char *needle)
{
	size_t len = 0;
	char *text = tu_read_file(audit_path, &len);
	int n = 0;
	for (char *p = strstr(text, needle); p != NULL; p = strstr(p + 1, needle)) {
		n++;
	}
	free(text);
	return n;
}

#define CH_DEV  "SRUP/5f5f5f5f5f5f5f5f"
#define CH_DEV2 "SRUP/d2"
#define JT_DEV  "SRUP/servers/b9d077e223834cf6/5f5f5f5f5f5f5f5f"
#define JT_DEV2 "SRUP/servers/b9d077e223834cf6/d2"

/* The simple join (spec §5.5): the device's JOIN_REQ, then the server's JOIN_SUCCESS with the
 * same token; seq numbers are the caller's. */
static void join(struct mosquitto *dc, uint64_t dev, const struct srup_key *dk, uint64_t dseq,
                 const char *jt, const char *ch, uint64_t sseq)
{
	struct buf rq = build(SRUP_MSG_JOIN_REQ, dseq, dev, dk, "");
	ck_assert_int_eq(pub(dc, jt, &rq), MOSQ_ERR_SUCCESS);
	struct buf js = build(SRUP_MSG_RESPONSE, sseq, SERVER, k_server, "50");
	ck_assert_int_eq(pub(&c_server, ch, &js), MOSQ_ERR_SUCCESS);
}

START_TEST(test_pipeline_accepts_once_then_replay_and_retransmit)
{
	ck_assert_int_eq(start(NULL, NULL, NULL), MOSQ_ERR_SUCCESS);
	struct buf m1 = build(SRUP_MSG_DATA, 1, DEV, k_dev, "one");
	ck_assert_int_eq(pub(&c_dev, CH_DEV, &m1), MOSQ_ERR_SUCCESS);
	/* WRITE + MESSAGE of one publish: one decision */
	ck_assert_uint_eq(ctx->metrics.accepted, 1);
	/* byte-identical QoS 1 resend by the same connection: delivered, once */
	ck_assert_int_eq(pub(&c_dev, CH_DEV, &m1), MOSQ_ERR_SUCCESS);
	ck_assert_uint_eq(ctx->metrics.retransmitted, 1);
	ck_assert_uint_eq(ctx->metrics.accepted, 1);
	ck_assert_int_eq(pub(&c_dev, CH_DEV, &m1), MOSQ_ERR_ACL_DENIED);
	/* the same bytes from another connection (not a resumed session): replay */
	ck_assert_int_eq(pub(&c_dev_b, CH_DEV, &m1), MOSQ_ERR_ACL_DENIED);
	/* an equal sequence id with other content: replay */
	struct buf m1b = build(SRUP_MSG_DATA, 1, DEV, k_dev, "other");
	ck_assert_int_eq(pub(&c_dev, CH_DEV, &m1b), MOSQ_ERR_ACL_DENIED);
	struct buf m2 = build(SRUP_MSG_DATA, 2, DEV, k_dev, "two");
	ck_assert_int_eq(pub(&c_dev, CH_DEV, &m2), MOSQ_ERR_SUCCESS);
	/* an older message is now a replay even from its own client */
	ck_assert_int_eq(pub(&c_dev, CH_DEV, &m1), MOSQ_ERR_ACL_DENIED);
	ck_assert_uint_eq(ctx->metrics.dropped[SRUPB_R_REPLAY], 4);
	ck_assert_int_eq(audit_count("\"reason\":\"replay\""), 4);
	ck_assert_int_eq(audit_count("\"verdict\":\"retransmit\""), 1);
	ck_assert_int_eq(audit_count("\"verdict\":\"accept\""), 0);
	ck_assert_int_ge(stub_warnings, 4);
	stop();
}
END_TEST

/* The retransmission exception covers MQTT retransmission only: QoS 1/2, the same connection
 * or its resumed session, once; never QoS 0, never a Will. */
START_TEST(test_pipeline_retransmit_only_as_mqtt_does)
{
	/* identity username: a Will keeps its identity (under certificate it has none at all) */
	ck_assert_int_eq(
	        start("version 1\nidentity username\nallow own_channel device DATA\n", NULL, NULL),
	        MOSQ_ERR_SUCCESS);
	struct buf m1 = build(SRUP_MSG_DATA, 1, DEV, k_dev, "one");
	ck_assert_int_eq(pub_q(&c_dev, CH_DEV, m1.p, m1.len, false, 0), MOSQ_ERR_SUCCESS);
	ck_assert_int_eq(pub_q(&c_dev, CH_DEV, m1.p, m1.len, false, 0), MOSQ_ERR_ACL_DENIED);
	ck_assert_uint_eq(ctx->metrics.retransmitted, 0);
	/* a resumed session of the same client id may resend once */
	struct buf m2 = build(SRUP_MSG_DATA, 2, DEV, k_dev, "two");
	ck_assert_int_eq(pub(&c_dev, CH_DEV, &m2), MOSQ_ERR_SUCCESS);
	struct mosquitto resumed = {"dev", "5f5f5f5f5f5f5f5f", cn_cert("5f5f5f5f5f5f5f5f"), true};
	ck_assert_int_eq(pub(&resumed, CH_DEV, &m2), MOSQ_ERR_SUCCESS);
	ck_assert_int_eq(pub(&resumed, CH_DEV, &m2), MOSQ_ERR_ACL_DENIED);
	X509_free(resumed.cert);
	ck_assert_uint_eq(ctx->metrics.retransmitted, 1);
	/* a Will carrying the last accepted message is refused */
	struct buf m3 = build(SRUP_MSG_DATA, 3, DEV, k_dev, "three");
	ck_assert_int_eq(pub(&c_dev, CH_DEV, &m3), MOSQ_ERR_SUCCESS);
	ck_assert_int_eq(will(&c_dev, CH_DEV, &m3), MOSQ_ERR_ACL_DENIED);
	ck_assert_uint_eq(ctx->metrics.retransmitted, 1);
	ck_assert_uint_eq(ctx->metrics.dropped[SRUPB_R_REPLAY], 3);
	/* a new connection in the gone one's memory, same client id: its publish is decided
	 * once (WRITE and MESSAGE agree) */
	struct buf m4 = build(SRUP_MSG_DATA, 4, DEV, k_dev, "four");
	ck_assert_int_eq(pub_q(&c_dev, CH_DEV, m4.p, m4.len, false, 0), MOSQ_ERR_SUCCESS);
	ck_assert_uint_eq(ctx->metrics.dropped[SRUPB_R_REPLAY], 3);
	/* a Will is never counted as a bad-signature publisher's kick either */
	ck_assert_int_eq(stub_kicks, 0);
	stop();
}
END_TEST

START_TEST(test_pipeline_forgery_moves_no_state)
{
	ck_assert_int_eq(start(NULL, NULL, NULL), MOSQ_ERR_SUCCESS);
	struct buf forged = build(SRUP_MSG_DATA, UINT64_MAX, DEV, k_server, "forged");
	ck_assert_int_eq(pub(&c_dev, CH_DEV, &forged), MOSQ_ERR_ACL_DENIED);
	ck_assert_uint_eq(ctx->metrics.dropped[SRUPB_R_BAD_SIGNATURE], 1);
	struct buf ok = build(SRUP_MSG_DATA, 5, DEV, k_dev, "genuine");
	ck_assert_int_eq(pub(&c_dev, CH_DEV, &ok), MOSQ_ERR_SUCCESS);
	stop();
}
END_TEST

/* Every proper prefix and every single-bit flip of a valid message is dropped, and none of
 * them moves state: the genuine message is accepted afterwards. */
START_TEST(test_pipeline_prefixes_and_flips_are_dropped)
{
	ck_assert_int_eq(start(NULL, NULL, NULL), MOSQ_ERR_SUCCESS);
	struct buf m = build(SRUP_MSG_DATA, 9, DEV, k_dev, "payload");
	for (size_t n = 0; n < m.len; n++) {
		uint8_t *copy = malloc(n + 1);
		memcpy(copy, m.p, n);
		ck_assert_msg(pub_r(&c_dev, CH_DEV, n ? copy : NULL, n, false) == MOSQ_ERR_ACL_DENIED,
		              "prefix %zu accepted", n);
		free(copy);
	}
	for (size_t i = 0; i < m.len; i++) {
		struct buf f = m;
		f.p[i] ^= 0x01;
		ck_assert_msg(pub(&c_dev, CH_DEV, &f) == MOSQ_ERR_ACL_DENIED, "flip at %zu accepted", i);
	}
	ck_assert_uint_eq(ctx->metrics.accepted, 0);
	ck_assert_uint_eq(ctx->metrics.dropped_total, 2 * m.len);
	ck_assert_int_eq(pub(&c_dev, CH_DEV, &m), MOSQ_ERR_SUCCESS);
	stop();
}
END_TEST

static void expect_drop(struct mosquitto *c, const char *topic, const void *p, size_t len,
                        bool retain, enum srupb_reason r)
{
	uint64_t before = ctx->metrics.dropped[r];
	ck_assert_int_eq(pub_r(c, topic, p, len, retain), MOSQ_ERR_ACL_DENIED);
	ck_assert_msg(ctx->metrics.dropped[r] == before + 1, "not counted as %s", srupb_reason_name(r));
}

START_TEST(test_pipeline_each_drop_reason)
{
	ck_assert_int_eq(start("version 1\nmax_payload 1000\nallow own_channel device DATA "
	                       "RESIGN_REQUEST\nallow device_channel server ACTION RESPONSE\n"
	                       "allow join_topic device JOIN_REQ\n",
	                       NULL, NULL),
	                 MOSQ_ERR_SUCCESS);
	struct buf m = build(SRUP_MSG_DATA, 1, DEV, k_dev, "x");
	uint8_t big[1200];
	memset(big, 0, sizeof big);
	expect_drop(&c_dev, CH_DEV, NULL, 0, false, SRUPB_R_EMPTY_PAYLOAD);
	expect_drop(&c_dev, CH_DEV, big, sizeof big, false, SRUPB_R_TOO_LARGE);
	expect_drop(&c_dev, CH_DEV, m.p, m.len - 1, false, SRUPB_R_TRUNCATED);
	struct buf t = m;
	t.p[t.len++] = 0;
	expect_drop(&c_dev, CH_DEV, t.p, t.len, false, SRUPB_R_TRAILING_BYTES);
	t = m;
	t.p[0] = 4;
	expect_drop(&c_dev, CH_DEV, t.p, t.len, false, SRUPB_R_BAD_VERSION);
	t = m;
	t.p[1] = 0x07;
	expect_drop(&c_dev, CH_DEV, t.p, t.len, false, SRUPB_R_UNKNOWN_TYPE);
	t = m;
	t.p[18] = 0x7f; /* token length 0x7f05: over its limit */
	expect_drop(&c_dev, CH_DEV, t.p, t.len, false, SRUPB_R_FIELD_LENGTH);
	expect_drop(&c_dev, CH_DEV, m.p, m.len, true, SRUPB_R_RETAINED_REFUSED);
	expect_drop(&c_dev, CH_DEV, NULL, 0, true, SRUPB_R_RETAINED_REFUSED);
	expect_drop(&c_dev, "SRUP/x/y", m.p, m.len, false, SRUPB_R_NOT_ALLOWED);
	struct buf act = build(SRUP_MSG_ACTION, 1, DEV, k_dev, "");
	expect_drop(&c_dev, CH_DEV2, act.p, act.len, false, SRUPB_R_NOT_ALLOWED); /* device role */
	expect_drop(&c_dev, CH_DEV, act.p, act.len, false, SRUPB_R_NOT_ALLOWED);  /* own channel */
	struct buf unknown = build(SRUP_MSG_DATA, 1, 0x99, k_dev, "x");
	expect_drop(&c_dev, "SRUP/99", unknown.p, unknown.len, false, SRUPB_R_UNKNOWN_SENDER);
	expect_drop(&c_dev2, CH_DEV, m.p, m.len, false, SRUPB_R_IDENTITY_MISMATCH);
	expect_drop(&c_anon, CH_DEV, m.p, m.len, false, SRUPB_R_NO_IDENTITY);
	struct buf join = build(SRUP_MSG_JOIN_REQ, 1, DEV, k_dev, "");
	expect_drop(&c_dev, "SRUP/servers/b9d077e223834cf6/d2", join.p, join.len, false,
	            SRUPB_R_JOIN_TOPIC_MISMATCH);
	ck_assert_int_eq(pub(&c_dev, JT_DEV, &join), MOSQ_ERR_SUCCESS);
	struct buf srv_act = build(SRUP_MSG_ACTION, 1, SERVER, k_server, "");
	expect_drop(&c_server, CH_DEV, srv_act.p, srv_act.len, false, SRUPB_R_NOT_MEMBER);
	expect_drop(&c_server, "SRUP/99", srv_act.p, srv_act.len, false, SRUPB_R_UNKNOWN_TARGET);
	struct buf js = build(SRUP_MSG_RESPONSE, 2, SERVER, k_server, "50");
	expect_drop(&c_server, CH_DEV2, js.p, js.len, false, SRUPB_R_NO_PENDING_JOIN);
	struct buf sig = build(SRUP_MSG_DATA, 2, DEV, k_dev2, "x");
	expect_drop(&c_dev, CH_DEV, sig.p, sig.len, false, SRUPB_R_BAD_SIGNATURE);
	/* revoked: via the store tool path while running (next message sees it) */
	ck_assert_int_eq(srupb_store_key_revoke(ctx->store, DEV, NULL), SRUP_OK);
	expect_drop(&c_dev, CH_DEV, m.p, m.len, false, SRUPB_R_REVOKED_SENDER);
	/* ... and its connection is closed from TICK, not inside the callback */
	ck_assert_int_eq(stub_kicks, 0);
	tick();
	ck_assert_int_eq(stub_kicks, 1);
	ck_assert_str_eq(stub_last_kick, "dev");
	/* every reason was audited once; non-SRUP topics are not the plugin's business */
	for (unsigned r = 0; r < SRUPB_R__COUNT; r++) {
		char needle[64];
		snprintf(needle, sizeof needle, "\"reason\":\"%s\"", srupb_reason_name(r));
		if (r == SRUPB_R_BAD_PAD || r == SRUPB_R_REPLAY || r == SRUPB_R_INTERNAL_ERROR ||
		    r == SRUPB_R_PENDING_FULL || r == SRUPB_R_BAD_KEY ||
		    r == SRUPB_R_SEEN_INDEX_FULL) { /* their own tests */
			continue;
		}
		ck_assert_msg(audit_count(needle) >= 1, "no audit line for %s", srupb_reason_name(r));
	}
	ck_assert_int_eq(pub_r(&c_anon, "other/topic", "x", 1, true), MOSQ_ERR_SUCCESS);
	stop();
}
END_TEST

START_TEST(test_pipeline_same_bytes_on_another_channel_is_replay)
{
	ck_assert_int_eq(start(NULL, NULL, NULL), MOSQ_ERR_SUCCESS);
	join(&c_dev, DEV, k_dev, 1, JT_DEV, CH_DEV, 1);
	join(&c_dev2, DEV2, k_dev2, 1, JT_DEV2, CH_DEV2, 2);
	struct buf a = build(SRUP_MSG_ACTION, 5, SERVER, k_server, "");
	ck_assert_int_eq(pub(&c_server, CH_DEV, &a), MOSQ_ERR_SUCCESS);
	ck_assert_int_eq(pub(&c_server, CH_DEV2, &a), MOSQ_ERR_ACL_DENIED);
	ck_assert_uint_eq(ctx->metrics.dropped[SRUPB_R_REPLAY], 1);
	/* a fresh message for the other device is fine */
	struct buf b = build(SRUP_MSG_ACTION, 3, SERVER, k_server, "");
	ck_assert_int_eq(pub(&c_server, CH_DEV2, &b), MOSQ_ERR_SUCCESS);
	stop();
}
END_TEST

/* No free record in the seen index for a sender below its window: dropped before the
 * signature check, counted and audited, and no state moves; a sender at its window still
 * evicts its own entries. */
START_TEST(test_pipeline_seen_index_full_fails_closed)
{
	ck_assert_int_eq(start("version 1\nseen_index 1\njoin_command b9d077e223834cf6\n"
	                       "allow device_channel server ACTION JOIN_CMD\n"
	                       "allow device_channel device DATA\n",
	                       NULL, NULL),
	                 MOSQ_ERR_SUCCESS);
	/* the server joins both devices; its second entry replaces its first */
	struct buf j1 = build(SRUP_MSG_JOIN_CMD, 1, SERVER, k_server, "5f5f5f5f5f5f5f5f");
	ck_assert_int_eq(pub(&c_server, CH_DEV, &j1), MOSQ_ERR_SUCCESS);
	struct buf j2 = build(SRUP_MSG_JOIN_CMD, 1, SERVER, k_server, "d2");
	ck_assert_int_eq(pub(&c_server, CH_DEV2, &j2), MOSQ_ERR_SUCCESS);
	struct buf d = build(SRUP_MSG_DATA, 1, DEV, k_dev, "x");
	ck_assert_int_eq(pub(&c_dev, CH_DEV2, &d), MOSQ_ERR_ACL_DENIED);
	ck_assert_uint_eq(ctx->metrics.dropped[SRUPB_R_SEEN_INDEX_FULL], 1);
	ck_assert_int_ge(audit_count("\"reason\":\"seen_index_full\""), 1);
	struct srupb_mark mk;
	bool found = true;
	struct srupb_chan ch = {SRUPB_CHAN_DEVICE, 0xd2, 0};
	ck_assert_int_eq(srupb_store_mark_find(ctx->store, DEV, &ch, &mk, &found), SRUP_OK);
	srupb_store_read_end(ctx->store);
	ck_assert(!found);
	/* the server at its window of 1 replaces its own entry */
	struct buf b = build(SRUP_MSG_ACTION, 2, SERVER, k_server, "");
	ck_assert_int_eq(pub(&c_server, CH_DEV, &b), MOSQ_ERR_SUCCESS);
	ck_assert_int_eq(pub(&c_server, CH_DEV2, &b), MOSQ_ERR_ACL_DENIED);
	ck_assert_uint_eq(ctx->metrics.dropped[SRUPB_R_REPLAY], 1);
	stop();
}
END_TEST

/* A device message on its own channel is indexed only when the policy would accept it on
 * another channel too; then its replay there is caught. */
START_TEST(test_pipeline_own_channel_index_follows_policy)
{
	ck_assert_int_eq(start("version 1\nallow own_channel device DATA\n"
	                       "allow device_channel device DATA\n",
	                       NULL, NULL),
	                 MOSQ_ERR_SUCCESS);
	struct buf d = build(SRUP_MSG_DATA, 3, DEV, k_dev, "x");
	ck_assert_int_eq(pub(&c_dev, CH_DEV, &d), MOSQ_ERR_SUCCESS);
	ck_assert_int_eq(pub(&c_dev, CH_DEV2, &d), MOSQ_ERR_ACL_DENIED);
	ck_assert_uint_eq(ctx->metrics.dropped[SRUPB_R_REPLAY], 1);
	struct buf e = build(SRUP_MSG_DATA, 1, DEV, k_dev, "y");
	ck_assert_int_eq(pub(&c_dev, CH_DEV2, &e), MOSQ_ERR_SUCCESS);
	stop();
}
END_TEST

START_TEST(test_pipeline_membership_read_and_subscribe)
{
	ck_assert_int_eq(start(NULL, NULL, NULL), MOSQ_ERR_SUCCESS);
	struct buf d = build(SRUP_MSG_DATA, 1, DEV, k_dev, "x");
	/* before joining: only the device reads its channel */
	ck_assert_int_eq(acl(&c_dev, MOSQ_ACL_READ, CH_DEV, &d), MOSQ_ERR_SUCCESS);
	ck_assert_int_eq(acl(&c_server, MOSQ_ACL_READ, CH_DEV, &d), MOSQ_ERR_ACL_DENIED);
	ck_assert_int_eq(acl(&c_anon, MOSQ_ACL_READ, CH_DEV, &d), MOSQ_ERR_ACL_DENIED);
	/* join topics: only the named server */
	const char *jt = "SRUP/servers/b9d077e223834cf6/5f5f5f5f5f5f5f5f";
	ck_assert_int_eq(acl(&c_server, MOSQ_ACL_READ, jt, &d), MOSQ_ERR_SUCCESS);
	ck_assert_int_eq(acl(&c_dev2, MOSQ_ACL_READ, jt, &d), MOSQ_ERR_ACL_DENIED);
	ck_assert_int_eq(acl(&c_dev, MOSQ_ACL_READ, jt, &d), MOSQ_ERR_ACL_DENIED);
	ck_assert_int_eq(acl(&c_server, MOSQ_ACL_SUBSCRIBE, "SRUP/servers/b9d077e223834cf6/#", NULL),
	                 MOSQ_ERR_SUCCESS);
	ck_assert_int_eq(acl(&c_dev2, MOSQ_ACL_SUBSCRIBE, "SRUP/servers/b9d077e223834cf6/#", NULL),
	                 MOSQ_ERR_ACL_DENIED);
	ck_assert_int_eq(acl(&c_dev2, MOSQ_ACL_SUBSCRIBE, "SRUP/servers/+/#", NULL),
	                 MOSQ_ERR_ACL_DENIED);
	ck_assert_int_eq(acl(&c_dev2, MOSQ_ACL_SUBSCRIBE, CH_DEV, NULL), MOSQ_ERR_ACL_DENIED);
	ck_assert_int_eq(acl(&c_dev2, MOSQ_ACL_SUBSCRIBE, "#", NULL), MOSQ_ERR_SUCCESS);
	ck_assert_int_eq(acl(&c_dev2, MOSQ_ACL_SUBSCRIBE, "$CONTROL/srup/v1/response", NULL),
	                 MOSQ_ERR_ACL_DENIED);
	/* the server's verified JOIN_SUCCESS answering the device's request makes it a member */
	join(&c_dev, DEV, k_dev, 1, JT_DEV, CH_DEV, 1);
	ck_assert_int_eq(acl(&c_server, MOSQ_ACL_READ, CH_DEV, &d), MOSQ_ERR_SUCCESS);
	ck_assert_int_eq(acl(&c_dev2, MOSQ_ACL_READ, CH_DEV, &d), MOSQ_ERR_ACL_DENIED);
	/* resignation: the server still gets the RESIGN_REQUEST itself, then nothing */
	struct buf rs = build(SRUP_MSG_RESIGN_REQUEST, 2, DEV, k_dev, "");
	ck_assert_int_eq(pub(&c_dev, CH_DEV, &rs), MOSQ_ERR_SUCCESS);
	ck_assert_int_eq(acl(&c_server, MOSQ_ACL_READ, CH_DEV, &rs), MOSQ_ERR_SUCCESS);
	ck_assert_int_eq(acl(&c_dev2, MOSQ_ACL_READ, CH_DEV, &rs), MOSQ_ERR_ACL_DENIED);
	ck_assert_int_eq(acl(&c_server, MOSQ_ACL_READ, CH_DEV, &d), MOSQ_ERR_ACL_DENIED);
	stop();
}
END_TEST

START_TEST(test_pipeline_deregister_revokes_and_kicks)
{
	ck_assert_int_eq(start(NULL, NULL, NULL), MOSQ_ERR_SUCCESS);
	/* the device listens on its channel: the plugin learns which connection holds DEV */
	ck_assert_int_eq(acl(&c_dev, MOSQ_ACL_SUBSCRIBE, CH_DEV, NULL), MOSQ_ERR_SUCCESS);
	struct buf dr = build(SRUP_MSG_DEREGISTER_REQ, 1, DEV, k_dev, "");
	ck_assert_int_eq(pub(&c_dev, CH_DEV, &dr), MOSQ_ERR_SUCCESS);
	ck_assert_int_eq(stub_kicks, 0);
	tick();
	ck_assert_int_eq(stub_kicks, 1);
	ck_assert_str_eq(stub_last_kick, "dev"); /* its client id: the CN is no broker key */
	struct buf d = build(SRUP_MSG_DATA, 2, DEV, k_dev, "x");
	ck_assert_int_eq(pub(&c_dev, CH_DEV, &d), MOSQ_ERR_ACL_DENIED);
	ck_assert_uint_eq(ctx->metrics.dropped[SRUPB_R_REVOKED_SENDER], 1);
	/* a server's DEREGISTER_CMD still reaches the device it deregisters */
	join(&c_dev2, DEV2, k_dev2, 1, JT_DEV2, CH_DEV2, 1);
	struct buf js = build(SRUP_MSG_RESPONSE, 1, SERVER, k_server, "50");
	struct buf dc = build(SRUP_MSG_DEREGISTER_CMD, 2, SERVER, k_server, "");
	ck_assert_int_eq(pub(&c_server, CH_DEV2, &dc), MOSQ_ERR_SUCCESS);
	ck_assert_int_eq(acl(&c_dev2, MOSQ_ACL_READ, CH_DEV2, &dc), MOSQ_ERR_SUCCESS);
	ck_assert_int_eq(acl(&c_server, MOSQ_ACL_READ, CH_DEV2, &dc), MOSQ_ERR_SUCCESS);
	ck_assert_int_eq(acl(&c_dev2, MOSQ_ACL_READ, CH_DEV2, &js), MOSQ_ERR_ACL_DENIED);
	/* a revoked device no longer receives on its channel either */
	ck_assert_int_eq(acl(&c_dev, MOSQ_ACL_READ, CH_DEV, &d), MOSQ_ERR_ACL_DENIED);
	stop();
}
END_TEST

/* The broker reuses a gone connection's memory: a new connection there, same client id, is not
 * "the same connection" for the retransmission exception (found in the lab: an attacker with
 * a stolen certificate taking over the C2's client id got the C2's last command through). */
START_TEST(test_pipeline_reused_memory_is_another_connection)
{
	struct mosquitto_evt_disconnect dis;
	ck_assert_int_eq(start(NULL, NULL, NULL), MOSQ_ERR_SUCCESS);
	struct buf m = build(SRUP_MSG_DATA, 1, DEV, k_dev, "one");
	ck_assert_int_eq(pub(&c_dev, CH_DEV, &m), MOSQ_ERR_SUCCESS);
	memset(&dis, 0, sizeof dis);
	dis.client = &c_dev;
	stub_cb[MOSQ_EVT_DISCONNECT](MOSQ_EVT_DISCONNECT, &dis, stub_userdata[MOSQ_EVT_DISCONNECT]);
	/* same address, same client id, a live TLS session, clean start: a new connection */
	ck_assert_int_eq(pub(&c_dev, CH_DEV, &m), MOSQ_ERR_ACL_DENIED);
	ck_assert_uint_eq(ctx->metrics.retransmitted, 0);
	ck_assert_uint_eq(ctx->metrics.dropped[SRUPB_R_REPLAY], 1);
	/* and its own next message is its own: accepted, then resent once on it */
	struct buf m2 = build(SRUP_MSG_DATA, 2, DEV, k_dev, "two");
	ck_assert_int_eq(pub(&c_dev, CH_DEV, &m2), MOSQ_ERR_SUCCESS);
	ck_assert_int_eq(pub(&c_dev, CH_DEV, &m2), MOSQ_ERR_SUCCESS);
	ck_assert_uint_eq(ctx->metrics.retransmitted, 1);
	stop();
}
END_TEST

/* Red-team items 1, 2, 14: broker state follows what messages prove, not one side's claim. */
START_TEST(test_pipeline_membership_needs_proof)
{
	ck_assert_int_eq(start(NULL, NULL, NULL), MOSQ_ERR_SUCCESS);
	/* a non-member server cannot terminate or deregister a device: no effect, not delivered */
	struct buf dc = build(SRUP_MSG_DEREGISTER_CMD, 1, SERVER, k_server, "");
	ck_assert_int_eq(pub(&c_server, CH_DEV, &dc), MOSQ_ERR_ACL_DENIED);
	ck_assert_uint_eq(ctx->metrics.dropped[SRUPB_R_NOT_MEMBER], 1);
	struct buf tc = build(SRUP_MSG_TERMINATE_CMD, 2, SERVER, k_server, "");
	ck_assert_int_eq(pub(&c_server, CH_DEV, &tc), MOSQ_ERR_ACL_DENIED);
	struct buf d = build(SRUP_MSG_DATA, 1, DEV, k_dev, "still here");
	ck_assert_int_eq(pub(&c_dev, CH_DEV, &d), MOSQ_ERR_SUCCESS);
	/* nor revoke another server through its channel: not a device */
	struct buf dcs = build(SRUP_MSG_DEREGISTER_CMD, 3, SERVER, k_server, "");
	ck_assert_int_eq(pub(&c_server, "SRUP/ad", &dcs), MOSQ_ERR_ACL_DENIED);
	ck_assert_uint_eq(ctx->metrics.dropped[SRUPB_R_UNKNOWN_TARGET], 1);
	/* a JOIN_SUCCESS nobody asked for, or a JOIN_CMD from a server not trusted with it, makes
	 * no membership */
	struct buf js = build(SRUP_MSG_RESPONSE, 4, SERVER, k_server, "50");
	ck_assert_int_eq(pub(&c_server, CH_DEV, &js), MOSQ_ERR_ACL_DENIED);
	struct buf jc = build(SRUP_MSG_JOIN_CMD, 5, SERVER, k_server, "5f5f5f5f5f5f5f5f");
	ck_assert_int_eq(pub(&c_server, CH_DEV, &jc), MOSQ_ERR_ACL_DENIED);
	ck_assert_int_eq(acl(&c_server, MOSQ_ACL_READ, CH_DEV, &d), MOSQ_ERR_ACL_DENIED);
	/* a join request to an unregistered server id stores nothing */
	struct buf rq = build(SRUP_MSG_JOIN_REQ, 2, DEV, k_dev, "");
	ck_assert_int_eq(pub(&c_dev, "SRUP/servers/99/5f5f5f5f5f5f5f5f", &rq), MOSQ_ERR_ACL_DENIED);
	ck_assert_uint_eq(ctx->metrics.dropped[SRUPB_R_UNKNOWN_TARGET], 2);
	/* the real request, then an answer with another token: still no membership */
	ck_assert_int_eq(pub(&c_dev, JT_DEV, &rq), MOSQ_ERR_SUCCESS);
	ck_assert_uint_eq(srupb_pending_count(ctx->pending), 1);
	struct srup_msg m;
	struct buf other;
	memset(&m, 0, sizeof m);
	m.version = SRUP_VERSION;
	m.type = SRUP_MSG_RESPONSE;
	m.sequence_id = 6;
	m.sender_id = SERVER;
	m.token.p = (const uint8_t *)"OTHER";
	m.token.len = 5;
	m.status = SRUP_ST_JOIN_SUCCESS;
	ck_assert_int_eq(srup_msg_sign_encode(&m, k_server, other.p, sizeof other.p, &other.len, NULL),
	                 SRUP_OK);
	ck_assert_int_eq(pub(&c_server, CH_DEV, &other), MOSQ_ERR_ACL_DENIED);
	ck_assert_uint_eq(ctx->metrics.dropped[SRUPB_R_NO_PENDING_JOIN], 2);
	/* the matching answer makes the server a member, once */
	struct buf ok = build(SRUP_MSG_RESPONSE, 7, SERVER, k_server, "50");
	ck_assert_int_eq(pub(&c_server, CH_DEV, &ok), MOSQ_ERR_SUCCESS);
	ck_assert_uint_eq(srupb_pending_count(ctx->pending), 0);
	ck_assert_int_eq(acl(&c_server, MOSQ_ACL_READ, CH_DEV, &d), MOSQ_ERR_SUCCESS);
	/* now its TERMINATE_CMD ends its own membership */
	struct buf t2 = build(SRUP_MSG_TERMINATE_CMD, 8, SERVER, k_server, "");
	ck_assert_int_eq(pub(&c_server, CH_DEV, &t2), MOSQ_ERR_SUCCESS);
	ck_assert_int_eq(acl(&c_server, MOSQ_ACL_READ, CH_DEV, &d), MOSQ_ERR_ACL_DENIED);
	stop();
}
END_TEST

/* Red-team item 6: a stored key over policy max_key_bits is never verified with (bad_key). */
START_TEST(test_pipeline_key_over_max_key_bits_is_refused)
{
	struct srup_key *big = NULL;
	struct srupb_store *st = NULL;
	char *pem = NULL;
	size_t len = 0;
	ck_assert_int_eq(
	        start("version 1\nmax_key_bits 2048\nallow own_channel device DATA\n", NULL, NULL),
	        MOSQ_ERR_SUCCESS);
	ck_assert_int_eq(srup_key_generate(3072, &big, NULL), SRUP_OK);
	ck_assert_int_eq(srup_key_public_pem(big, &pem, &len), SRUP_OK);
	st = ctx->store;
	ck_assert_int_eq(srupb_store_key_put(st, DEV2, SRUPB_ROLE_DEVICE, pem, len), SRUP_OK);
	free(pem);
	struct buf d = build(SRUP_MSG_DATA, 1, DEV2, big, "x");
	ck_assert_int_eq(pub(&c_dev2, CH_DEV2, &d), MOSQ_ERR_ACL_DENIED);
	ck_assert_uint_eq(ctx->metrics.dropped[SRUPB_R_BAD_KEY], 1);
	ck_assert_int_ge(audit_count("\"reason\":\"bad_key\""), 1);
	/* a 2048-bit key is fine under the same policy */
	struct buf ok = build(SRUP_MSG_DATA, 1, DEV, k_dev, "x");
	ck_assert_int_eq(pub(&c_dev, CH_DEV, &ok), MOSQ_ERR_SUCCESS);
	srup_key_free(big);
	stop();
}
END_TEST

/* JOIN_CMD makes a member only for a server the policy names with join_command. */
START_TEST(test_pipeline_join_command_needs_policy)
{
	ck_assert_int_eq(start("version 1\njoin_command b9d077e223834cf6\n"
	                       "allow device_channel server JOIN_CMD ACTION\n",
	                       NULL, NULL),
	                 MOSQ_ERR_SUCCESS);
	struct buf bad = build(SRUP_MSG_JOIN_CMD, 1, SERVER, k_server, "d2");
	ck_assert_int_eq(pub(&c_server, CH_DEV, &bad), MOSQ_ERR_ACL_DENIED);
	struct buf jc = build(SRUP_MSG_JOIN_CMD, 2, SERVER, k_server, "5f5f5f5f5f5f5f5f");
	ck_assert_int_eq(pub(&c_server, CH_DEV, &jc), MOSQ_ERR_SUCCESS);
	struct buf a = build(SRUP_MSG_ACTION, 3, SERVER, k_server, "");
	ck_assert_int_eq(pub(&c_server, CH_DEV, &a), MOSQ_ERR_SUCCESS);
	ck_assert_int_eq(acl(&c_server, MOSQ_ACL_READ, CH_DEV, &a), MOSQ_ERR_SUCCESS);
	stop();
}
END_TEST

/* Red-team items 5 and 7: delivery re-checks the sender; forgeries cost a connection. */
START_TEST(test_pipeline_delivery_rechecks_sender_and_bad_signatures_kick)
{
	ck_assert_int_eq(start(NULL, NULL, NULL), MOSQ_ERR_SUCCESS);
	join(&c_dev, DEV, k_dev, 1, JT_DEV, CH_DEV, 1);
	struct buf a = build(SRUP_MSG_ACTION, 2, SERVER, k_server, "");
	ck_assert_int_eq(pub(&c_server, CH_DEV, &a), MOSQ_ERR_SUCCESS);
	ck_assert_int_eq(acl(&c_dev, MOSQ_ACL_READ, CH_DEV, &a), MOSQ_ERR_SUCCESS);
	ck_assert_int_eq(srupb_store_key_revoke(ctx->store, SERVER, NULL), SRUP_OK);
	ck_assert_int_eq(acl(&c_dev, MOSQ_ACL_READ, CH_DEV, &a), MOSQ_ERR_ACL_DENIED);
	/* garbage is never delivered on a SRUP topic */
	ck_assert_int_eq(acl(&c_dev, MOSQ_ACL_READ, CH_DEV, NULL), MOSQ_ERR_ACL_DENIED);
	/* five bad signatures (the default) and the connection is closed from TICK */
	for (uint64_t i = 0; i < 5; i++) {
		struct buf f = build(SRUP_MSG_DATA, 10 + i, DEV, k_dev2, "forged");
		ck_assert_int_eq(pub(&c_dev, CH_DEV, &f), MOSQ_ERR_ACL_DENIED);
		tick();
		ck_assert_int_eq(stub_kicks, i == 4 ? 1 : 0);
	}
	ck_assert_str_eq(stub_last_kick, "dev");
	stop();
}
END_TEST

/* A shared subscription that could match a SRUP topic is refused, even to the device itself: a
 * group member the READ check refuses would take (and lose) its share of the messages. The
 * plugin's counters are for admins; other $SYS topics are not the plugin's business. */
START_TEST(test_pipeline_shared_and_sys_subscriptions)
{
	ck_assert_int_eq(start("version 1\nadmin ad\nallow own_channel device DATA\n", NULL, NULL),
	                 MOSQ_ERR_SUCCESS);
	static const char *const refused[] = {
	        "$share/g/" CH_DEV,
	        "$share/g/SRUP/#",
	        "$share/g/#",
	        "$share/g/+/"
	        "5f5f5f5f5f5f5f5f",
	        "$share/g/+/+/+/+",
	        "$share/g/SRUP/servers/b9d077e223834cf6/5f5f5f5f5f5f5f5f"};
	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
		ck_assert_msg(acl(&c_dev, MOSQ_ACL_SUBSCRIBE, refused[i], NULL) == MOSQ_ERR_ACL_DENIED,
		              "%s granted", refused[i]);
		ck_assert_msg(acl(&c_server, MOSQ_ACL_SUBSCRIBE, refused[i], NULL) == MOSQ_ERR_ACL_DENIED,
		              "%s granted to the server", refused[i]);
	}
	ck_assert_int_eq(acl(&c_dev, MOSQ_ACL_SUBSCRIBE, CH_DEV, NULL), MOSQ_ERR_SUCCESS);
	ck_assert_int_eq(acl(&c_dev, MOSQ_ACL_SUBSCRIBE, "$share/g/other/topic", NULL),
	                 MOSQ_ERR_SUCCESS);
	ck_assert_int_eq(acl(&c_dev, MOSQ_ACL_SUBSCRIBE, "$share/g/+", NULL), MOSQ_ERR_SUCCESS);
	ck_assert_int_eq(acl(&c_dev, MOSQ_ACL_SUBSCRIBE, "$share/g/SRUPX/#", NULL), MOSQ_ERR_SUCCESS);
	/* no identity: nothing under the prefix, by name or wildcard; '#' is still allowed */
	ck_assert_int_eq(acl(&c_anon, MOSQ_ACL_SUBSCRIBE, "SRUP/#", NULL), MOSQ_ERR_ACL_DENIED);
	ck_assert_int_eq(acl(&c_anon, MOSQ_ACL_SUBSCRIBE, "SRUP/+", NULL), MOSQ_ERR_ACL_DENIED);
	ck_assert_int_eq(acl(&c_anon, MOSQ_ACL_SUBSCRIBE, "#", NULL), MOSQ_ERR_SUCCESS);
	/* $SYS/broker/srup/...: admins only, by name, shared or delivered */
	ck_assert_int_eq(acl(&c_dev, MOSQ_ACL_SUBSCRIBE, "$SYS/broker/srup/#", NULL),
	                 MOSQ_ERR_ACL_DENIED);
	ck_assert_int_eq(acl(&c_anon, MOSQ_ACL_SUBSCRIBE, "$SYS/broker/srup/accepted", NULL),
	                 MOSQ_ERR_ACL_DENIED);
	ck_assert_int_eq(acl(&c_dev, MOSQ_ACL_SUBSCRIBE, "$SYS/+/srup/dropped/+", NULL),
	                 MOSQ_ERR_SUCCESS); /* a wildcard: READ filters it */
	ck_assert_int_eq(acl(&c_dev, MOSQ_ACL_SUBSCRIBE, "$share/g/$SYS/#", NULL), MOSQ_ERR_ACL_DENIED);
	ck_assert_int_eq(acl(&c_dev, MOSQ_ACL_SUBSCRIBE, "$SYS/#", NULL), MOSQ_ERR_SUCCESS);
	ck_assert_int_eq(acl(&c_admin, MOSQ_ACL_SUBSCRIBE, "$SYS/broker/srup/#", NULL),
	                 MOSQ_ERR_SUCCESS);
	ck_assert_int_eq(acl(&c_admin, MOSQ_ACL_SUBSCRIBE, "$share/g/$SYS/broker/srup/#", NULL),
	                 MOSQ_ERR_SUCCESS);
	ck_assert_int_eq(acl(&c_dev, MOSQ_ACL_READ, "$SYS/broker/srup/accepted", NULL),
	                 MOSQ_ERR_ACL_DENIED);
	ck_assert_int_eq(acl(&c_anon, MOSQ_ACL_READ, "$SYS/broker/srup/dropped/replay", NULL),
	                 MOSQ_ERR_ACL_DENIED);
	ck_assert_int_eq(acl(&c_admin, MOSQ_ACL_READ, "$SYS/broker/srup/accepted", NULL),
	                 MOSQ_ERR_SUCCESS);
	ck_assert_int_eq(acl(&c_dev, MOSQ_ACL_READ, "$SYS/broker/uptime", NULL), MOSQ_ERR_SUCCESS);
	ck_assert_int_eq(acl(&c_dev, MOSQ_ACL_SUBSCRIBE, "$SYS/broker/uptime", NULL), MOSQ_ERR_SUCCESS);
	stop();
}
END_TEST

/* Without TICK (per_listener_settings true): the kick waits for another client's event. */
START_TEST(test_pipeline_kick_without_tick_waits_for_another_client)
{
	ck_assert_int_eq(start(NULL, NULL, NULL), MOSQ_ERR_SUCCESS);
	/* the device listens on its channel: the plugin learns which connection holds DEV */
	ck_assert_int_eq(acl(&c_dev, MOSQ_ACL_SUBSCRIBE, CH_DEV, NULL), MOSQ_ERR_SUCCESS);
	struct buf dr = build(SRUP_MSG_DEREGISTER_REQ, 1, DEV, k_dev, "");
	ck_assert_int_eq(pub(&c_dev, CH_DEV, &dr), MOSQ_ERR_SUCCESS);
	struct buf d = build(SRUP_MSG_DATA, 2, DEV, k_dev, "x");
	ck_assert_int_eq(acl(&c_dev, MOSQ_ACL_READ, CH_DEV, &d), MOSQ_ERR_ACL_DENIED);
	ck_assert_int_eq(stub_kicks, 0);
	struct buf d2 = build(SRUP_MSG_DATA, 1, DEV2, k_dev2, "x");
	ck_assert_int_eq(acl(&c_dev2, MOSQ_ACL_READ, CH_DEV2, &d2), MOSQ_ERR_SUCCESS);
	ck_assert_int_eq(stub_kicks, 1);
	ck_assert_str_eq(stub_last_kick, "dev"); /* its client id: the CN is no broker key */
	stop();
}
END_TEST

START_TEST(test_pipeline_bad_options_refuse_start)
{
	ck_assert_int_ne(start(NULL, "bogus", "1"), MOSQ_ERR_SUCCESS);
	ck_assert_ptr_null(ud);
	ck_assert_ptr_nonnull(strstr(stub_last_log, "unknown option plugin_opt_bogus"));
	stop();
	ck_assert_int_ne(start(NULL, "store", "/tmp/other"), MOSQ_ERR_SUCCESS);
	ck_assert_ptr_nonnull(strstr(stub_last_log, "twice"));
	stop();
	ck_assert_int_ne(start("version 1\nallow own_channel device DATA\nnonsense\n", NULL, NULL),
	                 MOSQ_ERR_SUCCESS);
	ck_assert_ptr_nonnull(strstr(stub_last_log, "srup.policy:3: unknown directive"));
	stop();
	stub_reset();
	struct mosquitto_opt only_audit[] = {{"audit_log", "/tmp/x.jsonl"}};
	ck_assert_int_ne(mosquitto_plugin_init(NULL, &ud, only_audit, 1), MOSQ_ERR_SUCCESS);
	ck_assert_ptr_nonnull(strstr(stub_last_log, "plugin_opt_store is required"));
	ud = NULL;
}
END_TEST

START_TEST(test_pipeline_registration_failure_refuses_start)
{
	stub_reset();
	int rc = start(NULL, NULL, NULL);
	ck_assert_int_eq(rc, MOSQ_ERR_SUCCESS);
	stop();
	/* start() resets the stubs; arm the failure through a second init by hand */
	stub_reset();
	stub_fail_register_at = 3;
	struct mosquitto_opt o[] = {{"store", "/tmp/srupb-regfail"},
	                            {"audit_log", "/tmp/srupb-regfail.jsonl"}};
	ck_assert_int_eq(mosquitto_plugin_init(NULL, &ud, o, 2), MOSQ_ERR_ALREADY_EXISTS);
	ck_assert_ptr_null(ud);
	for (int e = 0; e < STUB_EVENTS; e++) {
		ck_assert_msg(stub_cb[e] == NULL, "event %d still registered", e);
	}
	ck_assert_int_eq(system("rm -rf /tmp/srupb-regfail /tmp/srupb-regfail.jsonl"), 0);
}
END_TEST

START_TEST(test_pipeline_reload_keeps_last_good_policy)
{
	const char *strict = "version 1\nallow own_channel device DATA\n";
	ck_assert_int_eq(start(strict, NULL, NULL), MOSQ_ERR_SUCCESS);
	struct buf m1 = build(SRUP_MSG_DATA, 1, DEV, k_dev, "x");
	ck_assert_int_eq(pub(&c_dev2, CH_DEV, &m1), MOSQ_ERR_ACL_DENIED); /* bound identity */
	FILE *f = fopen(policy_path, "w");
	fputs("version 1\nthis is broken\n", f);
	fclose(f);
	struct mosquitto_evt_reload r;
	memset(&r, 0, sizeof r);
	stub_errors = 0;
	stub_cb[MOSQ_EVT_RELOAD](MOSQ_EVT_RELOAD, &r, stub_userdata[MOSQ_EVT_RELOAD]);
	ck_assert_int_eq(stub_errors, 1);
	ck_assert_ptr_nonnull(strstr(stub_last_log, "keeping the last good one"));
	ck_assert_int_eq(pub(&c_dev, CH_DEV, &m1), MOSQ_ERR_SUCCESS);
	f = fopen(policy_path, "w");
	fputs("version 1\nbind_identity no\nallow own_channel device DATA\n", f);
	fclose(f);
	stub_cb[MOSQ_EVT_RELOAD](MOSQ_EVT_RELOAD, &r, stub_userdata[MOSQ_EVT_RELOAD]);
	struct buf m2 = build(SRUP_MSG_DATA, 2, DEV, k_dev, "x");
	ck_assert_int_eq(pub(&c_dev2, CH_DEV, &m2), MOSQ_ERR_SUCCESS);
	stop();
}
END_TEST

static void control(struct mosquitto *c, const char *json)
{
	struct mosquitto_evt_control e;
	memset(&e, 0, sizeof e);
	e.client = c;
	e.topic = "$CONTROL/srup/v1";
	e.payload = json;
	e.payloadlen = (uint32_t)strlen(json);
	ck_assert_int_eq(
	        stub_cb[MOSQ_EVT_CONTROL](MOSQ_EVT_CONTROL, &e, stub_userdata[MOSQ_EVT_CONTROL]),
	        MOSQ_ERR_SUCCESS);
}

START_TEST(test_pipeline_control_topic_admin_only)
{
	ck_assert_int_eq(start("version 1\nadmin ad\nallow own_channel device DATA\n", NULL, NULL),
	                 MOSQ_ERR_SUCCESS);
	ck_assert_int_eq(pub_r(&c_dev, "$CONTROL/srup/v1", "{}", 2, false), MOSQ_ERR_ACL_DENIED);
	ck_assert_int_eq(acl(&c_admin, MOSQ_ACL_WRITE, "$CONTROL/srup/v1", NULL), MOSQ_ERR_SUCCESS);
	/* only the canonical spelling of the admin's id is the admin (no "0xad", "AD", "0ad") */
	static const char *const aliases[] = {"0xad", "AD", "0ad"};
	for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++) {
		struct mosquitto alias = {"alias", aliases[i], stub_cn_cert(aliases[i]), false};
		ck_assert_int_eq(acl(&alias, MOSQ_ACL_WRITE, "$CONTROL/srup/v1", NULL),
		                 MOSQ_ERR_ACL_DENIED);
		X509_free(alias.cert);
	}
	control(&c_dev, "{\"command\":\"revoke\",\"id\":\"d2\"}");
	struct buf m = build(SRUP_MSG_DATA, 1, DEV2, k_dev2, "x");
	ck_assert_int_eq(pub(&c_dev2, CH_DEV2, &m), MOSQ_ERR_SUCCESS);
	ck_assert_int_eq(acl(&c_dev2, MOSQ_ACL_SUBSCRIBE, CH_DEV2, NULL), MOSQ_ERR_SUCCESS);
	control(&c_admin, "{ \"command\" : \"revoke\", \"id\": \"d2\" }");
	ck_assert_str_eq(stub_last_topic, "$CONTROL/srup/v1/response");
	ck_assert_ptr_nonnull(strstr(stub_last_payload, "\"result\":\"ok\""));
	tick();
	ck_assert_int_ge(stub_kicks, 1);
	ck_assert_str_eq(stub_last_kick, "dev2"); /* the connection holding d2, by client id */
	struct buf m2 = build(SRUP_MSG_DATA, 2, DEV2, k_dev2, "x");
	ck_assert_int_eq(pub(&c_dev2, CH_DEV2, &m2), MOSQ_ERR_ACL_DENIED);
	control(&c_admin, "{\"command\":\"revoke\",\"id\":\"777\"}");
	ck_assert_ptr_nonnull(strstr(stub_last_payload, "\"result\":\"error\""));
	control(&c_admin, "{\"command\":\"dance\"}");
	ck_assert_ptr_nonnull(strstr(stub_last_payload, "unknown command"));
	control(&c_admin, "{\"command\":\"reload\"}");
	ck_assert_ptr_nonnull(strstr(stub_last_payload, "\"result\":\"ok\""));
	ck_assert_int_eq(acl(&c_admin, MOSQ_ACL_READ, "$CONTROL/srup/v1/response", NULL),
	                 MOSQ_ERR_SUCCESS);
	ck_assert_int_eq(acl(&c_dev, MOSQ_ACL_READ, "$CONTROL/srup/v1/response", NULL),
	                 MOSQ_ERR_ACL_DENIED);
	stop();
}
END_TEST

START_TEST(test_pipeline_audit_rate_limit_and_metrics)
{
	ck_assert_int_eq(start("version 1\naudit_rate 2 1\naudit_accepts yes\n"
	                       "allow own_channel device DATA\n",
	                       NULL, NULL),
	                 MOSQ_ERR_SUCCESS);
	struct buf m = build(SRUP_MSG_DATA, 1, DEV, k_dev, "x");
	ck_assert_int_eq(pub(&c_dev, CH_DEV, &m), MOSQ_ERR_SUCCESS);
	ck_assert_int_eq(audit_count("\"verdict\":\"accept\""), 1);
	int warnings = stub_warnings;
	for (int i = 0; i < 10; i++) {
		ck_assert_int_eq(pub(&c_dev_b, CH_DEV, &m), MOSQ_ERR_ACL_DENIED);
	}
	ck_assert_uint_eq(ctx->metrics.dropped[SRUPB_R_REPLAY], 10);
	ck_assert_int_eq(audit_count("\"reason\":\"replay\""), 2);
	ck_assert_int_eq(stub_warnings - warnings, 2);
	sleep(1);
	tick(); /* writes the summary once a token is back */
	ck_assert_int_eq(audit_count("\"suppressed\":8"), 1);
	ck_assert_int_ge(stub_publishes, 20);
	stop();
}
END_TEST

Suite *plugin_pipeline_suite(void)
{
	Suite *s = suite_create("plugin_pipeline");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_pipeline_accepts_once_then_replay_and_retransmit);
	tcase_add_test(tc, test_pipeline_retransmit_only_as_mqtt_does);
	tcase_add_test(tc, test_pipeline_forgery_moves_no_state);
	tcase_add_test(tc, test_pipeline_prefixes_and_flips_are_dropped);
	tcase_add_test(tc, test_pipeline_each_drop_reason);
	tcase_add_test(tc, test_pipeline_same_bytes_on_another_channel_is_replay);
	tcase_add_test(tc, test_pipeline_own_channel_index_follows_policy);
	tcase_add_test(tc, test_pipeline_seen_index_full_fails_closed);
	tcase_add_test(tc, test_pipeline_membership_read_and_subscribe);
	tcase_add_test(tc, test_pipeline_shared_and_sys_subscriptions);
	tcase_add_test(tc, test_pipeline_deregister_revokes_and_kicks);
	tcase_add_test(tc, test_pipeline_kick_without_tick_waits_for_another_client);
	tcase_add_test(tc, test_pipeline_membership_needs_proof);
	tcase_add_test(tc, test_pipeline_reused_memory_is_another_connection);
	tcase_add_test(tc, test_pipeline_join_command_needs_policy);
	tcase_add_test(tc, test_pipeline_key_over_max_key_bits_is_refused);
	tcase_add_test(tc, test_pipeline_delivery_rechecks_sender_and_bad_signatures_kick);
	tcase_add_test(tc, test_pipeline_bad_options_refuse_start);
	tcase_add_test(tc, test_pipeline_registration_failure_refuses_start);
	tcase_add_test(tc, test_pipeline_reload_keeps_last_good_policy);
	tcase_add_test(tc, test_pipeline_control_topic_admin_only);
	tcase_add_test(tc, test_pipeline_audit_rate_limit_and_metrics);
	suite_add_tcase(s, tc);
	return s;
}
