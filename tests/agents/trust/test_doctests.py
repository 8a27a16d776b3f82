from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "agents.trust",
    "agents.trust._batch",
    "agents.trust._calibration",
    "agents.trust._config",
    "agents.trust._explain",
    "agents.trust._gate",
    "agents.trust._inputs",
    "agents.trust._monitor",
    "agents.trust._override",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    failures, _ = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert failures == 0
