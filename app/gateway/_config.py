"""`gateway.yaml`: who may call the gateway, and its limits.

Tokens are stored as their SHA-256 (hex), each with the one tenant it may write::

    tokens:
      - {tenant: acme, sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08}
    max_body_bytes: 524288      # a larger request body is answered 413 (the workers take 512 KiB at most)
    decide_timeout_s: 5.0       # how long POST /v1/decide waits for the decision by default
    max_decide_timeout_s: 30.0  # the most a caller may ask for (?timeout_s=)
    recent_decisions: 100000    # decisions kept for GET /v1/decisions/{id} and repeated requests
    lookback: 10000             # decisions per partition read back at start

`resontinex gateway token --tenant acme` makes a token and prints its line. A token is a
random 256-bit secret, so its plain SHA-256 is as good as a slow hash here: nobody can
guess a token from it.

>>> cfg = gateway_config_from({"tokens": [{"tenant": "acme", "sha256": token_digest("s3cret")}]})
>>> cfg.tenant_of("Bearer s3cret"), cfg.tenant_of("Bearer wrong"), cfg.tenant_of(None)
('acme', None, None)
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .exceptions import GatewayConfigError

__all__ = ["GatewayConfig", "add_token", "gateway_config_from", "load_gateway_config", "new_token", "token_digest"]

TOKEN_PREFIX = "rtx_"


class _Token(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tenant: str = Field(min_length=1, max_length=128)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    name: str | None = None


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tokens: list[_Token] = []
    max_body_bytes: int = Field(524_288, ge=1024)
    decide_timeout_s: float = Field(5.0, ge=0, le=600)
    max_decide_timeout_s: float = Field(30.0, ge=0, le=600)
    recent_decisions: int = Field(100_000, ge=1)
    lookback: int = Field(10_000, ge=0)

    @field_validator("tokens")
    @classmethod
    def _unique(cls, tokens: list[_Token]) -> list[_Token]:
        seen: set[str] = set()
        for t in tokens:
            if t.sha256 in seen:
                raise ValueError(f"the token {t.sha256[:12]}… is listed twice")
            seen.add(t.sha256)
        return tokens


@dataclass(frozen=True)
class GatewayConfig:
    tenants: Mapping[str, str] = field(default_factory=dict)
    """Token digest → the tenant its token may write."""
    max_body_bytes: int = 524_288
    decide_timeout_s: float = 5.0
    max_decide_timeout_s: float = 30.0
    recent_decisions: int = 100_000
    lookback: int = 10_000

    def tenant_of(self, authorization: str | None) -> str | None:
        """The tenant of an `Authorization: Bearer <token>` header; None for no or an unknown token."""
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return self.tenants.get(token_digest(token.strip()))


def token_digest(token: str) -> str:
    """The SHA-256 of a token, as `gateway.yaml` stores it.

    >>> token_digest("test")
    '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08'
    """
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A fresh random token (256 bits).

    >>> t = new_token(); t.startswith("rtx_"), len(t) > 40
    (True, True)
    """
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def gateway_config_from(data: Any) -> GatewayConfig:
    """Validate a parsed `gateway.yaml` (None: the defaults, no token).

    >>> gateway_config_from({"max_body_bytes": 10})
    Traceback (most recent call last):
    resontinex.app.gateway.exceptions.GatewayConfigError: max_body_bytes: Input should be greater than or equal to 1024
    """
    try:
        parsed = _File.model_validate(data or {})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise GatewayConfigError(f"{where}: {first['msg']}") from None
    if parsed.decide_timeout_s > parsed.max_decide_timeout_s:
        raise GatewayConfigError("decide_timeout_s: above max_decide_timeout_s")
    return GatewayConfig(tenants={t.sha256: t.tenant for t in parsed.tokens}, max_body_bytes=parsed.max_body_bytes,
                         decide_timeout_s=parsed.decide_timeout_s, max_decide_timeout_s=parsed.max_decide_timeout_s,
                         recent_decisions=parsed.recent_decisions, lookback=parsed.lookback)


def load_gateway_config(path: str | os.PathLike[str]) -> GatewayConfig:
    """Read and validate the file; a missing file gives the defaults (no token: every call is refused)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        return GatewayConfig()
    except (OSError, yaml.YAMLError) as exc:
        raise GatewayConfigError(f"{path}: {exc}") from None
    try:
        return gateway_config_from(data)
    except GatewayConfigError as exc:
        raise GatewayConfigError(f"{path}: {exc}") from None


def add_token(path: str | os.PathLike[str], entry: dict[str, str]) -> None:
    """Add one `tokens` entry to the file (created when missing); the file must stay valid.

    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "gateway.yaml"
    >>> add_token(f, {"tenant": "acme", "sha256": token_digest("t")})
    >>> load_gateway_config(f).tenant_of("Bearer t")
    'acme'
    """
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    except FileNotFoundError:
        data = {}
    except (OSError, yaml.YAMLError) as exc:
        raise GatewayConfigError(f"{path}: {exc}") from None
    if not isinstance(data, dict):
        raise GatewayConfigError(f"{path}: (top level): not a mapping")
    data["tokens"] = [*(data.get("tokens") or []), entry]
    try:
        gateway_config_from(data)
    except GatewayConfigError as exc:
        raise GatewayConfigError(f"{path}: {exc}") from None
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            yaml.safe_dump(data, f, sort_keys=False)
    except OSError as exc:
        raise GatewayConfigError(f"{path}: {exc}") from None
