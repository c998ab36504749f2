/* SPDX-License-Identifier: MIT
 * fuzz_pipeline.c - libFuzzer target for the plugin's verdict pipeline and ACL rules, run
 * in-process over the broker stubs of plugin/tests (mosquitto_plugin_init, then the callbacks
 * it registered). Each input is a small program: a policy variant, then operations (publish raw
 * bytes, publish a validly signed message built from fuzzed fields, publish an earlier payload
 * again or mutated, READ, SUBSCRIBE, DISCONNECT and reconnect, TICK, RELOAD, admin CONTROL, an
 * operator's revocation), against one plugin context on a fresh copy of a store holding a few
 * registered keys. Every answer is checked against a model of what the plugin may do; any
 * violation aborts. It does not test MQTT itself: topics and payloads arrive as the broker
 * would hand them over. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#include "srupb.h"
#include "stubs.h"

#ifndef SRUP_VECTORS_DIR
#error "SRUP_VECTORS_DIR must name tests/vectors"
#endif

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **user_data,
                          struct mosquitto_opt *opts, int opt_count);
int mosquitto_plugin_cleanup(void *user_data, struct mosquitto_opt *opts, int opt_count);

#define OPS_MAX     64 /* operations per input */
#define SIGNED_MAX  8  /* signed messages built per input (RSA signing costs ~1 ms) */
#define HISTORY_MAX 32 /* payloads kept for publish-again / READ */
#define ACCEPT_MAX  64
#define SLOTS       8
#define CACHE_MAX   20000

static void fail(const char *what)
{
	fprintf(stderr, "fuzz_pipeline: property violated: %s\n", what);
	abort();
}

/* ------------------------------------------------------------------ process-wide fixture */

/* Ids the fixture knows. role NONE: not in the store. key: index into keys[] that signs for it
 * when the input asks for "its own key". */
struct ident {
	uint64_t id;
	enum srupb_role role;
	unsigned key;
	bool revoked; /* registered, then revoked in the template store */
};

/* clang-format off */
static const struct ident ids[] = {
	{0xb9d077e223834cf6u, SRUPB_ROLE_SERVER, 0, false},   /* 0 server */
	{0x5e, SRUPB_ROLE_SERVER, 2, false},                  /* 1 second server */
	{0x5f5f5f5f5f5f5f5fu, SRUPB_ROLE_DEVICE, 1, false},   /* 2 device */
	{0xd2, SRUPB_ROLE_DEVICE, 2, false},                  /* 3 second device */
	{0xb, SRUPB_ROLE_OBSERVER, 1, false},                 /* 4 observer */
	{0xad, SRUPB_ROLE_SERVER, 0, false},                  /* 5 admin (in some policies) */
	{0x99, SRUPB_ROLE_NONE, 1, false},                    /* 6 never registered */
	{0, SRUPB_ROLE_NONE, 0, false},                       /* 7 id zero, never registered */
	{UINT64_MAX, SRUPB_ROLE_NONE, 2, false},              /* 8 all ones, never registered */
	{0xe1, SRUPB_ROLE_DEVICE, 1, true},                   /* 9 revoked device */
};
/* clang-format on */
#define N_IDS  (sizeof ids / sizeof ids[0])
#define N_KEYS 3

/* Identity strings a client may carry (username, client id or certificate CN): the canonical
 * text of every id, then near misses. NULL: none. */
#define N_NAMES (N_IDS + 6)
static char id_text[N_IDS][SRUP_ID_TEXT_MAX];
static const char *names[N_NAMES];

static const char *const key_files[N_KEYS] = {"keys/server_private.pem", "keys/device_private.pem",
                                              "keys/pysrup_test_private.pem"};
static struct srup_key *keys[N_KEYS];
static struct srup_verifier *verifiers[N_KEYS];

/* Certificates: one per name (CN = the name), then one with two CNs and one without a CN. */
#define CERT_TWO_CN (N_NAMES)
#define CERT_NO_CN  (N_NAMES + 1)
#define CERT_NUL_CN (N_NAMES + 2) /* a CN with a NUL byte inside: no identity */
#define N_CERTS     (N_NAMES + 3)
static X509 *certs[N_CERTS];

static char root[128];
static char template_dir[192];
static char work_dir[192];
static char policy_path[192];
static char audit_path[192];
static bool fixture_ready;

/* Policy variants: the shipped one, and others that turn on the branches it leaves off. */
#define N_VARIANTS 7
static char *variants[N_VARIANTS];
static const char broken_policy[] = "version 1\nthis is broken\n";

static char *str_cat3(const char *a, const char *b, const char *c)
{
	size_t la = strlen(a);
	size_t lb = strlen(b);
	size_t lc = strlen(c);
	char *s = malloc(la + lb + lc + 1);
	if (s == NULL) {
		fail("out of memory");
	}
	memcpy(s, a, la);
	memcpy(s + la, b, lb);
	memcpy(s + la + lb, c, lc);
	s[la + lb + lc] = '\0';
	return s;
}

/* The allow lines of the shipped policy. */
static char *shipped_rules(void)
{
	const char *p = srupb_policy_default;
	size_t cap = strlen(p) + 1;
	char *out = malloc(cap);
	size_t n = 0;
	if (out == NULL) {
		fail("out of memory");
	}
	while (*p != '\0') {
		const char *nl = strchr(p, '\n');
		size_t len = nl != NULL ? (size_t)(nl - p) + 1 : strlen(p);
		if (strncmp(p, "allow ", 6) == 0) {
			memcpy(out + n, p, len);
			n += len;
		}
		p += len;
	}
	out[n] = '\0';
	return out;
}

/* In policy text *text, replace what follows the directive words at the start of a line (up to
 * the end of that line) by value; no change if the directive is absent. */
static void set_value(char **text, const char *words, const char *value)
{
	size_t wl = strlen(words);
	char *at;
	for (at = strstr(*text, words); at != NULL; at = strstr(at + 1, words)) {
		if (at == *text || at[-1] == '\n') {
			break;
		}
	}
	if (at == NULL) {
		return;
	}
	char *eol = strchr(at, '\n');
	size_t head = (size_t)(at - *text) + wl;
	char *first = malloc(head + strlen(value) + 1);
	if (first == NULL) {
		fail("out of memory");
	}
	memcpy(first, *text, head);
	strcpy(first + head, value);
	char *out = str_cat3(first, eol != NULL ? eol : "", "");
	free(first);
	free(*text);
	*text = out;
}

static void make_variants(void)
{
	char *rules = shipped_rules();
	/* The shipped policy with a smaller seen index: opening one sized for hundreds of
	 * thousands of entries faults in megabytes and scans them, which would cost more than the
	 * rest of a run. */
	variants[0] = str_cat3(srupb_policy_default, "", "");
	set_value(&variants[0], "seen_index ", "1024");
	set_value(&variants[0], "seen_window server ", "256");
	variants[1] = str_cat3("version 1\nidentity client_id\nadmin ad\nseen_index 256\n"
	                       "join_command b9d077e223834cf6\n"
	                       "audit_accepts yes\n",
	                       rules, "");
	variants[2] = str_cat3("version 1\nidentity certificate\nadmin ad\nadmin b9d077e223834cf6\n"
	                       "seen_index 512\n",
	                       rules, "");
	variants[3] =
	        str_cat3("version 1\nbind_identity no\nretained allow\non_violation disconnect\n"
	                 "audit_rate 1 1\nseen_index 4\nkey_cache 1\nother_topics defer\n"
	                 "join_command b9d077e223834cf6\njoin_command 5e\n"
	                 "max_payload 300\n",
	                 rules, "allow device_channel device DATA\nallow join_topic server JOIN_REQ\n");
	variants[4] = str_cat3("version 1\nprefix Acme\ndurability metasync\nadmin 5f5f5f5f5f5f5f5f\n"
	                       "seen_index 64\n"
	                       "allow own_channel device DATA RESPONSE RESIGN_REQUEST\n"
	                       "allow device_channel server ACTION JOIN_CMD TERMINATE_CMD RESPONSE\n"
	                       "allow device_channel server DEREGISTER_CMD\n"
	                       "allow device_channel observer DATA\nallow join_topic device JOIN_REQ\n"
	                       "allow join_topic observer OBS_JOIN_REQ\n",
	                       "", "");
	variants[5] = str_cat3("version 1\ndurability fsync\nseen_index 0\n", rules, "");
	/* LMDB with a writable map: a reload can neither switch to it nor away from it */
	variants[6] = str_cat3("version 1\ndurability map\nseen_index 128\nkey_cache 2\nadmin ad\n"
	                       "join_command 5e\n",
	                       rules, "");
	free(rules);
}

static X509 *make_cert(EVP_PKEY *pk, const char *cn, int cn_len, const char *cn2)
{
	X509 *x = X509_new();
	X509_NAME *name;
	if (x == NULL || X509_set_version(x, 2) != 1 ||
	    ASN1_INTEGER_set(X509_get_serialNumber(x), 1) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(x), 0) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x), 3600) == NULL || X509_set_pubkey(x, pk) != 1) {
		fail("cannot build a certificate");
	}
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"srup-fuzz", -1, -1,
	                           0);
	if (cn != NULL) {
		X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, cn_len, -1,
		                           0);
	}
	if (cn2 != NULL) {
		X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn2, -1, -1, 0);
	}
	if (X509_set_issuer_name(x, name) != 1 || X509_sign(x, pk, EVP_sha256()) <= 0) {
		fail("cannot sign a certificate");
	}
	return x;
}

static void make_certs(void)
{
	EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (pk == NULL) {
		fail("cannot make a certificate key");
	}
	for (size_t i = 0; i < N_NAMES; i++) {
		/* An empty CN cannot be encoded; that name gets a certificate without a CN. */
		certs[i] =
		        make_cert(pk, names[i] != NULL && names[i][0] != '\0' ? names[i] : NULL, -1, NULL);
	}
	certs[CERT_TWO_CN] = make_cert(pk, id_text[2], -1, id_text[3]);
	certs[CERT_NO_CN] = make_cert(pk, NULL, -1, NULL);
	certs[CERT_NUL_CN] = make_cert(pk, "d2\0ad", 5, NULL);
	EVP_PKEY_free(pk);
}

/* The CN a certificate proves (the model of identity.c), or NULL. */
static const char *cert_name(size_t cert)
{
	if (cert >= N_NAMES || names[cert] == NULL || names[cert][0] == '\0') {
		return NULL;
	}
	return names[cert];
}

static void remove_tree(const char *dir)
{
	DIR *d = opendir(dir);
	if (d == NULL) {
		return;
	}
	for (;;) {
		struct dirent *de = readdir(d);
		char path[512];
		struct stat st;
		if (de == NULL) {
			break;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) {
			continue;
		}
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
			remove_tree(path);
		} else {
			unlink(path);
		}
	}
	closedir(d);
	rmdir(dir);
}

static void cleanup_root(void)
{
	if (root[0] != '\0') {
		remove_tree(root);
	}
}

/* Remove the scratch directories of fuzzer processes that are gone (a crash or libFuzzer's own
 * exit skips atexit). Only names of the form srupb-fuzz-<pid> are touched. */
static void sweep_stale(const char *base)
{
	DIR *d = opendir(base);
	if (d == NULL) {
		return;
	}
	for (;;) {
		struct dirent *de = readdir(d);
		char path[512];
		char *end = NULL;
		long pid;
		if (de == NULL) {
			break;
		}
		if (strncmp(de->d_name, "srupb-fuzz-", 11) != 0) {
			continue;
		}
		errno = 0;
		pid = strtol(de->d_name + 11, &end, 10);
		if (errno != 0 || end == de->d_name + 11 || *end != '\0' || pid <= 0) {
			continue;
		}
		if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) {
			continue; /* alive (or not ours to judge) */
		}
		snprintf(path, sizeof path, "%s/%s", base, de->d_name);
		remove_tree(path);
	}
	closedir(d);
}

static void copy_file(const char *from, const char *to)
{
	char buf[65536];
	int in = open(from, O_RDONLY | O_CLOEXEC);
	int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (in < 0 || out < 0) {
		fail("cannot copy the template store");
	}
	for (;;) {
		ssize_t n = read(in, buf, sizeof buf);
		if (n < 0) {
			fail("cannot read the template store");
		}
		if (n == 0) {
			break;
		}
		if (write(out, buf, (size_t)n) != n) {
			fail("cannot write the work store");
		}
	}
	close(in);
	close(out);
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0) {
		fail("cannot write the policy file");
	}
}

static void setup_fixture(void)
{
	struct srupb_store *st = NULL;
	char err[256];
	char path[512];
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";

	if (fixture_ready) {
		return;
	}
	for (size_t i = 0; i < N_IDS; i++) {
		if (srup_id_format(ids[i].id, id_text[i], sizeof id_text[i]) != SRUP_OK) {
			fail("cannot format an id");
		}
		names[i] = id_text[i];
	}
	names[N_IDS] = "0x5f5f5f5f5f5f5f5f";
	names[N_IDS + 1] = "5F5F5F5F5F5F5F5F";
	names[N_IDS + 2] = "00d2";
	names[N_IDS + 3] = "anon";
	names[N_IDS + 4] = "";
	names[N_IDS + 5] = NULL;
	for (size_t k = 0; k < N_KEYS; k++) {
		snprintf(path, sizeof path, "%s/%s", SRUP_VECTORS_DIR, key_files[k]);
		if (srup_key_load_file(path, SRUP_KEY_PRIVATE, &keys[k], NULL) != SRUP_OK ||
		    srup_verifier_new(keys[k], &verifiers[k], NULL) != SRUP_OK) {
			fprintf(stderr, "fuzz_pipeline: cannot load %s\n", path);
			abort();
		}
	}
	make_variants();
	make_certs();

	sweep_stale(base);
	snprintf(root, sizeof root, "%s/srupb-fuzz-%ld", base, (long)getpid());
	remove_tree(root);
	if (mkdir(root, 0700) != 0) {
		fail("cannot make the scratch directory");
	}
	atexit(cleanup_root);
	snprintf(template_dir, sizeof template_dir, "%s/template", root);
	snprintf(work_dir, sizeof work_dir, "%s/state", root);
	snprintf(policy_path, sizeof policy_path, "%s/srup.policy", root);
	snprintf(audit_path, sizeof audit_path, "%s/audit.jsonl", root);
	if (srupb_store_open(template_dir, false, SRUPB_SYNC_OS, &st, err, sizeof err) != SRUP_OK) {
		fprintf(stderr, "fuzz_pipeline: template store: %s\n", err);
		abort();
	}
	for (size_t i = 0; i < N_IDS; i++) {
		char *pem = NULL;
		size_t len = 0;
		if (ids[i].role == SRUPB_ROLE_NONE) {
			continue;
		}
		if (srup_key_public_pem(keys[ids[i].key], &pem, &len) != SRUP_OK ||
		    srupb_store_key_put(st, ids[i].id, ids[i].role, pem, len) != SRUP_OK) {
			fail("cannot register a key in the template store");
		}
		free(pem);
		if (ids[i].revoked && srupb_store_key_revoke(st, ids[i].id, NULL) != SRUP_OK) {
			fail("cannot revoke a key in the template store");
		}
	}
	srupb_store_close(st);
	fixture_ready = true;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	setup_fixture();
	return 0;
}

/* ------------------------------------------------------------------ signature cache */

/* RSA PKCS#1 v1.5 signatures are deterministic, so a signed message can be cached by its
 * unsigned bytes and key: the cache changes speed, never behaviour. */
struct sig_ent {
	struct sig_ent *next;
	uint64_t h;
	unsigned key;
	size_t ulen;
	size_t mlen;
	uint8_t *ubytes;
	uint8_t *msg;
};

#define CACHE_BUCKETS 4096
static struct sig_ent *cache[CACHE_BUCKETS];
static size_t cache_n;

static uint64_t fnv1a(const uint8_t *p, size_t n, uint64_t h)
{
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001b3u;
	}
	return h;
}

/* Encode and sign m with keys[key] into out (cap bytes); false if it cannot be encoded. */
static bool sign_cached(const struct srup_msg *m, unsigned key, uint8_t *out, size_t cap,
                        size_t *out_len)
{
	uint8_t ub[4096];
	size_t ulen = 0;
	uint64_t h;
	struct sig_ent *e;

	if (srup_msg_unsigned(m, ub, sizeof ub, &ulen) != SRUP_OK) {
		return false;
	}
	h = fnv1a(ub, ulen, 0xcbf29ce484222325u ^ key);
	for (e = cache[h % CACHE_BUCKETS]; e != NULL; e = e->next) {
		if (e->h == h && e->key == key && e->ulen == ulen && memcmp(e->ubytes, ub, ulen) == 0) {
			if (e->mlen > cap) {
				return false;
			}
			memcpy(out, e->msg, e->mlen);
			*out_len = e->mlen;
			return true;
		}
	}
	if (srup_msg_sign_encode(m, keys[key], out, cap, out_len, NULL) != SRUP_OK) {
		return false;
	}
	if (cache_n < CACHE_MAX) {
		e = calloc(1, sizeof *e);
		if (e == NULL || (e->ubytes = malloc(ulen)) == NULL ||
		    (e->msg = malloc(*out_len)) == NULL) {
			fail("out of memory");
		}
		e->h = h;
		e->key = key;
		e->ulen = ulen;
		e->mlen = *out_len;
		memcpy(e->ubytes, ub, ulen);
		memcpy(e->msg, out, *out_len);
		e->next = cache[h % CACHE_BUCKETS];
		cache[h % CACHE_BUCKETS] = e;
		cache_n++;
	}
	return true;
}

/* ------------------------------------------------------------------ one run */

struct in {
	const uint8_t *p;
	size_t len;
	size_t off;
};

/* The next input byte, 0 once the input is used up. */
static uint8_t u8(struct in *in)
{
	if (in->off >= in->len) {
		return 0;
	}
	return in->p[in->off++];
}

/* A client slot: its connections, one broker context each. A new connection gets a context
 * never used before in this run, unless the input asks for the memory of the last one (the
 * broker's allocator may hand it out again). */
#define CONNS_MAX (OPS_MAX + 2)
struct slot {
	struct mosquitto pool[CONNS_MAX];
	unsigned gen;
	struct mosquitto *c; /* the current connection's context */
	const char *cid;
	const char *user;
	size_t cert; /* index into certs[] */
	bool connected;
};

struct payload {
	uint8_t *p;
	size_t len;
};

/* An accepted message, as the model remembers it. */
struct accepted {
	uint8_t *p;
	size_t len;
	uint64_t sender;
	uint64_t seq;
	uint8_t type;
	struct srupb_topic chan; /* the channel, as classified when accepted (not its spelling:
	                          * a reload may change the prefix, not the channel) */
	char client[64];
	unsigned epoch;
};

struct run {
	struct srupb_ctx *ctx;
	void *ud;
	struct slot slots[SLOTS];
	struct payload history[HISTORY_MAX];
	size_t n_history;
	struct accepted acc[ACCEPT_MAX];
	size_t n_acc;
	unsigned epoch;      /* changes when a reload changes the policy */
	size_t acc_in_epoch; /* accepted messages since */
	size_t seen_at_open; /* seen_index of the policy the store was opened with */
	int file_variant;    /* what the policy file holds (-1: the broken text) */
	int variant;         /* the policy in effect */
	unsigned n_signed;
};

static struct run *cur; /* for the kick hook */
/* SRUP_FUZZ_NO_REUSE=1: never put a new connection in the memory of a disconnected one (to fuzz
 * past a known finding while it is open, see README.md). */
static bool no_reuse;

/* Client ids a (re)connecting client may use: the names, and two plain ones. */
static const char *cid_name(uint8_t b)
{
	static const char *const extra[] = {"c7", "c8"};
	size_t i = b % (N_NAMES + 1);
	if (i < N_NAMES && names[i] != NULL) {
		return names[i];
	}
	return extra[b & 1];
}

/* A new connection of slot s with these credentials; reuse: in the last context's memory. */
static void slot_init(struct slot *s, const char *cid, const char *user, size_t cert, bool reuse,
                      bool resumed)
{
	if (s->c == NULL) {
		s->c = &s->pool[0];
	} else if (!reuse && s->gen + 1 < CONNS_MAX) {
		s->gen++;
		s->c = &s->pool[s->gen];
	}
	s->cid = cid;
	s->user = user;
	s->cert = cert;
	s->c->id = cid;
	s->c->username = user;
	s->c->cert = certs[cert];
	s->c->resumed = resumed;
	s->connected = true;
}

static int event(int ev, void *data)
{
	if (stub_cb[ev] == NULL) {
		fail("a callback the plugin registers is missing");
	}
	return stub_cb[ev](ev, data, stub_userdata[ev]);
}

static void disconnect(struct slot *s)
{
	struct mosquitto_evt_disconnect d;
	if (!s->connected) {
		return;
	}
	memset(&d, 0, sizeof d);
	d.client = s->c;
	s->connected = false;
	if (event(MOSQ_EVT_DISCONNECT, &d) != MOSQ_ERR_SUCCESS) {
		fail("DISCONNECT did not return SUCCESS");
	}
}

/* The broker disconnects every client a kick names (firing DISCONNECT). */
static void kick_hook(const char *name, bool by_username)
{
	if (cur == NULL) {
		return;
	}
	for (size_t i = 0; i < SLOTS; i++) {
		struct slot *s = &cur->slots[i];
		const char *mine = by_username ? s->user : s->cid;
		if (s->connected && (name == NULL || (mine != NULL && strcmp(mine, name) == 0))) {
			disconnect(s);
		}
	}
}

/* A kicked or disconnected client that acts again has reconnected. */
static struct slot *use_slot(struct run *r, uint8_t b)
{
	struct slot *s = &r->slots[b % SLOTS];
	if (!s->connected) {
		slot_init(s, s->cid, s->user, s->cert, false, true);
	}
	return s;
}

/* The identity the plugin must see for s under the policy in effect (model of identity.c). */
static const char *identity_of(const struct run *r, const struct slot *s)
{
	switch (r->ctx->policy->identity) {
		case SRUPB_ID_CERTIFICATE:
			return cert_name(s->cert);
		case SRUPB_ID_CLIENT_ID:
			return s->cid;
		case SRUPB_ID_USERNAME:
		default:
			return s->user;
	}
}

/* The id an identity names in canonical text form (the only form that counts). */
static bool canonical_id(const char *ident, uint64_t *id)
{
	char text[SRUP_ID_TEXT_MAX];
	if (ident == NULL || srup_id_parse(ident, strlen(ident), id) != SRUP_OK ||
	    srup_id_format(*id, text, sizeof text) != SRUP_OK) {
		return false;
	}
	return strcmp(text, ident) == 0;
}

/* An identity parsed the way the control topic parses it (any spelling srup_id_parse takes). */
static bool any_id(const char *ident, uint64_t *id)
{
	return ident != NULL && srup_id_parse(ident, strlen(ident), id) == SRUP_OK;
}

/* What the store says of id now: registered and active (and its role). */
static bool key_active(struct run *r, uint64_t id, unsigned *role)
{
	struct srupb_keyrec rec;
	char *pem = NULL;
	bool found = false;
	if (srupb_store_key_get(r->ctx->store, id, &rec, &pem, &found) != SRUP_OK) {
		fail("store key read failed");
	}
	free(pem);
	if (role != NULL) {
		*role = found ? rec.role : 0;
	}
	return found && rec.status == SRUPB_KEY_ACTIVE;
}

static bool is_member(struct run *r, uint64_t device, uint64_t server)
{
	bool found = false;
	enum srup_err e = srupb_store_member_find(r->ctx->store, device, server, &found);
	srupb_store_read_end(r->ctx->store);
	if (e != SRUP_OK) {
		fail("store membership read failed");
	}
	return found;
}

static int key_of_id(uint64_t id)
{
	for (size_t i = 0; i < N_IDS; i++) {
		if (ids[i].id == id && ids[i].role != SRUPB_ROLE_NONE) {
			return (int)ids[i].key;
		}
	}
	return -1;
}

/* A topic: a shape from a table of interesting ones under the policy's prefix, ids from the
 * fixture, and optionally fuzzed bytes appended. */
static void topic_from(struct run *r, struct in *in, char *out, size_t cap)
{
	const char *pre = r->ctx->policy->prefix;
	uint8_t shape = u8(in);
	uint8_t arg = u8(in);
	uint8_t sfx = u8(in);
	const char *a = id_text[(arg & 0x0f) % N_IDS];
	const char *b = id_text[(arg >> 4) % N_IDS];

	switch (shape % 16) {
		case 0:
		case 1:
		case 2:
		case 3:
			snprintf(out, cap, "%s/%s", pre, a);
			break;
		case 4:
		case 5:
			if (snprintf(out, cap, "%s/servers/%s/%s", pre, a, b) >= (int)cap) {
				out[0] = '\0';
			}
			break;
		case 6:
			snprintf(out, cap, "%s", pre);
			break;
		case 7:
			snprintf(out, cap, "%s/x/%s", pre, a);
			break;
		case 8:
			snprintf(out, cap, "%s/0%s", pre, a);
			break;
		case 9:
			snprintf(out, cap, "%s/%s", pre, names[N_IDS + (arg % 2)]);
			break;
		case 10:
			snprintf(out, cap, "%s/servers/%s", pre, a);
			break;
		case 11:
			snprintf(out, cap, "$CONTROL/srup/v1%s", (arg & 1) ? "/response" : "");
			break;
		case 12:
			snprintf(out, cap, "other/%s", a);
			break;
		case 13:
			snprintf(out, cap, "SRUP/%s", a); /* the default prefix, whatever the policy's */
			break;
		case 14:
			snprintf(out, cap, "%s/%s/", pre, a);
			break;
		default:
			out[0] = '\0';
			break;
	}
	if ((sfx & 0x80) != 0) {
		size_t n = strlen(out);
		size_t want = sfx & 0x7f; /* up to 127: past acl.c's 80-character levels and the
		                           * 128-character cut of log and audit lines */
		/* The broker hands over only valid UTF-8 without control characters (mosquitto
		 * checks topics): printable ASCII stays, the other bytes become two- and three-byte
		 * characters. */
		for (size_t i = 0; i < want && n + 4 < cap; i++) {
			uint8_t c = u8(in);
			if (c >= 0x20 && c < 0x7f) {
				out[n++] = (char)c;
			} else if ((c & 1) != 0) {
				out[n++] = (char)0xc2; /* U+00A0..U+00BF */
				out[n++] = (char)(0xa0 | (c >> 3));
			} else {
				out[n++] = (char)0xe4; /* U+4E00..U+4E3F */
				out[n++] = (char)0xb8;
				out[n++] = (char)(0x80 | (c >> 2));
			}
		}
		out[n] = '\0';
	}
}

static void remember(struct run *r, const uint8_t *p, size_t len)
{
	struct payload *h;
	if (r->n_history == HISTORY_MAX) {
		return;
	}
	h = &r->history[r->n_history];
	h->p = len > 0 ? malloc(len) : NULL;
	if (len > 0 && h->p == NULL) {
		fail("out of memory");
	}
	if (len > 0) {
		memcpy(h->p, p, len);
	}
	h->len = len;
	r->n_history++;
}

static const struct payload *history_at(struct run *r, uint8_t b)
{
	if (r->n_history == 0) {
		return NULL;
	}
	return &r->history[b % r->n_history];
}

/* The highest sequence id the model saw accepted for (sender, topic), and that entry. */
static const struct accepted *last_accepted(const struct run *r, uint64_t sender,
                                            const struct srupb_topic *t)
{
	const struct accepted *best = NULL;
	for (size_t i = 0; i < r->n_acc; i++) {
		const struct accepted *a = &r->acc[i];
		if (a->sender == sender && a->chan.kind == t->kind && a->chan.a == t->a &&
		    a->chan.b == t->b && (best == NULL || a->seq > best->seq)) {
			best = a;
		}
	}
	return best;
}

static bool is_leave(uint8_t type)
{
	return type == SRUP_MSG_RESIGN_REQUEST || type == SRUP_MSG_TERMINATE_CMD ||
	       type == SRUP_MSG_DEREGISTER_REQ || type == SRUP_MSG_DEREGISTER_CMD;
}

/* Checks of one accepted (not retransmitted) publish against the model, then remembers it. */
static void check_accept(struct run *r, const struct slot *s, const struct srupb_topic *t,
                         const uint8_t *p, size_t len, bool retain, bool active_before)
{
	const struct srupb_policy *pol = r->ctx->policy;
	struct srup_msg m;
	char sender_text[SRUP_ID_TEXT_MAX];
	int k;

	if (srup_msg_parse(p, len, &m, NULL) != SRUP_OK) {
		fail("accepted a payload that does not parse");
	}
	if (!active_before) {
		fail("accepted a message from an unregistered or revoked sender");
	}
	k = key_of_id(m.sender_id);
	if (k < 0 || srup_verifier_msg(verifiers[k], &m, NULL) != SRUP_OK) {
		fail("accepted a message not signed by its sender's registered key");
	}
	if (len > pol->max_payload || (retain && pol->refuse_retained)) {
		fail("accepted a payload over max_payload, or a refused retained one");
	}
	if (t->kind == SRUPB_T_JOIN && m.sender_id != t->b) {
		fail("accepted a join-topic message from another device than the topic's");
	}
	if (srup_id_format(m.sender_id, sender_text, sizeof sender_text) != SRUP_OK) {
		fail("cannot format a sender");
	}
	if (pol->bind_identity) {
		const char *ident = identity_of(r, s);
		if (ident == NULL || strcmp(ident, sender_text) != 0) {
			fail("accepted a message whose sender is not the client's proven identity");
		}
	}
	const struct accepted *prev = last_accepted(r, m.sender_id, t);
	if (prev != NULL && m.sequence_id <= prev->seq) {
		fail("accepted a sequence id not above the last accepted one of (sender, channel)");
	}
	/* The same signed bytes are accepted once, whoever sends them and wherever, while the seen
	 * index remembers them and the policy has not changed since. */
	size_t window = pol->seen_index < r->seen_at_open ? pol->seen_index : r->seen_at_open;
	/* ... and the sender's own window (per role) still holds them */
	size_t by_sender = 0;
	for (size_t i = 0; i < r->n_acc; i++) {
		by_sender += r->acc[i].epoch == r->epoch && r->acc[i].sender == m.sender_id;
	}
	unsigned srole = 0;
	for (size_t i = 0; i < N_IDS; i++) {
		if (ids[i].id == m.sender_id) {
			srole = (unsigned)ids[i].role;
		}
	}
	size_t own = srole < SRUPB_ROLE__COUNT ? pol->seen_window[srole] : 0;
	if (r->acc_in_epoch < window && by_sender < own) {
		for (size_t i = 0; i < r->n_acc; i++) {
			const struct accepted *a = &r->acc[i];
			if (a->epoch == r->epoch && a->len == len && memcmp(a->p, p, len) == 0) {
				fail("the same signed bytes were accepted a second time");
			}
		}
	}
	r->acc_in_epoch++;
	if (r->n_acc < ACCEPT_MAX) {
		struct accepted *a = &r->acc[r->n_acc++];
		a->p = malloc(len);
		if (a->p == NULL) {
			fail("out of memory");
		}
		memcpy(a->p, p, len);
		a->len = len;
		a->sender = m.sender_id;
		a->seq = m.sequence_id;
		a->type = m.type;
		a->chan = *t;
		snprintf(a->client, sizeof a->client, "%s", s->cid);
		a->epoch = r->epoch;
	}
}

/* A retransmission is the byte-identical resend of the last accepted message of that
 * (sender, channel) by the client that had it accepted, while the sender is still active. */
static void check_retransmit(struct run *r, const struct slot *s, const struct srupb_topic *t,
                             const uint8_t *p, size_t len, bool active_before)
{
	struct srup_msg m;
	if (srup_msg_parse(p, len, &m, NULL) != SRUP_OK) {
		fail("a retransmission that does not parse");
	}
	if (!active_before) {
		fail("let a retransmission of an unregistered or revoked sender through");
	}
	const struct accepted *prev = last_accepted(r, m.sender_id, t);
	if (prev == NULL) {
		if (r->n_acc == ACCEPT_MAX) {
			return; /* the model stopped remembering */
		}
		fail("a retransmission of a message never accepted on this channel");
	}
	if (prev->len != len || memcmp(prev->p, p, len) != 0) {
		fail("a retransmission that differs from the last accepted message");
	}
	if (strcmp(prev->client, s->cid) != 0) {
		fail("a retransmission by another client than the one that had it accepted");
	}
}

/* One publish as the broker runs it: ACL WRITE, then (unless refused, or a Will) MESSAGE. */
static void publish(struct run *r, struct slot *s, const char *topic, const uint8_t *src,
                    size_t len, uint8_t flags)
{
	struct srupb_ctx *ctx = r->ctx;
	struct mosquitto_evt_acl_check acl;
	struct mosquitto_evt_message msg;
	struct srupb_topic t;
	struct srup_msg m;
	bool retain = (flags & 1) != 0;
	bool will = (flags & 2) != 0;
	uint8_t qos = (uint8_t)((flags >> 2) % 3);
	bool parsed;
	bool active_before = false;
	uint8_t *p = NULL;

	/* An exactly sized copy: ASan catches a read of one byte past the payload. */
	if (len > 0) {
		p = malloc(len);
		if (p == NULL) {
			fail("out of memory");
		}
		memcpy(p, src, len);
	}
	remember(r, src, len);
	srupb_policy_classify(ctx->policy, topic, &t);
	parsed = len > 0 && srup_msg_parse(p, len, &m, NULL) == SRUP_OK;
	if (parsed) {
		active_before = key_active(r, m.sender_id, NULL);
	}
	uint64_t acc0 = ctx->metrics.accepted;
	uint64_t rt0 = ctx->metrics.retransmitted;
	uint64_t drop0 = ctx->metrics.dropped_total;

	memset(&acl, 0, sizeof acl);
	acl.client = s->c;
	acl.topic = topic;
	acl.payload = p;
	acl.payloadlen = (uint32_t)len;
	acl.access = MOSQ_ACL_WRITE;
	acl.qos = qos;
	acl.retain = retain;
	int rc = event(MOSQ_EVT_ACL_CHECK, &acl);
	if (rc != MOSQ_ERR_SUCCESS && rc != MOSQ_ERR_ACL_DENIED && rc != MOSQ_ERR_PLUGIN_DEFER) {
		fail("ACL WRITE returned something other than SUCCESS, ACL_DENIED or PLUGIN_DEFER");
	}
	if (getenv("SRUP_FUZZ_TRACE") != NULL) {
		fprintf(stderr, "  publish %s by %s/%s (%zu bytes): %d%s%s\n", topic, s->cid,
		        s->user != NULL ? s->user : "-", len, rc, rc != 0 ? " | " : "",
		        rc != 0 ? stub_last_log : "");
	}
	uint64_t dacc = ctx->metrics.accepted - acc0;
	uint64_t drt = ctx->metrics.retransmitted - rt0;
	uint64_t ddrop = ctx->metrics.dropped_total - drop0;
	switch (t.kind) {
		case SRUPB_T_OTHER:
			if (dacc + drt + ddrop != 0) {
				fail("a publish outside the prefix was counted as a SRUP decision");
			}
			if (rc == MOSQ_ERR_ACL_DENIED) {
				fail("a publish outside the prefix was denied");
			}
			break;
		case SRUPB_T_CONTROL:
		case SRUPB_T_CONTROL_RESP:
			if (rc == MOSQ_ERR_PLUGIN_DEFER) {
				fail("a control topic publish was deferred");
			}
			if (rc == MOSQ_ERR_SUCCESS) {
				uint64_t id = 0;
				if (t.kind == SRUPB_T_CONTROL_RESP || !any_id(identity_of(r, s), &id) ||
				    !srupb_policy_is_admin(ctx->policy, id)) {
					fail("a non-admin may publish on the control topic");
				}
			}
			break;
		case SRUPB_T_PROTECTED:
		case SRUPB_T_DEVICE:
		case SRUPB_T_JOIN:
		default:
			/* One decision per publish, counted once; never deferred. */
			if (rc == MOSQ_ERR_PLUGIN_DEFER) {
				fail("a SRUP publish was deferred");
			}
			if (dacc + drt + ddrop != 1 || (rc == MOSQ_ERR_SUCCESS) != (dacc + drt == 1)) {
				fail("a SRUP publish was not counted as exactly one decision matching the answer");
			}
			if (t.kind == SRUPB_T_PROTECTED && rc == MOSQ_ERR_SUCCESS) {
				fail("a publish on a protected topic that is no channel was allowed");
			}
			if (dacc == 1) {
				check_accept(r, s, &t, p, len, retain, active_before);
			} else if (drt == 1) {
				check_retransmit(r, s, &t, p, len, active_before);
			}
			break;
	}
	if (rc == MOSQ_ERR_SUCCESS && !will && t.kind != SRUPB_T_CONTROL) {
		uint64_t before =
		        ctx->metrics.accepted + ctx->metrics.retransmitted + ctx->metrics.dropped_total;
		memset(&msg, 0, sizeof msg);
		msg.client = s->c;
		msg.topic = (char *)(uintptr_t)topic;
		msg.payload = p;
		msg.payloadlen = (uint32_t)len;
		msg.qos = qos;
		msg.retain = retain;
		rc = event(MOSQ_EVT_MESSAGE, &msg);
		if (rc != MOSQ_ERR_SUCCESS) {
			fail("MESSAGE refused a publish its ACL WRITE check allowed");
		}
		if (ctx->metrics.accepted + ctx->metrics.retransmitted + ctx->metrics.dropped_total !=
		    before) {
			fail("MESSAGE decided a publish a second time");
		}
	}
	free(p);
}

/* READ: who may receive a message on a topic (acl.c), against the store and the model. */
static void read_check(struct run *r, struct slot *s, const char *topic, const struct payload *pl)
{
	struct srupb_ctx *ctx = r->ctx;
	struct mosquitto_evt_acl_check e;
	struct srupb_topic t;
	uint64_t rid = 0;
	unsigned role = 0;
	uint8_t *p = NULL;
	size_t len = pl != NULL ? pl->len : 0;

	if (len > 0) {
		p = malloc(len);
		if (p == NULL) {
			fail("out of memory");
		}
		memcpy(p, pl->p, len);
	}
	memset(&e, 0, sizeof e);
	e.client = s->c;
	e.topic = topic;
	e.payload = p;
	e.payloadlen = (uint32_t)len;
	e.access = MOSQ_ACL_READ;
	int rc = event(MOSQ_EVT_ACL_CHECK, &e);
	if (rc != MOSQ_ERR_SUCCESS && rc != MOSQ_ERR_ACL_DENIED && rc != MOSQ_ERR_PLUGIN_DEFER) {
		fail("ACL READ returned something other than SUCCESS, ACL_DENIED or PLUGIN_DEFER");
	}
	srupb_policy_classify(ctx->policy, topic, &t);
	if (rc == MOSQ_ERR_PLUGIN_DEFER && t.kind != SRUPB_T_OTHER) {
		fail("a READ of a SRUP or control topic was deferred");
	}
	if (rc != MOSQ_ERR_SUCCESS) {
		free(p);
		return;
	}
	const char *ident = identity_of(r, s);
	bool canon = canonical_id(ident, &rid);
	bool active = canon && key_active(r, rid, &role);
	switch (t.kind) {
		case SRUPB_T_PROTECTED:
		case SRUPB_T_CONTROL:
			fail("a READ of a protected non-channel topic or of the control topic was allowed");
			break;
		case SRUPB_T_CONTROL_RESP:
			if (!any_id(ident, &rid) || !srupb_policy_is_admin(ctx->policy, rid)) {
				fail("a non-admin may read the control responses");
			}
			break;
		case SRUPB_T_JOIN:
			if (!active || rid != t.a || role != SRUPB_ROLE_SERVER) {
				fail("a join topic is readable by someone else than its active server");
			}
			break;
		case SRUPB_T_DEVICE:
			if (active && (rid == t.a || is_member(r, t.a, rid))) {
				break;
			}
			/* The leave message that ended a membership still reaches the servers it ended. */
			if (canon && len > 0) {
				bool leave = false;
				for (size_t i = 0; i < r->n_acc && !leave; i++) {
					const struct accepted *a = &r->acc[i];
					leave = is_leave(a->type) && a->len == len && memcmp(a->p, p, len) == 0;
				}
				if (leave || r->n_acc == ACCEPT_MAX) {
					break;
				}
			}
			fail("a device channel is readable by a client that is neither the active device "
			     "nor a member");
			break;
		case SRUPB_T_OTHER:
		default:
			break;
	}
	free(p);
}

/* SUBSCRIBE: a filter naming a SRUP channel or the control topics needs the right identity. */
static void subscribe_check(struct run *r, struct slot *s, const char *filter, uint8_t access)
{
	struct srupb_ctx *ctx = r->ctx;
	struct mosquitto_evt_acl_check e;
	const char *pre = ctx->policy->prefix;
	size_t pl = ctx->policy->prefix_len;
	uint64_t rid = 0;

	memset(&e, 0, sizeof e);
	e.client = s->c;
	e.topic = filter;
	/* SUBSCRIBE mostly; sometimes UNSUBSCRIBE or an access value 2.0.11 never sends. */
	e.access = access < 200 ? MOSQ_ACL_SUBSCRIBE : (access < 230 ? MOSQ_ACL_UNSUBSCRIBE : access);
	int rc = event(MOSQ_EVT_ACL_CHECK, &e);
	if (rc != MOSQ_ERR_SUCCESS && rc != MOSQ_ERR_ACL_DENIED && rc != MOSQ_ERR_PLUGIN_DEFER) {
		fail("ACL SUBSCRIBE returned something other than SUCCESS, ACL_DENIED or PLUGIN_DEFER");
	}
	if (rc != MOSQ_ERR_SUCCESS || e.access != MOSQ_ACL_SUBSCRIBE) {
		return;
	}
	const char *f = filter;
	if (strncmp(f, "$share/", 7) == 0) {
		const char *sl = strchr(f + 7, '/');
		if (sl == NULL) {
			fail("a malformed shared subscription was allowed");
		}
		f = sl + 1;
	}
	const char *ident = identity_of(r, s);
	if (strncmp(f, "$CONTROL/srup/", 14) == 0) {
		if (!any_id(ident, &rid) || !srupb_policy_is_admin(ctx->policy, rid)) {
			fail("a non-admin may subscribe to the control topics");
		}
		return;
	}
	/* <prefix>/<level>/... where level is neither + nor #: an active identity is needed. */
	if (strncmp(f, pre, pl) == 0 && f[pl] == '/' && f[pl + 1] != '+' && f[pl + 1] != '#' &&
	    f[pl + 1] != '\0' && f[pl + 1] != '/') {
		if (!canonical_id(ident, &rid) || !key_active(r, rid, NULL)) {
			fail("a client without an active SRUP identity subscribed to a named SRUP channel");
		}
	}
}

static void control(struct run *r, struct slot *s, struct in *in)
{
	struct mosquitto_evt_control e;
	char buf[256];
	uint8_t kind = u8(in);
	uint8_t arg = u8(in);
	size_t len;

	switch (kind % 6) {
		case 0:
			snprintf(buf, sizeof buf, "{\"command\":\"reload\"}");
			break;
		case 1:
			snprintf(buf, sizeof buf, "{\"command\":\"revoke\",\"id\":\"%s\"}",
			         names[arg % N_NAMES] != NULL ? names[arg % N_NAMES] : "");
			break;
		case 2:
			snprintf(buf, sizeof buf, "{ \"id\" : \"%s\", \"command\" : \"revoke\" }",
			         id_text[arg % N_IDS]);
			break;
		case 3:
			snprintf(buf, sizeof buf, "{\"command\":\"dance\"}");
			break;
		default: {
			/* raw bytes */
			size_t n = arg % 64;
			for (size_t i = 0; i < n; i++) {
				buf[i] = (char)u8(in);
			}
			buf[n] = '\0';
			len = n;
			goto send;
		}
	}
	len = strlen(buf);
send:
	memset(&e, 0, sizeof e);
	e.client = s->c;
	e.topic = "$CONTROL/srup/v1";
	e.payload = len > 0 ? buf : NULL;
	e.payloadlen = (uint32_t)len;
	if (event(MOSQ_EVT_CONTROL, &e) != MOSQ_ERR_SUCCESS) {
		fail("CONTROL did not return SUCCESS");
	}
	if (kind % 6 == 0 && r->file_variant >= 0) {
		uint64_t id = 0;
		if (any_id(identity_of(r, s), &id) && srupb_policy_is_admin(r->ctx->policy, id)) {
			/* an admin's reload re-read the policy file */
			if (r->file_variant != r->variant) {
				r->epoch++;
				r->acc_in_epoch = 0;
			}
			r->variant = r->file_variant;
		}
	}
}

static void reload(struct run *r, uint8_t b)
{
	struct mosquitto_evt_reload e;
	int v = (int)(b % (N_VARIANTS + 1));
	if (v == N_VARIANTS) {
		write_text(policy_path, broken_policy);
		r->file_variant = -1;
	} else {
		write_text(policy_path, variants[v]);
		r->file_variant = v;
	}
	memset(&e, 0, sizeof e);
	if (event(MOSQ_EVT_RELOAD, &e) != MOSQ_ERR_SUCCESS) {
		fail("RELOAD did not return SUCCESS");
	}
	if (r->file_variant >= 0) {
		if (r->file_variant != r->variant) {
			r->epoch++;
			r->acc_in_epoch = 0;
		}
		r->variant = r->file_variant;
	}
}

/* Build and sign a message from fuzzed fields: type, sender, signing key, sequence id, token
 * and the body fields its type carries. */
static bool build_signed(struct in *in, uint8_t *out, size_t cap, size_t *out_len)
{
	static const uint8_t types[] = {
	        SRUP_MSG_INITIATE,
	        SRUP_MSG_RESPONSE,
	        SRUP_MSG_ACTIVATE,
	        SRUP_MSG_ACTION,
	        SRUP_MSG_DATA,
	        SRUP_MSG_ID_REQUEST,
	        SRUP_MSG_JOIN_REQ,
	        SRUP_MSG_JOIN_CMD,
	        SRUP_MSG_HM_JOIN_REQ,
	        SRUP_MSG_HM_JOIN_RESP,
	        SRUP_MSG_OBS_JOIN_REQ,
	        SRUP_MSG_OBS_JOIN_RESP,
	        SRUP_MSG_OBSERVE_REQ,
	        SRUP_MSG_RESIGN_REQUEST,
	        SRUP_MSG_TERMINATE_CMD,
	        SRUP_MSG_DEREGISTER_REQ,
	        SRUP_MSG_DEREGISTER_CMD,
	        SRUP_MSG_SYNDICATION_INIT,
	        SRUP_MSG_SYNDICATED_ACTION,
	        SRUP_MSG_SYNDICATED_DATA,
	        SRUP_MSG_SYNDICATED_ID_REQUEST,
	        SRUP_MSG_SYNDICATED_DEV_COUNT,
	        SRUP_MSG_SYNDICATED_DEV_LIST,
	        SRUP_MSG_SYNDICATION_REQUEST,
	        SRUP_MSG_SYNDICATED_C2_REQ,
	        SRUP_MSG_SYNDICATION_END,
	        SRUP_MSG_SYNDICATION_TERMINATE,
	};
	uint8_t vbuf[5][16];
	uint8_t tok[4];
	struct srup_msg m;
	uint8_t tb = u8(in);
	uint8_t sb = u8(in);
	uint8_t kb = u8(in);
	uint8_t q0 = u8(in);
	uint8_t q1 = u8(in);
	uint8_t tk = u8(in);
	size_t sender = sb % N_IDS;
	unsigned key = (kb & 3) == 0 ? ids[sender].key : (unsigned)((kb & 3) - 1);
	unsigned fields;
	size_t nv = 0;

	memset(&m, 0, sizeof m);
	m.version = SRUP_VERSION;
	m.type = types[tb % sizeof types];
	m.sender_id = ids[sender].id;
	/* small sequence ids collide (replays); 0xff.. reaches the top of the range */
	m.sequence_id = q0 == 0xff ? UINT64_MAX - q1 : ((uint64_t)q0 << 8 | q1);
	memset(tok, tk, sizeof tok);
	m.token.p = tok;
	m.token.len = 1 + (size_t)(tk % 4);
	fields = srup_msg_fields(m.type);
	for (unsigned bit = 1; bit != 0 && bit <= SRUP_F_PAD; bit <<= 1) {
		struct srup_bytes *var = NULL;
		if ((fields & bit) == 0) {
			continue;
		}
		switch (bit) {
			case SRUP_F_URL:
				var = &m.url;
				break;
			case SRUP_F_DIGEST:
				var = &m.digest;
				break;
			case SRUP_F_DATA_ID:
				var = &m.data_id;
				break;
			case SRUP_F_DATA:
				var = &m.data;
				break;
			case SRUP_F_ENCRYPTED:
				var = &m.encrypted;
				break;
			case SRUP_F_STATUS: {
				uint8_t b = u8(in);
				m.status = (b & 1) ? SRUP_ST_JOIN_SUCCESS : b;
				break;
			}
			case SRUP_F_ACTION_ID:
				m.action_id = u8(in);
				break;
			case SRUP_F_REQ_ID:
				m.req_id = u8(in);
				break;
			case SRUP_F_DEVICE_ID:
				m.device_id = ids[u8(in) % N_IDS].id;
				break;
			case SRUP_F_OBSERVER_ID:
				m.observer_id = ids[u8(in) % N_IDS].id;
				break;
			case SRUP_F_JOINING_DEVICE_ID:
				m.joining_device_id = ids[u8(in) % N_IDS].id;
				break;
			case SRUP_F_TARGET_ID:
				m.target_id = ids[u8(in) % N_IDS].id;
				break;
			case SRUP_F_SOURCE_ID:
				m.source_id = ids[u8(in) % N_IDS].id;
				break;
			case SRUP_F_COUNT:
				m.count = u8(in);
				break;
			case SRUP_F_DEVICE_SEQUENCE:
				m.device_sequence = u8(in);
				break;
			default:
				break;
		}
		if (var != NULL && nv < 5) {
			size_t n = u8(in) % 9;
			for (size_t i = 0; i < n; i++) {
				vbuf[nv][i] = u8(in);
			}
			var->p = n > 0 ? vbuf[nv] : NULL;
			var->len = n;
			nv++;
		}
	}
	return sign_cached(&m, key, out, cap, out_len);
}

static void run_ops(struct run *r, struct in *in)
{
	char topic[256];
	uint8_t buf[4096];
	size_t len = 0;

	for (unsigned n = 0; n < OPS_MAX && in->off < in->len; n++) {
		uint8_t op = u8(in);
		switch (op % 13) {
			case 0: { /* publish raw bytes */
				struct slot *s = use_slot(r, u8(in));
				uint8_t flags = u8(in);
				topic_from(r, in, topic, sizeof topic);
				len = u8(in);
				if (len == 255) {
					len += (size_t)u8(in) * 4; /* up to 1275 bytes: over small max_payload */
				}
				for (size_t i = 0; i < len; i++) {
					buf[i] = u8(in);
				}
				publish(r, s, topic, buf, len, flags);
				break;
			}
			case 1:
			case 2: { /* publish a validly signed message */
				struct slot *s = use_slot(r, u8(in));
				uint8_t flags = u8(in);
				topic_from(r, in, topic, sizeof topic);
				if (r->n_signed >= SIGNED_MAX) {
					break;
				}
				r->n_signed++;
				if (build_signed(in, buf, sizeof buf, &len)) {
					publish(r, s, topic, buf, len, flags);
				}
				break;
			}
			case 3: { /* publish an earlier payload again, byte for byte */
				struct slot *s = use_slot(r, u8(in));
				uint8_t flags = u8(in);
				topic_from(r, in, topic, sizeof topic);
				const struct payload *pl = history_at(r, u8(in));
				if (pl != NULL) {
					if (pl->len > 0) {
						memcpy(buf, pl->p, pl->len);
					}
					publish(r, s, topic, buf, pl->len, flags);
				}
				break;
			}
			case 4: { /* publish an earlier payload, mutated */
				struct slot *s = use_slot(r, u8(in));
				uint8_t flags = u8(in);
				topic_from(r, in, topic, sizeof topic);
				const struct payload *pl = history_at(r, u8(in));
				uint8_t how = u8(in);
				uint8_t pos = u8(in);
				uint8_t val = u8(in);
				if (pl == NULL || pl->len == 0) {
					break;
				}
				memcpy(buf, pl->p, pl->len);
				len = pl->len;
				size_t at = ((size_t)pos * 7 + (size_t)val * 3) % len;
				if (how % 3 == 0) {
					buf[at] ^= (uint8_t)(val | 1);
				} else if (how % 3 == 1) {
					len = at; /* truncated */
				} else if (len < sizeof buf) {
					buf[len++] = val; /* one byte more */
				}
				publish(r, s, topic, buf, len, flags);
				break;
			}
			case 5: { /* READ */
				struct slot *s = use_slot(r, u8(in));
				topic_from(r, in, topic, sizeof topic);
				uint8_t h = u8(in);
				read_check(r, s, topic, h == 0xff ? NULL : history_at(r, h));
				break;
			}
			case 6: { /* SUBSCRIBE (or another access) */
				struct slot *s = use_slot(r, u8(in));
				uint8_t access = u8(in);
				uint8_t share = u8(in);
				topic_from(r, in, topic, sizeof topic);
				if ((share & 3) == 1 && strlen(topic) + 10 < sizeof topic) {
					memmove(topic + 9, topic, strlen(topic) + 1);
					memcpy(topic, "$share/g/", 9);
				} else if ((share & 3) == 3 && strlen(topic) + 8 < sizeof topic) {
					/* "$share/<topic>": a group with no filter after it when the topic
					 * has no slash */
					memmove(topic + 7, topic, strlen(topic) + 1);
					memcpy(topic, "$share/", 7);
				} else if ((share & 3) == 2) {
					size_t tl = strlen(topic);
					if (tl + 3 < sizeof topic) {
						memcpy(topic + tl, (share & 4) ? "/#" : "/+", 3);
					}
				}
				subscribe_check(r, s, topic, access);
				break;
			}
			case 7: { /* DISCONNECT, then maybe a new connection with other credentials */
				struct slot *s = &r->slots[u8(in) % SLOTS];
				uint8_t how = u8(in);
				/* how & 3 == 3: the broker reused the context's memory for a new client
				 * without a DISCONNECT event (a session takeover, see clients.c); how & 4:
				 * the new connection after a DISCONNECT got the old context's memory;
				 * how & 8: it resumes its session (clean start off) */
				bool takeover = (how & 3) == 3;
				bool reuse = takeover || ((how & 4) != 0 && !no_reuse);
				if (!takeover) {
					disconnect(s);
				}
				if ((how & 1) != 0) {
					/* one byte each, in this order (argument order is unspecified) */
					uint8_t cb = u8(in);
					uint8_t nb = u8(in);
					uint8_t xb = u8(in);
					slot_init(s, cid_name(cb), names[nb % N_NAMES], xb % N_CERTS, reuse,
					          (how & 8) != 0);
				}
				break;
			}
			case 8: { /* TICK */
				struct mosquitto_evt_tick t;
				memset(&t, 0, sizeof t);
				if (event(MOSQ_EVT_TICK, &t) != MOSQ_ERR_SUCCESS) {
					fail("TICK did not return SUCCESS");
				}
				break;
			}
			case 9: /* RELOAD (SIGHUP) with a policy variant or a broken policy */
				reload(r, u8(in));
				break;
			case 10: /* admin control topic */
				control(r, use_slot(r, u8(in)), in);
				break;
			case 12: { /* logrotate moves (or deletes) the audit log */
				char moved[256];
				snprintf(moved, sizeof moved, "%s.1", audit_path);
				if ((u8(in) & 1) != 0) {
					(void)rename(audit_path, moved);
				} else {
					(void)unlink(audit_path);
				}
				break;
			}
			case 11:
			default: { /* an operator revokes a key with `srup keys revoke` */
				bool found = false;
				if (srupb_store_key_revoke(r->ctx->store, ids[u8(in) % N_IDS].id, &found) !=
				    SRUP_OK) {
					fail("store revoke failed");
				}
				break;
			}
		}
	}
}

/* --- the audit log: one JSON object per line, valid UTF-8 (a minimal RFC 8259 checker) --- */

struct jv {
	const unsigned char *p;
	const unsigned char *end;
};

static void j_ws(struct jv *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\r' || *j->p == '\n')) {
		j->p++;
	}
}

static bool j_lit(struct jv *j, const char *lit)
{
	size_t n = strlen(lit);
	if ((size_t)(j->end - j->p) < n || memcmp(j->p, lit, n) != 0) {
		return false;
	}
	j->p += n;
	return true;
}

static bool j_digits(struct jv *j)
{
	const unsigned char *start = j->p;
	while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
		j->p++;
	}
	return j->p > start;
}

static bool j_number(struct jv *j)
{
	if (j->p < j->end && *j->p == '-') {
		j->p++;
	}
	if (j->p < j->end && *j->p == '0') {
		j->p++;
	} else if (!j_digits(j)) {
		return false;
	}
	if (j->p < j->end && *j->p == '.') {
		j->p++;
		if (!j_digits(j)) {
			return false;
		}
	}
	if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
		j->p++;
		if (j->p < j->end && (*j->p == '+' || *j->p == '-')) {
			j->p++;
		}
		if (!j_digits(j)) {
			return false;
		}
	}
	return true;
}

static bool j_string(struct jv *j)
{
	if (j->p >= j->end || *j->p != '"') {
		return false;
	}
	j->p++;
	while (j->p < j->end) {
		unsigned char c = *j->p++;
		if (c == '"') {
			return true;
		}
		if (c < 0x20) {
			return false;
		}
		if (c == '\\') {
			if (j->p >= j->end) {
				return false;
			}
			c = *j->p++;
			if (c == 'u') {
				for (int i = 0; i < 4; i++) {
					if (j->p >= j->end || strchr("0123456789abcdefABCDEF", *j->p) == NULL) {
						return false;
					}
					j->p++;
				}
			} else if (strchr("\"\\/bfnrt", c) == NULL || c == '\0') {
				return false;
			}
		}
	}
	return false;
}

static bool j_value(struct jv *j, int depth);

static bool j_members(struct jv *j, int depth, bool object)
{
	char close = object ? '}' : ']';
	j->p++;
	j_ws(j);
	if (j->p < j->end && *j->p == close) {
		j->p++;
		return true;
	}
	for (;;) {
		if (object) {
			if (!j_string(j)) {
				return false;
			}
			j_ws(j);
			if (j->p >= j->end || *j->p != ':') {
				return false;
			}
			j->p++;
		}
		if (!j_value(j, depth + 1)) {
			return false;
		}
		j_ws(j);
		if (j->p < j->end && *j->p == ',') {
			j->p++;
			j_ws(j);
			continue;
		}
		if (j->p < j->end && *j->p == close) {
			j->p++;
			return true;
		}
		return false;
	}
}

static bool j_value(struct jv *j, int depth)
{
	j_ws(j);
	if (j->p >= j->end || depth > 16) {
		return false;
	}
	switch (*j->p) {
		case '{':
			return j_members(j, depth, true);
		case '[':
			return j_members(j, depth, false);
		case '"':
			return j_string(j);
		case 't':
			return j_lit(j, "true");
		case 'f':
			return j_lit(j, "false");
		case 'n':
			return j_lit(j, "null");
		default:
			return j_number(j);
	}
}

/* Valid UTF-8: no stray continuation bytes, overlong forms, surrogates or code points past
 * U+10FFFF. */
static bool utf8_valid(const unsigned char *p, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned char c = p[i];
		size_t len;
		uint32_t cp;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			len = 2;
			cp = c & 0x1fu;
		} else if (c >= 0xe0 && c <= 0xef) {
			len = 3;
			cp = c & 0x0fu;
		} else if (c >= 0xf0 && c <= 0xf4) {
			len = 4;
			cp = c & 0x07u;
		} else {
			return false;
		}
		if (n - i < len) {
			return false;
		}
		for (size_t k = 1; k < len; k++) {
			if ((p[i + k] & 0xc0u) != 0x80u) {
				return false;
			}
			cp = (cp << 6) | (p[i + k] & 0x3fu);
		}
		if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff)) {
			return false;
		}
		i += len;
	}
	return true;
}

/* Every line of an audit log file (if it exists) is one JSON object in valid UTF-8, and the
 * file ends with a complete line. */
static void check_audit_file(const char *path)
{
	static unsigned char buf[1 << 20];
	FILE *f = fopen(path, "rb");
	size_t n;
	size_t off = 0;
	if (f == NULL) {
		return;
	}
	n = fread(buf, 1, sizeof buf, f);
	fclose(f);
	if (n == 0) {
		return;
	}
	if (buf[n - 1] != '\n') {
		fail("the audit log ends inside a line");
	}
	if (!utf8_valid(buf, n)) {
		fail("the audit log is not valid UTF-8");
	}
	while (off < n) {
		const unsigned char *nl = memchr(buf + off, '\n', n - off);
		struct jv j = {buf + off, nl};
		if (nl == NULL) {
			break;
		}
		j_ws(&j);
		if (j.p >= j.end || *j.p != '{' || !j_value(&j, 0)) {
			fail("an audit line is not a JSON object");
		}
		j_ws(&j);
		if (j.p != j.end) {
			fail("an audit line holds more than one JSON value");
		}
		off = (size_t)(nl - buf) + 1;
	}
}

/* Abort if a descriptor is still open on a file of the scratch directory (store, journal,
 * seen index, audit log, policy) once the plugin is cleaned up. */
static void check_no_open_files(void)
{
	DIR *d = opendir("/proc/self/fd");
	size_t rl = strlen(root);
	if (d == NULL) {
		return; /* no procfs: nothing to check with */
	}
	for (;;) {
		struct dirent *de = readdir(d);
		char link[300];
		char target[512];
		ssize_t n;
		if (de == NULL) {
			break;
		}
		snprintf(link, sizeof link, "/proc/self/fd/%s", de->d_name);
		n = readlink(link, target, sizeof target - 1);
		if (n <= 0) {
			continue;
		}
		target[n] = '\0';
		if (strncmp(target, root, rl) == 0 && target[rl] == '/') {
			fprintf(stderr, "fuzz_pipeline: fd %s is still open on %s\n", de->d_name, target);
			fail("a file descriptor leaked");
		}
	}
	closedir(d);
}

static void reset_work_dir(void)
{
	char from[512];
	char to[512];
	remove_tree(work_dir);
	if (mkdir(work_dir, 0700) != 0) {
		fail("cannot make the work store directory");
	}
	snprintf(from, sizeof from, "%s/data.mdb", template_dir);
	snprintf(to, sizeof to, "%s/data.mdb", work_dir);
	copy_file(from, to);
	unlink(audit_path);
	snprintf(to, sizeof to, "%s.1", audit_path);
	unlink(to);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct run r;
	struct in in = {data, size, 0};
	struct mosquitto_opt opts[3];

	setup_fixture();
	no_reuse = getenv("SRUP_FUZZ_NO_REUSE") != NULL;
	if (size == 0) {
		return 0;
	}
	memset(&r, 0, sizeof r);
	reset_work_dir();
	r.variant = (int)(u8(&in) % N_VARIANTS);
	r.file_variant = r.variant;
	write_text(policy_path, variants[r.variant]);

	stub_reset();
	stub_kick_hook = kick_hook;
	stub_quiet = getenv("SRUP_FUZZ_TRACE") == NULL;
	opts[0] = (struct mosquitto_opt){"store", work_dir};
	opts[1] = (struct mosquitto_opt){"audit_log", audit_path};
	opts[2] = (struct mosquitto_opt){"policy", policy_path};
	if (mosquitto_plugin_init(NULL, &r.ud, opts, 3) != MOSQ_ERR_SUCCESS || r.ud == NULL) {
		fail("the plugin did not start with a valid policy and store");
	}
	r.ctx = r.ud;
	r.seen_at_open = r.ctx->policy->seen_index;
	/* server, device, second device, second server, observer, admin, anonymous, and a second
	 * connection of the device */
	slot_init(&r.slots[0], id_text[0], id_text[0], 0, false, false);
	slot_init(&r.slots[1], id_text[2], id_text[2], 2, false, false);
	slot_init(&r.slots[2], id_text[3], id_text[3], 3, false, false);
	slot_init(&r.slots[3], id_text[1], id_text[1], 1, false, false);
	slot_init(&r.slots[4], id_text[4], id_text[4], 4, false, false);
	slot_init(&r.slots[5], id_text[5], id_text[5], 5, false, false);
	slot_init(&r.slots[6], "anon", NULL, CERT_NO_CN, false, false);
	slot_init(&r.slots[7], "c7", id_text[2], 2, false, false);
	cur = &r;

	run_ops(&r, &in);

	if (getenv("SRUP_FUZZ_TRACE") != NULL) {
		/* what the input reached, for writing seeds */
		fprintf(stderr,
		        "fuzz_pipeline: variant %d, %zu ops bytes, accepted %llu, retransmitted %llu, "
		        "dropped %llu, kicks %d, signed %u\n",
		        r.variant, in.off, (unsigned long long)r.ctx->metrics.accepted,
		        (unsigned long long)r.ctx->metrics.retransmitted,
		        (unsigned long long)r.ctx->metrics.dropped_total, stub_kicks, r.n_signed);
	}
	cur = NULL;
	stub_kick_hook = NULL;
	if (mosquitto_plugin_cleanup(r.ud, NULL, 0) != MOSQ_ERR_SUCCESS) {
		fail("cleanup failed");
	}
	for (int e = 0; e < STUB_EVENTS; e++) {
		if (stub_cb[e] != NULL) {
			fail("a callback is still registered after cleanup");
		}
	}
	for (size_t i = 0; i < r.n_history; i++) {
		free(r.history[i].p);
	}
	for (size_t i = 0; i < r.n_acc; i++) {
		free(r.acc[i].p);
	}
	check_no_open_files();
	check_audit_file(audit_path);
	{
		char moved[256];
		snprintf(moved, sizeof moved, "%s.1", audit_path);
		check_audit_file(moved);
	}
	return 0;
}
