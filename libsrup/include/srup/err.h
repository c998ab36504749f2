/* SPDX-License-Identifier: MIT
 * srup/err.h - error codes and diagnostics shared by every libsrup function.
 * Holds no state; srup_strerror() returns static text. */
#ifndef SRUP_ERR_H
#define SRUP_ERR_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define SRUP_WUR __attribute__((warn_unused_result))
#else
#define SRUP_WUR
#endif

enum srup_err {
	SRUP_OK = 0,
	SRUP_ERR_TRUNCATED, /* input ended inside a field */
	SRUP_ERR_FIELD_LEN, /* an embedded length is over its field's limit */
	SRUP_ERR_TRAILING,  /* bytes left after the last field */
	SRUP_ERR_VERSION,   /* version byte is not 0x05 */
	SRUP_ERR_TYPE,      /* message type unknown in version 0x05 (or GENERIC on the wire) */
	SRUP_ERR_EMPTY,     /* zero-length input */
	SRUP_ERR_TOO_LONG,  /* input over SRUP_MSG_MAX */
	SRUP_ERR_PAD,       /* SYNDICATED_C2_REQ pad bytes are not 00 00 */
	SRUP_ERR_SIG,       /* well-formed, but the signature does not verify */
	SRUP_ERR_CRYPTO,    /* OpenSSL failed for another reason */
	SRUP_ERR_KEY,       /* key unreadable, wrong kind, or too small */
	SRUP_ERR_DECRYPT,   /* encrypted field malformed or does not decrypt with this key */
	SRUP_ERR_NOMEM,     /* allocation failed */
	SRUP_ERR_IO,        /* file could not be read or written */
	SRUP_ERR_SPACE,     /* caller's output buffer is too small */
	SRUP_ERR_SYNTAX,    /* text input (id, hex, phrase) is not in the expected form */
	SRUP_ERR_INVAL,     /* caller bug: NULL or impossible argument */
	SRUP_ERR__COUNT
};

/* Extra context for a failure. Filled only when a function fails and diag is not NULL. */
struct srup_diag {
	size_t offset;     /* byte offset in the input where the problem was found */
	const char *field; /* static name of the field concerned, or NULL */
	char detail[160];  /* NUL-terminated free text (e.g. OpenSSL's reason), may be empty */
};

/* Static, human-readable text for e; never NULL (unknown values give "unknown error"). */
const char *srup_strerror(enum srup_err e);

/* Short stable identifier for e, e.g. "truncated", "bad_signature"; used in logs and JSON. */
const char *srup_err_name(enum srup_err e);

#ifdef __cplusplus
}
#endif
#endif
