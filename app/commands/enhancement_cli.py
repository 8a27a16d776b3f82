"""`resontinex enhancement submit|list|show|approve|retire|export`: enhancement governance
from the command line (CONTRACT §3.10, §6).

- `submit FILE` validates a submission (JSON or YAML; `-` reads stdin) against
  `EnhancementSubmission` here, publishes it on `enhancements` keyed by its enhancement id,
  and follows its transitions on `enhancement-events` (read from the end the partition had
  before publishing, so an older event is never taken for this one) until it reaches a
  state that changes only with more input: `validated` or `active`, `rejected`, or a
  transition held for an operator's approval (`manual` mode).
- `list` and `show ID` read `enhancement-events` whole: each enhancement's latest state, or
  every transition of one with the figures that decided it.
- `approve ID` and `retire ID` publish an operator command on `control` keyed by tenant,
  and wait for the transition it makes; a command the worker refuses comes back as a dead
  letter (`invalid_command`), whose reason is shown.
- `export ID` reads the audit topic whole: every audit record of the enhancement's
  transitions and alerts, each hash recomputed (CONTRACT §3.8) and the partitions holding
  them verified as chains, as one JSON document.

The formatting and the export's assembly are pure functions of event and record dicts.
Exit codes: 0 ok, 1 rejected / no transition / verification failed, 2 bad input.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Final, TextIO

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from resontinex.agents.audit import ChainHead, InvalidRecordError, record_hash, verify
from resontinex.schemas import ENHANCEMENT_STATES, EnhancementSubmission, InvalidEvent, decode
from resontinex.topics import partition_of

from resontinex.app.engine.connect import start_client
from resontinex.app.engine.offsets import true_end_offsets
from resontinex.app.exceptions import BrokerError, UsageError
from resontinex.app.settings import Settings
from resontinex.app.engine.security import client_options

__all__ = ["add_parsers", "build_export", "evidence_figures", "format_list", "format_show", "latest_states",
           "load_submission", "run", "transition_line", "verify_records"]

DEFAULT_WAIT_S: Final = 30.0
SLOT_GRACE_S: Final = 3.0
"""After `validated` in automatic mode: how long to wait for `active` before saying it waits for a slot."""
_ACK_TIMEOUT_S: Final = 30.0
_MESSAGE_CHARS: Final = 60


# --- arguments


def add_parsers(sub: Any) -> list[argparse.ArgumentParser]:
    """The six sub-commands under `enhancement`; the caller adds the Kafka flags to each."""
    submit = sub.add_parser(
        "submit", help="validate a submission file, publish it on `enhancements` and follow its transitions",
        description="Validate an enhancement submission (JSON or YAML, one object) against the wire schema, "
                    "publish it on `enhancements` keyed by its enhancement id, and print each transition it makes "
                    "on `enhancement-events` until it is validated or active (exit 0), rejected (exit 1), or "
                    "held for an operator's approval. A file that does not validate is exit 2, nothing published.")
    submit.add_argument("file", metavar="FILE", help="the submission, JSON or YAML; - reads stdin")
    _wait_flags(submit, "the transitions")

    list_ = sub.add_parser(
        "list", help="every enhancement's latest state (read from `enhancement-events`)",
        description="Read `enhancement-events` whole and show each enhancement's latest state: id, tenant, kind, "
                    "state, phase/share, deactivations, last reason and when.")
    list_.add_argument("--tenant", help="only this tenant's enhancements")
    list_.add_argument("--state", choices=ENHANCEMENT_STATES, help="only enhancements in this state now")
    list_.add_argument("--output-format", choices=("text", "json"), default="text", help="an aligned table or a "
                       "JSON list")

    show = sub.add_parser(
        "show", help="every transition of one enhancement, with its reason and evidence",
        description="Every transition of one enhancement in order, with its reason and the figures that "
                    "decided it (text), or its events as JSON. Exit 2 when the id has no events.")
    show.add_argument("enhancement_id", metavar="ID", help="the enhancement id")
    show.add_argument("--output-format", choices=("text", "json"), default="text", help="transitions as text, or "
                      "the events as JSON")

    commands = []
    for name, verb, what in (("approve", "enhancement_approve", "let a held transition (an activation, a "
                              "promotion; in manual mode any decision) happen"),
                             ("retire", "enhancement_retire", "retire the enhancement for good")):
        p = sub.add_parser(
            name, help=f"{what} (an `{verb}` command on `control`, audited)",
            description=f"Publish an `{verb}` command on `control` (keyed by tenant) to {what}, then wait for the "
                        "transition it makes on `enhancement-events` (exit 0). When none follows (e.g. nothing "
                        "waited for approval: the worker refuses the command with a dead letter, whose reason is "
                        "shown) the exit is 1.")
        p.add_argument("enhancement_id", metavar="ID", help="the enhancement id")
        p.add_argument("--tenant", required=True, help="the enhancement's tenant")
        p.add_argument("--operator", required=True, help="who decides (recorded in the audit)")
        p.add_argument("--reason", required=True, help="why (recorded in the audit)")
        _wait_flags(p, "the transition")
        p.set_defaults(control_action=verb)
        commands.append(p)

    export = sub.add_parser(
        "export", help="one enhancement's provenance from the audit topic, hashes verified, as JSON",
        description="Read the audit topic whole and write one JSON document with the enhancement's submission, "
                    "every transition's audit record (seq, partition, hash, prev_hash, ts, event), the alerts "
                    "about it, and whether every record's hash and the chains holding them verify. Exit 2 when "
                    "nothing is found for ID, 1 when verification fails (the document is still written).")
    export.add_argument("enhancement_id", metavar="ID", help="the enhancement id")
    export.add_argument("--output", metavar="FILE", help="write here (default: stdout)")
    return [submit, list_, show, *commands, export]


def _wait_flags(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--wait", type=float, default=DEFAULT_WAIT_S, metavar="S", help=f"seconds to wait for {what}")
    p.add_argument("--no-wait", action="store_true", help="return once published")


def run(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "submit":
        return _run_submit(settings, args)
    if args.action == "list":
        return _run_list(settings, args)
    if args.action == "show":
        return _run_show(settings, args)
    if args.action in ("approve", "retire"):
        return _run_command(settings, args)
    if args.action == "export":
        return _run_export(settings, args)
    raise UsageError(f"enhancement: unknown action {args.action!r}")


def _wait_s(args: argparse.Namespace) -> float:
    if args.wait < 0:
        raise UsageError(f"--wait must be ≥ 0 (got {args.wait:g})")
    return 0.0 if args.no_wait else float(args.wait)


# --- submit


def load_submission(path: str, *, stdin: TextIO | None = None, max_bytes: int = 1 << 20) -> EnhancementSubmission:
    """The submission in `path` (JSON or YAML; `-`: `stdin`), validated as the worker will,
    with an `event_id` made up when it has none. A `UsageError` naming the bad fields otherwise.

    >>> import io
    >>> doc = ('{"enhancement_id": "e1", "tenant": "acme", "kind": "model", "description": "switch",'
    ...        ' "payload": {"model": "m"}, "thresholds": {"mandatory": 1}}')
    >>> sub = load_submission("-", stdin=io.StringIO(doc))
    >>> sub.enhancement_id, sub.mode, sub.event_id.startswith("enh-")
    ('e1', 'automatic', True)
    >>> load_submission("-", stdin=io.StringIO('{"enhancement_id": "e1", "tenant": "acme"}'))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    resontinex.app.exceptions.UsageError: enhancement submit -: missing_field: kind: is required; ...; thresholds: ...
    """
    where = f"enhancement submit {path}"
    if path == "-":
        text = (stdin or sys.stdin).read()
    else:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"{where}: cannot read: {exc.strerror or exc}") from None
        except UnicodeDecodeError as exc:
            raise UsageError(f"{where}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    obj = _parse(text, where, yaml_first=path.endswith((".yaml", ".yml")))
    if not isinstance(obj, dict):
        raise UsageError(f"{where}: the file holds {type(obj).__name__ if obj is not None else 'nothing'}, "
                         "not one submission (a JSON object / YAML mapping)")
    if "event_id" not in obj:
        obj = {"event_id": f"enh-{uuid.uuid4().hex}", **obj}
    # the standard library writes NaN/Infinity (YAML's .nan, .inf) so that `decode` names them
    raw = json.dumps(obj, default=str, allow_nan=True, ensure_ascii=False).encode()
    try:
        return decode(EnhancementSubmission, raw, max_bytes=max_bytes)
    except InvalidEvent as exc:
        raise UsageError(f"{where}: {exc}") from None


def _parse(text: str, where: str, *, yaml_first: bool) -> Any:
    if not text.strip():
        raise UsageError(f"{where}: the file is empty")
    if not yaml_first:
        try:
            return json.loads(text)
        except ValueError:
            pass  # YAML is a superset of most JSON; its parser explains the error
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UsageError(f"{where}: neither JSON nor YAML: {exc}".replace("\n", " ")) from None


def _run_submit(settings: Settings, args: argparse.Namespace) -> int:
    wait_s = _wait_s(args)
    sub = load_submission(args.file, max_bytes=settings.max_message_bytes)
    return asyncio.run(_submit(settings, sub, wait_s, sys.stdout))


@dataclass
class _Follow:
    """An enhancement's transitions as they arrive, and whether they reached a resting state."""

    enhancement_id: str
    out: TextIO
    mode: str = "automatic"
    state: str | None = None
    exit: int | None = None
    grace_until: float | None = None
    seen: set[str] = field(default_factory=set)

    def event(self, e: Mapping[str, Any]) -> None:
        if e.get("enhancement_id") != self.enhancement_id or e.get("event_id") in self.seen:
            return
        self.seen.add(str(e.get("event_id")))
        _say(self.out, transition_line(e))
        self.state = str(e.get("to_state"))
        self.grace_until = None
        if self.state == "active":
            self.exit = 0
        elif self.state == "validated":
            if self.mode != "automatic":
                _say(self.out, f"validated: its activation waits for approval (resontinex enhancement approve "
                               f"{self.enhancement_id} --tenant {e.get('tenant')} --operator OP --reason TEXT)")
                self.exit = 0
            else:
                self.grace_until = time.monotonic() + SLOT_GRACE_S
        elif self.state in ("rejected", "retired", "permanently_disabled", "deactivated"):
            self.exit = 1

    def held(self, alert: Mapping[str, Any]) -> None:
        """An `enhancement_approval_needed` alert: the transition waits for an operator."""
        details = alert.get("details") or {}
        if alert.get("kind") != "enhancement_approval_needed" or details.get("enhancement_id") != self.enhancement_id:
            return
        if self.exit is not None:
            return
        to_state = details.get("to_state")
        _say(self.out, f"held for approval: {details.get('from_state')} → {to_state}  ({alert.get('message')})")
        self.exit = 0 if to_state in ("validated", "active") else 1

    def tick(self) -> None:
        if self.grace_until is not None and time.monotonic() >= self.grace_until and self.exit is None:
            _say(self.out, "validated: not active yet (the tenant has its most active enhancements; it is "
                           "activated when a slot frees)")
            self.exit = 0


async def _submit(settings: Settings, sub: EnhancementSubmission, wait_s: float, out: TextIO) -> int:
    n = settings.partitions
    topic = settings.topic("enhancements")
    events_tp = TopicPartition(settings.topic("enhancement_events"), partition_of(sub.enhancement_id, n))
    alerts_tp = TopicPartition(settings.topic("alerts"), partition_of(sub.tenant, n))
    letters_tp = TopicPartition(settings.topic("dead_letters"), partition_of(sub.enhancement_id, n))
    value = sub.model_dump_json(exclude_none=True).encode()
    async with _Clients(settings, "enhancement submit") as c:
        await c.require_topics(topic, *(tp.topic for tp in (events_tp, alerts_tp, letters_tp)))
        if wait_s > 0:
            await c.follow_from_end([events_tp, alerts_tp, letters_tp])
        meta = await c.send(topic, value, sub.enhancement_id)
        _say(out, f"published submission {sub.event_id} of enhancement {sub.enhancement_id} (tenant {sub.tenant}, "
                  f"{sub.kind}, {sub.mode}) to {topic}[{meta.partition}]@{meta.offset}")
        if wait_s <= 0:
            return 0
        follow = _Follow(sub.enhancement_id, out, mode=sub.mode)
        deadline = time.monotonic() + wait_s
        while follow.exit is None and time.monotonic() < deadline:
            for tp, record in await c.poll():
                value_ = _json(record.value)
                if tp == events_tp:
                    follow.event(value_)
                elif tp == alerts_tp:
                    follow.held(value_)
                elif _is_letter_of(value_, topic, meta.partition, meta.offset):
                    error = value_.get("error") or {}
                    print(f"resontinex: enhancement submit: the worker refused the submission: "
                          f"{error.get('code')}: {error.get('message')}", file=sys.stderr)
                    return 1
            follow.tick()
    if follow.exit is None:
        where = f"(last state: {follow.state})" if follow.state else "(no transition at all: is a core worker " \
                "running? a submission whose event_id was published before is dropped as a repeat)"
        print(f"resontinex: enhancement submit: {sub.enhancement_id} reached no resting state within "
              f"{wait_s:g} s {where}; it stays on the topic and will still be processed", file=sys.stderr)
        return 1
    return follow.exit


# --- approve / retire


def _run_command(settings: Settings, args: argparse.Namespace) -> int:
    from resontinex.app.control import control_command

    wait_s = _wait_s(args)
    command = control_command(args.control_action, args.tenant, args.operator, args.reason,
                              max_bytes=settings.max_message_bytes, enhancement_id=args.enhancement_id)
    return asyncio.run(_command(settings, command, wait_s, sys.stdout))


async def _command(settings: Settings, command: Any, wait_s: float, out: TextIO) -> int:
    n, eid = settings.partitions, command.enhancement_id
    topic = settings.topic("control")
    events_tp = TopicPartition(settings.topic("enhancement_events"), partition_of(eid, n))
    letters_tp = TopicPartition(settings.topic("dead_letters"), partition_of(command.tenant, n))
    async with _Clients(settings, command.action) as c:
        await c.require_topics(topic, events_tp.topic, letters_tp.topic)
        if wait_s > 0:
            await c.follow_from_end([events_tp, letters_tp])
        meta = await c.send(topic, command.model_dump_json(exclude_none=True).encode(), command.tenant)
        _say(out, f"published {command.action} {command.event_id} for enhancement {eid} (tenant {command.tenant})")
        if wait_s <= 0:
            return 0
        deadline, done_at = time.monotonic() + wait_s, None
        shown = False
        while time.monotonic() < (done_at or deadline):
            for tp, record in await c.poll(timeout_ms=200 if done_at else 500):
                value = _json(record.value)
                if tp == events_tp and value.get("enhancement_id") == eid:
                    _say(out, transition_line(value))
                    shown = True
                    if done_at is None and _made_by(value, command.event_id):
                        done_at = time.monotonic() + 0.5  # the same batch's follow-ups (deactivated → cooldown)
                elif tp == letters_tp and _is_letter_of(value, topic, meta.partition, meta.offset):
                    error = value.get("error") or {}
                    print(f"resontinex: {command.action}: the command went out but the worker refused it: "
                          f"{error.get('code')}: {error.get('message')}", file=sys.stderr)
                    return 1
    if done_at is not None:
        return 0
    more = " (the transitions shown were not this command's)" if shown else ""
    print(f"resontinex: {command.action}: the command went out but no transition of {eid} followed within "
          f"{wait_s:g} s{more}", file=sys.stderr)
    return 1


def _made_by(event: Mapping[str, Any], command_event_id: str) -> bool:
    """Whether `event` is the transition the command `command_event_id` made (its evidence names it)."""
    evidence = event.get("evidence") or {}
    approval = evidence.get("approval")
    if not isinstance(approval, Mapping):
        approval = {}
    return command_event_id in (evidence.get("command_event_id"), approval.get("command_event_id"))


def _is_letter_of(letter: Mapping[str, Any], topic: str, partition: int, offset: int) -> bool:
    return (letter.get("source_topic") == topic and letter.get("partition") == partition
            and letter.get("offset") == offset)


# --- list / show


def _read_events(settings: Settings) -> list[dict[str, Any]]:
    from resontinex.app.commands.topic_reader import read_topic

    found: list[tuple[int, int, dict[str, Any]]] = []

    def keep(record: Any) -> None:
        value = _json(record.value)
        if value.get("enhancement_id"):
            found.append((record.partition, record.offset, value))

    asyncio.run(read_topic(settings.bootstrap, settings.topic("enhancement_events"), keep))
    return [v for *_, v in sorted(found, key=lambda item: (item[0], item[1]))]


def latest_states(events: Iterable[Mapping[str, Any]], *, tenant: str | None = None,
                  state: str | None = None) -> list[dict[str, Any]]:
    """Each enhancement's latest state from its events (in topic order; a repeated event id
    counts once), sorted by tenant and id.

    >>> rows = latest_states([
    ...     {"event_id": "a1", "enhancement_id": "e1", "tenant": "acme", "kind": "prompt", "from_state": None,
    ...      "to_state": "pending", "reason": {"code": "submitted", "message": "x"}, "ts": "t1"},
    ...     {"event_id": "a2", "enhancement_id": "e1", "tenant": "acme", "kind": "prompt", "from_state": "pending",
    ...      "to_state": "validated", "reason": {"code": "preflight_passed", "message": "ok"}, "ts": "t2"}])
    >>> [(r["enhancement_id"], r["state"], r["transitions"], r["reason"]) for r in rows]
    [('e1', 'validated', 2, 'preflight_passed: ok')]
    """
    rows: dict[str, dict[str, Any]] = {}
    seen: set[str] = set()
    for e in events:
        if e.get("event_id") in seen:
            continue
        seen.add(str(e.get("event_id")))
        eid = str(e["enhancement_id"])
        reason = e.get("reason") or {}
        before = rows.get(eid)
        rows[eid] = {
            "enhancement_id": eid, "tenant": e.get("tenant"), "kind": e.get("kind"), "state": e.get("to_state"),
            "phase": e.get("phase"), "share": e.get("share"), "deactivations": e.get("deactivations", 0),
            "reason": f"{reason.get('code')}: {reason.get('message')}", "ts": e.get("ts"),
            "operator_id": e.get("operator_id"), "cooldown_until": e.get("cooldown_until"),
            "transitions": (before["transitions"] if before else 0) + 1,
            "submitted_at": before["submitted_at"] if before else e.get("ts"),
        }
    out = [r for r in rows.values()
           if (tenant is None or r["tenant"] == tenant) and (state is None or r["state"] == state)]
    return sorted(out, key=lambda r: (str(r["tenant"]), r["enhancement_id"]))


def format_list(rows: Sequence[Mapping[str, Any]]) -> str:
    """An aligned table of `latest_states` rows (the reason clipped).

    >>> print(format_list([{"enhancement_id": "e1", "tenant": "acme", "kind": "prompt", "state": "active",
    ...                     "phase": "canary", "share": 0.1, "deactivations": 0, "reason": "activated: ok",
    ...                     "ts": "2026-01-01T00:00:00.000Z"}]))
    ID  TENANT  KIND    STATE   PHASE/SHARE  DEACT  REASON         TS
    e1  acme    prompt  active  canary 10%   0      activated: ok  2026-01-01T00:00:00.000Z
    >>> format_list([])
    'no enhancements'
    """
    if not rows:
        return "no enhancements"
    header = ("ID", "TENANT", "KIND", "STATE", "PHASE/SHARE", "DEACT", "REASON", "TS")
    table = [header] + [(str(r["enhancement_id"]), str(r["tenant"]), str(r["kind"]), str(r["state"]),
                         _phase(r.get("phase"), r.get("share")) or "-", str(r.get("deactivations", 0)),
                         _clip(str(r.get("reason", ""))), str(r.get("ts") or "-")) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in table)


def transition_line(e: Mapping[str, Any]) -> str:
    """One transition on one line: `from → to  code: message`, with the phase and share of an
    activation and the operator who made or approved it.

    >>> transition_line({"from_state": "pending", "to_state": "validated",
    ...                  "reason": {"code": "preflight_passed", "message": "preflight passed: schema 1"}})
    'pending → validated  preflight_passed: preflight passed: schema 1'
    >>> transition_line({"from_state": "validated", "to_state": "active", "phase": "canary", "share": 0.1,
    ...                  "reason": {"code": "activated", "message": "ok"}, "operator_id": "ops-7"})
    'validated → active (canary 10%)  activated: ok  [by ops-7]'
    """
    reason = e.get("reason") or {}
    to = str(e.get("to_state"))
    phase = _phase(e.get("phase"), e.get("share"))
    if phase:
        to += f" ({phase})"
    elif e.get("cooldown_until"):
        to += f" (until {e['cooldown_until']})"
    line = f"{e.get('from_state') or '—'} → {to}  {reason.get('code')}: {reason.get('message')}"
    return line + (f"  [by {e['operator_id']}]" if e.get("operator_id") else "")


def evidence_figures(evidence: Mapping[str, Any]) -> list[str]:
    """The figures of an event's evidence worth a line each: preflight checks with their
    scores, the canary judgement, the monitor's triggers, an approval; other scalars as they are.

    >>> evidence_figures({"schema": {"passed": True, "score": 1.0, "errors": []},
    ...                   "thresholds": {"passed": False, "score": 0.5, "critical_failures": ["mandatory"]}})
    ['schema: passed (score 1)', 'thresholds: failed (score 0.5); critical failures: mandatory']
    >>> evidence_figures({"triggers": [{"check": "quality", "severity": "critical", "message": "q 0.6 < 0.75"}],
    ...                   "severity": "critical", "consecutive": 1, "means": {"quality_score": [0.6]}})
    ['trigger quality (critical): q 0.6 < 0.75', 'severity: critical', 'consecutive: 1']
    """
    lines: list[str] = []
    for key, value in evidence.items():
        if isinstance(value, Mapping) and "passed" in value and "score" in value:
            line = f"{key}: {'passed' if value['passed'] else 'failed'} (score {_num(value['score'])})"
            if value.get("critical_failures"):
                line += f"; critical failures: {', '.join(map(str, value['critical_failures']))}"
            if value.get("failed") and isinstance(value["failed"], list):
                line += f"; not met: {', '.join(map(str, value['failed']))}"
            if value.get("problem"):
                line += f"; {value['problem']}"
            if value.get("errors"):
                first = value["errors"][0]
                line += f"; {len(value['errors'])} error(s), first: {first.get('path')}: {first.get('message')}"
            lines.append(line)
        elif key == "judgement" and isinstance(value, Mapping):
            lines.append(f"canary judgement: {value.get('verdict')} (score {_num(value.get('score'))}): "
                         f"{value.get('reason')}")
        elif key == "triggers" and isinstance(value, list):
            lines += [f"trigger {t.get('check')} ({t.get('severity')}): {t.get('message')}" for t in value
                      if isinstance(t, Mapping)]
        elif key == "approval" and isinstance(value, Mapping):
            lines.append(f"approved by {value.get('operator_id')}: {value.get('reason')} "
                         f"(command {value.get('command_event_id')})")
        elif key == "samples" and isinstance(value, Mapping):
            lines.append("samples: " + ", ".join(f"{arm} {sum(v.values()) if isinstance(v, Mapping) else v}"
                                                 for arm, v in value.items()))
        elif value is None or isinstance(value, (str, int, float, bool)):
            lines.append(f"{key}: {_num(value) if isinstance(value, float) else value}")
    return lines


def format_show(events: Sequence[Mapping[str, Any]]) -> str:
    """Every transition of one enhancement with its time, reason and evidence figures.

    >>> print(format_show([
    ...     {"enhancement_id": "e1", "tenant": "acme", "kind": "prompt", "from_state": None, "to_state": "pending",
    ...      "reason": {"code": "submitted", "message": "shorter prompt"}, "evidence": {"submission_event_id": "s1"},
    ...      "ts": "2026-01-01T00:00:00.000Z"}]))
    enhancement e1  tenant acme  kind prompt  state pending  (1 transition)
    2026-01-01T00:00:00.000Z  — → pending  submitted: shorter prompt
        submission_event_id: s1
    """
    if not events:
        return "no events"
    last = events[-1]
    phase = _phase(last.get("phase"), last.get("share"))
    lines = [f"enhancement {last.get('enhancement_id')}  tenant {last.get('tenant')}  kind {last.get('kind')}  "
             f"state {last.get('to_state')}{f' ({phase})' if phase else ''}  "
             f"({len(events)} transition{'s' if len(events) != 1 else ''})"]
    for e in events:
        lines.append(f"{e.get('ts')}  {transition_line(e)}")
        lines += [f"    {figure}" for figure in evidence_figures(e.get("evidence") or {})]
    return "\n".join(lines)


def _run_list(settings: Settings, args: argparse.Namespace) -> int:
    rows = latest_states(_read_events(settings), tenant=args.tenant, state=args.state)
    if args.output_format == "json":
        sys.stdout.write(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(format_list(rows) + "\n")
    return 0


def _events_of(events: Iterable[Mapping[str, Any]], enhancement_id: str) -> list[Mapping[str, Any]]:
    seen: set[str] = set()
    out = []
    for e in events:
        if e.get("enhancement_id") == enhancement_id and e.get("event_id") not in seen:
            seen.add(str(e.get("event_id")))
            out.append(e)
    return out


def _run_show(settings: Settings, args: argparse.Namespace) -> int:
    events = _events_of(_read_events(settings), args.enhancement_id)
    if not events:
        raise UsageError(f"enhancement show: no events for enhancement {args.enhancement_id!r}")
    if args.output_format == "json":
        sys.stdout.write(json.dumps(events, indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(format_show(events) + "\n")
    return 0


# --- export


def verify_records(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """Each record's `hash` recomputed (CONTRACT §3.8): the problems found, empty when every
    record matches its content.

    >>> from resontinex.agents.audit import ChainHead, seal
    >>> rec, _ = seal(ChainHead.genesis(), event_id="a-1", kind="state_change", tenant="acme",
    ...               ts="2026-01-01T00:00:00.000Z", policy_version="3f2a9c0d1e4b", record={"x": 1})
    >>> verify_records([rec]), verify_records([{**rec, "record": {"x": 2}}])
    ([], ['seq 0 (a-1): hash does not match content'])
    """
    problems = []
    for r in records:
        where = f"seq {r.get('seq')} ({r.get('event_id')})"
        try:
            actual = record_hash({k: v for k, v in r.items() if k != "hash"})
        except InvalidRecordError as exc:
            problems.append(f"{where}: {exc}")
            continue
        if actual != r.get("hash"):
            problems.append(f"{where}: hash does not match content")
    return problems


def _chain_problem(records: Sequence[Mapping[str, Any]]) -> str | None:
    """Why one partition's records (in offset order) are not an intact chain, or None."""
    if not records:
        return None
    first = records[0]
    start = None
    if isinstance(first.get("seq"), int) and first["seq"] > 0 and isinstance(first.get("prev_hash"), str):
        try:  # a topic that no longer starts at seq 0: the chain from where it starts now
            start = ChainHead(first["seq"], first["prev_hash"])
        except ValueError:
            start = None
    report = verify(records, start=start)
    if report.ok:
        return None
    error = report.first_error
    return f"{error.kind} at seq {error.seq}: {error.message}" if error else "not verified"


def build_export(enhancement_id: str, audit: Iterable[tuple[int, int, Any]], *, exported_at: str,
                 submission: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    """The provenance document of one enhancement from the audit topic's records
    (`(partition, offset, record)`, in offset order per partition): its transitions' audit
    records, the alerts about it, and the verification of every record's hash and of the
    chain of each partition holding them. None when no record concerns `enhancement_id`.

    `submission` is the submission as published, where the caller found it; else the
    document holds the submission's event id from the `pending` event's evidence.
    """
    transitions: list[dict[str, Any]] = []
    alerts: list[dict[str, Any]] = []
    included: list[Mapping[str, Any]] = []
    by_partition: dict[int, list[Mapping[str, Any]]] = {}
    seen_events: set[str] = set()
    seen_alerts: set[str] = set()
    duplicates = 0
    for partition, offset, record in audit:
        if not isinstance(record, Mapping):
            by_partition.setdefault(partition, []).append({"unreadable": record})
            continue
        by_partition.setdefault(partition, []).append(record)
        body = record.get("record")
        if not isinstance(body, Mapping):
            continue
        entry = {"seq": record.get("seq"), "partition": partition, "offset": offset, "event_id": record.get("event_id"),
                 "ts": record.get("ts"), "policy_version": record.get("policy_version"),
                 "prev_hash": record.get("prev_hash"), "hash": record.get("hash")}
        event = body.get("enhancement_event")
        alert = body.get("alert")
        if record.get("kind") == "state_change" and isinstance(event, Mapping) \
                and event.get("enhancement_id") == enhancement_id:
            if event.get("event_id") in seen_events:
                duplicates += 1
                continue
            seen_events.add(str(event.get("event_id")))
            transitions.append({**entry, "event": dict(event)})
            included.append(record)
        elif record.get("kind") == "alert" and isinstance(alert, Mapping) and _about(alert, enhancement_id):
            if alert.get("event_id") in seen_alerts:
                duplicates += 1
                continue
            seen_alerts.add(str(alert.get("event_id")))
            alerts.append({**entry, "alert": dict(alert)})
            included.append(record)
    if not transitions and not alerts:
        return None
    partitions = sorted({t["partition"] for t in transitions} | {a["partition"] for a in alerts})
    problems = verify_records(included)
    chains = {}
    for p in partitions:
        problem = _chain_problem(by_partition.get(p, []))
        chains[str(p)] = problem is None
        if problem:
            problems.append(f"partition {p}: {problem}")
    events = [t["event"] for t in transitions]
    first: dict[str, Any] = events[0] if events else {}
    pending: dict[str, Any] = next((e for e in events if e.get("to_state") == "pending"), {})
    submission_event_id = (pending.get("evidence") or {}).get("submission_event_id")
    sub_doc: dict[str, Any] = {"event_id": submission_event_id, "found": submission is not None}
    if submission is not None:
        sub_doc["value"] = dict(submission)
    some = (alerts[0]["alert"] if alerts else {})
    return {
        "enhancement_id": enhancement_id,
        "tenant": first.get("tenant") or some.get("tenant"),
        "kind": first.get("kind"),
        "state": events[-1].get("to_state") if events else None,
        "exported_at": exported_at,
        "submission": sub_doc,
        "events": events,
        "transitions": transitions,
        "alerts": alerts,
        "chain": {"partitions": partitions, "records": len(included), "duplicates_skipped": duplicates,
                  "records_verified": not verify_records(included), "partitions_verified": chains,
                  "verified": not problems, "problems": problems},
    }


def _about(alert: Mapping[str, Any], enhancement_id: str) -> bool:
    details = alert.get("details")
    return isinstance(details, Mapping) and details.get("enhancement_id") == enhancement_id


def _find_submission(settings: Settings, enhancement_id: str, event_id: str | None) -> dict[str, Any] | None:
    """The submission as published on `enhancements` (None when it is gone or unreadable)."""
    from resontinex.app.commands.topic_reader import read_topic

    if not event_id:
        return None
    found: dict[str, Any] = {}

    def keep(record: Any) -> None:
        if record.key == enhancement_id.encode() and not found:
            value = _json(record.value)
            if value.get("event_id") == event_id:
                found.update(value)

    try:
        asyncio.run(read_topic(settings.bootstrap, settings.topic("enhancements"), keep))
    except (UsageError, BrokerError):
        return None
    return found or None


def _run_export(settings: Settings, args: argparse.Namespace) -> int:
    from resontinex.app.commands.audit_source import read_kafka

    log = read_kafka(settings.bootstrap, settings.topic("audit"), quiet=True)
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    document = build_export(args.enhancement_id, log.records(), exported_at=now)
    if document is None:
        raise UsageError(f"enhancement export: the audit topic holds nothing about enhancement {args.enhancement_id!r}")
    submission = _find_submission(settings, args.enhancement_id, document["submission"]["event_id"])
    if submission is not None:
        document["submission"] = {"event_id": document["submission"]["event_id"], "found": True, "value": submission}
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    chain = document["chain"]
    summary = (f"{len(document['transitions'])} transitions, {len(document['alerts'])} alerts, "
               f"chain {'verified' if chain['verified'] else 'NOT verified'}")
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"enhancement export: --output {args.output}: {exc.strerror or exc}") from None
        print(f"wrote {args.output} ({summary})")
    else:
        sys.stdout.write(text)
    if not chain["verified"]:
        print(f"resontinex: enhancement export: verification failed: {'; '.join(chain['problems'])}", file=sys.stderr)
        return 1
    return 0


# --- Kafka


class _Clients:
    """A producer (acks all) and a consumer: the topics' metadata, and the partitions
    followed, read from their end as it was before anything is published."""

    def __init__(self, settings: Settings, what: str) -> None:
        self.settings, self.what = settings, what
        self.producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap, **client_options(), acks="all",
                                         max_request_size=max(settings.max_message_bytes, 1 << 20) + 65_536)
        self.consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap, **client_options(), group_id=None,
                                         enable_auto_commit=False)
        self.tps: list[TopicPartition] = []

    async def __aenter__(self) -> _Clients:
        try:
            await start_client(self.producer, self.settings.bootstrap)
            await start_client(self.consumer, self.settings.bootstrap)
        except BaseException:
            await self._stop()
            raise
        return self

    async def __aexit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        await self._stop()
        if isinstance(exc, (KafkaError, TimeoutError)):
            raise BrokerError(f"{self.what} at {self.settings.bootstrap}: {exc or type(exc).__name__}") from None

    async def _stop(self) -> None:
        await self.producer.stop()
        await self.consumer.stop()

    async def require_topics(self, *topics: str) -> None:
        """Refuse (exit 2) when a topic is missing: producing to it would create it on a
        broker that auto-creates topics, with other settings than the registry's."""
        # metadata of every topic: asking for one by name would create it (as topic_reader does)
        missing = sorted(set(topics) - await self.consumer.topics())
        if missing:
            raise UsageError(f"{self.what}: topic(s) {', '.join(missing)} do not exist at {self.settings.bootstrap} "
                             "(run `resontinex topics create`)")

    async def follow_from_end(self, tps: list[TopicPartition]) -> None:
        self.tps = tps
        self.consumer.assign(tps)
        ends = await true_end_offsets(self.settings.bootstrap, tps)
        for tp in tps:
            self.consumer.seek(tp, ends[tp])

    async def send(self, topic: str, value: bytes, key: str) -> Any:
        try:
            return await asyncio.wait_for(self.producer.send_and_wait(topic, value, key=key.encode()), _ACK_TIMEOUT_S)
        except asyncio.TimeoutError:
            raise BrokerError(f"{self.what}: could not publish to {self.settings.bootstrap}: no acknowledgement "
                              f"within {_ACK_TIMEOUT_S:g} s") from None

    async def poll(self, timeout_ms: int = 500) -> list[tuple[TopicPartition, Any]]:
        """What arrived, partition by partition in the order followed (the enhancement's events
        before the alerts about them, which the worker sends in the same batch)."""
        batch = await self.consumer.getmany(*self.tps, timeout_ms=timeout_ms)
        return [(tp, record) for tp in self.tps for record in batch.get(tp, [])]


def _json(raw: bytes | None) -> dict[str, Any]:
    try:
        value = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _say(out: TextIO, line: str) -> None:
    out.write(line + "\n")
    out.flush()


def _phase(phase: Any, share: Any) -> str:
    if not phase:
        return ""
    return f"{phase} {share:.0%}" if isinstance(share, (int, float)) else str(phase)


def _num(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _clip(text: str) -> str:
    return text if len(text) <= _MESSAGE_CHARS else text[: _MESSAGE_CHARS - 1] + "…"
