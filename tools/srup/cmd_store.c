/* SPDX-License-Identifier: MIT
 * cmd_store.c - `srup store check --store DIR`: is the broker's store consistent? LMDB opens and
 * every key record holds a usable public key; every replay mark of a registered sender reads
 * back; the marks journal and the seen index are the store's own (their headers carry the
 * store id LMDB holds), so a partial restore is caught before the broker refuses to start. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <srup/srup.h>

#include "cmds.h"
#include "srupb_store.h"
#include "util.h"

#define ID_OFF 64 /* the store id's offset in the header of marks.journal and seen.idx */

static void help(FILE *f)
{
	fprintf(f,
	        "usage: srup store check --store DIR\n"
	        "\n"
	        "Check the broker's store: LMDB opens; every key record is a usable RSA public key;\n"
	        "every replay mark of a registered sender reads back; marks.journal and seen.idx\n"
	        "(when present) are this store's (same store id as LMDB). Best run with the broker\n"
	        "stopped (a running broker's newest marks are in its journal until a checkpoint).\n"
	        "\n"
	        "Exit codes: 0 consistent, 1 a problem was found (each one printed), 3 usage or the\n"
	        "store cannot be opened.\n");
}

struct check {
	struct srupb_store *st;
	size_t keys;
	size_t bad_keys;
	size_t marks;
	uint64_t ids[65536];
	size_t n_ids;
};

static int on_key(const struct srupb_keyrec *rec, void *arg)
{
	struct check *c = arg;
	struct srup_key *k = NULL;
	char id[SRUP_ID_TEXT_MAX];

	c->keys++;
	srup_id_format(rec->id, id, sizeof id);
	if (srup_key_load_pem(rec->pem, rec->pem_len, SRUP_KEY_PUBLIC, &k, NULL) != SRUP_OK) {
		printf("PROBLEM key %s: its record does not hold a usable public key\n", id);
		c->bad_keys++;
	}
	srup_key_free(k);
	if (c->n_ids < sizeof c->ids / sizeof c->ids[0]) {
		c->ids[c->n_ids++] = rec->id;
	}
	return 0;
}

static int on_mark(const struct srupb_chan *chan, const struct srupb_mark *m, void *arg)
{
	struct check *c = arg;

	(void)chan;
	(void)m;
	c->marks++;
	return 0;
}

/* 0 same store, 1 another store or damaged header (printed), 2 absent. */
static int check_file(const char *dir, const char *name, const char *magic, const uint8_t id[16])
{
	char path[4096];
	uint8_t hdr[ID_OFF + 16];
	FILE *f;
	size_t n;
	static const uint8_t zero[16];

	snprintf(path, sizeof path, "%s/%s", dir, name);
	f = fopen(path, "rb");
	if (f == NULL) {
		printf("ok      %s: absent (made at the broker's next start)\n", name);
		return 2;
	}
	n = fread(hdr, 1, sizeof hdr, f);
	fclose(f);
	if (n < sizeof hdr || memcmp(hdr, magic, 8) != 0) {
		printf("PROBLEM %s: not a %s header\n", name, name);
		return 1;
	}
	if (memcmp(hdr + ID_OFF, id, 16) != 0 || memcmp(id, zero, 16) == 0) {
		printf("PROBLEM %s: it belongs to another store (or LMDB lost its id): restore the whole "
		       "directory from one backup, or remove %s to accept losing what it holds\n",
		       name, name);
		return 1;
	}
	printf("ok      %s: this store's\n", name);
	return 0;
}

int srup_cmd_store(int argc, char **argv)
{
	static struct check c;
	const char *store = NULL;
	const struct tool_opt opts[] = {{"store", &store, NULL}};
	const char *pos[1];
	size_t n_pos = 0;
	char err[512];
	uint8_t id[16];
	size_t i;
	int problems = 0;

	if (argc < 2 || strcmp(argv[1], "check") != 0) {
		if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
			help(stdout);
			return SRUP_EXIT_OK;
		}
		help(stderr);
		return SRUP_EXIT_USAGE;
	}
	argv[1] = (char *)"store check";
	switch (tool_parse_args(argc - 1, argv + 1, opts, 1, pos, 0, &n_pos)) {
		case TOOL_PARSE_HELP:
			help(stdout);
			return SRUP_EXIT_OK;
		case TOOL_PARSE_ERROR:
			return SRUP_EXIT_USAGE;
		default:
			break;
	}
	if (store == NULL) {
		tool_err("store check", "--store DIR is required");
		return SRUP_EXIT_USAGE;
	}
	memset(&c, 0, sizeof c);
	if (srupb_store_open(store, true, SRUPB_SYNC_FSYNC, &c.st, err, sizeof err) != SRUP_OK) {
		tool_err("store check", "%s", err);
		return SRUP_EXIT_USAGE;
	}
	if (srupb_store_key_foreach(c.st, on_key, &c) != SRUP_OK) {
		printf("PROBLEM LMDB keys: %s\n", srupb_store_strerror(c.st));
		problems++;
	}
	for (i = 0; i < c.n_ids; i++) {
		if (srupb_store_mark_foreach(c.st, c.ids[i], on_mark, &c) != SRUP_OK) {
			printf("PROBLEM LMDB marks: %s\n", srupb_store_strerror(c.st));
			problems++;
			break;
		}
	}
	problems += c.bad_keys > 0;
	printf("%s LMDB: %zu keys (%zu unusable), %zu replay marks\n",
	       c.bad_keys ? "PROBLEM" : "ok     ", c.keys, c.bad_keys, c.marks);
	srupb_store_id(c.st, id);
	problems += check_file(store, "marks.journal", "SRUPJNL1", id) == 1;
	problems += check_file(store, "seen.idx", "SRUPSEEN", id) == 1;
	srupb_store_close(c.st);
	printf("%s\n", problems ? "INCONSISTENT" : "consistent");
	return problems ? 1 : SRUP_EXIT_OK;
}
