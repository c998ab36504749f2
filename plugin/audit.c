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

#include "srupb.h"

#define AUDIT_LINE_MAX 2048
#define AUDIT_STR_MAX  SRUPB_LOG_TRUNC
#define B_ACCEPT       SRUPB_R__COUNT
#define B_RETRANSMIT   (SRUPB_R__COUNT + 1)
#define B_COUNT        (SRUPB_R__COUNT + 2)

struct bucket {
	double tokens;
	double last;
	uint64_t suppressed;
};

struct srupb_audit {
	char *path;
	int fd;
	dev_t dev;
	ino_t ino;
	unsigned burst;
	double rate;
	double last_rot_check;
	struct bucket b[B_COUNT];
};

double srupb_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void write_summary(struct srupb_audit *a, size_t bi);

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
	if (fstat(a->fd, &sb) == 0) {
		a->dev = sb.st_dev;
		a->ino = sb.st_ino;
	}
	srupb_audit_set_rate(a, burst, rate);
	for (size_t i = 0; i < B_COUNT; i++) {
		a->b[i].tokens = (double)a->burst;
		a->b[i].last = srupb_now();
	}
	*out = a;
	return SRUP_OK;
}

void srupb_audit_set_rate(struct srupb_audit *a, unsigned burst, double rate)
{
	a->burst = burst == 0 ? 1 : burst;
	a->rate = rate <= 0 ? 1.0 : rate;
}

void srupb_audit_close(struct srupb_audit *a)
{
	if (a == NULL) {
		return;
	}
	for (size_t i = 0; i < B_COUNT; i++) {
		if (a->b[i].suppressed > 0) {
			write_summary(a, i);
		}
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
	return (size_t)r < SRUPB_R__COUNT ? (size_t)r : (size_t)SRUPB_R_INTERNAL_ERROR;
}

static void refill(struct srupb_audit *a, struct bucket *b, double now)
{
	b->tokens += (now - b->last) * a->rate;
	if (b->tokens > (double)a->burst) {
		b->tokens = (double)a->burst;
	}
	b->last = now;
}

bool srupb_audit_admit(struct srupb_audit *a, enum srupb_verdict v, enum srupb_reason r)
{
	struct bucket *b = &a->b[bucket_index(v, r)];
	refill(a, b, srupb_now());
	if (b->tokens >= 1.0) {
		b->tokens -= 1.0;
		return true;
	}
	b->suppressed++;
	return false;
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

static void jstr(struct jbuf *j, const char *s)
{
	size_t chars = 0;
	size_t cont = 0; /* continuation bytes since the last lead byte */
	if (s == NULL) {
		jlit(j, "null");
		return;
	}
	jlit(j, "\"");
	for (const unsigned char *c = (const unsigned char *)s; *c != '\0'; c++) {
		char esc[8];
		cont = (*c & 0xc0u) == 0x80u ? cont + 1 : 0;
		/* cut before a character, never inside one (a lead byte has at most 3 followers) */
		if (chars == AUDIT_STR_MAX && (cont == 0 || cont > 3)) {
			jlit(j, "...");
			break;
		}
		/* count characters, not UTF-8 continuation bytes */
		if ((*c & 0xc0u) != 0x80u) {
			chars++;
		}
		if (*c == '"' || *c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*c;
			jraw(j, esc, 2);
		} else if (*c < 0x20u || *c == 0x7fu) {
			snprintf(esc, sizeof esc, "\\u%04x", (unsigned)*c);
			jlit(j, esc);
		} else {
			jraw(j, (const char *)c, 1);
		}
	}
	jlit(j, "\"");
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
	if (ev->has_seq) {
		snprintf(num, sizeof num, "%" PRIu64, ev->seq);
		jlit(&j, num);
	} else {
		jlit(&j, "null");
	}
	jlit(&j, ",\"detail\":");
	jstr(&j, ev->detail);
	if (suppressed > 0) {
		snprintf(num, sizeof num, "%" PRIu64, suppressed);
		jlit(&j, ",\"suppressed\":");
		jlit(&j, num);
	}
	jlit(&j, "}\n");
	if (j.overflow) {
		return 0;
	}
	return j.len;
}

static void write_line(struct srupb_audit *a, const char *line, size_t len)
{
	size_t off = 0;
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
	struct srupb_event ev;
	char line[AUDIT_LINE_MAX];
	char detail[96];
	size_t len;
	uint64_t n = a->b[bi].suppressed;

	memset(&ev, 0, sizeof ev);
	ev.type = -1;
	if (bi == B_ACCEPT) {
		ev.verdict = SRUPB_V_ACCEPT;
		ev.reason = SRUPB_R_NONE;
	} else if (bi == B_RETRANSMIT) {
		ev.verdict = SRUPB_V_RETRANSMIT;
		ev.reason = SRUPB_R_NONE;
	} else {
		ev.verdict = SRUPB_V_DROP;
		ev.reason = (enum srupb_reason)bi;
	}
	snprintf(detail, sizeof detail, "rate limit: %" PRIu64 " similar lines suppressed", n);
	ev.detail = detail;
	len = srupb_audit_format(&ev, n, line, sizeof line);
	if (len > 0) {
		write_line(a, line, len);
	}
	a->b[bi].suppressed = 0;
}

void srupb_audit_write(struct srupb_audit *a, const struct srupb_event *ev)
{
	char line[AUDIT_LINE_MAX];
	size_t bi = bucket_index(ev->verdict, ev->reason);
	size_t len;

	if (a->b[bi].suppressed > 0) {
		write_summary(a, bi);
	}
	len = srupb_audit_format(ev, 0, line, sizeof line);
	if (len > 0) {
		write_line(a, line, len);
	}
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
		refill(a, b, now);
		if (b->tokens >= 1.0) {
			b->tokens -= 1.0;
			write_summary(a, i);
		}
	}
}
