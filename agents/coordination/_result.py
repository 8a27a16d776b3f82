"""The wire events of a run: its `coordination-results` event and a `costs` event per call.

Ids derive from the request (and the call), so a run repeated after a crash repeats them:
consumers drop the repeated result, and the budget agent counts each call's cost once.
"""

from __future__ import annotations

import hashlib
from typing import Any

from resontinex.agents.events import derived_id

from ._metrics import gamma, omega
from ._run import RunReport, RunRequest

__all__ = ["PROVIDER", "cost_events", "result_event", "result_id"]

PROVIDER = "anthropic"


def result_id(tenant: str, request_event_id: str) -> str:
    """Deterministic, so a run repeated after a crash repeats its result's id.

    >>> result_id("acme", "c-1") == result_id("acme", "c-1") != result_id("acme", "c-2")
    True
    """
    return derived_id("cr-", tenant, request_event_id)


def result_event(request: RunRequest, report: RunReport, *, tenant: str, request_event_id: str,
                 ts: str) -> dict[str, Any]:
    """CONTRACT §3.9's result; γ, ω and their verdicts are null when the run could not measure them."""
    measured = report.coordinated_quality is not None and bool(report.baseline_qualities)
    g = gamma(report.coordinated_quality, report.baseline_qualities) if measured else None  # type: ignore[arg-type]
    w = omega(report.coordinated_quality, report.baseline_qualities) if measured else None  # type: ignore[arg-type]
    return {
        "event_id": result_id(tenant, request_event_id), "schema_version": 1,
        "request_event_id": request_event_id, "tenant": tenant, "strategy": request.strategy,
        "model": request.model, "agents": request.agents, "gamma": g, "omega": w,
        "consensus_rate": report.consensus_rate, "coordinated_quality": report.coordinated_quality,
        "baseline_qualities": list(report.baseline_qualities),
        "effective": None if g is None else g > 1.0, "emergence": None if w is None else w > 0.0,
        "responses": [{"agent": a.agent, "text_sha256": hashlib.sha256(a.text.encode()).hexdigest(),
                       "output_tokens": a.output_tokens} for a in report.answers],
        "input_tokens": sum(c.input_tokens for c in report.calls),
        "output_tokens": sum(c.output_tokens for c in report.calls),
        "calls": len(report.calls), "cost_usd": round(report.cost_usd, 9),
        "baseline_cached": report.baseline_cached, "status": report.status,
        "errors": [{"code": code, "message": message} for code, message in report.errors], "ts": ts,
    }


def cost_events(report: RunReport, *, tenant: str, workflow: str, request_event_id: str,
                ts: str) -> list[dict[str, Any]]:
    """One `costs` event (CONTRACT §3.4) per call the run made."""
    return [{"event_id": derived_id("cc-", tenant, request_event_id, c.call_id), "schema_version": 1,
             "tenant": tenant, "workflow": workflow, "provider": PROVIDER, "model": c.model,
             "input_tokens": c.input_tokens, "output_tokens": c.output_tokens, "cost_usd": c.cost_usd,
             "latency_ms": c.latency_ms, "ts": ts} for c in report.calls]
