"""The gateway's HTTP surface without Kafka: who may call, what is refused and how, the
probes, the OpenAPI document. (Publishing and answering run on the real broker in
tests/integration/test_gateway.py.)"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
from aiohttp.test_utils import TestClient, TestServer
from openapi_spec_validator import validate

from resontinex.app.gateway import Gateway, gateway_config_from, token_digest
from resontinex.app.settings import Settings

TOKEN = "rtx_test"
PASS = {"event_id": "r1", "tenant": "acme",
        "signals": {"alignment_score": 0.8, "epistemic_risk": 0.3, "confidence_band": 0.2}}
COST = {"event_id": "k1", "tenant": "acme", "provider": "anthropic", "model": "m", "input_tokens": 1,
        "output_tokens": 1, "cost_usd": 0.01, "latency_ms": 1.0}


def served(check: Callable[[TestClient], Awaitable[Any]], tmp_path: Path) -> Any:
    cfg = gateway_config_from({"tokens": [{"tenant": "acme", "sha256": token_digest(TOKEN)}], "max_body_bytes": 2048})
    gateway = Gateway(Settings.from_env({"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
                                         "RESONTINEX_DATA_DIR": str(tmp_path)}), cfg)

    async def scenario() -> Any:
        async with TestClient(TestServer(gateway.application())) as client:
            return await check(client)

    return asyncio.run(scenario())


async def post(client: TestClient, path: str, body: bytes, token: str | None = TOKEN) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with client.post(path, data=body, headers=headers) as resp:
        return resp.status, await resp.json()


def test_refusals_come_before_anything_is_published_each_with_its_status_and_code(tmp_path: Path) -> None:
    async def check(client: TestClient) -> dict[str, tuple[int, str]]:
        cases = {
            "no token": ("/v1/decide", orjson.dumps(PASS), None),
            "another tenant": ("/v1/decide", orjson.dumps({**PASS, "tenant": "globex"}), TOKEN),
            "empty": ("/v1/decide", b"", TOKEN),
            "not an object": ("/v1/outcomes", b"[1]", TOKEN),
            "wrong type": ("/v1/costs", orjson.dumps({**COST, "cost_usd": "x"}), TOKEN),
            "too large": ("/v1/decide", orjson.dumps({**PASS, "text": "x" * 4000}), TOKEN),
            "bad timeout": ("/v1/decide?timeout_s=abc", orjson.dumps(PASS), TOKEN),
            "not reachable": ("/v1/decide", orjson.dumps(PASS), TOKEN),  # valid: refused only as Kafka is not there
        }
        out = {}
        for what, (path, body, token) in cases.items():
            status, answer = await post(client, path, body, token)
            out[what] = (status, answer["error"]["code"])
        return out

    assert served(check, tmp_path) == {
        "no token": (401, "unauthorized"), "another tenant": (403, "forbidden_tenant"), "empty": (400, "empty_value"),
        "not an object": (400, "not_object"), "wrong type": (422, "wrong_type"), "too large": (413, "too_large"),
        "bad timeout": (400, "bad_timeout"), "not reachable": (503, "unavailable")}


def test_probes_metrics_and_the_openapi_document_need_no_token(tmp_path: Path) -> None:
    async def check(client: TestClient) -> tuple[int, Any, str, Any, int]:
        async with client.get("/health") as health:
            status, body = health.status, await health.json()
        async with client.get("/metrics") as resp:
            exposition = await resp.text()
        async with client.get("/v1/openapi.json") as resp:
            document = await resp.json()
        async with client.get("/v1/nowhere") as resp:
            missing = resp.status
        return status, body, exposition, document, missing

    status, body, exposition, document, missing = served(check, tmp_path)
    assert status == 503 and body["ready"] is False and body["role"] == "gateway"  # not connected: not ready
    assert "resontinex_gateway_requests_total" in exposition and "trust_gate_decisions" not in exposition
    validate(document)
    assert missing == 404
