"""`resontinex up --demo`: realistic mixed traffic in, live figures out.

Publishes decision requests for a handful of tenants (signal mixes from fluent to
shaky, a few invalid events and producer retries, and about 1 in 200 carrying generated
text instead of a risk, for the trajectory role to score) and the cost of most of them, then
prints one line of figures a second read back from the output topics. With the packaged
"*" budget of $100 a day, the tenants drift from ok towards review within minutes.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import time
from collections import Counter
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from resontinex.app.settings import Settings

TENANTS = ("acme", "globex", "initech", "umbrella", "hooli")
WORKFLOWS = ("refunds", "support", "codegen", "search")
# (alignment α, β), (risk α, β), (band α, β): a tenant's typical signal shape.
_PROFILES = (((8, 2), (2, 6), (2, 7)), ((5, 3), (3, 4), (3, 5)), ((3, 3), (4, 3), (4, 3)))


def make_request(rng: random.Random, seq: int) -> tuple[str, dict[str, Any]]:
    """One realistic decision request (key, value).

    >>> key, value = make_request(random.Random(1), 0)
    >>> key == value["tenant"] and 0 <= value["signals"]["alignment_score"] <= 1
    True
    """
    tenant = rng.choice(TENANTS)
    (aa, ab), (ra, rb), (ca, cb) = _PROFILES[TENANTS.index(tenant) % len(_PROFILES)]
    return tenant, {
        "event_id": f"demo-{seq}",
        "tenant": tenant,
        "workflow": rng.choice(WORKFLOWS),
        "signals": {
            "alignment_score": round(rng.betavariate(aa, ab), 4),
            "epistemic_risk": round(rng.betavariate(ra, rb), 4),
            "confidence_band": round(rng.betavariate(ca, cb), 4),
        },
        "estimate": {"tokens": rng.randint(200, 6000), "cost_usd": round(rng.uniform(0.001, 0.5), 4),
                     "complexity": round(rng.random(), 3), "entropy": round(rng.random(), 3)},
    }


GENERATED = (
    "Your refund of $42 was approved because the charge was duplicated on the same day.",
    "The deployment failed health checks, so traffic stayed on the previous version.",
    "To rotate the key, create a new one, update the service, then revoke the old key.",
    "refund duplicated the approved because $42 charge same was day the on of Your",
    "Quarterly revenue increased twelve percent, driven by demand in the European market.",
)


def make_text_request(rng: random.Random, seq: int) -> tuple[str, dict[str, Any]]:
    """A decision request whose risk comes from its generated text (no `epistemic_risk`).

    >>> key, value = make_text_request(random.Random(1), 0)
    >>> "epistemic_risk" in value["signals"], value["text"] in GENERATED
    (False, True)
    """
    key, value = make_request(rng, seq)
    del value["signals"]["epistemic_risk"]
    return key, {**value, "text": rng.choice(GENERATED)}


def make_cost(rng: random.Random, seq: int, request: dict[str, Any]) -> dict[str, Any]:
    """The cost event of a request that ran (CONTRACT §3.4).

    >>> _, r = make_request(random.Random(1), 0)
    >>> c = make_cost(random.Random(2), 0, r)
    >>> c["tenant"] == r["tenant"] and c["cost_usd"] > 0
    True
    """
    tokens = request["estimate"]["tokens"]
    return {
        "event_id": f"demo-cost-{seq}", "tenant": request["tenant"], "workflow": request["workflow"],
        "provider": rng.choice(("anthropic", "akash", "vast")), "model": "claude-sonnet",
        "input_tokens": tokens // 3, "output_tokens": tokens - tokens // 3,
        "cost_usd": round(tokens * rng.uniform(0.5e-6, 2e-6), 6), "latency_ms": round(rng.uniform(150, 2500), 1),
    }


def make_bad(rng: random.Random, seq: int) -> tuple[str, bytes]:
    tenant = rng.choice(TENANTS)
    return tenant, rng.choice((
        b"not json at all",
        b"[1, 2, 3]",
        orjson.dumps({"event_id": f"bad-{seq}", "tenant": tenant, "signals": {"alignment_score": 1.7,
                      "epistemic_risk": 0.2, "confidence_band": 0.1}}),
        orjson.dumps({"event_id": f"bad-{seq}", "tenant": tenant}),
    ))


async def run_demo(settings: Settings) -> None:
    rate = float(os.environ.get("RESONTINEX_DEMO_RATE", "400"))
    await asyncio.gather(_publish(settings, rate), _show(settings))


async def _publish(settings: Settings, rate: float) -> None:
    rng = random.Random(42)
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap, linger_ms=5)
    await producer.start()
    topic, costs = settings.topic("decision_requests"), settings.topic("costs")
    seq, tick = 0, 0.1
    try:
        while True:
            started = time.monotonic()
            for _ in range(max(1, int(rate * tick))):
                seq += 1
                roll = rng.random()
                if roll < 0.01:
                    key, raw = make_bad(rng, seq)
                    await producer.send(topic, raw, key=key.encode())
                    continue
                make = make_text_request if 0.02 < roll < 0.025 else make_request
                key, value = make(rng, seq if roll > 0.02 else max(1, seq - 1))  # ~1 % retries
                await producer.send(topic, orjson.dumps(value), key=key.encode())
                if roll < 0.8:
                    await producer.send(costs, orjson.dumps(make_cost(rng, seq, value)), key=key.encode())
            await asyncio.sleep(max(0.0, tick - (time.monotonic() - started)))
    finally:
        await producer.stop()


async def _show(settings: Settings) -> None:
    names = {settings.topic(t): t for t in ("decisions", "alerts", "dead_letters")}
    consumer = AIOKafkaConsumer(*names, bootstrap_servers=settings.bootstrap, group_id=None,
                                auto_offset_reset="latest", enable_auto_commit=False)
    await consumer.start()
    verbs: Counter[str] = Counter()
    tiers: Counter[str] = Counter()
    budgets: Counter[str] = Counter()
    totals: Counter[str] = Counter()
    last, last_decisions = time.monotonic(), 0
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=250)
            for tp, messages in batch.items():
                kind = names[tp.topic]
                totals[kind] += len(messages)
                if kind == "decisions":
                    for m in messages:
                        d = orjson.loads(m.value)
                        verbs[d["verb"]] += 1
                        tiers[d["trust"]["tier"]] += 1
                        budgets[(d["budget"] or {}).get("status", "none")] += 1
            now = time.monotonic()
            if now - last >= 1.0:
                rate = (totals["decisions"] - last_decisions) / (now - last)
                last, last_decisions = now, totals["decisions"]
                print(_line(rate, totals, verbs, tiers, budgets), flush=True, file=sys.stdout)
    finally:
        await consumer.stop()


def _line(rate: float, totals: Counter[str], verbs: Counter[str], tiers: Counter[str], budgets: Counter[str]) -> str:
    v = " ".join(f"{k}={verbs[k]}" for k in ("execute", "review", "defer", "abort"))
    t = " ".join(f"{k}={tiers[k]}" for k in ("pass", "monitor", "review", "block"))
    b = " ".join(f"{k}={budgets[k]}" for k in ("ok", "review", "braked", "blocked", "downgraded"))
    return (f"decisions/s={rate:7.1f}  decisions={totals['decisions']}  alerts={totals['alerts']}  "
            f"dead_letters={totals['dead_letters']}  verbs[{v}]  tiers[{t}]  budget[{b}]")
