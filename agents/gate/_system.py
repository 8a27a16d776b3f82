"""The gate's own alerts, tenant `_system`: its circuit breaker, overlay files skipped at start."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

import orjson

from resontinex.agents.effects import AuditItem, Count, Effects, Output, audit_item
from resontinex.agents.overlays import Rejection
from resontinex.agents.trust import BreakerConfig
from resontinex.schemas import SYSTEM_TENANT

from ._decide import circuit_alert
from ._routing import rejection_alerts

__all__ = ["circuit_effects", "rejection_effects"]

log = logging.getLogger(__name__)


def circuit_effects(transition: str, events: int, errors: int, config: BreakerConfig, worker: str, ts: str,
                    partitions: Sequence[int], system_partition: int, policy_version: str) -> Effects:
    """The breaker's alert, raised once (on `_system`'s partition) and audited on every
    partition of the batch that moved it.

    >>> e = circuit_effects("open", 40, 30, BreakerConfig(), "w:6066", "2026-01-01T00:00:00.000Z", [0, 2], 1, "v1")
    >>> [(o.topic, o.partition) for o in e.outputs], [a.partition for a in e.audit]
    ([('alerts', 1)], [0, 2])
    """
    alert = circuit_alert(transition, events, errors, config, worker, ts)
    (log.error if transition == "open" else log.warning)(alert["message"], extra={"event_id": alert["event_id"]})
    item = audit_item("au-" + alert["event_id"][2:], "alert", SYSTEM_TENANT, ts, policy_version, {"alert": alert})
    return Effects(outputs=(Output("alerts", system_partition, SYSTEM_TENANT.encode(), orjson.dumps(alert)),),
                   audit=tuple(AuditItem(p, item) for p in partitions),
                   counts=(Count("ALERTS", (alert["kind"],)),))


def rejection_effects(rejections: Iterable[Rejection], partition: int, started_at: float, ts: str,
                      policy_version: str) -> Effects:
    """One `overlay_rejected` alert per overlay file skipped at start, sent and audited on `partition`."""
    alerts = rejection_alerts(rejections, started_at, ts)
    for alert in alerts:
        log.warning(alert["message"], extra={"event_id": alert["event_id"]})
    return Effects(
        outputs=tuple(Output("alerts", partition, SYSTEM_TENANT.encode(), orjson.dumps(a)) for a in alerts),
        audit=tuple(AuditItem(partition, audit_item("au-" + a["event_id"][2:], "alert", SYSTEM_TENANT, ts,
                                                    policy_version, {"alert": a})) for a in alerts),
        counts=(Count("ALERTS", ("overlay_rejected",), len(alerts)),) if alerts else (),
    )
