"""Topic creation and layout checks against the configured Kafka."""

from __future__ import annotations

import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from resontinex.topics import INTERNAL, REGISTRY

from resontinex.app.engine.connect import start_client
from resontinex.app.exceptions import BrokerError, TopicLayoutError
from resontinex.app.settings import Settings
from resontinex.app.engine.security import client_options

log = logging.getLogger(__name__)


async def create_topics(settings: Settings) -> dict[str, str]:
    """Create every registry topic; return `name -> "created" | "exists"`.

    Existing topics are checked, not altered: a tenant-keyed topic with another
    partition count would break co-partitioning, and a topic whose retention or cleanup
    differs from the registry's (an `audit` that is compacted or expires would lose the
    record compliance relies on) raises `TopicLayoutError`. Kafka unreachable, or
    refusing a request, raises `BrokerError`.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap, **client_options(), client_id="resontinex-admin")
    try:
        await start_client(admin, settings.bootstrap)
        return await _create(admin, settings)
    except KafkaError as exc:
        raise BrokerError(f"creating topics at {settings.bootstrap}: {exc}") from None
    finally:
        await admin.close()


async def _create(admin: AIOKafkaAdminClient, settings: Settings) -> dict[str, str]:
    existing = set(await admin.list_topics())
    wanted = {settings.topic(spec.id): spec for spec in REGISTRY + INTERNAL}
    missing = [
        NewTopic(
            name=name,
            num_partitions=settings.partitions,
            replication_factor=settings.replication_factor,
            topic_configs={**spec.config(), "min.insync.replicas": str(settings.min_insync_replicas)},
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
    await _check_configs(admin, {name: spec.config() for name, spec in wanted.items() if name in existing})
    return {name: ("exists" if name in existing else "created") for name in wanted}


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


async def _check_configs(admin: AIOKafkaAdminClient, wanted: dict[str, dict[str, str]]) -> None:
    """Existing topics must have the registry's cleanup and retention settings."""
    if not wanted:
        return
    responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name) for name in wanted])
    wrong: dict[str, dict[str, str]] = {}
    for response in responses:
        for _code, _message, _type, name, entries in response.resources:
            actual = {entry[0]: entry[1] for entry in entries}
            diff = {k: actual.get(k, "(unset)") for k, v in wanted.get(name, {}).items() if actual.get(k) != v}
            if diff:
                wrong[name] = diff
    if wrong:
        fixes = "; ".join(f"{name}: " + ", ".join(f"{k}={wanted[name][k]} (is {v})" for k, v in diff.items())
                          for name, diff in sorted(wrong.items()))
        raise TopicLayoutError(f"topics exist with other settings than the registry's: {fixes}. Set them with "
                               "kafka-configs --alter --entity-type topics ... --add-config; the audit topic must "
                               "never be compacted or expire")
