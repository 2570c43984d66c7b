#!/usr/bin/env python3
"""Count scrape slots per target from the targets' own request log (lines
"PORT UNIX_SECONDS", written by bench_targetsrv with TARGETSRV_REQUEST_LOG).
Every target is scraped at a fixed phase in its interval, so each request
falls in one slot k = round((t - phase) / interval); a slot inside [START,
END] with no request is missed, one with two or more is doubled. A target
with no request at all in the window has every slot missed.
With PER_SLOT (replicas), a slot must hold exactly that many requests:
fewer counts as missed, more as doubled. With KEYS (a file of "PORT KEY"
lines, the target keys from the targets API) the phase is exact, key mod
interval in ms, and a request belongs to the last slot that started at or
before it (a scrape is never sent early, and one delayed by a loaded machine
still counts for its own slot); without it the phase is estimated and a
request goes to the nearest slot.
usage: check_requests.py LOG START END INTERVAL_S BASE_PORT N_TARGETS [PER_SLOT [KEYS]]
Prints "missed=N doubled=N targets=N slots=N" and the worst targets; exit 1
when any slot was missed or doubled."""
import cmath
import math
import sys

log, start, end, iv = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
base, n = int(sys.argv[5]), int(sys.argv[6])
per_slot = int(sys.argv[7]) if len(sys.argv) > 7 else 1
keys = {}
if len(sys.argv) > 8:
    with open(sys.argv[8]) as f:
        for line in f:
            p, k = line.split()
            keys[int(p)] = int(k, 0)
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
        missed += k * per_slot
        slots += k
        bad.append("127.0.0.1:%d: never scraped" % port)
        continue
    if port in keys:
        phase = (keys[port] % int(iv * 1000)) / 1000.0
        slot_of = lambda t: math.floor((t - phase) / iv + 1e-6)
    else:
        z = sum(cmath.exp(2j * math.pi * (t % iv) / iv) for t in ts)
        phase = (cmath.phase(z) / (2 * math.pi) % 1.0) * iv
        slot_of = lambda t: round((t - phase) / iv)
    lo = math.ceil((start - phase) / iv)
    hi = math.floor((end - phase) / iv)
    if port in keys:
        hi -= 1  # the last slot's request may still be on its way
    count = {}
    for t in ts:
        k = slot_of(t)
        if lo <= k <= hi:
            count[k] = count.get(k, 0) + 1
    m = [k for k in range(lo, hi + 1) if count.get(k, 0) < per_slot]
    d = [k for k, c in count.items() if c > per_slot]
    slots += hi - lo + 1
    missed += sum(per_slot - count.get(k, 0) for k in m)
    doubled += sum(count[k] - per_slot for k in d)
    if m or d:
        bad.append("127.0.0.1:%d: missed slots at %s doubled at %s" % (
            port, [round(k * iv + phase - start, 1) for k in m][:5],
            [round(k * iv + phase - start, 1) for k in d][:5]))
print("missed=%d doubled=%d targets=%d slots=%d window=%.1fs" % (
    missed, doubled, n, slots, end - start))
for b in bad[:10]:
    print("  " + b)
sys.exit(1 if missed or doubled else 0)
