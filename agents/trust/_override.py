"""Break-glass overrides: an operator forces ``execute``, on the record."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ._gate import TrustResult
from ._names import DECISIONS, EXECUTE, TIERS
from .exceptions import InvalidOverride


def _text(name: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidOverride(f"{name} must be a non-empty string, got {value!r}")
    return value.strip()


@dataclass(frozen=True, slots=True)
class OverrideRecord:
    """A validated break-glass override. Every field is checked on construction, however
    the record is built, so a record without operator, reason or timestamp cannot exist.
    """

    operator_id: str
    reason: str
    original_decision: str
    score: float
    raw_score: float
    tier: str
    timestamp: datetime
    request_id: str | None = None
    decision: str = EXECUTE

    def __post_init__(self) -> None:
        object.__setattr__(self, "operator_id", _text("operator_id", self.operator_id))
        object.__setattr__(self, "reason", _text("reason", self.reason))
        if self.request_id is not None:
            object.__setattr__(self, "request_id", _text("request_id", self.request_id))
        if self.decision != EXECUTE:
            raise InvalidOverride(f"an override always decides {EXECUTE!r}, got {self.decision!r}")
        if self.original_decision not in DECISIONS or self.original_decision == EXECUTE:
            raise InvalidOverride(f"nothing to override: original decision is {self.original_decision!r}")
        for name in ("score", "raw_score"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, float) or not 0.0 <= value <= 1.0:
                raise InvalidOverride(f"{name} must be a float in [0, 1], got {value!r}")
        if self.tier not in TIERS:
            raise InvalidOverride(f"unknown tier {self.tier!r}")
        if not isinstance(self.timestamp, datetime) or self.timestamp.utcoffset() is None:
            raise InvalidOverride(f"timestamp must be a timezone-aware datetime, got {self.timestamp!r}")
        object.__setattr__(self, "timestamp", self.timestamp.astimezone(timezone.utc))

    def as_audit_record(self) -> dict[str, Any]:
        """``kind``, ``ts`` and ``record`` of an audit event (CONTRACT section 3.8).

        The audit writer adds ``event_id``, ``seq``, ``tenant``, ``policy_version`` and
        the hash chain.
        """
        return {
            "kind": "override",
            "ts": self.timestamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "record": {
                "request_id": self.request_id,
                "operator_id": self.operator_id,
                "reason": self.reason,
                "original_decision": self.original_decision,
                "decision": self.decision,
                "score": self.score,
                "raw_score": self.raw_score,
                "tier": self.tier,
            },
        }


def break_glass_override(
    result: TrustResult,
    *,
    operator_id: str,
    reason: str,
    request_id: str | None = None,
    now: datetime | None = None,
) -> OverrideRecord:
    """Turn a non-execute ``result`` into ``execute`` on an operator's authority.

    Requires a non-empty ``operator_id`` and ``reason`` (surrounding whitespace is
    stripped) and a result whose decision is not already ``execute``; otherwise raises
    :class:`InvalidOverride`. ``now`` (timezone-aware, default: the current UTC time)
    is the override's timestamp.

    >>> from datetime import datetime, timezone
    >>> from resontinex.agents.trust import InputVector, default_config, evaluate
    >>> result = evaluate(InputVector(0.1, 0.9, 0.5), default_config())
    >>> record = break_glass_override(result, operator_id="ops-lead", reason="incident 42",
    ...                               now=datetime(2025, 1, 1, tzinfo=timezone.utc))
    >>> record.original_decision, record.decision, record.as_audit_record()["ts"]
    ('abort', 'execute', '2025-01-01T00:00:00.000000Z')
    """
    if not isinstance(result, TrustResult):
        raise InvalidOverride(f"result must be a TrustResult, got {type(result).__name__}")
    return OverrideRecord(
        operator_id=operator_id,
        reason=reason,
        original_decision=result.decision,
        score=result.score,
        raw_score=result.raw_score,
        tier=result.tier,
        timestamp=datetime.now(timezone.utc) if now is None else now,
        request_id=request_id,
    )
