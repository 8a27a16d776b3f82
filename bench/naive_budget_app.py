"""The naive baseline of the budget bench: the budget agent's work the textbook Faust way.

One event at a time (`async for event in stream.events()`): decode and validate the cost
(`schemas.decode(Cost, ...)`), drop it when its `event_id` was seen before (an in-memory
set: cheaper than a table, so the baseline is not slowed by it), then for each of the 3
periods × 2 scopes (`tenant`, `tenant/workflow`) read the scope's value in the event's
window and write it back with the cost added: six windowed Faust table updates per event,
hence six changelog messages. The windows are Faust's own `tumbling` windows of 3,600 /
86,400 / 2,678,400 s (a 31-day "month", aligned to the epoch rather than the calendar: an
approximation), relative to the record's timestamp, kept as long as the project keeps its
calendar windows (48 hours, 14 days, 3 months). Values are `{micros, tokens, n}` with money
in integer micro-dollars, as in the project.

The bench reads two pages of its Faust web server:

* `GET /bench/count` → `{"events": consumed records}` (counted after each event's table writes);
* `GET /bench/spend` → `{period: {scope: {micros, tokens, n}}}`, summed over every window
  this worker holds, to check the sums at the end.

Run: `python -m bench.naive_budget_app BOOTSTRAP DATADIR WEB_PORT` (stop it with SIGTERM).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Iterable

from faust.web import Request, Response, View

from resontinex.agents.budget._rules import to_micros
from resontinex.app.faust_app import stream_app
from resontinex.app.engine.faust_compat import use_fetch_max_wait
from resontinex.app.settings import Settings
from resontinex.schemas import Cost, decode

from ._faust import PARTITIONS, raw_topic, run_worker

APP_ID = "bench-naive-budget"
HOUR, DAY = 3600.0, 86_400.0
SIZES = {"hour": HOUR, "day": DAY, "month": 31 * DAY}
"""Tumbling window sizes; the month is approximated by 31 days."""
EXPIRES = {"hour": 48 * HOUR, "day": 14 * DAY, "month": 3 * 31 * DAY}
"""How long windows are kept, as the project's `KEEP` (48 hours, 14 days, 3 months)."""


def sum_windows(items: Iterable[tuple[Any, dict]]) -> dict[str, dict[str, int]]:
    """Sum a windowed table's raw items, `((scope, (start, end)), value)`, over windows per scope.

    >>> sum_windows([(("a", (0, 9.9)), {"micros": 2, "tokens": 3, "n": 1}),
    ...              (["a", [10, 19.9]], {"micros": 5, "tokens": 1, "n": 2})])
    {'a': {'micros': 7, 'tokens': 4, 'n': 3}}
    """
    out: dict[str, dict[str, int]] = {}
    for key, value in items:
        total = out.setdefault(key[0], {"micros": 0, "tokens": 0, "n": 0})
        for field in total:
            total[field] += value.get(field, 0)
    return out


def build(bootstrap: str, datadir: Path, web_port: int):
    use_fetch_max_wait(Settings.from_env().fetch_max_wait_ms)  # the worker's consumer fetch wait, as bench_app
    app = stream_app(APP_ID, bootstrap, datadir / APP_ID, partitions=PARTITIONS,
                     web_enabled=True, web_port=web_port, web_bind="127.0.0.1")
    costs = raw_topic(app, Settings.from_env().topic("costs"))
    tables = {p: app.Table(f"bench-naive-budget-spend-{p}", default=dict, partitions=PARTITIONS)
              for p in SIZES}
    spend = {p: tables[p].tumbling(SIZES[p], expires=EXPIRES[p]).relative_to_stream() for p in SIZES}
    seen: set[str] = set()
    state = {"events": 0}

    @app.agent(costs, name="naive-budget")
    async def naive(stream):
        async for event in stream.events():
            cost = decode(Cost, event.message.value)
            if cost.event_id not in seen:
                seen.add(cost.event_id)
                micros, tokens = to_micros(cost.cost_usd), cost.input_tokens + cost.output_tokens
                for window in spend.values():
                    for scope in (cost.tenant, f"{cost.tenant}/{cost.workflow}"):
                        value = window[scope].current()
                        window[scope] = {"micros": value.get("micros", 0) + micros,
                                         "tokens": value.get("tokens", 0) + tokens, "n": value.get("n", 0) + 1}
            state["events"] += 1

    @app.page("/bench/count")
    class Count(View):
        async def get(self, request: Request) -> Response:
            return self.json({"events": state["events"]})

    @app.page("/bench/spend")
    class Spend(View):
        async def get(self, request: Request) -> Response:
            return self.json({p: sum_windows(table.items()) for p, table in tables.items()})

    return app


def main(argv: list[str]) -> None:
    if len(argv) != 3:
        raise SystemExit("usage: python -m bench.naive_budget_app BOOTSTRAP DATADIR WEB_PORT")
    run_worker(build(argv[0], Path(argv[1]), int(argv[2])))


if __name__ == "__main__":
    main(sys.argv[1:])
