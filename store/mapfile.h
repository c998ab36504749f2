/* SPDX-License-Identifier: MIT
 * mapfile.h - a store file mapped shared into the broker and locked against a second broker: the
 * part the marks journal (journal.c) and the seen index (seen.c) have in common. Private to the
 * store library. */
#ifndef SRUPB_MAPFILE_H
#define SRUPB_MAPFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <srup/err.h>

/* Every store file's header keeps the store id (16 bytes, zero: unbound) at this offset, so that
 * the store can refuse files that belong to another store, or a store that lost its id. */
#define SRUPB_STORE_ID_LEN   16
#define SRUPB_MAPFILE_ID_OFF 64

struct srupb_mapfile {
	char *path;
	const char *what; /* "marks journal", "seen index": for messages (static) */
	int fd;           /* -1 when closed */
	uint8_t *map;     /* NULL when not mapped */
	size_t len;
	uint8_t id[SRUPB_STORE_ID_LEN]; /* the header's store id, as read at open or last set */
};

/* Open path (created with mode 0600 if missing) and take an exclusive lock on it (INVAL with
 * "in use by another broker on the same store" if another process holds it). *size is its size
 * and hdr its first hdr_size bytes (zeroed if the file is shorter); f->id is the store id in the
 * header (hdr_size must cover it). On failure f is closed and
 * err holds one line. Returns OK, INVAL, IO or NOMEM. */
enum srup_err srupb_mapfile_open(struct srupb_mapfile *f, const char *path, const char *what,
                                 void *hdr, size_t hdr_size, size_t *size, char *err,
                                 size_t err_cap);
/* Empty the file, size it to len (zeros) and write hdr at offset 0 with one pwrite: a process
 * killed here leaves either no header or a whole one. Unmaps f first. OK or IO (errno set). */
enum srup_err srupb_mapfile_create(struct srupb_mapfile *f, size_t len, const void *hdr,
                                   size_t hdr_size);
/* Map the first len bytes shared, read-write. OK or IO (errno set). */
enum srup_err srupb_mapfile_map(struct srupb_mapfile *f, size_t len);
/* Write id into the mapped header at SRUPB_MAPFILE_ID_OFF and into f->id. */
void srupb_mapfile_set_id(struct srupb_mapfile *f, const uint8_t id[SRUPB_STORE_ID_LEN]);
/* msync the mapping and wait. */
void srupb_mapfile_sync(struct srupb_mapfile *f);
/* Unmap, close (dropping the lock) and free; accepts a closed or zeroed-then-failed f. */
void srupb_mapfile_close(struct srupb_mapfile *f);

/* A 64-bit mixing function (MurmurHash3's finaliser constants) for check words and positions. */
uint64_t srupb_mix64(uint64_t x);
/* Write one formatted line to err (if cap > 0) and return rc. */
enum srup_err srupb_errf(char *err, size_t cap, enum srup_err rc, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

#endif
