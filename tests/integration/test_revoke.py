#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# test_revoke.py - issue 3 item 9: revoking a key (store + SIGHUP, or the admin control topic
# $CONTROL/srup/v1) drops that sender's next message and disconnects its live MQTT connection,
# after the acknowledgement of what it had sent; only an admin named in policy may use the
# control topic.
import json
import os
import signal
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import srupharness as h  # noqa: E402

CONTROL = "$CONTROL/srup/v1"
S = {}


def lab_factory():
    d = h.Lab(start=False)
    p = os.path.join(d.dir, "admin.policy")
    with open(h.SHIPPED_POLICY) as f:
        text = f.read()
    with open(p, "w") as f:
        f.write(text + "\nadmin %s\n" % d.server2.hex)
    d.broker.policy = p
    d.broker.start()
    return d


def live_then_revoked(lab, check, ident, revoke, label):
    """ident is connected and has just sent a valid message; revoke() revokes it. Check the
    live connection is closed, and that a message from a new connection is refused with a
    PUBACK 0x87 (sent before any disconnect)."""
    ch = "SRUP/%s" % ident.hex
    c = lab.connect(ident, client_id="%s-live" % ident.name)
    c.subscribe(ch)
    h.expect_accept(lab, check, c, ch, lab.msg(ident, "DATA", data_id=b"x", data=b"ok"),
                    "%s: before revocation" % label, receivers=[c])
    revoke()
    closed = c.wait_closed(5.0)
    check(closed, "%s: live connection of the revoked sender still open after 5 s" % label)
    h.log("    %s: live connection events after revocation: %r" % (label, c.events[-3:]))
    c2 = lab.connect(ident, client_id="%s-again" % ident.name)
    m = lab.msg(ident, "DATA", data_id=b"x", data=b"after revocation")
    mark = lab.audit_mark()
    rc = c2.publish(ch, m)
    check(rc == h.RC_NOT_AUTHORIZED, "%s: next message PUBACK %s, want 0x87 (events %r)"
          % (label, h.rc_name(rc), c2.events))
    rec = lab.wait_audit(mark, lambda r: r.get("verdict") == "drop")
    check(rec is not None and rec.get("reason") == "revoked_sender",
          "%s: audit reason %r" % (label, rec and rec.get("reason")))
    if c2.events:
        kinds = [e[0] for e in c2.events]
        if "eof" in kinds or "disconnect" in kinds:
            first_close = min(i for i, k in enumerate(kinds) if k in ("eof", "disconnect"))
            check("puback" in kinds[:first_close],
                  "%s: connection closed before the PUBACK: %r" % (label, c2.events))
    c2.pump(1.0)
    h.log("    %s: the new connection after its refused message: %s" % (
        label, "closed" if c2.closed else "still open"))


def test_revoke_in_store_and_sighup(lab, check):
    def revoke():
        lab.keys_revoke(lab.dev2)
        check(lab.broker.hup(), "no reload after SIGHUP")
    live_then_revoked(lab, check, lab.dev2, revoke, "store + SIGHUP")


def test_publish_racing_the_revocation(lab, check):
    """Publishing while the revocation lands: every message the broker processed (one audit
    record each) got its PUBACK before the connection was closed; none was cut off by a kick
    from inside its own callback."""
    ident = lab.observer
    ch = "SRUP/%s" % ident.hex
    c = lab.connect(ident, client_id="racer")
    mark = lab.audit_mark()
    lab.keys_revoke(ident)
    lab.broker.proc.send_signal(signal.SIGHUP)
    for n in range(40):
        if c.closed:
            break
        try:
            c.publish(ch, lab.msg(ident, "DATA", data_id=b"x", data=bytes([n])), timeout=1.0)
        except OSError:
            break
        time.sleep(0.02)
    c.wait_closed(3.0)
    kinds = [e[0] for e in c.events]
    h.log("    racer events: %r" % kinds)
    check(c.closed, "revoked sender's connection was not closed")
    processed = [r for r in lab.audit(mark) if r.get("client_id") == "racer"]
    n_pub = kinds.count("puback")
    check(n_pub >= len(processed), "%d messages audited for the racer, only %d PUBACKs"
          % (len(processed), n_pub))
    if "puback" in kinds:
        last = max(i for i, k in enumerate(kinds) if k == "puback")
        check(all(k == "puback" for k in kinds[:last + 1]),
              "a disconnect came before a later PUBACK: %r" % kinds)


def control(lab, check, ident, cmd, label):
    c = lab.connect(ident, client_id="ctl-%s-%d" % (ident.name, lab.n_clients))
    c.subscribe(CONTROL + "/response")
    rc = c.publish(CONTROL, json.dumps(cmd).encode())
    resp = c.collect(1.0)
    h.log("    %s: PUBACK %s, responses %r" % (label, h.rc_name(rc),
                                                [d.payload[:200] for d in resp]))
    c.close()
    return rc


def test_admin_control_revoke(lab, check):
    def revoke():
        control(lab, check, lab.server2, {"command": "revoke", "id": lab.dev3.hex},
                "admin revoke dev3")
    live_then_revoked(lab, check, lab.dev3, revoke, "control topic")
    out = h.run([h.SRUP, "keys", "show", "--store", lab.store, "--id", lab.dev3.hex],
                check=False)
    h.log("    srup keys show dev3: %s" % out.stdout.decode(errors="replace").strip()[:200])
    check(b"revoked" in out.stdout.lower(), "control-topic revocation not in the store")


def test_non_admin_control_has_no_effect(lab, check):
    for ident in (lab.dev1, lab.server):
        control(lab, check, ident, {"command": "revoke", "id": lab.dev1.hex},
                "%s tries to revoke dev1" % ident.name)
    c = lab.connect(lab.dev1)
    ch = "SRUP/%s" % lab.dev1.hex
    c.subscribe(ch)
    h.expect_accept(lab, check, c, ch, lab.msg(lab.dev1, "DATA", data_id=b"x", data=b"y"),
                    "dev1 after non-admin revoke attempts", receivers=[c])
    check(not c.wait_closed(1.0), "dev1 was disconnected by a non-admin command")


def test_store_revoke_in_force_without_reload(lab, check):
    """The plugin caches key records only while the store is unchanged (LMDB's last transaction
    id): a revocation written by `srup keys` holds for the very next delivery and message,
    before any reload."""
    ch = "SRUP/%s" % lab.dev1.hex
    check(lab.join(lab.server, lab.dev1), "join of dev1 to server failed")
    c = lab.connect(lab.dev1, client_id="dev1-cache")
    c.subscribe(ch)
    srv = lab.connect(lab.server, client_id="server-cache")
    # warm both caches: dev1 as sender (WRITE) and as reader of its channel (READ)
    h.expect_accept(lab, check, c, ch, lab.msg(lab.dev1, "DATA", data_id=b"x", data=b"warm"),
                    "dev1 before the revocation", receivers=[c])
    h.expect_accept(lab, check, srv, ch, lab.msg(lab.server, "ACTION", action_id=1),
                    "server to dev1 before the revocation", receivers=[c])
    lab.keys_revoke(lab.dev1)
    m = lab.msg(lab.server, "ACTION", action_id=2)
    rc = srv.publish(ch, m)
    # A revoked device is no target any more: refused at once, nothing stored for it.
    check(rc == h.RC_NOT_AUTHORIZED, "server to revoked dev1: PUBACK %s" % h.rc_name(rc))
    h.not_delivered(check, [c], m, "server to dev1 after the store revocation, no reload")
    h.expect_drop(lab, check, c, ch, lab.msg(lab.dev1, "DATA", data_id=b"x", data=b"late"),
                  "revoked_sender", "dev1 after the store revocation, no reload")


def test_admin_control_reload(lab, check):
    lab.keys_revoke(lab.dev1)
    control(lab, check, lab.server2, {"command": "reload"}, "admin reload")
    c = lab.connect(lab.dev1, client_id="dev1-after-reload")
    h.expect_drop(lab, check, c, "SRUP/%s" % lab.dev1.hex,
                  lab.msg(lab.dev1, "DATA", data_id=b"x", data=b"y"), "revoked_sender",
                  "dev1 after store revoke + control reload")


if __name__ == "__main__":
    h.main([test_revoke_in_store_and_sighup, test_publish_racing_the_revocation,
            test_admin_control_revoke, test_non_admin_control_has_no_effect,
            test_store_revoke_in_force_without_reload, test_admin_control_reload],
           lab_factory=lab_factory)
