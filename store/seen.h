/* SPDX-License-Identifier: MIT
 * seen.h - the seen index: digests of accepted payloads that could be replayed on another
 * channel, each with its sender, in a fixed-capacity file mapped shared into the broker, with an
 * in-memory hash index by digest and a FIFO per sender. Private to the store (store.c); see
 * srupb_store_seen_open.
 *
 * Why per sender: with one global ring, a registered device signing many messages pushes every
 * other sender's entries out, and a server's command accepted for one device can then be
 * replayed on another device's channel. Here each sender has its own window W (per commit, from
 * its role): a new entry evicts only the same sender's oldest ones. The file has a fixed number
 * of records; when none is free and the sender holds fewer than W entries, the entry cannot be
 * added, and the caller must refuse the message (fail closed).
 *
 * Why not LMDB: a B-tree insert of a random 32-byte key plus a FIFO bound cost about 3.7 us per
 * message here. A record written into a shared mapping is in the OS page cache as soon as it is
 * written, so it survives kill -9 exactly as an LMDB commit without fsync does.
 *
 * File layout (host byte order; the file never leaves the machine that wrote it):
 *   header, 4096 bytes: magic(8) version(4) record size(4) capacity(8) salt(8), zero up to
 *   offset 64, store id(16) at offset 64 (all zero: not yet bound to a store), rest zero
 *   capacity records of 40 bytes: sender(8) digest(16) ins(8) check(8)
 * ins is a global insertion counter (1, 2, ...; 0 = free record): sorting the valid records by
 * it rebuilds every sender's FIFO at open. A record counts only if its check word (over sender,
 * digest, ins and the salt, written last) matches, so a record torn by kill -9 reads as free. */
#ifndef SRUPB_SEEN_H
#define SRUPB_SEEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <srup/err.h>

struct srupb_seen;

/* The largest capacity a seen index file may have (records). */
#define SRUPB_SEEN_CAP_MAX ((size_t)1 << 28)

/* Open (creating if missing) the index file at path with room for capacity records (0 to
 * SRUPB_SEEN_CAP_MAX), lock it exclusively (a second broker on the same store fails: INVAL) and
 * index its entries. A file of another capacity is rewritten at the new one, keeping the newest
 * entries of every sender (when they do not all fit, the senders holding the most lose their
 * oldest first). On failure *out is NULL and err holds one line. Returns OK, INVAL, IO or NOMEM. */
enum srup_err srupb_seen_open(const char *path, size_t capacity, struct srupb_seen **out, char *err,
                              size_t err_cap);
/* Unmap and close; accepts NULL. */
void srupb_seen_close(struct srupb_seen *s);
/* Records the file holds (used or not), and records in use. */
size_t srupb_seen_capacity(const struct srupb_seen *s);
size_t srupb_seen_used(const struct srupb_seen *s);
/* Entries sender holds now. */
size_t srupb_seen_count(const struct srupb_seen *s, uint64_t sender);

/* Is digest indexed (by any sender)? */
bool srupb_seen_find(const struct srupb_seen *s, const uint8_t digest[32]);
/* Could srupb_seen_add(s, sender, window, ...) add an entry now? True when window is 0 (nothing
 * to add), when sender already holds window entries or more (it evicts its own), or when a
 * record is free. */
bool srupb_seen_room(const struct srupb_seen *s, uint64_t sender, size_t window);
/* Add digest as sender's newest entry, first evicting sender's oldest entries while it holds
 * window or more (never another sender's). window 0 adds nothing and returns true. Returns false
 * and changes nothing when there is no room (srupb_seen_room). */
bool srupb_seen_add(struct srupb_seen *s, uint64_t sender, size_t window, const uint8_t digest[32]);
/* msync the mapping to disk and wait (at close). */
void srupb_seen_sync(struct srupb_seen *s);
/* The file's descriptor (the store starts its writeback). */
int srupb_seen_fd(const struct srupb_seen *s);

/* The store id in the file's header (16 bytes, all zero if unbound), and binding it (written
 * into the shared mapping). */
const uint8_t *srupb_seen_store_id(const struct srupb_seen *s);
void srupb_seen_set_store_id(struct srupb_seen *s, const uint8_t id[16]);

#endif
