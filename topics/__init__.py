"""The topic registry of resontinex (CONTRACT §2): one `TopicSpec` per topic.

    >>> from resontinex import topics
    >>> len(topics.REGISTRY), topics.get("audit").retention_ms
    (15, -1)
    >>> topics.wire_name("alerts", prefix="prod.")
    'prod.alerts'

Settings choose the partition count for every topic at once with
`with_partitions`; the prefix from `RESONTINEX_TOPIC_PREFIX` is passed to
`wire_name` / `all_wire_names` by the caller.
"""

from ._registry import (
    DEFAULT_PARTITIONS,
    INTERNAL,
    REGISTRY,
    Direction,
    KeyKind,
    TopicSpec,
    all_wire_names,
    get,
    partition_of,
    partition_of_key,
    wire_name,
    with_partitions,
)

__all__ = [
    "DEFAULT_PARTITIONS",
    "INTERNAL",
    "REGISTRY",
    "Direction",
    "KeyKind",
    "TopicSpec",
    "all_wire_names",
    "get",
    "partition_of",
    "partition_of_key",
    "wire_name",
    "with_partitions",
]
