"""The examples in the docstrings run."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["resontinex.schemas", "resontinex.schemas._base", "resontinex.schemas._codec", "resontinex.schemas._registry", "resontinex.schemas.exceptions"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.failed == 0 and result.attempted > 0
