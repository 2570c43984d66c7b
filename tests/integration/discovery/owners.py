#!/usr/bin/env python3
"""Owners of the targets of a scrape component across nodes.

usage: owners.py COMPONENT_ID HTTP_PORT...
Prints one line per target address (__address__, or instance for a
scraper's final labels): "<address> <owner nodes, comma-joined>"
(sorted), from each node's /api/v0/components/<id>/targets (owned_here).
Exit 2 if a node does not answer.
"""
import json
import sys
import urllib.request


def main():
    comp, ports = sys.argv[1], sys.argv[2:]
    owners = {}
    for p in ports:
        try:
            with urllib.request.urlopen(
                "http://127.0.0.1:%s/api/v0/components/%s/targets" % (p, comp), timeout=5
            ) as r:
                d = json.load(r)
        except Exception as e:  # noqa: BLE001 - any failure means "not ready"
            print("node %s: %s" % (p, e), file=sys.stderr)
            sys.exit(2)
        for t in d.get("targets", []):
            lb = t.get("labels", {})
            addr = lb.get("__address__") or lb.get("instance", "?")
            owners.setdefault(addr, [])
            if t.get("owned_here"):
                owners[addr].append(p)
    for addr in sorted(owners):
        print(addr, ",".join(owners[addr]) or "-")


if __name__ == "__main__":
    main()
