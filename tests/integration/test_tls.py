#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# test_tls.py - identity binding on the lab's mutual-TLS listener (require_certificate): under
# the default `identity certificate` the plugin reads the CN from the TLS session, whatever
# username the client claims, with or without use_identity_as_username (docker/lab.sh sets it).
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import srupharness as h  # noqa: E402

S = {}


def test_cn_is_the_identity(lab, check):
    ch = "SRUP/%s" % lab.dev1.hex
    d1 = lab.connect(lab.dev1, client_id="tls-dev1")
    check(d1.subscribe(ch) == 0x01, "dev1 (by certificate) cannot subscribe to its channel")
    h.expect_accept(lab, check, d1, ch, lab.msg(lab.dev1, "DATA", data_id=b"t", data=b"tls"),
                    "dev1's DATA over TLS with CN = dev1", receivers=[d1])
    s = lab.connect(lab.server, client_id="tls-server")
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
    mismatch and dev1's channel is not dev2's to read."""
    ch = "SRUP/%s" % lab.dev1.hex
    imp = lab.connect(lab.dev2, client_id="tls-impostor", username=lab.dev1.hex)
    h.expect_drop(lab, check, imp, ch, lab.msg(lab.dev1, "DATA", data_id=b"t", data=b"x"),
                  "identity_mismatch", "dev1's message over dev2's certificate claiming "
                  "username dev1", watchers=[S["d1"]])
    check(imp.subscribe(ch) == h.RC_NOT_AUTHORIZED,
          "dev2's certificate may subscribe to dev1's channel")
    m = lab.msg(lab.dev1, "DATA", data_id=b"t", data=b"secret")
    S["d1"].publish(ch, m)
    h.not_delivered(check, [imp], m, "dev1's DATA to dev2's certificate", wait=0.5)


def test_plain_client_refused(lab, check):
    """No certificate, no connection on the TLS listener (it requires one)."""
    try:
        c = h.Client(lab.broker.tls_port, "no-tls", username=lab.dev1.hex, timeout=2.0)
        c.close()
        check(False, "a plain-TCP client connected to the TLS listener")
    except (OSError, h.HarnessError):
        pass


def test_cn_with_use_identity_as_username(lab, check):
    """docker/lab.sh's listener also sets use_identity_as_username: nothing changes."""
    ch = "SRUP/%s" % lab.dev1.hex
    d1 = lab.connect(lab.dev1, client_id="tls-dev1-uiau")
    check(d1.subscribe(ch) == 0x01, "dev1 cannot subscribe to its channel")
    h.expect_accept(lab, check, d1, ch, lab.msg(lab.dev1, "DATA", data_id=b"u", data=b"1"),
                    "dev1's DATA (use_identity_as_username)", receivers=[d1])
    imp = lab.connect(lab.dev2, client_id="tls-impostor-uiau", username=lab.dev1.hex)
    h.expect_drop(lab, check, imp, ch, lab.msg(lab.dev1, "DATA", data_id=b"u", data=b"2"),
                  "identity_mismatch", "dev1's message over dev2's certificate "
                  "(use_identity_as_username)", watchers=[d1])


def uiau_lab():
    return h.Lab(tls_extra=["use_identity_as_username true"])


if __name__ == "__main__":
    h.main([test_cn_is_the_identity, test_claimed_username_is_ignored,
            test_plain_client_refused, (test_cn_with_use_identity_as_username, uiau_lab)])
