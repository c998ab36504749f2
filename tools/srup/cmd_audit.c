/* SPDX-License-Identifier: MIT
 * cmd_audit.c - `srup audit verify FILE...` (reading and filtering the log, `srup audit
 * [options] FILE...`, is in cmd_audit_read.c): check the hash chain of the plugin's audit log. Each
 * line ends with "chain", the SHA-256 of the previous line's chain and the line without it; the
 * chain runs on across rotated files (give them oldest first). An edited, removed, inserted or
 * reordered line breaks it; the first line whose chain does not follow is named. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <srup/srup.h>
#include <zlib.h>

#include "cmds.h"
#include "util.h"

#define KEY            ",\"chain\":\""
#define AUDIT_TEXT_MAX (64 * 1024)

static void help(FILE *f)
{
	fprintf(f,
	        "usage: srup audit verify FILE...\n"
	        "\n"
	        "Check the hash chain of the broker's audit log: FILEs are the log and its rotated\n"
	        "predecessors, oldest first, plain or gzip-compressed as logrotate leaves them. Each\n"
	        "line that does not follow the chain is printed as FILE:LINE; an edited, removed,\n"
	        "inserted or reordered line shows there. A chain that starts afresh (the broker\n"
	        "started on an empty file) is reported as a note.\n"
	        "\n"
	        "Exit codes: 0 the chain holds, 1 it is broken somewhere, 3 usage or I/O errors.\n");
}

static int unhex(const char *h, unsigned char out[32])
{
	size_t n = 0;
	return srup_hex_decode(h, 64, out, 32, &n) == SRUP_OK && n == 32 ? 0 : -1;
}

/* SHA-256(prev || text[0, n)). */
static void link_of(const unsigned char prev[32], const char *text, size_t n, unsigned char md[32])
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	unsigned int len = 0;

	EVP_DigestInit_ex(c, EVP_sha256(), NULL);
	EVP_DigestUpdate(c, prev, 32);
	EVP_DigestUpdate(c, text, n);
	EVP_DigestFinal_ex(c, md, &len);
	EVP_MD_CTX_free(c);
}

int srup_cmd_audit(int argc, char **argv)
{
	static char line[AUDIT_TEXT_MAX + 2];
	static char text[AUDIT_TEXT_MAX + 2];
	static const unsigned char zero[32];
	unsigned char prev[32];
	int have_prev = 0;
	int breaks = 0;
	unsigned long total = 0;

	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		srup_audit_read_help(stdout);
		printf("\n");
		help(stdout);
		return SRUP_EXIT_OK;
	}
	if (argc < 2 || strcmp(argv[1], "verify") != 0) {
		return srup_audit_read(argc, argv);
	}
	if (argc < 3 || strcmp(argv[2], "--help") == 0) {
		help(argc < 3 ? stderr : stdout);
		return argc < 3 ? SRUP_EXIT_USAGE : SRUP_EXIT_OK;
	}
	for (int fi = 2; fi < argc; fi++) {
		/* plain or gzip-compressed (a rotated file), zlib reads both */
		gzFile f = gzopen(argv[fi], "rb");
		unsigned long no = 0;

		if (f == NULL) {
			tool_err("audit verify", "cannot open %s", argv[fi]);
			return SRUP_EXIT_USAGE;
		}
		while (gzgets(f, line, (int)sizeof line) != NULL) {
			size_t n = strlen(line);
			char *k;
			unsigned char claimed[32];
			unsigned char md[32];

			no++;
			total++;
			if (n > 0 && line[n - 1] == '\n') {
				line[--n] = '\0';
			}
			k = strstr(line, KEY);
			if (k == NULL || strlen(k) != strlen(KEY) + 64 + 2 ||
			    strcmp(k + strlen(KEY) + 64, "\"}") != 0 || unhex(k + strlen(KEY), claimed) != 0) {
				printf("%s:%lu: no chain on this line (edited, or not written by the plugin)\n",
				       argv[fi], no);
				breaks++;
				have_prev = 0;
				continue;
			}
			/* The line as it was chained: without ,"chain":"..." */
			memcpy(text, line, (size_t)(k - line));
			text[k - line] = '}';
			link_of(zero, text, (size_t)(k - line) + 1, md);
			if (memcmp(md, claimed, 32) == 0) {
				if (have_prev) {
					printf("%s:%lu: note: the chain starts afresh here (the broker started on an "
					       "empty log)\n",
					       argv[fi], no);
				}
			} else if (have_prev) {
				link_of(prev, text, (size_t)(k - line) + 1, md);
				if (memcmp(md, claimed, 32) != 0) {
					printf("%s:%lu: the chain breaks here: a line before it was removed or "
					       "reordered, or this line was edited or inserted\n",
					       argv[fi], no);
					breaks++;
				}
			} else if (total > 1 || fi > 2) {
				printf("%s:%lu: the chain breaks here\n", argv[fi], no);
				breaks++;
			} else {
				printf("%s:%lu: note: the chain comes from an earlier file not given\n", argv[fi],
				       no);
			}
			memcpy(prev, claimed, 32);
			have_prev = 1;
		}
		gzclose(f);
	}
	printf("%lu lines: %s\n", total, breaks ? "the chain is BROKEN" : "the chain holds");
	return breaks ? 1 : SRUP_EXIT_OK;
}
