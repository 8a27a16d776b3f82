"""Policy canaries on live decision requests (seed 001's shadow mode and ramp, on the
stream), judged on outcome labels, through a real core worker.

The world of the test: executing is the right call exactly when the default policy's score
is at least 0.7 (the outcome's `label`, and its success when executed). The current policy
executes from 0.6 (its trust floor), so it is wrong on [0.6, 0.7). Two tenants each get a
trust candidate: acme's raises the floor to 0.7 (right more often), globex's reviews
everything under 0.9 (wrong on every score in [0.7, 0.9)). A third, initech, asks for
routes among offers that all break its `max_price`, and executing is always right there:
its current router (`strict`) finds no provider, its routing candidate (`lenient`) routes
and flags. All start in shadow; acme's and initech's ramp to 50 % and 100 %, globex's is
rolled back. The worker is SIGKILLed once acme's ramp reached 50 %: a new worker resumes
at that step, and no request is decided twice. `audit reproduce` reproduces every
decision under the configuration that made it.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from resontinex.agents.gate import decision_id
from resontinex.agents.trust import default_config, evaluate_values

from .conftest import run
from .harness import REPO, produce, read_all, start_worker

pytestmark = pytest.mark.integration

CONFIG = """
monitor: {interval: PT0.25S, cooldown: {canary_failed: PT1H}}
policy: {steps: [0.0, 0.5, 1.0], min_outcomes: 25, max_drop: 0.05, alpha: 0.05}
"""
GOOD = {"mandatory": 1.0, "proxy": 0.8, "alpha": 0.96, "sigma": 0.1, "governance": 0.9}
CANDIDATES = {"acme": ("floor-70", "trust_policy", {"trust_floor": 0.7}),
              "globex": ("review-under-90", "trust_policy", {"risk_tiers": {"review": 0.9}}),
              "initech": ("lenient-routing", "routing_policy", {"mode": "lenient"})}
OVER_PRICE = {"context": {"workload_type": "llm", "gpu_type": "a100", "region": "us", "gpu_hours": 1.0},
              "constraints": {"max_price": 1.0},
              "providers": [{"provider_id": p, "price_usd_per_hour": 2.0, "latency_ms": 100, "reputation": 90,
                             "capacity_available": 10, "gpu_types": ["a100"], "regions": ["us"]}
                            for p in ("akash", "vast")]}


def _submission(tenant: str) -> tuple[bytes, bytes]:
    enhancement_id, kind, payload = CANDIDATES[tenant]
    return enhancement_id.encode(), orjson.dumps({
        "event_id": f"sub-{enhancement_id}", "enhancement_id": enhancement_id, "tenant": tenant,
        "kind": kind, "description": f"{tenant}: {payload}", "payload": payload, "requirements": [],
        "thresholds": GOOD, "canary_share": 0.5, "mode": "automatic"})


class World:
    """Requests with random signals; their outcomes, labelled by the default policy's score."""

    def __init__(self) -> None:
        self.rng = random.Random(14)
        self.sent: dict[str, tuple[str, bool]] = {}  # request id → (tenant, label)
        self.n = 0

    def requests(self, tenant: str, n: int) -> list[tuple[bytes, bytes]]:
        out = []
        for _ in range(n):
            self.n += 1
            a, r, c = self.rng.uniform(0.45, 0.95), self.rng.uniform(0.05, 0.45), self.rng.uniform(0.05, 0.6)
            routed = tenant == "initech"
            label = routed or evaluate_values(a, r, c, default_config()).score >= 0.7
            request_id = f"{tenant}-{self.n}"
            self.sent[request_id] = (tenant, label)
            body = {"event_id": request_id, "tenant": tenant,
                    "signals": {"alignment_score": a, "epistemic_risk": r, "confidence_band": c}}
            if routed:
                body = {**body, "signals": {"alignment_score": 0.9, "epistemic_risk": 0.1, "confidence_band": 0.1},
                        "routing": OVER_PRICE}
            out.append((tenant.encode(), orjson.dumps(body)))
        return out

    def outcomes(self, request_ids: list[str]) -> list[tuple[bytes, bytes]]:
        out = []
        for request_id in request_ids:
            tenant, label = self.sent[request_id]
            out.append((tenant.encode(), orjson.dumps({
                "event_id": f"o-{request_id}", "tenant": tenant, "decision_id": decision_id(tenant, request_id),
                "success": label, "actual_cost_usd": 0.01, "actual_latency_ms": 120.0, "actual_reputation": 90.0,
                "label": label})))
        return out


def _events(bootstrap: str) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for *_, e in run(read_all(bootstrap, "enhancement-events", settle_s=0.3, timeout_s=30)):
        out.setdefault(e["enhancement_id"], []).append(e)
    return out


def _drive(bootstrap: str, world: World, until, what: str, timeout_s: float = 90.0) -> dict[str, list[dict]]:
    """Rounds of requests, then their outcomes once decided, until `until(events)`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        batch = world.requests("acme", 20) + world.requests("globex", 20) + world.requests("initech", 20)
        run(produce(bootstrap, "decision-requests", batch))
        time.sleep(1.0)  # decided and remembered before their outcomes come
        run(produce(bootstrap, "outcomes", world.outcomes([orjson.loads(v)["event_id"] for _, v in batch])))
        time.sleep(0.5)
        events = _events(bootstrap)
        if until(events):
            return events
    raise AssertionError(f"timed out waiting for {what}: " + json.dumps(
        {k: [(e["to_state"], e["reason"]["code"], e["share"]) for e in v] for k, v in _events(bootstrap).items()}))


def _codes(events: list[dict[str, Any]]) -> list[tuple[str, str, float | None]]:
    return [(e["to_state"], e["reason"]["code"], e["share"]) for e in events]


def test_policy_canaries_ramp_or_roll_back_on_outcome_labels_across_a_crash(broker, tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "enhancements.yaml").write_text(CONFIG)
    b, env = broker.bootstrap, {"RESONTINEX_CONFIG_DIR": str(config)}
    world = World()
    worker = start_worker(b, tmp_path / "w1", env=env)
    try:
        worker.wait_ready(timeout_s=90)
        run(produce(b, "enhancements", [_submission(t) for t in CANDIDATES]))
        events = _drive(b, world, lambda ev: all(ev.get(i, [{}])[-1].get("to_state") == "active"
                                                 for i, *_ in CANDIDATES.values()), "all in shadow", 30)
        assert _codes(events["floor-70"])[-1] == ("active", "activated", 0.0)
        events = _drive(b, world, lambda ev: any(e["reason"]["code"] == "ramp_step" for e in ev["floor-70"]),
                        "acme's candidate at 50 %")
        assert _codes(events["floor-70"])[-1] == ("active", "ramp_step", 0.5)
        worker.kill()  # mid-ramp
    finally:
        worker.stop()
    worker = start_worker(b, tmp_path / "w2", env=env)
    try:
        worker.wait_ready(timeout_s=90)
        events = _drive(b, world, lambda ev: ev["floor-70"][-1]["reason"]["code"] == "canary_promoted"
                        and ev["lenient-routing"][-1]["reason"]["code"] == "canary_promoted"
                        and any(e["to_state"] == "deactivated" for e in ev["review-under-90"]), "all judged")
        for promoted in ("floor-70", "lenient-routing"):
            assert [c for c in _codes(events[promoted]) if c[0] == "active"] == [
                ("active", "activated", 0.0), ("active", "ramp_step", 0.5), ("active", "canary_promoted", 1.0)]
        rolled = next(e for e in events["review-under-90"] if e["to_state"] == "deactivated")
        assert rolled["reason"]["code"] == "policy_rolled_back"
        assert rolled["evidence"]["accuracy"]["candidate"] < rolled["evidence"]["accuracy"]["current"]
        assert _codes(events["review-under-90"])[-1][0] == "cooldown"

        decisions = [d for *_, d in run(read_all(b, "decisions", expect=world.n, timeout_s=60))]
        by_arm: dict[tuple[str, str], set[str]] = {}
        for d in decisions:
            canary = d.get("canary") or {}
            by_arm.setdefault((d["tenant"], canary.get("arm", "-")), set()).add(d["policy_version"])
        base = next(iter(by_arm[("acme", "current")]))
        assert by_arm[("acme", "candidate")] and base not in by_arm[("acme", "candidate")]
        assert by_arm[("initech", "current")] == {base} and base not in by_arm[("initech", "candidate")]
        assert any((d.get("canary") or {}).get("shadow") for d in decisions)
        for d in (d for d in decisions if d["tenant"] == "initech"):  # which router decided shows in the route
            canary, route = d.get("canary") or {"arm": "-", "shadow": None}, d["route"]  # "-": before activation
            assert canary.get("kind", "routing_policy") == "routing_policy"
            if canary["arm"] == "candidate":
                assert route["provider_id"] is not None and route["violations"] == ["price_exceeded"]
            else:
                assert route["provider_id"] is None and d["verb"] == "defer"
            if canary["shadow"] is not None:
                assert canary["shadow"]["verb"] == "execute" and canary["shadow"]["provider_id"] is not None

        audit = [a for *_, a in run(read_all(b, "audit", expect=world.n))]
        decided = [a["record"]["request"]["event_id"] for a in audit if a["kind"] == "decision"]
        assert len(decided) == len(set(decided)) == world.n  # nothing decided twice, nothing lost
        reproduce = subprocess.run([sys.executable, "-m", "resontinex.app.cli", "audit", "reproduce", "--bootstrap", b,
                                    "--output-format", "json"], cwd=REPO, capture_output=True, text=True, timeout=180)
        report = json.loads(reproduce.stdout)
        assert reproduce.returncode == 0, reproduce.stdout[-2000:] + reproduce.stderr[-2000:]
        assert report["decisions"] == world.n and report["differ_under_recorded_config"] == 0
        assert report["recorded_config_missing"] == 0
        verify = subprocess.run([sys.executable, "-m", "resontinex.app.cli", "audit", "verify", "--bootstrap", b],
                                cwd=REPO, capture_output=True, text=True, timeout=120)
        assert verify.returncode == 0, verify.stdout + verify.stderr
    finally:
        worker.stop()
