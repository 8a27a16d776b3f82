"""The `resontinex` command line (CONTRACT §6). Exit codes: 0 ok, 1 a check failed, 2 bad usage or input."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import logging.config
import os
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any, Sequence

from resontinex.agents.audit import KINDS as AUDIT_KINDS

from .commands import budget_gate, coordination_run, dead_letters, enhancement_cli, router_eval
from resontinex.app.exceptions import ResontinexError, UsageError
from resontinex.app.logs import FORMATS, LEVELS, logging_config
from resontinex.app.settings import DEFAULT_PORT, DEFAULT_WEB_PORT, ROLES, Settings

log = logging.getLogger("resontinex")


def _kafka_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bootstrap", metavar="HOST:PORT", help="Kafka bootstrap servers (default: "
                   "$KAFKA_BOOTSTRAP_SERVERS, else the embedded broker's address)")
    p.add_argument("--config-dir", metavar="DIR", help="files here replace the packaged config "
                   "(default: $RESONTINEX_CONFIG_DIR)")
    p.add_argument("--log-level", default="INFO", choices=LEVELS, help="DEBUG also shows Faust's, mode's and "
                   "aiokafka's INFO lines")
    p.add_argument("--log-format", default="auto", choices=FORMATS, help="auto: console on a terminal, else JSON "
                   "lines")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default after its help where there is one to show (not None or
    False) and the help does not already say it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """A parser (and, through `add_subparsers`, every subcommand's) that shows defaults in
    its help and refuses an unknown argument itself: argparse leaves those to the root
    parser, whose usage says nothing of the subcommand's flags."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def parse_known_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                         namespace: argparse.Namespace | None = None) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras


def parser() -> argparse.ArgumentParser:
    root = _Parser(prog="resontinex", description="Governance stream processor for AI workloads.")
    root.add_argument("--version", action="version", version=f"%(prog)s {version('resontinex')}")
    sub = root.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser("up", help="broker (if none configured), topics and supervised workers")
    _kafka_flags(up)
    up.add_argument("--port", type=int, default=DEFAULT_PORT, help="embedded broker port")
    up.add_argument("--web-port", type=int, default=DEFAULT_WEB_PORT, help="first worker's web port")
    up.add_argument("--roles", help=f"comma-separated roles (default: {','.join(ROLES)}, trajectory only where its "
                                    "model can be loaded)")
    up.add_argument("--demo", action="store_true", help="publish realistic traffic and show live figures")

    worker = sub.add_parser("worker", help="one worker joining its role's consumer group")
    _kafka_flags(worker)
    worker.add_argument("--role", default="core", choices=ROLES,
                        help="the role whose consumer group to join (gateway: the HTTP gateway, on --web-port)")
    worker.add_argument("--web-port", type=int, default=DEFAULT_WEB_PORT, help="serves /health and /metrics")

    gateway = sub.add_parser("gateway", help="the HTTP gateway's tokens (the gateway itself: worker --role gateway)")
    gateway_sub = gateway.add_subparsers(dest="action", required=True, metavar="ACTION")
    token = gateway_sub.add_parser("token", help="make a bearer token for one tenant and print its gateway.yaml line",
                                   description="Print a new random token (give it to the caller; it is not kept) "
                                               "and the line that lets it write TENANT, for gateway.yaml's tokens.")
    token.add_argument("--tenant", required=True, help="the one tenant the token may write")
    token.add_argument("--name", help="who holds it (kept in gateway.yaml, for people)")
    token.add_argument("--add-to", type=Path, metavar="FILE",
                       help="also add the line to this gateway.yaml (created if missing; rewritten without comments)")

    topics = sub.add_parser("topics", help="topic administration")
    topics_sub = topics.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = topics_sub.add_parser("create", help="create every topic in the registry")
    _kafka_flags(create)

    schemas = sub.add_parser("schemas", help="event schemas")
    schemas_sub = schemas.add_subparsers(dest="action", required=True, metavar="ACTION")
    export = schemas_sub.add_parser(
        "export", help="write a JSON Schema per event type, and/or an AsyncAPI 3.0 document of every topic",
        description="Write <event>.schema.json (JSON Schema draft 2020-12) for every event type into DIR, and with "
                    "--asyncapi FILE an AsyncAPI 3.0.0 document of every topic: one channel per topic (its name "
                    "with $RESONTINEX_TOPIC_PREFIX), its event's schema as payload, its record key, the "
                    "processor's receive/send operations and the Kafka server. Give DIR, --asyncapi FILE, or both.")
    export.add_argument("directory", type=Path, nargs="?", metavar="DIR",
                        help="write the JSON Schemas here (created if missing)")
    export.add_argument("--asyncapi", type=Path, metavar="FILE",
                        help="write the AsyncAPI document here: YAML when FILE ends in .yaml or .yml, else JSON")
    export.add_argument("--bootstrap", metavar="HOST:PORT", help="the document's Kafka server(s) (default: "
                        "$KAFKA_BOOTSTRAP_SERVERS, else the embedded broker's address)")

    _kafka_flags(budget_gate.add_parser(sub))

    budget = sub.add_parser("budget", help="operator commands to the budget governor")
    budget_sub = budget.add_subparsers(dest="action", required=True, metavar="ACTION")
    reset = budget_sub.add_parser("reset", help="lift a tenant's tripwire downgrade (published on the control topic, audited)")
    _kafka_flags(reset)
    reset.add_argument("--tenant", required=True)
    reset.add_argument("--operator", required=True, help="who resets (recorded in the audit)")
    reset.add_argument("--reason", required=True, help="why (recorded in the audit)")

    router = sub.add_parser("router", help="adaptive routing")
    router_sub = router.add_subparsers(dest="action", required=True, metavar="ACTION")
    _kafka_flags(router_eval.add_parser(router_sub))
    export_ = router_sub.add_parser("export", help="a tenant's router table as JSON (read from its changelog)")
    _kafka_flags(export_)
    export_.add_argument("--tenant", required=True)
    export_.add_argument("--out", metavar="FILE", help="write here (default: stdout)")
    import_ = router_sub.add_parser("import", help="replace a tenant's router table (control topic, audited)")
    _kafka_flags(import_)
    import_.add_argument("--tenant", required=True)
    import_.add_argument("--file", required=True, help="a table written by `router export`")
    import_.add_argument("--operator", required=True, help="who imports (recorded in the audit)")
    import_.add_argument("--reason", required=True, help="why (recorded in the audit)")

    coordination = sub.add_parser("coordination", help="teams of LLM agents measured: γ, ω, consensus, cost")
    coordination_sub = coordination.add_subparsers(dest="action", required=True, metavar="ACTION")
    _kafka_flags(coordination_run.add_parser(coordination_sub))

    enhancement = sub.add_parser("enhancement", help="enhancement governance: submit, list, show, approve, retire, "
                                                     "export (prompt, model and policy changes, validated and watched)")
    enhancement_sub = enhancement.add_subparsers(dest="action", required=True, metavar="ACTION")
    for p in enhancement_cli.add_parsers(enhancement_sub):
        _kafka_flags(p)

    dead_letters_ = sub.add_parser(
        "dead-letters", help="inspect dead letters; re-drive their originals to the source topic (a dry run unless "
                             "--apply)",
        description="The `dead-letters` topic (CONTRACT §4): list and show what was refused and why; re-drive the "
                    "original bytes and key to the source topic once the cause is fixed.")
    dead_letters_sub = dead_letters_.add_subparsers(dest="action", required=True, metavar="ACTION")
    for p in dead_letters.add_parsers(dead_letters_sub):
        _kafka_flags(p)

    standin = sub.add_parser("standin", help="a local Anthropic Messages-API stand-in (deterministic answers, "
                                             "injectable faults) for development: set ANTHROPIC_BASE_URL to its URL")
    standin.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    standin.add_argument("--port", type=int, default=8765, help="the port to listen on (0: any free one)")
    standin.add_argument("--latency-ms", type=float, default=0.0, help="every answer waits this long")

    _audit_parsers(sub)
    return root


def _audit_parsers(sub: argparse._SubParsersAction) -> None:
    audit = sub.add_parser("audit", help="compliance: verify, replay, reproduce and archive the audit topic")
    audit_sub = audit.add_subparsers(dest="action", required=True, metavar="ACTION")

    def source(p: argparse.ArgumentParser) -> None:
        _kafka_flags(p)
        p.add_argument("--file", metavar="ARCHIVE", help="read an archive written by `audit archive` (no Kafka)")
        p.add_argument("--quiet", action="store_true", help="no progress bar")

    keygen = audit_sub.add_parser("keygen", help="write an Ed25519 key pair for signed checkpoints")
    keygen.add_argument("--out", required=True, metavar="PREFIX", help="writes PREFIX.key (private) and PREFIX.pub")

    verify = audit_sub.add_parser("verify", help="check every hash, seq continuity and checkpoint signature")
    source(verify)
    verify.add_argument("--public-key", metavar="PEM", help="checkpoint signatures are checked with this key "
                        "(default: $RESONTINEX_AUDIT_PUBLIC_KEY_FILE; without one they are counted, not checked)")
    verify.add_argument("--max-unsigned", type=int, metavar="N", help="with a public key, fail a partition with "
                        "more than N records after its last good checkpoint (default: twice "
                        "RESONTINEX_AUDIT_CHECKPOINT_EVERY): stripped checkpoints leave a long unsigned tail")
    verify.add_argument("--output-format", choices=("text", "json"), default="text", help="report format")

    replay = audit_sub.add_parser("replay", help="the records matching filters, as JSON Lines, CSV, a table or Parquet")
    source(replay)
    replay.add_argument("--tenant")
    replay.add_argument("--since", metavar="TS", help="records with ts at or after this (RFC 3339)")
    replay.add_argument("--until", metavar="TS", help="records with ts before this (RFC 3339)")
    replay.add_argument("--kind", action="append", choices=AUDIT_KINDS, metavar="KIND",
                        help=f"records of this kind: {', '.join(AUDIT_KINDS)} (repeatable; default: every kind)")
    replay.add_argument("--request-id", help="the records of one decision request")
    replay.add_argument("--output-format", "--format", choices=("jsonl", "csv", "table", "parquet"), default="jsonl",
                        help="record format (parquet needs --out)")
    replay.add_argument("--out", metavar="FILE", help="write here (default: stdout; parquet needs a file)")

    reproduce = audit_sub.add_parser("reproduce", help="re-run recorded decisions through the trust gate under the "
                                     "recorded configuration and today's; report every difference")
    source(reproduce)
    reproduce.add_argument("--output-format", choices=("text", "json"), default="text", help="report format")

    archive = audit_sub.add_parser("archive", help="copy a range of the audit topic, with its checkpoints, to a file")
    _kafka_flags(archive)
    archive.add_argument("--out", required=True, metavar="FILE")
    archive.add_argument("--partition", type=int, action="append", help="partitions to copy (default: all)")
    archive.add_argument("--since", metavar="TS", help="from the first record with ts at or after this")
    archive.add_argument("--until", metavar="TS", help="up to the last record with ts before this (then on to the "
                         "next checkpoint, so the range ends signed)")
    archive.add_argument("--quiet", action="store_true", help="no progress bar")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.config.dictConfig(logging_config(getattr(args, "log_level", "INFO"), getattr(args, "log_format", "auto")))
    try:
        code = _dispatch(args)
        sys.stdout.flush()  # so that a closed pipe shows here, not at exit
        return code
    except (UsageError, FileNotFoundError) as exc:
        print(f"resontinex: {exc}", file=sys.stderr)
        return 2
    except ResontinexError as exc:
        print(f"resontinex: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, as the signal module's docs do
        # (stdout onto /dev/null so the flush at exit cannot fail again; exit 1, Python's code on EPIPE).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        return 130


def _settings(args: argparse.Namespace, port: int = DEFAULT_PORT) -> Settings:
    return Settings.from_env(bootstrap=args.bootstrap, config_dir=args.config_dir, port=port)


def _dispatch(args: argparse.Namespace) -> int:
    from resontinex.agents.trust import ConfigError

    try:
        if args.command == "up":
            return _up(args)
        if args.command == "worker":
            return _worker(args)
        if args.command == "topics":
            for name, state in asyncio.run(_create_topics(_settings(args))).items():
                print(f"{state:8} {name}")
            return 0
        if args.command == "schemas":
            return _schemas_export(args)
        if args.command == "budget-gate":
            return budget_gate.run(args)
        if args.command == "budget":
            from resontinex.app.control import control_command, publish

            return publish(_settings(args), control_command("tripwire_reset", args.tenant, args.operator, args.reason))
        if args.command == "router" and args.action == "evaluate":
            return router_eval.run(args)
        if args.command == "router":
            return _router_table(args)
        if args.command == "coordination":
            return coordination_run.run(_settings(args), args)
        if args.command == "enhancement":
            return enhancement_cli.run(_settings(args), args)
        if args.command == "gateway":
            return _gateway_token(args)
        if args.command == "dead-letters":
            return dead_letters.run(_settings(args), args)
        if args.command == "standin":
            from resontinex.app.standin import serve

            serve(args.host, args.port, args.latency_ms)
            return 0
        if args.command == "audit":
            from .commands import audit_commands

            return audit_commands.run(args)
    except ConfigError as exc:
        raise UsageError(f"configuration refused: {exc}") from exc
    raise UsageError(f"unknown command {args.command}")


def _schemas_export(args: argparse.Namespace) -> int:
    from resontinex.schemas import export_json_schemas
    from resontinex.schemas.asyncapi import asyncapi_document, write_asyncapi

    if args.directory is None and args.asyncapi is None:
        raise UsageError("schemas export: give a DIR for the JSON Schemas, --asyncapi FILE, or both")
    target = args.directory
    try:
        paths = export_json_schemas(args.directory) if args.directory is not None else []
        if args.asyncapi is not None:
            target, settings = args.asyncapi, Settings.from_env(bootstrap=args.bootstrap)
            document = asyncapi_document(settings.bootstrap, prefix=settings.topic_prefix,
                                         partitions=settings.partitions)
            paths.append(write_asyncapi(args.asyncapi, document))
    except OSError as exc:
        raise UsageError(f"schemas export {target}: {exc.strerror or exc}") from exc
    for path in paths:
        print(path)
    return 0


def _router_table(args: argparse.Namespace) -> int:
    from resontinex.app.commands.router_table import run_export, run_import

    settings = _settings(args)
    if args.action == "export":
        return run_export(settings, args)
    from resontinex.app.runtime import Runtime

    return run_import(settings, args, Runtime.load(settings, client_id="resontinex-cli").routing)


async def _create_topics(settings: Settings) -> dict[str, str]:
    from resontinex.app.commands.admin import create_topics

    return await create_topics(settings)


def _up(args: argparse.Namespace) -> int:
    from resontinex.app.runtime import Runtime
    from resontinex.app.commands.supervisor import run_up

    settings = _settings(args, port=args.port)
    runtime = Runtime.load(settings, client_id="resontinex-up")  # refuse a bad config before starting anything
    roles = _roles(args.roles, runtime.trajectory.model)
    if "gateway" in roles:
        from resontinex.app.gateway import load_gateway_config
        from resontinex.app.settings import GATEWAY_FILE

        load_gateway_config(settings.config_file(GATEWAY_FILE))  # refused here, before anything starts
    on_ready = None
    if args.demo:
        from resontinex.app.commands.demo import run_demo, use_standin_unless_configured

        url = use_standin_unless_configured()
        if url is not None:
            log.warning("demo: no ANTHROPIC_API_KEY: coordination runs go to the local Messages-API stand-in at %s", url)
        on_ready = run_demo
    return run_up(settings, roles, args.port, args.web_port, on_ready, log_level=args.log_level,
                  log_format=args.log_format)


def _roles(asked: str | None, model: str) -> list[str]:
    """The roles `up` starts: those asked for, or every role, leaving out `trajectory` (with
    a warning) where its model cannot be loaded; asking for it there is refused."""
    from resontinex.agents.trajectory import unavailable_reason

    reason = unavailable_reason(model)
    if asked is None:
        if reason:
            log.warning("not starting the trajectory role: %s; text-only decision requests are deferred", reason)
            return [r for r in ROLES if r != "trajectory"]
        return list(ROLES)
    roles = [r.strip() for r in asked.split(",") if r.strip()]
    unknown = sorted(set(roles) - set(ROLES))
    if unknown or not roles:
        raise UsageError(f"--roles: unknown role(s) {unknown or roles}; known: {', '.join(ROLES)}")
    if "trajectory" in roles and reason:
        raise UsageError(f"--roles: trajectory: {reason}")
    return roles


def _gateway_token(args: argparse.Namespace) -> int:
    import orjson

    from resontinex.app.gateway import add_token, new_token, token_digest

    token = new_token()
    entry = {"tenant": args.tenant, "sha256": token_digest(token), **({"name": args.name} if args.name else {})}
    if args.add_to is not None:
        add_token(args.add_to, entry)
    print(f"token: {token}")
    if args.add_to is not None:
        print(f"added to {args.add_to} (a running gateway reads it when it starts)")
    else:
        print(f"gateway.yaml tokens entry:\n  - {orjson.dumps(entry).decode()}")
    return 0


def _worker(args: argparse.Namespace) -> int:
    import faust

    from resontinex.app.faust_app import create_app
    from resontinex.app.commands.supervisor import check_ports

    check_ports([("--web-port", "0.0.0.0", args.web_port)])
    if args.role == "gateway":
        from resontinex.app.gateway import run_gateway

        return run_gateway(_settings(args), args.web_port)
    app, _ = create_app(_settings(args), role=args.role, web_port=args.web_port)
    worker = faust.Worker(app, loglevel=args.log_level, logging_config=logging_config(args.log_level, args.log_format),
                          quiet=True)
    worker.spinner = None  # at WARNING on a terminal it would draw between the lines and put the root logger at DEBUG
    # Faust's RocksDB store runs gc.collect() per table on every rebalance (26 tables: ~4 s of
    # CPU on 2 cores, longer than the session timeout with three workers joining): what is
    # loaded by now lives as long as the worker, so the collector need not walk it again
    gc.freeze()
    worker.execute_from_commandline()
    return 0


if __name__ == "__main__":
    sys.exit(main())
