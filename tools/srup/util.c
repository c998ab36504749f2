/* SPDX-License-Identifier: MIT
 * util.c - option parsing, bounded whole-file reads, hex input/output and error lines for the
 * `srup` tool. No SRUP knowledge and no global state. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <srup/srup.h>

#include "util.h"

void tool_err(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "srup %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

#define TOOL_OPTS_MAX 32

enum tool_parse tool_parse_args(int argc, char **argv, const struct tool_opt *opts, size_t n_opts,
                                const char **pos, size_t pos_cap, size_t *n_pos)
{
	/* getopt_long, as every program of the project parses its options: GNU style ("--name
	 * VALUE", "--name=VALUE", unambiguous abbreviations, options anywhere, "--" ends them). */
	struct option lo[TOOL_OPTS_MAX + 2];
	const char *cmd = argv[0];
	int idx;
	int c;

	*n_pos = 0;
	if (n_opts > TOOL_OPTS_MAX) {
		tool_err(cmd, "internal error: too many options");
		return TOOL_PARSE_ERROR;
	}
	for (size_t i = 0; i < n_opts; i++) {
		if (opts[i].value != NULL) {
			*opts[i].value = NULL;
		}
		if (opts[i].flag != NULL) {
			*opts[i].flag = 0;
		}
		lo[i].name = opts[i].name;
		lo[i].has_arg = opts[i].flag != NULL ? no_argument : required_argument;
		lo[i].flag = NULL;
		lo[i].val = 0x100 + (int)i;
	}
	lo[n_opts] = (struct option){"help", no_argument, NULL, 'h'};
	lo[n_opts + 1] = (struct option){NULL, 0, NULL, 0};
	optind = 0; /* 0: full reinitialisation (the tool may parse more than once) */
	opterr = 0;
	/* Leading '-': positionals come back in order as option 1; ':' reports missing values. */
	while ((c = getopt_long(argc, argv, "-:h", lo, &idx)) != -1) {
		const char *a = argv[optind - 1];

		if (c == 1) {
			if (*n_pos >= pos_cap) {
				tool_err(cmd, "unexpected argument '%s' (see srup %s --help)", optarg, cmd);
				return TOOL_PARSE_ERROR;
			}
			pos[(*n_pos)++] = optarg;
			continue;
		}
		if (c == 'h') {
			return TOOL_PARSE_HELP;
		}
		if (c == ':') {
			tool_err(cmd, "option '%s' needs a value", a);
			return TOOL_PARSE_ERROR;
		}
		if (c == '?') {
			if (optopt != 0 && optopt < 0x100) {
				tool_err(cmd, "unknown option '-%c' (see srup %s --help)", optopt, cmd);
			} else {
				tool_err(cmd, "unknown or ambiguous option '%s' (see srup %s --help)", a, cmd);
			}
			return TOOL_PARSE_ERROR;
		}
		{
			const struct tool_opt *o = &opts[c - 0x100];

			if (o->flag != NULL) {
				if (*o->flag) {
					tool_err(cmd, "option '--%s' given twice", o->name);
					return TOOL_PARSE_ERROR;
				}
				*o->flag = 1;
				continue;
			}
			if (*o->value != NULL) {
				tool_err(cmd, "option '--%s' given twice", o->name);
				return TOOL_PARSE_ERROR;
			}
			if (optarg[0] == '\0') {
				tool_err(cmd, "option '--%s' needs a non-empty value", o->name);
				return TOOL_PARSE_ERROR;
			}
			*o->value = optarg;
		}
	}
	/* After "--": the rest are positionals. */
	for (int i = optind; i < argc; i++) {
		if (*n_pos >= pos_cap) {
			tool_err(cmd, "unexpected argument '%s' (see srup %s --help)", argv[i], cmd);
			return TOOL_PARSE_ERROR;
		}
		pos[(*n_pos)++] = argv[i];
	}
	return TOOL_PARSE_OK;
}

enum tool_read tool_read_all(const char *path, size_t max, uint8_t **buf, size_t *len, char *errbuf,
                             size_t errbuf_cap)
{
	int use_stdin = path == NULL || strcmp(path, "-") == 0;
	FILE *f = NULL;
	uint8_t *b = NULL;
	size_t cap = 0;
	size_t n = 0;
	enum tool_read rc = TOOL_READ_IO;

	*buf = NULL;
	*len = 0;
	if (errbuf != NULL && errbuf_cap > 0) {
		errbuf[0] = '\0';
	}
	if (use_stdin) {
		f = stdin;
	} else {
		f = fopen(path, "rb");
		if (f == NULL) {
			if (errbuf != NULL) {
				snprintf(errbuf, errbuf_cap, "cannot open %s: %s", path, strerror(errno));
			}
			return TOOL_READ_IO;
		}
	}
	for (;;) {
		if (cap - n < 2) {
			/* Grow geometrically, but never beyond max + 2 (the +1 probe byte and NUL). */
			size_t ncap = cap == 0 ? 4096 : cap * 2;
			if (ncap > max + 2) {
				ncap = max + 2;
			}
			if (ncap <= cap) {
				rc = TOOL_READ_TOO_BIG;
				if (errbuf != NULL) {
					snprintf(errbuf, errbuf_cap, "input is over %zu bytes", max);
				}
				goto out;
			}
			uint8_t *nb = realloc(b, ncap);
			if (nb == NULL) {
				rc = TOOL_READ_NOMEM;
				if (errbuf != NULL) {
					snprintf(errbuf, errbuf_cap, "out of memory");
				}
				goto out;
			}
			b = nb;
			cap = ncap;
		}
		size_t want = cap - 1 - n;
		size_t got = fread(b + n, 1, want, f);
		n += got;
		if (n > max) {
			rc = TOOL_READ_TOO_BIG;
			if (errbuf != NULL) {
				snprintf(errbuf, errbuf_cap, "input is over %zu bytes", max);
			}
			goto out;
		}
		if (got < want) {
			if (ferror(f)) {
				if (errbuf != NULL) {
					snprintf(errbuf, errbuf_cap, "cannot read %s: %s",
					         use_stdin ? "standard input" : path, strerror(errno));
				}
				goto out;
			}
			break;
		}
	}
	b[n] = '\0';
	*buf = b;
	*len = n;
	b = NULL;
	rc = TOOL_READ_OK;
out:
	free(b);
	if (!use_stdin) {
		fclose(f);
	}
	return rc;
}

static int is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

int tool_hex_decode_loose(const char *text, size_t len, uint8_t **out, size_t *out_len,
                          size_t *bad_off)
{
	char *digits = malloc(len + 1);
	uint8_t *b = NULL;
	size_t nd = 0;
	size_t n = 0;

	*out = NULL;
	*out_len = 0;
	*bad_off = 0;
	if (digits == NULL) {
		return -1;
	}
	/* drop the whitespace, note where the first non-digit is; libsrup decodes the rest */
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];
		if (is_space(c)) {
			continue;
		}
		if (c == '\0' || strchr("0123456789abcdefABCDEF", c) == NULL) {
			*bad_off = i;
			free(digits);
			return -1;
		}
		digits[nd++] = (char)c;
	}
	if (nd % 2 != 0) {
		*bad_off = len;
		free(digits);
		return -1;
	}
	if (nd > 0) {
		b = malloc(nd / 2);
		if (b == NULL || srup_hex_decode(digits, nd, b, nd / 2, &n) != SRUP_OK) {
			free(b);
			free(digits);
			return -1;
		}
	}
	free(digits);
	*out = b;
	*out_len = n;
	return 0;
}

int tool_hex_write(FILE *f, const uint8_t *p, size_t len)
{
	char chunk[2 * 256 + 1];

	for (size_t off = 0; off < len; off += 256) {
		size_t n = len - off < 256 ? len - off : 256;
		if (srup_hex_encode(p + off, n, chunk, sizeof chunk) != SRUP_OK ||
		    fwrite(chunk, 1, 2 * n, f) != 2 * n) {
			return -1;
		}
	}
	return 0;
}

int tool_write_all(FILE *f, const void *p, size_t len)
{
	if (len > 0 && fwrite(p, 1, len, f) != len) {
		return -1;
	}
	if (fflush(f) != 0) {
		return -1;
	}
	return ferror(f) ? -1 : 0;
}

int tool_parse_uint(const char *s, size_t len, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (len == 0 || (len > 1 && s[0] == '0')) {
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9') {
			return -1;
		}
		uint64_t d = (uint64_t)(s[i] - '0');
		if (d > max || v > (max - d) / 10) {
			return -1;
		}
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

#define VAR_FIELD_MAX 65535u /* data_id and data: the whole range of their length prefix */

const struct tool_field tool_fields[] = {
        {SRUP_F_URL, "url_hex", TOOL_F_BYTES, SRUP_URL_MAX, offsetof(struct srup_msg, url)},
        {SRUP_F_DIGEST, "digest_hex", TOOL_F_BYTES, SRUP_DIGEST_MAX,
         offsetof(struct srup_msg, digest)},
        {SRUP_F_STATUS, "status", TOOL_F_U8, 0, offsetof(struct srup_msg, status)},
        {SRUP_F_ACTION_ID, "action_id", TOOL_F_U8, 0, offsetof(struct srup_msg, action_id)},
        {SRUP_F_DATA_ID, "data_id_hex", TOOL_F_BYTES, VAR_FIELD_MAX,
         offsetof(struct srup_msg, data_id)},
        {SRUP_F_DATA, "data_hex", TOOL_F_BYTES, VAR_FIELD_MAX, offsetof(struct srup_msg, data)},
        /* SYNDICATED_DEV_LIST carries device_sequence before device_id (spec §2.1). */
        {SRUP_F_DEVICE_SEQUENCE, "device_sequence", TOOL_F_U32, 0,
         offsetof(struct srup_msg, device_sequence)},
        {SRUP_F_DEVICE_ID, "device_id", TOOL_F_ID, 0, offsetof(struct srup_msg, device_id)},
        {SRUP_F_OBSERVER_ID, "observer_id", TOOL_F_ID, 0, offsetof(struct srup_msg, observer_id)},
        {SRUP_F_JOINING_DEVICE_ID, "joining_device_id", TOOL_F_ID, 0,
         offsetof(struct srup_msg, joining_device_id)},
        {SRUP_F_ENCRYPTED, "encrypted_hex", TOOL_F_BYTES, SRUP_ENCRYPTED_MAX,
         offsetof(struct srup_msg, encrypted)},
        {SRUP_F_TARGET_ID, "target_id", TOOL_F_ID, 0, offsetof(struct srup_msg, target_id)},
        {SRUP_F_SOURCE_ID, "source_id", TOOL_F_ID, 0, offsetof(struct srup_msg, source_id)},
        {SRUP_F_COUNT, "count", TOOL_F_U32, 0, offsetof(struct srup_msg, count)},
        {SRUP_F_REQ_ID, "req_id", TOOL_F_U8, 0, offsetof(struct srup_msg, req_id)},
};
const size_t tool_fields_count = sizeof(tool_fields) / sizeof(tool_fields[0]);

struct srup_bytes tool_field_bytes(const struct srup_msg *m, const struct tool_field *f)
{
	struct srup_bytes b;

	memcpy(&b, (const unsigned char *)m + f->offset, sizeof(b));
	return b;
}

void tool_field_set_bytes(struct srup_msg *m, const struct tool_field *f, struct srup_bytes b)
{
	memcpy((unsigned char *)m + f->offset, &b, sizeof(b));
}

uint64_t tool_field_uint(const struct srup_msg *m, const struct tool_field *f)
{
	const unsigned char *p = (const unsigned char *)m + f->offset;

	switch (f->kind) {
		case TOOL_F_U8:
			return *p;
		case TOOL_F_U32: {
			uint32_t v;
			memcpy(&v, p, sizeof(v));
			return v;
		}
		case TOOL_F_ID: {
			uint64_t v;
			memcpy(&v, p, sizeof(v));
			return v;
		}
		case TOOL_F_BYTES:
			break;
	}
	return 0;
}

void tool_field_set_uint(struct srup_msg *m, const struct tool_field *f, uint64_t v)
{
	unsigned char *p = (unsigned char *)m + f->offset;

	switch (f->kind) {
		case TOOL_F_U8:
			*p = (uint8_t)v;
			break;
		case TOOL_F_U32: {
			uint32_t u = (uint32_t)v;
			memcpy(p, &u, sizeof(u));
			break;
		}
		case TOOL_F_ID:
			memcpy(p, &v, sizeof(v));
			break;
		case TOOL_F_BYTES:
			break;
	}
}

json_t *tool_json_id(uint64_t id)
{
	char text[SRUP_ID_TEXT_MAX];
	if (srup_id_format(id, text, sizeof text) != SRUP_OK) {
		return json_null();
	}
	return json_string(text);
}

json_t *tool_json_seq(uint64_t seq)
{
	char text[24];
	if (seq <= (uint64_t)LLONG_MAX) {
		return json_integer((json_int_t)seq);
	}
	snprintf(text, sizeof text, "0x%" PRIx64, seq);
	return json_string(text);
}

const char *tool_json_kind(const json_t *v)
{
	switch (json_typeof(v)) {
		case JSON_OBJECT:
			return "object";
		case JSON_ARRAY:
			return "array";
		case JSON_STRING:
			return "string";
		case JSON_INTEGER:
			return "integer";
		case JSON_REAL:
			return "number with a fraction or exponent";
		case JSON_TRUE:
		case JSON_FALSE:
			return "boolean";
		case JSON_NULL:
		default:
			return "null";
	}
}

int tool_json_print(const json_t *v)
{
	if (json_dumpf(v, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0 || putchar('\n') == EOF ||
	    fflush(stdout) != 0 || ferror(stdout)) {
		return -1;
	}
	return 0;
}

int tool_parse_duration(const char *s, uint64_t max, uint64_t *secs)
{
	uint64_t total = 0;

	if (strcmp(s, "0") == 0) {
		*secs = 0;
		return 0;
	}
	if (*s == '\0') {
		return -1;
	}
	while (*s != '\0') {
		uint64_t n = 0;
		uint64_t unit;
		const char *start = s;

		while (*s >= '0' && *s <= '9') {
			if (n > UINT64_C(1000000000)) {
				return -1;
			}
			n = n * 10 + (uint64_t)(*s - '0');
			s++;
		}
		if (s == start) {
			return -1;
		}
		switch (*s) {
			case 's':
				unit = 1;
				break;
			case 'm':
				unit = 60;
				break;
			case 'h':
				unit = 3600;
				break;
			case 'd':
				unit = 86400;
				break;
			case 'w':
				unit = 7 * 86400;
				break;
			default:
				return -1;
		}
		s++;
		total += n * unit;
		if (total > max) {
			return -1;
		}
	}
	*secs = total;
	return 0;
}
