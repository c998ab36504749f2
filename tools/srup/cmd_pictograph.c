/* SPDX-License-Identifier: MIT
 * cmd_pictograph.c - `srup pictograph`: draw a 128-bit value as a mono (12x12) or colour (8x8)
 * pictograph in SVG, PNG or ANSI terminal form (libsrup present.h). Self-contained (no shared
 * tool helpers) so the unit suite can link it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <srup/srup.h>

#include "cmds.h"

enum pict_format {
	PICT_FMT_SVG = 0,
	PICT_FMT_PNG = 1,
	PICT_FMT_ANSI = 2,
};

static void pictograph_usage(FILE *f)
{
	fprintf(f,
	        "usage: srup pictograph VALUE [--style mono|colour] [--format svg|png|ansi]\n"
	        "                        [--scale PX] [-o FILE]\n"
	        "\n"
	        "Draw a 128-bit VALUE (32 hex digits or 8-4-4-4-12, either case) for a person to\n"
	        "compare during a human-moderated join. The same value always gives the same picture.\n"
	        "  --style mono     12x12 black/white cells, one bit each, dark 2x2 corners (default)\n"
	        "  --style colour   8x8 cells, two bits each, four colours that stay distinct\n"
	        "                   under colour blindness (\"color\" is accepted too)\n"
	        "  --format svg     SVG text (default); png: PNG image; ansi: terminal colours\n"
	        "  --scale PX       pixels per cell for svg/png, 1..%u (default %u)\n"
	        "  -o FILE          write to FILE instead of standard output (\"-\": stdout)\n"
	        "PNG is not written to a terminal: use -o FILE or redirect.\n"
	        "\n"
	        "Exit status: 0 ok, 3 usage, invalid input or I/O error.\n",
	        SRUP_PICT_SCALE_MAX, (unsigned)SRUP_PICT_SCALE_DEFAULT);
}

/* The value of option argv[*i]: "--name VALUE" or "--name=VALUE". NULL (reported) if missing. */
static const char *pict_opt_value(int argc, char **argv, int *i, const char *name)
{
	const char *a = argv[*i];
	size_t n = strlen(name);
	if (strncmp(a, name, n) == 0 && a[n] == '=') {
		return a + n + 1;
	}
	if (*i + 1 >= argc) {
		fprintf(stderr, "srup pictograph: %s needs a value (try --help)\n", name);
		return NULL;
	}
	*i += 1;
	return argv[*i];
}

static int pict_opt_is(const char *a, const char *name)
{
	size_t n = strlen(name);
	return strncmp(a, name, n) == 0 && (a[n] == '\0' || a[n] == '=');
}

static int pict_write(const char *path, const void *data, size_t len)
{
	FILE *f = stdout;
	int ok = 1;
	if (path != NULL && strcmp(path, "-") != 0) {
		f = fopen(path, "wb");
		if (f == NULL) {
			fprintf(stderr, "srup pictograph: cannot open '%s' for writing\n", path);
			return SRUP_EXIT_USAGE;
		}
	}
	if (len > 0 && fwrite(data, 1, len, f) != len) {
		ok = 0;
	}
	if (fflush(f) != 0) {
		ok = 0;
	}
	if (f != stdout && fclose(f) != 0) {
		ok = 0;
	}
	if (!ok) {
		fprintf(stderr, "srup pictograph: cannot write to '%s'\n",
		        f == stdout ? "standard output" : path);
		return SRUP_EXIT_USAGE;
	}
	return SRUP_EXIT_OK;
}

int srup_cmd_pictograph(int argc, char **argv)
{
	struct srup_id128 id;
	struct srup_diag diag;
	struct srup_pict pict;
	enum srup_pict_style style = SRUP_PICT_MONO;
	enum pict_format format = PICT_FMT_SVG;
	const char *value = NULL;
	const char *out_path = NULL;
	unsigned scale = 0;
	void *data = NULL;
	size_t len = 0;
	enum srup_err rc = SRUP_OK;
	int opts_done = 0;
	int i = 0;
	int ret = SRUP_EXIT_USAGE;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = NULL;
		if (!opts_done && (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)) {
			pictograph_usage(stdout);
			return SRUP_EXIT_OK;
		}
		if (!opts_done && strcmp(a, "--") == 0) {
			opts_done = 1;
		} else if (!opts_done && pict_opt_is(a, "--style")) {
			v = pict_opt_value(argc, argv, &i, "--style");
			if (v == NULL) {
				return SRUP_EXIT_USAGE;
			}
			if (strcmp(v, "mono") == 0) {
				style = SRUP_PICT_MONO;
			} else if (strcmp(v, "colour") == 0 || strcmp(v, "color") == 0) {
				style = SRUP_PICT_COLOUR;
			} else {
				fprintf(stderr, "srup pictograph: --style must be mono or colour, not '%s'\n", v);
				return SRUP_EXIT_USAGE;
			}
		} else if (!opts_done && pict_opt_is(a, "--format")) {
			v = pict_opt_value(argc, argv, &i, "--format");
			if (v == NULL) {
				return SRUP_EXIT_USAGE;
			}
			if (strcmp(v, "svg") == 0) {
				format = PICT_FMT_SVG;
			} else if (strcmp(v, "png") == 0) {
				format = PICT_FMT_PNG;
			} else if (strcmp(v, "ansi") == 0) {
				format = PICT_FMT_ANSI;
			} else {
				fprintf(stderr, "srup pictograph: --format must be svg, png or ansi, not '%s'\n",
				        v);
				return SRUP_EXIT_USAGE;
			}
		} else if (!opts_done && pict_opt_is(a, "--scale")) {
			char *end = NULL;
			unsigned long n = 0;
			v = pict_opt_value(argc, argv, &i, "--scale");
			if (v == NULL) {
				return SRUP_EXIT_USAGE;
			}
			n = (v[0] >= '0' && v[0] <= '9') ? strtoul(v, &end, 10) : 0;
			if (end == NULL || *end != '\0' || n < 1 || n > SRUP_PICT_SCALE_MAX) {
				fprintf(stderr, "srup pictograph: --scale must be 1..%u, not '%s'\n",
				        SRUP_PICT_SCALE_MAX, v);
				return SRUP_EXIT_USAGE;
			}
			scale = (unsigned)n;
		} else if (!opts_done && (strcmp(a, "-o") == 0 || pict_opt_is(a, "--output"))) {
			v = pict_opt_value(argc, argv, &i, strcmp(a, "-o") == 0 ? "-o" : "--output");
			if (v == NULL) {
				return SRUP_EXIT_USAGE;
			}
			out_path = v;
		} else if (!opts_done && a[0] == '-' && a[1] != '\0') {
			fprintf(stderr, "srup pictograph: unknown option '%s' (try --help)\n", a);
			return SRUP_EXIT_USAGE;
		} else if (value == NULL) {
			value = a;
		} else {
			fprintf(stderr, "srup pictograph: more than one VALUE given (try --help)\n");
			return SRUP_EXIT_USAGE;
		}
	}
	if (value == NULL) {
		fprintf(stderr, "srup pictograph: missing VALUE (32 hex digits or 8-4-4-4-12; try "
		                "--help)\n");
		return SRUP_EXIT_USAGE;
	}
	memset(&diag, 0, sizeof diag);
	rc = srup_id128_parse(value, strlen(value), &id, &diag);
	if (rc != SRUP_OK) {
		fprintf(stderr, "srup pictograph: bad VALUE: %s\n",
		        diag.detail[0] != '\0' ? diag.detail : srup_strerror(rc));
		return SRUP_EXIT_USAGE;
	}
	if (format == PICT_FMT_PNG && (out_path == NULL || strcmp(out_path, "-") == 0) &&
	    isatty(STDOUT_FILENO)) {
		fprintf(stderr, "srup pictograph: refusing to write PNG to a terminal; use -o FILE or "
		                "redirect standard output\n");
		return SRUP_EXIT_USAGE;
	}
	rc = srup_pict_make(&id, style, &pict);
	if (rc == SRUP_OK) {
		if (format == PICT_FMT_SVG) {
			char *text = NULL;
			rc = srup_pict_svg(&pict, scale, &text, &len);
			data = text;
		} else if (format == PICT_FMT_PNG) {
			uint8_t *png = NULL;
			rc = srup_pict_png(&pict, scale, &png, &len);
			data = png;
		} else {
			char *text = NULL;
			rc = srup_pict_ansi(&pict, &text, &len);
			data = text;
		}
	}
	if (rc != SRUP_OK) {
		fprintf(stderr, "srup pictograph: %s\n", srup_strerror(rc));
		return SRUP_EXIT_USAGE;
	}
	ret = pict_write(out_path, data, len);
	free(data);
	return ret;
}
