/* SPDX-License-Identifier: MIT
 * fuzz_decode.c - libFuzzer target for the SRUP v5 decoder (srup_msg_parse).
 * Property: whatever parses re-encodes to the input byte for byte, its views stay inside the
 * input, and its signed bytes are exactly the input minus the signature field. Any other
 * outcome, or a failed parse that leaves state behind, aborts. Verification runs against a
 * fixed key to exercise hostile signature lengths, and the prepared verifier must agree with
 * srup_msg_verify on every parsed message. Key and verifier live for the whole process. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <srup/srup.h>

#ifndef SRUP_VECTORS_DIR
#error "SRUP_VECTORS_DIR must name tests/vectors"
#endif

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct srup_key *verify_key;
static struct srup_verifier *verifier;

static void fail(const char *what)
{
	fprintf(stderr, "fuzz_decode: property violated: %s\n", what);
	abort();
}

/* Loads the reference server key and its verifier once; both are never freed. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (srup_key_load_file(SRUP_VECTORS_DIR "/keys/server_public.pem", SRUP_KEY_PUBLIC, &verify_key,
	                       NULL) != SRUP_OK) {
		fprintf(stderr, "fuzz_decode: cannot load %s\n",
		        SRUP_VECTORS_DIR "/keys/server_public.pem");
		abort();
	}
	if (srup_verifier_new(verify_key, &verifier, NULL) != SRUP_OK) {
		fprintf(stderr, "fuzz_decode: cannot create a verifier\n");
		abort();
	}
	return 0;
}

/* 1 if the view v lies inside [buf, buf + len) (an empty view may be anywhere or NULL). */
static int view_inside(struct srup_bytes v, const uint8_t *buf, size_t len)
{
	if (v.len == 0) {
		return 1;
	}
	if (v.p == NULL) {
		return 0;
	}
	uintptr_t b = (uintptr_t)buf;
	uintptr_t p = (uintptr_t)v.p;
	return p >= b && p - b <= len && v.len <= len - (size_t)(p - b);
}

static void check_diag(const struct srup_diag *d, size_t len)
{
	if (memchr(d->detail, '\0', sizeof d->detail) == NULL) {
		fail("diag.detail is not NUL-terminated");
	}
	if (d->offset > len) {
		fail("diag.offset is past the input");
	}
}

static void check_rejected(enum srup_err rc, const struct srup_msg *m, const struct srup_diag *d,
                           size_t len)
{
	if (rc == SRUP_ERR_INVAL || rc >= SRUP_ERR__COUNT) {
		fail("parse returned an error it may not return for a real buffer");
	}
	if (srup_strerror(rc) == NULL || srup_err_name(rc) == NULL) {
		fail("error without a text or a name");
	}
	if (m->raw != NULL || m->raw_len != 0 || m->token.len != 0 || m->signature.len != 0 ||
	    m->type != 0 || m->version != 0 || m->sequence_id != 0 || m->sender_id != 0) {
		fail("a failed parse left fields behind");
	}
	check_diag(d, len);
}

static void check_accepted(const uint8_t *data, size_t size, const struct srup_msg *m)
{
	uint8_t *out = NULL;
	size_t out_len = 0;
	size_t sig_field;

	if (m->raw != data || m->raw_len != size || m->version != SRUP_VERSION) {
		fail("raw/version not set from the input");
	}
	if (!srup_msg_type_is_valid(m->type) || srup_msg_type_name(m->type) == NULL) {
		fail("accepted a type that is not a valid v5 type");
	}
	if (m->token.len == 0 || m->token.len > SRUP_TOKEN_MAX || m->signature.len < SRUP_SIG_MIN ||
	    m->signature.len > SRUP_SIG_MAX) {
		fail("token or signature length outside its limits");
	}
	if (m->sig_off > m->sig_end || m->sig_end > size ||
	    m->sig_end - m->sig_off != 2 + m->signature.len ||
	    m->signature.p != data + m->sig_off + 2) {
		fail("signature position inconsistent");
	}
	const struct srup_bytes views[] = {m->token,   m->signature, m->url,      m->digest,
	                                   m->data_id, m->data,      m->encrypted};
	for (size_t i = 0; i < sizeof views / sizeof views[0]; i++) {
		if (!view_inside(views[i], data, size)) {
			fail("a parsed view points outside the input");
		}
	}
	if (srup_msg_encoded_len(m, m->signature.len) != size) {
		fail("encoded_len differs from the input length");
	}

	/* Exactly sized buffer: an overrun by one byte is caught by ASan. */
	out = malloc(size);
	if (out == NULL) {
		abort();
	}
	if (srup_msg_serialize(m, out, size, &out_len) != SRUP_OK) {
		fail("parsed message does not serialize");
	}
	if (out_len != size || memcmp(out, data, size) != 0) {
		fail("serialize does not reproduce the input byte for byte");
	}
	if (srup_msg_serialize(m, out, size - 1, &out_len) != SRUP_ERR_SPACE) {
		fail("serialize into a short buffer did not return SPACE");
	}

	/* Signed bytes (spec §1.3): the input with the signature field cut out. */
	sig_field = m->sig_end - m->sig_off;
	if (srup_msg_unsigned(m, out, size, &out_len) != SRUP_OK) {
		fail("parsed message has no unsigned form");
	}
	if (out_len != size - sig_field || memcmp(out, data, m->sig_off) != 0 ||
	    memcmp(out + m->sig_off, data + m->sig_end, size - m->sig_end) != 0) {
		fail("unsigned bytes are not the input minus the signature field");
	}
	free(out);

	struct srup_diag d;
	memset(&d, 0, sizeof d);
	enum srup_err vrc = srup_msg_verify(m, verify_key, &d);
	if (vrc != SRUP_OK && vrc != SRUP_ERR_SIG && vrc != SRUP_ERR_CRYPTO) {
		fail("verify returned an unexpected error");
	}
	if (vrc != SRUP_OK) {
		check_diag(&d, SIZE_MAX);
	}
	/* The prepared verifier is the same check with state kept per key: same verdict. */
	memset(&d, 0, sizeof d);
	if (srup_verifier_msg(verifier, m, &d) != vrc) {
		fail("srup_verifier_msg and srup_msg_verify disagree");
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct srup_msg m;
	struct srup_diag d;
	enum srup_err rc;

	/* Garbage in m and d must not leak through: the parser has to set what it reports. */
	memset(&m, 0xA5, sizeof m);
	memset(&d, 0, sizeof d);
	rc = srup_msg_parse(data, size, &m, &d);
	if (rc == SRUP_OK) {
		check_accepted(data, size, &m);
	} else {
		check_rejected(rc, &m, &d, size);
	}
	/* Same bytes, same result: the parser keeps no state. */
	struct srup_msg again;
	if (srup_msg_parse(data, size, &again, NULL) != rc) {
		fail("parsing the same bytes twice gave different results");
	}
	return 0;
}
