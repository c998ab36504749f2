/* SPDX-License-Identifier: MIT
 * metrics.c - verdict counters and state gauges, published as retained $SYS/broker/srup/...
 * messages. Counting is a few additions; publishing happens from TICK (or every N decisions),
 * and only for values that changed. The gauges are O(1) reads, never a scan of the store. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#include "srupb.h"

void srupb_metrics_init(struct srupb_metrics *m)
{
	memset(m, 0, sizeof *m);
	m->pub_accepted = UINT64_MAX;
	m->pub_retransmitted = UINT64_MAX;
	m->pub_dropped_total = UINT64_MAX;
	m->pub_admin_ok = UINT64_MAX;
	m->pub_admin_refused = UINT64_MAX;
	m->pub_refused_subscribe = UINT64_MAX;
	for (size_t i = 0; i < SRUPB_R__COUNT; i++) {
		m->pub_dropped[i] = UINT64_MAX;
	}
	m->pub_gauges.keys = UINT64_MAX;
	m->pub_gauges.marks = UINT64_MAX;
	m->pub_gauges.joins_pending = UINT64_MAX;
	m->pub_gauges.seen_used = UINT64_MAX;
	m->pub_gauges.seen_capacity = UINT64_MAX;
}

void srupb_metrics_count(struct srupb_metrics *m, enum srupb_verdict v, enum srupb_reason r)
{
	switch (v) {
		case SRUPB_V_ACCEPT:
			m->accepted++;
			break;
		case SRUPB_V_RETRANSMIT:
			m->retransmitted++;
			break;
		case SRUPB_V_DROP:
			m->dropped_total++;
			m->dropped[(size_t)r < SRUPB_R__COUNT ? r : SRUPB_R_INTERNAL_ERROR]++;
			break;
		case SRUPB_V_REFUSE:
			m->refused_subscribe++;
			break;
		case SRUPB_V_PASS:
		default:
			break;
	}
}

void srupb_metrics_admin(struct srupb_metrics *m, bool ok)
{
	if (ok) {
		m->admin_ok++;
	} else {
		m->admin_refused++;
	}
}

static void publish_one(const char *topic, uint64_t value, uint64_t *last)
{
	char buf[32];
	int n;
	if (*last == value) {
		return;
	}
	n = snprintf(buf, sizeof buf, "%" PRIu64, value);
	if (n <= 0) {
		return;
	}
	if (mosquitto_broker_publish_copy(NULL, topic, n, buf, 0, true, NULL) == MOSQ_ERR_SUCCESS) {
		*last = value;
	}
}

void srupb_metrics_publish(struct srupb_metrics *m)
{
	char topic[96];
	publish_one("$SYS/broker/srup/accepted", m->accepted, &m->pub_accepted);
	publish_one("$SYS/broker/srup/retransmitted", m->retransmitted, &m->pub_retransmitted);
	publish_one("$SYS/broker/srup/dropped/total", m->dropped_total, &m->pub_dropped_total);
	for (unsigned i = 0; i < SRUPB_R__COUNT; i++) {
		snprintf(topic, sizeof topic, "$SYS/broker/srup/dropped/%s", srupb_reason_name(i));
		publish_one(topic, m->dropped[i], &m->pub_dropped[i]);
	}
	publish_one("$SYS/broker/srup/admin/ok", m->admin_ok, &m->pub_admin_ok);
	publish_one("$SYS/broker/srup/admin/refused", m->admin_refused, &m->pub_admin_refused);
	publish_one("$SYS/broker/srup/refused/subscribe", m->refused_subscribe,
	            &m->pub_refused_subscribe);
	m->last_publish = srupb_now();
}

bool srupb_metrics_read_gauges(struct srupb_ctx *ctx, struct srupb_gauges *g)
{
	size_t n = 0;
	size_t used = 0;
	size_t cap = 0;
	bool ok = true;

	if (ctx->store != NULL) {
		if (srupb_store_key_count(ctx->store, &n) == SRUP_OK) {
			g->keys = n;
		} else {
			ok = false;
		}
		if (srupb_store_mark_count(ctx->store, &n) == SRUP_OK) {
			g->marks = n;
		} else {
			ok = false;
		}
		srupb_store_seen_stats(ctx->store, &used, &cap);
		g->seen_used = used;
		g->seen_capacity = cap;
	}
	g->joins_pending = srupb_pending_count(ctx->pending);
	return ok;
}

void srupb_metrics_gauges(struct srupb_ctx *ctx)
{
	struct srupb_gauges *g = &ctx->metrics.gauges;
	struct srupb_gauges *pub = &ctx->metrics.pub_gauges;

	(void)srupb_metrics_read_gauges(ctx, g);
	publish_one("$SYS/broker/srup/store/keys", g->keys, &pub->keys);
	publish_one("$SYS/broker/srup/store/marks", g->marks, &pub->marks);
	publish_one("$SYS/broker/srup/store/seen_used", g->seen_used, &pub->seen_used);
	publish_one("$SYS/broker/srup/store/seen_capacity", g->seen_capacity, &pub->seen_capacity);
	publish_one("$SYS/broker/srup/joins/pending", g->joins_pending, &pub->joins_pending);
}
