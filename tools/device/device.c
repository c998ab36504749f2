/* SPDX-License-Identifier: MIT
 * device.c - srup-device: a SRUP device (or observer beacon) daemon on libmosquitto.
 * Answers its C2 server (update, action, data, identity), joins and leaves on command from
 * its control socket; the update flow is in update.c, the observed join's local channel in
 * beacon.c.
 * Every receive check (signature, sequence ID, sender) is done in tools/common/srupd.c. */
#include "device.h"
#include "show.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

struct dev_app devst;

static void channel_topic(const struct srupd *d, char *out, size_t cap)
{
	snprintf(out, cap, "SRUP/%s", d->cfg.identity_text);
}

static void set_token(struct srup_msg *m, const char *tok)
{
	m->token.p = (const uint8_t *)tok;
	m->token.len = strlen(tok);
}

/* Send a message to our server on our own channel (lock held). */
static int send_to_server(struct srupd *d, struct srup_msg *m)
{
	char topic[64];

	channel_topic(d, topic, sizeof(topic));
	return srupd_send(d, d->cfg.server, topic, m);
}

int dev_send_response(struct srupd *d, const char *tok, unsigned status)
{
	struct srup_msg m;

	memset(&m, 0, sizeof(m));
	m.type = SRUP_MSG_RESPONSE;
	set_token(&m, tok);
	m.status = (uint8_t)status;
	srupd_log(SRUPD_INFO, "response %s", srup_status_name(status));
	return send_to_server(d, &m);
}

int dev_send_data(struct srupd *d, const char *tok, const char *data_id, const void *data,
                  size_t len)
{
	struct srup_msg m;

	memset(&m, 0, sizeof(m));
	m.type = SRUP_MSG_DATA;
	set_token(&m, tok);
	m.data_id.p = (const uint8_t *)data_id;
	m.data_id.len = strlen(data_id);
	m.data.p = data;
	m.data.len = len;
	return send_to_server(d, &m);
}

void dev_token_copy(char out[SRUP_TOKEN_LEN + 1], const struct srup_bytes *t)
{
	size_t n = t->len < SRUP_TOKEN_LEN ? t->len : SRUP_TOKEN_LEN;

	memcpy(out, t->p, n);
	out[n] = '\0';
}

/* A var field carrying text (perhaps with pySRUP's trailing NUL) as a C string; -1 if it has
 * an embedded NUL or does not fit. */
int dev_field_text(const struct srup_bytes *b, char *out, size_t cap)
{
	size_t n = b->len;

	if (n > 0 && b->p[n - 1] == '\0') {
		n--;
	}
	if (n >= cap || memchr(b->p, '\0', n) != NULL) {
		return -1;
	}
	memcpy(out, b->p, n);
	out[n] = '\0';
	return 0;
}

/* ---- update ---------------------------------------------------------------------------------- */

/* ---- action, data, identity ------------------------------------------------------------------ */

/* The device's actions: 1 = blink (succeeds), 2 = reboot (succeeds), 3 = self-test (fails, to
 * exercise ACTION_FAIL); anything else is ACTION_UNKNOWN. */
static void on_action(struct srupd *d, const struct srup_msg *m)
{
	char tok[SRUP_TOKEN_LEN + 1];
	unsigned st;

	dev_token_copy(tok, &m->token);
	switch (m->action_id) {
		case 1:
		case 2:
			st = SRUP_ST_ACTION_SUCCESS;
			devst.actions++;
			break;
		case 3:
			st = SRUP_ST_ACTION_FAIL;
			break;
		default:
			st = SRUP_ST_ACTION_UNKNOWN;
			break;
	}
	srupd_log(SRUPD_INFO, "action %u -> %s", (unsigned)m->action_id, srup_status_name(st));
	dev_send_response(d, tok, st);
}

static void on_data(struct srupd *d, const struct srup_msg *m)
{
	char tok[SRUP_TOKEN_LEN + 1];
	char id[128];

	dev_token_copy(tok, &m->token);
	devst.data_in++;
	if (dev_field_text(&m->data_id, id, sizeof(id)) != 0) {
		dev_send_response(d, tok, SRUP_ST_DATA_TYPE_UNKNOWN);
		return;
	}
	srupd_log(SRUPD_INFO, "data %s (%zu bytes)", id, m->data.len);
	if (strcmp(id, "ECHO") == 0) {
		dev_send_data(d, tok, "ECHO", m->data.p, m->data.len);
	} else if (strcmp(id, "MESSAGE") != 0) {
		dev_send_response(d, tok, SRUP_ST_DATA_TYPE_UNKNOWN);
	}
}

static void on_id_request(struct srupd *d, const struct srup_msg *m)
{
	char tok[SRUP_TOKEN_LEN + 1];
	char text[128];

	dev_token_copy(tok, &m->token);
	snprintf(text, sizeof(text), "srup-device 0.1 id=%s role=%s", d->cfg.identity_text,
	         d->cfg.role);
	dev_send_data(d, tok, "IDENTIFICATION_RESPONSE", text, strlen(text));
}

/* ---- joins ---------------------------------------------------------------------------------- */

int dev_open_value(struct srupd *d, const struct srup_bytes *enc, char out[VALUE_MAX + 1])
{
	uint8_t *pt = NULL;
	size_t pt_len = 0;
	size_t n;
	enum srup_err e;

	e = srup_envelope_open(d->key, enc->p, enc->len, &pt, &pt_len, NULL);
	if (e != SRUP_OK) {
		srupd_log(SRUPD_WARN, "encrypted value does not open: %s", srup_strerror(e));
		return -1;
	}
	n = pt_len;
	while (n > 0 && pt[n - 1] == '\0') {
		n--;
	}
	if (n == 0 || n > VALUE_MAX || memchr(pt, '\0', n) != NULL) {
		OPENSSL_cleanse(pt, pt_len);
		free(pt);
		return -1;
	}
	memcpy(out, pt, n);
	out[n] = '\0';
	OPENSSL_cleanse(pt, pt_len);
	free(pt);
	return 0;
}

static void finish_join(struct srupd *d, unsigned status)
{
	struct srupd_peer *p = srupd_state_peer(&d->state, d->cfg.server);

	devst.join_status = status;
	devst.join_done = 1;
	if (status == SRUP_ST_JOIN_SUCCESS && p != NULL) {
		p->member = 1;
		srupd_state_save(&d->state);
	}
	srupd_log(SRUPD_INFO, "join outcome: %s", srup_status_name(status));
}

static void on_join_value(struct srupd *d, const struct srup_msg *m)
{
	enum join_kind want = m->type == SRUP_MSG_HM_JOIN_RESP ? JOIN_HM : JOIN_OBS;

	if (devst.join_kind != want || devst.join_done) {
		srupd_log(SRUPD_WARN, "%s with no matching join in progress: ignored",
		          srup_msg_type_name(m->type));
		return;
	}
	if (dev_open_value(d, &m->encrypted, devst.join_value) != 0) {
		return;
	}
	/* The outcome will carry this message's token (spec §5.1). */
	dev_token_copy(devst.join_token, &m->token);
	if (want == JOIN_HM) {
		srupd_show_value(d->cfg.show_file, devst.join_value);
	} else {
		dev_beacon_prove(d);
	}
}

static void on_response(struct srupd *d, const struct srup_msg *m)
{
	if (devst.join_kind != JOIN_NONE && !devst.join_done &&
	    srupd_token_eq(&m->token, devst.join_token)) {
		if (m->status == SRUP_ST_JOIN_SUCCESS || m->status == SRUP_ST_JOIN_REFUSED ||
		    m->status == SRUP_ST_JOIN_FAIL) {
			finish_join(d, m->status);
			return;
		}
	}
	if (devst.leave_token[0] != '\0' && srupd_token_eq(&m->token, devst.leave_token)) {
		devst.leave_acked = 1;
		srupd_log(SRUPD_INFO, "leave acknowledged: %s", srup_status_name(m->status));
		return;
	}
	srupd_log(SRUPD_WARN, "RESPONSE %s with an unknown token: ignored",
	          srup_status_name(m->status) ? srup_status_name(m->status) : "?");
}

static void leave_server(struct srupd *d, const char *why)
{
	struct srupd_peer *p = srupd_state_peer(&d->state, d->cfg.server);

	if (p != NULL) {
		p->member = 0;
		srupd_state_save(&d->state);
	}
	devst.update_ready = 0;
	devst.update_token[0] = '\0';
	srupd_log(SRUPD_INFO, "left server: %s", why);
}

/* ---- beacon (observer role) ------------------------------------------------------------------ */

/* ---- dispatch --------------------------------------------------------------------------------- */

static void on_msg(struct srupd *d, const char *topic, const struct srup_msg *m)
{
	char own[64];
	struct srupd_peer *srv;

	channel_topic(d, own, sizeof(own));
	if (strcmp(topic, own) != 0) {
		srupd_log(SRUPD_WARN, "drop | reason=wrong_topic | topic=%s", topic);
		return;
	}
	/* JOIN_CMD may come from any server whose key we hold (spec §5.2); it adopts that server. */
	if (m->type == SRUP_MSG_JOIN_CMD) {
		if (m->device_id != d->cfg.identity) {
			srupd_log(SRUPD_WARN, "JOIN_CMD for another device: ignored");
			return;
		}
		d->cfg.server = m->sender_id;
		srv = srupd_state_peer(&d->state, m->sender_id);
		if (srv != NULL) {
			srv->member = 1;
			srupd_state_save(&d->state);
		}
		srupd_log(SRUPD_INFO, "joined by command of server %llx", (unsigned long long)m->sender_id);
		return;
	}
	if (m->sender_id != d->cfg.server) {
		srupd_log(SRUPD_WARN, "drop | reason=not_my_server | type=%s", srup_msg_type_name(m->type));
		return;
	}
	srv = srupd_state_peer(&d->state, d->cfg.server);
	switch (m->type) {
		case SRUP_MSG_RESPONSE:
			on_response(d, m);
			return;
		case SRUP_MSG_HM_JOIN_RESP:
		case SRUP_MSG_OBS_JOIN_RESP:
			on_join_value(d, m);
			return;
		default:
			break;
	}
	if (srv == NULL || !srv->member) {
		srupd_log(SRUPD_WARN, "drop | reason=not_joined | type=%s", srup_msg_type_name(m->type));
		return;
	}
	switch (m->type) {
		case SRUP_MSG_INITIATE:
			dev_update_initiate(d, m);
			break;
		case SRUP_MSG_ACTIVATE:
			dev_update_activate(d, m);
			break;
		case SRUP_MSG_ACTION:
			on_action(d, m);
			break;
		case SRUP_MSG_DATA:
			on_data(d, m);
			break;
		case SRUP_MSG_ID_REQUEST:
			on_id_request(d, m);
			break;
		case SRUP_MSG_OBSERVE_REQ:
			dev_beacon_observe_req(d, m);
			break;
		case SRUP_MSG_TERMINATE_CMD:
			leave_server(d, "TERMINATE_CMD");
			break;
		case SRUP_MSG_DEREGISTER_CMD:
			leave_server(d, "DEREGISTER_CMD");
			break;
		default:
			srupd_log(SRUPD_WARN, "drop | reason=unexpected_type | type=%s",
			          srup_msg_type_name(m->type));
			break;
	}
}

static void on_connect(struct srupd *d)
{
	char topic[64];

	channel_topic(d, topic, sizeof(topic));
	srupd_subscribe(d, topic);
}

/* ---- control commands --------------------------------------------------------------------- */

static int wait_connected(struct srupd *d)
{
	return srupd_wait_flag(d, &d->connected, d->cfg.timeout_s);
}

static void ctl_join(struct srupd *d, int fd, int argc, char **argv)
{
	struct srup_msg m;
	char topic[128];
	char srv[SRUP_ID_TEXT_MAX];
	enum join_kind kind;
	uint64_t observer = 0;

	if (argc < 2 || (strcmp(argv[1], "simple") != 0 && strcmp(argv[1], "hm") != 0 &&
	                 strcmp(argv[1], "observed") != 0)) {
		srupd_reply(fd, "ERR usage: join simple|hm|observed OBSERVER_ID [BEACON_SOCKET]");
		return;
	}
	kind = strcmp(argv[1], "simple") == 0 ? JOIN_SIMPLE
	       : strcmp(argv[1], "hm") == 0   ? JOIN_HM
	                                      : JOIN_OBS;
	memset(&m, 0, sizeof(m));
	if (kind == JOIN_OBS) {
		if (argc < 3 || srup_id_parse(argv[2], strlen(argv[2]), &observer) != SRUP_OK) {
			srupd_reply(fd, "ERR observed join needs the observer id");
			return;
		}
		snprintf(devst.beacon_socket, sizeof(devst.beacon_socket), "%s",
		         argc > 3 ? argv[3] : d->cfg.beacon_socket);
		if (devst.beacon_socket[0] == '\0') {
			srupd_reply(fd, "ERR no beacon socket (argument or beacon_socket)");
			return;
		}
	}
	pthread_mutex_lock(&d->lock);
	if (d->cfg.server == 0 || wait_connected(d) != 0) {
		pthread_mutex_unlock(&d->lock);
		srupd_reply(fd, "ERR no server configured or not connected");
		return;
	}
	if (devst.join_kind != JOIN_NONE && !devst.join_done) {
		pthread_mutex_unlock(&d->lock);
		srupd_reply(fd, "ERR a join is already in progress");
		return;
	}
	devst.join_kind = kind;
	devst.join_done = 0;
	devst.join_value[0] = '\0';
	srup_token_new(devst.join_token);
	m.type = kind == JOIN_SIMPLE ? SRUP_MSG_JOIN_REQ
	         : kind == JOIN_HM   ? SRUP_MSG_HM_JOIN_REQ
	                             : SRUP_MSG_OBS_JOIN_REQ;
	m.observer_id = observer;
	set_token(&m, devst.join_token);
	srupd_id_text(d->cfg.server, srv);
	snprintf(topic, sizeof(topic), "SRUP/servers/%s/%s", srv, d->cfg.identity_text);
	if (srupd_send(d, d->cfg.server, topic, &m) != 0) {
		devst.join_kind = JOIN_NONE;
		pthread_mutex_unlock(&d->lock);
		srupd_reply(fd, "ERR send failed");
		return;
	}
	/* A human-moderated join waits for an operator: allow four times as long. */
	if (srupd_wait_flag(d, &devst.join_done,
	                    kind == JOIN_HM ? 4 * d->cfg.timeout_s : d->cfg.timeout_s) != 0) {
		devst.join_kind = JOIN_NONE;
		pthread_mutex_unlock(&d->lock);
		srupd_reply(fd, "ERR timeout waiting for the join outcome");
		return;
	}
	devst.join_kind = JOIN_NONE;
	if (devst.join_value[0] != '\0') {
		srupd_reply(fd, "value %s", devst.join_value);
	}
	srupd_reply(fd, "%s %s", devst.join_status == SRUP_ST_JOIN_SUCCESS ? "OK" : "ERR",
	            srup_status_name(devst.join_status));
	pthread_mutex_unlock(&d->lock);
}

/* Wait for the broker's answer to publish mid and report a refusal; 0 when it took it. */
static int wait_taken(struct srupd *d, int fd, int mid, const char *what)
{
	int reason = 0;
	int rc = srupd_wait_ack(d, mid, d->cfg.timeout_s, &reason);

	if (rc < 0) {
		srupd_reply(fd, "ERR %s: no answer from the broker within %d s", what, d->cfg.timeout_s);
	} else if (rc > 0) {
		srupd_reply(fd,
		            "ERR %s refused by the broker: reason 0x%02x (sequence IDs moved forward: "
		            "if our state was restored from an older copy, retrying works)",
		            what, (unsigned)reason);
	}
	return rc;
}

static void ctl_leave(struct srupd *d, int fd, enum srup_msg_type type)
{
	struct srup_msg m;
	char topic[64];
	int mid = 0;

	memset(&m, 0, sizeof(m));
	pthread_mutex_lock(&d->lock);
	srup_token_new(devst.leave_token);
	m.type = (uint8_t)type;
	set_token(&m, devst.leave_token);
	channel_topic(d, topic, sizeof(topic));
	if (srupd_send_mid(d, d->cfg.server, topic, &m, &mid) != 0) {
		pthread_mutex_unlock(&d->lock);
		srupd_reply(fd, "ERR send failed");
		return;
	}
	/* Leaving needs no answer from the server (pySRUP sends none, and once we have left the
	 * broker would not deliver one): done when the broker has taken the message. */
	if (wait_taken(d, fd, mid, srup_msg_type_name(type)) != 0) {
		pthread_mutex_unlock(&d->lock);
		return;
	}
	leave_server(d, srup_msg_type_name(type));
	pthread_mutex_unlock(&d->lock);
	srupd_reply(fd, "OK left (delivered)");
}

static void ctl_data(struct srupd *d, int fd, int argc, char **argv)
{
	char tok[SRUP_TOKEN_LEN + 1];
	char topic[64];
	struct srup_msg m;
	int mid = 0;
	int rc;

	if (argc < 3) {
		srupd_reply(fd, "ERR usage: data DATA_ID TEXT");
		return;
	}
	srup_token_new(tok);
	pthread_mutex_lock(&d->lock);
	memset(&m, 0, sizeof(m));
	m.type = SRUP_MSG_DATA;
	set_token(&m, tok);
	m.data_id.p = (const uint8_t *)argv[1];
	m.data_id.len = strlen(argv[1]);
	m.data.p = (const uint8_t *)argv[2];
	m.data.len = strlen(argv[2]);
	channel_topic(d, topic, sizeof(topic));
	rc = srupd_send_mid(d, d->cfg.server, topic, &m, &mid);
	if (rc != 0) {
		srupd_reply(fd, "ERR send failed token=%s", tok);
	} else if (wait_taken(d, fd, mid, "DATA") == 0) {
		srupd_reply(fd, "OK sent token=%s", tok);
	}
	pthread_mutex_unlock(&d->lock);
}

static void ctl_status(struct srupd *d, int fd)
{
	struct srupd_peer *p;
	char srv[SRUP_ID_TEXT_MAX];

	pthread_mutex_lock(&d->lock);
	p = srupd_state_peer(&d->state, d->cfg.server);
	srupd_id_text(d->cfg.server, srv);
	srupd_reply(fd,
	            "OK id=%s role=%s server=%s joined=%d connected=%d sent=%llu received=%llu "
	            "actions=%u data_in=%u updates=%u",
	            d->cfg.identity_text, d->cfg.role, srv, p != NULL && p->member, srupd_ready(d),
	            p != NULL ? (unsigned long long)p->sent : 0ull,
	            p != NULL ? (unsigned long long)p->received : 0ull, devst.actions, devst.data_in,
	            devst.updates_applied);
	pthread_mutex_unlock(&d->lock);
}

static void on_ctl(struct srupd *d, int fd, char *line)
{
	char *argv[8];
	int argc = srupd_split(line, argv, 8);

	if (argc == 0) {
		srupd_reply(fd, "ERR empty command");
	} else if (strcmp(argv[0], "status") == 0) {
		ctl_status(d, fd);
	} else if (strcmp(argv[0], "join") == 0) {
		ctl_join(d, fd, argc, argv);
	} else if (strcmp(argv[0], "data") == 0) {
		ctl_data(d, fd, argc, argv);
	} else if (strcmp(argv[0], "resign") == 0) {
		ctl_leave(d, fd, SRUP_MSG_RESIGN_REQUEST);
	} else if (strcmp(argv[0], "deregister") == 0) {
		ctl_leave(d, fd, SRUP_MSG_DEREGISTER_REQ);
	} else {
		srupd_reply(fd, "ERR unknown command '%s' (status, join, data, resign, deregister)",
		            argv[0]);
	}
}

/* ---- main ---------------------------------------------------------------------------------- */

static void usage(FILE *to)
{
	fprintf(to,
	        "usage: srup-device run --config FILE [--debug]\n"
	        "       srup-device register --url https://HOST:PORT [--ca FILE] [--token T] "
	        "--config FILE\n"
	        "       srup-device ctl --config FILE COMMAND...\n"
	        "       srup-device --help | --version\n"
	        "commands: status | join simple | join hm | join observed OBSERVER_ID [SOCKET]\n"
	        "          | data DATA_ID TEXT | resign | deregister\n"
	        "`run` is the daemon (a device, or an observer beacon); `ctl` talks to it over its\n"
	        "control socket; `register` registers the device with a registration service\n"
	        "(see srup-device register --help). Exit: 0 ok, 1 refused/failed, 3 usage or daemon\n"
	        "unreachable.\n\n");
	srupd_config_help(to, "device");
}

static int join_args(int argc, char **argv, char *out, size_t cap)
{
	size_t off = 0;
	int i;

	out[0] = '\0';
	for (i = 0; i < argc; i++) {
		int n = snprintf(out + off, cap - off, "%s%s", i > 0 ? " " : "", argv[i]);
		if (n < 0 || (size_t)n >= cap - off) {
			return -1;
		}
		off += (size_t)n;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct srupd_cli cli;
	const char *config;
	struct srupd d;
	int rc;

	if (argc >= 2 && strcmp(argv[1], "register") == 0) {
		return dev_register_main(argc - 1, argv + 1);
	}
	rc = srupd_cli_parse(argc, argv, "srup-device", usage, &cli);
	if (rc != 0) {
		return rc == 1 ? 0 : 3;
	}
	config = cli.config;
	if (cli.cmd == NULL || config == NULL) {
		if (cli.cmd != NULL) {
			fprintf(stderr, "srup-device: no config: --config FILE\n");
		} else {
			usage(stderr);
		}
		return 3;
	}
	srupd_log_init("srup-device", cli.debug ? SRUPD_DEBUG : SRUPD_INFO);
	if (strcmp(cli.cmd, "ctl") == 0) {
		struct srupd_config cfg;
		char line[SRUPD_LINE_MAX];

		if (srupd_config_load(config, &cfg) != 0) {
			return 3;
		}
		if (join_args(cli.argc, cli.argv, line, sizeof(line)) != 0 || line[0] == '\0') {
			usage(stderr);
			return 3;
		}
		return srupd_ctl_call(cfg.control_socket, line);
	}
	if (strcmp(cli.cmd, "run") != 0 || cli.argc != 0) {
		usage(stderr);
		return 3;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (srupd_init(&d, config) != 0) {
		srupd_cleanup(&d);
		return 3;
	}
	if (strcmp(d.cfg.role, "c2") == 0) {
		srupd_log(SRUPD_ERR, "%s: role c2 is for srup-c2", config);
		srupd_cleanup(&d);
		return 3;
	}
	if (d.cfg.update_dir[0] != '\0') {
		mkdir(d.cfg.update_dir, 0700);
	}
	/* A server adopted through JOIN_CMD is only in the state file: it wins over the config. */
	for (size_t k = 0; k < d.state.n; k++) {
		if (d.state.peers[k].member && d.state.peers[k].id != d.cfg.server) {
			srupd_log(SRUPD_INFO, "server %llx (from the state file, joined by command)",
			          (unsigned long long)d.state.peers[k].id);
			d.cfg.server = d.state.peers[k].id;
		}
	}
	d.on_msg = on_msg;
	d.on_ctl = on_ctl;
	d.on_connect = on_connect;
	d.app = &devst;
	if (strcmp(d.cfg.role, "observer") == 0) {
		pthread_t th;

		if (d.cfg.beacon_socket[0] == '\0') {
			srupd_log(SRUPD_ERR, "%s: an observer needs beacon_socket", config);
			srupd_cleanup(&d);
			return 3;
		}
		if (pthread_create(&th, NULL, dev_beacon_thread, &d) == 0) {
			pthread_detach(th);
		}
	}
	rc = srupd_run(&d) == 0 ? 0 : 3;
	srupd_cleanup(&d);
	curl_global_cleanup();
	return rc;
}
