"""One coordination run: the team's answer by a strategy, judged, against its members alone.

`run_coordination` drives the calls through an injected `Model` (the shell's resilient
Anthropic client; a test's stand-in) and an `Embed` function, so the strategies, the
judge's retry, the budget cap and the errors are plain logic:

- `sequential`: agent i sees the answers of agents 1 … i−1; the last answer is the team's;
- `parallel`: independent answers, then a synthesis call;
- `debate`: independent answers, `rounds` rounds in which each agent critiques the others
  and revises its own, then a synthesis call.

Baselines are each agent alone on the task, judged by the same judge; a cached set skips
them. A judge reply that does not parse is asked once more, then the run is `partial`
(`judge_unparseable`), never scored with a made-up value. With `budget_usd`, a call is
made only while its worst case still fits in the budget (`budget_exhausted` otherwise), so
a run never spends more than it. A run that stops on an error is `partial` when an agent's
answer was kept, `failed` when none was: a round of parallel calls is kept whole or not
at all, so a failure in the opening round of `parallel` or `debate` fails the run (its
calls that answered are still counted and charged). Call ids are deterministic
within a run (`agent-2-r1`, `judge-team-1`, …): a re-run after a crash repeats them, so
the cost events derived from them are not counted twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from . import _prompts as prompts
from ._judge import JUDGE_TOOL_NAME, judge_messages, judge_system, judge_tool, parse_judgement
from ._metrics import consensus
from .exceptions import JudgeError

__all__ = ["Answer", "Call", "CallFailed", "Embed", "Model", "Reply", "RunReport", "RunRequest", "SharedCap", "Spent",
           "baseline_key", "run_coordination"]

T = TypeVar("T")
CONSENSUS_UNAVAILABLE = "consensus_unavailable"
CHARS_PER_TOKEN = 3.0
"""Characters of prompt per token at most (English runs about 4): a call's worst case for the budget."""

Strategy = Literal["sequential", "parallel", "debate"]
Status = Literal["ok", "partial", "failed"]


@dataclass(frozen=True, slots=True)
class Call:
    call_id: str
    model: str
    system: str
    messages: prompts.Messages
    max_tokens: int
    tool: dict[str, Any] | None = None
    """The one tool the model must call (the judge's)."""


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    input_tokens: int
    output_tokens: int
    tool_input: Any = None
    """The input of the forced tool call, as the model gave it."""
    latency_ms: float = 0.0


class CallFailed(Exception):
    """A call that did not get an answer (after the client's retries); `code` for the result's errors."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


class Model(Protocol):
    async def __call__(self, call: Call) -> Reply: ...


Embed = Callable[[Sequence[str]], Awaitable[npt.NDArray[np.float64]]]


@dataclass(frozen=True, slots=True)
class RunRequest:
    task: str
    agents: int
    strategy: Strategy
    model: str
    rounds: int = 2
    budget_usd: float | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    agent: int
    text: str
    output_tokens: int


@dataclass(frozen=True, slots=True)
class Spent:
    call_id: str
    model: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
    latency_ms: float


@dataclass(frozen=True, slots=True)
class RunReport:
    status: Status
    errors: tuple[tuple[str, str], ...]
    answers: tuple[Answer, ...]
    final: str | None
    coordinated_quality: float | None
    baseline_qualities: tuple[float, ...]
    baseline_cached: bool
    consensus_rate: float | None
    calls: tuple[Spent, ...]

    @property
    def cost_usd(self) -> float:
        return sum(c.cost_usd for c in self.calls)


def baseline_key(task: str, agents: int, model: str, criteria: Sequence[str]) -> str:
    """The baseline cache key: the task, the team size, the model, the prompts' version and
    the judge's criteria (other criteria give other scores).

    >>> k = baseline_key("t", 3, "m", ("correctness",))
    >>> k == baseline_key("t", 3, "m", ("correctness",)) != baseline_key("t", 3, "other", ("correctness",))
    True
    """
    digest = hashlib.sha256(task.encode()).hexdigest()
    judged = hashlib.sha256("\x1f".join(criteria).encode()).hexdigest()[:12]
    return f"{digest}:{agents}:{model}:p{prompts.PROMPT_VERSION}:j{judged}"


class _Stop(Exception):
    def __init__(self, code: str, message: str) -> None:
        self.code, self.message = code, message


@dataclass
class SharedCap:
    """A cap several runs draw on at once (a tenant's hourly cap): `left` when they started,
    and what they have spent and hold in flight since. A call goes out only while its worst
    case fits, so runs together never pass it.

    >>> cap = SharedCap(1.0); cap.fits(0.6), cap.hold(0.6), cap.fits(0.6)
    (True, None, False)
    """

    left: float
    spent: float = 0.0
    reserved: float = 0.0

    @property
    def available(self) -> float:
        return self.left - self.spent - self.reserved

    def fits(self, usd: float) -> bool:
        return usd <= self.available

    def hold(self, usd: float) -> None:
        self.reserved += usd

    def release(self, usd: float, spent: float = 0.0) -> None:
        self.reserved -= usd
        self.spent += spent


@dataclass
class _Ledger:
    """Every call of a run goes through here: spend counted, the budget never exceeded.

    A call may start only if its worst case (its prompt at `CHARS_PER_TOKEN`, all of its
    `max_tokens` out) fits in what the budget has left after the spend so far and the worst
    cases of the calls still in flight, so parallel calls cannot overshoot it together."""

    model: Model
    price: Callable[[str, int, int], float]
    budget_usd: float | None
    shared: SharedCap | None = None
    spent: list[Spent] = field(default_factory=list)
    reserved: float = 0.0

    def worst_case(self, call: Call) -> float:
        chars = len(call.system) + sum(len(m["content"]) for m in call.messages)
        return self.price(call.model, math.ceil(chars / CHARS_PER_TOKEN), call.max_tokens)

    async def call(self, call: Call) -> Reply:
        capped = self.budget_usd is not None or self.shared is not None
        worst = self.worst_case(call) if capped else 0.0
        total = sum(s.cost_usd for s in self.spent)
        if self.budget_usd is not None and total + self.reserved + worst > self.budget_usd:
            raise _Stop("budget_exhausted", f"the run's budget_usd {self.budget_usd:g} has {total:.6f} USD spent "
                                            f"and {self.reserved:.6f} USD in flight: {call.call_id} (up to "
                                            f"{worst:.6f} USD) is not made")
        if self.shared is not None and not self.shared.fits(worst):
            raise _Stop("hourly_cap_reached", f"the tenant's hourly cap has {max(self.shared.available, 0.0):.6f} "
                                              f"USD left: {call.call_id} (up to {worst:.6f} USD) is not made")
        self.reserved += worst
        if self.shared is not None:
            self.shared.hold(worst)
        cost = 0.0
        try:
            reply = await self.model(call)
            cost = self.price(call.model, reply.input_tokens, reply.output_tokens)
        except CallFailed as exc:
            raise _Stop(exc.code, exc.message) from None
        finally:
            self.reserved -= worst
            if self.shared is not None:
                self.shared.release(worst, cost)
        self.spent.append(Spent(call.call_id, call.model, reply.input_tokens, reply.output_tokens, cost,
                                reply.latency_ms))
        return reply

    async def all(self, calls: Sequence[Call]) -> list[Reply]:
        """The calls at once (`_settled`)."""
        return await _settled([self.call(c) for c in calls])


async def _settled(awaitables: Sequence[Awaitable[T]]) -> list[T]:
    """The results of `awaitables` run at once; the first failure is raised only once every
    one has finished, so each call that was made is counted and none runs on unseen."""
    outcomes = await asyncio.gather(*awaitables, return_exceptions=True)
    for o in outcomes:
        if isinstance(o, BaseException):
            raise o
    return list(outcomes)  # type: ignore[arg-type]


async def run_coordination(request: RunRequest, model: Model, embed: Embed | None, *, criteria: Sequence[str],
                           max_tokens: int, judge_max_tokens: int, price: Callable[[str, int, int], float],
                           cached_baselines: Sequence[float] | None = None,
                           shared_cap: SharedCap | None = None) -> RunReport:
    """Run the team, judge it, measure the baselines (unless cached) and the consensus.

    Without `embed` (no embedding model installed) the run can still be `ok`: its errors
    then say `consensus_unavailable` and `consensus_rate` is None. `shared_cap` is a cap
    this run shares with others running at once (`hourly_cap_reached` when it is spent)."""
    ledger = _Ledger(model, price, request.budget_usd, shared_cap)
    answers: list[Answer] = []
    final: str | None = None
    quality: float | None = None
    baselines: tuple[float, ...] = tuple(cached_baselines or ())
    agreement: float | None = None
    errors: list[tuple[str, str]] = []

    async def judge(call_id: str, answer: str) -> float:
        problem = ""
        for attempt in (1, 2):
            reply = await ledger.call(Call(f"{call_id}-{attempt}", request.model, judge_system(criteria),
                                           judge_messages(request.task, answer), judge_max_tokens,
                                           judge_tool(criteria)))
            try:
                return parse_judgement(reply.tool_input, criteria).quality
            except JudgeError as exc:
                problem = str(exc)
        raise _Stop("judge_unparseable", f"the judge's reply did not parse twice ({JUDGE_TOOL_NAME}: {problem})")

    try:
        final = await _team(request, ledger, max_tokens, answers)
        quality = await judge("judge-team", final)
        if cached_baselines is None:
            alone = await ledger.all([_alone_call(request, i, "baseline", max_tokens)
                                      for i in range(1, request.agents + 1)])
            baselines = tuple(await _settled([judge(f"judge-baseline-{i}", r.text)
                                              for i, r in enumerate(alone, start=1)]))
        if embed is not None:
            try:
                agreement = consensus(await embed([a.text for a in answers]))
            except Exception as exc:  # the model's answers are kept; the run says what it could not measure
                raise _Stop("embedding_failed", f"{type(exc).__name__}: {exc}") from None
    except _Stop as stop:
        errors.append((stop.code, stop.message))
    status: Status = "ok" if not errors else ("partial" if answers else "failed")
    if embed is None and status == "ok":
        errors.append((CONSENSUS_UNAVAILABLE, "no sentence-embedding model here: consensus_rate is not measured"))
    return RunReport(status, tuple(errors), tuple(answers), final, quality,
                     baselines if len(baselines) == request.agents else (), cached_baselines is not None,
                     agreement, tuple(ledger.spent))


def _alone_call(request: RunRequest, agent: int, stage: str, max_tokens: int) -> Call:
    system, messages = prompts.alone(request.task)
    return Call(f"{stage}-{agent}", request.model, system, messages, max_tokens)


async def _team(request: RunRequest, ledger: _Ledger, max_tokens: int, answers: list[Answer]) -> str:
    """The team's final answer; `answers` holds each agent's latest answer as they come."""
    n, task = request.agents, request.task
    if request.strategy == "sequential":
        for i in range(1, n + 1):
            system, messages = prompts.sequential_turn(task, i, n, [a.text for a in answers])
            reply = await ledger.call(Call(f"agent-{i}", request.model, system, messages, max_tokens))
            answers.append(Answer(i, reply.text, reply.output_tokens))
        return answers[-1].text
    replies = await ledger.all([_alone_call(request, i, "agent", max_tokens) for i in range(1, n + 1)])
    answers[:] = [Answer(i, r.text, r.output_tokens) for i, r in enumerate(replies, start=1)]
    if request.strategy == "debate":
        for round_ in range(1, request.rounds + 1):
            calls = []
            for a in answers:
                others = [(b.agent, b.text) for b in answers if b.agent != a.agent]
                system, messages = prompts.debate_turn(task, a.agent, n, a.text, others, round_)
                calls.append(Call(f"agent-{a.agent}-r{round_}", request.model, system, messages, max_tokens))
            replies = await ledger.all(calls)
            answers[:] = [Answer(a.agent, r.text, r.output_tokens) for a, r in zip(answers, replies, strict=True)]
    system, messages = prompts.synthesis(task, [a.text for a in answers])
    return (await ledger.call(Call("synthesis", request.model, system, messages, max_tokens))).text
