"""OpenTelemetry names and spans (`resontinex.app.otel`): the GenAI token histogram, the
decision and coordination spans made from applied effects, and nothing at all when no
OTLP endpoint is configured."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import orjson
import pytest

from resontinex.agents.budget import tokens_observations
from resontinex.agents.effects import AuditItem, Effects, audit_item
from resontinex.app import metrics, otel
from resontinex.app.engine.applier import record
from resontinex.app.engine.continuity import FetchedEvent, FetchedMessage

pytest.importorskip("opentelemetry.sdk")
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from opentelemetry.trace import SpanKind  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
TOPICS = {"decision_requests": "decision-requests", "audit": "audit"}


@pytest.fixture
def traced() -> tuple[otel.Tracing, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return otel.Tracing(provider), exporter


def _decision_effects(partition: int = 2, offset: int = 17, request_id: str = "r-1") -> Effects:
    decision = {"event_id": "d-" + request_id, "request_id": request_id, "tenant": "acme", "workflow": "default",
                "verb": "review", "policy_version": "3f2a9c0d1e4b", "trust": {"score": 0.61, "tier": "moderate"},
                "budget": {"status": "ok"}, "route": None, "ts": "2025-01-01T00:00:00Z"}
    body = {"request": {"event_id": request_id}, "decision": decision,
            "source": {"topic": "decision-requests", "partition": partition, "offset": offset}}
    item = audit_item("au-" + request_id, "decision", "acme", decision["ts"], decision["policy_version"], body)
    alert = audit_item("au-x", "alert", "acme", decision["ts"], decision["policy_version"], {"alert": {}})
    return Effects(audit=(AuditItem(partition, item), AuditItem(partition, alert)))


def _request_event(partition: int, offset: int, at: float, headers: tuple = ()) -> FetchedEvent:
    return FetchedEvent(FetchedMessage("decision-requests", partition, offset, b"acme", b"{}", at, headers))


def _histogram(labels: dict[str, str]) -> tuple[float, float]:
    """(count, sum) of gen_ai_client_token_usage with `labels` now."""
    count = total = 0.0
    for family in metrics.GEN_AI_TOKEN_USAGE.collect():
        for s in family.samples:
            if s.labels.get("le") is None and all(s.labels.get(k) == v for k, v in labels.items()):
                if s.name.endswith("_count"):
                    count = s.value
                elif s.name.endswith("_sum"):
                    total = s.value
    return count, total


def test_configured_by_the_standard_endpoint_variables() -> None:
    assert otel.configured({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"})
    assert otel.configured({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"})
    assert not otel.configured({"OTEL_EXPORTER_OTLP_ENDPOINT": " "})
    assert not otel.configured({"OTEL_SERVICE_NAME": "x", "OTEL_EXPORTER_OTLP_HEADERS": "a=b"})
    assert not otel.configured({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "TRUE"})


def test_setup_names_the_service_after_the_role() -> None:
    tracing = otel.setup("core", "host:6066", {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"})
    assert tracing is not None
    try:
        attrs = tracing.provider.resource.attributes
        assert attrs["service.name"] == "resontinex-core" and attrs["service.instance.id"] == "host:6066"
    finally:
        tracing.shutdown()
    assert otel.setup("core", "host:6066", {}) is None


def test_no_endpoint_no_sdk_no_provider(tmp_path) -> None:
    """A worker built without an endpoint imports no SDK module and says tracing is off."""
    script = textwrap.dedent(f"""
        import os, sys
        for name in [n for n in os.environ if n.startswith("OTEL_")]:
            del os.environ[name]
        os.environ["OTEL_SERVICE_NAME"] = "set-but-no-endpoint"
        from pathlib import Path
        from resontinex.app.settings import Settings
        from resontinex.app.faust_app import create_app
        from resontinex.app import metrics
        create_app(Settings(bootstrap="127.0.0.1:1", embedded=False, data_dir=Path({str(tmp_path)!r})), web_port=6199)
        loaded = sorted(m for m in sys.modules if m.startswith("opentelemetry.sdk") or "exporter" in m)
        assert not loaded, loaded
        assert metrics.OTEL_TRACES._value.get() == 0
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]


def test_a_decision_span_from_arrival_to_queued_linked_to_its_batchs_audit_write(traced) -> None:
    tracing, exporter = traced
    arrived = time.time() - 0.25
    trace = tracing.gate_batch([_request_event(2, 17, arrived), _request_event(2, 18, arrived)], TOPICS)
    tracing.audit_seqs("audit", 2, b"acme", orjson.dumps({"event_id": "au-r-1", "seq": 41, "kind": "decision"}))
    tracing.audit_seqs("audit", 2, b"acme", orjson.dumps({"event_id": "au-r-2", "seq": 43, "kind": "decision"}))
    effects = _decision_effects() + _decision_effects(offset=18, request_id="r-2")
    assert trace.finish(effects) == 2  # the alert items make no span

    spans = exporter.get_finished_spans()
    (audit,) = [s for s in spans if s.name == "resontinex.audit.append"]
    decide = sorted((s for s in spans if s.name == "resontinex.decide"), key=lambda s: s.attributes["resontinex.request_id"])
    assert len(decide) == 2 and decide[0].kind == SpanKind.CONSUMER and audit.kind == SpanKind.PRODUCER
    assert decide[0].start_time == int(arrived * 1e9) and decide[0].end_time == trace.queued_ns == audit.start_time
    assert audit.end_time >= audit.start_time and audit.attributes["resontinex.audit.decisions"] == 2
    a = decide[0].attributes
    assert (a["resontinex.request_id"], a["resontinex.tenant"], a["resontinex.decision.verb"]) == ("r-1", "acme", "review")
    assert (a["resontinex.decision.event_id"], a["resontinex.policy_version"]) == ("d-r-1", "3f2a9c0d1e4b")
    assert (a["resontinex.trust.tier"], a["resontinex.trust.score"]) == ("moderate", 0.61)
    assert (a["resontinex.audit.event_id"], a["resontinex.audit.seq"]) == ("au-r-1", 41)
    assert decide[1].attributes["resontinex.audit.seq"] == 43
    assert (a["messaging.destination.partition.id"], a["messaging.kafka.offset"]) == ("2", 17)
    for span in decide:
        assert [link.context.span_id for link in span.links] == [audit.context.span_id]
        assert span.context.trace_id != audit.context.trace_id  # a trace per decision


def test_a_producers_traceparent_header_parents_the_decision(traced) -> None:
    tracing, exporter = traced
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    trace = tracing.gate_batch([_request_event(2, 17, time.time(), (("traceparent", parent.encode()),))], TOPICS)
    trace.finish(_decision_effects())
    decide = next(s for s in exporter.get_finished_spans() if s.name == "resontinex.decide")
    assert format(decide.context.trace_id, "032x") == "0af7651916cd43dd8448eb211c80319c"
    assert format(decide.parent.span_id, "016x") == "b7ad6b7169203331"
    assert "resontinex.audit.seq" not in decide.attributes  # not seen queued: left out, not guessed


def test_a_tracing_failure_never_fails_the_batch(traced) -> None:
    tracing, exporter = traced
    broken = Effects(audit=(AuditItem(0, {"kind": "decision", "event_id": "au-1", "record": None}),))
    assert tracing.gate_batch([], TOPICS).finish(broken) == 0
    assert exporter.get_finished_spans() == ()


def test_a_coordination_run_span_has_the_gen_ai_names(traced) -> None:
    tracing, exporter = traced
    request = SimpleNamespace(event_id="c-1", tenant="acme", workflow="default", strategy="debate", num_agents=3)
    calls = (SimpleNamespace(model="claude-x", input_tokens=100, output_tokens=20),
             SimpleNamespace(model="claude-x", input_tokens=50, output_tokens=5))
    report = SimpleNamespace(calls=calls, status="ok", errors=(), baseline_cached=False, cost_usd=0.0123)
    tracing.coordination_run(request=request, report=report, model="claude-x", partition=1, offset=5,
                             started_s=time.time() - 1, topic="coordination-requests",
                             headers={"traceparent": b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})
    (span,) = exporter.get_finished_spans()
    assert span.name == "invoke_agent resontinex.coordination"
    a = span.attributes
    assert (a["gen_ai.operation.name"], a["gen_ai.provider.name"]) == ("invoke_agent", "anthropic")
    assert (a["gen_ai.request.model"], a["gen_ai.response.model"]) == ("claude-x", "claude-x")
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (150, 25)
    assert (a["resontinex.request_id"], a["resontinex.coordination.strategy"], a["resontinex.coordination.calls"]) == (
        "c-1", "debate", 2)
    assert format(span.context.trace_id, "032x") == "0af7651916cd43dd8448eb211c80319c"


def test_token_observations_reach_the_gen_ai_token_histogram_under_semconv_labels() -> None:
    labels = {"gen_ai_provider_name": "unit-prov", "gen_ai_request_model": "unit-model",
              "gen_ai_operation_name": "chat"}
    before_in, before_out = _histogram({**labels, "gen_ai_token_type": "input"}), _histogram(
        {**labels, "gen_ai_token_type": "output"})
    record((), tokens_observations([("unit-prov", "unit-model", 100, 10), ("unit-prov", "unit-model", 7, 3)]))
    count_in, sum_in = _histogram({**labels, "gen_ai_token_type": "input"})
    count_out, sum_out = _histogram({**labels, "gen_ai_token_type": "output"})
    assert (count_in - before_in[0], sum_in - before_in[1]) == (2, 107)
    assert (count_out - before_out[0], sum_out - before_out[1]) == (2, 13)
    exposition = metrics.exposition().decode()
    assert ('gen_ai_client_token_usage_count{gen_ai_operation_name="chat",gen_ai_provider_name="unit-prov",'
            f'gen_ai_request_model="unit-model",gen_ai_token_type="output"}} {count_out}') in exposition
