"""The install adds one name, `resontinex`, to site-packages; the code imports itself by it."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FOLDERS = ("app", "agents", "client", "schemas", "topics", "config")
TOP_LEVEL_IMPORT = re.compile(rf"^\s*(?:>>> |\.\.\. )?(?:from|import) ({'|'.join(FOLDERS)})\b", re.M)


def _setuptools() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_package_folder_is_listed_under_the_namespace() -> None:
    on_disk = {
        "resontinex." + ".".join(init.parent.relative_to(REPO).parts)
        for folder in FOLDERS for init in (REPO / folder).rglob("__init__.py")
    }
    assert set(_setuptools()["packages"]) == on_disk
    assert _setuptools()["package-dir"] == {f"resontinex.{f}": f for f in FOLDERS}


def test_no_module_imports_a_folder_by_its_bare_name() -> None:
    sources = [p for folder in (*FOLDERS, "tests", "bench") for p in (REPO / folder).rglob("*.py")]
    offenders = [f"{p.relative_to(REPO)}: {m.group(0).strip()}" for p in sources
                 for m in TOP_LEVEL_IMPORT.finditer(p.read_text())]
    assert offenders == []


def test_the_installed_code_loads_nothing_under_a_bare_name(tmp_path) -> None:
    """Outside the checkout (no repo root on sys.path): the worker's and the CLI's modules import."""
    probe = ("import sys, resontinex.app.cli, resontinex.app.faust_app, resontinex.app.wiring.gate, "
             f"resontinex.app.wiring.budget; print(sorted(set(sys.modules) & {set(FOLDERS)!r}))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_wheel_holds_only_resontinex(tmp_path) -> None:
    source = tmp_path / "src"  # a copy: a build/ folder left in the checkout would leak into the wheel
    for name in FOLDERS:
        shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path), str(source)],
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("resontinex-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/", 1)[0] for n in names} - {n.split("/", 1)[0] for n in names if ".dist-info/" in n} == {"resontinex"}
    for shipped in ("resontinex/config/trust_gate.yaml", "resontinex/schemas/json/decision.schema.json",
                    "resontinex/app/cli.py", "resontinex/agents/gate/_plan.py"):
        assert shipped in names
