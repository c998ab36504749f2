#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# test_daemon_lifecycle.py - srup-c2 and srup-device with their broker out of reach: they say so
# in their log (and keep saying it), and SIGTERM stops them promptly with exit 0.
# Usage: test_daemon_lifecycle.py BUILD
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, "build")
TOOLS = os.path.join(BUILD, "tools")
FAILS = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILS.append(what)


def closed_port():
    """A 127.0.0.1 port nothing listens on (bound, then released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main():
    tmp = tempfile.mkdtemp(prefix="srup-life-")
    port = closed_port()
    try:
        for prog, role in (("srup-c2", "c2"), ("srup-device", "device")):
            d = os.path.join(tmp, role)
            os.makedirs(d)
            subprocess.run([os.path.join(TOOLS, "srup"), "keygen", "--out",
                            os.path.join(d, "k")], check=True, stdout=subprocess.DEVNULL)
            ident = subprocess.run([os.path.join(TOOLS, "srup"), "id"], check=True,
                                   stdout=subprocess.PIPE, text=True).stdout.strip()
            conf = os.path.join(d, "conf")
            with open(conf, "w") as f:
                f.write("identity = %s\nrole = %s\nprivate_key = %s/k.pem\npeer_keys = %s\n"
                        "broker_host = 127.0.0.1\nbroker_port = %d\nstate_file = %s/state\n"
                        "control_socket = %s/sock\n" % (ident, role, d, d, port, d, d))
            log = open(os.path.join(d, "log"), "w")
            p = subprocess.Popen([os.path.join(TOOLS, prog), "run", "--config", conf]
                                 if role != "c2" else
                                 [os.path.join(TOOLS, prog), "--config", conf, "run"],
                                 stdout=log, stderr=subprocess.STDOUT)
            time.sleep(6.5)
            with open(os.path.join(d, "log")) as f:
                text = f.read()
            check("not connected to the broker 127.0.0.1:%d for" % port in text,
                  "%s says the broker is out of reach: %r" % (prog, text[-300:]))
            t0 = time.monotonic()
            p.send_signal(signal.SIGTERM)
            try:
                rc = p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                rc = None
            dt = time.monotonic() - t0
            log.close()
            check(rc == 0, "%s exits 0 on SIGTERM (rc %r)" % (prog, rc))
            print("     %s stopped %.2f s after SIGTERM" % (prog, dt))
            check(dt < 10.0, "%s stops within 10 s of SIGTERM while reconnecting" % prog)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d failed" % len(FAILS))
    sys.exit(1 if FAILS else 0)


if __name__ == "__main__":
    main()
