/* SPDX-License-Identifier: MIT
 * plugin.c - entry points of srup_plugin.so (Mosquitto 2.0 plugin API v5): version, init,
 * cleanup, callback (un)registration, TICK and DISCONNECT housekeeping, and srupb_log.
 * The verdicts themselves live in verify.c and acl.c. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#include "srupb.h"

#define CONTROL_TOPIC "$CONTROL/srup/v1"

SRUPB_EXPORT int mosquitto_plugin_version(int supported_version_count,
                                          const int *supported_versions);
SRUPB_EXPORT int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **user_data,
                                       struct mosquitto_opt *opts, int opt_count);
SRUPB_EXPORT int mosquitto_plugin_cleanup(void *user_data, struct mosquitto_opt *opts,
                                          int opt_count);

void srupb_log(int level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	mosquitto_log_printf(level, "srup: %s", msg);
}

void srupb_log_escape(const char *s, char *out, size_t cap)
{
	size_t o = 0;
	size_t chars = 0;
	if (cap == 0) {
		return;
	}
	if (s == NULL) {
		snprintf(out, cap, "-");
		return;
	}
	for (const unsigned char *c = (const unsigned char *)s; *c != '\0'; c++) {
		if (chars == SRUPB_LOG_TRUNC) {
			if (o + 4 <= cap) {
				memcpy(out + o, "...", 3);
				o += 3;
			}
			break;
		}
		chars++;
		if (*c < 0x20u || *c >= 0x7fu || *c == '|' || *c == '\\') {
			if (o + 5 > cap) {
				break;
			}
			snprintf(out + o, 5, "\\x%02x", (unsigned)*c);
			o += 4;
		} else {
			if (o + 2 > cap) {
				break;
			}
			out[o++] = (char)*c;
		}
	}
	out[o] = '\0';
}

/* --- callbacks --- */

static int on_message(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_message *ed = event_data;
	(void)event;
	/* MESSAGE may return only SUCCESS or ACL_DENIED (anything else disconnects in 2.0.11). */
	int rc = srupb_verify_publish(userdata, ed->client, ed->topic, ed->payload, ed->payloadlen,
	                              ed->qos, ed->retain, true);
	return rc == MOSQ_ERR_SUCCESS ? MOSQ_ERR_SUCCESS : MOSQ_ERR_ACL_DENIED;
}

static int on_reload(int event, void *event_data, void *userdata)
{
	(void)event;
	(void)event_data;
	(void)srupb_reload(userdata);
	return MOSQ_ERR_SUCCESS;
}

static int on_tick(int event, void *event_data, void *userdata)
{
	struct srupb_ctx *ctx = userdata;
	double now = srupb_now();
	(void)event;
	(void)event_data;
	ctx->have_tick = true;
	if (ctx->n_kicks > 0) {
		srupb_kick_run(ctx);
	}
	if (now - ctx->last_second >= 1.0) {
		ctx->last_second = now;
		srupb_audit_flush_summaries(ctx->audit);
		srupb_audit_check_rotation(ctx->audit);
		srupb_store_writeback(ctx->store);
		srupb_metrics_gauges(ctx);
	}
	if (now - ctx->last_sweep >= 10.0) {
		ctx->last_sweep = now;
		srupb_pending_sweep(ctx->pending, now);
	}
	if (now - ctx->metrics.last_publish >= (double)ctx->policy->metrics_interval) {
		srupb_metrics_publish(&ctx->metrics);
	}
	return MOSQ_ERR_SUCCESS;
}

static int on_disconnect(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_disconnect *ed = event_data;
	struct srupb_ctx *ctx = userdata;
	(void)event;
	if (ctx->slot.valid && ctx->slot.client == ed->client) {
		ctx->slot.valid = false;
	}
	if (ed->client != NULL) {
		char esc[4 * SRUPB_LOG_TRUNC + 8];
		srupb_log_escape(mosquitto_client_id(ed->client), esc, sizeof esc);
		srupb_log(MOSQ_LOG_DEBUG, "disconnect | client=%s", esc);
	}
	srupb_clients_gone(ctx, ed->client);
	srupb_audit_conn_gone(ctx->audit, ed->client);
	return MOSQ_ERR_SUCCESS;
}

/* --- entry points --- */

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
	for (int i = 0; i < supported_version_count; i++) {
		if (supported_versions[i] == 5) {
			return 5;
		}
	}
	return -1;
}

struct reg {
	int event;
	MOSQ_FUNC_generic_callback cb;
	const void *data;
	const char *name;
};

static void ctx_free(struct srupb_ctx *ctx)
{
	if (ctx == NULL) {
		return;
	}
	srupb_clients_free(ctx->clients);
	srupb_pending_free(ctx->pending);
	srupb_resend_free(ctx->resend);
	EVP_MD_free(ctx->sha256);
	EVP_MD_CTX_free(ctx->md_ctx);
	free(ctx->last_client);
	srupb_audit_close(ctx->audit);
	srupb_keystore_free(ctx->keys);
	srupb_store_close(ctx->store);
	free(ctx->policy);
	for (size_t i = 0; i < ctx->n_kicks; i++) {
		free(ctx->kicks[i].name);
	}
	free(ctx->kicks);
	srupb_config_free(&ctx->cfg);
	free(ctx);
}

static void regs(struct reg out[6])
{
	out[0] = (struct reg){MOSQ_EVT_ACL_CHECK, srupb_acl_check, NULL, "ACL_CHECK"};
	out[1] = (struct reg){MOSQ_EVT_MESSAGE, on_message, NULL, "MESSAGE"};
	out[2] = (struct reg){MOSQ_EVT_RELOAD, on_reload, NULL, "RELOAD"};
	out[3] = (struct reg){MOSQ_EVT_TICK, on_tick, NULL, "TICK"};
	out[4] = (struct reg){MOSQ_EVT_DISCONNECT, on_disconnect, NULL, "DISCONNECT"};
	out[5] = (struct reg){MOSQ_EVT_CONTROL, srupb_control_cb, CONTROL_TOPIC, "CONTROL"};
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **user_data,
                          struct mosquitto_opt *opts, int opt_count)
{
	struct srupb_ctx *ctx;
	char err[512];
	struct reg r[6];
	size_t registered = 0;
	size_t nkeys = 0;
	size_t seen_used = 0;
	size_t seen_cap = 0;

	*user_data = NULL;
	ctx = calloc(1, sizeof *ctx);
	if (ctx == NULL) {
		srupb_log(MOSQ_LOG_ERR, "init | out of memory");
		return MOSQ_ERR_NOMEM;
	}
	ctx->pid = identifier;
	ctx->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	ctx->md_ctx = EVP_MD_CTX_new();
	if (ctx->sha256 == NULL || ctx->md_ctx == NULL) {
		srupb_log(MOSQ_LOG_ERR, "init | OpenSSL has no SHA256");
		EVP_MD_free(ctx->sha256);
		EVP_MD_CTX_free(ctx->md_ctx);
		free(ctx);
		return MOSQ_ERR_UNKNOWN;
	}
	if (srupb_config_parse(&ctx->cfg, opts, opt_count) != SRUP_OK) {
		EVP_MD_free(ctx->sha256);
		EVP_MD_CTX_free(ctx->md_ctx);
		free(ctx);
		return MOSQ_ERR_INVAL;
	}
	err[0] = '\0';
	if (srupb_policy_load(ctx->cfg.policy_path, &ctx->policy, err, sizeof err) != SRUP_OK) {
		srupb_log(MOSQ_LOG_ERR, "policy | %s", err);
		ctx_free(ctx);
		return MOSQ_ERR_INVAL;
	}
	if (srupb_store_open(ctx->cfg.store_dir, false, ctx->policy->durability, &ctx->store, err,
	                     sizeof err) != SRUP_OK) {
		srupb_log(MOSQ_LOG_ERR, "store | %s (plugin_opt_store)", err);
		ctx_free(ctx);
		return MOSQ_ERR_INVAL;
	}
	if (srupb_store_journal_open(ctx->store, SRUPB_JOURNAL_RECORDS) != SRUP_OK ||
	    srupb_store_seen_open(ctx->store, ctx->policy->seen_index) != SRUP_OK) {
		srupb_log(MOSQ_LOG_ERR, "store | %s (plugin_opt_store)", srupb_store_strerror(ctx->store));
		ctx_free(ctx);
		return MOSQ_ERR_INVAL;
	}
	ctx->keys = srupb_keystore_new(ctx->policy->key_cache);
	if (ctx->keys == NULL) {
		srupb_log(MOSQ_LOG_ERR, "init | out of memory");
		ctx_free(ctx);
		return MOSQ_ERR_NOMEM;
	}
	if (srupb_audit_open(ctx->cfg.audit_log, ctx->policy->audit_burst, ctx->policy->audit_rate,
	                     &ctx->audit, err, sizeof err) != SRUP_OK) {
		srupb_log(MOSQ_LOG_ERR, "audit | %s (plugin_opt_audit_log)", err);
		ctx_free(ctx);
		return MOSQ_ERR_INVAL;
	}
	srupb_audit_apply_policy(ctx->audit, ctx->policy);
	ctx->clients = srupb_clients_new();
	ctx->pending = srupb_pending_new();
	ctx->resend = srupb_resend_new(SRUPB_RESEND_SLOTS);
	if (ctx->clients == NULL || ctx->pending == NULL || ctx->resend == NULL) {
		srupb_log(MOSQ_LOG_ERR, "init | out of memory");
		ctx_free(ctx);
		return MOSQ_ERR_NOMEM;
	}
	srupb_metrics_init(&ctx->metrics);
	regs(r);
	for (registered = 0; registered < 6; registered++) {
		int rc = mosquitto_callback_register(identifier, r[registered].event, r[registered].cb,
		                                     r[registered].data, ctx);
		if (rc != MOSQ_ERR_SUCCESS) {
			srupb_log(MOSQ_LOG_ERR, "init | cannot register the %s callback (rc %d)%s",
			          r[registered].name, rc,
			          rc == MOSQ_ERR_ALREADY_EXISTS ? ": the plugin can only be loaded once" : "");
			for (size_t j = 0; j < registered; j++) {
				(void)mosquitto_callback_unregister(identifier, r[j].event, r[j].cb, r[j].data);
			}
			ctx_free(ctx);
			return rc;
		}
	}
	(void)srupb_store_key_count(ctx->store, &nkeys);
	srupb_store_seen_stats(ctx->store, &seen_used, &seen_cap);
	srupb_log(MOSQ_LOG_NOTICE, "loaded | store=%s | keys=%zu | policy=%s | audit=%s",
	          ctx->cfg.store_dir, nkeys,
	          ctx->cfg.policy_path != NULL ? ctx->cfg.policy_path : "(built-in)",
	          ctx->cfg.audit_log);
	srupb_log(MOSQ_LOG_INFO,
	          "config | prefix=%s | identity=%s | bind=%s | max_payload=%zu | retained=%s | "
	          "durability=%s | key_cache=%zu | seen_index=%zu (%zu of %zu in use) | "
	          "seen_window=server:%zu,device:%zu,observer:%zu",
	          ctx->policy->prefix,
	          ctx->policy->identity == SRUPB_ID_USERNAME ? "username" : "client_id",
	          ctx->policy->bind_identity ? "yes" : "no", ctx->policy->max_payload,
	          ctx->policy->refuse_retained ? "refuse" : "allow",
	          ctx->policy->durability == SRUPB_SYNC_FSYNC
	                  ? "fsync"
	                  : (ctx->policy->durability == SRUPB_SYNC_META
	                             ? "metasync"
	                             : (ctx->policy->durability == SRUPB_SYNC_MAP ? "map" : "os")),
	          ctx->policy->key_cache, ctx->policy->seen_index, seen_used, seen_cap,
	          ctx->policy->seen_window[SRUPB_ROLE_SERVER],
	          ctx->policy->seen_window[SRUPB_ROLE_DEVICE],
	          ctx->policy->seen_window[SRUPB_ROLE_OBSERVER]);
	*user_data = ctx;
	return MOSQ_ERR_SUCCESS;
}

int mosquitto_plugin_cleanup(void *user_data, struct mosquitto_opt *opts, int opt_count)
{
	struct srupb_ctx *ctx = user_data;
	struct reg r[6];
	(void)opts;
	(void)opt_count;
	if (ctx == NULL) {
		return MOSQ_ERR_SUCCESS;
	}
	regs(r);
	for (size_t i = 0; i < 6; i++) {
		(void)mosquitto_callback_unregister(ctx->pid, r[i].event, r[i].cb, r[i].data);
	}
	ctx_free(ctx);
	return MOSQ_ERR_SUCCESS;
}
