"""The router simulator's pure helpers: expected rewards, the oracle, regret accounting,
aggregation and verdicts, argument parsing, the report's shape from a tiny run. No timing
assertions (performance is measured by `python -m bench.router_sim`, never asserted in
unit tests)."""

from __future__ import annotations

import doctest
import json
import math

import numpy as np
import pytest

import bench.router_sim as sim
from resontinex.agents.router import reward
from bench.router_sim import (BASE, BASELINE, POLICY_ROWS, REPORT_KEYS, SCENARIOS, Arm, UniformChooser,
                              add_ratios, aggregate, beat_target, best_changes, convergence, draws, expected_reward,
                              feasible, main, oracle, outcome, parse_args, regret_summary, simulate)


def test_module_doctests():
    assert doctest.testmod(sim).failed == 0


def test_expected_reward_is_seed_002s_reward_in_expectation():
    assert expected_reward(Arm("x", 1.0, 1.45, 145, 89)) == pytest.approx(9.15)  # issue 4's worked example
    assert expected_reward(Arm("x", 0.0, 1.45, 145, 89)) == -20.0
    # p·(10 − price − latency/500 + reputation/100) − 20·(1 − p)
    assert expected_reward(Arm("x", 0.92, 1.5, 200, 85)) == pytest.approx(0.92 * 8.95 - 20 * 0.08)
    assert expected_reward(Arm("x", 0.97, 2.5, 120, 95), gpu_hours=2.0) == pytest.approx(0.97 * 5.71 - 0.6)


@pytest.mark.parametrize("arm", [BASE[0], BASE[3], Arm("y", 0.5, 3.0, 400, 60)])
def test_expected_reward_matches_sampled_outcomes(arm):
    n = 40_000
    rng = np.random.default_rng(11)
    u, h, z = rng.random(n), rng.random(n), rng.standard_normal(n)
    rewards = [reward(success=o.success, cost_usd=o.cost_usd, latency_ms=o.latency_ms, reputation=o.reputation)
               for o in (outcome(arm, u[i], h[i], z[i]) for i in range(n))]
    se = float(np.std(rewards)) / math.sqrt(n)
    assert abs(float(np.mean(rewards)) - expected_reward(arm)) < 4 * se + 1e-9


def test_outcome_draws_map_to_success_cost_and_latency():
    arm = Arm("x", 0.9, 2.0, 100, 90)
    assert outcome(arm, 0.89, 0.0, 0.0).success and not outcome(arm, 0.9, 0.0, 0.0).success
    assert outcome(arm, 0.5, 0.0, 0.0).cost_usd == pytest.approx(1.5)  # 0.75 h
    assert outcome(arm, 0.5, 1.0, 0.0).cost_usd == pytest.approx(2.5)  # 1.25 h
    assert outcome(arm, 0.5, 0.5, 1.0).latency_ms > outcome(arm, 0.5, 0.5, 0.0).latency_ms
    assert outcome(arm, 0.5, 0.5, 0.0).reputation == 90


def test_offers_are_contract_provider_dicts():
    from resontinex.schemas._inputs import Provider

    for arm in BASE:
        offer = arm.offer()
        assert Provider.model_validate(offer).provider_id == arm.provider_id
        assert "success_p" not in offer  # hidden from the router


def test_oracle_picks_the_best_feasible_provider():
    mu = [expected_reward(a) for a in BASE]
    bargain = [a.provider_id for a in BASE].index("bargain")
    assert not feasible(BASE[bargain]) and mu[bargain] == max(mu)  # the best on paper, screened out
    assert BASE[oracle(BASE, mu)].provider_id == "akash"
    with pytest.raises(ValueError):
        oracle([BASE[bargain]], [mu[bargain]])


def test_scenarios_move_the_best_provider_as_described():
    n = 1000
    assert best_changes(SCENARIOS["stationary"], n) == [{"t": 0, "best": "akash"}]
    assert best_changes(SCENARIOS["switch"], n) == [{"t": 0, "best": "akash"}, {"t": n // 2, "best": "vast"}]
    drift = best_changes(SCENARIOS["drift"], n)
    assert [c["best"] for c in drift] == ["akash", "vast"] and 0.3 * n < drift[1]["t"] < 0.6 * n
    start, end = SCENARIOS["drift"].arms_at(0, n), SCENARIOS["drift"].arms_at(n - 1, n)
    by_id = {a.provider_id: (a, b) for a, b in zip(start, end)}
    assert by_id["vast"][1].price_usd_per_hour < by_id["vast"][0].price_usd_per_hour  # prices move too
    assert by_id["lambda"][0] == by_id["lambda"][1]


def test_draws_are_common_to_every_policy_and_differ_by_seed():
    a, b, c = draws(3, "stationary", 50, 6), draws(3, "stationary", 50, 6), draws(4, "stationary", 50, 6)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0]) and not np.array_equal(a[0], draws(3, "drift", 50, 6)[0])


def test_regret_summary_on_a_hand_made_sequence():
    regrets = [2.0] * 4 + [1.0] * 4 + [0.5] * 4 + [0.0] * 8
    on_best = [False] * 12 + [True] * 8
    s = regret_summary(regrets, on_best, every=5)
    assert s["regret"] == 14.0
    assert s["curve"] == [[5, 9.0], [10, 13.0], [15, 14.0], [20, 14.0]]
    assert s["quarters"] == [9.0, 4.0, 1.0, 0.0] and s["last_vs_first_quarter"] == 0.0
    assert s["best_share_last10"] == 1.0
    assert regret_summary([0.0] * 8, [True] * 8, 4)["last_vs_first_quarter"] is None  # nothing to flatten


class Scripted(UniformChooser):
    """Always the same provider."""

    def __init__(self, pid: str) -> None:
        super().__init__()
        self.pid = pid

    def decide(self, offers, ctx, cons, rng):
        return self.pid


def test_simulate_accounts_regret_against_the_oracle():
    n = 200
    mu = {a.provider_id: expected_reward(a) for a in BASE}
    vast = simulate("stationary", "x", 0, n, 50, pick=Scripted("vast"))
    assert vast["regret"] == pytest.approx(n * (mu["akash"] - mu["vast"]))
    assert vast["best_share_last10"] == 0.0 and vast["choices"]["vast"] == n
    akash = simulate("stationary", "x", 0, n, 50, pick=Scripted("akash"))
    assert akash["regret"] == 0.0 and akash["best_share_last10"] == 1.0
    bad = simulate("stationary", "x", 0, n, 50, pick=Scripted("bargain"))
    assert bad["infeasible_chosen"] == n and bad["regret"] < 0  # better than the oracle only by breaking a limit
    # switch: akash is right before n/2 and wrong after it
    sw = simulate("switch", "x", 0, n, 50, pick=Scripted("akash"))
    arms_after = SCENARIOS["switch"].arms_at(n - 1, n)
    gap = expected_reward(arms_after[-2]) - expected_reward(arms_after[0])  # vast − akash after the drop
    assert sw["regret"] == pytest.approx(n // 2 * gap) and sw["quarters"][0] == 0.0


def test_simulate_routes_through_the_router_and_never_picks_the_screened_out_provider():
    r = simulate("stationary", "epsilon_greedy", 1, 300, 100)
    assert r["deferred"] == 0 and r["infeasible_chosen"] == 0 and r["choices"]["bargain"] == 0
    assert sum(r["choices"].values()) == 300 == r["explore"] + r["exploit"]
    assert r["final_epsilon"] == pytest.approx(max(0.01, 0.1 * 0.995 ** 300))
    again = simulate("stationary", "epsilon_greedy", 1, 300, 100)
    assert again["regret"] == r["regret"] and again["choices"] == r["choices"]  # deterministic per seed


def _row(regret_by_seed, shares, flats):
    return aggregate([{"seed": i, "regret": r, "curve": [[1, r / 2], [2, r]], "best_share_last10": s,
                       "quarters": [1, 1, 1, f], "last_vs_first_quarter": f}
                      for i, (r, s, f) in enumerate(zip(regret_by_seed, shares, flats))])


def test_ratios_verdicts_and_the_30_percent_target():
    rows = {"uniform_random": _row([200.0, 200.0], [0.2, 0.2], [1.0, 1.0]),
            BASELINE: _row([90.0, 110.0], [0.9, 0.85], [0.2, 0.4]),
            "ucb1": _row([75.0, 75.0], [0.9, 0.9], [0.3, 0.3]),
            "ucb1_scaled": _row([60.0, 60.0], [0.9, 0.9], [0.3, 0.3]),
            "thompson": _row([80.0, 80.0], [0.9, 0.9], [0.3, 0.3])}
    add_ratios(rows)
    assert rows[BASELINE]["regret"] == {"mean": 100.0, "sd": pytest.approx(14.142136), "n": 2}
    assert rows[BASELINE]["curve"] == {"t": [1, 2], "mean": [50.0, 100.0], "sd": [7.071, 14.142]}
    assert rows["uniform_random"]["regret_vs_epsilon_greedy"] == 2.0
    assert rows["ucb1_scaled"]["regret_vs_epsilon_greedy"] == 0.6
    t = beat_target(rows)
    assert t["defaults_only"] == {"best": "ucb1", "ratio": 0.75, "met": False}
    assert t["any_row"] == {"best": "ucb1_scaled", "ratio": 0.6, "met": True}
    assert t["rows_meeting"] == ["ucb1_scaled"]
    c = convergence(rows[BASELINE])
    assert c["converged"] and c["seeds_share_met"] == c["seeds_flat_met"] == 2
    assert not convergence(_row([1.0, 1.0], [0.9, 0.5], [0.1, 0.1]))["converged"]
    assert not convergence(_row([1.0, 1.0], [0.9, 0.9], [0.1, 0.7]))["converged"]


def test_parse_args_defaults_quick_and_errors():
    a = parse_args([])
    assert (a.n, a.seeds, a.every, a.quick, a.jobs) == (20_000, 8, 1000, False, 1)
    assert a.scenarios == list(SCENARIOS) and a.policies == list(POLICY_ROWS)
    assert a.out.name.startswith("router-") and a.out.parent.name == "results"
    q = parse_args(["--quick"])
    assert (q.n, q.seeds, q.pairs) == (2_000, 2, 500)
    b = parse_args(["-n", "500", "--seeds", "3", "--policies", "thompson", "--scenarios", "drift", "--out", "x.json"])
    assert b.policies == [BASELINE, "thompson"]  # the baseline always runs
    assert (b.n, b.seeds, b.every, b.scenarios, str(b.out)) == (500, 3, 25, ["drift"], "x.json")
    for bad in (["--scenarios", "nope"], ["--policies", "greedy"], ["-n", "3"], ["--seeds", "0"]):
        with pytest.raises(SystemExit):
            parse_args(bad)


def test_tiny_run_writes_the_report(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["-n", "40", "--seeds", "2", "--every", "10", "--pairs", "5", "--repeats", "1",
                 "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert tuple(report) == REPORT_KEYS
    assert set(report["scenarios"]) == set(SCENARIOS)
    for name, sc in report["scenarios"].items():
        assert set(sc["rows"]) == set(POLICY_ROWS)
        assert sc["world"]["start"]["best"] == "akash"
        for row, x in sc["rows"].items():
            assert x["curve"]["t"] == [10, 20, 30, 40] and len(x["curve"]["mean"]) == 4
            assert x["regret"]["n"] == 2 and len(x["seeds"]) == 2
            assert all(s["deferred"] == 0 and s["infeasible_chosen"] == 0 for s in x["seeds"])
        assert sc["rows"][BASELINE]["regret_vs_epsilon_greedy"] in (1.0, None)
    assert set(report["convergence"][BASELINE]) == set(SCENARIOS)
    assert set(report["convergence"]["epsilon_greedy_avg"]) == set(SCENARIOS)
    assert set(report["targets"]) == {"beat_epsilon_greedy_by_30pct_stationary", "epsilon_greedy_converges_stationary",
                                      "epsilon_greedy_avg_converges_stationary"}
    thr = report["throughput"]
    assert thr["baseline"] == "uniform_random" and set(thr["rows"]) == set(POLICY_ROWS)
    assert thr["rows"]["uniform_random"]["vs_baseline"] == 1.0
    assert report["meta"]["n"] == 40 and "loadavg_before" in report["meta"] and report["meta"]["git_commit"]
    stdout = capsys.readouterr().out
    assert "baseline" in stdout and "written:" in stdout and "beat epsilon_greedy by 30 %" in stdout
