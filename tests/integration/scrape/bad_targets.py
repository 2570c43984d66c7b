#!/usr/bin/env python3
"""Misbehaving scrape targets for the integration tests, one port, by path:
/ok (valid), /garbage, /500, /slow (answers after 5 s), /big (2 MiB of valid
text), /bomb (gzip that inflates to 64 MiB), /badgzip (corrupt gzip),
/redirect (redirects to itself forever). usage: bad_targets.py PORT"""
import gzip
import http.server
import socketserver
import sys
import time

BOMB = gzip.compress(b"\0" * (64 << 20), compresslevel=9)
BIG = b"".join(b"big_metric{i=\"%d\"} 1\n" % i for i in range(100000))


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, code, body, headers=()):
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:
            pass

    def do_GET(self):
        p = self.path.split("?")[0]
        if p == "/ok":
            self.reply(200, b"# TYPE good_metric gauge\ngood_metric 1\n")
        elif p == "/garbage":
            self.reply(200, b"good_metric 1\n\x00\xff{{{ this is not an exposition\n")
        elif p == "/500":
            self.reply(500, b"internal error\n")
        elif p == "/slow":
            time.sleep(5)
            self.reply(200, b"slow_metric 1\n")
        elif p == "/big":
            self.reply(200, BIG)
        elif p == "/bomb":
            self.reply(200, BOMB, [("Content-Encoding", "gzip")])
        elif p == "/badgzip":
            self.reply(200, b"\x1f\x8b\x08\x00garbagegarbage", [("Content-Encoding", "gzip")])
        elif p == "/redirect":
            self.reply(302, b"", [("Location", self.path)])
        else:
            self.reply(404, b"not found\n")


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


srv = Server(("127.0.0.1", int(sys.argv[1])), Handler)
print("ready", flush=True)
srv.serve_forever()
