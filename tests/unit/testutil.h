/* SPDX-License-Identifier: MIT
 * testutil.h - helpers shared by the unit suites: suite prototypes and vector/key file access.
 * Test-only code; never linked into the library. */
#ifndef SRUP_TESTUTIL_H
#define SRUP_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "srup/id.h"

Suite *SRUP_SUITE(void);

/* Read a whole file into a malloc'd, NUL-terminated buffer; aborts the test on failure. */
static inline char *tu_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	char *buf = NULL;
	size_t cap = 0;
	size_t n = 0;
	for (;;) {
		if (n + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 8192;
			buf = realloc(buf, cap);
			ck_assert_ptr_nonnull(buf);
		}
		size_t got = fread(buf + n, 1, cap - n - 1, f);
		n += got;
		if (got == 0) {
			break;
		}
	}
	fclose(f);
	buf[n] = '\0';
	if (len != NULL) {
		*len = n;
	}
	return buf;
}

/* Path of a file under tests/vectors (static buffer; valid until the next call). */
static inline const char *tu_vector_path(const char *rel)
{
	static char path[1024];
	snprintf(path, sizeof path, "%s/%s", SRUP_VECTORS_DIR, rel);
	return path;
}

/* ---- tests/vectors/vectors.json: a flat array of objects, one "key": value per line ---------- */

/* Start of vector idx (its "name" member) in json, or NULL past the last one. */
static inline const char *tu_vec_at(const char *json, int idx)
{
	const char *p = json;
	for (int n = 0;; n++) {
		p = strstr(p, "\"name\": \"");
		if (p == NULL || n == idx) {
			return p;
		}
		p++;
	}
}

static inline int tu_vec_count(const char *json)
{
	int n = 0;
	while (tu_vec_at(json, n) != NULL) {
		n++;
	}
	return n;
}

/* The value of key inside vector idx, malloc'd: a string's contents, or the text of a number;
 * NULL if that vector has no such key. Keys inside one vector are unique. */
static inline char *tu_vec_get(const char *json, int idx, const char *key)
{
	const char *begin = tu_vec_at(json, idx);
	const char *end = tu_vec_at(json, idx + 1);
	char pat[128];
	ck_assert_ptr_nonnull(begin);
	snprintf(pat, sizeof pat, "\"%s\": ", key);
	const char *v = strstr(begin, pat);
	if (v == NULL || (end != NULL && v > end)) {
		return NULL;
	}
	v += strlen(pat);
	size_t n;
	if (*v == '"') {
		v++;
		n = strcspn(v, "\"");
	} else {
		n = strcspn(v, ",\n}");
	}
	char *out = malloc(n + 1);
	ck_assert_ptr_nonnull(out);
	memcpy(out, v, n);
	out[n] = '\0';
	return out;
}

/* As tu_vec_get, for a key that must be there. */
static inline char *tu_vec_need(const char *json, int idx, const char *key)
{
	char *v = tu_vec_get(json, idx, key);
	ck_assert_msg(v != NULL, "vector %d has no %s", idx, key);
	return v;
}

/* A number-valued key that must be there. */
static inline size_t tu_vec_num(const char *json, int idx, const char *key)
{
	char *v = tu_vec_need(json, idx, key);
	size_t n = (size_t)strtoull(v, NULL, 10);
	free(v);
	return n;
}

/* Hex text to malloc'd bytes (at least one byte allocated); fails the test on bad hex. */
static inline uint8_t *tu_unhex(const char *hex, size_t *len)
{
	size_t hl = strlen(hex);
	uint8_t *out = malloc(hl / 2 + 1);
	ck_assert_ptr_nonnull(out);
	ck_assert_int_eq(srup_hex_decode(hex, hl, out, hl / 2 + 1, len), SRUP_OK);
	return out;
}

/* A hex-valued key that must be there, as malloc'd bytes. */
static inline uint8_t *tu_vec_hex(const char *json, int idx, const char *key, size_t *len)
{
	char *hex = tu_vec_need(json, idx, key);
	uint8_t *out = tu_unhex(hex, len);
	free(hex);
	return out;
}

#endif
