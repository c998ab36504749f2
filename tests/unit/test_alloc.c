/* SPDX-License-Identifier: MIT
 * test_alloc.c - allocation torture: every libsrup operation that allocates is run with its
 * 1st, 2nd, ... Nth allocation failing (libsrup's own malloc/calloc/realloc, through the linker's
 * --wrap), and must return a clean error, never crash or leak (the ASan/LeakSanitizer run watches
 * the leaks). OpenSSL's allocations are not failed: OpenSSL 3 caches some failed one-time
 * initialisations for the life of the process, which would test OpenSSL rather than us. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "srup/srup.h"
#include "testutil.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);

/* Allocations left before the failing one; negative: never fail. Test-only global state. */
static long countdown = -1;
static unsigned long injected;

/* Only calls into libsrup are armed: Check itself allocates when an assertion runs. */
static int armed;
#define ARMED(expr) (armed = 1, rc_tmp = (expr), armed = 0, rc_tmp)
static enum srup_err rc_tmp;

static int should_fail(void)
{
	if (!armed || countdown < 0) {
		return 0;
	}
	if (countdown == 0) {
		injected++;
		return 1;
	}
	countdown--;
	return 0;
}

void *__wrap_malloc(size_t n)
{
	return should_fail() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t m)
{
	return should_fail() ? NULL : __real_calloc(n, m);
}

void *__wrap_realloc(void *p, size_t n)
{
	return should_fail() ? NULL : __real_realloc(p, n);
}

typedef enum srup_err (*op_fn)(void);

static struct srup_key *priv_key;
static struct srup_key *pub_key;
static uint8_t *blob;
static size_t blob_len;

static enum srup_err op_key_load(void)
{
	struct srup_key *k = NULL;
	const char *path = tu_vector_path("keys/server_private.pem");
	enum srup_err rc = ARMED(srup_key_load_file(path, SRUP_KEY_PRIVATE, &k, NULL));
	if (rc == SRUP_OK) {
		ck_assert_ptr_nonnull(k);
	} else {
		ck_assert_ptr_null(k);
	}
	srup_key_free(k);
	return rc;
}

static enum srup_err op_key_export(void)
{
	char *pem = NULL;
	size_t len = 0;
	enum srup_err rc = ARMED(srup_key_public_pem(priv_key, &pem, &len));
	free(pem);
	return rc;
}

static enum srup_err op_sign_verify(void)
{
	static const uint8_t tok[] = "TOKEN12345";
	struct srup_msg m;
	uint8_t out[1024];
	size_t n = 0;
	memset(&m, 0, sizeof m);
	m.type = SRUP_MSG_ACTION;
	m.sequence_id = 1;
	m.sender_id = 2;
	m.token = (struct srup_bytes){tok, 10};
	m.action_id = 7;
	enum srup_err rc = ARMED(srup_msg_sign_encode(&m, priv_key, out, sizeof out, &n, NULL));
	if (rc != SRUP_OK) {
		return rc;
	}
	struct srup_msg p;
	ck_assert_int_eq(srup_msg_parse(out, n, &p, NULL), SRUP_OK);
	return ARMED(srup_msg_verify(&p, pub_key, NULL));
}

static enum srup_err op_seal(void)
{
	uint8_t *b = NULL;
	size_t bl = 0;
	enum srup_err rc = ARMED(
	        srup_envelope_seal(pub_key, (const uint8_t *)"0123456789abcdef", 16, &b, &bl, NULL));
	free(b);
	return rc;
}

static enum srup_err op_open(void)
{
	uint8_t *pt = NULL;
	size_t pl = 0;
	enum srup_err rc = ARMED(srup_envelope_open(priv_key, blob, blob_len, &pt, &pl, NULL));
	if (rc == SRUP_OK) {
		ck_assert_uint_eq(pl, 16);
	} else {
		ck_assert_ptr_null(pt);
	}
	free(pt);
	return rc;
}

static enum srup_err op_pictures(void)
{
	struct srup_id128 id;
	struct srup_pict pict;
	uint8_t *png = NULL;
	char *svg = NULL;
	char *ansi = NULL;
	size_t n = 0;
	enum srup_err rc;
	memset(&id, 0xA5, sizeof id);
	ck_assert_int_eq(srup_pict_make(&id, SRUP_PICT_COLOUR, &pict), SRUP_OK);
	rc = ARMED(srup_pict_png(&pict, 4, &png, &n));
	if (rc == SRUP_OK) {
		rc = ARMED(srup_pict_svg(&pict, 4, &svg, &n));
	}
	if (rc == SRUP_OK) {
		rc = ARMED(srup_pict_ansi(&pict, &ansi, &n));
	}
	free(png);
	free(svg);
	free(ansi);
	return rc;
}

static enum srup_err op_verifier(void)
{
	struct srup_verifier *v = NULL;
	enum srup_err rc = ARMED(srup_verifier_new(pub_key, &v, NULL));
	if (rc != SRUP_OK) {
		ck_assert_ptr_null(v);
	}
	srup_verifier_free(v);
	return rc;
}

static const struct {
	const char *name;
	op_fn fn;
	int allocates; /* 0: must make no allocation of libsrup's own (the per-message path) */
} ops[] = {
        {"key_load", op_key_load, 1},
        {"key_export", op_key_export, 1},
        {"sign_verify", op_sign_verify, 0},
        {"seal", op_seal, 1},
        {"open", op_open, 1},
        {"pictures", op_pictures, 1},
        {"verifier", op_verifier, 1},
};
#define N_OPS (sizeof ops / sizeof ops[0])

static void setup(void)
{
	ck_assert_int_eq(srup_key_load_file(tu_vector_path("keys/server_private.pem"), SRUP_KEY_PRIVATE,
	                                    &priv_key, NULL),
	                 SRUP_OK);
	ck_assert_int_eq(srup_key_load_file(tu_vector_path("keys/server_public.pem"), SRUP_KEY_PUBLIC,
	                                    &pub_key, NULL),
	                 SRUP_OK);
	ck_assert_int_eq(srup_envelope_seal(pub_key, (const uint8_t *)"0123456789abcdef", 16, &blob,
	                                    &blob_len, NULL),
	                 SRUP_OK);
}

static void teardown(void)
{
	srup_key_free(priv_key);
	srup_key_free(pub_key);
	free(blob);
	priv_key = NULL;
	pub_key = NULL;
	blob = NULL;
}

START_TEST(test_alloc_every_failure_is_clean)
{
	unsigned long failures = 0;
	long n;
	/* Fail allocation n for n = 0, 1, 2, ... until the operation runs without reaching the
	 * failing allocation: then every allocation it makes has been failed once. */
	for (n = 0; n < 100000; n++) {
		injected = 0;
		countdown = n;
		enum srup_err rc = ops[_i].fn();
		countdown = -1;
		if (injected == 0) {
			ck_assert_msg(rc == SRUP_OK, "%s without injected failure: %s", ops[_i].name,
			              srup_strerror(rc));
			break;
		}
		/* An operation may survive a failed allocation (OpenSSL retries some), but an error
		 * must be an error code, not a crash, and never "bad signature". */
		if (rc != SRUP_OK) {
			failures++;
			ck_assert_msg(rc != SRUP_ERR_SIG, "%s: allocation %ld reported as a bad signature",
			              ops[_i].name, n);
		}
	}
	ck_assert_msg(n < 100000, "%s: no end to its allocations", ops[_i].name);
	if (ops[_i].allocates) {
		ck_assert_msg(n > 0 && failures > 0, "%s: %ld allocations, %lu failures", ops[_i].name, n,
		              failures);
	} else {
		ck_assert_msg(n == 0, "%s: %ld allocations on a path that should make none", ops[_i].name,
		              n);
	}
}
END_TEST

Suite *alloc_suite(void)
{
	Suite *s = suite_create("alloc");
	TCase *tc = tcase_create("torture");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test_alloc_every_failure_is_clean, 0, (int)N_OPS);
	tcase_set_timeout(tc, 300);
	suite_add_tcase(s, tc);
	return s;
}
