#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# test_store_check.py - issue 14: `srup store check` on a store a real broker has used (keys,
# marks, marks journal, seen index) says consistent; after data.mdb is restored alone from
# another store (a partial restore) it says which file no longer belongs, and exits 1.
import os
import shutil
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import srupharness as h  # noqa: E402


def test_store_check(lab, check):
    c = lab.connect(lab.dev1)
    h.expect_accept(lab, check, c, "SRUP/%s" % lab.dev1.hex,
                    lab.msg(lab.dev1, "DATA", data_id=b"x", data=b"y"), "a message to mark")
    c.close()
    lab.broker.stop()
    r = h.run([h.SRUP, "store", "check", "--store", lab.store], check=False)
    out = r.stdout.decode()
    check(r.returncode == 0 and "consistent" in out and "1 replay marks" in out and
          "marks.journal: this store's" in out, "a used store is consistent: %r" % out)
    other = os.path.join(lab.dir, "other-store")
    os.makedirs(other)
    lab_store = lab.store
    h.run([h.SRUP, "keys", "add", "--store", other, "--id", lab.dev2.hex, "--role", "device",
           "--key", lab.dev2.pub])
    shutil.copy(os.path.join(other, "data.mdb"), os.path.join(lab_store, "data.mdb"))
    r = h.run([h.SRUP, "store", "check", "--store", lab_store], check=False)
    out = r.stdout.decode()
    check(r.returncode == 1 and "PROBLEM marks.journal" in out and "INCONSISTENT" in out,
          "data.mdb restored alone: the journal no longer belongs: %r" % out)


if __name__ == "__main__":
    h.main([test_store_check])
