/* SPDX-License-Identifier: MIT
 * cmd_decode.c - `srup decode`: strictly parse one SRUP message, optionally verify its
 * signature and open its encrypted field, and print it as one JSON object.
 * Never prints JSON for a malformed message; the exit code says what was found (cmds.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include <srup/srup.h>

#include <jansson.h>

#include "cmds.h"
#include "util.h"

/* Hex input: two digits per byte plus generous room for line breaks and indentation. */
#define HEX_INPUT_MAX (4u * (size_t)SRUP_MSG_MAX)

static void decode_help(void)
{
	printf("usage: srup decode [--key PUB.pem] [--decrypt-key PRIV.pem] [--hex] [FILE|-]\n"
	       "\n"
	       "Strictly parse one SRUP v5 message (from FILE, or standard input when FILE is '-'\n"
	       "or absent) and print it as one JSON object on one line: version, type, msg_type,\n"
	       "sequence_id, sender_id, token_hex, every body field of the type (url_hex,\n"
	       "digest_hex, status, action_id, data_id_hex, data_hex, device_id, observer_id,\n"
	       "joining_device_id, encrypted_hex, target_id, source_id, count, device_sequence,\n"
	       "req_id), signature_hex and signature (\"valid\", \"invalid\" or \"unchecked\").\n"
	       "Ids as in the broker's audit log: lowercase hex text, no 0x, no leading zeros\n"
	       "(\"b9d077e223834cf6\"); sequence_id a JSON number, above 2^63-1 a \"0x\" hex string\n"
	       "(srup encode reads both).\n"
	       "\n"
	       "  --key PUB.pem          verify the signature with this public key (a private key\n"
	       "                         also works: its public half is used)\n"
	       "  --decrypt-key PRIV.pem open the encrypted field with this private key and add\n"
	       "                         plaintext_hex (types without an encrypted field ignore it)\n"
	       "  --hex                  the input is hex text (whitespace anywhere is ignored)\n"
	       "\n"
	       "Exit codes: 0 ok (signature valid or unchecked), 1 the signature does not verify\n"
	       "(the JSON is still printed, with \"signature\": \"invalid\"), 2 malformed message,\n"
	       "bad hex, or the encrypted field does not open (nothing printed on stdout),\n"
	       "3 usage, I/O or key errors.\n");
}

/* Load a key for option opt, reporting failures. */
static int load_key(const char *path, enum srup_key_kind kind, const char *opt,
                    struct srup_key **key)
{
	struct srup_diag diag;

	memset(&diag, 0, sizeof(diag));
	enum srup_err e = srup_key_load_file(path, kind, key, &diag);
	if (e != SRUP_OK) {
		tool_err("decode", "%s %s: %s%s%s", opt, path, srup_strerror(e),
		         diag.detail[0] != '\0' ? ": " : "", diag.detail);
		return -1;
	}
	return 0;
}

static void put_hex(json_t *o, const char *key, const uint8_t *p, size_t len)
{
	char *text = malloc(2 * len + 1);
	if (text != NULL && srup_hex_encode(p, len, text, 2 * len + 1) == SRUP_OK) {
		json_object_set_new(o, key, json_stringn(text, 2 * len));
	}
	free(text);
}

static int print_message(const struct srup_msg *m, const char *sig_state, const uint8_t *pt,
                         size_t pt_len, int have_pt)
{
	json_t *o = json_object();
	char msg_type[8];
	const char *name = srup_msg_type_name(m->type);
	unsigned mask = srup_msg_fields(m->type);
	int rc = -1;

	if (o == NULL) {
		return -1;
	}
	/* ids as canonical text, sequence numbers as numbers: as in the broker's audit log */
	json_object_set_new(o, "version", json_integer(m->version));
	json_object_set_new(o, "type", json_string(name != NULL ? name : "UNKNOWN"));
	snprintf(msg_type, sizeof(msg_type), "0x%02x", (unsigned)m->type);
	json_object_set_new(o, "msg_type", json_string(msg_type));
	json_object_set_new(o, "sequence_id", tool_json_seq(m->sequence_id));
	json_object_set_new(o, "sender_id", tool_json_id(m->sender_id));
	put_hex(o, "token_hex", m->token.p, m->token.len);
	for (size_t i = 0; i < tool_fields_count; i++) {
		const struct tool_field *f = &tool_fields[i];
		if ((mask & f->bit) == 0) {
			continue;
		}
		switch (f->kind) {
			case TOOL_F_BYTES: {
				struct srup_bytes b = tool_field_bytes(m, f);
				put_hex(o, f->json, b.p, b.len);
				break;
			}
			case TOOL_F_U8:
			case TOOL_F_U32:
				json_object_set_new(o, f->json, json_integer((json_int_t)tool_field_uint(m, f)));
				break;
			case TOOL_F_ID:
				json_object_set_new(o, f->json, tool_json_id(tool_field_uint(m, f)));
				break;
		}
		if (f->bit == SRUP_F_ENCRYPTED && have_pt) {
			put_hex(o, "plaintext_hex", pt, pt_len);
		}
	}
	put_hex(o, "signature_hex", m->signature.p, m->signature.len);
	json_object_set_new(o, "signature", json_string(sig_state));
	if (json_dumpf(o, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER) == 0 && putchar('\n') != EOF &&
	    fflush(stdout) == 0 && !ferror(stdout)) {
		rc = 0;
	}
	json_decref(o);
	return rc;
}

int srup_cmd_decode(int argc, char **argv)
{
	const char *key_path = NULL;
	const char *dec_path = NULL;
	int hex = 0;
	const struct tool_opt opts[] = {
	        {"key", &key_path, NULL},
	        {"decrypt-key", &dec_path, NULL},
	        {"hex", NULL, &hex},
	};
	const char *pos[1] = {NULL};
	size_t n_pos = 0;
	struct srup_key *key = NULL;
	struct srup_key *dec_key = NULL;
	uint8_t *input = NULL;
	size_t input_len = 0;
	uint8_t *msg_buf = NULL;
	size_t msg_len = 0;
	uint8_t *pt = NULL;
	size_t pt_len = 0;
	int have_pt = 0;
	int rc = SRUP_EXIT_USAGE;
	char errbuf[256];
	struct srup_msg m;
	struct srup_diag diag;
	const char *sig_state = "unchecked";

	enum tool_parse pr =
	        tool_parse_args(argc, argv, opts, sizeof(opts) / sizeof(opts[0]), pos, 1, &n_pos);
	if (pr == TOOL_PARSE_HELP) {
		decode_help();
		return SRUP_EXIT_OK;
	}
	if (pr != TOOL_PARSE_OK) {
		return SRUP_EXIT_USAGE;
	}
	if (key_path != NULL && load_key(key_path, SRUP_KEY_PUBLIC, "--key", &key) != 0) {
		goto out;
	}
	if (dec_path != NULL && load_key(dec_path, SRUP_KEY_PRIVATE, "--decrypt-key", &dec_key) != 0) {
		goto out;
	}

	/* Binary: read one byte more than the decoder accepts, so it reports TOO_LONG itself. */
	size_t max = hex ? HEX_INPUT_MAX : (size_t)SRUP_MSG_MAX + 1;
	enum tool_read rr = tool_read_all(pos[0], max, &input, &input_len, errbuf, sizeof(errbuf));
	if (rr == TOOL_READ_TOO_BIG) {
		tool_err("decode", "malformed message: %s", errbuf);
		rc = SRUP_EXIT_MALFORM;
		goto out;
	}
	if (rr != TOOL_READ_OK) {
		tool_err("decode", "%s", errbuf);
		goto out;
	}
	if (hex) {
		size_t bad = 0;
		if (tool_hex_decode_loose((const char *)input, input_len, &msg_buf, &msg_len, &bad) != 0) {
			if (bad >= input_len) {
				tool_err("decode", "malformed hex input: odd number of hex digits");
			} else {
				tool_err("decode", "malformed hex input: bad character at offset %zu", bad);
			}
			rc = SRUP_EXIT_MALFORM;
			goto out;
		}
	} else {
		msg_buf = input;
		msg_len = input_len;
		input = NULL;
	}

	memset(&diag, 0, sizeof(diag));
	enum srup_err e = srup_msg_parse(msg_buf, msg_len, &m, &diag);
	if (e != SRUP_OK) {
		if (diag.field != NULL) {
			tool_err("decode", "malformed message (%s): %s, at offset %zu in field %s",
			         srup_err_name(e), srup_strerror(e), diag.offset, diag.field);
		} else {
			tool_err("decode", "malformed message (%s): %s, at offset %zu", srup_err_name(e),
			         srup_strerror(e), diag.offset);
		}
		rc = SRUP_EXIT_MALFORM;
		goto out;
	}

	if (key != NULL) {
		memset(&diag, 0, sizeof(diag));
		e = srup_msg_verify(&m, key, &diag);
		if (e == SRUP_OK) {
			sig_state = "valid";
		} else {
			sig_state = "invalid";
			if (e != SRUP_ERR_SIG) {
				/* Not a clean "does not verify" (e.g. a signature longer than the key):
				 * still not valid, but say what OpenSSL reported. */
				tool_err("decode", "signature check failed: %s%s%s", srup_strerror(e),
				         diag.detail[0] != '\0' ? ": " : "", diag.detail);
			}
		}
	}

	if (dec_key != NULL && (srup_msg_fields(m.type) & SRUP_F_ENCRYPTED) != 0) {
		memset(&diag, 0, sizeof(diag));
		e = srup_envelope_open(dec_key, m.encrypted.p, m.encrypted.len, &pt, &pt_len, &diag);
		if (e != SRUP_OK) {
			tool_err("decode", "cannot decrypt the encrypted field: %s%s%s", srup_strerror(e),
			         diag.detail[0] != '\0' ? ": " : "", diag.detail);
			rc = SRUP_EXIT_MALFORM;
			goto out;
		}
		have_pt = 1;
	}

	if (print_message(&m, sig_state, pt, pt_len, have_pt) != 0) {
		tool_err("decode", "cannot write to standard output");
		rc = SRUP_EXIT_USAGE;
		goto out;
	}
	rc = strcmp(sig_state, "invalid") == 0 ? SRUP_EXIT_BADSIG : SRUP_EXIT_OK;
out:
	if (pt != NULL) {
		OPENSSL_cleanse(pt, pt_len);
		free(pt);
	}
	free(msg_buf);
	free(input);
	srup_key_free(key);
	srup_key_free(dec_key);
	return rc;
}
