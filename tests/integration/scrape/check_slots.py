#!/usr/bin/env python3
"""Check the `up` samples of every target in Prometheus between two times
against the target's scrape slots (every INTERVAL at a fixed phase): each
slot must hold exactly one sample (none doubled), and at most MAX_MISSED
consecutive slots may be empty.
usage: check_slots.py PROM_PORT JOB START_S END_S INTERVAL_S MAX_MISSED [TARGETS]
Prints a summary; exit 1 on a violation. First waits (60 s at most) until
every target has a sample from after END_S in Prometheus (remote write
caught up with the window).

A sample's timestamp is when its scrape started: at its slot or a little
after it (a loaded machine starts scrapes late), never before. So each
target's slot grid is anchored at its phase, taken from the samples that
are earliest within their slots (the start of the densest 0.5 s of offsets
modulo INTERVAL, read on the circle so that a phase near a whole second is
not split in two, and not moved by a catch-up sample far into its slot), and a
sample belongs to the slot it follows (floor, not round). The window holds
the slots that START in [START_S, END_S - 0.3 s]; samples are read from
before START_S and up to 1 s after END_S so that a late sample of a slot in
the window is still seen. (The grid used to be anchored on the first sample
after START_S and samples assigned by rounding: with scrapes a few hundred
ms late under load, the slot at the window start was counted as missing
while its sample sat just before START_S; proof runs beside a second copy
of the suite failed that way.)"""
import json
import math
import sys
import time
import urllib.parse
import urllib.request

port, job = sys.argv[1], sys.argv[2]
start, end, iv = map(float, sys.argv[3:6])
max_missed = int(sys.argv[6])
want_targets = int(sys.argv[7]) if len(sys.argv) > 7 else None
at = end + 1.0


def query(when):
    # the range selector is whole seconds: ask for more, keep what is needed
    q = 'up{job="%s"}[%ds]' % (job, math.ceil(when - start + iv) + 1)
    url = "http://127.0.0.1:%s/api/v1/query?%s" % (
        port, urllib.parse.urlencode({"query": q, "time": "%.3f" % when}))
    return json.load(urllib.request.urlopen(url, timeout=10))["data"]["result"]


def delivered(res):
    """Every target of the window has a sample from after END_S: remote write
    keeps a series' order, so its window is complete in Prometheus."""
    in_window = [r for r in res
                 if [v for v in r["values"] if start <= float(v[0]) <= end]]
    if want_targets is not None and len(in_window) < want_targets:
        return False
    return all(max(float(v[0]) for v in r["values"]) >= end for r in in_window)


# Wait (60 s at most) until remote write delivered the window, rather than
# the callers' fixed sleep after END_S that a loaded machine may not cover.
deadline = time.monotonic() + 60
while True:
    res = query(max(at, time.time()))
    if delivered(res) or time.monotonic() > deadline:
        break
    time.sleep(0.5)
res = query(at)


def phase_of(ts):
    """The start of the densest window (WINDOW s, at most iv/4) of offsets
    mod iv, read on the circle: the slot starts, where nearly every sample
    sits. A sample up to half an interval into its slot (a catch-up scrape
    after an owner's death, taken at once in the current slot;
    plugins/prometheus_scrape/README.md) must not move the grid, as it could
    when the grid started at the shortest arc holding every offset (one
    catch-up 1 s into a 2 s slot could start it there, and the next on-time
    sample would share that slot)."""
    offs = sorted(t % iv for t in ts)
    w = min(WINDOW, iv / 4)
    best, best_n = offs[0], -1
    for o in offs:
        n = sum(1 for x in offs if (x - o) % iv < w)
        if n > best_n:
            best, best_n = o, n
    # on-time samples spread wider than the window (load): the earliest of
    # them up to iv/4 before it (a catch-up is at most iv/2 into its slot,
    # so at least iv/2 before the next slot's start, never in that range)
    return max((o for o in offs if (best - o) % iv <= iv / 4), key=lambda o: (best - o) % iv)


WINDOW = 0.5
bad, doubles, worst_run, worst_at, n_targets = [], 0, 0, "", 0
for r in res:
    ts = sorted(float(v[0]) for v in r["values"])
    inst = r["metric"].get("instance")
    if not [t for t in ts if start <= t <= end]:
        continue
    n_targets += 1
    p = phase_of(ts)
    slot = [math.floor((t - p) / iv + 1e-6) for t in ts]
    k_lo = math.ceil((start - p) / iv - 1e-6)
    k_hi = math.floor((end - 0.3 - p) / iv + 1e-6)
    counts = {}
    for k in slot:
        counts[k] = counts.get(k, 0) + 1
    for k in range(k_lo, k_hi + 1):
        if counts.get(k, 0) > 1:
            doubles += 1
            bad.append("%s: %d samples in one slot (at %.1fs: %s)" % (
                inst, counts[k], p + k * iv - start,
                " ".join("%.3fs" % (t - start) for t, j in zip(ts, slot) if j == k)))
    run = 0
    for k in range(k_lo, k_hi + 1):
        if counts.get(k, 0):
            run = 0
            continue
        run += 1
        if run > worst_run:
            worst_run = run
            worst_at = "%s slot at %.1fs" % (inst, p + k * iv - start)
        if run == max_missed + 1:
            bad.append("%s: %d consecutive slots without a sample (near %.1fs)"
                       % (inst, run, p + k * iv - start))
print("targets=%d doubled_slots=%d longest_missed_run=%d (allowed %d) window=%.0fs%s"
      % (n_targets, doubles, worst_run, max_missed, end - start,
         " (ends at %s)" % worst_at if worst_run else ""))
for b in bad[:10]:
    print("  " + b)
if want_targets is not None and n_targets != want_targets:
    print("  expected %d targets" % want_targets)
    sys.exit(1)
sys.exit(1 if bad else 0)
