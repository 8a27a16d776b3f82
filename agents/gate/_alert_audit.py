"""Auditing the alerts other roles raise: the core role owns each partition's audit chain.

The trajectory role runs in its own consumer group, so it cannot append to the chain
without forking it. Its alerts (`quality_check_failed`) reach the `alerts` topic on the
tenant's partition; the core reads them there and appends each to that partition's chain
once (`plan_alert_audit`): the alert ids a chain holds are part of the partition state
recovered from the audit tail, so a redelivered alert is dropped after a restart too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from resontinex.agents.effects import AuditItem, Effects, EffectsBuilder, Record, audit_item
from resontinex.schemas import Alert, InvalidEvent, decode_json, ms_to_ts

__all__ = ["FOREIGN_KINDS", "plan_alert_audit"]

FOREIGN_KINDS = frozenset({"quality_check_failed"})
"""Alert kinds raised outside the core role (the core audits its own as it raises them)."""


def plan_alert_audit(records: Sequence[Record], chained: Callable[[int, str], bool], policy_version: str,
                     max_message_bytes: int) -> tuple[Effects, list[tuple[int, str]]]:
    """The audit items for the foreign alerts among `records` that `chained(partition, alert
    id)` says the chain does not hold yet; and those (partition, alert id) pairs."""
    out = EffectsBuilder()
    added: list[tuple[int, str]] = []
    for record in records:
        try:
            raw, alert = decode_json(Alert, record.value, max_bytes=max_message_bytes)
        except InvalidEvent:
            continue  # not ours to judge: the alerts topic is an output; its writers validate
        pair = (record.partition, alert.event_id)
        if alert.kind not in FOREIGN_KINDS or pair in added or chained(*pair):
            continue
        added.append(pair)
        ts = raw.get("ts") or ms_to_ts(round(record.timestamp * 1000))
        out.audit.append(AuditItem(record.partition, audit_item("au-" + alert.event_id.removeprefix("a-"), "alert",
                                                                alert.tenant, ts, policy_version, {"alert": raw})))
        out.count("ALERTS_AUDITED")
    return out.effects(), added
