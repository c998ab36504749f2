/* SPDX-License-Identifier: MIT
 * control.c - reload (SIGHUP or admin command) and the admin control topic $CONTROL/srup/v1.
 * A command is one JSON object (parsed in control_cmd.c, run in control_exec.c); the answer
 * {"command","result","detail","data","correlation"} is published on the request's MQTT v5
 * response topic when it is $CONTROL/srup/v1/response or below it, else there (readable by
 * admins only), with the request's correlation data. Every command and every refusal is
 * audited and counted. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>
#include <mqtt_protocol.h>

#include "srupb.h"

#define CONTROL_RESP_TOPIC "$CONTROL/srup/v1/response"

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
	srupb_audit_apply_policy(ctx->audit, np);
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

/* Where the answer goes: the request's MQTT v5 response topic if it is the default response
 * topic or below it (only admins read those), else the default topic. */
struct reply {
	char *topic; /* from the broker (mosquitto_free), or NULL: the default topic */
	bool topic_refused;
	void *corr; /* correlation data from the broker (mosquitto_free), or NULL */
	uint16_t corr_len;
};

static bool response_topic_ok(const char *t)
{
	size_t n = sizeof CONTROL_RESP_TOPIC - 1;
	if (strncmp(t, CONTROL_RESP_TOPIC, n) != 0 || (t[n] != '\0' && t[n] != '/')) {
		return false;
	}
	/* a topic name, not a filter */
	return strchr(t, '+') == NULL && strchr(t, '#') == NULL;
}

static void reply_read(const struct mosquitto_evt_control *ed, struct reply *r)
{
	char *topic = NULL;
	void *corr = NULL;
	uint16_t corr_len = 0;

	memset(r, 0, sizeof *r);
	if (ed->properties == NULL) {
		return;
	}
	if (mosquitto_property_read_binary(ed->properties, MQTT_PROP_CORRELATION_DATA, &corr, &corr_len,
	                                   false) != NULL) {
		r->corr = corr;
		r->corr_len = corr_len;
	}
	if (mosquitto_property_read_string(ed->properties, MQTT_PROP_RESPONSE_TOPIC, &topic, false) !=
	            NULL &&
	    topic != NULL) {
		if (response_topic_ok(topic)) {
			r->topic = topic;
		} else {
			r->topic_refused = true;
			mosquitto_free(topic);
		}
	}
}

static void reply_free(struct reply *r)
{
	mosquitto_free(r->topic);
	mosquitto_free(r->corr);
	memset(r, 0, sizeof *r);
}

/* {"command":...,"result":"ok"|"error","detail":...,"data":{...},"correlation":"<hex>"} on the
 * reply topic, with the correlation data as an MQTT v5 property too. Takes data (may be NULL). */
static void respond(const struct reply *r, const char *command, bool ok, const char *detail,
                    json_t *data)
{
	json_t *o = json_object();
	char *text = NULL;
	char *hex = NULL;
	mosquitto_property *props = NULL;
	const char *topic = r->topic != NULL ? r->topic : CONTROL_RESP_TOPIC;

	if (o == NULL) {
		json_decref(data);
		return;
	}
	if (data != NULL && json_object_set_new(o, "data", data) != 0) {
		goto out;
	}
	if (json_object_set_new(o, "command", command != NULL ? json_string(command) : json_null()) !=
	            0 ||
	    json_object_set_new(o, "result", json_string(ok ? "ok" : "error")) != 0 ||
	    json_object_set_new(o, "detail", json_string(detail)) != 0) {
		goto out;
	}
	if (r->corr != NULL && r->corr_len > 0) {
		size_t hex_cap = 2 * (size_t)r->corr_len + 1;
		hex = malloc(hex_cap);
		if (hex == NULL || srup_hex_encode(r->corr, r->corr_len, hex, hex_cap) != SRUP_OK ||
		    json_object_set_new(o, "correlation", json_string(hex)) != 0 ||
		    mosquitto_property_add_binary(&props, MQTT_PROP_CORRELATION_DATA, r->corr,
		                                  r->corr_len) != MOSQ_ERR_SUCCESS) {
			goto out;
		}
	}
	text = json_dumps(o, JSON_COMPACT);
	if (text == NULL || strlen(text) > INT32_MAX) {
		goto out;
	}
	if (mosquitto_broker_publish_copy(NULL, topic, (int)strlen(text), text, 0, false, props) ==
	    MOSQ_ERR_SUCCESS) {
		props = NULL; /* the broker owns them now */
	}
out:
	mosquitto_property_free_all(&props);
	free(hex);
	free(text);
	json_decref(o);
}

void srupb_control_refused(struct srupb_ctx *ctx, struct mosquitto *client, const char *identity)
{
	struct srupb_admin_event ae;
	char esc[4 * SRUPB_LOG_TRUNC + 8];
	char fp[65];

	memset(&ae, 0, sizeof ae);
	ae.reason = SRUPB_AR_NOT_ADMIN;
	ae.client_id = client != NULL ? mosquitto_client_id(client) : NULL;
	ae.identity = identity;
	ae.ok = false;
	ae.detail = "not an admin: publish to $CONTROL/srup/v1 refused";
	ae.conn = client;
	srupb_clients_peer(ctx, client, fp, &ae.address, &ae.cert_sha256);
	srupb_metrics_admin(&ctx->metrics, false);
	if (srupb_audit_admin(ctx->audit, &ae)) {
		/* the broker log follows the audit log's rate limit */
		srupb_log_escape(identity, esc, sizeof esc);
		srupb_log(MOSQ_LOG_WARNING, "control | identity=%s | refused: not an admin", esc);
	}
}

int srupb_control_cb(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_control *ed = event_data;
	struct srupb_ctx *ctx = userdata;
	char idbuf[SRUPB_IDENTITY_MAX];
	const char *ident = srupb_identity(ctx, ed->client, idbuf, sizeof idbuf);
	char esc[4 * SRUPB_LOG_TRUNC + 8];
	struct srupb_admin_event ae;
	char fp[65];
	struct srupb_command *cmd;
	struct reply r;
	const char *perr;
	uint64_t id = 0;
	json_t *data = NULL;
	char detail[256];

	(void)event;
	memset(&ae, 0, sizeof ae);
	ae.client_id = ed->client != NULL ? mosquitto_client_id(ed->client) : NULL;
	ae.identity = ident;
	ae.conn = ed->client;
	srupb_clients_peer(ctx, ed->client, fp, &ae.address, &ae.cert_sha256);
	if (!srupb_identity_id(ident, &id) || !srupb_policy_is_admin(ctx->policy, id)) {
		/* The WRITE check refuses non-admins first; this is the second line of defence. The
		 * broker acknowledges $CONTROL publishes as success whatever we return. */
		srupb_control_refused(ctx, ed->client, ident);
		return MOSQ_ERR_SUCCESS;
	}
	cmd = malloc(sizeof *cmd); /* holds a PEM of up to SRUPB_CONTROL_MAX bytes */
	if (cmd == NULL) {
		return MOSQ_ERR_NOMEM;
	}
	srupb_log_escape(ident, esc, sizeof esc);
	reply_read(ed, &r);
	perr = srupb_control_parse(ed->payload, ed->payloadlen, cmd);
	ae.command = srupb_command_name(cmd->cmd);
	if (r.topic_refused) {
		perr = "response topic refused: only $CONTROL/srup/v1/response and below";
	}
	if (perr != NULL) {
		ae.reason = SRUPB_AR_BAD_COMMAND;
		ae.ok = false;
		ae.detail = perr;
		srupb_log(MOSQ_LOG_WARNING, "control | identity=%s | refused: %s", esc, perr);
	} else {
		if (cmd->has_id) {
			ae.has_target = true;
			ae.target = cmd->id;
		}
		ae.ok = srupb_control_exec(ctx, cmd, &data, detail, sizeof detail);
		ae.detail = detail;
		srupb_log(ae.ok ? MOSQ_LOG_NOTICE : MOSQ_LOG_WARNING, "control | identity=%s | %s | %s",
		          esc, ae.command, detail);
	}
	srupb_metrics_admin(&ctx->metrics, ae.ok);
	(void)srupb_audit_admin(ctx->audit, &ae);
	respond(&r, ae.command, ae.ok, ae.detail, data);
	reply_free(&r);
	free(cmd);
	return MOSQ_ERR_SUCCESS;
}
