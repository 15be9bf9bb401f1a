#!/usr/bin/env python3
"""Structural checks of deploy/: compose file, Kubernetes manifests, Dockerfile, systemd unit.

Called by deploy/check.sh. Each check states what the deploy files promise (the command they
run, the probes, the sandbox) so that a change that breaks a promise fails CI. Needs PyYAML
(Debian: python3-yaml). Prints every problem; exits 1 if there is any. Writes the ConfigMap's
config.toml to the path given as --configmap-out, for `entrepot config check`.
"""
import argparse
import os
import re
import sys

import yaml

DEPLOY = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(DEPLOY)
NODE_DIR = "/var/lib/entrepot"
problems = []


def need(cond, what):
    if not cond:
        problems.append(what)
    return cond


def load_all(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def check_compose():
    path = os.path.join(DEPLOY, "compose.yaml")
    (doc,) = load_all(path)
    services = doc.get("services") or {}
    volumes = set((doc.get("volumes") or {}).keys())
    for node, init in [("wco", "wco-init"), ("wto", "wto-init"), ("replica", "replica-init")]:
        s = services.get(node)
        if not need(s is not None, f"compose: service {node} missing"):
            continue
        need(s.get("command") == ["run"], f"compose: {node} must run `entrepot ... run`")
        dep = (s.get("depends_on") or {}).get(init) or {}
        need(dep.get("condition") == "service_completed_successfully", f"compose: {node} must wait for {init} to finish")
        test = " ".join((s.get("healthcheck") or {}).get("test") or [])
        need("/readyz" in test or "/healthz" in test, f"compose: {node} healthcheck must probe /healthz or /readyz")
        need(any(str(v).endswith(":" + NODE_DIR) for v in s.get("volumes") or []), f"compose: {node} must mount {NODE_DIR}")
        i = services.get(init)
        if need(i is not None, f"compose: init service {init} missing"):
            need(i.get("entrypoint") == ["/bin/sh", "/init-node.sh"], f"compose: {init} must run init-node.sh")
            need("NETWORK" in (i.get("environment") or {}), f"compose: {init} must set NETWORK")
    orgs = {(services.get(n) or {}).get("environment", {}).get("ORG") for n in ("wco-init", "wto-init")}
    need(orgs == {"WCO", "WTO"}, f"compose: the two publishing organizations must be WCO and WTO, found {orgs}")
    need(not (services.get("replica-init") or {}).get("environment", {}).get("ORG"), "compose: the replica must have no ORG")
    for name, s in services.items():
        need("image" in s or "build" in s, f"compose: {name} has neither image nor build")
        b = s.get("build")
        if isinstance(b, dict):
            ctx = os.path.normpath(os.path.join(DEPLOY, b.get("context", ".")))
            need(os.path.isfile(os.path.join(ctx, b.get("dockerfile", "Dockerfile"))), f"compose: {name} build dockerfile missing")
        for v in s.get("volumes") or []:
            src = str(v).split(":")[0]
            if src.startswith("."):
                need(os.path.exists(os.path.join(DEPLOY, src)), f"compose: {name} mounts missing file {src}")
            else:
                need(src in volumes, f"compose: {name} mounts undeclared volume {src}")
        for dep in (s.get("depends_on") or {}):
            need(dep in services, f"compose: {name} depends on unknown service {dep}")


def check_k8s(configmap_out):
    kdir = os.path.join(DEPLOY, "k8s")
    docs = {}
    for fname in sorted(os.listdir(kdir)):
        if not fname.endswith(".yaml"):
            continue
        for d in load_all(os.path.join(kdir, fname)):
            kind = d.get("kind")
            need(bool(d.get("apiVersion")) and bool(kind), f"k8s: {fname}: a document lacks apiVersion or kind")
            if kind != "Kustomization":
                need(bool((d.get("metadata") or {}).get("name")), f"k8s: {fname}: {kind} has no metadata.name")
            docs.setdefault(kind, []).append((fname, d))
    for fname, k in docs.get("Kustomization", []):
        for r in k.get("resources") or []:
            need(os.path.isfile(os.path.join(kdir, r)), f"k8s: kustomization lists missing {r}")
    sts = docs.get("StatefulSet", [])
    if not need(len(sts) == 1, "k8s: exactly one StatefulSet expected"):
        return
    _, st = sts[0]
    spec = st["spec"]
    pod = spec["template"]["spec"]
    labels = spec["template"]["metadata"]["labels"]
    need(spec["selector"]["matchLabels"].items() <= labels.items(), "k8s: StatefulSet selector does not match its pod labels")
    vcts = spec.get("volumeClaimTemplates") or []
    need(len(vcts) == 1 and vcts[0]["spec"]["resources"]["requests"].get("storage"), "k8s: one volumeClaimTemplate with a storage request")
    psc = pod.get("securityContext") or {}
    need(psc.get("runAsNonRoot") is True and psc.get("runAsUser", 0) != 0, "k8s: pod must run as a non-root user")
    need((psc.get("seccompProfile") or {}).get("type") == "RuntimeDefault", "k8s: pod seccompProfile RuntimeDefault")
    for c in (pod.get("initContainers") or []) + pod["containers"]:
        sc = c.get("securityContext") or {}
        name = c["name"]
        need(sc.get("readOnlyRootFilesystem") is True, f"k8s: {name}: readOnlyRootFilesystem must be true")
        need(sc.get("allowPrivilegeEscalation") is False, f"k8s: {name}: allowPrivilegeEscalation must be false")
        need("ALL" in ((sc.get("capabilities") or {}).get("drop") or []), f"k8s: {name}: must drop ALL capabilities")
        lim = (c.get("resources") or {}).get("limits") or {}
        need("cpu" in lim and "memory" in lim, f"k8s: {name}: cpu and memory limits")
        need(any(m["mountPath"] == NODE_DIR for m in c.get("volumeMounts") or []), f"k8s: {name}: must mount {NODE_DIR}")
    (node,) = [c for c in pod["containers"] if c["name"] == "entrepot"]
    need(node.get("args") == ["run"], "k8s: the node container must run `run`")
    ports = {p["name"]: p["containerPort"] for p in node.get("ports") or []}
    need(ports == {"p2p": 4001, "http": 8080}, f"k8s: node ports must be p2p 4001 and http 8080, found {ports}")
    need((node.get("livenessProbe") or {}).get("httpGet", {}).get("path") == "/healthz", "k8s: liveness probe on /healthz")
    need((node.get("readinessProbe") or {}).get("httpGet", {}).get("path") == "/readyz", "k8s: readiness probe on /readyz")
    claim = vcts[0]["metadata"]["name"] if vcts else None
    need(any(m["name"] == claim for m in node.get("volumeMounts") or []), "k8s: node must mount the claim template")
    cms = {d["metadata"]["name"]: d for _, d in docs.get("ConfigMap", [])}
    cm_names = [v["configMap"]["name"] for v in pod.get("volumes") or [] if "configMap" in v]
    for n in cm_names:
        need(n in cms, f"k8s: pod uses ConfigMap {n}, which no manifest defines")
    for n in cm_names:
        data = (cms.get(n) or {}).get("data") or {}
        if need("config.toml" in data and "keyring.json" in data, f"k8s: ConfigMap {n} needs config.toml and keyring.json"):
            need('listen = "0.0.0.0:8080"' in data["config.toml"], "k8s: the ConfigMap's http.listen must be 0.0.0.0:8080")
            with open(configmap_out, "w") as f:
                f.write(data["config.toml"])
    for fname, svc in docs.get("Service", []):
        sel = svc["spec"].get("selector") or {}
        need(sel.get("app.kubernetes.io/name") == labels.get("app.kubernetes.io/name"), f"k8s: Service {svc['metadata']['name']} selects no pod")
        for p in svc["spec"].get("ports") or []:
            need(p.get("targetPort") in ports, f"k8s: Service {svc['metadata']['name']} targets unknown port {p.get('targetPort')}")
    need(any(s["metadata"]["name"] == spec["serviceName"] and s["spec"].get("clusterIP") == "None" for _, s in docs.get("Service", [])),
         "k8s: the StatefulSet's serviceName must be a headless Service")


def check_dockerfile():
    text = open(os.path.join(DEPLOY, "Dockerfile")).read()
    lines = [l for l in re.sub(r"\\\n", " ", text).splitlines() if l.strip() and not l.lstrip().startswith("#")]
    stages = [l.split() for l in lines if l.upper().startswith("FROM ")]
    names = [s[3] for s in stages if len(s) == 4 and s[2].upper() == "AS"]
    need(names == ["builder", "binary", "runtime"], f"Dockerfile: stages builder, binary and runtime expected, found {names}")
    # The defaults build from the published images: the binary stage is the builder unless a
    # build argument names a prebuilt image (deploy/image-check.sh).
    need(re.search(r"^ARG BINARY_FROM=builder$", text, re.M) and re.search(r"^FROM \$\{BINARY_FROM\} AS binary$", text, re.M),
         "Dockerfile: the binary stage must default to the builder (ARG BINARY_FROM=builder)")
    need(re.search(r"^ARG RUNTIME_BASE=debian:bookworm-slim$", text, re.M) and re.search(r"^FROM \$\{RUNTIME_BASE\} AS runtime$", text, re.M),
         "Dockerfile: the runtime must default to debian:bookworm-slim (ARG RUNTIME_BASE)")
    runtime = text.split("AS runtime", 1)[-1]
    builder = text.split("AS runtime", 1)[0]
    need("clang" in builder and "libclang-dev" in builder, "Dockerfile: the builder must install clang and libclang-dev")
    need("cargo build --release" in builder, "Dockerfile: the builder must cargo build --release")
    need("COPY --from=binary /entrepot /usr/local/bin/entrepot" in runtime, "Dockerfile: the runtime must copy the binary from the binary stage")
    for src in re.findall(r"^COPY (?!--)(\S+(?: \S+)*) \S+$", builder, re.M):
        for s in src.split():
            need(os.path.exists(os.path.join(ROOT, s)), f"Dockerfile: COPY source {s} does not exist")
    users = re.findall(r"^USER (\S+)", runtime, re.M)
    need(users and users[-1].split(":")[0] not in ("root", "0"), "Dockerfile: the runtime must switch to a non-root USER")
    need(re.search(r'^VOLUME \["/var/lib/entrepot"\]', runtime, re.M), "Dockerfile: VOLUME /var/lib/entrepot")
    need(re.search(r"^EXPOSE 4001 8080$", runtime, re.M), "Dockerfile: EXPOSE 4001 8080")
    need(re.search(r"HEALTHCHECK .*CMD .*/healthz", re.sub(r"\\\n", " ", runtime)), "Dockerfile: HEALTHCHECK on /healthz")
    need('ENTRYPOINT ["/usr/local/bin/entrepot", "--dir", "/var/lib/entrepot"]' in runtime, "Dockerfile: exec-form ENTRYPOINT with --dir /var/lib/entrepot")
    need('CMD ["run"]' in runtime, 'Dockerfile: CMD ["run"]')


def check_unit():
    text = open(os.path.join(DEPLOY, "systemd", "entrepot.service")).read()
    sections, current = {}, None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = line
            continue
        key, _, value = line.partition("=")
        sections.setdefault(current, {}).setdefault(key, []).append(value)
    svc = sections.get("[Service]", {})
    need(set(sections) == {"[Unit]", "[Service]", "[Install]"}, f"unit: sections {sorted(sections)}")
    need(svc.get("ExecStart") == ["/usr/local/bin/entrepot --dir /var/lib/entrepot run"], "unit: ExecStart must run the node in /var/lib/entrepot")
    required = {
        "StateDirectory": "entrepot", "NoNewPrivileges": "yes", "ProtectSystem": "strict", "PrivateTmp": "yes",
        "ProtectHome": "yes", "PrivateDevices": "yes", "MemoryDenyWriteExecute": "yes", "KillSignal": "SIGTERM",
    }
    for key, value in required.items():
        need(value in svc.get(key, []), f"unit: {key}={value} required")
    need(svc.get("User") or svc.get("DynamicUser") == ["yes"], "unit: a dedicated User= or DynamicUser=yes")
    for key in ("RestrictAddressFamilies", "SystemCallFilter", "MemoryMax", "CapabilityBoundingSet"):
        need(key in svc, f"unit: {key}= required")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--configmap-out", required=True)
    args = ap.parse_args()
    for name, f in [("compose", check_compose), ("k8s", lambda: check_k8s(args.configmap_out)),
                    ("Dockerfile", check_dockerfile), ("systemd unit (structure)", check_unit)]:
        before = len(problems)
        try:
            f()
        except (KeyError, TypeError, ValueError, yaml.YAMLError, OSError) as e:
            problems.append(f"{name}: cannot be read as expected: {type(e).__name__}: {e}")
        print(f"  {name}: {'ok' if len(problems) == before else 'FAILED'}")
    for p in problems:
        print(f"error: {p}", file=sys.stderr)
    sys.exit(1 if problems else 0)
