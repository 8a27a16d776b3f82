"""A real worker's health and status pages: /health is 503 until ready (a readiness probe
must not pass early) while /health/live answers from the start; /budget/status lists the
configured budgets before any cost; status pages give RFC 3339 times."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta

import orjson
import pytest

from .conftest import run
from .harness import produce, read_all, start_worker

pytestmark = pytest.mark.integration

ENERGY = """
budgets:
  - {tenant: acme, workflow: refunds, period: day, usd: 50.0}
  - {tenant: acme, period: month, usd: 1000.0, tokens: 20000000}
  - {tenant: "*", period: day, usd: 100.0}
"""
RUN_ID = "run-status-pages"


def _rfc3339(text: str) -> datetime:
    assert isinstance(text, str) and text.endswith("Z"), text
    return datetime.fromisoformat(text.removesuffix("Z") + "+00:00")


def test_health_is_503_until_ready_and_the_status_pages_show_configured_budgets(broker, tmp_path):
    config = tmp_path / "config"
    config.mkdir()
    (config / "energy_governance.yaml").write_text(ENERGY)
    worker = start_worker(broker.bootstrap, tmp_path, env={"RESONTINEX_CONFIG_DIR": str(config),
                                                           "RESONTINEX_RUN_ID": RUN_ID})
    try:
        seen: list[tuple[int, bool]] = []
        deadline = time.monotonic() + 60
        while not (seen and seen[-1][1]):
            assert worker.proc.poll() is None and time.monotonic() < deadline, worker.log_tail()
            code, body = worker.get("/health")
            if code:
                health = json.loads(body)
                assert health["run_id"] == RUN_ID
                seen.append((code, health["ready"]))
                if not health["ready"]:
                    live_code, live = worker.get("/health/live")
                    assert live_code == 200 and json.loads(live)["run_id"] == RUN_ID
            time.sleep(0.05)
        assert all(code == (200 if ready else 503) for code, ready in seen), seen
        assert (503, False) in seen, "the worker was ready at its first answer: nothing checked before ready"
        assert worker.get("/health/live")[0] == 200

        code, body = worker.get("/budget/status")
        assert code == 200, body
        rows = {row["scope"]: row for row in json.loads(body)["budgets"]}
        assert sorted(rows) == ["*", "acme", "acme/refunds"]
        for row in rows.values():
            assert (row["spent_usd"], row["utilization"], row["status"]) == (0.0, 0.0, "ok"), row
            assert _rfc3339(row["period_start"]) < _rfc3339(row["period_end"])
        assert rows["*"]["limit_usd"] == 100.0 and rows["acme/refunds"]["remaining_usd"] == 50.0

        request = {"event_id": "r-1", "tenant": "zeta",
                   "signals": {"alignment_score": 0.9, "epistemic_risk": 0.1, "confidence_band": 0.1}}
        run(produce(broker.bootstrap, "decision-requests", [(b"zeta", orjson.dumps(request))]))
        run(read_all(broker.bootstrap, "decisions", expect=1))
        code, body = worker.get("/budget/status")
        assert code == 200, (code, body, worker.log_tail())
        rows = {row["scope"]: row for row in json.loads(body)["budgets"]}
        assert rows["zeta"]["limit_usd"] == 100.0 and rows["zeta"]["spent_usd"] == 0.0  # decided, no cost yet

        for path in ("/stats/trust", "/stats/trust/zeta"):
            code, body = worker.get(path)
            assert code == 200, body
            page = json.loads(body)
            (window,) = page["tenants"]["zeta"] if path == "/stats/trust" else page["windows"]
            start, end = _rfc3339(window["start"]), _rfc3339(window["end"])
            assert end - start == timedelta(seconds=page["window_s"]) and start.second == 0
            assert window["requests"] == 1
    finally:
        worker.stop()
