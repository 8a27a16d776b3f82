"""The loader against real files: bad files are skipped and reported, the rest keep working."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resontinex.agents.overlays import (
    MAX_DEPTH,
    MAX_FILE_BYTES,
    PACKAGED_OVERLAYS_DIR,
    REASON_CODES,
    InvalidOverlayError,
    LoadResult,
    Rejection,
    load_overlays,
    overlay_dirs,
    parse_overlay,
    select_overlay,
)

from ._support import document, write_bytes, write_yaml


def reasons(result: LoadResult) -> dict[str, str]:
    return {r.path.name: r.reason_code for r in result.rejections}


@pytest.fixture
def good_dir(tmp_path: Path) -> Path:
    d = tmp_path / "overlays"
    write_yaml(d, "good.yaml", document("good"))
    return d


def test_a_valid_file_loads_with_every_field(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "audit_first.yaml", {
        "name": "audit_first", "summary": "Evidence first.", "prompt": "Cite the evidence first.\n",
        "categories": {"primary": ["Compliance", "legal ops"], "secondary": ["financial"]},
        "complexity": ["high", "LOW"], "keywords": ["audit", ["SOX", "sarbanes-oxley"], "evidence"]})
    result = load_overlays([tmp_path])
    assert result.rejections == ()
    o = result.overlays["audit_first"]
    assert (o.summary, o.prompt, o.primary, o.secondary, o.complexity) == (
        "Evidence first.", "Cite the evidence first.\n", ("compliance", "legal_ops"), ("financial",), ("low", "high"))
    assert [k.forms for k in o.keywords] == [("audit",), ("sox", "sarbanes oxley"), ("evidence",)]
    assert o.source == path


def test_corrupt_yaml_is_skipped_and_reported_the_rest_load(good_dir: Path) -> None:
    write_bytes(good_dir, "broken.yaml", b"name: broken\nprompt: [unclosed\nkeywords: {\n")
    result = load_overlays([good_dir])
    assert result.overlays.names == ("good",)
    [rej] = result.rejections
    assert (rej.path, rej.reason_code) == (good_dir / "broken.yaml", "unparseable")
    assert "not valid YAML" in rej.message and "line" in rej.message


@pytest.mark.parametrize("content", [b"", b"   \n\t\n", b"# only a comment\n", b"---\n...\n", b"~\n"])
def test_an_empty_file_is_skipped_and_reported(good_dir: Path, content: bytes) -> None:
    write_bytes(good_dir, "empty.yaml", content)
    result = load_overlays([good_dir])
    assert result.overlays.names == ("good",)
    assert reasons(result) == {"empty.yaml": "empty"}


def padded(doc: dict[str, object], size: int) -> bytes:
    """A valid overlay document padded with a YAML comment to exactly ``size`` bytes."""
    head = yaml.safe_dump(doc).encode("utf-8") + b"#"
    return head + b"x" * (size - len(head) - 1) + b"\n"


def test_one_mib_plus_one_byte_is_too_large_and_exactly_one_mib_loads(good_dir: Path) -> None:
    write_bytes(good_dir, "big.yaml", padded(document("big"), MAX_FILE_BYTES + 1))
    write_bytes(good_dir, "limit.yaml", padded(document("limit"), MAX_FILE_BYTES))
    assert (good_dir / "big.yaml").stat().st_size == 1024 * 1024 + 1
    assert (good_dir / "limit.yaml").stat().st_size == 1024 * 1024
    result = load_overlays([good_dir])
    assert result.overlays.names == ("good", "limit")
    [rej] = result.rejections
    assert (rej.path.name, rej.reason_code) == ("big.yaml", "too_large")
    assert "1048577 bytes" in rej.message


def test_non_utf8_bytes_are_skipped_and_reported(good_dir: Path) -> None:
    write_bytes(good_dir, "latin1.yaml", "name: caf\u00e9\nprompt: d\u00e9j\u00e0 vu\n".encode("latin-1"))
    result = load_overlays([good_dir])
    assert result.overlays.names == ("good",)
    [rej] = result.rejections
    assert rej.reason_code == "not_utf8"
    assert "byte 0xe9 at offset 9" in rej.message


def test_a_utf8_bom_and_the_yml_suffix_are_accepted(tmp_path: Path) -> None:
    write_bytes(tmp_path, "bom.yml", "\ufeffname: bom\nprompt: Köln first.\n".encode())
    result = load_overlays([tmp_path])
    assert result.rejections == ()
    assert result.overlays["bom"].prompt == "Köln first."


@pytest.mark.parametrize(("doc", "missing"), [
    ({"prompt": "p"}, "name"),
    ({"name": "x"}, "prompt"),
    ({"name": "x", "prompt": None}, "prompt"),
    ({"summary": "s", "keywords": ["a"]}, "name, prompt"),
])
def test_missing_required_fields_are_named(good_dir: Path, doc: dict[str, object], missing: str) -> None:
    write_yaml(good_dir, "partial.yaml", doc)
    result = load_overlays([good_dir])
    assert result.overlays.names == ("good",)
    [rej] = result.rejections
    assert rej.reason_code == "missing_field"
    assert rej.message == f"missing required field(s): {missing}"


@pytest.mark.parametrize(("doc", "code", "field"), [
    (["name", "prompt"], "not_a_mapping", ""),
    ("just text", "not_a_mapping", ""),
    (document("x", keyword=["typo"]), "unknown_field", "keyword"),
    (document("x", categories={"primary": ["a"], "tertiary": ["b"]}), "unknown_field", "categories.tertiary"),
    (document("Bad-Name"), "invalid_field", "name"),
    (document("x", prompt="   \n"), "invalid_field", "prompt"),
    (document("x", prompt=42), "invalid_field", "prompt"),
    (document("x", summary=["a"]), "invalid_field", "summary"),
    (document("x", keywords="refund"), "invalid_field", "keywords"),
    (document("x", keywords=["ok", 7]), "invalid_field", "keywords[1]"),
    (document("x", keywords=["ok", []]), "invalid_field", "keywords[1]"),
    (document("x", keywords=["ok", "!!"]), "invalid_field", "keywords[1]"),
    (document("x", keywords=["refund", ["refunds", "Refund"]]), "invalid_field", "keywords[1]"),
    (document("x", complexity="high"), "invalid_field", "complexity"),
    (document("x", complexity=["extreme"]), "invalid_field", "complexity[0]"),
    (document("x", complexity=["high", "HIGH"]), "invalid_field", "complexity[1]"),
    (document("x", categories=["financial"]), "invalid_field", "categories"),
    (document("x", categories={"primary": "financial"}), "invalid_field", "categories.primary"),
    (document("x", categories={"primary": ["Financial", "financial"]}), "invalid_field", "categories.primary[1]"),
    (document("x", categories={"primary": ["ops"], "secondary": ["OPS"]}), "invalid_field", "categories"),
])
def test_invalid_documents_are_rejected_with_a_precise_reason(good_dir: Path, doc: object, code: str,
                                                              field: str) -> None:
    write_yaml(good_dir, "bad.yaml", doc)
    result = load_overlays([good_dir])
    assert result.overlays.names == ("good",)
    [rej] = result.rejections
    assert rej.reason_code == code
    if field:
        assert rej.message.startswith(f"{field}: ") or f"'{field}'" in rej.message
    with pytest.raises(InvalidOverlayError) as info:
        parse_overlay((good_dir / "bad.yaml").read_bytes())
    assert (info.value.reason_code, info.value.field) == (code, field)


@pytest.mark.parametrize("text", [
    "name: a\nprompt: p\nname: b\n",                        # a key twice: YAML would keep the last
    "name: a\nprompt: p\nwhen: 2024-13-45\n",                # a timestamp YAML cannot construct
    "name: a\nprompt: !!python/object:os.system ls\n",       # an unsafe tag
    "name: a\nprompt: p\n\tkeywords: [a]\n",                 # a tab
    "name: a\nprompt: p\nkeywords: " + "[" * 33 + "]" * 33,  # nested too deep
])
def test_yaml_that_cannot_be_constructed_safely_is_unparseable(tmp_path: Path, text: str) -> None:
    write_bytes(tmp_path, "x.yaml", text.encode())
    result = load_overlays([tmp_path])
    assert len(result.overlays) == 0
    assert reasons(result) == {"x.yaml": "unparseable"}


def test_a_megabyte_of_nesting_is_refused_before_it_can_overflow_the_stack(good_dir: Path) -> None:
    # composing this with libyaml recurses in C: without the depth check the process dies (SIGSEGV)
    n = MAX_FILE_BYTES // 2
    write_bytes(good_dir, "deep.yaml", b"[" * n + b"]" * n)
    write_bytes(good_dir, "deep_map.yaml", b"a: " + b"{b: " * 40_000 + b"1" + b"}" * 40_000)
    result = load_overlays([good_dir])
    assert result.overlays.names == ("good",)
    assert reasons(result) == {"deep.yaml": "unparseable", "deep_map.yaml": "unparseable"}
    # which parser refuses it first (PyYAML's scanner or the depth check) is not pinned: PyYAML
    # releases move their own limits


def test_nesting_one_level_past_the_limit_is_refused_by_the_depth_check(good_dir: Path) -> None:
    depth = MAX_DEPTH + 1  # shallow enough that PyYAML itself accepts it
    write_bytes(good_dir, "flow.yaml", b"a: " + b"[" * depth + b"]" * depth)
    block = "".join("  " * i + f"k{i}:\n" for i in range(depth)) + "  " * depth + "1\n"
    write_bytes(good_dir, "block.yaml", block.encode())
    result = load_overlays([good_dir])
    assert result.overlays.names == ("good",)
    assert reasons(result) == {"flow.yaml": "unparseable", "block.yaml": "unparseable"}
    assert all(f"nested more than {MAX_DEPTH} levels deep" in r.message for r in result.rejections)


def test_two_files_of_one_directory_claiming_a_name_are_both_rejected(good_dir: Path) -> None:
    write_yaml(good_dir, "one.yaml", document("twin"))
    write_yaml(good_dir, "two.yaml", document("twin", prompt="other"))
    result = load_overlays([good_dir])
    assert result.overlays.names == ("good",)
    assert reasons(result) == {"one.yaml": "duplicate_name", "two.yaml": "duplicate_name"}
    assert "also claimed by two.yaml" in result.rejections[0].message


def test_a_duplicate_in_the_user_dir_leaves_the_packaged_overlay_in_effect(tmp_path: Path) -> None:
    user = tmp_path / "overlays"
    write_yaml(user, "a.yaml", document("rollback_first"))
    write_yaml(user, "b.yaml", document("rollback_first"))
    result = load_overlays([PACKAGED_OVERLAYS_DIR, user])
    assert result.overlays["rollback_first"].source == PACKAGED_OVERLAYS_DIR / "rollback_first.yaml"
    assert reasons(result) == {"a.yaml": "duplicate_name", "b.yaml": "duplicate_name"}


def test_the_user_dir_replaces_by_file_name_and_by_name_and_adds(tmp_path: Path) -> None:
    user = tmp_path / "overlays"
    write_yaml(user, "rollback_first.yaml", document("rollback_first", prompt="OUR ROLLBACK POLICY.",
                                                     categories={"primary": ["financial"]}))
    write_yaml(user, "my_state_model.yaml", document("state_model_first", prompt="OUR STATE MODEL."))
    write_yaml(user, "cost_first.yaml", document("cost_first", prompt="COST FIRST.", keywords=["spend"],
                                                 categories={"primary": ["finops"]}))
    result = load_overlays(overlay_dirs(tmp_path))
    assert result.rejections == ()
    ov = result.overlays
    assert ov.names == ("cost_first", "observability_first", "rollback_first", "state_model_first")
    assert ov["rollback_first"].prompt == "OUR ROLLBACK POLICY."
    assert ov["rollback_first"].source == user / "rollback_first.yaml"
    assert ov["state_model_first"].prompt == "OUR STATE MODEL."
    assert ov["observability_first"].source == PACKAGED_OVERLAYS_DIR / "observability_first.yaml"
    # the replaced rollback_first no longer lists security; the added overlay routes
    assert ov.category_map()["security"] == ("observability_first",)
    choice = select_overlay({"category": "finops", "description": "cut spend"}, ov)
    assert choice is not None and (choice.name, choice.confidence) == ("cost_first", 0.65)


def test_a_user_file_of_the_same_stem_replaces_the_packaged_one_even_under_another_name(tmp_path: Path) -> None:
    user = tmp_path / "overlays"
    write_yaml(user, "rollback_first.yaml", document("rollback_v2"))
    result = load_overlays(overlay_dirs(tmp_path))
    assert result.overlays.names == ("observability_first", "rollback_v2", "state_model_first")


def test_a_bad_user_file_is_skipped_so_the_packaged_one_stays(tmp_path: Path) -> None:
    user = tmp_path / "overlays"
    write_bytes(user, "rollback_first.yaml", b"\x00\xff not yaml")
    result = load_overlays(overlay_dirs(tmp_path))
    assert result.overlays["rollback_first"].source == PACKAGED_OVERLAYS_DIR / "rollback_first.yaml"
    assert [(r.path, r.reason_code) for r in result.rejections] == [(user / "rollback_first.yaml", "not_utf8")]


def test_one_file_per_problem_all_reported_in_order_the_good_ones_work(tmp_path: Path) -> None:
    d = tmp_path / "overlays"
    write_yaml(d, "a_good.yaml", document("a_good"))
    write_bytes(d, "b_corrupt.yaml", b"name: [\n")
    write_bytes(d, "c_empty.yaml", b"")
    write_bytes(d, "d_big.yaml", b"#" * (MAX_FILE_BYTES + 1))
    write_bytes(d, "e_latin.yaml", b"name: \xe9\n")
    write_yaml(d, "f_partial.yaml", {"name": "f"})
    write_yaml(d, "z_good.yml", document("z_good"))
    result = load_overlays([d])
    assert result.overlays.names == ("a_good", "z_good")
    assert [(r.path.name, r.reason_code) for r in result.rejections] == [
        ("b_corrupt.yaml", "unparseable"), ("c_empty.yaml", "empty"), ("d_big.yaml", "too_large"),
        ("e_latin.yaml", "not_utf8"), ("f_partial.yaml", "missing_field")]
    assert all(r.reason_code in REASON_CODES for r in result.rejections)
    assert json.loads(json.dumps([r.as_dict() for r in result.rejections]))[0] == {
        "path": str(d / "b_corrupt.yaml"), "reason_code": "unparseable",
        "message": result.rejections[0].message}


def test_a_file_name_that_is_not_utf8_is_reported_in_encodable_text(tmp_path: Path) -> None:
    d = tmp_path / "overlays"
    d.mkdir()
    with open(os.path.join(os.fsencode(d), b"caf\xe9.yaml"), "wb") as fh:
        fh.write(b"name: [")
    [rej] = load_overlays([d]).rejections
    assert rej.reason_code == "unparseable"
    shown = rej.as_dict()
    assert shown["path"].endswith("caf\\xe9.yaml")
    json.dumps(shown, ensure_ascii=False).encode("utf-8")  # no lone surrogate left


def test_other_files_hidden_files_and_folders_without_the_suffix_are_ignored(good_dir: Path) -> None:
    write_bytes(good_dir, "README.md", b"\xff not an overlay")
    write_bytes(good_dir, ".draft.yaml", b"{{{")
    write_bytes(good_dir, "notes.yaml.bak", b"{{{")
    (good_dir / "archive").mkdir()
    write_yaml(good_dir / "archive", "old.yaml", document("old"))
    result = load_overlays([good_dir])
    assert (result.overlays.names, result.rejections) == (("good",), ())


def test_a_folder_or_a_fifo_named_like_an_overlay_is_unreadable_without_blocking(good_dir: Path) -> None:
    (good_dir / "folder.yaml").mkdir()
    os.mkfifo(good_dir / "pipe.yaml")
    result = load_overlays([good_dir])
    assert result.overlays.names == ("good",)
    assert reasons(result) == {"folder.yaml": "unreadable", "pipe.yaml": "unreadable"}


def test_a_dangling_symlink_is_unreadable(good_dir: Path) -> None:
    (good_dir / "gone.yaml").symlink_to(good_dir / "nowhere.yaml")
    result = load_overlays([good_dir])
    assert result.overlays.names == ("good",)
    assert reasons(result) == {"gone.yaml": "unreadable"}


def test_missing_directories_contribute_nothing_and_a_file_path_is_reported(tmp_path: Path) -> None:
    assert load_overlays([tmp_path / "absent"]) == LoadResult(load_overlays([]).overlays, ())
    not_dir = write_bytes(tmp_path, "file", b"x")
    result = load_overlays([PACKAGED_OVERLAYS_DIR, not_dir])
    assert len(result.overlays) == 3
    assert result.rejections == (Rejection(not_dir, "not_a_directory",
                                           "an overlay directory path that is not a directory"),)


@pytest.mark.parametrize("bad", [None, "config/overlays", b"config", Path("config/overlays"), 7])
def test_only_a_list_of_directories_is_accepted(bad: object) -> None:
    with pytest.raises(TypeError, match="list of directories"):
        load_overlays(bad)  # type: ignore[arg-type]


def test_overlay_dirs_puts_the_packaged_dir_first_and_the_users_after() -> None:
    assert overlay_dirs() == [PACKAGED_OVERLAYS_DIR]
    assert overlay_dirs(Path("/etc/rx")) == [PACKAGED_OVERLAYS_DIR, Path("/etc/rx/overlays")]
    assert PACKAGED_OVERLAYS_DIR.parent.joinpath("energy_governance.yaml").is_file()


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=400) | st.text(max_size=300).map(str.encode))
def test_loading_never_raises_whatever_the_bytes(tmp_path: Path, data: bytes) -> None:
    d = tmp_path / "fuzz"
    write_yaml(d, "good.yaml", document("good"))
    write_bytes(d, "fuzz.yaml", data)
    result = load_overlays([d])
    assert "good" in result.overlays
    assert len(result.overlays) + len(result.rejections) == 2
    assert all(r.reason_code in REASON_CODES and r.message for r in result.rejections)


scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.fixed_dictionaries({}, optional={
    "name": json_values | st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True),
    "prompt": json_values, "summary": json_values, "keywords": json_values,
    "complexity": json_values | st.lists(st.sampled_from(["low", "medium", "high", "x"]), max_size=4),
    "categories": json_values}))
def test_any_document_shape_loads_or_is_rejected_with_a_known_reason(tmp_path: Path, doc: dict[str, object]) -> None:
    d = tmp_path / "shapes"
    write_yaml(d, "doc.yaml", doc)
    result = load_overlays([d])
    assert len(result.overlays) + len(result.rejections) == 1
    for r in result.rejections:
        assert r.reason_code in REASON_CODES
