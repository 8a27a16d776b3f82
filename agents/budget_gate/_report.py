"""Budget reports (CONTRACT §7.2): load, validate, and hold the samples of one run.

A run is ``{"scenarios": [{"name": ..., "tokens": [...], "latency_ms": [...]}, ...]}``;
a combined file holds two runs under ``"baseline"`` and ``"current"``. Validation is strict,
because a report the gate cannot read must never pass:

* the file must exist and be JSON; a run must be an object with a non-empty
  ``scenarios`` list;
* every scenario needs a non-blank, unique ``name`` and non-empty ``tokens`` and
  ``latency_ms`` lists of finite non-negative numbers (booleans are not numbers).

Every error is a `ReportError` naming the file and the field:

>>> parse_run({"scenarios": [{"name": "a", "tokens": [1, -2], "latency_ms": [3]}]}, "baseline.json")
Traceback (most recent call last):
...
resontinex.agents.budget_gate.exceptions.ReportError: baseline.json: scenarios[0].tokens[1]: expected a finite non-negative number (got -2)
>>> run = parse_run({"scenarios": [{"name": "refund_flow", "tokens": [1210, 1185], "latency_ms": [840]}]}, "b.json")
>>> run.scenarios[0].tokens.tolist(), run.scenarios[0].field
([1210.0, 1185.0], 'scenarios[0]')
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .exceptions import ReportError

__all__ = ["Run", "Scenario", "load_report_file", "load_run", "parse_run"]

_SAMPLE_FIELDS = ("tokens", "latency_ms")


@dataclass(frozen=True, eq=False, slots=True)
class Scenario:
    """The samples of one scenario in one run; `field` says where it came from (for messages)."""

    name: str
    tokens: np.ndarray
    latency_ms: np.ndarray
    field: str


@dataclass(frozen=True, eq=False, slots=True)
class Run:
    """One run: its scenarios in report order, and its `source` (a file path or a description)."""

    source: str
    scenarios: tuple[Scenario, ...]


def load_run(path: str | Path) -> Run:
    """The run in a one-run report file (`--baseline`, `--current`)."""
    return parse_run(_read_json(path), str(path))


def load_report_file(path: str | Path) -> tuple[Run, Run]:
    """The (baseline, current) runs of a combined report file (`--report-file`)."""
    obj = _read_json(path)
    if not isinstance(obj, dict):
        raise ReportError(str(path), "", 'expected a JSON object with "baseline" and "current"')
    return _run_under(obj, "baseline", str(path)), _run_under(obj, "current", str(path))


def parse_run(obj: Any, source: str, prefix: str = "") -> Run:
    """Validate one run's JSON value; `prefix` leads every field name (``baseline.`` in a combined file)."""
    if not isinstance(obj, dict):
        raise ReportError(source, prefix.rstrip("."), 'expected a JSON object with "scenarios"')
    field = f"{prefix}scenarios"
    if "scenarios" not in obj:
        raise ReportError(source, field, "missing")
    items = obj["scenarios"]
    if not isinstance(items, list) or not items:
        raise ReportError(source, field, "expected a non-empty list of scenarios with samples")
    scenarios = tuple(_scenario(item, source, f"{field}[{i}]") for i, item in enumerate(items))
    seen: set[str] = set()
    for scenario in scenarios:
        if scenario.name in seen:
            raise ReportError(source, f"{scenario.field}.name", f"duplicate scenario {scenario.name!r}")
        seen.add(scenario.name)
    return Run(source, scenarios)


def _read_json(path: str | Path) -> Any:
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise ReportError(str(path), "", "file not found") from None
    except OSError as exc:
        raise ReportError(str(path), "", f"cannot read: {exc.strerror or exc}") from None
    try:
        return json.loads(raw)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise ReportError(str(path), "", f"not JSON ({exc})") from None


def _run_under(obj: dict[str, Any], key: str, source: str) -> Run:
    if key not in obj:
        raise ReportError(source, key, "missing")
    return parse_run(obj[key], source, f"{key}.")


def _scenario(item: Any, source: str, field: str) -> Scenario:
    if not isinstance(item, dict):
        raise ReportError(source, field, 'expected an object with "name", "tokens" and "latency_ms"')
    name = item.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ReportError(source, f"{field}.name", "expected a non-blank string")
    tokens, latency = (_samples(item, key, source, f"{field}.{key}") for key in _SAMPLE_FIELDS)
    return Scenario(name, tokens, latency, field)


def _samples(item: dict[str, Any], key: str, source: str, field: str) -> np.ndarray:
    if key not in item:
        raise ReportError(source, field, "missing")
    values = item[key]
    if not isinstance(values, list) or not values:
        raise ReportError(source, field, "expected a non-empty list of non-negative numbers")
    for i, value in enumerate(values):
        if not _is_sample(value):
            raise ReportError(source, f"{field}[{i}]", f"expected a finite non-negative number (got {value!r})")
    return np.asarray(values, dtype=np.float64)


def _is_sample(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        number = float(value)
    except OverflowError:
        return False
    return math.isfinite(number) and number >= 0
