#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# test_join.py - issue 3 item 5: a device may publish only its own join request to
# SRUP/servers/<server>/<itself>; only that server receives SRUP/servers/<server>/# (wildcard
# subscribers learn nothing); a device channel SRUP/<device> reaches only that device and the
# servers it has joined.
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import srupharness as h  # noqa: E402

S = {}


def jt(lab, server, device):
    return "SRUP/servers/%s/%s" % (server.hex, device.hex)


def setup(lab, check):
    srv = lab.connect(lab.server)
    check(srv.subscribe("SRUP/servers/%s/#" % lab.server.hex) == 1,
          "server cannot subscribe to its own join topics")
    S["srv"] = srv
    # Eavesdroppers: a SUBACK may be granted (wildcards pass the subscribe check) but nothing
    # may be delivered to them.
    eaves = []
    for ident, filt in ((lab.server2, "SRUP/servers/%s/#" % lab.server.hex),
                        (lab.dev2, "SRUP/servers/%s/#" % lab.server.hex),
                        (lab.dev2, "SRUP/servers/%s/%s" % (lab.server.hex, lab.dev1.hex)),
                        (lab.observer, "#"), (None, "#"), (None, "+/servers/+/+"),
                        (None, "SRUP/servers/+/+"), (lab.dev2, "SRUP/#"),
                        (None, "$share/g/SRUP/servers/%s/#" % lab.server.hex)):
        c = lab.connect(ident, client_id="eaves-%d" % len(eaves))
        rc = c.subscribe(filt)
        h.log("    %s subscribes %s: SUBACK 0x%02x" % (c.client_id, filt, rc))
        eaves.append(c)
    S["eaves"] = eaves


def test_own_join_request_reaches_only_that_server(lab, check):
    d = lab.connect(lab.dev1)
    for mtype, fields in (("JOIN_REQ", {}), ("HM_JOIN_REQ", {}),
                          ("OBS_JOIN_REQ", {"observer_id": lab.observer.id})):
        m = lab.msg(lab.dev1, mtype, **fields)
        h.expect_accept(lab, check, d, jt(lab, lab.server, lab.dev1), m, mtype,
                        receivers=[S["srv"]])
        h.not_delivered(check, S["eaves"], m, mtype + " (eavesdroppers)", wait=0.3)


def test_join_request_for_another_device(lab, check):
    d = lab.connect(lab.dev1)
    m = lab.msg(lab.dev1, "JOIN_REQ")
    h.expect_drop(lab, check, d, jt(lab, lab.server, lab.dev2), m, "join_topic_mismatch",
                  "dev1's JOIN_REQ on dev2's join topic", watchers=[S["srv"]] + S["eaves"])
    m = lab.msg(lab.dev1, "JOIN_REQ")
    h.expect_drop(lab, check, d, "SRUP/servers/%s/%s" % (lab.server.hex, lab.dev1.hex.upper()),
                  m, None, "join topic with the id in upper case", watchers=[S["srv"]])
    m = lab.msg(lab.dev1, "JOIN_REQ")
    h.expect_drop(lab, check, d, "SRUP/servers/%s/%s/extra" % (lab.server.hex, lab.dev1.hex),
                  m, None, "join topic with an extra level", watchers=[S["srv"]])
    other = lab.connect(lab.dev2)
    m = lab.msg(lab.dev1, "JOIN_REQ")
    h.expect_drop(lab, check, other, jt(lab, lab.server, lab.dev1), m, "identity_mismatch",
                  "dev1's JOIN_REQ published by dev2", watchers=[S["srv"]])


def test_non_join_types_on_join_topic(lab, check):
    d = lab.connect(lab.dev1)
    m = lab.msg(lab.dev1, "DATA", data_id=b"a", data=b"b")
    h.expect_drop(lab, check, d, jt(lab, lab.server, lab.dev1), m, "not_allowed",
                  "DATA on the join topic", watchers=[S["srv"]] + S["eaves"])
    s = lab.connect(lab.server)
    m = lab.msg(lab.server, "ACTION", action_id=1)
    h.expect_drop(lab, check, s, jt(lab, lab.server, lab.dev1), m, None,
                  "server ACTION on a join topic", watchers=S["eaves"])


def test_device_channel_only_device_and_joined_servers(lab, check):
    ch = "SRUP/%s" % lab.dev1.hex
    dev = lab.connect(lab.dev1)
    dev.subscribe(ch)
    srv = lab.connect(lab.server)
    srv.subscribe(ch + "/#")
    srv2 = lab.connect(lab.server2)
    rc = srv2.subscribe(ch + "/#")
    h.log("    server2 (not joined) subscribes %s/#: SUBACK 0x%02x" % (ch, rc))
    d2 = lab.connect(lab.dev2)
    rc = d2.subscribe(ch)
    h.log("    dev2 subscribes %s: SUBACK 0x%02x" % (ch, rc))
    outsiders = [srv2, d2] + S["eaves"]

    # Before any join, the device's DATA reaches no server.
    m = lab.msg(lab.dev1, "DATA", data_id=b"t", data=b"before-join")
    h.expect_accept(lab, check, dev, ch, m, "DATA before join", receivers=[dev])
    h.not_delivered(check, [srv] + outsiders, m, "DATA before join (servers)", wait=0.3)

    check(lab.join(lab.server, lab.dev1), "join of dev1 to server failed")
    m = lab.msg(lab.dev1, "DATA", data_id=b"t", data=b"after-join")
    h.expect_accept(lab, check, dev, ch, m, "DATA after join", receivers=[srv, dev])
    h.not_delivered(check, outsiders, m, "DATA after join (outsiders)", wait=0.3)
    m = lab.msg(lab.server, "ACTION", action_id=3)
    h.expect_accept(lab, check, srv, ch, m, "ACTION from joined server", receivers=[dev])
    h.not_delivered(check, outsiders, m, "ACTION (outsiders)", wait=0.3)

    # server2 joins too: from then on it receives the channel.
    check(lab.join(lab.server2, lab.dev1), "join of dev1 to server2 failed")
    m = lab.msg(lab.dev1, "DATA", data_id=b"t", data=b"two-servers")
    h.expect_accept(lab, check, dev, ch, m, "DATA with two servers", receivers=[srv, srv2])
    h.not_delivered(check, [d2] + S["eaves"], m, "DATA with two servers (outsiders)", wait=0.3)


def test_resign_ends_membership(lab, check):
    """RESIGN_REQUEST from the device (verified) removes it from its servers."""
    ch = "SRUP/%s" % lab.dev1.hex
    dev = lab.connect(lab.dev1)
    srv = lab.connect(lab.server)
    srv.subscribe(ch + "/#")
    m = lab.msg(lab.dev1, "RESIGN_REQUEST")
    h.expect_accept(lab, check, dev, ch, m, "RESIGN_REQUEST", receivers=[srv])
    m = lab.msg(lab.dev1, "DATA", data_id=b"t", data=b"after-resign")
    dev.publish(ch, m)
    h.not_delivered(check, [srv], m, "DATA after RESIGN_REQUEST", wait=0.3)


def test_terminate_cmd_ends_membership(lab, check):
    """A server's verified TERMINATE_CMD reaches the device and ends that membership."""
    ch = "SRUP/%s" % lab.dev2.hex
    check(lab.join(lab.server, lab.dev2), "join of dev2 to server failed")
    dev = lab.connect(lab.dev2)
    dev.subscribe(ch)
    srv = lab.connect(lab.server)
    srv.subscribe(ch + "/#")
    m = lab.msg(lab.dev2, "DATA", data_id=b"t", data=b"member")
    h.expect_accept(lab, check, dev, ch, m, "DATA while joined", receivers=[srv])
    m = lab.msg(lab.server, "TERMINATE_CMD")
    h.expect_accept(lab, check, srv, ch, m, "TERMINATE_CMD", receivers=[dev])
    m = lab.msg(lab.dev2, "DATA", data_id=b"t", data=b"after-terminate")
    dev.publish(ch, m)
    h.not_delivered(check, [srv], m, "DATA after TERMINATE_CMD", wait=0.3)


def test_deregister_req_revokes_key(lab, check):
    """DEREGISTER_REQ (verified) reaches the server, then the device's key is revoked."""
    d3 = lab.dev3
    ch = "SRUP/%s" % d3.hex
    check(lab.join(lab.server, d3), "join of dev3 to server failed")
    dev = lab.connect(d3)
    srv = lab.connect(lab.server)
    srv.subscribe(ch + "/#")
    m = lab.msg(d3, "DEREGISTER_REQ")
    h.expect_accept(lab, check, dev, ch, m, "DEREGISTER_REQ", receivers=[srv])
    dev = lab.connect(d3, client_id="dev3-after-deregister")
    h.expect_drop(lab, check, dev, ch, lab.msg(d3, "DATA", data_id=b"t", data=b"x"),
                  "revoked_sender", "DATA after DEREGISTER_REQ", watchers=[srv])
    out = h.run([h.SRUP, "keys", "show", "--store", lab.store, "--id", d3.hex], check=False)
    check(b"revoked" in out.stdout.lower(), "store does not show dev3 revoked: %r"
          % out.stdout[:200])


def test_deregister_cmd_revokes_device_key(lab, check):
    """A server's DEREGISTER_CMD to a device reaches it, then the device's key is revoked."""
    ob = h.Identity("dev4", lab.dir, "device")
    lab.keys_add(ob)
    check(lab.broker.hup(), "no reload after SIGHUP")
    check(lab.join(lab.server, ob), "join of dev4 to server failed")
    ch = "SRUP/%s" % ob.hex
    dev = lab.connect(ob)
    dev.subscribe(ch)
    srv = lab.connect(lab.server)
    m = lab.msg(lab.server, "DEREGISTER_CMD")
    h.expect_accept(lab, check, srv, ch, m, "DEREGISTER_CMD", receivers=[dev])
    dev = lab.connect(ob, client_id="dev4-after-deregister")
    h.expect_drop(lab, check, dev, ch, lab.msg(ob, "DATA", data_id=b"t", data=b"x"),
                  "revoked_sender", "DATA from the deregistered device")


if __name__ == "__main__":
    h.main([setup, test_own_join_request_reaches_only_that_server,
            test_join_request_for_another_device, test_non_join_types_on_join_topic,
            test_device_channel_only_device_and_joined_servers, test_resign_ends_membership,
            test_terminate_cmd_ends_membership, test_deregister_req_revokes_key,
            test_deregister_cmd_revokes_device_key])
