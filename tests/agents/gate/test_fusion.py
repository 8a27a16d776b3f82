"""The fusion core: trajectory results and the timeout sweep put waiting requests back."""

from __future__ import annotations

from typing import Any

import orjson

from resontinex.agents.effects import Effects
from resontinex.agents.gate import FusionBatch, awaiting_key, plan_fusion, plan_sweep
from resontinex.agents.trajectory import TrajectoryConfig
from resontinex.schemas import DecisionRequest

from .views import Rec

NOW = 1_700_000_000.0
TOPIC = "trajectory-results"
RAW = {"event_id": "r-1", "tenant": "acme", "text": "some generated text", "signals": {"alignment_score": 0.9, "confidence_band": 0.2}}


class Waiting(dict[str, Any]):
    def waiting_entry(self, key: str) -> dict[str, Any] | None:
        return self.get(key)


def result(offset: int, request_id: str | None = "r-1", tenant: str = "acme", key: bytes = b"acme") -> Rec:
    body = {"event_id": f"tr-{offset}", "ts": "2026-01-01T00:00:00Z", "request_event_id": "tq-1", "tenant": tenant,
            "model": "gpt2", "n_tokens": 5, "perplexity": 20.0, "mean_entropy": 4.0, "max_entropy": 6.0,
            "passed_quality_check": True, "truncated": False, "cached": False, "device": "cpu",
            "request_id": request_id}
    return Rec(TOPIC, 0, offset, key, orjson.dumps(body), NOW)


def fuse(records: list[Rec], waiting: Waiting) -> Effects:
    return plan_fusion(FusionBatch(records, NOW), waiting, TrajectoryConfig(), 1_000_000)


def test_a_result_sends_its_waiting_request_back_scored() -> None:
    waiting = Waiting({awaiting_key("acme", "r-1"): {"raw": RAW, "partition": 0, "since": NOW - 1}})
    e = fuse([result(0)], waiting)
    (out,) = e.outputs
    assert (out.topic, out.partition, out.key) == ("decision_requests", 0, b"acme")
    back = DecisionRequest.model_validate(orjson.loads(out.value))
    assert back.signals.epistemic_risk is not None and back.trajectory is not None
    assert back.trajectory.status == "scored" and back.trajectory.result_id == "tr-0"
    assert "epistemic_risk" not in RAW["signals"]
    assert not e.early_writes and not e.late_writes and not e.audit  # the gate forgets the entry once audited
    assert {(c.metric, c.labels): c.amount for c in e.counts} == {("EVENTS", (TOPIC,)): 1,
                                                                   ("TEXTS_RETURNED", ("scored",)): 1}


def test_results_for_nothing_waiting_for_itself_or_another_tenant_send_nothing() -> None:
    waiting = Waiting({awaiting_key("acme", "r-1"): {"raw": RAW, "partition": 0, "since": NOW - 1}})
    e = fuse([result(0, request_id="r-2"), result(1, request_id=None), result(2, tenant="other")], waiting)
    assert not e.outputs


def test_a_bad_result_is_a_dead_letter() -> None:
    e = fuse([Rec(TOPIC, 0, 5, b"acme", b'{"event_id": "x"}', NOW), Rec(TOPIC, 0, 6, None, b"{}", NOW)], Waiting())
    assert [orjson.loads(o.value)["error"]["code"] for o in e.outputs] == ["missing_field", "empty_key"]


def test_the_sweep_sends_back_only_late_requests_of_owned_partitions_once() -> None:
    entries = [("late", {"raw": RAW, "partition": 0, "since": NOW - 100}),
               ("fresh", {"raw": RAW | {"event_id": "r-2"}, "partition": 0, "since": NOW}),
               ("elsewhere", {"raw": RAW | {"event_id": "r-3"}, "partition": 1, "since": NOW - 100}),
               ("sent", {"raw": RAW | {"event_id": "r-4"}, "partition": 0, "since": NOW - 100}),
               ("gone", None)]
    e, sent = plan_sweep(entries, owned={0}, deadline=NOW - 30, sent_before={"sent"})
    assert sent == ["late"]
    (out,) = e.outputs
    assert orjson.loads(out.value) == RAW | {"trajectory": {"status": "timeout"}}
    DecisionRequest.model_validate(orjson.loads(out.value))
