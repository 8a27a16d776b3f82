"""Hypothesis strategies for audit chains: JSON values, entries, sealed chains."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from resontinex.agents.audit import AuditEntry, ChainHead, seal_many

KINDS = ("decision", "alert", "state_change", "override", "checkpoint")
SAFE_INT = 2**53 - 1

json_leaves = (
    st.none()
    | st.booleans()
    | st.integers(-SAFE_INT, SAFE_INT)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    json_leaves,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=6,
)
json_objects = st.dictionaries(st.text(max_size=6), json_values, max_size=5)

entries = st.builds(
    AuditEntry,
    event_id=st.text(min_size=1, max_size=16),
    kind=st.sampled_from(KINDS),
    tenant=st.text(max_size=8),
    ts=st.just("2025-01-01T00:00:00Z") | st.text(max_size=24),
    policy_version=st.text(alphabet="0123456789abcdef", min_size=12, max_size=12),
    record=json_objects,
)

hashes = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)


def chain(items: list[AuditEntry]) -> list[dict[str, Any]]:
    return seal_many(ChainHead.genesis(), items)[0]


chains = st.lists(entries, min_size=1, max_size=8).map(chain)

# Canonicalising is pure Python: generation plus sealing can exceed the default deadlines.
slow_ok = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
