#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# test_exporter.py - issue 15: the Debian prometheus-mqtt-exporter (hikhvar/mqtt2prometheus
# 0.1.7), run with the shipped packaging/prometheus/srup-mqtt-exporter.yaml (its broker address
# and certificate paths pointed at the test's), exports every counter and gauge the plugin
# publishes under $SYS/broker/srup/ with the value the broker published. A real mosquitto with
# the plugin (srupharness Lab), the exporter connecting over mutual TLS as the lab's admin, and
# the traffic of the lab scenario driven by the harness (accepted, replayed, forged, malformed,
# unknown-sender and retransmitted messages, joins, admin commands, refused subscriptions) rather
# than the whole native lab, which runs its own broker and takes minutes.
#
# Fails, never skips, when /usr/bin/prometheus-mqtt-exporter is missing: scripts/install-deps.sh
# installs it.
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
import srupharness as h  # noqa: E402

EXPORTER = os.environ.get("SRUP_MQTT_EXPORTER", "/usr/bin/prometheus-mqtt-exporter")
CONFIG = os.path.join(h.REPO, "packaging", "prometheus", "srup-mqtt-exporter.yaml")
SYS = "$SYS/broker/srup/"
SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
S = {}


def published_topics():
    """Every topic the plugin's source publishes under $SYS/broker/srup/: the literals in
    plugin/metrics.c and dropped/<reason> for each name in plugin/policy.c's reason table."""
    with open(os.path.join(h.REPO, "plugin", "metrics.c")) as f:
        src = f.read()
    names = set(re.findall(r'"\$SYS/broker/srup/([a-z_/]+)"', src))
    if '"$SYS/broker/srup/dropped/%s"' not in src:
        raise h.HarnessError("plugin/metrics.c no longer publishes dropped/%s: update this test")
    with open(os.path.join(h.REPO, "plugin", "policy.c")) as f:
        table = re.search(r"reason_names\[SRUPB_R__COUNT\] = \{(.*?)\};", f.read(), re.S)
    reasons = re.findall(r'"([a-z_]+)"', table.group(1))
    return names | {"dropped/" + r for r in reasons}


def broker_cert_with_san(pki):
    """A broker certificate for localhost and 127.0.0.1 in subjectAltName: the Go TLS client of
    the exporter checks the host against SANs only (the lab's broker certificate has a CN)."""
    crt = os.path.join(pki.dir, "broker-san.crt")
    key = os.path.join(pki.dir, "broker-san.key")
    h.run(["openssl", "req", "-x509", "-subj", "/CN=localhost", "-CA", pki.ca, "-CAkey",
           pki.ca_key, "-days", "2", "-config", pki.cnf, "-extensions", "leaf",
           "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-newkey", "ec",
           "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", crt])
    return crt, key


NAMES = [("server", "server"), ("server2", "server"), ("dev1", "device"), ("dev2", "device"),
         ("dev3", "device"), ("observer", "observer"), ("stranger", None), ("exporter", None)]


def make_lab():
    lab = h.Lab(start=False, names=NAMES)
    # the exporter reads the counters as a metrics_reader: no admin command is open to it
    with open(lab.broker.policy, "w") as f:
        f.write(lab.policy_text("metrics_reader %s\n" % lab.exporter.hex))
    crt, key = broker_cert_with_san(lab.pki)
    conf = []
    for line in lab.broker.tls_conf:
        if line.startswith("certfile "):
            line = "certfile %s" % crt
        elif line.startswith("keyfile "):
            line = "keyfile %s" % key
        conf.append(line)
    lab.broker.tls_conf = conf
    lab.broker.start()
    return lab


def exporter_config(lab, path):
    """The shipped configuration with the test's broker, CA and the exporter's certificate (a
    metrics_reader of the policy, not an admin)."""
    with open(CONFIG) as f:
        text = f.read()
    crt, key = lab.certs["exporter"]
    subst = {"server": "ssl://127.0.0.1:%d" % lab.broker.tls_port, "ca_cert": lab.pki.ca,
             "client_cert": crt, "client_key": key}
    for k, v in subst.items():
        text, n = re.subn(r"(?m)^(  %s: ).*$" % k, lambda m: m.group(1) + v, text)
        if n != 1:
            raise h.HarnessError("%s: no single `  %s:` line under mqtt" % (CONFIG, k))
    with open(path, "w") as f:
        f.write(text)


def start_exporter(lab):
    cfg = os.path.join(lab.dir, "srup-mqtt-exporter.yaml")
    exporter_config(lab, cfg)
    for attempt in range(5):
        port = h.free_port()
        logf = open(os.path.join(lab.dir, "exporter.log"), "w")
        proc = subprocess.Popen([EXPORTER, "-config", cfg, "-listen-address", "127.0.0.1",
                                 "-listen-port", str(port), "-log-level", "debug"],
                                stdout=logf, stderr=subprocess.STDOUT)
        logf.close()
        # It serves /metrics once its MQTT connection is up.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=1).read()
                return proc, port
            except OSError:
                time.sleep(0.2)
        if proc.poll() is None:
            proc.terminate()
            proc.wait(5)
        with open(os.path.join(lab.dir, "exporter.log")) as f:
            out = f.read()
        if "address already in use" not in out:
            raise h.HarnessError("the exporter did not serve /metrics:\n" + out[-3000:])
    raise h.HarnessError("no free port for the exporter")


def scrape(port):
    """[(name, {label: value}, float)] of http://127.0.0.1:port/metrics, and its TYPE lines."""
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5).read()
    samples = []
    types = {}
    S["text"] = text.decode()
    for line in S["text"].splitlines():
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(None, 3)
            types[name] = typ
            continue
        if not line or line.startswith("#"):
            continue
        m = SAMPLE_RE.match(line)
        if m:
            labels = dict(LABEL_RE.findall(m.group(2) or ""))
            samples.append((m.group(1), labels, float(m.group(3)), line))
    return samples, types


def by_topic(samples):
    """Our metrics (srup_*) by topic; the exporter's own received_messages has a topic label
    too."""
    return {l["topic"][len(SYS):]: (n, l, v, line) for n, l, v, line in samples
            if n.startswith("srup_") and l.get("topic", "").startswith(SYS)}


def traffic(lab):
    """What the lab scenario does to the broker, in miniature."""
    dev1 = "SRUP/%s" % lab.dev1.hex
    # a join of dev1 to server, and one of dev2 left pending
    assert lab.join(lab.server, lab.dev1), "join of dev1 failed"
    d2 = lab.connect(lab.dev2)
    rc = d2.publish("SRUP/servers/%s/%s" % (lab.server.hex, lab.dev2.hex),
                    lab.msg(lab.dev2, "JOIN_REQ"))
    assert h.delivered(rc), "dev2 JOIN_REQ: %s" % h.rc_name(rc)
    s = lab.connect(lab.server)
    # accepted commands and data, an MQTT retransmission of one of them
    for i in range(5):
        rc = s.publish(dev1, lab.msg(lab.server, "ACTION", action_id=i))
        assert h.delivered(rc), "ACTION %d: %s" % (i, h.rc_name(rc))
    m = lab.msg(lab.server, "ACTION", action_id=7)
    assert h.delivered(s.publish(dev1, m))
    s.publish(dev1, m, dup=True)
    d1 = lab.connect(lab.dev1)
    d1.publish(dev1, lab.msg(lab.dev1, "DATA", data_id=b"t", data=b"21.5"))
    # replays from another connection, forgeries, malformed and unknown-sender messages
    s2 = lab.connect(lab.server)
    for _ in range(3):
        s2.publish(dev1, m)
    for i in range(4):
        bad = bytearray(lab.msg(lab.server, "ACTION", action_id=20 + i))
        bad[-2] ^= 1
        s.publish(dev1, bytes(bad))
    s.publish(dev1, lab.msg(lab.server, "ACTION", action_id=30)[:-1])
    s.publish(dev1, lab.msg(lab.server, "ACTION", action_id=31) + b"\x00")
    s.publish(dev1, b"")
    lab.connect(lab.stranger).publish(dev1, lab.msg(lab.stranger, "ACTION", action_id=1))
    # the admin plane: one command that works, one refused; a refused $SYS subscription
    lab.connect(lab.admin).publish("$CONTROL/srup/v1", b'{"command":"reload"}')
    lab.connect(lab.dev3).publish("$CONTROL/srup/v1", b'{"command":"reload"}')
    rc = lab.connect(lab.dev3).subscribe(SYS + "#")
    assert rc == h.RC_NOT_AUTHORIZED, "a device subscribed to $SYS/broker/srup/#: %s" % rc
    lab.close_clients()


def test_metrics_reader_is_read_only(lab, check):
    """The exporter's identity reads the counters and nothing else of the admin plane: its
    command is refused (audited as not_admin) and it cannot subscribe to the answers."""
    c = lab.connect(lab.exporter)
    check(c.subscribe(SYS + "accepted") != h.RC_NOT_AUTHORIZED,
          "a metrics_reader cannot subscribe to the counters")
    check(c.subscribe("$CONTROL/srup/v1/response/#") == h.RC_NOT_AUTHORIZED,
          "a metrics_reader subscribed to the admin answers")
    mark = lab.audit_mark()
    c.publish("$CONTROL/srup/v1", b'{"command":"reload"}')
    rec = lab.wait_audit(mark, lambda r: r.get("verdict") == "admin")
    check(rec is not None and rec.get("reason") == "not_admin" and
          rec.get("identity") == lab.exporter.hex,
          "a metrics_reader's command: %r" % rec)
    lab.close_clients()


def test_exporter_exports_every_counter(lab, check):
    check(os.access(EXPORTER, os.X_OK),
          "%s missing: run scripts/install-deps.sh (it installs prometheus-mqtt-exporter)"
          % EXPORTER)
    if not os.access(EXPORTER, os.X_OK):
        return
    proc, port = start_exporter(lab)
    try:
        traffic(lab)
        want = published_topics()
        # The broker's values, once quiet (the gauges are read once a second).
        time.sleep(1.5)
        counters = lab.counters()
        check(set(counters) == want, "the broker published %s, the source says %s" %
              (sorted(set(counters) - want), sorted(want - set(counters))))
        # The exporter's, until they agree (it gets each change as the broker publishes it).
        deadline = time.monotonic() + 10
        while True:
            samples, types = scrape(port)
            got = by_topic(samples)
            same = all(k in got and got[k][2] == v for k, v in counters.items())
            if same or time.monotonic() > deadline:
                break
            time.sleep(0.5)
            counters = lab.counters(wait=0.5)
        for name in sorted(want):
            if not check(name in got, "%s%s is not in the exporter's output" % (SYS, name)):
                continue
            prom, labels, value, _ = got[name]
            check(value == counters.get(name), "%s (%s%s): exporter %r, broker %r" %
                  (prom, SYS, name, value, counters.get(name)))
            kind = "gauge" if name.startswith(("store/", "joins/")) else "counter"
            check(types.get(prom) == kind, "%s: TYPE %r, want %s" % (prom, types.get(prom), kind))
            check(labels.get("sensor") == "srup", "%s: sensor label %r" % (prom, labels))
        extra = sorted(set(got) - want)
        check(not extra, "exported topics the plugin does not publish: %s" % extra)
        # The gauges are the true state: the lab's 6 keys, two joins' worth of marks, dev2's
        # join still pending, the seen-index capacity of the shipped policy.
        for name, value in (("store/keys", 6), ("joins/pending", 1),
                            ("store/seen_capacity", 262144)):
            check(counters.get(name) == value, "%s%s is %r, want %r" %
                  (SYS, name, counters.get(name), value))
        # join channel dev1 and dev2, dev1's channel by server and by dev1
        check(counters.get("store/marks") == 4, "store/marks %r, want 4" %
              counters.get("store/marks"))
        check(counters.get("store/seen_used", 0) >= 8, "store/seen_used %r, want >= 8" %
              counters.get("store/seen_used"))
        for name in ("accepted", "retransmitted", "dropped/replay", "dropped/bad_signature",
                     "dropped/truncated", "dropped/trailing_bytes", "dropped/empty_payload",
                     "dropped/unknown_sender", "admin/ok", "admin/refused",
                     "refused/subscribe"):
            check(counters.get(name, 0) > 0, "%s%s did not move" % (SYS, name))
        connected = [v for n, _, v, _ in samples if n == "mqtt2prometheus_connected"]
        check(connected == [1.0], "mqtt2prometheus_connected %r" % connected)
        h.log("    the scrape's srup_ lines and mqtt2prometheus_connected:")
        for line in S["text"].splitlines():
            if re.match(r"^(# (HELP|TYPE) )?(srup_|mqtt2prometheus_connected)", line):
                h.log("      " + line)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if check.failures:
            with open(os.path.join(lab.dir, "exporter.log")) as f:
                h.log("---- exporter log ----\n" + f.read()[-4000:] + "---- end ----")


if __name__ == "__main__":
    h.main([test_metrics_reader_is_read_only, test_exporter_exports_every_counter],
           lab_factory=make_lab)
