/* SPDX-License-Identifier: MIT
 * srup/id.h - 64-bit SRUP identities and exchange tokens (spec §5.1), from libuuid. */
#ifndef SRUP_ID_H
#define SRUP_ID_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SRUP_ID_TEXT_MAX 17 /* 16 hex digits + NUL */
#define SRUP_TOKEN_LEN   36 /* str(uuid4()) */

/* A new identity: the top 64 bits of a random version-4 UUID. */
uint64_t srup_id_new(void);

/* Text form: lowercase hex, no "0x", no zero padding ("b9d077e223834cf6", "0" for zero).
 * out needs SRUP_ID_TEXT_MAX bytes (SPACE otherwise). */
enum srup_err srup_id_format(uint64_t id, char *out, size_t cap);

/* Parse 1..16 hex digits (either case; an optional "0x" prefix is accepted). SYNTAX on
 * anything else (empty, a sign, spaces, more than 16 digits). */
enum srup_err srup_id_parse(const char *s, size_t len, uint64_t *out);

/* A fresh 36-character token (random v4 UUID, lowercase, hyphenated) plus NUL in out[37]. */
void srup_token_new(char out[SRUP_TOKEN_LEN + 1]);

/* Hex helpers used across the tools: lowercase, out must hold 2*len+1 bytes. */
enum srup_err srup_hex_encode(const uint8_t *in, size_t len, char *out, size_t cap);
/* Decode hex (either case, even length, no separators) into out[0, cap). */
enum srup_err srup_hex_decode(const char *hex, size_t hex_len, uint8_t *out, size_t cap,
                              size_t *out_len);

#ifdef __cplusplus
}
#endif
#endif
