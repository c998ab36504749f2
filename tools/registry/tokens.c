/* SPDX-License-Identifier: MIT
 * tokens.c - srup-registry's one-time enrollment tokens (registration mode "token"): the file
 * holds the SHA-256 of each unused token, one hex line each; a token is spent by removing its
 * line, under flock so that several registry processes can share the file. */
#include "registry.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <srup/id.h>

#define TOKENS_MAX (1024 * 1024) /* bytes of the tokens file */

static void token_hash(const char *token, char out[65])
{
	unsigned char d[32];
	unsigned int n = 0;

	EVP_Digest(token, strlen(token), d, &n, EVP_sha256(), NULL);
	(void)srup_hex_encode(d, sizeof d, out, 65);
}

int reg_tokens_new(const char *file, unsigned n, FILE *out)
{
	int fd = open(file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	unsigned i;
	int rc = 0;

	if (fd < 0 || flock(fd, LOCK_EX) != 0) {
		fprintf(stderr, "srup-registry: %s: %s\n", file, strerror(errno));
		if (fd >= 0) {
			close(fd);
		}
		return -1;
	}
	for (i = 0; i < n && rc == 0; i++) {
		unsigned char r[24];
		char tok[49];
		char h[66];

		if (RAND_bytes(r, sizeof(r)) != 1) {
			rc = -1;
			break;
		}
		(void)srup_hex_encode(r, sizeof r, tok, sizeof tok);
		token_hash(tok, h);
		h[64] = '\n';
		if (write(fd, h, 65) != 65) {
			rc = -1;
		} else {
			fprintf(out, "%s\n", tok);
		}
		OPENSSL_cleanse(tok, sizeof(tok));
	}
	if (rc == 0 && fsync(fd) != 0) {
		rc = -1;
	}
	close(fd);
	if (rc != 0) {
		fprintf(stderr, "srup-registry: cannot write %s\n", file);
	}
	return rc;
}

int reg_token_consume(const char *file, const char *token)
{
	int fd;
	char h[65];
	char *buf = NULL;
	ssize_t n;
	char *hit = NULL;
	int rc = -1;

	if (strlen(token) == 0 || strlen(token) > 256) {
		return 0;
	}
	token_hash(token, h);
	fd = open(file, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		return -1;
	}
	if (flock(fd, LOCK_EX) != 0) {
		goto out;
	}
	buf = malloc(TOKENS_MAX + 1);
	if (buf == NULL) {
		goto out;
	}
	n = pread(fd, buf, TOKENS_MAX + 1, 0);
	if (n < 0 || n > TOKENS_MAX) {
		goto out;
	}
	buf[n] = '\0';
	for (char *line = buf; *line != '\0';) {
		char *nl = strchr(line, '\n');

		if (strncmp(line, h, 64) == 0 && (line[64] == '\n' || line[64] == '\0')) {
			hit = line;
			break;
		}
		if (nl == NULL) {
			break;
		}
		line = nl + 1;
	}
	if (hit == NULL) {
		rc = 0;
		goto out;
	}
	/* Rewrite without the spent line, in place (the lock is on this descriptor). */
	{
		size_t before = (size_t)(hit - buf);
		size_t skip = hit[64] == '\n' ? 65 : 64;
		size_t after = (size_t)n - before - skip;

		memmove(hit, hit + skip, after);
		if (pwrite(fd, buf, before + after, 0) != (ssize_t)(before + after) ||
		    ftruncate(fd, (off_t)(before + after)) != 0 || fsync(fd) != 0) {
			goto out;
		}
	}
	rc = 1;
out:
	free(buf);
	close(fd); /* releases the lock */
	return rc;
}
