"""Named points where a crash test can kill the worker, at a moment a timed kill rarely hits.

`RESONTINEX_CRASH_AT=<name>` in a worker's environment makes it SIGKILL itself the first
time it reaches `crash_point(<name>)`; the test then restarts it without the variable.
Unset (always, outside tests) a point costs one comparison.

Points: `<agent>.outputs_sent` (`app.engine.applier`: a batch's outputs are acknowledged, its
audit records are not yet written).

`RESONTINEX_FAULT_KEY=<key>` makes `fault_point` raise `InjectedFault` for every record
with that key, so a test drives the real error path (`processing_error` dead letters, the
circuit breaker) with ordinary records. Unset, a point costs one comparison.
"""

from __future__ import annotations

import logging
import os
import signal
from typing import Final

ENV: Final = "RESONTINEX_CRASH_AT"
FAULT_ENV: Final = "RESONTINEX_FAULT_KEY"
_ARMED: Final = os.environ.get(ENV)
_FAULTY: Final = os.environ.get(FAULT_ENV, "").encode() or None

log = logging.getLogger(__name__)


def crash_point(name: str) -> None:
    """Kill this process with SIGKILL when `RESONTINEX_CRASH_AT` names `name`."""
    if _ARMED == name:
        log.critical("crash point reached: killing the process", extra={"crash_point": name})
        logging.shutdown()
        os.kill(os.getpid(), signal.SIGKILL)


class InjectedFault(RuntimeError):
    """Raised by a fault point for a record with the `RESONTINEX_FAULT_KEY` key."""


def fault_point(name: str, key: bytes | None) -> None:
    """Raise `InjectedFault` when `key` is the one `RESONTINEX_FAULT_KEY` names."""
    if _FAULTY is not None and key == _FAULTY:
        raise InjectedFault(f"fault injected at {name}")
