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

#endif
