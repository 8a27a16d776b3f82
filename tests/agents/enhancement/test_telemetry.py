"""The telemetry core: a batch of `telemetry` records folded into per-source and per-arm
windows, and the partials it sends an enhancement's monitor (CONTRACT §3.5)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import orjson
import pytest

from resontinex.agents.effects import Effects, TableWrite
from resontinex.agents.enhancement import (ARMS_TABLE, FEED_TELEMETRY, POOLS_TABLE, SERIES_TABLE, SOURCES_TABLE, STATE_TABLE, EnhancementConfig,
                                           TelemetryPlan, WindowStats, enhancement_config_from, fold, plan_feed,
                                           plan_telemetry, window_start)
from resontinex.schemas import DeadLetter, ms_to_ts
from resontinex.topics import partition_of

from tests.agents.enhancement.test_plan import EID, TENANT, FakeView, Rec, as_records, bodies, counts, ctx, outputs, \
    submit

T = 1_700_000_000.0
P = 4
SRC, SRC2 = "gpu-1", "gpu-2"  # on partitions 2 and 1
CFG = enhancement_config_from({
    "telemetry": {"window": "PT1S", "grace": "PT0.1S", "keep": "PT60S", "sample_size": 4},
    "canary": {"interval": "PT1S", "sample_size": 50},
})
TOPIC = "telemetry"


def at(t: float) -> str:
    return ms_to_ts(round(t * 1000))


def tel(offset: int, metrics: dict[str, float], *, t: float | None = T + 0.25, source: str = SRC,
        key: str | None = None, partition: int | None = None, timestamp: float = T, event_id: str | None = None,
        **fields: Any) -> Rec:
    body: dict[str, Any] = {"event_id": event_id or f"t-{source}-{offset}", "source": source, "metrics": metrics}
    if t is not None:
        body["ts"] = at(t)
    body |= fields
    return Rec(TOPIC, partition_of(source, P) if partition is None else partition, offset,
               (key or source).encode(), orjson.dumps(body), timestamp)


def plan(view: FakeView, records: list[Rec], now: float = T + 0.5, cfg: EnhancementConfig = CFG) -> TelemetryPlan:
    result = plan_telemetry(records, view, cfg, partitions=P, now=now, max_message_bytes=1 << 20)
    for letter in bodies(result.effects, "dead_letters"):
        DeadLetter.model_validate(letter)
    assert not result.effects.early_writes and not result.effects.audit
    return result


def folded(view: FakeView, records: list[Rec], now: float = T + 0.5, cfg: EnhancementConfig = CFG) -> Effects:
    result = plan(view, records, now, cfg)
    return view.apply(result.effects)


def writes(effects: Effects, table: str) -> dict[tuple[str, float], TableWrite]:
    found = [w for w in effects.late_writes if w.table == table]
    by = {(w.key, w.at): w for w in found}
    assert len(by) == len(found), "one write per key and window"
    return by


def partials(effects: Effects) -> list[dict[str, Any]]:
    return bodies(effects, "enhancement_feed")


def assert_stats(d: dict[str, Any], values: list[float]) -> None:
    """A written `WindowStats` against numpy's figures over `values`."""
    st = WindowStats.from_dict(d)
    x = np.asarray(values, dtype=np.float64)
    assert st.count == len(x)
    assert st.mean == pytest.approx(float(x.mean()), rel=1e-12)
    assert st.variance == pytest.approx(float(x.var(ddof=1)) if len(x) > 1 else 0.0, rel=1e-9, abs=1e-15)
    assert (st.min, st.max) == (float(x.min()), float(x.max()))
    assert set(st.values) <= set(values)


def test_records_fold_per_source_and_window_on_the_records_partition() -> None:
    view = FakeView()
    recs = [tel(10, {"latency": 100.0, "quality_score": 0.9}, t=T + 0.1),
            tel(11, {"latency": 130.0}, t=T + 0.6),
            tel(12, {"latency": 90.0, "quality_score": 0.7}, t=T + 1.2),  # the next window
            tel(3, {"latency": 7.0}, t=T + 0.3, source=SRC2)]
    result = plan(view, recs, now=T + 1.0)
    w = writes(result.effects, SOURCES_TABLE)
    assert set(w) == {(SRC, T), (SRC, T + 1), (SRC2, T)}
    first, second, other = w[(SRC, T)], w[(SRC, T + 1)], w[(SRC2, T)]
    assert (first.partition, second.partition, other.partition) == (partition_of(SRC, P), partition_of(SRC, P),
                                                                    partition_of(SRC2, P))
    assert (first.value["upto"], second.value["upto"], other.value["upto"]) == (12, 13, 4)
    assert_stats(first.value["metrics"]["latency"], [100.0, 130.0])
    assert_stats(first.value["metrics"]["quality_score"], [0.9])
    assert_stats(second.value["metrics"]["latency"], [90.0])
    assert_stats(other.value["metrics"]["latency"], [7.0])
    assert not result.effects.outputs and not writes(result.effects, ARMS_TABLE)
    assert result.folded == 4
    assert counts(result.effects) == {("EVENTS", TOPIC): 4, ("TELEMETRY_FOLDED",): 4}


def test_a_large_batch_has_numpys_statistics_and_a_bounded_sample() -> None:
    view = FakeView()
    rng = np.random.default_rng(7)
    values = [float(v) for v in rng.normal(200, 30, 150)]
    effects = folded(view, [tel(i, {"latency": v}) for i, v in enumerate(values)])
    [w] = writes(effects, SOURCES_TABLE).values()
    assert_stats(w.value["metrics"]["latency"], values)
    assert len(w.value["metrics"]["latency"]["s"]) == CFG.telemetry.sample_size
    assert WindowStats.from_dict(w.value["metrics"]["latency"]) == fold(
        [f"t-{SRC}-{i}" for i in range(150)], values, CFG.telemetry.sample_size)


def test_an_enhancements_records_fold_per_arm_and_become_partials() -> None:
    view = FakeView()
    p = partition_of(SRC, P)
    recs = [tel(20, {"quality_score": 0.9}, enhancement_id=EID, arm="enhancement"),
            tel(21, {"quality_score": 0.8}, enhancement_id=EID),  # no arm: the enhancement's
            tel(22, {"quality_score": 0.95}, enhancement_id=EID, arm="baseline"),
            tel(23, {"quality_score": 0.85}, enhancement_id=EID, arm="enhancement", t=T + 1.1),
            tel(24, {"quality_score": 0.5})]  # not an enhancement's: its source only
    result = plan(view, recs, now=T + 1.0)
    arms = writes(result.effects, ARMS_TABLE)
    assert set(arms) == {(f"{EID}/enhancement", T), (f"{EID}/baseline", T), (f"{EID}/enhancement", T + 1)}
    assert all(w.partition == p for w in arms.values())
    assert_stats(arms[(f"{EID}/enhancement", T)].value["metrics"]["quality_score"], [0.9, 0.8])
    assert arms[(f"{EID}/enhancement", T)].value["upto"] == 22
    assert_stats(arms[(f"{EID}/baseline", T)].value["metrics"]["quality_score"], [0.95])
    assert_stats(writes(result.effects, SOURCES_TABLE)[(SRC, T)].value["metrics"]["quality_score"],
                 [0.9, 0.8, 0.95, 0.5])

    sent = outputs(result.effects, "enhancement_feed")
    assert {(o.partition, o.key) for o in sent} == {(partition_of(EID, P), EID.encode())}
    got = {(d["arm"], d["window_start"]): d for d in partials(result.effects)}
    assert set(got) == {("enhancement", T), ("baseline", T), ("enhancement", T + 1)}
    assert all(d["type"] == FEED_TELEMETRY and d["enhancement_id"] == EID for d in got.values())
    assert_stats(got[("enhancement", T)]["metrics"]["quality_score"], [0.9, 0.8])
    assert_stats(got[("enhancement", T + 1)]["metrics"]["quality_score"], [0.85])
    assert {k: (d["source"], d["upto"]) for k, d in got.items()} == {
        ("enhancement", T): (p, 22), ("baseline", T): (p, 23), ("enhancement", T + 1): (p, 24)}
    assert sorted(v for _, v in got[("enhancement", T)]["samples"]["quality_score"]) == [0.8, 0.9]
    assert all(not st["s"] for d in got.values() for st in d["metrics"].values())  # the sample travels apart
    assert result.folded == 5


def test_one_enhancements_records_from_two_partitions_send_a_partial_each() -> None:
    view = FakeView()
    recs = [tel(5, {"quality_score": 0.9}, enhancement_id=EID), tel(5, {"quality_score": 0.7}, source=SRC2,
                                                                    enhancement_id=EID)]
    effects = folded(view, recs)
    arms = [w for w in effects.late_writes if w.table == ARMS_TABLE]
    assert sorted(w.partition for w in arms) == sorted([partition_of(SRC, P), partition_of(SRC2, P)])
    sent = partials(effects)
    assert len(sent) == 2 and {d["source"] for d in sent} == {partition_of(SRC, P), partition_of(SRC2, P)}
    assert {o.partition for o in outputs(effects, "enhancement_feed")} == {partition_of(EID, P)}


def test_a_partial_reaches_the_enhancements_series_through_the_directory() -> None:
    view = FakeView()
    submit(view, canary_share=0.2)
    effects = folded(view, [tel(i, {"quality_score": 0.9 - i / 100}, enhancement_id=EID) for i in range(3)])
    routed = view.apply(plan_feed(as_records(outputs(effects, "enhancement_feed")), view, ctx(T + 0.5)))
    [forward] = outputs(routed, "enhancement_feed")
    assert (forward.partition, forward.key) == (partition_of(TENANT, P), TENANT.encode())
    merged = view.apply(plan_feed(as_records([forward]), view, ctx(T + 0.5)))
    # the windows, the canary's pools (stored apart), the record (when its first window closes)
    assert sorted(w.table for w in merged.late_writes) == sorted([SERIES_TABLE, POOLS_TABLE, STATE_TABLE])
    s = view.series(EID)
    assert s is not None
    assert_stats(s.pooled("enhancement")["quality_score"].as_dict(), [0.9, 0.89, 0.88])


def test_a_redelivered_batch_folds_once() -> None:
    view = FakeView()
    recs = [tel(i, {"latency": float(100 + i)}, enhancement_id=EID) for i in range(30, 34)]
    first = folded(view, recs)
    assert len(partials(first)) == 1
    before = dict(view.windows)
    again = plan(view, recs)
    assert not again.effects.late_writes and not again.effects.outputs
    assert again.folded == 0
    assert counts(again.effects) == {("EVENTS", TOPIC): 4}
    view.apply(again.effects)
    assert view.windows == before


def test_a_batch_overlapping_the_last_folds_only_the_new_records() -> None:
    view = FakeView()
    values = [100.0, 110.0, 120.0, 130.0, 140.0]
    folded(view, [tel(40 + i, {"latency": v}, enhancement_id=EID) for i, v in enumerate(values[:3])])
    effects = folded(view, [tel(40 + i, {"latency": v}, enhancement_id=EID) for i, v in enumerate(values)])
    source = writes(effects, SOURCES_TABLE)[(SRC, T)]
    assert source.value["upto"] == 45
    assert_stats(source.value["metrics"]["latency"], values)  # the stored three and the new two
    [p] = partials(effects)
    assert (p["source"], p["upto"]) == (partition_of(SRC, P), 45)
    assert_stats(p["metrics"]["latency"], values)  # a partial holds the window so far...
    assert sorted(v for _, v in p["samples"]["latency"]) == values[3:]  # ...and this batch's sample


def test_metrics_of_a_window_missing_from_the_batch_are_kept() -> None:
    view = FakeView()
    folded(view, [tel(1, {"latency": 100.0, "error_rate": 0.02}), tel(2, {"latency": 120.0, "error_rate": 0.04})])
    stored = view.window(SOURCES_TABLE, SRC, partition_of(SRC, P), T)
    assert stored is not None
    effects = folded(view, [tel(3, {"latency": 140.0, "quality_score": 0.9})])
    value = writes(effects, SOURCES_TABLE)[(SRC, T)].value
    assert set(value["metrics"]) == {"latency", "error_rate", "quality_score"}
    assert value["metrics"]["error_rate"] == stored["metrics"]["error_rate"]
    assert_stats(value["metrics"]["latency"], [100.0, 120.0, 140.0])
    assert_stats(value["metrics"]["quality_score"], [0.9])
    assert value["upto"] == 4


def test_a_key_other_than_the_source_is_a_dead_letter() -> None:
    view = FakeView()
    rec = tel(7, {"latency": 1.0}, key=SRC2)
    result = plan(view, [rec, tel(8, {"latency": 2.0})])
    [letter] = outputs(result.effects, "dead_letters")
    body = orjson.loads(letter.value)
    assert (body["error"]["code"], body["offset"], letter.partition, letter.key) == (
        "key_mismatch", 7, rec.partition, SRC2.encode())
    assert result.folded == 1
    assert_stats(writes(result.effects, SOURCES_TABLE)[(SRC, T)].value["metrics"]["latency"], [2.0])
    assert counts(result.effects)[("DEAD_LETTERS", TOPIC, "key_mismatch")] == 1


def test_an_arm_without_an_enhancement_is_a_dead_letter() -> None:
    view = FakeView()
    result = plan(view, [tel(1, {"latency": 1.0}, arm="baseline")])
    [letter] = bodies(result.effects, "dead_letters")
    assert letter["error"]["code"] == "missing_field"
    assert not result.effects.late_writes and result.folded == 0


@pytest.mark.parametrize("value", [b"{nope", b'{"event_id": "x", "source": "gpu-1", "metrics": {"a": "high"}}',
                                   b'{"event_id": "x", "source": "gpu-1"}', b""])
def test_an_undecodable_record_is_a_dead_letter_and_the_batch_goes_on(value: bytes) -> None:
    view = FakeView()
    bad = Rec(TOPIC, partition_of(SRC, P), 1, SRC.encode(), value, T)
    result = plan(view, [bad, tel(2, {"latency": 5.0})])
    assert len(bodies(result.effects, "dead_letters")) == 1
    assert result.folded == 1 and writes(result.effects, SOURCES_TABLE)[(SRC, T)].value["upto"] == 3


@pytest.mark.parametrize(("t", "ok"), [
    (T - 60.0, True),  # exactly `keep` back
    (T - 60.5, False),
    (T + 1.0, True),  # exactly one window ahead
    (T + 1.5, False),
])
def test_a_record_older_than_keep_or_more_than_a_window_ahead_is_out_of_window(t: float, ok: bool) -> None:
    view = FakeView()
    result = plan(view, [tel(1, {"latency": 5.0}, t=t)], now=T)
    if ok:
        [w] = result.effects.late_writes
        assert (w.at, w.value["upto"]) == (window_start(t, 1.0), 2)
    else:
        assert [d["error"]["code"] for d in bodies(result.effects, "dead_letters")] == ["out_of_window"]
        assert not result.effects.late_writes and result.folded == 0


def test_a_record_without_ts_takes_its_records_timestamp() -> None:
    view = FakeView()
    effects = folded(view, [tel(1, {"latency": 5.0}, t=None, timestamp=T + 1.5),
                            tel(2, {"latency": 6.0}, t=None, timestamp=T - 100.0)], now=T + 1.0)
    [w] = effects.late_writes
    assert (w.key, w.at) == (SRC, T + 1)
    assert [d["error"]["code"] for d in bodies(effects, "dead_letters")] == ["out_of_window"]


def test_the_same_event_twice_in_a_batch_counts_twice_but_samples_once() -> None:
    """Count and mean cannot tell a repeat (the offsets make a batch fold once, not an event);
    the bottom-k sample keeps one entry per event id."""
    view = FakeView()
    effects = folded(view, [tel(1, {"latency": 5.0}, event_id="same"), tel(2, {"latency": 5.0}, event_id="same")])
    st = WindowStats.from_dict(writes(effects, SOURCES_TABLE)[(SRC, T)].value["metrics"]["latency"])
    assert (st.count, len(st.sample)) == (2, 1)


def test_the_windows_follow_the_configured_length() -> None:
    cfg = replace(CFG, telemetry=replace(CFG.telemetry, window_s=10.0))
    view = FakeView(window_s=10.0)
    effects = folded(view, [tel(1, {"latency": 5.0}, t=T + 3), tel(2, {"latency": 7.0}, t=T + 9.9)], now=T + 5,
                     cfg=cfg)
    [w] = effects.late_writes
    assert (w.at, w.value["upto"]) == (T, 3)
    assert_stats(w.value["metrics"]["latency"], [5.0, 7.0])
