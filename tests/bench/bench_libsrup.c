/* SPDX-License-Identifier: MIT
 * bench_libsrup.c - single-thread speed figures for libsrup: decode rate, verify rate through
 * srup_msg_verify, and raw OpenSSL EVP verify of the same signed bytes with the same key,
 * measured in interleaved rounds of one run so that machine noise hits both alike; and the
 * same pair with per-key state: srup_verifier_msg against an OpenSSL context prepared once.
 * Prints figures and ratios against the targets; it asserts nothing about speed (exit status
 * reports only whether the measurement could be made and the vector verified). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/rsa.h>

#include <srup/srup.h>

#include "bench_util.h"

#ifndef SRUP_VECTORS_DIR
#error "SRUP_VECTORS_DIR must name tests/vectors"
#endif

/* Many short rounds: a burst of load from another process then hits one short slice of one
 * verifier, and the median of the per-round ratios discards it. */
#define ROUNDS           40
#define DECODE_PER_ROUND 125000u
#define VERIFY_PER_ROUND 250u
#define DECODE_TARGET    2000000.0 /* messages per second per core (issue 2) */
#define VERIFY_TARGET    0.95      /* libsrup verify rate / raw OpenSSL verify rate */

static volatile uint64_t sink;

/* Read the first "serialized_hex" of vectors.json (the INITIATE vector, 421 bytes: a typical
 * message with a URL and a digest). *out is malloc'd. Returns 0 on success. */
static int load_vector(uint8_t **out, size_t *out_len)
{
	static const char key[] = "\"serialized_hex\": \"";
	const char *path = SRUP_VECTORS_DIR "/vectors.json";
	FILE *f = fopen(path, "rb");
	char *text = NULL;
	uint8_t *buf = NULL;
	int rc = -1;

	*out = NULL;
	*out_len = 0;
	if (f == NULL) {
		fprintf(stderr, "bench: cannot open %s\n", path);
		return -1;
	}
	if (fseek(f, 0, SEEK_END) != 0) {
		goto out;
	}
	long size = ftell(f);
	if (size <= 0 || fseek(f, 0, SEEK_SET) != 0) {
		goto out;
	}
	text = malloc((size_t)size + 1);
	if (text == NULL || fread(text, 1, (size_t)size, f) != (size_t)size) {
		goto out;
	}
	text[size] = '\0';
	const char *p = strstr(text, key);
	if (p == NULL) {
		goto out;
	}
	p += sizeof key - 1;
	const char *end = strchr(p, '"');
	if (end == NULL || (end - p) % 2 != 0) {
		goto out;
	}
	size_t n = (size_t)(end - p) / 2;
	buf = malloc(n);
	if (buf == NULL || srup_hex_decode(p, (size_t)(end - p), buf, n, &n) != SRUP_OK) {
		goto out;
	}
	*out = buf;
	*out_len = n;
	buf = NULL;
	rc = 0;
out:
	if (rc != 0) {
		fprintf(stderr, "bench: cannot read a serialized_hex vector from %s\n", path);
	}
	free(buf);
	free(text);
	fclose(f);
	return rc;
}

/* The raw OpenSSL baseline: what any verifier of a SRUP message must do at the least. */
static int raw_verify(EVP_PKEY *pkey, const uint8_t *tbs, size_t tbs_len, const uint8_t *sig,
                      size_t sig_len)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	int ok = -1;

	if (md == NULL) {
		return -1;
	}
	if (EVP_DigestVerifyInit_ex(md, &pctx, "SHA256", NULL, NULL, pkey, NULL) == 1 &&
	    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) == 1) {
		ok = EVP_DigestVerify(md, sig, sig_len, tbs, tbs_len);
	}
	EVP_MD_CTX_free(md);
	return ok;
}

/* The cheapest honest verify OpenSSL offers: a key context prepared once (padding and digest
 * set), a digest fetched once, per message only SHA-256 and the RSA public operation. Shown for
 * information: it is what a verifier that keeps per-key state could reach. */
struct prepared {
	EVP_MD *sha256;
	EVP_PKEY_CTX *pctx;
};

static int prepared_init(struct prepared *pr, EVP_PKEY *pkey)
{
	pr->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	pr->pctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
	if (pr->sha256 == NULL || pr->pctx == NULL || EVP_PKEY_verify_init(pr->pctx) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(pr->pctx, RSA_PKCS1_PADDING) != 1 ||
	    EVP_PKEY_CTX_set_signature_md(pr->pctx, pr->sha256) != 1) {
		return -1;
	}
	return 0;
}

static void prepared_free(struct prepared *pr)
{
	EVP_PKEY_CTX_free(pr->pctx);
	EVP_MD_free(pr->sha256);
}

static int prepared_verify(const struct prepared *pr, const uint8_t *tbs, size_t tbs_len,
                           const uint8_t *sig, size_t sig_len)
{
	unsigned char dgst[EVP_MAX_MD_SIZE];
	unsigned int dgst_len = 0;

	if (EVP_Digest(tbs, tbs_len, dgst, &dgst_len, pr->sha256, NULL) != 1) {
		return -1;
	}
	return EVP_PKEY_verify(pr->pctx, sig, sig_len, dgst, dgst_len);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a;
	double y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(void)
{
	uint8_t *wire = NULL;
	size_t wire_len = 0;
	uint8_t *tbs = NULL;
	size_t tbs_len = 0;
	struct srup_key *key = NULL;
	struct srup_msg m;
	double t_decode = 0.0;
	double t_srup = 0.0;
	double t_raw = 0.0;
	double t_prep = 0.0;
	double ratios[ROUNDS];
	double ratios_prep[ROUNDS];
	struct prepared pr = {NULL, NULL};
	struct srup_verifier *ver = NULL;
	double t_ver = 0.0;
	int status = EXIT_FAILURE;

	if (load_vector(&wire, &wire_len) != 0) {
		goto out;
	}
	if (srup_key_load_file(SRUP_VECTORS_DIR "/keys/server_public.pem", SRUP_KEY_PUBLIC, &key,
	                       NULL) != SRUP_OK) {
		fprintf(stderr, "bench: cannot load the server public key\n");
		goto out;
	}
	if (srup_msg_parse(wire, wire_len, &m, NULL) != SRUP_OK) {
		fprintf(stderr, "bench: the vector does not parse\n");
		goto out;
	}
	tbs = malloc(wire_len);
	if (tbs == NULL || srup_msg_unsigned(&m, tbs, wire_len, &tbs_len) != SRUP_OK) {
		fprintf(stderr, "bench: cannot build the signed bytes\n");
		goto out;
	}
	EVP_PKEY *pkey = srup_key_evp(key);
	/* Both paths must agree that the vector is valid before their speed means anything. */
	if (srup_verifier_new(key, &ver, NULL) != SRUP_OK) {
		fprintf(stderr, "bench: cannot create a libsrup verifier\n");
		goto out;
	}
	if (prepared_init(&pr, pkey) != 0) {
		fprintf(stderr, "bench: cannot prepare an OpenSSL verify context\n");
		goto out;
	}
	if (srup_msg_verify(&m, key, NULL) != SRUP_OK ||
	    raw_verify(pkey, tbs, tbs_len, m.signature.p, m.signature.len) != 1 ||
	    srup_verifier_msg(ver, &m, NULL) != SRUP_OK ||
	    prepared_verify(&pr, tbs, tbs_len, m.signature.p, m.signature.len) != 1) {
		fprintf(stderr, "bench: the vector does not verify\n");
		goto out;
	}

	for (int r = 0; r < ROUNDS; r++) {
		double t0 = now_s();
		for (unsigned i = 0; i < DECODE_PER_ROUND; i++) {
			struct srup_msg d;
			if (srup_msg_parse(wire, wire_len, &d, NULL) != SRUP_OK) {
				fprintf(stderr, "bench: decode failed\n");
				goto out;
			}
			sink += d.sequence_id;
		}
		double t1 = now_s();
		/* Rotate which verifier goes first, so none always runs on a warmer cache. */
		/* libsrup, raw per message, prepared OpenSSL, libsrup prepared verifier */
		double el[4] = {0.0, 0.0, 0.0, 0.0};
		for (int k = 0; k < 4; k++) {
			int which = (k + r) % 4;
			double s0 = now_s();
			for (unsigned i = 0; i < VERIFY_PER_ROUND; i++) {
				int ok;
				if (which == 0) {
					ok = srup_msg_verify(&m, key, NULL) == SRUP_OK;
				} else if (which == 1) {
					ok = raw_verify(pkey, tbs, tbs_len, m.signature.p, m.signature.len) == 1;
				} else if (which == 2) {
					ok = prepared_verify(&pr, tbs, tbs_len, m.signature.p, m.signature.len) == 1;
				} else {
					ok = srup_verifier_msg(ver, &m, NULL) == SRUP_OK;
				}
				if (!ok) {
					fprintf(stderr, "bench: verify failed\n");
					goto out;
				}
			}
			el[which] = now_s() - s0;
		}
		double a = el[0];
		double b = el[1];
		t_decode += t1 - t0;
		t_srup += a;
		t_raw += b;
		t_prep += el[2];
		t_ver += el[3];
		ratios_prep[r] = el[2] / el[3];
		ratios[r] = b / a; /* rate ratio: (n/a) / (n/b) */
	}
	qsort(ratios, ROUNDS, sizeof ratios[0], cmp_double);
	qsort(ratios_prep, ROUNDS, sizeof ratios_prep[0], cmp_double);

	double decode_rate = (double)DECODE_PER_ROUND * ROUNDS / t_decode;
	double srup_rate = (double)VERIFY_PER_ROUND * ROUNDS / t_srup;
	double raw_rate = (double)VERIFY_PER_ROUND * ROUNDS / t_raw;
	double prep_rate = (double)VERIFY_PER_ROUND * ROUNDS / t_prep;
	double ver_rate = (double)VERIFY_PER_ROUND * ROUNDS / t_ver;
	double median_prep = (ratios_prep[ROUNDS / 2 - 1] + ratios_prep[ROUNDS / 2]) / 2.0;
	double ratio = srup_rate / raw_rate;
	double median = (ratios[ROUNDS / 2 - 1] + ratios[ROUNDS / 2]) / 2.0;

	printf("bench_libsrup: %zu-byte %s message, RSA-%u key, %d interleaved rounds, 1 thread\n",
	       wire_len, srup_msg_type_name(m.type), srup_key_bits(key), ROUNDS);
	printf("  decode (srup_msg_parse)      %12.0f msg/s   %6.1f ns/msg\n", decode_rate,
	       1e9 / decode_rate);
	printf("  verify via srup_msg_verify   %12.0f msg/s   %6.2f us/msg\n", srup_rate,
	       1e6 / srup_rate);
	printf("  verify via raw OpenSSL EVP   %12.0f msg/s   %6.2f us/msg\n", raw_rate,
	       1e6 / raw_rate);
	printf("  verify ratio libsrup/raw     %12.3f median of rounds (all rounds pooled %.3f,"
	       " min %.3f, max %.3f)   target >= %.2f: %s\n",
	       median, ratio, ratios[0], ratios[ROUNDS - 1], VERIFY_TARGET,
	       median >= VERIFY_TARGET ? "met" : "NOT met");
	printf("  verify, srup_verifier_msg    %12.0f msg/s   %6.2f us/msg   (per-key prepared"
	       " verifier)\n",
	       ver_rate, 1e6 / ver_rate);
	printf("  verify, prepared OpenSSL ctx %12.0f msg/s   %6.2f us/msg\n", prep_rate,
	       1e6 / prep_rate);
	printf("  verify ratio verifier/prepared %10.3f median of rounds (pooled %.3f)"
	       "   target >= %.2f: %s\n",
	       median_prep, ver_rate / prep_rate, VERIFY_TARGET,
	       median_prep >= VERIFY_TARGET ? "met" : "NOT met");
	printf("  decode vs target             %12.2f x of %.0f msg/s/core: %s\n",
	       decode_rate / DECODE_TARGET, DECODE_TARGET,
	       decode_rate >= DECODE_TARGET ? "met" : "NOT met");
	status = EXIT_SUCCESS;
out:
	prepared_free(&pr);
	srup_verifier_free(ver);
	srup_key_free(key);
	free(tbs);
	free(wire);
	return status;
}
