/* SPDX-License-Identifier: MIT
 * pending.c - join requests the broker has seen verified and not yet answered: (server, device,
 * token digests, kind, expiry). A JOIN_SUCCESS makes a server a member only when it answers one
 * of these (DESIGN.md, trust rules). In memory, bounded in total and per joining device, each
 * entry expiring; lost on restart (the device asks again). Knows nothing of MQTT or LMDB. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "mapfile.h"
#include "srupb.h"

struct pj {
	struct srupb_pending_join j;
	uint64_t device;
	struct pj *next;
};

struct srupb_pending {
	struct pj **b;
	size_t nb; /* power of two */
	size_t count;
};

static size_t slot(const struct srupb_pending *p, uint64_t device)
{
	/* Chained by device alone, so a device's own requests share one chain (per-device cap and
	 * eviction walk only that chain). Ids are registered keys, not chosen per message. */
	return (size_t)(srupb_mix64(device) & (p->nb - 1));
}

struct srupb_pending *srupb_pending_new(void)
{
	struct srupb_pending *p = calloc(1, sizeof *p);
	if (p == NULL) {
		return NULL;
	}
	p->nb = 256;
	p->b = calloc(p->nb, sizeof *p->b);
	if (p->b == NULL) {
		free(p);
		return NULL;
	}
	return p;
}

void srupb_pending_free(struct srupb_pending *p)
{
	if (p == NULL) {
		return;
	}
	for (size_t i = 0; i < p->nb; i++) {
		struct pj *e = p->b[i];
		while (e != NULL) {
			struct pj *n = e->next;
			free(e);
			e = n;
		}
	}
	free(p->b);
	free(p);
}

size_t srupb_pending_count(const struct srupb_pending *p)
{
	return p == NULL ? 0 : p->count;
}

static void grow(struct srupb_pending *p)
{
	size_t nb = p->nb * 2;
	struct pj **b = calloc(nb, sizeof *b);
	struct srupb_pending tmp;
	if (b == NULL) {
		return; /* longer chains, still correct */
	}
	tmp.nb = nb;
	for (size_t i = 0; i < p->nb; i++) {
		struct pj *e = p->b[i];
		while (e != NULL) {
			struct pj *n = e->next;
			size_t s = slot(&tmp, e->device);
			e->next = b[s];
			b[s] = e;
			e = n;
		}
	}
	free(p->b);
	p->b = b;
	p->nb = nb;
}

/* Drop the expired entries of one chain; count device's live entries and find its oldest and
 * its entry for server. */
static void walk(struct srupb_pending *p, uint64_t device, uint64_t server, double now,
                 size_t *n_dev, struct pj ***oldest, struct pj ***same)
{
	struct pj **pp = &p->b[slot(p, device)];
	*n_dev = 0;
	*oldest = NULL;
	*same = NULL;
	while (*pp != NULL) {
		struct pj *e = *pp;
		if (e->j.expires <= now) {
			*pp = e->next;
			free(e);
			p->count--;
			continue;
		}
		if (e->device == device) {
			(*n_dev)++;
			if (*oldest == NULL || e->j.opened < (**oldest)->j.opened) {
				*oldest = pp;
			}
			if (e->j.server == server) {
				*same = pp;
			}
		}
		pp = &e->next;
	}
}

bool srupb_pending_room(struct srupb_pending *p, uint64_t server, uint64_t device,
                        size_t per_device, size_t max, double now)
{
	size_t n_dev;
	struct pj **oldest;
	struct pj **same;
	walk(p, device, server, now, &n_dev, &oldest, &same);
	/* A device's new request replaces its own request to that server, or its own oldest:
	 * only its own traffic competes with it. Beyond that, the total is capped. */
	return same != NULL || n_dev >= per_device || p->count < max;
}

enum srup_err srupb_pending_open(struct srupb_pending *p, uint64_t server, uint64_t device,
                                 enum srupb_join_kind kind, const uint8_t req_token[32],
                                 size_t per_device, size_t max, double ttl, double now)
{
	size_t n_dev;
	struct pj **oldest;
	struct pj **same;
	struct pj *e;

	walk(p, device, server, now, &n_dev, &oldest, &same);
	if (same != NULL) {
		e = *same;
	} else if (n_dev >= per_device && oldest != NULL) {
		e = *oldest;
	} else if (p->count >= max) {
		return SRUP_ERR_TOO_LONG;
	} else {
		e = calloc(1, sizeof *e);
		if (e == NULL) {
			return SRUP_ERR_NOMEM;
		}
		size_t s = slot(p, device);
		e->next = p->b[s];
		p->b[s] = e;
		p->count++;
		if (p->count > p->nb * 2) {
			grow(p);
		}
	}
	e->device = device;
	e->j.server = server;
	e->j.kind = (uint8_t)kind;
	memcpy(e->j.req_token, req_token, sizeof e->j.req_token);
	e->j.has_answer = false;
	memset(e->j.ans_token, 0, sizeof e->j.ans_token);
	e->j.opened = now;
	e->j.expires = now + ttl;
	return SRUP_OK;
}

struct srupb_pending_join *srupb_pending_find(struct srupb_pending *p, uint64_t server,
                                              uint64_t device, double now)
{
	for (struct pj *e = p->b[slot(p, device)]; e != NULL; e = e->next) {
		if (e->device == device && e->j.server == server) {
			return e->j.expires > now ? &e->j : NULL;
		}
	}
	return NULL;
}

bool srupb_pending_token_matches(const struct srupb_pending_join *j, const uint8_t token[32])
{
	if (CRYPTO_memcmp(j->req_token, token, 32) == 0) {
		return true;
	}
	return j->has_answer && CRYPTO_memcmp(j->ans_token, token, 32) == 0;
}

void srupb_pending_close(struct srupb_pending *p, uint64_t server, uint64_t device)
{
	for (struct pj **pp = &p->b[slot(p, device)]; *pp != NULL; pp = &(*pp)->next) {
		struct pj *e = *pp;
		if (e->device == device && e->j.server == server) {
			*pp = e->next;
			free(e);
			p->count--;
			return;
		}
	}
}

void srupb_pending_sweep(struct srupb_pending *p, double now)
{
	for (size_t i = 0; i < p->nb; i++) {
		struct pj **pp = &p->b[i];
		while (*pp != NULL) {
			struct pj *e = *pp;
			if (e->j.expires <= now) {
				*pp = e->next;
				free(e);
				p->count--;
			} else {
				pp = &e->next;
			}
		}
	}
}

void srupb_pending_foreach(const struct srupb_pending *p, double now,
                           int (*fn)(uint64_t device, const struct srupb_pending_join *j,
                                     void *arg),
                           void *arg)
{
	for (size_t i = 0; i < p->nb; i++) {
		for (const struct pj *e = p->b[i]; e != NULL; e = e->next) {
			if (e->j.expires > now && fn(e->device, &e->j, arg) != 0) {
				return;
			}
		}
	}
}
