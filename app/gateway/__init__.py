"""The HTTP gateway: decision requests, outcomes and costs over HTTP for callers that
cannot speak Kafka (`resontinex worker --role gateway`; `resontinex up` starts one).

    POST /v1/decide               a decision request → its decision (200), or 202 and where to look
    POST /v1/outcomes, /v1/costs  published (202)
    GET  /v1/decisions/{id}       a decision the gateway has read
    GET  /v1/openapi.json         the OpenAPI 3.1 document
    GET  /health, /metrics        as a worker's

Bearer tokens, each writing one tenant, and the limits are in `gateway.yaml`
(`GatewayConfig`).
"""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from resontinex.app.settings import GATEWAY_FILE, Settings

from ._config import GatewayConfig, add_token, gateway_config_from, load_gateway_config, new_token, token_digest
from ._server import Gateway
from .exceptions import GatewayConfigError

__all__ = ["Gateway", "GatewayConfig", "GatewayConfigError", "add_token", "gateway_config_from", "load_gateway_config",
           "new_token", "run_gateway", "token_digest"]

log = logging.getLogger(__name__)


def run_gateway(settings: Settings, web_port: int, host: str = "0.0.0.0") -> int:
    """Serve until SIGTERM or SIGINT; a bad `gateway.yaml` is refused first (`GatewayConfigError`)."""
    cfg = load_gateway_config(settings.config_file(GATEWAY_FILE))
    asyncio.run(_serve(Gateway(settings, cfg), host, web_port))
    return 0


async def _serve(gateway: Gateway, host: str, port: int) -> None:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, stopping.set)
    runner = web.AppRunner(gateway.application(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    log.debug("gateway serving", extra={"port": port})
    connecting = asyncio.create_task(gateway.connect())
    try:
        await stopping.wait()
    finally:
        connecting.cancel()
        await asyncio.gather(connecting, return_exceptions=True)
        await runner.cleanup()
        await gateway.close()
