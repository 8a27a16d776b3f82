"""`resontinex.client` without a broker: what it refuses before publishing, its defaults,
its errors. (Against a broker: tests/integration/test_client.py.)"""

from __future__ import annotations

import asyncio
import socket

import pytest

from resontinex.client import Client, ClientError, InvalidRequest, ResultTimeout, SyncClient, Unreachable
from resontinex.schemas import Alert, DecisionRequest

GOOD = {"event_id": "r-1", "tenant": "acme",
        "signals": {"alignment_score": 0.8, "epistemic_risk": 0.3, "confidence_band": 0.2}}


ALERT = {"event_id": "a-1", "tenant": "acme", "kind": "trust_floor_violation", "severity": "warning",
         "message": "m", "ts": "2026-01-01T00:00:00.000Z"}


def refused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again: nothing listens there


@pytest.mark.parametrize(("event", "code"), [
    ({**GOOD, "signals": {**GOOD["signals"], "alignment_score": 1.5}}, "out_of_range"),
    ({k: v for k, v in GOOD.items() if k != "tenant"}, "missing_field"),
    ({**GOOD, "signals": {**GOOD["signals"], "confidence_band": float("nan")}}, None),  # not finite: refused
])
def test_an_event_a_worker_would_dead_letter_is_refused_with_the_dead_letters_code(event: dict,
                                                                                   code: str | None) -> None:
    with pytest.raises(InvalidRequest) as caught:
        asyncio.run(Client("127.0.0.1:1").decide(event))  # refused before anything connects
    assert code is None or caught.value.code == code
    assert isinstance(caught.value, ClientError) and caught.value.message


def test_a_model_and_its_mapping_are_the_same_request() -> None:
    client = Client("127.0.0.1:1")
    assert client._valid(DecisionRequest, DecisionRequest.model_validate(GOOD)) == client._valid(DecisionRequest, GOOD)


def test_publish_takes_only_the_models_of_the_topics_it_writes() -> None:
    with pytest.raises(TypeError, match="not Alert"):
        asyncio.run(Client("127.0.0.1:1").publish(Alert.model_validate(ALERT)))  # type: ignore[arg-type]


def test_defaults_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.delenv("RESONTINEX_TOPIC_PREFIX", raising=False)
    assert (Client().bootstrap, Client().topic("decisions")) == ("127.0.0.1:9092", "decisions")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "k:9093")
    monkeypatch.setenv("RESONTINEX_TOPIC_PREFIX", "prod.")
    assert (Client().bootstrap, Client().topic("decision_requests")) == ("k:9093", "prod.decision-requests")
    assert Client(topic_prefix="").topic("audit") == "audit"


def test_no_broker_is_one_clear_error() -> None:
    port = refused_port()
    with pytest.raises(Unreachable, match=f"127.0.0.1:{port}"):
        SyncClient(f"127.0.0.1:{port}")


def test_a_timeout_names_the_requests_and_keeps_the_answers() -> None:
    e = ResultTimeout([f"r-{i}" for i in range(7)], 2.5, {"r-9": "answer"})
    assert str(e) == "no answer to r-0, r-1, r-2, r-3, r-4 and 2 more within 2.5 s (is a worker of the group running?)"
    assert isinstance(e, TimeoutError) and e.answered == {"r-9": "answer"}


def test_a_reply_reader_that_stops_on_an_error_fails_every_request_waiting_on_it() -> None:
    from resontinex.client._topics import Replies
    from resontinex.schemas import Decision

    async def scenario() -> tuple[BaseException | None, bool]:
        replies = Replies("127.0.0.1:1", "decisions", Decision, lambda d: d.request_id, 1 << 20)
        waiting = replies.expect(["r-1"])["r-1"]

        async def broken() -> None:
            raise OSError("connection reset")

        replies._task = asyncio.create_task(broken())
        replies._task.add_done_callback(replies._ended)
        await asyncio.wait([waiting], timeout=5)
        return waiting.exception(), replies.alive

    error, alive = asyncio.run(scenario())
    assert isinstance(error, ClientError) and "connection reset" in str(error) and not alive
