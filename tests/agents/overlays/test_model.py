"""Keyword, Overlay and OverlaySet: validation in code, mapping behaviour."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resontinex.agents.overlays import (
    InvalidOverlayError,
    Keyword,
    Overlay,
    OverlaySet,
    UnknownOverlayError,
    category_key,
    normalise_keyword,
    words,
)

from ._support import overlay


def test_words_split_on_anything_but_letters_and_digits() -> None:
    assert words("Refund_ID-42: rolled/back, ÉTÉ") == ("refund", "id", "42", "rolled", "back", "été")
    assert normalise_keyword(" Data--Loss ") == "data loss"
    assert category_key("Customer Success / EMEA") == "customer_success_emea"


@given(st.text(max_size=60))
def test_normalisation_is_idempotent(text: str) -> None:
    assert normalise_keyword(normalise_keyword(text)) == normalise_keyword(text)
    assert category_key(category_key(text)) == category_key(text)


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"name": "Rollback"}, "name"),
    ({"name": "9lives"}, "name"),
    ({"name": "a" * 65}, "name"),
    ({"prompt": " "}, "prompt"),
    ({"complexity": ("extreme",)}, "complexity"),
    ({"complexity": ("low", "low")}, "complexity"),
    ({"primary": ("Financial",)}, "categories.primary"),
    ({"secondary": ("a", "a")}, "categories.secondary"),
    ({"primary": ("a",), "secondary": ("a",)}, "categories"),
    ({"keywords": (Keyword(("refund",)), Keyword(("refunds", "refund")))}, "keywords"),
    ({"keywords": ("refund",)}, "keywords"),
])
def test_an_overlay_built_in_code_is_validated(kwargs: dict[str, object], field: str) -> None:
    args: dict[str, object] = {"name": "ok", "prompt": "Do it.", **kwargs}
    with pytest.raises(InvalidOverlayError) as info:
        Overlay(**args)  # type: ignore[arg-type]
    assert (info.value.reason_code, info.value.field) == ("invalid_field", field)


@pytest.mark.parametrize("forms", [(), ("Refund",), ("data  loss",), ("",), ("a", "a")])
def test_keyword_forms_must_be_normalised_and_distinct(forms: tuple[str, ...]) -> None:
    with pytest.raises(InvalidOverlayError):
        Keyword(forms)


def test_the_set_is_a_read_only_mapping_in_name_order() -> None:
    ov = OverlaySet.of([overlay("b"), overlay("a")])
    assert list(ov) == ["a", "b"] and ov.names == ("a", "b") and len(ov) == 2
    assert "a" in ov and "z" not in ov and ov.get("z") is None
    with pytest.raises(UnknownOverlayError):
        ov["z"]
    assert ov == OverlaySet.of([overlay("a"), overlay("b")])
    assert hash(ov) == hash(OverlaySet.of([overlay("a"), overlay("b")]))
    with pytest.raises(AttributeError):
        ov.overlays = ()  # type: ignore[misc]


def test_the_set_refuses_two_overlays_of_one_name() -> None:
    with pytest.raises(InvalidOverlayError, match="two overlays are named 'a'") as info:
        OverlaySet.of([overlay("a"), overlay("a", prompt="other")])
    assert info.value.reason_code == "duplicate_name"
    with pytest.raises(TypeError):
        OverlaySet.of(["a"])  # type: ignore[list-item]


def test_source_takes_no_part_in_equality() -> None:
    assert Overlay("a", "A.", source=Path("/x/a.yaml")) == Overlay("a", "A.")
