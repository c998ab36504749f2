/* SPDX-License-Identifier: MIT
 * cmd_id.c - `srup id`: print new random 64-bit SRUP identities in their text form.
 * The identities come from libsrup (random v4 UUIDs); nothing is stored. */
#include <stdio.h>
#include <string.h>

#include <srup/srup.h>

#include "cmds.h"
#include "util.h"

#define ID_COUNT_MAX 100000u

static void id_help(void)
{
	printf("usage: srup id [--count N]\n"
	       "\n"
	       "Print a new random 64-bit SRUP identity (the top 64 bits of a random version-4 UUID)\n"
	       "in text form: lowercase hex, no 0x, no zero padding, e.g. b9d077e223834cf6.\n"
	       "\n"
	       "  --count N   print N identities, one per line (1..%u, default 1)\n"
	       "\n"
	       "Exit codes: 0 ok, 3 usage or output error.\n",
	       ID_COUNT_MAX);
}

int srup_cmd_id(int argc, char **argv)
{
	const char *count_arg = NULL;
	const struct tool_opt opts[] = {
	        {"count", &count_arg, NULL},
	};
	const char *pos[1];
	size_t n_pos = 0;
	uint64_t count = 1;

	enum tool_parse pr = tool_parse_args(argc, argv, opts, 1, pos, 0, &n_pos);
	if (pr == TOOL_PARSE_HELP) {
		id_help();
		return SRUP_EXIT_OK;
	}
	if (pr != TOOL_PARSE_OK) {
		return SRUP_EXIT_USAGE;
	}
	if (count_arg != NULL &&
	    (tool_parse_uint(count_arg, strlen(count_arg), ID_COUNT_MAX, &count) != 0 || count == 0)) {
		tool_err("id", "--count must be a number from 1 to %u", ID_COUNT_MAX);
		return SRUP_EXIT_USAGE;
	}
	for (uint64_t i = 0; i < count; i++) {
		char text[SRUP_ID_TEXT_MAX];
		if (srup_id_format(srup_id_new(), text, sizeof(text)) != SRUP_OK) {
			tool_err("id", "cannot format identity");
			return SRUP_EXIT_USAGE;
		}
		if (printf("%s\n", text) < 0) {
			break;
		}
	}
	if (fflush(stdout) != 0 || ferror(stdout)) {
		tool_err("id", "cannot write to standard output");
		return SRUP_EXIT_USAGE;
	}
	return SRUP_EXIT_OK;
}
