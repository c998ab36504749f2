#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# test_tls.py - identity binding on a TLS listener with require_certificate and
# use_identity_as_username (the contract's deployment mode): the certificate CN is the identity,
# whatever username the client claims.
import os
import ssl
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import srupharness as h  # noqa: E402

S = {}


def openssl(*args):
    h.run(["openssl"] + list(args))


def make_pki(d, names):
    """A CA, a server certificate for 127.0.0.1 and one client certificate per CN."""
    ca_key, ca = os.path.join(d, "ca.key"), os.path.join(d, "ca.crt")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca,
            "-subj", "/CN=srup-test-ca", "-days", "2")
    certs = {}
    for cn in ["localhost"] + names:
        key, csr, crt = (os.path.join(d, "%s.%s" % (cn, x)) for x in ("tlskey", "csr", "crt"))
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj",
                "/O=SRUP_DEVICE/CN=%s" % cn)
        openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
                "-out", crt, "-days", "2")
        certs[cn] = (crt, key)
    return ca, certs


def lab_factory():
    d = h.Lab(start=False)
    ca, certs = make_pki(d.dir, [d.dev1.hex, d.dev2.hex, d.server.hex])
    crt, key = certs["localhost"]
    d.broker.listener_conf = ["cafile %s" % ca, "certfile %s" % crt, "keyfile %s" % key,
                              "require_certificate true", "use_identity_as_username true"]
    d.broker.start()
    S["ca"], S["certs"] = ca, certs
    return d


def tls_client(lab, cn, client_id, username=None):
    ctx = ssl.create_default_context(cafile=S["ca"])
    ctx.check_hostname = False
    crt, key = S["certs"][cn]
    ctx.load_cert_chain(crt, key)
    c = h.Client(lab.broker.port, client_id, username=username, tls=ctx)
    lab.clients.append(c)
    return c


def test_cn_is_the_identity(lab, check):
    ch = "SRUP/%s" % lab.dev1.hex
    d1 = tls_client(lab, lab.dev1.hex, "tls-dev1")
    check(d1.subscribe(ch) == 1, "dev1 (by certificate) cannot subscribe to its channel")
    h.expect_accept(lab, check, d1, ch, lab.msg(lab.dev1, "DATA", data_id=b"t", data=b"tls"),
                    "dev1's DATA over TLS with CN = dev1", receivers=[d1])
    s = tls_client(lab, lab.server.hex, "tls-server")
    tok = lab.token()
    h.expect_accept(lab, check, d1, "SRUP/servers/%s/%s" % (lab.server.hex, lab.dev1.hex),
                    lab.msg(lab.dev1, "JOIN_REQ", token=tok), "dev1's JOIN_REQ over TLS")
    h.expect_accept(lab, check, s, ch, lab.msg(lab.server, "RESPONSE", token=tok,
                                               status=h.JOIN_SUCCESS),
                    "server's JOIN_SUCCESS over TLS", receivers=[d1])
    h.expect_accept(lab, check, s, ch, lab.msg(lab.server, "ACTION", action_id=1),
                    "server's ACTION over TLS with CN = server", receivers=[d1])
    S["d1"] = d1


def test_claimed_username_is_ignored(lab, check):
    """dev2's certificate with username=dev1 in CONNECT: still dev2, so dev1's message is a
    mismatch."""
    ch = "SRUP/%s" % lab.dev1.hex
    imp = tls_client(lab, lab.dev2.hex, "tls-impostor", username=lab.dev1.hex)
    h.expect_drop(lab, check, imp, ch, lab.msg(lab.dev1, "DATA", data_id=b"t", data=b"x"),
                  "identity_mismatch", "dev1's message over dev2's certificate claiming "
                  "username dev1", watchers=[S["d1"]])
    rc = imp.subscribe(ch)
    h.log("    dev2's certificate subscribing to dev1's channel: SUBACK 0x%02x" % rc)
    S["d1"].publish(ch, lab.msg(lab.dev1, "DATA", data_id=b"t", data=b"secret"))
    got = [d for d in imp.collect(0.5) if d.topic == ch]
    check(not got, "dev2's certificate received dev1's channel")


def test_plain_client_refused(lab, check):
    """No certificate, no connection (the listener requires one)."""
    try:
        c = h.Client(lab.broker.port, "no-tls", username=lab.dev1.hex, timeout=2.0)
        c.close()
        check(False, "a plain-TCP client connected to the TLS listener")
    except (OSError, h.HarnessError):
        pass


if __name__ == "__main__":
    h.main([test_cn_is_the_identity, test_claimed_username_is_ignored,
            test_plain_client_refused], lab_factory=lab_factory)
