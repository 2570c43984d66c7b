#!/usr/bin/env python3
"""Write a file_sd JSON file of N targets for the discovery benchmark.

usage: gen_sd.py N ROUND OUT
Targets are 127.a.b.c:9 (port 9 is closed: a scrape is refused at once),
100 per group, each group labelled rack=<group> and env=bench. ROUND r
replaces the first r * 1% of the targets by new addresses (so each round
replaces 1% more than the previous: 1% of the targets changes per round).
The file is written to OUT.tmp and renamed over OUT (an atomic change).
"""
import os
import sys


def addr(i):
    i += 1 << 16  # start at 127.1.0.0
    return "127.%d.%d.%d:9" % ((i >> 16) & 255, (i >> 8) & 255, i & 255)


def main():
    n, rnd, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    step = max(1, n // 100)
    idx = list(range(n))
    for j in range(min(n, rnd * step)):
        idx[j] = n + j  # replaced: a fresh address
    parts = []
    for g in range(0, n, 100):
        ts = ",".join('"%s"' % addr(i) for i in idx[g : g + 100])
        parts.append('{"targets":[%s],"labels":{"rack":"r%d","env":"bench"}}' % (ts, g // 100))
    with open(out + ".tmp", "w") as f:
        f.write("[" + ",\n".join(parts) + "]\n")
    os.rename(out + ".tmp", out)


if __name__ == "__main__":
    main()
