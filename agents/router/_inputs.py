"""What the router reads from a request (CONTRACT §3.1 `routing`, `psi`) and the state key.

The functions take anything with the right attributes: the pydantic models of
`schemas` (`RoutingContext`, `Provider`, `Constraints`, `Psi`) as the agent decodes them,
or the frozen dataclasses here (`from_mapping` builds them from plain JSON).

>>> ctx = WorkloadContext(workload_type="llm_inference", gpu_type="a100", region="us-west", gpu_hours=2.0)
>>> state_key(ctx), state_key(None), state_key(WorkloadContext(workload_type="a:b"))
('llm_inference:a100:us-west', '*:*:*', 'a%3Ab:*:*')
>>> parse_state_key('a%3Ab:*:*')
('a:b', None, None)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from .exceptions import RouterError

ANY: Final = "*"
"""A state-key part the context leaves out."""


class ContextLike(Protocol):
    """The workload to place (`routing.context`)."""

    @property
    def workload_type(self) -> str | None: ...
    @property
    def gpu_type(self) -> str | None: ...
    @property
    def region(self) -> str | None: ...
    @property
    def gpu_hours(self) -> float | None: ...


class ProviderLike(Protocol):
    """One candidate provider (`routing.providers[]`)."""

    @property
    def provider_id(self) -> str: ...
    @property
    def price_usd_per_hour(self) -> float: ...
    @property
    def latency_ms(self) -> float: ...
    @property
    def reputation(self) -> float: ...
    @property
    def capacity_available(self) -> float | None: ...
    @property
    def gpu_types(self) -> Sequence[str]: ...
    @property
    def regions(self) -> Sequence[str]: ...


class ConstraintsLike(Protocol):
    """Limits a provider must meet (`routing.constraints`)."""

    @property
    def max_price(self) -> float | None: ...
    @property
    def max_latency_ms(self) -> float | None: ...
    @property
    def min_reputation(self) -> float | None: ...


class PsiLike(Protocol):
    """The Ψ reading of a request (`psi`); only `density` steers exploration."""

    @property
    def density(self) -> float: ...


def _pick(raw: Mapping[str, Any], names: tuple[str, ...], what: str) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise RouterError(f"{what} must be a mapping, got {type(raw).__name__}")
    return {name: raw[name] for name in names if name in raw}


@dataclass(frozen=True, slots=True)
class WorkloadContext:
    """`routing.context` (seed 002's `WorkloadContext`)."""

    workload_type: str | None = None
    gpu_type: str | None = None
    region: str | None = None
    gpu_hours: float | None = None

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> WorkloadContext:
        return cls(**_pick(raw, ("workload_type", "gpu_type", "region", "gpu_hours"), "routing.context"))


@dataclass(frozen=True, slots=True)
class ProviderState:
    """One provider offer (seed 002's `ProviderState`). `capacity_available` None: not
    reported; empty `gpu_types`/`regions`: none declared."""

    provider_id: str
    price_usd_per_hour: float
    latency_ms: float
    reputation: float
    capacity_available: float | None = None
    gpu_types: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> ProviderState:
        values = _pick(raw, ("provider_id", "price_usd_per_hour", "latency_ms", "reputation",
                             "capacity_available", "gpu_types", "regions"), "routing.providers[]")
        for name in ("gpu_types", "regions"):
            if name in values:
                values[name] = tuple(values[name])
        return cls(**values)


@dataclass(frozen=True, slots=True)
class Constraints:
    """`routing.constraints`; None means no limit."""

    max_price: float | None = None
    max_latency_ms: float | None = None
    min_reputation: float | None = None

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> Constraints:
        return cls(**_pick(raw, ("max_price", "max_latency_ms", "min_reputation"), "routing.constraints"))


@dataclass(frozen=True, slots=True)
class PsiReading:
    """`psi`: field state in [0, 1]."""

    density: float
    coherence: float = 0.0
    entropy: float = 0.0


def _part(value: str | None) -> str:
    if value is None or value == "":
        return ANY
    return value.replace("%", "%25").replace(":", "%3A").replace("*", "%2A")


def _unpart(part: str) -> str | None:
    return None if part == ANY else part.replace("%2A", "*").replace("%3A", ":").replace("%25", "%")


def state_key(context: ContextLike | None) -> str:
    """`workload_type:gpu_type:region`, the key of the Q-table row (issue 4).

    A part the context leaves out (None or empty) is `*`; `%`, `:` and `*` inside a
    part are percent-encoded, so the key always has exactly three parts and `parse_state_key`
    inverts it.
    """
    if context is None:
        return f"{ANY}:{ANY}:{ANY}"
    return ":".join(_part(v) for v in (context.workload_type, context.gpu_type, context.region))


def parse_state_key(key: str) -> tuple[str | None, str | None, str | None]:
    """(workload_type, gpu_type, region) of a state key; `*` parts are None.

    >>> parse_state_key("llm:a100")
    Traceback (most recent call last):
    ...
    resontinex.agents.router.exceptions.RouterError: a state key has three ':'-separated parts, got 'llm:a100'
    """
    parts = key.split(":") if isinstance(key, str) else []
    if len(parts) != 3:
        raise RouterError(f"a state key has three ':'-separated parts, got {key!r}")
    workload, gpu, region = (_unpart(p) for p in parts)
    return workload, gpu, region
