/* SPDX-License-Identifier: MIT
 * keyex.h - client of a KeyEx-compatible registration service (spec section 5.4: srup-registry,
 * or the reference's KeyEx) over HTTPS with libcurl; JSON with jansson.
 * Every call returns 0 on success or -1 with a one-line reason in err. */
#ifndef SRUP_KEYEX_H
#define SRUP_KEYEX_H

#include <stddef.h>

#include <srup/srup.h>

#define KEYEX_ERR_MAX 512

struct keyex {
	char url[512];    /* base URL: https://host:port (the /KeyEx/register/... paths are added) */
	const char *ca;   /* CA bundle to verify the service's certificate (NULL: the system's) */
	long timeout_s;   /* per request */
	long http_status; /* of the last request */
	char err[KEYEX_ERR_MAX];
};

/* What /register/register gave back. Strings are NUL-terminated; server_key_pem is malloc'd. */
struct keyex_reg {
	char broker[256];     /* e.g. mqtts://host:8883 */
	char default_c2[32];  /* the server to join, id text */
	char *server_key_pem; /* that server's public key, PEM */
};

int keyex_init(struct keyex *k, const char *url, const char *ca);
/* GET status: *active and the service's identity. */
int keyex_status(struct keyex *k, int *active, char *identity, size_t cap);
/* POST register: our identity and public key, of type (e.g. "default"); enroll_token is the
 * registry's one-time enrollment token (NULL in open mode). */
int keyex_register(struct keyex *k, const char *id, const struct srup_key *key, const char *type,
                   const char *enroll_token, struct keyex_reg *out);
void keyex_reg_free(struct keyex_reg *r);
/* POST validate: prove we hold the key (PSS signature over our id). */
int keyex_validate(struct keyex *k, const char *id, const struct srup_key *key);
/* POST access: a CSR for our MQTT access key; *cert_pem and *ca_pem malloc'd. */
int keyex_access(struct keyex *k, const char *id, const struct srup_key *key, const char *csr_pem,
                 char **cert_pem, char **ca_pem);
/* GET c2_check/<id>: 1 known, 0 unknown, -1 error. */
int keyex_c2_check(struct keyex *k, const char *id);
/* POST c2/: register a server with the PSS token the registry's operator issued for its key. */
int keyex_c2_register(struct keyex *k, const char *id, const struct srup_key *key,
                      const char *token);

/* The key body KeyEx exchanges: the PEM SubjectPublicKeyInfo's base64, no armour, no newlines.
 * malloc'd or NULL. */
char *keyex_key_body(const struct srup_key *key);
/* PEM text of a key body, or of base64 of a whole PEM (as the reference's config holds it);
 * malloc'd or NULL if it is neither. */
char *keyex_body_to_pem(const char *body);

#endif
