#!/usr/bin/env python3
"""Count scrape slots per target from the targets' own request log (lines
"PORT UNIX_SECONDS", written by bench_targetsrv with TARGETSRV_REQUEST_LOG).
Every target is scraped at a fixed phase in its interval, so each request
falls in one slot k = round((t - phase) / interval); a slot inside [START,
END] with no request is missed, one with two or more is doubled. A target
with no request at all in the window has every slot missed.
usage: check_requests.py LOG START END INTERVAL_S BASE_PORT N_TARGETS
Prints "missed=N doubled=N targets=N slots=N" and the worst targets; exit 1
when any slot was missed or doubled."""
import cmath
import math
import sys

log, start, end, iv = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
base, n = int(sys.argv[5]), int(sys.argv[6])
times = {p: [] for p in range(base, base + n)}
with open(log) as f:
    for line in f:
        parts = line.split()
        if len(parts) == 2 and int(parts[0]) in times:
            times[int(parts[0])].append(float(parts[1]))

missed = doubled = slots = 0
bad = []
for port, ts in sorted(times.items()):
    # the target's phase: circular mean of its request times mod interval
    # (all requests, so that one in the window is enough to place it)
    if not ts:
        k = int((end - start) // iv)
        missed += k
        slots += k
        bad.append("127.0.0.1:%d: never scraped" % port)
        continue
    z = sum(cmath.exp(2j * math.pi * (t % iv) / iv) for t in ts)
    phase = (cmath.phase(z) / (2 * math.pi) % 1.0) * iv
    lo = math.ceil((start - phase) / iv)
    hi = math.floor((end - phase) / iv)
    count = {}
    for t in ts:
        k = round((t - phase) / iv)
        if lo <= k <= hi:
            count[k] = count.get(k, 0) + 1
    m = [k for k in range(lo, hi + 1) if k not in count]
    d = [k for k, c in count.items() if c > 1]
    slots += hi - lo + 1
    missed += len(m)
    doubled += sum(count[k] - 1 for k in d)
    if m or d:
        bad.append("127.0.0.1:%d: missed slots at %s doubled at %s" % (
            port, [round(k * iv + phase - start, 1) for k in m][:5],
            [round(k * iv + phase - start, 1) for k in d][:5]))
print("missed=%d doubled=%d targets=%d slots=%d window=%.1fs" % (
    missed, doubled, n, slots, end - start))
for b in bad[:10]:
    print("  " + b)
sys.exit(1 if missed or doubled else 0)
