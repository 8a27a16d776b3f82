"""The console's files: shipped as package data, served with their content types, and the
page refers to nothing outside the worker."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from resontinex.app.console import assets

REPO = Path(__file__).resolve().parents[3]


def test_every_file_the_page_loads_is_served_with_its_content_type() -> None:
    files = assets.load()
    page = files["index.html"][0].decode()
    refs = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert refs and all(r.startswith("/ui/static/") or r == "data:," for r in refs), refs
    for ref in refs:
        if ref.startswith("/ui/static/"):
            name = ref.removeprefix("/ui/static/")
            assert name in files
            assert files[name][1] == {"js": "text/javascript; charset=utf-8", "css": "text/css; charset=utf-8"}[
                name.rsplit(".", 1)[1]]


def test_nothing_is_fetched_from_another_origin() -> None:
    for name, (body, _) in assets.load().items():
        text = body.decode()
        assert not re.search(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text.replace("http://www.w3.org/2000/svg", "")), name


def test_the_static_files_are_package_data() -> None:
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns = setuptools["package-data"]["resontinex.app.console"]
    suffixes = {p.rsplit(".", 1)[1] for p in patterns}
    assert {name.rsplit(".", 1)[1] for name in assets.load()} <= suffixes
    assert set(assets.CONTENT_TYPES) == {"." + s for s in suffixes}
