"""A typed Python client of resontinex (`resontinex.client`): publish decision requests,
outcomes, costs, texts and coordination tasks, wait for their answers, follow decisions
and alerts, replay the audit trail. Built on the schema models (`resontinex.schemas`).

`Client` is async; `SyncClient` blocks. Both check every event against its schema before
publishing it (`InvalidRequest` carries the dead letter's code) and key it by its tenant,
so it lands on the tenant's partition.
"""

from ._client import Client
from ._sync import SyncClient
from .exceptions import ClientError, InvalidRequest, ResultTimeout, Unreachable

__all__ = ["Client", "ClientError", "InvalidRequest", "ResultTimeout", "SyncClient", "Unreachable"]
