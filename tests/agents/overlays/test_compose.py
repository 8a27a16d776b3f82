"""apply_overlay: the overlay's text, a blank line, then the base prompt."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resontinex.agents.overlays import SEPARATOR, UnknownOverlayError, apply_overlay, load_overlays, overlay_dirs

from ._support import overlay, overlay_set

OVERLAYS = load_overlays(overlay_dirs()).overlays


@pytest.mark.parametrize("name", ["rollback_first", "state_model_first", "observability_first"])
def test_each_packaged_overlay_goes_before_the_base_prompt(name: str) -> None:
    base = "Analyze this scenario and provide recommendations."
    composed = apply_overlay(base, name, OVERLAYS)
    assert composed == OVERLAYS[name].prompt.strip() + "\n\n" + base
    assert composed.index(OVERLAYS[name].prompt.strip()[:40]) == 0


def test_surrounding_whitespace_of_the_overlay_is_removed_the_prompt_kept_verbatim() -> None:
    ov = overlay_set(overlay("x", prompt="\n  Do X first.  \n\n"))
    assert apply_overlay("  keep  my\nspacing \n", "x", ov) == "Do X first.\n\n  keep  my\nspacing \n"


@pytest.mark.parametrize("empty", ["", "   ", "\n\t\n"])
def test_an_empty_base_prompt_gives_the_overlay_alone(empty: str) -> None:
    ov = overlay_set(overlay("x", prompt="Do X first.\n"))
    assert apply_overlay(empty, "x", ov) == "Do X first."


def test_an_unknown_name_is_a_clear_error_listing_the_known_ones() -> None:
    with pytest.raises(UnknownOverlayError) as info:
        apply_overlay("p", "speed_first", OVERLAYS)
    assert str(info.value) == ("unknown overlay 'speed_first' "
                               "(known: observability_first, rollback_first, state_model_first)")
    assert info.value.known == ("observability_first", "rollback_first", "state_model_first")
    assert isinstance(info.value, KeyError)
    with pytest.raises(UnknownOverlayError, match=r"known: none loaded"):
        apply_overlay("p", "rollback_first", {})
    with pytest.raises(UnknownOverlayError, match="'Rollback_First'"):
        apply_overlay("p", "Rollback_First", OVERLAYS)  # names are exact


def test_arguments_must_be_strings() -> None:
    with pytest.raises(TypeError, match="prompt must be a string"):
        apply_overlay(None, "rollback_first", OVERLAYS)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="overlay name must be a string"):
        apply_overlay("p", None, OVERLAYS)  # type: ignore[arg-type]


@given(st.text(min_size=1).filter(str.strip), st.sampled_from(["rollback_first", "state_model_first",
                                                               "observability_first"]))
def test_the_composition_is_overlay_separator_prompt(prompt: str, name: str) -> None:
    composed = apply_overlay(prompt, name, OVERLAYS)
    text = OVERLAYS[name].prompt.strip()
    assert composed == text + SEPARATOR + prompt
    assert composed.startswith(text) and composed.endswith(prompt)
    assert len(composed) == len(text) + 2 + len(prompt)
