#!/usr/bin/env python3
# Offline checks of Rampart's deployments, run by scripts/check-deploy.sh (which installs what
# this needs and passes the paths). `compose FILE` checks the resolved output of
# `docker-compose config`; `k8s DIR` validates every manifest under DIR strictly (unknown fields
# and wrong types fail) against the Kubernetes JSON schemas of PyPI's kubernetes-validate and the
# operators' own CRD schemas, then checks the Rampart-specific rules. One PASS/FAIL line a check.
import argparse
import glob
import json
import os
import re
import sys

import jsonschema
import referencing
import yaml

FAILED = []


def report(name, problems):
    """Prints one PASS/FAIL line (the first problems under it) and records a failure."""
    if problems:
        FAILED.append(name)
        print(f"FAIL {name}")
        for p in problems[:15]:
            print(f"       {p}")
        if len(problems) > 15:
            print(f"       ... and {len(problems) - 15} more")
    else:
        print(f"PASS {name}")


def settings_by_service(config_md):
    """{service: set of RAMPART_* names} from docs/configuration.md (generated from the code)."""
    out, svc = {}, None
    for line in open(config_md, encoding="utf-8"):
        m = re.match(r"## rampart-(\w+)", line)
        if m:
            svc = m.group(1)
            out[svc] = set()
            continue
        m = re.match(r"\| `(RAMPART_[A-Z0-9_]+)` \|", line)
        if m and svc:
            out[svc].add(m.group(1))
    return out


def duration_s(text):
    """Seconds of a duration such as 30s, 1m30s, 45s, 2m (compose and Rampart syntax)."""
    total, units = 0.0, {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    for num, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", str(text)):
        total += float(num) * units[unit]
    return total


# ---------------------------------------------------------------------------------------------
# docker-compose.yml

RAMPART_KINDS = ("dashboard", "scheduler", "worker", "mailer", "connector")
DB_IMAGES = ("postgres:", "mongo:", "rabbitmq:")


def check_compose(path, config_md, rampart_image, repo_root):
    cfg = yaml.safe_load(open(path, encoding="utf-8"))
    services = cfg.get("services", {})
    settings = settings_by_service(config_md)

    rampart = {}  # name -> kind, for the long-running services
    problems = []
    for name, svc in services.items():
        if svc.get("image") != rampart_image:
            continue
        cmd = svc.get("command") or []
        cmd = cmd if isinstance(cmd, list) else cmd.split()
        kind = next((k for k in RAMPART_KINDS if cmd and cmd[0] == f"rampart-{k}"), None)
        if kind:
            rampart[name] = kind
        elif "backup" not in (svc.get("profiles") or []):
            problems.append(f"{name}: Rampart image but neither a service command nor the backup profile")
    counts = {k: 0 for k in RAMPART_KINDS}
    for name, kind in rampart.items():
        svc = services[name]
        counts[kind] += int((svc.get("deploy") or {}).get("replicas", 1))
    for kind, n in counts.items():
        want = 3 if kind == "worker" else 2
        if n < want:
            problems.append(f"{kind}: {n} copies, want at least {want}")
    report("compose: two or more copies of every Rampart service (workers: replicas >= 3)", problems)

    problems = []
    for name, kind in rampart.items():
        svc = services[name]
        env = svc.get("environment") or {}
        listen = str(env.get("RAMPART_HTTP_LISTEN", ""))
        if not listen.startswith("0.0.0.0:"):
            problems.append(f"{name}: RAMPART_HTTP_LISTEN={listen!r} must bind 0.0.0.0:PORT in a container")
        port = listen.rsplit(":", 1)[-1]
        test = " ".join(map(str, (svc.get("healthcheck") or {}).get("test") or []))
        if f":{port}/readyz" not in test:
            problems.append(f"{name}: healthcheck {test!r} does not probe /readyz on port {port}")
        if (svc.get("healthcheck") or {}).get("disable"):
            problems.append(f"{name}: healthcheck disabled")
    report("compose: every Rampart service listens on 0.0.0.0 and has a healthcheck on its /readyz", problems)

    problems = []
    for name, svc in services.items():
        if "backup" in (svc.get("profiles") or []) or name == "mongo-init":
            continue
        if svc.get("restart") not in ("always", "unless-stopped", "on-failure"):
            problems.append(f"{name}: restart={svc.get('restart')!r}")
    for name, kind in rampart.items():
        svc = services[name]
        env = svc.get("environment") or {}
        need = duration_s(env.get("RAMPART_DRAIN_TIMEOUT", "30s"))
        if kind == "dashboard":
            need += duration_s(env.get("RAMPART_DASHBOARD_DRAIN_DELAY", "2s"))
        grace = duration_s(svc.get("stop_grace_period", "10s"))
        if grace <= need:
            problems.append(f"{name}: stop_grace_period {grace:g}s is not above its drain ({need:g}s)")
        deps = svc.get("depends_on") or {}
        if not isinstance(deps, dict) or not deps:
            problems.append(f"{name}: depends_on without conditions")
        else:
            for dep, how in deps.items():
                if dep not in services:
                    problems.append(f"{name}: depends on unknown service {dep}")
                if (how or {}).get("condition") not in ("service_healthy", "service_completed_successfully"):
                    problems.append(f"{name}: depends on {dep} with condition {(how or {}).get('condition')!r}")
    report("compose: restart policies, depends_on conditions, stop_grace_period above the drain", problems)

    problems = []
    top = set((cfg.get("volumes") or {}).keys())
    used = {}
    for name, svc in services.items():
        is_db = str(svc.get("image", "")).startswith(DB_IMAGES)
        named = []
        for v in svc.get("volumes") or []:
            if isinstance(v, str):
                src = v.split(":", 1)[0]
                v = {"type": "bind" if src.startswith(("/", ".")) else "volume", "source": src}
            if v.get("type") == "volume":
                named.append(v.get("source"))
                used.setdefault(v.get("source"), []).append(name)
            elif v.get("type") == "bind":
                src = v.get("source", "")
                # The repository's config files must exist (a data folder such as the
                # backup target may not yet).
                if src.startswith(os.path.join(repo_root, "deploy") + "/") and not os.path.exists(src):
                    problems.append(f"{name}: mounts {src}, which does not exist")
        if named and not is_db:
            problems.append(f"{name}: named volume(s) {named} on a service that is not a database")
        if is_db and name != "mongo-init" and not named:
            problems.append(f"{name}: a database without a named volume")
    for vol, users in used.items():
        if len(users) > 1:
            problems.append(f"volume {vol} shared by {users}")
    if top != set(used):
        problems.append(f"top-level volumes {sorted(top)} differ from the ones used {sorted(used)}")
    report("compose: named volumes only for the databases, one each; mounted files exist", problems)

    problems = []
    for name, kind in rampart.items():
        known = settings.get(kind, set())
        for var in (services[name].get("environment") or {}):
            if var.startswith("RAMPART_") and var not in known:
                problems.append(f"{name}: {var} is not a setting of rampart-{kind} (docs/configuration.md)")
    for name, svc in services.items():
        if "backup" in (svc.get("profiles") or []):
            for var in (svc.get("environment") or {}):
                if var.startswith("RAMPART_") and var not in settings.get("backup", set()):
                    problems.append(f"{name}: {var} is not a setting of rampart-backup")
    report("compose: every RAMPART_* variable is a real setting of its service", problems)

    problems = []
    images = {n: s.get("image", "") for n, s in services.items()}
    want = {"postgres:16": 2, "mongo:7": 3, "rabbitmq:3.13-management": 3, "haproxy:2.9": 1}
    for img, n in want.items():
        have = [s for s, i in images.items() if i == img and s != "mongo-init"]
        if len(have) != n:
            problems.append(f"{img}: {len(have)} services {have}, want {n}")
    if not any("rs.initiate" in open(os.path.join(repo_root, "deploy/compose/mongo-init.js")).read() for _ in [0]):
        problems.append("deploy/compose/mongo-init.js does not run rs.initiate")
    if "mongo-init" not in services or services["mongo-init"].get("restart") != "no":
        problems.append("mongo-init: missing, or not a one-shot (restart: no)")
    conf = open(os.path.join(repo_root, "deploy/compose/rabbitmq.conf")).read()
    for line in ("cluster_formation.peer_discovery_backend = classic_config", "default_queue_type = quorum"):
        if line not in conf:
            problems.append(f"rabbitmq.conf lacks `{line}`")
    for i in (1, 2, 3):
        if f"rabbit@rabbitmq{i}" not in conf:
            problems.append(f"rabbitmq.conf does not list rabbit@rabbitmq{i}")
    cookies = {str((services.get(f"rabbitmq{i}") or {}).get("environment", {}).get("RABBITMQ_ERLANG_COOKIE")) for i in (1, 2, 3)}
    if len(cookies) != 1:
        problems.append("the three RabbitMQ nodes do not share one Erlang cookie")
    hap = open(os.path.join(repo_root, "deploy/compose/haproxy.cfg")).read()
    if "option httpchk GET /readyz" not in hap:
        problems.append("haproxy.cfg does not health-check /readyz")
    for n, k in rampart.items():
        if k == "dashboard" and not re.search(rf"server \S+ {n}:8080 .*check", hap):
            problems.append(f"haproxy.cfg has no checked server for {n}")
    backup = [n for n, s in services.items() if "backup" in (s.get("profiles") or [])]
    if not backup:
        problems.append("no service under the backup profile")
    for n in backup:
        cmd = " ".join(map(str, services[n].get("command") or []))
        if "rampart-backup create" not in cmd or "rampart-backup prune" not in cmd:
            problems.append(f"{n}: does not run rampart-backup create and prune")
    report("compose: topology (pg x2, mongo x3 + rs.initiate, rabbitmq x3 cluster, haproxy, backup profile)", problems)


# ---------------------------------------------------------------------------------------------
# Kubernetes manifests

def strictify(node):
    """Turns a CRD's openAPIV3Schema into a strict JSON schema, as the API server prunes it:
    an object with properties and without x-kubernetes-preserve-unknown-fields admits no other
    field; int-or-string and nullable become JSON schema types."""
    if isinstance(node, list):
        return [strictify(n) for n in node]
    if not isinstance(node, dict):
        return node
    node = {k: strictify(v) for k, v in node.items()}
    if node.pop("x-kubernetes-int-or-string", False):
        node.pop("type", None)
        node.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if node.pop("nullable", False) and isinstance(node.get("type"), str):
        node["type"] = [node["type"], "null"]
    for key in ("exclusiveMinimum", "exclusiveMaximum"):  # OpenAPI 3.0 booleans
        if isinstance(node.get(key), bool):
            node.pop(key)
    if (node.get("type") == "object" and "properties" in node
            and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")):
        node["additionalProperties"] = False
    return node


def load_crds(crd_files, k8s_defs_uri):
    """{(apiVersion, kind): schema} from the operators' CRD YAML files (served versions)."""
    out = {}
    for f in crd_files:
        for doc in yaml.safe_load_all(open(f, encoding="utf-8")):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = doc["spec"]["group"], doc["spec"]["names"]["kind"]
            for ver in doc["spec"]["versions"]:
                if not ver.get("served", True):
                    continue
                schema = strictify(ver["schema"]["openAPIV3Schema"])
                props = schema.setdefault("properties", {})
                # The API server checks metadata as ObjectMeta, whatever the CRD says.
                props["metadata"] = {"$ref": k8s_defs_uri + "#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}
                props["apiVersion"] = {"type": "string", "enum": [f"{group}/{ver['name']}"]}
                props["kind"] = {"type": "string", "enum": [kind]}
                schema["required"] = sorted(set(schema.get("required", [])) | {"apiVersion", "kind", "metadata"})
                schema["additionalProperties"] = False
                out[(f"{group}/{ver['name']}", kind)] = schema
    return out


def core_schema(schema_dir, api_version, kind):
    group_ver = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    path = os.path.join(schema_dir, f"{kind.lower()}-{group_ver}.json")
    if not os.path.exists(path):
        return None
    return json.load(open(path, encoding="utf-8"))


def where(err):
    return "/".join(str(p) for p in err.absolute_path) or "(top)"


def load_manifests(k8s_dir):
    docs, problems = [], []
    for f in sorted(glob.glob(os.path.join(k8s_dir, "**", "*.yaml"), recursive=True)):
        rel = os.path.relpath(f, k8s_dir)
        first = open(f, encoding="utf-8").readline()
        if not first.startswith("#"):
            problems.append(f"{rel}: does not start with a comment saying what it is")
        try:
            for i, d in enumerate(yaml.safe_load_all(open(f, encoding="utf-8"))):
                if d is not None:
                    docs.append((rel, i, d))
        except yaml.YAMLError as e:
            problems.append(f"{rel}: YAML: {e}")
    return docs, problems


def validate_objects(objects, schema_dir, crd_files):
    """Schema problems of core objects and of operator resources, and the CRD kinds seen."""
    defs_path = os.path.join(schema_dir, "_definitions.json")
    defs = json.load(open(defs_path, encoding="utf-8"))
    registry = referencing.Registry().with_resource(defs["$id"], referencing.Resource.from_contents(defs))
    crds = load_crds(crd_files, defs["$id"])
    core_problems, crd_problems, crd_kinds = [], [], set()
    for rel, i, d in objects:
        av, kind = d.get("apiVersion"), d.get("kind")
        name = f"{rel}#{i} {kind}/{(d.get('metadata') or {}).get('name')}"
        if (av, kind) in crds:
            schema, sink = crds[(av, kind)], crd_problems
            crd_kinds.add(kind)
        else:
            schema, sink = core_schema(schema_dir, av or "", kind or ""), core_problems
            if schema is None:
                sink.append(f"{name}: no schema for {av} {kind} (unknown kind or apiVersion)")
                continue
            if "$id" not in schema:
                schema = dict(schema, **{"$id": "https://kubernetes.io/api/local"})
        validator = jsonschema.Draft202012Validator(schema, registry=registry)
        for err in sorted(validator.iter_errors(d), key=lambda e: list(map(str, e.absolute_path))):
            sink.append(f"{name}: at {where(err)}: {err.message[:200]}")
    n_core = sum(1 for _, _, d in objects if (d.get("apiVersion"), d.get("kind")) not in crds)
    return core_problems, crd_problems, crd_kinds, n_core


def check_built(path, schema_dir, crd_files, namespace):
    """The output of `kustomize build`: what would really be applied."""
    objects = [(os.path.basename(path), i, d)
               for i, d in enumerate(yaml.safe_load_all(open(path, encoding="utf-8"))) if d]
    core, crd, _, _ = validate_objects(objects, schema_dir, crd_files)
    problems = core + crd
    for _, _, d in objects:
        ns = (d.get("metadata") or {}).get("namespace")
        if d.get("kind") != "Namespace" and ns != namespace:
            problems.append(f"{d.get('kind')}/{d['metadata'].get('name')}: namespace {ns!r}, want {namespace}")
    report(f"k8s: `kustomize build` output: {len(objects)} objects, valid, all in namespace {namespace}", problems)


def check_k8s(k8s_dir, schema_dir, crd_files, config_md):
    docs, problems = load_manifests(k8s_dir)
    report(f"k8s: {len(docs)} documents parse as YAML, every file starts with a comment", problems)
    kustom = [(r, i, d) for r, i, d in docs if d.get("kind") == "Kustomization"]
    objects = [(r, i, d) for r, i, d in docs if d.get("kind") != "Kustomization"]
    core_problems, crd_problems, crd_kinds, n_core = validate_objects(objects, schema_dir, crd_files)
    report(f"k8s: {n_core} core objects valid against the strict Kubernetes {os.path.basename(schema_dir)} schemas", core_problems)
    want = {"Cluster", "RabbitmqCluster", "MongoDBCommunity"}
    if not want <= crd_kinds:
        crd_problems.append(f"missing operator resources: {sorted(want - crd_kinds)}")
    report(f"k8s: operator resources valid against their CRD schemas, unknown fields rejected ({', '.join(sorted(crd_kinds))})", crd_problems)

    problems = []
    for rel, _, k in kustom:
        allowed = {"apiVersion", "kind", "namespace", "resources", "images", "labels", "commonLabels",
                   "commonAnnotations", "patches", "configMapGenerator", "secretGenerator",
                   "generatorOptions", "namePrefix", "nameSuffix", "replicas", "components"}
        for key in set(k) - allowed:
            problems.append(f"{rel}: unexpected field {key}")
        base = os.path.dirname(os.path.join(k8s_dir, rel))
        listed = set(k.get("resources") or [])
        for r in listed:
            if not os.path.exists(os.path.join(base, r)):
                problems.append(f"{rel}: resource {r} does not exist")
        here = {os.path.basename(f) for f in glob.glob(os.path.join(base, "*.yaml"))} - {"kustomization.yaml"}
        for f in sorted(here - listed):
            problems.append(f"{rel}: {f} is not listed in resources")
    if not kustom:
        problems.append("no kustomization.yaml")
    report("k8s: kustomization.yaml lists exactly the manifests beside it", problems)

    try:
        check_k8s_rules(objects, config_md)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
        # A manifest the schemas rejected may not have the shape the rules read.
        report("k8s: Rampart rules (probes, PDBs, HPA, CronJob, Secrets)",
               [f"could not run on these manifests: {type(e).__name__}: {e}"])


def check_k8s_rules(objects, config_md):
    settings = settings_by_service(config_md)
    by_kind = {}
    for rel, _, d in objects:
        by_kind.setdefault(d["kind"], []).append(d)
    deployments = {d["metadata"]["name"]: d for d in by_kind.get("Deployment", [])}
    cm = {}
    for c in by_kind.get("ConfigMap", []):
        cm.update(c.get("data") or {})
    drain = duration_s(cm.get("RAMPART_DRAIN_TIMEOUT", "30s"))

    problems = []
    for kind in RAMPART_KINDS:
        if f"rampart-{kind}" not in deployments:
            problems.append(f"no Deployment rampart-{kind}")
    for name, d in deployments.items():
        spec, pod = d["spec"], d["spec"]["template"]["spec"]
        if spec.get("replicas", 1) < 2:
            problems.append(f"{name}: replicas {spec.get('replicas', 1)} < 2")
        c = pod["containers"][0]
        env = {e["name"]: e.get("value") for e in c.get("env") or []}
        delay = duration_s(env.get("RAMPART_DASHBOARD_DRAIN_DELAY", "2s")) if "dashboard" in name else 0
        pre = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
        pre_s = float(pre[-1]) if pre[:1] == ["sleep"] else 0
        if pod.get("terminationGracePeriodSeconds", 30) <= drain + delay + pre_s:
            problems.append(f"{name}: terminationGracePeriodSeconds {pod.get('terminationGracePeriodSeconds', 30)} "
                            f"not above drain {drain + delay + pre_s:g}s")
        if (c.get("livenessProbe") or {}).get("httpGet", {}).get("path") != "/healthz":
            problems.append(f"{name}: liveness probe not on /healthz")
        if (c.get("readinessProbe") or {}).get("httpGet", {}).get("path") != "/readyz":
            problems.append(f"{name}: readiness probe not on /readyz")
        res = c.get("resources") or {}
        if not res.get("requests") or not res.get("limits"):
            problems.append(f"{name}: resources need requests and limits")
        psc, csc = pod.get("securityContext") or {}, c.get("securityContext") or {}
        if not (psc.get("runAsNonRoot") or csc.get("runAsNonRoot")):
            problems.append(f"{name}: not runAsNonRoot")
        if not csc.get("readOnlyRootFilesystem"):
            problems.append(f"{name}: root filesystem not read-only")
        kind = name.removeprefix("rampart-")
        for var in env:
            if var.startswith("RAMPART_") and var not in settings.get(kind, set()):
                problems.append(f"{name}: {var} is not a setting of rampart-{kind}")
    listen = cm.get("RAMPART_HTTP_LISTEN", "")
    if not listen.startswith("0.0.0.0:"):
        problems.append(f"ConfigMap RAMPART_HTTP_LISTEN={listen!r} must bind 0.0.0.0")
    every = set().union(*settings.values())
    for var in cm:
        if var.startswith("RAMPART_") and var not in every:
            problems.append(f"ConfigMap: {var} is no Rampart setting")
    report("k8s: Deployments have 2+ replicas, /healthz + /readyz probes, grace above the drain, limits, non-root read-only", problems)

    problems = []
    def selects(sel, labels):
        return all(labels.get(k) == v for k, v in (sel.get("matchLabels") or {}).items())
    for name, d in deployments.items():
        labels = d["spec"]["template"]["metadata"]["labels"]
        if not any(selects(p["spec"]["selector"], labels) for p in by_kind.get("PodDisruptionBudget", [])):
            problems.append(f"{name}: no PodDisruptionBudget selects it")
    hpas = [h["spec"]["scaleTargetRef"]["name"] for h in by_kind.get("HorizontalPodAutoscaler", [])]
    if "rampart-worker" not in hpas:
        problems.append("no HorizontalPodAutoscaler for rampart-worker")
    for h in hpas:
        if h not in deployments:
            problems.append(f"HPA targets unknown Deployment {h}")
    for s in by_kind.get("Service", []):
        if not any(selects({"matchLabels": s["spec"]["selector"]}, d["spec"]["template"]["metadata"]["labels"])
                   for d in deployments.values()):
            problems.append(f"Service {s['metadata']['name']} selects no Deployment")
    services = {s["metadata"]["name"] for s in by_kind.get("Service", [])}
    for ing in by_kind.get("Ingress", []):
        for rule in ing["spec"].get("rules", []):
            for p in rule.get("http", {}).get("paths", []):
                if p["backend"]["service"]["name"] not in services:
                    problems.append(f"Ingress {ing['metadata']['name']} points at unknown Service")
    if not by_kind.get("Ingress"):
        problems.append("no Ingress")
    cron = by_kind.get("CronJob", [])
    if not any("rampart-backup create" in json.dumps(c) and "rampart-backup prune" in json.dumps(c) for c in cron):
        problems.append("no CronJob running rampart-backup create and prune")
    # Secrets the pods read: ours, or the ones the operators create.
    secrets = {s["metadata"]["name"] for s in by_kind.get("Secret", [])}
    secrets |= {f"{c['metadata']['name']}-app" for c in by_kind.get("Cluster", [])}
    secrets |= {f"{c['metadata']['name']}-default-user" for c in by_kind.get("RabbitmqCluster", [])}
    for rel, _, d in objects:
        for m in re.finditer(r'"secretKeyRef": \{"name": "([^"]+)"', json.dumps(d)):
            if m.group(1) not in secrets:
                problems.append(f"{d['kind']}/{d['metadata']['name']}: reads unknown Secret {m.group(1)}")
        for m in re.finditer(r'"configMapRef": \{"name": "([^"]+)"', json.dumps(d)):
            if m.group(1) not in {c["metadata"]["name"] for c in by_kind.get("ConfigMap", [])}:
                problems.append(f"{d['kind']}/{d['metadata']['name']}: reads unknown ConfigMap {m.group(1)}")
    for kind, field, n in (("Cluster", "instances", 3), ("RabbitmqCluster", "replicas", 3), ("MongoDBCommunity", "members", 3)):
        for o in by_kind.get(kind, []):
            if o["spec"].get(field) != n:
                problems.append(f"{kind}/{o['metadata']['name']}: {field} {o['spec'].get(field)}, want {n}")
    report("k8s: PDB for every Deployment, worker HPA, Service/Ingress, backup CronJob, Secrets and sizes consistent", problems)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("compose")
    c.add_argument("resolved")
    c.add_argument("--config-md", required=True)
    c.add_argument("--rampart-image", required=True)
    c.add_argument("--root", required=True)
    k = sub.add_parser("k8s")
    k.add_argument("dir")
    k.add_argument("--schemas", required=True)
    k.add_argument("--crd", action="append", default=[])
    k.add_argument("--config-md", required=True)
    b = sub.add_parser("built")
    b.add_argument("file")
    b.add_argument("--schemas", required=True)
    b.add_argument("--crd", action="append", default=[])
    b.add_argument("--namespace", default="rampart")
    a = ap.parse_args()
    if a.cmd == "compose":
        try:
            check_compose(a.resolved, a.config_md, a.rampart_image, os.path.abspath(a.root))
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, OSError) as e:
            report("compose: Rampart rules", [f"could not run: {type(e).__name__}: {e}"])
    elif a.cmd == "built":
        check_built(a.file, a.schemas, a.crd, a.namespace)
    else:
        check_k8s(a.dir, a.schemas, a.crd, a.config_md)
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
