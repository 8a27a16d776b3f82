"""Token usage of the AI calls a batch of costs folds, as the OTel GenAI histogram
`gen_ai.client.token.usage` counts it (`resontinex.app.otel` says how it is exported)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from resontinex.agents.effects import Observation

__all__ = ["COST_OPERATION", "tokens_observations"]

COST_OPERATION = "chat"
"""`gen_ai.operation.name` of a `costs` event: the event does not say, and most AI calls are chats."""


def tokens_observations(costs: Iterable[tuple[str, str, int, int]], operation: str = COST_OPERATION
                        ) -> tuple[Observation, ...]:
    """The `GEN_AI_TOKEN_USAGE` observations of (provider, model, input tokens, output
    tokens) per AI call: one input and one output value per call, grouped by label set.

    >>> [(o.labels, o.values) for o in tokens_observations([("anthropic", "m", 10, 3), ("anthropic", "m", 5, 1)])]
    [(('input', 'anthropic', 'm', 'chat'), (10, 5)), (('output', 'anthropic', 'm', 'chat'), (3, 1))]
    """
    groups: dict[tuple[str, str, str, str], list[int]] = defaultdict(list)
    for provider, model, input_tokens, output_tokens in costs:
        groups[("input", provider, model, operation)].append(input_tokens)
        groups[("output", provider, model, operation)].append(output_tokens)
    return tuple(Observation("GEN_AI_TOKEN_USAGE", tuple(v), labels) for labels, v in groups.items())
