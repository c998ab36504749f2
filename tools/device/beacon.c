/* SPDX-License-Identifier: MIT
 * beacon.c - the observed join's local channel (spec §5.5, paper §5.2.2): the joining device
 * proves the value it decrypted to the observer beacon over a unix socket, and the beacon (role
 * observer) compares it with the value of the server's OBSERVE_REQ and reports the verdict. */
#include "device.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/crypto.h>

/* Fill a unix socket address; -1 if path does not fit. */
static int unix_addr(struct sockaddr_un *sa, const char *path)
{
	size_t n = strlen(path);

	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (n == 0 || n >= sizeof(sa->sun_path)) {
		return -1;
	}
	memcpy(sa->sun_path, path, n + 1);
	return 0;
}

void dev_beacon_prove(struct srupd *d)
{
	struct sockaddr_un sa;
	char line[160];
	int fd;
	int n;

	if (unix_addr(&sa, devst.beacon_socket) != 0) {
		srupd_log(SRUPD_WARN, "observed join: bad beacon socket path");
		return;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		srupd_log(SRUPD_WARN, "observed join: beacon at %s unreachable: %s", sa.sun_path,
		          strerror(errno));
		if (fd >= 0) {
			close(fd);
		}
		return;
	}
	n = snprintf(line, sizeof(line), "PROVE %s %s\n", d->cfg.identity_text, devst.join_value);
	if (write(fd, line, (size_t)n) != n) {
		srupd_log(SRUPD_WARN, "observed join: write to beacon failed");
	} else {
		srupd_log(SRUPD_INFO, "observed join: value shown to the beacon");
	}
	close(fd);
}

static struct obs_entry *obs_find(uint64_t joining, int create)
{
	size_t i;

	for (i = 0; i < OBS_MAX; i++) {
		if (devst.obs[i].used && devst.obs[i].joining == joining) {
			return &devst.obs[i];
		}
	}
	if (!create) {
		return NULL;
	}
	for (i = 0; i < OBS_MAX; i++) {
		if (!devst.obs[i].used) {
			memset(&devst.obs[i], 0, sizeof(devst.obs[i]));
			devst.obs[i].used = 1;
			devst.obs[i].joining = joining;
			devst.obs[i].since = time(NULL);
			return &devst.obs[i];
		}
	}
	return NULL;
}

/* Both halves present: compare. A match is reported as OBSERVED_JOIN_VALID at once. A mismatch
 * (a stale proof from an earlier attempt, or someone else's) is discarded and the beacon keeps
 * waiting for the right one until the timeout, when obs_sweep reports INVALID. So a wrong proof
 * can neither win a race nor block the real device (lock held). */
static void obs_decide(struct srupd *d, struct obs_entry *o)
{
	size_t a;
	size_t b;
	char jid[SRUP_ID_TEXT_MAX];

	if (!o->have_req || !o->have_proof) {
		return;
	}
	a = strlen(o->req_value);
	b = strlen(o->proof_value);
	srupd_id_text(o->joining, jid);
	if (a != b || a == 0 || CRYPTO_memcmp(o->req_value, o->proof_value, a) != 0) {
		srupd_log(SRUPD_WARN, "beacon: device %s showed a value that does not match", jid);
		o->wrong_proofs++;
		o->have_proof = 0;
		OPENSSL_cleanse(o->proof_value, sizeof(o->proof_value));
		return;
	}
	srupd_log(SRUPD_INFO, "beacon: device %s proved the right value", jid);
	dev_send_response(d, o->token, SRUP_ST_OBSERVED_JOIN_VALID);
	OPENSSL_cleanse(o, sizeof(*o));
	o->used = 0;
}

void dev_beacon_observe_req(struct srupd *d, const struct srup_msg *m)
{
	struct obs_entry *o;

	if (strcmp(d->cfg.role, "observer") != 0) {
		srupd_log(SRUPD_WARN, "OBSERVE_REQ but this device is not an observer: ignored");
		return;
	}
	o = obs_find(m->joining_device_id, 1);
	if (o == NULL) {
		return;
	}
	if (dev_open_value(d, &m->encrypted, o->req_value) != 0) {
		dev_token_copy(o->token, &m->token);
		dev_send_response(d, o->token, SRUP_ST_OBSERVED_JOIN_FAIL);
		o->used = 0;
		return;
	}
	dev_token_copy(o->token, &m->token);
	o->have_req = 1;
	o->since = time(NULL);
	obs_decide(d, o);
}

/* A half that waited longer than the timeout: a request whose device never proved the value is
 * reported as OBSERVED_JOIN_INVALID (wrong values were shown) or OBSERVED_JOIN_FAIL (none was);
 * a proof nobody asked about is forgotten (lock held). */
static void obs_sweep(struct srupd *d)
{
	time_t now = time(NULL);
	size_t i;

	for (i = 0; i < OBS_MAX; i++) {
		struct obs_entry *o = &devst.obs[i];

		if (!o->used || now - o->since < (time_t)d->cfg.timeout_s) {
			continue;
		}
		if (o->have_req) {
			unsigned st = o->wrong_proofs > 0 ? SRUP_ST_OBSERVED_JOIN_INVALID
			                                  : SRUP_ST_OBSERVED_JOIN_FAIL;
			srupd_log(SRUPD_WARN, "beacon: device %llx never proved its value: %s",
			          (unsigned long long)o->joining, srup_status_name(st));
			dev_send_response(d, o->token, st);
		}
		OPENSSL_cleanse(o, sizeof(*o));
		o->used = 0;
	}
}

void *dev_beacon_thread(void *arg)
{
	struct srupd *d = arg;
	struct sockaddr_un sa;
	int lfd;

	if (unix_addr(&sa, d->cfg.beacon_socket) != 0) {
		srupd_log(SRUPD_ERR, "beacon socket path too long");
		return NULL;
	}
	unlink(sa.sun_path);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 8) != 0) {
		srupd_log(SRUPD_ERR, "beacon socket %s: %s", sa.sun_path, strerror(errno));
		return NULL;
	}
	srupd_log(SRUPD_INFO, "beacon listening on %s", sa.sun_path);
	for (;;) {
		char line[256];
		char *argv[4];
		size_t n = 0;
		struct pollfd pfd = {.fd = lfd, .events = POLLIN};
		int cfd;
		uint64_t jid;
		struct obs_entry *o;

		if (poll(&pfd, 1, 1000) <= 0) {
			pthread_mutex_lock(&d->lock);
			obs_sweep(d);
			pthread_mutex_unlock(&d->lock);
			continue;
		}
		cfd = accept(lfd, NULL, NULL);
		if (cfd < 0) {
			continue;
		}
		while (n + 1 < sizeof(line)) {
			ssize_t r = read(cfd, line + n, 1);
			if (r <= 0 || line[n] == '\n') {
				break;
			}
			n++;
		}
		line[n] = '\0';
		close(cfd);
		if (srupd_split(line, argv, 4) != 3 || strcmp(argv[0], "PROVE") != 0 ||
		    srup_id_parse(argv[1], strlen(argv[1]), &jid) != SRUP_OK ||
		    strlen(argv[2]) > VALUE_MAX) {
			srupd_log(SRUPD_WARN, "beacon: malformed proof ignored");
			continue;
		}
		pthread_mutex_lock(&d->lock);
		o = obs_find(jid, 1);
		if (o != NULL) {
			/* The latest proof replaces an earlier one still waiting for its request. */
			snprintf(o->proof_value, sizeof(o->proof_value), "%s", argv[2]);
			o->have_proof = 1;
			if (!o->have_req) {
				o->since = time(NULL);
			}
			obs_decide(d, o);
		}
		pthread_mutex_unlock(&d->lock);
	}
	return NULL;
}
