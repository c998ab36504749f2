#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# test_keyex_client.py - the daemons' registration client (tools/common/keyex.c) against an
# independent KeyEx-contract service written here from spec section 5.4 with pyca/cryptography:
# `srup-device register` runs status, register, validate, access in order, its PSS signatures
# verify, its CSR has the reference's subject, and it writes a config srup-device can run with;
# a refusal at any step is an error that writes nothing but the new identity; srup-c2 registers itself
# through c2_check / c2/ at start, and refuses to start when the registry does not know it and it
# has no token. Usage: test_keyex_client.py BUILD
import base64
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, "build")
DEVICE = os.path.join(BUILD, "tools", "srup-device")
C2 = os.path.join(BUILD, "tools", "srup-c2")
FAILS = []
C2_ID = "b9d077e223834cf6"


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILS.append(what)


def when(days):
    return datetime.datetime(2026, 1, 1) + datetime.timedelta(days=days)


class Service:
    """A KeyEx-contract service: the behaviour spec section 5.4 gives, nothing more."""

    def __init__(self):
        self.ca_key = rsa.generate_private_key(65537, 2048)
        self.ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-registry-ca")])
        self.ca = (x509.CertificateBuilder().subject_name(self.ca_name)
                   .issuer_name(self.ca_name).public_key(self.ca_key.public_key())
                   .serial_number(1).not_valid_before(when(0)).not_valid_after(when(3650))
                   .sign(self.ca_key, hashes.SHA256()))
        server = rsa.generate_private_key(65537, 2048)
        pem = server.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.server_pem = pem
        self.server_body = "".join(l for l in pem.decode().splitlines()
                                   if not l.startswith("-----"))
        self.keys = {}
        self.calls = []
        self.active = True
        self.refuse = None  # endpoint name to answer 400
        self.c2_known = False
        self.c2_posts = []
        svc = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def reply(self, code, obj):
                b = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(b)))
                self.end_headers()
                self.wfile.write(b)

            def do_GET(self):
                p = self.path
                svc.calls.append(p)
                if p == "/KeyEx/register/status":
                    self.reply(200, {"active": svc.active, "identity": "a1b2c3d4e5f60708"})
                elif p.startswith("/KeyEx/register/c2_check/"):
                    self.reply(200 if svc.c2_known else 404, {})
                else:
                    self.reply(404, {})

            def do_POST(self):
                p = self.path
                svc.calls.append(p)
                name = p.rsplit("/", 2)[-1] or "c2"
                if svc.refuse == name:
                    self.reply(400, {"error": "refused by the test"})
                    return
                try:
                    j = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                    svc.handle(self, p, j)
                except Exception as e:  # a client error: the test sees it in the calls
                    svc.calls.append("error: %r" % e)
                    self.reply(400, {"error": repr(e)})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def pss_verify(self, ident, sig_b64, data):
        pem = ("-----BEGIN PUBLIC KEY-----\n%s\n-----END PUBLIC KEY-----\n"
               % self.keys[ident]).encode()
        key = serialization.load_pem_public_key(pem)
        key.verify(base64.b64decode(sig_b64), data,
                   padding.PSS(mgf=padding.MGF1(hashes.SHA256()),
                               salt_length=padding.PSS.MAX_LENGTH), hashes.SHA256())

    def handle(self, h, p, j):
        if p == "/KeyEx/register/register":
            if j.get("type") != "default" or not isinstance(j.get("key"), str):
                raise ValueError("bad register request")
            self.keys[j["identity"]] = j["key"]
            h.reply(201, {"broker": "mqtts://localhost:18883", "key": self.server_body,
                          "default_c2": C2_ID})
        elif p == "/KeyEx/register/validate":
            self.pss_verify(j["identity"], j["signature"], j["identity"].encode())
            h.reply(200, {"identity": "a1b2c3d4e5f60708", "signature": ""})
        elif p == "/KeyEx/register/access":
            csr_pem = base64.b64decode(j["csr"])
            self.pss_verify(j["identity"], j["signature"], csr_pem)
            csr = x509.load_pem_x509_csr(csr_pem)
            if not csr.is_signature_valid:
                raise ValueError("CSR self-signature")
            self.csr_subject = csr.subject.rfc4514_string()
            cert = (x509.CertificateBuilder().subject_name(csr.subject)
                    .issuer_name(self.ca_name).public_key(csr.public_key()).serial_number(2)
                    .not_valid_before(when(0)).not_valid_after(when(365))
                    .sign(self.ca_key, hashes.SHA256()))
            enc = serialization.Encoding.PEM
            h.reply(200, {"certificate": base64.encodebytes(cert.public_bytes(enc)).decode(),
                          "CA_certificate": base64.encodebytes(self.ca.public_bytes(enc))
                          .decode()})
        elif p == "/KeyEx/register/c2/":
            self.c2_posts.append(j)
            h.reply(201, {})
        else:
            h.reply(404, {})


def run(cmd):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=90,
                          text=True)


def conf_values(path):
    out = {}
    with open(path) as f:
        for line in f:
            if "=" in line and not line.lstrip().startswith("#"):
                k, v = line.split("=", 1)
                out[k.strip()] = v.strip()
    return out


def main():
    tmp = tempfile.mkdtemp(prefix="srup-keyex-")
    svc = Service()
    try:
        d = os.path.join(tmp, "dev")
        os.makedirs(d)
        conf = os.path.join(d, "device.conf")
        base = ("# a fresh device knows only where to register\nprivate_key = %s/signing.pem\n"
                "peer_keys = %s/peers\nstate_file = %s/state\ncontrol_socket = %s/sock\n"
                % (d, d, d, d))
        with open(conf, "w") as f:
            f.write(base)

        # A refusal at validate: an error, nothing written.
        svc.refuse = "validate"
        r = run([DEVICE, "register", "--url", svc.url, "--config", conf])
        check(r.returncode == 1 and "validate" in r.stdout and "HTTP 400" in r.stdout,
              "a refused validate is an error naming the step: %r" % r.stdout)
        v = conf_values(conf)
        first_id = v.get("identity")
        check(first_id is not None and "server" not in v and "broker_host" not in v and
              "tls_cert" not in v, "after a refusal the config has only the new identity: %r" % v)
        svc.refuse = None
        svc.calls.clear()

        r = run([DEVICE, "register", "--url", svc.url, "--config", conf])
        check(r.returncode == 0 and "OK registered" in r.stdout, "register: %r" % r.stdout)
        order = [c.rsplit("/", 1)[-1] for c in svc.calls if not c.startswith("error")]
        check(order == ["status", "register", "validate", "access"],
              "the reference client's order: %r" % svc.calls)
        v = conf_values(conf)
        ident = v.get("identity", "")
        check(ident == first_id, "the retry registered the identity made the first time")
        check(1 <= len(ident) <= 16 and ident == ("%x" % int(ident, 16)),
              "an identity in canonical text form was made: %r" % ident)
        check(v.get("server") == C2_ID and v.get("broker_host") == "localhost" and
              v.get("broker_port") == "18883", "server and broker written: %r" % v)
        check(getattr(svc, "csr_subject", "") ==
              "CN=%s,O=SRUP_DEVICE,L=UNK,ST=UNK,C=UK" % ident,
              "the CSR subject is the reference's: %r" % getattr(svc, "csr_subject", ""))
        cert = x509.load_pem_x509_certificate(open(v["tls_cert"], "rb").read())
        check(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == ident,
              "the MQTT certificate is for our identity")
        access = serialization.load_pem_private_key(open(v["tls_key"], "rb").read(), None)
        signing = serialization.load_pem_private_key(open("%s/signing.pem" % d, "rb").read(),
                                                     None)
        pub = lambda k: k.public_key().public_bytes(  # noqa: E731
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        check(pub(access) == cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo),
            "the certificate is for the access key")
        check(pub(access) != pub(signing), "the access key is not the SRUP signing key")
        check(os.stat(v["tls_key"]).st_mode & 0o077 == 0 and
              os.stat("%s/signing.pem" % d).st_mode & 0o077 == 0, "private keys are 0600")
        peer = os.path.join(d, "peers", C2_ID + ".pub.pem")
        check(os.path.exists(peer) and serialization.load_pem_public_key(
            open(peer, "rb").read()).public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            == svc.server_pem, "the server's key is in peer_keys")
        check(svc.keys.get(ident) == "".join(
            l for l in signing.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode().splitlines() if not l.startswith("-----")),
            "the registered key is the signing key's body")
        # Registering again keeps the identity and key.
        r = run([DEVICE, "register", "--url", svc.url, "--config", conf])
        check(r.returncode == 0 and conf_values(conf).get("identity") == ident,
              "a second registration keeps the identity")
        # An inactive service: refused before anything is sent.
        svc.active = False
        svc.calls.clear()
        r = run([DEVICE, "register", "--url", svc.url, "--config", conf])
        check(r.returncode == 1 and "not accepting" in r.stdout and
              svc.calls == ["/KeyEx/register/status"], "inactive service: %r" % r.stdout)
        svc.active = True

        # srup-c2 registers itself at start (c2_check, then c2/ with its token).
        c = os.path.join(tmp, "c2")
        os.makedirs(c)
        run([os.path.join(BUILD, "tools", "srup"), "keygen", "--out", os.path.join(c, "c2")])
        cid = run([os.path.join(BUILD, "tools", "srup"), "id"]).stdout.strip()
        cconf = os.path.join(c, "c2.conf")
        common = ("identity = %s\nrole = c2\nprivate_key = %s/c2.pem\npeer_keys = %s\n"
                  "broker_host = 127.0.0.1\nbroker_port = 9\nstate_file = %s/state\n"
                  "control_socket = %s/sock\nregistry_url = %s\n" % (cid, c, c, c, c, svc.url))
        with open(cconf, "w") as f:
            f.write(common)
        r = subprocess.run([C2, "--config", cconf, "run"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30, text=True)
        check(r.returncode == 3 and "no registry_token" in r.stdout,
              "an unknown server without a token does not start: %r" % r.stdout[-300:])
        with open(cconf, "w") as f:
            f.write(common + "registry_token = T0KEN==\n")
        p = subprocess.Popen([C2, "--config", cconf, "run"], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
        try:
            import time
            deadline = time.monotonic() + 10
            while not svc.c2_posts and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            p.terminate()
            out = p.communicate(timeout=30)[0]
        post = svc.c2_posts[0] if svc.c2_posts else {}
        c2pub = open(os.path.join(c, "c2.pub.pem")).read()
        check(post.get("identity") == cid and post.get("signature") == "T0KEN==" and
              post.get("key") == "".join(l for l in c2pub.splitlines()
                                         if not l.startswith("-----")),
              "srup-c2 registered itself with its key and token: %r" % post)
        check("registered with the registry" in out, "srup-c2 logs its registration")
    finally:
        svc.httpd.shutdown()
        if not FAILS:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print("kept %s" % tmp)
    print("%d failed" % len(FAILS))
    sys.exit(1 if FAILS else 0)


if __name__ == "__main__":
    main()
