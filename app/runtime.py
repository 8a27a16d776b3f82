"""What a worker's agents share: settings, the loaded configuration, the output sink, state."""

from __future__ import annotations

from dataclasses import dataclass

from agents.trust import TrustConfig, load_config, policy_version

from .partition_state import PartitionStates
from .settings import Settings
from .sink import OutputSink


@dataclass(slots=True)
class Runtime:
    settings: Settings
    trust: TrustConfig
    policy_version: str
    sink: OutputSink
    states: PartitionStates
    started_at: float = 0.0

    @classmethod
    def load(cls, settings: Settings, *, client_id: str) -> "Runtime":
        """Load and validate every configuration file; a bad one is refused here, before any Kafka I/O."""
        trust = load_config(settings.config_file("trust_gate.yaml"))
        return cls(
            settings=settings,
            trust=trust,
            policy_version=policy_version(trust),
            sink=OutputSink(settings.bootstrap, client_id=client_id),
            states=PartitionStates(settings.bootstrap, settings.topic("audit"), settings.dedupe_horizon),
        )
