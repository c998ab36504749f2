/* SPDX-License-Identifier: MIT
 * c2.c - srup-c2: a SRUP command-and-control server daemon on libmosquitto.
 * Accepts joins (simple, human-moderated, observed), runs update/action/data/identity
 * exchanges and leaving, driven by `srup-c2 send ...` over its unix control socket.
 * Every receive check (signature, sequence ID, sender) is done in tools/common/srupd.c. */
#include "srupd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#define XCHG_MAX  64
#define JOINS_MAX 32
#define RECV_MAX  64
#define VALUE_LEN 32

enum xchg_kind { X_UPDATE = 1, X_ACTION, X_DATA, X_ID };

/* One exchange started by a control command, tied to its replies by the token. */
struct xchg {
	int used;
	enum xchg_kind kind;
	uint64_t dev;
	char token[SRUP_TOKEN_LEN + 1];
	int done;
	int http_parts; /* UPDATE_FAIL_HTTP_ERROR: DATA messages still expected */
	char result[1024];
};

enum join_kind { J_HM = 1, J_OBS };

/* A join waiting for a person (HM) or for the beacon's report (OBS). */
struct pjoin {
	int used;
	enum join_kind kind;
	uint64_t dev;
	uint64_t observer;
	char value[VALUE_LEN + 1];
	char dev_token[SRUP_TOKEN_LEN + 1]; /* HM_JOIN_RESP / OBS_JOIN_RESP token: the outcome's */
	char obs_token[SRUP_TOKEN_LEN + 1]; /* OBSERVE_REQ token: the beacon's RESPONSE */
	unsigned outcome;                   /* 0 while pending */
};

/* DATA received from devices outside any exchange, for `wait-data`. */
struct rdata {
	int used;
	uint64_t dev;
	char data_id[64];
	char text[512];
};

struct c2_app {
	struct xchg x[XCHG_MAX];
	struct pjoin j[JOINS_MAX];
	struct rdata r[RECV_MAX];
	size_t r_next;
	int events; /* bumped on every change a waiter may look at */
};

static struct c2_app app;

static void dev_topic(uint64_t dev, char *out, size_t cap)
{
	char t[SRUP_ID_TEXT_MAX];

	srupd_id_text(dev, t);
	snprintf(out, cap, "SRUP/%s", t);
}

static void set_token(struct srup_msg *m, const char *tok)
{
	m->token.p = (const uint8_t *)tok;
	m->token.len = strlen(tok);
}

static void token_copy(char out[SRUP_TOKEN_LEN + 1], const struct srup_bytes *t)
{
	size_t n = t->len < SRUP_TOKEN_LEN ? t->len : SRUP_TOKEN_LEN;

	memcpy(out, t->p, n);
	out[n] = '\0';
}

/* Send m to device dev on SRUP/<dev> (lock held). */
static int send_dev(struct srupd *d, uint64_t dev, struct srup_msg *m)
{
	char topic[64];

	dev_topic(dev, topic, sizeof(topic));
	return srupd_send(d, dev, topic, m);
}

static int send_simple(struct srupd *d, uint64_t dev, enum srup_msg_type type, const char *tok)
{
	struct srup_msg m;

	memset(&m, 0, sizeof(m));
	m.type = (uint8_t)type;
	set_token(&m, tok);
	return send_dev(d, dev, &m);
}

static int send_response(struct srupd *d, uint64_t dev, const char *tok, unsigned status)
{
	struct srup_msg m;

	memset(&m, 0, sizeof(m));
	m.type = SRUP_MSG_RESPONSE;
	m.status = (uint8_t)status;
	set_token(&m, tok);
	return send_dev(d, dev, &m);
}

static struct srupd_peer *member(struct srupd *d, uint64_t dev)
{
	size_t i;

	for (i = 0; i < d->state.n; i++) {
		if (d->state.peers[i].id == dev && d->state.peers[i].member) {
			return &d->state.peers[i];
		}
	}
	return NULL;
}

static void set_member(struct srupd *d, uint64_t dev, int on)
{
	struct srupd_peer *p = srupd_state_peer(&d->state, dev);
	char topic[64];

	if (p == NULL) {
		return;
	}
	p->member = on;
	srupd_state_save(&d->state);
	dev_topic(dev, topic, sizeof(topic));
	if (on) {
		srupd_subscribe(d, topic);
	} else {
		srupd_unsubscribe(d, topic);
	}
}

/* Drop a device's key for good (DEREGISTER): rename it so it is never loaded again. */
static void forget_key(struct srupd *d, uint64_t dev)
{
	char id[SRUP_ID_TEXT_MAX];
	char from[SRUPD_PATH_MAX + 32];
	char to[SRUPD_PATH_MAX + 48];

	srupd_id_text(dev, id);
	snprintf(from, sizeof(from), "%s/%s.pub.pem", d->cfg.peer_keys, id);
	snprintf(to, sizeof(to), "%s/%s.pub.pem.deregistered", d->cfg.peer_keys, id);
	if (rename(from, to) != 0) {
		srupd_log(SRUPD_WARN, "deregister: cannot retire %s: %s", from, strerror(errno));
	}
	srupd_keys_forget(dev);
}

static void new_value(char out[VALUE_LEN + 1])
{
	uint8_t b[VALUE_LEN / 2];

	if (RAND_bytes(b, sizeof(b)) != 1) {
		srupd_log(SRUPD_ERR, "RAND_bytes failed");
		abort();
	}
	(void)srup_hex_encode(b, sizeof(b), out, VALUE_LEN + 1);
	OPENSSL_cleanse(b, sizeof(b));
}

/* Encrypt value to the public key of peer id; *blob malloc'd. */
static int seal_to(struct srupd *d, uint64_t id, const char *value, uint8_t **blob, size_t *len)
{
	const struct srup_key *k = srupd_key_get(d->cfg.peer_keys, id);

	if (k == NULL) {
		return -1;
	}
	return srup_envelope_seal(k, (const uint8_t *)value, strlen(value), blob, len, NULL) ==
					SRUP_OK
			? 0
			: -1;
}

static struct xchg *xchg_find(uint64_t dev, const struct srup_bytes *tok)
{
	size_t i;

	for (i = 0; i < XCHG_MAX; i++) {
		if (app.x[i].used && !app.x[i].done && app.x[i].dev == dev &&
				srupd_token_eq(tok, app.x[i].token)) {
			return &app.x[i];
		}
	}
	return NULL;
}

/* ---- joins ---------------------------------------------------------------------------------- */

static struct pjoin *pjoin_new(void)
{
	size_t i;

	for (i = 0; i < JOINS_MAX; i++) {
		if (!app.j[i].used) {
			memset(&app.j[i], 0, sizeof(app.j[i]));
			app.j[i].used = 1;
			return &app.j[i];
		}
	}
	return NULL;
}

static struct pjoin *pjoin_find_dev(uint64_t dev)
{
	size_t i;

	for (i = 0; i < JOINS_MAX; i++) {
		if (app.j[i].used && app.j[i].dev == dev && app.j[i].outcome == 0) {
			return &app.j[i];
		}
	}
	return NULL;
}

static void join_decide(struct srupd *d, struct pjoin *j, unsigned status)
{
	char id[SRUP_ID_TEXT_MAX];

	srupd_id_text(j->dev, id);
	if (status == SRUP_ST_JOIN_SUCCESS) {
		set_member(d, j->dev, 1);
	}
	send_response(d, j->dev, j->dev_token, status);
	srupd_log(SRUPD_INFO, "join %s: %s", id, srup_status_name(status));
	j->outcome = status;
	OPENSSL_cleanse(j->value, sizeof(j->value));
	app.events++;
}

static void on_join_req(struct srupd *d, const struct srup_msg *m)
{
	char tok[SRUP_TOKEN_LEN + 1];
	char id[SRUP_ID_TEXT_MAX];

	token_copy(tok, &m->token);
	srupd_id_text(m->sender_id, id);
	if (strcmp(d->cfg.join_policy, "accept") != 0) {
		srupd_log(SRUPD_INFO, "join %s refused by policy", id);
		send_response(d, m->sender_id, tok, SRUP_ST_JOIN_REFUSED);
		return;
	}
	set_member(d, m->sender_id, 1);
	send_response(d, m->sender_id, tok, SRUP_ST_JOIN_SUCCESS);
	srupd_log(SRUPD_INFO, "join %s: JOIN_SUCCESS (simple)", id);
	app.events++;
}

static void on_hm_join_req(struct srupd *d, const struct srup_msg *m)
{
	struct pjoin *j = pjoin_find_dev(m->sender_id);
	struct srup_msg out;
	uint8_t *blob = NULL;
	size_t blob_len = 0;
	char id[SRUP_ID_TEXT_MAX];

	srupd_id_text(m->sender_id, id);
	if (j == NULL) {
		j = pjoin_new();
	}
	if (j == NULL) {
		srupd_log(SRUPD_WARN, "hm join %s: too many pending joins", id);
		return;
	}
	j->kind = J_HM;
	j->dev = m->sender_id;
	new_value(j->value);
	srup_token_new(j->dev_token);
	if (seal_to(d, m->sender_id, j->value, &blob, &blob_len) != 0) {
		srupd_log(SRUPD_WARN, "hm join %s: cannot encrypt to its key", id);
		j->used = 0;
		return;
	}
	memset(&out, 0, sizeof(out));
	out.type = SRUP_MSG_HM_JOIN_RESP;
	set_token(&out, j->dev_token);
	out.encrypted.p = blob;
	out.encrypted.len = blob_len;
	if (send_dev(d, m->sender_id, &out) == 0) {
		srupd_log(SRUPD_INFO,
				"hm join %s: compare the device's value with `srup-c2 pending`, then "
				"`srup-c2 approve %s` or `srup-c2 reject %s`",
				id, id, id);
	}
	free(blob);
	app.events++;
}

static void on_obs_join_req(struct srupd *d, const struct srup_msg *m)
{
	struct pjoin *j;
	struct srup_msg out;
	uint8_t *blob = NULL;
	size_t blob_len = 0;
	char id[SRUP_ID_TEXT_MAX];
	char tok[SRUP_TOKEN_LEN + 1];

	srupd_id_text(m->sender_id, id);
	token_copy(tok, &m->token);
	if (member(d, m->observer_id) == NULL ||
			srupd_key_get(d->cfg.peer_keys, m->observer_id) == NULL) {
		srupd_log(SRUPD_WARN, "observed join %s: observer %llx is not a member", id,
				(unsigned long long)m->observer_id);
		send_response(d, m->sender_id, tok, SRUP_ST_JOIN_FAIL);
		return;
	}
	j = pjoin_find_dev(m->sender_id);
	if (j == NULL) {
		j = pjoin_new();
	}
	if (j == NULL) {
		return;
	}
	j->kind = J_OBS;
	j->dev = m->sender_id;
	j->observer = m->observer_id;
	new_value(j->value);
	srup_token_new(j->dev_token);
	srup_token_new(j->obs_token);
	/* To the joining device: the value, encrypted to its key. */
	if (seal_to(d, j->dev, j->value, &blob, &blob_len) != 0) {
		j->used = 0;
		return;
	}
	memset(&out, 0, sizeof(out));
	out.type = SRUP_MSG_OBS_JOIN_RESP;
	set_token(&out, j->dev_token);
	out.encrypted.p = blob;
	out.encrypted.len = blob_len;
	send_dev(d, j->dev, &out);
	free(blob);
	blob = NULL;
	/* To the observer: the same value, encrypted to the observer's key. */
	if (seal_to(d, j->observer, j->value, &blob, &blob_len) != 0) {
		j->used = 0;
		return;
	}
	memset(&out, 0, sizeof(out));
	out.type = SRUP_MSG_OBSERVE_REQ;
	set_token(&out, j->obs_token);
	out.joining_device_id = j->dev;
	out.encrypted.p = blob;
	out.encrypted.len = blob_len;
	send_dev(d, j->observer, &out);
	free(blob);
	srupd_log(SRUPD_INFO, "observed join %s: waiting for observer %llx", id,
			(unsigned long long)j->observer);
}

/* The observer's verdict on an observed join. 1 if m was one. */
static int on_observer_response(struct srupd *d, const struct srup_msg *m)
{
	size_t i;

	for (i = 0; i < JOINS_MAX; i++) {
		struct pjoin *j = &app.j[i];

		if (!j->used || j->kind != J_OBS || j->outcome != 0 || j->observer != m->sender_id ||
				!srupd_token_eq(&m->token, j->obs_token)) {
			continue;
		}
		join_decide(d, j,
				m->status == SRUP_ST_OBSERVED_JOIN_VALID ? SRUP_ST_JOIN_SUCCESS
														 : SRUP_ST_JOIN_REFUSED);
		return 1;
	}
	return 0;
}

/* ---- device channel --------------------------------------------------------------------------- */

static void xchg_finish(struct xchg *x, const char *verdict, const char *what)
{
	snprintf(x->result, sizeof(x->result), "%s %s", verdict, what);
	x->done = 1;
	app.events++;
}

static void on_response(struct srupd *d, const struct srup_msg *m)
{
	struct xchg *x = xchg_find(m->sender_id, &m->token);
	const char *st = srup_status_name(m->status);

	if (st == NULL) {
		st = "UNKNOWN_STATUS";
	}
	if (x == NULL) {
		if (!on_observer_response(d, m)) {
			srupd_log(SRUPD_WARN, "RESPONSE %s with no open exchange: ignored", st);
		}
		return;
	}
	if (x->kind == X_UPDATE && m->status == SRUP_ST_UPDATE_SUCCESS) {
		/* The device has the file and its digest matched: activate it with the same token. */
		if (send_simple(d, x->dev, SRUP_MSG_ACTIVATE, x->token) != 0) {
			xchg_finish(x, "ERR", "ACTIVATE could not be sent");
		}
		return;
	}
	if (x->kind == X_UPDATE && m->status == SRUP_ST_UPDATE_FAIL_HTTP_ERROR) {
		x->http_parts = 2;
		snprintf(x->result, sizeof(x->result), "OK %s", st);
		return;
	}
	xchg_finish(x, "OK", st);
}

static void printable(const struct srup_bytes *b, char *out, size_t cap)
{
	size_t i;
	size_t n = 0;

	for (i = 0; i < b->len && n + 1 < cap; i++) {
		out[n++] = (b->p[i] >= 0x20 && b->p[i] < 0x7f) ? (char)b->p[i] : '.';
	}
	out[n] = '\0';
}

static void on_data(struct srupd *d, const struct srup_msg *m)
{
	struct xchg *x = xchg_find(m->sender_id, &m->token);
	char id[64];
	char text[512];
	struct rdata *r;

	(void)d;
	printable(&m->data_id, id, sizeof(id));
	printable(&m->data, text, sizeof(text));
	srupd_log(SRUPD_INFO, "data from %llx: %s = %s", (unsigned long long)m->sender_id, id, text);
	if (x != NULL && x->kind == X_UPDATE && x->http_parts > 0) {
		size_t off = strlen(x->result);

		if (strcmp(id, "HTTP_STATUS") == 0 && m->data.len == 4) {
			unsigned long v = (unsigned long)m->data.p[0] | (unsigned long)m->data.p[1] << 8 |
					(unsigned long)m->data.p[2] << 16 | (unsigned long)m->data.p[3] << 24;
			snprintf(x->result + off, sizeof(x->result) - off, " http_status=%lu", v);
		} else {
			snprintf(x->result + off, sizeof(x->result) - off, " %s=%.200s", id, text);
		}
		if (--x->http_parts == 0) {
			x->done = 1;
			app.events++;
		}
		return;
	}
	if (x != NULL && (x->kind == X_DATA || x->kind == X_ID)) {
		snprintf(x->result, sizeof(x->result), "OK %s %s", id, text);
		x->done = 1;
		app.events++;
		return;
	}
	r = &app.r[app.r_next];
	app.r_next = (app.r_next + 1) % RECV_MAX;
	r->used = 1;
	r->dev = m->sender_id;
	snprintf(r->data_id, sizeof(r->data_id), "%s", id);
	snprintf(r->text, sizeof(r->text), "%s", text);
	app.events++;
}

static void on_device_msg(struct srupd *d, uint64_t dev, const struct srup_msg *m)
{
	char tok[SRUP_TOKEN_LEN + 1];
	char id[SRUP_ID_TEXT_MAX];

	srupd_id_text(dev, id);
	if (m->sender_id != dev) {
		srupd_log(SRUPD_WARN, "drop | reason=sender_not_channel_owner | topic=SRUP/%s", id);
		return;
	}
	if (member(d, dev) == NULL) {
		srupd_log(SRUPD_WARN, "drop | reason=not_member | sender=%s | type=%s", id,
				srup_msg_type_name(m->type));
		return;
	}
	token_copy(tok, &m->token);
	switch (m->type) {
		case SRUP_MSG_RESPONSE:
			on_response(d, m);
			break;
		case SRUP_MSG_DATA:
			on_data(d, m);
			break;
		case SRUP_MSG_RESIGN_REQUEST:
			send_response(d, dev, tok, SRUP_ST_RESIGN_SUCCESS);
			set_member(d, dev, 0);
			srupd_log(SRUPD_INFO, "device %s resigned", id);
			app.events++;
			break;
		case SRUP_MSG_DEREGISTER_REQ:
			send_response(d, dev, tok, SRUP_ST_DEREGISTER_SUCCESS);
			set_member(d, dev, 0);
			forget_key(d, dev);
			srupd_log(SRUPD_INFO, "device %s deregistered: key retired", id);
			app.events++;
			break;
		default:
			srupd_log(SRUPD_WARN, "drop | reason=unexpected_type | sender=%s | type=%s", id,
					srup_msg_type_name(m->type));
			break;
	}
}

static void on_msg(struct srupd *d, const char *topic, const struct srup_msg *m)
{
	char prefix[64];
	char sender[SRUP_ID_TEXT_MAX];
	uint64_t dev;
	size_t plen;

	srupd_id_text(m->sender_id, sender);
	snprintf(prefix, sizeof(prefix), "SRUP/servers/%s/", d->cfg.identity_text);
	plen = strlen(prefix);
	if (strncmp(topic, prefix, plen) == 0) {
		/* A join topic: its last level must be the sender itself (spec §5.2). */
		if (strcmp(topic + plen, sender) != 0) {
			srupd_log(SRUPD_WARN, "drop | reason=join_topic_mismatch | topic=%s | sender=%s",
					topic, sender);
			return;
		}
		switch (m->type) {
			case SRUP_MSG_JOIN_REQ:
				on_join_req(d, m);
				break;
			case SRUP_MSG_HM_JOIN_REQ:
				on_hm_join_req(d, m);
				break;
			case SRUP_MSG_OBS_JOIN_REQ:
				on_obs_join_req(d, m);
				break;
			default:
				srupd_log(SRUPD_WARN, "drop | reason=not_allowed | type=%s on a join topic",
						srup_msg_type_name(m->type));
				break;
		}
		return;
	}
	if (strncmp(topic, "SRUP/", 5) == 0 && strchr(topic + 5, '/') == NULL &&
			srup_id_parse(topic + 5, strlen(topic + 5), &dev) == SRUP_OK) {
		on_device_msg(d, dev, m);
		return;
	}
	srupd_log(SRUPD_WARN, "drop | reason=unknown_topic | topic=%s", topic);
}

static void on_connect(struct srupd *d)
{
	char topic[64];
	size_t i;

	snprintf(topic, sizeof(topic), "SRUP/servers/%s/+", d->cfg.identity_text);
	srupd_subscribe(d, topic);
	for (i = 0; i < d->state.n; i++) {
		if (d->state.peers[i].member) {
			dev_topic(d->state.peers[i].id, topic, sizeof(topic));
			srupd_subscribe(d, topic);
		}
	}
}

/* ---- control commands ------------------------------------------------------------------------ */

static int parse_dev(const char *s, uint64_t *dev)
{
	return srup_id_parse(s, strlen(s), dev) == SRUP_OK && *dev != 0 ? 0 : -1;
}

static struct xchg *xchg_new(enum xchg_kind kind, uint64_t dev)
{
	size_t i;

	for (i = 0; i < XCHG_MAX; i++) {
		if (!app.x[i].used) {
			memset(&app.x[i], 0, sizeof(app.x[i]));
			app.x[i].used = 1;
			app.x[i].kind = kind;
			app.x[i].dev = dev;
			srup_token_new(app.x[i].token);
			return &app.x[i];
		}
	}
	return NULL;
}

/* Send m (its token set from x), wait for x to complete, reply; lock held. */
static void run_xchg(struct srupd *d, int fd, struct xchg *x, struct srup_msg *m, int timeout_s)
{
	set_token(m, x->token);
	if (send_dev(d, x->dev, m) != 0) {
		srupd_reply(fd, "ERR send failed");
	} else if (srupd_wait_flag(d, &x->done, timeout_s) != 0) {
		srupd_reply(fd, "ERR timeout token=%s %s", x->token, x->result);
	} else {
		srupd_reply(fd, "%s", x->result);
	}
	x->used = 0;
}

static void ctl_send(struct srupd *d, int fd, int argc, char **argv)
{
	struct srup_msg m;
	struct xchg *x;
	uint64_t dev;
	const char *flow;
	char url[SRUP_URL_MAX + 1];
	char digest[80];
	unsigned long action;
	char *end = NULL;

	if (argc < 3 || parse_dev(argv[2], &dev) != 0) {
		srupd_reply(fd, "ERR usage: send FLOW DEVICE_ID ...");
		return;
	}
	flow = argv[1];
	memset(&m, 0, sizeof(m));
	pthread_mutex_lock(&d->lock);
	if (srupd_wait_flag(d, &d->connected, d->cfg.timeout_s) != 0) {
		pthread_mutex_unlock(&d->lock);
		srupd_reply(fd, "ERR not connected to the broker");
		return;
	}
	if (strcmp(flow, "join_cmd") == 0) {
		/* Server-initiated join: adopt the device, command it, then ask who it is. */
		set_member(d, dev, 1);
		m.type = SRUP_MSG_JOIN_CMD;
		m.device_id = dev;
		x = xchg_new(X_ID, dev);
		if (x == NULL) {
			goto busy;
		}
		set_token(&m, x->token);
		if (send_dev(d, dev, &m) != 0) {
			x->used = 0;
			srupd_reply(fd, "ERR send failed");
			goto out;
		}
		memset(&m, 0, sizeof(m));
		m.type = SRUP_MSG_ID_REQUEST;
		srup_token_new(x->token);
		run_xchg(d, fd, x, &m, d->cfg.timeout_s);
		goto out;
	}
	if (member(d, dev) == NULL) {
		srupd_reply(fd, "ERR device %s is not a member", argv[2]);
		goto out;
	}
	if (strcmp(flow, "update") == 0) {
		if (argc != 5 || strlen(argv[3]) > SRUP_URL_MAX - 1 || strlen(argv[4]) != 64) {
			srupd_reply(fd, "ERR usage: send update DEVICE_ID URL SHA256_HEX");
			goto out;
		}
		/* pySRUP convention: url and digest carry a trailing NUL (spec §2.2). */
		snprintf(url, sizeof(url), "%s", argv[3]);
		snprintf(digest, sizeof(digest), "%s", argv[4]);
		m.type = SRUP_MSG_INITIATE;
		m.url.p = (const uint8_t *)url;
		m.url.len = strlen(url) + 1;
		m.digest.p = (const uint8_t *)digest;
		m.digest.len = strlen(digest) + 1;
		x = xchg_new(X_UPDATE, dev);
		if (x == NULL) {
			goto busy;
		}
		run_xchg(d, fd, x, &m, 3 * d->cfg.timeout_s);
	} else if (strcmp(flow, "action") == 0) {
		errno = 0;
		action = argc == 4 ? strtoul(argv[3], &end, 0) : 256;
		if (argc != 4 || errno != 0 || *end != '\0' || action > 255) {
			srupd_reply(fd, "ERR usage: send action DEVICE_ID 0..255");
			goto out;
		}
		m.type = SRUP_MSG_ACTION;
		m.action_id = (uint8_t)action;
		x = xchg_new(X_ACTION, dev);
		if (x == NULL) {
			goto busy;
		}
		run_xchg(d, fd, x, &m, d->cfg.timeout_s);
	} else if (strcmp(flow, "data") == 0) {
		if (argc != 5) {
			srupd_reply(fd, "ERR usage: send data DEVICE_ID DATA_ID TEXT");
			goto out;
		}
		m.type = SRUP_MSG_DATA;
		m.data_id.p = (const uint8_t *)argv[3];
		m.data_id.len = strlen(argv[3]);
		m.data.p = (const uint8_t *)argv[4];
		m.data.len = strlen(argv[4]);
		x = xchg_new(X_DATA, dev);
		if (x == NULL) {
			goto busy;
		}
		if (strcmp(argv[3], "MESSAGE") == 0) {
			/* A plain message has no reply. */
			set_token(&m, x->token);
			srupd_reply(fd, send_dev(d, dev, &m) == 0 ? "OK sent" : "ERR send failed");
			x->used = 0;
		} else {
			run_xchg(d, fd, x, &m, d->cfg.timeout_s);
		}
	} else if (strcmp(flow, "activate") == 0) {
		/* An ACTIVATE outside any update (fresh token): the device must answer ACTIVATE_FAIL. */
		m.type = SRUP_MSG_ACTIVATE;
		x = xchg_new(X_ACTION, dev);
		if (x == NULL) {
			goto busy;
		}
		run_xchg(d, fd, x, &m, d->cfg.timeout_s);
	} else if (strcmp(flow, "id_request") == 0) {
		m.type = SRUP_MSG_ID_REQUEST;
		x = xchg_new(X_ID, dev);
		if (x == NULL) {
			goto busy;
		}
		run_xchg(d, fd, x, &m, d->cfg.timeout_s);
	} else if (strcmp(flow, "terminate") == 0 || strcmp(flow, "deregister") == 0) {
		char tok[SRUP_TOKEN_LEN + 1];
		int dereg = strcmp(flow, "deregister") == 0;

		srup_token_new(tok);
		if (send_simple(d, dev, dereg ? SRUP_MSG_DEREGISTER_CMD : SRUP_MSG_TERMINATE_CMD, tok) !=
				0) {
			srupd_reply(fd, "ERR send failed");
			goto out;
		}
		set_member(d, dev, 0);
		if (dereg) {
			forget_key(d, dev);
		}
		srupd_reply(fd, "OK %s sent", dereg ? "DEREGISTER_CMD" : "TERMINATE_CMD");
	} else {
		srupd_reply(fd, "ERR unknown flow '%s' (update, activate, action, data, id_request, "
						"join_cmd, terminate, deregister)",
				flow);
	}
	goto out;
busy:
	srupd_reply(fd, "ERR too many exchanges in flight");
out:
	pthread_mutex_unlock(&d->lock);
}

static void ctl_decide(struct srupd *d, int fd, int argc, char **argv, int approve)
{
	uint64_t dev;
	struct pjoin *j;

	if (argc != 2 || parse_dev(argv[1], &dev) != 0) {
		srupd_reply(fd, "ERR usage: %s DEVICE_ID", approve ? "approve" : "reject");
		return;
	}
	pthread_mutex_lock(&d->lock);
	j = pjoin_find_dev(dev);
	if (j == NULL || j->kind != J_HM) {
		srupd_reply(fd, "ERR no human-moderated join pending for %s", argv[1]);
	} else {
		join_decide(d, j, approve ? SRUP_ST_JOIN_SUCCESS : SRUP_ST_JOIN_REFUSED);
		srupd_reply(fd, "OK %s", approve ? "JOIN_SUCCESS" : "JOIN_REFUSED");
		j->used = 0;
	}
	pthread_mutex_unlock(&d->lock);
}

static void ctl_pending(struct srupd *d, int fd)
{
	size_t i;
	int n = 0;

	pthread_mutex_lock(&d->lock);
	for (i = 0; i < JOINS_MAX; i++) {
		const struct pjoin *j = &app.j[i];
		char id[SRUP_ID_TEXT_MAX];
		struct srup_id128 v;
		char phrase[SRUP_PHRASE_TEXT_MAX] = "";

		if (!j->used || j->outcome != 0) {
			continue;
		}
		srupd_id_text(j->dev, id);
		if (srup_id128_parse(j->value, strlen(j->value), &v, NULL) == SRUP_OK) {
			(void)srup_phrase_encode(&v, phrase, sizeof(phrase));
		}
		srupd_reply(fd, "%s %s value=%s phrase=%s", j->kind == J_HM ? "hm" : "observed", id,
				j->value, phrase);
		n++;
	}
	pthread_mutex_unlock(&d->lock);
	srupd_reply(fd, "OK %d pending", n);
}

static void ctl_wait_data(struct srupd *d, int fd, int argc, char **argv)
{
	uint64_t dev;
	size_t i;
	int seen;

	if (argc != 3 || parse_dev(argv[1], &dev) != 0) {
		srupd_reply(fd, "ERR usage: wait-data DEVICE_ID DATA_ID");
		return;
	}
	pthread_mutex_lock(&d->lock);
	for (;;) {
		for (i = 0; i < RECV_MAX; i++) {
			struct rdata *r = &app.r[i];

			if (r->used && r->dev == dev && strcmp(r->data_id, argv[2]) == 0) {
				srupd_reply(fd, "OK %s %s", r->data_id, r->text);
				r->used = 0;
				pthread_mutex_unlock(&d->lock);
				return;
			}
		}
		seen = app.events;
		/* Wake on the next event (or time out). */
		{
			int changed = 0;
			struct timespec dl;

			clock_gettime(CLOCK_REALTIME, &dl);
			dl.tv_sec += d->cfg.timeout_s;
			while (!changed) {
				if (pthread_cond_timedwait(&d->cond, &d->lock, &dl) == ETIMEDOUT) {
					break;
				}
				changed = app.events != seen;
			}
			if (!changed) {
				pthread_mutex_unlock(&d->lock);
				srupd_reply(fd, "ERR timeout");
				return;
			}
		}
	}
}

static void ctl_status(struct srupd *d, int fd)
{
	size_t i;

	pthread_mutex_lock(&d->lock);
	for (i = 0; i < d->state.n; i++) {
		char id[SRUP_ID_TEXT_MAX];

		srupd_id_text(d->state.peers[i].id, id);
		srupd_reply(fd, "peer %s member=%d sent=%llu received=%llu", id,
				d->state.peers[i].member, (unsigned long long)d->state.peers[i].sent,
				(unsigned long long)d->state.peers[i].received);
	}
	srupd_reply(fd, "OK id=%s connected=%d", d->cfg.identity_text, srupd_ready(d));
	pthread_mutex_unlock(&d->lock);
}

static void on_ctl(struct srupd *d, int fd, char *line)
{
	char *argv[8];
	int argc = srupd_split(line, argv, 8);

	if (argc == 0) {
		srupd_reply(fd, "ERR empty command");
	} else if (strcmp(argv[0], "send") == 0) {
		ctl_send(d, fd, argc, argv);
	} else if (strcmp(argv[0], "approve") == 0) {
		ctl_decide(d, fd, argc, argv, 1);
	} else if (strcmp(argv[0], "reject") == 0) {
		ctl_decide(d, fd, argc, argv, 0);
	} else if (strcmp(argv[0], "pending") == 0) {
		ctl_pending(d, fd);
	} else if (strcmp(argv[0], "wait-data") == 0) {
		ctl_wait_data(d, fd, argc, argv);
	} else if (strcmp(argv[0], "status") == 0) {
		ctl_status(d, fd);
	} else {
		srupd_reply(fd, "ERR unknown command '%s'", argv[0]);
	}
}

/* ---- main ------------------------------------------------------------------------------------ */

static void usage(void)
{
	fprintf(stderr,
			"usage: srup-c2 [--config FILE] run [--debug]\n"
			"       srup-c2 [--config FILE] send update DEVICE URL SHA256_HEX\n"
			"       srup-c2 [--config FILE] send action DEVICE ACTION_ID\n"
			"       srup-c2 [--config FILE] send data DEVICE DATA_ID TEXT\n"
			"       srup-c2 [--config FILE] send id_request|join_cmd|terminate|deregister DEVICE\n"
			"       srup-c2 [--config FILE] send activate DEVICE   (outside an update: must fail)\n"
			"       srup-c2 [--config FILE] approve|reject DEVICE\n"
			"       srup-c2 [--config FILE] pending | status | wait-data DEVICE DATA_ID\n"
			"The config defaults to $SRUP_C2_CONFIG. Exit: 0 ok, 1 refused/failed, 3 usage or "
			"daemon unreachable.\n");
}

int main(int argc, char **argv)
{
	const char *config = getenv("SRUP_C2_CONFIG");
	char *args[16];
	int n = 0;
	int debug = 0;
	int i;
	struct srupd d;
	int rc;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
			config = argv[++i];
		} else if (strcmp(argv[i], "--debug") == 0) {
			debug = 1;
		} else if (n < 16) {
			args[n++] = argv[i];
		}
	}
	if (n == 0 || config == NULL) {
		usage();
		return 3;
	}
	srupd_log_init("srup-c2", debug ? SRUPD_DEBUG : SRUPD_INFO);
	if (strcmp(args[0], "run") != 0) {
		struct srupd_config cfg;
		char line[SRUPD_LINE_MAX];
		size_t off = 0;

		if (srupd_config_load(config, &cfg) != 0) {
			return 3;
		}
		line[0] = '\0';
		for (i = 0; i < n; i++) {
			int w = snprintf(line + off, sizeof(line) - off, "%s%s", i ? " " : "", args[i]);
			if (w < 0 || (size_t)w >= sizeof(line) - off) {
				return 3;
			}
			off += (size_t)w;
		}
		return srupd_ctl_call(cfg.control_socket, line);
	}
	if (n != 1) {
		usage();
		return 3;
	}
	if (srupd_init(&d, config) != 0) {
		srupd_cleanup(&d);
		return 3;
	}
	if (strcmp(d.cfg.role, "c2") != 0) {
		srupd_log(SRUPD_ERR, "%s: role must be c2", config);
		srupd_cleanup(&d);
		return 3;
	}
	d.on_msg = on_msg;
	d.on_ctl = on_ctl;
	d.on_connect = on_connect;
	d.app = &app;
	rc = srupd_run(&d) == 0 ? 0 : 3;
	srupd_cleanup(&d);
	return rc;
}
