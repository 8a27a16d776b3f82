"""What each agent is asked, per strategy (the prompts' wording is versioned: `PROMPT_VERSION`,
part of the baseline cache key).

>>> system, messages = sequential_turn("Name a prime.", 2, 3, ["2"])
>>> "agent 2 of 3" in system, "Agent 1 answered" in messages[0]["content"]
(True, True)
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["PROMPT_VERSION", "Messages", "alone", "debate_turn", "sequential_turn", "synthesis"]

PROMPT_VERSION = "1"

Messages = tuple[dict[str, str], ...]


def _user(content: str) -> Messages:
    return ({"role": "user", "content": content},)


def _team(agent: int, agents: int) -> str:
    return (f"You are agent {agent} of {agents} in a team working on one task. Give your best complete answer; "
            "be concise.")


def alone(task: str) -> tuple[str, Messages]:
    """One agent on the task by itself (a baseline, or a parallel/debate opening answer)."""
    return "You are working on a task by yourself. Give your best complete answer; be concise.", _user(task)


def sequential_turn(task: str, agent: int, agents: int, previous: Sequence[str]) -> tuple[str, Messages]:
    """Agent `agent` (from 1) sees the answers of the agents before it and improves on them."""
    shown = "\n\n".join(f"Agent {i} answered:\n{text}" for i, text in enumerate(previous, start=1))
    body = f"{shown}\n\nImprove on these answers: keep what is right, fix what is wrong.\n\nTask:\n{task}" \
        if previous else f"Task:\n{task}"
    return _team(agent, agents), _user(body)


def debate_turn(task: str, agent: int, agents: int, own: str, others: Sequence[tuple[int, str]],
                round_: int) -> tuple[str, Messages]:
    """Round `round_` of a debate: critique the others' answers, then give a revised answer."""
    shown = "\n\n".join(f"Agent {i} answered:\n{text}" for i, text in others)
    return _team(agent, agents), _user(
        f"Task:\n{task}\n\nYour answer so far:\n{own}\n\n{shown}\n\nRound {round_} of the debate: point out "
        "the mistakes in the other answers and in yours, then give your revised complete answer.")


def synthesis(task: str, answers: Sequence[str]) -> tuple[str, Messages]:
    """One answer from the team's answers."""
    shown = "\n\n".join(f"Agent {i} answered:\n{text}" for i, text in enumerate(answers, start=1))
    return ("You combine a team's answers into one. Give the single best complete answer, drawing on what each "
            "got right.", _user(f"Task:\n{task}\n\n{shown}\n\nWrite the team's final answer."))
