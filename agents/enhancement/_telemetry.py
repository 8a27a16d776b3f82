"""The telemetry agent's core: a batch of `telemetry` records folded into windows.

Each valid record's metrics are folded per window (tumbling, `telemetry.window`) into
two windowed tables on the record's partition: `telemetry-sources` keyed by the source,
and `telemetry-arms` keyed by `enhancement_id/arm` for records of an enhancement. A
window's value is `{"upto": offset, "metrics": {name: WindowStats}}`: the records of a key
all come from one partition, in offset order, so a record below `upto` was folded already
and a redelivered batch is folded once. An enhancement's records also become a partial
per enhancement, arm and window, sent on the internal feed keyed by the enhancement id,
for its monitor (`_plan`): the window's statistics so far on this partition (`source`),
the offset they reach (`upto`), and the batch's sample of `canary.sample_size` values. A
partial replaces what its source sent before rather than adding to it (`_series`), so a
batch redelivered with other boundaries counts once.

Records are folded per group at once (`fold_many`): one table write per key and window
per batch, however many records it holds.

A record's time is its `ts`, else the record's timestamp; one older than `telemetry.keep`
or more than a window ahead of the clock is a dead letter (`out_of_window`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

import orjson

from resontinex.agents.effects import Effects, EffectsBuilder, Output, Record, TableWrite
from resontinex.schemas import InvalidEvent, Telemetry, decode_json, decode_key, ts_to_ms
from resontinex.topics import partition_of

from ._config import EnhancementConfig
from ._plan import FEED_TELEMETRY
from ._stats import WindowStats, fold_many

__all__ = ["ARMS_TABLE", "SOURCES_TABLE", "TelemetryPlan", "TelemetryView", "plan_telemetry", "window_start"]

SOURCES_TABLE: Final = "telemetry-sources"
ARMS_TABLE: Final = "telemetry-arms"


class TelemetryView(Protocol):
    def window(self, table: str, key: str, partition: int, start: float) -> dict[str, Any] | None:
        """The value of `key`'s window starting at `start` in `table`, on `partition`."""
        ...


@dataclass(frozen=True, slots=True)
class TelemetryPlan:
    effects: Effects
    folded: int


def window_start(t: float, window_s: float) -> float:
    """
    >>> window_start(125.0, 60.0), window_start(120.0, 60.0)
    (120.0, 120.0)
    """
    return math.floor(t / window_s) * window_s


_Group = tuple[list[str], list[float]]


def plan_telemetry(records: Sequence[Record], view: TelemetryView, cfg: EnhancementConfig, *, partitions: int,
                   now: float, max_message_bytes: int) -> TelemetryPlan:
    """The batch's window writes and partials (bad records: dead letters)."""
    out = EffectsBuilder()
    t = cfg.telemetry
    # (table, key, partition, window start) → metric → (ids, values), and the next offset past the group's records
    groups: dict[tuple[str, str, int, float], dict[str, _Group]] = defaultdict(dict)
    upto: dict[tuple[str, str, int, float], int] = {}
    stored: dict[tuple[str, str, int, float], dict[str, Any] | None] = {}
    folded = 0
    for record in records:
        out.count("EVENTS", record.topic)
        try:
            key = decode_key(record.key)
            _, event = decode_json(Telemetry, record.value, max_bytes=max_message_bytes)
            if key != event.source:
                raise InvalidEvent("key_mismatch", f"key {key!r} is not the event's source {event.source!r}")
            at = ts_to_ms(event.ts) / 1000 if event.ts else record.timestamp
            if not now - t.keep_s <= at <= now + t.window_s:
                raise InvalidEvent("out_of_window", f"ts {at:.3f} is outside the telemetry windows kept "
                                                    f"({t.keep_s:g} s back, one window ahead)")
        except InvalidEvent as exc:
            out.reject(record, exc.code, exc.message, round(now * 1000))
            continue
        start = window_start(at, t.window_s)
        keys = [(SOURCES_TABLE, event.source)]
        if event.enhancement_id is not None:
            keys.append((ARMS_TABLE, f"{event.enhancement_id}/{event.arm or 'enhancement'}"))
        counted = False
        for table, key_ in keys:
            g = (table, key_, record.partition, start)
            if g not in stored:
                stored[g] = view.window(table, key_, record.partition, start)
            if record.offset < (stored[g] or {}).get("upto", -1):
                continue  # folded before this batch
            metrics = groups[g]
            for name, value in event.metrics.items():
                ids, values = metrics.setdefault(name, ([], []))
                ids.append(event.event_id)
                values.append(value)
            upto[g] = record.offset + 1
            counted = True
        folded += counted
    if folded:
        out.count("TELEMETRY_FOLDED", amount=folded)
    window_k, partial_k = cfg.telemetry.sample_size, cfg.canary.sample_size
    for g, metrics in groups.items():
        table, key, partition, start = g
        arm = table == ARMS_TABLE
        partials = fold_many(metrics, partial_k if arm else window_k)
        before = (stored[g] or {}).get("metrics", {})
        merged = {name: WindowStats.from_dict(before.get(name)).merged(st, window_k) for name, st in partials.items()}
        window = {**before, **{n: s.as_dict() for n, s in merged.items()}}
        out.late.append(TableWrite(table, key, {"upto": upto[g], "metrics": window}, partition, at=start))
        if arm:
            enhancement_id, _, arm_name = key.rpartition("/")
            partial = {"type": FEED_TELEMETRY, "enhancement_id": enhancement_id, "arm": arm_name,
                       "window_start": start, "source": partition, "upto": upto[g],
                       "metrics": {n: {**d, "s": []} for n, d in window.items()},
                       "samples": {n: [list(e) for e in s.sample] for n, s in partials.items()}}
            out.outputs.append(Output("enhancement_feed", partition_of(enhancement_id, partitions),
                                      enhancement_id.encode(), orjson.dumps(partial)))
    return TelemetryPlan(out.effects(), folded)
