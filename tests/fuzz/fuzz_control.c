/* SPDX-License-Identifier: MIT
 * fuzz_control.c - libFuzzer target for the admin command parser (srupb_control_parse).
 * Properties: the same bytes give the same answer; a success is a known command whose id (for
 * revoke) is canonical (JSON escapes may spell it), and re-parses from its canonical text to the
 * same command; a failure leaves no id behind and has a NUL-terminated static text; nothing
 * over SRUPB_CONTROL_MAX bytes succeeds. Any other outcome aborts. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "srupb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what)
{
	fprintf(stderr, "fuzz_control: property violated: %s\n", what);
	abort();
}

static bool contains(const uint8_t *data, size_t size, const char *s)
{
	size_t n = strlen(s);
	for (size_t i = 0; n <= size && i <= size - n; i++) {
		if (memcmp(data + i, s, n) == 0) {
			return true;
		}
	}
	return false;
}

static void check_ok(const uint8_t *data, size_t size, const struct srupb_command *c)
{
	char canon[96];
	char id[SRUP_ID_TEXT_MAX];
	struct srupb_command again;

	if (size > SRUPB_CONTROL_MAX) {
		fail("accepted a command over the size cap");
	}
	if (c->cmd == SRUPB_CMD_RELOAD) {
		if (c->has_id || c->id != 0) {
			fail("reload with an id");
		}
		snprintf(canon, sizeof canon, "{\"command\":\"reload\"}");
	} else if (c->cmd == SRUPB_CMD_REVOKE) {
		if (!c->has_id || srup_id_format(c->id, id, sizeof id) != SRUP_OK) {
			fail("revoke without an id");
		}
		snprintf(canon, sizeof canon, "{\"command\":\"revoke\",\"id\":\"%s\"}", id);
	} else {
		fail("success without a known command");
	}
	/* JSON escapes may spell the command and id; at least the key must be there */
	if (!contains(data, size, "\"") || size < strlen("{\"command\":\"reload\"}")) {
		fail("a command shorter than the shortest command");
	}
	if (srupb_control_parse(canon, strlen(canon), &again) != NULL || again.cmd != c->cmd ||
	    again.has_id != c->has_id || again.id != c->id) {
		fail("the canonical text of a command does not parse back to it");
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct srupb_command c;
	struct srupb_command c2;
	const char *err;
	const char *err2;

	/* garbage in the output must not leak through */
	memset(&c, 0xA5, sizeof c);
	err = srupb_control_parse(data, size, &c);
	if (err == NULL) {
		check_ok(data, size, &c);
	} else {
		if (memchr(err, '\0', 200) == NULL || err[0] == '\0') {
			fail("error text empty or not terminated");
		}
		if (c.has_id || c.id != 0) {
			fail("a failed parse left an id behind");
		}
		if (c.cmd != SRUPB_CMD_NONE && c.cmd != SRUPB_CMD_RELOAD && c.cmd != SRUPB_CMD_REVOKE) {
			fail("a failed parse left a bad command");
		}
	}
	err2 = srupb_control_parse(data, size, &c2);
	if ((err == NULL) != (err2 == NULL) || (err != NULL && strcmp(err, err2) != 0) ||
	    c.cmd != c2.cmd || c.has_id != c2.has_id || c.id != c2.id) {
		fail("parsing the same bytes twice gave different results");
	}
	return 0;
}
