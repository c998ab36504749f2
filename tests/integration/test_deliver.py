#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# test_deliver.py - issue 3 item 1: a valid message from a registered sender on its channel is
# delivered, QoS 0 and 1, byte for byte; non-SRUP topics are untouched by the plugin.
import sys
import os

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import srupharness as h  # noqa: E402


def test_encoder_matches_independent_encoder(lab, check):
    """`srup encode` and the harness's own encoder (spec §1.2, openssl dgst) agree byte for byte
    (PKCS#1 v1.5 is deterministic), so the messages the other tests send are what we think."""
    s = lab.server
    for mtype, fields in (("ACTION", {"action_id": 9}),
                          ("DATA", {"data_id": b"temp", "data": b"\x01\x02\x03\x04"}),
                          ("RESPONSE", {"status": 0x50}), ("JOIN_REQ", {})):
        tok = lab.token()
        a = lab.srup_encode(s.id, mtype, 77, tok, s.priv, fields)
        b = h.python_encode(s.id, mtype, 77, tok, s.priv, fields)
        check(a == b, "%s: srup encode differs from the spec encoding" % mtype)


def test_join_flow_accepted(lab, check):
    check(lab.join(lab.server, lab.dev1), "JOIN_REQ + RESPONSE JOIN_SUCCESS not both accepted")


def test_server_to_device_qos1(lab, check):
    d = lab.connect(lab.dev1)
    check(d.subscribe("SRUP/%s" % lab.dev1.hex) == 1, "dev1 cannot subscribe to its channel")
    s = lab.connect(lab.server)
    for n in range(3):
        m = lab.msg(lab.server, "ACTION", action_id=n)
        h.expect_accept(lab, check, s, "SRUP/%s" % lab.dev1.hex, m, "ACTION %d QoS 1" % n,
                        receivers=[d])


def test_server_to_device_qos0(lab, check):
    d = lab.connect(lab.dev1)
    d.subscribe("SRUP/%s" % lab.dev1.hex)
    s = lab.connect(lab.server)
    for n in range(3):
        m = lab.msg(lab.server, "ACTION", action_id=10 + n)
        h.expect_accept(lab, check, s, "SRUP/%s" % lab.dev1.hex, m, "ACTION %d QoS 0" % n,
                        receivers=[d], qos=0)


def test_device_to_server_qos0_and_1(lab, check):
    s = lab.connect(lab.server)
    check(s.subscribe("SRUP/%s/#" % lab.dev1.hex) == 1, "server cannot subscribe to dev1")
    d = lab.connect(lab.dev1)
    for qos in (0, 1):
        m = lab.msg(lab.dev1, "DATA", data_id=b"reading", data=bytes([qos]) * 8)
        h.expect_accept(lab, check, d, "SRUP/%s" % lab.dev1.hex, m, "DATA QoS %d" % qos,
                        receivers=[s], qos=qos)
    m = lab.msg(lab.dev1, "RESPONSE", status=0x00)
    h.expect_accept(lab, check, d, "SRUP/%s" % lab.dev1.hex, m, "RESPONSE", receivers=[s])


def test_other_types_server_to_device(lab, check):
    d = lab.connect(lab.dev1)
    d.subscribe("SRUP/%s" % lab.dev1.hex)
    s = lab.connect(lab.server)
    for mtype, fields in (("INITIATE", {"url": b"http://127.0.0.1/fw.bin\x00",
                                        "digest": b"ab" * 32 + b"\x00"}),
                          ("ACTIVATE", {}), ("ID_REQUEST", {})):
        m = lab.msg(lab.server, mtype, **fields)
        h.expect_accept(lab, check, s, "SRUP/%s" % lab.dev1.hex, m, mtype, receivers=[d])


def test_non_srup_topic_untouched(lab, check):
    """The plugin has no opinion outside SRUP topics: arbitrary bytes pass."""
    r = lab.connect(client_id="plain-sub")
    r.subscribe("plain/#")
    p = lab.connect(client_id="plain-pub")
    for qos in (0, 1):
        payload = b"\x05\x04 not srup at all %d" % qos
        h.expect_accept(lab, check, p, "plain/t", payload, "plain QoS %d" % qos, receivers=[r],
                        qos=qos)


def test_accept_counter_and_no_drops(lab, check):
    """Everything above was valid: the accepted counter moved and nothing was dropped."""
    c = lab.counters()
    check(c.get("accepted", 0) >= 11, "$SYS/broker/srup/accepted = %r, want >= 11 (all: %r)"
          % (c.get("accepted"), c))
    check(c.get("dropped/total", 0) == 0, "dropped/total = %r, want 0" % c.get("dropped/total"))
    drops = [r for r in lab.audit() if r.get("verdict") == "drop"]
    check(not drops, "audit has drops for valid traffic: %r" % drops[:3])


if __name__ == "__main__":
    h.main([test_encoder_matches_independent_encoder, test_join_flow_accepted,
            test_server_to_device_qos1, test_server_to_device_qos0,
            test_device_to_server_qos0_and_1, test_other_types_server_to_device,
            test_non_srup_topic_untouched, test_accept_counter_and_no_drops])
