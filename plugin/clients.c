/* SPDX-License-Identifier: MIT
 * clients.c - which live connections carry which SRUP identity, so a key revoked in the store
 * (then SIGHUP or the admin topic) also closes its holder's connection, and what the plugin
 * keeps per connection (reader cache, bad signatures). Pointer-keyed hash. At its DISCONNECT
 * event an entry is marked gone and kept among the last SRUPB_GRAVE_SLOTS gone ones: the broker
 * checks a client's Will (ACL WRITE, no MESSAGE event) after that event, so a WRITE from a gone
 * entry is a Will. Learning a connection is bounded by SRUPB_CLIENTS_MAX. */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#include "srupb.h"

#define SRUPB_CLIENTS_MAX 1000000 /* beyond this, new connections are not tracked */
#define SRUPB_GRAVE_SLOTS 1024    /* gone connections remembered (to recognise their Wills) */

struct cl_ent {
	const void *client;
	uint64_t id;
	char *client_id;
	bool gone;         /* its DISCONNECT event has run */
	size_t grave_slot; /* where in the graveyard, while gone */
	struct srupb_reader reader;
	struct cl_ent *next;
};

struct srupb_clients {
	struct cl_ent **b;
	size_t nb; /* power of two */
	size_t size;
	struct cl_ent *grave[SRUPB_GRAVE_SLOTS];
	size_t grave_next;
};

static size_t slot(const struct srupb_clients *cl, const void *p)
{
	uint64_t h = (uint64_t)(uintptr_t)p * 0x9e3779b97f4a7c15u;
	return (size_t)((h >> 20) & (cl->nb - 1));
}

struct srupb_clients *srupb_clients_new(void)
{
	struct srupb_clients *cl = calloc(1, sizeof *cl);
	if (cl == NULL) {
		return NULL;
	}
	cl->nb = 1024;
	cl->b = calloc(cl->nb, sizeof *cl->b);
	if (cl->b == NULL) {
		free(cl);
		return NULL;
	}
	return cl;
}

void srupb_clients_free(struct srupb_clients *cl)
{
	if (cl == NULL) {
		return;
	}
	for (size_t i = 0; i < cl->nb; i++) {
		struct cl_ent *e = cl->b[i];
		while (e != NULL) {
			struct cl_ent *n = e->next;
			free(e->client_id);
			free(e);
			e = n;
		}
	}
	free(cl->b);
	free(cl);
}

size_t srupb_clients_count(const struct srupb_clients *cl)
{
	return cl == NULL ? 0 : cl->size;
}

static void grow(struct srupb_clients *cl)
{
	size_t nb = cl->nb * 2;
	struct cl_ent **b = calloc(nb, sizeof *b);
	struct srupb_clients tmp;
	if (b == NULL) {
		return; /* keep the old table: longer chains, still correct */
	}
	tmp.nb = nb;
	for (size_t i = 0; i < cl->nb; i++) {
		struct cl_ent *e = cl->b[i];
		while (e != NULL) {
			struct cl_ent *n = e->next;
			size_t s = slot(&tmp, e->client);
			e->next = b[s];
			b[s] = e;
			e = n;
		}
	}
	free(cl->b);
	cl->b = b;
	cl->nb = nb;
}

static void unlink_free(struct srupb_clients *cl, struct cl_ent *victim)
{
	/* Rare (graveyard eviction, an identity that changed): no slot may keep pointing at it. */
	for (size_t i = 0; i < SRUPB_GRAVE_SLOTS; i++) {
		if (cl->grave[i] == victim) {
			cl->grave[i] = NULL;
		}
	}
	for (struct cl_ent **pp = &cl->b[slot(cl, victim->client)]; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == victim) {
			*pp = victim->next;
			free(victim->client_id);
			free(victim);
			cl->size--;
			return;
		}
	}
}

/* Hex SHA-256 of client's TLS certificate into out[65], "" if it has none. */
static void cert_fingerprint(struct mosquitto *client, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	X509 *cert = mosquitto_client_certificate(client);

	out[0] = '\0';
	if (cert == NULL) {
		return;
	}
	if (X509_digest(cert, EVP_sha256(), md, &n) == 1 && n == 32 &&
	    srup_hex_encode(md, n, out, 65) != SRUP_OK) {
		out[0] = '\0';
	}
	X509_free(cert);
}

void srupb_clients_peer(struct srupb_ctx *ctx, struct mosquitto *client, char fp_buf[65],
                        const char **address, const char **cert_sha256)
{
	struct cl_ent *e = NULL;

	*address = NULL;
	*cert_sha256 = NULL;
	if (client == NULL) {
		return;
	}
	*address = mosquitto_client_address(client);
	if (ctx->clients != NULL) {
		for (e = ctx->clients->b[slot(ctx->clients, client)]; e != NULL; e = e->next) {
			if (e->client == client && !e->gone) {
				break;
			}
		}
	}
	if (e != NULL) {
		*cert_sha256 = e->reader.cert_sha256[0] != '\0' ? e->reader.cert_sha256 : NULL;
		return;
	}
	/* not tracked (not a SRUP identity): computed for this line only */
	cert_fingerprint(client, fp_buf);
	*cert_sha256 = fp_buf[0] != '\0' ? fp_buf : NULL;
}

/* Does client still have its TLS session? The broker checks a Will after closing it, so under
 * identity certificate a client presenting a certificate is a live connection, not a Will. */
static bool live_session(const struct srupb_ctx *ctx, struct mosquitto *client)
{
	void *cert;
	if (ctx->policy->identity != SRUPB_ID_CERTIFICATE) {
		return false;
	}
	cert = mosquitto_client_certificate(client);
	if (cert == NULL) {
		return false;
	}
	X509_free(cert);
	return true;
}

struct srupb_reader *srupb_clients_seen(struct srupb_ctx *ctx, struct mosquitto *client,
                                        bool publishing, bool *is_will)
{
	struct srupb_clients *cl = ctx->clients;
	char idbuf[SRUPB_IDENTITY_MAX];
	const char *ident;
	const char *cid;
	uint64_t id = 0;
	struct cl_ent *e;
	size_t s;

	if (is_will != NULL) {
		*is_will = false;
	}
	if (cl == NULL || client == NULL) {
		return NULL;
	}
	cid = mosquitto_client_id(client);
	if (cid == NULL) {
		return NULL;
	}
	s = slot(cl, client);
	for (e = cl->b[s]; e != NULL; e = e->next) {
		if (e->client == client) {
			break;
		}
	}
	/* A known pointer with the same client id: nothing to do (the common case). A different
	 * id means the broker freed that context without a DISCONNECT event (session takeover)
	 * and reused the memory: refresh the entry. */
	if (e != NULL && strcmp(e->client_id, cid) == 0) {
		if (!e->gone) {
			return &e->reader;
		}
		if (publishing && !live_session(ctx, client)) {
			/* Written after its DISCONNECT: the broker is sending its Will. */
			if (is_will != NULL) {
				*is_will = true;
			}
			return NULL;
		}
		/* Reads, subscriptions and a live TLS session are a live connection's: a new
		 * connection the broker gave the gone one's memory. Learn it afresh below. */
	}
	ident = srupb_identity(ctx, client, idbuf, sizeof idbuf);
	if (!srupb_identity_id(ident, &id)) {
		if (e != NULL) {
			unlink_free(cl, e);
		}
		return NULL;
	}
	char *copy = strdup(cid);
	if (copy == NULL) {
		return NULL;
	}
	if (e != NULL) {
		free(e->client_id);
		e->client_id = copy;
		e->id = id;
		e->gone = false;
		memset(&e->reader, 0, sizeof e->reader);
		e->reader.serial = ++ctx->conn_serial;
		cert_fingerprint(client, e->reader.cert_sha256);
		return &e->reader;
	}
	if (cl->size >= SRUPB_CLIENTS_MAX) {
		free(copy);
		return NULL;
	}
	e = calloc(1, sizeof *e);
	if (e == NULL) {
		free(copy);
		return NULL;
	}
	e->client_id = copy;
	e->client = client;
	e->id = id;
	e->reader.serial = ++ctx->conn_serial;
	cert_fingerprint(client, e->reader.cert_sha256);
	e->next = cl->b[s];
	cl->b[s] = e;
	cl->size++;
	if (cl->size > cl->nb * 2) {
		grow(cl);
	}
	return &e->reader;
}

void srupb_clients_gone(struct srupb_ctx *ctx, struct mosquitto *client)
{
	struct srupb_clients *cl = ctx->clients;
	struct cl_ent *e;
	if (cl == NULL || client == NULL) {
		return;
	}
	for (e = cl->b[slot(cl, client)]; e != NULL; e = e->next) {
		if (e->client == client) {
			break;
		}
	}
	if (e == NULL || e->gone) {
		return;
	}
	/* Keep it a while (its Will comes next); the oldest gone entry makes room. */
	struct cl_ent *old = cl->grave[cl->grave_next];
	if (old != NULL && old->gone && old->grave_slot == cl->grave_next) {
		unlink_free(cl, old);
	}
	e->gone = true;
	e->grave_slot = cl->grave_next;
	cl->grave[cl->grave_next] = e;
	cl->grave_next = (cl->grave_next + 1) % SRUPB_GRAVE_SLOTS;
}

void srupb_clients_kick_revoked(struct srupb_ctx *ctx)
{
	struct srupb_clients *cl = ctx->clients;
	if (cl == NULL || srupb_store_read_begin(ctx->store) != SRUP_OK) {
		return;
	}
	for (size_t i = 0; i < cl->nb; i++) {
		for (struct cl_ent *e = cl->b[i]; e != NULL; e = e->next) {
			struct srupb_keyrec rec;
			bool found = false;
			if (e->gone) {
				continue;
			}
			if (srupb_store_key_find(ctx->store, e->id, &rec, &found) != SRUP_OK) {
				continue;
			}
			/* An identity that was never registered is not ours to police here. */
			if (found && rec.status != SRUPB_KEY_ACTIVE) {
				srupb_kick_queue(ctx, e->client_id, false);
			}
		}
	}
	srupb_store_read_end(ctx->store);
}

void srupb_clients_kick_id(struct srupb_ctx *ctx, uint64_t id)
{
	struct srupb_clients *cl = ctx->clients;
	if (cl == NULL) {
		return;
	}
	for (size_t i = 0; i < cl->nb; i++) {
		for (struct cl_ent *e = cl->b[i]; e != NULL; e = e->next) {
			if (!e->gone && e->id == id) {
				srupb_kick_queue(ctx, e->client_id, false);
			}
		}
	}
}
