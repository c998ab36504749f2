/* SPDX-License-Identifier: MIT
 * stubs.c - test doubles for the Mosquitto broker API used by the plugin (unit tests only).
 * Records what the plugin asked of the broker; implements nothing of MQTT. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>
#include <mqtt_protocol.h>

#include "stubs.h"

struct mqtt5__property {
	int id;
	char *s;
	void *b;
	uint16_t len;
	struct mqtt5__property *next;
};

int (*stub_cb[STUB_EVENTS])(int, void *, void *);
void *stub_userdata[STUB_EVENTS];
int stub_kicks;
char stub_last_kick[256];
int stub_publishes;
char stub_last_topic[256];
char stub_last_payload[512];
unsigned char stub_last_corr[64];
size_t stub_last_corr_len;
char stub_last_log[1024];
int stub_warnings;
int stub_errors;
int stub_fail_register_at;
static int register_calls;

void stub_reset(void)
{
	memset(stub_cb, 0, sizeof stub_cb);
	memset(stub_userdata, 0, sizeof stub_userdata);
	stub_kicks = 0;
	stub_last_kick[0] = '\0';
	stub_publishes = 0;
	stub_last_topic[0] = '\0';
	stub_last_payload[0] = '\0';
	stub_last_log[0] = '\0';
	stub_warnings = 0;
	stub_errors = 0;
	stub_fail_register_at = 0;
	register_calls = 0;
}

void mosquitto_log_printf(int level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(stub_last_log, sizeof stub_last_log, fmt, ap);
	va_end(ap);
	if (level == MOSQ_LOG_WARNING) {
		stub_warnings++;
	}
	if (level == MOSQ_LOG_ERR) {
		stub_errors++;
		if (!stub_quiet) {
			fprintf(stderr, "stub ERR: %s\n", stub_last_log);
		}
	}
}

const char *mosquitto_client_id(const struct mosquitto *client)
{
	return client->id;
}

const char *mosquitto_client_username(const struct mosquitto *client)
{
	return client->username;
}

bool mosquitto_client_clean_session(const struct mosquitto *client)
{
	return !client->resumed;
}

const char *mosquitto_client_address(const struct mosquitto *client)
{
	(void)client;
	return "127.0.0.1"; /* the broker's string for an IPv4 loopback peer */
}

void *mosquitto_client_certificate(const struct mosquitto *client)
{
	/* As the broker: a new reference the caller frees with X509_free. */
	if (client->cert == NULL || X509_up_ref(client->cert) != 1) {
		return NULL;
	}
	return client->cert;
}

int mosquitto_kick_client_by_clientid(const char *clientid, bool with_will)
{
	(void)with_will;
	stub_kicks++;
	snprintf(stub_last_kick, sizeof stub_last_kick, "%s", clientid != NULL ? clientid : "");
	if (stub_kick_hook != NULL) {
		stub_kick_hook(clientid, false);
	}
	return MOSQ_ERR_SUCCESS;
}

int mosquitto_kick_client_by_username(const char *username, bool with_will)
{
	(void)with_will;
	stub_kicks++;
	snprintf(stub_last_kick, sizeof stub_last_kick, "%s", username != NULL ? username : "");
	if (stub_kick_hook != NULL) {
		stub_kick_hook(username, true);
	}
	return MOSQ_ERR_SUCCESS;
}

int mosquitto_broker_publish_copy(const char *clientid, const char *topic, int payloadlen,
                                  const void *payload, int qos, bool retain,
                                  mosquitto_property *properties)
{
	(void)clientid;
	(void)qos;
	(void)retain;
	stub_last_corr_len = 0;
	for (const struct mqtt5__property *p = properties; p != NULL; p = p->next) {
		if (p->id == MQTT_PROP_CORRELATION_DATA && p->len <= sizeof stub_last_corr) {
			memcpy(stub_last_corr, p->b, p->len);
			stub_last_corr_len = p->len;
		}
	}
	mosquitto_property_free_all(&properties);
	stub_publishes++;
	snprintf(stub_last_topic, sizeof stub_last_topic, "%s", topic);
	size_t n = payloadlen > 0 ? (size_t)payloadlen : 0;
	if (n >= sizeof stub_last_payload) {
		n = sizeof stub_last_payload - 1;
	}
	memcpy(stub_last_payload, payload, n);
	stub_last_payload[n] = '\0';
	return MOSQ_ERR_SUCCESS;
}

int mosquitto_callback_register(mosquitto_plugin_id_t *identifier, int event,
                                MOSQ_FUNC_generic_callback cb_func, const void *event_data,
                                void *userdata)
{
	(void)identifier;
	(void)event_data;
	register_calls++;
	if (stub_fail_register_at > 0 && register_calls == stub_fail_register_at) {
		return MOSQ_ERR_ALREADY_EXISTS;
	}
	if (event >= 0 && event < STUB_EVENTS) {
		stub_cb[event] = cb_func;
		stub_userdata[event] = userdata;
	}
	return MOSQ_ERR_SUCCESS;
}

int mosquitto_callback_unregister(mosquitto_plugin_id_t *identifier, int event,
                                  MOSQ_FUNC_generic_callback cb_func, const void *event_data)
{
	(void)identifier;
	(void)cb_func;
	(void)event_data;
	if (event >= 0 && event < STUB_EVENTS) {
		stub_cb[event] = NULL;
	}
	return MOSQ_ERR_SUCCESS;
}

/* MQTT v5 properties: a plain list, enough for the control topic's response topic and
 * correlation data. */
int stub_add_property(mosquitto_property **list, int id, const char *s, const void *b, uint16_t len)
{
	struct mqtt5__property *p = calloc(1, sizeof *p);
	if (p == NULL) {
		return MOSQ_ERR_NOMEM;
	}
	p->id = id;
	p->s = s != NULL ? strdup(s) : NULL;
	p->b = len > 0 ? malloc(len) : NULL;
	if (p->b != NULL) {
		memcpy(p->b, b, len);
	}
	p->len = len;
	p->next = *list;
	*list = p;
	return MOSQ_ERR_SUCCESS;
}

int mosquitto_property_add_binary(mosquitto_property **proplist, int identifier, const void *value,
                                  uint16_t len)
{
	return stub_add_property(proplist, identifier, NULL, value, len);
}

const mosquitto_property *mosquitto_property_read_string(const mosquitto_property *proplist,
                                                         int identifier, char **value,
                                                         bool skip_first)
{
	(void)skip_first;
	for (const struct mqtt5__property *p = proplist; p != NULL; p = p->next) {
		if (p->id == identifier && p->s != NULL) {
			*value = strdup(p->s);
			return p;
		}
	}
	return NULL;
}

const mosquitto_property *mosquitto_property_read_binary(const mosquitto_property *proplist,
                                                         int identifier, void **value,
                                                         uint16_t *len, bool skip_first)
{
	(void)skip_first;
	for (const struct mqtt5__property *p = proplist; p != NULL; p = p->next) {
		if (p->id == identifier && p->s == NULL) {
			*value = malloc(p->len > 0 ? p->len : 1);
			if (*value != NULL && p->len > 0) {
				memcpy(*value, p->b, p->len);
			}
			*len = p->len;
			return p;
		}
	}
	return NULL;
}

void mosquitto_property_free_all(mosquitto_property **property)
{
	struct mqtt5__property *p = *property;
	while (p != NULL) {
		struct mqtt5__property *n = p->next;
		free(p->s);
		free(p->b);
		free(p);
		p = n;
	}
	*property = NULL;
}

void mosquitto_free(void *mem)
{
	free(mem);
}

void *stub_cn_cert(const char *cn)
{
	X509 *x = X509_new();
	if (x == NULL || X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
	                                            (const unsigned char *)cn, -1, -1, 0) != 1) {
		X509_free(x);
		return NULL;
	}
	return x;
}

/* ---- additions for tests/fuzz/fuzz_pipeline.c (keep this block separate) ---- */

void (*stub_kick_hook)(const char *name, bool by_username);
bool stub_quiet;
