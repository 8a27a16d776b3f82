"""The Faust app factory: one app per worker role, its agents, tables and web views."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import faust

from resontinex.agents.audit import SigningKeyError, load_signing_key

from resontinex.app import metrics, otel, web
from resontinex.app.engine.audit_writer import checkpoint_due
from resontinex.app.engine.faust_compat import use_fetch_max_wait, use_true_highwaters
from resontinex.app.engine.group_watch import GroupWatch
from resontinex.app.engine.record_source import Lifecycle
from resontinex.app.engine.security import faust_credentials
from resontinex.app.engine.sink import SinkService
from resontinex.app.exceptions import UsageError
from resontinex.app.runtime import Runtime
from resontinex.app.settings import Settings

log = logging.getLogger(__name__)

APP_IDS = {"core": "resontinex", "trajectory": "resontinex-trajectory"}


class _App(faust.App):
    """Every table's changelog is made with `min.insync.replicas` (Faust takes a topic's
    config per table only)."""

    changelog_configs: dict[str, Any] = {}

    def Table(self, name: str, **kwargs: Any) -> Any:  # noqa: N802 (Faust's name)
        kwargs["extra_topic_configs"] = {**self.changelog_configs, **kwargs.get("extra_topic_configs", {})}
        return super().Table(name, **kwargs)


_App.logger = logging.getLogger("faust.app.base")  # mode names a subclass's logger after its module: keep Faust's


def stream_app(app_id: str, bootstrap: str, datadir: Path, *, partitions: int, session_timeout_s: float = 10.0,
               replication_factor: int = 1, min_insync_replicas: int = 1, **web: Any) -> faust.App:
    """A Faust app with the project's stream settings (the bench's comparison apps use it too).

    Short session and rebalance timeouts: a SIGKILLed worker's partitions move within
    `session_timeout_s` and a rebalance.
    """
    app = _App(
        app_id,
        broker=f"kafka://{bootstrap}",
        broker_credentials=faust_credentials(),
        store="rocksdb://",
        datadir=str(datadir),
        topic_partitions=partitions,
        topic_replication_factor=replication_factor,
        table_standby_replicas=1,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        broker_commit_interval=1.0,
        broker_session_timeout=session_timeout_s,
        broker_heartbeat_interval=1.0,
        broker_rebalance_timeout=10.0,
        logging_config=None,
        **web,
    )
    app.changelog_configs = {"min.insync.replicas": str(min_insync_replicas)}
    return app


def create_app(settings: Settings, *, role: str = "core", web_port: int = 6066) -> tuple[faust.App, Runtime]:
    """Build the worker app for `role`; configuration errors are raised here, before any I/O."""
    runtime = Runtime.load(settings, client_id=f"resontinex-{role}-{web_port}")
    if settings.embedded_broker:  # Kafka's ListOffsets is right: Faust's recovery needs no probe there
        use_true_highwaters(settings.bootstrap)
    use_fetch_max_wait(settings.fetch_max_wait_ms)
    datadir = settings.data_dir / f"{role}-{web_port}"
    datadir.parent.mkdir(parents=True, exist_ok=True)
    app = stream_app(
        settings.topic_prefix + APP_IDS[role],  # the prefix keeps environments' groups and changelogs apart
        settings.bootstrap, datadir, partitions=settings.partitions, session_timeout_s=settings.session_timeout_s,
        replication_factor=settings.replication_factor, min_insync_replicas=settings.min_insync_replicas,
        web_enabled=True, web_port=web_port, canonical_url=f"http://{settings.advertised_host}:{web_port}",
    )
    # OTLP traces when an endpoint is configured (`app.otel`); None, and no SDK import, otherwise
    tracing = otel.setup(role, f"{settings.advertised_host}:{web_port}")
    metrics.OTEL_TRACES.set(tracing is not None)
    if role == "trajectory":
        _register_trajectory(app, runtime)
    else:
        _register_core(app, runtime, settings, tracing)
    app.add_dependency(SinkService(runtime.sink, loop=app.loop))
    runtime.started_at = time.time()
    return app, runtime


def _register_core(app: faust.App, runtime: Runtime, settings: Settings, tracing: otel.Tracing | None = None) -> None:
    from resontinex.app.wiring import alert_audit
    from resontinex.app.wiring import budget as budget_agent
    from resontinex.app.wiring import coordination as coordination_agent
    from resontinex.app.wiring import enhancements as enhancement_agents
    from resontinex.app.wiring import fusion as fusion_agent
    from resontinex.app.wiring import gate as gate_agent
    from resontinex.app.wiring import outcomes as outcomes_agent

    try:
        runtime.signing_key = load_signing_key()  # the core alone writes the audit chain
    except SigningKeyError as exc:
        raise UsageError(f"audit checkpoints: {exc}") from None
    lifecycle = Lifecycle(app, runtime.sink.flush)  # every agent's partitions are revoked through it
    budgets = budget_agent.register(app, runtime, lifecycle)
    scorers = GroupWatch(settings.bootstrap, settings.topic_prefix + APP_IDS["trajectory"],
                         metrics.TRAJECTORY_GROUP_MEMBERS)
    app.task(scorers.run)
    governance = enhancement_agents.register(app, runtime, budgets, lifecycle)
    tables = gate_agent.register(app, runtime, budgets, scorers, lifecycle, governance.policies.policy, tracing)
    outcomes_agent.register(app, runtime, tables, lifecycle)
    fusion_agent.register(app, runtime, tables["awaiting-text"])
    alert_audit.register(app, runtime)
    teams = coordination_agent.register(app, runtime, budgets, tables["budget-marks"], lifecycle, tracing)
    web.register(app, runtime, tables, budgets, teams, governance)

    @app.on_partitions_assigned.connect
    async def _assigned(app: faust.App, assigned: set, **_: Any) -> None:
        metrics.PARTITIONS_OWNED.set(sum(tp.topic == settings.topic("decision_requests") for tp in assigned))

    if runtime.signing_key is None:
        log.warning("audit checkpoints are off: no signing key (set RESONTINEX_AUDIT_SIGNING_KEY_FILE; "
                    "`resontinex audit keygen` makes one)")
        return

    @app.timer(max(1.0, settings.checkpoint_interval_s / 4))
    async def _sign_heads() -> None:
        """Sign the chain heads whose records have waited `checkpoint_interval_s` unsigned."""
        if await checkpoint_due(runtime):
            await runtime.sink.flush()


def _register_trajectory(app: faust.App, runtime: Runtime) -> None:
    """Load the model (once, before joining the group) and declare the trajectory agent;
    a model that cannot be loaded or fails its check refuses the start (exit 2)."""
    from resontinex.agents.trajectory import Analyzer, ModelUnavailable
    from resontinex.app.wiring import trajectory as trajectory_agent

    try:
        analyzer = Analyzer.load(runtime.trajectory)
    except ModelUnavailable as exc:
        raise UsageError(f"trajectory role: {exc}") from None
    check = analyzer.health()
    if not check["ok"]:
        raise UsageError(f"trajectory role: model {analyzer.name!r} failed its check: perplexity "
                         f"{check['probe_perplexity']} on the probe sentence (a tokenizer that does not match the "
                         "model?)")
    metrics.TRAJECTORY_LOAD_SECONDS.set(analyzer.loaded.load_s)
    trajectory_agent.register(app, runtime, analyzer, Lifecycle(app, runtime.sink.flush))
    web.register_trajectory(app, runtime, analyzer, check)
