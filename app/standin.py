"""A local stand-in for Anthropic's Messages API, for development, tests and the demo.

The real `anthropic` SDK talks to it as to the API (`AsyncAnthropic(base_url=standin.url,
api_key="any")`), so the coordination monitor's client, retries and judge parsing run
unchanged against loopback, with any key, no network and no cost. Its answers are
deterministic and say what was asked (`alone take 2: …`, `agent 1 of 3 round 2: …`,
`synthesis: …`); a judge's tool call gets a score per criterion. Faults (error statuses
with `retry-after`, slow replies, malformed judgements) and a server-wide latency are set
through JSON control endpoints under `/_standin/`, and every request is logged (never its
key) for a test or benchmark to inspect:

- `POST /v1/messages`: the Messages API (text answers and forced tool calls);
- `POST /_standin/reset`, `POST /_standin/config`: clear or change the behaviour; both
  answer with the resulting state;
- `GET /_standin/log`, `GET /_standin/stats`: what was asked and answered.

>>> standin = StandIn(latency_ms=50)          # doctest: +SKIP
>>> url = await standin.start()               # doctest: +SKIP
>>> client = anthropic.AsyncAnthropic(base_url=url, api_key="dev", max_retries=0)  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
import signal
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

__all__ = ["StandIn", "ThreadedStandIn", "serve"]

_CHARS_PER_TOKEN = 4
_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 500: "api_error",
                529: "overloaded_error"}
_FAULT_KEYS = frozenset({"status", "count", "retry_after", "match", "delay_ms"})
_CONFIG_KEYS = frozenset({"latency_ms", "judge_rules", "faults", "malformed_judge"})
_TASK_WORDS = 8
_PICKED_WORDS = 12
_VOCABULARY = (
    "first", "check", "the", "constraints", "then", "build", "a", "minimal", "solution", "and", "verify", "each",
    "step", "against", "examples", "edge", "cases", "matter", "most", "keep", "it", "simple", "explain", "why",
    "result", "holds", "under", "stated", "assumptions", "so", "answer", "follows",
)
_AGENT = re.compile(r"You are agent (\d+) of (\d+)")
_ROUND = re.compile(r"Round (\d+) of the debate")


class _BadRequest(Exception):
    """A request body or control payload that is not valid: a 400 with this message."""


@dataclass(slots=True)
class _Fault:
    status: int
    count: int
    """Requests left to apply to; -1: until reset."""
    retry_after: float | None
    match: str | None
    delay_ms: float

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "count": self.count, "retry_after": self.retry_after, "match": self.match,
                "delay_ms": self.delay_ms}


@dataclass(frozen=True, slots=True)
class _Rule:
    match: str
    score: float


@dataclass(frozen=True, slots=True)
class _Request:
    model: str
    system: str
    messages: tuple[tuple[str, str], ...]
    """(role, text) per message, a list of blocks' texts joined."""
    max_tokens: int
    tool: Mapping[str, Any] | None
    """The tool the reply calls: `tool_choice`'s, else the first of `tools`."""

    @property
    def text(self) -> str:
        return self.system + "".join(text for _, text in self.messages)

    @property
    def last_user(self) -> str:
        return next((text for role, text in reversed(self.messages) if role == "user"), "")


@dataclass(frozen=True, slots=True)
class _Reply:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]
    delay_s: float
    label: str | None


def _number(value: Any, name: str, *, minimum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or (minimum is not None and value < minimum):
        bound = f" ≥ {minimum:g}" if minimum is not None else ""
        raise _BadRequest(f"{name}: must be a finite number{bound}, got {value!r}")
    return float(value)


def _integer(value: Any, name: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _BadRequest(f"{name}: must be an integer ≥ {minimum}, got {value!r}")
    return value


def _text_of(content: Any, name: str) -> str:
    """A message's or system prompt's text: a string, or the texts of its `text` blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(b, Mapping) for b in content):
        return "".join(str(b.get("text", "")) for b in content if b.get("type") == "text")
    raise _BadRequest(f"{name}: must be a string or a list of content blocks")


def _chosen_tool(body: Mapping[str, Any]) -> Mapping[str, Any] | None:
    tools = body.get("tools")
    if tools is None:
        return None
    if not isinstance(tools, list) or not tools or not all(isinstance(t, Mapping) for t in tools):
        raise _BadRequest("tools: must be a non-empty list of tools")
    choice = body.get("tool_choice")
    if isinstance(choice, Mapping) and choice.get("type") == "tool":
        tool: Mapping[str, Any] | None = next((t for t in tools if t.get("name") == choice.get("name")), None)
        if tool is None:
            raise _BadRequest(f"tool_choice: no tool named {choice.get('name')!r} in tools")
        return tool
    first: Mapping[str, Any] = tools[0]
    return first


def _parse(body: Any) -> _Request:
    if not isinstance(body, Mapping):
        raise _BadRequest("the body must be a JSON object")
    model, messages = body.get("model"), body.get("messages")
    if not isinstance(model, str) or not model:
        raise _BadRequest("model: field required")
    if "max_tokens" not in body:
        raise _BadRequest("max_tokens: field required")
    max_tokens = _integer(body["max_tokens"], "max_tokens", minimum=1)
    if not isinstance(messages, list) or not messages:
        raise _BadRequest("messages: must be a non-empty list")
    parsed = []
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping) or m.get("role") not in ("user", "assistant"):
            raise _BadRequest(f"messages.{i}: must be an object with role 'user' or 'assistant'")
        parsed.append((str(m["role"]), _text_of(m.get("content"), f"messages.{i}.content")))
    system = _text_of(body.get("system", ""), "system")
    return _Request(model, system, tuple(parsed), max_tokens, _chosen_tool(body))


def _role_label(request: _Request) -> str:
    """What was asked, from the system prompt (an `alone` answer's take is added on answering)."""
    if "by yourself" in request.system:
        return "alone"
    if agent := _AGENT.search(request.system):
        label = f"agent {agent[1]} of {agent[2]}"
        round_ = _ROUND.search(request.last_user)
        return f"{label} round {round_[1]}" if round_ else label
    if "combine a team's answers" in request.system:
        return "synthesis"
    return "answer"


def _digest(*parts: Any) -> bytes:
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode()).digest()


def _sentence(request: _Request, label: str) -> str:
    """`label: ` then a few of the task's words and words picked by a hash of the request
    and label (so each take of the same prompt reads differently)."""
    task = request.last_user
    if "Task:\n" in task:
        task = task.rpartition("Task:\n")[2].split("\n\n", 1)[0]
    words = " ".join(task.split()[:_TASK_WORDS]).rstrip(".,;:!?") or "the task"
    digest = _digest(request.model, request.system, request.messages, label)
    picked = " ".join(_VOCABULARY[b % len(_VOCABULARY)] for b in digest[:_PICKED_WORDS])
    return f"{label}: {words}; {picked}."


def _tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / _CHARS_PER_TOKEN))


def _judge_input(tool: Mapping[str, Any], answer: str, rules: list[_Rule]) -> dict[str, Any]:
    """A judgement by the rules (the first whose `match` is in the answer), else by a hash:
    a score for each criterion the tool's `scores` requires (or has)."""
    schema = tool.get("input_schema")
    scores = schema.get("properties", {}).get("scores", {}) if isinstance(schema, Mapping) else {}
    criteria = [str(c) for c in scores.get("required") or scores.get("properties", {})] \
        if isinstance(scores, Mapping) else []
    rule = next((r for r in rules if r.match in answer), None)
    if rule is not None:
        return {"scores": {c: rule.score for c in criteria}, "reason": f"stand-in judge: rule {rule.match!r}"}
    # 0.5 to 0.9: a plausible spread that no criterion's default pins to a bound.
    return {"scores": {c: round(0.5 + int.from_bytes(_digest(c, answer)[:4]) % 4001 / 10_000, 2) for c in criteria},
            "reason": "stand-in judge: a default score from a hash of the answer"}


def _error(status: int, message: str) -> dict[str, Any]:
    kind = _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": message}}


def _fault(value: Any, i: int) -> _Fault:
    name = f"faults.{i}"
    if not isinstance(value, Mapping) or not set(value) <= _FAULT_KEYS:
        raise _BadRequest(f"{name}: must be an object with keys among {sorted(_FAULT_KEYS)}")
    status = _integer(value.get("status", 200), f"{name}.status", minimum=200)
    if status != 200 and not 400 <= status <= 599:
        raise _BadRequest(f"{name}.status: must be 200 (a slow reply) or an error status 400-599, got {status}")
    count = _integer(value.get("count", 1), f"{name}.count", minimum=-1)
    if count == 0:
        raise _BadRequest(f"{name}.count: must be ≥ 1, or -1 for until reset")
    retry_after = value.get("retry_after")
    match = value.get("match")
    if match is not None and not isinstance(match, str):
        raise _BadRequest(f"{name}.match: must be a string")
    return _Fault(status, count, None if retry_after is None else _number(retry_after, f"{name}.retry_after",
                                                                          minimum=0),
                  match, _number(value.get("delay_ms", 0.0), f"{name}.delay_ms", minimum=0))


def _rule(value: Any, i: int) -> _Rule:
    if not isinstance(value, Mapping) or not isinstance(value.get("match"), str):
        raise _BadRequest(f"judge_rules.{i}: must be an object with a string `match` and a number `score`")
    return _Rule(value["match"], _number(value.get("score"), f"judge_rules.{i}.score"))


def _header_seconds(seconds: float) -> str:
    return str(int(seconds)) if seconds.is_integer() else str(seconds)


def _key_present(headers: Mapping[str, str]) -> bool:
    """Whether the request carries a key: `x-api-key`, or `Authorization: Bearer …` as the
    SDK (2.x) sends an `api_key`. Any non-empty key is accepted; none is kept."""
    scheme, _, token = headers.get("authorization", "").strip().partition(" ")
    return bool(headers.get("x-api-key", "").strip()) or (scheme.lower() == "bearer" and bool(token.strip()))


async def _json_body(request: web.Request, *, empty_ok: bool) -> Any:
    if empty_ok and not await request.read():
        return {}
    try:
        return await request.json()
    except ValueError as e:
        raise _BadRequest(f"the body is not JSON: {e}") from None


class StandIn:
    """The stand-in server; `start` it in a running event loop, `stop` it in the same one."""

    def __init__(self, *, latency_ms: float = 0.0) -> None:
        self._latency_ms = _number(latency_ms, "latency_ms", minimum=0)
        self._takes: Counter[str] = Counter()
        self._rules: list[_Rule] = []
        self._faults: list[_Fault] = []
        self._malformed_judge = 0
        self._log: list[dict[str, Any]] = []
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        """The base URL to give the SDK, e.g. `http://127.0.0.1:41234`."""
        if self._url is None:
            raise RuntimeError("the stand-in is not started")
        return self._url

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on host:port (0: a free port); the base URL."""
        if self._runner is not None:
            raise RuntimeError("the stand-in is already started")
        app = web.Application(client_max_size=32 * 1024 * 1024)  # the API's own request limit
        app.router.add_post("/v1/messages", self._messages)
        app.router.add_post("/_standin/reset", self._reset)
        app.router.add_post("/_standin/config", self._config)
        app.router.add_get("/_standin/log", self._get_log)
        app.router.add_get("/_standin/stats", self._stats)
        # No access log; a short shutdown so that `stop` does not wait out a slow-reply fault.
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        bound = runner.addresses[0][1]
        self._url = f"http://[{host}]:{bound}" if ":" in host else f"http://{host}:{bound}"
        return self._url

    async def stop(self) -> None:
        """Stop listening; replies still waiting are cut off. Does nothing if not started."""
        runner, self._runner, self._url = self._runner, None, None
        if runner is not None:
            await runner.cleanup()

    def _state(self) -> dict[str, Any]:
        return {"latency_ms": self._latency_ms,
                "judge_rules": [{"match": r.match, "score": r.score} for r in self._rules],
                "faults": [f.to_json() for f in self._faults], "malformed_judge": self._malformed_judge}

    def _next_fault(self, request: _Request) -> _Fault | None:
        """The first fault that applies to the request, its count taken down (and dropped at 0)."""
        for fault in self._faults:
            if fault.match is None or fault.match in request.model or fault.match in request.text:
                if fault.count > 0:
                    fault.count -= 1
                    if fault.count == 0:
                        self._faults.remove(fault)
                return fault
        return None

    def _decide(self, key_present: bool, body: Any) -> _Reply:
        """The reply to a Messages API request; takes, fault counts and malformed judgements
        are used up here, at arrival, so concurrent requests are served in arrival order."""
        if not key_present:
            return _Reply(401, _error(401, "an x-api-key or Authorization: Bearer header is required"), {}, 0.0,
                          None)
        try:
            request = _parse(body)
        except _BadRequest as e:
            return _Reply(400, _error(400, str(e)), {}, 0.0, None)
        fault = self._next_fault(request)
        delay_s = fault.delay_ms / 1000 if fault else 0.0
        if fault is not None and fault.status != 200:
            headers = {} if fault.retry_after is None else {"retry-after": _header_seconds(fault.retry_after)}
            # An `alone` request that fails gets no take: its label is plain "alone".
            return _Reply(fault.status, _error(fault.status, f"stand-in fault: status {fault.status}"), headers,
                          delay_s, _role_label(request) if request.tool is None else None)
        label: str | None = None
        if request.tool is not None:
            if self._malformed_judge > 0:
                self._malformed_judge -= 1
                tool_input: dict[str, Any] = {"scores": "n/a"}
            else:
                answer = request.last_user
                if "Answer to judge:\n" in answer:
                    answer = answer.partition("Answer to judge:\n")[2]
                tool_input = _judge_input(request.tool, answer, self._rules)
            content = [{"type": "tool_use", "id": f"toolu_{uuid.uuid4().hex[:24]}", "name": request.tool.get("name"),
                        "input": tool_input}]
            output, stop_reason = json.dumps(tool_input), "tool_use"
        else:
            label = _role_label(request)
            if label == "alone":
                key = json.dumps([request.model, request.system, request.messages])
                self._takes[key] += 1
                label = f"alone take {self._takes[key]}"
            sentence = _sentence(request, label)
            # Capped as the API caps it, so a reply never costs more than max_tokens.
            output = sentence[:request.max_tokens * _CHARS_PER_TOKEN]
            stop_reason = "end_turn" if output == sentence else "max_tokens"
            content = [{"type": "text", "text": output}]
        message = {"id": f"msg_{uuid.uuid4().hex[:24]}", "type": "message", "role": "assistant",
                   "model": request.model, "content": content, "stop_reason": stop_reason, "stop_sequence": None,
                   "usage": {"input_tokens": _tokens(request.text), "output_tokens": _tokens(output)}}
        return _Reply(200, message, {}, delay_s, label)

    async def _messages(self, request: web.Request) -> web.Response:
        key_present = _key_present(request.headers)
        try:
            body: Any = await request.json()
        except ValueError:
            body = None
        reply = self._decide(key_present, body)
        fields = body if isinstance(body, Mapping) else {}
        model = fields.get("model")
        self._log.append({"t": time.monotonic(), "model": model if isinstance(model, str) else None,
                          "kind": "judge" if fields.get("tools") else "answer", "label": reply.label,
                          "status": reply.status, "key_present": key_present})
        await asyncio.sleep(self._latency_ms / 1000 + reply.delay_s)
        return web.json_response(reply.body, status=reply.status, headers=reply.headers)

    async def _reset(self, request: web.Request) -> web.Response:
        try:
            body = await _json_body(request, empty_ok=True)
            if not isinstance(body, Mapping) or not set(body) <= {"latency_ms"}:
                raise _BadRequest("reset takes an empty body or {\"latency_ms\": number}")
            latency_ms = _number(body.get("latency_ms", self._latency_ms), "latency_ms", minimum=0)
        except _BadRequest as e:
            return web.json_response(_error(400, str(e)), status=400)
        self._latency_ms = latency_ms
        self._takes.clear()
        self._rules, self._faults, self._malformed_judge, self._log = [], [], 0, []
        return web.json_response(self._state())

    async def _config(self, request: web.Request) -> web.Response:
        try:
            body = await _json_body(request, empty_ok=False)
            if not isinstance(body, Mapping) or not set(body) <= _CONFIG_KEYS:
                raise _BadRequest(f"config takes an object with keys among {sorted(_CONFIG_KEYS)}")
            # Everything is checked before anything changes: a bad payload changes nothing.
            latency_ms = _number(body.get("latency_ms", self._latency_ms), "latency_ms", minimum=0)
            rules = body.get("judge_rules")
            if rules is not None and not isinstance(rules, list):
                raise _BadRequest("judge_rules: must be a list")
            faults = body.get("faults", [])
            if not isinstance(faults, list):
                raise _BadRequest("faults: must be a list")
            new_faults = [_fault(f, i) for i, f in enumerate(faults)]
            new_rules = None if rules is None else [_rule(r, i) for i, r in enumerate(rules)]
            malformed = _integer(body.get("malformed_judge", self._malformed_judge), "malformed_judge", minimum=0)
        except _BadRequest as e:
            return web.json_response(_error(400, str(e)), status=400)
        self._latency_ms, self._malformed_judge = latency_ms, malformed
        self._faults.extend(new_faults)
        if new_rules is not None:
            self._rules = new_rules
        return web.json_response(self._state())

    async def _get_log(self, request: web.Request) -> web.Response:
        return web.json_response(self._log)

    async def _stats(self, request: web.Request) -> web.Response:
        by_status = Counter(str(entry["status"]) for entry in self._log)
        return web.json_response({"requests": len(self._log), "by_status": dict(sorted(by_status.items()))})


async def _serve_until_signalled(host: str, port: int, latency_ms: float) -> None:
    standin = StandIn(latency_ms=latency_ms)
    url = await standin.start(host, port)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    print(f"Anthropic Messages API stand-in listening on {url}", flush=True)
    try:
        await stopping.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await standin.stop()


def serve(host: str, port: int, latency_ms: float) -> None:
    """Run a stand-in on host:port until SIGINT or SIGTERM, after printing its URL on one line."""
    asyncio.run(_serve_until_signalled(host, port, latency_ms))


class ThreadedStandIn:
    """A stand-in on a thread of its own, for a caller with no event loop to share (a test
    or benchmark driving worker processes, `up --demo`), with the control endpoints as calls.

    >>> with ThreadedStandIn() as standin:
    ...     standin.control("config", {"latency_ms": 5})["latency_ms"], standin.control("log")
    (5.0, [])
    """

    def __init__(self, *, latency_ms: float = 0.0, host: str = "127.0.0.1", port: int = 0) -> None:
        self._loop = asyncio.new_event_loop()
        self._server = StandIn(latency_ms=latency_ms)
        self._thread = threading.Thread(target=self._loop.run_forever, name="messages-standin", daemon=True)
        self._thread.start()
        try:
            self.url = asyncio.run_coroutine_threadsafe(self._server.start(host, port), self._loop).result(30)
        except BaseException:
            self._halt()
            raise

    def control(self, path: str, body: dict[str, Any] | None = None) -> Any:
        """`GET /_standin/<path>`, or a POST of `body`; the decoded answer."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.url}/_standin/{path}", data=data,
                                     headers={"content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())

    def stop(self) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self._server.stop(), self._loop).result(30)
        finally:
            self._halt()

    def _halt(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def __enter__(self) -> ThreadedStandIn:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
