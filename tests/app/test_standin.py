"""The Messages API stand-in, through the real `anthropic` SDK on loopback (no mocks).

Each test runs its own server in-process, in the event loop of one `asyncio.run`.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anthropic
import httpx
import pytest

from resontinex.agents.coordination import JUDGE_TOOL_NAME, judge_tool, parse_judgement
from resontinex.agents.coordination.exceptions import JudgeError
from resontinex.app.standin import StandIn

KEY = "sk-test-key-0123456789"
MODEL = "claude-standin-1"
ALONE = "You are working on a task by yourself. Give your best complete answer; be concise."
CRITERIA = ("correctness", "clarity")

Body = Callable[[anthropic.AsyncAnthropic, str], Awaitable[None]]


def run(body: Body, *, latency_ms: float = 0.0) -> None:
    """`body(client, url)` against a fresh stand-in, which is stopped afterwards."""
    async def main() -> None:
        standin = StandIn(latency_ms=latency_ms)
        url = await standin.start()
        client = anthropic.AsyncAnthropic(base_url=url, api_key=KEY, max_retries=0)
        try:
            await body(client, url)
        finally:
            await client.close()
            await standin.stop()
    asyncio.run(main())


async def control(url: str, path: str, payload: dict[str, Any] | None = None) -> Any:
    async with httpx.AsyncClient(base_url=url) as http:
        response = await (http.get(path) if payload is None else http.post(path, json=payload))
        response.raise_for_status()
        return response.json()


async def ask(client: anthropic.AsyncAnthropic, user: str, system: str = "Be brief.", *,
              model: str = MODEL, max_tokens: int = 200) -> anthropic.types.Message:
    return await client.messages.create(model=model, max_tokens=max_tokens, system=system,
                                        messages=[{"role": "user", "content": user}])


async def judge(client: anthropic.AsyncAnthropic, answer: str) -> anthropic.types.Message:
    """The judge's call, its tool second so that `tool_choice` must pick it."""
    tools: list[Any] = [{"name": "other_tool", "input_schema": {"type": "object"}}, judge_tool(CRITERIA)]
    return await client.messages.create(
        model=MODEL, max_tokens=300, system="You are a strict, impartial judge.",
        messages=[{"role": "user", "content": f"Task:\nName a prime.\n\nAnswer to judge:\n{answer}"}],
        tools=tools, tool_choice={"type": "tool", "name": JUDGE_TOOL_NAME})


def text_of(message: anthropic.types.Message) -> str:
    block = message.content[0]
    assert block.type == "text"
    return block.text


def tool_input(message: anthropic.types.Message) -> Any:
    block = message.content[0]
    assert block.type == "tool_use" and block.name == JUDGE_TOOL_NAME and block.id.startswith("toolu_")
    assert message.stop_reason == "tool_use"
    return block.input


def test_a_text_answer_has_the_api_shape_and_counts_tokens() -> None:
    async def body(client: anthropic.AsyncAnthropic, url: str) -> None:
        system, user = "Be brief.", "Name a prime number greater than ten."
        message = await ask(client, user, system)
        text = text_of(message)
        assert message.id.startswith("msg_") and message.type == "message" and message.role == "assistant"
        assert message.model == MODEL and message.stop_reason == "end_turn" and message.stop_sequence is None
        assert text.startswith("answer: ") and len(text.split()) <= 60
        assert message.usage.input_tokens == math.ceil(len(system + user) / 4)
        assert message.usage.output_tokens == math.ceil(len(text) / 4)
        assert text_of(await ask(client, user, system)) == text  # deterministic

        short = await ask(client, user, system, max_tokens=3)
        assert len(text_of(short)) <= 12 and short.usage.output_tokens <= 3
    run(body)


def test_identical_alone_prompts_get_successive_takes() -> None:
    async def body(client: anthropic.AsyncAnthropic, url: str) -> None:
        first, second = await ask(client, "Name a prime.", ALONE), await ask(client, "Name a prime.", ALONE)
        assert text_of(first).startswith("alone take 1: ") and text_of(second).startswith("alone take 2: ")
        assert text_of(first).partition(": ")[2] != text_of(second).partition(": ")[2]
        other = await ask(client, "Name an even prime.", ALONE)
        assert text_of(other).startswith("alone take 1: ")
    run(body)


def test_team_labels_come_from_the_system_prompt() -> None:
    async def body(client: anthropic.AsyncAnthropic, url: str) -> None:
        team = "You are agent 2 of 3 in a team working on one task. Give your best complete answer; be concise."
        assert text_of(await ask(client, "Task:\nName a prime.", team)).startswith("agent 2 of 3: ")
        debate = "Task:\nName a prime.\n\nYour answer so far:\n7\n\nRound 2 of the debate: point out the mistakes"
        assert text_of(await ask(client, debate, team)).startswith("agent 2 of 3 round 2: ")
        synthesis = "You combine a team's answers into one. Give the single best complete answer."
        assert text_of(await ask(client, "Task:\nName a prime.", synthesis)).startswith("synthesis: ")
    run(body)


def test_a_forced_judge_call_scores_every_criterion() -> None:
    async def body(client: anthropic.AsyncAnthropic, url: str) -> None:
        message = await judge(client, "7 is prime.")
        judgement = parse_judgement(tool_input(message), CRITERIA)
        assert set(judgement.scores) == set(CRITERIA)
        assert all(0.5 <= s <= 0.9 and round(s, 2) == s for s in judgement.scores.values())
        assert tool_input(await judge(client, "7 is prime.")) == tool_input(message)
    run(body)


def test_judge_rules_set_the_score_of_matching_answers() -> None:
    async def body(client: anthropic.AsyncAnthropic, url: str) -> None:
        await control(url, "/_standin/config", {"judge_rules": [{"match": "agent 1", "score": 0.2},
                                                                {"match": "prime", "score": 0.95}]})
        assert parse_judgement(tool_input(await judge(client, "agent 1 of 2: a prime")), CRITERIA).scores == \
            {"correctness": 0.2, "clarity": 0.2}
        assert parse_judgement(tool_input(await judge(client, "7 is prime")), CRITERIA).quality == 0.95
        assert parse_judgement(tool_input(await judge(client, "no match")), CRITERIA).quality != 0.95
    run(body)


def test_malformed_judgements_then_valid_ones() -> None:
    async def body(client: anthropic.AsyncAnthropic, url: str) -> None:
        await control(url, "/_standin/config", {"malformed_judge": 2})
        for _ in range(2):
            with pytest.raises(JudgeError):
                parse_judgement(tool_input(await judge(client, "7")), CRITERIA)
        parse_judgement(tool_input(await judge(client, "7")), CRITERIA)
    run(body)


def test_a_rate_limit_fault_sends_retry_after() -> None:
    async def body(client: anthropic.AsyncAnthropic, url: str) -> None:
        await control(url, "/_standin/config", {"faults": [{"status": 429, "count": 1, "retry_after": 3}]})
        with pytest.raises(anthropic.RateLimitError) as caught:
            await ask(client, "Name a prime.")
        assert caught.value.response.headers["retry-after"] == "3"
        assert caught.value.body == {"type": "error", "error": {"type": "rate_limit_error",
                                                                 "message": "stand-in fault: status 429"}}
        assert text_of(await ask(client, "Name a prime.")).startswith("answer: ")  # count used up
    run(body)


def test_error_faults_raise_the_sdks_errors_in_order() -> None:
    async def body(client: anthropic.AsyncAnthropic, url: str) -> None:
        await control(url, "/_standin/config", {"faults": [{"status": 500, "count": 2}, {"status": 400}]})
        await control(url, "/_standin/config", {"faults": [{"status": 529}]})
        for expected in (anthropic.InternalServerError, anthropic.InternalServerError, anthropic.BadRequestError,
                         anthropic.OverloadedError):
            with pytest.raises(expected):
                await ask(client, "Name a prime.")
        await ask(client, "Name a prime.")
        stats = await control(url, "/_standin/stats")
        assert stats == {"requests": 5, "by_status": {"200": 1, "400": 1, "500": 2, "529": 1}}
    run(body)


def test_a_fault_with_match_applies_only_to_matching_requests() -> None:
    async def body(client: anthropic.AsyncAnthropic, url: str) -> None:
        await control(url, "/_standin/config", {"faults": [{"status": 529, "count": -1, "match": "synthesis-model"},
                                                           {"status": 429, "count": -1, "match": "combine"}]})
        for _ in range(3):
            with pytest.raises(anthropic.OverloadedError):
                await ask(client, "Name a prime.", model="synthesis-model")
        with pytest.raises(anthropic.RateLimitError):
            await ask(client, "Name a prime.", "You combine a team's answers into one.")
        await ask(client, "Name a prime.")
        await control(url, "/_standin/reset", {})
        await ask(client, "Name a prime.", model="synthesis-model")
    run(body)


def test_a_request_without_a_key_is_refused() -> None:
    async def body(client: anthropic.AsyncAnthropic, url: str) -> None:
        payload = {"model": MODEL, "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
        async with httpx.AsyncClient(base_url=url) as http:
            response = await http.post("/v1/messages", json=payload)
            assert response.status_code == 401
            assert response.json()["type"] == "error"
            assert response.json()["error"]["type"] == "authentication_error"
            invalid = await http.post("/v1/messages", json={"model": MODEL}, headers={"x-api-key": KEY})
            assert invalid.status_code == 400 and invalid.json()["error"]["type"] == "invalid_request_error"
        log = await control(url, "/_standin/log")
        assert [(e["status"], e["key_present"]) for e in log] == [(401, False), (400, True)]
    run(body)


def test_latency_and_slow_reply_faults_delay_the_answer() -> None:
    async def body(client: anthropic.AsyncAnthropic, url: str) -> None:
        started = time.monotonic()
        await asyncio.gather(*(ask(client, f"Name prime {i}.") for i in range(20)))
        assert 0.2 <= time.monotonic() - started < 1.5  # concurrent, not one after another

        await control(url, "/_standin/config", {"latency_ms": 0, "faults": [{"delay_ms": 300}]})
        started = time.monotonic()
        await ask(client, "Name a prime.")
        assert time.monotonic() - started >= 0.3
        await control(url, "/_standin/config", {"faults": [{"delay_ms": 5000}]})  # a timeout
        with pytest.raises(anthropic.APITimeoutError):
            await client.with_options(timeout=0.2).messages.create(
                model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    run(body, latency_ms=200)


def test_the_log_records_each_request_and_never_the_key() -> None:
    async def body(client: anthropic.AsyncAnthropic, url: str) -> None:
        await control(url, "/_standin/config", {"faults": [{"status": 429, "match": "by yourself"}]})
        with pytest.raises(anthropic.RateLimitError):
            await ask(client, "Name a prime.", ALONE)
        await ask(client, "Name a prime.", ALONE)
        await judge(client, "7")
        response = await control(url, "/_standin/log")
        assert [(e["model"], e["kind"], e["label"], e["status"], e["key_present"]) for e in response] == [
            (MODEL, "answer", "alone", 429, True), (MODEL, "answer", "alone take 1", 200, True),
            (MODEL, "judge", None, 200, True)]
        assert response[0]["t"] <= response[1]["t"] <= response[2]["t"]
        async with httpx.AsyncClient(base_url=url) as http:
            assert KEY not in (await http.get("/_standin/log")).text
    run(body)


def test_reset_clears_takes_rules_faults_and_the_log() -> None:
    async def body(client: anthropic.AsyncAnthropic, url: str) -> None:
        await ask(client, "Name a prime.", ALONE)
        state = await control(url, "/_standin/config", {
            "judge_rules": [{"match": "7", "score": 0.1}], "malformed_judge": 1,
            "faults": [{"status": 500, "count": -1, "match": "never sent", "retry_after": 1.5}]})
        assert state == {"latency_ms": 0.0, "judge_rules": [{"match": "7", "score": 0.1}], "malformed_judge": 1,
                         "faults": [{"status": 500, "count": -1, "retry_after": 1.5, "match": "never sent",
                                     "delay_ms": 0.0}]}
        assert await control(url, "/_standin/reset", {"latency_ms": 5}) == {
            "latency_ms": 5.0, "judge_rules": [], "faults": [], "malformed_judge": 0}
        assert await control(url, "/_standin/stats") == {"requests": 0, "by_status": {}}
        assert text_of(await ask(client, "Name a prime.", ALONE)).startswith("alone take 1: ")
        assert parse_judgement(tool_input(await judge(client, "7")), CRITERIA).quality != 0.1
    run(body)


def test_bad_control_payloads_are_refused_and_change_nothing() -> None:
    async def body(client: anthropic.AsyncAnthropic, url: str) -> None:
        payloads: tuple[dict[str, Any], ...] = ({"faults": [{"status": 429}, {"status": 429, "count": 0}]},
                                                {"latency_ms": -1}, {"judge_rules": [{"score": 1}]}, {"fault": []})
        async with httpx.AsyncClient(base_url=url) as http:
            for payload in payloads:
                response = await http.post("/_standin/config", json=payload)
                assert response.status_code == 400, payload
                assert response.json()["error"]["type"] == "invalid_request_error"
        assert (await control(url, "/_standin/config", {}))["faults"] == []
    run(body)
