/* SPDX-License-Identifier: MIT
 * crypto_internal.h - what key.c, sig.c and envelope.c share: the srup_key layout and the
 * OpenSSL-error-to-diag helper. Not installed; names carry the srup__ prefix. */
#ifndef SRUP_CRYPTO_INTERNAL_H
#define SRUP_CRYPTO_INTERNAL_H

#include <stddef.h>

#include <openssl/evp.h>

#include "srup/err.h"
#include "srup/key.h"

/* One parsed RSA key. Everything a signature check needs is computed at load time, so the
 * per-message path never parses or queries the key. Immutable after load: several threads may
 * use one key at once. */
struct srup_key {
	EVP_PKEY *pkey;
	size_t size;    /* modulus bytes (= signature and wrapped-key length) */
	unsigned bits;  /* modulus bits */
	int is_private; /* 1 if pkey carries the private exponent */
};

/* Fill diag (if not NULL) with field and "<what>: <first OpenSSL reason>", then empty the
 * calling thread's OpenSSL error queue. Safe to call with an empty queue. */
void srup__diag_openssl(struct srup_diag *diag, const char *field, const char *what);

/* Fill diag (if not NULL) with field, offset and a fixed detail text; clears the OpenSSL error
 * queue as well, so nothing stale is left for the caller. */
void srup__diag_set(struct srup_diag *diag, const char *field, size_t offset, const char *detail);

#endif
