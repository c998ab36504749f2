#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# registry_attacker.py - the lab attacker against srup-registry: take over a registered identity
# with another key (a device's, the C2's), get a client certificate for someone else's CN, get
# one for a registered identity without its key, and flood the service. Each attempt must be
# refused with the right HTTP status and logged by the registry; results go to
# results/registry_attacks.tsv (name, verdict, HTTP status, expected status, detail).
# Python standard library and the openssl command only.
import argparse
import base64
import http.client
import json
import os
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.parse


def run(cmd, data=None):
    return subprocess.run(cmd, input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          check=True).stdout


def key_body(pub_pem_path):
    with open(pub_pem_path) as f:
        return "".join(l.strip() for l in f if not l.startswith("-----"))


def pss_sign(key_path, data):
    sig = run(["openssl", "dgst", "-sha256", "-sigopt", "rsa_padding_mode:pss", "-sigopt",
               "rsa_pss_saltlen:max", "-sign", key_path], data)
    return base64.encodebytes(sig).decode()


def csr(key_path, cn):
    return run(["openssl", "req", "-new", "-key", key_path, "-subj",
                "/O=SRUP_DEVICE/CN=%s" % cn, "-sha256"])


class Client:
    def __init__(self, url, ca):
        u = urllib.parse.urlparse(url)
        self.host, self.port = u.hostname, u.port
        self.ctx = ssl.create_default_context(cafile=ca)
        self.ctx.check_hostname = False

    def req(self, method, path, body=None):
        c = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=20)
        data = json.dumps(body).encode() if body is not None else None
        c.request(method, "/KeyEx/register/" + path, body=data,
                  headers={"Content-Type": "application/json"} if data else {})
        r = c.getresponse()
        out = r.read().decode(errors="replace")
        c.close()
        return r.status, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lab", required=True)
    ap.add_argument("--url", required=True)
    a = ap.parse_args()
    lab = a.lab
    ids = {}
    with open(os.path.join(lab, "ids.env")) as f:
        for line in f:
            k, _, v = line.strip().partition("=")
            if k.startswith("ID_"):
                ids[k[3:]] = v
    keys = os.path.join(lab, "keys")
    cl = Client(a.url, os.path.join(lab, "certs", "ca.crt"))
    results = []

    def record(name, status, want, detail):
        verdict = "refused" if status == want else "GOT THROUGH" if status in (200, 201) \
            else "unexpected"
        results.append((name, verdict, str(status), str(want), detail[:120].replace("\t", " ")))
        print("registry attack %s: %s (HTTP %s, expected %s) %s" % (name, verdict, status, want,
                                                                    detail[:120]), flush=True)

    att_key = os.path.join(keys, "attacker.pem")
    att_body = key_body(os.path.join(keys, "attacker.pub.pem"))
    # 1, 2: another key for a registered identity (a device's, the C2's).
    for name, victim in (("registry_duplicate_dev1", "dev1"), ("registry_stolen_c2", "c2")):
        st, out = cl.req("POST", "register", {"identity": ids[victim], "key": att_body,
                                              "type": "default"})
        record(name, st, 409, out)
    # 3: a certificate for someone else's CN, asked by a (legitimately) registered attacker.
    st, out = cl.req("POST", "register", {"identity": ids["attacker"], "key": att_body,
                                          "type": "default"})
    other = csr(att_key, ids["dev1"])
    st, out = cl.req("POST", "access", {"identity": ids["attacker"],
                                        "csr": base64.encodebytes(other).decode(),
                                        "signature": pss_sign(att_key, other)})
    record("registry_csr_other_cn", st, 403, out)
    # 4: a certificate for a registered identity, without its key.
    mine = csr(att_key, ids["dev1"])
    st, out = cl.req("POST", "access", {"identity": ids["dev1"],
                                        "csr": base64.encodebytes(mine).decode(),
                                        "signature": pss_sign(att_key, mine)})
    record("registry_access_without_key", st, 403, out)
    # 5: a flood from one address: rate-limited (429), and the service is still up after.
    codes = [cl.req("GET", "status")[0] for _ in range(120)]
    n429 = codes.count(429)
    time.sleep(1.5)
    after, _ = cl.req("GET", "status")
    record("registry_flood", 429 if n429 and after == 200 else codes[-1] if not n429 else after,
           429, "%d of %d requests answered 429; status afterwards %d" % (n429, len(codes),
                                                                          after))
    out = os.path.join(lab, "results", "registry_attacks.tsv")
    with tempfile.NamedTemporaryFile("w", dir=os.path.dirname(out), delete=False) as f:
        for r in results:
            f.write("\t".join(r) + "\n")
    os.replace(f.name, out)
    return 0 if all(r[1] == "refused" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
