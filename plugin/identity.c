/* SPDX-License-Identifier: MIT
 * identity.c - a client's proven SRUP identity, per the policy's identity source: the CN of the
 * client certificate read from the TLS session (default), or a username the broker
 * authenticated. It never looks at anything a client says about itself in-band. */
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#include "srupb.h"

/* The one CN of cert as a NUL-free string in buf; false if there is none, more than one, it
 * holds a NUL, or it does not fit. */
static bool cert_cn(X509 *cert, char *buf, size_t cap)
{
	const X509_NAME *name = X509_get_subject_name(cert);
	unsigned char *utf8 = NULL;
	int len;
	int at;

	if (name == NULL) {
		return false;
	}
	at = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
	if (at < 0 || X509_NAME_get_index_by_NID(name, NID_commonName, at) >= 0) {
		return false; /* none, or ambiguous */
	}
	len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, at)));
	if (len <= 0 || (size_t)len >= cap || memchr(utf8, '\0', (size_t)len) != NULL) {
		OPENSSL_free(utf8);
		return false;
	}
	memcpy(buf, utf8, (size_t)len);
	buf[len] = '\0';
	OPENSSL_free(utf8);
	return true;
}

const char *srupb_identity(const struct srupb_ctx *ctx, struct mosquitto *client, char *buf,
                           size_t cap)
{
	if (client == NULL || cap == 0) {
		return NULL;
	}
	switch (ctx->policy->identity) {
		case SRUPB_ID_CERTIFICATE: {
			X509 *cert = mosquitto_client_certificate(client);
			bool ok;
			if (cert == NULL) {
				return NULL;
			}
			ok = cert_cn(cert, buf, cap);
			X509_free(cert);
			return ok ? buf : NULL;
		}
		case SRUPB_ID_CLIENT_ID:
			return mosquitto_client_id(client);
		case SRUPB_ID_USERNAME:
		default:
			return mosquitto_client_username(client);
	}
}

bool srupb_identity_id(const char *ident, uint64_t *id)
{
	char canon[SRUP_ID_TEXT_MAX];
	/* Only the canonical text form counts (topics and policies use it; no aliases such as
	 * "0xAD" or zero padding). */
	return ident != NULL && srup_id_parse(ident, strlen(ident), id) == SRUP_OK &&
	       srup_id_format(*id, canon, sizeof canon) == SRUP_OK && strcmp(canon, ident) == 0;
}
