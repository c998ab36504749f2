#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# test_audit.py - issue 3 item 10: the audit log is one JSON object per decision with the
# contract's fields; it is rate-limited per reason (a flood does not fill the disk) while the
# counters still count every drop; each drop is logged at WARNING level in the broker log; the
# counters appear under $SYS/broker/srup/.
import calendar
import json
import os
import re
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import srupharness as h  # noqa: E402

TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
FIELDS = ("time", "verdict", "reason", "client_id", "identity", "topic", "type", "sender",
          "seq", "detail")
S = {}


def test_drop_record_fields(lab, check):
    ch = "SRUP/%s" % lab.dev1.hex
    check(lab.join(lab.server, lab.dev1), "join of dev1 to server failed")
    c = lab.connect(lab.server, client_id="audit-client-1")
    m = bytearray(lab.msg(lab.server, "ACTION", seq=4242, action_id=1))
    m[-2] ^= 1
    mark = lab.audit_mark()
    rc = c.publish(ch, bytes(m))
    check(rc == h.RC_NOT_AUTHORIZED, "PUBACK %s" % h.rc_name(rc))
    rec = lab.wait_audit(mark, lambda r: r.get("verdict") == "drop")
    if not check(rec is not None, "no audit record for a bad signature"):
        return
    h.log("    record: %s" % json.dumps(rec))
    for f in FIELDS:
        check(f in rec, "field %r missing" % f)
    check(isinstance(rec.get("time"), str) and TIME_RE.match(rec["time"]) is not None,
          "time %r is not YYYY-MM-DDTHH:MM:SS.mmmZ" % rec.get("time"))
    t = time.strptime(rec["time"][:19], "%Y-%m-%dT%H:%M:%S") if rec.get("time") else None
    if t:
        skew = abs(calendar.timegm(t) - time.time())
        check(skew < 120, "time is %d s away from now (not UTC?)" % skew)
    check(rec.get("reason") == "bad_signature", "reason %r" % rec.get("reason"))
    check(rec.get("client_id") == "audit-client-1", "client_id %r" % rec.get("client_id"))
    check(rec.get("identity") == lab.server.hex, "identity %r" % rec.get("identity"))
    check(rec.get("topic") == ch, "topic %r" % rec.get("topic"))
    check(rec.get("type") == "ACTION", "type %r" % rec.get("type"))
    check(rec.get("sender") in (lab.server.hex, "%016x" % lab.server.id),
          "sender %r, want %s" % (rec.get("sender"), lab.server.hex))
    check(rec.get("seq") == 4242, "seq %r, want the number 4242" % rec.get("seq"))


def test_unknown_fields_are_null(lab, check):
    c = lab.connect(lab.server, client_id="audit-client-2")
    mark = lab.audit_mark()
    c.publish("SRUP/%s" % lab.dev1.hex, b"")
    rec = lab.wait_audit(mark, lambda r: r.get("verdict") == "drop")
    if not check(rec is not None, "no audit record for an empty payload"):
        return
    check(rec.get("reason") == "empty_payload", "reason %r" % rec.get("reason"))
    for f in ("type", "sender", "seq"):
        check(f in rec and rec[f] is None, "%s is %r, want null" % (f, rec.get(f, "<missing>")))


def test_every_line_is_one_json_object(lab, check):
    lines = lab.audit_lines()
    check(len(lines) >= 2, "only %d audit lines" % len(lines))
    for i, l in enumerate(lines):
        try:
            o = json.loads(l)
        except ValueError:
            check(False, "line %d is not JSON: %r" % (i + 1, l[:200]))
            continue
        check(isinstance(o, dict), "line %d is not an object" % (i + 1))
        if isinstance(o, dict) and "verdict" in o:
            check(o["verdict"] in ("drop", "accept", "retransmit"),
                  "line %d verdict %r" % (i + 1, o["verdict"]))
            if o["verdict"] == "drop":
                check(o.get("reason") in h.DROP_REASONS,
                      "line %d reason %r not in the contract" % (i + 1, o.get("reason")))


def test_flood_is_rate_limited(lab, check):
    """3000 malformed messages in a burst: every one is counted, few are written. (A flood of
    forgeries would close the connection after policy bad_signatures; see test_redteam.py.)"""
    n = 3000
    c = lab.connect(lab.server, client_id="flooder")
    m = bytearray(lab.msg(lab.server, "ACTION", action_id=2))[:-1]
    before = lab.counters()
    size0 = os.path.getsize(lab.audit_path) if os.path.exists(lab.audit_path) else 0
    mark = lab.audit_mark()
    log0 = lab.broker.log_size()
    pkt = c.publish_packet("SRUP/%s" % lab.dev1.hex, bytes(m), qos=0)
    t0 = time.monotonic()
    c.send_raw(pkt * n)
    rc = c.publish("SRUP/%s" % lab.dev1.hex, bytes(m), qos=1, timeout=60)  # barrier
    dt = time.monotonic() - t0
    check(rc == h.RC_NOT_AUTHORIZED, "barrier PUBACK %s" % h.rc_name(rc))
    after = lab.counters()
    got = h.counter_delta(before, after, "dropped/truncated")
    check(got == n + 1, "dropped/truncated moved by %d, want %d" % (got, n + 1))
    recs = [r for r in lab.audit(mark) if r.get("reason") == "truncated"]
    grew = os.path.getsize(lab.audit_path) - size0
    warn = lab.broker.log_since(log0).count("reason=truncated")
    h.log("    %d forgeries in %.2f s: %d audit records (%d bytes), %d broker log lines naming "
          "the reason" % (n + 1, dt, len(recs), grew, warn))
    check(0 < len(recs) < n // 2, "%d audit records for %d drops: not rate-limited" %
          (len(recs), n + 1))
    check(warn < n // 2, "%d broker log lines for %d drops: not rate-limited" % (warn, n + 1))
    S["flood"] = (len(recs), grew)
    # Other reasons keep their own budget: a different drop right after is still recorded.
    mark = lab.audit_mark()
    c.publish("SRUP/%s" % lab.dev1.hex, lab.msg(lab.server, "ACTION", action_id=3) + b"\x00")
    rec = lab.wait_audit(mark, lambda r: r.get("reason") == "trailing_bytes")
    check(rec is not None, "a trailing_bytes drop after the flood was not recorded")


def test_sys_counters_present(lab, check):
    c = lab.counters()
    h.log("    $SYS/broker/srup/: %r" % c)
    for name in ("accepted", "retransmitted", "dropped/total", "dropped/bad_signature",
                 "dropped/empty_payload"):
        check(name in c, "$SYS/broker/srup/%s not published" % name)
    check(isinstance(c.get("dropped/total"), int) and c.get("dropped/total", 0) >=
          c.get("dropped/bad_signature", 0) + c.get("dropped/empty_payload", 0),
          "dropped/total is not the sum")
    for name in c:
        if name.startswith("dropped/") and name != "dropped/total":
            check(name[8:] in h.DROP_REASONS, "counter %s is not a contract reason" % name)


def test_accept_counted(lab, check):
    before = lab.counters()
    d = lab.connect(lab.dev1)
    rc = d.publish("SRUP/%s" % lab.dev1.hex, lab.msg(lab.dev1, "DATA", data_id=b"a",
                                                     data=b"b"))
    check(h.delivered(rc), "PUBACK %s" % h.rc_name(rc))
    after = lab.counters()
    check(h.counter_delta(before, after, "accepted") == 1, "accepted moved by %d, want 1"
          % h.counter_delta(before, after, "accepted"))


def warning_lab():
    return h.Lab(log_types=("warning",))


def test_drops_logged_at_warning_level(lab, check):
    """With log_type warning only (no notice/info/debug), every kind of drop still shows."""
    c = lab.connect(lab.server, client_id="warn-client")
    ch = "SRUP/%s" % lab.dev1.hex
    m = lab.msg(lab.server, "ACTION", action_id=1)
    cases = (("empty_payload", b""), ("trailing_bytes", m + b"\x01"),
             ("truncated", m[:-1]), ("bad_signature", m[:-2] + bytes([m[-2] ^ 1, m[-1]])))
    for reason, payload in cases:
        mark = lab.broker.log_size()
        rc = c.publish(ch, payload)
        check(rc == h.RC_NOT_AUTHORIZED, "%s: PUBACK %s" % (reason, h.rc_name(rc)))
        deadline = time.monotonic() + 2
        text = ""
        while time.monotonic() < deadline:
            text = lab.broker.log_since(mark)
            if reason in text or "warn-client" in text:
                break
            time.sleep(0.05)
        check("warn-client" in text or reason in text,
              "%s drop not in a log_type-warning broker log: %r" % (reason, text[-300:]))


if __name__ == "__main__":
    h.main([test_drop_record_fields, test_unknown_fields_are_null,
            test_every_line_is_one_json_object, test_flood_is_rate_limited,
            test_sys_counters_present, test_accept_counted,
            (test_drops_logged_at_warning_level, warning_lab)])
