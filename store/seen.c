/* SPDX-License-Identifier: MIT
 * seen.c - the seen index (see seen.h): accepted-payload digests with their sender in a
 * fixed-capacity shared file mapping; in memory, an open-addressing hash of records by digest,
 * a FIFO of records per sender and a free list.
 * It knows nothing of LMDB, of roles or of verdicts. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "mapfile.h"
#include "seen.h"

#define S_MAGIC    0x4e45455350555253ULL /* "SRUPSEEN" read as a little-endian u64 */
#define S_VERSION  3u
#define S_HDR_SIZE 4096u
#define S_REC_SIZE 40u
#define S_NONE     UINT32_MAX /* no record (end of a sender's FIFO) */

struct shdr {
	uint64_t magic;
	uint32_t version;
	uint32_t rec_size;
	uint64_t capacity;
	uint64_t salt;
	uint8_t zero[32];
	uint8_t store_id[SRUPB_STORE_ID_LEN];
};

/* One entry. The first 16 bytes of the SHA-256 identify the payload (a collision needs 2^64
 * work and could only make its finder's own message look like a replay). */
struct srec {
	uint64_t sender;
	uint8_t digest[16];
	uint64_t ins;   /* global insertion counter; 0: free */
	uint64_t check; /* over sender, digest, ins and the salt; written last */
};

_Static_assert(sizeof(struct srec) == S_REC_SIZE, "seen record is 40 bytes");
_Static_assert(sizeof(struct shdr) <= S_HDR_SIZE, "seen header fits its page");
_Static_assert(offsetof(struct shdr, store_id) == SRUPB_MAPFILE_ID_OFF, "store id offset");

/* One sender's FIFO of records, oldest to newest through next[]. */
struct sender {
	uint64_t id;
	uint32_t count;
	uint32_t oldest;
	uint32_t newest;
	uint32_t in_use; /* the table slot is taken (senders are never removed while open) */
};

struct srupb_seen {
	struct srupb_mapfile f;
	size_t cap;        /* records in the file */
	size_t used;       /* valid records */
	uint64_t salt;     /* the file's, for check words */
	uint64_t next_ins; /* ins of the next entry */
	uint64_t seed;     /* this process's, for hash positions */
	uint64_t *tab;     /* per position: tag << 32 | (record + 1); 0 = empty */
	size_t tab_mask;
	uint32_t *next;  /* per record: the same sender's next newer record, or S_NONE */
	uint32_t *frees; /* stack of free records */
	size_t n_free;
	struct sender *senders; /* open addressing by sender id; at most cap senders hold entries */
	size_t snd_mask;
};

static uint64_t rec_check(uint64_t salt, uint64_t sender, const uint8_t digest[16], uint64_t ins)
{
	uint64_t w1;
	uint64_t w2;
	memcpy(&w1, digest, 8);
	memcpy(&w2, digest + 8, 8);
	uint64_t h = srupb_mix64(salt ^ sender);
	h = srupb_mix64(h ^ w1);
	h = srupb_mix64(h ^ w2);
	h = srupb_mix64(h ^ ins);
	return h == 0 ? 1 : h; /* a zeroed record never checks */
}

static struct srec *rec_at(const struct srupb_seen *s, size_t slot)
{
	return (struct srec *)(void *)(s->f.map + S_HDR_SIZE + slot * S_REC_SIZE);
}

static bool rec_valid(const struct srupb_seen *s, size_t slot)
{
	const struct srec *r = rec_at(s, slot);
	return r->ins != 0 && r->check == rec_check(s->salt, r->sender, r->digest, r->ins);
}

/* Keyed by this process's seed: a sender cannot aim its digests at one chain. */
static size_t home(const struct srupb_seen *s, const uint8_t *digest)
{
	uint64_t w;
	memcpy(&w, digest, 8);
	return (size_t)srupb_mix64(w ^ s->seed) & s->tab_mask;
}

/* 32 more bits of the digest beside each index entry, so a lookup reads the file record only
 * when they match (a miss touches one cache line of the index, not the file). */
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
			if (old->ins > rec_at(s, slot)->ins) {
				return;
			}
			break;
		}
		i = (i + 1) & s->tab_mask;
	}
	s->tab[i] = (uint64_t)tag << 32 | (uint64_t)(slot + 1);
}

/* Remove the entry for record slot (if indexed), closing the gap by backward shift. */
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

/* The sender's FIFO, or NULL (create false) / a new empty one (create true) if it has none. */
static struct sender *sender_at(const struct srupb_seen *s, uint64_t id, bool create)
{
	size_t i = (size_t)srupb_mix64(id ^ s->seed ^ 0x5a5a5a5a5a5a5a5aULL) & s->snd_mask;
	for (;; i = (i + 1) & s->snd_mask) {
		struct sender *p = &s->senders[i];
		if (!p->in_use) {
			if (!create) {
				return NULL;
			}
			p->in_use = 1;
			p->id = id;
			p->count = 0;
			p->oldest = S_NONE;
			p->newest = S_NONE;
			return p;
		}
		if (p->id == id) {
			return p;
		}
	}
}

/* Append valid record slot to its sender's FIFO and the digest index. */
static void link_record(struct srupb_seen *s, size_t slot)
{
	struct sender *p = sender_at(s, rec_at(s, slot)->sender, true);
	s->next[slot] = S_NONE;
	if (p->count == 0) {
		p->oldest = (uint32_t)slot;
	} else {
		s->next[p->newest] = (uint32_t)slot;
	}
	p->newest = (uint32_t)slot;
	p->count++;
	s->used++;
	tab_insert(s, slot);
}

/* Drop p's oldest entry: out of the index, its record invalidated and freed. */
static void evict_oldest(struct srupb_seen *s, struct sender *p)
{
	size_t slot = p->oldest;
	tab_remove(s, slot);
	__atomic_store_n(&rec_at(s, slot)->check, 0, __ATOMIC_RELEASE);
	p->oldest = s->next[slot];
	p->count--;
	if (p->count == 0) {
		p->newest = S_NONE;
	}
	s->used--;
	s->frees[s->n_free++] = (uint32_t)slot;
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
	memcpy(h.store_id, s->f.id, sizeof h.store_id);
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

/* A valid record as found in the file (for sorting at open and resize). */
struct kept {
	uint64_t ins;
	uint64_t sender;
	uint32_t slot;
	bool keep;
};

static int by_ins(const void *x, const void *y)
{
	const struct kept *a = x;
	const struct kept *b = y;
	return a->ins < b->ins ? -1 : (a->ins > b->ins ? 1 : 0);
}

/* By sender, newest first within a sender. */
static int by_sender_newest(const void *x, const void *y)
{
	const struct kept *a = x;
	const struct kept *b = y;
	if (a->sender != b->sender) {
		return a->sender < b->sender ? -1 : 1;
	}
	return a->ins > b->ins ? -1 : (a->ins < b->ins ? 1 : 0);
}

/* The valid records of s, in *out (caller frees), n in *n. */
static enum srup_err collect(const struct srupb_seen *s, struct kept **out, size_t *n)
{
	struct kept *k = calloc(s->cap > 0 ? s->cap : 1, sizeof *k);
	*n = 0;
	*out = k;
	if (k == NULL) {
		return SRUP_ERR_NOMEM;
	}
	for (size_t i = 0; i < s->cap; i++) {
		if (rec_valid(s, i)) {
			k[*n].ins = rec_at(s, i)->ins;
			k[*n].sender = rec_at(s, i)->sender;
			k[*n].slot = (uint32_t)i;
			k[*n].keep = true;
			(*n)++;
		}
	}
	return SRUP_OK;
}

/* Of n records, more than cap: mark which to keep so that every sender keeps its newest
 * min(count, t) entries, with the largest t that fits in cap. A sender with many entries loses
 * its oldest first; one with few keeps them all. Leaves k sorted by sender. */
static void choose_kept(struct kept *k, size_t n, size_t cap)
{
	size_t lo = 0;
	size_t hi = n;

	qsort(k, n, sizeof *k, by_sender_newest);
	/* largest t in [0, n] with sum of min(count, t) <= cap: binary search on t */
	while (lo < hi) {
		size_t t = lo + (hi - lo + 1) / 2;
		size_t sum = 0;
		size_t run = 0;
		for (size_t i = 0; i < n; i++) {
			run = (i > 0 && k[i].sender == k[i - 1].sender) ? run + 1 : 0;
			if (run < t) {
				sum++;
			}
		}
		if (sum <= cap) {
			lo = t;
		} else {
			hi = t - 1;
		}
	}
	size_t run = 0;
	for (size_t i = 0; i < n; i++) {
		run = (i > 0 && k[i].sender == k[i - 1].sender) ? run + 1 : 0;
		k[i].keep = run < lo;
	}
}

/* Rewrite the mapped file at capacity cap with the entries choose_kept keeps, in insertion
 * order, through a temporary file renamed over it (the lock moves with the descriptor). */
static enum srup_err resize(struct srupb_seen *s, size_t cap, char *err, size_t err_cap)
{
	char tmp[4200];
	struct kept *keep = NULL;
	size_t n = 0;
	size_t size;
	size_t w = 0;
	struct shdr h;
	struct srupb_seen t;
	enum srup_err rc;

	if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", s->f.path) >= sizeof tmp) {
		return srupb_errf(err, err_cap, SRUP_ERR_INVAL, "seen index path too long: %s", s->f.path);
	}
	rc = collect(s, &keep, &n);
	if (rc != SRUP_OK) {
		free(keep);
		return rc;
	}
	if (n > cap) {
		choose_kept(keep, n, cap);
	}
	qsort(keep, n, sizeof *keep, by_ins);
	memset(&t, 0, sizeof t);
	(void)unlink(tmp); /* a leftover of a killed resize, unlocked by then */
	rc = srupb_mapfile_open(&t.f, tmp, "seen index", &h, sizeof h, &size, err, err_cap);
	if (rc != SRUP_OK) {
		free(keep);
		return rc;
	}
	memcpy(t.f.id, s->f.id, sizeof t.f.id);
	if (create_layout(&t, cap) != SRUP_OK || map_file(&t, cap) != SRUP_OK) {
		goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		if (!keep[i].keep) {
			continue;
		}
		const struct srec *o = rec_at(s, keep[i].slot);
		struct srec *r = rec_at(&t, w++);
		r->sender = o->sender;
		memcpy(r->digest, o->digest, sizeof r->digest);
		r->ins = o->ins;
		r->check = rec_check(t.salt, r->sender, r->digest, r->ins);
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

static size_t pow2_at_least(size_t want)
{
	size_t n = 16;
	while (n < want) {
		n *= 2;
	}
	return n;
}

/* Rebuild the counter, the digest index, the senders' FIFOs (in insertion order) and the free
 * list from the file. */
static enum srup_err load(struct srupb_seen *s)
{
	struct kept *k = NULL;
	size_t n = 0;
	size_t tn = pow2_at_least(2 * s->cap);
	size_t cap1 = s->cap > 0 ? s->cap : 1;
	enum srup_err rc;

	s->tab = calloc(tn, sizeof *s->tab);
	s->senders = calloc(tn, sizeof *s->senders);
	s->next = calloc(cap1, sizeof *s->next);
	s->frees = calloc(cap1, sizeof *s->frees);
	if (s->tab == NULL || s->senders == NULL || s->next == NULL || s->frees == NULL) {
		return SRUP_ERR_NOMEM;
	}
	s->tab_mask = tn - 1;
	s->snd_mask = tn - 1;
	rc = collect(s, &k, &n);
	if (rc != SRUP_OK) {
		free(k);
		return rc;
	}
	qsort(k, n, sizeof *k, by_ins);
	s->next_ins = n > 0 ? k[n - 1].ins + 1 : 1;
	s->used = 0;
	for (size_t i = 0; i < n; i++) {
		link_record(s, k[i].slot);
	}
	free(k);
	/* free records, lowest on top */
	s->n_free = 0;
	for (size_t i = s->cap; i-- > 0;) {
		if (!rec_valid(s, i)) {
			s->frees[s->n_free++] = (uint32_t)i;
		}
	}
	return SRUP_OK;
}

enum srup_err srupb_seen_open(const char *path, size_t capacity, struct srupb_seen **out, char *err,
                              size_t err_cap)
{
	struct srupb_seen *s;
	struct shdr h;
	size_t size;
	enum srup_err rc;

	*out = NULL;
	if (capacity > SRUPB_SEEN_CAP_MAX) {
		return srupb_errf(err, err_cap, SRUP_ERR_INVAL,
		                  "seen index capacity %zu is above the limit %zu", capacity,
		                  SRUPB_SEEN_CAP_MAX);
	}
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
	if (size == 0 || (size >= S_HDR_SIZE && h.magic == 0 && h.capacity == 0 && h.salt == 0)) {
		/* new, or killed between sizing it and writing its header: nothing was indexed */
		memset(s->f.id, 0, sizeof s->f.id);
		if (create_layout(s, capacity) != SRUP_OK) {
			rc = srupb_errf(err, err_cap, SRUP_ERR_IO, "cannot create seen index %s: %s", path,
			                strerror(errno));
			goto fail;
		}
		h.capacity = capacity;
	} else if (h.magic != S_MAGIC || h.version != S_VERSION || h.rec_size != S_REC_SIZE ||
	           h.capacity > SRUPB_SEEN_CAP_MAX || size != S_HDR_SIZE + h.capacity * S_REC_SIZE) {
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
	if (s->cap != capacity) {
		rc = resize(s, capacity, err, err_cap);
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
	free(s->senders);
	free(s->next);
	free(s->frees);
	free(s);
}

size_t srupb_seen_capacity(const struct srupb_seen *s)
{
	return s->cap;
}

size_t srupb_seen_used(const struct srupb_seen *s)
{
	return s->used;
}

size_t srupb_seen_count(const struct srupb_seen *s, uint64_t sender)
{
	const struct sender *p = sender_at(s, sender, false);
	return p != NULL ? p->count : 0;
}

bool srupb_seen_find(const struct srupb_seen *s, const uint8_t digest[32])
{
	uint32_t tag = tag_of(digest);
	for (size_t i = home(s, digest); s->tab[i] != 0; i = (i + 1) & s->tab_mask) {
		if (e_tag(s->tab[i]) != tag) {
			continue;
		}
		const struct srec *r = rec_at(s, e_slot(s->tab[i]));
		if (memcmp(r->digest, digest, sizeof r->digest) == 0) {
			return true;
		}
	}
	return false;
}

bool srupb_seen_room(const struct srupb_seen *s, uint64_t sender, size_t window)
{
	if (window == 0 || s->n_free > 0) {
		return true;
	}
	const struct sender *p = sender_at(s, sender, false);
	return p != NULL && p->count > 0 && p->count >= window;
}

bool srupb_seen_add(struct srupb_seen *s, uint64_t sender, size_t window, const uint8_t digest[32])
{
	struct srec n;
	struct srec *r;
	size_t slot;

	if (window == 0) {
		return true;
	}
	if (!srupb_seen_room(s, sender, window)) {
		return false;
	}
	struct sender *p = sender_at(s, sender, true);
	while (p->count >= window) {
		evict_oldest(s, p); /* its own, never another sender's */
	}
	slot = s->frees[--s->n_free];
	r = rec_at(s, slot);
	n.sender = sender;
	memcpy(n.digest, digest, sizeof n.digest);
	n.ins = s->next_ins++;
	n.check = rec_check(s->salt, n.sender, n.digest, n.ins);
	/* Invalidate, write the body, then the check word: a process killed part-way leaves a
	 * record that does not check (its message was not yet delivered). */
	__atomic_store_n(&r->check, 0, __ATOMIC_RELEASE);
	r->sender = n.sender;
	memcpy(r->digest, n.digest, sizeof r->digest);
	__atomic_store_n(&r->ins, n.ins, __ATOMIC_RELEASE);
	__atomic_store_n(&r->check, n.check, __ATOMIC_RELEASE);
	link_record(s, slot);
	return true;
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

const uint8_t *srupb_seen_store_id(const struct srupb_seen *s)
{
	return s->f.id;
}

void srupb_seen_set_store_id(struct srupb_seen *s, const uint8_t id[16])
{
	srupb_mapfile_set_id(&s->f, id);
}
