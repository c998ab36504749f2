# SPDX-License-Identifier: MIT
# pysrup_peer.py - a SRUP peer that behaves as the reference implementation (pySRUP) does, written
# from the project's spec (../shared/spec/srup-wire.md sections 1-6), not from pySRUP's code.
#
# What it mirrors of pySRUP (spec sections 5 and 6):
# - MQTT 3.1.1 (paho), client id "SRUP Client: <hex id>", mutual TLS, QoS 1 for everything, a
#   pause after every publish (default 1.0 s, as pySRUP; tests pass a shorter one and say so);
# - ONE sequence counter per peer shared by both directions: a message to P carries table[P]+1;
#   a message from P is accepted only if its number is above table[P], and table[P] is set to it
#   before the signature is checked (spec section 6, reference defect 11);
# - signatures RSASSA-PKCS1-v1_5 with SHA-256 over the unsigned bytes; drops its own echoes;
# - no optional replies: no ACTION_*, ACTIVATE_*, DATA echo, RESIGN/DEREGISTER_SUCCESS;
# - ID_REQUEST answered with DATA "IDENTIFICATION_RESPONSE" under a fresh token, its text
#   embedding Python reprs as pySRUP's default does (reference defect 11);
# - 36-character uuid4 tokens; url and digest with a trailing NUL;
# - the encrypted field of spec section 4 (RSA PKCS#1 v1.5 wrapped AES-256-CBC key);
# - as a device it accepts RESPONSE JOIN_SUCCESS whatever its token (reference defect);
# - with defects=True (the default) as a server, terminate() and the observer request of an
#   observed join send nothing, as pySRUP's send_SRUP_Terminate and its observer-request
#   sender do (spec section 8 and seen live); defects=False sends them as the spec describes.
# What it does not do: KeyEx. pySRUP fetches peer keys from the registration service
# (spec section 5.4); this peer reads them from files <peer_keys>/<hex id>.pub.pem.
import hashlib
import os
import queue
import struct
import threading
import time
import urllib.error
import urllib.request
import uuid

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives import hashes, padding as sympad, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

VERSION = 0x05
T = {"INITIATE": 0x01, "RESPONSE": 0x02, "ACTIVATE": 0x03, "ACTION": 0x04, "DATA": 0x05,
     "ID_REQUEST": 0x06, "JOIN_REQ": 0x09, "JOIN_CMD": 0x0A, "HM_JOIN_REQ": 0x0B,
     "HM_JOIN_RESP": 0x0C, "OBS_JOIN_REQ": 0x0D, "OBS_JOIN_RESP": 0x0E, "OBSERVE_REQ": 0x0F,
     "RESIGN_REQUEST": 0x10, "TERMINATE_CMD": 0x11, "DEREGISTER_REQ": 0x12,
     "DEREGISTER_CMD": 0x13}
NAME = {v: k for k, v in T.items()}
ST = {"UPDATE_SUCCESS": 0x00, "UPDATE_FAIL_SERVER": 0xFD, "UPDATE_FAIL_FILE": 0xFE,
      "UPDATE_FAIL_DIGEST": 0xFF, "ACTIVATE_SUCCESS": 0x10, "ACTIVATE_FAIL": 0x1F,
      "ACTION_SUCCESS": 0x20, "ACTION_UNKNOWN": 0x2E, "ACTION_FAIL": 0x2F,
      "DATA_TYPE_UNKNOWN": 0x3F, "JOIN_SUCCESS": 0x50, "JOIN_REFUSED": 0x5E, "JOIN_FAIL": 0x5F,
      "OBSERVED_JOIN_VALID": 0x60, "OBSERVED_JOIN_INVALID": 0x6E, "OBSERVED_JOIN_FAIL": 0x6F,
      "RESIGN_SUCCESS": 0x70, "DEREGISTER_SUCCESS": 0x80}
ST_NAME = {v: k for k, v in ST.items()}


class CodecError(Exception):
    pass


# ---- wire codec (spec section 1 and 2) -------------------------------------------------------

def var(b):
    if len(b) > 0xFFFF:
        raise CodecError("field longer than 65535 bytes")
    return struct.pack(">H", len(b)) + b


def body(mtype, m):
    t = T[mtype]
    if t == 0x01:
        return var(m["url"]) + var(m["digest"])
    if t == 0x02:
        return bytes([m["status"]])
    if t == 0x04:
        return bytes([m["action_id"]])
    if t == 0x05:
        return var(m["data_id"]) + var(m["data"])
    if t == 0x0A:
        return struct.pack("<Q", m["device_id"])
    if t in (0x0C, 0x0E):
        return var(m["encrypted"])
    if t == 0x0D:
        return struct.pack("<Q", m["observer_id"])
    if t == 0x0F:
        return struct.pack("<Q", m["joining_device_id"]) + var(m["encrypted"])
    return b""


def unsigned(mtype, seq, sender, token, b):
    return (bytes([VERSION, T[mtype]]) + struct.pack("<QQ", seq, sender) + var(token) + b)


def encode(mtype, seq, sender, token, key, **fields):
    """The signed wire bytes of a message (key: a cryptography RSA private key)."""
    b = body(mtype, fields)
    sig = key.sign(unsigned(mtype, seq, sender, token, b), padding.PKCS1v15(), hashes.SHA256())
    return (bytes([VERSION, T[mtype]]) + struct.pack("<QQ", seq, sender) + var(token) +
            var(sig) + b)


class Reader:
    def __init__(self, b):
        self.b = b
        self.off = 0

    def take(self, n):
        if self.off + n > len(self.b):
            raise CodecError("truncated at %d" % self.off)
        v = self.b[self.off:self.off + n]
        self.off += n
        return v

    def var(self):
        return self.take(struct.unpack(">H", self.take(2))[0])

    def u64(self):
        return struct.unpack("<Q", self.take(8))[0]


def decode(b):
    """A dict of the message's fields; every length checked (unlike the reference, spec 8.5)."""
    r = Reader(b)
    version, t = r.take(2)
    if version != VERSION:
        raise CodecError("version %d" % version)
    if t not in NAME:
        raise CodecError("type 0x%02x" % t)
    m = {"type": NAME[t], "seq": r.u64(), "sender": r.u64(), "token": r.var(),
         "signature": r.var()}
    if t == 0x01:
        m["url"] = r.var()
        m["digest"] = r.var()
    elif t == 0x02:
        m["status"] = r.take(1)[0]
    elif t == 0x04:
        m["action_id"] = r.take(1)[0]
    elif t == 0x05:
        m["data_id"] = r.var()
        m["data"] = r.var()
    elif t == 0x0A:
        m["device_id"] = r.u64()
    elif t in (0x0C, 0x0E):
        m["encrypted"] = r.var()
    elif t == 0x0D:
        m["observer_id"] = r.u64()
    elif t == 0x0F:
        m["joining_device_id"] = r.u64()
        m["encrypted"] = r.var()
    if r.off != len(b):
        raise CodecError("%d trailing bytes" % (len(b) - r.off))
    return m


def verify(m, pub):
    """True if m's signature verifies with pub (re-serialised fields, spec section 1.3)."""
    try:
        pub.verify(m["signature"], unsigned(m["type"], m["seq"], m["sender"], m["token"],
                                            body(m["type"], m)),
                   padding.PKCS1v15(), hashes.SHA256())
        return True
    except Exception:
        return False


# ---- the encrypted field (spec section 4) ----------------------------------------------------

def seal(pub, plaintext):
    if len(plaintext) < 32:
        plaintext = plaintext + b"\x00" * (32 - len(plaintext))  # pySRUP pads to 32
    key = os.urandom(32)
    iv = os.urandom(16)
    wrapped = pub.encrypt(key, padding.PKCS1v15())
    p = sympad.PKCS7(128).padder()
    padded = p.update(plaintext) + p.finalize()
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    ct = enc.update(padded) + enc.finalize()
    return (struct.pack("<i", len(wrapped)) + wrapped + iv + struct.pack("<i", len(ct)) +
            struct.pack("<i", len(plaintext)) + ct)


def unseal(priv, blob):
    """The first 32 bytes of the plaintext, as pySRUP's accessor returns."""
    r = Reader(blob)
    k = struct.unpack("<i", r.take(4))[0]
    if k <= 0 or k > 1024:
        raise CodecError("wrapped key length %d" % k)
    key = priv.decrypt(r.take(k), padding.PKCS1v15())
    iv = r.take(16)
    c, p = struct.unpack("<ii", r.take(8))
    if c <= 0 or c > 4096 or c % 16 or p < 0 or p > c:
        raise CodecError("ciphertext %d / plaintext %d" % (c, p))
    dec = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = dec.update(r.take(c)) + dec.finalize()
    u = sympad.PKCS7(128).unpadder()
    return (u.update(padded) + u.finalize())[:p][:32]


# ---- the peer ---------------------------------------------------------------------------------

def new_token():
    return str(uuid.uuid4()).encode()


def id_text(v):
    return "%x" % v


class Peer:
    """One pySRUP-like node: role "device", "observer" or "server"."""

    def __init__(self, role, ident, key_path, peer_keys, port, ca, cert, cert_key,
                 pause=1.0, server=None, defects=True, accept_any_join_token=True):
        self.role = role
        self.id = ident
        self.hex = id_text(ident)
        with open(key_path, "rb") as f:
            self.key = serialization.load_pem_private_key(f.read(), None)
        self.peer_keys = peer_keys
        self.pause = pause
        self.server = server
        self.defects = defects
        self.accept_any_join_token = accept_any_join_token
        self.table = {}  # pySRUP's one counter per peer, both directions
        self.events = []  # what happened, for the tests: (kind, dict)
        self.cond = threading.Condition()
        self.lock = threading.Lock()
        self.open_update = {}  # server -> token of the open update
        self.pending = {}  # server role: device -> (kind, token, value)
        self.observe = {}  # server role: observe token -> joining device
        self.obs_expect = {}  # observer role: joining device -> value told by the person
        self.join_token = None
        self.update_dir = None
        self.sent = []  # (topic, payload) of every publish, for replay tests
        self.c = mqtt.Client(client_id="SRUP Client: %s" % self.hex, clean_session=True,
                             protocol=mqtt.MQTTv311)
        self.c.tls_set(ca_certs=ca, certfile=cert, keyfile=cert_key)
        self.c.tls_insecure_set(True)  # the test broker's certificate names localhost
        # Messages are handled on a worker thread, so that a handler can publish and wait for
        # the broker's PUBACK (paho delivers it on the network thread).
        self.inbox = queue.Queue()
        self.worker = threading.Thread(target=self._work, daemon=True)
        self.worker.start()
        self.c.on_message = lambda c, u, msg: self.inbox.put(msg)
        self.connected = threading.Event()
        self.c.on_connect = lambda c, u, f, rc: rc == 0 and self.connected.set()
        self.c.connect("localhost", port, keepalive=60)
        self.c.loop_start()
        if not self.connected.wait(10):
            raise RuntimeError("%s could not connect" % self.hex)
        if role == "server":
            self.subscribe("SRUP/servers/%s/#" % self.hex)
        else:
            self.subscribe("SRUP/%s" % self.hex)

    def close(self):
        self.inbox.put(None)
        self.c.disconnect()
        self.c.loop_stop()

    def _work(self):
        while True:
            msg = self.inbox.get()
            if msg is None:
                return
            self._on_message(None, None, msg)

    # -- plumbing --
    def record(self, kind, **d):
        with self.cond:
            self.events.append((kind, d))
            self.cond.notify_all()

    def wait(self, kind, timeout=10.0, since=0, **match):
        """The first event of kind (after index since) whose fields match, or None."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for k, d in self.events[since:]:
                    if k == kind and all(d.get(a) == b for a, b in match.items()):
                        return d
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def mark(self):
        with self.cond:
            return len(self.events)

    def subscribe(self, topic):
        r, mid = self.c.subscribe(topic, qos=1)
        time.sleep(self.pause / 2)  # pySRUP: about 0.5 s after subscribing
        return r

    def pub_key(self, ident):
        try:
            with open(os.path.join(self.peer_keys, id_text(ident) + ".pub.pem"), "rb") as f:
                return serialization.load_pem_public_key(f.read())
        except OSError:
            return None

    def send(self, to, topic, mtype, token=None, **fields):
        """Sign and publish with the next number of the shared counter for peer to."""
        with self.lock:
            n = self.table.get(to, 0) + 1
            self.table[to] = n
        tok = token if token is not None else new_token()
        payload = encode(mtype, n, self.id, tok, self.key, **fields)
        info = self.c.publish(topic, payload, qos=1)
        info.wait_for_publish(10)
        self.sent.append((topic, payload))
        self.record("sent", type=mtype, to=to, seq=n, token=tok)
        time.sleep(self.pause)  # pySRUP never bursts
        return tok

    def _on_message(self, client, userdata, msg):
        try:
            m = decode(msg.payload)
        except CodecError as e:
            self.record("drop", reason="malformed", detail=str(e), topic=msg.topic)
            return
        if m["sender"] == self.id:
            return  # our own echo
        with self.lock:
            if m["seq"] <= self.table.get(m["sender"], 0):
                self.record("drop", reason="replay", type=m["type"], seq=m["seq"])
                return
            self.table[m["sender"]] = m["seq"]  # before the signature check, as pySRUP
        pub = self.pub_key(m["sender"])
        if pub is None:
            self.record("drop", reason="unknown_sender", type=m["type"])
            return
        if not verify(m, pub):
            self.record("drop", reason="bad_signature", type=m["type"])
            return
        self.record("recv", type=m["type"], sender=m["sender"], token=m["token"],
                    status=m.get("status"), topic=msg.topic)
        try:
            if self.role == "server":
                self.server_msg(msg.topic, m)
            else:
                self.device_msg(msg.topic, m)
        except Exception as e:  # a handler bug must show in the test, not vanish
            self.record("error", detail=repr(e))

    # -- device and observer --
    def dev_send(self, mtype, token=None, **fields):
        return self.send(self.server, "SRUP/%s" % self.hex, mtype, token, **fields)

    def join(self, kind="simple", observer=None):
        t = {"simple": "JOIN_REQ", "hm": "HM_JOIN_REQ", "observed": "OBS_JOIN_REQ"}[kind]
        fields = {"observer_id": observer} if kind == "observed" else {}
        self.join_token = self.send(self.server, "SRUP/servers/%s/%s" % (id_text(self.server),
                                                                        self.hex), t, **fields)
        return self.join_token

    def device_msg(self, topic, m):
        if topic != "SRUP/%s" % self.hex:
            return
        t = m["type"]
        if t == "JOIN_CMD":
            # pySRUP adopts any server whose key it can get (spec 5.2).
            self.server = m["sender"]
            self.record("joined", how="join_cmd", server=m["sender"])
            return
        if m["sender"] != self.server:
            self.record("drop", reason="not_my_server", type=t)
            return
        if t == "RESPONSE" and m["status"] in (0x50, 0x5E, 0x5F):
            if not self.accept_any_join_token and m["token"] != self.join_token:
                self.record("drop", reason="join_token", type=t)
                return
            self.record("join_outcome", status=ST_NAME.get(m["status"]), token=m["token"])
        elif t in ("HM_JOIN_RESP", "OBS_JOIN_RESP"):
            value = unseal(self.key, m["encrypted"])
            self.record("join_value", value=value.rstrip(b"\x00").decode(), token=m["token"])
        elif t == "OBSERVE_REQ":
            value = unseal(self.key, m["encrypted"]).rstrip(b"\x00").decode()
            # The person brings the joining device's value over (tell()): wait a little for it.
            with self.cond:
                self.cond.wait_for(lambda: m["joining_device_id"] in self.obs_expect, 10)
            want = self.obs_expect.get(m["joining_device_id"])
            st = 0x6F if want is None else (0x60 if want == value else 0x6E)
            self.record("observe", joining=m["joining_device_id"], status=ST_NAME[st])
            self.dev_send("RESPONSE", token=m["token"], status=st)
        elif t == "INITIATE":
            self.update(m)
        elif t == "ACTIVATE":
            ok = self.open_update.get(m["sender"]) == m["token"]
            self.record("activate", applied=ok)
            if ok:
                del self.open_update[m["sender"]]
        elif t == "ACTION":
            self.record("action", action_id=m["action_id"])
        elif t == "DATA":
            self.record("data", data_id=m["data_id"], data=m["data"])
        elif t == "ID_REQUEST":
            # A fresh token, and the text pySRUP's default builds (Python reprs included).
            text = "pySRUP-like peer <function version at 0x7f00deadbeef> %s" % self.hex
            self.dev_send("DATA", data_id=b"IDENTIFICATION_RESPONSE", data=text.encode())
        elif t in ("TERMINATE_CMD", "DEREGISTER_CMD"):
            self.record("left", how=t)
            self.server = None

    def tell(self, joining, value):
        """Observer: a person shows the value the joining device displays."""
        with self.cond:
            self.obs_expect[joining] = value
            self.cond.notify_all()

    def update(self, m):
        url = m["url"].rstrip(b"\x00").decode()
        digest = m["digest"].rstrip(b"\x00").decode()
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                data = r.read()
            st = 0x00 if hashlib.sha256(data).hexdigest() == digest else 0xFF
        except urllib.error.HTTPError:
            st = 0xFE
        except Exception:
            st = 0xFD
        if st == 0x00:
            self.open_update[m["sender"]] = m["token"]
        self.record("update", status=ST_NAME[st])
        self.dev_send("RESPONSE", token=m["token"], status=st)

    # -- server --
    def dev_topic(self, dev):
        return "SRUP/%s" % id_text(dev)

    def server_msg(self, topic, m):
        t = m["type"]
        prefix = "SRUP/servers/%s/" % self.hex
        if topic.startswith(prefix):
            if topic[len(prefix):] != id_text(m["sender"]):
                self.record("drop", reason="join_topic_mismatch")
                return
            dev = m["sender"]
            if t == "JOIN_REQ":
                self.subscribe("SRUP/%s/#" % id_text(dev))
                self.send(dev, self.dev_topic(dev), "RESPONSE", token=m["token"], status=0x50)
                self.record("member", device=dev, how="simple")
            elif t == "HM_JOIN_REQ":
                value = uuid.uuid4().hex
                tok = self.send(dev, self.dev_topic(dev), "HM_JOIN_RESP",
                                encrypted=seal(self.pub_key(dev), value.encode()))
                self.pending[dev] = ("hm", tok, value)
                self.record("hm_pending", device=dev, value=value)
            elif t == "OBS_JOIN_REQ":
                obs = m["observer_id"]
                value = uuid.uuid4().hex
                tok = self.send(dev, self.dev_topic(dev), "OBS_JOIN_RESP",
                                encrypted=seal(self.pub_key(dev), value.encode()))
                self.pending[dev] = ("obs", tok, value)
                if self.defects:
                    # pySRUP's observer-request sender never sends anything.
                    self.record("observe_not_sent", device=dev, observer=obs)
                else:
                    otok = self.send(obs, self.dev_topic(obs), "OBSERVE_REQ",
                                     joining_device_id=dev,
                                     encrypted=seal(self.pub_key(obs), value.encode()))
                    self.observe[otok] = dev
                self.record("obs_pending", device=dev, value=value)
            return
        # A device channel.
        if t == "RESPONSE" and m["token"] in self.observe:
            dev = self.observe.pop(m["token"])
            kind, tok, _ = self.pending.pop(dev)
            st = {0x60: 0x50, 0x6E: 0x5E}.get(m["status"], 0x5F)
            if st == 0x50:
                self.subscribe("SRUP/%s/#" % id_text(dev))
            self.send(dev, self.dev_topic(dev), "RESPONSE", token=tok, status=st)
            self.record("member" if st == 0x50 else "refused", device=dev, how="observed")
        elif t == "RESPONSE":
            self.record("response", device=m["sender"], status=ST_NAME.get(m["status"]),
                        token=m["token"])
            if m["status"] == 0x00 and getattr(self, "auto_activate", True):
                self.send(m["sender"], self.dev_topic(m["sender"]), "ACTIVATE", token=m["token"])
        elif t == "DATA":
            self.record("data", device=m["sender"], data_id=m["data_id"], data=m["data"],
                        token=m["token"])
        elif t in ("RESIGN_REQUEST", "DEREGISTER_REQ"):
            self.record("left", device=m["sender"], how=t)  # no response, as pySRUP

    def approve(self, dev, ok=True):
        kind, tok, _ = self.pending.pop(dev)
        if ok:
            self.subscribe("SRUP/%s/#" % id_text(dev))
        self.send(dev, self.dev_topic(dev), "RESPONSE", token=tok, status=0x50 if ok else 0x5E)

    def join_cmd(self, dev):
        self.subscribe(self.dev_topic(dev))
        return self.send(dev, self.dev_topic(dev), "JOIN_CMD", device_id=dev)

    def command(self, dev, mtype, **fields):
        return self.send(dev, self.dev_topic(dev), mtype, **fields)

    def terminate(self, dev):
        if self.defects:
            self.record("terminate_not_sent", device=dev)  # send_SRUP_Terminate never sends
            return None
        return self.send(dev, self.dev_topic(dev), "TERMINATE_CMD")
