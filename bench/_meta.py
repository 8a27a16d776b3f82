"""What every bench result records about the code it measured: the commit checked out and
a hash of the measured files as they are in the working tree (which may differ from the
commit). Neither runs a git process."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def checkout_commit() -> str | None:
    """The checked-out commit, read from .git; None where it cannot be read."""
    try:
        git = REPO / ".git"
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head
        ref = head[5:]
        if (git / ref).is_file():
            return (git / ref).read_text().strip()
        for line in (git / "packed-refs").read_text().splitlines():
            if line.endswith(" " + ref):
                return line.split()[0]
    except OSError:
        pass
    return None


def code_sha256(paths: Sequence[str]) -> str:
    """A hash of the Python files under `paths` (relative to the repository), to tell which
    code a result is of.

    >>> len(code_sha256(["bench/_meta.py"])), code_sha256(["bench/_meta.py"]) == code_sha256(["bench/_meta.py"])
    (16, True)
    """
    h = hashlib.sha256()
    for rel in paths:
        path = REPO / rel
        for f in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            if f.is_file() and "__pycache__" not in f.parts:
                h.update(str(f.relative_to(REPO)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]
