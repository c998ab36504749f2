#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# test_redteam.py - issue 10: the red-team's attacks on membership, revocation, replay and cost,
# each against a real broker with the shipped policy. Every test here got through (or cost the
# broker what it should not) before the trust rules of DESIGN.md were enforced.
import os
import struct
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import srupharness as h  # noqa: E402


def ch(ident):
    return "SRUP/%s" % ident.hex


def jt(server, dev):
    return "SRUP/servers/%s/%s" % (server.hex, dev.hex)


def key_status(lab, ident):
    """'active', 'revoked' or None, from `srup keys list` on the live store."""
    out = h.run([h.SRUP, "keys", "list", "--store", lab.store]).stdout.decode()
    for line in out.splitlines():
        f = line.split("\t")
        if f and f[0] == ident.hex:
            return f[2] if len(f) > 2 else None
    return None


def still_accepted(lab, check, ident, label):
    """ident's key is still active: its own DATA is accepted and reaches its channel."""
    c = lab.connect(ident)
    c.subscribe(ch(ident))
    ok = h.expect_accept(lab, check, c, ch(ident),
                         lab.msg(ident, "DATA", data_id=b"alive", data=label.encode()),
                         "%s: %s still active" % (label, ident.name), receivers=[c])
    c.disconnect()
    return ok


def test_stranger_cannot_deregister_or_terminate(lab, check):
    """Item 1: a registered server that never joined dev1 revokes nothing, on a device channel
    or on another server's channel."""
    d = lab.connect(lab.dev1)
    d.subscribe(ch(lab.dev1))
    s2 = lab.connect(lab.server2)
    h.expect_drop(lab, check, s2, ch(lab.dev1), lab.msg(lab.server2, "DEREGISTER_CMD"),
                  "not_member", "stranger's DEREGISTER_CMD on dev1", watchers=[d])
    h.expect_drop(lab, check, s2, ch(lab.dev1), lab.msg(lab.server2, "TERMINATE_CMD"),
                  "not_member", "stranger's TERMINATE_CMD on dev1", watchers=[d])
    h.expect_drop(lab, check, s2, ch(lab.server), lab.msg(lab.server2, "DEREGISTER_CMD"),
                  "unknown_target", "DEREGISTER_CMD on another server's channel")
    check(d.ping(), "dev1 was disconnected by a stranger's DEREGISTER_CMD")
    still_accepted(lab, check, lab.dev1, "after the stranger's DEREGISTER_CMD")
    for ident in (lab.dev1, lab.server):
        st = key_status(lab, ident)
        check(st == "active", "%s's key is %r after the stranger's commands" % (ident.name, st))
    # A device's DEREGISTER_REQ, by contrast, is its own act, and a member's DEREGISTER_CMD
    # is the server's: both are shown in test_join.py.


def test_server_cannot_join_itself(lab, check):
    """Item 2: JOIN_SUCCESS nobody asked for, or a JOIN_CMD from a server the policy does not
    trust with it, makes no membership; the stranger reads nothing of dev2."""
    d = lab.connect(lab.dev2)
    d.subscribe(ch(lab.dev2))
    s2 = lab.connect(lab.server2)
    check(s2.subscribe(ch(lab.dev2)) == 1, "a server may subscribe ahead of its join")
    h.expect_drop(lab, check, s2, ch(lab.dev2),
                  lab.msg(lab.server2, "RESPONSE", status=h.JOIN_SUCCESS), "no_pending_join",
                  "JOIN_SUCCESS with no request", watchers=[d])
    h.expect_drop(lab, check, s2, ch(lab.dev2),
                  lab.msg(lab.server2, "JOIN_CMD", device_id=lab.dev2.id), "not_allowed",
                  "JOIN_CMD from a server without join_command", watchers=[d])
    secret = lab.msg(lab.dev2, "DATA", data_id=b"secret", data=b"for my servers only")
    d.publish(ch(lab.dev2), secret)
    h.not_delivered(check, [s2], secret, "dev2's DATA to a server that claimed membership",
                    wait=0.5)
    # A request to server, answered by server2 (with the right token): not server2's to answer.
    tok = lab.token()
    h.expect_accept(lab, check, d, jt(lab.server, lab.dev2),
                    lab.msg(lab.dev2, "JOIN_REQ", token=tok), "dev2's JOIN_REQ to server")
    h.expect_drop(lab, check, s2, ch(lab.dev2),
                  lab.msg(lab.server2, "RESPONSE", token=tok, status=h.JOIN_SUCCESS),
                  "no_pending_join", "server2 answering dev2's request to server")
    # A request to server2 answered with another token: refused; with its token: a member.
    tok2 = lab.token()
    h.expect_accept(lab, check, d, jt(lab.server2, lab.dev2),
                    lab.msg(lab.dev2, "JOIN_REQ", token=tok2), "dev2's JOIN_REQ to server2")
    h.expect_drop(lab, check, s2, ch(lab.dev2),
                  lab.msg(lab.server2, "RESPONSE", status=h.JOIN_SUCCESS), "no_pending_join",
                  "JOIN_SUCCESS with another token")
    h.expect_accept(lab, check, s2, ch(lab.dev2),
                    lab.msg(lab.server2, "RESPONSE", token=tok2, status=h.JOIN_SUCCESS),
                    "JOIN_SUCCESS answering dev2's request", receivers=[d])
    fresh = lab.msg(lab.dev2, "DATA", data_id=b"hello", data=b"now you may read")
    h.expect_accept(lab, check, d, ch(lab.dev2), fresh, "dev2's DATA after the join",
                    receivers=[s2])
    # The request is answered: the same answer again makes nothing.
    h.expect_drop(lab, check, s2, ch(lab.dev2),
                  lab.msg(lab.server2, "RESPONSE", token=tok2, status=h.JOIN_SUCCESS),
                  "no_pending_join", "a second JOIN_SUCCESS for one request")


def test_unregistered_ids_store_nothing(lab, check):
    """Items 3 and 14: join topics of unregistered server ids and device channels of
    unregistered ids are refused before any state is written."""
    d = lab.connect(lab.dev3)
    s = lab.connect(lab.server)
    before = lab.counters()
    for i in range(5):
        h.expect_drop(lab, check, d, "SRUP/servers/%x/%s" % (0x4000 + i, lab.dev3.hex),
                      lab.msg(lab.dev3, "JOIN_REQ"), "unknown_target",
                      "JOIN_REQ to made-up server %d" % i)
        h.expect_drop(lab, check, s, "SRUP/%x" % (0x5000 + i),
                      lab.msg(lab.server, "ACTION", action_id=1), "unknown_target",
                      "ACTION to made-up device %d" % i)
    after = lab.counters()
    check(h.counter_delta(before, after, "dropped/unknown_target") == 10,
          "dropped/unknown_target moved by %d, want 10" %
          h.counter_delta(before, after, "dropped/unknown_target"))
    # A made-up id left no replay mark: the same JOIN_REQ to a real server is accepted.
    h.expect_accept(lab, check, d, jt(lab.server, lab.dev3), lab.msg(lab.dev3, "JOIN_REQ"),
                    "dev3's JOIN_REQ to a registered server")


def test_retransmission_is_mqtt_only(lab, check):
    """Item 4: the exception for resends covers QoS 1/2 from the same connection or its resumed
    session, once; not QoS 0, not another connection with the same client id, not a Will."""
    check(lab.join(lab.server, lab.dev1), "join of dev1 to server failed")
    d = lab.connect(lab.dev1, client_id="rt-dev1")
    d.subscribe(ch(lab.dev1), qos=0)
    s = lab.connect(lab.server, client_id="rt-server")

    def count(m):
        return len([x for x in d.collect(0.6) if x.payload == m])

    m = lab.msg(lab.server, "ACTION", action_id=5)
    check(h.delivered(s.publish(ch(lab.dev1), m)), "the command itself was refused")
    check(count(m) == 1, "the command was not delivered once")
    # the same connection, fresh packet ids, QoS 1: one retransmission, then replays
    rcs = [s.publish(ch(lab.dev1), m) for _ in range(3)]
    check(h.delivered(rcs[0]), "a QoS 1 resend of the command: PUBACK %s" % h.rc_name(rcs[0]))
    check(rcs[1:] == [h.RC_NOT_AUTHORIZED] * 2, "further resends: PUBACKs %r" % rcs[1:])
    check(count(m) <= 1, "the command was delivered again more than once")
    # QoS 0: never a retransmission
    m2 = lab.msg(lab.server, "ACTION", action_id=6)
    s.publish(ch(lab.dev1), m2, qos=0)
    for _ in range(3):
        s.publish(ch(lab.dev1), m2, qos=0)
    check(count(m2) == 1, "a QoS 0 command resent at QoS 0 was delivered again")
    # another connection claiming the same client id (a clean start: no resumed session)
    m3 = lab.msg(lab.server, "ACTION", action_id=7)
    check(h.delivered(s.publish(ch(lab.dev1), m3)), "command 3 refused")
    check(count(m3) == 1, "command 3 not delivered")
    s.close()
    thief = lab.connect(lab.server, client_id="rt-server")
    rc = thief.publish(ch(lab.dev1), m3)
    check(rc == h.RC_NOT_AUTHORIZED, "same client id, new session: PUBACK %s" % h.rc_name(rc))
    check(count(m3) == 0, "the command was delivered again to a new session's resend")
    thief.disconnect()
    # a Will carrying the last accepted command
    m4 = lab.msg(lab.server, "ACTION", action_id=8)
    w = lab.connect(lab.server, client_id="rt-will", will=(ch(lab.dev1), m4, 1, False))
    check(h.delivered(w.publish(ch(lab.dev1), m4)), "command 4 refused")
    check(count(m4) == 1, "command 4 not delivered")
    w.close()  # no DISCONNECT: the broker sends the Will
    check(count(m4) == 0, "a Will carrying an accepted command was delivered")


def test_revoked_sender_not_delivered_after_pubrel(lab, check):
    """Item 5: a QoS 2 command held before PUBREL across the sender's revocation is not
    delivered when the sender resumes its session and releases it."""
    check(lab.join(lab.server2, lab.dev3), "join of dev3 to server2 failed")
    d = lab.connect(lab.dev3)
    d.subscribe(ch(lab.dev3))
    s = lab.connect(lab.server2, client_id="held-pubrel", clean=False)
    m = lab.msg(lab.server2, "ACTION", action_id=9)
    rc = s.publish_qos2(ch(lab.dev3), m, release=False)
    check(rc is not None and rc < 0x80, "PUBREC %s" % h.rc_name(rc))
    mid = s.last_mid
    lab.keys_revoke(lab.server2)
    check(lab.broker.hup(), "no reload after SIGHUP")
    check(s.wait_closed(), "the revoked server was not disconnected")
    s2 = lab.connect(lab.server2, client_id="held-pubrel", clean=False)
    s2._send_packet(0x62, struct.pack(">H", mid))
    s2.pump(1.0)
    got = [x for x in d.collect(1.0) if x.payload == m]
    check(not got, "the revoked server's held command was delivered after PUBREL")


def test_publish_only_revoked_identity_disconnected(lab, check):
    """Item 12: a connection that only publishes is known too: revocation closes it."""
    ident = lab.observer
    c = lab.connect(ident)
    h.expect_accept(lab, check, c, ch(ident), lab.msg(ident, "DATA", data_id=b"a", data=b"b"),
                    "observer's DATA (publish only)")
    lab.keys_revoke(ident)
    check(lab.broker.hup(), "no reload after SIGHUP")
    check(c.wait_closed(), "a revoked identity that only publishes stayed connected")


def test_forgeries_cost_the_connection(lab, check):
    """Item 7: after policy bad_signatures (5) forgeries the connection is closed; each drop is
    counted and audited."""
    c = lab.connect(lab.dev3, client_id="forger")
    before = lab.counters()
    for i in range(5):
        m = lab.msg(lab.dev3, "DATA", key=lab.dev1, data_id=b"f", data=b"%d" % i)
        rc = c.publish(ch(lab.dev3), m)
        check(rc == h.RC_NOT_AUTHORIZED, "forgery %d: PUBACK %s" % (i, h.rc_name(rc)))
    check(c.wait_closed(), "5 forgeries and the connection is still open")
    after = lab.counters()
    check(h.counter_delta(before, after, "dropped/bad_signature") == 5,
          "dropped/bad_signature moved by %d" %
          h.counter_delta(before, after, "dropped/bad_signature"))
    recs = [r for r in lab.audit() if r.get("client_id") == "forger"]
    check(any("disconnecting" in (r.get("detail") or "") for r in recs),
          "no audit line says the forger was disconnected")


def test_refused_subscriptions_are_audited(lab, check):
    """Every refusal has a reason in the audit log and a counter: a stranger's subscriptions to
    another server's join topic, a shared device channel, and a claimed name's subscription."""
    before = lab.counters()
    mark = lab.audit_mark()
    s2 = lab.connect(lab.server2, client_id="sub-stranger")
    cases = [(s2, "SRUP/servers/%s/#" % lab.server.hex, "not_allowed"),
             (s2, "$share/g/%s" % ch(lab.dev1), "not_allowed")]
    anon = lab.connect(None, client_id="sub-anon", username=lab.dev1.hex)
    cases.append((anon, ch(lab.dev1), "no_identity"))
    for c, filt, reason in cases:
        rc = c.subscribe(filt)
        check(rc == h.RC_NOT_AUTHORIZED, "%s: SUBACK 0x%02x" % (filt, rc))
        rec = lab.wait_audit(mark, lambda r: r.get("verdict") == "refuse" and
                             r.get("topic") == filt)
        check(rec is not None and rec.get("reason") == reason,
              "%s: audit %r, want a refuse line with reason %s" % (filt, rec, reason))
    after = lab.counters()
    check(h.counter_delta(before, after, "refused/subscribe") == len(cases),
          "refused/subscribe moved by %d, want %d" %
          (h.counter_delta(before, after, "refused/subscribe"), len(cases)))


def test_connection_churn(lab, check):
    """The plugin's per-connection table keeps the last 1024 gone connections (to recognise their
    Wills) and frees older ones: 1500 connections that subscribe, some with a Will carrying a
    forgery, leave the broker answering and nothing delivered."""
    w = lab.connect(lab.dev3, client_id="churn-watch")
    w.subscribe(ch(lab.dev3))
    forged = lab.msg(lab.dev3, "DATA", key=lab.dev1, data_id=b"w", data=b"will")
    for i in range(1500):
        will = (ch(lab.dev3), forged, 1, False) if i % 10 == 0 else None
        c = h.Client(lab.broker.port, "churn-%d" % i, username=lab.dev3.hex, will=will)
        c.subscribe(ch(lab.dev3), qos=0)
        if i % 2:
            c.disconnect()
        else:
            c.close()
    h.not_delivered(check, [w], forged, "a forged Will from a churned connection", wait=1.0)
    check(w.ping(), "the broker stopped answering after 1500 connections came and went")


if __name__ == "__main__":
    h.main([test_stranger_cannot_deregister_or_terminate, test_server_cannot_join_itself,
            test_unregistered_ids_store_nothing, test_refused_subscriptions_are_audited,
            test_retransmission_is_mqtt_only,
            test_revoked_sender_not_delivered_after_pubrel,
            test_publish_only_revoked_identity_disconnected, test_forgeries_cost_the_connection,
            test_connection_churn])
