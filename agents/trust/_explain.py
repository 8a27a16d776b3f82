"""Human- and audit-readable accounts of evaluations: :func:`explain` (one, in full) and
:func:`explain_batch` (every row of a batch, compact: what decisions and audit records carry)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ._batch import BatchResult
from ._config import TrustConfig, policy_version
from ._gate import TrustResult, evaluate
from ._inputs import SIGNALS, InputVector
from ._math import EPS, HI, LO, batch_primitives, clamp, logit
from ._names import DEFER, EXECUTE, REVIEW, TIER_DECISIONS


def explain(result: TrustResult, inputs: InputVector, config: TrustConfig) -> dict[str, Any]:
    """Everything that led from ``inputs`` to ``result`` under ``config``, as JSON-able data.

    Per signal: the input, its clamped value, the value whose logit is taken (``1 - x``
    for risk and confidence band), the logit, the weight and the weighted term; then z,
    the raw and rounded score, every threshold, the tier and the decision path: the tier
    decision followed by each modifier rule, whether its condition held, whether it
    changed the verb, the verb after it, and why. Raises ``ValueError`` if ``result`` is
    not what ``inputs`` and ``config`` produce.

    >>> from resontinex.agents.trust import default_config
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


def explain_batch(
    a: npt.NDArray[np.float64],
    r: npt.NDArray[np.float64],
    c: npt.NDArray[np.float64],
    result: BatchResult,
    config: TrustConfig,
    tier_scores: Sequence[float] | None = None,
) -> list[dict[str, Any]]:
    """The compact explanation of each row of ``result`` (= ``evaluate_batch(a, r, c, config)``,
    perhaps re-judged by :func:`rejudge` on ``tier_scores``), as JSON-able dicts.

    Per signal its ``weight``, ``clamped`` input, ``logit`` (of the clamped value for
    alignment, of ``1 - clamped`` for risk and confidence band) and ``contribution``
    (weight × logit); their sum in ``SIGNALS`` order is ``z`` bit for bit, and
    ``sigmoid(z)`` is ``raw_score``. Then ``score``, ``tier_score`` (the score the tier is
    read from: ``score``, or the calibrated score under ``decide_on: calibrated``), the
    ``tier`` with its ``tier_bounds`` (``tier_score`` is above ``above``, null for the
    lowest tier, and at most ``at_most``), the tier's verb and ``verb_changes``: each rule
    that changed the verb, with the reason codes, the verb ``before`` and ``after``. ``verb`` is
    the verb so far; :func:`verb_change` appends the rules applied after the gate.
    Vectorised: three logits per batch, then one dict per row from plain floats.

    >>> import numpy as np
    >>> from resontinex.agents.trust import default_config, evaluate_batch
    >>> a, r, c = np.array([0.8, 0.8]), np.array([0.3, 0.3]), np.array([0.2, 0.9])
    >>> first, second = explain_batch(a, r, c, evaluate_batch(a, r, c, default_config()), default_config())
    >>> round(first["z"], 6), first["tier"], first["tier_bounds"], first["verb"], first["verb_changes"]
    (1.197646, 'pass', {'above': 0.75, 'at_most': 1.01}, 'execute', [])
    >>> second["verb_changes"]
    [{'component': 'trust', 'codes': ['entropy_flag'], 'before': 'execute', 'after': 'defer'}]
    """
    logit_, _ = batch_primitives()
    clamped = [np.clip(x, LO, HI) for x in (a, r, c)]
    logits = [logit_(clamped[0]), logit_(1.0 - clamped[1]), logit_(1.0 - clamped[2])]
    terms = [w * x for w, x in zip(config.weights, logits)]
    z = terms[0] + terms[1] + terms[2]  # evaluate_batch's operations, in its order
    bounds = {
        name: {"above": below, "at_most": threshold}
        for name, below, threshold in zip(config._tiers, (None, *config._thresholds), config._thresholds)
    }
    weights = config.weights
    names = SIGNALS
    columns = zip(
        *(x.tolist() for x in clamped), *(x.tolist() for x in logits), *(x.tolist() for x in terms),
        z.tolist(), result.raw_score.tolist(), result.score.tolist(),
        result.score.tolist() if tier_scores is None else tier_scores,
        result.tier.tolist(), result.decision.tolist(), result.entropy_flag.tolist(),
    )
    out: list[dict[str, Any]] = []
    for ca, cr, cc, la, lr, lc, ta, tr, tc, zi, raw, score, tier_score, tier_i, verb_i, flag in columns:
        tier = result.tier_names[tier_i]
        tier_verb, verb = TIER_DECISIONS[tier], result.decision_names[verb_i]
        changes = [] if verb == tier_verb else [{
            "component": "trust", "codes": ["entropy_flag" if flag else "trust_floor_violation"],
            "before": tier_verb, "after": verb,
        }]
        out.append({
            "signals": {
                names[0]: {"weight": weights[0], "clamped": ca, "logit": la, "contribution": ta},
                names[1]: {"weight": weights[1], "clamped": cr, "logit": lr, "contribution": tr},
                names[2]: {"weight": weights[2], "clamped": cc, "logit": lc, "contribution": tc},
            },
            "z": zi, "raw_score": raw, "score": score, "tier_score": tier_score,
            "tier": tier, "tier_bounds": bounds[tier], "tier_verb": tier_verb,
            "verb_changes": changes, "verb": verb,
        })
    return out


def verb_change(explanation: dict[str, Any], reasons: Sequence[Mapping[str, str]], verb: str) -> str:
    """Record in ``explanation`` that the rules behind ``reasons`` made its verb ``verb``, if
    that changed it (the component is the first reason's); return ``verb``.

    >>> e = {"verb_changes": [], "verb": "execute"}
    >>> verb_change(e, [{"component": "budget", "code": "budget_blocked"}], "defer")
    'defer'
    >>> verb_change(e, [{"component": "route", "code": "routed"}], "defer")
    'defer'
    >>> e
    {'verb_changes': [{'component': 'budget', 'codes': ['budget_blocked'], 'before': 'execute', 'after': 'defer'}], 'verb': 'defer'}
    """
    if verb != explanation["verb"]:
        explanation["verb_changes"].append({
            "component": reasons[0]["component"] if reasons else "unknown",
            "codes": [reason["code"] for reason in reasons], "before": explanation["verb"], "after": verb,
        })
        explanation["verb"] = verb
    return verb
