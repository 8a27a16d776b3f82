"""An enhancement's record and its lifecycle (CONTRACT §3.10).

    pending → validated | rejected;  validated → active (canary, then full)
    active → deactivated → cooldown → active | permanently_disabled;  any → retired

`move` makes one transition and returns the record after it with its `enhancement-events`
value; a transition the lifecycle does not allow raises `EnhancementError`. Event ids are
derived from the enhancement and its transition count, so a transition made again after a
redelivery has the same id.

>>> e = Enhancement.new("e1", "acme", "prompt", "semi_automatic", now=0.0)
>>> t = move(e, "pending", "submitted", "received", {}, now=0.0)
>>> t.event["from_state"], t.event["to_state"], t.enhancement.transitions
(None, 'pending', 1)
>>> move(t.enhancement, "active", "x", "", {}, now=1.0)
Traceback (most recent call last):
...
resontinex.agents.enhancement.exceptions.EnhancementError: enhancement e1: pending → active is not a transition of the lifecycle
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Final

from resontinex.agents.events import derived_id
from resontinex.schemas import ms_to_ts

from .exceptions import EnhancementError

__all__ = ["ALERTS", "Awaiting", "Enhancement", "TRANSITIONS", "Transition", "finite", "move"]

TRANSITIONS: Final[Mapping[str | None, frozenset[str]]] = {
    None: frozenset({"pending"}),
    "pending": frozenset({"validated", "rejected", "retired"}),
    "validated": frozenset({"active", "retired"}),
    "rejected": frozenset({"retired"}),
    "active": frozenset({"active", "deactivated", "retired"}),  # active → active: canary promoted to full
    "deactivated": frozenset({"cooldown", "permanently_disabled", "retired"}),
    "cooldown": frozenset({"active", "retired"}),
    "permanently_disabled": frozenset({"retired"}),
    "retired": frozenset(),
}
ALERTS: Final[Mapping[str, tuple[str, str]]] = {
    "rejected": ("enhancement_rejected", "warning"),
    "deactivated": ("enhancement_deactivated", "warning"),
    "permanently_disabled": ("enhancement_disabled", "critical"),
}
"""The alert (kind, severity) a transition into a state raises; a critical deactivation is critical."""


@dataclass(frozen=True, slots=True)
class Awaiting:
    """A transition the mode holds until an operator approves it."""

    to_state: str
    code: str
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    cooldown_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Enhancement:
    """What the `enhancement-state` table keeps per enhancement (its submission, its state,
    the monitor's count, its cooldown)."""

    enhancement_id: str
    tenant: str
    kind: str
    mode: str
    submitted_at: float
    submission: dict[str, Any] = field(default_factory=dict, repr=False)
    state: str | None = None
    phase: str | None = None
    share: float | None = None
    deactivations: int = 0
    consecutive: int = 0
    cooldown_until: float | None = None
    activated_at: float | None = None
    awaiting: Awaiting | None = None
    transitions: int = 0
    monitored_upto: float | None = None
    judged_at: float | None = None
    judgement: dict[str, Any] | None = field(default=None, repr=False)
    preflight: dict[str, Any] | None = field(default=None, repr=False)
    commands: tuple[str, ...] = ()
    """The event ids of the last operator commands applied (a redelivered one is dropped)."""
    ramp: dict[str, Any] | None = field(default=None, repr=False)
    """A policy enhancement's ramp (`_ramp.Ramp.as_dict`) while it is active."""
    closes_at: float | None = None
    """When the earliest open window of its series closes: the tick reads the series only then."""

    @classmethod
    def new(cls, enhancement_id: str, tenant: str, kind: str, mode: str, *, now: float,
            submission: dict[str, Any] | None = None) -> Enhancement:
        return cls(enhancement_id, tenant, kind, mode, now, submission or {})

    def as_dict(self) -> dict[str, Any]:
        """The record as JSON types. Its nested values are shared, not copied: a record is
        never changed in place (a change is a new one, `move`/`replace`), and a tick writes
        back every record it reads, where a deep copy was a third of its time."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["awaiting"] = None if self.awaiting is None else asdict(self.awaiting)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Enhancement:
        awaiting = d.get("awaiting")
        return cls(**{**d, "awaiting": Awaiting(**awaiting) if awaiting else None,
                      "commands": tuple(d.get("commands", ()))})

    def status(self) -> dict[str, Any]:
        """What `list`/`show` and `/enhancements/status` show (the submission without its payload)."""
        d = self.as_dict()
        d["submission"] = {k: v for k, v in self.submission.items() if k != "payload"}
        if self.ramp is not None:
            d["ramp"] = {k: v for k, v in self.ramp.items() if k != "seen"}
        for key in ("submitted_at", "cooldown_until", "activated_at", "monitored_upto", "judged_at", "closes_at"):
            if d[key] is not None:
                d[key] = ms_to_ts(round(d[key] * 1000))
        return d


def finite(value: Any) -> Any:
    """`value` with every non-finite float as null (an audit record cannot hold them: RFC 8785).

    >>> finite({"factor": float("inf"), "n": [1.5, float("nan")]})
    {'factor': None, 'n': [1.5, None]}
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class Transition:
    enhancement: Enhancement
    event: dict[str, Any] = field(repr=False)
    alert: tuple[str, str] | None = None


def move(e: Enhancement, to_state: str, code: str, message: str, evidence: dict[str, Any], *, now: float,
         operator_id: str | None = None, **changes: Any) -> Transition:
    """`e` in `to_state` (with `changes`), its event, and the alert it raises, if any."""
    if to_state not in TRANSITIONS[e.state]:
        raise EnhancementError(f"enhancement {e.enhancement_id}: {e.state or '(new)'} → {to_state} is not a "
                               "transition of the lifecycle")
    after = replace(e, state=to_state, transitions=e.transitions + 1, awaiting=None, **changes)
    active = to_state == "active"
    event = {
        # the transition's count and what it is: one redone after a crash keeps its id, another
        # transition made in its place (more outcomes by then) gets its own
        "event_id": derived_id("ee-", e.enhancement_id, str(after.transitions), to_state, code),
        "schema_version": 1,
        "enhancement_id": e.enhancement_id,
        "tenant": e.tenant,
        "kind": e.kind,
        "from_state": e.state,
        "to_state": to_state,
        "reason": {"code": code, "message": message},
        "evidence": finite(evidence),
        "phase": after.phase if active else None,
        "share": after.share if active else None,
        "deactivations": after.deactivations,
        "cooldown_until": ms_to_ts(round(after.cooldown_until * 1000)) if to_state == "cooldown" and
        after.cooldown_until is not None else None,
        "operator_id": operator_id,
        "ts": ms_to_ts(round(now * 1000)),
    }
    alert = ALERTS.get(to_state)
    if alert and to_state == "deactivated" and code == "critical_regression":
        alert = (alert[0], "critical")
    return Transition(after, event, alert)
