/* SPDX-License-Identifier: MIT
 * verify.c - the verdict pipeline of DESIGN.md for one publish (MESSAGE and ACL WRITE paths).
 * Nothing changes state before the signature verifies; the replay mark is committed before
 * SUCCESS is returned. It does not decide reads or subscriptions (acl.c). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#include "srupb.h"

#define DETAIL_MAX 200

struct decision {
	enum srupb_verdict verdict;
	enum srupb_reason reason;
	char detail[DETAIL_MAX];
	bool kick_publisher; /* queue a disconnect of the publishing client */
};

/* --- deferred kicks (notes §0.8: never kick a client inside its own callback) --- */

void srupb_kick_queue(struct srupb_ctx *ctx, const char *name, bool by_username)
{
	struct srupb_kick *k;
	if (name == NULL) {
		return;
	}
	for (size_t i = 0; i < ctx->n_kicks; i++) {
		if (ctx->kicks[i].by_username == by_username && strcmp(ctx->kicks[i].name, name) == 0) {
			return;
		}
	}
	if (ctx->n_kicks == ctx->cap_kicks) {
		size_t cap = ctx->cap_kicks == 0 ? 8 : ctx->cap_kicks * 2;
		if (cap > 4096) {
			srupb_log(MOSQ_LOG_WARNING, "kick | queue full, not disconnecting %s", name);
			return;
		}
		k = realloc(ctx->kicks, cap * sizeof *k);
		if (k == NULL) {
			return;
		}
		ctx->kicks = k;
		ctx->cap_kicks = cap;
	}
	k = &ctx->kicks[ctx->n_kicks];
	k->name = strdup(name);
	if (k->name == NULL) {
		return;
	}
	k->by_username = by_username;
	ctx->n_kicks++;
}

void srupb_kick_run(struct srupb_ctx *ctx)
{
	/* Take the list first: a kick runs the DISCONNECT callback, which must see a consistent
	 * (empty) queue. */
	struct srupb_kick *list = ctx->kicks;
	size_t n = ctx->n_kicks;
	ctx->kicks = NULL;
	ctx->n_kicks = 0;
	ctx->cap_kicks = 0;
	for (size_t i = 0; i < n; i++) {
		char esc[4 * SRUPB_LOG_TRUNC + 8];
		srupb_log_escape(list[i].name, esc, sizeof esc);
		srupb_log(MOSQ_LOG_NOTICE, "kick | %s=%s", list[i].by_username ? "username" : "client",
		          esc);
		if (list[i].by_username) {
			(void)mosquitto_kick_client_by_username(list[i].name, false);
		} else {
			(void)mosquitto_kick_client_by_clientid(list[i].name, false);
		}
		free(list[i].name);
	}
	free(list);
}

void srupb_kick_run_except(struct srupb_ctx *ctx, struct mosquitto *current)
{
	/* Without TICK (per_listener_settings true on 2.0.11): kick from another client's event,
	 * never the client whose callback this is. */
	const char *cid = current != NULL ? mosquitto_client_id(current) : NULL;
	const char *user = current != NULL ? mosquitto_client_username(current) : NULL;
	size_t keep = 0;
	struct srupb_kick *later = NULL;

	for (size_t i = 0; i < ctx->n_kicks; i++) {
		const char *mine = ctx->kicks[i].by_username ? user : cid;
		if (mine != NULL && strcmp(mine, ctx->kicks[i].name) == 0) {
			keep++;
		}
	}
	if (keep == ctx->n_kicks) {
		return;
	}
	if (keep > 0) {
		later = calloc(keep, sizeof *later);
		if (later == NULL) {
			return;
		}
		size_t j = 0;
		size_t w = 0;
		for (size_t i = 0; i < ctx->n_kicks; i++) {
			const char *mine = ctx->kicks[i].by_username ? user : cid;
			if (mine != NULL && strcmp(mine, ctx->kicks[i].name) == 0) {
				later[j++] = ctx->kicks[i];
			} else {
				ctx->kicks[w++] = ctx->kicks[i];
			}
		}
		ctx->n_kicks = w;
	}
	srupb_kick_run(ctx);
	for (size_t i = 0; i < keep; i++) {
		srupb_kick_queue(ctx, later[i].name, later[i].by_username);
		free(later[i].name);
	}
	free(later);
}

void srupb_kick_identity(struct srupb_ctx *ctx, uint64_t id)
{
	char text[SRUP_ID_TEXT_MAX];
	/* Every live connection known to hold id (by whichever identity source), and, where the
	 * identity is the username or the client id, whoever holds that name now. */
	srupb_clients_kick_id(ctx, id);
	if (ctx->policy->identity == SRUPB_ID_CERTIFICATE ||
	    srup_id_format(id, text, sizeof text) != SRUP_OK) {
		return; /* no broker lookup by certificate: the table's connections are all there is */
	}
	srupb_kick_queue(ctx, text, ctx->policy->identity == SRUPB_ID_USERNAME);
}

/* --- the pipeline --- */

static enum srupb_verdict drop(struct decision *d, enum srupb_reason r, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static enum srupb_verdict drop(struct decision *d, enum srupb_reason r, const char *fmt, ...)
{
	va_list ap;
	d->verdict = SRUPB_V_DROP;
	d->reason = r;
	va_start(ap, fmt);
	vsnprintf(d->detail, sizeof d->detail, fmt, ap);
	va_end(ap);
	return SRUPB_V_DROP;
}

static enum srupb_reason parse_reason(enum srup_err e)
{
	switch (e) {
		case SRUP_ERR_EMPTY:
			return SRUPB_R_EMPTY_PAYLOAD;
		case SRUP_ERR_TOO_LONG:
			return SRUPB_R_TOO_LARGE;
		case SRUP_ERR_TRUNCATED:
			return SRUPB_R_TRUNCATED;
		case SRUP_ERR_FIELD_LEN:
			return SRUPB_R_FIELD_LENGTH;
		case SRUP_ERR_TRAILING:
			return SRUPB_R_TRAILING_BYTES;
		case SRUP_ERR_VERSION:
			return SRUPB_R_BAD_VERSION;
		case SRUP_ERR_TYPE:
			return SRUPB_R_UNKNOWN_TYPE;
		case SRUP_ERR_PAD:
			return SRUPB_R_BAD_PAD;
		default:
			return SRUPB_R_INTERNAL_ERROR;
	}
}

bool srupb_sha256(const struct srupb_ctx *ctx, const void *p, size_t len, uint8_t out[32])
{
	unsigned int n = 0;
	const EVP_MD *md = ctx->sha256 != NULL ? (const EVP_MD *)ctx->sha256 : EVP_sha256();
	EVP_MD_CTX *mc = ctx->md_ctx;
	if (mc == NULL) {
		return EVP_Digest(p, len, out, &n, md, NULL) == 1 && n == 32;
	}
	return EVP_DigestInit_ex2(mc, md, NULL) == 1 && EVP_DigestUpdate(mc, p, len) == 1 &&
	       EVP_DigestFinal_ex(mc, out, &n) == 1 && n == 32;
}

/* The digest of a client id for replay marks; the last one is cached (a connection usually
 * publishes many messages in a row). */
static bool client_digest(struct srupb_ctx *ctx, const char *client_id, uint8_t out[32])
{
	const char *id = client_id != NULL ? client_id : "";
	if (ctx->last_client != NULL && strcmp(ctx->last_client, id) == 0) {
		memcpy(out, ctx->last_client_dg, 32);
		return true;
	}
	if (!srupb_sha256(ctx, id, strlen(id), out)) {
		return false;
	}
	free(ctx->last_client);
	ctx->last_client = strdup(id);
	memcpy(ctx->last_client_dg, out, 32);
	return true;
}

static bool any_role_allows(const struct srupb_policy *p, enum srupb_rule_kind rk, unsigned type)
{
	for (unsigned r = 1; r < SRUPB_ROLE__COUNT; r++) {
		if (srupb_policy_allows(p, rk, r, type)) {
			return true;
		}
	}
	return false;
}

/* The publish being decided, as the broker presented it. */
struct pub {
	struct mosquitto *client;
	const char *client_id;
	const char *identity;
	int qos;
	bool retain;
	bool from_message;
	bool is_will;              /* a WRITE check of a Will (after its client's DISCONNECT) */
	struct srupb_reader *conn; /* the publishing connection's entry, or NULL */
};

/* Which kind of join an accepted request on a join topic opens, or -1 (not a join request). */
static int join_kind(unsigned type)
{
	switch (type) {
		case SRUP_MSG_JOIN_REQ:
			return SRUPB_JOIN_SIMPLE;
		case SRUP_MSG_HM_JOIN_REQ:
			return SRUPB_JOIN_HUMAN;
		case SRUP_MSG_OBS_JOIN_REQ:
			return SRUPB_JOIN_OBSERVED;
		default:
			return -1;
	}
}

static bool is_join_outcome(const struct srup_msg *m)
{
	return m->type == SRUP_MSG_RESPONSE &&
	       (m->status == SRUP_ST_JOIN_SUCCESS || m->status == SRUP_ST_JOIN_REFUSED ||
	        m->status == SRUP_ST_JOIN_FAIL);
}

/* The role of a topic's id if its key is ACTIVE (else NONE): from the key cache while it vouches
 * for the record at store version sv, else from the store. */
static enum srup_err target_role(struct srupb_ctx *ctx, uint64_t id, uint64_t sv, unsigned *role)
{
	struct srupb_keyrec rec;
	const struct srup_key *key;
	struct srup_verifier *ver;
	bool found = false;
	enum srup_err e;

	if (srupb_keystore_peek(ctx->keys, id, sv, role, &key, &ver)) {
		return SRUP_OK;
	}
	e = srupb_store_key_find(ctx->store, id, &rec, &found);
	*role = SRUPB_ROLE_NONE;
	if (e == SRUP_OK && found && rec.status == SRUPB_KEY_ACTIVE) {
		*role = rec.role;
	}
	return e;
}

/* The sender's retiring key (the one a rotation replaced), while its overlap lasts: OK if it
 * verifies m, SIG if there is none, it expired or it does not verify (note then holds a note
 * for the drop line: "" or "; ..."), else the error. Costs, per message whose signature
 * failed with the key in force, one LMDB read and at most one more verification. */
static enum srup_err retiring_verify(struct srupb_ctx *ctx, const struct srup_msg *m,
                                     const char *sender_text, char *note, size_t cap)
{
	const struct srup_key *key = NULL;
	struct srup_verifier *ver = NULL;
	const char *pem = NULL;
	size_t pem_len = 0;
	uint64_t until = 0;
	bool found = false;
	enum srup_err e;

	note[0] = '\0';
	e = srupb_store_retiring_find(ctx->store, m->sender_id, &until, &pem, &pem_len, &found);
	if (e != SRUP_OK || !found) {
		srupb_store_read_end(ctx->store);
		return e != SRUP_OK ? e : SRUP_ERR_SIG;
	}
	if (until <= (uint64_t)time(NULL)) {
		srupb_store_read_end(ctx->store);
		snprintf(note, cap, "; the old key of %s retired at its overlap's end", sender_text);
		return SRUP_ERR_SIG;
	}
	e = srupb_keystore_retiring(ctx->keys, m->sender_id, until, pem, pem_len, &key, &ver);
	srupb_store_read_end(ctx->store);
	if (e != SRUP_OK) {
		return e;
	}
	if (srup_key_bits(key) > ctx->policy->max_key_bits || m->signature.len != srup_key_size(key)) {
		return SRUP_ERR_SIG;
	}
	e = srup_verifier_msg(ver, m, NULL);
	if (e == SRUP_ERR_SIG) {
		snprintf(note, cap, " (nor with its retiring key)");
	}
	return e;
}

/* The trust rules of DESIGN.md, checked before the signature (they only read state): who may
 * address whom, and which answers are owed. Sets the membership effect the message will have
 * if it verifies. Returns SRUPB_V_PASS to go on, or the drop. */
static enum srupb_verdict trust_check(struct srupb_ctx *ctx, const struct srupb_topic *t,
                                      enum srupb_rule_kind rk, unsigned role, uint64_t sv,
                                      const struct srup_msg *m, const uint8_t tok_dg[32],
                                      struct srupb_commit *c, struct decision *d)
{
	const struct srupb_policy *p = ctx->policy;
	unsigned trole = SRUPB_ROLE_NONE;
	bool member = false;
	double now;

	if (rk == SRUPB_RULE_OWN) {
		/* A device's leave acts on its own memberships (and key) only. */
		c->member_device = m->sender_id;
		if (m->type == SRUP_MSG_RESIGN_REQUEST) {
			c->member_op = SRUPB_MEMBER_LEAVE_ALL;
		} else if (m->type == SRUP_MSG_DEREGISTER_REQ) {
			c->member_op = SRUPB_MEMBER_LEAVE_ALL;
			c->revoke = true;
		}
		return SRUPB_V_PASS;
	}
	if (rk == SRUPB_RULE_JOIN) {
		/* Join requests go to registered servers only: made-up server ids store nothing. */
		if (target_role(ctx, t->a, sv, &trole) != SRUP_OK) {
			return drop(d, SRUPB_R_INTERNAL_ERROR, "store: %s", srupb_store_strerror(ctx->store));
		}
		if (trole != SRUPB_ROLE_SERVER) {
			return drop(d, SRUPB_R_UNKNOWN_TARGET, "no active server key for %" PRIx64, t->a);
		}
		if (join_kind(m->type) >= 0 &&
		    !srupb_pending_room(ctx->pending, t->a, m->sender_id, p->pending_per_device,
		                        p->pending_max, srupb_now())) {
			return drop(d, SRUPB_R_PENDING_FULL, "%zu pending joins (policy pending_joins)",
			            srupb_pending_count(ctx->pending));
		}
		return SRUPB_V_PASS;
	}
	/* A device channel of another id: it must be an active device (or observer). A server's
	 * key is never the target of anything sent on a device channel. */
	if (target_role(ctx, t->a, sv, &trole) != SRUP_OK) {
		return drop(d, SRUPB_R_INTERNAL_ERROR, "store: %s", srupb_store_strerror(ctx->store));
	}
	if (trole != SRUPB_ROLE_DEVICE && trole != SRUPB_ROLE_OBSERVER) {
		return drop(d, SRUPB_R_UNKNOWN_TARGET, "no active device key for %" PRIx64, t->a);
	}
	if (role != SRUPB_ROLE_SERVER) {
		return SRUPB_V_PASS; /* only as far as the policy's own rules go; no effects */
	}
	c->member_device = t->a;
	c->member_server = m->sender_id;
	now = srupb_now();
	if (is_join_outcome(m) || m->type == SRUP_MSG_HM_JOIN_RESP ||
	    m->type == SRUP_MSG_OBS_JOIN_RESP) {
		/* Answers to a request the device really sent to this server, still pending. */
		const struct srupb_pending_join *j =
		        srupb_pending_find(ctx->pending, m->sender_id, t->a, now);
		if (j == NULL) {
			return drop(d, SRUPB_R_NO_PENDING_JOIN,
			            "no pending join request of %" PRIx64 " to this server", t->a);
		}
		if (m->type == SRUP_MSG_HM_JOIN_RESP && j->kind != SRUPB_JOIN_HUMAN) {
			return drop(d, SRUPB_R_NO_PENDING_JOIN, "the pending join is not human-moderated");
		}
		if (m->type == SRUP_MSG_OBS_JOIN_RESP && j->kind != SRUPB_JOIN_OBSERVED) {
			return drop(d, SRUPB_R_NO_PENDING_JOIN, "the pending join is not observed");
		}
		if (is_join_outcome(m) && !srupb_pending_token_matches(j, tok_dg)) {
			return drop(d, SRUPB_R_NO_PENDING_JOIN,
			            "the token answers no pending join request of %" PRIx64, t->a);
		}
		if (m->type == SRUP_MSG_RESPONSE && m->status == SRUP_ST_JOIN_SUCCESS) {
			c->member_op = SRUPB_MEMBER_JOIN;
		}
		return SRUPB_V_PASS;
	}
	if (m->type == SRUP_MSG_JOIN_CMD) {
		/* Server-initiated join (spec §5.5): the device sends no answer, so only a server the
		 * policy trusts to command joins may make itself a member this way. */
		if (!srupb_policy_commands_joins(p, m->sender_id)) {
			return drop(d, SRUPB_R_NOT_ALLOWED,
			            "server is not trusted to command joins (policy join_command)");
		}
		if (m->device_id != t->a) {
			return drop(d, SRUPB_R_NOT_ALLOWED, "JOIN_CMD names device %" PRIx64 ", not %" PRIx64,
			            m->device_id, t->a);
		}
		c->member_op = SRUPB_MEMBER_JOIN;
		return SRUPB_V_PASS;
	}
	/* Everything else a server sends a device needs the device to have joined it. */
	if (srupb_store_member_find(ctx->store, t->a, m->sender_id, &member) != SRUP_OK) {
		return drop(d, SRUPB_R_INTERNAL_ERROR, "store: %s", srupb_store_strerror(ctx->store));
	}
	if (!member) {
		return drop(d, SRUPB_R_NOT_MEMBER, "%" PRIx64 " has not joined this server", t->a);
	}
	if (m->type == SRUP_MSG_TERMINATE_CMD) {
		c->member_op = SRUPB_MEMBER_LEAVE;
	} else if (m->type == SRUP_MSG_DEREGISTER_CMD) {
		c->member_op = SRUPB_MEMBER_LEAVE_ALL;
		c->revoke = true;
	}
	return SRUPB_V_PASS;
}

/* The same signed bytes as the channel's last accepted message: an MQTT retransmission is let
 * through once; anything else is a replay. */
static enum srupb_verdict resend_check(struct srupb_ctx *ctx, const struct pub *pb,
                                       const uint8_t digest[32], struct decision *d)
{
	static const char *const why[] = {
	        [SRUPB_RESEND_USED] = "it was already let through once as a retransmission",
	        [SRUPB_RESEND_OTHER_CONNECTION] = "another connection, not a resumed session",
	        [SRUPB_RESEND_UNKNOWN] = "the broker no longer remembers who published it",
	};
	enum srupb_resend_answer a;

	if (pb->is_will) {
		return drop(d, SRUPB_R_REPLAY, "a Will carrying an already accepted message");
	}
	if (pb->qos == 0) {
		return drop(d, SRUPB_R_REPLAY, "the same message again at QoS 0 (no retransmission)");
	}
	a = srupb_resend_take(ctx->resend, digest, pb->conn != NULL ? pb->conn->serial : 0,
	                      pb->client != NULL && !mosquitto_client_clean_session(pb->client));
	if (a != SRUPB_RESEND_OK) {
		return drop(d, SRUPB_R_REPLAY, "the same message again, not a retransmission: %s", why[a]);
	}
	d->verdict = SRUPB_V_RETRANSMIT;
	d->reason = SRUPB_R_NONE;
	snprintf(d->detail, sizeof d->detail, "retransmission of the last accepted message");
	return SRUPB_V_RETRANSMIT;
}

/* After the commit: what the message changes in memory (pending joins, the ledger). */
static void apply_memory_effects(struct srupb_ctx *ctx, const struct srupb_topic *t,
                                 const struct srup_msg *m, const uint8_t tok_dg[32],
                                 const struct pub *pb, const struct srupb_commit *c)
{
	const struct srupb_policy *p = ctx->policy;
	int kind = join_kind(m->type);

	srupb_resend_note(ctx->resend, c->mark.digest, pb->conn != NULL ? pb->conn->serial : 0);
	if (t->kind == SRUPB_T_JOIN && kind >= 0) {
		enum srup_err e = srupb_pending_open(
		        ctx->pending, t->a, m->sender_id, (enum srupb_join_kind)kind, tok_dg,
		        p->pending_per_device, p->pending_max, p->pending_ttl, srupb_now());
		if (e != SRUP_OK) {
			srupb_log(MOSQ_LOG_ERR, "pending join of %" PRIx64 " not recorded: %s", m->sender_id,
			          srup_strerror(e));
		}
		return;
	}
	if (t->kind != SRUPB_T_DEVICE || m->sender_id == t->a) {
		return;
	}
	if (m->type == SRUP_MSG_HM_JOIN_RESP || m->type == SRUP_MSG_OBS_JOIN_RESP) {
		struct srupb_pending_join *j =
		        srupb_pending_find(ctx->pending, m->sender_id, t->a, srupb_now());
		if (j != NULL) {
			memcpy(j->ans_token, tok_dg, sizeof j->ans_token);
			j->has_answer = true;
		}
	} else if (is_join_outcome(m)) {
		srupb_pending_close(ctx->pending, m->sender_id, t->a);
	}
}

static enum srupb_verdict decide(struct srupb_ctx *ctx, const struct srupb_topic *t,
                                 const struct pub *pb, const uint8_t *payload, uint32_t len,
                                 struct srup_msg *m, struct srupb_event *ev, struct decision *d)
{
	const struct srupb_policy *p = ctx->policy;
	struct srup_diag diag;
	struct srupb_keyrec rec;
	struct srupb_mark mark;
	struct srupb_commit c;
	enum srupb_rule_kind rk;
	enum srup_err e;
	bool found = false;
	bool stale = false;
	bool cached;
	uint64_t sv;
	unsigned role = 0;
	const struct srup_key *key = NULL;
	struct srup_verifier *ver = NULL;
	char sender_text[SRUP_ID_TEXT_MAX];
	uint8_t tok_dg[32];

	/* 0. a client that proved no identity can never be the sender of anything */
	if (p->bind_identity && pb->identity == NULL) {
		return drop(d, SRUPB_R_NO_IDENTITY, "the client has no proven identity");
	}
	/* 1. topic */
	if (t->kind == SRUPB_T_PROTECTED) {
		return drop(
		        d, SRUPB_R_NOT_ALLOWED,
		        "topic is under %s/ but is neither %s/<device> nor %s/servers/<server>/<device>",
		        p->prefix, p->prefix, p->prefix);
	}
	if (pb->retain && p->refuse_retained) {
		return drop(d, SRUPB_R_RETAINED_REFUSED, "retained SRUP messages are refused by policy");
	}
	/* 2. size, strict parse */
	if (len == 0 || payload == NULL) {
		return drop(d, SRUPB_R_EMPTY_PAYLOAD, "empty payload");
	}
	if (len > p->max_payload) {
		return drop(d, SRUPB_R_TOO_LARGE, "%" PRIu32 " bytes, policy max_payload %zu", len,
		            p->max_payload);
	}
	memset(&diag, 0, sizeof diag);
	e = srup_msg_parse(payload, len, m, &diag);
	if (e != SRUP_OK) {
		return drop(d, parse_reason(e), "%s (field %s, offset %zu)", srup_strerror(e),
		            diag.field != NULL ? diag.field : "-", diag.offset);
	}
	ev->type = m->type;
	ev->has_sender = true;
	ev->sender = m->sender_id;
	ev->has_seq = true;
	ev->seq = m->sequence_id;
	if (srup_id_format(m->sender_id, sender_text, sizeof sender_text) != SRUP_OK) {
		return drop(d, SRUPB_R_INTERNAL_ERROR, "cannot format sender id");
	}
	/* 3. policy: type on this kind of topic, in this direction */
	if (t->kind == SRUPB_T_JOIN) {
		if (m->sender_id != t->b) {
			return drop(d, SRUPB_R_JOIN_TOPIC_MISMATCH,
			            "sender %s is not the device named in the join topic", sender_text);
		}
		rk = SRUPB_RULE_JOIN;
	} else {
		rk = m->sender_id == t->a ? SRUPB_RULE_OWN : SRUPB_RULE_PEER;
	}
	if (!any_role_allows(p, rk, m->type)) {
		return drop(
		        d, SRUPB_R_NOT_ALLOWED, "%s is not allowed on a %s", srup_msg_type_name(m->type),
		        rk == SRUPB_RULE_JOIN ? "join topic"
		                              : (rk == SRUPB_RULE_OWN ? "sender's own channel"
		                                                      : "device channel of another id"));
	}
	/* 4. key lookup: from the key cache while the store is unchanged since it vouched for the
	 * record, else from LMDB (one read transaction for steps 4-7, begun when first needed) */
	sv = srupb_store_version(ctx->store);
	cached = srupb_keystore_peek(ctx->keys, m->sender_id, sv, &role, &key, &ver);
	if (!cached) {
		e = srupb_store_key_find(ctx->store, m->sender_id, &rec, &found);
		if (e != SRUP_OK) {
			srupb_store_read_end(ctx->store);
			return drop(d, SRUPB_R_INTERNAL_ERROR, "store: %s", srupb_store_strerror(ctx->store));
		}
		if (!found) {
			srupb_store_read_end(ctx->store);
			return drop(d, SRUPB_R_UNKNOWN_SENDER, "no key for %s", sender_text);
		}
		if (rec.status != SRUPB_KEY_ACTIVE) {
			srupb_store_read_end(ctx->store);
			/* The revoked device's own connection goes too (after this callback). */
			if (pb->identity != NULL && strcmp(pb->identity, sender_text) == 0) {
				d->kick_publisher = true;
			}
			return drop(d, SRUPB_R_REVOKED_SENDER, "key of %s is revoked", sender_text);
		}
		role = rec.role;
	}
	if (!srupb_policy_allows(p, rk, role, m->type)) {
		srupb_store_read_end(ctx->store);
		return drop(d, SRUPB_R_NOT_ALLOWED, "role %s may not send %s there", srupb_role_name(role),
		            srup_msg_type_name(m->type));
	}
	/* 5. identity binding */
	if (p->bind_identity && (pb->identity == NULL || strcmp(pb->identity, sender_text) != 0)) {
		srupb_store_read_end(ctx->store);
		return drop(d, SRUPB_R_IDENTITY_MISMATCH, "proven identity (%s) is not the sender id %s",
		            p->identity == SRUPB_ID_CERTIFICATE
		                    ? "certificate CN"
		                    : (p->identity == SRUPB_ID_USERNAME ? "username" : "client id"),
		            sender_text);
	}
	/* 6. trust rules: the channel's target, membership, pending joins (the token's digest only
	 * for the messages that open or answer a join) */
	memset(&c, 0, sizeof c);
	memset(tok_dg, 0, sizeof tok_dg);
	if ((join_kind(m->type) >= 0 || is_join_outcome(m) || m->type == SRUP_MSG_HM_JOIN_RESP ||
	     m->type == SRUP_MSG_OBS_JOIN_RESP) &&
	    !srupb_sha256(ctx, m->token.p, m->token.len, tok_dg)) {
		srupb_store_read_end(ctx->store);
		return drop(d, SRUPB_R_INTERNAL_ERROR, "SHA-256 failed");
	}
	if (trust_check(ctx, t, rk, role, sv, m, tok_dg, &c, d) == SRUPB_V_DROP) {
		srupb_store_read_end(ctx->store);
		return SRUPB_V_DROP;
	}
	/* 7. replay pre-check: no signature is spent on a replay */
	c.sender = m->sender_id;
	c.chan.kind = t->kind == SRUPB_T_JOIN ? SRUPB_CHAN_JOIN : SRUPB_CHAN_DEVICE;
	c.chan.a = t->a;
	c.chan.b = t->b;
	c.mark.seq = m->sequence_id;
	/* Index only what could be accepted on another channel too: a message on the sender's
	 * own channel whose (role, type) the policy allows nowhere else cannot be replayed
	 * elsewhere (that would be not_allowed), so it costs no index write. */
	if (rk != SRUPB_RULE_OWN || srupb_policy_allows(p, SRUPB_RULE_PEER, role, m->type) ||
	    srupb_policy_allows(p, SRUPB_RULE_JOIN, role, m->type)) {
		c.seen_max = p->seen_window[role < SRUPB_ROLE__COUNT ? role : SRUPB_ROLE_NONE];
	}
	if (!srupb_sha256(ctx, payload, len, c.mark.digest) ||
	    !client_digest(ctx, pb->client_id, mark.digest)) {
		srupb_store_read_end(ctx->store);
		return drop(d, SRUPB_R_INTERNAL_ERROR, "SHA-256 failed");
	}
	memcpy(c.mark.client, mark.digest, sizeof c.mark.client);
	e = srupb_store_mark_find(ctx->store, m->sender_id, &c.chan, &mark, &found);
	if (e != SRUP_OK) {
		srupb_store_read_end(ctx->store);
		return drop(d, SRUPB_R_INTERNAL_ERROR, "store: %s", srupb_store_strerror(ctx->store));
	}
	if (found && m->sequence_id <= mark.seq) {
		srupb_store_read_end(ctx->store);
		if (m->sequence_id == mark.seq &&
		    CRYPTO_memcmp(mark.digest, c.mark.digest, sizeof mark.digest) == 0 &&
		    CRYPTO_memcmp(mark.client, c.mark.client, sizeof mark.client) == 0) {
			/* The bytes were verified when first accepted. */
			return resend_check(ctx, pb, c.mark.digest, d);
		}
		return drop(d, SRUPB_R_REPLAY, "sequence %" PRIu64 " not above %" PRIu64, m->sequence_id,
		            mark.seq);
	}
	e = srupb_store_seen_find(ctx->store, c.mark.digest, &found);
	if (e != SRUP_OK || found) {
		srupb_store_read_end(ctx->store);
		if (e != SRUP_OK) {
			return drop(d, SRUPB_R_INTERNAL_ERROR, "store: %s", srupb_store_strerror(ctx->store));
		}
		return drop(d, SRUPB_R_REPLAY,
		            "the same signed message was already accepted on another channel");
	}
	e = srupb_store_seen_room(ctx->store, m->sender_id, c.seen_max, &found);
	if (e != SRUP_OK || !found) {
		srupb_store_read_end(ctx->store);
		return drop(d, e != SRUP_OK ? SRUPB_R_INTERNAL_ERROR : SRUPB_R_SEEN_INDEX_FULL,
		            "no room in the seen index for an entry of %s", sender_text);
	}
	/* 8. signature, with a cached parsed key */
	if (!cached) {
		e = srupb_keystore_get(ctx->keys, rec.id, rec.generation, rec.pem, rec.pem_len, &key, &ver);
		if (e == SRUP_OK) {
			srupb_keystore_vouch(ctx->keys, rec.id, sv, role);
		}
	}
	srupb_store_read_end(ctx->store);
	if (e != SRUP_OK) {
		return drop(d, SRUPB_R_BAD_KEY, "stored key of %s is unusable: %s", sender_text,
		            srup_strerror(e));
	}
	if (srup_key_bits(key) > p->max_key_bits) {
		return drop(d, SRUPB_R_BAD_KEY, "stored key of %s has %u bits, policy max_key_bits %zu",
		            sender_text, srup_key_bits(key), p->max_key_bits);
	}
	e = m->signature.len == srup_key_size(key) ? srup_verifier_msg(ver, m, NULL) : SRUP_ERR_SIG;
	if (e == SRUP_ERR_SIG) {
		/* during a rotation's overlap the old key of the sender still signs for it */
		char note[96];
		e = retiring_verify(ctx, m, sender_text, note, sizeof note);
		if (e == SRUP_ERR_SIG) {
			if (m->signature.len != srup_key_size(key)) {
				return drop(d, SRUPB_R_BAD_SIGNATURE, "signature is %zu bytes, key needs %zu%s",
				            m->signature.len, srup_key_size(key), note);
			}
			return drop(d, SRUPB_R_BAD_SIGNATURE, "signature does not verify with the key of %s%s",
			            sender_text, note);
		}
	}
	if (e != SRUP_OK) {
		return drop(d, SRUPB_R_INTERNAL_ERROR, "verify: %s", srup_strerror(e));
	}
	/* 9. commit durably, then apply what the message means */
	e = srupb_store_commit(ctx->store, &c, &stale);
	if (e != SRUP_OK) {
		return drop(d, SRUPB_R_INTERNAL_ERROR, "commit: %s", srupb_store_strerror(ctx->store));
	}
	if (c.seen_full) {
		return drop(d, SRUPB_R_SEEN_INDEX_FULL, "no room in the seen index for an entry of %s",
		            sender_text);
	}
	if (stale) {
		return drop(d, SRUPB_R_REPLAY, "sequence no longer above the committed mark");
	}
	apply_memory_effects(ctx, t, m, tok_dg, pb, &c);
	if (c.revoke && c.n_removed < SRUPB_REMOVED_MAX) {
		/* the device itself is the addressee of a DEREGISTER_CMD */
		c.removed[c.n_removed++] = c.member_device;
	}
	if (c.n_removed > 0) {
		struct srupb_grace *g = &ctx->grace[ctx->grace_next];
		ctx->grace_next = (ctx->grace_next + 1) % SRUPB_GRACE_SLOTS;
		g->valid = true;
		g->device = c.member_device;
		memcpy(g->digest, c.mark.digest, sizeof g->digest);
		g->n = c.n_removed;
		memcpy(g->servers, c.removed, c.n_removed * sizeof c.removed[0]);
		g->until = srupb_now() + 60.0;
	}
	if (c.revoke) {
		srupb_keystore_drop(ctx->keys, c.member_device);
		srupb_kick_identity(ctx, c.member_device);
		srupb_log(MOSQ_LOG_NOTICE, "membership | device=%" PRIx64 " | deregistered, key revoked",
		          c.member_device);
	} else if (c.member_op == SRUPB_MEMBER_JOIN) {
		srupb_log(MOSQ_LOG_INFO, "membership | device=%" PRIx64 " | joined server=%" PRIx64,
		          c.member_device, c.member_server);
	} else if (c.member_op != SRUPB_MEMBER_NONE) {
		srupb_log(MOSQ_LOG_INFO, "membership | device=%" PRIx64 " | left", c.member_device);
	}
	d->verdict = SRUPB_V_ACCEPT;
	d->reason = SRUPB_R_NONE;
	d->detail[0] = '\0';
	return SRUPB_V_ACCEPT;
}

static void record(struct srupb_ctx *ctx, const struct decision *d, struct srupb_event *ev)
{
	bool want = d->verdict != SRUPB_V_ACCEPT || ctx->policy->audit_accepts;

	srupb_metrics_count(&ctx->metrics, d->verdict, d->reason);
	ev->verdict = d->verdict;
	ev->reason = d->reason;
	ev->detail = d->detail[0] != '\0' ? d->detail : NULL;
	if (want && srupb_audit_admit(ctx->audit, ev)) {
		srupb_audit_write(ctx->audit, ev);
		if (d->verdict == SRUPB_V_DROP && d->reason == SRUPB_R_INTERNAL_ERROR) {
			srupb_log(MOSQ_LOG_ERR, "internal error, message denied | %s", d->detail);
		}
		if (d->verdict == SRUPB_V_DROP) {
			char cl[4 * SRUPB_LOG_TRUNC + 8];
			char tp[4 * SRUPB_LOG_TRUNC + 8];
			char snd[SRUP_ID_TEXT_MAX] = "-";
			char seq[24] = "-";
			srupb_log_escape(ev->client_id, cl, sizeof cl);
			srupb_log_escape(ev->topic, tp, sizeof tp);
			if (ev->has_sender && srup_id_format(ev->sender, snd, sizeof snd) != SRUP_OK) {
				snprintf(snd, sizeof snd, "-");
			}
			if (ev->has_seq) {
				snprintf(seq, sizeof seq, "%" PRIu64, ev->seq);
			}
			srupb_log(MOSQ_LOG_WARNING,
			          "deny | client=%s | sender=%s | seq=%s | reason=%s | topic=%s", cl, snd, seq,
			          srupb_reason_name(d->reason), tp);
		}
	}
	ctx->decisions++;
	if (!ctx->have_tick && ctx->decisions % 100 == 0) {
		/* no TICK (per_listener_settings true): the once-a-second work rides on messages */
		double now = srupb_now();
		srupb_metrics_publish(&ctx->metrics);
		if (now - ctx->last_second >= 1.0) {
			ctx->last_second = now;
			srupb_store_writeback(ctx->store);
			srupb_metrics_gauges(ctx);
		}
	}
}

int srupb_verify_publish(struct srupb_ctx *ctx, struct mosquitto *client, const char *topic,
                         const void *payload, uint32_t payloadlen, int qos, bool retain,
                         bool from_message)
{
	struct srupb_topic t;
	struct srupb_event ev;
	struct decision d;
	struct srup_msg m;
	struct pub pb;
	char idbuf[SRUPB_IDENTITY_MAX];
	char fp[65];
	int result;

	srupb_policy_classify(ctx->policy, topic, &t);
	switch (t.kind) {
		case SRUPB_T_OTHER:
			return (ctx->policy->other_defer && !from_message) ? MOSQ_ERR_PLUGIN_DEFER
			                                                   : MOSQ_ERR_SUCCESS;
		case SRUPB_T_CONTROL: {
			/* Only an admin identity may reach the control topic; it never reaches MESSAGE. */
			uint64_t id = 0;
			const char *identity = srupb_identity(ctx, client, idbuf, sizeof idbuf);
			if (srupb_identity_id(identity, &id) && srupb_policy_is_admin(ctx->policy, id)) {
				return MOSQ_ERR_SUCCESS;
			}
			srupb_control_refused(ctx, client, identity);
			return MOSQ_ERR_ACL_DENIED;
		}
		case SRUPB_T_CONTROL_RESP:
			return MOSQ_ERR_ACL_DENIED;
		case SRUPB_T_DEVICE:
		case SRUPB_T_JOIN:
		case SRUPB_T_PROTECTED:
		default:
			break;
	}
	/* The WRITE check and the MESSAGE event of one publish: answer MESSAGE from the slot. */
	if (from_message && ctx->slot.valid && ctx->slot.client == client &&
	    ctx->slot.payload == payload && ctx->slot.payloadlen == payloadlen &&
	    ctx->slot.retain == retain) {
		ctx->slot.valid = false;
		return ctx->slot.result;
	}
	if (from_message && !ctx->have_tick && ctx->n_kicks > 0) {
		srupb_kick_run_except(ctx, client);
	}
	memset(&pb, 0, sizeof pb);
	pb.client = client;
	pb.client_id = client != NULL ? mosquitto_client_id(client) : NULL;
	pb.identity = srupb_identity(ctx, client, idbuf, sizeof idbuf);
	pb.qos = qos;
	pb.retain = retain;
	pb.from_message = from_message;
	/* Publishers are learnt too (a revoked key's connection that only publishes is closed at
	 * the next reload); a WRITE after the client's DISCONNECT is its Will. */
	pb.conn = srupb_clients_seen(ctx, client, !from_message, &pb.is_will);
	memset(&ev, 0, sizeof ev);
	ev.client_id = pb.client_id;
	ev.identity = pb.identity;
	ev.topic = topic;
	ev.type = -1;
	ev.conn = client;
	srupb_clients_peer(ctx, client, fp, &ev.address, &ev.cert_sha256);
	memset(&d, 0, sizeof d);
	(void)decide(ctx, &t, &pb, payload, payloadlen, &m, &ev, &d);
	if (d.verdict == SRUPB_V_DROP && d.reason == SRUPB_R_BAD_SIGNATURE && !pb.is_will) {
		/* Forgeries cost a signature check each: a connection gets a few, then it goes. */
		unsigned limit = ctx->policy->bad_signatures;
		unsigned n = pb.conn != NULL ? ++pb.conn->bad_sigs : limit;
		if (limit > 0 && n >= limit) {
			d.kick_publisher = true;
			size_t dl = strlen(d.detail);
			snprintf(d.detail + dl, sizeof d.detail - dl,
			         "; %u bad signatures on this connection: disconnecting it", n);
		}
	}
	record(ctx, &d, &ev);
	if (d.verdict == SRUPB_V_DROP && pb.client_id != NULL && !pb.is_will &&
	    (d.kick_publisher || ctx->policy->disconnect_on_violation)) {
		srupb_kick_queue(ctx, pb.client_id, false);
	}
	result = d.verdict == SRUPB_V_DROP ? MOSQ_ERR_ACL_DENIED : MOSQ_ERR_SUCCESS;
	if (!from_message) {
		/* Also after what looked like a Will: should it be a live connection in a context
		 * the broker reused, its MESSAGE event gets this same answer, not a second decision. */
		ctx->slot.valid = true;
		ctx->slot.client = client;
		ctx->slot.payload = payload;
		ctx->slot.payloadlen = payloadlen;
		ctx->slot.retain = retain;
		ctx->slot.result = result;
	} else {
		ctx->slot.valid = false;
	}
	return result;
}
