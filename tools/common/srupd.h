/* SPDX-License-Identifier: MIT
 * srupd.h - shared code of the lab daemons (srup-c2, srup-device): config, peer keys,
 * durable sequence state, the MQTT session, the receive checks and the unix control socket.
 * Not a library for others: no stable API, only what the two daemons need. */
#ifndef SRUPD_H
#define SRUPD_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <srup/srup.h>

#define SRUPD_PATH_MAX  512
#define SRUPD_PEERS_MAX 256
#define SRUPD_LINE_MAX  4096

/* ---- logging ---------------------------------------------------------------------------- */

enum srupd_level { SRUPD_DEBUG = 0, SRUPD_INFO = 1, SRUPD_WARN = 2, SRUPD_ERR = 3 };

/* Set the program name shown in every line and the minimum level; log to stderr. */
void srupd_log_init(const char *prog, enum srupd_level min);
void srupd_log(enum srupd_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- config (key = value lines, '#' comments) -------------------------------------------- */

struct srupd_config {
	char path[SRUPD_PATH_MAX];
	uint64_t identity;
	char identity_text[SRUP_ID_TEXT_MAX];
	char role[16]; /* "c2", "device" or "observer" */
	char private_key[SRUPD_PATH_MAX];
	char peer_keys[SRUPD_PATH_MAX]; /* directory of <id>.pub.pem files */
	char broker_host[256];
	int broker_port;
	char tls_ca[SRUPD_PATH_MAX]; /* all three set: mutual TLS */
	char tls_cert[SRUPD_PATH_MAX];
	char tls_key[SRUPD_PATH_MAX];
	char state_file[SRUPD_PATH_MAX];
	char control_socket[SRUPD_PATH_MAX];
	/* device / observer */
	uint64_t server;                    /* the C2 server to join (0: none configured) */
	char update_dir[SRUPD_PATH_MAX];    /* where downloads land */
	char update_ca[SRUPD_PATH_MAX];     /* CA bundle for https update URLs (optional) */
	char beacon_socket[SRUPD_PATH_MAX]; /* observer: where it listens; device: default target */
	char show_file[SRUPD_PATH_MAX];     /* device: where the join value is shown (optional) */
	/* c2 */
	char join_policy[16];          /* "accept" (default) or "refuse" */
	char wire_log[SRUPD_PATH_MAX]; /* optional: hex of every message sent and received */
	int timeout_s;                 /* control commands wait this long (default 20) */
	int reply_wait_s; /* c2: how long a command waits for an optional reply (default 3) */
	/* c2: the registration service it registers itself with at start (optional) */
	char registry_url[512];
	char registry_ca[SRUPD_PATH_MAX];
	char registry_token[1024]; /* the PSS token the registry's operator issued for our key */
	/* c2: the operator console (HTTPS; off unless console_port is set) */
	char console_address[64];
	int console_port;
	char console_cert[SRUPD_PATH_MAX];
	char console_key[SRUPD_PATH_MAX];
	char console_operators[SRUPD_PATH_MAX];
	char console_audit_log[SRUPD_PATH_MAX];
	char console_registration_url[512];
};

/* Parse the file at path. Unknown keys, missing required keys (identity, private_key,
 * peer_keys, broker_host, broker_port, state_file, control_socket) and bad values are refused
 * with a message naming the file and line. Returns 0 or -1. */
int srupd_config_load(const char *path, struct srupd_config *cfg);

/* Every config key with a one-line meaning, for --help (role "c2" or "device"). */
void srupd_config_help(FILE *to, const char *role);

/* ---- command line (getopt_long) ------------------------------------------------------------ */

/* PROG [OPTIONS] COMMAND [OPTIONS] [ARGS...]: --config FILE, --debug, --help, --version may
 * come before or right after the command word; the command's own arguments follow (they may
 * start with '-' after the first of them). */
struct srupd_cli {
	const char *config; /* NULL if not given */
	int debug;
	const char *cmd; /* NULL if none */
	int argc;        /* the command's own arguments */
	char **argv;
};

/* 0: parsed; 1: --help or --version was printed (exit 0); 3: usage error (reported). usage
 * prints the program's usage to the stream it is given. */
int srupd_cli_parse(int argc, char **argv, const char *prog, void (*usage)(FILE *),
                    struct srupd_cli *out);

/* ---- durable per-peer state --------------------------------------------------------------- */

struct srupd_peer {
	uint64_t id;
	uint64_t sent;     /* last sequence ID we sent to this peer */
	uint64_t received; /* highest sequence ID we accepted from this peer */
	int member;        /* c2: device joined; device: this is our server */
};

struct srupd_state {
	char path[SRUPD_PATH_MAX];
	size_t n;
	struct srupd_peer peers[SRUPD_PEERS_MAX];
};

int srupd_state_load(struct srupd_state *st, const char *path);
/* Write to path.tmp, fsync, rename over path, fsync the directory. 0 or -1. */
int srupd_state_save(const struct srupd_state *st);
/* Find or add the record of peer id (NULL if the table is full). */
struct srupd_peer *srupd_state_peer(struct srupd_state *st, uint64_t id);
/* The sequence ID of our next message to p: above both what we last sent it and what we last
 * accepted from it. pySRUP keeps one counter per peer for both directions and drops anything
 * not above it (spec section 6), so a number below what the peer last sent would be dropped
 * there. Returns -1 when the space is exhausted (the peer's own numbers can exhaust it). */
int srupd_next_seq(const struct srupd_peer *p, uint64_t *out);

/* ---- peer keys ------------------------------------------------------------------------------ */

/* The public key of peer id from <peer_keys>/<id text>.pub.pem, cached after the first load;
 * NULL if there is none or it does not load. Borrowed; valid until srupd_keys_forget(id). */
const struct srup_key *srupd_key_get(const char *dir, uint64_t id);
void srupd_keys_forget(uint64_t id);
void srupd_keys_free_all(void);

/* ---- the daemon ----------------------------------------------------------------------------- */

struct srupd;

/* Called (under d->lock) with a message that passed every check: well-formed, not our own,
 * known sender, fresh sequence ID (already committed), valid signature. */
typedef void (*srupd_msg_fn)(struct srupd *d, const char *topic, const struct srup_msg *m);
/* Called (without the lock) on a control-socket connection with one command line; the handler
 * writes reply lines to fd and ends with "OK ..." or "ERR ...". */
typedef void (*srupd_ctl_fn)(struct srupd *d, int fd, char *line);
/* Called (under d->lock) after every (re)connect, to subscribe. */
typedef void (*srupd_connect_fn)(struct srupd *d);
/* Called (under d->lock) with a message on a $SYS topic (not SRUP). */
typedef void (*srupd_sys_fn)(struct srupd *d, const char *topic, const void *payload, size_t len);
/* Called (under d->lock) with the broker's answer to each of our publishes. */
typedef void (*srupd_ack_fn)(struct srupd *d, int mid, int reason);

/* The broker's answer (PUBACK) to one of our publishes. */
#define SRUPD_ACKS 64
struct srupd_ack {
	int mid;    /* 0: unused slot */
	int reason; /* MQTT v5 reason code: below 0x80 accepted */
};

/* One of our publishes, to tell which peer's counter a refusal concerns. */
struct srupd_sent {
	int mid;
	uint64_t peer;
	uint64_t seq;
};

struct srupd {
	struct srupd_config cfg;
	struct srupd_state state;
	struct srup_key *key;
	struct mosquitto *mosq;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* broadcast whenever a waiter's condition may have changed */
	srupd_msg_fn on_msg;
	srupd_ctl_fn on_ctl;
	srupd_connect_fn on_connect;
	srupd_ack_fn on_ack;
	srupd_sys_fn on_sys;
	int connected;
	int subs_pending;                  /* subscriptions sent but not yet acknowledged */
	void *app;                         /* the daemon's own data */
	struct srupd_ack acks[SRUPD_ACKS]; /* the newest PUBACKs, a ring */
	size_t ack_next;
	struct srupd_sent sent[SRUPD_ACKS]; /* our newest publishes: to whom, which number */
	size_t sent_next;
};

/* Load config, key and state; create the MQTT client (username = identity text, MQTT v5,
 * TLS if configured). 0 or -1 (logged). */
int srupd_init(struct srupd *d, const char *config_path);
/* Connect, start the network thread, then serve the control socket until SIGTERM/SIGINT. */
int srupd_run(struct srupd *d);
void srupd_cleanup(struct srupd *d);

/* Sign m (sequence_id and sender_id filled in here from the peer's counter, which is made
 * durable first) and publish on topic at QoS 1. Call with d->lock held. 0 or -1. */
int srupd_send(struct srupd *d, uint64_t peer, const char *topic, struct srup_msg *m);
/* As srupd_send; *mid gets the publish's message id, for srupd_wait_ack. */
int srupd_send_mid(struct srupd *d, uint64_t peer, const char *topic, struct srup_msg *m, int *mid);
/* When the broker refuses one of our messages, the counter to that peer moves forward to at
 * least the current time in microseconds: if the refusal was a replay refusal because our
 * state went back (a restored state file), the next message passes the broker's mark, and
 * pySRUP-like peers accept any higher number. Returns the new counter (lock held). */
uint64_t srupd_seq_resync(struct srupd *d, uint64_t peer);
/* Wait (d->lock held) until the broker answers publish mid or timeout_s pass.
 * 0: accepted; 1: refused (*reason is the PUBACK reason code); -1: no answer in time. */
int srupd_wait_ack(struct srupd *d, int mid, int timeout_s, int *reason);

/* Subscribe (QoS 1, no-local) / unsubscribe. Call with d->lock held. */
void srupd_subscribe(struct srupd *d, const char *topic);
void srupd_unsubscribe(struct srupd *d, const char *topic);

/* 1 when connected and every subscription is acknowledged (lock held). */
int srupd_ready(const struct srupd *d);

/* Wait on d->cond (d->lock held) until *flag is non-zero or the deadline passes. 0 if set. */
int srupd_wait_flag(struct srupd *d, const int *flag, int timeout_s);

/* Control socket client: send line to the daemon at sock_path, copy the reply to stdout.
 * Returns 0 if the last line starts with "OK", 1 on "ERR", 3 if the daemon is unreachable. */
int srupd_ctl_call(const char *sock_path, const char *line);

/* Write a formatted line to a control connection. */
void srupd_reply(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Helpers. */
void srupd_id_text(uint64_t id, char out[SRUP_ID_TEXT_MAX]);
/* Token bytes as printable text (non-printable bytes as '?'), for logs. */
void srupd_token_text(const struct srup_bytes *t, char *out, size_t cap);
/* Constant-time token comparison with a NUL-terminated expected token; 1 if equal. */
int srupd_token_eq(const struct srup_bytes *t, const char *expected);
/* Split a command line into at most max words (in place); returns the count. */
int srupd_split(char *line, char **argv, int max);
/* Write all of buf to path via tmp + fsync + rename. 0 or -1. */
int srupd_write_file(const char *path, const void *buf, size_t len);

#endif
