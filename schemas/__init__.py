"""Wire schemas of resontinex: every event of CONTRACT §3–4 and the codec.

Decode a message value with `decode`, a record key with `decode_key`, and
serialise with `encode`::

    >>> from resontinex.schemas import DecisionRequest, decode, encode
    >>> request = decode(DecisionRequest, b'{"event_id": "r1", "tenant": "acme", '
    ...     b'"signals": {"alignment_score": 0.8, "confidence_band": 0.2}, "text": "hi"}')
    >>> request.workflow, request.signals.epistemic_risk
    ('default', None)
    >>> decode(DecisionRequest, encode(request)) == request
    True

Inputs ignore unknown fields; outputs refuse them. Every failure is an
`InvalidEvent` with one of `ERROR_CODES`.
"""

from ._base import SYSTEM_TENANT, InputEvent, OutputEvent, Severity, Tier, Verb, ms_to_ts, ts_to_ms
from ._codec import DEFAULT_MAX_BYTES, decode, decode_json, decode_key, decode_keyed, encode
from ._enhancements import (
    ENHANCEMENT_KINDS,
    ENHANCEMENT_MODES,
    ENHANCEMENT_STATES,
    EnhancementEvent,
    EnhancementKind,
    EnhancementMode,
    EnhancementState,
    EnhancementSubmission,
    MetricJudgeSpec,
    ModelPayload,
    PromptPayload,
    RoutingPolicyPayload,
    TransitionReason,
    TrustPolicyPayload,
    payload_json_schema,
)
from ._inputs import (
    MAX_REDRIVEN,
    MAX_TASK_CHARS,
    MAX_TEXT_CHARS,
    METRIC_LIMIT,
    BreakGlass,
    Constraints,
    Control,
    CoordinationRequest,
    Cost,
    DecisionRequest,
    Estimate,
    Outcome,
    Provider,
    Psi,
    Redriven,
    Routing,
    RoutingContext,
    Scenario,
    Signals,
    Telemetry,
    TrajectoryRequest,
)
from ._outputs import (
    Alert,
    AuditRecord,
    AgentResponse,
    BudgetSummary,
    CanarySummary,
    CoordinationResult,
    DeadLetter,
    DeadLetterError,
    Decision,
    Explanation,
    OverlaySummary,
    Reason,
    RouteSummary,
    TrajectoryResult,
    TrustSummary,
)
from ._registry import EVENT_TYPES, export_json_schemas, json_schema
from .exceptions import ERROR_CODES, ErrorCode, InvalidEvent

__all__ = [
    "DEFAULT_MAX_BYTES",
    "ENHANCEMENT_KINDS",
    "ENHANCEMENT_MODES",
    "ENHANCEMENT_STATES",
    "ERROR_CODES",
    "EVENT_TYPES",
    "MAX_REDRIVEN",
    "MAX_TASK_CHARS",
    "MAX_TEXT_CHARS",
    "METRIC_LIMIT",
    "SYSTEM_TENANT",
    "AgentResponse",
    "Alert",
    "AuditRecord",
    "BreakGlass",
    "BudgetSummary",
    "CanarySummary",
    "Constraints",
    "Control",
    "CoordinationRequest",
    "CoordinationResult",
    "Cost",
    "DeadLetter",
    "DeadLetterError",
    "Decision",
    "Explanation",
    "DecisionRequest",
    "EnhancementEvent",
    "EnhancementKind",
    "EnhancementMode",
    "EnhancementState",
    "EnhancementSubmission",
    "ErrorCode",
    "Estimate",
    "InputEvent",
    "InvalidEvent",
    "MetricJudgeSpec",
    "ModelPayload",
    "Outcome",
    "OutputEvent",
    "OverlaySummary",
    "Provider",
    "PromptPayload",
    "Psi",
    "Reason",
    "Redriven",
    "RouteSummary",
    "RoutingPolicyPayload",
    "Routing",
    "RoutingContext",
    "Scenario",
    "Severity",
    "Signals",
    "Telemetry",
    "Tier",
    "TrajectoryRequest",
    "TrajectoryResult",
    "TransitionReason",
    "TrustPolicyPayload",
    "TrustSummary",
    "Verb",
    "decode",
    "decode_json",
    "decode_key",
    "decode_keyed",
    "encode",
    "export_json_schemas",
    "json_schema",
    "ms_to_ts",
    "payload_json_schema",
    "ts_to_ms",
]
