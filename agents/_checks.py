"""Checks of configuration values read from YAML, shared by the packages that load a
configuration file. Each failure is raised as the package's own error, `error(key,
problem)`, naming the dotted key.

>>> class Bad(ValueError):
...     def __init__(self, key, problem): super().__init__(f"{key}: {problem}")
>>> check = Checks(Bad)
>>> check.real("a.b", 0.5, 0.0, 1.0), check.integer("n", 3, 1)
(0.5, 3)
>>> check.real("a.b", 0, 0.0, lo_open=True)
Traceback (most recent call last):
...
resontinex.agents._checks.Bad: a.b: must be > 0, got 0.0
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import replace
from numbers import Real
from typing import TYPE_CHECKING, Any, Callable, TypeVar

import yaml

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

ROOT = "<config>"
Converter = Callable[[str, object], Any]
D = TypeVar("D", bound="DataclassInstance")


class Checks:
    """Value checks raising `error(key, problem)`."""

    def __init__(self, error: Callable[[str, str], Exception]) -> None:
        self.error = error

    def real(self, key: str, value: object, lo: float = -math.inf, hi: float = math.inf, *,
             lo_open: bool = False) -> float:
        """A finite number in [lo, hi] (or (lo, hi] when `lo_open`)."""
        if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(float(value)):
            raise self.error(key, f"must be a finite number, got {value!r}")
        number = float(value)
        if number < lo or number > hi or (lo_open and number <= lo):
            low = f"> {lo:g}" if lo_open else f">= {lo:g}"
            bounds = low if hi == math.inf else f"{low} and <= {hi:g}"
            raise self.error(key, f"must be {bounds}, got {number!r}")
        return number

    def integer(self, key: str, value: object, lo: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < lo:
            raise self.error(key, f"must be an integer >= {lo}, got {value!r}")
        return value

    def boolean(self, key: str, value: object) -> bool:
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false, got {value!r}")
        return value

    def name(self, key: str, value: object) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, f"must be a non-empty string, got {value!r}")
        return value

    def choice(self, options: tuple[str, ...]) -> Converter:
        def check(key: str, value: object) -> str:
            if value not in options:
                raise self.error(key, f"must be one of {', '.join(options)}, got {value!r}")
            return str(value)
        return check

    def read_yaml(self, path: str | os.PathLike[str], *, missing_ok: bool = False) -> object:
        """A YAML file's content (`{}` when empty, or missing with `missing_ok`); a file that
        is not UTF-8 or not YAML raises `error("<file>", …)` naming it."""
        try:
            with open(path, encoding="utf-8") as fh:
                content = yaml.safe_load(fh)
        except FileNotFoundError:
            if missing_ok:
                return {}
            raise
        except yaml.YAMLError as exc:
            raise self.error("<file>", f"{path}: not valid YAML ({exc})") from None
        except UnicodeDecodeError as exc:
            raise self.error("<file>", f"{path}: not UTF-8 ({exc.reason})") from None
        return {} if content is None else content

    def section(self, raw: object, key: str, cls: Callable[[], D], convert: Mapping[str, Converter],
                fields: Mapping[str, str] | None = None) -> D:
        """`cls()` (a dataclass, or a partial of one) with the keys of mapping `raw` converted; None (absent or empty) gives the
        defaults, an unknown key is named. `fields` names the field of a key where they differ
        (`window` → `window_s`)."""
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            raise self.error(key, f"must be a mapping, got {type(raw).__name__}")
        values: dict[str, Any] = {}
        for name, value in raw.items():
            child = str(name) if key == ROOT else f"{key}.{name}"
            if name not in convert:
                raise self.error(child, f"unknown key (expected one of {', '.join(convert)})")
            values[fields.get(name, name) if fields else name] = convert[name](child, value)
        return replace(cls(), **values)
