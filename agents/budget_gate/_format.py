"""Render a `GateResult`: ``text`` (terminal), ``json`` (machines), ``github`` (pull requests).

The JSON object (`to_dict`; stable: fields are only ever added, ``schema_version`` says so)::

    {"schema_version": 1,
     "budget_status": "pass" | "warn" | "block",
     "token_delta_pct": float,            # mean over common scenarios (CONTRACT §7.2)
     "p95_latency_ms": float,             # nearest-rank P95 of every current sample
     "tokens":  {"status", "delta_pct", "ci_pct": [low, high] | null, "significant": bool | null, "note"},
     "latency": {"status", "p95_ms", "baseline_p95_ms", "increase_ci_ms": [low, high] | null,
                 "significant": bool | null, "note"},
     "scenarios": [{"name", "baseline_n", "current_n", "baseline_mean_tokens", "current_mean_tokens",
                    "delta_pct", "ci_pct", "significant", "baseline_p95_ms", "current_p95_ms", "note"}],
     "only_in_baseline": [name, ...], "only_in_current": [name, ...],
     "thresholds": {"token_warn_pct", "token_block_pct", "latency_warn_ms", "latency_block_ms",
                    "alpha", "statistics"},
     "method": str}

Intervals are (1 − alpha) percentile-bootstrap intervals; ``null`` stands for "not
computed" (too few samples, statistics off) and for an infinite bound (growth from a
resampled baseline mean of 0), so the output is always strict JSON.

The ``github`` format is the Markdown report for a pull-request comment preceded by one
``::warning::`` or ``::error::`` workflow command per metric that warns or blocks.
"""

# No `from __future__ import annotations` here: it would bind the name `annotations` that
# this module's public `annotations()` takes (every annotation below is valid at runtime).
import json
import math
from dataclasses import asdict
from typing import Any, Final, Literal

from ._compare import DRAWS, GateResult, Status

__all__ = ["FORMATS", "METHOD", "OutputFormat", "annotations", "markdown", "render", "to_dict"]

OutputFormat = Literal["text", "json", "github"]
FORMATS: Final[tuple[OutputFormat, ...]] = ("text", "json", "github")
METHOD: Final = (f"token delta: seeded percentile bootstrap ({DRAWS} resamples per side and scenario); "
                 "a block within the noise is reported as warn")
_BADGE: Final[dict[Status, str]] = {"pass": "✅ pass", "warn": "⚠️ warn", "block": "⛔ block"}
_COMMAND: Final[dict[Status, str]] = {"warn": "warning", "block": "error"}


def render(result: GateResult, output_format: OutputFormat) -> str:
    """The report in one of `FORMATS`, without a trailing newline."""
    if output_format == "json":
        return json.dumps(to_dict(result), indent=2, ensure_ascii=False, allow_nan=False)
    if output_format == "github":
        return "\n".join([*annotations(result), "", markdown(result)]).lstrip("\n")
    return _text(result)


def to_dict(result: GateResult) -> dict[str, Any]:
    """The documented JSON object (module docstring); every float is finite or None."""
    body = asdict(result)
    del body["budget_status"]
    finite: dict[str, Any] = _finite({"schema_version": 1, "budget_status": result.budget_status,
                                      "token_delta_pct": result.tokens.delta_pct,
                                      "p95_latency_ms": result.latency.p95_ms, **body, "method": METHOD})
    return finite


def markdown(result: GateResult) -> str:
    """Markdown for a pull-request comment or a job summary: status, metric and scenario tables."""
    lines = [f"### Budget gate: {_BADGE[result.budget_status]}", "", *_md_table(_metric_table(result)), "",
             *_md_table(_scenario_table(result)), *_only_in(result), "", f"<sub>{METHOD}</sub>"]
    return "\n".join(lines)


def annotations(result: GateResult) -> list[str]:
    """One GitHub workflow command (``::warning::``/``::error::``) per metric that warns or blocks."""
    t = result.thresholds
    metrics = (
        ("tokens", result.tokens.status, f"token delta {_pct(result.tokens.delta_pct)}",
         t.token_warn_pct, t.token_block_pct, "%", result.tokens.note),
        ("latency", result.latency.status, f"P95 latency {_num(result.latency.p95_ms)} ms",
         t.latency_warn_ms, t.latency_block_ms, "ms", result.latency.note),
    )
    out = []
    for metric, status, what, warn, block, unit, note in metrics:
        if status != "pass":
            threshold = f"{status} threshold {_num(block if status == 'block' else warn)} {unit}"
            message = f"{what} is at or above the {threshold}" + (f"; {note}" if note else "")
            out.append(f"::{_COMMAND[status]} title=Budget gate {metric}::{_escape(message)}")
    return out


def _text(result: GateResult) -> str:
    lines = [f"budget gate: {result.budget_status.upper()}", "", *_text_table(_metric_table(result)), "",
             *_text_table(_scenario_table(result)), *_only_in(result)]
    return "\n".join(lines)


def _metric_table(result: GateResult) -> list[list[str]]:
    t, tokens, latency = result.thresholds, result.tokens, result.latency
    return [
        ["metric", "value", f"{t.confidence} interval", "significant", "warn at", "block at", "status", "note"],
        [f"token delta (mean of {len(result.scenarios)} scenario{'s' * (len(result.scenarios) > 1)})",
         _pct(tokens.delta_pct),
         _interval(tokens.ci_pct, "%"), _yes_no(tokens.significant),
         f"≥ {_num(t.token_warn_pct)} %", f"≥ {_num(t.token_block_pct)} %", tokens.status, tokens.note],
        [f"P95 latency (baseline {_num(latency.baseline_p95_ms)} ms)", f"{_num(latency.p95_ms)} ms",
         _interval(latency.increase_ci_ms, "ms"), _yes_no(latency.significant),
         f"≥ {_num(t.latency_warn_ms)} ms", f"≥ {_num(t.latency_block_ms)} ms", latency.status, latency.note],
    ]


def _scenario_table(result: GateResult) -> list[list[str]]:
    header = ["scenario", "baseline tokens (n)", "current tokens (n)", "delta",
              f"{result.thresholds.confidence} interval", "significant", "P95 ms baseline → current", "note"]
    return [header, *(
        [_one_line(r.name), f"{_num(r.baseline_mean_tokens)} ({r.baseline_n})",
         f"{_num(r.current_mean_tokens)} ({r.current_n})", _pct(r.delta_pct), _interval(r.ci_pct, "%"),
         _yes_no(r.significant), f"{_num(r.baseline_p95_ms)} → {_num(r.current_p95_ms)}", r.note]
        for r in result.scenarios
    )]


def _only_in(result: GateResult) -> list[str]:
    """Scenarios of one run only: listed (after a blank line, which ends a Markdown table), never dropped."""
    lines = [f"Only in the {run}: {', '.join(_one_line(n) for n in names)} (not compared)"
             for run, names in (("baseline", result.only_in_baseline), ("current run", result.only_in_current))
             if names]
    return ["", *lines] if lines else []


def _text_table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]


def _md_table(rows: list[list[str]]) -> list[str]:
    cells = [[cell.replace("|", "\\|") for cell in row] for row in rows]
    return [_md_row(cells[0]), _md_row(["---"] * len(cells[0])), *(_md_row(row) for row in cells[1:])]


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _num(value: float) -> str:
    """A number with thousands separators and at most one decimal.

    >>> _num(1990.0), _num(1199.25), _num(12.0), _num(float("inf"))
    ('1,990', '1,199.2', '12', 'inf')
    """
    return f"{value:,.1f}".removesuffix(".0")


def _pct(value: float) -> str:
    return f"{value:+,.1f} %"


def _interval(ci: tuple[float, float] | None, unit: str) -> str:
    return "n/a" if ci is None else f"{ci[0]:+,.1f} … {ci[1]:+,.1f} {unit}"


def _yes_no(flag: bool | None) -> str:
    return "n/a" if flag is None else "yes" if flag else "no"


def _escape(message: str) -> str:
    """Escape a workflow command's message: ``%``, CR and LF."""
    return message.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value
