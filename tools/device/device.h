/* SPDX-License-Identifier: MIT
 * device.h - private header of srup-device: its state and the functions its files share.
 * device.c: main, control commands, dispatch, joins; update.c: INITIATE/ACTIVATE;
 * beacon.c: the local proof channel of the observed join (both ends). */
#ifndef SRUP_DEVICE_H
#define SRUP_DEVICE_H

#include <time.h>

#include "srupd.h"

#define OBS_MAX   16
#define VALUE_MAX 64

enum join_kind { JOIN_NONE = 0, JOIN_SIMPLE, JOIN_HM, JOIN_OBS };

struct obs_entry {
	int used;
	uint64_t joining;
	int have_req;
	int have_proof;
	char req_value[VALUE_MAX + 1];
	char proof_value[VALUE_MAX + 1];
	char token[SRUP_TOKEN_LEN + 1];
	time_t since;     /* when the request (or a lone proof) arrived */
	int wrong_proofs; /* proofs that did not match the request */
};

struct dev_app {
	/* update */
	char update_token[SRUP_TOKEN_LEN + 1];
	char update_file[SRUPD_PATH_MAX + 64];
	int update_ready;
	int updates_applied;
	/* join in progress (one at a time) */
	enum join_kind join_kind;
	char join_token[SRUP_TOKEN_LEN + 1];
	int join_done;
	unsigned join_status;
	char join_value[VALUE_MAX + 1];
	char beacon_socket[SRUPD_PATH_MAX];
	/* leaving */
	char leave_token[SRUP_TOKEN_LEN + 1];
	int leave_acked;
	/* counters for status */
	unsigned actions;
	unsigned data_in;
	/* beacon */
	struct obs_entry obs[OBS_MAX];
};

/* The daemon's state; guarded by the srupd lock (d->lock). */
extern struct dev_app devst;

/* ---- register.c ---- */
/* `srup-device register ...` (argv[0] is "register"); the exit code. */
int dev_register_main(int argc, char **argv);

/* ---- device.c ---- */
/* Send RESPONSE(status) / DATA(data_id, data) to our server with token tok (lock held). */
int dev_send_response(struct srupd *d, const char *tok, unsigned status);
int dev_send_data(struct srupd *d, const char *tok, const char *data_id, const void *data,
                  size_t len);
/* A wire token as a C string (truncated to SRUP_TOKEN_LEN). */
void dev_token_copy(char out[SRUP_TOKEN_LEN + 1], const struct srup_bytes *t);
/* A var field carrying text (maybe with pySRUP's trailing NUL) as a C string; -1 if it holds an
 * embedded NUL or does not fit in cap. */
int dev_field_text(const struct srup_bytes *b, char *out, size_t cap);
/* Decrypt an encrypted field with our key into a printable value of at most VALUE_MAX. */
int dev_open_value(struct srupd *d, const struct srup_bytes *enc, char out[VALUE_MAX + 1]);

/* ---- update.c ---- */
/* INITIATE: fetch url in a worker thread, check the digest, answer RESPONSE (lock held). */
void dev_update_initiate(struct srupd *d, const struct srup_msg *m);
/* ACTIVATE: install the verified download of the same token, answer RESPONSE (lock held). */
void dev_update_activate(struct srupd *d, const struct srup_msg *m);

/* ---- beacon.c ---- */
/* Joining device: show the decrypted value to the beacon over its unix socket (lock held). */
void dev_beacon_prove(struct srupd *d);
/* Observer: OBSERVE_REQ from the server (lock held). */
void dev_beacon_observe_req(struct srupd *d, const struct srup_msg *m);
/* Observer: the thread serving the local proof socket (arg is the struct srupd). */
void *dev_beacon_thread(void *arg);

#endif
