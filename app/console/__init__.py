"""The live web console of a core worker, at `/ui`: plain HTML, vanilla JavaScript and
inline SVG, every file served by the worker itself (no build step, nothing from outside).

The page polls what the worker already serves (`/health`, `/metrics`, `/stats/trust`,
`/budget/status`, `/router/status`, `/coordination/status`, `/enhancements/status`) and
turns the Prometheus counters into rates in the browser. Its one page of its own is
`/ui/recent?after=SEQ`: the newest alerts and dead letters this worker queued, kept raw by
an `OutputSink` watcher (`recent.Recent`) and decoded only when the page asks.

Routes: `/ui` and `/ui/` (the page), `/ui/static/{name}` (its script and style),
`/ui/recent`.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.web import Request, Response, View

from resontinex.app.runtime import Runtime

from . import assets
from .recent import CAPACITY, Recent

__all__ = ["CAPACITY", "Recent", "register"]

_NO_CACHE = "no-cache"  # a new release's script is taken at the next load


def register(app: faust.App, rt: Runtime, *, capacity: int = CAPACITY) -> Recent:
    """Declare the console's routes on `app` and start keeping the alerts and dead letters
    `rt.sink` queues; returns the memory they are kept in."""
    recent = Recent(capacity)
    rt.sink.watch([rt.settings.topic("alerts")], recent.alerts)
    rt.sink.watch([rt.settings.topic("dead_letters")], recent.dead_letters)
    files = assets.load()
    worker = str(app.conf.canonical_url).rstrip("/")

    def served(view: View, name: str) -> Response:
        body, content_type = files[name]
        return view.bytes(body, headers={"Content-Type": content_type, "Cache-Control": _NO_CACHE})

    @app.page("/ui")
    class ConsolePage(View):
        async def get(self, request: Request) -> Response:
            """The console."""
            return served(self, "index.html")

    @app.page("/ui/")
    class ConsolePageSlash(View):
        async def get(self, request: Request) -> Response:
            return served(self, "index.html")

    @app.page("/ui/static/{name}")
    class ConsoleAsset(View):
        async def get(self, request: Request, name: str) -> Response:
            """The page's script and style sheet."""
            if name not in files or name == "index.html":
                return self.json({"error": f"no console file {name!r}"}, status=404)
            return served(self, name)

    @app.page("/ui/recent")
    class ConsoleRecent(View):
        async def get(self, request: Request) -> Response:
            """The alerts and dead letters this worker queued after `?after=SEQ` (default 0:
            all it keeps, the newest `capacity` of each), oldest first."""
            try:
                after = max(0, int(request.query.get("after", "0")))
            except ValueError:
                return self.json({"error": "after must be an integer"}, status=400)
            body: dict[str, Any] = {"worker": worker, **recent.page(after)}
            return self.json(body, headers={"Cache-Control": _NO_CACHE})

    return recent
