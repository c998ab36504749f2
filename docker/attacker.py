#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# attacker.py - the lab's attacker: eavesdrops, replays, tampers with and forges SRUP traffic.
# Publishes with mosquitto_pub (MQTT v5, QoS 1) so that the broker's verdict is visible: a PUBACK
# "Not authorized" (0x87) means the plugin dropped the message. Standard library only.
#
# What it has: its own identity and key (not registered), a registered but malicious device
# ("rogue"), certificates from the lab CA for both, the plain listener where any username can be
# claimed, and captured traffic. Captured traffic comes from a passive network tap (the C2's wire
# log, i.e. what an observer of an unencrypted link would see), because the broker does not let
# the attacker's subscriptions receive other identities' SRUP topics (the sniff phase shows it).
import argparse
import os
import signal
import struct
import subprocess
import sys
import tempfile
import time

T = {"INITIATE": 0x01, "RESPONSE": 0x02, "ACTIVATE": 0x03, "ACTION": 0x04, "DATA": 0x05,
     "ID_REQUEST": 0x06, "JOIN_REQ": 0x09, "SYNDICATED_C2_REQ": 0x2C}


def log(*a):
    print("[attacker]", *a, file=sys.stderr, flush=True)


class Lab:
    def __init__(self, a):
        self.a = a
        self.dir = a.lab
        self.ids = {}
        with open(os.path.join(self.dir, "ids.env")) as f:
            for line in f:
                k, _, v = line.strip().partition("=")
                if k.startswith("ID_"):
                    self.ids[k[3:]] = v
        self.results = os.path.join(self.dir, "results", "attacks.tsv")

    def key(self, name):
        return os.path.join(self.dir, "keys", name + ".pem")

    def tls_args(self, name):
        c = os.path.join(self.dir, "certs")
        return ["-p", str(self.a.tls_port), "--cafile", os.path.join(c, "ca.crt"),
                "--cert", os.path.join(c, name + ".crt"), "--key", os.path.join(c, name + ".key")]


# ---- SRUP bytes (spec §1.2) -------------------------------------------------------------------

def split_msg(m):
    """(head 18 bytes, token, sig, body) of a well-formed message, or None."""
    if len(m) < 22:
        return None
    tl = struct.unpack(">H", m[18:20])[0]
    if len(m) < 22 + tl:
        return None
    sl = struct.unpack(">H", m[20 + tl:22 + tl])[0]
    if len(m) < 22 + tl + sl:
        return None
    return m[:18], m[20:20 + tl], m[22 + tl:22 + tl + sl], m[22 + tl + sl:]


def sign(keyfile, data):
    p = subprocess.run(["openssl", "dgst", "-sha256", "-sign", keyfile], input=data,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True)
    return p.stdout


def build(mtype, seq, sender_hex, token, body, keyfile, version=5):
    head = struct.pack("<BBQQ", version, mtype, seq, int(sender_hex, 16))
    tok = struct.pack(">H", len(token)) + token
    sig = sign(keyfile, head + tok + body)
    return head + tok + struct.pack(">H", len(sig)) + sig + body


def with_seq(m, seq):
    return m[:2] + struct.pack("<Q", seq) + m[10:]


def msg_type(m):
    return m[1] if len(m) > 1 else None


def msg_seq(m):
    return struct.unpack("<Q", m[2:10])[0]


# ---- publishing ----------------------------------------------------------------------------------

class Attacks:
    def __init__(self, lab):
        self.lab = lab
        self.n = 0
        self.failed = 0

    def publish(self, name, expect, topic, payload, via, retain=False):
        """via: ("plain", username or None) or ("tls", certificate name)."""
        a = self.lab.a
        self.n += 1
        cid = "attacker-%s" % name
        cmd = ["mosquitto_pub", "-h", a.host, "-V", "5", "-q", "1", "-t", topic, "-i", cid]
        if via[0] == "plain":
            cmd += ["-p", str(a.plain_port)]
            if via[1]:
                cmd += ["-u", via[1]]
        else:
            cmd += self.lab.tls_args(via[1])
        if retain:
            cmd += ["-r"]
        tmp = None
        if payload is None or len(payload) == 0:
            cmd += ["-n"]
        else:
            fd, tmp = tempfile.mkstemp(prefix="srup-attack-")
            with os.fdopen(fd, "wb") as f:
                f.write(payload)
            cmd += ["-f", tmp]
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        if tmp:
            os.unlink(tmp)
        out = (p.stdout + p.stderr).decode(errors="replace").strip().replace("\n", " ")
        if "Not authorized" in out:
            verdict = "dropped"
        elif p.returncode != 0:
            verdict = "error"
        else:
            verdict = "GOT-THROUGH"
        who = ("plain as %s" % (via[1] or "anonymous")) if via[0] == "plain" else \
            "tls as %s" % via[1]
        log("%-28s %-12s (%s, expect %s) %s" % (name, verdict, who, expect, out[:80]))
        with open(self.lab.results, "a") as f:
            f.write("%s\t%s\t%s\t%s\t%s\t%s\n" % (name, verdict, expect, cid, topic, who))
        if verdict != "dropped":
            self.failed += 1
        return verdict


def load_tap(lab):
    """Messages seen by the passive tap: list of (direction, topic, bytes)."""
    out = []
    path = os.path.join(lab.dir, "state", "tap.log")
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 3:
                    out.append((parts[0], parts[1], bytes.fromhex(parts[2])))
    except OSError:
        pass
    return out


def pick(tap, direction, topic, mtype):
    for d, t, m in reversed(tap):
        if d == direction and t == topic and msg_type(m) == mtype:
            return m
    return None


def phase_main(lab):
    ids = lab.ids
    at = Attacks(lab)
    tap = load_tap(lab)
    ch1 = "SRUP/" + ids["dev1"]
    ch2 = "SRUP/" + ids["dev2"]
    join1 = "SRUP/servers/%s/%s" % (ids["c2"], ids["dev1"])
    action = pick(tap, "out", ch1, T["ACTION"])
    join_req = pick(tap, "in", join1, T["JOIN_REQ"])
    initiate = pick(tap, "out", ch1, T["INITIATE"])
    log("tap: %d messages captured; ACTION %s, JOIN_REQ %s, INITIATE %s" % (
        len(tap), action is not None, join_req is not None, initiate is not None))
    if action is None or join_req is None or initiate is None:
        log("not enough captured traffic: the scenario did not run?")
        with open(lab.results, "a") as f:
            f.write("capture\terror\tcaptured traffic\t-\t-\t-\n")
        return 1
    c2_plain = ("plain", ids["c2"])

    # Replays of captured, validly signed messages.
    at.publish("replay_action", "replay", ch1, action, c2_plain)
    at.publish("replay_initiate", "replay", ch1, initiate, c2_plain)
    at.publish("replay_action_tls", "identity_mismatch", ch1, action, ("tls", "attacker"))
    at.publish("replay_join_req", "replay", join1, join_req, ("plain", ids["dev1"]))
    at.publish("replay_other_channel", "replay", ch2, action, c2_plain)
    at.publish("replay_retained", "retained_refused", ch1, action, c2_plain, retain=True)

    # Tampering with a captured message.
    t = bytearray(action)
    t[-1] ^= 0x01
    at.publish("tamper_body", "replay", ch1, bytes(t), c2_plain)
    at.publish("tamper_body_seq", "bad_signature", ch1, with_seq(bytes(t), msg_seq(action) + 1000),
               c2_plain)
    t = bytearray(initiate)
    h = split_msg(initiate)
    url_at = len(initiate) - len(h[3]) + 2
    t[url_at:url_at + 4] = b"ftp:"
    at.publish("tamper_update_url", "bad_signature", ch1,
               with_seq(bytes(t), msg_seq(initiate) + 1000), c2_plain)

    # Forgeries.
    tok = b"00000000-0000-4000-8000-000000000bad"
    forged = build(T["ACTION"], (1 << 64) - 1, ids["c2"], tok, bytes([2]), lab.key("attacker"))
    at.publish("forge_c2_max_seq", "bad_signature", ch1, forged, c2_plain)
    forged = build(T["ACTION"], 1, ids["attacker"], tok, bytes([2]), lab.key("attacker"))
    at.publish("forge_unknown_sender", "unknown_sender", ch1, forged, ("tls", "attacker"))
    forged = build(T["ACTION"], 7, ids["rogue"], tok, bytes([2]), lab.key("rogue"))
    at.publish("rogue_device_commands", "not_allowed", ch1, forged, ("tls", "rogue"))
    forged = build(T["JOIN_REQ"], 8, ids["rogue"], tok, b"", lab.key("rogue"))
    at.publish("rogue_join_as_dev1", "join_topic_mismatch", join1, forged, ("tls", "rogue"))
    forged = build(T["RESPONSE"], 9, ids["rogue"], tok, bytes([0x60]), lab.key("rogue"))
    at.publish("rogue_fake_observer", "not_allowed", "SRUP/" + ids["beacon"], forged,
               ("tls", "rogue"))

    # Malformed payloads (each under the C2's name on the plain listener).
    fresh = with_seq(action, (1 << 62))
    at.publish("empty_payload", "empty_payload", ch1, b"", c2_plain)
    at.publish("truncated", "truncated", ch1, fresh[:len(fresh) - 5], c2_plain)
    at.publish("trailing_bytes", "trailing_bytes", ch1, fresh + b"\x00", c2_plain)
    at.publish("bad_version", "bad_version", ch1, b"\x04" + fresh[1:], c2_plain)
    at.publish("unknown_type", "unknown_type", ch1, fresh[:1] + b"\x07" + fresh[2:], c2_plain)
    at.publish("too_large", "too_large", ch1, fresh + b"\x00" * 70000, c2_plain)
    c2req = build(T["SYNDICATED_C2_REQ"], (1 << 62) + 1, ids["c2"], tok,
                  b"\x00\x01x\x05\x01\x00", lab.key("attacker"))
    at.publish("bad_pad", "bad_pad", ch1, c2req, c2_plain)
    return 1 if at.failed else 0


def phase_after_leave(lab):
    ids = lab.ids
    at = Attacks(lab)
    tap = load_tap(lab)
    join1 = "SRUP/servers/%s/%s" % (ids["c2"], ids["dev1"])
    join_req = pick(tap, "in", join1, T["JOIN_REQ"])
    if join_req is not None:
        at.publish("replay_join_after_leave", "replay", join1, join_req, ("plain", ids["dev1"]))
    # dev2 deregistered: its key is revoked at the broker. A thief holding that key and its
    # certificate still cannot speak.
    tok = b"00000000-0000-4000-8000-00000000dead"
    stolen = build(T["DATA"], 1 << 40, ids["dev2"], tok,
                   b"\x00\x04EVIL\x00\x02hi", lab.key("dev2"))
    at.publish("revoked_device_key", "revoked_sender", "SRUP/" + ids["dev2"], stolen,
               ("tls", "dev2"))
    return 1 if at.failed else 0


def phase_sniff(lab):
    """Subscribe wherever the attacker can and record what arrives, until SIGTERM."""
    a = lab.a
    out = open(os.path.join(lab.dir, "results", "sniffed.log"), "w")
    subs = []
    base = ["mosquitto_sub", "-h", a.host, "-V", "5", "-q", "1", "-F", "%t %x"]
    for cid, via, filt in (("attacker-sniff-tls", lab.tls_args("attacker"), "#"),
                           ("attacker-sniff-plain", ["-p", str(a.plain_port)], "SRUP/#"),
                           ("attacker-sniff-joins", ["-p", str(a.plain_port), "-u",
                                                     lab.ids["attacker"]], "SRUP/servers/#")):
        subs.append(subprocess.Popen(base + via + ["-i", cid, "-t", filt], stdout=out,
                                     stderr=subprocess.DEVNULL))
    # Informational: on the plain listener the attacker can claim dev1's username and so read
    # dev1's channel. SRUP signs but does not encrypt, so this is a confidentiality leak that only
    # an authenticated transport (the TLS listener's certificate CN) prevents. Reported
    # separately by the summary; it is not an attack the plugin can stop.
    spoof_out = open(os.path.join(lab.dir, "results", "sniffed-spoofed-username.log"), "w")
    subs.append(subprocess.Popen(base + ["-p", str(a.plain_port), "-u", lab.ids["dev1"], "-i",
                                         "attacker-sniff-spoof", "-t", "SRUP/" + lab.ids["dev1"]],
                                 stdout=spoof_out, stderr=subprocess.DEVNULL))
    stop = []
    signal.signal(signal.SIGTERM, lambda *x: stop.append(1))
    while not stop:
        time.sleep(0.2)
    for s in subs:
        s.terminate()
        s.wait()
    out.close()
    spoof_out.close()
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lab", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--tls-port", type=int, required=True)
    ap.add_argument("--plain-port", type=int, required=True)
    ap.add_argument("--srup")
    ap.add_argument("--c2")
    ap.add_argument("--phase", default="main", choices=["main", "after-leave", "sniff"])
    a = ap.parse_args()
    lab = Lab(a)
    if a.phase == "sniff":
        return phase_sniff(lab)
    if a.phase == "after-leave":
        return phase_after_leave(lab)
    return phase_main(lab)


if __name__ == "__main__":
    sys.exit(main())
