"""(c) The framework's ceiling: a Faust agent on the gate's topic that does no work.

Two modes, both `async for event in stream.events()` on `decision-requests`:

* ``forward``: append each event's raw value to an aiokafka record batch for the same
  partition of the output topic (`app.sink.OutputSink`, the gate's own batched output)
  and flush every `FLUSH_EVERY` events or `FLUSH_S` seconds, waiting for the acks, as the
  gate does. Decisions/s is read from the output topic like every other variant.
* ``count``: only count. There is no output, so the agent writes its own figures to
  REPORT (a JSON file, replaced atomically) once it has seen N events: the wall time
  of the first, the WARMUP-th and the N-th event.

Run: `python -m bench.forward_app forward BOOTSTRAP DATADIR OUTPUT_TOPIC`
     `python -m bench.forward_app count BOOTSTRAP DATADIR REPORT N WARMUP`
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from resontinex.app.engine.sink import OutputSink

from ._faust import bench_app, run_worker, source_topic

FLUSH_EVERY = 1000
FLUSH_S = 0.02


def build_forward(bootstrap: str, datadir: Path, output_topic: str):
    app = bench_app("bench-forward", bootstrap, datadir)
    sink = OutputSink(bootstrap, client_id="bench-forward-sink")
    state = {"started": False, "pending": 0, "last_flush": time.monotonic()}

    async def flush() -> None:
        state["pending"], state["last_flush"] = 0, time.monotonic()
        await sink.flush()

    @app.agent(source_topic(app), name="forward")
    async def forward(stream):
        if not state["started"]:
            await sink.start()
            state["started"] = True
        async for event in stream.events():
            msg = event.message
            sink.add(output_topic, msg.partition, msg.key, msg.value)
            state["pending"] += 1
            if state["pending"] >= FLUSH_EVERY or time.monotonic() - state["last_flush"] >= FLUSH_S:
                await flush()

    @app.timer(FLUSH_S)
    async def tail_flush() -> None:  # the last partial batch when the input goes quiet
        if state["started"] and state["pending"] and time.monotonic() - state["last_flush"] >= FLUSH_S:
            await flush()

    return app


def build_count(bootstrap: str, datadir: Path, report: Path, n: int, warmup: int):
    app = bench_app("bench-count", bootstrap, datadir)
    marks: dict[str, float] = {}

    @app.agent(source_topic(app), name="count")
    async def count(stream):
        seen = 0
        async for _event in stream.events():
            seen += 1
            if seen == 1:
                marks["t_first"] = time.time()
            if seen == warmup:
                marks["t_warmup"] = time.time()
            if seen == n:
                marks["t_last"] = time.time()
                tmp = report.with_suffix(".tmp")
                tmp.write_text(json.dumps({"count": seen, "warmup": warmup, **marks}))
                os.replace(tmp, report)

    return app


def main(argv: list[str]) -> None:
    if len(argv) == 4 and argv[0] == "forward":
        run_worker(build_forward(argv[1], Path(argv[2]), argv[3]))
    elif len(argv) == 6 and argv[0] == "count":
        run_worker(build_count(argv[1], Path(argv[2]), Path(argv[3]), int(argv[4]), int(argv[5])))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
