/* SPDX-License-Identifier: MIT
 * cmd_encode.c - `srup encode`: build one SRUP v5 message from a JSON object (the form
 * `srup decode` prints), sign it with a private key and write the bytes.
 * The JSON is untrusted: strict syntax, every member checked for kind, range and length. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include <srup/srup.h>

#include <jansson.h>

#include "cmds.h"
#include "util.h"

/* The largest JSON accepted: a maximal message as hex with room for formatting. */
#define JSON_INPUT_MAX (4u * (size_t)SRUP_MSG_MAX)
/* The plaintext an envelope of SRUP_ENCRYPTED_MAX bytes can hold with any allowed key. */
#define PLAINTEXT_MAX SRUP_ENCRYPTED_MAX
#define OWNED_MAX     16

static void encode_help(void)
{
	printf("usage: srup encode --key PRIV.pem [--encrypt-to PUB.pem] [--hex] [JSONFILE|-]\n"
	       "\n"
	       "Read one JSON object (from JSONFILE, or standard input when it is '-' or absent),\n"
	       "build the SRUP v5 message it describes, sign it (RSASSA-PKCS1-v1_5, SHA-256) with\n"
	       "the private key and write the message bytes to standard output.\n"
	       "\n"
	       "  --key PRIV.pem        signing key (required)\n"
	       "  --encrypt-to PUB.pem  build the encrypted field from plaintext_hex, sealed to this\n"
	       "                        public key (otherwise encrypted_hex is used as it is)\n"
	       "  --hex                 write lowercase hex and a newline instead of binary\n"
	       "                        (binary is never written to a terminal)\n"
	       "\n"
	       "JSON members (the output of srup decode is valid input):\n"
	       "  type            type name, e.g. \"ACTION\"      } at least one; they must agree\n"
	       "  msg_type        type byte, e.g. \"0x04\"        }\n"
	       "  version         optional; must be 5\n"
	       "  sequence_id, sender_id   hex string (\"0x\" optional, 1..16 digits), or a JSON\n"
	       "                  integer (0..2^63-1; larger values as hex strings)\n"
	       "  token_hex       the token, 1..%u bytes as hex\n"
	       "  every body field of the type, and no other:\n"
	       "    url_hex digest_hex data_id_hex data_hex encrypted_hex   hex strings\n"
	       "    status action_id req_id (0..255), count device_sequence (0..2^32-1): JSON\n"
	       "      integers or \"0x..\" strings; status also takes a name (\"JOIN_SUCCESS\")\n"
	       "    device_id observer_id joining_device_id target_id source_id: as sender_id\n"
	       "  plaintext_hex   with --encrypt-to: the plaintext (hex); ignored otherwise\n"
	       "  signature_hex, signature: ignored (the message is always signed afresh)\n"
	       "  name, type_name, direction, data_kind, data_value, *_ascii, *_includes_nul:\n"
	       "                  descriptive members of the reference vectors; ignored\n"
	       "Unknown members, duplicates and members the type does not carry are errors.\n"
	       "\n"
	       "Exit codes: 0 ok, 2 the JSON is malformed or does not describe a valid message,\n"
	       "3 usage, I/O, key or signing errors.\n",
	       SRUP_TOKEN_MAX);
}

struct enc {
	struct srup_msg m;
	uint8_t *owned[OWNED_MAX]; /* decoded hex buffers, freed at the end */
	size_t n_owned;
	uint8_t *plaintext;
	size_t plaintext_len;
	int have_plaintext;
};

/* Report a problem with one JSON member: "srup encode: <name>: ...". */
static int member_err(const json_t *v, const char *name, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static int member_err(const json_t *v, const char *name, const char *fmt, ...)
{
	char what[192];
	va_list ap;

	(void)v;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	tool_err("encode", "%s: %s", name, what);
	return -1;
}

/* A hex string member into a new buffer of at most max bytes (kept in e->owned unless out_own
 * is given, in which case the caller owns it). */
static int get_hex(struct enc *e, const json_t *v, const char *name, size_t max,
                   struct srup_bytes *out, uint8_t **out_own)
{
	uint8_t *buf;
	size_t n = 0;
	size_t len = json_string_length(v);

	if (!json_is_string(v)) {
		return member_err(v, name, "must be a hex string, not a %s", tool_json_kind(v));
	}
	if (len % 2 != 0) {
		return member_err(v, name, "odd number of hex digits");
	}
	if (len / 2 > max) {
		return member_err(v, name, "%zu bytes is over the limit of %zu", len / 2, max);
	}
	buf = malloc(len / 2 + 1);
	if (buf == NULL) {
		return member_err(v, name, "out of memory");
	}
	if (srup_hex_decode(json_string_value(v), len, buf, len / 2, &n) != SRUP_OK) {
		free(buf);
		return member_err(v, name, "not a hex string (digits 0-9, a-f only)");
	}
	if (out_own != NULL) {
		*out_own = buf;
	} else {
		if (e->n_owned >= OWNED_MAX) {
			free(buf);
			return member_err(v, name, "too many fields");
		}
		e->owned[e->n_owned++] = buf;
	}
	out->p = n > 0 ? buf : NULL;
	out->len = n;
	return 0;
}

/* An identity or sequence number: hex string (optional 0x, 1..16 digits) or JSON integer
 * (jansson's range, 0..2^63-1: larger values as hex strings, as srup decode writes them). */
static int get_id(const json_t *v, const char *name, uint64_t *out)
{
	if (json_is_string(v)) {
		if (srup_id_parse(json_string_value(v), json_string_length(v), out) != SRUP_OK) {
			return member_err(v, name, "must be 1 to 16 hex digits (\"0x\" optional)");
		}
		return 0;
	}
	if (json_is_integer(v)) {
		if (json_integer_value(v) < 0) {
			return member_err(v, name, "must not be negative");
		}
		*out = (uint64_t)json_integer_value(v);
		return 0;
	}
	return member_err(v, name, "must be a hex string or an integer, not a %s", tool_json_kind(v));
}

/* A small unsigned field: JSON integer, or "0x.." string; status also takes its name. */
static int get_small(const json_t *v, const char *name, uint64_t max, int is_status, uint64_t *out)
{
	if (json_is_integer(v)) {
		if (json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) > max) {
			return member_err(v, name, "must be an integer from 0 to %llu",
			                  (unsigned long long)max);
		}
		*out = (uint64_t)json_integer_value(v);
		return 0;
	}
	if (json_is_string(v)) {
		const char *str = json_string_value(v);
		size_t len = json_string_length(v);
		if (len > 2 && str[0] == '0' && (str[1] == 'x' || str[1] == 'X')) {
			if (srup_id_parse(str, len, out) != SRUP_OK || *out > max) {
				return member_err(v, name, "must be from 0x0 to 0x%llx", (unsigned long long)max);
			}
			return 0;
		}
		if (is_status) {
			for (unsigned s = 0; s <= 0xFF; s++) {
				const char *sn = srup_status_name(s);
				if (sn != NULL && strlen(sn) == len && strcmp(sn, str) == 0) {
					*out = s;
					return 0;
				}
			}
			return member_err(v, name, "unknown status name \"%.40s\"", str);
		}
	}
	return member_err(v, name, "must be an integer from 0 to %llu", (unsigned long long)max);
}

static int get_type(const json_t *obj, unsigned *type)
{
	const json_t *tv = json_object_get(obj, "type");
	const json_t *mv = json_object_get(obj, "msg_type");
	const char *tname = json_string_value(tv);
	int from_name = -1;
	uint64_t from_byte = 0;

	if (tv == NULL && mv == NULL) {
		return member_err(NULL, "type", "missing (give \"type\" or \"msg_type\")");
	}
	if (tv != NULL) {
		if (tname == NULL || strlen(tname) != json_string_length(tv)) {
			return member_err(tv, "type", "must be a type name such as \"ACTION\"");
		}
		from_name = srup_msg_type_from_name(tname);
		if (from_name < 0 || !srup_msg_type_is_valid((unsigned)from_name)) {
			return member_err(tv, "type", "\"%.40s\" is not a SRUP v5 message type", tname);
		}
		*type = (unsigned)from_name;
	}
	if (mv != NULL) {
		if (get_small(mv, "msg_type", 0xFF, 0, &from_byte) != 0) {
			return -1;
		}
		if (!srup_msg_type_is_valid((unsigned)from_byte)) {
			return member_err(mv, "msg_type", "0x%02x is not a SRUP v5 message type",
			                  (unsigned)from_byte);
		}
		if (from_name >= 0 && (unsigned)from_name != from_byte) {
			return member_err(mv, "msg_type", "0x%02x does not match type %s", (unsigned)from_byte,
			                  tname);
		}
		*type = (unsigned)from_byte;
	}
	return 0;
}

/* Descriptive members that the reference vectors (tests/vectors/vectors.json "fields") carry
 * beside the wire fields: accepted and ignored, so a vector's fields encode as they are. */
static int is_descriptive(const char *k)
{
	static const char *const names[] = {"name", "type_name", "direction", "data_kind",
	                                    "data_value"};
	static const char *const suffixes[] = {"_ascii", "_includes_nul"};
	size_t kl = strlen(k);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(k, names[i]) == 0) {
			return 1;
		}
	}
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		size_t sl = strlen(suffixes[i]);
		if (kl > sl && strcmp(k + kl - sl, suffixes[i]) == 0) {
			return 1;
		}
	}
	return 0;
}

static const struct tool_field *field_by_name(const char *name)
{
	for (size_t i = 0; i < tool_fields_count; i++) {
		if (strcmp(tool_fields[i].json, name) == 0) {
			return &tool_fields[i];
		}
	}
	return NULL;
}

/* Fill e->m from the JSON object. encrypt says whether --encrypt-to was given. Returns 0,
 * -1 if the JSON does not describe a valid message, -2 if --encrypt-to does not apply. */
static int build(struct enc *e, const json_t *obj, int encrypt)
{
	static const char *const header_names[] = {"version",       "type",      "msg_type",
	                                           "sequence_id",   "sender_id", "token_hex",
	                                           "signature_hex", "signature", "plaintext_hex"};
	unsigned type = 0;
	uint64_t v = 0;
	const json_t *jv;
	const char *k;
	json_t *mv;

	if (!json_is_object(obj)) {
		return member_err(obj, "input", "must be a JSON object, not a %s", tool_json_kind(obj));
	}
	if (get_type(obj, &type) != 0) {
		return -1;
	}
	const char *tname = srup_msg_type_name(type);
	unsigned mask = srup_msg_fields(type);
	if (encrypt && (mask & SRUP_F_ENCRYPTED) == 0) {
		tool_err("encode", "--encrypt-to: %s has no encrypted field", tname);
		return -2;
	}

	/* Every member must be known, and body members must belong to this type. */
	json_object_foreach((json_t *)obj, k, mv)
	{
		int known = 0;
		for (size_t j = 0; j < sizeof(header_names) / sizeof(header_names[0]); j++) {
			if (strcmp(k, header_names[j]) == 0) {
				known = 1;
			}
		}
		if (known || is_descriptive(k)) {
			continue;
		}
		const struct tool_field *f = field_by_name(k);
		if (f == NULL) {
			return member_err(mv, "input", "unknown member \"%.40s\"", k);
		}
		if ((mask & f->bit) == 0) {
			return member_err(mv, k, "is not a field of %s", tname);
		}
	}

	memset(&e->m, 0, sizeof(e->m));
	e->m.version = SRUP_VERSION;
	e->m.type = (uint8_t)type;
	jv = json_object_get(obj, "version");
	if (jv != NULL) {
		if (get_small(jv, "version", 0xFF, 0, &v) != 0) {
			return -1;
		}
		if (v != SRUP_VERSION) {
			return member_err(jv, "version", "only SRUP version 5 is supported");
		}
	}
	jv = json_object_get(obj, "sequence_id");
	if (jv == NULL) {
		return member_err(NULL, "sequence_id", "missing");
	}
	if (get_id(jv, "sequence_id", &e->m.sequence_id) != 0) {
		return -1;
	}
	jv = json_object_get(obj, "sender_id");
	if (jv == NULL) {
		return member_err(NULL, "sender_id", "missing");
	}
	if (get_id(jv, "sender_id", &e->m.sender_id) != 0) {
		return -1;
	}
	jv = json_object_get(obj, "token_hex");
	if (jv == NULL) {
		return member_err(NULL, "token_hex", "missing");
	}
	if (get_hex(e, jv, "token_hex", SRUP_TOKEN_MAX, &e->m.token, NULL) != 0) {
		return -1;
	}
	if (e->m.token.len == 0) {
		return member_err(jv, "token_hex", "the token must not be empty");
	}

	for (size_t i = 0; i < tool_fields_count; i++) {
		const struct tool_field *f = &tool_fields[i];
		if ((mask & f->bit) == 0) {
			continue;
		}
		jv = json_object_get(obj, f->json);
		if (f->bit == SRUP_F_ENCRYPTED && encrypt) {
			/* Sealed later from plaintext_hex; a stale encrypted_hex is ignored. */
			continue;
		}
		if (jv == NULL) {
			if (f->bit == SRUP_F_ENCRYPTED && json_object_get(obj, "plaintext_hex") != NULL) {
				return member_err(NULL, f->json,
				                  "missing (plaintext_hex is only used with --encrypt-to)");
			}
			return member_err(NULL, f->json, "missing: %s carries it", tname);
		}
		switch (f->kind) {
			case TOOL_F_BYTES: {
				struct srup_bytes b = {NULL, 0};
				if (get_hex(e, jv, f->json, f->max, &b, NULL) != 0) {
					return -1;
				}
				tool_field_set_bytes(&e->m, f, b);
				break;
			}
			case TOOL_F_U8:
			case TOOL_F_U32:
				if (get_small(jv, f->json, f->kind == TOOL_F_U8 ? 0xFFu : 0xFFFFFFFFu,
				              f->bit == SRUP_F_STATUS, &v) != 0) {
					return -1;
				}
				tool_field_set_uint(&e->m, f, v);
				break;
			case TOOL_F_ID:
				if (get_id(jv, f->json, &v) != 0) {
					return -1;
				}
				tool_field_set_uint(&e->m, f, v);
				break;
		}
	}

	if (encrypt) {
		struct srup_bytes b = {NULL, 0};
		jv = json_object_get(obj, "plaintext_hex");
		if (jv == NULL) {
			return member_err(NULL, "plaintext_hex", "missing (needed with --encrypt-to)");
		}
		if (get_hex(e, jv, "plaintext_hex", PLAINTEXT_MAX, &b, &e->plaintext) != 0) {
			return -1;
		}
		e->plaintext_len = b.len;
		e->have_plaintext = 1;
	}
	return 0;
}

static int load_key(const char *path, enum srup_key_kind kind, const char *opt,
                    struct srup_key **key)
{
	struct srup_diag diag;

	memset(&diag, 0, sizeof(diag));
	enum srup_err e = srup_key_load_file(path, kind, key, &diag);
	if (e != SRUP_OK) {
		tool_err("encode", "%s %s: %s%s%s", opt, path, srup_strerror(e),
		         diag.detail[0] != '\0' ? ": " : "", diag.detail);
		return -1;
	}
	return 0;
}

int srup_cmd_encode(int argc, char **argv)
{
	const char *key_path = NULL;
	const char *enc_path = NULL;
	int hex = 0;
	const struct tool_opt opts[] = {
	        {"key", &key_path, NULL},
	        {"encrypt-to", &enc_path, NULL},
	        {"hex", NULL, &hex},
	};
	const char *pos[1] = {NULL};
	size_t n_pos = 0;
	struct srup_key *key = NULL;
	struct srup_key *enc_key = NULL;
	uint8_t *text = NULL;
	size_t text_len = 0;
	json_t *root = NULL;
	json_error_t jerr;
	size_t skip = 0;
	uint8_t *blob = NULL;
	size_t blob_len = 0;
	uint8_t *out = NULL;
	size_t out_len = 0;
	struct enc e;
	struct srup_diag diag;
	char errbuf[256];
	int rc = SRUP_EXIT_USAGE;

	memset(&e, 0, sizeof(e));
	enum tool_parse pr =
	        tool_parse_args(argc, argv, opts, sizeof(opts) / sizeof(opts[0]), pos, 1, &n_pos);
	if (pr == TOOL_PARSE_HELP) {
		encode_help();
		return SRUP_EXIT_OK;
	}
	if (pr != TOOL_PARSE_OK) {
		return SRUP_EXIT_USAGE;
	}
	if (key_path == NULL) {
		tool_err("encode", "--key PRIV.pem is required (see srup encode --help)");
		return SRUP_EXIT_USAGE;
	}
	if (!hex && isatty(STDOUT_FILENO)) {
		tool_err("encode", "refusing to write binary to a terminal (use --hex or redirect)");
		return SRUP_EXIT_USAGE;
	}
	if (load_key(key_path, SRUP_KEY_PRIVATE, "--key", &key) != 0) {
		goto out;
	}
	if (enc_path != NULL && load_key(enc_path, SRUP_KEY_PUBLIC, "--encrypt-to", &enc_key) != 0) {
		goto out;
	}

	enum tool_read rr =
	        tool_read_all(pos[0], JSON_INPUT_MAX, &text, &text_len, errbuf, sizeof(errbuf));
	if (rr == TOOL_READ_TOO_BIG) {
		tool_err("encode", "malformed JSON: %s", errbuf);
		rc = SRUP_EXIT_MALFORM;
		goto out;
	}
	if (rr != TOOL_READ_OK) {
		tool_err("encode", "%s", errbuf);
		goto out;
	}
	/* strict JSON (RFC 8259, UTF-8, no key twice, no NUL in strings) by jansson; a UTF-8 byte
	 * order mark before it is skipped, as editors write one */
	if (text_len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0) {
		skip = 3;
	}
	root = json_loadb((const char *)text + skip, text_len - skip, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		tool_err("encode", "malformed JSON at line %d, column %d: %s", jerr.line, jerr.column,
		         jerr.text);
		rc = SRUP_EXIT_MALFORM;
		goto out;
	}
	int br = build(&e, root, enc_key != NULL);
	if (br != 0) {
		rc = br == -2 ? SRUP_EXIT_USAGE : SRUP_EXIT_MALFORM;
		goto out;
	}
	if (enc_key != NULL) {
		memset(&diag, 0, sizeof(diag));
		enum srup_err se =
		        srup_envelope_seal(enc_key, e.plaintext, e.plaintext_len, &blob, &blob_len, &diag);
		if (se != SRUP_OK) {
			tool_err("encode", "cannot encrypt plaintext_hex: %s%s%s", srup_strerror(se),
			         diag.detail[0] != '\0' ? ": " : "", diag.detail);
			goto out;
		}
		if (blob_len > SRUP_ENCRYPTED_MAX) {
			tool_err("encode", "the encrypted field would be %zu bytes, over the limit of %u",
			         blob_len, SRUP_ENCRYPTED_MAX);
			rc = SRUP_EXIT_MALFORM;
			goto out;
		}
		e.m.encrypted.p = blob;
		e.m.encrypted.len = blob_len;
	}

	size_t cap = srup_msg_encoded_len(&e.m, srup_key_size(key));
	if (cap == 0) {
		tool_err("encode", "the message cannot be encoded (a field is over its limit)");
		rc = SRUP_EXIT_MALFORM;
		goto out;
	}
	out = malloc(cap);
	if (out == NULL) {
		tool_err("encode", "out of memory");
		goto out;
	}
	memset(&diag, 0, sizeof(diag));
	enum srup_err ee = srup_msg_sign_encode(&e.m, key, out, cap, &out_len, &diag);
	if (ee != SRUP_OK) {
		tool_err("encode", "cannot sign the message: %s%s%s", srup_strerror(ee),
		         diag.detail[0] != '\0' ? ": " : "", diag.detail);
		rc = ee == SRUP_ERR_FIELD_LEN ? SRUP_EXIT_MALFORM : SRUP_EXIT_USAGE;
		goto out;
	}
	int wr;
	if (hex) {
		wr = tool_hex_write(stdout, out, out_len);
		if (wr == 0 && fputc('\n', stdout) == EOF) {
			wr = -1;
		}
		if (wr == 0) {
			wr = tool_write_all(stdout, NULL, 0);
		}
	} else {
		wr = tool_write_all(stdout, out, out_len);
	}
	if (wr != 0) {
		tool_err("encode", "cannot write to standard output");
		goto out;
	}
	rc = SRUP_EXIT_OK;
out:
	for (size_t i = 0; i < e.n_owned; i++) {
		free(e.owned[i]);
	}
	if (e.plaintext != NULL) {
		OPENSSL_cleanse(e.plaintext, e.plaintext_len);
		free(e.plaintext);
	}
	free(blob);
	free(out);
	json_decref(root);
	if (text != NULL) {
		/* The JSON may carry a plaintext meant to be encrypted. */
		OPENSSL_cleanse(text, text_len);
		free(text);
	}
	srup_key_free(key);
	srup_key_free(enc_key);
	return rc;
}
