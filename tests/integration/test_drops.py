#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# test_drops.py - issue 3 item 2: every kind of bad message is dropped (PUBACK 0x87, not
# delivered) with its own reason in the audit log and its own $SYS counter; any single altered
# byte of a valid message is dropped and moves no state.
import os
import struct
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import srupharness as h  # noqa: E402

S = {}  # shared state between the tests of this file


def setup(lab, check):
    check(lab.join(lab.server, lab.dev1), "join of dev1 to server failed")
    S["d"] = lab.connect(lab.dev1)
    S["d"].subscribe("SRUP/%s" % lab.dev1.hex)
    S["s"] = lab.connect(lab.server)
    S["s"].subscribe("SRUP/%s/#" % lab.dev1.hex)
    S["topic"] = "SRUP/%s" % lab.dev1.hex
    S["watch"] = [S["d"], S["s"]]
    S["expected"] = {}
    S["before"] = lab.counters()


def drop(lab, check, payload, reason, label, client=None, topic=None, **kw):
    S["expected"][reason] = S["expected"].get(reason, 0) + 1
    return h.expect_drop(lab, check, client or S["s"], topic or S["topic"], payload, reason,
                         label, watchers=S["watch"], **kw)


def test_bad_signature(lab, check):
    m = bytearray(lab.msg(lab.server, "ACTION", action_id=1))
    m[-2] ^= 0x01  # last signature byte (the body is one byte)
    drop(lab, check, bytes(m), "bad_signature", "flipped signature byte")
    m = lab.msg(lab.server, "ACTION", action_id=1, key=lab.dev2)
    drop(lab, check, m, "bad_signature", "signed with another registered key")


def test_truncated(lab, check):
    m = lab.msg(lab.server, "ACTION", action_id=2)
    for n in (1, 2, 10, 17, 18, 19, 20, 60, len(m) - 2, len(m) - 1):
        drop(lab, check, m[:n], "truncated", "prefix of %d/%d bytes" % (n, len(m)))


def test_trailing_bytes(lab, check):
    m = lab.msg(lab.server, "ACTION", action_id=3)
    drop(lab, check, m + b"\x00", "trailing_bytes", "one trailing zero byte")
    drop(lab, check, m + b"junk" * 10, "trailing_bytes", "40 trailing bytes")


def test_bad_version(lab, check):
    for v in (0x04, 0x06, 0x00, 0xFF):
        m = lab.msg(lab.server, "ACTION", action_id=4, version=v)
        drop(lab, check, m, "bad_version", "version 0x%02x (validly signed)" % v)


def test_unknown_type(lab, check):
    s = lab.server
    for t in (0x00, 0x07, 0x14, 0x30, 0xFF):
        m = h.python_encode(s.id, t, s.next_seq(), lab.token(), s.priv, {})
        drop(lab, check, m, "unknown_type", "type 0x%02x (validly signed)" % t)


def test_empty_payload(lab, check):
    drop(lab, check, b"", "empty_payload", "empty payload QoS 1")


def test_too_large(lab, check):
    m = lab.msg(lab.server, "ACTION", action_id=5)
    big = m[:18] + b"\x00" * (2 * 1024 * 1024)
    drop(lab, check, big, "too_large", "2 MiB payload")


def test_size_limit_boundary(lab, check):
    """The shipped policy's max_payload is 65536: exactly that many bytes pass, one more not."""
    d = S["d"]
    over = 22 + 36 + 256 + 4 + 1  # header, 36-byte token, RSA-2048 signature, DATA body framing
    m = lab.msg(lab.dev1, "DATA", data_id=b"x", data=b"\x5a" * (65536 - over))
    check(len(m) == 65536, "built %d bytes, want 65536" % len(m))
    h.expect_accept(lab, check, d, S["topic"], m, "65536-byte DATA", receivers=[S["s"]])
    m = lab.msg(lab.dev1, "DATA", data_id=b"x", data=b"\x5a" * (65537 - over))
    check(len(m) == 65537, "built %d bytes, want 65537" % len(m))
    drop(lab, check, m, "too_large", "65537-byte DATA", client=d)


def test_field_length(lab, check):
    s = lab.server
    body = bytes([6])
    tok = b"T" * 2000  # over the 1024-byte token limit, all bytes present
    sig = h.openssl_sign(s.priv, h.unsigned_bytes(5, "ACTION", s.next_seq(), s.id, tok, body))
    m = h.wire(5, "ACTION", s.seq, s.id, tok, sig, body)
    drop(lab, check, m, "field_length", "2000-byte token")
    tok = lab.token()
    m = h.wire(5, "ACTION", s.next_seq(), s.id, tok, b"\x01" * 16, body)
    drop(lab, check, m, "field_length", "16-byte signature")


def test_bad_pad(lab, check):
    s = lab.server
    f = {"data": b"\x00\x00", "req_id": 1, "pad": b"\x01\x00"}
    m = h.python_encode(s.id, "SYNDICATED_C2_REQ", s.next_seq(), lab.token(), s.priv, f)
    drop(lab, check, m, "bad_pad", "SYNDICATED_C2_REQ with pad 01 00")


def test_unknown_sender(lab, check):
    st = lab.stranger
    c = lab.connect(st)
    m = lab.msg(st, "DATA", data_id=b"x", data=b"y")
    drop(lab, check, m, "unknown_sender", "unregistered sender on its own channel", client=c,
         topic="SRUP/%s" % st.hex)
    m = lab.msg(st, "ACTION", action_id=1)
    drop(lab, check, m, "unknown_sender", "unregistered sender to dev1", client=c)


def test_revoked_sender(lab, check):
    d3 = lab.dev3
    c = lab.connect(d3)
    m = lab.msg(d3, "DATA", data_id=b"x", data=b"before")
    rc = c.publish("SRUP/%s" % d3.hex, m)
    check(h.delivered(rc), "dev3 before revocation: PUBACK %s" % h.rc_name(rc))
    c.close()
    lab.keys_revoke(d3)
    check(lab.broker.hup(), "no reload after SIGHUP")
    c = lab.connect(d3)
    m = lab.msg(d3, "DATA", data_id=b"x", data=b"after")
    drop(lab, check, m, "revoked_sender", "revoked dev3 on its channel", client=c,
         topic="SRUP/%s" % d3.hex)


def test_not_allowed(lab, check):
    d = S["d"]
    m = lab.msg(lab.dev1, "ACTION", action_id=1)
    drop(lab, check, m, "not_allowed", "ACTION (server->device) from a device", client=d)
    m = lab.msg(lab.dev1, "INITIATE", url=b"http://x/\x00", digest=b"d\x00")
    drop(lab, check, m, "not_allowed", "INITIATE from a device", client=d)
    m = lab.msg(lab.dev1, "JOIN_REQ")
    drop(lab, check, m, "not_allowed", "JOIN_REQ on a device channel", client=d)
    m = lab.msg(lab.dev1, "DATA", data_id=b"x", data=b"y")
    drop(lab, check, m, "not_allowed", "DATA on a join topic", client=d,
         topic="SRUP/servers/%s/%s" % (lab.server.hex, lab.dev1.hex))
    o = lab.connect(lab.observer)
    m = lab.msg(lab.observer, "ACTION", action_id=1)
    drop(lab, check, m, "not_allowed", "ACTION from an observer", client=o)


def test_identity_mismatch(lab, check):
    other = lab.connect(lab.dev2)
    m = lab.msg(lab.dev1, "DATA", data_id=b"x", data=b"y")
    drop(lab, check, m, "identity_mismatch", "dev1's message from dev2's certificate",
         client=other)
    m = lab.msg(lab.server, "ACTION", action_id=1)
    drop(lab, check, m, "identity_mismatch", "server's message from dev1's certificate",
         client=S["d"])


def test_no_identity(lab, check):
    # Plain listener, no certificate: client id and username both claim dev1, prove nothing.
    anon = lab.connect(lab.dev1, client_id=lab.dev1.hex, plain=True)
    m = lab.msg(lab.dev1, "DATA", data_id=b"x", data=b"z")
    drop(lab, check, m, "no_identity", "dev1's message from a client without a certificate",
         client=anon)


def test_drop_counters(lab, check):
    after = lab.counters()
    total = 0
    for reason, n in sorted(S["expected"].items()):
        got = h.counter_delta(S["before"], after, "dropped/" + reason)
        total += n
        check(got == n, "counter dropped/%s moved by %d, want %d" % (reason, got, n))
    got = h.counter_delta(S["before"], after, "dropped/total")
    check(got == total, "counter dropped/total moved by %d, want %d" % (got, total))


def test_every_altered_byte_is_dropped(lab, check):
    """Each single-byte alteration (xor 0x01 and xor 0x80) of one valid message is refused and
    not delivered; afterwards the original is still accepted (no state moved)."""
    s = S["s"]
    m = lab.msg(lab.server, "ACTION", action_id=42)
    bad = []
    reasons = {}
    copies = []
    for i in range(len(m)):
        for x in (0x01, 0x80):
            a = bytearray(m)
            a[i] ^= x
            copies.append((i, x, bytes(a)))
    kicked = 0
    for i, x, a in copies:
        rc = None
        for _ in range(3):
            # Policy bad_signatures (5 by default) closes a connection that sends forgeries:
            # reconnect and send the same copy again.
            if not s.closed:
                try:
                    rc = s.publish(S["topic"], a)
                except OSError:
                    s.closed = True
            if rc is not None:
                break
            kicked += 1
            s = S["s"] = lab.connect(lab.server)
            S["watch"][1] = s
            s.subscribe("SRUP/%s/#" % lab.dev1.hex)
        if rc != h.RC_NOT_AUTHORIZED:
            bad.append("offset %d xor 0x%02x: PUBACK %s" % (i, x, h.rc_name(rc)))
    h.log("    %d altered copies; the forger's connection was closed %d times" % (len(copies),
                                                                                 kicked))
    check(kicked > 0, "forgeries never closed the connection (policy bad_signatures)")
    check(not bad, "%d altered copies not refused: %s" % (len(bad), "; ".join(bad[:10])))
    altered = {a for _, _, a in copies}
    for w in S["watch"]:
        got = [d for d in w.collect(0.5) if d.payload in altered]
        check(not got, "%d altered copies delivered to %s" % (len(got), w.client_id))
    for r in lab.audit():
        if r.get("verdict") == "drop":
            reasons[r.get("reason")] = reasons.get(r.get("reason"), 0) + 1
    h.log("    audit drop reasons so far: %r" % reasons)
    h.expect_accept(lab, check, s, S["topic"], m, "the unaltered original after %d altered"
                    % len(copies), receivers=[S["d"]])


if __name__ == "__main__":
    h.main([setup, test_bad_signature, test_truncated, test_trailing_bytes, test_bad_version,
            test_unknown_type, test_empty_payload, test_too_large, test_size_limit_boundary,
            test_field_length,
            test_bad_pad, test_unknown_sender, test_revoked_sender, test_not_allowed,
            test_identity_mismatch, test_no_identity, test_drop_counters, test_every_altered_byte_is_dropped])
