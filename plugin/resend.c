/* SPDX-License-Identifier: MIT
 * resend.c - the retransmission ledger: for the last SRUPB_RESEND_SLOTS accepted messages, the
 * connection that published each and whether it has been let through again. An MQTT QoS 1/2
 * retransmission of an accepted message is delivered once more, from that connection or its
 * resumed session; anything else with the same bytes is a replay (DESIGN.md, Replays). A message
 * that fell out of the ledger is never vouched for (fail closed). In memory only. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "mapfile.h"
#include "srupb.h"

#define NONE UINT32_MAX

struct rs_ent {
	uint8_t digest[32];
	uint64_t conn; /* serial of the publishing connection; 0: untracked */
	bool used;
	bool valid;
	uint32_t next; /* chain in its bucket */
};

struct srupb_resend {
	struct rs_ent *e; /* ring of cap entries, oldest replaced first */
	uint32_t *bucket; /* nbucket heads */
	size_t cap;
	size_t nbucket; /* power of two */
	size_t head;
};

static size_t bucket_of(const struct srupb_resend *r, const uint8_t digest[32])
{
	uint64_t w;
	memcpy(&w, digest, sizeof w);
	return (size_t)(srupb_mix64(w) & (r->nbucket - 1));
}

struct srupb_resend *srupb_resend_new(size_t cap)
{
	struct srupb_resend *r = calloc(1, sizeof *r);
	if (r == NULL || cap == 0 || cap >= NONE) {
		free(r);
		return NULL;
	}
	r->cap = cap;
	r->nbucket = 1;
	while (r->nbucket < cap) {
		r->nbucket <<= 1;
	}
	r->e = calloc(cap, sizeof *r->e);
	r->bucket = malloc(r->nbucket * sizeof *r->bucket);
	if (r->e == NULL || r->bucket == NULL) {
		srupb_resend_free(r);
		return NULL;
	}
	memset(r->bucket, 0xff, r->nbucket * sizeof *r->bucket);
	return r;
}

void srupb_resend_free(struct srupb_resend *r)
{
	if (r == NULL) {
		return;
	}
	free(r->e);
	free(r->bucket);
	free(r);
}

static void unchain(struct srupb_resend *r, uint32_t i)
{
	uint32_t *pp = &r->bucket[bucket_of(r, r->e[i].digest)];
	while (*pp != NONE) {
		if (*pp == i) {
			*pp = r->e[i].next;
			return;
		}
		pp = &r->e[*pp].next;
	}
}

void srupb_resend_note(struct srupb_resend *r, const uint8_t digest[32], uint64_t conn)
{
	uint32_t i = (uint32_t)r->head;
	struct rs_ent *e = &r->e[i];
	size_t b;

	if (e->valid) {
		unchain(r, i);
	}
	memcpy(e->digest, digest, sizeof e->digest);
	e->conn = conn;
	e->used = false;
	e->valid = true;
	b = bucket_of(r, digest);
	e->next = r->bucket[b];
	r->bucket[b] = i;
	r->head = (r->head + 1) % r->cap;
}

enum srupb_resend_answer srupb_resend_take(struct srupb_resend *r, const uint8_t digest[32],
                                           uint64_t conn, bool resumed_session)
{
	/* The newest entry for digest decides (a message accepted again after a restart of its
	 * channel is noted again). */
	for (uint32_t i = r->bucket[bucket_of(r, digest)]; i != NONE; i = r->e[i].next) {
		struct rs_ent *e = &r->e[i];
		if (CRYPTO_memcmp(e->digest, digest, sizeof e->digest) != 0) {
			continue;
		}
		if (e->used) {
			return SRUPB_RESEND_USED;
		}
		if ((e->conn == 0 || e->conn != conn) && !resumed_session) {
			return SRUPB_RESEND_OTHER_CONNECTION;
		}
		e->used = true;
		return SRUPB_RESEND_OK;
	}
	return SRUPB_RESEND_UNKNOWN;
}
