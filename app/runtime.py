"""What a worker's agents share: settings, the loaded configuration, the output sink, state."""

from __future__ import annotations

from dataclasses import dataclass

from agents import budget, router, trajectory
from agents.overlays import OverlaySet, Rejection, load_overlays, overlay_dirs
from agents.trust import TrustConfig, load_config, policy_version_of

from .exceptions import UsageError
from .partition_state import PartitionStates
from .settings import Settings
from .sink import OutputSink

ENERGY_FILE = "energy_governance.yaml"
ROUTING_FILE = "routing.yaml"
TRAJECTORY_FILE = "trajectory.yaml"


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
    sink: OutputSink
    states: PartitionStates
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
        return cls(
            settings=settings,
            trust=trust,
            energy=energy,
            routing=routing,
            trajectory=text_scoring,
            overlays=overlays,
            overlay_rejections=rejections,
            policy_version=combined_policy_version(trust, energy, routing, overlays, text_scoring),
            sink=OutputSink(settings.bootstrap, client_id=client_id),
            states=PartitionStates(settings.bootstrap, settings.topic("audit"), settings.dedupe_horizon),
        )


def combined_policy_version(trust: TrustConfig, energy: budget.EnergyConfig, routing: router.RoutingConfig,
                            overlays: OverlaySet, text_scoring: trajectory.TrajectoryConfig | None = None) -> str:
    """CONTRACT §5: one version over every component's configuration (overlays by name
    and prompt text; the trajectory analyzer's, whose risk mapping feeds decisions).

    >>> from agents.trust import default_config
    >>> from agents.overlays import OverlaySet
    >>> len(combined_policy_version(default_config(), budget.EnergyConfig(), router.RoutingConfig(), OverlaySet(())))
    12
    """
    text_scoring = text_scoring or trajectory.TrajectoryConfig()
    return policy_version_of({
        "trust": trust.as_dict(), "energy": energy.as_dict(), "routing": routing.as_dict(),
        "overlays": {name: overlay.prompt for name, overlay in overlays.items()},
        "trajectory": text_scoring.as_dict(),
    })
