#!/usr/bin/env python3
"""discovery.kubernetes end to end, every role, against the fake API server
(tests/integration/operator/fake_apiserver.py) fed real object shapes.

    roles.py BUILD_DIR

The expected label sets are what Prometheus' kubernetes_sd builds for the
same objects (prometheus/prometheus discovery/kubernetes/pod.go buildPod,
service.go buildService, endpoints.go buildEndpoints, endpointslice.go
buildEndpointSlice, node.go buildNode, kubernetes.go addObjectMetaLabels /
addNodeLabels / addNamespaceLabels). Watch behaviour: ADDED / MODIFIED /
DELETED change the published set, BOOKMARKs are taken in stride, an
in-stream 410 re-lists without losing targets, garbage turns the component
unhealthy until the next good list, selectors and namespaces limit what is
listed.
"""
import copy
import json
import os
import signal
import subprocess
import sys

BUILD = os.path.abspath(sys.argv[1])
HERE = os.path.dirname(os.path.abspath(__file__))
P = "__meta_kubernetes_"


sys.path.insert(0, os.path.join(HERE, ".."))
import k8s_harness as h  # noqa: E402
from k8s_harness import cleanup, ctl, fail, http, procs, wait  # noqa: E402

API, HTTP = h.free_ports(2)
WORK = h.setup("sts-dk.", API)


def targets(comp):
    doc = json.loads(http("GET", "http://127.0.0.1:%d/api/v0/components/%s/targets" % (HTTP, comp)))
    return [t["labels"] for t in doc["targets"]]


def metric(name, comp):
    text = http("GET", "http://127.0.0.1:%d/metrics" % HTTP).decode()
    total = None
    for line in text.splitlines():
        if line.startswith(name + "{") and 'component_id="%s"' % comp in line:
            total = (total or 0) + float(line.rsplit(" ", 1)[1])
    return total


def by_addr(ts):
    return {t["__address__"]: t for t in ts}


# --- Objects, shaped as `kubectl get -o json` shows them -------------------

NAMESPACE = {"kind": "Namespace", "apiVersion": "v1",
             "metadata": {"name": "shop", "uid": "ns-uid-1",
                          "labels": {"kubernetes.io/metadata.name": "shop", "team": "payments"},
                          "annotations": {"owner": "alice@example.com"}},
             "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}

NODE = {"kind": "Node", "apiVersion": "v1",
        "metadata": {"name": "node-a", "uid": "node-uid-a",
                     "labels": {"kubernetes.io/hostname": "node-a",
                                "topology.kubernetes.io/zone": "eu-west-1a"},
                     "annotations": {"node.alpha.kubernetes.io/ttl": "0"}},
        "spec": {"providerID": "aws:///eu-west-1a/i-0abc", "podCIDR": "10.244.0.0/24"},
        "status": {"conditions": [
            {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory"},
            {"type": "Ready", "status": "True", "reason": "KubeletReady"}],
            "addresses": [{"type": "Hostname", "address": "node-a"},
                          {"type": "InternalIP", "address": "10.0.0.11"},
                          {"type": "InternalIP", "address": "10.0.0.12"},
                          {"type": "ExternalIP", "address": "54.1.2.3"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {"kubeletVersion": "v1.29.4"}}}


def pod(name, ip, labels, node="node-a", phase="Running", init_port=None):
    p = {"kind": "Pod", "apiVersion": "v1",
         "metadata": {"name": name, "namespace": "shop", "uid": "uid-" + name,
                      "labels": labels,
                      "annotations": {"prometheus.io/scrape": "true"},
                      "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                           "name": "cart-7c9d8", "uid": "rs-uid",
                                           "controller": True, "blockOwnerDeletion": True}],
                      "managedFields": [{"manager": "kube-controller-manager",
                                         "operation": "Update"}]},
         "spec": {"nodeName": node,
                  "containers": [
                      {"name": "cart", "image": "shop/cart:1.4",
                       "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"},
                                 {"name": "metrics", "containerPort": 9090,
                                  "protocol": "TCP"}],
                       "env": [{"name": "X", "value": "y"}]},
                      {"name": "log-shipper", "image": "fluent/fluent-bit:2.2"}],
                  "restartPolicy": "Always"},
         "status": {"phase": phase, "hostIP": "10.0.0.11", "podIP": ip,
                    "podIPs": [{"ip": ip}],
                    "conditions": [{"type": "Ready", "status": "True"}],
                    "containerStatuses": [
                        {"name": "cart", "containerID": "containerd://c0ffee" + name,
                         "ready": True, "restartCount": 0},
                        {"name": "log-shipper", "containerID": "containerd://beef" + name,
                         "ready": True, "restartCount": 0}]}}
    if init_port:
        p["spec"]["initContainers"] = [
            {"name": "proxy", "image": "envoy:1.30", "restartPolicy": "Always",
             "ports": [{"name": "admin", "containerPort": init_port, "protocol": "TCP"}]}]
        p["status"]["initContainerStatuses"] = [
            {"name": "proxy", "containerID": "containerd://1417" + name, "ready": True}]
    return p


POD1 = pod("cart-7c9d8-abcde", "10.244.0.5", {"app": "cart", "pod-template-hash": "7c9d8"},
           init_port=15000)
POD2 = pod("cart-7c9d8-fghij", "10.244.0.6", {"app": "cart", "pod-template-hash": "7c9d8"})
POD_OTHER = pod("search-0", "10.244.0.9", {"app": "search"})

SERVICE = {"kind": "Service", "apiVersion": "v1",
           "metadata": {"name": "cart", "namespace": "shop", "uid": "svc-uid",
                        "labels": {"app": "cart"},
                        "annotations": {"prometheus.io/port": "9090"}},
           "spec": {"type": "LoadBalancer", "clusterIP": "10.96.0.20",
                    "clusterIPs": ["10.96.0.20"], "ipFamilies": ["IPv4"],
                    "ipFamilyPolicy": "SingleStack",
                    "ports": [{"name": "http", "port": 80, "targetPort": 8080,
                               "protocol": "TCP"},
                              {"name": "metrics", "port": 9090, "targetPort": "metrics",
                               "protocol": "TCP"}],
                    "selector": {"app": "cart"}},
           "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.7"},
                                                   {"hostname": "lb.example.com"},
                                                   {"ip": "203.0.113.8"}]}}}

EXTERNAL = {"kind": "Service", "apiVersion": "v1",
            "metadata": {"name": "billing", "namespace": "shop", "uid": "svc-uid-2"},
            "spec": {"type": "ExternalName", "externalName": "billing.example.com",
                     "ports": [{"port": 443, "protocol": "TCP"}]},
            "status": {"loadBalancer": {}}}


def ref(p):
    return {"kind": "Pod", "namespace": "shop", "name": p["metadata"]["name"],
            "uid": p["metadata"]["uid"]}


ENDPOINTS = {"kind": "Endpoints", "apiVersion": "v1",
             "metadata": {"name": "cart", "namespace": "shop", "uid": "ep-uid",
                          "labels": {"app": "cart"},
                          "annotations": {"endpoints.kubernetes.io/last-change-trigger-time":
                                          "2026-11-26T10:00:00Z"}},
             "subsets": [{"addresses": [{"ip": "10.244.0.5", "nodeName": "node-a",
                                         "targetRef": ref(POD1)}],
                          "notReadyAddresses": [{"ip": "10.244.0.6", "nodeName": "node-a",
                                                 "targetRef": ref(POD2)}],
                          "ports": [{"name": "metrics", "port": 9090, "protocol": "TCP"}]}]}

SLICE = {"kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1",
         "metadata": {"name": "cart-x2k9q", "namespace": "shop", "uid": "es-uid",
                      "generateName": "cart-",
                      "labels": {"kubernetes.io/service-name": "cart",
                                 "endpointslice.kubernetes.io/managed-by":
                                 "endpointslice-controller.k8s.io"}},
         "addressType": "IPv4",
         "endpoints": [{"addresses": ["10.244.0.5"],
                        "conditions": {"ready": True, "serving": True, "terminating": False},
                        "nodeName": "node-a", "zone": "eu-west-1a", "targetRef": ref(POD1)}],
         "ports": [{"name": "metrics", "port": 9090, "protocol": "TCP",
                    "appProtocol": "http"}]}


# --- Expectations (Prometheus kubernetes_sd) --------------------------------

def pod_common(p):
    md, st = p["metadata"], p["status"]
    return {P + "namespace": "shop", P + "pod_name": md["name"], P + "pod_ip": st["podIP"],
            P + "pod_ready": "true", P + "pod_phase": st["phase"],
            P + "pod_node_name": "node-a", P + "pod_host_ip": "10.0.0.11",
            P + "pod_uid": md["uid"], P + "pod_controller_kind": "ReplicaSet",
            P + "pod_controller_name": "cart-7c9d8",
            P + "pod_label_app": md["labels"]["app"], P + "pod_labelpresent_app": "true",
            **({P + "pod_label_pod_template_hash": "7c9d8",
                P + "pod_labelpresent_pod_template_hash": "true"}
               if "pod-template-hash" in md["labels"] else {}),
            P + "pod_annotation_prometheus_io_scrape": "true",
            P + "pod_annotationpresent_prometheus_io_scrape": "true"}


def expect_pod_role(p):
    """pod.go buildPod: containers then initContainers; port-less container ->
    bare pod IP; container ID from the status."""
    base, n = pod_common(p), p["metadata"]["name"]
    ip = p["status"]["podIP"]
    out = [
        {**base, "__address__": ip + ":8080", P + "pod_container_name": "cart",
         P + "pod_container_id": "containerd://c0ffee" + n,
         P + "pod_container_image": "shop/cart:1.4", P + "pod_container_port_name": "http",
         P + "pod_container_port_number": "8080", P + "pod_container_port_protocol": "TCP",
         P + "pod_container_init": "false"},
        {**base, "__address__": ip + ":9090", P + "pod_container_name": "cart",
         P + "pod_container_id": "containerd://c0ffee" + n,
         P + "pod_container_image": "shop/cart:1.4", P + "pod_container_port_name": "metrics",
         P + "pod_container_port_number": "9090", P + "pod_container_port_protocol": "TCP",
         P + "pod_container_init": "false"},
        {**base, "__address__": ip, P + "pod_container_name": "log-shipper",
         P + "pod_container_id": "containerd://beef" + n,
         P + "pod_container_image": "fluent/fluent-bit:2.2", P + "pod_container_init": "false"},
    ]
    if "initContainers" in p["spec"]:
        out.append({**base, "__address__": ip + ":15000", P + "pod_container_name": "proxy",
                    P + "pod_container_id": "containerd://1417" + n,
                    P + "pod_container_image": "envoy:1.30",
                    P + "pod_container_port_name": "admin",
                    P + "pod_container_port_number": "15000",
                    P + "pod_container_port_protocol": "TCP",
                    P + "pod_container_init": "true"})
    return out


NODE_META = {P + "node_name": "node-a",
             P + "node_label_kubernetes_io_hostname": "node-a",
             P + "node_labelpresent_kubernetes_io_hostname": "true",
             P + "node_label_topology_kubernetes_io_zone": "eu-west-1a",
             P + "node_labelpresent_topology_kubernetes_io_zone": "true",
             P + "node_annotation_node_alpha_kubernetes_io_ttl": "0",
             P + "node_annotationpresent_node_alpha_kubernetes_io_ttl": "true"}

NS_META = {P + "namespace_label_kubernetes_io_metadata_name": "shop",
           P + "namespace_labelpresent_kubernetes_io_metadata_name": "true",
           P + "namespace_label_team": "payments",
           P + "namespace_labelpresent_team": "true",
           P + "namespace_annotation_owner": "alice@example.com",
           P + "namespace_annotationpresent_owner": "true"}

SVC_META = {P + "namespace": "shop", P + "service_name": "cart",
            P + "service_label_app": "cart", P + "service_labelpresent_app": "true",
            P + "service_annotation_prometheus_io_port": "9090",
            P + "service_annotationpresent_prometheus_io_port": "true"}


def expect_service_role():
    """service.go buildService: <name>.<ns>.svc:<port>; LoadBalancer ingress
    IPs comma-joined; ExternalName instead of the cluster IP."""
    common = {**SVC_META, P + "service_type": "LoadBalancer",
              P + "service_cluster_ip": "10.96.0.20",
              P + "service_loadbalancer_ip": "203.0.113.7,203.0.113.8",
              P + "service_port_protocol": "TCP"}
    return [
        {**common, "__address__": "cart.shop.svc:80", P + "service_port_name": "http",
         P + "service_port_number": "80"},
        {**common, "__address__": "cart.shop.svc:9090", P + "service_port_name": "metrics",
         P + "service_port_number": "9090"},
        {P + "namespace": "shop", P + "service_name": "billing",
         "__address__": "billing.shop.svc:443", P + "service_port_number": "443",
         P + "service_port_protocol": "TCP", P + "service_type": "ExternalName",
         P + "service_external_name": "billing.example.com"},
    ]


def expect_endpoints_role():
    """endpoints.go buildEndpoints: per port x address (ready / not ready),
    pod labels and the container whose port matches (init containers
    included), then the pods' other container ports as extra targets."""
    grp = {**SVC_META, P + "endpoints_name": "cart",
           P + "endpoints_label_app": "cart", P + "endpoints_labelpresent_app": "true",
           P + "endpoints_annotation_endpoints_kubernetes_io_last_change_trigger_time":
           "2026-11-26T10:00:00Z",
           P + "endpoints_annotationpresent_endpoints_kubernetes_io_last_change_trigger_time":
           "true"}
    out = []
    for p, ready in ((POD1, "true"), (POD2, "false")):
        ip = p["status"]["podIP"]
        out.append({**grp, **pod_common(p), "__address__": ip + ":9090",
                    P + "endpoint_port_name": "metrics", P + "endpoint_port_protocol": "TCP",
                    P + "endpoint_ready": ready, P + "endpoint_node_name": "node-a",
                    P + "endpoint_address_target_kind": "Pod",
                    P + "endpoint_address_target_name": p["metadata"]["name"],
                    P + "pod_container_name": "cart",
                    P + "pod_container_image": "shop/cart:1.4",
                    P + "pod_container_port_name": "metrics",
                    P + "pod_container_port_number": "9090",
                    P + "pod_container_port_protocol": "TCP",
                    P + "pod_container_init": "false"})
        extra = [("cart", "shop/cart:1.4", "http", 8080, "false")]
        if "initContainers" in p["spec"]:
            extra.append(("proxy", "envoy:1.30", "admin", 15000, "true"))
        for c, img, pn, port, init in extra:
            out.append({**grp, **pod_common(p), "__address__": "%s:%d" % (ip, port),
                        P + "pod_container_name": c, P + "pod_container_image": img,
                        P + "pod_container_port_name": pn,
                        P + "pod_container_port_number": str(port),
                        P + "pod_container_port_protocol": "TCP",
                        P + "pod_container_init": init})
    return out


def expect_endpointslice_role():
    """endpointslice.go buildEndpointSlice."""
    grp = {**SVC_META, P + "endpointslice_name": "cart-x2k9q",
           P + "endpointslice_address_type": "IPv4",
           P + "endpointslice_label_kubernetes_io_service_name": "cart",
           P + "endpointslice_labelpresent_kubernetes_io_service_name": "true",
           P + "endpointslice_label_endpointslice_kubernetes_io_managed_by":
           "endpointslice-controller.k8s.io",
           P + "endpointslice_labelpresent_endpointslice_kubernetes_io_managed_by": "true"}
    base = {**grp, **pod_common(POD1)}
    return [
        {**base, "__address__": "10.244.0.5:9090",
         P + "endpointslice_port_name": "metrics", P + "endpointslice_port_protocol": "TCP",
         P + "endpointslice_port": "9090", P + "endpointslice_port_app_protocol": "http",
         P + "endpointslice_endpoint_conditions_ready": "true",
         P + "endpointslice_endpoint_conditions_serving": "true",
         P + "endpointslice_endpoint_conditions_terminating": "false",
         P + "endpointslice_endpoint_node_name": "node-a",
         P + "endpointslice_endpoint_zone": "eu-west-1a",
         P + "endpointslice_address_target_kind": "Pod",
         P + "endpointslice_address_target_name": POD1["metadata"]["name"],
         P + "pod_container_name": "cart", P + "pod_container_image": "shop/cart:1.4",
         P + "pod_container_port_name": "metrics", P + "pod_container_port_number": "9090",
         P + "pod_container_port_protocol": "TCP", P + "pod_container_init": "false"},
        {**base, "__address__": "10.244.0.5:8080", P + "pod_container_name": "cart",
         P + "pod_container_image": "shop/cart:1.4", P + "pod_container_port_name": "http",
         P + "pod_container_port_number": "8080", P + "pod_container_port_protocol": "TCP",
         P + "pod_container_init": "false"},
        {**base, "__address__": "10.244.0.5:15000", P + "pod_container_name": "proxy",
         P + "pod_container_image": "envoy:1.30", P + "pod_container_port_name": "admin",
         P + "pod_container_port_number": "15000", P + "pod_container_port_protocol": "TCP",
         P + "pod_container_init": "true"},
    ]


def expect_node_role():
    """node.go buildNode: InternalIP first, kubelet port, instance = name,
    first address of each type, conditions lowercased."""
    return [{"__address__": "10.0.0.11:10250", "instance": "node-a",
             P + "node_provider_id": "aws:///eu-west-1a/i-0abc",
             P + "node_condition_memorypressure": "false",
             P + "node_condition_ready": "true",
             P + "node_address_Hostname": "node-a",
             P + "node_address_InternalIP": "10.0.0.11",
             P + "node_address_ExternalIP": "54.1.2.3", **NODE_META}]


def same_sets(got, want, what):
    key = lambda t: json.dumps(t, sort_keys=True)
    g, w = sorted(map(key, got)), sorted(map(key, want))
    if g != w:
        extra = set(g) - set(w)
        missing = set(w) - set(g)
        fail("%s: target sets differ\n  unexpected: %s\n  missing: %s" % (what, extra, missing))


# --- Run ---------------------------------------------------------------------

def main():
    h.spawn("apiserver", [sys.executable, h.FAKE_APISERVER, str(API), "tok", "2"])
    wait(lambda: http("GET", "http://127.0.0.1:%d/_control/stats" % API), 10, "fake API server")
    for o in (NAMESPACE, NODE, POD1, POD2, POD_OTHER, SERVICE, EXTERNAL, ENDPOINTS, SLICE,
              {**NAMESPACE, "metadata": {"name": "other"}}):
        ctl("apply", o)
    ctl("apply", {**pod("elsewhere-0", "10.244.1.1", {"app": "cart"}),
                  "metadata": {**POD1["metadata"], "name": "elsewhere-0", "namespace": "other",
                               "uid": "uid-elsewhere"}})

    client = 'api_server = "http://127.0.0.1:%d"; bearer_token = "tok";' % API
    comps = {
        "pods": 'role = "pod"; namespaces = { names = [ "shop" ]; };',
        "meta": ('role = "pod"; namespaces = { names = [ "shop" ]; }; '
                 'attach_metadata = { node = true; namespace = true; }; '
                 'selectors = ( { role = "pod"; label = "app=cart"; '
                 'field = "metadata.name!=cart-7c9d8-fghij"; } );'),
        "svc": 'role = "service";',
        "eps": 'role = "endpoints"; namespaces = { names = [ "shop" ]; };',
        "slices": 'role = "endpointslice";',
        "nodes": 'role = "node";',
    }
    cfg = ['plugins_dir = "%s/plugins";' % BUILD, 'state_dir = "%s/state";' % WORK,
           'server = { http_listen_addr = "127.0.0.1:%d"; };' % HTTP, "components = ("]
    cfg.append(",\n".join('  { type = "discovery.kubernetes"; name = "%s"; %s %s }'
                          % (n, body, client) for n, body in comps.items()))
    cfg.append(");")
    open(os.path.join(WORK, "starling.cfg"), "w").write("\n".join(cfg) + "\n")
    h.spawn("starling", [os.path.join(BUILD, "starling"), "run", "--config",
                         os.path.join(WORK, "starling.cfg")])
    wait(lambda: http("GET", "http://127.0.0.1:%d/-/ready" % HTTP), 20, "starling ready")
    c = lambda n: "discovery.kubernetes." + n

    # Every role, exact label sets.
    wait(lambda: len(targets(c("pods"))) == 10, 15, "pod role targets")
    same_sets(targets(c("pods")),
              expect_pod_role(POD1) + expect_pod_role(POD2) + expect_pod_role(POD_OTHER),
              "pod role")
    wait(lambda: len(targets(c("meta"))) == 4, 15, "pod role with selectors")
    same_sets(targets(c("meta")),
              [{**t, **NODE_META, **NS_META} for t in expect_pod_role(POD1)],
              "pod role, attach_metadata + selectors")
    wait(lambda: len(targets(c("svc"))) == 3, 15, "service role targets")
    same_sets(targets(c("svc")), expect_service_role(), "service role")
    wait(lambda: len(targets(c("eps"))) == 5, 15, "endpoints role targets")
    same_sets(targets(c("eps")), expect_endpoints_role(), "endpoints role")
    wait(lambda: len(targets(c("slices"))) == 3, 15, "endpointslice role targets")
    same_sets(targets(c("slices")), expect_endpointslice_role(), "endpointslice role")
    wait(lambda: len(targets(c("nodes"))) == 1, 15, "node role targets")
    same_sets(targets(c("nodes")), expect_node_role(), "node role")
    print("ok: every role gives Prometheus' label sets")

    # Watch: ADDED, MODIFIED, DELETED (published at most every 5 s).
    lists0 = metric("starling_sd_kubernetes_lists", c("pods"))
    pod3 = pod("cart-7c9d8-klmno", "10.244.0.7", {"app": "cart"})
    ctl("apply", pod3)
    wait(lambda: "10.244.0.7:9090" in by_addr(targets(c("pods"))), 15, "ADDED pod")
    wait(lambda: "10.244.0.7:9090" in by_addr(targets(c("meta"))), 15, "ADDED pod (selector)")
    mod = copy.deepcopy(pod3)
    mod["metadata"]["labels"]["app"] = "cart-v2"
    ctl("apply", mod)
    wait(lambda: by_addr(targets(c("pods"))).get("10.244.0.7:9090", {})
         .get(P + "pod_label_app") == "cart-v2", 15, "MODIFIED pod")
    # no longer matches app=cart: the label-selected watch sees it DELETED
    wait(lambda: "10.244.0.7:9090" not in by_addr(targets(c("meta"))), 15,
         "pod leaving the label selector")
    ctl("delete", mod)
    wait(lambda: "10.244.0.7:9090" not in by_addr(targets(c("pods"))), 15, "DELETED pod")
    print("ok: ADDED / MODIFIED / DELETED")

    # BOOKMARKs arrive on idle watches (the fake server sends one per
    # second, carrying the server's latest resourceVersion). Another kind's
    # change moves that past the last pod event; a watch the server then
    # ends is resumed from the bookmark's resourceVersion, not the last
    # pod event's (client-go reflector semantics).
    node_rv = json.loads(http("POST", "http://127.0.0.1:%d/_control/apply" % API,
                                  json.dumps({**NODE, "metadata": {**NODE["metadata"],
                                                                  "name": "node-b"}}).encode()))["rv"]

    def stats():
        return json.loads(http("GET", "http://127.0.0.1:%d/_control/stats" % API))

    def pod_watch_rvs():
        return stats().get("watch_rv", {}).get("pods", [])

    def bookmark_sent(after):
        st = stats()
        return (st.get("bookmarks", {}).get("pods", 0) > after and
                st.get("bookmark_rv", {}).get("pods", 0) >= node_rv)

    def resumed_from_bookmark():
        # A bookmark past node_rv went out on a pod watch (after 1 s idle);
        # then end the watches and see where the pod watch resumes. A
        # bookmark sent is not yet one taken in: until it was, the watch
        # resumes from the last pod event's resourceVersion, and this is
        # tried again. (A fixed 2.5 s for the bookmark to arrive before,
        # which a loaded machine may not give.)
        b = stats().get("bookmarks", {}).get("pods", 0)
        wait(lambda: bookmark_sent(b), 15, "a pod BOOKMARK past the node change")
        n = len(pod_watch_rvs())
        ctl("close")
        wait(lambda: len(pod_watch_rvs()) > n, 15, "the pod watch resumed")
        rvs = [int(r) for r in pod_watch_rvs() if r]
        return rvs and rvs[-1] >= node_rv and rvs
    rvs = wait(resumed_from_bookmark, 60, "a pod watch resumed from the bookmark's resourceVersion")
    if len(targets(c("pods"))) != 10:
        fail("targets changed across bookmarks")
    print("ok: BOOKMARK moves the resourceVersion (re-watch from %d, node change at %d)"
          % (rvs[-1], node_rv))

    # In-stream 410: re-list, nothing lost.
    ctl("expire")
    wait(lambda: metric("starling_sd_kubernetes_lists", c("pods")) > lists0, 15, "re-list after 410")
    ctl("apply", pod("cart-7c9d8-pqrst", "10.244.0.8", {"app": "cart"}))
    wait(lambda: "10.244.0.8:9090" in by_addr(targets(c("pods"))), 15, "ADDED after re-list")
    if len(targets(c("pods"))) != 13:
        fail("expected 13 pod targets after the re-list, got %d" % len(targets(c("pods"))))
    print("ok: 410 re-list keeps the targets")

    # Garbage in the stream: counted, unhealthy, then healthy again after re-list.
    f0 = metric("prometheus_sd_kubernetes_failures_total", c("pods")) or 0
    ctl("garbage")
    wait(lambda: (metric("prometheus_sd_kubernetes_failures_total", c("pods")) or 0) > f0, 15,
         "failure counted")
    wait(lambda: metric("starling_component_healthy", c("pods")) == 1, 20, "healthy again")
    if len(targets(c("pods"))) != 13:
        fail("targets lost after garbage")
    print("ok: garbage counted, recovered")

    # A clean stop.
    procs[1].send_signal(signal.SIGTERM)
    try:
        rc = procs[1].wait(15)
    except subprocess.TimeoutExpired:
        fail("starling did not stop on SIGTERM")
    if rc != 0:
        fail("starling exited with %d" % rc)
    cleanup()
    print("PASS")


if __name__ == "__main__":
    try:
        main()
    finally:
        cleanup()
