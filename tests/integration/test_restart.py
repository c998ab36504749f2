#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# test_restart.py - issue 3 item 7: after kill -9 and a restart on the same store, a replay of
# any message accepted before the crash is dropped (the mark was committed before delivery);
# membership survives too, and fresh messages still pass.
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import srupharness as h  # noqa: E402

S = {}


def test_accept_then_crash(lab, check):
    check(lab.join(lab.server, lab.dev1), "join of dev1 to server failed")
    ch = "SRUP/%s" % lab.dev1.hex
    S["ch"] = ch
    dev = lab.connect(lab.dev1)
    dev.subscribe(ch)
    srv = lab.connect(lab.server)
    srv.subscribe(ch + "/#")
    acc = []
    for n in range(3):
        m = lab.msg(lab.server, "ACTION", action_id=n)
        h.expect_accept(lab, check, srv, ch, m, "server ACTION %d" % n, receivers=[dev])
        acc.append((lab.server, m))
        m = lab.msg(lab.dev1, "DATA", data_id=b"n", data=bytes([n]))
        h.expect_accept(lab, check, dev, ch, m, "dev1 DATA %d" % n, receivers=[srv])
        acc.append((lab.dev1, m))
    # The last one: kill -9 as soon as its PUBACK arrives, with no pause at all.
    m = lab.msg(lab.server, "ACTION", action_id=99)
    rc = srv.publish(ch, m)
    check(h.delivered(rc), "last message before the crash: PUBACK %s" % h.rc_name(rc))
    acc.append((lab.server, m))
    lab.broker.kill9()
    lab.close_clients()
    S["accepted"] = acc
    lab.broker.start()
    check(lab.broker.alive(), "broker did not restart")


def test_replays_after_restart_dropped(lab, check):
    ch = S["ch"]
    dev = lab.connect(lab.dev1)
    dev.subscribe(ch)
    srv = lab.connect(lab.server)
    srv.subscribe(ch + "/#")
    for i, (ident, m) in enumerate(S["accepted"]):
        c = srv if ident is lab.server else dev
        watch = [dev] if ident is lab.server else [srv]
        h.expect_drop(lab, check, c, ch, m, "replay",
                      "pre-crash message %d replayed after restart" % i, watchers=watch)


def test_fresh_messages_and_membership_after_restart(lab, check):
    ch = S["ch"]
    dev = lab.connect(lab.dev1)
    dev.subscribe(ch)
    srv = lab.connect(lab.server)
    srv.subscribe(ch + "/#")
    m = lab.msg(lab.server, "ACTION", action_id=100)
    h.expect_accept(lab, check, srv, ch, m, "fresh server ACTION", receivers=[dev])
    m = lab.msg(lab.dev1, "DATA", data_id=b"n", data=b"fresh")
    h.expect_accept(lab, check, dev, ch, m, "fresh dev1 DATA reaches the joined server",
                    receivers=[srv])


def test_second_crash(lab, check):
    """Marks committed after a restart also survive the next crash."""
    ch = S["ch"]
    srv = lab.connect(lab.server)
    m = lab.msg(lab.server, "ACTION", action_id=101)
    rc = srv.publish(ch, m)
    check(h.delivered(rc), "PUBACK %s" % h.rc_name(rc))
    lab.broker.kill9()
    lab.close_clients()
    lab.broker.start()
    srv = lab.connect(lab.server)
    h.expect_drop(lab, check, srv, ch, m, "replay", "replay after the second crash")


def test_cross_channel_replay_after_crash(lab, check):
    """The seen index survives kill -9 too: the server's message to dev1, taken just before the
    crash, replayed on dev2's channel (where its sequence id is above the mark) is dropped."""
    check(lab.join(lab.server, lab.dev2), "join of dev2 to server failed")
    ch1 = S["ch"]
    ch2 = "SRUP/%s" % lab.dev2.hex
    srv = lab.connect(lab.server)
    m2 = lab.msg(lab.server, "ACTION", action_id=200)
    h.expect_accept(lab, check, srv, ch2, m2, "to dev2, low seq")
    m1 = lab.msg(lab.server, "ACTION", seq=lab.server.seq + 1000, action_id=201)
    rc = srv.publish(ch1, m1)
    check(h.delivered(rc), "to dev1, high seq: PUBACK %s" % h.rc_name(rc))
    lab.broker.kill9()
    lab.close_clients()
    lab.broker.start()
    d2 = lab.connect(lab.dev2)
    d2.subscribe(ch2)
    srv = lab.connect(lab.server)
    h.expect_drop(lab, check, srv, ch2, m1, "replay",
                  "dev1's message on dev2's channel after the crash", watchers=[d2])


if __name__ == "__main__":
    h.main([test_accept_then_crash, test_replays_after_restart_dropped,
            test_fresh_messages_and_membership_after_restart, test_second_crash,
            test_cross_channel_replay_after_crash])
