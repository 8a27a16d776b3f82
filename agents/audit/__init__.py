"""The audit hash chain of CONTRACT §3.8: sealing records and verifying a partition.

Pure: no Kafka, no asyncio. Every audit record carries `seq` (per partition, from 0,
contiguous), `prev_hash` (the previous record's `hash`, or `GENESIS_HASH` first) and
`hash` = SHA-256 hex of `prev_hash` as ASCII followed by the RFC 8785 canonical JSON of
the record without `hash`. A verifier needs nothing but the records and that rule.

>>> from resontinex.agents.audit import ChainHead, seal, verify
>>> rec, head = seal(ChainHead.genesis(), event_id="a-1", kind="checkpoint", tenant="acme",
...                  ts="2025-01-01T00:00:00Z", policy_version="3f2a9c0d1e4b", record={})
>>> verify([rec]).ok
True
"""

from ._chain import AuditEntry, ChainHead, head_after, seal, seal_many
from ._checkpoint import (ALGORITHM, checkpoint_body, checkpoint_problem, key_id, load_public_key, load_signing_key,
                          new_key_pair, signed_bytes)
from ._record import GENESIS_HASH, KINDS, record_hash
from ._verify import Finding, FindingKind, VerifyReport, verify
from .exceptions import InvalidRecordError, SigningKeyError

__all__ = [
    "ALGORITHM",
    "GENESIS_HASH",
    "KINDS",
    "AuditEntry",
    "ChainHead",
    "Finding",
    "FindingKind",
    "InvalidRecordError",
    "SigningKeyError",
    "VerifyReport",
    "checkpoint_body",
    "checkpoint_problem",
    "head_after",
    "key_id",
    "load_public_key",
    "load_signing_key",
    "new_key_pair",
    "record_hash",
    "seal",
    "seal_many",
    "signed_bytes",
    "verify",
]
