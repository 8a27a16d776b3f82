"""The policy interface, in two layers.

`RoutingPolicy` is what the agent calls: `choose` a provider among the feasible ones
(with the exact, or for Thompson sampling estimated, probability of that choice),
`probabilities` of every choice (for off-policy evaluation), `update` with a reward into
a *new* policy, and `to_dict`/`from_dict` as plain JSON for a Faust table.

`TabularPolicy` keeps one arm per (state key, provider) in a copy-on-write table and
implements everything but the arithmetic of one arm; each concrete policy supplies that
(`fresh_arm`, `learn`, `arm_value`, arm (de)serialisation) and its choice rule.

A policy is immutable: `update` returns a new one sharing every unchanged row. Don't
mutate `arms` in place.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Generic, Literal, Self, TypeVar

import numpy as np

from . import _codec as codec
from ._config import PolicyName, RoutingConfig
from ._inputs import PsiLike
from .exceptions import RouterError, TableError

ChoiceMode = Literal["explore", "exploit"]
FeatureMap = Mapping[str, Sequence[float]]
"""provider_id → feature vector (`features_by_provider`); only LinUCB reads it."""


@dataclass(frozen=True, slots=True)
class Choice:
    """One routing choice (CONTRACT §3.2 `route` minus `violations`).

    `propensity` is the probability that the policy, in the state it was in, chooses
    `provider_id` among the same candidates: the figure off-policy evaluation divides by.
    `q_value` is the policy's value estimate of the choice in reward units (None when it
    has none yet).
    """

    provider_id: str
    mode: ChoiceMode
    q_value: float | None
    propensity: float
    policy: PolicyName


def candidate_ids(providers: Iterable[str]) -> tuple[str, ...]:
    """The distinct provider ids, sorted: every policy's canonical order (ties go to the
    first, and the same set chooses the same way whatever order it arrived in).

    >>> candidate_ids(["vast", "akash", "vast"])
    ('akash', 'vast')
    """
    ids = set(providers)
    for pid in ids:
        if not isinstance(pid, str) or not pid:
            raise RouterError(f"a provider id must be a non-empty string, got {pid!r}")
    if not ids:
        raise RouterError("no providers to choose from: screen first (no candidates means defer)")
    return tuple(sorted(ids))


def first_max(scores: Sequence[float]) -> int:
    """Index of the largest score; the first on a tie (deterministic tie-break).

    >>> first_max([1.0, 3.0, 3.0])
    1
    """
    best = 0
    for i in range(1, len(scores)):
        if scores[i] > scores[best]:
            best = i
    return best


def check_reward(reward: float) -> float:
    if isinstance(reward, bool) or not isinstance(reward, int | float) or not math.isfinite(reward):
        raise RouterError(f"reward must be a finite number, got {reward!r}")
    return float(reward)


def one_hot(ids: Sequence[str], chosen: str) -> dict[str, float]:
    return {pid: 1.0 if pid == chosen else 0.0 for pid in ids}


class RoutingPolicy(ABC):
    """A routing policy with pure, serialisable state.

    `rng` is a `numpy.random.Generator`; the same policy state, arguments and generator
    state give the same choice (see `decision_rng`). `psi` damps exploration
    (`exploration_scale`). `features` maps provider ids to feature vectors; policies
    other than LinUCB ignore it.
    """

    __slots__ = ()
    name: ClassVar[PolicyName]
    cfg: RoutingConfig

    @abstractmethod
    def choose(self, state_key: str, providers: Iterable[str], features: FeatureMap | None,
               psi: PsiLike | None, rng: np.random.Generator) -> Choice:
        """Choose one of `providers` (the feasible ones; at least one)."""

    @abstractmethod
    def probabilities(self, state_key: str, providers: Iterable[str], features: FeatureMap | None,
                      psi: PsiLike | None, rng: np.random.Generator) -> dict[str, float]:
        """The probability of choosing each of `providers` (summing to 1)."""

    @abstractmethod
    def update(self, state_key: str, provider_id: str, reward: float,
               features: Sequence[float] | None = None) -> Self:
        """The policy after `provider_id`, chosen in `state_key`, earned `reward`."""

    @abstractmethod
    def value(self, state_key: str, provider_id: str) -> float | None:
        """The value estimate of a provider in a state, in reward units (None: none yet)."""

    @abstractmethod
    def values(self) -> dict[str, dict[str, float | None]]:
        """Every known state's value estimates: state key → provider → value."""

    @abstractmethod
    def observations(self, state_key: str, provider_id: str) -> int:
        """How many rewards the provider has been updated with in that state."""

    @property
    def epsilon(self) -> float | None:
        """The current exploration rate (ε-greedy only; None for the others)."""
        return None

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """The learned state as plain JSON types (no configuration)."""

    @classmethod
    @abstractmethod
    def from_state_dict(cls, data: object, cfg: RoutingConfig, path: str = "state") -> Self:
        """Rebuild from `state_dict()`; a bad value raises `TableError` naming its path."""

    @classmethod
    @abstractmethod
    def fresh(cls, cfg: RoutingConfig) -> Self:
        """A policy that has learned nothing."""


ArmT = TypeVar("ArmT")


class TabularPolicy(RoutingPolicy, Generic[ArmT]):
    """Per (state key, provider) arms: `arms[state_key][provider_id]`.

    Subclasses are frozen dataclasses with the fields `cfg` and `arms` (plus their own).
    """

    __slots__ = ()
    arms: Mapping[str, Mapping[str, ArmT]]

    # -- the arithmetic of one arm ----------------------------------------------------
    @abstractmethod
    def fresh_arm(self) -> ArmT:
        """An arm never updated."""

    @abstractmethod
    def learn(self, arm: ArmT, reward: float, features: Sequence[float] | None) -> ArmT:
        """The arm after one reward."""

    @abstractmethod
    def arm_value(self, arm: ArmT) -> float | None:
        """The arm's value estimate (for `value`, status and anomaly detection)."""

    @abstractmethod
    def arm_count(self, arm: ArmT) -> int:
        """How many rewards the arm has seen."""

    @abstractmethod
    def arm_to_dict(self, arm: ArmT) -> dict[str, Any]:
        """An arm as plain JSON types."""

    @classmethod
    @abstractmethod
    def arm_from_dict(cls, data: object, cfg: RoutingConfig, path: str) -> ArmT:
        """An arm back from `arm_to_dict`; `TableError` names the path of a bad value."""

    # -- the table ---------------------------------------------------------------------
    def arm(self, state_key: str, provider_id: str) -> ArmT:
        """The arm of a provider in a state (a fresh one when never updated)."""
        row = self.arms.get(state_key)
        found = None if row is None else row.get(provider_id)
        return self.fresh_arm() if found is None else found

    def with_arm(self, state_key: str, provider_id: str, arm: ArmT) -> Self:
        """A copy with one arm replaced (the other rows are shared, not copied)."""
        row = {**self.arms.get(state_key, {}), provider_id: arm}
        return replace(self, arms={**self.arms, state_key: row})  # type: ignore[type-var]

    def update(self, state_key: str, provider_id: str, reward: float,
               features: Sequence[float] | None = None) -> Self:
        if not isinstance(state_key, str) or not isinstance(provider_id, str) or not provider_id:
            raise RouterError(f"state key and provider id must be strings, got {state_key!r}, {provider_id!r}")
        arm = self.learn(self.arm(state_key, provider_id), check_reward(reward), features)
        return self.with_arm(state_key, provider_id, arm)

    def value(self, state_key: str, provider_id: str) -> float | None:
        return self.arm_value(self.arm(state_key, provider_id))

    def values(self) -> dict[str, dict[str, float | None]]:
        return {s: {p: self.arm_value(a) for p, a in sorted(row.items())} for s, row in sorted(self.arms.items())}

    def observations(self, state_key: str, provider_id: str) -> int:
        return self.arm_count(self.arm(state_key, provider_id))

    # -- serialisation -------------------------------------------------------------------
    def extra_state(self) -> dict[str, Any]:
        """Learned state beyond the arms (ε-greedy's ε)."""
        return {}

    @classmethod
    def extra_from_dict(cls, data: Mapping[str, Any], cfg: RoutingConfig, path: str) -> dict[str, Any]:
        """Constructor arguments for `extra_state()`'s keys."""
        return {}

    extra_keys: ClassVar[tuple[str, ...]] = ()

    def state_dict(self) -> dict[str, Any]:
        arms = {s: {p: self.arm_to_dict(a) for p, a in sorted(row.items())} for s, row in sorted(self.arms.items())}
        return {**self.extra_state(), "arms": arms}

    @classmethod
    def from_state_dict(cls, data: object, cfg: RoutingConfig, path: str = "state") -> Self:
        body = codec.mapping(data, path, required=("arms",), allowed=("arms", *cls.extra_keys))
        arms_path = codec.child(path, "arms")
        arms: dict[str, dict[str, ArmT]] = {}
        for state_key, row in codec.mapping(body["arms"], arms_path).items():
            row_path = codec.child(arms_path, state_key)
            if state_key.count(":") != 2:
                raise TableError(row_path, "a state key has three ':'-separated parts "
                                           "(workload_type:gpu_type:region)")
            arms[state_key] = {pid: cls.arm_from_dict(raw, cfg, codec.child(row_path, pid))
                               for pid, raw in codec.mapping(row, row_path).items()}
        return cls(cfg=cfg, arms=arms, **cls.extra_from_dict(body, cfg, path))  # type: ignore[call-arg]

    @classmethod
    def fresh(cls, cfg: RoutingConfig) -> Self:
        return cls(cfg=cfg)  # type: ignore[call-arg]


def running_mean(mean: float, n: int, reward: float) -> float:
    """The mean of n values and one more (n is the count before)."""
    return mean + (reward - mean) / (n + 1)
