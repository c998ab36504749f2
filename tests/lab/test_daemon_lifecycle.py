#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# test_daemon_lifecycle.py - srup-c2 and srup-device: their command line (getopt_long; --help
# exits 0 and lists every config key, --version, unknown options are usage errors), and with
# their broker out of reach they say so in their log and SIGTERM stops them promptly, exit 0;
# systemd's notify protocol (Type=notify): READY, STATUS, RELOADING on SIGHUP, STOPPING.
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


def command_line():
    keys = {"srup-c2": ["identity", "private_key", "peer_keys", "broker_host", "broker_port",
                        "tls_ca", "tls_cert", "tls_key", "state_file", "control_socket",
                        "timeout", "reply_wait", "join_policy", "wire_log", "registry_url",
                        "registry_ca", "registry_token"],
            "srup-device": ["identity", "private_key", "peer_keys", "broker_host", "server",
                            "update_dir", "update_ca", "beacon_socket", "show_file"]}
    for prog, want in keys.items():
        exe = os.path.join(TOOLS, prog)
        r = subprocess.run([exe, "--help"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
        check(r.returncode == 0 and r.stdout.startswith("usage: %s" % prog),
              "%s --help exits 0 with the usage on stdout" % prog)
        missing = [k for k in want if "  %s " % k not in r.stdout and
                   not any(l.lstrip().startswith(k + ",") or (", " + k) in l
                           for l in r.stdout.splitlines())]
        check(not missing, "%s --help lists every config key (missing %r)" % (prog, missing))
        r = subprocess.run([exe, "--version"], stdout=subprocess.PIPE, text=True)
        check(r.returncode == 0 and r.stdout.startswith(prog + " "), "%s --version" % prog)
        r = subprocess.run([exe, "--no-such-option"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
        check(r.returncode == 3 and "unknown option '--no-such-option'" in r.stderr,
              "%s: an unknown option is a usage error: %r" % (prog, r.stderr))
        r = subprocess.run([exe, "run"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
        check(r.returncode == 3, "%s run without a config is a usage error" % prog)


def main():
    command_line()
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
            # A notify socket as systemd gives a Type=notify service.
            nsock_path = os.path.join(d, "notify")
            nsock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            nsock.bind(nsock_path)
            nsock.settimeout(0.2)
            env = dict(os.environ, NOTIFY_SOCKET=nsock_path)
            p = subprocess.Popen([os.path.join(TOOLS, prog), "run", "--config", conf]
                                 if role != "c2" else
                                 [os.path.join(TOOLS, prog), "--config", conf, "run"],
                                 stdout=log, stderr=subprocess.STDOUT, env=env)
            time.sleep(6.5)
            p.send_signal(signal.SIGHUP)
            time.sleep(1.0)
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
            notes = []
            while True:
                try:
                    notes.append(nsock.recv(4096).decode())
                except socket.timeout:
                    break
            nsock.close()
            text = "\n".join(notes)
            check(notes and notes[0].startswith("READY=1") and "STATUS=" in notes[0],
                  "%s tells systemd it is ready: %r" % (prog, notes[:1]))
            check("STATUS=%s %s: not connected to 127.0.0.1:%d" % (role, ident, port) in text,
                  "%s reports the broker connection in STATUS" % prog)
            i_rel = next((i for i, n in enumerate(notes) if n.startswith("RELOADING=1")), None)
            check(i_rel is not None and any(n.startswith("READY=1") for n in notes[i_rel:]),
                  "%s reloads on SIGHUP (RELOADING=1, then READY=1): %r" % (prog, notes))
            check(notes and notes[-1].startswith("STOPPING=1"),
                  "%s says STOPPING=1 on SIGTERM: %r" % (prog, notes[-1:]))
            with open(os.path.join(d, "log")) as f:
                check("reloaded: peer keys" in f.read(), "%s logs the reload" % prog)
            check(rc == 0, "%s exits 0 on SIGTERM (rc %r)" % (prog, rc))
            print("     %s stopped %.2f s after SIGTERM" % (prog, dt))
            check(dt < 10.0, "%s stops within 10 s of SIGTERM while reconnecting" % prog)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d failed" % len(FAILS))
    sys.exit(1 if FAILS else 0)


if __name__ == "__main__":
    main()
