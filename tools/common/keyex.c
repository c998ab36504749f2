/* SPDX-License-Identifier: MIT
 * keyex.c - client of a KeyEx-compatible registration service (spec section 5.4) on libcurl
 * and jansson: status, register, validate, access, c2_check, c2. Responses are capped in size
 * and every field is type-checked before use. */
#include "keyex.h"

#include "b64.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#define RESP_MAX (256 * 1024)

struct buf {
	char *p;
	size_t n;
	int over;
};

static void seterr(struct keyex *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void seterr(struct keyex *k, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(k->err, sizeof(k->err), fmt, ap);
	va_end(ap);
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
	struct buf *b = ud;
	size_t n = size * nmemb;
	char *p;

	if (b->n + n > RESP_MAX) {
		b->over = 1;
		return 0;
	}
	p = realloc(b->p, b->n + n + 1);
	if (p == NULL) {
		return 0;
	}
	memcpy(p + b->n, data, n);
	b->p = p;
	b->n += n;
	b->p[b->n] = '\0';
	return n;
}

int keyex_init(struct keyex *k, const char *url, const char *ca)
{
	size_t n;

	memset(k, 0, sizeof(*k));
	if (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0) {
		seterr(k, "registry URL must start with https:// (or http:// for tests): %s", url);
		return -1;
	}
	n = strlen(url);
	while (n > 0 && url[n - 1] == '/') {
		n--;
	}
	if (n >= sizeof(k->url)) {
		seterr(k, "registry URL too long");
		return -1;
	}
	memcpy(k->url, url, n);
	k->url[n] = '\0';
	k->ca = ca != NULL && ca[0] != '\0' ? ca : NULL;
	k->timeout_s = 20;
	return 0;
}

/* One request to <url>/KeyEx/register/<path>; body NULL: GET, else POST of JSON body.
 * The response body (NUL-terminated) in *resp, malloc'd. */
static int request(struct keyex *k, const char *path, const char *body, char **resp)
{
	char url[sizeof(k->url) + 160];
	struct buf b = {NULL, 0, 0};
	struct curl_slist *hdr = NULL;
	CURL *c;
	CURLcode rc;

	*resp = NULL;
	k->http_status = 0;
	snprintf(url, sizeof(url), "%s/KeyEx/register/%s", k->url, path);
	c = curl_easy_init();
	if (c == NULL) {
		seterr(k, "curl_easy_init failed");
		return -1;
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https,http");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, k->timeout_s);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, k->timeout_s);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	if (k->ca != NULL) {
		curl_easy_setopt(c, CURLOPT_CAINFO, k->ca);
	}
	if (body != NULL) {
		hdr = curl_slist_append(hdr, "Content-Type: application/json");
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	}
	rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &k->http_status);
	curl_easy_cleanup(c);
	curl_slist_free_all(hdr);
	if (rc != CURLE_OK) {
		seterr(k, "%s: %s", url, b.over ? "response too large" : curl_easy_strerror(rc));
		free(b.p);
		return -1;
	}
	*resp = b.p != NULL ? b.p : strdup("");
	return *resp != NULL ? 0 : -1;
}

/* A short printable excerpt of a response, for error messages. */
static void excerpt(const char *s, char *out, size_t cap)
{
	size_t i;
	size_t n = 0;

	for (i = 0; s != NULL && s[i] != '\0' && n + 1 < cap && i < 160; i++) {
		out[n++] = isprint((unsigned char)s[i]) ? s[i] : ' ';
	}
	out[n] = '\0';
}

/* Request and expect HTTP status want with a JSON object body (*out, owned). */
static int request_json(struct keyex *k, const char *path, json_t *req, long want, json_t **out)
{
	char *body = NULL;
	char *resp = NULL;
	json_error_t je;
	char ex[192];
	int rc = -1;

	*out = NULL;
	if (req != NULL) {
		body = json_dumps(req, JSON_COMPACT);
		if (body == NULL) {
			seterr(k, "cannot encode the request");
			return -1;
		}
	}
	if (request(k, path, body, &resp) != 0) {
		goto out;
	}
	if (k->http_status != want) {
		excerpt(resp, ex, sizeof(ex));
		seterr(k, "%s: HTTP %ld (expected %ld): %s", path, k->http_status, want, ex);
		goto out;
	}
	*out = json_loads(resp, JSON_REJECT_DUPLICATES, &je);
	if (*out == NULL || !json_is_object(*out)) {
		seterr(k, "%s: the answer is not a JSON object (line %d column %d: %s)", path, je.line,
		       je.column, *out == NULL ? je.text : "not an object");
		json_decref(*out);
		*out = NULL;
		goto out;
	}
	rc = 0;
out:
	free(body);
	free(resp);
	return rc;
}

/* The string member name of o, or NULL (with err set). */
static const char *member_str(struct keyex *k, json_t *o, const char *name)
{
	json_t *v = json_object_get(o, name);

	if (!json_is_string(v)) {
		seterr(k, "the answer has no string \"%s\"", name);
		return NULL;
	}
	return json_string_value(v);
}

int keyex_status(struct keyex *k, int *active, char *identity, size_t cap)
{
	json_t *o = NULL;
	json_t *a;
	const char *id;

	if (request_json(k, "status", NULL, 200, &o) != 0) {
		return -1;
	}
	a = json_object_get(o, "active");
	id = member_str(k, o, "identity");
	if (!json_is_boolean(a) || id == NULL) {
		if (id != NULL) {
			seterr(k, "status: \"active\" is not a boolean");
		}
		json_decref(o);
		return -1;
	}
	*active = json_is_true(a);
	snprintf(identity, cap, "%s", id);
	json_decref(o);
	return 0;
}

/* ---- keys, base64, signatures ---------------------------------------------------------------- */

char *keyex_key_body(const struct srup_key *key)
{
	char *pem = NULL;
	size_t len = 0;
	char *body;

	if (srup_key_public_pem(key, &pem, &len) != SRUP_OK) {
		return NULL;
	}
	body = b64_pem_to_body(pem);
	free(pem);
	return body;
}

char *keyex_body_to_pem(const char *body)
{
	unsigned char *dec = NULL;
	size_t dlen = 0;

	if (b64_decode(body, strlen(body), &dec, &dlen) != 0) {
		return NULL;
	}
	if (dlen > 11 && memcmp(dec, "-----BEGIN ", 11) == 0) {
		return (char *)dec; /* base64 of a whole PEM */
	}
	free(dec);
	return b64_body_to_pem(body);
}

/* ---- the calls ------------------------------------------------------------------------------- */

int keyex_register(struct keyex *k, const char *id, const struct srup_key *key, const char *type,
                   const char *enroll_token, struct keyex_reg *out)
{
	char *body = keyex_key_body(key);
	json_t *req;
	json_t *o = NULL;
	const char *broker;
	const char *skey;
	const char *c2;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (body == NULL) {
		seterr(k, "cannot export our public key");
		return -1;
	}
	req = json_pack("{s:s, s:s, s:s}", "identity", id, "key", body, "type", type);
	free(body);
	if (req == NULL) {
		seterr(k, "cannot build the request");
		return -1;
	}
	if (enroll_token != NULL && enroll_token[0] != '\0') {
		json_object_set_new(req, "token", json_string(enroll_token));
	}
	if (request_json(k, "register", req, 201, &o) != 0) {
		goto out;
	}
	broker = member_str(k, o, "broker");
	skey = broker != NULL ? member_str(k, o, "key") : NULL;
	/* The reference's client needs default_c2 as well (spec section 5.4). */
	c2 = skey != NULL ? member_str(k, o, "default_c2") : NULL;
	if (c2 == NULL) {
		goto out;
	}
	if (strlen(broker) >= sizeof(out->broker) || strlen(c2) >= sizeof(out->default_c2)) {
		seterr(k, "register: broker or default_c2 too long");
		goto out;
	}
	snprintf(out->broker, sizeof(out->broker), "%s", broker);
	snprintf(out->default_c2, sizeof(out->default_c2), "%s", c2);
	out->server_key_pem = keyex_body_to_pem(skey);
	if (out->server_key_pem == NULL) {
		seterr(k, "register: the server key is not base64");
		goto out;
	}
	rc = 0;
out:
	json_decref(req);
	json_decref(o);
	return rc;
}

void keyex_reg_free(struct keyex_reg *r)
{
	free(r->server_key_pem);
	r->server_key_pem = NULL;
}

int keyex_validate(struct keyex *k, const char *id, const struct srup_key *key)
{
	char *sig = b64_pss_sign(srup_key_evp(key), id, strlen(id), 1);
	json_t *req;
	json_t *o = NULL;
	int rc;

	if (sig == NULL) {
		seterr(k, "cannot sign our identity");
		return -1;
	}
	req = json_pack("{s:s, s:s}", "identity", id, "signature", sig);
	free(sig);
	rc = req != NULL ? request_json(k, "validate", req, 200, &o) : -1;
	json_decref(req);
	json_decref(o);
	return rc;
}

/* Decode base64 member name of o, which must be a PEM (it starts with -----BEGIN). */
static char *member_pem(struct keyex *k, json_t *o, const char *name)
{
	const char *s = member_str(k, o, name);
	unsigned char *dec = NULL;
	size_t n = 0;

	if (s == NULL) {
		return NULL;
	}
	if (b64_decode(s, strlen(s), &dec, &n) != 0 || n < 11 || memcmp(dec, "-----BEGIN ", 11) != 0) {
		seterr(k, "\"%s\" is not base64 of a PEM", name);
		free(dec);
		return NULL;
	}
	return (char *)dec;
}

int keyex_access(struct keyex *k, const char *id, const struct srup_key *key, const char *csr_pem,
                 char **cert_pem, char **ca_pem)
{
	char *csr64 = b64_encode((const unsigned char *)csr_pem, strlen(csr_pem), 1);
	char *sig = b64_pss_sign(srup_key_evp(key), csr_pem, strlen(csr_pem), 1);
	json_t *req = NULL;
	json_t *o = NULL;
	int rc = -1;

	*cert_pem = NULL;
	*ca_pem = NULL;
	if (csr64 == NULL || sig == NULL) {
		seterr(k, "cannot encode or sign the CSR");
		goto out;
	}
	req = json_pack("{s:s, s:s, s:s}", "identity", id, "csr", csr64, "signature", sig);
	if (req == NULL || request_json(k, "access", req, 200, &o) != 0) {
		goto out;
	}
	*cert_pem = member_pem(k, o, "certificate");
	*ca_pem = *cert_pem != NULL ? member_pem(k, o, "CA_certificate") : NULL;
	if (*ca_pem == NULL) {
		free(*cert_pem);
		*cert_pem = NULL;
		goto out;
	}
	rc = 0;
out:
	free(csr64);
	free(sig);
	json_decref(req);
	json_decref(o);
	return rc;
}

int keyex_c2_check(struct keyex *k, const char *id)
{
	char path[96];
	char *resp = NULL;

	snprintf(path, sizeof(path), "c2_check/%s", id);
	if (request(k, path, NULL, &resp) != 0) {
		return -1;
	}
	free(resp);
	if (k->http_status == 200) {
		return 1;
	}
	if (k->http_status == 404) {
		return 0;
	}
	seterr(k, "c2_check: HTTP %ld", k->http_status);
	return -1;
}

int keyex_c2_register(struct keyex *k, const char *id, const struct srup_key *key,
                      const char *token)
{
	char *body = keyex_key_body(key);
	char *resp = NULL;
	char *js = NULL;
	json_t *req;
	char ex[192];
	int rc = -1;

	if (body == NULL) {
		seterr(k, "cannot export our public key");
		return -1;
	}
	req = json_pack("{s:s, s:s, s:s}", "identity", id, "key", body, "signature", token);
	free(body);
	js = req != NULL ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	if (js == NULL) {
		seterr(k, "cannot build the request");
		return -1;
	}
	if (request(k, "c2/", js, &resp) == 0) {
		if (k->http_status == 201 || k->http_status == 200) {
			rc = 0;
		} else {
			excerpt(resp, ex, sizeof(ex));
			seterr(k, "c2/: HTTP %ld: %s", k->http_status, ex);
		}
	}
	free(js);
	free(resp);
	return rc;
}
