#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# gen_pipeline_seeds.py - writes the seed corpus of fuzz_pipeline into
# tests/fuzz/corpus/pipeline/. A seed is a program for the target (fuzz_pipeline.c): one byte
# choosing the policy variant, then operations. The helpers below encode operations exactly as
# run_ops() decodes them; each seed plays one flow of the trust rules (accept, retransmission,
# replay, join, leave, deregistration, revocation, admin commands, reload, identities). Run
# once; the output is committed. SRUP_FUZZ_TRACE=1 replay_pipeline FILE shows what a seed
# reached.
import os

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus", "pipeline")

# ids[] of the target
SERVER, SERVER2, DEV, DEV2, OBS, ADMIN, UNREG, ZERO, ONES, REVOKED = range(10)
# slots: server, device, second device, second server, observer, admin, anonymous, device again
S_SERVER, S_DEV, S_DEV2, S_SERVER2, S_OBS, S_ADMIN, S_ANON, S_DEV_B = range(8)
# types[] of build_signed
T = {n: i for i, n in enumerate([
    "INITIATE", "RESPONSE", "ACTIVATE", "ACTION", "DATA", "ID_REQUEST", "JOIN_REQ", "JOIN_CMD",
    "HM_JOIN_REQ", "HM_JOIN_RESP", "OBS_JOIN_REQ", "OBS_JOIN_RESP", "OBSERVE_REQ",
    "RESIGN_REQUEST", "TERMINATE_CMD", "DEREGISTER_REQ", "DEREGISTER_CMD", "SYNDICATION_INIT",
    "SYNDICATED_ACTION", "SYNDICATED_DATA", "SYNDICATED_ID_REQUEST", "SYNDICATED_DEV_COUNT",
    "SYNDICATED_DEV_LIST", "SYNDICATION_REQUEST", "SYNDICATED_C2_REQ", "SYNDICATION_END",
    "SYNDICATION_TERMINATE"])}
V_SHIPPED, V_CLIENT_ID, V_CERT, V_LOOSE, V_ACME, V_FSYNC, V_MAP = range(7)
V_BROKEN = 7
CERT_TWO_CN, CERT_NO_CN, CERT_NUL_CN = 16, 17, 18
ANON_NAME = 13  # names[]: "anon", not an id


def chan(i, suffix=b""):
    """<prefix>/<id i>, then up to 127 more bytes (bytes outside printable ASCII become
    two- and three-byte UTF-8 characters)"""
    assert len(suffix) < 128
    return bytes([0, i, 0x80 | len(suffix) if suffix else 0]) + suffix


def join(server, device):
    return bytes([4, server | device << 4, 0])


def shape(n, arg=0, suffix=b""):
    assert len(suffix) < 128
    return bytes([n, arg, 0x80 | len(suffix) if suffix else 0]) + suffix


def raw(slot, topic, payload, flags=0):
    n = len(payload)
    if n < 255:
        return bytes([0, slot, flags]) + topic + bytes([n]) + payload
    extra = (n - 255 + 3) // 4
    payload += b"\0" * (255 + 4 * extra - n)
    return bytes([0, slot, flags]) + topic + bytes([255, extra]) + payload


def signed(slot, topic, typ, sender, seq, fields=b"", key=0, tok=0, flags=0):
    """key 0: the sender's own key; 1..3: keys[key - 1]"""
    q0, q1 = (seq >> 8) & 0xFF, seq & 0xFF
    if seq >= 2**64 - 256:
        q0, q1 = 0xFF, 2**64 - 1 - seq
    return bytes([1, slot, flags]) + topic + bytes([T[typ], sender, key, q0, q1, tok]) + fields


def data(did=b"id", d=b"x"):
    return bytes([len(did)]) + did + bytes([len(d)]) + d


def again(slot, topic, hist, flags=0):
    return bytes([3, slot, flags]) + topic + bytes([hist])


def mutate(slot, topic, hist, how, pos, val):
    return bytes([4, slot, 0]) + topic + bytes([hist, how, pos, val])


def read(slot, topic, hist=0xFF):
    return bytes([5, slot]) + topic + bytes([hist])


def sub(slot, topic, share=0, access=0):
    return bytes([6, slot, access, share]) + topic


def disconnect(slot, cid=None, name=None, cert=None, takeover=False, reuse=False, resumed=False):
    """takeover: no DISCONNECT event, same memory; reuse: the new connection gets the memory of
    the disconnected one"""
    if cid is None:
        return bytes([7, slot, 0])
    how = (3 if takeover else 1) | (4 if reuse else 0) | (8 if resumed else 0)
    return bytes([7, slot, how, cid, name, cert])


TICK = bytes([8])


def reload(variant):
    return bytes([9, variant])


def control(slot, kind, arg=0, rawbytes=b""):
    return bytes([10, slot, kind, arg]) + rawbytes


def revoke(i):
    return bytes([11, i])


def rotate(delete=False):
    return bytes([12, 0 if delete else 1])


def joined(srv_slot, server, dev_slot, device, dev_seq=1, srv_seq=1, tok=0):
    """The pending-join flow: the device's JOIN_REQ to the server on the join topic, then the
    server's RESPONSE JOIN_SUCCESS with the same token on the device channel."""
    return (signed(dev_slot, join(server, device), "JOIN_REQ", device, dev_seq, tok=tok) +
            signed(srv_slot, chan(device), "RESPONSE", server, srv_seq, bytes([1]), tok=tok))


def seeds():
    s = {}
    s["accept_retransmit_replay"] = bytes([V_SHIPPED]) + b"".join([
        signed(S_DEV, chan(DEV), "DATA", DEV, 1, data()),
        again(S_DEV, chan(DEV), 0, flags=4),           # QoS 1 resend: retransmission
        again(S_DEV_B, chan(DEV), 0),                   # other connection: replay
        signed(S_DEV, chan(DEV), "DATA", DEV, 1, data(d=b"other")),
        signed(S_DEV, chan(DEV), "DATA", DEV, 2, data(d=b"two")),
        again(S_DEV, chan(DEV), 0),                     # older: replay
        read(S_DEV, chan(DEV), 2), read(S_SERVER, chan(DEV), 2), read(S_ANON, chan(DEV), 2),
    ])
    s["join_member_resign"] = bytes([V_SHIPPED]) + b"".join([
        signed(S_DEV, join(SERVER, DEV), "JOIN_REQ", DEV, 1),
        read(S_SERVER, join(SERVER, DEV), 0), read(S_SERVER2, join(SERVER, DEV), 0),
        signed(S_SERVER, chan(DEV), "RESPONSE", SERVER, 1, bytes([1])),  # JOIN_SUCCESS
        signed(S_DEV, chan(DEV), "DATA", DEV, 2, data()),
        read(S_SERVER, chan(DEV), 2), read(S_SERVER2, chan(DEV), 2),
        signed(S_DEV, chan(DEV), "RESIGN_REQUEST", DEV, 3),
        read(S_SERVER, chan(DEV), 3), read(S_SERVER, chan(DEV), 2),
    ])
    s["join_cmd_terminate_deregister"] = bytes([V_CLIENT_ID]) + b"".join([  # join_command
        signed(S_SERVER, chan(DEV2), "JOIN_CMD", SERVER, 1, bytes([DEV2])),
        signed(S_SERVER, chan(DEV2), "ACTION", SERVER, 2, bytes([7])),
        read(S_SERVER, chan(DEV2), 1), read(S_DEV2, chan(DEV2), 1),
        signed(S_SERVER, chan(DEV2), "TERMINATE_CMD", SERVER, 3),
        read(S_SERVER, chan(DEV2), 1),
        signed(S_SERVER, chan(DEV2), "RESPONSE", SERVER, 4, bytes([1])),
        signed(S_SERVER, chan(DEV2), "DEREGISTER_CMD", SERVER, 5),
        read(S_DEV2, chan(DEV2), 4), TICK,
        signed(S_DEV2, chan(DEV2), "DATA", DEV2, 1, data()),
    ])
    s["deregister_req_kick"] = bytes([V_SHIPPED]) + b"".join([
        signed(S_DEV, chan(DEV), "DEREGISTER_REQ", DEV, 1),
        read(S_DEV, chan(DEV), 0), TICK,
        signed(S_DEV, chan(DEV), "DATA", DEV, 2, data()),
        again(S_DEV, chan(DEV), 0),
    ])
    s["cross_channel_replay"] = bytes([V_SHIPPED]) + b"".join([
        joined(S_SERVER, SERVER, S_DEV, DEV), joined(S_SERVER, SERVER, S_DEV2, DEV2, 1, 2),
        signed(S_SERVER, chan(DEV), "ACTION", SERVER, 5, bytes([1])),
        again(S_SERVER, chan(DEV2), 0),
        again(S_SERVER, join(SERVER, DEV), 0),
        signed(S_SERVER, chan(DEV2), "ACTION", SERVER, 1, bytes([1])),
    ])
    s["forgery_then_genuine"] = bytes([V_SHIPPED]) + b"".join([
        signed(S_DEV, chan(DEV), "DATA", DEV, 2**64 - 1, data(), key=1),  # server's key
        signed(S_DEV, chan(DEV), "DATA", DEV, 5, data()),
        mutate(S_DEV, chan(DEV), 1, 0, 3, 1), mutate(S_DEV, chan(DEV), 1, 1, 9, 0),
        mutate(S_DEV, chan(DEV), 1, 2, 0, 0),
    ])
    s["unregistered_and_revoked"] = bytes([V_SHIPPED]) + b"".join([
        disconnect(S_ANON, UNREG, UNREG, UNREG),
        signed(S_ANON, chan(UNREG), "DATA", UNREG, 1, data()),
        disconnect(S_ANON, REVOKED, REVOKED, REVOKED),
        signed(S_ANON, chan(REVOKED), "DATA", REVOKED, 1, data()),
        read(S_ANON, chan(REVOKED), 1), sub(S_ANON, chan(REVOKED)), TICK,
        signed(S_DEV, chan(ZERO), "DATA", ZERO, 1, data()),
        signed(S_DEV, chan(ONES), "DATA", ONES, 1, data()),
    ])
    s["identity_mismatch"] = bytes([V_SHIPPED]) + b"".join([
        signed(S_DEV2, chan(DEV), "DATA", DEV, 1, data()),
        signed(S_ANON, chan(DEV), "DATA", DEV, 2, data()),
        disconnect(S_DEV2, 10, 10, 10),                 # "0x5f5f..." is not canonical
        signed(S_DEV2, chan(DEV), "DATA", DEV, 3, data()),
        signed(S_DEV, join(SERVER, DEV2), "JOIN_REQ", DEV, 1),
    ])
    s["admin_control"] = bytes([V_CLIENT_ID]) + b"".join([
        signed(S_DEV2, chan(DEV2), "DATA", DEV2, 1, data()),
        control(S_DEV, 1, DEV2),                        # not an admin
        control(S_ADMIN, 1, DEV2), TICK,
        signed(S_DEV2, chan(DEV2), "DATA", DEV2, 2, data()),
        control(S_ADMIN, 1, UNREG), control(S_ADMIN, 3), control(S_ADMIN, 0),
        control(S_ADMIN, 4, 20, b'{"command":"revoke"}'),
        raw(S_ADMIN, shape(11), b"{}"), raw(S_DEV, shape(11), b"{}"),
        read(S_ADMIN, shape(11, 1)), read(S_DEV, shape(11, 1)),
        sub(S_ADMIN, shape(11, 1)), sub(S_DEV, shape(11, 1)),
    ])
    s["reload_variants"] = bytes([V_SHIPPED]) + b"".join([
        signed(S_DEV, chan(DEV), "DATA", DEV, 1, data()),
        reload(V_LOOSE),
        signed(S_DEV2, chan(DEV), "DATA", DEV, 2, data(), flags=1),  # retained, other client
        raw(S_DEV, chan(DEV), b"\x05\x05" + b"\x00" * 300),
        raw(S_DEV, shape(12), b"hello"), TICK,
        reload(V_BROKEN), signed(S_DEV, chan(DEV), "DATA", DEV, 3, data()),
        reload(V_ACME), signed(S_DEV, chan(DEV), "DATA", DEV, 4, data()),
        reload(V_SHIPPED), again(S_DEV, chan(DEV), 0),
    ])
    s["reload_prefix_retransmit"] = bytes([V_SHIPPED]) + b"".join([
        signed(S_DEV, chan(DEV), "DATA", DEV, 7, data()),
        reload(V_ACME),                                 # SRUP/<dev> is now Acme/<dev>
        again(S_DEV, chan(DEV), 0, flags=4),           # same channel: a retransmission
        again(S_DEV_B, chan(DEV), 0),                   # replay
        signed(S_DEV, chan(DEV), "DATA", DEV, 6, data(d=b"older")),
    ])
    s["takeover_without_disconnect"] = bytes([V_SHIPPED]) + b"".join([
        read(S_DEV, chan(DEV)), sub(S_DEV, chan(DEV)),
        disconnect(S_DEV, DEV2, DEV2, DEV2, takeover=True),    # same memory, new client
        read(S_DEV, chan(DEV)), read(S_DEV, chan(DEV2)),
        signed(S_DEV, chan(DEV2), "DATA", DEV2, 1, data()),
        disconnect(S_DEV, UNREG, ANON_NAME, 0, takeover=True),  # and one without an id
        read(S_DEV, chan(DEV2)), revoke(DEV2), reload(V_SHIPPED), TICK,
    ])
    s["long_topics_and_shares"] = bytes([V_SHIPPED]) + b"".join([
        sub(S_SERVER, shape(9, 0, b"L" * 63)), sub(S_SERVER, shape(5, SERVER | DEV << 4), share=3),
        sub(S_SERVER, shape(6), share=3), read(S_SERVER, chan(DEV, b"\xff\x00+#")),
        raw(S_DEV, chan(DEV, b"/x" * 20), b"\x05\x05"),
    ])
    s["map_durability_rotation"] = bytes([V_MAP]) + b"".join([
        signed(S_DEV, chan(DEV), "DATA", DEV, 1, data()),
        reload(V_SHIPPED),                              # cannot leave map: durability kept
        rotate(), signed(S_DEV2, chan(DEV), "DATA", DEV, 2, data()), TICK,
        rotate(delete=True), raw(S_DEV, chan(DEV), b"\x05"), TICK,
        control(S_ADMIN, 0), signed(S_DEV, chan(DEV), "DATA", DEV, 3, data()),
    ])
    s["seen_window_grows_on_reload"] = bytes([V_FSYNC]) + b"".join([
        reload(V_SHIPPED),                              # 1024 > the file's 0: kept until restart
        joined(S_SERVER, SERVER, S_DEV, DEV), joined(S_SERVER, SERVER, S_DEV2, DEV2, 1, 2),
        signed(S_SERVER, chan(DEV), "ACTION", SERVER, 5, bytes([1])),
        again(S_SERVER, chan(DEV2), 0),
        reload(V_MAP),                                  # cannot switch to map
        signed(S_SERVER, chan(DEV), "ACTION", SERVER, 6, bytes([1])),
    ])
    # A topic of more than 128 characters whose 128th is a three-byte character, then
    # two-byte ones: the audit log cuts strings at 128 characters.
    s["audit_long_utf8_topic"] = bytes([V_SHIPPED]) + b"".join([
        raw(S_DEV, shape(7, ZERO, b"A" * 120 + b"\x80" * 7), b"\x05\x05"),
        raw(S_DEV, shape(7, ZERO, b"B" * 119 + b"\x81" * 8), b"\x05\x05"),
        raw(S_DEV, chan(DEV, b"/" + b"\x82" * 126), b"\x05\x05"),
    ])
    # The device reconnects with the same client id and the broker gives the new connection
    # the memory of the old one: its publishes are no Will.
    s["reconnect_in_reused_memory"] = bytes([V_SHIPPED]) + b"".join([
        signed(S_DEV, chan(DEV), "DATA", DEV, 1, data()),
        disconnect(S_DEV, DEV, DEV, DEV, reuse=True),
        signed(S_DEV, chan(DEV), "DATA", DEV, 2, data()),
        disconnect(S_DEV, DEV, DEV, DEV, resumed=True),
        again(S_DEV, chan(DEV), 1, flags=4),
    ])
    # A QoS 1 resend of the accepted message: from the same connection once, from a resumed
    # session, but not from a new clean one with the same client id.
    s["resend_connections"] = bytes([V_SHIPPED]) + b"".join([
        signed(S_DEV, chan(DEV), "DATA", DEV, 1, data()),
        again(S_DEV, chan(DEV), 0, flags=4), again(S_DEV, chan(DEV), 0, flags=8),
        signed(S_DEV, chan(DEV), "DATA", DEV, 2, data(d=b"2")),
        disconnect(S_DEV, DEV, DEV, DEV),               # clean session, same client id
        again(S_DEV, chan(DEV), 3, flags=4),
        signed(S_DEV, chan(DEV), "DATA", DEV, 3, data(d=b"3")),
        disconnect(S_DEV, DEV, DEV, DEV, resumed=True),
        again(S_DEV, chan(DEV), 5, flags=4), again(S_DEV, chan(DEV), 5, flags=4),
        again(S_DEV, chan(DEV), 5),                     # QoS 0
    ])
    s["certificate_identity"] = bytes([V_CERT]) + b"".join([
        joined(S_SERVER, SERVER, S_DEV, DEV, 10, 1),
        signed(S_DEV, chan(DEV), "DATA", DEV, 1, data()),
        signed(S_SERVER, chan(DEV), "ACTION", SERVER, 2, bytes([2])),
        disconnect(S_DEV, DEV, DEV, CERT_TWO_CN),       # two CNs: no identity
        signed(S_DEV, chan(DEV), "DATA", DEV, 2, data()),
        disconnect(S_DEV, DEV, DEV, CERT_NO_CN),        # no CN
        signed(S_DEV, chan(DEV), "DATA", DEV, 3, data()),
        disconnect(S_DEV, DEV, DEV, CERT_NUL_CN),       # a NUL inside the CN
        read(S_DEV, chan(DEV), 0),
        control(S_SERVER, 0),
    ])
    s["subscribe_filters"] = bytes([V_SHIPPED]) + b"".join([
        sub(S_SERVER, join(SERVER, DEV)), sub(S_DEV2, join(SERVER, DEV)),
        sub(S_DEV2, chan(DEV)), sub(S_SERVER, chan(DEV)), sub(S_ANON, chan(DEV)),
        sub(S_ANON, shape(6), share=2), sub(S_ANON, shape(6), share=6),
        sub(S_DEV, chan(DEV), share=1), sub(S_ANON, shape(12), share=1),
        sub(S_DEV, shape(10, SERVER), share=2), sub(S_DEV, chan(DEV), access=210),
        sub(S_DEV, chan(DEV), access=250),
    ])
    s["other_prefix"] = bytes([V_ACME]) + b"".join([
        signed(S_DEV, chan(DEV), "DATA", DEV, 1, data()),
        signed(S_DEV, shape(13, DEV), "DATA", DEV, 2, data()),
        signed(S_OBS, join(SERVER, OBS), "OBS_JOIN_REQ", OBS, 1, bytes([OBS])),
        signed(S_OBS, chan(DEV), "DATA", OBS, 2, data()),
        control(S_DEV, 0), read(S_DEV, shape(11, 1)),
    ])
    s["no_seen_index"] = bytes([V_FSYNC]) + b"".join([
        joined(S_SERVER, SERVER, S_DEV, DEV), joined(S_SERVER, SERVER, S_DEV2, DEV2, 1, 2),
        signed(S_SERVER, chan(DEV), "ACTION", SERVER, 5, bytes([1])),
        again(S_SERVER, chan(DEV2), 0),
        signed(S_DEV, chan(DEV), "DATA", DEV, 1, data()),
    ])
    s["loose_policy_drops"] = bytes([V_LOOSE]) + b"".join([
        raw(S_DEV, chan(DEV), b""), raw(S_DEV, chan(DEV), b"", flags=1),
        raw(S_DEV, shape(7, DEV), b"\x05"), raw(S_DEV, shape(8, DEV), b"\x05\x05"),
        raw(S_DEV, shape(9, 1), b"\x04\x05"), raw(S_DEV, shape(14, DEV), b"\x05\x07"),
        signed(S_DEV, chan(DEV2), "DATA", DEV, 1, data()),
        signed(S_SERVER, join(SERVER, DEV), "JOIN_REQ", SERVER, 1),
        signed(S_DEV, chan(DEV), "ACTION", DEV, 2, bytes([1])),
        signed(S_SERVER2, chan(DEV), "ACTION", SERVER2, 1, bytes([3]), flags=2),  # a Will
        TICK,
    ])
    s["operator_revoke"] = bytes([V_SHIPPED]) + b"".join([
        joined(S_SERVER, SERVER, S_DEV, DEV),
        revoke(SERVER), read(S_SERVER, chan(DEV), 0),
        signed(S_SERVER, chan(DEV), "ACTION", SERVER, 2, bytes([1])),
        again(S_SERVER, chan(DEV), 0), TICK,
    ])
    s["syndication_types"] = bytes([V_SHIPPED]) + b"".join([
        joined(S_SERVER, SERVER, S_DEV, DEV, 1, 0),
        signed(S_SERVER, chan(DEV), "SYNDICATION_INIT", SERVER, 1, b"\x02ab\x03xyz"),
        signed(S_SERVER, chan(DEV), "SYNDICATED_ACTION", SERVER, 2, bytes([1, DEV2])),
        signed(S_DEV, chan(DEV), "SYNDICATED_DATA", DEV, 1, data() + bytes([SERVER])),
        signed(S_DEV, chan(DEV), "SYNDICATED_C2_REQ", DEV, 2, b"\x02hi\x01"),
        signed(S_SERVER, chan(DEV), "OBSERVE_REQ", SERVER, 3, bytes([OBS, 2]) + b"ee"),
        signed(S_SERVER, chan(DEV), "INITIATE", SERVER, 4, b"\x03url\x02dg"),
    ])
    return s


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, data_ in seeds().items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data_)


if __name__ == "__main__":
    main()
