"""The outcomes core without a broker: `plan_outcomes` over dict-backed state."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest

from resontinex.agents.effects import Effects
from resontinex.agents.gate import router_value
from resontinex.agents.outcomes import (MAX_SAMPLES, OUTCOME_LIMIT, REFIT_EVERY, Known, OutcomeBatch, OutcomesConfig,
                                        plan_outcomes)
from resontinex.agents.router import RouterState, decide, decision_rng, routing_config_from
from resontinex.agents.trust import CalibrationAdapter, default_config
from resontinex.schemas import Alert

from tests.agents.gate.views import Rec
from tests.agents.router._support import CONTEXT, offer

NOW = 1_700_000_000.0
TOPIC = "outcomes"


@dataclass
class Views:
    """`OutcomesView` over dicts: (partition, decision id) → `Known`; tenant → stored values."""

    decisions: dict[tuple[int, str], Known] = field(default_factory=dict)
    routers: dict[str, dict[str, Any]] = field(default_factory=dict)
    calibrations: dict[str, dict[str, Any]] = field(default_factory=dict)

    def decision(self, partition: int, decision_id: str) -> Known | None:
        return self.decisions.get((partition, decision_id))

    def router_value(self, tenant: str) -> dict[str, Any] | None:
        return self.routers.get(tenant)

    def calibration(self, tenant: str) -> dict[str, Any] | None:
        return self.calibrations.get(tenant)


def cfg(**routing: Any) -> OutcomesConfig:
    return OutcomesConfig(default_config(), routing_config_from(routing), "pv-1", 1_000_000)


def pending(decision_id: str, routing: OutcomesConfig, at: float = NOW - 10) -> dict[str, Any]:
    _, route = decide(RouterState.fresh(routing.routing), context=CONTEXT, providers=[offer("akash")],
                      constraints=None, psi=None, rng=decision_rng(0, decision_id))
    p = route.pending(decision_id, at)
    assert p is not None
    return p.to_dict()


def outcome(decision_id: str, offset: int = 0, tenant: str = "acme", partition: int = 0, **fields: Any) -> Rec:
    body = {"event_id": f"o-{offset}", "tenant": tenant, "decision_id": decision_id, "success": True,
            "actual_cost_usd": 1.0, "actual_latency_ms": 100.0, "actual_reputation": 90.0} | fields
    return Rec(TOPIC, partition, offset, tenant.encode(), orjson.dumps(body), NOW - 1)


def plan(records: list[Rec], view: Views, config: OutcomesConfig | None = None, now: float = NOW) -> Effects:
    return plan_outcomes(OutcomeBatch(records, now), view, config or cfg())


def counts(effects: Effects) -> dict[tuple[str, tuple[str, ...]], float]:
    return {(c.metric, c.labels): c.amount for c in effects.counts}


def dead_letter_codes(effects: Effects) -> list[str]:
    return [orjson.loads(o.value)["error"]["code"] for o in effects.outputs if o.topic == "dead_letters"]


def routed_view(config: OutcomesConfig, *ids: str) -> Views:
    return Views({(0, d): Known("acme", 0.8, pending(d, config)) for d in ids})


def test_an_unknown_decision_a_foreign_tenant_and_a_bad_record_are_dead_letters() -> None:
    view = Views({(0, "d-1"): Known("other", 0.5, None)})
    bad = Rec(TOPIC, 0, 2, b"acme", b"{not json", NOW)
    e = plan([outcome("d-0", 0), outcome("d-1", 1), bad], view)
    assert dead_letter_codes(e) == ["unknown_decision", "unknown_decision", "not_json"]
    assert not e.early_writes and not e.late_writes and not e.audit
    assert counts(e)[("EVENTS", (TOPIC,))] == 3


def test_a_routed_outcome_teaches_the_router_once_in_an_early_write() -> None:
    config = cfg()
    view = routed_view(config, "d-1")
    before = copy.deepcopy(view)
    e = plan([outcome("d-1", 0), outcome("d-1", 1)], view, config)  # redelivered within the batch
    assert view == before  # read, never changed
    (write,) = e.early_writes
    assert (write.table, write.key, write.partition) == ("router-state", "acme", 0)
    assert write.value["applied"] == ["d-1"]
    assert RouterState.from_dict(write.value["state"], config.routing).stats.outcomes == 1
    assert counts(e)[("DUPLICATES", (TOPIC,))] == 1
    (reward,) = e.observations
    assert reward.metric == "ROUTER_REWARDS" and reward.labels == ("akash",) and len(reward.values) == 1
    # the next batch finds the id among the applied ones, however the worker stopped
    view.routers["acme"] = write.value
    again = plan([outcome("d-1", 2)], view, config)
    assert counts(again)[("DUPLICATES", (TOPIC,))] == 1
    assert again.early_writes[0].value == write.value


def test_router_imports_are_kept_and_an_unreadable_state_is_replaced_and_counted() -> None:
    config = cfg()
    view = routed_view(config, "d-1")
    view.routers["acme"] = {"state": {"policy": "nonsense"}, "applied": ["d-0"], "imports": ["imp-1"]}
    e = plan([outcome("d-1")], view, config)
    assert e.early_writes[0].value["applied"] == ["d-0", "d-1"] and e.early_writes[0].value["imports"] == ["imp-1"]
    assert counts(e)[("ERRORS", ("router_state",))] == 1


def test_a_late_outcome_expires_its_route_once_and_is_a_dead_letter() -> None:
    config = cfg(pending_ttl_s=60)
    view = Views({(0, "d-1"): Known("acme", 0.8, pending("d-1", config, at=NOW - 61))})
    e = plan([outcome("d-1", 0), outcome("d-1", 1)], view, config)
    assert dead_letter_codes(e) == ["expired_decision", "expired_decision"]
    assert counts(e)[("ROUTER_EXPIRED", ())] == 2
    state = RouterState.from_dict(e.early_writes[0].value["state"], config.routing)
    assert (state.stats.expired, state.stats.outcomes) == (1, 0)
    assert e.early_writes[0].value["applied"] == ["d-1"]


@pytest.mark.parametrize("field_name", ["actual_cost_usd", "actual_latency_ms"])
def test_figures_that_would_overflow_the_router_are_refused_only_for_routed_decisions(field_name: str) -> None:
    config = cfg()
    view = routed_view(config, "d-1")
    view.decisions[(0, "d-2")] = Known("acme", 0.8, None)
    e = plan([outcome("d-1", 0, **{field_name: OUTCOME_LIMIT * 2}),
              outcome("d-2", 1, **{field_name: OUTCOME_LIMIT * 2})], view, config)
    assert dead_letter_codes(e) == ["out_of_range"]
    assert not e.early_writes


def test_routing_anomalies_are_alerts_sent_and_audited() -> None:
    config = cfg(anomaly={"success_rate_window": 2, "success_rate_min": 0.6})
    view = routed_view(config, "d-1", "d-2")
    e = plan([outcome("d-1", 0, success=False), outcome("d-2", 1, success=False)], view, config)
    alerts = [orjson.loads(o.value) for o in e.outputs if o.topic == "alerts"]
    assert [a["details"]["anomaly"] for a in alerts] == ["success_rate"]
    Alert.model_validate(alerts[0])
    (item,) = e.audit
    assert item.partition == 0 and item.item["record"] == {"alert": alerts[0]}
    assert item.item["event_id"] == "au-" + alerts[0]["event_id"][2:]
    assert counts(e)[("ALERTS", ("routing_anomaly",))] == 1


def test_labelled_outcomes_become_calibration_samples_written_late() -> None:
    view = Views({(0, f"d-{i}"): Known("acme", i / 60, None) for i in range(60)})
    e = plan([outcome(f"d-{i}", i, label=i >= 30) for i in range(60)], view)
    assert not e.early_writes
    (write,) = e.late_writes
    assert (write.table, write.key) == ("trust-calibration", "acme")
    assert len(write.value["samples"]) == 60 and write.value["fits"] == 1 and write.value["since_fit"] == 0
    assert CalibrationAdapter.from_dict(write.value["model"]).fitted
    assert counts(e)[("CALIBRATION_FITS", ("fitted",))] == 1


def test_a_redelivered_label_replaces_its_sample_and_few_samples_are_refused() -> None:
    view = Views({(0, "d-1"): Known("acme", 0.3, None)})
    first = plan([outcome("d-1", 0, label=True)], view)
    assert counts(first)[("CALIBRATION_FITS", ("refused",))] == 1  # no model yet: tried, too few samples
    view.calibrations["acme"] = first.late_writes[0].value
    second = plan([outcome("d-1", 1, label=False)], view)
    assert second.late_writes[0].value["samples"] == {"d-1": [0.3, False]}


def test_samples_are_capped_and_a_fitted_model_waits_for_refit_every() -> None:
    view = Views({(0, f"d-{i}"): Known("acme", (i % 10) / 10, None) for i in range(MAX_SAMPLES + 10)})
    e = plan([outcome(f"d-{i}", i, label=i % 2 == 0) for i in range(MAX_SAMPLES + 10)], view)
    value = e.late_writes[0].value
    assert len(value["samples"]) == MAX_SAMPLES and "d-0" not in value["samples"]
    view.calibrations["acme"] = value
    few = plan([outcome(f"d-{i}", i, label=True) for i in range(REFIT_EVERY - 1)], view)
    assert ("CALIBRATION_FITS", ("fitted",)) not in counts(few)
    assert few.late_writes[0].value["since_fit"] == REFIT_EVERY - 1
