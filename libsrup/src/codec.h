/* SPDX-License-Identifier: MIT
 * codec.h - libsrup-internal codec entry points shared by msg.c and sig.c.
 * Not installed; names carry the srup__ prefix. */
#ifndef SRUP_CODEC_H
#define SRUP_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "srup/msg.h"

/* Where the pieces of an encoded message sit in the output buffer. */
struct srup__layout {
	size_t hdr_len;  /* version .. token: the first signed segment is out[0, hdr_len) */
	size_t sig_off;  /* == hdr_len: the signature's len16 prefix */
	size_t body_off; /* first byte of the body: second signed segment is out[body_off, total) */
	size_t total;    /* full message length */
};

/* Encode m into out[0, cap) with a signature field of sig_len bytes: writes everything except
 * the signature bytes themselves (out[sig_off + 2, body_off) is left for the caller to fill).
 * The len16 prefix of the signature is written. Errors: TYPE, FIELD_LEN, SPACE, INVAL. */
enum srup_err srup__msg_layout(const struct srup_msg *m, size_t sig_len, uint8_t *out, size_t cap,
                               struct srup__layout *lay);

#endif
