/* SPDX-License-Identifier: MIT
 * bench_plugin_sign.c - pre-signs SRUP messages for bench_plugin.py (signing is slow, so it is
 * done before any timing) and measures libsrup's parse+verify rate over them.
 * Output: records of u32be length + message bytes. Not a benchmark on its own.
 * --verify-rate also times two plain OpenSSL 3 ways of verifying the same messages, to show
 * where per-message cost goes: EVP_DigestVerifyInit_ex per message (as libsrup does) versus a
 * pre-fetched SHA-256 and an EVP_PKEY_CTX prepared once per key (as `openssl speed` does). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/rsa.h>

#include <srup/srup.h>

#include "bench_util.h"

static void usage(void)
{
	fprintf(stderr, "usage: bench_plugin_sign --key PRIV.pem --sender HEX --type ACTION|DATA\n"
	                "       --seq-start N --count N --out FILE [--senders M] [--verify-rate]\n"
	                "Message i has sequence id seq-start + i and sender id sender + (i %% M).\n"
	                "(a helper of bench_plugin; see tests/bench/bench_plugin.py)\n");
	exit(3);
}

int main(int argc, char **argv)
{
	const char *key_path = NULL;
	const char *out_path = NULL;
	const char *type = "ACTION";
	uint64_t sender = 0;
	uint64_t seq0 = 1;
	uint64_t count = 0;
	uint64_t senders = 1;
	int verify_rate = 0;
	struct srup_key *key = NULL;
	static const char token[] = "0b6d1c1e-7f3a-4e52-9c1d-3a5e7b9d2f40";
	static const uint8_t data[4] = {1, 2, 3, 4};

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--verify-rate") == 0) {
			verify_rate = 1;
			continue;
		}
		if (i + 1 >= argc) {
			usage();
		}
		const char *v = argv[++i];
		int bad = 0;
		if (strcmp(a, "--key") == 0) {
			key_path = v;
		} else if (strcmp(a, "--out") == 0) {
			out_path = v;
		} else if (strcmp(a, "--type") == 0) {
			type = v;
		} else if (strcmp(a, "--sender") == 0) {
			bad = parse_u64(v, 16, &sender);
		} else if (strcmp(a, "--seq-start") == 0) {
			bad = parse_u64(v, 10, &seq0);
		} else if (strcmp(a, "--count") == 0) {
			bad = parse_u64(v, 10, &count);
		} else if (strcmp(a, "--senders") == 0) {
			bad = parse_u64(v, 10, &senders);
		} else {
			usage();
		}
		if (bad) {
			usage();
		}
	}
	if (key_path == NULL || out_path == NULL || senders == 0) {
		usage();
	}
	int t = srup_msg_type_from_name(type);
	if (t != SRUP_MSG_ACTION && t != SRUP_MSG_DATA) {
		usage();
	}
	if (srup_key_load_file(key_path, SRUP_KEY_PRIVATE, &key, NULL) != SRUP_OK) {
		fprintf(stderr, "bench_plugin_sign: cannot load %s\n", key_path);
		return 3;
	}
	FILE *f = fopen(out_path, "wb");
	if (f == NULL) {
		fprintf(stderr, "bench_plugin_sign: cannot write %s\n", out_path);
		srup_key_free(key);
		return 3;
	}
	uint8_t buf[2048];
	uint8_t *all = NULL;
	size_t *lens = NULL;
	if (verify_rate) {
		all = malloc((size_t)(count < 2000 ? count : 2000) * sizeof buf + 1);
		lens = calloc((size_t)(count < 2000 ? count : 2000) + 1, sizeof *lens);
		if (all == NULL || lens == NULL) {
			fprintf(stderr, "bench_plugin_sign: out of memory\n");
			return 3;
		}
	}
	double t0 = now_s();
	for (uint64_t i = 0; i < count; i++) {
		struct srup_msg m;
		size_t len = 0;
		memset(&m, 0, sizeof m);
		m.version = SRUP_VERSION;
		m.type = (uint8_t)t;
		m.sequence_id = seq0 + i;
		m.sender_id = sender + (i % senders);
		m.token.p = (const uint8_t *)token;
		m.token.len = sizeof token - 1;
		if (t == SRUP_MSG_ACTION) {
			m.action_id = (uint8_t)i;
		} else {
			m.data_id.p = (const uint8_t *)"bench";
			m.data_id.len = 5;
			m.data.p = data;
			m.data.len = sizeof data;
		}
		if (srup_msg_sign_encode(&m, key, buf, sizeof buf, &len, NULL) != SRUP_OK) {
			fprintf(stderr, "bench_plugin_sign: signing failed\n");
			return 3;
		}
		uint8_t hdr[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
		                  (uint8_t)len};
		if (fwrite(hdr, 1, 4, f) != 4 || fwrite(buf, 1, len, f) != len) {
			fprintf(stderr, "bench_plugin_sign: write failed\n");
			return 3;
		}
		if (verify_rate && i < 2000) {
			memcpy(all + i * sizeof buf, buf, len);
			lens[i] = len;
		}
	}
	double t_sign = now_s() - t0;
	if (fclose(f) != 0) {
		fprintf(stderr, "bench_plugin_sign: write failed\n");
		return 3;
	}
	printf("{\"signed\":%llu,\"sign_per_s\":%.1f", (unsigned long long)count,
	       t_sign > 0 ? (double)count / t_sign : 0.0);
	if (verify_rate && count > 0) {
		size_t n = count < 2000 ? (size_t)count : 2000;
		struct srup_key *pub = NULL;
		char *pem = NULL;
		size_t pem_len = 0;
		if (srup_key_public_pem(key, &pem, &pem_len) != SRUP_OK ||
		    srup_key_load_pem(pem, pem_len, SRUP_KEY_PUBLIC, &pub, NULL) != SRUP_OK) {
			fprintf(stderr, "bench_plugin_sign: cannot derive the public key\n");
			return 3;
		}
		free(pem);
		EVP_PKEY *pk = srup_key_evp(pub);
		size_t done = 0;
		size_t bad = 0;
		double dt;

		/* libsrup: parse + srup_msg_verify */
		t0 = now_s();
		while (now_s() - t0 < 0.7) {
			for (size_t i = 0; i < n; i++) {
				struct srup_msg m;
				if (srup_msg_parse(all + i * sizeof buf, lens[i], &m, NULL) != SRUP_OK ||
				    srup_msg_verify(&m, pub, NULL) != SRUP_OK) {
					bad++;
				}
				done++;
			}
		}
		dt = now_s() - t0;
		printf(",\"parse_verify_per_s\":%.1f,\"verify_failures\":%zu", (double)done / dt, bad);

		/* OpenSSL: EVP_DigestVerifyInit_ex per message */
		done = 0;
		bad = 0;
		t0 = now_s();
		while (now_s() - t0 < 0.7) {
			for (size_t i = 0; i < n; i++) {
				struct srup_msg m;
				EVP_PKEY_CTX *pctx = NULL;
				(void)srup_msg_parse(all + i * sizeof buf, lens[i], &m, NULL);
				EVP_MD_CTX *md = EVP_MD_CTX_new();
				if (md == NULL ||
				    EVP_DigestVerifyInit_ex(md, &pctx, "SHA256", NULL, NULL, pk, NULL) != 1 ||
				    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1 ||
				    EVP_DigestVerifyUpdate(md, m.raw, m.sig_off) != 1 ||
				    EVP_DigestVerifyUpdate(md, m.raw + m.sig_end, m.raw_len - m.sig_end) != 1 ||
				    EVP_DigestVerifyFinal(md, m.signature.p, m.signature.len) != 1) {
					bad++;
				}
				EVP_MD_CTX_free(md);
				done++;
			}
		}
		dt = now_s() - t0;
		printf(",\"evp_digestverify_init_per_msg_per_s\":%.1f,\"evp1_failures\":%zu",
		       (double)done / dt, bad);

		/* OpenSSL: SHA-256 with a pre-fetched EVP_MD, EVP_PKEY_verify on a prepared ctx */
		EVP_MD *sha = EVP_MD_fetch(NULL, "SHA256", NULL);
		EVP_PKEY_CTX *vctx = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL);
		EVP_MD_CTX *hctx = EVP_MD_CTX_new();
		if (sha == NULL || vctx == NULL || hctx == NULL || EVP_PKEY_verify_init(vctx) != 1 ||
		    EVP_PKEY_CTX_set_rsa_padding(vctx, RSA_PKCS1_PADDING) != 1 ||
		    EVP_PKEY_CTX_set_signature_md(vctx, sha) != 1) {
			fprintf(stderr, "bench_plugin_sign: OpenSSL setup failed\n");
			return 3;
		}
		done = 0;
		bad = 0;
		t0 = now_s();
		while (now_s() - t0 < 0.7) {
			for (size_t i = 0; i < n; i++) {
				struct srup_msg m;
				unsigned char dg[32];
				unsigned int dl = 0;
				(void)srup_msg_parse(all + i * sizeof buf, lens[i], &m, NULL);
				if (EVP_DigestInit_ex2(hctx, sha, NULL) != 1 ||
				    EVP_DigestUpdate(hctx, m.raw, m.sig_off) != 1 ||
				    EVP_DigestUpdate(hctx, m.raw + m.sig_end, m.raw_len - m.sig_end) != 1 ||
				    EVP_DigestFinal_ex(hctx, dg, &dl) != 1 ||
				    EVP_PKEY_verify(vctx, m.signature.p, m.signature.len, dg, dl) != 1) {
					bad++;
				}
				done++;
			}
		}
		dt = now_s() - t0;
		printf(",\"evp_pkey_verify_prepared_per_s\":%.1f,\"evp2_failures\":%zu", (double)done / dt,
		       bad);
		EVP_MD_CTX_free(hctx);
		EVP_PKEY_CTX_free(vctx);
		EVP_MD_free(sha);
		srup_key_free(pub);
	}
	printf("}\n");
	free(all);
	free(lens);
	srup_key_free(key);
	return 0;
}
