#!/usr/bin/python3
"""Watch a Starling cluster and a serf cluster side by side (bench helper of
tests/bench/cluster/run_failover). One process polls every member every
50 ms: Starling daemons through GET /api/v0/cluster/peers, serf agents
through their RPC port (msgpack, serf's `members` command, one connection
each), so the polling cost and the time resolution are the same for both.

  cluster_watch.py converge STARLING_HTTP_PORTS SERF_RPC_PORTS TIMEOUT_S
      until every daemon lists every daemon as a participant and every
      agent lists every agent alive; prints the time it took
  cluster_watch.py detect STARLING_HTTP_PORTS STARLING_VICTIMS \\
      SERF_RPC_PORTS SERF_VICTIMS T0 TIMEOUT_S
      until every surviving daemon lists every victim dead (or left) and
      every surviving agent lists every victim failed (or left); prints
      "starling_first_s starling_all_s serf_first_s serf_all_s" counted from
      T0 (unix seconds), -1 for never
Lists are comma-separated. Needs python3-msgpack (Debian)."""
import json
import socket
import sys
import time
import urllib.request

import msgpack


class SerfRPC:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.unpacker = msgpack.Unpacker(raw=False)
        self.seq = 0
        self.call("handshake", {"Version": 1}, body=False)

    def _next(self):
        while True:
            for obj in self.unpacker:
                return obj
            data = self.sock.recv(65536)
            if not data:
                raise OSError("serf rpc closed")
            self.unpacker.feed(data)

    def call(self, command, args=None, body=True):
        self.seq += 1
        msg = msgpack.packb({"Command": command, "Seq": self.seq})
        if args is not None:
            msg += msgpack.packb(args)
        self.sock.sendall(msg)
        head = self._next()
        if head.get("Error"):
            raise OSError("serf rpc: %s" % head["Error"])
        return self._next() if body else None

    def states(self):
        return {m["Name"]: m["Status"] for m in self.call("members")["Members"]}


def starling_states(port):
    url = "http://127.0.0.1:%d/api/v0/cluster/peers" % port
    with urllib.request.urlopen(url, timeout=2) as r:
        return {p["name"]: p["state"] for p in json.load(r)}


def ports(arg):
    return [int(p) for p in arg.split(",") if p]


def converge(sports, rports, timeout):
    t0 = time.time()
    rpcs = {}
    while time.time() - t0 < timeout:
        ok = True
        for p in sports:
            try:
                st = starling_states(p)
            except OSError:
                ok = False
                break
            if sum(1 for s in st.values() if s == "participant") != len(sports):
                ok = False
                break
        for p in rports if ok else []:
            try:
                if p not in rpcs:
                    rpcs[p] = SerfRPC(p)
                st = rpcs[p].states()
            except OSError:
                rpcs.pop(p, None)
                ok = False
                break
            if sum(1 for s in st.values() if s == "alive") != len(rports):
                ok = False
                break
        if ok:
            print("%.1f" % (time.time() - t0))
            return 0
        time.sleep(0.1)
    print("-1")
    return 1


def detect(sports, svictims, rports, rvictims, t0, timeout):
    sfirst = {}  # survivor port -> time it saw every victim gone
    rfirst = {}
    rpcs = {p: SerfRPC(p) for p in rports}
    while time.time() - t0 < timeout:
        now = time.time()
        for p in sports:
            if p in sfirst:
                continue
            try:
                st = starling_states(p)
            except OSError:
                continue
            if all(st.get(v) in ("dead", "left") for v in svictims):
                sfirst[p] = now - t0
        for p in rports:
            if p in rfirst:
                continue
            try:
                st = rpcs[p].states()
            except OSError:
                continue
            if all(st.get(v) in ("failed", "left") for v in rvictims):
                rfirst[p] = now - t0
        if len(sfirst) == len(sports) and len(rfirst) == len(rports):
            break
        time.sleep(0.05)

    def fmt(d, n):
        if not d:
            return "-1 -1"
        return "%.2f %s" % (min(d.values()), "%.2f" % max(d.values()) if len(d) == n else "-1")

    print(fmt(sfirst, len(sports)), fmt(rfirst, len(rports)))
    return 0 if len(sfirst) == len(sports) and len(rfirst) == len(rports) else 1


if __name__ == "__main__":
    a = sys.argv
    if len(a) == 5 and a[1] == "converge":
        sys.exit(converge(ports(a[2]), ports(a[3]), float(a[4])))
    if len(a) == 8 and a[1] == "detect":
        sys.exit(detect(ports(a[2]), a[3].split(","), ports(a[4]), a[5].split(","),
                        float(a[6]), float(a[7])))
    sys.exit(__doc__)
