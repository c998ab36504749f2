/* SPDX-License-Identifier: MIT
 * srup/key.h - RSA keys for SRUP: load (PEM file or memory), generate, export.
 * A key is parsed once into an EVP_PKEY; nothing here touches the network. */
#ifndef SRUP_KEY_H
#define SRUP_KEY_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SRUP_KEY_BITS_MIN 2048u
#define SRUP_KEY_BITS_MAX 8192u

struct srup_key; /* opaque: one RSA key, public or private */

enum srup_key_kind {
	SRUP_KEY_PUBLIC = 0,  /* accept a public key (or take the public half of a private key) */
	SRUP_KEY_PRIVATE = 1, /* require a private key */
};

/* Load a PEM key from memory. Private: PKCS#1 "RSA PRIVATE KEY", unencrypted PKCS#8
 * "PRIVATE KEY", and a PKCS#8 body under the "RSA PRIVATE KEY" label. Public: SubjectPublicKeyInfo
 * "PUBLIC KEY" and PKCS#1 "RSA PUBLIC KEY". Passphrase-protected keys are refused (never prompts).
 * Only RSA keys of SRUP_KEY_BITS_MIN..MAX bits with public exponent 65537. Returns OK and an
 * owned *out, or KEY/NOMEM/INVAL with *out NULL. Thread-safe. */
enum srup_err srup_key_load_pem(const char *pem, size_t pem_len, enum srup_key_kind kind,
                                struct srup_key **out, struct srup_diag *diag);

/* As srup_key_load_pem, reading the file at path (IO if it cannot be read). */
enum srup_err srup_key_load_file(const char *path, enum srup_key_kind kind, struct srup_key **out,
                                 struct srup_diag *diag);

/* Generate a new RSA key of bits bits (2048..8192, e = 65537). */
enum srup_err srup_key_generate(unsigned bits, struct srup_key **out, struct srup_diag *diag);

/* Export as PEM text: private as PKCS#8 "PRIVATE KEY", public as SubjectPublicKeyInfo.
 * *pem is malloc'd and NUL-terminated (caller frees with free()); *pem_len excludes the NUL.
 * KEY if a private export is asked of a public key. */
enum srup_err srup_key_private_pem(const struct srup_key *key, char **pem, size_t *pem_len);
enum srup_err srup_key_public_pem(const struct srup_key *key, char **pem, size_t *pem_len);

/* Signature / modulus size in bytes (256 for RSA-2048). */
size_t srup_key_size(const struct srup_key *key);
/* Modulus size in bits. */
unsigned srup_key_bits(const struct srup_key *key);
/* 1 if key holds a private key. */
int srup_key_is_private(const struct srup_key *key);
/* SHA-256 of the DER SubjectPublicKeyInfo, for fingerprints. */
enum srup_err srup_key_fingerprint(const struct srup_key *key, uint8_t out[32]);
/* The underlying OpenSSL key (borrowed; an EVP_PKEY *), for benchmarks and advanced use. */
void *srup_key_evp(const struct srup_key *key);
/* Free a key; accepts NULL. Private key material is cleared by OpenSSL. */
void srup_key_free(struct srup_key *key);

#ifdef __cplusplus
}
#endif
#endif
