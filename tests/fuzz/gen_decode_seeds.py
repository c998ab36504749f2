#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# gen_decode_seeds.py - writes the seed corpus of fuzz_decode into tests/fuzz/corpus/decode/.
# Seeds: the six reference vectors' serialized bytes as they are, one well-formed message of
# every v5 type built by hand from spec/srup-wire.md (dummy signature bytes: they parse, they do
# not verify), and edge inputs the decoder must reject. Uses no project code, so the seeds do
# not depend on the codec they test. Run once; the output is committed.
import json
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
VECTORS = os.path.join(HERE, "..", "vectors", "vectors.json")
OUT = os.path.join(HERE, "corpus", "decode")

TOKEN = b"3f1c9e2a-7b4d-4c8e-9a61-0d2f5b7e8c13"
SIG = bytes((i * 7 + 3) & 0xFF for i in range(256))


def var(b):
    return struct.pack(">H", len(b)) + b


def u64(v):
    return struct.pack("<Q", v)


def u32(v):
    return struct.pack("<I", v)


def msg(t, body, token=TOKEN, sig=SIG, version=5, seq=0x1122334455667788, sender=0xB9D077E223834CF6):
    return bytes([version, t]) + u64(seq) + u64(sender) + var(token) + var(sig) + body


ENC = bytes(range(256)) + bytes(range(32))  # 288 opaque bytes standing in for an envelope

BODIES = {
    0x01: var(b"https://updates.example.com/fw.bin\x00") + var(b"a" * 64 + b"\x00"),
    0x02: bytes([0x50]),
    0x03: b"",
    0x04: bytes([7]),
    0x05: var(b"temperature") + var(struct.pack("<d", 21.5)),
    0x06: b"",
    0x09: b"",
    0x0A: u64(0x0123456789ABCDEF),
    0x0B: b"",
    0x0C: var(ENC),
    0x0D: u64(0xFEDCBA9876543210),
    0x0E: var(ENC),
    0x0F: u64(0x1111111111111111) + var(ENC),
    0x10: b"",
    0x11: b"",
    0x12: b"",
    0x13: b"",
    0x21: var(b"mqtts://remote.example.com:8883\x00") + var(ENC),
    0x24: bytes([3]) + u64(0x2222222222222222),
    0x25: var(b"count") + var(u32(5)) + u64(0x3333333333333333),
    0x26: u64(0x4444444444444444),
    0x27: u32(12),
    0x28: u32(3) + u64(0x5555555555555555),
    0x29: var(ENC),
    0x2C: var(b"\x00\x00") + bytes([9]) + b"\x00\x00",
    0x2E: b"",
    0x2F: b"",
}


def main():
    os.makedirs(OUT, exist_ok=True)
    seeds = {}
    with open(VECTORS) as f:
        for v in json.load(f):
            seeds["vector_" + v["name"]] = bytes.fromhex(v["serialized_hex"])
    for t, body in BODIES.items():
        seeds["type_%02x" % t] = msg(t, body)
    # Larger keys and limits: RSA-4096 signature, longest token, empty var fields.
    seeds["sig_512"] = msg(0x04, bytes([1]), sig=bytes(512))
    seeds["token_1024"] = msg(0x03, b"", token=b"t" * 1024)
    seeds["data_empty"] = msg(0x05, var(b"") + var(b""))
    # Edge inputs that must be rejected.
    good = msg(0x04, bytes([7]))
    seeds["edge_empty"] = b""
    seeds["edge_version_only"] = b"\x05"
    seeds["edge_bad_version"] = b"\x04" + good[1:]
    seeds["edge_generic"] = msg(0x00, b"")
    seeds["edge_unassigned_type"] = msg(0x07, b"")
    seeds["edge_header_truncated"] = good[:15]
    seeds["edge_token_len_lies"] = good[:18] + b"\xff\xff" + good[20:]
    seeds["edge_empty_token"] = msg(0x04, bytes([7]), token=b"")
    seeds["edge_sig_255"] = msg(0x04, bytes([7]), sig=bytes(255))
    seeds["edge_sig_len_lies"] = good[:20 + len(TOKEN)] + b"\xff\xff" + good[22 + len(TOKEN):]
    seeds["edge_trailing_byte"] = good + b"\x00"
    seeds["edge_missing_body"] = good[:-1]
    seeds["edge_c2_bad_pad"] = msg(0x2C, var(b"\x00\x00") + bytes([9]) + b"\x00\x01")
    seeds["edge_c2_no_pad"] = msg(0x2C, var(b"\x00\x00") + bytes([9]))
    seeds["edge_url_over_limit"] = msg(0x01, var(b"u" * 4097) + var(b"d"))
    for name, data in sorted(seeds.items()):
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    print("wrote %d seeds to %s" % (len(seeds), OUT), file=sys.stderr)


if __name__ == "__main__":
    main()
