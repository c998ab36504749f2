/* SPDX-License-Identifier: MIT
 * id.c - 64-bit SRUP identities and tokens from libuuid, their text forms, and hex helpers.
 * No state: every identity comes from a fresh random UUID. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <uuid/uuid.h>

#include "srup/id.h"

#include "export.h"
#include "hex.h"

SRUP_API uint64_t srup_id_new(void)
{
	uuid_t u;
	uint64_t v = 0;
	uuid_generate_random(u);
	/* spec §5.1: the top 64 bits of a random v4 UUID, read big-endian as Python's int does. */
	for (int i = 0; i < 8; i++) {
		v = (v << 8) | u[i];
	}
	return v;
}

SRUP_API enum srup_err srup_id_format(uint64_t id, char *out, size_t cap)
{
	uint8_t be[8];
	char hex[2 * sizeof be + 1];
	const char *p = hex;
	size_t n = 0;

	if (out == NULL) {
		return SRUP_ERR_INVAL;
	}
	for (size_t i = 0; i < sizeof be; i++) {
		be[i] = (uint8_t)(id >> (56 - 8 * i));
	}
	/* the one hex encoder, then without leading zeros (but "0" for zero) */
	if (srup_hex_encode(be, sizeof be, hex, sizeof hex) != SRUP_OK) {
		return SRUP_ERR_INVAL; /* cannot happen: hex has the room */
	}
	while (p[0] == '0' && p[1] != '\0') {
		p++;
	}
	n = strlen(p);
	if (cap < n + 1) {
		return SRUP_ERR_SPACE;
	}
	memcpy(out, p, n + 1);
	return SRUP_OK;
}

int srup__hex_value(char c)
{
	if (c >= '0' && c <= '9') {
		return c - '0';
	}
	if (c >= 'a' && c <= 'f') {
		return c - 'a' + 10;
	}
	if (c >= 'A' && c <= 'F') {
		return c - 'A' + 10;
	}
	return -1;
}

SRUP_API enum srup_err srup_id_parse(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	if (s == NULL || out == NULL) {
		return SRUP_ERR_INVAL;
	}
	if (len >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		s += 2;
		len -= 2;
	}
	if (len == 0 || len > 16) {
		return SRUP_ERR_SYNTAX;
	}
	for (size_t i = 0; i < len; i++) {
		int d = srup__hex_value(s[i]);
		if (d < 0) {
			return SRUP_ERR_SYNTAX;
		}
		v = (v << 4) | (uint64_t)d;
	}
	*out = v;
	return SRUP_OK;
}

SRUP_API void srup_token_new(char out[SRUP_TOKEN_LEN + 1])
{
	uuid_t u;
	uuid_generate_random(u);
	uuid_unparse_lower(u, out);
}

SRUP_API enum srup_err srup_hex_encode(const uint8_t *in, size_t len, char *out, size_t cap)
{
	static const char digits[] = "0123456789abcdef";
	if (out == NULL || (in == NULL && len > 0)) {
		return SRUP_ERR_INVAL;
	}
	if (len > (SIZE_MAX - 1) / 2 || cap < 2 * len + 1) {
		return SRUP_ERR_SPACE;
	}
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0xF];
	}
	out[2 * len] = '\0';
	return SRUP_OK;
}

SRUP_API enum srup_err srup_hex_decode(const char *hex, size_t hex_len, uint8_t *out, size_t cap,
                                       size_t *out_len)
{
	if (hex == NULL || out_len == NULL || (out == NULL && cap > 0)) {
		return SRUP_ERR_INVAL;
	}
	*out_len = 0;
	if (hex_len % 2 != 0) {
		return SRUP_ERR_SYNTAX;
	}
	if (cap < hex_len / 2) {
		return SRUP_ERR_SPACE;
	}
	for (size_t i = 0; i < hex_len / 2; i++) {
		int hi = srup__hex_value(hex[2 * i]);
		int lo = srup__hex_value(hex[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			return SRUP_ERR_SYNTAX;
		}
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	*out_len = hex_len / 2;
	return SRUP_OK;
}
