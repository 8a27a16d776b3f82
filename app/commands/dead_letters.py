"""`resontinex dead-letters list|show|redrive`: the `dead-letters` topic (CONTRACT §4) for operators.

- `list` reads the topic whole and prints one line per dead letter, oldest first: when it was
  refused, its ID (``PARTITION:OFFSET`` on `dead-letters`), where the original was (source
  topic, partition, offset), the error code, the original's `event_id` when it has one, and
  the reason. ``--output-format json`` prints the same as a JSON list.
- `show ID` prints one dead letter whole, as JSON, with its original value decoded: a JSON
  value, else UTF-8 text, else base64 as stored.
- `redrive` republishes the original bytes, with the original key, to the source topic and
  partition of each dead letter chosen by ID or by the filters: a dry run that prints what
  it would send, unless ``--apply`` (which needs ``--operator`` and ``--reason``).

Filters (`list`, `redrive`): ``--topic`` (the source topic: registry id, name, or name on the
broker) and ``--code``, both repeatable; ``--since``/``--until``: the dead letter's `ts` is at
or after / before the instant (RFC 3339, a date, or Unix epoch milliseconds).

Each re-driven record carries headers naming the dead letter (`REDRIVE_OF`: its `event_id`,
which is derived from the original's topic, partition and offset), the operator, the reason
and the time. Before sending, `redrive` reads the source partitions from the originals'
offsets on: an original re-driven before is skipped, saying by whom and when, unless
``--force``; the same original dead-lettered twice (a redelivery) is sent once. An original
the dead letter does not hold whole (`value_truncated`, bytes that do not match
`value_sha256`, a key that was not UTF-8) is never sent. The processor does not audit a
re-drive itself: after sending, `redrive --apply` publishes a `dead_letter_redrive` command
on `control` naming every original sent and where its copy went, and the core seals it onto
the audit chain of the `_system` tenant (`app.wiring.redrive_audit`).

Exit codes: 0 ok; 1 a chosen dead letter cannot be re-driven, or Kafka is unreachable; 2 bad
usage, or an ID that is not on the topic.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import hashlib
import json
import logging
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from resontinex import topics
from resontinex.schemas import (MAX_REDRIVEN, SYSTEM_TENANT, Control, DeadLetter, InvalidEvent, decode_json, ms_to_ts,
                                ts_to_ms)

from resontinex.app.commands.audit_replay import parse_instant
from resontinex.app.commands.topic_reader import read_topic
from resontinex.app.control import control_command, publish
from resontinex.app.engine.connect import start_client
from resontinex.app.engine.offsets import true_end_offsets
from resontinex.app.exceptions import BrokerError, UsageError
from resontinex.app.settings import Settings
from resontinex.app.engine.security import client_options

__all__ = ["REDRIVE_OF", "Filters", "Letter", "Previous", "Step", "add_parsers", "decode_original", "format_table",
           "letter", "not_redrivable", "parse_id", "parse_instant_ms", "plan_redrive", "previous_redrive", "redrive_commands", "redrive_headers",
           "row", "run", "select", "show_document"]

log = logging.getLogger("resontinex.dead_letters")

REDRIVE_OF: Final = "resontinex-redrive-of"
"""The header naming the dead letter (its `event_id`) a record re-drives."""
_HEADER: Final = "resontinex-redrive-"
_EPOCH_MS: Final = re.compile(r"-?\d+")
_ID: Final = re.compile(r"(\d+):(\d+)")
_ACK_TIMEOUT_S: Final = 30.0
_STALL_S: Final = 30.0
_REASON_CHARS: Final = 60


# --- arguments


def add_parsers(sub: Any) -> list[argparse.ArgumentParser]:
    """`list`, `show` and `redrive` under `dead-letters`; the caller adds the Kafka flags to each."""
    list_ = sub.add_parser("list", help="one line per dead letter: when, ID, source, code, event id, reason",
                           description="Read `dead-letters` whole and print one line per dead letter, oldest "
                                       "first. ID is PARTITION:OFFSET on `dead-letters`, as `show` and `redrive` "
                                       "take it.")
    _filter_flags(list_)
    list_.add_argument("--output-format", "--format", choices=("table", "json"), default="table",
                       help="an aligned table, or a JSON list")
    show = sub.add_parser("show", help="one dead letter whole, with its original value decoded",
                          description="Print one dead letter as JSON, with its original value decoded (JSON, "
                                      "else UTF-8 text, else base64). Exit 2 when ID is not on the topic.")
    show.add_argument("id", metavar="ID", help="PARTITION:OFFSET of the dead letter, as `list` shows it")
    redrive = sub.add_parser(
        "redrive", help="republish originals to their source topic (a dry run unless --apply)",
        description="Republish the original bytes and key of the dead letters chosen by ID and/or filters to "
                    "their source topic and partition. Without --apply, print what would be sent and send "
                    "nothing. Each record sent carries headers naming the dead letter, the operator, the reason "
                    "and the time; an original re-driven before is skipped unless --force. An original the dead "
                    "letter does not hold whole (value cut, key not UTF-8) is never sent (exit 1).")
    redrive.add_argument("ids", nargs="*", metavar="ID", help="PARTITION:OFFSET of a dead letter (default: every "
                         "dead letter the filters choose; give IDs or a filter)")
    _filter_flags(redrive)
    redrive.add_argument("--apply", action="store_true", help="send (needs --operator and --reason)")
    redrive.add_argument("--operator", help="who re-drives (recorded in the records' headers)")
    redrive.add_argument("--reason", help="why: what was fixed (recorded in the records' headers)")
    redrive.add_argument("--force", action="store_true", help="also send originals that were re-driven before")
    return [list_, show, redrive]


def _filter_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--topic", action="append", metavar="TOPIC", help="only originals from this topic: registry "
                   "id, name, or name on the broker (repeatable)")
    p.add_argument("--code", action="append", metavar="CODE", help="only this error code (repeatable)")
    p.add_argument("--since", metavar="TS", help="refused at or after TS (RFC 3339, a date, or epoch ms)")
    p.add_argument("--until", metavar="TS", help="refused before TS (RFC 3339, a date, or epoch ms)")


def parse_id(text: str) -> tuple[int, int]:
    """A dead letter's ID, ``PARTITION:OFFSET``.

    >>> parse_id("2:17")
    (2, 17)
    >>> parse_id("17")
    Traceback (most recent call last):
    ...
    resontinex.app.exceptions.UsageError: dead letter ID '17': expected PARTITION:OFFSET (as `dead-letters list` shows it)
    """
    found = _ID.fullmatch(text.strip())
    if found is None:
        raise UsageError(f"dead letter ID {text!r}: expected PARTITION:OFFSET (as `dead-letters list` shows it)")
    return int(found[1]), int(found[2])


def parse_instant_ms(flag: str, text: str | None) -> int | None:
    """Epoch milliseconds of a flag's instant: RFC 3339 (naive means UTC), a date, or epoch ms.

    >>> parse_instant_ms("--since", "2024-05-01T12:00:00.250Z"), parse_instant_ms("--since", "1714564800250")
    (1714564800250, 1714564800250)
    >>> parse_instant_ms("--until", "2024-05-01"), parse_instant_ms("--until", None)
    (1714521600000, None)
    >>> parse_instant_ms("--since", "yesterday")
    Traceback (most recent call last):
    ...
    resontinex.app.exceptions.UsageError: --since 'yesterday': neither an RFC 3339 timestamp (2024-05-01T12:00:00Z), a date (2024-05-01) nor epoch milliseconds
    """
    if text is None:
        return None
    if _EPOCH_MS.fullmatch(text.strip()):
        return int(text)
    try:
        return ts_to_ms(parse_instant(text).isoformat())
    except ValueError:
        raise UsageError(f"{flag} {text!r}: neither an RFC 3339 timestamp (2024-05-01T12:00:00Z), a date "
                         "(2024-05-01) nor epoch milliseconds") from None


# --- dead letters and filters (pure)


@dataclass(frozen=True, slots=True)
class Letter:
    """One dead letter: where it lies on `dead-letters`, as read (`raw`) and validated (`record`)."""

    partition: int
    offset: int
    raw: dict[str, Any]
    record: DeadLetter

    @property
    def id(self) -> str:
        return f"{self.partition}:{self.offset}"

    @property
    def at_ms(self) -> int:
        return ts_to_ms(self.record.ts)

    def original(self) -> bytes:
        """The original value as the dead letter holds it (cut when `value_truncated`); raises
        `binascii.Error` when `value_base64` is not base64."""
        return base64.b64decode(self.record.value_base64, validate=True)

    def event_id(self) -> str | None:
        """The original's `event_id`, when it is a JSON object that has a string one."""
        try:
            value = orjson.loads(self.original())
        except (orjson.JSONDecodeError, binascii.Error):
            return None
        event_id = value.get("event_id") if isinstance(value, dict) else None
        return event_id if isinstance(event_id, str) else None


def letter(partition: int, offset: int, value: bytes | None) -> Letter:
    """The `Letter` of one `dead-letters` record; `InvalidEvent` when it is not a dead letter."""
    raw, record = decode_json(DeadLetter, value)
    return Letter(partition, offset, raw, record)


@dataclass(frozen=True, slots=True)
class Filters:
    """What `--topic`, `--code`, `--since` and `--until` ask for (empty: anything)."""

    topics: frozenset[str] = frozenset()
    codes: frozenset[str] = frozenset()
    since_ms: int | None = None
    until_ms: int | None = None

    def __bool__(self) -> bool:
        return bool(self.topics or self.codes) or self.since_ms is not None or self.until_ms is not None

    def matches(self, dead: Letter) -> bool:
        r = dead.record
        return ((not self.topics or r.source_topic in self.topics) and (not self.codes or r.error.code in self.codes)
                and (self.since_ms is None or dead.at_ms >= self.since_ms)
                and (self.until_ms is None or dead.at_ms < self.until_ms))

    @classmethod
    def from_args(cls, args: argparse.Namespace, prefix: str) -> Filters:
        """The filters of parsed arguments; a `--topic` of the registry is named as on the broker.

        >>> f = Filters.from_args(argparse.Namespace(topic=["outcomes", "x"], code=None, since="0", until=None), "p.")
        >>> sorted(f.topics), f.since_ms, bool(f)
        (['p.outcomes', 'x'], 0, True)
        """
        return cls(frozenset(_source_topic(t, prefix) for t in args.topic or ()), frozenset(args.code or ()),
                   parse_instant_ms("--since", args.since), parse_instant_ms("--until", args.until))


def _source_topic(name: str, prefix: str) -> str:
    try:
        return topics.wire_name(topics.get(name), prefix)
    except KeyError:
        return name


def select(letters: Iterable[Letter], ids: Sequence[str], filters: Filters) -> list[Letter]:
    """The dead letters with these IDs (every one when none is given) that the filters keep;
    an ID that is not among `letters` is a `UsageError`."""
    pool = list(letters)
    if ids:
        by_id = {d.id: d for d in pool}
        wanted = [f"{p}:{o}" for p, o in map(parse_id, ids)]
        missing = [i for i in wanted if i not in by_id]
        if missing:
            raise UsageError(f"no dead letter {', '.join(missing)} on the topic (IDs are PARTITION:OFFSET as "
                             "`dead-letters list` shows them)")
        pool = [by_id[i] for i in dict.fromkeys(wanted)]
    return [d for d in pool if filters.matches(d)]


def row(dead: Letter) -> dict[str, Any]:
    """One dead letter as `list` shows it (a JSON object of `--output-format json`)."""
    r = dead.record
    return {"id": dead.id, "ts": r.ts, "source_topic": r.source_topic, "partition": r.partition, "offset": r.offset,
            "key": r.key, "code": r.error.code, "message": r.error.message, "event_id": dead.event_id(),
            "dead_letter_event_id": r.event_id, "value_size": r.value_size, "value_truncated": r.value_truncated}


def format_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """An aligned table of `row`s, the reason clipped.

    >>> print(format_table([{"id": "1:0", "ts": "2026-01-01T00:00:00.000Z", "source_topic": "outcomes",
    ...                      "partition": 1, "offset": 7, "code": "unknown_decision", "event_id": "o-1",
    ...                      "message": "decision_id 'd-1' is unknown or expired"}]))
    TS                        ID   SOURCE         CODE              EVENT  REASON
    2026-01-01T00:00:00.000Z  1:0  outcomes[1]@7  unknown_decision  o-1    decision_id 'd-1' is unknown or expired
    >>> format_table([])
    'no dead letters'
    """
    if not rows:
        return "no dead letters"
    header = ("TS", "ID", "SOURCE", "CODE", "EVENT", "REASON")
    table = [header] + [(str(r["ts"]), str(r["id"]), f"{r['source_topic']}[{r['partition']}]@{r['offset']}",
                         str(r["code"]), str(r["event_id"] or "-"), _clip(str(r["message"]))) for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in table)


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _REASON_CHARS else text[:_REASON_CHARS - 1] + "…"


def decode_original(value: bytes) -> dict[str, Any]:
    """An original value for people: strict JSON (no NaN), else UTF-8 text, else base64.

    >>> decode_original(b'{"event_id": "e1"}'), decode_original(b'{"x": NaN}')
    ({'encoding': 'json', 'value': {'event_id': 'e1'}}, {'encoding': 'utf-8', 'value': '{"x": NaN}'})
    >>> decode_original(b"\\xff\\x00")
    {'encoding': 'base64', 'value': '/wA='}
    """
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return {"encoding": "base64", "value": base64.b64encode(value).decode("ascii")}
    try:
        return {"encoding": "json", "value": orjson.loads(value)}
    except orjson.JSONDecodeError:
        return {"encoding": "utf-8", "value": text}


def show_document(dead: Letter) -> dict[str, Any]:
    """`show`'s document: the dead letter as on the topic, its ID, and its original decoded
    (null when `value_base64` is not base64)."""
    try:
        original: dict[str, Any] | None = decode_original(dead.original())
    except binascii.Error:
        original = None
    return {"id": dead.id, "dead_letter": dead.raw, "original": original}


# --- re-drive (pure)


@dataclass(frozen=True, slots=True)
class Previous:
    """An earlier re-drive of a dead letter, found on its source topic."""

    topic: str
    partition: int
    offset: int
    operator: str
    at: str


@dataclass(frozen=True, slots=True)
class Step:
    """What `redrive` does with one chosen dead letter, and why."""

    dead: Letter
    action: Literal["send", "skip", "refuse"]
    why: str = ""


def not_redrivable(dead: Letter) -> str | None:
    """Why the dead letter does not hold its original whole, if it does not."""
    r = dead.record
    if r.value_truncated:
        return f"the value was cut ({r.value_size} bytes, too large to echo): the original is not in the dead letter"
    try:
        value = dead.original()
    except binascii.Error:
        return "value_base64 is not base64"
    if r.value_sha256 is not None and hashlib.sha256(value).hexdigest() != r.value_sha256:
        return "the value does not match value_sha256"
    if r.key is not None and "\ufffd" in r.key:
        return "the key was not UTF-8: the dead letter holds it with replacement characters"
    return None


def plan_redrive(chosen: Sequence[Letter], previous: Mapping[str, Previous], *, force: bool) -> list[Step]:
    """One `Step` per chosen dead letter: `send`, `skip` (a second dead letter of the same
    original, or an original re-driven before, unless `force`) or `refuse` (`not_redrivable`)."""
    steps: list[Step] = []
    first: dict[str, Letter] = {}
    for dead in chosen:
        same = first.setdefault(dead.record.event_id, dead)
        done = previous.get(dead.record.event_id)
        if same is not dead:
            steps.append(Step(dead, "skip", f"the same original as {same.id}"))
        elif (problem := not_redrivable(dead)) is not None:
            steps.append(Step(dead, "refuse", problem))
        elif done is not None:
            when = f"re-driven to {done.topic}[{done.partition}]@{done.offset} by {done.operator} at {done.at}"
            steps.append(Step(dead, "send", f"again (--force): {when}") if force else
                         Step(dead, "skip", f"already {when} (--force sends it again)"))
        else:
            steps.append(Step(dead, "send"))
    return steps


def redrive_headers(dead: Letter, operator: str, reason: str, at_ms: int) -> list[tuple[str, bytes]]:
    """The headers of a re-driven record.

    >>> dead = letter(1, 0, b'{"event_id": "dl-0", "source_topic": "outcomes", "partition": 1, "offset": 7, '
    ...               b'"key": "acme", "value_base64": "e30=", "error": {"code": "c", "message": "m"}, "ts": "'
    ...               b'2026-01-01T00:00:00Z"}')
    >>> [name for name, _ in redrive_headers(dead, "ops-1", "fixed", 0)]
    ['resontinex-redrive-of', 'resontinex-redrive-id', 'resontinex-redrive-operator', 'resontinex-redrive-reason', 'resontinex-redrive-at']
    """
    values = {"of": dead.record.event_id, "id": dead.id, "operator": operator, "reason": reason, "at": ms_to_ts(at_ms)}
    return [(_HEADER + name, value.encode()) for name, value in values.items()]


def previous_redrive(topic: str, partition: int, offset: int,
                     headers: Sequence[tuple[str, bytes]]) -> tuple[str, Previous] | None:
    """(dead letter event id, `Previous`) when a source record's headers say it is a re-drive.

    >>> previous_redrive("outcomes", 1, 9, [("resontinex-redrive-of", b"dl-0"), ("resontinex-redrive-operator", b"ops-1"),
    ...                                     ("resontinex-redrive-at", b"1970-01-01T00:00:00.000Z")])
    ('dl-0', Previous(topic='outcomes', partition=1, offset=9, operator='ops-1', at='1970-01-01T00:00:00.000Z'))
    >>> previous_redrive("outcomes", 1, 9, [("other", b"x")]) is None
    True
    """
    found = {name.removeprefix(_HEADER): value.decode("utf-8", "replace") for name, value in headers
             if name.startswith(_HEADER)}
    if "of" not in found:
        return None
    return found["of"], Previous(topic, partition, offset, found.get("operator", "?"), found.get("at", "?"))


def redrive_commands(sent: Sequence[tuple[Letter, int]], operator: str, reason: str) -> list[Control]:
    """The `dead_letter_redrive` commands that audit what was sent, `MAX_REDRIVEN` originals each.

    >>> dead = letter(1, 0, b'{"event_id": "dl-0", "source_topic": "outcomes", "partition": 1, "offset": 7, '
    ...               b'"key": "acme", "value_base64": "e30=", "error": {"code": "c", "message": "m"}, "ts": "'
    ...               b'2026-01-01T00:00:00Z"}')
    >>> [(c.tenant, c.action, [r.redriven_offset for r in c.redriven or ()]) for c in redrive_commands(
    ...     [(dead, 9)], "ops-1", "fixed")]
    [('_system', 'dead_letter_redrive', [9])]
    """
    items = [{"dead_letter": dead.id, "dead_letter_event_id": dead.record.event_id,
              "source_topic": dead.record.source_topic, "partition": dead.record.partition,
              "offset": dead.record.offset, "redriven_offset": offset, "key": dead.record.key,
              "event_id": dead.event_id()} for dead, offset in sent]
    return [control_command("dead_letter_redrive", SYSTEM_TENANT, operator, reason,
                            redriven=[{k: v for k, v in i.items() if v is not None} for i in items[at:at + MAX_REDRIVEN]])
            for at in range(0, len(items), MAX_REDRIVEN)]


def _line(step: Step, sent: str = "") -> str:
    r = step.dead.record
    verb = {"send": "sent" if sent else "would send", "skip": "skip", "refuse": "cannot re-drive"}[step.action]
    where = f"{r.source_topic}[{r.partition}]{sent}"
    what = f"key {r.key!r}, {r.value_size if r.value_size is not None else '?'} bytes, {r.error.code}"
    event = step.dead.event_id()
    line = f"{verb} {step.dead.id} → {where}  ({what}{f', event {event}' if event else ''})"
    return line + (f": {step.why}" if step.why else "")


# --- Kafka


def run(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "list":
        return _run_list(settings, args)
    if args.action == "show":
        return _run_show(settings, args)
    if args.action == "redrive":
        return _run_redrive(settings, args)
    raise UsageError(f"dead-letters: unknown action {args.action!r}")


def _run_list(settings: Settings, args: argparse.Namespace) -> int:
    filters = Filters.from_args(args, settings.topic_prefix)
    rows = [row(d) for d in _read_letters(settings) if filters.matches(d)]
    print(json.dumps(rows, indent=2, ensure_ascii=False) if args.output_format == "json" else format_table(rows))
    return 0


def _run_show(settings: Settings, args: argparse.Namespace) -> int:
    parse_id(args.id)
    (dead,) = select(_read_letters(settings), [args.id], Filters())
    print(json.dumps(show_document(dead), indent=2, ensure_ascii=False))
    return 0


def _run_redrive(settings: Settings, args: argparse.Namespace) -> int:
    filters = Filters.from_args(args, settings.topic_prefix)
    for text in args.ids:
        parse_id(text)
    if not args.ids and not filters:
        raise UsageError("dead-letters redrive: choose dead letters by ID or with --topic, --code, --since or --until")
    if args.apply and not ((args.operator or "").strip() and (args.reason or "").strip()):
        raise UsageError("dead-letters redrive --apply: --operator and --reason are required")
    chosen = select(_read_letters(settings), args.ids, filters)
    steps = plan_redrive(chosen, asyncio.run(_previous(settings.bootstrap, chosen)), force=args.force)
    for step in steps:
        if step.action != "send" or not args.apply:
            print(_line(step))
    sends = [s for s in steps if s.action == "send"]
    if args.apply and sends:
        operator, reason = args.operator.strip(), args.reason.strip()
        sent = asyncio.run(_send(settings.bootstrap, sends, operator, reason))
        for command in redrive_commands(sent, operator, reason):
            publish(settings, command)
    counts = {action: sum(s.action == action for s in steps) for action in ("send", "skip", "refuse")}
    summary = f"{counts['send']} {'sent' if args.apply else 'to send'}, {counts['skip']} skipped, " \
              f"{counts['refuse']} cannot be re-driven"
    print(summary if args.apply else f"dry run: {summary}; --apply --operator ID --reason TEXT sends")
    return 1 if counts["refuse"] else 0


def _read_letters(settings: Settings) -> list[Letter]:
    """Every dead letter on the topic, oldest first; a record that is no dead letter is logged and left out."""
    letters: list[Letter] = []

    def keep(record: ConsumerRecord) -> None:
        try:
            letters.append(letter(record.partition, record.offset, record.value))
        except InvalidEvent as exc:
            log.warning("not a dead letter: %s", exc, extra={"partition": record.partition, "offset": record.offset})

    asyncio.run(read_topic(settings.bootstrap, settings.topic("dead_letters"), keep))
    return sorted(letters, key=lambda d: (d.at_ms, d.partition, d.offset))


async def _previous(bootstrap: str, chosen: Sequence[Letter]) -> dict[str, Previous]:
    """The earlier re-drives of the chosen dead letters: read from each original's offset on,
    to the partition's end (a re-drive goes to the original's partition, after it)."""
    starts: dict[TopicPartition, int] = {}
    for dead in chosen:
        tp = TopicPartition(dead.record.source_topic, dead.record.partition)
        starts[tp] = min(starts.get(tp, dead.record.offset), dead.record.offset)
    wanted = {d.record.event_id for d in chosen}
    found: dict[str, Previous] = {}
    if not starts:
        return found
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, **client_options(), group_id=None, enable_auto_commit=False)
    try:
        await start_client(consumer, bootstrap)
        existing = await consumer.topics()  # every topic: asking for one by name would create it
        for tp in starts:
            if tp.topic not in existing or tp.partition not in (consumer.partitions_for_topic(tp.topic) or ()):
                raise UsageError(f"dead-letters redrive: the source {tp.topic}[{tp.partition}] does not exist at "
                                 f"{bootstrap}")
        ends = await true_end_offsets(bootstrap, starts)
        consumer.assign(list(starts))
        for tp, start in starts.items():
            consumer.seek(tp, start)
        pending, progress_at = {tp for tp in starts if starts[tp] < ends[tp]}, time.monotonic()
        while pending:
            batch = await consumer.getmany(*pending, timeout_ms=500)
            for tp, records in batch.items():
                for record in records:
                    hit = previous_redrive(tp.topic, tp.partition, record.offset, record.headers or ())
                    if hit is not None and hit[0] in wanted and record.offset < ends[tp]:
                        found.setdefault(hit[0], hit[1])
            pending = {tp for tp in pending if await consumer.position(tp) < ends[tp]}
            if batch:
                progress_at = time.monotonic()
            elif time.monotonic() - progress_at > _STALL_S:
                raise BrokerError(f"reading the source topics at {bootstrap}: no progress for {_STALL_S:g} s")
    except (KafkaError, TimeoutError) as exc:
        raise BrokerError(f"reading the source topics at {bootstrap}: {exc}") from exc
    finally:
        await consumer.stop()
    return found


async def _send(bootstrap: str, sends: Sequence[Step], operator: str, reason: str) -> list[tuple[Letter, int]]:
    """Publish each original (acknowledged by every replica), printing each as it is
    acknowledged; each dead letter sent with the offset of its copy."""
    sent_at: list[tuple[Letter, int]] = []
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **client_options(), acks="all")
    try:
        await start_client(producer, bootstrap)
        for step in sends:
            r = step.dead.record
            headers = redrive_headers(step.dead, operator, reason, time.time_ns() // 1_000_000)
            sent = await asyncio.wait_for(producer.send_and_wait(
                r.source_topic, step.dead.original(), key=None if r.key is None else r.key.encode(),
                partition=r.partition, headers=headers), _ACK_TIMEOUT_S)
            print(_line(step, f"@{sent.offset}"), flush=True)
            sent_at.append((step.dead, sent.offset))
    except (KafkaError, asyncio.TimeoutError) as exc:
        why = exc if isinstance(exc, KafkaError) else f"no acknowledgement within {_ACK_TIMEOUT_S:g} s"
        raise BrokerError(f"dead-letters redrive: could not publish to {bootstrap}: {why}") from None
    finally:
        await producer.stop()
    return sent_at
