#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# test_c2_replies.py - issue 11 item 2: srup-c2's reply conventions against a device that, like a
# pySRUP device, sends no optional replies, through a real broker with the plugin. A command is
# done when the broker has taken the message (PUBACK); a reply is optional and is shown when it
# comes (a late one through `srup-c2 replies`); an ID response under a fresh token is matched by
# its sender and data id; a message the broker refuses is an error and moves no membership.
import json
import os
import socket
import struct
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import srupharness as h  # noqa: E402

C2_BIN = os.path.join(h.BUILD, "tools", "srup-c2")
T = {"RESPONSE": 0x02, "ACTIVATE": 0x03, "ACTION": 0x04, "ID_REQUEST": 0x06,
     "INITIATE": 0x01, "JOIN_CMD": 0x0A}


def fields(payload):
    """(type, sequence id, sender, token) of a wire message."""
    seq, sender = struct.unpack("<QQ", payload[2:18])
    tlen = struct.unpack(">H", payload[18:20])[0]
    return payload[1], seq, sender, payload[20:20 + tlen]


class C2:
    """A real srup-c2 daemon for lab.server on the lab's mutual-TLS listener."""

    def __init__(self, lab, reply_wait=1):
        self.dir = os.path.join(lab.dir, "c2")
        peers = os.path.join(self.dir, "peers")
        os.makedirs(peers)
        for ident in (lab.dev1, lab.dev2):
            with open(ident.pub) as src, open(os.path.join(peers, ident.hex + ".pub.pem"),
                                               "w") as dst:
                dst.write(src.read())
        crt, key = lab.certs["server"]
        self.conf = os.path.join(self.dir, "c2.conf")
        with open(self.conf, "w") as f:
            f.write("identity = %s\nrole = c2\nprivate_key = %s\npeer_keys = %s\n"
                    "broker_host = localhost\nbroker_port = %d\ntls_ca = %s\ntls_cert = %s\n"
                    "tls_key = %s\nstate_file = %s/c2.state\ncontrol_socket = %s/c2.sock\n"
                    "timeout = 5\nreply_wait = %d\n"
                    % (lab.server.hex, lab.server.priv, peers, lab.broker.tls_port, lab.pki.ca,
                       crt, key, self.dir, self.dir, reply_wait))
        self.log = open(os.path.join(self.dir, "c2.log"), "w")
        self.start_daemon()

    def start_daemon(self):
        self.proc = subprocess.Popen([C2_BIN, "--config", self.conf, "run"], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10 * h.SLOW
        while time.monotonic() < deadline:
            if "connected=1" in self.ctl("status").stdout:
                return
            time.sleep(0.1)
        raise h.HarnessError("srup-c2 did not connect")

    def ctl(self, *args):
        return subprocess.run([C2_BIN, "--config", self.conf] + list(args), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=60, text=True)

    def start(self, *args):
        """A control command in the background (the test plays the device meanwhile)."""
        return subprocess.Popen([C2_BIN, "--config", self.conf] + list(args),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def stop_daemon(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def stop(self):
        self.stop_daemon()
        self.log.close()

    def logtext(self):
        with open(os.path.join(self.dir, "c2.log")) as f:
            return f.read()


def next_of(dev, mtype, timeout=5.0):
    """The next delivery of mtype to the device client, or None."""
    found = dev.wait_for(lambda d: len(d.payload) > 20 and d.payload[1] == T[mtype], timeout)
    return found


def finish(p):
    out, _ = p.communicate(timeout=60)
    return p.returncode, out


def lab_factory():
    """The shipped policy, with accepted messages in the audit log too."""
    d = h.Lab(start=False)
    p = os.path.join(d.dir, "accepts.policy")
    with open(p, "w") as f:
        f.write(d.policy_text().replace("\naudit_accepts no\n", "\naudit_accepts yes\n"))
    d.broker.policy = p
    d.broker.start()
    return d


def test_silent_device(lab, check):
    c2 = C2(lab)
    try:
        dev = lab.connect(lab.dev1, client_id="SRUP Client: %s" % lab.dev1.hex)
        chan = "SRUP/%s" % lab.dev1.hex
        check(dev.subscribe(chan) < 0x80, "device subscribes its channel")
        # Simple join: srup-c2 answers JOIN_SUCCESS with the request's token.
        tok = lab.token()
        rc = dev.publish("SRUP/servers/%s/%s" % (lab.server.hex, lab.dev1.hex),
                         lab.msg(lab.dev1, "JOIN_REQ", token=tok))
        check(h.delivered(rc), "JOIN_REQ taken by the broker (%s)" % h.rc_name(rc))
        got = next_of(dev, "RESPONSE")
        check(got is not None and fields(got.payload)[3] == tok and got.payload[-1] == 0x50,
              "the device received JOIN_SUCCESS with its request's token")
        time.sleep(0.3)

        # ACTION: no reply from the device is not an error.
        mark = lab.audit_mark()
        r = c2.ctl("send", "action", lab.dev1.hex, "7")
        last = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""
        check(r.returncode == 0 and last.startswith("OK delivered token=") and
              "no confirmation from the device" in last,
              "ACTION without a reply: OK delivered, no confirmation (%r, rc %d)"
              % (last, r.returncode))
        act = next_of(dev, "ACTION")
        check(act is not None and act.payload[-1] == 7, "the device received ACTION 7")
        check(lab.wait_audit(mark, lambda a: a.get("verdict") == "accept" and
                             a.get("type") == "ACTION") is not None,
              "the broker's audit log has the ACTION accepted")
        # The reply comes late: `srup-c2 replies` reports it.
        if act is not None:
            atok = fields(act.payload)[3]
            check(("token=%s" % atok.decode()) in last, "the output names the ACTION's token")
            rc = dev.publish(chan, lab.msg(lab.dev1, "RESPONSE", token=atok, status=0x20))
            check(h.delivered(rc), "late ACTION_SUCCESS taken by the broker")
            deadline = time.monotonic() + 5 * h.SLOW
            rep = ""
            while time.monotonic() < deadline:
                rep = c2.ctl("replies").stdout
                if "ACTION_SUCCESS" in rep:
                    break
                time.sleep(0.1)
            check(("late %s token=%s OK ACTION_SUCCESS" % (lab.dev1.hex, atok.decode()))
                  in rep, "`srup-c2 replies` reports the late ACTION_SUCCESS: %r" % rep)

        # ID_REQUEST answered under a fresh token (pySRUP): matched by sender and data id.
        p = c2.start("send", "id_request", lab.dev1.hex)
        req = next_of(dev, "ID_REQUEST")
        check(req is not None, "the device received ID_REQUEST")
        rc = dev.publish(chan, lab.msg(lab.dev1, "DATA", data_id=b"IDENTIFICATION_RESPONSE",
                                       data=b"pySRUP-like 2.0"))
        check(h.delivered(rc), "ID response (fresh token) taken by the broker")
        code, out = finish(p)
        check(code == 0 and "OK IDENTIFICATION_RESPONSE pySRUP-like 2.0" in out,
              "srup-c2 matched the ID response by sender and data id: %r" % out)

        # An ID response nobody asked for matches nothing.
        before = c2.ctl("replies").stdout
        dev.publish(chan, lab.msg(lab.dev1, "DATA", data_id=b"IDENTIFICATION_RESPONSE",
                                  data=b"unasked"))
        time.sleep(0.5)
        check("unasked" not in c2.ctl("replies").stdout and "unasked" not in before,
              "an unasked ID response is not reported as a reply")

        # Update: UPDATE_SUCCESS makes srup-c2 ACTIVATE with the same token; no ACTIVATE_SUCCESS.
        p = c2.start("send", "update", lab.dev1.hex, "http://127.0.0.1:9/fw.bin", "ab" * 32)
        ini = next_of(dev, "INITIATE")
        check(ini is not None, "the device received INITIATE")
        if ini is not None:
            utok = fields(ini.payload)[3]
            dev.publish(chan, lab.msg(lab.dev1, "RESPONSE", token=utok, status=0x00))
            actv = next_of(dev, "ACTIVATE")
            check(actv is not None and fields(actv.payload)[3] == utok,
                  "ACTIVATE came with the update's token")
        code, out = finish(p)
        check(code == 0 and "OK UPDATE_SUCCESS, ACTIVATE delivered token=" in out and
              "no confirmation from the device" in out,
              "update without ACTIVATE_SUCCESS: delivered, not an error: %r" % out)

        # The broker refuses a JOIN_CMD (no `join_command` for this server in the policy): an
        # error, and srup-c2 does not count dev2 as a member.
        r = c2.ctl("send", "join_cmd", lab.dev2.hex)
        check(r.returncode == 1 and "ERR JOIN_CMD refused by the broker: reason 0x87" in r.stdout,
              "JOIN_CMD refused by the broker is an error: %r" % r.stdout)
        st = c2.ctl("status").stdout
        check(("peer %s member=1" % lab.dev2.hex) not in st,
              "a refused JOIN_CMD leaves dev2 unjoined in srup-c2: %r" % st)
        r = c2.ctl("send", "action", lab.dev2.hex, "1")
        check(r.returncode == 1 and "is not a member" in r.stdout,
              "srup-c2 does not command dev2 after the refusal: %r" % r.stdout)

        # TERMINATE is done at the PUBACK; then dev1 is no longer a member at either end.
        r = c2.ctl("send", "terminate", lab.dev1.hex)
        check(r.returncode == 0 and "OK TERMINATE_CMD delivered token=" in r.stdout,
              "TERMINATE_CMD taken by the broker: %r" % r.stdout)
        m = lab.audit_mark()
        r = c2.ctl("send", "action", lab.dev1.hex, "1")
        check(r.returncode == 1 and "is not a member" in r.stdout,
              "srup-c2 forgot dev1 after TERMINATE_CMD: %r" % r.stdout)
        check(lab.wait_audit(m, lambda a: a.get("verdict") == "drop", 0.5) is None,
              "srup-c2 sent nothing the broker had to drop")
    finally:
        c2.stop()
    log = c2.logtext()
    check("late reply | device=%s" % lab.dev1.hex in log, "the late reply is in srup-c2's log")


def test_restored_state_recovers(lab, check):
    """Issue 14: a C2 whose state file went back (restored from an older copy) sends numbers
    below the broker's mark: the first message is refused as a replay, and the next one passes,
    with no operator action."""
    c2 = C2(lab)
    try:
        dev = lab.connect(lab.dev2)
        chan = "SRUP/%s" % lab.dev2.hex
        dev.subscribe(chan)
        tok = lab.token()
        dev.publish("SRUP/servers/%s/%s" % (lab.server.hex, lab.dev2.hex),
                    lab.msg(lab.dev2, "JOIN_REQ", token=tok))
        check(next_of(dev, "RESPONSE") is not None, "dev2 joined")
        time.sleep(0.3)
        state = os.path.join(c2.dir, "c2.state")
        with open(state, "rb") as f:
            old = f.read()
        for n in (1, 2):
            r = c2.ctl("send", "action", lab.dev2.hex, str(n))
            check(r.returncode == 0, "action %d delivered" % n)
        c2.stop_daemon()
        with open(state, "wb") as f:
            f.write(old)
        c2.start_daemon()
        m = lab.audit_mark()
        r = c2.ctl("send", "action", lab.dev2.hex, "3")
        check(r.returncode == 1 and "refused by the broker" in r.stdout and
              "retrying works" in r.stdout, "the stale number is refused: %r" % r.stdout)
        check(lab.wait_audit(m, lambda a: a.get("reason") == "replay" and
                             a.get("sender") == lab.server.hex) is not None,
              "the broker's audit log says replay")
        r = c2.ctl("send", "action", lab.dev2.hex, "4")
        check(r.returncode == 0 and "OK delivered" in r.stdout,
              "the next command passes: %r" % r.stdout)
        got = dev.wait_for(lambda d: len(d.payload) > 20 and d.payload[1] == T["ACTION"] and
                           d.payload[-1] == 4, 5.0)
        check(got is not None, "the device received ACTION 4")
        # The broker's mark for the C2 on dev2's channel is readable (issue 14): after the
        # broker stops, every journalled mark is in the store.
        seq = int(c2.ctl("status").stdout.split("peer %s " % lab.dev2.hex)[1].split("sent=")[1]
                  .split()[0])
        c2.stop_daemon()
        lab.broker.stop()
        r = h.run([h.SRUP, "marks", "show", "--store", lab.store, "--id", lab.server.hex,
                   "--json"], check=False)
        marks = json.loads(r.stdout or b"{}").get("marks", [])
        mark = next((m for m in marks if m["channel"] == "SRUP/%s" % lab.dev2.hex), None)
        check(r.returncode == 0 and mark is not None and mark["sequence_id"] == seq,
              "srup marks show: the C2's mark on dev2's channel is its last number %d: %r" % (
                  seq, marks))
    finally:
        if c2.proc.poll() is None:
            c2.stop_daemon()
        c2.log.close()
    check("above any mark a restored state could have left behind" in c2.logtext(),
          "srup-c2 logs the resynchronisation")


def no_hm_resp_lab():
    """A policy under which servers may not send HM_JOIN_RESP: the broker refuses it."""
    d = h.Lab(start=False)
    p = os.path.join(d.dir, "no-hm-resp.policy")
    text = d.policy_text()
    line = "allow device_channel server HM_JOIN_RESP "
    if line not in text:
        raise h.HarnessError("the shipped policy has no %r line" % line)
    with open(p, "w") as f:
        f.write(text.replace(line, "allow device_channel server "))
    d.broker.policy = p
    d.broker.start()
    return d


def test_refused_join_response_ends_the_join(lab, check):
    """Issue 14: when the broker refuses srup-c2's HM_JOIN_RESP, the device never got the value:
    the join must not stay pending for an operator to approve into a JOIN_SUCCESS the device
    would ignore."""
    c2 = C2(lab)
    try:
        dev = lab.connect(lab.dev1)
        check(dev.subscribe("SRUP/%s" % lab.dev1.hex) < 0x80, "device subscribes")
        m = lab.audit_mark()
        rc = dev.publish("SRUP/servers/%s/%s" % (lab.server.hex, lab.dev1.hex),
                         lab.msg(lab.dev1, "HM_JOIN_REQ"))
        check(h.delivered(rc), "HM_JOIN_REQ taken by the broker")
        check(lab.wait_audit(m, lambda a: a.get("reason") == "not_allowed" and
                             a.get("type") == "HM_JOIN_RESP") is not None,
              "the broker refused srup-c2's HM_JOIN_RESP (not_allowed)")
        deadline = time.monotonic() + 5 * h.SLOW
        pend = ""
        while time.monotonic() < deadline:
            pend = c2.ctl("pending").stdout
            if "OK 0 pending" in pend:
                break
            time.sleep(0.1)
        check("OK 0 pending" in pend, "the refused join is no longer pending: %r" % pend)
        r = c2.ctl("approve", lab.dev1.hex)
        check(r.returncode == 1 and "no human-moderated join pending" in r.stdout,
              "approve has nothing to approve: %r" % r.stdout)
    finally:
        c2.stop()
    check("the broker refused our HM_JOIN_RESP" in c2.logtext(),
          "srup-c2 logs why the join ended")


if __name__ == "__main__":
    if not os.access(C2_BIN, os.X_OK):
        h.log("srup-c2 not built: %s" % C2_BIN)
        sys.exit(1)
    socket.setdefaulttimeout(30)
    h.main([test_silent_device, (test_restored_state_recovers, lab_factory),
            (test_refused_join_response_ends_the_join, no_hm_resp_lab)],
           lab_factory=lab_factory)
