"""`resontinex topics create` on the real broker: creates the registry, accepts itself again,
and refuses existing topics whose layout or retention would break the processor."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from .conftest import run
from .harness import REPO

pytestmark = pytest.mark.integration


def _create(broker, prefix: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "resontinex.app.cli", "topics", "create", "--bootstrap", broker.bootstrap],
                          cwd=REPO, env={**os.environ, "RESONTINEX_TOPIC_PREFIX": prefix},
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
