/* SPDX-License-Identifier: MIT
 * b64.h - the text forms the registration service (KeyEx, spec section 5.4) exchanges: base64,
 * "key bodies" (a PEM public key without armour and newlines) and base64 RSA-PSS signatures.
 * Shared by the registry (tools/registry) and its client (tools/common/keyex.c). */
#ifndef SRUP_TOOLS_B64_H
#define SRUP_TOOLS_B64_H

#include <stddef.h>

#include <openssl/evp.h>

/* Decode base64 (standard alphabet; whitespace ignored; '=' only as padding). *out is malloc'd
 * and NUL-terminated (not counted in *out_len). 0, or -1 for anything else. */
int b64_decode(const char *in, size_t len, unsigned char **out, size_t *out_len);
/* Encode; wrap: a newline every 76 characters and at the end (Python's encodebytes), else one
 * line. malloc'd or NULL. */
char *b64_encode(const unsigned char *in, size_t len, int wrap);
/* The PEM public key of a key body; malloc'd or NULL. */
char *b64_body_to_pem(const char *body);
/* The key body of a PEM (what lies between its armour lines, newlines removed); malloc'd. */
char *b64_pem_to_body(const char *pem);
/* RSA-PSS (SHA-256, MGF1-SHA256, maximum salt) over data, as base64 (wrap as above). */
char *b64_pss_sign(EVP_PKEY *key, const void *data, size_t len, int wrap);

#endif
