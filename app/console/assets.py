"""The console's static files, shipped as package data and read once with importlib.resources.

>>> body, content_type = load()["index.html"]
>>> content_type, b"<title>" in body
('text/html; charset=utf-8', True)
>>> sorted(load())
['console.css', 'console.js', 'index.html', 'prom.js']
"""

from __future__ import annotations

from importlib.resources import files

__all__ = ["CONTENT_TYPES", "load"]

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
"""The content type of each kind of file served; a file of another kind is not served."""


def load() -> dict[str, tuple[bytes, str]]:
    """Every file of `static/` with a known suffix: name → (bytes, content type)."""
    out = {}
    for entry in files(__package__).joinpath("static").iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1] if "." in entry.name else ""
        if entry.is_file() and suffix in CONTENT_TYPES:
            out[entry.name] = (entry.read_bytes(), CONTENT_TYPES[suffix])
    return out
