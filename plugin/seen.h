/* SPDX-License-Identifier: MIT
 * seen.h - the seen index: digests of the last N accepted payloads, kept in a ring file mapped
 * shared into the broker, with an in-memory hash index over it. Private to the store (store.c);
 * see srupb_store_seen_open.
 *
 * Why not LMDB: every accepted message adds a random 32-byte key, and a B-tree insert plus the
 * FIFO that bounds it cost about 3.7 us per message here, most of the store's per-message cost,
 * and dirtied a random page of the file each time. A ring is written in order (a page fills
 * every 128 messages) and an entry is in the OS page cache as soon as it is written, so it
 * survives kill -9 exactly as an LMDB commit without fsync does. The hash index is rebuilt from
 * the ring at open (about 5 ms for 100,000 entries).
 *
 * File layout (host byte order; the file never leaves the machine that wrote it):
 *   header, 4096 bytes: magic(8) version(4) record size(4) capacity(8) salt(8), rest zero
 *   capacity records of 32 bytes: digest(16) qpos(8) check(8)
 * Entry n (n = 1, 2, ...) has qpos n and lives in record (n - 1) mod capacity. A record counts
 * only if its check word (over digest, qpos and the salt, written last) matches and its qpos
 * belongs to its slot, so a record torn by kill -9 reads as empty. */
#ifndef SRUPB_SEEN_H
#define SRUPB_SEEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <srup/err.h>

struct srupb_seen;

/* Open (creating if missing) the ring file at path with room for window entries, lock it
 * exclusively (a second broker on the same store fails: INVAL) and index its entries. A file
 * of another capacity is rewritten at the new one, keeping its newest entries. On failure *out
 * is NULL and err holds one line. Returns OK, INVAL, IO or NOMEM. */
enum srup_err srupb_seen_open(const char *path, size_t window, struct srupb_seen **out, char *err,
                              size_t err_cap);
/* Unmap and close; accepts NULL. */
void srupb_seen_close(struct srupb_seen *s);
/* The largest window this file serves (its capacity). */
size_t srupb_seen_capacity(const struct srupb_seen *s);

/* Is digest among the last window entries added? */
bool srupb_seen_find(const struct srupb_seen *s, size_t window, const uint8_t digest[32]);
/* Add digest as the newest entry (the oldest falls out of the ring). Cannot fail. */
void srupb_seen_add(struct srupb_seen *s, const uint8_t digest[32]);
/* msync the mapping to disk and wait (at close). */
void srupb_seen_sync(struct srupb_seen *s);
/* The file's descriptor (the store starts its writeback). */
int srupb_seen_fd(const struct srupb_seen *s);

#endif
