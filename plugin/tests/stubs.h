/* SPDX-License-Identifier: MIT
 * stubs.h - test doubles for the Mosquitto broker functions the plugin calls (unit tests only).
 * A client is a plain struct; registered callbacks and kicks are recorded for the tests. */
#ifndef SRUPB_TEST_STUBS_H
#define SRUPB_TEST_STUBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mosquitto {
	const char *id;
	const char *username;
	void *cert;   /* X509 * the client presented, or NULL */
	bool resumed; /* connected with clean start off (a resumed session) */
};

#define STUB_EVENTS 16

/* Callback registered per event (NULL if none), with its userdata. */
extern int (*stub_cb[STUB_EVENTS])(int, void *, void *);
extern void *stub_userdata[STUB_EVENTS];
/* Number of kicks requested and the last name kicked. */
extern int stub_kicks;
extern char stub_last_kick[256];
/* Number of broker_publish_copy calls and the last topic/payload. */
extern int stub_publishes;
extern char stub_last_topic[256];
extern char stub_last_payload[512];
/* Correlation data attached to the last broker_publish_copy (its properties are freed). */
extern unsigned char stub_last_corr[64];
extern size_t stub_last_corr_len;
/* Log lines captured (last one) and count of lines at warning level. */
extern char stub_last_log[1024];
extern int stub_warnings;
extern int stub_errors;
/* When > 0, mosquitto_callback_register fails for the n-th call (1-based). */
extern int stub_fail_register_at;

void stub_reset(void);
/* A certificate (X509 *, unsigned: the plugin reads only the subject) whose subject is CN=cn,
 * or NULL on failure; free with X509_free. */
void *stub_cn_cert(const char *cn);
/* Append a string (s) or binary (b, len) property to a stub property list. */
typedef struct mqtt5__property mosquitto_property;
int stub_add_property(mosquitto_property **list, int id, const char *s, const void *b,
                      uint16_t len);

/* ---- additions for tests/fuzz/fuzz_pipeline.c (keep this block separate) ---- */

/* When set, each mosquitto_kick_client_by_* call also calls it (after recording the kick), as
 * the broker disconnects the matching clients there and fires their DISCONNECT events. Not
 * touched by stub_reset. */
extern void (*stub_kick_hook)(const char *name, bool by_username);
/* When true, ERR lines are counted but not printed (a fuzzer logs thousands). */
extern bool stub_quiet;

#endif
