"""`resontinex dead-letters` against a real broker and worker: an outcome that arrives before
its decision is dead-lettered (`unknown_decision`); once the decision exists, re-driving the
original bytes gets it processed, and a second re-drive is refused as already done."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import orjson
import pytest
from aiokafka import ConsumerRecord

from resontinex.agents.gate import decision_id
from resontinex.app.cli import main
from resontinex.app.commands.dead_letters import REDRIVE_OF
from resontinex.app.commands.topic_reader import read_topic

from .conftest import run
from .harness import Worker, produce, read_all, start_worker

pytestmark = pytest.mark.integration

OUTCOME = orjson.dumps({"event_id": "o-1", "tenant": "acme", "decision_id": decision_id("acme", "r-1"),
                        "success": True, "actual_cost_usd": 0.12, "actual_latency_ms": 340.0,
                        "actual_reputation": 90})
REQUEST = orjson.dumps({"event_id": "r-1", "tenant": "acme",
                        "signals": {"alignment_score": 0.8, "epistemic_risk": 0.3, "confidence_band": 0.2}})


def _cli(capsys: pytest.CaptureFixture[str], bootstrap: str, *argv: str, code: int = 0) -> str:
    assert main(["dead-letters", *argv, "--bootstrap", bootstrap, "--log-level", "ERROR"]) == code, \
        capsys.readouterr().err
    return capsys.readouterr().out


def _records(bootstrap: str, topic: str) -> list[ConsumerRecord]:
    found: list[ConsumerRecord] = []
    run(read_topic(bootstrap, topic, found.append))
    return found


def _metric(worker: Worker, name: str, **labels: str) -> float:
    _, body = worker.get("/metrics")
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    found = re.search(rf"^{name}\{{{re.escape(wanted)}\}} (\S+)$", body.decode(), re.MULTILINE)
    return float(found[1]) if found else 0.0


def _wait_metric(worker: Worker, value: float, name: str, timeout_s: float = 20.0, **labels: str) -> None:
    deadline = time.monotonic() + timeout_s
    while _metric(worker, name, **labels) < value:
        assert time.monotonic() < deadline, f"{name}{labels} below {value}:\n{worker.log_tail()}"
        time.sleep(0.2)


def test_a_dead_letter_is_listed_shown_and_redriven_once_its_cause_is_fixed(broker: Any, tmp_path: Any,
                                                                            capsys: pytest.CaptureFixture[str]) -> None:
    bootstrap = broker.bootstrap
    worker = start_worker(bootstrap, tmp_path)
    try:
        worker.wait_ready()
        run(produce(bootstrap, "outcomes", [(b"acme", OUTCOME)]))  # before its decision exists
        ((partition, offset, _, letter),) = run(read_all(bootstrap, "dead-letters", expect=1, settle_s=0.5))
        assert letter["error"]["code"] == "unknown_decision"
        dead_id = f"{partition}:{offset}"

        (listed,) = json.loads(_cli(capsys, bootstrap, "list", "--output-format", "json", "--topic", "outcomes"))
        assert (listed["id"], listed["source_topic"], listed["code"], listed["event_id"]) == (
            dead_id, "outcomes", "unknown_decision", "o-1")
        table = _cli(capsys, bootstrap, "list", "--code", "unknown_decision").splitlines()
        assert len(table) == 2 and dead_id in table[1].split()
        shown = json.loads(_cli(capsys, bootstrap, "show", dead_id))
        assert shown["original"] == {"encoding": "json", "value": orjson.loads(OUTCOME)}
        assert shown["dead_letter"] == letter

        dry = _cli(capsys, bootstrap, "redrive", dead_id)
        assert dry.startswith(f"would send {dead_id} → outcomes[{letter['partition']}]") and "dry run: 1 to send" in dry
        assert len(_records(bootstrap, "outcomes")) == 1  # a dry run sends nothing

        run(produce(bootstrap, "decision-requests", [(b"acme", REQUEST)]))  # the cause, fixed
        run(read_all(bootstrap, "decisions", expect=1, settle_s=0.2))
        sent = _cli(capsys, bootstrap, "redrive", "--code", "unknown_decision", "--apply", "--operator", "ops-1",
                    "--reason", "decision r-1 now made")
        assert sent.splitlines()[0].startswith(f"sent {dead_id} → outcomes[{letter['partition']}]@1 ")
        original, redriven = _records(bootstrap, "outcomes")
        assert (redriven.value, redriven.key, redriven.partition) == (original.value, original.key, original.partition)
        assert redriven.value == OUTCOME and redriven.key == b"acme"
        headers = dict(redriven.headers)
        assert headers[REDRIVE_OF] == letter["event_id"].encode()
        assert headers["resontinex-redrive-operator"] == b"ops-1"

        # the re-drive is audited: an `override` record on the `_system` tenant's chain, with who and why
        audited = [r for *_, r in run(read_all(bootstrap, "audit", settle_s=0.5)) if r["kind"] == "override"]
        ((record,),) = [[r for r in audited if "dead_letter_redrive" in r["record"]]]
        redrive = record["record"]["dead_letter_redrive"]
        assert record["tenant"] == "_system" and (redrive["operator_id"], redrive["reason"]) == (
            "ops-1", "decision r-1 now made")
        assert redrive["redriven"] == [{"dead_letter": dead_id, "dead_letter_event_id": letter["event_id"],
                                        "source_topic": "outcomes", "partition": letter["partition"],
                                        "offset": letter["offset"], "redriven_offset": 1, "key": "acme",
                                        "event_id": "o-1"}]
        assert "published dead_letter_redrive" in sent

        # processed this time: counted as an event of `outcomes`, and no second dead letter
        _wait_metric(worker, 2.0, "resontinex_events_total", topic="outcomes")
        assert _metric(worker, "resontinex_dead_letters_total", code="unknown_decision", topic="outcomes") == 1.0
        assert len(_records(bootstrap, "dead-letters")) == 1

        again = _cli(capsys, bootstrap, "redrive", dead_id, "--apply", "--operator", "ops-1", "--reason", "twice?")
        assert f"skip {dead_id}" in again and "already re-driven to outcomes" in again and "by ops-1" in again
        assert "0 sent, 1 skipped" in again
        assert len(_records(bootstrap, "outcomes")) == 2
    finally:
        worker.stop()
