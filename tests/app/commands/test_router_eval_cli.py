"""`resontinex router evaluate` on JSON Lines files: exit 0 with the estimates, exit 2 on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from resontinex.agents.router import (
    ProviderState,
    RouterState,
    WorkloadContext,
    decide,
    decision_rng,
    export_q_table,
    feedback,
    make_policy,
    routing_config_from,
)
from resontinex.app.cli import main

REPO = Path(__file__).resolve().parents[2]

PROVIDERS = [
    {"provider_id": "akash", "price_usd_per_hour": 2.5, "latency_ms": 120, "reputation": 95,
     "capacity_available": 100, "gpu_types": ["a100"], "regions": ["us-west"]},
    {"provider_id": "lambda", "price_usd_per_hour": 4.0, "latency_ms": 90, "reputation": 98,
     "capacity_available": 100, "gpu_types": ["a100"], "regions": ["us-west"]},
    {"provider_id": "vast", "price_usd_per_hour": 1.5, "latency_ms": 200, "reputation": 85,
     "capacity_available": 100, "gpu_types": ["a100"], "regions": ["us-west"]},
]
SUCCESS = {"akash": 0.9, "lambda": 0.97, "vast": 0.6}
CONTEXTS = [{"workload_type": "llm_inference", "gpu_type": "a100", "region": "us-west", "gpu_hours": 2.0},
            {"workload_type": "training", "gpu_type": "a100", "region": "us-west", "gpu_hours": 8.0}]


def _ts(i: int) -> str:
    minutes, seconds = divmod(i, 60)
    hours, minutes = divmod(minutes, 60)
    return f"2024-05-01T{hours:02d}:{minutes:02d}:{seconds:02d}.000Z"


def audit_record(i: int, tenant: str, request: dict[str, Any], route: dict[str, Any] | None,
                 kind: str = "decision") -> dict[str, Any]:
    """An audit record like the gate's (CONTRACT §3.8), its hash fields mere placeholders."""
    decision = {"event_id": f"d-{i}", "request_id": request["event_id"], "tenant": tenant, "workflow": "default",
                "ts": _ts(i), "verb": "execute" if route and route["provider_id"] else "defer", "reasons": [],
                "policy_version": "0123456789ab", "route": route, "budget": None, "overlay": None}
    return {"event_id": f"au-{i}", "seq": i, "kind": kind, "tenant": tenant, "ts": _ts(i),
            "policy_version": "0123456789ab", "record": {"request": request, "decision": decision},
            "prev_hash": "0" * 64, "hash": "0" * 64}


def outcome_event(i: int, tenant: str, provider: dict[str, Any], context: dict[str, Any], success: bool,
                  suffix: str = "") -> dict[str, Any]:
    return {"event_id": f"o-{i}{suffix}", "tenant": tenant, "decision_id": f"d-{i}", "success": success,
            "actual_cost_usd": provider["price_usd_per_hour"] * context["gpu_hours"],
            "actual_latency_ms": provider["latency_ms"], "actual_reputation": provider["reputation"]}


def logged_records(n: int = 200, *, policy: str = "epsilon_greedy", seed: int = 0,
                   tenants: tuple[str, ...] = ("acme", "globex")) -> tuple[list[dict], list[dict], dict[str, int]]:
    """(audit records, outcome events, what should be skipped) of a router learning online.

    Decision i is routed by the real router (`decide`, one state per tenant, the gate's
    generator) and its outcome applied (`feedback`) before decision i+1. Mixed in: a
    request without routing, one with no feasible provider, a decision whose outcome never
    came, a repeated outcome, an outcome of no decision and an alert record.
    """
    rng = np.random.default_rng(seed)
    cfg = routing_config_from({"policy": policy})
    states = {t: RouterState.fresh(cfg) for t in tenants}
    audit: list[dict] = []
    outcomes: list[dict] = []
    for i in range(n):
        tenant = tenants[i % len(tenants)]
        context = CONTEXTS[int(rng.integers(len(CONTEXTS)))]
        request = {"event_id": f"r-{i}", "tenant": tenant,
                   "signals": {"alignment_score": 0.9, "epistemic_risk": 0.1, "confidence_band": 0.1},
                   "routing": {"context": context, "providers": PROVIDERS, "constraints": {"max_price": 5.0}},
                   "psi": {"density": 0.4, "coherence": 0.5, "entropy": 0.2}}
        state, route = decide(states[tenant], context=WorkloadContext.from_mapping(context),
                              providers=[ProviderState.from_mapping(p) for p in PROVIDERS], constraints=None,
                              psi=_Psi(0.4), rng=decision_rng(cfg.seed, tenant, request["event_id"]))
        summary = route.summary()
        audit.append(audit_record(i, tenant, request, summary))
        provider = next(p for p in PROVIDERS if p["provider_id"] == summary["provider_id"])
        ok = bool(rng.random() < SUCCESS[provider["provider_id"]])
        outcome = outcome_event(i, tenant, provider, context, ok)
        if i == 7:  # its outcome never came: the router never learnt from it either
            states[tenant] = state
            continue
        outcomes.append(outcome)
        states[tenant], _ = feedback(state, route.pending(f"d-{i}", 0.0), success=ok,
                                     cost_usd=outcome["actual_cost_usd"], latency_ms=provider["latency_ms"],
                                     reputation=provider["reputation"])
    unrouted = {"event_id": "r-u", "tenant": "acme",
                "signals": {"alignment_score": 0.9, "epistemic_risk": 0.1, "confidence_band": 0.1}}
    audit.append(audit_record(n, "acme", unrouted, None))
    deferred = {**unrouted, "event_id": "r-x", "routing": {"context": CONTEXTS[0], "providers": []}}
    audit.append(audit_record(n + 1, "acme", deferred, {"provider_id": None, "mode": "explore", "q_value": None,
                                                         "propensity": None, "policy": policy, "violations": []}))
    audit.append({"event_id": "al-1", "seq": n + 2, "kind": "alert", "tenant": "acme", "ts": _ts(n + 2),
                  "policy_version": "0123456789ab", "record": {"alert": {}}, "prev_hash": "0" * 64,
                  "hash": "0" * 64})
    outcomes.append({**outcomes[3], "event_id": "o-3-again", "success": not outcomes[3]["success"]})
    outcomes.append({**outcomes[4], "event_id": "o-ghost", "decision_id": "d-ghost"})
    skipped = {"other_audit_records": 1, "unrouted": 1, "no_provider": 1, "no_outcome": 1, "duplicate_outcomes": 1,
               "unmatched_outcomes": 1}
    return audit, outcomes, skipped


class _Psi:
    def __init__(self, density: float) -> None:
        self.density = density


def write_jsonl(path: Path, *records: dict | bytes) -> str:
    path.write_bytes(b"".join((r if isinstance(r, bytes) else orjson.dumps(r)) + b"\n" for r in records))
    return str(path)


def write_policy(path: Path, text: str = "policy: epsilon_greedy\n") -> str:
    path.write_text(text)
    return str(path)


def interleaved(audit: list[dict], outcomes: list[dict]) -> list[dict]:
    """Decisions and outcomes mixed as a file export might have them."""
    return [r for pair in zip(audit, outcomes) for r in pair] + audit[len(outcomes):] + outcomes[len(audit):]


@pytest.fixture(scope="module")
def logs():
    return logged_records()


def _evaluate(capsys, *argv: str) -> tuple[int, dict | str, str]:
    code = main(["router", "evaluate", *argv])
    captured = capsys.readouterr()
    out: dict | str = captured.out
    if code == 0 and "json" in argv:
        out = json.loads(captured.out)
    return code, out, captured.err


def test_the_logging_policy_replayed_is_estimated_at_its_observed_value(tmp_path, capsys, logs) -> None:
    audit, outcomes, skipped = logs
    log_file = write_jsonl(tmp_path / "log.jsonl", *interleaved(audit, outcomes))
    code, report, _ = _evaluate(capsys, "--policy", write_policy(tmp_path / "routing.yaml"), "--file", log_file,
                                "--output-format", "json", "--resamples", "300")
    assert code == 0
    assert report["rows"] == 199 and report["skipped"] == skipped
    assert report["logging_policies"] == {"epsilon_greedy": 199}
    observed = report["logging"]["value"]
    # the same configuration learning in the same order reproduces every propensity: weights are all 1
    assert report["estimates"]["ips"]["value"] == pytest.approx(observed, abs=1e-9)
    assert report["estimates"]["snips"]["value"] == pytest.approx(observed, abs=1e-9)
    assert report["weights"]["mean_weight"] == pytest.approx(1.0) and report["weights"]["ess"] == pytest.approx(199)
    low, high = report["estimates"]["dr"]["ci"]
    assert low <= report["estimates"]["dr"]["value"] <= high and low <= observed <= high
    assert report["candidate"] == {"policy": "epsilon_greedy", "learning": "replay", "defers": 0,
                                   "config": str(tmp_path / "routing.yaml"), "q_table": None}
    assert report["source"] == f"file {log_file}" and report["tenant"] is None


@pytest.mark.parametrize("policy", ["ucb1", "thompson", "linucb"])
def test_other_candidates_get_numbers_and_intervals(tmp_path, capsys, logs, policy) -> None:
    audit, outcomes, _ = logs
    code, report, _ = _evaluate(
        capsys, "--policy", write_policy(tmp_path / "r.yaml", f"policy: {policy}\nthompson: {{draws: 200}}\n"),
        "--file", write_jsonl(tmp_path / "log.jsonl", *audit, *outcomes), "--output-format", "json",
        "--resamples", "200", "--clip", "50")
    assert code == 0 and report["candidate"]["policy"] == policy and report["clip"] == 50.0
    for name in ("ips", "snips", "dr"):
        est = report["estimates"][name]
        if est["value"] is not None:
            assert est["ci"][0] <= est["value"] <= est["ci"][1] and est["se"] > 0


def test_the_text_table(tmp_path, capsys, logs) -> None:
    audit, outcomes, _ = logs
    code, out, _ = _evaluate(capsys, "--policy", write_policy(tmp_path / "r.yaml", "policy: ucb1\n"),
                             "--file", write_jsonl(tmp_path / "log.jsonl", *audit, *outcomes), "--resamples", "100",
                             "--confidence", "0.9")
    assert code == 0
    assert out.startswith("router evaluate: candidate ucb1 (")
    for label in ("logging (observed)", "IPS", "SNIPS", "DR", "90 % CI", "effective sample size",
                  "skipped: 1 audit records of other kinds", "1 routed decisions without an outcome"):
        assert label in out, label


def test_tenant_filter_frozen_and_q_table(tmp_path, capsys, logs) -> None:
    audit, outcomes, _ = logs
    log_file = write_jsonl(tmp_path / "log.jsonl", *audit, *outcomes)
    policy = write_policy(tmp_path / "r.yaml")
    code, acme, _ = _evaluate(capsys, "--policy", policy, "--file", log_file, "--tenant", "acme",
                              "--output-format", "json", "--resamples", "100")
    assert code == 0 and acme["rows"] == 100 and acme["tenant"] == "acme"  # d-7 (globex) had no outcome
    assert acme["skipped"]["other_tenant"] == 100 + 100  # globex: 100 decisions, 99 outcomes and a repeat
    code, frozen, _ = _evaluate(capsys, "--policy", policy, "--file", log_file, "--frozen", "--output-format", "json",
                                "--resamples", "100")
    assert code == 0 and frozen["candidate"]["learning"] == "frozen"
    trained = make_policy(routing_config_from({})).update("llm_inference:a100:us-west", "lambda", 9.0)
    (tmp_path / "q.json").write_bytes(orjson.dumps(export_q_table(trained)))
    code, table, _ = _evaluate(capsys, "--policy", write_policy(tmp_path / "u.yaml", "policy: ucb1\n"), "--file",
                               log_file, "--q-table", str(tmp_path / "q.json"), "--frozen", "--output-format",
                               "json", "--resamples", "100")
    assert code == 0 and table["candidate"]["policy"] == "epsilon_greedy"  # the table's policy wins
    assert table["candidate"]["q_table"] == str(tmp_path / "q.json")
    assert table["estimates"]["ips"]["value"] != frozen["estimates"]["ips"]["value"]


def test_the_same_seed_gives_the_same_report(tmp_path, capsys, logs) -> None:
    audit, outcomes, _ = logs
    args = ("--policy", write_policy(tmp_path / "r.yaml", "policy: thompson\n"), "--file",
            write_jsonl(tmp_path / "log.jsonl", *audit, *outcomes), "--output-format", "json", "--resamples", "100")
    assert _evaluate(capsys, *args) == _evaluate(capsys, *args)
    other = _evaluate(capsys, *args, "--seed", "9")[1]
    assert other["estimates"]["ips"]["value"] == _evaluate(capsys, *args)[1]["estimates"]["ips"]["value"]
    assert other["estimates"]["ips"]["ci"] != _evaluate(capsys, *args)[1]["estimates"]["ips"]["ci"]


def _routed(i: int = 0, **route: Any) -> dict:
    request = {"event_id": f"r-{i}", "tenant": "acme", "routing": {"context": CONTEXTS[0], "providers": PROVIDERS}}
    return audit_record(i, "acme", request, {"provider_id": "akash", "mode": "exploit", "q_value": 0.0,
                                             "propensity": 0.9, "policy": "epsilon_greedy", "violations": [],
                                             **route})


def _outcome(i: int = 0, **fields: Any) -> dict:
    return {**outcome_event(i, "acme", PROVIDERS[0], CONTEXTS[0], True), **fields}


def _with(record: dict, path: str, value: Any) -> dict:
    out = json.loads(json.dumps(record))
    *parents, last = path.split(".")
    node = out
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    node[last] = value
    return out


@pytest.mark.parametrize(("lines", "message"), [
    ([_routed(), b"{not json", _outcome()], "log.jsonl line 2: not JSON"),
    ([_routed(), [1, 2]], "log.jsonl line 2: <record>: must be a JSON object, got list"),
    ([_routed(), {"event_id": "x"}], "log.jsonl line 2: <record>: neither an audit record"),
    ([_routed(), _outcome(success="yes")], "log.jsonl line 2: success: must be true or false"),
    ([_outcome(), _with(_routed(), "record.decision.route.propensity", 1.5)],
     "log.jsonl line 2: record.decision.route.propensity: must be a number in [0, 1] or null, got 1.5"),
    ([_with(_routed(), "record.request.routing.providers.0.reputation", 150)],
     "log.jsonl line 1: record.request.routing.providers[0].reputation: must be ≤ 100"),
    ([_with(_routed(), "record.decision.route.provider_id", "nobody")],
     "line 1: record.decision.route.provider_id: 'nobody' is not among record.request.routing.providers"),
    ([_with(_routed(), "record.request.routing", None)], "line 1: record.request.routing: is required"),
    ([_with(_routed(), "record.decision.ts", "yesterday")], "line 1: record.decision.ts: must be an RFC 3339"),
    ([_with(_routed(), "record.decision", "d-1")], "line 1: record.decision: must be an object, got \"d-1\""),
    ([_with(_routed(), "tenant", 7)], "line 1: tenant: must be a non-empty string, got 7"),
    ([_with(_routed(), "record.request.psi", {"density": 2})], "line 1: record.request.psi.density: must be ≤ 1"),
])
def test_a_bad_line_is_exit_2_naming_the_line_and_the_field(tmp_path, capsys, lines, message) -> None:
    code, out, err = _evaluate(capsys, "--policy", write_policy(tmp_path / "r.yaml"), "--file",
                               write_jsonl(tmp_path / "log.jsonl", *lines))
    assert code == 2 and out == ""
    assert message in err


@pytest.mark.parametrize(("lines", "message"), [
    ([], "no usable rows: no routed decisions (0 decision records"),
    ([_with(_routed(), "record.decision.route", None), _outcome()], "no routed decisions (1 decision records: "
                                                                     "1 without routing"),
    ([_routed(provider_id=None, propensity=None)], "0 without routing, 1 with no feasible provider"),
    ([_routed(), _outcome(1)], "no outcomes joined: none of the 1 routed decisions has an outcome (1 outcomes read)"),
    ([_routed(propensity=0.0), _outcome()], "zero propensities: each of the 1 routed decisions with an outcome"),
    ([_routed(propensity=None), _outcome()], "zero propensities"),
])
def test_no_usable_rows_is_exit_2_saying_why(tmp_path, capsys, lines, message) -> None:
    code, out, err = _evaluate(capsys, "--policy", write_policy(tmp_path / "r.yaml"), "--file",
                               write_jsonl(tmp_path / "log.jsonl", *lines))
    assert code == 2 and out == ""
    assert message in err


def test_a_tenant_with_no_decisions_is_exit_2(tmp_path, capsys) -> None:
    code, _, err = _evaluate(capsys, "--policy", write_policy(tmp_path / "r.yaml"), "--tenant", "initech",
                             "--file", write_jsonl(tmp_path / "log.jsonl", _routed(), _outcome()))
    assert code == 2 and "no routed decisions of tenant 'initech'" in err


@pytest.mark.parametrize(("policy_text", "message"), [
    ("policy: greedy\n", "r.yaml: policy: must be one of epsilon_greedy, ucb1, thompson, linucb, got 'greedy'"),
    ("epsilon: 2\n", "r.yaml: epsilon: must be >= 0 and <= 1, got 2.0"),
    ("anomaly: {q_jump_k: -1}\n", "r.yaml: anomaly.q_jump_k: must be > 0"),
    ("surprise: 1\n", "r.yaml: surprise: unknown key"),
    ("policy: [unclosed\n", "r.yaml: <file>:"),
])
def test_a_bad_policy_file_is_exit_2_naming_the_key(tmp_path, capsys, policy_text, message) -> None:
    code, out, err = _evaluate(capsys, "--policy", write_policy(tmp_path / "r.yaml", policy_text), "--file",
                               write_jsonl(tmp_path / "log.jsonl", _routed(), _outcome()))
    assert code == 2 and out == "" and message in err


def test_missing_files_and_a_bad_q_table_are_exit_2(tmp_path, capsys) -> None:
    log_file = write_jsonl(tmp_path / "log.jsonl", _routed(), _outcome())
    policy = write_policy(tmp_path / "r.yaml")
    code, _, err = _evaluate(capsys, "--policy", str(tmp_path / "none.yaml"), "--file", log_file)
    assert code == 2 and "--policy " + str(tmp_path / "none.yaml") + ": file not found" in err
    code, _, err = _evaluate(capsys, "--policy", policy, "--file", str(tmp_path / "none.jsonl"))
    assert code == 2 and "none.jsonl: file not found" in err
    (tmp_path / "q.json").write_text('{"format": "resontinex.router.q_table", "version": 1, "policy": "ucb1", '
                                     '"state": {"arms": {"a:b:c": {"akash": {"n": "x", "mean": 0, "unit": 0}}}}}')
    code, _, err = _evaluate(capsys, "--policy", policy, "--file", log_file, "--q-table", str(tmp_path / "q.json"))
    assert code == 2 and "q.json: state.arms['a:b:c'].akash.n: must be an integer >= 0" in err
    (tmp_path / "q.json").write_text("{")
    code, _, err = _evaluate(capsys, "--policy", policy, "--file", log_file, "--q-table", str(tmp_path / "q.json"))
    assert code == 2 and "q.json: not JSON" in err


@pytest.mark.parametrize(("argv", "message"), [
    (["--clip", "0"], "--clip 0: must be a positive number"),
    (["--folds", "1"], "--folds 1: must be at least 2"),
    (["--resamples", "1"], "--resamples 1: must be at least 2"),
    (["--confidence", "95"], "--confidence 95: must be between 0 and 1"),
    (["--seed", "-1"], "--seed -1: must be >= 0"),
    (["--bootstrap", "127.0.0.1:1"], "--bootstrap reads Kafka: drop it with --file"),
])
def test_bad_flags_are_exit_2(tmp_path, capsys, argv, message) -> None:
    code, _, err = _evaluate(capsys, "--policy", write_policy(tmp_path / "r.yaml"), "--file",
                             write_jsonl(tmp_path / "log.jsonl", _routed(), _outcome()), *argv)
    assert code == 2 and message in err


def test_file_and_from_kafka_exclude_each_other_and_policy_is_required(tmp_path) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["router", "evaluate", "--policy", "r.yaml", "--file", "f", "--from-kafka"])
    assert caught.value.code == 2
    with pytest.raises(SystemExit) as caught:
        main(["router", "evaluate", "--file", "f"])
    assert caught.value.code == 2
    with pytest.raises(SystemExit) as caught:
        main(["router"])
    assert caught.value.code == 2


def test_an_unreachable_broker_is_exit_1(tmp_path, capsys) -> None:
    code, out, err = _evaluate(capsys, "--policy", write_policy(tmp_path / "r.yaml"), "--bootstrap", "127.0.0.1:1")
    assert code == 1 and out == ""
    assert "127.0.0.1:1" in err


def test_the_installed_command_line(tmp_path, logs) -> None:
    audit, outcomes, _ = logs
    args = [sys.executable, "-m", "resontinex.app.cli", "router", "evaluate", "--policy", write_policy(tmp_path / "r.yaml"),
            "--resamples", "100", "--output-format", "json"]
    done = subprocess.run([*args, "--file", write_jsonl(tmp_path / "log.jsonl", *audit, *outcomes)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows"] == 199
    bad = subprocess.run([*args, "--file", write_jsonl(tmp_path / "bad.jsonl", _routed(), b"[")], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stdout == "" and "bad.jsonl line 2: not JSON" in bad.stderr
