"""Constraint checks (seed 002's Auditor): six violation types, strict and lenient screening.

A provider breaks a constraint when (limits are inclusive: equal is fine):

| type | when |
| --- | --- |
| `price_exceeded` | `price_usd_per_hour > constraints.max_price` |
| `latency_exceeded` | `latency_ms > constraints.max_latency_ms` |
| `reputation_too_low` | `reputation < constraints.min_reputation` |
| `region_mismatch` | `context.region` is set and not in `regions` (an empty list declares none) |
| `gpu_unavailable` | `context.gpu_type` is set and not in `gpu_types` (an empty list declares none) |
| `capacity_insufficient` | `capacity_available < context.gpu_hours` (an unreported capacity is not judged) |

Price, latency and reputation are *soft* (the workload could run there, over a limit);
region, GPU and capacity are *hard* (it cannot). Seed 002 names the first two types
(`PRICE_EXCEEDED`, `LATENCY_EXCEEDED`, reported as `price_exceeded`, ...); the other four
follow the same pattern for the other four checks it lists.

>>> from resontinex.agents.router import ProviderState
>>> offer = ProviderState("akash", 3.5, 120, 95, 100, ("a100",), ("us-west",))
>>> ctx = WorkloadContext("llm", "a100", "eu-central", 2.0)
>>> [v.type.value for v in check(offer, ctx, Constraints(max_price=3.0))]
['price_exceeded', 'region_mismatch']
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from ._config import Mode
from ._inputs import Constraints, ConstraintsLike, ContextLike, ProviderLike, WorkloadContext
from .exceptions import RouterError


class ViolationType(StrEnum):
    """The six ways a provider can break a request's constraints (seed 002)."""

    PRICE_EXCEEDED = "price_exceeded"
    LATENCY_EXCEEDED = "latency_exceeded"
    REPUTATION_TOO_LOW = "reputation_too_low"
    REGION_MISMATCH = "region_mismatch"
    GPU_UNAVAILABLE = "gpu_unavailable"
    CAPACITY_INSUFFICIENT = "capacity_insufficient"


VIOLATION_TYPES: Final[tuple[ViolationType, ...]] = tuple(ViolationType)
SOFT: Final[frozenset[ViolationType]] = frozenset(
    {ViolationType.PRICE_EXCEEDED, ViolationType.LATENCY_EXCEEDED, ViolationType.REPUTATION_TOO_LOW})
"""Violations lenient mode tolerates (flags); the other three always exclude a provider."""


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken constraint: what the provider offers (`actual`) against the `limit`."""

    type: ViolationType
    provider_id: str
    limit: float | str
    actual: float | tuple[str, ...]

    @property
    def soft(self) -> bool:
        return self.type in SOFT

    def message(self) -> str:
        """
        >>> Violation(ViolationType.PRICE_EXCEEDED, "akash", 3.0, 3.5).message()
        'akash: price_exceeded (3.5 against the limit 3)'
        >>> Violation(ViolationType.GPU_UNAVAILABLE, "akash", "h100", ("a100", "t4")).message()
        'akash: gpu_unavailable (h100 wanted; offers a100, t4)'
        """
        if isinstance(self.limit, str):
            offers = ", ".join(self.actual) if isinstance(self.actual, tuple) and self.actual else "none"
            return f"{self.provider_id}: {self.type.value} ({self.limit} wanted; offers {offers})"
        actual = float(self.actual) if isinstance(self.actual, int | float) else math.nan
        return f"{self.provider_id}: {self.type.value} ({actual:g} against the limit {float(self.limit):g})"

    def as_dict(self) -> dict[str, object]:
        actual = list(self.actual) if isinstance(self.actual, tuple) else self.actual
        return {"type": self.type.value, "provider_id": self.provider_id, "limit": self.limit, "actual": actual}


_NO_CONTEXT: Final = WorkloadContext()
_NO_CONSTRAINTS: Final = Constraints()


def check(provider: ProviderLike, context: ContextLike | None,
          constraints: ConstraintsLike | None) -> tuple[Violation, ...]:
    """Every constraint `provider` breaks, in `VIOLATION_TYPES` order (empty: it meets all)."""
    ctx = context if context is not None else _NO_CONTEXT
    lim = constraints if constraints is not None else _NO_CONSTRAINTS
    pid = provider.provider_id
    out: list[Violation] = []
    if lim.max_price is not None and provider.price_usd_per_hour > lim.max_price:
        out.append(Violation(ViolationType.PRICE_EXCEEDED, pid, lim.max_price, provider.price_usd_per_hour))
    if lim.max_latency_ms is not None and provider.latency_ms > lim.max_latency_ms:
        out.append(Violation(ViolationType.LATENCY_EXCEEDED, pid, lim.max_latency_ms, provider.latency_ms))
    if lim.min_reputation is not None and provider.reputation < lim.min_reputation:
        out.append(Violation(ViolationType.REPUTATION_TOO_LOW, pid, lim.min_reputation, provider.reputation))
    if ctx.region and ctx.region not in provider.regions:
        out.append(Violation(ViolationType.REGION_MISMATCH, pid, ctx.region, tuple(provider.regions)))
    if ctx.gpu_type and ctx.gpu_type not in provider.gpu_types:
        out.append(Violation(ViolationType.GPU_UNAVAILABLE, pid, ctx.gpu_type, tuple(provider.gpu_types)))
    capacity = provider.capacity_available
    if ctx.gpu_hours is not None and capacity is not None and capacity < ctx.gpu_hours:
        out.append(Violation(ViolationType.CAPACITY_INSUFFICIENT, pid, ctx.gpu_hours, capacity))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Screening:
    """The providers of one request judged against its constraints.

    `candidates` are the provider ids the policy may choose from, sorted:

    - `strict`: the `compliant` providers (no violation at all). A provider that breaks
      any constraint is rejected.
    - `lenient`: the `compliant` providers when there is at least one; otherwise the
      providers whose violations are all soft (price, latency, reputation), each of
      which is then *flagged*: routing to it is allowed and its violations are reported.
      A provider with a hard violation (region, GPU, capacity) is never a candidate.

    Empty `candidates` (no providers offered, or none feasible) means there is no route:
    the caller answers `defer` with a `no_feasible_provider` alert (`RouteDecision` does).
    `violations` holds every provider with at least one violation, by id.
    `duplicates` lists provider ids offered more than once (only the first offer counts).
    """

    mode: Mode
    offered: tuple[str, ...]
    compliant: tuple[str, ...]
    candidates: tuple[str, ...]
    violations: Mapping[str, tuple[Violation, ...]]
    duplicates: tuple[str, ...] = ()

    @property
    def feasible(self) -> bool:
        return bool(self.candidates)

    @property
    def flagged(self) -> bool:
        """The candidates break (soft) constraints: lenient mode's fallback."""
        return bool(self.candidates) and not self.compliant

    def violations_of(self, provider_id: str) -> tuple[Violation, ...]:
        return self.violations.get(provider_id, ())

    def all_violations(self) -> Iterable[Violation]:
        for pid in self.offered:
            yield from self.violations.get(pid, ())

    def violation_types(self) -> tuple[ViolationType, ...]:
        """The distinct types broken by any offered provider, in `VIOLATION_TYPES` order."""
        seen = {v.type for v in self.all_violations()}
        return tuple(t for t in VIOLATION_TYPES if t in seen)


def screen(providers: Iterable[ProviderLike], context: ContextLike | None,
           constraints: ConstraintsLike | None, mode: Mode) -> Screening:
    """Judge every provider and pick the candidates (see `Screening`).

    >>> from resontinex.agents.router import ProviderState
    >>> offers = [ProviderState("a", 2.0, 100, 90, gpu_types=("a100",)),
    ...           ProviderState("b", 4.0, 100, 90, gpu_types=("a100",)),
    ...           ProviderState("c", 1.0, 100, 90, gpu_types=("t4",))]
    >>> ctx, limits = WorkloadContext(gpu_type="a100"), Constraints(max_price=3.0)
    >>> screen(offers, ctx, limits, "strict").candidates
    ('a',)
    >>> screen(offers[1:], ctx, limits, "strict").candidates, screen(offers[1:], ctx, limits, "lenient").candidates
    ((), ('b',))
    """
    if mode not in ("strict", "lenient"):
        raise RouterError(f"mode must be strict or lenient, got {mode!r}")
    seen: dict[str, ProviderLike] = {}
    duplicates: list[str] = []
    for provider in providers:
        pid = provider.provider_id
        if pid in seen:
            duplicates.append(pid)
        else:
            seen[pid] = provider
    violations = {pid: found for pid, p in seen.items() if (found := check(p, context, constraints))}
    offered = tuple(sorted(seen))
    compliant = tuple(pid for pid in offered if pid not in violations)
    candidates = compliant
    if not compliant and mode == "lenient":
        candidates = tuple(pid for pid in offered if all(v.soft for v in violations[pid]))
    return Screening(mode, offered, compliant, candidates, violations, tuple(sorted(set(duplicates))))

