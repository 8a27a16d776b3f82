"""Reading serialised router state back: each helper checks one value and names its path.

>>> child(child(child("state.arms", "llm:a100:us"), "akash"), "n")
"state.arms['llm:a100:us'].akash.n"
>>> count(-1, "state.arms['llm:a100:us'].akash.n")
Traceback (most recent call last):
...
resontinex.agents.router.exceptions.TableError: state.arms['llm:a100:us'].akash.n: must be an integer >= 0, got -1
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .exceptions import TableError


def child(path: str, key: str) -> str:
    """The path of `key` under `path`: `.name` for identifiers, `['...']` otherwise."""
    return f"{path}.{key}" if key.isidentifier() else f"{path}[{key!r}]"


def mapping(value: object, path: str, *, required: tuple[str, ...] = (), allowed: tuple[str, ...] | None = None,
            ) -> Mapping[str, Any]:
    """A mapping with string keys, the `required` ones present (and, given `allowed`, no others)."""
    if not isinstance(value, Mapping):
        raise TableError(path, f"must be an object, got {type(value).__name__}")
    for key in value:
        if not isinstance(key, str) or not key:
            raise TableError(path, f"keys must be non-empty strings, got {key!r}")
        if allowed is not None and key not in allowed:
            raise TableError(child(path, key), f"unknown key (expected one of {', '.join(allowed)})")
    for key in required:
        if key not in value:
            raise TableError(child(path, key), "is required")
    return value


def real(value: object, path: str, lo: float = -math.inf, hi: float = math.inf, *, lo_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TableError(path, f"must be a finite number, got {value!r}")
    if value < lo or (lo_open and value <= lo):
        raise TableError(path, f"must be {'>' if lo_open else '>='} {lo:g}, got {value!r}")
    if value > hi:
        raise TableError(path, f"must be <= {hi:g}, got {value!r}")
    return float(value)


def count(value: object, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TableError(path, f"must be an integer >= 0, got {value!r}")
    return value


def sequence(value: object, path: str, length: int | None = None) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise TableError(path, f"must be a list, got {type(value).__name__}")
    if length is not None and len(value) != length:
        raise TableError(path, f"must have {length} items, got {len(value)}")
    return list(value)


def optional_real(value: object, path: str) -> float | None:
    return None if value is None else real(value, path)
