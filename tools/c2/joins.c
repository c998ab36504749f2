/* SPDX-License-Identifier: MIT
 * joins.c - srup-c2's join flows (spec §5.5): simple (JOIN_REQ -> JOIN_SUCCESS), human-moderated
 * (HM_JOIN_REQ -> HM_JOIN_RESP with an encrypted value -> operator approves -> JOIN_SUCCESS) and
 * observed (OBS_JOIN_REQ -> OBS_JOIN_RESP + OBSERVE_REQ -> the beacon's verdict -> outcome). */
#include "c2.h"
#include "show.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

static void new_value(char out[VALUE_LEN + 1])
{
	uint8_t b[VALUE_LEN / 2];

	if (RAND_bytes(b, sizeof(b)) != 1) {
		srupd_log(SRUPD_ERR, "RAND_bytes failed");
		abort();
	}
	(void)srup_hex_encode(b, sizeof(b), out, VALUE_LEN + 1);
	OPENSSL_cleanse(b, sizeof(b));
}

/* Encrypt value to the public key of peer id; *blob malloc'd. */
static int seal_to(struct srupd *d, uint64_t id, const char *value, uint8_t **blob, size_t *len)
{
	const struct srup_key *k = srupd_key_get(d->cfg.peer_keys, id);

	if (k == NULL) {
		return -1;
	}
	return srup_envelope_seal(k, (const uint8_t *)value, strlen(value), blob, len, NULL) == SRUP_OK
	               ? 0
	               : -1;
}

static struct pjoin *pjoin_new(void)
{
	size_t i;

	for (i = 0; i < JOINS_MAX; i++) {
		if (!c2st.j[i].used) {
			memset(&c2st.j[i], 0, sizeof(c2st.j[i]));
			c2st.j[i].used = 1;
			return &c2st.j[i];
		}
	}
	return NULL;
}

static struct pjoin *pjoin_find_dev(uint64_t dev)
{
	size_t i;

	for (i = 0; i < JOINS_MAX; i++) {
		if (c2st.j[i].used && c2st.j[i].dev == dev && c2st.j[i].outcome == 0) {
			return &c2st.j[i];
		}
	}
	return NULL;
}

static void join_decide(struct srupd *d, struct pjoin *j, unsigned status)
{
	char id[SRUP_ID_TEXT_MAX];

	srupd_id_text(j->dev, id);
	if (status == SRUP_ST_JOIN_SUCCESS) {
		c2_set_member(d, j->dev, 1);
	}
	c2_send_response(d, j->dev, j->dev_token, status);
	srupd_log(SRUPD_INFO, "join %s: %s", id, srup_status_name(status));
	j->outcome = status;
	OPENSSL_cleanse(j->value, sizeof(j->value));
	c2st.events++;
}

void c2_join_req(struct srupd *d, const struct srup_msg *m)
{
	char tok[SRUP_TOKEN_LEN + 1];
	char id[SRUP_ID_TEXT_MAX];

	c2_token_copy(tok, &m->token);
	srupd_id_text(m->sender_id, id);
	if (strcmp(d->cfg.join_policy, "accept") != 0) {
		srupd_log(SRUPD_INFO, "join %s refused by policy", id);
		c2_send_response(d, m->sender_id, tok, SRUP_ST_JOIN_REFUSED);
		return;
	}
	c2_set_member(d, m->sender_id, 1);
	c2_send_response(d, m->sender_id, tok, SRUP_ST_JOIN_SUCCESS);
	srupd_log(SRUPD_INFO, "join %s: JOIN_SUCCESS (simple)", id);
	c2st.events++;
}

void c2_hm_join_req(struct srupd *d, const struct srup_msg *m)
{
	struct pjoin *j = pjoin_find_dev(m->sender_id);
	struct srup_msg out;
	uint8_t *blob = NULL;
	size_t blob_len = 0;
	char id[SRUP_ID_TEXT_MAX];

	srupd_id_text(m->sender_id, id);
	if (j == NULL) {
		j = pjoin_new();
	}
	if (j == NULL) {
		srupd_log(SRUPD_WARN, "hm join %s: too many pending joins", id);
		return;
	}
	j->kind = J_HM;
	j->dev = m->sender_id;
	j->since = time(NULL);
	new_value(j->value);
	srup_token_new(j->dev_token);
	if (seal_to(d, m->sender_id, j->value, &blob, &blob_len) != 0) {
		srupd_log(SRUPD_WARN, "hm join %s: cannot encrypt to its key", id);
		j->used = 0;
		return;
	}
	memset(&out, 0, sizeof(out));
	out.type = SRUP_MSG_HM_JOIN_RESP;
	c2_set_token(&out, j->dev_token);
	out.encrypted.p = blob;
	out.encrypted.len = blob_len;
	if (d->cfg.show_file[0] != '\0') {
		/* The operator's side of the comparison: the same rendering the device shows. */
		char base[SRUPD_PATH_MAX + SRUP_ID_TEXT_MAX + 2];

		snprintf(base, sizeof(base), "%s-%s", d->cfg.show_file, id);
		srupd_show_value(base, j->value);
	}
	if (c2_send_dev_mid(d, m->sender_id, &out, &j->resp_mid) == 0) {
		srupd_log(SRUPD_INFO,
		          "hm join %s: compare the device's value with `srup-c2 pending`, then "
		          "`srup-c2 approve %s` or `srup-c2 reject %s`",
		          id, id, id);
	}
	free(blob);
	c2st.events++;
}

void c2_obs_join_req(struct srupd *d, const struct srup_msg *m)
{
	struct pjoin *j;
	struct srup_msg out;
	uint8_t *blob = NULL;
	size_t blob_len = 0;
	char id[SRUP_ID_TEXT_MAX];
	char tok[SRUP_TOKEN_LEN + 1];

	srupd_id_text(m->sender_id, id);
	c2_token_copy(tok, &m->token);
	if (c2_member(d, m->observer_id) == NULL ||
	    srupd_key_get(d->cfg.peer_keys, m->observer_id) == NULL) {
		srupd_log(SRUPD_WARN, "observed join %s: observer %llx is not a member", id,
		          (unsigned long long)m->observer_id);
		c2_send_response(d, m->sender_id, tok, SRUP_ST_JOIN_FAIL);
		return;
	}
	j = pjoin_find_dev(m->sender_id);
	if (j == NULL) {
		j = pjoin_new();
	}
	if (j == NULL) {
		return;
	}
	j->kind = J_OBS;
	j->dev = m->sender_id;
	j->since = time(NULL);
	j->observer = m->observer_id;
	new_value(j->value);
	srup_token_new(j->dev_token);
	srup_token_new(j->obs_token);
	/* To the joining device: the value, encrypted to its key. */
	if (seal_to(d, j->dev, j->value, &blob, &blob_len) != 0) {
		j->used = 0;
		return;
	}
	memset(&out, 0, sizeof(out));
	out.type = SRUP_MSG_OBS_JOIN_RESP;
	c2_set_token(&out, j->dev_token);
	out.encrypted.p = blob;
	out.encrypted.len = blob_len;
	c2_send_dev_mid(d, j->dev, &out, &j->resp_mid);
	free(blob);
	blob = NULL;
	/* To the observer: the same value, encrypted to the observer's key. */
	if (seal_to(d, j->observer, j->value, &blob, &blob_len) != 0) {
		j->used = 0;
		return;
	}
	memset(&out, 0, sizeof(out));
	out.type = SRUP_MSG_OBSERVE_REQ;
	c2_set_token(&out, j->obs_token);
	out.joining_device_id = j->dev;
	out.encrypted.p = blob;
	out.encrypted.len = blob_len;
	c2_send_dev(d, j->observer, &out);
	free(blob);
	srupd_log(SRUPD_INFO, "observed join %s: waiting for observer %llx", id,
	          (unsigned long long)j->observer);
}

/* The observer's verdict on an observed join. 1 if m was one. */
int c2_observer_response(struct srupd *d, const struct srup_msg *m)
{
	size_t i;

	for (i = 0; i < JOINS_MAX; i++) {
		struct pjoin *j = &c2st.j[i];

		if (!j->used || j->kind != J_OBS || j->outcome != 0 || j->observer != m->sender_id ||
		    !srupd_token_eq(&m->token, j->obs_token)) {
			continue;
		}
		/* VALID admits the device; INVALID (it showed a wrong value) refuses it; anything
		 * else (the observer could not check) is a failure of the join, not a verdict. */
		if (m->status == SRUP_ST_OBSERVED_JOIN_VALID) {
			join_decide(d, j, SRUP_ST_JOIN_SUCCESS);
		} else if (m->status == SRUP_ST_OBSERVED_JOIN_INVALID) {
			join_decide(d, j, SRUP_ST_JOIN_REFUSED);
		} else {
			join_decide(d, j, SRUP_ST_JOIN_FAIL);
		}
		j->used = 0;
		return 1;
	}
	return 0;
}

void c2_ctl_decide(struct srupd *d, int fd, int argc, char **argv, int approve)
{
	uint64_t dev;
	struct pjoin *j;
	unsigned status = approve ? SRUP_ST_JOIN_SUCCESS : SRUP_ST_JOIN_REFUSED;
	const char *name = approve ? "JOIN_SUCCESS" : "JOIN_REFUSED";
	struct srup_msg m;
	int was_member;
	int mid = 0;

	if (argc != 2 || c2_parse_dev(argv[1], &dev) != 0) {
		srupd_reply(fd, "ERR usage: %s DEVICE_ID", approve ? "approve" : "reject");
		return;
	}
	pthread_mutex_lock(&d->lock);
	j = pjoin_find_dev(dev);
	if (j == NULL || j->kind != J_HM) {
		srupd_reply(fd, "ERR no human-moderated join pending for %s", argv[1]);
		goto out;
	}
	/* Subscribed before the device hears it may talk; undone if the broker refuses. */
	was_member = c2_member(d, dev) != NULL;
	if (approve) {
		c2_set_member(d, dev, 1);
	}
	memset(&m, 0, sizeof(m));
	m.type = SRUP_MSG_RESPONSE;
	m.status = (uint8_t)status;
	c2_set_token(&m, j->dev_token);
	j->outcome = status;
	OPENSSL_cleanse(j->value, sizeof(j->value));
	c2st.events++;
	if (c2_send_dev_mid(d, dev, &m, &mid) != 0) {
		srupd_reply(fd, "ERR send failed");
	} else if (c2_wait_ack(d, fd, mid, name, j->dev_token) == 0) {
		srupd_log(SRUPD_INFO, "join %s: %s (operator)", argv[1], name);
		srupd_reply(fd, "OK %s delivered token=%s", name, j->dev_token);
		j->used = 0;
		goto out;
	}
	/* The device did not get the outcome (the broker refuses an answer to a join it no
	 * longer holds pending, e.g. after its expiry): the join is over, unjoined. */
	srupd_log(SRUPD_WARN, "join %s: %s not delivered; the device must ask again", argv[1], name);
	if (approve && !was_member) {
		c2_set_member(d, dev, 0);
	}
	j->used = 0;
out:
	pthread_mutex_unlock(&d->lock);
}

void c2_join_ack(struct srupd *d, int mid, int reason)
{
	size_t i;

	(void)d;
	for (i = 0; i < JOINS_MAX; i++) {
		struct pjoin *j = &c2st.j[i];
		char id[SRUP_ID_TEXT_MAX];

		if (!j->used || j->outcome != 0 || j->resp_mid == 0 || j->resp_mid != mid) {
			continue;
		}
		j->resp_mid = 0; /* answered: a later reuse of the id is another message */
		if (reason < 0x80) {
			continue;
		}
		/* The device never got the value: nothing for an operator or observer to decide. */
		srupd_id_text(j->dev, id);
		srupd_log(SRUPD_WARN,
		          "join %s: the broker refused our %s (reason 0x%02x): join dropped, the "
		          "device must ask again",
		          id, j->kind == J_HM ? "HM_JOIN_RESP" : "OBS_JOIN_RESP", (unsigned)reason);
		OPENSSL_cleanse(j->value, sizeof(j->value));
		j->used = 0;
		c2st.events++;
	}
}

void c2_ctl_pending(struct srupd *d, int fd)
{
	size_t i;
	int n = 0;

	pthread_mutex_lock(&d->lock);
	for (i = 0; i < JOINS_MAX; i++) {
		const struct pjoin *j = &c2st.j[i];
		char id[SRUP_ID_TEXT_MAX];
		struct srup_id128 v;
		char phrase[SRUP_PHRASE_TEXT_MAX] = "";

		if (!j->used || j->outcome != 0) {
			continue;
		}
		srupd_id_text(j->dev, id);
		if (srup_id128_parse(j->value, strlen(j->value), &v, NULL) == SRUP_OK) {
			(void)srup_phrase_encode(&v, phrase, sizeof(phrase));
		}
		srupd_reply(fd, "%s %s value=%s phrase=%s", j->kind == J_HM ? "hm" : "observed", id,
		            j->value, phrase);
		n++;
	}
	pthread_mutex_unlock(&d->lock);
	srupd_reply(fd, "OK %d pending", n);
}
