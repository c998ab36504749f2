/* SPDX-License-Identifier: MIT
 * control_cmd.c - the admin command parser of $CONTROL/srup/v1: JSON bytes to a command, with
 * jansson. No broker calls and no state, so it is unit-tested and fuzzed on its own. */
#include <string.h>

#include <jansson.h>

#include "srupb.h"

const char *srupb_command_name(enum srupb_cmd c)
{
	switch (c) {
		case SRUPB_CMD_RELOAD:
			return "reload";
		case SRUPB_CMD_REVOKE:
			return "revoke";
		case SRUPB_CMD_NONE:
		default:
			return NULL;
	}
}

/* The id text must be what srup_id_format writes for it: lowercase hex, no "0x", no padding. */
static bool canonical_id(const char *s, size_t len, uint64_t *out)
{
	char back[SRUP_ID_TEXT_MAX];
	if (srup_id_parse(s, len, out) != SRUP_OK ||
	    srup_id_format(*out, back, sizeof back) != SRUP_OK) {
		return false;
	}
	return strlen(back) == len && memcmp(back, s, len) == 0;
}

static const char *check_object(json_t *root, struct srupb_command *out)
{
	json_t *command;
	json_t *id;
	const char *key;
	json_t *value;
	const char *name;

	if (!json_is_object(root)) {
		return "the command must be a JSON object";
	}
	json_object_foreach(root, key, value)
	{
		(void)value;
		if (strcmp(key, "command") != 0 && strcmp(key, "id") != 0) {
			return "unknown key (allowed: command, id)";
		}
	}
	command = json_object_get(root, "command");
	if (command == NULL) {
		return "missing \"command\"";
	}
	if (!json_is_string(command)) {
		return "\"command\" must be a string";
	}
	name = json_string_value(command);
	if (json_string_length(command) == 6 && strcmp(name, "reload") == 0) {
		out->cmd = SRUPB_CMD_RELOAD;
	} else if (json_string_length(command) == 6 && strcmp(name, "revoke") == 0) {
		out->cmd = SRUPB_CMD_REVOKE;
	} else {
		return "unknown command (reload, revoke)";
	}
	id = json_object_get(root, "id");
	if (out->cmd == SRUPB_CMD_RELOAD) {
		return id == NULL ? NULL : "reload takes no \"id\"";
	}
	if (id == NULL) {
		return "revoke needs \"id\"";
	}
	if (!json_is_string(id) ||
	    !canonical_id(json_string_value(id), json_string_length(id), &out->id)) {
		out->id = 0;
		return "\"id\" must be a canonical id text (lowercase hex, no 0x, no leading zeros)";
	}
	out->has_id = true;
	return NULL;
}

const char *srupb_control_parse(const void *bytes, size_t len, struct srupb_command *out)
{
	json_error_t jerr;
	json_t *root;
	const char *err;

	memset(out, 0, sizeof *out);
	if (bytes == NULL || len == 0) {
		return "empty command";
	}
	if (len > SRUPB_CONTROL_MAX) {
		return "command longer than 4096 bytes";
	}
	/* Strict: one JSON text, no trailing bytes, valid UTF-8, no NUL in strings, no key twice. */
	root = json_loadb(bytes, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		return "not a JSON text (or a key given twice)";
	}
	err = check_object(root, out);
	json_decref(root);
	if (err != NULL) {
		out->has_id = false;
		out->id = 0;
	}
	return err;
}
