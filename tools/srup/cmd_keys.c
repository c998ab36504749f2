/* SPDX-License-Identifier: MIT
 * cmd_keys.c - `srup keys add|revoke|list|show`: the broker's key store (plugin_opt_store).
 * Works on the same LMDB environment as a running broker; the broker sees a change on the
 * sender's next message (the record generation changes) and drops its key cache on reload.
 * Every change (and every add or revoke refused because of what the store holds) is written to
 * the audit log as one JSON line. */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <srup/srup.h>

#include "cmds.h"
#include "srupb_store.h"
#include "util.h"

#define KEYS_RANDOM_MAX 10000000u
#define KEYS_BATCH      100000u
/* `srup keys add` registers keys of at most this many bits; libsrup loads up to
 * SRUP_KEY_BITS_MAX, but each bit more costs the broker on every message it verifies. */
#define KEYS_ADD_BITS_MAX 4096u

static void keys_help(void)
{
	printf("usage: srup keys add    --store DIR --id ID --role server|device|observer --key "
	       "PUB.pem\n"
	       "                        [--force] [--audit FILE]\n"
	       "       srup keys add    --store DIR --random N --role ROLE --key PUB.pem [--audit "
	       "FILE]\n"
	       "       srup keys revoke --store DIR --id ID [--audit FILE]\n"
	       "       srup keys list   --store DIR\n"
	       "       srup keys show   --store DIR --id ID\n"
	       "\n"
	       "Manage the key store of the SRUP broker plugin (the LMDB directory given to the\n"
	       "broker as plugin_opt_store). A key is an RSA public key (2048..4096 bits, public\n"
	       "exponent 65537, PEM SubjectPublicKeyInfo or PKCS#1); it is stored re-encoded as\n"
	       "SubjectPublicKeyInfo. add refuses an id that already has a key unless --force is\n"
	       "given (then the key and role are replaced); a revoked id is never made active again\n"
	       "by add, even with --force. revoke keeps the key but refuses its messages (and drops\n"
	       "its memberships).\n"
	       "Every add and revoke is appended to the audit log (default DIR/audit.jsonl, the\n"
	       "broker's default; --audit FILE to change it) as one JSON line with verdict \"admin\".\n"
	       "--random N registers N new random ids with the same key and prints them (for tests\n"
	       "and benchmarks). list prints one line per key: id, role, status, added (UTC).\n"
	       "\n"
	       "Exit codes: 0 ok, 3 usage, id taken or revoked, unknown id, I/O or store errors.\n");
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

/* The audit log of the key changes: the broker's format (one JSON object per line, appended
 * with one write(2) on an O_APPEND descriptor, so lines of concurrent writers never mix). */
struct keys_audit {
	int fd;
	char path[4096];
};

/* Open the audit log (path, or <store>/audit.jsonl) before any change, so that a change is
 * never made that cannot be recorded. */
static int audit_open(const char *cmd, const char *path, const char *store, struct keys_audit *a)
{
	a->fd = -1;
	if (path != NULL) {
		snprintf(a->path, sizeof a->path, "%s", path);
	} else if ((size_t)snprintf(a->path, sizeof a->path, "%s/audit.jsonl", store) >=
	           sizeof a->path) {
		tool_err(cmd, "store path too long for the audit log; nothing changed");
		return SRUP_EXIT_USAGE;
	}
	a->fd = open(a->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (a->fd < 0) {
		tool_err(cmd, "cannot open the audit log %s: %s; nothing changed", a->path,
		         strerror(errno));
		return SRUP_EXIT_USAGE;
	}
	if (path == NULL && geteuid() == 0) {
		/* root working on, e.g., the mosquitto user's store keeps the store's owner. */
		struct stat ds;

		if (stat(store, &ds) == 0 && ds.st_uid != 0) {
			(void)fchown(a->fd, ds.st_uid, ds.st_gid);
		}
	}
	return SRUP_EXIT_OK;
}

static void audit_close(struct keys_audit *a)
{
	if (a->fd >= 0) {
		close(a->fd);
		a->fd = -1;
	}
}

/* A JSON string of s (NULL: null). jansson takes only UTF-8, and s may come from the command
 * line: a byte that is not part of valid UTF-8 is written as '?'. NULL if out of memory. */
static json_t *audit_text(const char *s)
{
	json_t *v;
	char *copy;
	if (s == NULL) {
		return json_null();
	}
	v = json_string(s);
	if (v != NULL) {
		return v;
	}
	copy = strdup(s);
	if (copy == NULL) {
		return NULL;
	}
	for (char *c = copy; *c != '\0'; c++) {
		if ((unsigned char)*c >= 0x80) {
			*c = '?';
		}
	}
	v = json_string(copy);
	free(copy);
	return v;
}

/* Write one line: {"time","verdict":"admin","reason":null,"source":"srup keys","command",
 * "target","role","result","detail","uid"}, built and escaped by jansson. Returns SRUP_EXIT_OK
 * or, if the line could not be written whole, SRUP_EXIT_USAGE after saying so. */
static int audit_line(const char *cmd, struct keys_audit *a, const char *command,
                      const char *target, const char *role, const char *result, const char *detail)
{
	const char *const keys[] = {"time",   "verdict", "reason", "source", "command",
	                            "target", "role",    "result", "detail"};
	char when[96];
	struct timespec ts;
	struct tm tm;
	json_t *o = json_object();
	char *text = NULL;
	int rc = SRUP_EXIT_USAGE;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (gmtime_r(&ts.tv_sec, &tm) == NULL) {
		memset(&tm, 0, sizeof tm);
	}
	snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
	         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
	const char *const values[] = {when,   "admin", NULL,   "srup keys", command,
	                              target, role,    result, detail};
	for (size_t i = 0; o != NULL && i < sizeof keys / sizeof keys[0]; i++) {
		if (json_object_set_new(o, keys[i], audit_text(values[i])) != 0) {
			json_decref(o);
			o = NULL;
		}
	}
	if (o == NULL || json_object_set_new(o, "uid", json_integer((json_int_t)getuid())) != 0 ||
	    (text = json_dumps(o, JSON_COMPACT)) == NULL) {
		tool_err(cmd, "out of memory; audit line not written to %s", a->path);
		goto out;
	}
	/* one write of the whole line, newline included, onto the O_APPEND descriptor */
	size_t len = strlen(text);
	text[len] = '\n'; /* in place of the NUL: json_dumps allocated len + 1 */
	ssize_t w = write(a->fd, text, len + 1);
	if (w < 0 || (size_t)w != len + 1) {
		tool_err(cmd, "cannot write the audit log %s: %s (the change above WAS made)", a->path,
		         w < 0 ? strerror(errno) : "short write");
		goto out;
	}
	rc = SRUP_EXIT_OK;
out:
	free(text);
	json_decref(o);
	return rc;
}

static int keys_add(int argc, char **argv)
{
	const char *store = NULL;
	const char *id_arg = NULL;
	const char *role_arg = NULL;
	const char *key_arg = NULL;
	const char *random_arg = NULL;
	const char *audit_arg = NULL;
	int force = 0;
	const struct tool_opt opts[] = {
	        {"store", &store, NULL}, {"id", &id_arg, NULL},         {"role", &role_arg, NULL},
	        {"key", &key_arg, NULL}, {"random", &random_arg, NULL}, {"audit", &audit_arg, NULL},
	        {"force", NULL, &force},
	};
	struct keys_audit audit = {-1, ""};
	char fpr_text[80] = "";
	unsigned bits = 0;
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

	enum tool_parse pr =
	        tool_parse_args(argc, argv, opts, sizeof opts / sizeof opts[0], pos, 0, &n_pos);
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
		if (force) {
			tool_err("keys add", "--force applies to --id only (--random ids are new)");
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
	bits = srup_key_bits(key);
	if (bits > KEYS_ADD_BITS_MAX) {
		srup_key_free(key);
		tool_err("keys add", "%s: RSA key has %u bits; srup keys add accepts %u..%u", key_arg, bits,
		         SRUP_KEY_BITS_MIN, KEYS_ADD_BITS_MAX);
		return SRUP_EXIT_USAGE;
	}
	{
		uint8_t fp[32];
		char fph[65];
		if (srup_key_fingerprint(key, fp) == SRUP_OK &&
		    srup_hex_encode(fp, sizeof fp, fph, sizeof fph) == SRUP_OK) {
			snprintf(fpr_text, sizeof fpr_text, "sha256:%s", fph);
		}
	}
	if (srup_key_public_pem(key, &pem, &pem_len) != SRUP_OK) {
		srup_key_free(key);
		tool_err("keys add", "cannot export the public key");
		return SRUP_EXIT_USAGE;
	}
	srup_key_free(key);
	rc = open_store("keys add", store, false, &st);
	if (rc == SRUP_EXIT_OK) {
		rc = audit_open("keys add", audit_arg, store, &audit);
	}
	if (rc != SRUP_EXIT_OK) {
		srupb_store_close(st);
		free(pem);
		return rc;
	}
	if (nrandom == 0) {
		enum srupb_add_result res = SRUPB_ADD_NEW;
		struct srupb_keyrec old;
		char id_text[SRUP_ID_TEXT_MAX];
		char detail[256];
		memset(&old, 0, sizeof old);
		if (srup_id_format(id, id_text, sizeof id_text) != SRUP_OK) {
			snprintf(id_text, sizeof id_text, "%016" PRIx64, id);
		}
		if (srupb_store_key_add(st, id, role, pem, pem_len, force != 0, &res, &old) != SRUP_OK) {
			tool_err("keys add", "%s", srupb_store_strerror(st));
			rc = SRUP_EXIT_USAGE;
		} else if (res == SRUPB_ADD_EXISTS) {
			tool_err("keys add",
			         "id %s already has an active key (role %s); nothing changed: give --force to "
			         "replace its key and role",
			         id_text, srupb_role_name(old.role));
			snprintf(detail, sizeof detail,
			         "refused: the id already has an active key (role %s); --force not given",
			         srupb_role_name(old.role));
			(void)audit_line("keys add", &audit, "add", id_text, role_arg, "refused", detail);
			rc = SRUP_EXIT_USAGE;
		} else if (res == SRUPB_ADD_REVOKED) {
			tool_err("keys add",
			         "id %s is revoked; add never makes a revoked id active again%s; nothing "
			         "changed: register the device under a new id",
			         id_text, force ? ", even with --force" : "");
			snprintf(detail, sizeof detail,
			         "refused: the id is revoked (role %s) and add never un-revokes%s",
			         srupb_role_name(old.role), force ? ", even with --force" : "");
			(void)audit_line("keys add", &audit, "add", id_text, role_arg, "refused", detail);
			rc = SRUP_EXIT_USAGE;
		} else {
			if (res == SRUPB_ADD_REPLACED) {
				snprintf(detail, sizeof detail,
				         "--force: replaced the active key (was role %s); new key %s",
				         srupb_role_name(old.role), fpr_text);
			} else {
				snprintf(detail, sizeof detail, "added key %s, %u bits", fpr_text, bits);
			}
			rc = audit_line("keys add", &audit, "add", id_text, role_arg, "ok", detail);
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
		char detail[256];
		snprintf(detail, sizeof detail, "--random: %s %" PRIu64 " new random ids, key %s, %u bits",
		         rc == SRUP_EXIT_OK ? "added" : "failed part-way", nrandom, fpr_text, bits);
		int arc = audit_line("keys add", &audit, "add", NULL, role_arg,
		                     rc == SRUP_EXIT_OK ? "ok" : "error", detail);
		if (rc == SRUP_EXIT_OK) {
			rc = arc;
		}
	}
	audit_close(&audit);
	srupb_store_close(st);
	free(pem);
	return rc;
}

/* The prologue of the subcommands that take --store DIR --id ID: parse both, open the store.
 * Returns SRUP_EXIT_OK with *st open, or the exit code to return (with *done set after --help). */
static int id_command_open(const char *cmd, int argc, char **argv, bool readonly,
                           struct srupb_store **st, uint64_t *id, const char **id_arg, bool *done,
                           struct keys_audit *audit, int *json)
{
	const char *store = NULL;
	const char *audit_arg = NULL;
	struct tool_opt opts[4] = {{"store", &store, NULL}, {"id", id_arg, NULL}};
	size_t n_opts = 2;
	const char *pos[1];
	size_t n_pos = 0;
	int rc;

	*st = NULL;
	*done = false;
	/* only the commands that change the store take --audit, only show takes --json */
	if (audit != NULL) {
		opts[n_opts++] = (struct tool_opt){"audit", &audit_arg, NULL};
	}
	if (json != NULL) {
		opts[n_opts++] = (struct tool_opt){"json", NULL, json};
	}
	enum tool_parse pr = tool_parse_args(argc, argv, opts, n_opts, pos, 0, &n_pos);
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
	if (rc == SRUP_EXIT_OK && audit != NULL) {
		rc = audit_open(cmd, audit_arg, store, audit);
		if (rc != SRUP_EXIT_OK) {
			srupb_store_close(*st);
			*st = NULL;
		}
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
	struct keys_audit audit = {-1, ""};
	int rc = id_command_open("keys revoke", argc, argv, false, &st, &id, &id_arg, &done, &audit,
	                         NULL);
	struct srupb_keyrec rec;
	char *pem = NULL;
	bool had = false;
	char id_text[SRUP_ID_TEXT_MAX];

	if (rc != SRUP_EXIT_OK || done) {
		return rc;
	}
	if (srup_id_format(id, id_text, sizeof id_text) != SRUP_OK) {
		snprintf(id_text, sizeof id_text, "%016" PRIx64, id);
	}
	/* the role and former status, for the audit line only */
	memset(&rec, 0, sizeof rec);
	if (srupb_store_key_get(st, id, &rec, &pem, &had) != SRUP_OK) {
		had = false;
	}
	free(pem);
	if (srupb_store_key_revoke(st, id, &found) != SRUP_OK) {
		tool_err("keys revoke", "%s", srupb_store_strerror(st));
		rc = SRUP_EXIT_USAGE;
	} else if (!found) {
		tool_err("keys revoke", "no key with id %s", id_arg);
		(void)audit_line("keys revoke", &audit, "revoke", id_text, NULL, "not_found",
		                 "no key with this id; nothing changed");
		rc = SRUP_EXIT_USAGE;
	} else {
		rc = audit_line("keys revoke", &audit, "revoke", id_text,
		                had ? srupb_role_name(rec.role) : NULL, "ok",
		                had && rec.status != SRUPB_KEY_ACTIVE
		                        ? "was already revoked; memberships dropped"
		                        : "revoked; memberships dropped");
	}
	audit_close(&audit);
	srupb_store_close(st);
	return rc;
}

static const char *key_status(const struct srupb_keyrec *rec)
{
	return rec->status == SRUPB_KEY_ACTIVE ? "active" : "revoked";
}

static int list_one(const struct srupb_keyrec *rec, void *arg)
{
	json_t *list = arg;
	char text[SRUP_ID_TEXT_MAX];
	char when[32];
	if (srup_id_format(rec->id, text, sizeof text) != SRUP_OK) {
		return 0;
	}
	fmt_time(rec->created, when, sizeof when);
	if (list != NULL) {
		return json_array_append_new(list, json_pack("{s:s,s:s,s:s,s:s}", "id", text, "role",
		                                             srupb_role_name(rec->role), "status",
		                                             key_status(rec), "added", when)) != 0;
	}
	return printf("%s\t%s\t%s\t%s\n", text, srupb_role_name(rec->role), key_status(rec), when) < 0;
}

static int keys_list(int argc, char **argv)
{
	const char *store = NULL;
	int json = 0;
	const struct tool_opt opts[] = {{"store", &store, NULL}, {"json", NULL, &json}};
	const char *pos[1];
	size_t n_pos = 0;
	struct srupb_store *st = NULL;
	json_t *list = NULL;
	int rc;

	enum tool_parse pr = tool_parse_args(argc, argv, opts, 2, pos, 0, &n_pos);
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
	if (json) {
		list = json_array();
	}
	if (srupb_store_key_foreach(st, list_one, list) != SRUP_OK) {
		tool_err("keys list", "%s", srupb_store_strerror(st));
		rc = SRUP_EXIT_USAGE;
	} else if (list != NULL) {
		rc = tool_json_print(list) == 0 ? SRUP_EXIT_OK : SRUP_EXIT_USAGE;
	}
	json_decref(list);
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
	int json = 0;
	int rc = id_command_open("keys show", argc, argv, true, &st, &id, &id_arg, &done, NULL, &json);

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
		char when[32];
		uint8_t fp[32];
		char fph[65];
		json_t *o = json_object();
		fmt_time(rec.created, when, sizeof when);
		json_object_set_new(o, "id", tool_json_id(rec.id));
		json_object_set_new(o, "role", json_string(srupb_role_name(rec.role)));
		json_object_set_new(o, "status", json_string(key_status(&rec)));
		json_object_set_new(o, "added", json_string(when));
		if (srup_key_load_pem(pem, rec.pem_len, SRUP_KEY_PUBLIC, &key, NULL) == SRUP_OK) {
			json_object_set_new(o, "bits", json_integer(srup_key_bits(key)));
			if (srup_key_fingerprint(key, fp) == SRUP_OK &&
			    srup_hex_encode(fp, sizeof fp, fph, sizeof fph) == SRUP_OK) {
				json_object_set_new(o, "fingerprint", json_string(fph));
			}
			srup_key_free(key);
		}
		json_object_set_new(o, "pem", json_stringn(pem, rec.pem_len));
		if (json) {
			rc = tool_json_print(o) == 0 ? SRUP_EXIT_OK : SRUP_EXIT_USAGE;
		} else {
			printf("id: %s\nrole: %s\nstatus: %s\nadded: %s\n",
			       json_string_value(json_object_get(o, "id")), srupb_role_name(rec.role),
			       key_status(&rec), when);
			if (json_object_get(o, "bits") != NULL) {
				printf("bits: %d\n", (int)json_integer_value(json_object_get(o, "bits")));
			}
			if (json_object_get(o, "fingerprint") != NULL) {
				printf("fingerprint: sha256:%s\n",
				       json_string_value(json_object_get(o, "fingerprint")));
			}
			printf("%s", pem);
			if (rec.pem_len > 0 && pem[rec.pem_len - 1] != '\n') {
				printf("\n");
			}
		}
		json_decref(o);
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
		static char name[] = "keys add";

		argv[1] = name; /* messages say "srup keys add: ..." */
		return keys_add(argc - 1, argv + 1);
	}
	if (strcmp(argv[1], "revoke") == 0) {
		static char name[] = "keys revoke";

		argv[1] = name; /* messages say "srup keys revoke: ..." */
		return keys_revoke(argc - 1, argv + 1);
	}
	if (strcmp(argv[1], "list") == 0) {
		static char name[] = "keys list";

		argv[1] = name; /* messages say "srup keys list: ..." */
		return keys_list(argc - 1, argv + 1);
	}
	if (strcmp(argv[1], "show") == 0) {
		static char name[] = "keys show";

		argv[1] = name; /* messages say "srup keys show: ..." */
		return keys_show(argc - 1, argv + 1);
	}
	tool_err("keys", "unknown subcommand '%s' (add, revoke, list, show)", argv[1]);
	return SRUP_EXIT_USAGE;
}
