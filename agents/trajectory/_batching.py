"""Padding-aware batches: texts grouped by length, each batch within a token budget.

A batch costs its longest sequence × its size in padded tokens (the model computes every
padded position), so texts are sorted by length and cut where the next one would push
the padded total over `token_budget`, the count over `max_batch`, or the share of padding
over `max_padding` (padded positions are work for nothing: on a CPU, where a pass costs
little beyond its positions, a batch that is 40 % padding is slower than no batching).

>>> plan_batches([5, 100, 7, 98, 6], token_budget=210, max_batch=8)
[[0, 4, 2], [3, 1]]
>>> plan_batches([300], token_budget=100, max_batch=8)  # one long text is a batch alone
[[0]]
>>> plan_batches([10, 12, 20, 21], token_budget=1000, max_batch=8, max_padding=0.2)
[[0, 1], [2, 3]]
"""

from __future__ import annotations

from collections.abc import Sequence


def plan_batches(lengths: Sequence[int], *, token_budget: int, max_batch: int,
                 max_padding: float = 1.0) -> list[list[int]]:
    """Indices into `lengths`, in batches of similar length, shortest first; a batch's
    padded positions stay within `max_padding` × its real ones."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    real = 0
    for i in order:
        longest = lengths[i]  # sorted: the newcomer is the longest
        padded = longest * (len(current) + 1)
        if current and (len(current) >= max_batch or padded > token_budget
                        or padded > (real + longest) * (1.0 + max_padding)):
            batches.append(current)
            current, real = [], 0
        current.append(i)
        real += longest
    if current:
        batches.append(current)
    return batches
