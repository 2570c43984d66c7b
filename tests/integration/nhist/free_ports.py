#!/usr/bin/env python3
"""Print the first port of N consecutive free ports on 127.0.0.1, below the
kernel's ephemeral range (so outgoing connections cannot take them later).
usage: free_ports.py N"""
import random
import socket
import sys

n = int(sys.argv[1])
for _ in range(500):
    base = random.randrange(20000, 32000 - n)
    socks = []
    try:
        for p in range(base, base + n):
            s = socket.socket()
            s.bind(("127.0.0.1", p))
            socks.append(s)
    except OSError:
        continue
    finally:
        for s in socks:
            s.close()
    print(base)
    sys.exit(0)
sys.exit("no run of %d free ports" % n)
