#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# bench_plugin.py - the SRUP plugin benchmark: drives mosquitto on 127.0.0.1 with pre-signed
# messages and prints, from one run, the plugin's throughput next to plain mosquitto and the
# raw OpenSSL verify rate, replay-only and non-SRUP traffic, added latency, and start-up time
# and memory with a large key store. Prints figures and ratios; asserts nothing about speed.
#
# Usage: bench_plugin [--count N] [--latency-count N] [--rounds N] [--devices N] [--quick]
# Built into build/tests/bench/bench_plugin (run by scripts/run-tests.sh --bench); from the
# source tree it finds the build in $SRUP_BUILD_DIR or <repo>/build.
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

SOURCE_DIR = "@CMAKE_SOURCE_DIR@"
BINARY_DIR = "@CMAKE_BINARY_DIR@"
if SOURCE_DIR.startswith("@"):
    SOURCE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    BINARY_DIR = os.environ.get("SRUP_BUILD_DIR", os.path.join(SOURCE_DIR, "build"))
os.environ.setdefault("SRUP_BUILD_DIR", BINARY_DIR)
sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "integration"))
import srupharness as h  # noqa: E402

HELPERS = os.path.join(BINARY_DIR, "tests", "bench", "helpers")
# With two CPUs or more, the broker and everything measured against it (openssl speed, the
# verify helpers) run on CPU 0 and the load generator on CPU 1, for every broker alike: left to
# the scheduler, the two sometimes share a CPU and a run's rate halves.
if (os.cpu_count() or 1) >= 2 and shutil.which("taskset"):
    PIN_BROKER, PIN_LOAD = ["taskset", "-c", "0"], ["taskset", "-c", "1"]
else:
    PIN_BROKER, PIN_LOAD = [], []
LOAD = os.path.join(HELPERS, "bench_plugin_load")
SIGN = os.path.join(HELPERS, "bench_plugin_sign")
FILL = os.path.join(HELPERS, "bench_plugin_fill")


def say(*a):
    print(*a, flush=True)


def write_records(path, items):
    """items: iterable of (topic, payload) -> the load generator's record file."""
    with open(path, "wb") as f:
        for topic, payload in items:
            t = topic.encode()
            f.write(len(t).to_bytes(2, "big") + t + len(payload).to_bytes(4, "big") + payload)


def read_signed(path):
    out = []
    with open(path, "rb") as f:
        data = f.read()
    off = 0
    while off + 4 <= len(data):
        n = int.from_bytes(data[off:off + 4], "big")
        out.append(data[off + 4:off + 4 + n])
        off += 4 + n
    return out


def presign(workdir, key, sender_hex, mtype, seq0, count, senders=1, procs=2):
    """Sign count messages in procs parallel helper processes; returns the payloads in order."""
    parts = []
    per = (count + procs - 1) // procs
    running = []
    for p in range(procs):
        start = p * per
        n = min(per, count - start)
        if n <= 0:
            break
        out = os.path.join(workdir, "signed-%d-%d.bin" % (seq0, p))
        # sender + (i % senders) must continue across the split
        sender = int(sender_hex, 16) + (start % senders)
        cmd = [SIGN, "--key", key, "--sender", "%x" % sender, "--type", mtype, "--seq-start",
               str(seq0 + start), "--count", str(n), "--out", out, "--senders", str(senders)]
        running.append((subprocess.Popen(cmd, stdout=subprocess.PIPE), out))
    for proc, out in running:
        proc.wait()
        if proc.returncode != 0:
            raise h.HarnessError("bench_plugin_sign failed")
        parts.extend(read_signed(out))
    return parts


def openssl_verify_rate(seconds=1):
    p = subprocess.run(PIN_BROKER + ["openssl", "speed", "-seconds", str(seconds), "rsa2048"],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in p.stdout.splitlines():
        m = re.match(r"^rsa\s+2048 bits\s+\S+\s+\S+\s+(\S+)\s+(\S+)", line.strip())
        if m:
            return float(m.group(2)), float(m.group(1))
    raise h.HarnessError("cannot parse openssl speed output")


def load(port, records, mode, pub_user, sub_user, sub_filter, window=500, drain=2.0):
    cmd = PIN_LOAD + [LOAD, "--port", str(port), "--file", records, "--mode", mode, "--window",
           str(window), "--drain", str(drain), "--sub-filter", sub_filter]
    if pub_user:
        cmd += ["--pub-user", pub_user]
    if sub_user:
        cmd += ["--sub-user", sub_user]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=900)
    if p.returncode != 0:
        raise h.HarnessError("load generator failed: %s" % p.stderr.strip())
    return json.loads(p.stdout.strip().splitlines()[-1])


def rate(res):
    return res["n"] / res["t_ack"] if res.get("t_ack", -1) > 0 else float("nan")


def proc_mem(broker):
    st = broker.status()

    def kb(k):
        return int(st.get(k, "0 kB").split()[0])
    return kb("VmRSS"), kb("VmHWM"), kb("RssAnon"), kb("RssFile")


def start_time(broker):
    t0 = time.monotonic()
    broker.start()
    return time.monotonic() - t0


class Bench:
    def __init__(self, args):
        self.args = args
        self.dir = tempfile.mkdtemp(prefix="srup-bench-")
        self.lab_keys()

    def lab_keys(self):
        self.server = h.Identity("server", self.dir, "server")
        self.dev = h.Identity("dev1", self.dir, "device")
        self.store0 = os.path.join(self.dir, "store0")
        os.makedirs(self.store0)
        for ident in (self.server, self.dev):
            h.run([h.SRUP, "keys", "add", "--store", self.store0, "--id", ident.hex, "--role",
                   ident.role, "--key", ident.pub])
        # The load generator connects over plain TCP and names itself by username: the bench
        # brokers take identities from usernames (as a listener with a password file would).
        self.policy = os.path.join(self.dir, "username.policy")
        with open(h.SHIPPED_POLICY) as f:
            text = f.read()
        text = re.sub(r"(?m)^identity .*$", "identity username", text)
        with open(self.policy, "w") as f:
            f.write(text)
        self.join_in_store()

    def join_in_store(self):
        """dev1 joins server in store0 (membership is needed for the server's commands): the
        JOIN_REQ, then the JOIN_SUCCESS with its token, sequence 1 on dev1's channel (the
        benchmark's own commands start at 2)."""
        d = os.path.join(self.dir, "join")
        os.makedirs(d)
        b = h.Broker(d, self.store0, os.path.join(d, "audit.jsonl"), policy=self.policy)
        b.start()
        try:
            tok = b"bench-join-token"
            req = h.Lab.srup_encode(None, self.dev.id, "JOIN_REQ", 1, tok, self.dev.priv, {})
            ok = h.Lab.srup_encode(None, self.server.id, "RESPONSE", 1, tok, self.server.priv,
                                   {"status": h.JOIN_SUCCESS})
            dc = h.Client(b.port, "bench-join-dev", username=self.dev.hex)
            sc = h.Client(b.port, "bench-join-server", username=self.server.hex)
            rc1 = dc.publish("SRUP/servers/%s/%s" % (self.server.hex, self.dev.hex), req)
            rc2 = sc.publish("SRUP/%s" % self.dev.hex, ok)
            dc.disconnect()
            sc.disconnect()
            if not (h.delivered(rc1) and h.delivered(rc2)):
                raise h.HarnessError("bench join refused: %s %s" % (h.rc_name(rc1),
                                                                   h.rc_name(rc2)))
        finally:
            b.stop()

    def policy_text(self):
        """The shipped policy under `identity username`: the load generator speaks plain MQTT
        and names its identity as username (a benchmark-only shortcut: the username is proven
        by nothing; the shipped default is the TLS client certificate)."""
        with open(h.SHIPPED_POLICY) as f:
            text = f.read()
        return re.sub(r"(?m)^identity .*$", "identity username", text)

    def broker(self, name, plugin, store=None, policy=None):
        policy = policy or self.policy
        d = os.path.join(self.dir, name)
        os.makedirs(d, exist_ok=True)
        if plugin and policy is None:
            policy = os.path.join(self.dir, "username.policy")
            with open(policy, "w") as f:
                f.write(self.policy_text())
        if store is None and plugin:
            store = os.path.join(d, "store")
            shutil.copytree(self.store0, store)
        # max_queued_messages must not be 0: 2.0.11 then disconnects a client on its first
        # refused QoS 1 publish (process_bad_message compares its queue length with it).
        b = h.Broker(d, store or os.path.join(d, "none"), os.path.join(d, "audit.jsonl"),
                     policy=policy, plugin=plugin, log_types=("error", "warning", "notice"),
                     extra_conf=["max_queued_messages 1000000", "max_inflight_messages 0"],
                     cmd_prefix=PIN_BROKER)
        return b

    def run(self):
        a = self.args
        n = a.count
        say("bench_plugin: %d messages per run, %d rounds, latency over %d messages; broker %s"
            % (n, a.rounds, a.latency_count, h.MOSQUITTO))
        say("(shared cores: figures move with other load on the machine; %s)" % (
            "broker on CPU 0, load generator on CPU 1" if PIN_BROKER else "not pinned"))
        t0 = time.monotonic()
        msgs = presign(self.dir, self.server.priv, self.server.hex, "ACTION", 2, n)
        lat = presign(self.dir, self.server.priv, self.server.hex, "ACTION", n + 2,
                      a.latency_count)
        say("pre-signed %d messages in %.1f s (not timed below)" % (n + a.latency_count,
                                                                  time.monotonic() - t0))
        ch = "SRUP/%s" % self.dev.hex
        f_srup = os.path.join(self.dir, "srup.rec")
        f_other = os.path.join(self.dir, "other.rec")
        f_lat = os.path.join(self.dir, "lat.rec")
        f_lat_other = os.path.join(self.dir, "lat-other.rec")
        write_records(f_srup, ((ch, m) for m in msgs))
        write_records(f_other, (("bench/plain", m) for m in msgs))
        # the same traffic in chunks, in sequence order, for the side-by-side runs
        nchunks = max(1, min(4, n // 10000))
        per = (n + nchunks - 1) // nchunks
        f_srup_chunks, f_other_chunks = [], []
        for k in range(nchunks):
            part = msgs[k * per:(k + 1) * per]
            fs = os.path.join(self.dir, "srup-%d.rec" % k)
            fo = os.path.join(self.dir, "other-%d.rec" % k)
            write_records(fs, ((ch, m) for m in part))
            write_records(fo, (("bench/plain", m) for m in part))
            f_srup_chunks.append(fs)
            f_other_chunks.append(fo)
        write_records(f_lat, ((ch, m) for m in lat))
        write_records(f_lat_other, (("bench/plain", m) for m in lat))
        su, du = self.server.hex, self.dev.hex

        def verify_rates():
            """(openssl speed, prepared ctx, DigestVerifyInit per message, libsrup) verify/s."""
            speed, _ = openssl_verify_rate()
            sv = subprocess.run(PIN_BROKER + [SIGN, "--key", self.server.priv, "--sender", su,
                                 "--type",
                                 "ACTION", "--seq-start", "1", "--count", "500", "--out",
                                 os.path.join(self.dir, "v.bin"), "--verify-rate"],
                                stdout=subprocess.PIPE, text=True)
            lib = json.loads(sv.stdout.strip().splitlines()[-1])
            return (speed, lib["evp_pkey_verify_prepared_per_s"],
                    lib["evp_digestverify_init_per_msg_per_s"], lib["parse_verify_per_s"])

        R = {k: [] for k in ("plain", "plain_other", "valid", "replay", "other", "v_speed",
                             "v_key", "v_init", "v_lib")}
        # The machine's speed drifts within seconds, so plain and plugin brokers run side by
        # side: both are up for the whole round, the traffic is cut into chunks, and each chunk
        # goes to one broker and then the other (alternating which goes first). A broker's rate
        # is all its messages over the sum of its chunk times. Ratios are taken within each
        # round (its own plain and verify rates), then their median is reported.
        Q = {k: [] for k in ("valid", "kvalid", "replay", "other")}
        deliveries = []

        def lim(p, v):
            return 1.0 / (1.0 / p + 1.0 / v)

        def side_by_side(bp, bq, files, filt):
            """(plain rate, plugin rate, plugin results) over the chunk files."""
            n = {"p": 0, "q": 0}
            t = {"p": 0.0, "q": 0.0}
            got = []
            for k, f in enumerate(files):
                for who in (("p", "q") if k % 2 == 0 else ("q", "p")):
                    res = load((bp if who == "p" else bq).port, f, "throughput", su, du, filt,
                               drain=0.2)
                    n[who] += res["n"]
                    t[who] += res["t_ack"]
                    if who == "q":
                        got.append(res)
            return n["p"] / t["p"], n["q"] / t["q"], got

        for r in range(a.rounds):
            v_before = verify_rates()
            bp = self.broker("plain-%d" % r, plugin=False)
            bq = self.broker("plugin-%d" % r, plugin=True)
            bp.start()
            bq.start()
            p_rate, q_rate, got = side_by_side(bp, bq, f_srup_chunks, ch)
            R["plain"].append(p_rate)
            R["valid"].append(q_rate)
            deliveries.append(tuple(sum(x[k] for x in got) for k in ("ok", "denied",
                                                                      "delivered")))
            res = load(bq.port, f_srup, "throughput", su, du, ch, drain=0.3)
            R["replay"].append(rate(res))
            deliveries.append(("replay", res["ok"], res["denied"], res["delivered"]))
            p_rate, q_rate, _ = side_by_side(bp, bq, f_other_chunks, "bench/plain")
            R["plain_other"].append(p_rate)
            R["other"].append(q_rate)
            bp.stop()
            bq.stop()
            v_after = verify_rates()
            # the verify rates of the round: the mean of one measure before and one after
            for k, x, y in zip(("v_speed", "v_key", "v_init", "v_lib"), v_before, v_after):
                R[k].append((x + y) / 2.0)
            Q["valid"].append(R["valid"][-1] / lim(R["plain"][-1], R["v_speed"][-1]))
            Q["kvalid"].append(R["valid"][-1] / lim(R["plain"][-1], R["v_key"][-1]))
            Q["replay"].append(R["replay"][-1] / R["plain"][-1])
            Q["other"].append(R["other"][-1] / R["plain_other"][-1])
            say("round %d: plain %.0f/s, verify %.0f/s, plugin valid %.0f/s (%.2f of the limit), "
                "replay %.0f/s; non-SRUP plain %.0f/s, plugin %.0f/s (%.2f)"
                % (r + 1, R["plain"][-1], R["v_speed"][-1], R["valid"][-1], Q["valid"][-1],
                   R["replay"][-1], R["plain_other"][-1], R["other"][-1], Q["other"][-1]))
        med = {k: statistics.median(v) for k, v in R.items()}
        best = {k: max(v) for k, v in R.items()}
        limit = lim(med["plain"], med["v_speed"])
        limit_best = lim(best["plain"], best["v_speed"])
        # The same limit with the verify rate of the key actually used (e = 65537), prepared
        # EVP_PKEY_CTX + SHA-256 of the signed bytes: what a per-message verify can reach.
        klimit = lim(med["plain"], med["v_key"])
        klimit_best = lim(best["plain"], best["v_key"])

        def qs(k):
            v = Q[k]
            return "%.2f (rounds %.2f-%.2f)" % (statistics.median(v), min(v), max(v))

        # Latency: QoS 1 publisher -> QoS 1 subscriber, one message at a time.
        b = self.broker("lat-plain", plugin=False)
        b.start()
        lp = load(b.port, f_lat, "latency", su, du, ch)
        b.stop()
        b = self.broker("lat-plugin", plugin=True)
        b.start()
        lq = load(b.port, f_lat, "latency", su, du, ch)
        lo = load(b.port, f_lat_other, "latency", su, du, "bench/plain")
        b.stop()
        # Same, with durability fsync (no once-a-second store flush in the broker's loop).
        pol = os.path.join(self.dir, "fsync.policy")
        text = self.policy_text()
        with open(pol, "w") as f:
            f.write(re.sub(r"(?m)^durability .*$", "durability fsync", text))
        b = self.broker("lat-plugin-fsync", plugin=True, policy=pol)
        b.start()
        lf = load(b.port, f_lat, "latency", su, du, ch)
        lfo = load(b.port, f_lat_other, "latency", su, du, "bench/plain")
        b.stop()

        say("")
        say("== throughput (messages/s, time to the last PUBACK; median and best of %d rounds;"
            % a.rounds)
        say("   verify rates are measured in each round too)")
        say("%-44s %10s %10s" % ("what", "median", "best"))

        def row(label, key, note=""):
            say("%-44s %10.0f %10.0f%s" % (label, med[key], best[key], note))
        row("plain mosquitto, SRUP traffic", "plain")
        row("raw OpenSSL RSA-2048 verify (openssl speed)", "v_speed")
        row("OpenSSL verify, this key, prepared ctx+SHA256", "v_key")
        row("OpenSSL DigestVerifyInit_ex per message", "v_init")
        row("libsrup parse + srup_msg_verify", "v_lib")
        say("%-44s %10.0f %10.0f" % ("limit 1/(1/plain + 1/verify), openssl speed", limit,
                                     limit_best))
        say("%-44s %10.0f %10.0f" % ("limit 1/(1/plain + 1/verify), this key", klimit,
                                     klimit_best))
        row("plugin, valid SRUP traffic", "valid")
        row("plugin, replay-only traffic", "replay")
        row("plain mosquitto, non-SRUP topic", "plain_other")
        row("plugin, non-SRUP topic", "other")
        say("")
        say("== ratios (median of the per-round ratios, and their range)")
        say("valid SRUP / limit (openssl speed verify):   %s   target >= 0.9" % qs("valid"))
        say("valid SRUP / limit (this key, prepared ctx): %s" % qs("kvalid"))
        say("replay-only / plain:                         %s   target >= 0.8" % qs("replay"))
        say("non-SRUP topic / plain:                      %s   target >= 0.97" % qs("other"))
        say("(ratios of the medians above: valid %.2f, replay %.2f, non-SRUP %.2f)" % (
            med["valid"] / limit, med["replay"] / med["plain"],
            med["other"] / med["plain_other"]))
        say("deliveries check (ok, denied, delivered) per plugin run: %r" % deliveries)
        say("(a replay run resends the valid run's messages from a new connection with a clean")
        say(" start: every one is refused, the last one too: that is no MQTT retransmission)")
        say("")
        say("== latency, QoS 1 publish -> QoS 1 delivery, %d messages one at a time (us)"
            % a.latency_count)
        say("%-44s %8s %8s %8s %8s" % ("", "median", "p99", "mean", ">1ms"))
        for name, x in (("plain mosquitto", lp), ("plugin, valid SRUP", lq),
                        ("plugin, non-SRUP topic", lo),
                        ("plugin durability fsync, valid SRUP", lf),
                        ("plugin durability fsync, non-SRUP topic", lfo)):
            say("%-44s %8.0f %8.0f %8.0f %8d" % (name, x["median_us"], x["p99_us"],
                                                 x["mean_us"], x.get("over_1ms", -1)))
        say("%-44s %8.0f %8.0f" % ("added by the plugin (default policy)",
                                   lq["median_us"] - lp["median_us"],
                                   lq["p99_us"] - lp["p99_us"]))
        if a.devices > 0:
            self.startup(a.devices)
        return 0

    def startup(self, ndev):
        say("")
        say("== start-up and memory with %d registered devices" % ndev)
        base = 0x4000000000000000
        store = os.path.join(self.dir, "big-store")
        shutil.copytree(self.store0, store)
        t0 = time.monotonic()
        p = subprocess.run([FILL, "--store", store, "--key", self.dev.pub, "--id-base",
                            "%x" % base, "--count", str(ndev)], stdout=subprocess.PIPE,
                           text=True)
        if p.returncode != 0:
            say("bench_plugin_fill failed (is the plugin's store library built?)")
            return
        fill = json.loads(p.stdout.strip().splitlines()[-1])
        size = sum(os.path.getsize(os.path.join(store, f)) for f in os.listdir(store))
        say("filled the store in %.1f s (%s keys, %.0f MB on disk)" % (
            time.monotonic() - t0, fill.get("keys"), size / 1e6))

        # Distinct senders beyond the key cache: policy without identity binding (one
        # connection speaks for many devices) and a small key cache to show the bound.
        cache = 1000
        nsend = 4 * cache
        pol = os.path.join(self.dir, "bench.policy")
        with open(self.policy) as f:
            text = f.read()
        text = text.replace("bind_identity yes", "bind_identity no")
        text = re.sub(r"(?m)^key_cache .*$", "key_cache %d" % cache, text)
        with open(pol, "w") as f:
            f.write(text)
        msgs = presign(self.dir, self.dev.priv, "%x" % base, "DATA", 1, nsend,
                       senders=nsend)

        rows = []
        for name, st, plugin in (("plain mosquitto", None, False),
                                 ("plugin, 2 keys", None, True),
                                 ("plugin, %d keys" % (ndev + 2), store, True)):
            b = self.broker("start-%d" % len(rows), plugin=plugin, store=st, policy=pol)
            times = []
            for _ in range(3):
                times.append(start_time(b))
                b.stop()
            b.start()
            mem = proc_mem(b)
            after = []
            if st is not None:
                prev = 0
                for k in (cache, nsend):
                    part = os.path.join(self.dir, "senders-%d.rec" % k)
                    write_records(part, (("SRUP/%x" % (base + i), msgs[i])
                                         for i in range(prev, k)))
                    prev = k
                    res = load(b.port, part, "throughput", None, None, "bench/none",
                               drain=0.2)
                    after.append((k, res["ok"], res["denied"]) + proc_mem(b))
            b.stop()
            rows.append((name, statistics.median(times), mem, after))
        say("%-28s %10s %11s %11s %11s %11s" % ("", "start (s)", "VmRSS kB", "VmHWM kB",
                                                 "RssAnon kB", "RssFile kB"))
        for name, t, mem, _ in rows:
            say("%-28s %10.3f %11d %11d %11d %11d" % ((name, t) + mem))
        for name, t, mem, after in rows:
            for k, ok, den, rss, hwm, anon, fil in after:
                say("%s, after messages from %d distinct devices (key_cache %d; %d accepted, "
                    "%d refused): VmRSS %d, VmHWM %d, RssAnon %d, RssFile %d kB"
                    % (name, k, cache, ok, den, rss, hwm, anon, fil))
        say("(start = spawn to the listener accepting connections, median of 3; RssFile "
            "includes the store's memory-mapped pages)")

    def cleanup(self):
        if os.environ.get("SRUP_KEEP_TMP") != "1":
            shutil.rmtree(self.dir, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description="SRUP plugin benchmark (figures only)")
    ap.add_argument("--count", type=int, default=40000, help="messages per throughput run")
    ap.add_argument("--latency-count", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--devices", type=int, default=1000000,
                    help="registered devices for the start-up figure (0: skip)")
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    a = ap.parse_args()
    if a.quick:
        a.count, a.latency_count, a.rounds, a.devices = 2000, 200, 1, 20000
    for p in (LOAD, SIGN, h.PLUGIN, h.SRUP):
        if not os.access(p, os.X_OK) and not os.path.exists(p):
            say("bench_plugin: %s is not built" % p)
            return 1
    b = Bench(a)
    try:
        return b.run()
    finally:
        b.cleanup()


if __name__ == "__main__":
    sys.exit(main())
