"""The LLM judge: structured output through tool use, a score per criterion and a reason.

The judge is made to call one tool whose input schema asks for a score in [0, 1] per
criterion and a reason; `parse_judgement` accepts that input or raises `JudgeError` (the
caller asks once more, then reports the run `partial`; a made-up score is never used).

>>> tool = judge_tool(("correctness", "clarity"))
>>> tool["input_schema"]["properties"]["scores"]["required"]
['correctness', 'clarity']
>>> j = parse_judgement({"scores": {"correctness": 0.9, "clarity": 0.7}, "reason": "sound"}, ("correctness", "clarity"))
>>> j.quality, j.reason
(0.8, 'sound')
>>> parse_judgement({"scores": {"correctness": 1.5}, "reason": "x"}, ("correctness",))
Traceback (most recent call last):
...
resontinex.agents.coordination.exceptions.JudgeError: scores.correctness: must be a number in [0, 1], got 1.5
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .exceptions import JudgeError

__all__ = ["JUDGE_TOOL_NAME", "Judgement", "judge_messages", "judge_system", "judge_tool", "parse_judgement"]

JUDGE_TOOL_NAME = "record_judgement"


@dataclass(frozen=True, slots=True)
class Judgement:
    scores: Mapping[str, float]
    reason: str

    @property
    def quality(self) -> float:
        """The mean of the criteria's scores."""
        return round(math.fsum(self.scores.values()) / len(self.scores), 12)


def judge_tool(criteria: Sequence[str]) -> dict[str, Any]:
    """The tool the judge must call (Messages API `tools` entry)."""
    return {
        "name": JUDGE_TOOL_NAME,
        "description": "Record your judgement of the answer: a score from 0 (worst) to 1 (best) for each "
                       "criterion, and the reason for the scores.",
        "input_schema": {
            "type": "object",
            "properties": {
                "scores": {
                    "type": "object",
                    "properties": {c: {"type": "number", "minimum": 0, "maximum": 1} for c in criteria},
                    "required": list(criteria),
                    "additionalProperties": False,
                },
                "reason": {"type": "string", "minLength": 1},
            },
            "required": ["scores", "reason"],
        },
    }


def judge_system(criteria: Sequence[str]) -> str:
    return ("You are a strict, impartial judge of answers to tasks. Judge only the answer you are given, "
            f"on these criteria: {', '.join(criteria)}. Call the {JUDGE_TOOL_NAME} tool exactly once.")


def judge_messages(task: str, answer: str) -> tuple[dict[str, str], ...]:
    return ({"role": "user", "content": f"Task:\n{task}\n\nAnswer to judge:\n{answer}"},)


def parse_judgement(tool_input: Any, criteria: Sequence[str]) -> Judgement:
    """The judgement in a judge's tool input; `JudgeError` naming what is wrong otherwise."""
    if not isinstance(tool_input, Mapping):
        raise JudgeError(f"the judge's reply holds no {JUDGE_TOOL_NAME} call with an object input")
    scores, reason = tool_input.get("scores"), tool_input.get("reason")
    if not isinstance(scores, Mapping):
        raise JudgeError("scores: missing or not an object")
    if not isinstance(reason, str) or not reason.strip():
        raise JudgeError("reason: missing or empty")
    parsed: dict[str, float] = {}
    for c in criteria:
        value = scores.get(c)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise JudgeError(f"scores.{c}: must be a number in [0, 1], got {value!r}")
        parsed[c] = float(value)
    return Judgement(parsed, reason.strip())
