from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from resontinex.agents.router import (
    POLICIES,
    EpsilonGreedy,
    TableError,
    export_q_table,
    import_q_table,
    make_policy,
)

from ._support import KEY, config, features, offer, rng

FEATS = features(offer("a"), offer("b", price=4.0))


def trained(name: str) -> Any:
    p = make_policy(config(policy=name))
    for pid, r in (("a", 9.15), ("b", -20.0), ("a", 8.0), ("b", 3.0)):
        p = p.update(KEY, pid, r, FEATS[pid])
    return p.update("batch:t4:eu", "a", 1.0, FEATS["a"])


@pytest.mark.parametrize("name", POLICIES)
def test_export_import_round_trip_through_json(name: str) -> None:
    p = trained(name)
    doc = export_q_table(p)
    assert doc["format"] == "resontinex.router.q_table" and doc["version"] == 1 and doc["policy"] == name
    text = json.dumps(doc, allow_nan=False)
    back = import_q_table(json.loads(text), p.cfg)
    assert back == p
    assert export_q_table(back) == doc
    assert back.choose(KEY, ["a", "b"], FEATS, None, rng(3)) == p.choose(KEY, ["a", "b"], FEATS, None, rng(3))


def test_epsilon_greedy_table_is_seed_002s_shape() -> None:
    doc = export_q_table(make_policy(config()).update(KEY, "akash", 9.15))
    assert doc["state"] == {"epsilon": 0.0995, "arms": {KEY: {"akash": {"q": 0.915, "n": 1}}}}


def test_import_takes_hyper_parameters_from_the_config_and_the_policy_from_the_document() -> None:
    doc = export_q_table(make_policy(config()).update(KEY, "a", 10.0))
    p = import_q_table(doc, config(policy="ucb1", alpha=0.5))
    assert isinstance(p, EpsilonGreedy)
    assert p.update(KEY, "a", 10.0).value(KEY, "a") == pytest.approx(1.0 + 0.5 * 9.0)


def test_import_without_config_uses_the_defaults() -> None:
    assert import_q_table(export_q_table(trained("ucb1"))).cfg == config()


def test_epsilon_may_be_left_out_and_defaults_to_the_configured_one() -> None:
    doc = {"format": "resontinex.router.q_table", "version": 1, "policy": "epsilon_greedy",
           "state": {"arms": {KEY: {"a": {"q": 1.5}}}}}
    p = import_q_table(doc, config(epsilon=0.2))
    assert p.epsilon == 0.2 and p.value(KEY, "a") == 1.5 and p.observations(KEY, "a") == 0


def broken(name: str, change: Any) -> dict[str, Any]:
    doc = copy.deepcopy(export_q_table(trained(name)))
    change(doc)
    return doc


def set_in(path: list[Any], value: Any) -> Any:
    def change(doc: dict[str, Any]) -> None:
        target = doc
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value
    return change


def delete(path: list[Any]) -> Any:
    def change(doc: dict[str, Any]) -> None:
        target = doc
        for part in path[:-1]:
            target = target[part]
        del target[path[-1]]
    return change


ARM = ["state", "arms", KEY, "a"]
CASES = [
    ("epsilon_greedy", set_in(["format"], "csv"), "format"),
    ("epsilon_greedy", set_in(["version"], 2), "version"),
    ("epsilon_greedy", set_in(["version"], True), "version"),
    ("epsilon_greedy", set_in(["policy"], "softmax"), "policy"),
    ("epsilon_greedy", delete(["state"]), "<table>.state"),
    ("epsilon_greedy", set_in(["extra"], 1), "<table>.extra"),
    ("epsilon_greedy", set_in(["state"], []), "state"),
    ("epsilon_greedy", delete(["state", "arms"]), "state.arms"),
    ("epsilon_greedy", set_in(["state", "arms"], {"no-colons": {}}), "state.arms['no-colons']"),
    ("epsilon_greedy", set_in(["state", "arms", KEY], [1]), f"state.arms[{KEY!r}]"),
    ("epsilon_greedy", set_in(ARM + ["q"], "high"), f"state.arms[{KEY!r}].a.q"),
    ("epsilon_greedy", set_in(ARM + ["q"], float("nan")), f"state.arms[{KEY!r}].a.q"),
    ("epsilon_greedy", set_in(ARM + ["n"], -1), f"state.arms[{KEY!r}].a.n"),
    ("epsilon_greedy", set_in(ARM + ["n"], 1.5), f"state.arms[{KEY!r}].a.n"),
    ("epsilon_greedy", set_in(ARM + ["bonus"], 1), f"state.arms[{KEY!r}].a.bonus"),
    ("epsilon_greedy", set_in(["state", "epsilon"], 1.5), "state.epsilon"),
    ("ucb1", delete(ARM + ["mean"]), f"state.arms[{KEY!r}].a.mean"),
    ("ucb1", set_in(ARM + ["unit"], 1.5), f"state.arms[{KEY!r}].a.unit"),
    ("ucb1", set_in(["state", "epsilon"], 0.1), "state.epsilon"),
    ("thompson", set_in(ARM + ["alpha"], 0), f"state.arms[{KEY!r}].a.alpha"),
    ("thompson", set_in(ARM + ["beta"], -1), f"state.arms[{KEY!r}].a.beta"),
    ("linucb", set_in(ARM + ["A"], [[1.0]]), f"state.arms[{KEY!r}].a.A"),
    ("linucb", set_in(ARM + ["b"], [0.0] * 4), f"state.arms[{KEY!r}].a.b"),
    ("linucb", lambda d: d["state"]["arms"][KEY]["a"]["A"][1].__setitem__(2, "x"), f"state.arms[{KEY!r}].a.A[1][2]"),
    ("linucb", lambda d: d["state"]["arms"][KEY]["a"]["A"][0].__setitem__(1, 99.0), f"state.arms[{KEY!r}].a.A"),
    ("linucb", set_in(ARM + ["A"], [[-1.0 if i == j else 0.0 for j in range(5)] for i in range(5)]),
     f"state.arms[{KEY!r}].a.A"),
]


@pytest.mark.parametrize(("name", "change", "path"), CASES, ids=[f"{c[0]}:{c[2]}" for c in CASES])
def test_bad_tables_are_refused_naming_the_path(name: str, change: Any, path: str) -> None:
    with pytest.raises(TableError) as err:
        import_q_table(broken(name, change))
    assert err.value.path == path
    assert str(err.value).startswith(path + ": ")


def test_a_non_mapping_document_is_refused() -> None:
    with pytest.raises(TableError) as err:
        import_q_table([1, 2])  # type: ignore[arg-type]
    assert err.value.path == "<table>"
