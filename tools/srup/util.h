/* SPDX-License-Identifier: MIT
 * util.h - helpers shared by the `srup` subcommands: option parsing, whole-file input,
 * lenient hex input, checked output and the one-line error format.
 * Nothing here knows about SRUP messages; that stays in the cmd_*.c files and libsrup. */
#ifndef SRUP_TOOL_UTIL_H
#define SRUP_TOOL_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>
#include <srup/msg.h>

/* One long option of a subcommand. Options taking a value accept "--name VALUE" and
 * "--name=VALUE"; flags take none. Exactly one of value/flag is set. */
struct tool_opt {
	const char *name;   /* without the leading "--" */
	const char **value; /* receives the argument (borrowed from argv), or NULL */
	int *flag;          /* set to 1 when the flag is present, or NULL */
};

enum tool_parse {
	TOOL_PARSE_OK = 0,
	TOOL_PARSE_HELP = 1,  /* -h or --help was given */
	TOOL_PARSE_ERROR = 2, /* already reported on stderr */
};

/* Parse argv[1, argc) (argv[0] is the subcommand name, as shown in messages) with
 * getopt_long against opts[0, n_opts) (at most 32). Positional
 * arguments ("-" counts as one; everything after "--" does) are collected in order into
 * pos[0, pos_cap); *n_pos gets their count. Giving an option twice, an unknown option, a
 * missing value or more than pos_cap positionals is an error reported as
 * "srup <cmd>: ..." on stderr. */
enum tool_parse tool_parse_args(int argc, char **argv, const struct tool_opt *opts, size_t n_opts,
                                const char **pos, size_t pos_cap, size_t *n_pos);

/* Print "srup <cmd>: <message>\n" on stderr. */
void tool_err(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

enum tool_read {
	TOOL_READ_OK = 0,
	TOOL_READ_IO = 1,      /* open/read failed; errbuf says why */
	TOOL_READ_TOO_BIG = 2, /* the input has more than max bytes */
	TOOL_READ_NOMEM = 3,
};

/* Read a whole file (path "-" or NULL: standard input) into a malloc'd buffer with one extra
 * NUL byte after the data (not counted in *len). At most max bytes are accepted. On failure
 * *buf is NULL and errbuf (if given) holds a short reason. */
enum tool_read tool_read_all(const char *path, size_t max, uint8_t **buf, size_t *len, char *errbuf,
                             size_t errbuf_cap);

/* Decode hex text that may contain ASCII whitespace anywhere (between digit pairs or inside
 * one). Either case. Returns 0 and a malloc'd *out (may be NULL when *out_len is 0), or -1 with
 * *bad_off set to the offending text offset (text length for an odd digit count). */
int tool_hex_decode_loose(const char *text, size_t len, uint8_t **out, size_t *out_len,
                          size_t *bad_off);

/* Write len bytes as lowercase hex to f. Returns 0, or -1 if a write failed. */
int tool_hex_write(FILE *f, const uint8_t *p, size_t len);

/* Write all of p to f and flush. Returns 0, or -1 (errno set) if anything failed. */
int tool_write_all(FILE *f, const void *p, size_t len);

/* Parse an unsigned decimal integer (no sign, no spaces, no leading zeros unless "0")
 * of at most max. Returns 0, or -1 if s is not such a number. */
int tool_parse_uint(const char *s, size_t len, uint64_t max, uint64_t *out);

/* How the body fields of struct srup_msg appear in the tool's JSON (contract "srup CLI"). */
enum tool_fkind {
	TOOL_F_BYTES, /* "<name>_hex": lowercase hex string */
	TOOL_F_U8,    /* JSON number 0..255 */
	TOOL_F_U32,   /* JSON number 0..4294967295 */
	TOOL_F_ID,    /* 16 lowercase hex digits, no 0x */
};

struct tool_field {
	unsigned bit;     /* enum srup_field */
	const char *json; /* member name in the JSON object */
	enum tool_fkind kind;
	size_t max;    /* TOOL_F_BYTES: largest length the codec accepts */
	size_t offset; /* offsetof(struct srup_msg, <member>) */
};

/* Every body field except the pad, in the order fields appear on the wire (no type carries
 * two fields in a different order than this table). */
extern const struct tool_field tool_fields[];
extern const size_t tool_fields_count;

/* Read / write the member of m that f describes. */
struct srup_bytes tool_field_bytes(const struct srup_msg *m, const struct tool_field *f);
uint64_t tool_field_uint(const struct srup_msg *m, const struct tool_field *f);
void tool_field_set_bytes(struct srup_msg *m, const struct tool_field *f, struct srup_bytes b);
void tool_field_set_uint(struct srup_msg *m, const struct tool_field *f, uint64_t v);

/* A duration such as 90s, 15m, 1h30m, 2d or 1w (s m h d w; "0" alone is zero), in seconds, at
 * most max. Returns 0, or -1 if s is not such a duration or exceeds max. */
int tool_parse_duration(const char *s, uint64_t max, uint64_t *secs);

/* How every output of the tool writes ids and sequence numbers (as the broker's audit log):
 * an id as its canonical text (lowercase hex, no 0x, no leading zeros, e.g. "b9d077e223834cf6");
 * a sequence number as a JSON number, or, above 2^63-1 (beyond jansson's integers), as a "0x"
 * hex string, which srup encode reads back. New references. */
json_t *tool_json_id(uint64_t id);
json_t *tool_json_seq(uint64_t seq);
/* Print v on standard output as indented JSON and a newline; 0, or -1 if a write failed. */
int tool_json_print(const json_t *v);
/* The kind of a JSON value for messages ("string", "integer", ...). */
const char *tool_json_kind(const json_t *v);
#endif
