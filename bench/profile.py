"""Where a variant's CPU goes: py-spy samples of the worker while it drains a backlog.

    .venv/bin/pip install py-spy        # a measuring tool only; not a project dependency
    python -m bench.profile [a|b|c] [-n 60000] [--rate 200] [--out bench/results/profile-a-<ts>]

Starts a fresh embedded broker, the variant's worker ((a) `app.cli worker`, (b)
`bench.naive_app`, (c) `bench.forward_app forward`), waits until it is ready, attaches
`py-spy record --gil --format raw` (samples of the thread holding the GIL, i.e. Python
CPU), preloads N requests and stops sampling when N outputs arrived. Writes the
collapsed stacks (`<out>.txt`, open with speedscope or flamegraph.pl) and a breakdown by
component (`<out>.json`), and prints it. Sampling slows the worker a little
(py-spy pauses it for each sample unless --nonblocking): read shares, not rates.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable

from .run import (FORWARD_TOPIC, RESULTS, Procs, _gone, _session, _spawn, collect, log, preload, requests)

# (component, substrings of a frame "function (file:line)"), in priority order: a sample
# counts for the first component that any frame of its stack matches. So time in
# pydantic under schemas/ is decode, aiokafka's producer under Faust's `Topic.send` is
# the per-event send, a table write's changelog send is the table, and Faust/aiokafka/
# asyncio only get what no project code above them explains.
COMPONENTS: list[tuple[str, tuple[str, ...]]] = [
    ("audit sealing (RFC 8785 + SHA-256)", ("agents/audit/", "rfc8785")),
    ("decode + validate (schemas, pydantic)", ("schemas/", "pydantic")),
    ("trust scoring (agents/trust)", ("agents/trust/",)),
    ("Faust tables / RocksDB (incl. changelog send)", ("faust/tables/", "faust/stores/", "rocksdict")),
    ("Faust per-event send (Topic.send → producer)", ("Channel.send (", "Topic.send (", "publish_message (",
                                                      "Producer.send (", "ProducerBuffer.flush")),
    ("batched output (app/engine/sink.py)", ("app/engine/sink.py",)),
    ("metrics (prometheus_client)", ("prometheus_client", "app/metrics.py")),
    ("partition state / continuity", ("app/engine/continuity.py", "app/engine/partition_state.py", "app/engine/recent.py",
                                      "app/engine/audit_tail.py")),
    ("decision assembly (+ orjson.dumps)", ("_decide (", "agents/gate/_decide.py", "_decision (bench/naive_app.py")),
    ("budget and routing parts", ("agents/gate/_budgeting.py", "agents/gate/_routing.py", "agents/router/")),
    ("gate plan, other lines", ("agents/gate/_plan.py", "agents/effects.py")),
    ("applier (app/engine)", ("app/engine/",)),
    ("gate shell, other lines", ("app/wiring/gate.py",)),
    ("aiokafka client (fetch, records, protocol)", ("aiokafka/",)),
    ("Faust stream + consumer machinery", ("faust/", "mode/")),
    ("asyncio event loop", ("asyncio/", "uvloop", "selectors")),
]
OTHER = "other"


def parse_collapsed(lines: Iterable[str]) -> Counter[tuple[str, ...]]:
    """py-spy raw output (`frame;frame;... count`) → stack tuple → samples."""
    out: Counter[tuple[str, ...]] = Counter()
    for line in lines:
        line = line.rstrip("\n")
        if not line:
            continue
        stack, _, count = line.rpartition(" ")
        try:
            out[tuple(stack.split(";"))] += int(count)
        except ValueError:
            continue
    return out


def component(stack: tuple[str, ...]) -> str:
    for name, needles in COMPONENTS:
        if any(n in frame for frame in stack for n in needles):
            return name
    return OTHER


def breakdown(stacks: Counter[tuple[str, ...]]) -> dict[str, Any]:
    total = sum(stacks.values())
    by: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    for stack, n in stacks.items():
        by[component(stack)] += n
        leaf[stack[-1] if stack else "?"] += n
    share = {k: round(v / total, 4) for k, v in by.most_common()} if total else {}
    return {"samples": total, "share": share,
            "top_leaf_frames": [[f, round(n / total, 4)] for f, n in leaf.most_common(25)] if total else []}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.split("\n\n")[0])
    ap.add_argument("variant", nargs="?", default="a", choices=("a", "b", "c"))
    ap.add_argument("-n", type=int, default=60_000)
    ap.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        print("py-spy not found: .venv/bin/pip install py-spy", file=sys.stderr)
        return 2
    out = args.out or RESULTS / f"profile-{args.variant}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    out.parent.mkdir(parents=True, exist_ok=True)
    items = requests(args.n)
    with _session(f"profile-{args.variant}", [FORWARD_TOPIC] if args.variant == "c" else []) as (broker, tmp, procs):
        log_path = tmp / "worker.log"
        if args.variant == "a":
            from tests.integration.harness import start_worker

            worker = start_worker(broker.bootstrap, tmp / "w0")
            procs.append(worker.proc)
            worker.wait_ready(90)
            proc, log_path, topic = worker.proc, worker.log_path, "decisions"
        else:
            module = ["-m", "bench.naive_app"] if args.variant == "b" else ["-m", "bench.forward_app", "forward"]
            tail = [FORWARD_TOPIC] if args.variant == "c" else []
            proc = _spawn([*module, broker.bootstrap, str(tmp), *tail], log_path)
            procs.append(proc)
            time.sleep(10)  # no web port: give the consumer group time to form
            topic = "decisions" if args.variant == "b" else FORWARD_TOPIC
        raw = out.with_suffix(".txt")
        spy = subprocess.Popen([py_spy, "record", "--pid", str(proc.pid), "--gil", "--format", "raw",
                                "--rate", str(args.rate), "-o", str(raw)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        time.sleep(1.0)
        log(f"profile ({args.variant}): py-spy attached to pid {proc.pid}; preloading {args.n:,} requests")

        async def go() -> dict[str, Any]:
            task = asyncio.create_task(collect(broker.bootstrap, topic, args.n, timeout_s=60 + args.n / 200,
                                               label=f"profile ({args.variant})", procs=Procs({}), warmup=1,
                                               alive=_gone([(proc, log_path)])))
            await preload(broker.bootstrap, items)
            return await task

        t0 = time.monotonic()
        got = asyncio.run(go())
        wall = time.monotonic() - t0
        spy.send_signal(signal.SIGINT)
        try:
            _, err = spy.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            spy.kill()
            _, err = spy.communicate()
    if not raw.exists():
        print(f"py-spy wrote nothing: {err.decode(errors='replace')[-2000:]}", file=sys.stderr)
        return 1
    report = {"variant": args.variant, "n": args.n, "outputs": len(got["stamps"]), "wall_s": round(wall, 2),
              "rate_hz": args.rate, **breakdown(parse_collapsed(raw.read_text().splitlines()))}
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"({args.variant}) {report['samples']:,} GIL-holding samples over {wall:.1f}s; share of Python CPU:")
    for name, share in report["share"].items():
        print(f"  {share * 100:5.1f} %  {name}")
    print("top leaf frames:")
    for frame, share in report["top_leaf_frames"][:12]:
        print(f"  {share * 100:5.1f} %  {frame}")
    print(f"\nwritten: {raw} and {out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
