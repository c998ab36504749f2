#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# attacker.py - the lab's attacker: eavesdrops, replays, tampers with and forges SRUP traffic,
# forges membership, revokes strangers, floods the seen index and abuses the retransmission
# exception. Publishes with mosquitto_pub or mqtt5.py (MQTT v5, QoS 1) so that the broker's
# verdict is visible: a PUBACK "Not authorized" (0x87) means the plugin dropped the message; with
# no PUBACK (QoS 0, a Will) the audit log and a subscriber on the target channel decide.
# Standard library only (libcrypto through ctypes signs floods; the openssl command otherwise).
#
# What it has: its own identity and key (not registered), a registered but malicious device
# ("rogue") and server ("rogue_server"), certificates from the lab CA for each, the plain listener
# where any username and client id can be claimed, and captured traffic. Captured traffic
# comes from a passive network tap (the C2's wire log, i.e. what an observer of an unencrypted
# link would see), because the broker does not let the attacker's subscriptions receive other
# identities' SRUP topics (the sniff phase shows it).
import argparse
import collections
import ctypes
import ctypes.util
import json
import os
import signal
import struct
import subprocess
import sys
import tempfile
import time
import uuid

sys.dont_write_bytecode = True  # keep docker/ free of __pycache__
import mqtt5  # noqa: E402

T = {"INITIATE": 0x01, "RESPONSE": 0x02, "ACTIVATE": 0x03, "ACTION": 0x04, "DATA": 0x05,
     "ID_REQUEST": 0x06, "JOIN_REQ": 0x09, "JOIN_CMD": 0x0A, "TERMINATE_CMD": 0x11,
     "DEREGISTER_CMD": 0x13, "SYNDICATED_C2_REQ": 0x2C}
JOIN_SUCCESS = 0x50
# Signed JOIN_REQs the rogue device floods the C2's join topic with before the seen-index replay
# (the lab's policy keeps a small seen_index, see lab.sh, so that this would flush a shared one).
FLOOD = 300


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

    def connect(self, cid, via, will=None):
        """An mqtt5.Client; via as for Attacks.publish."""
        a = self.a
        if via[0] == "plain":
            return mqtt5.Client(a.host, a.plain_port, cid, username=via[1], will=will)
        c = os.path.join(self.dir, "certs")
        tls = (os.path.join(c, "ca.crt"), os.path.join(c, via[1] + ".crt"),
               os.path.join(c, via[1] + ".key"))
        return mqtt5.Client(a.host, a.tls_port, cid, tls=tls, will=will)

    def wait_c2(self, timeout=15.0):
        """Wait until the C2 daemon is connected (after an attack took over its client id), so
        that its reconnection cannot cut the next attack's connection short."""
        time.sleep(0.3)  # the C2 notices a takeover a moment after it happens
        if not self.a.c2:
            time.sleep(2.0)
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            p = subprocess.run([self.a.c2, "--config", os.path.join(self.dir, "conf", "c2.conf"),
                                "status"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            if b"connected=1" in p.stdout:
                return
            time.sleep(0.2)
        log("the C2 did not reconnect within %d s" % timeout)

    def audit_mark(self):
        try:
            return os.path.getsize(os.path.join(self.dir, "audit.jsonl"))
        except OSError:
            return 0

    def audit_drops(self, mark, cid, wait=3.0):
        """Reasons of the audit log's drop lines for client id cid written after mark, waiting
        up to wait seconds for the first."""
        deadline = time.monotonic() + wait
        while True:
            got = []
            try:
                with open(os.path.join(self.dir, "audit.jsonl"), "rb") as f:
                    f.seek(mark)
                    for line in f:
                        try:
                            e = json.loads(line)
                        except ValueError:
                            continue
                        if e.get("client_id") == cid and e.get("verdict") == "drop":
                            got.append(e.get("reason"))
            except OSError:
                pass
            if got or time.monotonic() >= deadline:
                return got
            time.sleep(0.1)


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


def openssl_sign(keyfile, data):
    p = subprocess.run(["openssl", "dgst", "-sha256", "-sign", keyfile], input=data,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True)
    return p.stdout


class FastSigner:
    """RSASSA-PKCS1-v1_5 with SHA-256 through libcrypto's EVP API in this process, for floods:
    one openssl process per message costs about 15 ms, this well under 1 ms. The signature is
    deterministic, so the first one is compared with openssl's; on any disagreement, or without
    a loadable libcrypto, every message is signed with the openssl command instead."""

    def __init__(self, keyfile):
        self.keyfile = keyfile
        self.pkey = None
        try:
            c = ctypes.CDLL(ctypes.util.find_library("crypto") or "libcrypto.so.3")
            vp, cp, sz = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t
            c.BIO_new_file.restype = vp
            c.BIO_new_file.argtypes = [cp, cp]
            c.BIO_free.argtypes = [vp]
            c.PEM_read_bio_PrivateKey.restype = vp
            c.PEM_read_bio_PrivateKey.argtypes = [vp, vp, vp, vp]
            c.EVP_MD_CTX_new.restype = vp
            c.EVP_MD_CTX_free.argtypes = [vp]
            c.EVP_DigestSignInit_ex.argtypes = [vp, vp, cp, vp, cp, vp, vp]
            c.EVP_DigestSign.argtypes = [vp, cp, ctypes.POINTER(sz), cp, sz]
            self.c = c
            bio = c.BIO_new_file(keyfile.encode(), b"r")
            if bio:
                self.pkey = c.PEM_read_bio_PrivateKey(bio, None, None, None)
                c.BIO_free(bio)
            probe = b"srup lab signer self-check"
            if not self.pkey or self._sign(probe) != openssl_sign(keyfile, probe):
                log("in-process signing unavailable: signing with the openssl command")
                self.pkey = None
        except (OSError, AttributeError, subprocess.CalledProcessError) as e:
            log("in-process signing unavailable (%s): signing with the openssl command" % e)
            self.pkey = None

    def _sign(self, data):
        c = self.c
        md = c.EVP_MD_CTX_new()
        if not md:
            return None
        try:
            if c.EVP_DigestSignInit_ex(md, None, b"SHA256", None, None, self.pkey, None) != 1:
                return None
            n = ctypes.c_size_t(0)
            if c.EVP_DigestSign(md, None, ctypes.byref(n), data, len(data)) != 1:
                return None
            out = ctypes.create_string_buffer(n.value)
            if c.EVP_DigestSign(md, out, ctypes.byref(n), data, len(data)) != 1:
                return None
            return out.raw[:n.value]
        finally:
            c.EVP_MD_CTX_free(md)

    def sign(self, data):
        sig = self._sign(data) if self.pkey else None
        return sig if sig is not None else openssl_sign(self.keyfile, data)


def build(mtype, seq, sender_hex, token, body, keyfile, version=5, signer=None):
    """A SRUP message signed with keyfile (or signer, a FastSigner)."""
    head = struct.pack("<BBQQ", version, mtype, seq, int(sender_hex, 16))
    tok = struct.pack(">H", len(token)) + token
    data = head + tok + body
    sig = signer.sign(data) if signer else openssl_sign(keyfile, data)
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
        mark = self.lab.audit_mark()
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
        drops = self.lab.audit_drops(mark, cid, wait=1.0) if verdict == "dropped" else []
        return self.record(name, verdict, expect, cid, topic, via, out,
                           drops[-1] if drops else "-")

    def record(self, name, verdict, expect, cid, topic, via, detail="", reason="-"):
        """One line of results/attacks.tsv: name, verdict, expected reason, client id, topic,
        how the attacker connected, and the reason of the audit log's drop line for this
        attempt ("-" if none was seen)."""
        who = ("plain as %s" % (via[1] or "anonymous")) if via[0] == "plain" else \
            "tls as %s" % via[1]
        log("%-28s %-12s (%s, expect %s) %s" % (name, verdict, who, expect, detail[:80]))
        with open(self.lab.results, "a") as f:
            f.write("%s\t%s\t%s\t%s\t%s\t%s\t%s\n" % (name, verdict, expect, cid, topic, who,
                                                     reason))
        if verdict != "dropped":
            self.failed += 1
        return verdict

    def send(self, name, expect, topic, payload, via, qos=1, cid=None, watcher=None):
        """Publish payload from a fresh mqtt5 connection (client id cid, default
        attacker-<name>). QoS 1 is judged by the PUBACK; QoS 0 gets no answer, so it counts as
        dropped only if the audit log has a drop line for it and the watcher (a subscriber to
        the topic) did not receive it."""
        cid = cid or "attacker-%s" % name
        self.n += 1
        if watcher is not None:
            watcher.clear()
        mark = self.lab.audit_mark()
        try:
            c = self.lab.connect(cid, via)
            rc = c.publish(topic, payload, qos=qos)
            if qos == 0:
                c.ping()  # the broker has handled the publish when it answers the ping
            c.disconnect()
        except (OSError, mqtt5.Closed) as e:
            return self.record(name, "error", expect, cid, topic, via, "connect: %s" % e)
        return self.judge(name, expect, cid, topic, via, payload, qos, rc, mark, watcher)

    def judge(self, name, expect, cid, topic, via, payload, qos, rc, mark, watcher):
        drops = self.lab.audit_drops(mark, cid)
        seen = watcher is not None and watcher.received(payload)
        if seen:
            verdict = "GOT-THROUGH"
        elif qos and rc == mqtt5.NOT_AUTHORIZED:
            verdict = "dropped"
        elif qos and rc == 0:
            verdict = "GOT-THROUGH"
        elif not qos and drops:
            verdict = "dropped"
        else:
            verdict = "error"
        detail = "puback=%s audit=%s delivered=%s" % (
            "-" if rc is None else "0x%02x" % rc, ",".join(drops) or "-",
            "?" if watcher is None else int(seen))
        return self.record(name, verdict, expect, cid, topic, via, detail,
                           drops[-1] if drops else "-")


class Watcher:
    """The lab's own instrument (not the attacker): a subscriber to a device's channel with the
    device's certificate, to see whether an attack was delivered when there is no PUBACK."""

    def __init__(self, lab, name, topic):
        self.c = lab.connect("lab-watch-%s" % name, ("tls", name))
        self.granted = self.c.subscribe(topic)
        if self.granted is None or self.granted >= 0x80:
            raise OSError("watcher subscription to %s refused" % topic)

    def clear(self):
        """Forget what was delivered so far: each attempt is judged by its own deliveries."""
        self.c.pump(0.2)
        self.c.messages.clear()

    def received(self, payload, wait=1.0):
        self.c.pump(wait)
        return any(m == payload for _, m in self.c.messages)

    def close(self):
        self.c.disconnect()


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
    # The attacker has stolen the C2's and dev1's TLS client credentials (certificate and key),
    # not their SRUP signing keys: it passes identity binding as them, so what stops the
    # attacks below is the broker's replay, signature and parse checks. Without a certificate
    # (the plain listener, claiming the C2's username) it has no identity at all.
    c2_stolen = ("tls", "c2")
    dev1_stolen = ("tls", "dev1")
    at.publish("claim_c2_username", "no_identity", ch1, action, ("plain", ids["c2"]))

    # Replays of captured, validly signed messages.
    at.publish("replay_action", "replay", ch1, action, c2_stolen)
    at.publish("replay_initiate", "replay", ch1, initiate, c2_stolen)
    at.publish("replay_action_tls", "identity_mismatch", ch1, action, ("tls", "attacker"))
    at.publish("replay_join_req", "replay", join1, join_req, dev1_stolen)
    at.publish("replay_other_channel", "replay", ch2, action, c2_stolen)
    at.publish("replay_retained", "retained_refused", ch1, action, c2_stolen, retain=True)

    # Tampering with a captured message.
    t = bytearray(action)
    t[-1] ^= 0x01
    at.publish("tamper_body", "replay", ch1, bytes(t), c2_stolen)
    at.publish("tamper_body_seq", "bad_signature", ch1, with_seq(bytes(t), msg_seq(action) + 1000),
               c2_stolen)
    t = bytearray(initiate)
    h = split_msg(initiate)
    url_at = len(initiate) - len(h[3]) + 2
    t[url_at:url_at + 4] = b"ftp:"
    at.publish("tamper_update_url", "bad_signature", ch1,
               with_seq(bytes(t), msg_seq(initiate) + 1000), c2_stolen)

    # Forgeries.
    tok = b"00000000-0000-4000-8000-000000000bad"
    forged = build(T["ACTION"], (1 << 64) - 1, ids["c2"], tok, bytes([2]), lab.key("attacker"))
    at.publish("forge_c2_max_seq", "bad_signature", ch1, forged, c2_stolen)
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
    at.publish("empty_payload", "empty_payload", ch1, b"", c2_stolen)
    at.publish("truncated", "truncated", ch1, fresh[:len(fresh) - 5], c2_stolen)
    at.publish("trailing_bytes", "trailing_bytes", ch1, fresh + b"\x00", c2_stolen)
    at.publish("bad_version", "bad_version", ch1, b"\x04" + fresh[1:], c2_stolen)
    at.publish("unknown_type", "unknown_type", ch1, fresh[:1] + b"\x07" + fresh[2:], c2_stolen)
    at.publish("too_large", "too_large", ch1, fresh + b"\x00" * 70000, c2_stolen)
    c2req = build(T["SYNDICATED_C2_REQ"], (1 << 62) + 1, ids["c2"], tok,
                  b"\x00\x01x\x05\x01\x00", lab.key("attacker"))
    at.publish("bad_pad", "bad_pad", ch1, c2req, c2_stolen)

    membership_forgery(lab, at)
    stranger_revocation(lab, at)
    seen_flush(lab, at, tap)
    retransmit_abuse(lab, at, tap)
    return 1 if at.failed else 0


def token():
    return str(uuid.uuid4()).encode()


def membership_forgery(lab, at):
    """A registered server that dev1 never asked to join claims membership of dev1: a
    JOIN_SUCCESS answering no request, and a JOIN_CMD though the policy does not trust it with
    joins. Then an eavesdropper under its certificate, started now, reads dev1's channel until
    the after-leave phase, which records whether anything arrived."""
    ids = lab.ids
    ch1 = "SRUP/" + ids["dev1"]
    evil = ("tls", "rogue_server")
    key = lab.key("rogue_server")
    m = build(T["RESPONSE"], 1, ids["rogue_server"], token(), bytes([JOIN_SUCCESS]), key)
    at.publish("fake_join_success", "no_pending_join", ch1, m, evil)
    m = build(T["JOIN_CMD"], 2, ids["rogue_server"], token(),
              struct.pack("<Q", int(ids["dev1"], 16)), key)
    at.publish("fake_join_cmd", "not_allowed", ch1, m, evil)
    status = os.path.join(lab.dir, "results", "eavesdrop.status")
    try:
        os.unlink(status)
    except OSError:
        pass
    a = lab.a
    with open(os.path.join(lab.dir, "logs", "eavesdropper.log"), "w") as out:
        p = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--lab", lab.dir,
                              "--host", a.host, "--tls-port", str(a.tls_port), "--plain-port",
                              str(a.plain_port), "--phase", "eavesdrop"], stdout=out,
                             stderr=subprocess.STDOUT)
    with open(os.path.join(lab.dir, "run", "eavesdrop.pid"), "w") as f:
        f.write("%d\n" % p.pid)
    for _ in range(100):
        if os.path.exists(status) or p.poll() is not None:
            break
        time.sleep(0.1)
    log("eavesdropper (pid %d): %s" % (p.pid, read_status(status) or "did not start"))


def read_status(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def stranger_revocation(lab, at):
    """The same server, a member of nothing, tries to revoke dev1 (DEREGISTER_CMD), end its
    membership (TERMINATE_CMD), and revoke the C2 through the C2's own channel. The flows that
    follow (and `srup keys list`, in lab.sh) show dev1 and the C2 unharmed."""
    ids = lab.ids
    ch1 = "SRUP/" + ids["dev1"]
    evil = ("tls", "rogue_server")
    key = lab.key("rogue_server")
    m = build(T["DEREGISTER_CMD"], 5, ids["rogue_server"], token(), b"", key)
    at.publish("stranger_deregister_dev1", "not_member", ch1, m, evil)
    m = build(T["TERMINATE_CMD"], 6, ids["rogue_server"], token(), b"", key)
    at.publish("stranger_terminate_dev1", "not_member", ch1, m, evil)
    m = build(T["DEREGISTER_CMD"], 7, ids["rogue_server"], token(), b"", key)
    at.publish("stranger_deregister_c2", "unknown_target", "SRUP/" + ids["c2"], m, evil)


def seen_flush(lab, at, tap):
    """The rogue device signs FLOOD JOIN_REQs to the C2 (each valid, each accepted), trying to
    push the C2's accepted commands out of the broker's seen index. Then a command the C2 sent
    dev1 is replayed on dev2's channel, chosen with a sequence ID above the C2's mark there, so
    that only the seen index can tell it is a replay."""
    ids = lab.ids
    ch1 = "SRUP/" + ids["dev1"]
    ch2 = "SRUP/" + ids["dev2"]
    mark2 = max([msg_seq(m) for d, t, m in tap if d == "out" and t == ch2] or [0])
    cands = [m for d, t, m in tap if d == "out" and t == ch1 and msg_seq(m) > mark2]
    if not cands:
        log("seen_flush: no captured C2 command to dev1 above the C2's mark on dev2 (%d)" % mark2)
        cands = [m for d, t, m in tap if d == "out" and t == ch1]
    commands = [m for m in cands if msg_type(m) in (T["ACTION"], T["INITIATE"], T["ACTIVATE"])]
    victim = (commands or cands)[-1]
    topic = "SRUP/servers/%s/%s" % (ids["c2"], ids["rogue"])
    signer = FastSigner(lab.key("rogue"))
    t0 = time.monotonic()
    msgs = [build(T["JOIN_REQ"], 1000 + i, ids["rogue"], token(), b"", None, signer=signer)
            for i in range(FLOOD)]
    t1 = time.monotonic()
    codes = collections.Counter()
    try:
        c = lab.connect("attacker-seen_flush_flood", ("tls", "rogue"))
        for m in msgs:
            rc = c.publish(topic, m)
            codes["closed" if rc is None else "0x%02x" % rc] += 1
            if rc is None:
                break
        c.disconnect()
    except (OSError, mqtt5.Closed) as e:
        log("seen_flush: flood connection failed: %s" % e)
    t2 = time.monotonic()
    summary = "%d JOIN_REQs signed in %.2f s, published in %.2f s: %s; replaying %s seq %d " \
              "(the C2's mark on dev2 is %d)" % (
                  FLOOD, t1 - t0, t2 - t1, dict(codes), type_name(msg_type(victim)),
                  msg_seq(victim), mark2)
    log("seen_flush: " + summary)
    with open(os.path.join(lab.dir, "results", "seen_flush.txt"), "w") as f:
        f.write(summary + "\n")
    at.publish("seen_flush_replay", "replay", ch2, victim, ("tls", "c2"))


def retransmit_abuse(lab, at, tap):
    """The MQTT retransmission exception covers a resend from the connection (or resumed
    session) that sent the message, at QoS 1/2, once. The last message the C2 sent dev1 is sent
    again: at QoS 0 and QoS 1 from a new connection claiming the C2's client id, on the plain
    listener (claiming the C2's username too) and over TLS with the attacker's own certificate;
    and as a Will, whose connection is then dropped so that the broker publishes it. A
    subscriber with dev1's certificate watches dev1's channel."""
    ids = lab.ids
    ch1 = "SRUP/" + ids["dev1"]
    last = [m for d, t, m in tap if d == "out" and t == ch1]
    if not last:
        log("retransmit: nothing captured on dev1's channel")
        return
    cmd = last[-1]
    c2cid = "srup-c2-%s" % ids["c2"]  # the C2 daemon's client id (tools/common/srupd.c)
    plain = ("plain", ids["c2"])
    stolen = ("tls", "c2")  # the C2's TLS credential, not its SRUP key
    try:
        w = Watcher(lab, "dev1", ch1)
    except (OSError, mqtt5.Closed) as e:
        log("retransmit: no watcher on dev1's channel (%s); judging by the audit log only" % e)
        w = None
    # Each connection claiming the C2's client id takes over the real C2's session, and the C2
    # reconnects about a second later; lab.sh waits for it before the next flows.
    for name, via, qos, expect in (("retransmit_qos0_plain", plain, 0, "no_identity"),
                                   ("retransmit_qos1_plain", plain, 1, "no_identity"),
                                   ("retransmit_qos0_stolen", stolen, 0, "replay"),
                                   ("retransmit_qos1_stolen", stolen, 1, "replay"),
                                   ("retransmit_qos0_tls", ("tls", "attacker"), 0,
                                    "identity_mismatch"),
                                   ("retransmit_qos1_tls", ("tls", "attacker"), 1,
                                    "identity_mismatch")):
        lab.wait_c2()
        at.send(name, expect, ch1, cmd, via, qos=qos, cid=c2cid, watcher=w)
    # A Will is checked after the broker has closed the TLS session: it carries no certificate
    # identity, so under `identity certificate` every Will on a SRUP topic is refused.
    for name, via, expect in (("retransmit_will_plain", plain, "no_identity"),
                              ("retransmit_will_tls", ("tls", "rogue"), "no_identity"),
                              ("retransmit_will_stolen", stolen, "no_identity")):
        cid = "attacker-" + name
        at.n += 1
        if w is not None:
            w.clear()
        mark = lab.audit_mark()
        try:
            c = lab.connect(cid, via, will=(ch1, cmd, 1))
            ok = c.ping()
            c.abort()
        except (OSError, mqtt5.Closed) as e:
            at.record(name, "error", expect, cid, ch1, via, "connect: %s" % e)
            continue
        if not ok:
            at.record(name, "error", expect, cid, ch1, via, "the broker closed the connection")
            continue
        at.judge(name, expect, cid, ch1, via, cmd, 0, None, mark, w)
    if w is not None:
        w.close()
    lab.wait_c2()


def type_name(t):
    for k, v in T.items():
        if v == t:
            return k
    return "0x%02x" % (t or 0)


def phase_after_leave(lab):
    ids = lab.ids
    at = Attacks(lab)
    tap = load_tap(lab)
    join1 = "SRUP/servers/%s/%s" % (ids["c2"], ids["dev1"])
    join_req = pick(tap, "in", join1, T["JOIN_REQ"])
    if join_req is not None:
        at.publish("replay_join_after_leave", "replay", join1, join_req, ("tls", "dev1"))
    # dev2 deregistered: its key is revoked at the broker. A thief holding that key and its
    # certificate still cannot speak.
    tok = b"00000000-0000-4000-8000-00000000dead"
    stolen = build(T["DATA"], 1 << 40, ids["dev2"], tok,
                   b"\x00\x04EVIL\x00\x02hi", lab.key("dev2"))
    at.publish("revoked_device_key", "revoked_sender", "SRUP/" + ids["dev2"], stolen,
               ("tls", "dev2"))
    stop_eavesdropper(lab, at)
    return 1 if at.failed else 0


def phase_eavesdrop(lab):
    """Run by membership_forgery in the background until SIGTERM (from phase_after_leave): the
    malicious server subscribes to dev1's channel over its own certificate, claims membership
    once more on this connection (so its drops are in the audit log under this client id), and
    writes everything delivered to results/eavesdrop_after_fake_join.log."""
    ids = lab.ids
    ch1 = "SRUP/" + ids["dev1"]
    res = os.path.join(lab.dir, "results")
    stop = []
    signal.signal(signal.SIGTERM, lambda *x: stop.append(1))
    state = {}
    try:
        c = lab.connect("attacker-eavesdrop_after_fake_join", ("tls", "rogue_server"))
    except (OSError, mqtt5.Closed) as e:
        with open(os.path.join(res, "eavesdrop.status"), "w") as f:
            f.write("connected=0 error=%s\n" % e)
        return 1
    state["suback"] = c.subscribe(ch1)
    key = lab.key("rogue_server")
    m = build(T["RESPONSE"], 3, ids["rogue_server"], token(), bytes([JOIN_SUCCESS]), key)
    state["join_success"] = c.publish(ch1, m)
    m = build(T["JOIN_CMD"], 4, ids["rogue_server"], token(),
              struct.pack("<Q", int(ids["dev1"], 16)), key)
    state["join_cmd"] = c.publish(ch1, m)

    def status(extra=""):
        with open(os.path.join(res, "eavesdrop.status.tmp"), "w") as f:
            f.write(" ".join("%s=%s" % kv for kv in sorted(state.items())) + extra + "\n")
        os.replace(os.path.join(res, "eavesdrop.status.tmp"),
                   os.path.join(res, "eavesdrop.status"))

    status()
    log_path = os.path.join(res, "eavesdrop_after_fake_join.log")
    alive = True
    # It also ends when the broker goes away (the lab stopped without an after-leave phase), or
    # after ten minutes, so that it never outlives a broken run.
    deadline = time.monotonic() + 600
    with open(log_path, "w") as out:
        while not stop and alive and time.monotonic() < deadline:
            alive = c.pump(0.2)
            for t, m in c.messages:
                out.write("%s %s\n" % (t, m.hex()))
            out.flush()
            del c.messages[:]
        alive = alive and c.ping()
        for t, m in c.messages:
            out.write("%s %s\n" % (t, m.hex()))
    c.disconnect()
    state["alive_at_end"] = int(alive)
    status(" done=1")
    return 0


def stop_eavesdropper(lab, at):
    """Stop the eavesdropper and record eavesdrop_after_fake_join: dropped when the malicious
    server's subscription, kept open since its fake joins, received nothing of dev1's channel
    (the flows after the main phase put dev1's DATA, RESPONSEs and joins there)."""
    name = "eavesdrop_after_fake_join"
    cid = "attacker-" + name
    topic = "SRUP/" + lab.ids["dev1"]
    via = ("tls", "rogue_server")
    at.n += 1
    res = os.path.join(lab.dir, "results")
    try:
        with open(os.path.join(lab.dir, "run", "eavesdrop.pid")) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        return at.record(name, "error", "not delivered", cid, topic, via, "never started")
    try:
        os.kill(pid, signal.SIGTERM)
    except OSError:
        pass
    st = ""
    for _ in range(100):
        st = read_status(os.path.join(res, "eavesdrop.status"))
        if "done=1" in st:
            break
        time.sleep(0.1)
    try:
        with open(os.path.join(res, name + ".log")) as f:
            got = sum(1 for line in f if line.strip())
    except OSError:
        got = -1
    if got > 0:
        verdict = "GOT-THROUGH"
    elif got == 0 and "done=1" in st and "alive_at_end=1" in st:
        verdict = "dropped"
    else:
        verdict = "error"  # no evidence: the subscription was not up for the whole run
    return at.record(name, verdict, "not delivered", cid, topic, via,
                     "%d messages of dev1's channel delivered; %s" % (got, st),
                     "not delivered" if verdict == "dropped" else "-")


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
    ap.add_argument("--phase", default="main",
                    choices=["main", "after-leave", "sniff", "eavesdrop"])
    a = ap.parse_args()
    lab = Lab(a)
    if a.phase == "sniff":
        return phase_sniff(lab)
    if a.phase == "eavesdrop":
        return phase_eavesdrop(lab)
    if a.phase == "after-leave":
        return phase_after_leave(lab)
    return phase_main(lab)


if __name__ == "__main__":
    sys.exit(main())
