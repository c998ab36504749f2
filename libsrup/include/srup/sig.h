/* SPDX-License-Identifier: MIT
 * srup/sig.h - RSASSA-PKCS1-v1_5 / SHA-256 signatures over SRUP's signed bytes (spec §1.3).
 * The scheme is pinned here; a message never chooses it. */
#ifndef SRUP_SIG_H
#define SRUP_SIG_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "key.h"
#include "msg.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Sign the concatenation of n segments with a private key. sig must hold srup_key_size(key)
 * bytes (SPACE otherwise); *sig_len gets the length written. KEY if key is not private. */
enum srup_err srup_sig_sign(const struct srup_key *key, const struct srup_bytes *segs, size_t n,
                            uint8_t *sig, size_t sig_cap, size_t *sig_len, struct srup_diag *diag);

/* Verify sig over the concatenation of n segments. OK only if valid; SIG if it is not;
 * CRYPTO for another OpenSSL failure. Thread-safe, allocates only inside OpenSSL. */
SRUP_WUR enum srup_err srup_sig_verify(const struct srup_key *key, const struct srup_bytes *segs,
                                       size_t n, const uint8_t *sig, size_t sig_len,
                                       struct srup_diag *diag);

/* Verify a message returned by srup_msg_parse over exactly its signed bytes (no copy). */
SRUP_WUR enum srup_err srup_msg_verify(const struct srup_msg *m, const struct srup_key *key,
                                       struct srup_diag *diag);

/* Encode m and sign it with key in one pass: out gets the complete message; m->signature is
 * ignored. SPACE if cap < srup_msg_encoded_len(m, srup_key_size(key)). */
enum srup_err srup_msg_sign_encode(const struct srup_msg *m, const struct srup_key *key,
                                   uint8_t *out, size_t cap, size_t *out_len,
                                   struct srup_diag *diag);

/* A prepared verifier for one public key: the digest and the RSA verify context are set up once,
 * so each message costs one SHA-256 and one RSA public operation (what `openssl speed` times).
 * Not thread-safe: one verifier per thread (the broker plugin keeps one per cached key). It
 * holds a reference to key's OpenSSL key, so the verifier may outlive key. */
struct srup_verifier;

/* New verifier for key (public or private). NOMEM, CRYPTO, INVAL; *out NULL on failure. */
enum srup_err srup_verifier_new(const struct srup_key *key, struct srup_verifier **out,
                                struct srup_diag *diag);

/* As srup_msg_verify, with the prepared contexts: OK only if valid, SIG if not, CRYPTO for another
 * OpenSSL failure (the verifier stays usable). Allocates nothing. */
SRUP_WUR enum srup_err srup_verifier_msg(struct srup_verifier *v, const struct srup_msg *m,
                                         struct srup_diag *diag);

/* Free a verifier; accepts NULL. */
void srup_verifier_free(struct srup_verifier *v);

#ifdef __cplusplus
}
#endif
#endif
