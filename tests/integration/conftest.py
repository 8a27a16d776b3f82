from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Iterator

import pytest

from resontinex.app.broker import EmbeddedBroker

from .harness import REPO

pytestmark = pytest.mark.integration


@pytest.fixture
def broker() -> Iterator[EmbeddedBroker]:
    """A fresh embedded broker with every registry topic created through the CLI."""
    b = EmbeddedBroker(port=0)
    b.start()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "resontinex.app.cli", "topics", "create", "--bootstrap", b.bootstrap],
            cwd=REPO, capture_output=True, text=True, timeout=60,
        )
        assert done.returncode == 0, done.stderr
        yield b
    finally:
        b.stop()


def run(coro):
    return asyncio.run(coro)
