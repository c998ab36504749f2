/* SPDX-License-Identifier: MIT
 * cmd_ctrl.c - `srup ctrl`: administer a running broker over MQTT, in the style of
 * mosquitto_ctrl. Each command is one JSON request on $CONTROL/srup/v1 (MQTT v5, QoS 1) with a
 * response topic of its own under $CONTROL/srup/v1/response/ and random correlation data; the
 * answer with the same correlation data is the result. Lists are fetched page by page. The
 * broker checks that the client is an admin (policy `admin`), validates and audits each command. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <jansson.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <srup/srup.h>

#include "cmds.h"
#include "util.h"

#define CTRL_TOPIC    "$CONTROL/srup/v1"
#define CTRL_RESPONSE "$CONTROL/srup/v1/response"
#define CTRL_PEM_MAX  8000 /* the broker takes commands of up to 8192 bytes */
#define CTRL_PAGES    100000

static void help(FILE *f)
{
	fprintf(f,
	        "usage: srup ctrl [connection options] [--json] COMMAND [ARGS]\n"
	        "\n"
	        "Administer a running broker through its admin topic $CONTROL/srup/v1 (the client\n"
	        "must be an admin of the broker's policy; every command is in its audit log).\n"
	        "\n"
	        "commands:\n"
	        "  keys list                          every key: id, role, status, added\n"
	        "  keys show ID                       one key, with bits, fingerprint, PEM and any\n"
	        "                                     retiring key\n"
	        "  keys add ID ROLE PEMFILE [--force] add a public key (role server, device or\n"
	        "                                     observer); --force replaces an active one\n"
	        "  keys revoke ID                     revoke a key (drops its memberships, closes\n"
	        "                                     its connection)\n"
	        "  keys rotate ID PEMFILE --overlap T put a new key in force; the old one still\n"
	        "                                     verifies for T (e.g. 90s, 15m, 1h, 7d; 0: not\n"
	        "                                     at all; at most 30d), then is retired\n"
	        "  members list [--device ID]         memberships: device, server, joined\n"
	        "  members remove DEVICE SERVER       end one membership\n"
	        "  marks show ID                      the replay marks of a sender\n"
	        "  joins list                         pending joins (verified requests not answered)\n"
	        "  reload                             re-read the policy, reopen the audit log\n"
	        "  stats                              counters and store gauges\n"
	        "\n"
	        "connection options:\n"
	        "  --host HOST            broker (default localhost)\n"
	        "  --port N               (default 8883 with --cafile, else 1883)\n"
	        "  --cafile FILE          CA certificate(s): connect with TLS\n"
	        "  --cert FILE --key FILE client certificate and key (the admin's identity)\n"
	        "  --username NAME        MQTT username (with a broker that authenticates it)\n"
	        "  --password-file FILE   its password (first line); or SRUP_CTRL_PASSWORD\n"
	        "  --client-id ID         (default srup-ctrl-<random>)\n"
	        "  --timeout SECONDS      wait for each answer (default 10)\n"
	        "\n"
	        "output: a table, or with --json the answer's data as JSON (for lists, all pages\n"
	        "merged into one array).\n"
	        "Exit codes: 0 ok, 1 the broker answered with an error, 3 usage, connection or\n"
	        "I/O errors, or no answer in time.\n");
}

/* --- the MQTT exchange --- */

struct ctrl {
	struct mosquitto *mosq;
	char topic[sizeof CTRL_RESPONSE + 40];
	uint8_t corr[16];
	int sub_mid;
	bool connected;
	bool subscribed;
	bool failed;
	char error[256];
	json_t *answer; /* the answer to the request in flight */
	double timeout;
};

static void on_connect(struct mosquitto *m, void *arg, int rc, int flags,
                       const mosquitto_property *props)
{
	struct ctrl *c = arg;
	(void)m;
	(void)flags;
	(void)props;
	if (rc != 0) {
		c->failed = true;
		snprintf(c->error, sizeof c->error, "connection refused: %s", mosquitto_reason_string(rc));
		return;
	}
	c->connected = true;
}

static void on_subscribe(struct mosquitto *m, void *arg, int mid, int qos_count, const int *granted)
{
	struct ctrl *c = arg;
	(void)m;
	if (mid != c->sub_mid) {
		return;
	}
	if (qos_count < 1 || granted[0] > 2) {
		c->failed = true;
		snprintf(c->error, sizeof c->error,
		         "the broker refused the response topic (is this client an admin?)");
		return;
	}
	c->subscribed = true;
}

static void on_message(struct mosquitto *m, void *arg, const struct mosquitto_message *msg,
                       const mosquitto_property *props)
{
	struct ctrl *c = arg;
	void *corr = NULL;
	uint16_t corr_len = 0;
	json_error_t jerr;
	(void)m;

	if (strcmp(msg->topic, c->topic) != 0 ||
	    mosquitto_property_read_binary(props, MQTT_PROP_CORRELATION_DATA, &corr, &corr_len,
	                                   false) == NULL) {
		return;
	}
	if (corr_len == sizeof c->corr && memcmp(corr, c->corr, sizeof c->corr) == 0 &&
	    c->answer == NULL && msg->payloadlen > 0) {
		c->answer =
		        json_loadb(msg->payload, (size_t)msg->payloadlen, JSON_REJECT_DUPLICATES, &jerr);
		if (c->answer == NULL || !json_is_object(c->answer)) {
			json_decref(c->answer);
			c->answer = NULL;
			c->failed = true;
			snprintf(c->error, sizeof c->error, "the answer is not a JSON object: %s", jerr.text);
		}
	}
	free(corr);
}

static double mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Run the client's loop until *flag, a failure, or the timeout. */
static bool wait_for(struct ctrl *c, const bool *flag, json_t *const *answer, const char *what)
{
	double end = mono() + c->timeout;
	while (!c->failed && (flag == NULL || !*flag) && (answer == NULL || *answer == NULL)) {
		int rc = mosquitto_loop(c->mosq, 100, 1);
		if (rc != MOSQ_ERR_SUCCESS) {
			c->failed = true;
			snprintf(c->error, sizeof c->error, "%s: %s", what,
			         rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
			break;
		}
		if (mono() > end) {
			c->failed = true;
			snprintf(c->error, sizeof c->error, "%s: no answer in %.0f s", what, c->timeout);
			break;
		}
	}
	return !c->failed;
}

static bool random_hex(uint8_t *raw, size_t n, char *hex, size_t cap)
{
	return getrandom(raw, n, 0) == (ssize_t)n && srup_hex_encode(raw, n, hex, cap) == SRUP_OK;
}

struct conn_opts {
	const char *host;
	const char *port;
	const char *cafile;
	const char *cert;
	const char *key;
	const char *username;
	const char *password_file;
	const char *client_id;
	const char *timeout;
};

static bool ctrl_connect(struct ctrl *c, const struct conn_opts *o)
{
	char id[48];
	char sfx[17];
	uint8_t raw[8];
	char *password = NULL;
	uint64_t port = o->cafile != NULL ? 8883 : 1883;
	uint64_t timeout = 10;
	int rc;

	if (o->port != NULL &&
	    (tool_parse_uint(o->port, strlen(o->port), 65535, &port) != 0 || port == 0)) {
		tool_err("ctrl", "--port must be 1..65535");
		return false;
	}
	if (o->timeout != NULL &&
	    (tool_parse_uint(o->timeout, strlen(o->timeout), 3600, &timeout) != 0 || timeout == 0)) {
		tool_err("ctrl", "--timeout must be 1..3600 seconds");
		return false;
	}
	c->timeout = (double)timeout;
	if ((o->cert == NULL) != (o->key == NULL)) {
		tool_err("ctrl", "--cert and --key go together");
		return false;
	}
	if (o->cert != NULL && o->cafile == NULL) {
		tool_err("ctrl", "--cert needs --cafile (TLS)");
		return false;
	}
	if (!random_hex(raw, sizeof raw, sfx, sizeof sfx)) {
		tool_err("ctrl", "no random bytes");
		return false;
	}
	snprintf(id, sizeof id, "srup-ctrl-%s", sfx);
	snprintf(c->topic, sizeof c->topic, "%s/%s", CTRL_RESPONSE, sfx);
	c->mosq = mosquitto_new(o->client_id != NULL ? o->client_id : id, true, c);
	if (c->mosq == NULL) {
		tool_err("ctrl", "cannot make an MQTT client: %s", strerror(errno));
		return false;
	}
	mosquitto_int_option(c->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
	mosquitto_connect_v5_callback_set(c->mosq, on_connect);
	mosquitto_subscribe_callback_set(c->mosq, on_subscribe);
	mosquitto_message_v5_callback_set(c->mosq, on_message);
	if (o->cafile != NULL) {
		rc = mosquitto_tls_set(c->mosq, o->cafile, NULL, o->cert, o->key, NULL);
		if (rc != MOSQ_ERR_SUCCESS) {
			tool_err("ctrl", "TLS files: %s", mosquitto_strerror(rc));
			return false;
		}
	}
	if (o->username != NULL) {
		const char *env = getenv("SRUP_CTRL_PASSWORD");
		if (o->password_file != NULL) {
			uint8_t *buf = NULL;
			size_t len = 0;
			char err[256];
			if (tool_read_all(o->password_file, 1024, &buf, &len, err, sizeof err) !=
			    TOOL_READ_OK) {
				tool_err("ctrl", "--password-file: %s", err);
				return false;
			}
			buf[strcspn((char *)buf, "\r\n")] = '\0';
			password = (char *)buf;
		} else if (env != NULL) {
			password = strdup(env);
		}
		rc = mosquitto_username_pw_set(c->mosq, o->username, password);
		free(password);
		if (rc != MOSQ_ERR_SUCCESS) {
			tool_err("ctrl", "username: %s", mosquitto_strerror(rc));
			return false;
		}
	}
	rc = mosquitto_connect(c->mosq, o->host != NULL ? o->host : "localhost", (int)port, 30);
	if (rc != MOSQ_ERR_SUCCESS) {
		tool_err("ctrl", "cannot connect to %s:%" PRIu64 ": %s",
		         o->host != NULL ? o->host : "localhost", port,
		         rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
		return false;
	}
	if (!wait_for(c, &c->connected, NULL, "connect")) {
		tool_err("ctrl", "%s", c->error);
		return false;
	}
	rc = mosquitto_subscribe_v5(c->mosq, &c->sub_mid, c->topic, 1, 0, NULL);
	if (rc != MOSQ_ERR_SUCCESS || !wait_for(c, &c->subscribed, NULL, "subscribe")) {
		tool_err("ctrl", "%s", rc != MOSQ_ERR_SUCCESS ? mosquitto_strerror(rc) : c->error);
		return false;
	}
	return true;
}

/* Send req and wait for its answer (*answer: a new reference). */
static bool ctrl_request(struct ctrl *c, json_t *req, json_t **answer)
{
	mosquitto_property *props = NULL;
	char hex[2 * sizeof c->corr + 1];
	char *text = json_dumps(req, JSON_COMPACT);
	int rc;

	*answer = NULL;
	if (text == NULL || !random_hex(c->corr, sizeof c->corr, hex, sizeof hex)) {
		free(text);
		tool_err("ctrl", "cannot write the request");
		return false;
	}
	if (mosquitto_property_add_string(&props, MQTT_PROP_RESPONSE_TOPIC, c->topic) !=
	            MOSQ_ERR_SUCCESS ||
	    mosquitto_property_add_binary(&props, MQTT_PROP_CORRELATION_DATA, c->corr,
	                                  sizeof c->corr) != MOSQ_ERR_SUCCESS) {
		free(text);
		mosquitto_property_free_all(&props);
		tool_err("ctrl", "out of memory");
		return false;
	}
	rc = mosquitto_publish_v5(c->mosq, NULL, CTRL_TOPIC, (int)strlen(text), text, 1, false, props);
	mosquitto_property_free_all(&props);
	free(text);
	if (rc != MOSQ_ERR_SUCCESS) {
		tool_err("ctrl", "publish: %s", mosquitto_strerror(rc));
		return false;
	}
	if (!wait_for(c, NULL, &c->answer, "waiting for the answer")) {
		tool_err("ctrl", "%s", c->error);
		return false;
	}
	*answer = c->answer;
	c->answer = NULL;
	return true;
}

/* --- output --- */

static const char *str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s != NULL ? s : "-";
}

/* Control characters from the broker (a device's data can reach a detail text) never reach
 * the terminal raw. */
static void print_safe(FILE *f, const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;
		if ((ch < 0x20 && ch != '\n') || ch == 0x7f) {
			fprintf(f, "\\x%02x", ch);
		} else {
			fputc(ch, f);
		}
	}
}

/* A number of the answer in decimal (an integer, or a "0x" hex text above jansson's range). */
static void number_text(const json_t *v, char *buf, size_t cap)
{
	uint64_t n = 0;
	if (json_is_integer(v)) {
		snprintf(buf, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	} else if (json_is_string(v) &&
	           srup_id_parse(json_string_value(v), json_string_length(v), &n) == SRUP_OK) {
		snprintf(buf, cap, "%" PRIu64, n);
	} else {
		snprintf(buf, cap, "-");
	}
}

static void print_number(const json_t *v)
{
	char num[24];
	if (json_is_string(v) && strncmp(json_string_value(v), "0x", 2) != 0) {
		print_safe(stdout, json_string_value(v));
		return;
	}
	number_text(v, num, sizeof num);
	printf("%s", num);
}

static void print_table(const char *what, const json_t *data, const json_t *list)
{
	size_t i;
	json_t *e;

	if (strcmp(what, "keys list") == 0) {
		printf("%-16s  %-8s  %-7s  %s\n", "ID", "ROLE", "STATUS", "ADDED");
		json_array_foreach(list, i, e)
		{
			printf("%-16s  %-8s  %-7s  %s\n", str(e, "id"), str(e, "role"), str(e, "status"),
			       str(e, "added"));
		}
	} else if (strcmp(what, "members list") == 0) {
		printf("%-16s  %-16s  %s\n", "DEVICE", "SERVER", "JOINED");
		json_array_foreach(list, i, e)
		{
			printf("%-16s  %-16s  %s\n", str(e, "device"), str(e, "server"), str(e, "joined"));
		}
	} else if (strcmp(what, "marks show") == 0) {
		printf("%-40s  %20s  %s\n", "CHANNEL", "SEQUENCE_ID", "PAYLOAD_SHA256");
		json_array_foreach(json_object_get(data, "marks"), i, e)
		{
			char num[24];
			number_text(json_object_get(e, "sequence_id"), num, sizeof num);
			printf("%-40s  %20s  %s\n", str(e, "channel"), num, str(e, "payload_sha256"));
		}
		if (json_is_true(json_object_get(data, "truncated"))) {
			fprintf(stderr, "srup ctrl: marks show: the first %zu marks; the sender has more\n",
			        json_array_size(json_object_get(data, "marks")));
		}
	} else if (strcmp(what, "joins list") == 0) {
		printf("%-16s  %-16s  %-8s  %-8s  %s\n", "DEVICE", "SERVER", "KIND", "ANSWERED",
		       "EXPIRES_IN_S");
		json_array_foreach(json_object_get(data, "pending"), i, e)
		{
			printf("%-16s  %-16s  %-8s  %-8s  ", str(e, "device"), str(e, "server"), str(e, "kind"),
			       json_is_true(json_object_get(e, "answered")) ? "yes" : "no");
			print_number(json_object_get(e, "expires_in_s"));
			printf("\n");
		}
	} else {
		/* one object: key: value lines, nested objects flattened with dots */
		const char *k;
		json_t *v;
		json_object_foreach((json_t *)data, k, v)
		{
			if (json_is_object(v)) {
				const char *k2;
				json_t *v2;
				json_object_foreach(v, k2, v2)
				{
					printf("%s.%s: ", k, k2);
					print_number(v2);
					printf("\n");
				}
			} else if (json_is_string(v) && strcmp(k, "pem") == 0) {
				printf("%s:\n", k);
				print_safe(stdout, json_string_value(v));
				printf("\n");
			} else {
				printf("%s: ", k);
				if (json_is_true(v) || json_is_false(v)) {
					printf("%s", json_is_true(v) ? "true" : "false");
				} else {
					print_number(v);
				}
				printf("\n");
			}
		}
	}
}

/* --- commands --- */

struct verb {
	const char *words; /* "keys list" */
	const char *command;
	size_t n_args;        /* positionals after the words */
	const char *list_key; /* a paged list: the answer's array */
};

static const struct verb VERBS[] = {
        {"keys list", "listKeys", 0, "keys"},
        {"keys show", "getKey", 1, NULL},
        {"keys add", "addKey", 3, NULL},
        {"keys revoke", "revokeKey", 1, NULL},
        {"keys rotate", "rotateKey", 2, NULL},
        {"members list", "listMembers", 0, "members"},
        {"members remove", "removeMember", 2, NULL},
        {"marks show", "getMarks", 1, NULL},
        {"joins list", "listPendingJoins", 0, NULL},
        {"reload", "reload", 0, NULL},
        {"stats", "getStats", 0, NULL},
};

/* The canonical spelling of an id argument (lowercase, no 0x, no leading zeros), as the broker
 * takes it; NULL (reported) if s is not an id. */
static json_t *id_arg(const char *what, const char *s)
{
	uint64_t id;
	char back[SRUP_ID_TEXT_MAX];
	if (srup_id_parse(s, strlen(s), &id) != SRUP_OK ||
	    srup_id_format(id, back, sizeof back) != SRUP_OK) {
		tool_err("ctrl", "%s '%s' is not an id (hex, up to 16 digits)", what, s);
		return NULL;
	}
	return json_string(back);
}

static bool set_id(json_t *req, const char *key, const char *what, const char *s)
{
	json_t *v = id_arg(what, s);
	return v != NULL && json_object_set_new(req, key, v) == 0;
}

static bool set_pem(json_t *req, const char *path)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	char err[256];
	enum tool_read r = tool_read_all(path, CTRL_PEM_MAX, &buf, &len, err, sizeof err);
	if (r != TOOL_READ_OK) {
		tool_err("ctrl", "%s: %s", path,
		         r == TOOL_READ_TOO_BIG ? "too long for a public key" : err);
		return false;
	}
	/* the broker parses it and keeps only the public key; it never goes in the audit log */
	json_object_set_new(req, "pem", json_stringn((const char *)buf, len));
	free(buf);
	return json_object_get(req, "pem") != NULL;
}

/* The request of verb v with its arguments; NULL (reported) on a bad argument. */
static json_t *build_request(const struct verb *v, const char **args, const char *overlap,
                             int force, const char *device)
{
	json_t *req = json_pack("{s:s}", "command", v->command);
	const char *c = v->command;
	bool ok = req != NULL;
	uint64_t secs = 0;

	if (ok && (strcmp(c, "getKey") == 0 || strcmp(c, "revokeKey") == 0 ||
	           strcmp(c, "getMarks") == 0 || strcmp(c, "addKey") == 0 ||
	           strcmp(c, "rotateKey") == 0 || strcmp(c, "removeMember") == 0)) {
		ok = set_id(req, "id", "ID", args[0]);
	}
	if (ok && strcmp(c, "removeMember") == 0) {
		ok = set_id(req, "server", "SERVER", args[1]);
	}
	if (ok && strcmp(c, "listMembers") == 0 && device != NULL) {
		ok = set_id(req, "id", "--device", device);
	}
	if (ok && strcmp(c, "addKey") == 0) {
		json_object_set_new(req, "role", json_string(args[1]));
		json_object_set_new(req, "force", json_boolean(force));
		ok = set_pem(req, args[2]);
	}
	if (ok && strcmp(c, "rotateKey") == 0) {
		if (overlap == NULL) {
			tool_err("ctrl", "keys rotate needs --overlap (e.g. 1h; 0 retires the old key now)");
			ok = false;
		} else if (tool_parse_duration(overlap, 30 * 86400, &secs) != 0) {
			tool_err("ctrl", "--overlap '%s': a duration like 90s, 15m, 1h or 7d, at most 30d",
			         overlap);
			ok = false;
		} else {
			json_object_set_new(req, "overlap", json_integer((json_int_t)secs));
			ok = set_pem(req, args[1]);
		}
	} else if (ok && overlap != NULL) {
		tool_err("ctrl", "--overlap goes with keys rotate");
		ok = false;
	}
	if (ok && force && strcmp(c, "addKey") != 0) {
		tool_err("ctrl", "--force goes with keys add");
		ok = false;
	}
	if (ok && device != NULL && strcmp(c, "listMembers") != 0) {
		tool_err("ctrl", "--device goes with members list");
		ok = false;
	}
	if (!ok) {
		json_decref(req);
		return NULL;
	}
	return req;
}

/* Run one request, or every page of a list; *data: the last answer's data, with the pages'
 * entries merged into its list. Returns an exit code. */
static int run(struct ctrl *c, const struct verb *v, json_t *req, json_t **data, json_t **list)
{
	for (size_t page = 0; page < CTRL_PAGES; page++) {
		json_t *ans = NULL;
		json_t *d;
		json_t *next;
		const char *result;

		if (!ctrl_request(c, req, &ans)) {
			return SRUP_EXIT_USAGE;
		}
		result = json_string_value(json_object_get(ans, "result"));
		if (result == NULL || strcmp(result, "ok") != 0) {
			fprintf(stderr, "srup ctrl: %s: ", v->words);
			print_safe(stderr, str(ans, "detail"));
			fprintf(stderr, "\n");
			fflush(stdout);
			json_decref(ans);
			return SRUP_EXIT_BADSIG; /* 1: the broker answered with an error */
		}
		d = json_object_get(ans, "data");
		json_decref(*data);
		*data = d != NULL ? json_incref(d) : json_object();
		if (v->list_key != NULL) {
			json_array_extend(*list, json_object_get(*data, v->list_key));
		}
		next = json_object_get(*data, "next");
		if (v->list_key == NULL || next == NULL) {
			json_decref(ans);
			return SRUP_EXIT_OK;
		}
		/* the next page starts after the last entry of this one */
		if (json_is_string(next)) {
			json_object_set(req, "after", next);
		} else {
			json_object_set(req, "after", json_object_get(next, "after"));
			json_object_set(req, "after_server", json_object_get(next, "after_server"));
		}
		json_object_set_new(req, "limit", json_integer(1000));
		json_decref(ans);
	}
	tool_err("ctrl", "more than %d pages: stopped", CTRL_PAGES);
	return SRUP_EXIT_USAGE;
}

int srup_cmd_ctrl(int argc, char **argv)
{
	struct conn_opts o;
	const char *overlap = NULL;
	const char *device = NULL;
	int json = 0;
	int force = 0;
	const struct tool_opt opts[] = {
	        {"host", &o.host, NULL},
	        {"port", &o.port, NULL},
	        {"cafile", &o.cafile, NULL},
	        {"cert", &o.cert, NULL},
	        {"key", &o.key, NULL},
	        {"username", &o.username, NULL},
	        {"password-file", &o.password_file, NULL},
	        {"client-id", &o.client_id, NULL},
	        {"timeout", &o.timeout, NULL},
	        {"json", NULL, &json},
	        {"force", NULL, &force},
	        {"overlap", &overlap, NULL},
	        {"device", &device, NULL},
	};
	const char *pos[6];
	size_t n_pos = 0;
	const struct verb *v = NULL;
	size_t n_words = 0;
	struct ctrl c;
	json_t *req;
	json_t *data = NULL;
	json_t *list = json_array();
	int rc;

	memset(&o, 0, sizeof o);
	memset(&c, 0, sizeof c);
	enum tool_parse pr = tool_parse_args(argc, argv, opts, sizeof opts / sizeof opts[0], pos,
	                                     sizeof pos / sizeof pos[0], &n_pos);
	if (pr == TOOL_PARSE_HELP) {
		help(stdout);
		json_decref(list);
		return SRUP_EXIT_OK;
	}
	if (pr != TOOL_PARSE_OK) {
		json_decref(list);
		return SRUP_EXIT_USAGE;
	}
	for (size_t i = 0; i < sizeof VERBS / sizeof VERBS[0] && v == NULL; i++) {
		size_t wn = strchr(VERBS[i].words, ' ') != NULL ? 2 : 1;
		char words[64];
		if (n_pos < wn) {
			continue;
		}
		snprintf(words, sizeof words, wn == 2 ? "%s %s" : "%s", pos[0], wn == 2 ? pos[1] : "");
		if (strcmp(words, VERBS[i].words) == 0) {
			v = &VERBS[i];
			n_words = wn;
		}
	}
	if (v == NULL) {
		tool_err("ctrl", n_pos == 0 ? "which command? (see srup ctrl --help)"
		                            : "unknown command (see srup ctrl --help)");
		json_decref(list);
		return SRUP_EXIT_USAGE;
	}
	if (n_pos - n_words != v->n_args) {
		tool_err("ctrl", "%s takes %zu argument%s (see srup ctrl --help)", v->words, v->n_args,
		         v->n_args == 1 ? "" : "s");
		json_decref(list);
		return SRUP_EXIT_USAGE;
	}
	req = build_request(v, pos + n_words, overlap, force, device);
	if (req == NULL) {
		json_decref(list);
		return SRUP_EXIT_USAGE;
	}
	signal(SIGPIPE, SIG_IGN);
	mosquitto_lib_init();
	rc = ctrl_connect(&c, &o) ? run(&c, v, req, &data, &list) : SRUP_EXIT_USAGE;
	if (c.mosq != NULL) {
		mosquitto_disconnect(c.mosq);
		mosquitto_destroy(c.mosq);
	}
	mosquitto_lib_cleanup();
	json_decref(req);
	if (rc == SRUP_EXIT_OK) {
		if (json) {
			char *text = json_dumps(v->list_key != NULL ? list : data,
			                        JSON_INDENT(2) | JSON_PRESERVE_ORDER);
			if (text != NULL) {
				printf("%s\n", text);
				free(text);
			}
		} else {
			print_table(v->words, data, list);
		}
		if (fflush(stdout) != 0 || ferror(stdout)) {
			tool_err("ctrl", "cannot write to standard output");
			rc = SRUP_EXIT_USAGE;
		}
	}
	json_decref(data);
	json_decref(list);
	return rc;
}
