"""(c2) The forward-only work of (c), on record batches past Faust's per-event delivery.

The same work as `bench.forward_app forward` (each record's raw value appended to an
aiokafka record batch for the same partition of the output topic through the gate's
`OutputSink`, the acks awaited), but the records come from `app.engine.record_source`:
Faust keeps the group and the assignment of `decision-requests`, the source's own aiokafka
consumer fetches them and hands them over in adaptive batches (the worker's `batch_max`
and `batch_linger_s`), one flush per batch, offsets committed through Faust's member.

Run: `python -m bench.forward_records_app BOOTSTRAP DATADIR OUTPUT_TOPIC`
"""

from __future__ import annotations

import sys
from pathlib import Path

import faust

from resontinex.app.engine.record_source import Record, RecordSource
from resontinex.app.settings import Settings
from resontinex.app.engine.sink import OutputSink, SinkService

from ._faust import SOURCE_TOPIC, bench_app, run_worker


def build(bootstrap: str, datadir: Path, output_topic: str) -> faust.App:
    settings = Settings.from_env()
    app = bench_app("bench-forward-records", bootstrap, datadir)
    sink = OutputSink(bootstrap, client_id="bench-forward-records-sink")
    app.add_dependency(SinkService(sink, loop=app.loop))

    async def forward(records: list[Record]) -> None:
        add = sink.add
        for r in records:
            add(output_topic, r.partition, r.key, r.value or b"")
        await sink.flush()

    RecordSource.attach(app, [SOURCE_TOPIC], forward, bootstrap=bootstrap,
                        fetch_max_wait_ms=settings.fetch_max_wait_ms,
                        max_batch=settings.batch_max, linger_s=settings.batch_linger_s)
    return app


def main(argv: list[str]) -> None:
    if len(argv) != 3:
        raise SystemExit(__doc__)
    run_worker(build(argv[0], Path(argv[1]), argv[2]))


if __name__ == "__main__":
    main(sys.argv[1:])
