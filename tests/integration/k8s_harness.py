"""What the Python integration tests that drive the fake Kubernetes API
server (operator/fake_apiserver.py) share: free ports, a work directory,
child processes cleaned up by PID, failing (or skipping) with their logs,
HTTP, the server's /_control endpoint and bounded waits.

    sys.path.insert(0, os.path.join(HERE, ".."))
    import k8s_harness as h
    API, HTTP = h.free_ports(2)
    h.setup("sts-dk.", API)
    h.spawn("apiserver", [sys.executable, h.FAKE_APISERVER, str(API), "tok"])
    h.wait(lambda: ..., 15, "what is awaited")

Used by operator/endpoint_auth.py and discovery_kubernetes/*.py.
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

FAKE_APISERVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "operator",
                              "fake_apiserver.py")
WORK = None  # the test's work directory (setup)
API = None  # the fake API server's port (setup)
procs = []  # children, stopped by cleanup()


def free_ports(n):
    """n distinct free ports on 127.0.0.1, all bound at once (separate
    bind-to-0 picks may hand out one port twice)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def setup(prefix, api_port):
    global WORK, API
    WORK = tempfile.mkdtemp(prefix=prefix)
    API = api_port
    return WORK


def spawn(name, args, **kw):
    """Start a child with its output in WORK/NAME.log; returns it."""
    p = subprocess.Popen(args, stdout=open(os.path.join(WORK, name + ".log"), "w"),
                         stderr=subprocess.STDOUT, **kw)
    procs.append(p)
    return p


def cleanup():
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()


def fail(msg):
    print("FAIL:", msg)
    for f in sorted(os.listdir(WORK)):
        if f.endswith(".log"):
            print("---", f)
            print("".join(open(os.path.join(WORK, f), errors="replace").readlines()[-25:]))
    cleanup()
    sys.exit(1)


def skip(msg):
    print("SKIP:", msg)
    cleanup()
    sys.exit(77)


def http(method, url, body=None):
    req = urllib.request.Request(url, data=body, method=method)
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.read()


def ctl(what, obj=None):
    """POST to the fake API server's /_control/WHAT (apply, delete, close,
    expire, garbage...), OBJ as JSON; returns the answer's body."""
    return http("POST", "http://127.0.0.1:%d/_control/%s" % (API, what),
                json.dumps(obj).encode() if obj is not None else b"")


def wait(pred, secs, what):
    """Poll PRED (exceptions count as not yet) until it returns something
    true, which is returned; fail after SECS."""
    deadline = time.monotonic() + secs
    last = None
    while time.monotonic() < deadline:
        try:
            last = pred()
            if last:
                return last
        except Exception as e:  # not up yet
            last = e
        time.sleep(0.1)
    fail("timed out waiting for %s (last: %r)" % (what, last))
