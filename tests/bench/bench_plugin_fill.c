/* SPDX-License-Identifier: MIT
 * bench_plugin_fill.c - fills a plugin key store with many device records (one public key
 * shared by all, ids base .. base+count-1) for bench_plugin.py's start-up/memory figures.
 * Uses the store library directly: a million `srup keys add` runs would take hours. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"

#ifdef SRUP_BENCH_HAVE_STORE
#include "srupb_store.h"
#endif

static void usage(void)
{
	fprintf(stderr, "usage: bench_plugin_fill --store DIR --key PUB.pem --id-base HEX "
	                "--count N\n(a helper of bench_plugin; see tests/bench/bench_plugin.py)\n");
	exit(3);
}

#ifdef SRUP_BENCH_HAVE_STORE
static char *read_text(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	size_t n;

	if (f == NULL) {
		return NULL;
	}
	buf = malloc(65536);
	if (buf == NULL) {
		fclose(f);
		return NULL;
	}
	n = fread(buf, 1, 65535, f);
	fclose(f);
	buf[n] = '\0';
	*len = n;
	return buf;
}
#endif

int main(int argc, char **argv)
{
#ifdef SRUP_BENCH_HAVE_STORE
	const char *dir = NULL;
	const char *key = NULL;
	uint64_t base = 0;
	uint64_t count = 0;
	char err[256];
	struct srupb_store *st = NULL;
	size_t pem_len = 0;

	for (int i = 1; i < argc; i++) {
		if (i + 1 >= argc) {
			usage();
		}
		const char *a = argv[i];
		const char *v = argv[++i];
		int bad = 0;
		if (strcmp(a, "--store") == 0) {
			dir = v;
		} else if (strcmp(a, "--key") == 0) {
			key = v;
		} else if (strcmp(a, "--id-base") == 0) {
			bad = parse_u64(v, 16, &base);
		} else if (strcmp(a, "--count") == 0) {
			bad = parse_u64(v, 10, &count);
		} else {
			usage();
		}
		if (bad) {
			usage();
		}
	}
	if (dir == NULL || key == NULL) {
		usage();
	}
	char *pem = read_text(key, &pem_len);
	if (pem == NULL) {
		fprintf(stderr, "bench_plugin_fill: cannot read %s\n", key);
		return 3;
	}
	if (srupb_store_open(dir, false, SRUPB_SYNC_OS, &st, err, sizeof err) != SRUP_OK) {
		fprintf(stderr, "bench_plugin_fill: %s\n", err);
		free(pem);
		return 3;
	}
	double t0 = now_s();
	for (uint64_t i = 0; i < count; i++) {
		if (srupb_store_key_put(st, base + i, SRUPB_ROLE_DEVICE, pem, pem_len) != SRUP_OK) {
			fprintf(stderr, "bench_plugin_fill: put %llu failed: %s\n", (unsigned long long)i,
			        srupb_store_strerror(st));
			srupb_store_close(st);
			free(pem);
			return 3;
		}
	}
	srupb_store_flush(st);
	double dt = now_s() - t0;
	size_t n = 0;
	(void)srupb_store_key_count(st, &n);
	printf("{\"added\":%llu,\"keys\":%zu,\"seconds\":%.2f,\"put_per_s\":%.0f}\n",
	       (unsigned long long)count, n, dt, dt > 0 ? (double)count / dt : 0.0);
	srupb_store_close(st);
	free(pem);
	return 0;
#else
	(void)argc;
	(void)argv;
	usage();
	return 3;
#endif
}
