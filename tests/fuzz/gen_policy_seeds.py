#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# gen_policy_seeds.py - writes the seed corpus of fuzz_policy into tests/fuzz/corpus/policy/.
# A seed is policy text, then optionally a NUL byte and NUL-separated topics to classify under
# it (fuzz_policy.c). Seeds: the shipped policy/srup.policy and variants of it, one valid use
# of every directive, and one seed per kind of error the parser reports. Run once; the output
# is committed.
import os

HERE = os.path.dirname(os.path.abspath(__file__))
SHIPPED = os.path.join(HERE, "..", "..", "policy", "srup.policy")
OUT = os.path.join(HERE, "corpus", "policy")

TOPICS = [
    "SRUP/5f5f5f5f5f5f5f5f", "SRUP/servers/b9d077e223834cf6/5f5f5f5f5f5f5f5f", "SRUP/00d2",
    "SRUP/D2", "SRUP/x/y", "SRUP", "SRUP/", "$CONTROL/srup/v1", "$CONTROL/srup/v1/response",
    "other/topic", "SRUPX/d2", "SRUP/servers/a", "SRUP/0",
]

MIN = "version 1\nallow own_channel device DATA\n"


def with_topics(text, topics=TOPICS):
    return text.encode() + b"\0" + b"\0".join(t.encode() for t in topics)


def main():
    os.makedirs(OUT, exist_ok=True)
    with open(SHIPPED) as f:
        shipped = f.read()
    seeds = {
        "shipped": shipped.encode(),
        "shipped_topics": with_topics(shipped),
        "shipped_admin_cert": with_topics(
            shipped.replace("identity username", "identity certificate").replace(
                "# admin b9d077e223834cf6", "admin b9d077e223834cf6\nadmin ad")),
        "shipped_crlf": shipped.replace("\n", "\r\n").encode(),
        "minimal": with_topics(MIN),
        "every_directive": with_topics(
            "version 1\nprefix Acme\nidentity client_id\nbind_identity no\nmax_payload 64\n"
            "retained allow\non_violation disconnect\naudit_accepts yes\naudit_rate 1 1000000\n"
            "key_cache 1\nseen_index 0\ndurability map\nother_topics defer\n"
            "metrics_interval 3600\nadmin 0\nadmin ffffffffffffffff\n"
            "allow\tjoin_topic\tobserver\tOBS_JOIN_REQ # tabs and a comment\n",
            ["Acme/0", "Acme/servers/1/2", "SRUP/d2", "Acme", "acme/d2"]),
        "seen_windows_joins": with_topics(
            MIN + "seen_index 100\nseen_window server 100\nseen_window device 0\n"
            "seen_window observer 1\njoin_command b9d077e223834cf6\npending_joins 10 2 600\n"
            "max_key_bits 16384\nbad_signatures 0\n"),
        "err_window_over_index": (MIN + "seen_index 10\nseen_window server 11\n").encode(),
        "err_window_twice": (MIN + "seen_window device 1\nseen_window device 2\n").encode(),
        "err_key_bits": (MIN + "max_key_bits 2047\n").encode(),
        "err_pending_args": (MIN + "pending_joins 10 2\n").encode(),
        "durability_fsync": with_topics(MIN + "durability fsync\nseen_index 100000000\n"),
        "durability_metasync": (MIN + "durability metasync\nkey_cache 10000000\n").encode(),
        "err_empty": b"",
        "err_comment_only": b"# nothing\n\n   \t\n",
        "err_first_not_version": b"allow own_channel device DATA\nversion 1\n",
        "err_version_2": b"version 2\nallow own_channel device DATA\n",
        "err_no_rule": b"version 1\nprefix SRUP\n",
        "err_twice": (MIN + "prefix A\nprefix B\n").encode(),
        "err_unknown_directive": (MIN + "nonsense here\n").encode(),
        "err_unknown_type": b"version 1\nallow own_channel device GENERIC\n",
        "err_unknown_role": b"version 1\nallow own_channel admin DATA\n",
        "err_unknown_channel": b"version 1\nallow any_channel device DATA\n",
        "err_allow_short": b"version 1\nallow own_channel device\n",
        "err_prefix_slash": (MIN + "prefix SRUP/x\n").encode(),
        "err_prefix_long": (MIN + "prefix " + "P" * 64 + "\n").encode(),
        "err_max_payload_small": (MIN + "max_payload 63\n").encode(),
        "err_max_payload_big": (MIN + "max_payload 1048577\n").encode(),
        "err_number_sign": (MIN + "key_cache +5\n").encode(),
        "err_number_overflow": (MIN + "seen_index 18446744073709551616\n").encode(),
        "err_admin_padded": (MIN + "admin 00d2\n").encode(),
        "err_admin_17": (MIN + "".join("admin %x\n" % (i + 1) for i in range(17))).encode(),
        "err_bool": (MIN + "bind_identity maybe\n").encode(),
        "err_audit_rate_one": (MIN + "audit_rate 5\n").encode(),
        "err_nul_in_line": b"version 1\nallow own_channel device DATA\x00 RESPONSE\n",
        "err_long_line": (MIN + "allow own_channel device" + " DATA" * 1000 + "\n").encode(),
        "err_many_words": (MIN + "allow own_channel device" + " DATA" * 70 + "\n").encode(),
    }
    for name, data in seeds.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
