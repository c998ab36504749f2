/* SPDX-License-Identifier: MIT
 * reader.h - bounds-checked cursor over untrusted bytes, and the matching writer.
 * Every read compares the bytes remaining, never pointers; nothing here allocates. */
#ifndef SRUP_READER_H
#define SRUP_READER_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "srup/err.h"

struct srup__rd {
	const uint8_t *p;
	size_t len;
	size_t off; /* invariant: off <= len */
};

static inline size_t srup__rd_left(const struct srup__rd *rd)
{
	return rd->len - rd->off;
}

static inline enum srup_err srup__rd_u8(struct srup__rd *rd, uint8_t *out)
{
	if (srup__rd_left(rd) < 1) {
		return SRUP_ERR_TRUNCATED;
	}
	*out = rd->p[rd->off];
	rd->off += 1;
	return SRUP_OK;
}

/* Little-endian unsigned integer of width bytes (4 or 8), decoded byte by byte. */
static inline enum srup_err srup__rd_uintle(struct srup__rd *rd, unsigned width, uint64_t *out)
{
	if (srup__rd_left(rd) < width) {
		return SRUP_ERR_TRUNCATED;
	}
	uint64_t v = 0;
	for (unsigned i = width; i > 0; i--) {
		v = (v << 8) | rd->p[rd->off + i - 1];
	}
	rd->off += width;
	*out = v;
	return SRUP_OK;
}

/* A var field: big-endian len16 then that many bytes. The length is a claim: it must fit both
 * the bytes left and max. On success out views into the buffer. */
static inline enum srup_err srup__rd_var(struct srup__rd *rd, size_t max, const uint8_t **out,
                                         size_t *out_len)
{
	if (srup__rd_left(rd) < 2) {
		return SRUP_ERR_TRUNCATED;
	}
	size_t n = (size_t)rd->p[rd->off] << 8 | rd->p[rd->off + 1];
	if (n > max) {
		return SRUP_ERR_FIELD_LEN;
	}
	if (srup__rd_left(rd) - 2 < n) {
		return SRUP_ERR_TRUNCATED;
	}
	*out = n > 0 ? rd->p + rd->off + 2 : NULL;
	*out_len = n;
	rd->off += 2 + n;
	return SRUP_OK;
}

struct srup__wr {
	uint8_t *p;
	size_t cap;
	size_t off; /* invariant: off <= cap */
};

static inline enum srup_err srup__wr_u8(struct srup__wr *wr, uint8_t v)
{
	if (wr->cap - wr->off < 1) {
		return SRUP_ERR_SPACE;
	}
	wr->p[wr->off++] = v;
	return SRUP_OK;
}

static inline enum srup_err srup__wr_uintle(struct srup__wr *wr, unsigned width, uint64_t v)
{
	if (wr->cap - wr->off < width) {
		return SRUP_ERR_SPACE;
	}
	for (unsigned i = 0; i < width; i++) {
		wr->p[wr->off + i] = (uint8_t)(v >> (8 * i));
	}
	wr->off += width;
	return SRUP_OK;
}

/* Write len16 (big-endian) then the bytes; the caller has checked len <= 65535. */
static inline enum srup_err srup__wr_var(struct srup__wr *wr, const uint8_t *p, size_t len)
{
	if (wr->cap - wr->off < 2 || wr->cap - wr->off - 2 < len) {
		return SRUP_ERR_SPACE;
	}
	wr->p[wr->off] = (uint8_t)(len >> 8);
	wr->p[wr->off + 1] = (uint8_t)(len & 0xFF);
	if (len > 0) {
		memcpy(wr->p + wr->off + 2, p, len);
	}
	wr->off += 2 + len;
	return SRUP_OK;
}

#endif
