/* SPDX-License-Identifier: MIT
 * control_cmd.c - the admin command parser of $CONTROL/srup/v1: JSON bytes to a command, with
 * jansson. No broker calls and no state, so it is unit-tested and fuzzed on its own.
 *
 * A command is one JSON object: "command" names it, and each command has a fixed set of
 * parameters (the table below), each required or optional, each of one type; any other key,
 * a key given twice, or a value of another type is refused. */
#include <string.h>

#include <jansson.h>

#include "srupb.h"

/* Parameters, as bits: which a command takes and which it needs. */
enum {
	P_ID = 1u << 0,      /* "id": a key / sender / device id (canonical id text) */
	P_SERVER = 1u << 1,  /* "server": a server id */
	P_ROLE = 1u << 2,    /* "role": server, device or observer */
	P_PEM = 1u << 3,     /* "pem": a PEM public key (text) */
	P_FORCE = 1u << 4,   /* "force": true/false */
	P_OVERLAP = 1u << 5, /* "overlap": seconds, integer */
	P_AFTER = 1u << 6,   /* "after": paging cursor (id text) */
	P_AFTER_S = 1u << 7, /* "after_server": second half of a membership cursor */
	P_LIMIT = 1u << 8,   /* "limit": entries per page */
};

struct cmd_spec {
	enum srupb_cmd cmd;
	const char *name;
	unsigned takes;
	unsigned needs;
};

static const struct cmd_spec SPECS[] = {
        {SRUPB_CMD_RELOAD, "reload", 0, 0},
        {SRUPB_CMD_REVOKE, "revoke", P_ID, P_ID},
        {SRUPB_CMD_REVOKE, "revokeKey", P_ID, P_ID},
        {SRUPB_CMD_LIST_KEYS, "listKeys", P_AFTER | P_LIMIT, 0},
        {SRUPB_CMD_GET_KEY, "getKey", P_ID, P_ID},
        {SRUPB_CMD_ADD_KEY, "addKey", P_ID | P_ROLE | P_PEM | P_FORCE, P_ID | P_ROLE | P_PEM},
        {SRUPB_CMD_ROTATE_KEY, "rotateKey", P_ID | P_PEM | P_OVERLAP, P_ID | P_PEM | P_OVERLAP},
        {SRUPB_CMD_LIST_MEMBERS, "listMembers", P_ID | P_AFTER | P_AFTER_S | P_LIMIT, 0},
        {SRUPB_CMD_REMOVE_MEMBER, "removeMember", P_ID | P_SERVER, P_ID | P_SERVER},
        {SRUPB_CMD_GET_MARKS, "getMarks", P_ID, P_ID},
        {SRUPB_CMD_LIST_PENDING, "listPendingJoins", P_LIMIT, 0},
        {SRUPB_CMD_GET_STATS, "getStats", 0, 0},
};

#define N_SPECS (sizeof SPECS / sizeof SPECS[0])

static const struct {
	unsigned bit;
	const char *key;
} PARAMS[] = {
        {P_ID, "id"},       {P_SERVER, "server"},        {P_ROLE, "role"},
        {P_PEM, "pem"},     {P_FORCE, "force"},          {P_OVERLAP, "overlap"},
        {P_AFTER, "after"}, {P_AFTER_S, "after_server"}, {P_LIMIT, "limit"},
};

#define N_PARAMS (sizeof PARAMS / sizeof PARAMS[0])

const char *srupb_command_name(enum srupb_cmd c)
{
	/* the first name of a command is its name in audit lines and answers */
	for (size_t i = 0; i < N_SPECS; i++) {
		if (SPECS[i].cmd == c) {
			return SPECS[i].name;
		}
	}
	return NULL;
}

/* The id text must be what srup_id_format writes for it: lowercase hex, no "0x", no padding. */
static bool canonical_id(const json_t *v, uint64_t *out)
{
	char back[SRUP_ID_TEXT_MAX];
	const char *s;
	size_t len;

	if (!json_is_string(v)) {
		return false;
	}
	s = json_string_value(v);
	len = json_string_length(v);
	if (srup_id_parse(s, len, out) != SRUP_OK ||
	    srup_id_format(*out, back, sizeof back) != SRUP_OK) {
		return false;
	}
	return strlen(back) == len && memcmp(back, s, len) == 0;
}

static const struct cmd_spec *find_spec(const json_t *command)
{
	const char *name = json_string_value(command);
	size_t len = json_string_length(command);
	for (size_t i = 0; i < N_SPECS; i++) {
		if (strlen(SPECS[i].name) == len && memcmp(SPECS[i].name, name, len) == 0) {
			return &SPECS[i];
		}
	}
	return NULL;
}

static unsigned param_bit(const char *key)
{
	for (size_t i = 0; i < N_PARAMS; i++) {
		if (strcmp(PARAMS[i].key, key) == 0) {
			return PARAMS[i].bit;
		}
	}
	return 0;
}

/* One parameter's value into out; NULL or the error. */
static const char *take_param(unsigned bit, json_t *v, struct srupb_command *out)
{
	json_int_t n;
	switch (bit) {
		case P_ID:
			if (!canonical_id(v, &out->id)) {
				out->id = 0;
				return "\"id\" must be a canonical id text (lowercase hex, no 0x, no leading "
				       "zeros)";
			}
			out->has_id = true;
			return NULL;
		case P_SERVER:
			if (!canonical_id(v, &out->server)) {
				out->server = 0;
				return "\"server\" must be a canonical id text";
			}
			out->has_server = true;
			return NULL;
		case P_AFTER:
			if (!canonical_id(v, &out->after)) {
				out->after = 0;
				return "\"after\" must be a canonical id text";
			}
			out->has_after = true;
			return NULL;
		case P_AFTER_S:
			if (!canonical_id(v, &out->after_server)) {
				out->after_server = 0;
				return "\"after_server\" must be a canonical id text";
			}
			return NULL;
		case P_ROLE:
			if (!json_is_string(v) || json_string_length(v) > 16) {
				return "\"role\" must be server, device or observer";
			}
			out->role = srupb_role_from_name(json_string_value(v));
			if (out->role == SRUPB_ROLE_NONE) {
				return "\"role\" must be server, device or observer";
			}
			return NULL;
		case P_PEM:
			if (!json_is_string(v) || json_string_length(v) == 0 ||
			    json_string_length(v) >= sizeof out->pem) {
				return "\"pem\" must be a PEM public key text";
			}
			out->pem_len = json_string_length(v);
			memcpy(out->pem, json_string_value(v), out->pem_len);
			out->pem[out->pem_len] = '\0';
			return NULL;
		case P_FORCE:
			if (!json_is_boolean(v)) {
				return "\"force\" must be true or false";
			}
			out->force = json_is_true(v);
			return NULL;
		case P_OVERLAP:
			n = json_is_integer(v) ? json_integer_value(v) : -1;
			if (n < 0 || n > SRUPB_OVERLAP_MAX) {
				return "\"overlap\" must be whole seconds from 0 to 2592000 (30 days)";
			}
			out->overlap = (uint64_t)n;
			return NULL;
		case P_LIMIT:
			n = json_is_integer(v) ? json_integer_value(v) : 0;
			if (n < 1 || n > SRUPB_PAGE_MAX) {
				return "\"limit\" must be an integer from 1 to 1000";
			}
			out->limit = (size_t)n;
			return NULL;
		default:
			return "unknown parameter";
	}
}

static const char *check_object(json_t *root, struct srupb_command *out)
{
	const struct cmd_spec *spec;
	json_t *command;
	const char *key;
	json_t *value;
	unsigned seen = 0;

	if (!json_is_object(root)) {
		return "the command must be a JSON object";
	}
	command = json_object_get(root, "command");
	if (command == NULL) {
		return "missing \"command\"";
	}
	if (!json_is_string(command)) {
		return "\"command\" must be a string";
	}
	spec = find_spec(command);
	if (spec == NULL) {
		return "unknown command (reload, listKeys, getKey, addKey, revokeKey, rotateKey, "
		       "listMembers, removeMember, getMarks, listPendingJoins, getStats)";
	}
	out->cmd = spec->cmd;
	json_object_foreach(root, key, value)
	{
		unsigned bit;
		const char *err;
		if (strcmp(key, "command") == 0) {
			continue;
		}
		bit = param_bit(key);
		if (bit == 0 || (spec->takes & bit) == 0) {
			return "a parameter this command does not take";
		}
		err = take_param(bit, value, out);
		if (err != NULL) {
			return err;
		}
		seen |= bit;
	}
	if ((seen & spec->needs) != spec->needs) {
		return "a required parameter is missing (see the command's description)";
	}
	if ((seen & P_AFTER_S) != 0 && (seen & P_AFTER) == 0) {
		return "\"after_server\" goes with \"after\"";
	}
	return NULL;
}

const char *srupb_control_parse(const void *bytes, size_t len, struct srupb_command *out)
{
	json_error_t jerr;
	json_t *root;
	const char *err;
	enum srupb_cmd cmd;

	memset(out, 0, sizeof *out);
	out->limit = SRUPB_PAGE_DEFAULT;
	if (bytes == NULL || len == 0) {
		return "empty command";
	}
	if (len > SRUPB_CONTROL_MAX) {
		return "command longer than 8192 bytes";
	}
	/* Strict: one JSON text, no trailing bytes, valid UTF-8, no NUL in strings, no key twice. */
	root = json_loadb(bytes, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		return "not a JSON text (or a key given twice)";
	}
	err = check_object(root, out);
	json_decref(root);
	if (err != NULL) {
		/* nothing but the command's name survives a refusal (for the audit line) */
		cmd = out->cmd;
		memset(out, 0, sizeof *out);
		out->cmd = cmd;
	}
	return err;
}
