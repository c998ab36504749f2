#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# test_reload.py - issue 3 item 8: SIGHUP re-reads keys and policy; a broken policy on reload
# keeps the last good one (still enforcing, never open) and the broker log says why.
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import srupharness as h  # noqa: E402

S = {}


def write_policy(path, max_payload=65536, extra=""):
    with open(h.SHIPPED_POLICY) as f:
        text = f.read()
    text = text.replace("max_payload 65536", "max_payload %d" % max_payload)
    with open(path + ".tmp", "w") as f:
        f.write(text + extra)
    os.rename(path + ".tmp", path)


def lab_factory():
    d = h.Lab(start=False)
    p = os.path.join(d.dir, "test.policy")
    write_policy(p)
    d.broker.policy = p
    d.broker.start()
    S["policy"] = p
    return d


def big_data(lab, n):
    return lab.msg(lab.dev1, "DATA", data_id=b"blob", data=b"\xab" * n)


def test_policy_change_applies_on_sighup(lab, check):
    ch = "SRUP/%s" % lab.dev1.hex
    d = lab.connect(lab.dev1)
    d.subscribe(ch)
    h.expect_accept(lab, check, d, ch, big_data(lab, 2000), "2 kB DATA under max_payload 65536",
                    receivers=[d])
    write_policy(S["policy"], max_payload=1000)
    check(lab.broker.hup(), "no reload after SIGHUP")
    h.expect_drop(lab, check, d, ch, big_data(lab, 2000), "too_large",
                  "2 kB DATA after reloading max_payload 1000", watchers=[d])
    h.expect_accept(lab, check, d, ch, big_data(lab, 100), "small DATA after the reload",
                    receivers=[d])


def test_broken_policy_keeps_last_good(lab, check):
    ch = "SRUP/%s" % lab.dev1.hex
    d = lab.connect(lab.dev1)
    d.subscribe(ch)
    write_policy(S["policy"], max_payload=65536, extra="\nthis line is broken\n")
    broken_line = open(S["policy"]).read().splitlines().index("this line is broken") + 1
    mark = lab.broker.log_size()
    check(lab.broker.hup(), "no reload after SIGHUP")
    check(lab.broker.alive(), "broker died on a broken policy reload")
    text = lab.broker.log_since(mark)
    named = [l for l in text.splitlines() if S["policy"] in l]
    check(named, "no log line names the policy file after a broken reload:\n" + text[-800:])
    check(any("%s:%d" % (S["policy"], broken_line) in l for l in named),
          "the reload error does not name line %d: %r" % (broken_line, named[:2]))
    if named:
        h.log("    broker said: %s" % named[0].strip()[:200])
    # Last good policy (max_payload 1000) still in force: not the broken file's 65536.
    h.expect_drop(lab, check, d, ch, big_data(lab, 2000), "too_large",
                  "2 kB DATA: last good max_payload 1000 still applies", watchers=[d])
    h.expect_drop(lab, check, d, ch, lab.msg(lab.dev1, "ACTION", action_id=1), "not_allowed",
                  "rules still enforced after a broken reload", watchers=[d])
    h.expect_accept(lab, check, d, ch, big_data(lab, 100), "valid DATA still accepted",
                    receivers=[d])
    write_policy(S["policy"], max_payload=65536)
    check(lab.broker.hup(), "no reload after SIGHUP")
    h.expect_accept(lab, check, d, ch, big_data(lab, 2000),
                    "2 kB DATA after a good policy is back", receivers=[d])


def test_removed_rule_applies(lab, check):
    ch = "SRUP/%s" % lab.dev1.hex
    d = lab.connect(lab.dev1)
    with open(h.SHIPPED_POLICY) as f:
        text = f.read()
    text = text.replace("allow own_channel device RESPONSE DATA RESIGN_REQUEST DEREGISTER_REQ",
                        "allow own_channel device RESPONSE RESIGN_REQUEST DEREGISTER_REQ")
    with open(S["policy"], "w") as f:
        f.write(text)
    check(lab.broker.hup(), "no reload after SIGHUP")
    h.expect_drop(lab, check, d, ch, big_data(lab, 10), "not_allowed",
                  "DATA from a device after DATA was removed from the policy")
    write_policy(S["policy"])
    check(lab.broker.hup(), "no reload after SIGHUP")
    h.expect_accept(lab, check, d, ch, big_data(lab, 10), "DATA allowed again")


def test_keys_reloaded(lab, check):
    late = h.Identity("late", lab.dir, "device")
    lab.keys_add(late)
    check(lab.broker.hup(), "no reload after SIGHUP")
    c = lab.connect(late)
    c.subscribe("SRUP/%s" % late.hex)
    h.expect_accept(lab, check, c, "SRUP/%s" % late.hex,
                    lab.msg(late, "DATA", data_id=b"x", data=b"new key"),
                    "device added while running, after SIGHUP", receivers=[c])
    c.close()
    lab.keys_revoke(lab.dev3)
    check(lab.broker.hup(), "no reload after SIGHUP")
    c = lab.connect(lab.dev3)
    h.expect_drop(lab, check, c, "SRUP/%s" % lab.dev3.hex,
                  lab.msg(lab.dev3, "DATA", data_id=b"x", data=b"revoked"), "revoked_sender",
                  "device revoked while running, after SIGHUP")
    # Re-adding a revoked id is refused (exit 3), even with --force: it stays revoked.
    new3 = h.Identity("dev3b", lab.dir, "device")
    p = h.run([h.SRUP, "keys", "add", "--store", lab.store, "--id", lab.dev3.hex, "--role",
               "device", "--key", new3.pub, "--force"], check=False)
    check(p.returncode == 3, "re-adding a revoked id: exit %d, want 3" % p.returncode)
    check(lab.broker.hup(), "no reload after SIGHUP")
    c = lab.connect(lab.dev3)
    h.expect_drop(lab, check, c, "SRUP/%s" % lab.dev3.hex,
                  lab.msg(lab.dev3, "DATA", data_id=b"x", data=b"still revoked"),
                  "revoked_sender", "revoked id after a refused re-add")
    c.close()
    # Replacing the key of an active id (--force) makes the new key the valid one.
    newl = h.Identity("lateb", lab.dir, "device")
    newl.id, newl.hex, newl.seq = late.id, late.hex, late.seq
    h.run([h.SRUP, "keys", "add", "--store", lab.store, "--id", late.hex, "--role", "device",
           "--key", newl.pub, "--force"])
    check(lab.broker.hup(), "no reload after SIGHUP")
    c = lab.connect(late)
    rc = c.publish("SRUP/%s" % late.hex, lab.msg(newl, "DATA", data_id=b"x", data=b"b"))
    check(h.delivered(rc), "id with a replaced key, new key: PUBACK %s" % h.rc_name(rc))
    late.seq = newl.seq
    rc = c.publish("SRUP/%s" % late.hex, lab.msg(late, "DATA", data_id=b"x",
                                                 data=b"old key"))
    check(rc == h.RC_NOT_AUTHORIZED, "message signed with the replaced key: PUBACK %s"
          % h.rc_name(rc))

if __name__ == "__main__":
    h.main([test_policy_change_applies_on_sighup, test_broken_policy_keeps_last_good,
            test_removed_rule_applies, test_keys_reloaded], lab_factory=lab_factory)
