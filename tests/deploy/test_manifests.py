"""Every rendered manifest, offline: rendered output matches deploy/k8s/rendered/,
each document validates against the Kubernetes schemas (kubernetes-validate, strict,
Kubernetes KUBERNETES_VERSION) or, for custom resources, against the CRD schemas in
crds/; and the cross-references Kubernetes does not check (ports, probes, sizes,
selectors) agree."""
import copy
import json
import os

import jsonschema
import kubernetes_validate
import pytest

import deploy_lib as dl

CRD_DIR = os.path.join(os.path.dirname(__file__), "crds")
CRDS = {  # (apiVersion, kind) -> schema file
    ("leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet"): "leaderworkerset.x-k8s.io_v1_LeaderWorkerSet.json",
    ("keda.sh/v1alpha1", "ScaledObject"): "keda.sh_v1alpha1_ScaledObject.json",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "monitoring.coreos.com_v1_ServiceMonitor.json",
    ("cert-manager.io/v1", "Certificate"): "cert-manager.io_v1_Certificate.json",
    ("cert-manager.io/v1", "Issuer"): "cert-manager.io_v1_Issuer.json",
}
CORE_KINDS = {"ConfigMap", "Deployment", "NetworkPolicy", "PersistentVolumeClaim", "PodDisruptionBudget", "Service",
              "StatefulSet"}


@pytest.fixture(scope="module", params=dl.OVERLAYS)
def rendered(request):
    return request.param, dl.render(request.param)


def test_rendered_output_is_checked_in(rendered):
    overlay, docs = rendered
    with open(dl.golden_path(overlay)) as f:
        golden = f.read()
    # The check-in has a one-line header; compare the documents.
    assert dl.dump(docs) == golden.split("\n", 1)[1], \
        f"deploy/k8s/rendered/{overlay}.yaml is stale: run deploy/k8s/render.py"


def strict_crd_schema(node):
    """additionalProperties: false wherever an object lists its properties and does
    not preserve unknown fields (what kubectl's strict field validation enforces)."""
    if isinstance(node, dict):
        node = {k: strict_crd_schema(v) for k, v in node.items()}
        if ("properties" in node and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")):
            node["additionalProperties"] = False
        return node
    if isinstance(node, list):
        return [strict_crd_schema(v) for v in node]
    return node


def crd_validator(api_version, kind):
    with open(os.path.join(CRD_DIR, CRDS[(api_version, kind)])) as f:
        schema = strict_crd_schema(json.load(f)["schema"])
    schema["properties"]["metadata"] = {"type": "object", "required": ["name"], "properties": {
        "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63},
        "namespace": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    }, "additionalProperties": False}
    return jsonschema.Draft7Validator(schema)


def test_every_document_validates(rendered):
    overlay, docs = rendered
    assert docs
    for doc in docs:
        key = (doc["apiVersion"], doc["kind"])
        what = f"{overlay}: {doc['kind']}/{doc['metadata']['name']}"
        if key in CRDS:
            errors = sorted(crd_validator(*key).iter_errors(doc), key=str)
            assert not errors, f"{what}: " + "; ".join(
                f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors[:5])
        else:
            assert doc["kind"] in CORE_KINDS, f"{what}: no schema known for this kind (add one, never skip)"
            try:
                kubernetes_validate.validate(doc, dl.KUBERNETES_VERSION, strict=True)
            except kubernetes_validate.ValidationError as e:
                pytest.fail(f"{what}: {e.path}: {e.message}")


def test_validators_reject_bad_documents():
    """The checks above can fail: a misspelt field in a core and in a custom resource."""
    docs = dl.render("gpu-tp8-pp2")
    sts = copy.deepcopy(dl.find(dl.render("cpu"), "StatefulSet", "strata-worker"))
    sts["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(sts, dl.KUBERNETES_VERSION, strict=True)
    lws = copy.deepcopy(dl.find(docs, "LeaderWorkerSet", "strata-worker"))
    lws["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"
    assert list(crd_validator(lws["apiVersion"], lws["kind"]).iter_errors(lws))
    lws = copy.deepcopy(dl.find(docs, "LeaderWorkerSet", "strata-worker"))
    lws["spec"]["leaderWorkerTemplate"]["restartPolicy"] = "Sometimes"
    assert list(crd_validator(lws["apiVersion"], lws["kind"]).iter_errors(lws))
    cert = copy.deepcopy(dl.find(docs, "Certificate", "strata-coordinator-tls"))
    cert["spec"]["dnsName"] = cert["spec"].pop("dnsNames")
    assert list(crd_validator(cert["apiVersion"], cert["kind"]).iter_errors(cert))
    cert = copy.deepcopy(dl.find(docs, "Certificate", "strata-worker-tls"))
    cert["spec"]["usages"] = ["client-auth"]
    assert list(crd_validator(cert["apiVersion"], cert["kind"]).iter_errors(cert))
    issuer = copy.deepcopy(dl.find(docs, "Issuer", "strata-ca"))
    issuer["spec"]["ca"]["secret"] = issuer["spec"]["ca"].pop("secretName")
    assert list(crd_validator(issuer["apiVersion"], issuer["kind"]).iter_errors(issuer))
    policy = copy.deepcopy(dl.find(docs, "NetworkPolicy", "strata-worker"))
    policy["spec"]["ingres"] = policy["spec"].pop("ingress")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(policy, dl.KUBERNETES_VERSION, strict=True)


def workloads(docs):
    return [d for d in docs if d["kind"] in ("Deployment", "StatefulSet", "LeaderWorkerSet")]


def pod_labels(obj):
    if obj["kind"] == "LeaderWorkerSet":
        return obj["spec"]["leaderWorkerTemplate"]["workerTemplate"]["metadata"]["labels"]
    return obj["spec"]["template"]["metadata"]["labels"]


def selects(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


def coordinator_json(docs):
    return json.loads(dl.find(docs, "ConfigMap", "strata-config")["data"]["coordinator.json"])


def test_service_ports_reach_container_ports(rendered):
    overlay, docs = rendered
    for svc in (d for d in docs if d["kind"] == "Service" and d["spec"].get("selector")):
        targets = [w for w in workloads(docs) if selects(svc["spec"]["selector"], pod_labels(w))]
        assert targets, f"{overlay}: Service {svc['metadata']['name']} selects no pods"
        for port in svc["spec"].get("ports", []):
            for w in targets:
                ports = {(p["name"], p["containerPort"]) for c in dl.pod_spec(w)["containers"]
                         for p in c.get("ports", [])}
                t = port["targetPort"]
                assert any(t in (n, num) for n, num in ports), \
                    f"{overlay}: Service {svc['metadata']['name']} port {port['name']} -> {t}: no such containerPort"


def test_coordinator_flags_ports_and_probes_agree(rendered):
    overlay, docs = rendered
    dep = dl.find(docs, "Deployment", "strata-coordinator")
    c = dl.container(dep, "coordinator")
    args = c["args"]
    by_name = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert int(dl.flag_value(args, "--port")) == by_name["grpc"]
    assert int(dl.flag_value(args, "--metrics-port")) == by_name["metrics"]
    assert int(dl.flag_value(args, "--worker-port")) == by_name["workers"]
    assert int(dl.flag_value(args, "--health-port")) == by_name["health"]
    # The kubelet's probes speak no TLS: readiness on the plaintext health port,
    # liveness on the (plaintext) metrics port, never on the TLS ports.
    assert dl.port_number(c, c["readinessProbe"]["grpc"]["port"]) == by_name["health"]
    assert dl.port_number(c, c["livenessProbe"]["httpGet"]["port"]) == by_name["metrics"]
    assert dep["spec"]["strategy"]["type"] == "Recreate" and dep["spec"]["replicas"] == 1
    grace = float(dl.flag_value(args, "--shutdown-grace-s"))
    assert dl.pod_spec(dep)["terminationGracePeriodSeconds"] >= grace + 15, \
        "terminationGracePeriodSeconds must leave room after --shutdown-grace-s"
    # The config file is mounted where --config says.
    (mount,) = [m for m in c["volumeMounts"] if m["name"] == "config"]
    assert dl.flag_value(args, "--config") == mount["mountPath"] + "/coordinator.json"


def test_servicemonitor_scrapes_the_metrics_port(rendered):
    overlay, docs = rendered
    (sm,) = [d for d in docs if d["kind"] == "ServiceMonitor"]
    svcs = [d for d in docs if d["kind"] == "Service" and selects(sm["spec"]["selector"]["matchLabels"],
                                                                  d["metadata"].get("labels", {}))]
    assert len(svcs) == 1, "the ServiceMonitor must select exactly one Service (no double scrape)"
    (ep,) = sm["spec"]["endpoints"]
    (port,) = [p for p in svcs[0]["spec"]["ports"] if p["name"] == ep["port"]]
    c = dl.container(dl.find(docs, "Deployment", "strata-coordinator"), "coordinator")
    assert dl.port_number(c, port["targetPort"]) == int(dl.flag_value(c["args"], "--metrics-port"))
    assert ep["path"] == "/metrics"


def worker(docs):
    (w,) = [d for d in workloads(docs) if d["metadata"]["name"] == "strata-worker"]
    return w


def test_workers_reach_the_coordinator_before_it_is_ready(rendered):
    overlay, docs = rendered
    w = worker(docs)
    c = dl.container(w, "worker")
    env = dl.container_env(docs, c, {"metadata.name": "strata-worker-0", "status.podIP": "10.0.0.1",
                                     "metadata.labels['leaderworkerset.sigs.k8s.io/group-index']": "0"})
    coord = dl.container(dl.find(docs, "Deployment", "strata-coordinator"), "coordinator")
    for var, flag in (("STRATA_COORDINATOR", "--worker-port"), ("STRATA_COORDINATOR_METRICS", "--metrics-port")):
        host, port = env[var].rsplit(":", 1)
        svc = dl.find(docs, "Service", host)
        assert svc["spec"].get("publishNotReadyAddresses") is True, \
            f"{var}: {host} must publish not-ready addresses (the coordinator is Ready only after workers join)"
        (p,) = [p for p in svc["spec"]["ports"] if p["port"] == int(port)]
        assert dl.port_number(coord, p["targetPort"]) == int(dl.flag_value(coord["args"], flag))


def test_worker_pods(rendered):
    overlay, docs = rendered
    w = worker(docs)
    spec = dl.pod_spec(w)
    c = dl.container(w, "worker")
    env = dl.container_env(docs, c, {"metadata.name": "strata-worker-0", "status.podIP": "10.0.0.1",
                                     "metadata.labels['leaderworkerset.sigs.k8s.io/group-index']": "0"})
    conf = coordinator_json(docs)
    tp = int(env["STRATA_TP_SIZE"])
    assert tp == conf["tensor-parallel-size"]
    pp = w["spec"]["leaderWorkerTemplate"]["size"] if w["kind"] == "LeaderWorkerSet" else 1
    assert pp == conf["pipeline-parallel-size"]
    # /dev/shm is memory-backed.
    (shm,) = [m for m in c["volumeMounts"] if m["mountPath"] == "/dev/shm"]
    (vol,) = [v for v in spec["volumes"] if v["name"] == shm["name"]]
    assert vol["emptyDir"]["medium"] == "Memory" and vol["emptyDir"]["sizeLimit"]
    res = c["resources"]
    if env["STRATA_DEVICE"] == "cuda":
        assert res["requests"]["nvidia.com/gpu"] == res["limits"]["nvidia.com/gpu"] == str(tp), \
            "one GPU per tensor-parallel rank, all in the pod"
        assert env["NCCL_SOCKET_IFNAME"]
        assert c["image"].startswith("strata-cuda")
    else:
        assert "nvidia.com/gpu" not in res.get("requests", {})
    assert c["readinessProbe"]["exec"]["command"] == ["strata-worker-ready"]
    assert "livenessProbe" not in c, "strata-worker has no port to probe (docs/deploy.md)"
    assert spec["terminationGracePeriodSeconds"] >= 30
    # The PodDisruptionBudget covers exactly the worker pods.
    (pdb,) = [d for d in docs if d["kind"] == "PodDisruptionBudget"]
    assert selects(pdb["spec"]["selector"]["matchLabels"], pod_labels(w))


def test_every_container_is_bounded_and_unprivileged(rendered):
    overlay, docs = rendered
    for w in workloads(docs):
        spec = dl.pod_spec(w)
        assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] != 0
        for c in spec.get("initContainers", []) + spec["containers"]:
            assert c["resources"]["requests"]["cpu"] and c["resources"]["requests"]["memory"]
            assert c["resources"]["limits"]["memory"], f"{c['name']}: memory limit"
            assert c["securityContext"]["allowPrivilegeEscalation"] is False
        names = {v["name"] for v in spec["volumes"]}
        for c in spec.get("initContainers", []) + spec["containers"]:
            assert {m["name"] for m in c.get("volumeMounts", [])} <= names
        for v in spec["volumes"]:
            if "configMap" in v:
                dl.find(docs, "ConfigMap", v["configMap"]["name"])
            if "persistentVolumeClaim" in v:
                dl.find(docs, "PersistentVolumeClaim", v["persistentVolumeClaim"]["claimName"])


def test_autoscaling_targets_whole_replicas(rendered):
    overlay, docs = rendered
    scaled = [d for d in docs if d["kind"] == "ScaledObject"]
    if overlay == "cpu":
        assert not scaled, "the single-node CPU overlay does not autoscale"
        assert coordinator_json(docs)["replicas"] == worker(docs)["spec"]["replicas"]
        return
    (so,) = scaled
    ref = so["spec"]["scaleTargetRef"]
    target = worker(docs)
    assert (ref["kind"], ref["name"], ref["apiVersion"]) == (target["kind"], target["metadata"]["name"],
                                                              target["apiVersion"])
    # Each unit of the target is one model replica; the coordinator has a slot for each.
    assert so["spec"]["maxReplicaCount"] == coordinator_json(docs)["replicas"]
    assert 1 <= so["spec"]["minReplicaCount"] <= so["spec"]["maxReplicaCount"]
    queries = " ".join(t["metadata"]["query"] for t in so["spec"]["triggers"])
    for metric in ("strata_num_requests_waiting", "strata_kv_blocks_used", "strata_kv_blocks_total"):
        assert metric in queries
    for d in (so, *[d for d in docs if d["kind"] == "ServiceMonitor"]):
        assert d["metadata"]["labels"]["strata.dev/requires-crd"] == "true"


# --- Transport security: certificates from Secrets (docs/deploy.md, "Transport security")

# The key of a cert-manager Secret (tls.crt, tls.key, ca.crt) each TLS flag reads.
TLS_FILE_FLAGS = {
    "--tls-cert": "tls.crt", "--tls-key": "tls.key", "--tls-client-ca": "ca.crt", "--tls-ca": "ca.crt",
    "--worker-tls-cert": "tls.crt", "--worker-tls-key": "tls.key", "--worker-tls-ca": "ca.crt",
}
COORDINATOR_TLS_FLAGS = ("--tls-cert", "--tls-key", "--worker-tls-cert", "--worker-tls-key", "--worker-tls-ca")
WORKER_TLS_FLAGS = ("--tls-ca", "--tls-cert", "--tls-key")
# API keys (docs/deploy.md, "API keys"): off unless coordinator.json names this
# file of the optional Secret strata-api-keys, which the coordinator always mounts.
API_KEYS_SECRET, API_KEYS_FILE = "strata-api-keys", "keys"
API_KEYS_PATH = "/var/run/secrets/strata/api-keys/keys"
CLUSTER_DOMAIN = "cluster.local"
TLS_ISSUER_LABEL = "strata.dev/tls-issuer"


def last_flag(args, flag):
    """The value of the last `flag VALUE` in args (the one a parser keeps), or None."""
    values = [args[i + 1] for i, a in enumerate(args[:-1]) if a == flag]
    return values[-1] if values else None


def coordinator_flags(docs):
    """The coordinator's flags as it parses them: coordinator.json's keys (as --key
    VALUE, before the command line), then the container's args."""
    args = []
    for key, value in coordinator_json(docs).items():
        args += ["--" + key.replace("_", "-"), str(value)]
    return args + dl.container(dl.find(docs, "Deployment", "strata-coordinator"), "coordinator")["args"]


def secret_file(spec, c, path):
    """(mount, volume, file name) of the Secret volume holding `path` in container c
    (the longest mountPath that contains it), or None when no Secret volume does."""
    mounts = [m for m in c.get("volumeMounts", []) if path.startswith(m["mountPath"].rstrip("/") + "/")]
    if not mounts:
        return None
    m = max(mounts, key=lambda m: len(m["mountPath"]))
    (v,) = [v for v in spec["volumes"] if v["name"] == m["name"]]
    if "secret" not in v:
        return None
    return m, v, path[len(m["mountPath"].rstrip("/")) + 1:]


def certificate_for_secret(docs, secret_name):
    hits = [d for d in docs if d["kind"] == "Certificate" and d["spec"]["secretName"] == secret_name]
    return hits[0] if len(hits) == 1 else None


def secret_volume_problems(docs, w):
    """Every Secret volume is a Certificate's Secret or optional (else the pod never
    starts), readable by the pod's fsGroup and not by others, mounted read-only as a
    whole directory (a subPath mount never sees a renewed certificate)."""
    out = []
    spec = dl.pod_spec(w)
    what = f"{w['kind']}/{w['metadata']['name']}"
    for v in (v for v in spec["volumes"] if "secret" in v):
        sec = v["secret"]
        if certificate_for_secret(docs, sec["secretName"]) is None and not sec.get("optional"):
            out.append(f"{what}: Secret {sec['secretName']} is no Certificate's secretName and not optional")
        if "items" in sec:
            out.append(f"{what}: Secret volume {v['name']} lists items (mount the Secret's keys as they are)")
        mode = sec.get("defaultMode", 0o644)
        if mode & 0o007 or not mode & 0o040 or not spec["securityContext"].get("fsGroup"):
            out.append(f"{what}: Secret volume {v['name']} mode {oct(mode)}: group-readable (fsGroup), not world")
        for c in spec.get("initContainers", []) + spec["containers"]:
            for m in (m for m in c.get("volumeMounts", []) if m["name"] == v["name"]):
                if m.get("readOnly") is not True or "subPath" in m or "subPathExpr" in m:
                    out.append(f"{what}: {c['name']} mounts Secret volume {v['name']} without readOnly or with subPath")
    return out


def tls_file_problems(docs, w, c, args, required):
    """The TLS flags in `required` are given; each TLS flag's file lies in a mounted
    Secret under the key cert-manager writes. Returns (problems, {flag: Certificate})."""
    out, certs = [], {}
    spec = dl.pod_spec(w)
    what = f"{w['kind']}/{w['metadata']['name']}"
    out += [f"{what}: {flag} missing" for flag in required if last_flag(args, flag) is None]
    for flag, key in TLS_FILE_FLAGS.items():
        path = last_flag(args, flag)
        if path is None:
            continue
        found = secret_file(spec, c, path)
        if found is None:
            out.append(f"{what}: {flag} {path} is not in a mounted Secret volume")
            continue
        m, v, name = found
        if name != key:
            out.append(f"{what}: {flag} {path} reads '{name}' of Secret {v['secret']['secretName']}, not '{key}'")
        cert = certificate_for_secret(docs, v["secret"]["secretName"])
        if cert is None:
            out.append(f"{what}: {flag}: Secret {v['secret']['secretName']} is no Certificate's secretName")
        else:
            certs[flag] = cert
    for cert_flag, key_flag in (("--tls-cert", "--tls-key"), ("--worker-tls-cert", "--worker-tls-key")):
        if cert_flag in certs and certs.get(key_flag) is not certs[cert_flag]:
            out.append(f"{what}: {cert_flag} and {key_flag} come from different Secrets")
    return out, certs


def issuer_chain_problems(docs, cert):
    """cert's Issuer is in the manifests and is a CA Issuer whose CA is a Certificate
    (isCA) issued by a self-signed Issuer; cert itself is no CA."""
    name = cert["metadata"]["name"]
    ref = cert["spec"]["issuerRef"]
    if (ref.get("kind", "Issuer"), ref.get("group", "cert-manager.io")) != ("Issuer", "cert-manager.io"):
        return [f"Certificate {name}: issuerRef {ref} is not a cert-manager Issuer of this namespace"]
    issuers = [d for d in docs if d["kind"] == "Issuer" and d["metadata"]["name"] == ref["name"]]
    if not issuers or "ca" not in issuers[0]["spec"]:
        return [f"Certificate {name}: Issuer {ref['name']} is not a CA Issuer in the manifests"]
    ca = certificate_for_secret(docs, issuers[0]["spec"]["ca"]["secretName"])
    if ca is None or not ca["spec"].get("isCA"):
        return [f"Issuer {ref['name']}: its CA Secret is no isCA Certificate's"]
    boot = [d for d in docs if d["kind"] == "Issuer" and d["metadata"]["name"] == ca["spec"]["issuerRef"]["name"]]
    out = [] if boot and "selfSigned" in boot[0]["spec"] else [f"CA {ca['metadata']['name']}: not self-signed"]
    if cert["spec"].get("isCA"):
        out.append(f"Certificate {name}: a serving or client certificate must not be a CA")
    return out


def service_names(svc):
    name, ns = svc["metadata"]["name"], svc["metadata"]["namespace"]
    return [name, f"{name}.{ns}", f"{name}.{ns}.svc", f"{name}.{ns}.svc.{CLUSTER_DOMAIN}"]


def tls_problems(docs):
    out = []
    dep = dl.find(docs, "Deployment", "strata-coordinator")
    coord = dl.container(dep, "coordinator")
    cargs = coordinator_flags(docs)
    if "--plaintext" in cargs:
        out.append("the coordinator runs with --plaintext")
    problems, ccerts = tls_file_problems(docs, dep, coord, cargs, COORDINATOR_TLS_FLAGS)
    out += problems
    w = worker(docs)
    wc = dl.container(w, "worker")
    problems, wcerts = tls_file_problems(docs, w, wc, wc["args"], WORKER_TLS_FLAGS)
    out += problems
    for obj in (dep, w):
        out += secret_volume_problems(docs, obj)
    for api_keys in (API_KEYS_PATH, last_flag(cargs, "--api-keys-file")):
        if api_keys is None:
            continue
        found = secret_file(dl.pod_spec(dep), coord, api_keys)
        if found is None or (found[1]["secret"]["secretName"], found[2]) != (API_KEYS_SECRET, API_KEYS_FILE) \
                or not found[1]["secret"].get("optional"):
            out.append(f"--api-keys-file {api_keys} is not '{API_KEYS_FILE}' of the mounted optional Secret "
                       f"{API_KEYS_SECRET}")
    for cert in {id(c): c for c in list(ccerts.values()) + list(wcerts.values())}.values():
        out += issuer_chain_problems(docs, cert)
    # Bringing your own certificates = applying without these (docs/deploy.md).
    out += [f"{d['kind']}/{d['metadata']['name']}: no label {TLS_ISSUER_LABEL}=cert-manager"
            for d in docs if d["apiVersion"].startswith("cert-manager.io/")
            and d["metadata"].get("labels", {}).get(TLS_ISSUER_LABEL) != "cert-manager"]
    # Usages: the coordinator serves, the workers are clients.
    for flag, certs, usage in (("--tls-cert", ccerts, "server auth"), ("--worker-tls-cert", ccerts, "server auth"),
                               ("--tls-cert", wcerts, "client auth")):
        if flag in certs and usage not in certs[flag]["spec"].get("usages", []):
            out.append(f"Certificate {certs[flag]['metadata']['name']} ({flag}): usages lack '{usage}'")
    # Each side trusts the CA that signed the other (ca.crt of a cert-manager
    # Secret is the CA of its Issuer).
    for ca_flag, ca_certs, peer_flag, peer_certs in (("--worker-tls-ca", ccerts, "--tls-cert", wcerts),
                                                     ("--tls-ca", wcerts, "--worker-tls-cert", ccerts)):
        if ca_flag in ca_certs and peer_flag in peer_certs and \
                ca_certs[ca_flag]["spec"]["issuerRef"]["name"] != peer_certs[peer_flag]["spec"]["issuerRef"]["name"]:
            out.append(f"{ca_flag} trusts the Issuer {ca_certs[ca_flag]['spec']['issuerRef']['name']}, but the peer's "
                       f"certificate comes from {peer_certs[peer_flag]['spec']['issuerRef']['name']}")
    # Names: every name of every Service in front of the coordinator on the client
    # certificate; the name the workers dial (or --tls-server-name) on the worker one.
    if "--tls-cert" in ccerts:
        names = ccerts["--tls-cert"]["spec"].get("dnsNames", [])
        for svc in (d for d in docs if d["kind"] == "Service" and d["spec"].get("selector")
                    and selects(d["spec"]["selector"], pod_labels(dep))):
            out += [f"Certificate {ccerts['--tls-cert']['metadata']['name']}: dnsNames lack {n} (Service "
                    f"{svc['metadata']['name']})" for n in service_names(svc) if n not in names]
    if "--worker-tls-cert" in ccerts:
        env = dl.container_env(docs, wc, WORKER_FIELDS)
        dialled = last_flag(wc["args"], "--tls-server-name") or env["STRATA_COORDINATOR"].rsplit(":", 1)[0]
        if dialled not in ccerts["--worker-tls-cert"]["spec"].get("dnsNames", []):
            out.append(f"workers dial {dialled}, which the coordinator's worker-port certificate does not name")
    return out


WORKER_FIELDS = {"metadata.name": "strata-worker-0", "status.podIP": "10.0.0.1",
                 "metadata.labels['leaderworkerset.sigs.k8s.io/group-index']": "0"}


def test_tls_files_come_from_certificates(rendered):
    overlay, docs = rendered
    assert tls_problems(docs) == [], overlay


# --- NetworkPolicies: who may connect to which port

# Prometheus' namespace: the coordinator's NetworkPolicy admits scrapes from it and
# the ScaledObjects query the Prometheus there.
MONITORING_NAMESPACE = "monitoring"


def label_selector(sel):
    """matchLabels of a selector; the evaluation below understands nothing else."""
    assert set(sel) <= {"matchLabels"}, f"selector {sel}: only matchLabels is evaluated here"
    return sel.get("matchLabels", {})


def container_ports(w):
    return {p["name"]: p["containerPort"] for c in dl.pod_spec(w)["containers"] for p in c.get("ports", [])
            if p.get("protocol", "TCP") == "TCP"}


def peer_admits(peer, src, policy_ns):
    if "ipBlock" in peer:
        return True  # over-approximated: an ipBlock may match any pod's address
    if "namespaceSelector" in peer:
        if not selects(label_selector(peer["namespaceSelector"]), src["namespace_labels"]):
            return False
    elif src["namespace"] != policy_ns:
        return False
    return selects(label_selector(peer.get("podSelector", {})), src["labels"])


def port_admits(rule_port, port, named):
    if rule_port.get("protocol", "TCP") != "TCP":
        return False
    p = rule_port.get("port")
    if p is None:
        return True
    if isinstance(p, str):
        return named.get(p) == port
    return p <= port <= rule_port.get("endPort", p)


def reachable(docs, src, dst, port):
    """Whether pod `src` ({namespace, namespace_labels, labels}) may open a TCP
    connection to `port` of a pod of workload `dst` under the rendered NetworkPolicies
    (Kubernetes' semantics: a pod no Ingress policy selects admits everything;
    otherwise some rule of some selecting policy must admit both peer and port)."""
    ns = dst["metadata"]["namespace"]
    policies = [p for p in docs if p["kind"] == "NetworkPolicy" and p["metadata"]["namespace"] == ns
                and selects(label_selector(p["spec"]["podSelector"]), pod_labels(dst))
                and "Ingress" in p["spec"].get("policyTypes", ["Ingress"])]
    if not policies:
        return True
    named = container_ports(dst)
    return any((not rule.get("from") or any(peer_admits(peer, src, ns) for peer in rule["from"]))
               and (not rule.get("ports") or any(port_admits(p, port, named) for p in rule["ports"]))
               for policy in policies for rule in policy["spec"].get("ingress", []))


def pod_in(namespace, labels):
    return {"namespace": namespace, "namespace_labels": {"kubernetes.io/metadata.name": namespace}, "labels": labels}


def service_target(docs, address, c):
    """The container port behind a Service address "NAME:PORT"."""
    name, port = address.rsplit(":", 1)
    (p,) = [p for p in dl.find(docs, "Service", name)["spec"]["ports"] if p["port"] == int(port)]
    return dl.port_number(c, p["targetPort"])


def policy_problems(docs):
    out = []
    for policy in (d for d in docs if d["kind"] == "NetworkPolicy"):
        name = policy["metadata"]["name"]
        targets = [w for w in workloads(docs) if selects(label_selector(policy["spec"]["podSelector"]), pod_labels(w))]
        if not targets:
            out.append(f"NetworkPolicy {name} selects no pods")
        for rule in policy["spec"].get("ingress", []):
            for p in rule.get("ports", []):
                for w in targets:
                    if p.get("port") is not None and p["port"] not in container_ports(w) and \
                            p["port"] not in container_ports(w).values():
                        out.append(f"NetworkPolicy {name}: port {p['port']} is no containerPort of "
                                   f"{w['metadata']['name']}")
            for peer in rule.get("from", []):
                if "podSelector" in peer and "namespaceSelector" not in peer and not any(
                        selects(label_selector(peer["podSelector"]), pod_labels(w)) for w in workloads(docs)):
                    out.append(f"NetworkPolicy {name}: from {peer['podSelector']} selects no pods")
    dep = dl.find(docs, "Deployment", "strata-coordinator")
    coord = dl.container(dep, "coordinator")
    w = worker(docs)
    ns = dep["metadata"]["namespace"]
    src = {"worker": pod_in(ns, pod_labels(w)), "coordinator": pod_in(ns, pod_labels(dep)),
           "neighbour": pod_in(ns, {"app.kubernetes.io/name": "something-else"}),
           "prometheus": pod_in(MONITORING_NAMESPACE, {"app.kubernetes.io/name": "prometheus"}),
           "elsewhere": pod_in("default", {"app.kubernetes.io/name": "strata-worker"})}
    flags = coordinator_flags(docs)
    port = {f: int(last_flag(flags, "--" + f)) for f in ("port", "worker-port", "metrics-port", "health-port")}
    # Who may reach what: (destination, port, sources allowed); every other source in
    # `src` must be refused. The kubelet's probes come from the node, always allowed.
    expected = [
        (dep, port["port"], set(src) - {"coordinator"}),
        (dep, port["worker-port"], {"worker"}),
        (dep, port["metrics-port"], {"worker", "prometheus"}),
        (dep, port["health-port"], set()),
        # Workers: every port (Gloo, NCCL) from workers only.
        (w, 29500, {"worker"}),
        (w, 1, {"worker"}),
    ]
    for dst, p, allowed in expected:
        for s, pod in src.items():
            if s == "coordinator" and dst is dep:
                continue  # the only coordinator pod: a pod can always reach itself
            if reachable(docs, pod, dst, p) != (s in allowed):
                out.append(f"{s} {'cannot' if s in allowed else 'can'} reach {dst['metadata']['name']}:{p}")
    # The traffic the deployment needs, from the addresses it uses.
    env = dl.container_env(docs, dl.container(w, "worker"), WORKER_FIELDS)
    for var in ("STRATA_COORDINATOR", "STRATA_COORDINATOR_METRICS"):
        if not reachable(docs, src["worker"], dep, service_target(docs, env[var], coord)):
            out.append(f"workers cannot reach {var} {env[var]}")
    for sm in (d for d in docs if d["kind"] == "ServiceMonitor"):
        (svc,) = [d for d in docs if d["kind"] == "Service" and selects(sm["spec"]["selector"]["matchLabels"],
                                                                         d["metadata"].get("labels", {}))]
        for ep in sm["spec"]["endpoints"]:
            (sp,) = [p for p in svc["spec"]["ports"] if p["name"] == ep["port"]]
            if not reachable(docs, src["prometheus"], dep, dl.port_number(coord, sp["targetPort"])):
                out.append(f"Prometheus cannot scrape ServiceMonitor {sm['metadata']['name']} port {ep['port']}")
    for so in (d for d in docs if d["kind"] == "ScaledObject"):
        for t in so["spec"]["triggers"]:
            host = t["metadata"]["serverAddress"].split("://", 1)[1].split(":")[0]
            if host.split(".")[1] != MONITORING_NAMESPACE:
                out.append(f"ScaledObject {so['metadata']['name']}: Prometheus at {host}, "
                           f"not in {MONITORING_NAMESPACE}")
    return out


def test_network_policies(rendered):
    overlay, docs = rendered
    assert {d["metadata"]["name"] for d in docs if d["kind"] == "NetworkPolicy"} == \
        {"strata-coordinator", "strata-worker"}, overlay
    assert policy_problems(docs) == [], overlay


def mutated(docs, kind, name, fn):
    docs = copy.deepcopy(docs)
    fn(dl.find(docs, kind, name))
    return docs


def test_tls_and_policy_checks_can_fail():
    """Each check above fails on a manifest broken in the way it guards against."""
    for overlay in ("cpu", "gpu-tp8-pp2"):
        docs = dl.render(overlay)
        assert tls_problems(docs) == [] and policy_problems(docs) == []
        wkind = worker(docs)["kind"]

        def coordinator_args(fn):
            return mutated(docs, "Deployment", "strata-coordinator",
                           lambda d: fn(dl.container(d, "coordinator")["args"]))

        def worker_args(fn):
            return mutated(docs, wkind, "strata-worker", lambda d: fn(dl.container(d, "worker")["args"]))

        def set_flag(flag, value):
            def fn(args):
                args[args.index(flag) + 1] = value
            return fn

        broken = {
            "--plaintext": coordinator_args(lambda a: a.append("--plaintext")),
            "no --worker-tls-ca": coordinator_args(lambda a: a.__delitem__(slice(a.index("--worker-tls-ca"),
                                                                                 a.index("--worker-tls-ca") + 2))),
            "CA outside the Secret": worker_args(set_flag("--tls-ca", "/etc/strata/ca.crt")),
            "wrong key": coordinator_args(set_flag("--tls-key", "/var/run/secrets/strata/tls/tls.crt")),
            "Secret without Certificate": mutated(docs, wkind, "strata-worker", lambda d: [
                v["secret"].update(secretName="strata-worker-cert") for v in dl.pod_spec(d)["volumes"]
                if v["name"] == "tls"]),
            "subPath mount": mutated(docs, "Deployment", "strata-coordinator", lambda d: [
                m.update(subPath="tls.crt") for m in dl.container(d, "coordinator")["volumeMounts"]
                if m["name"] == "tls"]),
            "world-readable": mutated(docs, "Deployment", "strata-coordinator", lambda d: [
                v["secret"].update(defaultMode=0o444) for v in dl.pod_spec(d)["volumes"] if v["name"] == "tls"]),
            "worker certificate for servers": mutated(docs, "Certificate", "strata-worker-tls",
                                                      lambda d: d["spec"].update(usages=["server auth"])),
            "dialled name missing": mutated(docs, "Certificate", "strata-coordinator-tls",
                                            lambda d: d["spec"].update(dnsNames=d["spec"]["dnsNames"][:4])),
            "namespace-qualified name missing": mutated(docs, "Certificate", "strata-coordinator-tls",
                                                        lambda d: d["spec"]["dnsNames"].remove(
                                                            "strata-coordinator.strata.svc")),
            "API keys mounted elsewhere": mutated(docs, "Deployment", "strata-coordinator", lambda d: [
                m.update(mountPath="/etc/strata-keys") for m in dl.container(d, "coordinator")["volumeMounts"]
                if m["name"] == "api-keys"]),
            "worker CA from another Issuer": mutated(docs, "Certificate", "strata-worker-tls",
                                                     lambda d: d["spec"]["issuerRef"].update(name="strata-selfsigned")),
        }
        for what, bad in broken.items():
            assert tls_problems(bad), f"{overlay}: {what} passed the TLS checks"
        broken = {
            "worker port open": mutated(docs, "NetworkPolicy", "strata-coordinator",
                                        lambda d: d["spec"]["ingress"][1].pop("from")),
            "metrics closed to workers": mutated(docs, "NetworkPolicy", "strata-coordinator",
                                                 lambda d: d["spec"]["ingress"][1]["ports"].pop()),
            "policy selects nothing": mutated(docs, "NetworkPolicy", "strata-worker",
                                              lambda d: d["spec"]["podSelector"]["matchLabels"].update(
                                                  {"app.kubernetes.io/name": "strata-workers"})),
            "port that no container has": mutated(docs, "NetworkPolicy", "strata-coordinator",
                                                  lambda d: d["spec"]["ingress"][0]["ports"][0].update(port="grcp")),
            "workers open to all": mutated(docs, "NetworkPolicy", "strata-worker",
                                           lambda d: d["spec"]["ingress"].append({})),
            "monitoring elsewhere": mutated(docs, "NetworkPolicy", "strata-coordinator",
                                            lambda d: d["spec"]["ingress"][2]["from"][0]["namespaceSelector"][
                                                "matchLabels"].update({"kubernetes.io/metadata.name": "prometheus"})),
        }
        for what, bad in broken.items():
            assert policy_problems(bad), f"{overlay}: {what} passed the NetworkPolicy checks"
