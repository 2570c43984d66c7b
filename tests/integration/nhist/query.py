#!/usr/bin/env python3
"""Queries for native_e2e.sh against Prometheus 2.42's HTTP API.

usage: query.py URL ready JOB...        every job has up == 1 and demo_ series
       query.py URL compare A B         same demo_ series (minus job) and values,
                                        native histograms included
       query.py URL compare-classic A B A's float series == B's float series
       query.py URL quantile JOB        histogram_quantile over the native histogram
       query.py URL exemplars JOB       exemplars of the counter and native histogram
       query.py URL stale JOB           the native histogram is gone (stale)
"""
import json
import math
import sys
import time
import urllib.parse
import urllib.request


def get(base, path, **params):
    url = base + path + "?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=10) as r:
        body = json.load(r)
    if body.get("status") != "success":
        raise SystemExit("query failed: %s" % body)
    return body["data"]


def series(base, job, at):
    out = {}
    q = '{__name__=~"demo_.*",job="%s"}' % job
    for r in get(base, "/api/v1/query", query=q, time=at)["result"]:
        m = dict(r["metric"])
        m.pop("job", None)
        m.pop("instance", None)
        key = tuple(sorted(m.items()))
        if "histogram" in r:
            out[key] = ("H", json.dumps(r["histogram"][1], sort_keys=True))
        else:
            out[key] = ("F", r["value"][1])
    return out


def show_diff(a, b, na, nb):
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k):
            print("  %s: %s=%s %s=%s" % (dict(k), na, a.get(k), nb, b.get(k)))


def main():
    base, cmd, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    now = time.time()
    if cmd == "ready":
        for job in args:
            up = get(base, "/api/v1/query", query='up{job="%s"}' % job)["result"]
            if not up or up[0]["value"][1] != "1":
                return 1
            if not series(base, job, now):
                return 1
        return 0
    if cmd in ("compare", "compare-classic"):
        a, b = series(base, args[0], now), series(base, args[1], now)
        if cmd == "compare-classic":
            a = {k: v for k, v in a.items() if v[0] == "F"}
            b = {k: v for k, v in b.items() if v[0] == "F"}
        if a != b or not a:
            show_diff(a, b, args[0], args[1])
            return 1
        nh = sum(1 for v in a.values() if v[0] == "H")
        print("%s == %s: %d series (%d native histograms)" % (args[0], args[1], len(a), nh))
        return 0
    if cmd == "quantile":
        q = 'histogram_quantile(0.9, demo_native_seconds{job="%s"})' % args[0]
        r = get(base, "/api/v1/query", query=q)["result"]
        if len(r) != 1 or not (0 < float(r[0]["value"][1]) < math.inf):
            print("  %s -> %s" % (q, r))
            return 1
        c = get(base, "/api/v1/query",
                query='histogram_count(demo_native_seconds{job="%s"})' % args[0])["result"]
        print("p90 = %s, count = %s" % (r[0]["value"][1], c[0]["value"][1] if c else None))
        return 0 if c and float(c[0]["value"][1]) >= 100 else 1
    if cmd == "exemplars":
        for name in ("demo_requests_total", "demo_native_seconds"):
            q = '%s{job="%s"}' % (name, args[0])
            r = get(base, "/api/v1/query_exemplars", query=q, start=now - 600, end=now + 60)
            ex = [e for s in r for e in s.get("exemplars", [])]
            if not ex or "trace_id" not in ex[0]["labels"]:
                print("  no exemplars for %s: %s" % (q, r))
                return 1
            print("%s: %d exemplars, e.g. %s" % (q, len(ex), ex[0]))
        return 0
    if cmd == "stale":
        r = get(base, "/api/v1/query", query='demo_native_seconds{job="%s"}' % args[0])
        return 0 if not r["result"] else 1
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
