"""JSON logs, one object per line, with the event id as correlation id.

>>> import logging, io
>>> stream = io.StringIO(); h = logging.StreamHandler(stream); h.setFormatter(JsonFormatter())
>>> log = logging.getLogger("doc"); log.addHandler(h); log.propagate = False
>>> log.warning("bad input", extra={"event_id": "e-1", "code": "not_json"})
>>> import json; rec = json.loads(stream.getvalue()); (rec["msg"], rec["event_id"], rec["code"])
('bad input', 'e-1', 'not_json')
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

import orjson

# Attributes every LogRecord has; anything else came from `extra=` and is logged as a field.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


def logging_config(level: str = "INFO") -> dict[str, Any]:
    """A `logging.config.dictConfig` mapping that sends every logger to stderr as JSON."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
        "root": {"level": level, "handlers": ["stderr"]},
    }
