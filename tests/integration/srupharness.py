# SPDX-License-Identifier: MIT
# srupharness.py - integration-test harness for the SRUP Mosquitto plugin.
# Starts a real /usr/sbin/mosquitto with the plugin on 127.0.0.1, makes keys and a key store with
# the `srup` tool, builds signed SRUP messages, and talks MQTT v5 over a raw socket so that tests
# can see PUBACK/SUBACK reason codes, send byte-identical DUP retransmissions and drop a
# connection without DISCONNECT (Wills). It does not judge the plugin: tests assert.
#
# Why a raw MQTT client rather than paho: paho 1.6.1 hides the v5 PUBACK reason code from
# on_publish and cannot resend a given packet id with DUP set.

import json
import os
import random
import re
import select
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
import traceback

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("SRUP_BUILD_DIR", os.path.join(REPO, "build"))
SRUP = os.path.join(BUILD, "tools", "srup")
PLUGIN = os.path.join(BUILD, "plugin", "srup_plugin.so")
MOSQUITTO = os.environ.get("SRUP_MOSQUITTO", "/usr/sbin/mosquitto")
SHIPPED_POLICY = os.path.join(REPO, "policy", "srup.policy")
# SRUP_IT_VALGRIND=1 runs every broker under valgrind (memcheck, leaks); a broker that exits
# with valgrind errors fails the test that stopped it. Slow: timeouts are stretched.
VALGRIND = os.environ.get("SRUP_IT_VALGRIND") == "1"
SLOW = 4.0 if VALGRIND else 1.0

DROP_REASONS = ("empty_payload too_large truncated field_length trailing_bytes bad_version "
                "unknown_type bad_pad not_allowed unknown_sender revoked_sender "
                "identity_mismatch join_topic_mismatch replay bad_signature retained_refused "
                "internal_error not_member no_pending_join pending_full unknown_target "
                "bad_key seen_index_full no_identity").split()

RC_OK = 0x00
RC_NO_SUBSCRIBERS = 0x10
RC_NOT_AUTHORIZED = 0x87

TYPES = {
    "INITIATE": 0x01, "RESPONSE": 0x02, "ACTIVATE": 0x03, "ACTION": 0x04, "DATA": 0x05,
    "ID_REQUEST": 0x06, "JOIN_REQ": 0x09, "JOIN_CMD": 0x0A, "HM_JOIN_REQ": 0x0B,
    "HM_JOIN_RESP": 0x0C, "OBS_JOIN_REQ": 0x0D, "OBS_JOIN_RESP": 0x0E, "OBSERVE_REQ": 0x0F,
    "RESIGN_REQUEST": 0x10, "TERMINATE_CMD": 0x11, "DEREGISTER_REQ": 0x12,
    "DEREGISTER_CMD": 0x13, "SYNDICATED_C2_REQ": 0x2C,
}

JOIN_SUCCESS = 0x50


def log(*a):
    print(*a, flush=True)


class HarnessError(Exception):
    pass


def have_tool():
    return os.access(SRUP, os.X_OK)


def run(cmd, input=None, check=True, timeout=60):
    """Run a command, return CompletedProcess (bytes). Raises HarnessError when check fails."""
    p = subprocess.run(cmd, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout)
    if check and p.returncode != 0:
        raise HarnessError("command failed (%d): %s\nstdout: %s\nstderr: %s" % (
            p.returncode, " ".join(cmd), p.stdout.decode(errors="replace")[:2000],
            p.stderr.decode(errors="replace")[:2000]))
    return p


def id_text(v):
    return "%x" % v


def free_port():
    for _ in range(200):
        port = random.randint(20000, 60000)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    raise HarnessError("no free port")


# ---------------------------------------------------------------------------------------------
# SRUP wire encoding (spec §1.2). Used to build malformed messages by hand and, when the `srup`
# tool is missing, valid ones (signed with `openssl dgst`, RSASSA-PKCS1-v1_5 + SHA-256).

def var(b):
    return struct.pack(">H", len(b)) + b


def body_bytes(mtype, f):
    t = TYPES[mtype] if isinstance(mtype, str) else mtype
    if t == 0x01:
        return var(f["url"]) + var(f["digest"])
    if t == 0x02:
        return bytes([f["status"]])
    if t == 0x04:
        return bytes([f["action_id"]])
    if t == 0x05:
        return var(f["data_id"]) + var(f["data"])
    if t == 0x0A:
        return struct.pack("<Q", f["device_id"])
    if t == 0x0D:
        return struct.pack("<Q", f["observer_id"])
    if t == 0x2C:
        return var(f["data"]) + bytes([f["req_id"]]) + f.get("pad", b"\x00\x00")
    return b""


def wire(version, mtype, seq, sender, token, sig, body):
    t = TYPES[mtype] if isinstance(mtype, str) else mtype
    return (bytes([version, t]) + struct.pack("<QQ", seq, sender) + var(token) + var(sig) + body)


def unsigned_bytes(version, mtype, seq, sender, token, body):
    t = TYPES[mtype] if isinstance(mtype, str) else mtype
    return bytes([version, t]) + struct.pack("<QQ", seq, sender) + var(token) + body


def openssl_sign(key_path, data):
    return run(["openssl", "dgst", "-sha256", "-sign", key_path], input=data).stdout


def split_message(m):
    """(prefix, sig_off, sig_len) of a wire message: offsets of the signature field."""
    tlen = struct.unpack(">H", m[18:20])[0]
    off = 20 + tlen
    slen = struct.unpack(">H", m[off:off + 2])[0]
    return off, slen


# ---------------------------------------------------------------------------------------------
# Raw MQTT v5 client

def _varint(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        if n:
            b |= 0x80
        out.append(b)
        if not n:
            return bytes(out)


def _str(s):
    if isinstance(s, str):
        s = s.encode()
    return struct.pack(">H", len(s)) + s


class Delivery:
    def __init__(self, topic, payload, qos, retain, dup):
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
        self.dup = dup

    def __repr__(self):
        return "Delivery(%s, %d bytes, qos=%d, retain=%d)" % (self.topic, len(self.payload),
                                                             self.qos, self.retain)


class Client:
    """A minimal blocking MQTT v5 client. Incoming PUBLISHes are queued in .inbox."""

    def __init__(self, port, client_id, username=None, will=None, keepalive=60,
                 clean=True, timeout=5.0, tls=None, password=None):
        """tls: an ssl.SSLContext to speak MQTT over TLS (no hostname check is expected)."""
        self.port = port
        self.client_id = client_id
        self.inbox = []
        self.closed = False
        self.disconnect_reason = None
        self.events = []  # ("puback", mid, rc) / ("disconnect", rc) / ("eof",) in arrival order
        self.acks = {}
        self.recs = {}
        self.comps = {}
        self.subacks = {}
        self.buf = b""
        self.next_mid = 1
        timeout *= SLOW
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls is not None:
            self.sock = tls.wrap_socket(self.sock, server_hostname="localhost")
        flags = 0x02 if clean else 0
        payload = _str(client_id)
        if will is not None:
            wtopic, wpayload, wqos, wretain = will
            flags |= 0x04 | (wqos << 3) | (0x20 if wretain else 0)
            payload += _varint(0) + _str(wtopic) + struct.pack(">H", len(wpayload)) + wpayload
        if username is not None:
            flags |= 0x80
            payload += _str(username)
            if password is not None:
                flags |= 0x40
                payload += _str(password)
        vh = _str("MQTT") + bytes([5, flags]) + struct.pack(">H", keepalive) + _varint(0)
        self._send_packet(0x10, vh + payload)
        ptype, _, body = self._read_packet(timeout)
        if ptype != 2:
            raise HarnessError("expected CONNACK, got packet type %r" % ptype)
        self.connack_rc = body[1]
        if self.connack_rc != 0:
            raise HarnessError("CONNACK refused: 0x%02x" % self.connack_rc)

    # -- low level --
    def _send_packet(self, first, body):
        self.sock.sendall(bytes([first]) + _varint(len(body)) + body)

    def send_raw(self, data):
        self.sock.sendall(data)

    def _recv_some(self, deadline):
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            pending = getattr(self.sock, "pending", None)
            if pending is not None and pending() > 0:
                r = [self.sock]
            else:
                r, _, _ = select.select([self.sock], [], [], left)
            if r:
                try:
                    data = self.sock.recv(65536)
                except ssl.SSLWantReadError:
                    continue
                except (ConnectionResetError, OSError):
                    data = b""
                if not data:
                    if not self.closed:
                        self.closed = True
                        self.events.append(("eof",))
                    return False
                self.buf += data
                return True

    def _take_packet(self):
        if len(self.buf) < 2:
            return None
        mult = 1
        n = 0
        i = 1
        while True:
            if i >= len(self.buf):
                return None
            b = self.buf[i]
            n += (b & 0x7F) * mult
            mult *= 128
            i += 1
            if not b & 0x80:
                break
        if len(self.buf) < i + n:
            return None
        first = self.buf[0]
        body = self.buf[i:i + n]
        self.buf = self.buf[i + n:]
        return first >> 4, first & 0x0F, body

    def _read_packet(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            p = self._take_packet()
            if p is not None:
                return p
            if self.closed or not self._recv_some(deadline):
                return None, None, None

    def _dispatch(self, ptype, flags, body):
        if ptype == 3:
            qos = (flags >> 1) & 3
            tl = struct.unpack(">H", body[:2])[0]
            topic = body[2:2 + tl].decode(errors="replace")
            off = 2 + tl
            mid = None
            if qos:
                mid = struct.unpack(">H", body[off:off + 2])[0]
                off += 2
            plen, used = _read_varint(body, off)
            off += used + plen
            self.inbox.append(Delivery(topic, bytes(body[off:]), qos, flags & 1, (flags >> 3) & 1))
            if qos == 1:
                self._send_packet(0x40, struct.pack(">H", mid))
        elif ptype == 4:
            mid = struct.unpack(">H", body[:2])[0]
            rc = body[2] if len(body) > 2 else 0
            self.acks[mid] = rc
            self.events.append(("puback", mid, rc))
        elif ptype == 5:  # PUBREC (QoS 2, first half)
            mid = struct.unpack(">H", body[:2])[0]
            rc = body[2] if len(body) > 2 else 0
            self.recs[mid] = rc
            self.events.append(("pubrec", mid, rc))
        elif ptype == 7:  # PUBCOMP
            mid = struct.unpack(">H", body[:2])[0]
            self.comps[mid] = body[2] if len(body) > 2 else 0
        elif ptype == 9:
            mid = struct.unpack(">H", body[:2])[0]
            plen, used = _read_varint(body, 2)
            self.subacks[mid] = list(body[2 + used + plen:])
        elif ptype == 14:
            self.disconnect_reason = body[0] if body else 0
            self.events.append(("disconnect", self.disconnect_reason))
        # PINGRESP and others are ignored

    def pump(self, timeout=0.0, until=None):
        """Read and dispatch packets for up to timeout seconds, or until until() is true."""
        deadline = time.monotonic() + timeout
        while True:
            p = self._take_packet()
            while p is not None:
                self._dispatch(*p)
                p = self._take_packet()
            if until is not None and until():
                return True
            if self.closed:
                return until() if until else False
            if not self._recv_some(deadline):
                p = self._take_packet()
                while p is not None:
                    self._dispatch(*p)
                    p = self._take_packet()
                return until() if until else False

    # -- MQTT operations --
    def alloc_mid(self):
        mid = self.next_mid
        self.next_mid = mid % 65535 + 1
        return mid

    def publish_packet(self, topic, payload, qos=0, retain=False, mid=None, dup=False):
        """The bytes of one PUBLISH packet (for byte-identical resends)."""
        vh = _str(topic)
        if qos:
            vh += struct.pack(">H", mid)
        vh += _varint(0)
        first = 0x30 | (0x08 if dup else 0) | (qos << 1) | (1 if retain else 0)
        body = vh + payload
        return bytes([first]) + _varint(len(body)) + body

    def publish(self, topic, payload, qos=1, retain=False, mid=None, dup=False, timeout=5.0):
        """Publish; for QoS 1 wait for PUBACK and return its reason code (None if none came)."""
        if qos and mid is None:
            mid = self.alloc_mid()
        self.last_mid = mid
        self.acks.pop(mid, None)
        self.send_raw(self.publish_packet(topic, payload, qos, retain, mid, dup))
        if not qos:
            return None
        self.pump(timeout * SLOW, until=lambda: mid in self.acks)
        return self.acks.get(mid)

    def publish_qos2(self, topic, payload, mid=None, dup=False, release=True, timeout=5.0):
        """QoS 2 publish: returns the PUBREC reason code (None if none came). With release,
        a successful PUBREC is followed by PUBREL and the PUBCOMP is awaited."""
        if mid is None:
            mid = self.alloc_mid()
        self.last_mid = mid
        self.recs.pop(mid, None)
        self.comps.pop(mid, None)
        self.send_raw(self.publish_packet(topic, payload, 2, False, mid, dup))
        self.pump(timeout * SLOW, until=lambda: mid in self.recs)
        rc = self.recs.get(mid)
        if release and rc is not None and rc < 0x80:
            self._send_packet(0x62, struct.pack(">H", mid))
            self.pump(timeout * SLOW, until=lambda: mid in self.comps)
        return rc

    def subscribe(self, filt, qos=1, timeout=5.0):
        mid = self.alloc_mid()
        body = struct.pack(">H", mid) + _varint(0) + _str(filt) + bytes([qos])
        self._send_packet(0x82, body)
        self.pump(timeout * SLOW, until=lambda: mid in self.subacks)
        rcs = self.subacks.get(mid)
        if rcs is None:
            raise HarnessError("no SUBACK for %s" % filt)
        return rcs[0]

    def collect(self, timeout=0.5):
        """Wait timeout seconds, then return and clear everything delivered so far."""
        self.pump(timeout)
        out = self.inbox
        self.inbox = []
        return out

    def wait_for(self, pred, timeout=3.0):
        """Wait until some delivery satisfies pred; returns it (and removes it) or None."""
        def found():
            return any(pred(d) for d in self.inbox)
        self.pump(timeout * SLOW, until=found)
        for i, d in enumerate(self.inbox):
            if pred(d):
                return self.inbox.pop(i)
        return None

    def ping(self, timeout=3.0):
        """True if the broker still answers PINGREQ on this connection."""
        if self.closed:
            return False
        try:
            self._send_packet(0xC0, b"")
        except OSError:
            self.closed = True
            return False
        got = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            p = self._take_packet()
            if p is None:
                if self.closed or not self._recv_some(deadline):
                    break
                continue
            if p[0] == 13:
                got.append(1)
                break
            self._dispatch(*p)
        return bool(got) and not self.closed

    def wait_closed(self, timeout=5.0):
        """True if the broker closes this connection (DISCONNECT or EOF) within timeout."""
        self.pump(timeout * SLOW, until=lambda: self.closed)
        return self.closed

    def disconnect(self):
        if not self.closed:
            try:
                self._send_packet(0xE0, b"\x00")
            except OSError:
                pass
        self.close()

    def close(self):
        """Close the socket without DISCONNECT (the broker then sends any Will)."""
        try:
            self.sock.close()
        except OSError:
            pass
        self.closed = True


def _read_varint(b, off):
    mult = 1
    n = 0
    used = 0
    while True:
        v = b[off + used]
        used += 1
        n += (v & 0x7F) * mult
        mult *= 128
        if not v & 0x80:
            return n, used


# ---------------------------------------------------------------------------------------------
# Broker

class Broker:
    def __init__(self, workdir, store, audit, policy=None, plugin=True, extra_opts=(),
                 log_types=("all",), extra_conf=(), port=None, omit=(), listener_conf=(),
                 cmd_prefix=(), tls_conf=None):
        """listener_conf: extra lines for the (plain) listener on port; tls_conf: lines for a
        second listener on tls_port (cafile, certfile, ...), or None for none; cmd_prefix:
        words run before mosquitto (the benchmark pins it to a CPU with taskset)."""
        self.workdir = workdir
        self.store = store
        self.audit = audit
        self.policy = policy
        self.plugin = plugin
        self.extra_opts = list(extra_opts)
        self.log_types = log_types
        self.extra_conf = list(extra_conf)
        self.listener_conf = list(listener_conf)
        self.omit = set(omit)
        self.cmd_prefix = list(cmd_prefix)
        self.port = port
        self.tls_conf = None if tls_conf is None else list(tls_conf)
        self.tls_port = None
        self.proc = None
        self.valgrind_errors = None
        self.starts = 0
        self.conf = os.path.join(workdir, "mosquitto.conf")
        self.logfile = os.path.join(workdir, "mosquitto.log")
        self.stderr_path = os.path.join(workdir, "mosquitto.stderr")
        self.log_offset = 0

    def write_conf(self):
        lines = ["listener %d 127.0.0.1" % self.port] + self.listener_conf
        if self.tls_conf is not None:
            lines += ["listener %d 127.0.0.1" % self.tls_port] + self.tls_conf
        lines += ["allow_anonymous true",
                 "persistence false", "log_dest file %s" % self.logfile,
                 "log_timestamp true", "sys_interval 1"]
        if os.geteuid() == 0:
            lines.append("user root")
        for t in self.log_types:
            lines.append("log_type %s" % t)
        lines += self.extra_conf
        if self.plugin:
            lines.append("plugin %s" % PLUGIN)
            if "store" not in self.omit:
                lines.append("plugin_opt_store %s" % self.store)
            if "audit_log" not in self.omit:
                lines.append("plugin_opt_audit_log %s" % self.audit)
            if self.policy:
                lines.append("plugin_opt_policy %s" % self.policy)
            for k, v in self.extra_opts:
                lines.append("plugin_opt_%s %s" % (k, v))
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def start(self, expect_fail=False, timeout=10.0 * SLOW):
        """Start mosquitto and wait for its port. With expect_fail, wait for it to exit and
        return its exit code (None if it kept running, in which case it is stopped)."""
        for attempt in range(5):
            if self.port is None or attempt:
                self.port = free_port()
            if self.tls_conf is not None and (self.tls_port is None or attempt):
                self.tls_port = free_port()
                while self.tls_port == self.port:
                    self.tls_port = free_port()
            self.write_conf()
            self.starts += 1
            self.stderr_f = open(self.stderr_path, "ab")
            cmd = self.cmd_prefix + [MOSQUITTO, "-c", self.conf]
            if VALGRIND:
                cmd = ["valgrind", "-q", "--error-exitcode=99", "--leak-check=full",
                       "--errors-for-leak-kinds=definite,indirect",
                       "--log-file=%s" % os.path.join(self.workdir, "valgrind-%p.log")] + cmd
            self.proc = subprocess.Popen(cmd, stdout=self.stderr_f,
                                         stderr=subprocess.STDOUT)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                rc = self.proc.poll()
                if rc is not None:
                    break
                if not expect_fail:
                    try:
                        for port in (self.port, self.tls_port):
                            if port is not None:
                                socket.create_connection(("127.0.0.1", port),
                                                         timeout=0.2).close()
                        return None
                    except OSError:
                        pass
                time.sleep(0.05)
            rc = self.proc.poll()
            if expect_fail:
                if rc is None:
                    time.sleep(1.0)
                    rc = self.proc.poll()
                if rc is None:
                    self.stop()
                return rc
            if rc is not None and "Address already in use" in self.all_output():
                continue
            raise HarnessError("broker did not start (exit %r)" % rc)
        raise HarnessError("broker could not get a port")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """SIGTERM and wait. Under valgrind, returns a description of any errors found."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10 * SLOW)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode
        self.proc = None
        if VALGRIND and rc == 99:
            self.valgrind_errors = "valgrind reported errors (logs: %s/valgrind-*.log)" % (
                self.workdir)
            return self.valgrind_errors
        return None

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    def hup(self, wait_text=None, timeout=5.0):
        """SIGHUP; wait for 'Reloading config.' (or wait_text) to appear in the log after now."""
        mark = self.log_size()
        self.proc.send_signal(signal.SIGHUP)
        needle = wait_text or "Reloading config"
        deadline = time.monotonic() + timeout * SLOW
        while time.monotonic() < deadline:
            if needle in self.log_since(mark):
                time.sleep(0.3)  # let the plugin's reload finish logging
                return True
            time.sleep(0.05)
        return False

    def log_size(self):
        try:
            return os.path.getsize(self.logfile)
        except OSError:
            return 0

    def log_since(self, offset):
        try:
            with open(self.logfile, "rb") as f:
                f.seek(offset)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def all_output(self):
        out = self.log_since(0)
        try:
            with open(self.stderr_path, "rb") as f:
                out += f.read().decode(errors="replace")
        except OSError:
            pass
        return out

    def status(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            return dict(l.split(":", 1) for l in f.read().splitlines() if ":" in l)


# ---------------------------------------------------------------------------------------------
# Identities and the lab

class Identity:
    def __init__(self, name, workdir, role):
        self.name = name
        self.role = role
        self.priv = os.path.join(workdir, name + ".pem")
        self.pub = os.path.join(workdir, name + ".pub.pem")
        if have_tool():
            run([SRUP, "keygen", "--out", os.path.join(workdir, name)])
            self.id = int(run([SRUP, "id"]).stdout.decode().strip(), 16)
        else:
            run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                 "rsa_keygen_bits:2048", "-out", self.priv])
            run(["openssl", "pkey", "-in", self.priv, "-pubout", "-out", self.pub])
            self.id = (random.getrandbits(64) & ~(0xF << 12)) | (0x4 << 12)
        self.hex = id_text(self.id)
        self.seq = 0

    def next_seq(self):
        self.seq += 1
        return self.seq


# One openssl configuration for the test PKI: a CA, and leaf certificates for the broker and
# the clients (the subject always comes from -subj).
PKI_CNF = """[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth, serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


class Pki:
    """A throwaway CA in dir (P-256, fast to make), the broker's certificate for localhost, and
    client certificates signed by the CA, one `openssl req` each."""

    def __init__(self, d):
        self.dir = d
        self.cnf = os.path.join(d, "pki.cnf")
        with open(self.cnf, "w") as f:
            f.write(PKI_CNF)
        self.ca = os.path.join(d, "ca.crt")
        self.ca_key = os.path.join(d, "ca.key")
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:P-256", "-nodes", "-keyout", self.ca_key, "-out", self.ca,
             "-subj", "/CN=srup-test-ca", "-days", "2", "-config", self.cnf,
             "-extensions", "ca"])
        self.broker = self.cert("broker", "/CN=localhost")
        self.contexts = {}

    def cert(self, name, subj, key=None):
        """A certificate for subj (openssl -subj syntax: "/CN=x", "/CN=a/CN=b", "/O=x") signed
        by the CA, for key (a PEM private key file; None: a new P-256 key). (crt, key)."""
        crt = os.path.join(self.dir, name + ".crt")
        cmd = ["openssl", "req", "-x509", "-subj", subj, "-CA", self.ca, "-CAkey", self.ca_key,
               "-days", "2", "-config", self.cnf, "-extensions", "leaf", "-out", crt]
        if key is None:
            key = os.path.join(self.dir, name + ".tlskey")
            cmd += ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", key]
        else:
            cmd += ["-key", key]
        run(cmd)
        return crt, key

    def context(self, cert):
        """An ssl.SSLContext presenting cert ((crt, key)) and trusting the CA (cached)."""
        ctx = self.contexts.get(cert)
        if ctx is None:
            ctx = ssl.create_default_context(cafile=self.ca)
            ctx.check_hostname = False
            ctx.load_cert_chain(*cert)
            self.contexts[cert] = ctx
        return ctx

    def listener_conf(self):
        """The lines of a mutual-TLS listener: a client certificate from this CA is required.
        Not use_identity_as_username: the plugin reads the CN from the TLS session."""
        crt, key = self.broker
        return ["cafile %s" % self.ca, "certfile %s" % crt, "keyfile %s" % key,
                "require_certificate true"]


class Lab:
    """A temp dir with keys, a key store, an audit log and a broker with the plugin.

    Identities: server, server2, dev1, dev2, dev3, observer (registered), stranger (not), and
    admin (not registered; named `admin` in the lab's policy, reads the counters).

    The broker has two listeners: a mutual-TLS one (broker.tls_port; every identity has a
    certificate from the lab's CA with CN = its id in text form, on its SRUP key) and a plain
    one (broker.port), where a client has no certificate and so, under the default
    `identity certificate`, no SRUP identity. connect(ident) uses ident's certificate;
    connect(None, ...) and connect(..., plain=True) use the plain listener.

    policy None: the shipped policy plus `admin <admin id>` (lab.policy in the temp dir);
    policy "builtin": no plugin_opt_policy at all (the policy compiled into the plugin).
    usernames: also send username = the id text over TLS (for `identity username` labs)."""

    def __init__(self, policy=None, start=True, names=None, extra_opts=(), log_types=("all",),
                 plugin=True, tls=True, usernames=False, tls_extra=(), extra_conf=()):
        self.dir = tempfile.mkdtemp(prefix="srup-it-")
        self.store = os.path.join(self.dir, "store")
        os.makedirs(self.store)
        self.audit_path = os.path.join(self.dir, "audit.jsonl")
        self.keep = os.environ.get("SRUP_KEEP_TMP") == "1"
        self.usernames = usernames
        self.ids = {}
        roles = list(names or [("server", "server"), ("server2", "server"),
                               ("dev1", "device"), ("dev2", "device"), ("dev3", "device"),
                               ("observer", "observer"), ("stranger", None)])
        if "admin" not in [n for n, _ in roles]:
            roles.append(("admin", None))
        for name, role in roles:
            ident = Identity(name, self.dir, role)
            self.ids[name] = ident
            setattr(self, name, ident)
            if role is not None:
                self.keys_add(ident)
        self.pki = None
        self.certs = {}
        if tls:
            self.pki = Pki(self.dir)
            for ident in self.ids.values():
                self.certs[ident.name] = self.pki.cert(ident.name, "/CN=%s" % ident.hex,
                                                       key=ident.priv)
        if policy is None:
            policy = os.path.join(self.dir, "lab.policy")
            with open(policy, "w") as f:
                f.write(self.policy_text())
        elif policy == "builtin":
            policy = None
        self.broker = Broker(self.dir, self.store, self.audit_path, policy=policy,
                             plugin=plugin, extra_opts=extra_opts, log_types=log_types,
                             extra_conf=extra_conf,
                             tls_conf=self.pki.listener_conf() + list(tls_extra)
                             if self.pki else None)
        self.clients = []
        self.n_clients = 0
        self.token_n = 0
        self.sysmon = None
        self.sysmon_start = None
        self.sysvals = {}
        if start:
            self.broker.start()

    def policy_text(self, extra="", identity=None):
        """The shipped policy, `admin <lab admin>`, then extra lines; identity: another
        identity source than the shipped one (certificate)."""
        with open(SHIPPED_POLICY) as f:
            text = f.read()
        if identity is not None:
            if "\nidentity certificate\n" not in text:
                raise HarnessError("no 'identity certificate' line in %s" % SHIPPED_POLICY)
            text = text.replace("\nidentity certificate\n", "\nidentity %s\n" % identity)
        return text + "\nadmin %s\n" % self.admin.hex + extra

    # -- store --
    def keys_add(self, ident, role=None):
        if not have_tool():
            raise HarnessError("srup tool missing at %s: cannot register keys" % SRUP)
        run([SRUP, "keys", "add", "--store", self.store, "--id", ident.hex, "--role",
             role or ident.role, "--key", ident.pub])

    def keys_revoke(self, ident):
        run([SRUP, "keys", "revoke", "--store", self.store, "--id", ident.hex])

    # -- messages --
    def token(self):
        self.token_n += 1
        return ("%08x-0000-4000-8000-%012x" % (os.getpid(), self.token_n)).encode()

    def msg(self, sender, mtype, seq=None, key=None, token=None, version=5, **fields):
        """A validly signed message from sender (an Identity). seq defaults to the sender's next.
        key: sign with another identity's key (a forgery). Uses `srup encode` when present."""
        if seq is None:
            seq = sender.next_seq()
        elif seq > sender.seq and seq < 1 << 62:
            sender.seq = seq
        tok = token if token is not None else self.token()
        keypath = (key or sender).priv
        if have_tool() and os.environ.get("SRUP_HARNESS_ENCODER") != "python" \
                and version == 5:
            return self.srup_encode(sender.id, mtype, seq, tok, keypath, fields)
        return python_encode(sender.id, mtype, seq, tok, keypath, fields, version)

    def srup_encode(self, sender_id, mtype, seq, tok, keypath, fields):
        j = {"version": 5, "type": mtype, "sequence_id": "0x%016x" % seq,
             "sender_id": "0x%016x" % sender_id, "token_hex": tok.hex()}
        for k, v in fields.items():
            if isinstance(v, bytes):
                j[k + "_hex"] = v.hex()
            elif k in ("device_id", "observer_id", "joining_device_id", "target_id",
                       "source_id"):
                j[k] = "%016x" % v
            else:
                j[k] = v
        out = run([SRUP, "encode", "--key", keypath, "--hex", "-"],
                  input=json.dumps(j).encode()).stdout
        return bytes.fromhex(out.decode().strip())

    # -- clients --
    def connect(self, ident=None, client_id=None, username=None, will=None, plain=False,
                cert=None, **kw):
        """Connect as ident over TLS with ident's certificate (or with cert, a (crt, key) pair
        from lab.pki.cert). ident None without cert, or plain=True: the plain listener, where
        username defaults to ident's id text (a claim, proven by nothing). Over TLS no username
        is sent unless given (or the lab was made with usernames=True)."""
        self.n_clients += 1
        if client_id is None:
            client_id = "%s-%d" % (ident.name if ident else "anon", self.n_clients)
        tls = None
        port = self.broker.port
        if not plain and (ident is not None or cert is not None):
            if self.pki is None:
                raise HarnessError("this lab has no TLS listener: connect(..., plain=True)")
            if cert is None and ident.name not in self.certs:  # an identity made later
                self.certs[ident.name] = self.pki.cert(ident.name, "/CN=%s" % ident.hex,
                                                       key=ident.priv)
            tls = self.pki.context(cert or self.certs[ident.name])
            port = self.broker.tls_port
        if username is None and ident is not None and (tls is None or self.usernames):
            username = ident.hex
        c = Client(port, client_id, username=username, will=will, tls=tls, **kw)
        self.clients.append(c)
        return c

    def close_clients(self):
        for c in self.clients:
            c.close()
        self.clients = []

    def join(self, server, device):
        """Make device a member of server by the simple join flow; returns True if the
        JOIN_REQ and the RESPONSE JOIN_SUCCESS were both accepted."""
        d = self.connect(device)
        s = self.connect(server)
        tok = self.token()
        rc1 = d.publish("SRUP/servers/%s/%s" % (server.hex, device.hex),
                        self.msg(device, "JOIN_REQ", token=tok))
        rc2 = s.publish("SRUP/%s" % device.hex,
                        self.msg(server, "RESPONSE", token=tok, status=JOIN_SUCCESS))
        d.disconnect()
        s.disconnect()
        return rc1 in (RC_OK, RC_NO_SUBSCRIBERS) and rc2 in (RC_OK, RC_NO_SUBSCRIBERS)

    # -- audit and counters --
    def audit_lines(self):
        try:
            with open(self.audit_path) as f:
                return [l for l in f.read().splitlines() if l.strip()]
        except OSError:
            return []

    def audit(self, since=0):
        out = []
        for l in self.audit_lines()[since:]:
            try:
                out.append(json.loads(l))
            except ValueError:
                out.append({"_unparsable": l})
        return out

    def audit_mark(self):
        return len(self.audit_lines())

    def wait_audit(self, mark, pred, timeout=2.0):
        """The first audit record after mark satisfying pred, or None."""
        deadline = time.monotonic() + timeout * SLOW
        while True:
            for r in self.audit(mark):
                if pred(r):
                    return r
            if time.monotonic() > deadline:
                return None
            time.sleep(0.05)

    def counters(self, wait=2.5):
        """{name: int} for $SYS/broker/srup/# (name without the prefix, e.g. "accepted",
        "dropped/replay"), from a subscriber kept for the life of the broker. $SYS is refreshed
        every sys_interval (1 s), so this waits a bit more than that for fresh values."""
        if self.sysmon is not None and self.sysmon_start != self.broker.starts:
            self.sysmon.close()
        if self.sysmon is None or self.sysmon.closed:
            self.sysmon_start = self.broker.starts
            # The counters are for admins: the lab's admin certificate (or, in a lab without
            # TLS, its claimed username, which only an `identity username` policy honours).
            if self.pki is not None:
                self.sysmon = Client(self.broker.tls_port, "sys-monitor-%d" % os.getpid(),
                                     tls=self.pki.context(self.certs["admin"]))
            else:
                self.sysmon = Client(self.broker.port, "sys-monitor-%d" % os.getpid(),
                                     username=self.admin.hex)
            rc = self.sysmon.subscribe("$SYS/broker/srup/#", qos=0)
            if rc >= 0x80:
                raise HarnessError("the lab admin cannot subscribe to $SYS/broker/srup/#: "
                                   "SUBACK 0x%02x (is `admin %s` in the policy?)"
                                   % (rc, self.admin.hex))
            self.sysvals = {}
        deadline = time.monotonic() + wait * SLOW
        while time.monotonic() < deadline:
            for d in self.sysmon.collect(0.2):
                name = d.topic[len("$SYS/broker/srup/"):]
                try:
                    self.sysvals[name] = int(d.payload.decode().strip())
                except ValueError:
                    self.sysvals[name] = d.payload.decode(errors="replace")
        return dict(self.sysvals)

    def cleanup(self, failed=False):
        """Stop everything; returns True if valgrind found errors (SRUP_IT_VALGRIND=1)."""
        self.close_clients()
        if self.sysmon is not None:
            self.sysmon.close()
        self.broker.stop()
        vg = self.broker.valgrind_errors
        if vg:
            log("    FAIL: " + vg)
            for name in sorted(os.listdir(self.dir)):
                if name.startswith("valgrind-"):
                    with open(os.path.join(self.dir, name)) as f:
                        log(f.read()[-6000:])
            failed = True
        if failed:
            log("---- broker log (%s) ----" % self.broker.logfile)
            text = self.broker.all_output()
            lines = text.splitlines()
            if len(lines) > 300:
                log("(first 60 and last 240 of %d lines)" % len(lines))
                lines = lines[:60] + ["..."] + lines[-240:]
            log("\n".join(lines))
            log("---- end of broker log ----")
        if not self.keep and not failed:
            shutil.rmtree(self.dir, ignore_errors=True)
        elif failed:
            log("kept temp dir %s" % self.dir)
        return bool(vg)


def username_lab(passwords=None, **kw):
    """A started lab under `identity username` where the broker authenticates every username:
    on the TLS listener use_identity_as_username makes it the certificate CN, and on the plain
    listener a username needs its password from a password_file (passwords: {identity name:
    password}, the username being that identity's id text; a client without a username stays
    anonymous, with no identity)."""
    lab = Lab(start=False, **kw)
    pw = os.path.join(lab.dir, "passwords")
    users = dict((lab.ids[n].hex, secret) for n, secret in (passwords or {}).items())
    users.setdefault("nobody", "x%d" % random.getrandbits(64))  # mosquitto wants one user
    for i, (user, secret) in enumerate(sorted(users.items())):
        run(["mosquitto_passwd", "-b"] + (["-c"] if i == 0 else []) + [pw, user, secret])
    policy = os.path.join(lab.dir, "username.policy")
    with open(policy, "w") as f:
        f.write(lab.policy_text(identity="username"))
    lab.broker.policy = policy
    lab.broker.tls_conf.append("use_identity_as_username true")
    lab.broker.extra_conf.append("password_file %s" % pw)
    lab.broker.start()
    return lab


# ---------------------------------------------------------------------------------------------
# Assertion helpers shared by the test files

def expect_drop(lab, check, client, topic, payload, reason, label, watchers=(), qos=1,
                retain=False):
    """Publish and check: PUBACK 0x87 (QoS 1), no watcher gets the payload, and the first
    drop record in the audit log after the publish has the given reason (None: any reason).
    Returns the audit record (or None)."""
    mark = lab.audit_mark()
    rc = client.publish(topic, payload, qos=qos, retain=retain)
    if qos:
        check(rc == RC_NOT_AUTHORIZED, "%s: PUBACK %s, want 0x87" % (label, rc_name(rc)))
    not_delivered(check, watchers, payload, label)
    rec = lab.wait_audit(mark, lambda r: r.get("verdict") == "drop")
    if reason is not None:
        check(rec is not None and rec.get("reason") == reason,
              "%s: audit reason %r, want %r" % (label, rec and rec.get("reason"), reason))
    else:
        check(rec is not None, "%s: no drop record in the audit log" % label)
    return rec


def not_delivered(check, watchers, payload, label, wait=0.15):
    for i, w in enumerate(watchers):
        w.pump(wait * SLOW if i == 0 else 0.0)
        hits = [d for d in w.inbox if d.payload == payload]
        w.inbox = [d for d in w.inbox if d.payload != payload]
        check(not hits, "%s: delivered to %s on %s" % (label, w.client_id,
                                                        hits[0].topic if hits else ""))


def expect_accept(lab, check, client, topic, payload, label, receivers=(), qos=1,
                  retain=False):
    """Publish and check: PUBACK 0x00/0x10, and every receiver gets exactly this payload."""
    rc = client.publish(topic, payload, qos=qos, retain=retain)
    ok = True
    if qos:
        ok = check(delivered(rc), "%s: PUBACK %s, want 0x00" % (label, rc_name(rc)))
    for r in receivers:
        d = r.wait_for(lambda d: d.payload == payload and d.topic == topic, timeout=3.0)
        ok = check(d is not None, "%s: not delivered to %s" % (label, r.client_id)) and ok
    return ok


def counter_delta(before, after, name):
    return after.get(name, 0) - before.get(name, 0)


def python_encode(sender_id, mtype, seq, tok, keypath, fields, version=5):
    body = body_bytes(mtype, fields)
    sig = openssl_sign(keypath, unsigned_bytes(version, mtype, seq, sender_id, tok, body))
    return wire(version, mtype, seq, sender_id, tok, sig, body)


# ---------------------------------------------------------------------------------------------
# A tiny test runner: each test is a function taking the lab; the file prints "N passed, N failed"

class Check:
    def __init__(self):
        self.failures = []

    def __call__(self, cond, what):
        if not cond:
            self.failures.append(what)
            log("    FAIL: " + what)
        return cond


def rc_name(rc):
    return "None" if rc is None else "0x%02x" % rc


def delivered(rc):
    return rc in (RC_OK, RC_NO_SUBSCRIBERS)


def main(tests, lab_factory=None, needs_plugin=True):
    """Run tests (list of functions f(lab, check)) against one lab; exit 0 only if all pass.
    A test may also be a tuple (function, factory) to get a fresh lab of its own."""
    if needs_plugin and not os.path.exists(PLUGIN):
        log("plugin not built: %s" % PLUGIN)
        log("0 passed, %d failed" % len(tests))
        sys.exit(1)
    if not have_tool():
        log("srup tool not built: %s" % SRUP)
        log("0 passed, %d failed" % len(tests))
        sys.exit(1)
    passed = 0
    failed = 0
    shared = None
    any_fail = False
    try:
        for t in tests:
            factory = None
            if isinstance(t, tuple):
                t, factory = t
            name = t.__name__
            lab = None
            check = Check()
            log("[ RUN  ] %s" % name)
            t0 = time.monotonic()
            try:
                if factory is not None:
                    lab = factory()
                else:
                    if shared is None:
                        shared = (lab_factory or Lab)()
                    lab = shared
                t(lab, check)
            except Exception as e:
                check.failures.append("exception: %r" % e)
                traceback.print_exc(file=sys.stdout)
            finally:
                if lab is not None and lab is not shared:
                    if lab.cleanup(failed=bool(check.failures)):
                        check.failures.append("valgrind errors")
            dt = time.monotonic() - t0
            if check.failures:
                failed += 1
                any_fail = True
                log("[ FAIL ] %s (%.1f s): %d check(s) failed" % (name, dt,
                                                                    len(check.failures)))
            else:
                passed += 1
                log("[  OK  ] %s (%.1f s)" % (name, dt))
    finally:
        if shared is not None and shared.cleanup(failed=any_fail):
            failed += 1
            log("[ FAIL ] valgrind on the shared broker")
    log("%d passed, %d failed" % (passed, failed))
    sys.exit(0 if failed == 0 else 1)
