/* SPDX-License-Identifier: MIT
 * update.c - srup-device's update flow: INITIATE fetches the URL with libcurl (HTTP or HTTPS)
 * in a worker thread and checks the SHA-256; ACTIVATE installs it only for the same token.
 * "Installing" is a rename into update_dir: the lab's devices have no firmware to flash. */
#include "device.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

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
	if (strcmp(devst.update_token, fx->token) == 0) {
		devst.update_ready = status == SRUP_ST_UPDATE_SUCCESS;
		snprintf(devst.update_file, sizeof(devst.update_file), "%s", fx->path);
	}
	dev_send_response(d, fx->token, status);
	if (status == SRUP_ST_UPDATE_FAIL_HTTP_ERROR) {
		/* Paper §3.7: the details follow as two DATA messages on the same token. */
		uint8_t code[4];
		uint32_t v = (uint32_t)http;

		code[0] = (uint8_t)v;
		code[1] = (uint8_t)(v >> 8);
		code[2] = (uint8_t)(v >> 16);
		code[3] = (uint8_t)(v >> 24);
		dev_send_data(d, fx->token, "HTTP_STATUS", code, sizeof(code));
		dev_send_data(d, fx->token, "HTTP_BODY", body.head, body.head_len);
	}
	pthread_mutex_unlock(&d->lock);
	free(fx);
	return NULL;
}

void dev_update_initiate(struct srupd *d, const struct srup_msg *m)
{
	struct fetch *fx;
	pthread_t th;

	fx = calloc(1, sizeof(*fx));
	if (fx == NULL) {
		return;
	}
	fx->d = d;
	dev_token_copy(fx->token, &m->token);
	if (dev_field_text(&m->url, fx->url, sizeof(fx->url)) != 0 ||
	    dev_field_text(&m->digest, fx->digest, sizeof(fx->digest)) != 0 ||
	    d->cfg.update_dir[0] == '\0') {
		srupd_log(SRUPD_WARN, "update: unusable INITIATE (url/digest) or no update_dir");
		dev_send_response(d, fx->token, SRUP_ST_UPDATE_FAIL_SERVER);
		free(fx);
		return;
	}
	snprintf(fx->path, sizeof(fx->path), "%s/%s.download", d->cfg.update_dir, fx->token);
	snprintf(devst.update_token, sizeof(devst.update_token), "%s", fx->token);
	devst.update_ready = 0;
	srupd_log(SRUPD_INFO, "update: fetching %s", fx->url);
	if (pthread_create(&th, NULL, fetch_thread, fx) != 0) {
		dev_send_response(d, fx->token, SRUP_ST_UPDATE_FAIL_SERVER);
		free(fx);
		return;
	}
	pthread_detach(th);
}

void dev_update_activate(struct srupd *d, const struct srup_msg *m)
{
	char tok[SRUP_TOKEN_LEN + 1];
	char dst[SRUPD_PATH_MAX + 32];

	dev_token_copy(tok, &m->token);
	/* Only the open update's token activates (spec §5.5); anything else fails. */
	if (!devst.update_ready || !srupd_token_eq(&m->token, devst.update_token)) {
		srupd_log(SRUPD_WARN, "activate: no verified update for this token");
		dev_send_response(d, tok, SRUP_ST_ACTIVATE_FAIL);
		return;
	}
	snprintf(dst, sizeof(dst), "%s/installed.bin", d->cfg.update_dir);
	if (rename(devst.update_file, dst) != 0) {
		srupd_log(SRUPD_WARN, "activate: cannot install: %s", strerror(errno));
		dev_send_response(d, tok, SRUP_ST_ACTIVATE_FAIL);
		return;
	}
	devst.update_ready = 0;
	devst.update_token[0] = '\0';
	devst.updates_applied++;
	srupd_log(SRUPD_INFO, "activate: update installed as %s", dst);
	dev_send_response(d, tok, SRUP_ST_ACTIVATE_SUCCESS);
}
