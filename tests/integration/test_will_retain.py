#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# test_will_retain.py - issue 3 item 6: a Will on an SRUP topic passes the same checks as a
# publish (Wills skip MOSQ_EVT_MESSAGE in 2.0.11, so this is the ACL WRITE path); retained SRUP
# messages are refused by the default policy, and never replayed to later subscribers.
#
# Mosquitto 2.0.11 closes a client's TLS session before it checks the client's Will, so under
# the default `identity certificate` a Will has no identity and is refused (no_identity; see
# policy/README.md). The Will checks therefore run on a lab where the broker authenticates the
# username (`identity username`, use_identity_as_username on the TLS listener, a password_file
# for the plain one), and test_will_without_identity_refused shows the default's refusal.
import os
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import srupharness as h  # noqa: E402

S = {}


def setup(lab, check):
    check(lab.join(lab.server, lab.dev1), "join of dev1 to server failed")
    S["ch"] = "SRUP/%s" % lab.dev1.hex
    S["srv"] = lab.connect(lab.server)
    S["srv"].subscribe(S["ch"] + "/#")
    S["dev"] = lab.connect(lab.dev1, client_id="dev1-listener")
    S["dev"].subscribe(S["ch"])


def will_case(lab, check, ident, payload, label, expect_delivery, reason=None):
    """Connect as ident with payload as a QoS 1 Will on dev1's channel, then drop the TCP
    connection without DISCONNECT, and check delivery to the watchers."""
    mark = lab.audit_mark()
    c = lab.connect(ident, client_id="will-%s-%d" % (ident.name, lab.n_clients),
                    will=(S["ch"], payload, 1, False))
    c.close()
    watchers = [S["srv"], S["dev"]]
    if expect_delivery:
        for w in watchers:
            d = w.wait_for(lambda d: d.payload == payload, timeout=3.0)
            check(d is not None, "%s: valid Will not delivered to %s" % (label, w.client_id))
        return
    time.sleep(1.0)
    h.not_delivered(check, watchers, payload, label)
    rec = lab.wait_audit(mark, lambda r: r.get("verdict") == "drop")
    if reason:
        check(rec is not None and rec.get("reason") == reason,
              "%s: audit reason %r, want %r" % (label, rec and rec.get("reason"), reason))


def test_forged_will_not_delivered(lab, check):
    m = bytearray(lab.msg(lab.dev1, "DATA", data_id=b"will", data=b"forged"))
    m[-1] ^= 0x01  # last data byte: the signature no longer matches
    will_case(lab, check, lab.dev1, bytes(m), "Will with a bad signature", False,
              "bad_signature")
    m = lab.msg(lab.dev1, "DATA", data_id=b"will", data=b"other key", key=lab.dev2)
    will_case(lab, check, lab.dev1, m, "Will signed with another key", False, "bad_signature")


def test_will_identity_and_garbage(lab, check):
    m = lab.msg(lab.dev1, "DATA", data_id=b"will", data=b"wrong identity")
    will_case(lab, check, lab.dev2, m, "dev1's Will set by dev2", False, "identity_mismatch")
    will_case(lab, check, lab.dev1, b"\x05\x05garbage", "garbage Will", False, "truncated")
    m = lab.msg(lab.dev1, "ACTION", action_id=1)
    will_case(lab, check, lab.dev1, m, "Will of a type a device may not send", False,
              "not_allowed")


def test_replayed_will_not_delivered(lab, check):
    m = lab.msg(lab.dev1, "DATA", data_id=b"x", data=b"accepted once")
    d = lab.connect(lab.dev1)
    h.expect_accept(lab, check, d, S["ch"], m, "original", receivers=[S["srv"]])
    will_case(lab, check, lab.dev1, m, "Will replaying an accepted message", False, "replay")


def test_valid_will_delivered(lab, check):
    """Positive control: a genuine, fresh, correctly bound Will is delivered."""
    m = lab.msg(lab.dev1, "DATA", data_id=b"will", data=b"genuine last words")
    will_case(lab, check, lab.dev1, m, "genuine Will", True)


def test_retained_srup_refused(lab, check):
    m = lab.msg(lab.server, "ACTION", action_id=9)
    s = lab.connect(lab.server)
    h.expect_drop(lab, check, s, S["ch"], m, "retained_refused", "retained ACTION",
                  watchers=[S["dev"]], retain=True)
    late = lab.connect(lab.dev1, client_id="late-subscriber")
    late.subscribe(S["ch"])
    got = late.collect(0.7)
    check(not got, "late subscriber got a retained message: %r" % got)
    # The same bytes without retain are still fresh: nothing was committed by the refusal.
    h.expect_accept(lab, check, s, S["ch"], m, "same message without retain",
                    receivers=[S["dev"]])
    m = lab.msg(lab.dev1, "DATA", data_id=b"r", data=b"r")
    d = lab.connect(lab.dev1)
    h.expect_drop(lab, check, d, S["ch"], m, "retained_refused", "retained DATA from device",
                  watchers=[S["srv"]], retain=True)


def test_retained_will_refused(lab, check):
    m = lab.msg(lab.dev1, "DATA", data_id=b"w", data=b"retained will")
    mark = lab.audit_mark()
    c = lab.connect(lab.dev1, client_id="will-retained", will=(S["ch"], m, 1, True))
    c.close()
    time.sleep(1.0)
    h.not_delivered(check, [S["srv"], S["dev"]], m, "retained Will")
    late = lab.connect(lab.server, client_id="late-server")
    late.subscribe(S["ch"] + "/#")
    got = [d for d in late.collect(0.7) if d.payload == m]
    check(not got, "retained Will kept for a late subscriber")
    rec = lab.wait_audit(mark, lambda r: r.get("verdict") == "drop")
    check(rec is not None and rec.get("reason") == "retained_refused",
          "retained Will: audit reason %r" % (rec and rec.get("reason")))


def test_will_without_identity_refused(lab, check):
    """Default policy (certificate): the broker has closed the TLS session when it checks the
    Will, so even a genuine Will carries no identity and is refused, never delivered."""
    check(lab.join(lab.server, lab.dev1), "join of dev1 to server failed")
    S["ch"] = "SRUP/%s" % lab.dev1.hex
    S["srv"] = lab.connect(lab.server)
    S["srv"].subscribe(S["ch"] + "/#")
    S["dev"] = lab.connect(lab.dev1, client_id="dev1-listener-cert")
    S["dev"].subscribe(S["ch"])
    m = lab.msg(lab.dev1, "DATA", data_id=b"will", data=b"genuine, certificate identity")
    will_case(lab, check, lab.dev1, m, "genuine Will under identity certificate", False,
              "no_identity")
    h.expect_accept(lab, check, lab.connect(lab.dev1), S["ch"],
                    lab.msg(lab.dev1, "DATA", data_id=b"x", data=b"live publish"),
                    "the same device's live publish", receivers=[S["srv"], S["dev"]])


def test_plain_retained_unaffected(lab, check):
    p = lab.connect(client_id="plain-retain")
    rc = p.publish("plain/retained", b"hello", retain=True)
    check(h.delivered(rc), "plain retained publish: PUBACK %s" % h.rc_name(rc))
    late = lab.connect(client_id="plain-late")
    late.subscribe("plain/retained")
    got = late.wait_for(lambda d: d.payload == b"hello", timeout=2.0)
    check(got is not None and got.retain, "plain retained message not kept")


if __name__ == "__main__":
    h.main([setup, test_forged_will_not_delivered, test_will_identity_and_garbage,
            test_replayed_will_not_delivered, test_valid_will_delivered,
            test_retained_srup_refused, test_retained_will_refused,
            test_plain_retained_unaffected, (test_will_without_identity_refused, h.Lab)],
           lab_factory=h.username_lab)
