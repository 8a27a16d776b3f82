"""Writing a tenant's `router-state` value from the shell (the outcomes agent, router imports)."""

from __future__ import annotations


from resontinex.agents import router as rt_
from resontinex.agents.gate import router_value

from resontinex.app.engine.faust_compat import event_context
from resontinex.app.engine.seams import Event, Table


def store_router_state(table: Table, tenant: str, state: rt_.RouterState, applied: list[str], event: Event,
                       imports: list[str] | None = None) -> None:
    """Write the tenant's value: the state, the applied decision ids and the ids of the
    imports applied (kept as they were unless given). A candidate router (a routing
    policy under canary) is dropped: the gate seeds it again from the state written."""
    if imports is None:
        imports = (table.get(tenant) or {}).get("imports", [])
    with event_context(event):
        table[tenant] = router_value(state, applied, imports)
