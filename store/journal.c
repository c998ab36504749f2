/* SPDX-License-Identifier: MIT
 * journal.c - the replay-mark journal (see journal.h): a shared file mapping of fixed-size
 * records and two open-addressing indexes over the records of the current epoch.
 * It knows nothing of LMDB; store.c decides when to fold it into the store. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "journal.h"
#include "mapfile.h"

#define J_MAGIC    0x314c4e4a50555253ULL /* "SRUPJNL1" read as a little-endian u64 */
#define J_VERSION  1u
#define J_HDR_SIZE 4096u
#define J_REC_SIZE 128u
#define J_CAP_MAX  ((size_t)1 << 20)

struct jhdr {
	uint64_t magic;
	uint32_t version;
	uint32_t rec_size;
	uint64_t capacity;
	uint64_t epoch;
	uint8_t zero[32];
	uint8_t store_id[SRUPB_STORE_ID_LEN]; /* all zero: not yet bound (journals before ids) */
};

/* One record; check covers the 120 bytes before it and is written last. */
struct jrec {
	uint64_t sender;
	uint64_t a;
	uint64_t b;
	uint64_t seq;
	uint8_t kind;
	uint8_t pad[15];
	uint8_t digest[32];
	uint8_t client[16];
	uint64_t epoch;
	uint64_t index;
	uint64_t reserved;
	uint64_t check;
};

_Static_assert(sizeof(struct jrec) == J_REC_SIZE, "journal record is 128 bytes");
_Static_assert(sizeof(struct jhdr) <= J_HDR_SIZE, "journal header fits its page");
_Static_assert(offsetof(struct jhdr, store_id) == SRUPB_MAPFILE_ID_OFF, "store id offset");

/* Index slots: an entry belongs to the current epoch only if its gen matches, so starting an
 * epoch empties the index without touching it. */
struct mslot {
	uint64_t gen;
	uint64_t sender;
	uint64_t a;
	uint64_t b;
	uint8_t kind;
	struct srupb_mark mark;
};

struct srupb_journal {
	struct srupb_mapfile f;
	size_t capacity;     /* records the mapped file holds */
	size_t want_cap;     /* records asked for at open (the next reset resizes to it) */
	size_t count;        /* valid records of this epoch: slots [0, count) */
	uint64_t epoch;      /* copy of the header's */
	uint64_t seed;       /* keyed hashing of index positions */
	struct mslot *marks; /* index_cap slots */
	size_t index_cap;    /* power of two, >= 2 x capacity */
};

static uint64_t rec_check(const struct jrec *r)
{
	const uint8_t *p = (const uint8_t *)r;
	uint64_t h = 0x6a09e667f3bcc908ULL;
	for (size_t i = 0; i < offsetof(struct jrec, check); i += 8) {
		uint64_t w;
		memcpy(&w, p + i, 8);
		h = srupb_mix64(h ^ w) + i;
	}
	return h == 0 ? 1 : h; /* a zeroed slot never checks */
}

static struct jhdr *hdr(const struct srupb_journal *j)
{
	return (struct jhdr *)(void *)j->f.map;
}

static struct jrec *rec_at(const struct srupb_journal *j, size_t i)
{
	return (struct jrec *)(void *)(j->f.map + J_HDR_SIZE + i * J_REC_SIZE);
}

static size_t mark_pos(const struct srupb_journal *j, uint64_t sender, uint8_t kind, uint64_t a,
                       uint64_t b)
{
	uint64_t h = srupb_mix64(sender ^ j->seed);
	h = srupb_mix64(h ^ a ^ ((uint64_t)kind << 56));
	h = srupb_mix64(h ^ b);
	return (size_t)h & (j->index_cap - 1);
}

static void index_add(struct srupb_journal *j, const struct srupb_jentry *e)
{
	size_t mask = j->index_cap - 1;
	size_t i = mark_pos(j, e->sender, e->chan.kind, e->chan.a, e->chan.b);
	for (;; i = (i + 1) & mask) {
		struct mslot *s = &j->marks[i];
		if (s->gen != j->epoch) {
			s->gen = j->epoch;
			s->sender = e->sender;
			s->kind = e->chan.kind;
			s->a = e->chan.a;
			s->b = e->chan.b;
			s->mark = e->mark;
			break;
		}
		if (s->sender == e->sender && s->kind == e->chan.kind && s->a == e->chan.a &&
		    s->b == e->chan.b) {
			if (e->mark.seq > s->mark.seq) {
				s->mark = e->mark;
			}
			break;
		}
	}
}

static enum srup_err map_file(struct srupb_journal *j, size_t capacity)
{
	if (srupb_mapfile_map(&j->f, J_HDR_SIZE + capacity * J_REC_SIZE) != SRUP_OK) {
		return SRUP_ERR_IO;
	}
	j->capacity = capacity;
	return SRUP_OK;
}

static enum srup_err alloc_index(struct srupb_journal *j)
{
	size_t n = 16;
	size_t need = j->capacity > j->want_cap ? j->capacity : j->want_cap;
	while (n < 2 * need) {
		n *= 2;
	}
	free(j->marks);
	/* gen 0 is never an epoch, so calloc'd slots are empty */
	j->marks = calloc(n, sizeof *j->marks);
	j->index_cap = n;
	return j->marks != NULL ? SRUP_OK : SRUP_ERR_NOMEM;
}

/* A fresh file: header for want_cap records, epoch 1, no valid record. */
static enum srup_err create_layout(struct srupb_journal *j)
{
	struct jhdr h;
	memset(&h, 0, sizeof h);
	h.magic = J_MAGIC;
	h.version = J_VERSION;
	h.rec_size = J_REC_SIZE;
	h.capacity = j->want_cap;
	h.epoch = 1;
	memcpy(h.store_id, j->f.id, sizeof h.store_id); /* a resize keeps the file's store */
	if (srupb_mapfile_create(&j->f, J_HDR_SIZE + j->want_cap * J_REC_SIZE, &h, sizeof h) !=
	            SRUP_OK ||
	    map_file(j, j->want_cap) != SRUP_OK) {
		return SRUP_ERR_IO;
	}
	j->epoch = 1;
	return SRUP_OK;
}

enum srup_err srupb_journal_open(const char *path, size_t capacity, struct srupb_journal **out,
                                 char *err, size_t err_cap)
{
	struct srupb_journal *j;
	struct jhdr h;
	size_t size;
	enum srup_err rc;

	*out = NULL;
	if (capacity == 0 || capacity > J_CAP_MAX) {
		return SRUP_ERR_INVAL;
	}
	j = calloc(1, sizeof *j);
	if (j == NULL) {
		return SRUP_ERR_NOMEM;
	}
	rc = srupb_mapfile_open(&j->f, path, "marks journal", &h, sizeof h, &size, err, err_cap);
	if (rc != SRUP_OK) {
		free(j);
		return rc;
	}
	if (getrandom(&j->seed, sizeof j->seed, 0) != (ssize_t)sizeof j->seed) {
		j->seed = (uint64_t)(uintptr_t)j ^ (uint64_t)getpid();
	}
	j->want_cap = capacity;
	/* Empty, or killed between sizing the file and writing its header: nothing was journalled
	 * (records are written only under a header), so start afresh. */
	if (size == 0 || (size >= J_HDR_SIZE && h.magic == 0 && h.epoch == 0 && h.capacity == 0)) {
		if (create_layout(j) != SRUP_OK) {
			rc = srupb_errf(err, err_cap, SRUP_ERR_IO, "cannot create marks journal %s: %s", path,
			                strerror(errno));
			goto fail;
		}
	} else {
		/* The header's capacity is trusted only if the file's size agrees with it. */
		if (h.magic != J_MAGIC || h.version != J_VERSION || h.rec_size != J_REC_SIZE ||
		    h.capacity == 0 || h.capacity > J_CAP_MAX || h.epoch == 0 ||
		    size != J_HDR_SIZE + h.capacity * J_REC_SIZE) {
			rc = srupb_errf(err, err_cap, SRUP_ERR_INVAL,
			                "marks journal %s: not a journal of this version, or its size does "
			                "not match its header; move it away to start (the replay marks it "
			                "holds are then lost)",
			                path);
			goto fail;
		}
		if (map_file(j, (size_t)h.capacity) != SRUP_OK) {
			rc = srupb_errf(err, err_cap, SRUP_ERR_IO, "cannot map marks journal %s: %s", path,
			                strerror(errno));
			goto fail;
		}
		j->epoch = h.epoch;
	}
	if (alloc_index(j) != SRUP_OK) {
		rc = SRUP_ERR_NOMEM;
		goto fail;
	}
	/* The valid records are a prefix: stop at the first slot that does not check. */
	while (j->count < j->capacity) {
		const struct jrec *r = rec_at(j, j->count);
		struct srupb_jentry e;
		if (r->epoch != j->epoch || r->index != j->count || r->check != rec_check(r)) {
			break;
		}
		srupb_journal_get(j, j->count, &e);
		j->count++;
		index_add(j, &e);
	}
	*out = j;
	return SRUP_OK;
fail:
	srupb_journal_close(j);
	return rc;
}

void srupb_journal_close(struct srupb_journal *j)
{
	if (j == NULL) {
		return;
	}
	srupb_mapfile_close(&j->f);
	free(j->marks);
	free(j);
}

size_t srupb_journal_count(const struct srupb_journal *j)
{
	return j->count;
}

bool srupb_journal_full(const struct srupb_journal *j)
{
	return j->count >= j->capacity;
}

void srupb_journal_get(const struct srupb_journal *j, size_t i, struct srupb_jentry *e)
{
	const struct jrec *r = rec_at(j, i);
	e->sender = r->sender;
	e->chan.kind = r->kind;
	e->chan.a = r->a;
	e->chan.b = r->b;
	e->mark.seq = r->seq;
	memcpy(e->mark.digest, r->digest, sizeof e->mark.digest);
	memcpy(e->mark.client, r->client, sizeof e->mark.client);
}

void srupb_journal_append(struct srupb_journal *j, const struct srupb_jentry *e)
{
	struct jrec r;
	struct jrec *dst = rec_at(j, j->count);

	memset(&r, 0, sizeof r);
	r.sender = e->sender;
	r.a = e->chan.a;
	r.b = e->chan.b;
	r.kind = e->chan.kind;
	r.seq = e->mark.seq;
	memcpy(r.digest, e->mark.digest, sizeof r.digest);
	memcpy(r.client, e->mark.client, sizeof r.client);
	r.epoch = j->epoch;
	r.index = j->count;
	r.check = rec_check(&r);
	/* Body first, check word last: a process killed between the two leaves a record that does
	 * not check, which recovery treats as never written (its message was never delivered). */
	memcpy(dst, &r, offsetof(struct jrec, check));
	__atomic_store_n(&dst->check, r.check, __ATOMIC_RELEASE);
	j->count++;
	index_add(j, e);
}

bool srupb_journal_mark_find(const struct srupb_journal *j, uint64_t sender,
                             const struct srupb_chan *chan, struct srupb_mark *mark)
{
	size_t mask = j->index_cap - 1;
	for (size_t i = mark_pos(j, sender, chan->kind, chan->a, chan->b);; i = (i + 1) & mask) {
		const struct mslot *s = &j->marks[i];
		if (s->gen != j->epoch) {
			return false;
		}
		if (s->sender == sender && s->kind == chan->kind && s->a == chan->a && s->b == chan->b) {
			*mark = s->mark;
			return true;
		}
	}
}

enum srup_err srupb_journal_reset(struct srupb_journal *j, char *err, size_t err_cap)
{
	uint64_t next = j->epoch + 1;

	if (j->capacity != j->want_cap) {
		/* Only at the first checkpoint after opening a file of another size. */
		if (create_layout(j) != SRUP_OK) {
			return srupb_errf(err, err_cap, SRUP_ERR_IO, "cannot resize marks journal %s: %s",
			                  j->f.path, strerror(errno));
		}
		next = 1;
	} else {
		__atomic_store_n(&hdr(j)->epoch, next, __ATOMIC_RELEASE);
	}
	j->epoch = next;
	j->count = 0;
	if (next == 1) {
		/* epoch numbers restart with a new file: slots of the old gen 1 must not survive */
		return alloc_index(j);
	}
	return SRUP_OK;
}

int srupb_journal_fd(const struct srupb_journal *j)
{
	return j->f.fd;
}

void srupb_journal_sync(struct srupb_journal *j)
{
	if (j != NULL) {
		srupb_mapfile_sync(&j->f);
	}
}

const uint8_t *srupb_journal_store_id(const struct srupb_journal *j)
{
	return j->f.id;
}

void srupb_journal_set_store_id(struct srupb_journal *j, const uint8_t id[16])
{
	srupb_mapfile_set_id(&j->f, id);
}
