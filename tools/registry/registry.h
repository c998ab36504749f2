/* SPDX-License-Identifier: MIT
 * registry.h - private header of srup-registry: its configuration, the crypto helpers
 * (crypto.c) and the one-time enrollment tokens (tokens.c). */
#ifndef SRUP_REGISTRY_H
#define SRUP_REGISTRY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <srup/srup.h>

#include "b64.h"

#define REG_PATH_MAX 512

struct reg_config {
	char path[REG_PATH_MAX];
	char listen_address[64];
	int listen_port;
	int plain_http; /* tests only: no TLS */
	char tls_cert[REG_PATH_MAX];
	char tls_key[REG_PATH_MAX];
	char store[REG_PATH_MAX];
	char ca_cert[REG_PATH_MAX];
	char ca_key[REG_PATH_MAX];
	uint64_t identity;
	char identity_text[SRUP_ID_TEXT_MAX];
	char signing_key[REG_PATH_MAX];
	char broker_url[256];
	uint64_t default_c2;
	char default_c2_text[SRUP_ID_TEXT_MAX];
	char mode[16]; /* open | token */
	char tokens_file[REG_PATH_MAX];
	double rate; /* requests per second per client address */
	unsigned burst;
	size_t max_body;
	unsigned timeout_s;
	unsigned max_connections;
	unsigned per_address_connections;
	size_t max_keys; /* registrations stop (507) once the store holds this many keys */
	char log_file[REG_PATH_MAX];
};

/* Parse the config file (key = value). 0, or -1 with a message on stderr naming the line. */
int reg_config_load(const char *path, struct reg_config *c);
void reg_config_help(FILE *to);

/* ---- crypto.c ---- */

/* Why a public key is unacceptable (RSA 2048..4096, e = 65537), or NULL if it is fine; on
 * success *canonical is its PEM as the store keeps it (malloc'd). */
const char *reg_check_key(const char *pem, char **canonical);
/* RSA-PSS (SHA-256, MGF1-SHA256) verification, any salt length up to the maximum; 1 if valid. */
int reg_pss_verify(const char *pub_pem, const unsigned char *data, size_t len,
                   const unsigned char *sig, size_t sig_len);
int reg_pss_verify_key(EVP_PKEY *pub, const unsigned char *data, size_t len,
                       const unsigned char *sig, size_t sig_len);
/* Check a CSR (PEM) for identity and sign a client certificate with the CA:
 * CN = identity, O = SRUP_DEVICE, SHA-256, 365 days, clientAuth. NULL and *why on refusal. */
char *reg_issue_cert(const char *csr_pem, size_t csr_len, const char *identity, X509 *ca,
                     EVP_PKEY *ca_key, const char **why);
EVP_PKEY *reg_load_private(const char *path);
X509 *reg_load_cert(const char *path);
char *reg_read_file(const char *path, size_t max);

/* ---- tokens.c ---- */

/* Make n one-time enrollment tokens, print them on out, append their hashes to file. */
int reg_tokens_new(const char *file, unsigned n, FILE *out);
/* Use token once: 1 if it was valid (and is now spent), 0 if not, -1 on error. Safe against
 * other processes using the same file (flock). */
int reg_token_consume(const char *file, const char *token);

#endif
