"""`resontinex audit replay`: the audit records matching filters, in partition then offset order.

Filters (all optional, combined with AND):

* `--tenant T`: the record's `tenant` is T (`_system` for the writer's own records);
* `--since TS` / `--until TS`: the record's `ts` is at or after / before TS (RFC 3339, or a
  date `2026-11-22` meaning its midnight UTC); a record whose `ts` is not a timestamp
  matches neither;
* `--kind K` (repeatable): the record's `kind` is one of them;
* `--request-id R`: the records of one decision request: its `decision` (`record.request
  .event_id` is R), the alerts raised for it (`record.alert.source_event_id`, or the
  alert's `details.request_id` / `details.decision_id`), its break-glass `override`
  (`record.request_id`, `record.decision_id`) and its budget `state_change`
  (`record.budget.request_id`), where a decision id is that of a decision of R found in
  the log. Alerts of later outcomes (`routing_anomaly`) name the outcome, not the
  request, and are not among them.

A stored value that is not a JSON object is never written; how many there were is said on
stderr at the end (`audit verify` says where they are and why).

Output shapes (`--out FILE`, default stdout):

* `jsonl`: one `{"partition", "offset", "record"}` per line, `record` the audit record as
  stored: the shape of an archive line (`app.audit_source.archive_line`);
* `csv`: a header, then one row of `COLUMNS` per record, empty where a column does not
  apply (`request_id`, `decision_id` are the ids the record names itself; `verb`,
  `score`, `tier` are a decision's or an override's; `alert_kind`, `severity`,
  `source_event_id` an alert's);
* `table`: fixed-width text for people: partition, offset, seq, ts, tenant, kind, event id
  and a `key=value` summary of the csv columns, long cells cut with `…`; with
  `--request-id`, each decision's explanation follows it (`explanation_lines`);
* `parquet` (needs pyarrow and `--out`): the csv columns, typed, plus `record` (the audit
  record as JSON text).
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from datetime import datetime, timezone
from typing import IO, Any, Final

import orjson

from resontinex.app.commands.audit_source import AuditLog, archive_line, progress
from resontinex.app.exceptions import UsageError

COLUMNS: Final = ("partition", "offset", "seq", "ts", "tenant", "kind", "event_id", "policy_version", "request_id",
                  "decision_id", "verb", "score", "tier", "alert_kind", "severity", "source_event_id", "hash")
TABLE: Final = (("partition", "PART", 4), ("offset", "OFFSET", 8), ("seq", "SEQ", 6), ("ts", "TS", 24),
                ("tenant", "TENANT", 16), ("kind", "KIND", 12), ("event_id", "EVENT_ID", 36),
                ("summary", "SUMMARY", 72))
"""The columns of `--output-format table`: name, heading, width."""
SUMMARY: Final = ("request_id", "verb", "score", "tier", "alert_kind", "severity")
BODY_COLUMNS: Final = {
    "request_id": {"decision": ("request", "event_id"), "override": ("request_id",),
                   "alert": ("alert", "details", "request_id"), "state_change": ("budget", "request_id")},
    "decision_id": {"decision": ("decision", "event_id"), "override": ("decision_id",),
                    "alert": ("alert", "details", "decision_id")},
    "verb": {"decision": ("decision", "verb"), "override": ("decision",)},
    "score": {"decision": ("decision", "trust", "score"), "override": ("score",)},
    "tier": {"decision": ("decision", "trust", "tier"), "override": ("tier",)},
    "alert_kind": {"alert": ("alert", "kind")},
    "severity": {"alert": ("alert", "severity")},
    "source_event_id": {"alert": ("alert", "source_event_id")},
}
"""Where each column between `policy_version` and `hash` is in the body of a record of each kind."""
LINKS: Final = (("request", "event_id"), ("decision", "event_id"), ("alert", "source_event_id"),
                ("alert", "details", "request_id"), ("alert", "details", "decision_id"), ("request_id",),
                ("decision_id",), ("budget", "request_id"))
"""Where in a record's body the ids of the request and decision it belongs to are."""

Row = dict[str, Any]
Writer = Callable[[int, int, dict[str, Any]], object]


def parse_instant(text: str) -> datetime:
    """An RFC 3339 timestamp (or a date, meaning its midnight UTC) as an aware datetime.

    >>> parse_instant("2026-11-22T05:32:42.778Z").isoformat()
    '2026-11-22T05:32:42.778000+00:00'
    >>> parse_instant("2026-11-22").isoformat(), parse_instant("2026-11-22T07:00:00+02:00").hour
    ('2026-11-22T00:00:00+00:00', 7)
    >>> parse_instant("yesterday")
    Traceback (most recent call last):
    ValueError: Invalid isoformat string: 'yesterday'
    """
    text = text.strip()
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    instant = datetime.fromisoformat(text)
    return instant if instant.tzinfo is not None else instant.replace(tzinfo=timezone.utc)


def flag_instant(flag: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_instant(value)
    except ValueError:
        raise UsageError(f"{flag} {value!r}: not an RFC 3339 timestamp (2026-11-22T05:32:42Z) or a date "
                         "(2026-11-22)") from None


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def linked_ids(record: dict[str, Any]) -> set[str]:
    """The request and decision ids a record's body names (see `LINKS`).

    >>> sorted(linked_ids({"kind": "override", "record": {"request_id": "r-1", "decision_id": "d-1",
    ...                                                   "decision": "execute"}}))
    ['d-1', 'r-1']
    """
    body = record.get("record")
    return {v for path in LINKS if isinstance(v := _get(body, *path), str)}


def request_ids(log: AuditLog, request_id: str) -> frozenset[str]:
    """`request_id` and the ids of its decisions in the log: a record naming one belongs to it."""
    return frozenset({request_id, *(
        d for _, _, r in log.records()
        if isinstance(r, dict) and r.get("kind") == "decision"
        and _get(r, "record", "request", "event_id") == request_id
        and isinstance(d := _get(r, "record", "decision", "event_id"), str)
    )})


@dataclass(frozen=True, slots=True)
class Filters:
    """What `--tenant`, `--since`, `--until`, `--kind` and `--request-id` ask for (None: anything)."""

    tenant: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    kinds: frozenset[str] | None = None
    ids: frozenset[str] | None = None  # `request_ids`

    def matches(self, record: dict[str, Any]) -> bool:
        if self.tenant is not None and record.get("tenant") != self.tenant:
            return False
        if self.kinds is not None and record.get("kind") not in self.kinds:
            return False
        if self.ids is not None and self.ids.isdisjoint(linked_ids(record)):
            return False
        return self._in_time(record)

    def _in_time(self, record: dict[str, Any]) -> bool:
        if self.since is None and self.until is None:
            return True
        try:
            ts = parse_instant(record["ts"])
        except (KeyError, TypeError, ValueError):
            return False
        return (self.since is None or ts >= self.since) and (self.until is None or ts < self.until)


def _text(value: Any) -> str | None:
    return None if value is None else value if isinstance(value, str) else orjson.dumps(value).decode()


def _int(value: Any) -> int | None:
    return value if type(value) is int else None


def _float(value: Any) -> float | None:
    return float(value) if type(value) in (int, float) else None


def row(partition: int, offset: int, record: dict[str, Any]) -> Row:
    """The `COLUMNS` of one record; None where a column does not apply.

    >>> r = row(0, 7, {"seq": 3, "kind": "alert", "tenant": "acme", "record": {"alert": {
    ...     "kind": "trust_floor_violation", "severity": "warning", "source_event_id": "r-1",
    ...     "details": {"decision_id": "d-1", "verb": "review"}}}})
    >>> r["offset"], r["seq"], r["alert_kind"], r["decision_id"], r["source_event_id"], r["verb"], r["hash"]
    (7, 3, 'trust_floor_violation', 'd-1', 'r-1', None, None)
    """
    body, kind = record.get("record"), record.get("kind")
    named = {column: _get(body, *paths[kind]) if kind in paths else None for column, paths in BODY_COLUMNS.items()}
    return {
        "partition": partition, "offset": offset, "seq": _int(record.get("seq")),
        **{k: _text(record.get(k)) for k in ("ts", "tenant", "kind", "event_id", "policy_version")},
        **{k: _float(v) if k == "score" else _text(v) for k, v in named.items()},
        "hash": _text(record.get("hash")),
    }


def _cell(value: Any, width: int) -> str:
    text = "" if value is None else str(value)
    return text.ljust(width) if len(text) <= width else text[:width - 1] + "…"


def table_line(values: dict[str, Any]) -> str:
    """One fixed-width line of `TABLE` (the header with the headings as values).

    >>> line = table_line({"partition": 0, "offset": 12, "seq": 5, "ts": "2026-11-22T05:32:42Z", "tenant": "acme",
    ...                    "kind": "decision", "event_id": "au-" + "f" * 40, "summary": "verb=abort"})
    >>> line.split()
    ['0', '12', '5', '2026-11-22T05:32:42Z', 'acme', 'decision', 'au-ffffffffffffffffffffffffffffffff…', 'verb=abort']
    >>> line.index("verb=abort") == sum(width + 1 for _, _, width in TABLE[:-1])
    True
    """
    return " ".join(_cell(values.get(name), width) for name, _, width in TABLE).rstrip()


def summary(r: Row) -> str:
    """The `SUMMARY` columns of a row that apply, as `key=value`.

    >>> summary({"request_id": "r-1", "verb": "defer", "score": 0.41234, "tier": "defer", "alert_kind": None})
    'request_id=r-1 verb=defer score=0.4123 tier=defer'
    """
    return " ".join(f"{k}={r[k]:.4f}" if isinstance(r.get(k), float) else f"{k}={r[k]}"
                    for k in SUMMARY if r.get(k) is not None)


def explanation_lines(explanation: dict[str, Any]) -> list[str]:
    """A decision's explanation (`agents.trust.explain_batch`) as indented lines for people.

    >>> e = {"signals": {"alignment_score": {"weight": 0.45, "clamped": 0.8, "logit": 1.3862943611198906,
    ...                                      "contribution": 0.6238324625039508}},
    ...      "z": 0.6238324625039508, "raw_score": 0.6510, "score": 0.651, "tier_score": 0.651, "tier": "monitor",
    ...      "tier_bounds": {"above": 0.5, "at_most": 0.75}, "tier_verb": "execute", "verb": "defer",
    ...      "verb_changes": [{"component": "budget", "codes": ["budget_blocked"], "before": "execute", "after": "defer"}]}
    >>> for line in explanation_lines(e):
    ...     print(line)
        z 0.623832 = alignment_score 0.45 × logit 1.386294 = 0.623832
        raw_score 0.651 → score 0.651: tier monitor (0.5 < 0.651 ≤ 0.75) → execute
        budget_blocked (budget): execute → defer
        verb defer
    """
    terms = " + ".join(f"{name} {s['weight']:g} × logit {s['logit']:.6f} = {s['contribution']:.6f}"
                       for name, s in explanation["signals"].items())
    bounds = explanation["tier_bounds"]
    below = "" if bounds["above"] is None else f"{bounds['above']:g} < "
    lines = [f"z {explanation['z']:.6f} = {terms}",
             f"raw_score {explanation['raw_score']:.6g} → score {explanation['score']:g}: tier {explanation['tier']} "
             f"({below}{explanation['tier_score']:g} ≤ {bounds['at_most']:g}) → {explanation['tier_verb']}"]
    lines += [f"{', '.join(c['codes'])} ({c['component']}): {c['before']} → {c['after']}"
              for c in explanation["verb_changes"]]
    lines.append(f"verb {explanation['verb']}")
    return ["    " + line for line in lines]


def _jsonl(out: IO[str]) -> Writer:
    return lambda p, o, record: out.write(archive_line(p, o, record).decode())


def _csv(out: IO[str]) -> Writer:
    writer = csv.DictWriter(out, COLUMNS)
    writer.writeheader()
    return lambda p, o, record: writer.writerow(row(p, o, record))


def _table(out: IO[str], explain: bool = False) -> Writer:
    """The `table` writer; with `explain`, each decision's explanation follows its line."""
    out.write(table_line({name: heading for name, heading, _ in TABLE}) + "\n")

    def write(p: int, o: int, record: dict[str, Any]) -> None:
        r = row(p, o, record)
        out.write(table_line({**r, "summary": summary(r)}) + "\n")
        if explain and isinstance(explanation := _get(record, "record", "explanation"), dict):
            out.write("".join(line + "\n" for line in explanation_lines(explanation)))

    return write


def _write_parquet(path: str, records: Iterable[tuple[int, int, dict[str, Any]]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = {"partition": pa.int64(), "offset": pa.int64(), "seq": pa.int64(), "score": pa.float64()}
    schema = pa.schema([(c, types.get(c, pa.string())) for c in (*COLUMNS, "record")])
    rows = [{**row(p, o, r), "record": orjson.dumps(r).decode()} for p, o, r in records]
    try:
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    except OSError as exc:
        raise UsageError(f"{path}: cannot write: {exc}") from None


@contextmanager
def _output(path: str | None) -> Iterator[IO[str]]:
    if path is None:
        yield sys.stdout
        return
    try:
        fh = open(path, "w", encoding="utf-8", newline="")
    except OSError as exc:
        raise UsageError(f"{path}: cannot write: {exc.strerror}") from None
    with fh:
        yield fh


def _check_parquet(args: argparse.Namespace) -> None:
    if args.out is None:
        raise UsageError("--output-format parquet needs --out FILE")
    try:
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise UsageError("--output-format parquet needs pyarrow: pip install pyarrow") from None


def filters(args: argparse.Namespace, log: AuditLog) -> Filters:
    """The filters of `audit replay`'s arguments; a bad `--since` or `--until` is a UsageError."""
    return Filters(
        tenant=args.tenant, since=flag_instant("--since", args.since), until=flag_instant("--until", args.until),
        kinds=frozenset(args.kind) if args.kind else None,
        ids=request_ids(log, args.request_id) if args.request_id is not None else None,
    )


def _matching(log: AuditLog, wanted: Filters, quiet: bool) -> Iterator[tuple[int, int, dict[str, Any]]]:
    """The matching records, with a progress bar; then the counts on stderr."""
    matched = not_objects = 0
    with progress("replaying", total=len(log), quiet=quiet) as bar:
        for partition, offset, record in log.records():
            bar.update(1)
            if not isinstance(record, dict):
                not_objects += 1
            elif wanted.matches(record):
                matched += 1
                yield partition, offset, record
    if not quiet:
        print(f"replayed {matched:,} of {len(log):,} records", file=sys.stderr)
    if not_objects:
        print(f"warning: {not_objects:,} of the records are not JSON objects and were skipped; "
              "run `resontinex audit verify`", file=sys.stderr)


def run(args: argparse.Namespace, log: AuditLog) -> int:
    """`audit replay` over an already-read log: write the matching records in `args.output_format`."""
    if args.output_format == "parquet":
        _check_parquet(args)
    wanted = filters(args, log)
    records = _matching(log, wanted, args.quiet)
    if args.output_format == "parquet":
        _write_parquet(args.out, records)
        return 0
    with _output(args.out) as out:
        formats = {"jsonl": _jsonl, "csv": _csv, "table": partial(_table, explain=args.request_id is not None)}
        write = formats[args.output_format](out)
        for partition, offset, record in records:
            write(partition, offset, record)
    return 0
