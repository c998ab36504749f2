/* SPDX-License-Identifier: MIT
 * console.c - srup-c2's operator console (paper sections 5.2.1 and 8): an HTTPS server on
 * libmicrohttpd with a JSON API (jansson) and one page shipped inside the binary. Operators log
 * in with a yescrypt-hashed password; sessions live in HttpOnly, Secure, SameSite=Strict cookies;
 * every state change needs the session's CSRF token; the Content-Security-Policy allows no
 * inline script. Commands go through the daemon's own control socket, exactly as `srup-c2 send`
 * does. A human-moderated join is approved only by picking, among decoys, the pictograph the
 * device shows. */
#define _DEFAULT_SOURCE 1 /* crypt_r, crypt_gensalt_ra via <crypt.h> */
#include "c2.h"

#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <qrencode.h>
#include <srup/id.h>

/* The page, generated into the build from tools/c2/web/ (see CMakeLists.txt). */
extern const unsigned char c2_web_index_html[];
extern const unsigned char c2_web_app_js[];
extern const unsigned char c2_web_style_css[];

#define SESSIONS_MAX  64
#define SESSION_TTL   (12 * 3600)
#define BODY_MAX      16384
#define CHOICES       4
#define CHALLENGE_MAX JOINS_MAX

struct session {
	char id[65];
	char csrf[65];
	char op[64];
	time_t expires;
};

/* The decoys of one pending human-moderated join: CHOICES values, one of them the join's. */
struct challenge {
	uint64_t dev;
	char token[SRUP_TOKEN_LEN + 1]; /* the join's HM_JOIN_RESP token: a new join, new decoys */
	char values[CHOICES][VALUE_LEN + 1];
	int right;
	int wrong; /* wrong picks so far */
};

static struct {
	struct srupd *d;
	struct MHD_Daemon *mhd;
	char *cert;
	char *key;
	pthread_mutex_t lock; /* sessions and challenges */
	struct session sessions[SESSIONS_MAX];
	struct challenge ch[CHALLENGE_MAX];
	struct sample samples[SAMPLES_MAX];
	size_t n_samples;
	time_t last_sample;
	volatile int stopping;
} C;

static void hex_random(char *out, size_t bytes)
{
	unsigned char b[32];

	if (RAND_bytes(b, (int)bytes) != 1) {
		abort();
	}
	(void)srup_hex_encode(b, bytes, out, 2 * bytes + 1);
}

static int ct_equal(const char *a, const char *b)
{
	size_t n = strlen(a);

	return n == strlen(b) && CRYPTO_memcmp(a, b, n) == 0;
}

/* ---- operators ------------------------------------------------------------------------------- */

static int valid_name(const char *name)
{
	size_t n = strlen(name);
	size_t i;

	if (n == 0 || n > 32) {
		return 0;
	}
	for (i = 0; i < n; i++) {
		char ch = name[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '_' || ch == '-' || ch == '.')) {
			return 0;
		}
	}
	return 1;
}

int c2_operator_add(const char *file, const char *name)
{
	char pw[256];
	struct termios old;
	int tty = isatty(0);
	char *salt;
	struct crypt_data cd;
	const char *hash;
	FILE *f;
	size_t n;

	if (!valid_name(name)) {
		fprintf(stderr, "srup-c2: operator names are 1-32 of A-Z a-z 0-9 _ - .\n");
		return 3;
	}
	if (tty) {
		struct termios quiet;

		fprintf(stderr, "Password for %s: ", name);
		tcgetattr(0, &old);
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(0, TCSANOW, &quiet);
	}
	if (fgets(pw, sizeof(pw), stdin) == NULL) {
		pw[0] = '\0';
	}
	if (tty) {
		tcsetattr(0, TCSANOW, &old);
		fputc('\n', stderr);
	}
	n = strlen(pw);
	while (n > 0 && (pw[n - 1] == '\n' || pw[n - 1] == '\r')) {
		pw[--n] = '\0';
	}
	if (n < 10) {
		fprintf(stderr, "srup-c2: a console password has at least 10 characters\n");
		OPENSSL_cleanse(pw, sizeof(pw));
		return 1;
	}
	salt = crypt_gensalt_ra("$y$", 0, NULL, 0);
	memset(&cd, 0, sizeof(cd));
	hash = salt != NULL ? crypt_r(pw, salt, &cd) : NULL;
	OPENSSL_cleanse(pw, sizeof(pw));
	free(salt);
	if (hash == NULL || hash[0] == '*') {
		fprintf(stderr, "srup-c2: crypt failed\n");
		return 1;
	}
	{
		int fd = open(file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

		f = fd >= 0 ? fdopen(fd, "a") : NULL;
	}
	if (f == NULL) {
		fprintf(stderr, "srup-c2: %s: %s\n", file, strerror(errno));
		return 1;
	}
	fprintf(f, "%s:%s\n", name, hash);
	if (fclose(f) != 0) {
		return 1;
	}
	printf("OK operator %s added to %s\n", name, file);
	return 0;
}

/* 1 if name/password is an operator of the operators file (the last line for a name wins). */
static int operator_ok(const char *name, const char *pw)
{
	FILE *f = fopen(C.d->cfg.console_operators, "r");
	char line[512];
	char hash[256] = "";
	struct crypt_data cd;
	const char *h;
	size_t nl = strlen(name);

	if (f == NULL || !valid_name(name)) {
		if (f != NULL) {
			fclose(f);
		}
		return 0;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, name, nl) == 0 && line[nl] == ':') {
			snprintf(hash, sizeof(hash), "%s", line + nl + 1);
			hash[strcspn(hash, "\r\n")] = '\0';
		}
	}
	fclose(f);
	if (hash[0] == '\0') {
		return 0;
	}
	memset(&cd, 0, sizeof(cd));
	h = crypt_r(pw, hash, &cd);
	return h != NULL && h[0] != '*' && ct_equal(h, hash);
}

/* ---- sessions -------------------------------------------------------------------------------- */

static struct session *session_of(struct MHD_Connection *conn)
{
	const char *id = MHD_lookup_connection_value(conn, MHD_COOKIE_KIND, "srup_session");
	time_t now = time(NULL);
	size_t i;

	if (id == NULL || strlen(id) != 64) {
		return NULL;
	}
	for (i = 0; i < SESSIONS_MAX; i++) {
		struct session *s = &C.sessions[i];

		if (s->id[0] != '\0' && s->expires > now && ct_equal(s->id, id)) {
			return s;
		}
	}
	return NULL;
}

static struct session *session_new(const char *op)
{
	struct session *best = &C.sessions[0];
	size_t i;

	for (i = 0; i < SESSIONS_MAX; i++) {
		if (C.sessions[i].expires < best->expires) {
			best = &C.sessions[i]; /* a free or the oldest slot */
		}
	}
	hex_random(best->id, 32);
	hex_random(best->csrf, 32);
	snprintf(best->op, sizeof(best->op), "%s", op);
	best->expires = time(NULL) + SESSION_TTL;
	return best;
}

/* ---- the daemon's control socket ------------------------------------------------------------- */

/* Run one control command as `srup-c2 CMD ...` would; *ok = the reply ended with OK. */
static char *control(const char *line, int *ok)
{
	struct sockaddr_un sa;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	size_t cap = 8192;
	size_t n = 0;
	char *out = calloc(1, cap + 1);
	char *last;

	*ok = 0;
	if (fd < 0 || out == NULL) {
		free(out);
		if (fd >= 0) {
			close(fd);
		}
		return strdup("ERR internal error");
	}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(C.d->cfg.control_socket) >= sizeof(sa.sun_path)) {
		close(fd);
		free(out);
		return strdup("ERR control socket path too long");
	}
	memcpy(sa.sun_path, C.d->cfg.control_socket, strlen(C.d->cfg.control_socket) + 1);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    write(fd, line, strlen(line)) != (ssize_t)strlen(line) || write(fd, "\n", 1) != 1) {
		close(fd);
		snprintf(out, cap, "ERR control socket: %s", strerror(errno));
		return out;
	}
	for (;;) {
		ssize_t r = read(fd, out + n, cap - n);

		if (r <= 0) {
			break;
		}
		n += (size_t)r;
		if (n == cap) {
			break;
		}
	}
	close(fd);
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r')) {
		n--;
	}
	out[n] = '\0';
	last = strrchr(out, '\n');
	last = last != NULL ? last + 1 : out;
	*ok = strncmp(last, "OK", 2) == 0;
	return out;
}

/* ---- answers --------------------------------------------------------------------------------- */

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned status, const char *type,
                               const void *body, size_t len, const char *cookie)
{
	struct MHD_Response *r =
	        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result rc;

	if (r == NULL) {
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", type);
	MHD_add_response_header(r, "Content-Security-Policy",
	                        "default-src 'none'; script-src 'self'; style-src 'self'; "
	                        "img-src 'self'; connect-src 'self'; form-action 'self'; "
	                        "frame-ancestors 'none'; base-uri 'none'");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "X-Frame-Options", "DENY");
	MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(r, "Cache-Control", "no-store");
	MHD_add_response_header(r, "Strict-Transport-Security", "max-age=31536000");
	if (cookie != NULL) {
		MHD_add_response_header(r, "Set-Cookie", cookie);
	}
	rc = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result json_answer(struct MHD_Connection *conn, unsigned status, json_t *o,
                                   const char *cookie)
{
	char *s = json_dumps(o, JSON_COMPACT);
	enum MHD_Result rc;

	json_decref(o);
	if (s == NULL) {
		return MHD_NO;
	}
	rc = respond(conn, status, "application/json", s, strlen(s), cookie);
	free(s);
	return rc;
}

static enum MHD_Result error(struct MHD_Connection *conn, unsigned status, const char *why)
{
	return json_answer(conn, status, json_pack("{s:s}", "error", why), NULL);
}

/* ---- pending joins and their challenges (C.lock and d->lock held) ------------------------------ */

static struct challenge *challenge_for(const struct pjoin *j)
{
	struct challenge *free_slot = NULL;
	size_t i;

	for (i = 0; i < CHALLENGE_MAX; i++) {
		struct challenge *c = &C.ch[i];

		if (c->dev == j->dev && strcmp(c->token, j->dev_token) == 0) {
			return c;
		}
		if (free_slot == NULL) {
			/* Free, or about a join that is no longer pending. */
			int live = 0;
			size_t k;

			for (k = 0; k < JOINS_MAX && c->dev != 0; k++) {
				live |= c2st.j[k].used && c2st.j[k].outcome == 0 && c2st.j[k].dev == c->dev &&
				        strcmp(c2st.j[k].dev_token, c->token) == 0;
			}
			if (!live) {
				free_slot = c;
			}
		}
	}
	if (free_slot == NULL) {
		return NULL;
	}
	memset(free_slot, 0, sizeof(*free_slot));
	free_slot->dev = j->dev;
	snprintf(free_slot->token, sizeof(free_slot->token), "%s", j->dev_token);
	{
		unsigned char r;

		if (RAND_bytes(&r, 1) != 1) {
			abort();
		}
		free_slot->right = r % CHOICES;
	}
	for (i = 0; i < CHOICES; i++) {
		if ((int)i == free_slot->right) {
			snprintf(free_slot->values[i], VALUE_LEN + 1, "%s", j->value);
		} else {
			hex_random(free_slot->values[i], VALUE_LEN / 2);
		}
	}
	return free_slot;
}

static const struct pjoin *pending_of(uint64_t dev)
{
	size_t i;

	for (i = 0; i < JOINS_MAX; i++) {
		if (c2st.j[i].used && c2st.j[i].outcome == 0 && c2st.j[i].dev == dev) {
			return &c2st.j[i];
		}
	}
	return NULL;
}

static void value_texts(const char *value, char *hex, size_t hcap, char *phrase, size_t pcap)
{
	struct srup_id128 v;

	snprintf(hex, hcap, "%s", value);
	phrase[0] = '\0';
	if (srup_id128_parse(value, strlen(value), &v, NULL) == SRUP_OK) {
		(void)srup_id128_format(&v, hex, hcap);
		(void)srup_phrase_encode(&v, phrase, pcap);
	}
}

static enum MHD_Result api_pending(struct MHD_Connection *conn)
{
	json_t *arr = json_array();
	size_t i;

	pthread_mutex_lock(&C.lock);
	pthread_mutex_lock(&C.d->lock);
	for (i = 0; i < JOINS_MAX; i++) {
		const struct pjoin *j = &c2st.j[i];
		char id[SRUP_ID_TEXT_MAX];
		char obs[SRUP_ID_TEXT_MAX];
		char hex[64];
		char phrase[SRUP_PHRASE_TEXT_MAX];

		if (!j->used || j->outcome != 0) {
			continue;
		}
		srupd_id_text(j->dev, id);
		srupd_id_text(j->observer, obs);
		value_texts(j->value, hex, sizeof(hex), phrase, sizeof(phrase));
		if (j->kind == J_HM) {
			(void)challenge_for(j);
		}
		json_array_append_new(arr, json_pack("{s:s, s:s, s:I, s:s, s:s, s:i, s:s}", "device", id,
		                                     "kind", j->kind == J_HM ? "hm" : "observed", "since",
		                                     (json_int_t)j->since, "hex", hex, "phrase", phrase,
		                                     "choices", j->kind == J_HM ? CHOICES : 0, "observer",
		                                     j->kind == J_OBS ? obs : ""));
	}
	pthread_mutex_unlock(&C.d->lock);
	pthread_mutex_unlock(&C.lock);
	return json_answer(conn, 200, json_pack("{s:o}", "joins", arr), NULL);
}

/* GET /api/pict/<device>/<n>/<colour|mono> */
static enum MHD_Result api_pict(struct MHD_Connection *conn, const char *rest)
{
	char dev_s[20];
	unsigned n = 0;
	char style[8];
	uint64_t dev;
	char value[VALUE_LEN + 1] = "";
	struct srup_id128 v;
	struct srup_pict p;
	char *svg = NULL;
	size_t len = 0;
	enum MHD_Result rc;

	if (sscanf(rest, "%16[0-9a-f]/%u/%7[a-z]", dev_s, &n, style) != 3 || n >= CHOICES ||
	    c2_parse_dev(dev_s, &dev) != 0 ||
	    (strcmp(style, "colour") != 0 && strcmp(style, "mono") != 0)) {
		return error(conn, 404, "no such pictograph");
	}
	pthread_mutex_lock(&C.lock);
	pthread_mutex_lock(&C.d->lock);
	{
		const struct pjoin *j = pending_of(dev);
		struct challenge *c = j != NULL && j->kind == J_HM ? challenge_for(j) : NULL;

		if (c != NULL) {
			snprintf(value, sizeof(value), "%s", c->values[n]);
		}
	}
	pthread_mutex_unlock(&C.d->lock);
	pthread_mutex_unlock(&C.lock);
	if (value[0] == '\0' || srup_id128_parse(value, strlen(value), &v, NULL) != SRUP_OK ||
	    srup_pict_make(&v, strcmp(style, "mono") == 0 ? SRUP_PICT_MONO : SRUP_PICT_COLOUR, &p) !=
	            SRUP_OK ||
	    srup_pict_svg(&p, 10, &svg, &len) != SRUP_OK) {
		return error(conn, 404, "no such pending join");
	}
	rc = respond(conn, 200, "image/svg+xml", svg, len, NULL);
	free(svg);
	return rc;
}

static enum MHD_Result api_decide(struct MHD_Connection *conn, json_t *in, int approve,
                                  const struct session *s)
{
	json_t *dv = json_object_get(in, "device");
	json_t *cv = json_object_get(in, "choice");
	uint64_t dev;
	char line[64];
	char *out;
	int ok;
	int right = 0;
	int known = 0;

	if (!json_is_string(dv) || c2_parse_dev(json_string_value(dv), &dev) != 0 ||
	    (approve && !json_is_integer(cv))) {
		return error(conn, 400, approve ? "needs \"device\" and \"choice\"" : "needs \"device\"");
	}
	pthread_mutex_lock(&C.lock);
	pthread_mutex_lock(&C.d->lock);
	{
		const struct pjoin *j = pending_of(dev);
		struct challenge *c = j != NULL && j->kind == J_HM ? challenge_for(j) : NULL;

		known = c != NULL;
		if (c != NULL && approve) {
			right = json_integer_value(cv) == c->right;
			if (!right) {
				c->wrong++;
			}
		}
	}
	pthread_mutex_unlock(&C.d->lock);
	pthread_mutex_unlock(&C.lock);
	if (!known) {
		return error(conn, 404, "no human-moderated join pending for this device");
	}
	if (approve && !right) {
		srupd_log(SRUPD_WARN,
		          "console: operator %s picked a pictograph that is not the join's "
		          "value for %s: not approved",
		          s->op, json_string_value(dv));
		return error(conn, 409,
		             "that is not the pictograph this server sent: look at the device again "
		             "(if it shows none of these, refuse the join)");
	}
	snprintf(line, sizeof(line), "%s %s", approve ? "approve" : "reject", json_string_value(dv));
	out = control(line, &ok);
	srupd_log(SRUPD_INFO, "console: operator %s %s %s: %s", s->op, approve ? "approved" : "refused",
	          json_string_value(dv), out);
	{
		enum MHD_Result rc = json_answer(conn, ok ? 200 : 502,
		                                 json_pack("{s:b, s:s}", "ok", ok, "output", out), NULL);

		free(out);
		return rc;
	}
}

static enum MHD_Result api_command(struct MHD_Connection *conn, json_t *in, const struct session *s)
{
	static const char *const flows[] = {"action",     "data",      "update",     "activate",
	                                    "id_request", "terminate", "deregister", "join_cmd"};
	json_t *dv = json_object_get(in, "device");
	json_t *fv = json_object_get(in, "flow");
	json_t *av = json_object_get(in, "args");
	char line[1024];
	size_t off;
	size_t i;
	uint64_t dev;
	int known = 0;
	char *out;
	int ok;

	if (!json_is_string(dv) || c2_parse_dev(json_string_value(dv), &dev) != 0 ||
	    !json_is_string(fv) || (av != NULL && !json_is_array(av)) || json_array_size(av) > 4) {
		return error(conn, 400, "needs \"device\", \"flow\" and at most 4 \"args\"");
	}
	for (i = 0; i < sizeof(flows) / sizeof(flows[0]); i++) {
		known |= strcmp(flows[i], json_string_value(fv)) == 0;
	}
	if (!known) {
		return error(conn, 400, "unknown command");
	}
	off = (size_t)snprintf(line, sizeof(line), "send %s %s", json_string_value(fv),
	                       json_string_value(dv));
	for (i = 0; i < json_array_size(av); i++) {
		json_t *a = json_array_get(av, i);
		const char *t = json_is_string(a) ? json_string_value(a) : NULL;
		size_t k;

		if (t == NULL || t[0] == '\0' || strlen(t) > 300) {
			return error(conn, 400, "arguments are non-empty strings up to 300 characters");
		}
		for (k = 0; t[k] != '\0'; k++) {
			if ((unsigned char)t[k] <= ' ' || t[k] == 0x7f) {
				return error(conn, 400, "arguments may not contain spaces or control characters");
			}
		}
		off += (size_t)snprintf(line + off, sizeof(line) - off, " %s", t);
		if (off >= sizeof(line)) {
			return error(conn, 400, "command too long");
		}
	}
	out = control(line, &ok);
	srupd_log(SRUPD_INFO, "console: operator %s: %s: %s", s->op, line, out);
	{
		enum MHD_Result rc =
		        json_answer(conn, 200, json_pack("{s:b, s:s}", "ok", ok, "output", out), NULL);

		free(out);
		return rc;
	}
}

static enum MHD_Result api_fleet(struct MHD_Connection *conn)
{
	json_t *devs = json_array();
	json_t *late = json_array();
	size_t i;

	pthread_mutex_lock(&C.d->lock);
	for (i = 0; i < C.d->state.n; i++) {
		const struct srupd_peer *p = &C.d->state.peers[i];
		const struct devinfo *di = NULL;
		char id[SRUP_ID_TEXT_MAX];
		size_t k;

		for (k = 0; k < DEVINFO_MAX; k++) {
			if (c2st.devs[k].dev == p->id) {
				di = &c2st.devs[k];
			}
		}
		srupd_id_text(p->id, id);
		json_array_append_new(devs, json_pack("{s:s, s:b, s:I, s:I, s:s, s:I, s:s, s:s}", "device",
		                                      id, "member", p->member, "sent", (json_int_t)p->sent,
		                                      "received", (json_int_t)p->received, "last_type",
		                                      di != NULL ? di->last_type : "", "last_time",
		                                      (json_int_t)(di != NULL ? di->last_time : 0),
		                                      "last_data", di != NULL ? di->last_data : "",
		                                      "update", di != NULL ? di->update : ""));
	}
	for (i = 0; i < LATE_MAX; i++) {
		const char *l = c2st.late[(c2st.late_next + i) % LATE_MAX];

		if (l[0] != '\0') {
			json_array_append_new(late, json_string(l));
		}
	}
	pthread_mutex_unlock(&C.d->lock);
	return json_answer(conn, 200, json_pack("{s:o, s:o}", "devices", devs, "replies", late), NULL);
}

void c2_on_sys(struct srupd *d, const char *topic, const void *payload, size_t len)
{
	const char *prefix = "$SYS/broker/srup/";
	char val[32];
	size_t i;
	time_t now = time(NULL);

	(void)d;
	if (strncmp(topic, prefix, strlen(prefix)) != 0 || len == 0 || len >= sizeof(val)) {
		return;
	}
	memcpy(val, payload, len);
	val[len] = '\0';
	topic += strlen(prefix);
	c2st.sys_seen = 1;
	for (i = 0; i < c2st.n_counters; i++) {
		if (strcmp(c2st.counters[i].name, topic) == 0) {
			break;
		}
	}
	if (i == c2st.n_counters) {
		if (i == COUNTERS_MAX || strlen(topic) >= sizeof(c2st.counters[0].name)) {
			return;
		}
		snprintf(c2st.counters[i].name, sizeof(c2st.counters[i].name), "%s", topic);
		c2st.n_counters++;
	}
	c2st.counters[i].value = strtoll(val, NULL, 10);
	/* A sample of the drop counters every 5 s, for the chart. */
	if (now - C.last_sample >= 5) {
		struct sample *s;
		size_t k;

		if (C.n_samples == SAMPLES_MAX) {
			memmove(&C.samples[0], &C.samples[1], sizeof(C.samples[0]) * (SAMPLES_MAX - 1));
			C.n_samples--;
		}
		s = &C.samples[C.n_samples++];
		s->t = now;
		for (k = 0; k < COUNTERS_MAX; k++) {
			s->dropped[k] =
			        k < c2st.n_counters && strncmp(c2st.counters[k].name, "dropped/", 8) == 0
			                ? c2st.counters[k].value
			                : -1;
		}
		C.last_sample = now;
	}
}

static enum MHD_Result api_broker(struct MHD_Connection *conn)
{
	json_t *cs = json_array();
	json_t *ss = json_array();
	json_t *o;
	size_t i;
	size_t k;

	pthread_mutex_lock(&C.d->lock);
	for (i = 0; i < c2st.n_counters; i++) {
		json_array_append_new(cs, json_pack("{s:s, s:I}", "name", c2st.counters[i].name, "value",
		                                    (json_int_t)c2st.counters[i].value));
	}
	for (i = 0; i < C.n_samples; i++) {
		json_t *drops = json_object();

		for (k = 0; k < c2st.n_counters; k++) {
			if (C.samples[i].dropped[k] >= 0) {
				json_object_set_new(drops, c2st.counters[k].name + 8,
				                    json_integer(C.samples[i].dropped[k]));
			}
		}
		json_array_append_new(
		        ss, json_pack("{s:I, s:o}", "t", (json_int_t)C.samples[i].t, "drops", drops));
	}
	if (c2st.sys_seen) {
		/* The current values close the series. */
		json_t *drops = json_object();

		for (k = 0; k < c2st.n_counters; k++) {
			if (strncmp(c2st.counters[k].name, "dropped/", 8) == 0) {
				json_object_set_new(drops, c2st.counters[k].name + 8,
				                    json_integer(c2st.counters[k].value));
			}
		}
		json_array_append_new(ss,
		                      json_pack("{s:I, s:o}", "t", (json_int_t)time(NULL), "drops", drops));
	}
	o = json_pack("{s:b, s:o, s:o}", "admin", c2st.sys_seen, "counters", cs, "samples", ss);
	pthread_mutex_unlock(&C.d->lock);
	return json_answer(conn, 200, o, NULL);
}

/* The newest drop lines of the broker's audit log (its last 256 KiB), newest first. */
static enum MHD_Result api_drops(struct MHD_Connection *conn)
{
	json_t *arr = json_array();
	FILE *f = C.d->cfg.console_audit_log[0] != '\0' ? fopen(C.d->cfg.console_audit_log, "r") : NULL;
	char *buf = NULL;
	size_t n = 0;

	if (f != NULL) {
		long size;

		fseek(f, 0, SEEK_END);
		size = ftell(f);
		fseek(f, size > 262144 ? size - 262144 : 0, SEEK_SET);
		buf = malloc(262145);
		n = buf != NULL ? fread(buf, 1, 262144, f) : 0;
		fclose(f);
	}
	if (buf != NULL) {
		char *end = buf + n;
		int count = 0;

		*end = '\0';
		while (end > buf && count < 50) {
			char *start = end;
			json_t *o;

			while (start > buf && start[-1] != '\n') {
				start--;
			}
			o = json_loadb(start, (size_t)(end - start), 0, NULL);
			if (json_is_object(o) && json_is_string(json_object_get(o, "verdict")) &&
			    strcmp(json_string_value(json_object_get(o, "verdict")), "drop") == 0) {
				json_t *e = json_object();
				static const char *const keys[] = {"time", "reason", "identity", "topic",
				                                   "client_id"};
				size_t k;

				for (k = 0; k < 5; k++) {
					json_t *v = json_object_get(o, keys[k]);

					json_object_set_new(e, keys[k],
					                    json_string(json_is_string(v) ? json_string_value(v) : ""));
				}
				json_array_append_new(arr, e);
				count++;
			}
			json_decref(o);
			end = start > buf ? start - 1 : buf;
		}
		free(buf);
	}
	return json_answer(conn, 200, json_pack("{s:o}", "drops", arr), NULL);
}

static enum MHD_Result api_qr(struct MHD_Connection *conn)
{
	const char *url = C.d->cfg.console_registration_url;
	QRcode *q;
	size_t cap;
	char *svg;
	size_t off;
	int x;
	int y;
	enum MHD_Result rc;

	if (url[0] == '\0') {
		return error(conn, 404, "no console_registration_url configured");
	}
	q = QRcode_encodeString(url, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
	if (q == NULL) {
		return error(conn, 500, "QR encoding failed");
	}
	cap = 256 + (size_t)q->width * (size_t)q->width * 40;
	svg = malloc(cap);
	if (svg == NULL) {
		QRcode_free(q);
		return MHD_NO;
	}
	off = (size_t)snprintf(svg, cap,
	                       "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" "
	                       "shape-rendering=\"crispEdges\"><rect width=\"100%%\" height=\"100%%\" "
	                       "fill=\"#fff\"/><path fill=\"#000\" d=\"",
	                       q->width + 8, q->width + 8);
	for (y = 0; y < q->width; y++) {
		for (x = 0; x < q->width; x++) {
			if (q->data[y * q->width + x] & 1) {
				off += (size_t)snprintf(svg + off, cap - off, "M%d %dh1v1h-1z", x + 4, y + 4);
			}
		}
	}
	off += (size_t)snprintf(svg + off, cap - off, "\"/></svg>\n");
	QRcode_free(q);
	rc = respond(conn, 200, "image/svg+xml", svg, off, NULL);
	free(svg);
	return rc;
}

/* ---- server-sent events ---------------------------------------------------------------------- */

struct sse {
	int last;
	time_t last_write;
};

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct sse *s = cls;
	int i;

	(void)pos;
	for (i = 0; i < 60 && !C.stopping; i++) {
		int ev;

		pthread_mutex_lock(&C.d->lock);
		ev = c2st.events;
		pthread_mutex_unlock(&C.d->lock);
		if (ev != s->last) {
			s->last = ev;
			s->last_write = time(NULL);
			return snprintf(buf, max, "data: %d\n\n", ev);
		}
		if (time(NULL) - s->last_write >= 15) {
			s->last_write = time(NULL);
			return snprintf(buf, max, ": keep-alive\n\n");
		}
		usleep(250000);
	}
	return C.stopping ? MHD_CONTENT_READER_END_OF_STREAM : snprintf(buf, max, ": idle\n\n");
}

static enum MHD_Result api_events(struct MHD_Connection *conn)
{
	struct sse *s = calloc(1, sizeof(*s));
	struct MHD_Response *r;
	enum MHD_Result rc;

	if (s == NULL) {
		return MHD_NO;
	}
	s->last = -1;
	s->last_write = time(NULL);
	r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 1024, sse_read, s, free);
	if (r == NULL) {
		free(s);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", "text/event-stream");
	MHD_add_response_header(r, "Cache-Control", "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	rc = MHD_queue_response(conn, 200, r);
	MHD_destroy_response(r);
	return rc;
}

/* ---- routing --------------------------------------------------------------------------------- */

struct req {
	char *body;
	size_t len;
	int too_large;
};

static enum MHD_Result asset(struct MHD_Connection *conn, const char *url)
{
	if (strcmp(url, "/") == 0 || strcmp(url, "/index.html") == 0) {
		return respond(conn, 200, "text/html; charset=utf-8", c2_web_index_html,
		               strlen((const char *)c2_web_index_html), NULL);
	}
	if (strcmp(url, "/app.js") == 0) {
		return respond(conn, 200, "text/javascript; charset=utf-8", c2_web_app_js,
		               strlen((const char *)c2_web_app_js), NULL);
	}
	if (strcmp(url, "/style.css") == 0) {
		return respond(conn, 200, "text/css; charset=utf-8", c2_web_style_css,
		               strlen((const char *)c2_web_style_css), NULL);
	}
	return error(conn, 404, "not found");
}

static enum MHD_Result api_login(struct MHD_Connection *conn, json_t *in)
{
	json_t *nv = json_object_get(in, "name");
	json_t *pv = json_object_get(in, "password");
	struct session *s;
	char cookie[160];
	char csrf[65];
	int ok;

	if (!json_is_string(nv) || !json_is_string(pv)) {
		return error(conn, 400, "needs \"name\" and \"password\"");
	}
	ok = operator_ok(json_string_value(nv), json_string_value(pv));
	if (!ok) {
		srupd_log(SRUPD_WARN, "console: failed login for '%.32s'", json_string_value(nv));
		sleep(1); /* each guess costs a second (and a yescrypt) */
		return error(conn, 401, "unknown operator or wrong password");
	}
	pthread_mutex_lock(&C.lock);
	s = session_new(json_string_value(nv));
	snprintf(cookie, sizeof(cookie),
	         "srup_session=%s; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=%d", s->id,
	         SESSION_TTL);
	snprintf(csrf, sizeof(csrf), "%s", s->csrf);
	pthread_mutex_unlock(&C.lock);
	srupd_log(SRUPD_INFO, "console: operator %s logged in", json_string_value(nv));
	return json_answer(conn, 200,
	                   json_pack("{s:s, s:s}", "operator", json_string_value(nv), "csrf", csrf),
	                   cookie);
}

static enum MHD_Result route(struct MHD_Connection *conn, const char *url, const char *method,
                             struct req *r)
{
	int post = strcmp(method, "POST") == 0;
	struct session *s;
	struct session copy;
	json_t *in = NULL;
	enum MHD_Result rc;

	if (strncmp(url, "/api/", 5) != 0) {
		return strcmp(method, "GET") == 0 ? asset(conn, url) : error(conn, 405, "GET only");
	}
	if (!post && strcmp(method, "GET") != 0) {
		return error(conn, 405, "GET or POST");
	}
	if (post) {
		json_error_t je;

		if (r->too_large) {
			return error(conn, 413, "request body too large");
		}
		in = json_loadb(r->body != NULL ? r->body : "", r->len, JSON_REJECT_DUPLICATES, &je);
		if (!json_is_object(in)) {
			json_decref(in);
			return error(conn, 400, "the body is not a JSON object");
		}
	}
	if (post && strcmp(url, "/api/login") == 0) {
		rc = api_login(conn, in);
		json_decref(in);
		return rc;
	}
	pthread_mutex_lock(&C.lock);
	s = session_of(conn);
	if (s != NULL) {
		copy = *s;
	}
	pthread_mutex_unlock(&C.lock);
	if (s == NULL) {
		json_decref(in);
		return error(conn, 401, "log in first");
	}
	if (post) {
		const char *tok = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-CSRF-Token");

		if (tok == NULL || !ct_equal(tok, copy.csrf)) {
			json_decref(in);
			srupd_log(SRUPD_WARN, "console: %s without a valid CSRF token (operator %s): refused",
			          url, copy.op);
			return error(conn, 403, "missing or wrong CSRF token");
		}
	}
	if (!post && strcmp(url, "/api/session") == 0) {
		rc = json_answer(conn, 200, json_pack("{s:s, s:s}", "operator", copy.op, "csrf", copy.csrf),
		                 NULL);
	} else if (post && strcmp(url, "/api/logout") == 0) {
		pthread_mutex_lock(&C.lock);
		s = session_of(conn);
		if (s != NULL) {
			memset(s, 0, sizeof(*s));
		}
		pthread_mutex_unlock(&C.lock);
		rc = json_answer(conn, 200, json_pack("{s:b}", "ok", 1),
		                 "srup_session=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0");
	} else if (!post && strcmp(url, "/api/pending") == 0) {
		rc = api_pending(conn);
	} else if (!post && strncmp(url, "/api/pict/", 10) == 0) {
		rc = api_pict(conn, url + 10);
	} else if (post && strcmp(url, "/api/approve") == 0) {
		rc = api_decide(conn, in, 1, &copy);
	} else if (post && strcmp(url, "/api/refuse") == 0) {
		rc = api_decide(conn, in, 0, &copy);
	} else if (post && strcmp(url, "/api/command") == 0) {
		rc = api_command(conn, in, &copy);
	} else if (!post && strcmp(url, "/api/fleet") == 0) {
		rc = api_fleet(conn);
	} else if (!post && strcmp(url, "/api/broker") == 0) {
		rc = api_broker(conn);
	} else if (!post && strcmp(url, "/api/drops") == 0) {
		rc = api_drops(conn);
	} else if (!post && strcmp(url, "/api/qr.svg") == 0) {
		rc = api_qr(conn);
	} else if (!post && strcmp(url, "/api/provisioning") == 0) {
		rc = json_answer(conn, 200, json_pack("{s:s}", "url", C.d->cfg.console_registration_url),
		                 NULL);
	} else if (!post && strcmp(url, "/api/events") == 0) {
		rc = api_events(conn);
	} else {
		rc = error(conn, 404, "no such API");
	}
	json_decref(in);
	return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
	struct req *r = *con_cls;

	(void)cls;
	(void)version;
	if (r == NULL) {
		r = calloc(1, sizeof(*r));
		if (r == NULL) {
			return MHD_NO;
		}
		*con_cls = r;
		return MHD_YES;
	}
	if (*upload_size > 0) {
		if (!r->too_large && r->len + *upload_size <= BODY_MAX) {
			char *nb = realloc(r->body, r->len + *upload_size + 1);

			if (nb == NULL) {
				return MHD_NO;
			}
			memcpy(nb + r->len, upload, *upload_size);
			r->body = nb;
			r->len += *upload_size;
		} else {
			r->too_large = 1;
		}
		*upload_size = 0;
		return MHD_YES;
	}
	return route(conn, url, method, r);
}

static void on_done(void *cls, struct MHD_Connection *conn, void **con_cls,
                    enum MHD_RequestTerminationCode toe)
{
	struct req *r = *con_cls;

	(void)cls;
	(void)conn;
	(void)toe;
	if (r != NULL) {
		free(r->body);
		free(r);
		*con_cls = NULL;
	}
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	size_t n;

	if (f == NULL) {
		return NULL;
	}
	buf = malloc(1 << 20);
	n = buf != NULL ? fread(buf, 1, (1 << 20) - 1, f) : 0;
	fclose(f);
	if (buf != NULL) {
		buf[n] = '\0';
	}
	return buf;
}

int c2_console_start(struct srupd *d)
{
	struct sockaddr_in sa;
	const char *addr = d->cfg.console_address[0] != '\0' ? d->cfg.console_address : "127.0.0.1";

	if (d->cfg.console_port == 0) {
		return 0;
	}
	memset(&C, 0, sizeof(C));
	C.d = d;
	pthread_mutex_init(&C.lock, NULL);
	if (d->cfg.console_cert[0] == '\0' || d->cfg.console_key[0] == '\0' ||
	    d->cfg.console_operators[0] == '\0') {
		srupd_log(SRUPD_ERR, "console: needs console_cert, console_key and console_operators");
		return -1;
	}
	C.cert = slurp(d->cfg.console_cert);
	C.key = slurp(d->cfg.console_key);
	if (C.cert == NULL || C.key == NULL) {
		srupd_log(SRUPD_ERR, "console: cannot read %s / %s", d->cfg.console_cert,
		          d->cfg.console_key);
		return -1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)d->cfg.console_port);
	if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
		srupd_log(SRUPD_ERR, "console: console_address %s is not an IPv4 address", addr);
		return -1;
	}
	/* A thread per connection: the live updates (server-sent events) block in their reader. */
	C.mhd = MHD_start_daemon(
	        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_TLS, 0, NULL,
	        NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_HTTPS_MEM_CERT, C.cert,
	        MHD_OPTION_HTTPS_MEM_KEY, C.key, MHD_OPTION_CONNECTION_LIMIT, 64u,
	        MHD_OPTION_PER_IP_CONNECTION_LIMIT, 32u, MHD_OPTION_CONNECTION_TIMEOUT, 120u,
	        MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL, MHD_OPTION_END);
	if (C.mhd == NULL) {
		srupd_log(SRUPD_ERR, "console: cannot listen on %s:%d", addr, d->cfg.console_port);
		return -1;
	}
	srupd_log(SRUPD_INFO, "console: https://%s:%d/", addr, d->cfg.console_port);
	return 0;
}

void c2_console_stop(void)
{
	if (C.mhd != NULL) {
		C.stopping = 1;
		MHD_stop_daemon(C.mhd);
		C.mhd = NULL;
	}
	free(C.cert);
	free(C.key);
	C.cert = NULL;
	C.key = NULL;
}
