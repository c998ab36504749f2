#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# test_gauges.py - issue 15: the store gauges under $SYS/broker/srup/ (store/keys, store/marks,
# store/seen_used, store/seen_capacity, joins/pending) show the true sizes of the broker's state
# and move with it: keys added and revoked by `srup keys` while the broker runs, marks made by
# accepted messages (not by drops), a join left pending and then answered.
import os
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import srupharness as h  # noqa: E402

GAUGES = ("store/keys", "store/marks", "store/seen_used", "store/seen_capacity", "joins/pending")


def gauges_become(lab, want, timeout=5.0):
    """Wait until every gauge in want has its value (they are read once a second); the last
    counters seen."""
    deadline = time.monotonic() + timeout * h.SLOW
    while True:
        c = lab.counters(wait=1.2)
        if all(c.get(k) == v for k, v in want.items()) or time.monotonic() > deadline:
            return c


def check_gauges(lab, check, want, what):
    c = gauges_become(lab, want)
    got = {k: c.get(k) for k in want}
    h.log("    %s: %r" % (what, got))
    for k, v in want.items():
        check(c.get(k) == v, "%s: $SYS/broker/srup/%s is %r, want %r" % (what, k, c.get(k), v))
    return c


def stored_keys(lab):
    """Key records as `srup keys list` (read-only, next to the running broker) prints them."""
    out = h.run([h.SRUP, "keys", "list", "--store", lab.store]).stdout.decode()
    return len([l for l in out.splitlines() if l.strip()])


def test_gauges_follow_the_state(lab, check):
    keys = stored_keys(lab)
    check(keys == 6, "`srup keys list` shows %d keys, want the lab's 6" % keys)
    c = lab.counters()
    for g in GAUGES:
        check(g in c, "$SYS/broker/srup/%s not published" % g)
    want = {"store/keys": keys, "store/marks": 0, "store/seen_used": 0,
            "store/seen_capacity": 262144, "joins/pending": 0}
    check_gauges(lab, check, want, "at start")

    # Keys added and revoked by another process: a revoked key keeps its record.
    extra = h.Identity("extra", lab.dir, "device")
    lab.keys_add(extra)
    want["store/keys"] += 1
    check_gauges(lab, check, want, "after `srup keys add`")
    lab.keys_revoke(extra)
    check_gauges(lab, check, want, "after `srup keys revoke`")
    check(stored_keys(lab) == want["store/keys"], "`srup keys list` disagrees with store/keys")

    # A join request: pending until answered; its (dev1, join channel) mark and seen entry.
    d = lab.connect(lab.dev1)
    s = lab.connect(lab.server)
    tok = lab.token()
    rc = d.publish("SRUP/servers/%s/%s" % (lab.server.hex, lab.dev1.hex),
                   lab.msg(lab.dev1, "JOIN_REQ", token=tok))
    check(h.delivered(rc), "JOIN_REQ: PUBACK %s" % h.rc_name(rc))
    want["joins/pending"] = 1
    want["store/marks"] += 1
    want["store/seen_used"] += 1
    check_gauges(lab, check, want, "join requested")

    # The answer ends the pending join; the server's mark on dev1's channel is new.
    rc = s.publish("SRUP/%s" % lab.dev1.hex,
                   lab.msg(lab.server, "RESPONSE", token=tok, status=h.JOIN_SUCCESS))
    check(h.delivered(rc), "RESPONSE: PUBACK %s" % h.rc_name(rc))
    want["joins/pending"] = 0
    want["store/marks"] += 1
    want["store/seen_used"] += 1
    check_gauges(lab, check, want, "join answered")

    # More messages on the same channel: no new mark, one seen entry each.
    for i in range(3):
        rc = s.publish("SRUP/%s" % lab.dev1.hex, lab.msg(lab.server, "ACTION", action_id=i))
        check(h.delivered(rc), "ACTION %d: PUBACK %s" % (i, h.rc_name(rc)))
    want["store/seen_used"] += 3
    check_gauges(lab, check, want, "three actions")

    # Drops change nothing: a replay and a bad signature.
    m = lab.msg(lab.server, "ACTION", action_id=9)
    rc = s.publish("SRUP/%s" % lab.dev1.hex, m)
    check(h.delivered(rc), "ACTION: PUBACK %s" % h.rc_name(rc))
    want["store/seen_used"] += 1
    # (from another connection: the same one may resend once, as an MQTT retransmission)
    rc = lab.connect(lab.server).publish("SRUP/%s" % lab.dev1.hex, m)
    check(rc == h.RC_NOT_AUTHORIZED, "replay: PUBACK %s" % h.rc_name(rc))
    bad = bytearray(lab.msg(lab.server, "ACTION", action_id=10))
    bad[-2] ^= 1
    rc = s.publish("SRUP/%s" % lab.dev1.hex, bytes(bad))
    check(rc == h.RC_NOT_AUTHORIZED, "bad signature: PUBACK %s" % h.rc_name(rc))
    check_gauges(lab, check, want, "after a replay and a forgery")

    # A second device on a new channel: a new mark. Not indexed in the seen index: a device's
    # DATA on its own channel is allowed nowhere else, so it cannot be replayed elsewhere.
    rc = lab.connect(lab.dev2).publish("SRUP/%s" % lab.dev2.hex,
                                       lab.msg(lab.dev2, "DATA", data_id=b"t", data=b"1"))
    check(h.delivered(rc), "dev2 DATA: PUBACK %s" % h.rc_name(rc))
    want["store/marks"] += 1
    check_gauges(lab, check, want, "dev2 data")
    lab.close_clients()

    # After a restart (the journal folded into LMDB) the same values, read from the store.
    lab.broker.stop()
    lab.broker.start()
    check_gauges(lab, check, want, "after a restart")
    # ... where LMDB itself (lmdb-utils' mdb_stat) agrees: the journal was folded at the start.
    out = h.run(["mdb_stat", "-s", "marks", lab.store]).stdout.decode()
    entries = [int(l.split(":")[1]) for l in out.splitlines() if l.strip().startswith("Entries:")]
    check(entries == [want["store/marks"]], "mdb_stat -s marks: %r, want Entries: %d" %
          (out, want["store/marks"]))


if __name__ == "__main__":
    h.main([test_gauges_follow_the_state])
