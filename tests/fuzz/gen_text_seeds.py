#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# gen_text_seeds.py - writes the seed corpus of fuzz_text into tests/fuzz/corpus/text/.
# Each seed is one selector byte (0 id, 1 hex, 2 id128, 3 phrase) and the text. Phrases are
# built from libsrup/src/wordlist.c by the rule in srup/present.h (ten 12-bit fragments, then
# the last 8 bits padded with 1010), without project code. Run once; the output is committed.
import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))
WORDLIST = os.path.join(HERE, "..", "..", "libsrup", "src", "wordlist.c")
OUT = os.path.join(HERE, "corpus", "text")


def phrase(value):
    with open(WORDLIST) as f:
        body = f.read().split("{", 1)[1]
    words = re.findall(r'"([a-z]+)"', body)
    assert len(words) == 4096
    idx = [(value >> (128 - 12 * (i + 1))) & 0xFFF for i in range(10)]
    idx.append(((value & 0xFF) << 4) | 0xA)
    return " ".join(words[i] for i in idx)


def main():
    os.makedirs(OUT, exist_ok=True)
    v = 0xC4BF8105835141E0886FD25F9A69C5AD
    seeds = {
        "id_plain": b"\x00b9d077e223834cf6",
        "id_0x": b"\x000xB9D077E223834CF6",
        "id_zero": b"\x000",
        "id_leading_zeros": b"\x00000000000000002a",
        "id_17_digits": b"\x0011111111111111111",
        "id_bare_0x": b"\x000x",
        "id_sign": b"\x00-1",
        "hex_even": b"\x010123456789abcdefABCDEF",
        "hex_odd": b"\x01abc",
        "hex_bad": b"\x01zz",
        "hex_empty": b"\x01",
        "id128_hyphen": b"\x02C4BF8105-8351-41E0-886F-D25F9A69C5AD",
        "id128_plain": b"\x02c4bf8105835141e0886fd25f9a69c5ad",
        "id128_brace": b"\x02{C4BF8105-8351-41E0-886F-D25F9A69C5AD}",
        "id128_misplaced": b"\x02C4BF81058-351-41E0-886F-D25F9A69C5AD",
        "phrase_ok": b"\x03" + phrase(v).encode(),
        "phrase_zero": b"\x03" + phrase(0).encode(),
        "phrase_ones": b"\x03" + phrase((1 << 128) - 1).encode(),
        "phrase_spaces_case": b"\x03\t " + phrase(v).upper().replace(" ", "\n  ").encode() + b"  ",
        "phrase_short": b"\x03" + " ".join(phrase(v).split()[:10]).encode(),
        "phrase_bad_last": b"\x03" + " ".join(phrase(v).split()[:10] + ["abacus"]).encode(),
        "phrase_unknown_word": b"\x03zzzz " + " ".join(phrase(v).split()[1:]).encode(),
    }
    for name, data in sorted(seeds.items()):
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    print("wrote %d seeds to %s" % (len(seeds), OUT))


if __name__ == "__main__":
    main()
