#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# test_control.py - issue 10 (admin plane): commands on $CONTROL/srup/v1 are strict JSON (the
# old scraper's bypasses do nothing), every command and every refused attempt is an audit line
# with who/what/result and a $SYS counter, and the answer goes to the request's MQTT v5
# response topic (only under $CONTROL/srup/v1/response) with its correlation data.
import json
import os
import struct
import sys
import types

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import srupharness as h  # noqa: E402

CONTROL = "$CONTROL/srup/v1"
RESPONSE = CONTROL + "/response"
PROP_RESPONSE_TOPIC = 0x08
PROP_CORRELATION = 0x09


def lab_factory():
    d = h.Lab(start=False)
    p = os.path.join(d.dir, "admin.policy")
    with open(p, "w") as f:
        f.write(d.policy_text("admin %s\n" % d.server2.hex))
    d.broker.policy = p
    d.broker.start()
    return d


def parse_props(b):
    """{id: value} of an MQTT v5 property block (strings and binary as bytes)."""
    out = {}
    off = 0
    while off < len(b):
        pid = b[off]
        off += 1
        if pid in (0x08, 0x09, 0x03, 0x1A, 0x1C, 0x1F):  # string or binary: 2-byte length
            n = struct.unpack(">H", b[off:off + 2])[0]
            out[pid] = bytes(b[off + 2:off + 2 + n])
            off += 2 + n
        elif pid in (0x01, 0x17, 0x19, 0x24, 0x25, 0x28, 0x29, 0x2A):
            out[pid] = b[off]
            off += 1
        elif pid in (0x21, 0x22, 0x23, 0x13):
            out[pid] = struct.unpack(">H", b[off:off + 2])[0]
            off += 2
        elif pid in (0x02, 0x11, 0x18, 0x27):
            out[pid] = struct.unpack(">I", b[off:off + 4])[0]
            off += 4
        elif pid == 0x0B:
            v, used = h._read_varint(b, off)
            out[pid] = v
            off += used
        elif pid == 0x26:  # user property: two strings
            n = struct.unpack(">H", b[off:off + 2])[0]
            off += 2 + n
            n = struct.unpack(">H", b[off:off + 2])[0]
            off += 2 + n
        else:
            raise h.HarnessError("unknown property 0x%02x" % pid)
    return out


def with_props(c):
    """Make client c keep the v5 properties of each PUBLISH it receives (d.props)."""
    orig = c._dispatch

    def dispatch(self, ptype, flags, body):
        props = {}
        if ptype == 3:
            qos = (flags >> 1) & 3
            tl = struct.unpack(">H", body[:2])[0]
            off = 2 + tl + (2 if qos else 0)
            plen, used = h._read_varint(body, off)
            props = parse_props(body[off + used:off + used + plen])
        n = len(self.inbox)
        orig(ptype, flags, body)
        for d in self.inbox[n:]:
            d.props = props
    c._dispatch = types.MethodType(dispatch, c)
    return c


def publish_v5(c, topic, payload, props=b"", qos=1):
    """QoS 1 PUBLISH with a raw property block; returns the PUBACK reason code."""
    mid = c.alloc_mid()
    c.acks.pop(mid, None)
    body = h._str(topic) + struct.pack(">H", mid) + h._varint(len(props)) + props + payload
    c.send_raw(bytes([0x30 | (qos << 1)]) + h._varint(len(body)) + body)
    c.pump(5.0 * h.SLOW, until=lambda: mid in c.acks)
    return c.acks.get(mid)


def prop_str(pid, value):
    return bytes([pid]) + h._str(value)


def admin(lab, payload, props=b"", sub=RESPONSE + "/#", ident=None):
    """Send one command as the admin (or ident); returns (PUBACK, responses, audit records)."""
    ident = ident or lab.server2
    c = with_props(lab.connect(ident, client_id="ctl-%s-%d" % (ident.name, lab.n_clients + 1)))
    c.subscribe(sub or RESPONSE)  # RESPONSE/# covers RESPONSE itself
    mark = lab.audit_mark()
    if isinstance(payload, dict):
        payload = json.dumps(payload).encode()
    rc = publish_v5(c, CONTROL, payload, props)
    lab.wait_audit(mark, lambda r: r.get("verdict") == "admin")
    resp = c.collect(0.5)
    recs = [r for r in lab.audit(mark) if r.get("verdict") == "admin"]
    c.close()
    return rc, resp, recs


def test_scraper_bypasses_do_nothing(lab, check):
    """Texts the old strstr scraper took for a command are bad commands now: nothing done."""
    ch = "SRUP/%s" % lab.dev1.hex
    cases = [b'garbage "command" : "reload"',
             json.dumps({"note": 'x "command":"revoke" "id":"%s"' % lab.dev1.hex}).encode(),
             ('{"command":"revoke","id":"%s","id":"%s"}' % (lab.dev1.hex, lab.dev1.hex)).encode(),
             ('{"command":"revoke","id":"%s","by":"me"}' % lab.dev1.hex).encode(),
             ('{"command":"revoke","id":"0x%s"}' % lab.dev1.hex).encode(),
             ('{"command":"revoke","id":"%s"} trailing' % lab.dev1.hex).encode(),
             b'{"command":"reload"' + b" " * 9000 + b"}"]
    for i, p in enumerate(cases):
        log0 = lab.broker.log_size()
        rc, resp, recs = admin(lab, p)
        check(rc in (h.RC_OK, h.RC_NO_SUBSCRIBERS), "case %d: PUBACK %s" % (i, h.rc_name(rc)))
        bodies = [json.loads(d.payload) for d in resp if d.topic == RESPONSE]
        check(len(bodies) == 1 and bodies[0].get("result") == "error",
              "case %d: responses %r" % (i, bodies))
        check(len(recs) == 1 and recs[0].get("reason") == "bad_command" and
              recs[0].get("result") == "error",
              "case %d: audit %r" % (i, recs))
        text = lab.broker.log_since(log0)
        check("reload |" not in text and "revoke id=" not in text,
              "case %d: a command ran: %r" % (i, text[-300:]))
    c = lab.connect(lab.dev1)
    c.subscribe(ch)
    h.expect_accept(lab, check, c, ch, lab.msg(lab.dev1, "DATA", data_id=b"x", data=b"alive"),
                    "dev1 after the bypass attempts", receivers=[c])


def test_admin_command_audited_and_counted(lab, check):
    before = lab.counters()
    rc, resp, recs = admin(lab, {"command": "revoke", "id": lab.dev3.hex})
    check(len(recs) == 1, "audit lines %r" % recs)
    r = recs[0] if recs else {}
    h.log("    audit: %s" % json.dumps(r))
    want = {"verdict": "admin", "reason": None, "source": "control",
            "identity": lab.server2.hex, "command": "revoke", "target": lab.dev3.hex,
            "result": "ok", "detail": "revoked"}
    for k, v in want.items():
        check(r.get(k, "<missing>") == v, "audit %s = %r, want %r" % (k, r.get(k), v))
    check(str(r.get("client_id", "")).startswith("ctl-server2-"), "client_id %r" %
          r.get("client_id"))
    for k in ("time", "topic", "type", "sender", "seq"):
        check(k in r, "audit line lacks %s" % k)
    after = lab.counters()
    check(h.counter_delta(before, after, "admin/ok") == 1, "admin/ok moved by %d" %
          h.counter_delta(before, after, "admin/ok"))
    # an unknown id: result error, counted as refused
    rc, resp, recs = admin(lab, {"command": "revoke", "id": "123"})
    check(len(recs) == 1 and recs[0].get("result") == "error" and
          recs[0].get("detail") == "unknown id", "unknown id audit %r" % recs)
    after2 = lab.counters()
    check(h.counter_delta(after, after2, "admin/refused") == 1, "admin/refused moved by %d" %
          h.counter_delta(after, after2, "admin/refused"))


def test_non_admin_attempt_audited(lab, check):
    before = lab.counters()
    for ident in (lab.dev1, lab.server):
        rc, resp, recs = admin(lab, {"command": "revoke", "id": lab.dev1.hex}, sub=None,
                               ident=ident)
        check(rc == h.RC_NOT_AUTHORIZED, "%s: PUBACK %s, want 0x87" % (ident.name,
                                                                      h.rc_name(rc)))
        check(not resp, "%s got a response: %r" % (ident.name, resp))
        check(len(recs) == 1 and recs[0].get("reason") == "not_admin" and
              recs[0].get("identity") == ident.hex and recs[0].get("result") == "error" and
              recs[0].get("source") == "control",
              "%s: audit %r" % (ident.name, recs))
    after = lab.counters()
    check(h.counter_delta(before, after, "admin/refused") == 2, "admin/refused moved by %d" %
          h.counter_delta(before, after, "admin/refused"))
    check(h.counter_delta(before, after, "admin/ok") == 0, "admin/ok moved")


def test_response_topic_and_correlation(lab, check):
    corr = b"\x00\x01op-42\xff"
    topic = RESPONSE + "/op-42"
    props = prop_str(PROP_RESPONSE_TOPIC, topic) + bytes([PROP_CORRELATION]) + h._str(corr)
    rc, resp, recs = admin(lab, {"command": "reload"}, props)
    got = [d for d in resp if d.topic == topic]
    check(len(got) == 1, "responses %r, want one on %s" % ([d.topic for d in resp], topic))
    check(not [d for d in resp if d.topic == RESPONSE], "also answered on the default topic")
    if got:
        body = json.loads(got[0].payload)
        h.log("    response: %s props %r" % (body, got[0].props))
        check(body == {"command": "reload", "result": "ok", "detail": "reloaded",
                       "correlation": corr.hex()}, "response body %r" % body)
        check(got[0].props.get(PROP_CORRELATION) == corr,
              "correlation data property %r" % got[0].props.get(PROP_CORRELATION))
    check(len(recs) == 1 and recs[0].get("result") == "ok", "audit %r" % recs)
    # other response topics: refused with an error on the default topic, command not run
    watcher = lab.connect(client_id="plain-watcher")
    watcher.subscribe("elsewhere/#")
    for bad in ("elsewhere/reply", RESPONSE + "x", CONTROL):
        props = prop_str(PROP_RESPONSE_TOPIC, bad) + bytes([PROP_CORRELATION]) + h._str(b"c1")
        rc, resp, recs = admin(lab, {"command": "revoke", "id": lab.dev2.hex}, props)
        dflt = [json.loads(d.payload) for d in resp if d.topic == RESPONSE]
        check(len(dflt) == 1 and dflt[0].get("result") == "error" and
              "response topic" in dflt[0].get("detail", ""),
              "%s: default-topic answers %r" % (bad, dflt))
        check(not [d for d in resp if d.topic != RESPONSE], "%s: answered elsewhere" % bad)
        check(len(recs) == 1 and recs[0].get("reason") == "bad_command", "%s: audit %r" %
              (bad, recs))
    check(not watcher.collect(0.3), "a plain subscriber received an admin answer")
    c = lab.connect(lab.dev2)
    ch = "SRUP/%s" % lab.dev2.hex
    c.subscribe(ch)
    h.expect_accept(lab, check, c, ch, lab.msg(lab.dev2, "DATA", data_id=b"x", data=b"alive"),
                    "dev2 after refused-topic revokes", receivers=[c])
    # non-admins cannot read answers below the response topic
    spy = lab.connect(lab.dev1, client_id="spy")
    rc = spy.subscribe(RESPONSE + "/op-43")
    check(rc >= 0x80, "non-admin SUBACK %s for a response topic" % h.rc_name(rc))


if __name__ == "__main__":
    h.main([test_scraper_bypasses_do_nothing, test_admin_command_audited_and_counted,
            test_non_admin_attempt_audited, test_response_topic_and_correlation],
           lab_factory=lab_factory)
