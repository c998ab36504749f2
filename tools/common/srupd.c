/* SPDX-License-Identifier: MIT
 * srupd.c - shared runtime of the lab daemons: config, durable sequence state, peer keys,
 * the MQTT session (libmosquitto threaded loop), receive checks and the control socket.
 * Protocol flows live in the daemons (tools/c2, tools/device), not here. */
#include "srupd.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <mosquitto.h>
#include <systemd/sd-daemon.h>
#include <mqtt_protocol.h>
#include <openssl/crypto.h>
#include <srup/id.h>

/* ---- logging ---------------------------------------------------------------------------- */

static char log_prog[64] = "srupd";
static enum srupd_level log_min = SRUPD_INFO;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void srupd_log_init(const char *prog, enum srupd_level min)
{
	snprintf(log_prog, sizeof(log_prog), "%s", prog);
	log_min = min;
}

void srupd_log(enum srupd_level level, const char *fmt, ...)
{
	static const char *const names[] = {"debug", "info", "warning", "error"};
	struct timespec ts;
	struct tm tm;
	char when[32];
	va_list ap;

	if (level < log_min) {
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	pthread_mutex_lock(&log_lock);
	fprintf(stderr, "%s.%03ldZ %s %s: ", when, ts.tv_nsec / 1000000L, log_prog, names[level]);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
	pthread_mutex_unlock(&log_lock);
}

/* ---- small helpers -------------------------------------------------------------------------- */

void srupd_id_text(uint64_t id, char out[SRUP_ID_TEXT_MAX])
{
	if (srup_id_format(id, out, SRUP_ID_TEXT_MAX) != SRUP_OK) {
		snprintf(out, SRUP_ID_TEXT_MAX, "?");
	}
}

void srupd_token_text(const struct srup_bytes *t, char *out, size_t cap)
{
	size_t i;
	size_t n = 0;

	if (cap == 0) {
		return;
	}
	for (i = 0; i < t->len && n + 1 < cap; i++) {
		out[n++] = (char)(isprint(t->p[i]) ? t->p[i] : '?');
	}
	out[n] = '\0';
}

int srupd_token_eq(const struct srup_bytes *t, const char *expected)
{
	size_t n = strlen(expected);

	if (n == 0 || t->len != n) {
		return 0;
	}
	return CRYPTO_memcmp(t->p, expected, n) == 0;
}

int srupd_split(char *line, char **argv, int max)
{
	int n = 0;
	char *p = line;

	while (*p != '\0' && n < max) {
		while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') {
			p++;
		}
		if (*p == '\0') {
			break;
		}
		argv[n++] = p;
		while (*p != '\0' && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
			p++;
		}
		if (*p != '\0') {
			*p++ = '\0';
		}
	}
	return n;
}

static int fsync_dir_of(const char *path)
{
	char dir[SRUPD_PATH_MAX];
	char *slash;
	int fd;
	int rc;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash == NULL) {
		snprintf(dir, sizeof(dir), ".");
	} else if (slash == dir) {
		dir[1] = '\0';
	} else {
		*slash = '\0';
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY);
	if (fd < 0) {
		return -1;
	}
	rc = fsync(fd);
	close(fd);
	return rc;
}

int srupd_write_file(const char *path, const void *buf, size_t len)
{
	char tmp[SRUPD_PATH_MAX + 8];
	const uint8_t *p = buf;
	size_t off = 0;
	int fd;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		return -1;
	}
	while (off < len) {
		ssize_t w = write(fd, p + off, len - off);
		if (w < 0) {
			if (errno == EINTR) {
				continue;
			}
			close(fd);
			unlink(tmp);
			return -1;
		}
		off += (size_t)w;
	}
	if (fsync(fd) != 0) {
		close(fd);
		unlink(tmp);
		return -1;
	}
	close(fd);
	if (rename(tmp, path) != 0) {
		unlink(tmp);
		return -1;
	}
	return fsync_dir_of(path);
}

/* ---- config ----------------------------------------------------------------------------- */

static int parse_port(const char *v, int *out)
{
	char *end = NULL;
	unsigned long n;

	errno = 0;
	n = strtoul(v, &end, 10);
	if (errno != 0 || end == v || *end != '\0' || n == 0 || n > 65535) {
		return -1;
	}
	*out = (int)n;
	return 0;
}

static int copy_value(char *dst, size_t cap, const char *v)
{
	size_t n = strlen(v);

	if (n == 0 || n >= cap) {
		return -1;
	}
	memcpy(dst, v, n + 1);
	return 0;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t') {
		s++;
	}
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r')) {
		e--;
	}
	*e = '\0';
	return s;
}

static int config_set(struct srupd_config *cfg, const char *k, const char *v)
{
	struct {
		const char *name;
		char *dst;
		size_t cap;
	} strs[] = {
	        {"role", cfg->role, sizeof(cfg->role)},
	        {"private_key", cfg->private_key, sizeof(cfg->private_key)},
	        {"peer_keys", cfg->peer_keys, sizeof(cfg->peer_keys)},
	        {"broker_host", cfg->broker_host, sizeof(cfg->broker_host)},
	        {"tls_ca", cfg->tls_ca, sizeof(cfg->tls_ca)},
	        {"tls_cert", cfg->tls_cert, sizeof(cfg->tls_cert)},
	        {"tls_key", cfg->tls_key, sizeof(cfg->tls_key)},
	        {"state_file", cfg->state_file, sizeof(cfg->state_file)},
	        {"control_socket", cfg->control_socket, sizeof(cfg->control_socket)},
	        {"update_dir", cfg->update_dir, sizeof(cfg->update_dir)},
	        {"update_ca", cfg->update_ca, sizeof(cfg->update_ca)},
	        {"beacon_socket", cfg->beacon_socket, sizeof(cfg->beacon_socket)},
	        {"show_file", cfg->show_file, sizeof(cfg->show_file)},
	        {"join_policy", cfg->join_policy, sizeof(cfg->join_policy)},
	        {"wire_log", cfg->wire_log, sizeof(cfg->wire_log)},
	        {"registry_url", cfg->registry_url, sizeof(cfg->registry_url)},
	        {"registry_ca", cfg->registry_ca, sizeof(cfg->registry_ca)},
	        {"registry_token", cfg->registry_token, sizeof(cfg->registry_token)},
	        {"console_address", cfg->console_address, sizeof(cfg->console_address)},
	        {"console_cert", cfg->console_cert, sizeof(cfg->console_cert)},
	        {"console_key", cfg->console_key, sizeof(cfg->console_key)},
	        {"console_operators", cfg->console_operators, sizeof(cfg->console_operators)},
	        {"console_audit_log", cfg->console_audit_log, sizeof(cfg->console_audit_log)},
	        {"console_registration_url", cfg->console_registration_url,
	         sizeof(cfg->console_registration_url)},
	};
	size_t i;

	if (strcmp(k, "identity") == 0) {
		if (srup_id_parse(v, strlen(v), &cfg->identity) != SRUP_OK || cfg->identity == 0) {
			return -1;
		}
		srupd_id_text(cfg->identity, cfg->identity_text);
		return 0;
	}
	if (strcmp(k, "server") == 0) {
		return srup_id_parse(v, strlen(v), &cfg->server) == SRUP_OK ? 0 : -1;
	}
	if (strcmp(k, "broker_port") == 0) {
		return parse_port(v, &cfg->broker_port);
	}
	if (strcmp(k, "timeout") == 0) {
		return parse_port(v, &cfg->timeout_s);
	}
	if (strcmp(k, "console_port") == 0) {
		return parse_port(v, &cfg->console_port);
	}
	if (strcmp(k, "reply_wait") == 0) {
		return strcmp(v, "0") == 0 ? (cfg->reply_wait_s = 0) : parse_port(v, &cfg->reply_wait_s);
	}
	for (i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
		if (strcmp(k, strs[i].name) == 0) {
			return copy_value(strs[i].dst, strs[i].cap, v);
		}
	}
	return -2;
}

void srupd_config_help(FILE *to, const char *role)
{
	int c2 = strcmp(role, "c2") == 0;

	fprintf(to,
	        "Config file keys (key = value, '#' comments):\n"
	        "  identity        this node's 64-bit SRUP id, hex (required)\n"
	        "  role            %s\n"
	        "  private_key     PEM file of its RSA signing key (required)\n"
	        "  peer_keys       directory of <id>.pub.pem public keys of its peers (required)\n"
	        "  broker_host     MQTT broker host (required)\n"
	        "  broker_port     MQTT broker port (required)\n"
	        "  tls_ca, tls_cert, tls_key  mutual TLS to the broker (all three, or none)\n"
	        "  state_file      durable sequence IDs and membership (required)\n"
	        "  control_socket  unix socket the command forms of this program talk to (required)\n"
	        "  timeout         seconds a command waits for the broker or a flow (default 20)\n",
	        c2 ? "c2" : "device (default) or observer");
	if (c2) {
		fprintf(to,
		        "  reply_wait      seconds a command waits for an optional device reply (default "
		        "3)\n"
		        "  join_policy     accept (default) or refuse simple joins\n"
		        "  wire_log        file: hex of every message sent and received (optional)\n"
		        "  registry_url    registration service to register with at start (optional)\n"
		        "  registry_ca     CA of the registration service's HTTPS certificate\n"
		        "  registry_token  token its operator issued for this server's key\n"
		        "  console_port    the operator console's HTTPS port (console off if unset)\n"
		        "  console_address its listen address (default 127.0.0.1)\n"
		        "  console_cert, console_key  its HTTPS certificate and key\n"
		        "  console_operators  operators file (srup-c2 operator add NAME)\n"
		        "  console_audit_log  the broker's audit log, for the newest drops\n"
		        "  console_registration_url  shown as a QR code for provisioning\n");
	} else {
		fprintf(to, "  server          the C2 server to join, id hex\n"
		            "  update_dir      where updates are downloaded\n"
		            "  update_ca       CA bundle for https update URLs\n"
		            "  beacon_socket   observer: where it listens; device: default observer "
		            "socket\n"
		            "  show_file       where the join value is shown for a person (optional)\n"
		            "  wire_log        file: hex of every message sent and received (optional)\n");
	}
}

int srupd_cli_parse(int argc, char **argv, const char *prog, void (*usage)(FILE *),
                    struct srupd_cli *out)
{
	static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
	                                     {"debug", no_argument, NULL, 'd'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {"version", no_argument, NULL, 'V'},
	                                     {NULL, 0, NULL, 0}};
	int pass;
	int c;

	memset(out, 0, sizeof(*out));
	optind = 0;
	opterr = 0;
	/* Two passes: options before the command word, then options right after it. */
	for (pass = 0; pass < 2; pass++) {
		while ((c = getopt_long(argc, argv, "+:c:dhV", opts, NULL)) != -1) {
			switch (c) {
				case 'c':
					out->config = optarg;
					break;
				case 'd':
					out->debug = 1;
					break;
				case 'h':
					usage(stdout);
					return 1;
				case 'V':
					printf("%s %s\n", prog, SRUPD_VERSION);
					return 1;
				case ':':
					fprintf(stderr, "%s: option '%s' needs a value\n", prog, argv[optind - 1]);
					return 3;
				default:
					fprintf(stderr, "%s: unknown option '%s' (try --help)\n", prog,
					        argv[optind - 1]);
					return 3;
			}
		}
		if (pass == 0) {
			if (optind >= argc) {
				break;
			}
			out->cmd = argv[optind];
			/* getopt_long continues from argv[optind]: hide the command word from it. */
			argv += optind;
			argc -= optind;
			optind = 0; /* 0: reinitialise, start at argv[1] */
		}
	}
	if (out->cmd != NULL) {
		out->argc = argc - optind;
		out->argv = argv + optind;
	}
	return 0;
}

int srupd_config_load(const char *path, struct srupd_config *cfg)
{
	FILE *f;
	char buf[1024];
	unsigned lineno = 0;
	int rc = 0;

	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->path, sizeof(cfg->path), "%s", path);
	snprintf(cfg->role, sizeof(cfg->role), "device");
	snprintf(cfg->join_policy, sizeof(cfg->join_policy), "accept");
	cfg->timeout_s = 20;
	cfg->reply_wait_s = 3;
	f = fopen(path, "r");
	if (f == NULL) {
		srupd_log(SRUPD_ERR, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	while (fgets(buf, sizeof(buf), f) != NULL) {
		char *line;
		char *eq;
		char *k;
		char *v;
		int r;

		lineno++;
		line = trim(buf);
		if (*line == '\0' || *line == '#') {
			continue;
		}
		eq = strchr(line, '=');
		if (eq == NULL) {
			srupd_log(SRUPD_ERR, "%s:%u: expected key = value", path, lineno);
			rc = -1;
			continue;
		}
		*eq = '\0';
		k = trim(line);
		v = trim(eq + 1);
		r = config_set(cfg, k, v);
		if (r == -2) {
			srupd_log(SRUPD_ERR, "%s:%u: unknown key '%s'", path, lineno, k);
			rc = -1;
		} else if (r != 0) {
			srupd_log(SRUPD_ERR, "%s:%u: bad value for '%s'", path, lineno, k);
			rc = -1;
		}
	}
	fclose(f);
	if (cfg->identity == 0 || cfg->private_key[0] == '\0' || cfg->peer_keys[0] == '\0' ||
	    cfg->broker_host[0] == '\0' || cfg->broker_port == 0 || cfg->state_file[0] == '\0' ||
	    cfg->control_socket[0] == '\0') {
		srupd_log(SRUPD_ERR,
		          "%s: identity, private_key, peer_keys, broker_host, broker_port, "
		          "state_file and control_socket are required",
		          path);
		rc = -1;
	}
	if (strcmp(cfg->role, "c2") != 0 && strcmp(cfg->role, "device") != 0 &&
	    strcmp(cfg->role, "observer") != 0) {
		srupd_log(SRUPD_ERR, "%s: role must be c2, device or observer", path);
		rc = -1;
	}
	if ((cfg->tls_ca[0] != '\0') != (cfg->tls_cert[0] != '\0') ||
	    (cfg->tls_cert[0] != '\0') != (cfg->tls_key[0] != '\0')) {
		srupd_log(SRUPD_ERR, "%s: tls_ca, tls_cert and tls_key go together", path);
		rc = -1;
	}
	return rc;
}

/* ---- state ------------------------------------------------------------------------------- */

int srupd_next_seq(const struct srupd_peer *p, uint64_t *out)
{
	uint64_t top = p->sent > p->received ? p->sent : p->received;
	if (top == UINT64_MAX) {
		return -1;
	}
	*out = top + 1;
	return 0;
}

struct srupd_peer *srupd_state_peer(struct srupd_state *st, uint64_t id)
{
	size_t i;

	for (i = 0; i < st->n; i++) {
		if (st->peers[i].id == id) {
			return &st->peers[i];
		}
	}
	if (st->n == SRUPD_PEERS_MAX) {
		return NULL;
	}
	memset(&st->peers[st->n], 0, sizeof(st->peers[0]));
	st->peers[st->n].id = id;
	return &st->peers[st->n++];
}

int srupd_state_load(struct srupd_state *st, const char *path)
{
	FILE *f;
	char buf[256];

	memset(st, 0, sizeof(*st));
	snprintf(st->path, sizeof(st->path), "%s", path);
	f = fopen(path, "r");
	if (f == NULL) {
		return errno == ENOENT ? 0 : -1;
	}
	while (fgets(buf, sizeof(buf), f) != NULL) {
		char id_text[32];
		unsigned long long sent;
		unsigned long long recv;
		int member;
		uint64_t id;
		struct srupd_peer *p;

		if (buf[0] == '#') {
			continue;
		}
		if (sscanf(buf, "peer %31s sent %llu received %llu member %d", id_text, &sent, &recv,
		           &member) != 4 ||
		    srup_id_parse(id_text, strlen(id_text), &id) != SRUP_OK) {
			fclose(f);
			srupd_log(SRUPD_ERR, "%s: corrupt state line", path);
			return -1;
		}
		p = srupd_state_peer(st, id);
		if (p == NULL) {
			fclose(f);
			return -1;
		}
		p->sent = sent;
		p->received = recv;
		p->member = member;
	}
	fclose(f);
	return 0;
}

int srupd_state_save(const struct srupd_state *st)
{
	char *buf;
	size_t cap = 64 + st->n * 96;
	size_t off = 0;
	size_t i;
	int rc;

	buf = malloc(cap);
	if (buf == NULL) {
		return -1;
	}
	off += (size_t)snprintf(buf, cap, "# srup daemon state: per-peer sequence IDs\n");
	for (i = 0; i < st->n; i++) {
		char id[SRUP_ID_TEXT_MAX];

		srupd_id_text(st->peers[i].id, id);
		off += (size_t)snprintf(buf + off, cap - off, "peer %s sent %llu received %llu member %d\n",
		                        id, (unsigned long long)st->peers[i].sent,
		                        (unsigned long long)st->peers[i].received, st->peers[i].member);
	}
	rc = srupd_write_file(st->path, buf, off);
	free(buf);
	if (rc != 0) {
		srupd_log(SRUPD_ERR, "state %s: cannot write: %s", st->path, strerror(errno));
	}
	return rc;
}

/* ---- keys --------------------------------------------------------------------------------- */

struct key_slot {
	uint64_t id;
	struct srup_key *key;
};

static struct key_slot key_cache[SRUPD_PEERS_MAX];
static pthread_mutex_t key_lock = PTHREAD_MUTEX_INITIALIZER;

const struct srup_key *srupd_key_get(const char *dir, uint64_t id)
{
	char path[SRUPD_PATH_MAX + 32];
	char id_text[SRUP_ID_TEXT_MAX];
	struct srup_key *key = NULL;
	const struct srup_key *found = NULL;
	size_t i;

	pthread_mutex_lock(&key_lock);
	for (i = 0; i < SRUPD_PEERS_MAX; i++) {
		if (key_cache[i].key != NULL && key_cache[i].id == id) {
			found = key_cache[i].key;
			goto out;
		}
	}
	srupd_id_text(id, id_text);
	snprintf(path, sizeof(path), "%s/%s.pub.pem", dir, id_text);
	if (access(path, R_OK) != 0) {
		goto out;
	}
	if (srup_key_load_file(path, SRUP_KEY_PUBLIC, &key, NULL) != SRUP_OK) {
		srupd_log(SRUPD_WARN, "key %s does not load", path);
		goto out;
	}
	for (i = 0; i < SRUPD_PEERS_MAX; i++) {
		if (key_cache[i].key == NULL) {
			key_cache[i].id = id;
			key_cache[i].key = key;
			found = key;
			key = NULL;
			break;
		}
	}
out:
	pthread_mutex_unlock(&key_lock);
	srup_key_free(key);
	return found;
}

void srupd_keys_forget(uint64_t id)
{
	size_t i;

	pthread_mutex_lock(&key_lock);
	for (i = 0; i < SRUPD_PEERS_MAX; i++) {
		if (key_cache[i].key != NULL && key_cache[i].id == id) {
			srup_key_free(key_cache[i].key);
			key_cache[i].key = NULL;
		}
	}
	pthread_mutex_unlock(&key_lock);
}

void srupd_keys_free_all(void)
{
	size_t i;

	pthread_mutex_lock(&key_lock);
	for (i = 0; i < SRUPD_PEERS_MAX; i++) {
		srup_key_free(key_cache[i].key);
		key_cache[i].key = NULL;
	}
	pthread_mutex_unlock(&key_lock);
}

/* ---- wire log ------------------------------------------------------------------------------ */

static void wire_log(struct srupd *d, const char *dir, const char *topic, const void *buf,
                     size_t len)
{
	FILE *f;
	const uint8_t *p = buf;
	size_t i;

	if (d->cfg.wire_log[0] == '\0') {
		return;
	}
	f = fopen(d->cfg.wire_log, "a");
	if (f == NULL) {
		return;
	}
	fprintf(f, "%s %s ", dir, topic);
	for (i = 0; i < len; i += 256) {
		char hex[2 * 256 + 1];
		size_t n = len - i < 256 ? len - i : 256;
		if (srup_hex_encode(p + i, n, hex, sizeof hex) == SRUP_OK) {
			fputs(hex, f);
		}
	}
	fputc('\n', f);
	fclose(f);
}

/* ---- MQTT --------------------------------------------------------------------------------- */

static void on_connect_cb(struct mosquitto *mosq, void *ud, int rc, int flags,
                          const mosquitto_property *props)
{
	struct srupd *d = ud;

	(void)mosq;
	(void)flags;
	(void)props;
	if (rc != 0) {
		srupd_log(SRUPD_WARN, "broker refused the connection: %s", mosquitto_reason_string(rc));
		return;
	}
	pthread_mutex_lock(&d->lock);
	d->connected = 1;
	d->subs_pending = 0;
	srupd_log(SRUPD_INFO, "connected to %s:%d as %s", d->cfg.broker_host, d->cfg.broker_port,
	          d->cfg.identity_text);
	if (d->on_connect != NULL) {
		d->on_connect(d);
	}
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
}

static void on_disconnect_cb(struct mosquitto *mosq, void *ud, int rc,
                             const mosquitto_property *props)
{
	struct srupd *d = ud;

	(void)mosq;
	(void)props;
	pthread_mutex_lock(&d->lock);
	d->connected = 0;
	pthread_mutex_unlock(&d->lock);
	if (rc != 0) {
		srupd_log(SRUPD_WARN, "disconnected (rc=%d), reconnecting", rc);
	}
}

static void on_subscribe_cb(struct mosquitto *mosq, void *ud, int mid, int qos_count,
                            const int *granted, const mosquitto_property *props)
{
	struct srupd *d = ud;
	int i;

	(void)mosq;
	(void)mid;
	(void)props;
	for (i = 0; i < qos_count; i++) {
		if (granted[i] >= 0x80) {
			srupd_log(SRUPD_WARN, "broker refused a subscription: reason 0x%02x",
			          (unsigned)granted[i]);
		}
	}
	pthread_mutex_lock(&d->lock);
	if (d->subs_pending > 0) {
		d->subs_pending--;
	}
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
}

int srupd_ready(const struct srupd *d)
{
	return d->connected && d->subs_pending == 0;
}

static void on_publish_cb(struct mosquitto *mosq, void *ud, int mid, int reason,
                          const mosquitto_property *props)
{
	struct srupd *d = ud;

	(void)mosq;
	(void)props;
	if (reason >= 0x80) {
		srupd_log(SRUPD_WARN, "broker refused our publish mid=%d: reason 0x%02x (%s)", mid,
		          (unsigned)reason, mosquitto_reason_string(reason));
	}
	pthread_mutex_lock(&d->lock);
	if (reason >= 0x80) {
		size_t i;

		for (i = 0; i < SRUPD_ACKS; i++) {
			if (d->sent[i].mid == mid && d->sent[i].peer != 0) {
				char id[SRUP_ID_TEXT_MAX];
				uint64_t n = srupd_seq_resync(d, d->sent[i].peer);

				srupd_id_text(d->sent[i].peer, id);
				srupd_log(SRUPD_WARN,
				          "refused message to %s had sequence ID %llu; the next one carries "
				          "%llu, above any mark a restored state could have left behind",
				          id, (unsigned long long)d->sent[i].seq, (unsigned long long)n + 1);
				d->sent[i].peer = 0;
				break;
			}
		}
	}
	d->acks[d->ack_next].mid = mid;
	d->acks[d->ack_next].reason = reason;
	d->ack_next = (d->ack_next + 1) % SRUPD_ACKS;
	if (d->on_ack != NULL) {
		d->on_ack(d, mid, reason);
	}
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
}

/* The ack of mid in the ring, or NULL. */
static const struct srupd_ack *ack_find(const struct srupd *d, int mid)
{
	size_t i;

	for (i = 0; i < SRUPD_ACKS; i++) {
		if (d->acks[i].mid == mid) {
			return &d->acks[i];
		}
	}
	return NULL;
}

int srupd_wait_ack(struct srupd *d, int mid, int timeout_s, int *reason)
{
	struct timespec dl;
	const struct srupd_ack *a;

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += timeout_s;
	while ((a = ack_find(d, mid)) == NULL) {
		if (pthread_cond_timedwait(&d->cond, &d->lock, &dl) == ETIMEDOUT) {
			a = ack_find(d, mid);
			break;
		}
	}
	if (a == NULL) {
		return -1;
	}
	*reason = a->reason;
	return a->reason >= 0x80 ? 1 : 0;
}

uint64_t srupd_seq_resync(struct srupd *d, uint64_t peer_id)
{
	struct srupd_peer *p = srupd_state_peer(&d->state, peer_id);
	struct timespec ts;
	uint64_t now_us;

	if (p == NULL) {
		return 0;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	now_us = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
	if (p->sent < now_us) {
		p->sent = now_us;
		if (srupd_state_save(&d->state) != 0) {
			srupd_log(SRUPD_ERR, "cannot persist the moved sequence ID");
		}
	}
	return p->sent;
}

static void on_message_cb(struct mosquitto *mosq, void *ud, const struct mosquitto_message *mm,
                          const mosquitto_property *props)
{
	struct srupd *d = ud;
	struct srup_msg m;
	struct srup_diag diag;
	const struct srup_key *key;
	struct srupd_peer *peer;
	char sender[SRUP_ID_TEXT_MAX];
	enum srup_err e;
	size_t len;

	(void)mosq;
	(void)props;
	if (mm->payloadlen <= 0 || mm->payload == NULL) {
		srupd_log(SRUPD_WARN, "drop | reason=empty_payload | topic=%s", mm->topic);
		return;
	}
	len = (size_t)mm->payloadlen;
	if (strncmp(mm->topic, "$SYS/", 5) == 0) {
		if (d->on_sys != NULL) {
			pthread_mutex_lock(&d->lock);
			d->on_sys(d, mm->topic, mm->payload, len);
			pthread_mutex_unlock(&d->lock);
		}
		return;
	}
	memset(&diag, 0, sizeof(diag));
	e = srup_msg_parse(mm->payload, len, &m, &diag);
	if (e != SRUP_OK) {
		srupd_log(SRUPD_WARN, "drop | reason=%s | topic=%s | offset=%zu", srup_err_name(e),
		          mm->topic, diag.offset);
		return;
	}
	srupd_id_text(m.sender_id, sender);
	if (m.sender_id == d->cfg.identity) {
		srupd_log(SRUPD_INFO, "drop | reason=own_echo | topic=%s | seq=%llu", mm->topic,
		          (unsigned long long)m.sequence_id);
		return;
	}
	pthread_mutex_lock(&d->lock);
	key = srupd_key_get(d->cfg.peer_keys, m.sender_id);
	if (key == NULL) {
		srupd_log(SRUPD_WARN, "drop | reason=unknown_sender | sender=%s | topic=%s", sender,
		          mm->topic);
		goto out;
	}
	peer = srupd_state_peer(&d->state, m.sender_id);
	if (peer == NULL) {
		srupd_log(SRUPD_ERR, "drop | reason=internal_error | peer table full");
		goto out;
	}
	if (m.sequence_id <= peer->received) {
		srupd_log(SRUPD_WARN, "drop | reason=replay | sender=%s | seq=%llu | last=%llu", sender,
		          (unsigned long long)m.sequence_id, (unsigned long long)peer->received);
		goto out;
	}
	e = srup_msg_verify(&m, key, NULL);
	if (e != SRUP_OK) {
		srupd_log(SRUPD_WARN, "drop | reason=bad_signature | sender=%s | seq=%llu | type=%s",
		          sender, (unsigned long long)m.sequence_id, srup_msg_type_name(m.type));
		goto out;
	}
	peer->received = m.sequence_id;
	if (srupd_state_save(&d->state) != 0) {
		srupd_log(SRUPD_ERR, "drop | reason=internal_error | cannot persist sequence ID");
		goto out;
	}
	wire_log(d, "in", mm->topic, mm->payload, len);
	srupd_log(SRUPD_INFO, "accept | type=%s | sender=%s | seq=%llu | topic=%s",
	          srup_msg_type_name(m.type), sender, (unsigned long long)m.sequence_id, mm->topic);
	if (d->on_msg != NULL) {
		d->on_msg(d, mm->topic, &m);
	}
	pthread_cond_broadcast(&d->cond);
out:
	pthread_mutex_unlock(&d->lock);
}

int srupd_send(struct srupd *d, uint64_t peer_id, const char *topic, struct srup_msg *m)
{
	return srupd_send_mid(d, peer_id, topic, m, NULL);
}

int srupd_send_mid(struct srupd *d, uint64_t peer_id, const char *topic, struct srup_msg *m,
                   int *mid_out)
{
	int mid = 0;
	size_t i;
	struct srupd_peer *peer;
	struct srup_diag diag;
	uint8_t *buf = NULL;
	size_t cap;
	size_t len = 0;
	enum srup_err e;
	int rc = -1;
	int mrc;

	peer = srupd_state_peer(&d->state, peer_id);
	if (peer == NULL) {
		srupd_log(SRUPD_ERR, "peer table full");
		return -1;
	}
	if (srupd_next_seq(peer, &peer->sent) != 0) {
		srupd_log(SRUPD_ERR, "sequence IDs exhausted for this peer");
		return -1;
	}
	/* The counter is made durable before the message exists, so a crash after the publish
	 * can never lead to the same sequence ID being used twice. */
	if (srupd_state_save(&d->state) != 0) {
		return -1;
	}
	m->version = SRUP_VERSION;
	m->sequence_id = peer->sent;
	m->sender_id = d->cfg.identity;
	cap = srup_msg_encoded_len(m, srup_key_size(d->key));
	if (cap == 0) {
		srupd_log(SRUPD_ERR, "cannot encode %s", srup_msg_type_name(m->type));
		return -1;
	}
	buf = malloc(cap);
	if (buf == NULL) {
		return -1;
	}
	memset(&diag, 0, sizeof(diag));
	e = srup_msg_sign_encode(m, d->key, buf, cap, &len, &diag);
	if (e != SRUP_OK) {
		srupd_log(SRUPD_ERR, "cannot sign %s: %s %s", srup_msg_type_name(m->type), srup_strerror(e),
		          diag.detail);
		goto out;
	}
	mrc = mosquitto_publish_v5(d->mosq, &mid, topic, (int)len, buf, 1, false, NULL);
	if (mrc != MOSQ_ERR_SUCCESS) {
		srupd_log(SRUPD_ERR, "publish to %s failed: %s", topic, mosquitto_strerror(mrc));
		goto out;
	}
	/* Message ids are reused: forget any old answer to this one (the lock keeps the network
	 * thread from recording the new answer before this). */
	for (i = 0; i < SRUPD_ACKS; i++) {
		if (d->acks[i].mid == mid) {
			d->acks[i].mid = 0;
		}
	}
	d->sent[d->sent_next].mid = mid;
	d->sent[d->sent_next].peer = peer_id;
	d->sent[d->sent_next].seq = m->sequence_id;
	d->sent_next = (d->sent_next + 1) % SRUPD_ACKS;
	if (mid_out != NULL) {
		*mid_out = mid;
	}
	wire_log(d, "out", topic, buf, len);
	srupd_log(SRUPD_INFO, "send | type=%s | seq=%llu | topic=%s | bytes=%zu",
	          srup_msg_type_name(m->type), (unsigned long long)m->sequence_id, topic, len);
	rc = 0;
out:
	free(buf);
	return rc;
}

void srupd_subscribe(struct srupd *d, const char *topic)
{
	int rc = mosquitto_subscribe_v5(d->mosq, NULL, topic, 1, MQTT_SUB_OPT_NO_LOCAL, NULL);

	if (rc != MOSQ_ERR_SUCCESS) {
		srupd_log(SRUPD_WARN, "subscribe %s: %s", topic, mosquitto_strerror(rc));
	} else {
		d->subs_pending++;
		srupd_log(SRUPD_DEBUG, "subscribed %s", topic);
	}
}

void srupd_unsubscribe(struct srupd *d, const char *topic)
{
	(void)mosquitto_unsubscribe_v5(d->mosq, NULL, topic, NULL);
}

int srupd_wait_flag(struct srupd *d, const int *flag, int timeout_s)
{
	struct timespec dl;

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += timeout_s;
	while (*flag == 0) {
		if (pthread_cond_timedwait(&d->cond, &d->lock, &dl) == ETIMEDOUT) {
			return *flag != 0 ? 0 : -1;
		}
	}
	return 0;
}

/* ---- init / run ------------------------------------------------------------------------------ */

int srupd_init(struct srupd *d, const char *config_path)
{
	char client_id[64];
	struct srup_diag diag;
	enum srup_err e;

	memset(d, 0, sizeof(*d));
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->cond, NULL);
	if (srupd_config_load(config_path, &d->cfg) != 0) {
		return -1;
	}
	memset(&diag, 0, sizeof(diag));
	e = srup_key_load_file(d->cfg.private_key, SRUP_KEY_PRIVATE, &d->key, &diag);
	if (e != SRUP_OK) {
		srupd_log(SRUPD_ERR, "%s: private key %s: %s %s", config_path, d->cfg.private_key,
		          srup_strerror(e), diag.detail);
		return -1;
	}
	if (srupd_state_load(&d->state, d->cfg.state_file) != 0) {
		srupd_log(SRUPD_ERR, "%s: cannot read state %s", config_path, d->cfg.state_file);
		return -1;
	}
	mosquitto_lib_init();
	snprintf(client_id, sizeof(client_id), "srup-%s-%s", d->cfg.role, d->cfg.identity_text);
	d->mosq = mosquitto_new(client_id, true, d);
	if (d->mosq == NULL) {
		srupd_log(SRUPD_ERR, "mosquitto_new failed");
		return -1;
	}
	mosquitto_int_option(d->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
	mosquitto_username_pw_set(d->mosq, d->cfg.identity_text, NULL);
	if (d->cfg.tls_ca[0] != '\0') {
		int rc = mosquitto_tls_set(d->mosq, d->cfg.tls_ca, NULL, d->cfg.tls_cert, d->cfg.tls_key,
		                           NULL);
		if (rc != MOSQ_ERR_SUCCESS) {
			srupd_log(SRUPD_ERR, "%s: TLS files: %s", config_path, mosquitto_strerror(rc));
			return -1;
		}
	}
	mosquitto_connect_v5_callback_set(d->mosq, on_connect_cb);
	mosquitto_disconnect_v5_callback_set(d->mosq, on_disconnect_cb);
	mosquitto_publish_v5_callback_set(d->mosq, on_publish_cb);
	mosquitto_subscribe_v5_callback_set(d->mosq, on_subscribe_cb);
	mosquitto_message_v5_callback_set(d->mosq, on_message_cb);
	mosquitto_reconnect_delay_set(d->mosq, 1, 5, false);
	return 0;
}

static volatile sig_atomic_t stop_flag;
static volatile sig_atomic_t reload_flag;

static void on_signal(int sig)
{
	if (sig == SIGHUP) {
		reload_flag = 1;
	} else {
		stop_flag = 1;
	}
}

/* SIGHUP: peer keys are read again from peer_keys on next use (a new or replaced key file is
 * picked up without a restart). */
static void reload(struct srupd *d)
{
	sd_notify(0, "RELOADING=1");
	pthread_mutex_lock(&d->lock);
	srupd_keys_free_all();
	pthread_mutex_unlock(&d->lock);
	srupd_log(SRUPD_INFO, "reloaded: peer keys will be read again from %s", d->cfg.peer_keys);
	sd_notify(0, "READY=1");
}

struct ctl_conn {
	struct srupd *d;
	int fd;
};

static void *ctl_thread(void *arg)
{
	struct ctl_conn *c = arg;
	char line[SRUPD_LINE_MAX];
	size_t n = 0;

	while (n + 1 < sizeof(line)) {
		ssize_t r = read(c->fd, line + n, 1);
		if (r <= 0 || line[n] == '\n') {
			break;
		}
		n++;
	}
	line[n] = '\0';
	if (n > 0) {
		c->d->on_ctl(c->d, c->fd, line);
	}
	close(c->fd);
	free(c);
	return NULL;
}

void srupd_reply(int fd, const char *fmt, ...)
{
	char buf[SRUPD_LINE_MAX];
	va_list ap;
	int n;
	size_t off = 0;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0) {
		return;
	}
	if ((size_t)n > sizeof(buf) - 2) {
		n = (int)sizeof(buf) - 2;
	}
	buf[n++] = '\n';
	while (off < (size_t)n) {
		ssize_t w = write(fd, buf + off, (size_t)n - off);
		if (w <= 0) {
			return;
		}
		off += (size_t)w;
	}
}

static double srupd_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int srupd_run(struct srupd *d)
{
	struct sockaddr_un sa;
	struct sigaction act;
	double down_since;
	double next_warn = 5;
	int was_up = -1;
	int lfd;
	int rc;
	int up;

	memset(&act, 0, sizeof(act));
	act.sa_handler = on_signal;
	sigaction(SIGTERM, &act, NULL);
	sigaction(SIGINT, &act, NULL);
	sigaction(SIGHUP, &act, NULL);
	signal(SIGPIPE, SIG_IGN);

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(d->cfg.control_socket) >= sizeof(sa.sun_path)) {
		srupd_log(SRUPD_ERR, "control_socket path too long");
		return -1;
	}
	/* the length was checked just above: copy it with its NUL */
	memcpy(sa.sun_path, d->cfg.control_socket, strlen(d->cfg.control_socket) + 1);
	unlink(sa.sun_path);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd >= 0) {
		/* Only our own user may drive the daemon: the socket is created 0600. */
		mode_t old_mask = umask(0077);
		int brc = bind(lfd, (struct sockaddr *)&sa, sizeof(sa));

		umask(old_mask);
		if (brc != 0 || listen(lfd, 16) != 0) {
			close(lfd);
			lfd = -1;
		}
	}
	if (lfd < 0) {
		srupd_log(SRUPD_ERR, "control socket %s: %s", sa.sun_path, strerror(errno));
		return -1;
	}

	rc = mosquitto_connect_bind_async(d->mosq, d->cfg.broker_host, d->cfg.broker_port, 30, NULL);
	if (rc != MOSQ_ERR_SUCCESS) {
		srupd_log(SRUPD_WARN, "connect to %s:%d: %s (will retry)", d->cfg.broker_host,
		          d->cfg.broker_port, mosquitto_strerror(rc));
	}
	rc = mosquitto_loop_start(d->mosq);
	if (rc != MOSQ_ERR_SUCCESS) {
		srupd_log(SRUPD_ERR, "loop_start: %s", mosquitto_strerror(rc));
		close(lfd);
		return -1;
	}
	srupd_log(SRUPD_INFO, "%s %s running, control socket %s", d->cfg.role, d->cfg.identity_text,
	          sa.sun_path);
	/* systemd (Type=notify): ready once the control socket answers; the broker connection
	 * comes and goes and is reported in STATUS. */
	sd_notifyf(0, "READY=1\nSTATUS=%s %s: connecting to %s:%d", d->cfg.role, d->cfg.identity_text,
	           d->cfg.broker_host, d->cfg.broker_port);
	down_since = srupd_mono();
	while (!stop_flag) {
		struct pollfd pfd = {.fd = lfd, .events = POLLIN};
		int cfd;
		pthread_t th;
		struct ctl_conn *c;

		/* The broker out of reach is said, and said again, not left to silence. */
		pthread_mutex_lock(&d->lock);
		up = d->connected;
		pthread_mutex_unlock(&d->lock);
		if (reload_flag) {
			reload_flag = 0;
			reload(d);
		}
		if (up != was_up) {
			sd_notifyf(0, "STATUS=%s %s: %s %s:%d", d->cfg.role, d->cfg.identity_text,
			           up ? "connected to" : "not connected to", d->cfg.broker_host,
			           d->cfg.broker_port);
			was_up = up;
		}
		if (up) {
			down_since = 0;
			next_warn = 5;
		} else if (down_since == 0) {
			down_since = srupd_mono();
		} else if (srupd_mono() - down_since >= next_warn) {
			srupd_log(SRUPD_WARN, "not connected to the broker %s:%d for %.0f s, retrying",
			          d->cfg.broker_host, d->cfg.broker_port, srupd_mono() - down_since);
			next_warn = next_warn < 30 ? 30 : next_warn + 60;
		}
		if (poll(&pfd, 1, 500) <= 0) {
			continue;
		}
		cfd = accept(lfd, NULL, NULL);
		if (cfd < 0) {
			continue;
		}
		c = malloc(sizeof(*c));
		if (c == NULL) {
			close(cfd);
			continue;
		}
		c->d = d;
		c->fd = cfd;
		if (pthread_create(&th, NULL, ctl_thread, c) != 0) {
			close(cfd);
			free(c);
			continue;
		}
		pthread_detach(th);
	}
	srupd_log(SRUPD_INFO, "stopping");
	sd_notify(0, "STOPPING=1");
	close(lfd);
	unlink(sa.sun_path);
	pthread_mutex_lock(&d->lock);
	up = d->connected;
	pthread_mutex_unlock(&d->lock);
	mosquitto_disconnect_v5(d->mosq, 0, NULL);
	/* Not connected, the network thread may be waiting to reconnect: do not wait for it. */
	mosquitto_loop_stop(d->mosq, !up);
	return 0;
}

void srupd_cleanup(struct srupd *d)
{
	if (d->mosq != NULL) {
		mosquitto_destroy(d->mosq);
		d->mosq = NULL;
		mosquitto_lib_cleanup();
	}
	srup_key_free(d->key);
	d->key = NULL;
	srupd_keys_free_all();
}

/* ---- control client ------------------------------------------------------------------------ */

int srupd_ctl_call(const char *sock_path, const char *line)
{
	struct sockaddr_un sa;
	char buf[SRUPD_LINE_MAX];
	char last[SRUPD_LINE_MAX] = "";
	size_t last_len = 0;
	int fd;
	ssize_t r;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(sock_path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "control socket path too long\n");
		return 3;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		fprintf(stderr, "cannot reach the daemon at %s: %s\n", sock_path, strerror(errno));
		if (fd >= 0) {
			close(fd);
		}
		return 3;
	}
	if (write(fd, line, strlen(line)) < 0 || write(fd, "\n", 1) < 0) {
		close(fd);
		return 3;
	}
	for (;;) {
		ssize_t i;

		r = read(fd, buf, sizeof(buf));
		if (r <= 0) {
			break;
		}
		fwrite(buf, 1, (size_t)r, stdout);
		/* Track the start of the last complete line. */
		for (i = 0; i < r; i++) {
			if (buf[i] == '\n') {
				if (last_len > 0) {
					last[last_len] = '\0';
				}
				last_len = 0;
				continue;
			}
			if (last_len == 0) {
				last[0] = '\0';
			}
			if (last_len + 1 < sizeof(last)) {
				last[last_len++] = buf[i];
				last[last_len] = '\0';
			}
		}
	}
	fflush(stdout);
	close(fd);
	if (strncmp(last, "OK", 2) == 0) {
		return 0;
	}
	return 1;
}
