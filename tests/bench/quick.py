"""Running a bench's `--quick` smoke as a subprocess, for the tests that check its report."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def run_quick(module: str, out: Path, deadline_s: float) -> subprocess.CompletedProcess[str]:
    """`python -m <module> --quick --out <out>` from the repository, failed with the bench's
    stderr tail if it exits non-zero or runs past `deadline_s` (the bench stops what it
    started in its own `finally`)."""
    try:
        done = subprocess.run([sys.executable, "-m", module, "--quick", "--out", str(out)], cwd=REPO,
                              env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
                              timeout=deadline_s)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the quick bench ran past {deadline_s}s:\n{(exc.stderr or b'')[-3000:]!r}")
    assert done.returncode == 0, done.stderr[-4000:]
    return done
