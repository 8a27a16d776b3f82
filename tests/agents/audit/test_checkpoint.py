"""Signed checkpoints: signing, verifying in the chain, forgeries, keys."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from resontinex.agents.audit import (ChainHead, SigningKeyError, checkpoint_body, load_public_key, load_signing_key,
                          new_key_pair, seal, verify)

PV = "3f2a9c0d1e4b"


def _chain(key: Ed25519PrivateKey, n: int, every: int, partition: int = 2) -> list[dict]:
    """n decisions with a checkpoint after every `every` of them."""
    records, head = [], ChainHead.genesis()
    for i in range(n):
        rec, head = seal(head, event_id=f"au-{i}", kind="decision", tenant="acme", ts="2026-01-01T00:00:00Z",
                         policy_version=PV, record={"request": {"event_id": f"r-{i}"}})
        records.append(rec)
        if (i + 1) % every == 0:
            body = checkpoint_body(key, partition=partition, seq=head.seq_next - 1, head_hash=head.hash)
            rec, head = seal(head, event_id=f"cp-{i}", kind="checkpoint", tenant="_system", ts="2026-01-01T00:00:00Z",
                             policy_version=PV, record=body)
            records.append(rec)
    return records


def _reseal(records: list[dict], start: int) -> list[dict]:
    """Re-hash records[start:] onto the chain before them, as a forger would (no key to re-sign)."""
    out = records[:start]
    head = ChainHead(records[start]["seq"], records[start]["prev_hash"])
    for rec in records[start:]:
        fields = {k: rec[k] for k in ("event_id", "kind", "tenant", "ts", "policy_version", "record")}
        sealed, head = seal(head, **fields)
        out.append(sealed)
    return out


def test_a_clean_signed_chain_verifies_and_counts_its_checkpoints() -> None:
    key = Ed25519PrivateKey.generate()
    records = _chain(key, 10, 4)
    report = verify(records, public_key=key.public_key(), partition=2)
    assert report.ok and report.checkpoints_verified == 2 and report.unsigned_tail == 2
    unchecked = verify(records)
    assert unchecked.ok and unchecked.checkpoints_unverified == 2 and unchecked.checkpoints_verified == 0


def test_a_rewritten_and_rehashed_history_fails_at_the_first_checkpoint_after_it() -> None:
    key = Ed25519PrivateKey.generate()
    records = _chain(key, 10, 4)
    forged = [dict(r) for r in records]
    forged[1] = {**forged[1], "record": {"request": {"event_id": "r-1"}, "verb": "execute"}}
    forged = _reseal(forged, 1)
    assert verify(forged).ok  # the hashes alone cannot tell: the forger re-hashed everything
    report = verify(forged, public_key=key.public_key(), partition=2)
    assert report.first_error.kind == "bad_signature" and report.first_error.index == 4
    assert "another hash" in report.first_error.message


def test_a_checkpoint_signed_with_another_key_or_for_another_partition_is_bad() -> None:
    key, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    records = _chain(other, 4, 4)
    report = verify(records, public_key=key.public_key(), partition=2)
    assert report.first_error.kind == "bad_signature" and "not with the public key given" in report.first_error.message
    wrong = verify(_chain(key, 4, 4, partition=3), public_key=key.public_key(), partition=2)
    assert wrong.first_error.kind == "bad_signature" and "partition 3" in wrong.first_error.message


def test_a_tampered_signature_is_bad() -> None:
    key = Ed25519PrivateKey.generate()
    records = _chain(key, 4, 4)
    body = dict(records[4]["record"])
    body["signature"] = body["signature"][:-4] + ("AAAA" if not body["signature"].endswith("AAAA") else "BBBB")
    forged = _reseal(records[:4] + [{**records[4], "record": body}], 4)
    report = verify(forged, public_key=key.public_key(), partition=2)
    assert report.first_error.kind == "bad_signature" and report.first_error.message == "bad signature"


def test_keys_load_from_a_file_or_the_environment_and_errors_never_quote_them(tmp_path) -> None:
    private, public = new_key_pair()
    (tmp_path / "audit.key").write_bytes(private)
    (tmp_path / "audit.pub").write_bytes(public)
    from_file = load_signing_key({"RESONTINEX_AUDIT_SIGNING_KEY_FILE": str(tmp_path / "audit.key")})
    from_env = load_signing_key({"RESONTINEX_AUDIT_SIGNING_KEY": private.decode()})
    pub = load_public_key(tmp_path / "audit.pub")
    assert from_file.public_key().public_bytes_raw() == from_env.public_key().public_bytes_raw() == pub.public_bytes_raw()
    assert load_signing_key({}) is None
    secret = "-----BEGIN PRIVATE KEY-----\nnot really a key but secret\n-----END PRIVATE KEY-----\n"
    with pytest.raises(SigningKeyError) as info:
        load_signing_key({"RESONTINEX_AUDIT_SIGNING_KEY": secret})
    assert "secret" not in str(info.value) and "RESONTINEX_AUDIT_SIGNING_KEY" in str(info.value)
    with pytest.raises(SigningKeyError):
        load_public_key(tmp_path / "audit.key")  # a private key is not a public one
