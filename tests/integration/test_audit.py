#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# test_audit.py - issue 3 item 10: the audit log is one JSON object per decision with the
# contract's fields; it is rate-limited per reason (a flood does not fill the disk) while the
# counters still count every drop; each drop is logged at WARNING level in the broker log; the
# counters appear under $SYS/broker/srup/.
import calendar
import hashlib
import json
import os
import re
import ssl
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
    check(rec.get("address") == "127.0.0.1", "address %r" % rec.get("address"))
    check(rec.get("cert_sha256") == cert_sha256(lab.certs[lab.server.name][0]),
          "cert_sha256 %r, want the client certificate's" % rec.get("cert_sha256"))


def cert_sha256(crt):
    with open(crt) as f:
        return hashlib.sha256(ssl.PEM_cert_to_DER_cert(f.read())).hexdigest()


def test_peer_fields(lab, check):
    """Issue 15: the peer's address on every line, the certificate's SHA-256 on TLS only (also
    for a TLS client that is not a SRUP identity, and on an admin line)."""
    ch = "SRUP/%s" % lab.dev1.hex
    mark = lab.audit_mark()
    c = lab.connect(None, client_id="audit-plain-peer", plain=True)
    c.publish(ch, b"")
    rec = lab.wait_audit(mark, lambda r: r.get("client_id") == "audit-plain-peer")
    if check(rec is not None, "no audit record for the plain client"):
        check(rec.get("address") == "127.0.0.1", "plain: address %r" % rec.get("address"))
        check("cert_sha256" in rec and rec["cert_sha256"] is None,
              "plain: cert_sha256 %r, want null" % rec.get("cert_sha256", "<missing>"))
    mark = lab.audit_mark()
    c = lab.connect(lab.stranger, client_id="audit-tls-stranger")
    c.publish(ch, b"")
    rec = lab.wait_audit(mark, lambda r: r.get("client_id") == "audit-tls-stranger")
    if check(rec is not None, "no audit record for the TLS stranger"):
        check(rec.get("address") == "127.0.0.1", "tls: address %r" % rec.get("address"))
        check(rec.get("cert_sha256") == cert_sha256(lab.certs[lab.stranger.name][0]),
              "tls stranger: cert_sha256 %r" % rec.get("cert_sha256"))
    mark = lab.audit_mark()
    c = lab.connect(lab.dev2, client_id="audit-not-admin")
    c.publish("$CONTROL/srup/v1", b"{}")
    rec = lab.wait_audit(mark, lambda r: r.get("verdict") == "admin")
    if check(rec is not None, "no admin line for a non-admin's control publish"):
        check(rec.get("address") == "127.0.0.1", "admin: address %r" % rec.get("address"))
        check(rec.get("cert_sha256") == cert_sha256(lab.certs[lab.dev2.name][0]),
              "admin line: cert_sha256 %r" % rec.get("cert_sha256"))


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
            check(o["verdict"] in ("drop", "accept", "retransmit", "admin", "suppressed",
                                   "refuse"),
                  "line %d verdict %r" % (i + 1, o["verdict"]))
            if o["verdict"] in ("drop", "refuse") and o.get("reason") is not None:
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


def strict_records(lab, since=0):
    """Every audit line from line `since` on, decoded as strict UTF-8 then parsed as JSON; a
    line that fails either is reported as {"_bad": raw bytes, "_why": ...}."""
    with open(lab.audit_path, "rb") as f:
        raw = f.read().split(b"\n")
    out = []
    for line in [l for l in raw if l.strip()][since:]:
        try:
            out.append(json.loads(line.decode("utf-8", errors="strict")))
        except (UnicodeDecodeError, ValueError) as e:
            out.append({"_bad": line[:300], "_why": repr(e)})
    return out


def hostile_values():
    """(label, bytes, expected decoded value or None when the bytes are not UTF-8)."""
    vals = []
    for w, ch in (("2-byte", "\u00e9"), ("3-byte", "\u20ac"), ("4-byte", "\U0001F600")):
        for pre in range(4):
            s = "a" * pre + ch * 130
            vals.append(("%s after %d ascii" % (w, pre), s.encode(), s[:128] + "..."))
    q = '"\\' * 70
    vals.append(("quotes and backslashes", q.encode(), q[:128] + "..."))
    vals.append(("line separator", "x\u2028y\u2029z".encode(), "x\u2028y\u2029z"))
    for label, b in (("0xff 0xfe", b"id\xff\xfe"), ("cut 2-byte", b"id\xc3"),
                     ("surrogate", b"id\xed\xa0\x80"), ("overlong", b"id\xc0\xaf"),
                     ("control chars", b"id\x01\x1f\x7f\n"), ("C1 control", b"id\xc2\x85")):
        vals.append((label, b, None))
    return vals


def test_hostile_strings_stay_valid_utf8(lab, check):
    """Hostile client ids, usernames (identities) and topics: every audit line is strict UTF-8
    JSON, and long values are cut after 128 whole characters."""
    mark = lab.audit_mark()
    ch = "SRUP/%s" % lab.dev1.hex
    expect = []  # (field, expected value)
    refused = []
    for label, b, want in hostile_values():
        for field in ("client_id", "identity", "topic"):
            try:
                if field == "client_id":
                    c = lab.connect(client_id=b, username=lab.dev1.hex)
                    c.publish(ch, b"")
                elif field == "identity":
                    c = lab.connect(client_id="hostile-user-%d" % lab.n_clients, username=b)
                    c.publish(ch, b"")
                else:
                    c = lab.connect(lab.dev1, client_id="hostile-topic-%d" % lab.n_clients)
                    c.publish(b"SRUP/" + b, b"x")
                c.close()
            except (h.HarnessError, OSError) as e:
                refused.append("%s as %s: %s" % (label, field, e))
                continue
            if want is not None:
                expect.append((label, field, ("SRUP/" + want) if field == "topic" and
                               not want.endswith("...") else want))
    h.log("    refused by the broker itself: %d (%s)" % (len(refused), "; ".join(refused[:4])))
    time.sleep(0.5)
    recs = strict_records(lab, mark)
    bad = [r for r in recs if "_bad" in r]
    check(not bad, "%d audit lines are not strict UTF-8 JSON, first %r" % (len(bad),
                                                                          bad[:1]))
    check(len(recs) >= 20, "only %d audit lines for the hostile inputs" % len(recs))
    for label, field, want in expect:
        if field == "topic" and want.endswith("..."):
            want = ("SRUP/" + want[:-3])[:128] + "..."
        hit = [r for r in recs if r.get(field) == want]
        check(hit, "%s as %s: no audit line with %s %r" % (label, field, field, want[:40]))
    # invalid bytes that got through are written as \xHH text
    for r in recs:
        for f in ("client_id", "identity", "topic"):
            v = r.get(f)
            check(v is None or not any(0xd800 <= ord(x) <= 0xdfff for x in v),
                  "%s has a surrogate: %r" % (f, v))


def flood_lab():
    """The shipped policy but for bad_signatures 0: the flood's forgeries would otherwise close
    the connection (policy bad_signatures) before the rest of it is counted."""
    lab = h.Lab(start=False)
    p = os.path.join(lab.dir, "flood.policy")
    with open(p, "w") as f:
        f.write(re.sub(r"(?m)^bad_signatures .*$", "bad_signatures 0", lab.policy_text()))
    lab.broker.policy = p
    lab.broker.start()
    return lab


def hostile_lab():
    """Identities from (claimed) usernames on the plain listener, so that hostile identity
    strings reach the audit log: a test of the log's encoding, not of identity proof."""
    lab = h.Lab(start=False)
    p = os.path.join(lab.dir, "username.policy")
    with open(p, "w") as f:
        f.write(lab.policy_text(identity="username"))
    lab.broker.policy = p
    lab.broker.start()
    return lab


def test_one_client_flooding_every_reason_is_bounded(lab, check):
    """One connection sends 100 of each of a dozen drop kinds at once: its audit lines stay
    within audit_client_rate (20 at once, then 2 a second, plus one summary at DISCONNECT), the
    counters count every drop, and the summaries account for every line held back."""
    n = 100
    ch = "SRUP/%s" % lab.dev1.hex
    c = lab.connect(lab.dev1, client_id="reason-flooder")
    good = lab.msg(lab.dev1, "DATA", data_id=b"x", data=b"ok")
    rc = c.publish(ch, good)
    check(h.delivered(rc), "setup message PUBACK %s" % h.rc_name(rc))
    m = lab.msg(lab.dev1, "DATA", data_id=b"x", data=b"flood")
    kinds = [(ch, b""), (ch, m[:-1]), (ch, m + b"\x00"), (ch, bytes([4]) + m[1:]),
             (ch, m[:1] + b"\xee" + m[2:]), (ch, m[:-2] + bytes([m[-2] ^ 1]) + m[-1:]),
             (ch, lab.msg(lab.dev1, "DATA", seq=1, data_id=b"x", data=b"old")),
             (ch, lab.msg(lab.server, "ACTION", action_id=1)),
             (ch, lab.msg(lab.stranger, "DATA", data_id=b"x", data=b"s")),
             ("SRUP/%s" % lab.dev2.hex, lab.msg(lab.dev1, "DATA", data_id=b"x", data=b"p")),
             ("SRUP/x/y/z", m), ("SRUP/servers/%s/%s" % (lab.server.hex, lab.dev2.hex), m)]
    before = lab.counters()
    mark = lab.audit_mark()
    t0 = time.monotonic()
    pkts = b"".join(c.publish_packet(t, p, qos=0) for t, p in kinds) * n
    retained = c.publish_packet(ch, m, qos=0, retain=True) * n
    c.send_raw(pkts + retained)
    sent = (len(kinds) + 1) * n
    rc = c.publish("SRUP/x/y/z", b"barrier", qos=1, timeout=60)
    sent += 1
    check(rc == h.RC_NOT_AUTHORIZED, "barrier PUBACK %s" % h.rc_name(rc))
    time.sleep(2.2)  # the once-a-second housekeeping writes the connection's summary
    c.disconnect()
    time.sleep(0.5)
    elapsed = time.monotonic() - t0
    after = lab.counters()
    dropped = h.counter_delta(before, after, "dropped/total")
    check(dropped == sent, "dropped/total moved by %d, want %d" % (dropped, sent))
    reasons = {k for k in after if k.startswith("dropped/") and
               h.counter_delta(before, after, k) > 0 and k != "dropped/total"}
    h.log("    %d drops over %d reasons in %.1f s: %s" % (
        dropped, len(reasons), elapsed,
        ", ".join("%s %d" % (k[8:], h.counter_delta(before, after, k)) for k in sorted(reasons))))
    check(len(reasons) >= 12, "only %d drop reasons flooded: %r" % (len(reasons), reasons))
    recs = [r for r in strict_records(lab, mark) if r.get("client_id") == "reason-flooder"]
    bound = 20 + 2 * elapsed + 1
    summaries = [r for r in recs if "suppressed" in r]
    h.log("    %d audit lines for this connection (%d summaries), bound %.1f" %
          (len(recs), len(summaries), bound))
    check(len(recs) <= bound, "%d lines from one connection, bound %.1f" % (len(recs), bound))
    check(len(recs) >= 20, "only %d lines: the burst was not written" % len(recs))
    written = len(recs) - len(summaries)
    held = sum(r["suppressed"] for r in summaries)
    check(written + held == sent, "%d written + %d summarised != %d drops" % (written, held,
                                                                              sent))


if __name__ == "__main__":
    h.main([test_drop_record_fields, test_peer_fields, test_unknown_fields_are_null,
            test_every_line_is_one_json_object, test_flood_is_rate_limited,
            test_sys_counters_present, test_accept_counted,
            (test_drops_logged_at_warning_level, warning_lab),
            (test_hostile_strings_stay_valid_utf8, hostile_lab),
            (test_one_client_flooding_every_reason_is_bounded, flood_lab)])
