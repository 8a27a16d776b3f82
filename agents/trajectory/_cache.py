"""The results cache: least recently used, keyed by model and a hash of the text.

>>> c = ScoreCache(capacity=2)
>>> k1, k2, k3 = (cache_key("m", t, 512) for t in ("a", "b", "c"))
>>> c.put(k1, 1.0); c.put(k2, 2.0); c.get(k1); c.put(k3, 3.0)
1.0
>>> c.get(k2) is None, c.get(k1), len(c)
(True, 1.0, 2)
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Generic, TypeVar

V = TypeVar("V")


def cache_key(model: str, text: str, max_tokens: int) -> tuple[str, str, int]:
    """The text enters as its SHA-256, so the cache never holds users' text."""
    return model, hashlib.sha256(text.encode("utf-8")).hexdigest(), max_tokens


class ScoreCache(Generic[V]):
    """At most `capacity` entries; a hit makes its entry the most recent."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: OrderedDict[tuple[str, str, int], V] = OrderedDict()

    def get(self, key: tuple[str, str, int]) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: tuple[str, str, int], value: V) -> None:
        if self.capacity < 1:
            return
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)
