"""The packaged `config/overlays/`: loads clean, follows the issue's category map, ≥ 26 triggers."""

from __future__ import annotations

from pathlib import Path

import yaml

from resontinex.agents.overlays import (
    PACKAGED_OVERLAYS_DIR,
    keyword_hits,
    load_overlays,
    overlay_dirs,
    parse_overlay,
    select_overlay,
)
from resontinex.app.settings import Settings

from ._support import ISSUE_CATEGORY_MAP

REPO_OVERLAYS = Path(__file__).resolve().parents[3] / "config" / "overlays"
LOADED = load_overlays([PACKAGED_OVERLAYS_DIR])
OVERLAYS = LOADED.overlays


def test_the_packaged_dir_is_the_repository_config_overlays() -> None:
    assert PACKAGED_OVERLAYS_DIR == REPO_OVERLAYS
    assert sorted(p.name for p in REPO_OVERLAYS.iterdir()) == [
        "observability_first.yaml", "rollback_first.yaml", "state_model_first.yaml"]


def test_it_loads_the_three_overlays_with_no_rejection() -> None:
    assert LOADED.rejections == ()
    assert OVERLAYS.names == ("observability_first", "rollback_first", "state_model_first")
    for name, overlay in OVERLAYS.items():
        assert overlay.source == REPO_OVERLAYS / f"{name}.yaml"


def test_the_category_map_is_the_issues() -> None:
    assert OVERLAYS.category_map() == ISSUE_CATEGORY_MAP


def test_complexity_listing_follows_the_reference_high_and_low_levels() -> None:
    assert {n: o.complexity for n, o in OVERLAYS.items()} == {
        "rollback_first": ("high",), "state_model_first": ("high",), "observability_first": ("low",)}


def test_at_least_26_distinct_keyword_triggers() -> None:
    triggers = OVERLAYS.triggers()
    assert len(triggers) >= 26
    assert sum(len(o.keywords) for o in OVERLAYS.values()) == len(triggers)  # no trigger in two overlays
    for word in ("refund", "rollback", "migration", "schema", "audit", "compliance", "latency", "outage", "monitor"):
        assert word in triggers


def test_every_trigger_routes_to_its_overlay() -> None:
    for name, overlay in OVERLAYS.items():
        for keyword in overlay.keywords:
            for form in keyword.forms:
                assert keyword_hits(f"please handle the {form.upper()} now", overlay.keywords) == (keyword.term,)
                choice = select_overlay({"description": f"the {form} step"}, OVERLAYS)
                assert choice is not None and (choice.name, choice.confidence) == (name, 0.05)


def test_prompts_say_what_to_do_first() -> None:
    firsts = {"rollback_first": "ROLLBACK FIRST.", "state_model_first": "STATE MODEL FIRST.",
              "observability_first": "OBSERVABILITY FIRST."}
    for name, overlay in OVERLAYS.items():
        assert overlay.prompt.startswith(firsts[name])
        assert len(overlay.prompt) > 500
        assert "Only then" in overlay.prompt
        assert overlay.summary


def test_the_files_are_plain_safe_yaml_with_the_documented_fields() -> None:
    for path in sorted(REPO_OVERLAYS.glob("*.yaml")):
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert raw["name"] == path.stem
        assert set(raw) == {"name", "summary", "categories", "complexity", "keywords", "prompt"}
        assert parse_overlay(path.read_bytes(), path) == OVERLAYS[path.stem]


def test_the_settings_config_dir_feeds_the_user_overlays_dir(tmp_path: Path) -> None:
    (tmp_path / "overlays").mkdir()
    (tmp_path / "overlays" / "observability_first.yaml").write_text(
        "name: observability_first\nprompt: OUR DASHBOARDS FIRST.\n", encoding="utf-8")
    settings = Settings.from_env({}, config_dir=str(tmp_path))
    result = load_overlays(overlay_dirs(settings.config_dir))
    assert result.rejections == ()
    assert result.overlays["observability_first"].prompt == "OUR DASHBOARDS FIRST."
    # the replacement lists no category: compliance now routes to its secondary
    choice = select_overlay({"category": "compliance"}, result.overlays)
    assert choice is not None and (choice.name, choice.confidence) == ("state_model_first", 0.3)
    assert load_overlays(overlay_dirs(Settings.from_env({}).config_dir)) == LOADED
