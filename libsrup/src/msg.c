/* SPDX-License-Identifier: MIT
 * msg.c - table-driven SRUP v5 codec: one description per type, one encoder, one strict decoder.
 * Knows nothing of keys or signatures beyond where the signature field sits (sig.c signs). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "srup/msg.h"

#include "codec.h"
#include "export.h"
#include "reader.h"

#define VAR_MAX 65535u

enum field_kind {
	FK_VAR,  /* len16 + bytes -> struct srup_bytes */
	FK_U8,   /* -> uint8_t */
	FK_U32,  /* u32le -> uint32_t */
	FK_U64,  /* u64le -> uint64_t */
	FK_PAD2, /* two zero bytes, no struct member (spec §8 item 1) */
};

struct field_desc {
	unsigned bit; /* enum srup_field */
	const char *name;
	enum field_kind kind;
	size_t max; /* FK_VAR only */
	size_t member;
};

#define FD_VAR(bit, name, max)                                                                     \
	{                                                                                              \
		bit, #name, FK_VAR, max, offsetof(struct srup_msg, name)                                   \
	}
#define FD_INT(bit, name, kind)                                                                    \
	{                                                                                              \
		bit, #name, kind, 0, offsetof(struct srup_msg, name)                                       \
	}

/* Every body field, in the order the bits are numbered; a type's body is its fields in the
 * order listed in its type_desc. */
static const struct field_desc f_url = FD_VAR(SRUP_F_URL, url, SRUP_URL_MAX);
static const struct field_desc f_digest = FD_VAR(SRUP_F_DIGEST, digest, SRUP_DIGEST_MAX);
static const struct field_desc f_status = FD_INT(SRUP_F_STATUS, status, FK_U8);
static const struct field_desc f_action = FD_INT(SRUP_F_ACTION_ID, action_id, FK_U8);
static const struct field_desc f_data_id = FD_VAR(SRUP_F_DATA_ID, data_id, VAR_MAX);
static const struct field_desc f_data = FD_VAR(SRUP_F_DATA, data, VAR_MAX);
static const struct field_desc f_device = FD_INT(SRUP_F_DEVICE_ID, device_id, FK_U64);
static const struct field_desc f_observer = FD_INT(SRUP_F_OBSERVER_ID, observer_id, FK_U64);
static const struct field_desc f_joining =
        FD_INT(SRUP_F_JOINING_DEVICE_ID, joining_device_id, FK_U64);
static const struct field_desc f_enc = FD_VAR(SRUP_F_ENCRYPTED, encrypted, SRUP_ENCRYPTED_MAX);
static const struct field_desc f_target = FD_INT(SRUP_F_TARGET_ID, target_id, FK_U64);
static const struct field_desc f_source = FD_INT(SRUP_F_SOURCE_ID, source_id, FK_U64);
static const struct field_desc f_count = FD_INT(SRUP_F_COUNT, count, FK_U32);
static const struct field_desc f_devseq = FD_INT(SRUP_F_DEVICE_SEQUENCE, device_sequence, FK_U32);
static const struct field_desc f_req = FD_INT(SRUP_F_REQ_ID, req_id, FK_U8);
static const struct field_desc f_pad = {SRUP_F_PAD, "pad", FK_PAD2, 0, 0};

#define BODY_MAX 4

struct type_desc {
	const char *name;
	const struct field_desc *body[BODY_MAX]; /* NULL-terminated when shorter */
};

/* spec §2.1 and §2.2: one entry per v5 type; a NULL name marks an unassigned byte. */
static const struct type_desc types[256] = {
        [SRUP_MSG_GENERIC] = {"GENERIC", {NULL}},
        [SRUP_MSG_INITIATE] = {"INITIATE", {&f_url, &f_digest, NULL}},
        [SRUP_MSG_RESPONSE] = {"RESPONSE", {&f_status, NULL}},
        [SRUP_MSG_ACTIVATE] = {"ACTIVATE", {NULL}},
        [SRUP_MSG_ACTION] = {"ACTION", {&f_action, NULL}},
        [SRUP_MSG_DATA] = {"DATA", {&f_data_id, &f_data, NULL}},
        [SRUP_MSG_ID_REQUEST] = {"ID_REQUEST", {NULL}},
        [SRUP_MSG_JOIN_REQ] = {"JOIN_REQ", {NULL}},
        [SRUP_MSG_JOIN_CMD] = {"JOIN_CMD", {&f_device, NULL}},
        [SRUP_MSG_HM_JOIN_REQ] = {"HM_JOIN_REQ", {NULL}},
        [SRUP_MSG_HM_JOIN_RESP] = {"HM_JOIN_RESP", {&f_enc, NULL}},
        [SRUP_MSG_OBS_JOIN_REQ] = {"OBS_JOIN_REQ", {&f_observer, NULL}},
        [SRUP_MSG_OBS_JOIN_RESP] = {"OBS_JOIN_RESP", {&f_enc, NULL}},
        [SRUP_MSG_OBSERVE_REQ] = {"OBSERVE_REQ", {&f_joining, &f_enc, NULL}},
        [SRUP_MSG_RESIGN_REQUEST] = {"RESIGN_REQUEST", {NULL}},
        [SRUP_MSG_TERMINATE_CMD] = {"TERMINATE_CMD", {NULL}},
        [SRUP_MSG_DEREGISTER_REQ] = {"DEREGISTER_REQ", {NULL}},
        [SRUP_MSG_DEREGISTER_CMD] = {"DEREGISTER_CMD", {NULL}},
        [SRUP_MSG_SYNDICATION_INIT] = {"SYNDICATION_INIT", {&f_url, &f_enc, NULL}},
        [SRUP_MSG_SYNDICATED_ACTION] = {"SYNDICATED_ACTION", {&f_action, &f_target, NULL}},
        [SRUP_MSG_SYNDICATED_DATA] = {"SYNDICATED_DATA", {&f_data_id, &f_data, &f_source, NULL}},
        [SRUP_MSG_SYNDICATED_ID_REQUEST] = {"SYNDICATED_ID_REQUEST", {&f_target, NULL}},
        [SRUP_MSG_SYNDICATED_DEV_COUNT] = {"SYNDICATED_DEV_COUNT", {&f_count, NULL}},
        [SRUP_MSG_SYNDICATED_DEV_LIST] = {"SYNDICATED_DEV_LIST", {&f_devseq, &f_device, NULL}},
        [SRUP_MSG_SYNDICATION_REQUEST] = {"SYNDICATION_REQUEST", {&f_enc, NULL}},
        [SRUP_MSG_SYNDICATED_C2_REQ] = {"SYNDICATED_C2_REQ", {&f_data, &f_req, &f_pad, NULL}},
        [SRUP_MSG_SYNDICATION_END] = {"SYNDICATION_END", {NULL}},
        [SRUP_MSG_SYNDICATION_TERMINATE] = {"SYNDICATION_TERMINATE", {NULL}},
};

struct status_name {
	uint8_t value;
	const char *name;
};

static const struct status_name statuses[] = {
        {SRUP_ST_UPDATE_SUCCESS, "UPDATE_SUCCESS"},
        {SRUP_ST_ACTIVATE_SUCCESS, "ACTIVATE_SUCCESS"},
        {SRUP_ST_ACTIVATE_FAIL, "ACTIVATE_FAIL"},
        {SRUP_ST_ACTION_SUCCESS, "ACTION_SUCCESS"},
        {SRUP_ST_ACTION_UNKNOWN, "ACTION_UNKNOWN"},
        {SRUP_ST_ACTION_FAIL, "ACTION_FAIL"},
        {SRUP_ST_DATA_TYPE_UNKNOWN, "DATA_TYPE_UNKNOWN"},
        {SRUP_ST_JOIN_SUCCESS, "JOIN_SUCCESS"},
        {SRUP_ST_JOIN_REFUSED, "JOIN_REFUSED"},
        {SRUP_ST_JOIN_FAIL, "JOIN_FAIL"},
        {SRUP_ST_OBSERVED_JOIN_VALID, "OBSERVED_JOIN_VALID"},
        {SRUP_ST_OBSERVED_JOIN_INVALID, "OBSERVED_JOIN_INVALID"},
        {SRUP_ST_OBSERVED_JOIN_FAIL, "OBSERVED_JOIN_FAIL"},
        {SRUP_ST_RESIGN_SUCCESS, "RESIGN_SUCCESS"},
        {SRUP_ST_RESIGN_FAIL, "RESIGN_FAIL"},
        {SRUP_ST_DEREGISTER_SUCCESS, "DEREGISTER_SUCCESS"},
        {SRUP_ST_DEREGISTER_FAIL, "DEREGISTER_FAIL"},
        {SRUP_ST_UPDATE_FAIL_HTTP_ERROR, "UPDATE_FAIL_HTTP_ERROR"},
        {SRUP_ST_UPDATE_FAIL_SERVER, "UPDATE_FAIL_SERVER"},
        {SRUP_ST_UPDATE_FAIL_FILE, "UPDATE_FAIL_FILE"},
        {SRUP_ST_UPDATE_FAIL_DIGEST, "UPDATE_FAIL_DIGEST"},
};

static const struct type_desc *wire_type(unsigned t)
{
	if (t == SRUP_MSG_GENERIC || t >= 256 || types[t].name == NULL) {
		return NULL;
	}
	return &types[t];
}

SRUP_API const char *srup_msg_type_name(unsigned t)
{
	return t < 256 ? types[t].name : NULL;
}

SRUP_API int srup_msg_type_from_name(const char *name)
{
	if (name == NULL) {
		return -1;
	}
	for (unsigned t = 0; t < 256; t++) {
		if (types[t].name != NULL && strcmp(types[t].name, name) == 0) {
			return (int)t;
		}
	}
	return -1;
}

SRUP_API int srup_msg_type_is_valid(unsigned t)
{
	return wire_type(t) != NULL;
}

SRUP_API unsigned srup_msg_fields(unsigned t)
{
	const struct type_desc *td = wire_type(t);
	unsigned mask = 0;
	if (td == NULL) {
		return 0;
	}
	for (size_t i = 0; i < BODY_MAX && td->body[i] != NULL; i++) {
		mask |= td->body[i]->bit;
	}
	return mask;
}

SRUP_API const char *srup_status_name(unsigned status)
{
	for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++) {
		if (statuses[i].value == status) {
			return statuses[i].name;
		}
	}
	return NULL;
}

static void fail_diag(struct srup_diag *diag, size_t offset, const char *field)
{
	if (diag != NULL) {
		diag->offset = offset;
		diag->field = field;
		diag->detail[0] = '\0';
	}
}

/* Decode one body field into its member of out. */
static enum srup_err read_field(struct srup__rd *rd, const struct field_desc *fd,
                                struct srup_msg *out)
{
	unsigned char *member = (unsigned char *)out + fd->member;
	enum srup_err rc = SRUP_OK;
	uint64_t v = 0;
	switch (fd->kind) {
		case FK_VAR: {
			struct srup_bytes b = {NULL, 0};
			rc = srup__rd_var(rd, fd->max, &b.p, &b.len);
			if (rc == SRUP_OK) {
				memcpy(member, &b, sizeof b);
			}
			break;
		}
		case FK_U8: {
			uint8_t u = 0;
			rc = srup__rd_u8(rd, &u);
			if (rc == SRUP_OK) {
				memcpy(member, &u, sizeof u);
			}
			break;
		}
		case FK_U32:
			rc = srup__rd_uintle(rd, 4, &v);
			if (rc == SRUP_OK) {
				uint32_t u = (uint32_t)v;
				memcpy(member, &u, sizeof u);
			}
			break;
		case FK_U64:
			rc = srup__rd_uintle(rd, 8, &v);
			if (rc == SRUP_OK) {
				memcpy(member, &v, sizeof v);
			}
			break;
		case FK_PAD2:
			if (srup__rd_left(rd) < 2) {
				rc = SRUP_ERR_TRUNCATED;
			} else if (rd->p[rd->off] != 0 || rd->p[rd->off + 1] != 0) {
				rc = SRUP_ERR_PAD;
			} else {
				rd->off += 2;
			}
			break;
	}
	return rc;
}

SRUP_API enum srup_err srup_msg_parse(const uint8_t *buf, size_t len, struct srup_msg *out,
                                      struct srup_diag *diag)
{
	struct srup__rd rd = {buf, len, 0};
	struct srup_msg m;
	const char *field = "version";
	enum srup_err rc;
	uint64_t v = 0;

	memset(&m, 0, sizeof m);
	if (out == NULL || (buf == NULL && len > 0)) {
		rc = SRUP_ERR_INVAL;
		goto fail;
	}
	if (len == 0) {
		rc = SRUP_ERR_EMPTY;
		goto fail;
	}
	if (len > SRUP_MSG_MAX) {
		rc = SRUP_ERR_TOO_LONG;
		goto fail;
	}
	rc = srup__rd_u8(&rd, &m.version);
	if (rc != SRUP_OK) {
		goto fail;
	}
	if (m.version != SRUP_VERSION) {
		rc = SRUP_ERR_VERSION;
		rd.off = 0;
		goto fail;
	}
	field = "type";
	rc = srup__rd_u8(&rd, &m.type);
	if (rc != SRUP_OK) {
		goto fail;
	}
	const struct type_desc *td = wire_type(m.type);
	if (td == NULL) {
		rc = SRUP_ERR_TYPE;
		rd.off = 1;
		goto fail;
	}
	field = "sequence_id";
	rc = srup__rd_uintle(&rd, 8, &v);
	if (rc != SRUP_OK) {
		goto fail;
	}
	m.sequence_id = v;
	field = "sender_id";
	rc = srup__rd_uintle(&rd, 8, &v);
	if (rc != SRUP_OK) {
		goto fail;
	}
	m.sender_id = v;
	field = "token";
	rc = srup__rd_var(&rd, SRUP_TOKEN_MAX, &m.token.p, &m.token.len);
	if (rc == SRUP_OK && m.token.len == 0) {
		/* The reference refuses to send an empty token; we refuse to receive one, so the
		 * decoder and encoder accept exactly the same set of messages. */
		rc = SRUP_ERR_FIELD_LEN;
		rd.off -= 2;
	}
	if (rc != SRUP_OK) {
		goto fail;
	}
	field = "signature";
	m.sig_off = rd.off;
	rc = srup__rd_var(&rd, SRUP_SIG_MAX, &m.signature.p, &m.signature.len);
	if (rc == SRUP_OK && m.signature.len < SRUP_SIG_MIN) {
		rc = SRUP_ERR_FIELD_LEN;
	}
	if (rc != SRUP_OK) {
		goto fail;
	}
	m.sig_end = rd.off;
	for (size_t i = 0; i < BODY_MAX && td->body[i] != NULL; i++) {
		field = td->body[i]->name;
		size_t at = rd.off;
		rc = read_field(&rd, td->body[i], &m);
		if (rc != SRUP_OK) {
			rd.off = at;
			goto fail;
		}
	}
	if (srup__rd_left(&rd) != 0) {
		field = NULL;
		rc = SRUP_ERR_TRAILING;
		goto fail;
	}
	m.raw = buf;
	m.raw_len = len;
	*out = m;
	return SRUP_OK;

fail:
	fail_diag(diag, rd.off, field);
	if (out != NULL) {
		memset(out, 0, sizeof *out);
	}
	return rc;
}

/* Length of the body of m, or 0 with *rc set if a field is over its limit. */
static size_t body_len(const struct type_desc *td, const struct srup_msg *m, enum srup_err *rc)
{
	size_t n = 0;
	*rc = SRUP_OK;
	for (size_t i = 0; i < BODY_MAX && td->body[i] != NULL; i++) {
		const struct field_desc *fd = td->body[i];
		const unsigned char *member = (const unsigned char *)m + fd->member;
		switch (fd->kind) {
			case FK_VAR: {
				struct srup_bytes b;
				memcpy(&b, member, sizeof b);
				if (b.len > fd->max || (b.len > 0 && b.p == NULL)) {
					*rc = SRUP_ERR_FIELD_LEN;
					return 0;
				}
				n += 2 + b.len;
				break;
			}
			case FK_U8:
				n += 1;
				break;
			case FK_U32:
				n += 4;
				break;
			case FK_U64:
				n += 8;
				break;
			case FK_PAD2:
				n += 2;
				break;
		}
	}
	return n;
}

static enum srup_err write_body(struct srup__wr *wr, const struct type_desc *td,
                                const struct srup_msg *m)
{
	enum srup_err rc = SRUP_OK;
	for (size_t i = 0; i < BODY_MAX && td->body[i] != NULL && rc == SRUP_OK; i++) {
		const struct field_desc *fd = td->body[i];
		const unsigned char *member = (const unsigned char *)m + fd->member;
		switch (fd->kind) {
			case FK_VAR: {
				struct srup_bytes b;
				memcpy(&b, member, sizeof b);
				rc = srup__wr_var(wr, b.p, b.len);
				break;
			}
			case FK_U8:
				rc = srup__wr_u8(wr, *member);
				break;
			case FK_U32: {
				uint32_t u;
				memcpy(&u, member, sizeof u);
				rc = srup__wr_uintle(wr, 4, u);
				break;
			}
			case FK_U64: {
				uint64_t u;
				memcpy(&u, member, sizeof u);
				rc = srup__wr_uintle(wr, 8, u);
				break;
			}
			case FK_PAD2:
				rc = srup__wr_uintle(wr, 2, 0);
				break;
		}
	}
	return rc;
}

static enum srup_err check_header(const struct srup_msg *m, const struct type_desc **td)
{
	*td = wire_type(m->type);
	if (*td == NULL) {
		return SRUP_ERR_TYPE;
	}
	if (m->token.len == 0 || m->token.len > SRUP_TOKEN_MAX || m->token.p == NULL) {
		return SRUP_ERR_FIELD_LEN;
	}
	return SRUP_OK;
}

SRUP_API size_t srup_msg_encoded_len(const struct srup_msg *m, size_t sig_len)
{
	const struct type_desc *td = NULL;
	enum srup_err rc;
	if (m == NULL || sig_len > SRUP_SIG_MAX || check_header(m, &td) != SRUP_OK) {
		return 0;
	}
	size_t body = body_len(td, m, &rc);
	if (rc != SRUP_OK) {
		return 0;
	}
	return 1 + 1 + 8 + 8 + 2 + m->token.len + 2 + sig_len + body;
}

/* Header: version, type, sequence, sender, token. */
static enum srup_err write_header(struct srup__wr *wr, const struct srup_msg *m)
{
	enum srup_err rc = srup__wr_u8(wr, SRUP_VERSION);
	if (rc == SRUP_OK) {
		rc = srup__wr_u8(wr, m->type);
	}
	if (rc == SRUP_OK) {
		rc = srup__wr_uintle(wr, 8, m->sequence_id);
	}
	if (rc == SRUP_OK) {
		rc = srup__wr_uintle(wr, 8, m->sender_id);
	}
	if (rc == SRUP_OK) {
		rc = srup__wr_var(wr, m->token.p, m->token.len);
	}
	return rc;
}

enum srup_err srup__msg_layout(const struct srup_msg *m, size_t sig_len, uint8_t *out, size_t cap,
                               struct srup__layout *lay)
{
	const struct type_desc *td = NULL;
	struct srup__wr wr = {out, cap, 0};
	enum srup_err rc;

	if (m == NULL || lay == NULL || (out == NULL && cap > 0) || sig_len > SRUP_SIG_MAX) {
		return SRUP_ERR_INVAL;
	}
	rc = check_header(m, &td);
	if (rc != SRUP_OK) {
		return rc;
	}
	(void)body_len(td, m, &rc);
	if (rc != SRUP_OK) {
		return rc;
	}
	rc = write_header(&wr, m);
	if (rc != SRUP_OK) {
		return rc;
	}
	lay->hdr_len = wr.off;
	lay->sig_off = wr.off;
	if (wr.cap - wr.off < 2 || wr.cap - wr.off - 2 < sig_len) {
		return SRUP_ERR_SPACE;
	}
	wr.p[wr.off] = (uint8_t)(sig_len >> 8);
	wr.p[wr.off + 1] = (uint8_t)(sig_len & 0xFF);
	wr.off += 2 + sig_len;
	lay->body_off = wr.off;
	rc = write_body(&wr, td, m);
	if (rc != SRUP_OK) {
		return rc;
	}
	lay->total = wr.off;
	return SRUP_OK;
}

SRUP_API enum srup_err srup_msg_unsigned(const struct srup_msg *m, uint8_t *out, size_t cap,
                                         size_t *out_len)
{
	const struct type_desc *td = NULL;
	struct srup__wr wr = {out, cap, 0};
	enum srup_err rc;

	if (m == NULL || out_len == NULL || (out == NULL && cap > 0)) {
		return SRUP_ERR_INVAL;
	}
	rc = check_header(m, &td);
	if (rc == SRUP_OK) {
		(void)body_len(td, m, &rc);
	}
	if (rc == SRUP_OK) {
		rc = write_header(&wr, m);
	}
	if (rc == SRUP_OK) {
		rc = write_body(&wr, td, m);
	}
	*out_len = rc == SRUP_OK ? wr.off : 0;
	return rc;
}

SRUP_API enum srup_err srup_msg_serialize(const struct srup_msg *m, uint8_t *out, size_t cap,
                                          size_t *out_len)
{
	struct srup__layout lay;
	enum srup_err rc;

	if (m == NULL || out_len == NULL) {
		return SRUP_ERR_INVAL;
	}
	*out_len = 0;
	if (m->signature.len > 0 && m->signature.p == NULL) {
		return SRUP_ERR_INVAL;
	}
	rc = srup__msg_layout(m, m->signature.len, out, cap, &lay);
	if (rc != SRUP_OK) {
		return rc;
	}
	if (m->signature.len > 0) {
		memcpy(out + lay.sig_off + 2, m->signature.p, m->signature.len);
	}
	*out_len = lay.total;
	return SRUP_OK;
}
