from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "resontinex.agents.router",
    "resontinex.agents.router._anomaly",
    "resontinex.agents.router._base",
    "resontinex.agents.router._codec",
    "resontinex.agents.router._config",
    "resontinex.agents.router._constraints",
    "resontinex.agents.router._epsilon_greedy",
    "resontinex.agents.router._features",
    "resontinex.agents.router._inputs",
    "resontinex.agents.router._linucb",
    "resontinex.agents.router._ope",
    "resontinex.agents.router._pending",
    "resontinex.agents.router._policies",
    "resontinex.agents.router._reward",
    "resontinex.agents.router._router",
    "resontinex.agents.router._stats",
    "resontinex.agents.router._status",
    "resontinex.agents.router._table",
    "resontinex.agents.router._thompson",
    "resontinex.agents.router._ucb1",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    failures, tried = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert tried > 0
    assert failures == 0


def test_every_module_is_listed() -> None:
    import pkgutil

    import resontinex.agents.router as pkg
    found = {f"resontinex.agents.router.{m.name}" for m in pkgutil.iter_modules(pkg.__path__)} - {"resontinex.agents.router.exceptions"}
    assert found <= set(MODULES)


def test_public_api_is_exported() -> None:
    import resontinex.agents.router as pkg
    assert sorted(pkg.__all__) == sorted(set(pkg.__all__))
    for name in pkg.__all__:
        assert hasattr(pkg, name), name
