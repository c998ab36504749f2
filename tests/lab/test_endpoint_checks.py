#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# test_endpoint_checks.py - the daemons' own checks, with NO plugin in the broker: a device drops
# replays, forgeries, unknown senders and malformed payloads itself; a forged maximum sequence ID
# moves no state; sequence IDs survive restarts of both ends (a restarted device still refuses an
# old message, a restarted C2 carries on with higher IDs). Usage: test_endpoint_checks.py BUILD
import getpass
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "docker"))
import attacker  # noqa: E402  (message builder and splitter)

BUILD = sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, "build")
TOOLS = os.path.join(BUILD, "tools")
FAILS = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILS.append(what)


def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=90,
                          **kw)


def free_port():
    import random
    for _ in range(100):
        p = random.randint(20000, 60000)
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", p))
            s.close()
            return p
        except OSError:
            s.close()
    raise RuntimeError("no free port")


def wait_port(port):
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


class Env:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="srup-endpoint-")
        self.port = free_port()
        self.procs = {}
        self.ids = {}
        for n in ("c2", "dev", "evil"):
            run([os.path.join(TOOLS, "srup"), "keygen", "--out", os.path.join(self.dir, n)])
            self.ids[n] = run([os.path.join(TOOLS, "srup"), "id"]).stdout.decode().strip()
        for n, peer in (("c2", "dev"), ("dev", "c2")):
            os.makedirs(os.path.join(self.dir, "peers-" + n))
            shutil.copy(os.path.join(self.dir, peer + ".pub.pem"),
                        os.path.join(self.dir, "peers-" + n, self.ids[peer] + ".pub.pem"))
            with open(os.path.join(self.dir, n + ".conf"), "w") as f:
                f.write("identity = %s\nrole = %s\nprivate_key = %s/%s.pem\n"
                        "peer_keys = %s/peers-%s\nbroker_host = 127.0.0.1\nbroker_port = %d\n"
                        "state_file = %s/%s.state\ncontrol_socket = %s/%s.sock\ntimeout = 10\n"
                        % (self.ids[n], "c2" if n == "c2" else "device", self.dir, n, self.dir,
                           n, self.port, self.dir, n, self.dir, n))
                if n == "c2":
                    f.write("wire_log = %s/tap.log\n" % self.dir)
                else:
                    f.write("server = %s\nupdate_dir = %s/updates\n" % (self.ids["c2"],
                                                                        self.dir))
        with open(os.path.join(self.dir, "mosquitto.conf"), "w") as f:
            f.write("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n"
                    "user %s\n" % (self.port, getpass.getuser()))

    def start(self, name):
        log = open(os.path.join(self.dir, name + ".log"), "a")
        if name == "broker":
            cmd = ["/usr/sbin/mosquitto", "-c", os.path.join(self.dir, "mosquitto.conf")]
        elif name == "c2":
            cmd = [os.path.join(TOOLS, "srup-c2"), "--config",
                   os.path.join(self.dir, "c2.conf"), "run"]
        else:
            cmd = [os.path.join(TOOLS, "srup-device"), "run", "--config",
                   os.path.join(self.dir, "dev.conf")]
        if name != "broker" and os.environ.get("LAB_WRAP"):
            cmd = os.environ["LAB_WRAP"].split() + cmd  # e.g. valgrind
        self.procs[name] = subprocess.Popen(cmd, stdout=log, stderr=log)
        if name == "broker":
            wait_port(self.port)
        else:
            for _ in range(300):
                if b"connected=1" in self.ctl(name, "status").stdout:
                    break
                time.sleep(0.1)

    def stop(self, name):
        p = self.procs.pop(name)
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=30)

    def ctl(self, name, *args):
        if name == "c2":
            return run([os.path.join(TOOLS, "srup-c2"), "--config",
                        os.path.join(self.dir, "c2.conf")] + list(args))
        return run([os.path.join(TOOLS, "srup-device"), "ctl", "--config",
                    os.path.join(self.dir, "dev.conf")] + list(args))

    def log(self, name):
        with open(os.path.join(self.dir, name + ".log")) as f:
            return f.read()

    def inject(self, payload):
        path = os.path.join(self.dir, "inject.bin")
        with open(path, "wb") as f:
            f.write(payload)
        run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(self.port), "-q", "1", "-t",
             "SRUP/" + self.ids["dev"], "-f", path])

    def tapped(self, mtype):
        with open(os.path.join(self.dir, "tap.log")) as f:
            for line in reversed(f.read().splitlines()):
                d, topic, hexm = line.split()
                m = bytes.fromhex(hexm)
                if d == "out" and m[1] == mtype:
                    return m
        return None

    def close(self):
        for n in list(self.procs):
            self.stop(n)
        if FAILS:
            print("kept " + self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


def wait_log(env, name, text, timeout=5.0):
    end = time.time() + timeout
    while time.time() < end:
        if text in env.log(name):
            return True
        time.sleep(0.1)
    return False


def count(env, name, text):
    return env.log(name).count(text)


def wait_more(env, name, text, before, timeout=5.0):
    """Wait until text occurs in the log more than `before` times."""
    end = time.time() + timeout
    while time.time() < end:
        if count(env, name, text) > before:
            return True
        time.sleep(0.1)
    return False


def main():
    env = Env()
    try:
        for n in ("broker", "c2", "dev"):
            env.start(n)
        dev_id, c2_id = env.ids["dev"], env.ids["c2"]
        r = env.ctl("dev", "join", "simple")
        check(r.returncode == 0 and b"JOIN_SUCCESS" in r.stdout, "simple join")
        r = env.ctl("c2", "send", "action", dev_id, "1")
        check(b"ACTION_SUCCESS" in r.stdout, "action before the attacks")
        action = env.tapped(attacker.T["ACTION"])
        check(action is not None, "the C2's ACTION was captured")

        n = count(env, "dev", "reason=replay")
        env.inject(action)
        check(wait_more(env, "dev", "reason=replay", n), "device drops a replayed ACTION")
        tok = b"00000000-0000-4000-8000-000000000bad"
        forged = attacker.build(attacker.T["ACTION"], (1 << 64) - 1, c2_id, tok, bytes([1]),
                                os.path.join(env.dir, "evil.pem"))
        env.inject(forged)
        check(wait_log(env, "dev", "reason=bad_signature"), "device drops a forged ACTION")
        r = env.ctl("c2", "send", "action", dev_id, "2")
        check(b"ACTION_SUCCESS" in r.stdout,
              "a forged maximum sequence ID did not silence the real C2")
        forged = attacker.build(attacker.T["ACTION"], 5, env.ids["evil"], tok, bytes([1]),
                                os.path.join(env.dir, "evil.pem"))
        env.inject(forged)
        check(wait_log(env, "dev", "reason=unknown_sender"), "device drops an unknown sender")
        env.inject(action[:-7])
        check(wait_log(env, "dev", "reason=truncated"), "device drops a truncated message")
        env.inject(action + b"\x00")
        check(wait_log(env, "dev", "reason=trailing"), "device drops trailing bytes")
        status = env.ctl("dev", "status").stdout.decode()
        check("actions=2" in status, "only the two real actions ran (%s)" % status.strip())

        # Restart the device: its high-water mark is durable, so the old ACTION is still a replay.
        env.stop("dev")
        env.start("dev")
        n = count(env, "dev", "reason=replay")
        env.inject(action)
        check(wait_more(env, "dev", "reason=replay", n),
              "restarted device still refuses the old ACTION")
        r = env.ctl("c2", "send", "action", dev_id, "1")
        check(b"ACTION_SUCCESS" in r.stdout, "action after the device restart")
        # Restart the C2: its send counter is durable, so the device accepts what it sends next.
        env.stop("c2")
        env.start("c2")
        r = env.ctl("c2", "send", "action", dev_id, "1")
        check(b"ACTION_SUCCESS" in r.stdout, "action after the C2 restart")
        # Restart the broker: both daemons reconnect and subscribe again by themselves.
        env.stop("broker")
        env.start("broker")
        for name in ("c2", "dev"):
            ok = False
            for _ in range(150):
                if b"connected=1" in env.ctl(name, "status").stdout:
                    ok = True
                    break
                time.sleep(0.1)
            check(ok, "%s reconnected after a broker restart" % name)
        r = env.ctl("c2", "send", "action", dev_id, "1")
        check(b"ACTION_SUCCESS" in r.stdout, "action after the broker restart")
        with open(os.path.join(env.dir, "dev.state")) as f:
            st = f.read()
        check(("peer %s sent " % c2_id) in st and "member 1" in st,
              "device state file records the server's counters and membership")
    finally:
        for n in list(env.procs):
            env.stop(n)
        if os.environ.get("LAB_WRAP"):
            import re
            for n in ("c2", "dev"):
                text = env.log(n)
                errs = re.findall(r"ERROR SUMMARY: (\d+)", text)
                check(errs and all(e == "0" for e in errs),
                      "%s under %s: error summaries %s" % (n, os.environ["LAB_WRAP"].split()[0],
                                                         errs))
        env.close()
    print("FAILED: %d" % len(FAILS) if FAILS else "PASS: endpoint checks")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
