/* SPDX-License-Identifier: MIT
 * fuzz_text.c - libFuzzer target for libsrup's text parsers, which see operator and peer input:
 * 64-bit ids, hex, 128-bit values and word phrases. The first input byte picks the parser, the
 * rest is the text (not NUL-terminated, so an over-read past it is caught by ASan).
 * Property: whatever parses formats back to text that parses to the same value and matches the
 * input up to letter case and the accepted variations; a failure leaves the output zeroed. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <srup/srup.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what)
{
	fprintf(stderr, "fuzz_text: property violated: %s\n", what);
	abort();
}

static void check_diag(const struct srup_diag *d, size_t len)
{
	if (memchr(d->detail, '\0', sizeof d->detail) == NULL) {
		fail("diag.detail is not NUL-terminated");
	}
	if (d->offset > len) {
		fail("diag.offset is past the input");
	}
}

/* Case-insensitive equality of a[0, n) and b[0, n). */
static int same_ci(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (tolower((unsigned char)a[i]) != tolower((unsigned char)b[i])) {
			return 0;
		}
	}
	return 1;
}

static void fuzz_id(const char *s, size_t len)
{
	uint64_t v = 0x5A5A5A5A5A5A5A5Au;
	uint64_t again = 0;
	char text[SRUP_ID_TEXT_MAX];

	if (srup_id_parse(s, len, &v) != SRUP_OK) {
		return;
	}
	size_t digits = len;
	const char *p = s;
	if (len >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		p += 2;
		digits -= 2;
	}
	if (digits == 0 || digits > 16) {
		fail("id_parse accepted a digit count outside 1..16");
	}
	if (srup_id_format(v, text, sizeof text) != SRUP_OK) {
		fail("id_format failed on a parsed id");
	}
	if (srup_id_parse(text, strlen(text), &again) != SRUP_OK || again != v) {
		fail("id text form does not parse back to the same id");
	}
	/* The text form is the input without "0x" and leading zeros, in lowercase. */
	while (digits > 1 && p[0] == '0') {
		p++;
		digits--;
	}
	if (strlen(text) != digits || !same_ci(text, p, digits)) {
		fail("id text form differs from the input");
	}
}

static void fuzz_hex(const char *s, size_t len)
{
	uint8_t *bin = malloc(len / 2 + 1);
	char *text = malloc(len + 1);
	size_t bin_len = 0;

	if (bin == NULL || text == NULL) {
		abort();
	}
	if (srup_hex_decode(s, len, bin, len / 2 + 1, &bin_len) == SRUP_OK) {
		if (bin_len * 2 != len) {
			fail("hex_decode length is not half the input length");
		}
		if (srup_hex_encode(bin, bin_len, text, len + 1) != SRUP_OK) {
			fail("hex_encode failed on decoded bytes");
		}
		if (strlen(text) != len || !same_ci(text, s, len)) {
			fail("hex does not round-trip");
		}
	}
	free(text);
	free(bin);
}

static void fuzz_id128(const char *s, size_t len)
{
	struct srup_id128 v;
	struct srup_id128 again;
	struct srup_diag d;
	char text[SRUP_ID128_TEXT_MAX];

	memset(&v, 0xA5, sizeof v);
	memset(&d, 0, sizeof d);
	if (srup_id128_parse(s, len, &v, &d) != SRUP_OK) {
		static const struct srup_id128 zero;
		if (memcmp(&v, &zero, sizeof v) != 0) {
			fail("id128_parse failed but left a value");
		}
		check_diag(&d, len);
		return;
	}
	if (len != 32 && len != 36) {
		fail("id128_parse accepted a length other than 32 or 36");
	}
	if (srup_id128_format(&v, text, sizeof text) != SRUP_OK || strlen(text) != 36) {
		fail("id128_format failed on a parsed value");
	}
	if (srup_id128_parse(text, 36, &again, NULL) != SRUP_OK || memcmp(&v, &again, sizeof v) != 0) {
		fail("id128 text form does not parse back to the same value");
	}
	if (len == 36 && !same_ci(text, s, 36)) {
		fail("id128 text form differs from the hyphenated input");
	}
}

static void fuzz_phrase(const char *s, size_t len)
{
	struct srup_id128 v;
	struct srup_id128 again;
	struct srup_diag d;
	char text[SRUP_PHRASE_TEXT_MAX];

	memset(&v, 0xA5, sizeof v);
	memset(&d, 0, sizeof d);
	if (srup_phrase_decode(s, len, &v, &d) != SRUP_OK) {
		static const struct srup_id128 zero;
		if (memcmp(&v, &zero, sizeof v) != 0) {
			fail("phrase_decode failed but left a value");
		}
		check_diag(&d, len);
		return;
	}
	if (srup_phrase_encode(&v, text, sizeof text) != SRUP_OK) {
		fail("phrase_encode failed on a decoded value");
	}
	if (srup_phrase_decode(text, strlen(text), &again, NULL) != SRUP_OK ||
	    memcmp(&v, &again, sizeof v) != 0) {
		fail("phrase does not decode back to the same value");
	}
	/* The canonical phrase is the input's words, lowercased, single-spaced. */
	size_t i = 0;
	size_t j = 0;
	size_t tlen = strlen(text);
	for (;;) {
		while (i < len && isspace((unsigned char)s[i])) {
			i++;
		}
		if (i == len || j >= tlen) {
			break;
		}
		while (i < len && j < tlen && !isspace((unsigned char)s[i]) && text[j] != ' ') {
			if (tolower((unsigned char)s[i]) != text[j]) {
				fail("phrase words differ from the input");
			}
			i++;
			j++;
		}
		if ((i < len && !isspace((unsigned char)s[i])) || (j < tlen && text[j] != ' ')) {
			fail("phrase word boundaries differ from the input");
		}
		if (j < tlen) {
			j++;
		}
	}
	while (i < len && isspace((unsigned char)s[i])) {
		i++;
	}
	if (i != len || j != tlen) {
		fail("phrase has a different number of words than the input");
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0) {
		return 0;
	}
	/* Copy the text into an exactly sized buffer, so a read of its (absent) NUL is caught. */
	size_t len = size - 1;
	char *s = malloc(len > 0 ? len : 1);
	if (s == NULL) {
		abort();
	}
	if (len > 0) {
		memcpy(s, data + 1, len);
	}
	switch (data[0] & 3u) {
		case 0:
			fuzz_id(s, len);
			break;
		case 1:
			fuzz_hex(s, len);
			break;
		case 2:
			fuzz_id128(s, len);
			break;
		default:
			fuzz_phrase(s, len);
			break;
	}
	free(s);
	return 0;
}
