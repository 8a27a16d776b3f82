"""Every package module's docstring examples, run under the module's installed name.

pytest's --doctest-modules would import `app/x.py` as a second module named `app.x` beside
`resontinex.app.x` (two metric registries, two settings); here each module is imported
once, as the code imports it.
"""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FOLDERS = ("app", "agents", "schemas", "topics", "config")


def _modules() -> list[str]:
    names = []
    for folder in FOLDERS:
        for path in sorted((REPO / folder).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            names.append(".".join(("resontinex", *(parts[:-1] if parts[-1] == "__init__" else parts))))
    return names


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, report=True)
    assert result.failed == 0, f"{result.failed} of {result.attempted} example(s) failed in {name}"
