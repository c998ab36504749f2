/* SPDX-License-Identifier: MIT
 * srup/envelope.h - the encrypted field of spec §4: RSAES-PKCS1-v1_5 key wrap + AES-256-CBC.
 * Blob layout: u32le K | wrapped key (K) | IV (16) | u32le C | u32le P | ciphertext (C). */
#ifndef SRUP_ENVELOPE_H
#define SRUP_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "key.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Encrypt pt[0, pt_len) to the public half of key. *blob is malloc'd (caller frees). */
enum srup_err srup_envelope_seal(const struct srup_key *key, const uint8_t *pt, size_t pt_len,
                                 uint8_t **blob, size_t *blob_len, struct srup_diag *diag);

/* Decrypt a blob with a private key. Every embedded length is checked against blob_len and
 * against the others (K = key size, C a positive multiple of 16, C - 16 <= P < C as PKCS#7
 * padding implies, 28 + K + C = blob_len);
 * a lie, a wrong key or bad padding gives DECRYPT, never an overrun. *pt is malloc'd (at most
 * blob_len bytes) and freed by the caller; on failure *pt is NULL. */
enum srup_err srup_envelope_open(const struct srup_key *key, const uint8_t *blob, size_t blob_len,
                                 uint8_t **pt, size_t *pt_len, struct srup_diag *diag);

#ifdef __cplusplus
}
#endif
#endif
