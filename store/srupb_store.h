/* SPDX-License-Identifier: MIT
 * srupb_store.h - the SRUP broker state store (LMDB): keys, replay marks, seen index, membership.
 * Shared by the plugin and `srup keys`; no Mosquitto symbols, no logging, no crypto. */
#ifndef SRUPB_STORE_H
#define SRUPB_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <srup/err.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Roles a key can have (policy rules name them). Values are stored on disk: never renumber. */
enum srupb_role {
	SRUPB_ROLE_NONE = 0,
	SRUPB_ROLE_SERVER = 1,
	SRUPB_ROLE_DEVICE = 2,
	SRUPB_ROLE_OBSERVER = 3,
	SRUPB_ROLE__COUNT
};

enum srupb_key_status {
	SRUPB_KEY_ACTIVE = 0,
	SRUPB_KEY_REVOKED = 1,
};

/* How a commit reaches the disk.
 * FSYNC: fsync data and meta page per commit (survives power loss; ~450 us on this VM's disk).
 * META:  MDB_NOMETASYNC: data synced, meta page not (last commit may be lost on power loss).
 * OS:    MDB_NOSYNC: the commit is in the OS page cache when it returns, so it survives any crash
 *        of the broker process (kill -9) but not of the machine; the plugin starts its writeback
 *        once a second (srupb_store_writeback). */
enum srupb_sync {
	SRUPB_SYNC_FSYNC = 0,
	SRUPB_SYNC_META = 1,
	SRUPB_SYNC_OS = 2,
	/* MAP:   as OS, with MDB_WRITEMAP: commits write into the shared mapping, no write(2) per
	 *        commit (~12% more accepted messages per second here). The data file's apparent
	 *        size becomes the map size (8 GiB, sparse) and stray writes in the broker process
	 *        could reach the store. Chosen at open; a reload cannot switch to or from it. */
	SRUPB_SYNC_MAP = 3,
};

/* Name of a role ("server"), or "none". */
const char *srupb_role_name(unsigned role);
/* Role from its name; SRUPB_ROLE_NONE if unknown. */
enum srupb_role srupb_role_from_name(const char *name);

/* A replay channel: the topic a message was accepted on, reduced to ids. */
enum srupb_chan_kind {
	SRUPB_CHAN_DEVICE = 1, /* SRUP/<a> */
	SRUPB_CHAN_JOIN = 2,   /* SRUP/servers/<a>/<b> */
};

struct srupb_chan {
	uint8_t kind; /* enum srupb_chan_kind */
	uint64_t a;
	uint64_t b; /* 0 for device channels */
};

/* One key record. pem points into the store (read transaction) or a copy; not NUL-terminated
 * when borrowed. */
struct srupb_keyrec {
	uint64_t id;
	uint8_t role;        /* enum srupb_role */
	uint8_t status;      /* enum srupb_key_status */
	uint64_t generation; /* changes whenever the record is written (key cache validity) */
	uint64_t created;    /* unix seconds when the key was (last) added */
	const char *pem;
	size_t pem_len;
};

/* The high-water mark of one (sender, channel). */
struct srupb_mark {
	uint64_t seq;
	uint8_t digest[32]; /* SHA-256 of the whole accepted payload */
	uint8_t client[16]; /* first 16 bytes of SHA-256 of the accepting client's id */
};

/* What the verifier commits for one accepted message: one LMDB write transaction, then the
 * seen-index entry. */
enum srupb_member_op {
	SRUPB_MEMBER_NONE = 0,
	SRUPB_MEMBER_JOIN = 1,      /* device joined server */
	SRUPB_MEMBER_LEAVE = 2,     /* device left server */
	SRUPB_MEMBER_LEAVE_ALL = 3, /* device left every server */
};

#define SRUPB_REMOVED_MAX 16

struct srupb_commit {
	uint64_t sender;
	struct srupb_chan chan;
	struct srupb_mark mark;
	size_t seen_max;   /* the sender's window in the seen index; 0: not indexed */
	uint8_t member_op; /* enum srupb_member_op */
	uint64_t member_device;
	uint64_t member_server;
	bool revoke; /* revoke member_device's key */
	/* out: no record of the seen index was free for this sender (nothing was written) */
	bool seen_full;
	/* out: servers whose membership of member_device this commit ended (first few only) */
	size_t n_removed;
	uint64_t removed[SRUPB_REMOVED_MAX];
};

struct srupb_store;

/* Open (creating if needed) the store in directory dir (created with mode 0700 if missing).
 * readonly opens without write access (list/show). On failure *out is NULL and err (if cap > 0)
 * holds one line saying why. Returns OK, IO or NOMEM. One handle per process; not thread-safe. */
enum srup_err srupb_store_open(const char *dir, bool readonly, enum srupb_sync sync,
                               struct srupb_store **out, char *err, size_t err_cap);
/* Close; accepts NULL. Ends any open read transaction. */
void srupb_store_close(struct srupb_store *st);
/* Change the sync mode of an open store (reload). */
enum srup_err srupb_store_set_sync(struct srupb_store *st, enum srupb_sync sync);
/* Flush the OS buffers of a SRUPB_SYNC_OS/META store to disk (periodic). */
void srupb_store_flush(struct srupb_store *st);
/* Start writing the store's dirty pages (LMDB, marks journal, seen index) back to disk, without
 * waiting for it (sync_file_range): the broker calls it once a second from its event loop, so
 * with durability os or map what a power cut can lose is about the last second. A thread doing
 * the same with fsync cost every message about 1.2 us: a second thread makes each of the
 * broker's socket calls take the shared-file-table path in the kernel. */
void srupb_store_writeback(struct srupb_store *st);
/* The store's 128-bit id (LMDB "meta", made when a writer first opens the store; all zero for a
 * store from before ids opened read-only). The marks journal and the seen index carry it in
 * their headers: srupb_store_journal_open and srupb_store_seen_open refuse (INVAL, one line in
 * srupb_store_strerror) a file bound to another id, or to any id when data.mdb had none (it was
 * emptied or truncated), so that lost replay state is never silently accepted. */
void srupb_store_id(const struct srupb_store *st, uint8_t id[16]);
/* Text of the last LMDB error (static or in the handle); never NULL. */
const char *srupb_store_strerror(const struct srupb_store *st);

/* --- administration (each call is its own write transaction) --- */

/* Add or replace key id with role and PEM public key; status becomes ACTIVE and the
 * generation changes. */
enum srup_err srupb_store_key_put(struct srupb_store *st, uint64_t id, enum srupb_role role,
                                  const char *pem, size_t pem_len);
/* What srupb_store_key_add did. */
enum srupb_add_result {
	SRUPB_ADD_NEW = 0,      /* no key had this id: added */
	SRUPB_ADD_REPLACED = 1, /* an active key had it and force was given: replaced, role too */
	SRUPB_ADD_EXISTS = 2,   /* an active key has it and force was not given: nothing written */
	SRUPB_ADD_REVOKED = 3,  /* the id is revoked: nothing written, force or not */
};

/* Add key id unless the id is taken: in one write transaction, add it if no key has the id,
 * replace an active one only with force, and never touch a revoked one (a revoked id stays
 * revoked). *res says which; *old (if not NULL) gets the existing record's role, status and
 * dates (pem NULL) when there was one. Returns OK (whatever *res), INVAL, IO or NOMEM. */
enum srup_err srupb_store_key_add(struct srupb_store *st, uint64_t id, enum srupb_role role,
                                  const char *pem, size_t pem_len, bool force,
                                  enum srupb_add_result *res, struct srupb_keyrec *old);
/* As srupb_store_key_put for ids[0, n), all with the same role and key, in one transaction
 * (bulk registration for tests and benchmarks). */
enum srup_err srupb_store_key_put_many(struct srupb_store *st, const uint64_t *ids, size_t n,
                                       enum srupb_role role, const char *pem, size_t pem_len);
/* Mark key id REVOKED and drop its memberships. *found says whether it existed. */
enum srup_err srupb_store_key_revoke(struct srupb_store *st, uint64_t id, bool *found);
/* Copy of the record of id: rec->pem is malloc'd and NUL-terminated (caller frees). */
enum srup_err srupb_store_key_get(struct srupb_store *st, uint64_t id, struct srupb_keyrec *rec,
                                  char **pem, bool *found);
/* Call fn for every key in id order (pem borrowed for the call). Stops when fn returns non-zero. */
enum srup_err srupb_store_key_foreach(struct srupb_store *st,
                                      int (*fn)(const struct srupb_keyrec *rec, void *arg),
                                      void *arg);
/* Number of keys, active and revoked (a revoked key keeps its record): O(1), LMDB's entry
 * count. Opens and ends its own read transaction, so none may be in use. OK, INVAL or IO. */
enum srup_err srupb_store_key_count(struct srupb_store *st, size_t *count);
/* Number of replay marks, one per (sender, channel) ever accepted: LMDB's entry count plus the
 * marks journal's records for channels LMDB does not hold yet, so O(1). Read transaction as
 * srupb_store_key_count. OK, INVAL or IO. */
enum srup_err srupb_store_mark_count(struct srupb_store *st, size_t *count);

/* As srupb_store_key_foreach, from the first id >= from (paging). */
enum srup_err srupb_store_key_foreach_from(struct srupb_store *st, uint64_t from,
                                           int (*fn)(const struct srupb_keyrec *rec, void *arg),
                                           void *arg);

/* --- rotation: a new key for an id, the old one still valid for an overlap --- */

enum srupb_rotate_result {
	SRUPB_ROTATE_DONE = 0,    /* new key in force; the old one retiring (if until is ahead) */
	SRUPB_ROTATE_UNKNOWN = 1, /* no key has this id: nothing written */
	SRUPB_ROTATE_REVOKED = 2, /* the id is revoked: nothing written */
	SRUPB_ROTATE_SAME = 3,    /* the new key is the key in force: nothing written */
};
/* In one write transaction: replace the ACTIVE key of id by pem (role kept, new generation) and
 * keep the replaced key as id's retiring key until unix time `until` (none if until is not in
 * the future). One retiring key per id: a second rotation drops the first's. Any other write of
 * the record (add, replace, revoke) drops the retiring key. Returns OK (whatever *res), INVAL
 * (also for an older store opened read-only), IO or NOMEM. */
enum srup_err srupb_store_key_rotate(struct srupb_store *st, uint64_t id, const char *pem,
                                     size_t pem_len, uint64_t until, enum srupb_rotate_result *res);
/* The retiring key of id, if any: *until (unix seconds; the caller compares it with the time)
 * and the PEM, borrowed until read_end (begins the read transaction when needed). */
enum srup_err srupb_store_retiring_find(struct srupb_store *st, uint64_t id, uint64_t *until,
                                        const char **pem, size_t *pem_len, bool *found);

/* --- membership administration --- */

/* Call fn with every membership (device, server, joined unix seconds) in (device, server) order,
 * from (from_device, from_server) on; device != 0 keeps to that device's. Its own read
 * transaction. Stops when fn returns non-zero. */
enum srup_err srupb_store_member_foreach(
        struct srupb_store *st, uint64_t device, uint64_t from_device, uint64_t from_server,
        int (*fn)(uint64_t device, uint64_t server, uint64_t joined, void *arg), void *arg);
/* Delete the membership of device in server; *found says whether there was one. */
enum srup_err srupb_store_member_remove(struct srupb_store *st, uint64_t device, uint64_t server,
                                        bool *found);

/* --- verifier reads: borrowed pointers die at read_end --- */

/* The read transaction: the finds below begin it when they need LMDB (a mark still in the
 * journal does not), and the caller ends it with read_end (a no-op when none is open). */
enum srup_err srupb_store_read_begin(struct srupb_store *st);
void srupb_store_read_end(struct srupb_store *st);
/* The id of the last transaction committed to the store by any process (0 on error): while it
 * is unchanged, nothing in LMDB changed, so what was read at that version still holds. Read it
 * before the reads it is to vouch for. */
uint64_t srupb_store_version(const struct srupb_store *st);
enum srup_err srupb_store_key_find(struct srupb_store *st, uint64_t id, struct srupb_keyrec *rec,
                                   bool *found);
/* Call fn with every replay mark of sender in LMDB, in channel order (its own read transaction;
 * marks still only in a running broker's journal are folded in at its next checkpoint, so a mark
 * read here may be older than the broker's). Stops when fn returns non-zero. */
enum srup_err srupb_store_mark_foreach(struct srupb_store *st, uint64_t sender,
                                       int (*fn)(const struct srupb_chan *chan,
                                                 const struct srupb_mark *mark, void *arg),
                                       void *arg);
enum srup_err srupb_store_mark_find(struct srupb_store *st, uint64_t sender,
                                    const struct srupb_chan *chan, struct srupb_mark *mark,
                                    bool *found);
/* Is a payload with this digest in the seen index (by any sender)? Never found without
 * srupb_store_seen_open. Does not need the read transaction. */
enum srup_err srupb_store_seen_find(struct srupb_store *st, const uint8_t digest[32], bool *found);
/* Could a commit of sender with seen window `window` add its seen-index entry now? *room is
 * true when window is 0, when sender already holds window entries (it evicts its own oldest),
 * when a record is free, or when no index is open. OK or INVAL. */
enum srup_err srupb_store_seen_room(struct srupb_store *st, uint64_t sender, size_t window,
                                    bool *room);
enum srup_err srupb_store_member_find(struct srupb_store *st, uint64_t device, uint64_t server,
                                      bool *found);

/* Commit an accepted message: checks that the seen index has room for the sender's entry
 * (c->seen_full true and nothing written if not), re-checks in the write transaction that
 * c->mark.seq is still above the stored mark (*stale true and nothing written if not), then
 * writes the mark and the membership/revocation effect, commits, and adds the seen-index entry
 * (window c->seen_max, evicting only c->sender's own oldest entries). A read transaction must
 * not be open. */
enum srup_err srupb_store_commit(struct srupb_store *st, struct srupb_commit *c, bool *stale);

/* --- the marks journal (the broker only; `srup keys` never opens it) --- */

/* Open <dir>/marks.journal with room for capacity records, lock it (a second broker on this
 * store fails here: INVAL), and fold into LMDB what a killed broker left in it. From then on,
 * while the sync mode is OS or MAP, srupb_store_commit appends a mark without a membership
 * change to the journal instead of an LMDB write transaction: it is in the shared mapping, so
 * it survives kill -9, and srupb_store_writeback writes it back with the store. Errors are in
 * srupb_store_strerror. */
enum srup_err srupb_store_journal_open(struct srupb_store *st, size_t capacity);
/* Fold the journal into LMDB in one transaction and empty it (also done when it is full,
 * before a membership commit, on a switch to FSYNC or META, and by srupb_store_close). No read
 * transaction may be open. OK without a journal. */
enum srup_err srupb_store_checkpoint(struct srupb_store *st);
/* Records the journal holds now (0 without one). */
size_t srupb_store_journal_count(const struct srupb_store *st);

/* --- the seen index (the broker only; `srup keys` never opens it) --- */

/* Open <dir>/seen.idx (seen.c) with a fixed capacity of records (policy seen_index), shared by
 * all senders, each within its own window (struct srupb_commit.seen_max), and lock it: a second
 * broker on this store fails here (INVAL). A file of another capacity is rewritten keeping the
 * newest entries of every sender. srupb_store_writeback writes it back with the store. Errors
 * are in srupb_store_strerror. */
enum srup_err srupb_store_seen_open(struct srupb_store *st, size_t capacity);
/* Records in use and the capacity of the seen index (0 and 0 without one). */
void srupb_store_seen_stats(const struct srupb_store *st, size_t *used, size_t *capacity);

#ifdef __cplusplus
}
#endif
#endif
