"""A bounded, insertion-ordered memory of recent keys: the dedupe window.

>>> r = RecentMap(capacity=2)
>>> r.put("a", 1); r.put("b", 2); r.put("c", 3)
>>> "a" in r, r.get("c"), len(r)
(False, 3, 2)
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

V = TypeVar("V")


class RecentMap(Generic[V]):
    """The last `capacity` keys put, with a value each; the oldest is evicted first."""

    __slots__ = ("capacity", "_items")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be ≥ 1")
        self.capacity = capacity
        self._items: OrderedDict[str, V] = OrderedDict()

    def put(self, key: str, value: V) -> None:
        items = self._items
        items[key] = value
        items.move_to_end(key)
        if len(items) > self.capacity:
            items.popitem(last=False)

    def get(self, key: str) -> V | None:
        return self._items.get(key)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)
