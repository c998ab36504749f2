/* SPDX-License-Identifier: MIT
 * envelope.c - the encrypted field of spec §4: a random AES-256 key wrapped with
 * RSAES-PKCS1-v1_5, data in AES-256-CBC with PKCS#7 padding. Every length in a received blob
 * is a claim and is checked before use. There is no MAC: the blob is authenticated only by the
 * signature of the message that carries it. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "crypto_internal.h"
#include "export.h"
#include "reader.h"
#include "srup/envelope.h"

#define AES_KEY_LEN 32u
#define AES_IV_LEN  16u
#define AES_BLOCK   16u
/* Fixed part of a blob: u32le K, IV, u32le C, u32le P. */
#define BLOB_FIXED (4u + AES_IV_LEN + 4u + 4u)
/* The reference writes K, C and P as host ints, so each must fit a signed 32-bit int. */
#define BLOB_INT_MAX 0x7FFFFFFFu

static void put_u32le(uint8_t *p, size_t v)
{
	for (unsigned i = 0; i < 4; i++) {
		p[i] = (uint8_t)(v >> (8 * i));
	}
}

/* Wrap aes_key (AES_KEY_LEN bytes) under key with RSAES-PKCS1-v1_5; writes exactly key->size
 * bytes to out. */
static enum srup_err wrap_key(const struct srup_key *key, const uint8_t *aes_key, uint8_t *out,
                              struct srup_diag *diag)
{
	enum srup_err rc = SRUP_ERR_CRYPTO;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key->pkey, NULL);
	if (ctx == NULL || EVP_PKEY_encrypt_init(ctx) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1) {
		srup__diag_openssl(diag, "encrypted", "setting up the RSA key wrap");
		goto out;
	}
	size_t out_len = key->size;
	if (EVP_PKEY_encrypt(ctx, out, &out_len, aes_key, AES_KEY_LEN) != 1) {
		srup__diag_openssl(diag, "encrypted", "wrapping the AES key");
		goto out;
	}
	if (out_len != key->size) {
		srup__diag_set(diag, "encrypted", 0, "wrapped key is not the size of the RSA key");
		goto out;
	}
	rc = SRUP_OK;
out:
	EVP_PKEY_CTX_free(ctx);
	return rc;
}

SRUP_API enum srup_err srup_envelope_seal(const struct srup_key *key, const uint8_t *pt,
                                          size_t pt_len, uint8_t **blob, size_t *blob_len,
                                          struct srup_diag *diag)
{
	uint8_t aes_key[AES_KEY_LEN];
	uint8_t *out = NULL;
	EVP_CIPHER_CTX *cctx = NULL;
	enum srup_err rc = SRUP_ERR_CRYPTO;

	if (blob != NULL) {
		*blob = NULL;
	}
	if (blob_len != NULL) {
		*blob_len = 0;
	}
	if (key == NULL || blob == NULL || blob_len == NULL || (pt == NULL && pt_len > 0)) {
		srup__diag_set(diag, NULL, 0, "missing key, plaintext or output");
		return SRUP_ERR_INVAL;
	}
	/* C = 16 * (floor(P / 16) + 1): PKCS#7 always adds 1..16 bytes. K, C and the whole blob
	 * must stay within the reference's signed 32-bit ints. */
	size_t k = key->size;
	if (k > BLOB_INT_MAX - BLOB_FIXED || pt_len > BLOB_INT_MAX - BLOB_FIXED - k - AES_BLOCK) {
		srup__diag_set(diag, "encrypted", 0, "plaintext is too long for an envelope");
		return SRUP_ERR_INVAL;
	}
	size_t c = AES_BLOCK * (pt_len / AES_BLOCK + 1);
	size_t total = BLOB_FIXED + k + c;
	out = malloc(total);
	if (out == NULL) {
		srup__diag_set(diag, "encrypted", 0, "out of memory");
		return SRUP_ERR_NOMEM;
	}
	uint8_t *iv = out + 4 + k;
	uint8_t *ct = out + BLOB_FIXED + k;
	if (RAND_bytes(aes_key, (int)sizeof aes_key) != 1 || RAND_bytes(iv, (int)AES_IV_LEN) != 1) {
		srup__diag_openssl(diag, "encrypted", "drawing the AES key and IV");
		goto out;
	}
	put_u32le(out, k);
	rc = wrap_key(key, aes_key, out + 4, diag);
	if (rc != SRUP_OK) {
		goto out;
	}
	rc = SRUP_ERR_CRYPTO;
	put_u32le(out + 4 + k + AES_IV_LEN, c);
	put_u32le(out + 4 + k + AES_IV_LEN + 4, pt_len);

	cctx = EVP_CIPHER_CTX_new();
	if (cctx == NULL || EVP_EncryptInit_ex2(cctx, EVP_aes_256_cbc(), aes_key, iv, NULL) != 1) {
		srup__diag_openssl(diag, "encrypted", "setting up AES-256-CBC");
		goto out;
	}
	int n1 = 0;
	int n2 = 0;
	/* pt_len fits an int: it was bounded by BLOB_INT_MAX above. */
	if (EVP_EncryptUpdate(cctx, ct, &n1, pt, (int)pt_len) != 1 ||
	    EVP_EncryptFinal_ex(cctx, ct + n1, &n2) != 1) {
		srup__diag_openssl(diag, "encrypted", "encrypting");
		goto out;
	}
	if ((size_t)n1 + (size_t)n2 != c) {
		srup__diag_set(diag, "encrypted", 0, "ciphertext has an unexpected length");
		goto out;
	}
	*blob = out;
	*blob_len = total;
	out = NULL;
	rc = SRUP_OK;
out:
	OPENSSL_cleanse(aes_key, sizeof aes_key);
	EVP_CIPHER_CTX_free(cctx);
	free(out);
	return rc;
}

/* Parsed view of a blob; every pointer is inside the caller's buffer. */
struct blob_view {
	const uint8_t *wrapped; /* k bytes */
	const uint8_t *iv;      /* AES_IV_LEN bytes */
	const uint8_t *ct;      /* c bytes */
	size_t k;
	size_t c;
	size_t p;
};

static enum srup_err bad_blob(struct srup_diag *diag, const char *field, size_t off,
                              const char *detail)
{
	srup__diag_set(diag, field, off, detail);
	return SRUP_ERR_DECRYPT;
}

/* Check the blob's structure against itself and against the key: spec §4 gives
 * blob_len = 28 + K + C exactly, K = modulus bytes, C = 16 * (floor(P / 16) + 1). */
static enum srup_err blob_parse(const uint8_t *blob, size_t blob_len, size_t key_size,
                                struct blob_view *v, struct srup_diag *diag)
{
	struct srup__rd rd = {blob, blob_len, 0};
	uint64_t k = 0;
	uint64_t c = 0;
	uint64_t p = 0;

	if (srup__rd_uintle(&rd, 4, &k) != SRUP_OK) {
		return bad_blob(diag, "encrypted.key_len", 0, "blob ends inside the wrapped-key length");
	}
	if (k != key_size) {
		return bad_blob(diag, "encrypted.key_len", 0,
		                "wrapped-key length differs from the decryption key's size");
	}
	if (srup__rd_left(&rd) < k + AES_IV_LEN) {
		return bad_blob(diag, "encrypted.wrapped_key", rd.off,
		                "blob ends inside the wrapped key or IV");
	}
	v->wrapped = rd.p + rd.off;
	v->k = (size_t)k;
	rd.off += v->k;
	v->iv = rd.p + rd.off;
	rd.off += AES_IV_LEN;
	size_t c_off = rd.off;
	if (srup__rd_uintle(&rd, 4, &c) != SRUP_OK || srup__rd_uintle(&rd, 4, &p) != SRUP_OK) {
		return bad_blob(diag, "encrypted.ct_len", c_off, "blob ends inside the length fields");
	}
	if (c == 0 || c % AES_BLOCK != 0 || c > BLOB_INT_MAX) {
		return bad_blob(diag, "encrypted.ct_len", c_off,
		                "ciphertext length is not a positive multiple of 16");
	}
	if (c != srup__rd_left(&rd)) {
		return bad_blob(diag, "encrypted.ct_len", c_off,
		                "ciphertext length does not match the bytes in the blob");
	}
	/* PKCS#7 removes 1..16 bytes, so C - 16 <= P < C. */
	if (p >= c || p < c - AES_BLOCK) {
		return bad_blob(diag, "encrypted.pt_len", c_off + 4,
		                "plaintext length is inconsistent with the ciphertext length");
	}
	v->c = (size_t)c;
	v->p = (size_t)p;
	v->ct = rd.p + rd.off;
	return SRUP_OK;
}

/* RSAES-PKCS1-v1_5 unwrap of the AES key into aes_key[AES_KEY_LEN]. */
static enum srup_err unwrap_key(const struct srup_key *key, const struct blob_view *v,
                                uint8_t *aes_key, struct srup_diag *diag)
{
	enum srup_err rc = SRUP_ERR_DECRYPT;
	uint8_t buf[SRUP_KEY_BITS_MAX / 8];
	size_t out_len = sizeof buf;

	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key->pkey, NULL);
	if (ctx == NULL || EVP_PKEY_decrypt_init(ctx) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1) {
		srup__diag_openssl(diag, "encrypted.wrapped_key", "setting up the RSA key unwrap");
		rc = SRUP_ERR_CRYPTO;
		goto out;
	}
	if (EVP_PKEY_decrypt(ctx, buf, &out_len, v->wrapped, v->k) != 1) {
		srup__diag_openssl(diag, "encrypted.wrapped_key", "cannot unwrap the AES key");
		goto out;
	}
	if (out_len != AES_KEY_LEN) {
		srup__diag_set(diag, "encrypted.wrapped_key", 4, "unwrapped key is not 32 bytes");
		goto out;
	}
	memcpy(aes_key, buf, AES_KEY_LEN);
	rc = SRUP_OK;
out:
	OPENSSL_cleanse(buf, sizeof buf);
	EVP_PKEY_CTX_free(ctx);
	if (diag != NULL && rc != SRUP_OK) {
		diag->offset = 4;
	}
	return rc;
}

SRUP_API enum srup_err srup_envelope_open(const struct srup_key *key, const uint8_t *blob,
                                          size_t blob_len, uint8_t **pt, size_t *pt_len,
                                          struct srup_diag *diag)
{
	struct blob_view v;
	uint8_t aes_key[AES_KEY_LEN];
	uint8_t *out = NULL;
	size_t out_cap = 0;
	EVP_CIPHER_CTX *cctx = NULL;
	enum srup_err rc;

	if (pt != NULL) {
		*pt = NULL;
	}
	if (pt_len != NULL) {
		*pt_len = 0;
	}
	if (key == NULL || pt == NULL || pt_len == NULL || (blob == NULL && blob_len > 0)) {
		srup__diag_set(diag, NULL, 0, "missing key, blob or output");
		return SRUP_ERR_INVAL;
	}
	if (!key->is_private) {
		srup__diag_set(diag, "key", 0, "decryption needs a private key");
		return SRUP_ERR_KEY;
	}
	memset(&v, 0, sizeof v);
	rc = blob_parse(blob, blob_len, key->size, &v, diag);
	if (rc != SRUP_OK) {
		return rc;
	}
	rc = unwrap_key(key, &v, aes_key, diag);
	if (rc != SRUP_OK) {
		OPENSSL_cleanse(aes_key, sizeof aes_key);
		return rc;
	}
	rc = SRUP_ERR_DECRYPT;
	/* EVP_DecryptUpdate may need a block more than its input; C + 16 still fits blob_len,
	 * which is 28 + K + C. */
	out_cap = v.c + AES_BLOCK;
	out = malloc(out_cap);
	if (out == NULL) {
		srup__diag_set(diag, "encrypted", 0, "out of memory");
		rc = SRUP_ERR_NOMEM;
		goto out;
	}
	cctx = EVP_CIPHER_CTX_new();
	if (cctx == NULL || EVP_DecryptInit_ex2(cctx, EVP_aes_256_cbc(), aes_key, v.iv, NULL) != 1) {
		srup__diag_openssl(diag, "encrypted", "setting up AES-256-CBC");
		rc = SRUP_ERR_CRYPTO;
		goto out;
	}
	int n1 = 0;
	int n2 = 0;
	/* v.c <= BLOB_INT_MAX was checked in blob_parse. */
	if (EVP_DecryptUpdate(cctx, out, &n1, v.ct, (int)v.c) != 1) {
		srup__diag_openssl(diag, "encrypted.ciphertext", "decryption failed");
		goto out;
	}
	if (EVP_DecryptFinal_ex(cctx, out + n1, &n2) != 1) {
		srup__diag_openssl(diag, "encrypted.ciphertext",
		                   "bad padding (wrong key or corrupted ciphertext)");
		goto out;
	}
	if ((size_t)n1 + (size_t)n2 != v.p) {
		srup__diag_set(diag, "encrypted.pt_len", 24 + v.k,
		               "decrypted length differs from the recorded plaintext length");
		goto out;
	}
	*pt = out;
	*pt_len = v.p;
	out = NULL;
	rc = SRUP_OK;
out:
	OPENSSL_cleanse(aes_key, sizeof aes_key);
	EVP_CIPHER_CTX_free(cctx);
	if (out != NULL) {
		OPENSSL_cleanse(out, out_cap);
		free(out);
	}
	if (rc != SRUP_OK && diag != NULL && diag->offset == 0) {
		diag->offset = BLOB_FIXED + v.k;
	}
	return rc;
}
