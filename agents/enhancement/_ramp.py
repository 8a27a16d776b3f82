"""The ramp of a policy enhancement (`trust_policy`, `routing_policy`), judged on decision outcomes.

Seed 001's rollout, on the stream: the candidate first runs in shadow (share 0: the
current policy decides, the candidate's verdict is recorded), then decides a growing share
of the tenant's requests (`steps`, e.g. 10 % → 50 % → 100 %). At each step the outcomes of
the decisions made *in that step* are tallied per arm:

- **labels**: an outcome's `label` says whether executing was the right call; a verdict
  is correct when (verb == execute) == label. In shadow both arms are judged on the same
  outcomes by the verdict of the part under canary alone (the trust gate's, or whether
  the router found a provider; the candidate by the one it would have given: the parts
  it did not run do not tilt the comparison);
- **success**: of the decisions an arm executed, the share whose outcome succeeded (not in
  shadow: the candidate executed nothing).

A step passes once each arm has `min_outcomes` labelled outcomes and neither rate of the
candidate is worse than the current one's by more than `max_drop` with significance
(Fisher's exact test, one-sided, p < `alpha`); it fails when one is. Pass: the next step
(the last makes the candidate the tenant's policy: `full`). Fail: rolled back.

>>> r = Ramp.start((0.0, 0.5, 1.0), since=0.0)
>>> good = [{"outcome_id": f"o{i}", "arm": "current", "step": 0, "verb": "execute", "shadow_verb": "execute",
...          "label": True, "success": True} for i in range(30)]
>>> r = r.add(good)
>>> r.tallies["candidate"].labelled, r.judge(RampSettings(min_outcomes=30)).verdict
(30, 'pass')
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from .exceptions import ConfigError

__all__ = ["Ramp", "RampJudgement", "RampSettings", "Tally", "ramp_steps"]

SEEN_KEPT = 5_000
"""Decision ids remembered per step: a decision's outcome counts once, however often it is
redelivered or reported again."""


@dataclass(frozen=True, slots=True)
class RampSettings:
    steps: tuple[float, ...] = (0.0, 0.1, 0.5, 1.0)
    min_outcomes: int = 30
    max_drop: float = 0.05
    alpha: float = 0.05

    def __post_init__(self) -> None:
        s = self.steps
        if not s or s[-1] != 1.0 or any(b <= a for a, b in zip(s, s[1:])) or s[0] < 0:
            raise ConfigError("policy.steps", f"must rise strictly from 0 or more to 1.0, got {list(s)}")


def ramp_steps(canary_share: float, settings: RampSettings) -> tuple[float, ...]:
    """The steps of a submission: shadow if the settings start with it, then its
    `canary_share`, then the settings' larger steps.

    >>> ramp_steps(0.2, RampSettings()), ramp_steps(1.0, RampSettings(steps=(0.1, 1.0)))
    ((0.0, 0.2, 0.5, 1.0), (1.0,))
    """
    shadow = (0.0,) if settings.steps[0] == 0.0 and canary_share < 1.0 else ()
    first = canary_share if canary_share > 0 else next(s for s in settings.steps if s > 0)
    return (*shadow, first, *(s for s in settings.steps if s > first))


@dataclass(frozen=True, slots=True)
class Tally:
    labelled: int = 0
    correct: int = 0
    executed: int = 0
    succeeded: int = 0

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.labelled if self.labelled else None

    @property
    def success(self) -> float | None:
        return self.succeeded / self.executed if self.executed else None

    def counted(self, verb: str | None, label: bool | None, success: bool | None) -> Tally:
        executed = verb == "execute"
        t = self
        if label is not None and verb is not None:
            t = replace(t, labelled=t.labelled + 1, correct=t.correct + (executed == label))
        if executed and success is not None:
            t = replace(t, executed=t.executed + 1, succeeded=t.succeeded + success)
        return t


@dataclass(frozen=True, slots=True)
class RampJudgement:
    verdict: Literal["wait", "pass", "fail"]
    reason: str
    evidence: dict[str, Any] = field(repr=False)


@dataclass(frozen=True, slots=True)
class Ramp:
    steps: tuple[float, ...]
    step: int
    since: float
    tallies: Mapping[str, Tally] = field(default_factory=lambda: {"current": Tally(), "candidate": Tally()})
    seen: tuple[str, ...] = ()
    activation: int = 0
    """Which activation of the enhancement this ramp is (an outcome of an earlier one does not count)."""

    @classmethod
    def start(cls, steps: Sequence[float], since: float, activation: int = 0) -> Ramp:
        return cls(tuple(steps), 0, since, activation=activation)

    @property
    def share(self) -> float:
        return self.steps[self.step]

    @property
    def shadow(self) -> bool:
        return self.share == 0.0

    @property
    def last(self) -> bool:
        return self.step == len(self.steps) - 1

    def next(self, now: float) -> Ramp:
        return Ramp(self.steps, self.step + 1, now, activation=self.activation)

    def add(self, outcomes: Iterable[Mapping[str, Any]]) -> Ramp:
        """With the outcomes of this step's decisions counted (others, and repeats, ignored)."""
        tallies, seen = dict(self.tallies), list(self.seen)
        known = set(seen)
        for o in outcomes:
            key = o.get("decision_id") or o["outcome_id"]
            if o["step"] != self.step or o.get("activation", 0) != self.activation or key in known:
                continue
            known.add(key)
            seen.append(key)
            if self.shadow:  # both judged by the part under canary alone, on the same requests
                # (`trust_verb`: what an outcome fed before routing canaries called `part_verb`)
                part_verb = o.get("part_verb") or o.get("trust_verb") or o["verb"]
                tallies["current"] = tallies["current"].counted(part_verb, o["label"], o["success"])
                tallies["candidate"] = tallies["candidate"].counted(o["shadow_verb"], o["label"], None)
            else:
                tallies[o["arm"]] = tallies[o["arm"]].counted(o["verb"], o["label"], o["success"])
        return replace(self, tallies=tallies, seen=tuple(seen[-SEEN_KEPT:]))

    def judge(self, s: RampSettings, tolerance: float = 1e-9) -> RampJudgement:
        cur, cand = self.tallies["current"], self.tallies["candidate"]
        evidence: dict[str, Any] = {"step": self.step, "share": self.share,
                                    "tallies": {arm: {**asdict(t), "accuracy": t.accuracy, "success": t.success}
                                                for arm, t in self.tallies.items()},
                                    "min_outcomes": s.min_outcomes, "max_drop": s.max_drop, "alpha": s.alpha}
        if min(cur.labelled, cand.labelled) < s.min_outcomes:
            return RampJudgement("wait", f"{min(cur.labelled, cand.labelled)} of {s.min_outcomes} labelled outcomes "
                                         "per arm", evidence)
        worse = []
        for name, (a, n_a), (b, n_b) in (("accuracy", (cur.correct, cur.labelled), (cand.correct, cand.labelled)),
                                         ("success", (cur.succeeded, cur.executed), (cand.succeeded, cand.executed))):
            if not n_a or not n_b:
                continue
            drop = a / n_a - b / n_b
            p = _fisher_greater(a, n_a - a, b, n_b - b)
            evidence[name] = {"current": a / n_a, "candidate": b / n_b, "drop": drop, "p_value": p}
            if drop > s.max_drop + tolerance and p < s.alpha:
                worse.append(f"{name} {b / n_b:.3f} against {a / n_a:.3f} (p={p:.2g})")
        if worse:
            return RampJudgement("fail", "the candidate is worse: " + "; ".join(worse), evidence)
        return RampJudgement("pass", f"step {self.step} ({self.share:.0%}) held: "
                                     f"accuracy {cand.accuracy:.3f} against {cur.accuracy:.3f}", evidence)

    def as_dict(self) -> dict[str, Any]:
        return {"steps": list(self.steps), "step": self.step, "since": self.since, "activation": self.activation,
                "tallies": {arm: asdict(t) for arm, t in self.tallies.items()}, "seen": list(self.seen)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Ramp:
        return cls(tuple(d["steps"]), d["step"], d["since"], {arm: Tally(**t) for arm, t in d["tallies"].items()},
                   tuple(d["seen"]), d.get("activation", 0))


def _fisher_greater(a_yes: int, a_no: int, b_yes: int, b_no: int) -> float:
    """One-sided p that arm a's rate is greater than arm b's."""
    from scipy.stats import fisher_exact  # half a second to import: not at every worker's start

    import numpy as np

    table = np.array([[a_yes, a_no], [b_yes, b_no]], dtype=np.int64)
    return float(fisher_exact(table, alternative="greater").pvalue)
