"""What a worker's agents share: settings, the loaded configuration, the output sink, state."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from resontinex.agents import budget, coordination, enhancement, router, trajectory
from resontinex.agents.overlays import OverlaySet, Rejection, load_overlays, overlay_dirs
from resontinex.agents.trust import ConfigError as TrustConfigError
from resontinex.agents.trust import TrustConfig, load_config, policy_version_of
from resontinex.config import PACKAGED_DIR

from resontinex.app.exceptions import UsageError
from resontinex.app.engine.partition_state import PartitionStates
from resontinex.app.settings import (CONFIG_FILES, COORDINATION_FILE, ENERGY_FILE, ENHANCEMENTS_FILE, ROUTING_FILE,
                                     TRAJECTORY_FILE, TRUST_FILE, Settings)
from resontinex.app.engine.sink import OutputSink

log = logging.getLogger(__name__)
T = TypeVar("T")

DECIDING_TRAJECTORY_KEYS = ("risk_entropy_low", "risk_entropy_high", "fusion_timeout_s")
"""The trajectory settings that change decisions (the rest tune the scoring worker)."""


@dataclass(slots=True)
class Runtime:
    settings: Settings
    trust: TrustConfig
    energy: budget.EnergyConfig
    routing: router.RoutingConfig
    trajectory: trajectory.TrajectoryConfig
    coordination: coordination.CoordinationConfig  # does not change decisions: not in policy_version
    enhancements: enhancement.EnhancementConfig  # nor does this
    overlays: OverlaySet
    overlay_rejections: tuple[Rejection, ...]
    policy_version: str
    configuration: dict[str, Any]  # everything policy_version covers (audited as a `config` record)
    sink: OutputSink
    states: PartitionStates
    signing_key: Ed25519PrivateKey | None = None  # loaded by the core role only (`load_signing_key`)
    configurations: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Candidate configurations by policy version (trust policies under canary): the audit
    writer records each before the first decision made under it."""
    started_at: float = 0.0

    @classmethod
    def load(cls, settings: Settings, *, client_id: str) -> "Runtime":
        """Load and validate every configuration file; a bad one is refused here, before any
        Kafka I/O, naming the file. Logs where each file came from and what is ignored."""
        trust = _load(settings, TRUST_FILE, load_config, TrustConfigError)
        energy = _load(settings, ENERGY_FILE, budget.load_energy_config, budget.ConfigError)
        routing = _load(settings, ROUTING_FILE, router.load_routing_config, router.ConfigError)
        text_scoring = _load(settings, TRAJECTORY_FILE, trajectory.load_trajectory_config, trajectory.ConfigError)
        teams = _load(settings, COORDINATION_FILE, coordination.load_coordination_config, coordination.ConfigError)
        governance = _load(settings, ENHANCEMENTS_FILE, enhancement.load_enhancement_config, enhancement.ConfigError)
        overlays, rejections = load_overlays(overlay_dirs(settings.config_dir))  # a bad file is skipped, never fatal
        _report(settings, overlays, rejections)
        configuration = configuration_of(trust, energy, routing, overlays, text_scoring)
        return cls(
            settings=settings,
            trust=trust,
            energy=energy,
            routing=routing,
            trajectory=text_scoring,
            coordination=teams,
            enhancements=governance,
            overlays=overlays,
            overlay_rejections=rejections,
            policy_version=policy_version_of(configuration),
            configuration=configuration,
            sink=OutputSink(settings.bootstrap, client_id=client_id),
            states=PartitionStates(settings.bootstrap, settings.topic("audit"), settings.dedupe_horizon,
                                   settings.topic("unaudited_decisions"), settings.batch_max),
        )


def _load(settings: Settings, name: str, load: Callable[[Path], T], error: type[ValueError]) -> T:
    """`load` the file `name` resolves to; a refused file is a UsageError naming it."""
    path = settings.config_file(name)
    try:
        return load(path)
    except error as exc:
        detail = str(exc).removeprefix("<file>: ")  # an unreadable or unparsable file's error names it already
        named = detail if os.fspath(path) in detail else f"{path}: {detail}"
        raise UsageError(f"configuration refused: {named}") from None


def _report(settings: Settings, overlays: OverlaySet, rejections: tuple[Rejection, ...]) -> None:
    """Log which files came from --config-dir and which are packaged defaults; warn about
    what is there that nothing reads, and about each overlay file skipped (the gate also
    alerts on those)."""
    defaults = [name for name in CONFIG_FILES if settings.config_file(name) == PACKAGED_DIR / name]
    if settings.config_dir is None:
        log.info("configuration: packaged defaults (no --config-dir)", extra={"packaged_defaults": defaults})
    else:
        mine = overlay_dirs(settings.config_dir)[-1]
        read = [name for name in CONFIG_FILES if name not in defaults]
        read += sorted(f"{mine.name}/{o.source.name}" for o in overlays.values()
                       if o.source is not None and o.source.parent == mine)
        log.info("configuration from %s: %s; packaged defaults: %s", settings.config_dir, ", ".join(read) or "nothing",
                 ", ".join(defaults) or "none",
                 extra={"config_dir": str(settings.config_dir), "read": read, "packaged_defaults": defaults})
        for path, why in settings.unread_config_files():
            log.warning("ignored in --config-dir: %s: %s", path, why)
    for rejection in rejections:
        log.warning("overlay file skipped: %s: %s", rejection.path, rejection.message,
                    extra={"reason_code": rejection.reason_code})


def configuration_of(trust: TrustConfig, energy: budget.EnergyConfig, routing: router.RoutingConfig,
                     overlays: OverlaySet, text_scoring: trajectory.TrajectoryConfig | None = None) -> dict[str, Any]:
    """Every component's configuration as one JSON-able mapping (overlays by name and prompt
    text; the trajectory analyzer's risk mapping and timeout, which feed decisions). CONTRACT §5's
    `policy_version` is the hash of it.

    >>> from resontinex.agents.trust import default_config
    >>> from resontinex.agents.overlays import OverlaySet
    >>> conf = configuration_of(default_config(), budget.EnergyConfig(), router.RoutingConfig(), OverlaySet(()))
    >>> sorted(conf), len(policy_version_of(conf))
    (['energy', 'overlays', 'routing', 'trajectory', 'trust'], 12)
    """
    text_scoring = text_scoring or trajectory.TrajectoryConfig()
    return {
        "trust": trust.as_dict(), "energy": energy.as_dict(), "routing": routing.as_dict(),
        "overlays": {name: overlay.prompt for name, overlay in overlays.items()},
        "trajectory": {k: v for k, v in text_scoring.as_dict().items() if k in DECIDING_TRAJECTORY_KEYS},
    }
