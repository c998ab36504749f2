/* SPDX-License-Identifier: MIT
 * key.c - RSA keys for SRUP: PEM load (memory or file), generation, PEM export, fingerprints.
 * Keys are parsed and checked once here; nothing on the per-message path parses a key. No
 * passphrase is ever asked for, and no OpenSSL provider or configuration is touched. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "crypto_internal.h"
#include "export.h"
#include "srup/key.h"

/* A PEM key file is a few KiB even at 8192 bits; anything far larger is not a key. */
#define KEY_FILE_MAX (256u * 1024u)

void srup__diag_set(struct srup_diag *diag, const char *field, size_t offset, const char *detail)
{
	ERR_clear_error();
	if (diag == NULL) {
		return;
	}
	diag->offset = offset;
	diag->field = field;
	snprintf(diag->detail, sizeof diag->detail, "%s", detail != NULL ? detail : "");
}

void srup__diag_openssl(struct srup_diag *diag, const char *field, const char *what)
{
	if (diag != NULL) {
		unsigned long e = ERR_peek_error();
		const char *reason = e != 0 ? ERR_reason_error_string(e) : NULL;
		char code[32];
		if (e != 0 && reason == NULL) {
			snprintf(code, sizeof code, "error %lx", e);
			reason = code;
		}
		diag->offset = 0;
		diag->field = field;
		snprintf(diag->detail, sizeof diag->detail, "%s: %s", what,
		         reason != NULL ? reason : "no OpenSSL reason given");
	}
	ERR_clear_error();
}

/* Bounded search for needle in hay[0, hay_len); the PEM text need not be NUL-terminated. */
static int mem_contains(const char *hay, size_t hay_len, const char *needle)
{
	size_t n = strlen(needle);
	if (n == 0 || hay_len < n) {
		return 0;
	}
	for (size_t i = 0; i <= hay_len - n; i++) {
		if (hay[i] == needle[0] && memcmp(hay + i, needle, n) == 0) {
			return 1;
		}
	}
	return 0;
}

/* Passphrase callback that always declines. Without one OpenSSL falls back to prompting on the
 * terminal, which a broker plugin must never do. */
static int decline_passphrase(char *pass, size_t pass_size, size_t *pass_len,
                              const OSSL_PARAM params[], void *arg)
{
	(void)pass;
	(void)pass_size;
	(void)params;
	(void)arg;
	*pass_len = 0;
	return 0;
}

static int pkey_has_private(const EVP_PKEY *pkey)
{
	BIGNUM *d = NULL;
	if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_D, &d) != 1) {
		ERR_clear_error();
		return 0;
	}
	BN_clear_free(d);
	return 1;
}

/* A copy of pkey with only its public half (through DER SubjectPublicKeyInfo). */
static EVP_PKEY *pkey_public_only(const EVP_PKEY *pkey)
{
	unsigned char *der = NULL;
	int n = i2d_PUBKEY(pkey, &der);
	if (n <= 0) {
		return NULL;
	}
	const unsigned char *p = der;
	EVP_PKEY *pub = d2i_PUBKEY(NULL, &p, n);
	OPENSSL_free(der);
	return pub;
}

/* Check pkey (taking ownership of it) and wrap it in a new srup_key. */
static enum srup_err key_wrap(EVP_PKEY *pkey, enum srup_key_kind kind, struct srup_key **out,
                              struct srup_diag *diag)
{
	enum srup_err rc = SRUP_ERR_KEY;
	struct srup_key *key = NULL;

	if (!EVP_PKEY_is_a(pkey, "RSA")) {
		char msg[96];
		const char *name = EVP_PKEY_get0_type_name(pkey);
		snprintf(msg, sizeof msg, "not an RSA key (%s); SRUP uses RSA only",
		         name != NULL ? name : "unknown type");
		srup__diag_set(diag, "key", 0, msg);
		goto out;
	}
	int bits = EVP_PKEY_get_bits(pkey);
	if (bits < (int)SRUP_KEY_BITS_MIN || bits > (int)SRUP_KEY_BITS_MAX) {
		char msg[96];
		snprintf(msg, sizeof msg, "RSA key has %d bits; SRUP accepts %u..%u", bits,
		         SRUP_KEY_BITS_MIN, SRUP_KEY_BITS_MAX);
		srup__diag_set(diag, "key", 0, msg);
		goto out;
	}
	/* e = 65537 only: a huge exponent makes every verification (so every forged message the
	 * broker checks) cost up to ~1.9 ms instead of ~20 us, and a tiny one (3) invites the
	 * low-exponent attacks on careless padding. The plugin and the tool load keys through
	 * here, so they agree. */
	BIGNUM *e = NULL;
	if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &e) != 1 || e == NULL) {
		srup__diag_openssl(diag, "key", "reading the RSA public exponent");
		rc = SRUP_ERR_CRYPTO;
		goto out;
	}
	if (!BN_is_word(e, 65537)) {
		char msg[96];
		snprintf(msg, sizeof msg,
		         "RSA public exponent is not 65537 (it has %d bits); SRUP accepts e = 65537 only",
		         BN_num_bits(e));
		BN_free(e);
		srup__diag_set(diag, "key", 0, msg);
		goto out;
	}
	BN_free(e);
	int is_private = pkey_has_private(pkey);
	if (kind == SRUP_KEY_PRIVATE && !is_private) {
		srup__diag_set(diag, "key", 0, "a private key is required but this is a public key");
		goto out;
	}
	if (kind == SRUP_KEY_PUBLIC && is_private) {
		EVP_PKEY *pub = pkey_public_only(pkey);
		if (pub == NULL) {
			srup__diag_openssl(diag, "key", "taking the public half");
			rc = SRUP_ERR_CRYPTO;
			goto out;
		}
		EVP_PKEY_free(pkey);
		pkey = pub;
		is_private = 0;
	}
	int size = EVP_PKEY_get_size(pkey);
	if (size <= 0) {
		srup__diag_openssl(diag, "key", "reading the key size");
		rc = SRUP_ERR_CRYPTO;
		goto out;
	}
	key = calloc(1, sizeof *key);
	if (key == NULL) {
		srup__diag_set(diag, "key", 0, "out of memory");
		rc = SRUP_ERR_NOMEM;
		goto out;
	}
	key->pkey = pkey;
	key->size = (size_t)size;
	key->bits = (unsigned)bits;
	key->is_private = is_private;
	pkey = NULL;
	*out = key;
	key = NULL;
	rc = SRUP_OK;
out:
	EVP_PKEY_free(pkey);
	free(key);
	/* The decoder tries several formats and leaves their complaints queued even on success. */
	ERR_clear_error();
	return rc;
}

SRUP_API enum srup_err srup_key_load_pem(const char *pem, size_t pem_len, enum srup_key_kind kind,
                                         struct srup_key **out, struct srup_diag *diag)
{
	EVP_PKEY *pkey = NULL;
	OSSL_DECODER_CTX *dctx = NULL;
	enum srup_err rc = SRUP_ERR_KEY;

	if (out == NULL) {
		return SRUP_ERR_INVAL;
	}
	*out = NULL;
	if (pem == NULL || (kind != SRUP_KEY_PUBLIC && kind != SRUP_KEY_PRIVATE)) {
		srup__diag_set(diag, "key", 0, "no PEM text or an unknown key kind");
		return SRUP_ERR_INVAL;
	}
	if (pem_len == 0) {
		srup__diag_set(diag, "key", 0, "empty PEM text");
		return SRUP_ERR_KEY;
	}
	/* Refuse encrypted keys up front with a clear reason; the declining passphrase callback
	 * below is the backstop for any form this check does not recognise. */
	if (mem_contains(pem, pem_len, "-----BEGIN ENCRYPTED PRIVATE KEY-----") ||
	    mem_contains(pem, pem_len, "Proc-Type: 4,ENCRYPTED")) {
		srup__diag_set(diag, "key", 0, "passphrase-protected keys are not supported");
		return SRUP_ERR_KEY;
	}

	/* Selection 0: accept any key structure, then decide by what was found, so that a
	 * public key given where a private one is needed gets a clear reason. */
	dctx = OSSL_DECODER_CTX_new_for_pkey(&pkey, "PEM", NULL, NULL, 0, NULL, NULL);
	if (dctx == NULL) {
		srup__diag_openssl(diag, "key", "setting up the PEM decoder");
		rc = SRUP_ERR_CRYPTO;
		goto out;
	}
	if (OSSL_DECODER_CTX_set_passphrase_cb(dctx, decline_passphrase, NULL) != 1) {
		srup__diag_openssl(diag, "key", "setting up the PEM decoder");
		rc = SRUP_ERR_CRYPTO;
		goto out;
	}
	const unsigned char *p = (const unsigned char *)pem;
	size_t left = pem_len;
	if (OSSL_DECODER_from_data(dctx, &p, &left) != 1 || pkey == NULL) {
		srup__diag_openssl(diag, "key", "no usable PEM key found");
		rc = SRUP_ERR_KEY;
		goto out;
	}
	rc = key_wrap(pkey, kind, out, diag);
	pkey = NULL;
out:
	OSSL_DECODER_CTX_free(dctx);
	EVP_PKEY_free(pkey);
	ERR_clear_error();
	return rc;
}

SRUP_API enum srup_err srup_key_load_file(const char *path, enum srup_key_kind kind,
                                          struct srup_key **out, struct srup_diag *diag)
{
	char *buf = NULL;
	size_t len = 0;
	enum srup_err rc = SRUP_ERR_IO;
	FILE *f = NULL;

	if (out == NULL) {
		return SRUP_ERR_INVAL;
	}
	*out = NULL;
	if (path == NULL) {
		srup__diag_set(diag, "path", 0, "no key file path");
		return SRUP_ERR_INVAL;
	}
	f = fopen(path, "rb");
	if (f == NULL) {
		char msg[160];
		snprintf(msg, sizeof msg, "cannot open key file: %s", strerror(errno));
		srup__diag_set(diag, "path", 0, msg);
		goto out;
	}
	buf = malloc(KEY_FILE_MAX + 1);
	if (buf == NULL) {
		srup__diag_set(diag, "path", 0, "out of memory");
		rc = SRUP_ERR_NOMEM;
		goto out;
	}
	len = fread(buf, 1, KEY_FILE_MAX + 1, f);
	if (ferror(f)) {
		srup__diag_set(diag, "path", 0, "cannot read key file");
		goto out;
	}
	if (len > KEY_FILE_MAX) {
		srup__diag_set(diag, "path", 0, "key file is too large to be a PEM key");
		rc = SRUP_ERR_KEY;
		goto out;
	}
	rc = srup_key_load_pem(buf, len, kind, out, diag);
out:
	if (f != NULL) {
		fclose(f);
	}
	if (buf != NULL) {
		OPENSSL_cleanse(buf, len);
		free(buf);
	}
	return rc;
}

SRUP_API enum srup_err srup_key_generate(unsigned bits, struct srup_key **out,
                                         struct srup_diag *diag)
{
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pkey = NULL;
	enum srup_err rc = SRUP_ERR_CRYPTO;

	if (out == NULL) {
		return SRUP_ERR_INVAL;
	}
	*out = NULL;
	if (bits < SRUP_KEY_BITS_MIN || bits > SRUP_KEY_BITS_MAX) {
		char msg[96];
		snprintf(msg, sizeof msg, "%u bits asked; SRUP keys have %u..%u bits", bits,
		         SRUP_KEY_BITS_MIN, SRUP_KEY_BITS_MAX);
		srup__diag_set(diag, "bits", 0, msg);
		return SRUP_ERR_INVAL;
	}
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	if (ctx == NULL || EVP_PKEY_keygen_init(ctx) != 1 ||
	    EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, (int)bits) != 1) {
		srup__diag_openssl(diag, "key", "setting up RSA key generation");
		goto out;
	}
	/* The public exponent is left at OpenSSL's default, 65537, as pySRUP uses. */
	if (EVP_PKEY_generate(ctx, &pkey) != 1) {
		srup__diag_openssl(diag, "key", "generating the RSA key");
		goto out;
	}
	rc = key_wrap(pkey, SRUP_KEY_PRIVATE, out, diag);
	pkey = NULL;
out:
	EVP_PKEY_free(pkey);
	EVP_PKEY_CTX_free(ctx);
	return rc;
}

/* Copy a memory BIO's contents into a malloc'd NUL-terminated string. */
static enum srup_err bio_to_string(BIO *bio, char **pem, size_t *pem_len)
{
	char *data = NULL;
	long n = BIO_get_mem_data(bio, &data);
	if (n <= 0 || data == NULL) {
		return SRUP_ERR_CRYPTO;
	}
	char *s = malloc((size_t)n + 1);
	if (s == NULL) {
		return SRUP_ERR_NOMEM;
	}
	memcpy(s, data, (size_t)n);
	s[n] = '\0';
	*pem = s;
	*pem_len = (size_t)n;
	return SRUP_OK;
}

SRUP_API enum srup_err srup_key_private_pem(const struct srup_key *key, char **pem, size_t *pem_len)
{
	if (pem == NULL || pem_len == NULL) {
		return SRUP_ERR_INVAL;
	}
	*pem = NULL;
	*pem_len = 0;
	if (key == NULL) {
		return SRUP_ERR_INVAL;
	}
	if (!key->is_private) {
		return SRUP_ERR_KEY;
	}
	BIO *bio = BIO_new(BIO_s_mem());
	if (bio == NULL) {
		ERR_clear_error();
		return SRUP_ERR_NOMEM;
	}
	enum srup_err rc = SRUP_ERR_CRYPTO;
	/* OpenSSL 3 writes PKCS#8 "PRIVATE KEY" here; unencrypted, as the tools store it 0600. */
	if (PEM_write_bio_PrivateKey(bio, key->pkey, NULL, NULL, 0, NULL, NULL) == 1) {
		rc = bio_to_string(bio, pem, pem_len);
	}
	/* The BIO held private key material; clear it before it is freed. */
	char *data = NULL;
	long n = BIO_get_mem_data(bio, &data);
	if (n > 0 && data != NULL) {
		OPENSSL_cleanse(data, (size_t)n);
	}
	BIO_free(bio);
	ERR_clear_error();
	return rc;
}

SRUP_API enum srup_err srup_key_public_pem(const struct srup_key *key, char **pem, size_t *pem_len)
{
	if (pem == NULL || pem_len == NULL) {
		return SRUP_ERR_INVAL;
	}
	*pem = NULL;
	*pem_len = 0;
	if (key == NULL) {
		return SRUP_ERR_INVAL;
	}
	BIO *bio = BIO_new(BIO_s_mem());
	if (bio == NULL) {
		ERR_clear_error();
		return SRUP_ERR_NOMEM;
	}
	enum srup_err rc = SRUP_ERR_CRYPTO;
	if (PEM_write_bio_PUBKEY(bio, key->pkey) == 1) {
		rc = bio_to_string(bio, pem, pem_len);
	}
	BIO_free(bio);
	ERR_clear_error();
	return rc;
}

SRUP_API size_t srup_key_size(const struct srup_key *key)
{
	return key != NULL ? key->size : 0;
}

SRUP_API unsigned srup_key_bits(const struct srup_key *key)
{
	return key != NULL ? key->bits : 0;
}

SRUP_API int srup_key_is_private(const struct srup_key *key)
{
	return key != NULL && key->is_private ? 1 : 0;
}

SRUP_API enum srup_err srup_key_fingerprint(const struct srup_key *key, uint8_t out[32])
{
	if (key == NULL || out == NULL) {
		return SRUP_ERR_INVAL;
	}
	unsigned char *der = NULL;
	int n = i2d_PUBKEY(key->pkey, &der);
	if (n <= 0) {
		ERR_clear_error();
		return SRUP_ERR_CRYPTO;
	}
	size_t md_len = 0;
	int ok = EVP_Q_digest(NULL, "SHA256", NULL, der, (size_t)n, out, &md_len);
	OPENSSL_free(der);
	if (ok != 1 || md_len != 32) {
		ERR_clear_error();
		return SRUP_ERR_CRYPTO;
	}
	return SRUP_OK;
}

SRUP_API void *srup_key_evp(const struct srup_key *key)
{
	return key != NULL ? key->pkey : NULL;
}

SRUP_API void srup_key_free(struct srup_key *key)
{
	if (key == NULL) {
		return;
	}
	EVP_PKEY_free(key->pkey);
	free(key);
}
