"""`resontinex router evaluate`: off-policy evaluation of a routing policy (issue 4, item 6).

    resontinex router evaluate --policy CONFIG [--file F | --from-kafka] [--tenant T]
        [--frozen] [--q-table FILE] [--clip W] [--folds K] [--resamples B]
        [--confidence C] [--seed S] [--output-format text|json] [--bootstrap HOST:PORT]

Estimates the mean reward a candidate routing policy would have earned on the decisions
the router actually made, next to the logging policy's observed mean reward, with IPS,
self-normalised IPS and doubly robust estimators and bootstrap confidence intervals. The
estimators, the replay of the candidate and the reward model are documented in
`agents.router._ope`; this module reads and joins the logs.

**Logged data.** One row per routed decision that has an outcome:

- the request (`record.request` of an audit record of kind `decision`, CONTRACT §3.8):
  its `event_id`, `routing.context`, `routing.providers`, `routing.constraints`, `psi`;
- the logging policy's choice (`record.decision.route`, §3.2): `provider_id`,
  `propensity`, `policy`; the decision's `event_id` and `ts`;
- the outcome (§3.3) whose `decision_id` is that `event_id` (the first one read counts,
  as the router applies an outcome once), and its reward by seed 002's formula
  (`agents.router.reward` of `success`, `actual_cost_usd`, `actual_latency_ms`,
  `actual_reputation`).

Decisions without `route` (no routing asked), with a null `provider_id` (no feasible
provider: deferred), with no outcome, or with a zero or null propensity are skipped and
counted, as are repeated decisions, repeated outcomes, outcomes that match no decision
(or a decision of another tenant) and, with `--tenant`, other tenants' records. Rows are
taken in log order: by the decision's `ts` (else the audit record's), ties in read order
(a file's line order; on Kafka partition, then offset), which is the order a learning
candidate is trained in.

**Sources.** `--file F`: JSON Lines, each line an audit record (it has `kind`; records of
other kinds are ignored) or an outcome event (it has `decision_id`); blank lines are
skipped; a bad line is bad input naming the line number and the field. Otherwise
(`--from-kafka`, the default): the `audit` and `outcomes` topics (with
`RESONTINEX_TOPIC_PREFIX`) at `--bootstrap`, every partition read up to its true end
when its read begins (`app.commands.topic_reader`, by `app.engine.offsets.true_end_offsets`: the embedded
broker under-reports ListOffsets); there, a record that cannot be read is skipped,
counted and logged (the topics are written by others), never fatal.

**Candidate.** `--policy CONFIG` is a `routing.yaml` (`load_routing_config`): its policy,
hyper-parameters, constraint `mode` and `seed`. The candidate starts fresh, or from an
exported Q-table (`--q-table FILE`, an `export_q_table` document; its policy wins over
the file's `policy` key), and learns online from the logged rewards in log order, one
state per tenant; each row's probabilities are taken *before* it learns that row's
reward. `--frozen` evaluates it without learning.

**Output.** `text` (a table) or `json` (`--output-format`): the logging policy's observed
value and the IPS, SNIPS and DR estimates, each with `se` and a `--confidence` interval
(bootstrap percentile, `--resamples` resamples seeded by `--seed`, which also deals the
reward model's `--folds` folds), the weight diagnostics (effective sample size, mean
and largest weight, zero-weight and clipped rows), the candidate's defers and the
skipped counts. `--clip W` caps the importance weights at W (default: no cap).

**Exit codes.** 0 the estimates were printed; 2 bad usage or bad input (a bad line of the
file naming the line and the field, a bad `--policy` file naming the key, a bad Q-table
naming the value, a missing topic, or no usable row: no routed decision, no outcome
joined, or only zero propensities); 1 the broker is unreachable.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
from collections import Counter
from dataclasses import dataclass
from typing import Any, Final

import orjson

from resontinex.agents.router import (
    ConfigError,
    Constraints,
    Evaluation,
    LoggedRound,
    ProviderState,
    PsiReading,
    RouterError,
    RoutingPolicy,
    WorkloadContext,
    evaluate_policy,
    import_q_table,
    load_routing_config,
    make_policy,
    reward,
)
from resontinex.schemas import InvalidEvent, Outcome, Psi, Routing, decode, ts_to_ms

from resontinex.app.exceptions import UsageError
from resontinex.app.settings import Settings

__all__ = ["FORMATS", "LogCollector", "add_parser", "read_file", "render", "run"]

log = logging.getLogger("resontinex.router_eval")

FORMATS: Final = ("text", "json")
_SKIPS: Final = {  # counter name → how the text output says it
    "other_tenant": "of other tenants",
    "other_audit_records": "audit records of other kinds",
    "duplicate_decisions": "repeated decisions",
    "unrouted": "decisions without routing",
    "no_provider": "decisions with no feasible provider",
    "no_outcome": "routed decisions without an outcome",
    "zero_propensity": "with a zero or null propensity",
    "duplicate_outcomes": "repeated outcomes",
    "unmatched_outcomes": "outcomes matching no routed decision",
    "invalid_records": "unreadable records",
}


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the `evaluate` action on the `router` group's subparsers; returns its parser
    (the caller adds the common Kafka flags)."""
    p = subparsers.add_parser(
        "evaluate", help="off-policy evaluation of a routing policy on logged decisions and outcomes",
        description="Estimate a candidate routing policy's mean reward on logged decisions and outcomes "
        "(IPS, self-normalised IPS, doubly robust), next to the logging policy's observed value.",
        epilog="exit: 0 estimated, 1 broker unreachable, 2 bad usage or bad input")
    p.add_argument("--policy", required=True, metavar="CONFIG", help="the candidate's routing.yaml")
    source = p.add_argument_group("logged decisions and outcomes").add_mutually_exclusive_group()
    source.add_argument("--file", metavar="F", help="JSON Lines of audit records and outcome events")
    source.add_argument("--from-kafka", action="store_true",
                        help="read the audit and outcomes topics (the default without --file)")
    p.add_argument("--tenant", help="only this tenant's decisions and outcomes (default: every tenant)")
    cand = p.add_argument_group("candidate")
    cand.add_argument("--q-table", metavar="FILE", help="start from an exported Q-table (export_q_table JSON)")
    cand.add_argument("--frozen", action="store_true", help="no learning: evaluate the policy as it starts")
    est = p.add_argument_group("estimation")
    est.add_argument("--clip", type=float, metavar="W", help="cap the importance weights at W (default: none)")
    est.add_argument("--folds", type=int, default=5, metavar="K", help="cross-fitting folds of DR's reward model")
    est.add_argument("--resamples", type=int, default=2000, metavar="B", help="bootstrap resamples")
    est.add_argument("--confidence", type=float, default=0.95, metavar="C", help="interval level")
    est.add_argument("--seed", type=int, default=0, help="seeds the bootstrap and the folds")
    p.add_argument("--output-format", choices=FORMATS, default="text", help="report format")
    return p


def run(args: argparse.Namespace) -> int:
    """Evaluate and print; 0 on success. Bad input raises `UsageError` (exit 2), an
    unreachable broker `BrokerError` (exit 1)."""
    _check_flags(args)
    policy = _candidate(args.policy, args.q_table)
    collector = LogCollector(args.tenant, strict=args.file is not None)
    if args.file is not None:
        read_file(args.file, collector)
        source = f"file {args.file}"
    else:
        settings = Settings.from_env(bootstrap=args.bootstrap, config_dir=args.config_dir)
        topics = (settings.topic("audit"), settings.topic("outcomes"))
        asyncio.run(_read_kafka(settings.bootstrap, topics, collector))
        source = f"topics {topics[0]!r} and {topics[1]!r} at {settings.bootstrap}"
    rounds = collector.rounds(source)
    try:
        evaluation = evaluate_policy(policy, rounds, learn=not args.frozen, clip=args.clip, folds=args.folds,
                                     confidence=args.confidence, resamples=args.resamples, seed=args.seed)
    except RouterError as exc:
        raise UsageError(f"{source}: {exc}") from exc
    report = {"source": source, "tenant": args.tenant,
              **_report(evaluation, args.policy, args.q_table, dict(collector.counts))}
    print(render(report, args.output_format))
    return 0


def _check_flags(args: argparse.Namespace) -> None:
    if args.clip is not None and not (math.isfinite(args.clip) and args.clip > 0):
        raise UsageError(f"--clip {args.clip:g}: must be a positive number")
    if args.folds < 2:
        raise UsageError(f"--folds {args.folds}: must be at least 2")
    if args.resamples < 2:
        raise UsageError(f"--resamples {args.resamples}: must be at least 2")
    if not 0.0 < args.confidence < 1.0:
        raise UsageError(f"--confidence {args.confidence:g}: must be between 0 and 1")
    if args.seed < 0:
        raise UsageError(f"--seed {args.seed}: must be >= 0")
    if args.file is not None and args.bootstrap:
        raise UsageError("--bootstrap reads Kafka: drop it with --file")


def _candidate(policy_path: str, q_table: str | None) -> RoutingPolicy:
    """The candidate: `policy_path`'s configuration, fresh or from the Q-table file."""
    try:
        cfg = load_routing_config(policy_path)
    except ConfigError as exc:
        raise UsageError(f"--policy {policy_path}: {exc}") from exc
    except OSError as exc:
        raise UsageError(f"--policy {policy_path}: {_os_reason(exc)}") from exc
    if q_table is None:
        return make_policy(cfg)
    try:
        with open(q_table, "rb") as fh:
            doc = orjson.loads(fh.read())
    except OSError as exc:
        raise UsageError(f"--q-table {q_table}: {_os_reason(exc)}") from exc
    except orjson.JSONDecodeError as exc:
        raise UsageError(f"--q-table {q_table}: not JSON ({exc})") from exc
    try:
        return import_q_table(doc, cfg)
    except RouterError as exc:
        raise UsageError(f"--q-table {q_table}: {exc}") from exc


def _os_reason(exc: OSError) -> str:
    return "file not found" if isinstance(exc, FileNotFoundError) else (exc.strerror or str(exc))


class _Bad(Exception):
    """A field of one input record is unusable (`field` None: `problem` names it)."""

    def __init__(self, field: str | None, problem: str) -> None:
        super().__init__(problem if field is None else f"{field}: {problem}")


@dataclass(frozen=True, slots=True)
class _Routed:
    """A routed decision waiting for its outcome in the join."""

    at_ms: int
    order: int
    decision_id: str
    tenant: str
    request_id: str
    routing: Routing
    psi: Psi | None
    provider_id: str
    propensity: float | None
    policy: str


class LogCollector:
    """Reads audit records and outcome events (`add`), then joins them (`rounds`).

    `strict`: a bad record is a `UsageError` naming where it is and the field (a file);
    otherwise it is skipped, counted in `invalid_records` and logged (a topic).
    """

    def __init__(self, tenant: str | None, *, strict: bool) -> None:
        self.tenant, self.strict = tenant, strict
        self.counts: Counter[str] = Counter()
        self._routed: list[_Routed] = []
        self._decisions: set[str] = set()
        self._outcomes: dict[str, Outcome] = {}

    def add(self, obj: object, where: str, kind: str | None = None) -> None:
        """One record: `kind` "audit" or "outcome", or None to tell by its fields (a file line)."""
        try:
            if not isinstance(obj, dict):
                raise _Bad("<record>", f"must be a JSON object, got {_show(obj)}")
            if kind is None:
                if "kind" in obj:
                    kind = "audit"
                elif "decision_id" in obj:
                    kind = "outcome"
                else:
                    raise _Bad("<record>", "neither an audit record (it has `kind`) nor an outcome event "
                                           "(it has `decision_id`)")
            if kind == "audit":
                self._add_audit(obj)
            else:
                self._add_outcome(obj)
        except _Bad as exc:
            self.bad(where, str(exc))

    def bad(self, where: str, problem: str) -> None:
        if self.strict:
            raise UsageError(f"{where}: {problem}")
        self.counts["invalid_records"] += 1
        log.warning("%s: skipped: %s", where, problem)

    def _add_audit(self, obj: dict[str, Any]) -> None:
        tenant = _text(obj, "tenant", "tenant")
        if obj["kind"] != "decision":
            self.counts["other_audit_records"] += 1
            return
        if self.tenant is not None and tenant != self.tenant:
            self.counts["other_tenant"] += 1
            return
        record = _mapping(obj.get("record"), "record")
        decision = _mapping(record.get("decision"), "record.decision")
        decision_id = _text(decision, "event_id", "record.decision.event_id")
        if decision_id in self._decisions:
            self.counts["duplicate_decisions"] += 1
            return
        self._decisions.add(decision_id)
        route = decision.get("route")
        if route is None:
            self.counts["unrouted"] += 1
            return
        route = _mapping(route, "record.decision.route")
        if route.get("provider_id") is None:
            self.counts["no_provider"] += 1
            return
        provider_id = _text(route, "provider_id", "record.decision.route.provider_id")
        propensity = route.get("propensity")
        if propensity is not None and (isinstance(propensity, bool) or not isinstance(propensity, int | float)
                                       or not 0.0 <= propensity <= 1.0):
            raise _Bad("record.decision.route.propensity", f"must be a number in [0, 1] or null, got {_show(propensity)}")
        policy = route.get("policy")
        request = _mapping(record.get("request"), "record.request")
        request_id = _text(request, "event_id", "record.request.event_id")
        if request.get("routing") is None:
            raise _Bad("record.request.routing", "is required: the decision was routed")
        routing = _decode(Routing, request["routing"], "record.request.routing")
        if provider_id not in {p.provider_id for p in routing.providers}:
            raise _Bad("record.decision.route.provider_id",
                       f"{provider_id!r} is not among record.request.routing.providers")
        psi = None if request.get("psi") is None else _decode(Psi, request["psi"], "record.request.psi")
        at_ms = _time(decision, "record.decision.ts", obj)
        self._routed.append(_Routed(at_ms, len(self._routed), decision_id, tenant, request_id, routing, psi,
                                    provider_id, None if propensity is None else float(propensity),
                                    policy if isinstance(policy, str) and policy else "unknown"))

    def _add_outcome(self, obj: dict[str, Any]) -> None:
        outcome = _decode(Outcome, obj, None)
        if self.tenant is not None and outcome.tenant != self.tenant:
            self.counts["other_tenant"] += 1
            return
        if outcome.decision_id in self._outcomes:
            self.counts["duplicate_outcomes"] += 1
            return
        self._outcomes[outcome.decision_id] = outcome

    def rounds(self, source: str) -> list[LoggedRound]:
        """The usable rows in log order; a `UsageError` saying why when there is none."""
        rows: list[tuple[int, int, LoggedRound]] = []
        joined = 0
        matched: set[str] = set()
        for d in self._routed:
            outcome = self._outcomes.get(d.decision_id)
            if outcome is None or outcome.tenant != d.tenant:
                self.counts["no_outcome"] += 1
                continue
            matched.add(d.decision_id)
            joined += 1
            if not d.propensity:
                self.counts["zero_propensity"] += 1
                continue
            r = reward(success=outcome.success, cost_usd=outcome.actual_cost_usd,
                       latency_ms=outcome.actual_latency_ms, reputation=outcome.actual_reputation)
            rows.append((d.at_ms, d.order, _logged_round(d, r)))
        self.counts["unmatched_outcomes"] = len(self._outcomes) - len(matched)
        self.counts = +self.counts  # drop the zeros
        if not rows:
            raise UsageError(f"{source}: no usable rows: {self._why_none(joined)}")
        rows.sort(key=lambda t: (t[0], t[1]))
        return [row for _, _, row in rows]

    def _why_none(self, joined: int) -> str:
        c = self.counts
        decisions = len(self._decisions)
        scope = f" of tenant {self.tenant!r}" if self.tenant is not None else ""
        if not self._routed:
            return (f"no routed decisions{scope} ({decisions} decision records: {c['unrouted']} without routing, "
                    f"{c['no_provider']} with no feasible provider; {c['invalid_records']} unreadable records)")
        if joined == 0:
            return (f"no outcomes joined: none of the {len(self._routed)} routed decisions{scope} has an outcome "
                    f"({len(self._outcomes)} outcomes read)")
        return f"zero propensities: each of the {joined} routed decisions with an outcome has a zero or null propensity"


def _logged_round(d: _Routed, r: float) -> LoggedRound:
    routing = d.routing
    context = None if routing.context is None else WorkloadContext.from_mapping(routing.context.model_dump())
    constraints = None if routing.constraints is None else Constraints.from_mapping(routing.constraints.model_dump())
    psi = None if d.psi is None else PsiReading(d.psi.density, d.psi.coherence, d.psi.entropy)
    providers = tuple(ProviderState.from_mapping(p.model_dump()) for p in routing.providers)
    return LoggedRound(d.decision_id, d.tenant, d.request_id, context, providers, constraints, psi, d.provider_id,
                       d.propensity or 0.0, r, d.policy)


def _show(value: object) -> str:
    text = json.dumps(value) if isinstance(value, str | int | float | bool | type(None)) else type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."


def _mapping(value: object, field: str) -> dict[str, Any]:
    if value is None:
        raise _Bad(field, "is required")
    if not isinstance(value, dict):
        raise _Bad(field, f"must be an object, got {_show(value)}")
    return value


def _text(obj: dict[str, Any], key: str, field: str) -> str:
    value = obj.get(key)
    if value is None:
        raise _Bad(field, "is required")
    if not isinstance(value, str) or not value:
        raise _Bad(field, f"must be a non-empty string, got {_show(value)}")
    return value


def _decode(model: type, value: object, field: str | None) -> Any:
    """Validate with the wire schema; the codec's message names the field (inside `field`)."""
    try:
        return decode(model, orjson.dumps(value))
    except InvalidEvent as exc:
        if exc.code == "not_object":
            raise _Bad(field or "<record>", f"must be an object, got {_show(value)}") from None
        raise _Bad(None, exc.message if field is None else f"{field}.{exc.message}") from None


def _time(decision: dict[str, Any], field: str, record: dict[str, Any]) -> int:
    """Milliseconds of the decision's `ts`, else of the audit record's."""
    for value, name in ((decision.get("ts"), field), (record.get("ts"), "ts")):
        if value is None:
            continue
        if not isinstance(value, str):
            raise _Bad(name, f"must be an RFC 3339 timestamp, got {_show(value)}")
        try:
            return ts_to_ms(value)
        except ValueError:
            raise _Bad(name, f"must be an RFC 3339 timestamp with a UTC offset, got {_show(value)}") from None
    raise _Bad(field, "is required (or the record's ts)")


def read_file(path: str, collector: LogCollector) -> None:
    """Feed every line of a JSON Lines file to `collector` (strict: a bad line names itself)."""
    try:
        with open(path, "rb") as fh:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                where = f"{path} line {number}"
                try:
                    obj = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    collector.bad(where, f"not JSON ({exc})")
                    continue
                collector.add(obj, where)
    except OSError as exc:
        raise UsageError(f"--file {path}: {_os_reason(exc)}") from exc


async def _read_kafka(bootstrap: str, topics: tuple[str, str], collector: LogCollector) -> None:
    """The audit topic, then the outcomes topic, each read whole up to the end it had when
    its read began (`topic_reader.read_topic`, which trusts `true_end_offsets`, not
    ListOffsets alone), fed to `collector` in (partition, offset) order per topic."""
    from resontinex.app.commands.topic_reader import read_topic

    for topic, kind in zip(topics, ("audit", "outcome"), strict=True):
        got: list[tuple[int, int, bytes | None]] = []
        await read_topic(bootstrap, topic, lambda record: got.append((record.partition, record.offset, record.value)))
        got.sort(key=lambda item: (item[0], item[1]))
        for partition, offset, value in got:
            where = f"{topic}[{partition}]@{offset}"
            try:
                obj = orjson.loads(value) if value else None
            except orjson.JSONDecodeError as exc:
                collector.bad(where, f"not JSON ({exc})")
                continue
            collector.add(obj, where, kind)
        log.info("topic %r: %d records read", topic, len(got))


def _report(evaluation: Evaluation, policy_path: str, q_table: str | None, counts: dict[str, int]) -> dict[str, Any]:
    out = evaluation.as_dict()
    out["candidate"] = {**out["candidate"], "config": policy_path, "q_table": q_table}
    return {**out, "skipped": {name: counts[name] for name in _SKIPS if counts.get(name)}}


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def render(report: dict[str, Any], fmt: str) -> str:
    """The report as `text` (a table) or `json`."""
    if fmt == "json":
        return json.dumps(report, indent=2, ensure_ascii=False)
    cand, weights, ci = report["candidate"], report["weights"], report["ci"]
    learning = "learning online by replay" if cand["learning"] == "replay" else "frozen"
    start = f", from {cand['q_table']}" if cand["q_table"] else ""
    logging_policies = ", ".join(f"{name} {n}" for name, n in report["logging_policies"].items())
    level = f"{ci['confidence'] * 100:g} % CI"
    clip = "none" if report["clip"] is None else f"{report['clip']:g}"
    lines = [f"router evaluate: candidate {cand['policy']} ({cand['config']}{start}, {learning})",
             f"on {report['rows']} logged decisions with outcomes from {report['source']} (logged by {logging_policies})",
             "",
             f"{'estimator':<20} {'value':>10} {'se':>9}   {level}"]
    rows = [("logging (observed)", report["logging"])] + [
        (name.upper(), report["estimates"][name]) for name in ("ips", "snips", "dr")]
    for label, est in rows:
        interval = "—" if est["ci"] is None else f"[{est['ci'][0]:.4f}, {est['ci'][1]:.4f}]"
        lines.append(f"{label:<20} {_fmt(est['value']):>10} {_fmt(est['se']):>9}   {interval}")
    lines += ["",
              f"weights: effective sample size {weights['ess']:.1f} of {weights['n']} "
              f"({weights['ess_fraction'] * 100:.1f} %), mean {weights['mean_weight']:.3f}, "
              f"max {weights['max_weight']:.3f}, {weights['zero_weight_rows']} zero, "
              f"{weights['clipped_rows']} clipped (clip {clip})",
              f"candidate defers on {cand['defers']} rows; DR reward model cross-fitted over "
              f"{report['reward_model']['folds']} folds; {ci['method']} intervals, {ci['resamples']} resamples, "
              f"seed {ci['seed']}"]
    if report["skipped"]:
        lines.append("skipped: " + ", ".join(f"{n} {_SKIPS[name]}" for name, n in report["skipped"].items()))
    return "\n".join(lines)
