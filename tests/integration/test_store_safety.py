#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# test_store_safety.py - issue 10, items 3 and 16: one device flooding signed JOIN_REQs cannot
# make the seen index forget a server's command (its cross-channel replay is still dropped); a
# full seen index refuses (seen_index_full) instead of forgetting; a store whose parts disagree
# (data.mdb truncated to 0 beside a marks journal and seen index) refuses to start.
import os
import re
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import srupharness as h  # noqa: E402

FLOOD = 300  # JOIN_REQs from dev1: far beyond its window, and beyond a 128-entry global ring


def policy_lab(seen_lines):
    """A lab whose policy is the shipped one with its seen_index/seen_window lines replaced."""
    lab = h.Lab(start=False)
    text = lab.policy_text()
    text = re.sub(r"(?m)^\s*(seen_index|seen_window)\b.*$", "", text)
    path = os.path.join(lab.dir, "store-safety.policy")
    with open(path, "w") as f:
        f.write(text + "\n" + "\n".join(seen_lines) + "\n")
    lab.broker.policy = path
    lab.broker.start()
    return lab


def flood_lab():
    return policy_lab(["seen_index 4096", "seen_window server 1024", "seen_window device 8",
                       "seen_window observer 8"])


def full_lab():
    return policy_lab(["seen_index 16", "seen_window server 8", "seen_window device 8",
                       "seen_window observer 8"])


def join_topic(lab, dev):
    return "SRUP/servers/%s/%s" % (lab.server.hex, dev.hex)


def flood(lab, check, client, dev, n):
    """n signed JOIN_REQs from dev on its join topic; returns the PUBACK codes."""
    codes = []
    for _ in range(n):
        codes.append(client.publish(join_topic(lab, dev), lab.msg(dev, "JOIN_REQ")))
    return codes


def test_flood_cannot_evict_a_servers_entry(lab, check):
    """The server talks to dev2 with low sequence ids and to dev1 with high ones. dev1 then
    signs FLOOD JOIN_REQs. The server's command to dev1, replayed on dev2's channel (where its
    sequence id is above the mark), is still a replay."""
    check(lab.join(lab.server, lab.dev1), "join of dev1 to server failed")
    check(lab.join(lab.server, lab.dev2), "join of dev2 to server failed")
    d1 = lab.connect(lab.dev1)
    d1.subscribe("SRUP/%s" % lab.dev1.hex)
    d2 = lab.connect(lab.dev2)
    d2.subscribe("SRUP/%s" % lab.dev2.hex)
    s = lab.connect(lab.server)
    t1 = "SRUP/%s" % lab.dev1.hex
    t2 = "SRUP/%s" % lab.dev2.hex
    m2 = lab.msg(lab.server, "ACTION", action_id=1)
    h.expect_accept(lab, check, s, t2, m2, "server to dev2 (low seq)", receivers=[d2])
    m1 = lab.msg(lab.server, "ACTION", seq=lab.server.seq + 100000, action_id=2)
    h.expect_accept(lab, check, s, t1, m1, "server to dev1 (high seq)", receivers=[d1])
    before = lab.counters()
    codes = flood(lab, check, d1, lab.dev1, FLOOD)
    bad = [c for c in codes if not h.delivered(c)]
    check(not bad, "flood: %d of %d JOIN_REQs refused (first PUBACK %s); a sender at its "
          "window evicts its own entries" % (len(bad), FLOOD, h.rc_name(bad[0]) if bad else ""))
    after = lab.counters()
    check(h.counter_delta(before, after, "dropped/seen_index_full") == 0,
          "seen_index_full moved during dev1's flood")
    h.log("    dev1 flooded %d JOIN_REQs (%d accepted)" % (FLOOD, FLOOD - len(bad)))
    h.expect_drop(lab, check, s, t2, m1, "replay",
                  "server's command for dev1 replayed on dev2's channel after the flood",
                  watchers=[d2])
    # the device's own newest entries are still there: its last JOIN_REQ on another channel
    last = lab.msg(lab.dev1, "JOIN_REQ")
    rc = d1.publish(join_topic(lab, lab.dev1), last)
    check(h.delivered(rc), "dev1's next JOIN_REQ: PUBACK %s" % h.rc_name(rc))
    lab.close_clients()


def test_full_index_fails_closed(lab, check):
    """Capacity 16, device window 8: dev1 and dev2 fill it; dev3 is then refused with
    seen_index_full (counted, audited, not delivered), while dev1 at its window goes on."""
    d1 = lab.connect(lab.dev1)
    d2 = lab.connect(lab.dev2)
    d3 = lab.connect(lab.dev3)
    srv = lab.connect(lab.server)
    srv.subscribe("SRUP/servers/%s/#" % lab.server.hex)
    for c, dev in ((d1, lab.dev1), (d2, lab.dev2)):
        codes = flood(lab, check, c, dev, 8)
        check(all(h.delivered(x) for x in codes), "%s filling its window: %r" % (dev.name, codes))
    before = lab.counters()
    m = lab.msg(lab.dev3, "JOIN_REQ")
    rec = h.expect_drop(lab, check, d3, join_topic(lab, lab.dev3), m, "seen_index_full",
                        "dev3 with the index full", watchers=[srv])
    check(rec is not None and rec.get("sender") in (lab.dev3.hex, "%016x" % lab.dev3.id),
          "audit sender of the refusal: %r" % (rec and rec.get("sender")))
    after = lab.counters()
    check(h.counter_delta(before, after, "dropped/seen_index_full") == 1,
          "dropped/seen_index_full moved by %d, want 1"
          % h.counter_delta(before, after, "dropped/seen_index_full"))
    # nothing moved for dev3: the same message is still refused for room, not as a replay
    h.expect_drop(lab, check, d3, join_topic(lab, lab.dev3), m, "seen_index_full",
                  "dev3 again (its mark did not move)", watchers=[srv])
    codes = flood(lab, check, d1, lab.dev1, 3)
    check(all(h.delivered(x) for x in codes), "dev1 at its window: %r" % codes)
    lab.close_clients()


def start_refused(lab, check, label, needles):
    """Start a broker on lab's store and check it exits non-zero with a line holding needles."""
    b = lab.broker
    b.logfile = os.path.join(lab.dir, "refuse-%s.log" % label.replace(" ", "_"))
    b.stderr_path = b.logfile + ".stderr"
    rc = b.start(expect_fail=True)
    out = b.all_output()
    if not check(rc is not None and rc != 0, "%s: broker exit status %r, want non-zero (still "
                 "running means it started with the replay state lost)" % (label, rc)):
        return None
    lines = [l for l in out.splitlines() if all(n in l for n in needles)]
    check(lines, "%s: no line naming %r in the output:\n%s" % (label, needles, out[-1500:]))
    if lines:
        h.log("    %s -> exit %d: %s" % (label, rc, lines[0].strip()[:240]))
    return rc


def test_truncated_data_mdb_refuses_to_start(lab, check):
    """Item 16: data.mdb emptied beside a marks journal and a seen index that hold replay state:
    the broker must not start as an empty store (keys=0) that accepts every old message."""
    s = lab.connect(lab.server)
    check(lab.join(lab.server, lab.dev1), "join of dev1 to server failed")
    m = lab.msg(lab.server, "ACTION", action_id=1)
    h.expect_accept(lab, check, s, "SRUP/%s" % lab.dev1.hex, m, "server to dev1")
    lab.close_clients()
    lab.broker.stop()
    for name in ("marks.journal", "seen.idx"):
        check(os.path.exists(os.path.join(lab.store, name)), "%s missing after a run" % name)
    # control: the intact store restarts
    lab.broker.start()
    check(lab.broker.alive(), "intact store does not restart")
    lab.broker.stop()
    with open(os.path.join(lab.store, "data.mdb"), "r+b") as f:
        f.truncate(0)
    start_refused(lab, check, "data.mdb truncated",
                  ["data.mdb has no store id", "marks.journal", "restore",
                   "remove marks.journal and seen.idx"])
    # still refused on the next attempt: the refusal is not a one-off
    start_refused(lab, check, "data.mdb truncated, second start",
                  ["marks.journal", "disagree", "restore"])


if __name__ == "__main__":
    h.main([(test_flood_cannot_evict_a_servers_entry, flood_lab),
            (test_full_index_fails_closed, full_lab),
            (test_truncated_data_mdb_refuses_to_start, h.Lab)])
