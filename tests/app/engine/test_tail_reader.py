"""The shared tail reader: a clear error when Kafka cannot be reached, and `stopped` told why it stopped."""

from __future__ import annotations

import asyncio
import socket

import pytest

from resontinex.app.engine.tail_reader import TailReader
from resontinex.app.exceptions import BrokerError


class Recorder(TailReader):
    def __init__(self, bootstrap: str) -> None:
        super().__init__(bootstrap, "decisions", max_bytes=1 << 20)
        self.values: list[bytes] = []
        self.stops: list[BaseException | None] = []

    def on_record(self, value: bytes) -> None:
        self.values.append(value)

    def stopped(self, error: BaseException | None) -> None:
        self.stops.append(error)


def refused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_kafka_is_a_broker_error_naming_it() -> None:
    port = refused_port()
    with pytest.raises(BrokerError, match=f"127.0.0.1:{port}"):
        asyncio.run(Recorder(f"127.0.0.1:{port}").start())


def test_stopped_hears_of_a_failed_read_and_of_a_stop() -> None:
    async def scenario() -> tuple[list[BaseException | None], bool]:
        reader = Recorder("127.0.0.1:1")

        async def broken() -> None:
            raise OSError("connection reset")

        reader._task = asyncio.create_task(broken())
        reader._task.add_done_callback(reader._ended)
        await asyncio.sleep(0.05)
        alive = reader.alive
        await reader.stop()
        return reader.stops, alive

    stops, alive = asyncio.run(scenario())
    assert [type(e) for e in stops] == [OSError, type(None)] and not alive
