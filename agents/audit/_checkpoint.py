"""Signed checkpoints: a partition's chain head, signed with Ed25519.

A `checkpoint` record is an ordinary link of the chain whose `record` says which head it
vouches for (the `seq` and `hash` of the record before it) and carries an Ed25519
signature over the RFC 8785 canonical JSON of `{"partition", "seq", "hash"}`. Anyone with
the public key can check, offline, that the chain up to that record is the one the
writer signed: a forger who rewrites history and re-hashes the chain cannot re-sign it.

>>> from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
>>> key = Ed25519PrivateKey.generate()
>>> body = checkpoint_body(key, partition=3, seq=41, head_hash="ab" * 32)
>>> checkpoint_problem(body, key.public_key(), partition=3, seq=41, head_hash="ab" * 32) is None
True
>>> checkpoint_problem(body, key.public_key(), partition=3, seq=41, head_hash="cd" * 32)
'the checkpoint vouches for seq 41 with another hash than the chain has there'
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .exceptions import SigningKeyError

ALGORITHM: Final = "ed25519"
KEY_ENV: Final = "RESONTINEX_AUDIT_SIGNING_KEY"
KEY_FILE_ENV: Final = "RESONTINEX_AUDIT_SIGNING_KEY_FILE"


def signed_bytes(partition: int, seq: int, head_hash: str) -> bytes:
    """What a checkpoint signs: `{"hash", "partition", "seq"}` as RFC 8785 JSON."""
    return rfc8785.dumps({"partition": partition, "seq": seq, "hash": head_hash})


def key_id(public_key: Ed25519PublicKey) -> str:
    """The first 16 hex digits of the SHA-256 of the raw public key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def checkpoint_body(key: Ed25519PrivateKey, *, partition: int, seq: int, head_hash: str) -> dict[str, Any]:
    """The `record` of a checkpoint vouching for the chain up to `seq` (whose hash is `head_hash`)."""
    signature = key.sign(signed_bytes(partition, seq, head_hash))
    return {"partition": partition, "seq": seq, "hash": head_hash, "algorithm": ALGORITHM,
            "key_id": key_id(key.public_key()), "signature": base64.b64encode(signature).decode("ascii")}


def checkpoint_problem(body: Mapping[str, Any], public_key: Ed25519PublicKey, *, partition: int, seq: int,
                       head_hash: str) -> str | None:
    """What is wrong with a checkpoint found after record (`seq`, `head_hash`) of
    `partition`, or None when it vouches for exactly that under `public_key`."""
    if body.get("algorithm") != ALGORITHM:
        return f"unknown signature algorithm {body.get('algorithm')!r}"
    if body.get("partition") != partition:
        return f"the checkpoint is for partition {body.get('partition')!r}, found in partition {partition}"
    if body.get("seq") != seq:
        return f"the checkpoint vouches for seq {body.get('seq')!r}, but follows seq {seq}"
    if body.get("hash") != head_hash:
        return f"the checkpoint vouches for seq {seq} with another hash than the chain has there"
    if body.get("key_id") != key_id(public_key):
        return f"signed with key {body.get('key_id')!r}, not with the public key given ({key_id(public_key)})"
    try:
        signature = base64.b64decode(str(body.get("signature", "")), validate=True)
        public_key.verify(signature, signed_bytes(partition, seq, head_hash))
    except (InvalidSignature, binascii.Error, ValueError):
        return "bad signature"
    return None


def load_signing_key(environ: Mapping[str, str] | None = None) -> Ed25519PrivateKey | None:
    """The writer's private key: PEM (PKCS#8) from the file `RESONTINEX_AUDIT_SIGNING_KEY_FILE`
    or from `RESONTINEX_AUDIT_SIGNING_KEY` itself; None when neither is set. The key is never
    logged and errors never quote it."""
    env = os.environ if environ is None else environ
    if env.get(KEY_FILE_ENV):
        path = Path(env[KEY_FILE_ENV])
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise SigningKeyError(f"{KEY_FILE_ENV}: cannot read {path}: {exc.strerror}") from None
        return _private_key(data, f"{KEY_FILE_ENV} ({path})")
    if env.get(KEY_ENV):
        return _private_key(env[KEY_ENV].encode(), KEY_ENV)
    return None


def _private_key(data: bytes, where: str) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise SigningKeyError(f"{where}: not an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{where}: not an Ed25519 key")
    return key


def load_public_key(path: str | os.PathLike[str]) -> Ed25519PublicKey:
    """An Ed25519 public key from a PEM file (SubjectPublicKeyInfo)."""
    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except OSError as exc:
        raise SigningKeyError(f"{path}: cannot read: {exc.strerror}") from None
    except (ValueError, TypeError):
        raise SigningKeyError(f"{path}: not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError(f"{path}: not an Ed25519 public key")
    return key


def new_key_pair() -> tuple[bytes, bytes]:
    """A fresh key pair as PEM: (private PKCS#8, public SubjectPublicKeyInfo)."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public
