/* SPDX-License-Identifier: MIT
 * cmd_keys.c - `srup keys add|revoke|list|show`: the broker's key store (plugin_opt_store).
 * Works on the same LMDB environment as a running broker; the broker sees a change on the
 * sender's next message (the record generation changes) and drops its key cache on reload. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <srup/srup.h>

#include "cmds.h"
#include "srupb_store.h"
#include "util.h"

#define KEYS_RANDOM_MAX 10000000u
#define KEYS_BATCH      100000u

static void keys_help(void)
{
	printf("usage: srup keys add    --store DIR --id ID --role server|device|observer --key "
	       "PUB.pem\n"
	       "       srup keys add    --store DIR --random N --role ROLE --key PUB.pem\n"
	       "       srup keys revoke --store DIR --id ID\n"
	       "       srup keys list   --store DIR\n"
	       "       srup keys show   --store DIR --id ID\n"
	       "\n"
	       "Manage the key store of the SRUP broker plugin (the LMDB directory given to the\n"
	       "broker as plugin_opt_store). A key is an RSA public key (2048..8192 bits, PEM\n"
	       "SubjectPublicKeyInfo or PKCS#1); it is stored re-encoded as SubjectPublicKeyInfo.\n"
	       "add replaces an existing key of the same id and makes it active again; revoke keeps\n"
	       "the key but refuses its messages (and drops its memberships).\n"
	       "--random N registers N new random ids with the same key and prints them (for tests\n"
	       "and benchmarks). list prints one line per key: id, role, status, added (UTC).\n"
	       "\n"
	       "Exit codes: 0 ok, 3 usage, unknown id, I/O or store errors.\n");
}

static int open_store(const char *cmd, const char *dir, bool readonly, struct srupb_store **st)
{
	char err[256];
	if (dir == NULL) {
		tool_err(cmd, "--store DIR is required");
		return SRUP_EXIT_USAGE;
	}
	if (srupb_store_open(dir, readonly, SRUPB_SYNC_FSYNC, st, err, sizeof err) != SRUP_OK) {
		tool_err(cmd, "%s", err);
		return SRUP_EXIT_USAGE;
	}
	return SRUP_EXIT_OK;
}

static int parse_id(const char *cmd, const char *text, uint64_t *id)
{
	if (text == NULL) {
		tool_err(cmd, "--id ID is required");
		return SRUP_EXIT_USAGE;
	}
	if (srup_id_parse(text, strlen(text), id) != SRUP_OK) {
		tool_err(cmd, "--id '%s' is not a 64-bit id in hex", text);
		return SRUP_EXIT_USAGE;
	}
	return SRUP_EXIT_OK;
}

static void fmt_time(uint64_t t, char *out, size_t cap)
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (gmtime_r(&tt, &tm) == NULL || strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
		snprintf(out, cap, "-");
	}
}

static int keys_add(int argc, char **argv)
{
	const char *store = NULL;
	const char *id_arg = NULL;
	const char *role_arg = NULL;
	const char *key_arg = NULL;
	const char *random_arg = NULL;
	const struct tool_opt opts[] = {
	        {"store", &store, NULL}, {"id", &id_arg, NULL},         {"role", &role_arg, NULL},
	        {"key", &key_arg, NULL}, {"random", &random_arg, NULL},
	};
	const char *pos[1];
	size_t n_pos = 0;
	struct srup_key *key = NULL;
	struct srupb_store *st = NULL;
	struct srup_diag diag;
	char *pem = NULL;
	size_t pem_len = 0;
	uint64_t id = 0;
	uint64_t nrandom = 0;
	enum srupb_role role;
	int rc;

	enum tool_parse pr = tool_parse_args(argc, argv, opts, 5, pos, 0, &n_pos);
	if (pr == TOOL_PARSE_HELP) {
		keys_help();
		return SRUP_EXIT_OK;
	}
	if (pr != TOOL_PARSE_OK) {
		return SRUP_EXIT_USAGE;
	}
	if (random_arg != NULL) {
		if (id_arg != NULL) {
			tool_err("keys add", "give --id or --random, not both");
			return SRUP_EXIT_USAGE;
		}
		if (tool_parse_uint(random_arg, strlen(random_arg), KEYS_RANDOM_MAX, &nrandom) != 0 ||
		    nrandom == 0) {
			tool_err("keys add", "--random must be a number from 1 to %u", KEYS_RANDOM_MAX);
			return SRUP_EXIT_USAGE;
		}
	} else {
		rc = parse_id("keys add", id_arg, &id);
		if (rc != SRUP_EXIT_OK) {
			return rc;
		}
	}
	if (role_arg == NULL) {
		tool_err("keys add", "--role server|device|observer is required");
		return SRUP_EXIT_USAGE;
	}
	role = srupb_role_from_name(role_arg);
	if (role == SRUPB_ROLE_NONE) {
		tool_err("keys add", "--role must be server, device or observer, not '%s'", role_arg);
		return SRUP_EXIT_USAGE;
	}
	if (key_arg == NULL) {
		tool_err("keys add", "--key PUB.pem is required");
		return SRUP_EXIT_USAGE;
	}
	memset(&diag, 0, sizeof diag);
	if (srup_key_load_file(key_arg, SRUP_KEY_PUBLIC, &key, &diag) != SRUP_OK) {
		tool_err("keys add", "%s: not a usable RSA public key%s%s", key_arg,
		         diag.detail[0] != '\0' ? ": " : "", diag.detail);
		return SRUP_EXIT_USAGE;
	}
	if (srup_key_public_pem(key, &pem, &pem_len) != SRUP_OK) {
		srup_key_free(key);
		tool_err("keys add", "cannot export the public key");
		return SRUP_EXIT_USAGE;
	}
	srup_key_free(key);
	rc = open_store("keys add", store, false, &st);
	if (rc != SRUP_EXIT_OK) {
		free(pem);
		return rc;
	}
	if (nrandom == 0) {
		if (srupb_store_key_put(st, id, role, pem, pem_len) != SRUP_OK) {
			tool_err("keys add", "%s", srupb_store_strerror(st));
			rc = SRUP_EXIT_USAGE;
		}
	} else {
		uint64_t *ids = malloc(KEYS_BATCH * sizeof *ids);
		if (ids == NULL) {
			rc = SRUP_EXIT_USAGE;
		}
		for (uint64_t done = 0; rc == SRUP_EXIT_OK && done < nrandom;) {
			size_t n = (size_t)(nrandom - done < KEYS_BATCH ? nrandom - done : KEYS_BATCH);
			for (size_t i = 0; i < n; i++) {
				char text[SRUP_ID_TEXT_MAX];
				ids[i] = srup_id_new();
				if (srup_id_format(ids[i], text, sizeof text) == SRUP_OK) {
					printf("%s\n", text);
				}
			}
			if (srupb_store_key_put_many(st, ids, n, role, pem, pem_len) != SRUP_OK) {
				tool_err("keys add", "%s", srupb_store_strerror(st));
				rc = SRUP_EXIT_USAGE;
			}
			done += n;
		}
		free(ids);
		if (fflush(stdout) != 0) {
			rc = SRUP_EXIT_USAGE;
		}
	}
	srupb_store_close(st);
	free(pem);
	return rc;
}

/* The prologue of the subcommands that take --store DIR --id ID: parse both, open the store.
 * Returns SRUP_EXIT_OK with *st open, or the exit code to return (with *done set after --help). */
static int id_command_open(const char *cmd, int argc, char **argv, bool readonly,
                           struct srupb_store **st, uint64_t *id, const char **id_arg, bool *done)
{
	const char *store = NULL;
	const struct tool_opt opts[] = {{"store", &store, NULL}, {"id", id_arg, NULL}};
	const char *pos[1];
	size_t n_pos = 0;
	int rc;

	*st = NULL;
	*done = false;
	enum tool_parse pr = tool_parse_args(argc, argv, opts, 2, pos, 0, &n_pos);
	if (pr == TOOL_PARSE_HELP) {
		keys_help();
		*done = true;
		return SRUP_EXIT_OK;
	}
	if (pr != TOOL_PARSE_OK) {
		return SRUP_EXIT_USAGE;
	}
	rc = parse_id(cmd, *id_arg, id);
	if (rc == SRUP_EXIT_OK) {
		rc = open_store(cmd, store, readonly, st);
	}
	return rc;
}

static int keys_revoke(int argc, char **argv)
{
	const char *id_arg = NULL;
	struct srupb_store *st = NULL;
	uint64_t id = 0;
	bool found = false;
	bool done = false;
	int rc = id_command_open("keys revoke", argc, argv, false, &st, &id, &id_arg, &done);

	if (rc != SRUP_EXIT_OK || done) {
		return rc;
	}
	if (srupb_store_key_revoke(st, id, &found) != SRUP_OK) {
		tool_err("keys revoke", "%s", srupb_store_strerror(st));
		rc = SRUP_EXIT_USAGE;
	} else if (!found) {
		tool_err("keys revoke", "no key with id %s", id_arg);
		rc = SRUP_EXIT_USAGE;
	}
	srupb_store_close(st);
	return rc;
}

static int list_one(const struct srupb_keyrec *rec, void *arg)
{
	char text[SRUP_ID_TEXT_MAX];
	char when[32];
	(void)arg;
	if (srup_id_format(rec->id, text, sizeof text) != SRUP_OK) {
		return 0;
	}
	fmt_time(rec->created, when, sizeof when);
	return printf("%s\t%s\t%s\t%s\n", text, srupb_role_name(rec->role),
	              rec->status == SRUPB_KEY_ACTIVE ? "active" : "revoked", when) < 0;
}

static int keys_list(int argc, char **argv)
{
	const char *store = NULL;
	const struct tool_opt opts[] = {{"store", &store, NULL}};
	const char *pos[1];
	size_t n_pos = 0;
	struct srupb_store *st = NULL;
	int rc;

	enum tool_parse pr = tool_parse_args(argc, argv, opts, 1, pos, 0, &n_pos);
	if (pr == TOOL_PARSE_HELP) {
		keys_help();
		return SRUP_EXIT_OK;
	}
	if (pr != TOOL_PARSE_OK) {
		return SRUP_EXIT_USAGE;
	}
	rc = open_store("keys list", store, true, &st);
	if (rc != SRUP_EXIT_OK) {
		return rc;
	}
	if (srupb_store_key_foreach(st, list_one, NULL) != SRUP_OK) {
		tool_err("keys list", "%s", srupb_store_strerror(st));
		rc = SRUP_EXIT_USAGE;
	}
	srupb_store_close(st);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		tool_err("keys list", "cannot write to standard output");
		rc = SRUP_EXIT_USAGE;
	}
	return rc;
}

static int keys_show(int argc, char **argv)
{
	const char *id_arg = NULL;
	struct srupb_store *st = NULL;
	struct srupb_keyrec rec;
	struct srup_key *key = NULL;
	char *pem = NULL;
	uint64_t id = 0;
	bool found = false;
	bool done = false;
	int rc = id_command_open("keys show", argc, argv, true, &st, &id, &id_arg, &done);

	if (rc != SRUP_EXIT_OK || done) {
		return rc;
	}
	if (srupb_store_key_get(st, id, &rec, &pem, &found) != SRUP_OK) {
		tool_err("keys show", "%s", srupb_store_strerror(st));
		rc = SRUP_EXIT_USAGE;
	} else if (!found) {
		tool_err("keys show", "no key with id %s", id_arg);
		rc = SRUP_EXIT_USAGE;
	} else {
		char text[SRUP_ID_TEXT_MAX];
		char when[32];
		uint8_t fp[32];
		char fph[65];
		fmt_time(rec.created, when, sizeof when);
		if (srup_id_format(rec.id, text, sizeof text) != SRUP_OK) {
			text[0] = '\0';
		}
		printf("id: %s\nrole: %s\nstatus: %s\nadded: %s\n", text, srupb_role_name(rec.role),
		       rec.status == SRUPB_KEY_ACTIVE ? "active" : "revoked", when);
		if (srup_key_load_pem(pem, rec.pem_len, SRUP_KEY_PUBLIC, &key, NULL) == SRUP_OK) {
			printf("bits: %u\n", srup_key_bits(key));
			if (srup_key_fingerprint(key, fp) == SRUP_OK &&
			    srup_hex_encode(fp, sizeof fp, fph, sizeof fph) == SRUP_OK) {
				printf("fingerprint: sha256:%s\n", fph);
			}
			srup_key_free(key);
		}
		printf("%s", pem);
		if (rec.pem_len > 0 && pem[rec.pem_len - 1] != '\n') {
			printf("\n");
		}
		if (fflush(stdout) != 0 || ferror(stdout)) {
			rc = SRUP_EXIT_USAGE;
		}
	}
	free(pem);
	srupb_store_close(st);
	return rc;
}

int srup_cmd_keys(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		keys_help();
		return argc < 2 ? SRUP_EXIT_USAGE : SRUP_EXIT_OK;
	}
	if (strcmp(argv[1], "add") == 0) {
		return keys_add(argc - 1, argv + 1);
	}
	if (strcmp(argv[1], "revoke") == 0) {
		return keys_revoke(argc - 1, argv + 1);
	}
	if (strcmp(argv[1], "list") == 0) {
		return keys_list(argc - 1, argv + 1);
	}
	if (strcmp(argv[1], "show") == 0) {
		return keys_show(argc - 1, argv + 1);
	}
	tool_err("keys", "unknown subcommand '%s' (add, revoke, list, show)", argv[1]);
	return SRUP_EXIT_USAGE;
}
