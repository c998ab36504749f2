#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# files.py - the lab's update file server: serves one directory over HTTP and over HTTPS (a
# certificate from the lab CA), so devices fetch updates both ways. Standard library only.
import argparse
import functools
import http.server
import ssl
import threading


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--tls-port", type=int, required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    a = ap.parse_args()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=a.dir)
    plain = http.server.ThreadingHTTPServer((a.bind, a.port), handler)
    tls = http.server.ThreadingHTTPServer((a.bind, a.tls_port), handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    tls.socket = ctx.wrap_socket(tls.socket, server_side=True)
    threading.Thread(target=tls.serve_forever, daemon=True).start()
    plain.serve_forever()


if __name__ == "__main__":
    main()
