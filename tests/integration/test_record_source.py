"""`app.engine.record_source` against the embedded broker, with real Faust workers.

Each worker is `tests/integration/record_source_app.py`: it forwards every record of a
4-partition topic to an output topic through a `RecordSource` and counts records per
partition in a Faust table written outside stream iteration. Checked here: one worker
forwards every record exactly once, in order, commits the group's offsets to the end and
stops on SIGTERM, and a worker with no local state then starts each partition only once
its table is recovered, at the committed offset; two workers split the partitions and forward each record once; after a
SIGKILL the survivor takes the dead worker's partitions over only once their table is
recovered, every record comes out at least once (the survivor's own partitions exactly
once), the table's counters were recovered from their changelog, and the committed
offsets reach the end; the `start_offset` callback decides where a partition starts; an
unexpected error in the handler ends the worker.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from resontinex.app.engine.failfast import EXIT_CODE
from resontinex.app.engine.offsets import true_end_offsets

from .conftest import run
from .harness import REPO, STOP_DEADLINE_S, produce, read_all, stop_process

pytestmark = pytest.mark.integration

PARTITIONS = 4
SOURCE, OUTPUT = "rs-in", "rs-out"
APP_ID = "rs-test"
CHANGELOG = f"{APP_ID}-counts-changelog"  # Faust's name for the app's `counts` table
KEYS = [f"k{i}".encode() for i in range(16)]  # murmur2 puts some on every one of 4 partitions


@dataclass
class Worker:
    proc: subprocess.Popen
    status: Path
    log: Path

    def report(self) -> dict:
        try:
            return json.loads(self.status.read_text())
        except (OSError, ValueError):
            return {}

    def partitions(self) -> set[int]:
        return set(self.report().get("partitions", ()))

    def tail(self, n: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else ""

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(STOP_DEADLINE_S)


def _start(bootstrap: str, tmp: Path, name: str, env: dict[str, str] | None = None) -> Worker:
    data = tmp / name
    data.mkdir(parents=True, exist_ok=True)
    status, log_path = data / "status.json", data / "worker.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.record_source_app", bootstrap, str(data / "faust"), APP_ID,
             SOURCE, OUTPUT, str(status)],
            cwd=REPO, env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
    return Worker(proc, status, log_path)


def _wait_split(workers: list[Worker], timeout_s: float = 90.0) -> list[set[int]]:
    """Until every worker fetches some partitions, none twice, all of them in all."""
    deadline = time.monotonic() + timeout_s
    while True:
        for w in workers:
            assert w.proc.poll() is None, f"worker exited with {w.proc.returncode}:\n{w.tail()}"
        parts = [w.partitions() for w in workers]
        if all(parts) and sum(map(len, parts)) == PARTITIONS and set().union(*parts) == set(range(PARTITIONS)):
            return parts
        assert time.monotonic() < deadline, f"no split: {parts}\n" + "\n".join(w.tail() for w in workers)
        time.sleep(0.2)


async def _create_topics(bootstrap: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(n, num_partitions=PARTITIONS, replication_factor=1)
                                   for n in (SOURCE, OUTPUT)])
    finally:
        await admin.close()


def _records(n: int, start: int = 0) -> list[tuple[bytes, bytes]]:
    return [(KEYS[i % len(KEYS)], orjson.dumps({"i": i})) for i in range(start, start + n)]


def _tps(topic: str) -> list[TopicPartition]:
    return [TopicPartition(topic, p) for p in range(PARTITIONS)]


async def _committed(bootstrap: str) -> dict[int, int | None]:
    """The group's committed offsets on the source topic (a consumer that never joins it)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=APP_ID, enable_auto_commit=False)
    await consumer.start()
    try:
        return {tp.partition: await consumer.committed(tp) for tp in _tps(SOURCE)}
    finally:
        await consumer.stop()


def _ends(topic: str, bootstrap: str) -> dict[int, int]:
    return {tp.partition: end for tp, end in run(true_end_offsets(bootstrap, _tps(topic))).items()}


def _wait_committed(bootstrap: str, timeout_s: float = 30.0) -> dict[int, int]:
    """Until the committed offsets equal the source's end offsets (every record handled)."""
    ends = _ends(SOURCE, bootstrap)
    deadline = time.monotonic() + timeout_s
    while (committed := run(_committed(bootstrap))) != ends:
        assert time.monotonic() < deadline, f"committed {committed}, end offsets {ends}"
        time.sleep(0.5)
    return ends


def _counters(bootstrap: str) -> dict[int, int]:
    """The `counts` table as its changelog holds it: the last value written per partition key."""
    last: dict[int, int] = {}
    for _p, _offset, key, value in sorted(run(read_all(bootstrap, CHANGELOG, settle_s=1.0)), key=lambda r: r[:2]):
        last[int(orjson.loads(key))] = value
    return last


def _per_partition(outputs: Iterable[tuple]) -> dict[int, list[int]]:
    by: dict[int, list[int]] = defaultdict(list)
    for partition, _offset, _key, value in sorted(outputs, key=lambda r: r[:2]):
        by[partition].append(value["i"])
    return by


@pytest.fixture
def topics(broker):
    run(_create_topics(broker.bootstrap))
    return broker


def test_one_worker_forwards_each_record_once_in_order_commits_and_a_fresh_one_resumes(topics, tmp_path):
    bootstrap = topics.bootstrap
    worker = _start(bootstrap, tmp_path, "w0")
    try:
        _wait_split([worker])
        n = 3000
        run(produce(bootstrap, SOURCE, _records(n)))
        out = run(read_all(bootstrap, OUTPUT, expect=n, timeout_s=60))
        assert Counter(v["i"] for *_, v in out) == Counter(range(n))  # each exactly once
        for partition, seq in _per_partition(out).items():
            assert seq == sorted(seq), f"partition {partition} out of order"
        ends = _wait_committed(bootstrap)
        assert _counters(bootstrap) == ends  # one count per record, each partition's count its end offset
        # Faust's own consumer is assigned the source's partitions but never fetched them,
        # while it did fetch its table's changelog partitions.
        report = worker.report()
        assert {f"{SOURCE}[{p}]" for p in range(PARTITIONS)} <= set(report["faust_assigned"])
        assert not [tp for tp in report["faust_fetched"] if tp.startswith(f"{SOURCE}[")], report
        assert [tp for tp in report["faust_fetched"] if tp.startswith(CHANGELOG)], report
    finally:
        stop_process(worker.proc)
    assert worker.proc.returncode == 0, f"SIGTERM did not stop the worker cleanly:\n{worker.tail()}"
    assert run(_committed(bootstrap)) == ends

    fresh = _start(bootstrap, tmp_path, "w1")  # no local table data: only its changelog has it
    try:
        _wait_split([fresh])
        table_at_start = {int(p): v for p, v in fresh.report()["table_at_start"].items()}
        assert table_at_start == ends, "a partition started before its table was recovered"
        run(produce(bootstrap, SOURCE, _records(100, n)))
        out = run(read_all(bootstrap, OUTPUT, expect=n + 100, timeout_s=60))
        assert Counter(v["i"] for *_, v in out) == Counter(range(n + 100))  # resumed at the committed offsets
    finally:
        stop_process(fresh.proc)


def test_two_workers_split_the_partitions_and_forward_each_record_once(topics, tmp_path):
    bootstrap = topics.bootstrap
    workers = [_start(bootstrap, tmp_path, f"w{i}") for i in range(2)]
    try:
        _wait_split(workers)
        n = 4000
        run(produce(bootstrap, SOURCE, _records(n)))
        out = run(read_all(bootstrap, OUTPUT, expect=n, timeout_s=60))
        assert Counter(v["i"] for *_, v in out) == Counter(range(n))
        _wait_committed(bootstrap)
    finally:
        for w in workers:
            stop_process(w.proc)


def _produce_paced(bootstrap: str, n: int, chunks: int = 40, pause_s: float = 0.1) -> threading.Thread:
    def paced() -> None:
        size = n // chunks
        for i in range(chunks):
            run(produce(bootstrap, SOURCE, _records(size, i * size)))
            time.sleep(pause_s)

    thread = threading.Thread(target=paced, daemon=True)
    thread.start()
    return thread


def test_sigkill_moves_partitions_with_their_table_and_offsets(topics, tmp_path):
    bootstrap = topics.bootstrap
    survivor, victim = workers = [_start(bootstrap, tmp_path, f"w{i}") for i in range(2)]
    try:
        kept, moved = _wait_split(workers)
        n = 8000
        producer = _produce_paced(bootstrap, n)
        deadline = time.monotonic() + 60
        while sum(_ends(OUTPUT, bootstrap).values()) < n // 4:
            assert time.monotonic() < deadline, victim.tail()
            time.sleep(0.1)
        committed_before = run(_committed(bootstrap))
        victim.kill()
        assert producer.is_alive(), "the load finished before the kill; the test proves nothing"
        assert any(committed_before[p] for p in moved), f"the victim committed nothing: {committed_before}"
        producer.join(120)

        out = run(read_all(bootstrap, OUTPUT, expect=n, timeout_s=120))
        seen = Counter(v["i"] for *_, v in out)
        assert set(seen) == set(range(n)), f"missing: {sorted(set(range(n)) - set(seen))[:20]}"
        by_partition = _per_partition(out)
        for p in kept:  # the survivor never lost these: each record once, rebalance or not
            assert Counter(by_partition[p]) == Counter(set(by_partition[p])), f"duplicates in kept partition {p}"

        deadline = time.monotonic() + 60
        while survivor.partitions() != set(range(PARTITIONS)):
            assert time.monotonic() < deadline, survivor.tail()
            time.sleep(0.2)
        table_at_start = {int(p): v for p, v in survivor.report()["table_at_start"].items()}
        for p in moved:  # the survivor started them only once their table was recovered
            assert table_at_start[p] >= committed_before[p], (p, table_at_start, committed_before)
        ends = _wait_committed(bootstrap, timeout_s=60)
        counters = _counters(bootstrap)
        for p in range(PARTITIONS):
            # A counter restarted from zero after the takeover would miss the victim's
            # committed records; replayed ones may count twice (at least once).
            assert counters.get(p, 0) >= ends[p], f"partition {p}: counter {counters.get(p)} < {ends[p]} records"
    finally:
        for w in workers:
            stop_process(w.proc)


def test_the_start_offset_callback_says_where_each_partition_starts(topics, tmp_path):
    bootstrap = topics.bootstrap
    n, start = 400, 10
    run(produce(bootstrap, SOURCE, _records(n)))
    inputs = run(read_all(bootstrap, SOURCE, expect=n, settle_s=0.5))
    expected = Counter(v["i"] for _p, offset, _k, v in inputs if offset >= start)
    assert 0 < len(expected) < n
    worker = _start(bootstrap, tmp_path, "w0", env={"RS_START_OFFSET": str(start)})
    try:
        _wait_split([worker])
        out = run(read_all(bootstrap, OUTPUT, expect=sum(expected.values()), timeout_s=60))
        assert Counter(v["i"] for *_, v in out) == expected
        assert worker.report()["table_at_start"] == {str(p): 0 for p in range(PARTITIONS)}
    finally:
        stop_process(worker.proc)


def test_an_unexpected_error_in_the_handler_ends_the_worker(topics, tmp_path):
    bootstrap = topics.bootstrap
    worker = _start(bootstrap, tmp_path, "w0")
    try:
        _wait_split([worker])
        run(produce(bootstrap, SOURCE, [(KEYS[0], b"poison")]))
        try:
            worker.proc.wait(60)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the worker did not exit:\n{worker.tail()}") from None
        assert worker.proc.returncode == EXIT_CODE, worker.tail()
        assert "poison record" in worker.tail()
    finally:
        stop_process(worker.proc)
