"""The naive baseline of the telemetry bench: the telemetry agent's work the textbook Faust way.

One event at a time (`async for event in stream.events()`): decode and validate the record
(`schemas.decode(Telemetry, ...)`), take its time (`ts`, else the record's timestamp), then
for the source key and, for a record of an enhancement, the `enhancement_id/arm` key, read
the key's value in the event's 1-minute tumbling window (a Faust windowed table, RocksDB,
kept 24 hours, `key_index` as the project's), update count / mean / m2 / min / max of each
metric in it (Welford's update) and write it back: one or two windowed table writes, hence
one or two changelog messages, per event. The windows hold **no sample** (the project keeps
a bottom-64 sample per window and metric: that is work the baseline is spared).

A record of an enhancement also sends its partial on the internal `enhancement-feed` topic,
keyed by the enhancement id, on the partition the project's telemetry agent uses, in the
project's format (`type`, `enhancement_id`, `arm`, `window_start`, `source`, `upto`,
`metrics`: the arm's window so far, `samples`: this one value's sample entry): one `await
topic.send` per event, where the project sends one partial per enhancement, arm and window
per batch. Nothing reads the feed here (the project's worker also routes what it sends:
work the baseline is spared too). Records are not checked against their key, their window
or an `upto` offset (the project does all three).

The bench reads two pages of its Faust web server:

* `GET /bench/count` → `{"events": records handled}` (counted after each event's writes and send);
* `GET /bench/sums` → `{"sources": {source: {metric: n}}, "arms": {key: {metric: n}}}`, the
  counts summed over every window this worker holds, to check at the end that every record
  was folded.

Run: `python -m bench.naive_telemetry_app BOOTSTRAP DATADIR WEB_PORT` (stop it with SIGTERM).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Iterable, Mapping

import orjson
from faust.web import Request, Response, View

from resontinex.agents.enhancement import FEED_TELEMETRY, fold, window_start
from resontinex.app.faust_app import stream_app
from resontinex.app.engine.faust_compat import use_fetch_max_wait
from resontinex.app.settings import Settings
from resontinex.schemas import Telemetry, decode, ts_to_ms
from resontinex.topics import partition_of

from ._faust import PARTITIONS, raw_topic, run_worker

APP_ID = "bench-naive-telemetry"
WINDOW_S = 60.0
KEEP_S = 86_400.0
PARTIAL_K = 200
"""The sample size of a partial (the project's `canary.sample_size`); one value here."""


def updated(value: Mapping[str, Any] | None, metrics: Mapping[str, float]) -> dict[str, dict[str, float]]:
    """A window's value with one record's metrics added (Welford), as a new dict.

    >>> v = updated(None, {"q": 1.0})
    >>> v = updated(v, {"q": 3.0, "r": 2.0})
    >>> v["q"], v["r"]["n"]
    ({'n': 2, 'mean': 2.0, 'm2': 2.0, 'min': 1.0, 'max': 3.0}, 1)
    """
    out = dict(value or {})
    for name, x in metrics.items():
        st = out.get(name)
        if not st:
            out[name] = {"n": 1, "mean": x, "m2": 0.0, "min": x, "max": x}
            continue
        n = st["n"] + 1
        delta = x - st["mean"]
        mean = st["mean"] + delta / n
        out[name] = {"n": n, "mean": mean, "m2": st["m2"] + delta * (x - mean),
                     "min": min(st["min"], x), "max": max(st["max"], x)}
    return out


def partial(event: Telemetry, partition: int, offset: int, at: float,
            window: Mapping[str, Mapping[str, float]]) -> tuple[str, bytes]:
    """The enhancement partial of one record, as the project's telemetry agent writes it
    for a group of records (here a group of one), with the arm's `window` so far:
    (enhancement id, value)."""
    assert event.enhancement_id is not None
    arm = event.arm or "enhancement"
    return event.enhancement_id, orjson.dumps({
        "type": FEED_TELEMETRY, "enhancement_id": event.enhancement_id, "arm": arm,
        "window_start": window_start(at, WINDOW_S), "source": partition, "upto": offset + 1,
        "metrics": {name: {**st, "s": []} for name, st in window.items()},
        "samples": {name: [list(e) for e in fold((event.event_id,), (x,), PARTIAL_K).sample]
                    for name, x in event.metrics.items()}})


def count_windows(items: Iterable[tuple[Any, Mapping[str, Any]]]) -> dict[str, dict[str, int]]:
    """Per key, each metric's count summed over its windows, from a windowed table's raw
    items `((key, (start, end)), value)`.

    >>> count_windows([(("s", (0, 59.9)), {"q": {"n": 2}}), (["s", [60, 119.9]], {"q": {"n": 3}})])
    {'s': {'q': 5}}
    """
    out: dict[str, dict[str, int]] = {}
    for key, value in items:
        total = out.setdefault(key[0], {})
        for name, st in value.items():
            total[name] = total.get(name, 0) + st["n"]
    return out


def build(bootstrap: str, datadir: Path, web_port: int):
    s = Settings.from_env()
    use_fetch_max_wait(s.fetch_max_wait_ms)  # the worker's consumer fetch wait, as bench_app
    app = stream_app(APP_ID, bootstrap, datadir / APP_ID, partitions=PARTITIONS,
                     web_enabled=True, web_port=web_port, web_bind="127.0.0.1")
    telemetry = raw_topic(app, s.topic("telemetry"))
    feed = raw_topic(app, s.topic("enhancement_feed"))
    clock = {"at": 0.0}  # the current record's time: the windows are relative to it, not to the record timestamp
    tables = {name: app.Table(f"{APP_ID}-{name}", default=dict, partitions=PARTITIONS) for name in ("sources", "arms")}
    windows = {name: t.tumbling(WINDOW_S, expires=KEEP_S, key_index=True).relative_to(lambda event: clock["at"])
               for name, t in tables.items()}
    state = {"events": 0}

    @app.agent(telemetry, name="naive-telemetry")
    async def naive(stream):
        async for event in stream.events():
            message = event.message
            t = decode(Telemetry, message.value)
            at = clock["at"] = ts_to_ms(t.ts) / 1000 if t.ts else message.timestamp
            windows["sources"][t.source] = updated(windows["sources"][t.source].value(), t.metrics)
            if t.enhancement_id is not None:
                key = f"{t.enhancement_id}/{t.arm or 'enhancement'}"
                window = windows["arms"][key] = updated(windows["arms"][key].value(), t.metrics)
                enhancement_id, value = partial(t, message.partition, message.offset, at, window)
                await feed.send(key=enhancement_id.encode(), value=value,
                                partition=partition_of(enhancement_id, PARTITIONS))
            state["events"] += 1

    @app.page("/bench/count")
    class Count(View):
        async def get(self, request: Request) -> Response:
            return self.json({"events": state["events"]})

    @app.page("/bench/sums")
    class Sums(View):
        async def get(self, request: Request) -> Response:
            return self.json({name: count_windows(table.items()) for name, table in tables.items()})

    return app


def main(argv: list[str]) -> None:
    if len(argv) != 3:
        raise SystemExit("usage: python -m bench.naive_telemetry_app BOOTSTRAP DATADIR WEB_PORT")
    run_worker(build(argv[0], Path(argv[1]), int(argv[2])))


if __name__ == "__main__":
    main(sys.argv[1:])
