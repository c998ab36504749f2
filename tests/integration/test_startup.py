#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# test_startup.py - the broker refuses to start (non-zero exit, one clear line naming the
# problem) on a missing or unknown plugin option or a broken policy; it never starts open.
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import srupharness as h  # noqa: E402


def refused(lab, check, label, needles, **broker_kw):
    b = h.Broker(lab.dir, lab.store, lab.audit_path, **broker_kw)
    b.logfile = os.path.join(lab.dir, "refuse-%s.log" % label.replace(" ", "_"))
    b.stderr_path = b.logfile + ".stderr"
    try:
        rc = b.start(expect_fail=True)
    except h.HarnessError as e:
        check(False, "%s: %s" % (label, e))
        return
    out = b.all_output()
    if not check(rc is not None and rc != 0, "%s: broker exit status %r, want non-zero "
                 "(still running means it started open)" % (label, rc)):
        return
    lines = [l for l in out.splitlines() if all(n.lower() in l.lower() for n in needles)]
    check(lines, "%s: no line naming %r in the output:\n%s" % (label, needles, out[-1500:]))
    if lines:
        h.log("    %s -> exit %d: %s" % (label, rc, lines[0].strip()[:200]))


def test_good_config_starts(lab, check):
    """Control: the same directory and options start fine."""
    b = h.Broker(lab.dir, lab.store, lab.audit_path)
    b.logfile = os.path.join(lab.dir, "good.log")
    b.start()
    check(b.alive(), "broker with a good config is not running")
    c = h.Client(b.port, "probe", username=lab.dev1.hex)
    rc = c.publish("SRUP/%s" % lab.dev1.hex, b"")
    check(rc == h.RC_NOT_AUTHORIZED, "plugin not enforcing on a good start: PUBACK %s"
          % h.rc_name(rc))
    c.close()
    b.stop()


def test_missing_store(lab, check):
    refused(lab, check, "missing store", ["store"], omit=("store",))


def test_audit_log_defaults_into_store(lab, check):
    """Without plugin_opt_audit_log (two lines of mosquitto.conf), drops go to <store>/audit.jsonl."""
    b = h.Broker(lab.dir, lab.store, lab.audit_path, omit=("audit_log",))
    b.logfile = os.path.join(lab.dir, "no-audit-opt.log")
    b.start()
    check(b.alive(), "broker without plugin_opt_audit_log is not running")
    c = h.Client(b.port, "probe-audit", username=lab.dev1.hex)
    rc = c.publish("SRUP/%s" % lab.dev1.hex, b"")
    check(rc == h.RC_NOT_AUTHORIZED, "claimed identity, empty payload: PUBACK %s"
          % h.rc_name(rc))
    c.close()
    b.stop()
    path = os.path.join(lab.store, "audit.jsonl")
    text = open(path).read() if os.path.exists(path) else ""
    # A plain-TCP client has no certificate, so no identity: dropped before the payload is read.
    check('"reason":"no_identity"' in text, "no no_identity drop in %s: %r" % (path, text[-300:]))


def test_unknown_option(lab, check):
    refused(lab, check, "unknown option", ["bogus_option"],
            extra_opts=[("bogus_option", "1")])


def test_broken_policy(lab, check):
    p = os.path.join(lab.dir, "broken.policy")
    with open(p, "w") as f:
        f.write("# a policy\nthis is not a policy line at all {{{\n")
    refused(lab, check, "broken policy", [p], policy=p)
    lines = [l for l in open(os.path.join(lab.dir, "refuse-broken_policy.log"))
             .read().splitlines() if p in l] if os.path.exists(
        os.path.join(lab.dir, "refuse-broken_policy.log")) else []
    check(any(p + ":2" in l for l in lines), "the policy error does not name line 2: %r"
          % lines[:2])


def test_missing_policy_file(lab, check):
    p = os.path.join(lab.dir, "no-such.policy")
    refused(lab, check, "missing policy file", [p], policy=p)


def test_unwritable_store(lab, check):
    p = os.path.join(lab.dir, "a-file-not-a-dir")
    with open(p, "w") as f:
        f.write("x")
    b_store = p
    b = h.Broker(lab.dir, b_store, lab.audit_path)
    b.logfile = os.path.join(lab.dir, "refuse-store-file.log")
    rc = b.start(expect_fail=True)
    check(rc is not None and rc != 0, "store path that is a file: exit %r, want non-zero" % rc)


def lab_factory():
    return h.Lab(start=False)


if __name__ == "__main__":
    h.main([test_good_config_starts, test_missing_store, test_audit_log_defaults_into_store,
            test_unknown_option, test_broken_policy, test_missing_policy_file,
            test_unwritable_store], lab_factory=lab_factory)
