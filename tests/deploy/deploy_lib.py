"""Helpers for the deploy tests: render the Kustomize overlays, index the rendered
objects, and turn a container spec into the command line Kubernetes would run."""
import os
import re
import shutil
import subprocess

import yaml

SOURCE_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
K8S_DIR = os.path.join(SOURCE_DIR, "deploy", "k8s")
OVERLAYS = ["cpu", "gpu-tp8", "gpu-tp8-pp2"]
# The Kubernetes version the manifests are validated against (kubernetes-validate).
KUBERNETES_VERSION = "1.31.0"


def kubectl():
    """The renderer: $STRATA_KUBECTL, else kubectl on PATH (scripts/install_deps.sh
    installs Debian's kubernetes-client when there is none)."""
    path = os.environ.get("STRATA_KUBECTL") or shutil.which("kubectl")
    if not path:
        raise RuntimeError("no kubectl: run scripts/install_deps.sh (Debian's kubernetes-client)")
    return path


def render_text(overlay, renderer=None):
    out = subprocess.run([renderer or kubectl(), "kustomize", os.path.join(K8S_DIR, "overlays", overlay)],
                         check=True, capture_output=True, text=True)
    return out.stdout


def canonical(docs):
    """Documents sorted by (kind, namespace, name); renderers differ only in order."""
    return sorted(docs, key=lambda d: (d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"]))


def render(overlay, renderer=None):
    return canonical([d for d in yaml.safe_load_all(render_text(overlay, renderer)) if d])


def dump(docs):
    return yaml.safe_dump_all(docs, sort_keys=True, default_flow_style=False, width=1 << 20)


def golden_path(overlay):
    return os.path.join(K8S_DIR, "rendered", overlay + ".yaml")


def find(docs, kind, name):
    hits = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(hits) == 1, f"expected one {kind}/{name}, found {len(hits)}"
    return hits[0]


def pod_spec(obj):
    if obj["kind"] == "LeaderWorkerSet":
        return obj["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]
    return obj["spec"]["template"]["spec"]


def container(obj, name):
    (c,) = [c for c in pod_spec(obj)["containers"] if c["name"] == name]
    return c


def container_env(docs, c, fields):
    """The environment Kubernetes gives container c: envFrom ConfigMaps, then env
    (value, configMapKeyRef, or fieldRef looked up in `fields`), later entries win."""
    env = {}
    for src in c.get("envFrom", []):
        env.update(find(docs, "ConfigMap", src["configMapRef"]["name"])["data"])
    for e in c.get("env", []):
        if "value" in e:
            env[e["name"]] = expand(e["value"], env)
        elif "configMapKeyRef" in e["valueFrom"]:
            ref = e["valueFrom"]["configMapKeyRef"]
            env[e["name"]] = find(docs, "ConfigMap", ref["name"])["data"][ref["key"]]
        else:
            env[e["name"]] = fields[e["valueFrom"]["fieldRef"]["fieldPath"]]
    return env


def expand(s, env):
    """Kubernetes' $(VAR) expansion in command, args and env values."""
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m.group(1), m.group(0)), s)


def command_line(c, env):
    return [expand(a, env) for a in c.get("command", []) + c.get("args", [])]


def port_number(c, port):
    """A probe's or Service's port (number or containerPort name) as a number."""
    if isinstance(port, int):
        return port
    (p,) = [p["containerPort"] for p in c["ports"] if p["name"] == port]
    return p


def flag_value(args, flag):
    i = args.index(flag)
    return args[i + 1]
