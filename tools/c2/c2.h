/* SPDX-License-Identifier: MIT
 * c2.h - private header of srup-c2: its state and the functions its files share.
 * c2.c: main, control commands, device-channel exchanges; joins.c: the three join flows. */
#ifndef SRUP_C2_H
#define SRUP_C2_H

#include "srupd.h"

#include <time.h>

#define XCHG_MAX  64
#define JOINS_MAX 32
#define RECV_MAX  64
#define VALUE_LEN 32

enum xchg_kind { X_UPDATE = 1, X_ACTION, X_DATA, X_ID };

/* One exchange started by a control command, tied to its replies by the token (and an ID
 * response also by its sender and data id: pySRUP answers ID_REQUEST under a fresh token).
 * The command is done once the broker acknowledged the message; a reply is optional (pySRUP
 * sends none for ACTION, DATA or ACTIVATE). A reply that comes after the command returned is
 * reported then (log and `srup-c2 replies`); the exchange is kept until it expires. */
struct xchg {
	int used;
	enum xchg_kind kind;
	uint64_t dev;
	char token[SRUP_TOKEN_LEN + 1];
	int done;
	int http_parts;   /* UPDATE_FAIL_HTTP_ERROR: DATA messages still expected */
	int activated;    /* update: UPDATE_SUCCESS came and ACTIVATE was published */
	int activate_mid; /* update: the ACTIVATE's MQTT message id */
	int detached;     /* the command has returned; a reply now is a late one */
	time_t expires;   /* detached: forgotten after this */
	char result[1024];
};

/* How long an exchange whose command returned waits for a late reply. */
#define XCHG_LATE_S 600
#define LATE_MAX    32

enum join_kind { J_HM = 1, J_OBS };

/* A join waiting for a person (HM) or for the beacon's report (OBS). */
struct pjoin {
	int used;
	enum join_kind kind;
	uint64_t dev;
	uint64_t observer;
	char value[VALUE_LEN + 1];
	char dev_token[SRUP_TOKEN_LEN + 1]; /* HM_JOIN_RESP / OBS_JOIN_RESP token: the outcome's */
	char obs_token[SRUP_TOKEN_LEN + 1]; /* OBSERVE_REQ token: the beacon's RESPONSE */
	unsigned outcome;                   /* 0 while pending */
	time_t since;                       /* when the device asked */
	int resp_mid;                       /* MQTT id of the HM_JOIN_RESP / OBS_JOIN_RESP */
};

/* DATA received from devices outside any exchange, for `wait-data`. */
struct rdata {
	int used;
	uint64_t dev;
	char data_id[64];
	char text[512];
};

/* What the console shows of a device: its last message and update state. */
#define DEVINFO_MAX 256
struct devinfo {
	uint64_t dev;
	char last_type[24];
	time_t last_time;
	char last_data[200]; /* DATA: "id = text", printable characters only */
	char update[80];     /* last update outcome */
};

/* The broker's $SYS/broker/srup counters, and samples of the drops for the console's chart. */
#define COUNTERS_MAX 96
#define SAMPLES_MAX  60
struct counter {
	char name[64];
	long long value;
};
struct sample {
	time_t t;
	long long dropped[COUNTERS_MAX]; /* by counter index; -1 when not a drop counter */
};

struct c2_app {
	struct xchg x[XCHG_MAX];
	struct pjoin j[JOINS_MAX];
	struct rdata r[RECV_MAX];
	size_t r_next;
	char late[LATE_MAX][1200]; /* late replies, newest last, for `replies` */
	struct devinfo devs[DEVINFO_MAX];
	struct counter counters[COUNTERS_MAX];
	size_t n_counters;
	int sys_seen; /* a $SYS counter arrived (srup-c2 is an admin of the broker) */
	size_t late_next;
	int events; /* bumped on every change a waiter may look at */
};

/* The daemon's state; guarded by the srupd lock (d->lock). */
extern struct c2_app c2st;

/* ---- c2.c (all with the lock held) ---- */
void c2_dev_topic(uint64_t dev, char *out, size_t cap);
void c2_set_token(struct srup_msg *m, const char *tok);
void c2_token_copy(char out[SRUP_TOKEN_LEN + 1], const struct srup_bytes *t);
/* Send m / RESPONSE(status) to device dev on SRUP/<dev>. 0 or -1. */
int c2_send_dev(struct srupd *d, uint64_t dev, struct srup_msg *m);
int c2_send_response(struct srupd *d, uint64_t dev, const char *tok, unsigned status);
/* As c2_send_dev; *mid gets the MQTT message id for c2_wait_ack. */
int c2_send_dev_mid(struct srupd *d, uint64_t dev, struct srup_msg *m, int *mid);
/* Wait for the broker's answer to publish mid; on none or a refusal, reply "ERR <what> ..."
 * to fd and return non-zero. 0 when the broker took it. */
int c2_wait_ack(struct srupd *d, int fd, int mid, const char *what, const char *tok);
/* The state record of dev if it is a member, else NULL. */
struct srupd_peer *c2_member(struct srupd *d, uint64_t dev);
/* Parse a device id from a command argument (nonzero). 0 or -1. */
int c2_parse_dev(const char *s, uint64_t *dev);
/* Record membership durably and (un)subscribe SRUP/<dev>. */
void c2_set_member(struct srupd *d, uint64_t dev, int on);

/* The console's record of dev (made if needed; NULL if the table is full). Lock held. */
struct devinfo *c2_devinfo(uint64_t dev);

/* ---- console.c ---- */
/* Start the HTTPS operator console if console_port is configured. 0 or -1 (logged). */
int c2_console_start(struct srupd *d);
void c2_console_stop(void);
/* `srup-c2 --config F operator add NAME`: password from standard input. Exit code. */
int c2_operator_add(const char *file, const char *name);
/* A $SYS/broker/srup/... counter (lock held). */
void c2_on_sys(struct srupd *d, const char *topic, const void *payload, size_t len);

/* ---- joins.c ---- */
/* JOIN_REQ / HM_JOIN_REQ / OBS_JOIN_REQ on our join topic, sender already checked (lock held). */
void c2_join_req(struct srupd *d, const struct srup_msg *m);
void c2_hm_join_req(struct srupd *d, const struct srup_msg *m);
void c2_obs_join_req(struct srupd *d, const struct srup_msg *m);
/* A RESPONSE that may be an observer's verdict; 1 if it was one (lock held). */
int c2_observer_response(struct srupd *d, const struct srup_msg *m);
/* Control commands approve/reject DEVICE and pending (take the lock themselves). */
void c2_ctl_decide(struct srupd *d, int fd, int argc, char **argv, int approve);
void c2_ctl_pending(struct srupd *d, int fd);
/* The broker's answer to publish mid: a refused join response ends that join (lock held). */
void c2_join_ack(struct srupd *d, int mid, int reason);

#endif
