/* SPDX-License-Identifier: MIT
 * test_journal.c - unit tests of journal.c and of the store's journal path: records survive a
 * process that dies without closing, a torn record ends the valid prefix, a new epoch forgets
 * the old records, capacity changes, the lock, bad files, and through the store: a broker
 * killed with marks only in the journal loses none of them. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>

#include "journal.h"
#include "srupb.h"
#include "testutil.h"

static char dir[64];
static char path[128];

static void setup_dir(void)
{
	snprintf(dir, sizeof dir, "/tmp/srupb-journal-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/marks.journal", dir);
}

static void cleanup_dir(void)
{
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static struct srupb_jentry entry(uint64_t sender, uint64_t a, uint64_t seq)
{
	struct srupb_jentry e;
	memset(&e, 0, sizeof e);
	e.sender = sender;
	e.chan.kind = SRUPB_CHAN_DEVICE;
	e.chan.a = a;
	e.mark.seq = seq;
	memset(e.mark.digest, (int)(seq & 0xff), sizeof e.mark.digest);
	memset(e.mark.client, 0x5a, sizeof e.mark.client);
	return e;
}

static struct srupb_journal *open_ok(size_t cap)
{
	struct srupb_journal *j = NULL;
	char err[512] = "";
	ck_assert_msg(srupb_journal_open(path, cap, &j, err, sizeof err) == SRUP_OK, "%s", err);
	return j;
}

START_TEST(test_journal_records_survive_and_index)
{
	setup_dir();
	struct srupb_journal *j = open_ok(64);
	struct srupb_mark m;
	struct srupb_chan ch = {SRUPB_CHAN_DEVICE, 7, 0};

	ck_assert_uint_eq(srupb_journal_count(j), 0);
	ck_assert(!srupb_journal_mark_find(j, 1, &ch, &m));
	for (uint64_t seq = 1; seq <= 40; seq++) {
		struct srupb_jentry e = entry(1 + seq % 3, 7, seq);
		srupb_journal_append(j, &e);
	}
	ck_assert(srupb_journal_mark_find(j, 1, &ch, &m));
	ck_assert_uint_eq(m.seq, 39);
	ck_assert(srupb_journal_mark_find(j, 2, &ch, &m));
	ck_assert_uint_eq(m.seq, 40);
	ck_assert_uint_eq(m.digest[0], 40);
	srupb_journal_close(j); /* as a process that dies: nothing folded, nothing reset */

	j = open_ok(64);
	ck_assert_uint_eq(srupb_journal_count(j), 40);
	ck_assert(srupb_journal_mark_find(j, 3, &ch, &m));
	ck_assert_uint_eq(m.seq, 38);
	struct srupb_jentry got;
	srupb_journal_get(j, 9, &got);
	ck_assert_uint_eq(got.mark.seq, 10);
	ck_assert_uint_eq(got.sender, 2);
	ck_assert_uint_eq(got.chan.a, 7);

	/* a new epoch forgets every record and the index */
	char err[256];
	ck_assert_int_eq(srupb_journal_reset(j, err, sizeof err), SRUP_OK);
	ck_assert_uint_eq(srupb_journal_count(j), 0);
	ck_assert(!srupb_journal_mark_find(j, 3, &ch, &m));
	struct srupb_jentry e = entry(9, 7, 100);
	srupb_journal_append(j, &e);
	srupb_journal_close(j);
	j = open_ok(64);
	ck_assert_uint_eq(srupb_journal_count(j), 1);
	ck_assert(!srupb_journal_mark_find(j, 3, &ch, &m));
	ck_assert(srupb_journal_mark_find(j, 9, &ch, &m));

	/* full */
	for (uint64_t seq = 101; !srupb_journal_full(j); seq++) {
		e = entry(9, 8, seq);
		srupb_journal_append(j, &e);
	}
	ck_assert_uint_eq(srupb_journal_count(j), 64);
	srupb_journal_close(j);
	cleanup_dir();
}
END_TEST

START_TEST(test_journal_torn_record_ends_prefix)
{
	setup_dir();
	struct srupb_journal *j = open_ok(64);
	for (uint64_t seq = 1; seq <= 10; seq++) {
		struct srupb_jentry e = entry(1, 7, seq);
		srupb_journal_append(j, &e);
	}
	srupb_journal_close(j);
	/* record 6 (seq 7) torn: its body changed after the check word was computed */
	int fd = open(path, O_RDWR);
	ck_assert_int_ge(fd, 0);
	uint8_t junk = 0xee;
	ck_assert_int_eq(pwrite(fd, &junk, 1, 4096 + 6 * 128 + 30), 1);
	close(fd);
	j = open_ok(64);
	ck_assert_uint_eq(srupb_journal_count(j), 6);
	struct srupb_mark m;
	struct srupb_chan ch = {SRUPB_CHAN_DEVICE, 7, 0};
	ck_assert(srupb_journal_mark_find(j, 1, &ch, &m));
	ck_assert_uint_eq(m.seq, 6);
	srupb_journal_close(j);
	cleanup_dir();
}
END_TEST

START_TEST(test_journal_capacity_lock_and_bad_files)
{
	setup_dir();
	struct srupb_journal *j = open_ok(16);
	struct srupb_journal *k = NULL;
	char err[512] = "";

	ck_assert_int_eq(srupb_journal_open(path, 16, &k, err, sizeof err), SRUP_ERR_INVAL);
	ck_assert_ptr_null(k);
	ck_assert_msg(strstr(err, "in use by another broker") != NULL, "%s", err);
	for (uint64_t seq = 1; seq <= 5; seq++) {
		struct srupb_jentry e = entry(1, 7, seq);
		srupb_journal_append(j, &e);
	}
	srupb_journal_close(j);
	/* another capacity: the file is read with its own, then resized at the reset */
	j = open_ok(32);
	ck_assert_uint_eq(srupb_journal_count(j), 5);
	ck_assert_int_eq(srupb_journal_reset(j, err, sizeof err), SRUP_OK);
	for (uint64_t seq = 6; seq <= 30; seq++) {
		struct srupb_jentry e = entry(1, 7, seq);
		srupb_journal_append(j, &e);
	}
	ck_assert(!srupb_journal_full(j));
	srupb_journal_close(j);
	j = open_ok(32);
	ck_assert_uint_eq(srupb_journal_count(j), 25);
	srupb_journal_close(j);

	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	for (int i = 0; i < 200; i++) {
		fputs("not a journal ", f);
	}
	fclose(f);
	ck_assert_int_eq(srupb_journal_open(path, 16, &k, err, sizeof err), SRUP_ERR_INVAL);
	ck_assert_msg(strstr(err, "move it away") != NULL, "%s", err);
	/* sized but never given a header (killed at creation): starts afresh */
	ck_assert_int_eq(truncate(path, 0), 0);
	ck_assert_int_eq(truncate(path, 4096 + 16 * 128), 0);
	j = open_ok(16);
	ck_assert_uint_eq(srupb_journal_count(j), 0);
	srupb_journal_close(j);
	srupb_journal_close(NULL);
	cleanup_dir();
}
END_TEST

static struct srupb_commit commit_for(uint64_t sender, uint64_t chan_a, uint64_t seq)
{
	struct srupb_commit c;
	memset(&c, 0, sizeof c);
	c.sender = sender;
	c.chan.kind = SRUPB_CHAN_DEVICE;
	c.chan.a = chan_a;
	c.mark.seq = seq;
	memset(c.mark.digest, (int)(seq & 0xff), sizeof c.mark.digest);
	c.mark.digest[1] = (uint8_t)(seq >> 8);
	memset(c.mark.client, 0x5a, sizeof c.mark.client);
	c.seen_max = 1000;
	return c;
}

START_TEST(test_store_journal_survives_kill)
{
	setup_dir();
	char err[256] = "";
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		/* the "broker": marks go to the journal only, then it dies without closing */
		struct srupb_store *st = NULL;
		bool stale = false;
		if (srupb_store_open(dir, false, SRUPB_SYNC_MAP, &st, err, sizeof err) != SRUP_OK ||
		    srupb_store_journal_open(st, 64) != SRUP_OK || srupb_store_seen_open(st, 1000)) {
			_exit(2);
		}
		for (uint64_t seq = 1; seq <= 150; seq++) { /* two folds, then 22 journalled */
			struct srupb_commit c = commit_for(5, 9, seq);
			if (srupb_store_commit(st, &c, &stale) != SRUP_OK || stale) {
				_exit(3);
			}
		}
		if (srupb_store_journal_count(st) != 150 - 128) {
			_exit(4);
		}
		raise(SIGKILL);
		_exit(5);
	}
	int status = 0;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child status %d", status);

	/* LMDB alone (as `srup keys` sees it) has only the folded marks */
	struct srupb_store *st = NULL;
	struct srupb_mark m;
	struct srupb_chan ch = {SRUPB_CHAN_DEVICE, 9, 0};
	bool found = false;
	bool stale = false;
	ck_assert_int_eq(srupb_store_open(dir, false, SRUPB_SYNC_MAP, &st, err, sizeof err), SRUP_OK);
	ck_assert_int_eq(srupb_store_read_begin(st), SRUP_OK);
	ck_assert_int_eq(srupb_store_mark_find(st, 5, &ch, &m, &found), SRUP_OK);
	ck_assert(found);
	ck_assert_uint_eq(m.seq, 128);
	srupb_store_read_end(st);
	/* the restarted broker folds the journal before anything else */
	ck_assert_int_eq(srupb_store_journal_open(st, 64), SRUP_OK);
	ck_assert_uint_eq(srupb_store_journal_count(st), 0);
	ck_assert_int_eq(srupb_store_seen_open(st, 1000), SRUP_OK);
	ck_assert_int_eq(srupb_store_read_begin(st), SRUP_OK);
	ck_assert_int_eq(srupb_store_mark_find(st, 5, &ch, &m, &found), SRUP_OK);
	ck_assert_uint_eq(m.seq, 150);
	ck_assert_uint_eq(m.digest[0], 150);
	srupb_store_read_end(st);
	struct srupb_commit c = commit_for(5, 9, 150);
	ck_assert_int_eq(srupb_store_commit(st, &c, &stale), SRUP_OK);
	ck_assert(stale);
	for (uint64_t seq = 1; seq <= 150; seq++) {
		struct srupb_commit d = commit_for(5, 9, seq);
		ck_assert_int_eq(srupb_store_seen_find(st, d.mark.digest, &found), SRUP_OK);
		ck_assert_msg(found, "seen entry of seq %u lost", (unsigned)seq);
	}
	/* a membership commit folds the journal first, then commits in LMDB */
	c = commit_for(5, 9, 151);
	ck_assert_int_eq(srupb_store_commit(st, &c, &stale), SRUP_OK);
	ck_assert_uint_eq(srupb_store_journal_count(st), 1);
	c = commit_for(5, 9, 152);
	c.member_op = SRUPB_MEMBER_JOIN;
	c.member_device = 9;
	c.member_server = 5;
	ck_assert_int_eq(srupb_store_commit(st, &c, &stale), SRUP_OK);
	ck_assert(!stale);
	ck_assert_uint_eq(srupb_store_journal_count(st), 0);
	/* switching to fsync folds and stops journalling */
	c = commit_for(5, 9, 153);
	ck_assert_int_eq(srupb_store_commit(st, &c, &stale), SRUP_OK);
	ck_assert_uint_eq(srupb_store_journal_count(st), 1);
	ck_assert_int_eq(srupb_store_set_sync(st, SRUPB_SYNC_FSYNC), SRUP_ERR_INVAL); /* map fixed */
	srupb_store_close(st);

	ck_assert_int_eq(srupb_store_open(dir, false, SRUPB_SYNC_OS, &st, err, sizeof err), SRUP_OK);
	ck_assert_int_eq(srupb_store_journal_open(st, 64), SRUP_OK);
	ck_assert_int_eq(srupb_store_set_sync(st, SRUPB_SYNC_FSYNC), SRUP_OK);
	c = commit_for(5, 9, 154);
	ck_assert_int_eq(srupb_store_commit(st, &c, &stale), SRUP_OK);
	ck_assert_uint_eq(srupb_store_journal_count(st), 0);
	ck_assert_int_eq(srupb_store_set_sync(st, SRUPB_SYNC_OS), SRUP_OK);
	c = commit_for(5, 9, 155);
	ck_assert_int_eq(srupb_store_commit(st, &c, &stale), SRUP_OK);
	ck_assert_uint_eq(srupb_store_journal_count(st), 1);
	srupb_store_close(st); /* folds */
	ck_assert_int_eq(srupb_store_open(dir, true, SRUPB_SYNC_OS, &st, err, sizeof err), SRUP_OK);
	ck_assert_int_eq(srupb_store_read_begin(st), SRUP_OK);
	ck_assert_int_eq(srupb_store_mark_find(st, 5, &ch, &m, &found), SRUP_OK);
	ck_assert_uint_eq(m.seq, 155);
	ck_assert_int_eq(srupb_store_member_find(st, 9, 5, &found), SRUP_OK);
	ck_assert(found);
	srupb_store_read_end(st);
	srupb_store_close(st);
	cleanup_dir();
}
END_TEST

Suite *plugin_journal_suite(void)
{
	Suite *s = suite_create("plugin_journal");
	TCase *tc = tcase_create("journal");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_journal_records_survive_and_index);
	tcase_add_test(tc, test_journal_torn_record_ends_prefix);
	tcase_add_test(tc, test_journal_capacity_lock_and_bad_files);
	tcase_add_test(tc, test_store_journal_survives_kill);
	suite_add_tcase(s, tc);
	return s;
}
