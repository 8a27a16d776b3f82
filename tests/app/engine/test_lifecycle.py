"""Revocation in one place: every source drains and commits, then the sink flushes, then agents
forget; at shutdown the sources stop and the sink flushes before Faust stops its tables."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import TopicPartition

from resontinex.app.engine.record_source import Lifecycle


class Signal:
    def __init__(self) -> None:
        self.receivers: list[Any] = []

    def connect(self, fn: Any) -> Any:
        self.receivers.append(fn)
        return fn


class App:
    def __init__(self, journal: list[str] | None = None) -> None:
        self.on_partitions_revoked = Signal()
        self.journal = journal if journal is not None else []

    async def _stop_consumer(self) -> None:  # Faust's: stops the fetcher and the tables
        self.journal.append("tables stopped")


class Source:
    def __init__(self, name: str, journal: list[str], delay: float) -> None:
        self.name, self.journal, self.delay = name, journal, delay

    async def revoke(self, revoked: Any) -> None:
        await asyncio.sleep(self.delay)  # a batch in flight
        self.journal.append(f"drained {self.name}")

    async def stop(self) -> None:
        await asyncio.sleep(self.delay)
        self.journal.append(f"stopped {self.name}")


def test_state_is_forgotten_only_after_every_source_drained_and_the_sink_flushed() -> None:
    journal: list[str] = []
    app = App()

    async def flush() -> None:
        journal.append("flush")

    lifecycle = Lifecycle(app, flush)  # type: ignore[arg-type]
    lifecycle.sources += [Source("gate", journal, 0.02), Source("budget", journal, 0.0)]  # type: ignore[list-item]
    lifecycle.forget.append(lambda tps: journal.append(f"forget {sorted(tp.partition for tp in tps)}"))
    (receiver,) = app.on_partitions_revoked.receivers
    asyncio.run(receiver(app, {TopicPartition("decision-requests", 1), TopicPartition("costs", 1)}))
    assert journal == ["drained budget", "drained gate", "flush", "forget [1, 1]"]


def test_at_shutdown_sources_stop_and_the_sink_flushes_before_faust_stops_its_tables() -> None:
    journal: list[str] = []
    app = App(journal)

    async def flush() -> None:
        journal.append("flush")

    lifecycle = Lifecycle(app, flush)  # type: ignore[arg-type]
    lifecycle.sources += [Source("gate", journal, 0.02), Source("budget", journal, 0.0)]  # type: ignore[list-item]
    asyncio.run(app._stop_consumer())  # as App.on_stop calls it
    assert journal == ["stopped budget", "stopped gate", "flush", "tables stopped"]
