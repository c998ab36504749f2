/* SPDX-License-Identifier: MIT
 * b64.c - base64, key bodies and base64 RSA-PSS signatures for the registration service and its
 * client (see b64.h). OpenSSL's EVP block codec does the base64; this file adds the checks and
 * the layout KeyEx uses. */
#include "b64.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rsa.h>

int b64_decode(const char *in, size_t len, unsigned char **out, size_t *out_len)
{
	char *flat = malloc(len + 1);
	unsigned char *dec;
	size_t m = 0;
	size_t i;
	int r;

	*out = NULL;
	if (flat == NULL) {
		return -1;
	}
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)in[i];

		if (isspace(ch)) {
			continue;
		}
		if (!isalnum(ch) && ch != '+' && ch != '/' && ch != '=') {
			free(flat);
			return -1;
		}
		flat[m++] = (char)ch;
	}
	if (m == 0 || m % 4 != 0 || m > (size_t)1 << 24) {
		free(flat);
		return -1;
	}
	for (i = 0; i + 2 < m; i++) {
		if (flat[i] == '=') { /* '=' only as the last one or two characters */
			free(flat);
			return -1;
		}
	}
	dec = malloc(m / 4 * 3 + 1);
	if (dec == NULL) {
		free(flat);
		return -1;
	}
	r = EVP_DecodeBlock(dec, (const unsigned char *)flat, (int)m);
	if (r >= 0 && flat[m - 1] == '=') {
		r -= flat[m - 2] == '=' ? 2 : 1; /* EVP_DecodeBlock counts the padding as bytes */
	}
	free(flat);
	if (r < 0) {
		free(dec);
		return -1;
	}
	dec[r] = '\0';
	*out = dec;
	*out_len = (size_t)r;
	return 0;
}

char *b64_encode(const unsigned char *in, size_t len, int wrap)
{
	size_t enc = 4 * ((len + 2) / 3);
	char *flat = malloc(enc + 1);
	char *out;
	size_t i;
	size_t o = 0;

	if (flat == NULL) {
		return NULL;
	}
	EVP_EncodeBlock((unsigned char *)flat, in, (int)len);
	if (!wrap) {
		return flat;
	}
	out = malloc(enc + enc / 76 + 2);
	if (out != NULL) {
		for (i = 0; i < enc; i++) {
			out[o++] = flat[i];
			if ((i + 1) % 76 == 0) {
				out[o++] = '\n';
			}
		}
		if (o == 0 || out[o - 1] != '\n') {
			out[o++] = '\n';
		}
		out[o] = '\0';
	}
	free(flat);
	return out;
}

char *b64_body_to_pem(const char *body)
{
	size_t n = strlen(body);
	char *pem = malloc(n + n / 64 + 64);
	size_t o;
	size_t col = 0;
	size_t i;

	if (pem == NULL) {
		return NULL;
	}
	o = (size_t)sprintf(pem, "-----BEGIN PUBLIC KEY-----\n");
	for (i = 0; i < n; i++) {
		if (isspace((unsigned char)body[i])) {
			continue;
		}
		pem[o++] = body[i];
		if (++col == 64) {
			pem[o++] = '\n';
			col = 0;
		}
	}
	if (col != 0) {
		pem[o++] = '\n';
	}
	sprintf(pem + o, "-----END PUBLIC KEY-----\n");
	return pem;
}

char *b64_pem_to_body(const char *pem)
{
	char *body = malloc(strlen(pem) + 1);
	const char *line = pem;
	size_t o = 0;
	int in = 0;

	if (body == NULL) {
		return NULL;
	}
	while (*line != '\0') {
		const char *end = strchr(line, '\n');
		size_t ll = end != NULL ? (size_t)(end - line) : strlen(line);
		size_t i;

		if (ll >= 5 && strncmp(line, "-----", 5) == 0) {
			in = !in;
		} else if (in) {
			for (i = 0; i < ll; i++) {
				if (!isspace((unsigned char)line[i])) {
					body[o++] = line[i];
				}
			}
		}
		line += ll + (end != NULL ? 1 : 0);
	}
	body[o] = '\0';
	return body;
}

char *b64_pss_sign(EVP_PKEY *key, const void *data, size_t len, int wrap)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	unsigned char *sig = NULL;
	size_t slen = 0;
	char *out = NULL;

	if (ctx == NULL || key == NULL ||
	    EVP_DigestSignInit_ex(ctx, &pctx, "SHA256", NULL, NULL, key, NULL) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md_name(pctx, "SHA256", NULL) != 1 ||
	    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_MAX) != 1 ||
	    EVP_DigestSign(ctx, NULL, &slen, data, len) != 1) {
		goto out;
	}
	sig = malloc(slen);
	if (sig != NULL && EVP_DigestSign(ctx, sig, &slen, data, len) == 1) {
		out = b64_encode(sig, slen, wrap);
	}
out:
	free(sig);
	EVP_MD_CTX_free(ctx);
	return out;
}
