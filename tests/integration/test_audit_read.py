#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# test_audit_read.py - issue 15 (read the audit log): `srup audit [options] FILE...` against the
# log of a real broker: drops of several reasons from two identities are counted by --summary
# as Python counts them; each filter (reason, identity, client id, type, topic wildcard,
# address/CIDR, since/until) selects what Python selects; gzip-rotated input reads like plain;
# --json gives the file's lines byte for byte (their chain still verifies); --follow picks up
# new lines and survives a rotation; a malformed line is named FILE:LINE; control characters
# of a topic never reach the terminal raw.
import calendar
import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import srupharness as h  # noqa: E402


def audit(*args, input=None):
    r = h.run([h.SRUP, "audit"] + list(args), input=input, check=False)
    return r.returncode, r.stdout, r.stderr.decode(errors="replace")


def raw_lines(path):
    with open(path, "rb") as f:
        return [l for l in f.read().split(b"\n") if l]


def ms_of(t):
    return calendar.timegm(time.strptime(t[:19], "%Y-%m-%dT%H:%M:%S")) * 1000 + int(t[20:23])


def provoke(lab, tag):
    """Drops of several reasons from server and dev2 (two identities), on two topics."""
    s = lab.connect(lab.server, client_id="read-%s-server" % tag)
    d = lab.connect(lab.dev2, client_id="read-%s-dev2" % tag)
    ch1 = "SRUP/%s" % lab.dev1.hex
    ch2 = "SRUP/%s" % lab.dev2.hex
    s.publish(ch1, b"")  # empty_payload
    m = bytearray(lab.msg(lab.server, "DATA", data_id=b"x", data=b"1"))
    m[-1] ^= 1
    s.publish(ch1, bytes(m))  # bad_signature
    s.publish(ch1, b"\x05\x04\x00")  # a truncated message
    s.publish(ch1, lab.msg(lab.dev1, "DATA", data_id=b"x", data=b"2"))  # not the sender
    d.publish(ch2, b"")
    d.publish(ch2, b"\x09" * 40)  # bad version
    m = bytearray(lab.msg(lab.dev2, "DATA", data_id=b"y", data=b"3"))
    m[-3] ^= 1
    d.publish(ch2, bytes(m))
    s.close()
    d.close()


def wait_lines(lab, n, timeout=3.0):
    deadline = time.monotonic() + timeout * h.SLOW
    while len(lab.audit_lines()) < n and time.monotonic() < deadline:
        time.sleep(0.05)


def test_summary_counts(lab, check):
    provoke(lab, "a")
    provoke(lab, "b")
    wait_lines(lab, 14)
    time.sleep(0.3)
    recs = [json.loads(l) for l in raw_lines(lab.audit_path)]
    cutoff = (time.time() - 3600) * 1000
    drops = [r for r in recs if r.get("verdict") == "drop" and ms_of(r["time"]) >= cutoff]
    reasons = {r["reason"] for r in drops}
    idents = {r["identity"] for r in drops}
    check(len(drops) >= 14, "%d drop lines in the log" % len(drops))
    check(len(reasons) >= 3, "drop reasons provoked: %s" % sorted(reasons))
    check({lab.server.hex, lab.dev2.hex} <= idents, "identities: %s" % sorted(map(str, idents)))

    rc, out, err = audit("--since", "1h", "--verdict", "drop", "--summary", "--json",
                         lab.audit_path)
    check(rc == 0, "rc %d, stderr %r" % (rc, err))
    try:
        s = json.loads(out)
    except ValueError:
        check(False, "--summary --json is not JSON: %r" % out[:300])
        return
    h.log("    summary: %s" % out.decode().strip()[:400])

    def count(field):
        c = {}
        for r in drops:
            k = r.get(field)
            k = "(none)" if k is None else k
            c[k] = c.get(k, 0) + 1
        return c

    check(s.get("total") == len(drops), "total %r, want %d" % (s.get("total"), len(drops)))
    for field in ("reason", "identity", "client_id", "address", "topic", "verdict"):
        check(s.get("by_" + field) == count(field),
              "by_%s %r, want %r" % (field, s.get("by_" + field), count(field)))
    times = sorted((ms_of(r["time"]), r["time"]) for r in drops)
    check(s.get("first") == times[0][1] and s.get("last") == times[-1][1],
          "range %r..%r, want %r..%r" % (s.get("first"), s.get("last"), times[0][1],
                                         times[-1][1]))
    rc, out, err = audit("--since", "1h", "--verdict", "drop", "--summary", lab.audit_path)
    text = out.decode()
    check(rc == 0 and ("%d lines from " % len(drops)) in text and "by reason:" in text
          and lab.server.hex in text and "127.0.0.1" in text, "text summary: %r" % text[:600])


def select(lab, pred):
    return [l for l in raw_lines(lab.audit_path) if pred(json.loads(l))]


def test_filters(lab, check):
    path = lab.audit_path
    ch1 = "SRUP/%s" % lab.dev1.hex

    def same(args, pred, what):
        rc, out, err = audit(*(list(args) + ["--json", path]))
        want = select(lab, pred)
        got = [l for l in out.split(b"\n") if l]
        check(rc == 0 and got == want and len(want) > 0,
              "%s: rc %d, %d lines, want %d (%s)" % (what, rc, len(got), len(want), err))
        return got

    same(["--reason", "empty_payload"], lambda r: r.get("reason") == "empty_payload", "reason")
    same(["--reason", "empty_payload", "--reason", "bad_signature"],
         lambda r: r.get("reason") in ("empty_payload", "bad_signature"), "reason twice (OR)")
    same(["--identity", lab.dev2.hex], lambda r: r.get("identity") == lab.dev2.hex, "identity")
    same(["--identity", lab.dev2.hex.upper(), "--reason", "empty_payload"],
         lambda r: r.get("identity") == lab.dev2.hex and r.get("reason") == "empty_payload",
         "identity (any case) AND reason")
    same(["--client-id", "read-a-server"], lambda r: r.get("client_id") == "read-a-server",
         "client-id")
    same(["--type", "DATA"], lambda r: r.get("type") == "DATA", "type")
    same(["--topic", ch1], lambda r: r.get("topic") == ch1, "topic")
    same(["--topic", "SRUP/+"], lambda r: (r.get("topic") or "").count("/") == 1
         and (r.get("topic") or "").startswith("SRUP/"), "topic SRUP/+")
    same(["--topic", "SRUP/#"], lambda r: (r.get("topic") or "").startswith("SRUP/"),
         "topic SRUP/#")
    same(["--address", "127.0.0.0/8"], lambda r: (r.get("address") or "").startswith("127."),
         "address 127.0.0.0/8")
    same(["--address", "127.0.0.1"], lambda r: r.get("address") == "127.0.0.1", "address")
    rc, out, err = audit("--address", "10.0.0.0/8", "--address", "2001:db8::/32", path)
    check(rc == 0 and out == b"", "no line from 10.0.0.0/8: %r" % out[:200])
    rc, out, err = audit("--topic", "SRUP/+/x", path)
    check(rc == 0 and out == b"", "no line under SRUP/+/x: %r" % out[:200])
    # The table: one line per record, identity and address shown.
    rc, out, err = audit("--identity", lab.dev2.hex, path)
    rows = out.decode().splitlines()
    check(rc == 0 and len(rows) == len(select(lab, lambda r: r.get("identity") == lab.dev2.hex))
          and all(lab.dev2.hex in r and "127.0.0.1" in r for r in rows),
          "table rows: %r" % rows[:3])

    # Bad options are named.
    for args, word in ((["--since", "yesterday"], "--since"),
                       (["--address", "10.0.0.0/33"], "--address"),
                       (["--topic", "a/#/b"], "--topic"),
                       (["--verdict", "dorp"], "--verdict"),
                       (["--frobnicate"], "--frobnicate")):
        rc, out, err = audit(*(args + [path]))
        check(rc == 3 and word in err, "%s: rc %d, %r" % (args, rc, err))
    rc, out, err = audit("--help")
    text = out.decode()
    check(rc == 0 and all(o in text for o in ("--since", "--until", "--verdict", "--reason",
                                                "--identity", "--topic", "--address",
                                                "--type", "--client-id", "--json",
                                                "--summary", "--follow", "verify")),
          "--help documents every option")


def synthetic(t, reason, address, topic="SRUP/0000000000000001", identity="00000000000000aa"):
    """A drop line as the plugin writes it (C0 controls as \\u00XX, other characters as
    UTF-8), without a chain."""
    return json.dumps({"time": t, "verdict": "drop", "reason": reason, "client_id": "synth",
                       "identity": identity, "topic": topic, "type": None, "sender": None,
                       "seq": None, "address": address, "cert_sha256": None, "detail": "x"},
                      separators=(",", ":"), ensure_ascii=False).encode()


def test_time_filters(lab, check):
    old = os.path.join(lab.dir, "old.jsonl")
    lines = [synthetic("2020-03-01T10:00:00.000Z", "replay", "10.1.2.3"),
             synthetic("2020-03-01T10:30:00.500Z", "replay", "2001:db8::7"),
             synthetic("2020-03-02T00:00:00.000Z", "bad_pad", "::ffff:10.9.8.7"),
             # seq above INT64_MAX must not make the line unreadable
             synthetic("2020-03-03T00:00:00.000Z", "replay", "192.0.2.1").replace(
                 b'"seq":null', b'"seq":18446744073709551615')]
    with open(old, "wb") as f:
        f.write(b"\n".join(lines) + b"\n")

    def got(*args):
        rc, out, err = audit(*(list(args) + ["--json", old]))
        check(rc == 0, "%s: rc %d %s" % (args, rc, err))
        return [l for l in out.split(b"\n") if l]

    check(got("--since", "1h") == [], "an old file has nothing in the last hour")
    check(got("--since", "2d") == [], "nor in the last two days")
    check(got() == lines, "all four lines (seq above INT64_MAX too)")
    check(got("--since", "2020-03-01T10:30:00Z") == lines[1:], "since an absolute time")
    check(got("--since", "2020-03-01T10:30") == lines[1:], "since, no seconds")
    check(got("--since", "2020-03-02") == lines[2:], "since a date")
    check(got("--until", "2020-03-02") == lines[:2], "until a date")
    check(got("--since", "2020-03-01 10:15", "--until", "2020-03-02T00:00:00.001Z")
          == lines[1:3], "since .. until")
    check(got("--address", "2001:db8::/32") == [lines[1]], "IPv6 CIDR")
    check(got("--address", "10.0.0.0/8") == [lines[0], lines[2]],
          "IPv4 CIDR (an IPv4-mapped address too)")
    rc, out, err = audit("--since", "2020-03-02", "--until", "2020-03-01", old)
    check(rc == 3 and "--until" in err, "until before since: %r" % err)
    # Old file then the live log: --since 1h keeps only the live lines.
    rc, out, err = audit("--since", "1h", "--json", old, lab.audit_path)
    check(rc == 0 and [l for l in out.split(b"\n") if l] == raw_lines(lab.audit_path),
          "old + live, since 1h: the live lines (%s)" % err)


def test_gzip_and_json_bytes(lab, check):
    path = lab.audit_path
    rot = os.path.join(lab.dir, "rot.jsonl.2.gz")
    with open(path, "rb") as src, gzip.open(rot, "wb") as dst:
        shutil.copyfileobj(src, dst)
    live = raw_lines(path)
    rc, out, err = audit("--json", rot)
    check(rc == 0 and out == b"".join(l + b"\n" for l in live),
          "gzip input, --json: byte for byte (rc %d, %s)" % (rc, err))
    rc, out2, err = audit("--json", path)
    check(rc == 0 and out2 == out, "plain input reads the same")
    with open(path, "rb") as f:
        check(out2 == f.read(), "--json of the whole log is the log itself")
    rc, out3, err = audit("--json", "-", input=gzip.compress(b"".join(l + b"\n" for l in live)))
    check(rc == 0 and out3 == out, "gzip on standard input")
    rc, out4, err = audit("--json", "--reason", "empty_payload", rot, path)
    want = [l for l in live if json.loads(l).get("reason") == "empty_payload"]
    check(rc == 0 and out4 == b"".join(l + b"\n" for l in want * 2),
          "rotated .gz then the live file, in the order given")
    # The unfiltered --json output still verifies.
    copy = os.path.join(lab.dir, "json-copy.jsonl")
    with open(copy, "wb") as f:
        f.write(out)
    r = h.run([h.SRUP, "audit", "verify", copy], check=False)
    check(r.returncode == 0 and b"the chain holds" in r.stdout,
          "audit verify on the --json output: %r" % r.stdout[-200:])


def test_malformed_lines(lab, check):
    bad = os.path.join(lab.dir, "bad.jsonl")
    good = raw_lines(lab.audit_path)[:2]
    with open(bad, "wb") as f:
        f.write(good[0] + b"\n" + b'{"time":"2026-01-01T00:00:00.000Z","verdict":\n'
                + b"[1,2]\n" + b"x" * 70000 + b"\n" + good[1] + b"\n")
    rc, out, err = audit("--json", bad)
    check(rc == 2, "exit status 2 when lines could not be read, got %d" % rc)
    check(out == good[0] + b"\n" + good[1] + b"\n", "the good lines still come out")
    for n in (2, 3, 4):
        check(("%s:%d:" % (bad, n)) in err, "line %d reported as FILE:LINE: %r" % (n, err))
    check("3 lines could not be read" in err, "a count at the end: %r" % err)


def test_control_characters(lab, check):
    mark = lab.audit_mark()
    c = lab.connect(lab.server, client_id="read-ctl")
    try:
        c.publish("SRUP/\x1b[2J\x1b[31m\x9bowned", b"", qos=0)
        time.sleep(0.3)
        c.close()
    except Exception as e:  # mosquitto may drop a client for such a topic
        h.log("    publish: %r" % e)
    rec = lab.wait_audit(mark, lambda r: "owned" in (r.get("topic") or ""))
    path = lab.audit_path
    if rec is None:
        # The broker refused the topic outright: the same line, written by hand.
        path = os.path.join(lab.dir, "ctl.jsonl")
        with open(path, "wb") as f:
            f.write(synthetic("2026-01-01T00:00:00.000Z", "not_allowed", "127.0.0.1",
                              topic="SRUP/\x1b[2J\x1b[31m\x9bowned") + b"\n")
    else:
        h.log("    live line: %s" % json.dumps(rec))
    for args in ([], ["--summary"], ["--summary", "--json"],
                 ["--topic", "#", "--reason", "not_allowed", "--reason", "empty_payload",
                  "--reason", "unknown_type"]):
        rc, out, err = audit(*(args + [path]))
        check(rc == 0 and b"owned" in out, "%s: the topic is shown: rc %d %r" % (args, rc, err))
        check(b"\x1b" not in out and b"\x07" not in out and b"\xc2\x9b" not in out
              and b"\x9b" not in out, "%s: no raw control character in the output" % args)
        check(b"\\x1b[2J" in out or b"\\u001b[2" in out.lower(),
              "%s: ESC shown escaped" % args)
    rc, out, err = audit("--json", path)
    check(b"\x1b" not in out, "--json keeps the file's own escaping (\\u001b)")


def test_follow(lab, check):
    path = lab.audit_path
    p = subprocess.Popen([h.SRUP, "audit", "--follow", "--json", "--verdict", "drop", path],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(0.5)
        before = len([l for l in raw_lines(path) if json.loads(l).get("verdict") == "drop"])
        provoke(lab, "f1")
        time.sleep(0.8)
        os.rename(path, path + ".1")
        time.sleep(1.5 * h.SLOW)  # the plugin reopens at its next check, once a second
        provoke(lab, "f2")
        time.sleep(1.5 * h.SLOW)
        check(os.path.exists(path), "the plugin made a new log after the rename")
        provoke(lab, "f3")
        time.sleep(1.0 * h.SLOW)
    finally:
        p.send_signal(signal.SIGINT)
        try:
            out, err = p.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            check(False, "--follow did not stop on SIGINT")
    check(p.returncode == 0, "--follow exit %r, stderr %r" % (p.returncode, err))
    want = [l for l in raw_lines(path + ".1") + raw_lines(path)
            if json.loads(l).get("verdict") == "drop"]
    got = [l for l in out.split(b"\n") if l]
    check(got == want, "--follow: %d lines, want %d (%d before it started)" % (
        len(got), len(want), before))
    tags = {json.loads(l).get("client_id") for l in got}
    check({"read-f1-server", "read-f2-dev2", "read-f3-server"} <= tags,
          "lines written before and after the rotation: %s" % sorted(map(str, tags)))
    # SIGTERM stops it too, and --summary then prints the counts.
    p = subprocess.Popen([h.SRUP, "audit", "-f", "--summary", "--json", path],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(0.5)
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=10)
    try:
        total = json.loads(out).get("total")
    except ValueError:
        total = None
    check(p.returncode == 0 and total == len(raw_lines(path)),
          "SIGTERM: rc %r, total %r, want %d" % (p.returncode, total, len(raw_lines(path))))


def test_follow_truncate_and_partial(lab, check):
    """--follow on a file that is truncated in place (logrotate copytruncate) and that gets a
    line in two writes: the half line waits for its end; after the truncation the file is
    read from its start; a file not there yet is waited for."""
    path = os.path.join(lab.dir, "trunc.jsonl")
    lines = [synthetic("2026-01-01T00:00:0%d.000Z" % i, "replay", "192.0.2.%d" % i)
             for i in range(5)]
    p = subprocess.Popen([h.SRUP, "audit", "-f", "--json", path], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        time.sleep(0.5)
        with open(path, "wb") as f:
            f.write(lines[0] + b"\n" + lines[1][:20])
        time.sleep(0.6)
        with open(path, "ab") as f:
            f.write(lines[1][20:] + b"\n")
        time.sleep(0.6)
        with open(path, "r+b") as f:
            f.truncate(0)
        time.sleep(0.6)
        with open(path, "ab") as f:
            f.write(lines[2] + b"\n")
        time.sleep(0.6)
    finally:
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=10)
    got = [l for l in out.split(b"\n") if l]
    check(p.returncode == 0 and got == lines[:3],
          "rc %r, %d lines: %r (stderr %r)" % (p.returncode, len(got), got, err))
    check(b"waiting for" in err, "a missing file is waited for: %r" % err)


if __name__ == "__main__":
    h.main([test_summary_counts, test_filters, test_time_filters, test_gzip_and_json_bytes,
            test_malformed_lines, test_control_characters, test_follow,
            test_follow_truncate_and_partial])
