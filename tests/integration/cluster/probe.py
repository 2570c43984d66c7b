#!/usr/bin/env python3
"""Read a Starling node's cluster view over its HTTP API (the tests' only
window on a node).

  probe.py peers ADDR             "name state" per member (GET /api/v0/cluster/peers)
  probe.py owners ADDR N          "key owner" for N fixed probe keys
  probe.py owner-of ADDR KEY...   "key owner" for the given keys

owners/owner-of print nothing when the node is unreachable or its view epoch
moved while reading, so that a caller polling for agreement simply retries.
"""
import http.client
import json
import sys


def conn(addr):
    host, port = addr.rsplit(":", 1)
    return http.client.HTTPConnection(host, int(port), timeout=5)


def get(c, path):
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    if r.status != 200:
        raise OSError("%s: HTTP %d" % (path, r.status))
    return json.loads(body)


def probe_keys(n):
    # Spread over the whole 64-bit space, the same keys on every call.
    return [((k + 1) * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF for k in range(n)]


def owners(addr, keys):
    c = conn(addr)
    out, epoch = [], None
    for k in keys:
        d = get(c, "/api/v0/cluster/owner?key=%d" % k)
        if epoch is None:
            epoch = d["epoch"]
        elif d["epoch"] != epoch:
            return []
        out.append("%d %s" % (k, d["owners"][0] if d["owners"] else "-"))
    return out


def main():
    try:
        if sys.argv[1] == "peers":
            for p in get(conn(sys.argv[2]), "/api/v0/cluster/peers"):
                print(p["name"], p["state"])
        elif sys.argv[1] == "owners":
            for line in owners(sys.argv[2], probe_keys(int(sys.argv[3]))):
                print(line)
        elif sys.argv[1] == "owner-of":
            for line in owners(sys.argv[2], [int(k) for k in sys.argv[3:]]):
                print(line)
        else:
            sys.exit("usage: probe.py peers|owners|owner-of ADDR ...")
    except (OSError, ValueError, KeyError, http.client.HTTPException):
        pass


main()
