/* SPDX-License-Identifier: MIT
 * audit.c - the JSON-lines audit log of verdicts, rate-limited per reason, safe under rotation.
 * One write(2) per line on an O_APPEND descriptor (a crash loses no written line); no fsync. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "srupb.h"

#define AUDIT_LINE_MAX SRUPB_AUDIT_LINE_MAX
#define AUDIT_STR_MAX  SRUPB_LOG_TRUNC
#define B_ACCEPT       SRUPB_R__COUNT
#define B_RETRANSMIT   (SRUPB_R__COUNT + 1)
#define B_REFUSE       (SRUPB_R__COUNT + 2) /* subscriptions refused, every reason */
#define B_ADMIN        (SRUPB_R__COUNT + 3) /* + enum srupb_admin_reason */
#define B_COUNT        (B_ADMIN + SRUPB_AR__COUNT)
#define CONN_HASH      256
#define CONN_NIL       UINT32_MAX
#define CONN_IDLE      60.0 /* a full table reuses entries idle this long (Wills after DISCONNECT) */

struct bucket {
	double tokens;
	double last;
	uint64_t suppressed;
};

/* One client connection's bucket, across every reason. */
struct conn {
	const void *client; /* NULL: free */
	uint64_t id_hash;   /* of the whole client id: a reused pointer is another connection */
	char id[SRUPB_LOG_TRUNC + 1];
	struct bucket b;
	uint32_t next; /* hash chain, or free list */
};

struct srupb_audit {
	char *path;
	int fd;
	dev_t dev;
	ino_t ino;
	struct srupb_audit_limits lim;
	double last_rot_check;
	double last_total_summary;
	struct bucket b[B_COUNT];
	struct bucket total;
	struct bucket overflow; /* connections that found the table full share this one */
	struct conn conns[SRUPB_AUDIT_CONNS];
	uint32_t heads[CONN_HASH];
	uint32_t free_head;
	size_t n_conns;
	/* Tamper evidence: each line carries "chain", the SHA-256 of the previous line's chain and
	 * the line itself without it. Kept across reopen (rotation); read back at open. */
	uint8_t chain[32];
};

/* The chain of the last line of the file at path (zero if there is none). */
static void chain_load(const char *path, uint8_t chain[32])
{
	char buf[8192];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	off_t size = fd >= 0 ? lseek(fd, 0, SEEK_END) : -1;
	off_t from = size > (off_t)sizeof buf ? size - (off_t)sizeof buf : 0;
	ssize_t n;
	const char *key = "\"chain\":\"";
	char *p;
	char *last = NULL;

	memset(chain, 0, 32);
	n = size > 0 ? pread(fd, buf, sizeof buf - 1, from) : 0;
	if (fd >= 0) {
		close(fd);
	}
	if (n <= 0) {
		return;
	}
	buf[n] = '\0';
	for (p = strstr(buf, key); p != NULL; p = strstr(p + 1, key)) {
		last = p;
	}
	if (last != NULL && strlen(last) >= strlen(key) + 64) {
		const char *h = last + strlen(key);

		for (int i = 0; i < 32; i++) {
			unsigned v;

			if (sscanf(h + 2 * i, "%2x", &v) != 1) {
				memset(chain, 0, 32);
				return;
			}
			chain[i] = (uint8_t)v;
		}
	}
}

double srupb_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void write_summary(struct srupb_audit *a, size_t bi);
static void write_conn_summary(struct srupb_audit *a, const char *client_id, struct bucket *b);
static void write_total_summary(struct srupb_audit *a);

static int open_fd(const char *path, char *err, size_t err_cap)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 && err != NULL && err_cap > 0) {
		snprintf(err, err_cap, "cannot open audit log %s: %s", path, strerror(errno));
	}
	return fd;
}

enum srup_err srupb_audit_open(const char *path, unsigned burst, double rate,
                               struct srupb_audit **out, char *err, size_t err_cap)
{
	struct srupb_audit *a;
	struct stat sb;

	*out = NULL;
	a = calloc(1, sizeof *a);
	if (a == NULL) {
		return SRUP_ERR_NOMEM;
	}
	a->path = strdup(path);
	if (a->path == NULL) {
		free(a);
		return SRUP_ERR_NOMEM;
	}
	a->fd = open_fd(path, err, err_cap);
	if (a->fd < 0) {
		free(a->path);
		free(a);
		return SRUP_ERR_IO;
	}
	chain_load(path, a->chain);
	if (fstat(a->fd, &sb) == 0) {
		a->dev = sb.st_dev;
		a->ino = sb.st_ino;
	}
	a->lim.client_burst = 20;
	a->lim.client_rate = 2.0;
	a->lim.total_burst = 200;
	a->lim.total_rate = 50.0;
	srupb_audit_set_rate(a, burst, rate);
	for (size_t i = 0; i < B_COUNT; i++) {
		a->b[i].tokens = (double)a->lim.burst;
		a->b[i].last = srupb_now();
	}
	a->total.tokens = (double)a->lim.total_burst;
	a->total.last = srupb_now();
	a->overflow.tokens = (double)a->lim.client_burst;
	a->overflow.last = srupb_now();
	for (size_t i = 0; i < CONN_HASH; i++) {
		a->heads[i] = CONN_NIL;
	}
	for (uint32_t i = 0; i < SRUPB_AUDIT_CONNS; i++) {
		a->conns[i].next = i + 1 < SRUPB_AUDIT_CONNS ? i + 1 : CONN_NIL;
	}
	a->free_head = 0;
	*out = a;
	return SRUP_OK;
}

void srupb_audit_set_rate(struct srupb_audit *a, unsigned burst, double rate)
{
	a->lim.burst = burst == 0 ? 1 : burst;
	a->lim.rate = rate <= 0 ? 1.0 : rate;
}

/* A full bucket stays full under a new burst; a partly used one keeps its tokens (at most the
 * new burst). */
static void rescale(struct bucket *b, unsigned old_burst, unsigned new_burst)
{
	if (b->tokens >= (double)old_burst || b->tokens > (double)new_burst) {
		b->tokens = (double)new_burst;
	}
}

void srupb_audit_set_limits(struct srupb_audit *a, const struct srupb_audit_limits *l)
{
	struct srupb_audit_limits old = a->lim;
	srupb_audit_set_rate(a, l->burst, l->rate);
	a->lim.client_burst = l->client_burst == 0 ? 1 : l->client_burst;
	a->lim.client_rate = l->client_rate <= 0 ? 1.0 : l->client_rate;
	a->lim.total_burst = l->total_burst == 0 ? 1 : l->total_burst;
	a->lim.total_rate = l->total_rate <= 0 ? 1.0 : l->total_rate;
	for (size_t i = 0; i < B_COUNT; i++) {
		rescale(&a->b[i], old.burst, a->lim.burst);
	}
	for (size_t i = 0; i < SRUPB_AUDIT_CONNS; i++) {
		if (a->conns[i].client != NULL) {
			rescale(&a->conns[i].b, old.client_burst, a->lim.client_burst);
		}
	}
	rescale(&a->overflow, old.client_burst, a->lim.client_burst);
	rescale(&a->total, old.total_burst, a->lim.total_burst);
}

void srupb_audit_apply_policy(struct srupb_audit *a, const struct srupb_policy *p)
{
	struct srupb_audit_limits l = {p->audit_burst,        p->audit_rate,
	                               p->audit_client_burst, p->audit_client_rate,
	                               p->audit_total_burst,  p->audit_total_rate};
	if (a != NULL && p != NULL) {
		srupb_audit_set_limits(a, &l);
	}
}

void srupb_audit_close(struct srupb_audit *a)
{
	if (a == NULL) {
		return;
	}
	/* Whatever was suppressed is reported now, whatever the caps say. */
	for (size_t i = 0; i < B_COUNT; i++) {
		if (a->b[i].suppressed > 0) {
			write_summary(a, i);
		}
	}
	for (size_t i = 0; i < SRUPB_AUDIT_CONNS; i++) {
		if (a->conns[i].client != NULL && a->conns[i].b.suppressed > 0) {
			write_conn_summary(a, a->conns[i].id, &a->conns[i].b);
		}
	}
	if (a->overflow.suppressed > 0) {
		write_conn_summary(a, NULL, &a->overflow);
	}
	if (a->total.suppressed > 0) {
		write_total_summary(a);
	}
	if (a->fd >= 0) {
		close(a->fd);
	}
	free(a->path);
	free(a);
}

enum srup_err srupb_audit_reopen(struct srupb_audit *a, char *err, size_t err_cap)
{
	struct stat sb;
	int fd = open_fd(a->path, err, err_cap);
	if (fd < 0) {
		return SRUP_ERR_IO;
	}
	if (a->fd >= 0) {
		close(a->fd);
	}
	a->fd = fd;
	if (fstat(fd, &sb) == 0) {
		a->dev = sb.st_dev;
		a->ino = sb.st_ino;
	}
	return SRUP_OK;
}

void srupb_audit_check_rotation(struct srupb_audit *a)
{
	struct stat sb;
	double now = srupb_now();
	if (a == NULL || now - a->last_rot_check < 1.0) {
		return;
	}
	a->last_rot_check = now;
	if (stat(a->path, &sb) != 0 || sb.st_ino != a->ino || sb.st_dev != a->dev) {
		(void)srupb_audit_reopen(a, NULL, 0);
	}
}

static size_t bucket_index(enum srupb_verdict v, enum srupb_reason r)
{
	if (v == SRUPB_V_ACCEPT) {
		return B_ACCEPT;
	}
	if (v == SRUPB_V_RETRANSMIT) {
		return B_RETRANSMIT;
	}
	if (v == SRUPB_V_REFUSE) {
		return B_REFUSE;
	}
	return (size_t)r < SRUPB_R__COUNT ? (size_t)r : (size_t)SRUPB_R_INTERNAL_ERROR;
}

static size_t admin_index(enum srupb_admin_reason r)
{
	return B_ADMIN + ((size_t)r < SRUPB_AR__COUNT ? (size_t)r : (size_t)SRUPB_AR_NOT_ADMIN);
}

static void refill(struct bucket *b, unsigned burst, double rate, double now)
{
	if (now > b->last) {
		b->tokens += (now - b->last) * rate;
	}
	if (b->tokens > (double)burst) {
		b->tokens = (double)burst;
	}
	b->last = now;
}

/* --- per-connection buckets --- */

static uint64_t hash_id(const char *s)
{
	uint64_t h = 0xcbf29ce484222325u; /* FNV-1a */
	if (s == NULL) {
		return 0;
	}
	for (const unsigned char *c = (const unsigned char *)s; *c != '\0'; c++) {
		h = (h ^ *c) * 0x100000001b3u;
	}
	return h;
}

static size_t conn_slot(const void *client)
{
	uintptr_t p = (uintptr_t)client;
	return (size_t)((p >> 4) ^ (p >> 12)) % CONN_HASH;
}

static void conn_unlink(struct srupb_audit *a, uint32_t i)
{
	uint32_t *pp = &a->heads[conn_slot(a->conns[i].client)];
	while (*pp != CONN_NIL && *pp != i) {
		pp = &a->conns[*pp].next;
	}
	if (*pp == i) {
		*pp = a->conns[i].next;
	}
	/* What it suppressed stays counted: in the total summary. */
	a->total.suppressed += a->conns[i].b.suppressed;
	memset(&a->conns[i], 0, sizeof a->conns[i]);
	a->conns[i].next = a->free_head;
	a->free_head = i;
	a->n_conns--;
}

/* A full table: free the entry idle longest, if idle for CONN_IDLE. */
static void conn_reclaim(struct srupb_audit *a, double now)
{
	uint32_t oldest = CONN_NIL;
	for (uint32_t i = 0; i < SRUPB_AUDIT_CONNS; i++) {
		if (a->conns[i].client != NULL && now - a->conns[i].b.last >= CONN_IDLE &&
		    (oldest == CONN_NIL || a->conns[i].b.last < a->conns[oldest].b.last)) {
			oldest = i;
		}
	}
	if (oldest != CONN_NIL) {
		conn_unlink(a, oldest);
	}
}

/* The bucket of (client, client id): its own, a new one, or the shared overflow bucket. */
static struct bucket *conn_bucket(struct srupb_audit *a, const void *client, const char *client_id,
                                  double now)
{
	uint64_t h;
	uint32_t i;
	size_t slot;

	if (client == NULL) {
		return &a->overflow;
	}
	h = hash_id(client_id);
	slot = conn_slot(client);
	for (i = a->heads[slot]; i != CONN_NIL; i = a->conns[i].next) {
		if (a->conns[i].client == client) {
			break;
		}
	}
	if (i != CONN_NIL) {
		if (a->conns[i].id_hash == h) {
			return &a->conns[i].b;
		}
		conn_unlink(a, i); /* a freed connection's address, reused by another client */
	}
	if (a->free_head == CONN_NIL) {
		conn_reclaim(a, now);
		if (a->free_head == CONN_NIL) {
			return &a->overflow;
		}
	}
	i = a->free_head;
	a->free_head = a->conns[i].next;
	a->conns[i].client = client;
	a->conns[i].id_hash = h;
	if (client_id != NULL) {
		/* cut on a character boundary: the summary line prints it */
		size_t n = strlen(client_id);
		if (n > SRUPB_LOG_TRUNC) {
			n = SRUPB_LOG_TRUNC;
			while (n > 0 && ((unsigned char)client_id[n] & 0xc0u) == 0x80u) {
				n--;
			}
		}
		memcpy(a->conns[i].id, client_id, n);
		a->conns[i].id[n] = '\0';
	}
	a->conns[i].b.tokens = (double)a->lim.client_burst;
	a->conns[i].b.last = now;
	a->conns[i].b.suppressed = 0;
	a->conns[i].next = a->heads[slot];
	a->heads[slot] = i;
	a->n_conns++;
	return &a->conns[i].b;
}

size_t srupb_audit_conn_count(const struct srupb_audit *a)
{
	return a == NULL ? 0 : a->n_conns;
}

void srupb_audit_conn_gone(struct srupb_audit *a, const void *conn)
{
	uint32_t i;
	if (a == NULL || conn == NULL) {
		return;
	}
	for (i = a->heads[conn_slot(conn)]; i != CONN_NIL; i = a->conns[i].next) {
		if (a->conns[i].client == conn) {
			break;
		}
	}
	if (i == CONN_NIL) {
		return;
	}
	if (a->conns[i].b.suppressed > 0) {
		refill(&a->total, a->lim.total_burst, a->lim.total_rate, srupb_now());
		if (a->total.tokens >= 1.0) {
			a->total.tokens -= 1.0;
			write_conn_summary(a, a->conns[i].id, &a->conns[i].b);
		}
	}
	conn_unlink(a, i); /* a summary not written now goes to the total's */
}

/* One token from each of the reason's, the connection's and the total bucket, or none. */
static bool admit(struct srupb_audit *a, size_t bi, const void *conn, const char *client_id)
{
	double now = srupb_now();
	struct bucket *rb = &a->b[bi];
	struct bucket *cb = conn_bucket(a, conn, client_id, now);

	refill(rb, a->lim.burst, a->lim.rate, now);
	refill(cb, a->lim.client_burst, a->lim.client_rate, now);
	refill(&a->total, a->lim.total_burst, a->lim.total_rate, now);
	if (rb->tokens < 1.0) {
		rb->suppressed++;
		return false;
	}
	if (cb->tokens < 1.0) {
		cb->suppressed++;
		return false;
	}
	if (a->total.tokens < 1.0) {
		a->total.suppressed++;
		return false;
	}
	rb->tokens -= 1.0;
	cb->tokens -= 1.0;
	a->total.tokens -= 1.0;
	return true;
}

/* One token from each bucket that has one; never refuses. */
static void take_any(struct srupb_audit *a, size_t bi, const void *conn, const char *client_id)
{
	double now = srupb_now();
	struct bucket *b[3] = {&a->b[bi], conn_bucket(a, conn, client_id, now), &a->total};
	refill(b[0], a->lim.burst, a->lim.rate, now);
	refill(b[1], a->lim.client_burst, a->lim.client_rate, now);
	refill(b[2], a->lim.total_burst, a->lim.total_rate, now);
	for (size_t i = 0; i < 3; i++) {
		if (b[i]->tokens >= 1.0) {
			b[i]->tokens -= 1.0;
		}
	}
}

bool srupb_audit_admit(struct srupb_audit *a, const struct srupb_event *ev)
{
	return admit(a, bucket_index(ev->verdict, ev->reason), ev->conn, ev->client_id);
}

/* --- JSON formatting --- */

struct jbuf {
	char *p;
	size_t cap;
	size_t len;
	bool overflow;
};

static void jraw(struct jbuf *j, const char *s, size_t n)
{
	if (j->overflow || j->cap - j->len < n + 1) {
		j->overflow = true;
		return;
	}
	memcpy(j->p + j->len, s, n);
	j->len += n;
	j->p[j->len] = '\0';
}

static void jlit(struct jbuf *j, const char *s)
{
	jraw(j, s, strlen(s));
}

/* Length of the valid UTF-8 sequence at p (n bytes available, n >= 1), 0 if it is not one:
 * shortest form only, no surrogates, nothing above U+10FFFF (RFC 3629). */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	unsigned c = p[0];
	size_t need;
	unsigned lo = 0x80u;
	unsigned hi = 0xbfu;

	if (c < 0x80u) {
		return 1;
	}
	if (c >= 0xc2u && c <= 0xdfu) {
		need = 2;
	} else if (c >= 0xe0u && c <= 0xefu) {
		need = 3;
		if (c == 0xe0u) {
			lo = 0xa0u;
		} else if (c == 0xedu) {
			hi = 0x9fu;
		}
	} else if (c >= 0xf0u && c <= 0xf4u) {
		need = 4;
		if (c == 0xf0u) {
			lo = 0x90u;
		} else if (c == 0xf4u) {
			hi = 0x8fu;
		}
	} else {
		return 0;
	}
	if (n < need || p[1] < lo || p[1] > hi) {
		return 0;
	}
	for (size_t i = 2; i < need; i++) {
		if ((p[i] & 0xc0u) != 0x80u) {
			return 0;
		}
	}
	return need;
}

bool srupb_audit_json_string(const char *s, char *out, size_t cap, size_t *len)
{
	struct jbuf j = {out, cap, *len, false};
	const unsigned char *c;
	size_t left;
	size_t chars = 0;

	if (*len >= cap) {
		return false;
	}
	if (s == NULL) {
		jlit(&j, "null");
	} else {
		c = (const unsigned char *)s;
		left = strlen(s);
		jlit(&j, "\"");
		while (left > 0) {
			char esc[8];
			size_t n;
			if (chars == AUDIT_STR_MAX) {
				jlit(&j, "...");
				break;
			}
			chars++;
			n = utf8_len(c, left);
			if (n == 0) {
				/* not UTF-8: the byte's value as text, so the line stays valid UTF-8 */
				snprintf(esc, sizeof esc, "\\\\x%02x", (unsigned)*c);
				jlit(&j, esc);
				n = 1;
			} else if (*c == '"' || *c == '\\') {
				esc[0] = '\\';
				esc[1] = (char)*c;
				jraw(&j, esc, 2);
			} else if (*c < 0x20u || *c == 0x7fu) {
				snprintf(esc, sizeof esc, "\\u%04x", (unsigned)*c);
				jlit(&j, esc);
			} else {
				jraw(&j, (const char *)c, n);
			}
			c += n;
			left -= n;
		}
		jlit(&j, "\"");
	}
	if (j.overflow) {
		out[*len] = '\0';
		return false;
	}
	*len = j.len;
	return true;
}

static void jstr(struct jbuf *j, const char *s)
{
	if (j->overflow || !srupb_audit_json_string(s, j->p, j->cap, &j->len)) {
		j->overflow = true;
	}
}

static void jtime(struct jbuf *j)
{
	struct timespec ts;
	struct tm tm;
	char t[96];
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(t, sizeof t, "\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\"", tm.tm_year + 1900,
	         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
	jlit(j, t);
}

/* The peer's address and certificate fingerprint (null when unknown). */
static void jpeer(struct jbuf *j, const char *address, const char *cert_sha256)
{
	jlit(j, ",\"address\":");
	jstr(j, address);
	jlit(j, ",\"cert_sha256\":");
	jstr(j, cert_sha256 != NULL && cert_sha256[0] != '\0' ? cert_sha256 : NULL);
}

/* The common end of a line: detail, the suppressed count (if any), the closing brace. The
 * line's length, or 0 if it did not fit. */
static size_t jfinish(struct jbuf *j, const char *detail, uint64_t suppressed)
{
	char num[32];
	jlit(j, ",\"detail\":");
	jstr(j, detail);
	if (suppressed > 0) {
		snprintf(num, sizeof num, "%" PRIu64, suppressed);
		jlit(j, ",\"suppressed\":");
		jlit(j, num);
	}
	jlit(j, "}\n");
	return j->overflow ? 0 : j->len;
}

size_t srupb_audit_format(const struct srupb_event *ev, uint64_t suppressed, char *out, size_t cap)
{
	struct jbuf j = {out, cap, 0, false};
	char num[32];

	if (cap == 0) {
		return 0;
	}
	out[0] = '\0';
	jlit(&j, "{\"time\":");
	jtime(&j);
	jlit(&j, ",\"verdict\":");
	jstr(&j, srupb_verdict_name(ev->verdict));
	jlit(&j, ",\"reason\":");
	jstr(&j, ev->reason < SRUPB_R__COUNT ? srupb_reason_name(ev->reason) : NULL);
	jlit(&j, ",\"client_id\":");
	jstr(&j, ev->client_id);
	jlit(&j, ",\"identity\":");
	jstr(&j, ev->identity);
	jlit(&j, ",\"topic\":");
	jstr(&j, ev->topic);
	jlit(&j, ",\"type\":");
	jstr(&j, ev->type >= 0 ? srup_msg_type_name((unsigned)ev->type) : NULL);
	jlit(&j, ",\"sender\":");
	if (ev->has_sender) {
		char id[SRUP_ID_TEXT_MAX];
		if (srup_id_format(ev->sender, id, sizeof id) != SRUP_OK) {
			id[0] = '\0';
		}
		jstr(&j, id);
	} else {
		jlit(&j, "null");
	}
	jlit(&j, ",\"seq\":");
	if (ev->has_seq && ev->seq > (uint64_t)INT64_MAX) {
		/* as every output of the project writes a sequence number beyond 2^63-1 (JSON readers
		 * such as jansson hold no larger integer): a "0x" hex string */
		snprintf(num, sizeof num, "\"0x%" PRIx64 "\"", ev->seq);
		jlit(&j, num);
	} else if (ev->has_seq) {
		snprintf(num, sizeof num, "%" PRIu64, ev->seq);
		jlit(&j, num);
	} else {
		jlit(&j, "null");
	}
	jpeer(&j, ev->address, ev->cert_sha256);
	return jfinish(&j, ev->detail, suppressed);
}

static const char *const admin_reasons[SRUPB_AR__COUNT] = {NULL, "not_admin", "bad_command"};

size_t srupb_audit_format_admin(const struct srupb_admin_event *ae, uint64_t suppressed, char *out,
                                size_t cap)
{
	struct jbuf j = {out, cap, 0, false};

	if (cap == 0) {
		return 0;
	}
	out[0] = '\0';
	jlit(&j, "{\"time\":");
	jtime(&j);
	jlit(&j, ",\"verdict\":\"admin\",\"reason\":");
	jstr(&j, (size_t)ae->reason < SRUPB_AR__COUNT ? admin_reasons[ae->reason] : "not_admin");
	jlit(&j, ",\"source\":\"control\",\"client_id\":");
	jstr(&j, ae->client_id);
	jlit(&j, ",\"identity\":");
	jstr(&j, ae->identity);
	jlit(&j, ",\"topic\":\"$CONTROL/srup/v1\",\"type\":null,\"sender\":null,\"seq\":null"
	         ",\"command\":");
	jstr(&j, ae->command);
	jlit(&j, ",\"target\":");
	if (ae->has_target) {
		char id[SRUP_ID_TEXT_MAX];
		if (srup_id_format(ae->target, id, sizeof id) != SRUP_OK) {
			id[0] = '\0';
		}
		jstr(&j, id);
	} else {
		jlit(&j, "null");
	}
	jlit(&j, ae->ok ? ",\"result\":\"ok\"" : ",\"result\":\"error\"");
	jpeer(&j, ae->address, ae->cert_sha256);
	return jfinish(&j, ae->detail, suppressed);
}

static void write_line(struct srupb_audit *a, const char *text, size_t text_len)
{
	/* text is one JSON object and "\n"; the line written has ,"chain":"<hex>" before its
	 * closing brace, chain = SHA-256(previous chain || text without the newline). */
	char line[AUDIT_LINE_MAX + 96];
	uint8_t in[32 + AUDIT_LINE_MAX];
	uint8_t md[32];
	unsigned int md_len = 0;
	size_t len;
	size_t off = 0;

	if (text_len < 2 || text_len > AUDIT_LINE_MAX || text[text_len - 1] != '\n' ||
	    text[text_len - 2] != '}') {
		return;
	}
	memcpy(in, a->chain, 32);
	memcpy(in + 32, text, text_len - 1);
	if (EVP_Digest(in, 32 + text_len - 1, md, &md_len, EVP_sha256(), NULL) != 1) {
		return;
	}
	memcpy(line, text, text_len - 2);
	len = text_len - 2;
	len += (size_t)snprintf(line + len, sizeof line - len, ",\"chain\":\"");
	if (srup_hex_encode(md, 32, line + len, sizeof line - len) != SRUP_OK) {
		return;
	}
	len += 64;
	len += (size_t)snprintf(line + len, sizeof line - len, "\"}\n");
	memcpy(a->chain, md, 32);
	while (off < len) {
		ssize_t w = write(a->fd, line + off, len - off);
		if (w < 0) {
			if (errno == EINTR) {
				continue;
			}
			return;
		}
		off += (size_t)w;
	}
}

static void write_summary(struct srupb_audit *a, size_t bi)
{
	char line[AUDIT_LINE_MAX];
	char detail[96];
	size_t len;
	uint64_t n = a->b[bi].suppressed;

	snprintf(detail, sizeof detail, "rate limit: %" PRIu64 " similar lines suppressed", n);
	if (bi >= B_ADMIN) {
		struct srupb_admin_event ae;
		memset(&ae, 0, sizeof ae);
		ae.reason = (enum srupb_admin_reason)(bi - B_ADMIN);
		ae.ok = ae.reason == SRUPB_AR_NONE;
		ae.detail = detail;
		len = srupb_audit_format_admin(&ae, n, line, sizeof line);
	} else {
		struct srupb_event ev;
		memset(&ev, 0, sizeof ev);
		ev.type = -1;
		if (bi == B_ACCEPT) {
			ev.verdict = SRUPB_V_ACCEPT;
			ev.reason = SRUPB_R_NONE;
		} else if (bi == B_RETRANSMIT) {
			ev.verdict = SRUPB_V_RETRANSMIT;
			ev.reason = SRUPB_R_NONE;
		} else if (bi == B_REFUSE) {
			ev.verdict = SRUPB_V_REFUSE;
			ev.reason = SRUPB_R_NONE;
		} else {
			ev.verdict = SRUPB_V_DROP;
			ev.reason = (enum srupb_reason)bi;
		}
		ev.detail = detail;
		len = srupb_audit_format(&ev, n, line, sizeof line);
	}
	if (len > 0) {
		write_line(a, line, len);
	}
	a->b[bi].suppressed = 0;
}

/* {"verdict":"suppressed",...}: lines the per-connection (client_id set; NULL for the shared
 * overflow bucket) or the total cap held back. */
static void write_capped(struct srupb_audit *a, const char *client_id, const char *detail,
                         uint64_t n)
{
	char line[AUDIT_LINE_MAX];
	struct jbuf j = {line, sizeof line, 0, false};
	char num[32];

	snprintf(num, sizeof num, "%" PRIu64, n);
	jlit(&j, "{\"time\":");
	jtime(&j);
	jlit(&j, ",\"verdict\":\"suppressed\",\"reason\":null,\"client_id\":");
	jstr(&j, client_id);
	jlit(&j, ",\"identity\":null,\"topic\":null,\"type\":null,\"sender\":null,\"seq\":null,"
	         "\"detail\":");
	jstr(&j, detail);
	jlit(&j, ",\"suppressed\":");
	jlit(&j, num);
	jlit(&j, "}\n");
	if (!j.overflow) {
		write_line(a, line, j.len);
	}
}

static void write_conn_summary(struct srupb_audit *a, const char *client_id, struct bucket *b)
{
	char detail[128];
	snprintf(detail, sizeof detail,
	         client_id != NULL ? "rate limit: %" PRIu64 " lines of this connection suppressed"
	                           : "rate limit: %" PRIu64
	                             " lines of connections beyond the table suppressed",
	         b->suppressed);
	write_capped(a, client_id, detail, b->suppressed);
	b->suppressed = 0;
}

static void write_total_summary(struct srupb_audit *a)
{
	char detail[96];
	snprintf(detail, sizeof detail, "rate limit: %" PRIu64 " lines suppressed by the total cap",
	         a->total.suppressed);
	write_capped(a, NULL, detail, a->total.suppressed);
	a->total.suppressed = 0;
}

/* Write a summary for bucket b ahead of a line, if a token of the total cap is left for it
 * (and of cb, the connection's bucket, when given); else it waits, still counted. */
static bool summary_token(struct srupb_audit *a, struct bucket *cb)
{
	double now = srupb_now();
	refill(&a->total, a->lim.total_burst, a->lim.total_rate, now);
	if (a->total.tokens < 1.0) {
		return false;
	}
	if (cb != NULL) {
		if (cb->tokens < 1.0) {
			return false;
		}
		cb->tokens -= 1.0;
	}
	a->total.tokens -= 1.0;
	return true;
}

void srupb_audit_write(struct srupb_audit *a, const struct srupb_event *ev)
{
	char line[AUDIT_LINE_MAX];
	size_t bi = bucket_index(ev->verdict, ev->reason);
	size_t len;

	if (a->b[bi].suppressed > 0 &&
	    summary_token(a, conn_bucket(a, ev->conn, ev->client_id, srupb_now()))) {
		write_summary(a, bi);
	}
	len = srupb_audit_format(ev, 0, line, sizeof line);
	if (len > 0) {
		write_line(a, line, len);
	}
}

bool srupb_audit_admin(struct srupb_audit *a, const struct srupb_admin_event *ae)
{
	char line[AUDIT_LINE_MAX];
	size_t bi = admin_index(ae->reason);
	size_t len;

	if (a == NULL) {
		return false;
	}
	if (ae->reason == SRUPB_AR_NONE) {
		/* An admin's command that ran changed state (a revoke names its target): always on
		 * record. It still spends what tokens are left, so it counts toward the caps. */
		take_any(a, bi, ae->conn, ae->client_id);
	} else if (!admit(a, bi, ae->conn, ae->client_id)) {
		return false; /* counted as suppressed */
	}
	if (a->b[bi].suppressed > 0 &&
	    summary_token(a, conn_bucket(a, ae->conn, ae->client_id, srupb_now()))) {
		write_summary(a, bi);
	}
	len = srupb_audit_format_admin(ae, 0, line, sizeof line);
	if (len > 0) {
		write_line(a, line, len);
	}
	return true;
}

void srupb_audit_flush_summaries(struct srupb_audit *a)
{
	double now;
	if (a == NULL) {
		return;
	}
	now = srupb_now();
	for (size_t i = 0; i < B_COUNT; i++) {
		struct bucket *b = &a->b[i];
		if (b->suppressed == 0) {
			continue;
		}
		refill(b, a->lim.burst, a->lim.rate, now);
		if (b->tokens >= 1.0 && summary_token(a, NULL)) {
			b->tokens -= 1.0;
			write_summary(a, i);
		}
	}
	for (size_t i = 0; i < SRUPB_AUDIT_CONNS; i++) {
		struct conn *c = &a->conns[i];
		if (c->client == NULL || c->b.suppressed == 0) {
			continue;
		}
		refill(&c->b, a->lim.client_burst, a->lim.client_rate, now);
		if (summary_token(a, &c->b)) {
			write_conn_summary(a, c->id, &c->b);
		}
	}
	if (a->overflow.suppressed > 0) {
		refill(&a->overflow, a->lim.client_burst, a->lim.client_rate, now);
		if (summary_token(a, &a->overflow)) {
			write_conn_summary(a, NULL, &a->overflow);
		}
	}
	/* The total's own summary costs no token: at most one a second. */
	if (a->total.suppressed > 0 && now - a->last_total_summary >= 1.0) {
		a->last_total_summary = now;
		write_total_summary(a);
	}
}
