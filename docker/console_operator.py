#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# console_operator.py - the lab's operator, deciding a human-moderated join through srup-c2's
# console HTTP API: log in, wait for the device's join to be pending, then
#   approve: pick the pictograph that is the one the device shows (its rendering of the value
#            it decrypted, from its show file, compared with each choice the console offers);
#            if none matches, refuse;
#   refuse:  refuse it.
# Prints the console's answer ("OK JOIN_SUCCESS ..."); exit 0 if the console did it.
# Python standard library and the srup tool only.
import argparse
import http.client
import json
import ssl
import subprocess
import sys
import time
import urllib.parse


class Console:
    def __init__(self, url, ca):
        u = urllib.parse.urlparse(url)
        self.host, self.port = u.hostname, u.port
        self.ctx = ssl.create_default_context(cafile=ca)
        self.ctx.check_hostname = False
        self.cookie = None
        self.csrf = None

    def req(self, method, path, body=None):
        c = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=90)
        hdr = {}
        if body is not None:
            hdr["Content-Type"] = "application/json"
        if self.cookie:
            hdr["Cookie"] = self.cookie
        if self.csrf and method == "POST":
            hdr["X-CSRF-Token"] = self.csrf
        c.request(method, path, body=json.dumps(body) if body is not None else None, headers=hdr)
        r = c.getresponse()
        data = r.read()
        cookie = r.getheader("Set-Cookie")
        c.close()
        if cookie:
            self.cookie = cookie.split(";", 1)[0]
        return r.status, data


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password-file", required=True)
    ap.add_argument("--device", required=True)
    ap.add_argument("--show", help="the device's show file (value line)")
    ap.add_argument("--srup", default="srup")
    ap.add_argument("--decision", choices=("approve", "refuse"), required=True)
    a = ap.parse_args()
    con = Console(a.url, a.ca)
    with open(a.password_file) as f:
        pw = f.read().strip()
    st, data = con.req("POST", "/api/login", {"name": a.user, "password": pw})
    if st != 200:
        print("ERR login: HTTP %d %s" % (st, data[:200]))
        return 1
    con.csrf = json.loads(data)["csrf"]
    join = None
    for _ in range(150):
        st, data = con.req("GET", "/api/pending")
        joins = json.loads(data).get("joins", []) if st == 200 else []
        join = next((j for j in joins if j["device"] == a.device and j["kind"] == "hm"), None)
        if join is not None:
            break
        time.sleep(0.2)
    if join is None:
        print("ERR no pending join for %s" % a.device)
        return 1
    print("console shows: phrase %s, hex %s" % (join["phrase"], join["hex"]))
    if a.decision == "approve":
        value = None
        for _ in range(100):
            try:
                with open(a.show) as f:
                    value = next((l.split()[1] for l in f if l.startswith("value ")), None)
            except OSError:
                value = None
            if value:
                break
            time.sleep(0.1)
        mine = subprocess.run([a.srup, "pictograph", value or "0", "--style", "colour",
                               "--scale", "10"], stdout=subprocess.PIPE).stdout
        choice = None
        for n in range(join["choices"]):
            st, svg = con.req("GET", "/api/pict/%s/%d/colour" % (a.device, n))
            if st == 200 and svg == mine:
                choice = n
        if choice is None:
            print("the device shows none of the console's pictographs: refusing")
            a.decision = "refuse"
        else:
            print("the device shows choice %d" % (choice + 1))
            st, data = con.req("POST", "/api/approve", {"device": a.device, "choice": choice})
    if a.decision == "refuse":
        st, data = con.req("POST", "/api/refuse", {"device": a.device})
    out = json.loads(data) if data else {}
    print(out.get("output") or out.get("error") or "HTTP %d" % st)
    return 0 if st == 200 and out.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
