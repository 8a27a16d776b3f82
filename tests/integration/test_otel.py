"""OpenTelemetry on the real broker: a core worker with `OTEL_EXPORTER_OTLP_ENDPOINT` sends
a `resontinex.decide` span per decision (linked to its batch's audit write) to an OTLP/HTTP receiver
on loopback, decoded with opentelemetry-proto; `/metrics` has `gen_ai_client_token_usage`
for the costs it folded; a worker without an endpoint exports nothing, not even to the
SDK's default endpoint, and says it has no tracer provider."""

from __future__ import annotations

import gzip
import os
import re
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from .conftest import run
from .harness import REPO, produce, read_all, start_worker

pytestmark = pytest.mark.integration

trace_service_pb2 = pytest.importorskip("opentelemetry.proto.collector.trace.v1.trace_service_pb2")

PARENT_TRACE = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{PARENT_TRACE}-b7ad6b7169203331-01"
DEFAULT_OTLP_PORT = 4318  # where the SDK would send without an endpoint
PLAIN = "plain-"  # the topic prefix of the worker without an endpoint


class Receiver:
    """An OTLP/HTTP trace receiver: POST /v1/traces, protobuf bodies, spans kept decoded."""

    def __init__(self, port: int = 0) -> None:
        self.spans: list[dict[str, Any]] = []
        self.posts = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                request = trace_service_pb2.ExportTraceServiceRequest()
                request.ParseFromString(body)
                receiver.add(self.path, request)
                reply = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def add(self, path: str, request: Any) -> None:
        with self.lock:
            self.posts += 1
            for rs in request.resource_spans:
                resource = _attributes(rs.resource.attributes)
                for ss in rs.scope_spans:
                    for span in ss.spans:
                        self.spans.append({"path": path, "resource": resource, "name": span.name,
                                           "trace_id": span.trace_id.hex(), "span_id": span.span_id.hex(),
                                           "parent_span_id": span.parent_span_id.hex(),
                                           "links": [link.span_id.hex() for link in span.links],
                                           "start": span.start_time_unix_nano, "end": span.end_time_unix_nano,
                                           "attributes": _attributes(span.attributes)})

    def named(self, name: str) -> list[dict[str, Any]]:
        with self.lock:
            return [s for s in self.spans if s["name"] == name]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _attributes(kvs: Any) -> dict[str, Any]:
    out = {}
    for kv in kvs:
        which = kv.value.WhichOneof("value")
        out[kv.key] = getattr(kv.value, which) if which else None
    return out


def _request(event_id: str, tenant: str) -> tuple[bytes, bytes]:
    body = {"event_id": event_id, "tenant": tenant,
            "signals": {"alignment_score": 0.9, "epistemic_risk": 0.1, "confidence_band": 0.1}}
    return tenant.encode(), orjson.dumps(body)


def _cost(event_id: str, tenant: str, input_tokens: int, output_tokens: int) -> tuple[bytes, bytes]:
    body = {"event_id": event_id, "tenant": tenant, "provider": "prov-otel", "model": "model-otel",
            "input_tokens": input_tokens, "output_tokens": output_tokens, "cost_usd": 0.01, "latency_ms": 10.0}
    return tenant.encode(), orjson.dumps(body)


async def _produce_traced(bootstrap: str, key: bytes, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait("decision-requests", value, key=key, headers=[("traceparent", TRACEPARENT.encode())])
    finally:
        await producer.stop()


def _token_usage(worker: Any) -> dict[tuple[str, str], float]:
    """(token type, count|sum) → value of gen_ai_client_token_usage for prov-otel/model-otel."""
    status, body = worker.get("/metrics")
    out = {}
    pattern = (rb'gen_ai_client_token_usage_(count|sum)\{gen_ai_operation_name="chat",gen_ai_provider_name="prov-otel",'
               rb'gen_ai_request_model="model-otel",gen_ai_token_type="(input|output)"\} ([0-9.e+]+)')
    for what, kind, value in re.findall(pattern, body if status == 200 else b""):
        out[(kind.decode(), what.decode())] = float(value)
    return out


def _gauge(worker: Any, name: str) -> float | None:
    status, body = worker.get("/metrics")
    m = re.search(rb"^" + name.encode() + rb" ([0-9.e+]+)$", body, re.M) if status == 200 else None
    return float(m.group(1)) if m else None


def _wait(predicate: Any, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _end(worker: Any) -> None:
    """SIGKILL: what the test reads has arrived, and both stop at once."""
    try:
        worker.kill()
    except (ProcessLookupError, OSError):
        pass


def test_decision_spans_and_gen_ai_token_usage_reach_otel(broker, tmp_path):
    receiver = Receiver()
    try:
        default = Receiver(DEFAULT_OTLP_PORT)
    except OSError:
        default = None  # taken here: the plain worker is checked against its own gauge and `receiver`
    traced = plain = None
    try:
        traced = start_worker(broker.bootstrap, tmp_path / "traced", env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver.port}", "OTEL_BSP_SCHEDULE_DELAY": "100",
            "OTEL_SERVICE_NAME": "", "OTEL_SDK_DISABLED": "", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": ""})
        # A plain worker beside it, on its own topics and group: OTEL_* settings but no endpoint.
        created = subprocess.run([sys.executable, "-m", "resontinex.app.cli", "topics", "create", "--bootstrap",
                                  broker.bootstrap], cwd=REPO, capture_output=True, text=True, timeout=60,
                                 env={**os.environ, "RESONTINEX_TOPIC_PREFIX": PLAIN})
        assert created.returncode == 0, created.stderr
        plain = start_worker(broker.bootstrap, tmp_path / "plain", env={
            "RESONTINEX_TOPIC_PREFIX": PLAIN, "OTEL_EXPORTER_OTLP_ENDPOINT": "",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "", "OTEL_SERVICE_NAME": "resontinex-plain",
            "OTEL_BSP_SCHEDULE_DELAY": "100"})
        traced.wait_ready()
        tenants = ["acme", "globex", "initech", "umbrella", "hooli"]
        requests = {f"otel-r-{i}": tenants[i % len(tenants)] for i in range(8)}
        run(produce(broker.bootstrap, "decision-requests", [_request(r, t) for r, t in requests.items()]))
        run(_produce_traced(broker.bootstrap, *_request("otel-traced", "acme")))
        requests["otel-traced"] = "acme"
        costs = [_cost("otel-c-1", "acme", 100, 10), _cost("otel-c-2", "globex", 250, 20),
                 _cost("otel-c-3", "acme", 7, 3), _cost("otel-c-1", "acme", 100, 10)]
        run(produce(broker.bootstrap, "costs", costs))

        decide = _wait(lambda: (spans := receiver.named("resontinex.decide"))
                       and {s["attributes"]["resontinex.request_id"] for s in spans} >= set(requests) and spans,
                       30, "a decide span per request")
        decisions = {d["request_id"]: d for *_, d in run(read_all(broker.bootstrap, "decisions",
                                                                  expect=len(requests), settle_s=0.3))}
        audit = {r["event_id"]: r for *_, r in run(read_all(broker.bootstrap, "audit", settle_s=0.3))}
        assert len(decide) == len(requests)  # one span per decision
        assert sum(s["attributes"]["resontinex.audit.decisions"] for s in receiver.named("resontinex.audit.append")) \
            == len(requests)
        audits = {s["span_id"]: s for s in receiver.named("resontinex.audit.append")}  # one per gate batch
        for span in decide:
            a = span["attributes"]
            d = decisions[a["resontinex.request_id"]]
            assert span["resource"]["service.name"] == "resontinex-core"
            assert span["path"] == "/v1/traces"
            assert a["resontinex.tenant"] == requests[d["request_id"]] == d["tenant"]
            assert (a["resontinex.decision.event_id"], a["resontinex.decision.verb"]) == (d["event_id"], d["verb"])
            assert a["resontinex.policy_version"] == d["policy_version"]
            assert a["resontinex.trust.tier"] == d["trust"]["tier"]
            record = audit[a["resontinex.audit.event_id"]]
            assert record["kind"] == "decision" and record["record"]["decision"]["event_id"] == d["event_id"]
            assert a["resontinex.audit.seq"] == record["seq"]
            assert span["start"] <= span["end"]
            (link,) = span["links"]
            assert audits[link]["start"] == span["end"] <= audits[link]["end"]  # queued, then acknowledged
        traced_span = next(s for s in decide if s["attributes"]["resontinex.request_id"] == "otel-traced")
        assert traced_span["trace_id"] == PARENT_TRACE and traced_span["parent_span_id"] == "b7ad6b7169203331"

        expected = {("input", "count"): 3, ("input", "sum"): 357, ("output", "count"): 3, ("output", "sum"): 33}
        usage = _wait(lambda: (u := _token_usage(traced)).get(("input", "count")) == 3 and u, 20,
                      "gen_ai_client_token_usage of three costs")
        assert usage == expected  # the repeated otel-c-1 counted once
        assert _gauge(traced, "resontinex_otel_traces_export") == 1

        # The plain worker decides and folds the same, exports nothing and has no provider.
        posts = receiver.posts
        plain.wait_ready()
        run(produce(broker.bootstrap, PLAIN + "decision-requests", [_request("otel-plain", "acme")]))
        run(produce(broker.bootstrap, PLAIN + "costs", costs))
        _wait(lambda: _token_usage(plain) == expected, 30, "the plain worker's token usage")
        _wait(lambda: any(d["request_id"] == "otel-plain" for *_, d in
                          run(read_all(broker.bootstrap, PLAIN + "decisions", settle_s=0.2, timeout_s=5))),
              30, "the plain worker's decision")
        time.sleep(0.5)  # several of the SDK's export intervals, had it one
        assert _gauge(plain, "resontinex_otel_traces_export") == 0
        assert receiver.posts == posts
        if default is not None:
            assert default.posts == 0
    finally:
        for worker in (traced, plain):
            if worker is not None:
                _end(worker)
        receiver.close()
        if default is not None:
            default.close()
