"""Tests of the budget gate; helpers to build CONTRACT §7.2 reports shared by them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from resontinex.agents.budget_gate import Run, parse_run

ScenarioSpec = tuple[str, Sequence[float], Sequence[float]]


def report(*scenarios: ScenarioSpec) -> dict[str, Any]:
    """A report: one (name, tokens, latency_ms) per scenario."""
    return {"scenarios": [{"name": n, "tokens": list(t), "latency_ms": list(lat)} for n, t, lat in scenarios]}


def run(source: str, *scenarios: ScenarioSpec) -> Run:
    return parse_run(report(*scenarios), source)


def write(path: Path, obj: Any) -> str:
    path.write_text(json.dumps(obj), encoding="utf-8")
    return str(path)
