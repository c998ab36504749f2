/* SPDX-License-Identifier: MIT
 * mapfile.c - a locked store file mapped shared into the broker (see mapfile.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mapfile.h"

uint64_t srupb_mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

enum srup_err srupb_errf(char *err, size_t cap, enum srup_err rc, const char *fmt, ...)
{
	if (err != NULL && cap > 0) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, cap, fmt, ap);
		va_end(ap);
	}
	return rc;
}

enum srup_err srupb_mapfile_open(struct srupb_mapfile *f, const char *path, const char *what,
                                 void *hdr, size_t hdr_size, size_t *size, char *err,
                                 size_t err_cap)
{
	struct stat sb;
	enum srup_err rc;

	memset(f, 0, sizeof *f);
	f->fd = -1;
	f->what = what;
	memset(hdr, 0, hdr_size);
	*size = 0;
	f->path = strdup(path);
	if (f->path == NULL) {
		return SRUP_ERR_NOMEM;
	}
	f->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (f->fd < 0) {
		rc = srupb_errf(err, err_cap, SRUP_ERR_IO, "cannot open %s %s: %s", what, path,
		                strerror(errno));
		goto fail;
	}
	if (flock(f->fd, LOCK_EX | LOCK_NB) != 0) {
		rc = srupb_errf(err, err_cap, SRUP_ERR_INVAL, "%s %s: %s", what, path,
		                errno == EWOULDBLOCK ? "in use by another broker on the same store"
		                                     : strerror(errno));
		goto fail;
	}
	if (fstat(f->fd, &sb) != 0 ||
	    ((size_t)sb.st_size >= hdr_size && pread(f->fd, hdr, hdr_size, 0) != (ssize_t)hdr_size)) {
		rc = srupb_errf(err, err_cap, SRUP_ERR_IO, "cannot read %s %s: %s", what, path,
		                strerror(errno));
		goto fail;
	}
	*size = (size_t)sb.st_size;
	if (hdr_size >= SRUPB_MAPFILE_ID_OFF + SRUPB_STORE_ID_LEN) {
		memcpy(f->id, (const uint8_t *)hdr + SRUPB_MAPFILE_ID_OFF, SRUPB_STORE_ID_LEN);
	}
	return SRUP_OK;
fail:
	srupb_mapfile_close(f);
	return rc;
}

enum srup_err srupb_mapfile_create(struct srupb_mapfile *f, size_t len, const void *hdr,
                                   size_t hdr_size)
{
	if (f->map != NULL) {
		munmap(f->map, f->len);
		f->map = NULL;
	}
	if (ftruncate(f->fd, 0) != 0 || ftruncate(f->fd, (off_t)len) != 0 ||
	    pwrite(f->fd, hdr, hdr_size, 0) != (ssize_t)hdr_size) {
		return SRUP_ERR_IO;
	}
	return SRUP_OK;
}

enum srup_err srupb_mapfile_map(struct srupb_mapfile *f, size_t len)
{
	void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, f->fd, 0);
	if (m == MAP_FAILED) {
		return SRUP_ERR_IO;
	}
	f->map = m;
	f->len = len;
	return SRUP_OK;
}

void srupb_mapfile_set_id(struct srupb_mapfile *f, const uint8_t id[SRUPB_STORE_ID_LEN])
{
	memcpy(f->id, id, SRUPB_STORE_ID_LEN);
	if (f->map != NULL && f->len >= SRUPB_MAPFILE_ID_OFF + SRUPB_STORE_ID_LEN) {
		memcpy(f->map + SRUPB_MAPFILE_ID_OFF, id, SRUPB_STORE_ID_LEN);
	}
}

void srupb_mapfile_sync(struct srupb_mapfile *f)
{
	if (f->map != NULL) {
		(void)msync(f->map, f->len, MS_SYNC);
	}
}

void srupb_mapfile_close(struct srupb_mapfile *f)
{
	if (f->map != NULL) {
		munmap(f->map, f->len);
		f->map = NULL;
	}
	if (f->fd >= 0) {
		close(f->fd); /* drops the lock */
		f->fd = -1;
	}
	free(f->path);
	f->path = NULL;
}
