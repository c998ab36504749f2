/* SPDX-License-Identifier: MIT
 * err.c - text for libsrup error codes. Static strings only; no state. */
#include "srup/err.h"

#include "export.h"

struct err_text {
	const char *name;
	const char *text;
};

static const struct err_text texts[SRUP_ERR__COUNT] = {
        [SRUP_OK] = {"ok", "success"},
        [SRUP_ERR_TRUNCATED] = {"truncated", "message ends inside a field"},
        [SRUP_ERR_FIELD_LEN] = {"field_length", "an embedded length is over its field's limit"},
        [SRUP_ERR_TRAILING] = {"trailing_bytes", "bytes follow the last field"},
        [SRUP_ERR_VERSION] = {"bad_version", "unsupported protocol version (expected 0x05)"},
        [SRUP_ERR_TYPE] = {"unknown_type", "unknown message type"},
        [SRUP_ERR_EMPTY] = {"empty_payload", "empty message"},
        [SRUP_ERR_TOO_LONG] = {"too_large", "message is over the size limit"},
        [SRUP_ERR_PAD] = {"bad_pad", "SYNDICATED_C2_REQ padding is not 00 00"},
        [SRUP_ERR_SIG] = {"bad_signature", "signature does not verify"},
        [SRUP_ERR_CRYPTO] = {"crypto_error", "cryptographic operation failed"},
        [SRUP_ERR_KEY] = {"bad_key", "key is unreadable, of the wrong kind or too small"},
        [SRUP_ERR_DECRYPT] = {"decrypt_failed", "encrypted field is malformed or does not decrypt"},
        [SRUP_ERR_NOMEM] = {"no_memory", "out of memory"},
        [SRUP_ERR_IO] = {"io_error", "file could not be read or written"},
        [SRUP_ERR_SPACE] = {"no_space", "output buffer too small"},
        [SRUP_ERR_SYNTAX] = {"syntax", "text is not in the expected form"},
        [SRUP_ERR_INVAL] = {"invalid_argument", "invalid argument"},
};

SRUP_API const char *srup_strerror(enum srup_err e)
{
	if ((unsigned)e >= SRUP_ERR__COUNT || texts[e].text == NULL) {
		return "unknown error";
	}
	return texts[e].text;
}

SRUP_API const char *srup_err_name(enum srup_err e)
{
	if ((unsigned)e >= SRUP_ERR__COUNT || texts[e].name == NULL) {
		return "unknown";
	}
	return texts[e].name;
}
