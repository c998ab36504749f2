#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# test_srup_tool.py - black-box tests of the `srup` command-line tool (keygen, id, decode,
# encode, usage). Builds expected wire bytes from the spec independently of libsrup and checks
# signatures with the openssl command, so the tool is not only compared with itself.
#
# usage: test_srup_tool.py --srup PATH --vectors DIR [--group NAME]... [--wrapper "CMD ARGS"]
import argparse
import json
import os
import random
import re
import shlex
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
import zlib

# Spec §2.1: every v5 wire type with its body, in wire order. (kind, json name)
V = "var"
U8 = "u8"
U32 = "u32"
U64 = "u64"
PAD = "pad"
TYPES = {
    "INITIATE": (0x01, [(V, "url_hex"), (V, "digest_hex")]),
    "RESPONSE": (0x02, [(U8, "status")]),
    "ACTIVATE": (0x03, []),
    "ACTION": (0x04, [(U8, "action_id")]),
    "DATA": (0x05, [(V, "data_id_hex"), (V, "data_hex")]),
    "ID_REQUEST": (0x06, []),
    "JOIN_REQ": (0x09, []),
    "JOIN_CMD": (0x0A, [(U64, "device_id")]),
    "HM_JOIN_REQ": (0x0B, []),
    "HM_JOIN_RESP": (0x0C, [(V, "encrypted_hex")]),
    "OBS_JOIN_REQ": (0x0D, [(U64, "observer_id")]),
    "OBS_JOIN_RESP": (0x0E, [(V, "encrypted_hex")]),
    "OBSERVE_REQ": (0x0F, [(U64, "joining_device_id"), (V, "encrypted_hex")]),
    "RESIGN_REQUEST": (0x10, []),
    "TERMINATE_CMD": (0x11, []),
    "DEREGISTER_REQ": (0x12, []),
    "DEREGISTER_CMD": (0x13, []),
    "SYNDICATION_INIT": (0x21, [(V, "url_hex"), (V, "encrypted_hex")]),
    "SYNDICATED_ACTION": (0x24, [(U8, "action_id"), (U64, "target_id")]),
    "SYNDICATED_DATA": (0x25, [(V, "data_id_hex"), (V, "data_hex"), (U64, "source_id")]),
    "SYNDICATED_ID_REQUEST": (0x26, [(U64, "target_id")]),
    "SYNDICATED_DEV_COUNT": (0x27, [(U32, "count")]),
    "SYNDICATED_DEV_LIST": (0x28, [(U32, "device_sequence"), (U64, "device_id")]),
    "SYNDICATION_REQUEST": (0x29, [(V, "encrypted_hex")]),
    "SYNDICATED_C2_REQ": (0x2C, [(V, "data_hex"), (U8, "req_id"), (PAD, None)]),
    "SYNDICATION_END": (0x2E, []),
    "SYNDICATION_TERMINATE": (0x2F, []),
}

SAMPLE = {
    "url_hex": b"https://updates.example.com/fw/v2.bin\x00".hex(),
    "digest_hex": (b"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
                   b"\x00").hex(),
    "status": 0x50,
    "action_id": 7,
    "data_id_hex": b"COUNT".hex(),
    "data_hex": "feffffff",
    "device_id": "0123456789abcdef",
    "observer_id": "fedcba9876543210",
    "joining_device_id": "00000000000000ff",
    "target_id": "8000000000000001",
    "source_id": "7c3e1f9a2b5d4e80",
    "count": 4000000000,
    "device_sequence": 2,
    "req_id": 0x11,
    # An opaque blob: without --encrypt-to, encode uses encrypted_hex as it is.
    "encrypted_hex": bytes(range(200)).hex(),
}

CONTRACT_ID_FIELDS = ("device_id", "observer_id", "joining_device_id", "target_id", "source_id")


class Ctx:
    def __init__(self, srup, vectors, wrapper, tmp):
        self.srup = srup
        self.vectors = vectors
        self.wrapper = wrapper
        self.tmp = tmp
        self.failures = 0
        self.checks = 0

    def run(self, args, stdin=b"", timeout=120):
        cmd = self.wrapper + [self.srup] + list(args)
        p = subprocess.run(cmd, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout)
        return p.returncode, p.stdout, p.stderr

    def check(self, cond, what):
        self.checks += 1
        if not cond:
            self.failures += 1
            print("FAIL: " + what)
        return cond

    def path(self, name):
        return os.path.join(self.tmp, name)


def one_error_line(ctx, err, cmd, what):
    """Failures print exactly one line 'srup <cmd>: ...' on stderr."""
    text = err.decode("utf-8", "replace")
    lines = [l for l in text.split("\n") if l != ""]
    ctx.check(len(lines) == 1 and lines[0].startswith("srup %s: " % cmd),
              "%s: expected one 'srup %s:' error line, got %r" % (what, cmd, text))


def parse_json_strict(text):
    def no_dups(pairs):
        keys = [k for k, _ in pairs]
        if len(keys) != len(set(keys)):
            raise ValueError("duplicate key")
        return dict(pairs)
    return json.loads(text, object_pairs_hook=no_dups)


def decode(ctx, msg, extra=(), hex_input=False):
    data = msg.hex().encode() + b"\n" if hex_input else msg
    args = ["decode"] + list(extra) + (["--hex"] if hex_input else []) + ["-"]
    rc, out, err = ctx.run(args, data)
    obj = None
    if out:
        text = out.decode()
        ctx.check(text.endswith("\n") and text.count("\n") == 1,
                  "decode prints one JSON object on one line: %r" % text[:80])
        obj = parse_json_strict(text)
    return rc, obj, err


def encode(ctx, obj, key, extra=()):
    rc, out, err = ctx.run(["encode", "--key", key] + list(extra),
                           json.dumps(obj).encode())
    return rc, out, err


# ---- independent encoder (spec §1, §2) used to check the tool's bytes -------------------------

def canonical_id(n):
    """An id as every output of srup and the broker writes it: lowercase hex, no 0x, no
    leading zeros."""
    return "%x" % n


def seq_json(n):
    """A sequence number as srup writes it: a number, or above 2^63-1 a "0x" hex string."""
    return n if n < 1 << 63 else "0x%x" % n


def id_int(v):
    if isinstance(v, int):
        return v
    return int(v, 16)


def spec_unsigned(obj):
    tb, body = TYPES[obj["type"]]
    token = bytes.fromhex(obj["token_hex"])
    out = bytes([5, tb]) + struct.pack("<QQ", id_int(obj["sequence_id"]),
                                       id_int(obj["sender_id"]))
    out += struct.pack(">H", len(token)) + token
    b = b""
    for kind, name in body:
        if kind == V:
            val = bytes.fromhex(obj[name])
            b += struct.pack(">H", len(val)) + val
        elif kind == U8:
            b += bytes([obj[name]])
        elif kind == U32:
            b += struct.pack("<I", obj[name])
        elif kind == U64:
            b += struct.pack("<Q", id_int(obj[name]))
        elif kind == PAD:
            b += b"\x00\x00"
    return out, b


def openssl_verify(ctx, pub, signed, sig):
    sp = ctx.path("ossl.sig")
    dp = ctx.path("ossl.dat")
    with open(sp, "wb") as f:
        f.write(sig)
    with open(dp, "wb") as f:
        f.write(signed)
    p = subprocess.run(["openssl", "dgst", "-sha256", "-verify", pub, "-signature", sp, dp],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return p.returncode == 0


def sample_json(tname, seq=42):
    tb, body = TYPES[tname]
    obj = {
        "type": tname,
        "msg_type": "0x%02x" % tb,
        "sequence_id": "0x%016x" % seq,
        "sender_id": "0xb9d077e223834cf6",
        "token_hex": b"3f1c9e2a-7b4d-4c8e-9a61-0d2f5b7e8c13".hex(),
    }
    for kind, name in body:
        if name is not None:
            obj[name] = SAMPLE[name]
    return obj


def keygen(ctx, prefix, bits=None):
    args = ["keygen", "--out", ctx.path(prefix)]
    if bits is not None:
        args += ["--bits", str(bits)]
    rc, out, err = ctx.run(args)
    ctx.check(rc == 0, "keygen %s: rc %d (%r)" % (prefix, rc, err))
    return ctx.path(prefix + ".pem"), ctx.path(prefix + ".pub.pem")


# ---- groups ---------------------------------------------------------------------------------

def group_vectors(ctx):
    with open(os.path.join(ctx.vectors, "vectors.json")) as f:
        vectors = json.load(f)
    ctx.check(len(vectors) > 0, "vectors.json holds vectors")
    for vec in vectors:
        name = vec["name"]
        msg = bytes.fromhex(vec["serialized_hex"])
        vkey = os.path.join(ctx.vectors, vec["verify_key"])
        skey = os.path.join(ctx.vectors, vec["signing_key"])
        rc, obj, err = decode(ctx, msg, ["--key", vkey], hex_input=True)
        if not ctx.check(rc == 0 and obj is not None, "%s: decode rc %d %r" % (name, rc, err)):
            continue
        ctx.check(obj["signature"] == "valid", "%s: signature %s" % (name, obj["signature"]))
        ctx.check(obj["type"] == vec["type_name"], "%s: type %s" % (name, obj["type"]))
        ctx.check(obj["msg_type"] == vec["msg_type"], "%s: msg_type %s" % (name, obj["msg_type"]))
        ctx.check(obj["version"] == int(vec["version"], 16), "%s: version" % name)
        ctx.check(obj["signature_hex"] == vec["signature_hex"], "%s: signature_hex" % name)
        compared = 0
        for k, want in vec["fields"].items():
            if k.endswith("_ascii") or k.endswith("_includes_nul") or k in ("data_kind",
                                                                            "data_value"):
                continue
            compared += 1
            got = obj.get(k)
            if k.endswith("_hex"):
                ok = got == want
            elif k == "sequence_id":
                # a number, as in the broker's audit log
                ok = got == seq_json(id_int(want))
            elif k == "sender_id" or k in CONTRACT_ID_FIELDS:
                # the canonical id text, as in the audit log and the topics
                ok = got == canonical_id(id_int(want))
            elif isinstance(got, int):
                ok = got == (int(want, 16) if isinstance(want, str) else want)
            elif isinstance(got, str):
                ok = got == want or int(got, 16) == id_int(want)
            else:
                ok = False
            ctx.check(ok, "%s: field %s: got %r, want %r" % (name, k, got, want))
        ctx.check(compared >= 3, "%s: compared %d fields" % (name, compared))
        # Fields named _ascii in the vector agree with the hex we print.
        for k, want in vec["fields"].items():
            if k.endswith("_ascii") and (k[:-6] + "_hex") in obj:
                raw = bytes.fromhex(obj[k[:-6] + "_hex"])
                if vec["fields"].get(k[:-6] + "_includes_nul"):
                    raw = raw[:-1]
                ctx.check(raw == want.encode(), "%s: %s" % (name, k))
        # Binary input gives the same JSON as hex input.
        rc2, obj2, _ = decode(ctx, msg, ["--key", vkey])
        ctx.check(rc2 == 0 and obj2 == obj, "%s: binary and hex input agree" % name)
        # The decrypt key opens the encrypted field.
        if "encryption" in vec:
            dkey = os.path.join(ctx.vectors, vec["encryption"]["recipient_private_key"])
            rc3, obj3, err3 = decode(ctx, msg, ["--key", vkey, "--decrypt-key", dkey], True)
            ctx.check(rc3 == 0 and obj3 is not None
                      and obj3.get("plaintext_hex") == vec["encryption"]["plaintext_hex"],
                      "%s: plaintext_hex (rc %d, %r)" % (name, rc3, err3))
            if obj3 is not None:
                obj = obj3  # encode must ignore plaintext_hex without --encrypt-to
        # Encoding the decoded JSON with the signing key reproduces the bytes exactly.
        rc, out, err = encode(ctx, obj, skey, ["--hex"])
        ctx.check(rc == 0 and out.decode().strip() == vec["serialized_hex"],
                  "%s: encode reproduces serialized_hex (rc %d, %r)" % (name, rc, err))
        rc, out, err = encode(ctx, obj, skey)
        ctx.check(rc == 0 and out == msg, "%s: binary encode output" % name)
        # The vector's own "fields" object (with its descriptive *_ascii, data_kind ... members)
        # plus its msg_type encodes to the same bytes (unencrypted types: the blob is random).
        if "encryption" not in vec:
            fields = dict(vec["fields"])
            fields["msg_type"] = vec["msg_type"]
            rc, out, err = encode(ctx, fields, skey, ["--hex"])
            ctx.check(rc == 0 and out.decode().strip() == vec["serialized_hex"],
                      "%s: the vector's fields encode as they are (rc %d, %r)" % (name, rc, err))


def group_types(ctx):
    priv, pub = keygen(ctx, "types")
    other_priv, other_pub = keygen(ctx, "other")
    ctx.check(len(TYPES) == 27, "27 wire types in the test table")
    rnd = random.Random(5)
    for tname in TYPES:
        obj = sample_json(tname, seq=rnd.randrange(1, 1 << 64))
        rc, msg, err = encode(ctx, obj, priv)
        if not ctx.check(rc == 0 and len(msg) > 0, "%s: encode rc %d %r" % (tname, rc, err)):
            continue
        # Independent check of the layout and the signature (spec §1.2, §1.3).
        head, body = spec_unsigned(obj)
        sig_len = struct.unpack(">H", msg[len(head):len(head) + 2])[0]
        ctx.check(sig_len == 256, "%s: signature length %d" % (tname, sig_len))
        sig = msg[len(head) + 2:len(head) + 2 + sig_len]
        ctx.check(msg == head + struct.pack(">H", sig_len) + sig + body,
                  "%s: wire bytes follow the spec layout" % tname)
        ctx.check(openssl_verify(ctx, pub, head + body, sig),
                  "%s: openssl verifies the signature over the unsigned bytes" % tname)
        # decode -> the same fields -> encode: identical bytes.
        rc, dec, err = decode(ctx, msg, ["--key", pub])
        if not ctx.check(rc == 0 and dec is not None, "%s: decode rc %d %r" % (tname, rc, err)):
            continue
        ctx.check(dec["signature"] == "valid", "%s: signature valid" % tname)
        for k, v in obj.items():
            got = dec.get(k)
            if k == "sequence_id":
                ok = got == seq_json(id_int(v))
            elif k == "sender_id" or k in CONTRACT_ID_FIELDS:
                ok = got == canonical_id(id_int(v)) and \
                    re.fullmatch(r"[1-9a-f][0-9a-f]{0,15}|0", got) is not None
            else:
                ok = got == v
            ctx.check(ok, "%s: decoded %s = %r, want %r" % (tname, k, got, v))
        expected_keys = {"version", "type", "msg_type", "sequence_id", "sender_id", "token_hex",
                         "signature_hex", "signature"} | {n for _, n in TYPES[tname][1] if n}
        ctx.check(set(dec.keys()) == expected_keys,
                  "%s: decode members %s" % (tname, sorted(set(dec.keys()) ^ expected_keys)))
        rc, msg2, err = encode(ctx, dec, priv)
        ctx.check(rc == 0 and msg2 == msg, "%s: decode|encode round-trips byte for byte" % tname)
        # The wrong key: exit 1, JSON still printed with "invalid".
        rc, dec2, _ = decode(ctx, msg, ["--key", other_pub])
        ctx.check(rc == 1 and dec2 is not None and dec2["signature"] == "invalid",
                  "%s: wrong key gives exit 1 and invalid (rc %d)" % (tname, rc))
        # No key: unchecked.
        rc, dec3, _ = decode(ctx, msg)
        ctx.check(rc == 0 and dec3 is not None and dec3["signature"] == "unchecked",
                  "%s: no key gives unchecked" % tname)
        # Truncations: a sample of proper prefixes is malformed (exit 2, nothing on stdout).
        cuts = {0, 1, 2, 10, 18, 19, 20, len(head), len(head) + 1, len(head) + 2 + sig_len - 1,
                len(msg) - 1} | {rnd.randrange(0, len(msg)) for _ in range(4)}
        for n in sorted(c for c in cuts if 0 <= c < len(msg)):
            rc, out, err = ctx.run(["decode", "--key", pub], msg[:n])
            ctx.check(rc == 2 and out == b"", "%s: prefix of %d bytes: rc %d" % (tname, n, rc))
        # Trailing bytes are malformed.
        rc, out, _ = ctx.run(["decode", "--key", pub], msg + b"\x00")
        ctx.check(rc == 2 and out == b"", "%s: trailing byte: rc %d" % (tname, rc))
        # Flipped bytes never verify: exit 2 (malformed) or 1 (bad signature).
        for pos in {0, 1, 2, 10, 18, len(head) - 1, len(head) + 5, len(msg) - 1,
                    rnd.randrange(len(msg)), rnd.randrange(len(msg))}:
            bad = bytearray(msg)
            bad[pos] ^= 1 << rnd.randrange(8)
            rc, _, _ = ctx.run(["decode", "--key", pub], bytes(bad))
            ctx.check(rc in (1, 2), "%s: flipped byte %d: rc %d" % (tname, pos, rc))
    # Encrypted types with --encrypt-to: the decrypt key recovers the plaintext.
    for tname in ("HM_JOIN_RESP", "OBS_JOIN_RESP", "OBSERVE_REQ", "SYNDICATION_INIT",
                  "SYNDICATION_REQUEST"):
        obj = sample_json(tname)
        del obj["encrypted_hex"]
        obj["plaintext_hex"] = b"636dd7ad8c004d09b2c391d0cc3aa2b0".hex()
        rc, msg, err = encode(ctx, obj, priv, ["--encrypt-to", other_pub])
        if not ctx.check(rc == 0, "%s: encode --encrypt-to rc %d %r" % (tname, rc, err)):
            continue
        rc, dec, err = decode(ctx, msg, ["--key", pub, "--decrypt-key", other_priv])
        ctx.check(rc == 0 and dec is not None and dec.get("plaintext_hex") == obj["plaintext_hex"],
                  "%s: --decrypt-key recovers plaintext_hex (rc %d, %r)" % (tname, rc, err))
        if dec is not None:
            ctx.check(len(bytes.fromhex(dec["encrypted_hex"])) == 28 + 256 + 48,
                      "%s: envelope of a 32-byte plaintext is 332 bytes" % tname)
        rc, out, err = ctx.run(["decode", "--key", pub, "--decrypt-key", priv], msg)
        ctx.check(rc == 2 and out == b"", "%s: wrong decrypt key: rc %d" % (tname, rc))
        one_error_line(ctx, err, "decode", "%s: wrong decrypt key" % tname)
    # Every byte of one message flipped in turn.
    obj = sample_json("SYNDICATED_DATA")
    rc, msg, _ = encode(ctx, obj, priv)
    if ctx.check(rc == 0, "SYNDICATED_DATA encodes"):
        bad_rc = []
        for pos in range(len(msg)):
            bad = bytearray(msg)
            bad[pos] ^= 0x01
            rc, _, _ = ctx.run(["decode", "--key", pub], bytes(bad))
            if rc not in (1, 2):
                bad_rc.append((pos, rc))
        ctx.check(not bad_rc, "every flipped byte fails parse or verify: %r" % bad_rc[:5])


def group_decode_input(ctx):
    priv, pub = keygen(ctx, "dec")
    rc, msg, _ = encode(ctx, sample_json("DATA"), priv)
    ctx.check(rc == 0, "DATA encodes")
    rc, want, _ = decode(ctx, msg, ["--key", pub])
    # Hex with whitespace anywhere, either case.
    h = msg.hex().upper()
    spaced = "  " + "\n".join(" ".join(h[i:i + 4][j:j + 2] for j in (0, 2))
                              for i in range(0, len(h), 4)) + "\n\t"
    spaced = spaced[:7] + "\r\n" + spaced[7:]
    rc, out, err = ctx.run(["decode", "--hex", "--key", pub], spaced.encode())
    ctx.check(rc == 0 and parse_json_strict(out.decode()) == want,
              "hex input with whitespace and upper case (rc %d %r)" % (rc, err))
    # A file argument, and "-" / no argument for standard input.
    fp = ctx.path("msg.bin")
    with open(fp, "wb") as f:
        f.write(msg)
    rc, out, _ = ctx.run(["decode", "--key", pub, fp])
    ctx.check(rc == 0 and parse_json_strict(out.decode()) == want, "decode FILE")
    rc, out, _ = ctx.run(["decode", "--key=" + pub], msg)
    ctx.check(rc == 0 and parse_json_strict(out.decode()) == want, "decode --key=PATH, stdin")
    # Bad hex: exit 2 with one error line.
    for bad in (b"0", b"zz", msg.hex().encode() + b"g", b"05 0"):
        rc, out, err = ctx.run(["decode", "--hex"], bad)
        ctx.check(rc == 2 and out == b"", "bad hex %r: rc %d" % (bad[:10], rc))
        one_error_line(ctx, err, "decode", "bad hex")
    # Malformed messages: the error line names the problem and the offset.
    rc, out, err = ctx.run(["decode"], msg[:40])
    ctx.check(rc == 2 and out == b"" and b"offset" in err, "truncated: offset in %r" % err)
    one_error_line(ctx, err, "decode", "truncated")
    bad = bytearray(msg)
    bad[0] = 4
    rc, out, err = ctx.run(["decode"], bytes(bad))
    ctx.check(rc == 2 and b"version" in err, "version 4 rejected: %r" % err)
    bad[0] = 5
    bad[1] = 0x07
    rc, out, err = ctx.run(["decode"], bytes(bad))
    ctx.check(rc == 2 and out == b"", "type 0x07 rejected")
    bad[1] = 0x00
    rc, out, err = ctx.run(["decode"], bytes(bad))
    ctx.check(rc == 2 and out == b"", "GENERIC rejected")
    rc, out, err = ctx.run(["decode"], b"")
    ctx.check(rc == 2 and out == b"", "empty input rejected")
    # Oversized input: exit 2, no JSON.
    rc, out, err = ctx.run(["decode"], b"\x05" * ((1 << 20) + 1))
    ctx.check(rc == 2 and out == b"", "input over 1 MiB rejected (rc %d)" % rc)
    rc, out, err = ctx.run(["decode", "--hex"], b"05" * ((1 << 20) + 1))
    ctx.check(rc == 2 and out == b"", "hex input of a message over 1 MiB rejected (rc %d)" % rc)
    # Key problems are exit 3.
    rc, out, err = ctx.run(["decode", "--key", ctx.path("nonexistent.pem")], msg)
    ctx.check(rc == 3 and out == b"", "missing key file: rc %d" % rc)
    one_error_line(ctx, err, "decode", "missing key file")
    rc, out, err = ctx.run(["decode", "--decrypt-key", pub], msg)
    ctx.check(rc == 3, "public key as --decrypt-key: rc %d" % rc)
    garbage = ctx.path("garbage.pem")
    with open(garbage, "w") as f:
        f.write("-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n")
    rc, out, err = ctx.run(["decode", "--key", garbage], msg)
    ctx.check(rc == 3, "garbage key file: rc %d" % rc)
    # A private key works for --key (its public half).
    rc, out, _ = ctx.run(["decode", "--key", priv], msg)
    ctx.check(rc == 0 and b'"valid"' in out, "private key as --key verifies")
    # --decrypt-key on a type without an encrypted field is ignored.
    rc, out, _ = ctx.run(["decode", "--key", pub, "--decrypt-key", priv], msg)
    ctx.check(rc == 0 and b"plaintext_hex" not in out, "--decrypt-key ignored for DATA")
    # A 3072-bit signer: 384-byte signature, verifies; the 2048-bit key says invalid.
    p3, q3 = keygen(ctx, "k3072", 3072)
    rc, m3, err = encode(ctx, sample_json("ACTION"), p3)
    ctx.check(rc == 0 and len(m3) == 22 + 36 + 384 + 1, "3072-bit encode (%r)" % err)
    rc, d3, _ = decode(ctx, m3, ["--key", q3])
    ctx.check(rc == 0 and d3["signature"] == "valid", "3072-bit verify")
    rc, d3, _ = decode(ctx, m3, ["--key", pub])
    ctx.check(rc == 1 and d3["signature"] == "invalid", "3072-bit sig with 2048-bit key")


def group_encode_input(ctx):
    priv, pub = keygen(ctx, "enc")
    base = sample_json("SYNDICATED_DEV_LIST")
    rc, want, _ = encode(ctx, base, priv)
    ctx.check(rc == 0, "base encodes")

    def enc_text(text, extra=()):
        return ctx.run(["encode", "--key", priv] + list(extra), text.encode("utf-8")
                       if isinstance(text, str) else text)

    # Accepted spellings that mean the same message.
    same = [
        dict(base, sequence_id=42),                              # decimal integer
        dict(base, sequence_id="2a"),                            # hex without 0x
        dict(base, sender_id="0xB9D077E223834CF6"),              # upper case
        dict(base, device_id="0x0123456789abcdef"),
        dict(base, device_id="123456789abcdef"),                 # no zero padding
        dict(base, device_sequence="0x2"),
        dict(base, signature_hex="00", signature="invalid"),     # ignored
        {k: v for k, v in base.items() if k != "msg_type"},      # type alone
        {k: v for k, v in base.items() if k != "type"},          # msg_type alone
        dict(base, version=5),
    ]
    for i, obj in enumerate(same):
        rc, out, err = encode(ctx, obj, priv)
        ctx.check(rc == 0 and out == want, "equivalent JSON %d encodes the same (%r)" % (i, err))
    pretty = "\ufeff" + json.dumps(base, indent=4).replace('"SYNDICATED_DEV_LIST"',
                                                            '"SYNDICATED_DEV_\\u004cIST"')
    rc, out, err = enc_text(pretty)
    ctx.check(rc == 0 and out == want, "BOM, indentation and \\u escapes accepted (%r)" % err)
    # Status by name.
    r1 = dict(sample_json("RESPONSE"), status="JOIN_SUCCESS")
    r2 = sample_json("RESPONSE")
    a = encode(ctx, r1, priv)
    b = encode(ctx, r2, priv)
    ctx.check(a[0] == 0 and a[1] == b[1], "status by name (%r)" % a[2])

    # Malformed JSON: exit 2, one error line naming line and column.
    good = json.dumps(base)
    bad_json = {
        "empty": "",
        "array": "[" + good + "]",
        "trailing comma": good[:-1] + ",}",
        "comment": "/* x */" + good,
        "single quotes": good.replace('"', "'"),
        "trailing text": good + " x",
        "two objects": good + good,
        "duplicate": good[:-1] + ', "count": 1, "count": 2}',
        "leading zero": good.replace('"device_sequence": 2', '"device_sequence": 02'),
        "NaN": good.replace('"device_sequence": 2', '"device_sequence": NaN'),
        "control char": good.replace("SYNDICATED_DEV_LIST", "SYNDICATED\tDEV_LIST"),
        "lone surrogate": good.replace("SYNDICATED_DEV_LIST", "\\ud800"),
        "bad escape": good.replace("SYNDICATED_DEV_LIST", "\\x41"),
        "unterminated": good[:-1],
        "deep": "[" * 100 + "]" * 100,
        "nul escape": good.replace("SYNDICATED_DEV_LIST", "A\\u0000"),
    }
    for what, text in bad_json.items():
        rc, out, err = enc_text(text)
        ctx.check(rc == 2 and out == b"", "bad JSON (%s): rc %d" % (what, rc))
        one_error_line(ctx, err, "encode", "bad JSON (%s)" % what)
    rc, out, err = enc_text(good.encode().replace(b"SYNDICATED_DEV_LIST", b"\xff\xfe"))
    ctx.check(rc == 2, "invalid UTF-8 rejected")
    rc, out, err = enc_text(good.encode().replace(b"SYNDICATED_DEV_LIST", b"\xc0\x80"))
    ctx.check(rc == 2, "overlong UTF-8 rejected")

    # Well-formed JSON that does not describe a valid message: exit 2.
    def without(k):
        return {kk: vv for kk, vv in base.items() if kk != k}
    bad_obj = {
        "no type": {k: v for k, v in base.items() if k not in ("type", "msg_type")},
        "unknown type": dict(base, type="GROUP_ADD", msg_type="0x07"),
        "GENERIC": dict(without("msg_type"), type="GENERIC"),
        "type mismatch": dict(base, msg_type="0x27"),
        "type not a string": dict(without("msg_type"), type=40),
        "lowercase type": dict(without("msg_type"), type="syndicated_dev_list"),
        "version 4": dict(base, version=4),
        "no sequence": without("sequence_id"),
        "no sender": without("sender_id"),
        "no token": without("token_hex"),
        "empty token": dict(base, token_hex=""),
        "token too long": dict(base, token_hex="41" * 1025),
        "odd hex": dict(base, token_hex="414"),
        "non-hex": dict(base, token_hex="4g"),
        "token not a string": dict(base, token_hex=65),
        "missing body": without("device_id"),
        "foreign body": dict(base, url_hex="00"),
        "unknown member": dict(base, colour="red"),
        "seq 17 digits": dict(base, sequence_id="0x10000000000000000"),
        "seq negative": dict(base, sequence_id=-1),
        "seq fraction": dict(base, sequence_id=1.5),
        "seq exponent": dict(base, sequence_id=1e3),
        "seq over 2^64": dict(base, sequence_id=1 << 64),
        "seq bool": dict(base, sequence_id=True),
        "seq null": dict(base, sequence_id=None),
        "u32 over": dict(base, device_sequence=1 << 32),
        "u32 as id-ish string": dict(base, device_sequence="2"),
        "device id junk": dict(base, device_id="xyz"),
        "device id empty": dict(base, device_id=""),
    }
    for what, obj in bad_obj.items():
        rc, out, err = encode(ctx, obj, priv)
        ctx.check(rc == 2 and out == b"", "bad message JSON (%s): rc %d %r" % (what, rc, err))
        one_error_line(ctx, err, "encode", "bad message JSON (%s)" % what)
    for what, obj in {
        "u8 over": dict(sample_json("ACTION"), action_id=256),
        "status name unknown": dict(sample_json("RESPONSE"), status="GREAT"),
        "url over 4096": dict(sample_json("INITIATE"), url_hex="41" * 4097),
        "digest over 1024": dict(sample_json("INITIATE"), digest_hex="41" * 1025),
        "encrypted over 8192": dict(sample_json("HM_JOIN_RESP"), encrypted_hex="41" * 8193),
        "data over 65535": dict(sample_json("DATA"), data_hex="41" * 65536),
        "plaintext without --encrypt-to": {k: v for k, v in dict(
            sample_json("HM_JOIN_RESP"), plaintext_hex="41").items() if k != "encrypted_hex"},
    }.items():
        rc, out, err = encode(ctx, obj, priv)
        ctx.check(rc == 2 and out == b"", "bad message JSON (%s): rc %d %r" % (what, rc, err))
        one_error_line(ctx, err, "encode", "bad message JSON (%s)" % what)
    # Field limits are inclusive.
    rc, out, err = encode(ctx, dict(sample_json("DATA"), data_hex="41" * 65535), priv)
    ctx.check(rc == 0, "data of 65535 bytes encodes (%r)" % err)
    rc, dec, _ = decode(ctx, out, ["--key", pub])
    ctx.check(rc == 0 and len(dec["data_hex"]) == 2 * 65535, "and decodes")
    rc, out, err = encode(ctx, dict(base, token_hex="41" * 1024), priv)
    ctx.check(rc == 0, "token of 1024 bytes encodes (%r)" % err)
    # Usage-type problems: exit 3.
    rc, out, err = ctx.run(["encode"], good.encode())
    ctx.check(rc == 3, "encode without --key: rc %d" % rc)
    one_error_line(ctx, err, "encode", "no --key")
    rc, out, err = ctx.run(["encode", "--key", pub], good.encode())
    ctx.check(rc == 3, "encode with a public key: rc %d" % rc)
    rc, out, err = ctx.run(["encode", "--key", priv, "--encrypt-to", pub], good.encode())
    ctx.check(rc == 3, "--encrypt-to on a type without encrypted field: rc %d" % rc)
    rc, out, err = ctx.run(["encode", "--key", priv, ctx.path("nonexistent.json")])
    ctx.check(rc == 3, "missing JSON file: rc %d" % rc)
    # --hex output is lowercase hex and a newline.
    rc, out, _ = ctx.run(["encode", "--key", priv, "--hex"], good.encode())
    ctx.check(rc == 0 and out == want.hex().encode() + b"\n", "--hex output")
    # --encrypt-to uses a fresh envelope each time; a stale encrypted_hex is ignored.
    hm = dict(sample_json("HM_JOIN_RESP"), plaintext_hex="00ff")
    rc1, m1, e1 = encode(ctx, hm, priv, ["--encrypt-to", pub])
    rc2, m2, e2 = encode(ctx, hm, priv, ["--encrypt-to", pub])
    ctx.check(rc1 == 0 and rc2 == 0 and m1 != m2, "envelopes are randomised (%r %r)" % (e1, e2))
    hm_empty = dict(hm, plaintext_hex="")
    rc, m3, err = encode(ctx, hm_empty, priv, ["--encrypt-to", pub])
    if ctx.check(rc == 0, "empty plaintext encrypts (%r)" % err):
        rc, d, _ = decode(ctx, m3, ["--decrypt-key", priv])
        ctx.check(rc == 0 and d["plaintext_hex"] == "", "empty plaintext decrypts")


def group_keygen_id(ctx):
    priv, pub = keygen(ctx, "kg")
    with open(priv) as f:
        ptext = f.read()
    with open(pub) as f:
        qtext = f.read()
    ctx.check(ptext.startswith("-----BEGIN PRIVATE KEY-----"), "private key is PKCS#8")
    ctx.check(qtext.startswith("-----BEGIN PUBLIC KEY-----"), "public key is SPKI")
    ctx.check(stat.S_IMODE(os.stat(priv).st_mode) == 0o600, "private key mode 0600")
    p = subprocess.run(["openssl", "pkey", "-in", priv, "-noout", "-text"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ctx.check(p.returncode == 0 and b"2048 bit" in p.stdout, "openssl reads the private key")
    p = subprocess.run(["openssl", "pkey", "-in", priv, "-pubout"], stdout=subprocess.PIPE)
    ctx.check(p.returncode == 0 and p.stdout.decode() == qtext,
              "the public file is the private key's public half")
    p = subprocess.run(["openssl", "pkey", "-pubin", "-in", pub, "-noout"])
    ctx.check(p.returncode == 0, "openssl reads the public key")
    # The key signs messages openssl verifies (done per type in the types group), and the
    # fingerprint line matches openssl's SHA-256 of the DER public key.
    der = subprocess.run(["openssl", "pkey", "-pubin", "-in", pub, "-outform", "DER"],
                         stdout=subprocess.PIPE).stdout
    import hashlib
    rc, out, err = ctx.run(["keygen", "--out", ctx.path("kg2")])
    m = re.search(rb"sha256:([0-9a-f]{64})", out)
    der2 = subprocess.run(["openssl", "pkey", "-pubin", "-in", ctx.path("kg2.pub.pem"),
                           "-outform", "DER"], stdout=subprocess.PIPE).stdout
    ctx.check(rc == 0 and m is not None and m.group(1).decode() == hashlib.sha256(der2).hexdigest(),
              "keygen prints the SHA-256 fingerprint of the public key")
    ctx.check(der != der2, "two keygens give different keys")
    # No overwrite without --force; --force replaces both files.
    rc, out, err = ctx.run(["keygen", "--out", ctx.path("kg")])
    ctx.check(rc == 3, "keygen refuses to overwrite: rc %d" % rc)
    one_error_line(ctx, err, "keygen", "overwrite")
    with open(priv) as f:
        ctx.check(f.read() == ptext, "refused keygen left the old key alone")
    os.chmod(priv, 0o644)
    rc, out, err = ctx.run(["keygen", "--out", ctx.path("kg"), "--force"])
    ctx.check(rc == 0, "keygen --force: rc %d" % rc)
    with open(priv) as f:
        ctx.check(f.read() != ptext, "--force wrote a new key")
    ctx.check(stat.S_IMODE(os.stat(priv).st_mode) == 0o600, "--force resets mode 0600")
    # Bits.
    p4, q4 = keygen(ctx, "k4096", 4096)
    p = subprocess.run(["openssl", "pkey", "-pubin", "-in", q4, "-noout", "-text"],
                       stdout=subprocess.PIPE)
    ctx.check(b"4096 bit" in p.stdout, "--bits 4096 gives a 4096-bit key")
    for bad in ("1024", "2047", "8193", "abc", "-2048", "02048", ""):
        rc, out, err = ctx.run(["keygen", "--out", ctx.path("kb"), "--bits", bad])
        ctx.check(rc == 3 and not os.path.exists(ctx.path("kb.pem")),
                  "--bits %r refused (rc %d)" % (bad, rc))
    rc, out, err = ctx.run(["keygen"])
    ctx.check(rc == 3, "keygen without --out: rc %d" % rc)
    rc, out, err = ctx.run(["keygen", "--out", ctx.path("no/such/dir/k")])
    ctx.check(rc == 3 and not os.path.exists(ctx.path("no")), "unwritable prefix: rc %d" % rc)
    # A public key file that cannot be created leaves no private key behind.
    os.mkdir(ctx.path("half.pub.pem"))
    rc, out, err = ctx.run(["keygen", "--out", ctx.path("half")])
    ctx.check(rc == 3 and not os.path.exists(ctx.path("half.pem")),
              "failed keygen leaves no half pair (rc %d)" % rc)

    # id.
    ids = set()
    for _ in range(5):
        rc, out, err = ctx.run(["id"])
        text = out.decode()
        ctx.check(rc == 0 and re.fullmatch(r"(0|[1-9a-f][0-9a-f]{0,15})\n", text) is not None,
                  "id prints one id: %r" % text)
        ids.add(text)
    ctx.check(len(ids) == 5, "five ids are distinct")
    rc, out, err = ctx.run(["id", "--count", "50"])
    lines = out.decode().split("\n")
    ctx.check(rc == 0 and len(lines) == 51 and lines[-1] == "" and len(set(lines[:-1])) == 50
              and all(re.fullmatch(r"[1-9a-f][0-9a-f]{0,15}|0", l) for l in lines[:-1]),
              "id --count 50")
    for bad in (["id", "--count", "0"], ["id", "--count", "x"], ["id", "extra"],
                ["id", "--count"]):
        rc, out, err = ctx.run(bad)
        ctx.check(rc == 3 and out == b"", "%r: rc %d" % (bad, rc))
        one_error_line(ctx, err, "id", repr(bad))


def group_usage(ctx):
    rc, out, err = ctx.run([])
    ctx.check(rc == 3 and b"usage" in err, "no arguments: rc %d" % rc)
    rc, out, err = ctx.run(["--help"])
    ctx.check(rc == 0 and out.startswith(b"usage: srup"), "--help")
    for cmd in (b"keygen", b"id", b"decode", b"encode", b"phrase", b"pictograph", b"keys"):
        ctx.check(cmd in out, "--help lists %s" % cmd.decode())
    rc, out, err = ctx.run(["--version"])
    ctx.check(rc == 0 and re.match(rb"srup \d+\.\d+\.\d+", out) is not None,
              "--version: %r" % out)
    rc, out, err = ctx.run(["frobnicate"])
    ctx.check(rc == 3 and out == b"", "unknown command: rc %d" % rc)
    for cmd in ("keygen", "id", "decode", "encode"):
        for h in ("--help", "-h"):
            rc, out, err = ctx.run([cmd, h])
            ctx.check(rc == 0 and out.startswith(("usage: srup " + cmd).encode())
                      and b"Exit codes" in out, "%s %s" % (cmd, h))
        rc2, out2, _ = ctx.run(["help", cmd])
        ctx.check(rc2 == 0 and out2 == out, "srup help %s" % cmd)
        rc, out, err = ctx.run([cmd, "--no-such-option"])
        ctx.check(rc == 3 and out == b"", "%s --no-such-option: rc %d" % (cmd, rc))
        one_error_line(ctx, err, cmd, "%s unknown option" % cmd)
    for args in (["decode", "--key"], ["decode", "a", "b"], ["decode", "-x"],
                 ["decode", "--hex=1"], ["decode", "--hex", "--hex"],
                 ["encode", "--key", "a", "--key", "b"], ["encode", "--key="],
                 ["keygen", "--out", "x", "extra"]):
        rc, out, err = ctx.run(args)
        ctx.check(rc == 3 and out == b"", "%r: rc %d" % (args, rc))
        one_error_line(ctx, err, args[0], repr(args))
    # A subcommand of a subcommand names itself in full (issue 14: "srup add: ...").
    for sub in ("add", "revoke", "list", "show"):
        rc, out, err = ctx.run(["keys", sub, "--idd", "x"])
        ctx.check(rc == 3 and err.startswith(("srup keys %s: " % sub).encode()) and
                  b"--idd" in err, "keys %s --idd: %r" % (sub, err))
    # getopt_long: "--name=value" and a unique abbreviation both work.
    rc, out, err = ctx.run(["keygen", "--ou=" + os.path.join(ctx.tmp, "abbrev")])
    ctx.check(rc == 0 and os.path.exists(os.path.join(ctx.tmp, "abbrev.pem")),
              "keygen --ou=PATH (abbreviated long option): rc %d %r" % (rc, err))


def group_mutations(ctx):
    """Randomly damaged JSON and messages (fixed seed): the tool answers with a defined exit
    code and never crashes. Most useful on a sanitizer build (exit codes 98/99 are set for
    ASan/UBSan reports by the caller's environment, and never match)."""
    priv, pub = keygen(ctx, "mut")
    rnd = random.Random(1234)
    bad = []
    names = sorted(TYPES)
    for i in range(300):
        obj = sample_json(names[i % len(names)])
        text = bytearray(json.dumps(obj, indent=rnd.choice([None, 1])).encode())
        for _ in range(rnd.randrange(1, 4)):
            op = rnd.randrange(4)
            pos = rnd.randrange(len(text))
            if op == 0:
                text[pos] = rnd.randrange(256)
            elif op == 1:
                del text[pos:pos + rnd.randrange(1, 8)]
            elif op == 2:
                text[pos:pos] = rnd.choice([b"{", b"[", b"\\", b'"', b",", b"\\u", b"\xff",
                                            b"0", b"-", b"e9", b"null", b"\\ud83d"])
            else:
                text = text[:pos]
        rc, out, err = ctx.run(["encode", "--key", priv, "--hex"], bytes(text))
        if rc not in (0, 2) or (rc == 2 and out != b""):
            bad.append(("encode", i, rc, err[:200]))
    rc, msg, _ = encode(ctx, sample_json("OBSERVE_REQ"), priv)
    for i in range(200):
        m = bytearray(msg)
        for _ in range(rnd.randrange(1, 4)):
            pos = rnd.randrange(len(m))
            if rnd.randrange(2):
                m[pos] = rnd.randrange(256)
            else:
                m = m[:pos] + m[pos + rnd.randrange(1, 300):]
        if bytes(m) == msg:
            continue
        rc, out, err = ctx.run(["decode", "--key", pub, "--decrypt-key", priv], bytes(m))
        if rc not in (1, 2):
            bad.append(("decode", i, rc, err[:200]))
    ctx.check(not bad, "mutated inputs give defined exit codes: %r" % bad[:5])


def group_terminal(ctx):
    """encode never writes binary to a terminal; --hex is fine there."""
    import pty
    priv, _ = keygen(ctx, "tty")
    obj = json.dumps(sample_json("ACTION")).encode()
    for extra, want_rc in (([], 3), (["--hex"], 0)):
        master, slave = pty.openpty()
        p = subprocess.run(ctx.wrapper + [ctx.srup, "encode", "--key", priv] + extra,
                           input=obj, stdout=slave, stderr=subprocess.PIPE, timeout=60)
        os.close(slave)
        os.close(master)
        ctx.check(p.returncode == want_rc, "encode %r to a terminal: rc %d" % (extra, p.returncode))
        if want_rc == 3:
            one_error_line(ctx, p.stderr, "encode", "binary to a terminal")

AUDIT_KEYS = {"time", "verdict", "reason", "source", "command", "target", "role", "result",
              "detail", "uid"}


def audit_records(ctx, path):
    """The JSON lines of an audit log, each checked against the admin line schema."""
    if not os.path.exists(path):
        return []
    recs = []
    with open(path) as f:
        text = f.read()
    ctx.check(text == "" or text.endswith("\n"), "%s ends with a newline" % path)
    for line in text.splitlines():
        r = parse_json_strict(line)
        ctx.check(set(r.keys()) == AUDIT_KEYS, "audit line members: %s" % sorted(r.keys()))
        ctx.check(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", r.get("time", "")) is not None,
                  "audit time %r" % r.get("time"))
        ctx.check(r.get("verdict") == "admin" and r.get("reason") is None and
                  r.get("source") == "srup keys" and r.get("uid") == os.getuid(),
                  "audit constant members: %r" % r)
        recs.append(r)
    return recs


def show(ctx, store, ident):
    rc, out, err = ctx.run(["keys", "show", "--store", store, "--id", ident])
    fields = dict(l.split(": ", 1) for l in out.decode().splitlines() if ": " in l)
    return rc, fields


def group_keys_admin(ctx):
    """Issue 10 items 15 and 6: add refuses a taken id without --force (exit 3), never
    un-revokes, refuses e != 65537 and more than 4096 bits; every add and revoke is one JSON line
    in <store>/audit.jsonl (or --audit FILE), refusals included."""
    store = ctx.path("kstore")
    audit = os.path.join(store, "audit.jsonl")
    _, pub_a = keygen(ctx, "ka")
    _, pub_b = keygen(ctx, "kb")
    rc, out, err = ctx.run(["keys", "add", "--store", store, "--id", "1234", "--role", "device",
                            "--key", pub_a])
    ctx.check(rc == 0, "first add: rc %d %r" % (rc, err))
    rc, f = show(ctx, store, "1234")
    fp_a = f.get("fingerprint")
    ctx.check(rc == 0 and f.get("role") == "device" and f.get("status") == "active",
              "after add: %r" % f)
    recs = audit_records(ctx, audit)
    ctx.check(len(recs) == 1 and recs[0]["command"] == "add" and recs[0]["target"] == "1234"
              and recs[0]["role"] == "device" and recs[0]["result"] == "ok"
              and fp_a is not None and fp_a in recs[0]["detail"], "audit of add: %r" % recs)

    # the same id again, without --force: refused, nothing changed, audited
    rc, out, err = ctx.run(["keys", "add", "--store", store, "--id", "1234", "--role", "server",
                            "--key", pub_b])
    ctx.check(rc == 3, "add of a taken id without --force: rc %d" % rc)
    one_error_line(ctx, err, "keys add", "taken id")
    ctx.check(b"--force" in err and b"1234" in err, "the refusal names the id and --force: %r" % err)
    rc, f = show(ctx, store, "1234")
    ctx.check(f.get("role") == "device" and f.get("fingerprint") == fp_a,
              "refused add changed the record: %r" % f)
    recs = audit_records(ctx, audit)
    ctx.check(len(recs) == 2 and recs[1]["result"] == "refused" and recs[1]["command"] == "add",
              "audit of the refused add: %r" % recs[1:])

    # --force replaces key and role
    rc, out, err = ctx.run(["keys", "add", "--store", store, "--id", "1234", "--role", "server",
                            "--key", pub_b, "--force"])
    ctx.check(rc == 0, "add --force: rc %d %r" % (rc, err))
    rc, f = show(ctx, store, "1234")
    ctx.check(f.get("role") == "server" and f.get("status") == "active"
              and f.get("fingerprint") not in (None, fp_a), "after add --force: %r" % f)
    recs = audit_records(ctx, audit)
    ctx.check(len(recs) == 3 and recs[2]["result"] == "ok" and recs[2]["role"] == "server"
              and "--force" in recs[2]["detail"] and "device" in recs[2]["detail"],
              "audit of add --force: %r" % recs[2:])

    # revoke, then add (with and without --force) never un-revokes
    rc, out, err = ctx.run(["keys", "revoke", "--store", store, "--id", "1234"])
    ctx.check(rc == 0, "revoke: rc %d" % rc)
    for extra in ([], ["--force"]):
        rc, out, err = ctx.run(["keys", "add", "--store", store, "--id", "1234", "--role",
                                "device", "--key", pub_a] + extra)
        ctx.check(rc == 3, "add %r of a revoked id: rc %d" % (extra, rc))
        one_error_line(ctx, err, "keys add", "revoked id")
        ctx.check(b"revoked" in err, "the refusal says the id is revoked: %r" % err)
        if extra:
            ctx.check(b"even with --force" in err, "the refusal says --force does not help: %r"
                      % err)
        rc, f = show(ctx, store, "1234")
        ctx.check(f.get("status") == "revoked" and f.get("role") == "server",
                  "add %r un-revoked or changed the id: %r" % (extra, f))
    recs = audit_records(ctx, audit)
    ctx.check(len(recs) == 6 and recs[3]["command"] == "revoke" and recs[3]["result"] == "ok"
              and recs[3]["role"] == "server" and recs[4]["result"] == "refused"
              and recs[5]["result"] == "refused", "audit of revoke and refused re-adds: %r"
              % recs[3:])
    rc, out, err = ctx.run(["keys", "revoke", "--store", store, "--id", "99"])
    ctx.check(rc == 3, "revoke of an unknown id: rc %d" % rc)
    recs = audit_records(ctx, audit)
    ctx.check(len(recs) == 7 and recs[6]["result"] == "not_found" and recs[6]["target"] == "99",
              "audit of an unknown revoke: %r" % recs[6:])

    # bulk add: one line
    rc, out, err = ctx.run(["keys", "add", "--store", store, "--random", "3", "--role", "device",
                            "--key", pub_a])
    ctx.check(rc == 0 and len(out.split()) == 3, "add --random 3: rc %d" % rc)
    recs = audit_records(ctx, audit)
    ctx.check(len(recs) == 8 and recs[7]["command"] == "add" and recs[7]["target"] is None
              and "3" in recs[7]["detail"] and recs[7]["result"] == "ok",
              "audit of a bulk add: %r" % recs[7:])

    # --audit FILE overrides the default; an audit log that cannot be opened changes nothing
    other = ctx.path("other-audit.jsonl")
    rc, out, err = ctx.run(["keys", "add", "--store", store, "--id", "77", "--role", "observer",
                            "--key", pub_a, "--audit", other])
    ctx.check(rc == 0, "add --audit FILE: rc %d" % rc)
    ctx.check(len(audit_records(ctx, audit)) == 8, "--audit FILE also wrote the default log")
    orecs = audit_records(ctx, other)
    ctx.check(len(orecs) == 1 and orecs[0]["target"] == "77" and orecs[0]["role"] == "observer",
              "--audit FILE: %r" % orecs)
    rc, out, err = ctx.run(["keys", "add", "--store", store, "--id", "78", "--role", "device",
                            "--key", pub_a, "--audit", ctx.path("no/such/dir/a.jsonl")])
    ctx.check(rc == 3, "add with an unopenable audit log: rc %d" % rc)
    one_error_line(ctx, err, "keys add", "unopenable audit log")
    rc, f = show(ctx, store, "78")
    ctx.check(rc == 3, "add with an unopenable audit log still added the key")
    rc, out, err = ctx.run(["keys", "revoke", "--store", store, "--id", "77", "--audit",
                            ctx.path("no/such/dir/a.jsonl")])
    rc2, f = show(ctx, store, "77")
    ctx.check(rc == 3 and f.get("status") == "active",
              "revoke with an unopenable audit log: rc %d, %r" % (rc, f))

    # item 6: e != 65537 and more than 4096 bits are refused before the store is touched
    e3 = ctx.path("e3.pem")
    e3pub = ctx.path("e3.pub.pem")
    p = subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                        "rsa_keygen_bits:2048", "-pkeyopt", "rsa_keygen_pubexp:3", "-out", e3],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p2 = subprocess.run(["openssl", "pkey", "-in", e3, "-pubout", "-out", e3pub],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ctx.check(p.returncode == 0 and p2.returncode == 0, "openssl made an e=3 key")
    big = os.path.join(ctx.vectors, "..", "unit", "fixtures", "rsa8192_public.pem")
    n_before = len(audit_records(ctx, audit))
    for key, want, label in ((e3pub, b"65537", "e = 3"), (big, b"4096", "8192 bits")):
        rc, out, err = ctx.run(["keys", "add", "--store", store, "--id", "4242", "--role",
                                "device", "--key", key])
        ctx.check(rc == 3, "add of a key with %s: rc %d" % (label, rc))
        one_error_line(ctx, err, "keys add", label)
        ctx.check(want in err, "the refusal of %s names %r: %r" % (label, want, err))
        rc, f = show(ctx, store, "4242")
        ctx.check(rc == 3, "a key with %s was stored" % label)
    ctx.check(len(audit_records(ctx, audit)) == n_before, "refused key files wrote audit lines")


def group_keys_json(ctx):
    """Issue 15: keys list/show and marks show print JSON (jansson) with ids as canonical text,
    the same values as the text output; a revoked key says so."""
    store = ctx.path("jstore")
    _, pub_a = keygen(ctx, "ja")
    ids = ["1f", "b9d077e223834cf6", "7"]
    for i, ident in enumerate(ids):
        rc, out, err = ctx.run(["keys", "add", "--store", store, "--id",
                                "0x%016x" % int(ident, 16) if i == 1 else ident,
                                "--role", ["device", "server", "observer"][i], "--key", pub_a])
        ctx.check(rc == 0, "add %s: rc %d %r" % (ident, rc, err))
    rc, out, err = ctx.run(["keys", "revoke", "--store", store, "--id", "7"])
    rc, out, err = ctx.run(["keys", "list", "--store", store, "--json"])
    try:
        keys = json.loads(out)
    except ValueError:
        keys = None
    ctx.check(rc == 0 and isinstance(keys, list), "keys list --json: rc %d %r" % (rc, out[:200]))
    keys = keys or []
    ctx.check([k.get("id") for k in keys] == ["7", "1f", "b9d077e223834cf6"],
              "keys list --json ids (canonical, in id order): %r" % [k.get("id") for k in keys])
    by = {k.get("id"): k for k in keys}
    ctx.check(by.get("1f", {}).get("role") == "device" and
              by.get("7", {}).get("status") == "revoked" and
              by.get("b9d077e223834cf6", {}).get("status") == "active",
              "keys list --json values: %r" % keys)
    rc, text, _ = ctx.run(["keys", "list", "--store", store])
    rows = [l.split("\t") for l in text.decode().splitlines()]
    ctx.check([[k["id"], k["role"], k["status"], k["added"]] for k in keys] == rows,
              "text and JSON lists differ: %r / %r" % (rows, keys))
    rc, out, err = ctx.run(["keys", "show", "--store", store, "--id", "0x1F", "--json"])
    try:
        one = json.loads(out)
    except ValueError:
        one = {}
    rc2, f = show(ctx, store, "1f")
    ctx.check(rc == 0 and one.get("id") == "1f" and one.get("bits") == 2048 and
              "sha256:" + str(one.get("fingerprint")) == f.get("fingerprint") and
              one.get("pem", "").startswith("-----BEGIN PUBLIC KEY-----"),
              "keys show --json: %r (text %r)" % (one, f))
    rc, out, err = ctx.run(["keys", "show", "--store", store, "--id", "99", "--json"])
    ctx.check(rc == 3 and out == b"", "keys show --json of an unknown id: rc %d %r" % (rc, out))
    rc, out, err = ctx.run(["marks", "show", "--store", store, "--id", "0xB9D077E223834CF6",
                            "--json"])
    try:
        marks = json.loads(out)
    except ValueError:
        marks = None
    ctx.check(rc == 0 and marks == {"id": "b9d077e223834cf6", "marks": []},
              "marks show --json: rc %d %r" % (rc, out))


def png_pixels(ctx, png, what):
    """Read a PNG with struct and zlib only: every chunk's CRC, IHDR (8-bit RGB, no interlace),
    the IDAT stream inflated, each scanline's filter (None). Returns (width, rows of RGB ints)."""
    if not ctx.check(png[:8] == b"\x89PNG\r\n\x1a\n", "%s: PNG signature" % what):
        return 0, []
    off, idat, ihdr, chunks = 8, b"", None, []
    while off + 12 <= len(png):
        n, kind = struct.unpack(">I4s", png[off:off + 8])
        data = png[off + 8:off + 8 + n]
        crc = struct.unpack(">I", png[off + 8 + n:off + 12 + n])[0]
        ctx.check(zlib.crc32(kind + data) == crc, "%s: CRC of %r" % (what, kind))
        chunks.append(kind)
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", data)
        elif kind == b"IDAT":
            idat += data
        off += 12 + n
    ctx.check(off == len(png) and chunks[0] == b"IHDR" and chunks[-1] == b"IEND",
              "%s: chunks %r" % (what, chunks))
    if not ctx.check(ihdr is not None and ihdr[2:] == (8, 2, 0, 0, 0) and ihdr[0] == ihdr[1],
                     "%s: IHDR %r" % (what, ihdr)):
        return 0, []
    w = ihdr[0]
    raw = zlib.decompress(idat)
    ctx.check(len(raw) == w * (1 + 3 * w), "%s: %d scanline bytes" % (what, len(raw)))
    rows = []
    for y in range(w):
        line = raw[y * (1 + 3 * w):(y + 1) * (1 + 3 * w)]
        ctx.check(line[:1] == b"\x00", "%s: row %d filter None" % (what, y))
        rows.append([int.from_bytes(line[1 + 3 * x:4 + 3 * x], "big") for x in range(w)])
    return w, rows


def pict_expected(value, style, scale):
    """The pictograph of a 128-bit value as present.h specifies it, pixel by pixel: cells in
    row-major order (mono: 12x12, a dark 2x2 block in each corner, the other cells one bit each,
    most significant first, 1 = black; colour: 8x8, two bits each, black/blue/orange/white),
    a white quiet border of 2 cells and a grey frame max(1, scale/8) px thick around the grid."""
    bits = bin(int(value, 16))[2:].zfill(128)
    if style == "mono":
        side, grid, k = 12, [], 0
        for r in range(12):
            row = []
            for c in range(12):
                if (r < 2 or r >= 10) and (c < 2 or c >= 10):
                    row.append(0x000000)
                else:
                    row.append(0x000000 if bits[k] == "1" else 0xFFFFFF)
                    k += 1
            grid.append(row)
    else:
        side = 8
        pal = [0x000000, 0x0072B2, 0xE69F00, 0xFFFFFF]
        grid = [[pal[int(bits[2 * (8 * r + c):2 * (8 * r + c) + 2], 2)] for c in range(8)]
                for r in range(8)]
    frame = max(1, scale // 8)
    g0, g1 = 2 * scale, 2 * scale + side * scale
    size = g1 + 2 * scale
    img = []
    for y in range(size):
        row = []
        for x in range(size):
            if g0 <= x < g1 and g0 <= y < g1:
                row.append(grid[(y - g0) // scale][(x - g0) // scale])
            elif g0 - frame <= x < g1 + frame and g0 - frame <= y < g1 + frame:
                row.append(0x808080)
            else:
                row.append(0xFFFFFF)
        img.append(row)
    return img


def group_pictograph_png(ctx):
    """Issue 15: srup pictograph --format png is zlib-compressed; a reader with only struct and
    zlib gets exactly the pixels the spec gives, and the size is a few hundred bytes to a few KB
    (the stored-block encoder wrote ~200 KB at scale 16)."""
    values = ["0123456789abcdef0123456789abcdef", "ffffffffffffffffffffffffffffffff",
              "00000000000000000000000000000000", "b9d077e223834cf65a5a5a5a0f0f0f0f"]
    for value in values:
        for style in ("mono", "colour"):
            for scale in (1, 7, 16):
                what = "%s %s scale %d" % (value[:8], style, scale)
                rc, png, err = ctx.run(["pictograph", value, "--style", style, "--format", "png",
                                        "--scale", str(scale)])
                if not ctx.check(rc == 0 and png, "%s: rc %d %r" % (what, rc, err)):
                    continue
                w, rows = png_pixels(ctx, png, what)
                want = pict_expected(value, style, scale)
                ctx.check(rows == want, "%s: pixels differ from the spec" % what)
                raw = w * (1 + 3 * w)
                if scale == 16:
                    print("png %s: %d bytes (%d bytes of scanlines, %.0fx)"
                          % (what, len(png), raw, raw / len(png)))
                    ctx.check(len(png) < 8192, "%s: %d bytes, not a few KB" % (what, len(png)))


GROUPS = {
    "pictograph_png": group_pictograph_png,
    "keys_admin": group_keys_admin,
    "keys_json": group_keys_json,
    "terminal": group_terminal,
    "mutations": group_mutations,
    "vectors": group_vectors,
    "types": group_types,
    "decode_input": group_decode_input,
    "encode_input": group_encode_input,
    "keygen_id": group_keygen_id,
    "usage": group_usage,
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--srup", required=True)
    ap.add_argument("--vectors", required=True)
    ap.add_argument("--group", action="append", choices=sorted(GROUPS))
    ap.add_argument("--wrapper", default="", help="command prefix, e.g. valgrind options")
    a = ap.parse_args()
    if shutil.which("openssl") is None:
        print("openssl command not found")
        return 1
    tmp = tempfile.mkdtemp(prefix="srup-tool-test-")
    ctx = Ctx(os.path.abspath(a.srup), os.path.abspath(a.vectors), shlex.split(a.wrapper), tmp)
    try:
        for name in a.group or sorted(GROUPS):
            before = ctx.failures
            GROUPS[name](ctx)
            print("group %s: %s" % (name, "ok" if ctx.failures == before else "FAILED"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d checks, %d failures" % (ctx.checks, ctx.failures))
    return 1 if ctx.failures or ctx.checks == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
