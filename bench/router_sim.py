"""A provider simulator for the router (issue 4): regret against the oracle, decisions/s.

    python -m bench.router_sim [--quick] [-n 20000] [--seeds K] [--out bench/results/router-<timestamp>.json]

Five feasible compute providers (and one that the constraints always screen out) with a
hidden success probability, a price, a latency distribution and a reputation. Each
decision builds CONTRACT §3.1 `routing` dicts (one context, so one state key; the
offers; constraints), routes through the real pure router (`agents.router.decide`, a
generator from `decision_rng` per decision, as the agent does), samples the chosen
provider's outcome from the simulator and hands it to `agents.router.feedback` (seed
002's reward). Scenarios: `stationary`; `drift` (success rates and prices move linearly
over the run, so the best provider changes); `switch` (the best provider's success rate
drops abruptly at N/2).

The expected reward of every provider at every step is known analytically (seed 002's
reward is linear in cost and latency, which do not depend on success), so the oracle is
the best feasible expected reward at each step and **regret = Σ (oracle's expected reward
− the chosen provider's expected reward)** (pseudo-regret: the outcome noise is not in
it). Every policy sees the same outcome draws for a given seed (common random numbers).

Rows: each policy with the issue's settings (ε-greedy: ε 0.1, ×0.995, floor 0.01, α 0.1,
γ 0.95), UCB1 and LinUCB also with their exploration constant scaled to this reward's
spread (`ucb1_scaled`, `linucb_scaled`, see `POLICY_ROWS`), and `uniform_random`, a
trivial chooser in this file (screen, then uniform among the candidates), for reference.
Each row's regret is also given as a ratio to ε-greedy's in the same run (the baseline).

Then decisions/s: decide + feedback pairs per second through the router, per policy,
against a baseline in the same run (the uniform chooser doing the per-decision work every
policy shares: a `decision_rng`, `screen`, a uniform choice, seed 002's reward).

Progress goes to stderr; a short table to stdout; every figure to one JSON file.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Final

import numpy as np

from resontinex.agents.router import (Constraints, ProviderState, RouterState, WorkloadContext, decide, decision_rng, feedback,
                           reward, routing_config_from, screen)

from .run import RESULTS, _fmt, git_state, log, mark_finished, publish, ratio

SCHEMA: Final = 1
REPO: Final = Path(__file__).resolve().parents[1]
REPORT_KEYS: Final = ("schema", "meta", "setup", "scenarios", "convergence", "targets", "throughput")

# --------------------------------------------------------------------------- the world

GPU_HOURS: Final = 1.0
HOURS_SPREAD: Final = 0.25
"""The hours a job really takes: GPU_HOURS × Uniform(1 − spread, 1 + spread) (mean GPU_HOURS)."""
LATENCY_SIGMA: Final = 0.3
"""Observed latency = offered latency × lognormal(−σ²/2, σ) (mean: the offered latency)."""

CONTEXT: Final[dict[str, Any]] = {"workload_type": "llm_inference", "gpu_type": "a100", "region": "us-west",
                                  "gpu_hours": GPU_HOURS}
CONSTRAINTS: Final[dict[str, Any]] = {"max_price": 6.0, "max_latency_ms": 600.0, "min_reputation": 60.0}


@dataclass(frozen=True, slots=True)
class Arm:
    """One provider as it behaves at one step. `success_p` is hidden from the router;
    the rest is what it offers (`latency_ms` is the mean of its latency distribution)."""

    provider_id: str
    success_p: float
    price_usd_per_hour: float
    latency_ms: float
    reputation: float
    capacity_available: float = 100.0

    def offer(self) -> dict[str, Any]:
        """The CONTRACT §3.1 `routing.providers[]` dict of this provider."""
        return {"provider_id": self.provider_id, "price_usd_per_hour": round(self.price_usd_per_hour, 6),
                "latency_ms": self.latency_ms, "reputation": self.reputation,
                "capacity_available": self.capacity_available, "gpu_types": ["a100"], "regions": ["us-west"]}


def expected_reward(arm: Arm, gpu_hours: float = GPU_HOURS) -> float:
    """Seed 002's reward in expectation: p·r(success at the mean cost and latency) + (1 − p)·(−20).

    Exact because the reward on success is linear in cost and latency and both are drawn
    independently of success with means price·gpu_hours and the offered latency.

    >>> round(expected_reward(Arm("x", 0.97, 2.5, 120, 95)), 4)
    7.3637
    """
    on_success = reward(success=True, cost_usd=arm.price_usd_per_hour * gpu_hours, latency_ms=arm.latency_ms,
                        reputation=arm.reputation)
    return arm.success_p * on_success + (1.0 - arm.success_p) * reward(success=False, cost_usd=0.0, latency_ms=0.0,
                                                                         reputation=0.0)


def reward_sd(arm: Arm, gpu_hours: float = GPU_HOURS) -> float:
    """The standard deviation of one outcome's reward on `arm` (failures, cost and latency noise).

    Var = p·Var(r | success) + p(1 − p)·(E[r | success] + 20)², with the cost uniform over
    price·hours·(1 ± spread) and the latency lognormal with mean the offered latency.

    >>> round(reward_sd(Arm("x", 1.0, 2.0, 100.0, 90.0)), 4)
    0.2951
    """
    on_success = reward(success=True, cost_usd=arm.price_usd_per_hour * gpu_hours, latency_ms=arm.latency_ms,
                        reputation=arm.reputation)
    failed = reward(success=False, cost_usd=0.0, latency_ms=0.0, reputation=0.0)
    var_cost = (arm.price_usd_per_hour * gpu_hours * 2.0 * HOURS_SPREAD) ** 2 / 12.0
    var_latency = (arm.latency_ms / 500.0) ** 2 * (math.exp(LATENCY_SIGMA ** 2) - 1.0)
    p = arm.success_p
    return math.sqrt(p * (var_cost + var_latency) + p * (1.0 - p) * (on_success - failed) ** 2)


def constant_step_noise(arms: Sequence[Arm], alpha: float) -> dict[str, Any]:
    """Why a constant step cannot settle on the best provider when rewards are noisy.

    With Q ← Q + α(r − Q), Q keeps fluctuating around the provider's expected reward with
    sd σ·√(α/(2 − α)) however long it runs (it tracks, it does not converge); when that sd
    is comparable to the gap between the best and the second-best provider, which one looks
    best is decided by noise. A sample-average step (α = 1/n) shrinks the sd as σ/√n.
    """
    ok = [a for a in arms if feasible(a)]
    mu = sorted((expected_reward(a) for a in ok), reverse=True)
    scale = math.sqrt(alpha / (2.0 - alpha))
    return {"alpha": alpha, "gap_best_second": round(mu[0] - mu[1], 4) if len(mu) > 1 else None,
            "providers": {a.provider_id: {"expected_reward": round(expected_reward(a), 4),
                                          "reward_sd": round(reward_sd(a), 4),
                                          "q_sd_constant_step": round(reward_sd(a) * scale, 4)} for a in ok}}


def feasible(arm: Arm, constraints: Mapping[str, Any] = CONSTRAINTS) -> bool:
    """The bench's own check of the soft limits (every provider offers the context's GPU,
    region and capacity); the oracle chooses among these only."""
    return (arm.price_usd_per_hour <= constraints["max_price"] and arm.latency_ms <= constraints["max_latency_ms"]
            and arm.reputation >= constraints["min_reputation"])


@dataclass(frozen=True, slots=True)
class Outcome:
    success: bool
    cost_usd: float
    latency_ms: float
    reputation: float


def outcome(arm: Arm, u_success: float, u_hours: float, z_latency: float, gpu_hours: float = GPU_HOURS) -> Outcome:
    """One outcome of a job on `arm` from three draws (uniform, uniform, standard normal).

    >>> outcome(Arm("x", 0.9, 2.0, 100, 90), 0.5, 0.5, 0.0)
    Outcome(success=True, cost_usd=2.0, latency_ms=95.6, reputation=90)
    """
    hours = gpu_hours * (1.0 - HOURS_SPREAD + 2.0 * HOURS_SPREAD * u_hours)
    latency = arm.latency_ms * math.exp(LATENCY_SIGMA * z_latency - LATENCY_SIGMA ** 2 / 2.0)
    return Outcome(u_success < arm.success_p, round(arm.price_usd_per_hour * hours, 6), round(latency, 1),
                   arm.reputation)


@dataclass(frozen=True, slots=True)
class Course:
    """How one provider's success probability and price move: start → end."""

    arm: Arm
    success_end: float | None = None
    price_end: float | None = None

    def at(self, frac: float) -> Arm:
        if self.success_end is None and self.price_end is None:
            return self.arm
        p0, c0 = self.arm.success_p, self.arm.price_usd_per_hour
        p1 = p0 if self.success_end is None else self.success_end
        c1 = c0 if self.price_end is None else self.price_end
        return replace(self.arm, success_p=p0 + (p1 - p0) * frac, price_usd_per_hour=c0 + (c1 - c0) * frac)


BASE: Final[tuple[Arm, ...]] = (
    Arm("akash", 0.97, 2.50, 120.0, 95.0),
    Arm("lambda", 0.99, 4.00, 80.0, 98.0),
    Arm("runpod", 0.95, 3.00, 150.0, 90.0),
    Arm("tensordock", 0.85, 0.90, 350.0, 70.0),
    Arm("vast", 0.92, 1.50, 200.0, 85.0),
    Arm("bargain", 0.97, 0.40, 100.0, 45.0),  # reputation under min_reputation: always screened out
)
"""The providers at the start of every scenario (expected rewards 7.36, 6.55, 6.22, 4.74, 6.63;
bargain's 8.95 would be the best, but its reputation breaks `min_reputation`, so strict
screening never offers it to a policy and the oracle never counts it)."""


@dataclass(frozen=True, slots=True)
class Scenario:
    """`shape`: `constant`, `linear` (frac = t/(n−1)) or `step` (frac 0 before n/2, 1 from it)."""

    name: str
    description: str
    paths: tuple[Course, ...]
    shape: str = "constant"

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(p.arm.provider_id for p in self.paths)

    def frac(self, t: int, n: int) -> float:
        if self.shape == "linear":
            return t / (n - 1) if n > 1 else 0.0
        if self.shape == "step":
            return 0.0 if t < n // 2 else 1.0
        return 0.0

    def arms_at(self, t: int, n: int) -> tuple[Arm, ...]:
        f = self.frac(t, n)
        return tuple(p.at(f) for p in self.paths)

    def changes(self) -> bool:
        return self.shape != "constant" and any(p.success_end is not None or p.price_end is not None
                                                for p in self.paths)

    def describe(self, n: int) -> dict[str, Any]:
        """The providers at the start and the end, with expected rewards and the best."""
        def snap(t: int) -> dict[str, Any]:
            arms = self.arms_at(t, n)
            mu = [expected_reward(a) for a in arms]
            best = oracle(arms, mu)
            return {"t": t, "best": arms[best].provider_id,
                    "providers": [{**a.offer(), "success_p": round(a.success_p, 6), "feasible": feasible(a),
                                   "expected_reward": round(m, 6)} for a, m in zip(arms, mu)]}
        return {"description": self.description, "shape": self.shape, "start": snap(0), "end": snap(n - 1),
                "best_changes_at": best_changes(self, n)}


def _courses(start: Mapping[str, Mapping[str, float]] | None = None,
             end: Mapping[str, Mapping[str, float]] | None = None) -> tuple[Course, ...]:
    """`BASE` with some providers' starting values replaced (`start`) and end values set (`end`)."""
    start, end = start or {}, end or {}
    return tuple(Course(replace(a, **start.get(a.provider_id, {})), **end.get(a.provider_id, {})) for a in BASE)


SCENARIOS: Final[dict[str, Scenario]] = {s.name: s for s in (
    Scenario("stationary", "every provider's success rate and price fixed; akash best by 0.73 over vast",
             _courses()),
    Scenario("drift", "linear over the run: akash's success 0.97→0.93 and price 2.50→2.90; vast's success "
                      "0.88→0.97 and price 1.60→1.20 (the best moves from akash to vast, see best_changes_at)",
             _courses(start={"vast": {"success_p": 0.88, "price_usd_per_hour": 1.6}},
                      end={"akash": {"success_end": 0.93, "price_end": 2.9},
                           "vast": {"success_end": 0.97, "price_end": 1.2}}), "linear"),
    Scenario("switch", "at N/2 akash's success rate drops 0.97→0.85 (vast becomes best); nothing else changes",
             _courses(end={"akash": {"success_end": 0.85}}), "step"),
)}


def oracle(arms: Sequence[Arm], mu: Sequence[float]) -> int:
    """Index of the best feasible expected reward (the first on a tie)."""
    best = -1
    for i, (a, m) in enumerate(zip(arms, mu)):
        if feasible(a) and (best < 0 or m > mu[best]):
            best = i
    if best < 0:
        raise ValueError("no feasible provider")
    return best


def best_changes(scenario: Scenario, n: int) -> list[dict[str, Any]]:
    """The steps at which the oracle's choice changes."""
    out, prev = [], None
    for t in range(n):
        arms = scenario.arms_at(t, n)
        b = arms[oracle(arms, [expected_reward(a) for a in arms])].provider_id
        if b != prev:
            out.append({"t": t, "best": b})
            prev = b
        if not scenario.changes():
            break
    return out


# --------------------------------------------------------------------------- policies


EPSILON_DEFAULTS: Final = {"epsilon": 0.1, "epsilon_decay": 0.995, "epsilon_min": 0.01, "alpha": 0.1, "gamma": 0.95}
SCALE: Final = 0.35
"""UCB1's c = √2 and LinUCB's α = 1 assume a [0, 1] reward as spread as a coin (sd 0.5);
this unit reward's per-outcome sd is 0.09–0.34 (failures of p 0.01–0.15 weighing 27–29
reward points of the 31-point range), so the `_scaled` rows multiply them by 0.35."""

POLICY_ROWS: Final[dict[str, dict[str, Any] | None]] = {
    "uniform_random": None,  # the bench's own chooser: screen, then uniform among the candidates
    "epsilon_greedy": {"policy": "epsilon_greedy", **EPSILON_DEFAULTS},
    "epsilon_greedy_avg": {"policy": "epsilon_greedy", **EPSILON_DEFAULTS, "alpha_schedule": "sample_average"},
    "ucb1": {"policy": "ucb1"},                                     # ucb_c 1.414 (the config default)
    "ucb1_scaled": {"policy": "ucb1", "ucb_c": round(1.414 * SCALE, 3)},
    "thompson": {"policy": "thompson"},                             # Beta(1, 1) prior, 1000 draws
    "linucb": {"policy": "linucb"},                                 # linucb_alpha 1.0, ridge 1.0
    "linucb_scaled": {"policy": "linucb", "linucb_alpha": SCALE},
}
BASELINE: Final = "epsilon_greedy"
EPSILON_ROWS: Final = ("epsilon_greedy", "epsilon_greedy_avg")
"""Convergence is judged for ε-greedy as seed 002 has it (a constant step α 0.1) and with
a sample-average step (`alpha_schedule: sample_average`, α = 1/n)."""
BEAT_BY: Final = 0.30
CONVERGED_SHARE: Final = 0.80
FLAT_RATIO: Final = 0.5
"""ε-greedy has converged when ≥ 80 % of the last 10 % of decisions go to the best provider
and the regret of the last quarter is at most half of the first quarter's."""


class UniformChooser:
    """Reference row: screen the offers like the router, then pick uniformly. Learns nothing."""

    def __init__(self) -> None:
        self.decisions = 0

    def decide(self, offers, ctx, cons, rng: np.random.Generator) -> str | None:
        s = screen(offers, ctx, cons, "strict")
        self.decisions += 1
        return s.candidates[int(rng.integers(len(s.candidates)))] if s.candidates else None

    def feedback(self, o: Outcome) -> None:
        reward(success=o.success, cost_usd=o.cost_usd, latency_ms=o.latency_ms, reputation=o.reputation)


class RouterChooser:
    """The real router: `decide`, keep the pending decision, `feedback` its outcome."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.state = RouterState.fresh(routing_config_from(config))
        self.pending = None
        self.decisions = 0

    def decide(self, offers, ctx, cons, rng: np.random.Generator) -> str | None:
        self.state, route = decide(self.state, context=ctx, providers=offers, constraints=cons, psi=None, rng=rng)
        self.pending = route.pending(f"d-{self.decisions}", decided_at=float(self.decisions))
        self.decisions += 1
        return None if self.pending is None else self.pending.provider_id

    def feedback(self, o: Outcome) -> None:
        self.state, _ = feedback(self.state, self.pending, success=o.success, cost_usd=o.cost_usd,
                                 latency_ms=o.latency_ms, reputation=o.reputation)
        self.pending = None


def chooser(row: str) -> UniformChooser | RouterChooser:
    config = POLICY_ROWS[row]
    return UniformChooser() if config is None else RouterChooser(config)


# --------------------------------------------------------------------------- one run


def draws(seed: int, scenario: str, n: int, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The outcome draws of every (step, provider): the same for every policy (common random numbers)."""
    digest = hashlib.sha256(scenario.encode()).digest()
    rng = np.random.default_rng([seed, int.from_bytes(digest[:8], "big")])
    return rng.random((n, k)), rng.random((n, k)), rng.standard_normal((n, k))


def regret_summary(regrets: Sequence[float], on_best: Sequence[bool], every: int) -> dict[str, Any]:
    """Cumulative regret, its curve every `every` decisions (and at the end), the share of
    the last 10 % of decisions on the best provider, and last-quarter/first-quarter regret.

    >>> s = regret_summary([1.0, 1.0, 0.5, 0.5, 0.0, 0.0, 0.0, 0.0], [False] * 4 + [True] * 4, 4)
    >>> s["regret"], s["curve"], s["best_share_last10"], s["quarters"], s["last_vs_first_quarter"]
    (3.0, [[4, 3.0], [8, 3.0]], 1.0, [2.0, 1.0, 0.0, 0.0], 0.0)
    """
    r = np.asarray(regrets, dtype=float)
    n = len(r)
    cum = np.cumsum(r)
    points = sorted({*range(every, n + 1, every), n}) if n else []
    tail = max(1, n // 10)
    q = max(1, n // 4)
    quarters = [float(r[i * q:(i + 1) * q if i < 3 else n].sum()) for i in range(4)]
    return {"regret": round(float(cum[-1]), 6) if n else 0.0,
            "curve": [[t, round(float(cum[t - 1]), 6)] for t in points],
            "best_share_last10": round(float(np.mean(np.asarray(on_best[-tail:], dtype=bool))), 6) if n else None,
            "quarters": [round(x, 6) for x in quarters],
            "last_vs_first_quarter": round(quarters[3] / quarters[0], 6) if quarters[0] > 0 else None}


def simulate(scenario_name: str, row: str, seed: int, n: int, every: int,
             pick: UniformChooser | RouterChooser | None = None) -> dict[str, Any]:
    """`n` decisions of one policy row in one scenario with one seed (`pick`: a chooser to
    use instead of the row's, for tests)."""
    scenario = SCENARIOS[scenario_name]
    ids = scenario.ids
    index = {pid: i for i, pid in enumerate(ids)}
    u_success, u_hours, z_latency = draws(seed, scenario_name, n, len(ids))
    ctx = WorkloadContext.from_mapping(CONTEXT)
    cons = Constraints.from_mapping(CONSTRAINTS)
    pick = chooser(row) if pick is None else pick
    regrets = np.zeros(n)
    on_best = np.zeros(n, dtype=bool)
    counts = [0] * len(ids)
    deferred = infeasible = 0
    arms: tuple[Arm, ...] = ()
    offers: list[ProviderState] = []
    mu: list[float] = []
    best = 0
    moving = scenario.changes()
    started = time.perf_counter()
    for t in range(n):
        if t == 0 or (moving and scenario.frac(t, n) != scenario.frac(t - 1, n)):
            arms = scenario.arms_at(t, n)
            offers = [ProviderState.from_mapping(a.offer()) for a in arms]
            mu = [expected_reward(a) for a in arms]
            best = oracle(arms, mu)
        pid = pick.decide(offers, ctx, cons, decision_rng(seed, scenario_name, f"req-{t}"))
        if pid is None:  # the router deferred: no reward, counted (never expected here)
            deferred += 1
            regrets[t] = mu[best]
            continue
        k = index[pid]
        counts[k] += 1
        if not feasible(arms[k]):
            infeasible += 1
        regrets[t] = mu[best] - mu[k]
        on_best[t] = k == best
        pick.feedback(outcome(arms[k], u_success[t, k], u_hours[t, k], z_latency[t, k]))
    wall = time.perf_counter() - started
    out = regret_summary(regrets, on_best, every)
    out.update(seed=seed, choices=dict(zip(ids, counts)), deferred=deferred, infeasible_chosen=infeasible,
               wall_s=round(wall, 3))
    if isinstance(pick, RouterChooser):
        st = pick.state.stats
        out.update(anomalies=dict(zip(("q_jump", "success_rate"), st.anomalies)), explore=st.explore,
                   exploit=st.exploit, final_epsilon=pick.state.policy.epsilon)
    return out


def _task(args: tuple[str, str, int, int, int]) -> tuple[str, str, int, dict[str, Any]]:
    scenario, row, seed, n, every = args
    return scenario, row, seed, simulate(scenario, row, seed, n, every)


# --------------------------------------------------------------------------- aggregation


def mean_sd(values: Sequence[float | None]) -> dict[str, Any]:
    """
    >>> mean_sd([1.0, 2.0, 3.0]), mean_sd([4.0]), mean_sd([None])
    ({'mean': 2.0, 'sd': 1.0, 'n': 3}, {'mean': 4.0, 'sd': 0.0, 'n': 1}, {'mean': None, 'sd': None, 'n': 0})
    """
    xs = [float(v) for v in values if v is not None]
    if not xs:
        return {"mean": None, "sd": None, "n": 0}
    return {"mean": round(statistics.fmean(xs), 6), "sd": round(statistics.stdev(xs), 6) if len(xs) > 1 else 0.0,
            "n": len(xs)}


def aggregate(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One policy row in one scenario over its seeds."""
    curve_t = [t for t, _ in runs[0]["curve"]]
    curves = np.array([[v for _, v in r["curve"]] for r in runs])
    return {
        "regret": mean_sd([r["regret"] for r in runs]),
        "best_share_last10": mean_sd([r["best_share_last10"] for r in runs]),
        "last_vs_first_quarter": mean_sd([r["last_vs_first_quarter"] for r in runs]),
        "curve": {"t": curve_t, "mean": [round(float(x), 3) for x in curves.mean(axis=0)],
                  "sd": [round(float(x), 3) for x in (curves.std(axis=0, ddof=1) if len(runs) > 1
                                                       else np.zeros(len(curve_t)))]},
        "seeds": list(runs),
    }


def add_ratios(rows: dict[str, dict[str, Any]], baseline: str = BASELINE) -> None:
    """Each row's mean regret / the baseline row's (same scenario, same run)."""
    base = (rows.get(baseline) or {}).get("regret", {}).get("mean")
    for row in rows.values():
        row["regret_vs_" + baseline] = ratio(row["regret"]["mean"], base)


def convergence(row: dict[str, Any]) -> dict[str, Any]:
    """The verdict on one row: best-provider share of the last 10 % and the flattening, per seed."""
    seeds = row["seeds"]
    share_ok = [r["best_share_last10"] is not None and r["best_share_last10"] >= CONVERGED_SHARE for r in seeds]
    flat_ok = [r["last_vs_first_quarter"] is not None and r["last_vs_first_quarter"] <= FLAT_RATIO for r in seeds]
    return {"best_share_last10": row["best_share_last10"]["mean"], "share_threshold": CONVERGED_SHARE,
            "seeds_share_met": sum(share_ok), "last_vs_first_quarter": row["last_vs_first_quarter"]["mean"],
            "flat_threshold": FLAT_RATIO, "seeds_flat_met": sum(flat_ok), "seeds": len(seeds),
            "converged": all(a and b for a, b in zip(share_ok, flat_ok))}


def beat_target(rows: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Does any learning policy's mean regret come under (1 − 30 %) × ε-greedy's? Both
    over the rows with the issue's/config defaults only and over every row."""
    key = "regret_vs_" + BASELINE

    def best_of(names: Sequence[str]) -> tuple[str | None, float | None]:
        scored = [(rows[n][key], n) for n in names if n in rows and rows[n].get(key) is not None]
        if not scored:
            return None, None
        r, name = min(scored)
        return name, r

    learners = [n for n in rows if n not in (BASELINE, "uniform_random")]
    defaults = [n for n in learners if not n.endswith("_scaled")]
    d_name, d_ratio = best_of(defaults)
    a_name, a_ratio = best_of(learners)
    limit = 1.0 - BEAT_BY
    return {"limit_ratio": limit,
            "defaults_only": {"best": d_name, "ratio": d_ratio, "met": None if d_ratio is None else d_ratio <= limit},
            "any_row": {"best": a_name, "ratio": a_ratio, "met": None if a_ratio is None else a_ratio <= limit},
            "rows_meeting": sorted(n for n in learners if rows[n].get(key) is not None and rows[n][key] <= limit)}


# --------------------------------------------------------------------------- throughput


def throughput(row: str, pairs: int, repeats: int, seed: int = 0) -> dict[str, Any]:
    """decide + feedback pairs per second for one row, on the stationary world: best of
    `repeats` runs of `pairs` pairs, each from a fresh state. Only the router's calls are
    timed (the chooser's `decide`, with its `decision_rng`, and `feedback`), not the
    simulator drawing the outcome in between (its draws are made beforehand)."""
    scenario = SCENARIOS["stationary"]
    arms = scenario.arms_at(0, max(1, pairs))
    index = {a.provider_id: i for i, a in enumerate(arms)}
    offers = [ProviderState.from_mapping(a.offer()) for a in arms]
    ctx, cons = WorkloadContext.from_mapping(CONTEXT), Constraints.from_mapping(CONSTRAINTS)
    u_s, u_h, z = draws(seed, "throughput", pairs, len(arms))
    clock = time.perf_counter
    best: tuple[float, float, float] | None = None
    for _ in range(repeats):
        pick = chooser(row)
        t_decide = t_feedback = 0.0
        for t in range(pairs):
            a = clock()
            pid = pick.decide(offers, ctx, cons, decision_rng(seed, "throughput", f"req-{t}"))
            t_decide += clock() - a
            k = index[pid]
            o = outcome(arms[k], u_s[t, k], u_h[t, k], z[t, k])
            a = clock()
            pick.feedback(o)
            t_feedback += clock() - a
        if best is None or t_decide + t_feedback < best[0]:
            best = (t_decide + t_feedback, t_decide, t_feedback)
    assert best is not None
    total, t_decide, t_feedback = best
    per = 1e6 / pairs if pairs else 0.0
    return {"pairs": pairs, "repeats": repeats, "pairs_per_s": round(pairs / total, 1) if total > 0 else None,
            "us_per_pair": round(total * per, 2), "us_decide": round(t_decide * per, 2),
            "us_feedback": round(t_feedback * per, 2)}


def screen_only(pairs: int, repeats: int) -> dict[str, Any]:
    """`screen` of the six offers alone, per call (a floor under every row)."""
    arms = SCENARIOS["stationary"].arms_at(0, 1)
    offers = [ProviderState.from_mapping(a.offer()) for a in arms]
    ctx, cons = WorkloadContext.from_mapping(CONTEXT), Constraints.from_mapping(CONSTRAINTS)
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(pairs):
            screen(offers, ctx, cons, "strict")
        best = min(best, time.perf_counter() - start)
    return {"calls": pairs, "per_s": round(pairs / best, 1), "us_per_call": round(best / pairs * 1e6, 2)}


# --------------------------------------------------------------------------- report


def meta(args: argparse.Namespace) -> dict[str, Any]:
    return {"started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            **git_state(["agents/router"], "router"), "cpus": os.cpu_count(), "loadavg_before": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(), "platform": platform.platform(), "numpy": np.__version__,
            "quick": args.quick, "n": args.n, "seeds": args.seeds, "checkpoint_every": args.every,
            "jobs": args.jobs, "throughput_pairs": args.pairs, "throughput_repeats": args.repeats}


def setup() -> dict[str, Any]:
    return {"context": CONTEXT, "constraints": CONSTRAINTS, "gpu_hours": GPU_HOURS, "hours_spread": HOURS_SPREAD,
            "latency_sigma": LATENCY_SIGMA, "mode": "strict",
            "policy_rows": {k: v for k, v in POLICY_ROWS.items()}, "baseline": BASELINE,
            "regret": "pseudo-regret: Σ_t (max feasible expected reward − chosen provider's expected reward)",
            "convergence": {"best_share_last10_at_least": CONVERGED_SHARE,
                            "last_vs_first_quarter_at_most": FLAT_RATIO},
            "target": f"some policy's mean regret ≤ {1 - BEAT_BY:.2f} × {BASELINE}'s on stationary",
            "constant_step_noise": constant_step_noise(BASE, EPSILON_DEFAULTS["alpha"])}


def assemble(info: dict[str, Any], scenarios: dict[str, Any], thr: dict[str, Any], n: int) -> dict[str, Any]:
    conv = {row: {name: convergence(rows[row]) for name, rows in scenarios.items() if row in rows}
            for row in EPSILON_ROWS}
    targets: dict[str, Any] = {}
    if "stationary" in scenarios:
        targets["beat_epsilon_greedy_by_30pct_stationary"] = beat_target(scenarios["stationary"])
        for row in EPSILON_ROWS:
            if "stationary" in conv[row]:
                targets[f"{row}_converges_stationary"] = conv[row]["stationary"]["converged"]
    return {"schema": SCHEMA, "meta": info, "setup": setup(),
            "scenarios": {name: {"world": SCENARIOS[name].describe(n), "rows": rows}
                          for name, rows in scenarios.items()},
            "convergence": conv, "targets": targets, "throughput": thr}


def table(report: dict[str, Any]) -> str:
    """A short human table of the report."""
    lines = []
    head = ("scenario", "policy", "regret mean ± sd", f"× {BASELINE}", "best share last 10%", "Q4/Q1")
    rows = [head]
    for name, sc in report["scenarios"].items():
        for row, x in sc["rows"].items():
            rg = x["regret"]
            rows.append((name, row, f"{_fmt(rg['mean'], '', 0)} ± {_fmt(rg['sd'], '', 0)}",
                         "baseline" if row == BASELINE else _fmt(x.get("regret_vs_" + BASELINE), "×", 2),
                         _fmt(x["best_share_last10"]["mean"] and 100 * x["best_share_last10"]["mean"], " %", 1),
                         _fmt(x["last_vs_first_quarter"]["mean"], "", 2)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    for r in rows:
        lines.append("  ".join(f"{c:<{w}}" if i < 2 else f"{c:>{w}}" for i, (c, w) in enumerate(zip(r, widths))))
    for row, name, c in ((row, name, c) for row, per in report["convergence"].items() for name, c in per.items()):
        lines.append(f"{row} converged ({name}): {'yes' if c['converged'] else 'NO'} — best share "
                     f"{_fmt(c['best_share_last10'] and 100 * c['best_share_last10'], ' %', 1)} "
                     f"(≥ {100 * CONVERGED_SHARE:.0f} % in {c['seeds_share_met']}/{c['seeds']} seeds), Q4/Q1 "
                     f"{_fmt(c['last_vs_first_quarter'], '', 2)} "
                     f"(≤ {FLAT_RATIO} in {c['seeds_flat_met']}/{c['seeds']})")
    t = report["targets"].get("beat_epsilon_greedy_by_30pct_stationary")
    if t:
        for k, title in (("defaults_only", "default settings only"), ("any_row", "any row")):
            x = t[k]
            verdict = {True: "met", False: "NOT met", None: "—"}[x["met"]]
            lines.append(f"beat {BASELINE} by 30 % on stationary ({title}): {verdict} — best {x['best']} "
                         f"{_fmt(x['ratio'], '×', 2)} (limit {t['limit_ratio']:.2f}×)")
    thr = report["throughput"]
    if thr.get("rows"):
        lines.append("")
        w = max(len("decide+feedback"), *(len(k) for k in thr["rows"]))
        lines.append(f"{'decide+feedback':<{w}}  {'pairs/s':>9}  {'µs/pair':>8}  {'decide':>7}  {'feedback':>8}  "
                     "× baseline")
        for name, x in thr["rows"].items():
            note = "baseline" if name == thr["baseline"] else _fmt(x.get("vs_baseline"), "×", 3)
            lines.append(f"{name:<{w}}  {_fmt(x['pairs_per_s'], '', 0):>9}  {x['us_per_pair']:>8.1f}  "
                         f"{x['us_decide']:>7.1f}  {x['us_feedback']:>8.1f}  {note}")
        so = thr.get("screen_only")
        if so:
            lines.append(f"{'screen() alone':<{w}}  {_fmt(so['per_s'], '', 0):>9}  {so['us_per_call']:>8.1f}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench.router_sim", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="n 2,000, 2 seeds, 500 throughput pairs (a smoke check)")
    ap.add_argument("-n", type=int, help="decisions per run (default 20,000; quick 2,000)")
    ap.add_argument("--seeds", type=int, help="seeds per policy and scenario (default 8; quick 2)")
    ap.add_argument("--out", type=Path, help="the JSON result (default bench/results/router-<timestamp>.json)")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated (default: all)")
    ap.add_argument("--policies", default=",".join(POLICY_ROWS),
                    help=f"comma-separated rows (default: all; {BASELINE} is always run)")
    ap.add_argument("--every", type=int, help="regret curve checkpoint interval (default n/20)")
    ap.add_argument("--pairs", type=int, help="decide+feedback pairs per throughput run (default 3,000; quick 500)")
    ap.add_argument("--repeats", type=int, default=3, help="throughput runs per row, best kept (default 3)")
    ap.add_argument("--jobs", type=int, default=1,
                    help="processes for the regret runs (default 1; throughput always runs alone, after)")
    args = ap.parse_args(argv)
    if args.n is None:
        args.n = 2_000 if args.quick else 20_000
    if args.seeds is None:
        args.seeds = 2 if args.quick else 8
    if args.every is None:
        args.every = max(1, args.n // 20)
    args.pairs = args.pairs if args.pairs is not None else (500 if args.quick else 3_000)
    if args.n < 8:
        ap.error("-n must be at least 8")
    if args.seeds < 1 or args.jobs < 1 or args.repeats < 1 or args.pairs < 0 or args.every < 1:
        ap.error("--seeds, --jobs, --repeats and --every must be >= 1, --pairs >= 0")
    args.scenarios = [x.strip() for x in args.scenarios.split(",") if x.strip()]
    if unknown := set(args.scenarios) - set(SCENARIOS):
        ap.error(f"unknown scenarios {sorted(unknown)}; known: {', '.join(SCENARIOS)}")
    wanted = {x.strip() for x in args.policies.split(",") if x.strip()} | {BASELINE}
    if unknown := wanted - set(POLICY_ROWS):
        ap.error(f"unknown policies {sorted(unknown)}; known: {', '.join(POLICY_ROWS)}")
    args.policies = [p for p in POLICY_ROWS if p in wanted]
    args.out = args.out or RESULTS / f"router-{datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    return args


def run_regret(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    tasks = [(s, p, seed, args.n, args.every) for s in args.scenarios for seed in range(args.seeds)
             for p in args.policies]
    got: dict[tuple[str, str], list[dict[str, Any]]] = {}
    done = 0
    started = time.monotonic()

    def note(scenario: str, row: str, seed: int, r: dict[str, Any]) -> None:
        nonlocal done
        done += 1
        got.setdefault((scenario, row), []).append(r)
        log(f"[{done}/{len(tasks)}] {scenario}/{row} seed {seed}: regret {r['regret']:,.1f}, best share last 10% "
            f"{100 * (r['best_share_last10'] or 0):.1f} % ({r['wall_s']:.1f}s; {time.monotonic() - started:.0f}s in)")

    if args.jobs > 1:
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            for scenario, row, seed, r in pool.map(_task, tasks):
                note(scenario, row, seed, r)
    else:
        for task in tasks:
            note(*_task(task))
    out: dict[str, dict[str, Any]] = {}
    for s in args.scenarios:
        rows = {p: aggregate(sorted(got[(s, p)], key=lambda r: r["seed"])) for p in args.policies}
        add_ratios(rows)
        out[s] = rows
    return out


def run_throughput(args: argparse.Namespace) -> dict[str, Any]:
    if args.pairs == 0:
        return {}
    rows: dict[str, Any] = {}
    order = ["uniform_random", *(p for p in args.policies if p != "uniform_random")]
    for row in order:
        rows[row] = throughput(row, args.pairs, args.repeats)
        log(f"throughput {row}: {rows[row]['pairs_per_s']:,.0f} pairs/s ({rows[row]['us_per_pair']:.1f} µs)")
    base = rows["uniform_random"]["pairs_per_s"]
    for x in rows.values():
        x["vs_baseline"] = ratio(x["pairs_per_s"], base)
    return {"baseline": "uniform_random", "baseline_does": "decision_rng + screen + uniform choice + seed reward",
            "world": "stationary", "rows": rows, "screen_only": screen_only(args.pairs, args.repeats)}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    info = meta(args)
    log(f"n={args.n:,}, seeds {args.seeds}, scenarios {','.join(args.scenarios)}, rows {','.join(args.policies)}, "
        f"jobs {args.jobs}; result → {args.out}")
    scenarios = run_regret(args)
    log("throughput (one process, after the regret runs)")
    thr = run_throughput(args)
    mark_finished(info)
    report = assemble(info, scenarios, thr, args.n)
    publish(report, args.out, table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
