/* SPDX-License-Identifier: MIT
 * test_verifier.c - the prepared verifier agrees with srup_msg_verify on valid messages, on every
 * single-bit flip, on wrong keys and wrong lengths, and stays usable across many messages. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "srup/srup.h"
#include "testutil.h"

static struct srup_key *priv;
static struct srup_key *pub;
static struct srup_key *other;

static void setup(void)
{
	ck_assert_int_eq(srup_key_load_file(tu_vector_path("keys/server_private.pem"), SRUP_KEY_PRIVATE,
	                                    &priv, NULL),
	                 SRUP_OK);
	ck_assert_int_eq(srup_key_load_file(tu_vector_path("keys/server_public.pem"), SRUP_KEY_PUBLIC,
	                                    &pub, NULL),
	                 SRUP_OK);
	ck_assert_int_eq(srup_key_load_file(tu_vector_path("keys/device_public.pem"), SRUP_KEY_PUBLIC,
	                                    &other, NULL),
	                 SRUP_OK);
}

static void teardown(void)
{
	srup_key_free(priv);
	srup_key_free(pub);
	srup_key_free(other);
}

/* A signed DATA message with sequence seq, in out; returns its length. */
static size_t make_signed(uint64_t seq, uint8_t *out, size_t cap)
{
	static const uint8_t tok[] = "3f1c9e2a-7b4d-4c8e-9a61-0d2f5b7e8c13";
	struct srup_msg m;
	size_t n = 0;
	memset(&m, 0, sizeof m);
	m.type = SRUP_MSG_DATA;
	m.sequence_id = seq;
	m.sender_id = 0xb9d077e223834cf6u;
	m.token = (struct srup_bytes){tok, 36};
	m.data_id = (struct srup_bytes){(const uint8_t *)"temperature", 11};
	m.data = (struct srup_bytes){(const uint8_t *)"\x15\x00\x00\x00", 4};
	ck_assert_int_eq(srup_msg_sign_encode(&m, priv, out, cap, &n, NULL), SRUP_OK);
	return n;
}

START_TEST(test_verifier_accepts_valid_and_is_reusable)
{
	struct srup_verifier *v = NULL;
	ck_assert_int_eq(srup_verifier_new(pub, &v, NULL), SRUP_OK);
	for (uint64_t seq = 1; seq <= 50; seq++) {
		uint8_t buf[1024];
		size_t n = make_signed(seq, buf, sizeof buf);
		struct srup_msg m;
		ck_assert_int_eq(srup_msg_parse(buf, n, &m, NULL), SRUP_OK);
		ck_assert_int_eq(srup_verifier_msg(v, &m, NULL), SRUP_OK);
		/* a failure in between leaves the verifier usable */
		buf[n - 1] ^= 1;
		ck_assert_int_eq(srup_msg_parse(buf, n, &m, NULL), SRUP_OK);
		ck_assert_int_eq(srup_verifier_msg(v, &m, NULL), SRUP_ERR_SIG);
	}
	srup_verifier_free(v);
}
END_TEST

START_TEST(test_verifier_agrees_with_msg_verify_on_every_flip)
{
	struct srup_verifier *v = NULL;
	uint8_t good[1024];
	uint8_t buf[1024];
	size_t n = make_signed(7, good, sizeof good);
	ck_assert_int_eq(srup_verifier_new(pub, &v, NULL), SRUP_OK);
	for (size_t byte = 0; byte < n; byte++) {
		for (int bit = 0; bit < 8; bit++) {
			struct srup_msg m;
			memcpy(buf, good, n);
			buf[byte] ^= (uint8_t)(1u << bit);
			if (srup_msg_parse(buf, n, &m, NULL) != SRUP_OK) {
				continue;
			}
			enum srup_err a = srup_verifier_msg(v, &m, NULL);
			enum srup_err b = srup_msg_verify(&m, pub, NULL);
			ck_assert_msg(a != SRUP_OK, "flip %zu/%d verified", byte, bit);
			ck_assert_int_eq(a, b);
		}
	}
	srup_verifier_free(v);
}
END_TEST

START_TEST(test_verifier_refuses_wrong_key_and_length)
{
	struct srup_verifier *v = NULL;
	struct srup_diag d;
	uint8_t buf[1024];
	size_t n = make_signed(9, buf, sizeof buf);
	struct srup_msg m;
	ck_assert_int_eq(srup_msg_parse(buf, n, &m, NULL), SRUP_OK);
	ck_assert_int_eq(srup_verifier_new(other, &v, NULL), SRUP_OK);
	ck_assert_int_eq(srup_verifier_msg(v, &m, &d), SRUP_ERR_SIG);
	srup_verifier_free(v);

	/* The verifier keeps its own reference: the key may go first. */
	struct srup_key *k = NULL;
	ck_assert_int_eq(
	        srup_key_load_file(tu_vector_path("keys/server_public.pem"), SRUP_KEY_PUBLIC, &k, NULL),
	        SRUP_OK);
	ck_assert_int_eq(srup_verifier_new(k, &v, NULL), SRUP_OK);
	srup_key_free(k);
	ck_assert_int_eq(srup_verifier_msg(v, &m, NULL), SRUP_OK);
	/* A parsed view whose signature length is not the key size. */
	struct srup_msg shorter = m;
	shorter.signature.len -= 1;
	ck_assert_int_eq(srup_verifier_msg(v, &shorter, &d), SRUP_ERR_SIG);
	struct srup_msg unparsed = m;
	unparsed.raw = NULL;
	ck_assert_int_eq(srup_verifier_msg(v, &unparsed, NULL), SRUP_ERR_INVAL);
	ck_assert_int_eq(srup_verifier_msg(NULL, &m, NULL), SRUP_ERR_INVAL);
	srup_verifier_free(v);
	srup_verifier_free(NULL);
	ck_assert_int_eq(srup_verifier_new(NULL, &v, NULL), SRUP_ERR_INVAL);
	ck_assert_ptr_null(v);
}
END_TEST

START_TEST(test_verifier_checks_the_reference_vectors)
{
	/* The INITIATE vector (first in vectors.json), signed by the reference with the server key. */
	char *json = tu_read_file(tu_vector_path("vectors.json"), NULL);
	size_t n = 0;
	uint8_t *buf = tu_vec_hex(json, 0, "serialized_hex", &n);
	struct srup_msg m;
	ck_assert_int_eq(srup_msg_parse(buf, n, &m, NULL), SRUP_OK);
	ck_assert_uint_eq(m.type, SRUP_MSG_INITIATE);
	struct srup_verifier *v = NULL;
	ck_assert_int_eq(srup_verifier_new(pub, &v, NULL), SRUP_OK);
	ck_assert_int_eq(srup_verifier_msg(v, &m, NULL), SRUP_OK);
	srup_verifier_free(v);
	free(buf);
	free(json);
}
END_TEST

Suite *verifier_suite(void)
{
	Suite *s = suite_create("verifier");
	TCase *tc = tcase_create("prepared");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_verifier_accepts_valid_and_is_reusable);
	tcase_add_test(tc, test_verifier_agrees_with_msg_verify_on_every_flip);
	tcase_add_test(tc, test_verifier_refuses_wrong_key_and_length);
	tcase_add_test(tc, test_verifier_checks_the_reference_vectors);
	tcase_set_timeout(tc, 120);
	suite_add_tcase(s, tc);
	return s;
}
