/* SPDX-License-Identifier: MIT
 * test_fuzz_regress.c - minimal unit tests for plugin defects found by the fuzz targets of
 * tests/fuzz/ (each names the corpus input that found it). The fuzzers keep replaying those
 * inputs; these tests say what was wrong in one module, without the fuzz harness. */
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "srupb.h"
#include "stubs.h"
#include "testutil.h"

/* 1 if p[0, n) is valid UTF-8 (no cut or stray sequences). */
static int utf8_ok(const unsigned char *p, size_t n)
{
	size_t i = 0;
	while (i < n) {
		size_t len = p[i] < 0x80 ? 1
		                         : (p[i] >= 0xc2 && p[i] <= 0xdf
		                                    ? 2
		                                    : (p[i] >= 0xe0 && p[i] <= 0xef
		                                               ? 3
		                                               : (p[i] >= 0xf0 && p[i] <= 0xf4 ? 4 : 0)));
		if (len == 0 || n - i < len) {
			return 0;
		}
		for (size_t k = 1; k < len; k++) {
			if ((p[i + k] & 0xc0) != 0x80) {
				return 0;
			}
		}
		i += len;
	}
	return 1;
}

/* corpus/pipeline/audit_long_utf8_topic: a topic over SRUPB_LOG_TRUNC characters whose last
 * kept character is a multi-byte one was cut inside that character, so the audit line was not
 * valid UTF-8 (a JSON reader refuses the whole log). */
START_TEST(test_audit_cut_keeps_utf8_characters_whole)
{
	/* "SRUP/" + ASCII up to character 127, then three-byte characters (U+4E2D) */
	static const char han[] = "\xe4\xb8\xad";
	char topic[512];
	char line[2048];
	struct srupb_event ev;
	size_t n;

	for (size_t lead = SRUPB_LOG_TRUNC - 3; lead <= SRUPB_LOG_TRUNC; lead++) {
		memset(topic, 'a', lead);
		topic[lead] = '\0';
		for (int k = 0; k < 8; k++) {
			strcat(topic, han);
		}
		memset(&ev, 0, sizeof ev);
		ev.verdict = SRUPB_V_DROP;
		ev.reason = SRUPB_R_NOT_ALLOWED;
		ev.topic = topic;
		ev.type = -1;
		n = srupb_audit_format(&ev, 0, line, sizeof line);
		ck_assert_uint_gt(n, 0);
		ck_assert_msg(utf8_ok((const unsigned char *)line, n),
		              "audit line cut inside a character (%zu ASCII first): %s", lead, line);
		/* still cut: the topic ends in "..." */
		ck_assert_ptr_nonnull(strstr(line, "...\",\"type\""));
	}
}
END_TEST

Suite *plugin_fuzz_regress_suite(void)
{
	Suite *s = suite_create("plugin_fuzz_regress");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_audit_cut_keeps_utf8_characters_whole);
	suite_add_tcase(s, tc);
	return s;
}
