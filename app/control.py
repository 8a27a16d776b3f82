"""`resontinex budget reset`: operator commands, published on the `control` topic.

The command goes through Kafka, keyed by tenant, so the worker that owns the tenant's
partition applies it in order with the tenant's costs, and audits it.
"""

from __future__ import annotations

import argparse
import asyncio
import uuid
from datetime import datetime, timezone

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from schemas import Control, InvalidEvent, decode

from .exceptions import BrokerError, UsageError
from .settings import Settings


def reset_command(tenant: str, operator_id: str, reason: str) -> Control:
    """A validated `tripwire_reset` command.

    >>> reset_command("acme", "ops-1", "approved").action
    'tripwire_reset'
    """
    body = {"event_id": f"ctl-{uuid.uuid4().hex}", "tenant": tenant, "action": "tripwire_reset",
            "operator_id": operator_id, "reason": reason,
            "ts": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"}
    try:
        return decode(Control, orjson.dumps(body))
    except InvalidEvent as exc:
        raise UsageError(f"budget reset: {exc.message}") from None


async def publish(settings: Settings, command: Control) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap, acks="all")
    try:
        await producer.start()
        await producer.send_and_wait(settings.topic("control"), command.model_dump_json(exclude_none=True).encode(),
                                     key=command.tenant.encode())
    finally:
        await producer.stop()


def run_reset(settings: Settings, args: argparse.Namespace) -> int:
    command = reset_command(args.tenant, args.operator, args.reason)
    try:
        asyncio.run(asyncio.wait_for(publish(settings, command), 30))
    except (OSError, KafkaError, asyncio.TimeoutError) as exc:
        raise BrokerError(f"budget reset: could not publish to {settings.bootstrap}: {exc!r}") from None
    print(f"published {command.action} {command.event_id} for tenant {command.tenant}")
    return 0
