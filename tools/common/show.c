/* SPDX-License-Identifier: MIT
 * show.c - render a join value as 8-4-4-4-12 hex, an 11-word phrase and pictographs, through
 * libsrup's presentation API. Display only: whether the value is right is the operator's call. */
#include "show.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <srup/srup.h>

#include "srupd.h"

static void write_text(const char *base, const char *suffix, const char *text, size_t len)
{
	char path[SRUPD_PATH_MAX + 16];

	snprintf(path, sizeof(path), "%s%s", base, suffix);
	if (srupd_write_file(path, text, len) != 0) {
		srupd_log(SRUPD_WARN, "show: cannot write %s", path);
	}
}

void srupd_show_value(const char *show_file, const char *value)
{
	struct srup_id128 id;
	struct srup_pict pict;
	char hex[SRUP_ID128_TEXT_MAX];
	char phrase[SRUP_PHRASE_TEXT_MAX];
	char text[512];
	char *svg = NULL;
	char *ansi = NULL;
	size_t svg_len = 0;
	size_t ansi_len = 0;
	int n;

	if (srup_id128_parse(value, strlen(value), &id, NULL) != SRUP_OK ||
	    srup_id128_format(&id, hex, sizeof(hex)) != SRUP_OK ||
	    srup_phrase_encode(&id, phrase, sizeof(phrase)) != SRUP_OK) {
		srupd_log(SRUPD_INFO, "SHOW value %s (not a 128-bit value: no phrase)", value);
		if (show_file != NULL && show_file[0] != '\0') {
			n = snprintf(text, sizeof(text), "value %s\n", value);
			write_text(show_file, "", text, (size_t)n);
		}
		return;
	}
	srupd_log(SRUPD_INFO, "SHOW value %s | phrase: %s", hex, phrase);
	if (show_file == NULL || show_file[0] == '\0') {
		return;
	}
	n = snprintf(text, sizeof(text), "value %s\nphrase %s\n", value, phrase);
	write_text(show_file, "", text, (size_t)n);
	if (srup_pict_make(&id, SRUP_PICT_COLOUR, &pict) == SRUP_OK &&
	    srup_pict_svg(&pict, 0, &svg, &svg_len) == SRUP_OK) {
		write_text(show_file, ".svg", svg, svg_len);
	}
	if (srup_pict_make(&id, SRUP_PICT_MONO, &pict) == SRUP_OK &&
	    srup_pict_ansi(&pict, &ansi, &ansi_len) == SRUP_OK) {
		write_text(show_file, ".ansi", ansi, ansi_len);
	}
	free(svg);
	free(ansi);
}
