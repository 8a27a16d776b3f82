"""Input events: what producers write to the `in` topics (CONTRACT §3.1, §3.3–3.6)."""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal, Self

from pydantic import ConfigDict, Field, model_validator
from pydantic.config import JsonDict
from pydantic_core import PydanticCustomError

from ._base import (
    EventId,
    InputEvent,
    InputPart,
    Name,
    NonNegativeFloat,
    NonNegativeInt,
    Reputation,
    UnitFloat,
)

__all__ = [
    "MAX_REDRIVEN",
    "MAX_TASK_CHARS",
    "METRIC_LIMIT",
    "MAX_TEXT_CHARS",
    "Constraints",
    "Control",
    "CoordinationRequest",
    "Cost",
    "DecisionRequest",
    "Estimate",
    "Outcome",
    "Provider",
    "Psi",
    "Redriven",
    "Routing",
    "RoutingContext",
    "Scenario",
    "Signals",
    "Telemetry",
    "TrajectoryRequest",
]

MAX_TEXT_CHARS: Final = 10_000
METRIC_LIMIT: Final = 1e15
"""A metric value's largest magnitude: window statistics (sums of squares) stay finite."""
MetricValue = Annotated[float, Field(ge=-METRIC_LIMIT, le=METRIC_LIMIT)]

# The epistemic-risk-or-text rule, for the JSON Schema (the model enforces it itself).
_HAS_RISK: Final[JsonDict] = {
    "properties": {
        "signals": {"properties": {"epistemic_risk": {"type": "number"}}, "required": ["epistemic_risk"]}
    }
}
_HAS_TEXT: Final[JsonDict] = {"properties": {"text": {"type": "string", "minLength": 1}}, "required": ["text"]}


class Signals(InputPart):
    """The trust-gate inputs (CONTRACT §5), each in [0, 1]."""

    alignment_score: UnitFloat
    epistemic_risk: UnitFloat | None = None
    confidence_band: UnitFloat


class Estimate(InputPart):
    """What the operation is expected to cost; drives budget multipliers."""

    tokens: NonNegativeInt | None = None
    cost_usd: NonNegativeFloat | None = None
    complexity: UnitFloat | None = None
    entropy: UnitFloat | None = None


class RoutingContext(InputPart):
    """The workload to place."""

    workload_type: str | None = None
    gpu_type: str | None = None
    region: str | None = None
    gpu_hours: NonNegativeFloat | None = None


class Provider(InputPart):
    """One candidate compute provider.

    `capacity_available` is the capacity it can take now (for example GPU-hours);
    `null` means not reported. Empty `gpu_types`/`regions` mean none declared.
    """

    provider_id: Name
    price_usd_per_hour: NonNegativeFloat
    latency_ms: NonNegativeFloat
    reputation: Reputation
    capacity_available: NonNegativeFloat | None = None
    gpu_types: list[str] = []
    regions: list[str] = []


class Constraints(InputPart):
    """Limits a provider must meet to be feasible."""

    max_price: NonNegativeFloat | None = None
    max_latency_ms: NonNegativeFloat | None = None
    min_reputation: Reputation | None = None


class Routing(InputPart):
    """Where the operation could run."""

    context: RoutingContext | None = None
    providers: list[Provider] = []
    constraints: Constraints | None = None


class Scenario(InputPart):
    """Describes the task; selects a prompt overlay."""

    category: str | None = None
    complexity: UnitFloat | None = None
    description: str | None = None


class Psi(InputPart):
    """Field state that adjusts exploration, each in [0, 1]."""

    density: UnitFloat
    coherence: UnitFloat
    entropy: UnitFloat


class BreakGlass(InputPart):
    """An operator's break-glass override of this request's decision (always audited).

    Not in the wire contract's field table: an addition. Who may publish one is a
    matter of Kafka ACLs on the topic.
    """

    operator_id: Name
    reason: Annotated[str, Field(min_length=1, max_length=1000, pattern=r"\S")]


class TextRisk(InputPart):
    """How the processor filled in a text-only request's risk (set by the core role when it
    puts the request back on `decision-requests`; beyond the wire contract's field table).

    `status` `scored`: `signals.epistemic_risk` was derived from the trajectory result's
    `mean_entropy` (`risk_entropy_low`/`_high` in `config/trajectory.yaml`); `timeout`: no
    result came within `fusion_timeout_s`; `unavailable`: no trajectory group was running to
    score it. Without a score the request is judged at worst-case risk.
    """

    status: Literal["scored", "timeout", "unavailable"]
    result_id: str | None = None
    model: str | None = None
    mean_entropy: NonNegativeFloat | None = None
    perplexity: NonNegativeFloat | None = None
    passed_quality_check: bool | None = None

    @model_validator(mode="after")
    def _scored_has_its_figures(self) -> Self:
        if self.status == "scored" and (self.mean_entropy is None or self.model is None):
            raise PydanticCustomError("scored_without_figures", "a scored text needs model and mean_entropy")
        return self


class DecisionRequest(InputEvent):
    """May this AI operation run, where, and how (topic `decision-requests`, §3.1).

    `signals.epistemic_risk` may be left out only when `text` is given: the
    trajectory group then derives the risk from the text's entropy.
    """

    model_config = ConfigDict(json_schema_extra={"anyOf": [_HAS_RISK, _HAS_TEXT]})

    tenant: Name
    workflow: Name = "default"
    signals: Signals
    estimate: Estimate | None = None
    routing: Routing | None = None
    scenario: Scenario | None = None
    psi: Psi | None = None
    text: Annotated[str, Field(max_length=MAX_TEXT_CHARS)] | None = None
    override: BreakGlass | None = None
    trajectory: TextRisk | None = None
    explain: bool = False

    @model_validator(mode="after")
    def _risk_or_text(self) -> Self:
        if self.signals.epistemic_risk is None and not self.text:
            # `code`/`field` tell the codec how to report this model-level error.
            raise PydanticCustomError(
                "risk_or_text",
                "is required unless text is given",
                {"code": "missing_field", "field": "signals.epistemic_risk"},
            )
        return self


class Outcome(InputEvent):
    """What happened after a decision (topic `outcomes`, §3.3)."""

    tenant: Name
    decision_id: EventId
    success: bool
    actual_cost_usd: NonNegativeFloat
    actual_latency_ms: NonNegativeFloat
    actual_reputation: Reputation
    label: bool | None = None


class Cost(InputEvent):
    """Token and dollar spend of one AI call (topic `costs`, §3.4)."""

    tenant: Name
    workflow: Name = "default"
    provider: str
    model: str
    input_tokens: NonNegativeInt
    output_tokens: NonNegativeInt
    cost_usd: NonNegativeFloat
    latency_ms: NonNegativeFloat


MAX_REDRIVEN: Final = 500
"""Originals one `dead_letter_redrive` command records (the command line sends more in several)."""


class Redriven(InputPart):
    """One original republished from its dead letter: where the dead letter lies (`dead_letter`:
    PARTITION:OFFSET on `dead-letters`, and its `event_id`), where the original was and
    where its copy went (`redriven_offset`, same topic and partition)."""

    dead_letter: Annotated[str, Field(pattern=r"^\d+:\d+$", max_length=41)]
    dead_letter_event_id: EventId
    source_topic: Name
    partition: NonNegativeInt
    offset: NonNegativeInt
    redriven_offset: NonNegativeInt
    key: Annotated[str, Field(max_length=1024)] | None = None
    event_id: Annotated[str, Field(max_length=1024)] | None = None


class Control(InputEvent):
    """An operator's command to the processor (topic `control`, beyond CONTRACT §2).

    `tripwire_reset` lifts a tenant's budget-tripwire downgrade; `router_import` replaces
    the tenant's router table with `q_table` (an `agents.router.export_q_table` document);
    `enhancement_approve` lets the tenant's enhancement `enhancement_id` make the transition
    its mode holds for approval, and `enhancement_retire` retires it (CONTRACT §3.10);
    `dead_letter_redrive` records the originals `resontinex dead-letters redrive` republished
    (`redriven`, on the `_system` tenant). Each is audited with the operator and the reason.
    """

    tenant: Name
    action: Literal["tripwire_reset", "router_import", "enhancement_approve", "enhancement_retire",
                    "dead_letter_redrive"]
    operator_id: Name
    reason: Annotated[str, Field(min_length=1, max_length=1000, pattern=r"\S")]
    q_table: dict[str, Any] | None = None
    enhancement_id: EventId | None = None
    redriven: Annotated[list[Redriven], Field(min_length=1, max_length=MAX_REDRIVEN)] | None = None

    @model_validator(mode="after")
    def _table_for_import(self) -> Self:
        if (self.action == "router_import") != (self.q_table is not None):
            raise PydanticCustomError(
                "table_for_import", "is required for router_import and only for it",
                {"code": "missing_field", "field": "q_table"},
            )
        if (self.action == "dead_letter_redrive") != (self.redriven is not None):
            raise PydanticCustomError(
                "redriven_for_redrive", "is required for dead_letter_redrive and only for it",
                {"code": "missing_field", "field": "redriven"},
            )
        if self.action.startswith("enhancement_") and self.enhancement_id is None:
            raise PydanticCustomError(
                "enhancement_for_command", "is required for enhancement_approve and enhancement_retire",
                {"code": "missing_field", "field": "enhancement_id"},
            )
        return self


class Telemetry(InputEvent):
    """Metric samples from a running component (topic `telemetry`, §3.5); with
    `enhancement_id`, of that enhancement's `arm` (`enhancement` when absent)."""

    source: Name
    metrics: Annotated[dict[Annotated[str, Field(min_length=1, max_length=128)], MetricValue], Field(max_length=256)]
    enhancement_id: EventId | None = None
    arm: Literal["enhancement", "baseline"] | None = None

    @model_validator(mode="after")
    def _arm_of_an_enhancement(self) -> Self:
        if self.arm is not None and self.enhancement_id is None:
            raise PydanticCustomError(
                "arm_without_enhancement", "is required when arm is given",
                {"code": "missing_field", "field": "enhancement_id"},
            )
        return self


class TrajectoryRequest(InputEvent):
    """Generated text to score with a language model (topic `trajectory-requests`, §3.6).

    `request_id` names the decision request the text belongs to, if any. `detail`
    (beyond the contract's fields): the result also lists each token's log-probability
    and the entropy of its next-token distribution.
    """

    tenant: Name
    text: Annotated[str, Field(min_length=1, max_length=MAX_TEXT_CHARS)]
    model: str | None = None
    request_id: str | None = None
    detail: bool = False


MAX_TASK_CHARS = 20_000


class CoordinationRequest(InputEvent):
    """A task for a team of LLM agents to measure coordination on (topic
    `coordination-requests`, §3.9). `model` defaults to `coordination.yaml`'s; `rounds`
    applies to `debate`; `budget_usd` caps this run's spend."""

    tenant: Name
    task: Annotated[str, Field(min_length=1, max_length=MAX_TASK_CHARS)]
    num_agents: Annotated[int, Field(ge=2, le=10)]
    strategy: Literal["sequential", "parallel", "debate"]
    rounds: Annotated[int, Field(ge=1, le=5)] = 2
    model: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    workflow: Name = "default"
    budget_usd: Annotated[float, Field(gt=0)] | None = None
