#!/usr/bin/env python3
"""Check the `up` samples of every target in Prometheus between two times
against the target's scrape slots (every INTERVAL at a fixed phase): each
slot must hold exactly one sample (none doubled), and at most MAX_MISSED
consecutive slots may be empty.
usage: check_slots.py PROM_PORT JOB START_S END_S INTERVAL_S MAX_MISSED [TARGETS]
Prints a summary; exit 1 on a violation."""
import json
import sys
import urllib.parse
import urllib.request

port, job = sys.argv[1], sys.argv[2]
start, end, iv = map(float, sys.argv[3:6])
max_missed = int(sys.argv[6])
want_targets = int(sys.argv[7]) if len(sys.argv) > 7 else None
q = 'up{job="%s"}[%ds]' % (job, int(end - start))
url = "http://127.0.0.1:%s/api/v1/query?%s" % (
    port, urllib.parse.urlencode({"query": q, "time": "%.3f" % end}))
res = json.load(urllib.request.urlopen(url, timeout=10))["data"]["result"]
bad, doubles, worst_run, worst_at = [], 0, 0, ""
for r in res:
    ts = sorted(float(v[0]) for v in r["values"])
    inst = r["metric"].get("instance")
    if not ts:
        continue
    ref = ts[0]
    idx = [round((t - ref) / iv) for t in ts]
    for i in set(idx):
        if idx.count(i) > 1:
            doubles += 1
            bad.append("%s: %d samples in one slot" % (inst, idx.count(i)))
    # slots inside the window: from the first slot after start to the last
    # slot before end (allow 0.3 s for the sample to be taken)
    lo = -int((ref - start) // iv)
    hi = int((end - 0.3 - ref) // iv)
    have = set(idx)
    run = 0
    for i in range(lo, hi + 1):
        if i in have:
            run = 0
            continue
        run += 1
        if run > worst_run:
            worst_run = run
            worst_at = "%s slot at %.1fs" % (inst, ref + i * iv - start)
        if run == max_missed + 1:
            bad.append("%s: %d consecutive slots without a sample (near %.1fs)"
                       % (inst, run, ref + i * iv - start))
print("targets=%d doubled_slots=%d longest_missed_run=%d (allowed %d) window=%.0fs%s"
      % (len(res), doubles, worst_run, max_missed, end - start,
         " (ends at %s)" % worst_at if worst_run else ""))
for b in bad[:10]:
    print("  " + b)
if want_targets is not None and len(res) != want_targets:
    print("  expected %d targets" % want_targets)
    sys.exit(1)
sys.exit(1 if bad else 0)
