/* SPDX-License-Identifier: MIT
 * bench_util.h - the small helpers every benchmark program shares: a monotonic clock and a
 * strict unsigned-integer parser. Header-only; benchmarks only. */
#ifndef SRUP_BENCH_UTIL_H
#define SRUP_BENCH_UTIL_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

/* Seconds on the monotonic clock. */
static inline double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The whole of s as an unsigned integer in base; 0, or -1 if s is not one (or out of range). */
static inline int parse_u64(const char *s, int base, uint64_t *out)
{
	char *end = NULL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, base);
	if (errno != 0 || end == s || *end != '\0') {
		return -1;
	}
	*out = (uint64_t)v;
	return 0;
}

#endif
