"""`resontinex audit keygen|verify|replay|reproduce|archive`: the audit topic for auditors.

* `verify` checks every partition's chain (`agents.audit.verify`): hashes, `seq`
  continuity, redelivered duplicates, and each checkpoint's Ed25519 signature with the
  public key. It prints the first bad offset per partition and what is wrong, and exits
  1 on any failure.
* `reproduce` re-runs the trust gate on every recorded decision request, under the
  configuration recorded in the chain's `config` records for its `policy_version` and
  under today's, and reports every score, verb or part of the decision's explanation
  (each signal's contribution, z, tier bounds, the gate's own verb changes) that comes out
  differently (compared bit for bit). A decision's budget and routing parts depend on
  the stream's state at the time (spend so far, the router's learning), so they are not
  re-run.
* `archive` copies records to a JSON Lines file (`app.commands.audit_source`) that `verify`,
  `replay` and `reproduce` read with `--file`, with no Kafka at all. A range is extended
  to the next checkpoint, so its last records are signed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from resontinex.agents.audit import ChainHead, SigningKeyError, VerifyReport, key_id, load_public_key, new_key_pair, verify
from resontinex.agents.gate import most_restrictive
from resontinex.agents.trust import ConfigError, config_from_mapping, evaluate_batch, explain_batch, rejudge

from resontinex.app.commands.audit_replay import flag_instant, parse_instant
from resontinex.app.commands.audit_source import AuditLog, archive_header, archive_line, progress, read_archive, read_kafka
from resontinex.app.exceptions import UsageError
from resontinex.app.runtime import Runtime
from resontinex.app.settings import Settings

PUBLIC_KEY_ENV = "RESONTINEX_AUDIT_PUBLIC_KEY_FILE"
WORST_RISK = 1.0  # what the gate scores a request with no risk at (agents/gate/_plan.py)


def run(args: argparse.Namespace) -> int:
    if args.action == "keygen":
        return _keygen(Path(args.out))
    settings = Settings.from_env(bootstrap=args.bootstrap, config_dir=args.config_dir)
    if args.action == "archive":
        return _archive(args, settings)
    log = read_archive(args.file, quiet=args.quiet) if args.file else \
        read_kafka(settings.bootstrap, settings.topic("audit"), quiet=args.quiet)
    if args.action == "verify":
        return _verify(args, log)
    if args.action == "replay":
        from . import audit_replay

        return audit_replay.run(args, log)
    if args.action == "reproduce":
        return _reproduce(args, log, settings)
    raise UsageError(f"unknown audit action {args.action}")


# ----------------------------------------------------------------------------- keygen

def _keygen(prefix: Path) -> int:
    private, public = new_key_pair()
    key_path, pub_path = prefix.with_name(prefix.name + ".key"), prefix.with_name(prefix.name + ".pub")
    for path in (key_path, pub_path):
        if path.exists():
            raise UsageError(f"{path} exists: refusing to overwrite a key")
    try:
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(private)
        pub_path.write_bytes(public)
    except OSError as exc:
        raise UsageError(f"--out {prefix}: cannot write the key pair: {exc.strerror}") from None
    print(f"private key: {key_path} (mode 600; give it to the workers as RESONTINEX_AUDIT_SIGNING_KEY_FILE)")
    print(f"public key:  {pub_path} (for `audit verify --public-key`)")
    return 0


# ----------------------------------------------------------------------------- verify

def _public_key(args: argparse.Namespace) -> Ed25519PublicKey | None:
    path = args.public_key or os.environ.get(PUBLIC_KEY_ENV)
    if not path:
        return None
    try:
        return load_public_key(path)
    except SigningKeyError as exc:
        raise UsageError(str(exc)) from None


def _start(log: AuditLog, partition: int) -> ChainHead | None:
    """Where an archived range begins (its header says); None: at the chain's start."""
    start = ((log.header or {}).get("partitions") or {}).get(str(partition), {}).get("start")
    return None if not start else ChainHead(int(start["seq_next"]), str(start["hash"]))


def verify_log(log: AuditLog, public_key: Ed25519PublicKey | None, *, quiet: bool = False) -> dict[int, dict[str, Any]]:
    """Each partition's verification, with findings placed at their topic offsets."""
    out: dict[int, dict[str, Any]] = {}
    with progress("verifying", total=len(log), quiet=quiet) as bar:
        for partition, items in sorted(log.partitions.items()):
            offsets = [offset for offset, _ in items]

            def records(items: list[tuple[int, Any]] = items):
                for _, value in items:
                    bar.update(1)
                    yield value

            report = verify(records(), start=_start(log, partition), public_key=public_key,
                            partition=partition if public_key is not None else None)
            bar.update(len(items) - report.records_checked if report.first_error else 0)
            out[partition] = _partition_report(report, offsets)
    return out


def _partition_report(report: VerifyReport, offsets: list[int]) -> dict[str, Any]:
    def at(finding: Any) -> dict[str, Any] | None:
        return None if finding is None else {"offset": offsets[finding.index], "seq": finding.seq,
                                             "kind": finding.kind, "message": finding.message}

    return {"ok": report.ok, "records": len(offsets), "first_error": at(report.first_error),
            "duplicates": report.duplicates, "first_duplicate": at(report.first_duplicate),
            "checkpoints_verified": report.checkpoints_verified,
            "checkpoints_unverified": report.checkpoints_unverified,
            "unsigned_tail": report.unsigned_tail,
            "head": {"seq_next": report.head.seq_next, "hash": report.head.hash}}


def signed_enough(results: dict[int, dict[str, Any]], log: AuditLog, max_unsigned: int) -> None:
    """Fail each partition whose records after its last good checkpoint exceed `max_unsigned`
    (run with a public key: a forger who re-hashes history must strip the checkpoints)."""
    for partition, r in results.items():
        if r["ok"] and r["unsigned_tail"] > max_unsigned:
            offsets = [offset for offset, _ in log.partitions[partition]]
            r["ok"] = False
            r["first_error"] = {"offset": offsets[len(offsets) - r["unsigned_tail"]], "seq": None, "kind": "unsigned",
                                "message": f"{r['unsigned_tail']} records follow the last good checkpoint (more than "
                                           f"--max-unsigned {max_unsigned}): checkpoints missing or removed"}


def archive_gaps(results: dict[int, dict[str, Any]], log: AuditLog) -> None:
    """Fail each partition an archive's header lists with other records than the file holds."""
    for key, meta in ((log.header or {}).get("partitions") or {}).items():
        partition, items = int(key), log.partitions.get(int(key), [])
        held = (len(items), items[0][0] if items else None, items[-1][0] if items else None)
        listed = (meta.get("records", len(items)), meta.get("from_offset"), meta.get("to_offset"))
        if held != listed:
            r = results.setdefault(partition, {"ok": False, "records": len(items), "duplicates": 0,
                                               "first_duplicate": None, "checkpoints_verified": 0,
                                               "checkpoints_unverified": 0, "unsigned_tail": len(items)})
            r["ok"] = False
            r["first_error"] = {"offset": listed[1], "seq": None, "kind": "missing",
                                "message": f"the archive header lists {listed[0]} records at offsets {listed[1]}–"
                                           f"{listed[2]}; the file holds {held[0]} at {held[1]}–{held[2]}"}


def _verify(args: argparse.Namespace, log: AuditLog) -> int:
    public_key = _public_key(args)
    started = time.perf_counter()
    results = verify_log(log, public_key, quiet=args.quiet)
    if public_key is not None:
        checkpoint_every = Settings.from_env(bootstrap=args.bootstrap, config_dir=args.config_dir).checkpoint_every
        signed_enough(results, log, args.max_unsigned if args.max_unsigned is not None else 2 * checkpoint_every)
    archive_gaps(results, log)
    seconds = time.perf_counter() - started
    failed = [p for p, r in results.items() if not r["ok"]]
    if args.output_format == "json":
        print(json.dumps({"ok": not failed, "records": len(log), "seconds": round(seconds, 3),
                          "public_key_id": key_id(public_key) if public_key else None,
                          "partitions": {str(p): r for p, r in results.items()}}, indent=2))
    else:
        for partition, r in results.items():
            print(_line(partition, r))
        rate = len(log) / seconds if seconds > 0 else float("inf")
        print(f"verified {len(log):,} records of {len(results)} partitions in {seconds:.2f} s ({rate:,.0f} records/s)"
              + (f"; {len(failed)} partition(s) FAILED" if failed else "; all intact"))
        if public_key is None and any(r["checkpoints_unverified"] for r in results.values()):
            print(f"note: checkpoint signatures were not checked: give --public-key (or ${PUBLIC_KEY_ENV})",
                  file=sys.stderr)
    return 1 if failed else 0


def _line(partition: int, r: dict[str, Any]) -> str:
    if r["first_error"]:
        e = r["first_error"]
        return f"partition {partition}: FAILED at offset {e['offset']} (seq {e['seq']}): {e['kind']}: {e['message']}"
    parts = [f"{r['records']:,} records"]
    if r["checkpoints_verified"] or r["checkpoints_unverified"]:
        parts.append(f"{r['checkpoints_verified']} checkpoint(s) verified" if r["checkpoints_verified"]
                     else f"{r['checkpoints_unverified']} checkpoint(s) not checked")
    parts.append(f"{r['unsigned_tail']} record(s) after the last good checkpoint")
    if r["duplicates"]:
        d = r["first_duplicate"]
        parts.append(f"{r['duplicates']} redelivered duplicate(s), first at offset {d['offset']}: {d['message']}")
    return f"partition {partition}: ok: " + ", ".join(parts)


# ----------------------------------------------------------------------------- reproduce

TRUST_FIELDS = ("score", "raw_score", "tier", "decision", "floor_violation", "entropy_flag")


def reproduce_decision(record: dict[str, Any], trust_config: Any) -> dict[str, tuple[Any, Any]]:
    """The trust fields and explanation parts that come out differently now: field →
    (recorded, recomputed); see `explanation_differences` for the explanation's."""
    body = record["record"]
    signals, recorded = body["request"].get("signals") or {}, body["decision"]["trust"]
    risk = signals.get("epistemic_risk")
    a, r, c = (np.array([x], dtype=np.float64) for x in (
        signals["alignment_score"], WORST_RISK if risk is None else risk, signals["confidence_band"]))
    result = evaluate_batch(a, r, c, trust_config)
    tier_scores = None
    if trust_config.decide_on == "calibrated" and recorded.get("calibrated_score") is not None:
        # the calibration is the tenant's state, not configuration: its recorded output is an input here
        tier_scores = [round(recorded["calibrated_score"], 4)]
        result = rejudge(result, np.array(tier_scores), trust_config)
    again = {"score": result.score[0].item(), "raw_score": result.raw_score[0].item(),
             "tier": result.tier_names[result.tier[0]], "decision": result.decision_names[result.decision[0]],
             "floor_violation": bool(result.floor_violation[0]), "entropy_flag": bool(result.entropy_flag[0])}
    if risk is None:
        again["decision"] = most_restrictive((again["decision"], "defer"))
    differ = {f: (recorded.get(f), again[f]) for f in TRUST_FIELDS if recorded.get(f) != again[f]}
    was = body.get("explanation")
    if isinstance(was, dict):  # records written before decisions had one have nothing to compare
        differ |= explanation_differences(was, explain_batch(a, r, c, result, trust_config, tier_scores)[0])
    return differ


EXPLAINED = ("signals", "z", "raw_score", "score", "tier_score", "tier", "tier_bounds", "tier_verb")
"""The parts of a decision's explanation that the trust gate alone determines."""
GATE_RULES = frozenset({"entropy_flag", "trust_floor_violation"})
"""The reason codes of the trust gate's own verb changes."""


def explanation_differences(was: dict[str, Any], now: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """The parts of a recorded explanation that differ from the recomputed one, bit for bit:
    `explanation.<part>` → (recorded, recomputed), nested parts compared leaf by leaf
    (`explanation.signals.epistemic_risk.contribution`), and the gate's own verb changes
    (`explanation.verb_changes`: entropy flag, trust floor). The verb changes after the
    gate (missing risk, break-glass, budget, route) depend on the stream and are not re-run.
    """
    differ: dict[str, tuple[Any, Any]] = {}
    for part in EXPLAINED:
        differ |= _leaf_differences(f"explanation.{part}", was.get(part), now[part])
    gate_steps = [step for step in was.get("verb_changes") or () if GATE_RULES & set(step.get("codes") or ())]
    if gate_steps != now["verb_changes"]:
        differ["explanation.verb_changes"] = (gate_steps, now["verb_changes"])
    return differ


def _leaf_differences(name: str, was: Any, now: Any) -> dict[str, tuple[Any, Any]]:
    """`name` → (was, now) for each leaf that differs, nested dicts compared key by key.

    >>> _leaf_differences("e", {"z": 1.0, "s": {"w": 0.5, "l": 2.0}}, {"z": 1.0, "s": {"w": 0.25, "l": 2.0}})
    {'e.s.w': (0.5, 0.25)}
    """
    if isinstance(was, dict) and isinstance(now, dict):
        differ: dict[str, tuple[Any, Any]] = {}
        for key in sorted(was.keys() | now.keys()):
            differ |= _leaf_differences(f"{name}.{key}", was.get(key), now.get(key))
        return differ
    return {} if was == now else {name: (was, now)}


def _reproduce(args: argparse.Namespace, log: AuditLog, settings: Settings) -> int:
    runtime = Runtime.load(settings, client_id="resontinex-audit")
    today = runtime.trust
    configs: dict[str, Any] = {}
    for part in ((log.header or {}).get("partitions") or {}).values():
        for record in part.get("configs") or ():  # recorded before an archived range began
            _learn_config(configs, record)
    differences: list[dict[str, Any]] = []
    decisions = unknown = 0
    with progress("reproducing", total=len(log), quiet=args.quiet) as bar:
        for partition, offset, record in log.records():
            bar.update(1)
            if not isinstance(record, dict):
                continue
            if record.get("kind") == "config":
                _learn_config(configs, record)
                continue
            if record.get("kind") != "decision":
                continue
            decisions += 1
            where = {"partition": partition, "offset": offset, "seq": record.get("seq"),
                     "request_id": (record["record"].get("request") or {}).get("event_id"),
                     "policy_version": record.get("policy_version")}
            recorded_config = configs.get(str(record.get("policy_version")))
            if recorded_config is None:
                unknown += 1
                differences.append({**where, "against": "recorded", "problem": "configuration not in the audit stream"})
            elif diff := reproduce_decision(record, recorded_config):
                differences.append({**where, "against": "recorded", "fields": _jsonable(diff)})
            if diff := reproduce_decision(record, today):
                differences.append({**where, "against": "today", "fields": _jsonable(diff)})
    own = [d for d in differences if d["against"] == "recorded" and "fields" in d]
    changed = [d for d in differences if d["against"] == "today"]
    if args.output_format == "json":
        print(json.dumps({"decisions": decisions, "today_policy_version": runtime.policy_version,
                          "differ_under_recorded_config": len(own), "recorded_config_missing": unknown,
                          "differ_today": len(changed), "differences": differences}, indent=2))
    else:
        for d in differences:
            what = d.get("problem") or ", ".join(f"{k} {a!r} → {b!r}" for k, (a, b) in d["fields"].items())
            print(f"partition {d['partition']} offset {d['offset']} request {d['request_id']} "
                  f"[{'under its own configuration' if d['against'] == 'recorded' else 'today'}]: {what}")
        print(f"{decisions:,} decisions: {len(own)} differ under their recorded configuration, {unknown} have no "
              f"recorded configuration, {len(changed)} would come out differently today")
    return 1 if own or unknown else 0


def _learn_config(configs: dict[str, Any], record: dict[str, Any]) -> None:
    body = record.get("record") or {}
    try:
        configs[str(body.get("policy_version"))] = config_from_mapping(body["configuration"]["trust"])
    except (ConfigError, KeyError, TypeError):
        pass  # an unreadable configuration: its decisions are reported as having none


def _jsonable(diff: dict[str, tuple[Any, Any]]) -> dict[str, list[Any]]:
    return {k: [a, b] for k, (a, b) in diff.items()}


# ----------------------------------------------------------------------------- archive

def _record_time(record: Any) -> datetime | None:
    try:
        return parse_instant(str(record["ts"]))
    except (KeyError, TypeError, ValueError):
        return None


def archive_range(items: list[tuple[int, Any]], since: datetime | None, until: datetime | None) -> tuple[int, int]:
    """[first, end) indices of `items` to archive: from the first record at or after `since`,
    to the last before `until`, then on through the next checkpoint if there is one (else
    the range ends at `until`, unsigned)."""
    first = 0
    if since is not None:
        first = next((i for i, (_, r) in enumerate(items) if (t := _record_time(r)) and t >= since), len(items))
    end = len(items)
    if until is not None:
        cut = next((i for i, (_, r) in enumerate(items) if i >= first and (t := _record_time(r)) and t >= until),
                   len(items))
        end = next((i + 1 for i in range(cut, len(items))
                    if isinstance(items[i][1], dict) and items[i][1].get("kind") == "checkpoint"), cut)
    return first, max(first, end)


def _archive(args: argparse.Namespace, settings: Settings) -> int:
    since, until = flag_instant("--since", args.since), flag_instant("--until", args.until)
    log = read_kafka(settings.bootstrap, settings.topic("audit"), quiet=args.quiet)
    wanted = set(args.partition) if args.partition else set(log.partitions)
    if missing := wanted - set(log.partitions):
        raise UsageError(f"--partition {sorted(missing)}: no records there")
    out = Path(args.out)
    chosen: dict[int, list[tuple[int, Any]]] = {}
    header_parts: dict[str, Any] = {}
    for partition in sorted(wanted):
        items = log.partitions[partition]
        first, end = archive_range(items, since, until)
        chosen[partition] = items[first:end]
        start = None
        if first > 0 and chosen[partition] and isinstance(chosen[partition][0][1], dict):
            head = chosen[partition][0][1]
            start = {"seq_next": head.get("seq"), "hash": head.get("prev_hash")}
        used = {r.get("policy_version") for _, r in chosen[partition] if isinstance(r, dict)}
        configs = {r["record"]["policy_version"]: r for _, r in items[:first]
                   if isinstance(r, dict) and r.get("kind") == "config"
                   and (r.get("record") or {}).get("policy_version") in used}
        header_parts[str(partition)] = {
            "from_offset": chosen[partition][0][0] if chosen[partition] else None,
            "to_offset": chosen[partition][-1][0] if chosen[partition] else None, "records": len(chosen[partition]),
            "start": start, "configs": list(configs.values())}
    header = archive_header(settings.topic("audit"), header_parts, datetime.now(timezone.utc).isoformat())
    written = 0
    try:
        with out.open("wb") as fh, progress(f"writing {out.name}", total=sum(map(len, chosen.values())),
                                            quiet=args.quiet) as bar:
            fh.write(json.dumps(header).encode() + b"\n")
            for partition, items in chosen.items():
                for offset, record in items:
                    fh.write(archive_line(partition, offset, record))
                    written += 1
                    bar.update(1)
    except OSError as exc:
        raise UsageError(f"{out}: cannot write: {exc.strerror}") from None
    print(f"archived {written:,} records of {len(chosen)} partition(s) to {out}")
    return 0
