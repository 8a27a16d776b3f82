"""`resontinex coordination run`: publish one coordination request, wait for its result, print it.

The result is read from the tenant's partition of `coordination-results`, from its end
as it was before the request went out, so an older result is never taken for this one.
While it waits, the elapsed time is shown on stderr. Exit 0 when the run was `ok`, 1 when
it was `partial` or `failed` or no result came within `--timeout`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from datetime import datetime, timezone
from typing import Any, TextIO

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from resontinex.schemas import CoordinationRequest, InvalidEvent, decode
from resontinex.topics import partition_of

from resontinex.app.engine.connect import start_client
from resontinex.app.engine.offsets import true_end_offsets
from resontinex.app.exceptions import BrokerError, UsageError
from resontinex.app.settings import Settings
from resontinex.app.engine.security import client_options

__all__ = ["add_parser", "build_request", "run"]


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(
        "run", help="publish a task for a team of LLM agents and print its result (γ, ω, consensus, cost)")
    p.add_argument("--task", required=True, help="the task (1–20,000 characters); @FILE reads it from a file")
    p.add_argument("--agents", type=int, default=3, help="team size (2–10)")
    p.add_argument("--strategy", default="parallel", choices=("sequential", "parallel", "debate"),
                   help="sequential: each agent sees the answers before it; parallel: independent answers, then a "
                        "synthesis; debate: rounds of critique and revision, then a synthesis")
    p.add_argument("--rounds", type=int, default=2, help="debate rounds (1–5)")
    p.add_argument("--model", help="the model (default: coordination.yaml's)")
    p.add_argument("--tenant", default="cli", help="whose budget pays")
    p.add_argument("--workflow", default="default", help="budget scope inside the tenant")
    p.add_argument("--budget-usd", type=float, help="cap on this run's spend")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the result")
    return p


def build_request(args: argparse.Namespace, max_bytes: int = 1 << 20) -> CoordinationRequest:
    """The validated request (a `UsageError` naming the bad fields otherwise).

    >>> ns = argparse.Namespace(task="Name a prime.", agents=2, strategy="debate", rounds=1, model=None,
    ...                         tenant="acme", workflow="default", budget_usd=None)
    >>> build_request(ns).strategy
    'debate'
    """
    task = args.task
    if task.startswith("@"):
        try:
            with open(task[1:], encoding="utf-8") as f:
                task = f.read()
        except OSError as exc:
            raise UsageError(f"--task {task}: {exc.strerror}") from None
    body: dict[str, Any] = {
        "event_id": f"coord-{uuid.uuid4().hex}", "tenant": args.tenant, "task": task, "num_agents": args.agents,
        "strategy": args.strategy, "rounds": args.rounds, "workflow": args.workflow,
        "ts": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
    }
    if args.model:
        body["model"] = args.model
    if args.budget_usd is not None:
        body["budget_usd"] = args.budget_usd
    try:
        return decode(CoordinationRequest, orjson.dumps(body), max_bytes=max_bytes)
    except InvalidEvent as exc:
        raise UsageError(f"coordination run: {exc.message}") from None


def run(settings: Settings, args: argparse.Namespace) -> int:
    request = build_request(args, settings.max_message_bytes)
    result = asyncio.run(_publish_and_wait(settings, request, args.timeout, sys.stderr))
    if result is None:
        print(f"resontinex: no result for {request.event_id} within {args.timeout:g} s (is a core worker running? "
              "the request stays on the topic and will still be answered)", file=sys.stderr)
        return 1
    sys.stdout.write(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0 if result.get("status") == "ok" else 1


async def _publish_and_wait(settings: Settings, request: CoordinationRequest, timeout_s: float,
                            progress: TextIO) -> dict[str, Any] | None:
    tp = TopicPartition(settings.topic("coordination_results"), partition_of(request.tenant, settings.partitions))
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap, **client_options(), group_id=None, enable_auto_commit=False)
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap, **client_options(), acks="all")
    try:
        await start_client(consumer, settings.bootstrap)
        await start_client(producer, settings.bootstrap)
        consumer.assign([tp])
        consumer.seek(tp, (await true_end_offsets(settings.bootstrap, [tp]))[tp])
        await producer.send_and_wait(settings.topic("coordination_requests"),
                                     request.model_dump_json(exclude_none=True).encode(),
                                     key=request.tenant.encode())
        progress.write(f"published {request.event_id} ({request.strategy}, {request.num_agents} agents) for tenant "
                       f"{request.tenant}; waiting for its result\n")
        started = time.monotonic()
        shown = 0
        while (elapsed := time.monotonic() - started) < timeout_s:
            batch = await consumer.getmany(tp, timeout_ms=500)
            for record in batch.get(tp, []):
                result = orjson.loads(record.value)
                if result.get("request_event_id") == request.event_id:
                    _show(progress, elapsed, done=True)
                    return dict(result)
            if int(elapsed) > shown:
                shown = int(elapsed)
                _show(progress, elapsed, done=False)
        _show(progress, timeout_s, done=True)
        return None
    except KafkaError as exc:
        raise BrokerError(f"coordination run at {settings.bootstrap}: {exc}") from None
    finally:
        await producer.stop()
        await consumer.stop()


def _show(out: TextIO, elapsed: float, *, done: bool) -> None:
    """`waiting … N s`, redrawn in place on a terminal, a line every 10 s elsewhere."""
    if out.isatty():
        out.write(f"\rwaiting … {elapsed:5.0f} s" + ("\n" if done else ""))
    elif done or int(elapsed) % 10 == 0:
        out.write(f"waiting … {elapsed:.0f} s\n")
    out.flush()
