"""The typed seams between the shell's parts: what the applier, the forwarder and the
handlers need of a sink, a table and an event, as Protocols (structural: `OutputSink`, a
Faust table, a Faust event and `continuity.FetchedEvent` fit them as they are).

`tests/app/engine/seams_conformance.py`, type-checked by `tests/test_types.py`, holds the
shell's views and parts to them and to the cores' views.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from resontinex.agents.effects import Record

__all__ = ["Event", "Message", "Sink", "Table"]


class Sink(Protocol):
    """Where outputs are queued (`add`) and then sent and acknowledged (`flush`)."""

    def add(self, topic: str, partition: int, key: bytes | None, value: bytes, *, timestamp_ms: int | None = None,
            headers: list[tuple[str, bytes]] | None = None) -> None: ...

    async def flush(self) -> None: ...


class Table(Protocol):
    """A keyed table as the cores' views read it and the applier writes it."""

    def get(self, key: str) -> Any: ...

    def __setitem__(self, key: str, value: Any) -> None: ...

    def __delitem__(self, key: str) -> None: ...


class Message(Record, Protocol):
    """An input record with its headers (what a forward copies)."""

    @property
    def headers(self) -> Sequence[tuple[str, bytes]] | Mapping[str, bytes] | None: ...


class Event(Protocol):
    """An input event as a handler takes it: its record under `message`."""

    @property
    def message(self) -> Message: ...
