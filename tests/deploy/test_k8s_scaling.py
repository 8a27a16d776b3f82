"""Scaling and disruption manifests of deploy/k8s: KEDA ScaledObjects (the keda/ component) and
PodDisruptionBudgets (the base), checked against the Deployments and against the code's names.

No cluster runs here: the manifests are parsed and cross-checked, and rendered by kubectl's
kustomize where kubectl is installed. The consumer groups are the
workers' Faust app ids, the topics the registry's, the partition counts the settings' defaults.
The gateway is in no consumer group: it scales on CPU, in the same component.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from resontinex.app.faust_app import APP_IDS
from resontinex.app.settings import ROLES as CLI_ROLES
from resontinex.app.settings import Settings
from resontinex.topics import DEFAULT_PARTITIONS, REGISTRY, get

ROOT = Path(__file__).resolve().parents[2]
K8S_DIR = ROOT / "deploy" / "k8s"
KEDA_DIR = K8S_DIR / "keda"
COMPONENT = "app.kubernetes.io/component"
# The roles deploy/k8s runs, each a Deployment (the CLI may know more roles than these).
ROLES = {"core", "trajectory", "gateway"}
# The roles with a consumer group (a Faust app id), scaled on its lag; the others (the gateway,
# an HTTP server whose every replica reads every partition) on CPU.
GROUP_ROLES = ROLES & set(APP_IDS)
CPU_ROLES = ROLES - GROUP_ROLES
# The input topic each role's consumer group reads (the trajectory group reads only its own).
ROLE_TOPICS = {"trajectory": {"trajectory-requests"},
               "core": {spec.name for spec in REGISTRY if spec.direction == "in"} - {"trajectory-requests"}}
# KEDA wants every trigger metadata value as a string.
KAFKA_TRIGGER_KEYS = {"bootstrapServers", "consumerGroup", "topic", "lagThreshold", "activationLagThreshold",
                      "offsetResetPolicy", "allowIdleConsumers"}

Docs = dict[str, list[dict[str, Any]]]


def _load_dir(folder: Path) -> Docs:
    """The folder's YAML documents by kind, each with the file it came from."""
    by_kind: Docs = {}
    for path in sorted(folder.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            by_kind.setdefault(doc["kind"], []).append({**doc, "_file": path.name})
    return by_kind


@pytest.fixture(scope="module")
def base() -> Docs:
    return _load_dir(K8S_DIR)


@pytest.fixture(scope="module")
def keda() -> Docs:
    return _load_dir(KEDA_DIR)


@pytest.fixture(scope="module")
def settings() -> Settings:
    return Settings.from_env({})  # the defaults: no topic prefix, the default partition count


def _role(doc: dict[str, Any]) -> str:
    role: str = doc["metadata"]["labels"][COMPONENT]
    assert role in ROLES and role in CLI_ROLES, doc["metadata"]["name"]
    return role


def _deployment(base: Docs, name: str) -> dict[str, Any]:
    (doc,) = (d for d in base["Deployment"] if d["metadata"]["name"] == name)
    return doc


def _by_role(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out = {_role(doc): doc for doc in docs}
    assert len(out) == len(docs), "two documents for one role"
    return out


def _pod_env(deployment: dict[str, Any]) -> dict[str, str | None]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {item["name"]: item.get("value") for item in container["env"]}


def test_keda_is_a_component_the_base_can_take(keda: Docs, base: Docs) -> None:
    """A Component, not an overlay: kustomize refuses a kustomization that takes its parent
    folder as a resource; the base works without KEDA until the component is listed."""
    (component,) = keda["Component"]
    assert component["apiVersion"] == "kustomize.config.k8s.io/v1alpha1"
    assert component["resources"] == ["scaledobjects.yaml"]
    assert set(keda) == {"Component", "ScaledObject"}
    assert {doc["_file"] for doc in keda["ScaledObject"]} == {"scaledobjects.yaml"}
    assert "components" not in base["Kustomization"][0]


def _render(folder: Path) -> list[dict[str, Any]]:
    result = subprocess.run(["kubectl", "kustomize", str(folder)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="needs kubectl (kustomize is built in)")
def test_kustomize_renders_the_base_alone_and_with_the_keda_component(tmp_path: Path) -> None:
    """kubectl's own kustomize, offline: the base as shipped, then a copy with `components: [keda]`
    (the README's way to enable it)."""
    alone = _render(K8S_DIR)
    assert Counter(doc["kind"] for doc in alone) == {"ConfigMap": 1, "Deployment": 3, "Service": 2,
                                                      "PodDisruptionBudget": 3}
    assert all("replicas" in doc["spec"] for doc in alone if doc["kind"] == "Deployment")
    copy = tmp_path / "k8s"
    shutil.copytree(K8S_DIR, copy)
    with (copy / "kustomization.yaml").open("a", encoding="utf-8") as file:
        file.write("components:\n  - keda\n")
    scaled = _render(copy)
    assert Counter(doc["kind"] for doc in scaled) == {"ConfigMap": 1, "Deployment": 3, "Service": 2,
                                                       "PodDisruptionBudget": 3, "ScaledObject": 3}
    deployments = {doc["metadata"]["name"]: doc for doc in scaled if doc["kind"] == "Deployment"}
    assert not any("replicas" in doc["spec"] for doc in deployments.values())  # the HPA owns them
    targets = {doc["spec"]["scaleTargetRef"]["name"] for doc in scaled if doc["kind"] == "ScaledObject"}
    assert targets == set(deployments)


def test_one_scaled_object_per_role_targets_its_deployment(base: Docs, keda: Docs) -> None:
    scaled = _by_role(keda["ScaledObject"])
    assert set(scaled) == set(ROLES)
    for role, doc in scaled.items():
        assert doc["apiVersion"] == "keda.sh/v1alpha1"
        ref = doc["spec"]["scaleTargetRef"]
        assert ref.get("kind", "Deployment") == "Deployment" and ref.get("apiVersion", "apps/v1") == "apps/v1"
        target = _deployment(base, ref["name"])
        assert target["spec"]["template"]["metadata"]["labels"][COMPONENT] == role
        container = target["spec"]["template"]["spec"]["containers"][0]
        assert container["command"][container["command"].index("--role") + 1] == role


def test_roles_split_into_consumer_groups_and_the_gateway() -> None:
    assert GROUP_ROLES == {"core", "trajectory"} and CPU_ROLES == {"gateway"}
    assert ROLES <= set(CLI_ROLES)


@pytest.mark.parametrize("role", sorted(GROUP_ROLES))
def test_kafka_triggers_read_the_roles_consumer_group(base: Docs, keda: Docs, settings: Settings,
                                                      role: str) -> None:
    doc = _by_role(keda["ScaledObject"])[role]
    deployment = _deployment(base, doc["spec"]["scaleTargetRef"]["name"])
    triggers = doc["spec"]["triggers"]
    assert triggers and {trigger["type"] for trigger in triggers} == {"kafka"}
    topics = set()
    for trigger in triggers:
        meta = trigger["metadata"]
        assert set(meta) <= KAFKA_TRIGGER_KEYS and all(isinstance(v, str) for v in meta.values()), meta
        assert meta["consumerGroup"] == settings.topic_prefix + APP_IDS[role]  # the Faust app id is the group id
        assert meta["bootstrapServers"] == _pod_env(deployment)["KAFKA_BOOTSTRAP_SERVERS"]
        assert meta["topic"] == settings.topic(get(meta["topic"]).id)
        assert int(meta["lagThreshold"]) > 0
        assert meta["offsetResetPolicy"] == "earliest"  # faust_app.stream_app: consumer_auto_offset_reset
        assert meta.get("allowIdleConsumers", "false") == "false"
        topics.add(meta["topic"])
    assert topics <= ROLE_TOPICS[role]
    assert ("decision-requests" if role == "core" else "trajectory-requests") in topics


@pytest.mark.parametrize("role", sorted(GROUP_ROLES))
def test_replicas_are_bounded_by_the_partition_count(keda: Docs, settings: Settings, role: str) -> None:
    """A consumer beyond the partition count owns no partition: maxReplicaCount stays within
    the partitions of every topic the role scales on (the settings' default, CONTRACT §2)."""
    spec = _by_role(keda["ScaledObject"])[role]["spec"]
    partitions = min(get(trigger["metadata"]["topic"]).partitions for trigger in spec["triggers"])
    assert partitions == settings.partitions == DEFAULT_PARTITIONS
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"] <= partitions
    if role == "core":
        assert spec["minReplicaCount"] >= 2  # the tables' standby replicas live on another pod
    behavior = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] >= 300  # every step is a rebalance
    assert [p["value"] for p in behavior["scaleDown"]["policies"]] == [1]


def test_the_partition_bound_is_explained_where_it_is_set() -> None:
    """Where a role scales on lag its maximum is the partition count, and the comment above it
    says so; the gateway's maximum is no partition count, and its comment says what bounds it."""
    text = (KEDA_DIR / "scaledobjects.yaml").read_text(encoding="utf-8")
    documents = re.split(r"^---$", text, flags=re.M)
    assert len(documents) == len(ROLES)
    for document in documents:
        role = yaml.safe_load(document)["metadata"]["labels"][COMPONENT]
        (match,) = re.finditer(r"^ *maxReplicaCount:", document, re.M)
        comment = re.findall(r"^ *#(.*)$", document[:match.start()], re.M)[-3:]
        why = "partition" if role in GROUP_ROLES else "decisions"  # each replica reads the whole topic
        assert any(why in line for line in comment), (role, document[:match.start()].splitlines()[-3:])


def test_the_component_drops_the_fixed_replicas_of_the_scaled_deployments(keda: Docs) -> None:
    """The HPA KEDA makes owns `replicas`: re-applying a fixed count would fight it."""
    (component,) = keda["Component"]
    removed = set()
    for patch in component["patches"]:
        operations = yaml.safe_load(patch["patch"])
        assert operations == [{"op": "remove", "path": "/spec/replicas"}]
        assert (patch["target"]["group"], patch["target"]["kind"]) == ("apps", "Deployment")
        removed.add(patch["target"]["name"])
    assert removed == {doc["spec"]["scaleTargetRef"]["name"] for doc in keda["ScaledObject"]}


def test_trajectory_scales_on_gpu_nodes(base: Docs, keda: Docs) -> None:
    """New trajectory replicas ask for a GPU and tolerate the GPU taint: they land on GPU nodes only."""
    doc = _by_role(keda["ScaledObject"])["trajectory"]
    pod = _deployment(base, doc["spec"]["scaleTargetRef"]["name"])["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    # never scaled to zero: with no group member the core defers text-only requests at once
    assert doc["spec"]["minReplicaCount"] >= 1


def test_one_disruption_budget_per_role_selects_its_deployments_pods(base: Docs) -> None:
    budgets = _by_role(base["PodDisruptionBudget"])
    assert set(budgets) == set(ROLES)
    deployments = {_role(doc): doc for doc in base["Deployment"]}
    for role, budget in budgets.items():
        assert budget["apiVersion"] == "policy/v1"
        selector = budget["spec"]["selector"]["matchLabels"]
        deployment = deployments[role]
        assert selector == deployment["spec"]["selector"]["matchLabels"]
        assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
        others = [d for r, d in deployments.items() if r != role]
        assert not any(selector.items() <= d["spec"]["template"]["metadata"]["labels"].items() for d in others)
        # One pod at a time, and never a budget that blocks a drain of a one-replica role.
        assert budget["spec"]["maxUnavailable"] == 1 and "minAvailable" not in budget["spec"]
        assert budget["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    assert "pdb.yaml" in base["Kustomization"][0]["resources"]


def test_the_gateway_scales_on_cpu(base: Docs, keda: Docs) -> None:
    """No consumer group, so no lag: KEDA's cpu trigger (an HPA resource metric), measured against
    the pods' CPU request; never below two pods, which the disruption budget relies on."""
    doc = _by_role(keda["ScaledObject"])["gateway"]
    spec = doc["spec"]
    deployment = _deployment(base, spec["scaleTargetRef"]["name"])
    assert deployment["metadata"]["name"] == "resontinex-gateway"
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["command"][container["command"].index("--role") + 1] == "gateway"
    assert container["resources"]["requests"]["cpu"]  # what Utilization is a percentage of
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "cpu" and trigger["metricType"] == "Utilization"
    assert set(trigger["metadata"]) <= {"value", "containerName"}  # `type` there is KEDA's deprecated spelling
    assert isinstance(trigger["metadata"]["value"], str) and 0 < int(trigger["metadata"]["value"]) < 100
    assert trigger["metadata"].get("containerName", container["name"]) == container["name"]
    assert 2 <= spec["minReplicaCount"] < spec["maxReplicaCount"]
    assert deployment["spec"]["replicas"] == spec["minReplicaCount"]  # the base without KEDA runs the minimum
    # One autoscaler per Deployment: the base holds none of its own (KEDA's would fight it).
    assert "HorizontalPodAutoscaler" not in base
    targets = [d["spec"]["scaleTargetRef"]["name"] for d in keda["ScaledObject"]]
    assert len(set(targets)) == len(targets)


def test_the_gateways_budget_leaves_a_replica_serving(base: Docs, keda: Docs) -> None:
    """maxUnavailable 1 of at least two replicas, with or without KEDA."""
    budget = _by_role(base["PodDisruptionBudget"])["gateway"]
    deployment = _deployment(base, "resontinex-gateway")
    minimum = _by_role(keda["ScaledObject"])["gateway"]["spec"]["minReplicaCount"]
    assert min(deployment["spec"]["replicas"], minimum) > budget["spec"]["maxUnavailable"]
