#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# test_identity.py - issue 10 items 8-10: a SRUP identity must be proven. Under the default
# `identity certificate` a client on the plain listener that claims a device's or an admin's
# name (username, client id) has no identity: it can neither read, subscribe to nor publish on
# SRUP topics, nor use $CONTROL/srup/v1; a certificate with CN = a device id works, one with two
# CNs or none does not; `identity username` still works where the broker authenticates the
# username. $SYS/broker/srup/ is for admins; shared subscriptions that could match a SRUP topic
# are refused, so no stranger can take a member's share of a device channel.
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import srupharness as h  # noqa: E402

CONTROL = "$CONTROL/srup/v1"
S = {}


def data(lab, ident, text):
    return lab.msg(ident, "DATA", data_id=b"id", data=text.encode())


def setup(lab, check):
    check(lab.join(lab.server, lab.dev1), "join of dev1 to server failed")
    S["ch"] = "SRUP/%s" % lab.dev1.hex
    S["d1"] = lab.connect(lab.dev1, client_id="dev1-cert")
    check(S["d1"].subscribe(S["ch"]) == 0x01, "dev1 (certificate) cannot subscribe")
    S["srv"] = lab.connect(lab.server, client_id="server-cert")
    check(S["srv"].subscribe(S["ch"] + "/#") == 0x01, "server (certificate) cannot subscribe")


def test_claimed_device_name_cannot_read(lab, check):
    """Plain listener, username and client id = dev1's id: no SUBACK, no delivery."""
    c = lab.connect(lab.dev1, client_id=lab.dev1.hex, plain=True)
    for filt in (S["ch"], S["ch"] + "/#", "SRUP/#", "SRUP/+"):
        rc = c.subscribe(filt)
        check(rc == h.RC_NOT_AUTHORIZED, "claimed dev1 subscribing %s: SUBACK 0x%02x, want 0x87"
              % (filt, rc))
    check(c.subscribe("#") < 0x80, "'#' refused to a plain client (not SRUP's business)")
    m = lab.msg(lab.server, "ACTION", action_id=7)
    h.expect_accept(lab, check, S["srv"], S["ch"], m, "server's ACTION to dev1",
                    receivers=[S["d1"]])
    h.not_delivered(check, [c], m, "server's ACTION to the claimed dev1", wait=0.5)


def test_claimed_device_name_cannot_publish(lab, check):
    c = lab.connect(lab.dev1, client_id=lab.dev1.hex, plain=True)
    h.expect_drop(lab, check, c, S["ch"], data(lab, lab.dev1, "claimed"), "no_identity",
                  "dev1's signed DATA from a plain client claiming dev1",
                  watchers=[S["srv"], S["d1"]])
    jt = "SRUP/servers/%s/%s" % (lab.server.hex, lab.dev2.hex)
    h.expect_drop(lab, check, c, jt, lab.msg(lab.dev2, "JOIN_REQ"), "no_identity",
                  "a JOIN_REQ from a plain client", watchers=[S["srv"]])
    # the device itself, by certificate, is unaffected
    h.expect_accept(lab, check, S["d1"], S["ch"], data(lab, lab.dev1, "proven"),
                    "dev1's DATA by certificate", receivers=[S["srv"]])


def test_claimed_admin_name_cannot_control(lab, check):
    """The lab admin's id as username on the plain listener: the control topic refuses the
    publish and the response topic, and the revoke has no effect."""
    c = lab.connect(lab.admin, client_id=lab.admin.hex, plain=True)
    rc = c.subscribe(CONTROL + "/response")
    check(rc == h.RC_NOT_AUTHORIZED, "claimed admin subscribing to the response topic: SUBACK "
          "0x%02x" % rc)
    rc = c.subscribe("$CONTROL/#")
    h.log("    claimed admin subscribing $CONTROL/#: SUBACK 0x%02x" % rc)
    rc = c.publish(CONTROL, b'{"command":"revoke","id":"%s"}' % lab.dev2.hex.encode())
    check(rc == h.RC_NOT_AUTHORIZED, "claimed admin's revoke: PUBACK %s" % h.rc_name(rc))
    got = c.collect(0.7)
    check(not got, "claimed admin received %r" % [(d.topic, d.payload[:80]) for d in got])
    d2 = lab.connect(lab.dev2)
    ch2 = "SRUP/%s" % lab.dev2.hex
    d2.subscribe(ch2)
    h.expect_accept(lab, check, d2, ch2, data(lab, lab.dev2, "still here"),
                    "dev2 after the claimed admin's revoke", receivers=[d2])
    out = h.run([h.SRUP, "keys", "show", "--store", lab.store, "--id", lab.dev2.hex])
    check(b"revoked" not in out.stdout.lower(), "dev2 revoked by a claimed admin")


def test_admin_certificate_controls(lab, check):
    """Positive control: the admin's certificate reaches the control topic and its answer."""
    a = lab.connect(lab.admin, client_id="admin-cert")
    check(a.subscribe(CONTROL + "/response") == 0x01, "admin (certificate) cannot subscribe "
          "to the response topic")
    rc = a.publish(CONTROL, b'{"command":"revoke","id":"%s"}' % lab.dev3.hex.encode())
    check(h.delivered(rc), "admin's revoke: PUBACK %s" % h.rc_name(rc))
    resp = a.wait_for(lambda d: d.topic == CONTROL + "/response", timeout=3.0)
    check(resp is not None and b'"result":"ok"' in resp.payload,
          "admin's revoke response %r" % (resp and resp.payload))
    out = h.run([h.SRUP, "keys", "show", "--store", lab.store, "--id", lab.dev3.hex])
    check(b"revoked" in out.stdout.lower(), "dev3 not revoked by the admin")


def test_certificate_without_one_cn_has_no_identity(lab, check):
    """Certificates from the lab's CA on dev1's key, but with two CNs (both dev1's id) or none
    (the id in another attribute): no identity."""
    for name, subj in (("two-cns", "/CN=%s/CN=%s" % (lab.dev1.hex, lab.dev1.hex)),
                       ("no-cn", "/O=SRUP/OU=%s" % lab.dev1.hex)):
        cert = lab.pki.cert("dev1-" + name, subj, key=lab.dev1.priv)
        c = lab.connect(cert=cert, client_id="dev1-" + name, username=lab.dev1.hex)
        rc = c.subscribe(S["ch"])
        check(rc == h.RC_NOT_AUTHORIZED, "%s certificate subscribing to dev1's channel: SUBACK "
              "0x%02x" % (name, rc))
        h.expect_drop(lab, check, c, S["ch"], data(lab, lab.dev1, name), "no_identity",
                      "dev1's DATA over a certificate with %s" % name,
                      watchers=[S["srv"], S["d1"]])


def test_sys_counters_for_admins_only(lab, check):
    """Item 9: non-admins get no $SYS/broker/srup/ topic (by name: SUBACK 0x87; by wildcard:
    nothing delivered), while other $SYS topics still reach them; the admin gets the counters."""
    counters = lab.counters()  # the admin's certificate
    check("accepted" in counters and "dropped/no_identity" in counters,
          "admin got no counters: %r" % sorted(counters)[:10])
    check(counters.get("dropped/no_identity", 0) >= 1, "no_identity not counted: %r"
          % counters.get("dropped/no_identity"))
    for ident, plain in ((lab.dev2, False), (lab.server, False), (lab.admin, True), (None, True)):
        c = lab.connect(ident, plain=plain)
        rc = c.subscribe("$SYS/broker/srup/#", qos=0)
        check(rc == h.RC_NOT_AUTHORIZED, "%s subscribing $SYS/broker/srup/#: SUBACK 0x%02x"
              % (c.client_id, rc))
        rc = c.subscribe("$share/g/$SYS/#", qos=0)
        check(rc == h.RC_NOT_AUTHORIZED, "%s subscribing $share/g/$SYS/#: SUBACK 0x%02x"
              % (c.client_id, rc))
        check(c.subscribe("$SYS/#", qos=0) == 0x00, "%s cannot subscribe $SYS/#" % c.client_id)
        got = c.collect(2.5)
        srup = [d.topic for d in got if d.topic.startswith("$SYS/broker/srup/")]
        other = [d.topic for d in got if not d.topic.startswith("$SYS/broker/srup/")]
        check(not srup, "%s received %s" % (c.client_id, srup[:3]))
        check(other, "%s received no other $SYS topic" % c.client_id)


def test_shared_subscriptions_refused(lab, check):
    """Item 10: every shared subscription that could match a SRUP topic is refused, so the
    member server gets every message of dev1's channel."""
    cases = ((lab.stranger, "$share/g/%s" % S["ch"]), (lab.stranger, "$share/g/#"),
             (lab.stranger, "$share/g/SRUP/+"), (lab.stranger, "$share/g/+/%s" % lab.dev1.hex),
             (lab.server2, "$share/g/%s" % S["ch"]), (lab.server, "$share/g/%s" % S["ch"]),
             (lab.dev1, "$share/g/%s" % S["ch"]), (None, "$share/g/#"))
    for ident, filt in cases:
        c = lab.connect(ident)
        rc = c.subscribe(filt)
        check(rc == h.RC_NOT_AUTHORIZED, "%s subscribing %s: SUBACK 0x%02x, want 0x87"
              % (c.client_id, filt, rc))
    other = lab.connect(lab.stranger)
    check(other.subscribe("$share/g/plain/+") < 0x80, "a shared subscription outside SRUP/ "
          "was refused")
    sent = []
    for i in range(6):
        m = data(lab, lab.dev1, "share-%d" % i)
        sent.append(m)
        check(h.delivered(S["d1"].publish(S["ch"], m)), "dev1's DATA %d refused" % i)
    for m in sent:
        check(S["srv"].wait_for(lambda d, m=m: d.payload == m, timeout=3.0) is not None,
              "the member server missed one of dev1's messages")


def test_builtin_policy_is_certificate(lab, check):
    """The policy compiled into the plugin (no plugin_opt_policy): a claimed username is no
    identity, a certificate is."""
    ch = "SRUP/%s" % lab.dev1.hex
    c = lab.connect(lab.dev1, plain=True)
    check(c.subscribe(ch) == h.RC_NOT_AUTHORIZED, "claimed dev1 may subscribe (built-in)")
    h.expect_drop(lab, check, c, ch, data(lab, lab.dev1, "claimed"), "no_identity",
                  "claimed dev1's DATA under the built-in policy")
    d = lab.connect(lab.dev1)
    check(d.subscribe(ch) == 0x01, "dev1's certificate cannot subscribe (built-in)")
    h.expect_accept(lab, check, d, ch, data(lab, lab.dev1, "proven"),
                    "dev1's DATA by certificate under the built-in policy", receivers=[d])


def builtin_lab():
    return h.Lab(policy="builtin")


PASSWORD = "pw-%d" % os.getpid()


def test_username_identity_where_chosen(lab, check):
    """`identity username` with usernames the broker authenticates (password_file; the CN on
    the TLS listener): the right password makes the username the identity, a wrong one gets
    no connection, no username is no identity."""
    ch = "SRUP/%s" % lab.dev1.hex
    check(lab.join(lab.server, lab.dev1), "join of dev1 to server failed")
    d = lab.connect(lab.dev1, plain=True, password=PASSWORD)
    check(d.subscribe(ch) == 0x01, "dev1 with its password cannot subscribe")
    s = lab.connect(lab.server)  # TLS: use_identity_as_username makes the CN the username
    h.expect_accept(lab, check, s, ch, lab.msg(lab.server, "ACTION", action_id=1),
                    "server (certificate CN as username) to dev1", receivers=[d])
    h.expect_accept(lab, check, d, ch, data(lab, lab.dev1, "authenticated"),
                    "dev1 (password) on its channel", receivers=[d])
    try:
        bad = lab.connect(lab.dev1, plain=True, password="wrong")
        bad.close()
        check(False, "dev1's username connected with a wrong password")
    except (OSError, h.HarnessError):
        pass
    anon = lab.connect(None, client_id=lab.dev1.hex)
    h.expect_drop(lab, check, anon, ch, data(lab, lab.dev1, "anonymous"), "no_identity",
                  "dev1's DATA from an anonymous client", watchers=[d])


def username_lab():
    return h.username_lab(passwords={"dev1": PASSWORD})


if __name__ == "__main__":
    h.main([setup, test_claimed_device_name_cannot_read, test_claimed_device_name_cannot_publish,
            test_claimed_admin_name_cannot_control, test_admin_certificate_controls,
            test_certificate_without_one_cn_has_no_identity, test_sys_counters_for_admins_only,
            test_shared_subscriptions_refused, (test_builtin_policy_is_certificate, builtin_lab),
            (test_username_identity_where_chosen, username_lab)])
