/* SPDX-License-Identifier: MIT
 * register.c - `srup-device register`: a device registers itself with a KeyEx-compatible
 * registration service (paper section 4, spec section 5.4) in the reference client's order:
 * status, register, validate, a new MQTT access key and its CSR, access. It writes what it got
 * (the server's key, the broker, the default C2, its MQTT certificate) into its config. */
#define _DEFAULT_SOURCE 1 /* realpath */
#include "device.h"
#include "keyex.h"

#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#define CONF_MAX   (64 * 1024)
#define CONF_LINES 512

/* The config file as lines, so that keys can be set in place. */
struct conf {
	char *text;
	char *lines[CONF_LINES];
	int n;
	char *set_k[16];
	char *set_v[16];
	int n_set;
};

static int conf_read(struct conf *c, const char *path)
{
	FILE *f = fopen(path, "r");
	size_t len;
	char *p;

	memset(c, 0, sizeof(*c));
	if (f == NULL) {
		fprintf(stderr, "srup-device register: %s: %s\n", path, strerror(errno));
		return -1;
	}
	c->text = calloc(1, CONF_MAX + 1);
	len = c->text != NULL ? fread(c->text, 1, CONF_MAX + 1, f) : 0;
	fclose(f);
	if (c->text == NULL || len > CONF_MAX) {
		fprintf(stderr, "srup-device register: %s: larger than %d bytes\n", path, CONF_MAX);
		return -1;
	}
	for (p = c->text; *p != '\0' && c->n < CONF_LINES;) {
		char *nl = strchr(p, '\n');

		c->lines[c->n++] = p;
		if (nl == NULL) {
			break;
		}
		*nl = '\0';
		p = nl + 1;
	}
	return 0;
}

/* The value of key in line, or NULL: "key = value" with optional spaces. */
static const char *line_value(const char *line, const char *key, char *out, size_t cap)
{
	size_t kl = strlen(key);
	const char *v;
	size_t n;

	while (*line == ' ' || *line == '\t') {
		line++;
	}
	if (strncmp(line, key, kl) != 0) {
		return NULL;
	}
	v = line + kl;
	while (*v == ' ' || *v == '\t') {
		v++;
	}
	if (*v != '=') {
		return NULL;
	}
	v++;
	while (*v == ' ' || *v == '\t') {
		v++;
	}
	n = strlen(v);
	while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t' || v[n - 1] == '\r')) {
		n--;
	}
	if (n >= cap) {
		return NULL;
	}
	memcpy(out, v, n);
	out[n] = '\0';
	return out;
}

static const char *conf_get(const struct conf *c, const char *key, char *out, size_t cap)
{
	int i;

	for (i = c->n_set - 1; i >= 0; i--) {
		if (strcmp(c->set_k[i], key) == 0) {
			snprintf(out, cap, "%s", c->set_v[i]);
			return out;
		}
	}
	for (i = c->n - 1; i >= 0; i--) {
		if (line_value(c->lines[i], key, out, cap) != NULL) {
			return out;
		}
	}
	return NULL;
}

static int conf_set(struct conf *c, const char *key, const char *value)
{
	if (c->n_set >= 16) {
		return -1;
	}
	c->set_k[c->n_set] = strdup(key);
	c->set_v[c->n_set] = strdup(value);
	if (c->set_k[c->n_set] == NULL || c->set_v[c->n_set] == NULL) {
		return -1;
	}
	c->n_set++;
	return 0;
}

/* Write the config back: set keys replace their lines (first one kept), new keys appended. */
static int conf_write(struct conf *c, const char *path)
{
	size_t cap = CONF_MAX + 8192;
	char *out = malloc(cap);
	size_t off = 0;
	int done[16] = {0};
	char tmp[1024];
	int i;
	int k;
	int rc;

	if (out == NULL) {
		return -1;
	}
	for (i = 0; i < c->n; i++) {
		int replaced = 0;

		for (k = 0; k < c->n_set; k++) {
			if (line_value(c->lines[i], c->set_k[k], tmp, sizeof(tmp)) != NULL) {
				if (!done[k]) {
					off += (size_t)snprintf(out + off, cap - off, "%s = %s\n", c->set_k[k],
					                        c->set_v[k]);
					done[k] = 1;
				}
				replaced = 1;
				break;
			}
		}
		if (!replaced && (i < c->n - 1 || c->lines[i][0] != '\0')) {
			off += (size_t)snprintf(out + off, cap - off, "%s\n", c->lines[i]);
		}
		if (off >= cap) {
			free(out);
			return -1;
		}
	}
	for (k = 0; k < c->n_set; k++) {
		if (!done[k]) {
			off += (size_t)snprintf(out + off, cap - off, "%s = %s\n", c->set_k[k], c->set_v[k]);
		}
	}
	if (off >= cap) {
		free(out);
		return -1;
	}
	rc = srupd_write_file(path, out, off);
	free(out);
	return rc;
}

static void conf_free(struct conf *c)
{
	int i;

	for (i = 0; i < c->n_set; i++) {
		free(c->set_k[i]);
		free(c->set_v[i]);
	}
	free(c->text);
}

/* Write text to path with mode (0600 for keys); replace atomically. */
static int write_text(const char *path, const char *text, mode_t mode)
{
	mode_t old = umask(mode == 0600 ? 0077 : 0022);
	int rc = srupd_write_file(path, text, strlen(text));

	umask(old);
	if (rc != 0) {
		fprintf(stderr, "srup-device register: cannot write %s: %s\n", path, strerror(errno));
	}
	return rc;
}

/* A CSR for the access key, subject as the reference's client makes it (spec section 5.3). */
static char *make_csr(const struct srup_key *access, const char *id)
{
	EVP_PKEY *pk = srup_key_evp(access);
	X509_REQ *req = X509_REQ_new();
	X509_NAME *nm = X509_NAME_new();
	BIO *bio = BIO_new(BIO_s_mem());
	char *pem = NULL;
	char *p;
	long n;
	static const char *const parts[][2] = {
	        {"C", "UK"}, {"ST", "UNK"}, {"L", "UNK"}, {"O", "SRUP_DEVICE"}};
	size_t i;

	if (req == NULL || nm == NULL || bio == NULL) {
		goto out;
	}
	for (i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		if (X509_NAME_add_entry_by_txt(nm, parts[i][0], MBSTRING_ASC,
		                               (const unsigned char *)parts[i][1], -1, -1, 0) != 1) {
			goto out;
		}
	}
	if (X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)id, -1, -1, 0) !=
	            1 ||
	    X509_REQ_set_subject_name(req, nm) != 1 || X509_REQ_set_pubkey(req, pk) != 1 ||
	    X509_REQ_sign(req, pk, EVP_sha256()) <= 0 || PEM_write_bio_X509_REQ(bio, req) != 1) {
		goto out;
	}
	n = BIO_get_mem_data(bio, &p);
	pem = malloc((size_t)n + 1);
	if (pem != NULL) {
		memcpy(pem, p, (size_t)n);
		pem[n] = '\0';
	}
out:
	BIO_free(bio);
	X509_NAME_free(nm);
	X509_REQ_free(req);
	return pem;
}

/* Host and port of the broker URL the registry hands out: [mqtt[s]://]host[:port]. */
static int parse_broker(const char *url, char *host, size_t cap, char *port, size_t pcap)
{
	const char *h = strstr(url, "://");
	const char *colon;
	size_t hl;

	h = h != NULL ? h + 3 : url;
	colon = strrchr(h, ':');
	hl = colon != NULL ? (size_t)(colon - h) : strlen(h);
	if (hl == 0 || hl >= cap || strpbrk(h, "/ ?#") != NULL) {
		return -1;
	}
	memcpy(host, h, hl);
	host[hl] = '\0';
	if (colon != NULL) {
		char *end = NULL;
		unsigned long p = strtoul(colon + 1, &end, 10);

		if (*end != '\0' || p == 0 || p > 65535) {
			return -1;
		}
		snprintf(port, pcap, "%lu", p);
	} else {
		snprintf(port, pcap, "8883"); /* the reference's fixed MQTT-over-TLS port */
	}
	return 0;
}

static void reg_usage(FILE *to)
{
	fprintf(to,
	        "usage: srup-device register --url https://HOST:PORT [--ca FILE] [--token TOKEN]\n"
	        "                            [--type TYPE] --config FILE\n"
	        "Registers this device with the registration service at URL (KeyEx API): sends its\n"
	        "identity and public key (the config's identity and private_key; both are made if\n"
	        "missing), proves it holds the key, gets an MQTT client certificate for a new access\n"
	        "key, and writes server, broker_host, broker_port, tls_ca, tls_cert, tls_key and the\n"
	        "server's public key (into peer_keys) into the config.\n"
	        "  --ca FILE      CA certificate that signed the service's HTTPS certificate\n"
	        "  --token TOKEN  one-time enrollment token (registries in `token` mode)\n"
	        "  --type TYPE    registration type (default: \"default\", a device)\n");
}

int dev_register_main(int argc, char **argv)
{
	static const struct option opts[] = {{"url", required_argument, NULL, 'u'},
	                                     {"ca", required_argument, NULL, 'a'},
	                                     {"token", required_argument, NULL, 't'},
	                                     {"type", required_argument, NULL, 'y'},
	                                     {"config", required_argument, NULL, 'c'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {NULL, 0, NULL, 0}};
	const char *url = NULL;
	const char *ca = NULL;
	const char *token = NULL;
	const char *type = "default";
	const char *config = NULL;
	char cdir[SRUPD_PATH_MAX];
	char idtext[64];
	char keypath[SRUPD_PATH_MAX];
	char peers[SRUPD_PATH_MAX];
	char path[SRUPD_PATH_MAX + 64];
	char path2[SRUPD_PATH_MAX + 64];
	char path3[SRUPD_PATH_MAX + 64];
	char svc_id[64];
	char host[256];
	char port[16];
	char tmp[SRUPD_PATH_MAX];
	struct conf c;
	struct keyex k;
	struct keyex_reg reg;
	struct srup_key *key = NULL;
	struct srup_key *access = NULL;
	struct srup_key *server_key = NULL;
	struct srup_diag diag;
	char *csr = NULL;
	char *cert = NULL;
	char *cacert = NULL;
	char *access_pem = NULL;
	size_t plen = 0;
	uint64_t id = 0;
	int active = 0;
	int rc = 1;
	int o;

	memset(&reg, 0, sizeof(reg));
	optind = 1;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
			case 'u':
				url = optarg;
				break;
			case 'a':
				ca = optarg;
				break;
			case 't':
				token = optarg;
				break;
			case 'y':
				type = optarg;
				break;
			case 'c':
				config = optarg;
				break;
			case 'h':
				reg_usage(stdout);
				return 0;
			default:
				reg_usage(stderr);
				return 3;
		}
	}
	if (url == NULL || config == NULL || optind != argc) {
		reg_usage(stderr);
		return 3;
	}
	if (conf_read(&c, config) != 0) {
		conf_free(&c);
		return 1;
	}
	snprintf(tmp, sizeof(tmp), "%s", config);
	if (realpath(dirname(tmp), cdir) == NULL) {
		fprintf(stderr, "srup-device register: %s: %s\n", config, strerror(errno));
		goto out;
	}
	if (conf_get(&c, "private_key", keypath, sizeof(keypath)) == NULL ||
	    conf_get(&c, "peer_keys", peers, sizeof(peers)) == NULL) {
		fprintf(stderr, "srup-device register: %s needs private_key and peer_keys\n", config);
		goto out;
	}
	/* Our SRUP identity and key: made here on first registration. */
	memset(&diag, 0, sizeof(diag));
	if (srup_key_load_file(keypath, SRUP_KEY_PRIVATE, &key, &diag) != SRUP_OK) {
		struct stat st;

		if (stat(keypath, &st) == 0) {
			fprintf(stderr, "srup-device register: %s: %s\n", keypath, diag.detail);
			goto out;
		}
		if (srup_key_generate(2048, &key, &diag) != SRUP_OK ||
		    srup_key_private_pem(key, &access_pem, &plen) != SRUP_OK ||
		    write_text(keypath, access_pem, 0600) != 0) {
			fprintf(stderr, "srup-device register: cannot make a key at %s\n", keypath);
			goto out;
		}
		OPENSSL_cleanse(access_pem, plen);
		free(access_pem);
		access_pem = NULL;
		printf("made a new SRUP key: %s\n", keypath);
	}
	if (conf_get(&c, "identity", idtext, sizeof(idtext)) != NULL) {
		if (srup_id_parse(idtext, strlen(idtext), &id) != SRUP_OK || id == 0) {
			fprintf(stderr, "srup-device register: identity %s is not a 64-bit id\n", idtext);
			goto out;
		}
		srupd_id_text(id, idtext);
	} else {
		/* Kept at once, with the key made above: a retry registers the same identity. */
		id = srup_id_new();
		srupd_id_text(id, idtext);
		if (conf_set(&c, "identity", idtext) != 0 || conf_write(&c, config) != 0) {
			fprintf(stderr, "srup-device register: cannot update %s\n", config);
			goto out;
		}
		printf("made a new identity: %s\n", idtext);
	}

	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (keyex_init(&k, url, ca) != 0) {
		fprintf(stderr, "srup-device register: %s\n", k.err);
		goto out;
	}
	if (keyex_status(&k, &active, svc_id, sizeof(svc_id)) != 0) {
		fprintf(stderr, "srup-device register: status: %s\n", k.err);
		goto out;
	}
	if (!active) {
		fprintf(stderr, "srup-device register: the service %s is not accepting registrations\n",
		        svc_id);
		goto out;
	}
	if (keyex_register(&k, idtext, key, type, token, &reg) != 0) {
		fprintf(stderr, "srup-device register: register: %s\n", k.err);
		goto out;
	}
	memset(&diag, 0, sizeof(diag));
	if (srup_key_load_pem(reg.server_key_pem, strlen(reg.server_key_pem), SRUP_KEY_PUBLIC,
	                      &server_key, &diag) != SRUP_OK) {
		fprintf(stderr, "srup-device register: the server key from the service: %s\n", diag.detail);
		goto out;
	}
	{
		uint64_t c2;

		if (srup_id_parse(reg.default_c2, strlen(reg.default_c2), &c2) != SRUP_OK || c2 == 0) {
			fprintf(stderr, "srup-device register: default_c2 %s is not an id\n", reg.default_c2);
			goto out;
		}
	}
	if (parse_broker(reg.broker, host, sizeof(host), port, sizeof(port)) != 0) {
		fprintf(stderr, "srup-device register: broker %s is not [mqtt[s]://]host[:port]\n",
		        reg.broker);
		goto out;
	}
	if (keyex_validate(&k, idtext, key) != 0) {
		fprintf(stderr, "srup-device register: validate: %s\n", k.err);
		goto out;
	}
	/* The MQTT access key is not the SRUP signing key (spec section 5.3). */
	if (srup_key_generate(2048, &access, &diag) != SRUP_OK ||
	    (csr = make_csr(access, idtext)) == NULL) {
		fprintf(stderr, "srup-device register: cannot make the access key and CSR\n");
		goto out;
	}
	if (keyex_access(&k, idtext, key, csr, &cert, &cacert) != 0) {
		fprintf(stderr, "srup-device register: access: %s\n", k.err);
		goto out;
	}
	mkdir(peers, 0755);
	snprintf(path, sizeof(path), "%s/%s.pub.pem", peers, reg.default_c2);
	if (write_text(path, reg.server_key_pem, 0644) != 0) {
		goto out;
	}
	snprintf(path, sizeof(path), "%s/%s-access.key", cdir, idtext);
	snprintf(path2, sizeof(path2), "%s/%s-access.crt", cdir, idtext);
	snprintf(path3, sizeof(path3), "%s/registry-ca.crt", cdir);
	if (srup_key_private_pem(access, &access_pem, &plen) != SRUP_OK ||
	    write_text(path, access_pem, 0600) != 0 || write_text(path2, cert, 0644) != 0 ||
	    write_text(path3, cacert, 0644) != 0) {
		goto out;
	}
	if (conf_set(&c, "server", reg.default_c2) != 0 || conf_set(&c, "broker_host", host) != 0 ||
	    conf_set(&c, "broker_port", port) != 0 || conf_set(&c, "tls_cert", path2) != 0 ||
	    conf_set(&c, "tls_key", path) != 0 ||
	    (conf_get(&c, "tls_ca", tmp, sizeof(tmp)) == NULL && conf_set(&c, "tls_ca", path3) != 0) ||
	    conf_write(&c, config) != 0) {
		fprintf(stderr, "srup-device register: cannot update %s\n", config);
		goto out;
	}
	printf("OK registered %s with %s: server %s, broker %s:%s, certificate %s\n", idtext, svc_id,
	       reg.default_c2, host, port, path2);
	rc = 0;
out:
	if (access_pem != NULL) {
		OPENSSL_cleanse(access_pem, plen);
		free(access_pem);
	}
	free(csr);
	free(cert);
	free(cacert);
	keyex_reg_free(&reg);
	srup_key_free(key);
	srup_key_free(access);
	srup_key_free(server_key);
	conf_free(&c);
	return rc;
}
