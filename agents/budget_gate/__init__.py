"""The CI budget gate: compare a baseline run with a current run (CONTRACT §7.2).

Pure: no Kafka, no asyncio. Load reports (`load_run`, `load_report_file`, or build `Run`
objects from other sources), `compare` them against `Thresholds`, `render` the result:

>>> run = lambda tokens: parse_run({"scenarios": [{"name": "refund_flow", "tokens": tokens,
...                                                "latency_ms": [840, 910, 1990]}]}, "report.json")
>>> result = compare(run([1210, 1185, 1302]), run([1390, 1365, 1497]))
>>> result.budget_status, round(result.tokens.delta_pct, 1), result.latency.p95_ms
('warn', 15.0, 1990.0)
>>> print(render(result, "json").splitlines()[2])
  "budget_status": "warn",
"""

from ._compare import (
    STATUSES,
    GateResult,
    LatencyVerdict,
    ScenarioRow,
    Status,
    Thresholds,
    TokenVerdict,
    compare,
    nearest_rank,
)
from ._format import FORMATS, OutputFormat, annotations, markdown, render, to_dict
from ._report import Run, Scenario, load_report_file, load_run, parse_run
from .exceptions import BudgetGateError, InvalidThresholds, ReportError

__all__ = [
    "FORMATS",
    "STATUSES",
    "BudgetGateError",
    "GateResult",
    "InvalidThresholds",
    "LatencyVerdict",
    "OutputFormat",
    "ReportError",
    "Run",
    "Scenario",
    "ScenarioRow",
    "Status",
    "Thresholds",
    "TokenVerdict",
    "annotations",
    "compare",
    "load_report_file",
    "load_run",
    "markdown",
    "nearest_rank",
    "parse_run",
    "render",
    "to_dict",
]
