"""The console's memory of the newest alerts and dead letters this worker queued.

`Ring` is an `OutputSink` watcher: on the hot path it keeps the raw bytes of a message in
a bounded deque under a sequence number (no decoding); `Recent.page(after)` decodes, when
the console asks, only what came after the number the page last saw.

>>> recent = Recent(capacity=2)
>>> recent.alerts("alerts", 1, b"acme", b'{"event_id": "a-1", "tenant": "acme", "kind": "trust_floor_violation", '
...               b'"severity": "warning", "message": "score under the floor"}')
>>> recent.dead_letters("dead-letters", 3, None, b"not json")
>>> p = recent.page(after=0)
>>> p["seq"], [(a["seq"], a["kind"], a["tenant"]) for a in p["alerts"]], p["dead_letters"][0]["undecodable"]
(2, [(1, 'trust_floor_violation', 'acme')], True)
>>> recent.page(after=2)["alerts"], recent.page(after=2)["truncated"], recent.page(after=9)["seq"]
([], False, 2)
"""

from __future__ import annotations

import base64
import binascii
import itertools
import time
from collections import deque
from typing import Any

import orjson

from resontinex.schemas import ms_to_ts

__all__ = ["CAPACITY", "PREVIEW_CHARS", "Held", "Recent", "Ring", "shape_alert", "shape_dead_letter"]

CAPACITY = 200
"""Messages kept per topic."""
PREVIEW_CHARS = 160
"""How much of a dead letter's original value (or of an undecodable message) a row shows."""

Held = tuple[int, float, int, "bytes | None", bytes]
"""(seq, queued at: Unix seconds, partition, key, value) as the hot path keeps it."""


class Ring:
    """The last `capacity` messages queued to one topic, numbered from a counter shared
    with the other rings (one `after` serves them all)."""

    __slots__ = ("_items", "_counter", "dropped_upto")

    def __init__(self, capacity: int, counter: itertools.count[int]) -> None:
        if capacity < 1:
            raise ValueError("capacity must be ≥ 1")
        self._items: deque[Held] = deque(maxlen=capacity)
        self._counter = counter
        self.dropped_upto = 0
        """The seq of the newest message evicted (0: none yet)."""

    def __call__(self, topic: str, partition: int, key: bytes | None, value: bytes) -> None:
        """Keep one queued message (the `OutputSink.watch` signature): a tuple, no decoding."""
        items = self._items
        if len(items) == items.maxlen:
            self.dropped_upto = items[0][0]
        items.append((next(self._counter), time.time(), partition, key, value))

    def after(self, seq: int) -> list[Held]:
        """The messages kept with a sequence number above `seq`, oldest first."""
        out: list[Held] = []
        for held in reversed(self._items):
            if held[0] <= seq:
                break
            out.append(held)
        out.reverse()
        return out

    @property
    def last(self) -> int:
        return self._items[-1][0] if self._items else 0

    def __len__(self) -> int:
        return len(self._items)


class Recent:
    """Both rings: `alerts` and `dead_letters` are the watchers to hand to `OutputSink.watch`."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        counter = itertools.count(1)
        self.capacity = capacity
        self.alerts = Ring(capacity, counter)
        self.dead_letters = Ring(capacity, counter)

    def page(self, after: int = 0) -> dict[str, Any]:
        """What `/ui/recent?after=N` answers: the items past `after`, decoded and shaped,
        oldest first; `seq`, the newest number given out (ask after it next time; one below
        `after` means the worker restarted and numbers anew); `truncated`, whether some
        items past `after` were evicted before this page asked."""
        return {
            "seq": max(self.alerts.last, self.dead_letters.last),
            "capacity": self.capacity,
            "truncated": after < max(self.alerts.dropped_upto, self.dead_letters.dropped_upto),
            "alerts": [shape_alert(h) for h in self.alerts.after(after)],
            "dead_letters": [shape_dead_letter(h) for h in self.dead_letters.after(after)],
        }


def _common(held: Held) -> dict[str, Any]:
    seq, at, partition, key, _ = held
    return {"seq": seq, "queued_at": ms_to_ts(round(at * 1000)), "partition": partition,
            "key": None if key is None else key.decode("utf-8", "replace")}


def _decoded(held: Held) -> dict[str, Any] | None:
    try:
        value = orjson.loads(held[4])
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _undecodable(held: Held) -> dict[str, Any]:
    return {**_common(held), "undecodable": True, "preview": held[4][:PREVIEW_CHARS].decode("utf-8", "replace")}


def shape_alert(held: Held) -> dict[str, Any]:
    """One alert as the console lists it (CONTRACT §3.7 fields; `details` kept whole).

    >>> shape_alert((7, 0.0, 2, b"acme", b'{"event_id": "a", "tenant": "acme", "kind": "budget_warning", '
    ...                                  b'"severity": "warning", "message": "85%", "details": {"u": 0.86}}'))
    ... # doctest: +NORMALIZE_WHITESPACE
    {'seq': 7, 'queued_at': '1970-01-01T00:00:00.000Z', 'partition': 2, 'key': 'acme', 'event_id': 'a',
     'tenant': 'acme', 'kind': 'budget_warning', 'severity': 'warning', 'message': '85%', 'ts': None,
     'source_event_id': None, 'details': {'u': 0.86}}
    """
    value = _decoded(held)
    if value is None:
        return _undecodable(held)
    fields = ("event_id", "tenant", "kind", "severity", "message", "ts", "source_event_id")
    return {**_common(held), **{f: value.get(f) for f in fields}, "details": value.get("details") or {}}


def shape_dead_letter(held: Held) -> dict[str, Any]:
    """One dead letter as the console lists it (CONTRACT §4): its code and message, where
    the input came from, and the start of the original bytes instead of all of them.

    >>> value = orjson.dumps({"event_id": "d", "source_topic": "decision-requests", "partition": 1, "offset": 42,
    ...                       "key": "acme", "value_base64": base64.b64encode(b"not json").decode(),
    ...                       "error": {"code": "not_json", "message": "no JSON"}, "ts": "2026-01-01T00:00:00.000Z"})
    >>> row = shape_dead_letter((3, 0.0, 1, b"acme", value))
    >>> row["code"], row["source_topic"], row["offset"], row["preview"], row["value_bytes"]
    ('not_json', 'decision-requests', 42, 'not json', 8)
    """
    value = _decoded(held)
    if value is None:
        return _undecodable(held)
    error = value.get("error") if isinstance(value.get("error"), dict) else {}
    encoded = value.get("value_base64")
    try:  # the start only: 4 characters of base64 carry 3 bytes
        start = base64.b64decode(encoded[:(PREVIEW_CHARS // 3 + 1) * 4], validate=True) if isinstance(encoded, str) else b""
    except (binascii.Error, ValueError):
        start = b""
    size = value.get("value_size")
    return {**_common(held), "event_id": value.get("event_id"), "source_topic": value.get("source_topic"),
            "source_partition": value.get("partition"), "offset": value.get("offset"), "source_key": value.get("key"),
            "code": error.get("code"), "message": error.get("message"), "ts": value.get("ts"),
            "value_bytes": size if isinstance(size, int) else len(start),
            "preview": start[:PREVIEW_CHARS].decode("utf-8", "replace")}
