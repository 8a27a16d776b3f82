"""What the bench's own Faust apps share: the app settings of the project worker, and a runner.

The comparison apps (naive per-event, forward-only, count-only) use the same broker
settings, store, partition count and consumer fetch wait as `app.faust_app.create_app`,
so the difference in decisions/s and latency comes from what the agent does, not from
how Faust is configured.
"""

from __future__ import annotations

from pathlib import Path

import faust

from resontinex.app.faust_app import stream_app
from resontinex.app.engine.faust_compat import use_fetch_max_wait
from resontinex.app.logs import logging_config
from resontinex.app.settings import Settings

PARTITIONS = 4
SOURCE_TOPIC = "decision-requests"


def bench_app(app_id: str, bootstrap: str, datadir: Path) -> faust.App:
    use_fetch_max_wait(Settings.from_env().fetch_max_wait_ms)  # the worker's consumer fetch wait
    return stream_app(app_id, bootstrap, datadir / app_id, partitions=PARTITIONS, web_enabled=False)


def source_topic(app: faust.App) -> faust.TopicT:
    return app.topic(SOURCE_TOPIC, key_serializer="raw", value_serializer="raw", partitions=PARTITIONS)


def raw_topic(app: faust.App, name: str) -> faust.TopicT:
    return app.topic(name, key_serializer="raw", value_serializer="raw", partitions=PARTITIONS)


def run_worker(app: faust.App, level: str = "INFO") -> None:
    """Run `app` as `python -m resontinex.app.cli worker` runs the project's app (same logging setup)."""
    faust.Worker(app, loglevel=level, logging_config=logging_config(level), quiet=True).execute_from_commandline()
