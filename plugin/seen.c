/* SPDX-License-Identifier: MIT
 * seen.c - the seen index (see seen.h): a ring of accepted-payload digests in a shared file
 * mapping, and an open-addressing hash of ring slots by digest in memory.
 * It knows nothing of LMDB or of verdicts. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "mapfile.h"
#include "seen.h"

#define S_MAGIC    0x4e45455350555253ULL /* "SRUPSEEN" read as a little-endian u64 */
#define S_VERSION  2u
#define S_HDR_SIZE 4096u
#define S_REC_SIZE 32u
#define S_CAP_MIN  1024u
#define S_CAP_MAX  ((size_t)1 << 28) /* 8 GiB of ring: far above any sensible window */

struct shdr {
	uint64_t magic;
	uint32_t version;
	uint32_t rec_size;
	uint64_t capacity;
	uint64_t salt;
};

/* One entry. The first 16 bytes of the SHA-256 identify the payload (a collision needs 2^64
 * work and could only make its finder's own message look like a replay). */
struct srec {
	uint8_t digest[16];
	uint64_t qpos;  /* 0: never used */
	uint64_t check; /* over digest, qpos and the salt; written last */
};

_Static_assert(sizeof(struct srec) == S_REC_SIZE, "seen record is 32 bytes");
_Static_assert(sizeof(struct shdr) <= S_HDR_SIZE, "seen header fits its page");

struct srupb_seen {
	struct srupb_mapfile f;
	size_t cap;    /* ring records */
	uint64_t salt; /* the file's, for check words */
	uint64_t head; /* qpos of the next entry */
	uint64_t seed; /* this process's, for hash positions */
	uint64_t *tab; /* per position: tag << 32 | (ring slot + 1); 0 = empty */
	size_t tab_mask;
};

static uint64_t rec_check(uint64_t salt, const uint8_t digest[16], uint64_t qpos)
{
	uint64_t w1;
	uint64_t w2;
	memcpy(&w1, digest, 8);
	memcpy(&w2, digest + 8, 8);
	uint64_t h = srupb_mix64(salt ^ w1);
	h = srupb_mix64(h ^ w2);
	h = srupb_mix64(h ^ qpos);
	return h == 0 ? 1 : h; /* a zeroed record never checks */
}

static struct srec *rec_at(const struct srupb_seen *s, size_t slot)
{
	return (struct srec *)(void *)(s->f.map + S_HDR_SIZE + slot * S_REC_SIZE);
}

static bool rec_valid(const struct srupb_seen *s, size_t slot)
{
	const struct srec *r = rec_at(s, slot);
	return r->qpos != 0 && (r->qpos - 1) % s->cap == slot &&
	       r->check == rec_check(s->salt, r->digest, r->qpos);
}

/* Keyed by this process's seed: a sender cannot aim its digests at one chain. */
static size_t home(const struct srupb_seen *s, const uint8_t *digest)
{
	uint64_t w;
	memcpy(&w, digest, 8);
	return (size_t)srupb_mix64(w ^ s->seed) & s->tab_mask;
}

/* 32 more bits of the digest beside each index entry, so a lookup reads the ring record only
 * when they match (a miss touches one cache line of the index, not the ring). */
static uint32_t tag_of(const uint8_t *digest)
{
	uint32_t t;
	memcpy(&t, digest + 8, 4);
	return t;
}

static size_t e_slot(uint64_t e)
{
	return (size_t)(uint32_t)e - 1;
}

static uint32_t e_tag(uint64_t e)
{
	return (uint32_t)(e >> 32);
}

static void tab_insert(struct srupb_seen *s, size_t slot)
{
	const uint8_t *dg = rec_at(s, slot)->digest;
	uint32_t tag = tag_of(dg);
	size_t i = home(s, dg);
	while (s->tab[i] != 0) {
		const struct srec *old = rec_at(s, e_slot(s->tab[i]));
		if (e_tag(s->tab[i]) == tag && memcmp(old->digest, dg, 16) == 0) {
			/* the same payload again: the index keeps the newer entry */
			if (old->qpos > rec_at(s, slot)->qpos) {
				return;
			}
			break;
		}
		i = (i + 1) & s->tab_mask;
	}
	s->tab[i] = (uint64_t)tag << 32 | (uint64_t)(slot + 1);
}

/* Remove the entry for ring slot (if indexed), closing the gap by backward shift. */
static void tab_remove(struct srupb_seen *s, size_t slot)
{
	size_t i = home(s, rec_at(s, slot)->digest);
	while (s->tab[i] != 0 && e_slot(s->tab[i]) != slot) {
		i = (i + 1) & s->tab_mask;
	}
	if (s->tab[i] == 0) {
		return;
	}
	for (size_t j = (i + 1) & s->tab_mask; s->tab[j] != 0; j = (j + 1) & s->tab_mask) {
		size_t k = home(s, rec_at(s, e_slot(s->tab[j]))->digest);
		/* the entry at j may fill the hole at i unless its home lies cyclically in (i, j] */
		bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
		if (!stays) {
			s->tab[i] = s->tab[j];
			i = j;
		}
	}
	s->tab[i] = 0;
}

/* Give f a fresh header for cap records (all zero) and map it into s. */
static enum srup_err create_layout(struct srupb_seen *s, size_t cap)
{
	struct shdr h;
	memset(&h, 0, sizeof h);
	h.magic = S_MAGIC;
	h.version = S_VERSION;
	h.rec_size = S_REC_SIZE;
	h.capacity = cap;
	if (getrandom(&h.salt, sizeof h.salt, 0) != (ssize_t)sizeof h.salt) {
		return SRUP_ERR_IO;
	}
	return srupb_mapfile_create(&s->f, S_HDR_SIZE + cap * S_REC_SIZE, &h, sizeof h);
}

static enum srup_err map_file(struct srupb_seen *s, size_t cap)
{
	if (srupb_mapfile_map(&s->f, S_HDR_SIZE + cap * S_REC_SIZE) != SRUP_OK) {
		return SRUP_ERR_IO;
	}
	s->cap = cap;
	s->salt = ((const struct shdr *)(void *)s->f.map)->salt;
	return SRUP_OK;
}

static int by_qpos(const void *x, const void *y)
{
	const struct srec *a = x;
	const struct srec *b = y;
	return a->qpos < b->qpos ? -1 : (a->qpos > b->qpos ? 1 : 0);
}

/* Rewrite the mapped file at capacity cap with its newest valid entries, through a temporary
 * file renamed over it (the lock moves with the descriptor). */
static enum srup_err resize(struct srupb_seen *s, size_t cap, char *err, size_t err_cap)
{
	char tmp[4200];
	struct srec *keep;
	size_t n = 0;
	size_t size;
	struct shdr h;
	struct srupb_seen t;
	enum srup_err rc;

	if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", s->f.path) >= sizeof tmp) {
		return srupb_errf(err, err_cap, SRUP_ERR_INVAL, "seen index path too long: %s", s->f.path);
	}
	keep = calloc(s->cap, sizeof *keep);
	if (keep == NULL) {
		return SRUP_ERR_NOMEM;
	}
	for (size_t i = 0; i < s->cap; i++) {
		if (rec_valid(s, i)) {
			keep[n++] = *rec_at(s, i);
		}
	}
	qsort(keep, n, sizeof *keep, by_qpos);
	memset(&t, 0, sizeof t);
	rc = srupb_mapfile_open(&t.f, tmp, "seen index", &h, sizeof h, &size, err, err_cap);
	if (rc != SRUP_OK) {
		free(keep);
		return rc;
	}
	if (create_layout(&t, cap) != SRUP_OK || map_file(&t, cap) != SRUP_OK) {
		goto fail;
	}
	for (size_t i = n > cap ? n - cap : 0; i < n; i++) {
		struct srec *r = rec_at(&t, (keep[i].qpos - 1) % cap);
		memcpy(r->digest, keep[i].digest, sizeof r->digest);
		r->qpos = keep[i].qpos;
		r->check = rec_check(t.salt, r->digest, r->qpos);
	}
	srupb_mapfile_sync(&t.f);
	if (rename(tmp, s->f.path) != 0) {
		goto fail;
	}
	/* t's file now has s's name: keep t's descriptor and mapping under s's path */
	char *name = s->f.path;
	s->f.path = NULL;
	srupb_mapfile_close(&s->f);
	free(t.f.path);
	t.f.path = name;
	s->f = t.f;
	s->cap = t.cap;
	s->salt = t.salt;
	free(keep);
	return SRUP_OK;
fail:
	rc = srupb_errf(err, err_cap, SRUP_ERR_IO, "cannot resize seen index %s: %s", s->f.path,
	                strerror(errno));
	srupb_mapfile_close(&t.f);
	unlink(tmp);
	free(keep);
	return rc;
}

/* Rebuild head and the hash index from the ring. */
static enum srup_err load(struct srupb_seen *s)
{
	size_t n = 16;
	while (n < 2 * s->cap) {
		n *= 2;
	}
	free(s->tab);
	s->tab = calloc(n, sizeof *s->tab);
	if (s->tab == NULL) {
		return SRUP_ERR_NOMEM;
	}
	s->tab_mask = n - 1;
	s->head = 1;
	for (size_t i = 0; i < s->cap; i++) {
		if (rec_valid(s, i)) {
			tab_insert(s, i);
			if (rec_at(s, i)->qpos >= s->head) {
				s->head = rec_at(s, i)->qpos + 1;
			}
		}
	}
	return SRUP_OK;
}

enum srup_err srupb_seen_open(const char *path, size_t window, struct srupb_seen **out, char *err,
                              size_t err_cap)
{
	struct srupb_seen *s;
	struct shdr h;
	size_t size;
	enum srup_err rc;
	size_t want = window < S_CAP_MIN ? S_CAP_MIN : (window > S_CAP_MAX ? S_CAP_MAX : window);

	*out = NULL;
	s = calloc(1, sizeof *s);
	if (s == NULL) {
		return SRUP_ERR_NOMEM;
	}
	if (getrandom(&s->seed, sizeof s->seed, 0) != (ssize_t)sizeof s->seed) {
		free(s);
		return srupb_errf(err, err_cap, SRUP_ERR_IO, "seen index: getrandom: %s", strerror(errno));
	}
	rc = srupb_mapfile_open(&s->f, path, "seen index", &h, sizeof h, &size, err, err_cap);
	if (rc != SRUP_OK) {
		free(s);
		return rc;
	}
	if (size == 0 || (h.magic == 0 && h.capacity == 0 && h.salt == 0)) {
		/* new, or killed between sizing it and writing its header: nothing was indexed */
		if (create_layout(s, want) != SRUP_OK) {
			rc = srupb_errf(err, err_cap, SRUP_ERR_IO, "cannot create seen index %s: %s", path,
			                strerror(errno));
			goto fail;
		}
		h.capacity = want;
	} else if (h.magic != S_MAGIC || h.version != S_VERSION || h.rec_size != S_REC_SIZE ||
	           h.capacity < S_CAP_MIN || h.capacity > S_CAP_MAX ||
	           size != S_HDR_SIZE + h.capacity * S_REC_SIZE) {
		rc = srupb_errf(err, err_cap, SRUP_ERR_INVAL,
		                "seen index %s is not an index of this version, or its size does not "
		                "match its header; move it away to start (cross-channel replays of "
		                "messages accepted before then are then caught only by sequence numbers)",
		                path);
		goto fail;
	}
	if (map_file(s, (size_t)h.capacity) != SRUP_OK) {
		rc = srupb_errf(err, err_cap, SRUP_ERR_IO, "cannot map seen index %s: %s", path,
		                strerror(errno));
		goto fail;
	}
	if (s->cap != want) {
		rc = resize(s, want, err, err_cap);
		if (rc != SRUP_OK) {
			goto fail;
		}
	}
	rc = load(s);
	if (rc != SRUP_OK) {
		goto fail;
	}
	*out = s;
	return SRUP_OK;
fail:
	srupb_seen_close(s);
	return rc;
}

void srupb_seen_close(struct srupb_seen *s)
{
	if (s == NULL) {
		return;
	}
	srupb_mapfile_close(&s->f);
	free(s->tab);
	free(s);
}

size_t srupb_seen_capacity(const struct srupb_seen *s)
{
	return s->cap;
}

bool srupb_seen_find(const struct srupb_seen *s, size_t window, const uint8_t digest[32])
{
	uint32_t tag = tag_of(digest);
	for (size_t i = home(s, digest); s->tab[i] != 0; i = (i + 1) & s->tab_mask) {
		if (e_tag(s->tab[i]) != tag) {
			continue;
		}
		const struct srec *r = rec_at(s, e_slot(s->tab[i]));
		if (memcmp(r->digest, digest, sizeof r->digest) == 0) {
			return r->qpos < s->head && s->head - r->qpos <= window;
		}
	}
	return false;
}

void srupb_seen_add(struct srupb_seen *s, const uint8_t digest[32])
{
	size_t slot = (size_t)((s->head - 1) % s->cap);
	struct srec *r = rec_at(s, slot);
	struct srec n;

	if (rec_valid(s, slot)) {
		tab_remove(s, slot); /* the oldest entry leaves the ring */
	}
	memcpy(n.digest, digest, sizeof n.digest);
	n.qpos = s->head;
	n.check = rec_check(s->salt, n.digest, n.qpos);
	/* Invalidate, write the body, then the check word: a process killed part-way leaves a
	 * record that does not check (its message was not yet delivered). */
	__atomic_store_n(&r->check, 0, __ATOMIC_RELEASE);
	memcpy(r->digest, n.digest, sizeof r->digest);
	__atomic_store_n(&r->qpos, n.qpos, __ATOMIC_RELEASE);
	__atomic_store_n(&r->check, n.check, __ATOMIC_RELEASE);
	s->head++;
	tab_insert(s, slot);
}

int srupb_seen_fd(const struct srupb_seen *s)
{
	return s->f.fd;
}

void srupb_seen_sync(struct srupb_seen *s)
{
	if (s != NULL) {
		srupb_mapfile_sync(&s->f);
	}
}
