"""The Q-table as JSON: export, and import with validation (issue 4, item 1).

The document is `{"format": "resontinex.router.q_table", "version": 1, "policy": NAME,
"state": STATE}` where STATE is the policy's `state_dict()`: `arms` (state key →
provider → that policy's arm: `q`/`n` for ε-greedy, `n`/`mean`/`unit` for UCB1,
`alpha`/`beta`/`n` for Thompson, `A`/`b`/`n`/`mean` for LinUCB) and, for ε-greedy,
`epsilon`. Hyper-parameters are not in it: they come from the configuration the table
is imported under.

>>> from resontinex.agents.router import RoutingConfig, make_policy
>>> p = make_policy(RoutingConfig()).update("llm:a100:us-west", "akash", 9.15)
>>> doc = export_q_table(p)
>>> doc["state"]["arms"], import_q_table(doc) == p
({'llm:a100:us-west': {'akash': {'q': 0.915, 'n': 1}}}, True)
>>> import_q_table({**doc, "state": {"arms": {"llm:a100:us-west": {"akash": {"q": "high"}}}}})
Traceback (most recent call last):
...
resontinex.agents.router.exceptions.TableError: state.arms['llm:a100:us-west'].akash.q: must be a finite number, got 'high'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from . import _codec as codec
from ._base import RoutingPolicy
from ._config import RoutingConfig
from ._policies import POLICY_CLASSES, AnyPolicy
from .exceptions import TableError

FORMAT: Final = "resontinex.router.q_table"
VERSION: Final = 1


def export_q_table(policy: RoutingPolicy) -> dict[str, Any]:
    """The policy's learned state as a JSON-able document."""
    return {"format": FORMAT, "version": VERSION, "policy": policy.name, "state": policy.state_dict()}


def import_q_table(data: Mapping[str, Any], cfg: RoutingConfig | None = None) -> AnyPolicy:
    """The policy an `export_q_table` document holds, with `cfg`'s hyper-parameters
    (default: `RoutingConfig()`); the policy is the document's, whatever `cfg.policy`
    says. Anything malformed raises `TableError` naming the path of the bad value.
    """
    doc = codec.mapping(data, "<table>", required=("format", "version", "policy", "state"),
                        allowed=("format", "version", "policy", "state"))
    if doc["format"] != FORMAT:
        raise TableError("format", f"must be {FORMAT!r}, got {doc['format']!r}")
    if doc["version"] != VERSION or isinstance(doc["version"], bool):
        raise TableError("version", f"must be {VERSION}, got {doc['version']!r}")
    cls = POLICY_CLASSES.get(doc["policy"]) if isinstance(doc["policy"], str) else None
    if cls is None:
        raise TableError("policy", f"must be one of {', '.join(POLICY_CLASSES)}, got {doc['policy']!r}")
    policy = cls.from_state_dict(doc["state"], cfg if cfg is not None else RoutingConfig(), "state")
    return policy  # type: ignore[return-value]
