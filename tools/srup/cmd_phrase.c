/* SPDX-License-Identifier: MIT
 * cmd_phrase.c - `srup phrase`: a 128-bit value as an 11-word phrase, and a phrase back to the
 * value (libsrup present.h). Self-contained (no shared tool helpers) so that the unit suite can
 * compile it in. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <srup/srup.h>

#include "cmds.h"

static void phrase_usage(FILE *f)
{
	fprintf(f,
	        "usage: srup phrase VALUE\n"
	        "       srup phrase --reverse WORD...\n"
	        "\n"
	        "Show a 128-bit VALUE (32 hex digits or 8-4-4-4-12, either case) as 11 words on one\n"
	        "line, for a person to compare during a human-moderated join. With --reverse, read\n"
	        "the 11 words (one argument each, or quoted together; any case) and print the value\n"
	        "as 8-4-4-4-12 upper-case hex. Unknown words, a wrong word count or an impossible\n"
	        "last word are refused.\n"
	        "\n"
	        "Exit status: 0 ok, 3 usage or invalid input.\n");
}

/* Join words[0, n) with single spaces into a malloc'd string; NULL on overflow or NOMEM. */
static char *phrase_join(int n, char **words, size_t *len)
{
	size_t total = 1;
	size_t pos = 0;
	char *s = NULL;
	int i = 0;
	for (i = 0; i < n; i++) {
		size_t wl = strlen(words[i]);
		if (wl > ((size_t)-1) / 2 - total) {
			return NULL;
		}
		total += wl + 1;
	}
	s = malloc(total);
	if (s == NULL) {
		return NULL;
	}
	for (i = 0; i < n; i++) {
		size_t wl = strlen(words[i]);
		if (i > 0) {
			s[pos++] = ' ';
		}
		memcpy(s + pos, words[i], wl);
		pos += wl;
	}
	s[pos] = '\0';
	*len = pos;
	return s;
}

static int phrase_print(const char *text)
{
	if (fputs(text, stdout) == EOF || fputc('\n', stdout) == EOF || fflush(stdout) != 0) {
		fprintf(stderr, "srup phrase: cannot write to standard output\n");
		return SRUP_EXIT_USAGE;
	}
	return SRUP_EXIT_OK;
}

static int phrase_reverse(int n_words, char **words)
{
	struct srup_id128 id;
	struct srup_diag diag;
	char text[SRUP_ID128_TEXT_MAX];
	size_t len = 0;
	char *joined = NULL;
	enum srup_err rc = SRUP_OK;
	if (n_words == 0) {
		fprintf(stderr, "srup phrase: --reverse needs the %d words of a phrase (try --help)\n",
		        SRUP_PHRASE_WORDS);
		return SRUP_EXIT_USAGE;
	}
	joined = phrase_join(n_words, words, &len);
	if (joined == NULL) {
		fprintf(stderr, "srup phrase: out of memory\n");
		return SRUP_EXIT_USAGE;
	}
	memset(&diag, 0, sizeof diag);
	rc = srup_phrase_decode(joined, len, &id, &diag);
	free(joined);
	if (rc != SRUP_OK) {
		fprintf(stderr, "srup phrase: %s\n",
		        diag.detail[0] != '\0' ? diag.detail : srup_strerror(rc));
		return SRUP_EXIT_USAGE;
	}
	rc = srup_id128_format(&id, text, sizeof text);
	if (rc != SRUP_OK) {
		fprintf(stderr, "srup phrase: %s\n", srup_strerror(rc));
		return SRUP_EXIT_USAGE;
	}
	return phrase_print(text);
}

int srup_cmd_phrase(int argc, char **argv)
{
	struct srup_id128 id;
	struct srup_diag diag;
	char words[SRUP_PHRASE_TEXT_MAX];
	enum srup_err rc = SRUP_OK;
	char **pos = NULL;
	int n_pos = 0;
	int reverse = 0;
	int opts_done = 0;
	int ret = SRUP_EXIT_USAGE;
	int i = 0;
	pos = calloc((size_t)(argc > 0 ? argc : 1), sizeof *pos);
	if (pos == NULL) {
		fprintf(stderr, "srup phrase: out of memory\n");
		return SRUP_EXIT_USAGE;
	}
	/* Options may appear anywhere (list words never start with '-'); "--" ends them. */
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!opts_done && (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)) {
			phrase_usage(stdout);
			ret = SRUP_EXIT_OK;
			goto out;
		}
		if (!opts_done && (strcmp(a, "--reverse") == 0 || strcmp(a, "-r") == 0)) {
			reverse = 1;
		} else if (!opts_done && strcmp(a, "--") == 0) {
			opts_done = 1;
		} else if (!opts_done && a[0] == '-' && a[1] != '\0') {
			fprintf(stderr, "srup phrase: unknown option '%s' (try --help)\n", a);
			goto out;
		} else {
			pos[n_pos++] = argv[i];
		}
	}
	if (reverse) {
		ret = phrase_reverse(n_pos, pos);
		goto out;
	}
	if (n_pos != 1) {
		fprintf(stderr,
		        "srup phrase: expected one VALUE (32 hex digits or 8-4-4-4-12), got %d "
		        "arguments (try --help)\n",
		        n_pos);
		goto out;
	}
	memset(&diag, 0, sizeof diag);
	rc = srup_id128_parse(pos[0], strlen(pos[0]), &id, &diag);
	if (rc != SRUP_OK) {
		fprintf(stderr, "srup phrase: bad VALUE: %s\n",
		        diag.detail[0] != '\0' ? diag.detail : srup_strerror(rc));
		goto out;
	}
	rc = srup_phrase_encode(&id, words, sizeof words);
	if (rc != SRUP_OK) {
		fprintf(stderr, "srup phrase: %s\n", srup_strerror(rc));
		goto out;
	}
	ret = phrase_print(words);
out:
	free(pos);
	return ret;
}
