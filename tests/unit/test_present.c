/* SPDX-License-Identifier: MIT
 * test_present.c - unit tests for identity presentation (present.h): 128-bit hex, the word list
 * and phrases, pictograph grids and their SVG/PNG/ANSI renderings, and the `srup phrase` /
 * `srup pictograph` commands (their sources are compiled into this runner). Every check decodes
 * or recomputes independently of the code under test (own CRC-32, Adler-32, bit packing). */
#define _XOPEN_SOURCE 700 /* posix_openpt and friends, for the PNG-to-terminal test */

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <zlib.h>

#include <srup/srup.h>

#include "testutil.h"

/* The commands under test, compiled in so that no `srup` binary is needed. */
#include "../../tools/srup/cmd_phrase.c"
#include "../../tools/srup/cmd_pictograph.c"

static const char paper_value[] = "C4BF8105-8351-41E0-886F-D25F9A69C5AD";

/* ---- helpers ------------------------------------------------------------------------------- */

/* Deterministic xorshift64* so that a failure is reproducible. */
static uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static void rng_id(uint64_t *s, struct srup_id128 *id)
{
	unsigned i = 0;
	for (i = 0; i < 16; i += 8) {
		uint64_t v = rng_next(s);
		unsigned k = 0;
		for (k = 0; k < 8; k++) {
			id->b[i + k] = (uint8_t)(v >> (8 * k));
		}
	}
}

static struct srup_id128 paper_id(void)
{
	struct srup_id128 id;
	ck_assert_int_eq(srup_id128_parse(paper_value, strlen(paper_value), &id, NULL), SRUP_OK);
	return id;
}

static void put_bit(struct srup_id128 *id, unsigned i, unsigned v)
{
	if (v) {
		id->b[i / 8] = (uint8_t)(id->b[i / 8] | (0x80u >> (i % 8)));
	}
}

static unsigned count_words(const char *s)
{
	unsigned n = 0;
	int in = 0;
	for (; *s != '\0'; s++) {
		if (*s == ' ') {
			in = 0;
		} else if (!in) {
			in = 1;
			n++;
		}
	}
	return n;
}

/* ---- 128-bit values ------------------------------------------------------------------------ */

START_TEST(test_id128_paper_value_formats_back)
{
	static const uint8_t want[16] = {0xC4, 0xBF, 0x81, 0x05, 0x83, 0x51, 0x41, 0xE0,
	                                 0x88, 0x6F, 0xD2, 0x5F, 0x9A, 0x69, 0xC5, 0xAD};
	struct srup_id128 id;
	struct srup_id128 id2;
	char text[SRUP_ID128_TEXT_MAX];
	const char *lower = "c4bf8105835141e0886fd25f9a69c5ad";
	ck_assert_int_eq(srup_id128_parse(paper_value, strlen(paper_value), &id, NULL), SRUP_OK);
	ck_assert_mem_eq(id.b, want, 16);
	ck_assert_int_eq(srup_id128_format(&id, text, sizeof text), SRUP_OK);
	ck_assert_str_eq(text, paper_value);
	/* 32 digits, lower case: same value, same upper-case hyphenated text. */
	ck_assert_int_eq(srup_id128_parse(lower, strlen(lower), &id2, NULL), SRUP_OK);
	ck_assert_mem_eq(id2.b, want, 16);
	ck_assert_int_eq(srup_id128_format(&id2, text, sizeof text), SRUP_OK);
	ck_assert_str_eq(text, paper_value);
}
END_TEST

START_TEST(test_id128_roundtrips_random_values)
{
	uint64_t s = 0x1234567887654321ULL;
	int i = 0;
	for (i = 0; i < 1000; i++) {
		struct srup_id128 id;
		struct srup_id128 back;
		char text[SRUP_ID128_TEXT_MAX];
		rng_id(&s, &id);
		ck_assert_int_eq(srup_id128_format(&id, text, sizeof text), SRUP_OK);
		ck_assert_uint_eq(strlen(text), 36);
		ck_assert_int_eq(srup_id128_parse(text, 36, &back, NULL), SRUP_OK);
		ck_assert_mem_eq(back.b, id.b, 16);
	}
}
END_TEST

static const struct {
	const char *text;
	size_t bad_offset;
} bad_ids[] = {
        {"", 0},
        {"C4BF8105835141E0886FD25F9A69C5A", 31},      /* 31 digits */
        {"C4BF8105835141E0886FD25F9A69C5ADD", 33},    /* 33 digits */
        {"C4BF8105835141E0886FD25F9A69C5AG", 31},     /* not hex */
        {"C4BF8105-8351-41E0-886F-D25F9A69C5A", 35},  /* 35 chars */
        {"C4BF81058-351-41E0-886F-D25F9A69C5AD", 8},  /* hyphen moved */
        {"C4BF8105-8351-41E0-886FD25F9A69C5AD0", 23}, /* last hyphen missing */
        {"C4BF8105 8351 41E0 886F D25F9A69C5AD", 8},  /* spaces */
        {"{C4BF8105-8351-41E0-886F-D25F9A69C5}", 0},  /* braces */
        {"0xC4BF8105835141E0886FD25F9A69C5AD", 34},   /* 0x prefix: 34 chars */
        {"C4BF8105-8351-41E0-886F-D25F9A69C5A-", 35}, /* hyphen in a digit place */
};

START_TEST(test_id128_parse_rejects_bad_text)
{
	struct srup_id128 id;
	struct srup_diag diag;
	const char *t = bad_ids[_i].text;
	memset(&id, 0xAA, sizeof id);
	memset(&diag, 0, sizeof diag);
	ck_assert_int_eq(srup_id128_parse(t, strlen(t), &id, &diag), SRUP_ERR_SYNTAX);
	ck_assert_uint_eq(diag.offset, bad_ids[_i].bad_offset);
	ck_assert_ptr_nonnull(diag.field);
	ck_assert_uint_gt(strlen(diag.detail), 0);
	for (unsigned k = 0; k < 16; k++) {
		ck_assert_uint_eq(id.b[k], 0); /* zeroed on failure */
	}
}
END_TEST

START_TEST(test_id128_parse_needs_no_nul_and_checks_null)
{
	char buf[40];
	struct srup_id128 id;
	memcpy(buf, paper_value, 36);
	memset(buf + 36, 'F', sizeof buf - 36); /* no NUL after the value */
	ck_assert_int_eq(srup_id128_parse(buf, 36, &id, NULL), SRUP_OK);
	ck_assert_uint_eq(id.b[15], 0xAD);
	ck_assert_int_eq(srup_id128_parse(NULL, 36, &id, NULL), SRUP_ERR_INVAL);
	ck_assert_int_eq(srup_id128_parse(buf, 36, NULL, NULL), SRUP_ERR_INVAL);
}
END_TEST

START_TEST(test_id128_format_checks_space)
{
	struct srup_id128 id = paper_id();
	char text[SRUP_ID128_TEXT_MAX];
	memset(text, 'x', sizeof text);
	ck_assert_int_eq(srup_id128_format(&id, text, SRUP_ID128_TEXT_MAX - 1), SRUP_ERR_SPACE);
	ck_assert_int_eq(text[0], '\0');
	ck_assert_int_eq(srup_id128_format(&id, text, 0), SRUP_ERR_SPACE);
	ck_assert_int_eq(srup_id128_format(&id, text, SRUP_ID128_TEXT_MAX), SRUP_OK);
	ck_assert_int_eq(srup_id128_format(NULL, text, sizeof text), SRUP_ERR_INVAL);
	ck_assert_int_eq(srup_id128_format(&id, NULL, sizeof text), SRUP_ERR_INVAL);
}
END_TEST

/* ---- word list ----------------------------------------------------------------------------- */

START_TEST(test_wordlist_sorted_unique_letters)
{
	unsigned i = 0;
	ck_assert_ptr_null(srup_phrase_word(4096));
	ck_assert_ptr_null(srup_phrase_word(0xFFFFFFFFu));
	for (i = 0; i < 4096; i++) {
		const char *w = srup_phrase_word(i);
		size_t n = 0;
		ck_assert_ptr_nonnull(w);
		n = strlen(w);
		ck_assert_msg(n >= 3 && n <= SRUP_PHRASE_WORD_MAX, "word %u '%s' has %zu letters", i, w, n);
		for (size_t k = 0; k < n; k++) {
			ck_assert_msg(w[k] >= 'a' && w[k] <= 'z', "word %u '%s' is not lowercase a-z", i, w);
		}
		if (i > 0) {
			/* strictly increasing: sorted, hence every word unique */
			ck_assert_msg(strcmp(srup_phrase_word(i - 1), w) < 0, "words %u/%u out of order", i - 1,
			              i);
		}
	}
}
END_TEST

/* 1 if a and b are within Damerau-Levenshtein (optimal string alignment) distance 1. */
static int dl_within_one(const char *a, size_t la, const char *b, size_t lb)
{
	size_t i = 0;
	if (la == lb) {
		size_t first = la;
		unsigned diffs = 0;
		for (i = 0; i < la; i++) {
			if (a[i] != b[i]) {
				if (diffs == 0) {
					first = i;
				}
				diffs++;
			}
		}
		if (diffs <= 1) {
			return 1;
		}
		return diffs == 2 && first + 1 < la && a[first] == b[first + 1] && a[first + 1] == b[first];
	}
	if (la + 1 == lb || lb + 1 == la) {
		const char *s = la < lb ? a : b; /* shorter */
		const char *l = la < lb ? b : a;
		size_t ls = la < lb ? la : lb;
		size_t j = 0;
		int skipped = 0;
		for (i = 0, j = 0; i < ls;) {
			if (s[i] == l[j]) {
				i++;
				j++;
			} else if (!skipped) {
				skipped = 1;
				j++;
			} else {
				return 0;
			}
		}
		return 1;
	}
	return 0;
}

START_TEST(test_wordlist_no_two_words_within_edit_distance_one)
{
	static size_t len[4096];
	unsigned i = 0;
	unsigned j = 0;
	/* sanity of the checker itself */
	ck_assert(dl_within_one("abide", 5, "abode", 5));
	ck_assert(dl_within_one("form", 4, "from", 4));
	ck_assert(dl_within_one("cart", 4, "carts", 5));
	ck_assert(dl_within_one("scar", 4, "car", 3));
	ck_assert(!dl_within_one("abc", 3, "cba", 3));
	ck_assert(!dl_within_one("abcd", 4, "ab", 2));
	for (i = 0; i < 4096; i++) {
		len[i] = strlen(srup_phrase_word(i));
	}
	/* Plain ifs in the 8.4M-pair loop: each passing ck_assert costs a message to the parent. */
	for (i = 0; i < 4096; i++) {
		const char *a = srup_phrase_word(i);
		for (j = i + 1; j < 4096; j++) {
			if (len[i] + 1 < len[j] || len[j] + 1 < len[i]) {
				continue;
			}
			if (dl_within_one(a, len[i], srup_phrase_word(j), len[j])) {
				ck_abort_msg("'%s' and '%s' are within edit distance 1", a, srup_phrase_word(j));
			}
		}
	}
}
END_TEST

/* ---- phrases ------------------------------------------------------------------------------- */

/* The 11 indexes computed independently: the value as two 64-bit halves shifted. */
static void expected_indexes(const struct srup_id128 *id, unsigned idx[11])
{
	uint64_t hi = 0;
	uint64_t lo = 0;
	unsigned w = 0;
	for (unsigned k = 0; k < 8; k++) {
		hi = hi << 8 | id->b[k];
		lo = lo << 8 | id->b[8 + k];
	}
	for (w = 0; w < 10; w++) {
		unsigned shift_bits = 116 - 12 * w; /* bit offset of the fragment's low end from bit 0 */
		uint64_t v = 0;
		if (shift_bits >= 64) {
			v = hi >> (shift_bits - 64);
		} else {
			v = (lo >> shift_bits) | (shift_bits > 0 ? hi << (64 - shift_bits) : 0);
		}
		idx[w] = (unsigned)(v & 0xFFFu);
	}
	idx[10] = (unsigned)((lo & 0xFFu) << 4) | 0xAu;
}

static void check_phrase_layout(const struct srup_id128 *id)
{
	char phrase[SRUP_PHRASE_TEXT_MAX];
	char want[SRUP_PHRASE_TEXT_MAX];
	unsigned idx[11];
	size_t pos = 0;
	expected_indexes(id, idx);
	for (unsigned w = 0; w < 11; w++) {
		int n = snprintf(want + pos, sizeof want - pos, "%s%s", w > 0 ? " " : "",
		                 srup_phrase_word(idx[w]));
		ck_assert_int_gt(n, 0);
		pos += (size_t)n;
	}
	ck_assert_int_eq(srup_phrase_encode(id, phrase, sizeof phrase), SRUP_OK);
	ck_assert_str_eq(phrase, want);
}

START_TEST(test_phrase_layout_matches_independent_bit_split)
{
	struct srup_id128 id = paper_id();
	uint64_t s = 42;
	check_phrase_layout(&id);
	for (int i = 0; i < 200; i++) {
		rng_id(&s, &id);
		check_phrase_layout(&id);
	}
}
END_TEST

START_TEST(test_phrase_edge_values)
{
	struct srup_id128 zero;
	struct srup_id128 ones;
	struct srup_id128 back;
	char phrase[SRUP_PHRASE_TEXT_MAX];
	char want[SRUP_PHRASE_TEXT_MAX];
	size_t pos = 0;
	memset(&zero, 0, sizeof zero);
	memset(&ones, 0xFF, sizeof ones);

	for (int w = 0; w < 10; w++) {
		pos += (size_t)snprintf(want + pos, sizeof want - pos, "%s ", srup_phrase_word(0));
	}
	snprintf(want + pos, sizeof want - pos, "%s", srup_phrase_word(0x00A));
	ck_assert_int_eq(srup_phrase_encode(&zero, phrase, sizeof phrase), SRUP_OK);
	ck_assert_str_eq(phrase, want);
	ck_assert_int_eq(srup_phrase_decode(phrase, strlen(phrase), &back, NULL), SRUP_OK);
	ck_assert_mem_eq(back.b, zero.b, 16);

	pos = 0;
	for (int w = 0; w < 10; w++) {
		pos += (size_t)snprintf(want + pos, sizeof want - pos, "%s ", srup_phrase_word(4095));
	}
	snprintf(want + pos, sizeof want - pos, "%s", srup_phrase_word(0xFFA));
	ck_assert_int_eq(srup_phrase_encode(&ones, phrase, sizeof phrase), SRUP_OK);
	ck_assert_str_eq(phrase, want);
	ck_assert_int_eq(srup_phrase_decode(phrase, strlen(phrase), &back, NULL), SRUP_OK);
	ck_assert_mem_eq(back.b, ones.b, 16);
}
END_TEST

START_TEST(test_phrase_roundtrips_many_values)
{
	uint64_t s = 0x9E3779B97F4A7C15ULL;
	for (int i = 0; i < 5000 + 128; i++) {
		struct srup_id128 id;
		struct srup_id128 back;
		char phrase[SRUP_PHRASE_TEXT_MAX];
		if (i < 128) {
			memset(&id, 0, sizeof id); /* every single-bit value */
			put_bit(&id, (unsigned)i, 1);
		} else {
			rng_id(&s, &id);
		}
		ck_assert_int_eq(srup_phrase_encode(&id, phrase, sizeof phrase), SRUP_OK);
		ck_assert_uint_eq(count_words(phrase), 11);
		ck_assert_int_eq(srup_phrase_decode(phrase, strlen(phrase), &back, NULL), SRUP_OK);
		ck_assert_mem_eq(back.b, id.b, 16);
	}
}
END_TEST

START_TEST(test_phrase_decode_ignores_case_and_spacing)
{
	struct srup_id128 id = paper_id();
	struct srup_id128 back;
	char phrase[SRUP_PHRASE_TEXT_MAX];
	char messy[3 * SRUP_PHRASE_TEXT_MAX];
	size_t n = 0;
	ck_assert_int_eq(srup_phrase_encode(&id, phrase, sizeof phrase), SRUP_OK);
	/* upper-case every other letter, turn each space into " \t\n ", add edges */
	messy[n++] = '\n';
	messy[n++] = ' ';
	for (size_t i = 0; phrase[i] != '\0'; i++) {
		if (phrase[i] == ' ') {
			memcpy(messy + n, " \t\r\n ", 5);
			n += 5;
		} else {
			messy[n++] = (i % 2) ? (char)(phrase[i] - 'a' + 'A') : phrase[i];
		}
	}
	messy[n++] = '\t';
	ck_assert_int_eq(srup_phrase_decode(messy, n, &back, NULL), SRUP_OK);
	ck_assert_mem_eq(back.b, id.b, 16);
}
END_TEST

START_TEST(test_phrase_encode_checks_space)
{
	struct srup_id128 id = paper_id();
	char phrase[SRUP_PHRASE_TEXT_MAX];
	size_t need = 0;
	ck_assert_int_eq(srup_phrase_encode(&id, phrase, sizeof phrase), SRUP_OK);
	need = strlen(phrase) + 1;
	ck_assert_int_eq(srup_phrase_encode(&id, phrase, need - 1), SRUP_ERR_SPACE);
	ck_assert_int_eq(phrase[0], '\0');
	ck_assert_int_eq(srup_phrase_encode(&id, phrase, need), SRUP_OK);
	ck_assert_uint_eq(strlen(phrase) + 1, need);
	ck_assert_int_eq(srup_phrase_encode(NULL, phrase, sizeof phrase), SRUP_ERR_INVAL);
	ck_assert_int_eq(srup_phrase_encode(&id, NULL, sizeof phrase), SRUP_ERR_INVAL);
	ck_assert_int_eq(srup_phrase_decode(NULL, 0, &id, NULL), SRUP_ERR_INVAL);
	ck_assert_int_eq(srup_phrase_decode("", 0, NULL, NULL), SRUP_ERR_INVAL);
}
END_TEST

/* Build a phrase string from word indexes. */
static void phrase_from(const unsigned *idx, unsigned n, char *out, size_t cap)
{
	size_t pos = 0;
	out[0] = '\0';
	for (unsigned i = 0; i < n; i++) {
		pos += (size_t)snprintf(out + pos, cap - pos, "%s%s", i > 0 ? " " : "",
		                        srup_phrase_word(idx[i]));
	}
}

static void expect_decode_fail(const char *s, const char *detail_part, size_t offset)
{
	struct srup_id128 id;
	struct srup_diag diag;
	memset(&id, 0x55, sizeof id);
	memset(&diag, 0, sizeof diag);
	ck_assert_int_eq(srup_phrase_decode(s, strlen(s), &id, &diag), SRUP_ERR_SYNTAX);
	ck_assert_msg(strstr(diag.detail, detail_part) != NULL, "detail '%s' lacks '%s'", diag.detail,
	              detail_part);
	ck_assert_uint_eq(diag.offset, offset);
	for (unsigned k = 0; k < 16; k++) {
		ck_assert_uint_eq(id.b[k], 0);
	}
}

START_TEST(test_phrase_decode_refuses_bad_input)
{
	unsigned idx[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0x12A, 0x33A};
	char good[200];
	char buf[400];
	size_t off = 0;
	phrase_from(idx, 11, good, sizeof good);

	/* unknown word in the middle: named, offset at its start */
	off = strlen(srup_phrase_word(1)) + 1;
	snprintf(buf, sizeof buf, "%s zzzzqq %s", srup_phrase_word(1), strchr(good + off, ' ') + 1);
	expect_decode_fail(buf, "\"zzzzqq\"", off);
	/* a digit or hyphen makes a word unknown */
	snprintf(buf, sizeof buf, "%s1 %s", srup_phrase_word(1), strchr(good, ' ') + 1);
	expect_decode_fail(buf, "unknown word", 0);
	/* a very long word is refused and its quote truncated */
	memset(buf, 'a', 300);
	buf[300] = '\0';
	expect_decode_fail(buf, "...", 0);

	/* wrong counts */
	phrase_from(idx, 10, buf, sizeof buf);
	expect_decode_fail(buf, "expected 11 words, got 10", strlen(buf));
	phrase_from(idx, 12, buf, sizeof buf);
	expect_decode_fail(buf, "too many words", strlen(good) + 1);
	expect_decode_fail("", "got 0", 0);
	expect_decode_fail("   \t ", "got 0", 5);

	/* last word with the wrong fixed bits: index 0x12B ends in 1011, not 1010 */
	idx[10] = 0x12B;
	phrase_from(idx, 11, buf, sizeof buf);
	off = strlen(buf) - strlen(srup_phrase_word(0x12B));
	expect_decode_fail(buf, srup_phrase_word(0x12B), off);
	expect_decode_fail(buf, "fixed bits", off);
	/* every one of the 15 wrong low nibbles is refused, the right one accepted */
	for (unsigned nib = 0; nib < 16; nib++) {
		struct srup_id128 id;
		idx[10] = 0x120u | nib;
		phrase_from(idx, 11, buf, sizeof buf);
		ck_assert_int_eq(srup_phrase_decode(buf, strlen(buf), &id, NULL),
		                 nib == 0xA ? SRUP_OK : SRUP_ERR_SYNTAX);
	}
}
END_TEST

/* ---- pictograph grids ---------------------------------------------------------------------- */

static int is_corner(unsigned r, unsigned c)
{
	return (r < 2 || r > 9) && (c < 2 || c > 9);
}

/* Read a mono grid back to a value, independently of present.c. */
static void mono_decode(const struct srup_pict *p, struct srup_id128 *id)
{
	unsigned bit = 0;
	memset(id, 0, sizeof *id);
	for (unsigned r = 0; r < 12; r++) {
		for (unsigned c = 0; c < 12; c++) {
			if (!is_corner(r, c)) {
				put_bit(id, bit++, p->cell[r][c]);
			}
		}
	}
	ck_assert_uint_eq(bit, 128);
}

static void colour_decode(const struct srup_pict *p, struct srup_id128 *id)
{
	memset(id, 0, sizeof *id);
	for (unsigned i = 0; i < 64; i++) {
		unsigned v = p->cell[i / 8][i % 8];
		put_bit(id, 2 * i, v >> 1);
		put_bit(id, 2 * i + 1, v & 1u);
	}
}

static struct srup_id128 test_value(int i)
{
	struct srup_id128 id;
	uint64_t s = 7 + (uint64_t)i;
	if (i == 0) {
		memset(&id, 0, sizeof id);
	} else if (i == 1) {
		memset(&id, 0xFF, sizeof id);
	} else if (i == 2) {
		id = paper_id();
	} else {
		rng_id(&s, &id);
	}
	return id;
}

START_TEST(test_pict_mono_corners_fixed_and_cells_decode)
{
	for (int i = 0; i < 50; i++) {
		struct srup_id128 id = test_value(i);
		struct srup_id128 back;
		struct srup_pict p;
		ck_assert_int_eq(srup_pict_make(&id, SRUP_PICT_MONO, &p), SRUP_OK);
		ck_assert_uint_eq(p.side, 12);
		ck_assert_int_eq(p.style, SRUP_PICT_MONO);
		ck_assert_mem_eq(p.id.b, id.b, 16);
		for (unsigned r = 0; r < 12; r++) {
			for (unsigned c = 0; c < 12; c++) {
				ck_assert_uint_le(p.cell[r][c], 1);
				if (is_corner(r, c)) {
					ck_assert_uint_eq(p.cell[r][c], 1);
					ck_assert_uint_eq(srup_pict_cell_rgb(&p, r, c), 0x000000);
				}
			}
		}
		mono_decode(&p, &back);
		ck_assert_mem_eq(back.b, id.b, 16);
	}
}
END_TEST

START_TEST(test_pict_colour_cells_decode)
{
	uint32_t seen[4] = {0, 0, 0, 0};
	for (int i = 0; i < 50; i++) {
		struct srup_id128 id = test_value(i);
		struct srup_id128 back;
		struct srup_pict p;
		ck_assert_int_eq(srup_pict_make(&id, SRUP_PICT_COLOUR, &p), SRUP_OK);
		ck_assert_uint_eq(p.side, 8);
		for (unsigned r = 0; r < 8; r++) {
			for (unsigned c = 0; c < 8; c++) {
				ck_assert_uint_le(p.cell[r][c], 3);
				seen[p.cell[r][c]] = srup_pict_cell_rgb(&p, r, c);
			}
		}
		colour_decode(&p, &back);
		ck_assert_mem_eq(back.b, id.b, 16);
	}
	/* the documented palette, dark to light, all distinct */
	ck_assert_uint_eq(seen[0], 0x000000);
	ck_assert_uint_eq(seen[1], 0x0072B2);
	ck_assert_uint_eq(seen[2], 0xE69F00);
	ck_assert_uint_eq(seen[3], 0xFFFFFF);
}
END_TEST

START_TEST(test_pict_make_rejects_bad_arguments)
{
	struct srup_id128 id = paper_id();
	struct srup_pict p;
	ck_assert_int_eq(srup_pict_make(&id, (enum srup_pict_style)2, &p), SRUP_ERR_INVAL);
	ck_assert_int_eq(srup_pict_make(NULL, SRUP_PICT_MONO, &p), SRUP_ERR_INVAL);
	ck_assert_int_eq(srup_pict_make(&id, SRUP_PICT_MONO, NULL), SRUP_ERR_INVAL);
	ck_assert_int_eq(srup_pict_make(&id, SRUP_PICT_MONO, &p), SRUP_OK);
	ck_assert_uint_eq(srup_pict_cell_rgb(&p, 12, 0), 0xFFFFFF); /* out of range: white */
	ck_assert_uint_eq(srup_pict_cell_rgb(NULL, 0, 0), 0xFFFFFF);
}
END_TEST

/* ---- PNG ----------------------------------------------------------------------------------- */

/* Bitwise CRC-32 (no table), independent of present.c's table version. */
static uint32_t ref_crc32(const uint8_t *p, size_t n)
{
	uint32_t c = 0xFFFFFFFFu;
	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++) {
			c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
		}
	}
	return ~c;
}

/* Plain Adler-32, reducing after every byte. */
static uint32_t ref_adler32(const uint8_t *p, size_t n)
{
	uint32_t a = 1;
	uint32_t b = 0;
	for (size_t i = 0; i < n; i++) {
		a = (a + p[i]) % 65521u;
		b = (b + a) % 65521u;
	}
	return (b << 16) | a;
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

struct png_image {
	uint32_t width;
	uint32_t height;
	uint8_t *raw; /* filter byte + RGB per row */
	size_t raw_len;
	size_t zlen; /* compressed */
};

/* Check every structural property of a PNG and return its pixels. */
static void png_check(const uint8_t *png, size_t len, struct png_image *img)
{
	static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
	size_t off = 8;
	int seen_ihdr = 0;
	int seen_iend = 0;
	uint8_t *z = NULL;
	size_t zlen = 0;
	memset(img, 0, sizeof *img);
	ck_assert_uint_ge(len, 8);
	ck_assert_mem_eq(png, sig, 8);
	while (off < len) {
		uint32_t n = 0;
		ck_assert_uint_ge(len - off, 12);
		n = be32(png + off);
		ck_assert_uint_ge(len - off - 12, n);
		ck_assert_msg(ref_crc32(png + off + 4, (size_t)n + 4) == be32(png + off + 8 + n),
		              "bad CRC on chunk %.4s", (const char *)(png + off + 4));
		ck_assert(!seen_iend);
		if (memcmp(png + off + 4, "IHDR", 4) == 0) {
			const uint8_t *d = png + off + 8;
			ck_assert_uint_eq(off, 8); /* first */
			ck_assert_uint_eq(n, 13);
			img->width = be32(d);
			img->height = be32(d + 4);
			ck_assert_uint_eq(d[8], 8);  /* bit depth */
			ck_assert_uint_eq(d[9], 2);  /* RGB */
			ck_assert_uint_eq(d[10], 0); /* deflate */
			ck_assert_uint_eq(d[11], 0);
			ck_assert_uint_eq(d[12], 0); /* not interlaced */
			seen_ihdr = 1;
		} else if (memcmp(png + off + 4, "IDAT", 4) == 0) {
			ck_assert(seen_ihdr);
			z = realloc(z, zlen + n);
			ck_assert_ptr_nonnull(z);
			memcpy(z + zlen, png + off + 8, n);
			zlen += n;
		} else if (memcmp(png + off + 4, "IEND", 4) == 0) {
			ck_assert_uint_eq(n, 0);
			seen_iend = 1;
		} else {
			ck_abort_msg("unexpected chunk");
		}
		off += 12 + (size_t)n;
	}
	ck_assert(seen_iend);
	/* zlib stream: header (deflate, no preset dictionary), then inflated by zlib itself,
	 * which checks the Adler-32; ours is checked against the bytes once more */
	ck_assert_uint_ge(zlen, 2 + 4);
	ck_assert_uint_eq(z[0] & 0x0f, 8);
	ck_assert_uint_eq(((unsigned)z[0] << 8 | z[1]) % 31, 0);
	ck_assert_uint_eq(z[1] & 0x20, 0);
	uLongf cap = (uLongf)img->height * (1 + 3 * (uLongf)img->width);
	img->raw = malloc(cap);
	ck_assert_ptr_nonnull(img->raw);
	ck_assert_int_eq(uncompress(img->raw, &cap, z, (uLong)zlen), Z_OK);
	img->raw_len = cap;
	img->zlen = zlen;
	ck_assert_uint_eq(be32(z + zlen - 4), ref_adler32(img->raw, img->raw_len));
	ck_assert_uint_eq(img->raw_len, (size_t)img->height * (1 + 3 * (size_t)img->width));
	for (uint32_t y = 0; y < img->height; y++) {
		ck_assert_uint_eq(img->raw[(size_t)y * (1 + 3 * (size_t)img->width)], 0); /* filter */
	}
	free(z);
}

static uint32_t png_pixel(const struct png_image *img, unsigned x, unsigned y)
{
	const uint8_t *px = img->raw + (size_t)y * (1 + 3 * (size_t)img->width) + 1 + 3 * (size_t)x;
	return (uint32_t)px[0] << 16 | (uint32_t)px[1] << 8 | px[2];
}

static const unsigned png_scales[] = {0, 1, 2, 7, 16, 64};

START_TEST(test_pict_png_valid_and_decodes_back)
{
	unsigned scale = png_scales[_i];
	unsigned eff = scale == 0 ? SRUP_PICT_SCALE_DEFAULT : scale;
	for (int style = 0; style < 2; style++) {
		struct srup_id128 id = paper_id();
		struct srup_id128 back;
		struct srup_pict p;
		struct srup_pict from_png;
		struct png_image img;
		uint8_t *png = NULL;
		size_t len = 0;
		unsigned side = style == 0 ? 12 : 8;
		unsigned g0 = SRUP_PICT_QUIET * eff;
		ck_assert_int_eq(srup_pict_make(&id, (enum srup_pict_style)style, &p), SRUP_OK);
		ck_assert_int_eq(srup_pict_png(&p, scale, &png, &len), SRUP_OK);
		png_check(png, len, &img);
		ck_assert_uint_eq(img.width, (side + 2 * SRUP_PICT_QUIET) * eff);
		ck_assert_uint_eq(img.height, img.width);
		/* compressed: one colour per cell makes long runs (a stored stream was ~200 KB at
		 * scale 16) */
		ck_assert_uint_lt(img.zlen, img.raw_len / 4 + 64);
		/* quiet border white, frame grey just outside the grid */
		ck_assert_uint_eq(png_pixel(&img, 0, 0), 0xFFFFFF);
		ck_assert_uint_eq(png_pixel(&img, img.width - 1, img.height - 1), 0xFFFFFF);
		ck_assert_uint_eq(png_pixel(&img, g0 - 1, g0 + 1), 0x808080);
		ck_assert_uint_eq(png_pixel(&img, g0 + side * eff, g0 + 1), 0x808080);
		/* every pixel of every cell has the cell colour; read the grid back from the pixels */
		memset(&from_png, 0, sizeof from_png);
		from_png.side = side;
		for (unsigned r = 0; r < side; r++) {
			for (unsigned c = 0; c < side; c++) {
				uint32_t want = srup_pict_cell_rgb(&p, r, c);
				uint32_t got = png_pixel(&img, g0 + c * eff, g0 + r * eff);
				ck_assert_uint_eq(got, want);
				ck_assert_uint_eq(png_pixel(&img, g0 + c * eff + eff - 1, g0 + r * eff + eff - 1),
				                  want);
				if (style == 0) {
					from_png.cell[r][c] = got == 0x000000 ? 1 : 0;
				} else {
					from_png.cell[r][c] = got == 0x000000   ? 0
					                      : got == 0x0072B2 ? 1
					                      : got == 0xE69F00 ? 2
					                                        : 3;
				}
			}
		}
		if (style == 0) {
			mono_decode(&from_png, &back);
		} else {
			colour_decode(&from_png, &back);
		}
		ck_assert_mem_eq(back.b, id.b, 16);
		free(img.raw);
		free(png);
	}
}
END_TEST

START_TEST(test_pict_renderers_reject_bad_arguments)
{
	struct srup_id128 id = paper_id();
	struct srup_pict p;
	uint8_t *png = (uint8_t *)&id;
	char *text = (char *)&id;
	size_t len = 99;
	ck_assert_int_eq(srup_pict_make(&id, SRUP_PICT_MONO, &p), SRUP_OK);
	ck_assert_int_eq(srup_pict_png(&p, SRUP_PICT_SCALE_MAX + 1, &png, &len), SRUP_ERR_INVAL);
	ck_assert_ptr_null(png);
	ck_assert_uint_eq(len, 0);
	ck_assert_int_eq(srup_pict_svg(&p, SRUP_PICT_SCALE_MAX + 1, &text, &len), SRUP_ERR_INVAL);
	ck_assert_ptr_null(text);
	ck_assert_int_eq(srup_pict_png(NULL, 0, &png, &len), SRUP_ERR_INVAL);
	ck_assert_int_eq(srup_pict_png(&p, 0, NULL, &len), SRUP_ERR_INVAL);
	ck_assert_int_eq(srup_pict_svg(&p, 0, &text, NULL), SRUP_ERR_INVAL);
	ck_assert_int_eq(srup_pict_ansi(NULL, &text, &len), SRUP_ERR_INVAL);
	/* inconsistent grids */
	p.side = 8; /* mono must be 12 */
	ck_assert_int_eq(srup_pict_png(&p, 0, &png, &len), SRUP_ERR_INVAL);
	ck_assert_int_eq(srup_pict_ansi(&p, &text, &len), SRUP_ERR_INVAL);
	ck_assert_int_eq(srup_pict_make(&id, SRUP_PICT_MONO, &p), SRUP_OK);
	p.cell[3][3] = 2; /* mono cells are 0/1 */
	ck_assert_int_eq(srup_pict_svg(&p, 0, &text, &len), SRUP_ERR_INVAL);
	ck_assert_int_eq(srup_pict_make(&id, SRUP_PICT_COLOUR, &p), SRUP_OK);
	p.cell[0][0] = 4;
	ck_assert_int_eq(srup_pict_png(&p, 0, &png, &len), SRUP_ERR_INVAL);
}
END_TEST

/* ---- SVG ----------------------------------------------------------------------------------- */

/* Paint the <rect> elements of an SVG (in order) onto a pixel grid and read the cells back. */
static void svg_decode(const char *svg, unsigned side, unsigned scale, struct srup_pict *out)
{
	unsigned size = (side + 2 * SRUP_PICT_QUIET) * scale;
	uint32_t *px = calloc((size_t)size * size, sizeof *px);
	const char *p = svg;
	unsigned rects = 0;
	ck_assert_ptr_nonnull(px);
	while ((p = strstr(p, "<rect ")) != NULL) {
		unsigned x = 0;
		unsigned y = 0;
		unsigned w = 0;
		unsigned h = 0;
		unsigned rgb = 0;
		if (sscanf(p, "<rect x=\"%u\" y=\"%u\" width=\"%u\" height=\"%u\" fill=\"#%6x\"/>", &x, &y,
		           &w, &h, &rgb) != 5) {
			ck_assert_int_eq(
			        sscanf(p, "<rect width=\"%u\" height=\"%u\" fill=\"#%6x\"/>", &w, &h, &rgb), 3);
			x = 0;
			y = 0;
		}
		ck_assert_uint_le(x + w, size);
		ck_assert_uint_le(y + h, size);
		for (unsigned yy = y; yy < y + h; yy++) {
			for (unsigned xx = x; xx < x + w; xx++) {
				px[(size_t)yy * size + xx] = rgb;
			}
		}
		rects++;
		p++;
	}
	ck_assert_uint_ge(rects, 2 + side);
	memset(out, 0, sizeof *out);
	out->side = side;
	unsigned g0 = SRUP_PICT_QUIET * scale;
	ck_assert_uint_eq(px[0], 0xFFFFFF);
	ck_assert_uint_eq(px[(size_t)(g0 - 1) * size + g0], 0x808080);
	for (unsigned r = 0; r < side; r++) {
		for (unsigned c = 0; c < side; c++) {
			uint32_t v =
			        px[(size_t)(g0 + r * scale + scale / 2) * size + g0 + c * scale + scale / 2];
			if (side == 12) {
				out->cell[r][c] = v == 0x000000 ? 1 : 0;
				ck_assert(v == 0x000000 || v == 0xFFFFFF);
			} else {
				out->cell[r][c] = v == 0x000000 ? 0 : v == 0x0072B2 ? 1 : v == 0xE69F00 ? 2 : 3;
				ck_assert(v == 0x000000 || v == 0x0072B2 || v == 0xE69F00 || v == 0xFFFFFF);
			}
		}
	}
	free(px);
}

START_TEST(test_pict_svg_deterministic_and_decodes_back)
{
	for (int i = 0; i < 20; i++) {
		for (int style = 0; style < 2; style++) {
			struct srup_id128 id = test_value(i);
			struct srup_id128 back;
			struct srup_pict p;
			struct srup_pict got;
			char *a = NULL;
			char *b = NULL;
			size_t la = 0;
			size_t lb = 0;
			char text[SRUP_ID128_TEXT_MAX];
			char head[200];
			unsigned side = style == 0 ? 12 : 8;
			ck_assert_int_eq(srup_pict_make(&id, (enum srup_pict_style)style, &p), SRUP_OK);
			ck_assert_int_eq(srup_pict_svg(&p, 10, &a, &la), SRUP_OK);
			ck_assert_int_eq(srup_pict_svg(&p, 10, &b, &lb), SRUP_OK);
			ck_assert_uint_eq(la, lb);
			ck_assert_uint_eq(strlen(a), la);
			ck_assert_str_eq(a, b);
			ck_assert(strncmp(a, "<?xml", 5) == 0);
			ck_assert_str_eq(a + la - 7, "</svg>\n");
			snprintf(head, sizeof head, "width=\"%u\" height=\"%u\"",
			         (side + 2 * SRUP_PICT_QUIET) * 10, (side + 2 * SRUP_PICT_QUIET) * 10);
			ck_assert_ptr_nonnull(strstr(a, head));
			ck_assert_int_eq(srup_id128_format(&id, text, sizeof text), SRUP_OK);
			ck_assert_ptr_nonnull(strstr(a, text));
			svg_decode(a, side, 10, &got);
			if (style == 0) {
				mono_decode(&got, &back);
			} else {
				colour_decode(&got, &back);
			}
			ck_assert_mem_eq(back.b, id.b, 16);
			free(a);
			free(b);
		}
	}
}
END_TEST

/* ---- ANSI ---------------------------------------------------------------------------------- */

/* Parse ANSI output line by line: every cell is "  " under the last ESC[48;2;R;G;Bm. */
static void ansi_decode(const char *s, unsigned side, struct srup_pict *out)
{
	unsigned total = side + 2 * SRUP_PICT_QUIET_ANSI;
	unsigned line = 0;
	memset(out, 0, sizeof *out);
	out->side = side;
	while (*s != '\0') {
		const char *eol = strchr(s, '\n');
		unsigned col = 0;
		uint32_t rgb = 0;
		int have = 0;
		ck_assert_ptr_nonnull(eol);
		ck_assert_uint_ge((size_t)(eol - s), 4);
		ck_assert(memcmp(eol - 4, "\x1b[0m", 4) == 0);
		for (const char *p = s; p < eol - 4;) {
			if (*p == '\x1b') {
				unsigned r = 0;
				unsigned g = 0;
				unsigned b = 0;
				int n = 0;
				ck_assert_int_eq(sscanf(p, "\x1b[48;2;%u;%u;%um%n", &r, &g, &b, &n), 3);
				rgb = r << 16 | g << 8 | b;
				have = 1;
				p += n;
				continue;
			}
			ck_assert(have);
			ck_assert(p[0] == ' ' && p[1] == ' ');
			if (line == 0 || line == total - 1 || col == 0 || col == total - 1) {
				ck_assert_uint_eq(rgb, 0xFFFFFF); /* quiet border */
			} else if (side == 12) {
				out->cell[line - 1][col - 1] = rgb == 0 ? 1 : 0;
			} else {
				out->cell[line - 1][col - 1] = rgb == 0          ? 0
				                               : rgb == 0x0072B2 ? 1
				                               : rgb == 0xE69F00 ? 2
				                                                 : 3;
			}
			col++;
			p += 2;
		}
		ck_assert_uint_eq(col, total);
		line++;
		s = eol + 1;
	}
	ck_assert_uint_eq(line, total);
}

START_TEST(test_pict_ansi_deterministic_and_decodes_back)
{
	for (int i = 0; i < 20; i++) {
		for (int style = 0; style < 2; style++) {
			struct srup_id128 id = test_value(i);
			struct srup_id128 back;
			struct srup_pict p;
			struct srup_pict got;
			char *a = NULL;
			char *b = NULL;
			size_t la = 0;
			size_t lb = 0;
			ck_assert_int_eq(srup_pict_make(&id, (enum srup_pict_style)style, &p), SRUP_OK);
			ck_assert_int_eq(srup_pict_ansi(&p, &a, &la), SRUP_OK);
			ck_assert_int_eq(srup_pict_ansi(&p, &b, &lb), SRUP_OK);
			ck_assert_uint_eq(strlen(a), la);
			ck_assert_str_eq(a, b);
			ansi_decode(a, style == 0 ? 12 : 8, &got);
			if (style == 0) {
				mono_decode(&got, &back);
			} else {
				colour_decode(&got, &back);
			}
			ck_assert_mem_eq(back.b, id.b, 16);
			free(a);
			free(b);
		}
	}
}
END_TEST

START_TEST(test_pict_different_values_differ)
{
	struct srup_id128 a = paper_id();
	struct srup_id128 b = a;
	struct srup_pict pa;
	struct srup_pict pb;
	char *sa = NULL;
	char *sb = NULL;
	size_t la = 0;
	size_t lb = 0;
	b.b[15] ^= 0x01; /* one bit */
	for (int style = 0; style < 2; style++) {
		ck_assert_int_eq(srup_pict_make(&a, (enum srup_pict_style)style, &pa), SRUP_OK);
		ck_assert_int_eq(srup_pict_make(&b, (enum srup_pict_style)style, &pb), SRUP_OK);
		ck_assert(memcmp(pa.cell, pb.cell, sizeof pa.cell) != 0);
		ck_assert_int_eq(srup_pict_ansi(&pa, &sa, &la), SRUP_OK);
		ck_assert_int_eq(srup_pict_ansi(&pb, &sb, &lb), SRUP_OK);
		ck_assert(la != lb || memcmp(sa, sb, la) != 0);
		free(sa);
		free(sb);
	}
}
END_TEST

/* ---- the commands -------------------------------------------------------------------------- */

struct captured {
	int rc;
	char *out;
	size_t out_len;
	char *err;
};

static char *slurp_fd(int fd, size_t *len)
{
	size_t cap = 4096;
	size_t n = 0;
	char *buf = malloc(cap);
	ck_assert_ptr_nonnull(buf);
	ck_assert_int_eq((int)lseek(fd, 0, SEEK_SET), 0);
	for (;;) {
		ssize_t got = 0;
		if (cap - n < 2) {
			cap *= 2;
			buf = realloc(buf, cap);
			ck_assert_ptr_nonnull(buf);
		}
		got = read(fd, buf + n, cap - n - 1);
		ck_assert_int_ge((int)got, 0);
		if (got == 0) {
			break;
		}
		n += (size_t)got;
	}
	buf[n] = '\0';
	if (len != NULL) {
		*len = n;
	}
	return buf;
}

static int temp_fd(void)
{
	char path[] = "/tmp/srup-present-XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	unlink(path);
	return fd;
}

/* Run a command with stdout and stderr redirected to temporary files. */
static struct captured run_cmd(int (*cmd)(int, char **), int argc, const char **argv)
{
	struct captured c;
	int out_fd = temp_fd();
	int err_fd = temp_fd();
	int saved_out = dup(STDOUT_FILENO);
	int saved_err = dup(STDERR_FILENO);
	char *args[16];
	ck_assert_int_lt(argc, 16);
	for (int i = 0; i < argc; i++) {
		args[i] = (char *)(uintptr_t)argv[i];
	}
	args[argc] = NULL;
	fflush(stdout);
	fflush(stderr);
	ck_assert_int_ge(dup2(out_fd, STDOUT_FILENO), 0);
	ck_assert_int_ge(dup2(err_fd, STDERR_FILENO), 0);
	c.rc = cmd(argc, args);
	fflush(stdout);
	fflush(stderr);
	dup2(saved_out, STDOUT_FILENO);
	dup2(saved_err, STDERR_FILENO);
	close(saved_out);
	close(saved_err);
	c.out = slurp_fd(out_fd, &c.out_len);
	c.err = slurp_fd(err_fd, NULL);
	close(out_fd);
	close(err_fd);
	return c;
}

static void captured_free(struct captured *c)
{
	free(c->out);
	free(c->err);
}

/* An error is exactly one line on stderr, nothing on stdout, exit 3. */
static void expect_usage_error(struct captured *c, const char *part)
{
	ck_assert_int_eq(c->rc, 3);
	ck_assert_uint_eq(c->out_len, 0);
	ck_assert_uint_gt(strlen(c->err), 1);
	ck_assert_ptr_eq(strchr(c->err, '\n'), c->err + strlen(c->err) - 1);
	ck_assert_msg(strstr(c->err, part) != NULL, "stderr '%s' lacks '%s'", c->err, part);
	captured_free(c);
}

START_TEST(test_cmd_phrase_prints_words_and_reverses)
{
	struct srup_id128 id = paper_id();
	char phrase[SRUP_PHRASE_TEXT_MAX];
	char want[SRUP_PHRASE_TEXT_MAX + 1];
	const char *argv[16] = {"phrase", paper_value};
	struct captured c;
	ck_assert_int_eq(srup_phrase_encode(&id, phrase, sizeof phrase), SRUP_OK);
	snprintf(want, sizeof want, "%s\n", phrase);
	c = run_cmd(srup_cmd_phrase, 2, argv);
	ck_assert_int_eq(c.rc, 0);
	ck_assert_str_eq(c.out, want);
	ck_assert_str_eq(c.err, "");
	captured_free(&c);

	/* --reverse with the words as separate arguments (upper case works too) */
	char *copy = strdup(phrase);
	char *save = NULL;
	int argc = 0;
	argv[argc++] = "phrase";
	argv[argc++] = "--reverse";
	for (char *w = strtok_r(copy, " ", &save); w != NULL; w = strtok_r(NULL, " ", &save)) {
		if (argc == 5) {
			for (char *q = w; *q != '\0'; q++) {
				*q = (char)(*q - 'a' + 'A'); /* one word in upper case */
			}
		}
		argv[argc++] = w;
	}
	ck_assert_int_eq(argc, 13);
	c = run_cmd(srup_cmd_phrase, argc, argv);
	ck_assert_int_eq(c.rc, 0);
	ck_assert_str_eq(c.out, "C4BF8105-8351-41E0-886F-D25F9A69C5AD\n");
	captured_free(&c);
	free(copy);

	/* --reverse with the phrase as one quoted argument */
	argv[0] = "phrase";
	argv[1] = "--reverse";
	argv[2] = phrase;
	c = run_cmd(srup_cmd_phrase, 3, argv);
	ck_assert_int_eq(c.rc, 0);
	ck_assert_str_eq(c.out, "C4BF8105-8351-41E0-886F-D25F9A69C5AD\n");
	captured_free(&c);
}
END_TEST

START_TEST(test_cmd_phrase_errors_and_help)
{
	const char *argv[16];
	struct captured c;
	argv[0] = "phrase";
	argv[1] = "--help";
	c = run_cmd(srup_cmd_phrase, 2, argv);
	ck_assert_int_eq(c.rc, 0);
	ck_assert_ptr_nonnull(strstr(c.out, "usage: srup phrase"));
	captured_free(&c);

	c = run_cmd(srup_cmd_phrase, 1, argv);
	expect_usage_error(&c, "expected one VALUE");
	argv[1] = "C4BF8105-8351-41E0-886F-D25F9A69C5A";
	c = run_cmd(srup_cmd_phrase, 2, argv);
	expect_usage_error(&c, "bad VALUE");
	argv[1] = "--bogus";
	c = run_cmd(srup_cmd_phrase, 2, argv);
	expect_usage_error(&c, "unknown option");
	argv[1] = "--reverse";
	c = run_cmd(srup_cmd_phrase, 2, argv);
	expect_usage_error(&c, "needs the 11 words");
	argv[2] = "abacus";
	argv[3] = "notaword";
	c = run_cmd(srup_cmd_phrase, 4, argv);
	expect_usage_error(&c, "\"notaword\"");
	argv[3] = "abacus";
	c = run_cmd(srup_cmd_phrase, 4, argv);
	expect_usage_error(&c, "expected 11 words, got 2");
}
END_TEST

START_TEST(test_cmd_pictograph_outputs_match_library)
{
	struct srup_id128 id = paper_id();
	struct srup_pict p;
	char *svg = NULL;
	char *ansi = NULL;
	uint8_t *png = NULL;
	size_t svg_len = 0;
	size_t ansi_len = 0;
	size_t png_len = 0;
	char path[] = "/tmp/srup-present-png-XXXXXX";
	int fd = -1;
	size_t file_len = 0;
	char *file = NULL;
	struct captured c;
	const char *argv[16] = {"pictograph", paper_value, "--style", "colour", "--format", "svg"};

	ck_assert_int_eq(srup_pict_make(&id, SRUP_PICT_COLOUR, &p), SRUP_OK);
	ck_assert_int_eq(srup_pict_svg(&p, 0, &svg, &svg_len), SRUP_OK);
	c = run_cmd(srup_cmd_pictograph, 6, argv);
	ck_assert_int_eq(c.rc, 0);
	ck_assert_uint_eq(c.out_len, svg_len);
	ck_assert_str_eq(c.out, svg);
	captured_free(&c);

	ck_assert_int_eq(srup_pict_make(&id, SRUP_PICT_MONO, &p), SRUP_OK);
	ck_assert_int_eq(srup_pict_ansi(&p, &ansi, &ansi_len), SRUP_OK);
	argv[3] = "mono";
	argv[5] = "ansi";
	c = run_cmd(srup_cmd_pictograph, 6, argv);
	ck_assert_int_eq(c.rc, 0);
	ck_assert_str_eq(c.out, ansi);
	captured_free(&c);

	/* PNG into a file with -o, and to a (non-terminal) stdout */
	ck_assert_int_eq(srup_pict_png(&p, 5, &png, &png_len), SRUP_OK);
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	argv[5] = "png";
	argv[6] = "--scale=5";
	argv[7] = "-o";
	argv[8] = path;
	c = run_cmd(srup_cmd_pictograph, 9, argv);
	ck_assert_int_eq(c.rc, 0);
	ck_assert_uint_eq(c.out_len, 0);
	captured_free(&c);
	file = slurp_fd(fd, &file_len);
	ck_assert_uint_eq(file_len, png_len);
	ck_assert_mem_eq(file, png, png_len);
	free(file);
	close(fd);
	unlink(path);

	c = run_cmd(srup_cmd_pictograph, 7, argv);
	ck_assert_int_eq(c.rc, 0);
	ck_assert_uint_eq(c.out_len, png_len);
	ck_assert_mem_eq(c.out, png, png_len);
	captured_free(&c);

	free(svg);
	free(ansi);
	free(png);
}
END_TEST

START_TEST(test_cmd_pictograph_errors_and_help)
{
	const char *argv[16] = {"pictograph", "--help"};
	struct captured c;
	c = run_cmd(srup_cmd_pictograph, 2, argv);
	ck_assert_int_eq(c.rc, 0);
	ck_assert_ptr_nonnull(strstr(c.out, "usage: srup pictograph"));
	captured_free(&c);

	c = run_cmd(srup_cmd_pictograph, 1, argv);
	expect_usage_error(&c, "missing VALUE");
	argv[1] = "xyz";
	c = run_cmd(srup_cmd_pictograph, 2, argv);
	expect_usage_error(&c, "bad VALUE");
	argv[1] = paper_value;
	argv[2] = "--style";
	argv[3] = "rainbow";
	c = run_cmd(srup_cmd_pictograph, 4, argv);
	expect_usage_error(&c, "--style must be");
	argv[3] = "mono";
	argv[4] = "--format";
	argv[5] = "gif";
	c = run_cmd(srup_cmd_pictograph, 6, argv);
	expect_usage_error(&c, "--format must be");
	argv[5] = "svg";
	argv[6] = "--scale";
	argv[7] = "0";
	c = run_cmd(srup_cmd_pictograph, 8, argv);
	expect_usage_error(&c, "--scale must be");
	argv[7] = "65";
	c = run_cmd(srup_cmd_pictograph, 8, argv);
	expect_usage_error(&c, "--scale must be");
	argv[7] = "-3";
	c = run_cmd(srup_cmd_pictograph, 8, argv);
	expect_usage_error(&c, "--scale must be");
	argv[6] = "-o";
	c = run_cmd(srup_cmd_pictograph, 7, argv);
	expect_usage_error(&c, "needs a value");
	argv[7] = "/nonexistent-dir/x.svg";
	c = run_cmd(srup_cmd_pictograph, 8, argv);
	expect_usage_error(&c, "cannot open");
	argv[6] = paper_value;
	c = run_cmd(srup_cmd_pictograph, 7, argv);
	expect_usage_error(&c, "more than one VALUE");
}
END_TEST

START_TEST(test_cmd_pictograph_refuses_png_on_a_terminal)
{
	const char *argv[16] = {"pictograph", paper_value, "--format", "png"};
	struct captured c;
	int master = posix_openpt(O_RDWR | O_NOCTTY);
	int slave = -1;
	int saved_out = -1;
	int err_fd = temp_fd();
	int saved_err = dup(STDERR_FILENO);
	char *err = NULL;
	ck_assert_int_ge(master, 0);
	ck_assert_int_eq(grantpt(master), 0);
	ck_assert_int_eq(unlockpt(master), 0);
	slave = open(ptsname(master), O_RDWR | O_NOCTTY);
	ck_assert_int_ge(slave, 0);
	ck_assert(isatty(slave));
	fflush(stdout);
	fflush(stderr);
	saved_out = dup(STDOUT_FILENO);
	dup2(slave, STDOUT_FILENO);
	dup2(err_fd, STDERR_FILENO);
	c.rc = srup_cmd_pictograph(4, (char **)(uintptr_t)argv);
	fflush(stdout);
	fflush(stderr);
	dup2(saved_out, STDOUT_FILENO);
	dup2(saved_err, STDERR_FILENO);
	err = slurp_fd(err_fd, NULL);
	ck_assert_int_eq(c.rc, 3);
	ck_assert_ptr_nonnull(strstr(err, "refusing to write PNG to a terminal"));
	free(err);
	close(err_fd);
	close(slave);
	close(master);
	close(saved_out);
	close(saved_err);
}
END_TEST

Suite *present_suite(void)
{
	Suite *s = suite_create("present");
	TCase *tc = tcase_create("id128");
	tcase_add_test(tc, test_id128_paper_value_formats_back);
	tcase_add_test(tc, test_id128_roundtrips_random_values);
	tcase_add_loop_test(tc, test_id128_parse_rejects_bad_text, 0,
	                    (int)(sizeof bad_ids / sizeof bad_ids[0]));
	tcase_add_test(tc, test_id128_parse_needs_no_nul_and_checks_null);
	tcase_add_test(tc, test_id128_format_checks_space);
	suite_add_tcase(s, tc);

	tc = tcase_create("phrase");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_wordlist_sorted_unique_letters);
	tcase_add_test(tc, test_wordlist_no_two_words_within_edit_distance_one);
	tcase_add_test(tc, test_phrase_layout_matches_independent_bit_split);
	tcase_add_test(tc, test_phrase_edge_values);
	tcase_add_test(tc, test_phrase_roundtrips_many_values);
	tcase_add_test(tc, test_phrase_decode_ignores_case_and_spacing);
	tcase_add_test(tc, test_phrase_encode_checks_space);
	tcase_add_test(tc, test_phrase_decode_refuses_bad_input);
	suite_add_tcase(s, tc);

	tc = tcase_create("pictograph");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_pict_mono_corners_fixed_and_cells_decode);
	tcase_add_test(tc, test_pict_colour_cells_decode);
	tcase_add_test(tc, test_pict_make_rejects_bad_arguments);
	tcase_add_loop_test(tc, test_pict_png_valid_and_decodes_back, 0,
	                    (int)(sizeof png_scales / sizeof png_scales[0]));
	tcase_add_test(tc, test_pict_renderers_reject_bad_arguments);
	tcase_add_test(tc, test_pict_svg_deterministic_and_decodes_back);
	tcase_add_test(tc, test_pict_ansi_deterministic_and_decodes_back);
	tcase_add_test(tc, test_pict_different_values_differ);
	suite_add_tcase(s, tc);

	tc = tcase_create("commands");
	tcase_add_test(tc, test_cmd_phrase_prints_words_and_reverses);
	tcase_add_test(tc, test_cmd_phrase_errors_and_help);
	tcase_add_test(tc, test_cmd_pictograph_outputs_match_library);
	tcase_add_test(tc, test_cmd_pictograph_errors_and_help);
	tcase_add_test(tc, test_cmd_pictograph_refuses_png_on_a_terminal);
	suite_add_tcase(s, tc);
	return s;
}
