"""The trajectory role's core around the model: admitting requests, turning scores into results."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import orjson

from resontinex.agents.effects import Effects
from resontinex.agents.trajectory import (Scored, TextScore, TrajectoryConfig, UnscorableText, admit_requests,
                                          plan_results, result_id)
from resontinex.schemas import Alert, TrajectoryResult

from tests.agents.gate.views import Rec

NOW = 1_700_000_000.0
TOPIC = "trajectory-requests"


@dataclass
class Model:
    """A `Scorer` stand-in: what the results say of the model, and its quality check."""

    name: str = "gpt2"
    device: str = "cpu"
    cfg: TrajectoryConfig = field(default_factory=TrajectoryConfig)

    def passed(self, score: TextScore) -> bool:
        return score.perplexity < self.cfg.max_perplexity


def request(offset: int, event_id: str = "", partition: int = 0, **fields: object) -> Rec:
    body = {"event_id": event_id or f"tq-{offset}", "tenant": "acme", "text": "hello there"} | fields
    return Rec(TOPIC, partition, offset, b"acme", orjson.dumps(body), NOW)


def admit(records: list[Rec], seen: frozenset[tuple[int, str]] = frozenset()) -> tuple[Effects, list]:
    return admit_requests(records, seen=lambda p, i: (p, i) in seen, scorer=Model(), configured_model="gpt2-medium",
                          max_message_bytes=1_000_000, now=NOW)


def codes(effects: Effects) -> list[str]:
    return [orjson.loads(o.value)["error"]["code"] for o in effects.outputs if o.topic == "dead_letters"]


def score(perplexity: float, n: int = 4) -> Scored:
    values = np.full(n, -1.0, dtype=np.float32).tobytes()
    return Scored(TextScore(n, perplexity, 2.0, 3.0, 4.0, False, values, values), cached=False)


def test_admission_drops_repeats_and_refuses_bad_requests_and_other_models() -> None:
    records = [request(0, "tq-a"), request(1, "tq-a"), request(2, "tq-b"), request(3, model="gpt2-medium"),
               request(4, model="llama"), Rec(TOPIC, 0, 5, b"acme", b"[]", NOW), request(6, "tq-a", partition=1)]
    effects, admitted = admit(records, seen=frozenset({(0, "tq-b")}))
    assert [(a.record.partition, a.request.event_id) for a in admitted] == [(0, "tq-a"), (0, "tq-3"), (1, "tq-a")]
    assert codes(effects) == ["model_unavailable", "not_object"]
    counts = {(c.metric, c.labels): c.amount for c in effects.counts}
    assert counts[("DUPLICATES", (TOPIC,))] == 2 and counts[("EVENTS", (TOPIC,))] == 7


def test_results_alerts_and_unscorable_texts() -> None:
    _, admitted = admit([request(0, request_id="r-1"), request(1, detail=True), request(2)])
    e = plan_results(admitted, [score(20.0), score(5000.0), UnscorableText("empty after tokenizing")], Model(), NOW)
    results = [orjson.loads(o.value) for o in e.outputs if o.topic == "trajectory_results"]
    alerts = [orjson.loads(o.value) for o in e.outputs if o.topic == "alerts"]
    assert [r["event_id"] for r in results] == [result_id("acme", "tq-0"), result_id("acme", "tq-1")]
    for r in results:
        TrajectoryResult.model_validate(r)
    assert results[0]["request_id"] == "r-1" and "token_logprobs" not in results[0]
    assert results[1]["token_logprobs"] == [-1.0] * 4 and not results[1]["passed_quality_check"]
    (alert,) = alerts
    Alert.model_validate(alert)
    assert alert["kind"] == "quality_check_failed" and alert["details"]["result_id"] == results[1]["event_id"]
    assert codes(e) == ["unscorable_text"]
    assert all(o.partition == 0 and o.key == b"acme" for o in e.outputs)
