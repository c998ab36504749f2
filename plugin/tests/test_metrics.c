/* SPDX-License-Identifier: MIT
 * test_metrics.c - unit tests of metrics.c's gauges (keys, marks, pending joins, seen index)
 * through the TICK callback with the broker stubbed: what is read, that only changed values are
 * published, at most once a second; and the cost of a TICK (printed, not asserted). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#include "srupb.h"
#include "stubs.h"
#include "testutil.h"

static char dir[64];
static char store_dir[128];
static char audit_path[128];
static void *ud;
static struct srupb_ctx *ctx;
static char *key_pem;
static size_t key_pem_len;

static void start(void)
{
	struct srupb_store *st = NULL;
	char err[256];
	struct srup_key *k = NULL;

	stub_reset();
	snprintf(dir, sizeof dir, "/tmp/srupb-met-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(store_dir, sizeof store_dir, "%s/state", dir);
	snprintf(audit_path, sizeof audit_path, "%s/audit.jsonl", dir);
	ck_assert_int_eq(srup_key_load_file(tu_vector_path("keys/device_private.pem"), SRUP_KEY_PRIVATE,
	                                    &k, NULL),
	                 SRUP_OK);
	ck_assert_int_eq(srup_key_public_pem(k, &key_pem, &key_pem_len), SRUP_OK);
	srup_key_free(k);
	ck_assert_int_eq(srupb_store_open(store_dir, false, SRUPB_SYNC_OS, &st, err, sizeof err),
	                 SRUP_OK);
	ck_assert_int_eq(
	        srupb_store_key_put(st, 0x5f5f5f5f5f5f5f5fu, SRUPB_ROLE_DEVICE, key_pem, key_pem_len),
	        SRUP_OK);
	srupb_store_close(st);
	struct mosquitto_opt opts[2] = {{(char *)"store", store_dir},
	                                {(char *)"audit_log", audit_path}};
	ud = NULL;
	ck_assert_int_eq(mosquitto_plugin_init(NULL, &ud, opts, 2), MOSQ_ERR_SUCCESS);
	ctx = ud;
	ck_assert(stub_cb[MOSQ_EVT_TICK] != NULL);
}

static void stop(void)
{
	char cmd[160];
	ck_assert_int_eq(mosquitto_plugin_cleanup(ud, NULL, 0), MOSQ_ERR_SUCCESS);
	ud = NULL;
	ctx = NULL;
	free(key_pem);
	key_pem = NULL;
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* One TICK as the broker sends it; returns the publishes it made. */
static int tick(void)
{
	int before = stub_publishes;
	ck_assert_int_eq(stub_cb[MOSQ_EVT_TICK](MOSQ_EVT_TICK, NULL, stub_userdata[MOSQ_EVT_TICK]),
	                 MOSQ_ERR_SUCCESS);
	return stub_publishes - before;
}

/* The next TICK is a second after the last gauge read. */
static int tick_next_second(void)
{
	ctx->last_second = srupb_now() - 1.5;
	return tick();
}

START_TEST(test_gauges_read_and_published_when_changed)
{
	struct srupb_commit c;
	bool stale = true;
	uint8_t tok[32];

	start();
	ck_assert_int_gt(tick_next_second(), 5); /* the first: every counter and gauge */
	ck_assert_uint_eq(ctx->metrics.gauges.keys, 1);
	ck_assert_uint_eq(ctx->metrics.gauges.marks, 0);
	ck_assert_uint_eq(ctx->metrics.gauges.joins_pending, 0);
	ck_assert_uint_eq(ctx->metrics.gauges.seen_used, 0);
	ck_assert_uint_eq(ctx->metrics.gauges.seen_capacity, ctx->policy->seen_index);
	ck_assert_uint_gt(ctx->metrics.gauges.seen_capacity, 0);
	/* nothing changed: nothing published, even a second later */
	ck_assert_int_eq(tick_next_second(), 0);

	/* a key: one publish, the keys gauge, but only once the second is over */
	ck_assert_int_eq(
	        srupb_store_key_put(ctx->store, 0x1234, SRUPB_ROLE_SERVER, key_pem, key_pem_len),
	        SRUP_OK);
	ctx->last_second = srupb_now();
	ck_assert_int_eq(tick(), 0);
	ck_assert_int_eq(tick_next_second(), 1);
	ck_assert_str_eq(stub_last_topic, "$SYS/broker/srup/store/keys");
	ck_assert_str_eq(stub_last_payload, "2");

	/* a revoked key still has its record: the count does not move */
	bool found = false;
	ck_assert_int_eq(srupb_store_key_revoke(ctx->store, 0x1234, &found), SRUP_OK);
	ck_assert(found);
	ck_assert_int_eq(tick_next_second(), 0);
	ck_assert_uint_eq(ctx->metrics.gauges.keys, 2);

	/* an accepted message: a mark and a seen-index record */
	memset(&c, 0, sizeof c);
	c.sender = 0x5f5f5f5f5f5f5f5fu;
	c.chan.kind = SRUPB_CHAN_DEVICE;
	c.chan.a = 0x5f5f5f5f5f5f5f5fu;
	c.mark.seq = 7;
	memset(c.mark.digest, 0xab, sizeof c.mark.digest);
	c.seen_max = 8;
	ck_assert_int_eq(srupb_store_commit(ctx->store, &c, &stale), SRUP_OK);
	ck_assert(!stale);
	ck_assert_int_eq(tick_next_second(), 2);
	ck_assert_uint_eq(ctx->metrics.gauges.marks, 1);
	ck_assert_uint_eq(ctx->metrics.gauges.seen_used, 1);

	/* a pending join, and its end */
	memset(tok, 1, sizeof tok);
	ck_assert_int_eq(srupb_pending_open(ctx->pending, 0x1234, 0x5f5f5f5f5f5f5f5fu,
	                                    SRUPB_JOIN_SIMPLE, tok, 4, 16, 60.0, srupb_now()),
	                 SRUP_OK);
	ck_assert_int_eq(tick_next_second(), 1);
	ck_assert_str_eq(stub_last_topic, "$SYS/broker/srup/joins/pending");
	ck_assert_str_eq(stub_last_payload, "1");
	srupb_pending_close(ctx->pending, 0x1234, 0x5f5f5f5f5f5f5f5fu);
	ck_assert_int_eq(tick_next_second(), 1);
	ck_assert_str_eq(stub_last_payload, "0");
	stop();
}
END_TEST

static double elapsed_ns(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) * 1e9 + (double)(b->tv_nsec - a->tv_nsec);
}

/* The cost of a TICK: the common one (less than a second since the last: a clock read and a few
 * compares) and one that reads the gauges. Printed for the record; only a gross bound checked. */
START_TEST(test_gauges_tick_cost)
{
	struct timespec t0;
	struct timespec t1;
	const int n = 200000;
	const int m = 20000;

	start();
	/* a store of some size: the reads are entry counts, not scans */
	uint64_t *ids = malloc(100000 * sizeof *ids);
	ck_assert_ptr_nonnull(ids);
	for (size_t i = 0; i < 100000; i++) {
		ids[i] = 0x100000 + i;
	}
	ck_assert_int_eq(srupb_store_key_put_many(ctx->store, ids, 100000, SRUPB_ROLE_DEVICE, key_pem,
	                                          key_pem_len),
	                 SRUP_OK);
	free(ids);
	(void)tick_next_second();
	ck_assert_uint_eq(ctx->metrics.gauges.keys, 100001);
	ctx->last_second = srupb_now() + 3600.0; /* no once-a-second work in the loop */
	int (*cb)(int, void *, void *) = stub_cb[MOSQ_EVT_TICK];
	void *data = stub_userdata[MOSQ_EVT_TICK];
	int bad = 0;
	/* no ck_assert in the loops: each one writes to Check's pipe */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < n; i++) {
		bad += cb(MOSQ_EVT_TICK, NULL, data) != MOSQ_ERR_SUCCESS;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double plain = elapsed_ns(&t0, &t1) / n;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < m; i++) {
		srupb_metrics_gauges(ctx);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double gauges = elapsed_ns(&t0, &t1) / m;
	printf("tick cost: %.0f ns per TICK without the once-a-second work, %.0f ns per gauge read "
	       "(100001 keys; unchanged values, nothing published)\n",
	       plain, gauges);
	ck_assert_int_eq(bad, 0);
	ck_assert(gauges < 1e6);
	stop();
}
END_TEST

Suite *plugin_metrics_suite(void)
{
	Suite *s = suite_create("plugin_metrics");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_gauges_read_and_published_when_changed);
	tcase_add_test(tc, test_gauges_tick_cost);
	suite_add_tcase(s, tc);
	return s;
}
