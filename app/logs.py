"""Logs on stderr: JSON lines (one object per line, with the event id as correlation id),
or a human console format when stderr is a terminal, where a warning or a notice that
repeats (a dead letter per bad event, say) is shown once a minute with the count
of those not shown (errors always, and everything at DEBUG).

>>> import logging, io
>>> stream = io.StringIO(); h = logging.StreamHandler(stream); h.setFormatter(JsonFormatter())
>>> log = logging.getLogger("doc"); log.addHandler(h); log.propagate = False; log.setLevel(logging.INFO)
>>> log.warning("bad input", extra={"event_id": "e-1", "code": "not_json"})
>>> import json; rec = json.loads(stream.getvalue()); (rec["msg"], rec["event_id"], rec["code"])
('bad input', 'e-1', 'not_json')
"""

from __future__ import annotations

import logging
import sys
from datetime import datetime, timezone
from typing import IO, Any

import orjson

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
FORMATS = ("auto", "console", "json")

# Their INFO lines narrate start-up service by service (~130 lines a worker), or each HTTP
# request the anthropic SDK makes (its HTTP client logs as httpx2).
_CHATTY = ("faust", "mode", "aiokafka", "httpx", "httpx2", "anthropic")

_MAX_KINDS = 10_000

# Attributes every LogRecord has; anything else came from `extra=` and is logged as a field.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **_fields(record),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


class ConsoleFormatter(logging.Formatter):
    """One line a record for a person: local time, level, logger, message, fields.

    >>> rec = logging.makeLogRecord({"name": "resontinex.app.commands.supervisor", "levelname": "INFO",
    ...                              "msg": "worker started", "role": "core", "ports": [6066]})
    >>> ConsoleFormatter().format(rec).split(" ", 1)[1]
    'INFO    resontinex.app.commands.supervisor: worker started role=core ports=[6066]'
    """

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        fields = "".join(f" {k}={_text(v)}" for k, v in _fields(record).items())
        line = f"{when} {record.levelname:7} {record.name}: {record.getMessage()}{fields}"
        if getattr(record, "_not_shown", 0):
            line += f" (and {record._not_shown} more like this not shown)"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class Repeats(logging.Filter):
    """Passes every error, and of each other kind of record (logger, level, message
    template) the first, then at most one a `window_s`, carrying the number held back
    since the last (`_not_shown`).

    >>> f = Repeats(10.0)
    >>> rec = lambda t: logging.makeLogRecord({"msg": "dead letter", "levelno": logging.WARNING, "created": t})
    >>> [f.filter(rec(t)) for t in (0, 1, 2, 10.5, 11)]
    [True, False, False, True, False]
    >>> r = rec(21); f.filter(r), r._not_shown
    (True, 1)
    """

    def __init__(self, window_s: float = 60.0) -> None:
        super().__init__()
        self.window_s = window_s
        self._kinds: dict[tuple[str, int, object], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR:
            return True
        kind = (record.name, record.levelno, record.msg)
        shown_at, held = self._kinds.get(kind, (float("-inf"), 0))
        if record.created - shown_at < self.window_s:
            self._kinds[kind] = (shown_at, held + 1)
            return False
        if len(self._kinds) >= _MAX_KINDS:  # messages built with f-strings are each their own kind
            self._kinds = {k: v for k, v in self._kinds.items() if record.created - v[0] < self.window_s}
        self._kinds[kind] = (record.created, 0)
        record._not_shown = held
        return True


def _text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value, default=str).decode()


def resolve_format(fmt: str, stream: IO[str] | None = None) -> str:
    """`auto` is `console` on a terminal and `json` otherwise.

    >>> import io
    >>> resolve_format("auto", io.StringIO()), resolve_format("console", io.StringIO())
    ('json', 'console')
    """
    if fmt != "auto":
        return fmt
    stream = sys.stderr if stream is None else stream
    return "console" if stream.isatty() else "json"


def logging_config(level: str = "INFO", fmt: str = "auto") -> dict[str, Any]:
    """A `logging.config.dictConfig` mapping that sends every logger to stderr in `fmt`
    (the console collapsing repeats unless at DEBUG), with Faust's, mode's and aiokafka's chatter at
    WARNING unless `level` is DEBUG.

    >>> logging_config("INFO", "json")["loggers"]["faust"]
    {'level': 'WARNING'}
    >>> logging_config("ERROR", "json")["loggers"]["aiokafka"], logging_config("DEBUG", "json")["loggers"]
    ({'level': 'ERROR'}, {})
    """
    quiet = LEVELS[max(LEVELS.index(level), LEVELS.index("WARNING"))]
    console = resolve_format(fmt) == "console"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": {"()": ConsoleFormatter if console else JsonFormatter}},
        "filters": {"repeats": {"()": Repeats}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "default", "stream": "ext://sys.stderr",
                                "filters": ["repeats"] if console and level != "DEBUG" else []}},
        "loggers": {} if level == "DEBUG" else {name: {"level": quiet} for name in _CHATTY},
        "root": {"level": level, "handlers": ["stderr"]},
    }
