#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# test_ctrl.py - issue 15 (administer): `srup ctrl` against the real broker and plugin over
# mutual TLS with the lab admin's certificate. Every command (keys list/show/add/revoke/rotate,
# members list/remove, marks show, joins list, reload, stats) has its effect on what the broker
# then accepts or drops, answers on the client's own response topic with its correlation data,
# and leaves an audit line; a non-admin gets nothing; lists page; a rotation's old key verifies
# during the overlap only.
import json
import os
import subprocess
import sys
import time
import types

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import srupharness as h  # noqa: E402


def ctrl(lab, *args, ident=None, expect=0, check=None):
    """Run `srup ctrl` as ident (default: the lab admin); returns (rc, stdout, stderr)."""
    who = ident or lab.admin
    crt, key = lab.certs[who.name]
    cmd = [h.SRUP, "ctrl", "--host", "localhost", "--port", str(lab.broker.tls_port),
           "--cafile", lab.pki.ca, "--cert", crt, "--key", key, "--timeout", "10"] + list(args)
    p = subprocess.run(cmd, capture_output=True, timeout=60)
    out = p.stdout.decode(errors="replace")
    err = p.stderr.decode(errors="replace")
    if check is not None and expect is not None:
        check(p.returncode == expect, "srup ctrl %s: exit %d, want %d; stderr %r" %
              (" ".join(args), p.returncode, expect, err))
    return p.returncode, out, err


def ctrl_json(lab, check, *args):
    rc, out, err = ctrl(lab, "--json", *args, check=check)
    try:
        return json.loads(out)
    except ValueError:
        check(False, "srup ctrl --json %s: not JSON: %r (stderr %r)" % (" ".join(args), out, err))
        return None


def admin_lines(lab, mark, command):
    return [r for r in lab.audit(mark) if r.get("verdict") == "admin" and
            r.get("command") == command]


def keygen(lab, name):
    prefix = os.path.join(lab.dir, name)
    h.run([h.SRUP, "keygen", "--bits", "2048", "--out", prefix])
    return types.SimpleNamespace(priv=prefix + ".pem", pub=prefix + ".pub.pem")


def test_keys_list_and_show(lab, check):
    mark = lab.audit_mark()
    keys = ctrl_json(lab, check, "keys", "list") or []
    got = {k["id"]: (k["role"], k["status"]) for k in keys}
    for ident in lab.ids.values():
        if ident.role is not None:
            check(got.get(ident.hex) == (ident.role, "active"),
                  "keys list: %s is %r, want (%s, active)" % (ident.name, got.get(ident.hex),
                                                             ident.role))
    check(lab.stranger.hex not in got, "keys list shows an unregistered id")
    rc, table, _ = ctrl(lab, "keys", "list", check=check)
    check(table.splitlines()[0].split() == ["ID", "ROLE", "STATUS", "ADDED"] and
          any(l.startswith(lab.dev1.hex) and " device " in l for l in table.splitlines()),
          "keys list table: %r" % table[:300])
    show = ctrl_json(lab, check, "keys", "show", lab.dev1.hex) or {}
    local = h.run([h.SRUP, "keys", "show", "--store", lab.store, "--id", lab.dev1.hex]).stdout
    fp = [l.split("sha256:")[1] for l in local.decode().splitlines()
          if l.startswith("fingerprint:")]
    check(fp and show.get("fingerprint") == fp[0],
          "keys show fingerprint %r, srup keys show says %r" % (show.get("fingerprint"), fp))
    check(show.get("bits") == 2048 and show.get("role") == "device" and
          "BEGIN PUBLIC KEY" in show.get("pem", ""), "keys show: %r" % show)
    rc, _, err = ctrl(lab, "keys", "show", "123456", expect=1, check=check)
    check("unknown id" in err, "keys show of an unknown id says %r" % err)
    check(len(admin_lines(lab, mark, "listKeys")) == 2 and
          len(admin_lines(lab, mark, "getKey")) == 2,
          "audit lines: %r" % [r.get("command") for r in lab.audit(mark)])
    bad = admin_lines(lab, mark, "getKey")
    check(any(r.get("result") == "error" and r.get("target") == "123456" for r in bad),
          "the failed getKey's audit line: %r" % bad)


def test_keys_add_and_revoke(lab, check):
    ch = "SRUP/%s" % lab.stranger.hex
    c = lab.connect(lab.stranger)
    h.expect_drop(lab, check, c, ch, lab.msg(lab.stranger, "DATA", data_id=b"x", data=b"1"),
                  "unknown_sender", "stranger before addKey")
    mark = lab.audit_mark()
    # a private key file: the broker keeps only its public half
    ctrl(lab, "keys", "add", lab.stranger.hex, "device", lab.stranger.priv, check=check)
    show = ctrl_json(lab, check, "keys", "show", lab.stranger.hex) or {}
    check("PRIVATE" not in show.get("pem", "PRIVATE") and show.get("status") == "active",
          "stored key: %r" % show.get("pem"))
    h.expect_accept(lab, check, c, ch, lab.msg(lab.stranger, "DATA", data_id=b"x", data=b"2"),
                    "stranger after addKey")
    rc, _, err = ctrl(lab, "keys", "add", lab.stranger.hex, "device", lab.stranger.pub,
                      expect=1, check=check)
    check("active key" in err, "second add without --force: %r" % err)
    ctrl(lab, "keys", "add", lab.stranger.hex, "observer", lab.stranger.pub, "--force",
         check=check)
    check((ctrl_json(lab, check, "keys", "show", lab.stranger.hex) or {}).get("role") ==
          "observer", "--force did not replace the role")
    rc, _, err = ctrl(lab, "keys", "add", "abc", "admin", lab.stranger.pub, expect=1,
                      check=check)
    bogus = os.path.join(lab.dir, "not-a-key.pem")
    with open(bogus, "w") as f:
        f.write("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    rc, _, err = ctrl(lab, "keys", "add", "abc", "device", bogus, expect=1, check=check)
    check("not a usable key" in err, "a bad PEM: %r" % err)
    # revoke: the next message of the device is dropped, and its connection closed
    d = lab.connect(lab.dev2)
    ctrl(lab, "keys", "revoke", lab.dev2.hex, check=check)
    d2 = lab.connect(lab.dev2)
    h.expect_drop(lab, check, d2, "SRUP/%s" % lab.dev2.hex,
                  lab.msg(lab.dev2, "DATA", data_id=b"x", data=b"3"), "revoked_sender",
                  "dev2 after revokeKey")
    d.close()
    rc, _, err = ctrl(lab, "keys", "add", lab.dev2.hex, "device", lab.dev2.pub, "--force",
                      expect=1, check=check)
    check("revoked" in err, "a revoked id came back: %r" % err)
    recs = [r for r in lab.audit(mark) if r.get("verdict") == "admin"]
    cmds = [(r.get("command"), r.get("result")) for r in recs]
    check(("addKey", "ok") in cmds and ("addKey", "error") in cmds and
          ("revoke", "ok") in cmds, "audit lines: %r" % cmds)
    check(all(r.get("identity") == lab.admin.hex and r.get("address") == "127.0.0.1"
              for r in recs), "who: %r" % [(r.get("identity"), r.get("address")) for r in recs])
    # the refused role never reached the parser's result: a bad_command line
    check(any(r.get("reason") == "bad_command" and r.get("command") == "addKey"
              for r in recs), "no bad_command line for role admin")


def test_rotate_overlap(lab, check):
    ch = "SRUP/%s" % lab.dev1.hex
    new = keygen(lab, "dev1-next")
    c = lab.connect(lab.dev1)
    h.expect_accept(lab, check, c, ch, lab.msg(lab.dev1, "DATA", data_id=b"x", data=b"old"),
                    "dev1 before the rotation")
    rc, _, err = ctrl(lab, "keys", "rotate", lab.dev1.hex, new.pub, expect=3, check=check)
    check("--overlap" in err, "rotate without --overlap: %r" % err)
    t0 = time.time()
    ctrl(lab, "keys", "rotate", lab.dev1.hex, new.pub, "--overlap", "4s", check=check)
    show = ctrl_json(lab, check, "keys", "show", lab.dev1.hex) or {}
    check("retiring" in show and "until" in show["retiring"],
          "keys show after rotate lacks the retiring key: %r" % show)
    h.expect_accept(lab, check, c, ch, lab.msg(lab.dev1, "DATA", data_id=b"x", data=b"n1",
                                               key=new), "new key during the overlap")
    h.expect_accept(lab, check, c, ch, lab.msg(lab.dev1, "DATA", data_id=b"x", data=b"o1"),
                    "old key during the overlap")
    h.expect_drop(lab, check, c, ch, lab.msg(lab.dev1, "DATA", data_id=b"x", data=b"f",
                                             key=lab.dev3), "bad_signature",
                  "a third key during the overlap")
    time.sleep(max(0.0, t0 + 5.5 - time.time()))
    rec = h.expect_drop(lab, check, c, ch, lab.msg(lab.dev1, "DATA", data_id=b"x", data=b"o2"),
                        "bad_signature", "old key after the overlap")
    check(rec is not None and "retired" in rec.get("detail", ""),
          "drop detail after the overlap: %r" % (rec and rec.get("detail")))
    h.expect_accept(lab, check, c, ch, lab.msg(lab.dev1, "DATA", data_id=b"x", data=b"n2",
                                               key=new), "new key after the overlap")
    # overlap 0: the old key stops at once
    newer = keygen(lab, "dev1-next2")
    ctrl(lab, "keys", "rotate", lab.dev1.hex, newer.pub, "--overlap", "0", check=check)
    h.expect_drop(lab, check, c, ch, lab.msg(lab.dev1, "DATA", data_id=b"x", data=b"n3",
                                             key=new), "bad_signature",
                  "the replaced key after a rotation without overlap")
    h.expect_accept(lab, check, c, ch, lab.msg(lab.dev1, "DATA", data_id=b"x", data=b"n4",
                                               key=newer), "the newest key")
    rc, _, err = ctrl(lab, "keys", "rotate", lab.dev1.hex, newer.pub, "--overlap", "1h",
                      expect=1, check=check)
    check("in force" in err, "rotating to the same key: %r" % err)
    rc, _, err = ctrl(lab, "keys", "rotate", lab.dev1.hex, new.pub, "--overlap", "31d",
                      expect=3, check=check)
    # the store keeps the rotated key for srup keys too
    local = h.run([h.SRUP, "keys", "show", "--store", lab.store, "--id", lab.dev1.hex]).stdout
    with open(newer.pub) as f:
        check(f.read().strip() in local.decode(), "srup keys show does not show the new key")


def test_members_marks_joins(lab, check):
    check(lab.join(lab.server, lab.dev3), "join of dev3 to server failed")
    members = ctrl_json(lab, check, "members", "list") or []
    check({"device": lab.dev3.hex, "server": lab.server.hex} in
          [{"device": m["device"], "server": m["server"]} for m in members],
          "members list: %r" % members)
    mine = ctrl_json(lab, check, "members", "list", "--device", lab.dev3.hex) or []
    check(len(mine) == 1 and mine[0]["server"] == lab.server.hex and mine[0].get("joined"),
          "members list --device: %r" % mine)
    s = lab.connect(lab.server)
    ch = "SRUP/%s" % lab.dev3.hex
    h.expect_accept(lab, check, s, ch, lab.msg(lab.server, "ACTION", action_id=1),
                    "server to its member")
    ctrl(lab, "members", "remove", lab.dev3.hex, lab.server.hex, check=check)
    h.expect_drop(lab, check, s, ch, lab.msg(lab.server, "ACTION", action_id=2), "not_member",
                  "server to dev3 after members remove")
    rc, _, err = ctrl(lab, "members", "remove", lab.dev3.hex, lab.server.hex, expect=1,
                      check=check)
    check("not a member" in err, "removing twice: %r" % err)
    # marks: the server's last accepted sequence id on dev3's channel
    seq = lab.server.seq
    marks = ctrl_json(lab, check, "marks", "show", lab.server.hex) or {}
    got = {m["channel"]: m["sequence_id"] for m in marks.get("marks", [])}
    check(got.get(ch) is not None and got.get(ch) <= seq and got.get(ch) >= seq - 1,
          "marks show: %r (last sent %d)" % (got, seq))
    # a sequence number above 2^63-1: "0x" text in JSON (jansson's integers are signed), the
    # decimal number in the table, the same in the store as srup marks show reads it
    big = (1 << 63) + 5
    d3 = lab.connect(lab.dev3)
    own = "SRUP/%s" % lab.dev3.hex
    h.expect_accept(lab, check, d3, own, lab.msg(lab.dev3, "DATA", seq=big, data_id=b"x",
                                                 data=b"big"), "dev3 with a sequence id > 2^63")
    marks = ctrl_json(lab, check, "marks", "show", lab.dev3.hex) or {}
    got = {m["channel"]: m["sequence_id"] for m in marks.get("marks", [])}
    check(got.get(own) == "0x%x" % big, "marks show --json above 2^63: %r" % got.get(own))
    rc, table, _ = ctrl(lab, "marks", "show", lab.dev3.hex, check=check)
    check(str(big) in table, "marks show table above 2^63: %r" % table)
    local = json.loads(h.run([h.SRUP, "marks", "show", "--store", lab.store, "--id",
                              lab.dev3.hex, "--json"]).stdout)
    check({m["channel"]: m["sequence_id"] for m in local["marks"]}.get(own) == "0x%x" % big,
          "srup marks show --json from the store: %r" % local)
    # a pending join: a verified JOIN_REQ not yet answered
    d = lab.connect(lab.dev3)
    rc = d.publish("SRUP/servers/%s/%s" % (lab.server2.hex, lab.dev3.hex),
                   lab.msg(lab.dev3, "JOIN_REQ"))
    check(h.delivered(rc), "dev3's JOIN_REQ: PUBACK %s" % h.rc_name(rc))
    joins = ctrl_json(lab, check, "joins", "list") or {}
    pend = [(j["device"], j["server"], j["kind"]) for j in joins.get("pending", [])]
    check((lab.dev3.hex, lab.server2.hex, "simple") in pend and joins.get("total", 0) >= 1,
          "joins list: %r" % joins)


def test_reload_stats_and_paging(lab, check):
    mark = lab.audit_mark()
    ctrl(lab, "reload", check=check)
    check(any(r.get("result") == "ok" for r in admin_lines(lab, mark, "reload")),
          "no reload audit line")
    # 250 more keys: the list comes in pages (100, then up to 1000) and nothing is lost
    h.run([h.SRUP, "keys", "add", "--store", lab.store, "--role", "device", "--key",
           lab.dev1.pub, "--random", "250"])
    before = h.run([h.SRUP, "keys", "list", "--store", lab.store]).stdout.decode()
    n_local = len([l for l in before.splitlines() if l.strip()])
    keys = ctrl_json(lab, check, "keys", "list") or []
    ids = [k["id"] for k in keys]
    check(len(ids) == n_local and len(set(ids)) == len(ids) and n_local >= 250,
          "keys list: %d ids (%d distinct), the store has %d" % (len(ids), len(set(ids)),
                                                                n_local))
    pages = admin_lines(lab, mark, "listKeys")
    check(len(pages) >= 2 and "more follow" in pages[0].get("detail", ""),
          "listKeys pages: %r" % [p.get("detail") for p in pages])
    stats = ctrl_json(lab, check, "stats") or {}
    counters = lab.counters()
    check(stats.get("store", {}).get("keys") == n_local, "stats store.keys %r, want %d" %
          (stats.get("store", {}).get("keys"), n_local))
    check(stats.get("store", {}).get("marks") == counters.get("store/marks") and
          stats["store"]["marks"] > 0, "stats store.marks %r, the gauge says %r" %
          (stats.get("store", {}).get("marks"), counters.get("store/marks")))
    check(stats.get("accepted", -1) >= counters.get("accepted", 0) and
          stats.get("accepted", 0) > 0, "stats accepted %r, $SYS says %r" %
          (stats.get("accepted"), counters.get("accepted")))
    check(isinstance(stats.get("dropped"), dict) and "bad_signature" in stats["dropped"],
          "stats dropped: %r" % stats.get("dropped"))
    rc, table, _ = ctrl(lab, "stats", check=check)
    check("store.keys: %d" % n_local in table, "stats table: %r" % table[:400])


def test_not_admin(lab, check):
    mark = lab.audit_mark()
    rc, out, err = ctrl(lab, "stats", ident=lab.server2, expect=3, check=check)
    check("admin" in err, "a non-admin's srup ctrl says %r" % err)
    check(out == "", "a non-admin got output %r" % out)
    check(not admin_lines(lab, mark, "getStats"), "a non-admin's command ran")
    rc, _, err = ctrl(lab, "keys", "frobnicate", expect=3, check=check)
    rc, _, err = ctrl(lab, "keys", "show", "not-hex", expect=3, check=check)
    check("not an id" in err, "bad id: %r" % err)


if __name__ == "__main__":
    h.main([test_keys_list_and_show, test_keys_add_and_revoke, test_rotate_overlap,
            test_members_marks_joins, test_reload_stats_and_paging, test_not_admin])
