"""Operator commands (`resontinex budget reset`, `resontinex router import`), published on
the `control` topic.

A command goes through Kafka, keyed by tenant, so the worker that owns the tenant's
partition applies it in order with the tenant's other events, and audits it.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timezone
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from resontinex.schemas import Control, InvalidEvent, decode

from resontinex.app.engine.connect import start_client
from resontinex.app.exceptions import BrokerError, UsageError
from resontinex.app.settings import Settings
from resontinex.app.engine.security import client_options

_ACK_TIMEOUT_S = 30.0


def control_command(action: str, tenant: str, operator_id: str, reason: str, *, max_bytes: int = 524_288,
                    **extra: Any) -> Control:
    """A validated command with a fresh id.

    >>> control_command("tripwire_reset", "acme", "ops-1", "approved").action
    'tripwire_reset'
    """
    body = {"event_id": f"ctl-{uuid.uuid4().hex}", "tenant": tenant, "action": action, "operator_id": operator_id,
            "reason": reason, "ts": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z", **extra}
    try:
        return decode(Control, orjson.dumps(body), max_bytes=max_bytes)  # what the worker accepts
    except InvalidEvent as exc:
        raise UsageError(f"{action}: {exc.message}") from None


async def _publish(settings: Settings, command: Control) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap, **client_options(), acks="all", max_request_size=2 << 20)
    try:
        await start_client(producer, settings.bootstrap)
        await asyncio.wait_for(producer.send_and_wait(settings.topic("control"),
                                                      command.model_dump_json(exclude_none=True).encode(),
                                                      key=command.tenant.encode()), _ACK_TIMEOUT_S)
    except (KafkaError, asyncio.TimeoutError) as exc:
        why = exc if isinstance(exc, KafkaError) else f"no acknowledgement within {_ACK_TIMEOUT_S:g} s"
        raise BrokerError(f"{command.action}: could not publish to {settings.bootstrap}: {why}") from None
    finally:
        await producer.stop()


def publish(settings: Settings, command: Control) -> int:
    """Publish and say so; an unreachable broker is a failure (`BrokerError`, exit 1)."""
    asyncio.run(_publish(settings, command))
    print(f"published {command.action} {command.event_id} for tenant {command.tenant}")
    return 0
