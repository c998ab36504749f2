#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# check_metrics.py - issue 15, the lab_metrics_exporter ctest: reads what lab_run left in LAB_DIR
# (docker/lab.sh native runs prometheus-mqtt-exporter with the shipped configuration, then
# docker/lab_metrics.py saves its scrape to metrics.prom and the broker's retained
# $SYS/broker/srup/# values, read as the exporter's identity, to sys.json) and asserts: the
# exporter was connected, every value the broker published is in the scrape under the metric the
# configuration maps it to, with the same value; the lab's traffic and attacks moved the
# counters; the store gauges are set. Fails, never skips, when the exporter did not run.
# Usage: check_metrics.py LAB_DIR
import json
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "docker"))
import lab_metrics  # noqa: E402

SYS = lab_metrics.SYS
CONFIG = os.path.join(REPO, "packaging", "prometheus", "srup-mqtt-exporter.yaml")
FAILED = []


def check(ok, what):
    print("%s  %s" % ("ok  " if ok else "FAIL", what))
    if not ok:
        FAILED.append(what)
    return ok


def main():
    lab = sys.argv[1]
    try:
        with open(os.path.join(lab, "results", "exporter.txt")) as f:
            print("the lab's note on the exporter: " + f.read().strip())
    except OSError:
        pass
    prom = os.path.join(lab, "metrics.prom")
    if not check(os.path.exists(prom), "%s exists (the exporter was scraped)" % prom):
        return 1
    with open(prom) as f:
        samples = lab_metrics.parse_scrape(f.read())
    with open(os.path.join(lab, "sys.json")) as f:
        sysvals = json.load(f)
    connected = [v for n, _, v in samples if n == "mqtt2prometheus_connected"]
    check(connected == [1.0], "mqtt2prometheus_connected %r, want [1]" % connected)
    mapping = lab_metrics.load_mapping(CONFIG)
    check(len(mapping) >= 30, "%d metrics in %s" % (len(mapping), CONFIG))
    check(len(sysvals) >= 30, "the broker published %d values under %s" % (len(sysvals), SYS))
    check(set(k[len(SYS):] for k in sysvals) <= set(mapping),
          "every value the broker published is mapped by the configuration")
    n, diff = lab_metrics.compare(sysvals, samples, mapping)
    check(not diff and n == len(sysvals), "%d srup_ series, %d broker values, equal%s" % (
        n, len(sysvals), "" if not diff else ": no: " + "; ".join(diff)))

    def exported(name, **labels):
        return [v for s, l, v in samples
                if s == name and all(l.get(k) == x for k, x in labels.items())]

    # The lab's attacks are dropped for these reasons (docker/attacker.py, check_lab.sh).
    for reason in ("replay", "bad_signature", "identity_mismatch", "no_identity", "not_allowed",
                   "unknown_sender", "truncated"):
        v = exported("srup_dropped_total", reason=reason)
        check(len(v) == 1 and v[0] > 0, "srup_dropped_total{reason=%r} %r > 0" % (reason, v))
    for name in ("srup_accepted_total", "srup_dropped_all_reasons_total", "srup_store_keys",
                 "srup_store_marks", "srup_store_seen_used", "srup_store_seen_capacity"):
        v = exported(name)
        check(len(v) == 1 and v[0] > 0, "%s %r > 0" % (name, v))
    for name, labels, value in samples:
        if name.startswith("srup_") and name != "srup_dropped_total" or \
                labels.get("reason") in ("replay", "bad_signature", "identity_mismatch"):
            print("    %s%s %g" % (name, "{reason=%s}" % labels["reason"]
                                   if "reason" in labels else "", value))
    print("%s: %d failed" % ("FAIL" if FAILED else "PASS", len(FAILED)))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
