#!/usr/bin/env python3
"""discovery.kubernetes -> discovery.relabel -> pyroscope.scrape ->
pyroscope.write, as an Alloy user wires profiling of a Kubernetes fleet.

    pyroscope.py BUILD_DIR

The fake API server (tests/integration/operator/fake_apiserver.py) announces
pods whose IP:port is a pprof server on 127.0.0.1 (fake_pyroscope.py
badtarget: /ok/... answers a valid gzip pprof); the sink is the fake
Pyroscope push endpoint (fake_pyroscope.py push), which accepts only what
push.v1.PusherService/Push accepts. Asserts: profiles of the discovered pods
arrive with the labels the relabel rules give them (pod, namespace,
service_name from an annotation, as the Alloy Kubernetes profiling docs
do); a pod ADDED through the watch starts being scraped, a pod DELETED
stops; a pod whose annotation says not to scrape is dropped by the rules.
"""
import json
import os
import sys

BUILD = os.path.abspath(sys.argv[1])
HERE = os.path.dirname(os.path.abspath(__file__))
FAKE_PYRO = os.path.join(HERE, "..", "pyroscope", "fake_pyroscope.py")


sys.path.insert(0, os.path.join(HERE, ".."))
import k8s_harness as h  # noqa: E402
from k8s_harness import cleanup, ctl, fail, http, spawn, wait  # noqa: E402

API, HTTP, PUSH, T1, T2, T3 = h.free_ports(6)
WORK = h.setup("sts-dkp.", API)
PUSHDIR = os.path.join(WORK, "push")


def pushed():
    """Label sets of the profiles the push server accepted."""
    out = []
    for f in sorted(os.listdir(PUSHDIR)):
        if f.endswith(".json"):
            try:
                out.append(json.load(open(os.path.join(PUSHDIR, f)))["labels"])
            except ValueError:
                pass
    return out


def pod(name, port, scrape="true"):
    return {"kind": "Pod", "apiVersion": "v1",
            "metadata": {"name": name, "namespace": "shop", "uid": "uid-" + name,
                         "labels": {"app": "cart"},
                         "annotations": {"profiles.grafana.com/goroutine.scrape": scrape,
                                         "pyroscope.io/service-name": "shop/cart"}},
            "spec": {"nodeName": "node-a",
                     "containers": [{"name": "cart", "image": "shop/cart:1.4",
                                     "ports": [{"name": "pprof", "containerPort": port,
                                                "protocol": "TCP"}]}]},
            "status": {"phase": "Running", "podIP": "127.0.0.1", "hostIP": "127.0.0.1",
                       "conditions": [{"type": "Ready", "status": "True"}]}}


def main():
    os.makedirs(PUSHDIR)
    spawn("apiserver", [sys.executable, h.FAKE_APISERVER, str(API), "tok"])
    spawn("push", [sys.executable, FAKE_PYRO, "push", str(PUSH), PUSHDIR])
    for p in (T1, T2, T3):
        spawn("target%d" % p, [sys.executable, FAKE_PYRO, "badtarget", str(p)])
    wait(lambda: http("GET", "http://127.0.0.1:%d/_control/stats" % API), 10, "fake API server")
    wait(lambda: http("GET", "http://127.0.0.1:%d/stats" % PUSH), 10, "push server")
    for p in (T1, T2, T3):
        wait(lambda: http("GET", "http://127.0.0.1:%d/ok/x" % p), 10, "pprof target")
    ctl("apply", pod("cart-a", T1))
    ctl("apply", pod("cart-off", T3, scrape="false"))

    cfg = """plugins_dir = "%(b)s/plugins";
state_dir = "%(w)s/state";
server = { http_listen_addr = "127.0.0.1:%(http)d"; };
components = (
  { type = "discovery.kubernetes"; name = "pods"; role = "pod";
    api_server = "http://127.0.0.1:%(api)d"; bearer_token = "tok";
    namespaces = { names = [ "shop" ]; }; },
  { type = "discovery.relabel"; name = "pods";
    targets = ( "discovery.kubernetes.pods" );
    rule = (
      { source_labels = [ "__meta_kubernetes_pod_annotation_profiles_grafana_com_goroutine_scrape" ];
        regex = "true"; action = "keep"; },
      { source_labels = [ "__meta_kubernetes_namespace" ]; target_label = "namespace"; },
      { source_labels = [ "__meta_kubernetes_pod_name" ]; target_label = "pod"; },
      { source_labels = [ "__meta_kubernetes_pod_annotation_pyroscope_io_service_name" ];
        target_label = "service_name"; }
    ); },
  { type = "pyroscope.scrape"; name = "pods";
    targets = ( "discovery.relabel.pods" );
    scrape_interval = "1s"; scrape_timeout = "1s";
    profiling_config = { path_prefix = "/ok";
      process_cpu = { enabled = false; }; memory = { enabled = false; };
      mutex = { enabled = false; }; block = { enabled = false; };
      goroutine = { enabled = true; }; };
    forward_to = [ "pyroscope.write.pyro" ]; },
  { type = "pyroscope.write"; name = "pyro";
    endpoint = ( { url = "http://127.0.0.1:%(push)d"; min_backoff_period = "200ms";
                   max_backoff_period = "1s"; max_backoff_retries = 3; } ); }
);
""" % {"b": BUILD, "w": WORK, "http": HTTP, "api": API, "push": PUSH}
    open(os.path.join(WORK, "starling.cfg"), "w").write(cfg)
    spawn("starling", [os.path.join(BUILD, "starling"), "run", "--config",
                       os.path.join(WORK, "starling.cfg")])
    wait(lambda: http("GET", "http://127.0.0.1:%d/-/ready" % HTTP), 20, "starling ready")

    got = wait(lambda: [l for l in pushed() if l.get("pod") == "cart-a"], 20,
               "profiles of the discovered pod")
    l = got[0]
    for k, v in (("namespace", "shop"), ("service_name", "shop/cart"),
                 ("__name__", "goroutine"), ("instance", "127.0.0.1:%d" % T1)):
        if l.get(k) != v:
            fail("profile label %s=%r, want %r (labels %s)" % (k, l.get(k), v, l))
    if any(k.startswith("__meta_") for k in l):
        fail("meta labels leaked into the profile: %s" % l)
    print("ok: discovered pod profiled with relabelled labels")

    ctl("apply", pod("cart-b", T2))
    wait(lambda: any(l.get("pod") == "cart-b" for l in pushed()), 20, "ADDED pod profiled")
    print("ok: ADDED pod profiled")

    ctl("delete", pod("cart-a", T1))

    def relabelled():
        doc = json.loads(http("GET", "http://127.0.0.1:%d/api/v0/components/"
                              "discovery.relabel.pods/targets" % HTTP))
        return [t["labels"] for t in doc["targets"]]

    def profiles(name):
        return sum(1 for l in pushed() if l.get("pod") == name)

    # The set without cart-a reaches pyroscope.scrape (discovery publishes
    # at most every 5 s), then two more profiles of cart-b (1 s interval) let
    # a scrape of cart-a already in flight land; the window is the next
    # three of cart-b. (Fixed 7 s and 3 s before, which a loaded machine
    # may not fill.)
    wait(lambda: not any(t.get("pod") == "cart-a" for t in relabelled()), 30,
         "cart-a gone from the discovered set")
    b0 = profiles("cart-b")
    wait(lambda: profiles("cart-b") >= b0 + 2, 30, "cart-b still profiled")
    before, b1 = profiles("cart-a"), profiles("cart-b")
    wait(lambda: profiles("cart-b") >= b1 + 3, 30, "cart-b still profiled")
    after = profiles("cart-a")
    if after != before:
        fail("the DELETED pod is still scraped (%d -> %d profiles)" % (before, after))
    if not any(l.get("pod") == "cart-b" for l in pushed()[-5:]):
        fail("cart-b no longer scraped")
    if any(l.get("pod") == "cart-off" for l in pushed()):
        fail("the pod whose annotation says no was scraped")
    print("ok: DELETED pod no longer scraped, annotated-off pod never")
    cleanup()
    print("PASS")


if __name__ == "__main__":
    try:
        main()
    finally:
        cleanup()
