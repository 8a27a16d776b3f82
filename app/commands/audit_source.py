"""Reading audit records for the `audit` commands: from the topic, or from an archive file.

An archive (written by `resontinex audit archive`) is JSON Lines: a header object, then one
`{"partition", "offset", "record"}` per record, in partition and offset order, so it
verifies with no Kafka at all. A value that is not a JSON object is kept as its text, for
`verify` to report as `modified` where it lies.
"""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import orjson
from tqdm import tqdm

from resontinex.app.exceptions import UsageError

ARCHIVE_FORMAT: Final = "resontinex-audit-archive"
ARCHIVE_VERSION: Final = 1


@dataclass(slots=True)
class AuditLog:
    """Records per partition, each with its offset, in offset order."""

    topic: str
    partitions: dict[int, list[tuple[int, Any]]] = field(default_factory=dict)
    header: dict[str, Any] | None = None

    def add(self, partition: int, offset: int, value: Any) -> None:
        self.partitions.setdefault(partition, []).append((offset, value))

    def __len__(self) -> int:
        return sum(len(v) for v in self.partitions.values())

    def records(self) -> Iterator[tuple[int, int, Any]]:
        """(partition, offset, record) for every record, partition by partition."""
        for partition in sorted(self.partitions):
            for offset, value in self.partitions[partition]:
                yield partition, offset, value


def decode(value: bytes | None) -> Any:
    """The record, or its text when it is not a JSON object (a finding for `verify`)."""
    try:
        obj = orjson.loads(value) if value else None
    except orjson.JSONDecodeError:
        return (value or b"").decode("utf-8", "replace")
    return obj if isinstance(obj, dict) else (value or b"").decode("utf-8", "replace")


@contextmanager
def _no_gc() -> Iterator[None]:
    """Parsed records are acyclic: the cyclic collector re-scanning them as they pile up
    cost about half of reading an archive (bench/audit_verify.py)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def progress(desc: str, total: int | None = None, quiet: bool = False) -> tqdm:
    """A progress bar on stderr with a records/s rate (hidden with `quiet` or off a terminal)."""
    return tqdm(total=total, desc=desc, unit=" records", unit_scale=True, file=sys.stderr,
                disable=quiet or not sys.stderr.isatty(), mininterval=0.5)


def read_kafka(bootstrap: str, topic: str, *, quiet: bool = False) -> AuditLog:
    """The whole topic, to the end it had when the read began."""
    from resontinex.app.commands.topic_reader import read_topic

    log = AuditLog(topic)
    with _no_gc(), progress(f"reading {topic}", quiet=quiet) as bar:
        def take(record: Any) -> None:
            log.add(record.partition, record.offset, decode(record.value))
            bar.update(1)

        asyncio.run(read_topic(bootstrap, topic, take))
    for records in log.partitions.values():
        records.sort(key=lambda item: item[0])
    return log


def read_archive(path: str | Path, *, quiet: bool = False) -> AuditLog:
    """An archive file's records; a file that is not an archive is refused (exit 2)."""
    path = Path(path)
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}") from None
    with fh, _no_gc(), progress(f"reading {path.name}", quiet=quiet) as bar:
        first = fh.readline()
        try:
            header = orjson.loads(first)
        except orjson.JSONDecodeError:
            header = None
        if not isinstance(header, dict) or header.get("format") != ARCHIVE_FORMAT:
            raise UsageError(f"{path}: not a resontinex audit archive (its first line is not the archive header)")
        log = AuditLog(str(header.get("topic", "audit")), header=header)
        for n, line in enumerate(fh, start=2):
            if not line.strip():
                continue
            try:
                item = orjson.loads(line)
                partition, offset = item["partition"], item["offset"]
                if type(partition) is not int or type(offset) is not int:
                    raise TypeError
            except (orjson.JSONDecodeError, KeyError, TypeError):
                raise UsageError(f"{path}:{n}: not an archive line (partition, offset, record)") from None
            record = item.get("record")
            log.add(partition, offset, record if isinstance(record, dict) else orjson.dumps(record).decode())
            bar.update(1)
    return log


def archive_header(topic: str, partitions: dict[str, Any], created: str) -> dict[str, Any]:
    """The first line of an archive: per partition, the offsets copied and, for a range that
    does not open the chain, `start` (the `seq` and `prev_hash` the range continues from)."""
    return {"format": ARCHIVE_FORMAT, "version": ARCHIVE_VERSION, "topic": topic, "created": created,
            "partitions": partitions}


def archive_line(partition: int, offset: int, record: Any) -> bytes:
    return orjson.dumps({"partition": partition, "offset": offset, "record": record}) + b"\n"
