#!/usr/bin/env python3
"""N tiny scrape targets on free loopback ports (port 0, picked by the
kernel). Each serves `disc_test_up 1` plus its own index as a gauge.

usage: targets.py N PORTS_FILE   (writes one port per line, then serves
until SIGTERM)
"""
import http.server
import os
import signal
import sys
import threading


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path != "/metrics":
            self.send_error(404)
            return
        body = ("# TYPE disc_test_value gauge\ndisc_test_value %d\n" % self.server.idx).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def serve(n, path, handler, init):
    """Serve N HTTP servers of HANDLER on loopback ports the kernel picks
    (bound here and kept: no other process can take one between the pick
    and the bind), INIT(server, index) for each; write their ports to PATH,
    one a line, renamed into place once complete; serve until SIGTERM or
    SIGINT. Also used by tests/soak/churn_targets.py."""
    servers = []
    for i in range(n):
        s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        init(s, i)
        servers.append(s)
        threading.Thread(target=s.serve_forever, daemon=True).start()
    with open(path + ".tmp", "w") as f:
        for s in servers:
            f.write("%d\n" % s.server_address[1])
    os.rename(path + ".tmp", path)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    stop.wait()


def main():
    n, path = int(sys.argv[1]), sys.argv[2]
    serve(n, path, Handler, lambda s, i: setattr(s, "idx", i))


if __name__ == "__main__":
    main()
