/* SPDX-License-Identifier: MIT
 * json.c - strict JSON reader (RFC 8259, no extensions) and one-line object writer for `srup`.
 * The reader recurses at most JSON_DEPTH_MAX levels and caps members per container; it never
 * reads past the given length and needs no NUL terminator. */
#include <stdlib.h>
#include <string.h>

#include "json.h"

#define JSON_MEMBERS_MAX 4096u /* per array or object: keeps the duplicate-key check cheap */

struct parser {
	const char *s;
	size_t len;
	size_t pos;
	size_t line;
	size_t line_start; /* offset of the first byte of the current line */
	unsigned depth;
	struct json_error *err;
};

static int fail_at(struct parser *p, size_t pos, const char *msg)
{
	if (p->err != NULL) {
		p->err->line = p->line;
		p->err->col = pos >= p->line_start ? pos - p->line_start + 1 : 1;
		snprintf(p->err->msg, sizeof(p->err->msg), "%s", msg);
	}
	return -1;
}

static int fail(struct parser *p, const char *msg)
{
	return fail_at(p, p->pos, msg);
}

static void skip_ws(struct parser *p)
{
	while (p->pos < p->len) {
		char c = p->s[p->pos];
		if (c == '\n') {
			p->line++;
			p->line_start = p->pos + 1;
		} else if (c != ' ' && c != '\t' && c != '\r') {
			return;
		}
		p->pos++;
	}
}

static void value_free_inner(struct json_value *v)
{
	if (v == NULL) {
		return;
	}
	free(v->str);
	for (size_t i = 0; i < v->n; i++) {
		if (v->items != NULL) {
			value_free_inner(&v->items[i]);
		}
		if (v->keys != NULL) {
			free(v->keys[i]);
		}
	}
	free(v->items);
	free(v->keys);
	memset(v, 0, sizeof(*v));
}

void json_free(struct json_value *v)
{
	value_free_inner(v);
	free(v);
}

/* A growable byte buffer for decoded strings. */
struct sbuf {
	char *p;
	size_t n;
	size_t cap;
};

static int sbuf_put(struct sbuf *b, const char *src, size_t n)
{
	if (b->cap - b->n < n + 1) {
		size_t ncap = b->cap == 0 ? 32 : b->cap;
		while (ncap - b->n < n + 1) {
			ncap *= 2;
		}
		char *np = realloc(b->p, ncap);
		if (np == NULL) {
			return -1;
		}
		b->p = np;
		b->cap = ncap;
	}
	memcpy(b->p + b->n, src, n);
	b->n += n;
	b->p[b->n] = '\0';
	return 0;
}

static int utf8_put(struct sbuf *b, uint32_t cp)
{
	char u[4];
	size_t n;

	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xC0 | (cp >> 6));
		u[1] = (char)(0x80 | (cp & 0x3F));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xE0 | (cp >> 12));
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		u[2] = (char)(0x80 | (cp & 0x3F));
		n = 3;
	} else {
		u[0] = (char)(0xF0 | (cp >> 18));
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
		u[3] = (char)(0x80 | (cp & 0x3F));
		n = 4;
	}
	return sbuf_put(b, u, n);
}

static int read_hex4(struct parser *p, uint32_t *out)
{
	uint32_t v = 0;

	if (p->len - p->pos < 4) {
		return fail(p, "truncated \\u escape");
	}
	for (size_t i = 0; i < 4; i++) {
		char c = p->s[p->pos + i];
		uint32_t d;
		if (c >= '0' && c <= '9') {
			d = (uint32_t)(c - '0');
		} else if (c >= 'a' && c <= 'f') {
			d = (uint32_t)(c - 'a' + 10);
		} else if (c >= 'A' && c <= 'F') {
			d = (uint32_t)(c - 'A' + 10);
		} else {
			return fail_at(p, p->pos + i, "bad hex digit in \\u escape");
		}
		v = v << 4 | d;
	}
	p->pos += 4;
	*out = v;
	return 0;
}

/* Length of the valid UTF-8 sequence starting at s[0, left) whose lead byte is >= 0x80,
 * or 0 if it is not valid (overlong, surrogate, above U+10FFFF, truncated). */
static size_t utf8_seq_len(const unsigned char *s, size_t left)
{
	unsigned char c = s[0];
	size_t n;
	unsigned char lo = 0x80;
	unsigned char hi = 0xBF;

	if (c >= 0xC2 && c <= 0xDF) {
		n = 2;
	} else if (c >= 0xE0 && c <= 0xEF) {
		n = 3;
		if (c == 0xE0) {
			lo = 0xA0;
		} else if (c == 0xED) {
			hi = 0x9F;
		}
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4;
		if (c == 0xF0) {
			lo = 0x90;
		} else if (c == 0xF4) {
			hi = 0x8F;
		}
	} else {
		return 0;
	}
	if (left < n) {
		return 0;
	}
	if (s[1] < lo || s[1] > hi) {
		return 0;
	}
	for (size_t i = 2; i < n; i++) {
		if (s[i] < 0x80 || s[i] > 0xBF) {
			return 0;
		}
	}
	return n;
}

/* p->pos is at the opening quote. On success *out is malloc'd and NUL-terminated. */
static int parse_string(struct parser *p, char **out, size_t *out_len)
{
	struct sbuf b = {NULL, 0, 0};

	*out = NULL;
	*out_len = 0;
	p->pos++;
	if (sbuf_put(&b, "", 0) != 0) {
		return fail(p, "out of memory");
	}
	for (;;) {
		if (p->pos >= p->len) {
			free(b.p);
			return fail(p, "unterminated string");
		}
		unsigned char c = (unsigned char)p->s[p->pos];
		if (c == '"') {
			p->pos++;
			break;
		}
		if (c < 0x20) {
			free(b.p);
			return fail(p, "control character in string (escape it)");
		}
		if (c >= 0x80) {
			size_t n = utf8_seq_len((const unsigned char *)p->s + p->pos, p->len - p->pos);
			if (n == 0) {
				free(b.p);
				return fail(p, "invalid UTF-8 in string");
			}
			if (sbuf_put(&b, p->s + p->pos, n) != 0) {
				free(b.p);
				return fail(p, "out of memory");
			}
			p->pos += n;
			continue;
		}
		if (c != '\\') {
			if (sbuf_put(&b, p->s + p->pos, 1) != 0) {
				free(b.p);
				return fail(p, "out of memory");
			}
			p->pos++;
			continue;
		}
		/* An escape. */
		size_t esc_pos = p->pos;
		p->pos++;
		if (p->pos >= p->len) {
			free(b.p);
			return fail(p, "unterminated string");
		}
		char e = p->s[p->pos];
		p->pos++;
		const char *lit = NULL;
		switch (e) {
			case '"':
				lit = "\"";
				break;
			case '\\':
				lit = "\\";
				break;
			case '/':
				lit = "/";
				break;
			case 'b':
				lit = "\b";
				break;
			case 'f':
				lit = "\f";
				break;
			case 'n':
				lit = "\n";
				break;
			case 'r':
				lit = "\r";
				break;
			case 't':
				lit = "\t";
				break;
			case 'u':
				break;
			default:
				free(b.p);
				return fail_at(p, esc_pos, "unknown escape in string");
		}
		int rc;
		if (lit != NULL) {
			rc = sbuf_put(&b, lit, 1);
		} else {
			uint32_t cp;
			if (read_hex4(p, &cp) != 0) {
				free(b.p);
				return -1;
			}
			if (cp >= 0xDC00 && cp <= 0xDFFF) {
				free(b.p);
				return fail_at(p, esc_pos, "unpaired low surrogate in \\u escape");
			}
			if (cp >= 0xD800 && cp <= 0xDBFF) {
				uint32_t lo;
				if (p->len - p->pos < 2 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u') {
					free(b.p);
					return fail_at(p, esc_pos, "unpaired high surrogate in \\u escape");
				}
				p->pos += 2;
				if (read_hex4(p, &lo) != 0) {
					free(b.p);
					return -1;
				}
				if (lo < 0xDC00 || lo > 0xDFFF) {
					free(b.p);
					return fail_at(p, esc_pos, "unpaired high surrogate in \\u escape");
				}
				cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
			}
			if (cp == 0) {
				free(b.p);
				return fail_at(p, esc_pos, "\\u0000 is not allowed in strings");
			}
			rc = utf8_put(&b, cp);
		}
		if (rc != 0) {
			free(b.p);
			return fail(p, "out of memory");
		}
	}
	*out = b.p;
	*out_len = b.n;
	return 0;
}

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int parse_number(struct parser *p, struct json_value *v)
{
	size_t start = p->pos;

	if (p->s[p->pos] == '-') {
		p->pos++;
	}
	if (p->pos >= p->len || !is_digit(p->s[p->pos])) {
		return fail(p, "bad number: digit expected");
	}
	if (p->s[p->pos] == '0') {
		p->pos++;
		if (p->pos < p->len && is_digit(p->s[p->pos])) {
			return fail(p, "bad number: leading zero");
		}
	} else {
		while (p->pos < p->len && is_digit(p->s[p->pos])) {
			p->pos++;
		}
	}
	if (p->pos < p->len && p->s[p->pos] == '.') {
		p->pos++;
		if (p->pos >= p->len || !is_digit(p->s[p->pos])) {
			return fail(p, "bad number: digit expected after '.'");
		}
		while (p->pos < p->len && is_digit(p->s[p->pos])) {
			p->pos++;
		}
	}
	if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
		p->pos++;
		if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-')) {
			p->pos++;
		}
		if (p->pos >= p->len || !is_digit(p->s[p->pos])) {
			return fail(p, "bad number: digit expected in exponent");
		}
		while (p->pos < p->len && is_digit(p->s[p->pos])) {
			p->pos++;
		}
	}
	size_t n = p->pos - start;
	v->str = malloc(n + 1);
	if (v->str == NULL) {
		return fail(p, "out of memory");
	}
	memcpy(v->str, p->s + start, n);
	v->str[n] = '\0';
	v->str_len = n;
	v->kind = JSON_NUMBER;
	return 0;
}

static int parse_literal(struct parser *p, struct json_value *v)
{
	static const struct {
		const char *text;
		enum json_kind kind;
		int boolean;
	} lits[] = {
	        {"true", JSON_BOOL, 1},
	        {"false", JSON_BOOL, 0},
	        {"null", JSON_NULL, 0},
	};

	for (size_t i = 0; i < sizeof(lits) / sizeof(lits[0]); i++) {
		size_t n = strlen(lits[i].text);
		if (p->len - p->pos >= n && memcmp(p->s + p->pos, lits[i].text, n) == 0) {
			p->pos += n;
			v->kind = lits[i].kind;
			v->boolean = lits[i].boolean;
			return 0;
		}
	}
	return fail(p, "unexpected word (expected true, false or null)");
}

static int parse_value(struct parser *p, struct json_value *v);

/* Append a zeroed slot to v->items (and v->keys when with_key); returns its index. */
static int grow(struct parser *p, struct json_value *v, int with_key)
{
	if (v->n >= JSON_MEMBERS_MAX) {
		return fail(p, "too many members in one array or object");
	}
	struct json_value *ni = realloc(v->items, (v->n + 1) * sizeof(*ni));
	if (ni == NULL) {
		return fail(p, "out of memory");
	}
	v->items = ni;
	memset(&v->items[v->n], 0, sizeof(*ni));
	if (with_key) {
		char **nk = realloc(v->keys, (v->n + 1) * sizeof(*nk));
		if (nk == NULL) {
			return fail(p, "out of memory");
		}
		v->keys = nk;
		v->keys[v->n] = NULL;
	}
	v->n++;
	return 0;
}

static int parse_array(struct parser *p, struct json_value *v)
{
	v->kind = JSON_ARRAY;
	p->pos++;
	skip_ws(p);
	if (p->pos < p->len && p->s[p->pos] == ']') {
		p->pos++;
		return 0;
	}
	for (;;) {
		if (grow(p, v, 0) != 0) {
			return -1;
		}
		if (parse_value(p, &v->items[v->n - 1]) != 0) {
			return -1;
		}
		skip_ws(p);
		if (p->pos >= p->len) {
			return fail(p, "unterminated array");
		}
		if (p->s[p->pos] == ',') {
			p->pos++;
			continue;
		}
		if (p->s[p->pos] == ']') {
			p->pos++;
			return 0;
		}
		return fail(p, "expected ',' or ']' in array");
	}
}

static int parse_object(struct parser *p, struct json_value *v)
{
	v->kind = JSON_OBJECT;
	p->pos++;
	skip_ws(p);
	if (p->pos < p->len && p->s[p->pos] == '}') {
		p->pos++;
		return 0;
	}
	for (;;) {
		skip_ws(p);
		if (p->pos >= p->len || p->s[p->pos] != '"') {
			return fail(p, "expected a member name in double quotes");
		}
		size_t key_pos = p->pos;
		if (grow(p, v, 1) != 0) {
			return -1;
		}
		char *key = NULL;
		size_t key_len = 0;
		if (parse_string(p, &key, &key_len) != 0) {
			return -1;
		}
		v->keys[v->n - 1] = key;
		for (size_t i = 0; i + 1 < v->n; i++) {
			if (strcmp(v->keys[i], key) == 0) {
				return fail_at(p, key_pos, "duplicate member name");
			}
		}
		skip_ws(p);
		if (p->pos >= p->len || p->s[p->pos] != ':') {
			return fail(p, "expected ':' after member name");
		}
		p->pos++;
		if (parse_value(p, &v->items[v->n - 1]) != 0) {
			return -1;
		}
		skip_ws(p);
		if (p->pos >= p->len) {
			return fail(p, "unterminated object");
		}
		if (p->s[p->pos] == ',') {
			p->pos++;
			continue;
		}
		if (p->s[p->pos] == '}') {
			p->pos++;
			return 0;
		}
		return fail(p, "expected ',' or '}' in object");
	}
}

static int parse_value(struct parser *p, struct json_value *v)
{
	int rc;

	skip_ws(p);
	if (p->pos >= p->len) {
		return fail(p, "unexpected end of input");
	}
	v->line = p->line;
	v->col = p->pos - p->line_start + 1;
	char c = p->s[p->pos];
	switch (c) {
		case '{':
		case '[':
			if (p->depth >= JSON_DEPTH_MAX) {
				return fail(p, "nested too deeply");
			}
			p->depth++;
			rc = c == '{' ? parse_object(p, v) : parse_array(p, v);
			p->depth--;
			return rc;
		case '"':
			v->kind = JSON_STRING;
			return parse_string(p, &v->str, &v->str_len);
		case 't':
		case 'f':
		case 'n':
			return parse_literal(p, v);
		default:
			if (c == '-' || is_digit(c)) {
				return parse_number(p, v);
			}
			return fail(p, "unexpected character");
	}
}

int json_parse(const char *text, size_t len, struct json_value **out, struct json_error *err)
{
	struct parser p = {text, len, 0, 1, 0, 0, err};
	struct json_value *v = NULL;

	*out = NULL;
	if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
		p.pos = 3;
		p.line_start = 3;
	}
	v = calloc(1, sizeof(*v));
	if (v == NULL) {
		return fail(&p, "out of memory");
	}
	if (parse_value(&p, v) != 0) {
		json_free(v);
		return -1;
	}
	skip_ws(&p);
	if (p.pos != p.len) {
		json_free(v);
		return fail(&p, "unexpected text after the JSON value");
	}
	*out = v;
	return 0;
}

const struct json_value *json_get(const struct json_value *obj, const char *key)
{
	if (obj == NULL || obj->kind != JSON_OBJECT) {
		return NULL;
	}
	for (size_t i = 0; i < obj->n; i++) {
		if (strcmp(obj->keys[i], key) == 0) {
			return &obj->items[i];
		}
	}
	return NULL;
}

const char *json_kind_name(enum json_kind k)
{
	switch (k) {
		case JSON_NULL:
			return "null";
		case JSON_BOOL:
			return "boolean";
		case JSON_NUMBER:
			return "number";
		case JSON_STRING:
			return "string";
		case JSON_ARRAY:
			return "array";
		case JSON_OBJECT:
			return "object";
	}
	return "value";
}

int json_write_string(FILE *f, const char *s, size_t len)
{
	static const char digits[] = "0123456789abcdef";

	if (fputc('"', f) == EOF) {
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		int rc;
		if (c == '"' || c == '\\') {
			rc = fputc('\\', f) == EOF || fputc(c, f) == EOF;
		} else if (c < 0x20 || c == 0x7F) {
			char esc[7] = {'\\', 'u', '0', '0', digits[c >> 4], digits[c & 0x0F], '\0'};
			rc = fputs(esc, f) == EOF;
		} else {
			rc = fputc(c, f) == EOF;
		}
		if (rc) {
			return -1;
		}
	}
	return fputc('"', f) == EOF ? -1 : 0;
}

void json_out_begin(struct json_out *w, FILE *f)
{
	w->f = f;
	w->first = 1;
	w->failed = fputc('{', f) == EOF;
}

static void out_key(struct json_out *w, const char *key)
{
	if (!w->first && fputs(", ", w->f) == EOF) {
		w->failed = 1;
	}
	w->first = 0;
	if (json_write_string(w->f, key, strlen(key)) != 0 || fputs(": ", w->f) == EOF) {
		w->failed = 1;
	}
}

void json_out_string(struct json_out *w, const char *key, const char *val)
{
	out_key(w, key);
	if (json_write_string(w->f, val, strlen(val)) != 0) {
		w->failed = 1;
	}
}

void json_out_hex(struct json_out *w, const char *key, const uint8_t *p, size_t len)
{
	static const char digits[] = "0123456789abcdef";

	out_key(w, key);
	if (fputc('"', w->f) == EOF) {
		w->failed = 1;
	}
	for (size_t i = 0; i < len; i++) {
		if (fputc(digits[p[i] >> 4], w->f) == EOF || fputc(digits[p[i] & 0x0F], w->f) == EOF) {
			w->failed = 1;
			break;
		}
	}
	if (fputc('"', w->f) == EOF) {
		w->failed = 1;
	}
}

void json_out_uint(struct json_out *w, const char *key, uint64_t v)
{
	out_key(w, key);
	if (fprintf(w->f, "%llu", (unsigned long long)v) < 0) {
		w->failed = 1;
	}
}

void json_out_null(struct json_out *w, const char *key)
{
	out_key(w, key);
	if (fputs("null", w->f) == EOF) {
		w->failed = 1;
	}
}

int json_out_end(struct json_out *w)
{
	if (fputs("}\n", w->f) == EOF || fflush(w->f) != 0 || ferror(w->f)) {
		w->failed = 1;
	}
	return w->failed ? -1 : 0;
}
