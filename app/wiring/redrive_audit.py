"""`dead_letter_redrive` commands (topic `control`): the audit's record of a re-drive.

`resontinex dead-letters redrive --apply` republishes originals from their dead letters, then
publishes this command, keyed by the `_system` tenant, naming each original and where its
copy went; the worker owning `_system`'s partition seals it onto that partition's chain as
an `override` (an operator overruling the processor's refusal), with the operator and the
reason. A command delivered twice (a crash before its offset was committed) is sealed twice,
each with the command's id, so a reader can tell.
"""

from __future__ import annotations

import logging

from resontinex.schemas import Control, ms_to_ts

from resontinex.app.engine.audit_writer import append_audit, audit_item
from resontinex.app.engine.seams import Event
from resontinex.app.runtime import Runtime

__all__ = ["audit_redrive"]

log = logging.getLogger(__name__)


async def audit_redrive(rt: Runtime, event: Event, command: Control) -> None:
    assert command.redriven is not None  # the schema requires it for this action
    msg = event.message
    ts = command.ts or ms_to_ts(round(msg.timestamp * 1000))
    body = {"dead_letter_redrive": {"operator_id": command.operator_id, "reason": command.reason,
                                    "command_id": command.event_id,
                                    "redriven": [r.model_dump(exclude_none=True) for r in command.redriven]}}
    await append_audit(rt, msg.partition, [audit_item("rd-" + command.event_id, "override", command.tenant, ts,
                                                      rt.policy_version, body)])
    await rt.sink.flush()
    log.info("dead letters re-driven", extra={"event_id": command.event_id, "operator_id": command.operator_id,
                                              "originals": len(command.redriven)})
