/* SPDX-License-Identifier: MIT
 * test_msg.c - codec tests: every type round-trips, every malformation is refused cleanly.
 * Inputs are placed just before a PROT_NONE page so any over-read faults. Signatures: test_vectors.c. */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <check.h>

#include "srup/srup.h"
#include "testutil.h"

/* The v5 types (spec §2.1), GENERIC excluded. */
static const uint8_t all_types[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x09, 0x0A, 0x0B,
                                    0x0C, 0x0D, 0x0E, 0x0F, 0x10, 0x11, 0x12, 0x13, 0x21,
                                    0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2C, 0x2E, 0x2F};
#define N_TYPES (sizeof all_types / sizeof all_types[0])

static uint8_t sig_bytes[256];
static uint8_t url[] = "https://updates.example.com/fw.bin"; /* with its NUL, as pySRUP sends */
static uint8_t digest[65];
static uint8_t blob[332];
static const uint8_t token[] = "3f1c9e2a-7b4d-4c8e-9a61-0d2f5b7e8c13";

/* A message of type t with every field it carries set to a distinctive value. */
static struct srup_msg make_msg(uint8_t t)
{
	struct srup_msg m;
	memset(&m, 0, sizeof m);
	for (size_t i = 0; i < sizeof sig_bytes; i++) {
		sig_bytes[i] = (uint8_t)(i * 7 + 3);
	}
	memset(digest, 'a', 64);
	digest[64] = 0;
	for (size_t i = 0; i < sizeof blob; i++) {
		blob[i] = (uint8_t)(i ^ 0x5A);
	}
	m.version = SRUP_VERSION;
	m.type = t;
	m.sequence_id = 0x1122334455667788u;
	m.sender_id = 0xb9d077e223834cf6u;
	m.token = (struct srup_bytes){token, 36};
	m.signature = (struct srup_bytes){sig_bytes, sizeof sig_bytes};
	unsigned f = srup_msg_fields(t);
	if (f & SRUP_F_URL) {
		m.url = (struct srup_bytes){url, sizeof url};
	}
	if (f & SRUP_F_DIGEST) {
		m.digest = (struct srup_bytes){digest, sizeof digest};
	}
	if (f & SRUP_F_STATUS) {
		m.status = 0x50;
	}
	if (f & SRUP_F_ACTION_ID) {
		m.action_id = 7;
	}
	if (f & SRUP_F_DATA_ID) {
		m.data_id = (struct srup_bytes){(const uint8_t *)"My_Data_ID", 10};
	}
	if (f & SRUP_F_DATA) {
		m.data = (struct srup_bytes){(const uint8_t *)"\x00\x01\x00\x00", 4};
	}
	if (f & SRUP_F_DEVICE_ID) {
		m.device_id = 0x0123456789ABCDEFu;
	}
	if (f & SRUP_F_OBSERVER_ID) {
		m.observer_id = 0xFEDCBA9876543210u;
	}
	if (f & SRUP_F_JOINING_DEVICE_ID) {
		m.joining_device_id = 0x0102030405060708u;
	}
	if (f & SRUP_F_ENCRYPTED) {
		m.encrypted = (struct srup_bytes){blob, sizeof blob};
	}
	if (f & SRUP_F_TARGET_ID) {
		m.target_id = 0xA1A2A3A4A5A6A7A8u;
	}
	if (f & SRUP_F_SOURCE_ID) {
		m.source_id = 0xB1B2B3B4B5B6B7B8u;
	}
	if (f & SRUP_F_COUNT) {
		m.count = 0xDEADBEEFu;
	}
	if (f & SRUP_F_DEVICE_SEQUENCE) {
		m.device_sequence = 0x01020304u;
	}
	if (f & SRUP_F_REQ_ID) {
		m.req_id = 9;
	}
	return m;
}

/* Guarded copy: len bytes ending exactly at a PROT_NONE page. */
struct guarded {
	uint8_t *map;
	size_t map_len;
	uint8_t *p;
};

static struct guarded guard_copy(const uint8_t *src, size_t len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t data_pages = (len + page - 1) / page + 1;
	struct guarded g;
	g.map_len = (data_pages + 1) * page;
	g.map = mmap(NULL, g.map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert(g.map != MAP_FAILED);
	ck_assert_int_eq(mprotect(g.map + data_pages * page, page, PROT_NONE), 0);
	g.p = g.map + data_pages * page - len;
	if (len > 0) {
		memcpy(g.p, src, len);
	}
	return g;
}

static void guard_free(struct guarded *g)
{
	munmap(g->map, g->map_len);
}

static enum srup_err parse_guarded(const uint8_t *buf, size_t len, struct srup_msg *out,
                                   struct srup_diag *diag)
{
	struct guarded g = guard_copy(buf, len);
	enum srup_err rc = srup_msg_parse(g.p, len, out, diag);
	guard_free(&g);
	return rc;
}

static size_t encode(const struct srup_msg *m, uint8_t *out, size_t cap)
{
	size_t n = 0;
	ck_assert_int_eq(srup_msg_serialize(m, out, cap, &n), SRUP_OK);
	ck_assert_uint_eq(n, srup_msg_encoded_len(m, m->signature.len));
	return n;
}

static void assert_bytes_eq(struct srup_bytes a, struct srup_bytes b)
{
	ck_assert_uint_eq(a.len, b.len);
	if (a.len > 0) {
		ck_assert_mem_eq(a.p, b.p, a.len);
	}
}

START_TEST(test_msg_every_type_round_trips)
{
	uint8_t t = all_types[_i];
	struct srup_msg m = make_msg(t);
	uint8_t buf[2048];
	uint8_t again[2048];
	struct srup_msg p;
	size_t n = encode(&m, buf, sizeof buf);
	struct guarded g = guard_copy(buf, n);

	ck_assert_int_eq(srup_msg_parse(g.p, n, &p, NULL), SRUP_OK);
	ck_assert_ptr_eq(p.raw, g.p);
	ck_assert_uint_eq(p.type, t);
	ck_assert_uint_eq(p.sequence_id, m.sequence_id);
	ck_assert_uint_eq(p.sender_id, m.sender_id);
	assert_bytes_eq(p.token, m.token);
	assert_bytes_eq(p.signature, m.signature);
	assert_bytes_eq(p.url, m.url);
	assert_bytes_eq(p.digest, m.digest);
	assert_bytes_eq(p.data_id, m.data_id);
	assert_bytes_eq(p.data, m.data);
	assert_bytes_eq(p.encrypted, m.encrypted);
	ck_assert_uint_eq(p.status, m.status);
	ck_assert_uint_eq(p.action_id, m.action_id);
	ck_assert_uint_eq(p.req_id, m.req_id);
	ck_assert_uint_eq(p.device_id, m.device_id);
	ck_assert_uint_eq(p.observer_id, m.observer_id);
	ck_assert_uint_eq(p.joining_device_id, m.joining_device_id);
	ck_assert_uint_eq(p.target_id, m.target_id);
	ck_assert_uint_eq(p.source_id, m.source_id);
	ck_assert_uint_eq(p.count, m.count);
	ck_assert_uint_eq(p.device_sequence, m.device_sequence);
	ck_assert_uint_eq(p.sig_off, 20 + m.token.len);
	ck_assert_uint_eq(p.sig_end, p.sig_off + 2 + m.signature.len);

	/* Re-serializing the parsed view gives the same bytes. */
	ck_assert_uint_eq(encode(&p, again, sizeof again), n);
	ck_assert_mem_eq(again, buf, n);
	guard_free(&g);

	/* Unsigned bytes are the message less the signature field (spec §1.3). */
	uint8_t uns[2048];
	size_t un = 0;
	ck_assert_int_eq(srup_msg_unsigned(&m, uns, sizeof uns, &un), SRUP_OK);
	ck_assert_uint_eq(un, n - 2 - m.signature.len);
	ck_assert_mem_eq(uns, buf, p.sig_off);
	ck_assert_mem_eq(uns + p.sig_off, buf + p.sig_end, n - p.sig_end);
}
END_TEST

START_TEST(test_msg_every_truncation_is_refused)
{
	struct srup_msg m = make_msg(all_types[_i]);
	uint8_t buf[2048];
	size_t n = encode(&m, buf, sizeof buf);
	for (size_t len = 0; len < n; len++) {
		struct srup_msg p;
		struct srup_diag d;
		memset(&p, 0xAA, sizeof p);
		enum srup_err rc = parse_guarded(buf, len, &p, &d);
		if (len == 0) {
			ck_assert_int_eq(rc, SRUP_ERR_EMPTY);
		} else {
			ck_assert_msg(rc == SRUP_ERR_TRUNCATED, "type %02x len %zu: %s", all_types[_i], len,
			              srup_strerror(rc));
			ck_assert_uint_le(d.offset, len);
		}
		/* On failure the output is zeroed, never half-filled. */
		ck_assert_uint_eq(p.sequence_id, 0);
		ck_assert_ptr_null(p.raw);
	}
}
END_TEST

START_TEST(test_msg_rejects_trailing_bytes)
{
	struct srup_msg m = make_msg(all_types[_i]);
	uint8_t buf[2048];
	size_t n = encode(&m, buf, sizeof buf);
	struct srup_msg p;
	struct srup_diag d;
	for (size_t extra = 1; extra <= 3; extra++) {
		buf[n + extra - 1] = 0;
		ck_assert_int_eq(parse_guarded(buf, n + extra, &p, &d), SRUP_ERR_TRAILING);
		ck_assert_uint_eq(d.offset, n);
	}
}
END_TEST

START_TEST(test_msg_rejects_wrong_version)
{
	struct srup_msg m = make_msg(SRUP_MSG_ACTION);
	uint8_t buf[2048];
	size_t n = encode(&m, buf, sizeof buf);
	struct srup_msg p;
	for (unsigned v = 0; v < 256; v++) {
		if (v == SRUP_VERSION) {
			continue;
		}
		buf[0] = (uint8_t)v;
		ck_assert_int_eq(parse_guarded(buf, n, &p, NULL), SRUP_ERR_VERSION);
	}
}
END_TEST

START_TEST(test_msg_rejects_unknown_and_generic_types)
{
	struct srup_msg m = make_msg(SRUP_MSG_ACTIVATE);
	uint8_t buf[2048];
	size_t n = encode(&m, buf, sizeof buf);
	struct srup_msg p;
	unsigned known = 0;
	for (unsigned t = 0; t < 256; t++) {
		buf[1] = (uint8_t)t;
		enum srup_err rc = parse_guarded(buf, n, &p, NULL);
		if (!srup_msg_type_is_valid(t)) {
			ck_assert_int_eq(rc, SRUP_ERR_TYPE);
			ck_assert_int_eq(srup_msg_fields(t), 0);
		} else {
			known++;
		}
	}
	ck_assert_uint_eq(known, N_TYPES);
	ck_assert_int_eq(srup_msg_type_is_valid(SRUP_MSG_GENERIC), 0);
	ck_assert_str_eq(srup_msg_type_name(0x0C), "HM_JOIN_RESP");
	ck_assert_int_eq(srup_msg_type_from_name("SYNDICATED_C2_REQ"), 0x2C);
	ck_assert_int_eq(srup_msg_type_from_name("NOPE"), -1);
	ck_assert_ptr_null(srup_msg_type_name(0x07));
}
END_TEST

START_TEST(test_msg_rejects_hostile_lengths)
{
	struct srup_msg m = make_msg(SRUP_MSG_DATA);
	uint8_t buf[2048];
	size_t n = encode(&m, buf, sizeof buf);
	struct srup_msg p;
	uint8_t bad[2048];

	/* token length claims the maximum 0xFFFF: over SRUP_TOKEN_MAX */
	memcpy(bad, buf, n);
	bad[18] = 0xFF;
	bad[19] = 0xFF;
	ck_assert_int_eq(parse_guarded(bad, n, &p, NULL), SRUP_ERR_FIELD_LEN);
	/* token length within its limit but past the end */
	memcpy(bad, buf, n);
	bad[18] = 0x03;
	bad[19] = 0xFF;
	ck_assert_int_eq(parse_guarded(bad, n, &p, NULL), SRUP_ERR_TRUNCATED);
	/* empty token */
	memcpy(bad, buf, n);
	bad[18] = 0;
	bad[19] = 0;
	ck_assert_int_eq(parse_guarded(bad, n, &p, NULL), SRUP_ERR_FIELD_LEN);
	/* signature shorter than RSA-2048, or longer than the maximum */
	size_t so = 20 + 36;
	memcpy(bad, buf, n);
	bad[so] = 0x00;
	bad[so + 1] = 0x10;
	ck_assert_int_eq(parse_guarded(bad, n, &p, NULL), SRUP_ERR_FIELD_LEN);
	memcpy(bad, buf, n);
	bad[so] = 0xFF;
	bad[so + 1] = 0xFF;
	ck_assert_int_eq(parse_guarded(bad, n, &p, NULL), SRUP_ERR_FIELD_LEN);
	/* data_id claims more than is left */
	size_t bo = so + 2 + 256;
	memcpy(bad, buf, n);
	bad[bo] = 0xFF;
	bad[bo + 1] = 0xFE;
	ck_assert_int_eq(parse_guarded(bad, n, &p, NULL), SRUP_ERR_TRUNCATED);
	/* every possible value of the data length prefix either parses exactly or is refused */
	for (unsigned hi = 0; hi < 256; hi++) {
		for (unsigned lo = 0; lo < 256; lo += 17) {
			memcpy(bad, buf, n);
			size_t dl = bo + 2 + 10;
			bad[dl] = (uint8_t)hi;
			bad[dl + 1] = (uint8_t)lo;
			enum srup_err rc = parse_guarded(bad, n, &p, NULL);
			if ((hi << 8 | lo) == 4) {
				ck_assert_int_eq(rc, SRUP_OK);
			} else {
				ck_assert(rc == SRUP_ERR_TRUNCATED || rc == SRUP_ERR_TRAILING);
			}
		}
	}
}
END_TEST

START_TEST(test_msg_rejects_empty_and_oversized_input)
{
	struct srup_msg p;
	uint8_t one = SRUP_VERSION;
	ck_assert_int_eq(srup_msg_parse(NULL, 0, &p, NULL), SRUP_ERR_EMPTY);
	ck_assert_int_eq(srup_msg_parse(&one, 1, &p, NULL), SRUP_ERR_TRUNCATED);
	uint8_t *big = calloc(SRUP_MSG_MAX + 1, 1);
	ck_assert_ptr_nonnull(big);
	big[0] = SRUP_VERSION;
	big[1] = SRUP_MSG_DATA;
	ck_assert_int_eq(srup_msg_parse(big, SRUP_MSG_MAX + 1, &p, NULL), SRUP_ERR_TOO_LONG);
	free(big);
	ck_assert_int_eq(srup_msg_parse(&one, 1, NULL, NULL), SRUP_ERR_INVAL);
}
END_TEST

START_TEST(test_msg_c2_req_pad_is_required_and_zero)
{
	struct srup_msg m = make_msg(SRUP_MSG_SYNDICATED_C2_REQ);
	uint8_t buf[2048];
	size_t n = encode(&m, buf, sizeof buf);
	struct srup_msg p;
	/* spec §8 item 1: the last two bytes are the pad */
	ck_assert_uint_eq(buf[n - 1], 0);
	ck_assert_uint_eq(buf[n - 2], 0);
	ck_assert_uint_eq(buf[n - 3], 9);
	buf[n - 1] = 1;
	ck_assert_int_eq(parse_guarded(buf, n, &p, NULL), SRUP_ERR_PAD);
	buf[n - 1] = 0;
	ck_assert_int_eq(parse_guarded(buf, n - 2, &p, NULL), SRUP_ERR_TRUNCATED);
}
END_TEST

START_TEST(test_msg_integers_are_little_endian_and_lengths_big_endian)
{
	struct srup_msg m = make_msg(SRUP_MSG_SYNDICATED_DEV_LIST);
	uint8_t buf[2048];
	size_t n = encode(&m, buf, sizeof buf);
	static const uint8_t head[] = {0x05, 0x28, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11,
	                               0xf6, 0x4c, 0x83, 0x23, 0xe2, 0x77, 0xd0, 0xb9, 0x00, 0x24};
	ck_assert_mem_eq(buf, head, sizeof head);
	static const uint8_t tail[] = {0x04, 0x03, 0x02, 0x01, 0xEF, 0xCD,
	                               0xAB, 0x89, 0x67, 0x45, 0x23, 0x01};
	ck_assert_mem_eq(buf + n - sizeof tail, tail, sizeof tail);
}
END_TEST

START_TEST(test_msg_encoder_refuses_bad_input)
{
	struct srup_msg m = make_msg(SRUP_MSG_INITIATE);
	uint8_t buf[2048];
	size_t n = 0;
	ck_assert_int_eq(srup_msg_serialize(&m, buf, 100, &n), SRUP_ERR_SPACE);
	ck_assert_uint_eq(n, 0);
	m.type = 0x07;
	ck_assert_int_eq(srup_msg_serialize(&m, buf, sizeof buf, &n), SRUP_ERR_TYPE);
	m.type = SRUP_MSG_INITIATE;
	m.url.len = SRUP_URL_MAX + 1;
	ck_assert_int_eq(srup_msg_serialize(&m, buf, sizeof buf, &n), SRUP_ERR_FIELD_LEN);
	ck_assert_uint_eq(srup_msg_encoded_len(&m, 256), 0);
	m = make_msg(SRUP_MSG_ACTION);
	m.token.len = 0;
	ck_assert_int_eq(srup_msg_serialize(&m, buf, sizeof buf, &n), SRUP_ERR_FIELD_LEN);
	ck_assert_int_eq(srup_msg_serialize(NULL, buf, sizeof buf, &n), SRUP_ERR_INVAL);
}
END_TEST

START_TEST(test_msg_status_names)
{
	ck_assert_str_eq(srup_status_name(0x50), "JOIN_SUCCESS");
	ck_assert_str_eq(srup_status_name(0xFC), "UPDATE_FAIL_HTTP_ERROR");
	ck_assert_ptr_null(srup_status_name(0x41));
	ck_assert_str_eq(srup_err_name(SRUP_ERR_TRAILING), "trailing_bytes");
	ck_assert_str_eq(srup_strerror((enum srup_err)999), "unknown error");
}
END_TEST

START_TEST(test_id_text_form)
{
	char s[SRUP_ID_TEXT_MAX];
	uint64_t v = 0;
	ck_assert_int_eq(srup_id_format(0xb9d077e223834cf6u, s, sizeof s), SRUP_OK);
	ck_assert_str_eq(s, "b9d077e223834cf6");
	ck_assert_int_eq(srup_id_format(0x0fffu, s, sizeof s), SRUP_OK);
	ck_assert_str_eq(s, "fff");
	ck_assert_int_eq(srup_id_format(0, s, sizeof s), SRUP_OK);
	ck_assert_str_eq(s, "0");
	ck_assert_int_eq(srup_id_format(UINT64_MAX, s, 16), SRUP_ERR_SPACE);
	ck_assert_int_eq(srup_id_parse("B9D077E223834CF6", 16, &v), SRUP_OK);
	ck_assert_uint_eq(v, 0xb9d077e223834cf6u);
	ck_assert_int_eq(srup_id_parse("0x1f", 4, &v), SRUP_OK);
	ck_assert_uint_eq(v, 0x1f);
	ck_assert_int_eq(srup_id_parse("", 0, &v), SRUP_ERR_SYNTAX);
	ck_assert_int_eq(srup_id_parse("0x", 2, &v), SRUP_ERR_SYNTAX);
	ck_assert_int_eq(srup_id_parse("12345678901234567", 17, &v), SRUP_ERR_SYNTAX);
	ck_assert_int_eq(srup_id_parse("-1", 2, &v), SRUP_ERR_SYNTAX);
	ck_assert_int_eq(srup_id_parse("12 4", 4, &v), SRUP_ERR_SYNTAX);
}
END_TEST

START_TEST(test_id_new_is_top_of_v4_uuid)
{
	uint64_t seen[64];
	for (int i = 0; i < 64; i++) {
		uint64_t id = srup_id_new();
		/* version nibble 4 is the 13th hex digit of the 16-digit zero-padded form */
		ck_assert_uint_eq((id >> 12) & 0xF, 4);
		char s[SRUP_ID_TEXT_MAX];
		uint64_t back = 0;
		ck_assert_int_eq(srup_id_format(id, s, sizeof s), SRUP_OK);
		ck_assert_int_eq(srup_id_parse(s, strlen(s), &back), SRUP_OK);
		ck_assert_uint_eq(back, id);
		for (int j = 0; j < i; j++) {
			ck_assert_uint_ne(seen[j], id);
		}
		seen[i] = id;
	}
}
END_TEST

START_TEST(test_token_new_is_36_chars)
{
	char a[SRUP_TOKEN_LEN + 1];
	char b[SRUP_TOKEN_LEN + 1];
	srup_token_new(a);
	srup_token_new(b);
	ck_assert_uint_eq(strlen(a), 36);
	ck_assert_int_eq(a[8], '-');
	ck_assert_int_eq(a[14], '4');
	ck_assert_str_ne(a, b);
}
END_TEST

START_TEST(test_hex_helpers)
{
	uint8_t in[] = {0x00, 0xAB, 0xFF};
	char hex[7];
	uint8_t out[3];
	size_t n = 0;
	ck_assert_int_eq(srup_hex_encode(in, 3, hex, sizeof hex), SRUP_OK);
	ck_assert_str_eq(hex, "00abff");
	ck_assert_int_eq(srup_hex_encode(in, 3, hex, 6), SRUP_ERR_SPACE);
	ck_assert_int_eq(srup_hex_decode("00ABff", 6, out, sizeof out, &n), SRUP_OK);
	ck_assert_uint_eq(n, 3);
	ck_assert_mem_eq(out, in, 3);
	ck_assert_int_eq(srup_hex_decode("0", 1, out, sizeof out, &n), SRUP_ERR_SYNTAX);
	ck_assert_int_eq(srup_hex_decode("zz", 2, out, sizeof out, &n), SRUP_ERR_SYNTAX);
	ck_assert_int_eq(srup_hex_decode("00112233", 8, out, sizeof out, &n), SRUP_ERR_SPACE);
}
END_TEST

/* srup_hex_decode's contract (STYLE.md 2.4): buffer and length in, capacity out, *out_len 0
 * on every failure; odd length, a non-hex character anywhere, a "0x" prefix or a space is
 * SYNTAX; the input need not be NUL-terminated. */
START_TEST(test_hex_decode_contract)
{
	uint8_t all[256];
	char hex[2 * 256 + 1];
	uint8_t out[256];
	size_t n = 99;

	for (unsigned i = 0; i < 256; i++) {
		all[i] = (uint8_t)i;
	}
	ck_assert_int_eq(srup_hex_encode(all, sizeof all, hex, sizeof hex), SRUP_OK);
	ck_assert_int_eq(srup_hex_decode(hex, 512, out, sizeof out, &n), SRUP_OK);
	ck_assert_uint_eq(n, 256);
	ck_assert_mem_eq(out, all, 256);
	/* exactly the room needed; one byte less is SPACE */
	ck_assert_int_eq(srup_hex_decode(hex, 512, out, 255, &n), SRUP_ERR_SPACE);
	ck_assert_uint_eq(n, 0);
	/* a prefix of a longer text: only hex_len characters are read */
	ck_assert_int_eq(srup_hex_decode("0aFFzz", 4, out, 2, &n), SRUP_OK);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(out[0], 0x0a);
	ck_assert_uint_eq(out[1], 0xff);
	/* empty input: OK, nothing written, even with no room */
	n = 99;
	ck_assert_int_eq(srup_hex_decode("", 0, NULL, 0, &n), SRUP_OK);
	ck_assert_uint_eq(n, 0);
	/* every character that is not a hex digit, in either place of a pair */
	for (unsigned c = 0; c < 256; c++) {
		char bad[4] = {'a', 'b', 'c', 'd'};
		int is_hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
		for (unsigned pos = 0; pos < 4; pos++) {
			memcpy(bad, "abcd", 4);
			bad[pos] = (char)c;
			n = 99;
			ck_assert_int_eq(srup_hex_decode(bad, 4, out, sizeof out, &n),
			                 is_hex ? SRUP_OK : SRUP_ERR_SYNTAX);
			ck_assert_uint_eq(n, is_hex ? 2 : 0);
		}
	}
	n = 99;
	ck_assert_int_eq(srup_hex_decode("0x00", 4, out, sizeof out, &n), SRUP_ERR_SYNTAX);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(srup_hex_decode("00 11", 5, out, sizeof out, &n), SRUP_ERR_SYNTAX);
	ck_assert_int_eq(srup_hex_decode("001", 3, out, sizeof out, &n), SRUP_ERR_SYNTAX);
	ck_assert_uint_eq(n, 0);
	/* caller bugs */
	ck_assert_int_eq(srup_hex_decode(NULL, 0, out, sizeof out, &n), SRUP_ERR_INVAL);
	ck_assert_int_eq(srup_hex_decode("00", 2, out, sizeof out, NULL), SRUP_ERR_INVAL);
	ck_assert_int_eq(srup_hex_decode("00", 2, NULL, 1, &n), SRUP_ERR_INVAL);
}
END_TEST

Suite *msg_suite(void)
{
	Suite *s = suite_create("msg");
	TCase *tc = tcase_create("codec");
	tcase_add_loop_test(tc, test_msg_every_type_round_trips, 0, (int)N_TYPES);
	tcase_add_loop_test(tc, test_msg_every_truncation_is_refused, 0, (int)N_TYPES);
	tcase_add_loop_test(tc, test_msg_rejects_trailing_bytes, 0, (int)N_TYPES);
	tcase_add_test(tc, test_msg_rejects_wrong_version);
	tcase_add_test(tc, test_hex_decode_contract);
	tcase_add_test(tc, test_msg_rejects_unknown_and_generic_types);
	tcase_add_test(tc, test_msg_rejects_hostile_lengths);
	tcase_add_test(tc, test_msg_rejects_empty_and_oversized_input);
	tcase_add_test(tc, test_msg_c2_req_pad_is_required_and_zero);
	tcase_add_test(tc, test_msg_integers_are_little_endian_and_lengths_big_endian);
	tcase_add_test(tc, test_msg_encoder_refuses_bad_input);
	tcase_add_test(tc, test_msg_status_names);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	TCase *ti = tcase_create("id");
	tcase_add_test(ti, test_id_text_form);
	tcase_add_test(ti, test_id_new_is_top_of_v4_uuid);
	tcase_add_test(ti, test_token_new_is_36_chars);
	tcase_add_test(ti, test_hex_helpers);
	suite_add_tcase(s, ti);
	return s;
}
