from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "agents.router",
    "agents.router._anomaly",
    "agents.router._base",
    "agents.router._codec",
    "agents.router._config",
    "agents.router._constraints",
    "agents.router._epsilon_greedy",
    "agents.router._features",
    "agents.router._inputs",
    "agents.router._linucb",
    "agents.router._ope",
    "agents.router._pending",
    "agents.router._policies",
    "agents.router._reward",
    "agents.router._router",
    "agents.router._stats",
    "agents.router._status",
    "agents.router._table",
    "agents.router._thompson",
    "agents.router._ucb1",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    failures, tried = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert tried > 0
    assert failures == 0


def test_every_module_is_listed() -> None:
    import pkgutil

    import agents.router as pkg
    found = {f"agents.router.{m.name}" for m in pkgutil.iter_modules(pkg.__path__)} - {"agents.router.exceptions"}
    assert found <= set(MODULES)


def test_public_api_is_exported() -> None:
    import agents.router as pkg
    assert sorted(pkg.__all__) == sorted(set(pkg.__all__))
    for name in pkg.__all__:
        assert hasattr(pkg, name), name
