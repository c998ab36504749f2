/* SPDX-License-Identifier: MIT
 * verifier.c - a prepared RSASSA-PKCS1-v1_5 / SHA-256 verifier for one key, for hot paths that
 * check many messages from one sender. Same scheme and result as srup_msg_verify (sig.c); it only
 * moves the per-call OpenSSL set-up (fetch, context, padding) to creation time. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "crypto_internal.h"
#include "export.h"
#include "srup/sig.h"

struct srup_verifier {
	EVP_PKEY *pkey;     /* own reference */
	EVP_MD *md;         /* SHA-256, fetched once */
	EVP_MD_CTX *mdctx;  /* re-initialised per message */
	EVP_PKEY_CTX *pctx; /* verify-initialised once: PKCS#1 v1.5, SHA-256 DigestInfo */
	size_t size;        /* signature length the key needs */
};

SRUP_API void srup_verifier_free(struct srup_verifier *v)
{
	if (v == NULL) {
		return;
	}
	EVP_PKEY_CTX_free(v->pctx);
	EVP_MD_CTX_free(v->mdctx);
	EVP_MD_free(v->md);
	EVP_PKEY_free(v->pkey);
	free(v);
}

SRUP_API enum srup_err srup_verifier_new(const struct srup_key *key, struct srup_verifier **out,
                                         struct srup_diag *diag)
{
	struct srup_verifier *v = NULL;
	enum srup_err rc = SRUP_ERR_CRYPTO;

	if (out != NULL) {
		*out = NULL;
	}
	if (key == NULL || out == NULL) {
		srup__diag_set(diag, NULL, 0, "missing key or output");
		return SRUP_ERR_INVAL;
	}
	v = calloc(1, sizeof *v);
	if (v == NULL) {
		srup__diag_set(diag, NULL, 0, "allocating a verifier");
		return SRUP_ERR_NOMEM;
	}
	v->size = key->size;
	if (EVP_PKEY_up_ref(key->pkey) != 1) {
		srup__diag_openssl(diag, "key", "taking a key reference");
		goto fail;
	}
	v->pkey = key->pkey;
	v->md = EVP_MD_fetch(NULL, "SHA256", NULL);
	v->mdctx = EVP_MD_CTX_new();
	v->pctx = EVP_PKEY_CTX_new_from_pkey(NULL, v->pkey, NULL);
	if (v->md == NULL || v->mdctx == NULL || v->pctx == NULL) {
		srup__diag_openssl(diag, "key", "preparing verify contexts");
		rc = SRUP_ERR_NOMEM;
		goto fail;
	}
	if (EVP_PKEY_verify_init(v->pctx) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(v->pctx, RSA_PKCS1_PADDING) != 1 ||
	    EVP_PKEY_CTX_set_signature_md(v->pctx, v->md) != 1) {
		srup__diag_openssl(diag, "key", "initialising RSA PKCS#1 v1.5 verification");
		goto fail;
	}
	*out = v;
	return SRUP_OK;

fail:
	srup_verifier_free(v);
	return rc;
}

SRUP_API enum srup_err srup_verifier_msg(struct srup_verifier *v, const struct srup_msg *m,
                                         struct srup_diag *diag)
{
	uint8_t dgst[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;

	if (v == NULL || m == NULL || m->raw == NULL || m->sig_off > m->sig_end ||
	    m->sig_end > m->raw_len) {
		srup__diag_set(diag, NULL, 0, "not a parsed message");
		return SRUP_ERR_INVAL;
	}
	if (m->signature.len != v->size) {
		/* A signature of another length cannot be this key's: no OpenSSL call needed. */
		srup__diag_set(diag, "signature", m->sig_off, "signature length differs from key size");
		return SRUP_ERR_SIG;
	}
	/* spec §1.3: the signed bytes are the message less the signature field. */
	if (EVP_DigestInit_ex2(v->mdctx, v->md, NULL) != 1 ||
	    EVP_DigestUpdate(v->mdctx, m->raw, m->sig_off) != 1 ||
	    EVP_DigestUpdate(v->mdctx, m->raw + m->sig_end, m->raw_len - m->sig_end) != 1 ||
	    EVP_DigestFinal_ex(v->mdctx, dgst, &dlen) != 1) {
		srup__diag_openssl(diag, "signature", "hashing the signed bytes");
		return SRUP_ERR_CRYPTO;
	}
	int ok = EVP_PKEY_verify(v->pctx, m->signature.p, m->signature.len, dgst, dlen);
	if (ok == 1) {
		return SRUP_OK;
	}
	/* The same mapping as srup_sig_verify: only 1 is valid, 0 is a mismatch. */
	if (ok == 0) {
		srup__diag_openssl(diag, "signature", "signature does not verify");
		return SRUP_ERR_SIG;
	}
	srup__diag_openssl(diag, "signature", "verification failed");
	return SRUP_ERR_CRYPTO;
}
