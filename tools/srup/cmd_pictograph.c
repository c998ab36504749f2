/* SPDX-License-Identifier: MIT
 * cmd_pictograph.c - `srup pictograph` (placeholder until its module lands: fails with usage exit code). */
#include <stdio.h>

#include "cmds.h"

int srup_cmd_pictograph(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "srup pictograph: not available in this build\n");
	return SRUP_EXIT_USAGE;
}
