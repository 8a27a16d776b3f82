"""The enhancement agent's cores: submissions, the feed, operator commands and the tick.

The rules themselves (preflight, monitor, canary judge, lifecycle) have their own tests;
these check the plans: which events, alerts, audit items, dead letters and table writes
a batch gives, on which partitions, and what the next plan makes of the state they leave.

`FakeView` is the worker's tables as dicts. It *applies* an `Effects`' writes (through a
JSON round trip, as the real tables store them), so a test chains plans: submit → feed →
tick → command, each reading what the one before wrote.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import orjson
import pytest

from resontinex.agents.effects import Effects, Output, TableWrite, auditable, dead_letter_id
from resontinex.agents.enhancement import (ARMS_TABLE, DIRECTORY_TABLE, FEED_ROUTED, FEED_SUBMISSION, FEED_TELEMETRY,
                                           INDEX_TABLE, POOLS_TABLE, SERIES_TABLE, SOURCES_TABLE, STATE_TABLE, Awaiting, Context,
                                           Enhancement, EnhancementConfig, EnhancementSeries, enhancement_config_from,
                                           fold, plan_command, plan_feed, plan_submissions, plan_tick, window_start)
from resontinex.agents.events import derived_id
from resontinex.schemas import Alert, Control, DeadLetter, EnhancementEvent, ms_to_ts
from resontinex.topics import partition_of

T = 1_700_000_000.0
P = 4
TENANT, OTHER = "acme", "globex"
EID, EID2 = "enh-2", "enh-3"
CFG = enhancement_config_from({
    "telemetry": {"window": "PT1S", "grace": "PT0.1S", "keep": "PT60S"},
    "monitor": {"cooldown": {"critical": "PT10S", "consecutive": "PT5S", "canary_failed": "PT7S"}},
    "canary": {"interval": "PT1S"},
})
CRITICAL_S, CONSECUTIVE_S, CANARY_FAILED_S = 10.0, 5.0, 7.0
PASSING = {"mandatory": 1.0, "proxy": 0.8, "alpha": 0.96, "sigma": 0.1, "governance": 0.9}


def test_the_partitions_used_here_tell_tenant_enhancement_and_record_apart() -> None:
    """The assertions on partitions below mean something only if these differ."""
    assert len({partition_of(TENANT, P), partition_of(EID, P), partition_of(EID2, P), partition_of(OTHER, P)}) == 4


# --- the shell's stand-ins


@dataclass(frozen=True, slots=True)
class Rec:
    """An input record as a core reads it (`resontinex.agents.effects.Record`)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: float


def _json(value: Any) -> Any:
    return orjson.loads(orjson.dumps(value))


@dataclass
class FakeView:
    """`EnhancementView` and `TelemetryView` over dicts, holding what `apply` wrote.

    Plain tables are keyed by key (a worker reads its own partitions); the windowed tables
    (`telemetry-sources`, `telemetry-arms`) by (table, key, partition, window start).
    """

    window_s: float = CFG.telemetry.window_s
    tables: dict[str, dict[str, Any]] = field(default_factory=lambda: {
        t: {} for t in (STATE_TABLE, SERIES_TABLE, POOLS_TABLE, INDEX_TABLE, DIRECTORY_TABLE)})
    windows: dict[tuple[str, str, int, float], Any] = field(default_factory=dict)

    # EnhancementView
    def enhancement(self, enhancement_id: str) -> Enhancement | None:
        d = self.tables[STATE_TABLE].get(enhancement_id)
        return Enhancement.from_dict(d) if d else None

    def series(self, enhancement_id: str, *, pools: bool | None = None) -> EnhancementSeries | None:
        """As the plan asks (`pools`), or everything for a test's own look (None)."""
        d = self.tables[SERIES_TABLE].get(enhancement_id)
        stored = self.tables[POOLS_TABLE].get(enhancement_id) if pools is not False else None
        return EnhancementSeries.from_dict(d, pools=stored) if d else None

    def tenant_enhancements(self, tenant: str) -> list[str]:
        return list(self.tables[INDEX_TABLE].get(tenant) or [])

    def directory(self, enhancement_id: str) -> dict[str, Any] | None:
        value: dict[str, Any] | None = self.tables[DIRECTORY_TABLE].get(enhancement_id)
        return value

    # TelemetryView
    def window(self, table: str, key: str, partition: int, start: float) -> dict[str, Any] | None:
        value: dict[str, Any] | None = self.windows.get((table, key, partition, window_start(start, self.window_s)))
        return value

    # the applier's part: the writes (outputs and audit items are the test's to read)
    def apply(self, effects: Effects) -> Effects:
        for w in (*effects.early_writes, *effects.late_writes):
            value = _json(w.value)  # what a table keeps is JSON: tuples come back as lists
            if w.table in (SOURCES_TABLE, ARMS_TABLE):
                at = (w.table, w.key, w.partition, window_start(w.at, self.window_s))
                if w.delete:
                    self.windows.pop(at, None)
                else:
                    self.windows[at] = value
            elif w.delete:
                self.tables[w.table].pop(w.key, None)
            else:
                self.tables[w.table][w.key] = value
        return effects

    def state(self, enhancement_id: str = EID) -> Enhancement:
        e = self.enhancement(enhancement_id)
        assert e is not None, f"no record of {enhancement_id}"
        return e

    def store(self, e: Enhancement) -> None:
        """A record as the state table would hold it (and its tenant's index)."""
        self.tables[STATE_TABLE][e.enhancement_id] = _json(e.as_dict())
        ids = self.tables[INDEX_TABLE].setdefault(e.tenant, [])
        if e.enhancement_id not in ids:
            ids.append(e.enhancement_id)


# --- reading effects


def outputs(effects: Effects, topic: str) -> list[Output]:
    return [o for o in effects.outputs if o.topic == topic]


def bodies(effects: Effects, topic: str) -> list[dict[str, Any]]:
    return [orjson.loads(o.value) for o in outputs(effects, topic)]


def events(effects: Effects) -> list[dict[str, Any]]:
    return bodies(effects, "enhancement_events")


def moves(effects: Effects) -> list[tuple[str | None, str, str]]:
    """(from, to, reason code) of each event."""
    return [(e["from_state"], e["to_state"], e["reason"]["code"]) for e in events(effects)]


def alerts(effects: Effects) -> list[dict[str, Any]]:
    return bodies(effects, "alerts")


def dead_letters(effects: Effects) -> list[dict[str, Any]]:
    return bodies(effects, "dead_letters")


def codes(effects: Effects) -> list[str]:
    return [d["error"]["code"] for d in dead_letters(effects)]


def counts(effects: Effects) -> dict[tuple[str, ...], float]:
    return {(c.metric, *c.labels): c.amount for c in effects.counts}


def writes(effects: Effects, table: str) -> dict[str, TableWrite]:
    found = [w for w in effects.late_writes if w.table == table]
    assert len({w.key for w in found}) == len(found), f"{table} written twice for one key"
    return {w.key: w for w in found}


def well_formed(effects: Effects) -> Effects:
    """Every output parses as its topic's event; every audit item can be sealed."""
    for body in events(effects):
        EnhancementEvent.model_validate(body)
    for body in alerts(effects):
        Alert.model_validate(body)
    for body in dead_letters(effects):
        DeadLetter.model_validate(body)
    assert all(auditable(a.item) for a in effects.audit)
    assert not effects.early_writes
    return effects


# --- inputs


def ctx(now: float = T, cfg: EnhancementConfig = CFG) -> Context:
    return Context(cfg, partitions=P, policy_version="pv", now=now, installed={"numpy": "2.1.0"}.get)


def submission(enhancement_id: str = EID, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "event_id": f"sub-{enhancement_id}", "enhancement_id": enhancement_id, "tenant": TENANT, "kind": "model",
        "description": "switch to the new model", "payload": {"model": "claude-x"}, "requirements": ["numpy>=2"],
        "thresholds": PASSING, "canary_share": 1.0, "mode": "automatic"}
    return body | fields


def sub_record(body: dict[str, Any] | bytes, *, key: bytes | None = None, partition: int | None = None,
               offset: int = 0) -> Rec:
    value = body if isinstance(body, bytes) else orjson.dumps(body)
    eid = EID if isinstance(body, bytes) else str(body.get("enhancement_id", EID))
    return Rec("enhancements", partition_of(eid, P) if partition is None else partition, offset,
               eid.encode() if key is None else key, value, T)


def as_records(sent: Iterable[Output], topic: str = "enhancement_feed", offset: int = 0) -> list[Rec]:
    """Outputs as the records their consumer reads."""
    return [Rec(topic, o.partition, offset + i, o.key, o.value, T) for i, o in enumerate(sent)]


def feed(view: FakeView, items: Sequence[dict[str, Any]], now: float = T, cfg: EnhancementConfig = CFG) -> Effects:
    recs = [Rec("enhancement_feed", 0, i, b"k", orjson.dumps(item), T) for i, item in enumerate(items)]
    return view.apply(well_formed(plan_feed(recs, view, ctx(now, cfg))))


def submit(view: FakeView, now: float = T, cfg: EnhancementConfig = CFG, **fields: Any) -> Effects:
    """A submission through `plan_submissions` and, on its tenant's partition, `plan_feed`."""
    sent = view.apply(well_formed(plan_submissions([sub_record(submission(**fields))], view, ctx(now, cfg))))
    assert codes(sent) == []
    return view.apply(well_formed(plan_feed(as_records(outputs(sent, "enhancement_feed")), view, ctx(now, cfg))))


def tick(view: FakeView, now: float, cfg: EnhancementConfig = CFG, tenants: Sequence[str] = (TENANT,)) -> Effects:
    return view.apply(well_formed(plan_tick(tenants, view, ctx(now, cfg))))


def control(action: str, enhancement_id: str | None = EID, *, event_id: str = "cmd-1", tenant: str = TENANT,
            operator_id: str = "op-7", reason: str = "looked at it") -> tuple[Rec, Control]:
    body = {"event_id": event_id, "tenant": tenant, "action": action, "operator_id": operator_id, "reason": reason,
            "enhancement_id": enhancement_id}
    rec = Rec("control", partition_of(tenant, P), 5, tenant.encode(), orjson.dumps(body), T)
    return rec, Control.model_validate(body)


def command(view: FakeView, action: str, now: float, enhancement_id: str | None = EID, **kw: Any) -> Effects:
    rec, cmd = control(action, enhancement_id, **kw)
    return view.apply(well_formed(plan_command(rec, cmd, view, ctx(now))))


def partial(start: float, values: Sequence[float], *, arm: str = "enhancement", enhancement_id: str = EID,
            metric: str = "quality_score", source: int = 0, upto: int | None = None, routed: bool = True,
            k: int = CFG.canary.sample_size) -> dict[str, Any]:
    """A telemetry partial (as `plan_telemetry` sends it), routed to the tenant or not yet:
    `values` are the window's so far on partition `source` (and the batch's, for its sample),
    reaching offset `upto` (default: one past the last value's)."""
    ids = [f"{enhancement_id}/{arm}/{start}/{source}/{i}" for i in range(len(values))]
    window = fold(ids, list(values), k)
    item: dict[str, Any] = {
        "type": FEED_ROUTED if routed else FEED_TELEMETRY, "enhancement_id": enhancement_id, "arm": arm,
        "window_start": start, "source": source, "upto": len(values) if upto is None else upto,
        "metrics": {metric: window.unsampled().as_dict()}, "samples": {metric: [list(e) for e in window.sample]}}
    if routed:
        item["tenant"] = TENANT
    return item


def windows(view: FakeView, first: float, means: Sequence[float], cfg: EnhancementConfig = CFG) -> None:
    """One routed partial per window from `first` on, the i-th with mean `means[i]`."""
    items = [partial(first + i, [m, m]) for i, m in enumerate(means)]
    effects = feed(view, items, now=first, cfg=cfg)
    assert counts(effects).get(("ENHANCEMENT_TELEMETRY_DROPPED", "not_active")) is None


def closes(start: float) -> float:
    """A time at which the window starting at `start` is closed (past its end and grace)."""
    return start + CFG.telemetry.window_s + CFG.telemetry.grace_s + 0.4


def active(view: FakeView, now: float = T, cfg: EnhancementConfig = CFG, **fields: Any) -> Enhancement:
    submit(view, now, cfg, **fields)
    e = view.state(fields.get("enhancement_id", EID))
    assert e.state == "active"
    return e


# === plan_submissions


def test_a_valid_submission_is_forwarded_to_its_tenants_partition_then_entered_in_the_directory() -> None:
    """The forward is an output, the directory entry a *late* write on the record's own
    partition: the applier sends outputs before late writes, so a crash in between sends the
    forward again on redelivery (no entry stops it) and the tenant's partition, which has the
    enhancement by then, drops the repeat. The other order could lose the submission: an
    entry written, the forward never sent, the redelivery dropped as a duplicate."""
    view = FakeView()
    body = submission()
    effects = well_formed(plan_submissions([sub_record(body, partition=3, offset=9)], view, ctx()))
    [out] = effects.outputs
    assert (out.topic, out.partition, out.key) == ("enhancement_feed", partition_of(TENANT, P), TENANT.encode())
    item = orjson.loads(out.value)
    assert (item["type"], item["event_id"], item["received_at"]) == (FEED_SUBMISSION, body["event_id"], T)
    assert {k: item["submission"][k] for k in body} == body
    assert effects.late_writes == (TableWrite(DIRECTORY_TABLE, EID, {"tenant": TENANT, "event_id": body["event_id"]},
                                              3),)
    assert not effects.early_writes and not effects.audit
    assert counts(effects) == {("EVENTS", "enhancements"): 1}


def test_a_key_other_than_the_enhancement_id_is_a_dead_letter() -> None:
    view = FakeView()
    rec = sub_record(submission(), key=EID2.encode(), offset=4)
    effects = well_formed(plan_submissions([rec], view, ctx()))
    [letter] = outputs(effects, "dead_letters")
    body = orjson.loads(letter.value)
    assert body["error"]["code"] == "key_mismatch"
    assert (letter.partition, letter.key, body["offset"], body["event_id"]) == (rec.partition, EID2.encode(), 4,
                                                                                dead_letter_id(rec))
    assert len(effects.outputs) == 1 and not effects.late_writes
    assert counts(effects)[("DEAD_LETTERS", "enhancements", "key_mismatch")] == 1


@pytest.mark.parametrize(("value", "code"), [
    (b"{not json", "not_json"),
    (orjson.dumps({k: v for k, v in submission().items() if k != "tenant"}), "missing_field"),
    (orjson.dumps({k: v for k, v in submission().items() if k != "thresholds"}), "missing_field"),
    (orjson.dumps(submission(mode="sometimes")), "invalid_value"),
    (b"", "empty_value"),
])
def test_an_undecodable_or_incomplete_submission_is_a_dead_letter(value: bytes, code: str) -> None:
    view = FakeView()
    effects = well_formed(plan_submissions([sub_record(value)], view, ctx()))
    [letter] = dead_letters(effects)
    assert letter["error"]["code"] == code
    assert not outputs(effects, "enhancement_feed") and not effects.late_writes


def test_a_bad_record_does_not_stop_the_rest_of_the_batch() -> None:
    view = FakeView()
    recs = [sub_record(b"{"), sub_record(submission(EID2), offset=1)]
    effects = well_formed(plan_submissions(recs, view, ctx()))
    assert len(dead_letters(effects)) == 1 and len(outputs(effects, "enhancement_feed")) == 1
    assert list(writes(effects, DIRECTORY_TABLE)) == [EID2]


def test_a_repeated_submission_is_dropped_in_the_batch_and_once_the_directory_has_it() -> None:
    view = FakeView()
    recs = [sub_record(submission(), offset=0), sub_record(submission(), offset=1)]
    effects = view.apply(well_formed(plan_submissions(recs, view, ctx())))
    assert len(outputs(effects, "enhancement_feed")) == 1 and len(effects.late_writes) == 1
    assert counts(effects)[("DUPLICATES", "enhancements")] == 1 and not dead_letters(effects)

    again = well_formed(plan_submissions([sub_record(submission(), offset=2)], view, ctx()))
    assert not again.outputs and not again.late_writes
    assert counts(again) == {("EVENTS", "enhancements"): 1, ("DUPLICATES", "enhancements"): 1}


def test_another_submission_under_a_taken_id_is_a_dead_letter() -> None:
    view = FakeView()
    recs = [sub_record(submission(), offset=0), sub_record(submission(event_id="sub-other"), offset=1)]
    effects = view.apply(well_formed(plan_submissions(recs, view, ctx())))
    assert codes(effects) == ["enhancement_exists"] and len(outputs(effects, "enhancement_feed")) == 1
    assert view.directory(EID) == {"tenant": TENANT, "event_id": f"sub-{EID}"}

    later = well_formed(plan_submissions([sub_record(submission(event_id="sub-v2", tenant=OTHER), offset=2)], view,
                                         ctx()))
    assert codes(later) == ["enhancement_exists"] and not later.late_writes
    assert counts(later)[("DEAD_LETTERS", "enhancements", "enhancement_exists")] == 1


# === plan_feed: submissions


def assert_on_the_wire(effects: Effects, tenant: str = TENANT) -> None:
    """Each event on `enhancement_events` by its enhancement, audited on its tenant's partition."""
    sent = outputs(effects, "enhancement_events")
    for o in sent:
        event = orjson.loads(o.value)
        assert (o.partition, o.key) == (partition_of(event["enhancement_id"], P), event["enhancement_id"].encode())
    audited = [a for a in effects.audit if a.item["kind"] == "state_change"]
    assert [a.item["record"]["enhancement_event"] for a in audited] == [orjson.loads(o.value) for o in sent]
    for a in audited:
        event = a.item["record"]["enhancement_event"]
        assert a.partition == partition_of(tenant, P)
        assert (a.item["event_id"], a.item["tenant"], a.item["ts"], a.item["policy_version"]) == (
            "au-" + event["event_id"], tenant, event["ts"], "pv")
    for o in outputs(effects, "alerts"):
        assert (o.partition, o.key) == (partition_of(tenant, P), tenant.encode())
    alerted = [a.item["record"]["alert"] for a in effects.audit if a.item["kind"] == "alert"]
    assert alerted == alerts(effects)
    assert all(a.partition == partition_of(tenant, P) for a in effects.audit)


@pytest.mark.parametrize(("share", "phase", "traffic"), [(1.0, "full", 1.0), (0.2, "canary", 0.2)])
def test_an_automatic_submission_that_passes_preflight_goes_active(share: float, phase: str, traffic: float) -> None:
    view = FakeView()
    effects = submit(view, canary_share=share)
    assert moves(effects) == [(None, "pending", "submitted"), ("pending", "validated", "preflight_passed"),
                              ("validated", "active", "activated")]
    pending, validated, activated = events(effects)
    assert pending["evidence"]["submission_event_id"] == f"sub-{EID}"
    assert pending["evidence"]["submission"]["payload"] == submission()["payload"]  # the audit holds what was governed
    assert {c: validated["evidence"][c]["passed"] for c in ("schema", "requirements", "thresholds")} == dict.fromkeys(
        ("schema", "requirements", "thresholds"), True)
    assert (activated["phase"], activated["share"]) == (phase, traffic)
    assert activated["evidence"]["preflight_score"] == pytest.approx(validated["evidence"]["thresholds"]["score"])
    assert [e["phase"] for e in (pending, validated)] == [None, None]
    assert len({e["event_id"] for e in events(effects)}) == 3
    assert_on_the_wire(effects)
    assert len(effects.audit) == 3 and not alerts(effects)
    c = counts(effects)
    assert [c[("ENHANCEMENT_TRANSITIONS", s)] for s in ("pending", "validated", "active")] == [1, 1, 1]

    state = writes(effects, STATE_TABLE)[EID]
    assert state.partition == partition_of(TENANT, P)
    e = view.state()
    assert (e.state, e.phase, e.share, e.activated_at, e.transitions, e.awaiting) == ("active", phase, traffic, T, 3,
                                                                                      None)
    assert e.preflight is not None and e.preflight["requirements"]["passed"] is True
    assert writes(effects, SERIES_TABLE)[EID].partition == partition_of(TENANT, P)
    assert view.series(EID) == EnhancementSeries.start(T)
    assert writes(effects, INDEX_TABLE)[TENANT].value == [EID]


def test_a_failing_preflight_rejects_with_every_checks_evidence_and_a_warning() -> None:
    view = FakeView()
    effects = submit(view, payload={"model": 3}, requirements=["numpy<2"],
                     thresholds=PASSING | {"mandatory": 0.5})
    assert moves(effects) == [(None, "pending", "submitted"), ("pending", "rejected", "preflight_failed")]
    evidence = events(effects)[1]["evidence"]
    assert {name: check["passed"] for name, check in evidence.items()} == {
        "schema": False, "requirements": False, "thresholds": False}
    assert evidence["schema"]["errors"][0]["path"] == "model"
    assert evidence["requirements"]["failed"] == ["numpy<2"]
    assert evidence["thresholds"]["critical_failures"] == ["mandatory"]
    [alert] = alerts(effects)
    assert (alert["kind"], alert["severity"], alert["tenant"]) == ("enhancement_rejected", "warning", TENANT)
    assert alert["details"] == {"enhancement_id": EID, "from_state": "pending", "to_state": "rejected",
                                "reason": "preflight_failed"}
    assert alert["source_event_id"] == events(effects)[1]["event_id"]
    assert_on_the_wire(effects)
    assert counts(effects)[("ALERTS", "enhancement_rejected")] == 1
    assert view.state().state == "rejected" and EID not in view.tables[SERIES_TABLE]


def test_one_failing_check_is_enough_to_reject_and_the_passing_ones_are_shown() -> None:
    view = FakeView()
    effects = submit(view, requirements=["numpy>=2", "not-installed-anywhere>=1"])
    assert moves(effects)[-1] == ("pending", "rejected", "preflight_failed")
    evidence = events(effects)[1]["evidence"]
    assert {name: check["passed"] for name, check in evidence.items()} == {
        "schema": True, "requirements": False, "thresholds": True}


def test_semi_automatic_is_validated_then_held_for_approval_with_one_alert() -> None:
    view = FakeView()
    effects = submit(view, mode="semi_automatic")
    assert moves(effects) == [(None, "pending", "submitted"), ("pending", "validated", "preflight_passed")]
    [alert] = alerts(effects)
    assert (alert["kind"], alert["severity"]) == ("enhancement_approval_needed", "info")
    assert alert["details"] == {"enhancement_id": EID, "from_state": "validated", "to_state": "active",
                                "reason": "activated"}
    assert_on_the_wire(effects)
    e = view.state()
    assert e.state == "validated" and e.awaiting is not None
    assert (e.awaiting.to_state, e.awaiting.code) == ("active", "activated")

    later = tick(view, T + 5)  # a tick neither activates nor alerts again
    assert not later.outputs and not later.audit


@pytest.mark.parametrize(("thresholds", "held"), [(PASSING, ("validated", "preflight_passed")),
                                                   (PASSING | {"mandatory": 0.0}, ("rejected", "preflight_failed"))])
def test_manual_stays_pending_and_holds_the_preflights_outcome(thresholds: dict[str, float],
                                                               held: tuple[str, str]) -> None:
    view = FakeView()
    effects = submit(view, mode="manual", thresholds=thresholds)
    assert moves(effects) == [(None, "pending", "submitted")]
    [alert] = alerts(effects)
    assert alert["kind"] == "enhancement_approval_needed"
    assert (alert["details"]["to_state"], alert["details"]["reason"]) == held
    e = view.state()
    assert e.state == "pending" and e.awaiting is not None
    assert (e.awaiting.to_state, e.awaiting.code) == held
    assert set(e.awaiting.evidence) == {"schema", "requirements", "thresholds"}
    assert e.preflight == e.awaiting.evidence
    assert not tick(view, T + 5).outputs


def test_max_concurrent_keeps_a_validated_enhancement_waiting_until_a_slot_frees() -> None:
    cfg = replace(CFG, max_concurrent=1)
    view = FakeView()
    active(view, cfg=cfg)
    second = submit(view, cfg=cfg, enhancement_id=EID2, event_id="sub-2")
    assert moves(second) == [(None, "pending", "submitted"), ("pending", "validated", "preflight_passed")]
    assert view.state(EID2).state == "validated" and view.state(EID2).awaiting is None
    assert view.tables[INDEX_TABLE][TENANT] == [EID, EID2]

    assert not tick(view, T + 1, cfg).outputs  # still no slot
    assert view.state(EID2).state == "validated"

    retired = command(view, "enhancement_retire", T + 2)
    assert moves(retired) == [("active", "retired", "retired")]
    freed = tick(view, T + 3, cfg)
    assert moves(freed) == [("validated", "active", "activated")]
    assert events(freed)[0]["enhancement_id"] == EID2
    assert events(freed)[0]["evidence"] == {"active": 0}
    assert view.state(EID2).activated_at == T + 3
    assert_on_the_wire(freed)


def test_the_same_submission_fed_twice_makes_no_second_set_of_events() -> None:
    view = FakeView()
    sent = plan_submissions([sub_record(submission())], view, ctx())
    forward = as_records(outputs(sent, "enhancement_feed"))
    both = view.apply(well_formed(plan_feed(forward + as_records(outputs(sent, "enhancement_feed"), offset=1),
                                            view, ctx())))
    assert len(events(both)) == 3
    assert counts(both)[("DUPLICATES", "enhancements")] == 1

    again = view.apply(well_formed(plan_feed(forward, view, ctx(T + 1))))
    assert not again.outputs and not again.audit and not again.late_writes
    assert counts(again) == {("DUPLICATES", "enhancements"): 1}
    assert view.tables[INDEX_TABLE][TENANT] == [EID]


def test_the_index_lists_each_tenants_enhancements_in_order() -> None:
    view = FakeView()
    submit(view)
    effects = submit(view, enhancement_id=EID2, event_id="sub-2", mode="manual")
    assert writes(effects, INDEX_TABLE)[TENANT].value == [EID, EID2]
    assert writes(effects, INDEX_TABLE)[TENANT].partition == partition_of(TENANT, P)
    submit(view, enhancement_id="enh-9", event_id="sub-9", tenant=OTHER)
    assert view.tenant_enhancements(TENANT) == [EID, EID2]
    assert view.tenant_enhancements(OTHER) == ["enh-9"]
    assert view.state("enh-9").tenant == OTHER


def test_two_submissions_of_one_tenant_in_one_batch_both_enter_the_index() -> None:
    view = FakeView()
    recs = [sub_record(submission()), sub_record(submission(EID2, event_id="sub-2"), offset=1)]
    sent = view.apply(plan_submissions(recs, view, ctx()))
    effects = view.apply(well_formed(plan_feed(as_records(outputs(sent, "enhancement_feed")), view, ctx())))
    assert writes(effects, INDEX_TABLE)[TENANT].value == [EID, EID2]
    assert {view.state(i).state for i in (EID, EID2)} == {"active"}


# === plan_feed: telemetry


def test_a_partial_with_a_directory_entry_is_routed_to_its_tenant() -> None:
    view = FakeView()
    submit(view)
    item = partial(T, [0.9], routed=False, source=2)
    effects = feed(view, [item])
    [out] = effects.outputs
    assert (out.topic, out.partition, out.key) == ("enhancement_feed", partition_of(TENANT, P), TENANT.encode())
    assert orjson.loads(out.value) == item | {"type": FEED_ROUTED, "tenant": TENANT}
    assert not effects.late_writes and not effects.audit


def test_a_partial_without_a_directory_entry_is_dropped() -> None:
    view = FakeView()
    effects = feed(view, [partial(T, [0.9], routed=False)])
    assert not effects.outputs and not effects.late_writes
    assert counts(effects) == {("ENHANCEMENT_TELEMETRY_DROPPED", "unknown_enhancement"): 1}


def test_a_routed_partial_of_an_active_enhancement_joins_its_series_once() -> None:
    view = FakeView()
    active(view, canary_share=0.2)
    item = partial(T, [0.9, 0.8])
    effects = feed(view, [item], T + 0.5)
    [w] = writes(effects, SERIES_TABLE).values()
    assert (w.key, w.partition) == (EID, partition_of(TENANT, P))
    assert not effects.outputs
    # the record learns when its first window closes (the tick reads no series before then)
    assert view.state().closes_at == T + CFG.telemetry.window_s + CFG.telemetry.grace_s
    s = view.series(EID)
    assert s is not None and s.uptos == {("enhancement", T, 0): 2}
    pooled = s.pooled("enhancement")["quality_score"]
    assert pooled.count == 2 and pooled.mean == pytest.approx(0.85)
    assert s.arms["enhancement"]["quality_score"].open[T][0].sample == ()  # open windows keep means, not samples

    again = feed(view, [item], T + 0.6)
    assert not again.late_writes
    assert counts(again) == {("ENHANCEMENT_TELEMETRY_DROPPED", "repeat_late_or_before_activation"): 1}
    assert view.series(EID) == s


def test_routed_partials_in_one_batch_add_up_and_a_repeat_in_it_is_dropped() -> None:
    view = FakeView()
    active(view)
    a, b = partial(T, [0.9], source=0), partial(T, [0.7], source=1)
    effects = feed(view, [a, b, a], T + 0.5)
    assert len(writes(effects, SERIES_TABLE)) == 1
    assert counts(effects)[("ENHANCEMENT_TELEMETRY_DROPPED", "repeat_late_or_before_activation")] == 1
    s = view.series(EID)
    assert s is not None and s.arms["enhancement"]["quality_score"].window(T).count == 2
    assert s.pooled("enhancement")["quality_score"].count == 0  # no canary: no judge reads a pool


def test_a_batch_redelivered_with_other_boundaries_counts_once() -> None:
    """Offsets 0-1 sent, then (after a crash) 0-2 again as one batch: the second partial
    holds the window so far, replacing the first; an older one arriving late changes nothing."""
    view = FakeView()
    active(view, canary_share=0.2)
    first, again = partial(T, [0.9, 0.8], upto=2), partial(T, [0.9, 0.8, 0.4], upto=3)
    feed(view, [first, again], T + 0.5)
    late = feed(view, [first], T + 0.6)
    assert counts(late) == {("ENHANCEMENT_TELEMETRY_DROPPED", "repeat_late_or_before_activation"): 1}
    s = view.series(EID)
    assert s is not None
    window = s.arms["enhancement"]["quality_score"].window(T)
    assert window.count == 3 and window.mean == pytest.approx(0.7)
    assert s.pooled("enhancement")["quality_score"].count == 3  # the samples' union, each value once


def test_a_partial_of_the_old_layout_is_dropped_and_counted() -> None:
    view = FakeView()
    active(view)
    old = {k: v for k, v in partial(T, [0.9]).items() if k not in ("source", "upto", "samples")} | {"partial_id": "x"}
    effects = feed(view, [old, partial(T, [0.7])], T + 0.5)
    assert counts(effects)[("ENHANCEMENT_TELEMETRY_DROPPED", "old_layout")] == 1
    s = view.series(EID)
    assert s is not None and s.arms["enhancement"]["quality_score"].window(T).count == 1


@pytest.mark.parametrize("mode", ["semi_automatic", "manual"])
def test_a_routed_partial_of_an_enhancement_not_active_is_dropped(mode: str) -> None:
    view = FakeView()
    submit(view, mode=mode)
    effects = feed(view, [partial(T, [0.9])])
    assert not effects.late_writes and not effects.outputs
    assert counts(effects) == {("ENHANCEMENT_TELEMETRY_DROPPED", "not_active"): 1}
    unknown = feed(view, [partial(T, [0.9], enhancement_id="enh-404")])
    assert counts(unknown) == {("ENHANCEMENT_TELEMETRY_DROPPED", "not_active"): 1}


def test_a_partial_older_than_the_activation_is_dropped() -> None:
    view = FakeView()
    active(view, now=T + 5)
    effects = feed(view, [partial(T + 4, [0.9])], T + 6)
    assert not effects.late_writes
    assert counts(effects) == {("ENHANCEMENT_TELEMETRY_DROPPED", "repeat_late_or_before_activation"): 1}


# === plan_tick: the monitor


def test_healthy_windows_make_no_transition() -> None:
    view = FakeView()
    active(view)
    windows(view, T, [0.9, 0.91, 0.9, 0.92, 0.9, 0.91])
    for i in range(6):
        effects = tick(view, closes(T + i))
        assert not effects.outputs and not effects.audit
        assert STATE_TABLE in {w.table for w in effects.late_writes}  # monitored up to the new window
    e = view.state()
    assert (e.state, e.consecutive, e.monitored_upto) == ("active", 0, T + 5)
    s = view.series(EID)
    assert s is not None and s.means("enhancement")["quality_score"] == pytest.approx([0.9, 0.91, 0.9, 0.92, 0.9,
                                                                                       0.91])


def test_nothing_is_judged_before_a_window_closes() -> None:
    view = FakeView()
    active(view)
    windows(view, T, [0.9, 0.9, 0.5])
    effects = tick(view, T + 3 + CFG.telemetry.grace_s / 2)  # the last window ended, its grace has not
    assert not effects.outputs
    assert view.state().monitored_upto == T + 1


def test_the_submitted_baseline_judges_performance() -> None:
    view = FakeView()
    active(view, baseline={"response_time_ms": 100.0, "accuracy": 0.9})
    feed(view, [partial(T, [210.0], metric="response_time_ms"), partial(T, [0.8], metric="accuracy", source=1)])
    effects = tick(view, closes(T))
    assert moves(effects)[0] == ("active", "deactivated", "critical_regression")
    [trigger] = events(effects)[0]["evidence"]["triggers"]
    assert (trigger["check"], trigger["severity"]) == ("performance", "critical")
    assert sorted(trigger["regressed"]) == ["accuracy", "response_time_ms"]

    no_baseline = FakeView()
    active(no_baseline)
    feed(no_baseline, [partial(T, [210.0], metric="response_time_ms"),
                       partial(T, [0.8], metric="accuracy", source=1)])
    assert not tick(no_baseline, closes(T)).outputs


def critical(view: FakeView, start: float) -> Effects:
    """Three windows from `start` whose last is below quality's critical floor, and the tick that closes them."""
    windows(view, start, [0.9, 0.9, 0.7])
    return tick(view, closes(start + 2))


def test_a_quality_drop_below_the_critical_floor_deactivates_at_once_then_cools_down() -> None:
    view = FakeView()
    active(view)
    now = closes(T + 2)
    effects = critical(view, T)
    assert moves(effects) == [("active", "deactivated", "critical_regression"),
                              ("deactivated", "cooldown", "critical_regression")]
    deactivated, cooldown = events(effects)
    [trigger] = deactivated["evidence"]["triggers"]
    assert (trigger["check"], trigger["severity"], trigger["last"]) == ("quality", "critical", pytest.approx(0.7))
    assert deactivated["evidence"]["severity"] == "critical"
    assert deactivated["evidence"]["means"]["quality_score"] == pytest.approx([0.9, 0.9, 0.7])
    assert (deactivated["phase"], deactivated["share"], deactivated["deactivations"]) == (None, None, 1)
    assert cooldown["cooldown_until"] == ms_to_ts(round((now + CRITICAL_S) * 1000))
    assert cooldown["evidence"] == {"cooldown_s": CRITICAL_S, "deactivations": 1}
    [alert] = alerts(effects)
    assert (alert["kind"], alert["severity"]) == ("enhancement_deactivated", "critical")
    assert alert["details"]["reason"] == "critical_regression"
    assert alert["source_event_id"] == deactivated["event_id"]
    assert_on_the_wire(effects)
    assert counts(effects)[("ENHANCEMENT_TRIGGERS", "quality", "critical")] == 1
    e = view.state()
    assert (e.state, e.deactivations, e.cooldown_until, e.phase, e.share) == ("cooldown", 1, now + CRITICAL_S, None,
                                                                            None)


def test_after_the_cooldown_it_is_active_again_with_a_fresh_series() -> None:
    view = FakeView()
    active(view)
    critical(view, T)
    until = view.state().cooldown_until
    assert until is not None
    assert not tick(view, until - 0.01).outputs
    effects = tick(view, until)
    assert moves(effects) == [("cooldown", "active", "cooldown_over")]
    assert events(effects)[0]["evidence"] == {"deactivations": 1}
    assert (events(effects)[0]["phase"], events(effects)[0]["share"]) == ("full", 1.0)
    e = view.state()
    assert (e.state, e.activated_at, e.monitored_upto, e.consecutive, e.cooldown_until) == ("active", until, None, 0,
                                                                                            None)
    assert view.series(EID) == EnhancementSeries.start(until)

    stale = feed(view, [partial(T + 1, [0.1])], until + 1)
    assert counts(stale) == {("ENHANCEMENT_TELEMETRY_DROPPED", "repeat_late_or_before_activation"): 1}
    assert not tick(view, until + 5).outputs  # the old windows' critical means no longer count


def test_three_major_rounds_in_a_row_deactivate() -> None:
    view = FakeView()
    active(view)
    means = [1.0, 0.96, 0.92, 0.88, 0.84, 0.80]  # a steady fall of > 10 % over 5 windows, all above .75
    windows(view, T, means)
    seen = []
    for i in range(5):
        assert not tick(view, closes(T + i)).outputs
        seen.append(view.state().consecutive)
    assert seen == [0, 0, 0, 1, 2]
    now = closes(T + 5)
    effects = tick(view, now)
    assert moves(effects) == [("active", "deactivated", "consecutive_violations"),
                              ("deactivated", "cooldown", "consecutive_violations")]
    evidence = events(effects)[0]["evidence"]
    assert (evidence["consecutive"], evidence["severity"]) == (3, "major")
    assert [(t["check"], t["severity"]) for t in evidence["triggers"]] == [("quality", "major")]
    assert evidence["triggers"][0]["relative_drop"] == pytest.approx((0.96 - 0.80) / 0.96)
    [alert] = alerts(effects)
    assert (alert["kind"], alert["severity"]) == ("enhancement_deactivated", "warning")
    e = view.state()
    assert (e.state, e.cooldown_until, e.consecutive) == ("cooldown", now + CONSECUTIVE_S, 0)


def test_a_minor_round_between_major_ones_resets_the_count() -> None:
    cfg = replace(CFG, monitor=replace(CFG.monitor, stability=replace(CFG.monitor.stability, max_sd=0.05)))
    view = FakeView()
    active(view, cfg=cfg)
    means = [1.0, 0.96, 0.92, 0.88, 0.84, 1.0, 0.95, 0.90, 0.85, 0.80]
    windows(view, T, means, cfg)
    seen, triggers = [], []
    for i in range(9):
        effects = tick(view, closes(T + i), cfg)
        assert not effects.outputs
        seen.append(view.state().consecutive)
        triggers.append({k[1:]: n for k, n in counts(effects).items() if k[0] == "ENHANCEMENT_TRIGGERS"})
    assert seen == [0, 0, 0, 1, 2, 0, 0, 1, 2]
    assert triggers[5] == {("stability", "minor"): 1}  # the round that reset the count: minor only
    assert moves(tick(view, closes(T + 9), cfg))[0] == ("active", "deactivated", "consecutive_violations")


def test_each_closed_window_is_evaluated_once() -> None:
    view = FakeView()
    active(view)
    windows(view, T, [1.0, 0.96, 0.92, 0.88, 0.84, 0.80])
    for i in range(4):
        tick(view, closes(T + i))
    assert view.state().consecutive == 1
    for _ in range(3):
        again = tick(view, closes(T + 3))
        assert not again.outputs
        assert not [c for c in again.counts if c.metric == "ENHANCEMENT_TRIGGERS"]
    later = tick(view, closes(T + 3) + 0.3)  # later, but no window closed since
    assert not [c for c in later.counts if c.metric == "ENHANCEMENT_TRIGGERS"]
    assert view.state().consecutive == 1
    tick(view, closes(T + 4))
    assert view.state().consecutive == 2


def test_windows_without_new_enhancement_data_do_not_count_as_more_rounds() -> None:
    view = FakeView()
    active(view, canary_share=0.2)
    windows(view, T, [1.0, 0.96, 0.92, 0.88])  # the fourth window is the first MAJOR round
    feed(view, [partial(T + 4 + i, [0.9], arm="baseline") for i in range(2)])
    for i in range(4):
        tick(view, closes(T + i))
    assert view.state().consecutive == 1
    for i in (4, 5):  # a baseline window closes; the enhancement's means are as they were
        effects = tick(view, closes(T + i))
        assert not events(effects)  # actual: at the second, deactivated with consecutive_violations
        assert view.state().consecutive == 1  # actual: 2, then 3


def test_the_last_allowed_deactivation_disables_for_good() -> None:
    view = FakeView()
    active(view)
    start = T
    for n in range(1, CFG.max_deactivations):
        assert moves(critical(view, start))[-1] == ("deactivated", "cooldown", "critical_regression")
        until = view.state().cooldown_until
        assert until is not None and view.state().deactivations == n
        assert moves(tick(view, until)) == [("cooldown", "active", "cooldown_over")]
        start = float(np.ceil(until))
    effects = critical(view, start)
    assert moves(effects) == [("active", "deactivated", "critical_regression"),
                              ("deactivated", "permanently_disabled", "max_deactivations")]
    assert events(effects)[1]["evidence"] == {"deactivations": CFG.max_deactivations}
    assert events(effects)[1]["deactivations"] == CFG.max_deactivations
    assert [(a["kind"], a["severity"]) for a in alerts(effects)] == [("enhancement_deactivated", "critical"),
                                                                     ("enhancement_disabled", "critical")]
    assert_on_the_wire(effects)
    e = view.state()
    assert (e.state, e.deactivations, e.cooldown_until) == ("permanently_disabled", CFG.max_deactivations, None)
    assert not tick(view, start + 1000).outputs


def test_semi_automatic_holds_the_reactivation_after_a_cooldown() -> None:
    view = FakeView()
    submit(view, mode="semi_automatic")
    assert moves(command(view, "enhancement_approve", T + 0.5)) == [("validated", "active", "activated")]
    start = T + 1
    effects = critical(view, start)
    assert moves(effects)[0] == ("active", "deactivated", "critical_regression")  # deactivations are not held
    until = view.state().cooldown_until
    assert until is not None
    held = tick(view, until)
    assert not events(held)
    [alert] = alerts(held)
    assert (alert["kind"], alert["details"]["to_state"], alert["details"]["reason"]) == (
        "enhancement_approval_needed", "active", "cooldown_over")
    e = view.state()
    assert e.state == "cooldown" and e.awaiting is not None and e.awaiting.to_state == "active"
    assert not tick(view, until + 1).outputs  # alerted once
    approved = command(view, "enhancement_approve", until + 2, event_id="cmd-2")
    assert moves(approved) == [("cooldown", "active", "cooldown_over")]
    assert events(approved)[0]["operator_id"] == "op-7"
    assert view.state().activated_at == until + 2


def test_manual_holds_the_deactivation_until_approved() -> None:
    view = FakeView()
    submit(view, mode="manual")
    first = command(view, "enhancement_approve", T + 0.1)
    assert moves(first) == [("pending", "validated", "preflight_passed")]
    assert alerts(first)[-1]["details"]["to_state"] == "active"  # the activation is held at once
    assert not tick(view, T + 0.2).outputs  # and alerted once
    assert moves(command(view, "enhancement_approve", T + 0.3, event_id="cmd-2")) == [
        ("validated", "active", "activated")]
    start = T + 1
    effects = critical(view, start)
    assert not events(effects)
    [alert] = alerts(effects)
    assert (alert["kind"], alert["details"]["to_state"], alert["details"]["reason"]) == (
        "enhancement_approval_needed", "deactivated", "critical_regression")
    e = view.state()
    assert e.state == "active" and e.awaiting is not None
    assert (e.awaiting.to_state, e.awaiting.code, e.awaiting.cooldown_s) == ("deactivated", "critical_regression",
                                                                             CRITICAL_S)
    assert not tick(view, closes(start + 2) + 5).outputs

    now = T + 20
    approved = command(view, "enhancement_approve", now, event_id="cmd-3")
    assert moves(approved) == [("active", "deactivated", "critical_regression"),
                               ("deactivated", "cooldown", "critical_regression")]
    assert {e["operator_id"] for e in events(approved)} == {"op-7"}
    assert events(approved)[1]["cooldown_until"] == ms_to_ts(round((now + CRITICAL_S) * 1000))
    assert view.state().cooldown_until == now + CRITICAL_S


def test_a_regression_while_a_promotion_awaits_approval_is_held_instead() -> None:
    view = FakeView()
    e = Enhancement.new(EID, TENANT, "model", "manual", now=T, submission=submission(mode="manual",
                                                                                      canary_share=0.2))
    view.store(replace(e, state="active", phase="canary", share=0.2, activated_at=T, judged_at=T, transitions=3))
    view.tables[SERIES_TABLE][EID] = _json(EnhancementSeries.start(T).as_dict())
    feed(view, [partial(T + 10, normal(1, 0.9, 0.02, 80)),
                partial(T + 10, normal(2, 0.9, 0.02, 80), arm="baseline")])
    tick(view, T + 2)
    held = view.state().awaiting
    assert held is not None and held.code == "canary_promoted"

    effects = critical(view, T + 3)  # quality falls below the critical floor
    after = view.state().awaiting
    assert after is not None and (after.to_state, after.code) == ("deactivated", "critical_regression")
    assert [a["details"]["to_state"] for a in alerts(effects)] == ["deactivated"]
    approved = command(view, "enhancement_approve", T + 8)
    assert moves(approved)[0] == ("active", "deactivated", "critical_regression")


# === plan_tick: the canary judge


def canary(view: FakeView, enhancement: Sequence[float], baseline: Sequence[float], *, now: float = T,
           metric: str = "quality_score", **fields: Any) -> None:
    """An active canary (share .2) with both arms' samples in a window that is still open."""
    active(view, now=now, canary_share=0.2, **fields)
    start = now + 10  # open at every tick below: only the judge runs
    feed(view, [partial(start, enhancement, metric=metric),
                partial(start, baseline, arm="baseline", metric=metric)], now)


def normal(seed: int, mean: float, sd: float, n: int) -> list[float]:
    return [float(x) for x in np.random.default_rng(seed).normal(mean, sd, n)]


def test_a_canary_clearly_worse_on_a_critical_metric_is_deactivated() -> None:
    view = FakeView()
    canary(view, normal(1, 0.76, 0.01, 60), normal(2, 0.95, 0.01, 60))
    now = T + 2
    effects = tick(view, now)
    assert moves(effects) == [("active", "deactivated", "canary_failed"), ("deactivated", "cooldown", "canary_failed")]
    evidence = events(effects)[0]["evidence"]
    assert evidence["judgement"]["verdict"] == "fail"
    [quality] = [m for m in evidence["judgement"]["metrics"] if m["name"] == "quality_score"]
    assert (quality["outcome"], quality["failed"], quality["critical"]) == ("low", True, True)
    assert quality["effect"] == pytest.approx(-0.2, abs=0.02)
    assert evidence["samples"] == {"enhancement": {"quality_score": 60}, "baseline": {"quality_score": 60}}
    assert events(effects)[1]["cooldown_until"] == ms_to_ts(round((now + CANARY_FAILED_S) * 1000))
    [alert] = alerts(effects)
    assert (alert["kind"], alert["severity"]) == ("enhancement_deactivated", "warning")
    assert counts(effects)[("ENHANCEMENT_CANARY_JUDGEMENTS", "fail")] == 1
    e = view.state()
    assert (e.state, e.judged_at) == ("cooldown", now) and e.judgement is not None
    assert e.judgement["verdict"] == "fail"


def test_equal_arms_with_enough_samples_promote_the_canary() -> None:
    view = FakeView()
    canary(view, normal(1, 0.9, 0.02, 80), normal(2, 0.9, 0.02, 80))
    effects = tick(view, T + 2)
    assert moves(effects) == [("active", "active", "canary_promoted")]
    [event] = events(effects)
    assert (event["phase"], event["share"]) == ("full", 1.0)
    assert event["evidence"]["judgement"]["verdict"] == "pass"
    assert event["evidence"]["samples"]["baseline"] == {"quality_score": 80}
    assert_on_the_wire(effects)
    assert not alerts(effects)
    e = view.state()
    assert (e.state, e.phase, e.share, e.activated_at) == ("active", "full", 1.0, T)
    assert not tick(view, T + 5).outputs  # a full enhancement is not judged again


def test_the_judge_runs_once_per_interval() -> None:
    view = FakeView()
    canary(view, normal(1, 0.9, 0.02, 30), normal(2, 0.9, 0.02, 30))
    assert not tick(view, T + CFG.canary.interval_s / 2).counts
    assert counts(tick(view, T + 2))[("ENHANCEMENT_CANARY_JUDGEMENTS", "pass")] == 1
    assert not [c for c in tick(view, T + 2.5).counts if c.metric == "ENHANCEMENT_CANARY_JUDGEMENTS"]
    assert counts(tick(view, T + 3))[("ENHANCEMENT_CANARY_JUDGEMENTS", "pass")] == 1


def test_a_tick_runs_at_most_judges_per_tick_and_the_rest_wait_for_the_next() -> None:
    one = replace(CFG, canary=replace(CFG.canary, judges_per_tick=1))
    view = FakeView()
    for eid, event_id in ((EID, "sub-1"), (EID2, "sub-2")):
        active(view, cfg=one, canary_share=0.2, enhancement_id=eid, event_id=event_id)
        feed(view, [partial(T + 10, normal(1, 0.9, 0.02, 30), enhancement_id=eid),
                    partial(T + 10, normal(2, 0.9, 0.02, 30), arm="baseline", enhancement_id=eid)], T, cfg=one)
    first = tick(view, T + 2, one)
    assert counts(first)[("ENHANCEMENT_CANARY_JUDGEMENTS", "pass")] == 1
    assert counts(first)[("ENHANCEMENT_JUDGES_DEFERRED",)] == 1
    assert (view.state(EID).judged_at, view.state(EID2).judged_at) == (T + 2, T)
    second = tick(view, T + 2.5, one)  # EID is not due again yet: EID2's turn
    assert counts(second) == {("ENHANCEMENT_CANARY_JUDGEMENTS", "pass"): 1}
    assert view.state(EID2).judged_at == T + 2.5


@pytest.mark.parametrize(("n", "verdict"), [(10, "insufficient"), (30, "pass")])
def test_too_few_samples_record_the_judgement_and_nothing_else(n: int, verdict: str) -> None:
    view = FakeView()
    canary(view, normal(1, 0.9, 0.02, n), normal(2, 0.9, 0.02, n))
    effects = tick(view, T + 2)
    assert not effects.outputs and not effects.audit
    assert counts(effects) == {("ENHANCEMENT_CANARY_JUDGEMENTS", verdict): 1}
    assert list(writes(effects, STATE_TABLE)) == [EID]
    e = view.state()
    assert (e.state, e.phase, e.share, e.judged_at) == ("active", "canary", 0.2, T + 2)
    assert e.judgement is not None and e.judgement["verdict"] == verdict


def test_a_submissions_own_judge_metrics_replace_the_configs() -> None:
    judge = [{"name": "latency_ms", "direction": "increase", "tolerance": 0.05, "group": "speed", "critical": True}]
    slow, fast = normal(1, 260, 10, 60), normal(2, 200, 10, 60)
    view = FakeView()
    canary(view, slow, fast, metric="latency_ms", judge=judge)
    effects = tick(view, T + 2)
    assert moves(effects)[0] == ("active", "deactivated", "canary_failed")
    [m] = events(effects)[0]["evidence"]["judgement"]["metrics"]
    assert (m["name"], m["group"], m["outcome"], m["failed"]) == ("latency_ms", "speed", "high", True)

    # the config's judge knows no latency_ms: with it the same data is not judged at all
    view = FakeView()
    canary(view, slow, fast, metric="latency_ms")
    effects = tick(view, T + 2)
    assert not effects.outputs
    judgement = view.state().judgement
    assert judgement is not None
    assert [m["name"] for m in judgement["metrics"]] == [m.name for m in CFG.canary.metrics]
    assert judgement["verdict"] == "insufficient"


def test_a_manual_canary_holds_its_promotion() -> None:
    view = FakeView()
    e = Enhancement.new(EID, TENANT, "model", "manual", now=T, submission=submission(mode="manual",
                                                                                      canary_share=0.2))
    view.store(replace(e, state="active", phase="canary", share=0.2, activated_at=T, judged_at=T, transitions=3))
    view.tables[SERIES_TABLE][EID] = _json(EnhancementSeries.start(T).as_dict())
    feed(view, [partial(T + 10, normal(1, 0.9, 0.02, 80)),
                partial(T + 10, normal(2, 0.9, 0.02, 80), arm="baseline")])
    held = tick(view, T + 2)
    assert not events(held)
    assert alerts(held)[0]["details"]["reason"] == "canary_promoted"
    approved = command(view, "enhancement_approve", T + 3)
    assert moves(approved) == [("active", "active", "canary_promoted")]
    assert (events(approved)[0]["phase"], events(approved)[0]["share"]) == ("full", 1.0)
    assert view.state().phase == "full"


# === plan_command


def test_approve_applies_the_held_transition_with_the_operator_and_the_approval() -> None:
    view = FakeView()
    submit(view, mode="semi_automatic")
    rec, cmd = control("enhancement_approve", reason="reviewed the preflight")
    effects = view.apply(well_formed(plan_command(rec, cmd, view, ctx(T + 1))))
    assert moves(effects) == [("validated", "active", "activated")]
    [event] = events(effects)
    assert event["operator_id"] == "op-7"
    assert event["evidence"]["approval"] == {"operator_id": "op-7", "reason": "reviewed the preflight",
                                             "command_event_id": "cmd-1"}
    assert "preflight_score" in event["evidence"]
    assert_on_the_wire(effects)
    e = view.state()
    assert (e.state, e.awaiting, e.commands) == ("active", None, ("cmd-1",))
    assert view.series(EID) == EnhancementSeries.start(T + 1)


def test_an_approved_activation_still_respects_max_concurrent() -> None:
    cfg = replace(CFG, max_concurrent=1)
    view = FakeView()
    active(view, cfg=cfg)
    submit(view, cfg=cfg, enhancement_id=EID2, event_id="sub-2", mode="semi_automatic")
    assert view.state(EID2).awaiting is not None
    rec, cmd = control("enhancement_approve", EID2)
    effects = plan_command(rec, cmd, view, ctx(T + 1, cfg))
    view.apply(effects)
    assert [view.state(i).state for i in (EID, EID2)].count("active") <= cfg.max_concurrent
    assert [d["error"]["code"] for d in bodies(effects, "dead_letters")] == ["invalid_command"]
    assert view.state(EID2).awaiting is not None  # still held: approve again once a slot is free


def test_approving_a_held_rejection_rejects() -> None:
    view = FakeView()
    submit(view, mode="manual", requirements=["numpy<2"])
    effects = command(view, "enhancement_approve", T + 1)
    assert moves(effects) == [("pending", "rejected", "preflight_failed")]
    assert [a["kind"] for a in alerts(effects)] == ["enhancement_rejected"]


STATES = ["pending", "validated", "rejected", "active", "deactivated", "cooldown", "permanently_disabled"]


@pytest.mark.parametrize("state", STATES)
def test_retire_from_any_state_but_retired(state: str) -> None:
    view = FakeView()
    e = Enhancement.new(EID, TENANT, "model", "automatic", now=T, submission=submission())
    view.store(replace(e, state=state, transitions=4, phase="full" if state == "active" else None,
                       share=1.0 if state == "active" else None,
                       awaiting=Awaiting("active", "x", "y") if state == "validated" else None))
    effects = command(view, "enhancement_retire", T + 1, reason="no longer needed")
    assert moves(effects) == [(state, "retired", "retired")]
    [event] = events(effects)
    assert (event["operator_id"], event["phase"], event["share"]) == ("op-7", None, None)
    assert event["reason"]["message"] == "no longer needed"
    assert event["evidence"]["command_event_id"] == "cmd-1"
    assert_on_the_wire(effects)
    after = view.state()
    assert (after.state, after.awaiting, after.commands, after.transitions) == ("retired", None, ("cmd-1",), 5)
    assert not tick(view, T + 100).outputs

    again = command(view, "enhancement_retire", T + 2, event_id="cmd-2")
    assert codes(again) == ["invalid_command"] and not events(again)


@pytest.mark.parametrize(("enhancement_id", "tenant"), [("enh-404", TENANT), (EID, OTHER)])
def test_a_command_for_an_unknown_or_another_tenants_enhancement_is_a_dead_letter(enhancement_id: str,
                                                                                  tenant: str) -> None:
    view = FakeView()
    submit(view, mode="semi_automatic")
    before = view.state()
    for action in ("enhancement_approve", "enhancement_retire"):
        rec, cmd = control(action, enhancement_id, tenant=tenant)
        effects = well_formed(plan_command(rec, cmd, view, ctx(T + 1)))
        [letter] = outputs(effects, "dead_letters")
        assert orjson.loads(letter.value)["error"]["code"] == "invalid_command"
        assert (letter.partition, letter.key) == (rec.partition, tenant.encode())
        assert len(effects.outputs) == 1 and not effects.late_writes and not effects.audit
        assert counts(effects) == {("DEAD_LETTERS", "control", "invalid_command"): 1}
    assert view.state() == before


def test_approve_with_nothing_held_is_a_dead_letter() -> None:
    view = FakeView()
    active(view)
    effects = command(view, "enhancement_approve", T + 1)
    assert codes(effects) == ["invalid_command"]
    assert not events(effects) and not effects.late_writes
    assert view.state().commands == ()


def test_the_same_command_twice_is_applied_once() -> None:
    view = FakeView()
    submit(view, mode="semi_automatic")
    first = command(view, "enhancement_approve", T + 1)
    assert len(events(first)) == 1
    again = command(view, "enhancement_approve", T + 2)
    assert not again.outputs and not again.audit and not again.late_writes
    assert counts(again) == {("DUPLICATES", "control"): 1}
    retire_repeat = command(view, "enhancement_retire", T + 3)  # same event id, another action: still the same command
    assert not retire_repeat.outputs
    assert view.state().state == "active"


def test_the_commands_kept_are_bounded() -> None:
    view = FakeView()
    e = Enhancement.new(EID, TENANT, "model", "automatic", now=T, submission=submission())
    view.store(replace(e, state="validated", commands=tuple(f"old-{i}" for i in range(20)),
                       awaiting=Awaiting("active", "activated", "go")))
    command(view, "enhancement_approve", T + 1, event_id="new")
    commands = view.state().commands
    assert len(commands) == 20 and commands[-1] == "new" and "old-0" not in commands


def test_event_ids_are_derived_from_the_enhancement_and_its_transition_count() -> None:
    """A redelivered batch makes the same transitions under the same ids (consumers dedupe)."""
    first, second = FakeView(), FakeView()
    a, b = submit(first), submit(second)
    assert [e["event_id"] for e in events(a)] == [e["event_id"] for e in events(b)] == [
        derived_id("ee-", EID, str(n), state, code) for n, state, code in (
            (1, "pending", "submitted"), (2, "validated", "preflight_passed"), (3, "active", "activated"))]
    assert a.audit == b.audit
