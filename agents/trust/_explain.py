"""Human- and audit-readable account of one evaluation."""

from __future__ import annotations

from typing import Any

from ._config import TrustConfig, policy_version
from ._gate import TrustResult, evaluate
from ._inputs import SIGNALS, InputVector
from ._math import EPS, clamp, logit
from ._names import DEFER, EXECUTE, REVIEW


def explain(result: TrustResult, inputs: InputVector, config: TrustConfig) -> dict[str, Any]:
    """Everything that led from ``inputs`` to ``result`` under ``config``, as JSON-able data.

    Per signal: the input, its clamped value, the value whose logit is taken (``1 - x``
    for risk and confidence band), the logit, the weight and the weighted term; then z,
    the raw and rounded score, every threshold, the tier and the decision path: the tier
    decision followed by each modifier rule, whether its condition held, whether it
    changed the verb, the verb after it, and why. Raises ``ValueError`` if ``result`` is
    not what ``inputs`` and ``config`` produce.

    >>> from agents.trust import default_config
    >>> config, inputs = default_config(), InputVector(0.8, 0.3, 0.9)
    >>> report = explain(evaluate(inputs, config), inputs, config)
    >>> [(step["rule"], step["decision"]) for step in report["decision_path"] if step["applied"]]
    [('tier', 'execute'), ('entropy_flag', 'defer')]
    """
    if evaluate(inputs, config) != result:
        raise ValueError("result was not produced by these inputs under this config")
    contributions: dict[str, dict[str, float]] = {}
    for name, weight, term in zip(SIGNALS, config.weights, result.contributions):
        value = getattr(inputs, name)
        clamped = clamp(value)
        transformed = clamped if name == "alignment_score" else 1.0 - clamped
        contributions[name] = {
            "input": value,
            "clamped": clamped,
            "logit_of": transformed,
            "logit": logit(transformed),
            "weight": weight,
            "term": term,
        }

    tier_threshold = dict(config.risk_tiers)[result.tier]
    verb = result.tier_decision
    path = [
        {
            "rule": "tier",
            "triggered": True,
            "applied": True,
            "decision": verb,
            "why": f"score {result.score} <= {result.tier} threshold {tier_threshold} "
            f"(first tier, ascending): {result.tier} -> {verb}",
        }
    ]
    c = inputs.confidence_band
    for rule, flag, condition, new_verb in (
        (
            "entropy_flag",
            result.entropy_flag,
            f"confidence_band {c} {'>' if result.entropy_flag else '<='} "
            f"entropy_threshold {config.entropy_threshold}",
            DEFER,
        ),
        (
            "trust_floor",
            result.floor_violation,
            f"score {result.score} {'<' if result.floor_violation else '>='} "
            f"trust_floor {config.trust_floor}",
            REVIEW,
        ),
    ):
        applied = flag and verb == EXECUTE
        if applied:
            why = f"{condition}: {EXECUTE} -> {new_verb}"
        elif flag:
            why = f"{condition}, but only an {EXECUTE} is changed and the verb is {verb}"
        else:
            why = condition
        verb = new_verb if applied else verb
        path.append({"rule": rule, "triggered": flag, "applied": applied, "decision": verb, "why": why})

    return {
        "policy_version": policy_version(config),
        "config": config.as_dict(),
        "inputs": {name: getattr(inputs, name) for name in SIGNALS},
        "clamp": [EPS, 1.0 - EPS],
        "contributions": contributions,
        "z": result.z,
        "raw_score": result.raw_score,
        "score": result.score,
        "thresholds": {
            "risk_tiers": dict(config.risk_tiers),
            "trust_floor": config.trust_floor,
            "entropy_threshold": config.entropy_threshold,
        },
        "tier": result.tier,
        "tier_decision": result.tier_decision,
        "decision_path": path,
        "decision": result.decision,
        "floor_violation": result.floor_violation,
        "entropy_flag": result.entropy_flag,
    }
