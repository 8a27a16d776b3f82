"""The trajectory role's batch core, in two steps around the model (which the shell runs
on a worker thread): `admit_requests` decodes a batch of `trajectory-requests` (bad ones
become dead letters, a repeated event id is dropped), `plan_results` turns the scores into
`trajectory-results` and a `quality_check_failed` alert for each text that fails. Result
ids derive from the request, so a redelivered request repeats its result's id.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from resontinex.agents.effects import Effects, EffectsBuilder, Output, Record
from resontinex.agents.events import alert_event, derived_id
from resontinex.schemas import InvalidEvent, TrajectoryRequest, decode_keyed, ms_to_ts

from ._analyzer import Scored
from ._config import TrajectoryConfig
from ._scoring import TextScore
from .exceptions import UnscorableText

__all__ = ["Admitted", "Scorer", "admit_requests", "plan_results", "quality_alert", "result_event", "result_id"]

log = logging.getLogger(__name__)


class Scorer(Protocol):
    """What the results say of the model that scored them (an `Analyzer`)."""

    @property
    def name(self) -> str: ...
    @property
    def device(self) -> str: ...
    @property
    def cfg(self) -> TrajectoryConfig: ...
    def passed(self, score: TextScore) -> bool: ...


@dataclass(frozen=True, slots=True)
class Admitted:
    record: Record
    request: TrajectoryRequest


def result_id(tenant: str, request_event_id: str) -> str:
    """Deterministic, so a request scored again repeats its result's id.

    >>> result_id("acme", "t-1") == result_id("acme", "t-1") != result_id("acme", "t-2")
    True
    """
    return derived_id("tr-", tenant, request_event_id)


def admit_requests(records: Sequence[Record], *, seen: Callable[[int, str], bool], scorer: Scorer,
                   configured_model: str, max_message_bytes: int, now: float) -> tuple[Effects, list[Admitted]]:
    """The requests to score, in order: decodable, for a model served here (the scorer's or
    the configured one), not `seen` on their partition and not repeated in the batch."""
    out = EffectsBuilder()
    admitted: list[Admitted] = []
    taken: set[tuple[int, str]] = set()
    served = {scorer.name, configured_model}
    now_ms = round(now * 1000)
    for record in records:
        out.count("EVENTS", record.topic)
        try:
            _, _, request = decode_keyed(TrajectoryRequest, record.key, record.value, max_bytes=max_message_bytes)
            if request.model is not None and request.model not in served:
                raise InvalidEvent("model_unavailable", f"model {request.model!r} is not served here; this "
                                                        f"group serves {scorer.name!r} ({configured_model!r})")
        except InvalidEvent as exc:
            out.reject(record, exc.code, exc.message, now_ms)
            continue
        pair = (record.partition, request.event_id)
        if pair in taken or seen(*pair):
            out.count("DUPLICATES", record.topic)
            continue
        taken.add(pair)
        admitted.append(Admitted(record, request))
    return out.effects(), admitted


def plan_results(admitted: Sequence[Admitted], scored: Sequence[Scored | UnscorableText], scorer: Scorer,
                 now: float) -> Effects:
    """Each admitted request's result (or dead letter when its text could not be scored) and
    the alert of each text that failed the quality check, on the request's partition."""
    out = EffectsBuilder()
    now_ms = round(now * 1000)
    for item, outcome in zip(admitted, scored, strict=True):
        record, request = item.record, item.request
        if isinstance(outcome, UnscorableText):
            out.reject(record, "unscorable_text", str(outcome), now_ms)
            continue
        result = result_event(request, outcome, scorer, request.ts or ms_to_ts(round(record.timestamp * 1000)))
        out.outputs.append(Output("trajectory_results", record.partition, record.key, orjson.dumps(result)))
        if not result["passed_quality_check"]:
            out.outputs.append(Output("alerts", record.partition, record.key,
                                      orjson.dumps(quality_alert(result, scorer.cfg))))
            out.count("ALERTS", "quality_check_failed")
            log.info("quality check failed", extra={"event_id": request.event_id, "tenant": request.tenant})
    return out.effects()


def result_event(request: TrajectoryRequest, scored: Scored, scorer: Scorer, ts: str) -> dict[str, Any]:
    s = scored.score
    return {
        "event_id": result_id(request.tenant, request.event_id), "schema_version": 1,
        "request_event_id": request.event_id, "tenant": request.tenant, "model": scorer.name,
        "n_tokens": s.n_tokens, "perplexity": s.perplexity, "mean_entropy": s.mean_entropy,
        "max_entropy": s.max_entropy, "surprise": s.surprise, "passed_quality_check": scorer.passed(s),
        "truncated": s.truncated, "cached": scored.cached, "device": scorer.device,
        "request_id": request.request_id, "ts": ts,
    } | ({"token_logprobs": [round(float(x), 6) for x in s.token_logprobs],
          "token_entropies": [round(float(x), 6) for x in s.token_entropies]} if request.detail else {})


def quality_alert(result: dict[str, Any], cfg: TrajectoryConfig) -> dict[str, Any]:
    return alert_event(
        id_source=result["event_id"], kind="quality_check_failed", tenant=result["tenant"], severity="warning",
        message=(f"generated text failed the quality check: perplexity {result['perplexity']:.1f} "
                 f"(limit {cfg.max_perplexity:g}), mean entropy {result['mean_entropy']:.2f} nats "
                 f"(limit {cfg.max_mean_entropy:g}), surprise {result['surprise'] / result['n_tokens']:.2f} per token "
                 f"(limit {cfg.max_surprise_per_token:g})"),
        details={k: result[k] for k in ("model", "n_tokens", "perplexity", "mean_entropy", "max_entropy", "surprise",
                                        "truncated", "request_id")} | {"result_id": result["event_id"]},
        source_event_id=result["request_event_id"], ts=result["ts"])
