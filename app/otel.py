"""OpenTelemetry: the GenAI semantic-convention names of AI-usage figures, and optional
OTLP trace export of decisions and coordination runs.

Names. Token and provider figures are also exposed under the OTel GenAI semantic
conventions (semconv 1.37+: `gen_ai.provider.name` replaced `gen_ai.system`):

* `/metrics` has `gen_ai_client_token_usage` (the histogram `gen_ai.client.token.usage`
  as the OTel Prometheus exporter names it: dots become underscores, and so do the
  labels `gen_ai_token_type`, `gen_ai_provider_name`, `gen_ai_request_model`,
  `gen_ai_operation_name`), one observation of input and one of output tokens per cost
  the budget agent folds (`agents.budget.tokens_observations`, in its batch core);
* spans carry `gen_ai.usage.input_tokens`, `gen_ai.usage.output_tokens`,
  `gen_ai.provider.name`, `gen_ai.request.model`, `gen_ai.response.model`,
  `gen_ai.operation.name`.

Traces. With `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT` set (and
`OTEL_SDK_DISABLED` not `true`), `setup` builds a `TracerProvider` (resource
`service.name=resontinex-<role>` unless `OTEL_SERVICE_NAME` says otherwise) exporting
OTLP/HTTP protobuf through a `BatchSpanProcessor` (its own thread; `OTEL_BSP_*`,
`OTEL_TRACES_SAMPLER*` and `OTEL_EXPORTER_OTLP_*` apply as the SDK reads them). Unset, it
returns None: the SDK is not even imported, and the shells' only cost is one `is None`
test per batch. The shells make the spans after a batch was applied (`GateTrace`,
`Tracing.coordination_run`); the pure cores know nothing of tracing.

>>> configured({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}), configured({})
(True, False)
>>> configured({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "true"})
False
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import orjson

from resontinex.agents.effects import Effects

from resontinex.app.engine.recent import RecentMap

if TYPE_CHECKING:
    from resontinex.app.engine.continuity import FetchedEvent
    from resontinex.app.engine.sink import OutputSink

__all__ = ["ENDPOINT_ENVS", "FIELD_NAMES", "GateTrace", "Tracing", "configured", "setup",
           "traces_endpoint"]

log = logging.getLogger(__name__)

ENDPOINT_ENVS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
SPAN_QUEUE = 32_768
"""Spans the `BatchSpanProcessor` holds for export (unless OTEL_BSP_MAX_QUEUE_SIZE says): several gate batches."""

# GenAI semantic conventions (attribute names)
GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GEN_AI_AGENT_NAME = "gen_ai.agent.name"

FIELD_NAMES = {"input_tokens": GEN_AI_USAGE_INPUT_TOKENS, "output_tokens": GEN_AI_USAGE_OUTPUT_TOKENS,
               "provider": GEN_AI_PROVIDER_NAME, "model": GEN_AI_REQUEST_MODEL}
"""CONTRACT §3.4's cost fields (and the coordination result's token totals) → their GenAI semconv names."""

COORDINATION_OPERATION = "invoke_agent"
"""A coordination run invokes a team of agents (each of its calls is a `chat`)."""
COORDINATION_AGENT = "resontinex.coordination"


def configured(env: Mapping[str, str] = os.environ) -> bool:
    """Whether traces are to be exported: an OTLP endpoint is set and the SDK is not disabled."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return any(env.get(name, "").strip() for name in ENDPOINT_ENVS)


def traces_endpoint(env: Mapping[str, str] = os.environ) -> str | None:
    """The OTLP/HTTP traces URL: the traces variable as is, or the base one plus `/v1/traces`.

    >>> traces_endpoint({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/"})
    'http://c:4318/v1/traces'
    >>> traces_endpoint({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t/x"})
    'http://t/x'
    """
    url = env.get(ENDPOINT_ENVS[0], "").strip()
    if url:
        return url
    base = env.get(ENDPOINT_ENVS[1], "").strip()
    return base.rstrip("/") + "/v1/traces" if base else None


# --- traces -----------------------------------------------------------------------------------

_SEALED_PREFIX = re.compile(rb'\{"event_id":"((?:[^"\\]|\\.){1,800})","seq":(\d+),')
"""The start of a sealed audit record as the audit writer queues it (`seal` puts `event_id`, then `seq`)."""


class AuditSeqs:
    """The `seq` of each audit record as it is queued: an `OutputSink.watch` watcher on
    the audit topic (registered only while tracing), keeping the last `capacity` ids.

    >>> seqs = AuditSeqs()
    >>> seqs("audit", 0, b"acme", b'{"event_id":"au-1","seq":41,"kind":"decision"}')
    >>> seqs.get("au-1"), seqs.get("au-2")
    (41, None)
    """

    def __init__(self, capacity: int = 50_000) -> None:
        self._seqs: RecentMap[int] = RecentMap(capacity)

    def __call__(self, topic: str, partition: int, key: bytes | None, value: bytes) -> None:
        m = _SEALED_PREFIX.match(value, 0, 1024)
        if m is not None:
            raw = m.group(1)
            event_id = orjson.loads(b'"' + raw + b'"') if b"\\" in raw else raw.decode()
            self._seqs.put(event_id, int(m.group(2)))

    def get(self, event_id: str) -> int | None:
        return self._seqs.get(event_id)


class Tracing:
    """A worker's tracer (`setup` makes it; tests give it an in-memory exporter's provider)."""

    def __init__(self, provider: Any) -> None:
        from opentelemetry import trace
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self.provider = provider
        self.tracer = provider.get_tracer("resontinex")
        self._trace = trace
        self._propagator = TraceContextTextMapPropagator()
        self.audit_seqs = AuditSeqs()

    def watch_audit(self, sink: OutputSink, audit_topic: str) -> None:
        """Learn the audit records' seqs from what `sink` queues (the gate calls it once)."""
        sink.watch([audit_topic], self.audit_seqs)

    def gate_batch(self, events: Iterable[FetchedEvent], topics: Mapping[str, str]) -> GateTrace:
        """Begin tracing a gate batch whose effects are about to be applied (now: the decisions are queued)."""
        return GateTrace(self, events, topics)

    def parent(self, headers: Iterable[tuple[str, bytes]] | Mapping[str, bytes]) -> Any:
        """The context of a record's W3C `traceparent` header (its producer's span), or None."""
        pairs = headers.items() if isinstance(headers, Mapping) else headers
        carrier = {k.lower(): v.decode("latin-1") if isinstance(v, bytes) else str(v)
                   for k, v in pairs if k.lower() in ("traceparent", "tracestate")}
        if "traceparent" not in carrier:
            return None
        ctx = self._propagator.extract(carrier)
        return ctx if self._trace.get_current_span(ctx).get_span_context().is_valid else None

    def coordination_run(self, *, request: Any, report: Any, model: str, partition: int, offset: int,
                         started_s: float, topic: str, headers: Any = ()) -> None:
        """One span for a coordination run, from the request's arrival to its result and costs applied."""
        try:
            self._coordination_run(request, report, model, partition, offset, started_s, topic, headers)
        except Exception:  # noqa: BLE001 - tracing never fails a run
            log.exception("tracing: the coordination span failed")

    def _coordination_run(self, request: Any, report: Any, model: str, partition: int, offset: int,
                          started_s: float, topic: str, headers: Any) -> None:
        from resontinex.agents.coordination import PROVIDER  # imported by then: the coordination shell calls this

        calls = report.calls
        models = {c.model for c in calls}
        attributes = _attrs({
            GEN_AI_OPERATION_NAME: COORDINATION_OPERATION,
            GEN_AI_AGENT_NAME: COORDINATION_AGENT,
            GEN_AI_PROVIDER_NAME: PROVIDER,
            GEN_AI_REQUEST_MODEL: model,
            GEN_AI_RESPONSE_MODEL: next(iter(models)) if len(models) == 1 else None,
            GEN_AI_USAGE_INPUT_TOKENS: sum(c.input_tokens for c in calls),
            GEN_AI_USAGE_OUTPUT_TOKENS: sum(c.output_tokens for c in calls),
            "resontinex.request_id": request.event_id,
            "resontinex.tenant": request.tenant,
            "resontinex.workflow": request.workflow,
            "resontinex.coordination.strategy": request.strategy,
            "resontinex.coordination.agents": request.num_agents,
            "resontinex.coordination.status": report.status,
            "resontinex.coordination.calls": len(calls),
            "resontinex.coordination.baseline_cached": report.baseline_cached,
            "resontinex.cost_usd": float(report.cost_usd),
            "messaging.system": "kafka",
            "messaging.destination.name": topic,
            "messaging.destination.partition.id": str(partition),
            "messaging.kafka.offset": offset,
        })
        if report.errors:
            attributes["error.type"] = report.errors[0][0]
        kind = self._trace.SpanKind.CONSUMER
        span = self.tracer.start_span(f"{COORDINATION_OPERATION} {COORDINATION_AGENT}", context=self.parent(headers),
                                      kind=kind, attributes=attributes,
                                      start_time=min(int(started_s * 1e9), time.time_ns()))
        if report.status == "failed":
            span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, report.errors[0][1] if report.errors
                                               else "failed"))
        span.end()

    def shutdown(self) -> None:
        self.provider.shutdown()


class GateTrace:
    """The spans of one gate batch: per decision, `resontinex.decide` from the request
    record's timestamp (or its producer's `traceparent` span) to the decision queued; per
    batch, `resontinex.audit.append` from then to the decisions and their audit records
    acknowledged, which every decision span links to. (A child span per decision for the
    audit write would double the cost: the SDK takes ~17 µs a span plus ~1 µs an attribute.)"""

    __slots__ = ("tracing", "events", "topics", "queued_ns")

    def __init__(self, tracing: Tracing, events: Iterable[FetchedEvent], topics: Mapping[str, str]) -> None:
        self.tracing, self.topics = tracing, topics
        self.events = {(e.message.partition, e.message.offset): e.message for e in events}
        self.queued_ns = time.time_ns()

    def finish(self, effects: Effects) -> int:
        """Make the spans of the decisions among `effects` (applied now); how many decisions."""
        try:
            return self._finish(effects, time.time_ns())
        except Exception:  # noqa: BLE001 - tracing never fails a batch
            log.exception("tracing: the decision spans of a batch failed")
            return 0

    def _finish(self, effects: Effects, done_ns: int) -> int:
        tracing, queued_ns, events = self.tracing, self.queued_ns, self.events
        tracer, trace, seqs = tracing.tracer, tracing._trace, tracing.audit_seqs
        source_topic = self.topics["decision_requests"]
        consumer = trace.SpanKind.CONSUMER
        audit_span: Any = None
        links: list[Any] = []
        n = 0
        for entry in effects.audit:
            item = entry.item
            if item["kind"] != "decision":
                continue
            if audit_span is None:
                audit_span = tracer.start_span("resontinex.audit.append", kind=trace.SpanKind.PRODUCER,
                                               start_time=queued_ns, attributes={
                                                   "messaging.system": "kafka", "messaging.operation.type": "send",
                                                   "messaging.destination.name": self.topics["audit"]})
                links = [trace.Link(audit_span.get_span_context())]
            body = item["record"]
            decision, source = body["decision"], body["source"]
            partition, offset = source["partition"], source["offset"]
            msg = events.get((partition, offset))
            start_ns = queued_ns
            parent = None
            if msg is not None:
                start_ns = min(int(msg.timestamp * 1e9), queued_ns)
                if msg.headers:
                    parent = tracing.parent(msg.headers)
            trust = decision.get("trust") or {}
            attributes = {
                "resontinex.request_id": decision["request_id"],
                "resontinex.tenant": decision["tenant"],
                "resontinex.decision.event_id": decision["event_id"],
                "resontinex.decision.verb": decision["verb"],
                "resontinex.trust.tier": trust.get("tier"),
                "resontinex.trust.score": trust.get("score"),
                "resontinex.policy_version": decision["policy_version"],
                "resontinex.audit.event_id": item["event_id"],
                "resontinex.audit.seq": seqs.get(item["event_id"]),
                "messaging.system": "kafka",
                "messaging.destination.name": source_topic,
                "messaging.destination.partition.id": str(partition),
                "messaging.kafka.offset": offset,
            }
            if attributes["resontinex.audit.seq"] is None or attributes["resontinex.trust.tier"] is None:
                attributes = _attrs(attributes)
            tracer.start_span("resontinex.decide", context=parent, kind=consumer, attributes=attributes, links=links,
                              start_time=start_ns).end(end_time=queued_ns)
            n += 1
        if audit_span is not None:
            audit_span.set_attribute("resontinex.audit.decisions", n)
            audit_span.end(end_time=done_ns)
        return n


def _attrs(values: dict[str, Any]) -> dict[str, Any]:
    """Span attributes without the absent ones (OTel takes no null)."""
    return {k: v for k, v in values.items() if v is not None}


def setup(role: str, instance: str, env: Mapping[str, str] = os.environ) -> Tracing | None:
    """The worker's `Tracing` when an OTLP endpoint is configured, else None (nothing imported)."""
    if not configured(env):
        return None
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        log.warning("OTLP trace export is off: %s is set but the SDK is missing (%s); install resontinex[otel]",
                    next(n for n in ENDPOINT_ENVS if env.get(n)), exc)
        return None
    attributes = {"service.instance.id": instance}
    if not env.get("OTEL_SERVICE_NAME"):
        attributes["service.name"] = f"resontinex-{role}"
    provider = TracerProvider(resource=Resource.create(attributes))
    endpoint = traces_endpoint(env)
    # a gate batch (up to RESONTINEX_BATCH_MAX, 4,000) makes a span per decision at once: the
    # SDK's default queue of 2,048 would drop the rest of it
    queue = {} if env.get("OTEL_BSP_MAX_QUEUE_SIZE") else {"max_queue_size": SPAN_QUEUE}
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint), **queue))
    log.info("OTLP trace export on", extra={"endpoint": endpoint,
                                            "service_name": env.get("OTEL_SERVICE_NAME") or attributes["service.name"]})
    return Tracing(provider)
