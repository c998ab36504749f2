/* SPDX-License-Identifier: MIT
 * store.c - the SRUP broker state in one LMDB environment, shared by the plugin and `srup keys`.
 * Stores and finds records; it does not decide verdicts, parse SRUP messages or log.
 *
 * Databases (all integers in keys are big-endian so cursors walk them in numeric order):
 *   keys    id(8)                         -> fmt(1)=1 role(1) status(1) 0(1) gen(8le) created(8le) pem
 *   marks   sender(8) kind(1) a(8) b(8)   -> seq(8le) payload sha256(32) client-id digest(16)
 *   members device(8) server(8)           -> joined unix seconds(8le)
 *   retiring id(8)                        -> until unix seconds(8le) pem: the key a rotation
 *                                            replaced, still valid for id until then
 *   meta    "store_id"                    -> 16 random bytes, written when the store is created
 *                                            (or first opened for writing, for older stores)
 * and, for the broker only, the seen index in <dir>/seen.idx (seen.c), not in LMDB: a B-tree
 * insert of a random digest per accepted message cost more than everything else here.
 * (Stores written before that may hold unused "seen" and "seenq" databases.)
 *
 * With durability os or map the broker also journals marks (journal.c, <dir>/marks.journal)
 * instead of one LMDB write transaction per message, and folds the journal into "marks" in one
 * transaction when it fills, before a commit that changes membership, and at open and close.
 */
#define _GNU_SOURCE /* sync_file_range */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sys/types.h>
#include <time.h>

#include <lmdb.h>
#include <srup/id.h>

#include "journal.h"
#include "mapfile.h"
#include "seen.h"
#include "srupb_store.h"

#define STORE_MAPSIZE  ((size_t)8 << 30) /* address space only; the file grows as needed */
#define STORE_MAXDBS   8
#define KEYREC_HDR     20
#define MARK_KEY_LEN   25
#define MARK_VAL_LEN   56
#define MEMBER_KEY_LEN 16

struct srupb_store {
	MDB_env *env;
	MDB_dbi keys;
	MDB_dbi marks;
	MDB_dbi members;
	MDB_dbi retiring;
	bool has_retiring; /* false only for an older store opened read-only */
	MDB_dbi meta;
	uint8_t id[SRUPB_STORE_ID_LEN]; /* the store id in LMDB ("meta"), all zero if none */
	bool id_created;                /* LMDB had no id: this open wrote one */
	MDB_txn *rtxn;                  /* cached read-only transaction, reset between uses */
	bool rtxn_live;                 /* rtxn is renewed (between read_begin and read_end) */
	bool readonly;
	bool writemap;
	enum srupb_sync sync;
	struct srupb_journal *jr; /* NULL unless srupb_store_journal_open */
	size_t jr_new;            /* journal records whose (sender, channel) LMDB does not hold */
	char *dir;
	struct srupb_seen *seen; /* NULL unless srupb_store_seen_open */
	char err[1024];
};

static void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)(v & 0xffu);
		v >>= 8;
	}
}

static uint64_t get_be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++) {
		v = (v << 8) | p[i];
	}
	return v;
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++) {
		p[i] = (uint8_t)(v & 0xffu);
		v >>= 8;
	}
}

static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--) {
		v = (v << 8) | p[i];
	}
	return v;
}

static enum srup_err fail(struct srupb_store *st, const char *what, int rc)
{
	if (st != NULL) {
		snprintf(st->err, sizeof st->err, "%s: %s", what, mdb_strerror(rc));
	}
	return rc == ENOMEM ? SRUP_ERR_NOMEM : SRUP_ERR_IO;
}

void srupb_store_id(const struct srupb_store *st, uint8_t id[16])
{
	memcpy(id, st->id, SRUPB_STORE_ID_LEN);
}

const char *srupb_store_strerror(const struct srupb_store *st)
{
	if (st == NULL || st->err[0] == '\0') {
		return "no error";
	}
	return st->err;
}

static unsigned sync_flags(enum srupb_sync sync)
{
	switch (sync) {
		case SRUPB_SYNC_META:
			return MDB_NOMETASYNC;
		case SRUPB_SYNC_OS:
		case SRUPB_SYNC_MAP:
			return MDB_NOSYNC;
		case SRUPB_SYNC_FSYNC:
		default:
			return 0;
	}
}

static int open_dbi(MDB_txn *txn, const char *name, unsigned flags, MDB_dbi *dbi)
{
	return mdb_dbi_open(txn, name, flags, dbi);
}

#define STORE_ID_KEY "store_id"

/* Read the store id from "meta"; writing, create one if there is none (a new store, an older
 * store, or one whose data.mdb was lost: the journal and seen index then tell them apart). */
static int store_id_load(struct srupb_store *st, MDB_txn *txn, bool readonly)
{
	MDB_val k = {sizeof STORE_ID_KEY - 1, (void *)STORE_ID_KEY};
	MDB_val v;
	int mrc = open_dbi(txn, "meta", readonly ? 0u : MDB_CREATE, &st->meta);
	if (mrc == MDB_NOTFOUND && readonly) {
		st->meta = 0;
		return 0; /* a store from before ids, opened read-only: no id */
	}
	if (mrc != 0) {
		return mrc;
	}
	mrc = mdb_get(txn, st->meta, &k, &v);
	if (mrc == 0) {
		if (v.mv_size != SRUPB_STORE_ID_LEN) {
			return MDB_CORRUPTED;
		}
		memcpy(st->id, v.mv_data, SRUPB_STORE_ID_LEN);
		return 0;
	}
	if (mrc != MDB_NOTFOUND || readonly) {
		return mrc == MDB_NOTFOUND ? 0 : mrc;
	}
	do {
		if (getrandom(st->id, sizeof st->id, 0) != (ssize_t)sizeof st->id) {
			return EIO;
		}
	} while (memcmp(st->id, (const uint8_t[SRUPB_STORE_ID_LEN]){0}, sizeof st->id) == 0);
	st->id_created = true;
	v.mv_size = sizeof st->id;
	v.mv_data = st->id;
	return mdb_put(txn, st->meta, &k, &v, 0);
}

static void id_hex(const uint8_t id[SRUPB_STORE_ID_LEN], char out[2 * SRUPB_STORE_ID_LEN + 1])
{
	(void)srup_hex_encode(id, SRUPB_STORE_ID_LEN, out, 2 * SRUPB_STORE_ID_LEN + 1);
}

/* Check that a journal or seen-index file (file_id, from its header) belongs to this store;
 * bind an unbound one (set). INVAL with one line in st->err when the parts disagree. */
static enum srup_err store_id_check(struct srupb_store *st, const char *file,
                                    const uint8_t *file_id,
                                    void (*set)(void *obj, const uint8_t id[16]), void *obj)
{
	static const uint8_t zero[SRUPB_STORE_ID_LEN];
	char fh[2 * SRUPB_STORE_ID_LEN + 1];
	char sh[2 * SRUPB_STORE_ID_LEN + 1];

	if (memcmp(file_id, zero, sizeof zero) == 0) {
		set(obj, st->id); /* a new file, or one from before store ids */
		return SRUP_OK;
	}
	if (memcmp(file_id, st->id, sizeof st->id) == 0) {
		return SRUP_OK;
	}
	id_hex(file_id, fh);
	id_hex(st->id, sh);
	if (st->id_created) {
		snprintf(st->err, sizeof st->err,
		         "store %s: data.mdb has no store id (new, emptied or truncated) but %s belongs "
		         "to store %s, so the replay state would be lost; refusing to start: restore the "
		         "store directory from a backup, or remove marks.journal and seen.idx to "
		         "knowingly accept losing it",
		         st->dir, file, fh);
	} else {
		snprintf(st->err, sizeof st->err,
		         "store %s: %s belongs to store %s but data.mdb is store %s: the store's files "
		         "disagree; refusing to start: restore the store directory from a backup, or "
		         "remove marks.journal and seen.idx to knowingly accept losing the replay state",
		         st->dir, file, fh, sh);
	}
	return SRUP_ERR_INVAL;
}

static void set_journal_id(void *obj, const uint8_t id[16])
{
	srupb_journal_set_store_id(obj, id);
}

static void set_seen_id(void *obj, const uint8_t id[16])
{
	srupb_seen_set_store_id(obj, id);
}

/* root writing a store that belongs to someone else (e.g. `srup keys add` by root on the
 * mosquitto user's /var/lib/srup) leaves the files it created owned by that someone, so that the
 * broker can still open them. */
static void keep_owner(const char *dir, bool readonly)
{
	static const char *const files[] = {"data.mdb", "lock.mdb"};
	struct stat ds;
	size_t i;

	if (readonly || geteuid() != 0 || stat(dir, &ds) != 0 || ds.st_uid == 0) {
		return;
	}
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char path[4096];
		struct stat fs;

		snprintf(path, sizeof path, "%s/%s", dir, files[i]);
		if (lstat(path, &fs) == 0 && S_ISREG(fs.st_mode) &&
		    (fs.st_uid != ds.st_uid || fs.st_gid != ds.st_gid)) {
			(void)chown(path, ds.st_uid, ds.st_gid);
		}
	}
}

enum srup_err srupb_store_open(const char *dir, bool readonly, enum srupb_sync sync,
                               struct srupb_store **out, char *err, size_t err_cap)
{
	struct srupb_store *st = NULL;
	MDB_txn *txn = NULL;
	enum srup_err rc = SRUP_ERR_IO;
	int mrc = 0;
	const char *what = "mdb_env_create";

	if (out == NULL || dir == NULL) {
		return SRUP_ERR_INVAL;
	}
	*out = NULL;
	if (err != NULL && err_cap > 0) {
		err[0] = '\0';
	}
	st = calloc(1, sizeof *st);
	if (st == NULL) {
		return SRUP_ERR_NOMEM;
	}
	st->readonly = readonly;
	st->sync = sync;
	st->dir = strdup(dir);
	if (st->dir == NULL) {
		free(st);
		return SRUP_ERR_NOMEM;
	}
	if (!readonly && mkdir(dir, 0700) != 0 && errno != EEXIST) {
		snprintf(st->err, sizeof st->err, "cannot create directory %s: %s", dir, strerror(errno));
		goto out;
	}
	mrc = mdb_env_create(&st->env);
	if (mrc != 0) {
		goto lmdb_fail;
	}
	what = "mdb_env_set_mapsize";
	mrc = mdb_env_set_mapsize(st->env, STORE_MAPSIZE);
	if (mrc != 0) {
		goto lmdb_fail;
	}
	mrc = mdb_env_set_maxdbs(st->env, STORE_MAXDBS);
	if (mrc != 0) {
		goto lmdb_fail;
	}
	what = "cannot open LMDB store";
	st->writemap = !readonly && sync == SRUPB_SYNC_MAP;
	mrc = mdb_env_open(st->env, dir,
	                   MDB_NOTLS | sync_flags(sync) | (readonly ? MDB_RDONLY : 0u) |
	                           (st->writemap ? MDB_WRITEMAP : 0u),
	                   0600);
	if (mrc != 0) {
		struct stat ds;

		char data[4096];

		snprintf(data, sizeof data, "%s/data.mdb", dir);
		if (mrc == EACCES && (stat(data, &ds) == 0 || stat(dir, &ds) == 0)) {
			snprintf(st->err, sizeof st->err,
			         "%s %s: %s: running as uid %u, the store's files belong to uid %u (the "
			         "store must belong to the user the broker runs as, e.g. chown -R "
			         "mosquitto: %s)",
			         what, dir, mdb_strerror(mrc), (unsigned)geteuid(), (unsigned)ds.st_uid, dir);
		} else {
			snprintf(st->err, sizeof st->err, "%s %s: %s", what, dir, mdb_strerror(mrc));
		}
		goto out;
	}
	keep_owner(dir, readonly);
	/* A broker killed with -9 leaves its reader slot behind; free such slots now. */
	(void)mdb_reader_check(st->env, NULL);
	what = "cannot initialise LMDB databases";
	mrc = mdb_txn_begin(st->env, NULL, readonly ? MDB_RDONLY : 0u, &txn);
	if (mrc != 0) {
		goto lmdb_fail;
	}
	{
		unsigned cf = readonly ? 0u : MDB_CREATE;
		mrc = open_dbi(txn, "keys", cf, &st->keys);
		if (mrc == 0) {
			mrc = open_dbi(txn, "marks", cf, &st->marks);
		}
		if (mrc == 0) {
			mrc = open_dbi(txn, "members", cf, &st->members);
		}
		if (mrc == 0) {
			mrc = open_dbi(txn, "retiring", cf, &st->retiring);
			st->has_retiring = mrc == 0;
			if (mrc == MDB_NOTFOUND && readonly) {
				mrc = 0; /* a store from before rotation: no key is retiring */
			}
		}
		if (mrc == 0) {
			mrc = store_id_load(st, txn, readonly);
		}
	}
	if (mrc != 0) {
		mdb_txn_abort(txn);
		txn = NULL;
		if (readonly && mrc == MDB_NOTFOUND) {
			snprintf(st->err, sizeof st->err, "%s is not an initialised SRUP store", dir);
			goto out;
		}
		goto lmdb_fail;
	}
	mrc = mdb_txn_commit(txn);
	txn = NULL;
	if (mrc != 0) {
		goto lmdb_fail;
	}
	mrc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &st->rtxn);
	if (mrc != 0) {
		goto lmdb_fail;
	}
	mdb_txn_reset(st->rtxn);
	*out = st;
	return SRUP_OK;

lmdb_fail:
	rc = fail(st, what, mrc);
out:
	if (err != NULL && err_cap > 0) {
		snprintf(err, err_cap, "%s", st->err);
	}
	if (st->env != NULL) {
		mdb_env_close(st->env);
	}
	free(st->dir);
	free(st);
	return rc;
}

void srupb_store_close(struct srupb_store *st)
{
	if (st == NULL) {
		return;
	}
	if (st->rtxn != NULL) {
		mdb_txn_abort(st->rtxn);
		st->rtxn = NULL;
		st->rtxn_live = false;
	}
	if (st->jr != NULL) {
		/* Fold what the journal holds; if that fails the records stay for the next open. */
		(void)srupb_store_checkpoint(st);
		srupb_journal_sync(st->jr);
		srupb_journal_close(st->jr);
	}
	if (st->env != NULL) {
		mdb_env_sync(st->env, 1);
		mdb_env_close(st->env);
	}
	srupb_seen_sync(st->seen);
	srupb_seen_close(st->seen);
	free(st->dir);
	free(st);
}

static bool journal_active(const struct srupb_store *st)
{
	return st->jr != NULL && (st->sync == SRUPB_SYNC_OS || st->sync == SRUPB_SYNC_MAP);
}

enum srup_err srupb_store_set_sync(struct srupb_store *st, enum srupb_sync sync)
{
	if ((sync == SRUPB_SYNC_MAP) != st->writemap) {
		snprintf(st->err, sizeof st->err,
		         "durability map is chosen when the store opens: restart the broker to switch");
		return SRUP_ERR_INVAL;
	}
	int mrc = mdb_env_set_flags(st->env, MDB_NOSYNC | MDB_NOMETASYNC, 0);
	if (mrc == 0 && sync_flags(sync) != 0) {
		mrc = mdb_env_set_flags(st->env, sync_flags(sync), 1);
	}
	if (mrc != 0) {
		return fail(st, "mdb_env_set_flags", mrc);
	}
	st->sync = sync;
	if (st->jr != NULL && !journal_active(st)) {
		/* fsync and metasync commit every mark in LMDB: fold the journal there and sync now */
		enum srup_err rc = srupb_store_checkpoint(st);
		if (rc != SRUP_OK) {
			return rc;
		}
		(void)mdb_env_sync(st->env, 1);
	}
	return SRUP_OK;
}

void srupb_store_flush(struct srupb_store *st)
{
	if (st != NULL && !st->readonly) {
		(void)mdb_env_sync(st->env, 1);
	}
}

/* Start writing dirty pages of fd back to disk without waiting for it. */
static void start_writeback(int fd)
{
	if (fd >= 0) {
		(void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
	}
}

void srupb_store_writeback(struct srupb_store *st)
{
	mdb_filehandle_t fd;
	if (st == NULL || st->readonly) {
		return;
	}
	if (mdb_env_get_fd(st->env, &fd) == 0) {
		start_writeback(fd);
	}
	if (st->jr != NULL) {
		start_writeback(srupb_journal_fd(st->jr));
	}
	if (st->seen != NULL) {
		start_writeback(srupb_seen_fd(st->seen));
	}
}

/* --- key records --- */

static bool keyrec_decode(uint64_t id, const MDB_val *v, struct srupb_keyrec *rec)
{
	const uint8_t *p = v->mv_data;
	if (v->mv_size < KEYREC_HDR || p[0] != 1) {
		return false;
	}
	rec->id = id;
	rec->role = p[1];
	rec->status = p[2];
	rec->generation = get_le64(p + 4);
	rec->created = get_le64(p + 12);
	rec->pem = (const char *)(p + KEYREC_HDR);
	rec->pem_len = v->mv_size - KEYREC_HDR;
	return true;
}

static uint64_t new_generation(void)
{
	struct timespec ts;
	static uint64_t last;
	uint64_t g;
	clock_gettime(CLOCK_REALTIME, &ts);
	g = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	if (g <= last) {
		g = last + 1;
	}
	last = g;
	return g;
}

static int keyrec_write(struct srupb_store *st, MDB_txn *txn, uint64_t id, uint8_t role,
                        uint8_t status, uint64_t created, const char *pem, size_t pem_len)
{
	uint8_t kb[8];
	MDB_val k = {sizeof kb, kb};
	MDB_val v = {KEYREC_HDR + pem_len, NULL};
	int mrc;

	put_be64(kb, id);
	/* Any write of the record but a rotation's ends the old key's overlap: an added, replaced
	 * or revoked key leaves no retiring key behind (rotation writes its own after this). */
	mrc = mdb_del(txn, st->retiring, &k, NULL);
	if (mrc != 0 && mrc != MDB_NOTFOUND) {
		return mrc;
	}
	mrc = mdb_put(txn, st->keys, &k, &v, MDB_RESERVE);
	if (mrc != 0) {
		return mrc;
	}
	uint8_t *p = v.mv_data;
	p[0] = 1;
	p[1] = role;
	p[2] = status;
	p[3] = 0;
	put_le64(p + 4, new_generation());
	put_le64(p + 12, created);
	memcpy(p + KEYREC_HDR, pem, pem_len);
	return 0;
}

enum srup_err srupb_store_key_put(struct srupb_store *st, uint64_t id, enum srupb_role role,
                                  const char *pem, size_t pem_len)
{
	MDB_txn *txn = NULL;
	int mrc;

	if (st == NULL || pem == NULL || role == SRUPB_ROLE_NONE || role >= SRUPB_ROLE__COUNT) {
		return SRUP_ERR_INVAL;
	}
	mrc = mdb_txn_begin(st->env, NULL, 0, &txn);
	if (mrc != 0) {
		return fail(st, "mdb_txn_begin", mrc);
	}
	mrc = keyrec_write(st, txn, id, (uint8_t)role, SRUPB_KEY_ACTIVE, (uint64_t)time(NULL), pem,
	                   pem_len);
	if (mrc != 0) {
		mdb_txn_abort(txn);
		return fail(st, "mdb_put(keys)", mrc);
	}
	mrc = mdb_txn_commit(txn);
	if (mrc != 0) {
		return fail(st, "mdb_txn_commit", mrc);
	}
	return SRUP_OK;
}

enum srup_err srupb_store_key_add(struct srupb_store *st, uint64_t id, enum srupb_role role,
                                  const char *pem, size_t pem_len, bool force,
                                  enum srupb_add_result *res, struct srupb_keyrec *old)
{
	MDB_txn *txn = NULL;
	uint8_t kb[8];
	MDB_val k = {sizeof kb, kb};
	MDB_val v;
	struct srupb_keyrec rec;
	int mrc;

	if (st == NULL || pem == NULL || res == NULL || role == SRUPB_ROLE_NONE ||
	    role >= SRUPB_ROLE__COUNT) {
		return SRUP_ERR_INVAL;
	}
	mrc = mdb_txn_begin(st->env, NULL, 0, &txn);
	if (mrc != 0) {
		return fail(st, "mdb_txn_begin", mrc);
	}
	/* Decide and write in one write transaction: no other writer can slip in between. */
	put_be64(kb, id);
	mrc = mdb_get(txn, st->keys, &k, &v);
	if (mrc != 0 && mrc != MDB_NOTFOUND) {
		mdb_txn_abort(txn);
		return fail(st, "mdb_get(keys)", mrc);
	}
	if (mrc == 0) {
		if (!keyrec_decode(id, &v, &rec)) {
			mdb_txn_abort(txn);
			snprintf(st->err, sizeof st->err, "corrupt key record");
			return SRUP_ERR_IO;
		}
		if (old != NULL) {
			*old = rec;
			old->pem = NULL;
			old->pem_len = 0;
		}
		if (rec.status != SRUPB_KEY_ACTIVE || !force) {
			*res = rec.status != SRUPB_KEY_ACTIVE ? SRUPB_ADD_REVOKED : SRUPB_ADD_EXISTS;
			mdb_txn_abort(txn);
			return SRUP_OK;
		}
		*res = SRUPB_ADD_REPLACED;
	} else {
		*res = SRUPB_ADD_NEW;
	}
	mrc = keyrec_write(st, txn, id, (uint8_t)role, SRUPB_KEY_ACTIVE, (uint64_t)time(NULL), pem,
	                   pem_len);
	if (mrc != 0) {
		mdb_txn_abort(txn);
		return fail(st, "mdb_put(keys)", mrc);
	}
	mrc = mdb_txn_commit(txn);
	if (mrc != 0) {
		return fail(st, "mdb_txn_commit", mrc);
	}
	return SRUP_OK;
}

enum srup_err srupb_store_key_put_many(struct srupb_store *st, const uint64_t *ids, size_t n,
                                       enum srupb_role role, const char *pem, size_t pem_len)
{
	MDB_txn *txn = NULL;
	uint64_t now = (uint64_t)time(NULL);
	int mrc;

	if (st == NULL || pem == NULL || role == SRUPB_ROLE_NONE || role >= SRUPB_ROLE__COUNT) {
		return SRUP_ERR_INVAL;
	}
	mrc = mdb_txn_begin(st->env, NULL, 0, &txn);
	if (mrc != 0) {
		return fail(st, "mdb_txn_begin", mrc);
	}
	for (size_t i = 0; i < n; i++) {
		mrc = keyrec_write(st, txn, ids[i], (uint8_t)role, SRUPB_KEY_ACTIVE, now, pem, pem_len);
		if (mrc != 0) {
			mdb_txn_abort(txn);
			return fail(st, "mdb_put(keys)", mrc);
		}
	}
	mrc = mdb_txn_commit(txn);
	if (mrc != 0) {
		return fail(st, "mdb_txn_commit", mrc);
	}
	return SRUP_OK;
}

/* Delete every membership of device (all servers). */
static int members_drop_device(struct srupb_store *st, MDB_txn *txn, uint64_t device,
                               struct srupb_commit *c)
{
	MDB_cursor *cur = NULL;
	uint8_t kb[MEMBER_KEY_LEN];
	MDB_val k = {sizeof kb, kb};
	MDB_val v;
	int mrc;

	put_be64(kb, device);
	put_be64(kb + 8, 0);
	mrc = mdb_cursor_open(txn, st->members, &cur);
	if (mrc != 0) {
		return mrc;
	}
	for (;;) {
		k.mv_size = sizeof kb;
		k.mv_data = kb;
		mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		if (mrc != 0) {
			break;
		}
		if (k.mv_size != MEMBER_KEY_LEN || get_be64(k.mv_data) != device) {
			break;
		}
		if (c != NULL && c->n_removed < SRUPB_REMOVED_MAX) {
			c->removed[c->n_removed++] = get_be64((const uint8_t *)k.mv_data + 8);
		}
		mrc = mdb_cursor_del(cur, 0);
		if (mrc != 0) {
			break;
		}
	}
	mdb_cursor_close(cur);
	return mrc == MDB_NOTFOUND ? 0 : mrc;
}

static int key_revoke_txn(struct srupb_store *st, MDB_txn *txn, uint64_t id, bool *found)
{
	uint8_t kb[8];
	MDB_val k = {sizeof kb, kb};
	MDB_val v;
	struct srupb_keyrec rec;
	char *pem = NULL;
	int mrc;

	*found = false;
	put_be64(kb, id);
	mrc = mdb_get(txn, st->keys, &k, &v);
	if (mrc == MDB_NOTFOUND) {
		return members_drop_device(st, txn, id, NULL);
	}
	if (mrc != 0) {
		return mrc;
	}
	if (!keyrec_decode(id, &v, &rec)) {
		return MDB_CORRUPTED;
	}
	*found = true;
	/* The value lives in the map; copy the PEM before rewriting the record. */
	pem = malloc(rec.pem_len + 1);
	if (pem == NULL) {
		return ENOMEM;
	}
	memcpy(pem, rec.pem, rec.pem_len);
	mrc = keyrec_write(st, txn, id, rec.role, SRUPB_KEY_REVOKED, rec.created, pem, rec.pem_len);
	free(pem);
	if (mrc != 0) {
		return mrc;
	}
	return members_drop_device(st, txn, id, NULL);
}

enum srup_err srupb_store_key_revoke(struct srupb_store *st, uint64_t id, bool *found)
{
	MDB_txn *txn = NULL;
	bool f = false;
	int mrc;

	if (st == NULL) {
		return SRUP_ERR_INVAL;
	}
	mrc = mdb_txn_begin(st->env, NULL, 0, &txn);
	if (mrc != 0) {
		return fail(st, "mdb_txn_begin", mrc);
	}
	mrc = key_revoke_txn(st, txn, id, &f);
	if (mrc != 0) {
		mdb_txn_abort(txn);
		return fail(st, "revoke", mrc);
	}
	mrc = mdb_txn_commit(txn);
	if (mrc != 0) {
		return fail(st, "mdb_txn_commit", mrc);
	}
	if (found != NULL) {
		*found = f;
	}
	return SRUP_OK;
}

enum srup_err srupb_store_key_get(struct srupb_store *st, uint64_t id, struct srupb_keyrec *rec,
                                  char **pem, bool *found)
{
	enum srup_err rc;
	struct srupb_keyrec r;
	bool f = false;

	if (st == NULL || rec == NULL || pem == NULL || found == NULL) {
		return SRUP_ERR_INVAL;
	}
	*pem = NULL;
	*found = false;
	rc = srupb_store_read_begin(st);
	if (rc != SRUP_OK) {
		return rc;
	}
	rc = srupb_store_key_find(st, id, &r, &f);
	if (rc == SRUP_OK && f) {
		*pem = malloc(r.pem_len + 1);
		if (*pem == NULL) {
			rc = SRUP_ERR_NOMEM;
		} else {
			memcpy(*pem, r.pem, r.pem_len);
			(*pem)[r.pem_len] = '\0';
			*rec = r;
			rec->pem = *pem;
			*found = true;
		}
	}
	srupb_store_read_end(st);
	return rc;
}

enum srup_err srupb_store_key_foreach(struct srupb_store *st,
                                      int (*fn)(const struct srupb_keyrec *rec, void *arg),
                                      void *arg)
{
	return srupb_store_key_foreach_from(st, 0, fn, arg);
}

enum srup_err srupb_store_key_foreach_from(struct srupb_store *st, uint64_t from,
                                           int (*fn)(const struct srupb_keyrec *rec, void *arg),
                                           void *arg)
{
	MDB_cursor *cur = NULL;
	uint8_t kb[8];
	MDB_val k = {sizeof kb, kb};
	MDB_val v;
	enum srup_err rc;
	int mrc;

	if (st == NULL || fn == NULL) {
		return SRUP_ERR_INVAL;
	}
	rc = srupb_store_read_begin(st);
	if (rc != SRUP_OK) {
		return rc;
	}
	mrc = mdb_cursor_open(st->rtxn, st->keys, &cur);
	if (mrc != 0) {
		srupb_store_read_end(st);
		return fail(st, "mdb_cursor_open", mrc);
	}
	put_be64(kb, from);
	mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (mrc == 0) {
		struct srupb_keyrec rec;
		if (k.mv_size == 8 && keyrec_decode(get_be64(k.mv_data), &v, &rec)) {
			if (fn(&rec, arg) != 0) {
				break;
			}
		}
		mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	srupb_store_read_end(st);
	if (mrc != 0 && mrc != MDB_NOTFOUND) {
		return fail(st, "mdb_cursor_get", mrc);
	}
	return SRUP_OK;
}

/* Entries of one database (mdb_stat: O(1), no scan). */
static enum srup_err dbi_entries(struct srupb_store *st, MDB_dbi dbi, size_t *count)
{
	MDB_stat ms;
	enum srup_err rc;
	int mrc;

	if (st == NULL || count == NULL) {
		return SRUP_ERR_INVAL;
	}
	rc = srupb_store_read_begin(st);
	if (rc != SRUP_OK) {
		return rc;
	}
	mrc = mdb_stat(st->rtxn, dbi, &ms);
	srupb_store_read_end(st);
	if (mrc != 0) {
		return fail(st, "mdb_stat", mrc);
	}
	*count = ms.ms_entries;
	return SRUP_OK;
}

enum srup_err srupb_store_key_count(struct srupb_store *st, size_t *count)
{
	return st == NULL ? SRUP_ERR_INVAL : dbi_entries(st, st->keys, count);
}

enum srup_err srupb_store_mark_count(struct srupb_store *st, size_t *count)
{
	enum srup_err rc = st == NULL ? SRUP_ERR_INVAL : dbi_entries(st, st->marks, count);
	if (rc == SRUP_OK) {
		/* and the journal's marks of channels LMDB does not hold yet */
		*count += st->jr_new;
	}
	return rc;
}

/* --- rotation --- */

enum srup_err srupb_store_key_rotate(struct srupb_store *st, uint64_t id, const char *pem,
                                     size_t pem_len, uint64_t until, enum srupb_rotate_result *res)
{
	MDB_txn *txn = NULL;
	uint8_t kb[8];
	MDB_val k = {sizeof kb, kb};
	MDB_val v;
	struct srupb_keyrec rec;
	uint8_t *old = NULL;
	size_t old_len;
	int mrc;

	if (st == NULL || pem == NULL || pem_len == 0 || res == NULL || !st->has_retiring) {
		return SRUP_ERR_INVAL;
	}
	mrc = mdb_txn_begin(st->env, NULL, 0, &txn);
	if (mrc != 0) {
		return fail(st, "mdb_txn_begin", mrc);
	}
	put_be64(kb, id);
	mrc = mdb_get(txn, st->keys, &k, &v);
	if (mrc == MDB_NOTFOUND) {
		*res = SRUPB_ROTATE_UNKNOWN;
		mdb_txn_abort(txn);
		return SRUP_OK;
	}
	if (mrc != 0) {
		mdb_txn_abort(txn);
		return fail(st, "mdb_get(keys)", mrc);
	}
	if (!keyrec_decode(id, &v, &rec)) {
		mdb_txn_abort(txn);
		snprintf(st->err, sizeof st->err, "corrupt key record");
		return SRUP_ERR_IO;
	}
	if (rec.status != SRUPB_KEY_ACTIVE) {
		*res = SRUPB_ROTATE_REVOKED;
		mdb_txn_abort(txn);
		return SRUP_OK;
	}
	if (rec.pem_len == pem_len && memcmp(rec.pem, pem, pem_len) == 0) {
		*res = SRUPB_ROTATE_SAME;
		mdb_txn_abort(txn);
		return SRUP_OK;
	}
	/* The old PEM lives in the map: copy it, with its retiring header, before rewriting. */
	old_len = 8 + rec.pem_len;
	old = malloc(old_len);
	if (old == NULL) {
		mdb_txn_abort(txn);
		return SRUP_ERR_NOMEM;
	}
	put_le64(old, until);
	memcpy(old + 8, rec.pem, rec.pem_len);
	mrc = keyrec_write(st, txn, id, rec.role, SRUPB_KEY_ACTIVE, (uint64_t)time(NULL), pem, pem_len);
	if (mrc == 0 && until > (uint64_t)time(NULL)) {
		MDB_val ov = {old_len, old};
		mrc = mdb_put(txn, st->retiring, &k, &ov, 0);
	}
	free(old);
	if (mrc != 0) {
		mdb_txn_abort(txn);
		return fail(st, "rotate", mrc);
	}
	mrc = mdb_txn_commit(txn);
	if (mrc != 0) {
		return fail(st, "mdb_txn_commit", mrc);
	}
	*res = SRUPB_ROTATE_DONE;
	return SRUP_OK;
}

enum srup_err srupb_store_retiring_find(struct srupb_store *st, uint64_t id, uint64_t *until,
                                        const char **pem, size_t *pem_len, bool *found)
{
	uint8_t kb[8];
	MDB_val k = {sizeof kb, kb};
	MDB_val v;
	int mrc;

	*found = false;
	if (!st->has_retiring) {
		return SRUP_OK;
	}
	if (!st->rtxn_live && srupb_store_read_begin(st) != SRUP_OK) {
		return SRUP_ERR_IO;
	}
	put_be64(kb, id);
	mrc = mdb_get(st->rtxn, st->retiring, &k, &v);
	if (mrc == MDB_NOTFOUND) {
		return SRUP_OK;
	}
	if (mrc != 0) {
		return fail(st, "mdb_get(retiring)", mrc);
	}
	if (v.mv_size <= 8) {
		snprintf(st->err, sizeof st->err, "corrupt retiring key record");
		return SRUP_ERR_IO;
	}
	*until = get_le64(v.mv_data);
	*pem = (const char *)v.mv_data + 8;
	*pem_len = v.mv_size - 8;
	*found = true;
	return SRUP_OK;
}

/* --- membership administration --- */

enum srup_err srupb_store_member_foreach(
        struct srupb_store *st, uint64_t device, uint64_t from_device, uint64_t from_server,
        int (*fn)(uint64_t device, uint64_t server, uint64_t joined, void *arg), void *arg)
{
	MDB_cursor *cur = NULL;
	uint8_t kb[MEMBER_KEY_LEN];
	MDB_val k = {sizeof kb, kb};
	MDB_val v;
	enum srup_err rc;
	int mrc;

	if (st == NULL || fn == NULL) {
		return SRUP_ERR_INVAL;
	}
	if (device != 0 && from_device < device) {
		from_device = device;
		from_server = 0;
	}
	rc = srupb_store_read_begin(st);
	if (rc != SRUP_OK) {
		return rc;
	}
	mrc = mdb_cursor_open(st->rtxn, st->members, &cur);
	if (mrc != 0) {
		srupb_store_read_end(st);
		return fail(st, "mdb_cursor_open", mrc);
	}
	put_be64(kb, from_device);
	put_be64(kb + 8, from_server);
	mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (mrc == 0) {
		const uint8_t *kp = k.mv_data;
		if (k.mv_size == MEMBER_KEY_LEN) {
			uint64_t d = get_be64(kp);
			if (device != 0 && d != device) {
				break;
			}
			if (fn(d, get_be64(kp + 8), v.mv_size == 8 ? get_le64(v.mv_data) : 0, arg) != 0) {
				break;
			}
		}
		mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	srupb_store_read_end(st);
	if (mrc != 0 && mrc != MDB_NOTFOUND) {
		return fail(st, "mdb_cursor_get", mrc);
	}
	return SRUP_OK;
}

enum srup_err srupb_store_member_remove(struct srupb_store *st, uint64_t device, uint64_t server,
                                        bool *found)
{
	MDB_txn *txn = NULL;
	uint8_t kb[MEMBER_KEY_LEN];
	MDB_val k = {sizeof kb, kb};
	int mrc;

	if (st == NULL || found == NULL) {
		return SRUP_ERR_INVAL;
	}
	*found = false;
	mrc = mdb_txn_begin(st->env, NULL, 0, &txn);
	if (mrc != 0) {
		return fail(st, "mdb_txn_begin", mrc);
	}
	put_be64(kb, device);
	put_be64(kb + 8, server);
	mrc = mdb_del(txn, st->members, &k, NULL);
	if (mrc != 0 && mrc != MDB_NOTFOUND) {
		mdb_txn_abort(txn);
		return fail(st, "mdb_del(members)", mrc);
	}
	*found = mrc == 0;
	mrc = mdb_txn_commit(txn);
	if (mrc != 0) {
		return fail(st, "mdb_txn_commit", mrc);
	}
	return SRUP_OK;
}

/* --- verifier reads --- */

uint64_t srupb_store_version(const struct srupb_store *st)
{
	MDB_envinfo info;
	if (mdb_env_info(st->env, &info) != 0) {
		return 0;
	}
	return (uint64_t)info.me_last_txnid;
}

enum srup_err srupb_store_read_begin(struct srupb_store *st)
{
	int mrc;

	if (st->rtxn_live) {
		return SRUP_OK;
	}
	mrc = mdb_txn_renew(st->rtxn);
	if (mrc != 0) {
		return fail(st, "mdb_txn_renew", mrc);
	}
	st->rtxn_live = true;
	return SRUP_OK;
}

void srupb_store_read_end(struct srupb_store *st)
{
	if (st != NULL && st->rtxn_live) {
		mdb_txn_reset(st->rtxn);
		st->rtxn_live = false;
	}
}

enum srup_err srupb_store_key_find(struct srupb_store *st, uint64_t id, struct srupb_keyrec *rec,
                                   bool *found)
{
	uint8_t kb[8];
	MDB_val k = {sizeof kb, kb};
	MDB_val v;
	int mrc;

	*found = false;
	if (!st->rtxn_live && srupb_store_read_begin(st) != SRUP_OK) {
		return SRUP_ERR_IO;
	}
	put_be64(kb, id);
	mrc = mdb_get(st->rtxn, st->keys, &k, &v);
	if (mrc == MDB_NOTFOUND) {
		return SRUP_OK;
	}
	if (mrc != 0) {
		return fail(st, "mdb_get(keys)", mrc);
	}
	if (!keyrec_decode(id, &v, rec)) {
		snprintf(st->err, sizeof st->err, "corrupt key record");
		return SRUP_ERR_IO;
	}
	*found = true;
	return SRUP_OK;
}

static void mark_key(uint8_t kb[MARK_KEY_LEN], uint64_t sender, const struct srupb_chan *chan)
{
	put_be64(kb, sender);
	kb[8] = chan->kind;
	put_be64(kb + 9, chan->a);
	put_be64(kb + 17, chan->b);
}

static void mark_encode(uint8_t vb[MARK_VAL_LEN], const struct srupb_mark *mark)
{
	put_le64(vb, mark->seq);
	memcpy(vb + 8, mark->digest, 32);
	memcpy(vb + 40, mark->client, 16);
}

static void mark_decode(const MDB_val *v, struct srupb_mark *mark)
{
	const uint8_t *p = v->mv_data;
	mark->seq = get_le64(p);
	memcpy(mark->digest, p + 8, 32);
	memcpy(mark->client, p + 40, 16);
}

enum srup_err srupb_store_mark_foreach(struct srupb_store *st, uint64_t sender,
                                       int (*fn)(const struct srupb_chan *chan,
                                                 const struct srupb_mark *mark, void *arg),
                                       void *arg)
{
	uint8_t kb[MARK_KEY_LEN];
	MDB_val k = {sizeof kb, kb};
	MDB_val v;
	MDB_txn *txn = NULL;
	MDB_cursor *cur = NULL;
	int mrc;
	enum srup_err rc = SRUP_OK;

	memset(kb, 0, sizeof kb);
	put_be64(kb, sender);
	mrc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn);
	if (mrc == 0) {
		mrc = mdb_cursor_open(txn, st->marks, &cur);
	}
	if (mrc == 0) {
		mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	}
	while (mrc == 0) {
		const uint8_t *kp = k.mv_data;
		struct srupb_chan chan;
		struct srupb_mark mark;

		if (k.mv_size != MARK_KEY_LEN || get_be64(kp) != sender) {
			break;
		}
		if (v.mv_size != MARK_VAL_LEN) {
			snprintf(st->err, sizeof st->err, "corrupt mark record");
			rc = SRUP_ERR_IO;
			break;
		}
		chan.kind = kp[8];
		chan.a = get_be64(kp + 9);
		chan.b = get_be64(kp + 17);
		mark_decode(&v, &mark);
		if (fn(&chan, &mark, arg) != 0) {
			break;
		}
		mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	if (rc == SRUP_OK && mrc != 0 && mrc != MDB_NOTFOUND) {
		rc = fail(st, "mdb_cursor_get(marks)", mrc);
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	return rc;
}

enum srup_err srupb_store_mark_find(struct srupb_store *st, uint64_t sender,
                                    const struct srupb_chan *chan, struct srupb_mark *mark,
                                    bool *found)
{
	uint8_t kb[MARK_KEY_LEN];
	MDB_val k = {sizeof kb, kb};
	MDB_val v;
	int mrc;

	*found = false;
	/* A journalled mark is newer than the one in LMDB (it is folded there only if higher). */
	if (st->jr != NULL && srupb_journal_mark_find(st->jr, sender, chan, mark)) {
		*found = true;
		return SRUP_OK;
	}
	if (!st->rtxn_live && srupb_store_read_begin(st) != SRUP_OK) {
		return SRUP_ERR_IO;
	}
	mark_key(kb, sender, chan);
	mrc = mdb_get(st->rtxn, st->marks, &k, &v);
	if (mrc == MDB_NOTFOUND) {
		return SRUP_OK;
	}
	if (mrc != 0) {
		return fail(st, "mdb_get(marks)", mrc);
	}
	if (v.mv_size != MARK_VAL_LEN) {
		snprintf(st->err, sizeof st->err, "corrupt mark record");
		return SRUP_ERR_IO;
	}
	mark_decode(&v, mark);
	*found = true;
	return SRUP_OK;
}

enum srup_err srupb_store_seen_find(struct srupb_store *st, const uint8_t digest[32], bool *found)
{
	*found = st->seen != NULL && srupb_seen_find(st->seen, digest);
	return SRUP_OK;
}

enum srup_err srupb_store_seen_room(struct srupb_store *st, uint64_t sender, size_t window,
                                    bool *room)
{
	if (st == NULL || room == NULL) {
		return SRUP_ERR_INVAL;
	}
	/* without an index (the srup tool) nothing is added, so nothing is refused */
	*room = st->seen == NULL || srupb_seen_room(st->seen, sender, window);
	return SRUP_OK;
}

void srupb_store_seen_stats(const struct srupb_store *st, size_t *used, size_t *capacity)
{
	*used = st->seen != NULL ? srupb_seen_used(st->seen) : 0;
	*capacity = st->seen != NULL ? srupb_seen_capacity(st->seen) : 0;
}

enum srup_err srupb_store_seen_open(struct srupb_store *st, size_t capacity)
{
	char path[4096];

	if (st == NULL || st->readonly || st->seen != NULL) {
		return SRUP_ERR_INVAL;
	}
	if ((size_t)snprintf(path, sizeof path, "%s/seen.idx", st->dir) >= sizeof path) {
		snprintf(st->err, sizeof st->err, "store path too long for the seen index");
		return SRUP_ERR_INVAL;
	}
	enum srup_err rc = srupb_seen_open(path, capacity, &st->seen, st->err, sizeof st->err);
	if (rc == SRUP_OK) {
		rc = store_id_check(st, "seen.idx", srupb_seen_store_id(st->seen), set_seen_id, st->seen);
		if (rc != SRUP_OK) {
			srupb_seen_close(st->seen);
			st->seen = NULL;
		}
	}
	return rc;
}

enum srup_err srupb_store_member_find(struct srupb_store *st, uint64_t device, uint64_t server,
                                      bool *found)
{
	uint8_t kb[MEMBER_KEY_LEN];
	MDB_val k = {sizeof kb, kb};
	MDB_val v;
	int mrc;

	*found = false;
	if (!st->rtxn_live && srupb_store_read_begin(st) != SRUP_OK) {
		return SRUP_ERR_IO;
	}
	put_be64(kb, device);
	put_be64(kb + 8, server);
	mrc = mdb_get(st->rtxn, st->members, &k, &v);
	if (mrc == MDB_NOTFOUND) {
		return SRUP_OK;
	}
	if (mrc != 0) {
		return fail(st, "mdb_get(members)", mrc);
	}
	*found = true;
	return SRUP_OK;
}

/* --- commit --- */

/* --- the marks journal --- */

/* Fold one journalled mark into LMDB if it is newer (a record folded before a crash may come
 * round again). */
static int fold_entry(struct srupb_store *st, MDB_txn *txn, const struct srupb_jentry *e)
{
	uint8_t kb[MARK_KEY_LEN];
	uint8_t vb[MARK_VAL_LEN];
	MDB_val k = {sizeof kb, kb};
	MDB_val v;
	int mrc;

	mark_key(kb, e->sender, &e->chan);
	mrc = mdb_get(txn, st->marks, &k, &v);
	if (mrc == 0 && v.mv_size == MARK_VAL_LEN && get_le64(v.mv_data) >= e->mark.seq) {
		return 0;
	}
	if (mrc != 0 && mrc != MDB_NOTFOUND) {
		return mrc;
	}
	mark_encode(vb, &e->mark);
	v.mv_size = sizeof vb;
	v.mv_data = vb;
	return mdb_put(txn, st->marks, &k, &v, 0);
}

enum srup_err srupb_store_checkpoint(struct srupb_store *st)
{
	MDB_txn *txn = NULL;
	size_t n;
	int mrc;

	if (st == NULL || st->jr == NULL) {
		return SRUP_OK;
	}
	if (st->rtxn_live) {
		return SRUP_ERR_INVAL;
	}
	n = srupb_journal_count(st->jr);
	if (n > 0) {
		mrc = mdb_txn_begin(st->env, NULL, 0, &txn);
		if (mrc != 0) {
			return fail(st, "checkpoint: mdb_txn_begin", mrc);
		}
		for (size_t i = 0; i < n; i++) {
			struct srupb_jentry e;
			srupb_journal_get(st->jr, i, &e);
			mrc = fold_entry(st, txn, &e);
			if (mrc != 0) {
				mdb_txn_abort(txn);
				return fail(st, "checkpoint", mrc);
			}
		}
		/* In LMDB (in the page cache at least, as the journal was) before the journal forgets
		 * the records. */
		mrc = mdb_txn_commit(txn);
		if (mrc != 0) {
			return fail(st, "checkpoint: mdb_txn_commit", mrc);
		}
	}
	/* LMDB holds every channel of the journal now (and counts it), even if the reset fails. */
	st->jr_new = 0;
	return srupb_journal_reset(st->jr, st->err, sizeof st->err);
}

enum srup_err srupb_store_journal_open(struct srupb_store *st, size_t capacity)
{
	char path[4096];
	enum srup_err rc;

	if (st == NULL || st->readonly || st->jr != NULL) {
		return SRUP_ERR_INVAL;
	}
	if ((size_t)snprintf(path, sizeof path, "%s/marks.journal", st->dir) >= sizeof path) {
		snprintf(st->err, sizeof st->err, "store path too long for the marks journal");
		return SRUP_ERR_INVAL;
	}
	rc = srupb_journal_open(path, capacity, &st->jr, st->err, sizeof st->err);
	if (rc != SRUP_OK) {
		return rc;
	}
	/* Marks of another store (or of this one before its data.mdb was lost) must not be
	 * folded in, nor forgotten: refuse before the checkpoint. */
	rc = store_id_check(st, "marks.journal", srupb_journal_store_id(st->jr), set_journal_id,
	                    st->jr);
	if (rc == SRUP_OK) {
		/* What a killed broker left in it goes into LMDB before the first message. */
		rc = srupb_store_checkpoint(st);
	}
	if (rc != SRUP_OK) {
		srupb_journal_close(st->jr);
		st->jr = NULL;
	}
	return rc;
}

size_t srupb_store_journal_count(const struct srupb_store *st)
{
	return st->jr != NULL ? srupb_journal_count(st->jr) : 0;
}

/* The journal path of srupb_store_commit: a mark and no membership change. */
static enum srup_err journal_commit(struct srupb_store *st, struct srupb_commit *c, bool *stale)
{
	struct srupb_mark cur;
	struct srupb_jentry e;
	bool found = false;
	enum srup_err rc;

	if (srupb_journal_full(st->jr)) {
		rc = srupb_store_checkpoint(st);
		if (rc != SRUP_OK) {
			return rc;
		}
	}
	rc = srupb_store_mark_find(st, c->sender, &c->chan, &cur, &found);
	srupb_store_read_end(st);
	if (rc != SRUP_OK) {
		return rc;
	}
	if (found && cur.seq >= c->mark.seq) {
		*stale = true;
		return SRUP_OK;
	}
	e.sender = c->sender;
	e.chan = c->chan;
	e.mark = c->mark;
	srupb_journal_append(st->jr, &e);
	if (!found) {
		st->jr_new++; /* a channel neither LMDB nor the journal had (srupb_store_mark_count) */
	}
	return SRUP_OK;
}

/* The LMDB path of srupb_store_commit: mark, membership and revocation in one transaction. */
static enum srup_err lmdb_commit(struct srupb_store *st, struct srupb_commit *c, bool *stale)
{
	MDB_txn *txn = NULL;
	uint8_t kb[MARK_KEY_LEN];
	uint8_t vb[MARK_VAL_LEN];
	MDB_val k = {sizeof kb, kb};
	MDB_val v;
	int mrc;
	const char *what = "mdb_txn_begin";

	if (st->jr != NULL && srupb_journal_count(st->jr) > 0) {
		/* A membership change commits in LMDB with its mark: the journal goes there first, so
		 * LMDB's marks stay at least as new as the journal's. */
		enum srup_err rc = srupb_store_checkpoint(st);
		if (rc != SRUP_OK) {
			return rc;
		}
	}
	mrc = mdb_txn_begin(st->env, NULL, 0, &txn);
	if (mrc != 0) {
		return fail(st, what, mrc);
	}
	mark_key(kb, c->sender, &c->chan);
	what = "mdb_get(marks)";
	mrc = mdb_get(txn, st->marks, &k, &v);
	if (mrc == 0) {
		if (v.mv_size == MARK_VAL_LEN && get_le64(v.mv_data) >= c->mark.seq) {
			*stale = true;
			mdb_txn_abort(txn);
			return SRUP_OK;
		}
	} else if (mrc != MDB_NOTFOUND) {
		goto abort;
	}
	mark_encode(vb, &c->mark);
	v.mv_size = sizeof vb;
	v.mv_data = vb;
	what = "mdb_put(marks)";
	mrc = mdb_put(txn, st->marks, &k, &v, 0);
	if (mrc != 0) {
		goto abort;
	}
	what = "membership";
	if (c->member_op == SRUPB_MEMBER_JOIN || c->member_op == SRUPB_MEMBER_LEAVE) {
		uint8_t mk[MEMBER_KEY_LEN];
		uint8_t mv[8];
		MDB_val k2 = {sizeof mk, mk};
		MDB_val v2 = {sizeof mv, mv};
		put_be64(mk, c->member_device);
		put_be64(mk + 8, c->member_server);
		if (c->member_op == SRUPB_MEMBER_JOIN) {
			put_le64(mv, (uint64_t)time(NULL));
			mrc = mdb_put(txn, st->members, &k2, &v2, 0);
		} else {
			mrc = mdb_del(txn, st->members, &k2, NULL);
			if (mrc == 0) {
				c->removed[c->n_removed++] = c->member_server;
			} else if (mrc == MDB_NOTFOUND) {
				mrc = 0;
			}
		}
	} else if (c->member_op == SRUPB_MEMBER_LEAVE_ALL) {
		mrc = members_drop_device(st, txn, c->member_device, c);
	}
	if (mrc != 0) {
		goto abort;
	}
	if (c->revoke) {
		bool found = false;
		what = "revoke";
		mrc = key_revoke_txn(st, txn, c->member_device, &found);
		if (mrc != 0) {
			goto abort;
		}
	}
	mrc = mdb_txn_commit(txn);
	if (mrc != 0) {
		return fail(st, "mdb_txn_commit", mrc);
	}
	return SRUP_OK;
abort:
	mdb_txn_abort(txn);
	return fail(st, what, mrc);
}

enum srup_err srupb_store_commit(struct srupb_store *st, struct srupb_commit *c, bool *stale)
{
	enum srup_err rc;

	*stale = false;
	c->seen_full = false;
	if (st->rtxn_live) {
		return SRUP_ERR_INVAL;
	}
	c->n_removed = 0;
	/* Room first: a message whose entry cannot be indexed must not move any state (it is
	 * refused, and the index must then not have to forget anything to take it). */
	if (st->seen != NULL && !srupb_seen_room(st->seen, c->sender, c->seen_max)) {
		c->seen_full = true;
		return SRUP_OK;
	}
	if (journal_active(st) && c->member_op == SRUPB_MEMBER_NONE && !c->revoke) {
		rc = journal_commit(st, c, stale);
	} else {
		rc = lmdb_commit(st, c, stale);
	}
	/* Only once the mark is committed: a failed commit drops the message, and its bytes must not
	 * then look like a replay when the client sends them again. The room was checked above and
	 * nothing else adds entries, so this cannot fail. */
	if (rc == SRUP_OK && !*stale && st->seen != NULL && c->seen_max > 0) {
		(void)srupb_seen_add(st->seen, c->sender, c->seen_max, c->mark.digest);
	}
	return rc;
}
