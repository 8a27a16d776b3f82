"""Output events: what the processor writes to the `out` topics (CONTRACT §3.2, §3.6–4)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from ._base import (
    EventId,
    Name,
    NonNegativeFloat,
    NonNegativeInt,
    OutputEvent,
    OutputPart,
    Severity,
    Sha256Hex,
    Tier,
    UnitFloat,
    Verb,
)

__all__ = [
    "AgentResponse",
    "Alert",
    "AuditRecord",
    "BudgetSummary",
    "CanarySummary",
    "CoordinationError",
    "CoordinationResult",
    "DeadLetter",
    "DeadLetterError",
    "Decision",
    "Explanation",
    "OverlaySummary",
    "Reason",
    "RouteSummary",
    "ShadowRoute",
    "ShadowVerdict",
    "SignalTerm",
    "TierBounds",
    "TrajectoryResult",
    "TrustSummary",
    "VerbChange",
]


class Reason(OutputPart):
    """Why a component said what it said."""

    component: Name
    code: Name
    message: str


class TrustSummary(OutputPart):
    """The trust gate's verdict (CONTRACT §5)."""

    score: UnitFloat
    raw_score: UnitFloat
    tier: Tier
    decision: Verb
    floor_violation: bool
    entropy_flag: bool
    calibrated_score: UnitFloat | None = None
    decided_on: Literal["raw", "calibrated"] = "raw"  # which score set tier and verb (trust_gate.yaml decide_on)


class SignalTerm(OutputPart):
    """One signal's part of the trust gate's logit: `contribution` = `weight` × `logit`
    (of `clamped` for alignment, of 1 − `clamped` for risk and confidence band)."""

    weight: NonNegativeFloat
    clamped: UnitFloat
    logit: float
    contribution: float


class TierBounds(OutputPart):
    """The thresholds around a tier: the deciding score is above `above` (null for the
    lowest tier) and at most `at_most`."""

    above: NonNegativeFloat | None
    at_most: NonNegativeFloat


class VerbChange(OutputPart):
    """A rule that changed the verb: the component, the reason codes behind it, before and after."""

    component: Name
    codes: list[Name]
    before: Verb
    after: Verb


class Explanation(OutputPart):
    """How the trust gate and the rules after it reached the verb (seed 001's explanation
    trail; beyond CONTRACT §3.2). z = the sum of the signals' contributions, `raw_score` =
    sigmoid(z), `score` = `raw_score` rounded to 4 places, `tier_score` the score the tier
    is read from (`score`, or the calibrated score under `decide_on: calibrated`)."""

    signals: dict[Literal["alignment_score", "epistemic_risk", "confidence_band"], SignalTerm]
    z: float
    raw_score: UnitFloat
    score: UnitFloat
    tier_score: UnitFloat
    tier: Tier
    tier_bounds: TierBounds
    tier_verb: Verb
    verb_changes: list[VerbChange]
    verb: Verb


class BudgetSummary(OutputPart):
    """The budget check; `utilization` exceeds 1 once the budget is overspent.

    Beyond CONTRACT §3.2: the budget that applied (`scope`, `period` and its bounds,
    `limit_usd`), the multipliers applied by name, the tripwire's `downgraded` and the
    cheaper `mode`, and on an over-budget `defer` `retry_after_s` and since when the
    budget has been exhausted (`blocked_since`).
    """

    status: Literal["ok", "review", "blocked", "braked", "downgraded"]
    utilization: NonNegativeFloat
    remaining_usd: float
    effective_cost_usd: NonNegativeFloat
    multiplier: NonNegativeFloat
    multipliers: list[str] = []
    scope: str | None = None
    period: Literal["hour", "day", "month"] | None = None
    period_start: str | None = None
    period_end: str | None = None
    limit_usd: NonNegativeFloat | None = None
    downgraded: bool = False
    mode: str | None = None
    retry_after_s: NonNegativeFloat | None = None
    blocked_since: str | None = None


class RouteSummary(OutputPart):
    """The provider choice; `provider_id` (and its value estimates) are null when no
    provider is feasible."""

    provider_id: str | None
    mode: Literal["explore", "exploit"]
    q_value: float | None = None
    propensity: UnitFloat | None = None
    policy: str
    violations: list[str] = []


class OverlaySummary(OutputPart):
    """The prompt overlay selected for the scenario."""

    name: str
    confidence: UnitFloat
    fallbacks: list[str] = []


class ShadowVerdict(OutputPart):
    """What a shadow candidate's trust gate would have said (it decided nothing)."""

    verb: Verb
    tier: Tier
    score: UnitFloat
    policy_version: Name


class ShadowRoute(OutputPart):
    """Where a shadow candidate's router would have routed (it routed nothing): `verb`
    `defer` with `provider_id` null when it found no feasible provider."""

    verb: Literal["execute", "defer"]
    provider_id: str | None
    policy: str
    policy_version: Name


class CanarySummary(OutputPart):
    """The tenant's policy under canary when this decision was made (a `trust_policy` or
    `routing_policy` enhancement, CONTRACT §3.10): the arm the request fell in (by a hash of
    the enhancement and request ids), the ramp's step and share, and in shadow the
    candidate's verdict (a routing candidate's: the route it would have chosen)."""

    enhancement_id: EventId
    kind: Literal["trust_policy", "routing_policy"] = "trust_policy"
    arm: Literal["candidate", "current"]
    share: UnitFloat
    step: NonNegativeInt
    activation: NonNegativeInt = 0
    candidate_policy_version: Name
    shadow: ShadowVerdict | ShadowRoute | None = None


class Decision(OutputEvent):
    """One per valid decision request (topic `decisions`, §3.2).

    `verb` is the most restrictive of the parts (abort > defer > review > execute).
    """

    request_id: EventId
    tenant: Name
    workflow: Name
    verb: Verb
    reasons: list[Reason]
    policy_version: Name
    trust: TrustSummary
    budget: BudgetSummary | None = None
    route: RouteSummary | None = None
    overlay: OverlaySummary | None = None
    explanation: Explanation | None = None  # when the request asks (`explain`); its audit record always has it
    canary: CanarySummary | None = None  # while a policy of the tenant is under canary; `policy_version` is
    # then the candidate's for the decisions it made


class Alert(OutputEvent):
    """Something needs a human or a system to act (topic `alerts`, §3.7).

    `tenant` is `"_system"` (`SYSTEM_TENANT`) for alerts of no tenant.
    """

    tenant: Name
    kind: Name
    severity: Severity
    message: str
    details: dict[str, Any] = {}
    source_event_id: str | None = None


class TrajectoryResult(OutputEvent):
    """Per-text perplexity and entropy (topic `trajectory-results`, §3.6).

    `request_id` echoes the trajectory request's `request_id` (the decision request
    the text belongs to), if it had one. `surprise` (beyond the contract's fields): the
    sum of −log p over the tokens the model gave a probability under 0.1 (seed 003).
    `token_logprobs` and `token_entropies` (nats), one per scored token, when the request
    asked for `detail`.
    """

    request_event_id: EventId
    tenant: Name
    model: str
    n_tokens: NonNegativeInt
    perplexity: NonNegativeFloat
    mean_entropy: NonNegativeFloat
    max_entropy: NonNegativeFloat
    passed_quality_check: bool
    truncated: bool
    cached: bool
    device: str
    request_id: str | None = None
    surprise: NonNegativeFloat | None = None
    token_logprobs: list[float] | None = None
    token_entropies: list[float] | None = None


class AuditRecord(OutputEvent):
    """One link of the per-partition hash chain (topic `audit`, §3.8).

    `hash` covers the whole encoded record except `hash` itself, so it must be
    computed over exactly the fields that are written (`schema_version` included).
    """

    seq: NonNegativeInt
    kind: Name
    tenant: Name
    policy_version: str
    record: dict[str, Any]
    prev_hash: Sha256Hex
    hash: Sha256Hex


class DeadLetterError(OutputPart):
    """Why a message was refused; the codec's codes are listed in `ERROR_CODES`."""

    code: Name
    message: str


class DeadLetter(OutputEvent):
    """An input that could not be processed, with the reason (topic `dead-letters`, §4).

    `key` is null when the record had no key. A value too large to echo whole may be
    cut: `value_size` and `value_sha256` then describe the original bytes and
    `value_truncated` is true.
    """

    source_topic: Name
    partition: NonNegativeInt
    offset: NonNegativeInt
    key: str | None
    value_base64: str
    value_size: NonNegativeInt | None = None
    value_truncated: bool = False
    value_sha256: Sha256Hex | None = None
    error: DeadLetterError


class AgentResponse(OutputPart):
    """One agent's final answer in a coordination run: its hash, not its text."""

    agent: Annotated[int, Field(ge=1)]
    text_sha256: Sha256Hex
    output_tokens: NonNegativeInt


class CoordinationError(OutputPart):
    code: Name
    message: str


class CoordinationResult(OutputEvent):
    """γ, ω, consensus and costs of one coordination run (topic `coordination-results`, §3.9).

    `gamma`, `omega`, `effective`, `emergence`, `coordinated_quality` and
    `consensus_rate` are null when the run could not measure them (`status` `partial`
    or `failed`, with `errors` saying why). Beyond the contract's fields: `agents`, and
    `calls` (the API calls made, one `costs` event each).
    """

    request_event_id: EventId
    tenant: Name
    strategy: Literal["sequential", "parallel", "debate"]
    model: str
    agents: Annotated[int, Field(ge=2, le=10)]
    gamma: NonNegativeFloat | None
    omega: Annotated[float, Field(ge=-1, le=1)] | None
    consensus_rate: Annotated[float, Field(ge=-1, le=1)] | None
    coordinated_quality: UnitFloat | None
    baseline_qualities: list[UnitFloat]
    effective: bool | None
    emergence: bool | None
    responses: list[AgentResponse]
    input_tokens: NonNegativeInt
    output_tokens: NonNegativeInt
    calls: NonNegativeInt
    cost_usd: NonNegativeFloat
    baseline_cached: bool
    status: Literal["ok", "partial", "failed"]
    errors: list[CoordinationError]
