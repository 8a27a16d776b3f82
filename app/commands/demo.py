"""`resontinex up --demo`: realistic mixed traffic in, live figures out.

Publishes decision requests for a handful of tenants (signal mixes from fluent to
shaky, a few invalid events and producer retries, and about 1 in 200 carrying generated
text instead of a risk, for the trajectory role to score) and the cost of most of them, then
prints one line of figures a second read back from the output topics. Every few seconds
a team of three LLM agents gets a task (`coordination-requests`); without an Anthropic
API key, `up --demo` points the workers at the local Messages-API stand-in, so the line's
`teams[…]` figures come from its deterministic answers. A prompt enhancement is submitted
for one tenant at the start and its telemetry (both arms of its canary) published four
times a second: the line's `enhancements[…]` shows it validated, active as a canary, and
promoted once the canary judge has its samples (about two minutes). With the packaged
"*" budget of $100 a day, the tenants drift from ok towards review within minutes.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import sys
import time
from collections import Counter
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from resontinex.app.settings import Settings
from resontinex.app.engine.security import client_options

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


TASKS = (
    "Explain why the sky is blue to a ten-year-old.",
    "Propose three tests for a function that merges two sorted lists.",
    "Summarise the trade-offs of retrying failed API calls with exponential backoff.",
    "Draft a polite reply declining a meeting invitation.",
)
STRATEGIES = ("sequential", "parallel", "debate")
TEAM_EVERY_S = 20.0
"""A parallel team of 3 makes 11 calls: at the default 50 requests/min a run every 20 s stays inside the limit."""


def make_team_request(seq: int) -> tuple[str, dict[str, Any]]:
    """A coordination request (CONTRACT §3.9): the tasks and strategies in turn, 3 agents.

    >>> make_team_request(1)[1]["strategy"], make_team_request(2)[1]["strategy"]
    ('parallel', 'debate')
    """
    tenant = TENANTS[seq % len(TENANTS)]
    return tenant, {"event_id": f"demo-team-{seq}-{os.getpid()}", "tenant": tenant, "task": TASKS[seq % len(TASKS)],
                    "num_agents": 3, "strategy": STRATEGIES[seq % len(STRATEGIES)], "rounds": 1,
                    "workflow": "codegen", "budget_usd": 0.5}


def use_standin_unless_configured(latency_ms: float = 50.0) -> str | None:
    """Without an Anthropic API key or base URL in the environment, start the local
    Messages-API stand-in on a thread of this process and point `$ANTHROPIC_BASE_URL` (which
    the workers inherit) at it; its URL, or None when the environment names an API."""
    from resontinex.app.clients.credentials import API_KEY_ENV, API_KEY_FILE_ENV, BASE_URL_ENV
    from resontinex.app.standin import ThreadedStandIn

    if any(os.environ.get(name) for name in (API_KEY_ENV, API_KEY_FILE_ENV, BASE_URL_ENV)):
        return None
    url = ThreadedStandIn(latency_ms=latency_ms).url  # a daemon thread: it ends with the process
    os.environ[BASE_URL_ENV] = url
    return url


async def run_demo(settings: Settings) -> None:
    rate = float(os.environ.get("RESONTINEX_DEMO_RATE", "400"))
    await asyncio.gather(_publish(settings, rate), _publish_teams(settings), _publish_enhancement(settings),
                         _show(settings))


DEMO_ENHANCEMENT = {
    "enhancement_id": "demo-concise-prompt", "tenant": "acme", "kind": "prompt", "mode": "automatic",
    "description": "A shorter system prompt for acme's assistant", "payload": {"name": "concise-v2"},
    "requirements": ["numpy>=2"], "canary_share": 0.2,
    "thresholds": {"mandatory": 1.0, "proxy": 0.82, "alpha": 0.97, "sigma": 0.08, "governance": 0.9},
    "baseline": {"quality_score": 0.86, "response_time_ms": 420.0, "error_rate": 0.01},
}


def make_telemetry(rng: random.Random, seq: int, arm: str) -> dict[str, Any]:
    """A sample of the demo enhancement's `arm` (the enhancement answers a little better and faster).

    >>> sample = make_telemetry(random.Random(1), 0, "baseline")
    >>> sample["enhancement_id"], sample["arm"], 0 < sample["metrics"]["quality_score"] <= 1
    ('demo-concise-prompt', 'baseline', True)
    """
    better = arm == "enhancement"
    return {"event_id": f"demo-tel-{arm}-{seq}", "source": "acme-assistant",
            "enhancement_id": DEMO_ENHANCEMENT["enhancement_id"], "arm": arm,
            "metrics": {"quality_score": round(min(1.0, rng.gauss(0.89 if better else 0.86, 0.02)), 4),
                        "response_time_ms": round(rng.gauss(380 if better else 420, 30), 1),
                        "error_rate": round(max(0.0, rng.gauss(0.01, 0.003)), 4)}}


async def _publish_enhancement(settings: Settings) -> None:
    """The demo enhancement (once), then its canary's telemetry, both arms, 4 times a second."""
    rng = random.Random(4)
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap, **client_options())
    await producer.start()
    try:
        key = str(DEMO_ENHANCEMENT["enhancement_id"]).encode()
        await producer.send(settings.topic("enhancements"), orjson.dumps(
            {"event_id": f"demo-enhancement-{time.time_ns()}", **DEMO_ENHANCEMENT}), key=key)
        for seq in itertools.count(1):
            for arm in ("enhancement", "baseline"):
                await producer.send(settings.topic("telemetry"), orjson.dumps(make_telemetry(rng, seq, arm)),
                                    key=b"acme-assistant")
            await asyncio.sleep(0.25)
    finally:
        await producer.stop()


async def _publish_teams(settings: Settings) -> None:
    """A coordination request every `TEAM_EVERY_S` seconds."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap, **client_options())
    await producer.start()
    try:
        for seq in itertools.count(1):
            key, value = make_team_request(seq)
            await producer.send(settings.topic("coordination_requests"), orjson.dumps(value), key=key.encode())
            await asyncio.sleep(TEAM_EVERY_S)
    finally:
        await producer.stop()


async def _publish(settings: Settings, rate: float) -> None:
    rng = random.Random(42)
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap, **client_options(), linger_ms=5)
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
    names = {settings.topic(t): t for t in ("decisions", "alerts", "dead_letters", "coordination_results",
                                            "enhancement_events")}
    consumer = AIOKafkaConsumer(*names, bootstrap_servers=settings.bootstrap, **client_options(), group_id=None,
                                auto_offset_reset="latest", enable_auto_commit=False)
    await consumer.start()
    verbs: Counter[str] = Counter()
    tiers: Counter[str] = Counter()
    budgets: Counter[str] = Counter()
    totals: Counter[str] = Counter()
    teams = _Teams()
    enhancements: dict[str, dict[str, Any]] = {}
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
                if kind == "coordination_results":
                    for m in messages:
                        teams.add(orjson.loads(m.value))
                if kind == "enhancement_events":
                    for m in messages:
                        event = orjson.loads(m.value)
                        enhancements[event["enhancement_id"]] = event
            now = time.monotonic()
            if now - last >= 1.0:
                rate = (totals["decisions"] - last_decisions) / (now - last)
                last, last_decisions = now, totals["decisions"]
                print(_line(rate, totals, verbs, tiers, budgets) + teams.line() + enhancements_line(enhancements),
                      flush=True, file=sys.stdout)
    finally:
        await consumer.stop()


def _line(rate: float, totals: Counter[str], verbs: Counter[str], tiers: Counter[str], budgets: Counter[str]) -> str:
    v = " ".join(f"{k}={verbs[k]}" for k in ("execute", "review", "defer", "abort"))
    t = " ".join(f"{k}={tiers[k]}" for k in ("pass", "monitor", "review", "block"))
    b = " ".join(f"{k}={budgets[k]}" for k in ("ok", "review", "braked", "blocked", "downgraded"))
    return (f"decisions/s={rate:7.1f}  decisions={totals['decisions']}  alerts={totals['alerts']}  "
            f"dead_letters={totals['dead_letters']}  verbs[{v}]  tiers[{t}]  budget[{b}]")


def enhancements_line(latest: dict[str, dict[str, Any]]) -> str:
    """The enhancements' latest states for the live line.

    >>> enhancements_line({"e1": {"to_state": "active", "phase": "canary", "share": 0.2}})
    '  enhancements[e1=active canary 20%]'
    """
    if not latest:
        return ""
    shown = []
    for enhancement_id, e in sorted(latest.items()):
        phase = f" {e['phase']} {e['share']:.0%}" if e.get("phase") == "canary" else f" {e['phase']}" if e.get("phase") else ""
        shown.append(f"{enhancement_id}={e['to_state']}{phase}")
    return f"  enhancements[{' '.join(shown)}]"


class _Teams:
    """The coordination results seen so far, for the live line."""

    def __init__(self) -> None:
        self.statuses: Counter[str] = Counter()
        self.gammas: list[float] = []
        self.cost_usd = 0.0

    def add(self, result: dict[str, Any]) -> None:
        self.statuses[result["status"]] += 1
        self.cost_usd += result["cost_usd"]
        if result["gamma"] is not None:
            self.gammas.append(result["gamma"])

    def line(self) -> str:
        """
        >>> t = _Teams(); t.add({"status": "ok", "cost_usd": 0.01, "gamma": 1.1}); t.line()
        '  teams[runs=1 ok=1 partial=0 failed=0 γ_mean=1.100 cost=$0.0100]'
        """
        if not self.statuses:
            return ""
        gamma = f"{sum(self.gammas) / len(self.gammas):.3f}" if self.gammas else "-"
        s = self.statuses
        return (f"  teams[runs={sum(s.values())} ok={s['ok']} partial={s['partial']} failed={s['failed']} "
                f"γ_mean={gamma} cost=${self.cost_usd:.4f}]")
