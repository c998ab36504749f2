#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# test_registry.py - srup-registry over real HTTPS (curl and Python's http.client), next to a real
# mosquitto with the plugin on 127.0.0.1 sharing its store: every endpoint of the KeyEx API,
# every class of bad input (a clear error, nothing changed), registration modes, rate limits,
# slow clients, the request log, 200 concurrent registrations from two registry processes, and
# a device that registers with `srup-device register` and is then accepted by the running broker
# (no reload) over mutual TLS with the certificate the registry issued.
import base64
import datetime
import http.client
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
import srupharness as h  # noqa: E402
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

REG = os.path.join(h.BUILD, "tools", "srup-registry")
DEVICE = os.path.join(h.BUILD, "tools", "srup-device")
# Functional tests come from one address faster than the default rate limit allows.
FAST = "rate_limit = 100000\nrate_burst = 100000\nper_address_connections = 256\n"
PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.MAX_LENGTH)


def pub_pem(key):
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def body_of(pem):
    return "".join(l for l in pem.decode().splitlines() if not l.startswith("-----"))


def new_id():
    return "%x" % ((int.from_bytes(os.urandom(8), "big") & ~(0xF << 12)) | (0x4 << 12) | 1 << 60)


class Registry:
    def __init__(self, lab, name, mode="open", extra=""):
        self.lab = lab
        self.dir = os.path.join(lab.dir, name)
        os.makedirs(self.dir)
        self.key = rsa.generate_private_key(65537, 2048)
        with open(os.path.join(self.dir, "signing.pem"), "wb") as f:
            f.write(self.key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
        self.id = new_id()
        self.port = h.free_port()
        crt, key = lab.pki.cert("registry-" + name, "/CN=localhost")
        self.log = os.path.join(self.dir, "requests.jsonl")
        self.tokens = os.path.join(self.dir, "tokens")
        self.conf = os.path.join(self.dir, "registry.conf")
        with open(self.conf, "w") as f:
            f.write("listen_address = 127.0.0.1\nlisten_port = %d\ntls_cert = %s\ntls_key = %s\n"
                    "store = %s\nca_cert = %s\nca_key = %s\nidentity = %s\n"
                    "signing_key = %s/signing.pem\nbroker_url = mqtts://localhost:%d\n"
                    "default_c2 = %s\nmode = %s\ntokens_file = %s\nlog_file = %s\ntimeout = 3\n%s"
                    % (self.port, crt, key, lab.store, lab.pki.ca, lab.pki.ca_key, self.id,
                       self.dir, lab.broker.tls_port, lab.server.hex, mode, self.tokens,
                       self.log, extra))
        self.err = open(os.path.join(self.dir, "stderr"), "w")
        self.proc = subprocess.Popen([REG, "--config", self.conf, "run"], stdout=self.err,
                                     stderr=subprocess.STDOUT)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        self.ctx = ssl.create_default_context(cafile=lab.pki.ca)

    def request(self, method, path, body=None, raw=None, prefix="/KeyEx/register/"):
        c = http.client.HTTPSConnection("localhost", self.port, context=self.ctx, timeout=20)
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None
                                            else None)
        hdr = {"Content-Type": "application/json"} if data is not None else {}
        c.request(method, prefix + path, body=data, headers=hdr)
        r = c.getresponse()
        out = r.read()
        c.close()
        try:
            return r.status, json.loads(out)
        except ValueError:
            return r.status, out.decode(errors="replace")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=20)
        self.err.close()

    def log_lines(self):
        with open(self.log) as f:
            return [json.loads(l) for l in f if l.strip()]


def key_count(lab):
    out = h.run([h.SRUP, "keys", "list", "--store", lab.store]).stdout.decode()
    return len([l for l in out.splitlines() if l.strip() and not l.startswith("id")])


def key_line(lab, ident):
    r = h.run([h.SRUP, "keys", "show", "--store", lab.store, "--id", ident], check=False)
    return r.stdout.decode()


def register(reg, ident, key, **extra):
    body = {"identity": ident, "key": body_of(pub_pem(key)), "type": "default"}
    body.update(extra)
    return reg.request("POST", "register", body)


def sign_b64(key, data):
    return base64.encodebytes(key.sign(data, PSS, hashes.SHA256())).decode()


def csr_for(cn, key, o="SRUP_DEVICE"):
    b = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o),
         x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
    return b.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def lab_factory():
    return h.Lab()


# ---------------------------------------------------------------------------------------------

def test_endpoints(lab, check):
    reg = Registry(lab, "main", extra=FAST)
    try:
        # status, both prefixes, curl and http.client.
        for prefix in ("/KeyEx/register/", "/register/"):
            st, js = reg.request("GET", "status", prefix=prefix)
            check(st == 200 and js == {"active": True, "identity": reg.id},
                  "status under %s: %r" % (prefix, js))
        r = subprocess.run(["curl", "-sS", "--cacert", lab.pki.ca,
                            "https://localhost:%d/KeyEx/register/status" % reg.port],
                           stdout=subprocess.PIPE, text=True, timeout=30)
        check(r.returncode == 0 and json.loads(r.stdout or "{}").get("identity") == reg.id,
              "curl over HTTPS: %r" % r.stdout)
        r = subprocess.run(["curl", "-sS", "http://localhost:%d/KeyEx/register/status" % reg.port],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        check(r.returncode != 0 or b"active" not in r.stdout, "no plain HTTP by default")

        # register.
        dev = rsa.generate_private_key(65537, 2048)
        ident = new_id()
        n0 = key_count(lab)
        st, js = register(reg, ident, dev)
        server_pem = open(lab.server.pub, "rb").read()
        key_ok = False
        try:
            key_ok = serialization.load_pem_public_key(base64.b64decode(js.get("key", ""))) \
                .public_bytes(serialization.Encoding.PEM,
                              serialization.PublicFormat.SubjectPublicKeyInfo) == server_pem
        except Exception:
            key_ok = False
        check(st == 201 and js.get("broker") == "mqtts://localhost:%d" % lab.broker.tls_port and
              key_ok and "\n" not in js.get("key", "\n") and
              js.get("default_c2") == lab.server.hex,
              "register: 201 with broker, the C2's key and default_c2: %r" % js)
        check(key_count(lab) == n0 + 1 and "role: device" in key_line(lab, ident) and
              "status: active" in key_line(lab, ident), "register: the key is in the store")
        st, _ = register(reg, ident, dev)
        check(st == 201 and key_count(lab) == n0 + 1, "the same registration again: 201, once")
        st, js = register(reg, ident, rsa.generate_private_key(65537, 2048))
        check(st == 409, "the identity with another key: 409 (%r)" % js)
        st, js = register(reg, lab.dev1.hex, rsa.generate_private_key(65537, 2048))
        check(st == 409, "a broker-registered identity with another key: 409")
        obs = new_id()
        st, _ = reg.request("POST", "register", {"identity": obs, "key": body_of(pub_pem(dev)),
                                                 "type": "observer"})
        check(st == 201 and "role: observer" in key_line(lab, obs), "type observer: role observer")

        # validate.
        st, js = reg.request("POST", "validate", {"identity": ident,
                                                  "signature": sign_b64(dev, ident.encode())})
        ok = False
        if st == 200:
            try:
                reg.key.public_key().verify(base64.b64decode(js["signature"]), reg.id.encode(),
                                            PSS, hashes.SHA256())
                ok = js["identity"] == reg.id
            except Exception:
                ok = False
        check(ok, "validate: 200, answered with the registry's own PSS signature")
        st, _ = reg.request("POST", "validate", {"identity": ident, "signature":
                                                 sign_b64(rsa.generate_private_key(65537, 2048),
                                                          ident.encode())})
        check(st == 403, "validate with another key's signature: 403")
        st, _ = reg.request("POST", "validate", {"identity": new_id(), "signature":
                                                 sign_b64(dev, b"x")})
        check(st == 404, "validate of an unknown identity: 404")

        # access.
        acc = rsa.generate_private_key(65537, 2048)
        csr = csr_for(ident, acc)
        st, js = reg.request("POST", "access", {"identity": ident,
                                                "csr": base64.encodebytes(csr).decode(),
                                                "signature": sign_b64(dev, csr)})
        cert = None
        if st == 200:
            cert = x509.load_pem_x509_certificate(base64.b64decode(js["certificate"]))
            ca = base64.b64decode(js["CA_certificate"])
        check(cert is not None and
              cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == ident and
              cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value ==
              "SRUP_DEVICE" and cert.signature_hash_algorithm.name == "sha256" and
              abs((cert.not_valid_after - cert.not_valid_before).days - 365) <= 1 and
              ca == open(lab.pki.ca, "rb").read(),
              "access: a client certificate CN=id O=SRUP_DEVICE SHA-256 365 days, and the CA")
        other = csr_for(new_id(), acc)
        st, js = reg.request("POST", "access", {"identity": ident,
                                                "csr": base64.encodebytes(other).decode(),
                                                "signature": sign_b64(dev, other)})
        check(st == 403 and "CN" in js.get("error", ""), "access: a CSR for another CN: 403")
        st, _ = reg.request("POST", "access", {"identity": ident,
                                               "csr": base64.encodebytes(csr).decode(),
                                               "signature": sign_b64(acc, csr)})
        check(st == 403, "access: the request signed by another key: 403")
        der = x509.load_pem_x509_csr(csr).public_bytes(serialization.Encoding.DER)
        bad = bytearray(der)
        bad[-5] ^= 1  # the CSR's own signature
        badpem = (b"-----BEGIN CERTIFICATE REQUEST-----\n" + base64.encodebytes(bytes(bad)) +
                  b"-----END CERTIFICATE REQUEST-----\n")
        st, js = reg.request("POST", "access", {"identity": ident,
                                                "csr": base64.encodebytes(badpem).decode(),
                                                "signature": sign_b64(dev, badpem)})
        check(st in (400, 403), "access: a CSR whose own signature fails: %d %r" % (st, js))

        # get_key, get_type, c2_check.
        st, text = reg.request("GET", "get_key/" + ident)
        check(st == 200 and base64.b64decode(text) == pub_pem(dev) and
              all(len(l) <= 76 for l in text.splitlines()),
              "get_key: base64 (76-column lines) of the PEM")
        st, text = reg.request("GET", "get_type/" + obs)
        check(st == 200 and text == "observer", "get_type: %r" % text)
        for path, want in (("get_key/" + new_id(), 404), ("get_key/XYZ", 400),
                           ("c2_check/" + lab.server.hex, 200), ("c2_check/" + ident, 404),
                           ("c2_check/" + new_id(), 404), ("c2_check/0x12", 400),
                           ("no_such", 404)):
            st, _ = reg.request("GET", path)
            check(st == want, "GET %s: %d (want %d)" % (path, st, want))

        # c2/: a server registers with the token issued for its key.
        srv = rsa.generate_private_key(65537, 2048)
        pem_path = os.path.join(reg.dir, "c2.pub.pem")
        with open(pem_path, "wb") as f:
            f.write(pub_pem(srv))
        tok = subprocess.run([REG, "--config", reg.conf, "token", "c2", "--key", pem_path],
                             stdout=subprocess.PIPE, text=True).stdout.strip()
        sid = new_id()
        st, _ = reg.request("POST", "c2/", {"identity": sid, "key": body_of(pub_pem(srv)),
                                            "signature": tok})
        check(st == 201 and "role: server" in key_line(lab, sid), "c2/ with its token: 201")
        st, _ = reg.request("GET", "c2_check/" + sid)
        check(st == 200, "c2_check of the new server: 200")
        st, _ = reg.request("POST", "c2/", {"identity": new_id(),
                                            "key": body_of(pub_pem(rsa.generate_private_key(
                                                65537, 2048))), "signature": tok})
        check(st == 403, "c2/ with a token for another key: 403")

        # The request log: one JSON line per request.
        lines = reg.log_lines()
        check(len(lines) >= 20 and all({"time", "address", "endpoint", "status", "result"} <=
                                       set(l) for l in lines) and
              any(l.get("identity") == ident and l["status"] == 201 for l in lines),
              "the log has one JSON line per request (%d lines)" % len(lines))
        # logrotate: rename the log, SIGHUP, and the next request goes to a new file.
        os.rename(reg.log, reg.log + ".1")
        reg.proc.send_signal(1)
        time.sleep(0.3)
        reg.request("GET", "status")
        check(os.path.exists(reg.log) and len(reg.log_lines()) == 1,
              "SIGHUP reopens the request log")
    finally:
        reg.stop()


def test_bad_input_changes_nothing(lab, check):
    reg = Registry(lab, "bad", extra=FAST + "max_body = 4096\n")
    try:
        dev = rsa.generate_private_key(65537, 2048)
        good = body_of(pub_pem(dev))
        small = body_of(pub_pem(rsa.generate_private_key(65537, 1024)))
        e3 = body_of(pub_pem(rsa.generate_private_key(3, 2048)))
        ecb = body_of(ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        n0 = key_count(lab)
        ident = new_id()
        cases = [
            ("malformed JSON", None, b"{\"identity\": ", 400),
            ("not an object", None, b"[1, 2]", 400),
            ("duplicate key", None, b'{"identity": "a", "identity": "b"}', 400),
            ("oversized", None, b'{"x": "' + b"a" * 8000 + b'"}', 413),
            ("missing key", {"identity": ident}, None, 400),
            ("missing identity", {"key": good}, None, 400),
            ("identity not a string", {"identity": 12345, "key": good}, None, 400),
            ("type not a string", {"identity": ident, "key": good, "type": 1}, None, 400),
            ("unknown type", {"identity": ident, "key": good, "type": "root"}, None, 400),
            ("bad base64", {"identity": ident, "key": "!!notbase64!!"}, None, 400),
            ("base64 of garbage", {"identity": ident, "key": "QUJDRA=="}, None, 400),
            ("RSA 1024", {"identity": ident, "key": small}, None, 400),
            ("exponent 3", {"identity": ident, "key": e3}, None, 400),
            ("EC key", {"identity": ident, "key": ecb}, None, 400),
            ("upper-case id", {"identity": ident.upper(), "key": good}, None, 400),
            ("leading zero", {"identity": "0" + ident[1:] if len(ident) < 16 else "0" + ident,
                              "key": good}, None, 400),
            ("0x prefix", {"identity": "0x" + ident, "key": good}, None, 400),
            ("zero id", {"identity": "0", "key": good}, None, 400),
            ("17 digits", {"identity": "1" * 17, "key": good}, None, 400),
        ]
        for what, body, raw, want in cases:
            st, js = reg.request("POST", "register", body, raw=raw)
            check(st == want and isinstance(js, dict) and js.get("error"),
                  "%s: %d with a reason (want %d): %r" % (what, st, want, js))
        check(key_count(lab) == n0, "bad requests changed nothing in the store")
        # Wrong methods.
        st, _ = reg.request("DELETE", "register")
        check(st == 405, "DELETE: 405")
        # A slow client is cut off (timeout = 3 s) and does not hold the service.
        raw = socket.create_connection(("127.0.0.1", reg.port))
        tls = reg.ctx.wrap_socket(raw, server_hostname="localhost")
        tls.sendall(b"POST /KeyEx/register/register HTTP/1.1\r\nHost: x\r\nContent-Length: 100"
                    b"\r\n\r\n{\"ide")
        t0 = time.monotonic()
        tls.settimeout(15)
        try:
            got = tls.recv(100)
        except (ssl.SSLError, OSError):
            got = b""
        check(got == b"" and time.monotonic() - t0 < 14, "a slow client is disconnected")
        st, _ = reg.request("GET", "status")
        check(st == 200, "the service answers others meanwhile")
    finally:
        reg.stop()


def test_token_mode_and_rate_limit(lab, check):
    reg = Registry(lab, "tok", mode="token", extra="rate_limit = 60\nrate_burst = 8\n")
    try:
        out = subprocess.run([REG, "--config", reg.conf, "token", "new", "--count", "2"],
                             stdout=subprocess.PIPE, text=True)
        toks = out.stdout.split()
        check(out.returncode == 0 and len(toks) == 2 and toks[0] != toks[1], "token new")
        check(not any(t in open(reg.tokens).read() for t in toks),
              "the tokens file keeps hashes, not the tokens")
        dev = rsa.generate_private_key(65537, 2048)
        ident = new_id()
        st, _ = register(reg, ident, dev)
        check(st == 403 and "role" not in key_line(lab, ident), "token mode: no token, 403")
        st, _ = register(reg, ident, dev, token="0" * 48)
        check(st == 403, "token mode: an unknown token, 403")
        st, _ = register(reg, ident, dev, token=toks[0])
        check(st == 201 and "role: device" in key_line(lab, ident), "token mode: 201 with a token")
        st, _ = register(reg, new_id(), rsa.generate_private_key(65537, 2048), token=toks[0])
        check(st == 403, "a token works once")
        # Rate limit: burst 8; a ninth quick request is 429.
        codes = [reg.request("GET", "status")[0] for _ in range(10)]
        check(429 in codes, "rate limit: 429 after the burst: %r" % codes)
        time.sleep(2.2)
        check(reg.request("GET", "status")[0] == 200, "rate limit: tokens come back with time")
    finally:
        reg.stop()


def test_max_keys(lab, check):
    """What open registration can make the broker's store hold is bounded by max_keys."""
    n = key_count(lab)
    reg = Registry(lab, "full", extra=FAST + "max_keys = %d\n" % (n + 2))
    try:
        key = rsa.generate_private_key(65537, 2048)
        ids = [new_id() for _ in range(4)]
        codes = [register(reg, i, key)[0] for i in ids]
        check(codes == [201, 201, 507, 507], "max_keys: two more identities, then 507: %r" % codes)
        check(key_count(lab) == n + 2, "the store holds no more than max_keys")
        st, _ = register(reg, ids[0], key)
        check(st == 201, "a registered identity may register again when full")
    finally:
        reg.stop()


def test_concurrent_registrations(lab, check):
    """200 registrations at once, half through each of two registry processes on the same
    store (and `srup keys add` writing meanwhile): every one stored once."""
    a = Registry(lab, "ca", extra=FAST)
    b = Registry(lab, "cb", extra=FAST)
    try:
        key = rsa.generate_private_key(65537, 2048)
        ids = [new_id() for _ in range(200)]
        n0 = key_count(lab)
        results = {}

        def worker(reg, chunk):
            for i in chunk:
                results[i] = register(reg, i, key)[0]

        threads = []
        for k in range(8):
            reg = a if k % 2 == 0 else b
            threads.append(threading.Thread(target=worker, args=(reg, ids[k::8])))
        for t in threads:
            t.start()
        extra = h.Identity("concurrent-cli", lab.dir, "device")
        lab.keys_add(extra)
        for t in threads:
            t.join(120)
        codes = sorted(set(results.values()))
        check(len(results) == 200 and codes == [201], "200 registrations answered 201: %r" % codes)
        out = h.run([h.SRUP, "keys", "list", "--store", lab.store]).stdout.decode()
        stored = sum(1 for i in ids if ("\n" + i + "\t") in ("\n" + out) or
                     ("\n" + i + " ") in ("\n" + out))
        check(key_count(lab) == n0 + 201 and stored == 200,
              "every one stored once (%d of 200 listed; %d keys more)" % (
                  stored, key_count(lab) - n0))
    finally:
        a.stop()
        b.stop()


def test_device_registers_and_joins(lab, check):
    """A fresh device knows one URL: `srup-device register` over HTTPS, then the running broker
    (no reload) accepts its messages over mutual TLS with the certificate from the registry."""
    reg = Registry(lab, "dev")
    try:
        d = os.path.join(lab.dir, "newdev")
        os.makedirs(d)
        conf = os.path.join(d, "device.conf")
        with open(conf, "w") as f:
            f.write("private_key = %s/srup.pem\npeer_keys = %s/peers\nstate_file = %s/state\n"
                    "control_socket = %s/sock\n" % (d, d, d, d))
        r = subprocess.run([DEVICE, "register", "--url", "https://localhost:%d" % reg.port,
                            "--ca", lab.pki.ca, "--config", conf], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=60)
        check(r.returncode == 0 and "OK registered" in r.stdout, "srup-device register: %r" %
              r.stdout)
        v = dict(l.split(" = ", 1) for l in open(conf).read().splitlines() if " = " in l)
        ident = v.get("identity", "")
        check("role: device" in key_line(lab, ident), "the device's key is in the broker's store")
        # Its first message through the running broker, over TLS with the issued certificate.
        c = h.Client(lab.broker.tls_port, "SRUP Client: " + ident,
                     tls=lab.pki.context((v["tls_cert"], v["tls_key"])))
        devid = h.Identity.__new__(h.Identity)
        devid.id, devid.hex, devid.priv, devid.seq, devid.name = int(ident, 16), ident, \
            os.path.join(d, "srup.pem"), 0, "newdev"
        m = lab.audit_mark()
        rc = c.publish("SRUP/servers/%s/%s" % (lab.server.hex, ident),
                       lab.msg(devid, "JOIN_REQ"))
        check(h.delivered(rc), "its JOIN_REQ passes the broker (PUBACK 0x%02x)" % rc)
        check(lab.wait_audit(m, lambda a: a.get("verdict") == "drop") is None,
              "no drop in the audit log")
        c.close()
    finally:
        reg.stop()


if __name__ == "__main__":
    if not os.access(REG, os.X_OK):
        h.log("srup-registry not built: %s" % REG)
        sys.exit(1)
    h.main([test_endpoints, test_bad_input_changes_nothing, test_token_mode_and_rate_limit,
            test_max_keys,
            test_concurrent_registrations, test_device_registers_and_joins],
           lab_factory=lab_factory)
