/* SPDX-License-Identifier: MIT
 * cmds.h - the subcommands of the `srup` tool, one file each (cmd_<name>.c).
 * Each takes argv from the subcommand name on and returns the process exit code. */
#ifndef SRUP_TOOL_CMDS_H
#define SRUP_TOOL_CMDS_H

#include <stdio.h>

int srup_cmd_keygen(int argc, char **argv);
int srup_cmd_id(int argc, char **argv);
int srup_cmd_decode(int argc, char **argv);
int srup_cmd_encode(int argc, char **argv);
int srup_cmd_phrase(int argc, char **argv);
int srup_cmd_pictograph(int argc, char **argv);
int srup_cmd_keys(int argc, char **argv);
int srup_cmd_qr(int argc, char **argv);
int srup_cmd_marks(int argc, char **argv);
int srup_cmd_store(int argc, char **argv);
int srup_cmd_audit(int argc, char **argv);
int srup_cmd_ctrl(int argc, char **argv);

/* `srup audit [options] FILE...` (cmd_audit_read.c), reached through srup_cmd_audit. */
int srup_audit_read(int argc, char **argv);
void srup_audit_read_help(FILE *f);

/* Exit codes shared by every subcommand. */
#define SRUP_EXIT_OK      0
#define SRUP_EXIT_BADSIG  1 /* parsed, but the signature does not verify */
#define SRUP_EXIT_MALFORM 2 /* the message is malformed */
#define SRUP_EXIT_USAGE   3 /* usage, I/O or other errors */

#endif
