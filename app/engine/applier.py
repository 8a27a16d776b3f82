"""The one applier: carries out a batch core's `Effects` in one documented order.

As Quix Streams' `Checkpoint.commit` does for its state, every agent's batch goes out
the same way (`resontinex.agents.effects` says why each step comes where it does):

1. early table writes, each on the partition the plan names — before the first `await`,
   so the plan's reads are still current when its writes land (the gate and the outcomes
   agent share the router state) — and `ahead` messages; then the changelog flushed and
   the `ahead` messages acknowledged;
2. outputs, sent and acknowledged (crash point `<agent>.outputs_sent` after them);
3. audit items, sealed onto each partition's chain (`app.engine.audit_writer`), sent and
   acknowledged;
4. late table writes;
5. metric counts. The caller acknowledges the input offsets once `apply` returns, and they
   are committed only after the changelog was flushed (`app.engine.record_source` flushes
   Faust's producer before each commit), so what a batch kept is durable before its input
   offsets are, without a flush per batch.

Faust tables take the changelog partition (and a windowed table its window) from the
current event; a write here runs under a stand-in event on the write's partition and
time (`faust_compat.event_context`).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from resontinex.agents.effects import Count, Effects, Observation, Output, TableWrite

from resontinex.app import metrics
from resontinex.app.engine.audit_writer import append_audit
from resontinex.app.engine.continuity import FetchedEvent, FetchedMessage
from resontinex.app.engine.crashpoints import crash_point
from resontinex.app.engine.faust_compat import event_context
from resontinex.app.engine.seams import Table
from resontinex.app.runtime import Runtime

__all__ = ["Applier", "event_at"]


def event_at(topic: str, partition: int, timestamp: float) -> FetchedEvent:
    """A stand-in for a Faust event of `topic[partition]` at `timestamp` (seconds)."""
    return FetchedEvent(FetchedMessage(topic, partition, -1, None, None, timestamp))


class Applier:
    """Applies one agent's plans: `tables` by name, `source_topic` the wire name of the
    agent's input (Faust checks a table's writes against its source's partitions),
    `flush_changelog` awaits the table changelogs' producer."""

    def __init__(self, rt: Runtime, name: str, source_topic: str, tables: Mapping[str, Table],
                 flush_changelog: Callable[[], Awaitable[None]]) -> None:
        self.rt, self.name, self.source_topic = rt, name, source_topic
        self.tables = tables
        self.flush_changelog = flush_changelog
        self._crash_point = f"{name}.outputs_sent"

    async def apply(self, effects: Effects) -> None:
        self.write(effects.early_writes)
        self.send(effects.ahead)
        durable = [self.flush_changelog()] if effects.early_writes else []
        if effects.ahead:
            durable.append(self.rt.sink.flush())
        await asyncio.gather(*durable)
        self.send(effects.outputs)
        await self.rt.sink.flush()
        crash_point(self._crash_point)
        if effects.audit:
            chains: dict[int, list[dict[str, Any]]] = defaultdict(list)
            for entry in effects.audit:
                chains[entry.partition].append(entry.item)
            for partition, items in chains.items():
                await append_audit(self.rt, partition, items)
            await self.rt.sink.flush()
        self.write(effects.late_writes)
        record(effects.counts, effects.observations)

    def send(self, outputs: Iterable[Output]) -> None:
        """Queue `outputs` on the sink (sent with its next flush)."""
        sink, topic = self.rt.sink, self.rt.settings.topic
        for out in outputs:
            sink.add(topic(out.topic), out.partition, out.key, out.value, timestamp_ms=out.timestamp_ms,
                     headers=list(out.headers) if out.headers else None)

    def write(self, writes: Iterable[TableWrite]) -> None:
        """Apply table writes now (no await)."""
        for w in writes:
            table = self.tables[w.table]
            with event_context(event_at(self.source_topic, w.partition, w.at)):  # type: ignore[arg-type]
                if not w.delete:
                    table[w.key] = w.value
                elif table.get(w.key) is not None:
                    del table[w.key]


def record(counts: Iterable[Count], observations: Iterable[Observation] = ()) -> None:
    """Add a plan's counts to the Prometheus metrics they name."""
    for c in counts:
        metric = getattr(metrics, c.metric)
        (metric.labels(*c.labels) if c.labels else metric).inc(c.amount)
    for o in observations:
        metric = getattr(metrics, o.metric)
        metric = metric.labels(*o.labels) if o.labels else metric
        if hasattr(metric, "observe_many"):  # a BatchHistogram
            metric.observe_many(o.values)
        else:
            for value in o.values:
                metric.observe(value)
