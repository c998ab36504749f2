# SPDX-License-Identifier: MIT
# mqtt5.py - a small MQTT v5 client for the lab's attacker (standard library only): plain or
# mutual-TLS connections, any client id and username, a Will with a binary payload, QoS 0/1
# publishes that return the broker's PUBACK reason code, subscriptions, and an abrupt close
# (no DISCONNECT, so the broker sends the Will). No QoS 2, no reconnects, no keep-alive pings:
# each connection lives for one attack.
import select
import socket
import ssl
import struct
import time

NOT_AUTHORIZED = 0x87


def _varint(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _str(s):
    if isinstance(s, str):
        s = s.encode()
    return struct.pack(">H", len(s)) + s


class Closed(Exception):
    pass


class Client:
    """One MQTT v5 connection. tls: None, or (cafile, certfile, keyfile)."""

    def __init__(self, host, port, client_id, username=None, tls=None, will=None, timeout=5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        if tls is not None:
            ctx = ssl.create_default_context(cafile=tls[0])
            ctx.load_cert_chain(tls[1], tls[2])
            self.sock = ctx.wrap_socket(self.sock, server_hostname=host)
        self.buf = b""
        self.mid = 0
        self.messages = []  # (topic, payload) delivered to this client
        self.closed = False
        flags = 0x02  # clean start
        payload = _str(client_id)
        if will is not None:
            topic, data, qos = will
            flags |= 0x04 | (qos << 3)
            payload += _varint(0) + _str(topic) + struct.pack(">H", len(data)) + data
        if username is not None:
            flags |= 0x80
            payload += _str(username)
        body = _str("MQTT") + bytes([5, flags]) + struct.pack(">H", 60) + _varint(0) + payload
        self._send(0x10, body)
        ptype, body = self._wait(lambda t, b: t == 0x20, timeout)
        self.connack = body[1] if len(body) > 1 else None

    def _send(self, first, body):
        self.sock.sendall(bytes([first]) + _varint(len(body)) + body)

    def _packet(self):
        """The next complete packet from the buffer as (first byte, body), or None."""
        if len(self.buf) < 2:
            return None
        n = 0
        mult = 1
        i = 1
        while True:
            if i >= len(self.buf) or i > 4:
                return None
            b = self.buf[i]
            n += (b & 0x7F) * mult
            mult *= 128
            i += 1
            if not b & 0x80:
                break
        if len(self.buf) < i + n:
            return None
        first, body = self.buf[0], self.buf[i:i + n]
        self.buf = self.buf[i + n:]
        return first, body

    def _handle(self, first, body):
        """Deliveries are kept (and acknowledged); returns (packet type, body)."""
        ptype = first & 0xF0
        if ptype == 0x30 and len(body) >= 2:
            qos = (first >> 1) & 3
            tl = struct.unpack(">H", body[:2])[0]
            topic = body[2:2 + tl].decode(errors="replace")
            off = 2 + tl
            if qos:
                mid = body[off:off + 2]
                off += 2
                self._send(0x40, mid)
            plen = 0
            mult = 1
            while off < len(body):
                b = body[off]
                off += 1
                plen += (b & 0x7F) * mult
                mult *= 128
                if not b & 0x80:
                    break
            self.messages.append((topic, bytes(body[off + plen:])))
        return ptype, body

    def _wait(self, want, timeout):
        """Read until a packet satisfies want(type, body); None on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            p = self._packet()
            while p is not None:
                t, b = self._handle(*p)
                if want(t, b):
                    return t, b
                p = self._packet()
            left = deadline - time.monotonic()
            if left <= 0:
                return None, None
            pending = isinstance(self.sock, ssl.SSLSocket) and self.sock.pending()
            if not pending and not select.select([self.sock], [], [], left)[0]:
                continue
            try:
                data = self.sock.recv(65536)
            except (OSError, ssl.SSLError):
                data = b""
            if not data:
                self.closed = True
                raise Closed()
            self.buf += data

    def next_mid(self):
        self.mid = self.mid % 65535 + 1
        return self.mid

    def publish(self, topic, payload, qos=1, timeout=5.0):
        """QoS 1: the PUBACK reason code (0 delivered, 0x87 refused), or None if the broker
        closed the connection or did not answer. QoS 0: None (the broker answers nothing)."""
        body = _str(topic)
        mid = None
        if qos:
            mid = self.next_mid()
            body += struct.pack(">H", mid)
        body += _varint(0) + payload
        try:
            self._send(0x30 | (qos << 1), body)
            if not qos:
                return None
            t, b = self._wait(lambda t, b: t == 0x40 and b[:2] == struct.pack(">H", mid),
                              timeout)
        except (Closed, OSError):
            return None
        if t is None:
            return None
        return b[2] if len(b) > 2 else 0

    def subscribe(self, filt, qos=1, timeout=5.0):
        """The SUBACK reason code (0-2 granted, >= 0x80 refused), or None."""
        mid = self.next_mid()
        body = struct.pack(">H", mid) + _varint(0) + _str(filt) + bytes([qos])
        try:
            self._send(0x82, body)
            t, b = self._wait(lambda t, b: t == 0x90 and b[:2] == struct.pack(">H", mid),
                              timeout)
        except (Closed, OSError):
            return None
        if t is None or len(b) < 3:
            return None
        plen = b[2]  # properties shorter than 128 bytes: one varint byte
        return b[3 + plen] if len(b) > 3 + plen else None

    def pump(self, timeout):
        """Read (and keep deliveries) for timeout seconds; False once the connection closed."""
        try:
            self._wait(lambda t, b: False, timeout)
        except (Closed, OSError):
            return False
        return True

    def ping(self, timeout=2.0):
        try:
            self._send(0xC0, b"")
            t, _ = self._wait(lambda t, b: t == 0xD0, timeout)
        except (Closed, OSError):
            return False
        return t is not None

    def disconnect(self):
        try:
            self._send(0xE0, b"")
        except OSError:
            pass
        self.abort()

    def abort(self):
        """Close the socket with no DISCONNECT: the broker publishes the Will, if any."""
        try:
            self.sock.close()
        except OSError:
            pass
        self.closed = True
