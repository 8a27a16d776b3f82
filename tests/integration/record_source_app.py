"""A small Faust worker on `app.engine.record_source`, for tests/integration/test_record_source.py.

It forwards every record of INPUT to OUTPUT (same partition, key and value, one batched
flush per batch) and counts the records of each partition in a Faust table (`counts`, key
the partition as a string) written outside stream iteration, as the shell will. Every 0.2 s
it replaces STATUS (JSON) with the partitions its source fetches and, per partition, the
table's counter as the source's `start_offset` callback found it when it started the
partition (the table must be recovered by then). The callback returns RS_START_OFFSET
when that is set, else None (the group's committed offset). A record whose value is
`poison` makes the handler raise, which must end the process (exit 70).

    python -m tests.integration.record_source_app BOOTSTRAP DATADIR APP_ID INPUT OUTPUT STATUS
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from pathlib import Path

import faust

from resontinex.app.engine.continuity import FetchedEvent
from resontinex.app.engine.record_source import Record, RecordSource
from resontinex.app.faust_app import stream_app
from resontinex.app.engine.faust_compat import event_context, use_fetch_max_wait, use_true_highwaters
from resontinex.app.logs import logging_config
from resontinex.app.settings import Settings
from resontinex.app.engine.sink import OutputSink, SinkService

PARTITIONS = 4
TABLE = "counts"


def build(bootstrap: str, datadir: Path, app_id: str, source_topic: str, output_topic: str,
          status: Path) -> faust.App:
    settings = Settings.from_env()
    use_true_highwaters(bootstrap)
    use_fetch_max_wait(settings.fetch_max_wait_ms)
    app = stream_app(app_id, bootstrap, datadir, partitions=PARTITIONS, web_enabled=False)
    counts = app.Table(TABLE, default=int, partitions=PARTITIONS)
    sink = OutputSink(bootstrap, client_id=f"{app_id}-sink")
    app.add_dependency(SinkService(sink, loop=app.loop))

    async def handle(records: list[Record]) -> None:
        per_partition: Counter[int] = Counter()
        last: dict[int, Record] = {}
        for r in records:
            if r.value == b"poison":
                raise RuntimeError(f"poison record at {r.topic}[{r.partition}]@{r.offset}")
            sink.add(output_topic, r.partition, r.key, r.value or b"")
            per_partition[r.partition] += 1
            last[r.partition] = r
        await sink.flush()
        for partition, n in per_partition.items():
            with event_context(FetchedEvent(last[partition])):  # type: ignore[arg-type]
                counts[str(partition)] += n

    table_at_start: dict[int, int] = {}
    fixed_start = os.environ.get("RS_START_OFFSET")

    async def start_offset(topic: str, partition: int) -> int | None:
        table_at_start[partition] = counts[str(partition)]
        return int(fixed_start) if fixed_start else None

    source = RecordSource.attach(app, [source_topic], handle, bootstrap=bootstrap, start_offset=start_offset,
                                 fetch_max_wait_ms=settings.fetch_max_wait_ms, max_batch=500, linger_s=0.01)

    @app.timer(0.2)
    async def report() -> None:
        tmp = status.with_suffix(".tmp")
        tmp.write_text(json.dumps({"pid": os.getpid(), "partitions": sorted(tp.partition for tp in source.partitions),
                                   "table_at_start": table_at_start, **_faust_fetched(app, source_topic)}))
        os.replace(tmp, status)

    return app


def _faust_fetched(app: faust.App, source_topic: str) -> dict[str, list[str]]:
    """The partitions assigned to Faust's own consumer that it ever had a fetch response for
    (aiokafka's high watermark comes only from fetch responses): never the source topic's."""
    try:
        assigned = app.consumer.assignment()
        fetched = sorted(f"{tp.topic}[{tp.partition}]" for tp in assigned if app.consumer.highwater(tp) is not None)
    except Exception:  # not started, or the assignment changed meanwhile: next time
        return {}
    return {"faust_assigned": sorted(f"{tp.topic}[{tp.partition}]" for tp in assigned), "faust_fetched": fetched}


def main(argv: list[str]) -> None:
    if len(argv) != 6:
        raise SystemExit(__doc__)
    bootstrap, datadir, app_id, source_topic, output_topic, status = argv
    app = build(bootstrap, Path(datadir), app_id, source_topic, output_topic, Path(status))
    faust.Worker(app, loglevel="INFO", logging_config=logging_config("INFO"), quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main(sys.argv[1:])
