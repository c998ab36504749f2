/* SPDX-License-Identifier: MIT
 * cmd_keygen.c - `srup keygen`: generate an RSA key pair and write PREFIX.pem (PKCS#8, mode
 * 0600) and PREFIX.pub.pem (SubjectPublicKeyInfo). Refuses to overwrite unless --force. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include <srup/srup.h>

#include "cmds.h"
#include "util.h"

#define PATH_CAP 4096

static void keygen_help(void)
{
	printf("usage: srup keygen --out PREFIX [--bits N] [--force]\n"
	       "\n"
	       "Generate an RSA key pair (e = 65537) for SRUP signatures and the encrypted field.\n"
	       "Writes PREFIX.pem (private key, unencrypted PKCS#8 \"PRIVATE KEY\", mode 0600) and\n"
	       "PREFIX.pub.pem (public key, SubjectPublicKeyInfo \"PUBLIC KEY\"), then prints the\n"
	       "SHA-256 fingerprint of the public key.\n"
	       "\n"
	       "  --out PREFIX  path prefix of the two files (required)\n"
	       "  --bits N      modulus size, %u..%u (default 2048)\n"
	       "  --force       overwrite existing files (refused otherwise)\n"
	       "\n"
	       "Exit codes: 0 ok, 3 usage, I/O or key generation error.\n",
	       SRUP_KEY_BITS_MIN, SRUP_KEY_BITS_MAX);
}

/* Write data to path with the given mode. Returns 0, or -1 after reporting on stderr. With
 * exclusive set, an existing file is an error. *created says whether the file now exists
 * because of this call (so the caller can remove it after a later failure). */
static int write_file(const char *path, const char *data, size_t len, mode_t mode, int exclusive,
                      int *created)
{
	int flags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC;
	int fd;

	*created = 0;
	if (exclusive) {
		flags |= O_EXCL;
	}
	fd = open(path, flags, mode);
	if (fd < 0) {
		if (errno == EEXIST) {
			tool_err("keygen", "%s already exists (use --force to overwrite)", path);
		} else {
			tool_err("keygen", "cannot create %s: %s", path, strerror(errno));
		}
		return -1;
	}
	*created = 1;
	/* An existing file keeps its mode under O_TRUNC: set it, so a private key is never left
	 * readable by others. */
	if (fchmod(fd, mode) != 0) {
		tool_err("keygen", "cannot set the mode of %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	size_t done = 0;
	while (done < len) {
		ssize_t n = write(fd, data + done, len - done);
		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			tool_err("keygen", "cannot write %s: %s", path, strerror(errno));
			close(fd);
			return -1;
		}
		done += (size_t)n;
	}
	if (fsync(fd) != 0 || close(fd) != 0) {
		tool_err("keygen", "cannot write %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

int srup_cmd_keygen(int argc, char **argv)
{
	const char *out_arg = NULL;
	const char *bits_arg = NULL;
	int force = 0;
	const struct tool_opt opts[] = {
	        {"out", &out_arg, NULL},
	        {"bits", &bits_arg, NULL},
	        {"force", NULL, &force},
	};
	const char *pos[1];
	size_t n_pos = 0;
	uint64_t bits = 2048;
	struct srup_key *key = NULL;
	char *priv_pem = NULL;
	size_t priv_len = 0;
	char *pub_pem = NULL;
	size_t pub_len = 0;
	char priv_path[PATH_CAP];
	char pub_path[PATH_CAP];
	int priv_created = 0;
	int pub_created = 0;
	int rc = SRUP_EXIT_USAGE;
	struct srup_diag diag;

	enum tool_parse pr =
	        tool_parse_args(argc, argv, opts, sizeof(opts) / sizeof(opts[0]), pos, 0, &n_pos);
	if (pr == TOOL_PARSE_HELP) {
		keygen_help();
		return SRUP_EXIT_OK;
	}
	if (pr != TOOL_PARSE_OK) {
		return SRUP_EXIT_USAGE;
	}
	if (out_arg == NULL) {
		tool_err("keygen", "--out PREFIX is required (see srup keygen --help)");
		return SRUP_EXIT_USAGE;
	}
	if (bits_arg != NULL &&
	    (tool_parse_uint(bits_arg, strlen(bits_arg), SRUP_KEY_BITS_MAX, &bits) != 0 ||
	     bits < SRUP_KEY_BITS_MIN)) {
		tool_err("keygen", "--bits must be a number from %u to %u", SRUP_KEY_BITS_MIN,
		         SRUP_KEY_BITS_MAX);
		return SRUP_EXIT_USAGE;
	}
	int n1 = snprintf(priv_path, sizeof(priv_path), "%s.pem", out_arg);
	int n2 = snprintf(pub_path, sizeof(pub_path), "%s.pub.pem", out_arg);
	if (n1 < 0 || n2 < 0 || (size_t)n1 >= sizeof(priv_path) || (size_t)n2 >= sizeof(pub_path)) {
		tool_err("keygen", "--out prefix is too long");
		return SRUP_EXIT_USAGE;
	}

	memset(&diag, 0, sizeof(diag));
	enum srup_err e = srup_key_generate((unsigned)bits, &key, &diag);
	if (e != SRUP_OK) {
		tool_err("keygen", "cannot generate a %u-bit key: %s%s%s", (unsigned)bits, srup_strerror(e),
		         diag.detail[0] != '\0' ? ": " : "", diag.detail);
		goto out;
	}
	e = srup_key_private_pem(key, &priv_pem, &priv_len);
	if (e == SRUP_OK) {
		e = srup_key_public_pem(key, &pub_pem, &pub_len);
	}
	if (e != SRUP_OK) {
		tool_err("keygen", "cannot export the key: %s", srup_strerror(e));
		goto out;
	}
	if (write_file(priv_path, priv_pem, priv_len, 0600, !force, &priv_created) != 0) {
		goto out;
	}
	if (write_file(pub_path, pub_pem, pub_len, 0644, !force, &pub_created) != 0) {
		goto out;
	}

	uint8_t fp[32];
	if (srup_key_fingerprint(key, fp) != SRUP_OK) {
		tool_err("keygen", "cannot compute the key fingerprint");
		goto out;
	}
	printf("wrote %s and %s (RSA-%u)\nsha256:", priv_path, pub_path, srup_key_bits(key));
	(void)tool_hex_write(stdout, fp, sizeof(fp));
	printf("\n");
	if (fflush(stdout) != 0 || ferror(stdout)) {
		tool_err("keygen", "cannot write to standard output");
		priv_created = 0; /* the files are fine; keep them */
		pub_created = 0;
		goto out;
	}
	priv_created = 0;
	pub_created = 0;
	rc = SRUP_EXIT_OK;
out:
	/* Never leave half a key pair behind after a failure. */
	if (priv_created) {
		(void)unlink(priv_path);
	}
	if (pub_created) {
		(void)unlink(pub_path);
	}
	if (priv_pem != NULL) {
		OPENSSL_cleanse(priv_pem, priv_len);
		free(priv_pem);
	}
	free(pub_pem);
	srup_key_free(key);
	return rc;
}
