#!/usr/bin/env python3
"""Scrape targets whose series churn, for the soak test (tests/soak/soak.sh).

usage: churn_targets.py N PORTS_FILE [SERIES]
N targets on free loopback ports (one per line in PORTS_FILE). Each serves
SERIES gauges soak_value{target, gen, i}: `gen` changes every 60 s, so every
minute the whole set of series names is replaced (series churn), plus a
counter soak_requests_total that only grows.
"""
import http.server
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration",
                                "discovery"))
from targets import serve  # noqa: E402


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path != "/metrics":
            self.send_error(404)
            return
        srv = self.server
        srv.requests += 1
        gen = int(time.time() // 60)
        lines = ["# TYPE soak_value gauge"]
        for i in range(srv.series):
            lines.append('soak_value{target="%d",gen="%d",i="%d"} %d' % (srv.idx, gen, i, srv.requests + i))
        lines.append("# TYPE soak_requests_total counter")
        lines.append("soak_requests_total %d" % srv.requests)
        body = ("\n".join(lines) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main():
    n, path = int(sys.argv[1]), sys.argv[2]
    series = int(sys.argv[3]) if len(sys.argv) > 3 else 200

    def init(s, i):
        s.idx, s.series, s.requests = i, series, 0

    serve(n, path, Handler, init)


if __name__ == "__main__":
    main()
