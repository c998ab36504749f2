/* SPDX-License-Identifier: MIT
 * fuzz_policy.c - libFuzzer target for the plugin's policy parser (srupb_policy_parse) and topic
 * classification (srupb_policy_classify) under whatever policy parsed.
 * Input: policy text, then optionally a NUL byte and NUL-separated topics to classify. The whole
 * input is parsed too (so NUL bytes inside policy text are reached). Properties: a parse either
 * succeeds with a policy inside the documented bounds or fails with no policy and a
 * "name:line: problem" message; the same text gives the same policy; a classified topic is
 * exactly the canonical form of what it was classified as (no aliases of an id). It does not
 * load files or start the plugin (fuzz_pipeline does). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "srupb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NAME       "fuzz.policy"
#define TOPICS_MAX 32

static void fail(const char *what, const char *topic)
{
	fprintf(stderr, "fuzz_policy: property violated: %s%s%s\n", what, topic ? ": " : "",
	        topic ? topic : "");
	abort();
}

/* The parse result must be a policy within bounds or an error with a located message. */
static struct srupb_policy *parse_checked(const char *text, size_t len)
{
	struct srupb_policy *p = (struct srupb_policy *)(uintptr_t)1; /* must be overwritten */
	char err[256];
	enum srup_err rc;

	memset(err, 0x5a, sizeof err);
	rc = srupb_policy_parse(NAME, text, len, &p, err, sizeof err);
	if (rc != SRUP_OK) {
		if (p != NULL) {
			fail("a failed parse returned a policy", NULL);
		}
		if (rc != SRUP_ERR_SYNTAX && rc != SRUP_ERR_NOMEM) {
			fail("parse returned an error it does not document", NULL);
		}
		if (memchr(err, '\0', sizeof err) == NULL) {
			fail("error message is not NUL-terminated", NULL);
		}
		if (strncmp(err, NAME ":", sizeof NAME) != 0) {
			fail("error message does not start with the policy name and line", err);
		}
		return NULL;
	}
	if (p == NULL) {
		fail("a successful parse returned no policy", NULL);
	}
	if (p->prefix_len == 0 || p->prefix_len >= sizeof p->prefix ||
	    strlen(p->prefix) != p->prefix_len || strpbrk(p->prefix, "/+#$") != NULL) {
		fail("prefix out of bounds", p->prefix);
	}
	if (p->max_payload < 64 || p->max_payload > SRUP_MSG_MAX || p->key_cache < 1 ||
	    p->key_cache > 10000000 || p->seen_index > 100000000 || p->metrics_interval < 1 ||
	    p->metrics_interval > 3600 || p->audit_burst < 1 || p->audit_rate < 1.0 ||
	    p->n_admins > SRUPB_ADMINS_MAX) {
		fail("a number out of its documented range", NULL);
	}
	for (unsigned role = 0; role < SRUPB_ROLE__COUNT; role++) {
		if (p->seen_window[role] > p->seen_index) {
			fail("a role's seen_window is larger than the seen index", NULL);
		}
	}
	if (p->n_join_commanders > SRUPB_JOIN_COMMANDERS_MAX || p->max_key_bits < 2048 ||
	    p->max_key_bits > 16384) {
		fail("join_command or max_key_bits out of its documented range", NULL);
	}
	if (p->identity != SRUPB_ID_USERNAME && p->identity != SRUPB_ID_CLIENT_ID &&
	    p->identity != SRUPB_ID_CERTIFICATE) {
		fail("unknown identity source", NULL);
	}
	if (p->durability != SRUPB_SYNC_FSYNC && p->durability != SRUPB_SYNC_META &&
	    p->durability != SRUPB_SYNC_OS && p->durability != SRUPB_SYNC_MAP) {
		fail("unknown durability", NULL);
	}
	bool any = false;
	for (unsigned rk = 0; rk < SRUPB_RULE__COUNT; rk++) {
		for (unsigned role = 0; role < SRUPB_ROLE__COUNT; role++) {
			for (unsigned t = 0; t < 256; t++) {
				bool a = p->allow[rk][role][t];
				if (a && (role == SRUPB_ROLE_NONE || !srup_msg_type_is_valid(t))) {
					fail("a rule allows the role none or a type that is not on the wire", NULL);
				}
				if (srupb_policy_allows(p, (enum srupb_rule_kind)rk, role, t) != a) {
					fail("srupb_policy_allows disagrees with the table", NULL);
				}
				any = any || a;
			}
		}
	}
	if (!any) {
		fail("a policy without any allow rule was accepted", NULL);
	}
	if (srupb_policy_allows(p, SRUPB_RULE__COUNT, SRUPB_ROLE_SERVER, SRUP_MSG_DATA) ||
	    srupb_policy_allows(p, SRUPB_RULE_OWN, SRUPB_ROLE__COUNT, SRUP_MSG_DATA) ||
	    srupb_policy_allows(p, SRUPB_RULE_OWN, SRUPB_ROLE_DEVICE, 256)) {
		fail("srupb_policy_allows accepted an argument out of range", NULL);
	}
	for (size_t i = 0; i < p->n_admins; i++) {
		if (!srupb_policy_is_admin(p, p->admins[i])) {
			fail("an admin line is not an admin", NULL);
		}
	}
	return p;
}

/* The topic t classified as kind with ids a, b must be exactly the canonical spelling of it. */
static void check_classified(const struct srupb_policy *p, const char *topic)
{
	struct srupb_topic t;
	char a[SRUP_ID_TEXT_MAX];
	char b[SRUP_ID_TEXT_MAX];
	char want[256];
	bool under = strncmp(topic, p->prefix, p->prefix_len) == 0 &&
	             (topic[p->prefix_len] == '\0' || topic[p->prefix_len] == '/');

	memset(&t, 0xa5, sizeof t);
	srupb_policy_classify(p, topic, &t);
	if (srup_id_format(t.a, a, sizeof a) != SRUP_OK ||
	    srup_id_format(t.b, b, sizeof b) != SRUP_OK) {
		fail("cannot format a classified id", topic);
	}
	switch (t.kind) {
		case SRUPB_T_OTHER:
			if (t.a != 0 || t.b != 0) {
				fail("OTHER with ids", topic);
			}
			if (under && strcmp(topic, "$CONTROL/srup/v1") != 0) {
				fail("a topic under the prefix is classified OTHER", topic);
			}
			if (strcmp(topic, "$CONTROL/srup/v1") == 0 ||
			    strcmp(topic, "$CONTROL/srup/v1/response") == 0 ||
			    strncmp(topic, "$CONTROL/srup/v1/response/", 26) == 0) {
				fail("the control topic is classified OTHER", topic);
			}
			break;
		case SRUPB_T_DEVICE:
			snprintf(want, sizeof want, "%s/%s", p->prefix, a);
			if (strcmp(want, topic) != 0 || t.b != 0) {
				fail("DEVICE topic is not <prefix>/<canonical id>", topic);
			}
			break;
		case SRUPB_T_JOIN:
			snprintf(want, sizeof want, "%s/servers/%s/%s", p->prefix, a, b);
			if (strcmp(want, topic) != 0) {
				fail("JOIN topic is not <prefix>/servers/<canonical>/<canonical>", topic);
			}
			break;
		case SRUPB_T_PROTECTED:
			if (!under || t.a != 0 || t.b != 0) {
				fail("PROTECTED topic not under the prefix, or with ids", topic);
			}
			break;
		case SRUPB_T_CONTROL:
			if (strcmp(topic, "$CONTROL/srup/v1") != 0) {
				fail("CONTROL is not exactly $CONTROL/srup/v1", topic);
			}
			break;
		case SRUPB_T_CONTROL_RESP:
			/* the response topic and any topic below it (admins choose response topics there) */
			if (strcmp(topic, "$CONTROL/srup/v1/response") != 0 &&
			    strncmp(topic, "$CONTROL/srup/v1/response/", 26) != 0) {
				fail("CONTROL_RESP is not $CONTROL/srup/v1/response or below it", topic);
			}
			break;
		default:
			fail("unknown topic kind", topic);
	}
}

/* Classify the fuzzed topics and the shapes every policy must get right. */
static void classify_all(const struct srupb_policy *p, const uint8_t *rest, size_t rest_len)
{
	/* Suffixes appended to this policy's prefix, then whole topics. */
	static const char *const under_prefix[] = {
	        "",
	        "/",
	        "/5f5f5f5f5f5f5f5f",
	        "/0",
	        "/00ab",
	        "/AB",
	        "/ffffffffffffffff",
	        "/1ffffffffffffffff",
	        "/servers/b9d077e223834cf6/d2",
	        "/servers/b9d077e223834cf6/d2/",
	        "/servers//d2",
	        "/servers/b9d077e223834cf6",
	        "/x/y",
	        "/+",
	        "/#",
	        "X/d2",
	};
	static const char *const whole[] = {
	        "$CONTROL/srup/v1",
	        "$CONTROL/srup/v1/response",
	        "$CONTROL/srup/v1/response/x",
	        "$CONTROL/srup/v1/responsex",
	        "$CONTROL/srup/v1/",
	        "$CONTROL/srup/v",
	        "other/topic",
	        "",
	};
	char topic[512];
	size_t off = 0;
	int n = 0;

	for (size_t i = 0; i < sizeof under_prefix / sizeof under_prefix[0]; i++) {
		snprintf(topic, sizeof topic, "%s%s", p->prefix, under_prefix[i]);
		check_classified(p, topic);
	}
	for (size_t i = 0; i < sizeof whole / sizeof whole[0]; i++) {
		check_classified(p, whole[i]);
	}
	while (off < rest_len && n < TOPICS_MAX) {
		const uint8_t *nul = memchr(rest + off, '\0', rest_len - off);
		size_t tl = nul != NULL ? (size_t)(nul - (rest + off)) : rest_len - off;
		if (tl < sizeof topic) {
			memcpy(topic, rest + off, tl);
			topic[tl] = '\0';
			check_classified(p, topic);
			/* and the same topic under this policy's prefix */
			if (p->prefix_len + 1 + tl < sizeof topic) {
				snprintf(topic, sizeof topic, "%s/%.*s", p->prefix, (int)tl,
				         (const char *)(rest + off));
				check_classified(p, topic);
			}
		}
		off += tl + 1;
		n++;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	const uint8_t *nul = size > 0 ? memchr(data, '\0', size) : NULL; /* data may be NULL */
	size_t text_len = nul != NULL ? (size_t)(nul - data) : size;
	struct srupb_policy *p;
	struct srupb_policy *again;
	struct srupb_policy *whole;

	/* The whole input as policy text, NUL bytes included: parse must refuse those cleanly. */
	whole = parse_checked(text, size);
	if (whole != NULL && nul != NULL) {
		fail("policy text with a NUL byte was accepted", NULL);
	}
	free(whole);

	p = parse_checked(text, text_len);
	if (p == NULL) {
		return 0;
	}
	/* Same text, same policy (the struct is zeroed before it is filled, padding included). */
	again = parse_checked(text, text_len);
	if (again == NULL || memcmp(p, again, sizeof *p) != 0) {
		fail("parsing the same text twice gave different policies", NULL);
	}
	free(again);
	if (nul != NULL) {
		classify_all(p, nul + 1, size - text_len - 1);
	} else {
		classify_all(p, NULL, 0);
	}
	free(p);
	return 0;
}
