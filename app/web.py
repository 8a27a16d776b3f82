"""Web endpoints of a worker: /health, /metrics, /stats/trust[/{tenant}] (CONTRACT §6).

A tenant's statistics live on the worker that owns its partition; `/stats/trust` asks
the other workers of the group (their canonical URLs, from Faust's assignment) for
theirs, so any worker answers for every tenant.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import faust
from faust.exceptions import ConsumerNotStarted
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST

from . import metrics
from .runtime import Runtime

log = logging.getLogger(__name__)
PEER_TIMEOUT_S = 2.0


def register(app: faust.App, rt: Runtime, tables: dict[str, Any]) -> None:
    stats = tables["trust-stats"]

    @app.page("/health")
    class Health(View):
        async def get(self, request: Request) -> Response:
            body = health(app, rt)
            return self.json(body, status=200 if body["status"] == "healthy" else 503)

    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Request) -> Response:
            # aiohttp refuses a charset inside content_type, so the header is set whole
            return self.bytes(metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def group_windows(request: Request) -> dict[str, list[dict[str, Any]]]:
        """This worker's windows, plus (unless `?local=1`) every other worker's in the group."""
        windows = trust_windows(stats)
        if request.query.get("local") == "1":
            return windows
        for url in _peers(app, stats.table.name):
            try:
                windows.update(await asyncio.wait_for(_peer_windows(app, url), PEER_TIMEOUT_S))
            except Exception as exc:  # a peer down or mid-rebalance: answer with what is reachable
                log.warning("peer statistics unavailable", extra={"peer": url, "error": repr(exc)})
        return windows

    @app.page("/stats/trust")
    class TrustStats(View):
        async def get(self, request: Request) -> Response:
            return self.json({"window_s": 60, "tenants": await group_windows(request)})

    @app.page("/stats/trust/{tenant}")
    class TenantTrustStats(View):
        async def get(self, request: Request, tenant: str) -> Response:
            windows = (await group_windows(request)).get(tenant)
            if windows is None:
                return self.json({"error": f"no statistics for tenant {tenant!r} in the last hour"}, status=404)
            return self.json({"window_s": 60, "tenant": tenant, "windows": windows})


def health(app: faust.App, rt: Runtime) -> dict[str, Any]:
    agents = {name: _agent_state(agent) for name, agent in app.agents.items()}
    try:
        assigned = app.consumer.assignment()
    except ConsumerNotStarted:  # early in start-up: not ready, not an error
        assigned = set()
    source = rt.settings.topic("decision_requests")
    owned = sorted(tp.partition for tp in assigned if tp.topic == source)
    running = all(state == "running" for state in agents.values())
    return {
        "status": "healthy" if running else "unhealthy",
        "ready": running and not app.rebalancing and bool(assigned),
        "agents": agents,
        "partitions": owned,
        "rebalancing": app.rebalancing,
        "uptime_seconds": round(time.time() - rt.started_at, 3),
        "policy_version": rt.policy_version,
    }


def trust_windows(stats: Any) -> dict[str, list[dict[str, Any]]]:
    """Every retained 1-minute window per tenant owned by this worker, oldest first."""
    out: dict[str, list[dict[str, Any]]] = {}
    for key, value in stats.table.data.items():
        tenant, (start, end) = key
        if value:
            out.setdefault(tenant, []).append({"start": start, "end": end, **value})
    for windows in out.values():
        windows.sort(key=lambda w: w["start"])
    return out


async def _peer_windows(app: faust.App, url: str) -> dict[str, Any]:
    async with app.http_client.get(f"{url}/stats/trust?local=1") as resp:
        resp.raise_for_status()
        return (await resp.json())["tenants"]


def _peers(app: faust.App, table_name: str) -> list[str]:
    """Web URLs of the other workers that hold active partitions of the table."""
    me = str(app.conf.canonical_url).rstrip("/")
    return sorted({str(url).rstrip("/") for url, topics in app.router.table_metadata(table_name).items()
                   if any(topics.values())} - {me})


def _agent_state(agent: Any) -> str:
    if agent.crash_reason is not None:  # mode.Service
        return "crashed"
    return "running" if agent.started and not agent.should_stop else "stopped"
