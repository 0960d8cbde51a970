#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""The facts of manifests/deploy (rendered by kubectl kustomize) that a cluster depends on.

Usage: deploy_facts.py RENDER.yaml OUTDIR SCENARIO_GATEWAY.yaml
Prints "ok NAME" or "FAIL NAME" + detail lines; writes OUTDIR/args.CONTAINER (the container's
args as kubelet expands them, one per line) and OUTDIR/mesh-networks.yaml (the ConfigMap's
meshNetworks). Exit 1 when a fact fails.
"""
import re
import sys

import yaml

NS = "ksteer-system"
# what the agent's --admin serves (agent/shim/admin.c): port -> path
ADMIN = {15021: "/healthz/ready", 15020: "/stats/prometheus"}
READ = ["get", "list", "watch"]
# the kinds `ksteer agent --kube` reads, by API group
KINDS = {
    "": {"namespaces", "services", "pods", "serviceaccounts"},
    "discovery.k8s.io": {"endpointslices"},
    "apps": {"deployments"},
    "networking.istio.io": {"serviceentries", "destinationrules", "virtualservices", "gateways",
                            "workloadentries"},
}
# values the downward API gives, for expanding $(VAR) as kubelet does
FIELDS = {"spec.nodeName": "node-a", "status.hostIP": "10.0.0.7",
          "metadata.name": "pod-a", "metadata.namespace": NS}

fails = 0


def ok(name):
    print("ok   " + name)


def bad(name, *detail):
    global fails
    fails += 1
    print("FAIL " + name)
    for d in detail:
        print("     " + str(d))


def check(cond, name, *detail):
    if cond:
        ok(name)
    else:
        bad(name, *detail)
    return cond


def find(docs, kind, name):
    got = [d for d in docs if d.get("kind") == kind and d["metadata"]["name"] == name]
    check(len(got) == 1, "%s %s: present once" % (kind, name), "found %d" % len(got))
    return got[0] if got else None


def env_values(c, labels, cms):
    vals = {}
    for e in c.get("env", []):
        if "value" in e:
            vals[e["name"]] = e["value"]
            continue
        src = e.get("valueFrom", {})
        if "fieldRef" in src:
            path = src["fieldRef"]["fieldPath"]
            m = re.fullmatch(r"metadata\.labels\['([^']+)'\]", path)
            if m:
                if check(m.group(1) in labels, "%s: env %s: the label %s is the pod's" %
                         (c["name"], e["name"], m.group(1)), "labels: %s" % labels):
                    vals[e["name"]] = labels[m.group(1)]
            elif check(path in FIELDS, "%s: env %s: a downward API field" % (c["name"], e["name"]),
                       path):
                vals[e["name"]] = FIELDS[path]
        elif "configMapKeyRef" in src:
            ref = src["configMapKeyRef"]
            data = cms.get(ref["name"], {})
            if check(ref["key"] in data, "%s: env %s: ConfigMap %s has key %s" %
                     (c["name"], e["name"], ref["name"], ref["key"])):
                vals[e["name"]] = data[ref["key"]]
        else:
            bad("%s: env %s: a source this test knows" % (c["name"], e["name"]), src)
    return vals


def expand(s, vals):
    # kubelet's $(VAR) expansion: defined variables only, $$ escapes
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                  lambda m: "$" if m.group(0) == "$$" else vals.get(m.group(1), m.group(0)), s)


def strings(who, args):
    # "- --admin=::" is a mapping to YAML (a plain scalar ending in ':'), not the flag
    odd = [a for a in args if not isinstance(a, str)]
    check(not odd, "%s: every arg is a string (quote those YAML reads otherwise)" % who, odd)
    return [a for a in args if isinstance(a, str)]


def flags(args):
    out = {}
    for a in args:
        if a.startswith("--"):
            k, _, v = a.partition("=")
            out.setdefault(k, []).append(v)
    return out


def agent_args(who, c, labels, cms, path):
    """The container's env and args as kubelet expands them; the args also go to path."""
    vals = env_values(c, labels, cms)
    args = [expand(a, vals) for a in strings(who, c["args"])]
    check(not any("$(" in a for a in args), "%s: every $(VAR) in args is defined in env" % who,
          [a for a in args if "$(" in a])
    check(c.get("command") == ["ksteer"] and args[:1] == ["agent"], "%s: runs ksteer agent" % who)
    with open(path, "w") as f:
        f.write("\n".join(args) + "\n")
    return vals, flags(args)


def mounts_by_path(c, spec):
    vols = {v["name"]: v for v in spec.get("volumes", [])}
    out = {}
    for m in c.get("volumeMounts", []):
        check(m["name"] in vols, "%s: mount %s names a volume" % (c["name"], m["mountPath"]))
        out[m["mountPath"]] = (m, vols.get(m["name"], {}))
    return out


def check_probes(c, fl):
    name = c["name"]
    check("--admin" in fl, "%s: --admin given (the probes' listener)" % name)
    ports = {p["containerPort"] for p in c.get("ports", [])}
    for kind in ("readinessProbe", "livenessProbe"):
        g = c.get(kind, {}).get("httpGet")
        if not check(g is not None, "%s: %s is an httpGet" % (name, kind)):
            continue
        port = g["port"]
        if isinstance(port, str):
            port = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}.get(port)
        check(ADMIN.get(port) == g.get("path"),
              "%s: %s asks %s:%s, which the agent serves" % (name, kind, g.get("path"), port),
              "the agent serves %s" % ADMIN)
        check(port in ports, "%s: %s port %s is a declared containerPort" % (name, kind, port))
    r = c.get("readinessProbe", {}).get("httpGet", {})
    check(r.get("port") == 15021 and r.get("path") == "/healthz/ready",
          "%s: readiness is :15021/healthz/ready (503 until a policy is active)" % name)


def check_scrape(name, meta):
    a = meta.get("annotations", {})
    check(a.get("prometheus.io/scrape") == "true" and a.get("prometheus.io/port") == "15020" and
          a.get("prometheus.io/path") == "/stats/prometheus",
          "%s: prometheus.io annotations scrape :15020/stats/prometheus" % name, a)


def check_mesh(name, fl, mounts):
    pol = fl.get("--policy", [None])[0]
    m, v = mounts.get(pol, (None, {}))
    cm = v.get("configMap", {})
    check(cm.get("name") == "ksteer-mesh", "%s: --policy %s is the ConfigMap ksteer-mesh" %
          (name, pol), v)
    items = cm.get("items", [])
    check(items and all(re.search(r"\.(yaml|yml|json)$", i["path"]) for i in items),
          "%s: the ConfigMap's files are *.yaml (the agent loads no other)" % name, items)
    check([i["key"] for i in items] == ["meshNetworks"],
          "%s: only meshNetworks goes into the policy directory" % name, items)


def main():
    render, outdir, scen_gw = sys.argv[1:4]
    docs = [d for d in yaml.safe_load_all(open(render)) if d]
    cms = {d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"}

    for d in docs:
        if d["kind"] in ("Namespace", "ClusterRole", "ClusterRoleBinding"):
            continue
        check(d["metadata"].get("namespace") == NS, "%s %s: in %s" %
              (d["kind"], d["metadata"]["name"], NS), d["metadata"].get("namespace"))
    find(docs, "Namespace", NS)
    find(docs, "ServiceAccount", "ksteer")

    # -- RBAC: read only, exactly the kinds the agent reads
    role = find(docs, "ClusterRole", "ksteer")
    got = {}
    for r in role["rules"] if role else []:
        check(sorted(r["verbs"]) == sorted(READ), "ClusterRole: verbs of %s are get, list, watch" %
              ",".join(r["resources"]), r["verbs"])
        check("resourceNames" not in r and "nonResourceURLs" not in r,
              "ClusterRole: rule %s by kind only" % ",".join(r["resources"]))
        for g in r["apiGroups"]:
            got.setdefault(g, set()).update(r["resources"])
    check(got == KINDS, "ClusterRole: exactly the kinds the agent reads",
          "got %s" % sorted((g, sorted(v)) for g, v in got.items()))
    rb = find(docs, "ClusterRoleBinding", "ksteer")
    if rb:
        check(rb["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                "name": "ksteer"}, "ClusterRoleBinding: binds ClusterRole ksteer")
        check(rb["subjects"] == [{"kind": "ServiceAccount", "name": "ksteer", "namespace": NS}],
              "ClusterRoleBinding: to ServiceAccount %s/ksteer" % NS, rb["subjects"])

    # -- the ConfigMap
    mesh = cms.get("ksteer-mesh", {})
    check("networks" in yaml.safe_load(mesh.get("meshNetworks", "{}")),
          "ConfigMap ksteer-mesh: meshNetworks in Istio's form (networks:)")
    check(mesh.get("trustDomain") == "cluster.local", "ConfigMap ksteer-mesh: trustDomain cluster.local")
    with open(outdir + "/mesh-networks.yaml", "w") as f:
        f.write(mesh.get("meshNetworks", ""))

    # -- the node DaemonSet
    ds = find(docs, "DaemonSet", "ksteer-node")
    images = set()
    if ds:
        t = ds["spec"]["template"]
        spec = t["spec"]
        check(ds["spec"]["selector"]["matchLabels"].items() <= t["metadata"]["labels"].items(),
              "DaemonSet: its selector matches its pods")
        check(spec.get("hostNetwork") is True, "DaemonSet: hostNetwork")
        check(spec.get("dnsPolicy") == "ClusterFirstWithHostNet", "DaemonSet: dnsPolicy ClusterFirstWithHostNet")
        check(not spec.get("hostPID"), "DaemonSet: no hostPID (the agent reads only /proc/self)")
        check(spec.get("serviceAccountName") == "ksteer", "DaemonSet: ServiceAccount ksteer")
        check(spec.get("priorityClassName") == "system-node-critical", "DaemonSet: system-node-critical")
        check(isinstance(spec.get("terminationGracePeriodSeconds"), int),
              "DaemonSet: terminationGracePeriodSeconds set")
        check({"operator": "Exists"} in spec.get("tolerations", []),
              "DaemonSet: tolerates every taint (every node)", spec.get("tolerations"))
        us = ds["spec"].get("updateStrategy", {})
        ru = us.get("rollingUpdate", {})
        # hostNetwork pods hold the node's ports: a surge pod would wait behind the old one
        check(us.get("type") == "RollingUpdate" and ru.get("maxSurge") == 0 and
              ru.get("maxUnavailable", 0) != 0,
              "DaemonSet: RollingUpdate, no surge (hostNetwork ports and pins are the node's)", us)
        check_scrape("DaemonSet", t["metadata"])
        (c,) = spec["containers"]
        images.add(c["image"])
        vals, fl = agent_args("DaemonSet", c, t["metadata"]["labels"], cms, outdir + "/args.node")
        for want in ("--kube", "--inbound", "--ca", "--policy", "--cgroup", "--instance", "--shim"):
            check(want in fl, "DaemonSet: %s given" % want)
        check(fl.get("--shim") == [FIELDS["status.hostIP"]],
              "DaemonSet: --shim is the node's address (reachable from its pods)", fl.get("--shim"))
        check(vals.get("NODE_NAME") == FIELDS["spec.nodeName"], "DaemonSet: NODE_NAME from spec.nodeName")
        check(vals.get("HOST_IP") == FIELDS["status.hostIP"], "DaemonSet: HOST_IP from status.hostIP")
        check(fl.get("--trust-domain") == [mesh.get("trustDomain")],
              "DaemonSet: --trust-domain is the ConfigMap's", fl.get("--trust-domain"))
        check_probes(c, fl)
        sc = c.get("securityContext", {})
        mounts = mounts_by_path(c, spec)
        m, v = mounts.get("/sys/fs/bpf", (None, {}))
        check(m and v.get("hostPath", {}).get("path") == "/sys/fs/bpf" and
              m.get("mountPropagation") == "Bidirectional",
              "DaemonSet: host /sys/fs/bpf at /sys/fs/bpf, Bidirectional (pins outlive the pod)")
        check(sc.get("privileged") is True,
              "DaemonSet: privileged (Bidirectional propagation requires it)")
        cg = fl.get("--cgroup", [""])[0]
        m, v = mounts.get("/sys/fs/cgroup", (None, {}))
        check(m and v.get("hostPath", {}).get("path") == "/sys/fs/cgroup" and
              (cg + "/").startswith("/sys/fs/cgroup/"),
              "DaemonSet: --cgroup %s lies in the host's /sys/fs/cgroup, mounted" % cg)
        m, v = mounts.get("/run/ksteer", (None, {}))
        check(m and v.get("hostPath", {}).get("path") == "/run/ksteer",
              "DaemonSet: host /run/ksteer (control sockets)")
        ca = fl.get("--ca", [None])[0]
        m, v = mounts.get(ca, (None, {}))
        check(v.get("secret", {}).get("secretName") == "cacerts",
              "DaemonSet: --ca %s is the Secret cacerts" % ca, v)
        check_mesh("DaemonSet", fl, mounts)
        ports = {p["containerPort"] for p in c.get("ports", [])}
        check({15001, 15008, 15020, 15021} <= ports,
              "DaemonSet: the node's ports 15001, 15008, 15020, 15021 declared", sorted(ports))
        check("limits" in c.get("resources", {}) and "requests" in c.get("resources", {}),
              "DaemonSet: resources requested and limited")

    # -- the east-west gateway
    dep = find(docs, "Deployment", "ksteer-eastwestgateway")
    svc = find(docs, "Service", "ksteer-eastwestgateway")
    if dep:
        t = dep["spec"]["template"]
        spec = t["spec"]
        labels = t["metadata"]["labels"]
        check(dep["spec"]["selector"]["matchLabels"].items() <= labels.items(),
              "Deployment: its selector matches its pods")
        check(not spec.get("hostNetwork"), "Deployment: the gateway has a network namespace of its own")
        check(spec.get("serviceAccountName") == "ksteer", "Deployment: ServiceAccount ksteer")
        check(dep["spec"].get("replicas", 1) >= 1, "Deployment: replicas")
        check_scrape("Deployment", t["metadata"])
        (c,) = spec["containers"]
        images.add(c["image"])
        vals, fl = agent_args("Deployment", c, labels, cms, outdir + "/args.gateway")
        for want in ("--kube", "--gateway", "--gateway-labels", "--cgroup", "--instance", "--policy"):
            check(want in fl, "Deployment: %s given" % want)
        gl = dict(kv.split("=", 1) for v in fl.get("--gateway-labels", []) for kv in v.split(","))
        check(gl.items() <= labels.items(), "Deployment: --gateway-labels are the pod's labels",
              gl, labels)
        sel = yaml.safe_load(open(scen_gw))["spec"]["selector"]
        check(sel.items() <= gl.items(),
              "Deployment: the scenario's Gateway (selector %s) selects the gateway" % sel, gl)
        check_probes(c, fl)
        check_mesh("Deployment", fl, mounts_by_path(c, spec))
        ports = {p["containerPort"] for p in c.get("ports", [])}
        if svc:
            s = svc["spec"]
            check(s.get("type") == "LoadBalancer", "Service: type LoadBalancer")
            check(s["selector"].items() <= labels.items(), "Service: selects the gateway's pods")
            sp = {p["port"]: p for p in s["ports"]}
            for port, name in ((15443, "tls"), (15021, "status-port")):
                p = sp.get(port, {})
                check(p.get("name") == name and p.get("targetPort", port) in ports,
                      "Service: %d named %s, to a port the gateway declares" % (port, name), p)
    check(len(images) == 1, "both agents run the same image", images)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
