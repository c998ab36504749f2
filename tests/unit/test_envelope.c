/* SPDX-License-Identifier: MIT
 * test_envelope.c - unit tests for srup/envelope.h: the pySRUP "real world" blob decrypts to
 * its recorded plaintext, seal/open round trips, and every malformed blob (truncated, extended,
 * lying lengths, wrong key, bad padding, wrong wrapped-key size) is refused with DECRYPT.
 * Malformed blobs with valid cryptography are built here with OpenSSL directly. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "srup/srup.h"
#include "testutil.h"

#define VECTOR "human_join_response_pysrup_real_world"

/* ---- helpers ---- */

static struct srup_key *load_key(const char *rel, enum srup_key_kind kind)
{
	struct srup_key *key = NULL;
	ck_assert_int_eq(srup_key_load_file(tu_vector_path(rel), kind, &key, NULL), SRUP_OK);
	return key;
}

/* Index of the vector named VECTOR in vectors.json. */
static int vector_index(const char *json)
{
	for (int i = 0; i < tu_vec_count(json); i++) {
		char *name = tu_vec_need(json, i, "name");
		int match = strcmp(name, VECTOR) == 0;
		free(name);
		if (match) {
			return i;
		}
	}
	ck_abort_msg("no vector named %s", VECTOR);
	return -1;
}

static size_t vector_num(const char *field)
{
	char *json = tu_read_file(tu_vector_path("vectors.json"), NULL);
	size_t v = tu_vec_num(json, vector_index(json), field);
	free(json);
	return v;
}

static uint8_t *vector_hex(const char *field, size_t *len)
{
	char *json = tu_read_file(tu_vector_path("vectors.json"), NULL);
	uint8_t *out = tu_vec_hex(json, vector_index(json), field, len);
	free(json);
	return out;
}

static uint32_t get_u32le(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_u32le(uint8_t *p, uint32_t v)
{
	for (unsigned i = 0; i < 4; i++) {
		p[i] = (uint8_t)(v >> (8 * i));
	}
}

/* The vector's encrypted field, located from the recorded offsets without the codec: the
 * HM_JOIN_RESP body is one var field after the signature. */
static uint8_t *vector_blob(size_t *blob_len)
{
	size_t ser_len = 0;
	uint8_t *ser = vector_hex("serialized_hex", &ser_len);
	size_t body = vector_num("signature_offset") + 2 + vector_num("signature_len");
	ck_assert_uint_lt(body + 2, ser_len);
	size_t n = (size_t)ser[body] << 8 | ser[body + 1];
	ck_assert_uint_eq(body + 2 + n, ser_len);
	ck_assert_uint_eq(n, vector_num("blob_len"));
	uint8_t *blob = malloc(n);
	ck_assert_ptr_nonnull(blob);
	memcpy(blob, ser + body + 2, n);
	free(ser);
	*blob_len = n;
	return blob;
}

/* Expect open to fail with DECRYPT, leaving *pt NULL and *pt_len 0. */
static void assert_refused(const struct srup_key *key, const uint8_t *blob, size_t blob_len,
                           const char *what)
{
	uint8_t *pt = (uint8_t *)&pt;
	size_t pt_len = 99;
	struct srup_diag diag;
	memset(&diag, 0, sizeof diag);
	enum srup_err rc = srup_envelope_open(key, blob, blob_len, &pt, &pt_len, &diag);
	ck_assert_msg(rc == SRUP_ERR_DECRYPT, "%s: got %s", what, srup_err_name(rc));
	ck_assert_ptr_null(pt);
	ck_assert_uint_eq(pt_len, 0);
	ck_assert_msg(diag.detail[0] != '\0', "%s: no diagnostic", what);
	ck_assert_ptr_nonnull(diag.field);
}

/* Build a blob by hand: wrap aes_key[0, aes_key_len) under key's public half, then encrypt
 * body[0, body_len) (already a multiple of 16, padding included) with AES-256-CBC and no
 * padding of OpenSSL's own, recording p as the plaintext length. */
static uint8_t *craft_blob(const struct srup_key *key, const uint8_t *aes_key, size_t aes_key_len,
                           const uint8_t *body, size_t body_len, uint32_t p, size_t *blob_len)
{
	size_t k = srup_key_size(key);
	size_t total = 28 + k + body_len;
	uint8_t *blob = malloc(total);
	ck_assert_ptr_nonnull(blob);
	put_u32le(blob, (uint32_t)k);

	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, srup_key_evp(key), NULL);
	ck_assert_ptr_nonnull(ctx);
	ck_assert_int_eq(EVP_PKEY_encrypt_init(ctx), 1);
	ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING), 1);
	size_t wl = k;
	ck_assert_int_eq(EVP_PKEY_encrypt(ctx, blob + 4, &wl, aes_key, aes_key_len), 1);
	ck_assert_uint_eq(wl, k);
	EVP_PKEY_CTX_free(ctx);

	uint8_t *iv = blob + 4 + k;
	ck_assert_int_eq(RAND_bytes(iv, 16), 1);
	put_u32le(blob + 20 + k, (uint32_t)body_len);
	put_u32le(blob + 24 + k, p);

	uint8_t full_key[32] = {0};
	memcpy(full_key, aes_key, aes_key_len < 32 ? aes_key_len : 32);
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(EVP_EncryptInit_ex2(c, EVP_aes_256_cbc(), full_key, iv, NULL), 1);
	ck_assert_int_eq(EVP_CIPHER_CTX_set_padding(c, 0), 1);
	int n1 = 0;
	int n2 = 0;
	ck_assert_int_eq(EVP_EncryptUpdate(c, blob + 28 + k, &n1, body, (int)body_len), 1);
	ck_assert_int_eq(EVP_EncryptFinal_ex(c, blob + 28 + k + n1, &n2), 1);
	ck_assert_uint_eq((size_t)(n1 + n2), body_len);
	EVP_CIPHER_CTX_free(c);
	*blob_len = total;
	return blob;
}

static struct srup_key *priv_key;
static struct srup_key *pub_key;

static void keys_setup(void)
{
	priv_key = load_key("keys/pysrup_test_private.pem", SRUP_KEY_PRIVATE);
	pub_key = load_key("keys/pysrup_test_public.pem", SRUP_KEY_PUBLIC);
}

static void keys_teardown(void)
{
	srup_key_free(priv_key);
	srup_key_free(pub_key);
	priv_key = NULL;
	pub_key = NULL;
}

/* ---- tests ---- */

START_TEST(test_envelope_opens_pysrup_vector)
{
	size_t blob_len = 0;
	uint8_t *blob = vector_blob(&blob_len);
	size_t want_len = 0;
	uint8_t *want = vector_hex("plaintext_hex", &want_len);

	/* The recorded lengths are where spec §4 says they are. */
	size_t k = vector_num("enc_key_len");
	ck_assert_uint_eq(get_u32le(blob), k);
	ck_assert_uint_eq(get_u32le(blob + 20 + k), vector_num("ciphertext_len"));
	ck_assert_uint_eq(get_u32le(blob + 24 + k), vector_num("plaintext_len"));

	uint8_t *pt = NULL;
	size_t pt_len = 0;
	struct srup_diag diag;
	memset(&diag, 0, sizeof diag);
	enum srup_err rc = srup_envelope_open(priv_key, blob, blob_len, &pt, &pt_len, &diag);
	ck_assert_msg(rc == SRUP_OK, "%s: %s", srup_err_name(rc), diag.detail);
	ck_assert_uint_eq(pt_len, want_len);
	ck_assert_int_eq(memcmp(pt, want, want_len), 0);
	ck_assert_int_eq(memcmp(pt, "636dd7ad8c004d09b2c391d0cc3aa2b0", 32), 0);
	free(pt);
	free(want);
	free(blob);
}
END_TEST

START_TEST(test_envelope_vector_refused_by_wrong_key)
{
	size_t blob_len = 0;
	uint8_t *blob = vector_blob(&blob_len);
	/* Same size key, different key: the unwrap fails. */
	struct srup_key *other = load_key("keys/server_private.pem", SRUP_KEY_PRIVATE);
	assert_refused(other, blob, blob_len, "server key");
	srup_key_free(other);
	/* A larger key: K no longer matches. */
	struct srup_key *big = NULL;
	ck_assert_int_eq(srup_key_generate(3072, &big, NULL), SRUP_OK);
	assert_refused(big, blob, blob_len, "3072-bit key");
	srup_key_free(big);
	free(blob);
}
END_TEST

static const size_t rt_lens[] = {0,  1,  15,  16,   17,   31,   32,   33,
                                 47, 48, 100, 1000, 4095, 4096, 65536};

START_TEST(test_envelope_round_trip)
{
	size_t n = rt_lens[_i];
	uint8_t *pt_in = malloc(n + 1);
	ck_assert_ptr_nonnull(pt_in);
	for (size_t i = 0; i < n; i++) {
		pt_in[i] = (uint8_t)(i * 7 + 3);
	}
	uint8_t *blob = NULL;
	size_t blob_len = 0;
	ck_assert_int_eq(srup_envelope_seal(pub_key, pt_in, n, &blob, &blob_len, NULL), SRUP_OK);
	size_t c = 16 * (n / 16 + 1);
	ck_assert_uint_eq(blob_len, 28 + 256 + c);
	ck_assert_uint_eq(get_u32le(blob), 256);
	ck_assert_uint_eq(get_u32le(blob + 276), c);
	ck_assert_uint_eq(get_u32le(blob + 280), n);

	uint8_t *pt = NULL;
	size_t pt_len = 99;
	ck_assert_int_eq(srup_envelope_open(priv_key, blob, blob_len, &pt, &pt_len, NULL), SRUP_OK);
	ck_assert_uint_eq(pt_len, n);
	ck_assert_ptr_nonnull(pt);
	if (n > 0) {
		ck_assert_int_eq(memcmp(pt, pt_in, n), 0);
	}
	free(pt);
	free(blob);
	free(pt_in);
}
END_TEST

START_TEST(test_envelope_spec_blob_sizes)
{
	/* Spec §4 / the reference tests: 332 bytes for 32 bytes, 316 for 16 (RSA-2048). */
	uint8_t *blob = NULL;
	size_t blob_len = 0;
	ck_assert_int_eq(srup_envelope_seal(pub_key,
	                                    (const uint8_t *)"0123456789ABCDEF0123456789ABCDEF", 32,
	                                    &blob, &blob_len, NULL),
	                 SRUP_OK);
	ck_assert_uint_eq(blob_len, 332);
	free(blob);
	ck_assert_int_eq(srup_envelope_seal(pub_key, (const uint8_t *)"0123456789ABCDEF", 16, &blob,
	                                    &blob_len, NULL),
	                 SRUP_OK);
	ck_assert_uint_eq(blob_len, 316);
	free(blob);
}
END_TEST

START_TEST(test_envelope_seal_is_randomised)
{
	uint8_t *a = NULL;
	uint8_t *b = NULL;
	size_t a_len = 0;
	size_t b_len = 0;
	const uint8_t msg[] = "same plaintext";
	ck_assert_int_eq(srup_envelope_seal(pub_key, msg, sizeof msg, &a, &a_len, NULL), SRUP_OK);
	ck_assert_int_eq(srup_envelope_seal(pub_key, msg, sizeof msg, &b, &b_len, NULL), SRUP_OK);
	ck_assert_uint_eq(a_len, b_len);
	ck_assert_int_ne(memcmp(a + 4, b + 4, 256), 0);    /* wrapped key */
	ck_assert_int_ne(memcmp(a + 260, b + 260, 16), 0); /* IV */
	ck_assert_int_ne(memcmp(a + 284, b + 284, 16), 0); /* ciphertext */
	free(a);
	free(b);
}
END_TEST

START_TEST(test_envelope_round_trip_3072)
{
	struct srup_key *key = NULL;
	ck_assert_int_eq(srup_key_generate(3072, &key, NULL), SRUP_OK);
	uint8_t *blob = NULL;
	size_t blob_len = 0;
	ck_assert_int_eq(srup_envelope_seal(key, (const uint8_t *)"hello", 5, &blob, &blob_len, NULL),
	                 SRUP_OK);
	ck_assert_uint_eq(blob_len, 28 + 384 + 16);
	ck_assert_uint_eq(get_u32le(blob), 384);
	uint8_t *pt = NULL;
	size_t pt_len = 0;
	ck_assert_int_eq(srup_envelope_open(key, blob, blob_len, &pt, &pt_len, NULL), SRUP_OK);
	ck_assert_uint_eq(pt_len, 5);
	ck_assert_int_eq(memcmp(pt, "hello", 5), 0);
	free(pt);
	/* The 2048-bit key refuses it by size before trying to unwrap. */
	struct srup_diag diag;
	memset(&diag, 0, sizeof diag);
	ck_assert_int_eq(srup_envelope_open(priv_key, blob, blob_len, &pt, &pt_len, &diag),
	                 SRUP_ERR_DECRYPT);
	ck_assert_str_eq(diag.field, "encrypted.key_len");
	free(blob);
	srup_key_free(key);
}
END_TEST

START_TEST(test_envelope_every_truncation_refused)
{
	size_t blob_len = 0;
	uint8_t *blob = vector_blob(&blob_len);
	for (size_t cut = 0; cut < blob_len; cut++) {
		/* A fresh heap copy of exactly cut bytes, so ASan sees any read past it. */
		uint8_t *copy = malloc(cut > 0 ? cut : 1);
		ck_assert_ptr_nonnull(copy);
		memcpy(copy, blob, cut);
		char what[32];
		snprintf(what, sizeof what, "prefix %zu", cut);
		assert_refused(priv_key, cut > 0 ? copy : NULL, cut, what);
		free(copy);
	}
	free(blob);
}
END_TEST

START_TEST(test_envelope_extension_refused)
{
	size_t blob_len = 0;
	uint8_t *blob = vector_blob(&blob_len);
	uint8_t *longer = malloc(blob_len + 16);
	ck_assert_ptr_nonnull(longer);
	memcpy(longer, blob, blob_len);
	memset(longer + blob_len, 0, 16);
	assert_refused(priv_key, longer, blob_len + 1, "one trailing byte");
	assert_refused(priv_key, longer, blob_len + 16, "a trailing block");
	free(longer);
	free(blob);
}
END_TEST

START_TEST(test_envelope_lying_key_length)
{
	static const uint32_t lies[] = {0, 1, 255, 257, 512, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF};
	size_t blob_len = 0;
	uint8_t *blob = vector_blob(&blob_len);
	for (size_t i = 0; i < sizeof lies / sizeof lies[0]; i++) {
		put_u32le(blob, lies[i]);
		char what[32];
		snprintf(what, sizeof what, "K = %u", (unsigned)lies[i]);
		assert_refused(priv_key, blob, blob_len, what);
	}
	free(blob);
}
END_TEST

START_TEST(test_envelope_lying_ciphertext_length)
{
	static const uint32_t lies[] = {0,  1,  15,         16,         32,         47,
	                                49, 64, 0x7FFFFFF0, 0x80000000, 0xFFFFFFF0, 0xFFFFFFFF};
	size_t blob_len = 0;
	uint8_t *blob = vector_blob(&blob_len);
	ck_assert_uint_eq(get_u32le(blob + 276), 48);
	for (size_t i = 0; i < sizeof lies / sizeof lies[0]; i++) {
		put_u32le(blob + 276, lies[i]);
		char what[32];
		snprintf(what, sizeof what, "C = %u", (unsigned)lies[i]);
		assert_refused(priv_key, blob, blob_len, what);
	}
	free(blob);
}
END_TEST

START_TEST(test_envelope_lying_plaintext_length)
{
	/* Only the true P (32, with C = 48) is accepted: every other value in and around the
	 * range C - 16 .. C - 1, and far outside it, is refused. */
	size_t blob_len = 0;
	uint8_t *blob = vector_blob(&blob_len);
	ck_assert_uint_eq(get_u32le(blob + 280), 32);
	for (uint32_t p = 0; p < 80; p++) {
		if (p == 32) {
			continue;
		}
		put_u32le(blob + 280, p);
		char what[32];
		snprintf(what, sizeof what, "P = %u", (unsigned)p);
		assert_refused(priv_key, blob, blob_len, what);
	}
	put_u32le(blob + 280, 0xFFFFFFFF);
	assert_refused(priv_key, blob, blob_len, "P = 0xffffffff");
	put_u32le(blob + 280, 32);
	uint8_t *pt = NULL;
	size_t pt_len = 0;
	ck_assert_int_eq(srup_envelope_open(priv_key, blob, blob_len, &pt, &pt_len, NULL), SRUP_OK);
	free(pt);
	free(blob);
}
END_TEST

START_TEST(test_envelope_crafted_good_blob_opens)
{
	/* The crafting helper itself is right: a correctly padded crafted blob opens. */
	uint8_t aes_key[32];
	ck_assert_int_eq(RAND_bytes(aes_key, 32), 1);
	uint8_t body[32];
	memcpy(body, "twenty bytes of text", 20);
	memset(body + 20, 12, 12);
	size_t blob_len = 0;
	uint8_t *blob = craft_blob(pub_key, aes_key, 32, body, sizeof body, 20, &blob_len);
	uint8_t *pt = NULL;
	size_t pt_len = 0;
	ck_assert_int_eq(srup_envelope_open(priv_key, blob, blob_len, &pt, &pt_len, NULL), SRUP_OK);
	ck_assert_uint_eq(pt_len, 20);
	ck_assert_int_eq(memcmp(pt, "twenty bytes of text", 20), 0);
	free(pt);
	free(blob);
}
END_TEST

/* clang-format off */
/* Final blocks with invalid PKCS#7 padding, and the P each claims (consistent with C = 32). */
static const struct {
	uint8_t last[16];
	uint32_t p;
} bad_pads[] = {
		{{0}, 16},                                            /* pad byte 0 */
		{{[15] = 17}, 16},                                    /* pad byte over the block */
		{{[15] = 0xFF}, 16},                                  /* pad byte far over */
		{{[14] = 3, [15] = 2}, 30},                           /* pad bytes disagree */
		{{[0] = 15, [1] = 16, [2] = 16, [3] = 16, [4] = 16, [5] = 16, [6] = 16, [7] = 16,
				 [8] = 16, [9] = 16, [10] = 16, [11] = 16, [12] = 16, [13] = 16, [14] = 16,
				 [15] = 16},
				16}, /* a full pad block with one wrong byte */
};
/* clang-format on */

START_TEST(test_envelope_bad_padding_refused)
{
	uint8_t aes_key[32];
	ck_assert_int_eq(RAND_bytes(aes_key, 32), 1);
	uint8_t body[32];
	memset(body, 'a', 16);
	memcpy(body + 16, bad_pads[_i].last, 16);
	size_t blob_len = 0;
	uint8_t *blob = craft_blob(pub_key, aes_key, 32, body, sizeof body, bad_pads[_i].p, &blob_len);
	struct srup_diag diag;
	memset(&diag, 0, sizeof diag);
	uint8_t *pt = NULL;
	size_t pt_len = 0;
	ck_assert_int_eq(srup_envelope_open(priv_key, blob, blob_len, &pt, &pt_len, &diag),
	                 SRUP_ERR_DECRYPT);
	ck_assert_ptr_null(pt);
	ck_assert_str_eq(diag.field, "encrypted.ciphertext");
	free(blob);
}
END_TEST

START_TEST(test_envelope_wrong_size_aes_key_refused)
{
	static const size_t sizes[] = {0, 16, 24, 31, 33, 64};
	uint8_t aes_key[64];
	ck_assert_int_eq(RAND_bytes(aes_key, sizeof aes_key), 1);
	uint8_t body[16];
	memset(body, 16, sizeof body);
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		size_t blob_len = 0;
		uint8_t *blob = craft_blob(pub_key, aes_key, sizes[i], body, sizeof body, 0, &blob_len);
		struct srup_diag diag;
		memset(&diag, 0, sizeof diag);
		uint8_t *pt = NULL;
		size_t pt_len = 0;
		ck_assert_int_eq(srup_envelope_open(priv_key, blob, blob_len, &pt, &pt_len, &diag),
		                 SRUP_ERR_DECRYPT);
		ck_assert_str_eq(diag.field, "encrypted.wrapped_key");
		free(blob);
	}
}
END_TEST

START_TEST(test_envelope_garbage_wrapped_key_refused)
{
	size_t blob_len = 0;
	uint8_t *blob = vector_blob(&blob_len);
	/* All-zero and all-FF wrapped keys are not valid RSA ciphertexts for this modulus. */
	memset(blob + 4, 0x00, 256);
	assert_refused(priv_key, blob, blob_len, "zero wrapped key");
	memset(blob + 4, 0xFF, 256);
	assert_refused(priv_key, blob, blob_len, "0xff wrapped key");
	free(blob);
}
END_TEST

START_TEST(test_envelope_argument_errors)
{
	uint8_t *blob = NULL;
	size_t blob_len = 0;
	uint8_t *pt = NULL;
	size_t pt_len = 0;
	ck_assert_int_eq(srup_envelope_seal(NULL, (const uint8_t *)"x", 1, &blob, &blob_len, NULL),
	                 SRUP_ERR_INVAL);
	ck_assert_int_eq(srup_envelope_seal(pub_key, NULL, 1, &blob, &blob_len, NULL), SRUP_ERR_INVAL);
	ck_assert_int_eq(srup_envelope_seal(pub_key, (const uint8_t *)"x", 1, NULL, &blob_len, NULL),
	                 SRUP_ERR_INVAL);
	ck_assert_int_eq(srup_envelope_seal(pub_key, (const uint8_t *)"x", 1, &blob, NULL, NULL),
	                 SRUP_ERR_INVAL);
	ck_assert_ptr_null(blob);
	/* An empty plaintext with a NULL pointer is fine. */
	ck_assert_int_eq(srup_envelope_seal(pub_key, NULL, 0, &blob, &blob_len, NULL), SRUP_OK);
	ck_assert_uint_eq(blob_len, 28 + 256 + 16);

	ck_assert_int_eq(srup_envelope_open(NULL, blob, blob_len, &pt, &pt_len, NULL), SRUP_ERR_INVAL);
	ck_assert_int_eq(srup_envelope_open(priv_key, NULL, blob_len, &pt, &pt_len, NULL),
	                 SRUP_ERR_INVAL);
	ck_assert_int_eq(srup_envelope_open(priv_key, blob, blob_len, NULL, &pt_len, NULL),
	                 SRUP_ERR_INVAL);
	ck_assert_int_eq(srup_envelope_open(priv_key, blob, blob_len, &pt, NULL, NULL), SRUP_ERR_INVAL);
	/* Opening needs the private key. */
	ck_assert_int_eq(srup_envelope_open(pub_key, blob, blob_len, &pt, &pt_len, NULL), SRUP_ERR_KEY);
	ck_assert_ptr_null(pt);
	ck_assert_int_eq(srup_envelope_open(priv_key, blob, blob_len, &pt, &pt_len, NULL), SRUP_OK);
	ck_assert_uint_eq(pt_len, 0);
	free(pt);
	free(blob);
}
END_TEST

Suite *envelope_suite(void)
{
	Suite *s = suite_create("envelope");
	TCase *tc = tcase_create("envelope");
	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, keys_setup, keys_teardown);
	tcase_add_test(tc, test_envelope_opens_pysrup_vector);
	tcase_add_test(tc, test_envelope_vector_refused_by_wrong_key);
	tcase_add_loop_test(tc, test_envelope_round_trip, 0, (int)(sizeof rt_lens / sizeof rt_lens[0]));
	tcase_add_test(tc, test_envelope_spec_blob_sizes);
	tcase_add_test(tc, test_envelope_seal_is_randomised);
	tcase_add_test(tc, test_envelope_round_trip_3072);
	tcase_add_test(tc, test_envelope_every_truncation_refused);
	tcase_add_test(tc, test_envelope_extension_refused);
	tcase_add_test(tc, test_envelope_lying_key_length);
	tcase_add_test(tc, test_envelope_lying_ciphertext_length);
	tcase_add_test(tc, test_envelope_lying_plaintext_length);
	tcase_add_test(tc, test_envelope_crafted_good_blob_opens);
	tcase_add_loop_test(tc, test_envelope_bad_padding_refused, 0,
	                    (int)(sizeof bad_pads / sizeof bad_pads[0]));
	tcase_add_test(tc, test_envelope_wrong_size_aes_key_refused);
	tcase_add_test(tc, test_envelope_garbage_wrapped_key_refused);
	tcase_add_test(tc, test_envelope_argument_errors);
	suite_add_tcase(s, tc);
	return s;
}
