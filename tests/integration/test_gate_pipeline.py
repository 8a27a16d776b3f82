"""The spine end to end: real broker, real worker subprocess, real aiokafka client."""

from __future__ import annotations

import json
import random
from collections import Counter

import orjson
import pytest

from resontinex.agents.audit import verify
from resontinex.agents.trust import evaluate_values, load_config
from resontinex.config import PACKAGED_DIR

from .conftest import run
from .harness import produce, read_all, start_worker

pytestmark = pytest.mark.integration

CONFIG = load_config(PACKAGED_DIR / "trust_gate.yaml")


def _request(i: int, rng: random.Random) -> dict:
    tenant = f"tenant-{i % 7}"
    return {
        "event_id": f"req-{i}",
        "tenant": tenant,
        "workflow": rng.choice(["default", "refunds", "search"]),
        "signals": {
            "alignment_score": round(rng.random(), 4),
            "epistemic_risk": round(rng.random(), 4),
            "confidence_band": round(rng.random(), 4),
        },
        "extra_field_is_ignored": True,
    }


def test_2000_mixed_requests_give_2000_correct_decisions(broker, tmp_path):
    rng = random.Random(7)
    requests = [_request(i, rng) for i in range(2000)]
    worker = start_worker(broker.bootstrap, tmp_path)
    try:
        worker.wait_ready()
        run(produce(broker.bootstrap, "decision-requests",
                    [(r["tenant"].encode(), orjson.dumps(r)) for r in requests]))
        decisions = run(read_all(broker.bootstrap, "decisions", expect=2000))
        alerts = run(read_all(broker.bootstrap, "alerts", settle_s=1))
        audit = run(read_all(broker.bootstrap, "audit", settle_s=1))

        assert len(decisions) == 2000
        by_request = {d["request_id"]: (p, k, d) for p, _, k, d in decisions}
        assert len(by_request) == 2000
        expected_alerts = 0
        for r in requests:
            partition, key, d = by_request[r["event_id"]]
            s = r["signals"]
            want = evaluate_values(s["alignment_score"], s["epistemic_risk"], s["confidence_band"], CONFIG)
            assert key == r["tenant"].encode()
            assert d["tenant"] == r["tenant"] and d["workflow"] == r["workflow"]
            assert d["verb"] == want.decision
            assert d["trust"]["raw_score"] == want.raw_score  # bit for bit
            assert d["trust"]["score"] == want.score and d["trust"]["tier"] == want.tier
            assert d["trust"]["floor_violation"] == want.floor_violation
            # the packaged "*" budget applies; no costs were published, so it says ok
            assert d["budget"]["status"] == "ok" and d["budget"]["scope"] == r["tenant"]
            assert d["route"] is None and d["overlay"] is None
            assert (d["reasons"] == []) == (want.tier == "pass" and not want.entropy_flag and not want.floor_violation)
            expected_alerts += want.floor_violation
        # a tenant's decisions stay on one partition
        assert all(len({p for p, _, d in by_request.values() if d["tenant"] == t}) == 1 for t in {r["tenant"] for r in requests})

        assert len(alerts) == expected_alerts
        assert {a["kind"] for _, _, _, a in alerts} <= {"trust_floor_violation"}

        per_partition: dict[int, list[dict]] = {}
        for p, _, _, rec in sorted(audit, key=lambda x: (x[0], x[1])):
            per_partition.setdefault(p, []).append(rec)
        kinds = Counter(rec["kind"] for recs in per_partition.values() for rec in recs)
        assert kinds["decision"] == 2000 and kinds["alert"] == expected_alerts
        for recs in per_partition.values():
            report = verify(recs)
            assert report.ok, report.first_error

        status, body = worker.get("/metrics")
        assert status == 200 and b"trust_gate_decisions_total" in body
        status, body = worker.get("/stats/trust")
        stats = json.loads(body)["tenants"]
        assert sum(w["requests"] for ws in stats.values() for w in ws) == 2000
    finally:
        worker.stop()
