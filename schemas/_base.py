"""Field types and base classes shared by every event model.

Validation follows CONTRACT §1: models are strict (a JSON string `"0.5"` or a
boolean is not a number, `1.0` is not an integer; an integer is accepted for a float)
and refuse non-finite floats.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Annotated, Final, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

__all__ = [
    "PATTERN_DESCRIPTIONS",
    "SYSTEM_TENANT",
    "EventId",
    "InputEvent",
    "InputPart",
    "Name",
    "NonNegativeFloat",
    "NonNegativeInt",
    "OutputEvent",
    "OutputPart",
    "Reputation",
    "SchemaVersion",
    "Severity",
    "Sha256Hex",
    "Tier",
    "Timestamp",
    "UnitFloat",
    "Verb",
    "ms_to_ts",
    "ts_to_ms",
]

SYSTEM_TENANT: Final = "_system"
"""The tenant (and key) of alerts and audit records that belong to no tenant."""

Verb = Literal["execute", "review", "defer", "abort"]
Severity = Literal["info", "warning", "critical"]
Tier = Literal["block", "review", "monitor", "pass"]

UnitFloat = Annotated[float, Field(ge=0, le=1)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
Reputation = Annotated[float, Field(ge=0, le=100)]
EventId = Annotated[str, Field(min_length=1, max_length=128)]
# `\S` is searched, not anchored: the name must contain one non-space character.
Name = Annotated[str, Field(min_length=1, max_length=256, pattern=r"\S")]
Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]

_TS_PATTERN: Final = (
    r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt]"
    r"([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?([Zz]|[+-]00:00)$"
)

# Human-readable meaning of each pattern, used by the codec's error messages.
PATTERN_DESCRIPTIONS: Final[dict[str, str]] = {
    r"\S": "must not be blank",
    r"^[0-9a-f]{64}$": "must be 64 lowercase hexadecimal characters (a SHA-256 digest)",
    _TS_PATTERN: "must be an RFC 3339 UTC timestamp such as 2024-05-01T12:00:00Z",
}


def _check_calendar(value: str) -> str:
    # The pattern bounds each field; only day-of-month against the month remains.
    if value[8:10] <= "28":
        return value
    try:
        date(int(value[0:4]), int(value[5:7]), int(value[8:10]))
    except ValueError:
        raise PydanticCustomError("invalid_date", "is not a calendar date") from None
    return value


Timestamp = Annotated[str, Field(pattern=_TS_PATTERN), AfterValidator(_check_calendar)]
SchemaVersion = Annotated[int, Field(ge=1)]

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=timezone.utc)
_STRICT: Final = ConfigDict(strict=True, allow_inf_nan=False)


class InputPart(BaseModel):
    """Base of objects nested in input events: unknown fields are ignored."""

    model_config = ConfigDict(**_STRICT, extra="ignore")


class OutputPart(BaseModel):
    """Base of objects nested in output events: unknown fields are refused."""

    model_config = ConfigDict(**_STRICT, extra="forbid")


class InputEvent(InputPart):
    """Fields every input event has (CONTRACT §1); `ts` may be absent."""

    event_id: EventId
    schema_version: SchemaVersion = 1
    ts: Timestamp | None = None


class OutputEvent(OutputPart):
    """Fields every output event has (CONTRACT §1); the processor always sets `ts`."""

    event_id: EventId
    schema_version: SchemaVersion = 1
    ts: Timestamp


def ts_to_ms(ts: str) -> int:
    """Milliseconds since the Unix epoch of an RFC 3339 timestamp (sub-millisecond
    digits are dropped; a leap second counts as the second before it).

    >>> ts_to_ms("2024-05-01T12:00:00.250Z")
    1714564800250
    """
    text = ts.upper()
    if text[17:19] == "60":
        text = text[:17] + "59" + text[19:]
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp has no UTC offset: {ts!r}")
    # Integer arithmetic: float seconds would lose milliseconds far from the epoch.
    delta = parsed - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def ms_to_ts(ms: int) -> str:
    """The RFC 3339 UTC timestamp (millisecond precision) of a Unix time in milliseconds,
    e.g. a Kafka record timestamp.

    >>> ms_to_ts(1714564800250)
    '2024-05-01T12:00:00.250Z'
    """
    seconds, millis = divmod(ms, 1000)
    moment = datetime.fromtimestamp(seconds, tz=timezone.utc)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{millis:03d}Z"
