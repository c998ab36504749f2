#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# test_peer_codec.py - the interop peer's codec is the reference's: encoding the recorded fields
# of every vector (spec section 7) with the recorded key gives serialized_hex byte for byte, its
# decoder reads them back and verifies them, it opens the recorded encrypted field; and what it
# seals, libsrup (`srup decode --decrypt-key`) opens, so a disagreement between the two
# implementations cannot hide behind the peer. Usage: test_peer_codec.py BUILD VECTORS_DIR
import json
import os
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pysrup_peer as p  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
VEC = sys.argv[2] if len(sys.argv) > 2 else "/work/shared/spec/vectors"
FAILS = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILS.append(what)


def load_private(path):
    """The reference's test key is PKCS#8 under an "RSA PRIVATE KEY" label (spec 8.15):
    relabel it for a strict parser."""
    with open(path, "rb") as f:
        pem = f.read()
    try:
        return serialization.load_pem_private_key(pem, None)
    except ValueError:
        pem = pem.replace(b"RSA PRIVATE KEY", b"PRIVATE KEY")
        return serialization.load_pem_private_key(pem, None)


def fields_of(v):
    f = v["fields"]
    out = {}
    for k in ("url", "digest", "data_id", "data"):
        if k + "_hex" in f:
            out[k] = bytes.fromhex(f[k + "_hex"])
    for k in ("status", "action_id"):
        if k in f:
            out[k] = int(f[k], 0) if isinstance(f[k], str) else f[k]
    return out


def main():
    with open(os.path.join(VEC, "vectors.json")) as fh:
        vectors = json.load(fh)
    done = 0
    for v in vectors:
        if v["type_name"] not in p.T:
            continue  # syndication types: not used by the peer
        f = v["fields"]
        key = load_private(os.path.join(VEC, v["signing_key"]))
        with open(os.path.join(VEC, v["verify_key"]), "rb") as fh:
            pub = serialization.load_pem_public_key(fh.read())
        wire = bytes.fromhex(v["serialized_hex"])
        m = p.decode(wire)
        check(m["type"] == v["type_name"] and m["seq"] == int(f["sequence_id"], 16) and
              m["sender"] == int(f["sender_id"], 16) and
              m["token"] == bytes.fromhex(f["token_hex"]), "%s: decoded header" % v["name"])
        check(p.verify(m, pub), "%s: signature verifies" % v["name"])
        fields = fields_of(v)
        if "encrypted" in m:
            fields["encrypted"] = m["encrypted"]
            enc = v["encryption"]
            rkey = load_private(os.path.join(VEC, enc["recipient_private_key"]))
            check(p.unseal(rkey, m["encrypted"]) == bytes.fromhex(enc["plaintext_hex"]),
                  "%s: the encrypted field opens to the recorded plaintext" % v["name"])
        again = p.encode(v["type_name"], m["seq"], m["sender"], m["token"], key, **fields)
        check(again == wire, "%s: encoding reproduces serialized_hex" % v["name"])
        done += 1
    check(done >= 5, "%d vectors checked" % done)

    # What the peer seals, libsrup opens (and the other way round is covered by srup-c2 /
    # srup-device talking to the peer in test_interop.py).
    dev_priv = os.path.join(VEC, "keys", "device_private.pem")
    dev_pub = serialization.load_pem_public_key(
        open(os.path.join(VEC, "keys", "device_public.pem"), "rb").read())
    server = load_private(os.path.join(VEC, "keys", "server_private.pem"))
    value = b"0123456789abcdef0123456789abcdef"
    wire = p.encode("HM_JOIN_RESP", 7, 0x1234, p.new_token(), server,
                    encrypted=p.seal(dev_pub, value))
    r = subprocess.run([os.path.join(BUILD, "tools", "srup"), "decode", "--key",
                        os.path.join(VEC, "keys", "server_public.pem"), "--decrypt-key",
                        dev_priv, "--hex", "-"], input=wire.hex().encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = json.loads(r.stdout or b"{}")
    check(r.returncode == 0 and out.get("signature") == "valid" and
          out.get("plaintext_hex") == value.hex(),
          "libsrup verifies and opens the peer's HM_JOIN_RESP: %r" % r.stderr)
    # Malformed input is refused with a reason, never half-read (the reference reads past the
    # buffer, spec 8.5).
    for bad, what in ((wire[:-1], "truncated"), (wire + b"\x00", "trailing byte"),
                      (b"\x04" + wire[1:], "version 4")):
        try:
            p.decode(bad)
            check(False, "%s refused" % what)
        except p.CodecError:
            check(True, "%s refused" % what)
    print("%d failed" % len(FAILS))
    sys.exit(1 if FAILS else 0)


if __name__ == "__main__":
    main()
