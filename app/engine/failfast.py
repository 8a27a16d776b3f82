"""Crash-only batch handling: an unexpected error ends the process, not just the agent.

Faust restarts a crashed agent inside the same process, past a batch whose outputs may
be half sent. Exiting instead leaves the batch's offsets uncommitted, so the restarted
worker (by `resontinex up`, Kubernetes or compose) processes it again, and the dedupe
on request ids keeps that replay from doubling anything.
"""

from __future__ import annotations

import logging
import os
from contextlib import asynccontextmanager
from typing import AsyncIterator

log = logging.getLogger(__name__)

EXIT_CODE = 70  # EX_SOFTWARE


@asynccontextmanager
async def crash_only(agent: str) -> AsyncIterator[None]:
    try:
        yield
    except Exception:
        log.critical("unexpected error in a batch; exiting so the batch is redelivered", exc_info=True,
                     extra={"agent": agent})
        logging.shutdown()
        os._exit(EXIT_CODE)
