#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# test_audit_chain.py - issue 15 (tamper evidence): every audit line carries a hash chained to
# the line before; the chain runs on across rotation (rename, the plugin reopens) and a broker
# restart; `srup audit verify` says the chain holds for the untouched files, and names the line
# where an edited, removed, inserted or reordered line breaks it.
import gzip
import hashlib
import json
import os
import shutil
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import srupharness as h  # noqa: E402


def drops(lab, n, tag):
    c = lab.connect(lab.server, client_id="chain-%s" % tag)
    for i in range(n):
        m = bytearray(lab.msg(lab.server, "DATA", data_id=b"x", data=b"%d" % i))
        m[-1] ^= 1  # a bad signature: one drop line each
        c.publish("SRUP/%s" % lab.dev1.hex, bytes(m))
    c.close()


def lines_of(path):
    with open(path) as f:
        return f.read().splitlines(True)


def verify(*paths):
    r = h.run([h.SRUP, "audit", "verify"] + list(paths), check=False)
    return r.returncode, r.stdout.decode()


def test_chain(lab, check):
    drops(lab, 4, "a")
    path = lab.audit_path
    time.sleep(0.3)
    rows = [json.loads(l) for l in lines_of(path)]
    check(len(rows) >= 4 and all(isinstance(r.get("chain"), str) and len(r["chain"]) == 64
                                 for r in rows), "every line has a chain")
    # The chain is SHA-256(previous chain || the line without its chain), from zero.
    prev = bytes(32)
    ok = True
    for l in lines_of(path):
        text = l.rstrip("\n")
        k = text.index(',"chain":"')
        want = hashlib.sha256(prev + (text[:k] + "}").encode()).hexdigest()
        ok &= want == text[k + 10:k + 74]
        prev = bytes.fromhex(text[k + 10:k + 74])
    check(ok, "the chain is SHA-256(previous || line), computed independently")
    rc, out = verify(path)
    check(rc == 0 and "the chain holds" in out, "untouched log: %r" % out)

    # Rotation: rename, the plugin reopens at its next check (once a second), the chain runs on.
    os.rename(path, path + ".1")
    time.sleep(1.5)
    drops(lab, 3, "b")
    time.sleep(1.5)
    drops(lab, 1, "c")
    time.sleep(0.3)
    check(os.path.exists(path) and len(lines_of(path)) >= 1, "a new file after rotation")
    rc, out = verify(path + ".1", path)
    check(rc == 0 and "the chain holds" in out, "across rotation: %r" % out)
    # A restart reads the chain back from the file.
    lab.broker.stop()
    lab.broker.start()
    drops(lab, 2, "d")
    time.sleep(0.3)
    rc, out = verify(path + ".1", path)
    check(rc == 0 and "the chain holds" in out and "afresh" not in out,
          "across a restart: %r" % out)
    # logrotate compresses the older files: verify reads them as they are
    gz = os.path.join(lab.dir, "audit.jsonl.2.gz")
    with open(path + ".1", "rb") as src, gzip.open(gz, "wb") as dst:
        dst.write(src.read())
    rc, out = verify(gz, path)
    check(rc == 0 and "the chain holds" in out, "a gzip-compressed rotated file: %r" % out)
    bad = os.path.join(lab.dir, "edited.gz")
    rot = lines_of(path + ".1")
    with gzip.open(bad, "wb") as dst:
        dst.write("".join(rot[:1] + [rot[1].replace('"time":"2', '"time":"1', 1)] +
                          rot[2:]).encode())
    rc, out = verify(bad, path)
    check(rc == 1 and ("%s:2:" % bad) in out, "an edit inside a gzip file: %r" % out)

    # Tampering, each on a copy of the rotated file (lines 1..n).
    base = lines_of(path + ".1")
    n = len(base)
    check(n >= 4, "%d lines to tamper with" % n)
    cases = {
        "edited": (base[:1] + [base[1].replace('"time":"2', '"time":"1', 1)] + base[2:], 2),
        "removed": (base[:1] + base[2:], 2),
        "inserted": (base[:2] + [base[1]] + base[2:], 3),
        "reordered": (base[:1] + [base[2], base[1]] + base[3:], 2),
    }
    for what, (rows_, line_no) in cases.items():
        p = os.path.join(lab.dir, "tampered-" + what)
        with open(p, "w") as f:
            f.write("".join(rows_))
        rc, out = verify(p)
        check(rc == 1 and ("%s:%d:" % (p, line_no)) in out and "BROKEN" in out,
              "%s line: found at line %d: %r" % (what, line_no, out))
    # A log whose rotated part is missing: the break is at the first line of the new file.
    rc, out = verify(path)
    check(rc == 0 and "earlier file not given" in out, "a file alone notes where it starts")
    shutil.copy(path + ".1", os.path.join(lab.dir, "copy"))


if __name__ == "__main__":
    h.main([test_chain])
