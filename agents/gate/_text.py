"""Text-only decision requests: scored by the trajectory group first, through topics.

A request with `text` and no `signals.epistemic_risk` is not decided on arrival. The gate
keeps it in the `awaiting-text` table and sends its text to `trajectory-requests`
(`request_id` = the request's id). When the trajectory result comes back on
`trajectory-results`, the core role's fusion agent puts the request back on
`decision-requests` with the risk filled in from the result's mean entropy
(`risk_from_entropy`) and a `trajectory` block saying so; the gate then decides it like
any other. With no result after `fusion_timeout_s` (the trajectory group is down or
slow), the request goes back marked `timeout` and is judged at worst-case risk. With no
member in the trajectory group at all, the gate does not wait: it marks the request
`unavailable` and judges it at worst-case risk at once.
"""

from __future__ import annotations

import copy
from typing import Any

from resontinex.agents.trajectory import TrajectoryConfig, risk_from_entropy
from resontinex.schemas import DecisionRequest

from ._decide import derived_id

HELD_BACK = "judged at worst-case risk 1.0, so held back (defer at least)"


def needs_text_score(request: DecisionRequest) -> bool:
    """A request whose risk must come from its text, not yet scored."""
    return request.signals.epistemic_risk is None and request.trajectory is None and bool(request.text)


def awaiting_key(tenant: str, request_id: str) -> str:
    return f"{tenant}\x1f{request_id}"


def trajectory_request(tenant: str, request: DecisionRequest) -> dict[str, Any]:
    """The `trajectory-requests` event for a request's text (its id derives from the request's)."""
    return {"event_id": derived_id("tq-", tenant, request.event_id), "schema_version": 1, "tenant": tenant, "text": request.text,
            "request_id": request.event_id}


def scored_request(raw: dict[str, Any], result: dict[str, Any], cfg: TrajectoryConfig) -> dict[str, Any]:
    """The request as received, with the risk from the result's mean entropy and how it was got.

    >>> raw = {"event_id": "r", "tenant": "t", "text": "hi", "signals": {"alignment_score": 0.9}}
    >>> result = {"event_id": "tr-1", "model": "m", "mean_entropy": 4.0, "perplexity": 20.0,
    ...           "passed_quality_check": True}
    >>> out = scored_request(raw, result, TrajectoryConfig())
    >>> out["signals"]["epistemic_risk"], out["trajectory"]["status"], "epistemic_risk" in raw["signals"]
    (0.5, 'scored', False)
    """
    out = copy.deepcopy(raw)
    out["signals"]["epistemic_risk"] = risk_from_entropy(result["mean_entropy"], cfg)
    out["trajectory"] = {"status": "scored", "result_id": result["event_id"], "model": result["model"],
                         "mean_entropy": result["mean_entropy"], "perplexity": result["perplexity"],
                         "passed_quality_check": result["passed_quality_check"]}
    return out


def timed_out_request(raw: dict[str, Any]) -> dict[str, Any]:
    return {**raw, "trajectory": {"status": "timeout"}}


def unscored_request(raw: dict[str, Any]) -> dict[str, Any]:
    """The request as received, marked as having had no trajectory group to score its text."""
    return {**raw, "trajectory": {"status": "unavailable"}}


def text_reason(request: DecisionRequest, cfg: TrajectoryConfig) -> dict[str, str] | None:
    """Why a request's risk is what it is, when it came from (or waited for) its text."""
    t, risk = request.trajectory, request.signals.epistemic_risk
    if t is None or (t.status == "scored" and risk is None):
        return None
    if t.status == "timeout":
        return {"component": "trajectory", "code": "text_risk_timeout",
                "message": f"no trajectory result for the text within {cfg.fusion_timeout_s:g} s: "
                           f"{HELD_BACK}"}
    if t.status == "unavailable":
        return {"component": "trajectory", "code": "text_scoring_unavailable",
                "message": f"no trajectory group is running to score the text: {HELD_BACK}"}
    return {"component": "trajectory", "code": "risk_from_text",
            "message": f"epistemic_risk {risk:.4f} from the text's mean entropy "
                       f"{t.mean_entropy:.4f} nats under {t.model} (linear from {cfg.risk_entropy_low:g} to "
                       f"{cfg.risk_entropy_high:g} nats)"
                       + ("" if t.passed_quality_check else "; the text failed the quality check")}
