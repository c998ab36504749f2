/* SPDX-License-Identifier: MIT
 * keystore.c - bounded LRU cache of parsed public keys (struct srup_key) by SRUP id.
 * Keys come from the store record given by the caller; this file never reads the store itself,
 * so a record rewritten by `srup keys` (new generation) is re-parsed on its next use. An entry
 * can also vouch for its record's role and active status at one store version (srupb_keystore_
 * vouch): until the store changes, srupb_keystore_peek answers without reading LMDB. */
#include <stdlib.h>
#include <string.h>

#include "srupb.h"

struct ks_entry {
	uint64_t id;
	uint64_t generation;
	struct srup_key *key;
	/* libsrup's prepared verifier: digest and RSA contexts set up once per key */
	struct srup_verifier *ver;
	uint64_t version; /* store version at which the record was read ACTIVE; 0: none */
	/* the id's retiring key (a rotation's old key), loaded when a signature first needs it */
	uint64_t old_until;
	struct srup_key *old_key;
	struct srup_verifier *old_ver;
	unsigned role;
	struct ks_entry *prev; /* LRU list: head = most recent */
	struct ks_entry *next;
	struct ks_entry *hnext; /* bucket chain */
};

struct srupb_keystore {
	struct ks_entry **buckets;
	size_t n_buckets; /* power of two */
	size_t size;
	size_t capacity;
	struct ks_entry *head;
	struct ks_entry *tail;
	uint64_t hits;
	uint64_t misses;
};

static size_t bucket_of(const struct srupb_keystore *ks, uint64_t id)
{
	/* ids are random (top of a UUIDv4), but mix anyway: a chosen id must not degrade a chain. */
	uint64_t h = id * 0x9e3779b97f4a7c15u;
	h ^= h >> 29;
	return (size_t)(h & (ks->n_buckets - 1));
}

struct srupb_keystore *srupb_keystore_new(size_t capacity)
{
	struct srupb_keystore *ks = calloc(1, sizeof *ks);
	size_t nb = 16;
	if (ks == NULL || capacity == 0) {
		free(ks);
		return NULL;
	}
	while (nb < capacity * 2 && nb < ((size_t)1 << 26)) {
		nb <<= 1;
	}
	ks->buckets = calloc(nb, sizeof *ks->buckets);
	if (ks->buckets == NULL) {
		free(ks);
		return NULL;
	}
	ks->n_buckets = nb;
	ks->capacity = capacity;
	return ks;
}

static void lru_unlink(struct srupb_keystore *ks, struct ks_entry *e)
{
	if (e->prev != NULL) {
		e->prev->next = e->next;
	} else {
		ks->head = e->next;
	}
	if (e->next != NULL) {
		e->next->prev = e->prev;
	} else {
		ks->tail = e->prev;
	}
	e->prev = NULL;
	e->next = NULL;
}

static void lru_push(struct srupb_keystore *ks, struct ks_entry *e)
{
	e->prev = NULL;
	e->next = ks->head;
	if (ks->head != NULL) {
		ks->head->prev = e;
	}
	ks->head = e;
	if (ks->tail == NULL) {
		ks->tail = e;
	}
}

static void entry_remove(struct srupb_keystore *ks, struct ks_entry *e)
{
	struct ks_entry **pp = &ks->buckets[bucket_of(ks, e->id)];
	while (*pp != NULL && *pp != e) {
		pp = &(*pp)->hnext;
	}
	if (*pp == e) {
		*pp = e->hnext;
	}
	lru_unlink(ks, e);
	srup_verifier_free(e->ver);
	srup_key_free(e->key);
	srup_verifier_free(e->old_ver);
	srup_key_free(e->old_key);
	free(e);
	ks->size--;
}

static struct ks_entry *entry_find(const struct srupb_keystore *ks, uint64_t id)
{
	struct ks_entry *e = ks->buckets[bucket_of(ks, id)];
	while (e != NULL && e->id != id) {
		e = e->hnext;
	}
	return e;
}

enum srup_err srupb_keystore_get(struct srupb_keystore *ks, uint64_t id, uint64_t generation,
                                 const char *pem, size_t pem_len, const struct srup_key **out,
                                 struct srup_verifier **ver)
{
	struct ks_entry *e;
	struct srup_key *key = NULL;
	enum srup_err rc;
	size_t b;

	*out = NULL;
	if (ver != NULL) {
		*ver = NULL;
	}
	e = entry_find(ks, id);
	if (e != NULL && e->generation == generation) {
		ks->hits++;
		if (ks->head != e) {
			lru_unlink(ks, e);
			lru_push(ks, e);
		}
		*out = e->key;
		if (ver != NULL) {
			*ver = e->ver;
		}
		return SRUP_OK;
	}
	ks->misses++;
	if (e != NULL) {
		entry_remove(ks, e);
	}
	rc = srup_key_load_pem(pem, pem_len, SRUP_KEY_PUBLIC, &key, NULL);
	if (rc != SRUP_OK) {
		return rc;
	}
	while (ks->size >= ks->capacity && ks->tail != NULL) {
		entry_remove(ks, ks->tail);
	}
	e = calloc(1, sizeof *e);
	if (e == NULL) {
		srup_key_free(key);
		return SRUP_ERR_NOMEM;
	}
	/* The scheme is pinned in libsrup, never chosen by a message (STYLE 2.6). */
	rc = srup_verifier_new(key, &e->ver, NULL);
	if (rc != SRUP_OK) {
		free(e);
		srup_key_free(key);
		return rc;
	}
	e->id = id;
	e->generation = generation;
	e->key = key;
	b = bucket_of(ks, id);
	e->hnext = ks->buckets[b];
	ks->buckets[b] = e;
	lru_push(ks, e);
	ks->size++;
	*out = key;
	if (ver != NULL) {
		*ver = e->ver;
	}
	return SRUP_OK;
}

bool srupb_keystore_peek(struct srupb_keystore *ks, uint64_t id, uint64_t version, unsigned *role,
                         const struct srup_key **key, struct srup_verifier **ver)
{
	struct ks_entry *e = entry_find(ks, id);
	if (e == NULL || version == 0 || e->version != version) {
		return false;
	}
	ks->hits++;
	if (ks->head != e) {
		lru_unlink(ks, e);
		lru_push(ks, e);
	}
	*role = e->role;
	*key = e->key;
	*ver = e->ver;
	return true;
}

enum srup_err srupb_keystore_retiring(struct srupb_keystore *ks, uint64_t id, uint64_t until,
                                      const char *pem, size_t pem_len, const struct srup_key **key,
                                      struct srup_verifier **ver)
{
	struct ks_entry *e = entry_find(ks, id);
	struct srup_key *k = NULL;
	struct srup_verifier *v = NULL;
	enum srup_err rc;

	if (e == NULL) {
		return SRUP_ERR_INVAL; /* only with the id's current key in the cache */
	}
	if (e->old_ver == NULL || e->old_until != until) {
		rc = srup_key_load_pem(pem, pem_len, SRUP_KEY_PUBLIC, &k, NULL);
		if (rc == SRUP_OK) {
			rc = srup_verifier_new(k, &v, NULL);
		}
		if (rc != SRUP_OK) {
			srup_key_free(k);
			return rc;
		}
		srup_verifier_free(e->old_ver);
		srup_key_free(e->old_key);
		e->old_key = k;
		e->old_ver = v;
		e->old_until = until;
	}
	*key = e->old_key;
	*ver = e->old_ver;
	return SRUP_OK;
}

void srupb_keystore_vouch(struct srupb_keystore *ks, uint64_t id, uint64_t version, unsigned role)
{
	struct ks_entry *e = entry_find(ks, id);
	if (e != NULL) {
		e->version = version;
		e->role = role;
	}
}

void srupb_keystore_drop(struct srupb_keystore *ks, uint64_t id)
{
	struct ks_entry *e;
	if (ks == NULL) {
		return;
	}
	e = entry_find(ks, id);
	if (e != NULL) {
		entry_remove(ks, e);
	}
}

void srupb_keystore_clear(struct srupb_keystore *ks)
{
	if (ks == NULL) {
		return;
	}
	while (ks->head != NULL) {
		entry_remove(ks, ks->head);
	}
}

void srupb_keystore_free(struct srupb_keystore *ks)
{
	if (ks == NULL) {
		return;
	}
	srupb_keystore_clear(ks);
	free(ks->buckets);
	free(ks);
}

size_t srupb_keystore_size(const struct srupb_keystore *ks)
{
	return ks == NULL ? 0 : ks->size;
}

void srupb_keystore_stats(const struct srupb_keystore *ks, uint64_t *hits, uint64_t *misses)
{
	*hits = ks->hits;
	*misses = ks->misses;
}
