"""The overlay model: keyword triggers, overlays, and the loaded set of overlays.

A *micro-overlay* is a short block of instructions put in front of a model's prompt so
that it tackles a task from one angle first (plan the rollback, model the states, make it
observable). Each overlay says which scenarios it is *listed for*: scenario categories
(as primary or secondary), complexity levels, and keyword triggers.

Words are what keyword matching compares: casefolded runs of letters and digits, so
punctuation, ``-`` and ``_`` separate words and case never matters.

>>> words("Process REFUNDS (w/ roll-back) for data_migration")
('process', 'refunds', 'w', 'roll', 'back', 'for', 'data', 'migration')
>>> kw = Keyword.of("Refund", "refunds", "refunded")
>>> kw.term, kw.forms
('refund', ('refund', 'refunds', 'refunded'))
>>> o = Overlay("rollback_first", "Plan the rollback first.", keywords=(kw,), complexity=("high",),
...             primary=("financial",), secondary=("infrastructure",))
>>> ov = OverlaySet.of([o])
>>> ov.names, "rollback_first" in ov, sorted(ov.categories)
(('rollback_first',), True, ['financial', 'infrastructure'])
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Final, Literal

from .exceptions import InvalidOverlayError, UnknownOverlayError

__all__ = [
    "LEVELS",
    "NAME_PATTERN",
    "Keyword",
    "KeywordIndex",
    "Level",
    "Overlay",
    "OverlaySet",
    "category_key",
    "normalise_keyword",
    "words",
]

Level = Literal["low", "medium", "high"]
LEVELS: Final[tuple[Level, ...]] = ("low", "medium", "high")
"""Complexity levels, in order; see `agents.overlays.complexity_level` for the bands."""

NAME_PATTERN: Final = re.compile(r"[a-z][a-z0-9_]{0,63}")
"""An overlay name: lowercase letter first, then lowercase letters, digits, ``_`` (≤ 64)."""

_WORD: Final = re.compile(r"[^\W_]+")
_CATEGORY: Final = re.compile(r"[a-z0-9]+(?:_[a-z0-9]+)*")


def words(text: str) -> tuple[str, ...]:
    """The words of ``text``: casefolded maximal runs of letters and digits.

    >>> words("SLA-bound, p99 latency!")
    ('sla', 'bound', 'p99', 'latency')
    """
    return tuple(_WORD.findall(text.casefold()))


def normalise_keyword(form: str) -> str:
    """A keyword form as matched: its words joined by single spaces ("" when it has none).

    >>> normalise_keyword("  Data-Loss "), normalise_keyword("--")
    ('data loss', '')
    """
    return " ".join(words(form))


def category_key(raw: str) -> str:
    """A category as compared: casefolded, each run of non-alphanumerics one ``_``.

    >>> category_key(" Financial Operations "), category_key("data-ops"), category_key("--")
    ('financial_operations', 'data_ops', '')
    """
    return "_".join(words(raw))


@dataclass(frozen=True, slots=True)
class Keyword:
    """One keyword trigger: its first form is the term, the others variants of it.

    A trigger hits a description when any of its forms occurs there as whole words; a
    trigger counts once however many of its forms occur. Forms are normalised
    (`normalise_keyword`); a multi-word form matches those words consecutively.
    """

    forms: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.forms:
            raise InvalidOverlayError("invalid_field", "keywords", "a keyword needs at least one form")
        for form in self.forms:
            if not isinstance(form, str) or not form or normalise_keyword(form) != form:
                raise InvalidOverlayError("invalid_field", "keywords",
                                          f"keyword form {form!r} is not normalised (expected "
                                          f"{normalise_keyword(form) if isinstance(form, str) else 'a string'!r})")
        if len(set(self.forms)) != len(self.forms):
            raise InvalidOverlayError("invalid_field", "keywords", f"keyword {self.forms[0]!r} repeats a form")

    @property
    def term(self) -> str:
        """The trigger's name: its first form."""
        return self.forms[0]

    @classmethod
    def of(cls, *forms: str) -> Keyword:
        """A trigger from raw forms: normalised, duplicates dropped (first kept).

        >>> Keyword.of("Roll-back", "rollback", "ROLL BACK").forms
        ('roll back', 'rollback')
        """
        return cls(tuple(dict.fromkeys(normalise_keyword(f) for f in forms)))


@dataclass(frozen=True, slots=True)
class KeywordIndex:
    """Triggers indexed by form, to match a description split into words once.

    >>> idx = KeywordIndex.of((Keyword.of("refund", "refunds"), Keyword.of("data loss"), Keyword.of("undo")))
    >>> text = words("Undo the refunds; avoid data loss")
    >>> idx.hits(frozenset(text), f" {' '.join(text)} ")
    ('refund', 'data loss', 'undo')
    """

    single: Mapping[str, int]
    phrases: tuple[tuple[str, int], ...]
    terms: tuple[str, ...]

    @classmethod
    def of(cls, keywords: Iterable[Keyword]) -> KeywordIndex:
        single: dict[str, int] = {}
        phrases: list[tuple[str, int]] = []
        terms = []
        for i, kw in enumerate(keywords):
            terms.append(kw.term)
            for form in kw.forms:
                if " " in form:
                    phrases.append((f" {form} ", i))
                else:
                    single.setdefault(form, i)
        return cls(MappingProxyType(single), tuple(phrases), tuple(terms))

    def hits(self, distinct_words: frozenset[str] | set[str], padded_text: str) -> tuple[str, ...]:
        """The terms hit, in trigger order: ``distinct_words`` are the description's words,
        ``padded_text`` its words joined by single spaces with one space each side."""
        found = {self.single[w] for w in self.single.keys() & distinct_words}
        found.update(i for phrase, i in self.phrases if i not in found and phrase in padded_text)
        return tuple(self.terms[i] for i in sorted(found))


def _check_names(field_name: str, values: object, pattern: re.Pattern[str], what: str) -> None:
    if not isinstance(values, tuple):
        raise InvalidOverlayError("invalid_field", field_name, f"must be a tuple, got {type(values).__name__}")
    for value in values:
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise InvalidOverlayError("invalid_field", field_name, f"{value!r} is not {what}")
    if len(set(values)) != len(values):
        raise InvalidOverlayError("invalid_field", field_name, "lists a value twice")


@dataclass(frozen=True, slots=True)
class Overlay:
    """One micro-overlay.

    ``prompt`` is the text put before a base prompt (`agents.overlays.apply_overlay`);
    ``primary``/``secondary`` are the (normalised, `category_key`) scenario categories it
    is listed for; ``complexity`` the levels; ``keywords`` its triggers. ``source`` is the
    file it was loaded from (None when built in code) and takes no part in equality;
    ``index`` is derived from ``keywords`` for matching.
    """

    name: str
    prompt: str
    keywords: tuple[Keyword, ...] = ()
    complexity: tuple[Level, ...] = ()
    primary: tuple[str, ...] = ()
    secondary: tuple[str, ...] = ()
    summary: str = ""
    source: Path | None = field(default=None, compare=False)
    index: KeywordIndex = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._validate()
        object.__setattr__(self, "index", KeywordIndex.of(self.keywords))

    def _validate(self) -> None:
        if not isinstance(self.name, str) or not NAME_PATTERN.fullmatch(self.name):
            raise InvalidOverlayError("invalid_field", "name",
                                      f"{self.name!r} is not a name (lowercase letter, then a-z, 0-9, _; ≤ 64)")
        if not isinstance(self.prompt, str) or not self.prompt.strip():
            raise InvalidOverlayError("invalid_field", "prompt", "must be non-empty text")
        if not isinstance(self.summary, str):
            raise InvalidOverlayError("invalid_field", "summary", "must be text")
        if not isinstance(self.keywords, tuple) or not all(isinstance(k, Keyword) for k in self.keywords):
            raise InvalidOverlayError("invalid_field", "keywords", "must be a tuple of Keyword")
        seen: dict[str, str] = {}
        for kw in self.keywords:
            for form in kw.forms:
                if form in seen:
                    raise InvalidOverlayError("invalid_field", "keywords",
                                              f"form {form!r} of {kw.term!r} is already a form of {seen[form]!r}")
                seen[form] = kw.term
        if not isinstance(self.complexity, tuple) or any(level not in LEVELS for level in self.complexity):
            raise InvalidOverlayError("invalid_field", "complexity",
                                      f"levels must be among {', '.join(LEVELS)}, got {self.complexity!r}")
        if len(set(self.complexity)) != len(self.complexity):
            raise InvalidOverlayError("invalid_field", "complexity", "lists a level twice")
        _check_names("categories.primary", self.primary, _CATEGORY, "a normalised category")
        _check_names("categories.secondary", self.secondary, _CATEGORY, "a normalised category")
        both = sorted(set(self.primary) & set(self.secondary))
        if both:
            raise InvalidOverlayError("invalid_field", "categories",
                                      f"{', '.join(both)} listed as both primary and secondary")

    @property
    def terms(self) -> tuple[str, ...]:
        """The names of its keyword triggers."""
        return tuple(k.term for k in self.keywords)


@dataclass(frozen=True, slots=True)
class OverlaySet(Mapping[str, Overlay]):
    """Loaded overlays by name: an immutable mapping, iterated in name order.

    Looking up a name that is not loaded raises `UnknownOverlayError` (a `KeyError`).
    """

    overlays: tuple[Overlay, ...] = ()
    _index: Mapping[str, Overlay] = field(init=False, repr=False, compare=False)
    _categories: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for overlay in self.overlays:
            if not isinstance(overlay, Overlay):
                raise TypeError(f"OverlaySet holds Overlay objects, got {type(overlay).__name__}")
        ordered = tuple(sorted(self.overlays, key=lambda o: o.name))
        index: dict[str, Overlay] = {}
        for overlay in ordered:
            if overlay.name in index:
                raise InvalidOverlayError("duplicate_name", "name", f"two overlays are named {overlay.name!r}")
            index[overlay.name] = overlay
        object.__setattr__(self, "overlays", ordered)
        object.__setattr__(self, "_index", MappingProxyType(index))
        object.__setattr__(self, "_categories",
                           frozenset(c for o in ordered for c in (*o.primary, *o.secondary)))

    @classmethod
    def of(cls, overlays: Iterable[Overlay]) -> OverlaySet:
        """The set of the given overlays (names must be distinct)."""
        return cls(tuple(overlays))

    def __getitem__(self, name: str) -> Overlay:
        try:
            return self._index[name]
        except KeyError:
            raise UnknownOverlayError(name, self._index) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)

    @property
    def names(self) -> tuple[str, ...]:
        """The loaded names, sorted."""
        return tuple(self._index)

    @property
    def categories(self) -> frozenset[str]:
        """Every category some overlay is listed for (primary or secondary)."""
        return self._categories

    def category_map(self) -> dict[str, tuple[str, ...]]:
        """Category → the overlays listed for it: primaries first, then secondaries, each
        in name order.

        >>> a = Overlay("a", "A.", primary=("x",))
        >>> b = Overlay("b", "B.", secondary=("x",), primary=("y",))
        >>> OverlaySet.of([b, a]).category_map()
        {'x': ('a', 'b'), 'y': ('b',)}
        """
        out: dict[str, tuple[str, ...]] = {}
        for category in sorted(self._categories):
            first = [o.name for o in self.overlays if category in o.primary]
            then = [o.name for o in self.overlays if category in o.secondary]
            out[category] = tuple(first + then)
        return out

    def triggers(self) -> frozenset[str]:
        """The distinct keyword triggers (terms) of every overlay."""
        return frozenset(term for o in self.overlays for term in o.terms)


def as_levels(values: Iterable[str]) -> tuple[Level, ...]:
    """Levels in `LEVELS` order (caller has checked membership)."""
    chosen = set(values)
    return tuple(lv for lv in LEVELS if lv in chosen)
