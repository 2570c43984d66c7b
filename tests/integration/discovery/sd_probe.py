#!/usr/bin/env python3
"""Read a discovery component through the daemon's HTTP API.

  sd_probe.py targets HOST:PORT COMPONENT_ID   one line per target, its labels
                                              as sorted k=v pairs; lines sorted
  sd_probe.py health HOST:PORT COMPONENT_ID    "<health> <message>"
Exit status 1 when the daemon does not answer.
"""
import json
import sys
import urllib.request


def get(addr, path):
    with urllib.request.urlopen("http://%s%s" % (addr, path), timeout=5) as r:
        return json.load(r)


def main():
    cmd, addr, cid = sys.argv[1:4]
    try:
        if cmd == "targets":
            d = get(addr, "/api/v0/components/%s/targets" % cid)
            lines = []
            for t in d.get("targets", []):
                lines.append(" ".join("%s=%s" % (k, v) for k, v in sorted(t["labels"].items())))
            for line in sorted(lines):
                print(line)
        elif cmd == "health":
            for c in get(addr, "/api/v0/components"):
                if c.get("id") == cid:
                    print(c.get("health"), c.get("message"))
        else:
            sys.exit("unknown command " + cmd)
    except (OSError, ValueError):
        sys.exit(1)


main()
