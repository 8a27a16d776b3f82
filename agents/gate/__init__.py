"""The gate: one decision per decision request, the most restrictive of what each part says.

The pure part (`decide`, `stats`) builds decisions, alerts and window statistics from
already-validated requests; `agent` wires it to Kafka topics and Faust tables.
"""

from ._decide import (
    VERB_RANK,
    alert_event,
    alert_id,
    break_glass,
    decision_event,
    decision_id,
    derived_id,
    floor_alert,
    most_restrictive,
    trust_reasons,
)
from ._stats import WindowStats, merge_stats, window_start

__all__ = [
    "VERB_RANK",
    "WindowStats",
    "alert_event",
    "alert_id",
    "derived_id",
    "break_glass",
    "decision_event",
    "decision_id",
    "floor_alert",
    "merge_stats",
    "most_restrictive",
    "trust_reasons",
    "window_start",
]
