/* SPDX-License-Identifier: MIT
 * test_sig.c - unit tests for srup/sig.h: the reference vectors' signatures verify (as bytes and
 * as parsed messages), signing reproduces them byte for byte, every flipped bit fails, and each
 * error code is reachable. Vectors are read from tests/vectors/vectors.json. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <openssl/err.h>
#include <pthread.h>

#include "srup/srup.h"
#include "testutil.h"

/* ---- vectors.json access (the file is one object per vector, one "key": value per line) ---- */

/* Read once; also called from sig_suite() to size the loop tests, where Check's assertions
 * cannot be used, so failures here abort. */
static char *vectors_json(void)
{
	static char *json;
	if (json != NULL) {
		return json;
	}
	FILE *f = fopen(SRUP_VECTORS_DIR "/vectors.json", "rb");
	if (f == NULL || fseek(f, 0, SEEK_END) != 0) {
		abort();
	}
	long n = ftell(f);
	if (n <= 0 || fseek(f, 0, SEEK_SET) != 0) {
		abort();
	}
	json = malloc((size_t)n + 1);
	if (json == NULL || fread(json, 1, (size_t)n, f) != (size_t)n) {
		abort();
	}
	json[n] = '\0';
	fclose(f);
	return json;
}

static int vec_count(void)
{
	return tu_vec_count(vectors_json());
}

static char *vec_str(int i, const char *field)
{
	return tu_vec_need(vectors_json(), i, field);
}

static size_t vec_num(int i, const char *field)
{
	return tu_vec_num(vectors_json(), i, field);
}

static uint8_t *vec_hex(int i, const char *field, size_t *len)
{
	return tu_vec_hex(vectors_json(), i, field, len);
}

static struct srup_key *vec_key(int i, const char *field, enum srup_key_kind kind)
{
	char *rel = vec_str(i, field);
	struct srup_key *key = NULL;
	struct srup_diag diag;
	memset(&diag, 0, sizeof diag);
	enum srup_err rc = srup_key_load_file(tu_vector_path(rel), kind, &key, &diag);
	ck_assert_msg(rc == SRUP_OK, "%s: %s", rel, diag.detail);
	free(rel);
	return key;
}

static struct srup_key *load_key(const char *rel, enum srup_key_kind kind)
{
	struct srup_key *key = NULL;
	ck_assert_int_eq(srup_key_load_file(tu_vector_path(rel), kind, &key, NULL), SRUP_OK);
	return key;
}

/* One vector, decoded. */
struct vec {
	char *name;
	uint8_t *unsig;
	size_t unsig_len;
	uint8_t *sig;
	size_t sig_len;
	uint8_t *ser;
	size_t ser_len;
	size_t sig_off;
	struct srup_key *pub;
	struct srup_key *priv;
};

static void vec_load(int i, struct vec *v)
{
	v->name = vec_str(i, "name");
	v->unsig = vec_hex(i, "unsigned_hex", &v->unsig_len);
	v->sig = vec_hex(i, "signature_hex", &v->sig_len);
	v->ser = vec_hex(i, "serialized_hex", &v->ser_len);
	v->sig_off = vec_num(i, "signature_offset");
	v->pub = vec_key(i, "verify_key", SRUP_KEY_PUBLIC);
	v->priv = vec_key(i, "signing_key", SRUP_KEY_PRIVATE);
	ck_assert_uint_eq(v->unsig_len, vec_num(i, "unsigned_len"));
	ck_assert_uint_eq(v->ser_len, vec_num(i, "serialized_len"));
	ck_assert_uint_eq(v->sig_len, vec_num(i, "signature_len"));
	ck_assert_uint_eq(v->ser_len, v->unsig_len + 2 + v->sig_len);
}

static void vec_free(struct vec *v)
{
	free(v->name);
	free(v->unsig);
	free(v->sig);
	free(v->ser);
	srup_key_free(v->pub);
	srup_key_free(v->priv);
}

/* ---- tests ---- */

START_TEST(test_sig_vectors_are_present)
{
	/* The loop tests below run once per vector; make sure there are some to run. */
	ck_assert_int_ge(vec_count(), 6);
}
END_TEST

START_TEST(test_sig_verifies_vector_signature)
{
	struct vec v;
	vec_load(_i, &v);
	struct srup_diag diag;
	memset(&diag, 0, sizeof diag);

	/* One segment: the recorded unsigned bytes. */
	struct srup_bytes one = {v.unsig, v.unsig_len};
	enum srup_err rc = srup_sig_verify(v.pub, &one, 1, v.sig, v.sig_len, &diag);
	ck_assert_msg(rc == SRUP_OK, "%s: %s %s", v.name, srup_err_name(rc), diag.detail);

	/* The same bytes cut into uneven segments, including empty ones. */
	struct srup_bytes three[4] = {
	        {v.unsig, 7},
	        {NULL, 0},
	        {v.unsig + 7, v.unsig_len - 20},
	        {v.unsig + v.unsig_len - 13, 13},
	};
	ck_assert_int_eq(srup_sig_verify(v.pub, three, 4, v.sig, v.sig_len, NULL), SRUP_OK);

	/* The serialized message with the signature field skipped. */
	size_t sig_end = v.sig_off + 2 + v.sig_len;
	struct srup_bytes two[2] = {{v.ser, v.sig_off}, {v.ser + sig_end, v.ser_len - sig_end}};
	ck_assert_int_eq(srup_sig_verify(v.pub, two, 2, v.ser + v.sig_off + 2, v.sig_len, NULL),
	                 SRUP_OK);

	/* A private key verifies too (it holds the public half). */
	ck_assert_int_eq(srup_sig_verify(v.priv, &one, 1, v.sig, v.sig_len, NULL), SRUP_OK);
	vec_free(&v);
}
END_TEST

START_TEST(test_sig_sign_reproduces_vector)
{
	struct vec v;
	vec_load(_i, &v);
	uint8_t sig[1024];
	size_t sig_len = 0;
	struct srup_bytes one = {v.unsig, v.unsig_len};
	ck_assert_int_eq(srup_sig_sign(v.priv, &one, 1, sig, sizeof sig, &sig_len, NULL), SRUP_OK);
	ck_assert_uint_eq(sig_len, v.sig_len);
	ck_assert_msg(memcmp(sig, v.sig, sig_len) == 0, "%s: signature differs", v.name);

	/* Segmented input signs the same bytes. */
	struct srup_bytes two[2] = {{v.unsig, 1}, {v.unsig + 1, v.unsig_len - 1}};
	memset(sig, 0, sizeof sig);
	ck_assert_int_eq(srup_sig_sign(v.priv, two, 2, sig, v.sig_len, &sig_len, NULL), SRUP_OK);
	ck_assert_int_eq(memcmp(sig, v.sig, v.sig_len), 0);
	vec_free(&v);
}
END_TEST

START_TEST(test_sig_msg_verify_parsed_vector)
{
	struct vec v;
	vec_load(_i, &v);
	struct srup_msg m;
	struct srup_diag diag;
	memset(&diag, 0, sizeof diag);
	enum srup_err rc = srup_msg_parse(v.ser, v.ser_len, &m, &diag);
	ck_assert_msg(rc == SRUP_OK, "%s: parse: %s", v.name, diag.detail);
	ck_assert_uint_eq(m.sig_off, v.sig_off);
	ck_assert_int_eq(srup_msg_verify(&m, v.pub, NULL), SRUP_OK);

	/* The wrong key refuses it. */
	struct srup_key *other = load_key("keys/device_public.pem", SRUP_KEY_PUBLIC);
	if (strcmp(v.name, "data_int32") == 0) {
		srup_key_free(other);
		other = load_key("keys/server_public.pem", SRUP_KEY_PUBLIC);
	}
	ck_assert_int_eq(srup_msg_verify(&m, other, &diag), SRUP_ERR_SIG);
	ck_assert_uint_eq(diag.offset, v.sig_off);
	srup_key_free(other);
	vec_free(&v);
}
END_TEST

START_TEST(test_sig_msg_verify_hand_built)
{
	/* srup_msg_verify needs only raw, offsets and the signature view, not a parser. */
	struct vec v;
	vec_load(_i, &v);
	struct srup_msg m;
	memset(&m, 0, sizeof m);
	m.raw = v.ser;
	m.raw_len = v.ser_len;
	m.sig_off = v.sig_off;
	m.sig_end = v.sig_off + 2 + v.sig_len;
	m.signature.p = v.ser + v.sig_off + 2;
	m.signature.len = v.sig_len;
	ck_assert_int_eq(srup_msg_verify(&m, v.pub, NULL), SRUP_OK);

	/* Inconsistent offsets are a caller bug, not a signature verdict. */
	struct srup_msg bad = m;
	bad.sig_end = bad.raw_len + 1;
	ck_assert_int_eq(srup_msg_verify(&bad, v.pub, NULL), SRUP_ERR_INVAL);
	bad = m;
	bad.sig_off = bad.sig_end + 1;
	ck_assert_int_eq(srup_msg_verify(&bad, v.pub, NULL), SRUP_ERR_INVAL);
	bad = m;
	bad.signature.len -= 1;
	ck_assert_int_eq(srup_msg_verify(&bad, v.pub, NULL), SRUP_ERR_INVAL);
	bad = m;
	bad.raw = NULL;
	ck_assert_int_eq(srup_msg_verify(&bad, v.pub, NULL), SRUP_ERR_INVAL);
	ck_assert_int_eq(srup_msg_verify(NULL, v.pub, NULL), SRUP_ERR_INVAL);
	ck_assert_int_eq(srup_msg_verify(&m, NULL, NULL), SRUP_ERR_INVAL);
	vec_free(&v);
}
END_TEST

START_TEST(test_sig_every_bit_flip_fails)
{
	struct vec v;
	vec_load(_i, &v);
	struct srup_bytes one = {v.unsig, v.unsig_len};
	for (size_t bit = 0; bit < v.sig_len * 8; bit++) {
		v.sig[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		enum srup_err rc = srup_sig_verify(v.pub, &one, 1, v.sig, v.sig_len, NULL);
		ck_assert_msg(rc == SRUP_ERR_SIG, "%s: signature bit %zu: %s", v.name, bit,
		              srup_err_name(rc));
		v.sig[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	for (size_t bit = 0; bit < v.unsig_len * 8; bit++) {
		v.unsig[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		enum srup_err rc = srup_sig_verify(v.pub, &one, 1, v.sig, v.sig_len, NULL);
		ck_assert_msg(rc == SRUP_ERR_SIG, "%s: data bit %zu: %s", v.name, bit, srup_err_name(rc));
		v.unsig[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	/* Restored, it verifies again: the loop really flipped and unflipped. */
	ck_assert_int_eq(srup_sig_verify(v.pub, &one, 1, v.sig, v.sig_len, NULL), SRUP_OK);
	vec_free(&v);
}
END_TEST

START_TEST(test_sig_wrong_length_is_bad_signature)
{
	struct vec v;
	vec_load(0, &v);
	struct srup_bytes one = {v.unsig, v.unsig_len};
	struct srup_diag diag;
	memset(&diag, 0, sizeof diag);
	uint8_t longer[257];
	memcpy(longer, v.sig, 256);
	longer[256] = 0;
	ck_assert_int_eq(srup_sig_verify(v.pub, &one, 1, v.sig, 255, &diag), SRUP_ERR_SIG);
	ck_assert_str_eq(diag.field, "signature");
	ck_assert_int_eq(srup_sig_verify(v.pub, &one, 1, longer, 257, NULL), SRUP_ERR_SIG);
	ck_assert_int_eq(srup_sig_verify(v.pub, &one, 1, v.sig, 0, NULL), SRUP_ERR_SIG);
	ck_assert_int_eq(srup_sig_verify(v.pub, &one, 1, NULL, 0, NULL), SRUP_ERR_SIG);
	/* Dropping a byte of the data or adding one fails. */
	one.len -= 1;
	ck_assert_int_eq(srup_sig_verify(v.pub, &one, 1, v.sig, v.sig_len, NULL), SRUP_ERR_SIG);
	struct srup_bytes more[2] = {{v.unsig, v.unsig_len}, {(const uint8_t *)"", 1}};
	ck_assert_int_eq(srup_sig_verify(v.pub, more, 2, v.sig, v.sig_len, NULL), SRUP_ERR_SIG);
	vec_free(&v);
}
END_TEST

START_TEST(test_sig_sign_errors)
{
	struct srup_key *pub = load_key("keys/server_public.pem", SRUP_KEY_PUBLIC);
	struct srup_key *priv = load_key("keys/server_private.pem", SRUP_KEY_PRIVATE);
	uint8_t sig[1024];
	size_t sig_len = 99;
	struct srup_bytes one = {(const uint8_t *)"abc", 3};
	struct srup_diag diag;
	memset(&diag, 0, sizeof diag);

	ck_assert_int_eq(srup_sig_sign(pub, &one, 1, sig, sizeof sig, &sig_len, &diag), SRUP_ERR_KEY);
	ck_assert_uint_eq(sig_len, 0);
	ck_assert_int_eq(srup_sig_sign(priv, &one, 1, sig, 255, &sig_len, NULL), SRUP_ERR_SPACE);
	ck_assert_int_eq(srup_sig_sign(priv, &one, 1, NULL, 256, &sig_len, NULL), SRUP_ERR_INVAL);
	ck_assert_int_eq(srup_sig_sign(priv, &one, 1, sig, 256, NULL, NULL), SRUP_ERR_INVAL);
	ck_assert_int_eq(srup_sig_sign(NULL, &one, 1, sig, 256, &sig_len, NULL), SRUP_ERR_INVAL);
	ck_assert_int_eq(srup_sig_sign(priv, NULL, 1, sig, 256, &sig_len, NULL), SRUP_ERR_INVAL);
	struct srup_bytes bad = {NULL, 4};
	ck_assert_int_eq(srup_sig_sign(priv, &bad, 1, sig, 256, &sig_len, NULL), SRUP_ERR_INVAL);
	ck_assert_int_eq(srup_sig_verify(pub, &bad, 1, sig, 256, NULL), SRUP_ERR_INVAL);
	ck_assert_int_eq(srup_sig_verify(NULL, &one, 1, sig, 256, NULL), SRUP_ERR_INVAL);

	/* Zero segments sign the empty string, and that verifies. */
	ck_assert_int_eq(srup_sig_sign(priv, NULL, 0, sig, 256, &sig_len, NULL), SRUP_OK);
	ck_assert_int_eq(srup_sig_verify(pub, NULL, 0, sig, sig_len, NULL), SRUP_OK);
	ck_assert_int_eq(srup_sig_verify(pub, &one, 1, sig, sig_len, NULL), SRUP_ERR_SIG);
	srup_key_free(pub);
	srup_key_free(priv);
}
END_TEST

START_TEST(test_sig_sign_encode_reproduces_vector)
{
	struct vec v;
	vec_load(_i, &v);
	struct srup_msg m;
	ck_assert_int_eq(srup_msg_parse(v.ser, v.ser_len, &m, NULL), SRUP_OK);
	/* The signature in m is ignored: blank it to show it is not copied. */
	m.signature.p = NULL;
	m.signature.len = 0;
	uint8_t out[2048];
	size_t out_len = 0;
	struct srup_diag diag;
	memset(&diag, 0, sizeof diag);
	enum srup_err rc = srup_msg_sign_encode(&m, v.priv, out, sizeof out, &out_len, &diag);
	ck_assert_msg(rc == SRUP_OK, "%s: %s %s", v.name, srup_err_name(rc), diag.detail);
	ck_assert_uint_eq(out_len, v.ser_len);
	ck_assert_msg(memcmp(out, v.ser, v.ser_len) == 0, "%s: encoding differs", v.name);

	/* One byte short of room. */
	out_len = 99;
	ck_assert_int_eq(srup_msg_sign_encode(&m, v.priv, out, v.ser_len - 1, &out_len, NULL),
	                 SRUP_ERR_SPACE);
	ck_assert_uint_eq(out_len, 0);
	/* A public key cannot sign. */
	ck_assert_int_eq(srup_msg_sign_encode(&m, v.pub, out, sizeof out, &out_len, NULL),
	                 SRUP_ERR_KEY);
	vec_free(&v);
}
END_TEST

START_TEST(test_sig_sign_encode_3072_round_trip)
{
	struct srup_key *key = NULL;
	ck_assert_int_eq(srup_key_generate(3072, &key, NULL), SRUP_OK);
	char *pem = NULL;
	size_t pem_len = 0;
	ck_assert_int_eq(srup_key_public_pem(key, &pem, &pem_len), SRUP_OK);
	struct srup_key *pub = NULL;
	ck_assert_int_eq(srup_key_load_pem(pem, pem_len, SRUP_KEY_PUBLIC, &pub, NULL), SRUP_OK);
	free(pem);

	struct srup_msg m;
	memset(&m, 0, sizeof m);
	m.version = SRUP_VERSION;
	m.type = SRUP_MSG_DATA;
	m.sequence_id = 0x0102030405060708u;
	m.sender_id = 0xb9d077e223834cf6u;
	m.token.p = (const uint8_t *)"TOKEN12345";
	m.token.len = 10;
	m.data_id.p = (const uint8_t *)"temp";
	m.data_id.len = 4;
	m.data.p = (const uint8_t *)"\x01\x02\x03";
	m.data.len = 3;

	uint8_t out[1024];
	size_t out_len = 0;
	ck_assert_int_eq(srup_msg_sign_encode(&m, key, out, sizeof out, &out_len, NULL), SRUP_OK);
	ck_assert_uint_eq(out_len, srup_msg_encoded_len(&m, 384));
	struct srup_msg p;
	ck_assert_int_eq(srup_msg_parse(out, out_len, &p, NULL), SRUP_OK);
	ck_assert_uint_eq(p.signature.len, 384);
	ck_assert_int_eq(srup_msg_verify(&p, pub, NULL), SRUP_OK);

	/* Every byte of the message matters: flip each one in turn. */
	for (size_t i = 0; i < out_len; i++) {
		out[i] ^= 0x01;
		struct srup_msg q;
		if (srup_msg_parse(out, out_len, &q, NULL) == SRUP_OK) {
			enum srup_err rc = srup_msg_verify(&q, pub, NULL);
			ck_assert_msg(rc == SRUP_ERR_SIG, "byte %zu: %s", i, srup_err_name(rc));
		}
		out[i] ^= 0x01;
	}
	/* A 2048-bit key does not verify a 3072-bit signature. */
	struct srup_key *small = load_key("keys/server_public.pem", SRUP_KEY_PUBLIC);
	ck_assert_int_eq(srup_msg_verify(&p, small, NULL), SRUP_ERR_SIG);
	srup_key_free(small);
	srup_key_free(pub);
	srup_key_free(key);
}
END_TEST

START_TEST(test_sig_failures_leave_no_openssl_errors)
{
	/* A long-running verifier (the broker) must not accumulate OpenSSL errors per rejection. */
	struct vec v;
	vec_load(0, &v);
	struct srup_bytes one = {v.unsig, v.unsig_len};
	ERR_clear_error();
	v.sig[10] ^= 0x40;
	struct srup_diag diag;
	memset(&diag, 0, sizeof diag);
	ck_assert_int_eq(srup_sig_verify(v.pub, &one, 1, v.sig, v.sig_len, &diag), SRUP_ERR_SIG);
	ck_assert_uint_eq(ERR_peek_error(), 0);
	ck_assert_str_eq(diag.field, "signature");
	ck_assert(diag.detail[0] != '\0');
	ck_assert_int_eq(srup_sig_verify(v.pub, &one, 1, v.sig, v.sig_len, NULL), SRUP_ERR_SIG);
	ck_assert_uint_eq(ERR_peek_error(), 0);
	ck_assert_int_eq(srup_sig_verify(v.pub, &one, 1, v.sig, 3, NULL), SRUP_ERR_SIG);
	ck_assert_uint_eq(ERR_peek_error(), 0);
	v.sig[10] ^= 0x40;
	ck_assert_int_eq(srup_sig_verify(v.pub, &one, 1, v.sig, v.sig_len, NULL), SRUP_OK);
	ck_assert_uint_eq(ERR_peek_error(), 0);
	vec_free(&v);
}
END_TEST

/* Several threads verify good and forged copies with one shared key. */
struct verify_job {
	const struct vec *v;
	const uint8_t *bad_sig;
	int wrong;
};

static void *verify_worker(void *arg)
{
	struct verify_job *job = arg;
	struct srup_bytes one = {job->v->unsig, job->v->unsig_len};
	for (int i = 0; i < 150; i++) {
		if (srup_sig_verify(job->v->pub, &one, 1, job->v->sig, job->v->sig_len, NULL) != SRUP_OK) {
			job->wrong++;
		}
		if (srup_sig_verify(job->v->pub, &one, 1, job->bad_sig, job->v->sig_len, NULL) !=
		    SRUP_ERR_SIG) {
			job->wrong++;
		}
	}
	return NULL;
}

START_TEST(test_sig_verify_shares_key_across_threads)
{
	struct vec v;
	vec_load(2, &v);
	uint8_t bad[1024];
	memcpy(bad, v.sig, v.sig_len);
	bad[v.sig_len - 1] ^= 1;
	pthread_t th[4];
	struct verify_job jobs[4];
	for (int i = 0; i < 4; i++) {
		jobs[i].v = &v;
		jobs[i].bad_sig = bad;
		jobs[i].wrong = 0;
		ck_assert_int_eq(pthread_create(&th[i], NULL, verify_worker, &jobs[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(pthread_join(th[i], NULL), 0);
		ck_assert_int_eq(jobs[i].wrong, 0);
	}
	vec_free(&v);
}
END_TEST

Suite *sig_suite(void)
{
	Suite *s = suite_create("sig");
	TCase *tc = tcase_create("sig");
	int n = vec_count();
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_sig_vectors_are_present);
	tcase_add_loop_test(tc, test_sig_verifies_vector_signature, 0, n);
	tcase_add_loop_test(tc, test_sig_sign_reproduces_vector, 0, n);
	tcase_add_loop_test(tc, test_sig_msg_verify_parsed_vector, 0, n);
	tcase_add_loop_test(tc, test_sig_msg_verify_hand_built, 0, n);
	tcase_add_loop_test(tc, test_sig_every_bit_flip_fails, 0, n);
	tcase_add_test(tc, test_sig_wrong_length_is_bad_signature);
	tcase_add_test(tc, test_sig_sign_errors);
	tcase_add_loop_test(tc, test_sig_sign_encode_reproduces_vector, 0, n);
	tcase_add_test(tc, test_sig_sign_encode_3072_round_trip);
	tcase_add_test(tc, test_sig_failures_leave_no_openssl_errors);
	tcase_add_test(tc, test_sig_verify_shares_key_across_threads);
	suite_add_tcase(s, tc);
	return s;
}
