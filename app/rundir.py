"""A fresh state directory for each `up` on the embedded broker.

The embedded broker keeps everything in memory, so RocksDB state left by an earlier run
describes offsets the new broker never had (a worker on it dies on "persisted offset is
higher than the highwater"). `up` therefore gives its workers `<data dir>/run-<pid>-<run id>/`
for as long as its broker lives and removes it on the way out. One left behind by an `up`
that was killed outright is removed by the next `up`, once its pid is gone.

>>> import tempfile
>>> base = Path(tempfile.mkdtemp())
>>> with fresh_run_dir(base, "abc") as path:
...     path.name == f"run-{os.getpid()}-abc", path.is_dir()
(True, True)
>>> path.exists()
False
"""

from __future__ import annotations

import logging
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

log = logging.getLogger(__name__)


@contextmanager
def fresh_run_dir(base: Path, run_id: str) -> Iterator[Path]:
    """An empty `base/run-<pid>-<run_id>/` for the block, removed after it; stale run
    directories in `base` are removed first."""
    remove_stale(base)
    path = base / f"run-{os.getpid()}-{run_id}"
    path.mkdir(parents=True)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def remove_stale(base: Path) -> list[Path]:
    """Remove the run directories in `base` whose owner process is gone; return them."""
    removed = []
    for path in sorted(base.glob("run-*-*")):
        pid = path.name.split("-")[1]
        if path.is_dir() and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    if removed:
        log.info("removed state of earlier runs", extra={"paths": [str(p) for p in removed]})
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True
