/* SPDX-License-Identifier: MIT
 * acl.c - the MOSQ_EVT_ACL_CHECK callback: WRITE goes to the verifier, READ and SUBSCRIBE follow
 * the join-topic and device-channel rules (membership from the store). Decision order:
 * the plugin's own counters ($SYS/broker/srup/...) are for admins only; classify the topic;
 * non-SRUP topics get the policy's other_topics answer; $CONTROL/srup/v1 is for admins only and
 * is never granted by fall-through; SRUP topics need an active key. Shared subscriptions that
 * could match a SRUP topic are refused (a group member denied on READ would starve the rest). */
#include <string.h>

#include <openssl/crypto.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#include "srupb.h"

static int other_result(const struct srupb_ctx *ctx)
{
	return ctx->policy->other_defer ? MOSQ_ERR_PLUGIN_DEFER : MOSQ_ERR_SUCCESS;
}

/* The caller's identity as an id in canonical text form (*parsed), and whether that id has an
 * active key (its role in *role). The key record is read from the store, or taken from rc when
 * rc vouches for this id at store version sv; a record read without error is cached in rc. */
static bool reader_id(struct srupb_ctx *ctx, struct mosquitto *client, struct srupb_reader *rc,
                      uint64_t sv, uint64_t *id, unsigned *role, bool *parsed)
{
	char idbuf[SRUPB_IDENTITY_MAX];
	const char *ident = srupb_identity(ctx, client, idbuf, sizeof idbuf);
	struct srupb_keyrec rec;
	bool found = false;

	*parsed = false;
	if (!srupb_identity_id(ident, id)) {
		return false;
	}
	*parsed = true;
	if (rc != NULL && sv != 0 && rc->version == sv && rc->id == *id) {
		*role = rc->role;
		return rc->active;
	}
	if (srupb_store_key_find(ctx->store, *id, &rec, &found) != SRUP_OK) {
		return false;
	}
	bool active = found && rec.status == SRUPB_KEY_ACTIVE;
	*role = active ? rec.role : 0;
	if (rc != NULL) {
		rc->version = sv;
		rc->id = *id;
		rc->role = *role;
		rc->active = active;
	}
	return active;
}

static bool is_admin(struct srupb_ctx *ctx, struct mosquitto *client)
{
	char idbuf[SRUPB_IDENTITY_MAX];
	const char *ident = srupb_identity(ctx, client, idbuf, sizeof idbuf);
	uint64_t id = 0;
	return srupb_identity_id(ident, &id) && srupb_policy_is_admin(ctx->policy, id);
}

/* An admin, or a metrics_reader: may read the counters, and nothing else of the admin plane. */
static bool reads_metrics(struct srupb_ctx *ctx, struct mosquitto *client)
{
	char idbuf[SRUPB_IDENTITY_MAX];
	const char *ident = srupb_identity(ctx, client, idbuf, sizeof idbuf);
	uint64_t id = 0;
	return srupb_identity_id(ident, &id) && srupb_policy_reads_metrics(ctx->policy, id);
}

/* The plugin's counters: verdicts and drop reasons tell an attacker which probes work. */
#define SRUP_SYS     "$SYS/broker/srup/"
#define SRUP_SYS_LEN (sizeof SRUP_SYS - 1)

static bool is_srup_sys(const char *topic)
{
	return topic != NULL && strncmp(topic, SRUP_SYS, SRUP_SYS_LEN) == 0;
}

/* Was reader a member of device until the leave message with exactly these bytes? */
static bool in_grace(struct srupb_ctx *ctx, uint64_t device, uint64_t reader, const void *payload,
                     uint32_t len)
{
	double now = srupb_now();
	uint8_t dg[32];
	bool have_dg = false;

	for (size_t i = 0; i < SRUPB_GRACE_SLOTS; i++) {
		struct srupb_grace *g = &ctx->grace[i];
		if (!g->valid || g->device != device) {
			continue;
		}
		if (now > g->until) {
			g->valid = false;
			continue;
		}
		for (size_t j = 0; j < g->n; j++) {
			if (g->servers[j] != reader) {
				continue;
			}
			if (!have_dg) {
				if (payload == NULL || !srupb_sha256(ctx, payload, len, dg)) {
					return false;
				}
				have_dg = true;
			}
			if (CRYPTO_memcmp(dg, g->digest, sizeof dg) == 0) {
				return true;
			}
		}
	}
	return false;
}

/* Does the SRUP message in payload come from a sender whose key is still active? Checked at
 * every delivery, so a message accepted before its sender was revoked (queued for an offline
 * client, or a QoS 2 message whose PUBREL comes later) is not delivered after it. */
static bool sender_active(struct srupb_ctx *ctx, const uint8_t *p, uint32_t len)
{
	struct srupb_keyrec rec;
	const struct srup_key *key;
	struct srup_verifier *ver;
	unsigned role;
	bool found = false;
	uint64_t sender = 0;

	/* version(1) type(1) sequence(8, LE) sender(8, LE): spec §1.2 */
	if (p == NULL || len < 18 || p[0] != SRUP_VERSION) {
		return false;
	}
	for (int i = 7; i >= 0; i--) {
		sender = sender << 8 | p[10 + i];
	}
	if (srupb_keystore_peek(ctx->keys, sender, srupb_store_version(ctx->store), &role, &key,
	                        &ver)) {
		return true;
	}
	return srupb_store_key_find(ctx->store, sender, &rec, &found) == SRUP_OK && found &&
	       rec.status == SRUPB_KEY_ACTIVE;
}

static int acl_read(struct srupb_ctx *ctx, struct mosquitto *client, const char *topic,
                    const void *payload, uint32_t payloadlen)
{
	struct srupb_topic t;
	uint64_t rid = 0;
	unsigned role = 0;
	bool ok = false;
	bool member = false;
	bool parsed = false;

	if (is_srup_sys(topic)) {
		return reads_metrics(ctx, client) ? MOSQ_ERR_SUCCESS : MOSQ_ERR_ACL_DENIED;
	}
	srupb_policy_classify(ctx->policy, topic, &t);
	switch (t.kind) {
		case SRUPB_T_OTHER:
			return other_result(ctx);
		case SRUPB_T_CONTROL_RESP:
			return is_admin(ctx, client) ? MOSQ_ERR_SUCCESS : MOSQ_ERR_ACL_DENIED;
		case SRUPB_T_CONTROL:
		case SRUPB_T_PROTECTED:
			return MOSQ_ERR_ACL_DENIED;
		case SRUPB_T_DEVICE:
		case SRUPB_T_JOIN:
		default:
			break;
	}
	/* Remember who reads SRUP topics (not on WRITE: a Will is checked after its client's
	 * DISCONNECT event), and what the store said of them while it is unchanged. */
	struct srupb_reader *rc = srupb_clients_seen(ctx, client, false, NULL);
	bool active = reader_id(ctx, client, rc, srupb_store_version(ctx->store), &rid, &role, &parsed);
	if (active) {
		if (t.kind == SRUPB_T_JOIN) {
			/* Only the named server receives join requests. */
			ok = rid == t.a && role == SRUPB_ROLE_SERVER;
		} else if (rid == t.a) {
			ok = true;
		} else if (srupb_store_member_find(ctx->store, t.a, rid, &member) == SRUP_OK) {
			ok = member;
		}
	}
	if (ok) {
		ok = sender_active(ctx, payload, payloadlen);
	}
	/* A deregistered device (key now revoked) still gets the message that revoked it. */
	if (!ok && parsed && t.kind == SRUPB_T_DEVICE) {
		ok = in_grace(ctx, t.a, rid, payload, payloadlen);
	}
	srupb_store_read_end(ctx->store);
	return ok ? MOSQ_ERR_SUCCESS : MOSQ_ERR_ACL_DENIED;
}

/* Level n (0-based) of filter f into out; false if there is no such level. */
static bool level(const char *f, unsigned n, char *out, size_t cap)
{
	const char *s = f;
	for (unsigned i = 0; i < n; i++) {
		s = strchr(s, '/');
		if (s == NULL) {
			return false;
		}
		s++;
	}
	size_t len = strcspn(s, "/");
	if (len >= cap) {
		len = cap - 1;
	}
	memcpy(out, s, len);
	out[len] = '\0';
	return true;
}

/* Could filter f match a topic whose first levels are want[0, n)? Level 0 must match literally
 * when dollar is set (MQTT: wildcards in the first level never match a '$' topic). *named: the
 * first n levels of f are all literal. */
static bool may_match(const char *f, const char *const *want, unsigned n, bool dollar, bool *named)
{
	const char *s = f;

	*named = true;
	for (unsigned i = 0; i < n; i++) {
		size_t len = strcspn(s, "/");
		if (len == 1 && s[0] == '#' && !(dollar && i == 0)) {
			*named = false;
			return true;
		}
		if (len == 1 && s[0] == '+' && !(dollar && i == 0)) {
			*named = false;
		} else if (len != strlen(want[i]) || strncmp(s, want[i], len) != 0) {
			return false;
		}
		if (s[len] != '/') {
			return false; /* the filter ends here: it matches no topic below this level */
		}
		s += len + 1;
	}
	return true;
}

/* SUBSCRIBE sees only the filter: deny early what could never be read (a friendly 0x87);
 * wildcards that might match SRUP topics are allowed, because READ filters every message. A
 * shared subscription gets one subscriber per message, chosen before READ, so a group member
 * that may not read starves the others: refuse every shared filter that could match a SRUP topic
 * (SRUP needs none), and, for non-admins, one that could match the plugin's counters. */
/* The SUBSCRIBE decision; on a refusal *why names the reason (static text) and *r the audit
 * reason. */
static int subscribe_decision(struct srupb_ctx *ctx, struct mosquitto *client, const char *filter,
                              const char **why, enum srupb_reason *r)
{
	char l0[80];
	char l1[80];
	char l2[80];
	uint64_t rid = 0;
	uint64_t named = 0;
	unsigned role = 0;
	bool ok = false;
	bool parsed = false;
	bool shared = false;
	bool literal = false;
	const struct srupb_policy *p = ctx->policy;
	const char *const sys[] = {"$SYS", "broker", "srup"};
	const char *const prefix[] = {p->prefix};

	*r = SRUPB_R_NOT_ALLOWED;
	*why = "malformed filter";
	if (filter == NULL) {
		return MOSQ_ERR_ACL_DENIED;
	}
	if (strncmp(filter, "$share/", 7) == 0) {
		const char *s = strchr(filter + 7, '/');
		if (s == NULL) {
			return MOSQ_ERR_ACL_DENIED;
		}
		filter = s + 1;
		shared = true;
	}
	*why = "admins only ($CONTROL/srup/)";
	if (strncmp(filter, "$CONTROL/srup/", 14) == 0) {
		return is_admin(ctx, client) ? MOSQ_ERR_SUCCESS : MOSQ_ERR_ACL_DENIED;
	}
	*why = "admins and metrics readers only ($SYS/broker/srup/)";
	if (may_match(filter, sys, 3, true, &literal) && (literal || shared) &&
	    !reads_metrics(ctx, client)) {
		return MOSQ_ERR_ACL_DENIED;
	}
	*why = "a shared subscription that could match SRUP topics";
	if (shared && may_match(filter, prefix, 1, false, &literal)) {
		return MOSQ_ERR_ACL_DENIED;
	}
	if (!level(filter, 0, l0, sizeof l0) || strcmp(l0, p->prefix) != 0) {
		return other_result(ctx);
	}
	struct srupb_reader *rc = srupb_clients_seen(ctx, client, false, NULL);
	bool active = reader_id(ctx, client, rc, srupb_store_version(ctx->store), &rid, &role, &parsed);
	if (!parsed) {
		/* No proven identity: nothing under the prefix is ever delivered to it. */
		srupb_store_read_end(ctx->store);
		*r = SRUPB_R_NO_IDENTITY;
		*why = "the client has no proven identity";
		return MOSQ_ERR_ACL_DENIED;
	}
	if (!level(filter, 1, l1, sizeof l1) || strcmp(l1, "+") == 0 || strcmp(l1, "#") == 0) {
		srupb_store_read_end(ctx->store);
		return MOSQ_ERR_SUCCESS;
	}
	if (active) {
		if (strcmp(l1, "servers") == 0) {
			ok = role == SRUPB_ROLE_SERVER && level(filter, 2, l2, sizeof l2) &&
			     srup_id_parse(l2, strlen(l2), &named) == SRUP_OK && named == rid;
		} else if (srup_id_parse(l1, strlen(l1), &named) == SRUP_OK) {
			/* A server may subscribe to any device channel; delivery still needs membership. */
			ok = named == rid || role == SRUPB_ROLE_SERVER;
		}
	}
	srupb_store_read_end(ctx->store);
	if (!active) {
		*r = SRUPB_R_REVOKED_SENDER;
		*why = "the identity has no active key";
	} else {
		*why = "only the device itself, its servers, or the named server may read this";
	}
	return ok ? MOSQ_ERR_SUCCESS : MOSQ_ERR_ACL_DENIED;
}

/* SUBSCRIBE: every refusal is counted (refused/subscribe) and audited (verdict "refuse"). */
static int acl_subscribe(struct srupb_ctx *ctx, struct mosquitto *client, const char *filter)
{
	const char *why = NULL;
	enum srupb_reason r = SRUPB_R_NOT_ALLOWED;
	int rc = subscribe_decision(ctx, client, filter, &why, &r);
	if (rc == MOSQ_ERR_ACL_DENIED) {
		char idbuf[SRUPB_IDENTITY_MAX];
		char fp[65];
		struct srupb_event ev;
		memset(&ev, 0, sizeof ev);
		ev.verdict = SRUPB_V_REFUSE;
		ev.reason = r;
		ev.client_id = mosquitto_client_id(client);
		ev.identity = srupb_identity(ctx, client, idbuf, sizeof idbuf);
		ev.topic = filter;
		ev.type = -1;
		ev.detail = why;
		ev.conn = client;
		srupb_clients_peer(ctx, client, fp, &ev.address, &ev.cert_sha256);
		srupb_metrics_count(&ctx->metrics, ev.verdict, ev.reason);
		if (srupb_audit_admit(ctx->audit, &ev)) {
			srupb_audit_write(ctx->audit, &ev);
		}
	}
	return rc;
}

int srupb_acl_check(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_acl_check *ed = event_data;
	struct srupb_ctx *ctx = userdata;

	(void)event;
	if (!ctx->have_tick && ctx->n_kicks > 0) {
		srupb_kick_run_except(ctx, ed->client);
	}
	switch (ed->access) {
		case MOSQ_ACL_WRITE:
			return srupb_verify_publish(ctx, ed->client, ed->topic, ed->payload, ed->payloadlen,
			                            ed->qos, ed->retain, false);
		case MOSQ_ACL_READ:
			return acl_read(ctx, ed->client, ed->topic, ed->payload, ed->payloadlen);
		case MOSQ_ACL_SUBSCRIBE:
			return acl_subscribe(ctx, ed->client, ed->topic);
		case MOSQ_ACL_UNSUBSCRIBE:
			return MOSQ_ERR_SUCCESS;
		default:
			return other_result(ctx);
	}
}
