/* SPDX-License-Identifier: MIT
 * test_store.c - unit tests of store.c (LMDB): keys, marks, the bounded seen index, membership,
 * revocation, and persistence across close/reopen. Each test uses a fresh temp directory. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <lmdb.h>

#include "srupb.h"
#include "testutil.h"

static char dir[64];

static struct srupb_store *fresh(void)
{
	struct srupb_store *st = NULL;
	char err[256] = "";
	snprintf(dir, sizeof dir, "/tmp/srupb-store-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_msg(srupb_store_open(dir, false, SRUPB_SYNC_OS, &st, err, sizeof err) == SRUP_OK,
	              "%s", err);
	return st;
}

static void cleanup_dir(void)
{
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static struct srupb_commit commit_for(uint64_t sender, uint64_t chan_a, uint64_t seq, uint8_t tag)
{
	struct srupb_commit c;
	memset(&c, 0, sizeof c);
	c.sender = sender;
	c.chan.kind = SRUPB_CHAN_DEVICE;
	c.chan.a = chan_a;
	c.mark.seq = seq;
	memset(c.mark.digest, tag, sizeof c.mark.digest);
	memset(c.mark.client, 0x5a, sizeof c.mark.client);
	c.seen_max = 1000;
	return c;
}

START_TEST(test_store_keys_put_get_revoke_list)
{
	struct srupb_store *st = fresh();
	struct srupb_keyrec rec;
	char *pem = NULL;
	bool found = true;
	size_t n = 99;

	ck_assert_int_eq(srupb_store_key_count(st, &n), SRUP_OK);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(srupb_store_key_get(st, 42, &rec, &pem, &found), SRUP_OK);
	ck_assert(!found);
	ck_assert_ptr_null(pem);
	ck_assert_int_eq(srupb_store_key_put(st, 42, SRUPB_ROLE_DEVICE, "PEM-A", 5), SRUP_OK);
	ck_assert_int_eq(srupb_store_key_put(st, 7, SRUPB_ROLE_SERVER, "PEM-B", 5), SRUP_OK);
	ck_assert_int_eq(srupb_store_key_put(st, 7, SRUPB_ROLE_NONE, "x", 1), SRUP_ERR_INVAL);
	ck_assert_int_eq(srupb_store_key_get(st, 42, &rec, &pem, &found), SRUP_OK);
	ck_assert(found);
	ck_assert_str_eq(pem, "PEM-A");
	ck_assert_uint_eq(rec.role, SRUPB_ROLE_DEVICE);
	ck_assert_uint_eq(rec.status, SRUPB_KEY_ACTIVE);
	uint64_t gen = rec.generation;
	free(pem);
	ck_assert_int_eq(srupb_store_key_revoke(st, 42, &found), SRUP_OK);
	ck_assert(found);
	ck_assert_int_eq(srupb_store_key_revoke(st, 43, &found), SRUP_OK);
	ck_assert(!found);
	ck_assert_int_eq(srupb_store_key_get(st, 42, &rec, &pem, &found), SRUP_OK);
	ck_assert_uint_eq(rec.status, SRUPB_KEY_REVOKED);
	ck_assert_str_eq(pem, "PEM-A");
	ck_assert_uint_ne(rec.generation, gen);
	free(pem);
	ck_assert_int_eq(srupb_store_key_count(st, &n), SRUP_OK);
	ck_assert_uint_eq(n, 2);
	/* re-adding makes it active again */
	ck_assert_int_eq(srupb_store_key_put(st, 42, SRUPB_ROLE_DEVICE, "PEM-C", 5), SRUP_OK);
	ck_assert_int_eq(srupb_store_key_get(st, 42, &rec, &pem, &found), SRUP_OK);
	ck_assert_uint_eq(rec.status, SRUPB_KEY_ACTIVE);
	ck_assert_str_eq(pem, "PEM-C");
	free(pem);
	srupb_store_close(st);
	cleanup_dir();
}
END_TEST

static int collect(const struct srupb_keyrec *rec, void *arg)
{
	uint64_t *ids = arg;
	ids[ids[0] + 1] = rec->id;
	ids[0]++;
	return 0;
}

/* srupb_store_key_add: a taken id is replaced only with force, a revoked one never. */
START_TEST(test_store_key_add_refuses_taken_and_revoked_ids)
{
	struct srupb_store *st = fresh();
	enum srupb_add_result res = SRUPB_ADD_EXISTS;
	struct srupb_keyrec old;
	struct srupb_keyrec rec;
	char *pem = NULL;
	bool found = false;

	ck_assert_int_eq(srupb_store_key_add(st, 42, SRUPB_ROLE_DEVICE, "PEM-A", 5, false, &res, &old),
	                 SRUP_OK);
	ck_assert_int_eq(res, SRUPB_ADD_NEW);
	ck_assert_int_eq(srupb_store_key_add(st, 42, SRUPB_ROLE_SERVER, "PEM-B", 5, false, &res, &old),
	                 SRUP_OK);
	ck_assert_int_eq(res, SRUPB_ADD_EXISTS);
	ck_assert_uint_eq(old.role, SRUPB_ROLE_DEVICE);
	ck_assert_int_eq(srupb_store_key_get(st, 42, &rec, &pem, &found), SRUP_OK);
	ck_assert(found && rec.role == SRUPB_ROLE_DEVICE && strcmp(pem, "PEM-A") == 0);
	free(pem);
	ck_assert_int_eq(srupb_store_key_add(st, 42, SRUPB_ROLE_SERVER, "PEM-B", 5, true, &res, NULL),
	                 SRUP_OK);
	ck_assert_int_eq(res, SRUPB_ADD_REPLACED);
	ck_assert_int_eq(srupb_store_key_get(st, 42, &rec, &pem, &found), SRUP_OK);
	ck_assert(found && rec.role == SRUPB_ROLE_SERVER && strcmp(pem, "PEM-B") == 0);
	free(pem);
	ck_assert_int_eq(srupb_store_key_revoke(st, 42, &found), SRUP_OK);
	for (int force = 0; force <= 1; force++) {
		ck_assert_int_eq(
		        srupb_store_key_add(st, 42, SRUPB_ROLE_DEVICE, "PEM-C", 5, force, &res, &old),
		        SRUP_OK);
		ck_assert_int_eq(res, SRUPB_ADD_REVOKED);
		ck_assert_int_eq(srupb_store_key_get(st, 42, &rec, &pem, &found), SRUP_OK);
		ck_assert(found && rec.status == SRUPB_KEY_REVOKED && strcmp(pem, "PEM-B") == 0);
		free(pem);
	}
	ck_assert_int_eq(srupb_store_key_add(st, 43, SRUPB_ROLE_NONE, "x", 1, false, &res, NULL),
	                 SRUP_ERR_INVAL);
	srupb_store_close(st);
	cleanup_dir();
}
END_TEST

START_TEST(test_store_foreach_in_id_order_and_put_many)
{
	struct srupb_store *st = fresh();
	uint64_t ids[] = {0xffffffffffffffffu, 1, 0x100, 0xab};
	uint64_t got[8] = {0};
	ck_assert_int_eq(srupb_store_key_put_many(st, ids, 4, SRUPB_ROLE_DEVICE, "K", 1), SRUP_OK);
	ck_assert_int_eq(srupb_store_key_foreach(st, collect, got), SRUP_OK);
	ck_assert_uint_eq(got[0], 4);
	ck_assert_uint_eq(got[1], 1);
	ck_assert_uint_eq(got[2], 0xab);
	ck_assert_uint_eq(got[3], 0x100);
	ck_assert_uint_eq(got[4], 0xffffffffffffffffu);
	srupb_store_close(st);
	cleanup_dir();
}
END_TEST

START_TEST(test_store_marks_only_move_up_and_persist)
{
	struct srupb_store *st = fresh();
	struct srupb_commit c = commit_for(5, 9, 10, 1);
	struct srupb_mark m;
	bool stale = true;
	bool found = false;
	char err[256];

	ck_assert_int_eq(srupb_store_commit(st, &c, &stale), SRUP_OK);
	ck_assert(!stale);
	c = commit_for(5, 9, 10, 2);
	ck_assert_int_eq(srupb_store_commit(st, &c, &stale), SRUP_OK);
	ck_assert(stale);
	c = commit_for(5, 9, 3, 3);
	ck_assert_int_eq(srupb_store_commit(st, &c, &stale), SRUP_OK);
	ck_assert(stale);
	c = commit_for(5, 9, 11, 4);
	ck_assert_int_eq(srupb_store_commit(st, &c, &stale), SRUP_OK);
	ck_assert(!stale);
	/* another channel has its own mark */
	c = commit_for(5, 8, 2, 5);
	ck_assert_int_eq(srupb_store_commit(st, &c, &stale), SRUP_OK);
	ck_assert(!stale);
	srupb_store_close(st);

	ck_assert_int_eq(srupb_store_open(dir, true, SRUPB_SYNC_OS, &st, err, sizeof err), SRUP_OK);
	ck_assert_int_eq(srupb_store_read_begin(st), SRUP_OK);
	struct srupb_chan ch = {SRUPB_CHAN_DEVICE, 9, 0};
	ck_assert_int_eq(srupb_store_mark_find(st, 5, &ch, &m, &found), SRUP_OK);
	ck_assert(found);
	ck_assert_uint_eq(m.seq, 11);
	ck_assert_uint_eq(m.digest[0], 4);
	ch.a = 7;
	ck_assert_int_eq(srupb_store_mark_find(st, 5, &ch, &m, &found), SRUP_OK);
	ck_assert(!found);
	/* a read transaction must not be open during a commit */
	ck_assert_int_eq(srupb_store_commit(st, &c, &stale), SRUP_ERR_INVAL);
	srupb_store_read_end(st);
	srupb_store_close(st);
	cleanup_dir();
}
END_TEST

/* The mark count is LMDB's entry count plus the journal's records for new channels: a channel
 * counts once whether its mark is in LMDB, in the journal or in both, before and after a fold. */
static size_t marks_now(struct srupb_store *st)
{
	size_t n = 12345;
	ck_assert_int_eq(srupb_store_mark_count(st, &n), SRUP_OK);
	return n;
}

START_TEST(test_store_mark_count_with_and_without_journal)
{
	struct srupb_store *st = fresh();
	struct srupb_commit c;
	bool stale = true;
	size_t n = 0;

	ck_assert_uint_eq(marks_now(st), 0);
	c = commit_for(5, 9, 10, 1); /* LMDB path: no journal yet */
	ck_assert_int_eq(srupb_store_commit(st, &c, &stale), SRUP_OK);
	ck_assert_uint_eq(marks_now(st), 1);
	ck_assert_int_eq(srupb_store_journal_open(st, 4), SRUP_OK);
	c = commit_for(5, 9, 11, 2); /* journalled, a channel LMDB holds */
	ck_assert_int_eq(srupb_store_commit(st, &c, &stale), SRUP_OK);
	ck_assert(!stale);
	ck_assert_uint_eq(marks_now(st), 1);
	c = commit_for(5, 8, 1, 3); /* journalled, a new channel */
	ck_assert_int_eq(srupb_store_commit(st, &c, &stale), SRUP_OK);
	ck_assert_uint_eq(marks_now(st), 2);
	c = commit_for(5, 8, 2, 4); /* the same new channel again, still only in the journal */
	ck_assert_int_eq(srupb_store_commit(st, &c, &stale), SRUP_OK);
	ck_assert_uint_eq(marks_now(st), 2);
	c = commit_for(5, 8, 2, 5); /* stale: nothing written */
	ck_assert_int_eq(srupb_store_commit(st, &c, &stale), SRUP_OK);
	ck_assert(stale);
	ck_assert_uint_eq(marks_now(st), 2);
	c = commit_for(6, 8, 1, 6);
	ck_assert_int_eq(srupb_store_commit(st, &c, &stale), SRUP_OK);
	ck_assert_uint_eq(srupb_store_journal_count(st), 4);
	ck_assert_uint_eq(marks_now(st), 3);
	c = commit_for(7, 8, 1, 7); /* the journal is full: folded first, then this one */
	ck_assert_int_eq(srupb_store_commit(st, &c, &stale), SRUP_OK);
	ck_assert_uint_eq(srupb_store_journal_count(st), 1);
	ck_assert_uint_eq(marks_now(st), 4);
	ck_assert_int_eq(srupb_store_checkpoint(st), SRUP_OK);
	ck_assert_uint_eq(marks_now(st), 4);
	ck_assert_int_eq(srupb_store_key_count(st, &n), SRUP_OK);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(srupb_store_mark_count(NULL, &n), SRUP_ERR_INVAL);
	ck_assert_int_eq(srupb_store_mark_count(st, NULL), SRUP_ERR_INVAL);
	srupb_store_close(st);
	cleanup_dir();
}
END_TEST

START_TEST(test_store_seen_index_is_bounded)
{
	struct srupb_store *st = fresh();
	bool stale = false;
	bool found = true;
	bool room = false;
	size_t used = 1;
	size_t cap = 1;
	uint8_t dg[32];

	/* without srupb_store_seen_open (the srup tool) nothing is indexed or found, nor refused */
	struct srupb_commit c0 = commit_for(5, 9, 1, 1);
	ck_assert_int_eq(srupb_store_commit(st, &c0, &stale), SRUP_OK);
	ck_assert(!c0.seen_full);
	memset(dg, 1, sizeof dg);
	ck_assert_int_eq(srupb_store_seen_find(st, dg, &found), SRUP_OK);
	ck_assert(!found);
	ck_assert_int_eq(srupb_store_seen_room(st, 5, 3, &room), SRUP_OK);
	ck_assert(room);
	srupb_store_seen_stats(st, &used, &cap);
	ck_assert_uint_eq(used, 0);
	ck_assert_uint_eq(cap, 0);
	srupb_store_close(st);
	cleanup_dir();

	st = fresh();
	ck_assert_int_eq(srupb_store_seen_open(st, 8), SRUP_OK);
	ck_assert_int_eq(srupb_store_seen_open(st, 8), SRUP_ERR_INVAL); /* once */
	for (uint8_t i = 1; i <= 5; i++) {
		struct srupb_commit c = commit_for(5, 9, i, i);
		c.seen_max = 3;
		ck_assert_int_eq(srupb_store_commit(st, &c, &stale), SRUP_OK);
		ck_assert(!stale && !c.seen_full);
	}
	/* seen_max 0: committed, not indexed */
	struct srupb_commit c6 = commit_for(5, 9, 6, 6);
	c6.seen_max = 0;
	ck_assert_int_eq(srupb_store_commit(st, &c6, &stale), SRUP_OK);
	for (uint8_t i = 1; i <= 6; i++) {
		memset(dg, i, sizeof dg);
		ck_assert_int_eq(srupb_store_seen_find(st, dg, &found), SRUP_OK);
		ck_assert_msg(found == (i > 2 && i < 6), "digest %u: found %d", i, found);
	}
	/* another sender fills the other five records */
	for (uint8_t i = 11; i <= 15; i++) {
		struct srupb_commit c = commit_for(6, 9, i, i);
		c.seen_max = 64;
		ck_assert_int_eq(srupb_store_commit(st, &c, &stale), SRUP_OK);
		ck_assert(!c.seen_full);
	}
	srupb_store_seen_stats(st, &used, &cap);
	ck_assert_uint_eq(used, 8);
	ck_assert_uint_eq(cap, 8);
	/* full: sender 6 (below its window) and a new sender are refused, and nothing is written */
	ck_assert_int_eq(srupb_store_seen_room(st, 6, 64, &room), SRUP_OK);
	ck_assert(!room);
	struct srupb_commit c7 = commit_for(7, 9, 1, 0x77);
	c7.seen_max = 64;
	ck_assert_int_eq(srupb_store_commit(st, &c7, &stale), SRUP_OK);
	ck_assert(c7.seen_full);
	struct srupb_mark mk;
	ck_assert_int_eq(srupb_store_mark_find(st, 7, &c7.chan, &mk, &found), SRUP_OK);
	srupb_store_read_end(st);
	ck_assert(!found);
	memset(dg, 0x77, sizeof dg);
	ck_assert_int_eq(srupb_store_seen_find(st, dg, &found), SRUP_OK);
	ck_assert(!found);
	/* a commit that indexes nothing still goes through; sender 5 at its window evicts its own */
	c7.seen_max = 0;
	ck_assert_int_eq(srupb_store_commit(st, &c7, &stale), SRUP_OK);
	ck_assert(!c7.seen_full && !stale);
	ck_assert_int_eq(srupb_store_seen_room(st, 5, 3, &room), SRUP_OK);
	ck_assert(room);
	struct srupb_commit c8 = commit_for(5, 9, 8, 8);
	c8.seen_max = 3;
	ck_assert_int_eq(srupb_store_commit(st, &c8, &stale), SRUP_OK);
	ck_assert(!c8.seen_full);
	memset(dg, 3, sizeof dg);
	ck_assert_int_eq(srupb_store_seen_find(st, dg, &found), SRUP_OK);
	ck_assert(!found);
	memset(dg, 11, sizeof dg);
	ck_assert_int_eq(srupb_store_seen_find(st, dg, &found), SRUP_OK);
	ck_assert(found);
	srupb_store_close(st);
	cleanup_dir();
}
END_TEST

START_TEST(test_store_membership_and_deregistration)
{
	struct srupb_store *st = fresh();
	bool stale = false;
	bool found = false;
	struct srupb_keyrec rec;
	uint64_t seq = 1;

	ck_assert_int_eq(srupb_store_key_put(st, 0xd, SRUPB_ROLE_DEVICE, "K", 1), SRUP_OK);
	for (uint64_t server = 0xa; server <= 0xc; server++) {
		struct srupb_commit c = commit_for(server, 0xd, seq++, (uint8_t)server);
		c.member_op = SRUPB_MEMBER_JOIN;
		c.member_device = 0xd;
		c.member_server = server;
		ck_assert_int_eq(srupb_store_commit(st, &c, &stale), SRUP_OK);
	}
	struct srupb_commit c = commit_for(0xa, 0xd, seq++, 0x20);
	c.member_op = SRUPB_MEMBER_LEAVE;
	c.member_device = 0xd;
	c.member_server = 0xa;
	ck_assert_int_eq(srupb_store_commit(st, &c, &stale), SRUP_OK);
	ck_assert_uint_eq(c.n_removed, 1);
	ck_assert_uint_eq(c.removed[0], 0xa);
	ck_assert_int_eq(srupb_store_read_begin(st), SRUP_OK);
	ck_assert_int_eq(srupb_store_member_find(st, 0xd, 0xa, &found), SRUP_OK);
	ck_assert(!found);
	ck_assert_int_eq(srupb_store_member_find(st, 0xd, 0xb, &found), SRUP_OK);
	ck_assert(found);
	srupb_store_read_end(st);

	c = commit_for(0xd, 0xd, 100, 0x21);
	c.member_op = SRUPB_MEMBER_LEAVE_ALL;
	c.member_device = 0xd;
	c.revoke = true;
	ck_assert_int_eq(srupb_store_commit(st, &c, &stale), SRUP_OK);
	ck_assert_uint_eq(c.n_removed, 2);
	ck_assert_int_eq(srupb_store_read_begin(st), SRUP_OK);
	ck_assert_int_eq(srupb_store_member_find(st, 0xd, 0xb, &found), SRUP_OK);
	ck_assert(!found);
	ck_assert_int_eq(srupb_store_member_find(st, 0xd, 0xc, &found), SRUP_OK);
	ck_assert(!found);
	ck_assert_int_eq(srupb_store_key_find(st, 0xd, &rec, &found), SRUP_OK);
	ck_assert(found);
	ck_assert_uint_eq(rec.status, SRUPB_KEY_REVOKED);
	srupb_store_read_end(st);
	srupb_store_close(st);
	cleanup_dir();
}
END_TEST

static int collect_member(uint64_t device, uint64_t server, uint64_t joined, void *arg)
{
	uint64_t *out = arg;
	ck_assert_uint_gt(joined, 0);
	out[++out[0]] = device << 8 | server;
	return out[0] >= 3; /* a page of three */
}

START_TEST(test_store_member_list_and_remove)
{
	struct srupb_store *st = fresh();
	bool stale = false;
	bool found = false;
	uint64_t got[8];
	uint64_t seq = 1;

	for (uint64_t d = 1; d <= 2; d++) {
		for (uint64_t server = 0xa; server <= 0xc; server++) {
			struct srupb_commit c = commit_for(server, d, seq, (uint8_t)seq);
			seq++;
			c.member_op = SRUPB_MEMBER_JOIN;
			c.member_device = d;
			c.member_server = server;
			ck_assert_int_eq(srupb_store_commit(st, &c, &stale), SRUP_OK);
		}
	}
	memset(got, 0, sizeof got);
	ck_assert_int_eq(srupb_store_member_foreach(st, 0, 0, 0, collect_member, got), SRUP_OK);
	ck_assert_uint_eq(got[0], 3);
	ck_assert_uint_eq(got[1], 0x10a);
	ck_assert_uint_eq(got[3], 0x10c);
	/* the next page starts at the cursor (the caller skips the cursor entry itself) */
	memset(got, 0, sizeof got);
	ck_assert_int_eq(srupb_store_member_foreach(st, 0, 1, 0xc, collect_member, got), SRUP_OK);
	ck_assert_uint_eq(got[1], 0x10c);
	ck_assert_uint_eq(got[2], 0x20a);
	/* one device only */
	memset(got, 0, sizeof got);
	ck_assert_int_eq(srupb_store_member_foreach(st, 2, 0, 0, collect_member, got), SRUP_OK);
	ck_assert_uint_eq(got[0], 3);
	ck_assert_uint_eq(got[1], 0x20a);
	ck_assert_int_eq(srupb_store_member_remove(st, 2, 0xb, &found), SRUP_OK);
	ck_assert(found);
	ck_assert_int_eq(srupb_store_member_remove(st, 2, 0xb, &found), SRUP_OK);
	ck_assert(!found);
	memset(got, 0, sizeof got);
	ck_assert_int_eq(srupb_store_member_foreach(st, 2, 0, 0, collect_member, got), SRUP_OK);
	ck_assert_uint_eq(got[0], 2);
	ck_assert_uint_eq(got[2], 0x20c);
	srupb_store_close(st);
	cleanup_dir();
}
END_TEST

START_TEST(test_store_rotate_keeps_a_retiring_key)
{
	struct srupb_store *st = fresh();
	enum srupb_rotate_result res;
	enum srupb_add_result ares;
	struct srupb_keyrec rec;
	const char *pem = NULL;
	size_t len = 0;
	uint64_t until = 0;
	uint64_t gen;
	bool found = false;
	uint64_t later = (uint64_t)time(NULL) + 3600;

	ck_assert_int_eq(srupb_store_key_rotate(st, 7, "NEW", 3, later, &res), SRUP_OK);
	ck_assert_int_eq(res, SRUPB_ROTATE_UNKNOWN);
	ck_assert_int_eq(srupb_store_key_put(st, 7, SRUPB_ROLE_SERVER, "OLD", 3), SRUP_OK);
	ck_assert_int_eq(srupb_store_key_find(st, 7, &rec, &found), SRUP_OK);
	gen = rec.generation;
	srupb_store_read_end(st);
	ck_assert_int_eq(srupb_store_key_rotate(st, 7, "OLD", 3, later, &res), SRUP_OK);
	ck_assert_int_eq(res, SRUPB_ROTATE_SAME);
	ck_assert_int_eq(srupb_store_key_rotate(st, 7, "NEW", 3, later, &res), SRUP_OK);
	ck_assert_int_eq(res, SRUPB_ROTATE_DONE);
	ck_assert_int_eq(srupb_store_key_find(st, 7, &rec, &found), SRUP_OK);
	ck_assert(found);
	ck_assert_uint_eq(rec.role, SRUPB_ROLE_SERVER);
	ck_assert_uint_ne(rec.generation, gen);
	ck_assert_mem_eq(rec.pem, "NEW", 3);
	ck_assert_int_eq(srupb_store_retiring_find(st, 7, &until, &pem, &len, &found), SRUP_OK);
	ck_assert(found);
	ck_assert_uint_eq(until, later);
	ck_assert_uint_eq(len, 3);
	ck_assert_mem_eq(pem, "OLD", 3);
	srupb_store_read_end(st);
	/* any other write of the record ends the overlap: a forced add here */
	ck_assert_int_eq(srupb_store_key_add(st, 7, SRUPB_ROLE_SERVER, "NEWER", 5, true, &ares, NULL),
	                 SRUP_OK);
	ck_assert_int_eq(srupb_store_retiring_find(st, 7, &until, &pem, &len, &found), SRUP_OK);
	ck_assert(!found);
	srupb_store_read_end(st);
	/* rotation without overlap keeps nothing; revocation drops a retiring key and refuses */
	ck_assert_int_eq(srupb_store_key_rotate(st, 7, "N4", 2, 0, &res), SRUP_OK);
	ck_assert_int_eq(res, SRUPB_ROTATE_DONE);
	ck_assert_int_eq(srupb_store_retiring_find(st, 7, &until, &pem, &len, &found), SRUP_OK);
	ck_assert(!found);
	srupb_store_read_end(st);
	ck_assert_int_eq(srupb_store_key_rotate(st, 7, "N5", 2, later, &res), SRUP_OK);
	ck_assert_int_eq(srupb_store_key_revoke(st, 7, &found), SRUP_OK);
	ck_assert_int_eq(srupb_store_retiring_find(st, 7, &until, &pem, &len, &found), SRUP_OK);
	ck_assert(!found);
	srupb_store_read_end(st);
	ck_assert_int_eq(srupb_store_key_rotate(st, 7, "N6", 2, later, &res), SRUP_OK);
	ck_assert_int_eq(res, SRUPB_ROTATE_REVOKED);
	srupb_store_close(st);
	cleanup_dir();
}
END_TEST

/* durability map (MDB_WRITEMAP): commits are visible to another opener; it cannot be switched
 * by a reload, the other modes can. */
START_TEST(test_store_writemap_mode)
{
	struct srupb_store *st = NULL;
	struct srupb_store *ro = NULL;
	char err[256] = "";
	bool stale = false;
	bool found = false;
	struct srupb_mark m;
	snprintf(dir, sizeof dir, "/tmp/srupb-store-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(srupb_store_open(dir, false, SRUPB_SYNC_MAP, &st, err, sizeof err), SRUP_OK);
	struct srupb_commit c = commit_for(1, 2, 3, 4);
	ck_assert_int_eq(srupb_store_commit(st, &c, &stale), SRUP_OK);
	ck_assert_int_eq(srupb_store_set_sync(st, SRUPB_SYNC_OS), SRUP_ERR_INVAL);
	ck_assert_int_eq(srupb_store_set_sync(st, SRUPB_SYNC_MAP), SRUP_OK);
	srupb_store_writeback(st);
	ck_assert_int_eq(srupb_store_key_put(st, 9, SRUPB_ROLE_SERVER, "K", 1), SRUP_OK);
	srupb_store_writeback(st);
	srupb_store_close(st);
	ck_assert_int_eq(srupb_store_open(dir, true, SRUPB_SYNC_OS, &ro, err, sizeof err), SRUP_OK);
	ck_assert_int_eq(srupb_store_read_begin(ro), SRUP_OK);
	struct srupb_chan ch = {SRUPB_CHAN_DEVICE, 2, 0};
	ck_assert_int_eq(srupb_store_mark_find(ro, 1, &ch, &m, &found), SRUP_OK);
	ck_assert(found);
	ck_assert_uint_eq(m.seq, 3);
	srupb_store_read_end(ro);
	srupb_store_close(ro);
	ck_assert_int_eq(srupb_store_open(dir, false, SRUPB_SYNC_OS, &st, err, sizeof err), SRUP_OK);
	ck_assert_int_eq(srupb_store_set_sync(st, SRUPB_SYNC_FSYNC), SRUP_OK);
	ck_assert_int_eq(srupb_store_set_sync(st, SRUPB_SYNC_META), SRUP_OK);
	ck_assert_int_eq(srupb_store_set_sync(st, SRUPB_SYNC_MAP), SRUP_ERR_INVAL);
	srupb_store_close(st);
	cleanup_dir();
}
END_TEST

static struct srupb_store *reopen(void)
{
	struct srupb_store *st = NULL;
	char err[256] = "";
	ck_assert_msg(srupb_store_open(dir, false, SRUPB_SYNC_OS, &st, err, sizeof err) == SRUP_OK,
	              "%s", err);
	return st;
}

static void file_id(const char *name, uint8_t id[16])
{
	char path[160];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	int fd = open(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, id, 16, 64), 16);
	close(fd);
}

static void set_file_id(const char *name, const uint8_t id[16])
{
	char path[160];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	int fd = open(path, O_WRONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, id, 16, 64), 16);
	close(fd);
}

/* Item 16: LMDB holds a store id, the journal and the seen index carry it; parts that disagree
 * (data.mdb emptied, or a file of another store) are refused with one line saying what to do;
 * a store from before ids gets one and its files adopt it. */
START_TEST(test_store_id_binds_files_and_refuses_disagreement)
{
	static const uint8_t zero[16];
	uint8_t sid[16];
	uint8_t fid[16];
	size_t n = 1;
	struct srupb_store *st = fresh();

	srupb_store_id(st, sid);
	ck_assert(memcmp(sid, zero, 16) != 0);
	ck_assert_int_eq(srupb_store_journal_open(st, 64), SRUP_OK);
	ck_assert_int_eq(srupb_store_seen_open(st, 64), SRUP_OK);
	ck_assert_int_eq(srupb_store_key_put(st, 5, SRUPB_ROLE_DEVICE, "K", 1), SRUP_OK);
	srupb_store_close(st);
	file_id("marks.journal", fid);
	ck_assert(memcmp(fid, sid, 16) == 0);
	file_id("seen.idx", fid);
	ck_assert(memcmp(fid, sid, 16) == 0);

	/* the same store again: fine, same id */
	st = reopen();
	srupb_store_id(st, fid);
	ck_assert(memcmp(fid, sid, 16) == 0);
	ck_assert_int_eq(srupb_store_journal_open(st, 64), SRUP_OK);
	ck_assert_int_eq(srupb_store_seen_open(st, 64), SRUP_OK);
	srupb_store_close(st);

	/* data.mdb truncated to 0: LMDB opens empty, the journal is refused */
	char mdb[128];
	snprintf(mdb, sizeof mdb, "%s/data.mdb", dir);
	ck_assert_int_eq(truncate(mdb, 0), 0);
	st = reopen();
	ck_assert_int_eq(srupb_store_key_count(st, &n), SRUP_OK);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(srupb_store_journal_open(st, 64), SRUP_ERR_INVAL);
	const char *e = srupb_store_strerror(st);
	ck_assert_msg(strstr(e, "data.mdb has no store id") != NULL && strstr(e, "marks.journal") &&
	                      strstr(e, "restore") && strstr(e, "remove marks.journal and seen.idx"),
	              "%s", e);
	ck_assert_int_eq(srupb_store_seen_open(st, 64), SRUP_ERR_INVAL);
	ck_assert_msg(strstr(srupb_store_strerror(st), "seen.idx belongs to store") != NULL, "%s",
	              srupb_store_strerror(st));
	srupb_store_close(st);
	/* ... and on every later start (LMDB now has an id of its own): still refused */
	st = reopen();
	ck_assert_int_eq(srupb_store_journal_open(st, 64), SRUP_ERR_INVAL);
	ck_assert_msg(strstr(srupb_store_strerror(st), "disagree") != NULL, "%s",
	              srupb_store_strerror(st));
	srupb_store_close(st);
	/* the documented way out: remove both files, knowingly */
	char cmd[256];
	snprintf(cmd, sizeof cmd, "rm %s/marks.journal %s/seen.idx", dir, dir);
	ck_assert_int_eq(system(cmd), 0);
	st = reopen();
	ck_assert_int_eq(srupb_store_journal_open(st, 64), SRUP_OK);
	ck_assert_int_eq(srupb_store_seen_open(st, 64), SRUP_OK);
	srupb_store_id(st, sid);
	srupb_store_close(st);

	/* a store from before ids: no id in LMDB nor in the files; it gets one, the files adopt it */
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	MDB_dbi dbi;
	MDB_val k = {8, (void *)"store_id"};
	ck_assert_int_eq(mdb_env_create(&env), 0);
	ck_assert_int_eq(mdb_env_set_maxdbs(env, 8), 0);
	ck_assert_int_eq(mdb_env_set_mapsize(env, (size_t)1 << 30), 0);
	ck_assert_int_eq(mdb_env_open(env, dir, 0, 0600), 0);
	ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
	ck_assert_int_eq(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
	ck_assert_int_eq(mdb_del(txn, dbi, &k, NULL), 0);
	ck_assert_int_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	set_file_id("marks.journal", zero);
	set_file_id("seen.idx", zero);
	st = reopen();
	srupb_store_id(st, sid);
	ck_assert(memcmp(sid, zero, 16) != 0);
	ck_assert_int_eq(srupb_store_journal_open(st, 64), SRUP_OK);
	ck_assert_int_eq(srupb_store_seen_open(st, 64), SRUP_OK);
	srupb_store_close(st);
	file_id("marks.journal", fid);
	ck_assert(memcmp(fid, sid, 16) == 0);
	file_id("seen.idx", fid);
	ck_assert(memcmp(fid, sid, 16) == 0);

	/* a file of another store */
	uint8_t other[16];
	memset(other, 0xab, sizeof other);
	set_file_id("seen.idx", other);
	st = reopen();
	ck_assert_int_eq(srupb_store_journal_open(st, 64), SRUP_OK);
	ck_assert_int_eq(srupb_store_seen_open(st, 64), SRUP_ERR_INVAL);
	ck_assert_msg(strstr(srupb_store_strerror(st), "seen.idx belongs to store abababab") != NULL,
	              "%s", srupb_store_strerror(st));
	srupb_store_close(st);
	cleanup_dir();
}
END_TEST

START_TEST(test_store_open_errors)
{
	struct srupb_store *st = NULL;
	char err[256] = "";
	ck_assert_int_ne(
	        srupb_store_open("/proc/nonexistent/x", false, SRUPB_SYNC_OS, &st, err, sizeof err),
	        SRUP_OK);
	ck_assert_ptr_null(st);
	ck_assert(strlen(err) > 0);
	ck_assert_int_ne(srupb_store_open("/tmp/srupb-does-not-exist-42", true, SRUPB_SYNC_OS, &st, err,
	                                  sizeof err),
	                 SRUP_OK);
	ck_assert_ptr_null(st);
	srupb_store_close(NULL);
}
END_TEST

Suite *plugin_store_suite(void)
{
	Suite *s = suite_create("plugin_store");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_store_keys_put_get_revoke_list);
	tcase_add_test(tc, test_store_key_add_refuses_taken_and_revoked_ids);
	tcase_add_test(tc, test_store_foreach_in_id_order_and_put_many);
	tcase_add_test(tc, test_store_marks_only_move_up_and_persist);
	tcase_add_test(tc, test_store_mark_count_with_and_without_journal);
	tcase_add_test(tc, test_store_seen_index_is_bounded);
	tcase_add_test(tc, test_store_membership_and_deregistration);
	tcase_add_test(tc, test_store_member_list_and_remove);
	tcase_add_test(tc, test_store_rotate_keeps_a_retiring_key);
	tcase_add_test(tc, test_store_writemap_mode);
	tcase_add_test(tc, test_store_id_binds_files_and_refuses_disagreement);
	tcase_add_test(tc, test_store_open_errors);
	suite_add_tcase(s, tc);
	return s;
}
