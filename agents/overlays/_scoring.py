"""Scoring a scenario against the overlays, and choosing one (issue 4, item 8).

The rules of seed 000's public reference, counted in integer *points* (hundredths of a
score) so that every sum and cap is exact:

* **category**: +0.6 (60 points) for an overlay listing the scenario's category as
  primary, +0.3 (30) as secondary. The category is normalised first
  (`normalise_category`).
* **complexity**: +0.2 (20) for an overlay listed for the scenario's level: ``high``
  above 0.7, ``low`` at or below 0.4, ``medium`` between (`complexity_level`). No
  complexity, no level.
* **keywords**: +0.05 (5) per distinct trigger of the overlay found in the description
  (whole words, any case; `keyword_hits`), at most +0.2 (20).
* the total is capped at 1 (100).

The chosen overlay has the highest score; equal scores go to the name that sorts first
(code-point order), so the choice never depends on loading order. Its ``confidence``
is its score; ``fallbacks`` are the next two overlays of the ranking whose scores are
strictly above 0.1. When every overlay scores 0 (nothing matches, or no overlay is
loaded) there is no choice: `select_overlay` returns None and the decision's
``overlay`` stays null. Any score above 0 is a choice, however low its confidence.

>>> from resontinex.agents.overlays import load_overlays, PACKAGED_OVERLAYS_DIR
>>> overlays = load_overlays([PACKAGED_OVERLAYS_DIR]).overlays
>>> choice = select_overlay({"category": "financial_operations", "complexity": 0.8,
...                          "description": "Process refund with rollback requirements"}, overlays)
>>> choice.as_dict()
{'name': 'rollback_first', 'confidence': 0.9, 'fallbacks': ['observability_first', 'state_model_first']}
>>> for s in choice.ranking:
...     print(s.name, s.points, s.category_points, s.complexity_points, s.keywords_hit)
rollback_first 90 60 20 ('refund', 'rollback')
observability_first 30 30 0 ()
state_model_first 20 0 20 ()
>>> select_overlay({"category": "gardening", "description": "prune the roses"}, overlays) is None
True
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from numbers import Real
from types import MappingProxyType
from typing import Any, Final

from ._model import Keyword, KeywordIndex, Level, OverlaySet, category_key, words
from .exceptions import ScenarioError

__all__ = [
    "CATEGORY_ALIASES",
    "HIGH_ABOVE",
    "LOW_AT_MOST",
    "WEIGHTS",
    "OverlayChoice",
    "OverlayScore",
    "Scenario",
    "Weights",
    "complexity_level",
    "keyword_hits",
    "normalise_category",
    "rank_overlays",
    "select_overlay",
]

HIGH_ABOVE: Final = 0.7
"""Complexity strictly above this is ``high`` (0.7 itself is not)."""
LOW_AT_MOST: Final = 0.4
"""Complexity at or below this is ``low`` (0.4 itself is)."""

CATEGORY_ALIASES: Final[Mapping[str, str]] = MappingProxyType({
    # financial
    "finance": "financial", "fintech": "financial", "payment": "financial", "payments": "financial",
    "billing": "financial", "refund": "financial", "refunds": "financial", "invoicing": "financial",
    "accounting": "financial", "treasury": "financial",
    # security
    "secops": "security", "infosec": "security", "cybersecurity": "security", "iam": "security",
    "identity": "security", "access_control": "security", "fraud": "security",
    # service_management
    "itsm": "service_management", "service": "service_management", "services": "service_management",
    "service_desk": "service_management", "change_management": "service_management",
    "incident_management": "service_management",
    # system_integration
    "integration": "system_integration", "integrations": "system_integration",
    "systems_integration": "system_integration", "api_integration": "system_integration",
    # data_operations
    "data": "data_operations", "dataops": "data_operations", "database": "data_operations",
    "etl": "data_operations", "data_ops": "data_operations", "migration": "data_operations",
    # compliance
    "regulatory": "compliance", "regulation": "compliance", "governance": "compliance", "audit": "compliance",
    "legal": "compliance", "privacy": "compliance", "gdpr": "compliance", "sox": "compliance",
    # infrastructure
    "infra": "infrastructure", "platform": "infrastructure", "devops": "infrastructure", "sre": "infrastructure",
    "cloud": "infrastructure", "network": "infrastructure", "networking": "infrastructure",
    # customer_success
    "customer": "customer_success", "customers": "customer_success", "support": "customer_success",
    "customer_support": "customer_success", "cx": "customer_success", "helpdesk": "customer_success",
})
"""Category words that name a known category by another name (alias → category)."""


@dataclass(frozen=True, slots=True)
class Weights:
    """The scoring rule's numbers, in points (hundredths of a score); defaults are the issue's.

    ``fallback_floor``: a fallback must score strictly more; ``fallbacks``: how many.
    ``total_cap`` is at most 100, so that a confidence is at most 1.
    """

    primary: int = 60
    secondary: int = 30
    complexity: int = 20
    keyword: int = 5
    keyword_cap: int = 20
    total_cap: int = 100
    fallback_floor: int = 10
    fallbacks: int = 2

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"Weights.{name} must be an integer >= 0, got {value!r}")
        if self.total_cap > 100:
            raise ValueError(f"Weights.total_cap must be <= 100 (a confidence is at most 1), got {self.total_cap}")


WEIGHTS: Final = Weights()


@dataclass(frozen=True, slots=True)
class Scenario:
    """The `scenario` of a decision request (CONTRACT §3.1), every field optional.

    >>> Scenario.of({"category": "refund", "complexity": 0.3})
    Scenario(category='refund', complexity=0.3, description='')
    >>> Scenario.of({"complexity": 1.5})
    Traceback (most recent call last):
    ...
    resontinex.agents.overlays.exceptions.ScenarioError: scenario.complexity: must be a finite number in [0, 1], got 1.5
    """

    category: str | None = None
    complexity: float | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if self.category is not None and not isinstance(self.category, str):
            raise ScenarioError("category", f"must be a string or null, got {type(self.category).__name__}")
        c = self.complexity
        if c is not None and (isinstance(c, bool) or not isinstance(c, Real)
                              or not math.isfinite(float(c)) or not 0.0 <= float(c) <= 1.0):
            raise ScenarioError("complexity", f"must be a finite number in [0, 1], got {c!r}")
        if not isinstance(self.description, str):
            raise ScenarioError("description", f"must be a string or null, got {type(self.description).__name__}")

    @classmethod
    def of(cls, scenario: Scenario | Mapping[str, Any] | Any) -> Scenario:
        """From a `Scenario`, a mapping (the decoded JSON) or an object with the same
        attributes (the `schemas.Scenario` model); a null description becomes ""."""
        if isinstance(scenario, Scenario):
            return scenario
        fields = ("category", "complexity", "description")
        if isinstance(scenario, Mapping):
            values = {k: scenario.get(k) for k in fields}
        else:
            values = {k: getattr(scenario, k, None) for k in fields}
        description = values["description"]
        return cls(category=values["category"], complexity=values["complexity"],
                   description="" if description is None else description)


def complexity_level(complexity: float | None) -> Level | None:
    """``high`` above 0.7, ``low`` at or below 0.4, ``medium`` between; None for None.

    >>> [complexity_level(c) for c in (0.0, 0.4, 0.41, 0.7, 0.71, 1.0, None)]
    ['low', 'low', 'medium', 'medium', 'high', 'high', None]
    """
    if complexity is None:
        return None
    if complexity > HIGH_ABOVE:
        return "high"
    if complexity <= LOW_AT_MOST:
        return "low"
    return "medium"


def normalise_category(raw: str | None, known: Collection[str],
                       aliases: Mapping[str, str] = CATEGORY_ALIASES) -> str | None:
    """The known category that free text ``raw`` names, or None.

    ``raw`` becomes `agents.overlays.category_key` form (casefolded, words joined by
    ``_``): ``"Financial Operations"`` → ``financial_operations``. Then its leading words
    are tried, longest first: the first that is a ``known`` category, or an alias
    (`CATEGORY_ALIASES`) of one, is the answer. So ``financial_operations`` is
    ``financial`` (a prefix), ``refund`` is ``financial`` (an alias),
    ``customer_success_team`` is ``customer_success``, and ``data_engineering`` is
    ``data_operations`` (``data`` is an alias). No match: None.

    >>> known = {"financial", "compliance", "customer_success", "data_operations", "infrastructure"}
    >>> [normalise_category(c, known) for c in ("financial_operations", "Refund", "compliance-management",
    ...                                         "customer success team", "data_engineering", "financially", None)]
    ['financial', 'financial', 'compliance', 'customer_success', 'data_operations', None, None]
    """
    if raw is None:
        return None
    tokens = category_key(raw).split("_")
    for n in range(len(tokens), 0, -1):
        head = "_".join(tokens[:n])
        if head in known:
            return head
        alias = aliases.get(head)
        if alias is not None and alias in known:
            return alias
    return None


def keyword_hits(description: str, keywords: Iterable[Keyword]) -> tuple[str, ...]:
    """The terms of the triggers found in ``description`` as whole words, in trigger order.

    >>> kws = (Keyword.of("refund", "refunds"), Keyword.of("rollback"), Keyword.of("data loss"))
    >>> keyword_hits("REFUNDS after a Rollback; refund again", kws)
    ('refund', 'rollback')
    >>> keyword_hits("rollbacks risk DATA-LOSS", kws)
    ('data loss',)
    """
    found = words(description)
    return KeywordIndex.of(keywords).hits(frozenset(found), f" {' '.join(found)} ")


@dataclass(frozen=True, slots=True)
class OverlayScore:
    """One overlay's score and its parts, in points (hundredths); ``score`` is points/100."""

    name: str
    points: int
    category_points: int
    complexity_points: int
    keyword_points: int
    keywords_hit: tuple[str, ...]

    @property
    def score(self) -> float:
        return self.points / 100


@dataclass(frozen=True, slots=True)
class OverlayChoice:
    """The chosen overlay. ``category`` and ``level`` are what the scenario was scored as;
    ``ranking`` holds every overlay's score, best first."""

    name: str
    confidence: float
    fallbacks: tuple[str, ...]
    category: str | None
    level: Level | None
    ranking: tuple[OverlayScore, ...]

    def as_dict(self) -> dict[str, Any]:
        """The decision's ``overlay`` object (CONTRACT §3.2)."""
        return {"name": self.name, "confidence": self.confidence, "fallbacks": list(self.fallbacks)}


def _scored(scenario: Scenario, overlays: OverlaySet,
            weights: Weights) -> tuple[str | None, Level | None, tuple[OverlayScore, ...]]:
    category = normalise_category(scenario.category, overlays.categories)
    level = complexity_level(scenario.complexity)
    found = words(scenario.description)
    distinct, padded = frozenset(found), f" {' '.join(found)} "
    scores = []
    for overlay in overlays.overlays:
        cat = (weights.primary if category in overlay.primary
               else weights.secondary if category in overlay.secondary else 0) if category else 0
        cpx = weights.complexity if level is not None and level in overlay.complexity else 0
        hit = overlay.index.hits(distinct, padded) if found else ()
        kw = min(len(hit) * weights.keyword, weights.keyword_cap)
        scores.append(OverlayScore(overlay.name, min(cat + cpx + kw, weights.total_cap), cat, cpx, kw, hit))
    scores.sort(key=lambda s: (-s.points, s.name))
    return category, level, tuple(scores)


def rank_overlays(scenario: Scenario | Mapping[str, Any] | Any, overlays: OverlaySet,
                  weights: Weights = WEIGHTS) -> tuple[OverlayScore, ...]:
    """Every overlay's score for the scenario, best first (ties: name order).

    >>> from resontinex.agents.overlays import Overlay, OverlaySet
    >>> ov = OverlaySet.of([Overlay("b", "B.", complexity=("low",)), Overlay("a", "A.", complexity=("low",))])
    >>> [(s.name, s.score) for s in rank_overlays({"complexity": 0.4}, ov)]
    [('a', 0.2), ('b', 0.2)]
    """
    return _scored(Scenario.of(scenario), overlays, weights)[2]


def select_overlay(scenario: Scenario | Mapping[str, Any] | Any, overlays: OverlaySet,
                   weights: Weights = WEIGHTS) -> OverlayChoice | None:
    """The best overlay for the scenario with its confidence and fallbacks, or None when
    every overlay scores 0 (see the module doc)."""
    category, level, ranking = _scored(Scenario.of(scenario), overlays, weights)
    if not ranking or ranking[0].points <= 0:
        return None
    best = ranking[0]
    fallbacks = tuple(s.name for s in ranking[1:1 + weights.fallbacks] if s.points > weights.fallback_floor)
    return OverlayChoice(best.name, best.score, fallbacks, category, level, ranking)
