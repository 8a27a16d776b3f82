"""`resontinex.client` against the real broker and a real core worker: requests answered,
feeds filtered, the audit trail replayed, every event on its tenant's partition."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from resontinex.agents.gate import decision_id
from resontinex.client import Client, ResultTimeout, SyncClient
from resontinex.schemas import Cost
from resontinex.topics import partition_of

from .conftest import run
from .harness import read_all, start_worker

pytestmark = pytest.mark.integration

PASS = {"alignment_score": 0.8, "epistemic_risk": 0.3, "confidence_band": 0.2}  # 0.7681: execute
LOW = {"alignment_score": 0.65, "epistemic_risk": 0.5, "confidence_band": 0.4}  # 0.589: under the floor, review


def request(i: int, tenant: str, signals: dict[str, float] = PASS) -> dict[str, Any]:
    return {"event_id": f"c-{i}", "tenant": tenant, "signals": signals}


async def scenario(bootstrap: str) -> dict[str, Any]:
    started = datetime.now(timezone.utc) - timedelta(seconds=1)
    async with Client(bootstrap) as client:
        first = await client.decide(request(0, "acme"), timeout=60)
        many = await client.decide_many([request(i, ("acme", "globex", "initech")[i % 3]) for i in range(1, 31)])

        async def take(feed: Any, n: int) -> list[Any]:
            got = []
            async for item in feed:
                got.append(item)
                if len(got) == n:
                    break
            return got

        globex = asyncio.create_task(take(client.decisions(tenant="globex"), 3))
        floors = asyncio.create_task(take(client.alerts(tenant="acme", kind="trust_floor_violation"), 2))
        await asyncio.sleep(2)  # both feeds in place (they start at the end)
        await client.decide_many([request(100 + i, "acme", LOW) for i in range(2)]
                                 + [request(200 + i, "globex") for i in range(3)])
        feeds = await asyncio.wait_for(asyncio.gather(globex, floors), 30)

        repeat = None
        try:
            await client.decide(request(0, "acme"), timeout=4)  # a repeated event_id: dropped, never answered
        except ResultTimeout as exc:
            repeat = exc
        await client.report_outcome({"event_id": "o-1", "tenant": "acme", "decision_id": first.event_id,
                                     "success": True, "actual_cost_usd": 0.2, "actual_latency_ms": 300,
                                     "actual_reputation": 90, "label": True})
        await client.report_cost({"event_id": "k-1", "tenant": "acme", "provider": "anthropic", "model": "m",
                                  "input_tokens": 100, "output_tokens": 20, "cost_usd": 0.01, "latency_ms": 400})
        replayed = [r async for r in client.replay(tenant="acme", kind="decision", since=started)]
    return {"first": first, "many": many, "feeds": feeds, "repeat": repeat, "replayed": replayed}


def test_the_client_asks_follows_and_replays(broker, tmp_path) -> None:
    b = broker.bootstrap
    worker = start_worker(b, tmp_path / "w")
    try:
        worker.wait_ready(timeout_s=90)
        got = run(scenario(b))
        first, many = got["first"], got["many"]
        assert (first.request_id, first.tenant, first.verb) == ("c-0", "acme", "execute")
        assert first.event_id == decision_id("acme", "c-0")
        assert [d.request_id for d in many] == [f"c-{i}" for i in range(1, 31)]  # in the order asked
        assert {d.verb for d in many} == {"execute"}

        globex, floors = got["feeds"]
        assert [d.request_id for d in globex] == [f"c-{200 + i}" for i in range(3)]  # globex's only, as made
        assert [(a.kind, a.tenant) for a in floors] == [("trust_floor_violation", "acme")] * 2

        repeat = got["repeat"]
        assert isinstance(repeat, ResultTimeout) and repeat.request_ids == ["c-0"]

        acme = {d.request_id for d in [first, *many] if d.tenant == "acme"} | {"c-100", "c-101"}
        assert {r.record["decision"]["request_id"] for r in got["replayed"]} == acme
        assert all(r.kind == "decision" and r.tenant == "acme" for r in got["replayed"])

        with SyncClient(b) as client:  # the blocking client, and its feed from the beginning
            assert client.decide(request(300, "initech")).verb == "execute"
            feed = client.decisions(tenant="initech", from_beginning=True)
            initech = [next(feed).request_id for _ in range(11)]
            assert set(initech) == {f"c-{i}" for i in range(2, 31, 3)} | {"c-300"}
            client.publish(Cost.model_validate({"event_id": "k-2", "tenant": "initech", "provider": "anthropic",
                                                "model": "m", "input_tokens": 10, "output_tokens": 2,
                                                "cost_usd": 0.001, "latency_ms": 40}))

        for topic, n in (("decision-requests", 38), ("outcomes", 1), ("costs", 2)):
            for partition, _, key, value in run(read_all(b, topic, expect=n)):
                assert key == value["tenant"].encode() and partition == partition_of(value["tenant"], 4), topic
        dead = run(read_all(b, "dead-letters", settle_s=1.0))
        assert dead == [], dead
    finally:
        worker.stop()
