"""Topic creation and layout checks against the configured Kafka."""

from __future__ import annotations

import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from topics import REGISTRY

from .exceptions import TopicLayoutError
from .settings import Settings

log = logging.getLogger(__name__)


async def create_topics(settings: Settings) -> dict[str, str]:
    """Create every registry topic; return `name -> "created" | "exists"`.

    Existing topics are checked, not altered: a tenant-keyed topic with another
    partition count would break co-partitioning and raises `TopicLayoutError`.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap, client_id="resontinex-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = {settings.topic(spec.id): spec for spec in REGISTRY}
        missing = [
            NewTopic(
                name=name,
                num_partitions=settings.partitions,
                replication_factor=1,
                topic_configs=spec.config(),
            )
            for name, spec in wanted.items()
            if name not in existing
        ]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass  # a concurrent creator won; the layout check below still applies
        await _check_partitions(admin, settings, list(wanted))
        return {name: ("exists" if name in existing else "created") for name in wanted}
    finally:
        await admin.close()


async def _check_partitions(admin: AIOKafkaAdminClient, settings: Settings, names: list[str]) -> None:
    described = await admin.describe_topics(names)
    wrong = {
        d["topic"]: len(d["partitions"])
        for d in described
        if len(d["partitions"]) != settings.partitions
    }
    if wrong:
        raise TopicLayoutError(
            f"topics exist with a partition count other than {settings.partitions}: {wrong}; "
            "every tenant-keyed topic must share one count (set RESONTINEX_PARTITIONS to match)"
        )
