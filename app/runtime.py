"""What a worker's agents share: settings, the loaded configuration, the output sink, state."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agents import budget, router, trajectory
from agents.overlays import OverlaySet, Rejection, load_overlays, overlay_dirs
from agents.trust import TrustConfig, load_config, policy_version_of

from .exceptions import UsageError
from .partition_state import PartitionStates
from .settings import Settings
from .sink import OutputSink

log = logging.getLogger(__name__)

ENERGY_FILE = "energy_governance.yaml"
ROUTING_FILE = "routing.yaml"
TRAJECTORY_FILE = "trajectory.yaml"
DECIDING_TRAJECTORY_KEYS = ("risk_entropy_low", "risk_entropy_high", "fusion_timeout_s")
"""The trajectory settings that change decisions (the rest tune the scoring worker)."""


@dataclass(slots=True)
class Runtime:
    settings: Settings
    trust: TrustConfig
    energy: budget.EnergyConfig
    routing: router.RoutingConfig
    trajectory: trajectory.TrajectoryConfig
    overlays: OverlaySet
    overlay_rejections: tuple[Rejection, ...]
    policy_version: str
    configuration: dict[str, Any]  # everything policy_version covers (audited as a `config` record)
    sink: OutputSink
    states: PartitionStates
    signing_key: Ed25519PrivateKey | None = None  # loaded by the core role only (`load_signing_key`)
    started_at: float = 0.0

    @classmethod
    def load(cls, settings: Settings, *, client_id: str) -> "Runtime":
        """Load and validate every configuration file; a bad one is refused here, before any Kafka I/O."""
        trust = load_config(settings.config_file("trust_gate.yaml"))
        path = settings.config_file(ENERGY_FILE)
        try:
            energy = budget.load_energy_config(path)
        except budget.ConfigError as exc:
            raise UsageError(f"configuration refused: {path}: {exc}") from None
        path = settings.config_file(ROUTING_FILE)
        try:
            routing = router.load_routing_config(path)
        except router.ConfigError as exc:
            raise UsageError(f"configuration refused: {path}: {exc}") from None
        path = settings.config_file(TRAJECTORY_FILE)
        try:
            text_scoring = trajectory.load_trajectory_config(path)
        except trajectory.ConfigError as exc:
            raise UsageError(f"configuration refused: {path}: {exc}") from None
        overlays, rejections = load_overlays(overlay_dirs(settings.config_dir))  # a bad file is skipped, never fatal
        configuration = configuration_of(trust, energy, routing, overlays, text_scoring)
        return cls(
            settings=settings,
            trust=trust,
            energy=energy,
            routing=routing,
            trajectory=text_scoring,
            overlays=overlays,
            overlay_rejections=rejections,
            policy_version=policy_version_of(configuration),
            configuration=configuration,
            sink=OutputSink(settings.bootstrap, client_id=client_id),
            states=PartitionStates(settings.bootstrap, settings.topic("audit"), settings.dedupe_horizon),
        )


def configuration_of(trust: TrustConfig, energy: budget.EnergyConfig, routing: router.RoutingConfig,
                     overlays: OverlaySet, text_scoring: trajectory.TrajectoryConfig | None = None) -> dict[str, Any]:
    """Every component's configuration as one JSON-able mapping (overlays by name and prompt
    text; the trajectory analyzer's risk mapping and timeout, which feed decisions). CONTRACT §5's
    `policy_version` is the hash of it.

    >>> from agents.trust import default_config
    >>> from agents.overlays import OverlaySet
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
