"""Where the Anthropic API key and endpoint come from (kept apart from the client, whose SDK
takes a second to import: a worker without a key never imports it).

>>> load_api_key({"ANTHROPIC_API_KEY": " sk-1 "})
'sk-1'
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from resontinex.app.exceptions import UsageError

__all__ = ["API_KEY_ENV", "API_KEY_FILE_ENV", "BASE_URL_ENV", "load_api_key"]

API_KEY_ENV = "ANTHROPIC_API_KEY"
API_KEY_FILE_ENV = "ANTHROPIC_API_KEY_FILE"
BASE_URL_ENV = "ANTHROPIC_BASE_URL"


def load_api_key(environ: Mapping[str, str] | None = None) -> str | None:
    """The API key from `$ANTHROPIC_API_KEY`, else the file `$ANTHROPIC_API_KEY_FILE` names;
    None when neither is set. An unreadable or empty file is a `UsageError` (naming the
    file, never its content)."""
    env = os.environ if environ is None else environ
    if env.get(API_KEY_ENV):
        return env[API_KEY_ENV].strip()
    path = env.get(API_KEY_FILE_ENV)
    if not path:
        return None
    try:
        key = Path(path).read_text().strip()
    except OSError as exc:
        raise UsageError(f"{API_KEY_FILE_ENV}: cannot read {path}: {exc.strerror}") from None
    if not key:
        raise UsageError(f"{API_KEY_FILE_ENV}: {path} is empty")
    return key
