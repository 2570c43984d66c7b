/*
 * Prometheus kubernetes_sd meta labels (see starling/k8s.h), role by role as
 * Prometheus builds them (discovery/kubernetes/{pod,service,endpoints,
 * endpointslice,node,kubernetes}.go): group labels first, then each
 * target's own labels on top (a target label wins, and an empty value
 * removes the label, as model.LabelSet merging and labels.Builder do).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <starling/k8s.h>

#define P "__meta_kubernetes_"

struct seen_port {
	const cJSON *pod;
	int port; /* -1: a port-less endpoint (endpointslice) */
};

static const char *jstr(const cJSON *o, const char *key)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
}

static const cJSON *jobj(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsObject(v) ? v : NULL;
}

static const cJSON *jarr(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsArray(v) ? v : NULL;
}

/* Tri-state bool: -1 absent. */
static int jbool(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsBool(v) ? cJSON_IsTrue(v) : -1;
}

/* A port number (1..65535 in a valid object), or -1. */
static int jport(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 65535)
		return -1;
	return v->valueint;
}

static const char *meta(const cJSON *o, const char *key)
{
	return jstr(jobj(o, "metadata"), key);
}

void starling_k8s_sanitize(const char *in, char *out, size_t cap)
{
	size_t i = 0;

	if (!cap)
		return;
	for (; in && in[i] && i + 1 < cap; i++) {
		char c = in[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '_';

		out[i] = ok ? c : '_';
	}
	out[i] = '\0';
}

int starling_k8s_role_parse(const char *s, enum starling_k8s_role *out)
{
	static const char *const names[] = {"pod", "service", "endpoints", "endpointslice", "node"};

	for (size_t i = 0; s && i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = (enum starling_k8s_role)i;
			return 0;
		}
	}
	return -EINVAL;
}

void starling_k8s_meta_init(struct starling_k8s_meta *m)
{
	memset(m, 0, sizeof(*m));
	starling_lset_init(&m->group);
	starling_lset_init(&m->target);
}

void starling_k8s_meta_free(struct starling_k8s_meta *m)
{
	starling_lset_free(&m->group);
	starling_lset_free(&m->target);
	free(m->seen);
	m->seen = NULL;
	m->n_seen = m->seen_cap = 0;
}

/* ------------------------------------------------------------------------ */
/* Label helpers. Each returns 0 or -ENOMEM/-EINVAL.                          */

static int set(struct starling_lset *ls, const char *name, const char *value)
{
	return starling_lset_set_str(ls, name, value ? value : "");
}

/* prefix + sanitized(name) = value */
static int set_sanitized(struct starling_k8s_meta *m, struct starling_lset *ls, const char *prefix,
			 const char *name, const char *value)
{
	size_t l = (size_t)snprintf(m->buf, sizeof(m->buf), "%s", prefix);

	if (l >= sizeof(m->buf))
		return -EINVAL;
	starling_k8s_sanitize(name, m->buf + l, sizeof(m->buf) - l);
	return set(ls, m->buf, value);
}

static int set_int(struct starling_lset *ls, const char *name, int v)
{
	char b[16];

	snprintf(b, sizeof(b), "%d", v);
	return set(ls, name, b);
}

/* kubernetes.go addObjectAnnotationsAndLabels: <res>_label_<n>,
 * _labelpresent_<n>, _annotation_<n>, _annotationpresent_<n>. */
static int annotations_and_labels(struct starling_k8s_meta *m, struct starling_lset *ls,
				  const cJSON *obj, const char *res)
{
	const cJSON *md = jobj(obj, "metadata"), *e;
	char pfx[96];
	int rc = 0;

	cJSON_ArrayForEach(e, jobj(md, "labels"))
	{
		if (!cJSON_IsString(e))
			continue;
		snprintf(pfx, sizeof(pfx), P "%s_label_", res);
		rc |= set_sanitized(m, ls, pfx, e->string, e->valuestring);
		snprintf(pfx, sizeof(pfx), P "%s_labelpresent_", res);
		rc |= set_sanitized(m, ls, pfx, e->string, "true");
	}
	cJSON_ArrayForEach(e, jobj(md, "annotations"))
	{
		if (!cJSON_IsString(e))
			continue;
		snprintf(pfx, sizeof(pfx), P "%s_annotation_", res);
		rc |= set_sanitized(m, ls, pfx, e->string, e->valuestring);
		snprintf(pfx, sizeof(pfx), P "%s_annotationpresent_", res);
		rc |= set_sanitized(m, ls, pfx, e->string, "true");
	}
	return rc;
}

/* kubernetes.go addObjectMetaLabels: <role>_name plus the above. */
static int object_meta(struct starling_k8s_meta *m, struct starling_lset *ls, const cJSON *obj,
		       const char *role)
{
	char n[64];

	snprintf(n, sizeof(n), P "%s_name", role);
	return set(ls, n, meta(obj, "name")) | annotations_and_labels(m, ls, obj, role);
}

/* endpoints.go addNodeLabels: node_name and the node's labels/annotations,
 * when the node is known. */
static int node_labels(struct starling_k8s_meta *m, struct starling_lset *ls, const char *node)
{
	const cJSON *n = node && m->nodes ? starling_k8s_store_get(m->nodes, NULL, node) : NULL;

	return n ? object_meta(m, ls, n, "node") : 0;
}

/* kubernetes.go addNamespaceLabels (the name itself is not repeated). */
static int namespace_labels(struct starling_k8s_meta *m, struct starling_lset *ls, const char *ns)
{
	const cJSON *n;

	if (!m->attach_namespace || !m->namespaces || !ns)
		return 0;
	n = starling_k8s_store_get(m->namespaces, NULL, ns);
	return n ? annotations_and_labels(m, ls, n, "namespace") : 0;
}

static const char *pod_ready(const cJSON *pod, char *buf, size_t cap)
{
	const cJSON *c;

	cJSON_ArrayForEach(c, jarr(jobj(pod, "status"), "conditions"))
	{
		const char *t = jstr(c, "type"), *s = jstr(c, "status");

		if (t && strcmp(t, "Ready") == 0) {
			size_t i = 0;

			for (; s && s[i] && i + 1 < cap; i++)
				buf[i] =
				    (char)((s[i] >= 'A' && s[i] <= 'Z') ? s[i] - 'A' + 'a' : s[i]);
			buf[i] = 0;
			return buf;
		}
	}
	return "unknown";
}

/* pod.go podLabels. */
static int pod_labels(struct starling_k8s_meta *m, struct starling_lset *ls, const cJSON *pod)
{
	const cJSON *md = jobj(pod, "metadata"), *st = jobj(pod, "status"),
		    *spec = jobj(pod, "spec"), *o;
	char ready[32];
	int rc = 0;

	rc |= set(ls, P "pod_ip", jstr(st, "podIP"));
	rc |= set(ls, P "pod_ready", pod_ready(pod, ready, sizeof(ready)));
	rc |= set(ls, P "pod_phase", jstr(st, "phase"));
	rc |= set(ls, P "pod_node_name", jstr(spec, "nodeName"));
	rc |= set(ls, P "pod_host_ip", jstr(st, "hostIP"));
	rc |= set(ls, P "pod_uid", jstr(md, "uid"));
	rc |= object_meta(m, ls, pod, "pod");
	cJSON_ArrayForEach(o, jarr(md, "ownerReferences"))
	{
		const char *k, *n;

		if (jbool(o, "controller") != 1)
			continue;
		k = jstr(o, "kind");
		n = jstr(o, "name");
		if (k && *k)
			rc |= set(ls, P "pod_controller_kind", k);
		if (n && *n)
			rc |= set(ls, P "pod_controller_name", n);
		break;
	}
	return rc;
}

/* pod.go findPodContainerID. */
static const char *container_id(const cJSON *pod, const char *name, bool init)
{
	const cJSON *s;

	cJSON_ArrayForEach(
	    s, jarr(jobj(pod, "status"), init ? "initContainerStatuses" : "containerStatuses"))
	{
		const char *n = jstr(s, "name");

		if (n && name && strcmp(n, name) == 0)
			return jstr(s, "containerID");
	}
	return NULL;
}

/* The API server defaults a port's protocol to TCP. */
static const char *proto(const cJSON *port)
{
	const char *p = jstr(port, "protocol");

	return p ? p : "TCP";
}

static void join_host_port(char *out, size_t cap, const char *host, int port)
{
	if (port < 0)
		snprintf(out, cap, "%s", host);
	else if (strchr(host, ':'))
		snprintf(out, cap, "[%s]:%d", host, port);
	else
		snprintf(out, cap, "%s:%d", host, port);
}

/* The i-th container of spec.containers followed by spec.initContainers. */
static const cJSON *nth_container(const cJSON *pod, int i, bool *init)
{
	const cJSON *spec = jobj(pod, "spec");
	int nc = cJSON_GetArraySize(jarr(spec, "containers"));

	*init = i >= nc;
	return *init ? cJSON_GetArrayItem(jarr(spec, "initContainers"), i - nc)
		     : cJSON_GetArrayItem(jarr(spec, "containers"), i);
}

static int n_containers(const cJSON *pod)
{
	const cJSON *spec = jobj(pod, "spec");

	return cJSON_GetArraySize(jarr(spec, "containers")) +
	       cJSON_GetArraySize(jarr(spec, "initContainers"));
}

/* ------------------------------------------------------------------------ */
/* Roles.                                                                    */

static int pod_role(struct starling_k8s_meta *m, const cJSON *pod, starling_k8s_target_fn fn,
		    void *arg)
{
	const char *ip = jstr(jobj(pod, "status"), "podIP");
	const char *ns = meta(pod, "namespace");
	const char *node = jstr(jobj(pod, "spec"), "nodeName");
	char addr[300];
	int rc = 0;

	/* PodIP can be empty when a pod is starting or has been evicted. */
	if (!ip || !*ip)
		return 0;
	/* With node metadata, pods on nodes the node selectors filtered out
	 * are left out too. */
	if (m->attach_node && (!m->nodes || !node || !starling_k8s_store_get(m->nodes, NULL, node)))
		return 0;
	starling_lset_clear(&m->group);
	rc |= pod_labels(m, &m->group, pod);
	rc |= set(&m->group, P "namespace", ns);
	if (m->attach_node)
		rc |= node_labels(m, &m->group, node);
	rc |= namespace_labels(m, &m->group, ns);
	if (rc)
		return rc;
	for (int i = 0, n = n_containers(pod); i < n; i++) {
		bool init;
		const cJSON *c = nth_container(pod, i, &init), *ports = jarr(c, "ports"), *p;
		const char *name = jstr(c, "name");
		const char *cid = container_id(pod, name, init);

		if (!cJSON_GetArraySize(ports)) {
			/* No ports: one target with the bare pod IP. */
			if (starling_lset_copy(&m->target, &m->group))
				return -ENOMEM;
			rc = set(&m->target, "__address__", ip);
			rc |= set(&m->target, P "pod_container_name", name);
			rc |= set(&m->target, P "pod_container_id", cid);
			rc |= set(&m->target, P "pod_container_image", jstr(c, "image"));
			rc |= set(&m->target, P "pod_container_init", init ? "true" : "false");
			if (rc || (rc = fn(arg, &m->target)))
				return rc;
			continue;
		}
		cJSON_ArrayForEach(p, ports)
		{
			int num = jport(p, "containerPort");

			if (num < 0)
				continue;
			join_host_port(addr, sizeof(addr), ip, num);
			if (starling_lset_copy(&m->target, &m->group))
				return -ENOMEM;
			rc = set(&m->target, "__address__", addr);
			rc |= set(&m->target, P "pod_container_name", name);
			rc |= set(&m->target, P "pod_container_id", cid);
			rc |= set(&m->target, P "pod_container_image", jstr(c, "image"));
			rc |= set_int(&m->target, P "pod_container_port_number", num);
			rc |= set(&m->target, P "pod_container_port_name", jstr(p, "name"));
			rc |= set(&m->target, P "pod_container_port_protocol", proto(p));
			rc |= set(&m->target, P "pod_container_init", init ? "true" : "false");
			if (rc || (rc = fn(arg, &m->target)))
				return rc;
		}
	}
	return 0;
}

/* service.go serviceLabels. */
static int service_labels(struct starling_k8s_meta *m, struct starling_lset *ls, const cJSON *svc)
{
	return set(ls, P "namespace", meta(svc, "namespace")) | object_meta(m, ls, svc, "service");
}

static int service_role(struct starling_k8s_meta *m, const cJSON *svc, starling_k8s_target_fn fn,
			void *arg)
{
	const cJSON *spec = jobj(svc, "spec"), *p, *ing;
	const char *type = jstr(spec, "type"), *name = meta(svc, "name"),
		   *ns = meta(svc, "namespace");
	char host[600], addr[640], lb[1024];
	int rc;

	starling_lset_clear(&m->group);
	rc = service_labels(m, &m->group, svc) | namespace_labels(m, &m->group, ns);
	if (rc)
		return rc;
	snprintf(host, sizeof(host), "%s.%s.svc", name ? name : "", ns ? ns : "");
	/* LoadBalancer addresses: status ingress IPs, comma-joined, else the
	 * deprecated spec.loadBalancerIP (service.go loadBalancerIPs). */
	lb[0] = 0;
	cJSON_ArrayForEach(ing, jarr(jobj(jobj(svc, "status"), "loadBalancer"), "ingress"))
	{
		const char *ip = jstr(ing, "ip");
		size_t l = strlen(lb);

		if (ip && *ip)
			snprintf(lb + l, sizeof(lb) - l, "%s%s", l ? "," : "", ip);
	}
	if (!lb[0] && jstr(spec, "loadBalancerIP"))
		snprintf(lb, sizeof(lb), "%s", jstr(spec, "loadBalancerIP"));
	cJSON_ArrayForEach(p, jarr(spec, "ports"))
	{
		int num = jport(p, "port");

		if (num < 0)
			continue;
		join_host_port(addr, sizeof(addr), host, num);
		if (starling_lset_copy(&m->target, &m->group))
			return -ENOMEM;
		rc = set(&m->target, "__address__", addr);
		rc |= set(&m->target, P "service_port_name", jstr(p, "name"));
		rc |= set_int(&m->target, P "service_port_number", num);
		rc |= set(&m->target, P "service_port_protocol", proto(p));
		rc |= set(&m->target, P "service_type", type);
		if (type && strcmp(type, "ExternalName") == 0)
			rc |=
			    set(&m->target, P "service_external_name", jstr(spec, "externalName"));
		else
			rc |= set(&m->target, P "service_cluster_ip", jstr(spec, "clusterIP"));
		if (type && strcmp(type, "LoadBalancer") == 0)
			rc |= set(&m->target, P "service_loadbalancer_ip", lb);
		if (rc || (rc = fn(arg, &m->target)))
			return rc;
	}
	return 0;
}

static int seen_add(struct starling_k8s_meta *m, const cJSON *pod, int port)
{
	struct seen_port *v = m->seen;

	if (m->n_seen == m->seen_cap) {
		size_t cap = m->seen_cap ? m->seen_cap * 2 : 16;

		v = realloc(m->seen, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		m->seen = v;
		m->seen_cap = cap;
	}
	v[m->n_seen].pod = pod;
	v[m->n_seen].port = port;
	m->n_seen++;
	return 0;
}

/* The backing pod of an endpoint's targetRef, if it is a known Pod. */
static const cJSON *ref_pod(struct starling_k8s_meta *m, const cJSON *ref, const char *ns)
{
	const char *kind = jstr(ref, "kind"), *name = jstr(ref, "name"),
		   *rns = jstr(ref, "namespace");

	if (!m->pods || !kind || !name || strcmp(kind, "Pod") != 0)
		return NULL;
	return starling_k8s_store_get(m->pods, rns && *rns ? rns : ns, name);
}

/* Pod labels plus, for the container (init containers included) whose
 * containerPort equals the endpoint's port, its labels; the protocol label
 * is the endpoint port's for endpoints, the container port's for slices. */
static int endpoint_pod(struct starling_k8s_meta *m, const cJSON *pod, int port,
			const char *ep_proto)
{
	int rc = pod_labels(m, &m->target, pod);

	for (int i = 0, n = n_containers(pod); i < n && port >= 0; i++) {
		bool init;
		const cJSON *c = nth_container(pod, i, &init), *cp;

		cJSON_ArrayForEach(cp, jarr(c, "ports"))
		{
			if (jport(cp, "containerPort") != port)
				continue;
			rc |= set(&m->target, P "pod_container_name", jstr(c, "name"));
			rc |= set(&m->target, P "pod_container_image", jstr(c, "image"));
			rc |= set(&m->target, P "pod_container_port_name", jstr(cp, "name"));
			rc |= set_int(&m->target, P "pod_container_port_number", port);
			rc |= set(&m->target, P "pod_container_port_protocol",
				  ep_proto ? ep_proto : proto(cp));
			rc |= set(&m->target, P "pod_container_init", init ? "true" : "false");
			return rc | seen_add(m, pod, port);
		}
	}
	return rc | seen_add(m, pod, port);
}

/* The container ports of the seen pods that no endpoint covered become
 * targets of their own (endpoints.go / endpointslice.go, last loop). */
static int uncovered_ports(struct starling_k8s_meta *m, starling_k8s_target_fn fn, void *arg)
{
	const struct seen_port *s = m->seen;
	char addr[300];
	int rc;

	for (size_t k = 0; k < m->n_seen; k++) {
		const cJSON *pod = s[k].pod;
		const char *ip = jstr(jobj(pod, "status"), "podIP");
		bool first = true;

		for (size_t j = 0; j < k && first; j++)
			first = s[j].pod != pod;
		if (!first || !ip || !*ip)
			continue;
		for (int i = 0, n = n_containers(pod); i < n; i++) {
			bool init;
			const cJSON *c = nth_container(pod, i, &init), *cp;

			cJSON_ArrayForEach(cp, jarr(c, "ports"))
			{
				int num = jport(cp, "containerPort");
				bool covered = false;

				for (size_t j = k; j < m->n_seen && !covered; j++)
					covered = s[j].pod == pod && s[j].port == num;
				if (covered || num < 0)
					continue;
				join_host_port(addr, sizeof(addr), ip, num);
				if (starling_lset_copy(&m->target, &m->group))
					return -ENOMEM;
				rc = set(&m->target, "__address__", addr);
				rc |= set(&m->target, P "pod_container_name", jstr(c, "name"));
				rc |= set(&m->target, P "pod_container_image", jstr(c, "image"));
				rc |=
				    set(&m->target, P "pod_container_port_name", jstr(cp, "name"));
				rc |= set_int(&m->target, P "pod_container_port_number", num);
				rc |= set(&m->target, P "pod_container_port_protocol", proto(cp));
				rc |= set(&m->target, P "pod_container_init",
					  init ? "true" : "false");
				rc |= pod_labels(m, &m->target, pod);
				if (rc || (rc = fn(arg, &m->target)))
					return rc;
			}
		}
	}
	return 0;
}

static int endpoints_role(struct starling_k8s_meta *m, const cJSON *eps, starling_k8s_target_fn fn,
			  void *arg)
{
	static const char *const kinds[2] = {"addresses", "notReadyAddresses"};
	const char *ns = meta(eps, "namespace"), *name = meta(eps, "name");
	const cJSON *svc =
	    m->services && name ? starling_k8s_store_get(m->services, ns, name) : NULL;
	const cJSON *sub;
	char addr[300];
	int rc = 0;

	m->n_seen = 0;
	starling_lset_clear(&m->group);
	rc |= set(&m->group, P "namespace", ns);
	if (svc)
		rc |= service_labels(m, &m->group, svc);
	rc |= object_meta(m, &m->group, eps, "endpoints");
	rc |= namespace_labels(m, &m->group, ns);
	if (rc)
		return rc;
	cJSON_ArrayForEach(sub, jarr(eps, "subsets"))
	{
		const cJSON *port;

		cJSON_ArrayForEach(port, jarr(sub, "ports"))
		{
			int num = jport(port, "port");

			if (num < 0)
				continue;
			for (int k = 0; k < 2; k++) {
				const cJSON *a;

				cJSON_ArrayForEach(a, jarr(sub, kinds[k]))
				{
					const char *ip = jstr(a, "ip"), *node = jstr(a, "nodeName");
					const cJSON *ref = jobj(a, "targetRef"), *pod;
					const char *rkind = jstr(ref, "kind");

					if (!ip)
						continue;
					join_host_port(addr, sizeof(addr), ip, num);
					if (starling_lset_copy(&m->target, &m->group))
						return -ENOMEM;
					rc = set(&m->target, "__address__", addr);
					rc |= set(&m->target, P "endpoint_port_name",
						  jstr(port, "name"));
					rc |= set(&m->target, P "endpoint_port_protocol",
						  proto(port));
					rc |= set(&m->target, P "endpoint_ready",
						  k == 0 ? "true" : "false");
					if (ref) {
						rc |= set(&m->target,
							  P "endpoint_address_target_kind", rkind);
						rc |= set(&m->target,
							  P "endpoint_address_target_name",
							  jstr(ref, "name"));
					}
					if (node)
						rc |= set(&m->target, P "endpoint_node_name", node);
					if (jstr(a, "hostname"))
						rc |= set(&m->target, P "endpoint_hostname",
							  jstr(a, "hostname"));
					if (m->attach_node) {
						if (node)
							rc |= node_labels(m, &m->target, node);
						else if (rkind && strcmp(rkind, "Node") == 0)
							rc |= node_labels(m, &m->target,
									  jstr(ref, "name"));
					}
					pod = ref_pod(m, ref, ns);
					if (pod)
						rc |= endpoint_pod(m, pod, num, proto(port));
					if (rc || (rc = fn(arg, &m->target)))
						return rc;
				}
			}
		}
	}
	return uncovered_ports(m, fn, arg);
}

/* endpointslice.go nonPrimaryIPFamilySlice. */
static bool non_primary_family(const cJSON *svc, const cJSON *es)
{
	const cJSON *spec = jobj(svc, "spec");
	const char *policy = jstr(spec, "ipFamilyPolicy"), *at = jstr(es, "addressType");
	const cJSON *fam = cJSON_GetArrayItem(jarr(spec, "ipFamilies"), 0);

	if (!svc || !policy ||
	    (strcmp(policy, "PreferDualStack") && strcmp(policy, "RequireDualStack")) ||
	    !cJSON_IsString(fam))
		return false;
	return strcmp(at ? at : "", fam->valuestring) != 0;
}

static int endpointslice_target(struct starling_k8s_meta *m, const char *ns, const char *address,
				const cJSON *ep, const cJSON *port, starling_k8s_target_fn fn,
				void *arg)
{
	static const char *const cn[3] = {"ready", "serving", "terminating"};
	const cJSON *conds = jobj(ep, "conditions"), *ref = jobj(ep, "targetRef"), *t, *pod;
	const char *rkind = jstr(ref, "kind"), *node = jstr(ep, "nodeName");
	int num = jport(port, "port"), rc;
	char addr[300], ln[160];

	join_host_port(addr, sizeof(addr), address, num);
	if (starling_lset_copy(&m->target, &m->group))
		return -ENOMEM;
	rc = set(&m->target, "__address__", addr);
	if (jstr(port, "name"))
		rc |= set(&m->target, P "endpointslice_port_name", jstr(port, "name"));
	if (jstr(port, "protocol"))
		rc |= set(&m->target, P "endpointslice_port_protocol", jstr(port, "protocol"));
	if (num >= 0)
		rc |= set_int(&m->target, P "endpointslice_port", num);
	if (jstr(port, "appProtocol"))
		rc |=
		    set(&m->target, P "endpointslice_port_app_protocol", jstr(port, "appProtocol"));
	for (int c = 0; c < 3; c++) {
		int b = jbool(conds, cn[c]);

		if (b < 0)
			continue;
		snprintf(ln, sizeof(ln), P "endpointslice_endpoint_conditions_%s", cn[c]);
		rc |= set(&m->target, ln, b ? "true" : "false");
	}
	if (jstr(ep, "hostname"))
		rc |= set(&m->target, P "endpointslice_endpoint_hostname", jstr(ep, "hostname"));
	if (ref) {
		rc |= set(&m->target, P "endpointslice_address_target_kind", rkind);
		rc |= set(&m->target, P "endpointslice_address_target_name", jstr(ref, "name"));
	}
	if (node)
		rc |= set(&m->target, P "endpointslice_endpoint_node_name", node);
	if (jstr(ep, "zone"))
		rc |= set(&m->target, P "endpointslice_endpoint_zone", jstr(ep, "zone"));
	cJSON_ArrayForEach(t, jobj(ep, "deprecatedTopology"))
	{
		if (!cJSON_IsString(t))
			continue;
		rc |= set_sanitized(m, &m->target, P "endpointslice_endpoint_topology_", t->string,
				    t->valuestring);
		rc |= set_sanitized(m, &m->target, P "endpointslice_endpoint_topology_present_",
				    t->string, "true");
	}
	if (m->attach_node)
		rc |= node_labels(m, &m->target,
				  rkind && strcmp(rkind, "Node") == 0 ? jstr(ref, "name") : node);
	pod = ref_pod(m, ref, ns);
	if (pod)
		rc |= endpoint_pod(m, pod, num, NULL);
	if (rc)
		return rc;
	return fn(arg, &m->target);
}

static int endpointslice_role(struct starling_k8s_meta *m, const cJSON *es,
			      starling_k8s_target_fn fn, void *arg)
{
	const char *ns = meta(es, "namespace");
	const char *svc_name =
	    jstr(jobj(jobj(es, "metadata"), "labels"), "kubernetes.io/service-name");
	const cJSON *svc =
	    m->services && svc_name ? starling_k8s_store_get(m->services, ns, svc_name) : NULL;
	const cJSON *ep, *port, *a;
	int rc = 0;

	m->n_seen = 0;
	starling_lset_clear(&m->group);
	rc |= set(&m->group, P "namespace", ns);
	rc |= set(&m->group, P "endpointslice_address_type", jstr(es, "addressType"));
	rc |= object_meta(m, &m->group, es, "endpointslice");
	if (svc)
		rc |= service_labels(m, &m->group, svc);
	rc |= namespace_labels(m, &m->group, ns);
	if (rc)
		return rc;
	if (non_primary_family(svc, es))
		return 0;
	cJSON_ArrayForEach(ep, jarr(es, "endpoints"))
	{
		cJSON_ArrayForEach(port, jarr(es, "ports"))
		{
			cJSON_ArrayForEach(a, jarr(ep, "addresses"))
			{
				if (!cJSON_IsString(a))
					continue;
				rc = endpointslice_target(m, ns, a->valuestring, ep, port, fn, arg);
				if (rc)
					return rc;
			}
		}
	}
	return uncovered_ports(m, fn, arg);
}

static int node_role(struct starling_k8s_meta *m, const cJSON *node, starling_k8s_target_fn fn,
		     void *arg)
{
	static const char *const prio[] = {"InternalIP",  "InternalDNS",  "ExternalIP",
					   "ExternalDNS", "LegacyHostIP", "Hostname"};
	const cJSON *st = jobj(node, "status"), *c, *a;
	const char *addr = NULL, *name = meta(node, "name");
	char buf[300], ln[200], low[128];
	int rc = 0, port;

	starling_lset_clear(&m->group);
	rc |= set(&m->group, P "node_provider_id", jstr(jobj(node, "spec"), "providerID"));
	cJSON_ArrayForEach(c, jarr(st, "conditions"))
	{
		const char *t = jstr(c, "type"), *s = jstr(c, "status");
		size_t i = 0;

		if (!t)
			continue;
		for (; t[i] && i + 1 < sizeof(low); i++)
			low[i] = (char)((t[i] >= 'A' && t[i] <= 'Z') ? t[i] - 'A' + 'a' : t[i]);
		low[i] = 0;
		for (i = 0; s && s[i] && i + 1 < sizeof(buf); i++)
			buf[i] = (char)((s[i] >= 'A' && s[i] <= 'Z') ? s[i] - 'A' + 'a' : s[i]);
		buf[i] = 0;
		rc |= set_sanitized(m, &m->group, P "node_condition_", low, buf);
	}
	rc |= object_meta(m, &m->group, node, "node");
	if (rc)
		return rc;
	for (size_t p = 0; p < sizeof(prio) / sizeof(prio[0]) && !addr; p++) {
		cJSON_ArrayForEach(a, jarr(st, "addresses"))
		{
			const char *t = jstr(a, "type");

			if (t && strcmp(t, prio[p]) == 0 && jstr(a, "address")) {
				addr = jstr(a, "address");
				break;
			}
		}
	}
	if (!addr)
		return 0; /* "No node address found": no group */
	port = jport(jobj(jobj(st, "daemonEndpoints"), "kubeletEndpoint"), "Port");
	join_host_port(buf, sizeof(buf), addr, port < 0 ? 0 : port);
	if (starling_lset_copy(&m->target, &m->group))
		return -ENOMEM;
	rc = set(&m->target, "__address__", buf);
	rc |= set(&m->target, "instance", name);
	/* node_address_<Type>: the first address of each type. */
	cJSON_ArrayForEach(a, jarr(st, "addresses"))
	{
		const char *t = jstr(a, "type");
		bool first = true;

		if (!t)
			continue;
		for (const cJSON *b = jarr(st, "addresses")->child; b != a && first; b = b->next)
			first = !(jstr(b, "type") && strcmp(jstr(b, "type"), t) == 0);
		if (!first)
			continue;
		snprintf(ln, sizeof(ln), P "node_address_%s", t);
		starling_k8s_sanitize(ln, buf, sizeof(buf));
		rc |= set(&m->target, buf, jstr(a, "address"));
	}
	if (rc)
		return rc;
	return fn(arg, &m->target);
}

int starling_k8s_targets(struct starling_k8s_meta *m, enum starling_k8s_role role, const cJSON *obj,
			 starling_k8s_target_fn fn, void *arg)
{
	if (!cJSON_IsObject(obj))
		return 0;
	switch (role) {
	case STARLING_K8S_ROLE_POD:
		return pod_role(m, obj, fn, arg);
	case STARLING_K8S_ROLE_SERVICE:
		return service_role(m, obj, fn, arg);
	case STARLING_K8S_ROLE_ENDPOINTS:
		return endpoints_role(m, obj, fn, arg);
	case STARLING_K8S_ROLE_ENDPOINTSLICE:
		return endpointslice_role(m, obj, fn, arg);
	case STARLING_K8S_ROLE_NODE:
		return node_role(m, obj, fn, arg);
	}
	return -EINVAL;
}
