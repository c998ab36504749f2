/* SPDX-License-Identifier: MIT
 * cmd_qr.c - `srup qr URL`: a QR code (libqrencode) of a registration URL, to scan when setting
 * up a device (paper section 4.5), as SVG, PNG (deflated with zlib) or ANSI terminal colours. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <qrencode.h>
#include <zlib.h>

#include "cmds.h"
#include "util.h"

#define QR_QUIET 4 /* modules of white border */

static void help(FILE *f)
{
	fprintf(f, "usage: srup qr URL [--format svg|png|ansi] [--scale PX] [--out FILE]\n"
	           "\n"
	           "Draw URL (e.g. the registration service's address) as a QR code, error correction\n"
	           "level M, with a white border of 4 modules.\n"
	           "  --format svg   SVG text (default); png: a PNG image; ansi: terminal colours\n"
	           "  --scale PX     pixels per module for png, 1..32 (default 8)\n"
	           "  --out FILE     write to FILE instead of standard output\n"
	           "PNG is not written to a terminal: use --out FILE or redirect.\n"
	           "\n"
	           "Exit codes: 0 ok, 3 usage, I/O or encoding errors.\n");
}

static int dark(const QRcode *q, int x, int y)
{
	x -= QR_QUIET;
	y -= QR_QUIET;
	return x >= 0 && y >= 0 && x < q->width && y < q->width && (q->data[y * q->width + x] & 1);
}

static void put32(unsigned char *p, unsigned long v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static int chunk(FILE *f, const char *type, const unsigned char *data, size_t len)
{
	unsigned char hdr[8];
	unsigned char crc[4];
	uLong c = crc32(0L, (const Bytef *)type, 4);

	put32(hdr, (unsigned long)len);
	memcpy(hdr + 4, type, 4);
	if (len > 0) {
		c = crc32(c, data, (uInt)len);
	}
	put32(crc, c);
	return fwrite(hdr, 1, 8, f) == 8 && (len == 0 || fwrite(data, 1, len, f) == len) &&
	                       fwrite(crc, 1, 4, f) == 4
	               ? 0
	               : -1;
}

/* 1-bit greyscale PNG, one filter byte (none) per row. */
static int write_png(FILE *f, const QRcode *q, unsigned scale)
{
	static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
	unsigned side = ((unsigned)q->width + 2 * QR_QUIET) * scale;
	size_t row = 1 + (side + 7) / 8;
	size_t raw_len = row * side;
	unsigned char *raw = calloc(1, raw_len);
	uLongf z_len = compressBound((uLong)raw_len);
	unsigned char *z = malloc(z_len);
	unsigned char ihdr[13];
	unsigned x;
	unsigned y;
	int rc = -1;

	if (raw == NULL || z == NULL) {
		goto out;
	}
	for (y = 0; y < side; y++) {
		unsigned char *r = raw + y * row;

		for (x = 0; x < side; x++) {
			if (!dark(q, (int)(x / scale), (int)(y / scale))) {
				r[1 + x / 8] |= (unsigned char)(0x80 >> (x % 8)); /* 1 = white */
			}
		}
	}
	if (compress2(z, &z_len, raw, (uLong)raw_len, 9) != Z_OK) {
		goto out;
	}
	put32(ihdr, side);
	put32(ihdr + 4, side);
	ihdr[8] = 1;  /* bit depth */
	ihdr[9] = 0;  /* greyscale */
	ihdr[10] = 0; /* deflate */
	ihdr[11] = 0; /* adaptive filtering (type 0 rows) */
	ihdr[12] = 0; /* not interlaced */
	if (fwrite(sig, 1, 8, f) == 8 && chunk(f, "IHDR", ihdr, 13) == 0 &&
	    chunk(f, "IDAT", z, z_len) == 0 && chunk(f, "IEND", NULL, 0) == 0) {
		rc = 0;
	}
out:
	free(raw);
	free(z);
	return rc;
}

static int write_svg(FILE *f, const QRcode *q)
{
	int side = q->width + 2 * QR_QUIET;
	int x;
	int y;

	fprintf(f,
	        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" width=\"%d\" "
	        "height=\"%d\" shape-rendering=\"crispEdges\">\n<rect width=\"100%%\" height=\"100%%\" "
	        "fill=\"#fff\"/>\n<path fill=\"#000\" d=\"",
	        side, side, side * 8, side * 8);
	for (y = 0; y < side; y++) {
		for (x = 0; x < side; x++) {
			if (dark(q, x, y)) {
				fprintf(f, "M%d %dh1v1h-1z", x, y);
			}
		}
	}
	fprintf(f, "\"/>\n</svg>\n");
	return ferror(f) ? -1 : 0;
}

static int write_ansi(FILE *f, const QRcode *q)
{
	int side = q->width + 2 * QR_QUIET;
	int x;
	int y;

	for (y = 0; y < side; y++) {
		for (x = 0; x < side; x++) {
			fputs(dark(q, x, y) ? "\033[48;2;0;0;0m  " : "\033[48;2;255;255;255m  ", f);
		}
		fputs("\033[0m\n", f);
	}
	return ferror(f) ? -1 : 0;
}

int srup_cmd_qr(int argc, char **argv)
{
	const char *format = NULL;
	const char *scale_s = NULL;
	const char *out_path = NULL;
	const struct tool_opt opts[] = {
	        {"format", &format, NULL}, {"scale", &scale_s, NULL}, {"out", &out_path, NULL}};
	const char *pos[1];
	size_t n_pos = 0;
	unsigned long scale = 8;
	QRcode *q;
	FILE *f = stdout;
	int rc;

	switch (tool_parse_args(argc, argv, opts, 3, pos, 1, &n_pos)) {
		case TOOL_PARSE_HELP:
			help(stdout);
			return SRUP_EXIT_OK;
		case TOOL_PARSE_ERROR:
			return SRUP_EXIT_USAGE;
		default:
			break;
	}
	if (n_pos != 1 || pos[0][0] == '\0' || strlen(pos[0]) > 2048) {
		tool_err("qr", "give one URL of 1..2048 characters (see srup qr --help)");
		return SRUP_EXIT_USAGE;
	}
	if (format == NULL) {
		format = "svg";
	}
	if (strcmp(format, "svg") != 0 && strcmp(format, "png") != 0 && strcmp(format, "ansi") != 0) {
		tool_err("qr", "--format must be svg, png or ansi, not '%s'", format);
		return SRUP_EXIT_USAGE;
	}
	if (scale_s != NULL) {
		char *end = NULL;

		scale = strtoul(scale_s, &end, 10);
		if (*end != '\0' || scale < 1 || scale > 32) {
			tool_err("qr", "--scale takes 1..32");
			return SRUP_EXIT_USAGE;
		}
	}
	if (strcmp(format, "png") == 0 && out_path == NULL && isatty(fileno(stdout))) {
		tool_err("qr", "PNG is not written to a terminal: use --out FILE or redirect");
		return SRUP_EXIT_USAGE;
	}
	q = QRcode_encodeString(pos[0], 0, QR_ECLEVEL_M, QR_MODE_8, 1);
	if (q == NULL) {
		tool_err("qr", "cannot encode this URL as a QR code");
		return SRUP_EXIT_USAGE;
	}
	if (out_path != NULL) {
		f = fopen(out_path, "wb");
		if (f == NULL) {
			tool_err("qr", "cannot write %s", out_path);
			QRcode_free(q);
			return SRUP_EXIT_USAGE;
		}
	}
	rc = strcmp(format, "png") == 0   ? write_png(f, q, (unsigned)scale)
	     : strcmp(format, "svg") == 0 ? write_svg(f, q)
	                                  : write_ansi(f, q);
	QRcode_free(q);
	if (f != stdout) {
		rc |= fclose(f) != 0 ? -1 : 0;
	} else {
		rc |= fflush(f) != 0 ? -1 : 0;
	}
	if (rc != 0) {
		tool_err("qr", "write failed");
		return SRUP_EXIT_USAGE;
	}
	return SRUP_EXIT_OK;
}
