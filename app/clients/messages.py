"""The resilient Anthropic Messages API client the coordination agent calls models through.

`MessagesClient` is an `agents.coordination.Model`: one `Call` in, one `Reply` out, or
`CallFailed` with an error code. Around the official SDK's async client (its own retries
off, so every attempt is seen here) it keeps seed 003's guarantees:

- a token bucket per API key (`aiolimiter`): at most `requests_per_minute`, in bursts of
  up to `burst`, every attempt included (per process: see `MessagesClient`);
- retries (`tenacity`) only on 429, 5xx, timeouts and connection errors, with exponential
  backoff and full jitter, never sooner than the server's `retry-after`; never on 400,
  401, 403 or another client error (the same request would fail the same way);
- a circuit breaker per model (`agents.coordination.ModelBreaker`): each retryable failure
  counts, a success resets; while it is open no attempt goes out (`circuit_open`), and its
  transitions are handed to `on_transition` (the agent turns them into alerts);
- the API key is never logged, and it is scrubbed from every error message.

>>> MessagesClient.retryable_status(429), MessagesClient.retryable_status(400), MessagesClient.retryable_status(503)
(True, False, True)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import anthropic
from aiolimiter import AsyncLimiter
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, wait_random_exponential

from resontinex.agents.coordination import (BreakerState, Call, CallFailed, CoordinationConfig, ModelBreaker, Reply,
                                            Transition)

from resontinex.app import metrics

__all__ = ["MessagesClient", "OnTransition"]

log = logging.getLogger(__name__)

_BREAKER_GAUGE: dict[BreakerState, int] = {"closed": 0, "half_open": 1, "open": 2}

OnTransition = Callable[[str, Transition, ModelBreaker], None]
"""(model, "open" | "closed", the breaker after it)."""


class _Retry(Exception):
    """A retryable failure of one attempt: its error code, message and the server's retry-after."""

    def __init__(self, code: str, message: str, retry_after_s: float | None) -> None:
        super().__init__(code)
        self.code, self.message, self.retry_after_s = code, message, retry_after_s


class MessagesClient:
    """One per API key in a process: the token bucket is the key's in this process (workers
    sharing a key each keep their own: give each its share of the key's limit).
    `base_url` None means the SDK's default (or `$ANTHROPIC_BASE_URL`, which the SDK reads)."""

    def __init__(self, cfg: CoordinationConfig, *, api_key: str, base_url: str | None = None,
                 on_transition: OnTransition | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.cfg, self.clock = cfg, clock
        self._key = api_key
        self._sdk = anthropic.AsyncAnthropic(api_key=api_key, base_url=base_url, max_retries=0,
                                             timeout=cfg.timeout_s)
        rl = cfg.rate_limit
        self.limiter = AsyncLimiter(rl.burst, rl.burst * 60.0 / rl.requests_per_minute)
        self.breakers: dict[str, ModelBreaker] = {}
        self.on_transition = on_transition

    @staticmethod
    def retryable_status(status: int) -> bool:
        return status == 429 or status == 408 or status >= 500

    def breaker_state(self, model: str) -> BreakerState:
        return self.breakers.get(model, ModelBreaker(self.cfg.breaker)).state_at(self.clock())

    def refresh_gauges(self) -> None:
        """The breaker gauge of every model called, as of now (open turns half-open with time alone)."""
        for model in self.breakers:
            metrics.COORDINATION_BREAKER.labels(model).set(_BREAKER_GAUGE[self.breaker_state(model)])

    def allows(self, model: str) -> bool:
        """Whether a call to `model` may go out now (its breaker is not open)."""
        return self.breaker_state(model) != "open"

    async def aclose(self) -> None:
        await self._sdk.close()

    async def __call__(self, call: Call) -> Reply:
        started = time.perf_counter()
        retries = self.cfg.retries
        backoff = wait_random_exponential(multiplier=retries.base_s, max=retries.max_s)

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            after = exc.retry_after_s if isinstance(exc, _Retry) else None
            return max(after or 0.0, backoff(state))

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            metrics.COORDINATION_RETRIES.labels(call.model, exc.code if isinstance(exc, _Retry) else "error").inc()

        def retry_allowed(exc: BaseException) -> bool:
            # a retry-after beyond the longest backoff is not waited out: the call fails now
            return isinstance(exc, _Retry) and (exc.retry_after_s or 0.0) <= retries.max_s

        try:
            async for attempt in AsyncRetrying(stop=stop_after_attempt(retries.max_attempts), wait=wait,
                                               retry=retry_if_exception(retry_allowed), before_sleep=before_sleep,
                                               reraise=True):
                with attempt:
                    reply = await self._attempt(call)
        except _Retry as exc:
            self._count(call.model, exc.code)
            raise CallFailed(exc.code, exc.message) from None
        except CallFailed as exc:
            self._count(call.model, exc.code)
            raise
        seconds = time.perf_counter() - started
        self._count(call.model, "ok")
        metrics.COORDINATION_TOKENS.labels(call.model, "input").inc(reply.input_tokens)
        metrics.COORDINATION_TOKENS.labels(call.model, "output").inc(reply.output_tokens)
        metrics.COORDINATION_CALL_SECONDS.labels(call.model).observe(seconds)
        return Reply(reply.text, reply.input_tokens, reply.output_tokens, reply.tool_input, round(seconds * 1000, 3))

    async def _attempt(self, call: Call) -> Reply:
        await self.limiter.acquire()
        if not self.allows(call.model):  # asked after the wait in the bucket, which it may have opened meanwhile
            raise CallFailed("circuit_open", f"the circuit breaker of model {call.model} is open: no call made")
        kwargs: dict[str, Any] = {"model": call.model, "max_tokens": call.max_tokens, "system": call.system,
                                  "messages": [dict(m) for m in call.messages]}
        if call.tool is not None:
            kwargs["tools"] = [call.tool]
            kwargs["tool_choice"] = {"type": "tool", "name": call.tool["name"]}
        try:
            message = await self._sdk.messages.create(**kwargs)
        except anthropic.APIStatusError as exc:
            status = exc.status_code
            text = self._scrub(f"HTTP {status}: {_error_message(exc)}")
            if not self.retryable_status(status):
                raise CallFailed(_client_error_code(status), text) from None
            self._failed(call.model)
            raise _Retry("rate_limited" if status == 429 else "api_error", text, _retry_after(exc.response)) from None
        except anthropic.APITimeoutError:
            self._failed(call.model)
            raise _Retry("timeout", f"no answer within {self.cfg.timeout_s:g} s", None) from None
        except anthropic.APIConnectionError as exc:
            self._failed(call.model)
            raise _Retry("connection_error", self._scrub(f"{type(exc).__name__}: {exc}"), None) from None
        except anthropic.APIError as exc:  # an answer the SDK could not read: asking again gets the same
            raise CallFailed("bad_response", self._scrub(f"{type(exc).__name__}: {exc}"[:500])) from None
        self._succeeded(call.model)
        text = "".join(b.text for b in message.content if b.type == "text")
        tool_input = next((b.input for b in message.content if b.type == "tool_use"), None)
        return Reply(text, message.usage.input_tokens, message.usage.output_tokens, tool_input)

    def _failed(self, model: str) -> None:
        breaker, transition = self.breakers.get(model, ModelBreaker(self.cfg.breaker)).failed(self.clock())
        self._keep(model, breaker, transition)

    def _succeeded(self, model: str) -> None:
        breaker, transition = self.breakers.get(model, ModelBreaker(self.cfg.breaker)).succeeded(self.clock())
        self._keep(model, breaker, transition)

    def _keep(self, model: str, breaker: ModelBreaker, transition: Transition | None) -> None:
        self.breakers[model] = breaker
        metrics.COORDINATION_BREAKER.labels(model).set(_BREAKER_GAUGE[breaker.state_at(self.clock())])
        if transition is not None:
            log.warning("circuit breaker %s", transition, extra={"model": model, "transition": transition})
            if self.on_transition is not None:
                self.on_transition(model, transition, breaker)

    def _count(self, model: str, outcome: str) -> None:
        metrics.COORDINATION_CALLS.labels(model, outcome).inc()

    def _scrub(self, text: str) -> str:
        return text.replace(self._key, "[api key]") if self._key else text


def _client_error_code(status: int) -> str:
    return {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
            413: "request_too_large"}.get(status, f"http_{status}")


def _error_message(exc: anthropic.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])[:500]
    return str(exc.message)[:500]


def _retry_after(response: Any) -> float | None:
    """The server's wait in seconds (`retry-after-ms`, else `retry-after` in seconds); None if absent or unreadable."""
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) * scale
        except ValueError:
            continue
        if seconds >= 0:
            return seconds
    return None
