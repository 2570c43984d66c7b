#!/usr/bin/env python3
"""A Prometheus HTTP SD endpoint whose answer the test changes.

  http_sd_server.py PORT DIR
GET /sd answers with DIR/answer: first line the status code, second line the
Content-Type, the rest the body (re-read on every request). The headers of
the last GET /sd are written to DIR/last_request as JSON. When DIR/answer_b
exists, GET /sd alternates between the two answers (the benchmark's churn).
POST /token is an OAuth2 token endpoint for client "sd" / secret "sd-secret"
(HTTP Basic); GET /secure answers like /sd but only with its token.
"""
import base64
import http.server
import json
import os
import sys

PORT, DIR = int(sys.argv[1]), sys.argv[2]


TOKEN = "tok-" + base64.b16encode(os.urandom(4)).decode()


class Handler(http.server.BaseHTTPRequestHandler):
    def reply(self, status, ctype, body):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        want = "Basic " + base64.b64encode(b"sd:sd-secret").decode()
        if self.path != "/token" or self.headers.get("Authorization") != want:
            return self.reply(401, "application/json", b'{"error":"invalid_client"}')
        body = json.dumps({"access_token": TOKEN, "token_type": "bearer", "expires_in": 3600})
        self.reply(200, "application/json", body.encode())

    def do_GET(self):
        if self.path == "/secure" and self.headers.get("Authorization") != "Bearer " + TOKEN:
            return self.reply(401, "text/plain", b"no token")
        name = "answer"
        if self.path == "/sd":
            self.record()
            if os.path.exists(os.path.join(DIR, "answer_b")):
                Handler.flip = not getattr(Handler, "flip", False)
                name = "answer_b" if Handler.flip else "answer"
        with open(os.path.join(DIR, name), "rb") as f:
            status, ctype, body = f.read().split(b"\n", 2)
        self.reply(int(status), ctype.decode(), body)

    def record(self):
        with open(os.path.join(DIR, "last_request.tmp"), "w") as f:
            json.dump({"path": self.path, "headers": dict(self.headers.items())}, f)
        os.replace(os.path.join(DIR, "last_request.tmp"), os.path.join(DIR, "last_request"))

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
