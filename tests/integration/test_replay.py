#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# test_replay.py - issue 3 items 3 and 4: replays (same bytes by another client, older or equal
# sequence id, same signed bytes on another device's channel) are dropped; a byte-identical QoS 1
# retransmission (DUP, same packet id) by the original client is not an attack; a forged message
# with a huge sequence id moves no state.
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import srupharness as h  # noqa: E402

S = {}


def setup(lab, check):
    check(lab.join(lab.server, lab.dev1), "join of dev1 to server failed")
    check(lab.join(lab.server, lab.dev2), "join of dev2 to server failed")
    S["d1"] = lab.connect(lab.dev1)
    S["d1"].subscribe("SRUP/%s" % lab.dev1.hex)
    S["d2"] = lab.connect(lab.dev2)
    S["d2"].subscribe("SRUP/%s" % lab.dev2.hex)
    S["s"] = lab.connect(lab.server)
    S["s"].subscribe("SRUP/%s/#" % lab.dev1.hex)
    S["t1"] = "SRUP/%s" % lab.dev1.hex
    S["t2"] = "SRUP/%s" % lab.dev2.hex
    S["before"] = lab.counters()


def test_same_bytes_by_another_client(lab, check):
    m = lab.msg(lab.server, "ACTION", action_id=1)
    h.expect_accept(lab, check, S["s"], S["t1"], m, "original", receivers=[S["d1"]])
    other = lab.connect(lab.server, client_id="attacker-same-username")
    h.expect_drop(lab, check, other, S["t1"], m, "replay", "same bytes, other client id",
                  watchers=[S["d1"]])
    h.expect_drop(lab, check, other, S["t1"], m, "replay", "same bytes, other client, QoS 0",
                  watchers=[S["d1"]], qos=0)
    m = lab.msg(lab.dev1, "DATA", data_id=b"r", data=b"1")
    h.expect_accept(lab, check, S["d1"], S["t1"], m, "device original", receivers=[S["s"]])
    other = lab.connect(lab.dev1, client_id="attacker-dev1")
    h.expect_drop(lab, check, other, S["t1"], m, "replay", "device message replayed",
                  watchers=[S["s"]])


def test_older_and_equal_sequence(lab, check):
    s = lab.server
    base = s.seq + 10
    m_new = lab.msg(s, "ACTION", seq=base + 2, action_id=2)
    h.expect_accept(lab, check, S["s"], S["t1"], m_new, "seq n+2", receivers=[S["d1"]])
    m_old = lab.msg(s, "ACTION", seq=base + 1, action_id=2)
    h.expect_drop(lab, check, S["s"], S["t1"], m_old, "replay", "older seq (fresh signature)",
                  watchers=[S["d1"]])
    m_eq = lab.msg(s, "ACTION", seq=base + 2, action_id=3)
    h.expect_drop(lab, check, S["s"], S["t1"], m_eq, "replay", "equal seq, other content",
                  watchers=[S["d1"]])
    m_zero = lab.msg(s, "ACTION", seq=0, action_id=3)
    h.expect_drop(lab, check, S["s"], S["t1"], m_zero, "replay", "seq 0", watchers=[S["d1"]])


def test_same_bytes_on_another_devices_channel(lab, check):
    """The server talks to dev2 with low sequence ids and to dev1 with high ones; dev1's
    message replayed on dev2's channel carries a seq above dev2's mark, and is still dropped."""
    s = lab.server
    m2 = lab.msg(s, "ACTION", action_id=4)
    h.expect_accept(lab, check, S["s"], S["t2"], m2, "to dev2", receivers=[S["d2"]])
    m1 = lab.msg(s, "ACTION", seq=s.seq + 1000, action_id=4)
    h.expect_accept(lab, check, S["s"], S["t1"], m1, "to dev1 (high seq)", receivers=[S["d1"]])
    h.expect_drop(lab, check, S["s"], S["t2"], m1, "replay",
                  "dev1's message on dev2's channel", watchers=[S["d2"]])
    d = lab.msg(lab.dev1, "DATA", data_id=b"x", data=b"cross")
    h.expect_accept(lab, check, S["d1"], S["t1"], d, "dev1 data", receivers=[S["s"]])
    h.expect_drop(lab, check, S["s"], "SRUP/servers/%s/%s" % (lab.server.hex, lab.dev1.hex),
                  d, None, "dev1's DATA replayed on its join topic")


def test_qos1_retransmission_not_an_attack(lab, check):
    c = S["s"]
    m = lab.msg(lab.server, "ACTION", action_id=5)
    mid = c.alloc_mid()
    mark = lab.audit_mark()
    before = lab.counters()
    rc = c.publish(S["t1"], m, qos=1, mid=mid)
    check(h.delivered(rc), "first send: PUBACK %s" % h.rc_name(rc))
    check(S["d1"].wait_for(lambda d: d.payload == m) is not None, "first send not delivered")
    rc = c.publish(S["t1"], m, qos=1, mid=mid, dup=True)
    check(h.delivered(rc), "DUP retransmission (same packet id, same bytes): PUBACK %s, want "
          "0x00" % h.rc_name(rc))
    after = lab.counters()
    drops = [r for r in lab.audit(mark) if r.get("verdict") == "drop"]
    check(not drops, "retransmission audited as a drop: %r" % drops[:2])
    check(h.counter_delta(before, after, "dropped/replay") == 0,
          "dropped/replay moved on a retransmission")
    check(h.counter_delta(before, after, "retransmitted") == 1,
          "retransmitted moved by %d, want 1" % h.counter_delta(before, after, "retransmitted"))
    rt = [r for r in lab.audit(mark) if r.get("verdict") == "retransmit"]
    h.log("    audit records of verdict retransmit: %d" % len(rt))
    # Not the last accepted message any more: resending an older one is a replay.
    m2 = lab.msg(lab.server, "ACTION", action_id=6)
    rc = c.publish(S["t1"], m2, qos=1)
    check(h.delivered(rc), "next message: PUBACK %s" % h.rc_name(rc))
    h.expect_drop(lab, check, c, S["t1"], m, "replay",
                  "same client re-sending the message before its last", watchers=[])


def test_forged_huge_sequence_moves_no_state(lab, check):
    s = lab.server
    top = (1 << 64) - 1
    forged = lab.msg(s, "ACTION", seq=top, action_id=7, key=lab.dev2)
    h.expect_drop(lab, check, S["s"], S["t1"], forged, "bad_signature",
                  "server id, seq 2^64-1, dev2's key", watchers=[S["d1"]])
    forged = bytearray(lab.msg(s, "ACTION", seq=top - 1, action_id=7))
    forged[-2] ^= 0x40
    h.expect_drop(lab, check, S["s"], S["t1"], bytes(forged), "bad_signature",
                  "server id, seq 2^64-2, corrupted signature", watchers=[S["d1"]])
    good = lab.msg(s, "ACTION", action_id=8)
    h.expect_accept(lab, check, S["s"], S["t1"], good, "server's next genuine message",
                    receivers=[S["d1"]])
    forged = lab.msg(lab.dev1, "DATA", seq=top, key=lab.server, data_id=b"x", data=b"y")
    h.expect_drop(lab, check, S["d1"], S["t1"], forged, "bad_signature",
                  "dev1 id, seq 2^64-1, server's key", watchers=[S["s"]])
    good = lab.msg(lab.dev1, "DATA", data_id=b"x", data=b"genuine")
    h.expect_accept(lab, check, S["d1"], S["t1"], good, "dev1's next genuine message",
                    receivers=[S["s"]])


def test_qos2(lab, check):
    """QoS 2: a valid message is delivered once; a DUP resend before PUBREL is not an attack
    (and the broker delivers it once); a replay gets PUBREC 0x87 and is not delivered."""
    c = S["s"]
    m = lab.msg(lab.server, "ACTION", action_id=11)
    mid = c.alloc_mid()
    rc = c.publish_qos2(S["t1"], m, mid=mid, release=False)
    check(rc is not None and rc < 0x80, "QoS 2 valid: PUBREC %s" % h.rc_name(rc))
    rc = c.publish_qos2(S["t1"], m, mid=mid, dup=True)
    check(rc is not None and rc < 0x80, "QoS 2 DUP resend before PUBREL: PUBREC %s"
          % h.rc_name(rc))
    check(mid in c.comps, "no PUBCOMP for the QoS 2 flow")
    got = [d for d in S["d1"].collect(0.5) if d.payload == m]
    check(len(got) == 1, "QoS 2 message delivered %d times, want once" % len(got))
    other = lab.connect(lab.server, client_id="qos2-replayer")
    mark = lab.audit_mark()
    rc = other.publish_qos2(S["t1"], m)
    check(rc == h.RC_NOT_AUTHORIZED, "QoS 2 replay: PUBREC %s, want 0x87" % h.rc_name(rc))
    rec = lab.wait_audit(mark, lambda r: r.get("verdict") == "drop")
    check(rec is not None and rec.get("reason") == "replay",
          "QoS 2 replay: audit reason %r" % (rec and rec.get("reason")))
    h.not_delivered(check, [S["d1"]], m, "QoS 2 replay")
    rc = other.publish_qos2(S["t1"], lab.msg(lab.server, "ACTION", action_id=12))
    check(rc is not None and rc < 0x80, "QoS 2 after a refused one: PUBREC %s" % h.rc_name(rc))


if __name__ == "__main__":
    h.main([setup, test_same_bytes_by_another_client, test_older_and_equal_sequence,
            test_same_bytes_on_another_devices_channel, test_qos1_retransmission_not_an_attack,
            test_forged_huge_sequence_moves_no_state, test_qos2])
