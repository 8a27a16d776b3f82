"""Named points where a crash test can kill the worker, at a moment a timed kill rarely hits.

`RESONTINEX_CRASH_AT=<name>` in a worker's environment makes it SIGKILL itself the first
time it reaches `crash_point(<name>)`; the test then restarts it without the variable.
Unset (always, outside tests) a point costs one comparison.

Points: `gate.decisions_sent` (a batch's decisions and alerts are acknowledged, its
audit records are not yet written).
"""

from __future__ import annotations

import logging
import os
import signal
from typing import Final

ENV: Final = "RESONTINEX_CRASH_AT"
_ARMED: Final = os.environ.get(ENV)

log = logging.getLogger(__name__)


def crash_point(name: str) -> None:
    """Kill this process with SIGKILL when `RESONTINEX_CRASH_AT` names `name`."""
    if _ARMED == name:
        log.critical("crash point reached: killing the process", extra={"crash_point": name})
        logging.shutdown()
        os.kill(os.getpid(), signal.SIGKILL)
