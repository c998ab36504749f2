/* SPDX-License-Identifier: MIT
 * cmd_keys.c - `srup keys` (placeholder until its module lands: fails with usage exit code). */
#include <stdio.h>

#include "cmds.h"

int srup_cmd_keys(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "srup keys: not available in this build\n");
	return SRUP_EXIT_USAGE;
}
