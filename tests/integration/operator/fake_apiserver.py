#!/usr/bin/env python3
"""A fake Kubernetes API server for the prometheus.operator and
discovery.kubernetes tests.

Serves LIST and WATCH of pods, services, endpoints, endpointslices, nodes,
namespaces, secrets, configmaps, podmonitors and servicemonitors (cluster-wide and per namespace;
labelSelector with =, ==, !=, key and !key terms, fieldSelector on
metadata.name, metadata.namespace and spec.nodeName) the way the real API server
shapes them: `<Kind>List` documents with metadata.resourceVersion (paged with
limit/continue), and for `?watch=1` a chunked stream of newline-separated
`{"type": ..., "object": ...}` events starting after the given
resourceVersion, ended after timeoutSeconds.

A control API drives it from the test script:
  POST /_control/apply       body: an object (kind + metadata), or a JSON array
                             of them -> ADDED/MODIFIED
  POST /_control/delete      body: an object -> DELETED
  POST /_control/expire      every open watch gets ERROR 410 and history is dropped
  POST /_control/garbage     every open watch gets a line of garbage
  POST /_control/close       every open watch ends normally (as at timeoutSeconds)
  POST /_control/list_garbage?n=N  the next N LISTs answer with garbage
  GET  /_control/stats       {"lists": n, "pages": n, "watches": n, "unauthorized": n,
                             "watch_rv": {plural: [rv a watch started from...]},
                             "bookmarks": {plural: n sent}, "bookmark_rv": {plural: last}}

A LIST or WATCH whose fieldSelector names an object "forbidden-*" gets 403
Forbidden, as RBAC that does not cover it answers.

Usage: fake_apiserver.py PORT TOKEN [MAX_PAGE]
MAX_PAGE caps the items per LIST page (as a server under load may return
fewer than `limit`), so that clients must follow `continue`.
"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

RESOURCES = {
    # plural: (kind, apiVersion, path prefix)
    "pods": ("Pod", "v1", "/api/v1"),
    "services": ("Service", "v1", "/api/v1"),
    "endpoints": ("Endpoints", "v1", "/api/v1"),
    "endpointslices": ("EndpointSlice", "discovery.k8s.io/v1", "/apis/discovery.k8s.io/v1"),
    "nodes": ("Node", "v1", "/api/v1"),
    "namespaces": ("Namespace", "v1", "/api/v1"),
    "secrets": ("Secret", "v1", "/api/v1"),
    "configmaps": ("ConfigMap", "v1", "/api/v1"),
    "podmonitors": ("PodMonitor", "monitoring.coreos.com/v1", "/apis/monitoring.coreos.com/v1"),
    "servicemonitors": ("ServiceMonitor", "monitoring.coreos.com/v1",
                        "/apis/monitoring.coreos.com/v1"),
}
PLURAL = {v[0]: k for k, v in RESOURCES.items()}


class State:
    def __init__(self):
        self.cond = threading.Condition()
        self.rv = 1000
        self.objects = {r: {} for r in RESOURCES}   # plural -> (ns, name) -> obj
        self.history = []   # (rv, plural, ns, event dict or special string)
        self.min_rv = self.rv  # watches from an older rv get 410
        self.stats = {"lists": 0, "pages": 0, "watches": 0, "unauthorized": 0}
        self.list_garbage = 0
        self.closes = 0  # /_control/close calls: watches open then end

    def close_watches(self):
        """End the watches open now, normally (as at timeoutSeconds). Not an
        event of the history: a watch started later, from any
        resourceVersion, is not ended by it."""
        with self.cond:
            self.closes += 1
            self.cond.notify_all()

    def change(self, obj, deleted=False):
        plural = PLURAL[obj["kind"]]
        md = obj.setdefault("metadata", {})
        key = (md.get("namespace", ""), md["name"])
        with self.cond:
            self.rv += 1
            md["resourceVersion"] = str(self.rv)
            prev = self.objects[plural].get(key)
            if deleted:
                old = self.objects[plural].pop(key, None)
                if old is None:
                    return
                old["metadata"]["resourceVersion"] = str(self.rv)
                ev = {"type": "DELETED", "object": old}
            else:
                typ = "MODIFIED" if key in self.objects[plural] else "ADDED"
                md.setdefault("uid", "uid-%s-%s-%s" % (plural, key[0], key[1]))
                md.setdefault("creationTimestamp", "2026-11-26T10:00:00Z")
                self.objects[plural][key] = obj
                ev = {"type": typ, "object": obj}
            self.history.append((self.rv, plural, key[0], ev, prev))
            self.cond.notify_all()

    def special(self, what):
        with self.cond:
            self.rv += 1
            if what == "expire":
                self.min_rv = self.rv
                self.history = []
            self.history.append((self.rv, "*", "*", what, None))
            self.cond.notify_all()


STATE = State()
TOKEN = ""
MAX_PAGE = 0


def selected(obj, q):
    """labelSelector / fieldSelector of a LIST or WATCH (the subset kubectl users write)."""
    md = obj.get("metadata", {})
    labels = md.get("labels") or {}
    for term in filter(None, (q.get("labelSelector") or "").split(",")):
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k.strip()) == v.strip():
                return False
        elif "=" in term:
            k, v = term.replace("==", "=").split("=", 1)
            if labels.get(k.strip()) != v.strip():
                return False
        elif term.startswith("!"):
            if term[1:].strip() in labels:
                return False
        elif term.strip() not in labels:
            return False
    fields = {"metadata.name": md.get("name"), "metadata.namespace": md.get("namespace"),
              "spec.nodeName": (obj.get("spec") or {}).get("nodeName")}
    for term in filter(None, (q.get("fieldSelector") or "").split(",")):
        neg = "!=" in term
        k, v = term.replace("==", "=").split("!=" if neg else "=", 1)
        if (fields.get(k.strip()) == v.strip()) == neg:
            return False
    return True


def route(path):
    """/api/v1/pods, /api/v1/namespaces/ns/pods -> (plural, ns or None)."""
    for plural, (_, _, prefix) in RESOURCES.items():
        if path == "%s/%s" % (prefix, plural):
            return plural, None
        if path.startswith(prefix + "/namespaces/") and path.endswith("/" + plural):
            mid = path[len(prefix + "/namespaces/"):-len("/" + plural)]
            if mid and "/" not in mid:
                return plural, mid
    return None, None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (time.strftime("%H:%M:%S"), fmt % args))

    def send_json(self, code, doc):
        body = json.dumps(doc).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def status(self, code, reason, message):
        self.send_json(code, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                              "status": "Failure", "message": message, "reason": reason,
                              "code": code})

    def do_POST(self):
        u = urlparse(self.path)
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        if u.path == "/_control/apply":
            doc = json.loads(body)
            for o in doc if isinstance(doc, list) else [doc]:
                STATE.change(o)
        elif u.path == "/_control/delete":
            STATE.change(json.loads(body), deleted=True)
        elif u.path == "/_control/expire":
            STATE.special("expire")
        elif u.path == "/_control/garbage":
            STATE.special("garbage")
        elif u.path == "/_control/close":
            STATE.close_watches()
        elif u.path == "/_control/list_garbage":
            STATE.list_garbage = int(parse_qs(u.query).get("n", ["1"])[0])
        else:
            return self.status(404, "NotFound", "no such control")
        self.send_json(200, {"rv": STATE.rv})

    def do_GET(self):
        u = urlparse(self.path)
        q = {k: v[0] for k, v in parse_qs(u.query).items()}
        if u.path == "/_control/stats":
            return self.send_json(200, STATE.stats)
        if self.headers.get("Authorization") != "Bearer " + TOKEN:
            STATE.stats["unauthorized"] += 1
            return self.status(401, "Unauthorized", "Unauthorized")
        plural, ns = route(u.path)
        if "metadata.name=forbidden-" in (q.get("fieldSelector") or ""):
            # RBAC that does not cover this object (any kind)
            return self.status(403, "Forbidden", "%s is forbidden: User "
                               "\"system:serviceaccount:monitoring:starling\" cannot list "
                               "resource \"%s\"" % (plural, plural))
        if plural is None:
            return self.status(404, "NotFound", "the server could not find the requested resource")
        if q.get("watch") in ("1", "true"):
            return self.watch(plural, ns, q)
        return self.list(plural, ns, q)

    def list(self, plural, ns, q):
        kind, api_version, _ = RESOURCES[plural]
        STATE.stats["lists"] += 1
        if STATE.list_garbage > 0:
            STATE.list_garbage -= 1
            body = b"<html>502 Bad Gateway</html>"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        with STATE.cond:
            items = [o for (ons, _), o in sorted(STATE.objects[plural].items())
                     if (ns is None or ons == ns) and selected(o, q)]
            rv = STATE.rv
        start = int(q.get("continue") or 0)
        STATE.stats["pages"] += 1 if start else 0
        limit = int(q.get("limit") or 0) or len(items) or 1
        if MAX_PAGE:
            limit = min(limit, MAX_PAGE)
        page = items[start:start + limit]
        md = {"resourceVersion": str(rv)}
        if start + limit < len(items):
            md["continue"] = str(start + limit)
        # Items of a list carry no kind/apiVersion, as the real server sends them.
        page = [{k: v for k, v in o.items() if k not in ("kind", "apiVersion")} for o in page]
        self.send_json(200, {"kind": kind + "List", "apiVersion": api_version,
                             "metadata": md, "items": page})

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def watch(self, plural, ns, q):
        STATE.stats["watches"] += 1
        STATE.stats.setdefault("watch_rv", {}).setdefault(plural, []).append(
            q.get("resourceVersion") or "")
        try:
            since = int(q.get("resourceVersion") or 0)
        except ValueError:
            return self.status(400, "BadRequest", "bad resourceVersion")
        deadline = time.monotonic() + int(q.get("timeoutSeconds") or 1800)
        if since and since < STATE.min_rv:
            return self.status(410, "Expired", "too old resource version: %d (%d)"
                               % (since, STATE.min_rv))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        pos = since
        with STATE.cond:
            gen = STATE.closes
        try:
            while time.monotonic() < deadline:
                with STATE.cond:
                    evs = [h for h in STATE.history if h[0] > pos]
                    if not evs and STATE.closes == gen:
                        STATE.cond.wait(min(1.0, max(0.0, deadline - time.monotonic())))
                        evs = [h for h in STATE.history if h[0] > pos]
                    closed = STATE.closes != gen
                for rv, p, ens, ev, prev in evs:
                    pos = rv
                    if ev == "expire":
                        st = {"kind": "Status", "apiVersion": "v1", "metadata": {},
                              "status": "Failure",
                              "message": "too old resource version: %d (%d)" % (since, rv),
                              "reason": "Expired", "code": 410}
                        self.chunk(json.dumps({"type": "ERROR", "object": st}).encode() + b"\n")
                        self.chunk(b"")
                        return
                    if ev == "garbage":
                        self.chunk(b'{"type":"ADDED","object":{"kind":<<garbage\n')
                        continue
                    if p != plural or (ns is not None and ens != ns):
                        continue
                    if not selected(ev["object"], q):
                        # an object leaving a watch's selector is DELETED for it
                        if ev["type"] != "MODIFIED" or prev is None or not selected(prev, q):
                            continue
                        ev = {"type": "DELETED", "object": ev["object"]}
                    self.chunk(json.dumps(ev).encode() + b"\n")
                if closed:
                    self.chunk(b"")
                    return
                if not evs and pos:
                    bm = {"type": "BOOKMARK", "object": {
                        "kind": RESOURCES[plural][0], "apiVersion": RESOURCES[plural][1],
                        "metadata": {"resourceVersion": str(pos)}}}
                    self.chunk(json.dumps(bm).encode() + b"\n")
                    with STATE.cond:
                        sent = STATE.stats.setdefault("bookmarks", {})
                        sent[plural] = sent.get(plural, 0) + 1
                        STATE.stats.setdefault("bookmark_rv", {})[plural] = pos
            self.chunk(b"")
        except (BrokenPipeError, ConnectionResetError):
            pass


def main():
    global TOKEN, MAX_PAGE
    port, TOKEN = int(sys.argv[1]), sys.argv[2]
    MAX_PAGE = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    srv.daemon_threads = True
    srv.serve_forever()


if __name__ == "__main__":
    main()
