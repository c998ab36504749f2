/* SPDX-License-Identifier: MIT
 * c2.c - srup-c2: a SRUP command-and-control server daemon on libmosquitto.
 * Runs update/action/data/identity exchanges and leaving on device channels (joins are in
 * joins.c), driven by `srup-c2 send ...` over its unix control socket.
 * Every receive check (signature, sequence ID, sender) is done in tools/common/srupd.c. */
#include "c2.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <mosquitto.h>

#include "keyex.h"

struct c2_app c2st;

void c2_dev_topic(uint64_t dev, char *out, size_t cap)
{
	char t[SRUP_ID_TEXT_MAX];

	srupd_id_text(dev, t);
	snprintf(out, cap, "SRUP/%s", t);
}

void c2_set_token(struct srup_msg *m, const char *tok)
{
	m->token.p = (const uint8_t *)tok;
	m->token.len = strlen(tok);
}

void c2_token_copy(char out[SRUP_TOKEN_LEN + 1], const struct srup_bytes *t)
{
	size_t n = t->len < SRUP_TOKEN_LEN ? t->len : SRUP_TOKEN_LEN;

	memcpy(out, t->p, n);
	out[n] = '\0';
}

/* Send m to device dev on SRUP/<dev> (lock held). */
int c2_send_dev(struct srupd *d, uint64_t dev, struct srup_msg *m)
{
	char topic[64];

	c2_dev_topic(dev, topic, sizeof(topic));
	return srupd_send(d, dev, topic, m);
}

int c2_send_dev_mid(struct srupd *d, uint64_t dev, struct srup_msg *m, int *mid)
{
	char topic[64];

	c2_dev_topic(dev, topic, sizeof(topic));
	return srupd_send_mid(d, dev, topic, m, mid);
}

int c2_wait_ack(struct srupd *d, int fd, int mid, const char *what, const char *tok)
{
	int reason = 0;
	int rc = srupd_wait_ack(d, mid, d->cfg.timeout_s, &reason);

	if (rc < 0) {
		srupd_reply(fd, "ERR %s: no answer from the broker within %d s token=%s", what,
		            d->cfg.timeout_s, tok);
	} else if (rc > 0) {
		/* srupd has moved the counter forward: a replay refusal after a restored state file
		 * does not repeat. */
		srupd_reply(fd,
		            "ERR %s refused by the broker: reason 0x%02x (%s) token=%s (sequence IDs "
		            "moved forward: if our state was restored from an older copy, retrying "
		            "works)",
		            what, (unsigned)reason, mosquitto_reason_string(reason), tok);
	}
	return rc;
}

int c2_send_response(struct srupd *d, uint64_t dev, const char *tok, unsigned status)
{
	struct srup_msg m;

	memset(&m, 0, sizeof(m));
	m.type = SRUP_MSG_RESPONSE;
	m.status = (uint8_t)status;
	c2_set_token(&m, tok);
	return c2_send_dev(d, dev, &m);
}

struct srupd_peer *c2_member(struct srupd *d, uint64_t dev)
{
	size_t i;

	for (i = 0; i < d->state.n; i++) {
		if (d->state.peers[i].id == dev && d->state.peers[i].member) {
			return &d->state.peers[i];
		}
	}
	return NULL;
}

void c2_set_member(struct srupd *d, uint64_t dev, int on)
{
	struct srupd_peer *p = srupd_state_peer(&d->state, dev);
	char topic[64];

	if (p == NULL) {
		return;
	}
	p->member = on;
	srupd_state_save(&d->state);
	c2_dev_topic(dev, topic, sizeof(topic));
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

static struct xchg *xchg_find(uint64_t dev, const struct srup_bytes *tok)
{
	size_t i;

	for (i = 0; i < XCHG_MAX; i++) {
		if (c2st.x[i].used && !c2st.x[i].done && c2st.x[i].dev == dev &&
		    srupd_token_eq(tok, c2st.x[i].token)) {
			return &c2st.x[i];
		}
	}
	return NULL;
}

/* The oldest open ID_REQUEST exchange with dev: pySRUP answers an ID_REQUEST with DATA
 * IDENTIFICATION_RESPONSE under a fresh token, so the answer is matched by its signed sender
 * and data id. */
static struct xchg *xchg_find_id(uint64_t dev)
{
	struct xchg *best = NULL;
	size_t i;

	for (i = 0; i < XCHG_MAX; i++) {
		struct xchg *x = &c2st.x[i];

		if (x->used && !x->done && x->kind == X_ID && x->dev == dev &&
		    (best == NULL || (best->detached && !x->detached) ||
		     (best->detached == x->detached && x->expires < best->expires))) {
			best = x;
		}
	}
	return best;
}

/* ---- device channel --------------------------------------------------------------------------- */

/* Record a late reply: the command that started x has returned already. Frees x. */
static void xchg_late(struct xchg *x)
{
	char id[SRUP_ID_TEXT_MAX];

	srupd_id_text(x->dev, id);
	srupd_log(SRUPD_INFO, "late reply | device=%s | token=%s | %s", id, x->token, x->result);
	snprintf(c2st.late[c2st.late_next], sizeof(c2st.late[0]), "late %s token=%s %s", id, x->token,
	         x->result);
	c2st.late_next = (c2st.late_next + 1) % LATE_MAX;
	x->used = 0;
}

static void xchg_finish(struct xchg *x, const char *verdict, const char *what)
{
	snprintf(x->result, sizeof(x->result), "%s %s", verdict, what);
	x->done = 1;
	c2st.events++;
	if (x->detached) {
		xchg_late(x);
	}
}

static void on_response(struct srupd *d, const struct srup_msg *m)
{
	struct xchg *x = xchg_find(m->sender_id, &m->token);
	const char *st = srup_status_name(m->status);

	if (st == NULL) {
		st = "UNKNOWN_STATUS";
	}
	if (x == NULL) {
		if (!c2_observer_response(d, m)) {
			srupd_log(SRUPD_WARN, "RESPONSE %s with no open exchange: ignored", st);
		}
		return;
	}
	if (x->kind == X_UPDATE && m->status == SRUP_ST_UPDATE_SUCCESS && !x->activated) {
		/* The device has the file and its digest matched: activate it with the same token.
		 * The command waits for the broker's answer to the ACTIVATE (not here: this is the
		 * network thread). */
		struct srup_msg a;

		memset(&a, 0, sizeof(a));
		a.type = SRUP_MSG_ACTIVATE;
		c2_set_token(&a, x->token);
		if (c2_send_dev_mid(d, x->dev, &a, &x->activate_mid) != 0) {
			xchg_finish(x, "ERR", "UPDATE_SUCCESS but ACTIVATE could not be sent");
			return;
		}
		x->activated = 1;
		c2st.events++;
		if (x->detached) {
			srupd_log(SRUPD_INFO, "late reply | token=%s | UPDATE_SUCCESS: ACTIVATE sent",
			          x->token);
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
			c2st.events++;
			if (x->detached) {
				xchg_late(x);
			}
		}
		return;
	}
	if (x == NULL && strcmp(id, "IDENTIFICATION_RESPONSE") == 0) {
		x = xchg_find_id(m->sender_id);
	}
	if (x != NULL && (x->kind == X_DATA || x->kind == X_ID)) {
		char what[sizeof(id) + sizeof(text) + 2];

		snprintf(what, sizeof(what), "%s %s", id, text);
		xchg_finish(x, "OK", what);
		return;
	}
	r = &c2st.r[c2st.r_next];
	c2st.r_next = (c2st.r_next + 1) % RECV_MAX;
	r->used = 1;
	r->dev = m->sender_id;
	snprintf(r->data_id, sizeof(r->data_id), "%s", id);
	snprintf(r->text, sizeof(r->text), "%s", text);
	c2st.events++;
}

struct devinfo *c2_devinfo(uint64_t dev)
{
	size_t i;
	struct devinfo *free_slot = NULL;

	for (i = 0; i < DEVINFO_MAX; i++) {
		if (c2st.devs[i].dev == dev) {
			return &c2st.devs[i];
		}
		if (c2st.devs[i].dev == 0 && free_slot == NULL) {
			free_slot = &c2st.devs[i];
		}
	}
	if (free_slot != NULL) {
		memset(free_slot, 0, sizeof(*free_slot));
		free_slot->dev = dev;
	}
	return free_slot;
}

static void on_device_msg(struct srupd *d, uint64_t dev, const struct srup_msg *m)
{
	char tok[SRUP_TOKEN_LEN + 1];
	char id[SRUP_ID_TEXT_MAX];
	struct devinfo *di;

	srupd_id_text(dev, id);
	if (m->sender_id != dev) {
		srupd_log(SRUPD_WARN, "drop | reason=sender_not_channel_owner | topic=SRUP/%s", id);
		return;
	}
	if (c2_member(d, dev) == NULL) {
		srupd_log(SRUPD_WARN, "drop | reason=not_member | sender=%s | type=%s", id,
		          srup_msg_type_name(m->type));
		return;
	}
	c2_token_copy(tok, &m->token);
	di = c2_devinfo(dev);
	if (di != NULL) {
		snprintf(di->last_type, sizeof(di->last_type), "%s", srup_msg_type_name(m->type));
		di->last_time = time(NULL);
		if (m->type == SRUP_MSG_RESPONSE) {
			const char *st = srup_status_name(m->status);

			snprintf(di->last_data, sizeof(di->last_data), "%s", st != NULL ? st : "?");
			if (m->status == SRUP_ST_UPDATE_SUCCESS || m->status >= 0xFC ||
			    m->status == SRUP_ST_ACTIVATE_SUCCESS || m->status == SRUP_ST_ACTIVATE_FAIL) {
				snprintf(di->update, sizeof(di->update), "%s", st != NULL ? st : "?");
			}
		} else if (m->type == SRUP_MSG_DATA) {
			char a[64];
			char b[128];

			printable(&m->data_id, a, sizeof(a));
			printable(&m->data, b, sizeof(b));
			snprintf(di->last_data, sizeof(di->last_data), "%s = %s", a, b);
		} else {
			di->last_data[0] = '\0';
		}
		c2st.events++;
	}
	switch (m->type) {
		case SRUP_MSG_RESPONSE:
			on_response(d, m);
			break;
		case SRUP_MSG_DATA:
			on_data(d, m);
			break;
		/* No RESIGN_SUCCESS / DEREGISTER_SUCCESS: the device has left, so the broker would
		 * refuse them (not_member / unknown_target), and pySRUP defines but never sends them. */
		case SRUP_MSG_RESIGN_REQUEST:
			c2_set_member(d, dev, 0);
			srupd_log(SRUPD_INFO, "device %s resigned", id);
			c2st.events++;
			break;
		case SRUP_MSG_DEREGISTER_REQ:
			c2_set_member(d, dev, 0);
			forget_key(d, dev);
			srupd_log(SRUPD_INFO, "device %s deregistered: key retired", id);
			c2st.events++;
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
			srupd_log(SRUPD_WARN, "drop | reason=join_topic_mismatch | topic=%s | sender=%s", topic,
			          sender);
			return;
		}
		switch (m->type) {
			case SRUP_MSG_JOIN_REQ:
				c2_join_req(d, m);
				break;
			case SRUP_MSG_HM_JOIN_REQ:
				c2_hm_join_req(d, m);
				break;
			case SRUP_MSG_OBS_JOIN_REQ:
				c2_obs_join_req(d, m);
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
	if (d->cfg.console_port != 0) {
		/* The console shows the broker's counters when our identity is a broker admin. */
		srupd_subscribe(d, "$SYS/broker/srup/#");
	}
	for (i = 0; i < d->state.n; i++) {
		if (d->state.peers[i].member) {
			c2_dev_topic(d->state.peers[i].id, topic, sizeof(topic));
			srupd_subscribe(d, topic);
		}
	}
}

/* ---- control commands ------------------------------------------------------------------------ */

int c2_parse_dev(const char *s, uint64_t *dev)
{
	return srup_id_parse(s, strlen(s), dev) == SRUP_OK && *dev != 0 ? 0 : -1;
}

static struct xchg *xchg_new(enum xchg_kind kind, uint64_t dev)
{
	struct xchg *x = NULL;
	time_t now = time(NULL);
	size_t i;

	for (i = 0; i < XCHG_MAX; i++) {
		struct xchg *c = &c2st.x[i];

		if (c->used && c->detached && c->expires <= now) {
			srupd_log(SRUPD_INFO, "exchange token=%s: no reply in %d s, forgotten", c->token,
			          XCHG_LATE_S);
			c->used = 0;
		}
		if (!c->used && x == NULL) {
			x = c;
		}
	}
	if (x == NULL) {
		/* Full: the detached exchange closest to expiry makes room. */
		for (i = 0; i < XCHG_MAX; i++) {
			struct xchg *c = &c2st.x[i];

			if (c->detached && (x == NULL || c->expires < x->expires)) {
				x = c;
			}
		}
		if (x == NULL) {
			return NULL;
		}
		srupd_log(SRUPD_INFO, "exchange token=%s: forgotten early, table full", x->token);
	}
	memset(x, 0, sizeof(*x));
	x->used = 1;
	x->kind = kind;
	x->dev = dev;
	srup_token_new(x->token);
	return x;
}

/* The command returns while x stays open for a late reply. */
static void xchg_detach(struct xchg *x)
{
	x->detached = 1;
	x->expires = time(NULL) + XCHG_LATE_S;
}

/* Wait until x is done or f is set; 0 if either happened in time. */
static int wait_done_or(struct srupd *d, struct xchg *x, const int *f, int timeout_s)
{
	struct timespec dl;

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += timeout_s;
	while (!x->done && (f == NULL || !*f)) {
		if (pthread_cond_timedwait(&d->cond, &d->lock, &dl) == ETIMEDOUT) {
			break;
		}
	}
	return x->done || (f != NULL && *f) ? 0 : -1;
}

/* An update after the broker took the INITIATE: wait for the device's RESPONSE (it downloads
 * first), then for the broker to take the ACTIVATE srup-c2 sends on UPDATE_SUCCESS, then for
 * an optional ACTIVATE_* reply. Lock held. */
static void finish_update(struct srupd *d, int fd, struct xchg *x)
{
	if (wait_done_or(d, x, &x->activated, 3 * d->cfg.timeout_s) != 0) {
		srupd_reply(fd,
		            "OK INITIATE delivered token=%s, no response from the device yet (a later "
		            "UPDATE_SUCCESS still activates it; see `srup-c2 replies`)",
		            x->token);
		xchg_detach(x);
		return;
	}
	if (x->done) {
		srupd_reply(fd, "%s token=%s", x->result, x->token);
		x->used = 0;
		return;
	}
	if (c2_wait_ack(d, fd, x->activate_mid, "UPDATE_SUCCESS, but ACTIVATE", x->token) != 0) {
		x->used = 0;
		return;
	}
	if (wait_done_or(d, x, NULL, d->cfg.reply_wait_s) == 0) {
		srupd_reply(fd, "%s token=%s", x->result, x->token);
		x->used = 0;
		return;
	}
	srupd_reply(fd,
	            "OK UPDATE_SUCCESS, ACTIVATE delivered token=%s, no confirmation from the device",
	            x->token);
	xchg_detach(x);
}

/* Send m (its token set from x) and wait for the broker to take it; then wait reply_wait
 * seconds for an optional reply (0: none expected) and report. Lock held. */
static void run_xchg(struct srupd *d, int fd, struct xchg *x, struct srup_msg *m, int reply_wait)
{
	int mid = 0;

	c2_set_token(m, x->token);
	if (c2_send_dev_mid(d, x->dev, m, &mid) != 0) {
		srupd_reply(fd, "ERR send failed");
		x->used = 0;
		return;
	}
	if (c2_wait_ack(d, fd, mid, srup_msg_type_name(m->type), x->token) != 0) {
		x->used = 0;
		return;
	}
	if (x->kind == X_UPDATE) {
		finish_update(d, fd, x);
		return;
	}
	if (reply_wait > 0 && wait_done_or(d, x, NULL, reply_wait) == 0) {
		srupd_reply(fd, "%s token=%s", x->result, x->token);
		x->used = 0;
		return;
	}
	if (reply_wait == 0) {
		srupd_reply(fd, "OK delivered token=%s", x->token);
		x->used = 0;
		return;
	}
	srupd_reply(fd, "OK delivered token=%s, no confirmation from the device", x->token);
	xchg_detach(x);
}

/* TERMINATE_CMD / DEREGISTER_CMD: the device leaves once the broker has taken the command
 * (the broker re-checks membership and may refuse it). Lock held. */
static void send_leave(struct srupd *d, int fd, uint64_t dev, int dereg)
{
	const char *name = dereg ? "DEREGISTER_CMD" : "TERMINATE_CMD";
	char tok[SRUP_TOKEN_LEN + 1];
	struct srup_msg m;
	int mid = 0;

	memset(&m, 0, sizeof(m));
	m.type = dereg ? SRUP_MSG_DEREGISTER_CMD : SRUP_MSG_TERMINATE_CMD;
	srup_token_new(tok);
	c2_set_token(&m, tok);
	if (c2_send_dev_mid(d, dev, &m, &mid) != 0) {
		srupd_reply(fd, "ERR send failed");
		return;
	}
	if (c2_wait_ack(d, fd, mid, name, tok) != 0) {
		return;
	}
	c2_set_member(d, dev, 0);
	if (dereg) {
		forget_key(d, dev);
	}
	srupd_reply(fd, "OK %s delivered token=%s", name, tok);
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
	int wait = d->cfg.reply_wait_s;

	if (argc < 3 || c2_parse_dev(argv[2], &dev) != 0) {
		srupd_reply(fd, "ERR usage: send FLOW DEVICE_ID ...");
		return;
	}
	flow = argv[1];
	memset(&m, 0, sizeof(m));
	pthread_mutex_lock(&d->lock);
	if (srupd_wait_flag(d, &d->connected, d->cfg.timeout_s) != 0) {
		pthread_mutex_unlock(&d->lock);
		srupd_log(SRUPD_WARN, "send %s: not connected to the broker %s:%d", flow,
		          d->cfg.broker_host, d->cfg.broker_port);
		srupd_reply(fd, "ERR not connected to the broker");
		return;
	}
	if (strcmp(flow, "join_cmd") == 0) {
		/* Server-initiated join: adopt the device, command it, then ask who it is. */
		int mid = 0;
		int was_member = c2_member(d, dev) != NULL;

		c2_set_member(d, dev, 1);
		m.type = SRUP_MSG_JOIN_CMD;
		m.device_id = dev;
		x = xchg_new(X_ID, dev);
		if (x == NULL) {
			goto busy;
		}
		c2_set_token(&m, x->token);
		if (c2_send_dev_mid(d, dev, &m, &mid) != 0 ||
		    c2_wait_ack(d, fd, mid, "JOIN_CMD", x->token) != 0) {
			if (mid == 0) {
				srupd_reply(fd, "ERR send failed");
			}
			if (!was_member) {
				c2_set_member(d, dev, 0);
			}
			x->used = 0;
			goto out;
		}
		memset(&m, 0, sizeof(m));
		m.type = SRUP_MSG_ID_REQUEST;
		srup_token_new(x->token);
		run_xchg(d, fd, x, &m, wait);
		goto out;
	}
	if (c2_member(d, dev) == NULL) {
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
		run_xchg(d, fd, x, &m, wait);
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
		run_xchg(d, fd, x, &m, wait);
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
		/* A plain message has no reply. */
		run_xchg(d, fd, x, &m, strcmp(argv[3], "MESSAGE") == 0 ? 0 : wait);
	} else if (strcmp(flow, "activate") == 0) {
		/* An ACTIVATE outside any update (fresh token): srup-device answers ACTIVATE_FAIL. */
		m.type = SRUP_MSG_ACTIVATE;
		x = xchg_new(X_ACTION, dev);
		if (x == NULL) {
			goto busy;
		}
		run_xchg(d, fd, x, &m, wait);
	} else if (strcmp(flow, "id_request") == 0) {
		m.type = SRUP_MSG_ID_REQUEST;
		x = xchg_new(X_ID, dev);
		if (x == NULL) {
			goto busy;
		}
		run_xchg(d, fd, x, &m, wait);
	} else if (strcmp(flow, "terminate") == 0 || strcmp(flow, "deregister") == 0) {
		send_leave(d, fd, dev, strcmp(flow, "deregister") == 0);
	} else {
		srupd_reply(fd,
		            "ERR unknown flow '%s' (update, activate, action, data, id_request, "
		            "join_cmd, terminate, deregister)",
		            flow);
	}
	goto out;
busy:
	srupd_reply(fd, "ERR too many exchanges in flight");
out:
	pthread_mutex_unlock(&d->lock);
}

/* Replies that came after their command had returned, oldest first. */
static void ctl_replies(struct srupd *d, int fd)
{
	size_t i;
	int n = 0;

	pthread_mutex_lock(&d->lock);
	for (i = 0; i < LATE_MAX; i++) {
		const char *l = c2st.late[(c2st.late_next + i) % LATE_MAX];

		if (l[0] != '\0') {
			srupd_reply(fd, "%s", l);
			n++;
		}
	}
	pthread_mutex_unlock(&d->lock);
	srupd_reply(fd, "OK %d late replies", n);
}

static void ctl_wait_data(struct srupd *d, int fd, int argc, char **argv)
{
	uint64_t dev;
	size_t i;
	int seen;

	if (argc != 3 || c2_parse_dev(argv[1], &dev) != 0) {
		srupd_reply(fd, "ERR usage: wait-data DEVICE_ID DATA_ID");
		return;
	}
	pthread_mutex_lock(&d->lock);
	for (;;) {
		for (i = 0; i < RECV_MAX; i++) {
			struct rdata *r = &c2st.r[i];

			if (r->used && r->dev == dev && strcmp(r->data_id, argv[2]) == 0) {
				srupd_reply(fd, "OK %s %s", r->data_id, r->text);
				r->used = 0;
				pthread_mutex_unlock(&d->lock);
				return;
			}
		}
		seen = c2st.events;
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
				changed = c2st.events != seen;
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
		srupd_reply(fd, "peer %s member=%d sent=%llu received=%llu", id, d->state.peers[i].member,
		            (unsigned long long)d->state.peers[i].sent,
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
		c2_ctl_decide(d, fd, argc, argv, 1);
	} else if (strcmp(argv[0], "reject") == 0) {
		c2_ctl_decide(d, fd, argc, argv, 0);
	} else if (strcmp(argv[0], "pending") == 0) {
		c2_ctl_pending(d, fd);
	} else if (strcmp(argv[0], "wait-data") == 0) {
		ctl_wait_data(d, fd, argc, argv);
	} else if (strcmp(argv[0], "status") == 0) {
		ctl_status(d, fd);
	} else if (strcmp(argv[0], "replies") == 0) {
		ctl_replies(d, fd);
	} else {
		srupd_reply(fd, "ERR unknown command '%s'", argv[0]);
	}
}

/* ---- registration ---------------------------------------------------------------------------- */

/* With a registry configured: make sure it knows this server (c2_check, then c2/ with the
 * token its operator issued), so that devices registering there can fetch our key. An
 * unreachable registry is logged and not fatal (devices already registered keep working); a
 * registry that refuses us is. */
static int register_self(struct srupd *d)
{
	struct keyex k;
	int known;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (keyex_init(&k, d->cfg.registry_url, d->cfg.registry_ca) != 0) {
		srupd_log(SRUPD_ERR, "registry: %s", k.err);
		return -1;
	}
	/* The registry may be starting with us (one compose, one boot): try for a while. */
	for (int i = 0; i < 10; i++) {
		known = keyex_c2_check(&k, d->cfg.identity_text);
		if (known >= 0 || k.http_status != 0) {
			break;
		}
		sleep(1);
	}
	if (known < 0) {
		srupd_log(SRUPD_WARN, "registry %s unreachable, not registered this start: %s",
		          d->cfg.registry_url, k.err);
		return 0;
	}
	if (known == 1) {
		srupd_log(SRUPD_INFO, "registry %s knows this server", d->cfg.registry_url);
		return 0;
	}
	if (d->cfg.registry_token[0] == '\0') {
		srupd_log(SRUPD_ERR,
		          "registry %s does not know this server and no registry_token is configured "
		          "(ask its operator for one)",
		          d->cfg.registry_url);
		return -1;
	}
	if (keyex_c2_register(&k, d->cfg.identity_text, d->key, d->cfg.registry_token) != 0) {
		srupd_log(SRUPD_ERR, "registry %s refused this server: %s", d->cfg.registry_url, k.err);
		return -1;
	}
	srupd_log(SRUPD_INFO, "registered with the registry %s", d->cfg.registry_url);
	return 0;
}

/* ---- main ------------------------------------------------------------------------------------ */

static void usage(FILE *to)
{
	fprintf(to,
	        "usage: srup-c2 [--config FILE] run [--debug]\n"
	        "       srup-c2 [--config FILE] send update DEVICE URL SHA256_HEX\n"
	        "       srup-c2 [--config FILE] send action DEVICE ACTION_ID\n"
	        "       srup-c2 [--config FILE] send data DEVICE DATA_ID TEXT\n"
	        "       srup-c2 [--config FILE] send id_request|join_cmd|terminate|deregister DEVICE\n"
	        "       srup-c2 [--config FILE] send activate DEVICE   (outside an update: must fail)\n"
	        "       srup-c2 [--config FILE] approve|reject DEVICE\n"
	        "       srup-c2 [--config FILE] pending | status | replies | wait-data DEVICE DATA_ID\n"
	        "       srup-c2 [--config FILE] operator add NAME   (console login; password on "
	        "stdin)\n"
	        "       srup-c2 --help | --version\n"
	        "`run` is the daemon; the other commands talk to it over its control socket.\n"
	        "A command is done when the broker has taken the message; a reply from the device is\n"
	        "optional (pySRUP devices send none for ACTION, DATA and ACTIVATE): it is shown when\n"
	        "it comes within reply_wait seconds, and later ones are listed by `replies`.\n"
	        "The config defaults to $SRUP_C2_CONFIG. Exit: 0 ok, 1 refused/failed, 3 usage or\n"
	        "daemon unreachable.\n\n");
	srupd_config_help(to, "c2");
}

int main(int argc, char **argv)
{
	struct srupd_cli cli;
	const char *config;
	struct srupd d;
	int rc;
	int i;

	rc = srupd_cli_parse(argc, argv, "srup-c2", usage, &cli);
	if (rc != 0) {
		return rc == 1 ? 0 : 3;
	}
	config = cli.config != NULL ? cli.config : getenv("SRUP_C2_CONFIG");
	if (cli.cmd == NULL || config == NULL) {
		if (cli.cmd != NULL) {
			fprintf(stderr, "srup-c2: no config: --config FILE or $SRUP_C2_CONFIG\n");
		} else {
			usage(stderr);
		}
		return 3;
	}
	srupd_log_init("srup-c2", cli.debug ? SRUPD_DEBUG : SRUPD_INFO);
	if (strcmp(cli.cmd, "operator") == 0) {
		struct srupd_config cfg;

		if (cli.argc != 2 || strcmp(cli.argv[0], "add") != 0) {
			fprintf(stderr, "usage: srup-c2 --config FILE operator add NAME (password on stdin)\n");
			return 3;
		}
		if (srupd_config_load(config, &cfg) != 0) {
			return 3;
		}
		if (cfg.console_operators[0] == '\0') {
			fprintf(stderr, "srup-c2: %s has no console_operators file\n", config);
			return 3;
		}
		return c2_operator_add(cfg.console_operators, cli.argv[1]);
	}
	if (strcmp(cli.cmd, "run") != 0) {
		struct srupd_config cfg;
		char line[SRUPD_LINE_MAX];
		size_t off;
		int w;

		if (srupd_config_load(config, &cfg) != 0) {
			return 3;
		}
		w = snprintf(line, sizeof(line), "%s", cli.cmd);
		off = (size_t)w;
		for (i = 0; i < cli.argc; i++) {
			w = snprintf(line + off, sizeof(line) - off, " %s", cli.argv[i]);
			if (w < 0 || (size_t)w >= sizeof(line) - off) {
				fprintf(stderr, "srup-c2: command too long\n");
				return 3;
			}
			off += (size_t)w;
		}
		return srupd_ctl_call(cfg.control_socket, line);
	}
	if (cli.argc != 0) {
		usage(stderr);
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
	if (d.cfg.registry_url[0] != '\0' && register_self(&d) != 0) {
		srupd_cleanup(&d);
		return 3;
	}
	d.on_msg = on_msg;
	d.on_ctl = on_ctl;
	d.on_connect = on_connect;
	d.on_ack = c2_join_ack;
	d.on_sys = c2_on_sys;
	d.app = &c2st;
	if (c2_console_start(&d) != 0) {
		srupd_cleanup(&d);
		return 3;
	}
	rc = srupd_run(&d) == 0 ? 0 : 3;
	c2_console_stop();
	srupd_cleanup(&d);
	return rc;
}
