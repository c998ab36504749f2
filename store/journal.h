/* SPDX-License-Identifier: MIT
 * journal.h - the replay-mark journal: a fixed-size file of accepted-message marks mapped
 * shared into the broker, plus an in-memory index of what it holds. Private to store.c.
 *
 * Why: with durability os or map, a mark only has to be in the OS page cache before delivery
 * (it must survive kill -9, not a power cut). Writing 128 bytes into a shared mapping gives
 * exactly that for a fraction of an LMDB write transaction; the store folds the journal into
 * LMDB in one transaction when it fills (a checkpoint), and again at the next open after a crash.
 *
 * File layout (host byte order; the file never leaves the machine that wrote it):
 *   header, 4096 bytes: magic(8) version(4) record size(4) capacity(8) epoch(8), zero up to
 *   offset 64, store id(16) at offset 64 (all zero: not yet bound to a store), rest zero
 *   records, capacity x 128 bytes, see struct jrec in journal.c
 * A record is valid when its epoch equals the header's, its index equals its slot and its check
 * word matches; the check word is stored last. Records are written in slot order from 0, so the
 * valid records are a prefix. A checkpoint starts a new epoch, which invalidates every record at
 * once without touching them. */
#ifndef SRUPB_JOURNAL_H
#define SRUPB_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <srup/err.h>

#include "srupb_store.h"

/* One accepted message's mark as the journal keeps it. */
struct srupb_jentry {
	uint64_t sender;
	struct srupb_chan chan;
	struct srupb_mark mark;
};

struct srupb_journal;

/* Open (creating if missing) the journal file at path with room for capacity records, take an
 * exclusive lock on it (a second broker on the same store fails here) and read the valid records
 * an earlier run left (srupb_journal_count). A file written with another capacity is read with
 * its own and resized by the next srupb_journal_reset. On failure *out is NULL and err holds one
 * line. Returns OK, INVAL (not a journal, or locked), IO or NOMEM. */
enum srup_err srupb_journal_open(const char *path, size_t capacity, struct srupb_journal **out,
                                 char *err, size_t err_cap);
/* Unmap and close; accepts NULL. Records stay in the file for the next open. */
void srupb_journal_close(struct srupb_journal *j);

/* Valid records held, and the number there is room for. */
size_t srupb_journal_count(const struct srupb_journal *j);
bool srupb_journal_full(const struct srupb_journal *j);
/* Record i (< count) into *e. */
void srupb_journal_get(const struct srupb_journal *j, size_t i, struct srupb_jentry *e);

/* Append *e (the journal must not be full) and index it. When this returns the record is in
 * the shared mapping, so it survives the death of the process. Cannot fail. */
void srupb_journal_append(struct srupb_journal *j, const struct srupb_jentry *e);

/* The newest mark of (sender, chan) held in the journal; false if none. */
bool srupb_journal_mark_find(const struct srupb_journal *j, uint64_t sender,
                             const struct srupb_chan *chan, struct srupb_mark *mark);

/* Start a new epoch: every record becomes invalid and the index empty. Call only after the
 * records are safely elsewhere (the LMDB checkpoint committed). Returns OK or IO (resize). */
enum srup_err srupb_journal_reset(struct srupb_journal *j, char *err, size_t err_cap);
/* msync the mapping to disk and wait (at close). */
void srupb_journal_sync(struct srupb_journal *j);
/* The file's descriptor (the store starts its writeback). */
int srupb_journal_fd(const struct srupb_journal *j);
/* The store id in the file's header (16 bytes, all zero if unbound), and binding it (written
 * into the shared mapping). */
const uint8_t *srupb_journal_store_id(const struct srupb_journal *j);
void srupb_journal_set_store_id(struct srupb_journal *j, const uint8_t id[16]);

#endif
