"""The resilient Messages API client: the real `anthropic` SDK against the local stand-in on loopback."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from resontinex.agents.coordination import Call, CallFailed, coordination_config_from, judge_tool
from resontinex.app.clients.credentials import load_api_key
from resontinex.app.clients.messages import MessagesClient
from resontinex.app.exceptions import UsageError
from resontinex.app.standin import StandIn

KEY = "sk-ant-test-0123456789-secret"
MODEL = "claude-haiku-4-5"


def config(**overrides: Any):
    base = {"rate_limit": {"requests_per_minute": 6000, "burst": 50},
            "retries": {"max_attempts": 4, "base_s": 0.01, "max_s": 2.0},
            "breaker": {"failures": 5, "open_s": 30, "successes": 2}, "timeout_s": 5}
    return coordination_config_from(base | overrides)


def call(call_id: str = "agent-1", tool: dict[str, Any] | None = None) -> Call:
    return Call(call_id, MODEL, "You are working on a task by yourself. Give your best complete answer; be concise.",
                ({"role": "user", "content": "Name a prime."},), 64, tool)


def control(url: str, path: str, body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"{url}/_standin/{path}", data=data, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read() or b"null")


def with_server(test: Callable[[str], Awaitable[None]], latency_ms: float = 0.0) -> None:
    async def main() -> None:
        server = StandIn(latency_ms=latency_ms)
        url = await server.start()
        try:
            await test(url)
        finally:
            await server.stop()
    asyncio.run(main())


async def configure(url: str, body: dict[str, Any]) -> None:
    await asyncio.to_thread(control, url, "config", body)


async def log_of(url: str) -> list[dict[str, Any]]:
    return await asyncio.to_thread(control, url, "log")


def test_an_answer_and_a_judgement_through_the_real_sdk() -> None:
    async def test(url: str) -> None:
        client = MessagesClient(config(), api_key=KEY, base_url=url)
        reply = await client(call())
        judged = await client(call("judge-team-1", judge_tool(("correctness", "clarity"))))
        await client.aclose()
        assert reply.text.startswith("alone take 1") and reply.input_tokens > 0 and reply.output_tokens > 0
        assert reply.latency_ms > 0
        assert set(judged.tool_input["scores"]) == {"correctness", "clarity"}
        assert [e["key_present"] for e in await log_of(url)] == [True, True]
    with_server(test)


def test_a_429_is_retried_no_sooner_than_its_retry_after() -> None:
    async def test(url: str) -> None:
        await configure(url, {"faults": [{"status": 429, "count": 1, "retry_after": 1}]})
        client = MessagesClient(config(), api_key=KEY, base_url=url)
        await client(call())
        log = await log_of(url)
        assert [e["status"] for e in log] == [429, 200]
        assert log[1]["t"] - log[0]["t"] >= 1.0  # measured at the server
    with_server(test)


def test_5xx_and_timeouts_are_retried_client_errors_never() -> None:
    async def test(url: str) -> None:
        client = MessagesClient(config(timeout_s=0.5), api_key=KEY, base_url=url)
        await configure(url, {"faults": [{"status": 500, "count": 2}]})
        await client(call())
        assert [e["status"] for e in await log_of(url)] == [500, 500, 200]
        for status, code in ((400, "bad_request"), (401, "unauthorized"), (403, "forbidden")):
            await asyncio.to_thread(control, url, "reset", {})
            await configure(url, {"faults": [{"status": status, "count": 1}]})
            with pytest.raises(CallFailed) as failed:
                await client(call())
            assert failed.value.code == code and len(await log_of(url)) == 1  # no retry
        await asyncio.to_thread(control, url, "reset", {})
        await configure(url, {"faults": [{"delay_ms": 1500, "count": 1}]})
        started = time.monotonic()
        reply = await client(call())  # the slow attempt times out at 0.5 s, the retry answers
        assert reply.text and time.monotonic() - started < 1.5
    with_server(test)


def test_a_retry_after_beyond_the_longest_backoff_fails_the_call_now() -> None:
    async def test(url: str) -> None:
        await configure(url, {"faults": [{"status": 429, "count": 1, "retry_after": 60}]})
        client = MessagesClient(config(), api_key=KEY, base_url=url)
        with pytest.raises(CallFailed) as failed:
            await client(call())
        assert failed.value.code == "rate_limited" and len(await log_of(url)) == 1
    with_server(test)


def test_a_429_storm_opens_the_breaker_then_trial_calls_close_it() -> None:
    now = [1000.0]
    transitions: list[tuple[str, str]] = []

    async def test(url: str) -> None:
        await configure(url, {"faults": [{"status": 429, "count": -1, "retry_after": 0}]})
        client = MessagesClient(config(), api_key=KEY, base_url=url, clock=lambda: now[0],
                                on_transition=lambda model, t, breaker: transitions.append((model, t)))
        for _ in range(2):
            with pytest.raises(CallFailed):
                await client(call())
        assert transitions == [(MODEL, "open")] and client.breaker_state(MODEL) == "open"
        made = len(await log_of(url))
        assert made == 5  # 4 attempts, then 1: the fifth failure in a row opened it
        with pytest.raises(CallFailed) as refused:
            await client(call())
        assert refused.value.code == "circuit_open" and len(await log_of(url)) == made  # no call went out
        now[0] += 30.0
        assert client.breaker_state(MODEL) == "half_open"
        await asyncio.to_thread(control, url, "reset", {})
        await client(call())
        await client(call())
        assert transitions == [(MODEL, "open"), (MODEL, "closed")] and client.allows(MODEL)
    with_server(test)


def test_the_token_bucket_paces_attempts() -> None:
    async def test(url: str) -> None:
        client = MessagesClient(config(rate_limit={"requests_per_minute": 600, "burst": 2}), api_key=KEY,
                                base_url=url)
        started = time.monotonic()
        await asyncio.gather(*(client(call(f"agent-{i}")) for i in range(6)))
        # 2 at once, then one every 0.1 s: the last of 6 no sooner than ~0.4 s in
        assert time.monotonic() - started >= 0.35
    with_server(test)


def test_the_key_is_never_logged_nor_quoted(caplog: pytest.LogCaptureFixture) -> None:
    async def test(url: str) -> None:
        await configure(url, {"faults": [{"status": 500, "count": -1}]})
        client = MessagesClient(config(retries={"max_attempts": 2, "base_s": 0.01, "max_s": 1}), api_key=KEY,
                                base_url=url)
        with pytest.raises(CallFailed) as failed:
            await client(call())
        assert KEY not in str(failed.value)
    with caplog.at_level(logging.DEBUG):
        with_server(test)
    assert KEY not in caplog.text


def test_the_key_comes_from_the_environment_or_a_file(tmp_path) -> None:
    assert load_api_key({"ANTHROPIC_API_KEY": " k1 "}) == "k1"
    f = tmp_path / "key"
    f.write_text(KEY + "\n")
    assert load_api_key({"ANTHROPIC_API_KEY_FILE": str(f)}) == KEY
    assert load_api_key({}) is None
    f.write_text("")
    with pytest.raises(UsageError) as empty:
        load_api_key({"ANTHROPIC_API_KEY_FILE": str(f)})
    with pytest.raises(UsageError):
        load_api_key({"ANTHROPIC_API_KEY_FILE": str(tmp_path / "missing")})
    assert str(f) in str(empty.value)


def test_a_run_through_the_sdk_whose_judge_twice_does_not_parse_is_partial() -> None:
    from resontinex.agents.coordination import RunRequest, run_coordination

    async def test(url: str) -> None:
        cfg = config()
        client = MessagesClient(cfg, api_key=KEY, base_url=url)
        await configure(url, {"malformed_judge": 2})
        report = await run_coordination(RunRequest("Name a prime.", 2, "parallel", MODEL), client, None,
                                        criteria=cfg.judge.criteria, max_tokens=64, judge_max_tokens=64,
                                        price=cfg.cost_usd)
        assert report.status == "partial" and report.errors[0][0] == "judge_unparseable"
        assert report.coordinated_quality is None and len(report.answers) == 2
        assert [c.call_id for c in report.calls][-2:] == ["judge-team-1", "judge-team-2"]  # asked once more
    with_server(test)
