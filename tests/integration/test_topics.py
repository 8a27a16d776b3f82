"""`resontinex topics create` on the real broker: creates the registry, accepts itself again,
and refuses existing topics whose layout or retention would break the processor."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from .conftest import run
from .harness import REPO

pytestmark = pytest.mark.integration


def _create(broker, prefix: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "resontinex.app.cli", "topics", "create", "--bootstrap", broker.bootstrap],
                          cwd=REPO, env={**os.environ, "RESONTINEX_TOPIC_PREFIX": prefix, **env},
                          capture_output=True, text=True, timeout=60)


async def _make(bootstrap: str, topic: NewTopic) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([topic])
    finally:
        await admin.close()


def test_the_registry_is_created_once_and_accepted_again(broker):
    first = _create(broker, "fresh-")
    assert first.returncode == 0 and "created  fresh-audit" in first.stdout, first.stdout + first.stderr
    again = _create(broker, "fresh-")
    assert again.returncode == 0 and "exists   fresh-audit" in again.stdout, again.stdout + again.stderr


def test_created_topics_take_the_replication_settings(broker):
    """Outside the embedded broker the defaults are 3 replicas and min.insync.replicas 2
    (the embedded broker takes any replication factor; its config shows the setting)."""
    assert _create(broker, "prod-").returncode == 0
    assert _create(broker, "tuned-", RESONTINEX_REPLICATION_FACTOR="1", RESONTINEX_MIN_INSYNC_REPLICAS="1").returncode == 0
    assert run(_min_insync(broker.bootstrap, ["prod-audit", "prod-decisions", "tuned-audit"])) == {
        "prod-audit": "2", "prod-decisions": "2", "tuned-audit": "1"}
    refused = _create(broker, "bad-", RESONTINEX_REPLICATION_FACTOR="1", RESONTINEX_MIN_INSYNC_REPLICAS="2")
    assert refused.returncode == 2 and "above the replication factor 1" in refused.stderr, refused.stderr


async def _min_insync(bootstrap: str, names: list[str]) -> dict[str, str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in names])
        return {name: dict((e[0], e[1]) for e in entries)["min.insync.replicas"]
                for response in responses for _c, _m, _t, name, entries in response.resources}
    finally:
        await admin.close()


def test_a_compacted_or_expiring_audit_topic_is_refused(broker):
    run(_make(broker.bootstrap, NewTopic("compacted-audit", num_partitions=4, replication_factor=1,
                                         topic_configs={"cleanup.policy": "compact", "retention.ms": "604800000"})))
    done = _create(broker, "compacted-")
    assert done.returncode != 0
    assert "compacted-audit: cleanup.policy=delete (is compact), retention.ms=-1 (is 604800000)" in done.stderr, done.stderr


def test_a_topic_with_another_partition_count_is_refused(broker):
    run(_make(broker.bootstrap, NewTopic("narrow-decisions", num_partitions=2, replication_factor=1)))
    done = _create(broker, "narrow-")
    assert done.returncode != 0 and "narrow-decisions" in done.stderr and "RESONTINEX_PARTITIONS" in done.stderr
