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
}
CORE_KINDS = {"ConfigMap", "Deployment", "PersistentVolumeClaim", "PodDisruptionBudget", "Service", "StatefulSet"}


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
    assert dl.port_number(c, c["readinessProbe"]["grpc"]["port"]) == by_name["grpc"]
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
