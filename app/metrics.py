"""Prometheus metrics of a worker (trust_gate_* names follow seed 001)."""

from __future__ import annotations

import threading
from typing import Iterator, Sequence

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.utils import floatToGoString

REGISTRY = CollectorRegistry()


class BatchHistogram:
    """A Prometheus histogram fed a numpy array at a time.

    `Histogram.observe` costs a few µs a value; a batch of 4,000 scores is one
    `searchsorted` here. Exposed through the collector interface of prometheus_client.

    >>> h = BatchHistogram("doc_scores", "Scores", (0.5, 1.0), registry=CollectorRegistry())
    >>> h.observe_many(np.array([0.2, 0.5, 0.7]))
    >>> [(s.labels["le"], s.value) for s in next(h.collect()).samples if s.name.endswith("_bucket")]
    [('0.5', 2), ('1.0', 3), ('+Inf', 3)]
    """

    def __init__(self, name: str, documentation: str, buckets: Sequence[float], *, registry: CollectorRegistry) -> None:
        self._name, self._doc = name, documentation
        self._bounds = np.asarray(buckets, dtype=np.float64)
        self._counts = np.zeros(len(buckets) + 1, dtype=np.int64)
        self._sum = 0.0
        self._lock = threading.Lock()
        registry.register(self)

    def observe_many(self, values: Sequence[float] | np.ndarray) -> None:
        values = np.asarray(values, dtype=np.float64)
        counts = np.bincount(np.searchsorted(self._bounds, values, side="left"), minlength=len(self._counts))
        with self._lock:
            self._counts += counts
            self._sum += float(values.sum())

    def observe_repeated(self, value: float, n: int) -> None:
        """`n` observations of one value, at the cost of one.

        >>> h = BatchHistogram("doc_waits", "Waits", (0.001, 0.01), registry=CollectorRegistry())
        >>> h.observe_repeated(0.004, 3)
        >>> [(s.name, s.labels.get("le"), s.value) for s in next(h.collect()).samples]  # doctest: +NORMALIZE_WHITESPACE
        [('doc_waits_bucket', '0.001', 0), ('doc_waits_bucket', '0.01', 3), ('doc_waits_bucket', '+Inf', 3),
         ('doc_waits_count', None, 3), ('doc_waits_sum', None, 0.012)]
        """
        i = int(np.searchsorted(self._bounds, value, side="left"))
        with self._lock:
            self._counts[i] += n
            self._sum += value * n

    def collect(self) -> Iterator[HistogramMetricFamily]:
        with self._lock:
            cumulative, total = np.cumsum(self._counts).tolist(), self._sum
        buckets = [(floatToGoString(b), c) for b, c in zip(self._bounds.tolist(), cumulative)]
        yield HistogramMetricFamily(self._name, self._doc, buckets=[*buckets, ("+Inf", cumulative[-1])], sum_value=total)

class LabelledBatchHistogram:
    """A labelled Prometheus histogram fed arrays of values per label set: one
    `searchsorted` per label set and batch. Past `max_series` label sets, new ones are
    counted under `_other` values (labels from producers' fields must not grow without end).

    >>> h = LabelledBatchHistogram("doc_tokens", "Tokens", ("kind",), (10, 100), registry=CollectorRegistry(),
    ...                            max_series=1)
    >>> h.labels("input").observe_many([5, 50]); h.labels("output").observe_many([500])
    >>> [(s.labels, s.value) for s in next(h.collect()).samples if s.name.endswith(("_count", "_sum"))]
    [({'kind': 'input'}, 2), ({'kind': 'input'}, 55.0), ({'kind': '_other'}, 1), ({'kind': '_other'}, 500.0)]
    """

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str], buckets: Sequence[float], *,
                 registry: CollectorRegistry, max_series: int = 1000) -> None:
        self._name, self._doc, self._labelnames = name, documentation, tuple(labelnames)
        self._bounds = np.asarray(buckets, dtype=np.float64)
        self._series: dict[tuple[str, ...], list] = {}  # label values → [bucket counts, sum]
        self._max_series = max_series
        self._lock = threading.Lock()
        registry.register(self)

    def labels(self, *values: str) -> "_LabelledChild":
        return _LabelledChild(self, tuple(values))

    def observe_many(self, labels: tuple[str, ...], values: Sequence[float] | np.ndarray) -> None:
        values = np.asarray(values, dtype=np.float64)
        counts = np.bincount(np.searchsorted(self._bounds, values, side="left"), minlength=len(self._bounds) + 1)
        with self._lock:
            series = self._series.get(labels)
            if series is None:
                if len(self._series) >= self._max_series:
                    labels = ("_other",) * len(labels)
                series = self._series.setdefault(labels, [np.zeros(len(self._bounds) + 1, dtype=np.int64), 0.0])
            series[0] += counts
            series[1] += float(values.sum())

    def collect(self) -> Iterator[HistogramMetricFamily]:
        with self._lock:
            rows = [(labels, np.cumsum(counts).tolist(), total) for labels, (counts, total) in self._series.items()]
        if not rows:  # no label set yet: no family (a family without samples has no labels to show)
            return
        family = HistogramMetricFamily(self._name, self._doc, labels=self._labelnames)
        bounds = [floatToGoString(b) for b in self._bounds.tolist()]
        for labels, cumulative, total in rows:
            family.add_metric(list(labels), [*zip(bounds, cumulative), ("+Inf", cumulative[-1])], total)
        yield family


class _LabelledChild:
    """One label set of a `LabelledBatchHistogram` (what `applier.record` observes on)."""

    __slots__ = ("_parent", "_labels")

    def __init__(self, parent: LabelledBatchHistogram, labels: tuple[str, ...]) -> None:
        self._parent, self._labels = parent, labels

    def observe_many(self, values: Sequence[float] | np.ndarray) -> None:
        self._parent.observe_many(self._labels, values)


EVENTS = Counter("resontinex_events", "Input events consumed", ["topic"], registry=REGISTRY)
DEAD_LETTERS = Counter("resontinex_dead_letters", "Invalid inputs sent to dead-letters", ["topic", "code"], registry=REGISTRY)
DUPLICATES = Counter("resontinex_duplicates", "Inputs dropped as a repeated event_id", ["topic"], registry=REGISTRY)
REDELIVERED = Counter("resontinex_redelivered", "Input records dropped as already processed (offset below the partition's next)", ["topic"], registry=REGISTRY)
TRAJECTORY_GROUP_MEMBERS = Gauge("resontinex_trajectory_group_members", "Members of the trajectory consumer group, as the broker last said (-1: unknown)", registry=REGISTRY)
MISROUTED = Counter("resontinex_misrouted", "Input records found on another partition than their key's, forwarded to it unprocessed (CONTRACT §1)", ["topic"], registry=REGISTRY)
REFETCHED = Counter("resontinex_refetched", "Input records the stream skipped, fetched directly to close an offset gap", ["topic"], registry=REGISTRY)
BATCH_SIZE = Histogram(
    "resontinex_batch_size", "Events per processed batch", ["agent"],
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 4000, 8000), registry=REGISTRY,
)
BATCH_SECONDS = Histogram(
    "resontinex_batch_seconds", "Time to process one batch, outputs acknowledged", ["agent"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5), registry=REGISTRY,
)
DECISION_LATENCY = Histogram(
    "resontinex_decision_latency_seconds", "Request record timestamp to decision acknowledged",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=REGISTRY,
)
PARTITIONS_OWNED = Gauge("resontinex_partitions_owned", "Input partitions this worker owns", registry=REGISTRY)

# A request waits for the whole vectorised evaluation of its batch: that is its evaluation
# time (the latency rules' quantity), observed once per request. The cost of one evaluation,
# the batch's time shared by its requests, is EVALUATION_BUSY / this histogram's count.
EVALUATION_SECONDS = BatchHistogram(
    "trust_gate_evaluation_seconds", "Trust gate evaluation time of each request (its batch's vectorised evaluation)",
    (1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2.5e-2, 0.1), registry=REGISTRY,
)
EVALUATION_BUSY = Counter(
    "trust_gate_evaluation_busy_seconds", "Time spent evaluating trust, every batch once", registry=REGISTRY,
)
SCORES = BatchHistogram(
    "trust_gate_score", "Trust scores", (0.1, 0.25, 0.4, 0.5, 0.6, 0.75, 0.9, 1.0), registry=REGISTRY,
)
DECISIONS = Counter("trust_gate_decisions", "Decisions by verb", ["verb"], registry=REGISTRY)
TIERS = Counter("trust_gate_tiers", "Trust tiers", ["tier"], registry=REGISTRY)
FLOOR_VIOLATIONS = Counter("trust_gate_floor_violations", "Trust floor violations", registry=REGISTRY)
ENTROPY_FLAGS = Counter("trust_gate_entropy_flags", "Entropy flags raised", registry=REGISTRY)
ERRORS = Counter("trust_gate_errors", "Errors while evaluating or emitting decisions", ["stage"], registry=REGISTRY)
CALIBRATION_FITS = Counter("trust_gate_calibration_fits", "Calibration fits by result", ["result"], registry=REGISTRY)

CIRCUIT_OPEN = Gauge("resontinex_circuit_open", "1 while this worker's circuit breaker holds every decision for review", registry=REGISTRY)
CIRCUIT_ERROR_RATE = Gauge("resontinex_circuit_error_rate", "Processing error rate over the circuit breaker's window", registry=REGISTRY)
ALERTS = Counter("resontinex_alerts", "Alerts raised by kind", ["kind"], registry=REGISTRY)
# Budget figures are per scope (`tenant` or `tenant/workflow`): one series per budgeted scope.
BUDGET_SPENT = Gauge("resontinex_budget_spent_usd", "Spend in the current window", ["scope", "period"], registry=REGISTRY)
BUDGET_UTILIZATION = Gauge("resontinex_budget_utilization", "Spend so far / budget (1 = all of it)", ["scope", "period"], registry=REGISTRY)
BUDGET_REMAINING = Gauge("resontinex_budget_remaining_usd", "Budget left in the current window", ["scope", "period"], registry=REGISTRY)
BUDGET_STATUS = Gauge("resontinex_budget_status", "Budget status on spend so far: 0 ok, 1 review, 2 braked, 3 blocked", ["scope", "period"], registry=REGISTRY)
BUDGET_DECISIONS = Counter("resontinex_budget_decisions", "Decisions with a budget, by budget status", ["status"], registry=REGISTRY)
INSIGHT_CACHE = Counter("resontinex_insight_cache", "Identical requests answered with the earlier decision (hit) or not", ["result"], registry=REGISTRY)
ROUTER_REWARDS = Histogram("resontinex_router_reward", "Rewards of routed outcomes (seed 002's formula)", ["provider"],
                           buckets=(-20, -10, -5, 0, 2.5, 5, 7.5, 9, 10, 11), registry=REGISTRY)
DECISIONS_RESUMED = Counter("resontinex_decisions_resumed", "Redelivered requests answered with the decision they "
                            "got before a crash kept its audit record from being written", registry=REGISTRY)
ROUTER_EXPIRED = Counter("resontinex_router_expired_outcomes", "Outcomes arriving after routing.pending_ttl_s", registry=REGISTRY)
TRIPWIRE_DOWNGRADED = Gauge("resontinex_tripwire_downgraded", "1 while the tenant runs downgraded", ["tenant"], registry=REGISTRY)
ROUTER_Q = Gauge("resontinex_router_q_value", "Value estimate per tenant, state and provider",
                 ["tenant", "state", "provider"], registry=REGISTRY)
ROUTER_EPSILON = Gauge("resontinex_router_epsilon", "Exploration rate (epsilon-greedy) per tenant", ["tenant"], registry=REGISTRY)
ROUTER_COUNTS = Gauge("resontinex_router_count", "Router counters per tenant: decisions, outcomes, expired, violations",
                      ["tenant", "what"], registry=REGISTRY)
ALERTS_AUDITED = Counter("resontinex_alerts_audited", "Alerts raised by other roles appended to the audit chain",
                         registry=REGISTRY)
TEXTS_FORWARDED = Counter("resontinex_texts_forwarded", "Text-only decision requests sent to the trajectory group",
                          registry=REGISTRY)
TEXTS_RETURNED = Counter("resontinex_texts_returned", "Text-only decision requests put back with their risk: scored or timeout",
                         ["status"], registry=REGISTRY)
TRAJECTORY_TOKENS = Counter("resontinex_trajectory_tokens", "Tokens scored by the language model (rate() gives tokens/s)",
                            registry=REGISTRY)
TRAJECTORY_TOKENS_PER_S = Gauge("resontinex_trajectory_tokens_per_second", "Tokens/s of the last scoring call",
                                registry=REGISTRY)
TRAJECTORY_BATCH_TEXTS = Histogram("resontinex_trajectory_batch_texts", "Texts per forward pass",
                                   buckets=(1, 2, 4, 8, 16, 32, 64, 128), registry=REGISTRY)
TRAJECTORY_CACHE = Counter("resontinex_trajectory_cache", "Texts answered from the cache (hit) or scored (miss)",
                           ["result"], registry=REGISTRY)
TRAJECTORY_OOM = Counter("resontinex_trajectory_oom", "CUDA out-of-memory recoveries: batch halved, or fallen back to the CPU",
                         ["action"], registry=REGISTRY)
TRAJECTORY_DEVICE = Gauge("resontinex_trajectory_model_info", "The model served, its device and dtype (value 1)",
                          ["model", "device", "dtype"], registry=REGISTRY)
TRAJECTORY_LOAD_SECONDS = Gauge("resontinex_trajectory_model_load_seconds", "Time the model took to load",
                                registry=REGISTRY)
COORDINATION_CALLS = Counter("resontinex_coordination_calls", "Messages API calls by model and outcome (ok, or the error code)",
                             ["model", "outcome"], registry=REGISTRY)
COORDINATION_TOKENS = Counter("resontinex_coordination_tokens", "Tokens of Messages API calls by model and direction",
                              ["model", "direction"], registry=REGISTRY)
COORDINATION_CALL_SECONDS = Histogram("resontinex_coordination_call_seconds", "Latency of a Messages API call, retries included",
                                      ["model"], buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120), registry=REGISTRY)
COORDINATION_RETRIES = Counter("resontinex_coordination_retries", "Messages API attempts retried, by model and cause",
                               ["model", "cause"], registry=REGISTRY)
COORDINATION_BREAKER = Gauge("resontinex_coordination_breaker_state", "Circuit breaker per model: 0 closed, 1 half-open, 2 open",
                             ["model"], registry=REGISTRY)
COORDINATION_BASELINE_CACHE = Counter("resontinex_coordination_baseline_cache", "Runs whose baselines came from the cache (hit) or were measured (miss)",
                                      ["result"], registry=REGISTRY)
COORDINATION_RUNS = Counter("resontinex_coordination_runs", "Coordination runs answered, by strategy and status",
                            ["strategy", "status"], registry=REGISTRY)
COORDINATION_IN_FLIGHT = Gauge("resontinex_coordination_runs_in_flight", "Coordination runs in progress", registry=REGISTRY)
COORDINATION_GAMMA = Histogram("resontinex_coordination_gamma", "γ of measured runs (team quality over the members' mean alone)",
                               buckets=(0.5, 0.8, 0.9, 1.0, 1.1, 1.2, 1.5, 2.0), registry=REGISTRY)
ROUTER_SUCCESS = Gauge("resontinex_router_success_rate", "Share of routed outcomes that succeeded", ["tenant"], registry=REGISTRY)
TELEMETRY_FOLDED = Counter("resontinex_telemetry_folded", "Telemetry records folded into their windows", registry=REGISTRY)
ENHANCEMENT_TRANSITIONS = Counter("resontinex_enhancement_transitions", "Enhancement lifecycle transitions, by the state entered",
                                  ["to_state"], registry=REGISTRY)
ENHANCEMENT_TRIGGERS = Counter("resontinex_enhancement_triggers", "Monitor triggers on active enhancements, by check and severity",
                               ["check", "severity"], registry=REGISTRY)
ENHANCEMENT_CANARY_JUDGEMENTS = Counter("resontinex_enhancement_canary_judgements", "Canary judgements, by verdict",
                                        ["verdict"], registry=REGISTRY)
ENHANCEMENT_JUDGES_DEFERRED = Counter("resontinex_enhancement_judges_deferred",
                                      "Canary judges due but left to the next tick (canary.judges_per_tick)",
                                      registry=REGISTRY)
ENHANCEMENT_TELEMETRY_DROPPED = Counter("resontinex_enhancement_telemetry_dropped",
                                        "Enhancement telemetry partials not merged, by reason", ["reason"], registry=REGISTRY)
ENHANCEMENTS = Gauge("resontinex_enhancements", "Enhancements of the tenants this worker owns, by state", ["state"],
                     registry=REGISTRY)

# OTel GenAI semantic conventions: the histogram `gen_ai.client.token.usage` (unit {token}, the
# spec's advised buckets) as the OTel Prometheus exporter names it. One input and one output
# observation per AI call: each cost the budget agent folds (coordination runs publish their
# calls on `costs`, so they are counted there, once). `app.otel` has the span attribute names.
GEN_AI_TOKEN_USAGE = LabelledBatchHistogram(
    "gen_ai_client_token_usage", "Tokens per AI call by token type (OTel GenAI semconv gen_ai.client.token.usage)",
    ("gen_ai_token_type", "gen_ai_provider_name", "gen_ai_request_model", "gen_ai_operation_name"),
    (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864), registry=REGISTRY,
)
OTEL_TRACES = Gauge("resontinex_otel_traces_export", "1 while this worker exports traces over OTLP (an endpoint is set)",
                    registry=REGISTRY)


def observe_evaluation(seconds: float, n: int) -> None:
    """One vectorised trust evaluation of `n` requests that took `seconds`."""
    EVALUATION_SECONDS.observe_repeated(seconds, n)
    EVALUATION_BUSY.inc(seconds)


def set_router_gauges(statuses: dict[str, dict]) -> None:
    """The router figures of `/metrics`, rebuilt from the owned tenants' status snapshots."""
    for gauge in (ROUTER_Q, ROUTER_EPSILON, ROUTER_COUNTS, ROUTER_SUCCESS):
        gauge.clear()
    for tenant, st in statuses.items():
        for state, row in st["strategist"]["q_values"].items():
            for provider, value in row.items():
                if value is not None:
                    ROUTER_Q.labels(tenant, state, provider).set(value)
        if st["strategist"]["epsilon"] is not None:
            ROUTER_EPSILON.labels(tenant).set(st["strategist"]["epsilon"])
        ex = st["executor"]
        for what, n in (("decisions", st["strategist"]["decision_count"]), ("outcomes", ex["total_outcomes"]),
                        ("expired", ex["expired"]), ("violations", sum(st["auditor"]["violations"].values()))):
            ROUTER_COUNTS.labels(tenant, what).set(n)
        if ex["success_rate"] is not None:
            ROUTER_SUCCESS.labels(tenant).set(ex["success_rate"])


def set_enhancement_gauges(status: dict[str, dict]) -> None:
    """Enhancements per state, from the owned tenants' status (`Enhancements.status`)."""
    from resontinex.schemas import ENHANCEMENT_STATES

    counts = dict.fromkeys(ENHANCEMENT_STATES, 0)
    for tenant in status.values():
        for row in tenant["enhancements"]:
            counts[row["state"]] += 1
    for state, n in counts.items():
        ENHANCEMENTS.labels(state).set(n)


GATEWAY_REGISTRY = CollectorRegistry()
"""The gateway role's metrics: a process of its own, it exports these alone."""
GATEWAY_REQUESTS = Counter("resontinex_gateway_requests", "Gateway requests answered, by route and HTTP status",
                           ["route", "status"], registry=GATEWAY_REGISTRY)
GATEWAY_SECONDS = Histogram("resontinex_gateway_request_seconds", "Gateway request time, from body read to answer",
                            ["route"], buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                                                10.0, 30.0), registry=GATEWAY_REGISTRY)
GATEWAY_DECISIONS_KEPT = Gauge("resontinex_gateway_decisions_kept", "Decisions the gateway holds for lookups",
                               registry=GATEWAY_REGISTRY)


def exposition(registry: CollectorRegistry = REGISTRY) -> bytes:
    return generate_latest(registry)
