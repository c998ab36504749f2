/* SPDX-License-Identifier: MIT
 * crypto.c - srup-registry's OpenSSL 3 work: base64, key bodies and their checks, RSA-PSS
 * signatures (KeyEx uses PSS, unlike SRUP messages), and client certificates from CSRs. */
#include "registry.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

static EVP_PKEY *pem_pubkey(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *k = b != NULL ? PEM_read_bio_PUBKEY(b, NULL, NULL, NULL) : NULL;

	BIO_free(b);
	return k;
}

const char *reg_check_key(const char *pem, char **canonical)
{
	EVP_PKEY *k = pem_pubkey(pem);
	BIGNUM *e = NULL;
	BIO *b = NULL;
	const char *why = NULL;
	char *p;
	long n;
	int bits;

	*canonical = NULL;
	if (k == NULL) {
		return "the key is not a public key (DER SubjectPublicKeyInfo, base64)";
	}
	if (EVP_PKEY_get_base_id(k) != EVP_PKEY_RSA) {
		why = "the key is not an RSA key";
		goto out;
	}
	bits = EVP_PKEY_get_bits(k);
	if (bits < 2048 || bits > 4096) {
		why = "the RSA key must have 2048 to 4096 bits";
		goto out;
	}
	if (EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_E, &e) != 1 || !BN_is_word(e, 65537)) {
		why = "the RSA key's public exponent must be 65537";
		goto out;
	}
	b = BIO_new(BIO_s_mem());
	if (b == NULL || PEM_write_bio_PUBKEY(b, k) != 1) {
		why = "internal error";
		goto out;
	}
	n = BIO_get_mem_data(b, &p);
	*canonical = malloc((size_t)n + 1);
	if (*canonical == NULL) {
		why = "internal error";
		goto out;
	}
	memcpy(*canonical, p, (size_t)n);
	(*canonical)[n] = '\0';
out:
	BN_free(e);
	BIO_free(b);
	EVP_PKEY_free(k);
	return why;
}

int reg_pss_verify_key(EVP_PKEY *pub, const unsigned char *data, size_t len,
                       const unsigned char *sig, size_t sig_len)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	int ok = 0;

	/* Salt length auto-detected on verify: the reference signs with the maximum. */
	if (ctx != NULL && EVP_DigestVerifyInit_ex(ctx, &pctx, "SHA256", NULL, NULL, pub, NULL) == 1 &&
	    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
	    EVP_PKEY_CTX_set_rsa_mgf1_md_name(pctx, "SHA256", NULL) == 1 &&
	    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_AUTO) == 1) {
		ok = EVP_DigestVerify(ctx, sig, sig_len, data, len) == 1;
	}
	EVP_MD_CTX_free(ctx);
	return ok;
}

int reg_pss_verify(const char *pub_pem, const unsigned char *data, size_t len,
                   const unsigned char *sig, size_t sig_len)
{
	EVP_PKEY *k = pem_pubkey(pub_pem);
	int ok = k != NULL && reg_pss_verify_key(k, data, len, sig, sig_len);

	EVP_PKEY_free(k);
	return ok;
}

/* The one CN of name equal to identity? */
static int cn_is(X509_NAME *name, const char *identity)
{
	int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
	ASN1_STRING *s;
	int n = 0;

	if (idx < 0 || X509_NAME_get_index_by_NID(name, NID_commonName, idx) >= 0) {
		return 0; /* none, or more than one */
	}
	s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
	n = ASN1_STRING_length(s);
	return n == (int)strlen(identity) && memcmp(ASN1_STRING_get0_data(s), identity, (size_t)n) == 0;
}

static int add_ext(X509 *x, X509 *ca, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *e;
	int ok;

	X509V3_set_ctx(&ctx, ca, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (e == NULL) {
		return 0;
	}
	ok = X509_add_ext(x, e, -1) == 1;
	X509_EXTENSION_free(e);
	return ok;
}

char *reg_issue_cert(const char *csr_pem, size_t csr_len, const char *identity, X509 *ca,
                     EVP_PKEY *ca_key, const char **why)
{
	BIO *in = BIO_new_mem_buf(csr_pem, (int)csr_len);
	X509_REQ *req = in != NULL ? PEM_read_bio_X509_REQ(in, NULL, NULL, NULL) : NULL;
	EVP_PKEY *pk = req != NULL ? X509_REQ_get0_pubkey(req) : NULL;
	X509 *x = NULL;
	X509_NAME *nm = NULL;
	BIGNUM *serial = NULL;
	BIO *out = NULL;
	char *pem = NULL;
	char *p;
	long n;
	int type;
	int bits;

	*why = "internal error";
	if (req == NULL || pk == NULL) {
		*why = "csr is not a PEM certificate request";
		goto done;
	}
	if (X509_REQ_verify(req, pk) != 1) {
		*why = "the CSR's own signature does not verify";
		goto done;
	}
	if (!cn_is(X509_REQ_get_subject_name(req), identity)) {
		*why = "the CSR's CN is not the identity";
		goto done;
	}
	type = EVP_PKEY_get_base_id(pk);
	bits = EVP_PKEY_get_bits(pk);
	if (!((type == EVP_PKEY_RSA && bits >= 2048 && bits <= 4096) ||
	      (type == EVP_PKEY_EC && bits >= 256))) {
		*why = "the CSR's key must be RSA 2048-4096 or EC P-256 or larger";
		goto done;
	}
	x = X509_new();
	nm = X509_NAME_new();
	serial = BN_new();
	if (x == NULL || nm == NULL || serial == NULL ||
	    BN_rand(serial, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
	    BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)) == NULL ||
	    X509_set_version(x, 2) != 1 || X509_set_issuer_name(x, X509_get_subject_name(ca)) != 1 ||
	    X509_NAME_add_entry_by_txt(nm, "C", MBSTRING_ASC, (const unsigned char *)"UK", -1, -1, 0) !=
	            1 ||
	    X509_NAME_add_entry_by_txt(nm, "O", MBSTRING_ASC, (const unsigned char *)"SRUP_DEVICE", -1,
	                               -1, 0) != 1 ||
	    X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)identity, -1, -1,
	                               0) != 1 ||
	    X509_set_subject_name(x, nm) != 1 || X509_gmtime_adj(X509_getm_notBefore(x), 0) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x), 365L * 24 * 3600) == NULL ||
	    X509_set_pubkey(x, pk) != 1 ||
	    !add_ext(x, ca, NID_basic_constraints, "critical,CA:FALSE") ||
	    !add_ext(x, ca, NID_key_usage, "critical,digitalSignature,keyEncipherment") ||
	    !add_ext(x, ca, NID_ext_key_usage, "clientAuth") ||
	    !add_ext(x, ca, NID_subject_key_identifier, "hash") ||
	    !add_ext(x, ca, NID_authority_key_identifier, "keyid") ||
	    X509_sign(x, ca_key, EVP_sha256()) <= 0) {
		goto done;
	}
	out = BIO_new(BIO_s_mem());
	if (out == NULL || PEM_write_bio_X509(out, x) != 1) {
		goto done;
	}
	n = BIO_get_mem_data(out, &p);
	pem = malloc((size_t)n + 1);
	if (pem != NULL) {
		memcpy(pem, p, (size_t)n);
		pem[n] = '\0';
		*why = NULL;
	}
done:
	BIO_free(out);
	BN_free(serial);
	X509_NAME_free(nm);
	X509_free(x);
	X509_REQ_free(req);
	BIO_free(in);
	return pem;
}

char *reg_read_file(const char *path, size_t max)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	size_t n;

	if (f == NULL) {
		return NULL;
	}
	buf = malloc(max + 1);
	n = buf != NULL ? fread(buf, 1, max + 1, f) : 0;
	fclose(f);
	if (buf == NULL || n > max) {
		free(buf);
		errno = EFBIG;
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

EVP_PKEY *reg_load_private(const char *path)
{
	FILE *f = fopen(path, "r");
	EVP_PKEY *k;

	if (f == NULL) {
		return NULL;
	}
	k = PEM_read_PrivateKey(f, NULL, NULL, (void *)"");
	fclose(f);
	return k;
}

X509 *reg_load_cert(const char *path)
{
	FILE *f = fopen(path, "r");
	X509 *x;

	if (f == NULL) {
		return NULL;
	}
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	return x;
}
