"""Loading overlay files: one YAML file per overlay, from several directories.

File format (``<stem>.yaml`` or ``.yml``, UTF-8, at most `MAX_FILE_BYTES`)::

    name: rollback_first              # required; a-z, 0-9, _ (first a letter), ≤ 64 chars
    summary: Plan the way back first. # optional one-line description
    categories:                       # optional: scenario categories it is listed for
      primary: [financial, security]  #   +0.6 when the scenario's category is one of these
      secondary: [infrastructure]     #   +0.3
    complexity: [high]                # optional: levels (low, medium, high) → +0.2
    keywords:                         # optional: triggers, +0.05 per distinct hit (≤ 0.2)
      - rollback                      #   a trigger with one form
      - [refund, refunds, refunded]   #   a trigger with variants (counts once)
    prompt: |                         # required: the text put before the base prompt
      Before proposing any change, ...

No other keys are allowed (a misspelt key would silently change routing). Categories
and keyword forms are normalised (`agents.overlays.category_key`,
`agents.overlays.normalise_keyword`).

`load_overlays` reads the directories in order (the packaged one first, then the
user's, see `overlay_dirs`). Hidden files and files with other suffixes are ignored; a
directory that does not exist contributes nothing. A file that cannot be used is
**skipped** and reported as a `Rejection`; a skipped file is as if it were absent and
never stops the others from loading. Among the files accepted, a file in a later
directory replaces the earlier directories' overlay of the same ``name`` and the one
loaded from a file with the same stem (as a file in ``--config-dir`` replaces the
packaged file of the same name); it may also add new overlays. Two files of one
directory claiming the same ``name`` are both rejected (``duplicate_name``).

>>> loaded = load_overlays([PACKAGED_OVERLAYS_DIR])
>>> loaded.overlays.names, loaded.rejections
(('observability_first', 'rollback_first', 'state_model_first'), ())
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, NamedTuple

import yaml

from resontinex.config import PACKAGED_DIR

try:  # libyaml's parser when PyYAML was built with it
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # pragma: no cover
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]

from ._model import LEVELS, Keyword, Level, Overlay, OverlaySet, as_levels, category_key, normalise_keyword
from .exceptions import InvalidOverlayError

__all__ = [
    "FIELDS",
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "PACKAGED_OVERLAYS_DIR",
    "REASON_CODES",
    "REQUIRED_FIELDS",
    "SUFFIXES",
    "LoadResult",
    "Rejection",
    "load_overlays",
    "overlay_dirs",
    "overlay_from_mapping",
    "parse_overlay",
]

MAX_FILE_BYTES: Final = 1 << 20
"""1 MiB: a larger overlay file is rejected (``too_large``); exactly 1 MiB is accepted."""
SUFFIXES: Final = (".yaml", ".yml")
FIELDS: Final = ("name", "summary", "categories", "complexity", "keywords", "prompt")
REQUIRED_FIELDS: Final = ("name", "prompt")
PACKAGED_OVERLAYS_DIR: Final = PACKAGED_DIR / "overlays"
MAX_DEPTH: Final = 32
"""Deeper nesting of YAML lists and mappings is refused (``unparseable``) before parsing on."""
OVERLAYS_SUBDIR: Final = "overlays"

REASON_CODES: Final = (
    "not_a_directory",  # a listed directory path exists but is not a directory
    "unreadable",       # the directory or file could not be listed/read, or is not a regular file
    "too_large",        # more than MAX_FILE_BYTES
    "empty",            # no bytes, only whitespace, or a YAML document that is null (comments only)
    "not_utf8",         # bytes that are not UTF-8
    "unparseable",      # not YAML (syntax error, duplicate key, bad tag or scalar, nested too deep)
    "not_a_mapping",    # YAML, but its top level is not a mapping
    "missing_field",    # a required field is absent or null
    "unknown_field",    # a key outside FIELDS
    "invalid_field",    # a field of the wrong type or value
    "duplicate_name",   # another file of the same directory claims the same name
)
"""Every `Rejection.reason_code`, each a stable string for alerts and audit records."""


@dataclass(frozen=True, slots=True)
class Rejection:
    """An overlay file (or directory) that was skipped, and why.

    >>> Rejection(Path("/x/a.yaml"), "empty", "the file is empty").as_dict()
    {'path': '/x/a.yaml', 'reason_code': 'empty', 'message': 'the file is empty'}
    """

    path: Path
    reason_code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        """JSON-ready, for an alert's ``details`` or an audit ``record``: always encodable
        as UTF-8 (bytes of a file name that are not UTF-8 are shown as ``\\xNN``)."""
        return {"path": _printable(str(self.path)), "reason_code": self.reason_code,
                "message": _printable(self.message)}


def _printable(text: str) -> str:
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


class LoadResult(NamedTuple):
    """What `load_overlays` found: the usable overlays and the skipped files."""

    overlays: OverlaySet
    rejections: tuple[Rejection, ...]


def overlay_dirs(config_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """The directories to load, in order: the packaged one, then ``<config_dir>/overlays``.

    >>> [p.relative_to(PACKAGED_DIR.parent).as_posix() for p in overlay_dirs()]
    ['config/overlays']
    >>> overlay_dirs("/etc/resontinex")[1].as_posix()
    '/etc/resontinex/overlays'
    """
    dirs = [PACKAGED_OVERLAYS_DIR]
    if config_dir is not None:
        dirs.append(Path(config_dir) / OVERLAYS_SUBDIR)
    return dirs


class _StrictLoader(_BaseLoader):
    """Safe YAML that refuses a key given twice in one mapping (YAML would keep the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            seen: set[Any] = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                except TypeError:
                    continue  # unhashable: the base constructor reports it
                if duplicate:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping", node.start_mark, f"found duplicate key {key!r}",
                        key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _strings(field: str, raw: object) -> list[str]:
    if not isinstance(raw, list):
        raise InvalidOverlayError("invalid_field", field, f"must be a list, got {_kind(raw)}")
    for i, item in enumerate(raw):
        if not isinstance(item, str):
            raise InvalidOverlayError("invalid_field", f"{field}[{i}]", f"must be a string, got {_kind(item)}")
    return raw


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _categories(raw: object) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if raw is None:
        return (), ()
    if not isinstance(raw, Mapping):
        raise InvalidOverlayError("invalid_field", "categories", f"must be a mapping, got {_kind(raw)}")
    out: dict[str, tuple[str, ...]] = {"primary": (), "secondary": ()}
    for key, value in raw.items():
        if key not in out:
            raise InvalidOverlayError("unknown_field", f"categories.{key}", "unknown key (expected primary, secondary)")
        field = f"categories.{key}"
        names = []
        for i, item in enumerate(_strings(field, [] if value is None else value)):
            name = category_key(item)
            if not name:
                raise InvalidOverlayError("invalid_field", f"{field}[{i}]", f"{item!r} has no letters or digits")
            if name in names:
                raise InvalidOverlayError("invalid_field", f"{field}[{i}]", f"{name!r} is listed twice")
            names.append(name)
        out[key] = tuple(names)
    return out["primary"], out["secondary"]


def _complexity(raw: object) -> tuple[Level, ...]:
    if raw is None:
        return ()
    levels: list[str] = []
    for i, item in enumerate(_strings("complexity", raw)):
        level = item.strip().casefold()
        if level not in LEVELS:
            raise InvalidOverlayError("invalid_field", f"complexity[{i}]",
                                      f"{item!r} is not a level (expected one of {', '.join(LEVELS)})")
        if level in levels:
            raise InvalidOverlayError("invalid_field", f"complexity[{i}]", f"{level!r} is listed twice")
        levels.append(level)
    return as_levels(levels)


def _keywords(raw: object) -> tuple[Keyword, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise InvalidOverlayError("invalid_field", "keywords", f"must be a list, got {_kind(raw)}")
    owner: dict[str, int] = {}
    triggers: list[Keyword] = []
    for i, item in enumerate(raw):
        field = f"keywords[{i}]"
        if isinstance(item, str):
            forms = [item]
        elif isinstance(item, list) and item:
            forms = _strings(field, item)
        else:
            raise InvalidOverlayError("invalid_field", field,
                                      f"must be a string or a non-empty list of strings, got {_kind(item)}")
        for form in forms:
            if not normalise_keyword(form):
                raise InvalidOverlayError("invalid_field", field, f"{form!r} has no letters or digits")
        keyword = Keyword.of(*forms)
        for form in keyword.forms:
            if form in owner:
                raise InvalidOverlayError("invalid_field", field,
                                          f"{form!r} is already a form of keywords[{owner[form]}]")
            owner[form] = i
        triggers.append(keyword)
    return tuple(triggers)


def overlay_from_mapping(raw: object, source: Path | None = None) -> Overlay:
    """Validate one parsed overlay document; the first problem raises `InvalidOverlayError`.

    >>> o = overlay_from_mapping({"name": "audit_first", "prompt": "Cite the audit trail.",
    ...                           "categories": {"primary": ["Compliance"]},
    ...                           "complexity": ["High", "low"], "keywords": ["audit", ["SOX", "sarbanes-oxley"]]})
    >>> o.primary, o.complexity, [k.forms for k in o.keywords]
    (('compliance',), ('low', 'high'), [('audit',), ('sox', 'sarbanes oxley')])
    >>> overlay_from_mapping({"name": "x"})
    Traceback (most recent call last):
    ...
    resontinex.agents.overlays.exceptions.InvalidOverlayError: missing required field(s): prompt
    """
    if not isinstance(raw, Mapping):
        raise InvalidOverlayError("not_a_mapping", "", f"the document must be a mapping of fields, got {_kind(raw)}")
    unknown = [str(k) for k in raw if k not in FIELDS]
    if unknown:
        raise InvalidOverlayError("unknown_field", unknown[0],
                                  f"unknown field(s) {', '.join(map(repr, unknown))} (expected {', '.join(FIELDS)})")
    missing = [k for k in REQUIRED_FIELDS if raw.get(k) is None]
    if missing:
        raise InvalidOverlayError("missing_field", "", f"missing required field(s): {', '.join(missing)}")
    for key in ("name", "prompt", "summary"):
        value = raw.get(key, "")
        if not isinstance(value, str):
            raise InvalidOverlayError("invalid_field", key, f"must be a string, got {_kind(value)}")
    primary, secondary = _categories(raw.get("categories"))
    return Overlay(
        name=raw["name"],
        prompt=raw["prompt"],
        summary=raw.get("summary") or "",
        keywords=_keywords(raw.get("keywords")),
        complexity=_complexity(raw.get("complexity")),
        primary=primary,
        secondary=secondary,
        source=source,
    )


def parse_overlay(data: bytes, source: Path | None = None) -> Overlay:
    """One overlay from a file's bytes; any problem raises `InvalidOverlayError` whose
    ``reason_code`` is one of `REASON_CODES`.

    >>> parse_overlay(b"name: a\\nprompt: Do A first.\\n").prompt
    'Do A first.'
    >>> for bad in (b"", b"# nothing\\n", b"\\xff\\xfe", b"name: [unclosed", b"- a list", b"a: 1\\na: 2"):
    ...     try:
    ...         parse_overlay(bad)
    ...     except InvalidOverlayError as exc:
    ...         print(exc.reason_code)
    empty
    empty
    not_utf8
    unparseable
    not_a_mapping
    unparseable
    """
    if len(data) > MAX_FILE_BYTES:
        raise InvalidOverlayError("too_large", "", f"{len(data)} bytes, over the {MAX_FILE_BYTES}-byte limit")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidOverlayError("not_utf8", "",
                                  f"byte 0x{data[exc.start]:02x} at offset {exc.start} is not valid UTF-8") from None
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise InvalidOverlayError("empty", "", "the file is empty")
    try:
        _check_depth(text)
        raw = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a safe loader
    except InvalidOverlayError:
        raise
    except yaml.YAMLError as exc:
        raise InvalidOverlayError("unparseable", "", f"not valid YAML: {_one_line(exc)}") from None
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:  # scalars YAML cannot construct
        raise InvalidOverlayError("unparseable", "", f"not valid YAML: {type(exc).__name__}: {exc}") from None
    if raw is None:
        raise InvalidOverlayError("empty", "", "the file holds no YAML document (comments only)")
    return overlay_from_mapping(raw, source)


def _check_depth(text: str) -> None:
    """Refuse nesting deeper than `MAX_DEPTH` before building anything: libyaml's parser
    keeps its own stack, but composing a deeply nested document recurses in C and can
    overflow the process's stack (a segmentation fault, not an exception)."""
    depth = 0
    for event in yaml.parse(text, Loader=_BaseLoader):
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                mark = event.start_mark
                where = "" if mark is None else f" (line {mark.line + 1}, column {mark.column + 1})"
                raise InvalidOverlayError("unparseable", "", f"nested more than {MAX_DEPTH} levels deep{where}")
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            depth -= 1


def _one_line(exc: yaml.YAMLError) -> str:
    return " ".join(str(exc).split())


def _read(path: Path) -> bytes:
    """The file's bytes, never more than MAX_FILE_BYTES + 1 of them (to tell it is too large)."""
    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode):
        raise InvalidOverlayError("unreadable", "", "not a regular file")
    if info.st_size > MAX_FILE_BYTES:
        raise InvalidOverlayError("too_large", "", f"{info.st_size} bytes, over the {MAX_FILE_BYTES}-byte limit")
    with open(path, "rb") as fh:
        return fh.read(MAX_FILE_BYTES + 1)  # it may have grown since the stat


def _load_file(path: Path) -> Overlay | Rejection:
    try:
        return parse_overlay(_read(path), path)
    except InvalidOverlayError as exc:
        return Rejection(path, exc.reason_code, str(exc))
    except OSError as exc:
        return Rejection(path, "unreadable", f"cannot read: {exc.strerror or exc}")


def _load_dir(directory: Path) -> tuple[list[Overlay], list[Rejection]]:
    try:
        if not directory.exists():
            return [], []
        if not directory.is_dir():
            return [], [Rejection(directory, "not_a_directory", "an overlay directory path that is not a directory")]
        with os.scandir(directory) as it:
            names = sorted(e.name for e in it)
    except OSError as exc:
        return [], [Rejection(directory, "unreadable", f"cannot list the directory: {exc.strerror or exc}")]
    loaded: list[Overlay] = []
    rejected: list[Rejection] = []
    for name in names:
        if name.startswith(".") or not name.lower().endswith(SUFFIXES):
            continue
        result = _load_file(directory / name)
        (loaded if isinstance(result, Overlay) else rejected).append(result)  # type: ignore[arg-type]
    claims: dict[str, list[Overlay]] = {}
    for overlay in loaded:
        claims.setdefault(overlay.name, []).append(overlay)
    accepted = []
    for overlay in loaded:
        rivals = [o for o in claims[overlay.name] if o is not overlay]
        if rivals:
            others = ", ".join(o.source.name for o in rivals if o.source is not None)
            rejected.append(Rejection(overlay.source or directory, "duplicate_name",
                                      f"name {overlay.name!r} is also claimed by {others} in the same "
                                      f"directory: none of them is loaded from it"))
        else:
            accepted.append(overlay)
    rejected.sort(key=lambda r: r.path.name)
    return accepted, rejected


def load_overlays(directories: Iterable[str | os.PathLike[str]]) -> LoadResult:
    """Load every overlay file of ``directories`` (in order; see the module doc for
    precedence). Never raises because of a file's content or a directory's state: those
    become rejections. Raises `TypeError` only when ``directories`` is not an iterable of
    paths (a single path, None).

    >>> load_overlays(None)
    Traceback (most recent call last):
    ...
    TypeError: load_overlays takes a list of directories, got NoneType
    """
    if isinstance(directories, (str, bytes, os.PathLike)) or not isinstance(directories, Iterable):
        raise TypeError(f"load_overlays takes a list of directories, got {type(directories).__name__}")
    paths = [Path(d) for d in directories]
    chosen: dict[str, Overlay] = {}
    rejections: list[Rejection] = []
    for directory in paths:
        accepted, rejected = _load_dir(directory)
        rejections.extend(rejected)
        stems = {o.source.stem for o in accepted if o.source is not None}
        for name, old in list(chosen.items()):  # earlier directories' files of the same stem
            if old.source is not None and old.source.stem in stems:
                del chosen[name]
        for overlay in accepted:
            chosen[overlay.name] = overlay  # and earlier overlays of the same name
    return LoadResult(OverlaySet.of(chosen.values()), tuple(rejections))
