"""(b) The naive per-event Faust agent doing the gate's work one event at a time.

`async for event in stream.events()`: decode and validate the request
(`schemas.decode`), score it with the scalar `evaluate_values`, update a per-tenant
counter table (one Faust table write, hence one changelog message, per event), build
the decision (same fields and reasons as the gate), `await decisions.send(...)`, seal
the audit record onto the partition's hash chain (head kept in memory) and
`await audit.send(...)`; a trust-floor violation also sends an alert and its audit record. One `send` per
message: Faust's normal way.

Run: `python -m bench.naive_app BOOTSTRAP DATADIR` (stop it with SIGTERM).
"""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

import orjson

from resontinex.agents.audit import ChainHead, seal
from resontinex.agents.gate._decide import decision_id, floor_alert, trust_reasons
from resontinex.agents.trust import default_config, evaluate_values, policy_version
from resontinex.schemas import DecisionRequest, decode

from ._faust import bench_app, raw_topic, run_worker, source_topic

APP_ID = "bench-naive"


def build(bootstrap: str, datadir: Path):
    app = bench_app(APP_ID, bootstrap, datadir)
    cfg = default_config()
    pv = policy_version(cfg)
    source = source_topic(app)
    decisions, alerts, audit = (raw_topic(app, n) for n in ("decisions", "alerts", "audit"))
    counts = app.Table("bench-naive-tenant-counts", default=int, partitions=source.partitions)
    heads: dict[int, ChainHead] = {}

    @app.agent(source, name="naive")
    async def naive(stream):
        async for event in stream.events():
            msg = event.message
            request = decode(DecisionRequest, msg.value)
            s = request.signals
            res = evaluate_values(s.alignment_score, s.epistemic_risk, s.confidence_band, cfg)
            tenant = request.tenant
            counts[tenant] += 1
            decision = _decision(request, res, msg.timestamp, cfg, pv)
            await decisions.send(key=msg.key, value=orjson.dumps(decision), partition=msg.partition)
            alert = floor_alert(decision, cfg.trust_floor) if res.floor_violation else None
            if alert is not None:
                await alerts.send(key=msg.key, value=orjson.dumps(alert), partition=msg.partition)
            record, heads[msg.partition] = seal(
                heads.get(msg.partition) or ChainHead.genesis(),
                event_id="au-" + decision["event_id"][2:], kind="decision", tenant=tenant,
                ts=decision["ts"], policy_version=pv,
                record={"request": orjson.loads(msg.value), "decision": decision,
                        "source": {"topic": msg.topic, "partition": msg.partition, "offset": msg.offset}},
            )
            await audit.send(key=msg.key, value=orjson.dumps(record), partition=msg.partition)
            if alert is not None:
                record, heads[msg.partition] = seal(
                    heads[msg.partition], event_id="au-" + alert["event_id"][2:], kind="alert",
                    tenant=tenant, ts=alert["ts"], policy_version=pv, record={"alert": alert},
                )
                await audit.send(key=msg.key, value=orjson.dumps(record), partition=msg.partition)

    return app


def _decision(request: DecisionRequest, res, timestamp_s: float, cfg, pv: str) -> dict:
    """The decision event, with the gate's fields and reasons."""
    tenant, s = request.tenant, request.signals
    return {
        "event_id": decision_id(tenant, request.event_id),
        "schema_version": 1,
        "request_id": request.event_id,
        "tenant": tenant,
        "workflow": request.workflow,
        "ts": request.ts or _iso(timestamp_s),
        "verb": res.decision,
        "reasons": trust_reasons(res.tier, res.tier_decision, res.score, res.floor_violation,
                                 res.entropy_flag, cfg.trust_floor, cfg.entropy_threshold, s.confidence_band),
        "policy_version": pv,
        "trust": {**res.as_dict(), "decision": res.tier_decision},
        "budget": None, "route": None, "overlay": None,
    }


def _iso(timestamp_s: float) -> str:
    return datetime.fromtimestamp(timestamp_s, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        raise SystemExit("usage: python -m bench.naive_app BOOTSTRAP DATADIR")
    run_worker(build(argv[0], Path(argv[1])))


if __name__ == "__main__":
    main(sys.argv[1:])
