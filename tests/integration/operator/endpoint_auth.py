#!/usr/bin/env python3
"""prometheus.operator.podmonitors: per-endpoint HTTPS + client certificate +
basic auth from Secrets and a ConfigMap, against a real node_exporter 1.5
with --web.config.file (TLS requiring a client certificate signed by the
test CA, and basic auth).

    endpoint_auth.py BUILD_DIR

Upstream: prometheus-operator pkg/apis/monitoring/v1 (PodMetricsEndpoint
inlines HTTPConfigWithProxy: basicAuth, tlsConfig = SafeTLSConfig with
ca/cert as SecretOrConfigMap and keySecret), pkg/assets/store.go (references
resolved in the monitor's namespace; "unable to get secret").
Asserts: the authenticated HTTPS target is scraped (up=1, node_exporter
series with the operator's labels); a second monitor naming a Secret that
does not exist has that endpoint skipped, counted and shown in the
component's message while the first keeps running; once the Secret is
created (watched by name) the second monitor's target is scraped too; no
secret value reaches the log.
"""
import base64
import json
import os
import socket
import subprocess
import sys
import warnings

BUILD = os.path.abspath(sys.argv[1])
HERE = os.path.dirname(os.path.abspath(__file__))
PASSWORD = "hunter2-s3cr3t"

sys.path.insert(0, os.path.join(HERE, ".."))
import k8s_harness as h  # noqa: E402
from k8s_harness import cleanup, ctl, fail, http, skip, wait  # noqa: E402

API, HTTP, NE = h.free_ports(3)
WORK = h.setup("sts-opauth.", API)


def run(*args):
    subprocess.run(args, cwd=WORK, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def pem(name):
    return open(os.path.join(WORK, name)).read()


def b64(s):
    return base64.b64encode(s.encode()).decode()


def samples():
    try:
        return open(os.path.join(WORK, "samples.txt")).read()
    except OSError:
        return ""


def main():
    for prog in ("openssl", "prometheus-node-exporter"):
        if not any(os.access(os.path.join(d, prog), os.X_OK)
                   for d in os.environ.get("PATH", "").split(":")):
            skip("no " + prog)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import crypt
        hashed = crypt.crypt(PASSWORD, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 4))
    except Exception:
        hashed = None
    if not hashed or not hashed.startswith("$2"):
        skip("no bcrypt in crypt(3)")

    # A CA, a server certificate for 127.0.0.1 and a client certificate.
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "1", "-subj", "/CN=test-ca")
    for who, ext in (("server", "subjectAltName=IP:127.0.0.1"),
                     ("client", "extendedKeyUsage=clientAuth")):
        run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", who + ".key", "-out", who + ".csr", "-subj", "/CN=" + who)
        open(os.path.join(WORK, who + ".ext"), "w").write(ext + "\n")
        run("openssl", "x509", "-req", "-in", who + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", who + ".crt", "-days", "1", "-extfile", who + ".ext")
    open(os.path.join(WORK, "web.yml"), "w").write(
        "tls_server_config:\n  cert_file: %s/server.crt\n  key_file: %s/server.key\n"
        "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: %s/ca.crt\n"
        "basic_auth_users:\n  scraper: '%s'\n" % (WORK, WORK, WORK, hashed))

    h.spawn("node_exporter",
            ["prometheus-node-exporter", "--web.listen-address=127.0.0.1:%d" % NE,
             "--web.config.file=" + os.path.join(WORK, "web.yml"), "--no-collector.systemd"])
    h.spawn("apiserver", [sys.executable, h.FAKE_APISERVER, str(API), "tok"])
    wait(lambda: http("GET", "http://127.0.0.1:%d/_control/stats" % API), 10, "fake API server")
    wait(lambda: socket.create_connection(("127.0.0.1", NE), 1), 10, "node_exporter")

    ns = "monitoring"
    ctl("apply", {"kind": "Secret", "apiVersion": "v1", "type": "Opaque",
                  "metadata": {"name": "ne-basic", "namespace": ns},
                  "data": {"username": b64("scraper"), "password": b64(PASSWORD)}})
    ctl("apply", {"kind": "Secret", "apiVersion": "v1", "type": "kubernetes.io/tls",
                  "metadata": {"name": "ne-client", "namespace": ns},
                  "data": {"tls.crt": b64(pem("client.crt")), "tls.key": b64(pem("client.key"))}})
    ctl("apply", {"kind": "ConfigMap", "apiVersion": "v1",
                  "metadata": {"name": "ne-ca", "namespace": ns},
                  "data": {"ca.crt": pem("ca.crt")}})
    for name, app in (("ne-0", "ne"), ("ne2-0", "ne2")):
        ctl("apply", {"kind": "Pod", "apiVersion": "v1",
                      "metadata": {"name": name, "namespace": ns, "labels": {"app": app}},
                      "spec": {"nodeName": "node-a", "containers": [
                          {"name": "node-exporter", "image": "prom/node-exporter:v1.5.0",
                           "ports": [{"name": "https", "containerPort": NE,
                                      "protocol": "TCP"}]}]},
                      "status": {"phase": "Running", "podIP": "127.0.0.1",
                                 "hostIP": "127.0.0.1",
                                 "conditions": [{"type": "Ready", "status": "True"}]}})

    def monitor(name, app, basic_secret):
        return {"apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor",
                "metadata": {"name": name, "namespace": ns},
                "spec": {"selector": {"matchLabels": {"app": app}},
                         "podMetricsEndpoints": [{
                             "port": "https", "scheme": "https", "interval": "1s",
                             "basicAuth": {"username": {"name": basic_secret, "key": "username"},
                                           "password": {"name": basic_secret,
                                                        "key": "password"}},
                             "tlsConfig": {"ca": {"configMap": {"name": "ne-ca",
                                                                "key": "ca.crt"}},
                                           "cert": {"secret": {"name": "ne-client",
                                                               "key": "tls.crt"}},
                                           "keySecret": {"name": "ne-client",
                                                         "key": "tls.key"}}}]}}

    ctl("apply", monitor("ne", "ne", "ne-basic"))
    ctl("apply", monitor("ne2", "ne2", "ne-basic-later"))

    open(os.path.join(WORK, "starling.cfg"), "w").write("""plugins_dir = "%s/plugins";
state_dir = "%s/state";
server = { http_listen_addr = "127.0.0.1:%d"; };
components = (
  { type = "prometheus.operator.podmonitors"; name = "pm";
    client = { api_server = "http://127.0.0.1:%d"; bearer_token = "tok"; };
    forward_to = [ "local.file_sink.out" ]; },
  { type = "local.file_sink"; name = "out"; path = "%s/samples.txt"; flush_interval = "250ms"; }
);
""" % (BUILD, WORK, HTTP, API, WORK))
    h.spawn("starling", [os.path.join(BUILD, "starling"), "run", "--config",
                         os.path.join(WORK, "starling.cfg")])
    wait(lambda: http("GET", "http://127.0.0.1:%d/-/ready" % HTTP), 20, "starling ready")

    up1 = 'up{container="node-exporter",endpoint="https",instance="127.0.0.1:%d",' \
          'job="monitoring/ne",namespace="monitoring",pod="ne-0"} 1 ' % NE
    wait(lambda: up1 in samples(), 20, "up=1 of the TLS + client cert + basic auth target")
    wait(lambda: 'node_exporter_build_info{' in samples(), 20, "node_exporter series")
    print("ok: HTTPS with the client certificate and basic auth from Secrets/ConfigMap")

    def component():
        doc = json.loads(http("GET", "http://127.0.0.1:%d/api/v0/components" % HTTP))
        return [c for c in doc if c["id"] == "prometheus.operator.podmonitors.pm"][0]

    def skipped_metric():
        text = http("GET", "http://127.0.0.1:%d/metrics" % HTTP).decode()
        return sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines()
                   if l.startswith("starling_operator_endpoints_skipped_total{"))

    wait(lambda: skipped_metric() >= 1, 10, "the skipped endpoint counted")
    msg = wait(lambda: component().get("message") or "", 10, "a component message")
    if 'unable to get secret "ne-basic-later"' not in msg:
        fail("component message lacks the missing Secret: %r" % msg)
    print("ok: missing Secret -> endpoint skipped, counted, in the message: %s" % msg)

    # A Secret the component may not read (403): that endpoint is skipped,
    # nothing else is held up (the Secret created next is still picked up).
    ctl("apply", {**monitor("ne3", "ne", "forbidden-basic"),
                  "metadata": {"name": "ne3", "namespace": ns}})
    wait(lambda: 'forbidden' in json.dumps(component()), 15, "the 403 in the component state")
    ctl("apply", {"kind": "Secret", "apiVersion": "v1", "type": "Opaque",
                  "metadata": {"name": "ne-basic-later", "namespace": ns},
                  "data": {"username": b64("scraper"), "password": b64(PASSWORD)}})
    up2 = up1.replace('job="monitoring/ne"', 'job="monitoring/ne2"').replace('pod="ne-0"',
                                                                               'pod="ne2-0"')
    wait(lambda: up2 in samples(), 20, "the second monitor scraped once its Secret exists")
    print("ok: forbidden Secret -> its endpoint skipped; Secret created -> watched by name, "
          "endpoint back")
    ctl("delete", {"apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor",
                   "metadata": {"name": "ne3", "namespace": ns}})
    wait(lambda: component()["health"] == "healthy", 15,
         "healthy once the monitor naming the forbidden Secret is gone (its watch stopped)")
    print("ok: monitor removed -> its Secret watch stops, healthy again")

    log = open(os.path.join(WORK, "starling.log")).read()
    key = pem("client.key").splitlines()[1]
    if PASSWORD in log or key in log:
        fail("a secret value reached the log")
    cleanup()
    print("PASS")


if __name__ == "__main__":
    try:
        main()
    finally:
        cleanup()
