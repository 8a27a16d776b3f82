"""The trajectory role: `trajectory-requests` → `trajectory-results` (CONTRACT §3.6).

Its own consumer group (app id `resontinex-trajectory`), so GPU machines run it and scale
it apart from the CPU workers. Per batch: the core admits the requests
(`agents.trajectory.admit_requests`: bad events become dead letters, a repeated event id
is dropped), every text is scored in one analyzer call on a worker thread (the event loop
keeps heartbeating while the model runs), the core turns the scores into results and
`quality_check_failed` alerts (`plan_results`), and the applier sends them and waits for
the acks before Faust commits the input offsets.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import faust

from resontinex.agents.trajectory import Analyzer, Scored, UnscorableText, admit_requests, plan_results

from resontinex.app import metrics
from resontinex.app.engine.applier import Applier
from resontinex.app.engine.batching import drain_in_batches
from resontinex.app.engine.misrouted import Forwarder
from resontinex.app.engine.recent import RecentMap
from resontinex.app.engine.record_source import Lifecycle
from resontinex.app.engine.seams import Event
from resontinex.app.runtime import Runtime

__all__ = ["register"]

RECENT_IDS = 100_000
"""Request ids remembered per partition for dropping repeats (in memory: after a restart a
repeat is scored again, from the cache when it is still there, under the same result id)."""


def register(app: faust.App, rt: Runtime, analyzer: Analyzer, lifecycle: Lifecycle) -> None:
    """Declare the trajectory agent on `app`; its partitions are revoked through `lifecycle`."""
    s = rt.settings
    source_name = s.topic("trajectory_requests")
    source = app.topic(source_name, key_serializer="raw", value_serializer="raw", partitions=s.partitions)
    seen: dict[int, RecentMap[bool]] = {}
    scorer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="trajectory-model")  # one model, one thread
    mirror = _MetricsMirror()
    forwarder = Forwarder(rt.sink, s.partitions)
    applier = Applier(rt, "trajectory", source_name, {}, app.producer.flush)
    for result in ("hit", "miss"):
        metrics.TRAJECTORY_CACHE.labels(result)  # at 0 from the start, so increase() sees the first one
    for action in ("halved", "cpu_fallback"):
        metrics.TRAJECTORY_OOM.labels(action)

    def was_seen(partition: int, event_id: str) -> bool:
        recent = seen.get(partition)
        return recent is not None and event_id in recent

    async def handle(batch: list[Event]) -> None:
        started = time.perf_counter()
        own = forwarder.keep_own(batch)
        effects, admitted = admit_requests([e.message for e in own], seen=was_seen, scorer=analyzer,
                                           configured_model=rt.trajectory.model,
                                           max_message_bytes=s.max_message_bytes, now=time.time())
        if admitted:
            before = analyzer.stats.tokens
            scoring = time.perf_counter()
            scored = await asyncio.get_running_loop().run_in_executor(
                scorer, analyzer.score, [a.request.text for a in admitted])
            mirror.observe(analyzer, before, time.perf_counter() - scoring, scored)
            effects += plan_results(admitted, scored, analyzer, time.time())
        await applier.apply(effects)  # acknowledged before Faust commits the input offsets
        for a in admitted:
            seen.setdefault(a.record.partition, RecentMap(RECENT_IDS)).put(a.request.event_id, True)
        metrics.BATCH_SIZE.labels("trajectory").observe(len(batch))
        metrics.BATCH_SECONDS.labels("trajectory").observe(time.perf_counter() - started)

    @app.agent(source, name="trajectory")
    async def trajectory(stream: faust.StreamT) -> None:
        await drain_in_batches(stream, handle, max_batch=s.batch_max, linger_s=s.batch_linger_s, name="trajectory")

    def forget(revoked: set[Any]) -> None:
        for tp in revoked:
            if tp.topic == source_name:
                seen.pop(tp.partition, None)

    lifecycle.forget.append(forget)


class _MetricsMirror:
    """Turns the analyzer's running totals into the trajectory metrics after each call."""

    def __init__(self) -> None:
        self.hits = self.halvings = self.fallbacks = 0

    def observe(self, analyzer: Analyzer, tokens_before: int, seconds: float,
                scored: list[Scored | UnscorableText]) -> None:
        st = analyzer.stats
        tokens = st.tokens - tokens_before
        metrics.TRAJECTORY_TOKENS.inc(tokens)
        if tokens:
            metrics.TRAJECTORY_TOKENS_PER_S.set(tokens / max(seconds, 1e-9))
        for size in st.batch_sizes:
            metrics.TRAJECTORY_BATCH_TEXTS.observe(size)
        hits = st.cache_hits - self.hits
        metrics.TRAJECTORY_CACHE.labels("hit").inc(hits)
        metrics.TRAJECTORY_CACHE.labels("miss").inc(sum(isinstance(o, Scored) for o in scored) - hits)
        metrics.TRAJECTORY_OOM.labels("halved").inc(st.oom_halvings - self.halvings)
        metrics.TRAJECTORY_OOM.labels("cpu_fallback").inc(st.cpu_fallbacks - self.fallbacks)
        self.hits, self.halvings, self.fallbacks = st.cache_hits, st.oom_halvings, st.cpu_fallbacks
        metrics.TRAJECTORY_DEVICE.clear()
        metrics.TRAJECTORY_DEVICE.labels(analyzer.name, analyzer.device, analyzer.loaded.dtype).set(1)
