/* SPDX-License-Identifier: MIT
 * json.h - a small strict JSON (RFC 8259) reader and a streaming object writer for the `srup`
 * tool. The reader takes untrusted text: bounded depth, valid UTF-8 only, no duplicate keys,
 * no extensions (comments, trailing commas, NaN). It is not a general-purpose library. */
#ifndef SRUP_TOOL_JSON_H
#define SRUP_TOOL_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define JSON_DEPTH_MAX 32

enum json_kind {
	JSON_NULL,
	JSON_BOOL,
	JSON_NUMBER,
	JSON_STRING,
	JSON_ARRAY,
	JSON_OBJECT,
};

struct json_value {
	enum json_kind kind;
	int boolean; /* JSON_BOOL */
	char *str;   /* JSON_STRING: decoded UTF-8, NUL-terminated, never contains NUL;
	                    * JSON_NUMBER: the number's text exactly as written */
	size_t str_len;
	size_t n;                 /* JSON_ARRAY / JSON_OBJECT: element count */
	struct json_value *items; /* elements, or member values */
	char **keys;              /* JSON_OBJECT: member names (decoded, NUL-terminated) */
	size_t line;              /* where the value starts (1-based), for error messages */
	size_t col;
};

struct json_error {
	size_t line; /* 1-based */
	size_t col;  /* 1-based, in bytes */
	char msg[96];
};

/* Parse text[0, len) as exactly one JSON value surrounded by optional whitespace (a leading
 * UTF-8 byte order mark is skipped). Returns 0 and an owned *out, or -1 with *out NULL and err
 * filled (allocation failure is reported as "out of memory"). */
int json_parse(const char *text, size_t len, struct json_value **out, struct json_error *err);

/* Free a value returned by json_parse; accepts NULL. */
void json_free(struct json_value *v);

/* Borrowed member of an object by name, or NULL (also when obj is not an object). */
const struct json_value *json_get(const struct json_value *obj, const char *key);

/* Name of a kind ("string", "number", ...) for messages. */
const char *json_kind_name(enum json_kind k);

/* Streaming writer of one flat JSON object on one line. Write errors are remembered and
 * reported by json_out_end. */
struct json_out {
	FILE *f;
	int first;
	int failed;
};

void json_out_begin(struct json_out *w, FILE *f);
void json_out_string(struct json_out *w, const char *key, const char *val);
void json_out_hex(struct json_out *w, const char *key, const uint8_t *p, size_t len);
void json_out_uint(struct json_out *w, const char *key, uint64_t v);
void json_out_null(struct json_out *w, const char *key);
/* Close the object and the line, flush. Returns 0, or -1 if any write failed. */
int json_out_end(struct json_out *w);

/* Write s[0, len) as a JSON string literal (with quotes) to f; returns 0 or -1. */
int json_write_string(FILE *f, const char *s, size_t len);

#endif
