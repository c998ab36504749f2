/* SPDX-License-Identifier: MIT
 * test_vectors.c - known-answer tests against the reference implementation's vectors
 * (tests/vectors/vectors.json): decode to the recorded fields, verify, re-encode byte for byte,
 * decrypt, and every single-bit flip of a signed message fails to parse or to verify. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "srup/srup.h"
#include "testutil.h"

#define N_VECTORS 6

static uint64_t hex_u64(const char *s)
{
	uint64_t v = 0;
	ck_assert_int_eq(srup_id_parse(s, strlen(s), &v), SRUP_OK);
	return v;
}

static void check_bytes_field(const char *json, int idx, const char *key, struct srup_bytes got)
{
	char *hex = tu_vec_get(json, idx, key);
	if (hex == NULL) {
		return;
	}
	size_t n = 0;
	uint8_t *want = tu_unhex(hex, &n);
	ck_assert_msg(got.len == n, "%s: length %zu, want %zu", key, got.len, n);
	if (n > 0) {
		ck_assert_mem_eq(got.p, want, n);
	}
	free(want);
	free(hex);
}

static void check_int_field(const char *json, int idx, const char *key, uint64_t got)
{
	char *s = tu_vec_get(json, idx, key);
	if (s == NULL) {
		return;
	}
	ck_assert_msg(hex_u64(s) == got, "%s: %llx, want %s", key, (unsigned long long)got, s);
	free(s);
}

struct vec {
	char *json;
	uint8_t *ser;
	size_t ser_len;
	struct srup_msg m;
	struct srup_key *pub;
	struct srup_key *priv;
};

static void vec_load(struct vec *v, int idx)
{
	v->json = tu_read_file(tu_vector_path("vectors.json"), NULL);
	v->ser = tu_vec_hex(v->json, idx, "serialized_hex", &v->ser_len);
	ck_assert_int_eq(srup_msg_parse(v->ser, v->ser_len, &v->m, NULL), SRUP_OK);
	char *vk = tu_vec_need(v->json, idx, "verify_key");
	char *sk = tu_vec_need(v->json, idx, "signing_key");
	ck_assert_int_eq(srup_key_load_file(tu_vector_path(vk), SRUP_KEY_PUBLIC, &v->pub, NULL),
	                 SRUP_OK);
	ck_assert_int_eq(srup_key_load_file(tu_vector_path(sk), SRUP_KEY_PRIVATE, &v->priv, NULL),
	                 SRUP_OK);
	free(vk);
	free(sk);
}

static void vec_free(struct vec *v)
{
	srup_key_free(v->pub);
	srup_key_free(v->priv);
	free(v->ser);
	free(v->json);
}

START_TEST(test_vector_decodes_to_recorded_fields)
{
	struct vec v;
	vec_load(&v, _i);
	ck_assert_uint_eq(v.ser_len, tu_vec_num(v.json, _i, "serialized_len"));
	char *type = tu_vec_need(v.json, _i, "msg_type");
	ck_assert_uint_eq(v.m.type, hex_u64(type));
	free(type);
	char *tname = tu_vec_need(v.json, _i, "type_name");
	ck_assert_str_eq(srup_msg_type_name(v.m.type), tname);
	free(tname);
	check_int_field(v.json, _i, "sequence_id", v.m.sequence_id);
	check_int_field(v.json, _i, "sender_id", v.m.sender_id);
	check_bytes_field(v.json, _i, "token_hex", v.m.token);
	check_bytes_field(v.json, _i, "signature_hex", v.m.signature);
	check_bytes_field(v.json, _i, "url_hex", v.m.url);
	check_bytes_field(v.json, _i, "digest_hex", v.m.digest);
	check_bytes_field(v.json, _i, "data_id_hex", v.m.data_id);
	check_bytes_field(v.json, _i, "data_hex", v.m.data);
	check_int_field(v.json, _i, "status", v.m.status);
	check_int_field(v.json, _i, "action_id", v.m.action_id);
	check_int_field(v.json, _i, "req_id", v.m.req_id);
	ck_assert_uint_eq(v.m.sig_off, tu_vec_num(v.json, _i, "signature_offset"));

	/* The unsigned bytes we would sign are exactly the recorded ones. */
	size_t ulen = 0;
	uint8_t *want = tu_vec_hex(v.json, _i, "unsigned_hex", &ulen);
	uint8_t got[4096];
	size_t glen = 0;
	ck_assert_int_eq(srup_msg_unsigned(&v.m, got, sizeof got, &glen), SRUP_OK);
	ck_assert_uint_eq(glen, ulen);
	ck_assert_mem_eq(got, want, ulen);
	free(want);
	vec_free(&v);
}
END_TEST

START_TEST(test_vector_verifies_and_reencodes_identically)
{
	struct vec v;
	vec_load(&v, _i);
	ck_assert_int_eq(srup_msg_verify(&v.m, v.pub, NULL), SRUP_OK);
	uint8_t out[4096];
	size_t n = 0;
	ck_assert_int_eq(srup_msg_sign_encode(&v.m, v.priv, out, sizeof out, &n, NULL), SRUP_OK);
	ck_assert_uint_eq(n, v.ser_len);
	ck_assert_mem_eq(out, v.ser, n);
	/* A different key's signature does not verify. */
	struct srup_key *other = NULL;
	const char *other_path = strcmp(srup_msg_type_name(v.m.type), "HM_JOIN_RESP") == 0
	                                 ? "keys/device_public.pem"
	                                 : "keys/pysrup_test_public.pem";
	ck_assert_int_eq(srup_key_load_file(tu_vector_path(other_path), SRUP_KEY_PUBLIC, &other, NULL),
	                 SRUP_OK);
	ck_assert_int_eq(srup_msg_verify(&v.m, other, NULL), SRUP_ERR_SIG);
	srup_key_free(other);
	vec_free(&v);
}
END_TEST

START_TEST(test_vector_every_bit_flip_fails)
{
	struct vec v;
	vec_load(&v, _i);
	uint8_t *buf = malloc(v.ser_len);
	ck_assert_ptr_nonnull(buf);
	size_t parsed_bad = 0;
	for (size_t byte = 0; byte < v.ser_len; byte++) {
		for (int bit = 0; bit < 8; bit++) {
			memcpy(buf, v.ser, v.ser_len);
			buf[byte] ^= (uint8_t)(1u << bit);
			struct srup_msg m;
			enum srup_err rc = srup_msg_parse(buf, v.ser_len, &m, NULL);
			if (rc == SRUP_OK) {
				ck_assert_msg(srup_msg_verify(&m, v.pub, NULL) != SRUP_OK,
				              "flip of byte %zu bit %d verified", byte, bit);
			} else {
				parsed_bad++;
			}
		}
	}
	/* Flips in the version, type and length bytes are caught by the parser itself. */
	ck_assert_uint_gt(parsed_bad, 8);
	free(buf);
	vec_free(&v);
}
END_TEST

START_TEST(test_vector_encrypted_field_decrypts)
{
	struct vec v;
	int idx = -1;
	char *json = tu_read_file(tu_vector_path("vectors.json"), NULL);
	for (int i = 0; i < tu_vec_count(json); i++) {
		char *k = tu_vec_get(json, i, "recipient_private_key");
		if (k != NULL) {
			idx = i;
			free(k);
		}
	}
	free(json);
	ck_assert_int_ge(idx, 0);
	vec_load(&v, idx);
	char *kp = tu_vec_need(v.json, idx, "recipient_private_key");
	struct srup_key *rk = NULL;
	ck_assert_int_eq(srup_key_load_file(tu_vector_path(kp), SRUP_KEY_PRIVATE, &rk, NULL), SRUP_OK);
	ck_assert_uint_eq(v.m.encrypted.len, tu_vec_num(v.json, idx, "blob_len"));
	uint8_t *pt = NULL;
	size_t pt_len = 0;
	ck_assert_int_eq(srup_envelope_open(rk, v.m.encrypted.p, v.m.encrypted.len, &pt, &pt_len, NULL),
	                 SRUP_OK);
	size_t want_len = 0;
	uint8_t *want = tu_vec_hex(v.json, idx, "plaintext_hex", &want_len);
	ck_assert_uint_eq(pt_len, want_len);
	ck_assert_mem_eq(pt, want, want_len);
	/* Another private key cannot open the blob (the vector is signed with the recipient's own
	 * key, so use the server key). */
	struct srup_key *wrong = NULL;
	ck_assert_int_eq(srup_key_load_file(tu_vector_path("keys/server_private.pem"), SRUP_KEY_PRIVATE,
	                                    &wrong, NULL),
	                 SRUP_OK);
	uint8_t *pt2 = NULL;
	size_t pt2_len = 0;
	ck_assert_int_ne(
	        srup_envelope_open(wrong, v.m.encrypted.p, v.m.encrypted.len, &pt2, &pt2_len, NULL),
	        SRUP_OK);
	ck_assert_ptr_null(pt2);
	srup_key_free(wrong);
	free(want);
	free(pt);
	free(kp);
	srup_key_free(rk);
	vec_free(&v);
}
END_TEST

Suite *vectors_suite(void)
{
	Suite *s = suite_create("vectors");
	TCase *tc = tcase_create("reference");
	tcase_add_loop_test(tc, test_vector_decodes_to_recorded_fields, 0, N_VECTORS);
	tcase_add_loop_test(tc, test_vector_verifies_and_reencodes_identically, 0, N_VECTORS);
	tcase_add_loop_test(tc, test_vector_every_bit_flip_fails, 0, N_VECTORS);
	tcase_add_test(tc, test_vector_encrypted_field_decrypts);
	tcase_set_timeout(tc, 120);
	suite_add_tcase(s, tc);
	return s;
}
