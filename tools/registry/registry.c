/* SPDX-License-Identifier: MIT
 * registry.c - srup-registry: the registration service of paper section 4, with the API of the
 * reference's KeyEx (spec section 5.4) so that its clients work unchanged. HTTPS on
 * libmicrohttpd, JSON with jansson; registered keys go straight into the broker's store.
 * Every request is one JSON line in the log; bad input gets a clear HTTP error and changes
 * nothing. */
#include "registry.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>
#include <openssl/pem.h>
#include <systemd/sd-daemon.h>

#include "srupb_store.h"

#define RATE_SLOTS 4096
#define RATE_PROBE 8

struct rate_slot {
	char addr[48];
	double tokens;
	double last;
};

static struct {
	struct reg_config cfg;
	struct srupb_store *store;
	pthread_mutex_t store_lock;
	X509 *ca;
	EVP_PKEY *ca_key;
	EVP_PKEY *sign_key;
	char *ca_pem;
	FILE *log;
	pthread_mutex_t log_lock;
	struct rate_slot rate[RATE_SLOTS];
	pthread_mutex_t rate_lock;
} R;

static volatile sig_atomic_t stop_flag;
static volatile sig_atomic_t reopen_flag;

static void on_signal(int sig)
{
	if (sig == SIGHUP) {
		reopen_flag = 1;
	} else {
		stop_flag = 1;
	}
}

/* SIGHUP (logrotate): reopen the request log. */
static void reopen_log(void)
{
	FILE *f;

	if (R.cfg.log_file[0] == '\0') {
		return;
	}
	sd_notify(0, "RELOADING=1");
	f = fopen(R.cfg.log_file, "a");
	pthread_mutex_lock(&R.log_lock);
	if (f != NULL) {
		fclose(R.log);
		R.log = f;
	}
	pthread_mutex_unlock(&R.log_lock);
	if (f == NULL) {
		fprintf(stderr, "srup-registry: cannot reopen %s: %s\n", R.cfg.log_file, strerror(errno));
	}
	sd_notify(0, "READY=1");
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- rate limit per client address (token bucket, bounded table) ---------------------------- */

static int rate_ok(const char *addr)
{
	uint64_t h = 1469598103934665603ull;
	double t = now_s();
	struct rate_slot *slot = NULL;
	size_t i;
	int ok;

	for (const char *p = addr; *p != '\0'; p++) {
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	}
	pthread_mutex_lock(&R.rate_lock);
	for (i = 0; i < RATE_PROBE; i++) {
		struct rate_slot *s = &R.rate[(h + i) % RATE_SLOTS];

		if (strcmp(s->addr, addr) == 0) {
			slot = s;
			break;
		}
	}
	if (slot == NULL) {
		/* A new address takes a free slot, or the one idle longest among those probed: the
		 * table stays bounded whatever the number of addresses. */
		for (i = 0; i < RATE_PROBE; i++) {
			struct rate_slot *s = &R.rate[(h + i) % RATE_SLOTS];

			if (slot == NULL || s->addr[0] == '\0' || s->last < slot->last) {
				slot = s;
				if (s->addr[0] == '\0') {
					break;
				}
			}
		}
		snprintf(slot->addr, sizeof(slot->addr), "%s", addr);
		slot->tokens = R.cfg.burst;
		slot->last = t;
	}
	slot->tokens += (t - slot->last) * R.cfg.rate;
	if (slot->tokens > R.cfg.burst) {
		slot->tokens = R.cfg.burst;
	}
	slot->last = t;
	ok = slot->tokens >= 1.0;
	if (ok) {
		slot->tokens -= 1.0;
	}
	pthread_mutex_unlock(&R.rate_lock);
	return ok;
}

/* ---- the request log ------------------------------------------------------------------------- */

static void log_request(const char *addr, const char *method, const char *endpoint,
                        const char *identity, unsigned status, const char *result)
{
	struct timespec ts;
	struct tm tm;
	char when[40];
	json_t *o;
	char *line;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(when + strlen(when), sizeof(when) - strlen(when), ".%03ldZ", ts.tv_nsec / 1000000L);
	o = json_pack("{s:s, s:s, s:s, s:s, s:s?, s:i, s:s}", "time", when, "address", addr, "method",
	              method, "endpoint", endpoint, "identity", identity, "status", (int)status,
	              "result", result);
	line = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
	if (line != NULL) {
		pthread_mutex_lock(&R.log_lock);
		fprintf(R.log, "%s\n", line);
		fflush(R.log);
		pthread_mutex_unlock(&R.log_lock);
	}
	free(line);
	json_decref(o);
}

/* ---- one request ----------------------------------------------------------------------------- */

struct req {
	char *body;
	size_t len;
	int too_large;
	int limited;
};

struct answer {
	unsigned status;
	char *body; /* malloc'd */
	const char *type;
	char identity[SRUP_ID_TEXT_MAX + 8];
	char result[160];
};

static void answer_json(struct answer *a, unsigned status, json_t *o, const char *result)
{
	a->status = status;
	a->body = json_dumps(o, JSON_COMPACT);
	a->type = "application/json";
	snprintf(a->result, sizeof(a->result), "%s", result);
	json_decref(o);
}

static void answer_error(struct answer *a, unsigned status, const char *why)
{
	answer_json(a, status, json_pack("{s:s}", "error", why), why);
}

static void answer_text(struct answer *a, unsigned status, char *text, const char *result)
{
	a->status = status;
	a->body = text;
	a->type = "text/plain";
	snprintf(a->result, sizeof(a->result), "%s", result);
}

/* A canonical identity ("%x" of a nonzero 64-bit value): 1, else 0. */
static int canonical_id(const char *s, uint64_t *id)
{
	char back[SRUP_ID_TEXT_MAX];

	if (s == NULL || strlen(s) == 0 || strlen(s) > 16 ||
	    srup_id_parse(s, strlen(s), id) != SRUP_OK || *id == 0 ||
	    srup_id_format(*id, back, sizeof(back)) != SRUP_OK) {
		return 0;
	}
	return strcmp(back, s) == 0;
}

/* The string member name of o, or NULL with a 400 answered. */
static const char *need_str(struct answer *a, json_t *o, const char *name)
{
	json_t *v = json_object_get(o, name);
	char why[96];

	if (!json_is_string(v)) {
		snprintf(why, sizeof(why), "\"%s\" is missing or not a string", name);
		answer_error(a, 400, why);
		return NULL;
	}
	return json_string_value(v);
}

/* The key record of id: 1 found (*pem malloc'd), 0 not, -1 error. */
static int store_key(uint64_t id, struct srupb_keyrec *rec, char **pem)
{
	bool found = false;
	enum srup_err e;

	pthread_mutex_lock(&R.store_lock);
	e = srupb_store_key_get(R.store, id, rec, pem, &found);
	pthread_mutex_unlock(&R.store_lock);
	if (e != SRUP_OK) {
		return -1;
	}
	return found ? 1 : 0;
}

static enum srupb_role role_of_type(const char *type)
{
	if (strcmp(type, "default") == 0 || strcmp(type, "device") == 0 || strcmp(type, "RSYND") == 0) {
		return SRUPB_ROLE_DEVICE;
	}
	if (strcmp(type, "observer") == 0) {
		return SRUPB_ROLE_OBSERVER;
	}
	return SRUPB_ROLE_NONE;
}

/* Add id with pem (canonical) and role: 201, or the error answered. */
static int add_key(struct answer *a, uint64_t id, enum srupb_role role, const char *pem)
{
	enum srupb_add_result res = SRUPB_ADD_NEW;
	struct srupb_keyrec old;
	enum srup_err e;

	memset(&old, 0, sizeof(old));
	pthread_mutex_lock(&R.store_lock);
	e = srupb_store_key_add(R.store, id, role, pem, strlen(pem), false, &res, &old);
	pthread_mutex_unlock(&R.store_lock);
	if (e != SRUP_OK) {
		answer_error(a, 500, "the store refused the write");
		return -1;
	}
	if (res == SRUPB_ADD_REVOKED) {
		answer_error(a, 409, "this identity is revoked");
		return -1;
	}
	if (res == SRUPB_ADD_EXISTS) {
		/* The same key again is a repeated registration; another key is a takeover. */
		struct srupb_keyrec rec;
		char *cur = NULL;
		int same = store_key(id, &rec, &cur) == 1 && strcmp(cur, pem) == 0 && rec.role == role;

		free(cur);
		if (!same) {
			answer_error(a, 409, "this identity is registered with another key");
			return -1;
		}
	}
	return 0;
}

static void ep_status(struct answer *a)
{
	answer_json(a, 200, json_pack("{s:b, s:s}", "active", 1, "identity", R.cfg.identity_text),
	            "ok");
}

static void ep_register(struct answer *a, json_t *in)
{
	const char *id_s = need_str(a, in, "identity");
	const char *key_s = id_s != NULL ? need_str(a, in, "key") : NULL;
	json_t *type_v = json_object_get(in, "type");
	const char *type = "default";
	unsigned char *der = NULL;
	size_t der_len = 0;
	char *pem = NULL;
	char *canon = NULL;
	char *c2_pem = NULL;
	char *c2_body = NULL;
	struct srupb_keyrec rec;
	enum srupb_role role;
	const char *why;
	uint64_t id;

	if (key_s == NULL) {
		return;
	}
	snprintf(a->identity, sizeof(a->identity), "%.16s", id_s);
	if (!canonical_id(id_s, &id)) {
		answer_error(a, 400,
		             "identity is not a 64-bit id in canonical form (lowercase hex, "
		             "no leading zeros)");
		return;
	}
	if (type_v != NULL && !json_is_string(type_v)) {
		answer_error(a, 400, "\"type\" is not a string");
		return;
	}
	if (type_v != NULL) {
		type = json_string_value(type_v);
	}
	role = role_of_type(type);
	if (role == SRUPB_ROLE_NONE) {
		answer_error(a, 400, "unknown type (default, device, observer, RSYND)");
		return;
	}
	if (b64_decode(key_s, strlen(key_s), &der, &der_len) != 0) {
		answer_error(a, 400, "key is not base64");
		return;
	}
	free(der);
	pem = b64_body_to_pem(key_s);
	why = pem != NULL ? reg_check_key(pem, &canon) : "internal error";
	if (why != NULL) {
		answer_error(a, 400, why);
		goto out;
	}
	{
		/* An identity taken by another key (or revoked) is refused before a token is spent. */
		char *cur = NULL;
		int r = store_key(id, &rec, &cur);
		int clash = r == 1 &&
		            (rec.status != SRUPB_KEY_ACTIVE || strcmp(cur, canon) != 0 || rec.role != role);

		free(cur);
		if (clash) {
			answer_error(a, 409,
			             rec.status != SRUPB_KEY_ACTIVE
			                     ? "this identity is revoked"
			                     : "this identity is registered with another key");
			goto out;
		}
	}
	{
		/* What anyone may make the broker's store hold is bounded: new identities stop here. */
		size_t n = 0;
		struct srupb_keyrec cur_rec;
		char *cur = NULL;
		int exists = store_key(id, &cur_rec, &cur) == 1;
		enum srup_err e;

		free(cur);
		pthread_mutex_lock(&R.store_lock);
		e = srupb_store_key_count(R.store, &n);
		pthread_mutex_unlock(&R.store_lock);
		if (!exists && (e != SRUP_OK || n >= R.cfg.max_keys)) {
			answer_error(a, 507, "the registry is full (max_keys): no new identity is taken");
			goto out;
		}
	}
	if (strcmp(R.cfg.mode, "token") == 0) {
		json_t *t = json_object_get(in, "token");
		int r;

		if (!json_is_string(t)) {
			answer_error(a, 403, "this registry needs an enrollment token (\"token\")");
			goto out;
		}
		r = reg_token_consume(R.cfg.tokens_file, json_string_value(t));
		if (r != 1) {
			answer_error(a, r == 0 ? 403 : 500,
			             r == 0 ? "the enrollment token is not valid (or already used)"
			                    : "the tokens file cannot be read");
			goto out;
		}
	}
	if (store_key(R.cfg.default_c2, &rec, &c2_pem) != 1 || rec.status != SRUPB_KEY_ACTIVE) {
		answer_error(a, 503, "the default C2 server is not registered");
		goto out;
	}
	/* base64 of the whole PEM, on one line: what the reference's client keeps for a remote key
	 * (spec section 8, item 12); srup-device accepts it and a bare key body alike. */
	c2_body = b64_encode((const unsigned char *)c2_pem, strlen(c2_pem), 0);
	if (c2_body == NULL || add_key(a, id, role, canon) != 0) {
		if (c2_body == NULL) {
			answer_error(a, 500, "internal error");
		}
		goto out;
	}
	answer_json(a, 201,
	            json_pack("{s:s, s:s, s:s}", "broker", R.cfg.broker_url, "key", c2_body,
	                      "default_c2", R.cfg.default_c2_text),
	            role == SRUPB_ROLE_OBSERVER ? "registered observer" : "registered device");
out:
	free(pem);
	free(canon);
	free(c2_pem);
	free(c2_body);
}

/* The registered, active key of the request's identity; NULL with the error answered. */
static char *registered_key(struct answer *a, const char *id_s, uint64_t *id)
{
	struct srupb_keyrec rec;
	char *pem = NULL;
	int r;

	snprintf(a->identity, sizeof(a->identity), "%.16s", id_s);
	if (!canonical_id(id_s, id)) {
		answer_error(a, 400, "identity is not a 64-bit id in canonical form");
		return NULL;
	}
	r = store_key(*id, &rec, &pem);
	if (r != 1 || rec.status != SRUPB_KEY_ACTIVE) {
		free(pem);
		answer_error(a, r < 0 ? 500 : 404, r < 0 ? "store error" : "identity not registered");
		return NULL;
	}
	return pem;
}

/* Decode the base64 signature member; NULL with the error answered. */
static unsigned char *signature(struct answer *a, json_t *in, size_t *len)
{
	const char *s = need_str(a, in, "signature");
	unsigned char *sig = NULL;

	if (s != NULL && b64_decode(s, strlen(s), &sig, len) != 0) {
		answer_error(a, 400, "signature is not base64");
		return NULL;
	}
	return sig;
}

static void ep_validate(struct answer *a, json_t *in)
{
	const char *id_s = need_str(a, in, "identity");
	unsigned char *sig = NULL;
	size_t slen = 0;
	char *pem = NULL;
	char *mine = NULL;
	uint64_t id;

	if (id_s == NULL || (pem = registered_key(a, id_s, &id)) == NULL ||
	    (sig = signature(a, in, &slen)) == NULL) {
		goto out;
	}
	if (!reg_pss_verify(pem, (const unsigned char *)id_s, strlen(id_s), sig, slen)) {
		answer_error(a, 403, "the signature does not verify with the registered key");
		goto out;
	}
	mine = b64_pss_sign(R.sign_key, R.cfg.identity_text, strlen(R.cfg.identity_text), 0);
	if (mine == NULL) {
		answer_error(a, 500, "internal error");
		goto out;
	}
	answer_json(a, 200, json_pack("{s:s, s:s}", "identity", R.cfg.identity_text, "signature", mine),
	            "validated");
out:
	free(sig);
	free(pem);
	free(mine);
}

static void ep_access(struct answer *a, json_t *in)
{
	const char *id_s = need_str(a, in, "identity");
	const char *csr64 = id_s != NULL ? need_str(a, in, "csr") : NULL;
	unsigned char *csr = NULL;
	size_t csr_len = 0;
	unsigned char *sig = NULL;
	size_t slen = 0;
	char *pem = NULL;
	char *cert = NULL;
	char *cert64 = NULL;
	char *ca64 = NULL;
	const char *why = NULL;
	uint64_t id;

	if (csr64 == NULL || (pem = registered_key(a, id_s, &id)) == NULL ||
	    (sig = signature(a, in, &slen)) == NULL) {
		goto out;
	}
	if (b64_decode(csr64, strlen(csr64), &csr, &csr_len) != 0) {
		answer_error(a, 400, "csr is not base64");
		goto out;
	}
	if (!reg_pss_verify(pem, csr, csr_len, sig, slen)) {
		answer_error(a, 403, "the signature over the CSR does not verify with the registered key");
		goto out;
	}
	cert = reg_issue_cert((const char *)csr, csr_len, id_s, R.ca, R.ca_key, &why);
	if (cert == NULL) {
		answer_error(a, strcmp(why, "internal error") == 0 ? 500 : 403, why);
		goto out;
	}
	cert64 = b64_encode((const unsigned char *)cert, strlen(cert), 1);
	ca64 = b64_encode((const unsigned char *)R.ca_pem, strlen(R.ca_pem), 1);
	if (cert64 == NULL || ca64 == NULL) {
		answer_error(a, 500, "internal error");
		goto out;
	}
	answer_json(a, 200, json_pack("{s:s, s:s}", "certificate", cert64, "CA_certificate", ca64),
	            "certificate issued");
out:
	free(csr);
	free(sig);
	free(pem);
	free(cert);
	free(cert64);
	free(ca64);
}

static void ep_get(struct answer *a, const char *what, const char *id_s)
{
	struct srupb_keyrec rec;
	char *pem = NULL;
	uint64_t id;
	int r;

	snprintf(a->identity, sizeof(a->identity), "%.16s", id_s);
	if (!canonical_id(id_s, &id)) {
		answer_error(a, 400, "not a 64-bit id in canonical form");
		return;
	}
	r = store_key(id, &rec, &pem);
	if (r < 0) {
		answer_error(a, 500, "store error");
	} else if (r == 0 || rec.status != SRUPB_KEY_ACTIVE) {
		answer_error(a, 404, "unknown identity");
	} else if (strcmp(what, "get_key") == 0) {
		answer_text(a, 200, b64_encode((const unsigned char *)pem, strlen(pem), 1), "ok");
	} else if (strcmp(what, "get_type") == 0) {
		const char *t = rec.role == SRUPB_ROLE_SERVER     ? "server"
		                : rec.role == SRUPB_ROLE_OBSERVER ? "observer"
		                                                  : "default";
		answer_text(a, 200, strdup(t), "ok");
	} else { /* c2_check */
		if (rec.role == SRUPB_ROLE_SERVER) {
			answer_json(a, 200, json_pack("{s:s}", "identity", id_s), "known server");
		} else {
			answer_error(a, 404, "not a server");
		}
	}
	free(pem);
}

/* POST c2/: a server registers with the token the registry's operator issued for its key
 * (`srup-registry token c2 --key PUB.pem`): a PSS signature by the registry's key over the
 * server's public key PEM (canonical form). */
static void ep_c2(struct answer *a, json_t *in)
{
	const char *id_s = need_str(a, in, "identity");
	const char *key_s = id_s != NULL ? need_str(a, in, "key") : NULL;
	unsigned char *sig = NULL;
	size_t slen = 0;
	char *pem = NULL;
	char *canon = NULL;
	const char *why;
	uint64_t id;

	if (key_s == NULL) {
		return;
	}
	snprintf(a->identity, sizeof(a->identity), "%.16s", id_s);
	if (!canonical_id(id_s, &id)) {
		answer_error(a, 400, "identity is not a 64-bit id in canonical form");
		return;
	}
	if ((sig = signature(a, in, &slen)) == NULL) {
		return;
	}
	pem = b64_body_to_pem(key_s);
	why = pem != NULL ? reg_check_key(pem, &canon) : "internal error";
	if (why != NULL) {
		answer_error(a, 400, why);
		goto out;
	}
	if (!reg_pss_verify_key(R.sign_key, (const unsigned char *)canon, strlen(canon), sig, slen)) {
		answer_error(a, 403, "the server token does not verify (ask the registry's operator)");
		goto out;
	}
	if (add_key(a, id, SRUPB_ROLE_SERVER, canon) == 0) {
		answer_json(a, 201, json_pack("{s:s}", "identity", id_s), "registered server");
	}
out:
	free(sig);
	free(pem);
	free(canon);
}

static void dispatch(struct answer *a, const char *method, const char *ep, const char *body,
                     size_t len)
{
	int post = strcmp(method, "POST") == 0;
	json_t *in = NULL;
	json_error_t je;
	const char *slash = strchr(ep, '/');

	if (!post && strcmp(method, "GET") != 0) {
		answer_error(a, 405, "method not allowed");
		return;
	}
	if (!post && strcmp(ep, "status") == 0) {
		ep_status(a);
		return;
	}
	if (!post && slash != NULL && strchr(slash + 1, '/') == NULL) {
		char what[16];
		size_t wl = (size_t)(slash - ep);

		if (wl < sizeof(what)) {
			memcpy(what, ep, wl);
			what[wl] = '\0';
			if (strcmp(what, "get_key") == 0 || strcmp(what, "get_type") == 0 ||
			    strcmp(what, "c2_check") == 0) {
				ep_get(a, what, slash + 1);
				return;
			}
		}
	}
	if (!post) {
		answer_error(a, 404, "no such endpoint");
		return;
	}
	if (strcmp(ep, "register") != 0 && strcmp(ep, "validate") != 0 && strcmp(ep, "access") != 0 &&
	    strcmp(ep, "c2/") != 0 && strcmp(ep, "c2") != 0) {
		answer_error(a, 404, "no such endpoint");
		return;
	}
	in = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
	if (in == NULL || !json_is_object(in)) {
		char why[260];

		snprintf(why, sizeof(why), "the body is not a JSON object (line %d column %d: %s)", je.line,
		         je.column, in == NULL ? je.text : "not an object");
		json_decref(in);
		answer_error(a, 400, why);
		return;
	}
	if (strcmp(ep, "register") == 0) {
		ep_register(a, in);
	} else if (strcmp(ep, "validate") == 0) {
		ep_validate(a, in);
	} else if (strcmp(ep, "access") == 0) {
		ep_access(a, in);
	} else {
		ep_c2(a, in);
	}
	json_decref(in);
}

static void client_address(struct MHD_Connection *conn, char *out, size_t cap)
{
	const union MHD_ConnectionInfo *ci =
	        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci != NULL ? ci->client_addr : NULL;

	snprintf(out, cap, "?");
	if (sa != NULL && sa->sa_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)cap);
	} else if (sa != NULL && sa->sa_family == AF_INET6) {
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)cap);
	}
}

static enum MHD_Result send_answer(struct MHD_Connection *conn, struct answer *a)
{
	struct MHD_Response *resp;
	enum MHD_Result rc;
	const char *b = a->body != NULL ? a->body : "";

	resp = MHD_create_response_from_buffer(strlen(b), (void *)b, MHD_RESPMEM_MUST_COPY);
	if (resp == NULL) {
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", a->type != NULL ? a->type : "text/plain");
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	rc = MHD_queue_response(conn, a->status, resp);
	MHD_destroy_response(resp);
	return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
	struct req *r = *con_cls;
	struct answer a;
	char addr[48];
	const char *ep = NULL;
	enum MHD_Result rc;

	(void)cls;
	(void)version;
	if (r == NULL) {
		const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");

		r = calloc(1, sizeof(*r));
		if (r == NULL) {
			return MHD_NO;
		}
		*con_cls = r;
		client_address(conn, addr, sizeof(addr));
		r->limited = !rate_ok(addr);
		if (cl != NULL && strtoull(cl, NULL, 10) > R.cfg.max_body) {
			r->too_large = 1;
		}
		if (r->limited || r->too_large) {
			/* Answer now: the body is not read. */
			goto answer;
		}
		return MHD_YES;
	}
	if (*upload_size > 0) {
		if (!r->too_large) {
			if (r->len + *upload_size > R.cfg.max_body) {
				r->too_large = 1;
				free(r->body);
				r->body = NULL;
			} else {
				char *nb = realloc(r->body, r->len + *upload_size + 1);

				if (nb == NULL) {
					return MHD_NO;
				}
				memcpy(nb + r->len, upload, *upload_size);
				r->body = nb;
				r->len += *upload_size;
			}
		}
		*upload_size = 0;
		return MHD_YES;
	}
answer:
	memset(&a, 0, sizeof(a));
	client_address(conn, addr, sizeof(addr));
	if (strncmp(url, "/KeyEx/register/", 16) == 0) {
		ep = url + 16;
	} else if (strncmp(url, "/register/", 10) == 0) {
		ep = url + 10;
	}
	if (r->limited) {
		answer_error(&a, 429, "too many requests from this address");
	} else if (r->too_large) {
		answer_error(&a, 413, "request body too large");
	} else if (ep == NULL) {
		answer_error(&a, 404, "no such endpoint");
	} else {
		dispatch(&a, method, ep, r->body != NULL ? r->body : "", r->len);
	}
	rc = send_answer(conn, &a);
	log_request(addr, method, url, a.identity[0] != '\0' ? a.identity : NULL, a.status, a.result);
	free(a.body);
	return rc;
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

/* ---- main ------------------------------------------------------------------------------------ */

static void usage(FILE *to)
{
	fprintf(to, "usage: srup-registry --config FILE run\n"
	            "       srup-registry --config FILE token new [--count N]\n"
	            "       srup-registry --config FILE token c2 --key SERVER_PUB.pem\n"
	            "       srup-registry --help | --version\n"
	            "The registration service (KeyEx API, under /KeyEx/register/ and /register/):\n"
	            "status, register, validate, access, get_key/<id>, get_type/<id>, c2_check/<id>,\n"
	            "c2/. Registered keys are written into the broker's store at once. `token new`\n"
	            "makes one-time enrollment tokens (mode token); `token c2` the token a C2 server\n"
	            "registers itself with (its registry_token).\n\n");
	reg_config_help(to);
}

static int load_all(void)
{
	char err[256];
	enum srup_err e;

	R.sign_key = reg_load_private(R.cfg.signing_key);
	if (R.sign_key == NULL || EVP_PKEY_get_base_id(R.sign_key) != EVP_PKEY_RSA) {
		fprintf(stderr, "srup-registry: signing_key %s: not an RSA private key\n",
		        R.cfg.signing_key);
		return -1;
	}
	R.ca = reg_load_cert(R.cfg.ca_cert);
	R.ca_key = reg_load_private(R.cfg.ca_key);
	R.ca_pem = reg_read_file(R.cfg.ca_cert, 1 << 20);
	if (R.ca == NULL || R.ca_key == NULL || R.ca_pem == NULL ||
	    X509_check_private_key(R.ca, R.ca_key) != 1) {
		fprintf(stderr, "srup-registry: ca_cert %s / ca_key %s: not a certificate and its key\n",
		        R.cfg.ca_cert, R.cfg.ca_key);
		return -1;
	}
	e = srupb_store_open(R.cfg.store, false, SRUPB_SYNC_FSYNC, &R.store, err, sizeof(err));
	if (e != SRUP_OK) {
		fprintf(stderr, "srup-registry: store %s: %s\n", R.cfg.store, err);
		return -1;
	}
	return 0;
}

static int run(void)
{
	struct MHD_Daemon *d;
	struct sockaddr_in sa;
	char *cert = NULL;
	char *key = NULL;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL;
	struct sigaction act;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)R.cfg.listen_port);
	if (inet_pton(AF_INET, R.cfg.listen_address, &sa.sin_addr) != 1) {
		fprintf(stderr, "srup-registry: listen_address %s is not an IPv4 address\n",
		        R.cfg.listen_address);
		return 3;
	}
	if (!R.cfg.plain_http) {
		cert = reg_read_file(R.cfg.tls_cert, 1 << 20);
		key = reg_read_file(R.cfg.tls_key, 1 << 20);
		if (cert == NULL || key == NULL) {
			fprintf(stderr, "srup-registry: cannot read tls_cert / tls_key\n");
			free(cert);
			free(key);
			return 3;
		}
		flags |= MHD_USE_TLS;
	}
	d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, &sa,
	                     MHD_OPTION_THREAD_POOL_SIZE, 4u, MHD_OPTION_CONNECTION_TIMEOUT,
	                     R.cfg.timeout_s, MHD_OPTION_CONNECTION_LIMIT, R.cfg.max_connections,
	                     MHD_OPTION_PER_IP_CONNECTION_LIMIT, R.cfg.per_address_connections,
	                     MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
	                     MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL,
	                     R.cfg.plain_http ? MHD_OPTION_END : MHD_OPTION_HTTPS_MEM_CERT, cert,
	                     MHD_OPTION_HTTPS_MEM_KEY, key, MHD_OPTION_END);
	if (d == NULL) {
		fprintf(stderr, "srup-registry: cannot listen on %s:%d\n", R.cfg.listen_address,
		        R.cfg.listen_port);
		free(cert);
		free(key);
		return 3;
	}
	memset(&act, 0, sizeof(act));
	act.sa_handler = on_signal;
	sigaction(SIGTERM, &act, NULL);
	sigaction(SIGINT, &act, NULL);
	sigaction(SIGHUP, &act, NULL);
	signal(SIGPIPE, SIG_IGN);
	fprintf(stderr, "srup-registry: %s %s on %s:%d, mode %s, store %s\n", R.cfg.identity_text,
	        R.cfg.plain_http ? "plain HTTP (tests only)" : "HTTPS", R.cfg.listen_address,
	        R.cfg.listen_port, R.cfg.mode, R.cfg.store);
	sd_notifyf(0, "READY=1\nSTATUS=%s on %s:%d, mode %s", R.cfg.plain_http ? "HTTP" : "HTTPS",
	           R.cfg.listen_address, R.cfg.listen_port, R.cfg.mode);
	while (!stop_flag) {
		pause();
		if (reopen_flag) {
			reopen_flag = 0;
			reopen_log();
		}
	}
	sd_notify(0, "STOPPING=1");
	MHD_stop_daemon(d);
	free(cert);
	free(key);
	return 0;
}

/* `token c2 --key PUB.pem`: the token a server presents to c2/. */
static int token_c2(const char *key_path)
{
	char *pem = reg_read_file(key_path, 1 << 16);
	char *canon = NULL;
	char *tok;
	const char *why;

	if (pem == NULL) {
		fprintf(stderr, "srup-registry: cannot read %s\n", key_path);
		return 1;
	}
	why = reg_check_key(pem, &canon);
	free(pem);
	if (why != NULL) {
		fprintf(stderr, "srup-registry: %s: %s\n", key_path, why);
		return 1;
	}
	tok = b64_pss_sign(R.sign_key, canon, strlen(canon), 0);
	free(canon);
	if (tok == NULL) {
		return 1;
	}
	printf("%s\n", tok);
	free(tok);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	        {"config", required_argument, NULL, 'c'}, {"count", required_argument, NULL, 'n'},
	        {"key", required_argument, NULL, 'k'},    {"help", no_argument, NULL, 'h'},
	        {"version", no_argument, NULL, 'V'},      {NULL, 0, NULL, 0}};
	const char *config = NULL;
	const char *key = NULL;
	unsigned long count = 1;
	int o;
	int rc;

	opterr = 0;
	while ((o = getopt_long(argc, argv, ":c:n:k:hV", opts, NULL)) != -1) {
		switch (o) {
			case 'c':
				config = optarg;
				break;
			case 'n': {
				char *end = NULL;

				count = strtoul(optarg, &end, 10);
				if (*end != '\0' || count == 0 || count > 10000) {
					fprintf(stderr, "srup-registry: --count takes 1..10000\n");
					return 3;
				}
				break;
			}
			case 'k':
				key = optarg;
				break;
			case 'h':
				usage(stdout);
				return 0;
			case 'V':
				printf("srup-registry %s\n", SRUP_REGISTRY_VERSION);
				return 0;
			default:
				fprintf(stderr, "srup-registry: bad option '%s' (try --help)\n", argv[optind - 1]);
				return 3;
		}
	}
	if (config == NULL || optind >= argc) {
		usage(stderr);
		return 3;
	}
	if (reg_config_load(config, &R.cfg) != 0) {
		return 3;
	}
	pthread_mutex_init(&R.store_lock, NULL);
	pthread_mutex_init(&R.log_lock, NULL);
	pthread_mutex_init(&R.rate_lock, NULL);
	if (strcmp(argv[optind], "token") == 0) {
		if (optind + 1 >= argc) {
			usage(stderr);
			return 3;
		}
		if (strcmp(argv[optind + 1], "new") == 0) {
			if (R.cfg.tokens_file[0] == '\0') {
				fprintf(stderr, "srup-registry: %s has no tokens_file\n", config);
				return 3;
			}
			return reg_tokens_new(R.cfg.tokens_file, (unsigned)count, stdout) == 0 ? 0 : 1;
		}
		if (strcmp(argv[optind + 1], "c2") == 0 && key != NULL) {
			R.sign_key = reg_load_private(R.cfg.signing_key);
			if (R.sign_key == NULL) {
				fprintf(stderr, "srup-registry: cannot load signing_key\n");
				return 3;
			}
			rc = token_c2(key);
			EVP_PKEY_free(R.sign_key);
			return rc;
		}
		usage(stderr);
		return 3;
	}
	if (strcmp(argv[optind], "run") != 0 || optind + 1 != argc) {
		usage(stderr);
		return 3;
	}
	R.log = stderr;
	if (R.cfg.log_file[0] != '\0') {
		R.log = fopen(R.cfg.log_file, "a");
		if (R.log == NULL) {
			fprintf(stderr, "srup-registry: log_file %s: %s\n", R.cfg.log_file, strerror(errno));
			return 3;
		}
	}
	if (load_all() != 0) {
		return 3;
	}
	rc = run();
	srupb_store_close(R.store);
	X509_free(R.ca);
	EVP_PKEY_free(R.ca_key);
	EVP_PKEY_free(R.sign_key);
	free(R.ca_pem);
	if (R.log != stderr) {
		fclose(R.log);
	}
	return rc;
}
