"""Enhancement governance on the wire (CONTRACT §3.10, seed 004): submissions on
`enhancements`, lifecycle transitions on `enhancement-events`.

An enhancement is a change to a running AI system (a prompt overlay, a model switch, a
trust-gate or routing policy) that is validated before it runs, watched while it runs,
and switched off when its telemetry says it hurts.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from ._base import EventId, InputEvent, InputPart, Name, NonNegativeFloat, OutputEvent, OutputPart, UnitFloat
from ._inputs import MetricValue

__all__ = [
    "ENHANCEMENT_KINDS",
    "ENHANCEMENT_MODES",
    "ENHANCEMENT_STATES",
    "EnhancementEvent",
    "EnhancementKind",
    "EnhancementMode",
    "EnhancementState",
    "EnhancementSubmission",
    "MetricJudgeSpec",
    "ModelPayload",
    "PromptPayload",
    "RoutingPolicyPayload",
    "TransitionReason",
    "TrustPolicyPayload",
    "payload_json_schema",
]

EnhancementKind = Literal["prompt", "model", "trust_policy", "routing_policy", "other"]
EnhancementMode = Literal["automatic", "semi_automatic", "manual"]
EnhancementState = Literal["pending", "validated", "rejected", "active", "deactivated", "cooldown",
                           "permanently_disabled", "retired"]
ENHANCEMENT_KINDS: Final[tuple[str, ...]] = get_args(EnhancementKind)
ENHANCEMENT_MODES: Final[tuple[str, ...]] = get_args(EnhancementMode)
ENHANCEMENT_STATES: Final[tuple[str, ...]] = get_args(EnhancementState)

Requirement = Annotated[str, Field(min_length=1, max_length=512)]
MetricName = Annotated[str, Field(min_length=1, max_length=128, pattern=r"\S")]


class MetricJudgeSpec(InputPart):
    """One metric of an enhancement's canary judge (beyond the contract's fields): the
    direction in which a change *hurts*, the relative effect tolerated, its group."""

    name: MetricName
    direction: Literal["increase", "decrease", "either"]
    tolerance: Annotated[float, Field(ge=0, le=100)] = 0.05
    group: MetricName = "default"
    critical: bool = False


class EnhancementSubmission(InputEvent):
    """An enhancement submitted for governance (topic `enhancements`, key `enhancement_id`, §3.10).

    `payload` is checked against its kind's JSON Schema; for `trust_policy` it is a
    trust-gate configuration fragment. `requirements` are PEP 508 strings checked against
    the installed packages, `thresholds` the preflight inputs (item → value), `baseline`
    the metrics the monitor compares against. Beyond the contract's fields: `judge`, the
    canary judge's metrics (default: `enhancements.yaml`'s).
    """

    enhancement_id: EventId
    tenant: Name
    kind: EnhancementKind
    description: Annotated[str, Field(min_length=1, max_length=10_000)]
    payload: dict[str, Any]
    requirements: Annotated[list[Requirement], Field(max_length=200)] = []
    thresholds: dict[MetricName, MetricValue]
    baseline: dict[MetricName, MetricValue] | None = None
    canary_share: UnitFloat = 0.1
    mode: EnhancementMode = "automatic"
    judge: Annotated[list[MetricJudgeSpec], Field(min_length=1, max_length=50)] | None = None

    @model_validator(mode="after")
    def _one_judge_per_metric(self) -> "EnhancementSubmission":
        names = [j.name for j in self.judge or ()]
        if len(set(names)) != len(names):
            raise PydanticCustomError("judge_repeats", "names a metric more than once",
                                      {"code": "invalid_value", "field": "judge"})
        return self


class TransitionReason(OutputPart):
    code: Name
    message: str


class EnhancementEvent(OutputEvent):
    """One lifecycle transition of an enhancement, with the figures that decided it
    (topic `enhancement-events`, key `enhancement_id`, §3.10). `from_state` is null for
    the submission's first event.

    Beyond the contract's fields: `phase` (`canary` or `full` while active), `share` (the
    part of the traffic the enhancement gets), `deactivations` so far, `cooldown_until`
    (RFC 3339) while cooling down, and `operator_id` for a transition an operator made or
    approved.
    """

    enhancement_id: EventId
    tenant: Name
    kind: EnhancementKind
    from_state: EnhancementState | None
    to_state: EnhancementState
    reason: TransitionReason
    evidence: dict[str, Any]
    phase: Literal["canary", "full"] | None = None
    share: UnitFloat | None = None
    deactivations: Annotated[int, Field(ge=0)] = 0
    cooldown_until: str | None = None
    operator_id: str | None = None


class _Payload(BaseModel):
    """A payload refuses unknown keys: a misspelt setting must not pass as a change."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class TrustWeights(_Payload):
    alignment_score: NonNegativeFloat | None = None
    epistemic_risk: NonNegativeFloat | None = None
    confidence_band: NonNegativeFloat | None = None


class RiskTiers(_Payload):
    block: UnitFloat | None = None
    review: UnitFloat | None = None
    monitor: UnitFloat | None = None
    pass_: Annotated[float | None, Field(ge=0, le=1.01, alias="pass")] = None


class TrustPolicyPayload(_Payload):
    """A `trust_policy` enhancement: the trust-gate settings it changes (`trust_gate.yaml`'s keys)."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    weights: TrustWeights | None = None
    risk_tiers: RiskTiers | None = None
    trust_floor: UnitFloat | None = None
    entropy_threshold: UnitFloat | None = None


class RoutingPolicyPayload(_Payload):
    """A `routing_policy` enhancement: the router settings it changes (`routing.yaml`'s keys)."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    policy: Literal["epsilon_greedy", "ucb1", "thompson", "linucb"] | None = None
    mode: Literal["strict", "lenient"] | None = None
    epsilon: UnitFloat | None = None
    epsilon_min: UnitFloat | None = None
    alpha: UnitFloat | None = None
    ucb_c: NonNegativeFloat | None = None


class PromptPayload(_Payload):
    """A `prompt` enhancement: an overlay, or a prompt text under a name."""

    name: Name
    text: Annotated[str, Field(min_length=1, max_length=100_000)] | None = None
    overlay: Name | None = None


class ModelPayload(_Payload):
    """A `model` enhancement: the model to switch to."""

    model: Name
    provider: Name | None = None


_PAYLOADS: Final[dict[str, type[BaseModel]]] = {
    "trust_policy": TrustPolicyPayload, "routing_policy": RoutingPolicyPayload, "prompt": PromptPayload,
    "model": ModelPayload,
}


def payload_json_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema a `kind`'s payload is checked against (`other`: any object).

    >>> payload_json_schema("model")["required"], payload_json_schema("other")
    (['model'], {'type': 'object'})
    """
    model = _PAYLOADS.get(kind)
    return model.model_json_schema(by_alias=True) if model else {"type": "object"}
