/* SPDX-License-Identifier: MIT
 * srupb.h - private header of the SRUP Mosquitto plugin, one section per module.
 * Nothing here is exported from srup_plugin.so except the three entry points in plugin.c. */
#ifndef SRUPB_H
#define SRUPB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <srup/srup.h>

#include "srupb_store.h"

struct mosquitto;

#define SRUPB_EXPORT    __attribute__((visibility("default")))
#define SRUPB_LOG_TRUNC 128 /* client ids and topics are cut to this many chars in logs */

/* ---------------------------------------------------------------- log (plugin.c) */

/* Log through the broker with the "srup: " prefix. level is a MOSQ_LOG_* value. */
void srupb_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Copy s (may be NULL -> "-") into out, escaping non-printable bytes, '|' and '\' as \xHH and
 * cutting at SRUPB_LOG_TRUNC characters (adds "..."). out needs 4*SRUPB_LOG_TRUNC+8 bytes. */
void srupb_log_escape(const char *s, char *out, size_t cap);

/* ---------------------------------------------------------------- verdict reasons */

enum srupb_reason {
	SRUPB_R_EMPTY_PAYLOAD = 0,
	SRUPB_R_TOO_LARGE,
	SRUPB_R_TRUNCATED,
	SRUPB_R_FIELD_LENGTH,
	SRUPB_R_TRAILING_BYTES,
	SRUPB_R_BAD_VERSION,
	SRUPB_R_UNKNOWN_TYPE,
	SRUPB_R_BAD_PAD,
	SRUPB_R_NOT_ALLOWED,
	SRUPB_R_UNKNOWN_SENDER,
	SRUPB_R_REVOKED_SENDER,
	SRUPB_R_IDENTITY_MISMATCH,
	SRUPB_R_JOIN_TOPIC_MISMATCH,
	SRUPB_R_REPLAY,
	SRUPB_R_BAD_SIGNATURE,
	SRUPB_R_RETAINED_REFUSED,
	SRUPB_R_INTERNAL_ERROR,
	SRUPB_R_NOT_MEMBER,      /* a server command to a device that never joined it */
	SRUPB_R_NO_PENDING_JOIN, /* a join answer with no matching, live request */
	SRUPB_R_PENDING_FULL,    /* no room for another pending join */
	SRUPB_R_UNKNOWN_TARGET,  /* the topic names no active device (or server, join topics) */
	SRUPB_R_BAD_KEY,         /* the sender's stored key is outside policy */
	SRUPB_R_SEEN_INDEX_FULL, /* no seen-index record free for the sender's entry: fail closed */
	SRUPB_R_NO_IDENTITY,     /* a SRUP publish by a client with no proven identity */
	SRUPB_R__COUNT,
	SRUPB_R_NONE = SRUPB_R__COUNT,
};

/* The exact reason string of contract.md ("replay"). */
const char *srupb_reason_name(unsigned r);

enum srupb_verdict {
	SRUPB_V_PASS = 0,   /* not a SRUP topic: no opinion */
	SRUPB_V_ACCEPT,     /* verified and committed */
	SRUPB_V_RETRANSMIT, /* byte-identical resend of the last accepted message by its client */
	SRUPB_V_DROP,
	SRUPB_V_REFUSE, /* a subscription refused (SUBACK 0x87); the reason says why */
};

const char *srupb_verdict_name(enum srupb_verdict v);

/* ---------------------------------------------------------------- policy.c */

/* What a topic is, per policy. */
enum srupb_topic_kind {
	SRUPB_T_OTHER = 0,   /* not SRUP: the plugin has no opinion */
	SRUPB_T_DEVICE,      /* <prefix>/<device id> */
	SRUPB_T_JOIN,        /* <prefix>/servers/<server id>/<device id> */
	SRUPB_T_PROTECTED,   /* anything else under <prefix>/: never allowed */
	SRUPB_T_CONTROL,     /* $CONTROL/srup/v1 */
	SRUPB_T_CONTROL_RESP /* $CONTROL/srup/v1/response and below */
};

struct srupb_topic {
	enum srupb_topic_kind kind;
	uint64_t a; /* device id (DEVICE) or server id (JOIN) */
	uint64_t b; /* device id (JOIN) */
};

/* Rule sets: which channel a (role, type) may publish on. */
enum srupb_rule_kind {
	SRUPB_RULE_OWN = 0, /* the device channel of the sender itself */
	SRUPB_RULE_PEER,    /* another device's channel */
	SRUPB_RULE_JOIN,    /* join topic (the sender is the joining device) */
	SRUPB_RULE__COUNT
};

enum srupb_identity_src {
	SRUPB_ID_USERNAME = 0, /* a username the broker authenticated (password file, plugin) */
	SRUPB_ID_CLIENT_ID,    /* tests only: anyone can claim a client id */
	SRUPB_ID_CERTIFICATE,  /* the CN of the TLS client certificate, read from the session */
};

#define SRUPB_ADMINS_MAX             16
#define SRUPB_METRICS_READERS_MAX    16
#define SRUPB_JOIN_COMMANDERS_MAX    16
#define SRUPB_PENDING_PER_DEVICE_MAX 16

struct srupb_policy {
	char prefix[64];
	size_t prefix_len;
	enum srupb_identity_src identity;
	bool bind_identity;
	size_t max_payload;
	bool refuse_retained;
	bool disconnect_on_violation;
	bool audit_accepts;
	unsigned audit_burst;
	double audit_rate;           /* lines per second per reason after the burst */
	unsigned audit_client_burst; /* per client connection, across reasons */
	double audit_client_rate;
	unsigned audit_total_burst; /* the whole audit log */
	double audit_total_rate;
	size_t key_cache;
	size_t seen_index;                     /* seen-index capacity (records), set at start */
	size_t seen_window[SRUPB_ROLE__COUNT]; /* per role: entries one sender keeps (0: none) */
	enum srupb_sync durability;
	bool other_defer; /* answer DEFER instead of SUCCESS for non-SRUP topics */
	unsigned metrics_interval;
	size_t n_admins;
	uint64_t admins[SRUPB_ADMINS_MAX];
	/* may read $SYS/broker/srup/... and nothing of the admin plane (an exporter) */
	size_t n_metrics_readers;
	uint64_t metrics_readers[SRUPB_METRICS_READERS_MAX];
	/* servers whose JOIN_CMD makes them a member of the device (spec §5.5 server-initiated) */
	size_t n_join_commanders;
	uint64_t join_commanders[SRUPB_JOIN_COMMANDERS_MAX];
	size_t pending_max;        /* pending joins held at once */
	size_t pending_per_device; /* per joining device (its own oldest is replaced) */
	double pending_ttl;        /* seconds a join request stays answerable */
	size_t max_key_bits;       /* larger stored keys are refused (verify cost bound) */
	unsigned bad_signatures;   /* disconnect a connection after this many (0: never) */
	/* allow[rule][role][type] */
	bool allow[SRUPB_RULE__COUNT][SRUPB_ROLE__COUNT][256];
};

/* The shipped policy/srup.policy, embedded at build time (policy_default.c, generated). */
extern const char srupb_policy_default[];

/* Parse policy text text[0, len) named name (for messages). On success *out is a new policy
 * (free with free()). On failure returns SYNTAX/NOMEM and err holds "name:line: problem". */
enum srup_err srupb_policy_parse(const char *name, const char *text, size_t len,
                                 struct srupb_policy **out, char *err, size_t err_cap);
/* Read and parse a policy file (path NULL: the embedded default). Errors as above (IO too). */
enum srup_err srupb_policy_load(const char *path, struct srupb_policy **out, char *err,
                                size_t err_cap);
/* Classify a topic. Ids in topics must be canonical text (lowercase hex, no zero padding). */
void srupb_policy_classify(const struct srupb_policy *p, const char *topic,
                           struct srupb_topic *out);
/* Is type allowed from role on a channel of rule kind? */
bool srupb_policy_allows(const struct srupb_policy *p, enum srupb_rule_kind rule, unsigned role,
                         unsigned type);
bool srupb_policy_is_admin(const struct srupb_policy *p, uint64_t id);
/* May id read the plugin's counters: an admin or a metrics_reader. */
bool srupb_policy_reads_metrics(const struct srupb_policy *p, uint64_t id);
/* May server id make itself a member of a device with JOIN_CMD (policy join_command)? */
bool srupb_policy_commands_joins(const struct srupb_policy *p, uint64_t id);

/* ---------------------------------------------------------------- pending.c */

enum srupb_join_kind {
	SRUPB_JOIN_SIMPLE = 0,   /* JOIN_REQ */
	SRUPB_JOIN_HUMAN = 1,    /* HM_JOIN_REQ: answered by HM_JOIN_RESP, then the outcome */
	SRUPB_JOIN_OBSERVED = 2, /* OBS_JOIN_REQ: answered by OBS_JOIN_RESP, then the outcome */
};

/* A verified join request of a device to a server, not yet answered. */
struct srupb_pending_join {
	uint64_t server;
	uint8_t kind; /* enum srupb_join_kind */
	bool has_answer;
	uint8_t req_token[32]; /* SHA-256 of the request's token */
	uint8_t ans_token[32]; /* SHA-256 of the server's HM/OBS_JOIN_RESP token */
	double opened;
	double expires;
};

struct srupb_pending;

struct srupb_pending *srupb_pending_new(void);
void srupb_pending_free(struct srupb_pending *p);
size_t srupb_pending_count(const struct srupb_pending *p);
/* Would srupb_pending_open succeed now (before the signature is checked: no state changes but
 * expired entries going)? Yes when it replaces device's own entry for server or its own
 * oldest (per_device reached), or the total is below max. */
bool srupb_pending_room(struct srupb_pending *p, uint64_t server, uint64_t device,
                        size_t per_device, size_t max, double now);
/* Open (or replace) the pending join of device to server, expiring ttl seconds from now.
 * TOO_LONG when full (srupb_pending_room said no), NOMEM. */
enum srup_err srupb_pending_open(struct srupb_pending *p, uint64_t server, uint64_t device,
                                 enum srupb_join_kind kind, const uint8_t req_token[32],
                                 size_t per_device, size_t max, double ttl, double now);
/* The live pending join of device to server (borrowed until the next call), or NULL. */
struct srupb_pending_join *srupb_pending_find(struct srupb_pending *p, uint64_t server,
                                              uint64_t device, double now);
/* Does token (its SHA-256) answer j: the request's token or the server's answer token? */
bool srupb_pending_token_matches(const struct srupb_pending_join *j, const uint8_t token[32]);
void srupb_pending_close(struct srupb_pending *p, uint64_t server, uint64_t device);
/* Drop every expired entry (housekeeping, from TICK). */
void srupb_pending_sweep(struct srupb_pending *p, double now);
/* Call fn with every live entry (hash order) until it returns non-zero. */
void srupb_pending_foreach(const struct srupb_pending *p, double now,
                           int (*fn)(uint64_t device, const struct srupb_pending_join *j,
                                     void *arg),
                           void *arg);

/* ---------------------------------------------------------------- resend.c */

/* Accepted messages remembered for the retransmission exception. */
#define SRUPB_RESEND_SLOTS 65536

enum srupb_resend_answer {
	SRUPB_RESEND_OK = 0,           /* a retransmission: let through, now used */
	SRUPB_RESEND_USED,             /* already let through once */
	SRUPB_RESEND_OTHER_CONNECTION, /* another connection, not a resumed session */
	SRUPB_RESEND_UNKNOWN,          /* not (or no longer) in the ledger */
};

struct srupb_resend;

struct srupb_resend *srupb_resend_new(size_t cap);
void srupb_resend_free(struct srupb_resend *r);
/* Note an accepted message (payload digest) and the serial of the connection that published it
 * (0: an untracked connection, never "the same connection" again). */
void srupb_resend_note(struct srupb_resend *r, const uint8_t digest[32], uint64_t conn);
/* May connection conn (its serial, 0 if untracked) publish the accepted message with this
 * digest again as an MQTT retransmission? resumed_session: its session was resumed (clean start
 * off), so it may be a new connection of the same session. Marks the entry used when OK. */
enum srupb_resend_answer srupb_resend_take(struct srupb_resend *r, const uint8_t digest[32],
                                           uint64_t conn, bool resumed_session);

/* ---------------------------------------------------------------- options.c */

struct srupb_config {
	char *store_dir;
	char *audit_log;
	char *policy_path; /* NULL: embedded default */
};

struct mosquitto_opt;
/* Read plugin_opt_* into cfg. Unknown, repeated, empty or missing required options: logs one
 * ERR line and returns INVAL. cfg strings are malloc'd; free with srupb_config_free. */
enum srup_err srupb_config_parse(struct srupb_config *cfg, const struct mosquitto_opt *opts,
                                 int count);
void srupb_config_free(struct srupb_config *cfg);

/* ---------------------------------------------------------------- keystore.c */

struct srupb_keystore;

/* A bounded LRU cache of parsed public keys by id, valid for one record generation. */
struct srupb_keystore *srupb_keystore_new(size_t capacity);
void srupb_keystore_free(struct srupb_keystore *ks);
/* Borrowed key for (id, generation), parsing pem on a miss (and evicting the least recently
 * used entry when full), and, if ver is not NULL, the key's prepared libsrup verifier (borrowed
 * too; valid until the entry is evicted or dropped). KEY if the PEM is not an acceptable key,
 * NOMEM. */
enum srup_err srupb_keystore_get(struct srupb_keystore *ks, uint64_t id, uint64_t generation,
                                 const char *pem, size_t pem_len, const struct srup_key **out,
                                 struct srup_verifier **ver);
/* The cached key, verifier and role of id if its entry vouches for store version (the record
 * was read ACTIVE with that role while the store was at that version): true, all borrowed.
 * False when not cached or the store changed since (read the record and srupb_keystore_get). */
bool srupb_keystore_peek(struct srupb_keystore *ks, uint64_t id, uint64_t version, unsigned *role,
                         const struct srup_key **key, struct srup_verifier **ver);
/* After srupb_keystore_get of an ACTIVE record read at store version: vouch for it. */
/* The retiring key of id (a rotation's old key, valid until unix time `until`), kept with id's
 * entry (which must be cached: call after srupb_keystore_get/peek for id) and parsed once per
 * (id, until). Borrowed like the current key. INVAL without the entry, else as load_pem. */
enum srup_err srupb_keystore_retiring(struct srupb_keystore *ks, uint64_t id, uint64_t until,
                                      const char *pem, size_t pem_len, const struct srup_key **key,
                                      struct srup_verifier **ver);
void srupb_keystore_vouch(struct srupb_keystore *ks, uint64_t id, uint64_t version, unsigned role);
void srupb_keystore_drop(struct srupb_keystore *ks, uint64_t id);
void srupb_keystore_clear(struct srupb_keystore *ks);
size_t srupb_keystore_size(const struct srupb_keystore *ks);
/* Hits and misses since creation. */
void srupb_keystore_stats(const struct srupb_keystore *ks, uint64_t *hits, uint64_t *misses);

/* ---------------------------------------------------------------- audit.c */

struct srupb_audit;

/* One decision worth recording. Strings may be NULL (written as null). */
struct srupb_event {
	enum srupb_verdict verdict;
	enum srupb_reason reason; /* SRUPB_R_NONE for accept/retransmit */
	const char *client_id;
	const char *identity;
	const char *topic;
	int type; /* -1 unknown */
	bool has_sender;
	uint64_t sender;
	bool has_seq;
	uint64_t seq;
	const char *detail;
	const void *conn; /* the client connection (struct mosquitto *), for the per-connection cap */
	const char *address;     /* the peer's IP address (mosquitto_client_address), NULL unknown */
	const char *cert_sha256; /* hex SHA-256 of the TLS client certificate, NULL if none */
};

/* Admin plane lines (verdict "admin", source "control"): who asked what, and the result. */
enum srupb_admin_reason {
	SRUPB_AR_NONE = 0,    /* an admin's well-formed command (result ok or error) */
	SRUPB_AR_NOT_ADMIN,   /* a client that is not an admin reached for $CONTROL/srup/v1 */
	SRUPB_AR_BAD_COMMAND, /* an admin's command that does not parse */
	SRUPB_AR__COUNT
};

struct srupb_admin_event {
	enum srupb_admin_reason reason;
	const char *client_id;
	const char *identity;
	const char *command; /* NULL when unknown */
	bool has_target;
	uint64_t target;
	bool ok; /* result "ok" or "error" */
	const char *detail;
	const void *conn;
	const char *address;     /* as in struct srupb_event */
	const char *cert_sha256; /* as in struct srupb_event */
};

/* Caps on audit volume (policy audit_rate, audit_client_rate, audit_total_rate): token buckets
 * of BURST lines, refilled at RATE lines per second. */
struct srupb_audit_limits {
	unsigned burst; /* per reason */
	double rate;
	unsigned client_burst; /* per client connection, across every reason */
	double client_rate;
	unsigned total_burst; /* the whole log */
	double total_rate;
};

/* Connections with a bucket of their own; later ones share one overflow bucket. */
#define SRUPB_AUDIT_CONNS 1024
/* The longest line srupb_audit_format or srupb_audit_format_admin can produce, newline
 * included: every string field cut at SRUPB_LOG_TRUNC characters of 6 escaped bytes each. */
#define SRUPB_AUDIT_LINE_MAX 6144

/* Open path for appending (created 0600). burst/rate: per-reason token bucket; the client and
 * total caps start at their defaults (srupb_audit_set_limits changes all of them). */
enum srup_err srupb_audit_open(const char *path, unsigned burst, double rate,
                               struct srupb_audit **out, char *err, size_t err_cap);
void srupb_audit_close(struct srupb_audit *a);
void srupb_audit_set_rate(struct srupb_audit *a, unsigned burst, double rate);
void srupb_audit_set_limits(struct srupb_audit *a, const struct srupb_audit_limits *l);
/* srupb_audit_set_limits with the policy's audit_rate, audit_client_rate, audit_total_rate. */
void srupb_audit_apply_policy(struct srupb_audit *a, const struct srupb_policy *p);
/* Reopen the file (rotation). Keeps the old descriptor if the reopen fails. */
enum srup_err srupb_audit_reopen(struct srupb_audit *a, char *err, size_t err_cap);
/* Reopen when the path no longer names the open file (moved or deleted). */
void srupb_audit_check_rotation(struct srupb_audit *a);
/* Rate limit: true if a line for ev (its verdict, reason and connection) may be written now:
 * the reason's, the connection's and the total bucket each have a token (one is taken from
 * each). When false the line is counted as suppressed by the first cap that refused it. The
 * broker WARNING line follows the same answer. */
bool srupb_audit_admit(struct srupb_audit *a, const struct srupb_event *ev);
/* Write one JSON line (call only after srupb_audit_admit said true). Also writes, first, a
 * summary line for lines suppressed for that reason or connection, if the total cap allows. */
void srupb_audit_write(struct srupb_audit *a, const struct srupb_event *ev);
/* Admit and write one admin line; a refused one is counted, never silently lost. The line of
 * an admin's command that ran (reason NONE) is always written (it spends tokens left, if any).
 * True if the line was written (a broker WARNING line should follow the same answer). */
bool srupb_audit_admin(struct srupb_audit *a, const struct srupb_admin_event *ae);
/* Write summary lines for every reason, connection and the total with suppressed lines whose
 * bucket has refilled (call about once a second). */
void srupb_audit_flush_summaries(struct srupb_audit *a);
/* The connection is gone (DISCONNECT): summarise what it had suppressed, forget its bucket. */
void srupb_audit_conn_gone(struct srupb_audit *a, const void *conn);
/* Connections with a bucket of their own now (tests). */
size_t srupb_audit_conn_count(const struct srupb_audit *a);
/* Format ev as one JSON object + '\n' into out; returns the length (0 if cap too small). */
size_t srupb_audit_format(const struct srupb_event *ev, uint64_t suppressed, char *out, size_t cap);
/* The same for an admin line. */
size_t srupb_audit_format_admin(const struct srupb_admin_event *ae, uint64_t suppressed, char *out,
                                size_t cap);
/* Append s as a JSON string to out[*len, cap): cut after SRUPB_LOG_TRUNC characters (never
 * inside one; "..." marks the cut), '"', '\\' and control characters escaped, and each byte that
 * is not part of valid UTF-8 written as the text \\xHH, so the result is valid UTF-8. NULL is
 * written as null. False (out unchanged past *len) if it does not fit. */
bool srupb_audit_json_string(const char *s, char *out, size_t cap, size_t *len);

/* ---------------------------------------------------------------- metrics.c */

/* Sizes of the broker's state, published as $SYS/broker/srup/store/..., joins/pending. */
struct srupb_gauges {
	uint64_t keys;          /* key records in the store, active and revoked */
	uint64_t marks;         /* replay marks: (sender, channel) pairs ever accepted */
	uint64_t joins_pending; /* pending joins held (an expired one goes at the next sweep) */
	uint64_t seen_used;     /* seen-index records in use */
	uint64_t seen_capacity; /* seen-index records in the file */
};

struct srupb_metrics {
	uint64_t accepted;
	uint64_t retransmitted;
	uint64_t dropped_total;
	uint64_t dropped[SRUPB_R__COUNT];
	/* last published values (UINT64_MAX: never) */
	uint64_t pub_accepted;
	uint64_t pub_retransmitted;
	uint64_t pub_dropped_total;
	uint64_t pub_dropped[SRUPB_R__COUNT];
	uint64_t admin_ok;      /* admin commands that succeeded */
	uint64_t admin_refused; /* the rest: not an admin, bad command, or the command failed */
	uint64_t pub_admin_ok;
	uint64_t pub_admin_refused;
	uint64_t refused_subscribe; /* SUBSCRIBE refused (SUBACK 0x87) */
	uint64_t pub_refused_subscribe;
	double last_publish;
	struct srupb_gauges gauges;     /* last read (srupb_metrics_gauges) */
	struct srupb_gauges pub_gauges; /* last published (UINT64_MAX: never) */
};

void srupb_metrics_init(struct srupb_metrics *m);
void srupb_metrics_count(struct srupb_metrics *m, enum srupb_verdict v, enum srupb_reason r);
void srupb_metrics_admin(struct srupb_metrics *m, bool ok);
/* Publish changed counters as retained $SYS/broker/srup/... messages. */
void srupb_metrics_publish(struct srupb_metrics *m);
struct srupb_ctx;
/* Read the gauges into ctx->metrics.gauges (O(1): two LMDB entry counts, the journal's and the
 * seen index's in-memory counts, the pending table's count; a store read that fails keeps the
 * previous value) and publish those that changed since they were last published. Called from
 * TICK once a second, so a gauge is at most about a second old. */
void srupb_metrics_gauges(struct srupb_ctx *ctx);
/* Read the gauges into *g (a store read that fails leaves its field as it was): false if one
 * failed (srupb_store_strerror says why). The reading srupb_metrics_gauges and getStats share. */
bool srupb_metrics_read_gauges(struct srupb_ctx *ctx, struct srupb_gauges *g);

/* ---------------------------------------------------------------- plugin context */

struct srupb_kick {
	char *name;
	bool by_username;
};

/* The last WRITE-ACL decision, so the MESSAGE event of the same publish gets the same answer
 * without a second state change (notes §0.2: WRITE then MESSAGE see one publish twice). */
struct srupb_slot {
	bool valid;
	const void *client;
	const void *payload;
	uint32_t payloadlen;
	uint8_t digest[32];
	bool retain;
	int result; /* MOSQ_ERR_SUCCESS or MOSQ_ERR_ACL_DENIED */
};

/* A verified leave message (RESIGN, TERMINATE, DEREGISTER) ends memberships in its commit, but
 * the servers that were members must still receive that message itself: READ lets them have
 * exactly these bytes (by digest) for a short while. */
#define SRUPB_GRACE_SLOTS 8

struct srupb_grace {
	bool valid;
	uint64_t device;
	uint8_t digest[32];
	size_t n;
	uint64_t servers[SRUPB_REMOVED_MAX];
	double until;
};

/* Records in the marks journal (<store>/marks.journal, 128 bytes each): marks accepted between
 * two folds into LMDB. A fold of a full journal takes about a millisecond. */
#define SRUPB_JOURNAL_RECORDS 4096

struct srupb_clients;

struct srupb_ctx {
	void *pid; /* mosquitto_plugin_id_t * */
	struct srupb_config cfg;
	struct srupb_policy *policy;
	struct srupb_store *store;
	struct srupb_keystore *keys;
	struct srupb_audit *audit;
	struct srupb_metrics metrics;
	struct srupb_slot slot;
	struct srupb_kick *kicks;
	size_t n_kicks;
	size_t cap_kicks;
	struct srupb_grace grace[SRUPB_GRACE_SLOTS];
	size_t grace_next;
	struct srupb_clients *clients;
	uint64_t conn_serial; /* the last connection serial given out (srupb_reader.serial) */
	struct srupb_pending *pending;
	struct srupb_resend *resend;
	double last_sweep;
	void *sha256;      /* EVP_MD *, fetched once (an implicit fetch per digest costs ~1 us) */
	void *md_ctx;      /* EVP_MD_CTX * reused by srupb_sha256 (no allocation per digest) */
	char *last_client; /* client id whose mark digest is in last_client_dg (one-entry cache) */
	uint8_t last_client_dg[32];
	bool have_tick;
	uint64_t decisions;
	double last_second;
};

/* Monotonic seconds. */
double srupb_now(void);

/* SHA-256 of p[0, len) into out with the context's fetched digest; false on failure. */
bool srupb_sha256(const struct srupb_ctx *ctx, const void *p, size_t len, uint8_t out[32]);

/* ---------------------------------------------------------------- identity.c */

/* Room for an identity read from a certificate (longer CNs are no identity). */
#define SRUPB_IDENTITY_MAX 256

/* The client's proven identity per policy: the certificate CN (copied into buf, cap bytes),
 * or a string borrowed from the broker (username or client id). NULL if it has none. */
const char *srupb_identity(const struct srupb_ctx *ctx, struct mosquitto *client, char *buf,
                           size_t cap);
/* The SRUP id an identity names, only if it is the id's canonical text form. */
bool srupb_identity_id(const char *ident, uint64_t *id);

/* ---------------------------------------------------------------- verify.c */

/* The verdict pipeline for one publish (DESIGN.md). from_message: MOSQ_EVT_MESSAGE (true) or
 * ACL WRITE (false). Returns MOSQ_ERR_SUCCESS, MOSQ_ERR_ACL_DENIED, or (ACL only, for non-SRUP
 * topics under `other_topics defer`) MOSQ_ERR_PLUGIN_DEFER. */
int srupb_verify_publish(struct srupb_ctx *ctx, struct mosquitto *client, const char *topic,
                         const void *payload, uint32_t payloadlen, int qos, bool retain,
                         bool from_message);

/* Queue a client to be disconnected from TICK (never inside its own callback). */
void srupb_kick_queue(struct srupb_ctx *ctx, const char *name, bool by_username);
/* Kick queued clients (from TICK). */
void srupb_kick_run(struct srupb_ctx *ctx);
/* Without TICK: kick queued clients other than current (whose callback is running). */
void srupb_kick_run_except(struct srupb_ctx *ctx, struct mosquitto *current);
/* Queue a kick of whoever holds identity id (per policy's identity source). */
void srupb_kick_identity(struct srupb_ctx *ctx, uint64_t id);

/* ---------------------------------------------------------------- clients.c */

/* Connected clients with a SRUP identity, learnt from their ACL checks (2.0.11 has no connect
 * event a plugin can use without taking over authentication), forgotten at DISCONNECT. */
struct srupb_clients *srupb_clients_new(void);
void srupb_clients_free(struct srupb_clients *cl);
/* What a READ check needs to know of a reader, cached per connection and valid while the store
 * stays at version (see srupb_store_version). */
struct srupb_reader {
	uint64_t version; /* 0: nothing cached */
	uint64_t id;      /* the id the record below belongs to */
	unsigned role;
	bool active;          /* id's key is registered and ACTIVE (role is valid) */
	unsigned bad_sigs;    /* bad signatures this connection sent (policy bad_signatures) */
	uint64_t serial;      /* this connection's number, never reused (the broker reuses memory) */
	char cert_sha256[65]; /* hex SHA-256 of its TLS client certificate, "" if none (learnt once) */
};

/* Remember client (no-op if known or if its identity is not a SRUP id) and return its
 * per-connection entry (owned by the table, valid until the client's DISCONNECT), or NULL if it
 * is not tracked. publishing: called for a WRITE check; a WRITE by a client whose DISCONNECT
 * event has run is its Will: NULL, and *is_will (may be NULL) is set. */
struct srupb_reader *srupb_clients_seen(struct srupb_ctx *ctx, struct mosquitto *client,
                                        bool publishing, bool *is_will);
void srupb_clients_gone(struct srupb_ctx *ctx, struct mosquitto *client);
/* For an audit line: client's IP address and TLS certificate fingerprint (the connection's
 * cached one, or computed into fp_buf for a connection not tracked); NULL when unknown. */
void srupb_clients_peer(struct srupb_ctx *ctx, struct mosquitto *client, char fp_buf[65],
                        const char **address, const char **cert_sha256);
/* Queue kicks for every live connection known to hold identity id. */
void srupb_clients_kick_id(struct srupb_ctx *ctx, uint64_t id);
/* Queue kicks for every known client whose identity's key is now revoked or gone. */
void srupb_clients_kick_revoked(struct srupb_ctx *ctx);
size_t srupb_clients_count(const struct srupb_clients *cl);

/* ---------------------------------------------------------------- acl.c */

int srupb_acl_check(int event, void *event_data, void *userdata);

/* ---------------------------------------------------------------- control.c */

int srupb_control_cb(int event, void *event_data, void *userdata);
/* A non-admin's publish to $CONTROL/srup/v1 was refused by the WRITE check: audit and count it. */
void srupb_control_refused(struct srupb_ctx *ctx, struct mosquitto *client, const char *identity);

/* ---------------------------------------------------------------- control_cmd.c */

#define SRUPB_CONTROL_MAX  8192    /* bytes of one command; a longer payload is refused unparsed */
#define SRUPB_PAGE_DEFAULT 100     /* entries per answer of a list command ... */
#define SRUPB_PAGE_MAX     1000    /* ... and at most ("limit") */
#define SRUPB_OVERLAP_MAX  2592000 /* seconds a rotated-out key may stay valid (30 days) */

/* The admin commands (control_cmd.c has each one's parameters). */
enum srupb_cmd {
	SRUPB_CMD_NONE = 0,
	SRUPB_CMD_RELOAD,        /* reload */
	SRUPB_CMD_REVOKE,        /* revokeKey (or revoke) id */
	SRUPB_CMD_LIST_KEYS,     /* listKeys [after] [limit] */
	SRUPB_CMD_GET_KEY,       /* getKey id */
	SRUPB_CMD_ADD_KEY,       /* addKey id role pem [force] */
	SRUPB_CMD_ROTATE_KEY,    /* rotateKey id pem overlap */
	SRUPB_CMD_LIST_MEMBERS,  /* listMembers [id: device] [after [after_server]] [limit] */
	SRUPB_CMD_REMOVE_MEMBER, /* removeMember id: device, server */
	SRUPB_CMD_GET_MARKS,     /* getMarks id: sender */
	SRUPB_CMD_LIST_PENDING,  /* listPendingJoins [limit] */
	SRUPB_CMD_GET_STATS,     /* getStats */
};

struct srupb_command {
	enum srupb_cmd cmd; /* set as soon as "command" names a known one, even on a later error */
	bool has_id;
	uint64_t id;
	bool has_server;
	uint64_t server;
	bool has_after; /* paging: answer from the entry after (after, after_server) */
	uint64_t after;
	uint64_t after_server;
	size_t limit;     /* entries per answer (SRUPB_PAGE_DEFAULT unless given) */
	unsigned role;    /* enum srupb_role, addKey */
	bool force;       /* addKey: replace an active key */
	uint64_t overlap; /* rotateKey: seconds the old key stays valid */
	size_t pem_len;
	char pem[SRUPB_CONTROL_MAX]; /* NUL-terminated */
};

/* Parse one admin command from bytes[0, len): a JSON object (strict JSON, UTF-8, no duplicate
 * keys) with "command" a string and that command's parameters, each of its type; any other key
 * is refused. Returns NULL on success, else a static error text (never echoes the input); on
 * failure only out->cmd may be set. Allocates nothing that outlives the call. */
const char *srupb_control_parse(const void *bytes, size_t len, struct srupb_command *out);
/* The command's name ("reload", "listKeys", ...), or NULL. */
const char *srupb_command_name(enum srupb_cmd c);
/* ---------------------------------------------------------------- control_exec.c */

/* Run a parsed admin command against the broker state. *data gets the answer's "data" object
 * (a new reference, or NULL); detail a short text for the answer and the audit line. Returns
 * whether it succeeded. */
struct json_t;
bool srupb_control_exec(struct srupb_ctx *ctx, const struct srupb_command *cmd,
                        struct json_t **data, char *detail, size_t detail_cap);

/* Re-read policy (file or embedded), drop the key cache, reopen the audit log. Keeps the old
 * policy on failure. Returns OK or the failure; logs either way. */
enum srup_err srupb_reload(struct srupb_ctx *ctx);

#endif
