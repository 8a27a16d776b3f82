"""Foreign alerts are audited on the core's chain once."""

from __future__ import annotations

import orjson

from resontinex.agents.events import alert_event
from resontinex.agents.gate import plan_alert_audit

from .views import Rec


def alert(offset: int, kind: str = "quality_check_failed", source: str = "tr-1", partition: int = 0) -> Rec:
    body = alert_event(id_source=source, kind=kind, tenant="acme", severity="warning", message="m", details={},
                       source_event_id="tq-1", ts="2026-01-01T00:00:00Z")
    return Rec("alerts", partition, offset, b"acme", orjson.dumps(body), 0.0)


def test_each_foreign_alert_is_audited_once_on_its_partition() -> None:
    held = alert(0, source="tr-0")
    chain = {(0, orjson.loads(held.value)["event_id"])}
    records = [held, alert(1), alert(2), alert(3, kind="budget_exceeded"), alert(4, source="tr-9", partition=2),
               Rec("alerts", 0, 5, b"acme", b"not json", 0.0)]
    effects, added = plan_alert_audit(records, lambda p, a: (p, a) in chain, "pv-1", 1_000_000)
    ids = [orjson.loads(r.value)["event_id"] for r in (records[1], records[4])]
    assert added == [(0, ids[0]), (2, ids[1])]
    assert [(a.partition, a.item["event_id"], a.item["kind"]) for a in effects.audit] == [
        (0, "au-" + ids[0][2:], "alert"), (2, "au-" + ids[1][2:], "alert")]
    assert effects.audit[0].item["record"] == {"alert": orjson.loads(records[1].value)}
    assert not effects.outputs and [(c.metric, c.amount) for c in effects.counts] == [("ALERTS_AUDITED", 2)]
