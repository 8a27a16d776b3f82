"""Web endpoints of a worker: /health, /health/live, /metrics, /stats/trust[/{tenant}],
/budget/status, /router/status (CONTRACT §6), /coordination/status, /enhancements/status,
/telemetry/{source} and the live console at /ui (`app.console`) on the core role; /health,
/health/live, /metrics and /trajectory/health on the trajectory role.

`/health` is the readiness check (503 until the worker is ready), `/health/live` the
liveness check (200 while the process serves: an unexpected error ends the process, see
`app.engine.failfast`). Status pages give times as RFC 3339 strings.

A tenant's statistics live on the worker that owns its partition; `/stats/trust` asks
the other workers of the group (their canonical URLs, from Faust's assignment) for
theirs, so any worker answers for every tenant.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

import faust
from faust.exceptions import ConsumerNotStarted
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST

from resontinex.agents.coordination import STATE_TABLE
from resontinex.agents.enhancement import SOURCES_TABLE
from resontinex.agents.enhancement import STATE_TABLE as STATE_TABLE_ENH
from resontinex.agents.gate import STATS_WINDOW_S, candidate_of, load_router_state
from resontinex.agents.router import router_status
from resontinex.schemas import ms_to_ts
from resontinex.topics import partition_of

from . import console, metrics
from resontinex.app.runtime import Runtime
from resontinex.app.wiring.budget import BudgetTables
from resontinex.app.wiring.budget_status import budget_rows
from resontinex.app.wiring.coordination import Coordination
from resontinex.app.wiring.enhancements import WINDOWS_SHOWN, Enhancements

log = logging.getLogger(__name__)
PEER_TIMEOUT_S = 2.0


def register(app: faust.App, rt: Runtime, tables: dict[str, Any], budgets: BudgetTables, teams: Coordination,
             governance: Enhancements) -> None:
    stats = tables["trust-stats"]

    def local_routers() -> dict[str, Any]:
        """router_status of every tenant whose partition this worker owns; refreshes the gauges."""
        owned = {tp.partition for tp in _assignment(app) if tp.topic == rt.settings.topic("decision_requests")}
        routers = tables["router-state"]
        out = {}
        for tenant in list(routers.keys()):
            if partition_of(tenant, rt.settings.partitions) in owned:
                out[tenant] = router_status(load_router_state(routers, tenant, rt.routing)[0])
                if (candidate := candidate_of(routers.get(tenant))) is not None:  # a routing policy under canary
                    out[tenant]["candidate"] = {"enhancement_id": candidate.enhancement_id,
                                                "activation": candidate.activation, **router_status(candidate.state)}
        metrics.set_router_gauges(out)
        return out

    def local_budgets() -> list[dict[str, Any]]:
        owned = {tp.partition for tp in _assignment(app) if tp.topic == rt.settings.topic("costs")}
        decided = {tenant for tenant, _ in stats.table.data.keys()}  # tenants with decisions in the last hour
        return budget_rows(rt.energy, budgets, tables["budget-marks"], decided, owned, rt.settings.partitions,
                           time.time())

    @app.page("/health")
    class Health(View):
        async def get(self, request: Request) -> Response:
            body = health(app, rt)
            return self.json(body, status=200 if body["ready"] else 503)

    _register_live(app, rt)
    console.register(app, rt)

    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Request) -> Response:
            local_budgets()  # refreshes the per-budget gauges
            local_routers()
            if teams.client is not None:
                teams.client.refresh_gauges()
            # aiohttp refuses a charset inside content_type, so the header is set whole
            return self.bytes(metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def group_windows(request: Request) -> dict[str, list[dict[str, Any]]]:
        """This worker's windows, plus (unless `?local=1`) every other worker's in the group."""
        windows = trust_windows(stats)
        if request.query.get("local") != "1":
            for peer in await _from_peers(app, stats.table.name, "/stats/trust?local=1", "tenants"):
                windows.update(peer)
        return windows

    @app.page("/stats/trust")
    class TrustStats(View):
        async def get(self, request: Request) -> Response:
            return self.json({"window_s": STATS_WINDOW_S, "tenants": await group_windows(request)})

    @app.page("/stats/trust/{tenant}")
    class TenantTrustStats(View):
        async def get(self, request: Request, tenant: str) -> Response:
            windows = (await group_windows(request)).get(tenant)
            if windows is None:
                return self.json({"error": f"no statistics for tenant {tenant!r} in the last hour"}, status=404)
            return self.json({"window_s": STATS_WINDOW_S, "tenant": tenant, "windows": windows})


    @app.page("/budget/status")
    class BudgetStatus(View):
        async def get(self, request: Request) -> Response:
            """Every budget's utilization, remaining amount, state and period end, for the
            whole group (this worker's, plus each peer's unless `?local=1`)."""
            rows = local_budgets()
            if request.query.get("local") != "1":
                for peer in await _from_peers(app, budgets.tripwire.name, "/budget/status?local=1", "budgets"):
                    rows.extend(peer)
            return self.json({"budgets": sorted(rows, key=lambda r: r["scope"])})


    @app.page("/router/status")
    class RouterStatus(View):
        async def get(self, request: Request) -> Response:
            """Seed 002's `get_status()` per tenant: Q-values per state, epsilon, counts,
            success rate, average cost and latency, violations, anomalies (whole group)."""
            tenants = local_routers()
            if request.query.get("local") != "1":
                for peer in await _from_peers(app, tables["router-state"].name, "/router/status?local=1", "tenants"):
                    tenants.update(peer)
            return self.json({"tenants": tenants})


    @app.page("/coordination/status")
    class CoordinationStatus(View):
        async def get(self, request: Request) -> Response:
            """Per tenant: runs, γ mean, drift, spend this hour (whole group); this worker's
            breaker per model, runs in flight and embedding model."""
            owned = {tp.partition for tp in _assignment(app) if tp.topic == rt.settings.topic("coordination_requests")}
            body = teams.status(owned, rt.settings.partitions, time.time())
            if request.query.get("local") != "1":
                for peer in await _from_peers(app, teams.tables[STATE_TABLE].name, "/coordination/status?local=1",
                                              "tenants"):
                    body["tenants"].update(peer)
            return self.json(body)


    @app.page("/enhancements/status")
    class EnhancementsStatus(View):
        async def get(self, request: Request) -> Response:
            """Per tenant: its enhancements with state, phase, share, deactivations, cooldown,
            what waits for approval, the last canary judgement (whole group)."""
            tenants = governance.status()
            if request.query.get("local") != "1":
                for peer in await _from_peers(app, STATE_TABLE_ENH, "/enhancements/status?local=1", "tenants"):
                    tenants.update(peer)
            return self.json({"tenants": tenants})

    @app.page("/telemetry/{source}")
    class TelemetryWindows(View):
        async def get(self, request: Request, source: str) -> Response:
            """The source's newest windows (count, mean, variance, min, max, sample per metric),
            from the worker that owns its partition; `?windows=N` (default 60)."""
            try:
                n = max(1, min(int(request.query.get("windows", WINDOWS_SHOWN)), 1440))
            except ValueError:
                return self.json({"error": "windows must be an integer"}, status=400)
            windows = governance.telemetry(source, n)
            if windows is None and request.query.get("local") != "1":
                for peer in await _from_peers(app, SOURCES_TABLE, f"/telemetry/{source}?local=1&windows={n}",
                                              "windows"):
                    windows = peer if peer is not None else windows
            if not windows:
                return self.json({"error": f"no telemetry from source {source!r} in the windows kept"}, status=404)
            return self.json({"source": source, "window_s": rt.enhancements.telemetry.window_s, "windows": windows})


def _assignment(app: faust.App) -> set:
    try:
        return app.consumer.assignment()
    except ConsumerNotStarted:  # early in start-up: not ready, not an error
        return set()


def register_trajectory(app: faust.App, rt: Runtime, analyzer: Any, model: dict[str, Any]) -> None:
    """The trajectory role's endpoints: its health (with `model`, the start-up model check),
    metrics, the model's totals."""

    @app.page("/health")
    class Health(View):
        async def get(self, request: Request) -> Response:
            body = {**health(app, rt, rt.settings.topic("trajectory_requests")), "model": model}
            healthy = body["status"] == "healthy" and model["ok"]
            ready = healthy and body["ready"]
            return self.json({**body, "status": "healthy" if healthy else "unhealthy", "ready": ready},
                             status=200 if ready else 503)

    _register_live(app, rt)

    @app.page("/trajectory/health")
    class ModelHealth(View):
        async def get(self, request: Request) -> Response:
            """The start-up model check, where the model runs now (after a CPU fallback:
            `cpu`) and the analyzer's totals."""
            st = analyzer.stats
            body = {**model, "device": analyzer.device, "dtype": analyzer.loaded.dtype,
                    "texts": st.texts, "tokens": st.tokens, "cache_hits": st.cache_hits,
                    "cache_entries": len(analyzer.cache), "oom_halvings": st.oom_halvings,
                    "cpu_fallbacks": st.cpu_fallbacks}
            return self.json(body, status=200 if model["ok"] else 503)

    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Request) -> Response:
            return self.bytes(metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})


def _register_live(app: faust.App, rt: Runtime) -> None:
    @app.page("/health/live")
    class Live(View):
        async def get(self, request: Request) -> Response:
            """The liveness check: 200 while the process serves, ready or not."""
            return self.json({"status": "alive", **_process(rt)})


def _process(rt: Runtime) -> dict[str, Any]:
    # RESONTINEX_RUN_ID is set by `up` per run, so its readiness check knows its own workers
    return {"uptime_seconds": round(time.time() - rt.started_at, 3), "run_id": os.environ.get("RESONTINEX_RUN_ID")}


def health(app: faust.App, rt: Runtime, source: str | None = None) -> dict[str, Any]:
    """The worker's health; `partitions` are those of `source` (default: decision-requests) it owns."""
    agents = {name: _agent_state(agent) for name, agent in app.agents.items()}
    assigned = _assignment(app)
    source = source or rt.settings.topic("decision_requests")
    owned = sorted(tp.partition for tp in assigned if tp.topic == source)
    running = all(state == "running" for state in agents.values())
    return {
        "status": "healthy" if running else "unhealthy",
        "ready": running and not app.rebalancing and bool(assigned),
        "agents": agents,
        "partitions": owned,
        "rebalancing": app.rebalancing,
        "policy_version": rt.policy_version,
        **_process(rt),
    }


def trust_windows(stats: Any) -> dict[str, list[dict[str, Any]]]:
    """Every retained 1-minute window per tenant owned by this worker, oldest first; `start`
    and `end` (exclusive) in RFC 3339."""
    out: dict[str, list[dict[str, Any]]] = {}
    for (tenant, (start, _)), value in sorted(stats.table.data.items(), key=lambda item: item[0][1]):
        if value:
            out.setdefault(tenant, []).append({"start": _rfc3339(start), "end": _rfc3339(start + STATS_WINDOW_S), **value})
    return out


def _rfc3339(seconds: float) -> str:
    return ms_to_ts(round(seconds * 1000))


async def _from_peers(app: faust.App, table_name: str, path: str, field: str) -> list[Any]:
    """`field` of `path` from every other worker holding active partitions of the table;
    a peer down or mid-rebalance is logged and left out."""
    async def one(url: str) -> Any:
        async with app.http_client.get(f"{url}{path}") as resp:
            resp.raise_for_status()
            return (await resp.json())[field]

    answers = []
    for url in _peers(app, table_name):
        try:
            answers.append(await asyncio.wait_for(one(url), PEER_TIMEOUT_S))
        except Exception as exc:
            log.warning("peer unavailable", extra={"peer": url, "path": path, "error": repr(exc)})
    return answers


def _peers(app: faust.App, table_name: str) -> list[str]:
    """Web URLs of the other workers that hold active partitions of the table."""
    me = str(app.conf.canonical_url).rstrip("/")
    return sorted({str(url).rstrip("/") for url, topics in app.router.table_metadata(table_name).items()
                   if any(topics.values())} - {me})


def _agent_state(agent: Any) -> str:
    if agent.crash_reason is not None:  # mode.Service
        return "crashed"
    return "running" if agent.started and not agent.should_stop else "stopped"
