/* SPDX-License-Identifier: MIT
 * replay_main.c - runs a fuzz target's LLVMFuzzerTestOneInput over every file of the corpus
 * directories (or single files) given as arguments, without libFuzzer. It does not mutate or
 * explore: it turns a committed corpus, crashers included, into a plain regression test. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional in a target; weak so that targets without it still link. */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

/* Read the whole file into an exactly sized heap buffer, so that AddressSanitizer catches a
 * read of even one byte past the input. Returns 0 and an owned *out (NULL when empty). */
static int read_file(const char *path, uint8_t **out, size_t *out_len)
{
	FILE *f = NULL;
	uint8_t *buf = NULL;
	struct stat st;
	int rc = -1;

	*out = NULL;
	*out_len = 0;
	f = fopen(path, "rb");
	if (f == NULL) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		goto out;
	}
	if (fstat(fileno(f), &st) != 0 || st.st_size < 0) {
		fprintf(stderr, "replay: %s: cannot stat\n", path);
		goto out;
	}
	size_t len = (size_t)st.st_size;
	if (len > 0) {
		buf = malloc(len);
		if (buf == NULL) {
			fprintf(stderr, "replay: %s: out of memory\n", path);
			goto out;
		}
		if (fread(buf, 1, len, f) != len) {
			fprintf(stderr, "replay: %s: short read\n", path);
			goto out;
		}
	}
	*out = buf;
	*out_len = len;
	buf = NULL;
	rc = 0;
out:
	free(buf);
	if (f != NULL) {
		fclose(f);
	}
	return rc;
}

static int run_file(const char *path)
{
	uint8_t *buf = NULL;
	size_t len = 0;

	if (read_file(path, &buf, &len) != 0) {
		return -1;
	}
	/* The return value of the target is reserved by libFuzzer and carries no verdict: a failed
	 * property aborts the process, which fails the test. */
	(void)LLVMFuzzerTestOneInput(buf, len);
	free(buf);
	return 0;
}

static int cmp_names(const void *a, const void *b)
{
	const char *const *x = a;
	const char *const *y = b;
	return strcmp(*x, *y);
}

/* Run every regular file of dir, in name order so that runs are reproducible. Adds the number
 * of files run to *count. */
static int run_dir(const char *dir, unsigned long *count)
{
	DIR *d = opendir(dir);
	char **names = NULL;
	size_t n = 0;
	size_t cap = 0;
	int rc = 0;

	if (d == NULL) {
		fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	for (;;) {
		struct dirent *de = readdir(d);
		if (de == NULL) {
			break;
		}
		if (de->d_name[0] == '.') {
			continue;
		}
		if (n == cap) {
			size_t ncap = cap == 0 ? 64 : cap * 2;
			char **tmp = realloc(names, ncap * sizeof(*names));
			if (tmp == NULL) {
				rc = -1;
				break;
			}
			names = tmp;
			cap = ncap;
		}
		size_t plen = strlen(dir) + 1 + strlen(de->d_name) + 1;
		names[n] = malloc(plen);
		if (names[n] == NULL) {
			rc = -1;
			break;
		}
		snprintf(names[n], plen, "%s/%s", dir, de->d_name);
		n++;
	}
	closedir(d);
	if (n > 0) {
		qsort(names, n, sizeof(*names), cmp_names);
	}
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct stat st;
		if (stat(names[i], &st) != 0) {
			fprintf(stderr, "replay: %s: %s\n", names[i], strerror(errno));
			rc = -1;
			break;
		}
		if (!S_ISREG(st.st_mode)) {
			continue;
		}
		if (run_file(names[i]) != 0) {
			rc = -1;
			break;
		}
		(*count)++;
	}
	for (size_t i = 0; i < n; i++) {
		free(names[i]);
	}
	free(names);
	return rc;
}

int main(int argc, char **argv)
{
	unsigned long count = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR|FILE...\n", argv[0]);
		return 2;
	}
	if (LLVMFuzzerInitialize != NULL) {
		LLVMFuzzerInitialize(&argc, &argv);
	}
	for (int i = 1; i < argc; i++) {
		struct stat st;
		int rc;
		if (stat(argv[i], &st) != 0) {
			fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
			return 1;
		}
		if (S_ISDIR(st.st_mode)) {
			rc = run_dir(argv[i], &count);
		} else {
			rc = run_file(argv[i]);
			if (rc == 0) {
				count++;
			}
		}
		if (rc != 0) {
			return 1;
		}
	}
	/* An empty corpus would make this test pass without testing anything. */
	if (count == 0) {
		fprintf(stderr, "replay: no input files found\n");
		return 1;
	}
	printf("replay: %lu inputs ran without a failure\n", count);
	return 0;
}
