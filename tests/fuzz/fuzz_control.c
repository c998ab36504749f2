/* SPDX-License-Identifier: MIT
 * fuzz_control.c - libFuzzer target for the admin command parser (srupb_control_parse).
 * Properties: the same bytes give the same answer; a success is a known command with its
 * required parameters, each in range, and re-parses from its canonical text (written with
 * jansson) to the same command; a failure leaves nothing but the command's name behind and has
 * a NUL-terminated static text; nothing over SRUPB_CONTROL_MAX bytes succeeds. Any other outcome
 * aborts. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

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

static void set_id(json_t *o, const char *key, uint64_t v)
{
	char id[SRUP_ID_TEXT_MAX];
	if (srup_id_format(v, id, sizeof id) != SRUP_OK) {
		fail("an id that does not format");
	}
	json_object_set_new(o, key, json_string(id));
}

static bool same(const struct srupb_command *a, const struct srupb_command *b)
{
	return a->cmd == b->cmd && a->has_id == b->has_id && a->id == b->id &&
	       a->has_server == b->has_server && a->server == b->server &&
	       a->has_after == b->has_after && a->after == b->after &&
	       a->after_server == b->after_server && a->limit == b->limit && a->role == b->role &&
	       a->force == b->force && a->overlap == b->overlap && a->pem_len == b->pem_len &&
	       memcmp(a->pem, b->pem, a->pem_len) == 0;
}

static void check_ok(const uint8_t *data, size_t size, const struct srupb_command *c)
{
	static struct srupb_command again;
	const char *name = srupb_command_name(c->cmd);
	json_t *o;
	char *canon;

	if (size > SRUPB_CONTROL_MAX) {
		fail("accepted a command over the size cap");
	}
	if (name == NULL) {
		fail("success without a known command");
	}
	if (c->limit < 1 || c->limit > SRUPB_PAGE_MAX || c->overlap > SRUPB_OVERLAP_MAX ||
	    c->pem_len >= sizeof c->pem || (c->pem_len > 0 && strlen(c->pem) != c->pem_len)) {
		fail("a parameter out of its range");
	}
	if ((c->cmd == SRUPB_CMD_RELOAD || c->cmd == SRUPB_CMD_GET_STATS) &&
	    (c->has_id || c->has_server || c->has_after || c->pem_len > 0)) {
		fail("a command without parameters has some");
	}
	if ((c->cmd == SRUPB_CMD_REVOKE || c->cmd == SRUPB_CMD_GET_KEY || c->cmd == SRUPB_CMD_ADD_KEY ||
	     c->cmd == SRUPB_CMD_ROTATE_KEY || c->cmd == SRUPB_CMD_REMOVE_MEMBER ||
	     c->cmd == SRUPB_CMD_GET_MARKS) &&
	    !c->has_id) {
		fail("a command that needs an id has none");
	}
	if (!contains(data, size, "\"") || size < strlen("{\"command\":\"reload\"}")) {
		fail("a command shorter than the shortest command");
	}
	/* the canonical text of the command parses back to the same command */
	o = json_object();
	json_object_set_new(o, "command", json_string(name));
	if (c->has_id) {
		set_id(o, "id", c->id);
	}
	if (c->has_server) {
		set_id(o, "server", c->server);
	}
	if (c->has_after) {
		set_id(o, "after", c->after);
		if (c->cmd == SRUPB_CMD_LIST_MEMBERS) {
			set_id(o, "after_server", c->after_server);
		}
	}
	if (c->limit != SRUPB_PAGE_DEFAULT) {
		json_object_set_new(o, "limit", json_integer((json_int_t)c->limit));
	}
	if (c->cmd == SRUPB_CMD_ADD_KEY) {
		json_object_set_new(o, "role", json_string(srupb_role_name(c->role)));
		json_object_set_new(o, "force", json_boolean(c->force));
	}
	if (c->pem_len > 0) {
		json_object_set_new(o, "pem", json_stringn(c->pem, c->pem_len));
	}
	if (c->cmd == SRUPB_CMD_ROTATE_KEY) {
		json_object_set_new(o, "overlap", json_integer((json_int_t)c->overlap));
	}
	canon = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (canon == NULL) {
		fail("cannot write the canonical text");
	}
	if (srupb_control_parse(canon, strlen(canon), &again) != NULL || !same(c, &again)) {
		fail("the canonical text of a command does not parse back to it");
	}
	free(canon);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct srupb_command c;
	static struct srupb_command c2;
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
		if (c.has_id || c.id != 0 || c.has_server || c.has_after || c.pem_len != 0 ||
		    c.pem[0] != '\0') {
			fail("a failed parse left a parameter behind");
		}
		if (c.cmd != SRUPB_CMD_NONE && srupb_command_name(c.cmd) == NULL) {
			fail("a failed parse left a bad command");
		}
	}
	err2 = srupb_control_parse(data, size, &c2);
	if ((err == NULL) != (err2 == NULL) || (err != NULL && strcmp(err, err2) != 0) ||
	    !same(&c, &c2)) {
		fail("parsing the same bytes twice gave different results");
	}
	return 0;
}
