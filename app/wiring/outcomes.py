"""The outcomes agent of the gate: outcomes of routed decisions teach the router (once
each, `app/wiring/feedback.py`); labelled outcomes fit each tenant's score calibration.

An outcome names the decision it reports on; the decision's raw score comes from the
partition state (rebuilt from the audit topic). Samples are kept per tenant keyed by
decision id, so a redelivered outcome replaces its own sample instead of adding one.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict

import faust

from resontinex.agents.trust import CalibrationAdapter
from resontinex.app import metrics
from resontinex.app.engine.audit_writer import append_audit
from resontinex.app.engine.deadletter import send_dead_letter
from resontinex.app.engine.faust_compat import event_context
from resontinex.app.engine.misrouted import Forwarder
from resontinex.app.engine.record_source import Lifecycle
from resontinex.app.runtime import Runtime
from resontinex.schemas import InvalidEvent, Outcome, decode, decode_key

from resontinex.app.wiring.feedback import apply_outcomes
from resontinex.app.wiring.hot import attach_hot

log = logging.getLogger(__name__)

MAX_SAMPLES = 2000
OUTCOME_LIMIT = 1e9
"""A cost or latency beyond this would make the router's sums overflow to infinity."""
REFIT_EVERY = 25


def register(app: faust.App, rt: Runtime, calibration: faust.types.TableT, routers: faust.types.TableT,
             lifecycle: Lifecycle) -> None:
    s = rt.settings
    source_name, dead_letters = s.topic("outcomes"), s.topic("dead_letters")
    forwarder = Forwarder(rt.sink, s.partitions)

    async def handle(events: list[faust.types.EventT]) -> None:
        labelled: dict[str, list[tuple[faust.types.EventT, str, float, bool]]] = defaultdict(list)
        routed: dict[str, list[tuple[faust.types.EventT, Outcome, dict]]] = defaultdict(list)
        expired: dict[str, list[tuple[faust.types.EventT, str]]] = defaultdict(list)
        now, ttl = time.time(), rt.routing.pending_ttl_s
        states = {p: await rt.states.get(p) for p in {e.message.partition for e in events}}
        for event in forwarder.keep_own(events):
            msg = event.message
            try:
                tenant = decode_key(msg.key)
                outcome = decode(Outcome, msg.value, max_bytes=s.max_message_bytes)
                known = states[msg.partition].decisions.get(outcome.decision_id)
                if known is None or known[0] != tenant:
                    raise InvalidEvent("unknown_decision", f"decision_id {outcome.decision_id!r} is unknown or expired")
                pending = known[2]
                if pending is not None and max(outcome.actual_cost_usd, outcome.actual_latency_ms) > OUTCOME_LIMIT:
                    raise InvalidEvent("out_of_range", f"actual_cost_usd and actual_latency_ms must be at most "
                                                       f"{OUTCOME_LIMIT:g} to teach the router")
                if pending is not None and now > pending["decided_at"] + ttl:
                    metrics.ROUTER_EXPIRED.inc()
                    expired[tenant].append((event, outcome.decision_id))
                    raise InvalidEvent("expired_decision", f"decision {outcome.decision_id!r} was routed more than "
                                                           f"{ttl:g} s ago (routing.pending_ttl_s): too late to learn from")
            except InvalidEvent as exc:
                send_dead_letter(rt.sink, dead_letters, msg, exc.code, exc.message)
                continue
            if pending is not None:
                routed[tenant].append((event, outcome, pending))
            if outcome.label is not None:
                labelled[tenant].append((event, outcome.decision_id, known[1], outcome.label))
        metrics.EVENTS.labels(source_name).inc(len(events))
        audit = apply_outcomes(rt, routers, routed, expired)  # no await before it: see app/wiring/feedback.py
        for partition, items in audit.items():
            await append_audit(rt, partition, items)
        await rt.sink.flush()
        for tenant, samples in labelled.items():
            with event_context(samples[-1][0]):
                calibration[tenant] = _refit(tenant, calibration.get(tenant), samples, rt)

    attach_hot(app, rt, source_name, "outcomes", handle, lifecycle=lifecycle)


def _refit(tenant: str, entry: dict | None, samples, rt: Runtime) -> dict:
    entry = dict(entry or {"samples": {}, "fits": 0, "since_fit": 0, "model": None})
    kept = dict(entry["samples"])
    for _, decision_id, raw, label in samples:
        kept.pop(decision_id, None)
        kept[decision_id] = [raw, label]
    while len(kept) > MAX_SAMPLES:
        kept.pop(next(iter(kept)))
    entry["samples"] = kept
    entry["since_fit"] += len(samples)
    if entry["since_fit"] >= REFIT_EVERY or entry["model"] is None:
        adapter = CalibrationAdapter(min_samples=rt.trust.calibration_min_samples)
        scores = [v[0] for v in kept.values()]
        labels = [bool(v[1]) for v in kept.values()]
        report = adapter.fit(scores, labels, method=rt.trust.calibration_method)
        metrics.CALIBRATION_FITS.labels("fitted" if report.fitted else "refused").inc()
        if report.fitted:
            entry.update(model=adapter.to_dict(), fits=entry["fits"] + 1, since_fit=0)
            log.info("calibration fitted", extra={"tenant": tenant, "n": report.n})
        else:
            log.debug("calibration not fitted", extra={"tenant": tenant, "reason": report.reason})
    return entry
