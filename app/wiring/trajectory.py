"""The trajectory role: `trajectory-requests` → `trajectory-results` (CONTRACT §3.6).

Its own consumer group (app id `resontinex-trajectory`), so GPU machines run it and scale
it apart from the CPU workers. Per batch: decode (bad events become dead letters, a
repeated event id is dropped), score every text in one analyzer call on a worker thread
(the event loop keeps heartbeating while the model runs), send the results and a
`quality_check_failed` alert for each text that fails, and wait for the acks before
Faust commits the input offsets. Result ids derive from the request, so a redelivered
request repeats its result's id.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import faust
import orjson

from resontinex.agents.gate import alert_event, derived_id
from resontinex.app import metrics
from resontinex.app.engine.batching import drain_in_batches
from resontinex.app.engine.deadletter import send_dead_letter
from resontinex.app.engine.misrouted import Forwarder
from resontinex.app.engine.recent import RecentMap
from resontinex.app.runtime import Runtime
from resontinex.schemas import InvalidEvent, TrajectoryRequest, decode_keyed, ms_to_ts

from resontinex.agents.trajectory import Analyzer, Scored, UnscorableText

log = logging.getLogger(__name__)

RECENT_IDS = 100_000
"""Request ids remembered per partition for dropping repeats (in memory: after a restart a
repeat is scored again, from the cache when it is still there, under the same result id)."""


def result_id(tenant: str, request_event_id: str) -> str:
    """Deterministic, so a request scored again repeats its result's id.

    >>> result_id("acme", "t-1") == result_id("acme", "t-1") != result_id("acme", "t-2")
    True
    """
    return derived_id("tr-", tenant, request_event_id)


def result_event(request: TrajectoryRequest, scored: Scored, analyzer: Analyzer, ts: str) -> dict[str, Any]:
    s = scored.score
    return {
        "event_id": result_id(request.tenant, request.event_id), "schema_version": 1,
        "request_event_id": request.event_id, "tenant": request.tenant, "model": analyzer.name,
        "n_tokens": s.n_tokens, "perplexity": s.perplexity, "mean_entropy": s.mean_entropy,
        "max_entropy": s.max_entropy, "surprise": s.surprise, "passed_quality_check": analyzer.passed(s),
        "truncated": s.truncated, "cached": scored.cached, "device": analyzer.device,
        "request_id": request.request_id, "ts": ts,
    } | ({"token_logprobs": [round(float(x), 6) for x in s.token_logprobs],
          "token_entropies": [round(float(x), 6) for x in s.token_entropies]} if request.detail else {})


def quality_alert(result: dict[str, Any], analyzer: Analyzer) -> dict[str, Any]:
    cfg = analyzer.cfg
    return alert_event(
        id_source=result["event_id"], kind="quality_check_failed", tenant=result["tenant"], severity="warning",
        message=(f"generated text failed the quality check: perplexity {result['perplexity']:.1f} "
                 f"(limit {cfg.max_perplexity:g}), mean entropy {result['mean_entropy']:.2f} nats "
                 f"(limit {cfg.max_mean_entropy:g}), surprise {result['surprise'] / result['n_tokens']:.2f} per token "
                 f"(limit {cfg.max_surprise_per_token:g})"),
        details={k: result[k] for k in ("model", "n_tokens", "perplexity", "mean_entropy", "max_entropy", "surprise",
                                        "truncated", "request_id")} | {"result_id": result["event_id"]},
        source_event_id=result["request_event_id"], ts=result["ts"])


def register(app: faust.App, rt: Runtime, analyzer: Analyzer) -> None:
    """Declare the trajectory agent on `app`."""
    s = rt.settings
    source_name = s.topic("trajectory_requests")
    source = app.topic(source_name, key_serializer="raw", value_serializer="raw", partitions=s.partitions)
    results, alerts, dead_letters = s.topic("trajectory_results"), s.topic("alerts"), s.topic("dead_letters")
    seen: dict[int, RecentMap[bool]] = {}
    model_names = {analyzer.name, rt.trajectory.model}
    scorer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="trajectory-model")  # one model, one thread
    mirror = _MetricsMirror()
    forwarder = Forwarder(rt.sink, s.partitions)
    for result in ("hit", "miss"):
        metrics.TRAJECTORY_CACHE.labels(result)  # at 0 from the start, so increase() sees the first one
    for action in ("halved", "cpu_fallback"):
        metrics.TRAJECTORY_OOM.labels(action)

    async def handle(batch: list[faust.types.EventT]) -> None:
        started = time.perf_counter()
        sink = rt.sink
        valid: list[tuple[faust.types.EventT, TrajectoryRequest]] = []
        for event in forwarder.keep_own(batch):
            msg = event.message
            try:
                _, _, request = decode_keyed(TrajectoryRequest, msg.key, msg.value, max_bytes=s.max_message_bytes)
                if request.model is not None and request.model not in model_names:
                    raise InvalidEvent("model_unavailable", f"model {request.model!r} is not served here; this "
                                                            f"group serves {analyzer.name!r} ({rt.trajectory.model!r})")
            except InvalidEvent as exc:
                send_dead_letter(sink, dead_letters, msg, exc.code, exc.message)
                continue
            recent = seen.setdefault(msg.partition, RecentMap(RECENT_IDS))
            if request.event_id in recent:
                metrics.DUPLICATES.labels(source_name).inc()
                continue
            recent.put(request.event_id, True)
            valid.append((event, request))
        metrics.EVENTS.labels(source_name).inc(len(batch))
        if valid:
            before = analyzer.stats.tokens
            scoring = time.perf_counter()
            scored = await asyncio.get_running_loop().run_in_executor(
                scorer, analyzer.score, [request.text for _, request in valid])
            mirror.observe(analyzer, before, time.perf_counter() - scoring, scored)
            for (event, request), outcome in zip(valid, scored, strict=True):
                msg = event.message
                if isinstance(outcome, UnscorableText):
                    send_dead_letter(sink, dead_letters, msg, "unscorable_text", str(outcome))
                    continue
                result = result_event(request, outcome, analyzer, request.ts or ms_to_ts(round(msg.timestamp * 1000)))
                sink.add(results, msg.partition, msg.key, orjson.dumps(result))
                if not result["passed_quality_check"]:
                    alert = quality_alert(result, analyzer)
                    sink.add(alerts, msg.partition, msg.key, orjson.dumps(alert))
                    metrics.ALERTS.labels("quality_check_failed").inc()
                    log.info("quality check failed", extra={"event_id": request.event_id, "tenant": request.tenant})
        await sink.flush()
        metrics.BATCH_SIZE.labels("trajectory").observe(len(batch))
        metrics.BATCH_SECONDS.labels("trajectory").observe(time.perf_counter() - started)

    @app.agent(source, name="trajectory")
    async def trajectory(stream: faust.StreamT) -> None:
        await drain_in_batches(stream, handle, max_batch=s.batch_max, linger_s=s.batch_linger_s, name="trajectory")

    @app.on_partitions_revoked.connect
    async def _revoked(app: faust.App, revoked: set, **_: Any) -> None:
        for tp in revoked:
            if tp.topic == source_name:
                seen.pop(tp.partition, None)


class _MetricsMirror:
    """Turns the analyzer's running totals into the trajectory metrics after each call."""

    def __init__(self) -> None:
        self.hits = self.halvings = self.fallbacks = 0

    def observe(self, analyzer: Analyzer, tokens_before: int, seconds: float, scored: list) -> None:
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
