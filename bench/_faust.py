"""What the bench's own Faust apps share: the app settings of the project worker, and a runner.

The comparison apps (naive per-event, forward-only, count-only) use the same broker
settings, store, partition count and consumer fetch wait as `app.faust_app.create_app`,
so the difference in decisions/s and latency comes from what the agent does, not from
how Faust is configured.
"""

from __future__ import annotations

from pathlib import Path

import faust

from app.logs import logging_config

PARTITIONS = 4
SOURCE_TOPIC = "decision-requests"


def bench_app(app_id: str, bootstrap: str, datadir: Path) -> faust.App:
    _same_fetch_wait_as_the_worker()
    return faust.App(
        app_id,
        broker=f"kafka://{bootstrap}",
        store="rocksdb://",
        datadir=str(datadir / app_id),
        web_enabled=False,
        topic_partitions=PARTITIONS,
        topic_replication_factor=1,
        table_standby_replicas=1,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        broker_commit_interval=1.0,
        broker_session_timeout=10.0,
        broker_heartbeat_interval=1.0,
        broker_rebalance_timeout=10.0,
        logging_config=None,
    )


def _same_fetch_wait_as_the_worker() -> None:
    """Give the consumer the fetch wait the project worker uses, where the project sets one
    (`app.faust_compat.use_fetch_max_wait`); otherwise Faust's own (1,500 ms) for both."""
    try:
        from app.faust_compat import use_fetch_max_wait  # type: ignore[attr-defined]
        from app.settings import Settings
    except ImportError:
        return
    ms = getattr(Settings.from_env(), "fetch_max_wait_ms", None)
    if ms:
        use_fetch_max_wait(ms)


def source_topic(app: faust.App) -> faust.TopicT:
    return app.topic(SOURCE_TOPIC, key_serializer="raw", value_serializer="raw", partitions=PARTITIONS)


def raw_topic(app: faust.App, name: str) -> faust.TopicT:
    return app.topic(name, key_serializer="raw", value_serializer="raw", partitions=PARTITIONS)


def run_worker(app: faust.App, level: str = "INFO") -> None:
    """Run `app` as `python -m app.cli worker` runs the project's app (same logging setup)."""
    faust.Worker(app, loglevel=level, logging_config=logging_config(level), quiet=True).execute_from_commandline()
