"""The gateway's HTTP server (aiohttp): request → topic, and the decision back.

Every body is checked exactly as a worker checks the event (`resontinex.schemas.decode`);
what a worker would dead-letter is answered 400 (unreadable) or 422 (against its schema)
with the dead letter's code. The bearer token names the one tenant the caller may write
(403 for another). A decision request is published on its tenant's partition and the
decision, read back from `decisions`, is the answer; none in time: 202 with where to
look, and the request is still decided. A request id already decided is answered from
what the gateway has read, without publishing it again (a repeated event id would be
dropped by the workers, never answered).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from importlib.metadata import version
from typing import Any, TypeVar

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from resontinex.client import Client, ClientError
from resontinex.schemas import Cost, DecisionRequest, InputEvent, InvalidEvent, Outcome, decode

from resontinex.app import metrics
from resontinex.app.exceptions import BrokerError
from resontinex.app.settings import Settings

from ._book import DecisionBook
from ._config import GatewayConfig
from ._openapi import openapi_document

__all__ = ["Gateway"]

log = logging.getLogger(__name__)

EventT = TypeVar("EventT", bound=InputEvent)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

UNREADABLE = frozenset({"empty_value", "not_utf8", "not_json", "not_object"})
"""Codes of a body that is no JSON object at all: 400; any other schema failure is 422."""
RETRY_S = 2.0
EVENT_ID = web.RequestKey("event_id", str)
TENANT = web.RequestKey("tenant", str)
QUIET_ROUTES = frozenset({"health", "live", "metrics", "openapi"})
"""Routes whose answers are never logged (probes and scrapes)."""


class Refusal(Exception):
    """An answer other than success, as `{"error": {"code", "message"}}`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class Gateway:
    """The server's state: its Kafka client, its book of decisions, its configuration."""

    def __init__(self, settings: Settings, cfg: GatewayConfig) -> None:
        self.settings, self.cfg = settings, cfg
        self.max_bytes = min(cfg.max_body_bytes, settings.max_message_bytes)
        self.client = Client(settings.bootstrap, topic_prefix=settings.topic_prefix,
                             max_message_bytes=settings.max_message_bytes)
        self.book = DecisionBook(settings.bootstrap, settings.topic("decisions"), capacity=cfg.recent_decisions,
                                 lookback=cfg.lookback, max_bytes=settings.max_message_bytes)
        self.connected = False
        self._document = orjson.dumps(openapi_document(version("resontinex")))

    @property
    def ready(self) -> bool:
        return self.connected and self.book.alive

    async def connect(self) -> None:
        """Reach Kafka, again every `RETRY_S` until it answers (not ready meanwhile)."""
        while True:
            try:
                await self.client.start()
                await self.book.start()
            except (ClientError, BrokerError) as exc:
                log.warning("gateway: Kafka not reachable yet; retrying", extra={"why": str(exc), "retry_s": RETRY_S})
                await asyncio.sleep(RETRY_S)
                continue
            self.connected = True
            if not self.cfg.tenants:
                log.warning("gateway: gateway.yaml lists no token: every call is refused (401); "
                            "`resontinex gateway token --tenant T` makes one")
            log.debug("gateway ready", extra={"bootstrap": self.settings.bootstrap, "tokens": len(self.cfg.tenants)})
            return

    async def close(self) -> None:
        await self.book.stop()
        await self.client.close()

    def application(self) -> web.Application:
        # a body over the limit fails its read with 413, answered as JSON by `_answer`
        app = web.Application(client_max_size=self.max_bytes, middlewares=[self._answer])
        app.router.add_post("/v1/decide", self.decide, name="decide")
        app.router.add_post("/v1/outcomes", self.outcomes, name="outcomes")
        app.router.add_post("/v1/costs", self.costs, name="costs")
        app.router.add_get("/v1/decisions/{request_id}", self.decision, name="decision")
        app.router.add_get("/v1/openapi.json", self.openapi, name="openapi")
        app.router.add_get("/health", self.health, name="health")
        app.router.add_get("/health/live", self.live, name="live")
        app.router.add_get("/metrics", self.metrics, name="metrics")
        return app

    # --- routes

    async def decide(self, request: web.Request) -> web.Response:
        tenant = self._tenant(request)
        event = await self._event(request, DecisionRequest, tenant)
        wait_s = self._timeout(request)
        key = (event.tenant, event.event_id)
        future = self.book.wait(key)
        try:
            if not future.done():
                await self._publish(lambda: self.client.publish(event))
                await asyncio.wait_for(asyncio.shield(future), wait_s)
        except TimeoutError:
            url = f"/v1/decisions/{event.event_id}"
            return _json({"event_id": event.event_id, "tenant": event.tenant, "status": "pending",
                          "decision_url": url}, status=202, headers={"Location": url})
        finally:
            self.book.unwait(key, future)
        return web.Response(body=future.result(), content_type="application/json")

    async def outcomes(self, request: web.Request) -> web.Response:
        event = await self._event(request, Outcome, self._tenant(request))
        await self._publish(lambda: self.client.publish(event))
        return _json({"event_id": event.event_id, "tenant": event.tenant, "status": "accepted"}, status=202)

    async def costs(self, request: web.Request) -> web.Response:
        event = await self._event(request, Cost, self._tenant(request))
        await self._publish(lambda: self.client.publish(event))
        return _json({"event_id": event.event_id, "tenant": event.tenant, "status": "accepted"}, status=202)

    async def decision(self, request: web.Request) -> web.Response:
        tenant = self._tenant(request)
        request_id = request.match_info["request_id"]
        request[EVENT_ID] = request_id
        found = self.book.get((tenant, request_id))
        if found is None:
            raise Refusal(404, "unknown_decision",
                          f"no decision of {tenant}'s request {request_id!r} among the last "
                          f"{self.cfg.recent_decisions} this gateway has read (one still pending: ask again later)")
        return web.Response(body=found, content_type="application/json")

    async def openapi(self, _: web.Request) -> web.Response:
        return web.Response(body=self._document, content_type="application/json")

    async def health(self, _: web.Request) -> web.Response:
        metrics.GATEWAY_DECISIONS_KEPT.set(len(self.book))
        return _json({"status": "healthy", "ready": self.ready, "role": "gateway",
                      "run_id": os.environ.get("RESONTINEX_RUN_ID"), "decisions_kept": len(self.book)},
                     status=200 if self.ready else 503)

    async def live(self, _: web.Request) -> web.Response:
        return _json({"status": "alive"})

    async def metrics(self, _: web.Request) -> web.Response:
        metrics.GATEWAY_DECISIONS_KEPT.set(len(self.book))
        return web.Response(body=metrics.exposition(metrics.GATEWAY_REGISTRY),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})

    # --- inside

    @web.middleware
    async def _answer(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Refusals as JSON, and every answer counted, timed and (unless a success) logged."""
        started = time.perf_counter()
        route = request.match_info.route.name or "unknown"
        try:
            response = await handler(request)
        except Refusal as refusal:
            response = _json({"error": {"code": refusal.code, "message": refusal.message}}, status=refusal.status)
        except web.HTTPRequestEntityTooLarge:
            response = _json({"error": {"code": "too_large", "message": f"the body is larger than {self.max_bytes} "
                                                                        "bytes (max_body_bytes)"}}, status=413)
        except web.HTTPException as exc:  # 404 / 405 of the router
            response = _json({"error": {"code": "not_found" if exc.status == 404 else "method_not_allowed",
                                        "message": exc.reason}}, status=exc.status)
        metrics.GATEWAY_REQUESTS.labels(route, str(response.status)).inc()
        metrics.GATEWAY_SECONDS.labels(route).observe(time.perf_counter() - started)
        if route not in QUIET_ROUTES and (response.status >= 400 or response.status == 202):
            # a caller polling for a pending decision is not news
            level = logging.DEBUG if (route, response.status) == ("decision", 404) else logging.INFO
            log.log(level, "gateway answer", extra={"event_id": request.get(EVENT_ID), "route": route,
                                                    "status": response.status, "tenant": request.get(TENANT)})
        return response

    def _tenant(self, request: web.Request) -> str:
        tenant = self.cfg.tenant_of(request.headers.get("Authorization"))
        if tenant is None:
            raise Refusal(401, "unauthorized", "a bearer token of gateway.yaml is required "
                                               "(Authorization: Bearer <token>)")
        request[TENANT] = tenant
        return tenant

    async def _event(self, request: web.Request, model: type[EventT], tenant: str) -> EventT:
        try:
            event = decode(model, await request.read(), max_bytes=self.max_bytes)
        except InvalidEvent as exc:
            raise Refusal(413 if exc.code == "too_large" else 400 if exc.code in UNREADABLE else 422,
                          exc.code, exc.message) from None
        request[EVENT_ID] = event.event_id
        if event.tenant != tenant:  # type: ignore[attr-defined]
            raise Refusal(403, "forbidden_tenant", f"this token writes tenant {tenant!r} only, "
                                                   f"not {event.tenant!r}")  # type: ignore[attr-defined]
        return event

    def _timeout(self, request: web.Request) -> float:
        asked = request.query.get("timeout_s")
        if asked is None:
            return self.cfg.decide_timeout_s
        try:
            wait_s = float(asked)
        except ValueError:
            wait_s = -1.0
        if not 0 <= wait_s <= self.cfg.max_decide_timeout_s:
            raise Refusal(400, "bad_timeout", f"timeout_s must be a number from 0 to "
                                              f"{self.cfg.max_decide_timeout_s:g}, not {asked!r}")
        return wait_s

    async def _publish(self, send: Callable[[], Awaitable[Any]]) -> None:
        if not self.ready:
            raise Refusal(503, "unavailable", f"Kafka at {self.settings.bootstrap} is not reachable yet")
        try:
            await send()
        except ClientError as exc:
            raise Refusal(503, "unavailable", str(exc)) from None


def _json(body: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json", headers=headers)
