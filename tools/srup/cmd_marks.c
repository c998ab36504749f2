/* SPDX-License-Identifier: MIT
 * cmd_marks.c - `srup marks show --store DIR --id ID`: the broker's replay marks of a sender,
 * one per channel: the highest sequence ID the broker accepted from it there. A sender whose
 * counter went back (a restored state file) compares its next number with these. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <srup/srup.h>

#include "cmds.h"
#include "srupb_store.h"
#include "util.h"

static void help(FILE *f)
{
	fprintf(f, "usage: srup marks show --store DIR --id ID [--json]\n"
	           "\n"
	           "Print the replay marks the broker's store holds for sender ID: per channel, the\n"
	           "highest sequence ID accepted from it there (its next message must be above).\n"
	           "With a running broker that journals its marks (durability os or map), the newest\n"
	           "marks reach the store at its next checkpoint: a mark shown may be lower.\n"
	           "\n"
	           "Exit codes: 0 ok, 3 usage, unknown store, I/O or store errors.\n");
}

struct show {
	json_t *list; /* --json: the marks, else NULL */
	int n;
};

static int print_mark(const struct srupb_chan *c, const struct srupb_mark *m, void *arg)
{
	struct show *s = arg;
	char a[SRUP_ID_TEXT_MAX];
	char b[SRUP_ID_TEXT_MAX];
	char topic[64];
	char digest[65];

	srup_id_format(c->a, a, sizeof a);
	srup_id_format(c->b, b, sizeof b);
	if (c->kind == SRUPB_CHAN_JOIN) {
		snprintf(topic, sizeof topic, "SRUP/servers/%s/%s", a, b);
	} else {
		snprintf(topic, sizeof topic, "SRUP/%s", a);
	}
	if (srup_hex_encode(m->digest, sizeof m->digest, digest, sizeof digest) != SRUP_OK) {
		return 1;
	}
	if (s->list != NULL) {
		json_array_append_new(s->list, json_pack("{s:s,s:o,s:s}", "channel", topic, "sequence_id",
		                                         tool_json_seq(m->seq), "payload_sha256", digest));
	} else {
		printf("%-40s %20" PRIu64 "  sha256:%.16s\n", topic, m->seq, digest);
	}
	s->n++;
	return 0;
}

int srup_cmd_marks(int argc, char **argv)
{
	const char *store = NULL;
	const char *id_s = NULL;
	int json = 0;
	const struct tool_opt opts[] = {
	        {"store", &store, NULL}, {"id", &id_s, NULL}, {"json", NULL, &json}};
	const char *pos[1];
	size_t n_pos = 0;
	struct srupb_store *st = NULL;
	struct show s = {NULL, 0};
	char err[512];
	uint64_t id;
	enum srup_err e;

	if (argc < 2 || strcmp(argv[1], "show") != 0) {
		if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
			help(stdout);
			return SRUP_EXIT_OK;
		}
		help(stderr);
		return SRUP_EXIT_USAGE;
	}
	argv[1] = (char *)"marks show";
	switch (tool_parse_args(argc - 1, argv + 1, opts, 3, pos, 0, &n_pos)) {
		case TOOL_PARSE_HELP:
			help(stdout);
			return SRUP_EXIT_OK;
		case TOOL_PARSE_ERROR:
			return SRUP_EXIT_USAGE;
		default:
			break;
	}
	if (store == NULL || id_s == NULL || srup_id_parse(id_s, strlen(id_s), &id) != SRUP_OK) {
		tool_err("marks show", "--store DIR and --id ID (64-bit hex) are required");
		return SRUP_EXIT_USAGE;
	}
	if (srupb_store_open(store, true, SRUPB_SYNC_FSYNC, &st, err, sizeof err) != SRUP_OK) {
		tool_err("marks show", "%s", err);
		return SRUP_EXIT_USAGE;
	}
	if (json) {
		s.list = json_array();
	}
	e = srupb_store_mark_foreach(st, id, print_mark, &s);
	if (json && e == SRUP_OK) {
		json_t *o = json_pack("{s:o,s:O}", "id", tool_json_id(id), "marks", s.list);
		if (tool_json_print(o) != 0) {
			e = SRUP_ERR_IO;
		}
		json_decref(o);
	} else if (!json && s.n == 0 && e == SRUP_OK) {
		printf("no marks for %s\n", id_s);
	}
	if (e != SRUP_OK) {
		tool_err("marks show", "%s", srupb_store_strerror(st));
	}
	json_decref(s.list);
	srupb_store_close(st);
	return e == SRUP_OK ? SRUP_EXIT_OK : SRUP_EXIT_USAGE;
}
