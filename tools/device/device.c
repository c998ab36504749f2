/* SPDX-License-Identifier: MIT
 * device.c - srup-device: a SRUP device (or observer beacon) daemon on libmosquitto.
 * Answers its C2 server (update, action, data, identity), joins and leaves on command from
 * its control socket, and as a beacon checks a joining device's value over a unix socket.
 * Every receive check (signature, sequence ID, sender) is done in tools/common/srupd.c. */
#include "srupd.h"
#include "show.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#define OBS_MAX   16
#define VALUE_MAX 64

enum join_kind { JOIN_NONE = 0, JOIN_SIMPLE, JOIN_HM, JOIN_OBS };

struct obs_entry {
	int used;
	uint64_t joining;
	int have_req;
	int have_proof;
	char req_value[VALUE_MAX + 1];
	char proof_value[VALUE_MAX + 1];
	char token[SRUP_TOKEN_LEN + 1];
	time_t since;     /* when the request (or a lone proof) arrived */
	int wrong_proofs; /* proofs that did not match the request */
};

struct dev_app {
	/* update */
	char update_token[SRUP_TOKEN_LEN + 1];
	char update_file[SRUPD_PATH_MAX + 64];
	int update_ready;
	int updates_applied;
	/* join in progress (one at a time) */
	enum join_kind join_kind;
	char join_token[SRUP_TOKEN_LEN + 1];
	int join_done;
	unsigned join_status;
	char join_value[VALUE_MAX + 1];
	char beacon_socket[SRUPD_PATH_MAX];
	/* leaving */
	char leave_token[SRUP_TOKEN_LEN + 1];
	int leave_acked;
	/* counters for status */
	unsigned actions;
	unsigned data_in;
	/* beacon */
	struct obs_entry obs[OBS_MAX];
};

static struct dev_app app;

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

static int send_response(struct srupd *d, const char *tok, unsigned status)
{
	struct srup_msg m;

	memset(&m, 0, sizeof(m));
	m.type = SRUP_MSG_RESPONSE;
	set_token(&m, tok);
	m.status = (uint8_t)status;
	srupd_log(SRUPD_INFO, "response %s", srup_status_name(status));
	return send_to_server(d, &m);
}

static int send_data(struct srupd *d, const char *tok, const char *data_id, const void *data,
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

static void token_copy(char out[SRUP_TOKEN_LEN + 1], const struct srup_bytes *t)
{
	size_t n = t->len < SRUP_TOKEN_LEN ? t->len : SRUP_TOKEN_LEN;

	memcpy(out, t->p, n);
	out[n] = '\0';
}

/* A var field carrying text (perhaps with pySRUP's trailing NUL) as a C string; -1 if it has
 * an embedded NUL or does not fit. */
static int field_text(const struct srup_bytes *b, char *out, size_t cap)
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

struct fetch {
	struct srupd *d;
	char url[SRUP_URL_MAX + 1];
	char digest[SRUP_DIGEST_MAX + 1];
	char token[SRUP_TOKEN_LEN + 1];
	char path[SRUPD_PATH_MAX + 64];
};

struct body_buf {
	FILE *f;
	char head[1024]; /* the first bytes, kept for the HTTP error report */
	size_t head_len;
};

static size_t fetch_write(char *p, size_t size, size_t n, void *ud)
{
	struct body_buf *b = ud;
	size_t len = size * n;
	size_t room = sizeof(b->head) - b->head_len;

	memcpy(b->head + b->head_len, p, len < room ? len : room);
	b->head_len += len < room ? len : room;
	return fwrite(p, 1, len, b->f);
}

static int sha256_file_hex(const char *path, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0;
	unsigned char buf[8192];
	EVP_MD_CTX *ctx;
	FILE *f;
	size_t n;
	int rc = -1;

	f = fopen(path, "rb");
	if (f == NULL) {
		return -1;
	}
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		goto out;
	}
	for (;;) {
		n = fread(buf, 1, sizeof(buf), f);
		if (n == 0) {
			break;
		}
		if (EVP_DigestUpdate(ctx, buf, n) != 1) {
			goto out;
		}
	}
	if (EVP_DigestFinal_ex(ctx, md, &md_len) != 1 || md_len != 32) {
		goto out;
	}
	if (srup_hex_encode(md, md_len, out, 65) == SRUP_OK) {
		rc = 0;
	}
out:
	EVP_MD_CTX_free(ctx);
	fclose(f);
	return rc;
}

static void *fetch_thread(void *arg)
{
	struct fetch *fx = arg;
	struct srupd *d = fx->d;
	struct body_buf body;
	CURL *c;
	CURLcode cr;
	long http = 0;
	unsigned status = SRUP_ST_UPDATE_SUCCESS;
	char hex[65] = "";

	memset(&body, 0, sizeof(body));
	body.f = fopen(fx->path, "wb");
	c = curl_easy_init();
	if (body.f == NULL || c == NULL) {
		status = SRUP_ST_UPDATE_FAIL_SERVER;
		goto report;
	}
	curl_easy_setopt(c, CURLOPT_URL, fx->url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, fetch_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	if (d->cfg.update_ca[0] != '\0') {
		curl_easy_setopt(c, CURLOPT_CAINFO, d->cfg.update_ca);
	}
	cr = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &http);
	fclose(body.f);
	body.f = NULL;
	if (cr != CURLE_OK) {
		srupd_log(SRUPD_WARN, "update: fetch %s failed: %s", fx->url, curl_easy_strerror(cr));
		status = SRUP_ST_UPDATE_FAIL_SERVER;
	} else if (http >= 400) {
		srupd_log(SRUPD_WARN, "update: fetch %s: HTTP %ld", fx->url, http);
		status = SRUP_ST_UPDATE_FAIL_HTTP_ERROR;
	} else if (sha256_file_hex(fx->path, hex) != 0 || strlen(fx->digest) != 64 ||
			CRYPTO_memcmp(hex, fx->digest, 64) != 0) {
		srupd_log(SRUPD_WARN, "update: digest mismatch (got %s)", hex);
		status = SRUP_ST_UPDATE_FAIL_DIGEST;
	}
report:
	if (c != NULL) {
		curl_easy_cleanup(c);
	}
	if (body.f != NULL) {
		fclose(body.f);
	}
	if (status != SRUP_ST_UPDATE_SUCCESS) {
		unlink(fx->path);
	}
	pthread_mutex_lock(&d->lock);
	if (strcmp(app.update_token, fx->token) == 0) {
		app.update_ready = status == SRUP_ST_UPDATE_SUCCESS;
		snprintf(app.update_file, sizeof(app.update_file), "%s", fx->path);
	}
	send_response(d, fx->token, status);
	if (status == SRUP_ST_UPDATE_FAIL_HTTP_ERROR) {
		/* Paper §3.7: the details follow as two DATA messages on the same token. */
		uint8_t code[4];
		uint32_t v = (uint32_t)http;

		code[0] = (uint8_t)v;
		code[1] = (uint8_t)(v >> 8);
		code[2] = (uint8_t)(v >> 16);
		code[3] = (uint8_t)(v >> 24);
		send_data(d, fx->token, "HTTP_STATUS", code, sizeof(code));
		send_data(d, fx->token, "HTTP_BODY", body.head, body.head_len);
	}
	pthread_mutex_unlock(&d->lock);
	free(fx);
	return NULL;
}

static void on_initiate(struct srupd *d, const struct srup_msg *m)
{
	struct fetch *fx;
	pthread_t th;

	fx = calloc(1, sizeof(*fx));
	if (fx == NULL) {
		return;
	}
	fx->d = d;
	token_copy(fx->token, &m->token);
	if (field_text(&m->url, fx->url, sizeof(fx->url)) != 0 ||
			field_text(&m->digest, fx->digest, sizeof(fx->digest)) != 0 ||
			d->cfg.update_dir[0] == '\0') {
		srupd_log(SRUPD_WARN, "update: unusable INITIATE (url/digest) or no update_dir");
		send_response(d, fx->token, SRUP_ST_UPDATE_FAIL_SERVER);
		free(fx);
		return;
	}
	snprintf(fx->path, sizeof(fx->path), "%s/%s.download", d->cfg.update_dir, fx->token);
	snprintf(app.update_token, sizeof(app.update_token), "%s", fx->token);
	app.update_ready = 0;
	srupd_log(SRUPD_INFO, "update: fetching %s", fx->url);
	if (pthread_create(&th, NULL, fetch_thread, fx) != 0) {
		send_response(d, fx->token, SRUP_ST_UPDATE_FAIL_SERVER);
		free(fx);
		return;
	}
	pthread_detach(th);
}

static void on_activate(struct srupd *d, const struct srup_msg *m)
{
	char tok[SRUP_TOKEN_LEN + 1];
	char dst[SRUPD_PATH_MAX + 32];

	token_copy(tok, &m->token);
	/* Only the open update's token activates (spec §5.5); anything else fails. */
	if (!app.update_ready || !srupd_token_eq(&m->token, app.update_token)) {
		srupd_log(SRUPD_WARN, "activate: no verified update for this token");
		send_response(d, tok, SRUP_ST_ACTIVATE_FAIL);
		return;
	}
	snprintf(dst, sizeof(dst), "%s/installed.bin", d->cfg.update_dir);
	if (rename(app.update_file, dst) != 0) {
		srupd_log(SRUPD_WARN, "activate: cannot install: %s", strerror(errno));
		send_response(d, tok, SRUP_ST_ACTIVATE_FAIL);
		return;
	}
	app.update_ready = 0;
	app.update_token[0] = '\0';
	app.updates_applied++;
	srupd_log(SRUPD_INFO, "activate: update installed as %s", dst);
	send_response(d, tok, SRUP_ST_ACTIVATE_SUCCESS);
}

/* ---- action, data, identity ------------------------------------------------------------------ */

/* The device's actions: 1 = blink (succeeds), 2 = reboot (succeeds), 3 = self-test (fails, to
 * exercise ACTION_FAIL); anything else is ACTION_UNKNOWN. */
static void on_action(struct srupd *d, const struct srup_msg *m)
{
	char tok[SRUP_TOKEN_LEN + 1];
	unsigned st;

	token_copy(tok, &m->token);
	switch (m->action_id) {
		case 1:
		case 2:
			st = SRUP_ST_ACTION_SUCCESS;
			app.actions++;
			break;
		case 3:
			st = SRUP_ST_ACTION_FAIL;
			break;
		default:
			st = SRUP_ST_ACTION_UNKNOWN;
			break;
	}
	srupd_log(SRUPD_INFO, "action %u -> %s", (unsigned)m->action_id, srup_status_name(st));
	send_response(d, tok, st);
}

static void on_data(struct srupd *d, const struct srup_msg *m)
{
	char tok[SRUP_TOKEN_LEN + 1];
	char id[128];

	token_copy(tok, &m->token);
	app.data_in++;
	if (field_text(&m->data_id, id, sizeof(id)) != 0) {
		send_response(d, tok, SRUP_ST_DATA_TYPE_UNKNOWN);
		return;
	}
	srupd_log(SRUPD_INFO, "data %s (%zu bytes)", id, m->data.len);
	if (strcmp(id, "ECHO") == 0) {
		send_data(d, tok, "ECHO", m->data.p, m->data.len);
	} else if (strcmp(id, "MESSAGE") != 0) {
		send_response(d, tok, SRUP_ST_DATA_TYPE_UNKNOWN);
	}
}

static void on_id_request(struct srupd *d, const struct srup_msg *m)
{
	char tok[SRUP_TOKEN_LEN + 1];
	char text[128];

	token_copy(tok, &m->token);
	snprintf(text, sizeof(text), "srup-device 0.1 id=%s role=%s", d->cfg.identity_text,
			d->cfg.role);
	send_data(d, tok, "IDENTIFICATION_RESPONSE", text, strlen(text));
}

/* ---- joins ---------------------------------------------------------------------------------- */

static int open_value(struct srupd *d, const struct srup_bytes *enc, char out[VALUE_MAX + 1])
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

	app.join_status = status;
	app.join_done = 1;
	if (status == SRUP_ST_JOIN_SUCCESS && p != NULL) {
		p->member = 1;
		srupd_state_save(&d->state);
	}
	srupd_log(SRUPD_INFO, "join outcome: %s", srup_status_name(status));
}

/* Fill a unix socket address; -1 if path does not fit. */
static int unix_addr(struct sockaddr_un *sa, const char *path)
{
	size_t n = strlen(path);

	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (n == 0 || n >= sizeof(sa->sun_path)) {
		return -1;
	}
	memcpy(sa->sun_path, path, n + 1);
	return 0;
}

static void prove_to_beacon(struct srupd *d)
{
	struct sockaddr_un sa;
	char line[160];
	int fd;
	int n;

	if (unix_addr(&sa, app.beacon_socket) != 0) {
		srupd_log(SRUPD_WARN, "observed join: bad beacon socket path");
		return;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		srupd_log(SRUPD_WARN, "observed join: beacon at %s unreachable: %s", sa.sun_path,
				strerror(errno));
		if (fd >= 0) {
			close(fd);
		}
		return;
	}
	n = snprintf(line, sizeof(line), "PROVE %s %s\n", d->cfg.identity_text, app.join_value);
	if (write(fd, line, (size_t)n) != n) {
		srupd_log(SRUPD_WARN, "observed join: write to beacon failed");
	} else {
		srupd_log(SRUPD_INFO, "observed join: value shown to the beacon");
	}
	close(fd);
}

static void on_join_value(struct srupd *d, const struct srup_msg *m)
{
	enum join_kind want = m->type == SRUP_MSG_HM_JOIN_RESP ? JOIN_HM : JOIN_OBS;

	if (app.join_kind != want || app.join_done) {
		srupd_log(SRUPD_WARN, "%s with no matching join in progress: ignored",
				srup_msg_type_name(m->type));
		return;
	}
	if (open_value(d, &m->encrypted, app.join_value) != 0) {
		return;
	}
	/* The outcome will carry this message's token (spec §5.1). */
	token_copy(app.join_token, &m->token);
	if (want == JOIN_HM) {
		device_show_value(d->cfg.show_file, app.join_value);
	} else {
		prove_to_beacon(d);
	}
}

static void on_response(struct srupd *d, const struct srup_msg *m)
{
	if (app.join_kind != JOIN_NONE && !app.join_done &&
			srupd_token_eq(&m->token, app.join_token)) {
		if (m->status == SRUP_ST_JOIN_SUCCESS || m->status == SRUP_ST_JOIN_REFUSED ||
				m->status == SRUP_ST_JOIN_FAIL) {
			finish_join(d, m->status);
			return;
		}
	}
	if (app.leave_token[0] != '\0' && srupd_token_eq(&m->token, app.leave_token)) {
		app.leave_acked = 1;
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
	app.update_ready = 0;
	app.update_token[0] = '\0';
	srupd_log(SRUPD_INFO, "left server: %s", why);
}

/* ---- beacon (observer role) ------------------------------------------------------------------ */

static struct obs_entry *obs_find(uint64_t joining, int create)
{
	size_t i;

	for (i = 0; i < OBS_MAX; i++) {
		if (app.obs[i].used && app.obs[i].joining == joining) {
			return &app.obs[i];
		}
	}
	if (!create) {
		return NULL;
	}
	for (i = 0; i < OBS_MAX; i++) {
		if (!app.obs[i].used) {
			memset(&app.obs[i], 0, sizeof(app.obs[i]));
			app.obs[i].used = 1;
			app.obs[i].joining = joining;
			app.obs[i].since = time(NULL);
			return &app.obs[i];
		}
	}
	return NULL;
}

/* Both halves present: compare. A match is reported as OBSERVED_JOIN_VALID at once. A mismatch
 * (a stale proof from an earlier attempt, or someone else's) is discarded and the beacon keeps
 * waiting for the right one until the timeout, when obs_sweep reports INVALID. So a wrong proof
 * can neither win a race nor block the real device (lock held). */
static void obs_decide(struct srupd *d, struct obs_entry *o)
{
	size_t a;
	size_t b;
	char jid[SRUP_ID_TEXT_MAX];

	if (!o->have_req || !o->have_proof) {
		return;
	}
	a = strlen(o->req_value);
	b = strlen(o->proof_value);
	srupd_id_text(o->joining, jid);
	if (a != b || a == 0 || CRYPTO_memcmp(o->req_value, o->proof_value, a) != 0) {
		srupd_log(SRUPD_WARN, "beacon: device %s showed a value that does not match", jid);
		o->wrong_proofs++;
		o->have_proof = 0;
		OPENSSL_cleanse(o->proof_value, sizeof(o->proof_value));
		return;
	}
	srupd_log(SRUPD_INFO, "beacon: device %s proved the right value", jid);
	send_response(d, o->token, SRUP_ST_OBSERVED_JOIN_VALID);
	OPENSSL_cleanse(o, sizeof(*o));
	o->used = 0;
}

static void on_observe_req(struct srupd *d, const struct srup_msg *m)
{
	struct obs_entry *o;

	if (strcmp(d->cfg.role, "observer") != 0) {
		srupd_log(SRUPD_WARN, "OBSERVE_REQ but this device is not an observer: ignored");
		return;
	}
	o = obs_find(m->joining_device_id, 1);
	if (o == NULL) {
		return;
	}
	if (open_value(d, &m->encrypted, o->req_value) != 0) {
		token_copy(o->token, &m->token);
		send_response(d, o->token, SRUP_ST_OBSERVED_JOIN_FAIL);
		o->used = 0;
		return;
	}
	token_copy(o->token, &m->token);
	o->have_req = 1;
	o->since = time(NULL);
	obs_decide(d, o);
}

/* A half that waited longer than the timeout: a request whose device never proved the value is
 * reported as OBSERVED_JOIN_INVALID (wrong values were shown) or OBSERVED_JOIN_FAIL (none was);
 * a proof nobody asked about is forgotten (lock held). */
static void obs_sweep(struct srupd *d)
{
	time_t now = time(NULL);
	size_t i;

	for (i = 0; i < OBS_MAX; i++) {
		struct obs_entry *o = &app.obs[i];

		if (!o->used || now - o->since < (time_t)d->cfg.timeout_s) {
			continue;
		}
		if (o->have_req) {
			unsigned st = o->wrong_proofs > 0 ? SRUP_ST_OBSERVED_JOIN_INVALID
											  : SRUP_ST_OBSERVED_JOIN_FAIL;
			srupd_log(SRUPD_WARN, "beacon: device %llx never proved its value: %s",
					(unsigned long long)o->joining, srup_status_name(st));
			send_response(d, o->token, st);
		}
		OPENSSL_cleanse(o, sizeof(*o));
		o->used = 0;
	}
}

static void *beacon_thread(void *arg)
{
	struct srupd *d = arg;
	struct sockaddr_un sa;
	int lfd;

	if (unix_addr(&sa, d->cfg.beacon_socket) != 0) {
		srupd_log(SRUPD_ERR, "beacon socket path too long");
		return NULL;
	}
	unlink(sa.sun_path);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 8) != 0) {
		srupd_log(SRUPD_ERR, "beacon socket %s: %s", sa.sun_path, strerror(errno));
		return NULL;
	}
	srupd_log(SRUPD_INFO, "beacon listening on %s", sa.sun_path);
	for (;;) {
		char line[256];
		char *argv[4];
		size_t n = 0;
		struct pollfd pfd = {.fd = lfd, .events = POLLIN};
		int cfd;
		uint64_t jid;
		struct obs_entry *o;

		if (poll(&pfd, 1, 1000) <= 0) {
			pthread_mutex_lock(&d->lock);
			obs_sweep(d);
			pthread_mutex_unlock(&d->lock);
			continue;
		}
		cfd = accept(lfd, NULL, NULL);
		if (cfd < 0) {
			continue;
		}
		while (n + 1 < sizeof(line)) {
			ssize_t r = read(cfd, line + n, 1);
			if (r <= 0 || line[n] == '\n') {
				break;
			}
			n++;
		}
		line[n] = '\0';
		close(cfd);
		if (srupd_split(line, argv, 4) != 3 || strcmp(argv[0], "PROVE") != 0 ||
				srup_id_parse(argv[1], strlen(argv[1]), &jid) != SRUP_OK ||
				strlen(argv[2]) > VALUE_MAX) {
			srupd_log(SRUPD_WARN, "beacon: malformed proof ignored");
			continue;
		}
		pthread_mutex_lock(&d->lock);
		o = obs_find(jid, 1);
		if (o != NULL) {
			/* The latest proof replaces an earlier one still waiting for its request. */
			snprintf(o->proof_value, sizeof(o->proof_value), "%s", argv[2]);
			o->have_proof = 1;
			if (!o->have_req) {
				o->since = time(NULL);
			}
			obs_decide(d, o);
		}
		pthread_mutex_unlock(&d->lock);
	}
	return NULL;
}

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
		srupd_log(SRUPD_INFO, "joined by command of server %llx",
				(unsigned long long)m->sender_id);
		return;
	}
	if (m->sender_id != d->cfg.server) {
		srupd_log(SRUPD_WARN, "drop | reason=not_my_server | type=%s",
				srup_msg_type_name(m->type));
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
			on_initiate(d, m);
			break;
		case SRUP_MSG_ACTIVATE:
			on_activate(d, m);
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
			on_observe_req(d, m);
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
			: strcmp(argv[1], "hm") == 0  ? JOIN_HM
										  : JOIN_OBS;
	memset(&m, 0, sizeof(m));
	if (kind == JOIN_OBS) {
		if (argc < 3 || srup_id_parse(argv[2], strlen(argv[2]), &observer) != SRUP_OK) {
			srupd_reply(fd, "ERR observed join needs the observer id");
			return;
		}
		snprintf(app.beacon_socket, sizeof(app.beacon_socket), "%s",
				argc > 3 ? argv[3] : d->cfg.beacon_socket);
		if (app.beacon_socket[0] == '\0') {
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
	if (app.join_kind != JOIN_NONE && !app.join_done) {
		pthread_mutex_unlock(&d->lock);
		srupd_reply(fd, "ERR a join is already in progress");
		return;
	}
	app.join_kind = kind;
	app.join_done = 0;
	app.join_value[0] = '\0';
	srup_token_new(app.join_token);
	m.type = kind == JOIN_SIMPLE ? SRUP_MSG_JOIN_REQ
			: kind == JOIN_HM    ? SRUP_MSG_HM_JOIN_REQ
								 : SRUP_MSG_OBS_JOIN_REQ;
	m.observer_id = observer;
	set_token(&m, app.join_token);
	srupd_id_text(d->cfg.server, srv);
	snprintf(topic, sizeof(topic), "SRUP/servers/%s/%s", srv, d->cfg.identity_text);
	if (srupd_send(d, d->cfg.server, topic, &m) != 0) {
		app.join_kind = JOIN_NONE;
		pthread_mutex_unlock(&d->lock);
		srupd_reply(fd, "ERR send failed");
		return;
	}
	/* A human-moderated join waits for an operator: allow four times as long. */
	if (srupd_wait_flag(d, &app.join_done, kind == JOIN_HM ? 4 * d->cfg.timeout_s
														   : d->cfg.timeout_s) != 0) {
		app.join_kind = JOIN_NONE;
		pthread_mutex_unlock(&d->lock);
		srupd_reply(fd, "ERR timeout waiting for the join outcome");
		return;
	}
	app.join_kind = JOIN_NONE;
	if (app.join_value[0] != '\0') {
		srupd_reply(fd, "value %s", app.join_value);
	}
	srupd_reply(fd, "%s %s", app.join_status == SRUP_ST_JOIN_SUCCESS ? "OK" : "ERR",
			srup_status_name(app.join_status));
	pthread_mutex_unlock(&d->lock);
}

static void ctl_leave(struct srupd *d, int fd, enum srup_msg_type type)
{
	struct srup_msg m;
	int acked;

	memset(&m, 0, sizeof(m));
	pthread_mutex_lock(&d->lock);
	srup_token_new(app.leave_token);
	app.leave_acked = 0;
	m.type = (uint8_t)type;
	set_token(&m, app.leave_token);
	if (send_to_server(d, &m) != 0) {
		pthread_mutex_unlock(&d->lock);
		srupd_reply(fd, "ERR send failed");
		return;
	}
	leave_server(d, srup_msg_type_name(type));
	/* The server acknowledges with RESIGN_SUCCESS / DEREGISTER_SUCCESS when the broker still
	 * lets it reach us; leaving does not depend on it. */
	(void)srupd_wait_flag(d, &app.leave_acked, 5);
	acked = app.leave_acked;
	app.leave_token[0] = '\0';
	pthread_mutex_unlock(&d->lock);
	srupd_reply(fd, "OK left (%s)", acked ? "acknowledged" : "no acknowledgement");
}

static void ctl_data(struct srupd *d, int fd, int argc, char **argv)
{
	char tok[SRUP_TOKEN_LEN + 1];
	int rc;

	if (argc < 3) {
		srupd_reply(fd, "ERR usage: data DATA_ID TEXT");
		return;
	}
	srup_token_new(tok);
	pthread_mutex_lock(&d->lock);
	rc = send_data(d, tok, argv[1], argv[2], strlen(argv[2]));
	pthread_mutex_unlock(&d->lock);
	srupd_reply(fd, rc == 0 ? "OK sent token=%s" : "ERR send failed token=%s", tok);
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
			p != NULL ? (unsigned long long)p->received : 0ull, app.actions, app.data_in,
			app.updates_applied);
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

static void usage(void)
{
	fprintf(stderr,
			"usage: srup-device run --config FILE [--debug]\n"
			"       srup-device ctl --config FILE COMMAND...\n"
			"commands: status | join simple | join hm | join observed OBSERVER_ID [SOCKET]\n"
			"          | data DATA_ID TEXT | resign | deregister\n");
}

static int join_args(int argc, char **argv, int from, char *out, size_t cap)
{
	size_t off = 0;
	int i;

	out[0] = '\0';
	for (i = from; i < argc; i++) {
		int n = snprintf(out + off, cap - off, "%s%s", i > from ? " " : "", argv[i]);
		if (n < 0 || (size_t)n >= cap - off) {
			return -1;
		}
		off += (size_t)n;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *config = NULL;
	int debug = 0;
	int i;
	int first_cmd = argc;
	struct srupd d;
	int rc;

	if (argc < 2) {
		usage();
		return 3;
	}
	for (i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
			config = argv[++i];
		} else if (strcmp(argv[i], "--debug") == 0) {
			debug = 1;
		} else {
			first_cmd = i;
			break;
		}
	}
	if (config == NULL) {
		usage();
		return 3;
	}
	srupd_log_init("srup-device", debug ? SRUPD_DEBUG : SRUPD_INFO);
	if (strcmp(argv[1], "ctl") == 0) {
		struct srupd_config cfg;
		char line[SRUPD_LINE_MAX];

		if (srupd_config_load(config, &cfg) != 0 ||
				join_args(argc, argv, first_cmd, line, sizeof(line)) != 0 || line[0] == '\0') {
			usage();
			return 3;
		}
		return srupd_ctl_call(cfg.control_socket, line);
	}
	if (strcmp(argv[1], "run") != 0 || first_cmd != argc) {
		usage();
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
	d.on_msg = on_msg;
	d.on_ctl = on_ctl;
	d.on_connect = on_connect;
	d.app = &app;
	if (strcmp(d.cfg.role, "observer") == 0) {
		pthread_t th;

		if (d.cfg.beacon_socket[0] == '\0') {
			srupd_log(SRUPD_ERR, "%s: an observer needs beacon_socket", config);
			srupd_cleanup(&d);
			return 3;
		}
		if (pthread_create(&th, NULL, beacon_thread, &d) == 0) {
			pthread_detach(th);
		}
	}
	rc = srupd_run(&d) == 0 ? 0 : 3;
	srupd_cleanup(&d);
	curl_global_cleanup();
	return rc;
}
