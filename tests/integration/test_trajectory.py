"""The trajectory role on the real broker with the real model: requests in, results and
quality alerts out, bad requests to dead letters, the worker going on."""

from __future__ import annotations

import json

import orjson
import pytest

from resontinex.schemas import TrajectoryResult

from .conftest import run
from .harness import produce, read_all, start_worker

pytestmark = pytest.mark.integration

FLUENT = "The cat sat on the mat and looked out of the window at the birds."
SCRAMBLED = "window the birds. mat cat at on sat of looked out the and The the"


def _request(event_id: str, text: str, tenant: str = "acme", **extra) -> tuple[bytes, bytes]:
    return tenant.encode(), orjson.dumps({"event_id": event_id, "tenant": tenant, "text": text, **extra})


def test_texts_are_scored_by_their_own_group_and_bad_requests_are_dead_letters(broker, tmp_path):
    worker = start_worker(broker.bootstrap, tmp_path, role="trajectory")
    try:
        health = worker.wait_ready(timeout_s=120)  # the model loads before the worker joins its group
        assert health["model"]["ok"] and health["model"]["device"] == "cpu"
        run(produce(broker.bootstrap, "trajectory-requests", [
            _request("t-1", FLUENT, request_id="r-1", detail=True),
            (b"acme", b"{not json"),
            _request("t-2", "x" * 10_001),                     # over 10,000 characters
            _request("t-3", FLUENT, model="gpt-5"),            # a model this group does not serve
            _request("t-4", SCRAMBLED, tenant="globex"),
            _request("t-1", FLUENT, request_id="r-1"),         # a producer retry: dropped
        ]))
        run(produce(broker.bootstrap, "trajectory-requests", [_request("t-5", FLUENT)]))  # later: a repeat text
        results = {r["request_event_id"]: r for *_, r in run(read_all(broker.bootstrap, "trajectory-results",
                                                                         expect=3, settle_s=1.0))}
        dead = [d for *_, d in run(read_all(broker.bootstrap, "dead-letters", expect=3))]
        alerts = [a for *_, a in run(read_all(broker.bootstrap, "alerts", expect=1, settle_s=0.5))]
        _, metrics = worker.get("/metrics")
        code, body = worker.get("/trajectory/health")
    finally:
        worker.stop()
    assert sorted(results) == ["t-1", "t-4", "t-5"]
    fluent, scrambled, repeat = results["t-1"], results["t-4"], results["t-5"]
    for result in results.values():
        TrajectoryResult.model_validate(result)  # CONTRACT §3.6
    assert fluent["passed_quality_check"] and not scrambled["passed_quality_check"]
    assert scrambled["perplexity"] > 10 * fluent["perplexity"] and scrambled["mean_entropy"] > fluent["mean_entropy"]
    assert (fluent["request_id"], fluent["tenant"], fluent["device"], fluent["truncated"]) == ("r-1", "acme", "cpu", False)
    assert fluent["model"].startswith("SmolLM2") and fluent["n_tokens"] > 10 and not fluent["cached"]
    assert repeat["cached"] and repeat["perplexity"] == fluent["perplexity"]
    assert len(fluent["token_logprobs"]) == len(fluent["token_entropies"]) == fluent["n_tokens"]
    assert "token_logprobs" not in scrambled  # only when asked for
    assert sorted(d["error"]["code"] for d in dead) == ["model_unavailable", "not_json", "out_of_range"]
    assert [(a["kind"], a["tenant"], a["source_event_id"]) for a in alerts] == [("quality_check_failed", "globex", "t-4")]
    assert b"resontinex_trajectory_tokens_total" in metrics and b'resontinex_trajectory_cache_total{result="hit"} 1.0' in metrics
    assert code == 200 and json.loads(body)["texts"] == 3
