"""`router_import` commands (topic `control`): replace a tenant's router table.

The document is an `agents.router.export_q_table` export. It is refused (a dead letter
naming the bad path) when malformed or made by another policy than the configured one.
An applied import is audited (`state_change`) and alerted (`router_import`, info) before
the table records it with the command's id, so a redelivered command is recognised.
"""

from __future__ import annotations


import orjson

from resontinex.agents import router as rt_
from resontinex.app import metrics
from resontinex.app.engine.audit_writer import append_audit, audit_item
from resontinex.app.engine.deadletter import send_dead_letter
from resontinex.app.runtime import Runtime
from resontinex.schemas import Control, ms_to_ts

from resontinex.agents.gate import alert_event, auditable_table, load_router_state

from resontinex.app.wiring.router_tables import store_router_state
from resontinex.app.engine.seams import Event, Table

IMPORTS_KEPT = 50


async def import_router_table(rt: Runtime, table: Table, event: Event, command: Control) -> None:
    msg, tenant = event.message, command.tenant
    try:
        auditable_table(command.q_table)
        policy = rt_.import_q_table(command.q_table, rt.routing)
        if policy.name != rt.routing.policy:
            raise rt_.TableError("policy", f"the table is {policy.name!r}'s; routing.yaml configures "
                                           f"{rt.routing.policy!r}")
    except rt_.TableError as exc:
        send_dead_letter(rt.sink, rt.settings.topic("dead_letters"), msg, "invalid_table", str(exc))
        return
    stored = table.get(tenant) or {}
    if command.event_id in stored.get("imports", []):
        metrics.DUPLICATES.labels(msg.topic).inc()
        return
    ts = command.ts or ms_to_ts(round(msg.timestamp * 1000))
    details = {"operator_id": command.operator_id, "reason": command.reason, "policy": policy.name,
               "states": len(policy.values())}
    alert = alert_event(id_source=command.event_id, kind="router_import", tenant=tenant, severity="info",
                        message=f"operator {command.operator_id} imported the router table of {tenant}: "
                                f"{command.reason}", details=details, source_event_id=command.event_id, ts=ts)
    rt.sink.add(rt.settings.topic("alerts"), msg.partition, tenant.encode(), orjson.dumps(alert))
    await append_audit(rt, msg.partition, [
        audit_item("sc-" + alert["event_id"][2:], "state_change", tenant, ts, rt.policy_version,
                   {"router_import": {"tenant": tenant, **details, "q_table": command.q_table}}),
        audit_item("au-" + alert["event_id"][2:], "alert", tenant, ts, rt.policy_version, {"alert": alert}),
    ])
    await rt.sink.flush()
    state, applied = load_router_state(table, tenant, rt.routing)  # no await from here to the write
    imports = [*stored.get("imports", []), command.event_id][-IMPORTS_KEPT:]
    store_router_state(table, tenant, rt_.RouterState(policy, state.q_jumps, state.success, state.stats), applied,
                       event, imports=imports)
    metrics.ALERTS.labels("router_import").inc()
