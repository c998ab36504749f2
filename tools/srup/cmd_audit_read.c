/* SPDX-License-Identifier: MIT
 * cmd_audit_read.c - `srup audit [options] FILE...`: read the plugin's audit log (plain or
 * gzip-compressed, rotated files in the order given), keep the lines that match the filters and
 * print them as a table, as the original JSON lines (byte for byte, so they still verify) or as
 * a summary; --follow keeps reading the newest file as it grows and across rotation. The data
 * is attacker-controlled (topics, client ids): nothing from it reaches the terminal unescaped. */
#define _GNU_SOURCE /* timegm */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <mosquitto.h>
#include <zlib.h>

#include "cmds.h"
#include "util.h"

#define CMD            "audit"
#define LINE_MAX_BYTES (64 * 1024) /* the plugin's longest line is under 6 KiB */
#define FILTER_MAX     32          /* values per repeatable option */
#define CHUNK          (64 * 1024)
#define POLL_NS        200000000L /* --follow: how often the file is checked */
#define OLD_GRACE_MS   3000       /* --follow: a rotated file is still read this long */
#define SUMMARY_TOP    20         /* text summary: entries shown per group */

void srup_audit_read_help(FILE *f)
{
	fprintf(f,
	        "usage: srup audit [options] [FILE...]\n"
	        "\n"
	        "Read the broker's audit log (one JSON object per line) and print the lines that\n"
	        "match every filter given. FILEs may be plain or gzip-compressed (rotated logs such\n"
	        "as srup-audit.jsonl.2.gz) and are read in the order given: list rotated files\n"
	        "oldest first. No FILE, or '-', reads standard input.\n"
	        "\n"
	        "Filters (all must match; a repeated option matches any of its values):\n"
	        "  --since T         lines at or after T\n"
	        "  --until T         lines before T\n"
	        "                    T is a duration back from now (90s, 15m, 1h, 2d, 1w, 1h30m) or\n"
	        "                    a UTC time: 2026-12-05T07:00:00Z, 2026-12-05T07:00, 2026-12-05\n"
	        "                    (a space may replace the T; the Z is optional)\n"
	        "  --verdict V       accept, retransmit, drop, refuse, admin or suppressed\n"
	        "  --reason R        e.g. bad_signature, replay, not_admin\n"
	        "  --identity ID     the publisher's SRUP identity (hex, any case)\n"
	        "  --client-id C     the MQTT client id\n"
	        "  --topic FILTER    an MQTT topic filter: + matches one level, # the rest\n"
	        "  --address A       the peer's IP address, or a network: 10.0.0.0/8, 2001:db8::/32\n"
	        "  --type T          the SRUP message type, e.g. ACTION, DATA, JOIN_REQ (any case)\n"
	        "\n"
	        "Output (default: one line per record: time, verdict, reason, identity, address,\n"
	        "topic, detail; long values are cut, control characters shown as \\xHH):\n"
	        "  --json            the matching lines exactly as in the file (byte for byte, so\n"
	        "                    `srup audit verify` still checks their chain when none is left\n"
	        "                    out); with --summary, the summary as one JSON object\n"
	        "  --summary         counts: total, time range, by verdict, reason, identity,\n"
	        "                    client id, address and topic (null or missing values count\n"
	        "                    as \"(none)\"; the text form shows the 20 largest of each)\n"
	        "  --follow, -f      after the FILEs, keep reading the last one as it grows; when it\n"
	        "                    is rotated (renamed and recreated, or truncated) read the new\n"
	        "                    file from its start; a file not there yet is waited for.\n"
	        "                    Stops on SIGINT or SIGTERM (--summary is then printed).\n"
	        "\n"
	        "A line that is not a JSON object, or longer than 64 KiB, is reported on stderr as\n"
	        "FILE:LINE and skipped.\n"
	        "\n"
	        "Example: what was attacked in the last hour, and by whom:\n"
	        "  srup audit --since 1h --verdict drop --summary "
	        "/var/log/mosquitto/srup-audit.jsonl*\n"
	        "\n"
	        "Exit codes: 0 ok, 2 some lines could not be read (reported on stderr),\n"
	        "            3 usage or I/O errors.\n");
}

/* ---- values of the options ---------------------------------------------------------------- */

struct strset {
	const char *v[FILTER_MAX];
	size_t n;
};

struct net {
	int af; /* AF_INET or AF_INET6 */
	unsigned char addr[16];
	unsigned prefix; /* bits */
};

struct filters {
	bool has_since, has_until;
	int64_t since_ms, until_ms;
	struct strset verdict, reason, identity, client_id, topic, type;
	struct net addr[FILTER_MAX];
	size_t n_addr;
};

/* ---- counting (--summary) ------------------------------------------------------------------ */

struct count {
	char *key; /* NUL-terminated; may contain anything but NUL */
	unsigned long n;
};

struct counter {
	struct count *e; /* open addressing, cap a power of two, key NULL = empty */
	size_t cap, used;
};

struct summary {
	unsigned long total;
	char first[32], last[32]; /* time strings of the earliest and latest line (by value) */
	int64_t first_ms, last_ms;
	struct counter verdict, reason, identity, client_id, address, topic;
};

struct state {
	struct filters f;
	bool json, summary, follow;
	struct summary s;
	unsigned long bad;    /* lines that could not be read */
	unsigned long io_err; /* files that could not be opened or read */
	int64_t now_ms;
};

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

/* ---- time ---------------------------------------------------------------------------------- */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* n decimal digits at s (no more, no fewer) into *out. */
static bool digits(const char *s, size_t len, size_t at, size_t n, int *out)
{
	int v = 0;

	if (at > len || len - at < n) {
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		if (s[at + i] < '0' || s[at + i] > '9') {
			return false;
		}
		v = v * 10 + (s[at + i] - '0');
	}
	*out = v;
	return true;
}

/* A UTC time "YYYY-MM-DD[(T| )HH:MM[:SS[.fff]]][Z]" to milliseconds since the epoch. With
 * strict, the audit line's own form "YYYY-MM-DDTHH:MM:SS.fffZ" (any number of fraction digits)
 * is required. Returns false for anything else, including impossible dates. */
static bool parse_time(const char *s, size_t len, bool strict, int64_t *ms)
{
	struct tm tm;
	int y, mo, d, h = 0, mi = 0, se = 0, frac = 0;
	size_t at = 10;
	time_t t;

	memset(&tm, 0, sizeof tm);
	if (!digits(s, len, 0, 4, &y) || len < 10 || s[4] != '-' || !digits(s, len, 5, 2, &mo) ||
	    s[7] != '-' || !digits(s, len, 8, 2, &d)) {
		return false;
	}
	if (at < len && (s[at] == 'T' || (!strict && s[at] == ' '))) {
		if (!digits(s, len, at + 1, 2, &h) || len < at + 6 || s[at + 3] != ':' ||
		    !digits(s, len, at + 4, 2, &mi)) {
			return false;
		}
		at += 6;
		if (at < len && s[at] == ':') {
			if (!digits(s, len, at + 1, 2, &se)) {
				return false;
			}
			at += 3;
			if (at < len && s[at] == '.') {
				int scale = 100;
				at++;
				if (at >= len || s[at] < '0' || s[at] > '9') {
					return false;
				}
				while (at < len && s[at] >= '0' && s[at] <= '9') {
					frac += (s[at] - '0') * scale;
					scale /= 10;
					at++;
				}
			}
		} else if (strict) {
			return false;
		}
	} else if (strict) {
		return false;
	}
	if (at < len && s[at] == 'Z') {
		at++;
	} else if (strict) {
		return false;
	}
	if (at != len || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60) {
		return false;
	}
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = se;
	t = timegm(&tm);
	if (t == (time_t)-1 || tm.tm_mday != d || tm.tm_mon != mo - 1) {
		return false; /* e.g. February 30 was normalised into March */
	}
	*ms = (int64_t)t * 1000 + frac;
	return true;
}

/* "90s", "15m", "1h", "2d", "1w", "1h30m": seconds; false if not such a duration. */
static bool parse_when(const char *arg, int64_t now, int64_t *ms)
{
	uint64_t secs;

	/* a duration back from now (more than a century is a typo), else a time */
	if (tool_parse_duration(arg, UINT64_C(100) * 366 * 86400, &secs) == 0) {
		*ms = now - (int64_t)secs * 1000;
		return true;
	}
	return parse_time(arg, strlen(arg), false, ms);
}

/* ---- addresses ----------------------------------------------------------------------------- */

static bool parse_net(const char *arg, struct net *n)
{
	char buf[INET6_ADDRSTRLEN + 8];
	const char *slash = strchr(arg, '/');
	size_t alen = slash != NULL ? (size_t)(slash - arg) : strlen(arg);
	unsigned max;

	if (alen == 0 || alen >= sizeof buf) {
		return false;
	}
	memcpy(buf, arg, alen);
	buf[alen] = '\0';
	memset(n, 0, sizeof *n);
	if (inet_pton(AF_INET, buf, n->addr) == 1) {
		n->af = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, n->addr) == 1) {
		n->af = AF_INET6;
		max = 128;
	} else {
		return false;
	}
	n->prefix = max;
	if (slash != NULL) {
		uint64_t p;
		if (tool_parse_uint(slash + 1, strlen(slash + 1), max, &p) != 0) {
			return false;
		}
		n->prefix = (unsigned)p;
	}
	return true;
}

static bool prefix_equal(const unsigned char *a, const unsigned char *b, unsigned bits)
{
	unsigned whole = bits / 8;
	unsigned rest = bits % 8;

	if (memcmp(a, b, whole) != 0) {
		return false;
	}
	if (rest == 0) {
		return true;
	}
	return ((a[whole] ^ b[whole]) & (unsigned char)(0xffu << (8 - rest))) == 0;
}

/* Does the text address s match n? An IPv4-mapped IPv6 address (::ffff:10.0.0.1, as a
 * dual-stack listener reports IPv4 peers) matches IPv4 networks too. */
static bool net_matches(const struct net *n, const char *s)
{
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	unsigned char a[16];

	if (inet_pton(AF_INET, s, a) == 1) {
		return n->af == AF_INET && prefix_equal(a, n->addr, n->prefix);
	}
	if (inet_pton(AF_INET6, s, a) != 1) {
		return false;
	}
	if (n->af == AF_INET6) {
		return prefix_equal(a, n->addr, n->prefix);
	}
	return memcmp(a, mapped, 12) == 0 && prefix_equal(a + 12, n->addr, n->prefix);
}

/* ---- a record's fields --------------------------------------------------------------------- */

/* The string member key of o, or NULL (missing, null or not a string). Strings with a NUL
 * inside (\u0000) count as not a string: the plugin never writes one. */
static const char *field(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);
	const char *s;

	if (!json_is_string(v)) {
		return NULL;
	}
	s = json_string_value(v);
	return strlen(s) == json_string_length(v) ? s : NULL;
}

static bool in_set(const struct strset *set, const char *s, bool nocase)
{
	if (set->n == 0) {
		return true;
	}
	if (s == NULL) {
		return false;
	}
	for (size_t i = 0; i < set->n; i++) {
		if ((nocase ? strcasecmp(set->v[i], s) : strcmp(set->v[i], s)) == 0) {
			return true;
		}
	}
	return false;
}

static bool record_matches(const struct filters *f, const json_t *o)
{
	const char *t;
	const char *topic;
	const char *addr;

	if (f->has_since || f->has_until) {
		int64_t ms;
		t = field(o, "time");
		if (t == NULL || !parse_time(t, strlen(t), true, &ms)) {
			return false;
		}
		if ((f->has_since && ms < f->since_ms) || (f->has_until && ms >= f->until_ms)) {
			return false;
		}
	}
	if (!in_set(&f->verdict, field(o, "verdict"), false) ||
	    !in_set(&f->reason, field(o, "reason"), false) ||
	    !in_set(&f->identity, field(o, "identity"), true) ||
	    !in_set(&f->client_id, field(o, "client_id"), false) ||
	    !in_set(&f->type, field(o, "type"), true)) {
		return false;
	}
	if (f->topic.n > 0) {
		bool any = false;
		topic = field(o, "topic");
		for (size_t i = 0; topic != NULL && i < f->topic.n && !any; i++) {
			bool r = false;
			if (mosquitto_topic_matches_sub(f->topic.v[i], topic, &r) == MOSQ_ERR_SUCCESS && r) {
				any = true;
			}
		}
		if (!any) {
			return false;
		}
	}
	if (f->n_addr > 0) {
		bool any = false;
		addr = field(o, "address");
		for (size_t i = 0; addr != NULL && i < f->n_addr && !any; i++) {
			any = net_matches(&f->addr[i], addr);
		}
		if (!any) {
			return false;
		}
	}
	return true;
}

/* ---- safe text ----------------------------------------------------------------------------- */

/* Bytes of the valid UTF-8 sequence at s (1..4), or 0 if there is none. */
static size_t utf8_seq(const unsigned char *s, size_t left)
{
	size_t n;
	uint32_t cp;

	if (s[0] < 0x80) {
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		cp = s[0] & 0x1fu;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		cp = s[0] & 0x0fu;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		cp = s[0] & 0x07u;
	} else {
		return 0;
	}
	if (left < n) {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0u) != 0x80u) {
			return 0;
		}
		cp = cp << 6 | (s[i] & 0x3fu);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff)) {
		return 0;
	}
	return n;
}

/* The text shown for the character at c (left bytes remain) into out (at least 8 bytes):
 * control characters (C0, DEL, C1 such as the 8-bit CSI) and invalid UTF-8 as \xHH (C1 as
 * \u00HH), anything else as itself. *n gets the bytes consumed; returns the columns shown
 * (one per character, wide characters aside). */
static size_t safe_char(const unsigned char *c, size_t left, char *out, size_t *n)
{
	*n = utf8_seq(c, left);
	if (*n == 0 || (*n == 1 && (*c < 0x20u || *c == 0x7fu))) {
		*n = 1;
		snprintf(out, 8, "\\x%02x", (unsigned)*c);
		return 4;
	}
	if (*n == 2 && c[0] == 0xc2 && c[1] < 0xa0) {
		snprintf(out, 8, "\\u%04x", (unsigned)c[1]);
		return 6;
	}
	memcpy(out, c, *n);
	out[*n] = '\0';
	return 1;
}

/* Write s to f, escaped by safe_char, so that no byte of the log can move the cursor or
 * change the terminal. With max > 0, text wider than max columns is cut to end in "...".
 * NULL is "-". Returns the number of columns written. */
static size_t put_safe(FILE *f, const char *s, size_t max)
{
	const unsigned char *c = (const unsigned char *)s;
	char buf[8];
	size_t left;
	size_t n;
	size_t total = 0;
	size_t cols = 0;
	size_t room;

	if (s == NULL) {
		fputc('-', f);
		return 1;
	}
	left = strlen(s);
	for (size_t off = 0; off < left; off += n) {
		total += safe_char(c + off, left - off, buf, &n);
	}
	room = max == 0 || total <= max ? total : (max > 3 ? max - 3 : 0);
	while (left > 0) {
		size_t w = safe_char(c, left, buf, &n);

		if (cols + w > room) {
			break;
		}
		fputs(buf, f);
		cols += w;
		c += n;
		left -= n;
	}
	if (left > 0) {
		fputs("...", f);
		cols += 3;
	}
	return cols;
}

/* put_safe (cut at max columns; 0: never), then spaces up to width columns and one more. */
static void put_col(FILE *f, const char *s, size_t width, size_t max)
{
	size_t cols = put_safe(f, s, max);

	for (size_t i = cols; i < width; i++) {
		fputc(' ', f);
	}
	fputc(' ', f);
}

static void print_record(const json_t *o)
{
	const char *cmd = field(o, "command");
	const json_t *sup = json_object_get(o, "suppressed");

	put_col(stdout, field(o, "time"), 24, 24);
	put_col(stdout, field(o, "verdict"), 10, 10);
	put_col(stdout, field(o, "reason"), 20, 20);
	put_col(stdout, field(o, "identity"), 16, 16);
	put_col(stdout, field(o, "address"), 15, 0);
	put_col(stdout, field(o, "topic"), 40, 40);
	if (cmd != NULL) {
		fputs("command=", stdout);
		put_safe(stdout, cmd, 24);
		fputs(" result=", stdout);
		put_safe(stdout, field(o, "result"), 8);
		fputc(' ', stdout);
	}
	if (json_is_number(sup)) {
		printf("suppressed=%.0f ", json_number_value(sup));
	}
	put_safe(stdout, field(o, "detail"), 80);
	fputc('\n', stdout);
}

/* ---- summary ------------------------------------------------------------------------------- */

/* The values counted (client ids, topics, identities) are chosen by whoever connects: the
 * hash starts from a random seed per run, so that lines written to collide in one table do not
 * collide in ours (FNV-1a, then a final mix so every bit reaches the low ones used). */
static uint64_t hash_str(const char *s)
{
	static uint64_t seed;
	uint64_t h;

	if (seed == 0 && getrandom(&seed, sizeof seed, 0) != (ssize_t)sizeof seed) {
		seed = UINT64_C(14695981039346656037);
	}
	h = seed;
	for (; *s != '\0'; s++) {
		h = (h ^ (unsigned char)*s) * UINT64_C(1099511628211);
	}
	h ^= h >> 33;
	h *= UINT64_C(0xff51afd7ed558ccd);
	h ^= h >> 33;
	return h;
}

/* Count one more of key (NULL counts as "(none)"). Returns false when out of memory. */
static bool counter_add(struct counter *c, const char *key)
{
	size_t i;

	if (key == NULL) {
		key = "(none)";
	}
	if (c->used * 2 >= c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 64;
		struct count *ne = calloc(ncap, sizeof *ne);
		if (ne == NULL) {
			return false;
		}
		for (size_t j = 0; j < c->cap; j++) {
			if (c->e[j].key != NULL) {
				size_t k = (size_t)hash_str(c->e[j].key) & (ncap - 1);
				while (ne[k].key != NULL) {
					k = (k + 1) & (ncap - 1);
				}
				ne[k] = c->e[j];
			}
		}
		free(c->e);
		c->e = ne;
		c->cap = ncap;
	}
	i = (size_t)hash_str(key) & (c->cap - 1);
	while (c->e[i].key != NULL) {
		if (strcmp(c->e[i].key, key) == 0) {
			c->e[i].n++;
			return true;
		}
		i = (i + 1) & (c->cap - 1);
	}
	c->e[i].key = strdup(key);
	if (c->e[i].key == NULL) {
		return false;
	}
	c->e[i].n = 1;
	c->used++;
	return true;
}

static void counter_free(struct counter *c)
{
	for (size_t i = 0; i < c->cap; i++) {
		free(c->e[i].key);
	}
	free(c->e);
	c->e = NULL;
	c->cap = c->used = 0;
}

static int by_count(const void *a, const void *b)
{
	const struct count *x = a;
	const struct count *y = b;

	if (x->n != y->n) {
		return x->n > y->n ? -1 : 1;
	}
	return strcmp(x->key, y->key);
}

/* The entries of c, most frequent first (malloc'd; *n their number), or NULL. */
static struct count *counter_sorted(const struct counter *c, size_t *n)
{
	struct count *v = malloc((c->used ? c->used : 1) * sizeof *v);
	size_t k = 0;

	if (v == NULL) {
		return NULL;
	}
	for (size_t i = 0; i < c->cap; i++) {
		if (c->e[i].key != NULL) {
			v[k++] = c->e[i];
		}
	}
	qsort(v, k, sizeof *v, by_count);
	*n = k;
	return v;
}

static bool summary_add(struct summary *s, const json_t *o)
{
	const char *t = field(o, "time");
	int64_t ms;

	s->total++;
	if (t != NULL && strlen(t) < sizeof s->first && parse_time(t, strlen(t), true, &ms)) {
		if (s->first[0] == '\0' || ms < s->first_ms) {
			s->first_ms = ms;
			strcpy(s->first, t);
		}
		if (s->last[0] == '\0' || ms > s->last_ms) {
			s->last_ms = ms;
			strcpy(s->last, t);
		}
	}
	return counter_add(&s->verdict, field(o, "verdict")) &&
	       counter_add(&s->reason, field(o, "reason")) &&
	       counter_add(&s->identity, field(o, "identity")) &&
	       counter_add(&s->client_id, field(o, "client_id")) &&
	       counter_add(&s->address, field(o, "address")) &&
	       counter_add(&s->topic, field(o, "topic"));
}

static const char *const group_names[] = {"verdict",   "reason",  "identity",
                                          "client_id", "address", "topic"};

static struct counter *group(struct summary *s, size_t i)
{
	struct counter *g[] = {&s->verdict,   &s->reason,  &s->identity,
	                       &s->client_id, &s->address, &s->topic};

	return g[i];
}

static bool summary_print_json(struct summary *s)
{
	json_t *root = json_object();
	char *text;
	bool ok = root != NULL;

	ok = ok && json_object_set_new(root, "total", json_integer((json_int_t)s->total)) == 0;
	ok = ok &&
	     json_object_set_new(root, "first", s->first[0] ? json_string(s->first) : json_null()) == 0;
	ok = ok &&
	     json_object_set_new(root, "last", s->last[0] ? json_string(s->last) : json_null()) == 0;
	for (size_t g = 0; ok && g < sizeof group_names / sizeof group_names[0]; g++) {
		char name[32];
		size_t n = 0;
		struct count *v = counter_sorted(group(s, g), &n);
		json_t *obj = json_object();

		ok = v != NULL && obj != NULL;
		/* Keys are what the log holds: jansson escapes them; invalid UTF-8 cannot occur
		 * (the line was parsed by jansson) */
		for (size_t i = 0; ok && i < n; i++) {
			ok = json_object_set_new(obj, v[i].key, json_integer((json_int_t)v[i].n)) == 0;
		}
		snprintf(name, sizeof name, "by_%s", group_names[g]);
		if (ok) {
			ok = json_object_set_new(root, name, obj) == 0;
		} else {
			json_decref(obj);
		}
		free(v);
	}
	text = ok ? json_dumps(root, JSON_PRESERVE_ORDER | JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
	json_decref(root);
	if (text == NULL) {
		tool_err(CMD, "out of memory");
		return false;
	}
	puts(text);
	free(text);
	return true;
}

static bool summary_print_text(struct summary *s)
{
	printf("%lu line%s", s->total, s->total == 1 ? "" : "s");
	if (s->first[0] != '\0') {
		printf(" from %s to %s", s->first, s->last);
	}
	printf("\n");
	for (size_t g = 0; g < sizeof group_names / sizeof group_names[0]; g++) {
		size_t n = 0;
		struct count *v = counter_sorted(group(s, g), &n);

		if (v == NULL) {
			tool_err(CMD, "out of memory");
			return false;
		}
		if (n > 0) {
			printf("by %s:\n", group_names[g]);
		}
		for (size_t i = 0; i < n && i < SUMMARY_TOP; i++) {
			printf("  %8lu  ", v[i].n);
			put_safe(stdout, v[i].key, 100);
			fputc('\n', stdout);
		}
		if (n > SUMMARY_TOP) {
			printf("  (%zu more)\n", n - SUMMARY_TOP);
		}
		free(v);
	}
	return true;
}

/* ---- reading ------------------------------------------------------------------------------- */

/* A file read line by line through zlib (plain files pass through unchanged). */
struct reader {
	const char *name; /* as given; "-" for standard input */
	gzFile gz;
	bool is_stdin;
	dev_t dev;
	ino_t ino;
	unsigned long line_no;
	char *line; /* LINE_MAX_BYTES + 1 */
	size_t line_len;
	bool overlong;
	unsigned char chunk[CHUNK];
	size_t off, len;
};

static bool reader_open(struct reader *r, const char *name, bool quiet)
{
	int fd;
	struct stat st;

	memset(r, 0, sizeof *r);
	r->name = name;
	r->line = malloc(LINE_MAX_BYTES + 1);
	if (r->line == NULL) {
		tool_err(CMD, "out of memory");
		return false;
	}
	r->is_stdin = strcmp(name, "-") == 0;
	fd = r->is_stdin ? dup(STDIN_FILENO) : open(name, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (!quiet) {
			tool_err(CMD, "cannot open %s: %s", name, strerror(errno));
		}
		free(r->line);
		r->line = NULL;
		return false;
	}
	if (fstat(fd, &st) == 0) {
		r->dev = st.st_dev;
		r->ino = st.st_ino;
	}
	r->gz = gzdopen(fd, "rb");
	if (r->gz == NULL) {
		tool_err(CMD, "cannot read %s: out of memory", name);
		close(fd);
		free(r->line);
		r->line = NULL;
		return false;
	}
	return true;
}

static void reader_close(struct reader *r)
{
	if (r->gz != NULL) {
		gzclose(r->gz);
		r->gz = NULL;
	}
	free(r->line);
	r->line = NULL;
}

/* Print an error about line r->line_no of r on stderr (detail is escaped). */
static void report(struct state *st, const struct reader *r, const char *what, const char *detail)
{
	st->bad++;
	fprintf(stderr, "srup %s: %s:%lu: %s", CMD, r->is_stdin ? "(stdin)" : r->name, r->line_no,
	        what);
	if (detail != NULL) {
		fputs(" (", stderr);
		put_safe(stderr, detail, 120);
		fputc(')', stderr);
	}
	fputc('\n', stderr);
}

static void handle_line(struct state *st, struct reader *r)
{
	json_error_t err;
	json_t *o;
	size_t len = r->line_len;

	r->line_no++;
	if (r->overlong) {
		report(st, r, "line longer than 64 KiB, skipped", NULL);
		return;
	}
	if (len == 0) {
		return; /* an empty line (e.g. a final newline twice): nothing to read */
	}
	o = json_loadb(r->line, len, JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, &err);
	if (o == NULL) {
		report(st, r, "not valid JSON, skipped", err.text);
		return;
	}
	if (!json_is_object(o)) {
		report(st, r, "not a JSON object, skipped", NULL);
		json_decref(o);
		return;
	}
	if (record_matches(&st->f, o)) {
		if (st->summary) {
			if (!summary_add(&st->s, o)) {
				tool_err(CMD, "out of memory");
				exit(SRUP_EXIT_USAGE);
			}
		} else if (st->json) {
			fwrite(r->line, 1, len, stdout);
			fputc('\n', stdout);
		} else {
			print_record(o);
		}
	}
	json_decref(o);
}

/* Read what r has now, handling each complete line; at the end of the data, a partial last
 * line is handled too when flush is set (else it waits for the rest). Returns the number of
 * bytes read, or -1 on a read error (reported). */
static long reader_pump(struct state *st, struct reader *r, bool flush)
{
	long total = 0;

	for (;;) {
		int n;

		while (r->off < r->len) {
			unsigned char *nl = memchr(r->chunk + r->off, '\n', r->len - r->off);
			size_t take = nl != NULL ? (size_t)(nl - (r->chunk + r->off)) : r->len - r->off;

			if (!r->overlong) {
				if (take > LINE_MAX_BYTES - r->line_len) {
					r->overlong = true;
				} else {
					memcpy(r->line + r->line_len, r->chunk + r->off, take);
					r->line_len += take;
				}
			}
			r->off += take;
			if (nl != NULL) {
				r->off++;
				handle_line(st, r);
				r->line_len = 0;
				r->overlong = false;
			}
		}
		if (stop_flag && !flush) {
			return total;
		}
		n = gzread(r->gz, r->chunk, sizeof r->chunk);
		if (n < 0 && stop_flag) {
			return total; /* a signal ended a blocking read */
		}
		if (n < 0) {
			int zerr = 0;
			const char *msg = gzerror(r->gz, &zerr);
			tool_err(CMD, "cannot read %s: %s", r->name, zerr == Z_ERRNO ? strerror(errno) : msg);
			st->io_err++;
			return -1;
		}
		if (n == 0) {
			break;
		}
		r->off = 0;
		r->len = (size_t)n;
		total += n;
	}
	if (flush && (r->line_len > 0 || r->overlong)) {
		handle_line(st, r);
		r->line_len = 0;
		r->overlong = false;
	}
	/* At the end of a growing file zlib remembers EOF: forget it so that the next read
	 * sees what was appended. */
	gzclearerr(r->gz);
	return total;
}

static void sleep_poll(void)
{
	struct timespec ts = {0, POLL_NS};

	nanosleep(&ts, NULL); /* a signal ends it early */
}

/* --follow: keep reading r (already read to its end) until a signal. On rotation the old
 * file is still read for a while (the broker notices the rename only at its next check and
 * may add a few lines) while the new one is read from its start. */
static void follow(struct state *st, struct reader *r)
{
	struct reader old;
	bool have_old = false;
	int64_t old_until = 0;

	memset(&old, 0, sizeof old);
	while (!stop_flag) {
		long got = reader_pump(st, r, false);
		struct stat sb;

		if (have_old) {
			reader_pump(st, &old, false);
			if (now_ms() >= old_until) {
				reader_pump(st, &old, true);
				reader_close(&old);
				have_old = false;
			}
		}
		fflush(stdout);
		if (got > 0) {
			continue;
		}
		if (!r->is_stdin && stat(r->name, &sb) == 0) {
			bool replaced = sb.st_ino != r->ino || sb.st_dev != r->dev;
			bool shrunk = !replaced && sb.st_size < (off_t)gzoffset(r->gz);

			if (replaced || shrunk) {
				struct reader nr;

				if (reader_open(&nr, r->name, true)) {
					if (have_old) {
						reader_pump(st, &old, true);
						reader_close(&old);
						have_old = false;
					}
					if (shrunk) {
						reader_close(r); /* its content is gone */
					} else {
						old = *r;
						have_old = true;
						old_until = now_ms() + OLD_GRACE_MS;
					}
					*r = nr;
					continue;
				}
			}
		}
		if (got < 0) {
			break;
		}
		sleep_poll();
	}
	if (have_old) {
		reader_pump(st, &old, true); /* a regular file: its end is near */
		reader_close(&old);
	}
}

/* ---- options ------------------------------------------------------------------------------- */

enum {
	OPT_SINCE = 0x100,
	OPT_UNTIL,
	OPT_VERDICT,
	OPT_REASON,
	OPT_IDENTITY,
	OPT_CLIENT_ID,
	OPT_TOPIC,
	OPT_ADDRESS,
	OPT_TYPE,
	OPT_JSON,
	OPT_SUMMARY,
	OPT_FOLLOW,
};

static bool add_value(struct strset *set, const char *opt, const char *v)
{
	if (v[0] == '\0') {
		tool_err(CMD, "option '--%s' needs a non-empty value", opt);
		return false;
	}
	if (set->n >= FILTER_MAX) {
		tool_err(CMD, "option '--%s' given more than %d times", opt, FILTER_MAX);
		return false;
	}
	set->v[set->n++] = v;
	return true;
}

static bool known_verdict(const char *v)
{
	static const char *const names[] = {"accept", "retransmit", "drop",
	                                    "refuse", "admin",      "suppressed"};

	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		if (strcmp(v, names[i]) == 0) {
			return true;
		}
	}
	return false;
}

/* Parse the options into st and the files into files[0, *n_files). Returns -1 on a usage
 * error (reported), 1 for --help, 0 to go on. */
static int parse_options(int argc, char **argv, struct state *st, const char **files,
                         size_t *n_files)
{
	static const struct option lo[] = {
	        {"since", required_argument, NULL, OPT_SINCE},
	        {"until", required_argument, NULL, OPT_UNTIL},
	        {"verdict", required_argument, NULL, OPT_VERDICT},
	        {"reason", required_argument, NULL, OPT_REASON},
	        {"identity", required_argument, NULL, OPT_IDENTITY},
	        {"client-id", required_argument, NULL, OPT_CLIENT_ID},
	        {"topic", required_argument, NULL, OPT_TOPIC},
	        {"address", required_argument, NULL, OPT_ADDRESS},
	        {"type", required_argument, NULL, OPT_TYPE},
	        {"json", no_argument, NULL, OPT_JSON},
	        {"summary", no_argument, NULL, OPT_SUMMARY},
	        {"follow", no_argument, NULL, OPT_FOLLOW},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	struct filters *f = &st->f;
	int c;
	int idx;

	*n_files = 0;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "-:hf", lo, &idx)) != -1) {
		const char *a = argv[optind - 1];
		bool ok = true;

		switch (c) {
			case 1:
				files[(*n_files)++] = optarg;
				break;
			case 'h':
				return 1;
			case 'f':
			case OPT_FOLLOW:
				st->follow = true;
				break;
			case OPT_JSON:
				st->json = true;
				break;
			case OPT_SUMMARY:
				st->summary = true;
				break;
			case OPT_SINCE:
			case OPT_UNTIL: {
				int64_t ms;
				const char *name = c == OPT_SINCE ? "since" : "until";
				if ((c == OPT_SINCE ? f->has_since : f->has_until)) {
					tool_err(CMD, "option '--%s' given twice", name);
					return -1;
				}
				if (!parse_when(optarg, st->now_ms, &ms)) {
					tool_err(CMD,
					         "option '--%s': '%s' is neither a duration (90s, 15m, 1h, 2d) nor "
					         "a UTC time (2026-12-05T07:00:00Z, 2026-12-05T07:00, 2026-12-05)",
					         name, optarg);
					return -1;
				}
				if (c == OPT_SINCE) {
					f->has_since = true;
					f->since_ms = ms;
				} else {
					f->has_until = true;
					f->until_ms = ms;
				}
				break;
			}
			case OPT_VERDICT:
				if (!known_verdict(optarg)) {
					tool_err(CMD,
					         "option '--verdict': '%s' is not one of accept, retransmit, drop, "
					         "refuse, admin, suppressed",
					         optarg);
					return -1;
				}
				ok = add_value(&f->verdict, "verdict", optarg);
				break;
			case OPT_REASON:
				ok = add_value(&f->reason, "reason", optarg);
				break;
			case OPT_IDENTITY:
				ok = add_value(&f->identity, "identity", optarg);
				break;
			case OPT_CLIENT_ID:
				ok = add_value(&f->client_id, "client-id", optarg);
				break;
			case OPT_TYPE:
				ok = add_value(&f->type, "type", optarg);
				break;
			case OPT_TOPIC:
				if (mosquitto_sub_topic_check(optarg) != MOSQ_ERR_SUCCESS) {
					tool_err(CMD, "option '--topic': '%s' is not a valid MQTT topic filter",
					         optarg);
					return -1;
				}
				ok = add_value(&f->topic, "topic", optarg);
				break;
			case OPT_ADDRESS:
				if (f->n_addr >= FILTER_MAX) {
					tool_err(CMD, "option '--address' given more than %d times", FILTER_MAX);
					return -1;
				}
				if (!parse_net(optarg, &f->addr[f->n_addr])) {
					tool_err(CMD,
					         "option '--address': '%s' is not an IP address or network "
					         "(192.0.2.7, 10.0.0.0/8, 2001:db8::/32)",
					         optarg);
					return -1;
				}
				f->n_addr++;
				break;
			case ':':
				tool_err(CMD, "option '%s' needs a value", a);
				return -1;
			default:
				if (optopt != 0 && optopt < 0x100) {
					tool_err(CMD, "unknown option '-%c' (see srup audit --help)", optopt);
				} else {
					tool_err(CMD, "unknown or ambiguous option '%s' (see srup audit --help)", a);
				}
				return -1;
		}
		if (!ok) {
			return -1;
		}
	}
	for (int i = optind; i < argc; i++) {
		files[(*n_files)++] = argv[i];
	}
	if (f->has_since && f->has_until && f->until_ms <= f->since_ms) {
		tool_err(CMD, "option '--until' is not after '--since': no line can match");
		return -1;
	}
	return 0;
}

int srup_audit_read(int argc, char **argv)
{
	struct state st;
	const char **files;
	size_t n_files = 0;
	struct sigaction sa;
	int rc;

	memset(&st, 0, sizeof st);
	st.now_ms = now_ms();
	files = calloc((size_t)argc + 1, sizeof *files);
	if (files == NULL) {
		tool_err(CMD, "out of memory");
		return SRUP_EXIT_USAGE;
	}
	rc = parse_options(argc, argv, &st, files, &n_files);
	if (rc != 0) {
		free(files);
		if (rc > 0) {
			srup_audit_read_help(stdout);
			return SRUP_EXIT_OK;
		}
		return SRUP_EXIT_USAGE;
	}
	if (n_files == 0) {
		files[n_files++] = "-";
		if (isatty(STDIN_FILENO)) {
			fprintf(stderr,
			        "srup %s: reading the log from the terminal (give FILEs; see srup "
			        "audit --help)\n",
			        CMD);
		}
	}
	if (st.follow) {
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = on_signal; /* no SA_RESTART: a blocking read or sleep ends */
		sigemptyset(&sa.sa_mask);
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
	}

	for (size_t i = 0; i < n_files && !stop_flag; i++) {
		struct reader r;
		bool last = i + 1 == n_files;

		if (last && st.follow && strcmp(files[i], "-") != 0) {
			/* like tail -F: a log not (yet) there is waited for */
			bool noted = false;
			while (!stop_flag && access(files[i], F_OK) != 0 && errno == ENOENT) {
				if (!noted) {
					fprintf(stderr, "srup %s: waiting for %s to appear\n", CMD, files[i]);
					noted = true;
				}
				sleep_poll();
			}
			if (stop_flag) {
				break;
			}
		}
		if (!reader_open(&r, files[i], false)) {
			st.io_err++;
			continue;
		}
		if (last && st.follow && !r.is_stdin) {
			if (reader_pump(&st, &r, false) >= 0) {
				follow(&st, &r);
			}
			reader_pump(&st, &r, true);
		} else {
			reader_pump(&st, &r, true);
		}
		reader_close(&r);
		fflush(stdout);
	}
	if (st.summary) {
		if (!(st.json ? summary_print_json(&st.s) : summary_print_text(&st.s))) {
			st.io_err++;
		}
	}
	for (size_t g = 0; g < sizeof group_names / sizeof group_names[0]; g++) {
		counter_free(group(&st.s, g));
	}
	free(files);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		tool_err(CMD, "cannot write the output: %s", strerror(errno));
		return SRUP_EXIT_USAGE;
	}
	if (st.bad > 0) {
		fprintf(stderr, "srup %s: %lu line%s could not be read (see above)\n", CMD, st.bad,
		        st.bad == 1 ? "" : "s");
	}
	if (st.io_err > 0) {
		return SRUP_EXIT_USAGE;
	}
	return st.bad > 0 ? SRUP_EXIT_MALFORM : SRUP_EXIT_OK;
}
