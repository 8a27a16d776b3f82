"""The type checker: mypy, strict on agents/, client/, schemas/ and topics/ ([tool.mypy] in pyproject.toml).

mypy cannot see through the editable install's import hook (the build's package-dir mapping
`resontinex.agents` → agents/, ...), so this links the mapped folders under
.mypy_cache/src/resontinex/ (git-ignored), where the config's `mypy_path` points, and mypy
reads the installed names from there. Its cache (.mypy_cache) makes a second run take about a
second. By hand: `python tests/test_types.py [mypy options]`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINKS = ROOT / ".mypy_cache" / "src"


def link_packages() -> dict[Path, str]:
    """`LINKS/resontinex/<name>` → the folder pyproject's package-dir maps `resontinex.<name>` to;
    returns each link's path (relative to the repository) and its folder."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    namespace = LINKS / "resontinex"
    namespace.mkdir(parents=True, exist_ok=True)
    links = {}
    for package, folder in setuptools["package-dir"].items():
        parent, _, name = package.rpartition(".")
        assert parent == "resontinex" and name, f"package-dir {package!r}: expected resontinex.<name>"
        link, target = namespace / name, os.path.relpath(ROOT / folder, namespace)
        links[link.relative_to(ROOT)] = folder
        if link.is_symlink() and os.readlink(link) == target:
            continue
        if link.is_symlink():
            link.unlink()
        link.symlink_to(target, target_is_directory=True)
    return links


def mypy(*args: str) -> tuple[int, str]:
    """mypy's exit status and output, its files named as they are in the repository."""
    links = link_packages()
    done = subprocess.run([sys.executable, "-m", "mypy", "--config-file", "pyproject.toml", *args],
                          cwd=ROOT, capture_output=True, text=True, check=False)
    output = done.stdout + done.stderr
    for link, folder in links.items():
        output = output.replace(f"{link}{os.sep}", f"{folder}{os.sep}")
    return done.returncode, output


def test_mypy_passes_strict() -> None:
    status, output = mypy()
    assert status == 0, f"mypy (exit {status}):\n{output}"


def test_the_shell_fits_the_seams_and_the_cores_views() -> None:
    """The shell is not in the strict scope yet, but its views, sink and tables are held to
    the Protocols they stand in for (`tests/app/engine/seams_conformance.py`)."""
    status, output = mypy("tests/app/engine/seams_conformance.py")
    assert status == 0, f"mypy (exit {status}):\n{output}"


if __name__ == "__main__":
    status, output = mypy(*sys.argv[1:])
    print(output, end="")
    sys.exit(status)
