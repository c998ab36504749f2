/* SPDX-License-Identifier: MIT
 * options.c - plugin_opt_* lines of mosquitto.conf -> struct srupb_config.
 * Validates presence and form only (plugin_opt_store is required; the audit log defaults to
 * <store>/audit.jsonl); the policy and store are opened by plugin.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#include "srupb.h"

static enum srup_err set_once(char **slot, const char *key, const char *value)
{
	if (*slot != NULL) {
		srupb_log(MOSQ_LOG_ERR, "config | plugin_opt_%s given twice: give it once", key);
		return SRUP_ERR_INVAL;
	}
	if (value == NULL || value[0] == '\0') {
		srupb_log(MOSQ_LOG_ERR, "config | plugin_opt_%s has an empty value", key);
		return SRUP_ERR_INVAL;
	}
	*slot = strdup(value);
	if (*slot == NULL) {
		srupb_log(MOSQ_LOG_ERR, "config | out of memory");
		return SRUP_ERR_NOMEM;
	}
	return SRUP_OK;
}

enum srup_err srupb_config_parse(struct srupb_config *cfg, const struct mosquitto_opt *opts,
                                 int count)
{
	enum srup_err rc = SRUP_OK;

	memset(cfg, 0, sizeof *cfg);
	for (int i = 0; i < count && rc == SRUP_OK; i++) {
		const char *key = opts[i].key;
		const char *value = opts[i].value;
		if (key == NULL) {
			continue;
		}
		if (strcmp(key, "store") == 0) {
			rc = set_once(&cfg->store_dir, key, value);
		} else if (strcmp(key, "audit_log") == 0) {
			rc = set_once(&cfg->audit_log, key, value);
		} else if (strcmp(key, "policy") == 0) {
			rc = set_once(&cfg->policy_path, key, value);
		} else {
			srupb_log(MOSQ_LOG_ERR,
			          "config | unknown option plugin_opt_%s (known: store, audit_log, policy)",
			          key);
			rc = SRUP_ERR_INVAL;
		}
	}
	if (rc == SRUP_OK && cfg->store_dir == NULL) {
		srupb_log(MOSQ_LOG_ERR, "config | plugin_opt_store is required: the directory of the "
		                        "SRUP key and replay store");
		rc = SRUP_ERR_INVAL;
	}
	if (rc == SRUP_OK && cfg->audit_log == NULL) {
		/* Two lines of mosquitto.conf are enough: the audit log then lives in the store. */
		size_t n = strlen(cfg->store_dir) + sizeof "/audit.jsonl";
		cfg->audit_log = malloc(n);
		if (cfg->audit_log == NULL) {
			srupb_log(MOSQ_LOG_ERR, "config | out of memory");
			rc = SRUP_ERR_NOMEM;
		} else {
			snprintf(cfg->audit_log, n, "%s/audit.jsonl", cfg->store_dir);
		}
	}
	if (rc != SRUP_OK) {
		srupb_config_free(cfg);
	}
	return rc;
}

void srupb_config_free(struct srupb_config *cfg)
{
	if (cfg == NULL) {
		return;
	}
	free(cfg->store_dir);
	free(cfg->audit_log);
	free(cfg->policy_path);
	memset(cfg, 0, sizeof *cfg);
}
