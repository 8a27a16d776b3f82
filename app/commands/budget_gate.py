"""`resontinex budget-gate`: the CI budget gate (CONTRACT §6, §7.2) on the command line.

Inputs, exactly one of:

* ``--baseline FILE --current FILE``: one report per run;
* ``--report-file FILE``: one report with both runs under ``"baseline"`` and ``"current"``;
* ``--from-kafka --baseline-range START,END --current-range START,END [--tenant T]``: both
  runs built from the ``costs`` topic (every partition, read up to its end when the
  command starts). A range is half-open, [START, END); START and END are RFC 3339
  timestamps with a UTC offset (``2024-05-01T00:00:00Z``) or Unix epoch milliseconds, and
  the two ranges may overlap. A cost's time is its ``ts``, else its record timestamp;
  scenario = ``workflow``, tokens = ``input_tokens + output_tokens``, latency =
  ``latency_ms``. Invalid records are skipped and a repeated ``event_id`` counted once;
  both are counted in the log. A range without a valid cost is bad input.

Exit codes: 0 pass or warn, 1 block (or Kafka unreachable), 2 bad usage or bad input, with
a message naming the file (or range) and the field. ``--output-format github`` also
appends ``budget_status=<status>`` to ``$GITHUB_OUTPUT`` and the Markdown report to
``$GITHUB_STEP_SUMMARY`` when those are set.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from resontinex.agents.budget_gate import (
    FORMATS,
    BudgetGateError,
    Run,
    Scenario,
    Thresholds,
    compare,
    load_report_file,
    load_run,
    markdown,
    render,
)
from resontinex.schemas import Cost, InvalidEvent, decode, ms_to_ts, ts_to_ms

from resontinex.app.exceptions import UsageError
from resontinex.app.settings import Settings
from resontinex.app.commands.topic_reader import read_topic

if TYPE_CHECKING:
    from aiokafka import ConsumerRecord

__all__ = ["add_parser", "parse_range", "run"]

log = logging.getLogger("resontinex.budget_gate")

_EPOCH_MS = re.compile(r"-?\d+")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `budget-gate`; returns its parser (the caller adds the common Kafka flags)."""
    defaults = Thresholds()
    p = subparsers.add_parser("budget-gate", help="CI budget gate: token use and P95 latency, baseline vs current",
                              description="Compare token use and P95 latency of a current run with a baseline run "
                              "(CONTRACT §7.2).", epilog="exit: 0 pass or warn, 1 block, 2 bad input")
    reports = p.add_argument_group("budget reports (CONTRACT §7.2)")
    reports.add_argument("--baseline", metavar="FILE", help="the baseline run's report")
    reports.add_argument("--current", metavar="FILE", help="the current run's report")
    reports.add_argument("--report-file", metavar="FILE", help='one report with "baseline" and "current"')
    kafka = p.add_argument_group("from the costs topic")
    kafka.add_argument("--from-kafka", action="store_true", help="build both runs from the costs topic")
    kafka.add_argument("--baseline-range", metavar="START,END",
                       help="baseline time range [START, END): RFC 3339 with offset, or epoch ms")
    kafka.add_argument("--current-range", metavar="START,END", help="current time range, same syntax")
    kafka.add_argument("--tenant", help="only this tenant's costs (default: every tenant)")
    gate = p.add_argument_group("thresholds (a value at or above a threshold takes its status)")
    gate.add_argument("--token-warn-threshold", type=float, default=defaults.token_warn_pct, metavar="PCT",
                      help="token delta %% that warns")
    gate.add_argument("--token-block-threshold", type=float, default=defaults.token_block_pct, metavar="PCT",
                      help="token delta %% that blocks")
    gate.add_argument("--latency-warn", type=float, default=defaults.latency_warn_ms, metavar="MS",
                      help="P95 latency that warns")
    gate.add_argument("--latency-block", type=float, default=defaults.latency_block_ms, metavar="MS",
                      help="P95 latency that blocks")
    gate.add_argument("--alpha", type=float, default=defaults.alpha,
                      help="a token block is kept only if the (1 − alpha) bootstrap interval lies above 0")
    gate.add_argument("--no-stats", action="store_true", help="judge on the thresholds alone")
    p.add_argument("--output-format", choices=FORMATS, default="text",
                   help="report format; github also writes $GITHUB_OUTPUT and $GITHUB_STEP_SUMMARY")
    return p


def run(args: argparse.Namespace) -> int:
    """Run the gate; 0 pass or warn, 1 block. Bad input raises `UsageError` (exit 2)."""
    try:
        thresholds = Thresholds(args.token_warn_threshold, args.token_block_threshold, args.latency_warn,
                                args.latency_block, args.alpha, statistics=not args.no_stats)
        result = compare(*_runs(args), thresholds)
    except BudgetGateError as exc:
        raise UsageError(str(exc)) from exc
    if args.output_format == "github":
        _append_env_file("GITHUB_OUTPUT", f"budget_status={result.budget_status}\n")
        _append_env_file("GITHUB_STEP_SUMMARY", markdown(result) + "\n")
    print(render(result, args.output_format))
    return 1 if result.budget_status == "block" else 0


def parse_range(text: str, flag: str) -> tuple[int, int]:
    """``START,END`` as epoch milliseconds (half-open), each RFC 3339 with an offset or epoch ms.

    >>> parse_range("2024-05-01T00:00:00Z,1714608000000", "--current-range")
    (1714521600000, 1714608000000)
    >>> parse_range("2024-05-02T00:00:00Z,2024-05-01T00:00:00Z", "--current-range")
    Traceback (most recent call last):
    ...
    resontinex.app.exceptions.UsageError: --current-range '2024-05-02T00:00:00Z,2024-05-01T00:00:00Z': START must be before END
    """
    parts = [part.strip() for part in text.split(",")]
    if len(parts) != 2 or not all(parts):
        raise UsageError(f"{flag} {text!r}: expected START,END (RFC 3339 timestamps or epoch milliseconds)")
    start, end = (_instant(part, flag, text) for part in parts)
    if start >= end:
        raise UsageError(f"{flag} {text!r}: START must be before END")
    return start, end


def _instant(part: str, flag: str, text: str) -> int:
    if _EPOCH_MS.fullmatch(part):
        return int(part)
    try:
        return ts_to_ms(part)
    except ValueError:
        raise UsageError(f"{flag} {text!r}: {part!r} is neither an RFC 3339 timestamp with a UTC offset "
                         "nor epoch milliseconds") from None


def _runs(args: argparse.Namespace) -> tuple[Run, Run]:
    files = {"--baseline": args.baseline, "--current": args.current, "--report-file": args.report_file}
    kafka_only = {"--baseline-range": args.baseline_range, "--current-range": args.current_range,
                  "--tenant": args.tenant}
    if args.from_kafka:
        if given := [flag for flag, value in files.items() if value]:
            raise UsageError(f"--from-kafka reads the costs topic: drop {', '.join(given)}")
        if missing := [flag for flag in ("--baseline-range", "--current-range") if not kafka_only[flag]]:
            raise UsageError(f"--from-kafka needs {' and '.join(missing)}")
        windows = [_Window(label, *parse_range(kafka_only[f"--{label}-range"], f"--{label}-range"))
                   for label in ("baseline", "current")]
        settings = Settings.from_env(bootstrap=args.bootstrap, config_dir=args.config_dir)
        return asyncio.run(_cost_runs(settings, windows, args.tenant))
    if stray := [flag for flag, value in kafka_only.items() if value]:
        raise UsageError(f"{', '.join(stray)} only apply with --from-kafka")
    if args.report_file:
        if args.baseline or args.current:
            raise UsageError("--report-file holds both runs: drop --baseline and --current")
        return load_report_file(args.report_file)
    if not (args.baseline and args.current):
        raise UsageError("give --baseline FILE and --current FILE, or --report-file FILE, or --from-kafka "
                         "with --baseline-range and --current-range")
    return load_run(args.baseline), load_run(args.current)


def _append_env_file(variable: str, text: str) -> None:
    path = os.environ.get(variable)
    if not path:
        return
    try:
        with open(path, "a", encoding="utf-8") as out:
            out.write(text)
    except OSError as exc:
        raise UsageError(f"${variable} {path}: {exc.strerror or exc}") from None


@dataclass
class _Window:
    """One time range of the costs topic and the samples collected in it, per workflow."""

    label: str
    start_ms: int
    end_ms: int
    samples: dict[str, tuple[list[int], list[float]]] = field(default_factory=dict)

    def add(self, at_ms: int, workflow: str, tokens: int, latency_ms: float) -> None:
        if self.start_ms <= at_ms < self.end_ms:
            token_list, latency_list = self.samples.setdefault(workflow, ([], []))
            token_list.append(tokens)
            latency_list.append(latency_ms)

    def run(self, topic: str, tenant: str | None, counts: Counter[str]) -> Run:
        source = (f"costs topic {topic!r}{f' tenant {tenant!r}' if tenant else ''}, "
                  f"{self.label} range [{ms_to_ts(self.start_ms)}, {ms_to_ts(self.end_ms)})")
        if not self.samples:
            raise UsageError(f"{source}: no valid cost event ({counts['records']} records read, "
                             f"{counts['invalid']} invalid)")
        return Run(source, tuple(
            Scenario(name, np.asarray(tokens, dtype=np.float64), np.asarray(latency, dtype=np.float64),
                     f"workflow {name!r}")
            for name, (tokens, latency) in sorted(self.samples.items())
        ))


async def _cost_runs(settings: Settings, windows: list[_Window], tenant: str | None) -> tuple[Run, Run]:
    """The (baseline, current) runs of the costs topic: every valid, first-seen cost in each window."""
    topic = settings.topic("costs")
    seen: set[str] = set()
    counts: Counter[str] = Counter()

    def add(record: ConsumerRecord) -> None:
        counts["records"] += 1
        try:
            cost = decode(Cost, record.value)
        except InvalidEvent:
            counts["invalid"] += 1
            return
        if cost.event_id in seen:
            counts["duplicate"] += 1
            return
        seen.add(cost.event_id)
        if tenant is None or cost.tenant == tenant:
            at_ms = ts_to_ms(cost.ts) if cost.ts is not None else record.timestamp
            for window in windows:
                window.add(at_ms, cost.workflow, cost.input_tokens + cost.output_tokens, cost.latency_ms)

    await read_topic(settings.bootstrap, topic, add)
    log.log(logging.WARNING if counts["invalid"] else logging.INFO,
            "costs topic %r: %d records read, %d invalid skipped, %d repeated event_id dropped",
            topic, counts["records"], counts["invalid"], counts["duplicate"])
    baseline, current = (window.run(topic, tenant, counts) for window in windows)
    return baseline, current
