/* SPDX-License-Identifier: MIT
 * policy.c - the SRUP policy file (format in policy/README.md): parsing and topic classification.
 * Pure functions over text; it opens one file at most and never touches broker state. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "srupb.h"

#define POLICY_LINE_MAX  4096
#define POLICY_FILE_MAX  (1u << 20)
#define POLICY_WORDS_MAX 64

static const char *const reason_names[SRUPB_R__COUNT] = {
        "empty_payload",       "too_large",      "truncated",       "field_length",
        "trailing_bytes",      "bad_version",    "unknown_type",    "bad_pad",
        "not_allowed",         "unknown_sender", "revoked_sender",  "identity_mismatch",
        "join_topic_mismatch", "replay",         "bad_signature",   "retained_refused",
        "internal_error",      "not_member",     "no_pending_join", "pending_full",
        "unknown_target",      "bad_key",        "seen_index_full", "no_identity",
};

const char *srupb_reason_name(unsigned r)
{
	if (r >= SRUPB_R__COUNT) {
		return "none";
	}
	return reason_names[r];
}

const char *srupb_verdict_name(enum srupb_verdict v)
{
	switch (v) {
		case SRUPB_V_ACCEPT:
			return "accept";
		case SRUPB_V_RETRANSMIT:
			return "retransmit";
		case SRUPB_V_DROP:
			return "drop";
		case SRUPB_V_REFUSE:
			return "refuse";
		case SRUPB_V_PASS:
		default:
			return "pass";
	}
}

/* Canonical text id: 1..16 lowercase hex digits, no leading zero (except "0" itself). */
static bool parse_canon_id(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	if (len == 0 || len > 16 || (len > 1 && s[0] == '0')) {
		return false;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned d;
		if (s[i] >= '0' && s[i] <= '9') {
			d = (unsigned)(s[i] - '0');
		} else if (s[i] >= 'a' && s[i] <= 'f') {
			d = (unsigned)(s[i] - 'a' + 10);
		} else {
			return false;
		}
		v = (v << 4) | d;
	}
	*out = v;
	return true;
}

void srupb_policy_classify(const struct srupb_policy *p, const char *topic, struct srupb_topic *out)
{
	static const char ctl[] = "$CONTROL/srup/v1";
	const char *r;
	const char *slash;

	out->kind = SRUPB_T_OTHER;
	out->a = 0;
	out->b = 0;
	if (topic == NULL) {
		return;
	}
	if (topic[0] == '$') {
		if (strncmp(topic, ctl, sizeof ctl - 1) == 0) {
			if (topic[sizeof ctl - 1] == '\0') {
				out->kind = SRUPB_T_CONTROL;
			} else if (strncmp(topic + sizeof ctl - 1, "/response", 9) == 0 &&
			           (topic[sizeof ctl + 8] == '\0' || topic[sizeof ctl + 8] == '/')) {
				/* the response topic and any topic below it: admins only */
				out->kind = SRUPB_T_CONTROL_RESP;
			}
		}
		return;
	}
	/* Prefix check first: non-SRUP traffic costs one memcmp. */
	if (strncmp(topic, p->prefix, p->prefix_len) != 0) {
		return;
	}
	if (topic[p->prefix_len] == '\0') {
		out->kind = SRUPB_T_PROTECTED;
		return;
	}
	if (topic[p->prefix_len] != '/') {
		return;
	}
	out->kind = SRUPB_T_PROTECTED;
	r = topic + p->prefix_len + 1;
	slash = strchr(r, '/');
	if (slash == NULL) {
		uint64_t device = 0;
		if (parse_canon_id(r, strlen(r), &device)) {
			out->kind = SRUPB_T_DEVICE;
			out->a = device;
		}
		return;
	}
	if ((size_t)(slash - r) == 7 && strncmp(r, "servers", 7) == 0) {
		const char *s = slash + 1;
		const char *s2 = strchr(s, '/');
		if (s2 == NULL || strchr(s2 + 1, '/') != NULL) {
			return;
		}
		uint64_t server = 0;
		uint64_t device = 0;
		if (parse_canon_id(s, (size_t)(s2 - s), &server) &&
		    parse_canon_id(s2 + 1, strlen(s2 + 1), &device)) {
			out->kind = SRUPB_T_JOIN;
			out->a = server;
			out->b = device;
		}
	}
}

bool srupb_policy_allows(const struct srupb_policy *p, enum srupb_rule_kind rule, unsigned role,
                         unsigned type)
{
	if ((unsigned)rule >= SRUPB_RULE__COUNT || role >= SRUPB_ROLE__COUNT || type > 255) {
		return false;
	}
	return p->allow[rule][role][type];
}

static bool id_in(const uint64_t *list, size_t n, uint64_t id)
{
	for (size_t i = 0; i < n; i++) {
		if (list[i] == id) {
			return true;
		}
	}
	return false;
}

bool srupb_policy_commands_joins(const struct srupb_policy *p, uint64_t id)
{
	return id_in(p->join_commanders, p->n_join_commanders, id);
}

bool srupb_policy_is_admin(const struct srupb_policy *p, uint64_t id)
{
	return id_in(p->admins, p->n_admins, id);
}

bool srupb_policy_reads_metrics(const struct srupb_policy *p, uint64_t id)
{
	return srupb_policy_is_admin(p, id) || id_in(p->metrics_readers, p->n_metrics_readers, id);
}

/* --- parser --- */

struct pstate {
	const char *name;
	unsigned line;
	char *err;
	size_t err_cap;
	unsigned seen;        /* bit per scalar directive, to refuse duplicates */
	unsigned seen_window; /* bit per role given a seen_window */
};

static enum srup_err perr(struct pstate *ps, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static enum srup_err perr(struct pstate *ps, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (ps->err != NULL && ps->err_cap > 0) {
		snprintf(ps->err, ps->err_cap, "%s:%u: %s", ps->name, ps->line, msg);
	}
	return SRUP_ERR_SYNTAX;
}

static bool parse_uint(const char *s, unsigned long long min, unsigned long long max,
                       unsigned long long *out)
{
	char *end = NULL;
	unsigned long long v;
	if (s[0] < '0' || s[0] > '9') {
		return false;
	}
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
		return false;
	}
	*out = v;
	return true;
}

static bool parse_bool(const char *s, bool *out)
{
	if (strcmp(s, "yes") == 0 || strcmp(s, "true") == 0 || strcmp(s, "on") == 0) {
		*out = true;
		return true;
	}
	if (strcmp(s, "no") == 0 || strcmp(s, "false") == 0 || strcmp(s, "off") == 0) {
		*out = false;
		return true;
	}
	return false;
}

enum {
	D_VERSION,
	D_PREFIX,
	D_IDENTITY,
	D_BIND,
	D_MAXPAYLOAD,
	D_RETAINED,
	D_VIOLATION,
	D_AUDIT_ACCEPTS,
	D_AUDIT_RATE,
	D_KEY_CACHE,
	D_SEEN,
	D_DURABILITY,
	D_OTHER,
	D_METRICS,
	D_PENDING,
	D_MAXKEYBITS,
	D_BADSIG,
	D_AUDIT_CLIENT_RATE,
	D_AUDIT_TOTAL_RATE,
};

static enum srup_err once(struct pstate *ps, unsigned bit, const char *word)
{
	if ((ps->seen & (1u << bit)) != 0) {
		return perr(ps, "'%s' given twice", word);
	}
	ps->seen |= 1u << bit;
	return SRUP_OK;
}

static enum srup_err need_args(struct pstate *ps, int n, int want, const char *word,
                               const char *usage)
{
	if (n != want) {
		return perr(ps, "'%s' needs %s", word, usage);
	}
	return SRUP_OK;
}

static enum srup_err rule_line(struct pstate *ps, struct srupb_policy *p, char **w, int n)
{
	enum srupb_rule_kind rk;
	enum srupb_role role;

	if (n < 4) {
		return perr(ps, "'allow' needs: allow own_channel|device_channel|join_topic "
		                "server|device|observer TYPE...");
	}
	if (strcmp(w[1], "own_channel") == 0) {
		rk = SRUPB_RULE_OWN;
	} else if (strcmp(w[1], "device_channel") == 0) {
		rk = SRUPB_RULE_PEER;
	} else if (strcmp(w[1], "join_topic") == 0) {
		rk = SRUPB_RULE_JOIN;
	} else {
		return perr(ps, "unknown channel kind '%s' (own_channel, device_channel, join_topic)",
		            w[1]);
	}
	role = srupb_role_from_name(w[2]);
	if (role == SRUPB_ROLE_NONE) {
		return perr(ps, "unknown role '%s' (server, device, observer)", w[2]);
	}
	for (int i = 3; i < n; i++) {
		int t = srup_msg_type_from_name(w[i]);
		if (t < 0 || !srup_msg_type_is_valid((unsigned)t)) {
			return perr(ps, "unknown message type '%s'", w[i]);
		}
		p->allow[rk][role][t] = true;
	}
	return SRUP_OK;
}

/* A directive naming one id (admin, metrics_reader, join_command), appended to list[*count] (at most max). */
static enum srup_err id_line(struct pstate *ps, char **w, int n, uint64_t *list, size_t *count,
                             size_t max)
{
	uint64_t id;
	enum srup_err rc = need_args(ps, n, 2, w[0], "one SRUP id (lowercase hex)");
	if (rc != SRUP_OK) {
		return rc;
	}
	if (!parse_canon_id(w[1], strlen(w[1]), &id)) {
		return perr(ps,
		            "'%s' is not a SRUP id in text form (lowercase hex, no 0x, no leading zeros)",
		            w[1]);
	}
	if (*count >= max) {
		return perr(ps, "more than %zu %s lines", max, w[0]);
	}
	list[(*count)++] = id;
	return SRUP_OK;
}

/* The membership and cost directives (join_command, pending_joins, max_key_bits,
 * bad_signatures). TYPE when d is none of them. */
static enum srup_err trust_directive(struct pstate *ps, struct srupb_policy *p, char **w, int n)
{
	unsigned long long v = 0;
	unsigned long long per = 0;
	unsigned long long ttl = 0;
	enum srup_err rc;
	const char *d = w[0];

	if (strcmp(d, "join_command") == 0) {
		return id_line(ps, w, n, p->join_commanders, &p->n_join_commanders,
		               SRUPB_JOIN_COMMANDERS_MAX);
	}
	if (strcmp(d, "pending_joins") == 0) {
		rc = once(ps, D_PENDING, d);
		if (rc == SRUP_OK) {
			rc = need_args(ps, n, 4, d, "MAX PER_DEVICE SECONDS");
		}
		if (rc != SRUP_OK) {
			return rc;
		}
		if (!parse_uint(w[1], 1, 10000000, &v) ||
		    !parse_uint(w[2], 1, SRUPB_PENDING_PER_DEVICE_MAX, &per) ||
		    !parse_uint(w[3], 1, 86400, &ttl)) {
			return perr(ps,
			            "pending_joins needs MAX (1-10000000) PER_DEVICE (1-%d) SECONDS "
			            "(1-86400)",
			            SRUPB_PENDING_PER_DEVICE_MAX);
		}
		p->pending_max = (size_t)v;
		p->pending_per_device = (size_t)per;
		p->pending_ttl = (double)ttl;
		return SRUP_OK;
	}
	if (strcmp(d, "max_key_bits") == 0 || strcmp(d, "bad_signatures") == 0) {
		bool bits = d[0] == 'm';
		rc = once(ps, bits ? D_MAXKEYBITS : D_BADSIG, d);
		if (rc == SRUP_OK) {
			rc = need_args(ps, n, 2, d, "a number");
		}
		if (rc != SRUP_OK) {
			return rc;
		}
		if (bits && !parse_uint(w[1], 2048, 16384, &v)) {
			return perr(ps, "max_key_bits must be a number from 2048 to 16384");
		}
		if (!bits && !parse_uint(w[1], 0, 1000000, &v)) {
			return perr(ps, "bad_signatures must be a number from 0 (never disconnect) to "
			                "1000000");
		}
		if (bits) {
			p->max_key_bits = (size_t)v;
		} else {
			p->bad_signatures = (unsigned)v;
		}
		return SRUP_OK;
	}
	return SRUP_ERR_TYPE;
}

static enum srup_err directive(struct pstate *ps, struct srupb_policy *p, char **w, int n)
{
	unsigned long long v = 0;
	enum srup_err rc;
	const char *d = w[0];

	if (strcmp(d, "allow") == 0) {
		return rule_line(ps, p, w, n);
	}
	if (strcmp(d, "admin") == 0) {
		return id_line(ps, w, n, p->admins, &p->n_admins, SRUPB_ADMINS_MAX);
	}
	if (strcmp(d, "metrics_reader") == 0) {
		return id_line(ps, w, n, p->metrics_readers, &p->n_metrics_readers,
		               SRUPB_METRICS_READERS_MAX);
	}
	rc = trust_directive(ps, p, w, n);
	if (rc != SRUP_ERR_TYPE) {
		return rc;
	}
	if (strcmp(d, "version") == 0) {
		rc = once(ps, D_VERSION, d);
		if (rc == SRUP_OK) {
			rc = need_args(ps, n, 2, d, "one value");
		}
		if (rc == SRUP_OK && strcmp(w[1], "1") != 0) {
			rc = perr(ps, "unsupported policy version '%s' (this plugin reads version 1)", w[1]);
		}
		return rc;
	}
	if (strcmp(d, "prefix") == 0) {
		rc = once(ps, D_PREFIX, d);
		if (rc == SRUP_OK) {
			rc = need_args(ps, n, 2, d, "one topic level");
		}
		if (rc != SRUP_OK) {
			return rc;
		}
		if (strlen(w[1]) >= sizeof p->prefix || strpbrk(w[1], "/+#$") != NULL) {
			return perr(ps,
			            "prefix must be one topic level without / + # $ (at most %zu "
			            "chars)",
			            sizeof p->prefix - 1);
		}
		snprintf(p->prefix, sizeof p->prefix, "%s", w[1]);
		p->prefix_len = strlen(p->prefix);
		return SRUP_OK;
	}
	if (strcmp(d, "identity") == 0) {
		rc = once(ps, D_IDENTITY, d);
		if (rc == SRUP_OK) {
			rc = need_args(ps, n, 2, d, "certificate, username or client_id");
		}
		if (rc != SRUP_OK) {
			return rc;
		}
		if (strcmp(w[1], "username") == 0) {
			p->identity = SRUPB_ID_USERNAME;
		} else if (strcmp(w[1], "client_id") == 0) {
			p->identity = SRUPB_ID_CLIENT_ID;
		} else if (strcmp(w[1], "certificate") == 0) {
			p->identity = SRUPB_ID_CERTIFICATE;
		} else {
			return perr(ps, "identity must be certificate, username or client_id, not '%s'", w[1]);
		}
		return SRUP_OK;
	}
	if (strcmp(d, "bind_identity") == 0 || strcmp(d, "audit_accepts") == 0) {
		bool b;
		bool is_bind = d[0] == 'b';
		rc = once(ps, is_bind ? D_BIND : D_AUDIT_ACCEPTS, d);
		if (rc == SRUP_OK) {
			rc = need_args(ps, n, 2, d, "yes or no");
		}
		if (rc != SRUP_OK) {
			return rc;
		}
		if (!parse_bool(w[1], &b)) {
			return perr(ps, "'%s' needs yes or no, not '%s'", d, w[1]);
		}
		if (is_bind) {
			p->bind_identity = b;
		} else {
			p->audit_accepts = b;
		}
		return SRUP_OK;
	}
	if (strcmp(d, "max_payload") == 0) {
		rc = once(ps, D_MAXPAYLOAD, d);
		if (rc == SRUP_OK) {
			rc = need_args(ps, n, 2, d, "a size in bytes");
		}
		if (rc != SRUP_OK) {
			return rc;
		}
		if (!parse_uint(w[1], 64, SRUP_MSG_MAX, &v)) {
			return perr(ps, "max_payload must be a number from 64 to %u", SRUP_MSG_MAX);
		}
		p->max_payload = (size_t)v;
		return SRUP_OK;
	}
	if (strcmp(d, "retained") == 0) {
		rc = once(ps, D_RETAINED, d);
		if (rc == SRUP_OK) {
			rc = need_args(ps, n, 2, d, "refuse or allow");
		}
		if (rc != SRUP_OK) {
			return rc;
		}
		if (strcmp(w[1], "refuse") == 0) {
			p->refuse_retained = true;
		} else if (strcmp(w[1], "allow") == 0) {
			p->refuse_retained = false;
		} else {
			return perr(ps, "retained must be refuse or allow, not '%s'", w[1]);
		}
		return SRUP_OK;
	}
	if (strcmp(d, "on_violation") == 0) {
		rc = once(ps, D_VIOLATION, d);
		if (rc == SRUP_OK) {
			rc = need_args(ps, n, 2, d, "drop or disconnect");
		}
		if (rc != SRUP_OK) {
			return rc;
		}
		if (strcmp(w[1], "drop") == 0) {
			p->disconnect_on_violation = false;
		} else if (strcmp(w[1], "disconnect") == 0) {
			p->disconnect_on_violation = true;
		} else {
			return perr(ps, "on_violation must be drop or disconnect, not '%s'", w[1]);
		}
		return SRUP_OK;
	}
	if (strcmp(d, "audit_rate") == 0 || strcmp(d, "audit_client_rate") == 0 ||
	    strcmp(d, "audit_total_rate") == 0) {
		unsigned long long r = 0;
		unsigned bit = strcmp(d, "audit_rate") == 0
		                       ? D_AUDIT_RATE
		                       : (strcmp(d, "audit_client_rate") == 0 ? D_AUDIT_CLIENT_RATE
		                                                              : D_AUDIT_TOTAL_RATE);
		rc = once(ps, bit, d);
		if (rc == SRUP_OK) {
			rc = need_args(ps, n, 3, d, "BURST LINES_PER_SECOND");
		}
		if (rc != SRUP_OK) {
			return rc;
		}
		if (!parse_uint(w[1], 1, 1000000, &v) || !parse_uint(w[2], 1, 1000000, &r)) {
			return perr(ps, "%s needs two numbers from 1 to 1000000", d);
		}
		if (bit == D_AUDIT_RATE) {
			p->audit_burst = (unsigned)v;
			p->audit_rate = (double)r;
		} else if (bit == D_AUDIT_CLIENT_RATE) {
			p->audit_client_burst = (unsigned)v;
			p->audit_client_rate = (double)r;
		} else {
			p->audit_total_burst = (unsigned)v;
			p->audit_total_rate = (double)r;
		}
		return SRUP_OK;
	}
	if (strcmp(d, "key_cache") == 0 || strcmp(d, "seen_index") == 0 ||
	    strcmp(d, "metrics_interval") == 0) {
		bool kc = d[0] == 'k';
		bool mi = d[0] == 'm';
		rc = once(ps, kc ? D_KEY_CACHE : (mi ? D_METRICS : D_SEEN), d);
		if (rc == SRUP_OK) {
			rc = need_args(ps, n, 2, d, "a number");
		}
		if (rc != SRUP_OK) {
			return rc;
		}
		if (kc && !parse_uint(w[1], 1, 10000000, &v)) {
			return perr(ps, "key_cache must be a number from 1 to 10000000");
		}
		if (mi && !parse_uint(w[1], 1, 3600, &v)) {
			return perr(ps, "metrics_interval must be a number of seconds from 1 to 3600");
		}
		if (!kc && !mi && !parse_uint(w[1], 0, 100000000, &v)) {
			return perr(ps, "seen_index must be a number from 0 to 100000000");
		}
		if (kc) {
			p->key_cache = (size_t)v;
		} else if (mi) {
			p->metrics_interval = (unsigned)v;
		} else {
			p->seen_index = (size_t)v;
		}
		return SRUP_OK;
	}
	if (strcmp(d, "seen_window") == 0) {
		enum srupb_role role;
		rc = need_args(ps, n, 3, d, "ROLE N (ROLE server, device or observer)");
		if (rc != SRUP_OK) {
			return rc;
		}
		role = srupb_role_from_name(w[1]);
		if (role == SRUPB_ROLE_NONE) {
			return perr(ps, "seen_window: unknown role '%s' (server, device or observer)", w[1]);
		}
		if ((ps->seen_window & (1u << role)) != 0) {
			return perr(ps, "'seen_window %s' given twice", w[1]);
		}
		if (!parse_uint(w[2], 0, 100000000, &v)) {
			return perr(ps, "seen_window must be a number from 0 to 100000000");
		}
		ps->seen_window |= 1u << role;
		p->seen_window[role] = (size_t)v;
		return SRUP_OK;
	}
	if (strcmp(d, "durability") == 0) {
		rc = once(ps, D_DURABILITY, d);
		if (rc == SRUP_OK) {
			rc = need_args(ps, n, 2, d, "fsync, metasync, os or map");
		}
		if (rc != SRUP_OK) {
			return rc;
		}
		if (strcmp(w[1], "fsync") == 0) {
			p->durability = SRUPB_SYNC_FSYNC;
		} else if (strcmp(w[1], "metasync") == 0) {
			p->durability = SRUPB_SYNC_META;
		} else if (strcmp(w[1], "os") == 0) {
			p->durability = SRUPB_SYNC_OS;
		} else if (strcmp(w[1], "map") == 0) {
			p->durability = SRUPB_SYNC_MAP;
		} else {
			return perr(ps, "durability must be fsync, metasync, os or map, not '%s'", w[1]);
		}
		return SRUP_OK;
	}
	if (strcmp(d, "other_topics") == 0) {
		rc = once(ps, D_OTHER, d);
		if (rc == SRUP_OK) {
			rc = need_args(ps, n, 2, d, "allow or defer");
		}
		if (rc != SRUP_OK) {
			return rc;
		}
		if (strcmp(w[1], "allow") == 0) {
			p->other_defer = false;
		} else if (strcmp(w[1], "defer") == 0) {
			p->other_defer = true;
		} else {
			return perr(ps, "other_topics must be allow or defer, not '%s'", w[1]);
		}
		return SRUP_OK;
	}
	return perr(ps, "unknown directive '%s'", d);
}

static void policy_defaults(struct srupb_policy *p)
{
	memset(p, 0, sizeof *p);
	snprintf(p->prefix, sizeof p->prefix, "SRUP");
	p->prefix_len = 4;
	p->identity = SRUPB_ID_CERTIFICATE;
	p->bind_identity = true;
	p->max_payload = 65536;
	p->refuse_retained = true;
	p->audit_burst = 50;
	p->audit_rate = 10.0;
	p->audit_client_burst = 20;
	p->audit_client_rate = 2.0;
	p->audit_total_burst = 200;
	p->audit_total_rate = 50.0;
	p->key_cache = 10000;
	p->seen_index = 262144;
	p->seen_window[SRUPB_ROLE_SERVER] = 65536;
	p->seen_window[SRUPB_ROLE_DEVICE] = 64;
	p->seen_window[SRUPB_ROLE_OBSERVER] = 64;
	p->durability = SRUPB_SYNC_OS;
	p->metrics_interval = 1;
	p->pending_max = 10000;
	p->pending_per_device = 4;
	p->pending_ttl = 600.0;
	p->max_key_bits = 4096;
	p->bad_signatures = 5;
}

enum srup_err srupb_policy_parse(const char *name, const char *text, size_t len,
                                 struct srupb_policy **out, char *err, size_t err_cap)
{
	struct pstate ps = {name, 0, err, err_cap, 0, 0};
	struct srupb_policy *p = NULL;
	char line[POLICY_LINE_MAX];
	size_t pos = 0;
	enum srup_err rc = SRUP_OK;
	bool any_rule = false;

	*out = NULL;
	p = malloc(sizeof *p);
	if (p == NULL) {
		return SRUP_ERR_NOMEM;
	}
	policy_defaults(p);
	while (pos < len) {
		size_t end = pos;
		size_t ll;
		char *w[POLICY_WORDS_MAX];
		int n = 0;
		char *save = NULL;
		char *tok;

		while (end < len && text[end] != '\n') {
			end++;
		}
		ps.line++;
		ll = end - pos;
		if (ll >= sizeof line) {
			rc = perr(&ps, "line longer than %d characters", POLICY_LINE_MAX - 1);
			goto out;
		}
		memcpy(line, text + pos, ll);
		line[ll] = '\0';
		pos = end + 1;
		if (memchr(line, '\0', ll) != NULL) {
			rc = perr(&ps, "NUL byte in policy text");
			goto out;
		}
		{
			char *hash = strchr(line, '#');
			if (hash != NULL) {
				*hash = '\0';
			}
		}
		for (tok = strtok_r(line, " \t\r", &save); tok != NULL;
		     tok = strtok_r(NULL, " \t\r", &save)) {
			if (n == POLICY_WORDS_MAX) {
				rc = perr(&ps, "more than %d words on one line", POLICY_WORDS_MAX);
				goto out;
			}
			w[n++] = tok;
		}
		if (n == 0) {
			continue;
		}
		if (ps.seen == 0 && strcmp(w[0], "version") != 0) {
			rc = perr(&ps, "the first directive must be 'version 1'");
			goto out;
		}
		if (strcmp(w[0], "allow") == 0) {
			any_rule = true;
		}
		rc = directive(&ps, p, w, n);
		if (rc != SRUP_OK) {
			goto out;
		}
	}
	if ((ps.seen & (1u << D_VERSION)) == 0) {
		ps.line = 0;
		rc = perr(&ps, "empty policy: 'version 1' missing");
		goto out;
	}
	/* A window above the capacity could never be filled: refuse one given explicitly; a default
	 * one follows a smaller seen_index down. */
	for (unsigned r = 1; r < SRUPB_ROLE__COUNT; r++) {
		if (p->seen_window[r] <= p->seen_index) {
			continue;
		}
		if ((ps.seen_window & (1u << r)) != 0) {
			ps.line = 0;
			rc = perr(&ps, "seen_window %s %zu is larger than seen_index %zu", srupb_role_name(r),
			          p->seen_window[r], p->seen_index);
			goto out;
		}
		p->seen_window[r] = p->seen_index;
	}
	if (!any_rule) {
		ps.line = 0;
		rc = perr(&ps, "no 'allow' rule: every SRUP message would be dropped");
		goto out;
	}
	*out = p;
	p = NULL;
out:
	free(p);
	return rc;
}

enum srup_err srupb_policy_load(const char *path, struct srupb_policy **out, char *err,
                                size_t err_cap)
{
	FILE *f;
	char *buf = NULL;
	size_t n = 0;
	enum srup_err rc;

	if (path == NULL) {
		return srupb_policy_parse("(built-in policy/srup.policy)", srupb_policy_default,
		                          strlen(srupb_policy_default), out, err, err_cap);
	}
	*out = NULL;
	f = fopen(path, "rb");
	if (f == NULL) {
		snprintf(err, err_cap, "%s:0: cannot open policy: %s", path, strerror(errno));
		return SRUP_ERR_IO;
	}
	buf = malloc(POLICY_FILE_MAX + 1);
	if (buf == NULL) {
		fclose(f);
		return SRUP_ERR_NOMEM;
	}
	n = fread(buf, 1, POLICY_FILE_MAX + 1, f);
	if (ferror(f)) {
		snprintf(err, err_cap, "%s:0: cannot read policy", path);
		fclose(f);
		free(buf);
		return SRUP_ERR_IO;
	}
	fclose(f);
	if (n > POLICY_FILE_MAX) {
		snprintf(err, err_cap, "%s:0: policy larger than %u bytes", path, POLICY_FILE_MAX);
		free(buf);
		return SRUP_ERR_IO;
	}
	rc = srupb_policy_parse(path, buf, n, out, err, err_cap);
	free(buf);
	return rc;
}
