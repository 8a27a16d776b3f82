"""docker-compose.yml, Dockerfile, Prometheus and Kubernetes files: parsed and cross-checked.

No Docker engine or cluster runs here, so these tests check what can be checked by
reading: structure, pinned images, KRaft settings, that commands are the CLI of CONTRACT
§6, that every mounted or referenced file exists, and that the pieces agree (ports,
labels, names).
"""

from __future__ import annotations

import base64
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.settings import ROLES as CLI_ROLES

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
K8S_DIR = ROOT / "deploy" / "k8s"

# CONTRACT §6: subcommands and the flags each accepts.
COMMON_FLAGS = {"--bootstrap", "--config-dir"}
CLI_FLAGS: dict[tuple[str, ...], set[str]] = {
    ("up",): {"--port", "--web-port", "--roles", "--demo"},
    ("worker",): {"--role", "--web-port"},
    ("topics", "create"): set(),
    ("schemas", "export"): set(),
    ("budget-gate",): {"--baseline", "--current", "--report-file", "--output-format"},
    ("audit", "verify"): {"--file"},
    ("router", "evaluate"): {"--policy"},
}
# The roles the deploy files run: only `core` today (the trajectory role and its deployment
# come with the GPU consumer group issue), and each one a role the CLI accepts.
ROLES = {"core"}
DEFAULT_ROLE = "core"  # `resontinex worker` without --role

def _exported() -> dict[str, str]:
    """Every metric the worker exports (app.metrics), by its exposition name."""
    from app import metrics

    out = {}
    for family in metrics.REGISTRY.collect():
        out[family.name + ("_total" if family.type == "counter" else "")] = family.type
    return out


METRICS = _exported()
DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _cli(argv: list[str]) -> tuple[tuple[str, ...], dict[str, str | None]]:
    """Split `resontinex ...` into its §6 subcommand and its flags; fail on anything else."""
    assert argv[0] == "resontinex", argv
    rest = argv[1:]
    sub = next((s for s in CLI_FLAGS if tuple(rest[: len(s)]) == s), None)
    assert sub is not None, f"not a CONTRACT §6 command: {argv}"
    flags: dict[str, str | None] = {}
    args = iter(rest[len(sub):])
    for arg in args:
        assert arg.startswith("--") and arg in CLI_FLAGS[sub] | COMMON_FLAGS, f"{arg!r} is not a flag of {sub}"
        flags[arg] = None if arg == "--demo" else next(args)
    return sub, flags


# -- docker-compose.yml ---------------------------------------------------------------

@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return _load(COMPOSE_FILE)


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


def test_compose_services_and_images(services: dict[str, Any]) -> None:
    assert set(services) == {"kafka", "topics", "worker", "prometheus"}
    assert re.fullmatch(r"apache/kafka:[34]\.\d+\.\d+", services["kafka"]["image"])
    assert re.fullmatch(r"prom/prometheus:v\d+\.\d+\.\d+", services["prometheus"]["image"])
    for name in ("topics", "worker"):
        assert services[name]["build"] == {"context": "."}
        assert re.fullmatch(r"resontinex:\d+\.\d+\.\d+", services[name]["image"])


def test_kafka_runs_kraft_single_node_reachable_as_kafka_9092(services: dict[str, Any]) -> None:
    env = services["kafka"]["environment"]
    assert not any("ZOOKEEPER" in key for key in env)
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    node_id = env["KAFKA_NODE_ID"]
    controller = env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    listeners = dict(item.split("://") for item in env["KAFKA_LISTENERS"].split(","))
    advertised = dict(item.split("://") for item in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    protocols = dict(item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert set(listeners) <= set(protocols) and controller in listeners
    assert controller not in advertised and set(advertised) <= set(listeners)
    assert advertised[env["KAFKA_INTER_BROKER_LISTENER_NAME"]] == "kafka:9092"
    voter_id, voter_address = env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split("@")
    assert int(voter_id) == node_id and voter_address == f"kafka{listeners[controller]}"
    assert len(base64.urlsafe_b64decode(env["CLUSTER_ID"] + "==")) == 16  # a Kafka Uuid
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == 1
    assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == 1
    assert env["KAFKA_NUM_PARTITIONS"] == 4
    assert services["kafka"]["healthcheck"]["test"][1].endswith("kafka-broker-api-versions.sh")


def test_commands_are_the_cli_of_the_contract(services: dict[str, Any]) -> None:
    sub, flags = _cli(services["topics"]["command"])
    assert sub == ("topics", "create") and flags == {"--bootstrap": "kafka:9092"}
    for name, role, port in (("worker", "core", "6066"),):
        sub, flags = _cli(services[name]["command"])
        assert sub == ("worker",)
        assert flags == {"--role": role, "--bootstrap": "kafka:9092", "--web-port": port}
        assert services[name]["ports"] == [f"{port}:{port}"]
        assert f"http://127.0.0.1:{port}/health" in services[name]["healthcheck"]["test"][-1]
        assert services[name]["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"


def test_start_order(services: dict[str, Any]) -> None:
    assert services["topics"]["depends_on"] == {"kafka": {"condition": "service_healthy"}}
    assert services["topics"]["restart"] == "no"
    assert services["worker"]["depends_on"] == {"topics": {"condition": "service_completed_successfully"}}
    assert set(services["prometheus"]["depends_on"]) == {"worker"}


def test_healthchecks(services: dict[str, Any]) -> None:
    for name in ("kafka", "worker", "prometheus"):
        check = services[name]["healthcheck"]
        assert check["test"][0] == "CMD"
        assert all(DURATION.match(check[key]) for key in ("interval", "timeout"))


def test_compose_worker_is_reachable_by_its_peers(services: dict[str, Any]) -> None:
    """/stats/trust calls the other workers at http://$RESONTINEX_ADVERTISED_HOST:<web-port>."""
    env = services["worker"]["environment"]
    assert env["RESONTINEX_ADVERTISED_HOST"] == "worker"  # the service name, resolvable on the compose network
    assert "hostname" not in services["worker"]
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    assert re.search(r"^\s*#.*scaled replicas need per-replica hostnames", text, re.M | re.I)


def _mounts(compose: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            yield name, source, target


def test_every_mount_exists(compose: dict[str, Any]) -> None:
    named = set(compose.get("volumes") or {})
    mounts = list(_mounts(compose))
    assert mounts
    for service, source, _ in mounts:
        if source.startswith("."):
            assert (ROOT / source).exists(), f"{service} mounts missing {source}"
        else:
            assert source in named, f"{service} uses undeclared volume {source}"
    config_mounts = {target for service, source, target in mounts if source == "./config"}
    for name in ("topics", "worker"):
        assert compose["services"][name]["environment"]["RESONTINEX_CONFIG_DIR"] in config_mounts


# -- Dockerfile -----------------------------------------------------------------------

def test_dockerfile_installs_the_package_as_non_root() -> None:
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines()]
    instructions = [line for line in lines if line and not line.startswith("#")]
    assert [line for line in instructions if line.startswith("FROM ")] == ["FROM python:3.11-slim"]
    assert any(re.search(r"\bpip install \.(\s|$)", line) for line in instructions)
    users = [line.split()[1] for line in instructions if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in {"0", "root"}
    for line in instructions:
        if line.startswith("COPY "):
            for source in shlex.split(line)[1:-1]:
                if not any(c in source for c in "*?["):
                    assert (ROOT / source).exists(), f"Dockerfile copies missing {source}"
    assert instructions[-1].startswith("CMD [")  # exec form: signals reach the worker
    assert _cli(yaml.safe_load(instructions[-1].removeprefix("CMD ")))[0] == ("worker",)
    assert not any(line.startswith("ARG ") for line in instructions)  # one image, no build variants


# -- Prometheus -----------------------------------------------------------------------

def _container_path(compose: dict[str, Any], service: str, path: str) -> Path:
    """The repo file a path inside a compose service maps to through its bind mounts."""
    for name, source, target in _mounts(compose):
        if name == service and source.startswith(".") and (path == target or path.startswith(target + "/")):
            return ROOT / source / path[len(target):].lstrip("/")
    raise AssertionError(f"{path} is not mounted into {service}")


def test_prometheus_config_scrapes_the_worker_ports(compose: dict[str, Any], services: dict[str, Any]) -> None:
    flags = dict(arg.split("=", 1) for arg in services["prometheus"]["command"])
    config_path = _container_path(compose, "prometheus", flags["--config.file"])
    assert config_path == PROMETHEUS_DIR / "prometheus.yml"
    config = _load(config_path)
    for rule_file in config["rule_files"]:
        assert _container_path(compose, "prometheus", rule_file).is_file()
    targets = {
        target
        for job in config["scrape_configs"]
        if job.get("metrics_path", "/metrics") == "/metrics"
        for static in job["static_configs"]
        for target in static["targets"]
    }
    expected = {f"{name}:{_cli(services[name]['command'])[1]['--web-port']}" for name in ("worker",)}
    assert targets == expected == {"worker:6066"}
    assert [job["job_name"] for job in config["scrape_configs"]] == ["resontinex-core"]
    assert all(DURATION.match(config["global"][key]) for key in ("scrape_interval", "evaluation_interval"))


@pytest.fixture(scope="module")
def rules() -> list[dict[str, Any]]:
    groups = _load(PROMETHEUS_DIR / "rules.yml")["groups"]
    assert len({group["name"] for group in groups}) == len(groups)
    return [rule for group in groups for rule in group["rules"]]


def test_every_rule_is_complete(rules: list[dict[str, Any]]) -> None:
    assert rules
    names = [rule["alert"] for rule in rules]
    assert len(set(names)) == len(names)
    for rule in rules:
        assert isinstance(rule["expr"], str) and rule["expr"].strip(), rule["alert"]
        assert DURATION.match(rule["for"]), rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        expr = rule["expr"]
        assert expr.count("(") == expr.count(")") and expr.count("[") == expr.count("]"), rule["alert"]


def test_rules_use_only_exported_metrics(rules: list[dict[str, Any]]) -> None:
    used = set()
    for rule in rules:
        for metric in re.findall(r"\b(?:trust_gate|resontinex)_[a-z_]+\b", rule["expr"]):
            base = re.sub(r"_(bucket|sum|count)$", "", metric)
            if base != metric:
                assert METRICS.get(base) == "histogram", f"{metric} in {rule['alert']}"
            else:
                assert metric in METRICS, f"{metric} in {rule['alert']}"
            used.add(base)
    assert used >= {"trust_gate_evaluation_seconds", "trust_gate_errors_total", "trust_gate_floor_violations_total",
                    "trust_gate_score", "resontinex_dead_letters_total"}


@pytest.mark.parametrize(
    ("fragment", "threshold", "duration", "severity"),
    [
        ("histogram_quantile(0.99, sum by (le) (rate(trust_gate_evaluation_seconds_bucket", "> 0.002", "5m", "critical"),
        ("histogram_quantile(0.95, sum by (le) (rate(trust_gate_evaluation_seconds_bucket", "> 0.001", "10m", "warning"),
        ("sum(rate(trust_gate_errors_total[5m])) / (", "> 0.005", "2m", "critical"),
        ("sum(increase(trust_gate_floor_violations_total[1h]))", "> 20", "1m", "critical"),
        ('up{job=~"resontinex-.*"}', "== 0", "1m", "critical"),
    ],
)
def test_seed_001_slo_alerts(rules: list[dict[str, Any]], fragment: str, threshold: str, duration: str,
                             severity: str) -> None:
    flat = [(" ".join(rule["expr"].split()), rule) for rule in rules]
    matches = [rule for expr, rule in flat if fragment in expr and expr.endswith(threshold)]
    assert len(matches) == 1
    assert (matches[0]["for"], matches[0]["labels"]["severity"]) == (duration, severity)


# -- Kubernetes -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def manifests() -> dict[str, list[dict[str, Any]]]:
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(K8S_DIR.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            assert doc["apiVersion"] and doc["kind"], path
            by_kind.setdefault(doc["kind"], []).append({**doc, "_file": path.name})
    return by_kind


def test_k8s_kinds_and_kustomization(manifests: dict[str, list[dict[str, Any]]]) -> None:
    assert {kind: len(docs) for kind, docs in manifests.items()} == {
        "Kustomization": 1, "ConfigMap": 1, "Deployment": 1, "Service": 1,
    }
    listed = set(manifests["Kustomization"][0]["resources"])
    assert listed == {doc["_file"] for kind, docs in manifests.items() if kind != "Kustomization" for doc in docs}


def _deployment(manifests: dict[str, list[dict[str, Any]]], role: str) -> dict[str, Any]:
    for doc in manifests["Deployment"]:
        container = doc["spec"]["template"]["spec"]["containers"][0]
        if _cli(container["command"])[1].get("--role", DEFAULT_ROLE) == role:
            return doc
    raise AssertionError(f"no Deployment for role {role}")


@pytest.mark.parametrize("role", sorted(ROLES))
def test_k8s_worker_deployments(manifests: dict[str, list[dict[str, Any]]], role: str) -> None:
    doc = _deployment(manifests, role)
    assert doc["apiVersion"] == "apps/v1"
    template = doc["spec"]["template"]
    assert doc["spec"]["selector"]["matchLabels"].items() <= template["metadata"]["labels"].items()
    pod = template["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    sub, flags = _cli(container["command"])
    assert sub == ("worker",)
    web = {port["name"]: port["containerPort"] for port in container["ports"]}["web"]
    assert flags["--web-port"] == str(web)
    assert template["metadata"]["annotations"]["prometheus.io/port"] == str(web)
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/health", "port": "web"}
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert "KAFKA_BOOTSTRAP_SERVERS" in env
    # Peers call http://$RESONTINEX_ADVERTISED_HOST:<web-port> for /stats/trust: the pod IP.
    (advertised,) = (item for item in container["env"] if item["name"] == "RESONTINEX_ADVERTISED_HOST")
    assert advertised == {"name": "RESONTINEX_ADVERTISED_HOST",
                          "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
    assert set(mounts.values()) <= set(volumes)
    config_volume = volumes[mounts[env["RESONTINEX_CONFIG_DIR"]]]
    assert config_volume["configMap"]["name"] in {doc["metadata"]["name"] for doc in manifests["ConfigMap"]}


def test_k8s_service_exposes_the_core_web_port(manifests: dict[str, list[dict[str, Any]]]) -> None:
    (service,) = manifests["Service"]
    core = _deployment(manifests, "core")
    assert service["spec"]["selector"].items() <= core["spec"]["template"]["metadata"]["labels"].items()
    (port,) = service["spec"]["ports"]
    container = core["spec"]["template"]["spec"]["containers"][0]
    assert port["targetPort"] in {p["name"] for p in container["ports"]}
    assert port["port"] == 6066


def test_k8s_runs_as_the_image_user(manifests: dict[str, list[dict[str, Any]]]) -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    uid = int(re.findall(r"^USER (\d+)", text, re.M)[-1])
    for doc in manifests["Deployment"]:
        assert doc["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == uid


# -- Roles: only what the CLI runs today ----------------------------------------------

def _worker_commands(compose: dict[str, Any],
                     manifests: dict[str, list[dict[str, Any]]]) -> Iterator[tuple[str, list[str]]]:
    for name, service in compose["services"].items():
        if isinstance(service.get("command"), list) and service["command"][0] == "resontinex":
            yield f"compose {name}", service["command"]
    lines = (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines()
    for line in lines:
        if line.startswith("CMD "):
            yield "Dockerfile CMD", yaml.safe_load(line.removeprefix("CMD "))
    for doc in manifests["Deployment"]:
        for container in doc["spec"]["template"]["spec"]["containers"]:
            yield f"k8s {doc['metadata']['name']}", container["command"]


def test_every_worker_runs_a_role_the_cli_accepts(compose: dict[str, Any],
                                                  manifests: dict[str, list[dict[str, Any]]]) -> None:
    roles = {}
    for where, argv in _worker_commands(compose, manifests):
        sub, flags = _cli(argv)
        if sub == ("worker",):
            roles[where] = flags.get("--role", DEFAULT_ROLE)
    assert {"compose worker", "Dockerfile CMD", "k8s resontinex-core"} <= set(roles)
    assert set(roles.values()) == ROLES, roles
    assert ROLES <= set(CLI_ROLES)  # `resontinex worker --role X` refuses any other role (exit 2)


def test_no_trajectory_in_the_deploy_files() -> None:
    """The trajectory role and its deployment come with the GPU consumer group issue."""
    files = [COMPOSE_FILE, ROOT / "Dockerfile", *sorted(PROMETHEUS_DIR.glob("*.yml")), *sorted(K8S_DIR.glob("*"))]
    assert not (K8S_DIR / "trajectory-deployment.yaml").exists()
    for path in files:
        text = path.read_text(encoding="utf-8").lower()
        assert "trajectory" not in text, path.relative_to(ROOT)
        assert "6067" not in text, path.relative_to(ROOT)
