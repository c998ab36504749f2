/* SPDX-License-Identifier: MIT
 * config.c - srup-registry's configuration file: key = value lines, '#' comments. Unknown keys,
 * bad values and missing required keys are refused with the file and line. */
#include "registry.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t') {
		s++;
	}
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r')) {
		*--e = '\0';
	}
	return s;
}

static int num(const char *v, unsigned long lo, unsigned long hi, unsigned long *out)
{
	char *end = NULL;
	unsigned long n;

	errno = 0;
	n = strtoul(v, &end, 10);
	if (errno != 0 || end == v || *end != '\0' || n < lo || n > hi) {
		return -1;
	}
	*out = n;
	return 0;
}

static int copy(char *dst, size_t cap, const char *v)
{
	if (strlen(v) >= cap) {
		return -1;
	}
	memcpy(dst, v, strlen(v) + 1);
	return 0;
}

static int set(struct reg_config *c, const char *k, const char *v)
{
	unsigned long n;

	if (strcmp(k, "listen_address") == 0) {
		return copy(c->listen_address, sizeof(c->listen_address), v);
	}
	if (strcmp(k, "listen_port") == 0) {
		return num(v, 1, 65535, &n) == 0 ? (c->listen_port = (int)n, 0) : -1;
	}
	if (strcmp(k, "plain_http") == 0) {
		if (strcmp(v, "yes") != 0 && strcmp(v, "no") != 0) {
			return -1;
		}
		c->plain_http = strcmp(v, "yes") == 0;
		return 0;
	}
	if (strcmp(k, "identity") == 0 || strcmp(k, "default_c2") == 0) {
		uint64_t id;
		int own = strcmp(k, "identity") == 0;

		if (srup_id_parse(v, strlen(v), &id) != SRUP_OK || id == 0) {
			return -1;
		}
		*(own ? &c->identity : &c->default_c2) = id;
		srup_id_format(id, own ? c->identity_text : c->default_c2_text, SRUP_ID_TEXT_MAX);
		return 0;
	}
	if (strcmp(k, "mode") == 0) {
		if (strcmp(v, "open") != 0 && strcmp(v, "token") != 0) {
			return -1;
		}
		return copy(c->mode, sizeof(c->mode), v);
	}
	if (strcmp(k, "rate_limit") == 0) {
		return num(v, 1, 100000, &n) == 0 ? (c->rate = (double)n / 60.0, 0) : -1;
	}
	if (strcmp(k, "rate_burst") == 0) {
		return num(v, 1, 100000, &n) == 0 ? (c->burst = (unsigned)n, 0) : -1;
	}
	if (strcmp(k, "max_body") == 0) {
		return num(v, 1024, 1048576, &n) == 0 ? (c->max_body = n, 0) : -1;
	}
	if (strcmp(k, "timeout") == 0) {
		return num(v, 1, 3600, &n) == 0 ? (c->timeout_s = (unsigned)n, 0) : -1;
	}
	if (strcmp(k, "max_keys") == 0) {
		return num(v, 1, 100000000, &n) == 0 ? (c->max_keys = n, 0) : -1;
	}
	if (strcmp(k, "max_connections") == 0) {
		return num(v, 1, 65536, &n) == 0 ? (c->max_connections = (unsigned)n, 0) : -1;
	}
	if (strcmp(k, "per_address_connections") == 0) {
		return num(v, 1, 65536, &n) == 0 ? (c->per_address_connections = (unsigned)n, 0) : -1;
	}
	{
		static const struct {
			const char *name;
			size_t off;
			size_t cap;
		} strs[] = {
		        {"tls_cert", offsetof(struct reg_config, tls_cert), REG_PATH_MAX},
		        {"tls_key", offsetof(struct reg_config, tls_key), REG_PATH_MAX},
		        {"store", offsetof(struct reg_config, store), REG_PATH_MAX},
		        {"ca_cert", offsetof(struct reg_config, ca_cert), REG_PATH_MAX},
		        {"ca_key", offsetof(struct reg_config, ca_key), REG_PATH_MAX},
		        {"signing_key", offsetof(struct reg_config, signing_key), REG_PATH_MAX},
		        {"broker_url", offsetof(struct reg_config, broker_url), 256},
		        {"tokens_file", offsetof(struct reg_config, tokens_file), REG_PATH_MAX},
		        {"log_file", offsetof(struct reg_config, log_file), REG_PATH_MAX},
		};
		size_t i;

		for (i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
			if (strcmp(k, strs[i].name) == 0) {
				return copy((char *)c + strs[i].off, strs[i].cap, v);
			}
		}
	}
	return -2;
}

int reg_config_load(const char *path, struct reg_config *c)
{
	FILE *f;
	char buf[1024];
	unsigned lineno = 0;
	int rc = 0;

	memset(c, 0, sizeof(*c));
	snprintf(c->path, sizeof(c->path), "%s", path);
	snprintf(c->listen_address, sizeof(c->listen_address), "127.0.0.1");
	c->listen_port = 8443;
	snprintf(c->mode, sizeof(c->mode), "open");
	c->rate = 30.0 / 60.0;
	c->burst = 10;
	c->max_body = 16384;
	c->timeout_s = 10;
	c->max_connections = 256;
	c->per_address_connections = 16;
	c->max_keys = 1000000;
	f = fopen(path, "r");
	if (f == NULL) {
		fprintf(stderr, "srup-registry: %s: %s\n", path, strerror(errno));
		return -1;
	}
	while (fgets(buf, sizeof(buf), f) != NULL) {
		char *line = trim(buf);
		char *eq;
		int r;

		lineno++;
		if (*line == '\0' || *line == '#') {
			continue;
		}
		eq = strchr(line, '=');
		if (eq == NULL) {
			fprintf(stderr, "srup-registry: %s:%u: expected key = value\n", path, lineno);
			rc = -1;
			continue;
		}
		*eq = '\0';
		r = set(c, trim(line), trim(eq + 1));
		if (r == -2) {
			fprintf(stderr, "srup-registry: %s:%u: unknown key '%s' (see --help)\n", path, lineno,
			        trim(line));
			rc = -1;
		} else if (r != 0) {
			fprintf(stderr, "srup-registry: %s:%u: bad value for %s\n", path, lineno, trim(line));
			rc = -1;
		}
	}
	fclose(f);
	{
		static const char *const req[] = {"store", "ca_cert", "ca_key", "signing_key",
		                                  "broker_url"};
		const char *vals[] = {c->store, c->ca_cert, c->ca_key, c->signing_key, c->broker_url};
		size_t i;

		for (i = 0; i < sizeof(req) / sizeof(req[0]); i++) {
			if (vals[i][0] == '\0') {
				fprintf(stderr, "srup-registry: %s: %s is required\n", path, req[i]);
				rc = -1;
			}
		}
	}
	if (c->identity == 0 || c->default_c2 == 0) {
		fprintf(stderr, "srup-registry: %s: identity and default_c2 are required\n", path);
		rc = -1;
	}
	if (!c->plain_http && (c->tls_cert[0] == '\0' || c->tls_key[0] == '\0')) {
		fprintf(stderr,
		        "srup-registry: %s: HTTPS needs tls_cert and tls_key (plain_http = yes only "
		        "for tests)\n",
		        path);
		rc = -1;
	}
	if (strcmp(c->mode, "token") == 0 && c->tokens_file[0] == '\0') {
		fprintf(stderr, "srup-registry: %s: mode token needs tokens_file\n", path);
		rc = -1;
	}
	return rc;
}

void reg_config_help(FILE *to)
{
	fprintf(to,
	        "Config file keys (key = value, '#' comments):\n"
	        "  listen_address   address to listen on (default 127.0.0.1)\n"
	        "  listen_port      TCP port (default 8443)\n"
	        "  tls_cert         PEM certificate of the HTTPS service (required)\n"
	        "  tls_key          its PEM private key (required)\n"
	        "  plain_http       yes: serve plain HTTP instead, for tests only (default no)\n"
	        "  store            the broker's store directory: keys are written there (required)\n"
	        "  ca_cert          CA certificate that signs MQTT client certificates (required)\n"
	        "  ca_key           its private key (required)\n"
	        "  identity         the registry's own 64-bit id, hex (required)\n"
	        "  signing_key      the registry's RSA private key: validate answers and C2 tokens "
	        "(required)\n"
	        "  broker_url       the broker handed to devices, e.g. mqtts://broker.example:8883 "
	        "(required)\n"
	        "  default_c2       the server devices join, id hex (required; its key must be in the "
	        "store)\n"
	        "  mode             open (anyone may register; trust comes from the join) or token\n"
	        "                   (one-time enrollment tokens from `srup-registry token new`)\n"
	        "  tokens_file      where token mode keeps the hashes of unused tokens\n"
	        "  rate_limit       requests per minute per client address (default 30)\n"
	        "  rate_burst       requests a client address may make at once (default 10)\n"
	        "  max_body         largest request body in bytes, else 413 (default 16384)\n"
	        "  max_keys         no new registration once the store holds this many keys: 507\n"
	        "                   (default 1000000; bounds what open registration can make the\n"
	        "                   broker's store hold)\n"
	        "  timeout          seconds a connection may stay idle (default 10)\n"
	        "  max_connections  connections at once (default 256)\n"
	        "  per_address_connections  connections at once from one address (default 16)\n"
	        "  log_file         JSON-lines request log (default standard error)\n");
}
