/* SPDX-License-Identifier: MIT
 * present.c - identity presentation of 128-bit values: hex text, word phrases, pictographs
 * (grid, SVG, PNG, ANSI). Pure computation; no I/O, no global state. It does not decide which
 * value to show: callers pass the value both sides must compare. */
#include "srup/present.h"

#include "srup/id.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "export.h"
#include "hex.h"
#include "wordlist.h"

#if defined(__GNUC__)
#define PRESENT_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define PRESENT_PRINTF(f, a)
#endif

/* ---- diagnostics --------------------------------------------------------------------------- */

static void set_diag(struct srup_diag *diag, size_t offset, const char *field, const char *fmt, ...)
        PRESENT_PRINTF(4, 5);

static void set_diag(struct srup_diag *diag, size_t offset, const char *field, const char *fmt, ...)
{
	va_list ap;
	if (diag == NULL) {
		return;
	}
	diag->offset = offset;
	diag->field = field;
	va_start(ap, fmt);
	(void)vsnprintf(diag->detail, sizeof diag->detail, fmt, ap);
	va_end(ap);
}

/* Copy s[0, len) for quoting in a diagnostic: at most 32 characters, non-printable bytes as '?'. */
static void quote_word(const char *s, size_t len, char out[40])
{
	size_t n = len > 32 ? 32 : len;
	size_t i = 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		out[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	if (len > n) {
		memcpy(out + n, "...", 3);
		n += 3;
	}
	out[n] = '\0';
}

/* ---- 128-bit values ------------------------------------------------------------------------ */

SRUP_API enum srup_err srup_id128_parse(const char *s, size_t len, struct srup_id128 *out,
                                        struct srup_diag *diag)
{
	struct srup_id128 v;
	size_t i = 0;
	unsigned nibble = 0;
	int hyphenated = 0;
	if (s == NULL || out == NULL) {
		return SRUP_ERR_INVAL;
	}
	memset(out, 0, sizeof *out);
	memset(&v, 0, sizeof v);
	if (len == 36) {
		hyphenated = 1;
	} else if (len != 32) {
		set_diag(diag, len < 36 ? len : 36, "id128",
		         "expected 32 hex digits or 8-4-4-4-12 form, got %zu characters", len);
		return SRUP_ERR_SYNTAX;
	}
	for (i = 0; i < len; i++) {
		int d = 0;
		int want_hyphen = hyphenated && (i == 8 || i == 13 || i == 18 || i == 23);
		if (want_hyphen) {
			if (s[i] != '-') {
				set_diag(diag, i, "id128", "expected '-' at offset %zu", i);
				return SRUP_ERR_SYNTAX;
			}
			continue;
		}
		d = srup__hex_value(s[i]);
		if (d < 0) {
			set_diag(diag, i, "id128", "not a hex digit at offset %zu", i);
			return SRUP_ERR_SYNTAX;
		}
		v.b[nibble / 2] = (uint8_t)(v.b[nibble / 2] | (unsigned)d << ((nibble % 2) ? 0 : 4));
		nibble++;
	}
	*out = v;
	return SRUP_OK;
}

SRUP_API enum srup_err srup_id128_format(const struct srup_id128 *id, char *out, size_t cap)
{
	char hex[2 * SRUP_ID128_LEN + 1];
	size_t pos = 0;
	size_t i = 0;
	if (id == NULL || out == NULL) {
		return SRUP_ERR_INVAL;
	}
	if (cap < SRUP_ID128_TEXT_MAX) {
		if (cap > 0) {
			out[0] = '\0';
		}
		return SRUP_ERR_SPACE;
	}
	/* the one hex encoder (lowercase), then upper case and the hyphens of 8-4-4-4-12 */
	if (srup_hex_encode(id->b, SRUP_ID128_LEN, hex, sizeof hex) != SRUP_OK) {
		out[0] = '\0';
		return SRUP_ERR_INVAL; /* cannot happen: hex has the room */
	}
	for (i = 0; i < 2 * SRUP_ID128_LEN; i++) {
		if (i == 8 || i == 12 || i == 16 || i == 20) {
			out[pos++] = '-';
		}
		out[pos++] = hex[i] >= 'a' ? (char)(hex[i] - 'a' + 'A') : hex[i];
	}
	out[pos] = '\0';
	return SRUP_OK;
}

/* ---- word phrase --------------------------------------------------------------------------- */

/* Bit i of the value, i = 0 being the most significant bit of b[0]. */
static unsigned id_bit(const struct srup_id128 *id, unsigned i)
{
	return (unsigned)(id->b[i / 8] >> (7 - i % 8)) & 1u;
}

static void id_set_bit(struct srup_id128 *id, unsigned i, unsigned v)
{
	if (v != 0) {
		id->b[i / 8] = (uint8_t)(id->b[i / 8] | (1u << (7 - i % 8)));
	}
}

/* The eleven 12-bit word indexes for id (see present.h for the bit layout). */
static void phrase_indexes(const struct srup_id128 *id, unsigned idx[SRUP_PHRASE_WORDS])
{
	unsigned w = 0;
	unsigned k = 0;
	for (w = 0; w < SRUP_PHRASE_WORDS - 1; w++) {
		unsigned v = 0;
		for (k = 0; k < 12; k++) {
			v = (v << 1) | id_bit(id, w * 12 + k);
		}
		idx[w] = v;
	}
	idx[SRUP_PHRASE_WORDS - 1] = ((unsigned)id->b[15] << 4) | SRUP_PHRASE_PAD;
}

SRUP_API const char *srup_phrase_word(unsigned idx)
{
	return srup__wordlist_at(idx);
}

SRUP_API enum srup_err srup_phrase_encode(const struct srup_id128 *id, char *out, size_t cap)
{
	unsigned idx[SRUP_PHRASE_WORDS];
	size_t need = 0;
	size_t pos = 0;
	unsigned w = 0;
	if (id == NULL || out == NULL) {
		return SRUP_ERR_INVAL;
	}
	phrase_indexes(id, idx);
	for (w = 0; w < SRUP_PHRASE_WORDS; w++) {
		need += strlen(srup__wordlist_at(idx[w])) + 1; /* word + separator or NUL */
	}
	if (cap < need) {
		if (cap > 0) {
			out[0] = '\0';
		}
		return SRUP_ERR_SPACE;
	}
	for (w = 0; w < SRUP_PHRASE_WORDS; w++) {
		const char *word = srup__wordlist_at(idx[w]);
		size_t n = strlen(word);
		if (w > 0) {
			out[pos++] = ' ';
		}
		memcpy(out + pos, word, n);
		pos += n;
	}
	out[pos] = '\0';
	return SRUP_OK;
}

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

SRUP_API enum srup_err srup_phrase_decode(const char *s, size_t len, struct srup_id128 *out,
                                          struct srup_diag *diag)
{
	unsigned idx[SRUP_PHRASE_WORDS];
	unsigned count = 0;
	size_t pos = 0;
	size_t last_start = 0;
	size_t last_len = 0;
	char shown[40];
	struct srup_id128 v;
	unsigned w = 0;
	unsigned k = 0;
	if (s == NULL || out == NULL) {
		return SRUP_ERR_INVAL;
	}
	memset(out, 0, sizeof *out);
	while (pos < len) {
		size_t start = 0;
		size_t n = 0;
		unsigned found = 0;
		if (is_space(s[pos])) {
			pos++;
			continue;
		}
		start = pos;
		while (pos < len && !is_space(s[pos])) {
			pos++;
		}
		n = pos - start;
		quote_word(s + start, n, shown);
		if (count == SRUP_PHRASE_WORDS) {
			set_diag(diag, start, "phrase", "too many words: \"%s\" would be word %u of %u", shown,
			         count + 1, (unsigned)SRUP_PHRASE_WORDS);
			return SRUP_ERR_SYNTAX;
		}
		if (!srup__wordlist_find(s + start, n, &found)) {
			set_diag(diag, start, "phrase", "unknown word \"%s\" (word %u)", shown, count + 1);
			return SRUP_ERR_SYNTAX;
		}
		idx[count++] = found;
		last_start = start;
		last_len = n;
	}
	if (count != SRUP_PHRASE_WORDS) {
		set_diag(diag, len, "phrase", "expected %u words, got %u", (unsigned)SRUP_PHRASE_WORDS,
		         count);
		return SRUP_ERR_SYNTAX;
	}
	if ((idx[SRUP_PHRASE_WORDS - 1] & 0x0fu) != SRUP_PHRASE_PAD) {
		quote_word(s + last_start, last_len, shown);
		set_diag(diag, last_start, "phrase",
		         "\"%s\" cannot be the last word (its fixed bits are wrong)", shown);
		return SRUP_ERR_SYNTAX;
	}
	memset(&v, 0, sizeof v);
	for (w = 0; w < SRUP_PHRASE_WORDS - 1; w++) {
		for (k = 0; k < 12; k++) {
			id_set_bit(&v, w * 12 + k, (idx[w] >> (11 - k)) & 1u);
		}
	}
	v.b[15] = (uint8_t)(idx[SRUP_PHRASE_WORDS - 1] >> 4);
	*out = v;
	return SRUP_OK;
}

/* ---- pictograph grid ----------------------------------------------------------------------- */

/* Colour palette, by cell value 0..3 (dark to light). Chosen so that the four stay apart for
 * people with any of the three dichromacies and even with no colour vision at all:
 *  - black, Okabe-Ito blue #0072B2, Okabe-Ito orange #E69F00, white. The Okabe-Ito set
 *    ("Color Universal Design", 2002) was designed to stay distinct under protanopia,
 *    deuteranopia and tritanopia;
 *  - their CIELAB lightness is 0 / 46 / 71 / 100, so they differ in brightness too: a grey
 *    rendering (or a monochrome screen, or achromatopsia) still separates all four. Sky blue
 *    #56B4E9 was rejected because its lightness (70) is that of the orange (71);
 *  - simulated with the Machado et al. (2009) full-severity matrices in linear RGB, the smallest
 *    pairwise CIE76 difference is 62 (protanopia), 63 (deuteranopia) and 55 (tritanopia) units,
 *    against about 2.3 for a just-noticeable difference. (Computed once while choosing; the
 *    same check rejected the Okabe-Ito yellow #F0E442, 22 units from white under tritanopia.) */
/* clang-format off */
static const uint32_t colour_palette[4] = {
	SRUP_PICT_RGB_BLACK, SRUP_PICT_RGB_BLUE, SRUP_PICT_RGB_ORANGE, SRUP_PICT_RGB_WHITE,
};
/* clang-format on */

#define MONO_SIDE   12u
#define COLOUR_SIDE 8u

static int mono_is_corner(unsigned r, unsigned c)
{
	return (r < 2 || r >= MONO_SIDE - 2) && (c < 2 || c >= MONO_SIDE - 2);
}

SRUP_API enum srup_err srup_pict_make(const struct srup_id128 *id, enum srup_pict_style style,
                                      struct srup_pict *out)
{
	struct srup_pict p;
	unsigned r = 0;
	unsigned c = 0;
	unsigned bit = 0;
	if (id == NULL || out == NULL) {
		return SRUP_ERR_INVAL;
	}
	memset(&p, 0, sizeof p);
	p.id = *id;
	p.style = style;
	switch (style) {
		case SRUP_PICT_MONO:
			p.side = MONO_SIDE;
			for (r = 0; r < MONO_SIDE; r++) {
				for (c = 0; c < MONO_SIDE; c++) {
					if (mono_is_corner(r, c)) {
						p.cell[r][c] = 1;
					} else {
						p.cell[r][c] = (uint8_t)id_bit(id, bit);
						bit++;
					}
				}
			}
			break;
		case SRUP_PICT_COLOUR:
			p.side = COLOUR_SIDE;
			for (bit = 0; bit < 128; bit += 2) {
				unsigned cellno = bit / 2;
				p.cell[cellno / COLOUR_SIDE][cellno % COLOUR_SIDE] =
				        (uint8_t)(id_bit(id, bit) << 1 | id_bit(id, bit + 1));
			}
			break;
		default:
			return SRUP_ERR_INVAL;
	}
	*out = p;
	return SRUP_OK;
}

SRUP_API uint32_t srup_pict_cell_rgb(const struct srup_pict *p, unsigned row, unsigned col)
{
	if (p == NULL || row >= p->side || col >= p->side || p->side > SRUP_PICT_SIDE_MAX) {
		return SRUP_PICT_RGB_WHITE;
	}
	if (p->style == SRUP_PICT_MONO) {
		return p->cell[row][col] != 0 ? SRUP_PICT_RGB_BLACK : SRUP_PICT_RGB_WHITE;
	}
	return colour_palette[p->cell[row][col] & 3u];
}

/* A grid is renderable only if it is consistent: known style, matching side, values in range. */
static int pict_valid(const struct srup_pict *p)
{
	unsigned r = 0;
	unsigned c = 0;
	unsigned maxv = 0;
	if (p->style == SRUP_PICT_MONO && p->side == MONO_SIDE) {
		maxv = 1;
	} else if (p->style == SRUP_PICT_COLOUR && p->side == COLOUR_SIDE) {
		maxv = 3;
	} else {
		return 0;
	}
	for (r = 0; r < p->side; r++) {
		for (c = 0; c < p->side; c++) {
			if (p->cell[r][c] > maxv) {
				return 0;
			}
		}
	}
	return 1;
}

/* Geometry of the SVG and PNG images, in pixels. */
struct geom {
	unsigned scale; /* pixels per cell */
	unsigned frame; /* frame thickness */
	unsigned g0;    /* first pixel of the grid (both axes) */
	unsigned g1;    /* one past the last pixel of the grid */
	unsigned size;  /* image width and height */
};

static enum srup_err geom_init(const struct srup_pict *p, unsigned scale, struct geom *g)
{
	if (scale == 0) {
		scale = SRUP_PICT_SCALE_DEFAULT;
	}
	if (scale > SRUP_PICT_SCALE_MAX || !pict_valid(p)) {
		return SRUP_ERR_INVAL;
	}
	g->scale = scale;
	g->frame = scale / 8 > 0 ? scale / 8 : 1;
	g->g0 = SRUP_PICT_QUIET * scale;
	g->g1 = g->g0 + p->side * scale;
	g->size = g->g1 + SRUP_PICT_QUIET * scale;
	return SRUP_OK;
}

static uint32_t pixel_rgb(const struct srup_pict *p, const struct geom *g, unsigned x, unsigned y)
{
	if (x >= g->g0 && x < g->g1 && y >= g->g0 && y < g->g1) {
		return srup_pict_cell_rgb(p, (y - g->g0) / g->scale, (x - g->g0) / g->scale);
	}
	if (x + g->frame >= g->g0 && x < g->g1 + g->frame && y + g->frame >= g->g0 &&
	    y < g->g1 + g->frame) {
		return SRUP_PICT_RGB_FRAME;
	}
	return SRUP_PICT_RGB_WHITE;
}

/* ---- growable text buffer (SVG, ANSI) ------------------------------------------------------ */

struct sbuf {
	char *p;
	size_t len;
	size_t cap;
	enum srup_err err; /* first failure; later appends do nothing */
};

static void sb_printf(struct sbuf *sb, const char *fmt, ...) PRESENT_PRINTF(2, 3);

static void sb_printf(struct sbuf *sb, const char *fmt, ...)
{
	va_list ap;
	int n = 0;
	if (sb->err != SRUP_OK) {
		return;
	}
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		sb->err = SRUP_ERR_INVAL;
		return;
	}
	if (sb->cap - sb->len < (size_t)n + 1) {
		size_t ncap = sb->cap > 0 ? sb->cap : 1024;
		char *np = NULL;
		while (ncap - sb->len < (size_t)n + 1) {
			ncap *= 2;
		}
		np = realloc(sb->p, ncap);
		if (np == NULL) {
			sb->err = SRUP_ERR_NOMEM;
			return;
		}
		sb->p = np;
		sb->cap = ncap;
	}
	va_start(ap, fmt);
	(void)vsnprintf(sb->p + sb->len, sb->cap - sb->len, fmt, ap);
	va_end(ap);
	sb->len += (size_t)n;
}

static enum srup_err sb_finish(struct sbuf *sb, char **out, size_t *out_len)
{
	if (sb->err == SRUP_OK && sb->p == NULL) {
		sb->err = SRUP_ERR_INVAL;
	}
	if (sb->err != SRUP_OK) {
		free(sb->p);
		sb->p = NULL;
		return sb->err;
	}
	*out = sb->p;
	*out_len = sb->len;
	return SRUP_OK;
}

/* ---- SVG ----------------------------------------------------------------------------------- */

SRUP_API enum srup_err srup_pict_svg(const struct srup_pict *p, unsigned scale, char **out,
                                     size_t *out_len)
{
	struct sbuf sb = {NULL, 0, 0, SRUP_OK};
	struct geom g;
	char text[SRUP_ID128_TEXT_MAX];
	unsigned r = 0;
	unsigned c = 0;
	enum srup_err rc = SRUP_OK;
	if (out == NULL || out_len == NULL) {
		return SRUP_ERR_INVAL;
	}
	*out = NULL;
	*out_len = 0;
	if (p == NULL) {
		return SRUP_ERR_INVAL;
	}
	rc = geom_init(p, scale, &g);
	if (rc != SRUP_OK) {
		return rc;
	}
	(void)srup_id128_format(&p->id, text, sizeof text);
	sb_printf(&sb, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
	sb_printf(&sb,
	          "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%u\" "
	          "height=\"%u\" viewBox=\"0 0 %u %u\" shape-rendering=\"crispEdges\">\n",
	          g.size, g.size, g.size, g.size);
	sb_printf(&sb, "<title>SRUP identity %s (%s)</title>\n", text,
	          p->style == SRUP_PICT_MONO ? "mono" : "colour");
	sb_printf(&sb, "<rect width=\"%u\" height=\"%u\" fill=\"#FFFFFF\"/>\n", g.size, g.size);
	sb_printf(&sb, "<rect x=\"%u\" y=\"%u\" width=\"%u\" height=\"%u\" fill=\"#%06X\"/>\n",
	          g.g0 - g.frame, g.g0 - g.frame, g.g1 - g.g0 + 2 * g.frame, g.g1 - g.g0 + 2 * g.frame,
	          (unsigned)SRUP_PICT_RGB_FRAME);
	/* One rectangle per horizontal run of equal colour: fewer elements, same picture. */
	for (r = 0; r < p->side; r++) {
		c = 0;
		while (c < p->side) {
			uint32_t rgb = srup_pict_cell_rgb(p, r, c);
			unsigned run = 1;
			while (c + run < p->side && srup_pict_cell_rgb(p, r, c + run) == rgb) {
				run++;
			}
			sb_printf(&sb, "<rect x=\"%u\" y=\"%u\" width=\"%u\" height=\"%u\" fill=\"#%06X\"/>\n",
			          g.g0 + c * g.scale, g.g0 + r * g.scale, run * g.scale, g.scale,
			          (unsigned)rgb);
			c += run;
		}
	}
	sb_printf(&sb, "</svg>\n");
	return sb_finish(&sb, out, out_len);
}

/* ---- ANSI ---------------------------------------------------------------------------------- */

SRUP_API enum srup_err srup_pict_ansi(const struct srup_pict *p, char **out, size_t *out_len)
{
	struct sbuf sb = {NULL, 0, 0, SRUP_OK};
	unsigned total = 0;
	unsigned r = 0;
	unsigned c = 0;
	if (out == NULL || out_len == NULL) {
		return SRUP_ERR_INVAL;
	}
	*out = NULL;
	*out_len = 0;
	if (p == NULL || !pict_valid(p)) {
		return SRUP_ERR_INVAL;
	}
	total = p->side + 2 * SRUP_PICT_QUIET_ANSI;
	for (r = 0; r < total; r++) {
		uint32_t prev = 0;
		int have_prev = 0;
		for (c = 0; c < total; c++) {
			uint32_t rgb = SRUP_PICT_RGB_WHITE;
			if (r >= SRUP_PICT_QUIET_ANSI && r < SRUP_PICT_QUIET_ANSI + p->side &&
			    c >= SRUP_PICT_QUIET_ANSI && c < SRUP_PICT_QUIET_ANSI + p->side) {
				rgb = srup_pict_cell_rgb(p, r - SRUP_PICT_QUIET_ANSI, c - SRUP_PICT_QUIET_ANSI);
			}
			if (!have_prev || rgb != prev) {
				sb_printf(&sb, "\x1b[48;2;%u;%u;%um", (unsigned)(rgb >> 16) & 0xffu,
				          (unsigned)(rgb >> 8) & 0xffu, (unsigned)rgb & 0xffu);
				prev = rgb;
				have_prev = 1;
			}
			sb_printf(&sb, "  ");
		}
		sb_printf(&sb, "\x1b[0m\n");
	}
	return sb_finish(&sb, out, out_len);
}

/* ---- PNG ----------------------------------------------------------------------------------- */

struct bwriter {
	uint8_t *p;
	size_t off;
};

static void put_u32be(struct bwriter *w, uint32_t v)
{
	w->p[w->off++] = (uint8_t)(v >> 24);
	w->p[w->off++] = (uint8_t)(v >> 16);
	w->p[w->off++] = (uint8_t)(v >> 8);
	w->p[w->off++] = (uint8_t)v;
}

static void put_bytes(struct bwriter *w, const void *src, size_t n)
{
	memcpy(w->p + w->off, src, n);
	w->off += n;
}

/* Write one chunk: length, type, data, CRC over type and data. */
static void put_chunk(struct bwriter *w, const char type[4], const uint8_t *data, size_t n)
{
	size_t crc_from = 0;
	put_u32be(w, (uint32_t)n);
	crc_from = w->off;
	put_bytes(w, type, 4);
	if (n > 0) {
		put_bytes(w, data, n);
	}
	/* PNG's CRC-32 is zlib's (ISO 3309), over type and data */
	put_u32be(w, (uint32_t)crc32(0L, w->p + crc_from, (uInt)(n + 4)));
}

SRUP_API enum srup_err srup_pict_png(const struct srup_pict *p, unsigned scale, uint8_t **out,
                                     size_t *out_len)
{
	static const uint8_t signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
	struct geom g;
	struct bwriter w = {NULL, 0};
	uint8_t ihdr[13];
	uint8_t *raw = NULL;
	uint8_t *zbuf = NULL;
	size_t row_len = 0;
	size_t raw_len = 0;
	uLongf zlen = 0;
	uLong zbound = 0;
	size_t total = 0;
	unsigned x = 0;
	unsigned y = 0;
	enum srup_err rc = SRUP_OK;
	if (out == NULL || out_len == NULL) {
		return SRUP_ERR_INVAL;
	}
	*out = NULL;
	*out_len = 0;
	if (p == NULL) {
		return SRUP_ERR_INVAL;
	}
	rc = geom_init(p, scale, &g);
	if (rc != SRUP_OK) {
		return rc;
	}

	/* Scanlines: filter type 0 (None), then RGB triples. At most 1024 x 1024 px here. */
	row_len = 1 + 3 * (size_t)g.size;
	raw_len = row_len * g.size;
	raw = malloc(raw_len);
	if (raw == NULL) {
		rc = SRUP_ERR_NOMEM;
		goto out;
	}
	for (y = 0; y < g.size; y++) {
		uint8_t *row = raw + (size_t)y * row_len;
		row[0] = 0;
		for (x = 0; x < g.size; x++) {
			uint32_t rgb = pixel_rgb(p, &g, x, y);
			row[1 + 3 * (size_t)x] = (uint8_t)(rgb >> 16);
			row[2 + 3 * (size_t)x] = (uint8_t)(rgb >> 8);
			row[3 + 3 * (size_t)x] = (uint8_t)rgb;
		}
	}

	/* The IDAT data is one zlib stream (RFC 1950) of the scanlines. Runs of one colour
	 * compress well: a 12x12 pictograph at scale 16 is a few KB instead of ~200 KB. */
	zbound = compressBound((uLong)raw_len);
	zbuf = malloc(zbound);
	if (zbuf == NULL) {
		rc = SRUP_ERR_NOMEM;
		goto out;
	}
	zlen = zbound;
	if (compress2(zbuf, &zlen, raw, (uLong)raw_len, Z_BEST_COMPRESSION) != Z_OK) {
		rc = SRUP_ERR_NOMEM; /* compress2 fails only for lack of memory or room */
		goto out;
	}

	/* IHDR: width, height, bit depth 8, colour type 2 (RGB), deflate, filter 0, no interlace. */
	ihdr[0] = (uint8_t)(g.size >> 24);
	ihdr[1] = (uint8_t)(g.size >> 16);
	ihdr[2] = (uint8_t)(g.size >> 8);
	ihdr[3] = (uint8_t)g.size;
	memcpy(ihdr + 4, ihdr, 4);
	ihdr[8] = 8;
	ihdr[9] = 2;
	ihdr[10] = 0;
	ihdr[11] = 0;
	ihdr[12] = 0;

	total = sizeof signature + (12 + sizeof ihdr) + (12 + (size_t)zlen) + 12;
	w.p = malloc(total);
	if (w.p == NULL) {
		rc = SRUP_ERR_NOMEM;
		goto out;
	}
	put_bytes(&w, signature, sizeof signature);
	put_chunk(&w, "IHDR", ihdr, sizeof ihdr);
	put_chunk(&w, "IDAT", zbuf, (size_t)zlen);
	put_chunk(&w, "IEND", NULL, 0);
	*out = w.p;
	*out_len = w.off;
	w.p = NULL;
out:
	free(raw);
	free(zbuf);
	free(w.p);
	return rc;
}
