/* SPDX-License-Identifier: MIT
 * cmd_phrase.c - `srup phrase` (placeholder until its module lands: fails with usage exit code). */
#include <stdio.h>

#include "cmds.h"

int srup_cmd_phrase(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "srup phrase: not available in this build\n");
	return SRUP_EXIT_USAGE;
}
