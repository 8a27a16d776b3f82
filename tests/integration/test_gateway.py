"""The HTTP gateway against the real broker and a real core worker: decisions answered over
HTTP, callers held to their tenant and to the schemas, 202 then the decision, outcomes and
costs on their tenant's partition, the OpenAPI document valid."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from openapi_spec_validator import validate

from resontinex.agents.gate import decision_id
from resontinex.app.gateway import token_digest
from resontinex.schemas import Decision, DecisionRequest, InvalidEvent, decode
from resontinex.topics import partition_of

from .conftest import run
from .harness import read_all, start_worker

pytestmark = pytest.mark.integration

ACME, GLOBEX = "rtx_acme-token", "rtx_globex-token"
PASS = {"alignment_score": 0.8, "epistemic_risk": 0.3, "confidence_band": 0.2}  # 0.7681: execute


def gateway_yaml(config: Path) -> None:
    config.mkdir()
    (config / "gateway.yaml").write_text(
        "tokens:\n"
        f"  - {{tenant: acme, sha256: {token_digest(ACME)}}}\n"
        f"  - {{tenant: globex, sha256: {token_digest(GLOBEX)}, name: globex-app}}\n"
        "max_body_bytes: 4096\ndecide_timeout_s: 20\nmax_decide_timeout_s: 30\n")


def request(i: int, tenant: str = "acme") -> dict[str, Any]:
    return {"event_id": f"g-{i}", "tenant": tenant, "signals": PASS}


async def scenario(port: int) -> dict[str, Any]:
    base = f"http://127.0.0.1:{port}"
    got: dict[str, Any] = {}

    async with aiohttp.ClientSession(base) as http:
        async def call(method: str, path: str, body: Any = None, token: str | None = ACME,
                       raw: bytes | None = None) -> tuple[int, Any]:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            data = raw if raw is not None else (orjson.dumps(body) if body is not None else None)
            async with http.request(method, path, data=data, headers=headers) as resp:
                return resp.status, await resp.json()

        got["first"] = await call("POST", "/v1/decide", request(0))
        got["again"] = await call("POST", "/v1/decide", request(0))  # answered from what was read: not republished
        got["many"] = await asyncio.gather(*(call("POST", "/v1/decide", request(i, ("acme", "globex")[i % 2]),
                                                  token=(ACME, GLOBEX)[i % 2]) for i in range(1, 41)))
        got["pending"] = await call("POST", "/v1/decide?timeout_s=0", request(100))
        got["later"] = None
        for _ in range(100):  # the request is still decided
            status, body = await call("GET", "/v1/decisions/g-100")
            if status == 200:
                got["later"] = body
                break
            await asyncio.sleep(0.2)
        got["other_tenant_lookup"] = await call("GET", "/v1/decisions/g-100", token=GLOBEX)
        got["refused"] = {
            "no token": await call("POST", "/v1/decide", request(200), token=None),
            "unknown token": await call("POST", "/v1/decide", request(200), token="rtx_nobody"),
            "another tenant": await call("POST", "/v1/decide", request(200, "globex")),
            "not json": await call("POST", "/v1/decide", raw=b"{not json"),
            "no signals": await call("POST", "/v1/decide", {"event_id": "g-201", "tenant": "acme"}),
            "out of range": await call("POST", "/v1/decide", {**request(202), "signals": {**PASS,
                                                                                           "alignment_score": 2}}),
            "too large": await call("POST", "/v1/decide", {**request(203), "text": "x" * 5000}),
            "bad timeout": await call("POST", "/v1/decide?timeout_s=99", request(204)),
            "unknown decision": await call("GET", "/v1/decisions/never-asked"),
        }
        got["outcome"] = await call("POST", "/v1/outcomes", {
            "event_id": "go-1", "tenant": "acme", "decision_id": decision_id("acme", "g-0"), "success": True,
            "actual_cost_usd": 0.1, "actual_latency_ms": 200, "actual_reputation": 90, "label": True})
        got["cost"] = await call("POST", "/v1/costs", {
            "event_id": "gk-1", "tenant": "globex", "provider": "anthropic", "model": "m", "input_tokens": 10,
            "output_tokens": 5, "cost_usd": 0.001, "latency_ms": 100}, token=GLOBEX)
        got["openapi"] = await call("GET", "/v1/openapi.json", token=None)
        async with http.get("/metrics") as resp:
            got["metrics"] = await resp.text()
    return got


def test_the_gateway_answers_decisions_over_http_and_holds_callers_to_their_tenant(broker, tmp_path) -> None:
    b = broker.bootstrap
    config = tmp_path / "config"
    gateway_yaml(config)
    env = {"RESONTINEX_CONFIG_DIR": str(config)}
    worker = start_worker(b, tmp_path / "w", env=env)
    gateway = start_worker(b, tmp_path / "g", env=env, role="gateway")
    try:
        assert gateway.wait_ready(timeout_s=30)["role"] == "gateway"
        worker.wait_ready(timeout_s=90)
        got = run(scenario(gateway.web_port))

        status, first = got["first"]
        assert status == 200, first
        decision = Decision.model_validate(first)
        assert (decision.request_id, decision.tenant, decision.verb) == ("g-0", "acme", "execute")
        assert got["again"] == (200, first)
        assert [s for s, _ in got["many"]] == [200] * 40
        assert [d["request_id"] for _, d in got["many"]] == [f"g-{i}" for i in range(1, 41)]
        assert {d["tenant"] for _, d in got["many"]} == {"acme", "globex"}

        status, pending = got["pending"]
        assert status == 202 and pending == {"event_id": "g-100", "tenant": "acme", "status": "pending",
                                             "decision_url": "/v1/decisions/g-100"}
        assert got["later"] is not None and got["later"]["request_id"] == "g-100"
        assert got["other_tenant_lookup"][0] == 404  # a token sees its own tenant's decisions only

        codes = {what: (status, body["error"]["code"]) for what, (status, body) in got["refused"].items()}
        assert codes == {"no token": (401, "unauthorized"), "unknown token": (401, "unauthorized"),
                         "another tenant": (403, "forbidden_tenant"), "not json": (400, "not_json"),
                         "no signals": (422, "missing_field"), "out of range": (422, "out_of_range"),
                         "too large": (413, "too_large"), "bad timeout": (400, "bad_timeout"),
                         "unknown decision": (404, "unknown_decision")}
        for what in ("no signals", "out of range"):  # the codes a worker gives the same event as a dead letter
            body = {"no signals": {"event_id": "x", "tenant": "acme"},
                    "out of range": {**request(0), "signals": {**PASS, "alignment_score": 2}}}[what]
            with pytest.raises(InvalidEvent) as caught:
                decode(DecisionRequest, orjson.dumps(body))
            assert caught.value.code == codes[what][1]

        assert got["outcome"] == (202, {"event_id": "go-1", "tenant": "acme", "status": "accepted"})
        assert got["cost"] == (202, {"event_id": "gk-1", "tenant": "globex", "status": "accepted"})
        status, document = got["openapi"]
        assert status == 200
        validate(document)  # raises on a document that breaks the OpenAPI 3.1 schema
        assert set(document["paths"]) == {"/v1/decide", "/v1/outcomes", "/v1/costs", "/v1/decisions/{request_id}"}
        assert 'resontinex_gateway_requests_total{route="decide",status="200"} 42.0' in got["metrics"]
        assert 'resontinex_gateway_requests_total{route="decide",status="403"} 1.0' in got["metrics"]

        # what went out: each request once (the repeated one was not republished), on its tenant's partition
        requests = run(read_all(b, "decision-requests", expect=42))
        assert sorted(v["event_id"] for *_, v in requests) == sorted(f"g-{i}" for i in (0, *range(1, 41), 100))
        for topic, n in (("decision-requests", 42), ("outcomes", 1), ("costs", 1)):
            for partition, _, key, value in run(read_all(b, topic, expect=n, settle_s=0.5)):
                assert key == value["tenant"].encode() and partition == partition_of(value["tenant"], 4), topic
        assert run(read_all(b, "dead-letters", settle_s=0.5)) == []  # refused at the door, nothing dead-lettered
    finally:
        gateway.stop()
        worker.stop()
