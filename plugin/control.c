/* SPDX-License-Identifier: MIT
 * control.c - reload (SIGHUP or admin command) and the admin control topic $CONTROL/srup/v1.
 * Commands: {"command":"reload"}, {"command":"revoke","id":"<hex id>"}; the answer is published
 * on $CONTROL/srup/v1/response (readable by admins only). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#include "srupb.h"

#define CONTROL_RESP_TOPIC "$CONTROL/srup/v1/response"
#define CONTROL_MAX        4096

enum srup_err srupb_reload(struct srupb_ctx *ctx)
{
	struct srupb_policy *np = NULL;
	struct srupb_keystore *nks = NULL;
	char err[512];
	enum srup_err rc;
	size_t nkeys = 0;

	err[0] = '\0';
	rc = srupb_policy_load(ctx->cfg.policy_path, &np, err, sizeof err);
	if (rc != SRUP_OK) {
		srupb_log(MOSQ_LOG_ERR, "reload | policy refused, keeping the last good one | %s", err);
		return rc;
	}
	if (np->key_cache != ctx->policy->key_cache) {
		nks = srupb_keystore_new(np->key_cache);
		if (nks == NULL) {
			srupb_log(MOSQ_LOG_ERR, "reload | out of memory, keeping the last good policy");
			free(np);
			return SRUP_ERR_NOMEM;
		}
	}
	if (np->durability != ctx->policy->durability &&
	    srupb_store_set_sync(ctx->store, np->durability) != SRUP_OK) {
		/* Not a broken policy: keep the rest of it, and the durability in force. */
		srupb_log(MOSQ_LOG_WARNING, "reload | %s; durability unchanged",
		          srupb_store_strerror(ctx->store));
		np->durability = ctx->policy->durability;
	}
	if (np->seen_index != ctx->policy->seen_index) {
		/* The file's capacity is fixed while it is open; windows change at once. */
		srupb_log(MOSQ_LOG_WARNING,
		          "reload | seen_index %zu takes a restart: %zu records in effect until then",
		          np->seen_index, ctx->policy->seen_index);
		np->seen_index = ctx->policy->seen_index;
	}
	/* Swap in one step. */
	free(ctx->policy);
	ctx->policy = np;
	if (nks != NULL) {
		srupb_keystore_free(ctx->keys);
		ctx->keys = nks;
	} else {
		srupb_keystore_clear(ctx->keys);
	}
	ctx->slot.valid = false;
	srupb_audit_set_rate(ctx->audit, np->audit_burst, np->audit_rate);
	if (srupb_audit_reopen(ctx->audit, err, sizeof err) != SRUP_OK) {
		srupb_log(MOSQ_LOG_ERR, "reload | %s (still writing to the old file)", err);
	}
	/* Keys revoked in the store since: close their holders' connections (from TICK). */
	srupb_clients_kick_revoked(ctx);
	(void)srupb_store_key_count(ctx->store, &nkeys);
	srupb_log(MOSQ_LOG_NOTICE, "reload | policy=%s | keys=%zu | key cache dropped",
	          ctx->cfg.policy_path != NULL ? ctx->cfg.policy_path : "(built-in)", nkeys);
	srupb_metrics_publish(&ctx->metrics);
	return SRUP_OK;
}

/* The string value of "key" in a flat JSON object (no escapes in the value), into out. */
static bool json_string(const char *js, size_t len, const char *key, char *out, size_t cap)
{
	char pat[40];
	const char *p;
	const char *end = js + len;
	size_t n;

	snprintf(pat, sizeof pat, "\"%s\"", key);
	p = js;
	for (;;) {
		p = strstr(p, pat);
		if (p == NULL || p >= end) {
			return false;
		}
		p += strlen(pat);
		while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) {
			p++;
		}
		if (p < end && *p == ':') {
			break;
		}
	}
	p++;
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) {
		p++;
	}
	if (p >= end || *p != '"') {
		return false;
	}
	p++;
	n = 0;
	while (p + n < end && p[n] != '"' && p[n] != '\\') {
		n++;
	}
	if (p + n >= end || p[n] != '"' || n >= cap) {
		return false;
	}
	memcpy(out, p, n);
	out[n] = '\0';
	return true;
}

/* Revoke at once: store, key cache, and the live connection (kicked from TICK). */
static enum srup_err revoke_id(struct srupb_ctx *ctx, uint64_t id, bool *found)
{
	enum srup_err rc = srupb_store_key_revoke(ctx->store, id, found);
	if (rc != SRUP_OK) {
		srupb_log(MOSQ_LOG_ERR, "control | revoke failed: %s", srupb_store_strerror(ctx->store));
		return rc;
	}
	srupb_keystore_drop(ctx->keys, id);
	srupb_kick_identity(ctx, id);
	return SRUP_OK;
}

static void respond(const char *command, bool ok, const char *detail)
{
	char buf[512];
	int n = snprintf(buf, sizeof buf, "{\"command\":\"%s\",\"result\":\"%s\",\"detail\":\"%s\"}",
	                 command, ok ? "ok" : "error", detail);
	if (n > 0 && (size_t)n < sizeof buf) {
		(void)mosquitto_broker_publish_copy(NULL, CONTROL_RESP_TOPIC, n, buf, 0, false, NULL);
	}
}

int srupb_control_cb(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_control *ed = event_data;
	struct srupb_ctx *ctx = userdata;
	char idbuf[SRUPB_IDENTITY_MAX];
	const char *ident = srupb_identity(ctx, ed->client, idbuf, sizeof idbuf);
	char text[CONTROL_MAX + 1];
	char cmd[32];
	char idtext[40];
	char esc[4 * SRUPB_LOG_TRUNC + 8];
	uint64_t id = 0;

	(void)event;
	srupb_log_escape(ident, esc, sizeof esc);
	if (ident == NULL || srup_id_parse(ident, strlen(ident), &id) != SRUP_OK ||
	    !srupb_policy_is_admin(ctx->policy, id)) {
		srupb_log(MOSQ_LOG_WARNING, "control | identity=%s | refused: not an admin", esc);
		/* The broker acknowledges $CONTROL publishes as success whatever we return. */
		return MOSQ_ERR_SUCCESS;
	}
	if (ed->payload == NULL || ed->payloadlen == 0 || ed->payloadlen > CONTROL_MAX) {
		respond("?", false, "payload must be a JSON object of at most 4096 bytes");
		return MOSQ_ERR_SUCCESS;
	}
	memcpy(text, ed->payload, ed->payloadlen);
	text[ed->payloadlen] = '\0';
	if (!json_string(text, ed->payloadlen, "command", cmd, sizeof cmd)) {
		respond("?", false, "missing \\\"command\\\"");
		return MOSQ_ERR_SUCCESS;
	}
	if (strcmp(cmd, "reload") == 0) {
		srupb_log(MOSQ_LOG_NOTICE, "control | identity=%s | reload", esc);
		enum srup_err rc = srupb_reload(ctx);
		respond("reload", rc == SRUP_OK, rc == SRUP_OK ? "reloaded" : "policy refused, see log");
	} else if (strcmp(cmd, "revoke") == 0) {
		uint64_t rid = 0;
		bool found = false;
		if (!json_string(text, ed->payloadlen, "id", idtext, sizeof idtext) ||
		    srup_id_parse(idtext, strlen(idtext), &rid) != SRUP_OK) {
			respond("revoke", false, "missing or bad \\\"id\\\"");
			return MOSQ_ERR_SUCCESS;
		}
		if (revoke_id(ctx, rid, &found) != SRUP_OK) {
			respond("revoke", false, "store error, see log");
			return MOSQ_ERR_SUCCESS;
		}
		srupb_log(MOSQ_LOG_NOTICE, "control | identity=%s | revoke id=%" PRIx64 " | %s", esc, rid,
		          found ? "revoked" : "unknown id");
		respond("revoke", found, found ? "revoked" : "unknown id");
	} else {
		respond("?", false, "unknown command (reload, revoke)");
	}
	return MOSQ_ERR_SUCCESS;
}
