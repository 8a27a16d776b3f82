from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "resontinex.agents.trust",
    "resontinex.agents.trust._batch",
    "resontinex.agents.trust._calibration",
    "resontinex.agents.trust._config",
    "resontinex.agents.trust._explain",
    "resontinex.agents.trust._gate",
    "resontinex.agents.trust._inputs",
    "resontinex.agents.trust._monitor",
    "resontinex.agents.trust._override",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    failures, _ = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert failures == 0
