#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# test_interop.py - every flow of spec section 5.5 (syndication aside) between our daemons and
# peers that behave as pySRUP does (pysrup_peer.py), through a real mosquitto with the plugin on
# 127.0.0.1, in both directions:
#   srup-c2 as the server of pySRUP-like devices (and a pySRUP-like observer);
#   a pySRUP-like server of srup-device devices (and a srup-device observer beacon).
# Each flow's outcome is asserted on both sides and in the broker's audit log. The peers pause
# 0.05 s after each publish instead of pySRUP's 1 s, to keep the run short.
import hashlib
import http.server
import os
import shutil
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
import pysrup_peer as ps  # noqa: E402
import srupharness as h  # noqa: E402

TOOLS = os.path.join(h.BUILD, "tools")
PAUSE = 0.05  # pySRUP pauses 1 s after every publish; the peers here 0.05 s


def lab_for(server_name, names):
    """A lab whose policy logs accepts too and lets server_name send JOIN_CMD."""
    d = h.Lab(start=False, names=names)
    p = os.path.join(d.dir, "interop.policy")
    text = d.policy_text("join_command %s\n" % d.ids[server_name].hex)
    text = text.replace("\naudit_accepts no\n", "\naudit_accepts yes\n")
    with open(p, "w") as f:
        f.write(text)
    d.broker.policy = p
    d.broker.start()
    return d


def peer_keys(lab, name, others):
    """A peer_keys directory holding the public keys of others."""
    dirp = os.path.join(lab.dir, "peers-" + name)
    os.makedirs(dirp, exist_ok=True)
    for o in others:
        shutil.copy(lab.ids[o].pub, os.path.join(dirp, lab.ids[o].hex + ".pub.pem"))
    return dirp


def make_peer(lab, name, role, others, server=None, **kw):
    ident = lab.ids[name]
    crt, key = lab.certs[name]
    return ps.Peer(role, ident.id, ident.priv, peer_keys(lab, name, others), lab.broker.tls_port,
                   lab.pki.ca, crt, key, pause=PAUSE,
                   server=lab.ids[server].id if server else None, **kw)


class Daemon:
    """srup-c2 or srup-device for identity name, on the lab's mutual-TLS listener."""

    def __init__(self, lab, name, role, others, server=None, extra=""):
        self.name = name
        self.role = role
        self.dir = os.path.join(lab.dir, "d-" + name)
        os.makedirs(self.dir)
        ident = lab.ids[name]
        crt, key = lab.certs[name]
        self.conf = os.path.join(self.dir, "conf")
        with open(self.conf, "w") as f:
            f.write("identity = %s\nrole = %s\nprivate_key = %s\npeer_keys = %s\n"
                    "broker_host = localhost\nbroker_port = %d\ntls_ca = %s\ntls_cert = %s\n"
                    "tls_key = %s\nstate_file = %s/state\ncontrol_socket = %s/sock\n"
                    "timeout = 10\n%s"
                    % (ident.hex, role, ident.priv, peer_keys(lab, name, others),
                       lab.broker.tls_port, lab.pki.ca, crt, key, self.dir, self.dir, extra))
            if server is not None:
                f.write("server = %s\nupdate_dir = %s/updates\n" % (lab.ids[server].hex,
                                                                    self.dir))
        self.log = open(os.path.join(self.dir, "log"), "w")
        exe = os.path.join(TOOLS, "srup-c2" if role == "c2" else "srup-device")
        self.exe = exe
        self.proc = subprocess.Popen([exe, "--config", self.conf, "run"], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10 * h.SLOW
        while time.monotonic() < deadline:
            if "connected=1" in self.ctl("status").stdout:
                return
            time.sleep(0.1)
        raise h.HarnessError("%s did not connect" % name)

    def ctl(self, *args):
        cmd = [self.exe, "--config", self.conf] + (["ctl"] if self.role != "c2" else [])
        # srup-device: ctl is the command word; srup-c2: the command itself
        if self.role != "c2":
            cmd = [self.exe, "ctl", "--config", self.conf]
        return subprocess.run(cmd + list(args), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=90, text=True)

    def bg(self, *args):
        cmd = ([self.exe, "ctl", "--config", self.conf] if self.role != "c2"
               else [self.exe, "--config", self.conf])
        return subprocess.Popen(cmd + list(args), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


class Files:
    """An HTTP file server on 127.0.0.1 for updates."""

    def __init__(self, root):
        handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(  # noqa: E731
            *a, directory=root, **k)
        http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


def firmware(lab):
    root = os.path.join(lab.dir, "files")
    os.makedirs(root, exist_ok=True)
    data = b"firmware 2.0 " * 1000
    with open(os.path.join(root, "fw.bin"), "wb") as f:
        f.write(data)
    return root, hashlib.sha256(data).hexdigest()


def last_line(r):
    lines = r.stdout.strip().splitlines()
    return lines[-1] if lines else ""


def audit_accepted(lab, mark, sender, mtype, timeout=3.0):
    return lab.wait_audit(mark, lambda a: a.get("verdict") == "accept" and
                          a.get("sender") == sender.hex and a.get("type") == mtype,
                          timeout) is not None


def no_drops(lab, check, mark, who, label):
    """No drop or refusal in the audit log since mark for messages of the participants."""
    ids = {w.hex for w in who}
    bad = [a for a in lab.audit(mark) if a.get("verdict") in ("drop", "refuse") and
           (a.get("sender") in ids or a.get("identity") in ids)]
    check(not bad, "%s: no drop in the audit log (%r)" % (label, bad[:3]))


# ---------------------------------------------------------------------------------------------
# (a) srup-c2 with pySRUP-like devices

NAMES_A = [("server", "server"), ("dev1", "device"), ("dev2", "device"), ("dev3", "device"),
           ("dev4", "device"), ("observer", "observer"), ("stranger", None)]


def test_c2_with_pysrup_devices(lab, check):
    root, digest = firmware(lab)
    files = Files(root)
    devs = ["dev1", "dev2", "dev3", "dev4", "observer"]
    c2 = Daemon(lab, "server", "c2", devs, extra="reply_wait = 1\n")
    peers = {}
    try:
        for n in devs:
            peers[n] = make_peer(lab, n, "observer" if n == "observer" else "device",
                                 ["server"], server="server")
        p1, p2, p3, p4, po = (peers[n] for n in devs)
        S = lab.server
        who = [S] + [lab.ids[n] for n in devs]

        # Simple join.
        m = lab.audit_mark()
        tok = p1.join("simple")
        out = p1.wait("join_outcome")
        check(out is not None and out["status"] == "JOIN_SUCCESS" and out["token"] == tok,
              "simple join: the device got JOIN_SUCCESS with its request's token")
        check("peer %s member=1" % lab.dev1.hex in c2.ctl("status").stdout,
              "simple join: srup-c2 counts dev1 as a member")
        check(audit_accepted(lab, m, lab.dev1, "JOIN_REQ") and
              audit_accepted(lab, m, S, "RESPONSE"), "simple join: both messages accepted")
        no_drops(lab, check, m, who, "simple join")

        # Identification: pySRUP answers under a fresh token, with Python reprs in the text.
        m = lab.audit_mark()
        r = c2.ctl("send", "id_request", lab.dev1.hex)
        check(r.returncode == 0 and "OK IDENTIFICATION_RESPONSE pySRUP-like peer <function" in
              r.stdout, "ID request: srup-c2 matched the fresh-token answer: %r" % r.stdout)
        check(audit_accepted(lab, m, S, "ID_REQUEST") and audit_accepted(lab, m, lab.dev1, "DATA"),
              "ID request: accepted both ways")

        # ACTION: no confirmation from a pySRUP device, and that is not an error.
        n0 = p1.mark()
        r = c2.ctl("send", "action", lab.dev1.hex, "5")
        check(r.returncode == 0 and "OK delivered" in last_line(r) and
              "no confirmation from the device" in last_line(r), "ACTION: %r" % r.stdout)
        check(p1.wait("action", since=n0, action_id=5) is not None, "ACTION: the device ran 5")

        # DATA both ways.
        r = c2.ctl("send", "data", lab.dev1.hex, "LABEL", "hello")
        check(r.returncode == 0 and "OK delivered" in r.stdout, "DATA to the device: %r" % r.stdout)
        check(p1.wait("data", since=n0, data_id=b"LABEL", data=b"hello") is not None,
              "DATA to the device: received")
        w = c2.bg("wait-data", lab.dev1.hex, "TEMPERATURE")
        time.sleep(0.2)
        p1.dev_send("DATA", data_id=b"TEMPERATURE", data=b"21.5")
        out = w.communicate(timeout=30)[0]
        check(w.returncode == 0 and "OK TEMPERATURE 21.5" in out, "DATA from the device: %r" % out)

        # Update: INITIATE, the device's UPDATE_SUCCESS, ACTIVATE with the same token.
        m = lab.audit_mark()
        n0 = p1.mark()
        r = c2.ctl("send", "update", lab.dev1.hex, files.url + "/fw.bin", digest)
        check(r.returncode == 0 and "OK UPDATE_SUCCESS, ACTIVATE delivered" in r.stdout,
              "update: %r" % r.stdout)
        a = p1.wait("activate", since=n0)
        check(a is not None and a["applied"], "update: the device applied it on ACTIVATE")
        check(audit_accepted(lab, m, S, "INITIATE") and audit_accepted(lab, m, S, "ACTIVATE") and
              audit_accepted(lab, m, lab.dev1, "RESPONSE"), "update: accepted by the broker")
        r = c2.ctl("send", "update", lab.dev1.hex, files.url + "/fw.bin", "0" * 64)
        check(r.returncode == 0 and "OK UPDATE_FAIL_DIGEST" in r.stdout,
              "update, bad digest: %r" % r.stdout)
        r = c2.ctl("send", "update", lab.dev1.hex, files.url + "/missing.bin", digest)
        check(r.returncode == 0 and "OK UPDATE_FAIL_FILE" in r.stdout,
              "update, HTTP 404: %r" % r.stdout)
        n0 = p1.mark()
        r = c2.ctl("send", "activate", lab.dev1.hex)
        a = p1.wait("activate", since=n0)
        check(r.returncode == 0 and a is not None and not a["applied"],
              "ACTIVATE outside an update: delivered, and the device does not apply it")
        no_drops(lab, check, m, who, "update")

        # Human-moderated join: approve one, refuse another.
        m = lab.audit_mark()
        p2.join("hm")
        v = p2.wait("join_value")
        pend = c2.ctl("pending").stdout
        check(v is not None and ("hm %s value=%s" % (lab.dev2.hex, v["value"])) in pend,
              "human join: srup-c2 shows the value the device decrypted: %r" % pend)
        r = c2.ctl("approve", lab.dev2.hex)
        out = p2.wait("join_outcome")
        check(r.returncode == 0 and out is not None and out["status"] == "JOIN_SUCCESS" and
              out["token"] == v["token"], "human join approved: JOIN_SUCCESS with the "
              "HM_JOIN_RESP token")
        p3.join("hm")
        check(p3.wait("join_value") is not None, "human join 2: value received")
        r = c2.ctl("reject", lab.dev3.hex)
        out = p3.wait("join_outcome")
        check(r.returncode == 0 and out is not None and out["status"] == "JOIN_REFUSED",
              "human join refused: JOIN_REFUSED")
        check(audit_accepted(lab, m, lab.dev2, "HM_JOIN_REQ") and
              audit_accepted(lab, m, S, "HM_JOIN_RESP"), "human join: accepted by the broker")
        no_drops(lab, check, m, who, "human join")

        # Observed join: the observer is adopted first (the shipped policy lets an observer
        # join only by JOIN_CMD), then dev4 joins observed by it.
        m = lab.audit_mark()
        r = c2.ctl("send", "join_cmd", lab.observer.hex)
        check(r.returncode == 0 and po.wait("joined", how="join_cmd") is not None,
              "the observer was adopted by JOIN_CMD: %r" % r.stdout)
        n0 = p4.mark()
        p4.join("observed", observer=lab.observer.id)
        v = p4.wait("join_value", since=n0)
        check(v is not None, "observed join: the device got its value")
        if v is not None:
            po.tell(lab.dev4.id, v["value"])  # the person shows the observer the value
        o = po.wait("observe")
        check(o is not None and o["status"] == "OBSERVED_JOIN_VALID",
              "observed join: the observer confirmed the value")
        out = p4.wait("join_outcome", since=n0)
        check(out is not None and out["status"] == "JOIN_SUCCESS",
              "observed join: JOIN_SUCCESS to the device")
        check("peer %s member=1" % lab.dev4.hex in c2.ctl("status").stdout,
              "observed join: srup-c2 counts dev4")
        check(audit_accepted(lab, m, lab.dev4, "OBS_JOIN_REQ") and
              audit_accepted(lab, m, S, "OBSERVE_REQ") and
              audit_accepted(lab, m, lab.observer, "RESPONSE"),
              "observed join: accepted by the broker")
        no_drops(lab, check, m, who, "observed join")

        # Server-initiated join of the refused dev3.
        m = lab.audit_mark()
        r = c2.ctl("send", "join_cmd", lab.dev3.hex)
        check(r.returncode == 0 and "OK IDENTIFICATION_RESPONSE" in r.stdout,
              "JOIN_CMD then ID_REQUEST: %r" % r.stdout)
        check(p3.wait("joined", how="join_cmd") is not None, "JOIN_CMD: the device adopted us")
        check(audit_accepted(lab, m, S, "JOIN_CMD"), "JOIN_CMD accepted by the broker")

        # Leaving, four ways.
        m = lab.audit_mark()
        p1.dev_send("RESIGN_REQUEST")
        p2.dev_send("DEREGISTER_REQ")
        time.sleep(0.5)
        st = c2.ctl("status").stdout
        check("peer %s member=0" % lab.dev1.hex in st and "peer %s member=0" % lab.dev2.hex in st,
              "RESIGN_REQUEST / DEREGISTER_REQ: srup-c2 let both go: %r" % st)
        keys = h.run([h.SRUP, "keys", "show", "--store", lab.store, "--id", lab.dev2.hex],
                     check=False).stdout.decode()
        check("revoked" in keys, "DEREGISTER_REQ: the broker revoked dev2's key")
        r = c2.ctl("send", "terminate", lab.dev3.hex)
        check(r.returncode == 0 and "TERMINATE_CMD delivered" in r.stdout and
              p3.wait("left", how="TERMINATE_CMD") is not None, "TERMINATE_CMD: %r" % r.stdout)
        r = c2.ctl("send", "deregister", lab.dev4.hex)
        check(r.returncode == 0 and p4.wait("left", how="DEREGISTER_CMD") is not None,
              "DEREGISTER_CMD: %r" % r.stdout)
        for dev, t in ((lab.dev1, "RESIGN_REQUEST"), (lab.dev2, "DEREGISTER_REQ"),
                       (S, "TERMINATE_CMD"), (S, "DEREGISTER_CMD")):
            check(audit_accepted(lab, m, dev, t), "%s accepted by the broker" % t)
        no_drops(lab, check, m, who, "leaving")

        # A captured pySRUP message replayed: dropped at the broker.
        topic, payload = next((t, p) for t, p in p1.sent if p[1] == ps.T["DATA"])
        c = lab.connect(lab.dev1, client_id="replayer")
        h.expect_drop(lab, check, c, topic, payload, "replay", "replay of a pySRUP DATA")
        for n, p in peers.items():
            errs = [d for k, d in p.events if k == "error"]
            check(not errs, "%s: no handler error (%r)" % (n, errs))
            # With one shared counter per peer, pySRUP drops any number not above the last one
            # either side used: srup-c2 must never send one (issue 11 item 1).
            drops = [d for k, d in p.events if k == "drop"]
            check(not drops, "%s dropped nothing srup-c2 sent (%r)" % (n, drops))
    finally:
        for p in peers.values():
            p.close()
        c2.stop()
        files.close()


# ---------------------------------------------------------------------------------------------
# (b) a pySRUP-like server with srup-device devices

NAMES_B = [("server2", "server"), ("dev1", "device"), ("dev2", "device"), ("dev3", "device"),
           ("observer", "observer"), ("stranger", None)]


def test_pysrup_server_with_srup_devices(lab, check):
    root, digest = firmware(lab)
    files = Files(root)
    S = lab.server2
    beacon_sock = os.path.join(lab.dir, "beacon.sock")
    devs = {}
    srv = None
    try:
        for n in ("dev1", "dev2", "dev3"):
            devs[n] = Daemon(lab, n, "device", ["server2", "observer"], server="server2",
                             extra="beacon_socket = %s\n" % beacon_sock)
        devs["observer"] = Daemon(lab, "observer", "observer", ["server2", "dev1", "dev2",
                                                                "dev3"],
                                  server="server2", extra="beacon_socket = %s\n" % beacon_sock)
        srv = make_peer(lab, "server2", "server", ["dev1", "dev2", "dev3", "observer"])
        d1, d2, d3, b = devs["dev1"], devs["dev2"], devs["dev3"], devs["observer"]
        who = [S, lab.dev1, lab.dev2, lab.dev3, lab.observer]

        # Simple join.
        m = lab.audit_mark()
        r = d1.ctl("join", "simple")
        check(r.returncode == 0 and "OK JOIN_SUCCESS" in r.stdout, "simple join: %r" % r.stdout)
        check(srv.wait("member", device=lab.dev1.id, how="simple") is not None,
              "simple join: the server admitted dev1")
        check("joined=1" in d1.ctl("status").stdout, "simple join: srup-device is joined")
        no_drops(lab, check, m, who, "simple join")

        # ID request, ACTION, DATA both ways.
        m = lab.audit_mark()
        n0 = srv.mark()
        srv.command(lab.dev1.id, "ID_REQUEST")
        d = srv.wait("data", since=n0, data_id=b"IDENTIFICATION_RESPONSE")
        check(d is not None and lab.dev1.hex.encode() in d["data"],
              "ID request: srup-device identified itself")
        srv.command(lab.dev1.id, "ACTION", action_id=1)
        resp = srv.wait("response", since=n0, status="ACTION_SUCCESS")
        check(resp is not None and "actions=1" in d1.ctl("status").stdout,
              "ACTION: srup-device ran it (and confirmed, which pySRUP ignores)")
        srv.command(lab.dev1.id, "DATA", data_id=b"ECHO", data=b"hi")
        check(srv.wait("data", since=n0, data_id=b"ECHO", data=b"hi") is not None,
              "DATA to srup-device: echoed")
        r = d1.ctl("data", "TEMPERATURE", "21.5")
        check(r.returncode == 0 and srv.wait("data", since=n0, data_id=b"TEMPERATURE",
                                             data=b"21.5") is not None,
              "DATA from srup-device: received: %r" % r.stdout)
        no_drops(lab, check, m, who, "commands")
        # A captured message of the pySRUP-like server replayed: dropped at the broker.
        topic, payload = next((t, p) for t, p in srv.sent if p[1] == ps.T["ACTION"])
        c = lab.connect(S, client_id="replayer")
        h.expect_drop(lab, check, c, topic, payload, "replay", "replay of a pySRUP ACTION")
        c.close()

        # Update: INITIATE with NUL-terminated url and digest, then ACTIVATE (auto).
        m = lab.audit_mark()
        n0 = srv.mark()
        srv.command(lab.dev1.id, "INITIATE", url=(files.url + "/fw.bin").encode() + b"\0",
                    digest=digest.encode() + b"\0")
        check(srv.wait("response", since=n0, status="UPDATE_SUCCESS") is not None,
              "update: UPDATE_SUCCESS")
        check(srv.wait("response", since=n0, status="ACTIVATE_SUCCESS") is not None and
              "updates=1" in d1.ctl("status").stdout, "update: activated on srup-device")
        n0 = srv.mark()
        srv.command(lab.dev1.id, "INITIATE", url=(files.url + "/fw.bin").encode() + b"\0",
                    digest=b"0" * 64 + b"\0")
        check(srv.wait("response", since=n0, status="UPDATE_FAIL_DIGEST") is not None,
              "update with a bad digest: UPDATE_FAIL_DIGEST")
        no_drops(lab, check, m, who, "update")

        # Human-moderated join: the device shows the value the server's operator compares.
        m = lab.audit_mark()
        w = d2.bg("join", "hm")
        pend = srv.wait("hm_pending", device=lab.dev2.id)
        check(pend is not None, "human join: the server has it pending")
        if pend is not None:
            srv.approve(lab.dev2.id)
        out = w.communicate(timeout=60)[0]
        check(w.returncode == 0 and pend is not None and ("value %s" % pend["value"]) in out and
              "OK JOIN_SUCCESS" in out, "human join: same value on both sides, joined: %r" % out)
        no_drops(lab, check, m, who, "human join")

        # Server-initiated join of the beacon.
        m = lab.audit_mark()
        srv.join_cmd(lab.observer.id)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "joined=1" not in b.ctl("status").stdout:
            time.sleep(0.1)
        check("joined=1" in b.ctl("status").stdout, "JOIN_CMD: the beacon adopted the server")
        check(audit_accepted(lab, m, S, "JOIN_CMD"), "JOIN_CMD accepted by the broker")

        # Observed join as pySRUP runs it: the observer request is never sent, so the join
        # never completes; the device stays unjoined, nothing else breaks.
        m = lab.audit_mark()
        w = d3.bg("join", "observed", lab.observer.hex, beacon_sock)
        check(srv.wait("observe_not_sent", device=lab.dev3.id) is not None,
              "observed join (pySRUP): no OBSERVE_REQ sent")
        out = w.communicate(timeout=60)[0]
        check(w.returncode == 1 and "timeout" in out and "joined=0" in d3.ctl("status").stdout,
              "observed join (pySRUP): the device times out unjoined: %r" % out)
        no_drops(lab, check, m, who, "observed join (pySRUP)")
        # The same, with the observer request sent as the spec describes.
        srv.defects = False
        m = lab.audit_mark()
        w = d3.bg("join", "observed", lab.observer.hex, beacon_sock)
        out = w.communicate(timeout=60)[0]
        check(w.returncode == 0 and "OK JOIN_SUCCESS" in out,
              "observed join (spec): joined through the beacon: %r" % out)
        check(audit_accepted(lab, m, S, "OBSERVE_REQ") and
              audit_accepted(lab, m, lab.observer, "RESPONSE"),
              "observed join (spec): accepted by the broker")
        no_drops(lab, check, m, who, "observed join (spec)")

        # Leaving: resign, deregister, terminate (pySRUP: never sent), deregister command.
        m = lab.audit_mark()
        n0 = srv.mark()
        r = d1.ctl("resign")
        check(r.returncode == 0 and srv.wait("left", since=n0, how="RESIGN_REQUEST") is not None,
              "RESIGN_REQUEST: %r" % r.stdout)
        r = d2.ctl("deregister")
        check(r.returncode == 0 and srv.wait("left", since=n0, how="DEREGISTER_REQ") is not None,
              "DEREGISTER_REQ: %r" % r.stdout)
        srv.defects = True
        srv.terminate(lab.dev3.id)
        time.sleep(0.5)
        check("joined=1" in d3.ctl("status").stdout,
              "TERMINATE (pySRUP's send_SRUP_Terminate): nothing sent, dev3 still joined")
        srv.defects = False
        srv.terminate(lab.dev3.id)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "joined=0" not in d3.ctl("status").stdout:
            time.sleep(0.1)
        check("joined=0" in d3.ctl("status").stdout, "TERMINATE_CMD (spec): dev3 left")
        srv.command(lab.observer.id, "DEREGISTER_CMD")
        time.sleep(0.5)
        keys = h.run([h.SRUP, "keys", "show", "--store", lab.store, "--id", lab.observer.hex],
                     check=False).stdout.decode()
        check("revoked" in keys, "DEREGISTER_CMD: the broker revoked the beacon's key")
        for who_, t in ((lab.dev1, "RESIGN_REQUEST"), (lab.dev2, "DEREGISTER_REQ"),
                        (S, "TERMINATE_CMD"), (S, "DEREGISTER_CMD")):
            check(audit_accepted(lab, m, who_, t), "%s accepted by the broker" % t)
        no_drops(lab, check, m, who, "leaving")

        errs = [d for k, d in srv.events if k == "error"]
        check(not errs, "server peer: no handler error (%r)" % errs)
        drops = [d for k, d in srv.events if k == "drop"]
        check(not drops, "the server peer dropped nothing srup-device sent (%r)" % drops)
    finally:
        if srv is not None:
            srv.close()
        for d in devs.values():
            d.stop()
        files.close()


if __name__ == "__main__":
    h.main([(test_c2_with_pysrup_devices, lambda: lab_for("server", NAMES_A)),
            (test_pysrup_server_with_srup_devices, lambda: lab_for("server2", NAMES_B))])
