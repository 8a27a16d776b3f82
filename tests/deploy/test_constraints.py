"""Installs are reproducible: every install command of the repository uses the lock
(constraints.txt), and the lock pins every requirement of pyproject.toml inside its range."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]


def _pins() -> dict[str, Version]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not an exact pin"
            pins[canonicalize_name(name)] = Version(version)
    return pins


def test_the_lock_pins_every_requirement_within_its_range() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    requirements = [*project["dependencies"], *(r for extra in project["optional-dependencies"].values() for r in extra)]
    pins = _pins()
    for text in requirements:
        req = Requirement(text)
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not in constraints.txt: run `bash .ci/lock`"
        assert req.specifier.contains(pins[name], prereleases=True), f"{req.name}=={pins[name]} is outside {req.specifier}"


def test_every_install_command_uses_the_lock() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = [*re.findall(r"^python3\.11 -m venv .*$", readme, re.M),
                (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()[-1]]
    assert len(commands) == 3  # the README's two commands and CI's
    for command in commands:
        installs = re.findall(r"pip install ([^&]*)", command)
        assert installs and all("-c constraints.txt" in i for i in installs), command
