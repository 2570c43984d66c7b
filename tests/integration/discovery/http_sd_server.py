#!/usr/bin/env python3
"""A Prometheus HTTP SD endpoint whose answer the test changes.

  http_sd_server.py PORT DIR
GET /sd answers with DIR/answer: first line the status code, second line the
Content-Type, the rest the body (re-read on every request). The headers of
the last request are written to DIR/last_request as JSON.
"""
import http.server
import json
import os
import sys

PORT, DIR = int(sys.argv[1]), sys.argv[2]


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with open(os.path.join(DIR, "last_request.tmp"), "w") as f:
            json.dump({"path": self.path, "headers": dict(self.headers.items())}, f)
        os.replace(os.path.join(DIR, "last_request.tmp"), os.path.join(DIR, "last_request"))
        with open(os.path.join(DIR, "answer"), "rb") as f:
            status, ctype, body = f.read().split(b"\n", 2)
        self.send_response(int(status))
        self.send_header("Content-Type", ctype.decode())
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
