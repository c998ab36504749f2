/* SPDX-License-Identifier: MIT
 * srup/msg.h - SRUP version 0x05 messages: types, parsed view, encoder and strict decoder.
 * The decoder borrows the caller's buffer and allocates nothing; no MQTT, no files. */
#ifndef SRUP_MSG_H
#define SRUP_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SRUP_VERSION       0x05
#define SRUP_MSG_MAX       (1u << 20) /* largest payload the decoder accepts */
#define SRUP_TOKEN_MAX     1024u      /* pySRUP tokens are 36 bytes */
#define SRUP_SIG_MIN       256u       /* RSA-2048 */
#define SRUP_SIG_MAX       1024u      /* RSA-8192 */
#define SRUP_URL_MAX       4096u
#define SRUP_DIGEST_MAX    1024u
#define SRUP_ENCRYPTED_MAX 8192u
/* data_id and data may use the full 65535 allowed by their length prefix. */

enum srup_msg_type {
	SRUP_MSG_GENERIC = 0x00,
	SRUP_MSG_INITIATE = 0x01,
	SRUP_MSG_RESPONSE = 0x02,
	SRUP_MSG_ACTIVATE = 0x03,
	SRUP_MSG_ACTION = 0x04,
	SRUP_MSG_DATA = 0x05,
	SRUP_MSG_ID_REQUEST = 0x06,
	SRUP_MSG_JOIN_REQ = 0x09,
	SRUP_MSG_JOIN_CMD = 0x0A,
	SRUP_MSG_HM_JOIN_REQ = 0x0B,
	SRUP_MSG_HM_JOIN_RESP = 0x0C,
	SRUP_MSG_OBS_JOIN_REQ = 0x0D,
	SRUP_MSG_OBS_JOIN_RESP = 0x0E,
	SRUP_MSG_OBSERVE_REQ = 0x0F,
	SRUP_MSG_RESIGN_REQUEST = 0x10,
	SRUP_MSG_TERMINATE_CMD = 0x11,
	SRUP_MSG_DEREGISTER_REQ = 0x12,
	SRUP_MSG_DEREGISTER_CMD = 0x13,
	SRUP_MSG_SYNDICATION_INIT = 0x21,
	SRUP_MSG_SYNDICATED_ACTION = 0x24,
	SRUP_MSG_SYNDICATED_DATA = 0x25,
	SRUP_MSG_SYNDICATED_ID_REQUEST = 0x26,
	SRUP_MSG_SYNDICATED_DEV_COUNT = 0x27,
	SRUP_MSG_SYNDICATED_DEV_LIST = 0x28,
	SRUP_MSG_SYNDICATION_REQUEST = 0x29,
	SRUP_MSG_SYNDICATED_C2_REQ = 0x2C,
	SRUP_MSG_SYNDICATION_END = 0x2E,
	SRUP_MSG_SYNDICATION_TERMINATE = 0x2F,
};

/* RESPONSE status codes (spec §3). */
enum srup_status {
	SRUP_ST_UPDATE_SUCCESS = 0x00,
	SRUP_ST_ACTIVATE_SUCCESS = 0x10,
	SRUP_ST_ACTIVATE_FAIL = 0x1F,
	SRUP_ST_ACTION_SUCCESS = 0x20,
	SRUP_ST_ACTION_UNKNOWN = 0x2E,
	SRUP_ST_ACTION_FAIL = 0x2F,
	SRUP_ST_DATA_TYPE_UNKNOWN = 0x3F,
	SRUP_ST_JOIN_SUCCESS = 0x50,
	SRUP_ST_JOIN_REFUSED = 0x5E,
	SRUP_ST_JOIN_FAIL = 0x5F,
	SRUP_ST_OBSERVED_JOIN_VALID = 0x60,
	SRUP_ST_OBSERVED_JOIN_INVALID = 0x6E,
	SRUP_ST_OBSERVED_JOIN_FAIL = 0x6F,
	SRUP_ST_RESIGN_SUCCESS = 0x70,
	SRUP_ST_RESIGN_FAIL = 0x7F,
	SRUP_ST_DEREGISTER_SUCCESS = 0x80,
	SRUP_ST_DEREGISTER_FAIL = 0x8F,
	SRUP_ST_UPDATE_FAIL_HTTP_ERROR = 0xFC,
	SRUP_ST_UPDATE_FAIL_SERVER = 0xFD,
	SRUP_ST_UPDATE_FAIL_FILE = 0xFE,
	SRUP_ST_UPDATE_FAIL_DIGEST = 0xFF,
};

/* Body fields, as bits: srup_msg_fields() says which a type carries, in wire order. */
enum srup_field {
	SRUP_F_URL = 1u << 0,               /* var */
	SRUP_F_DIGEST = 1u << 1,            /* var */
	SRUP_F_STATUS = 1u << 2,            /* u8 */
	SRUP_F_ACTION_ID = 1u << 3,         /* u8 */
	SRUP_F_DATA_ID = 1u << 4,           /* var */
	SRUP_F_DATA = 1u << 5,              /* var */
	SRUP_F_DEVICE_ID = 1u << 6,         /* u64le */
	SRUP_F_OBSERVER_ID = 1u << 7,       /* u64le */
	SRUP_F_JOINING_DEVICE_ID = 1u << 8, /* u64le */
	SRUP_F_ENCRYPTED = 1u << 9,         /* var, spec §4 envelope */
	SRUP_F_TARGET_ID = 1u << 10,        /* u64le */
	SRUP_F_SOURCE_ID = 1u << 11,        /* u64le */
	SRUP_F_COUNT = 1u << 12,            /* u32le */
	SRUP_F_DEVICE_SEQUENCE = 1u << 13,  /* u32le */
	SRUP_F_REQ_ID = 1u << 14,           /* u8 */
	SRUP_F_PAD = 1u << 15,              /* 00 00, SYNDICATED_C2_REQ only (spec §8 item 1) */
};

/* A borrowed byte string: p may be NULL when len is 0. Never NUL-terminated by the codec. */
struct srup_bytes {
	const uint8_t *p;
	size_t len;
};

/* One message. After srup_msg_parse every srup_bytes points into the parsed buffer.
 * Fields the type does not carry are zero. */
struct srup_msg {
	uint8_t version;
	uint8_t type; /* enum srup_msg_type */
	uint64_t sequence_id;
	uint64_t sender_id;
	struct srup_bytes token;
	struct srup_bytes signature;

	struct srup_bytes url;
	struct srup_bytes digest;
	struct srup_bytes data_id;
	struct srup_bytes data;
	struct srup_bytes encrypted;
	uint8_t status;
	uint8_t action_id;
	uint8_t req_id;
	uint64_t device_id;
	uint64_t observer_id;
	uint64_t joining_device_id;
	uint64_t target_id;
	uint64_t source_id;
	uint32_t count;
	uint32_t device_sequence;

	/* Set by srup_msg_parse: the whole buffer and where the signature's length prefix starts,
	 * so the signed bytes (spec §1.3) are raw[0, sig_off) + raw[sig_end, raw_len). */
	const uint8_t *raw;
	size_t raw_len;
	size_t sig_off;
	size_t sig_end;
};

/* Name of a type exactly as in spec §2.1 ("HM_JOIN_RESP"), or NULL if t is not a v5 type. */
const char *srup_msg_type_name(unsigned t);
/* Inverse of srup_msg_type_name (case-sensitive); -1 if unknown. */
int srup_msg_type_from_name(const char *name);
/* 1 if t is a v5 type that may appear on the wire (GENERIC is not), else 0. */
int srup_msg_type_is_valid(unsigned t);
/* Body fields of type t as a mask of enum srup_field; 0 for body-less or unknown types. */
unsigned srup_msg_fields(unsigned t);
/* Constant name of a status code ("JOIN_SUCCESS"), or NULL if unassigned. */
const char *srup_status_name(unsigned status);

/* Strictly decode buf[0, len). On success *out holds views into buf (valid while buf lives).
 * Rejects: empty input (EMPTY), len > SRUP_MSG_MAX (TOO_LONG), a version other than 0x05
 * (VERSION), an unknown or GENERIC type (TYPE), any read past the end (TRUNCATED), a length
 * prefix over its field's limit or a signature shorter than SRUP_SIG_MIN (FIELD_LEN), bad pad
 * (PAD), bytes after the last field (TRAILING). Allocates nothing; on failure *out is zeroed
 * and diag (if given) says where. Thread-safe. */
enum srup_err srup_msg_parse(const uint8_t *buf, size_t len, struct srup_msg *out,
                             struct srup_diag *diag);

/* Length srup_msg_serialize would write for m with a signature of sig_len bytes, or 0 if m
 * has an unknown type or a field over its limit. */
size_t srup_msg_encoded_len(const struct srup_msg *m, size_t sig_len);

/* Write the unsigned bytes of m (spec §1.3: header, token, body; no signature field) to
 * out[0, cap). SPACE if cap is short, TYPE for an unknown type, FIELD_LEN if a field is over
 * its limit. */
enum srup_err srup_msg_unsigned(const struct srup_msg *m, uint8_t *out, size_t cap,
                                size_t *out_len);

/* Write the full message of m with m->signature as the signature field. */
enum srup_err srup_msg_serialize(const struct srup_msg *m, uint8_t *out, size_t cap,
                                 size_t *out_len);

#ifdef __cplusplus
}
#endif
#endif
