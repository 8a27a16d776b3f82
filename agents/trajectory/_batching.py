"""Padding-aware batches: texts grouped by length, each batch within a token budget.

A batch costs its longest sequence × its size in padded tokens (the model computes every
padded position), so texts are sorted by length and cut where the next one would push
the padded total over `token_budget` or the count over `max_batch`.

>>> plan_batches([5, 100, 7, 98, 6], token_budget=210, max_batch=8)
[[0, 4, 2], [3, 1]]
>>> plan_batches([300], token_budget=100, max_batch=8)  # one long text is a batch alone
[[0]]
"""

from __future__ import annotations

from collections.abc import Sequence


def plan_batches(lengths: Sequence[int], *, token_budget: int, max_batch: int) -> list[list[int]]:
    """Indices into `lengths`, in batches of similar length, shortest first."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        longest = lengths[i]  # sorted: the newcomer is the longest
        if current and (len(current) >= max_batch or longest * (len(current) + 1) > token_budget):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches
