/* SPDX-License-Identifier: MIT
 * test_key.c - unit tests for srup/key.h: every accepted PEM form, every refused one, generation,
 * export and reload, fingerprints. Fingerprints are checked against values computed with the
 * openssl command line, not with this library. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <unistd.h>

#include "srup/srup.h"
#include "testutil.h"

#define FIXTURE(f) SRUP_VECTORS_DIR "/../unit/fixtures/" f

/* `openssl pkey -pubin -in <key> -outform DER | sha256sum` */
static const char *const server_fpr =
        "fa5271432105b5037e66ff7043e0e70352668c2b2975f9bb0165fc601e4a7cdd";
static const char *const pysrup_fpr =
        "5edf9cb623cd88646a576a2efcae81ecc14510bff9eb267541cb73660651250d";

static void fpr_hex(const struct srup_key *key, char out[65])
{
	uint8_t fpr[32];
	ck_assert_int_eq(srup_key_fingerprint(key, fpr), SRUP_OK);
	for (size_t i = 0; i < 32; i++) {
		snprintf(out + 2 * i, 3, "%02x", fpr[i]);
	}
}

/* Load a file through srup_key_load_pem (the memory path) and return the result code. */
static enum srup_err load_mem(const char *path, enum srup_key_kind kind, struct srup_key **out,
                              struct srup_diag *diag)
{
	size_t len = 0;
	char *pem = tu_read_file(path, &len);
	enum srup_err rc = srup_key_load_pem(pem, len, kind, out, diag);
	free(pem);
	return rc;
}

static struct srup_key *must_load(const char *path, enum srup_key_kind kind)
{
	struct srup_key *key = NULL;
	struct srup_diag diag;
	memset(&diag, 0, sizeof diag);
	enum srup_err rc = load_mem(path, kind, &key, &diag);
	ck_assert_msg(rc == SRUP_OK, "%s: %s (%s)", path, srup_strerror(rc), diag.detail);
	ck_assert_ptr_nonnull(key);
	return key;
}

/* Assert that path is refused as kind with rc, that *out stays NULL and that diag explains. */
static void assert_refused(const char *path, enum srup_key_kind kind, enum srup_err want,
                           const char *detail_part)
{
	struct srup_key *key = (struct srup_key *)&key; /* must be overwritten with NULL */
	struct srup_diag diag;
	memset(&diag, 0, sizeof diag);
	enum srup_err rc = load_mem(path, kind, &key, &diag);
	ck_assert_msg(rc == want, "%s: got %s, want %s", path, srup_err_name(rc), srup_err_name(want));
	ck_assert_ptr_null(key);
	ck_assert_msg(diag.detail[0] != '\0', "%s: no diagnostic", path);
	if (detail_part != NULL) {
		ck_assert_msg(strstr(diag.detail, detail_part) != NULL, "%s: diag '%s' lacks '%s'", path,
		              diag.detail, detail_part);
	}
	/* The file path gives the same verdict as the memory path. */
	key = (struct srup_key *)&key;
	ck_assert_int_eq(srup_key_load_file(path, kind, &key, NULL), want);
	ck_assert_ptr_null(key);
}

/* clang-format off */
static const struct {
	const char *file;
	int is_private;
} good_keys[] = {
		{"keys/device_private.pem", 1},      /* PKCS#8 "PRIVATE KEY" */
		{"keys/server_private.pem", 1},      /* PKCS#1 "RSA PRIVATE KEY" */
		{"keys/pysrup_test_private.pem", 1}, /* PKCS#8 body under the "RSA PRIVATE KEY" label */
		{"keys/device_public.pem", 0},       /* SubjectPublicKeyInfo */
		{"keys/server_public.pem", 0},
		{"keys/pysrup_test_public.pem", 0},
};
/* clang-format on */

START_TEST(test_key_loads_every_vector_key)
{
	const char *path = tu_vector_path(good_keys[_i].file);
	enum srup_key_kind kind = good_keys[_i].is_private ? SRUP_KEY_PRIVATE : SRUP_KEY_PUBLIC;
	struct srup_key *key = must_load(path, kind);
	ck_assert_int_eq(srup_key_is_private(key), good_keys[_i].is_private);
	/* The decoder's discarded attempts are not left on the caller's error queue. */
	ck_assert_uint_eq(ERR_peek_error(), 0);
	ck_assert_uint_eq(srup_key_bits(key), 2048);
	ck_assert_uint_eq(srup_key_size(key), 256);
	ck_assert_ptr_nonnull(srup_key_evp(key));
	ck_assert_int_eq(EVP_PKEY_is_a(srup_key_evp(key), "RSA"), 1);
	srup_key_free(key);

	/* Same through the file path. */
	key = NULL;
	ck_assert_int_eq(srup_key_load_file(path, kind, &key, NULL), SRUP_OK);
	ck_assert_int_eq(srup_key_is_private(key), good_keys[_i].is_private);
	srup_key_free(key);
}
END_TEST

START_TEST(test_key_fingerprint_matches_openssl_cli)
{
	char hex[65];
	struct srup_key *key = must_load(tu_vector_path("keys/server_public.pem"), SRUP_KEY_PUBLIC);
	fpr_hex(key, hex);
	ck_assert_str_eq(hex, server_fpr);
	srup_key_free(key);

	/* The private key's fingerprint is that of its public half. */
	key = must_load(tu_vector_path("keys/server_private.pem"), SRUP_KEY_PRIVATE);
	fpr_hex(key, hex);
	ck_assert_str_eq(hex, server_fpr);
	srup_key_free(key);

	key = must_load(tu_vector_path("keys/pysrup_test_private.pem"), SRUP_KEY_PRIVATE);
	fpr_hex(key, hex);
	ck_assert_str_eq(hex, pysrup_fpr);
	srup_key_free(key);
}
END_TEST

START_TEST(test_key_loads_pkcs1_public)
{
	struct srup_key *key = must_load(FIXTURE("server_public_pkcs1.pem"), SRUP_KEY_PUBLIC);
	char hex[65];
	ck_assert_int_eq(srup_key_is_private(key), 0);
	ck_assert_uint_eq(srup_key_bits(key), 2048);
	fpr_hex(key, hex);
	ck_assert_str_eq(hex, server_fpr);
	srup_key_free(key);
}
END_TEST

START_TEST(test_key_public_kind_takes_public_half)
{
	struct srup_key *key = must_load(tu_vector_path("keys/server_private.pem"), SRUP_KEY_PUBLIC);
	char hex[65];
	ck_assert_int_eq(srup_key_is_private(key), 0);
	fpr_hex(key, hex);
	ck_assert_str_eq(hex, server_fpr);
	/* No private material is left to export. */
	char *pem = (char *)&pem;
	size_t pem_len = 99;
	ck_assert_int_eq(srup_key_private_pem(key, &pem, &pem_len), SRUP_ERR_KEY);
	ck_assert_ptr_null(pem);
	ck_assert_uint_eq(pem_len, 0);
	srup_key_free(key);
}
END_TEST

START_TEST(test_key_rejects_public_as_private)
{
	assert_refused(tu_vector_path("keys/server_public.pem"), SRUP_KEY_PRIVATE, SRUP_ERR_KEY,
	               "private key is required");
	assert_refused(FIXTURE("server_public_pkcs1.pem"), SRUP_KEY_PRIVATE, SRUP_ERR_KEY,
	               "private key is required");
}
END_TEST

START_TEST(test_key_rejects_encrypted)
{
	/* stdin is closed so that a prompt, if OpenSSL tried one, could not hang the test. */
	ck_assert_ptr_nonnull(freopen("/dev/null", "r", stdin));
	assert_refused(FIXTURE("device_private_encrypted_pkcs8.pem"), SRUP_KEY_PRIVATE, SRUP_ERR_KEY,
	               "passphrase");
	assert_refused(FIXTURE("device_private_encrypted_pkcs8.pem"), SRUP_KEY_PUBLIC, SRUP_ERR_KEY,
	               "passphrase");
	assert_refused(FIXTURE("server_private_encrypted_legacy.pem"), SRUP_KEY_PRIVATE, SRUP_ERR_KEY,
	               "passphrase");
}
END_TEST

START_TEST(test_key_rejects_non_rsa)
{
	assert_refused(FIXTURE("ec_private.pem"), SRUP_KEY_PRIVATE, SRUP_ERR_KEY, "not an RSA key");
	assert_refused(FIXTURE("ec_public.pem"), SRUP_KEY_PUBLIC, SRUP_ERR_KEY, "not an RSA key");
	/* RSA-PSS keys are restricted to PSS signatures; SRUP uses PKCS#1 v1.5. */
	assert_refused(FIXTURE("rsapss_private.pem"), SRUP_KEY_PRIVATE, SRUP_ERR_KEY, "not an RSA key");
}
END_TEST

START_TEST(test_key_rejects_wrong_size)
{
	assert_refused(FIXTURE("rsa1024_private.pem"), SRUP_KEY_PRIVATE, SRUP_ERR_KEY, "1024 bits");
	assert_refused(FIXTURE("rsa1024_public.pem"), SRUP_KEY_PUBLIC, SRUP_ERR_KEY, "1024 bits");
	assert_refused(FIXTURE("rsa8200_public.pem"), SRUP_KEY_PUBLIC, SRUP_ERR_KEY, "8200 bits");
	/* 8192 is the largest accepted. */
	struct srup_key *key = must_load(FIXTURE("rsa8192_public.pem"), SRUP_KEY_PUBLIC);
	ck_assert_uint_eq(srup_key_bits(key), 8192);
	ck_assert_uint_eq(srup_key_size(key), 1024);
	srup_key_free(key);
}
END_TEST

/* PEM (SubjectPublicKeyInfo) of an RSA public key with modulus n and exponent e, made from
 * parameters: a key no keygen would produce, which is exactly what an attacker can register. */
static char *pub_pem_from(const BIGNUM *n, const BIGNUM *e, size_t *len)
{
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	ck_assert_ptr_nonnull(bld);
	ck_assert_int_eq(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n), 1);
	ck_assert_int_eq(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e), 1);
	OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
	ck_assert_ptr_nonnull(params);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	EVP_PKEY *pkey = NULL;
	ck_assert_ptr_nonnull(ctx);
	ck_assert_int_eq(EVP_PKEY_fromdata_init(ctx), 1);
	ck_assert_int_eq(EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params), 1);
	BIO *bio = BIO_new(BIO_s_mem());
	ck_assert_int_eq(PEM_write_bio_PUBKEY(bio, pkey), 1);
	char *data = NULL;
	long n_bytes = BIO_get_mem_data(bio, &data);
	ck_assert_int_gt(n_bytes, 0);
	char *out = malloc((size_t)n_bytes + 1);
	ck_assert_ptr_nonnull(out);
	memcpy(out, data, (size_t)n_bytes);
	out[n_bytes] = '\0';
	*len = (size_t)n_bytes;
	BIO_free(bio);
	EVP_PKEY_free(pkey);
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	return out;
}

static enum srup_err load_text(const char *pem, size_t len, enum srup_key_kind kind,
                               struct srup_diag *diag)
{
	struct srup_key *key = NULL;
	enum srup_err rc = srup_key_load_pem(pem, len, kind, &key, diag);
	ck_assert(rc == SRUP_OK ? key != NULL : key == NULL);
	srup_key_free(key);
	return rc;
}

/* e = 65537 only: keys made by `openssl genpkey ... rsa_keygen_pubexp:3` (private and public
 * half) and a 2048-bit modulus with a 2040-bit odd exponent are refused with a reason; the
 * same modulus with e = 65537 loads (the construction itself is sound). */
START_TEST(test_key_rejects_public_exponent_other_than_65537)
{
	char tdir[] = "/tmp/srup-key-e-XXXXXX";
	char cmd[512];
	char priv[96];
	char pub[96];
	struct srup_diag diag;

	ck_assert_ptr_nonnull(mkdtemp(tdir));
	snprintf(priv, sizeof priv, "%s/e3.pem", tdir);
	snprintf(pub, sizeof pub, "%s/e3.pub.pem", tdir);
	snprintf(cmd, sizeof cmd,
	         "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 "
	         "-pkeyopt rsa_keygen_pubexp:3 -out %s 2>/dev/null && "
	         "openssl pkey -in %s -pubout -out %s 2>/dev/null",
	         priv, priv, pub);
	ck_assert_int_eq(system(cmd), 0);
	assert_refused(priv, SRUP_KEY_PRIVATE, SRUP_ERR_KEY, "exponent is not 65537");
	assert_refused(priv, SRUP_KEY_PUBLIC, SRUP_ERR_KEY, "exponent is not 65537");
	assert_refused(pub, SRUP_KEY_PUBLIC, SRUP_ERR_KEY, "exponent is not 65537");
	unlink(priv);
	unlink(pub);
	ck_assert_int_eq(rmdir(tdir), 0);

	BIGNUM *n = BN_new();
	BIGNUM *e = BN_new();
	ck_assert_int_eq(BN_rand(n, 2048, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ODD), 1);
	ck_assert_int_eq(BN_rand(e, 2040, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ODD), 1);
	size_t len = 0;
	char *pem = pub_pem_from(n, e, &len);
	memset(&diag, 0, sizeof diag);
	ck_assert_int_eq(load_text(pem, len, SRUP_KEY_PUBLIC, &diag), SRUP_ERR_KEY);
	ck_assert_msg(strstr(diag.detail, "2040 bits") != NULL, "%s", diag.detail);
	free(pem);
	ck_assert_int_eq(BN_set_word(e, 65537), 1);
	pem = pub_pem_from(n, e, &len);
	memset(&diag, 0, sizeof diag);
	ck_assert_msg(load_text(pem, len, SRUP_KEY_PUBLIC, &diag) == SRUP_OK, "%s", diag.detail);
	free(pem);
	ck_assert_int_eq(BN_set_word(e, 65539), 1); /* prime, odd, but not 65537 */
	pem = pub_pem_from(n, e, &len);
	ck_assert_int_eq(load_text(pem, len, SRUP_KEY_PUBLIC, &diag), SRUP_ERR_KEY);
	free(pem);
	BN_free(n);
	BN_free(e);
}
END_TEST

START_TEST(test_key_rejects_garbage)
{
	static const char *const bad[] = {
	        "not a key",
	        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
	        "-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n",
	        "-----BEGIN PUBLIC KEY-----\n",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct srup_key *key = NULL;
		struct srup_diag diag;
		memset(&diag, 0, sizeof diag);
		ck_assert_int_eq(srup_key_load_pem(bad[i], strlen(bad[i]), SRUP_KEY_PUBLIC, &key, &diag),
		                 SRUP_ERR_KEY);
		ck_assert_ptr_null(key);
		ck_assert(diag.detail[0] != '\0');
	}
	/* A truncated copy of a good key (every 64th prefix) is refused, never crashes. */
	size_t len = 0;
	char *pem = tu_read_file(tu_vector_path("keys/server_private.pem"), &len);
	for (size_t cut = 0; cut < len - 40; cut += 64) {
		struct srup_key *key = NULL;
		enum srup_err rc = srup_key_load_pem(pem, cut, SRUP_KEY_PRIVATE, &key, NULL);
		ck_assert_msg(rc == SRUP_ERR_KEY, "prefix %zu gave %s", cut, srup_err_name(rc));
		ck_assert_ptr_null(key);
	}
	free(pem);
}
END_TEST

START_TEST(test_key_rejects_bad_arguments)
{
	struct srup_key *key = NULL;
	ck_assert_int_eq(srup_key_load_pem(NULL, 10, SRUP_KEY_PUBLIC, &key, NULL), SRUP_ERR_INVAL);
	ck_assert_int_eq(srup_key_load_pem("x", 1, SRUP_KEY_PUBLIC, NULL, NULL), SRUP_ERR_INVAL);
	ck_assert_int_eq(srup_key_load_pem("x", 1, (enum srup_key_kind)7, &key, NULL), SRUP_ERR_INVAL);
	ck_assert_int_eq(srup_key_load_pem("x", 0, SRUP_KEY_PUBLIC, &key, NULL), SRUP_ERR_KEY);
	ck_assert_int_eq(srup_key_load_file(NULL, SRUP_KEY_PUBLIC, &key, NULL), SRUP_ERR_INVAL);
	ck_assert_ptr_null(key);
	uint8_t fpr[32];
	ck_assert_int_eq(srup_key_fingerprint(NULL, fpr), SRUP_ERR_INVAL);
	ck_assert_uint_eq(srup_key_size(NULL), 0);
	ck_assert_uint_eq(srup_key_bits(NULL), 0);
	ck_assert_int_eq(srup_key_is_private(NULL), 0);
	ck_assert_ptr_null(srup_key_evp(NULL));
	srup_key_free(NULL);
}
END_TEST

START_TEST(test_key_load_file_io_errors)
{
	struct srup_key *key = NULL;
	struct srup_diag diag;
	memset(&diag, 0, sizeof diag);
	ck_assert_int_eq(
	        srup_key_load_file(FIXTURE("does-not-exist.pem"), SRUP_KEY_PUBLIC, &key, &diag),
	        SRUP_ERR_IO);
	ck_assert_ptr_null(key);
	ck_assert_ptr_nonnull(strstr(diag.detail, "No such file"));
	/* A directory opens but cannot be read. */
	ck_assert_int_eq(srup_key_load_file(SRUP_VECTORS_DIR, SRUP_KEY_PUBLIC, &key, NULL),
	                 SRUP_ERR_IO);
	ck_assert_ptr_null(key);
}
END_TEST

START_TEST(test_key_generate_export_reload)
{
	struct srup_key *key = NULL;
	ck_assert_int_eq(srup_key_generate(2048, &key, NULL), SRUP_OK);
	ck_assert_int_eq(srup_key_is_private(key), 1);
	ck_assert_uint_eq(srup_key_bits(key), 2048);
	ck_assert_uint_eq(srup_key_size(key), 256);

	BIGNUM *e = NULL;
	ck_assert_int_eq(EVP_PKEY_get_bn_param(srup_key_evp(key), OSSL_PKEY_PARAM_RSA_E, &e), 1);
	ck_assert_uint_eq(BN_get_word(e), 65537);
	BN_free(e);

	char orig[65];
	char again[65];
	fpr_hex(key, orig);

	char *pem = NULL;
	size_t pem_len = 0;
	ck_assert_int_eq(srup_key_private_pem(key, &pem, &pem_len), SRUP_OK);
	ck_assert_uint_eq(strlen(pem), pem_len);
	ck_assert_int_eq(strncmp(pem, "-----BEGIN PRIVATE KEY-----\n", 28), 0);
	struct srup_key *priv = NULL;
	ck_assert_int_eq(srup_key_load_pem(pem, pem_len, SRUP_KEY_PRIVATE, &priv, NULL), SRUP_OK);
	ck_assert_int_eq(srup_key_is_private(priv), 1);
	fpr_hex(priv, again);
	ck_assert_str_eq(orig, again);
	free(pem);

	ck_assert_int_eq(srup_key_public_pem(key, &pem, &pem_len), SRUP_OK);
	ck_assert_uint_eq(strlen(pem), pem_len);
	ck_assert_int_eq(strncmp(pem, "-----BEGIN PUBLIC KEY-----\n", 27), 0);
	struct srup_key *pub = NULL;
	ck_assert_int_eq(srup_key_load_pem(pem, pem_len, SRUP_KEY_PUBLIC, &pub, NULL), SRUP_OK);
	ck_assert_int_eq(srup_key_is_private(pub), 0);
	fpr_hex(pub, again);
	ck_assert_str_eq(orig, again);
	free(pem);

	/* A public key exports its public half only. */
	ck_assert_int_eq(srup_key_public_pem(pub, &pem, &pem_len), SRUP_OK);
	free(pem);
	ck_assert_int_eq(srup_key_private_pem(pub, &pem, &pem_len), SRUP_ERR_KEY);
	ck_assert_ptr_null(pem);

	/* Two generated keys differ. */
	struct srup_key *other = NULL;
	ck_assert_int_eq(srup_key_generate(2048, &other, NULL), SRUP_OK);
	fpr_hex(other, again);
	ck_assert_str_ne(orig, again);

	srup_key_free(other);
	srup_key_free(pub);
	srup_key_free(priv);
	srup_key_free(key);
}
END_TEST

START_TEST(test_key_generate_3072)
{
	struct srup_key *key = NULL;
	ck_assert_int_eq(srup_key_generate(3072, &key, NULL), SRUP_OK);
	ck_assert_uint_eq(srup_key_bits(key), 3072);
	ck_assert_uint_eq(srup_key_size(key), 384);
	srup_key_free(key);
}
END_TEST

START_TEST(test_key_generate_rejects_bad_sizes)
{
	static const unsigned bad[] = {0, 1024, 2047, 8193, 16384};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct srup_key *key = (struct srup_key *)&key;
		struct srup_diag diag;
		memset(&diag, 0, sizeof diag);
		ck_assert_int_eq(srup_key_generate(bad[i], &key, &diag), SRUP_ERR_INVAL);
		ck_assert_ptr_null(key);
		ck_assert_str_eq(diag.field, "bits");
	}
	ck_assert_int_eq(srup_key_generate(2048, NULL, NULL), SRUP_ERR_INVAL);
}
END_TEST

START_TEST(test_key_export_rejects_bad_arguments)
{
	char *pem = NULL;
	size_t pem_len = 0;
	ck_assert_int_eq(srup_key_public_pem(NULL, &pem, &pem_len), SRUP_ERR_INVAL);
	ck_assert_int_eq(srup_key_private_pem(NULL, &pem, &pem_len), SRUP_ERR_INVAL);
	struct srup_key *key = must_load(tu_vector_path("keys/server_private.pem"), SRUP_KEY_PRIVATE);
	ck_assert_int_eq(srup_key_public_pem(key, NULL, &pem_len), SRUP_ERR_INVAL);
	ck_assert_int_eq(srup_key_private_pem(key, &pem, NULL), SRUP_ERR_INVAL);
	/* A PKCS#1 file is exported as PKCS#8 and reloads to the same key. */
	ck_assert_int_eq(srup_key_private_pem(key, &pem, &pem_len), SRUP_OK);
	ck_assert_int_eq(strncmp(pem, "-----BEGIN PRIVATE KEY-----\n", 28), 0);
	struct srup_key *again = NULL;
	ck_assert_int_eq(srup_key_load_pem(pem, pem_len, SRUP_KEY_PRIVATE, &again, NULL), SRUP_OK);
	char hex[65];
	fpr_hex(again, hex);
	ck_assert_str_eq(hex, server_fpr);
	free(pem);
	srup_key_free(again);
	srup_key_free(key);
}
END_TEST

Suite *key_suite(void)
{
	Suite *s = suite_create("key");
	TCase *tc = tcase_create("key");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_key_loads_every_vector_key, 0,
	                    (int)(sizeof good_keys / sizeof good_keys[0]));
	tcase_add_test(tc, test_key_fingerprint_matches_openssl_cli);
	tcase_add_test(tc, test_key_loads_pkcs1_public);
	tcase_add_test(tc, test_key_public_kind_takes_public_half);
	tcase_add_test(tc, test_key_rejects_public_as_private);
	tcase_add_test(tc, test_key_rejects_encrypted);
	tcase_add_test(tc, test_key_rejects_non_rsa);
	tcase_add_test(tc, test_key_rejects_wrong_size);
	tcase_add_test(tc, test_key_rejects_public_exponent_other_than_65537);
	tcase_add_test(tc, test_key_rejects_garbage);
	tcase_add_test(tc, test_key_rejects_bad_arguments);
	tcase_add_test(tc, test_key_load_file_io_errors);
	tcase_add_test(tc, test_key_generate_export_reload);
	tcase_add_test(tc, test_key_generate_3072);
	tcase_add_test(tc, test_key_generate_rejects_bad_sizes);
	tcase_add_test(tc, test_key_export_rejects_bad_arguments);
	suite_add_tcase(s, tc);
	return s;
}
