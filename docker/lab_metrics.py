#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# lab_metrics.py - the lab's metrics (issue 15): the plugin's counters and store gauges as the
# broker publishes them (retained, under $SYS/broker/srup/) and as prometheus-mqtt-exporter serves
# them. Subscribes to $SYS/broker/srup/# over mutual TLS as the lab's `exporter` identity (a
# metrics_reader of the policy), scrapes http://127.0.0.1:PORT/metrics, and repeats both until
# they agree (the broker publishes a value only when it changes; the gauges once a second) or a
# few seconds pass; writes the last scrape to LAB/metrics.prom and the broker's values to
# LAB/sys.json. Exit 0 if they agree (or there is no exporter to compare with), 1 if not, 2 if
# the broker's values could not be read. The comparison is also used by summary.py and
# tests/lab/check_metrics.py. Standard library only.
import argparse
import json
import os
import re
import sys
import time
import urllib.request

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mqtt5  # noqa: E402

SYS = "$SYS/broker/srup/"
SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def load_mapping(path):
    """{mqtt_name: (prom_name, {const label: value})} from the exporter configuration's metrics
    list (the shipped YAML's layout: `  - prom_name:` starts an entry)."""
    out = {}
    entry = None
    in_labels = False
    with open(path) as f:
        for line in f:
            m = re.match(r"^  - prom_name:\s*(\S+)", line)
            if m:
                entry = {"prom": m.group(1), "labels": {}}
                in_labels = False
                continue
            if entry is None:
                continue
            m = re.match(r"^    (\w+):\s*(.*?)\s*$", line)
            if m:
                in_labels = m.group(1) == "const_labels"
                if m.group(1) == "mqtt_name":
                    out[m.group(2)] = (entry["prom"], entry["labels"])
                continue
            m = re.match(r"^      (\w+):\s*(.*?)\s*$", line)
            if m and in_labels:
                entry["labels"][m.group(1)] = m.group(2)
    return out


def parse_scrape(text):
    """[(name, {label: value}, float)] of a Prometheus text exposition."""
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE_RE.match(line)
        if m:
            samples.append((m.group(1), dict(LABEL_RE.findall(m.group(2) or "")),
                            float(m.group(3))))
    return samples


def compare(sysvals, samples, mapping):
    """(number of srup_ series, [differences]): every topic the broker published must be in the
    scrape, under the metric and labels of the mapping, with the broker's value; and the scrape
    has no srup_ series the broker did not publish."""
    series = {}
    for name, labels, value in samples:
        topic = labels.get("topic", "")
        if name.startswith("srup_") and topic.startswith(SYS):
            series[topic] = (name, labels, value)
    diff = []
    for topic, want in sorted(sysvals.items()):
        short = topic[len(SYS):]
        got = series.get(topic)
        if got is None:
            diff.append("%s: not in the scrape" % short)
            continue
        name, labels, value = got
        if mapping is not None:
            prom, const = mapping.get(short, (None, {}))
            if prom is None:
                diff.append("%s: not in the exporter configuration" % short)
            elif name != prom or any(labels.get(k) != v for k, v in const.items()):
                diff.append("%s: exported as %s%s, configured %s%s" % (short, name, labels,
                                                                      prom, const))
        if not isinstance(want, (int, float)) or value != want:
            diff.append("%s: exporter %s, broker %s" % (short, value, want))
    for topic in sorted(set(series) - set(sysvals)):
        diff.append("%s: exported, not published by the broker" % topic[len(SYS):])
    return len(series), diff


def number(payload):
    text = payload.decode(errors="replace").strip()
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lab", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--tls-port", type=int, required=True)
    ap.add_argument("--exporter-port", type=int)
    ap.add_argument("--config", help="the exporter configuration (its metric mapping)")
    ap.add_argument("--wait", type=float, default=15.0)
    a = ap.parse_args()
    certs = os.path.join(a.lab, "certs")
    mapping = load_mapping(a.config) if a.config and os.path.exists(a.config) else None
    try:
        c = mqtt5.Client(a.host, a.tls_port, "lab-metrics-sys",
                         tls=(os.path.join(certs, "ca.crt"), os.path.join(certs, "exporter.crt"),
                              os.path.join(certs, "exporter.key")))
        rc = c.subscribe(SYS + "#", qos=0)
        if rc is None or rc >= 0x80:
            raise OSError("SUBSCRIBE %s# refused (%r)" % (SYS, rc))
    except (OSError, mqtt5.Closed) as e:
        print("[metrics] cannot read %s# as the exporter identity: %s" % (SYS, e),
              file=sys.stderr)
        return 2
    sysvals = {}
    text = None
    diff = []
    deadline = time.monotonic() + a.wait
    c.pump(1.0)  # the retained values arrive with the SUBACK's
    while True:
        for topic, payload in c.messages:
            sysvals[topic] = number(payload)
        c.messages = []
        if a.exporter_port is None:
            break
        try:
            text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % a.exporter_port,
                                          timeout=5).read().decode()
            n, diff = compare(sysvals, parse_scrape(text), mapping)
        except OSError as e:
            diff = ["scrape failed: %s" % e]
        if not diff or time.monotonic() > deadline:
            break
        c.pump(0.5)
    c.disconnect()
    with open(os.path.join(a.lab, "sys.json"), "w") as f:
        json.dump(sysvals, f, indent=1, sort_keys=True)
        f.write("\n")
    if text is not None:
        with open(os.path.join(a.lab, "metrics.prom"), "w") as f:
            f.write(text)
    print("[metrics] %d values under %s%s" % (
        len(sysvals), SYS, "" if a.exporter_port is None else
        ", the exporter's scrape %s" % ("agrees" if not diff else "differs: " + "; ".join(diff))),
        file=sys.stderr)
    return 1 if diff else 0


if __name__ == "__main__":
    sys.exit(main())
