"""Prometheus metrics of a worker (trust_gate_* names follow seed 001)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REGISTRY = CollectorRegistry()

EVENTS = Counter("resontinex_events", "Input events consumed", ["topic"], registry=REGISTRY)
DEAD_LETTERS = Counter("resontinex_dead_letters", "Invalid inputs sent to dead-letters", ["topic", "code"], registry=REGISTRY)
DUPLICATES = Counter("resontinex_duplicates", "Inputs dropped as a repeated event_id", ["topic"], registry=REGISTRY)
REDELIVERED = Counter("resontinex_redelivered", "Input records dropped as already processed (offset below the partition's next)", ["topic"], registry=REGISTRY)
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

EVALUATION_SECONDS = Histogram(
    "trust_gate_evaluation_seconds", "Trust gate evaluation time per request (mean over each vectorised batch)",
    buckets=(2.5e-7, 5e-7, 1e-6, 2e-6, 5e-6, 1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2), registry=REGISTRY,
)
SCORES = Histogram(
    "trust_gate_score", "Trust scores", buckets=(0.1, 0.25, 0.4, 0.5, 0.6, 0.75, 0.9, 1.0), registry=REGISTRY,
)
DECISIONS = Counter("trust_gate_decisions", "Decisions by verb", ["verb"], registry=REGISTRY)
TIERS = Counter("trust_gate_tiers", "Trust tiers", ["tier"], registry=REGISTRY)
FLOOR_VIOLATIONS = Counter("trust_gate_floor_violations", "Trust floor violations", registry=REGISTRY)
ENTROPY_FLAGS = Counter("trust_gate_entropy_flags", "Entropy flags raised", registry=REGISTRY)
ERRORS = Counter("trust_gate_errors", "Errors while evaluating or emitting decisions", ["stage"], registry=REGISTRY)
CALIBRATION_FITS = Counter("trust_gate_calibration_fits", "Calibration fits by result", ["result"], registry=REGISTRY)


def exposition() -> bytes:
    return generate_latest(REGISTRY)
