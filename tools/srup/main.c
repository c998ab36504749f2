/* SPDX-License-Identifier: MIT
 * main.c - entry point of the `srup` tool: dispatches to one subcommand (cmds.h).
 * Each subcommand parses its own options and documents itself under `srup <cmd> --help`. */
#include <stdio.h>
#include <string.h>

#include "cmds.h"

#ifndef SRUP_TOOL_VERSION
#define SRUP_TOOL_VERSION "unknown"
#endif

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
        {"keygen", srup_cmd_keygen, "generate an RSA key pair (PREFIX.pem, PREFIX.pub.pem)"},
        {"id", srup_cmd_id, "print a new random 64-bit SRUP identity"},
        {"decode", srup_cmd_decode, "decode (and verify, decrypt) a SRUP message as JSON"},
        {"encode", srup_cmd_encode, "build and sign a SRUP message from JSON"},
        {"phrase", srup_cmd_phrase, "show a 128-bit value as words, or words as the value"},
        {"pictograph", srup_cmd_pictograph, "draw a 128-bit value as a pictograph"},
        {"keys", srup_cmd_keys, "administer a broker key store (add, revoke, list, show)"},
        {"marks", srup_cmd_marks, "show the broker's replay marks of a sender (marks show)"},
        {"audit", srup_cmd_audit,
         "read, filter and summarise the broker's audit log; audit verify"},
        {"ctrl", srup_cmd_ctrl, "administer a running broker over MQTT ($CONTROL/srup/v1)"},
        {"store", srup_cmd_store, "check the broker's store for consistency (store check)"},
        {"qr", srup_cmd_qr, "draw a URL (e.g. the registration service's) as a QR code"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: srup <command> [options] [args]\n"
	           "       srup --help | --version\n"
	           "\n"
	           "commands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		fprintf(f, "  %-11s %s\n", commands[i].name, commands[i].summary);
	}
	fprintf(f, "\n"
	           "Run 'srup <command> --help' for the options of one command.\n"
	           "Exit codes: 0 ok, 1 bad signature, 2 malformed message or input,\n"
	           "            3 usage, I/O or other errors.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return SRUP_EXIT_USAGE;
	}
	const char *name = argv[1];
	if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
		if (argc == 3 && strcmp(name, "help") == 0) {
			/* "srup help <cmd>" is the same as "srup <cmd> --help". */
			for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
				if (strcmp(argv[2], commands[i].name) == 0) {
					char help[] = "--help";
					char *sub_argv[] = {argv[2], help, NULL};
					return commands[i].run(2, sub_argv);
				}
			}
			fprintf(stderr, "srup: unknown command '%s'\n", argv[2]);
			return SRUP_EXIT_USAGE;
		}
		usage(stdout);
		return fflush(stdout) == 0 ? SRUP_EXIT_OK : SRUP_EXIT_USAGE;
	}
	if (strcmp(name, "--version") == 0 || strcmp(name, "-V") == 0) {
		printf("srup %s (SRUP wire version 0x05)\n", SRUP_TOOL_VERSION);
		return fflush(stdout) == 0 ? SRUP_EXIT_OK : SRUP_EXIT_USAGE;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(name, commands[i].name) == 0) {
			return commands[i].run(argc - 1, argv + 1);
		}
	}
	fprintf(stderr, "srup: unknown command '%s' (see srup --help)\n", name);
	return SRUP_EXIT_USAGE;
}
