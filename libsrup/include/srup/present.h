/* SPDX-License-Identifier: MIT
 * srup/present.h - identity presentation: show a 128-bit value so that a person can compare what
 * a device and a server display (paper §8): 8-4-4-4-12 hex, an 11-word phrase, and 12x12 mono or
 * 8x8 four-colour pictographs rendered as SVG, PNG or ANSI text.
 * Pure functions: no global state, no I/O, safe to call from any thread. Nothing here says
 * whether a value is trustworthy; it only makes two values easy to compare. */
#ifndef SRUP_PRESENT_H
#define SRUP_PRESENT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- 128-bit values ------------------------------------------------------------------------ */

#define SRUP_ID128_LEN      16
#define SRUP_ID128_TEXT_MAX 37 /* "C4BF8105-8351-41E0-886F-D25F9A69C5AD" + NUL */

/* A 128-bit value (a UUID or any 16 bytes); b[0] is the most significant byte. */
struct srup_id128 {
	uint8_t b[SRUP_ID128_LEN];
};

/* Parse s[0, len) (need not be NUL-terminated): either 32 hex digits, or 8-4-4-4-12 hex digits
 * with hyphens at offsets 8, 13, 18 and 23; either case. Nothing else is accepted (no spaces,
 * braces or "0x"). Returns OK; SYNTAX (diag names the offset of the first bad character) with
 * *out zeroed; INVAL if s or out is NULL. */
enum srup_err srup_id128_parse(const char *s, size_t len, struct srup_id128 *out,
                               struct srup_diag *diag);

/* Write id as 8-4-4-4-12 UPPERCASE hex plus NUL (36 characters) into out[0, cap).
 * Returns OK; SPACE if cap < SRUP_ID128_TEXT_MAX (out[0] set to NUL when cap > 0);
 * INVAL on NULL. */
enum srup_err srup_id128_format(const struct srup_id128 *id, char *out, size_t cap);

/* ---- word phrase --------------------------------------------------------------------------- */

/* The 128 bits are read big-endian from b[0] as ten 12-bit fragments (bits 0..119), each an index
 * into a fixed list of 4096 English words (libsrup/WORDLIST.md), followed by the last 8 bits
 * padded on the right with the fixed bits 1010 (SRUP_PHRASE_PAD) to make an eleventh index.
 * So only every sixteenth word of the list can end a phrase; a wrong last word is detected. */
#define SRUP_PHRASE_WORDS    11
#define SRUP_PHRASE_PAD      0xAu /* the 4 fixed low bits of the last index */
#define SRUP_PHRASE_WORD_MAX 8    /* longest word of the list, in letters */
#define SRUP_PHRASE_TEXT_MAX (SRUP_PHRASE_WORDS * (SRUP_PHRASE_WORD_MAX + 1)) /* incl. NUL */

/* Write the phrase for id: 11 lowercase words separated by single spaces, NUL-terminated, into
 * out[0, cap). Returns OK; SPACE if the phrase does not fit (out[0] set to NUL when cap > 0; a
 * cap of SRUP_PHRASE_TEXT_MAX always fits); INVAL on NULL. */
enum srup_err srup_phrase_encode(const struct srup_id128 *id, char *out, size_t cap);

/* Read a phrase back: s[0, len) holds exactly 11 words of the list separated by any ASCII
 * whitespace (leading/trailing whitespace allowed), in any letter case. Returns OK with *out set;
 * SYNTAX with *out zeroed when a word is not in the list, the count is not 11, or the last word's
 * fixed bits are wrong - diag->offset is the offending word's byte offset (or len for a short
 * phrase) and diag->detail names the word; INVAL if s or out is NULL. */
enum srup_err srup_phrase_decode(const char *s, size_t len, struct srup_id128 *out,
                                 struct srup_diag *diag);

/* The list word at idx (0..4095): static lowercase text, or NULL if idx is out of range. */
const char *srup_phrase_word(unsigned idx);

/* ---- pictographs --------------------------------------------------------------------------- */

enum srup_pict_style {
	SRUP_PICT_MONO = 0,   /* 12x12 cells, one bit per cell, a fixed dark 2x2 block per corner */
	SRUP_PICT_COLOUR = 1, /* 8x8 cells, two bits per cell, four colours */
};

#define SRUP_PICT_SIDE_MAX      12
#define SRUP_PICT_QUIET         2   /* quiet border, in cells, around SVG and PNG output */
#define SRUP_PICT_QUIET_ANSI    1   /* quiet border, in cells, around ANSI output */
#define SRUP_PICT_SCALE_DEFAULT 16  /* pixels per cell when scale is 0 */
#define SRUP_PICT_SCALE_MAX     64u /* largest pixels per cell accepted */

/* Palette, 0xRRGGBB. Mono: 0 = white, 1 = black. Colour (cell value 0..3, dark to light):
 * black, Okabe-Ito blue, Okabe-Ito orange, white - see present.c for why these four. */
#define SRUP_PICT_RGB_BLACK  0x000000u
#define SRUP_PICT_RGB_BLUE   0x0072B2u
#define SRUP_PICT_RGB_ORANGE 0xE69F00u
#define SRUP_PICT_RGB_WHITE  0xFFFFFFu
#define SRUP_PICT_RGB_FRAME  0x808080u /* thin frame drawn in the quiet border (SVG, PNG) */

/* A pictograph before rendering: the grid of cell values. Cells are numbered row-major from the
 * top left. Mono: the 2x2 block in each corner is fixed to 1 (dark); the other 128 cells carry
 * bit i of the value (i = 0 the most significant bit of b[0]) in row-major order, 1 = dark.
 * Colour: cell i carries bits 2i and 2i+1 (2i the more significant) as a value 0..3. */
struct srup_pict {
	struct srup_id128 id; /* the value drawn */
	enum srup_pict_style style;
	unsigned side; /* cells per side: 12 (mono) or 8 (colour) */
	uint8_t cell[SRUP_PICT_SIDE_MAX][SRUP_PICT_SIDE_MAX]; /* [row][column]; unused entries 0 */
};

/* Build the grid for id. Same value and style, same grid, always. Returns OK; INVAL on NULL or an
 * unknown style (*out untouched). */
enum srup_err srup_pict_make(const struct srup_id128 *id, enum srup_pict_style style,
                             struct srup_pict *out);

/* Colour of cell (row, col) as 0xRRGGBB, from the palette above (white if out of range). */
uint32_t srup_pict_cell_rgb(const struct srup_pict *p, unsigned row, unsigned col);

/* Renderers. Each allocates its output with malloc(); on OK the caller owns *out and frees it with
 * free(); on failure *out is NULL and *out_len 0. scale is pixels per cell (0 means
 * SRUP_PICT_SCALE_DEFAULT; more than SRUP_PICT_SCALE_MAX is INVAL). The image is white with a
 * quiet border of SRUP_PICT_QUIET cells and a thin grey frame (max(1, scale/8) px) just outside
 * the grid, so that white cells at the edge of a colour grid keep its outline.
 * Returns OK, INVAL (NULL argument, bad scale, or a grid not made by srup_pict_make), NOMEM. */

/* SVG 1.1 text, NUL-terminated (*out_len excludes the NUL), (side + 2*QUIET) * scale px square. */
enum srup_err srup_pict_svg(const struct srup_pict *p, unsigned scale, char **out, size_t *out_len);

/* PNG: 8-bit RGB, not interlaced, (side + 2*QUIET) * scale px square. Chunks written here; the
 * IDAT data compressed by zlib (best compression; a few hundred bytes to a few KB), no libpng. */
enum srup_err srup_pict_png(const struct srup_pict *p, unsigned scale, uint8_t **out,
                            size_t *out_len);

/* Terminal text: each cell is two spaces on a 24-bit background colour (ESC[48;2;R;G;Bm), with a
 * white quiet border of SRUP_PICT_QUIET_ANSI cells; every line ends with ESC[0m and '\n'.
 * NUL-terminated; *out_len excludes the NUL. */
enum srup_err srup_pict_ansi(const struct srup_pict *p, char **out, size_t *out_len);

#ifdef __cplusplus
}
#endif
#endif
