"""One valid, realistic event per event type (as decoded JSON objects)."""

from __future__ import annotations

import copy
from typing import Any

TS = "2024-05-01T12:00:00.123Z"
HASH_A = "0" * 64
HASH_B = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

_SAMPLES: dict[str, dict[str, Any]] = {
    "decision-request": {
        "event_id": "req-0001",
        "tenant": "acme",
        "workflow": "refunds",
        "ts": TS,
        "signals": {"alignment_score": 0.8, "epistemic_risk": 0.3, "confidence_band": 0.2},
        "estimate": {"tokens": 1200, "cost_usd": 0.42, "complexity": 0.6, "entropy": 0.3},
        "routing": {
            "context": {"workload_type": "llm_inference", "gpu_type": "a100", "region": "us-west", "gpu_hours": 2.0},
            "providers": [
                {
                    "provider_id": "akash",
                    "price_usd_per_hour": 2.5,
                    "latency_ms": 120,
                    "reputation": 92,
                    "capacity_available": 10,
                    "gpu_types": ["a100", "h100"],
                    "regions": ["us-west"],
                }
            ],
            "constraints": {"max_price": 4.5, "max_latency_ms": 200, "min_reputation": 80},
        },
        "scenario": {"category": "refund", "complexity": 0.4, "description": "refund a duplicate charge"},
        "psi": {"density": 0.5, "coherence": 0.7, "entropy": 0.2},
        "text": "The refund of $42 was approved because the charge was duplicated.",
    },
    "control": {
        "event_id": "ctl-1",
        "tenant": "acme",
        "action": "tripwire_reset",
        "operator_id": "ops-7",
        "reason": "usage growth approved for the launch",
    },
    "outcome": {
        "event_id": "out-1",
        "tenant": "acme",
        "decision_id": "dec-1",
        "success": True,
        "actual_cost_usd": 0.4,
        "actual_latency_ms": 910,
        "actual_reputation": 95,
        "label": True,
    },
    "cost": {
        "event_id": "cost-1",
        "tenant": "acme",
        "workflow": "refunds",
        "provider": "openai",
        "model": "gpt-4o",
        "input_tokens": 900,
        "output_tokens": 310,
        "cost_usd": 0.0121,
        "latency_ms": 840.5,
        "ts": TS,
    },
    "telemetry": {"event_id": "tel-1", "source": "gpu-node-3", "metrics": {"gpu.util": 0.93, "temp_c": 71}},
    "trajectory-request": {
        "event_id": "traj-1",
        "tenant": "acme",
        "text": "Paris is the capital of France.",
        "model": "gpt2",
        "request_id": "req-0001",
    },
    "decision": {
        "event_id": "dec-1",
        "schema_version": 1,
        "ts": TS,
        "request_id": "req-0001",
        "tenant": "acme",
        "workflow": "refunds",
        "verb": "review",
        "reasons": [{"component": "trust", "code": "trust_floor_violation", "message": "score 0.55 < floor 0.6"}],
        "policy_version": "3f2a9c1b7d4e",
        "trust": {
            "score": 0.55,
            "raw_score": 0.5512,
            "tier": "monitor",
            "decision": "execute",
            "floor_violation": True,
            "entropy_flag": False,
            "calibrated_score": None,
        },
        "budget": {
            "status": "ok",
            "utilization": 0.31,
            "remaining_usd": 34.5,
            "effective_cost_usd": 0.63,
            "multiplier": 1.5,
        },
        "route": {
            "provider_id": "akash",
            "mode": "exploit",
            "q_value": 0.72,
            "propensity": 0.9,
            "policy": "epsilon_greedy",
            "violations": [],
        },
        "overlay": {"name": "refund_v2", "confidence": 0.8, "fallbacks": ["default"]},
    },
    "alert": {
        "event_id": "al-1",
        "schema_version": 1,
        "ts": TS,
        "tenant": "acme",
        "kind": "trust_floor_violation",
        "severity": "warning",
        "message": "trust score 0.55 is below the floor 0.6",
        "details": {"score": 0.55, "floor": 0.6},
        "source_event_id": "req-0001",
    },
    "trajectory-result": {
        "event_id": "tr-1",
        "schema_version": 1,
        "ts": TS,
        "request_event_id": "traj-1",
        "tenant": "acme",
        "model": "gpt2",
        "n_tokens": 8,
        "perplexity": 12.4,
        "mean_entropy": 2.1,
        "max_entropy": 5.3,
        "passed_quality_check": True,
        "truncated": False,
        "cached": False,
        "device": "cpu",
        "request_id": "req-0001",
    },
    "audit-record": {
        "event_id": "au-1",
        "schema_version": 1,
        "ts": TS,
        "seq": 0,
        "kind": "decision",
        "tenant": "acme",
        "policy_version": "3f2a9c1b7d4e",
        "record": {"request": {"event_id": "req-0001"}, "decision": {"verb": "review"}},
        "prev_hash": HASH_A,
        "hash": HASH_B,
    },
    "dead-letter": {
        "event_id": "dl-decision-requests-2-41",
        "schema_version": 1,
        "ts": TS,
        "source_topic": "decision-requests",
        "partition": 2,
        "offset": 41,
        "key": "acme",
        "value_base64": "/yBub3QganNvbg==",
        "value_size": 10,
        "value_truncated": False,
        "value_sha256": HASH_B,
        "error": {"code": "not_json", "message": "unexpected character at line 1 column 1"},
    },
}


def sample(name: str) -> dict[str, Any]:
    """A fresh deep copy of the sample event named ``name`` (a key of EVENT_TYPES)."""
    return copy.deepcopy(_SAMPLES[name])


NAMES = tuple(_SAMPLES)
