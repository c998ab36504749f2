/* SPDX-License-Identifier: MIT
 * sig.c - RSASSA-PKCS1-v1_5 with SHA-256 over SRUP's signed bytes (spec §1.3), sign and verify.
 * The scheme is fixed here, never taken from a message. Signed bytes are hashed in place as
 * segments: nothing is copied or allocated here beyond OpenSSL's own per-operation context. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "codec.h"
#include "crypto_internal.h"
#include "export.h"
#include "srup/sig.h"

static int segs_ok(const struct srup_bytes *segs, size_t n)
{
	if (n > 0 && segs == NULL) {
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		if (segs[i].p == NULL && segs[i].len > 0) {
			return 0;
		}
	}
	return 1;
}

SRUP_API enum srup_err srup_sig_sign(const struct srup_key *key, const struct srup_bytes *segs,
                                     size_t n, uint8_t *sig, size_t sig_cap, size_t *sig_len,
                                     struct srup_diag *diag)
{
	EVP_MD_CTX *md = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	enum srup_err rc = SRUP_ERR_CRYPTO;

	if (sig_len != NULL) {
		*sig_len = 0;
	}
	if (key == NULL || sig == NULL || sig_len == NULL || !segs_ok(segs, n)) {
		srup__diag_set(diag, NULL, 0, "missing key, signature buffer or data");
		return SRUP_ERR_INVAL;
	}
	if (!key->is_private) {
		srup__diag_set(diag, "key", 0, "signing needs a private key");
		return SRUP_ERR_KEY;
	}
	if (sig_cap < key->size) {
		srup__diag_set(diag, "signature", 0, "signature buffer is smaller than the key size");
		return SRUP_ERR_SPACE;
	}
	md = EVP_MD_CTX_new();
	if (md == NULL) {
		srup__diag_openssl(diag, "signature", "allocating a digest context");
		return SRUP_ERR_NOMEM;
	}
	if (EVP_DigestSignInit_ex(md, &pctx, "SHA256", NULL, NULL, key->pkey, NULL) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1) {
		srup__diag_openssl(diag, "signature", "setting up RSA/SHA-256 signing");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (segs[i].len > 0 && EVP_DigestSignUpdate(md, segs[i].p, segs[i].len) != 1) {
			srup__diag_openssl(diag, "signature", "hashing the signed bytes");
			goto out;
		}
	}
	size_t len = sig_cap;
	if (EVP_DigestSignFinal(md, sig, &len) != 1) {
		srup__diag_openssl(diag, "signature", "signing");
		goto out;
	}
	*sig_len = len;
	rc = SRUP_OK;
out:
	EVP_MD_CTX_free(md);
	return rc;
}

SRUP_API enum srup_err srup_sig_verify(const struct srup_key *key, const struct srup_bytes *segs,
                                       size_t n, const uint8_t *sig, size_t sig_len,
                                       struct srup_diag *diag)
{
	EVP_MD_CTX *md = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	enum srup_err rc = SRUP_ERR_CRYPTO;

	if (key == NULL || (sig == NULL && sig_len > 0) || !segs_ok(segs, n)) {
		srup__diag_set(diag, NULL, 0, "missing key, signature or data");
		return SRUP_ERR_INVAL;
	}
	/* A PKCS#1 v1.5 signature is exactly as long as the modulus; anything else is simply not
	 * a valid signature, and needs no OpenSSL call to say so. */
	if (sig_len != key->size) {
		srup__diag_set(diag, "signature", 0, "signature length differs from the key size");
		return SRUP_ERR_SIG;
	}
	md = EVP_MD_CTX_new();
	if (md == NULL) {
		srup__diag_openssl(diag, "signature", "allocating a digest context");
		return SRUP_ERR_NOMEM;
	}
	if (EVP_DigestVerifyInit_ex(md, &pctx, "SHA256", NULL, NULL, key->pkey, NULL) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1) {
		srup__diag_openssl(diag, "signature", "setting up RSA/SHA-256 verification");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (segs[i].len > 0 && EVP_DigestVerifyUpdate(md, segs[i].p, segs[i].len) != 1) {
			srup__diag_openssl(diag, "signature", "hashing the signed bytes");
			goto out;
		}
	}
	int ok = EVP_DigestVerifyFinal(md, sig, sig_len);
	if (ok == 1) {
		rc = SRUP_OK;
	} else if (ok == 0) {
		/* OpenSSL queues the reason (bad padding, wrong digest...) for a plain mismatch. */
		srup__diag_openssl(diag, "signature", "signature does not verify");
		rc = SRUP_ERR_SIG;
	} else {
		srup__diag_openssl(diag, "signature", "verification failed");
		rc = SRUP_ERR_CRYPTO;
	}
out:
	EVP_MD_CTX_free(md);
	return rc;
}

SRUP_API enum srup_err srup_msg_verify(const struct srup_msg *m, const struct srup_key *key,
                                       struct srup_diag *diag)
{
	if (m == NULL || key == NULL || m->raw == NULL) {
		srup__diag_set(diag, NULL, 0, "missing message or key (was it parsed?)");
		return SRUP_ERR_INVAL;
	}
	if (m->sig_off > m->sig_end || m->sig_end > m->raw_len ||
	    m->sig_end - m->sig_off != 2 + m->signature.len) {
		srup__diag_set(diag, "signature", m->sig_off, "message offsets are inconsistent");
		return SRUP_ERR_INVAL;
	}
	/* Spec §1.3: everything except the signature field (its len16 and its bytes). */
	const struct srup_bytes segs[2] = {
	        {m->raw, m->sig_off},
	        {m->raw + m->sig_end, m->raw_len - m->sig_end},
	};
	enum srup_err rc = srup_sig_verify(key, segs, 2, m->signature.p, m->signature.len, diag);
	if (rc != SRUP_OK && diag != NULL) {
		diag->offset = m->sig_off;
	}
	return rc;
}

SRUP_API enum srup_err srup_msg_sign_encode(const struct srup_msg *m, const struct srup_key *key,
                                            uint8_t *out, size_t cap, size_t *out_len,
                                            struct srup_diag *diag)
{
	struct srup__layout lay;

	if (out_len != NULL) {
		*out_len = 0;
	}
	if (m == NULL || key == NULL || out_len == NULL || (out == NULL && cap > 0)) {
		srup__diag_set(diag, NULL, 0, "missing message, key or output");
		return SRUP_ERR_INVAL;
	}
	if (!key->is_private) {
		srup__diag_set(diag, "key", 0, "signing needs a private key");
		return SRUP_ERR_KEY;
	}
	enum srup_err rc = srup__msg_layout(m, key->size, out, cap, &lay);
	if (rc != SRUP_OK) {
		srup__diag_set(diag, NULL, 0, "message cannot be encoded");
		return rc;
	}
	/* Sign the two segments around the hole msg.c left, writing the signature into it. */
	const struct srup_bytes segs[2] = {
	        {out, lay.hdr_len},
	        {out + lay.body_off, lay.total - lay.body_off},
	};
	size_t sig_len = 0;
	rc = srup_sig_sign(key, segs, 2, out + lay.sig_off + 2, key->size, &sig_len, diag);
	if (rc != SRUP_OK) {
		return rc;
	}
	if (sig_len != key->size) {
		srup__diag_set(diag, "signature", lay.sig_off, "signature is shorter than the key size");
		return SRUP_ERR_CRYPTO;
	}
	*out_len = lay.total;
	return SRUP_OK;
}
