#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# summary.py - the lab's summary table: flows completed, attacks dropped by reason (from the
# plugin's audit log), and anything that got through. Exit 0 only if every flow passed, every
# attack was dropped and the eavesdropper received nothing. Standard library only.
import argparse
import collections
import json
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
import lab_metrics  # noqa: E402


def read_tsv(path):
    try:
        with open(path) as f:
            return [line.rstrip("\n").split("\t") for line in f if line.strip()]
    except OSError:
        return []


def metrics_line(lab):
    """The exporter's scrape (metrics.prom) against the broker's retained values (sys.json), as
    docker/lab_metrics.py left them; or why there is no scrape (results/exporter.txt)."""
    try:
        with open(os.path.join(lab, "results", "exporter.txt")) as f:
            note = f.read().strip()
    except OSError:
        note = ""
    try:
        with open(os.path.join(lab, "sys.json")) as f:
            sysvals = json.load(f)
    except (OSError, ValueError):
        sysvals = None
    try:
        with open(os.path.join(lab, "metrics.prom")) as f:
            samples = lab_metrics.parse_scrape(f.read())
    except OSError:
        samples = None
    if samples is None:
        return "exporter NOT scraped: %s%s" % (
            note or "no metrics.prom", "" if sysvals is None else
            " (the broker published %d values)" % len(sysvals))
    if sysvals is None:
        return "exporter scraped, but the broker's values were not read (no sys.json)"
    config = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "packaging", "prometheus", "srup-mqtt-exporter.yaml")
    mapping = lab_metrics.load_mapping(config) if os.path.exists(config) else None
    n, diff = lab_metrics.compare(sysvals, samples, mapping)
    connected = [v for name, _, v in samples if name == "mqtt2prometheus_connected"]
    return "exporter scraped: %d srup_ series, %s; mqtt2prometheus_connected %s" % (
        n, "all equal to the broker's $SYS/broker/srup/ values" if not diff else
        "DIFFERENT from the broker's: " + "; ".join(diff),
        " ".join("%g" % v for v in connected) or "missing")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lab", required=True)
    a = ap.parse_args()
    res = os.path.join(a.lab, "results")
    flows = read_tsv(os.path.join(res, "flows.tsv"))
    attacks = read_tsv(os.path.join(res, "attacks.tsv"))
    audit = []
    try:
        with open(os.path.join(a.lab, "audit.jsonl")) as f:
            for line in f:
                try:
                    audit.append(json.loads(line))
                except ValueError:
                    pass
    except OSError:
        pass
    try:
        with open(os.path.join(res, "sniffed.log")) as f:
            sniffed = [line for line in f if line.strip()]
    except OSError:
        sniffed = []

    by_client = collections.defaultdict(list)
    for e in audit:
        if e.get("verdict") == "drop":
            by_client[e.get("client_id")].append(e.get("reason"))

    w = sys.stdout.write
    w("\n==================== SRUP lab summary ====================\n")
    w("\nFlows\n")
    passed = 0
    for row in flows:
        status, name = row[0], row[1]
        detail = row[2] if len(row) > 2 else ""
        passed += status == "PASS"
        w("  %-4s  %-28s %s\n" % (status, name, detail[:70]))
    w("  -> flows completed: %d/%d\n" % (passed, len(flows)))

    w("\nAttacks (broker verdict from the PUBACK, or with none (QoS 0, Wills) from the audit log\n"
      "and a subscriber on the channel; reason from the audit log)\n")
    w("  %-26s %-12s %-20s %-20s %s\n" % ("attack", "verdict", "audit reason", "expected", "via"))
    dropped = 0
    reasons = collections.Counter()
    through = []
    for row in attacks:
        name, verdict, expect, cid = row[0], row[1], row[2], row[3]
        via = row[5] if len(row) > 5 else ""
        got = by_client.get(cid, [])
        # The attacker notes the reason of the drop line written for the attempt itself (some
        # attempts share a client id with the C2); older result files have no such column.
        # An eavesdropper's is "not delivered": the broker's read check refuses silently.
        reason = row[6] if len(row) > 6 else (got[-1] if got else "-")
        if verdict == "dropped":
            dropped += 1
            reasons[reason] += 1
        else:
            through.append(name)
        w("  %-26s %-12s %-20s %-20s %s\n" % (name, verdict, reason, expect, via))
    w("\nAttacks dropped by reason\n")
    for reason, n in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])):
        w("  %-22s %d\n" % (reason, n))
    w("  -> dropped: %d/%d\n" % (dropped, len(attacks)))

    reg = read_tsv(os.path.join(res, "registry_attacks.tsv"))
    reg_through = [r[0] for r in reg if r[1] != "refused"]
    w("\nRegistrations (srup-registry)\n")
    try:
        with open(os.path.join(a.lab, "logs", "registry.jsonl")) as f:
            log = [json.loads(line) for line in f if line.strip()]
    except (OSError, ValueError):
        log = []
    for e in log:
        if e.get("status") == 201:
            w("  %-16s %-12s %s\n" % (e.get("identity") or "-", e.get("endpoint", "")
                                      .rsplit("/", 1)[-1] or "c2/", e.get("result", "")))
    w("  -> requests logged: %d, refused: %d\n" % (
        len(log), sum(1 for e in log if e.get("status", 0) >= 400)))
    w("\nAttacks on the registry (HTTP status)\n")
    for r in reg:
        w("  %-28s %-12s %-4s (expected %s) %s\n" % (r[0], r[1], r[2], r[3],
                                                    r[4][:60] if len(r) > 4 else ""))
    w("  -> refused: %d/%d\n" % (len(reg) - len(reg_through), len(reg)))

    all_drops = collections.Counter(e.get("reason") for e in audit if e.get("verdict") == "drop")
    w("\nAudit log: %d drop lines in total (%s)\n" % (
        sum(all_drops.values()),
        ", ".join("%s %d" % kv for kv in sorted(all_drops.items())) or "none"))

    w("\nGot through\n")
    w("  attacks on the registry not refused: %d%s\n" % (
        len(reg_through), (" (" + ", ".join(reg_through) + ")") if reg_through else ""))
    w("  attack messages accepted by the broker: %d%s\n" % (
        len(through), (" (" + ", ".join(through) + ")") if through else ""))
    w("  messages delivered to the eavesdropper's subscriptions: %d\n" % len(sniffed))
    try:
        with open(os.path.join(res, "eavesdrop_after_fake_join.log")) as f:
            w("  dev1's messages delivered to the malicious server after its fake joins: %d\n"
              % sum(1 for line in f if line.strip()))
    except OSError:
        pass
    try:
        with open(os.path.join(res, "seen_flush.txt")) as f:
            w("  seen-index flood: %s\n" % f.read().strip())
    except OSError:
        pass
    spoofed = 0
    try:
        with open(os.path.join(res, "sniffed-spoofed-username.log")) as f:
            spoofed = sum(1 for line in f if line.strip())
        w("  dev1's channel read by claiming dev1's username on the plain listener: %d messages\n"
          % spoofed)
        w("  (a claimed name is no identity under `identity certificate`: must be 0)\n")
    except OSError:
        pass
    w("\nMetrics (prometheus-mqtt-exporter: metrics.prom against the broker's sys.json)\n")
    w("  %s\n" % metrics_line(a.lab))
    ok = (flows and passed == len(flows) and attacks and not through and not sniffed and
          not spoofed and reg and not reg_through)
    w("\nRESULT: %s\n" % ("PASS: every flow completed, every attack was dropped" if ok
                          else "FAIL"))
    w("==========================================================\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
