#!/usr/bin/env python3
"""Fakes for the pyroscope integration tests (loopback only).

  fake_pyroscope.py push PORT DIR
      A Pyroscope push endpoint: accepts exactly what Pyroscope's
      push.v1.PusherService/Push accepts over Connect unary (POST,
      Content-Type application/proto, protobuf PushRequest). Every raw
      profile is stored as DIR/<n>.pprof with its labels in DIR/<n>.json.
      Requests of any other shape are answered like Connect does (415/404/
      400) and counted as "bad".
      POST /control with a body like "503,503" queues the status codes of
      the next push answers (Connect error bodies); "reset" clears.
      GET /stats returns JSON counters.

  fake_pyroscope.py badtarget PORT
      Broken pprof targets: /e500/... answers 500, /garbage/... answers 200
      with HTML, /ok/... answers a tiny valid gzip pprof.
"""
import gzip
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()
stats = {"requests": 0, "accepted": 0, "profiles": 0, "rejected": 0, "bad": 0,
         "bad_reasons": []}
script = []
CONNECT_CODES = {400: "invalid_argument", 401: "unauthenticated", 403: "permission_denied",
                 404: "not_found", 408: "deadline_exceeded", 429: "resource_exhausted",
                 500: "internal", 502: "unavailable", 503: "unavailable",
                 504: "deadline_exceeded"}


def varint(b, i):
    v = shift = 0
    while True:
        if i >= len(b):
            raise ValueError("truncated varint")
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        shift += 7
        if not c & 0x80:
            return v, i
        if shift > 63:
            raise ValueError("varint too long")


def fields(b):
    """Yield (field, wiretype, value) of one protobuf message."""
    i = 0
    while i < len(b):
        tag, i = varint(b, i)
        f, wt = tag >> 3, tag & 7
        if f == 0:
            raise ValueError("field 0")
        if wt == 0:
            v, i = varint(b, i)
        elif wt == 2:
            n, i = varint(b, i)
            if i + n > len(b):
                raise ValueError("truncated bytes")
            v, i = b[i:i + n], i + n
        elif wt == 1:
            v, i = b[i:i + 8], i + 8
        elif wt == 5:
            v, i = b[i:i + 4], i + 4
        else:
            raise ValueError("bad wire type %d" % wt)
        yield f, wt, v


def decode_push(body):
    """PushRequest -> [(labels dict, [raw profiles], [ids])]."""
    out = []
    for f, wt, series in fields(body):
        if f != 1 or wt != 2:
            raise ValueError("unexpected PushRequest field %d" % f)
        labels, raws, ids = {}, [], []
        for sf, swt, v in fields(series):
            if sf == 1 and swt == 2:
                lp = {lf: lv.decode() for lf, _, lv in fields(v)}
                if 1 not in lp:
                    raise ValueError("label without name")
                labels[lp[1]] = lp.get(2, "")
            elif sf == 2 and swt == 2:
                s = {rf: rv for rf, _, rv in fields(v)}
                raws.append(s.get(1, b""))
                ids.append(s.get(2, b"").decode())
            elif sf == 3:
                pass  # annotations
            else:
                raise ValueError("unexpected RawProfileSeries field %d" % sf)
        out.append((labels, raws, ids))
    return out


class Push(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, code, body=b"", ctype="application/proto"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def connect_error(self, code, msg):
        body = json.dumps({"code": CONNECT_CODES.get(code, "unknown"), "message": msg}).encode()
        self.reply(code, body, "application/json")

    def bad(self, code, why):
        with lock:
            stats["bad"] += 1
            stats["bad_reasons"].append(why)
        self.connect_error(code, why)

    def do_GET(self):
        if self.path == "/stats":
            with lock:
                body = json.dumps(stats).encode()
            return self.reply(200, body, "application/json")
        if self.path == "/ready":
            return self.reply(200, b"ready", "text/plain")
        self.bad(404, "GET " + self.path)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        if self.path == "/control":
            with lock:
                txt = body.decode().strip()
                if txt == "reset":
                    script.clear()
                else:
                    script.extend(int(x) for x in txt.split(",") if x)
            return self.reply(200, b"ok", "text/plain")
        if self.path != "/push.v1.PusherService/Push":
            return self.bad(404, "path " + self.path)
        ctype = self.headers.get("Content-Type", "")
        if ctype != "application/proto":
            return self.bad(415, "content type " + ctype)
        if self.headers.get("Connect-Protocol-Version") != "1":
            return self.bad(400, "no Connect-Protocol-Version: 1")
        if self.headers.get("Content-Encoding", "identity") not in ("identity", "gzip"):
            return self.bad(415, "content encoding")
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        try:
            series = decode_push(body)
        except ValueError as e:
            return self.bad(400, "protobuf: %s" % e)
        with lock:
            stats["requests"] += 1
            code = script.pop(0) if script else 200
            if code != 200:
                stats["rejected"] += 1
        if code != 200:
            return self.connect_error(code, "scripted failure")
        with lock:
            stats["accepted"] += 1
            for labels, raws, ids in series:
                for raw, pid in zip(raws, ids):
                    k = stats["profiles"]
                    stats["profiles"] += 1
                    with open(os.path.join(outdir, "%d.pprof" % k), "wb") as f:
                        f.write(raw)
                    with open(os.path.join(outdir, "%d.json" % k), "w") as f:
                        json.dump({"labels": labels, "id": pid, "t": time.time()}, f)
        self.reply(200)


# A valid, empty-ish pprof: sample_type {type="samples", unit="count"}.
def tiny_pprof():
    st = [b"", b"samples", b"count"]
    msg = bytes([0x0A, 0x04, 0x08, 0x01, 0x10, 0x02])  # sample_type {1, 2}
    for s in st:
        msg += bytes([0x32, len(s)]) + s
    return gzip.compress(msg)


class Bad(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        if self.path.startswith("/e500/"):
            code, ctype, body = 500, "text/plain", b"internal error\n"
        elif self.path.startswith("/garbage/"):
            code, ctype, body = 200, "text/html", b"<html>not a profile</html>"
        elif self.path.startswith("/octet-garbage/"):
            code, ctype, body = 200, "application/octet-stream", b"\xff\xff\xff garbage"
        else:
            code, ctype, body = 200, "application/octet-stream", tiny_pprof()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode == "push":
        outdir = sys.argv[3]
        os.makedirs(outdir, exist_ok=True)
        handler = Push
    else:
        handler = Bad
    ThreadingHTTPServer(("127.0.0.1", port), handler).serve_forever()
