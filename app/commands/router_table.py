"""`resontinex router export|import`: a tenant's router table as JSON.

`export` reads the last value of the tenant in the router's changelog topic (the Faust
table `router-state`) and writes the `agents.router.export_q_table` document. `import`
validates a document against `routing.yaml` here, then publishes a `router_import`
command on the `control` topic; the worker owning the tenant applies and audits it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import orjson

from resontinex.agents import router
from resontinex.agents.gate import auditable_table

from resontinex.app.control import control_command, publish
from resontinex.app.exceptions import UsageError
from resontinex.app.settings import Settings
from resontinex.app.commands.topic_reader import read_topic

CHANGELOG = "resontinex-router-state-changelog"  # <prefix><app id>-<table>-changelog (app.faust_app)


def run_export(settings: Settings, args: argparse.Namespace) -> int:
    found: dict[str, Any] = {}

    def keep(record: Any) -> None:
        if record.key is not None and orjson.loads(record.key) == args.tenant:
            found["value"] = None if record.value is None else orjson.loads(record.value)

    asyncio.run(read_topic(settings.bootstrap, settings.topic_prefix + CHANGELOG, keep))
    if not found.get("value"):
        raise UsageError(f"router export: tenant {args.tenant!r} has no router table (it never routed)")
    text = json.dumps(found["value"]["state"]["q_table"], indent=2, sort_keys=True)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
        print(f"wrote {args.out}")
    else:
        sys.stdout.write(text + "\n")
    return 0


def run_import(settings: Settings, args: argparse.Namespace, routing: router.RoutingConfig) -> int:
    try:
        document = json.loads(Path(args.file).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"router import: {args.file}: {exc}") from None
    try:
        auditable_table(document)
        policy = router.import_q_table(document, routing)
    except router.TableError as exc:
        raise UsageError(f"router import: {args.file}: {exc}") from None
    if policy.name != routing.policy:
        raise UsageError(f"router import: {args.file}: the table is {policy.name!r}'s; routing.yaml configures "
                         f"{routing.policy!r}")
    return publish(settings, control_command("router_import", args.tenant, args.operator, args.reason,
                                             max_bytes=settings.max_message_bytes, q_table=document))
