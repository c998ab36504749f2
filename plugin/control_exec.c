/* SPDX-License-Identifier: MIT
 * control_exec.c - what each admin command of $CONTROL/srup/v1 does (control.c carries the
 * request and the answer, control_cmd.c parses it). Answers are jansson objects; ids are
 * canonical id text, times ISO 8601 UTC, sequence numbers unsigned decimal numbers.
 *
 * Bounds: a list answers at most SRUPB_PAGE_MAX entries and says where the next page starts;
 * getMarks walks one sender's marks (one per channel it has used); nothing here allocates in
 * proportion to the store. */
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#include "srupb.h"

static json_t *id_json(uint64_t id)
{
	char text[SRUP_ID_TEXT_MAX];
	if (srup_id_format(id, text, sizeof text) != SRUP_OK) {
		return json_null();
	}
	return json_string(text);
}

static json_t *time_json(uint64_t unix_s)
{
	char buf[32];
	time_t t = (time_t)unix_s;
	struct tm tm;
	if (unix_s == 0 || gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
		return json_null();
	}
	return json_string(buf);
}

/* jansson's integers are signed 64-bit: a number above that range (a sender may pick any
 * sequence number) is given as a "0x" hex string, as the audit log and srup write it. */
static json_t *u64_json(uint64_t v)
{
	char buf[24];
	if (v <= (uint64_t)LLONG_MAX) {
		return json_integer((json_int_t)v);
	}
	snprintf(buf, sizeof buf, "0x%" PRIx64, v);
	return json_string(buf);
}

static json_t *hex_json(const uint8_t *p, size_t n)
{
	char buf[2 * 32 + 1];
	if (n > 32 || srup_hex_encode(p, n, buf, sizeof buf) != SRUP_OK) {
		return json_null();
	}
	return json_string(buf);
}

static bool fail(char *detail, size_t cap, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static bool fail(char *detail, size_t cap, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(detail, cap, fmt, ap);
	va_end(ap);
	return false;
}

static const char *status_name(unsigned s)
{
	return s == SRUPB_KEY_ACTIVE ? "active" : "revoked";
}

/* --- keys --- */

struct key_page {
	json_t *list;
	size_t limit;
	bool more;
	uint64_t next;
};

static int key_entry(const struct srupb_keyrec *rec, void *arg)
{
	struct key_page *pg = arg;
	if (json_array_size(pg->list) >= pg->limit) {
		pg->more = true;
		pg->next = rec->id;
		return 1;
	}
	json_array_append_new(pg->list,
	                      json_pack("{s:o,s:s,s:s,s:o}", "id", id_json(rec->id), "role",
	                                srupb_role_name(rec->role), "status", status_name(rec->status),
	                                "added", time_json(rec->created)));
	return 0;
}

/* {"keys":[...],"next":"<id>"} ("next" only when there is more). */
static bool list_keys(struct srupb_ctx *ctx, const struct srupb_command *c, json_t *data,
                      char *detail, size_t cap)
{
	struct key_page pg = {json_array(), c->limit, false, 0};
	uint64_t from = c->after;

	if (c->has_after) {
		if (c->after == UINT64_MAX) {
			from = 0;
			pg.limit = 0; /* nothing comes after the last id */
		} else {
			from = c->after + 1;
		}
	}
	json_object_set_new(data, "keys", pg.list);
	if (pg.limit > 0 && srupb_store_key_foreach_from(ctx->store, from, key_entry, &pg) != SRUP_OK) {
		return fail(detail, cap, "store: %s", srupb_store_strerror(ctx->store));
	}
	if (pg.more) {
		/* the cursor is the last id shown: the next page starts after it */
		json_t *last = json_array_get(pg.list, json_array_size(pg.list) - 1);
		json_object_set(data, "next", json_object_get(last, "id"));
	}
	snprintf(detail, cap, "%zu keys%s", json_array_size(pg.list), pg.more ? ", more follow" : "");
	return true;
}

static json_t *key_json(const struct srup_key *k)
{
	uint8_t fp[32];
	json_t *o = json_object();
	json_object_set_new(o, "bits", json_integer(srup_key_bits(k)));
	if (srup_key_fingerprint(k, fp) == SRUP_OK) {
		json_object_set_new(o, "fingerprint", hex_json(fp, sizeof fp));
	}
	return o;
}

static bool get_key(struct srupb_ctx *ctx, const struct srupb_command *c, json_t *data,
                    char *detail, size_t cap)
{
	struct srupb_keyrec rec;
	struct srup_key *k = NULL;
	char *pem = NULL;
	bool found = false;
	uint64_t until = 0;
	const char *rpem = NULL;
	size_t rlen = 0;
	enum srup_err e;

	if (srupb_store_key_get(ctx->store, c->id, &rec, &pem, &found) != SRUP_OK) {
		return fail(detail, cap, "store: %s", srupb_store_strerror(ctx->store));
	}
	if (!found) {
		return fail(detail, cap, "unknown id");
	}
	json_object_set_new(data, "id", id_json(rec.id));
	json_object_set_new(data, "role", json_string(srupb_role_name(rec.role)));
	json_object_set_new(data, "status", json_string(status_name(rec.status)));
	json_object_set_new(data, "added", time_json(rec.created));
	if (srup_key_load_pem(pem, rec.pem_len, SRUP_KEY_PUBLIC, &k, NULL) == SRUP_OK) {
		json_t *kj = key_json(k);
		json_object_update(data, kj);
		json_decref(kj);
		srup_key_free(k);
		k = NULL;
	}
	json_object_set_new(data, "pem", json_stringn(pem, rec.pem_len));
	free(pem);
	/* the key a rotation replaced, while it is still valid */
	e = srupb_store_retiring_find(ctx->store, c->id, &until, &rpem, &rlen, &found);
	if (e == SRUP_OK && found && until > (uint64_t)time(NULL) &&
	    srup_key_load_pem(rpem, rlen, SRUP_KEY_PUBLIC, &k, NULL) == SRUP_OK) {
		json_t *r = key_json(k);
		json_object_set_new(r, "until", time_json(until));
		json_object_set_new(data, "retiring", r);
		srup_key_free(k);
	}
	srupb_store_read_end(ctx->store);
	snprintf(detail, cap, "%s key", status_name(rec.status));
	return true;
}

/* The public half, as SubjectPublicKeyInfo PEM: a private key sent by mistake is never stored,
 * and every key in the store has one spelling. */
static bool checked_pem(struct srupb_ctx *ctx, const struct srupb_command *c, char **pem,
                        size_t *len, char *detail, size_t cap)
{
	struct srup_key *k = NULL;
	enum srup_err e = srup_key_load_pem(c->pem, c->pem_len, SRUP_KEY_PUBLIC, &k, NULL);
	if (e != SRUP_OK) {
		return fail(detail, cap, "\"pem\" is not a usable key: %s", srup_strerror(e));
	}
	if (srup_key_bits(k) > ctx->policy->max_key_bits) {
		unsigned bits = srup_key_bits(k);
		srup_key_free(k);
		return fail(detail, cap, "key of %u bits, policy max_key_bits %zu", bits,
		            ctx->policy->max_key_bits);
	}
	e = srup_key_public_pem(k, pem, len);
	srup_key_free(k);
	if (e != SRUP_OK) {
		return fail(detail, cap, "cannot export the key: %s", srup_strerror(e));
	}
	return true;
}

static bool add_key(struct srupb_ctx *ctx, const struct srupb_command *c, json_t *data,
                    char *detail, size_t cap)
{
	enum srupb_add_result res;
	char *pem = NULL;
	size_t len = 0;
	enum srup_err e;

	if (!checked_pem(ctx, c, &pem, &len, detail, cap)) {
		return false;
	}
	e = srupb_store_key_add(ctx->store, c->id, c->role, pem, len, c->force, &res, NULL);
	free(pem);
	if (e != SRUP_OK) {
		return fail(detail, cap, "store: %s", srupb_store_strerror(ctx->store));
	}
	srupb_keystore_drop(ctx->keys, c->id);
	json_object_set_new(data, "id", id_json(c->id));
	json_object_set_new(data, "role", json_string(srupb_role_name(c->role)));
	switch (res) {
		case SRUPB_ADD_NEW:
			snprintf(detail, cap, "added");
			return true;
		case SRUPB_ADD_REPLACED:
			snprintf(detail, cap, "replaced");
			return true;
		case SRUPB_ADD_EXISTS:
			return fail(detail, cap, "the id has an active key (force replaces it)");
		case SRUPB_ADD_REVOKED:
		default:
			return fail(detail, cap, "the id is revoked and stays revoked");
	}
}

static bool rotate_key(struct srupb_ctx *ctx, const struct srupb_command *c, json_t *data,
                       char *detail, size_t cap)
{
	enum srupb_rotate_result res;
	uint64_t until = (uint64_t)time(NULL) + c->overlap;
	char *pem = NULL;
	size_t len = 0;
	enum srup_err e;

	if (!checked_pem(ctx, c, &pem, &len, detail, cap)) {
		return false;
	}
	e = srupb_store_key_rotate(ctx->store, c->id, pem, len, c->overlap > 0 ? until : 0, &res);
	free(pem);
	if (e != SRUP_OK) {
		return fail(detail, cap, "store: %s", srupb_store_strerror(ctx->store));
	}
	srupb_keystore_drop(ctx->keys, c->id);
	switch (res) {
		case SRUPB_ROTATE_DONE:
			json_object_set_new(data, "id", id_json(c->id));
			json_object_set_new(data, "old_key_until",
			                    c->overlap > 0 ? time_json(until) : json_null());
			if (c->overlap > 0) {
				snprintf(detail, cap, "rotated; the old key stays valid for %" PRIu64 " s",
				         c->overlap);
			} else {
				snprintf(detail, cap, "rotated; the old key is no longer valid");
			}
			return true;
		case SRUPB_ROTATE_UNKNOWN:
			return fail(detail, cap, "unknown id");
		case SRUPB_ROTATE_REVOKED:
			return fail(detail, cap, "the id is revoked");
		case SRUPB_ROTATE_SAME:
		default:
			return fail(detail, cap, "the new key is the key in force");
	}
}

static bool revoke_key(struct srupb_ctx *ctx, const struct srupb_command *c, char *detail,
                       size_t cap)
{
	bool found = false;
	if (srupb_store_key_revoke(ctx->store, c->id, &found) != SRUP_OK) {
		return fail(detail, cap, "store: %s", srupb_store_strerror(ctx->store));
	}
	/* at once: key cache, and the live connection (kicked from TICK) */
	srupb_keystore_drop(ctx->keys, c->id);
	srupb_kick_identity(ctx, c->id);
	if (!found) {
		return fail(detail, cap, "unknown id");
	}
	snprintf(detail, cap, "revoked");
	return true;
}

/* --- membership --- */

struct member_page {
	json_t *list;
	size_t limit;
	bool more;
	bool skip_first; /* the cursor entry itself */
	uint64_t after_d;
	uint64_t after_s;
};

static int member_entry(uint64_t device, uint64_t server, uint64_t joined, void *arg)
{
	struct member_page *pg = arg;
	if (pg->skip_first && device == pg->after_d && server == pg->after_s) {
		return 0;
	}
	if (json_array_size(pg->list) >= pg->limit) {
		pg->more = true;
		return 1;
	}
	json_array_append_new(pg->list, json_pack("{s:o,s:o,s:o}", "device", id_json(device), "server",
	                                          id_json(server), "joined", time_json(joined)));
	return 0;
}

static bool list_members(struct srupb_ctx *ctx, const struct srupb_command *c, json_t *data,
                         char *detail, size_t cap)
{
	struct member_page pg = {json_array(), c->limit, false,
	                         c->has_after, c->after, c->after_server};
	json_object_set_new(data, "members", pg.list);
	if (srupb_store_member_foreach(ctx->store, c->has_id ? c->id : 0, c->after, c->after_server,
	                               member_entry, &pg) != SRUP_OK) {
		return fail(detail, cap, "store: %s", srupb_store_strerror(ctx->store));
	}
	if (pg.more) {
		json_t *last = json_array_get(pg.list, json_array_size(pg.list) - 1);
		json_object_set_new(data, "next",
		                    json_pack("{s:O,s:O}", "after", json_object_get(last, "device"),
		                              "after_server", json_object_get(last, "server")));
	}
	snprintf(detail, cap, "%zu memberships%s", json_array_size(pg.list),
	         pg.more ? ", more follow" : "");
	return true;
}

static bool remove_member(struct srupb_ctx *ctx, const struct srupb_command *c, json_t *data,
                          char *detail, size_t cap)
{
	bool found = false;
	char d[SRUP_ID_TEXT_MAX];
	char s[SRUP_ID_TEXT_MAX];

	if (srupb_store_member_remove(ctx->store, c->id, c->server, &found) != SRUP_OK) {
		return fail(detail, cap, "store: %s", srupb_store_strerror(ctx->store));
	}
	(void)srup_id_format(c->id, d, sizeof d);
	(void)srup_id_format(c->server, s, sizeof s);
	json_object_set_new(data, "device", id_json(c->id));
	json_object_set_new(data, "server", id_json(c->server));
	if (!found) {
		return fail(detail, cap, "device %s is not a member of server %s", d, s);
	}
	srupb_log(MOSQ_LOG_NOTICE, "membership | device=%s | removed from server=%s by an admin", d, s);
	snprintf(detail, cap, "device %s removed from server %s", d, s);
	return true;
}

/* --- marks --- */

struct mark_page {
	json_t *list;
	bool more; /* a mark beyond SRUPB_PAGE_MAX was seen */
};

static int mark_entry(const struct srupb_chan *ch, const struct srupb_mark *m, void *arg)
{
	struct mark_page *pg = arg;
	json_t *list = pg->list;
	char a[SRUP_ID_TEXT_MAX];
	char b[SRUP_ID_TEXT_MAX];
	char topic[64];

	(void)srup_id_format(ch->a, a, sizeof a);
	(void)srup_id_format(ch->b, b, sizeof b);
	if (ch->kind == SRUPB_CHAN_JOIN) {
		snprintf(topic, sizeof topic, "SRUP/servers/%s/%s", a, b);
	} else {
		snprintf(topic, sizeof topic, "SRUP/%s", a);
	}
	if (json_array_size(list) >= SRUPB_PAGE_MAX) {
		pg->more = true;
		return 1;
	}
	json_array_append_new(list, json_pack("{s:s,s:o,s:o}", "channel", topic, "sequence_id",
	                                      u64_json(m->seq), "payload_sha256",
	                                      hex_json(m->digest, sizeof m->digest)));
	return 0;
}

static bool get_marks(struct srupb_ctx *ctx, const struct srupb_command *c, json_t *data,
                      char *detail, size_t cap)
{
	struct mark_page pg = {json_array(), false};
	json_object_set_new(data, "id", id_json(c->id));
	json_object_set_new(data, "marks", pg.list);
	/* Fold the journal first, so that the answer has the newest marks (one write transaction). */
	if (srupb_store_checkpoint(ctx->store) != SRUP_OK ||
	    srupb_store_mark_foreach(ctx->store, c->id, mark_entry, &pg) != SRUP_OK) {
		return fail(detail, cap, "store: %s", srupb_store_strerror(ctx->store));
	}
	if (pg.more) {
		/* a server that has written to more devices than that: say so, never cut silently */
		json_object_set_new(data, "truncated", json_true());
		snprintf(detail, cap, "the first %d marks (more are held)", SRUPB_PAGE_MAX);
		return true;
	}
	snprintf(detail, cap, "%zu marks", json_array_size(pg.list));
	return true;
}

/* --- pending joins --- */

struct pending_page {
	json_t *list;
	size_t limit;
	double now;
	bool more;
};

static const char *join_kind_name(unsigned k)
{
	switch (k) {
		case SRUPB_JOIN_HUMAN:
			return "human";
		case SRUPB_JOIN_OBSERVED:
			return "observed";
		case SRUPB_JOIN_SIMPLE:
		default:
			return "simple";
	}
}

static int pending_entry(uint64_t device, const struct srupb_pending_join *j, void *arg)
{
	struct pending_page *pg = arg;
	if (json_array_size(pg->list) >= pg->limit) {
		pg->more = true;
		return 1;
	}
	json_array_append_new(
	        pg->list, json_pack("{s:o,s:o,s:s,s:b,s:i,s:i}", "device", id_json(device), "server",
	                            id_json(j->server), "kind", join_kind_name(j->kind), "answered",
	                            j->has_answer, "age_s", (json_int_t)(pg->now - j->opened),
	                            "expires_in_s", (json_int_t)(j->expires - pg->now + 0.999)));
	return 0;
}

static bool list_pending(struct srupb_ctx *ctx, const struct srupb_command *c, json_t *data,
                         char *detail, size_t cap)
{
	struct pending_page pg = {json_array(), c->limit, srupb_now(), false};
	json_object_set_new(data, "pending", pg.list);
	srupb_pending_foreach(ctx->pending, pg.now, pending_entry, &pg);
	json_object_set_new(data, "total", json_integer((json_int_t)srupb_pending_count(ctx->pending)));
	snprintf(detail, cap, "%zu pending joins%s", json_array_size(pg.list),
	         pg.more ? " shown, more held" : "");
	return true;
}

/* --- stats --- */

static bool get_stats(struct srupb_ctx *ctx, json_t *data, char *detail, size_t cap)
{
	const struct srupb_metrics *m = &ctx->metrics;
	json_t *dropped = json_object();
	json_t *store = json_object();
	struct srupb_gauges g = ctx->metrics.gauges;
	uint64_t hits = 0;
	uint64_t misses = 0;

	for (unsigned r = 0; r < SRUPB_R__COUNT; r++) {
		if (r != SRUPB_R_NONE) {
			json_object_set_new(dropped, srupb_reason_name(r), u64_json(m->dropped[r]));
		}
	}
	json_object_set_new(data, "accepted", u64_json(m->accepted));
	json_object_set_new(data, "retransmitted", u64_json(m->retransmitted));
	json_object_set_new(data, "dropped_total", u64_json(m->dropped_total));
	json_object_set_new(data, "dropped", dropped);
	json_object_set_new(data, "refused_subscribe", u64_json(m->refused_subscribe));
	json_object_set_new(data, "admin_ok", u64_json(m->admin_ok));
	json_object_set_new(data, "admin_refused", u64_json(m->admin_refused));
	/* the gauges as of now, read as TICK reads them for $SYS */
	if (!srupb_metrics_read_gauges(ctx, &g)) {
		json_decref(store);
		return fail(detail, cap, "store: %s", srupb_store_strerror(ctx->store));
	}
	json_object_set_new(store, "keys", u64_json(g.keys));
	json_object_set_new(store, "marks", u64_json(g.marks));
	json_object_set_new(store, "journal",
	                    json_integer((json_int_t)srupb_store_journal_count(ctx->store)));
	json_object_set_new(store, "seen_used", u64_json(g.seen_used));
	json_object_set_new(store, "seen_capacity", u64_json(g.seen_capacity));
	json_object_set_new(data, "store", store);
	json_object_set_new(data, "pending_joins", u64_json(g.joins_pending));
	srupb_keystore_stats(ctx->keys, &hits, &misses);
	json_object_set_new(data, "key_cache",
	                    json_pack("{s:i,s:o,s:o}", "size",
	                              (json_int_t)srupb_keystore_size(ctx->keys), "hits",
	                              u64_json(hits), "misses", u64_json(misses)));
	snprintf(detail, cap, "stats");
	return true;
}

bool srupb_control_exec(struct srupb_ctx *ctx, const struct srupb_command *c, json_t **data,
                        char *detail, size_t cap)
{
	json_t *d = json_object();
	bool ok;

	*data = NULL;
	if (d == NULL) {
		return fail(detail, cap, "out of memory");
	}
	switch (c->cmd) {
		case SRUPB_CMD_RELOAD:
			ok = srupb_reload(ctx) == SRUP_OK;
			snprintf(detail, cap, "%s", ok ? "reloaded" : "policy refused, see log");
			break;
		case SRUPB_CMD_REVOKE:
			ok = revoke_key(ctx, c, detail, cap);
			break;
		case SRUPB_CMD_LIST_KEYS:
			ok = list_keys(ctx, c, d, detail, cap);
			break;
		case SRUPB_CMD_GET_KEY:
			ok = get_key(ctx, c, d, detail, cap);
			break;
		case SRUPB_CMD_ADD_KEY:
			ok = add_key(ctx, c, d, detail, cap);
			break;
		case SRUPB_CMD_ROTATE_KEY:
			ok = rotate_key(ctx, c, d, detail, cap);
			break;
		case SRUPB_CMD_LIST_MEMBERS:
			ok = list_members(ctx, c, d, detail, cap);
			break;
		case SRUPB_CMD_REMOVE_MEMBER:
			ok = remove_member(ctx, c, d, detail, cap);
			break;
		case SRUPB_CMD_GET_MARKS:
			ok = get_marks(ctx, c, d, detail, cap);
			break;
		case SRUPB_CMD_LIST_PENDING:
			ok = list_pending(ctx, c, d, detail, cap);
			break;
		case SRUPB_CMD_GET_STATS:
			ok = get_stats(ctx, d, detail, cap);
			break;
		case SRUPB_CMD_NONE:
		default:
			ok = fail(detail, cap, "unknown command");
			break;
	}
	if (json_object_size(d) == 0) {
		json_decref(d);
		d = NULL;
	}
	*data = d;
	return ok;
}
